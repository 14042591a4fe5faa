//! Boolean AND (Beaver) triples from random OT, and AND of XOR-shared bits.
//!
//! Each party P picks a random choice bit y_P and acts as ROT receiver with it, and as ROT
//! sender obtains random 1-bit messages (m0, m1) (the low bits of the IKNP ROT keys); it sets
//! a_P = m0 xor m1, b_P = y_P. The receiver of the ROT whose sender is P learns
//! m0 xor y a_P, so the two ROTs (one per direction) give XOR shares of the cross terms
//! a_A b_B and a_B b_A, and c_P = a_P b_P xor m0_P xor (received bit) satisfies
//! c_A xor c_B = (a_A xor a_B)(b_A xor b_B). Both ROTs run in one step: 128 ceil(n/8) bytes
//! each way for n triples ([`super::sizes::and_triples`]).
//!
//! AND of XOR-shared x, y with a triple (a, b, c): both open d = x xor a, e = y xor b
//! (2 bits each way per gate, one step), and z_P = c_P xor d b_P xor e a_P (xor d e for A).

use super::channel::OtChannel;
use super::iknp::{recv_packed, send_packed};
use super::{OtError, OtSession, Role, check_batch};

/// XOR shares of n AND triples: (a xor a') (b xor b') = c xor c' across the parties.
#[derive(Clone, Default)]
pub struct Triples {
    /// Share of a.
    pub a: Vec<bool>,
    /// Share of b.
    pub b: Vec<bool>,
    /// Share of c = a b.
    pub c: Vec<bool>,
}

/// State between the two halves of triple generation.
pub struct TriplePending {
    /// Low bits of the receiver's ROT keys H(j, t_j).
    rb: Vec<bool>,
    y: Vec<bool>,
}

/// First half: act as ROT receiver with random choices (only sends the u-matrix).
pub fn triples_start<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    n: usize,
) -> Result<TriplePending, OtError> {
    check_batch(n, "AND triples")?;
    let y = sess.random_bools(n);
    let dom = sess.rcv.domain();
    let mut rb = Vec::with_capacity(n);
    sess.rcv.extend_with(ch, &y, |_, idx, t| {
        rb.push(super::prg::crh(dom, idx, t) & 1 == 1)
    })?;
    Ok(TriplePending { rb, y })
}

/// Second half: act as ROT sender (only receives the peer's u-matrix) and combine.
pub fn triples_finish<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    p: TriplePending,
) -> Result<Triples, OtError> {
    let n = p.y.len();
    let (s, dom) = (sess.snd.delta(), sess.snd.domain());
    let mut out = Triples {
        a: Vec::with_capacity(n),
        b: p.y,
        c: Vec::with_capacity(n),
    };
    let (ys, rbs) = (&out.b, &p.rb);
    let (av, cv) = (&mut out.a, &mut out.c);
    sess.snd.extend_with(ch, n, |j, idx, q| {
        let m0 = super::prg::crh(dom, idx, q) & 1 == 1;
        let m1 = super::prg::crh(dom, idx, q ^ s) & 1 == 1;
        let a = m0 ^ m1;
        let b = ys.get(j).copied().unwrap_or(false);
        let rb = rbs.get(j).copied().unwrap_or(false);
        av.push(a);
        cv.push((a & b) ^ m0 ^ rb);
    })?;
    Ok(out)
}

/// Generate n triples (both halves, one step).
pub fn triples<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    n: usize,
) -> Result<Triples, OtError> {
    let p = triples_start(sess, ch, n)?;
    triples_finish(sess, ch, p)
}

/// AND gates z = x y on XOR shares, consuming the triples t.a[off..off+n] etc.
/// One step, ceil(2n/8) bytes each way ([`super::sizes::and_gates`]).
pub fn and_gates<C: OtChannel>(
    role: Role,
    ch: &mut C,
    x: &[bool],
    y: &[bool],
    t: &Triples,
    off: usize,
) -> Result<Vec<bool>, OtError> {
    let n = x.len();
    if y.len() != n || off + n > t.a.len() || t.b.len() != t.a.len() || t.c.len() != t.a.len() {
        return Err(OtError::Param(format!(
            "AND gates: {n} gates, {} triples from offset {off}",
            t.a.len()
        )));
    }
    let (ta, tb, tc) = (&t.a[off..off + n], &t.b[off..off + n], &t.c[off..off + n]);
    let mut open = Vec::with_capacity(2 * n);
    open.extend(x.iter().zip(ta).map(|(&x, &a)| (x ^ a) as u64));
    open.extend(y.iter().zip(tb).map(|(&y, &b)| (y ^ b) as u64));
    send_packed(ch, &open, 1)?;
    let peer = recv_packed(ch, 2 * n, 1, "AND gates: openings")?;
    let mut z = Vec::with_capacity(n);
    for j in 0..n {
        let d = (open[j] ^ peer[j]) == 1;
        let e = (open[n + j] ^ peer[n + j]) == 1;
        z.push(tc[j] ^ (d & tb[j]) ^ (e & ta[j]) ^ (role == Role::A && d && e));
    }
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::sizes;
    use crate::ot::tests::{bools, measured, rng, run2};

    #[test]
    fn triples_and_gates_correct_and_sized() {
        let mut r = rng();
        for &n in &[1usize, 7, 1000, 70000] {
            let ((ta, ca), (tb, cb)) = run2(
                move |s, c| triples(s, c, n).unwrap(),
                move |s, c| triples(s, c, n).unwrap(),
            );
            for j in 0..n {
                assert_eq!((ta.a[j] ^ tb.a[j]) & (ta.b[j] ^ tb.b[j]), ta.c[j] ^ tb.c[j]);
            }
            // not degenerate
            if n >= 1000 {
                assert!(ta.a.iter().zip(&tb.a).filter(|(x, y)| *x ^ *y).count() > n / 4);
            }
            assert_eq!(measured(&ca, &cb), sizes::and_triples(n as u64));
            let (xa, xb, ya, yb) = (
                bools(&mut r, n),
                bools(&mut r, n),
                bools(&mut r, n),
                bools(&mut r, n),
            );
            let (xa2, ya2, xb2, yb2) = (xa.clone(), ya.clone(), xb.clone(), yb.clone());
            let ((za, ca), (zb, cb)) = run2(
                move |s, c| {
                    let t = triples(s, c, n).unwrap();
                    c.reset_counters();
                    and_gates(Role::A, c, &xa2, &ya2, &t, 0).unwrap()
                },
                move |s, c| {
                    let t = triples(s, c, n).unwrap();
                    c.reset_counters();
                    and_gates(Role::B, c, &xb2, &yb2, &t, 0).unwrap()
                },
            );
            for j in 0..n {
                assert_eq!(za[j] ^ zb[j], (xa[j] ^ xb[j]) & (ya[j] ^ yb[j]));
            }
            assert_eq!(measured(&ca, &cb), sizes::and_gates(n as u64));
        }
    }
}
