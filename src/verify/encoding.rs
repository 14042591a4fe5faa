//! Cheetah's coefficient encoding of a convolution, as the model prices it
//! ([`crate::model::linear::evaluate_coeff`]): which input values go to which coefficient
//! of which query, which weights to which coefficient of which plaintext polynomial, and
//! which response coefficients hold which outputs. Pure integer code, no HE.
//!
//! For a tile of C_w channels x H_w rows x W_w columns (H_w, W_w capped at the layer's
//! padded size), input (c, i, j) sits at coefficient c*H_w*W_w + i*W_w + j. The kernel is
//! reversed: weight (c, a, b) of output block m sits at m*C_w*H_w*W_w + O - (c*H_w*W_w +
//! a*W_w + b), with O = (C_w-1)*H_w*W_w + (kh-1)*W_w + (kw-1), so that the stride-1 output
//! (y, x) of the tile lands at coefficient m*C_w*H_w*W_w + O + y*W_w + x. Tiles overlap by
//! the kernel size minus one; strided layers keep only the outputs on the stride.

use super::plain::PlainModulus;
use crate::mapping::LinearMapping;
use crate::model::linear::ConvGeom;
use crate::workload::{Layer, LayerKind};

/// Why a mapping cannot be run by the verify mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("{0}")]
    Mapping(String),
}

/// The encoding of one layer under one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub g: ConvGeom,
    pub n: usize,
    pub c_w: u64,
    pub hl: u64,
    pub wl: u64,
    pub m_w: u64,
    pub tiles_h: u64,
    pub step_h: u64,
    pub tiles_w: u64,
    pub step_w: u64,
    /// Input-channel groups (queries per tile) and output-channel groups (responses per tile).
    pub cb: u64,
    pub og: u64,
    /// Coefficient of output (0, 0) of the first output block.
    pub offset: u64,
    /// Responses of a strided layer carry every stride-1 output of their tile, as
    /// OpenCheetah's do ([`crate::protocol::ResponseKeeps::Stride1`]); the client uses only
    /// those on the stride.
    pub stride1: bool,
}

/// One output held by a response: its coefficient and its index in the output tensor
/// (channel-major, M x out_h x out_w).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutSlot {
    pub coeff: usize,
    pub index: usize,
}

fn axis_tiles(len: u64, k: u64, tile: u64) -> Result<(u64, u64), Unsupported> {
    if len <= tile {
        return Ok((1, len + 1 - k));
    }
    if tile < k {
        return Err(Unsupported::Mapping(format!(
            "a tile of {tile} is smaller than the kernel ({k})"
        )));
    }
    let step = tile - k + 1;
    Ok(((len - k + 1).div_ceil(step), step))
}

impl Layout {
    /// The layout of `map`'s tiling over geometry `g` (the virtual geometry of a packed
    /// layer, see [`super::packing`]).
    pub fn new(g: &ConvGeom, map: &LinearMapping) -> Result<Layout, Unsupported> {
        let n = map.n.as_u64();
        let t = map.tiling;
        if t.c_w == 0 || t.h_w == 0 || t.w_w == 0 || t.m_w == 0 {
            return Err(Unsupported::Mapping("tile sizes must be at least 1".into()));
        }
        let hl = t.h_w.min(g.h);
        let wl = t.w_w.min(g.w);
        if t.m_w * t.c_w * hl * wl > n {
            return Err(Unsupported::Mapping(format!(
                "a tile needs {} coefficients but N = {n}",
                t.m_w * t.c_w * hl * wl
            )));
        }
        let (tiles_h, step_h) = axis_tiles(g.h, g.kh, t.h_w)?;
        let (tiles_w, step_w) = axis_tiles(g.w, g.kw, t.w_w)?;
        Ok(Layout {
            g: *g,
            n: n as usize,
            c_w: t.c_w,
            hl,
            wl,
            m_w: t.m_w,
            tiles_h,
            step_h,
            tiles_w,
            step_w,
            cb: g.c.div_ceil(t.c_w),
            og: g.m.div_ceil(t.m_w),
            offset: (t.c_w - 1) * hl * wl + (g.kh - 1) * wl + (g.kw - 1),
            stride1: false,
        })
    }

    pub fn tiles(&self) -> u64 {
        self.tiles_h * self.tiles_w
    }
    pub fn queries(&self) -> u64 {
        self.cb * self.tiles()
    }
    pub fn responses(&self) -> u64 {
        self.og * self.tiles()
    }
    fn block(&self) -> u64 {
        self.c_w * self.hl * self.wl
    }
    /// (first row, first column) of tile `t` in the padded input.
    fn origin(&self, t: u64) -> (u64, u64) {
        (
            (t / self.tiles_w) * self.step_h,
            (t % self.tiles_w) * self.step_w,
        )
    }

    /// Query `q` = tile * cb + channel group: the coefficients of the input `x` (the padded
    /// input, C x H x W, values mod t) it carries.
    pub fn encode_input(&self, x: &[u128], q: u64) -> Vec<u128> {
        let (t, cb) = (q / self.cb, q % self.cb);
        let (r0, c0) = self.origin(t);
        let g = &self.g;
        let mut p = vec![0u128; self.n];
        for ci in 0..self.c_w {
            let c = cb * self.c_w + ci;
            if c >= g.c {
                break;
            }
            for i in 0..self.hl {
                let r = r0 + i;
                if r >= g.h {
                    break;
                }
                for j in 0..self.wl {
                    let col = c0 + j;
                    if col >= g.w {
                        break;
                    }
                    p[(ci * self.hl * self.wl + i * self.wl + j) as usize] =
                        x[((c * g.h + r) * g.w + col) as usize];
                }
            }
        }
        p
    }

    /// The weight polynomial of output group `og` against channel group `cb`; `w` is
    /// M x (C / groups) x kh x kw. `None` when it is zero (grouped convolutions).
    pub fn weight_poly(&self, w: &[i128], og: u64, cb: u64) -> Option<Vec<i128>> {
        let g = &self.g;
        let cpg = g.c / g.groups;
        let mpg = g.m / g.groups;
        let mut p = vec![0i128; self.n];
        let mut any = false;
        for mo in 0..self.m_w {
            let o = og * self.m_w + mo;
            if o >= g.m {
                break;
            }
            let grp = o / mpg;
            for ci in 0..self.c_w {
                let c = cb * self.c_w + ci;
                if c >= g.c {
                    break;
                }
                if c / cpg != grp {
                    continue;
                }
                let local = c - grp * cpg;
                any = true;
                for a in 0..g.kh {
                    for b in 0..g.kw {
                        let pos = mo * self.block() + self.offset
                            - (ci * self.hl * self.wl + a * self.wl + b);
                        p[pos as usize] = w[(((o * cpg + local) * g.kh + a) * g.kw + b) as usize];
                    }
                }
            }
        }
        any.then_some(p)
    }

    /// The body coefficients response `r` carries, in increasing order, each with the
    /// output it holds: those of [`Layout::outputs`], and with [`Layout::stride1`] also the
    /// stride-1 outputs off the stride of a strided layer (`None`: sent, not used).
    pub fn sent(&self, r: u64) -> Vec<(usize, Option<usize>)> {
        self.slots(r, self.stride1)
    }

    /// Outputs held by response `r` = tile * og + output group, in increasing coefficient order.
    pub fn outputs(&self, r: u64) -> Vec<OutSlot> {
        self.slots(r, false)
            .into_iter()
            .filter_map(|(coeff, index)| index.map(|index| OutSlot { coeff, index }))
            .collect()
    }

    /// The stride-1 outputs of response `r`'s tile, in coefficient order, with the output
    /// index of those on the stride; `off_stride`: keep the others too.
    fn slots(&self, r: u64, off_stride: bool) -> Vec<(usize, Option<usize>)> {
        let (t, og) = (r / self.og, r % self.og);
        let (r0, c0) = self.origin(t);
        let g = &self.g;
        let rows = self.step_h.min(g.h + 1 - g.kh - r0);
        let cols = self.step_w.min(g.w + 1 - g.kw - c0);
        let mut v = Vec::new();
        for mo in 0..self.m_w {
            let o = og * self.m_w + mo;
            if o >= g.m {
                break;
            }
            for y in 0..rows {
                let rr = r0 + y;
                let on_row = rr % g.sh == 0 && rr / g.sh < g.out_h;
                for x in 0..cols {
                    let cc = c0 + x;
                    let on = on_row && cc % g.sw == 0 && cc / g.sw < g.out_w;
                    if on || off_stride {
                        v.push((
                            (mo * self.block() + self.offset + y * self.wl + x) as usize,
                            on.then(|| ((o * g.out_h + rr / g.sh) * g.out_w + cc / g.sw) as usize),
                        ));
                    }
                }
            }
        }
        v
    }
}

/// Number of weights of a linear layer (M x C/groups x kh x kw).
pub fn weight_count(layer: &Layer) -> Option<usize> {
    let g = ConvGeom::of(layer)?;
    Some((g.m * (g.c / g.groups) * g.kh * g.kw) as usize)
}

/// The layer's input after Cheetah's preprocessing (SAME padding with zeros, 1 x 1 strided
/// convolutions subsampled), as the encoding sees it.
pub fn preprocess(layer: &Layer, x: &[u64]) -> Vec<u64> {
    let s = layer.input;
    match &layer.kind {
        LayerKind::Conv2d { window, .. } => {
            let (ph, pw) = (
                s.h + window.pad.top + window.pad.bottom,
                s.w + window.pad.left + window.pad.right,
            );
            let sub = window.kh == 1 && window.kw == 1 && (window.sh > 1 || window.sw > 1);
            let (sh, sw) = if sub { (window.sh, window.sw) } else { (1, 1) };
            let (oh, ow) = (ph.div_ceil(sh), pw.div_ceil(sw));
            let mut out = vec![0u64; (s.c * oh * ow) as usize];
            for c in 0..s.c {
                for i in 0..oh {
                    for j in 0..ow {
                        let (pi, pj) = (i * sh, j * sw);
                        if pi < window.pad.top || pj < window.pad.left {
                            continue;
                        }
                        let (r, col) = (pi - window.pad.top, pj - window.pad.left);
                        if r < s.h && col < s.w {
                            out[((c * oh + i) * ow + j) as usize] =
                                x[((c * s.h + r) * s.w + col) as usize];
                        }
                    }
                }
            }
            out
        }
        _ => x.to_vec(),
    }
}

/// The layer computed in plaintext integers mod `ring` (2^l up to 2^64, or a CRT component)
/// straight from its definition (padding, stride, groups), for checking the protocol's output.
pub fn reference(layer: &Layer, x: &[u64], w: &[i64], ring: &PlainModulus) -> Vec<u64> {
    if ring.is_pow2() {
        return reference_pow2(layer, x, w, ring.log_t);
    }
    // An odd modulus: the same sums over the integers, each product reduced mod t.
    let t = ring.t as i128;
    let out = reference_by(layer, x, w, 0i128, |acc, xv, wv| {
        (acc + (xv as i128 * wv as i128).rem_euclid(t)) % t
    });
    out.into_iter().map(|v| v as u64).collect()
}

fn reference_pow2(layer: &Layer, x: &[u64], w: &[i64], l: u32) -> Vec<u64> {
    let mask = if l >= 64 { u64::MAX } else { (1u64 << l) - 1 };
    reference_by(layer, x, w, 0u64, |acc, xv, wv| {
        acc.wrapping_add(xv.wrapping_mul(wv as u64))
    })
    .into_iter()
    .map(|v| v & mask)
    .collect()
}

/// The layer's sums from its definition, with `step(acc, x, w)` adding one product.
fn reference_by<A: Copy>(
    layer: &Layer,
    x: &[u64],
    w: &[i64],
    zero: A,
    step: impl Fn(A, u64, i64) -> A,
) -> Vec<A> {
    let s = layer.input;
    let o = layer.output;
    let mut out = vec![zero; o.elems() as usize];
    match &layer.kind {
        LayerKind::Conv2d { window, groups, .. } => {
            let cpg = s.c / groups;
            let mpg = o.c / groups;
            for m in 0..o.c {
                let grp = m / mpg;
                for oy in 0..o.h {
                    for ox in 0..o.w {
                        let mut acc = zero;
                        for lc in 0..cpg {
                            let c = grp * cpg + lc;
                            for a in 0..window.kh {
                                for b in 0..window.kw {
                                    let r = (oy * window.sh + a) as i64 - window.pad.top as i64;
                                    let col = (ox * window.sw + b) as i64 - window.pad.left as i64;
                                    if r < 0 || col < 0 || r >= s.h as i64 || col >= s.w as i64 {
                                        continue;
                                    }
                                    let xv =
                                        x[((c * s.h) as i64 * s.w as i64 + r * s.w as i64 + col)
                                            as usize];
                                    let wv = w[(((m * cpg + lc) * window.kh + a) * window.kw + b)
                                        as usize];
                                    acc = step(acc, xv, wv);
                                }
                            }
                        }
                        out[((m * o.h + oy) * o.w + ox) as usize] = acc;
                    }
                }
            }
        }
        LayerKind::Linear { out_features } => {
            let ni = s.elems() as usize;
            for m in 0..*out_features as usize {
                let mut acc = zero;
                for i in 0..ni {
                    acc = step(acc, x[i], w[m * ni + i]);
                }
                out[m] = acc;
            }
        }
        LayerKind::BatchNorm => {
            let hw = (s.h * s.w) as usize;
            for (i, v) in out.iter_mut().enumerate() {
                *v = step(zero, x[i], w[i / hw]);
            }
        }
        _ => {}
    }
    out
}

/// The (virtual) layer computed in plaintext integers mod t over the preprocessed
/// geometry (VALID convolution with stride and groups): what each decrypted response
/// coefficient must hold before the mask, slots and all. `x` is C x H x W (values mod t),
/// `w` is M x C/groups x kh x kw; the result is M x out_h x out_w.
pub fn coefficient_reference(g: &ConvGeom, x: &[u128], w: &[i128], t: &PlainModulus) -> Vec<u128> {
    let pow2 = t.is_pow2();
    let mask = t.t.wrapping_sub(1);
    let cpg = g.c / g.groups;
    let mpg = g.m / g.groups;
    let mut out = vec![0u128; (g.m * g.out_h * g.out_w) as usize];
    for m in 0..g.m {
        let grp = m / mpg;
        for oy in 0..g.out_h {
            for ox in 0..g.out_w {
                let mut acc = 0u128;
                for lc in 0..cpg {
                    let c = grp * cpg + lc;
                    for a in 0..g.kh {
                        for b in 0..g.kw {
                            let (r, col) = (oy * g.sh + a, ox * g.sw + b);
                            let xv = x[((c * g.h + r) * g.w + col) as usize];
                            let wv = w[(((m * cpg + lc) * g.kh + a) * g.kw + b) as usize];
                            acc = if pow2 {
                                acc.wrapping_add(xv.wrapping_mul(wv as u128))
                            } else {
                                t.add(acc, t.mul_signed(xv, wv))
                            };
                        }
                    }
                }
                out[((m * g.out_h + oy) * g.out_w + ox) as usize] =
                    if pow2 { acc & mask } else { acc };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{Packing, Tiling};
    use crate::units::RingDegree;

    /// A 1 x 7 x 7 input, 3 x 3 kernel, stride 2: stride-1 outputs 5 x 5 = 25 in one tile of
    /// 7 x 7, of which rows and columns 0, 2, 4 are on the stride: 3 x 3 = 9
    /// outputs (N = 256). The output (y, x) of the tile sits at coefficient O + y * 7 + x with
    /// O = (3 - 1) * 7 + (3 - 1) = 16.
    #[test]
    fn strided_responses_send_every_stride1_output_only_when_asked() {
        let g = ConvGeom {
            c: 1,
            h: 7,
            w: 7,
            m: 1,
            kh: 3,
            kw: 3,
            sh: 2,
            sw: 2,
            groups: 1,
            out_h: 3,
            out_w: 3,
            fan_in: 9,
        };
        let map = LinearMapping {
            n: RingDegree::try_new(256).unwrap(),
            tiling: Tiling {
                c_w: 1,
                h_w: 7,
                w_w: 7,
                m_w: 1,
            },
            packing: Packing::NONE,
        };
        let mut lay = Layout::new(&g, &map).unwrap();
        assert_eq!(lay.offset, 16);
        let outs = lay.outputs(0);
        assert_eq!(outs.len(), 9);
        // Output (1, 2) of the strided result is stride-1 output (2, 4): 16 + 14 + 4 = 34.
        assert_eq!(
            outs[5],
            OutSlot {
                coeff: 34,
                index: 5
            }
        );
        assert_eq!(lay.sent(0).len(), 9);
        lay.stride1 = true;
        let sent = lay.sent(0);
        assert_eq!(sent.len(), 25);
        assert_eq!(sent.iter().filter(|s| s.1.is_some()).count(), 9);
        // Stride-1 output (0, 1), coefficient 17, is sent and not used.
        assert_eq!(sent[1], (17, None));
        assert_eq!(sent[14], (34, Some(5)));
    }
}
