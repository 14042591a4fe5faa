//! Sweeps: totals of every protocol at every uniform bit width of a range, and the
//! Pareto front of (bits, communication, latency).

use super::pareto;
use crate::model::{self, BitsPolicy, EvalOptions, ModelError};
use crate::protocol::{CostModel, Protocol};
use crate::units::Bits;
use crate::workload::{BitWidths, Network};
use rayon::prelude::*;
use serde::Serialize;
use std::fmt;

/// An inclusive range of bit widths, `lo..hi` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BitRange {
    pub lo: u32,
    pub hi: u32,
}

impl BitRange {
    /// Parses `2..16` (both ends included), `2..=16`, or one width `8`.
    pub fn parse(s: &str) -> Result<BitRange, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err("bit range is empty: expected LO..HI, for example 2..16".into());
        }
        let num = |x: &str| -> Result<u32, String> {
            let x = x.trim();
            if x.is_empty() {
                return Err(format!(
                    "bit range '{s}' is missing an end: expected LO..HI, for example 2..16"
                ));
            }
            let v: i64 = x.parse().map_err(|_| {
                format!("bit range '{s}': '{x}' is not a whole number (expected LO..HI, for example 2..16)")
            })?;
            Bits::try_new(v)
                .map(Bits::get)
                .map_err(|e| format!("bit range '{s}': {e}"))
        };
        let (lo, hi) = match t.split_once("..") {
            Some((a, b)) => (num(a)?, num(b.strip_prefix('=').unwrap_or(b))?),
            None => {
                let v = num(t)?;
                (v, v)
            }
        };
        if lo > hi {
            return Err(format!(
                "bit range '{s}' is reversed (empty): write the low end first, for example {hi}..{lo}"
            ));
        }
        Ok(BitRange { lo, hi })
    }

    pub fn iter(self) -> impl Iterator<Item = u32> {
        self.lo..=self.hi
    }
}

impl fmt::Display for BitRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.lo, self.hi)
    }
}

/// `w{b}a{b}`.
pub fn uniform_bits(b: u32) -> Result<BitWidths, String> {
    let v = Bits::try_new(b as i64).map_err(|e| e.to_string())?;
    Ok(BitWidths { w: v, a: v })
}

/// One protocol at one bit width.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepPoint {
    pub protocol: Protocol,
    pub bits: u32,
    pub bytes: u64,
    pub bytes_client_to_server: u64,
    pub bytes_server_to_client: u64,
    pub bytes_linear: u64,
    pub bytes_nonlinear: u64,
    pub rounds: u32,
    pub latency_s: f64,
    /// On the Pareto front of (more bits, fewer bytes, lower latency) over the whole sweep.
    pub pareto: bool,
}

/// The result of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sweep {
    pub network: String,
    pub link: String,
    pub bits: BitRange,
    /// Whether the widths apply to the first and last weighted layers too.
    pub bits_all: bool,
    /// Protocol-major, then bits ascending.
    pub points: Vec<SweepPoint>,
    /// What the non-linear options (`--approx`, `--relu-budget`) change in every point.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Sweep {
    pub fn front(&self) -> impl Iterator<Item = &SweepPoint> {
        self.points.iter().filter(|p| p.pareto)
    }
}

/// Evaluates every protocol at every uniform width of `bits` (`w{b}a{b}`); the other
/// options come from `base`. Protocols that are not quantized give the same totals at
/// every width.
pub fn sweep(
    net: &Network,
    base: &EvalOptions,
    cm: &CostModel,
    protocols: &[Protocol],
    bits: BitRange,
    all_layers: bool,
) -> Result<Sweep, ModelError> {
    let jobs: Vec<(Protocol, u32)> = protocols
        .iter()
        .flat_map(|&p| bits.iter().map(move |b| (p, b)))
        .collect();
    let points: Result<Vec<SweepPoint>, ModelError> = jobs
        .par_iter()
        .map(|&(protocol, b)| {
            let mut o = base.clone();
            o.protocol = protocol;
            o.bits = BitsPolicy {
                uniform: Some(uniform_bits(b).map_err(ModelError::Options)?),
                all_layers,
            };
            let r = model::evaluate(net, &o, cm)?;
            let t = &r.total;
            Ok(SweepPoint {
                protocol,
                bits: b,
                bytes: t.bytes(),
                bytes_client_to_server: t.bytes_client_to_server,
                bytes_server_to_client: t.bytes_server_to_client,
                bytes_linear: t.bytes_linear,
                bytes_nonlinear: t.bytes_nonlinear,
                rounds: t.rounds,
                latency_s: t.latency_s,
                pareto: false,
            })
        })
        .collect();
    let mut points = points?;
    let objectives: Vec<Vec<f64>> = points
        .iter()
        .map(|p| vec![-(p.bits as f64), p.bytes as f64, p.latency_s])
        .collect();
    for i in pareto::front(&objectives) {
        points[i].pareto = true;
    }
    Ok(Sweep {
        network: net.name.clone(),
        link: base.link_name.clone(),
        bits,
        bits_all: all_layers,
        points,
        notes: crate::model::option_notes(base),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(BitRange::parse("2..16"), Ok(BitRange { lo: 2, hi: 16 }));
        assert_eq!(BitRange::parse("2..=4"), Ok(BitRange { lo: 2, hi: 4 }));
        assert_eq!(BitRange::parse("8"), Ok(BitRange { lo: 8, hi: 8 }));
        assert_eq!(BitRange::parse("2..16").map(|r| r.iter().count()), Ok(15));
    }

    #[test]
    fn bad_ranges_are_named() {
        let e = BitRange::parse("").unwrap_err();
        assert!(e.contains("empty"), "{e}");
        let e = BitRange::parse("16..2").unwrap_err();
        assert!(e.contains("reversed"), "{e}");
        let e = BitRange::parse("0..8").unwrap_err();
        assert!(e.contains("1..=32"), "{e}");
        let e = BitRange::parse("2..40").unwrap_err();
        assert!(e.contains("1..=32"), "{e}");
        let e = BitRange::parse("2..").unwrap_err();
        assert!(e.contains("missing an end"), "{e}");
        let e = BitRange::parse("a..b").unwrap_err();
        assert!(e.contains("not a whole number"), "{e}");
    }
}
