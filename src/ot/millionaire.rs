//! Millionaire comparison, CrypTFlow2 (Rathee et al., CCS 2020), Algorithm 1.
//!
//! Party A holds x, party B holds y, both `bits`-bit unsigned; the output is XOR shares of
//! 1{x < y}. The inputs are split into q = ceil(bits / m) digits of m bits (the most
//! significant digit may be shorter), least significant first. For every digit j, A picks
//! random bits (lt_A, eq_A) and acts as sender of a 1-out-of-2^{m_j} OT whose message v is
//! (lt_A xor 1{x_j < v}, eq_A xor 1{x_j = v}) (2 bits); B receives with choice y_j and holds
//! shares of lt_j = 1{x_j < y_j}, eq_j = 1{x_j = y_j}. The digits are then combined in a
//! binary tree, low node L and high node H:
//!   lt = lt_H xor (eq_H and lt_L),   eq = eq_H and eq_L,
//! (the xor is exact because lt_H and eq_H are never both 1), using AND triples. The eq of
//! any node containing the least significant digit is never needed and is not computed.
//! All AND triples are generated up front in the same step as the leaf OTs' u-matrix, and
//! each tree level costs one step for the whole batch, so rounds do not grow with n.
//! Cost: [`super::sizes::millionaire`].

use super::channel::OtChannel;
use super::triples::{Triples, and_gates, triples_finish, triples_start};
use super::{OtError, OtSession, Role, check_batch, mask, nchoose1, sizes};

/// Largest supported digit size.
pub const MAX_DIGIT: u32 = nchoose1::MAX_M;

/// XOR shares of 1{x < y} for each element: A passes x, B passes y (values < 2^bits,
/// 0 <= bits <= 64), digit size 1 <= m <= 8. bits = 0 returns shares of 0 without messages.
pub fn millionaire<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    input: &[u64],
    bits: u32,
    m: u32,
) -> Result<Vec<bool>, OtError> {
    if bits > 64 || m == 0 || m > MAX_DIGIT {
        return Err(OtError::Param(format!(
            "millionaire: bits = {bits} (<= 64), m = {m} (1..={MAX_DIGIT})"
        )));
    }
    let n = input.len();
    check_batch(n, "millionaire")?;
    if input.iter().any(|&v| v & !mask(bits) != 0) {
        return Err(OtError::Param(format!(
            "millionaire: input exceeds {bits} bits"
        )));
    }
    let ds = sizes::digits(bits, m);
    if n == 0 || ds.is_empty() {
        return Ok(vec![false; n]);
    }
    let levels = sizes::tree_levels(ds.len() as u32);
    let t_count = levels.iter().sum::<u64>() as usize * n;
    let digit = |v: u64, j: usize| (v >> (m as usize * j)) & mask(ds[j]);

    let mut lt: Vec<Vec<bool>> = Vec::with_capacity(ds.len());
    let mut eq: Vec<Vec<bool>> = Vec::with_capacity(ds.len());
    let trip: Triples;
    match sess.role {
        Role::A => {
            let tp = if t_count > 0 {
                Some(triples_start(sess, ch, t_count)?)
            } else {
                None
            };
            trip = match tp {
                Some(p) => triples_finish(sess, ch, p)?,
                None => Triples::default(),
            };
            let mut cts = Vec::with_capacity(ds.len());
            for (j, &mj) in ds.iter().enumerate() {
                let lta = sess.random_bools(n);
                let eqa = sess.random_bools(n);
                let ct = nchoose1::send_compute(sess, ch, n, mj, 2, |k, v| {
                    let xj = digit(input[k], j);
                    let l = lta[k] ^ (xj < v as u64);
                    let e = eqa[k] ^ (xj == v as u64);
                    (l as u64) | ((e as u64) << 1)
                })?;
                cts.push(ct);
                lt.push(lta);
                eq.push(eqa);
            }
            for ct in &cts {
                nchoose1::send_masked(ch, ct)?;
            }
        }
        Role::B => {
            let tp = if t_count > 0 {
                Some(triples_start(sess, ch, t_count)?)
            } else {
                None
            };
            let mut pend = Vec::with_capacity(ds.len());
            for (j, &mj) in ds.iter().enumerate() {
                let ys: Vec<u64> = input.iter().map(|&y| digit(y, j)).collect();
                pend.push(nchoose1::recv_start(sess, ch, &ys, mj, 2)?);
            }
            trip = match tp {
                Some(p) => triples_finish(sess, ch, p)?,
                None => Triples::default(),
            };
            for p in pend {
                let out = nchoose1::recv_finish(ch, p)?;
                lt.push(out.iter().map(|&v| v & 1 == 1).collect());
                eq.push(out.iter().map(|&v| v & 2 == 2).collect());
            }
        }
    }

    // Tree combine, one AND step per level.
    let mut off = 0usize;
    while lt.len() > 1 {
        let k = lt.len();
        let p = k / 2;
        let mut x = Vec::with_capacity((2 * p - 1) * n);
        let mut y = Vec::with_capacity((2 * p - 1) * n);
        for i in 0..p {
            x.extend_from_slice(&eq[2 * i + 1]);
            y.extend_from_slice(&lt[2 * i]);
        }
        for i in 1..p {
            x.extend_from_slice(&eq[2 * i + 1]);
            y.extend_from_slice(&eq[2 * i]);
        }
        let z = and_gates(sess.role, ch, &x, &y, &trip, off)?;
        off += x.len();
        let mut nlt = Vec::with_capacity(p + 1);
        let mut neq = Vec::with_capacity(p + 1);
        for i in 0..p {
            let zi = &z[i * n..(i + 1) * n];
            nlt.push(
                lt[2 * i + 1]
                    .iter()
                    .zip(zi)
                    .map(|(&a, &b)| a ^ b)
                    .collect::<Vec<bool>>(),
            );
            if i == 0 {
                neq.push(Vec::new());
            } else {
                let s = (p + i - 1) * n;
                neq.push(z[s..s + n].to_vec());
            }
        }
        if k % 2 == 1 {
            nlt.push(std::mem::take(&mut lt[k - 1]));
            neq.push(std::mem::take(&mut eq[k - 1]));
        }
        lt = nlt;
        eq = neq;
    }
    Ok(lt.pop().unwrap_or_else(|| vec![false; n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::tests::{measured, rng, run2};
    use rand_core::RngCore;

    #[test]
    fn millionaire_correct_and_sized() {
        let mut r = rng();
        for &bits in &[0u32, 1, 2, 4, 5, 8, 13, 16, 31, 37, 63, 64] {
            for &m in &[1u32, 2, 4, 8] {
                for &n in &[1usize, 7, 1000] {
                    if n == 1000 && m != 4 && bits > 16 {
                        continue;
                    }
                    let mut x: Vec<u64> = (0..n).map(|_| r.next_u64() & mask(bits)).collect();
                    let mut y: Vec<u64> = (0..n).map(|_| r.next_u64() & mask(bits)).collect();
                    if n >= 7 {
                        // edges: equal, 0 vs max, max vs 0, x = y - 1, equal high digits
                        x[0] = y[0];
                        x[1] = 0;
                        y[1] = mask(bits);
                        x[2] = mask(bits);
                        y[2] = 0;
                        x[3] = y[3].saturating_sub(1);
                        x[4] = (y[4] & !1) | (!y[4] & 1) & mask(bits);
                    }
                    let (xc, yc) = (x.clone(), y.clone());
                    let ((sa, ca), (sb, cb)) = run2(
                        move |s, c| millionaire(s, c, &xc, bits, m).unwrap(),
                        move |s, c| millionaire(s, c, &yc, bits, m).unwrap(),
                    );
                    for j in 0..n {
                        assert_eq!(
                            sa[j] ^ sb[j],
                            x[j] < y[j],
                            "bits={bits} m={m} x={} y={}",
                            x[j],
                            y[j]
                        );
                    }
                    assert_eq!(
                        measured(&ca, &cb),
                        sizes::millionaire(n as u64, bits, m),
                        "bits={bits} m={m} n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn millionaire_rounds_independent_of_batch() {
        let a = sizes::millionaire(1, 31, 4);
        let b = sizes::millionaire(1 << 20, 31, 4);
        assert_eq!(a.rounds, b.rounds);
        assert_eq!(a.flights, b.flights);
    }
}
