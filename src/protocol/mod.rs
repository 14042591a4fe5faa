//! Protocol families, their HE parameter sets, primitive costs, links and compute
//! profiles, as read from `cost-models/*.toml`, plus the security check and the
//! ciphertext size formulas shared by the model and the verify mode.

pub mod sizes;

use crate::spec::{SpecError, parse};
use crate::units::{BitsPerSecond, ModulusBits, RingDegree};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The protocol models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Cheetah (USENIX Security 2022) as OpenCheetah runs it.
    Cheetah,
    /// CrypTFlow2 (CCS 2020) as SCI_HE runs it.
    Cryptflow2,
    /// Cheetah with the plaintext modulus cut to each layer's accumulator width.
    HequantNaive,
    /// Naive quantization plus intra-coefficient packing.
    HequantPacked,
    /// Packing plus quantization-aware tiling and ring-degree choice.
    Hequant,
}

impl Protocol {
    pub const ALL: [Protocol; 5] = [
        Protocol::Cheetah,
        Protocol::Cryptflow2,
        Protocol::HequantNaive,
        Protocol::HequantPacked,
        Protocol::Hequant,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Cheetah => "cheetah",
            Protocol::Cryptflow2 => "cryptflow2",
            Protocol::HequantNaive => "hequant-naive",
            Protocol::HequantPacked => "hequant-packed",
            Protocol::Hequant => "hequant",
        }
    }

    pub fn parse(s: &str) -> Result<Protocol, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown protocol '{s}' (known: {})",
                    Protocol::ALL.map(|p| p.name()).join(", ")
                )
            })
    }

    /// Whether the protocol runs layers at their quantized bit widths.
    pub fn is_quantized(self) -> bool {
        matches!(
            self,
            Protocol::HequantNaive | Protocol::HequantPacked | Protocol::Hequant
        )
    }

    /// The parameter file the protocol reads.
    pub fn param_file(self) -> &'static str {
        match self {
            Protocol::Cheetah => "cheetah.toml",
            Protocol::Cryptflow2 => "cryptflow2.toml",
            _ => "hequant.toml",
        }
    }

    pub fn summary(self) -> &'static str {
        match self {
            Protocol::Cheetah => {
                "OpenCheetah: N=4096, q=109 bits, l=37, HomConv tiling rule, truncated responses, silent-OT ReLU"
            }
            Protocol::Cryptflow2 => {
                "SCI_HE: N=8192, q=218 bits, SIMD packing with rotations, full ciphertexts, IKNP-OT ReLU"
            }
            Protocol::HequantNaive => {
                "Cheetah's tiling with t = 2^(accumulator bits) and the smallest q with failure < 2^-40"
            }
            Protocol::HequantPacked => {
                "naive + intra-coefficient packing (slots sized so nothing can overflow, share wrap included)"
            }
            Protocol::Hequant => {
                "packed + quantization-aware tiling: per-layer search over C_w, H_w, W_w, M_w, packing and N"
            }
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which serialisation the byte counts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WireFormat {
    /// What the protocol's public implementation sends (its overhead factor applied).
    #[default]
    Native,
    /// Every coefficient bit-packed at its width: the same format for every protocol.
    Packed,
}

/// OT extension family of the non-linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtFamily {
    Iknp,
    Ferret,
}

/// How a truncation that follows a ReLU is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TruncationKind {
    /// The sign is already known from the ReLU: one B2A (Cheetah, section 4 of its paper).
    MsbKnown,
    /// A faithful truncation with its own comparison (CrypTFlow2).
    Faithful,
}

/// Which ReLU protocol a report prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReluVariant {
    /// Full l-bit comparison (Cheetah 2022, CrypTFlow2).
    Exact,
    /// Compare only the top bits (Cheetah's 2023 approximate ReLU).
    Approx,
}

/// HE parameters of a protocol file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeSection {
    pub ring_degree: RingDegree,
    #[serde(default)]
    pub ring_degrees: Vec<RingDegree>,
    pub log_q: ModulusBits,
    pub log_t: ModulusBits,
    pub response_log_q: ModulusBits,
    pub seeded_query: bool,
    pub weight_bits: u32,
    #[serde(default)]
    pub galois_keys: u32,
    #[serde(default = "default_error_std")]
    pub error_std: f64,
    #[serde(default = "default_failure")]
    pub failure_log2: i32,
    #[serde(default)]
    pub flood_bits: u32,
    /// Which body coefficients a response of a strided convolution keeps.
    #[serde(default)]
    pub response_keeps: ResponseKeeps,
}

/// The body coefficients a response keeps for a convolution of stride s > 1 whose kernel is
/// larger than 1 x 1 (1 x 1 kernels subsample their input and run at stride 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKeeps {
    /// Only the outputs on the stride.
    #[default]
    Strided,
    /// Every stride-1 output of the tile, subsampled after decryption (OpenCheetah's
    /// `removeUnusedCoeffs` treats the image as stride 1; docs/protocol-reference.md 2.2).
    Stride1,
}

fn default_error_std() -> f64 {
    3.2
}
fn default_failure() -> i32 {
    -40
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BnSection {
    pub stat_bits: u32,
    pub max_prime_bits: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackingSection {
    pub max_factor: u32,
    pub max_output_channel_block: u32,
}

impl Default for PackingSection {
    fn default() -> Self {
        PackingSection {
            max_factor: 1,
            max_output_channel_block: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NonlinearSection {
    pub ot: OtFamily,
    /// How a truncation fused in a ReLU is priced.
    pub truncation: TruncationKind,
    pub relu: ReluVariant,
    pub approx_relu_bits: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSection {
    /// How the native size is computed from the bit-packed one.
    #[serde(default)]
    pub native_format: NativeFormat,
    /// The factor of `native_format = "factor"` (1 = bit-packed).
    #[serde(default = "default_overhead")]
    pub native_overhead: f64,
    pub native_name: String,
}

fn default_overhead() -> f64 {
    1.0
}

/// The native wire format of a protocol's reference implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NativeFormat {
    /// The bit-packed size times `native_overhead`.
    #[default]
    Factor,
    /// SEAL's 64-bit words compressed by zstd, computed word by word
    /// ([`crate::protocol::sizes::seal_zstd`], docs/protocol-reference.md 2.2).
    SealZstd,
}

/// One protocol parameter file (`cost-models/{cheetah,cryptflow2,hequant}.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolFile {
    pub format: String,
    pub version: i64,
    pub name: String,
    pub description: String,
    pub he: HeSection,
    pub bn: BnSection,
    #[serde(default)]
    pub packing: PackingSection,
    pub nonlinear: NonlinearSection,
    pub wire: WireSection,
}

/// Costs of one OT family (`cost-models/primitives.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtCosts {
    pub cot_bits: f64,
    pub ot16_bits: f64,
    pub and_triple_bits: f64,
    pub messages_per_ot: u32,
    pub rounds_per_ot: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrimitivesFile {
    pub format: String,
    pub version: i64,
    pub digit_bits: u32,
    pub ot: BTreeMap<String, OtCosts>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityFile {
    pub format: String,
    pub version: i64,
    pub security_bits: u32,
    pub error_std: f64,
    pub max_log_q: BTreeMap<String, u32>,
}

/// A network link.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub bandwidth_bps: BitsPerSecond,
    pub rtt_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksFile {
    pub format: String,
    pub version: i64,
    pub link: BTreeMap<String, Link>,
}

/// Per-operation compute costs of a machine (`cost-models/compute.toml`, or the
/// file `hequant calibrate` writes). Microseconds at N = 4096, one thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeProfile {
    pub format: String,
    pub version: i64,
    pub source: String,
    pub threads: u32,
    pub encrypt_us: f64,
    pub decrypt_us: f64,
    pub ntt_forward_us: f64,
    pub mul_acc_us: f64,
    pub ntt_inverse_us: f64,
    pub ot_ns_per_bit: f64,
    /// NTT primes the NTT figures above were measured with; when given, the server's NTT
    /// costs scale with the primes a mapping needs (`LinearCost::ntt_primes`).
    #[serde(default)]
    pub ntt_primes: Option<u32>,
    /// NTT work per prime with 62-bit primes against the small (below 2^50) primes the
    /// figures above were measured with; applied to mappings whose bound needs 62-bit
    /// primes. When absent, 1.
    #[serde(default)]
    pub wide_prime_factor: Option<f64>,
    /// Encryption and decryption with a ciphertext modulus above 2^64 (the u128 container,
    /// Cheetah's 109 bits); when absent, the figures above are used.
    #[serde(default)]
    pub encrypt_wide_us: Option<f64>,
    #[serde(default)]
    pub decrypt_wide_us: Option<f64>,
    /// The server's expansion of a query's mask from its seed (tfhe's decompression), in
    /// the u64 and the u128 container; when absent, 0 (not priced).
    #[serde(default)]
    pub decompress_us: Option<f64>,
    #[serde(default)]
    pub decompress_wide_us: Option<f64>,
    /// The server's other online work per query (the input's encoding, the server's share)
    /// and per response (CRT of the inverse, masking, bit packing); when absent, 0.
    #[serde(default)]
    pub server_query_us: Option<f64>,
    #[serde(default)]
    pub server_response_us: Option<f64>,
}

pub const COMPUTE_FORMAT: &str = "hequant-compute";

/// Everything the model reads from `cost-models/`.
#[derive(Debug, Clone, PartialEq)]
pub struct CostModel {
    pub dir: Option<PathBuf>,
    pub cheetah: ProtocolFile,
    pub cryptflow2: ProtocolFile,
    pub hequant: ProtocolFile,
    pub primitives: PrimitivesFile,
    pub security: SecurityFile,
    pub links: LinksFile,
    pub compute: ComputeProfile,
    /// The file of a security table that is not the shipped one (`--cost-models` with its own
    /// `security.toml` that differs from it): every report names it.
    pub security_replaced: Option<String>,
}

/// The cost-model files shipped with the tool, compiled in so that the binary works
/// from any directory.
pub const BUILTIN: [(&str, &str); 7] = [
    (
        "cheetah.toml",
        include_str!("../../cost-models/cheetah.toml"),
    ),
    (
        "cryptflow2.toml",
        include_str!("../../cost-models/cryptflow2.toml"),
    ),
    (
        "hequant.toml",
        include_str!("../../cost-models/hequant.toml"),
    ),
    (
        "primitives.toml",
        include_str!("../../cost-models/primitives.toml"),
    ),
    (
        "security.toml",
        include_str!("../../cost-models/security.toml"),
    ),
    ("links.toml", include_str!("../../cost-models/links.toml")),
    (
        "compute.toml",
        include_str!("../../cost-models/compute.toml"),
    ),
];

impl CostModel {
    /// The shipped cost model.
    pub fn builtin() -> Result<CostModel, SpecError> {
        Self::from_sources(None, |name| {
            let text = BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string());
            Ok((format!("cost-models/{name}"), text.unwrap_or_default()))
        })
    }

    /// Reads the cost model from a directory; files missing there come from the shipped set.
    pub fn load_dir(dir: &Path) -> Result<CostModel, SpecError> {
        if !dir.is_dir() {
            return Err(SpecError {
                file: dir.display().to_string(),
                line: 0,
                column: 0,
                key: String::new(),
                message: "not a directory of cost-model files".into(),
            });
        }
        Self::from_sources(Some(dir.to_path_buf()), |name| {
            let p = dir.join(name);
            if p.exists() {
                Ok((p.display().to_string(), crate::spec::read_text(&p)?))
            } else {
                let text = BUILTIN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, t)| t.to_string());
                Ok((
                    format!("cost-models/{name} (built in)"),
                    text.unwrap_or_default(),
                ))
            }
        })
    }

    fn from_sources(
        dir: Option<PathBuf>,
        get: impl Fn(&str) -> Result<(String, String), SpecError>,
    ) -> Result<CostModel, SpecError> {
        let proto = |name: &str| -> Result<ProtocolFile, SpecError> {
            let (file, text) = get(name)?;
            let p: ProtocolFile = parse(&file, &text, "hequant-protocol", 1)?;
            validate_protocol(&file, &text, &p)?;
            Ok(p)
        };
        let (f, t) = get("primitives.toml")?;
        let primitives: PrimitivesFile = parse(&f, &t, "hequant-primitives", 1)?;
        for fam in ["iknp", "ferret"] {
            if !primitives.ot.contains_key(fam) {
                return Err(SpecError::at(
                    &f,
                    &t,
                    None,
                    &format!("ot.{fam}"),
                    "missing OT family".into(),
                ));
            }
        }
        if !(1..=8).contains(&primitives.digit_bits) {
            return Err(SpecError::at(
                &f,
                &t,
                None,
                "digit_bits",
                "must be in 1..=8".into(),
            ));
        }
        validate_primitives(&f, &t, &primitives)?;
        let (f, t) = get("security.toml")?;
        let shipped = BUILTIN
            .iter()
            .find(|(n, _)| *n == "security.toml")
            .map(|(_, t)| *t);
        let shipped: Option<SecurityFile> =
            shipped.and_then(|s| parse("security.toml", s, "hequant-security", 1).ok());
        let security: SecurityFile = parse(&f, &t, "hequant-security", 1)?;
        let security_replaced = (shipped.as_ref() != Some(&security)).then(|| f.clone());
        validate_security(&f, &t, &security)?;
        for k in security.max_log_q.keys() {
            if k.parse::<i64>()
                .ok()
                .and_then(|n| RingDegree::try_new(n).ok())
                .is_none()
            {
                return Err(SpecError::at(
                    &f,
                    &t,
                    None,
                    &format!("max_log_q.{k}"),
                    "not a ring degree".into(),
                ));
            }
        }
        let (f, t) = get("links.toml")?;
        let links: LinksFile = parse(&f, &t, "hequant-links", 1)?;
        validate_links(&f, &t, &links)?;
        let (f, t) = get("compute.toml")?;
        let compute: ComputeProfile = parse(&f, &t, COMPUTE_FORMAT, 1)?;
        validate_compute(&f, &t, &compute)?;
        Ok(CostModel {
            dir,
            cheetah: proto("cheetah.toml")?,
            cryptflow2: proto("cryptflow2.toml")?,
            hequant: proto("hequant.toml")?,
            primitives,
            security,
            links,
            compute,
            security_replaced,
        })
    }

    pub fn protocol_file(&self, p: Protocol) -> &ProtocolFile {
        match p {
            Protocol::Cheetah => &self.cheetah,
            Protocol::Cryptflow2 => &self.cryptflow2,
            _ => &self.hequant,
        }
    }

    pub fn ot_costs(&self, fam: OtFamily) -> OtCosts {
        let key = match fam {
            OtFamily::Iknp => "iknp",
            OtFamily::Ferret => "ferret",
        };
        self.primitives.ot[key]
    }

    /// Largest log2 q for the configured security level at ring degree N.
    pub fn max_log_q(&self, n: RingDegree) -> Option<u32> {
        self.security.max_log_q.get(&n.get().to_string()).copied()
    }

    /// Checks a parameter set against the security table.
    pub fn check_security(&self, n: RingDegree, log_q: u32) -> Result<(), Insecure> {
        match self.max_log_q(n) {
            Some(m) if log_q <= m => Ok(()),
            max => Err(Insecure {
                n: n.get(),
                log_q,
                max_log_q: max,
                security_bits: self.security.security_bits,
            }),
        }
    }

    /// A link by name (`lan`, `wan`, or one the links file defines).
    pub fn link(&self, name: &str) -> Result<Link, String> {
        self.links.link.get(name).copied().ok_or_else(|| {
            format!(
                "unknown link '{name}' (known: {}; or give --bandwidth-mbps and --rtt-ms)",
                self.links
                    .link
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

/// A parameter set outside the security table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("N = {n} with a {log_q}-bit ciphertext modulus is below {security_bits}-bit security (the largest secure modulus at this N is {})", max_log_q.map_or("none listed".to_string(), |m| format!("{m} bits")))]
pub struct Insecure {
    pub n: u32,
    pub log_q: u32,
    pub max_log_q: Option<u32>,
    pub security_bits: u32,
}

fn validate_protocol(file: &str, text: &str, p: &ProtocolFile) -> Result<(), SpecError> {
    let bad = |key: &str, m: String| SpecError::at(file, text, find_key(text, key), key, m);
    if p.he.log_q.get() <= p.he.log_t.get() && p.name != "hequant" {
        return Err(bad(
            "he.log_q",
            format!(
                "a {}-bit ciphertext modulus cannot hold the {}-bit plaintext modulus",
                p.he.log_q, p.he.log_t
            ),
        ));
    }
    if p.he.response_log_q.get() > p.he.log_q.get() {
        return Err(bad(
            "he.response_log_q",
            "the response modulus must not exceed log_q".into(),
        ));
    }
    if !(p.wire.native_overhead.is_finite() && p.wire.native_overhead >= 1.0) {
        return Err(bad("wire.native_overhead", "must be a factor >= 1".into()));
    }
    if p.wire.native_format == NativeFormat::SealZstd && p.wire.native_overhead != 1.0 {
        return Err(bad(
            "wire.native_overhead",
            "applies to native_format = \"factor\" only; \"seal_zstd\" computes its sizes word by word".into(),
        ));
    }
    if !(p.he.error_std.is_finite() && p.he.error_std > 0.0) {
        return Err(bad("he.error_std", "must be > 0".into()));
    }
    if p.he.weight_bits == 0 || p.he.weight_bits > 32 {
        return Err(bad("he.weight_bits", "must be in 1..=32".into()));
    }
    if p.packing.max_factor == 0 || p.packing.max_output_channel_block == 0 {
        return Err(bad("packing", "factors must be at least 1".into()));
    }
    let c = Checker { file, text };
    c.num("he.error_std", p.he.error_std, 0.0, false, 1e6)?;
    c.int("he.galois_keys", p.he.galois_keys.into(), 0, 64)?;
    c.int("he.failure_log2", p.he.failure_log2.into(), -1000, -1)?;
    c.int("he.flood_bits", p.he.flood_bits.into(), 0, 128)?;
    c.int("bn.stat_bits", p.bn.stat_bits.into(), 0, 128)?;
    c.int("bn.max_prime_bits", p.bn.max_prime_bits.into(), 2, 64)?;
    c.int(
        "packing.max_factor",
        p.packing.max_factor.into(),
        1,
        MAX_PACK_FACTOR.into(),
    )?;
    c.int(
        "packing.max_output_channel_block",
        p.packing.max_output_channel_block.into(),
        1,
        MAX_OUTPUT_CHANNEL_BLOCK.into(),
    )?;
    c.int(
        "nonlinear.approx_relu_bits",
        p.nonlinear.approx_relu_bits.into(),
        1,
        64,
    )?;
    c.num(
        "wire.native_overhead",
        p.wire.native_overhead,
        1.0,
        true,
        100.0,
    )?;
    Ok(())
}

/// Span of a key in a TOML text, for errors found after parsing: `last = ` (the dotted
/// path's last component) under the table header its other components name (`rtt_s` under
/// `[link.wan]` for `link.wan.rtt_s`); else the header `[dotted]` itself; else the first
/// `last = ` anywhere (inline tables, dotted keys).
fn find_key(text: &str, dotted: &str) -> Option<std::ops::Range<usize>> {
    let (table, last) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut off = 0;
    let mut current = String::new();
    let (mut header, mut anywhere) = (None, None);
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let s = off + (line.len() - t.len());
        if let Some(h) = t.strip_prefix('[') {
            let name = h.trim_start_matches('[').split(']').next().unwrap_or("");
            current = name.split('.').map(str::trim).collect::<Vec<_>>().join(".");
            if current == dotted && header.is_none() {
                header = Some(s..s + t.trim_end().len());
            }
        } else if t.starts_with(last) && t[last.len()..].trim_start().starts_with('=') {
            if current == table {
                return Some(s..s + last.len());
            }
            anywhere.get_or_insert(s..s + last.len());
        }
        off += line.len();
    }
    header.or(anywhere)
}

/// Range checks of values read from one cost-model file: each error names the file, the
/// line of the key (where it is found) and the key.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn err(&self, key: &str, message: String) -> SpecError {
        SpecError::at(self.file, self.text, find_key(self.text, key), key, message)
    }

    /// An integer in `lo..=hi`.
    fn int(&self, key: &str, v: i64, lo: i64, hi: i64) -> Result<(), SpecError> {
        if (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(self.err(key, format!("must be an integer in {lo}..={hi}, got {v}")))
        }
    }

    /// A finite number above `lo` (or equal to it when `lo_ok`) and at most `hi`.
    fn num(&self, key: &str, v: f64, lo: f64, lo_ok: bool, hi: f64) -> Result<(), SpecError> {
        let above = if lo_ok { v >= lo } else { v > lo };
        if v.is_finite() && above && v <= hi {
            Ok(())
        } else {
            let op = if lo_ok { ">=" } else { ">" };
            Err(self.err(
                key,
                format!("must be a finite number {op} {lo} and at most {hi:e}, got {v}"),
            ))
        }
    }
}

/// Largest accepted intra-coefficient packing factor and output-channel block
/// (`[packing]`): the search's candidates and memory grow with them (100,000 took 2.6 GB).
pub const MAX_PACK_FACTOR: u32 = 64;
pub const MAX_OUTPUT_CHANNEL_BLOCK: u32 = 4096;

/// Range checks of a primitives file (`primitives.toml`).
fn validate_primitives(file: &str, text: &str, p: &PrimitivesFile) -> Result<(), SpecError> {
    let c = Checker { file, text };
    for (fam, o) in &p.ot {
        let k = |x: &str| format!("ot.{fam}.{x}");
        c.num(&k("cot_bits"), o.cot_bits, 0.0, false, 1e6)?;
        c.num(&k("ot16_bits"), o.ot16_bits, 0.0, false, 1e6)?;
        c.num(&k("and_triple_bits"), o.and_triple_bits, 0.0, false, 1e6)?;
        c.int(&k("messages_per_ot"), o.messages_per_ot.into(), 1, 1024)?;
        c.int(&k("rounds_per_ot"), o.rounds_per_ot.into(), 0, 1024)?;
    }
    Ok(())
}

/// Range checks of a security file (`security.toml`).
fn validate_security(file: &str, text: &str, s: &SecurityFile) -> Result<(), SpecError> {
    let c = Checker { file, text };
    c.int("security_bits", s.security_bits.into(), 1, 1024)?;
    c.num("error_std", s.error_std, 0.0, false, 1e6)?;
    for (k, v) in &s.max_log_q {
        c.int(&format!("max_log_q.{k}"), (*v).into(), 1, 1024)?;
    }
    Ok(())
}

/// Range checks of a links file (`links.toml`); the model's default link `lan` must be
/// there.
fn validate_links(file: &str, text: &str, l: &LinksFile) -> Result<(), SpecError> {
    let c = Checker { file, text };
    if !l.link.contains_key("lan") {
        return Err(c.err(
            "link.lan",
            "missing: the links file must define [link.lan] (the default link)".into(),
        ));
    }
    for (name, link) in &l.link {
        c.num(&format!("link.{name}.rtt_s"), link.rtt_s, 0.0, true, 3600.0)?;
    }
    Ok(())
}

/// Range checks of a compute profile (`compute.toml`, or the file `calibrate` writes).
fn validate_compute(file: &str, text: &str, p: &ComputeProfile) -> Result<(), SpecError> {
    let c = Checker { file, text };
    c.int("threads", p.threads.into(), 1, 65536)?;
    let times = [
        ("encrypt_us", Some(p.encrypt_us)),
        ("decrypt_us", Some(p.decrypt_us)),
        ("ntt_forward_us", Some(p.ntt_forward_us)),
        ("mul_acc_us", Some(p.mul_acc_us)),
        ("ntt_inverse_us", Some(p.ntt_inverse_us)),
        ("ot_ns_per_bit", Some(p.ot_ns_per_bit)),
        ("encrypt_wide_us", p.encrypt_wide_us),
        ("decrypt_wide_us", p.decrypt_wide_us),
        ("wide_prime_factor", p.wide_prime_factor),
        ("decompress_us", p.decompress_us),
        ("decompress_wide_us", p.decompress_wide_us),
    ];
    for (k, v) in times {
        if let Some(v) = v {
            c.num(k, v, 0.0, false, 1e12)?;
        }
    }
    // What calibrate fits beyond the priced operations may come out at 0.
    for (k, v) in [
        ("server_query_us", p.server_query_us),
        ("server_response_us", p.server_response_us),
    ] {
        if let Some(v) = v {
            c.num(k, v, 0.0, true, 1e12)?;
        }
    }
    if let Some(n) = p.ntt_primes {
        c.int("ntt_primes", n.into(), 1, 64)?;
    }
    Ok(())
}

impl CostModel {
    /// Bytes of one fresh query ciphertext at the protocol file's own parameters (bit-packed).
    pub fn query_example(&self, p: Protocol) -> u64 {
        let f = self.protocol_file(p);
        sizes::query_ct_bytes(
            f.he.ring_degree.as_u64(),
            f.he.log_q.get(),
            f.he.seeded_query,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_cost_model_loads() {
        let cm = CostModel::builtin().unwrap();
        assert_eq!(cm.cheetah.he.ring_degree.get(), 4096);
        assert_eq!(cm.max_log_q(RingDegree::try_new(4096).unwrap()), Some(109));
    }

    #[test]
    fn security_table_refuses_large_q() {
        let cm = CostModel::builtin().unwrap();
        let n = RingDegree::try_new(2048).unwrap();
        assert!(cm.check_security(n, 54).is_ok());
        let e = cm.check_security(n, 55).unwrap_err();
        assert!(e.to_string().contains("54 bits"), "{e}");
    }

    #[test]
    fn keys_are_found_in_their_own_table() {
        let text = "a = 1\n[link.lan]\nrtt_s = 1\n[link.wan]\nrtt_s = 2\n";
        let line = |k: &str| find_key(text, k).map(|s| line_col_of(text, s.start));
        assert_eq!(line("link.lan.rtt_s"), Some(3));
        assert_eq!(line("link.wan.rtt_s"), Some(5));
        assert_eq!(line("link.wan"), Some(4));
        assert_eq!(line("a"), Some(1));
        assert_eq!(line("link.x.rtt_s"), Some(3));
        assert_eq!(line("b"), None);
    }

    fn line_col_of(text: &str, offset: usize) -> usize {
        crate::spec::line_col(text, offset).0
    }

    /// Every cost-model file with one value out of range: the error names the file, the
    /// line of the value and its key.
    #[test]
    fn out_of_range_cost_model_values_are_refused() {
        let cases = [
            (
                "links.toml",
                "rtt_s = 0.0003",
                "rtt_s = nan",
                "link.lan.rtt_s",
            ),
            (
                "links.toml",
                "rtt_s = 0.040",
                "rtt_s = -1.0",
                "link.wan.rtt_s",
            ),
            (
                "compute.toml",
                "encrypt_us = ",
                "encrypt_us = 0.0 # the shipped value: ",
                "encrypt_us",
            ),
            ("compute.toml", "threads = 1", "threads = 0", "threads"),
            (
                "primitives.toml",
                "cot_bits = 128",
                "cot_bits = -1",
                "ot.iknp.cot_bits",
            ),
            (
                "primitives.toml",
                "messages_per_ot = 1",
                "messages_per_ot = 0",
                "ot.ferret.messages_per_ot",
            ),
            (
                "security.toml",
                "security_bits = 128",
                "security_bits = 0",
                "security_bits",
            ),
            ("security.toml", "4096 = 109", "4096 = 0", "max_log_q.4096"),
            (
                "hequant.toml",
                "failure_log2 = -40",
                "failure_log2 = 10",
                "he.failure_log2",
            ),
            (
                "hequant.toml",
                "flood_bits = 0",
                "flood_bits = 4294967295",
                "he.flood_bits",
            ),
            (
                "hequant.toml",
                "max_prime_bits = 50",
                "max_prime_bits = 0",
                "bn.max_prime_bits",
            ),
            (
                "hequant.toml",
                "max_factor = 8",
                "max_factor = 100000",
                "packing.max_factor",
            ),
            (
                "cheetah.toml",
                "stat_bits = 40",
                "stat_bits = 4000",
                "bn.stat_bits",
            ),
            (
                "cheetah.toml",
                "native_name = \"SEAL serialisation + zstd\"",
                "native_overhead = 1.2\nnative_name = \"x\"",
                "wire.native_overhead",
            ),
        ];
        for (name, from, to, key) in cases {
            let shipped = BUILTIN.iter().find(|(n, _)| *n == name).unwrap().1;
            assert!(shipped.contains(from), "{name}: {from}");
            let text = shipped.replacen(from, to, 1);
            let line = shipped[..shipped.find(from).unwrap()].matches('\n').count() + 1;
            let e = CostModel::from_sources(None, |n| {
                let t = BUILTIN.iter().find(|(b, _)| *b == n).unwrap().1;
                Ok((
                    n.to_string(),
                    if n == name { text.clone() } else { t.into() },
                ))
            })
            .unwrap_err();
            assert_eq!(
                (e.file.as_str(), e.line, e.key.as_str()),
                (name, line, key),
                "{to}: {e}"
            );
        }
    }

    #[test]
    fn a_links_file_needs_lan() {
        let e = CostModel::from_sources(None, |n| {
            let t = BUILTIN.iter().find(|(b, _)| *b == n).unwrap().1;
            let t = if n == "links.toml" {
                t.replace("[link.lan]", "[link.lab]")
            } else {
                t.into()
            };
            Ok((n.to_string(), t))
        })
        .unwrap_err();
        assert_eq!(
            (e.file.as_str(), e.key.as_str()),
            ("links.toml", "link.lan"),
            "{e}"
        );
    }

    #[test]
    fn bad_protocol_file_names_file_line_key() {
        let text = BUILTIN[0].1.replace("log_q = 109", "log_q = 30");
        let p: ProtocolFile = parse("c.toml", &text, "hequant-protocol", 1).unwrap();
        let e = validate_protocol("c.toml", &text, &p).unwrap_err();
        assert_eq!(e.key, "he.log_q");
        assert!(e.line > 0 && e.message.contains("cannot hold"), "{e}");
    }
}
