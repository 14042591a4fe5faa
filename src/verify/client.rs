//! The client party: holds the secret key and its input share; encrypts the share of each
//! layer (seeded), sends the queries, decrypts the truncated responses into its output
//! share, and (verification only) checks the reconstructed output against plaintext
//! arithmetic once the server has revealed the seed of its data.

use super::bitpack::{BitReader, BitWriter};
use super::he::{ClientKey, Word};
use super::server::{Hello, Reveal};
use super::transport::{Channel, Kind};
use super::{
    CoefficientMismatch, LayerPlan, LayerResult, Mismatch, Plan, RunOptions, VerifyError,
    VerifyReport, draw_shares, encoding, fresh_seed, rng, server_data,
};
use crate::protocol::sizes::response_ct_bytes;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Instant;

/// Keys by ring degree, one per container width.
#[derive(Default)]
pub(crate) struct Keys {
    k64: HashMap<usize, ClientKey<u64>>,
    k128: HashMap<usize, ClientKey<u128>>,
}

/// What a run accepts as a correct output.
pub const TOLERANCE: &str = "exact (0) for unpacked and CRT mappings; |error| <= 1 for bit slots (a borrow from the slot below, as in Cheetah's approximate re-sharing)";

/// Shown mismatches per layer.
const SHOWN: usize = 10;

/// Runs every layer of the plan against the server on `stream`.
pub fn run<S: Read + Write>(
    stream: S,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<VerifyReport, VerifyError> {
    let mut ch = Channel::new(stream);
    let hello = Hello::of(plan, opts);
    ch.send(
        Kind::Hello,
        &serde_json::to_vec(&hello).expect("hello serialises"),
    )
    .map_err(VerifyError::frame("(handshake)", "sending the hello"))?;
    ch.recv(Kind::HelloAck).map_err(VerifyError::frame(
        "(handshake)",
        "waiting for the server's acknowledgement",
    ))?;
    let mut keys = Keys::default();
    let mut layers = Vec::new();
    let total = plan.layers.len();
    for (i, lp) in plan.layers.iter().enumerate() {
        let r = run_layer(&mut ch, lp, opts, &mut keys)?;
        if let Some(progress) = opts.progress {
            progress(&format!(
                "[{}/{total}] {}: {} B in {:.2} s, {}",
                i + 1,
                r.name,
                r.measured_bytes,
                r.measured_s,
                if r.correct { "correct" } else { "WRONG" }
            ));
        }
        layers.push(r);
    }
    let ok = layers.iter().all(|l| l.correct);
    Ok(VerifyReport {
        ok,
        network: plan.network.clone(),
        protocol: plan.protocol.name().into(),
        bits: plan.bits.clone(),
        link: plan.link.clone(),
        tolerance: TOLERANCE.into(),
        predicted_bytes: layers.iter().map(|l| l.predicted_bytes).sum(),
        measured_bytes: layers.iter().map(|l| l.measured_bytes).sum(),
        predicted_s: layers.iter().map(|l| l.predicted_s).sum(),
        measured_s: layers.iter().map(|l| l.measured_s).sum(),
        layers,
        not_run: plan.skipped.clone(),
        nonlinear: None,
        insecure: plan.insecure,
    })
}

/// Encrypts the queries of a layer, run by run (bit-packed payloads); `x` holds each
/// run's virtual input.
fn encrypt_all<W: Word>(key: &mut ClientKey<W>, lp: &LayerPlan, x: &[Vec<u128>]) -> Vec<Vec<u8>> {
    let p = &lp.params;
    let per_run = lp.layout.queries();
    (0..p.ct_in)
        .map(|q| {
            let m = lp
                .layout
                .encode_input(&x[(q / per_run) as usize], q % per_run);
            let ct = key.encrypt(&m, &lp.plain, p.log_q, p.error_std);
            let mut w = BitWriter::with_capacity_bits(p.n * p.log_q as u64 + 128);
            for &v in &ct.body {
                w.put(v, p.log_q);
            }
            let mut bytes = w.finish();
            bytes.extend_from_slice(&ct.seed.to_le_bytes());
            bytes
        })
        .collect()
}

/// Decrypts the responses of a layer: each virtual output coefficient mod t of every run
/// (the client's share, before slot decoding or CRT decomposition) and the largest error seen.
fn decrypt_all<W: Word>(
    key: &ClientKey<W>,
    lp: &LayerPlan,
    responses: &[Vec<u8>],
) -> Result<(Vec<u128>, u128), String> {
    let p = &lp.params;
    let virt = lp.virt_out_elems();
    let per_run = lp.layout.responses();
    let mut y = vec![0u128; p.runs as usize * virt];
    let mut max_err = 0u128;
    for (r, bytes) in responses.iter().enumerate() {
        let (run, local) = (r as u64 / per_run, r as u64 % per_run);
        let base = run as usize * virt;
        let sent = lp.layout.sent(local);
        let mut rd = BitReader::new(bytes);
        let bad = |e: super::bitpack::ShortStream| format!("response {r}: {e}");
        let c1 = (0..p.n)
            .map(|_| rd.get(p.c1_bits))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let mut c0 = Vec::with_capacity(sent.len());
        let mut index = Vec::with_capacity(sent.len());
        for &(coeff, i) in &sent {
            let v = rd.get(p.c0_bits).map_err(bad)?;
            // Stride-1 outputs off the stride are on the wire only (Layout::sent).
            if let Some(i) = i {
                c0.push((coeff, v));
                index.push(i);
            }
        }
        let dec = key.decrypt(&c1, p.c1_bits, &c0, p.c0_bits, &lp.plain, p.log_q);
        for (&i, (m, e)) in index.iter().zip(dec) {
            y[base + i] = m;
            max_err = max_err.max(e);
        }
    }
    Ok((y, max_err))
}

/// What the client got from one linear layer's exchange.
pub(crate) struct Exchange {
    /// Each virtual output coefficient mod t of every run (the client's share, before slot
    /// decoding or CRT decomposition: [`LayerPlan::real_shares`]).
    pub y: Vec<u128>,
    pub max_err: u128,
    pub encrypt_s: f64,
    pub decrypt_s: f64,
    /// Encryption of the first query to decryption of the last response.
    pub wall_s: f64,
    /// Ciphertext payload bytes both ways.
    pub payload_bytes: u64,
    /// Bytes on the socket each way (payloads, frame headers, the parameter set).
    pub sent: u64,
    pub received: u64,
}

/// One linear layer's protocol, client side, on the client's input share `x_c` of every
/// image (each in its share ring, or its own b_a-bit data for `client` slots): encrypt,
/// send, receive, decrypt.
pub(crate) fn exchange<S: Read + Write>(
    ch: &mut Channel<S>,
    lp: &LayerPlan,
    x_c: &[u64],
    keys: &mut Keys,
) -> Result<Exchange, VerifyError> {
    let p = &lp.params;
    let name = p.name.as_str();
    let n = p.n as usize;
    let (sent0, recv0) = (ch.sent, ch.received);
    let x_pre: Vec<Vec<u128>> = (0..p.runs).map(|r| lp.virtual_input(x_c, r)).collect();
    let t0 = Instant::now();
    let queries = if p.log_q <= 64 {
        let k = keys.k64.entry(n).or_insert_with(|| ClientKey::new(n));
        encrypt_all(k, lp, &x_pre)
    } else {
        let k = keys.k128.entry(n).or_insert_with(|| ClientKey::new(n));
        encrypt_all(k, lp, &x_pre)
    };
    let encrypt_s = t0.elapsed().as_secs_f64();
    ch.send(
        Kind::LayerStart,
        &serde_json::to_vec(p).expect("parameters serialise"),
    )
    .map_err(VerifyError::frame(name, "sending the parameter set"))?;
    let mut payload_bytes = 0u64;
    for (i, q) in queries.iter().enumerate() {
        payload_bytes += q.len() as u64;
        ch.send(Kind::Query, q)
            .map_err(VerifyError::frame(name, &format!("sending query {i}")))?;
    }
    ch.flush().map_err(VerifyError::frame(name, "flushing"))?;
    let sent = ch.sent - sent0;
    let mut responses = Vec::with_capacity(p.ct_out as usize);
    for r in 0..p.ct_out {
        let bytes = ch
            .recv(Kind::Response)
            .map_err(VerifyError::frame(name, &format!("reading response {r}")))?;
        let kept = lp.layout.sent(r % lp.layout.responses()).len() as u64;
        let want = response_ct_bytes(p.n, p.c1_bits, kept, p.c0_bits);
        if bytes.len() as u64 != want {
            return Err(VerifyError::Layer {
                layer: name.into(),
                message: format!(
                    "response {r} has {} bytes, expected {want} (N = {}, c1 {} bits, {kept} kept at {} bits)",
                    bytes.len(),
                    p.n,
                    p.c1_bits,
                    p.c0_bits
                ),
            });
        }
        payload_bytes += bytes.len() as u64;
        responses.push(bytes);
    }
    let received = ch.received - recv0;
    let t1 = Instant::now();
    let dec = if p.log_q <= 64 {
        decrypt_all(&keys.k64[&n], lp, &responses)
    } else {
        decrypt_all(&keys.k128[&n], lp, &responses)
    };
    let (y, max_err) = dec.map_err(|m| VerifyError::Layer {
        layer: name.into(),
        message: m,
    })?;
    let decrypt_s = t1.elapsed().as_secs_f64();
    Ok(Exchange {
        y,
        max_err,
        encrypt_s,
        decrypt_s,
        wall_s: t0.elapsed().as_secs_f64(),
        payload_bytes,
        sent,
        received,
    })
}

fn run_layer<S: Read + Write>(
    ch: &mut Channel<S>,
    lp: &LayerPlan,
    opts: &RunOptions,
    keys: &mut Keys,
) -> Result<LayerResult, VerifyError> {
    let p = &lp.params;
    let name = p.name.as_str();
    let mut g = rng(fresh_seed());
    let x_c = match p.client_input_bits {
        // The client's own data: unsigned b_a-bit values (the server's share is zero).
        Some(b) => draw_shares(&mut g, p.images as usize * lp.in_elems(), b, opts.data),
        None => super::draw_batch(&mut g, lp, opts.data),
    };
    let Exchange {
        y: y_c,
        max_err,
        encrypt_s,
        decrypt_s,
        wall_s,
        payload_bytes,
        sent: sent_layer,
        received: received_layer,
    } = exchange(ch, lp, &x_c, keys)?;

    // Verification only: the server reveals the seed of its data.
    let rv = ch
        .recv(Kind::Reveal)
        .map_err(VerifyError::frame(name, "reading the reveal"))?;
    let rv: Reveal = serde_json::from_slice(&rv).map_err(|e| VerifyError::Layer {
        layer: name.into(),
        message: format!("the reveal is not valid: {e}"),
    })?;
    let seed = u128::from_str_radix(&rv.seed, 16).map_err(|e| VerifyError::Layer {
        layer: name.into(),
        message: format!("the revealed seed is not valid: {e}"),
    })?;
    let sd = server_data(seed, lp, opts.data);
    // Coefficient level, exact: every decrypted coefficient must be the virtual layer's
    // plaintext result plus the mask, mod t. A decryption failure (noise past Delta / 2)
    // shows here even where the slot decoding's tolerance would hide it. The shares are
    // packed (or CRT-composed) apart and added in the plaintext space: each slot holds
    // x_c + x_s (wrap included), not x mod 2^l.
    let t = &lp.plain;
    let w_virtual = lp.packer.pack_weights(&sd.weights);
    let virt = lp.virt_out_elems();
    let mut failures = 0u64;
    let mut shown_failures = Vec::new();
    for run in 0..p.runs {
        let x_v: Vec<u128> = lp
            .virtual_input(&x_c, run)
            .iter()
            .zip(lp.virtual_input(&sd.x_s, run))
            .map(|(&a, b)| t.add(a, b))
            .collect();
        let coeff_ref = encoding::coefficient_reference(&lp.packer.virt, &x_v, &w_virtual, t);
        let base = run as usize * virt;
        for (v, &e) in coeff_ref.iter().enumerate() {
            let (yc, r) = (y_c[base + v], sd.mask[base + v]);
            let want = t.add(e, r);
            if yc != want {
                failures += 1;
                if shown_failures.len() < SHOWN {
                    shown_failures.push(CoefficientMismatch {
                        index: base + v,
                        got: format!("{yc}"),
                        expected: format!("{want}"),
                    });
                }
            }
        }
    }
    // Each image's output: the client's share is its slot (or CRT component) of the
    // decrypted coefficient, the server's minus the same of its mask.
    let got_c = lp.real_shares(&y_c, false);
    let got_s = lp.real_shares(&sd.mask, true);
    // Which outputs some slot holds (a packing that left one out shows as a mismatch).
    let held = {
        let mut h = vec![false; lp.out_elems()];
        for v in 0..virt {
            for (_, real) in lp.packer.slots(v) {
                if let Some(x) = h.get_mut(real) {
                    *x = true;
                }
            }
        }
        h
    };
    let tolerance = u64::from(lp.packer.is_packed());
    let o = lp.layer.output;
    let (e_in, e_out) = (lp.in_elems(), lp.out_elems());
    let mut mism = 0u64;
    let mut shown = Vec::new();
    for image in 0..p.images as usize {
        let ring = lp.share_ring(image as u64);
        let x: Vec<u64> = x_c[image * e_in..(image + 1) * e_in]
            .iter()
            .zip(&sd.x_s[image * e_in..(image + 1) * e_in])
            .map(|(&a, &b)| ring.add(a as u128, b as u128) as u64)
            .collect();
        let expected = encoding::reference(&lp.layer, &x, &sd.weights, &ring);
        for (i, &e) in expected.iter().enumerate() {
            let k = image * e_out + i;
            let got = held[i].then(|| ring.add(got_c[k] as u128, got_s[k] as u128) as u64);
            let wrong = match got {
                Some(v) => {
                    let d = ring.sub(v as u128, e as u128);
                    d.min(ring.t - d) > tolerance as u128
                }
                None => true,
            };
            if wrong {
                mism += 1;
                if shown.len() < SHOWN {
                    let i64_ = i as u64;
                    shown.push(Mismatch {
                        index: k,
                        position: [i64_ / (o.h * o.w), (i64_ / o.w) % o.h, i64_ % o.w],
                        got,
                        expected: e,
                    });
                }
            }
        }
    }
    // The server's weight encoding is input-independent (done ahead of time in a
    // deployment): it is reported apart and left out of the online time.
    let measured_s = (wall_s - rv.weight_encode_s).max(0.0);
    // Delta / 2 = q / (2 t).
    let half_delta = 2f64.powi(p.log_q as i32 - 1) / t.t as f64;
    let headroom = if max_err == 0 {
        f64::INFINITY
    } else {
        (half_delta / max_err as f64).log2()
    };
    let c = &lp.cost;
    Ok(LayerResult {
        name: name.into(),
        correct: mism == 0 && failures == 0,
        mismatches: mism,
        first_mismatches: shown,
        coefficient_mismatches: failures,
        first_coefficient_mismatches: shown_failures,
        tolerance,
        n: p.n,
        log_q: p.log_q,
        log_t: p.log_t,
        tiling: p.tiling.to_string(),
        packing: p.packing.to_string(),
        images: p.images,
        runs: p.runs,
        crt_moduli: p.crt_moduli.clone(),
        ct_in: p.ct_in,
        ct_out: p.ct_out,
        predicted_bytes: c.bytes_in + c.bytes_out,
        payload_bytes,
        measured_bytes: sent_layer + received_layer,
        predicted_bytes_client_to_server: c.bytes_in,
        measured_bytes_client_to_server: sent_layer,
        predicted_bytes_server_to_client: c.bytes_out,
        measured_bytes_server_to_client: received_layer,
        predicted_s: lp.predicted_s,
        measured_s,
        encrypt_s,
        server_s: rv.compute_s,
        weight_encode_s: rv.weight_encode_s,
        predicted_offline_s: lp.predicted_offline_s,
        decrypt_s,
        transfer_s: (measured_s - encrypt_s - decrypt_s - rv.compute_s).max(0.0),
        noise_headroom_bits: headroom,
        model_headroom_bits: c.headroom_bits,
    })
}
