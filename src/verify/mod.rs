//! The verify mode: runs the linear layers of a network with real homomorphic encryption
//! (`tfhe`'s core_crypto) as two parties over a byte stream, with exactly the mapping the
//! model chose, checks the reconstructed shares against plaintext integer arithmetic, and
//! measures bytes, time and noise to set beside the model's predictions.
//!
//! The only place of the crate that uses tfhe. [`plan`] turns a model [`Report`] into the
//! layers to run; [`client::run`] and [`server::serve`] are the two parties over a
//! [`transport::Channel`]; [`run_local`] runs both as threads over loopback TCP.

pub mod bitpack;
pub mod client;
pub mod e2e;
pub mod encoding;
pub mod he;
pub mod measure;
pub mod nonlinear;
pub mod ntt;
pub mod otnet;
pub mod packing;
pub mod plain;
pub mod server;
pub mod transport;

use crate::mapping::{LinearMapping, Packing, Tiling};
use crate::model::he_context;
use crate::model::linear::{ConvGeom, LinearCost};
use crate::model::report::Report;
use crate::protocol::{CostModel, Link, Protocol};
use crate::workload::{Layer, Network};
use encoding::Layout;
use packing::Packer;
use plain::{Crt, PlainModulus};
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::math::random::{RandomGenerator, Seed};
use tfhe::core_crypto::prelude::DefaultRandomGenerator;
use transport::FrameError;

/// Largest ciphertext modulus the verify mode runs: its u128 container (a 128-bit modulus
/// once overflowed the bit packer's masks and made every output wrong; the packer now
/// takes 128-bit values, tested).
pub const MAX_LOG_Q: u32 = 128;
/// Elements of a linear layer's input or output the verify mode runs at most.
pub const MAX_LAYER_ELEMENTS: u64 = 1 << 24;
/// Ciphertexts each way of one layer at most.
pub const MAX_LAYER_CIPHERTEXTS: u64 = 1 << 16;
/// Bytes (both ways) of one layer at most.
pub const MAX_LAYER_BYTES: u64 = 1 << 32;
/// Images of a batch one layer runs at most.
pub const MAX_BATCH: u64 = 64;

/// The parameter set of one layer, as both parties must agree on it (sent with each layer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerParams {
    pub name: String,
    pub n: u64,
    pub log_q: u32,
    pub log_t: u32,
    /// Bits of the shares' ring l.
    pub ring_bits: u32,
    pub weight_bits: u32,
    pub c1_bits: u32,
    pub c0_bits: u32,
    pub ct_in: u64,
    pub ct_out: u64,
    pub kept: u64,
    pub tiling: Tiling,
    pub packing: Packing,
    pub error_std: f64,
    /// `client` slots: the input is the client's own data, unsigned of this many bits, and
    /// the server holds no share of it.
    #[serde(default)]
    pub client_input_bits: Option<u32>,
    /// Images of the batch this layer runs, and independent runs of the layout they take
    /// (the batch, or the batch over the CRT components when images share ciphertexts).
    pub images: u64,
    pub runs: u64,
    /// CRT components t_1 ... t_c of the plaintext modulus (empty: t = 2^log_t). Image
    /// `run * c + i` is held by component i, its shares mod t_i.
    pub crt_moduli: Vec<u64>,
}

/// One layer to run.
#[derive(Debug, Clone)]
pub struct LayerPlan {
    pub params: LayerParams,
    pub layer: Layer,
    /// The packing, and the virtual layer the coefficient encoding runs.
    pub packer: Packer,
    /// The encoding of the virtual layer.
    pub layout: Layout,
    pub cost: LinearCost,
    pub predicted_s: f64,
    /// The model's offline time for the layer (its weights in NTT form).
    pub predicted_offline_s: f64,
    /// The plaintext modulus t, and its CRT components when it has them.
    pub plain: PlainModulus,
    pub crt: Option<Crt>,
}

impl LayerPlan {
    /// Elements of one image's input and output.
    pub fn in_elems(&self) -> usize {
        self.layer.input.elems() as usize
    }
    pub fn out_elems(&self) -> usize {
        self.layer.output.elems() as usize
    }
    /// Coefficients of one run's (virtual) output.
    pub fn virt_out_elems(&self) -> usize {
        self.packer.virt.out_elems() as usize
    }
    /// Images of one run: the CRT components, or 1.
    pub fn images_per_run(&self) -> u64 {
        self.crt.as_ref().map_or(1, |c| c.moduli.len() as u64)
    }
    /// The ring of image `image`'s input and output shares: 2^l, or its CRT component.
    pub fn share_ring(&self, image: u64) -> PlainModulus {
        match &self.crt {
            Some(c) => {
                PlainModulus::new(c.moduli[(image % c.moduli.len() as u64) as usize] as u128)
                    .expect("CRT components are at least 2")
            }
            None => PlainModulus {
                t: 1u128 << self.params.ring_bits,
                log_t: self.params.ring_bits,
            },
        }
    }
    /// The virtual input of run `run` (values mod t) from one party's input, every image
    /// of the batch one after another (each in its share ring): Cheetah's preprocessing,
    /// then the bit slots, or the CRT composition of the run's images.
    pub fn virtual_input(&self, x: &[u64], run: u64) -> Vec<u128> {
        let e = self.in_elems();
        let image = |i: u64| {
            let s = i as usize * e;
            encoding::preprocess(&self.layer, &x[s..s + e])
        };
        match &self.crt {
            None => self.packer.pack_input(&image(run)),
            Some(c) => {
                let k = c.moduli.len() as u64;
                let parts: Vec<Vec<u64>> = (0..k).map(|i| image(run * k + i)).collect();
                let mut res = vec![0u64; k as usize];
                (0..parts[0].len())
                    .map(|j| {
                        for (r, p) in res.iter_mut().zip(&parts) {
                            *r = p[j];
                        }
                        c.compose(&res)
                    })
                    .collect()
            }
        }
    }
    /// Each image's real output share (images one after another) from one party's output
    /// coefficients `y` (runs x virtual outputs, mod t): the client's share is its slot or
    /// CRT component of the decrypted coefficient, the server's (`negate`) minus that of its
    /// mask.
    pub fn real_shares(&self, y: &[u128], negate: bool) -> Vec<u64> {
        let (e, v) = (self.out_elems(), self.virt_out_elems());
        let mut out = vec![0u64; self.params.images as usize * e];
        for run in 0..self.params.runs as usize {
            let yr = &y[run * v..(run + 1) * v];
            match &self.crt {
                Some(c) => {
                    let k = c.moduli.len();
                    for (j, &val) in yr.iter().enumerate() {
                        for (i, (r, &m)) in c.decompose(val).into_iter().zip(&c.moduli).enumerate()
                        {
                            out[(run * k + i) * e + j] = if negate && r != 0 { m - r } else { r };
                        }
                    }
                }
                None => {
                    let mask = ring_mask(self.params.ring_bits);
                    let o = &mut out[run * e..(run + 1) * e];
                    for (j, &val) in yr.iter().enumerate() {
                        for (shift, real) in self.packer.slots(j) {
                            let s = (val >> shift) as u64 & mask;
                            if let Some(x) = o.get_mut(real) {
                                *x = if negate {
                                    0u64.wrapping_sub(s) & mask
                                } else {
                                    s
                                };
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// A linear layer the verify mode does not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// What both parties run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub network: String,
    pub protocol: Protocol,
    pub bits: String,
    pub link: String,
    pub layers: Vec<LayerPlan>,
    pub skipped: Vec<Skipped>,
    /// A parameter set below 128-bit security was accepted (`--allow-insecure`): every
    /// output of the run says so.
    pub insecure: bool,
}

/// How the layers' data are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataMode {
    /// Shares uniform mod 2^l, weights uniform signed b_w-bit integers (CSPRNG).
    #[default]
    Random,
    /// Every share 2^l - 1 and every weight -2^(b_w - 1): the largest values the slots
    /// must hold.
    WorstCase,
}

/// Why a verify run failed (a wrong result is not an error: it is reported as a mismatch).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("layer '{layer}': {what}: {source}")]
    Frame {
        layer: String,
        what: String,
        #[source]
        source: FrameError,
    },
    #[error("{0}")]
    Setup(String),
    #[error("layer '{layer}': {message}")]
    Layer { layer: String, message: String },
    #[error("the parties disagree: {0}")]
    Mismatch(String),
}

impl VerifyError {
    pub(crate) fn frame(layer: &str, what: &str) -> impl FnOnce(FrameError) -> VerifyError {
        let (layer, what) = (layer.to_string(), what.to_string());
        move |source| VerifyError::Frame {
            layer,
            what,
            source,
        }
    }
}

/// Builds the run from a model report: every linear layer with a coefficient-encoded
/// mapping, restricted to `select` when given. Layers that cannot run are listed with the
/// reason.
pub fn plan(
    net: &Network,
    report: &Report,
    protocol: Protocol,
    cm: &CostModel,
    link: &Link,
    select: Option<&[String]>,
) -> Result<Plan, VerifyError> {
    if let Some(sel) = select {
        for s in sel {
            if net.layer_index(s).is_none() {
                return Err(VerifyError::Setup(format!(
                    "--layers: the network '{}' has no layer named '{s}'",
                    net.name
                )));
            }
        }
    }
    let pf = cm.protocol_file(protocol);
    let mut layers = Vec::new();
    let mut skipped = Vec::new();
    // Rings and CRT components sized to the weights' norms stay exact mod 2^l and mod t_i
    // for any weights; bit slots do not.
    let weights_bound = report.accumulator == crate::model::AccumulatorBound::Weights.describe();
    for (l, r) in net.layers.iter().zip(&report.layers) {
        if r.class != crate::workload::CostClass::Linear {
            continue;
        }
        if let Some(sel) = select
            && !sel.iter().any(|s| s == &l.name)
        {
            continue;
        }
        let skip = |reason: String| Skipped {
            name: l.name.clone(),
            reason,
        };
        let (Some(mapping), Some(cost)) = (r.mapping, r.he) else {
            skipped.push(skip(format!(
                "{} runs this layer with SIMD encoding ({}); the verify mode runs only Cheetah's coefficient encoding",
                protocol,
                if r.note.is_empty() { "no coefficient mapping" } else { &r.note }
            )));
            continue;
        };
        // Bounds on what one run may allocate (its tensors, ciphertexts and bytes).
        let big = l.input.elems() > MAX_LAYER_ELEMENTS
            || l.output.elems() > MAX_LAYER_ELEMENTS
            || cost.ct_in > MAX_LAYER_CIPHERTEXTS
            || cost.ct_out > MAX_LAYER_CIPHERTEXTS
            || cost.bytes_in + cost.bytes_out > MAX_LAYER_BYTES;
        if big {
            skipped.push(skip(format!(
                "beyond the verify mode's caps ({} input and {} output elements, {} + {} ciphertexts, {} bytes; at most {MAX_LAYER_ELEMENTS} elements, {MAX_LAYER_CIPHERTEXTS} ciphertexts each way and {MAX_LAYER_BYTES} bytes)",
                l.input.elems(),
                l.output.elems(),
                cost.ct_in,
                cost.ct_out,
                cost.bytes_in + cost.bytes_out
            )));
            continue;
        }
        let Some(g) = ConvGeom::of(l) else {
            skipped.push(skip(
                "not a convolution, fully connected or batch norm".into(),
            ));
            continue;
        };
        if weights_bound && mapping.packing.is_packed() && !mapping.packing.is_crt() {
            skipped.push(skip(
                "bit slots sized to the weights' own L1 norm (--accumulator weights) hold only those weights, and the verify mode draws random ones".into(),
            ));
            continue;
        }
        let packer = match Packer::new(&g, mapping.packing, cost.slot_bits) {
            Ok(x) => x,
            Err(e) => {
                skipped.push(skip(e.to_string()));
                continue;
            }
        };
        let virtual_mapping = LinearMapping {
            packing: Packing::NONE,
            ..mapping
        };
        let mut layout = match Layout::new(&packer.virt, &virtual_mapping) {
            Ok(x) => x,
            Err(e) => {
                skipped.push(skip(e.to_string()));
                continue;
            }
        };
        let ctx = he_context(protocol, cm, r.ring_bits_out, r.bits, true);
        layout.stride1 = ctx.stride1_responses;
        let ring_bits = r.ring_bits_out;
        // The plaintext modulus: CRT components chosen by the model's rule, or a power of two.
        let crt = if mapping.packing.is_crt() {
            let moduli = crate::model::linear::crt_moduli(ring_bits, mapping.packing.factor)
                .ok_or_else(|| VerifyError::Layer {
                    layer: l.name.clone(),
                    message: format!(
                        "no {} CRT components for {ring_bits}-bit shares",
                        mapping.packing.factor
                    ),
                })?;
            Some(Crt::new(&moduli).map_err(|e| VerifyError::Layer {
                layer: l.name.clone(),
                message: e.to_string(),
            })?)
        } else {
            None
        };
        let plain = match &crt {
            Some(c) => Ok(c.t),
            None => PlainModulus::pow2(packer.log_t(ring_bits)),
        };
        let plain = match plain {
            Ok(t) if t.log_t == cost.log_t && ring_bits <= 64 && cost.log_q <= MAX_LOG_Q => t,
            _ => {
                skipped.push(skip(format!(
                    "plaintext modulus of {} bits with shares mod 2^{} and q = 2^{} is outside what the verify mode runs (t = 2^l unpacked, 2^(slots x {}) packed or a CRT product, log t <= {}, l <= 64, log q <= {MAX_LOG_Q})",
                    cost.log_t,
                    ring_bits,
                    cost.log_q,
                    cost.slot_bits,
                    plain::MAX_LOG_T
                )));
                continue;
            }
        };
        let runs = cost.runs.max(1);
        let per_run = crt.as_ref().map_or(1, |c| c.moduli.len() as u64);
        let images = runs * per_run;
        if images > MAX_BATCH || images * (l.input.elems() + l.output.elems()) > MAX_LAYER_ELEMENTS
        {
            skipped.push(skip(format!(
                "a batch of {images} images of {} + {} elements is beyond the verify mode's caps (at most {MAX_BATCH} images and {MAX_LAYER_ELEMENTS} elements)",
                l.input.elems(),
                l.output.elems()
            )));
            continue;
        }
        if layout.queries() * runs != cost.ct_in || layout.responses() * runs != cost.ct_out {
            return Err(VerifyError::Layer {
                layer: l.name.clone(),
                message: format!(
                    "the encoding gives {} queries and {} responses in each of {runs} runs, the model {} and {} in all",
                    layout.queries(),
                    layout.responses(),
                    cost.ct_in,
                    cost.ct_out
                ),
            });
        }
        let sent: u64 = (0..layout.responses())
            .map(|r| layout.sent(r).len() as u64)
            .sum();
        if sent * runs != cost.kept {
            return Err(VerifyError::Layer {
                layer: l.name.clone(),
                message: format!(
                    "the encoding's responses carry {sent} body coefficients in each of {runs} runs, the model {} in all",
                    cost.kept
                ),
            });
        }
        let predicted_s = crate::model::mapping_latency(link, &cm.compute, &mapping, &cost);
        let predicted_offline_s =
            crate::model::linear_offline_s(&cm.compute, mapping.n.as_u64(), &cost);
        layers.push(LayerPlan {
            params: LayerParams {
                name: l.name.clone(),
                n: mapping.n.as_u64(),
                log_q: cost.log_q,
                log_t: cost.log_t,
                ring_bits,
                weight_bits: ctx.weight_bits,
                c1_bits: cost.c1_bits,
                c0_bits: cost.c0_bits,
                ct_in: cost.ct_in,
                ct_out: cost.ct_out,
                kept: cost.kept,
                tiling: mapping.tiling,
                packing: mapping.packing,
                error_std: pf.he.error_std,
                client_input_bits: (mapping.packing.is_packed()
                    && mapping.packing.scheme == crate::mapping::SlotScheme::Client)
                    .then(|| r.bits.map_or(8, |b| b.a.get())),
                images,
                runs,
                crt_moduli: crt.as_ref().map_or(Vec::new(), |c| c.moduli.clone()),
            },
            layer: l.clone(),
            packer,
            layout,
            cost,
            predicted_s,
            predicted_offline_s,
            plain,
            crt,
        });
    }
    Ok(Plan {
        network: net.name.clone(),
        protocol,
        bits: report.bits.clone(),
        link: report.link.name.clone(),
        layers,
        skipped,
        insecure: report.insecure,
    })
}

/// A CSPRNG (tfhe's AES-CTR generator) from a seed.
pub(crate) fn rng(seed: u128) -> RandomGenerator<DefaultRandomGenerator> {
    RandomGenerator::new(Seed(seed))
}

/// A fresh seed from the operating system's entropy (tfhe's seeder).
pub(crate) fn fresh_seed() -> u128 {
    tfhe::core_crypto::prelude::new_seeder().seed().0
}

pub(crate) fn ring_mask(l: u32) -> u64 {
    if l >= 64 { u64::MAX } else { (1u64 << l) - 1 }
}

/// Shares mod 2^l of `count` elements.
pub(crate) fn draw_shares(
    g: &mut RandomGenerator<DefaultRandomGenerator>,
    count: usize,
    l: u32,
    mode: DataMode,
) -> Vec<u64> {
    let mask = ring_mask(l);
    (0..count)
        .map(|_| match mode {
            DataMode::Random => g.random_uniform::<u64>() & mask,
            DataMode::WorstCase => mask,
        })
        .collect()
}

/// The server's data for one layer: weights, its input share, and the mask of each
/// (virtual) output coefficient, uniform mod t.
pub struct ServerData {
    pub weights: Vec<i64>,
    pub x_s: Vec<u64>,
    pub mask: Vec<u128>,
}

/// The server's layer data, drawn from `seed` (so that the client can check the result
/// once the seed is revealed).
pub fn server_data(seed: u128, p: &LayerPlan, mode: DataMode) -> ServerData {
    let mut g = rng(seed);
    let wb = p.params.weight_bits.clamp(1, 63);
    let count = encoding::weight_count(&p.layer).unwrap_or(0);
    let half = 1i64 << (wb - 1);
    let weights = (0..count)
        .map(|_| match mode {
            DataMode::Random => (g.random_uniform::<u64>() >> (64 - wb)) as i64 - half,
            DataMode::WorstCase => -half,
        })
        .collect();
    let x_s = if p.params.client_input_bits.is_some() {
        vec![0; p.params.images as usize * p.in_elems()]
    } else {
        draw_batch(&mut g, p, mode)
    };
    let mask = (0..p.params.runs as usize * p.virt_out_elems())
        .map(|_| p.plain.uniform(|| draw_u128(&mut g)))
        .collect();
    ServerData { weights, x_s, mask }
}

fn draw_u128(g: &mut RandomGenerator<DefaultRandomGenerator>) -> u128 {
    let hi = g.random_uniform::<u64>() as u128;
    (hi << 64) | g.random_uniform::<u64>() as u128
}

/// One party's input shares of every image of the batch (one after another), each uniform
/// in its image's share ring ([`LayerPlan::share_ring`]), or its largest value.
pub(crate) fn draw_batch(
    g: &mut RandomGenerator<DefaultRandomGenerator>,
    p: &LayerPlan,
    mode: DataMode,
) -> Vec<u64> {
    let mut out = Vec::with_capacity(p.params.images as usize * p.in_elems());
    for i in 0..p.params.images {
        let ring = p.share_ring(i);
        for _ in 0..p.in_elems() {
            out.push(match mode {
                DataMode::Random => ring.uniform(|| draw_u128(g)) as u64,
                DataMode::WorstCase => (ring.t - 1) as u64,
            });
        }
    }
    out
}

/// One wrong output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    /// Index over the batch's outputs (image-major, then channel-major) and the position
    /// in its image as (channel, row, column).
    pub index: usize,
    pub position: [u64; 3],
    /// `None`: no response slot held this output.
    pub got: Option<u64>,
    pub expected: u64,
}

/// A decrypted coefficient that is not the plaintext result plus the mask (values mod t,
/// in decimal: they can exceed 64 bits).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoefficientMismatch {
    /// Index of the (virtual) output coefficient, M' x out_h' x out_w'.
    pub index: usize,
    pub got: String,
    pub expected: String,
}

/// Measured against predicted, for one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerResult {
    pub name: String,
    pub correct: bool,
    pub mismatches: u64,
    pub first_mismatches: Vec<Mismatch>,
    /// Decrypted coefficients that differ from plaintext result + mask (exact check, also
    /// for packed layers, whose slot decoding has a tolerance).
    pub coefficient_mismatches: u64,
    pub first_coefficient_mismatches: Vec<CoefficientMismatch>,
    /// Largest |error| accepted per output (0: exact).
    pub tolerance: u64,
    pub n: u64,
    pub log_q: u32,
    pub log_t: u32,
    pub tiling: String,
    pub packing: String,
    /// Images of the batch run, in how many runs of the layout (CRT components share one).
    pub images: u64,
    pub runs: u64,
    /// The CRT components of t (empty: t = 2^log_t).
    pub crt_moduli: Vec<u64>,
    pub ct_in: u64,
    pub ct_out: u64,
    /// Bytes both ways: the model's (bit-packed), the ciphertext payloads sent, and all
    /// bytes on the socket for the layer (payloads, frame headers, the layer's parameter set).
    pub predicted_bytes: u64,
    pub payload_bytes: u64,
    pub measured_bytes: u64,
    pub predicted_bytes_client_to_server: u64,
    pub measured_bytes_client_to_server: u64,
    pub predicted_bytes_server_to_client: u64,
    pub measured_bytes_server_to_client: u64,
    pub predicted_s: f64,
    pub measured_s: f64,
    pub encrypt_s: f64,
    pub server_s: f64,
    /// Server time encoding the weights into NTT form: input-independent (offline), not
    /// included in `measured_s`; and the model's prediction of it.
    pub weight_encode_s: f64,
    pub predicted_offline_s: f64,
    pub decrypt_s: f64,
    pub transfer_s: f64,
    /// log2((Delta / 2) / largest decryption error observed), after truncation.
    pub noise_headroom_bits: f64,
    /// The model's headroom (before the response truncation).
    pub model_headroom_bits: f64,
}

/// The result of a verify run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub network: String,
    pub protocol: String,
    pub bits: String,
    pub link: String,
    pub tolerance: String,
    pub layers: Vec<LayerResult>,
    pub not_run: Vec<Skipped>,
    pub predicted_bytes: u64,
    pub measured_bytes: u64,
    pub predicted_s: f64,
    pub measured_s: f64,
    /// The non-linear layers run with real OT, when they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonlinear: Option<nonlinear::NlReport>,
    /// Parameters below 128-bit security were accepted (`--allow-insecure`).
    pub insecure: bool,
}

impl VerifyReport {
    /// The report of a run with no linear layer (only `plan`'s skipped ones listed).
    pub fn without_layers(plan: &Plan) -> VerifyReport {
        VerifyReport {
            ok: true,
            network: plan.network.clone(),
            protocol: plan.protocol.name().into(),
            bits: plan.bits.clone(),
            link: plan.link.clone(),
            tolerance: String::new(),
            layers: Vec::new(),
            not_run: plan.skipped.clone(),
            predicted_bytes: 0,
            measured_bytes: 0,
            predicted_s: 0.0,
            measured_s: 0.0,
            nonlinear: None,
            insecure: plan.insecure,
        }
    }
}

/// Options of a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub data: DataMode,
    /// Flip one bit of one response (mutation testing).
    pub fault: Option<server::Fault>,
    /// Called with one line after each layer the client has run (the CLI prints it on
    /// standard error).
    pub progress: Option<fn(&str)>,
}

/// Runs both parties as threads of this process over a loopback TCP connection.
pub fn run_local(p: &Plan, opts: &RunOptions) -> Result<VerifyReport, VerifyError> {
    loopback(
        |stream| server::serve(stream, p, opts),
        |stream| client::run(stream, p, opts),
    )
}

/// Seconds a party waits for its peer before a receive or a send fails, unless told otherwise.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// Seconds a connection attempt may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Readies a connected stream: no Nagle delay, and reads and writes that fail after
/// `timeout` (a silent or stalled peer ends the run with an error instead of a hang).
pub fn prepare_stream(
    stream: &std::net::TcpStream,
    timeout: std::time::Duration,
) -> Result<(), VerifyError> {
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| VerifyError::Setup(format!("socket time-outs: {e}")))
}

/// Connects to `addr` (every address it resolves to, in turn) within [`CONNECT_TIMEOUT`],
/// and readies the stream with `timeout`.
pub fn connect(
    addr: &str,
    timeout: std::time::Duration,
) -> Result<std::net::TcpStream, VerifyError> {
    use std::net::ToSocketAddrs;
    let addrs = addr
        .to_socket_addrs()
        .map_err(|e| VerifyError::Setup(format!("cannot resolve {addr}: {e}")))?;
    let mut last = format!("{addr} resolves to no address");
    for a in addrs {
        match std::net::TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => {
                prepare_stream(&s, timeout)?;
                return Ok(s);
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(VerifyError::Setup(last))
}

/// How long a connection that arrives while a phase of a run is being served waits for the
/// phase to end before it is refused: the client's next phase connects right after the last
/// response, while the server may still be closing the phase.
pub const BUSY_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// What a client that connects while another verify run is being served is told (a `Kind::Abort`).
pub const BUSY_MESSAGE: &str = "server busy: it serves one verify run at a time and another is running; try again when it ends";

/// Runs `work`, one phase of a verify run whose connections are already accepted, while
/// any other client that connects to `listener` is refused with [`BUSY_MESSAGE`]. A
/// connection that arrives within [`BUSY_GRACE`] of the phase's end is kept, not refused,
/// and returned: the next phase's (the server takes it instead of accepting again).
pub fn while_refusing<T: Send>(
    listener: &std::net::TcpListener,
    work: impl FnOnce() -> T + Send,
) -> (T, Option<std::net::TcpStream>) {
    use std::time::{Duration, Instant};
    std::thread::scope(|s| {
        let h = s.spawn(work);
        let mut early = None;
        if listener.set_nonblocking(true).is_ok() {
            'poll: while !h.is_finished() {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let t0 = Instant::now();
                        while t0.elapsed() < BUSY_GRACE {
                            if h.is_finished() {
                                early = Some(stream);
                                break 'poll;
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        let _ = prepare_stream(&stream, Duration::from_secs(5));
                        let mut ch = transport::Channel::new(stream);
                        let _ = ch.send(transport::Kind::Abort, BUSY_MESSAGE.as_bytes());
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            let _ = listener.set_nonblocking(false);
        }
        let out = match h.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        };
        (out, early)
    })
}

/// Accepts one connection on `listener` and readies it with `timeout`.
pub fn accept(
    listener: &std::net::TcpListener,
    timeout: std::time::Duration,
) -> Result<(std::net::TcpStream, std::net::SocketAddr), VerifyError> {
    let (s, peer) = listener
        .accept()
        .map_err(|e| VerifyError::Setup(format!("accept: {e}")))?;
    prepare_stream(&s, timeout)?;
    Ok((s, peer))
}

/// The connection kept by [`while_refusing`], readied with `timeout`, or a new one accepted.
pub fn accept_next(
    listener: &std::net::TcpListener,
    early: Option<std::net::TcpStream>,
    timeout: std::time::Duration,
) -> Result<std::net::TcpStream, VerifyError> {
    match early {
        Some(s) => {
            prepare_stream(&s, timeout)?;
            Ok(s)
        }
        None => accept(listener, timeout).map(|(s, _)| s),
    }
}

/// Connects `server` and `client`, each on a thread of this process, over loopback TCP;
/// the client's result, or the first error.
pub fn loopback<R: Send>(
    server: impl FnOnce(std::net::TcpStream) -> Result<(), VerifyError> + Send,
    client: impl FnOnce(std::net::TcpStream) -> Result<R, VerifyError>,
) -> Result<R, VerifyError> {
    loopback_with(
        |l| accept(l, DEFAULT_TIMEOUT).map(|(s, _)| s),
        |a| connect(a, DEFAULT_TIMEOUT),
        server,
        client,
    )
}

/// [`loopback`] with the connections a run needs (`accept` on the server's listener,
/// `connect` to its address: one stream, or a pair).
pub fn loopback_with<C: Send, R: Send>(
    accept: impl FnOnce(&std::net::TcpListener) -> Result<C, VerifyError> + Send,
    connect: impl FnOnce(&str) -> Result<C, VerifyError>,
    server: impl FnOnce(C) -> Result<(), VerifyError> + Send,
    client: impl FnOnce(C) -> Result<R, VerifyError>,
) -> Result<R, VerifyError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| VerifyError::Setup(format!("cannot listen on loopback: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| VerifyError::Setup(format!("loopback address: {e}")))?;
    std::thread::scope(|s| {
        let srv = s.spawn(move || -> Result<(), VerifyError> { server(accept(&listener)?) });
        let res = connect(&addr.to_string()).and_then(client);
        let srv_res = srv
            .join()
            .map_err(|_| VerifyError::Setup("the server thread panicked".into()))?;
        match (res, srv_res) {
            (Ok(r), Ok(())) => Ok(r),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
        }
    })
}
