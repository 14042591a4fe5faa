//! Two-party arithmetic on additive shares x = x_A + x_B mod 2^l (1 <= l <= 64), following
//! CrypTFlow2 (Rathee et al., CCS 2020): DReLU, B2A, MUX, ReLU and truncation.
//! Every function is batched over n elements; both parties call it with their own shares and
//! the same public parameters, the role coming from the [`OtSession`]. Boolean shares are
//! XOR shares (`bool`), arithmetic shares are `u64` values reduced mod 2^l.

use super::channel::OtChannel;
use super::iknp::{
    cot_receiver_extend, cot_receiver_finish, cot_sender_extend, recv_packed, send_packed,
};
use super::millionaire::millionaire;
use super::{OtError, OtSession, Role, check_batch, check_width, mask};

fn check_shares(x: &[u64], l: u32, what: &str) -> Result<(), OtError> {
    check_width(l, what)?;
    check_batch(x.len(), what)?;
    if x.iter().any(|&v| v & !mask(l) != 0) {
        return Err(OtError::Param(format!("{what}: share exceeds {l} bits")));
    }
    Ok(())
}

/// DReLU: XOR shares of 1{x >= 0}, x read as a signed l-bit value.
///
/// With x_P = msb_P 2^{l-1} + x'_P, MSB(x) = msb_A xor msb_B xor carry where
/// carry = 1{x'_A + x'_B >= 2^{l-1}} = 1{(2^{l-1} - 1 - x'_A) < x'_B}, computed by the
/// millionaire on l - 1 bits (A's input 2^{l-1} - 1 - x'_A, B's input x'_B). DReLU = 1 xor MSB.
/// Cost: [`super::sizes::drelu`] (l = 1: no messages).
pub fn drelu<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    m: u32,
) -> Result<Vec<bool>, OtError> {
    check_shares(x, l, "DReLU")?;
    let lo = l - 1;
    let inp: Vec<u64> = match sess.role {
        Role::A => x.iter().map(|&v| mask(lo) - (v & mask(lo))).collect(),
        Role::B => x.iter().map(|&v| v & mask(lo)).collect(),
    };
    let carry = millionaire(sess, ch, &inp, lo, m)?;
    let a = sess.role == Role::A;
    Ok(x.iter()
        .zip(carry)
        .map(|(&v, c)| ((v >> lo) & 1 == 1) ^ c ^ a)
        .collect())
}

/// B2A: arithmetic shares mod 2^l of b = b_A xor b_B, with one COT of l bits
/// (A sender with correlation b_A, B receiver with choice b_B):
/// b = b_A + b_B - 2 b_A b_B, A's share b_A + 2 x0, B's share b_B - 2 x_{b_B}.
/// Cost: [`super::sizes::b2a`].
pub fn b2a<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    b: &[bool],
    l: u32,
) -> Result<Vec<u64>, OtError> {
    check_width(l, "B2A")?;
    check_batch(b.len(), "B2A")?;
    let ml = mask(l);
    match sess.role {
        Role::A => {
            let deltas: Vec<u64> = b.iter().map(|&v| v as u64).collect();
            let x0 = sess.cot_send(ch, &deltas, l)?;
            Ok(b.iter()
                .zip(x0)
                .map(|(&v, x)| (v as u64).wrapping_add(x << 1) & ml)
                .collect())
        }
        Role::B => {
            let y = sess.cot_recv(ch, b, l)?;
            Ok(b.iter()
                .zip(y)
                .map(|(&v, y)| (v as u64).wrapping_sub(y << 1) & ml)
                .collect())
        }
    }
}

/// MUX: arithmetic shares of b x from XOR shares of b and arithmetic shares of x, with two
/// COTs of l bits run in parallel, one per direction. Party P is COT sender with correlation
/// (1 - 2 b_P) x_P and COT receiver with choice b_P; with s0 its sender output and r its
/// receiver output, its share is b_P x_P - s0 + r. Cost: [`super::sizes::mux`].
pub fn mux<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    b: &[bool],
    x: &[u64],
    l: u32,
) -> Result<Vec<u64>, OtError> {
    check_shares(x, l, "MUX")?;
    if b.len() != x.len() {
        return Err(OtError::Param(format!(
            "MUX: {} selector bits for {} values",
            b.len(),
            x.len()
        )));
    }
    let n = x.len();
    let ml = mask(l);
    let deltas: Vec<u64> = b
        .iter()
        .zip(x)
        .map(|(&bi, &xi)| if bi { xi.wrapping_neg() & ml } else { xi })
        .collect();
    let h = cot_receiver_extend(&mut sess.rcv, ch, b, l)?;
    let (s0, y) = cot_sender_extend(&mut sess.snd, ch, &deltas, l)?;
    send_packed(ch, &y, l)?;
    let yy = recv_packed(ch, n, l, "MUX: COT corrections")?;
    let r = cot_receiver_finish(&h, b, &yy, l);
    Ok((0..n)
        .map(|j| {
            let own = if b[j] { x[j] } else { 0 };
            own.wrapping_sub(s0[j]).wrapping_add(r[j]) & ml
        })
        .collect())
}

/// ReLU(x) = MUX(DReLU(x), x). Cost: [`super::sizes::relu`].
pub fn relu<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    m: u32,
) -> Result<Vec<u64>, OtError> {
    let d = drelu(sess, ch, x, l, m)?;
    mux(sess, ch, &d, x, l)
}

/// ReLU run by party A (the server). Same as [`relu`]; checks the session role.
pub fn relu_server<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    m: u32,
) -> Result<Vec<u64>, OtError> {
    relu_as(Role::A, sess, ch, x, l, m)
}

/// ReLU run by party B (the client). Same as [`relu`]; checks the session role.
pub fn relu_client<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    m: u32,
) -> Result<Vec<u64>, OtError> {
    relu_as(Role::B, sess, ch, x, l, m)
}

fn relu_as<C: OtChannel>(
    role: Role,
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    m: u32,
) -> Result<Vec<u64>, OtError> {
    if sess.role != role {
        return Err(OtError::Param(format!(
            "ReLU as party {role:?}: the session's role is {:?}",
            sess.role
        )));
    }
    relu(sess, ch, x, l, m)
}

/// Truncation by s bits (0 <= s < l) of values known to be non-negative (x < 2^{l-1}, e.g.
/// after ReLU). Output y with y = floor(x / 2^s) - c mod 2^l, c in {0, 1} (at most 1 LSB
/// error, downwards; c is the carry of the low s bits of the shares, which is not corrected).
///
/// x_A + x_B = x + w 2^l with wrap w = msb_A or msb_B (because x < 2^{l-1}). One COT of s bits
/// (A sender with correlation 1 - msb_A, B choice msb_B) gives shares mod 2^s of w, and
/// y_P = (x_P >> s) - w_P 2^{l-s} mod 2^l. Cost: [`super::sizes::trunc_pos`] (s = 0: no messages).
pub fn trunc_pos<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    s: u32,
) -> Result<Vec<u64>, OtError> {
    check_shares(x, l, "truncation")?;
    if s >= l {
        return Err(OtError::Param(format!(
            "truncation: shift {s} >= width {l}"
        )));
    }
    if s == 0 {
        return Ok(x.to_vec());
    }
    let ml = mask(l);
    let w = known_sign_wrap(sess, ch, x, l, s)?;
    Ok(x.iter()
        .zip(w)
        .map(|(&v, w)| (v >> s).wrapping_sub(w << (l - s)) & ml)
        .collect())
}

/// Shares mod 2^bits of the wrap w = msb_A or msb_B of l-bit shares of a value known to be
/// non-negative (x < 2^{l-1}).
fn known_sign_wrap<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    bits: u32,
) -> Result<Vec<u64>, OtError> {
    let msb: Vec<bool> = x.iter().map(|&v| (v >> (l - 1)) & 1 == 1).collect();
    or_shares(sess, ch, &msb, OrRing::Pow2(bits))
}

/// The ring that [`or_shares`] shares its result in.
#[derive(Clone, Copy)]
enum OrRing {
    Pow2(u32),
    Mod(u64),
}

/// Arithmetic shares of b_A or b_B from each party's own bit, with one COT (A sender with
/// correlation 1 - b_A, B receiver with choice b_B; A's share b_A - s0, B's
/// s0 + b_B (1 - b_A)), mod 2^bits or mod p.
fn or_shares<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    own: &[bool],
    ring: OrRing,
) -> Result<Vec<u64>, OtError> {
    let deltas = || own.iter().map(|&v| (!v) as u64).collect::<Vec<u64>>();
    Ok(match (sess.role, ring) {
        (Role::A, OrRing::Pow2(bits)) => {
            let s0 = sess.cot_send(ch, &deltas(), bits)?;
            own.iter()
                .zip(s0)
                .map(|(&v, s0)| (v as u64).wrapping_sub(s0))
                .collect()
        }
        (Role::A, OrRing::Mod(p)) => {
            let s0 = sess.cot_send_mod(ch, &deltas(), p)?;
            own.iter()
                .zip(s0)
                .map(|(&v, s0)| ((v as u128 + p as u128 - s0 as u128) % p as u128) as u64)
                .collect()
        }
        (Role::B, OrRing::Pow2(bits)) => sess.cot_recv(ch, own, bits)?,
        (Role::B, OrRing::Mod(p)) => sess.cot_recv_mod(ch, own, p)?,
    })
}

/// Lift of l-bit shares of a value known to be non-negative (x < 2^{l-1}) to l2 bits
/// (l < l2 <= 64), with the MSB known as in Cheetah's truncation: x_A + x_B = x + w 2^l with
/// the wrap w = msb_A or msb_B. One COT of l2 - l bits (A sender with correlation 1 - msb_A,
/// B choice msb_B) gives shares mod 2^{l2-l} of w, and y_P = x_P - w_P 2^l mod 2^{l2}.
/// Cost: [`super::sizes::lift_pos`].
pub fn lift_pos<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    l2: u32,
) -> Result<Vec<u64>, OtError> {
    check_shares(x, l, "lift")?;
    if l2 <= l || l2 > 64 {
        return Err(OtError::Param(format!(
            "lift: {l} -> {l2} bits is not a widening within 64 bits"
        )));
    }
    let m2 = mask(l2);
    let w = known_sign_wrap(sess, ch, x, l, l2 - l)?;
    Ok(x.iter()
        .zip(w)
        .map(|(&v, w)| v.wrapping_sub(w << l) & m2)
        .collect())
}

/// Shares mod 2^l of values known to be non-negative (x < 2^{l-1}, e.g. after a ReLU) to
/// shares mod a modulus p > 2^{l-1} (a CRT component, docs/protocol-reference.md 4.2, 4.3).
///
/// x_A + x_B = x + w 2^l with the wrap w = msb_A or msb_B (as in [`trunc_pos`]). One COT
/// mod p (A sender with correlation 1 - msb_A, B receiver with choice msb_B) gives shares
/// mod p of w, and y_P = x_P - w_P 2^l mod p. Cost: [`super::sizes::ring_to_mod`].
pub fn ring_to_mod<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    p: u64,
) -> Result<Vec<u64>, OtError> {
    check_shares(x, l, "conversion into Z_p")?;
    if l > 62 || p <= 1u64 << (l - 1) || p > super::iknp::MAX_COT_MODULUS {
        return Err(OtError::Param(format!(
            "conversion into Z_p: p = {p} must exceed 2^{} and be at most 2^62",
            l - 1
        )));
    }
    let pp = p as u128;
    let two_l = ((1u128 << l) % pp) as u64;
    let msb: Vec<bool> = x.iter().map(|&v| (v >> (l - 1)) & 1 == 1).collect();
    let w = or_shares(sess, ch, &msb, OrRing::Mod(p))?;
    Ok(x.iter()
        .zip(w)
        .map(|(&v, w)| {
            let sub = (w as u128 * two_l as u128) % pp;
            ((v as u128 % pp + pp - sub) % pp) as u64
        })
        .collect())
}

/// Shares mod an odd p of values v with 0 <= v <= (p - 1) / 2 to shares mod 2^l of v
/// (v < 2^l): the way back out of a CRT component.
///
/// With h = (p + 1) / 2 and m_P = [x_P >= h], x_A + x_B = v + w p with w = m_A or m_B:
/// both below h sum below p; both at or above h sum to at least p; exactly one above means
/// a sum of at least h, which v < h only reaches with the wrap. One COT of l bits (A sender
/// with correlation 1 - m_A, B choice m_B) gives shares mod 2^l of w, and
/// y_P = x_P - w_P p mod 2^l. A signed v in (-2^(l-1), 2^(l-1)) takes the offset 2^(l-1)
/// ([`signed_mod_to_ring`]). Cost: [`super::sizes::mod_to_ring`].
pub fn mod_to_ring<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    p: u64,
    l: u32,
) -> Result<Vec<u64>, OtError> {
    check_width(l, "conversion out of Z_p")?;
    check_batch(x.len(), "conversion out of Z_p")?;
    if p < 3 || p.is_multiple_of(2) || p > super::iknp::MAX_COT_MODULUS {
        return Err(OtError::Param(format!(
            "conversion out of Z_p: p = {p} must be odd, at least 3 and at most 2^62"
        )));
    }
    if x.iter().any(|&v| v >= p) {
        return Err(OtError::Param(format!(
            "conversion out of Z_p: a share is not below p = {p}"
        )));
    }
    let h = p.div_ceil(2);
    let ml = mask(l);
    let top: Vec<bool> = x.iter().map(|&v| v >= h).collect();
    let w = or_shares(sess, ch, &top, OrRing::Pow2(l))?;
    Ok(x.iter()
        .zip(w)
        .map(|(&v, w)| v.wrapping_sub(w.wrapping_mul(p)) & ml)
        .collect())
}

/// [`mod_to_ring`] for signed values v in [-2^(l-1), 2^(l-1)) held mod an odd
/// p > 2^(l+1): party A adds 2^(l-1) to its share mod p first, so the value lies in
/// [0, 2^l) below p / 2, and subtracts it from its share mod 2^l after. The output is v
/// mod 2^l, two's complement. Cost: [`super::sizes::mod_to_ring`].
pub fn signed_mod_to_ring<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    p: u64,
    l: u32,
) -> Result<Vec<u64>, OtError> {
    check_width(l, "conversion out of Z_p")?;
    if l > 61 || p <= 1u64 << (l + 1) {
        return Err(OtError::Param(format!(
            "conversion out of Z_p: signed {l}-bit values need p > 2^{}",
            l + 1
        )));
    }
    let off = 1u64 << (l - 1);
    let a = sess.role == Role::A;
    let shifted: Vec<u64> = if a {
        x.iter()
            .map(|&v| if v >= p { v } else { (v + off) % p })
            .collect()
    } else {
        x.to_vec()
    };
    let y = mod_to_ring(sess, ch, &shifted, p, l)?;
    Ok(if a {
        y.iter().map(|&v| v.wrapping_sub(off) & mask(l)).collect()
    } else {
        y
    })
}

/// Exact truncation by s bits (0 <= s < l) of values known to be non-negative
/// (x < 2^{l-1}): y = floor(x / 2^s) exactly.
///
/// y = (x_A >> s) + (x_B >> s) + c - w 2^{l-s} with the low carry
/// c = 1{(x_A mod 2^s) + (x_B mod 2^s) >= 2^s} (millionaire on s bits, A's input
/// 2^s - 1 - (x_A mod 2^s), B's input x_B mod 2^s) and the wrap w = msb_A or msb_B.
/// Then in one COT step (A sender, B receiver): a COT of s bits for w (as in [`trunc_pos`])
/// and a COT of l bits for B2A of c. Cost: [`super::sizes::trunc_pos_exact`].
pub fn trunc_pos_exact<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    s: u32,
    m: u32,
) -> Result<Vec<u64>, OtError> {
    check_shares(x, l, "exact truncation")?;
    if s >= l {
        return Err(OtError::Param(format!(
            "exact truncation: shift {s} >= width {l}"
        )));
    }
    if s == 0 {
        return Ok(x.to_vec());
    }
    let n = x.len();
    let ml = mask(l);
    let inp: Vec<u64> = match sess.role {
        Role::A => x.iter().map(|&v| mask(s) - (v & mask(s))).collect(),
        Role::B => x.iter().map(|&v| v & mask(s)).collect(),
    };
    let c = millionaire(sess, ch, &inp, s, m)?;
    let msb: Vec<bool> = x.iter().map(|&v| (v >> (l - 1)) & 1 == 1).collect();
    let (w, cc): (Vec<u64>, Vec<u64>) = match sess.role {
        Role::A => {
            let d1: Vec<u64> = msb.iter().map(|&v| (!v) as u64).collect();
            let d2: Vec<u64> = c.iter().map(|&v| v as u64).collect();
            let (s1, y1) = cot_sender_extend(&mut sess.snd, ch, &d1, s)?;
            let (s2, y2) = cot_sender_extend(&mut sess.snd, ch, &d2, l)?;
            send_packed(ch, &y1, s)?;
            send_packed(ch, &y2, l)?;
            (
                msb.iter()
                    .zip(s1)
                    .map(|(&v, s1)| (v as u64).wrapping_sub(s1))
                    .collect(),
                c.iter()
                    .zip(s2)
                    .map(|(&v, x0)| (v as u64).wrapping_add(x0 << 1))
                    .collect(),
            )
        }
        Role::B => {
            let h1 = cot_receiver_extend(&mut sess.rcv, ch, &msb, s)?;
            let h2 = cot_receiver_extend(&mut sess.rcv, ch, &c, l)?;
            let y1 = recv_packed(ch, n, s, "exact truncation: wrap COT corrections")?;
            let y2 = recv_packed(ch, n, l, "exact truncation: carry B2A corrections")?;
            let g1 = cot_receiver_finish(&h1, &msb, &y1, s);
            let g2 = cot_receiver_finish(&h2, &c, &y2, l);
            (
                g1,
                c.iter()
                    .zip(g2)
                    .map(|(&v, y)| (v as u64).wrapping_sub(y << 1))
                    .collect(),
            )
        }
    };
    Ok((0..n)
        .map(|j| {
            (x[j] >> s)
                .wrapping_add(cc[j])
                .wrapping_sub(w[j] << (l - s))
                & ml
        })
        .collect())
}

/// Ring extension of l-bit shares to l2-bit shares (l < l2 <= 64), SiRNN style
/// (Rathee et al., S&P 2021). Unsigned: x_A + x_B = x + w 2^l with the wrap
/// w = 1{(2^l - 1 - x_A) < x_B} (millionaire on l bits), then B2A of w in Z_{2^{l2-l}} and
/// y_P = x_P - w_P 2^l mod 2^{l2}. Signed (two's complement): A adds 2^{l-1} before and
/// subtracts it after. Cost: [`super::sizes::extend`].
pub fn extend<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    l: u32,
    l2: u32,
    signed: bool,
    m: u32,
) -> Result<Vec<u64>, OtError> {
    check_shares(x, l, "ring extension")?;
    check_width(l2, "ring extension")?;
    if l2 <= l {
        return Err(OtError::Param(format!(
            "ring extension: target width {l2} <= {l}"
        )));
    }
    let ml = mask(l);
    let a = sess.role == Role::A;
    let off = if signed { 1u64 << (l - 1) } else { 0 };
    let xs: Vec<u64> = x
        .iter()
        .map(|&v| if a { v.wrapping_add(off) & ml } else { v })
        .collect();
    let inp: Vec<u64> = xs.iter().map(|&v| if a { ml - v } else { v }).collect();
    let w = millionaire(sess, ch, &inp, l, m)?;
    let wa = b2a(sess, ch, &w, l2 - l)?;
    let m2 = mask(l2);
    Ok(xs
        .iter()
        .zip(wa)
        .map(|(&v, w)| {
            let y = v.wrapping_sub(w << l);
            (if a { y.wrapping_sub(off) } else { y }) & m2
        })
        .collect())
}

/// Max (and optionally argmax) of k values per element: `x[i * k + j]` is value j of element
/// i (signed l-bit, differences must not overflow: |x_j - x_j'| < 2^{l-1}). A binary tree
/// of k - 1 comparisons per element, one tree level for the whole batch at a time: for a pair
/// (a, b), d = a - b, s = DReLU(d) and max = b + MUX(s, d); the index is carried alongside
/// (A's share of index j is j, B's is 0) with the same selector. Returns (max, argmax) shares
/// mod 2^l; argmax is empty unless `with_index` (requires k <= 2^l).
/// Cost: [`super::sizes::max`].
#[allow(clippy::too_many_arguments)]
pub fn max<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    x: &[u64],
    k: usize,
    l: u32,
    m: u32,
    with_index: bool,
) -> Result<(Vec<u64>, Vec<u64>), OtError> {
    check_shares(x, l, "max")?;
    if k == 0 || !x.len().is_multiple_of(k) || (with_index && l < 64 && k as u64 > (1u64 << l)) {
        return Err(OtError::Param(format!(
            "max: {} values for k = {k} at width {l}",
            x.len()
        )));
    }
    let n = x.len() / k;
    let ml = mask(l);
    let a = sess.role == Role::A;
    let mut vals: Vec<Vec<u64>> = (0..k)
        .map(|j| (0..n).map(|i| x[i * k + j]).collect())
        .collect();
    let mut idx: Vec<Vec<u64>> = (0..k)
        .map(|j| vec![if a && with_index { j as u64 & ml } else { 0 }; n])
        .collect();
    while vals.len() > 1 {
        let kk = vals.len();
        let p = kk / 2;
        let mut d = Vec::with_capacity(p * n);
        for i in 0..p {
            d.extend(
                vals[2 * i]
                    .iter()
                    .zip(&vals[2 * i + 1])
                    .map(|(&u, &v)| u.wrapping_sub(v) & ml),
            );
        }
        let sel = drelu(sess, ch, &d, l, m)?;
        let mut mx = d.clone();
        let mut sx = sel.clone();
        if with_index {
            for i in 0..p {
                mx.extend(
                    idx[2 * i]
                        .iter()
                        .zip(&idx[2 * i + 1])
                        .map(|(&u, &v)| u.wrapping_sub(v) & ml),
                );
            }
            sx.extend_from_slice(&sel);
        }
        let z = mux(sess, ch, &sx, &mx, l)?;
        let mut nv = Vec::with_capacity(p + 1);
        let mut ni = Vec::with_capacity(p + 1);
        for i in 0..p {
            nv.push(
                (0..n)
                    .map(|e| vals[2 * i + 1][e].wrapping_add(z[i * n + e]) & ml)
                    .collect::<Vec<u64>>(),
            );
            if with_index {
                let o = p * n + i * n;
                ni.push(
                    (0..n)
                        .map(|e| idx[2 * i + 1][e].wrapping_add(z[o + e]) & ml)
                        .collect::<Vec<u64>>(),
                );
            } else {
                ni.push(Vec::new());
            }
        }
        if kk % 2 == 1 {
            nv.push(std::mem::take(&mut vals[kk - 1]));
            ni.push(std::mem::take(&mut idx[kk - 1]));
        }
        vals = nv;
        idx = ni;
    }
    let mx = vals.pop().unwrap_or_default();
    let ix = if with_index {
        idx.pop().unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok((mx, ix))
}
