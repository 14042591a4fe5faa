//! Intra-coefficient packing (docs/protocol-reference.md 4.2) as a change of layer: b values share
//! one plaintext coefficient in slots of S bits, which turns the real layer into a
//! *virtual* one that Cheetah's coefficient encoding ([`super::encoding::Layout`]) runs
//! unchanged, with plaintext modulus 2^(b S) (2^((2b-1) S) along input channels).
//!
//! - Spatial: the stride-1 output rows are cut into b bands of R = ceil(rows / b); band j's
//!   input rows (with the kernel's halo) go to slot j, so the virtual input has R + kh - 1
//!   rows. Weights are unchanged.
//! - Output channel: the weights of b output channels share a coefficient,
//!   W = sum_j w_(m b + j) 2^(j S); output channel m b + j lands in slot j.
//! - Input channel: X = sum_j x_(c b + j) 2^(j S) and W = sum_j w_(c b + j) 2^((b-1-j) S); the
//!   middle slot b - 1 of the product sums x_(c b + j) w_(c b + j).
//!
//! Every slot value is a signed integer (shares plus the secret-share wrap, times signed
//! weights) that fits S bits by the model's slot width, and its low l bits are the output mod
//! 2^l. Reading slot j of the masked coefficient (Y + R) and of -R gives shares whose sum can
//! be off by one unit: a borrow from the signed slots below, or the carry of the mask's low
//! part, exactly like Cheetah's approximate re-sharing. Packed outputs are therefore checked
//! with a tolerance of 1; unpacked ones exactly.

use super::encoding::Unsupported;
use crate::mapping::{PackDirection, Packing};
use crate::model::linear::ConvGeom;

/// The packing of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packer {
    pub dir: PackDirection,
    pub b: u64,
    /// Slot width in bits (0 when unpacked).
    pub s: u32,
    pub real: ConvGeom,
    pub virt: ConvGeom,
    /// Spatial packing: stride-1 output rows per band.
    rows_per_band: u64,
}

impl Packer {
    pub fn new(g: &ConvGeom, p: Packing, slot_bits: u32) -> Result<Packer, Unsupported> {
        if p.is_crt() && p.direction == PackDirection::Tiles {
            return Err(Unsupported::Mapping(
                "CRT slots over spatial tiles are not run by the verify mode (CRT over batch images is)".into(),
            ));
        }
        // CRT over batch images leaves each image's layer as it is: the components live in
        // the plaintext modulus ([`super::plain::Crt`]), not in bit slots.
        let b = if p.is_packed() && !p.is_crt() {
            p.factor as u64
        } else {
            1
        };
        let dir = if b > 1 {
            p.direction
        } else {
            PackDirection::None
        };
        let mut virt = *g;
        let mut rows_per_band = 0;
        let unsupported = |m: String| Err(Unsupported::Mapping(m));
        if b > 1 && slot_bits == 0 {
            return unsupported("a packed mapping without a slot width".into());
        }
        if b > 1
            && (!matches!(
                p.scheme,
                crate::mapping::SlotScheme::Exact | crate::mapping::SlotScheme::Client
            ) || matches!(p.direction, PackDirection::Batch | PackDirection::Tiles))
        {
            return unsupported(format!(
                "{} slots are not run by the verify mode",
                p.scheme.name()
            ));
        }
        if b > 1 && g.groups > 1 {
            return unsupported(format!(
                "packing a grouped convolution (groups = {}) is not run by the verify mode",
                g.groups
            ));
        }
        match dir {
            PackDirection::None | PackDirection::Batch | PackDirection::Tiles => {}
            PackDirection::Spatial => {
                if g.sh != 1 {
                    return unsupported(format!(
                        "spatial packing of a layer with row stride {}: each band would keep its outputs at its own offset, which the model does not price",
                        g.sh
                    ));
                }
                let rows = g.h + 1 - g.kh;
                rows_per_band = rows.div_ceil(b);
                virt.h = rows_per_band + g.kh - 1;
                virt.out_h = rows_per_band;
            }
            PackDirection::OutputChannel => virt.m = g.m.div_ceil(b),
            PackDirection::InputChannel => virt.c = g.c.div_ceil(b),
        }
        Ok(Packer {
            dir,
            b,
            s: if b > 1 { slot_bits } else { 0 },
            real: *g,
            virt,
            rows_per_band,
        })
    }

    pub fn is_packed(&self) -> bool {
        self.b > 1
    }

    /// The plaintext modulus bits the packing needs (l when unpacked).
    pub fn log_t(&self, l: u32) -> u32 {
        match self.dir {
            PackDirection::None | PackDirection::Batch | PackDirection::Tiles => l,
            PackDirection::Spatial | PackDirection::OutputChannel => self.b as u32 * self.s,
            PackDirection::InputChannel => (2 * self.b as u32 - 1) * self.s,
        }
    }

    /// Bits of the largest packed weight magnitude (for the NTT's exactness bound).
    pub fn weight_bits(&self, b_w: u32) -> u32 {
        match self.dir {
            PackDirection::OutputChannel | PackDirection::InputChannel => {
                (self.b as u32 - 1) * self.s + b_w + 1
            }
            _ => b_w,
        }
    }

    /// The virtual input (C' x H' x W') from the real preprocessed input (values < 2^l).
    pub fn pack_input(&self, x: &[u64]) -> Vec<u128> {
        let (g, v) = (&self.real, &self.virt);
        match self.dir {
            PackDirection::None
            | PackDirection::OutputChannel
            | PackDirection::Batch
            | PackDirection::Tiles => x.iter().map(|&a| a as u128).collect(),
            PackDirection::Spatial => {
                let mut out = vec![0u128; (v.c * v.h * v.w) as usize];
                for c in 0..v.c {
                    for i in 0..v.h {
                        for col in 0..v.w {
                            let mut acc = 0u128;
                            for j in 0..self.b {
                                let r = j * self.rows_per_band + i;
                                if r < g.h {
                                    acc += (x[((c * g.h + r) * g.w + col) as usize] as u128)
                                        << (j as u32 * self.s);
                                }
                            }
                            out[((c * v.h + i) * v.w + col) as usize] = acc;
                        }
                    }
                }
                out
            }
            PackDirection::InputChannel => {
                let hw = (g.h * g.w) as usize;
                let mut out = vec![0u128; v.c as usize * hw];
                for cv in 0..v.c as usize {
                    for j in 0..self.b as usize {
                        let c = cv * self.b as usize + j;
                        if c >= g.c as usize {
                            break;
                        }
                        for p in 0..hw {
                            out[cv * hw + p] += (x[c * hw + p] as u128) << (j as u32 * self.s);
                        }
                    }
                }
                out
            }
        }
    }

    /// The virtual weights (M' x C'/groups x kh x kw) from the real ones.
    pub fn pack_weights(&self, w: &[i64]) -> Vec<i128> {
        let (g, v) = (&self.real, &self.virt);
        let k = (g.kh * g.kw) as usize;
        let cpg = (g.c / g.groups) as usize;
        match self.dir {
            PackDirection::None
            | PackDirection::Spatial
            | PackDirection::Batch
            | PackDirection::Tiles => w.iter().map(|&a| a as i128).collect(),
            PackDirection::OutputChannel => {
                let per = cpg * k;
                let mut out = vec![0i128; v.m as usize * per];
                for mv in 0..v.m as usize {
                    for j in 0..self.b as usize {
                        let m = mv * self.b as usize + j;
                        if m >= g.m as usize {
                            break;
                        }
                        for e in 0..per {
                            out[mv * per + e] += (w[m * per + e] as i128) << (j as u32 * self.s);
                        }
                    }
                }
                out
            }
            PackDirection::InputChannel => {
                let cv_n = v.c as usize;
                let mut out = vec![0i128; g.m as usize * cv_n * k];
                for m in 0..g.m as usize {
                    for cv in 0..cv_n {
                        for j in 0..self.b as usize {
                            let c = cv * self.b as usize + j;
                            if c >= g.c as usize {
                                break;
                            }
                            let shift = (self.b as u32 - 1 - j as u32) * self.s;
                            for e in 0..k {
                                out[(m * cv_n + cv) * k + e] +=
                                    (w[(m * cpg + c) * k + e] as i128) << shift;
                            }
                        }
                    }
                }
                out
            }
        }
    }

    /// The slots of virtual output `v` (index in M' x H' x W'): (bit offset, real output
    /// index) for each real output it holds.
    pub fn slots(&self, v: usize) -> Vec<(u32, usize)> {
        let (g, vg) = (&self.real, &self.virt);
        let (ow, oh) = (vg.out_w as usize, vg.out_h as usize);
        let (m, y, x) = (v / (oh * ow), (v / ow) % oh, v % ow);
        let real = |m: usize, y: usize| (m * g.out_h as usize + y) * g.out_w as usize + x;
        match self.dir {
            PackDirection::None | PackDirection::Batch | PackDirection::Tiles => vec![(0, v)],
            PackDirection::Spatial => (0..self.b as usize)
                .filter_map(|j| {
                    let row = j * self.rows_per_band as usize + y;
                    (row < g.out_h as usize).then(|| (j as u32 * self.s, real(m, row)))
                })
                .collect(),
            PackDirection::OutputChannel => (0..self.b as usize)
                .filter_map(|j| {
                    let mr = m * self.b as usize + j;
                    (mr < g.m as usize).then(|| (j as u32 * self.s, real(mr, y)))
                })
                .collect(),
            PackDirection::InputChannel => vec![((self.b as u32 - 1) * self.s, v)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{PackDirection, SlotScheme};
    use proptest::prelude::*;

    fn geom(c: u64, h: u64, m: u64, k: u64) -> ConvGeom {
        ConvGeom {
            c,
            h,
            w: h,
            m,
            kh: k,
            kw: k,
            sh: 1,
            sw: 1,
            groups: 1,
            out_h: h + 1 - k,
            out_w: h + 1 - k,
            fan_in: c * k * k,
        }
    }

    proptest! {
        /// Every real output is held by exactly one slot of one virtual output.
        #[test]
        fn slots_cover_every_output_once(
            c in 1u64..9, h in 3u64..12, m in 1u64..9, k in 1u64..4, dir in 0usize..4, b in 2u32..4,
        ) {
            let g = geom(c, h.max(k), m, k);
            let p = Packer::new(&g, Packing::new(PackDirection::ALL[dir], b, SlotScheme::Exact), 20);
            prop_assume!(p.is_ok());
            let p = p.unwrap();
            let mut seen = vec![0u32; g.out_elems() as usize];
            for v in 0..p.virt.out_elems() as usize {
                for (_, real) in p.slots(v) {
                    seen[real] += 1;
                }
            }
            prop_assert!(seen.iter().all(|&n| n == 1), "{seen:?}");
        }
    }

    #[test]
    fn input_channel_product_lands_in_the_middle_slot() {
        // One output of a 1 x 1 conv over 3 channels packed by 2: (x0 + 2^S x1) * (w1 + 2^S w0)
        // + x2 * 2^S w2 holds x0 w0 + x1 w1 + x2 w2 in slot 1.
        let g = geom(3, 1, 1, 1);
        let p = Packer::new(
            &g,
            Packing::new(PackDirection::InputChannel, 2, SlotScheme::Exact),
            16,
        )
        .unwrap();
        let x = p.pack_input(&[3, 5, 7]);
        let w = p.pack_weights(&[2, -1, 4]);
        let y: i128 = x.iter().zip(&w).map(|(&a, &b)| a as i128 * b).sum();
        let (shift, _) = p.slots(0)[0];
        // Slot 0 holds the cross term x0 w1 = -3: reading slot 1 takes a borrow of one
        // unit from it (the decoding's tolerance); without slot 0 it is exact.
        assert_eq!((y >> shift) & 0xffff, 3 * 2 - 5 + 7 * 4 - 1);
        let slot0 = -3; // x0 * w1
        assert_eq!(((y - slot0) >> shift) & 0xffff, 3 * 2 - 5 + 7 * 4);
    }
}
