//! 1-out-of-N OT with N = 2^m from m 1-of-2 random OTs per instance
//! (Naor–Pinkas "Oblivious transfer and polynomial evaluation", STOC 1999, construction
//! from log N 1-of-2 OTs; used for the leaves of the CrypTFlow2 millionaire, CCS 2020).
//!
//! Instance k uses the IKNP ROTs with hash indices j_{k,b}, b = 0..m-1, where the receiver's
//! choice bit for OT b is bit b of its choice c. For each OT the sender holds the two
//! 128-bit rows (q, q xor s) and the receiver the row t = q xor c_b s. Each row x is expanded
//! by the random oracle into a pad string F_x = SHA-256(tag, dom, j, ctr, x), ctr = 0, 1, ...
//! of N r bits; the key of message i is
//!   K_i = XOR_b  slice_i( F_{row of OT b selected by bit b of i} ),
//! slice_i = bits [i r, (i+1) r). The receiver can compute only K_c: every other K_i contains
//! slice i of a pad of a row it does not know, and slice i is used by no other key.
//!
//! Bits sent per instance: receiver -> sender 128 m (u-matrix rows, see [`super::iknp`]),
//! sender -> receiver N r (all masked messages c_i = msg_i xor K_i). Over a batch of n,
//! with packing: 128 ceil(n m / 8) and ceil(n N r / 8) bytes ([`super::sizes::nchoose1`]).

use super::channel::OtChannel;
use super::iknp::{CHUNK, recv_packed};
use super::{OtError, OtSession, check_batch, mask, prg};

/// Largest supported m (N = 256 messages per instance).
pub const MAX_M: u32 = 8;

fn check(m: u32, r: u32) -> Result<(), OtError> {
    if m == 0 || m > MAX_M {
        return Err(OtError::Param(format!(
            "1-of-N OT: m = {m} not in 1..={MAX_M}"
        )));
    }
    if r == 0 || r > 64 {
        return Err(OtError::Param(format!(
            "1-of-N OT: message width {r} not in 1..=64"
        )));
    }
    Ok(())
}

/// Sender of n instances: `msgs[k * 2^m + i]` is message i of instance k (low r bits used).
/// Receives the u-matrix, then sends the masked messages.
pub fn send<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    msgs: &[u64],
    n: usize,
    m: u32,
    r: u32,
) -> Result<(), OtError> {
    let nn = 1usize << m.min(MAX_M);
    if msgs.len() != n * nn {
        return Err(OtError::Param(format!(
            "1-of-N OT: {} messages given, {} needed",
            msgs.len(),
            n * nn
        )));
    }
    let ct = send_compute(sess, ch, n, m, r, |k, i| msgs[k * nn + i])?;
    send_masked(ch, &ct)
}

/// Sender, first half: receive the u-matrix (only receives) and return the packed masked
/// messages (one buffer per [`super::iknp::CHUNK`] messages), message i of instance k
/// given by `msg(k, i)`. Send them with [`send_masked`].
pub fn send_compute<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    n: usize,
    m: u32,
    r: u32,
    msg: impl Fn(usize, usize) -> u64,
) -> Result<Vec<Vec<u8>>, OtError> {
    check(m, r)?;
    check_batch(n * m as usize, "1-of-N OT")?;
    let nn = 1usize << m;
    let (s, dom) = (sess.snd.delta(), sess.snd.domain());
    let nbytes = (nn * r as usize).div_ceil(8);
    let mw = m as usize;
    let mut pads = vec![0u8; 2 * mw * nbytes];
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(CHUNK.min(n * nn));
    // Fast path for N r <= 128: all keys of an instance as one u128, slot i = bits [i r, (i+1) r);
    // sel[b] has the slots i with bit b of i set.
    let small = nn * r as usize <= 128;
    let sel: Vec<u128> = (0..mw)
        .map(|b| {
            (0..nn).filter(|i| (i >> b) & 1 == 1).fold(0u128, |acc, i| {
                acc | ((mask(r) as u128) << (i * r as usize))
            })
        })
        .collect();
    let mut rows: Vec<(u64, u128)> = Vec::with_capacity(mw);
    let mut k = 0usize;
    sess.snd.extend_with(ch, n * mw, |_, idx, q| {
        rows.push((idx, q));
        if rows.len() < mw {
            return;
        }
        if small {
            let mut keys = 0u128;
            for (&(idx, q), &sb) in rows.iter().zip(sel.iter()) {
                let p0 = u128::from_le_bytes(first16(&prg::crh_wide(dom, idx, 0, q)));
                let p1 = u128::from_le_bytes(first16(&prg::crh_wide(dom, idx, 0, q ^ s)));
                keys ^= (p0 & !sb) | (p1 & sb);
            }
            for i in 0..nn {
                let key = (keys >> (i * r as usize)) as u64;
                cur.push((msg(k, i) ^ key) & mask(r));
                if cur.len() == CHUNK {
                    out.push(prg::pack(&cur, r));
                    cur.clear();
                }
            }
        } else {
            for (b, &(idx, q)) in rows.iter().enumerate() {
                let off = 2 * b * nbytes;
                prg::crh_stream(dom, idx, q, &mut pads[off..off + nbytes]);
                prg::crh_stream(dom, idx, q ^ s, &mut pads[off + nbytes..off + 2 * nbytes]);
            }
            for i in 0..nn {
                let mut key = 0u64;
                for b in 0..mw {
                    let off = (2 * b + ((i >> b) & 1)) * nbytes;
                    key ^= prg::get_bits(&pads[off..off + nbytes], i * r as usize, r);
                }
                cur.push((msg(k, i) ^ key) & mask(r));
                if cur.len() == CHUNK {
                    out.push(prg::pack(&cur, r));
                    cur.clear();
                }
            }
        }
        rows.clear();
        k += 1;
    })?;
    if !cur.is_empty() {
        out.push(prg::pack(&cur, r));
    }
    Ok(out)
}

/// Sender, second half: send the buffers from [`send_compute`].
pub fn send_masked<C: OtChannel>(ch: &mut C, ct: &[Vec<u8>]) -> Result<(), OtError> {
    for c in ct {
        ch.send_msg(c)?;
    }
    ch.flush()
}

fn first16(d: &[u8; 32]) -> [u8; 16] {
    let mut o = [0u8; 16];
    o.copy_from_slice(&d[..16]);
    o
}

/// Receiver state between sending the u-matrix and receiving the masked messages.
pub struct RecvPending {
    /// Key K_c of each instance.
    keys: Vec<u64>,
    choices: Vec<u64>,
    m: u32,
    r: u32,
}

/// Receiver, first half: send the u-matrix for choices (each < 2^m) and derive the keys of
/// the chosen r-bit messages. Only sends.
pub fn recv_start<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    choices: &[u64],
    m: u32,
    r: u32,
) -> Result<RecvPending, OtError> {
    check(m, r)?;
    let n = choices.len();
    check_batch(n * m as usize, "1-of-N OT")?;
    let mut bits = Vec::with_capacity(n * m as usize);
    for &c in choices {
        if c >> m != 0 {
            return Err(OtError::Param(format!("1-of-N OT: choice {c} >= 2^{m}")));
        }
        for b in 0..m {
            bits.push((c >> b) & 1 == 1);
        }
    }
    let nn = 1usize << m;
    let mw = m as usize;
    let nbytes = (nn * r as usize).div_ceil(8);
    let dom = sess.rcv.domain();
    let mut pad = vec![0u8; nbytes];
    let mut keys = Vec::with_capacity(n);
    let mut key = 0u64;
    sess.rcv.extend_with(ch, &bits, |j, idx, t| {
        let k = j / mw;
        let c = choices.get(k).copied().unwrap_or(0) as usize;
        prg::crh_stream(dom, idx, t, &mut pad);
        key ^= prg::get_bits(&pad, c * r as usize, r);
        if j % mw == mw - 1 {
            keys.push(key);
            key = 0;
        }
    })?;
    Ok(RecvPending {
        keys,
        choices: choices.to_vec(),
        m,
        r,
    })
}

/// Receiver, second half: receive the n 2^m masked r-bit messages and unmask the chosen ones.
pub fn recv_finish<C: OtChannel>(ch: &mut C, p: RecvPending) -> Result<Vec<u64>, OtError> {
    let n = p.choices.len();
    let nn = 1usize << p.m;
    let ct = recv_packed(ch, n * nn, p.r, "1-of-N OT: masked messages")?;
    Ok(p.choices
        .iter()
        .zip(p.keys.iter())
        .enumerate()
        .map(|(k, (&c, &key))| {
            (ct.get(k * nn + c as usize).copied().unwrap_or(0) ^ key) & mask(p.r)
        })
        .collect())
}

/// Receiver: both halves.
pub fn recv<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    choices: &[u64],
    m: u32,
    r: u32,
) -> Result<Vec<u64>, OtError> {
    let p = recv_start(sess, ch, choices, m, r)?;
    recv_finish(ch, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::sizes;
    use crate::ot::tests::{measured, rng, run2};
    use rand_core::RngCore;

    #[test]
    fn one_of_n_correct_and_sized() {
        let mut rg = rng();
        for &(m, r) in &[(1u32, 1u32), (2, 2), (4, 2), (4, 13), (3, 64), (8, 2)] {
            for &n in &[1usize, 7, 1000] {
                let nn = 1usize << m;
                let msgs: Vec<u64> = (0..n * nn).map(|_| rg.next_u64() & mask(r)).collect();
                let ch: Vec<u64> = (0..n).map(|_| rg.next_u64() & mask(m)).collect();
                // A sender
                let (mc, cc) = (msgs.clone(), ch.clone());
                let (((), ca), (got, cb)) = run2(
                    move |s, c| send(s, c, &mc, n, m, r).unwrap(),
                    move |s, c| recv(s, c, &cc, m, r).unwrap(),
                );
                for k in 0..n {
                    assert_eq!(got[k], msgs[k * nn + ch[k] as usize]);
                }
                assert_eq!(
                    measured(&ca, &cb),
                    sizes::nchoose1(n as u64, m, r),
                    "m={m} r={r} n={n}"
                );
                if n == 7 {
                    // B sender
                    let (mc, cc) = (msgs.clone(), ch.clone());
                    let ((got, ca), ((), cb)) = run2(
                        move |s, c| recv(s, c, &cc, m, r).unwrap(),
                        move |s, c| send(s, c, &mc, n, m, r).unwrap(),
                    );
                    for k in 0..n {
                        assert_eq!(got[k], msgs[k * nn + ch[k] as usize]);
                    }
                    assert_eq!(
                        measured(&ca, &cb),
                        sizes::nchoose1_plan(n as u64, m, r).swapped().cost()
                    );
                }
            }
        }
    }
}
