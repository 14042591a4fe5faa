//! The legal choices for one linear layer: a list of candidate mappings addressed by
//! index, so that a search can split them across threads and break ties by index.

use super::{LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
use crate::model::linear::{ConvGeom, cheetah_tiling};
use crate::units::RingDegree;

/// Which parts of the space a protocol may choose from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceOptions {
    pub ring_degrees: Vec<RingDegree>,
    pub max_pack_factor: u32,
    pub max_m_w: u64,
    /// Free tiling (HEQuant's quantization-aware tiling) or Cheetah's rule.
    pub free_tiling: bool,
    pub pack_directions: Vec<PackDirection>,
    /// Slot schemes the packed candidates may use (docs/protocol-reference.md 4.1, 4.2).
    pub schemes: Vec<SlotScheme>,
    /// Images per inference (CRT batch factors divide it).
    pub batch: u64,
}

fn powers_of_two_upto(max: u64) -> Vec<u64> {
    let mut v = Vec::new();
    let mut x = 1;
    while x <= max {
        v.push(x);
        x *= 2;
    }
    if max >= 1 && v.last() != Some(&max) {
        v.push(max);
    }
    v
}

/// Geometry after packing: (height of the packed rows, channels per coefficient group).
fn packed_dims(g: &ConvGeom, p: Packing) -> (u64, u64) {
    let b = p.factor.max(1) as u64;
    match p.direction {
        PackDirection::Spatial if b > 1 => ((g.h + 1 - g.kh).div_ceil(b) + g.kh - 1, g.c),
        PackDirection::InputChannel if b > 1 => (g.h, g.c.div_ceil(b)),
        _ => (g.h, g.c),
    }
}

/// All candidate mappings of one layer, in a fixed order.
pub fn candidates(g: &ConvGeom, opts: &SpaceOptions) -> Vec<LinearMapping> {
    let mut packs = vec![Packing::NONE];
    for &scheme in &opts.schemes {
        if scheme == SlotScheme::Crt {
            for &d in &PackDirection::CRT {
                if !opts.pack_directions.contains(&d) {
                    continue;
                }
                for f in 2..=opts.max_pack_factor {
                    if d == PackDirection::Batch && !opts.batch.is_multiple_of(f as u64) {
                        continue;
                    }
                    packs.push(Packing::new(d, f, scheme));
                }
            }
            continue;
        }
        for &d in &PackDirection::BIT_SLOTS {
            if !opts.pack_directions.contains(&d) {
                continue;
            }
            for f in 2..=opts.max_pack_factor {
                packs.push(Packing::new(d, f, scheme));
            }
        }
    }
    let mut out = Vec::new();
    for &n in &opts.ring_degrees {
        let nn = n.as_u64();
        for &p in &packs {
            let (h, c) = packed_dims(g, p);
            if !opts.free_tiling {
                let pg = ConvGeom { h, c, ..*g };
                out.push(LinearMapping {
                    n,
                    tiling: cheetah_tiling(&pg, nn),
                    packing: p,
                });
                continue;
            }
            let m_max = if g.groups > 1 {
                1
            } else {
                g.m.min(opts.max_m_w)
            };
            for m_w in powers_of_two_upto(m_max) {
                let cap = nn / m_w;
                if cap == 0 {
                    continue;
                }
                if h * g.w <= cap {
                    let cmax = (cap / (h * g.w)).min(c).max(1);
                    for c_w in powers_of_two_upto(cmax) {
                        out.push(LinearMapping {
                            n,
                            tiling: Tiling {
                                c_w,
                                h_w: h,
                                w_w: g.w,
                                m_w,
                            },
                            packing: p,
                        });
                    }
                } else {
                    for c_w in powers_of_two_upto(c.min(4)) {
                        let per = cap / c_w;
                        let mut shapes = Vec::new();
                        // Square-ish tiles (Cheetah's shape at this capacity), full-width rows, full-height columns.
                        let hs =
                            (((per * h) as f64 / g.w as f64).sqrt().floor() as u64).clamp(1, h);
                        shapes.push((hs, (per / hs).min(g.w)));
                        if g.w <= per {
                            shapes.push(((per / g.w).min(h), g.w));
                        }
                        if h <= per {
                            shapes.push((h, (per / h).min(g.w)));
                        }
                        shapes.sort_unstable();
                        shapes.dedup();
                        for (h_w, w_w) in shapes {
                            if h_w >= g.kh && w_w >= g.kw {
                                out.push(LinearMapping {
                                    n,
                                    tiling: Tiling { c_w, h_w, w_w, m_w },
                                    packing: p,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    out
}
