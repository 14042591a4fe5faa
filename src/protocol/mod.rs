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
    pub native_overhead: f64,
    pub native_name: String,
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
    /// Encryption and decryption with a ciphertext modulus above 2^64 (the u128 container,
    /// Cheetah's 109 bits); when absent, the figures above are used.
    #[serde(default)]
    pub encrypt_wide_us: Option<f64>,
    #[serde(default)]
    pub decrypt_wide_us: Option<f64>,
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
        let (f, t) = get("security.toml")?;
        let security: SecurityFile = parse(&f, &t, "hequant-security", 1)?;
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
        let (f, t) = get("compute.toml")?;
        let compute: ComputeProfile = parse(&f, &t, COMPUTE_FORMAT, 1)?;
        Ok(CostModel {
            dir,
            cheetah: proto("cheetah.toml")?,
            cryptflow2: proto("cryptflow2.toml")?,
            hequant: proto("hequant.toml")?,
            primitives,
            security,
            links,
            compute,
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
    if !(p.he.error_std.is_finite() && p.he.error_std > 0.0) {
        return Err(bad("he.error_std", "must be > 0".into()));
    }
    if p.he.weight_bits == 0 || p.he.weight_bits > 32 {
        return Err(bad("he.weight_bits", "must be in 1..=32".into()));
    }
    if p.packing.max_factor == 0 || p.packing.max_output_channel_block == 0 {
        return Err(bad("packing", "factors must be at least 1".into()));
    }
    Ok(())
}

/// Span of `key = ` (last dotted component) in a TOML text, for errors found after parsing.
fn find_key(text: &str, dotted: &str) -> Option<std::ops::Range<usize>> {
    let last = dotted.rsplit('.').next()?;
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(last) && t[last.len()..].trim_start().starts_with('=') {
            let s = off + (line.len() - t.len());
            return Some(s..s + last.len());
        }
        off += line.len();
    }
    None
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
    fn bad_protocol_file_names_file_line_key() {
        let text = BUILTIN[0].1.replace("log_q = 109", "log_q = 30");
        let p: ProtocolFile = parse("c.toml", &text, "hequant-protocol", 1).unwrap();
        let e = validate_protocol("c.toml", &text, &p).unwrap_err();
        assert_eq!(e.key, "he.log_q");
        assert!(e.line > 0 && e.message.contains("cannot hold"), "{e}");
    }
}
