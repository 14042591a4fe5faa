//! Validated newtypes for every quantity the model handles.
//!
//! A value of one of these types is always in range: the constructors (`try_new`)
//! and the serde `try_from` conversions are the only ways to build one, so a bad
//! file or flag cannot produce a bad value deeper in the model.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a quantity was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} = {value} is out of range: {expected}")]
pub struct RangeError {
    pub what: &'static str,
    pub value: i64,
    pub expected: &'static str,
}

/// A bit width of a quantized value (weights or activations): 1..=32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct Bits(u32);

impl Bits {
    pub const MAX: u32 = 32;
    pub fn try_new(v: i64) -> Result<Self, RangeError> {
        if (1..=Self::MAX as i64).contains(&v) {
            Ok(Bits(v as u32))
        } else {
            Err(RangeError {
                what: "bit width",
                value: v,
                expected: "1..=32",
            })
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}
impl TryFrom<i64> for Bits {
    type Error = RangeError;
    fn try_from(v: i64) -> Result<Self, RangeError> {
        Bits::try_new(v)
    }
}
impl From<Bits> for u32 {
    fn from(b: Bits) -> u32 {
        b.0
    }
}
impl fmt::Display for Bits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Degree N of the RLWE ring Z_q[X]/(X^N + 1): a power of two, 256..=32768.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct RingDegree(u32);

impl RingDegree {
    pub fn try_new(v: i64) -> Result<Self, RangeError> {
        if (256..=32768).contains(&v) && (v as u64).is_power_of_two() {
            Ok(RingDegree(v as u32))
        } else {
            Err(RangeError {
                what: "ring degree N",
                value: v,
                expected: "a power of two in 256..=32768",
            })
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
    pub fn as_u64(self) -> u64 {
        self.0 as u64
    }
    pub fn log2(self) -> u32 {
        self.0.trailing_zeros()
    }
}
impl TryFrom<i64> for RingDegree {
    type Error = RangeError;
    fn try_from(v: i64) -> Result<Self, RangeError> {
        RingDegree::try_new(v)
    }
}
impl From<RingDegree> for u32 {
    fn from(n: RingDegree) -> u32 {
        n.0
    }
}
impl fmt::Display for RingDegree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Bit length of a modulus (ciphertext modulus q or plaintext modulus t): 1..=1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct ModulusBits(u32);

impl ModulusBits {
    pub fn try_new(v: i64) -> Result<Self, RangeError> {
        if (1..=1024).contains(&v) {
            Ok(ModulusBits(v as u32))
        } else {
            Err(RangeError {
                what: "modulus bits",
                value: v,
                expected: "1..=1024",
            })
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}
impl TryFrom<i64> for ModulusBits {
    type Error = RangeError;
    fn try_from(v: i64) -> Result<Self, RangeError> {
        ModulusBits::try_new(v)
    }
}
impl From<ModulusBits> for u32 {
    fn from(b: ModulusBits) -> u32 {
        b.0
    }
}
impl fmt::Display for ModulusBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Bandwidth in bits per second (> 0).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct BitsPerSecond(f64);

impl BitsPerSecond {
    pub fn try_new(v: f64) -> Result<Self, RangeError> {
        if v.is_finite() && v > 0.0 {
            Ok(BitsPerSecond(v))
        } else {
            Err(RangeError {
                what: "bandwidth (bit/s)",
                value: v as i64,
                expected: "> 0",
            })
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
}
impl TryFrom<f64> for BitsPerSecond {
    type Error = RangeError;
    fn try_from(v: f64) -> Result<Self, RangeError> {
        BitsPerSecond::try_new(v)
    }
}
impl From<BitsPerSecond> for f64 {
    fn from(b: BitsPerSecond) -> f64 {
        b.0
    }
}

/// A non-negative duration in seconds.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Seconds(f64);

impl Seconds {
    pub const ZERO: Seconds = Seconds(0.0);
    pub fn try_new(v: f64) -> Result<Self, RangeError> {
        if v.is_finite() && v >= 0.0 {
            Ok(Seconds(v))
        } else {
            Err(RangeError {
                what: "duration (s)",
                value: v as i64,
                expected: ">= 0",
            })
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
}
impl TryFrom<f64> for Seconds {
    type Error = RangeError;
    fn try_from(v: f64) -> Result<Self, RangeError> {
        Seconds::try_new(v)
    }
}
impl From<Seconds> for f64 {
    fn from(s: Seconds) -> f64 {
        s.0
    }
}

/// `ceil(log2(x))` for x >= 1 (0 for x <= 1).
pub fn ceil_log2(x: u64) -> u32 {
    if x <= 1 {
        0
    } else {
        64 - (x - 1).leading_zeros()
    }
}

/// `ceil(a / b)` for b > 0.
pub fn div_ceil(a: u64, b: u64) -> u64 {
    a.div_ceil(b)
}

/// Bytes in human units (kB = 1000 B, MB = 10^6 B, GB = 10^9 B), as the papers report them.
pub fn human_bytes(b: u64) -> String {
    let v = b as f64;
    if v >= 1e9 {
        format!("{:.2} GB", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} MB", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} kB", v / 1e3)
    } else {
        format!("{b} B")
    }
}

/// Seconds in human units.
pub fn human_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_range() {
        assert!(Bits::try_new(0).is_err());
        assert!(Bits::try_new(33).is_err());
        assert_eq!(Bits::try_new(4).unwrap().get(), 4);
    }

    #[test]
    fn ring_degree_power_of_two() {
        assert!(RingDegree::try_new(4096).is_ok());
        assert!(RingDegree::try_new(4095).is_err());
        assert!(RingDegree::try_new(128).is_err());
        assert_eq!(RingDegree::try_new(4096).unwrap().log2(), 12);
    }

    #[test]
    fn ceil_log2_values() {
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(3), 2);
        assert_eq!(ceil_log2(4608), 13);
        assert_eq!(ceil_log2(4096), 12);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(55_808), "55.8 kB");
        assert_eq!(human_bytes(2_300_000_000), "2.30 GB");
        assert_eq!(human_bytes(12), "12 B");
    }
}
