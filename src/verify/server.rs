//! The server party: holds the weights and its input share; for each layer adds its share
//! to the client's queries, multiplies by the weight polynomials in NTT form, sums over the
//! channel groups, masks, truncates and returns the responses.

use super::bitpack::{BitReader, BitWriter};
use super::he::{self, Query, centred, low_mask};
use super::ntt::{CrtNtt, NttPoly, bound_bits};
use super::transport::{Channel, Kind};
use super::{LayerParams, LayerPlan, Plan, RunOptions, VerifyError};
use crate::model::linear::ntt_primes;
use crate::protocol::sizes::{SEED_BYTES, query_ct_bytes};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::time::Instant;

/// Flip bit `bit` of response `response` of layer `layer` before sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub layer: String,
    pub response: usize,
    pub bit: usize,
}

/// The client's opening message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub network: String,
    pub protocol: String,
    pub layers: Vec<String>,
    /// How the layers' data are drawn (the check regenerates the server's data).
    pub data: String,
}

impl Hello {
    pub fn of(plan: &Plan, opts: &RunOptions) -> Hello {
        Hello {
            network: plan.network.clone(),
            protocol: plan.protocol.name().into(),
            layers: plan.layers.iter().map(|l| l.params.name.clone()).collect(),
            data: format!("{:?}", opts.data),
        }
    }
}

/// What the server reveals after a layer so that the client can check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reveal {
    /// Seed of the server's weights, input share and mask (as bytes of a u128, hex).
    pub seed: String,
    /// Server time on the client's ciphertexts (decompression, NTTs, products, truncation).
    pub compute_s: f64,
    /// Server time encoding its weights into NTT form (input-independent, offline).
    pub weight_encode_s: f64,
}

/// Decodes one query frame.
pub fn parse_query(p: &LayerParams, payload: &[u8]) -> Result<Query, String> {
    let want = query_ct_bytes(p.n, p.log_q, true) as usize;
    if payload.len() != want {
        return Err(format!(
            "a query ciphertext has {} bytes, expected {want} (N = {}, log q = {})",
            payload.len(),
            p.n,
            p.log_q
        ));
    }
    let body_len = want - SEED_BYTES as usize;
    let mut r = BitReader::new(&payload[..body_len]);
    let body = (0..p.n)
        .map(|_| r.get(p.log_q))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut seed = [0u8; 16];
    seed.copy_from_slice(&payload[body_len..]);
    Ok(Query {
        body,
        seed: u128::from_le_bytes(seed),
    })
}

/// Rounds v mod 2^log_q to its top `bits` bits.
fn round_to(v: u128, log_q: u32, bits: u32) -> u128 {
    let drop = log_q - bits;
    if drop == 0 {
        return v & low_mask(bits);
    }
    (v.wrapping_add(1u128 << (drop - 1)) >> drop) & low_mask(bits)
}

/// Responses of one output-channel group: (response index, bytes).
type OgResult = Vec<(u64, Vec<u8>)>;

/// Bytes of weight polynomials in NTT form that [`compute_layer`] holds at once: output
/// groups are set up and answered in chunks of this size, so a layer's memory stays bounded
/// whatever its weights (13x13x512 -> 1000 at N = 4096 would need 2.2 GB at once).
pub const SETUP_CHUNK_BYTES: u64 = 256 << 20;

/// What a [`LayerSetup`] was made for: a setup is used only with the layer, parameter set,
/// layout and weights it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupKey {
    pub layer: String,
    pub n: u64,
    pub log_q: u32,
    pub primes: usize,
    /// Channel groups and output groups of the layout, and the output groups set up.
    pub cb: u64,
    pub og: u64,
    pub groups: std::ops::Range<u64>,
    /// A fingerprint of the weights (FNV-1a over their values).
    pub weights: u64,
}

/// A setup used with a layer it was not made for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server setup was made for {have:?}, not for {want:?}")]
pub struct SetupMismatch {
    pub have: Box<SetupKey>,
    pub want: Box<SetupKey>,
}

/// The server's input-independent work for a range of a layer's output groups: its weight
/// polynomials in NTT form (Cheetah's filter encoding). A deployment does it once per
/// network and mapping, before any query; the verify mode times it apart from the online
/// work.
pub struct LayerSetup {
    key: SetupKey,
    ntt: CrtNtt,
    /// weights[og - groups.start][cb] (None: a channel group the output group does not use).
    weights: Vec<Vec<Option<NttPoly>>>,
}

fn fingerprint(w: &[i64]) -> u64 {
    w.iter().fold(0xcbf29ce484222325u64, |h, &v| {
        v.to_le_bytes()
            .iter()
            .fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
    })
}

/// The bound on a layer's product sums that its NTT primes must cover.
fn layer_bound(lp: &LayerPlan) -> u32 {
    let p = &lp.params;
    let lay = &lp.layout;
    bound_bits(
        p.log_q,
        lp.packer.weight_bits(p.weight_bits),
        lay.n as u64,
        lay.cb,
    )
}

/// The layer's NTT primes, as many as the model counts ([`ntt_primes`] of its bound).
fn layer_primes(lp: &LayerPlan) -> usize {
    ntt_primes(layer_bound(lp)) as usize
}

fn layer_ntt(lp: &LayerPlan) -> CrtNtt {
    CrtNtt::new(lp.layout.n, layer_bound(lp)).expect("NTT primes exist for power-of-two N >= 16")
}

fn setup_key(
    lp: &LayerPlan,
    data: &super::ServerData,
    primes: usize,
    groups: std::ops::Range<u64>,
) -> SetupKey {
    SetupKey {
        layer: lp.params.name.clone(),
        n: lp.layout.n as u64,
        log_q: lp.params.log_q,
        primes,
        cb: lp.layout.cb,
        og: lp.layout.og,
        groups,
        weights: fingerprint(&data.weights),
    }
}

impl LayerSetup {
    /// Encodes the weights of output groups `groups` (every group: `0..layout.og`).
    pub fn new(
        lp: &LayerPlan,
        data: &super::ServerData,
        groups: std::ops::Range<u64>,
        parallel: bool,
    ) -> LayerSetup {
        let ntt = layer_ntt(lp);
        let lay = &lp.layout;
        let groups = groups.start.min(lay.og)..groups.end.min(lay.og);
        let w_virtual = lp.packer.pack_weights(&data.weights);
        let encode = |og: u64| -> Vec<Option<NttPoly>> {
            (0..lay.cb)
                .map(|cb| lay.weight_poly(&w_virtual, og, cb).map(|w| ntt.forward(&w)))
                .collect()
        };
        let weights = if parallel {
            use rayon::prelude::*;
            groups.clone().into_par_iter().map(encode).collect()
        } else {
            groups.clone().map(encode).collect()
        };
        LayerSetup {
            key: setup_key(lp, data, ntt.primes(), groups),
            ntt,
            weights,
        }
    }

    pub fn key(&self) -> &SetupKey {
        &self.key
    }

    /// Output groups per chunk so that a chunk's weights stay within `chunk_bytes` (at
    /// least one).
    pub fn groups_per_chunk(lp: &LayerPlan, chunk_bytes: u64) -> u64 {
        let per_group = lp.layout.cb * lp.layout.n as u64 * 8 * layer_primes(lp) as u64;
        (chunk_bytes / per_group.max(1)).max(1)
    }
}

/// The online half of a layer: the queries (`queries[q]` = (mask, body) mod 2^log_q, run by
/// run) with the server's share added, in NTT form.
fn queries_ntt(
    lp: &LayerPlan,
    ntt: &CrtNtt,
    data: &super::ServerData,
    queries: Vec<(Vec<u128>, Vec<u128>)>,
    parallel: bool,
) -> Vec<(NttPoly, NttPoly)> {
    let p = &lp.params;
    let lay = &lp.layout;
    let log_q = p.log_q;
    let qmask = low_mask(log_q);
    let t = &lp.plain;
    let x_s: Vec<Vec<u128>> = (0..p.runs)
        .map(|r| lp.virtual_input(&data.x_s, r))
        .collect();
    let per_run_q = lay.queries();
    let fwd = |(q, (mask, mut body)): (usize, (Vec<u128>, Vec<u128>))| -> (NttPoly, NttPoly) {
        let q = q as u64;
        let m = lay.encode_input(&x_s[(q / per_run_q) as usize], q % per_run_q);
        for (b, &v) in body.iter_mut().zip(&m) {
            *b = b.wrapping_add(t.encode(v, log_q)) & qmask;
        }
        let c = |p: &[u128]| p.iter().map(|&v| centred(v, log_q)).collect::<Vec<_>>();
        (ntt.forward(&c(&mask)), ntt.forward(&c(&body)))
    };
    if parallel {
        use rayon::prelude::*;
        queries.into_par_iter().enumerate().map(fwd).collect()
    } else {
        queries.into_iter().enumerate().map(fwd).collect()
    }
}

/// Query polynomials (mask, body) of uniform values mod 2^log_q drawn from `seed` (a
/// xorshift, not a CSPRNG): the server's work does not depend on the queries being real
/// encryptions, so benchmarks and tests of the server's arithmetic use these.
pub fn arbitrary_queries(lp: &LayerPlan, seed: u64) -> Vec<(Vec<u128>, Vec<u128>)> {
    let mut s = seed | 1;
    let mask = low_mask(lp.params.log_q);
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s as u128) << 64 | s.rotate_left(29) as u128) & mask
    };
    let n = lp.params.n as usize;
    (0..lp.params.ct_in)
        .map(|_| {
            let mask = (0..n).map(|_| next()).collect();
            (mask, (0..n).map(|_| next()).collect())
        })
        .collect()
}

/// The responses of the output groups a setup holds, from queries in NTT form.
fn answer(
    lp: &LayerPlan,
    data: &super::ServerData,
    setup: &LayerSetup,
    q_ntt: &[(NttPoly, NttPoly)],
    parallel: bool,
) -> Vec<OgResult> {
    let p = &lp.params;
    let lay = &lp.layout;
    let ntt = &setup.ntt;
    let (log_q, n, t) = (p.log_q, lay.n, &lp.plain);
    let qmask = low_mask(log_q);
    let tiles = lay.tiles();
    let per_run_q = lay.queries();
    let per_run_r = lay.responses();
    let virt_out = lp.virt_out_elems();
    let per_og = |(og, weights): (u64, &Vec<Option<NttPoly>>)| -> OgResult {
        let mut out = Vec::with_capacity((p.runs * tiles) as usize);
        // Buffers reused across the group's responses: fresh ones would cost a page fault
        // and a zeroed page per 4 kB.
        let (mut am, mut ab) = (ntt.zero(), ntt.zero());
        let (mut c1, mut c0) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for run in 0..p.runs {
            let q0 = (run * per_run_q) as usize;
            let mask = &data.mask[run as usize * virt_out..(run as usize + 1) * virt_out];
            for tile in 0..tiles {
                ntt.clear(&mut am);
                ntt.clear(&mut ab);
                for (cb, w) in weights.iter().enumerate() {
                    if let Some(w) = w {
                        let (qm, qb) = &q_ntt[q0 + (tile * lay.cb) as usize + cb];
                        ntt.mul_acc(&mut am, qm, w);
                        ntt.mul_acc(&mut ab, qb, w);
                    }
                }
                ntt.inverse_into(&mut am, &mut c1);
                ntt.inverse_into(&mut ab, &mut c0);
                let r = tile * lay.og + og;
                let outs = lay.sent(r);
                let mut wr = BitWriter::with_capacity_bits(
                    n as u64 * p.c1_bits as u64 + outs.len() as u64 * p.c0_bits as u64,
                );
                for &v in &c1 {
                    wr.put(round_to(v & qmask, log_q, p.c1_bits), p.c1_bits);
                }
                for &(coeff, index) in &outs {
                    // A stride-1 output the client does not use takes its place on the
                    // wire as zeros: the same bytes as OpenCheetah's masked one, nothing
                    // revealed.
                    let Some(index) = index else {
                        wr.put(0, p.c0_bits);
                        continue;
                    };
                    let masked = c0[coeff].wrapping_add(t.encode(mask[index], log_q));
                    wr.put(round_to(masked & qmask, log_q, p.c0_bits), p.c0_bits);
                }
                out.push((run * per_run_r + r, wr.finish()));
            }
        }
        out
    };
    let groups = setup.key.groups.clone().zip(&setup.weights);
    if parallel {
        use rayon::prelude::*;
        groups
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(per_og)
            .collect()
    } else {
        groups.map(per_og).collect()
    }
}

fn in_order(parts: Vec<OgResult>) -> Vec<Vec<u8>> {
    let mut out: Vec<(u64, Vec<u8>)> = parts.into_iter().flatten().collect();
    out.sort_by_key(|x| x.0);
    out.into_iter().map(|x| x.1).collect()
}

/// The online work of a layer with a setup made beforehand for all its output groups
/// ([`LayerSetup::new`] over `0..layout.og`): the bit-packed responses in order. A setup
/// made for another layer, parameter set, weights or only some groups is refused.
pub fn respond(
    lp: &LayerPlan,
    data: &super::ServerData,
    setup: &LayerSetup,
    queries: Vec<(Vec<u128>, Vec<u128>)>,
    parallel: bool,
) -> Result<Vec<Vec<u8>>, SetupMismatch> {
    let want = setup_key(lp, data, layer_primes(lp), 0..lp.layout.og);
    if setup.key != want {
        return Err(SetupMismatch {
            have: Box::new(setup.key.clone()),
            want: Box::new(want),
        });
    }
    let q_ntt = queries_ntt(lp, &setup.ntt, data, queries, parallel);
    Ok(in_order(answer(lp, data, setup, &q_ntt, parallel)))
}

/// Seconds of the two online phases of a layer with a setup made for all its groups: the
/// queries into NTT form (the server's share added), then the products, inverse transforms,
/// masking and packing of the responses. One thread; for calibration.
pub fn online_phases(
    lp: &LayerPlan,
    data: &super::ServerData,
    setup: &LayerSetup,
    queries: Vec<(Vec<u128>, Vec<u128>)>,
) -> (f64, f64) {
    let t = Instant::now();
    let q_ntt = queries_ntt(lp, &setup.ntt, data, queries, false);
    let queries_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    std::hint::black_box(answer(lp, data, setup, &q_ntt, false));
    (queries_s, t.elapsed().as_secs_f64())
}

/// The server's computation of one layer from decompressed queries: the bit-packed
/// responses in order (`queries[q]` = (mask, body) mod 2^log_q, run by run), and the
/// wall-clock seconds spent encoding the weights into NTT form (work that does not depend
/// on the client's input, which a deployment does once ahead of time). The weights are set
/// up in chunks of output groups ([`SETUP_CHUNK_BYTES`]), each answered before the next.
pub fn compute_layer(
    lp: &LayerPlan,
    data: &super::ServerData,
    queries: Vec<(Vec<u128>, Vec<u128>)>,
    parallel: bool,
) -> (Vec<Vec<u8>>, f64) {
    compute_layer_in_chunks(lp, data, queries, parallel, SETUP_CHUNK_BYTES)
}

/// [`compute_layer`] with the weights set up in chunks of at most `chunk_bytes` (at least
/// one output group per chunk).
pub fn compute_layer_in_chunks(
    lp: &LayerPlan,
    data: &super::ServerData,
    queries: Vec<(Vec<u128>, Vec<u128>)>,
    parallel: bool,
    chunk_bytes: u64,
) -> (Vec<Vec<u8>>, f64) {
    let ntt = layer_ntt(lp);
    let q_ntt = queries_ntt(lp, &ntt, data, queries, parallel);
    let og = lp.layout.og;
    let chunk = LayerSetup::groups_per_chunk(lp, chunk_bytes);
    let mut parts = Vec::with_capacity(og as usize);
    let mut weight_s = 0.0;
    let mut start = 0;
    while start < og {
        let end = (start + chunk).min(og);
        let tw = Instant::now();
        let setup = LayerSetup::new(lp, data, start..end, parallel);
        weight_s += tw.elapsed().as_secs_f64();
        parts.extend(answer(lp, data, &setup, &q_ntt, parallel));
        start = end;
    }
    (in_order(parts), weight_s)
}

/// Serves one client over `stream` until it has run every layer of the plan.
pub fn serve<S: Read + Write>(
    stream: S,
    plan: &Plan,
    opts: &RunOptions,
) -> Result<(), VerifyError> {
    let mut ch = Channel::new(stream);
    let hello = ch.recv(Kind::Hello).map_err(VerifyError::frame(
        "(handshake)",
        "reading the client's hello",
    ))?;
    let hello: Hello = serde_json::from_slice(&hello)
        .map_err(|e| VerifyError::Mismatch(format!("the client's hello is not valid: {e}")))?;
    let mine = Hello::of(plan, opts);
    if hello != mine {
        // The client's side is its own text: made printable and capped, never echoed whole.
        let theirs = super::transport::peer_text(
            format!(
                "{} / {} / layers {:?} / data {}",
                hello.network, hello.protocol, hello.layers, hello.data
            )
            .as_bytes(),
        );
        let msg = format!(
            "client runs {theirs}, server runs {} / {} / layers {:?} / data {}",
            mine.network, mine.protocol, mine.layers, mine.data
        );
        let _ = ch.send(Kind::Abort, msg.as_bytes());
        return Err(VerifyError::Mismatch(msg));
    }
    ch.send(Kind::HelloAck, b"{}").map_err(VerifyError::frame(
        "(handshake)",
        "sending the hello acknowledgement",
    ))?;
    for lp in &plan.layers {
        serve_layer(&mut ch, lp, opts)?;
    }
    Ok(())
}

fn serve_layer<S: Read + Write>(
    ch: &mut Channel<S>,
    lp: &LayerPlan,
    opts: &RunOptions,
) -> Result<(), VerifyError> {
    let seed = super::fresh_seed();
    let data = super::server_data(seed, lp, opts.data);
    let (compute_s, weight_encode_s) = serve_linear(ch, lp, &data, opts.fault.as_ref(), false)?;
    let reveal = Reveal {
        seed: format!("{seed:032x}"),
        compute_s,
        weight_encode_s,
    };
    let name = lp.params.name.as_str();
    let body = serde_json::to_vec(&reveal).expect("a reveal serialises");
    ch.send(Kind::Reveal, &body)
        .map_err(VerifyError::frame(name, "sending the reveal"))?;
    ch.flush().map_err(VerifyError::frame(name, "flushing"))?;
    Ok(())
}

/// One linear layer's protocol, server side, with `data` (weights, the server's input
/// share, the mask of each output coefficient): checks the client's parameter set, reads
/// the queries, computes and sends the responses. Returns the seconds spent on the
/// client's ciphertexts and the seconds spent encoding the weights (offline work).
pub(crate) fn serve_linear<S: Read + Write>(
    ch: &mut Channel<S>,
    lp: &LayerPlan,
    data: &super::ServerData,
    fault: Option<&Fault>,
    parallel: bool,
) -> Result<(f64, f64), VerifyError> {
    let p = &lp.params;
    let name = p.name.as_str();
    let start = ch.recv(Kind::LayerStart).map_err(VerifyError::frame(
        name,
        "reading the layer's parameter set",
    ))?;
    let theirs: LayerParams = serde_json::from_slice(&start).map_err(|e| VerifyError::Layer {
        layer: name.into(),
        message: format!("the client's parameter set is not valid: {e}"),
    })?;
    if &theirs != p {
        let theirs = super::transport::peer_text(format!("{theirs:?}").as_bytes());
        let msg = format!("layer '{name}': parameter sets differ: client {theirs}, server {p:?}");
        let _ = ch.send(Kind::Abort, msg.as_bytes());
        return Err(VerifyError::Mismatch(msg));
    }
    let mut queries = Vec::with_capacity(p.ct_in as usize);
    let mut compute = 0.0;
    for q in 0..p.ct_in {
        let payload = ch
            .recv(Kind::Query)
            .map_err(VerifyError::frame(name, &format!("reading query {q}")))?;
        let t = Instant::now();
        let query = match parse_query(p, &payload) {
            Ok(x) => x,
            Err(m) => {
                let msg = format!("layer '{name}', query {q}: {m}");
                let _ = ch.send(Kind::Abort, msg.as_bytes());
                return Err(VerifyError::Layer {
                    layer: name.into(),
                    message: format!("query {q}: {m}"),
                });
            }
        };
        queries.push(if p.log_q <= 64 {
            he::decompress::<u64>(&query, p.log_q)
        } else {
            he::decompress::<u128>(&query, p.log_q)
        });
        compute += t.elapsed().as_secs_f64();
    }
    let t = Instant::now();
    let (mut responses, weight_s) = compute_layer(lp, data, queries, parallel);
    compute += t.elapsed().as_secs_f64() - weight_s;
    if let Some(f) = fault
        && f.layer == p.name
        && let Some(r) = responses.get_mut(f.response)
        && f.bit / 8 < r.len()
    {
        r[f.bit / 8] ^= 1 << (f.bit % 8);
    }
    for (i, r) in responses.iter().enumerate() {
        ch.send(Kind::Response, r)
            .map_err(VerifyError::frame(name, &format!("sending response {i}")))?;
    }
    ch.flush().map_err(VerifyError::frame(name, "flushing"))?;
    Ok((compute.max(0.0), weight_s))
}
