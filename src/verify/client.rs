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
    VerifyReport, draw_shares, encoding, fresh_seed, ring_mask, rng, server_data,
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
        tolerance: "exact (0) for unpacked mappings; |error| <= 1 for packed slots (a borrow from the slot below, as in Cheetah's approximate re-sharing)".into(),
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

/// Encrypts the queries of a layer (bit-packed payloads).
fn encrypt_all<W: Word>(key: &mut ClientKey<W>, lp: &LayerPlan, x: &[u128]) -> Vec<Vec<u8>> {
    let p = &lp.params;
    (0..p.ct_in)
        .map(|q| {
            let m = lp.layout.encode_input(x, q);
            let ct = key.encrypt(&m, p.log_t, p.log_q, p.error_std);
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

/// Decrypts the responses of a layer: each virtual output coefficient mod t (the client's
/// share, before slot decoding) and the largest error seen.
fn decrypt_all<W: Word>(
    key: &ClientKey<W>,
    lp: &LayerPlan,
    responses: &[Vec<u8>],
) -> Result<(Vec<u128>, u128), String> {
    let p = &lp.params;
    let mut y = vec![0u128; lp.packer.virt.out_elems() as usize];
    let mut max_err = 0u128;
    for (r, bytes) in responses.iter().enumerate() {
        let outs = lp.layout.outputs(r as u64);
        let mut rd = BitReader::new(bytes);
        let bad = |e: super::bitpack::ShortStream| format!("response {r}: {e}");
        let c1 = (0..p.n)
            .map(|_| rd.get(p.c1_bits))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let c0 = outs
            .iter()
            .map(|s| rd.get(p.c0_bits).map(|v| (s.coeff, v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let dec = key.decrypt(&c1, p.c1_bits, &c0, p.c0_bits, p.log_t, p.log_q);
        for (s, (m, e)) in outs.iter().zip(dec) {
            y[s.index] = m;
            max_err = max_err.max(e);
        }
    }
    Ok((y, max_err))
}

/// What the client got from one linear layer's exchange.
pub(crate) struct Exchange {
    /// Each virtual output coefficient mod t (the client's share, before slot decoding).
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

/// One linear layer's protocol, client side, on the client's input share `x_c` (mod 2^l,
/// or its own b_a-bit data for `client` slots): encrypt, send, receive, decrypt.
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
    let x_pre = lp.packer.pack_input(&encoding::preprocess(&lp.layer, x_c));
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
        let kept = lp.layout.outputs(r).len() as u64;
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
        Some(b) => draw_shares(&mut g, lp.layer.input.elems() as usize, b, opts.data),
        None => draw_shares(
            &mut g,
            lp.layer.input.elems() as usize,
            p.ring_bits,
            opts.data,
        ),
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
    let mask = ring_mask(p.ring_bits);
    let x: Vec<u64> = x_c
        .iter()
        .zip(&sd.x_s)
        .map(|(a, b)| a.wrapping_add(*b) & mask)
        .collect();
    let expected = encoding::reference(&lp.layer, &x, &sd.weights, p.ring_bits);
    // Coefficient level, exact: every decrypted coefficient must be the virtual layer's
    // plaintext result plus the mask, mod t. A decryption failure (noise past Delta / 2)
    // shows here even where the slot decoding's tolerance would hide it.
    let tmask = super::he::low_mask(p.log_t);
    // The shares are packed apart and added in the plaintext space: each slot holds
    // x_c + x_s (wrap included), not x mod 2^l.
    let pack = |v: &[u64]| lp.packer.pack_input(&encoding::preprocess(&lp.layer, v));
    let x_v: Vec<u128> = pack(&x_c)
        .iter()
        .zip(pack(&sd.x_s))
        .map(|(&a, b)| a.wrapping_add(b) & tmask)
        .collect();
    let coeff_ref = encoding::coefficient_reference(
        &lp.packer.virt,
        &x_v,
        &lp.packer.pack_weights(&sd.weights),
        p.log_t,
    );
    let mut failures = 0u64;
    let mut shown_failures = Vec::new();
    for (v, ((&yc, &r), &e)) in y_c.iter().zip(&sd.mask).zip(&coeff_ref).enumerate() {
        let want = e.wrapping_add(r) & tmask;
        if yc != want {
            failures += 1;
            if shown_failures.len() < SHOWN {
                shown_failures.push(CoefficientMismatch {
                    index: v,
                    got: format!("{yc}"),
                    expected: format!("{want}"),
                });
            }
        }
    }
    // Slot decoding: the client's share of an output is its slot of the decrypted
    // coefficient, the server's is minus the same slot of its mask.
    let mut got = vec![None; expected.len()];
    for (v, (&yc, &r)) in y_c.iter().zip(&sd.mask).enumerate() {
        for (shift, real) in lp.packer.slots(v) {
            let c = (yc >> shift) as u64 & mask;
            let s = 0u64.wrapping_sub((r >> shift) as u64) & mask;
            got[real] = Some(c.wrapping_add(s) & mask);
        }
    }
    let tolerance = u64::from(lp.packer.is_packed());
    let o = lp.layer.output;
    let mut mism = 0u64;
    let mut shown = Vec::new();
    for (i, (&g, &e)) in got.iter().zip(&expected).enumerate() {
        let wrong = match g {
            Some(v) => {
                let d = v.wrapping_sub(e) & mask;
                d.min(mask - d + 1) > tolerance
            }
            None => true,
        };
        if wrong {
            mism += 1;
            if shown.len() < SHOWN {
                let i64_ = i as u64;
                shown.push(Mismatch {
                    index: i,
                    position: [i64_ / (o.h * o.w), (i64_ / o.w) % o.h, i64_ % o.w],
                    got: g,
                    expected: e,
                });
            }
        }
    }
    // The server's weight encoding is input-independent (done ahead of time in a
    // deployment): it is reported apart and left out of the online time.
    let measured_s = (wall_s - rv.weight_encode_s).max(0.0);
    let delta = p.log_q - p.log_t;
    let half_delta = 2f64.powi(delta as i32 - 1);
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
        decrypt_s,
        transfer_s: (measured_s - encrypt_s - decrypt_s - rv.compute_s).max(0.0),
        noise_headroom_bits: headroom,
        model_headroom_bits: c.headroom_bits,
    })
}
