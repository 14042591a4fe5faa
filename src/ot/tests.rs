//! Two-party tests: correctness against plaintext, measured bytes/rounds == sizes,
//! corrupted and truncated messages, dead peers.

use super::channel::{Counters, MemChannel, OtChannel, TamperChannel, mem_pair, mem_pair_timeout};
use super::sizes::{self, Cost};
use super::{OtError, OtSession, Role, mask};
use rand_core::RngCore;
use std::time::Duration;

pub(crate) const WIDTHS: [u32; 9] = [1, 2, 5, 8, 13, 16, 31, 37, 64];
pub(crate) const SIZES: [usize; 3] = [1, 7, 1000];

/// Run party A and party B on a fresh in-memory pair after the base-OT setup; return both
/// results and the counters of the protocol run only (setup excluded).
pub(crate) fn run2<RA: Send, RB: Send>(
    fa: impl FnOnce(&mut OtSession, &mut MemChannel) -> RA + Send,
    fb: impl FnOnce(&mut OtSession, &mut MemChannel) -> RB + Send,
) -> ((RA, Counters), (RB, Counters)) {
    let (mut ca, mut cb) = mem_pair();
    std::thread::scope(|sc| {
        let ha = sc.spawn(move || {
            let mut s = OtSession::setup(&mut ca, Role::A).expect("setup A");
            ca.reset_counters();
            let r = fa(&mut s, &mut ca);
            (r, ca.counters())
        });
        let hb = sc.spawn(move || {
            let mut s = OtSession::setup(&mut cb, Role::B).expect("setup B");
            cb.reset_counters();
            let r = fb(&mut s, &mut cb);
            (r, cb.counters())
        });
        (ha.join().expect("thread A"), hb.join().expect("thread B"))
    })
}

/// Like [`run2`] with arbitrary channels (e.g. tampering wrappers); no counters.
pub(crate) fn run2_ch<CA: OtChannel + Send, CB: OtChannel + Send, RA: Send, RB: Send>(
    mut ca: CA,
    mut cb: CB,
    fa: impl FnOnce(&mut OtSession, &mut CA) -> RA + Send,
    fb: impl FnOnce(&mut OtSession, &mut CB) -> RB + Send,
) -> (RA, RB) {
    std::thread::scope(|sc| {
        let ha = sc.spawn(move || {
            let mut s = OtSession::setup(&mut ca, Role::A).expect("setup A");
            fa(&mut s, &mut ca)
        });
        let hb = sc.spawn(move || {
            let mut s = OtSession::setup(&mut cb, Role::B).expect("setup B");
            fb(&mut s, &mut cb)
        });
        (ha.join().expect("thread A"), hb.join().expect("thread B"))
    })
}

/// Measured cost from the two endpoints' counters.
pub(crate) fn measured(a: &Counters, b: &Counters) -> Cost {
    assert_eq!(a.bytes_sent, b.bytes_recv);
    assert_eq!(b.bytes_sent, a.bytes_recv);
    Cost {
        bytes_a_to_b: a.bytes_sent,
        bytes_b_to_a: b.bytes_sent,
        rounds: a.rounds.max(b.rounds),
        flights: a.flights.max(b.flights),
    }
}

pub(crate) fn rng() -> rand_chacha::ChaCha20Rng {
    super::prg::os_rng().expect("os rng")
}

/// Random l-bit values including the edge values 0, -1, min signed, max signed.
/// Values below 2^(l-1) (non-negative as signed l-bit), with 0 and 2^(l-1) - 1 first.
pub(crate) fn nonneg_values(r: &mut impl RngCore, n: usize, l: u32) -> Vec<u64> {
    let mut x: Vec<u64> = values(r, n, l).iter().map(|&v| v & mask(l - 1)).collect();
    if n > 1 {
        x[0] = 0;
        x[1] = mask(l - 1);
    }
    x
}

pub(crate) fn values(r: &mut impl RngCore, n: usize, l: u32) -> Vec<u64> {
    let m = mask(l);
    let edges = [0u64, m, 1u64 << (l - 1), m >> 1, 1];
    (0..n)
        .map(|i| {
            if i < edges.len() && n > 1 {
                edges[i] & m
            } else {
                r.next_u64() & m
            }
        })
        .collect()
}

/// Split values into random additive shares mod 2^l.
pub(crate) fn share(r: &mut impl RngCore, x: &[u64], l: u32) -> (Vec<u64>, Vec<u64>) {
    let m = mask(l);
    let a: Vec<u64> = x.iter().map(|_| r.next_u64() & m).collect();
    let b = x
        .iter()
        .zip(a.iter())
        .map(|(&x, &a)| x.wrapping_sub(a) & m)
        .collect();
    (a, b)
}

pub(crate) fn bools(r: &mut impl RngCore, n: usize) -> Vec<bool> {
    (0..n).map(|_| r.next_u32() & 1 == 1).collect()
}

#[test]
fn setup_cost_matches_sizes() {
    let (mut ca, mut cb) = mem_pair();
    let (a, b) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| {
            OtSession::setup(&mut ca, Role::A).unwrap();
            ca.counters()
        });
        let hb = sc.spawn(|| {
            OtSession::setup(&mut cb, Role::B).unwrap();
            cb.counters()
        });
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_eq!(measured(&a, &b), sizes::base_setup());
}

#[test]
fn rot_cot_ot_correct_and_sized() {
    let mut r = rng();
    for &n in &[0usize, 1, 7, 1000, 70000] {
        for sender in [Role::A, Role::B] {
            // ROT
            let ch = bools(&mut r, n);
            let chc = ch.clone();
            let run_s = move |s: &mut OtSession, c: &mut MemChannel| s.rot_send(c, n).unwrap();
            let run_r = move |s: &mut OtSession, c: &mut MemChannel| s.rot_recv(c, &chc).unwrap();
            let (pairs, got, ca, cb) = if sender == Role::A {
                let ((p, ca), (g, cb)) = run2(run_s, run_r);
                (p, g, ca, cb)
            } else {
                let ((g, ca), (p, cb)) = run2(run_r, run_s);
                (p, g, ca, cb)
            };
            for j in 0..n {
                assert_eq!(got[j], if ch[j] { pairs[j].1 } else { pairs[j].0 });
                assert_ne!(pairs[j].0, pairs[j].1);
            }
            let want = if sender == Role::A {
                sizes::rot_plan(n as u64)
            } else {
                sizes::rot_plan(n as u64).swapped()
            };
            assert_eq!(measured(&ca, &cb), want.cost(), "rot n={n}");
        }
        for &l in &[1u32, 5, 13, 37, 64] {
            if n == 70000 && l != 13 {
                continue;
            }
            // COT, A sender
            let ch = bools(&mut r, n);
            let deltas: Vec<u64> = (0..n).map(|_| r.next_u64() & mask(l)).collect();
            let (dc, cc) = (deltas.clone(), ch.clone());
            let ((x0, ca), (xr, cb)) = run2(
                move |s, c| s.cot_send(c, &dc, l).unwrap(),
                move |s, c| s.cot_recv(c, &cc, l).unwrap(),
            );
            for j in 0..n {
                let want = if ch[j] {
                    x0[j].wrapping_add(deltas[j]) & mask(l)
                } else {
                    x0[j]
                };
                assert_eq!(xr[j], want);
                assert_eq!(x0[j] & !mask(l), 0);
            }
            assert_eq!(
                measured(&ca, &cb),
                sizes::cot(n as u64, l),
                "cot n={n} l={l}"
            );
            // COT, B sender
            let (dc, cc) = (deltas.clone(), ch.clone());
            let ((xr, ca), (x0, cb)) = run2(
                move |s, c| s.cot_recv(c, &cc, l).unwrap(),
                move |s, c| s.cot_send(c, &dc, l).unwrap(),
            );
            for j in 0..n {
                let want = if ch[j] {
                    x0[j].wrapping_add(deltas[j]) & mask(l)
                } else {
                    x0[j]
                };
                assert_eq!(xr[j], want);
            }
            assert_eq!(
                measured(&ca, &cb),
                sizes::cot_plan(n as u64, l).swapped().cost()
            );
            // chosen OT, both senders
            let msgs: Vec<(u64, u64)> = (0..n)
                .map(|_| (r.next_u64() & mask(l), r.next_u64() & mask(l)))
                .collect();
            let (mc, cc) = (msgs.clone(), ch.clone());
            let ((got, ca), ((), cb)) = run2(
                move |s, c| s.ot_recv(c, &cc, l).unwrap(),
                move |s, c| s.ot_send(c, &mc, l).unwrap(),
            );
            for j in 0..n {
                assert_eq!(got[j], if ch[j] { msgs[j].1 } else { msgs[j].0 });
            }
            assert_eq!(
                measured(&ca, &cb),
                sizes::ot_plan(n as u64, l).swapped().cost(),
                "ot n={n} l={l}"
            );
            let (mc, cc) = (msgs.clone(), ch.clone());
            let (((), ca), (got, cb)) = run2(
                move |s, c| s.ot_send(c, &mc, l).unwrap(),
                move |s, c| s.ot_recv(c, &cc, l).unwrap(),
            );
            for j in 0..n {
                assert_eq!(got[j], if ch[j] { msgs[j].1 } else { msgs[j].0 });
            }
            assert_eq!(measured(&ca, &cb), sizes::ot(n as u64, l), "ot n={n} l={l}");
        }
    }
}

#[test]
fn corrupted_u_matrix_changes_output() {
    // B's messages: 0 = base point, 1 = base points, 2 = first u-matrix.
    // Flipping bit j of column i changes the sender's q_j exactly when s_i = 1 (probability
    // 1/2), so one bit is flipped in each of 40 columns, each in a different OT j = 3 + i:
    // the wrong outputs must be a non-empty subset of the tampered OTs (fails w.p. 2^-40).
    let n = 1000;
    let mut r = rng();
    let ch = bools(&mut r, n);
    let (ca, cb) = mem_pair();
    let cb = TamperChannel::new(cb, |i, m: &mut Vec<u8>| {
        if i == 2 {
            let cbytes = 1000usize.div_ceil(8);
            for c in 0..40usize {
                let j = 3 + c;
                m[c * cbytes + j / 8] ^= 1 << (j % 8);
            }
        }
    });
    let chc = ch.clone();
    let (pairs, got) = run2_ch(
        ca,
        cb,
        move |s, c| s.rot_send(c, n).unwrap(),
        move |s, c| s.rot_recv(c, &chc).unwrap(),
    );
    let wrong: Vec<usize> = (0..n)
        .filter(|&j| got[j] != if ch[j] { pairs[j].1 } else { pairs[j].0 })
        .collect();
    assert!(!wrong.is_empty(), "corruption not detected");
    assert!(wrong.iter().all(|&j| (3..43).contains(&j)), "{wrong:?}");
}

#[test]
fn corrupted_cot_correction_changes_output() {
    let (n, l) = (7usize, 16u32);
    let mut r = rng();
    let ch = vec![true; n];
    let deltas: Vec<u64> = (0..n).map(|_| r.next_u64() & mask(l)).collect();
    let (ca, cb) = mem_pair();
    // A's messages: 0, 1 setup; 2 = COT corrections.
    let ca = TamperChannel::new(ca, |i, m: &mut Vec<u8>| {
        if i == 2 {
            m[4] ^= 0x10; // bit 36: OT 2, bit 4
        }
    });
    let (dc, cc) = (deltas.clone(), ch.clone());
    let (x0, xr) = run2_ch(
        ca,
        cb,
        move |s, c| s.cot_send(c, &dc, l).unwrap(),
        move |s, c| s.cot_recv(c, &cc, l).unwrap(),
    );
    let wrong: Vec<usize> = (0..n)
        .filter(|&j| xr[j] != x0[j].wrapping_add(deltas[j]) & mask(l))
        .collect();
    assert_eq!(wrong, vec![2]);
}

#[test]
fn truncated_u_matrix_is_named_error() {
    let (ca, cb) = mem_pair();
    let cb = TamperChannel::new(cb, |i, m: &mut Vec<u8>| {
        if i == 2 {
            m.truncate(12);
        }
    });
    let (ra, _rb) = run2_ch(
        ca,
        cb,
        |s, c| s.rot_send(c, 256).map(|_| ()),
        |s, c| s.rot_recv(c, &[false; 256]).map(|_| ()),
    );
    let e = ra.expect_err("must fail");
    assert_eq!(
        e.to_string(),
        "IKNP extension: expected 4096 bytes of u-matrix, got 12"
    );
}

#[test]
fn dead_peer_times_out() {
    let (mut ca, cb) = mem_pair_timeout(Duration::from_millis(300));
    // peer alive but silent: timeout
    let t = std::time::Instant::now();
    let e = ca.recv_msg(10, "COT: corrections").expect_err("timeout");
    assert!(matches!(e, OtError::Timeout { .. }), "{e}");
    assert!(e.to_string().starts_with("COT: corrections"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // peer gone: closed
    drop(cb);
    let e = ca
        .recv_msg(10, "IKNP extension: u-matrix")
        .expect_err("closed");
    assert!(matches!(e, OtError::Closed { .. }), "{e}");
    // peer that disappears in the middle of a protocol
    let (mut ca, mut cb) = mem_pair_timeout(Duration::from_secs(1));
    let h = std::thread::spawn(move || {
        let _ = OtSession::setup(&mut cb, Role::B);
        std::thread::sleep(Duration::from_secs(4));
        drop(cb);
    });
    let mut s = OtSession::setup(&mut ca, Role::A).unwrap();
    let e = s
        .rot_send(&mut ca, 100)
        .map(|_| ())
        .expect_err("must time out");
    assert!(matches!(e, OtError::Timeout { .. }), "{e}");
    h.join().unwrap();
}

/// Run a full ReLU where the message with index `idx` sent by `who` (0, 1 = base-OT setup)
/// is truncated by one byte; return both parties' results.
fn relu_with_truncation(
    who: Role,
    idx: u64,
) -> (Result<Vec<u64>, OtError>, Result<Vec<u64>, OtError>) {
    let cut = move |i: u64, msg: &mut Vec<u8>| {
        if i == idx {
            msg.pop();
        }
    };
    relu_tampered(who, 7, cut).1
}

/// Both parties' results of a run.
type PairResult = (Result<Vec<u64>, OtError>, Result<Vec<u64>, OtError>);

/// A ReLU of n values at l = 16 with `who`'s outgoing messages passed through `cut`: the
/// plaintext input, and both parties' results.
fn relu_tampered(
    who: Role,
    n: usize,
    cut: impl FnMut(u64, &mut Vec<u8>) + Send,
) -> (Vec<u64>, PairResult) {
    let (l, m) = (16u32, 4u32);
    let mut r = rng();
    let x = values(&mut r, n, l);
    let x_plain = x.clone();
    let (xa, xb) = share(&mut r, &x, l);
    let (ca, cb) = mem_pair_timeout(Duration::from_secs(10));
    fn party<C: OtChannel>(
        mut c: C,
        role: Role,
        x: Vec<u64>,
        l: u32,
        m: u32,
    ) -> Result<Vec<u64>, OtError> {
        let mut s = OtSession::setup(&mut c, role)?;
        super::arith::relu(&mut s, &mut c, &x, l, m)
    }
    let out = std::thread::scope(|sc| match who {
        Role::A => {
            let ha = sc.spawn(move || party(TamperChannel::new(ca, cut), Role::A, xa, l, m));
            let hb = sc.spawn(move || party(cb, Role::B, xb, l, m));
            (ha.join().expect("A"), hb.join().expect("B"))
        }
        Role::B => {
            let ha = sc.spawn(move || party(ca, Role::A, xa, l, m));
            let hb = sc.spawn(move || party(TamperChannel::new(cb, cut), Role::B, xb, l, m));
            (ha.join().expect("A"), hb.join().expect("B"))
        }
    });
    (x_plain, out)
}

/// A corrupted message anywhere in a ReLU run (base OTs included, every bit of it inverted),
/// from either party, never goes unnoticed: a party fails with an error, or the
/// reconstructed output differs from the plaintext ReLU. (A single flipped bit can go
/// unnoticed, and may: the protocols are semi-honest, and a wrong leaf of the millionaire's
/// tree is overridden whenever a higher digit decides; a run with bit 0 of byte 0 flipped
/// left the output of 7 elements unchanged for 7 of the 9 messages of each party; with 256
/// elements, in one of the first six runs of this test one inverted message (B's fourth)
/// changed no output, so each message gets three runs with fresh randomness.)
#[test]
fn a_corrupted_message_anywhere_in_relu_is_caught() {
    let (l, n) = (16u32, 256usize);
    // Messages each party sends in a clean run of this size.
    let sent = |who: Role| {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let c = count.clone();
        let (x, (a, b)) = relu_tampered(who, n, move |_, _| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(x.len(), n);
        assert!(a.is_ok() && b.is_ok(), "a clean run");
        count.load(std::sync::atomic::Ordering::Relaxed)
    };
    let (msgs_a, msgs_b) = (sent(Role::A), sent(Role::B));
    assert!(msgs_a >= 9 && msgs_b >= 9, "{msgs_a} {msgs_b}");
    let mut silent = Vec::new();
    for (who, msgs) in [(Role::A, msgs_a), (Role::B, msgs_b)] {
        for idx in 0..msgs {
            let flip = move |i: u64, msg: &mut Vec<u8>| {
                if i == idx {
                    msg.iter_mut().for_each(|b| *b ^= 0xff);
                }
            };
            // Fresh randomness per try: a corruption that happens to leave every output right
            // in one run (some messages, such as a correction of AND-triple bits, can turn
            // into another valid value) must still be caught in one of three runs.
            let caught = (0..3).any(|_| {
                let (x, (ra, rb)) = relu_tampered(who, n, flip);
                match (ra, rb) {
                    (Ok(ya), Ok(yb)) => {
                        let want: Vec<u64> = x
                            .iter()
                            .map(|&v| if v >> (l - 1) & 1 == 1 { 0 } else { v })
                            .collect();
                        let got: Vec<u64> = ya
                            .iter()
                            .zip(&yb)
                            .map(|(a, b)| a.wrapping_add(*b) & mask(l))
                            .collect();
                        got != want
                    }
                    _ => true,
                }
            });
            if !caught {
                silent.push((who, idx));
            }
        }
    }
    assert!(silent.is_empty(), "flips with no effect: {silent:?}");
}

#[test]
fn truncated_message_anywhere_in_relu_is_a_named_error() {
    let (l, n, m) = (16u32, 7usize, 4u32);
    let x = vec![0u64; n];
    let (xa, xb) = (x.clone(), x);
    let ((_, ca), (_, cb)) = run2(
        move |s, c| super::arith::relu(s, c, &xa, l, m).unwrap(),
        move |s, c| super::arith::relu(s, c, &xb, l, m).unwrap(),
    );
    let mut steps = std::collections::BTreeSet::new();
    for (who, count) in [(Role::A, ca.msgs_sent), (Role::B, cb.msgs_sent)] {
        for idx in 0..count + 2 {
            let (ra, rb) = relu_with_truncation(who, idx);
            let victim = if who == Role::A { rb } else { ra };
            match victim {
                Err(e @ OtError::Length { .. }) => {
                    let s = e.to_string();
                    assert!(s.contains("expected") && s.contains("got"), "{s}");
                    steps.insert(s.split(':').next().unwrap_or("").to_string());
                }
                other => panic!(
                    "{who:?} message {idx}: expected a length error, got {:?}",
                    other.map(|_| ())
                ),
            }
        }
    }
    for want in [
        "base OT setup",
        "IKNP extension",
        "1-of-N OT",
        "AND gates",
        "MUX",
    ] {
        assert!(steps.contains(want), "{want} missing from {steps:?}");
    }
}

/// Tests of [`super::arith`].
mod arith_tests {
    use super::*;
    use crate::ot::arith::*;
    use proptest::prelude::*;

    fn signed(v: u64, l: u32) -> i128 {
        let v = v & mask(l);
        if l < 64 && v >> (l - 1) == 1 {
            v as i128 - (1i128 << l)
        } else if l == 64 {
            v as i64 as i128
        } else {
            v as i128
        }
    }

    fn relu_plain(v: u64, l: u32) -> u64 {
        if signed(v, l) >= 0 { v } else { 0 }
    }

    fn check_relu(x: &[u64], l: u32, m: u32) -> (Vec<u64>, sizes::Cost) {
        let mut r = rng();
        let (xa, xb) = share(&mut r, x, l);
        let ((ya, ca), (yb, cb)) = run2(
            move |s, c| relu_server(s, c, &xa, l, m).unwrap(),
            move |s, c| relu_client(s, c, &xb, l, m).unwrap(),
        );
        (
            ya.iter()
                .zip(&yb)
                .map(|(&a, &b)| a.wrapping_add(b) & mask(l))
                .collect(),
            measured(&ca, &cb),
        )
    }

    #[test]
    fn drelu_relu_all_widths() {
        let mut r = rng();
        for &l in &WIDTHS {
            for &n in &SIZES {
                let x = values(&mut r, n, l);
                let (xa, xb) = share(&mut r, &x, l);
                let ((da, ca), (db, cb)) = run2(
                    move |s, c| drelu(s, c, &xa, l, 4).unwrap(),
                    move |s, c| drelu(s, c, &xb, l, 4).unwrap(),
                );
                for j in 0..n {
                    assert_eq!(da[j] ^ db[j], signed(x[j], l) >= 0, "l={l} x={}", x[j]);
                }
                assert_eq!(
                    measured(&ca, &cb),
                    sizes::drelu(n as u64, l, 4),
                    "drelu l={l} n={n}"
                );
                let (y, cost) = check_relu(&x, l, 4);
                for j in 0..n {
                    assert_eq!(y[j], relu_plain(x[j], l), "relu l={l} x={}", x[j]);
                }
                assert_eq!(cost, sizes::relu(n as u64, l, 4), "relu l={l} n={n}");
            }
        }
        // other digit sizes
        for &m in &[1u32, 2, 3, 8] {
            let x = values(&mut r, 7, 16);
            let (y, cost) = check_relu(&x, 16, m);
            for j in 0..7 {
                assert_eq!(y[j], relu_plain(x[j], 16));
            }
            assert_eq!(cost, sizes::relu(7, 16, m));
        }
    }

    #[test]
    fn b2a_mux_all_widths() {
        let mut r = rng();
        for &l in &WIDTHS {
            for &n in &SIZES {
                let b = bools(&mut r, n);
                let (ba, bb): (Vec<bool>, Vec<bool>) = {
                    let a = bools(&mut r, n);
                    let bb = a.iter().zip(&b).map(|(&a, &b)| a ^ b).collect();
                    (a, bb)
                };
                let (ba2, bb2) = (ba.clone(), bb.clone());
                let ((ya, ca), (yb, cb)) = run2(
                    move |s, c| b2a(s, c, &ba2, l).unwrap(),
                    move |s, c| b2a(s, c, &bb2, l).unwrap(),
                );
                for j in 0..n {
                    assert_eq!(
                        ya[j].wrapping_add(yb[j]) & mask(l),
                        b[j] as u64,
                        "b2a l={l}"
                    );
                }
                assert_eq!(
                    measured(&ca, &cb),
                    sizes::b2a(n as u64, l),
                    "b2a l={l} n={n}"
                );
                let x = values(&mut r, n, l);
                let (xa, xb) = share(&mut r, &x, l);
                let ((ya, ca), (yb, cb)) = run2(
                    move |s, c| mux(s, c, &ba, &xa, l).unwrap(),
                    move |s, c| mux(s, c, &bb, &xb, l).unwrap(),
                );
                for j in 0..n {
                    assert_eq!(
                        ya[j].wrapping_add(yb[j]) & mask(l),
                        if b[j] { x[j] } else { 0 },
                        "mux l={l}"
                    );
                }
                assert_eq!(
                    measured(&ca, &cb),
                    sizes::mux(n as u64, l),
                    "mux l={l} n={n}"
                );
            }
        }
    }

    #[test]
    fn trunc_pos_error_at_most_one_lsb() {
        let mut r = rng();
        for &l in &WIDTHS {
            for s in [0u32, 1, 3, l / 2, l - 1] {
                if s >= l {
                    continue;
                }
                for &n in &SIZES {
                    let x = nonneg_values(&mut r, n, l);
                    let (xa, xb) = share(&mut r, &x, l);
                    let ((ya, ca), (yb, cb)) = run2(
                        move |se, c| trunc_pos(se, c, &xa, l, s).unwrap(),
                        move |se, c| trunc_pos(se, c, &xb, l, s).unwrap(),
                    );
                    let mut off_by_one = 0;
                    for j in 0..n {
                        let y = ya[j].wrapping_add(yb[j]) & mask(l);
                        let exact = x[j] >> s;
                        assert!(
                            y == exact || y == exact.wrapping_sub(1) & mask(l),
                            "l={l} s={s} x={} y={y}",
                            x[j]
                        );
                        off_by_one += (y != exact) as usize;
                    }
                    if s == 0 {
                        assert_eq!(off_by_one, 0);
                    }
                    assert_eq!(
                        measured(&ca, &cb),
                        sizes::trunc_pos(n as u64, l, s),
                        "trunc l={l} s={s} n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn corrupted_mux_correction_is_detected() {
        use crate::ot::channel::{TamperChannel, mem_pair};
        use crate::ot::tests::run2_ch;
        let (n, l) = (7usize, 13u32);
        let mut r = rng();
        let x = values(&mut r, n, l);
        let (xa, xb) = share(&mut r, &x, l);
        let b = vec![true; n]; // b_A = 0, b_B = 1: B (choice 1) uses A's COT corrections
        let (ca, cb) = mem_pair();
        // A's messages: 0, 1 setup; 2 = u-matrix (as receiver); 3 = COT corrections.
        let ca = TamperChannel::new(ca, |i, msg: &mut Vec<u8>| {
            if i == 3 {
                msg[0] ^= 1;
            }
        });
        let (ba, bb) = (vec![false; n], b.clone());
        let (ya, yb) = run2_ch(
            ca,
            cb,
            move |s, c| mux(s, c, &ba, &xa, l).unwrap(),
            move |s, c| mux(s, c, &bb, &xb, l).unwrap(),
        );
        let y: Vec<u64> = ya
            .iter()
            .zip(&yb)
            .map(|(&a, &b)| a.wrapping_add(b) & mask(l))
            .collect();
        assert_ne!(y, x, "corruption must change the output");
        assert_eq!(&y[1..], &x[1..]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
        #[test]
        fn prop_relu_b2a_mux(l in 1u32..=64, seed in proptest::collection::vec(any::<u64>(), 1..12), bits in any::<u64>()) {
            let n = seed.len();
            let x: Vec<u64> = seed.iter().map(|&v| v & mask(l)).collect();
            let b: Vec<bool> = (0..n).map(|j| (bits >> (j % 64)) & 1 == 1).collect();
            let mut r = rng();
            let (xa, xb) = share(&mut r, &x, l);
            let ra = bools(&mut r, n);
            let rb: Vec<bool> = ra.iter().zip(&b).map(|(&a, &b)| a ^ b).collect();
            let ((oa, _), (ob, _)) = run2(
                move |s, c| {
                    let y = relu(s, c, &xa, l, 4).unwrap();
                    let z = b2a(s, c, &ra, l).unwrap();
                    let w = mux(s, c, &ra, &xa, l).unwrap();
                    (y, z, w)
                },
                move |s, c| {
                    let y = relu(s, c, &xb, l, 4).unwrap();
                    let z = b2a(s, c, &rb, l).unwrap();
                    let w = mux(s, c, &rb, &xb, l).unwrap();
                    (y, z, w)
                },
            );
            for j in 0..n {
                prop_assert_eq!(oa.0[j].wrapping_add(ob.0[j]) & mask(l), relu_plain(x[j], l));
                prop_assert_eq!(oa.1[j].wrapping_add(ob.1[j]) & mask(l), b[j] as u64);
                prop_assert_eq!(oa.2[j].wrapping_add(ob.2[j]) & mask(l), if b[j] { x[j] } else { 0 });
            }
        }
    }
}

/// Tests of the optional arithmetic protocols (exact truncation, ring extension, max/argmax).
mod arith_extra_tests {
    use super::*;
    use crate::ot::arith::*;

    fn sgn(v: u64, l: u32) -> i128 {
        let v = v & mask(l);
        if v >> (l - 1) == 1 {
            v as i128 - (1i128 << l)
        } else {
            v as i128
        }
    }

    fn open(a: &[u64], b: &[u64], l: u32) -> Vec<u64> {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| x.wrapping_add(y) & mask(l))
            .collect()
    }

    #[test]
    fn lift_pos_is_exact() {
        let mut r = rng();
        for &(l, l2) in &[(2u32, 3u32), (5, 18), (13, 19), (21, 25), (32, 64)] {
            for &n in &SIZES {
                let x = nonneg_values(&mut r, n, l);
                let (xa, xb) = share(&mut r, &x, l);
                let ((ya, ca), (yb, cb)) = run2(
                    move |se, c| lift_pos(se, c, &xa, l, l2).unwrap(),
                    move |se, c| lift_pos(se, c, &xb, l, l2).unwrap(),
                );
                assert_eq!(open(&ya, &yb, l2), x, "l={l} l2={l2}");
                // One COT of l2 - l bits per element: B's u-matrix column and A's message.
                let c = measured(&ca, &cb);
                assert_eq!(c, sizes::lift_pos(n as u64, l, l2), "l={l} l2={l2} n={n}");
                assert_eq!(c.bytes_a_to_b, (n as u64 * (l2 - l) as u64).div_ceil(8));
            }
        }
    }

    /// Shares mod p of `x` (each below p): A's uniform, B's the rest.
    fn share_mod(r: &mut impl RngCore, x: &[u64], p: u64) -> (Vec<u64>, Vec<u64>) {
        let a: Vec<u64> = x.iter().map(|_| r.next_u64() % p).collect();
        let b = x.iter().zip(&a).map(|(&v, &a)| (v + p - a) % p).collect();
        (a, b)
    }

    /// The CRT components the model picks (crt_moduli: primes above 2^(l+1)) and edge
    /// moduli around them.
    const MOD_CASES: [(u32, u64); 6] = [
        (2, 11),
        (5, 67),
        (13, 16411),
        (18, 524309),
        (21, 4194319),
        (40, 2199023255579),
    ];

    #[test]
    fn ring_to_mod_is_exact() {
        let mut r = rng();
        for &(l, p) in &MOD_CASES {
            for &n in &SIZES {
                let x = nonneg_values(&mut r, n, l);
                let (xa, xb) = share(&mut r, &x, l);
                let ((ya, ca), (yb, cb)) = run2(
                    move |se, c| ring_to_mod(se, c, &xa, l, p).unwrap(),
                    move |se, c| ring_to_mod(se, c, &xb, l, p).unwrap(),
                );
                assert!(ya.iter().chain(&yb).all(|&v| v < p), "l={l} p={p}");
                let open: Vec<u64> = ya.iter().zip(&yb).map(|(&a, &b)| (a + b) % p).collect();
                assert_eq!(open, x, "l={l} p={p}");
                let c = measured(&ca, &cb);
                assert_eq!(c, sizes::ring_to_mod(n as u64, p), "l={l} p={p} n={n}");
                let bits = crate::ot::iknp::mod_bits(p) as u64;
                assert_eq!(c.bytes_a_to_b, (n as u64 * bits).div_ceil(8));
            }
        }
    }

    #[test]
    fn signed_mod_to_ring_is_exact() {
        let mut r = rng();
        for &(l, p) in &MOD_CASES {
            for &n in &SIZES {
                // Signed l-bit values, the extremes first, held mod p.
                let mut v: Vec<i64> = values(&mut r, n, l)
                    .iter()
                    .map(|&u| ((u << (64 - l)) as i64) >> (64 - l))
                    .collect();
                if n > 1 {
                    v[0] = -(1i64 << (l - 1));
                    v[1] = (1i64 << (l - 1)) - 1;
                }
                let held: Vec<u64> = v.iter().map(|&s| s.rem_euclid(p as i64) as u64).collect();
                let (xa, xb) = share_mod(&mut r, &held, p);
                let ((ya, ca), (yb, cb)) = run2(
                    move |se, c| signed_mod_to_ring(se, c, &xa, p, l).unwrap(),
                    move |se, c| signed_mod_to_ring(se, c, &xb, p, l).unwrap(),
                );
                let want: Vec<u64> = v.iter().map(|&s| s as u64 & mask(l)).collect();
                assert_eq!(open(&ya, &yb, l), want, "l={l} p={p}");
                let c = measured(&ca, &cb);
                assert_eq!(c, sizes::mod_to_ring(n as u64, l), "l={l} p={p} n={n}");
                assert_eq!(c.bytes_a_to_b, (n as u64 * l as u64).div_ceil(8));
            }
        }
    }

    #[test]
    fn conversions_refuse_what_they_cannot_do() {
        let ((a, _), _) = run2(
            |se, c| {
                // p not above 2^(l+1): the offset value would reach p / 2.
                let e1 = signed_mod_to_ring(se, c, &[1], 33, 5).unwrap_err();
                // an even p, and a share not below p
                let e2 = mod_to_ring(se, c, &[1], 64, 5).unwrap_err();
                let e3 = mod_to_ring(se, c, &[70], 67, 5).unwrap_err();
                // p not above 2^(l-1) on the way in
                let e4 = ring_to_mod(se, c, &[1], 8, 127).unwrap_err();
                [e1, e2, e3, e4].map(|e| e.to_string())
            },
            |_, _| (),
        );
        assert!(a[0].contains("p > 2^6"), "{}", a[0]);
        assert!(a[1].contains("odd"), "{}", a[1]);
        assert!(a[2].contains("not below p"), "{}", a[2]);
        assert!(a[3].contains("exceed 2^7"), "{}", a[3]);
    }

    #[test]
    fn a_correction_not_below_p_is_refused() {
        // A's messages: 0, 1 setup; 2 = the COT corrections, 5 bits each for p = 17: all
        // ones is 31 >= 17, which the receiver must refuse rather than reduce.
        let (ca, cb) = mem_pair();
        let ca = TamperChannel::new(ca, |i, m: &mut Vec<u8>| {
            if i == 2 {
                m.iter_mut().for_each(|b| *b = 0xff);
            }
        });
        let (_, rb) = run2_ch(
            ca,
            cb,
            |s, c| s.cot_send_mod(c, &[1, 2, 3], 17).map(|_| ()),
            |s, c| s.cot_recv_mod(c, &[true, false, true], 17),
        );
        let e = rb.unwrap_err().to_string();
        assert!(e.contains("not below p = 17"), "{e}");
    }

    #[test]
    fn trunc_pos_exact_is_exact() {
        let mut r = rng();
        for &l in &WIDTHS {
            for s in [0u32, 1, 4, l / 2, l - 1] {
                if s >= l {
                    continue;
                }
                for &n in &SIZES {
                    let x = nonneg_values(&mut r, n, l);
                    let (xa, xb) = share(&mut r, &x, l);
                    let ((ya, ca), (yb, cb)) = run2(
                        move |se, c| trunc_pos_exact(se, c, &xa, l, s, 4).unwrap(),
                        move |se, c| trunc_pos_exact(se, c, &xb, l, s, 4).unwrap(),
                    );
                    let y = open(&ya, &yb, l);
                    for j in 0..n {
                        assert_eq!(y[j], x[j] >> s, "l={l} s={s} x={}", x[j]);
                    }
                    assert_eq!(
                        measured(&ca, &cb),
                        sizes::trunc_pos_exact(n as u64, l, s, 4),
                        "l={l} s={s} n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn ring_extension_signed_and_unsigned() {
        let mut r = rng();
        for &(l, l2) in &[
            (1u32, 2u32),
            (2, 5),
            (8, 16),
            (13, 37),
            (16, 64),
            (31, 32),
            (37, 64),
        ] {
            for &n in &SIZES {
                for signed in [false, true] {
                    let x = values(&mut r, n, l);
                    let (xa, xb) = share(&mut r, &x, l);
                    let ((ya, ca), (yb, cb)) = run2(
                        move |se, c| extend(se, c, &xa, l, l2, signed, 4).unwrap(),
                        move |se, c| extend(se, c, &xb, l, l2, signed, 4).unwrap(),
                    );
                    let y = open(&ya, &yb, l2);
                    for j in 0..n {
                        let want = if signed {
                            (sgn(x[j], l) as i64 as u64) & mask(l2)
                        } else {
                            x[j]
                        };
                        assert_eq!(y[j], want, "l={l} l2={l2} signed={signed} x={}", x[j]);
                    }
                    assert_eq!(
                        measured(&ca, &cb),
                        sizes::extend(n as u64, l, l2, 4),
                        "l={l} l2={l2} n={n}"
                    );
                }
            }
        }
    }

    #[test]
    fn max_and_argmax() {
        let mut r = rng();
        for &l in &[2u32, 5, 8, 16, 37, 64] {
            for &k in &[1usize, 2, 3, 5, 8] {
                if (k as u64) > (1u64 << l.min(63)) {
                    continue;
                }
                for &n in &[1usize, 7, 100] {
                    // values in [-2^{l-2}, 2^{l-2}) so differences do not overflow
                    let x: Vec<u64> = (0..n * k)
                        .map(|_| {
                            let v = (r.next_u64() & mask(l - 1)) as i128 - (1i128 << (l - 2));
                            (v as i64 as u64) & mask(l)
                        })
                        .collect();
                    let (xa, xb) = share(&mut r, &x, l);
                    let ((oa, ca), (ob, cb)) = run2(
                        move |se, c| max(se, c, &xa, k, l, 4, true).unwrap(),
                        move |se, c| max(se, c, &xb, k, l, 4, true).unwrap(),
                    );
                    let mx = open(&oa.0, &ob.0, l);
                    let ix = open(&oa.1, &ob.1, l);
                    for i in 0..n {
                        let row: Vec<i128> = (0..k).map(|j| sgn(x[i * k + j], l)).collect();
                        let best = *row.iter().max().unwrap_or(&0);
                        assert_eq!(sgn(mx[i], l), best, "l={l} k={k}");
                        assert_eq!(row[ix[i] as usize], best, "argmax l={l} k={k}");
                    }
                    assert_eq!(
                        measured(&ca, &cb),
                        sizes::max(n as u64, k as u64, l, 4, true),
                        "l={l} k={k} n={n}"
                    );
                }
            }
        }
        // max only
        let x: Vec<u64> = vec![3, 9, 1, 0, 2, 7];
        let (xa, xb) = share(&mut r, &x, 8);
        let ((oa, ca), (ob, cb)) = run2(
            move |se, c| max(se, c, &xa, 3, 8, 4, false).unwrap(),
            move |se, c| max(se, c, &xb, 3, 8, 4, false).unwrap(),
        );
        assert_eq!(open(&oa.0, &ob.0, 8), vec![9, 7]);
        assert!(oa.1.is_empty());
        assert_eq!(measured(&ca, &cb), sizes::max(2, 3, 8, 4, false));
    }
}
