//! Mappings: one choice per linear layer of how it runs under HE (tiling, packing,
//! ring degree, moduli), and the legal space of those choices.

pub mod space;

use crate::units::RingDegree;
use crate::workload::BitWidths;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where intra-coefficient packing puts several values into one plaintext coefficient
/// (protocol reference 4.2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum PackDirection {
    #[default]
    None,
    /// Bands of rows of the input in the slots of the same coefficients (query side).
    Spatial,
    /// Several output channels' weights in one weight coefficient (response side).
    OutputChannel,
    /// Several input channels in one coefficient, summed in the middle slot of the product.
    InputChannel,
}

impl PackDirection {
    pub const ALL: [PackDirection; 4] = [
        PackDirection::None,
        PackDirection::Spatial,
        PackDirection::OutputChannel,
        PackDirection::InputChannel,
    ];
    pub fn name(self) -> &'static str {
        match self {
            PackDirection::None => "none",
            PackDirection::Spatial => "spatial",
            PackDirection::OutputChannel => "out-ch",
            PackDirection::InputChannel => "in-ch",
        }
    }
}

/// The packing of one layer: direction and number of values per coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Packing {
    pub direction: PackDirection,
    pub factor: u32,
}

impl Packing {
    pub const NONE: Packing = Packing {
        direction: PackDirection::None,
        factor: 1,
    };
    pub fn is_packed(&self) -> bool {
        self.direction != PackDirection::None && self.factor > 1
    }
}

impl fmt::Display for Packing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_packed() {
            write!(f, "{}x{}", self.direction.name(), self.factor)
        } else {
            f.write_str("-")
        }
    }
}

/// How the input of a linear layer is laid out in ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tiling {
    /// Input channels per ciphertext.
    pub c_w: u64,
    /// Rows of an input tile (with the kernel's halo).
    pub h_w: u64,
    /// Columns of an input tile (with the kernel's halo).
    pub w_w: u64,
    /// Output channels whose results share one response ciphertext (by position).
    pub m_w: u64,
}

impl fmt::Display for Tiling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.c_w, self.h_w, self.w_w)?;
        if self.m_w > 1 {
            write!(f, " M{}", self.m_w)?;
        }
        Ok(())
    }
}

/// How the HE part of a linear layer runs: the complete choice the model evaluates and
/// the verify mode executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LinearMapping {
    pub n: RingDegree,
    pub tiling: Tiling,
    pub packing: Packing,
}

/// One layer's entry of a saved mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerChoice {
    pub layer: String,
    pub bits: Option<BitWidths>,
    pub linear: Option<LinearMapping>,
}
