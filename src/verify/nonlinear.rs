//! Non-linear layers run with real oblivious transfer ([`crate::ot`]) as two parties over
//! TCP, each checked against plaintext arithmetic.
//!
//! A ReLU layer whose input lives in Z_{2^l_in} and whose output the next layer needs in
//! Z_{2^l_out} runs as the model prices it: DReLU on l_in bits (CrypTFlow2's millionaire),
//! then a MUX on the low l_out bits of the shares when l_out <= l_in (reducing shares mod
//! 2^l_out is local), or a ReLU on l_in bits followed by an unsigned ring extension to l_out
//! bits (SiRNN's extension: a millionaire for the wrap and a B2A) when l_out > l_in.
//! The bytes each way and the rounds a layer is predicted to take are
//! [`crate::ot::sizes`] of exactly those steps: the same formulas the OT code's own tests
//! hold to the byte. The server's input share and output share are revealed after each
//! layer so that the client can check it (verification only, counted apart).

use super::VerifyError;
use super::otnet::{OtCounters, TcpOt};
use super::transport::{Channel, Kind};
use crate::model::report::Report;
use crate::ot::sizes::{self, Plan as SizePlan};
use crate::ot::{OtChannel, OtError, OtSession, Role, arith, mask, prg};
use crate::protocol::{CostModel, Link};
use crate::workload::{LayerKind, Network, Window};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Elements of one layer's batch at most (bounds every allocation of a run).
pub const MAX_ELEMENTS: u64 = 1 << 24;
/// Values per reveal message.
const REVEAL_CHUNK: usize = 1 << 16;

/// One non-linear layer to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NlLayer {
    pub name: String,
    /// Elements (all images of the batch).
    pub n: u64,
    pub l_in: u32,
    pub l_out: u32,
    /// Digit size of the millionaire.
    pub m: u32,
    /// Steps run, in words.
    pub steps: String,
    /// Max-pool: the window and the input shape (channels, rows, columns) of one image.
    #[serde(default)]
    pub pool: Option<(Window, [u64; 3])>,
    /// The CRT conversions of a linear layer in CRT slots over batch images (shares in
    /// Z_{2^l_in}, l_in = l_out).
    #[serde(default)]
    pub crt: Option<CrtConversions>,
}

/// What the CRT conversions of one linear layer run: for every converted component p
/// (docs/protocol-reference.md 4.2, 4.3), `n_in` non-negative activations from shares mod
/// 2^w into shares mod p ([`arith::ring_to_mod`]), then `n_out` signed w-bit accumulators
/// from shares mod p back to shares mod 2^w ([`arith::signed_mod_to_ring`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrtConversions {
    pub moduli: Vec<u64>,
    pub n_in: u64,
    pub n_out: u64,
}

impl CrtConversions {
    /// Elements of one component: its inputs, then its outputs.
    fn per_modulus(&self) -> usize {
        (self.n_in + self.n_out) as usize
    }
    /// The modulus element `i` of a run's vector lives in on the way in (2^w for the
    /// activations, p for the accumulators) and on the way out (p, then 2^w).
    fn moduli_of(&self, i: usize, w: u32) -> (u128, u128) {
        let p = self.moduli[i / self.per_modulus().max(1)] as u128;
        if ((i % self.per_modulus().max(1)) as u64) < self.n_in {
            (1u128 << w, p)
        } else {
            (p, 1u128 << w)
        }
    }
}

impl NlLayer {
    /// The size plan of exactly the steps run (party A = server).
    pub fn size_plan(&self) -> SizePlan {
        let (n, m) = (self.n, self.m);
        if let Some(c) = &self.crt {
            return c.moduli.iter().fold(SizePlan::new(), |plan, &p| {
                plan.then(&sizes::ring_to_mod_plan(c.n_in, p))
                    .then(&sizes::mod_to_ring_plan(c.n_out, self.l_in))
            });
        }
        if let Some((w, _)) = self.pool {
            let p = sizes::max_plan(n, w.kh * w.kw, self.l_in, m, false);
            return if self.l_out <= self.l_in {
                p
            } else {
                p.then(&sizes::extend_plan(n, self.l_in, self.l_out, m))
            };
        }
        if self.l_out <= self.l_in {
            sizes::drelu_plan(n, self.l_in, m).then(&sizes::mux_plan(n, self.l_out))
        } else {
            sizes::relu_plan(n, self.l_in, m).then(&sizes::extend_plan(n, self.l_in, self.l_out, m))
        }
    }

    /// Bits per value of the server's revealed output share.
    fn reveal_bits(&self) -> u32 {
        match &self.crt {
            Some(c) => c
                .moduli
                .iter()
                .map(|&p| crate::ot::iknp::mod_bits(p))
                .max()
                .unwrap_or(1)
                .max(self.l_out),
            None => self.l_out,
        }
    }
}

/// A layer the non-linear run leaves out, with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NlSkipped {
    pub name: String,
    pub reason: String,
}

/// The non-linear layers of a network under a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NlPlan {
    pub layers: Vec<NlLayer>,
    /// The model's bytes and rounds for each layer (its OT cost family), for comparison.
    pub model: Vec<(u64, u32)>,
    pub skipped: Vec<NlSkipped>,
}

/// The non-linear layers of `report` that this module runs (ReLU), restricted to `select`.
pub fn plan(
    net: &Network,
    report: &Report,
    cm: &CostModel,
    batch: u64,
    select: Option<&[String]>,
) -> Result<NlPlan, VerifyError> {
    let m = cm.primitives.digit_bits;
    let mut out = NlPlan {
        layers: Vec::new(),
        model: Vec::new(),
        skipped: Vec::new(),
    };
    for (i, (l, r)) in net.layers.iter().zip(&report.layers).enumerate() {
        if let Some(sel) = select
            && !sel.iter().any(|s| s == &l.name)
        {
            continue;
        }
        if r.class == crate::workload::CostClass::Linear {
            match crt_layer(net, i, r, m, batch) {
                Some(Ok((layer, model))) => {
                    out.layers.push(layer);
                    out.model.push(model);
                }
                Some(Err(reason)) => out.skipped.push(NlSkipped {
                    name: format!("{} (CRT conversions)", l.name),
                    reason,
                }),
                None => {}
            }
            continue;
        }
        if r.class != crate::workload::CostClass::NonLinear {
            continue;
        }
        let skip = |reason: &str| NlSkipped {
            name: l.name.clone(),
            reason: reason.to_string(),
        };
        let mut pool = None;
        match &l.kind {
            LayerKind::Relu {
                relu6: false,
                truncate: false,
            } => {}
            LayerKind::MaxPool { window } => {
                let k = window.kh * window.kw;
                if !(2..=1024).contains(&k) || window.sh == 0 || window.sw == 0 {
                    out.skipped.push(skip(
                        "a max-pool window of fewer than 2 or more than 1024 elements",
                    ));
                    continue;
                }
                pool = Some((*window, [l.input.c, l.input.h, l.input.w]));
            }
            LayerKind::Relu { .. } => {
                out.skipped.push(skip(
                    "ReLU6 and fused truncations are priced but not run yet",
                ));
                continue;
            }
            _ => {
                out.skipped.push(skip(&format!(
                    "{} is priced but not run with OT yet (ReLU layers are)",
                    r.kind
                )));
                continue;
            }
        }
        let Some(n) = l
            .output
            .elems()
            .checked_mul(batch.max(1))
            .filter(|&n| n <= MAX_ELEMENTS && l.input.elems() <= MAX_ELEMENTS)
        else {
            out.skipped.push(skip(&format!(
                "{} elements x batch {batch} exceed the run's cap of {MAX_ELEMENTS}",
                l.output.elems().max(l.input.elems())
            )));
            continue;
        };
        let (l_in, l_out) = (r.ring_bits_in, r.ring_bits_out);
        if !(2..=64).contains(&l_in) || !(1..=64).contains(&l_out) {
            out.skipped.push(skip(&format!(
                "rings 2^{l_in} -> 2^{l_out} are outside 2..=64 bits"
            )));
            continue;
        }
        if pool.is_some() && l_in < 4 {
            out.skipped.push(skip("a max-pool on fewer than 4 bits"));
            continue;
        }
        let steps = if let Some((w, _)) = pool {
            let k = w.kh * w.kw;
            if l_out <= l_in {
                format!("max of {k} ({} comparisons)", k - 1)
            } else {
                format!("max of {k} + extension {l_in} -> {l_out}")
            }
        } else if l_out <= l_in {
            format!("DReLU({l_in}) + MUX({l_out})")
        } else {
            format!("ReLU({l_in}) + extension {l_in} -> {l_out}")
        };
        out.layers.push(NlLayer {
            name: l.name.clone(),
            n,
            l_in,
            l_out,
            m,
            steps,
            pool,
            crt: None,
        });
        out.model.push((r.bytes_nonlinear, r.rounds));
    }
    Ok(out)
}

/// The CRT conversions of linear layer `i` when its mapping puts batch images in CRT
/// components, with the model's bytes and rounds for them; an error names why they are not
/// run; `None` for a layer without conversions.
#[allow(clippy::type_complexity)]
fn crt_layer(
    net: &Network,
    i: usize,
    r: &crate::model::report::LayerReport,
    m: u32,
    batch: u64,
) -> Option<Result<(NlLayer, (u64, u32)), String>> {
    use crate::mapping::PackDirection;
    let (mapping, he) = (r.mapping?, r.he?);
    if !mapping.packing.is_crt() || he.conversion_bytes == 0 {
        return None;
    }
    if mapping.packing.direction != PackDirection::Batch {
        return Some(Err(
            "CRT slots over spatial tiles are priced but their conversions are not run (CRT over batch images is)".into(),
        ));
    }
    let l = &net.layers[i];
    let w = r.ring_bits_out;
    let c = mapping.packing.factor;
    let Some(moduli) = crate::model::linear::crt_moduli(w, c) else {
        return Some(Err(format!("no {c} CRT components for {w}-bit shares")));
    };
    // The images of one component, each converting what the model prices.
    let per_component = batch.max(1) / c.max(1) as u64;
    let (per_in, per_out) = crate::model::crt_conversion_elems(net, i)?;
    let (n_in, n_out) = (per_in * per_component, per_out * per_component);
    // The first component is the share ring itself: nothing to convert.
    let converted = moduli.get(1..).unwrap_or_default().to_vec();
    let total = (n_in + n_out).checked_mul(converted.len() as u64);
    if total.is_none_or(|t| t > MAX_ELEMENTS) || !(2..=60).contains(&w) {
        return Some(Err(format!(
            "{} conversions of {w}-bit shares are beyond the run's cap of {MAX_ELEMENTS} elements and 2..=60 bits",
            (n_in + n_out).saturating_mul(converted.len() as u64)
        )));
    }
    let steps = format!(
        "CRT: {n_in} in ({w} -> Z_p) + {n_out} out (Z_p -> {w}) x {} components",
        converted.len()
    );
    Some(Ok((
        NlLayer {
            name: l.name.clone(),
            n: total.unwrap_or(0),
            l_in: w,
            l_out: w,
            m,
            steps,
            pool: None,
            crt: Some(CrtConversions {
                moduli: converted,
                n_in,
                n_out,
            }),
        },
        (he.conversion_bytes, he.conversion_rounds),
    )))
}

/// The result of one non-linear layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NlResult {
    pub name: String,
    pub steps: String,
    pub n: u64,
    pub correct: bool,
    pub mismatches: u64,
    /// Predicted by [`crate::ot::sizes`]: server -> client, client -> server, rounds.
    pub predicted_server_to_client: u64,
    pub predicted_client_to_server: u64,
    pub predicted_rounds: u64,
    /// Measured payload bytes and rounds (frame headers apart).
    pub measured_server_to_client: u64,
    pub measured_client_to_server: u64,
    pub measured_rounds: u64,
    /// The model's bytes and rounds for the layer under the protocol's OT cost family.
    pub model_bytes: u64,
    pub model_rounds: u32,
    /// Predicted time on the link from the predicted bytes and rounds, and measured time.
    pub predicted_s: f64,
    pub measured_s: f64,
}

/// The result of the non-linear run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NlReport {
    pub layers: Vec<NlResult>,
    /// The one-time base-OT setup: predicted and measured bytes each way.
    pub setup_predicted: u64,
    pub setup_measured: u64,
    pub skipped: Vec<NlSkipped>,
    pub ok: bool,
}

fn ot_err(layer: &str, e: OtError) -> VerifyError {
    VerifyError::Layer {
        layer: layer.to_string(),
        message: format!("OT: {e}"),
    }
}

fn setup_err(e: impl std::fmt::Display) -> VerifyError {
    VerifyError::Setup(format!("non-linear run: {e}"))
}

/// Runs one layer's protocol on `x` (this party's shares mod 2^l_in).
fn run_layer<C: OtChannel>(
    sess: &mut OtSession,
    ch: &mut C,
    p: &NlLayer,
    x: &[u64],
) -> Result<Vec<u64>, OtError> {
    if let Some(c) = &p.crt {
        let (w, k, n_in) = (p.l_in, c.per_modulus(), c.n_in as usize);
        let mut y = Vec::with_capacity(x.len());
        for (j, &q) in c.moduli.iter().enumerate() {
            let part = &x[j * k..(j + 1) * k];
            if n_in > 0 {
                y.extend(arith::ring_to_mod(sess, ch, &part[..n_in], w, q)?);
            }
            y.extend(arith::signed_mod_to_ring(sess, ch, &part[n_in..], q, w)?);
        }
        return Ok(y);
    }
    if let Some((w, shape)) = p.pool {
        let g: Vec<u64> = gather(&w, shape, p.n, |i| x[i]);
        let k = (w.kh * w.kw) as usize;
        let (y, _) = arith::max(sess, ch, &g, k, p.l_in, p.m, false)?;
        return if p.l_out <= p.l_in {
            Ok(y.iter().map(|&v| v & mask(p.l_out)).collect())
        } else {
            arith::extend(sess, ch, &y, p.l_in, p.l_out, true, p.m)
        };
    }
    if p.l_out <= p.l_in {
        let d = arith::drelu(sess, ch, x, p.l_in, p.m)?;
        let low: Vec<u64> = x.iter().map(|&v| v & mask(p.l_out)).collect();
        arith::mux(sess, ch, &d, &low, p.l_out)
    } else {
        let y = arith::relu(sess, ch, x, p.l_in, p.m)?;
        arith::extend(sess, ch, &y, p.l_in, p.l_out, false, p.m)
    }
}

/// The window elements of every max-pool output, k consecutive values per output (all
/// images of the batch, one after another), by the end-to-end run's rule
/// ([`super::e2e::windows`], [`super::e2e::gather_max`]): a padded position repeats the
/// window's first element inside the image, which leaves the maximum unchanged.
fn gather(w: &Window, [c, h, wd]: [u64; 3], n: u64, at: impl Fn(usize) -> u64) -> Vec<u64> {
    let wins = super::e2e::windows(w, [c, h, wd]);
    let per_image = wins.len().max(1) as u64;
    let image = (c * h * wd) as usize;
    let mut out = Vec::with_capacity((n * w.kh * w.kw) as usize);
    for img in 0..n.div_ceil(per_image) as usize {
        let x: Vec<u64> = (0..image).map(|i| at(img * image + i)).collect();
        out.extend(super::e2e::gather_max(&x, &wins));
    }
    out
}

/// Elements of the layer's input (all images) this party holds a share of.
fn input_len(p: &NlLayer) -> usize {
    if p.crt.is_some() {
        return p.n as usize;
    }
    match p.pool {
        Some((win, [c, h, w])) => {
            let per_out = win.out_hw(h, w).map_or(1, |(a, b)| c * a * b).max(1);
            ((p.n / per_out) * c * h * w) as usize
        }
        None => p.n as usize,
    }
}

/// This party's share for a layer from 64 random bits. A ReLU takes uniform shares mod 2^l.
/// A max-pool's values must stay within a quarter of the ring so that window differences
/// cannot wrap: the server's share is uniform in [0, 2^(l-2)), the client's in
/// [-2^(l-3), 2^(l-3)) (negative ones wrap mod 2^l).
fn share(p: &NlLayer, v: u64, server: bool) -> u64 {
    let l = p.l_in;
    match (p.pool.is_some(), server) {
        (false, _) => v & mask(l),
        (true, true) => v & mask(l - 2),
        (true, false) => (v & mask(l - 2)).wrapping_sub(1u64 << (l - 3)) & mask(l),
    }
}

/// The plaintext result of a layer on the reconstructed input `x` (mod 2^l_in).
fn expected(p: &NlLayer, x: &[u64]) -> Vec<u64> {
    let l = p.l_in;
    let signed = |v: u64| {
        if v >> (l - 1) & 1 == 1 {
            v as i128 - (1i128 << l)
        } else {
            v as i128
        }
    };
    let out_mask = mask(p.l_out) as i128;
    match p.pool {
        Some((w, shape)) => {
            let g = gather(&w, shape, p.n, |i| x[i]);
            let k = (w.kh * w.kw) as usize;
            g.chunks(k.max(1))
                .map(|c| {
                    let m = c.iter().map(|&v| signed(v)).max().unwrap_or(0);
                    (m & out_mask) as u64
                })
                .collect()
        }
        None => x
            .iter()
            .map(|&v| (signed(v).max(0) & out_mask) as u64)
            .collect(),
    }
}

fn shares_from_seed(seed: [u8; 32], p: &NlLayer) -> Vec<u64> {
    let mut g = ChaCha20Rng::from_seed(seed);
    if let Some(c) = &p.crt {
        // Uniform mod each element's input modulus (the bias of 64 bits mod a modulus below
        // 2^62 does not matter to a check).
        return (0..input_len(p))
            .map(|i| (g.next_u64() as u128 % c.moduli_of(i, p.l_in).0) as u64)
            .collect();
    }
    (0..input_len(p))
        .map(|_| share(p, g.next_u64(), true))
        .collect()
}

/// The client's shares of a CRT conversion layer, given the server's: values drawn by the
/// client (non-negative activations below 2^(w-1), signed w-bit accumulators, the extremes
/// first), and the values the outputs must open to.
fn crt_client_shares(
    p: &NlLayer,
    c: &CrtConversions,
    xa: &[u64],
    g: &mut impl RngCore,
) -> (Vec<u64>, Vec<u128>) {
    let w = p.l_in;
    let k = c.per_modulus();
    let mut x = Vec::with_capacity(xa.len());
    let mut want = Vec::with_capacity(xa.len());
    for (i, &a) in xa.iter().enumerate() {
        let (m_in, m_out) = c.moduli_of(i, w);
        let j = (i % k.max(1)) as u64;
        let (v_in, v_out): (u128, u128) = if j < c.n_in {
            let v = match j {
                0 => 0,
                1 => mask(w - 1),
                _ => g.next_u64() & mask(w - 1),
            } as u128;
            (v, v)
        } else {
            let s: i128 = match j - c.n_in {
                0 => -(1i128 << (w - 1)),
                1 => (1i128 << (w - 1)) - 1,
                _ => (((g.next_u64() << (64 - w)) as i64) >> (64 - w)) as i128,
            };
            (
                s.rem_euclid(m_in as i128) as u128,
                s.rem_euclid(m_out as i128) as u128,
            )
        };
        x.push(((v_in + m_in - a as u128 % m_in) % m_in) as u64);
        want.push(v_out);
    }
    (x, want)
}

/// Flip one bit of the server's output share of a layer (mutation testing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlFault {
    pub layer: String,
    pub element: usize,
}

/// The server party of the non-linear run.
pub fn serve(
    stream: TcpStream,
    p: &NlPlan,
    timeout: Duration,
    fault: Option<&NlFault>,
) -> Result<(), VerifyError> {
    let mut c = Channel::new(stream);
    let hello = c.recv(Kind::Hello).map_err(setup_err)?;
    let theirs: Vec<NlLayer> = serde_json::from_slice(&hello)
        .map_err(|e| setup_err(format!("bad hello from the client: {e}")))?;
    if theirs != p.layers {
        let _ = c.send(
            Kind::Abort,
            b"the client's non-linear layers differ from the server's",
        );
        return Err(setup_err(
            "the client's non-linear layers differ from the server's",
        ));
    }
    c.send(Kind::HelloAck, b"{}").map_err(setup_err)?;
    let mut ch = TcpOt::new(c.into_inner(), timeout).map_err(setup_err)?;
    let mut sess = OtSession::setup(&mut ch, Role::A).map_err(|e| ot_err("base OT setup", e))?;
    for l in &p.layers {
        let mut seed = [0u8; 32];
        prg::os_rng()
            .map_err(|e| ot_err(&l.name, e))?
            .fill_bytes(&mut seed);
        let x = shares_from_seed(seed, l);
        // Verification only: the seed of the input share, before the run where the client
        // deals the values (CRT conversions), after it otherwise.
        if l.crt.is_some() {
            ch.send_msg(&seed).map_err(|e| ot_err(&l.name, e))?;
        }
        let mut y = run_layer(&mut sess, &mut ch, l, &x).map_err(|e| ot_err(&l.name, e))?;
        if let Some(f) = fault.filter(|f| f.layer == l.name)
            && let Some(v) = y.get_mut(f.element)
        {
            *v ^= 1;
        }
        if l.crt.is_none() {
            ch.send_msg(&seed).map_err(|e| ot_err(&l.name, e))?;
        }
        // Verification only: the output share.
        for c in y.chunks(REVEAL_CHUNK) {
            ch.send_msg(&prg::pack(c, l.reveal_bits()))
                .map_err(|e| ot_err(&l.name, e))?;
        }
    }
    ch.finish().map_err(|e| ot_err("closing", e))?;
    Ok(())
}

/// The client party: runs every layer, checks it, and reports.
pub fn run_client(
    stream: TcpStream,
    p: &NlPlan,
    link: &Link,
    cm: &CostModel,
    timeout: Duration,
    progress: &dyn Fn(&str),
) -> Result<NlReport, VerifyError> {
    let mut c = Channel::new(stream);
    let hello = serde_json::to_vec(&p.layers).map_err(setup_err)?;
    c.send(Kind::Hello, &hello).map_err(setup_err)?;
    c.recv(Kind::HelloAck).map_err(setup_err)?;
    let mut ch = TcpOt::new(c.into_inner(), timeout).map_err(setup_err)?;
    let mut sess = OtSession::setup(&mut ch, Role::B).map_err(|e| ot_err("base OT setup", e))?;
    let setup = ch.counters;
    let setup_cost = sizes::base_setup();
    let mut g = prg::os_rng().map_err(|e| ot_err("client randomness", e))?;
    let mut layers = Vec::new();
    for (i, l) in p.layers.iter().enumerate() {
        progress(&format!("{} ({} elements, {})", l.name, l.n, l.steps));
        let n = l.n as usize;
        let recv_seed = |ch: &mut TcpOt| -> Result<[u8; 32], VerifyError> {
            let seed_msg = ch
                .recv_msg(32, "reveal: seed of the server's share")
                .map_err(|e| ot_err(&l.name, e))?;
            let mut seed = [0u8; 32];
            seed.copy_from_slice(&seed_msg);
            Ok(seed)
        };
        // CRT conversions: the client deals the values, from the server's share; the values
        // its outputs must open to, each with its modulus, are known before the run.
        let (x, dealt) = match &l.crt {
            Some(c) => {
                let xa = shares_from_seed(recv_seed(&mut ch)?, l);
                let (x, want) = crt_client_shares(l, c, &xa, &mut g);
                let want = want
                    .into_iter()
                    .enumerate()
                    .map(|(i, w)| (w, c.moduli_of(i, l.l_in).1))
                    .collect::<Vec<(u128, u128)>>();
                (x, Some(want))
            }
            None => (
                (0..input_len(l))
                    .map(|_| share(l, g.next_u64(), false))
                    .collect::<Vec<u64>>(),
                None,
            ),
        };
        let before: OtCounters = ch.counters;
        let t = Instant::now();
        let y = run_layer(&mut sess, &mut ch, l, &x).map_err(|e| ot_err(&l.name, e))?;
        let measured_s = t.elapsed().as_secs_f64();
        let after = ch.counters;
        // Every output against its expected value mod its ring: dealt, or the plaintext
        // result on the input opened from the server's revealed share (its seed comes
        // before its output share).
        let want: Vec<(u128, u128)> = match dealt {
            Some(want) => want,
            None => {
                let xa = shares_from_seed(recv_seed(&mut ch)?, l);
                let plain: Vec<u64> = xa
                    .iter()
                    .zip(&x)
                    .map(|(a, b)| a.wrapping_add(*b) & mask(l.l_in))
                    .collect();
                expected(l, &plain)
                    .into_iter()
                    .map(|w| (w as u128, 1u128 << l.l_out))
                    .collect()
            }
        };
        let rb = l.reveal_bits();
        let mut ya = Vec::with_capacity(n);
        for k in (0..n).step_by(REVEAL_CHUNK) {
            let cnt = REVEAL_CHUNK.min(n - k);
            let len = (cnt as u64 * rb as u64).div_ceil(8) as usize;
            let b = ch
                .recv_msg(len, "reveal: the server's output share")
                .map_err(|e| ot_err(&l.name, e))?;
            ya.extend(
                prg::unpack(&b, cnt, rb, "reveal: the server's output share")
                    .map_err(|e| ot_err(&l.name, e))?,
            );
        }
        // Rounds of the reveal are not the protocol's: the next layer's count restarts.
        ch.counters.rounds = after.rounds;
        let mismatches = (want.len() as u64).abs_diff(n as u64)
            + ya.iter()
                .zip(&y)
                .zip(&want)
                .filter(|((a, b), (w, m))| (**a as u128 + **b as u128) % m != *w)
                .count() as u64;
        let pred = l.size_plan().cost();
        let bytes = pred.bytes_a_to_b + pred.bytes_b_to_a;
        let compute = bytes as f64 * 8.0 * cm.compute.ot_ns_per_bit * 1e-9;
        let (model_bytes, model_rounds) = p.model.get(i).copied().unwrap_or((0, 0));
        layers.push(NlResult {
            name: l.name.clone(),
            steps: l.steps.clone(),
            n: l.n,
            correct: mismatches == 0,
            mismatches,
            predicted_server_to_client: pred.bytes_a_to_b,
            predicted_client_to_server: pred.bytes_b_to_a,
            predicted_rounds: pred.rounds,
            measured_server_to_client: after.payload_received - before.payload_received,
            measured_client_to_server: after.payload_sent - before.payload_sent,
            measured_rounds: after.rounds - before.rounds,
            model_bytes,
            model_rounds,
            predicted_s: crate::model::step_latency(link, bytes, pred.rounds as u32, compute),
            measured_s,
        });
    }
    ch.finish().map_err(|e| ot_err("closing", e))?;
    let ok = layers.iter().all(|l| l.correct);
    Ok(NlReport {
        layers,
        setup_predicted: setup_cost.bytes_a_to_b + setup_cost.bytes_b_to_a,
        setup_measured: setup.payload_sent + setup.payload_received,
        skipped: p.skipped.clone(),
        ok,
    })
}

/// Both parties as threads of this process over loopback TCP.
pub fn run_local(
    p: &NlPlan,
    link: &Link,
    cm: &CostModel,
    fault: Option<&NlFault>,
    progress: &dyn Fn(&str),
) -> Result<NlReport, VerifyError> {
    let timeout = Duration::from_secs(120);
    super::loopback(
        |stream| serve(stream, p, timeout, fault),
        |stream| run_client(stream, p, link, cm, timeout, progress),
    )
}
