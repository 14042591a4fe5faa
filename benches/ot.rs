//! The OT stack (src/ot) as the non-linear verify runs it: both parties as two threads over
//! the in-memory channel, after the base-OT setup. The baseline in the same run is 2^16
//! random OTs of the IKNP extension; the ReLU and extension rows are ratios to it (a ReLU at
//! l = 16 takes 4 x 4 + 1 + 2 x 4 + ... OTs per element, see `ot::sizes`).

use criterion::{Criterion, criterion_group, criterion_main};
use hequant::ot::{MemChannel, OtSession, Role, arith, mem_pair};

const N: usize = 1 << 16;

/// Sets up a session pair and runs `fa` / `fb` on every iteration.
fn pair_bench(
    c: &mut Criterion,
    name: &str,
    fa: impl Fn(&mut OtSession, &mut MemChannel) + Send + Sync,
    fb: impl Fn(&mut OtSession, &mut MemChannel) + Send + Sync,
) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let (mut ca, mut cb) = mem_pair();
            std::thread::scope(|s| {
                let fa = &fa;
                let fb = &fb;
                let ha = s.spawn(move || {
                    let mut sa = OtSession::setup(&mut ca, Role::A).expect("setup");
                    let t = std::time::Instant::now();
                    for _ in 0..iters {
                        fa(&mut sa, &mut ca);
                    }
                    t.elapsed()
                });
                let hb = s.spawn(move || {
                    let mut sb = OtSession::setup(&mut cb, Role::B).expect("setup");
                    for _ in 0..iters {
                        fb(&mut sb, &mut cb);
                    }
                });
                hb.join().expect("party B");
                ha.join().expect("party A")
            })
        })
    });
}

fn bench(c: &mut Criterion) {
    let choices: Vec<bool> = (0..N)
        .map(|i| (i * 2_654_435_761usize) >> 7 & 1 == 1)
        .collect();
    let xa: Vec<u64> = (0..N as u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xffff)
        .collect();
    let xb: Vec<u64> = (0..N as u64)
        .map(|i| i.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) & 0xffff)
        .collect();
    pair_bench(
        c,
        "baseline: 2^16 IKNP random OTs",
        |s, ch| drop(s.rot_send(ch, N).expect("rot")),
        |s, ch| drop(s.rot_recv(ch, &choices).expect("rot")),
    );
    pair_bench(
        c,
        "2^16 ReLUs at l = 16 (DReLU + MUX)",
        |s, ch| drop(arith::relu(s, ch, &xa, 16, 4).expect("relu")),
        |s, ch| drop(arith::relu(s, ch, &xb, 16, 4).expect("relu")),
    );
    pair_bench(
        c,
        "2^16 ReLUs at l = 21 then extension to 25 bits",
        |s, ch| {
            let y = arith::relu(s, ch, &xa, 21, 4).expect("relu");
            drop(arith::extend(s, ch, &y, 21, 25, false, 4).expect("extend"))
        },
        |s, ch| {
            let y = arith::relu(s, ch, &xb, 21, 4).expect("relu");
            drop(arith::extend(s, ch, &y, 21, 25, false, 4).expect("extend"))
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
