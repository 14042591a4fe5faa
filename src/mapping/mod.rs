//! Mappings: one choice per linear layer of how it runs under HE (tiling, packing,
//! ring degree, moduli), and the legal space of those choices.

pub mod space;

use crate::units::RingDegree;
use crate::workload::BitWidths;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where intra-coefficient packing puts several values into one plaintext coefficient
/// (docs/protocol-reference.md 4.2).
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
    /// CRT slots: component i of every coefficient holds image i of a group of the batch.
    Batch,
    /// CRT slots: component i of ciphertext j holds spatial tile j * factor + i of one image.
    Tiles,
}

impl PackDirection {
    pub const ALL: [PackDirection; 6] = [
        PackDirection::None,
        PackDirection::Spatial,
        PackDirection::OutputChannel,
        PackDirection::InputChannel,
        PackDirection::Batch,
        PackDirection::Tiles,
    ];
    /// The directions of bit slots (the bit-slot schemes pack along these).
    pub const BIT_SLOTS: [PackDirection; 3] = [
        PackDirection::Spatial,
        PackDirection::OutputChannel,
        PackDirection::InputChannel,
    ];
    /// The directions of CRT slots.
    pub const CRT: [PackDirection; 2] = [PackDirection::Batch, PackDirection::Tiles];
    pub fn name(self) -> &'static str {
        match self {
            PackDirection::None => "none",
            PackDirection::Spatial => "spatial",
            PackDirection::OutputChannel => "out-ch",
            PackDirection::InputChannel => "in-ch",
            PackDirection::Batch => "batch",
            PackDirection::Tiles => "tiles",
        }
    }
}

/// How the values that share one plaintext coefficient are kept apart (docs/protocol-reference.md
/// 4.1, 4.2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum SlotScheme {
    /// Bit slots wide enough for the secret-share wrap:
    /// S = l + b_w + ceil(log2 fan_in) + 1 ([`crate::model::linear::slot_bits`]). Sound.
    #[default]
    Exact,
    /// Bit slots sized to the true accumulator, on a layer whose input is the client's own
    /// data (the network input: the server holds no share, so no wrap). Sound there only.
    Client,
    /// The HEQuant authors' rule (`ILP.py`): slots sized to the true activation's
    /// accumulator with a floor on t, whatever the shares. Not sound for secret shares.
    Paper,
    /// CRT slots: t = t_1 ... t_c, pairwise coprime; c independent inputs (batch images or
    /// spatial tiles) in the c components, each party's share of component i in Z_{t_i}.
    Crt,
}

impl SlotScheme {
    pub const ALL: [SlotScheme; 4] = [
        SlotScheme::Exact,
        SlotScheme::Client,
        SlotScheme::Paper,
        SlotScheme::Crt,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SlotScheme::Exact => "exact",
            SlotScheme::Client => "client",
            SlotScheme::Paper => "paper",
            SlotScheme::Crt => "crt",
        }
    }
    pub fn parse(s: &str) -> Result<SlotScheme, String> {
        SlotScheme::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| format!("unknown slot scheme '{s}' (known: exact, client, paper, crt)"))
    }
    /// Whether the scheme computes the right result on secret-shared inputs.
    pub fn is_sound(self) -> bool {
        self != SlotScheme::Paper
    }
}

/// The packing of one layer: direction and number of values per coefficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packing {
    pub direction: PackDirection,
    pub factor: u32,
    /// How the slots are kept apart (files written before schemes existed mean `exact`).
    #[serde(default)]
    pub scheme: SlotScheme,
}

impl Packing {
    pub const NONE: Packing = Packing {
        direction: PackDirection::None,
        factor: 1,
        scheme: SlotScheme::Exact,
    };
    /// A bit-slot packing (`exact`, `client` or `paper`) or a CRT one.
    pub fn new(direction: PackDirection, factor: u32, scheme: SlotScheme) -> Packing {
        Packing {
            direction,
            factor,
            scheme,
        }
    }
    pub fn is_packed(&self) -> bool {
        self.direction != PackDirection::None && self.factor > 1
    }
    pub fn is_crt(&self) -> bool {
        self.is_packed() && self.scheme == SlotScheme::Crt
    }
}

impl fmt::Display for Packing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_packed() {
            match self.scheme {
                SlotScheme::Exact | SlotScheme::Crt => {}
                other => write!(f, "{}:", other.name())?,
            }
            write!(f, "{}x{}", self.direction.name(), self.factor)
        } else {
            f.write_str("-")
        }
    }
}

/// How the input of a linear layer is laid out in ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct LinearMapping {
    pub n: RingDegree,
    pub tiling: Tiling,
    pub packing: Packing,
}

/// One layer's entry of a saved mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerChoice {
    pub layer: String,
    pub bits: Option<BitWidths>,
    pub linear: Option<LinearMapping>,
}
