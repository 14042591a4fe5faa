//! Linear layers under HE: the coefficient encoding shared by Cheetah and the HEQuant
//! variants (docs/protocol-reference.md 2.1-2.3, 4), CrypTFlow2's SIMD encoding (section 3),
//! and the noise bound that sets each mapping's moduli.

use crate::mapping::{LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
use crate::protocol::sizes::{
    RESPONSE_C0_EXTRA_BITS, full_ct_bytes, query_ct_bytes, response_c1_extra_bits,
    response_ct_bytes,
};
use crate::protocol::{CostModel, Insecure};
use crate::units::{RingDegree, ceil_log2};
use crate::workload::{Layer, LayerKind};
use serde::Serialize;

/// A linear layer as the HE encoding sees it, after Cheetah's preprocessing:
/// SAME padding applied to the input, 1 x 1 strided convolutions subsampled first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ConvGeom {
    pub c: u64,
    pub h: u64,
    pub w: u64,
    pub m: u64,
    pub kh: u64,
    pub kw: u64,
    /// Stride applied to the stride-1 output (1 after subsampling).
    pub sh: u64,
    pub sw: u64,
    pub groups: u64,
    /// Output rows and columns of the layer.
    pub out_h: u64,
    pub out_w: u64,
    /// Terms summed into one output: (C / groups) * kh * kw.
    pub fan_in: u64,
}

impl ConvGeom {
    /// The geometry of a conv, a fully connected layer, or a batch norm (a depthwise 1 x 1 conv).
    pub fn of(layer: &Layer) -> Option<ConvGeom> {
        let x = layer.input;
        match &layer.kind {
            LayerKind::Conv2d {
                out_channels,
                window,
                groups,
                ..
            } => {
                let (mut h, mut w) = (
                    x.h + window.pad.top + window.pad.bottom,
                    x.w + window.pad.left + window.pad.right,
                );
                let (mut sh, mut sw) = (window.sh, window.sw);
                if window.kh == 1 && window.kw == 1 && (sh > 1 || sw > 1) {
                    h = h.div_ceil(sh);
                    w = w.div_ceil(sw);
                    sh = 1;
                    sw = 1;
                }
                Some(ConvGeom {
                    c: x.c,
                    h,
                    w,
                    m: *out_channels,
                    kh: window.kh,
                    kw: window.kw,
                    sh,
                    sw,
                    groups: *groups,
                    out_h: layer.output.h,
                    out_w: layer.output.w,
                    fan_in: x.c / groups * window.kh * window.kw,
                })
            }
            LayerKind::Linear { out_features } => Some(ConvGeom {
                c: x.elems(),
                h: 1,
                w: 1,
                m: *out_features,
                kh: 1,
                kw: 1,
                sh: 1,
                sw: 1,
                groups: 1,
                out_h: 1,
                out_w: 1,
                fan_in: x.elems(),
            }),
            LayerKind::BatchNorm => Some(ConvGeom {
                c: x.c,
                h: x.h,
                w: x.w,
                m: x.c,
                kh: 1,
                kw: 1,
                sh: 1,
                sw: 1,
                groups: x.c,
                out_h: x.h,
                out_w: x.w,
                fan_in: 1,
            }),
            _ => None,
        }
    }

    pub fn out_elems(&self) -> u64 {
        self.m * self.out_h * self.out_w
    }
}

/// Why a mapping cannot run. Each names the constraint and both numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "constraint", rename_all = "snake_case")]
pub enum Infeasible {
    #[error("ring capacity: a tile needs {need} coefficients but N = {n}")]
    Capacity { need: u64, n: u64 },
    #[error("tiling: {what}")]
    Tiling { what: String },
    #[error("packing: {what}")]
    Packing { what: String },
    #[error(
        "noise: the result needs a {need_log_q}-bit modulus but the parameter set has {log_q} bits"
    )]
    Noise { need_log_q: u32, log_q: u32 },
    #[error("security: {0}")]
    Security(Insecure),
}

impl Infeasible {
    /// A short name of the violated constraint, for counting during a search.
    pub fn constraint(&self) -> &'static str {
        match self {
            Infeasible::Capacity { .. } => "ring capacity",
            Infeasible::Tiling { .. } => "tiling",
            Infeasible::Packing { .. } => "slot packing",
            Infeasible::Noise { .. } => "noise",
            Infeasible::Security(_) => "security",
        }
    }
}

/// The HE parameters a linear mapping is evaluated under.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeContext {
    /// Bits of the shares' ring l (the accumulator width for quantized layers).
    pub ring_bits: u32,
    pub weight_bits: u32,
    /// Bits of the layer's input activations (quantized layers).
    pub act_bits: u32,
    /// Fixed ciphertext modulus (Cheetah's 109 bits), or `None` for the smallest secure one.
    pub fixed_log_q: Option<u32>,
    /// Cap on the response modulus after switching.
    pub response_log_q: u32,
    pub seeded: bool,
    pub error_std: f64,
    pub failure_log2: i32,
    pub flood_bits: u32,
    pub allow_insecure: bool,
    /// The layer's input is the client's own data (the network input), not a share.
    pub client_input: bool,
    /// Images per inference; every count and byte of a [`LinearCost`] covers all of them.
    pub batch: u64,
    /// OT bytes and rounds that moving this layer's shares into and out of CRT components
    /// costs, for the whole batch (the model prices them from its OT model; charged to a
    /// mapping only when it uses CRT slots).
    pub crt_conversion_bytes: u64,
    pub crt_conversion_rounds: u32,
    /// The largest output channel's L1 norm of the layer's own quantized weights, when the
    /// accumulator is bounded by the weights (`--accumulator weights`); `None`: the worst case
    /// fan_in * 2^(b_w - 1).
    pub weight_l1: Option<u64>,
    /// Responses of strided convolutions keep every stride-1 output of their tile
    /// ([`crate::protocol::ResponseKeeps::Stride1`]).
    pub stride1_responses: bool,
}

impl HeContext {
    /// The bound on sum |w| over one output's weights: the weights' own largest L1 norm, or
    /// the worst case fan_in * 2^(b_w - 1).
    pub fn l1_bound(&self, fan_in: u64) -> u64 {
        self.weight_l1.unwrap_or_else(|| {
            fan_in.saturating_mul(1u64 << self.weight_bits.clamp(1, 63).saturating_sub(1))
        })
    }
}

/// What one linear mapping costs: counts, sizes, the moduli it needs and its noise headroom.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LinearCost {
    pub ct_in: u64,
    pub ct_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Ciphertext x plaintext multiply-accumulates on the server.
    pub products: u64,
    /// Kernel polynomials the server encodes and takes to NTT form once, before any query:
    /// one per (output-channel group, input-channel block), whatever the tiles, the runs
    /// and the batch (the offline part of the layer).
    pub weight_polys: u64,
    pub log_q: u32,
    pub log_t: u32,
    /// Slot width in bits when packed (0 when not).
    pub slot_bits: u32,
    pub c1_bits: u32,
    pub c0_bits: u32,
    /// Body coefficients kept in all responses.
    pub kept: u64,
    /// log2 of the bound the noise must stay under: z * sigma_out.
    pub noise_log2: f64,
    /// Bits between that bound and Delta / 2.
    pub headroom_bits: f64,
    pub tiles: u64,
    pub insecure: bool,
    /// NTT primes the server's exact products need ([`ntt_primes`]), and their bits
    /// ([`ntt_prime_bits`]: 50 when that many small ones suffice, else 62).
    pub ntt_primes: u32,
    pub ntt_prime_bits: u32,
    /// Independent runs of the layout the counts above sum over: the batch, or the batch
    /// divided by the CRT factor when batch images share ciphertexts.
    pub runs: u64,
    /// OT bytes and rounds of the CRT conversions (0 without CRT slots): not HE bytes, but
    /// part of what the mapping costs, so the search weighs them.
    pub conversion_bytes: u64,
    pub conversion_rounds: u32,
}

impl LinearCost {
    /// Everything the mapping sends: ciphertexts both ways and its CRT conversions.
    pub fn total_bytes(&self) -> u64 {
        self.bytes_in + self.bytes_out + self.conversion_bytes
    }
}

/// Bits of the primes of the exact NTT the server computes with (tfhe-ntt's `prime64`
/// plans, below 2^62 for its fast reduction).
pub const NTT_PRIME_BITS: u32 = 62;

/// Bits of the bound on |sum of `terms` products| of centred log_q-bit ciphertext
/// coefficients and weights of magnitude below 2^(weight_bits - 1), in a ring of degree n:
/// (log_q - 1) + (b_w - 1) + log2 N + log2(terms) + 1.
pub fn ntt_bound_bits(log_q: u32, weight_bits: u32, n: u64, terms: u64) -> u32 {
    (log_q - 1) + weight_bits.saturating_sub(1).max(1) + n.ilog2() + 64
        - terms.max(1).leading_zeros()
}

/// Number of NTT primes whose product exceeds 2^(bound_bits + 1), so that CRT recovers the
/// exact sum: the server's NTT work per polynomial grows with it.
pub fn ntt_primes(bound_bits: u32) -> u32 {
    (bound_bits + 2).div_ceil(NTT_PRIME_BITS - 1)
}

/// Bits of the small NTT primes (below 2^50): as many of them as of the 62-bit ones suffice
/// for most bounds, and on CPUs with AVX-512 IFMA their products take the 52-bit
/// multiply-add path (`tfhe-ntt`).
pub const NTT_SMALL_PRIME_BITS: u32 = 50;

/// Bits of the NTT primes for a bound: the small ones when [`ntt_primes`] of them still
/// suffice, else 62-bit ones. The prime count is [`ntt_primes`] either way.
pub fn ntt_prime_bits(bound_bits: u32) -> u32 {
    if (bound_bits + 2) <= ntt_primes(bound_bits) * (NTT_SMALL_PRIME_BITS - 1) {
        NTT_SMALL_PRIME_BITS
    } else {
        NTT_PRIME_BITS
    }
}

/// Expected square of a weight drawn uniformly from the `b`-bit two's-complement
/// integers -a..=a-1 (a = 2^(b-1)), the range a quantizer may use in full:
/// (sum of k^2 for k = 1..=a plus for k = 1..=a-1) / 2a = a^2/3 + 1/6
/// (docs/protocol-reference.md 4.4). At b = 1 (weights -1 and 0) that is 1/2.
fn weight_second_moment(b: u32) -> f64 {
    4f64.powi(b as i32 - 1) / 3.0 + 1.0 / 6.0
}

/// The Gaussian tail factor z with exp(-z^2 / 2) <= 2^failure_log2.
pub fn tail_factor(failure_log2: i32) -> f64 {
    (2.0 * (-failure_log2 as f64) * std::f64::consts::LN_2).sqrt()
}

/// Bits of one slot that can hold every value that lands in it, secret-share wrap
/// included (docs/protocol-reference.md 4.2): the client's share and the server's share sum to
/// x + 2^l * wrap < 2^(l+1), each of the fan_in products adds at most 2^(b_w - 1) times
/// that, and the slot is signed: S = l + b_w + ceil(log2 fan_in) + 1.
pub fn slot_bits(ring_bits: u32, weight_bits: u32, fan_in: u64) -> u32 {
    ring_bits + weight_bits + ceil_log2(fan_in) + 1
}

/// Slot width of a bit-slot scheme (docs/protocol-reference.md 4.1, 4.2):
/// - `exact`: [`slot_bits`], the secret-share wrap included;
/// - `client`: the accumulator b_a + b_w + ceil(log2 fan_in) (signed), for the client's own
///   data, which no share wraps;
/// - `paper`: the HEQuant authors' `ILP.py`, b_a + ceil(log2 max_o sum |W_o|), at its worst
///   case sum |W_o| <= fan_in 2^(b_w - 1): b_a + b_w - 1 + ceil(log2 fan_in).
///
/// With the weights' own L1 norm L (`--accumulator weights`) the same bounds read, with
/// log2(fan_in 2^(b_w - 1)) replaced by ceil(log2 L): `exact` l + 2 + ceil(log2 L), `client`
/// b_a + 1 + ceil(log2 L), `paper` b_a + ceil(log2 L) (the authors' rule itself).
pub fn scheme_slot_bits(scheme: SlotScheme, ctx: &HeContext, fan_in: u64) -> u32 {
    if let Some(l1) = ctx.weight_l1 {
        let lg = ceil_log2(l1.max(1));
        return match scheme {
            SlotScheme::Exact | SlotScheme::Crt => ctx.ring_bits + 2 + lg,
            SlotScheme::Client => ctx.act_bits + 1 + lg,
            SlotScheme::Paper => ctx.act_bits + lg,
        };
    }
    match scheme {
        SlotScheme::Exact | SlotScheme::Crt => slot_bits(ctx.ring_bits, ctx.weight_bits, fan_in),
        SlotScheme::Client => accumulator_bits(ctx.act_bits, ctx.weight_bits, fan_in),
        SlotScheme::Paper => accumulator_bits(ctx.act_bits, ctx.weight_bits, fan_in) - 1,
    }
}

/// The floor `ILP.py` puts on the plaintext modulus of a packed layer (17-18 bits;
/// docs/protocol-reference.md 4.1): the `paper` scheme uses the larger.
pub const PAPER_MIN_LOG_T: u32 = 18;

/// Widest CRT component this model prices (primes below 2^61; the verify mode's
/// arithmetic is exact up to there).
pub const CRT_MAX_COMPONENT_BITS: u32 = 60;
/// Most CRT components per coefficient.
pub const CRT_MAX_COMPONENTS: u32 = 16;

/// Deterministic Miller-Rabin for 64-bit integers (the bases 2, 325, 9375, 28178, 450775,
/// 9780504, 1795265022 decide every n < 2^64; Jim Sinclair, 2011).
pub(crate) fn is_prime_u64(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    for p in [2u64, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37] {
        if n.is_multiple_of(p) {
            return n == p;
        }
    }
    let mul = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let pow = |mut b: u64, mut e: u64| {
        let mut r = 1u64;
        b %= n;
        while e > 0 {
            if e & 1 == 1 {
                r = mul(r, b);
            }
            b = mul(b, b);
            e >>= 1;
        }
        r
    };
    let (mut d, mut r) = (n - 1, 0);
    while d % 2 == 0 {
        d /= 2;
        r += 1;
    }
    'bases: for a in [2u64, 325, 9375, 28178, 450775, 9780504, 1795265022] {
        let a = a % n;
        if a == 0 {
            continue;
        }
        let mut x = pow(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..r {
            x = mul(x, x);
            if x == n - 1 {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// The CRT plaintext moduli of a layer whose shares need `w` bits: the share ring 2^w itself,
/// then the `c - 1` smallest primes above 2^(w+1) (pairwise coprime; docs/protocol-reference.md
/// 4.2). The image in component 2^w keeps its shares as they are: only the other `c - 1` need
/// conversions, and a prime above 2^(w+1) puts a signed w-bit accumulator, offset by
/// 2^(w-1), below p / 2, where the wrap of two shares follows from which half of Z_p each
/// lies in: one COT out instead of a millionaire (4.3, `ot::arith::signed_mod_to_ring`).
/// `None` above [`CRT_MAX_COMPONENT_BITS`] or [`CRT_MAX_COMPONENTS`].
pub fn crt_moduli(w: u32, c: u32) -> Option<Vec<u64>> {
    use std::sync::OnceLock;
    static TABLE: OnceLock<Vec<Vec<u64>>> = OnceLock::new();
    if w == 0 || w + 2 > CRT_MAX_COMPONENT_BITS || c > CRT_MAX_COMPONENTS {
        return None;
    }
    let table = TABLE.get_or_init(|| {
        (0..=CRT_MAX_COMPONENT_BITS)
            .map(|w| {
                let mut v = Vec::with_capacity(CRT_MAX_COMPONENTS as usize);
                if w + 2 > CRT_MAX_COMPONENT_BITS {
                    return v;
                }
                let mut x = (2u64 << w) + 1;
                while v.len() < CRT_MAX_COMPONENTS as usize {
                    if is_prime_u64(x) {
                        v.push(x);
                    }
                    x += 1;
                }
                v
            })
            .collect()
    });
    if c == 0 {
        return Some(Vec::new());
    }
    let mut v = vec![1u64 << w];
    v.extend_from_slice(&table[w as usize][..c as usize - 1]);
    Some(v)
}

/// CRT components that need share conversions: all but the share ring's own 2^w.
pub fn crt_converted_components(c: u64) -> u64 {
    c.saturating_sub(1)
}

/// ceil(log2(t_1 * ... * t_c)) exactly: the product's bit length, one less for a power of two.
pub fn crt_log_t(moduli: &[u64]) -> u32 {
    let mut limbs: Vec<u64> = vec![1];
    for &t in moduli {
        let mut carry = 0u128;
        for l in limbs.iter_mut() {
            let v = *l as u128 * t as u128 + carry;
            *l = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            limbs.push(carry as u64);
        }
    }
    let top = *limbs.last().expect("at least one limb");
    let bits = (limbs.len() as u32 - 1) * 64 + (64 - top.leading_zeros());
    let pow2 = top.is_power_of_two() && limbs[..limbs.len() - 1].iter().all(|&l| l == 0);
    if pow2 { bits - 1 } else { bits }
}

/// Accumulator width of a layer: b_a + b_w + ceil(log2(fan_in)) (docs/protocol-reference.md 4).
pub fn accumulator_bits(act_bits: u32, weight_bits: u32, fan_in: u64) -> u32 {
    act_bits + weight_bits + ceil_log2(fan_in)
}

/// Accumulator width from the weights' own largest output-channel L1 norm L:
/// |sum w x| <= L (2^b_a - 1) < 2^(b_a + ceil(log2 L)), signed: b_a + 1 + ceil(log2 L)
/// (docs/protocol-reference.md 4.1). Equals [`accumulator_bits`] at the worst case
/// L = fan_in 2^(b_w - 1).
pub fn accumulator_bits_l1(act_bits: u32, l1: u64) -> u32 {
    act_bits + 1 + ceil_log2(l1.max(1))
}

/// Tiles along one axis: (count, stride-1 output rows of a full tile).
fn axis_tiles(len: u64, k: u64, tile: u64) -> Result<(u64, u64), Infeasible> {
    if len <= tile {
        return Ok((1, len + 1 - k));
    }
    if tile < k {
        return Err(Infeasible::Tiling {
            what: format!("a tile of {tile} is smaller than the kernel ({k})"),
        });
    }
    let step = tile - k + 1;
    Ok(((len - k + 1).div_ceil(step), step))
}

/// Outputs at stride `s` among stride-1 rows [r0, r0 + rows) when `out` outputs exist in all.
fn strided_in(r0: u64, rows: u64, s: u64, out: u64) -> u64 {
    let first = r0.div_ceil(s);
    let last = ((r0 + rows).div_ceil(s)).min(out);
    last.saturating_sub(first)
}

/// Cheetah's HomConv tiling rule (docs/protocol-reference.md 2.1), exactly: it looks at neither
/// M nor the bit width.
pub fn cheetah_conv_tiling(g: &ConvGeom, n: u64) -> Tiling {
    let cap = n / (g.kh * g.kw);
    if g.h * g.w <= n {
        Tiling {
            c_w: (n / (g.h * g.w)).min(g.c).min(cap).max(1),
            h_w: g.h,
            w_w: g.w,
            m_w: 1,
        }
    } else {
        let mut h_w = (((n * g.h) as f64 / g.w as f64).sqrt().floor() as u64).min(g.h);
        let mut w_w = (n / h_w).min(g.w);
        if h_w.abs_diff(w_w) < 2 {
            let s = h_w.min(w_w);
            h_w = s;
            w_w = s;
        }
        Tiling {
            c_w: 1,
            h_w,
            w_w,
            m_w: 1,
        }
    }
}

/// Cheetah's HomFC split (docs/protocol-reference.md 2.3; `getSplit` in OpenCheetah's
/// hom_fc_ss.cc): blocks of d0 output rows x d1 input columns, d0 d1 <= N, minimising
/// ceil(n_i / d1) + ceil(n_o / d0), the first strict minimum in OpenCheetah's order (d0
/// ascending, then d1 ascending). For one d0 the cost falls with d1, so the best d1 is
/// min(N / d0, n_i), and the first d1 with the same count is ceil(n_i / ceil(n_i / d1)).
pub fn cheetah_fc_tiling(n_i: u64, n_o: u64, n: u64) -> Tiling {
    let mut best = (u64::MAX, 1, 1);
    for d0 in 1..=n_o.min(n).max(1) {
        let d1_max = (n / d0).min(n_i).max(1);
        let ct_in = n_i.div_ceil(d1_max);
        let cost = ct_in + n_o.div_ceil(d0);
        if cost < best.0 {
            best = (cost, n_i.div_ceil(ct_in).max(1), d0);
        }
    }
    Tiling {
        c_w: best.1,
        h_w: 1,
        w_w: 1,
        m_w: best.2,
    }
}

/// Cheetah's HomBN tiling (`bn_direct`, `getSplitBN` in OpenCheetah's hom_bn_ss.cc,
/// docs/protocol-reference.md 2.3): one channel per ciphertext, tiles of at most
/// floor(sqrt(N)) rows and columns; queries and responses C x ceil(H / H_w) x ceil(W / W_w).
pub fn cheetah_bn_tiling(g: &ConvGeom, n: u64) -> Tiling {
    let side = n.isqrt().max(1);
    Tiling {
        c_w: 1,
        h_w: side.min(g.h),
        w_w: side.min(g.w),
        m_w: 1,
    }
}

/// The tiling Cheetah would use for this layer.
pub fn cheetah_tiling(g: &ConvGeom, n: u64) -> Tiling {
    if g.h == 1 && g.w == 1 && g.kh == 1 && g.kw == 1 && g.groups == 1 {
        cheetah_fc_tiling(g.c, g.m, n)
    } else {
        cheetah_conv_tiling(g, n)
    }
}

/// Evaluates one coefficient-encoded mapping: counts, moduli, noise and bytes, for the
/// whole batch of `ctx.batch` images.
///
/// The formulas (docs/protocol-reference.md 2.1, 2.2, 4):
/// - spatial packing by b splits the rows into b bands that share coefficients;
/// - tiles per axis = ceil((len - k + 1) / (tile - k + 1)) (1 if the axis fits);
/// - capacity: M_w * C_w * H_w * W_w <= N;
/// - query ciphertexts = ceil(C' / C_w) * tiles (C' = ceil(C / b) when packing input channels);
/// - response ciphertexts = ceil(M / (M_w * b_out)) * tiles;
/// - log t = l unpacked; b * S (spatial, output channel) or (2b - 1) * S (input channel) for
///   bit slots of S bits ([`scheme_slot_bits`]; the `paper` scheme at least
///   [`PAPER_MIN_LOG_T`]); ceil(log2(t_1 ... t_c)) for c CRT components ([`crt_moduli`]);
/// - noise: sigma_out = sigma * sqrt(M_w * fan_in * E[w^2]) * 2^((b-1) S) for weight-side packing;
///   log q >= log t + 2 + log2(z * sigma_out + rounding) + flood bits, z = sqrt(2 * 40 * ln 2)
///   (one bit for Delta / 2, one for the rounding of the truncated response body, up to
///   Delta / 4); rounding = 0 when t divides q, and for a CRT t (2^l times odd primes) the encoding
///   round(q m / t) of both shares and of the mask adds at most ||w||_1 + 1/2 <=
///   M_w * fan_in * 2^(b_w - 1) + 1 (docs/protocol-reference.md 4.2);
/// - response: c1 at log t + floor(log2(12 N sqrt(1/18))) bits for all N coefficients, c0 at
///   log t + 1 bits for the coefficients that hold outputs;
/// - batch B: B runs of the layout, or B / c runs when c batch images share every
///   coefficient (CRT `batch`); CRT `tiles` puts c spatial tiles of one image in one
///   ciphertext (ceil(tiles / c) ciphertexts per channel group, each keeping the union of
///   its tiles' output positions).
pub fn evaluate_coeff(
    g: &ConvGeom,
    map: &LinearMapping,
    ctx: &HeContext,
    cm: &CostModel,
) -> Result<LinearCost, Infeasible> {
    let n = map.n.as_u64();
    let Tiling { c_w, h_w, w_w, m_w } = map.tiling;
    let Packing {
        direction,
        factor,
        scheme,
    } = map.packing;
    let packed = map.packing.is_packed();
    let crt = packed && scheme == SlotScheme::Crt;
    let batch = ctx.batch.max(1);
    if packed {
        match (scheme, direction) {
            (SlotScheme::Crt, PackDirection::Batch | PackDirection::Tiles) => {}
            (SlotScheme::Crt, d) => {
                return Err(Infeasible::Packing {
                    what: format!(
                        "CRT slots hold batch images or spatial tiles, not {} values",
                        d.name()
                    ),
                });
            }
            (s, d @ (PackDirection::Batch | PackDirection::Tiles)) => {
                return Err(Infeasible::Packing {
                    what: format!(
                        "{} packing needs CRT slots, not {} slots",
                        d.name(),
                        s.name()
                    ),
                });
            }
            (SlotScheme::Client, _) if !ctx.client_input => {
                return Err(Infeasible::Packing {
                    what: "client slots need the client's own data as input: only the network input is not a share".into(),
                });
            }
            _ => {}
        }
    }
    // Bit slots per coefficient (1 for CRT, whose components are not bit slots).
    let b = if packed && !crt { factor as u64 } else { 1 };
    let c = if crt { factor as u64 } else { 1 };
    if c_w == 0 || h_w == 0 || w_w == 0 || m_w == 0 {
        return Err(Infeasible::Tiling {
            what: "tile sizes must be at least 1".into(),
        });
    }
    if g.groups > 1 && m_w > 1 {
        return Err(Infeasible::Tiling {
            what: format!("grouped convolutions (groups = {}) take M_w = 1", g.groups),
        });
    }
    if g.groups > 1
        && matches!(
            direction,
            PackDirection::OutputChannel | PackDirection::InputChannel
        )
        && b > 1
    {
        return Err(Infeasible::Packing {
            what: format!("channel packing needs groups = 1 (groups = {})", g.groups),
        });
    }
    if crt && direction == PackDirection::Batch && !batch.is_multiple_of(c) {
        return Err(Infeasible::Packing {
            what: format!("{c} CRT components do not divide the batch of {batch} images"),
        });
    }
    if crt && direction == PackDirection::Tiles && (g.sh > 1 || g.sw > 1) {
        return Err(Infeasible::Packing {
            what: format!(
                "CRT tiles of a strided layer (stride {}x{}) keep different output positions",
                g.sh, g.sw
            ),
        });
    }
    // Spatial packing: b bands of rows share the coefficients. With a row stride above 1
    // each band would keep its outputs at its own offset (a different response layout per
    // band), which neither this count nor the verify mode's encoding has.
    if direction == PackDirection::Spatial && b > 1 && g.sh > 1 {
        return Err(Infeasible::Packing {
            what: format!(
                "spatial packing of a layer with row stride {}: each band would keep its outputs at its own offset",
                g.sh
            ),
        });
    }
    let out_rows_s1 = g.h + 1 - g.kh;
    let h_eff = if direction == PackDirection::Spatial && b > 1 {
        if out_rows_s1 < b {
            return Err(Infeasible::Packing {
                what: format!(
                    "{b} bands need at least {b} output rows, the layer has {out_rows_s1}"
                ),
            });
        }
        out_rows_s1.div_ceil(b) + g.kh - 1
    } else {
        g.h
    };
    let c_eff = if direction == PackDirection::InputChannel {
        g.c.div_ceil(b)
    } else {
        g.c
    };
    if c_w > c_eff {
        return Err(Infeasible::Tiling {
            what: format!("C_w = {c_w} exceeds the {c_eff} channels"),
        });
    }
    let m_slots = if direction == PackDirection::OutputChannel {
        b
    } else {
        1
    };
    if m_w > 1 && m_w * m_slots > g.m {
        return Err(Infeasible::Tiling {
            what: format!("M_w = {m_w} exceeds the {} output channels", g.m),
        });
    }
    let th = h_w.min(h_eff);
    let tw = w_w.min(g.w);
    let need = m_w * c_w * th * tw;
    if need > n {
        return Err(Infeasible::Capacity { need, n });
    }
    let (tiles_h, step_h) = axis_tiles(h_eff, g.kh, h_w)?;
    let (tiles_w, step_w) = axis_tiles(g.w, g.kw, w_w)?;
    let tiles = tiles_h * tiles_w;
    let tile_cts = if crt && direction == PackDirection::Tiles {
        if tiles < c {
            return Err(Infeasible::Packing {
                what: format!("{c} CRT components need {c} spatial tiles, the layer has {tiles}"),
            });
        }
        tiles.div_ceil(c)
    } else {
        tiles
    };

    // Moduli.
    let eff_w_bits = ctx.weight_bits;
    let (log_t, slot, amp_bits) = if crt {
        let moduli = crt_moduli(ctx.ring_bits, c as u32).ok_or_else(|| Infeasible::Packing {
            what: format!(
                "{c} CRT components of {} bits (at most {CRT_MAX_COMPONENTS} of at most {CRT_MAX_COMPONENT_BITS} bits)",
                ctx.ring_bits + 2
            ),
        })?;
        (crt_log_t(&moduli), 0, 0)
    } else if b > 1 {
        let s = scheme_slot_bits(scheme, ctx, g.fan_in);
        let (t, amp) = match direction {
            PackDirection::Spatial => (b as u32 * s, 0),
            PackDirection::OutputChannel => (b as u32 * s, (b as u32 - 1) * s),
            PackDirection::InputChannel => ((2 * b as u32 - 1) * s, (b as u32 - 1) * s),
            _ => unreachable!("bit slots pack spatially or along channels (checked above)"),
        };
        let t = if scheme == SlotScheme::Paper {
            t.max(PAPER_MIN_LOG_T)
        } else {
            t
        };
        (t, s, amp)
    } else {
        (ctx.ring_bits, 0, 0)
    };
    let terms = (m_w * g.fan_in) as f64;
    let sigma_out = ctx.error_std * (terms * weight_second_moment(eff_w_bits)).sqrt();
    let rounding = if crt {
        terms * 2f64.powi(eff_w_bits as i32 - 1) + 1.0
    } else {
        0.0
    };
    let noise_log2 =
        (tail_factor(ctx.failure_log2) * sigma_out + rounding).log2() + amp_bits as f64;
    // Decryption needs |error| < Delta / 2. The response's body keeps only log t +
    // RESPONSE_C0_EXTRA_BITS (= 1) bits, whose rounding alone reaches Delta / 4, so the
    // noise must stay below the other Delta / 4: one bit more than the fresh-noise bound
    // (the verify mode saw decryption failures without it).
    let trunc_bits = 1;
    let need_log_q = log_t + 1 + trunc_bits + noise_log2.max(0.0).ceil() as u32 + ctx.flood_bits;
    let log_q = match ctx.fixed_log_q {
        Some(q) => {
            if need_log_q > q {
                return Err(Infeasible::Noise {
                    need_log_q,
                    log_q: q,
                });
            }
            q
        }
        None => need_log_q,
    };
    let mut insecure = false;
    if let Err(e) = cm.check_security(map.n, log_q) {
        if ctx.allow_insecure {
            insecure = true;
        } else {
            return Err(Infeasible::Security(e));
        }
    }
    let headroom_bits = (log_q - log_t - 1 - trunc_bits - ctx.flood_bits) as f64 - noise_log2;
    // The response modulus cap (Cheetah's 60-bit prime) never cuts c1 below log t plus the
    // margin that bounds its rounding error: with packed plaintext moduli above 47 bits
    // the cap alone left c1 at log t + 6 bits, and the verify mode saw the rounding error
    // times the secret reach Delta / 2.
    let c1_bits = (log_t + response_c1_extra_bits(n))
        .min(log_q)
        .min(ctx.response_log_q.max(log_t + response_c1_extra_bits(n)));
    let c0_bits = (log_t + RESPONSE_C0_EXTRA_BITS).min(log_q);

    // Counts of one run of the layout.
    let ct_in = c_eff.div_ceil(c_w) * tile_cts;
    let per_ct_channels = m_w * m_slots;
    let groups_full = g.m / per_ct_channels;
    let rem = g.m % per_ct_channels;
    let ct_out = g.m.div_ceil(per_ct_channels) * tile_cts;
    let c_per_group = g.c / g.groups;
    let in_per_out = if g.groups > 1 {
        c_per_group.div_ceil(c_w).max(1)
    } else {
        c_eff.div_ceil(c_w)
    };
    let products = ct_out * in_per_out;
    let weight_polys = g.m.div_ceil(per_ct_channels) * in_per_out;

    // Response bytes of one run: ciphertext classes by the output positions they keep.
    let out_h_band = if direction == PackDirection::Spatial && b > 1 {
        g.out_h.div_ceil(b)
    } else {
        g.out_h
    };
    let row_classes = tile_classes(tiles_h, step_h, h_eff + 1 - g.kh);
    let col_classes = tile_classes(tiles_w, step_w, g.w + 1 - g.kw);
    // (ciphertexts per output-channel group, output positions each keeps)
    let mut position_classes: Vec<(u64, u64)> = Vec::new();
    if crt && direction == PackDirection::Tiles {
        // Tile k (row-major) goes to ciphertext k / c; a ciphertext keeps the union of its
        // tiles' positions: the most rows times the most columns among them.
        let rows: Vec<u64> = row_classes
            .iter()
            .map(|&(_, r0, rws)| strided_in(r0, rws, g.sh, out_h_band))
            .collect();
        let cols: Vec<u64> = col_classes
            .iter()
            .map(|&(_, c0, cls)| strided_in(c0, cls, g.sw, g.out_w))
            .collect();
        for j in 0..tile_cts {
            let (mut mr, mut mc) = (0, 0);
            for k in j * c..((j + 1) * c).min(tiles) {
                mr = mr.max(rows[(k / tiles_w) as usize]);
                mc = mc.max(cols[(k % tiles_w) as usize]);
            }
            position_classes.push((1, mr * mc));
        }
    } else {
        for &(rh, r0, rows) in &row_classes {
            let oh = if ctx.stride1_responses && g.sh > 1 {
                rows
            } else {
                strided_in(r0, rows, g.sh, out_h_band)
            };
            for &(cw, c0, cols) in &col_classes {
                let ow = if ctx.stride1_responses && g.sw > 1 {
                    cols
                } else {
                    strided_in(c0, cols, g.sw, g.out_w)
                };
                position_classes.push((rh * cw, oh * ow));
            }
        }
    }
    let mut bytes_out = 0u64;
    let mut kept_total = 0u64;
    for &(count, positions) in &position_classes {
        let kept_full = m_w * positions;
        let kept_rem = rem.div_ceil(m_slots) * positions;
        bytes_out += count
            * (groups_full * response_ct_bytes(n, c1_bits, kept_full, c0_bits)
                + if rem > 0 {
                    response_ct_bytes(n, c1_bits, kept_rem, c0_bits)
                } else {
                    0
                });
        kept_total += count * (groups_full * kept_full + if rem > 0 { kept_rem } else { 0 });
    }
    let bytes_in = ct_in * query_ct_bytes(n, log_q, ctx.seeded);
    let runs = if crt && direction == PackDirection::Batch {
        batch / c
    } else {
        batch
    };
    let ntt_bound = ntt_bound_bits(
        log_q,
        if amp_bits > 0 {
            amp_bits + eff_w_bits + 1
        } else {
            eff_w_bits
        },
        n,
        c_eff.div_ceil(c_w),
    );
    Ok(LinearCost {
        ct_in: ct_in * runs,
        ct_out: ct_out * runs,
        bytes_in: bytes_in * runs,
        bytes_out: bytes_out * runs,
        products: products * runs,
        weight_polys,
        log_q,
        log_t,
        slot_bits: slot,
        c1_bits,
        c0_bits,
        kept: kept_total * runs,
        noise_log2,
        headroom_bits,
        tiles,
        insecure,
        ntt_primes: ntt_primes(ntt_bound),
        ntt_prime_bits: ntt_prime_bits(ntt_bound),
        runs,
        // The batch's conversions, less those of the images in the 2^l component (CRT
        // over tiles: every element priced, an upper bound).
        conversion_bytes: match (crt, direction) {
            (false, _) => 0,
            (true, PackDirection::Batch) => {
                (ctx.crt_conversion_bytes * crt_converted_components(c)).div_ceil(c)
            }
            (true, _) => ctx.crt_conversion_bytes,
        },
        conversion_rounds: if crt { ctx.crt_conversion_rounds } else { 0 },
    })
}

/// Tiles of one axis grouped by size: (count, first stride-1 output row of one of them,
/// its stride-1 output rows). Representative first rows matter only for strided layers,
/// so full tiles are listed one by one when the axis is short and grouped otherwise.
fn tile_classes(tiles: u64, step: u64, out_rows: u64) -> Vec<(u64, u64, u64)> {
    (0..tiles)
        .map(|i| {
            let r0 = i * step;
            (1, r0, step.min(out_rows - r0))
        })
        .collect()
}

/// CrypTFlow2's SIMD conv (docs/protocol-reference.md 3): the padded image rounded up to a power
/// of two must fit N/2 slots (otherwise it is split into overlapping pieces that do);
/// channels per half-ciphertext = (N/2) / image size; query and response ciphertexts =
/// ceil(C or M / (2 * channels per half)) per piece; full ciphertexts both ways.
pub fn cryptflow2_conv(g: &ConvGeom, n: u64, log_q: u32) -> (u64, u64, u64, u64, u64) {
    let half = n / 2;
    let fits = |h: u64, w: u64| (h * w).next_power_of_two() <= half;
    let (mut ph, mut pw) = (g.h, g.w);
    while !fits(ph, pw) {
        if ph >= pw {
            ph = (ph + g.kh).div_ceil(2).max(g.kh)
        } else {
            pw = (pw + g.kw).div_ceil(2).max(g.kw)
        }
        if ph == g.kh && pw == g.kw {
            break;
        }
    }
    let pieces = axis_tiles(g.h, g.kh, ph).map(|t| t.0).unwrap_or(1)
        * axis_tiles(g.w, g.kw, pw).map(|t| t.0).unwrap_or(1);
    let image = (ph * pw).next_power_of_two();
    let cph = (half / image).max(1);
    let per = 2 * cph;
    let ct_in = g.c.div_ceil(per) * pieces;
    let ct_out = g.m.div_ceil(per) * pieces;
    let bytes = full_ct_bytes(n, log_q);
    // Rotations: one per (input ciphertext, kernel position) on the server.
    let products = ct_in * g.kh * g.kw * g.m.div_ceil(per).max(1);
    (ct_in, ct_out, ct_in * bytes, ct_out * bytes, products)
}

/// What an element-wise product in SIMD slots costs ([`simd_elementwise`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimdCost {
    /// Ciphertexts each way (the same count).
    pub cts: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// CRT plaintext primes and their bits.
    pub primes: u64,
    pub prime_bits: u32,
    /// Bits a truncated response keeps of c1 and of every coefficient of c0 (0 when the
    /// response is not truncated).
    pub c1_bits: u32,
    pub c0_bits: u32,
}

/// An element-wise product (batch norm scale) with SIMD over CRT plaintext primes, as
/// Cheetah's HomBN and CrypTFlow2's element-wise protocol run it (docs/protocol-reference.md 2.3):
/// primes = ceil((2l + 1 + stat) / max_prime_bits), ceil(elements / N) ciphertexts per prime.
/// A truncated response keeps c1 at log p + floor(log2(12 N sqrt(1/18))) bits and all N
/// coefficients of c0 at log p + 2 bits: one more than for t = 2^l, since p is odd
/// (`truncate_for_decryption`'s `one_more_bit`).
#[allow(clippy::too_many_arguments)]
pub fn simd_elementwise(
    elems: u64,
    n: RingDegree,
    ring_bits: u32,
    stat_bits: u32,
    max_prime_bits: u32,
    log_q: u32,
    seeded: bool,
    truncated_response: bool,
) -> SimdCost {
    let total = 2 * ring_bits + 1 + stat_bits;
    let primes = total.div_ceil(max_prime_bits) as u64;
    let prime_bits = total.div_ceil(primes as u32);
    let nn = n.as_u64();
    let cts = elems.div_ceil(nn) * primes;
    let q_bytes = query_ct_bytes(nn, log_q, seeded);
    let (c1_bits, c0_bits) = if truncated_response {
        (
            prime_bits + response_c1_extra_bits(nn),
            prime_bits + RESPONSE_C0_EXTRA_BITS + 1,
        )
    } else {
        (0, 0)
    };
    let r_bytes = if truncated_response {
        response_ct_bytes(nn, c1_bits, nn, c0_bits)
    } else {
        full_ct_bytes(nn, log_q)
    };
    SimdCost {
        cts,
        bytes_in: cts * q_bytes,
        bytes_out: cts * r_bytes,
        primes,
        prime_bits,
        c1_bits,
        c0_bits,
    }
}

/// Whether OpenCheetah runs a batch norm coefficient-encoded (`bn_direct`, one channel per
/// ciphertext) rather than in SIMD slots: its ResNet-50 program's `FusedBatchNorm4411`
/// picks the encoding with fewer ciphertexts, ceil(H W / N) C against ceil(H W C / N) x
/// the SIMD primes (networks/main_resnet50.cpp; docs/protocol-reference.md 2.3).
pub fn cheetah_bn_coefficient_encoded(c: u64, h: u64, w: u64, n: u64, primes: u64) -> bool {
    (h * w).div_ceil(n) * c < (h * w * c).div_ceil(n) * primes
}
