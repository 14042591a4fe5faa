//! Oblivious transfer and OT-based two-party secure computation building blocks
//! (semi-honest security, 128-bit computational).
//!
//! * [`base`]: Chou–Orlandi "simplest OT" (LATINCRYPT 2015) over Ristretto255.
//! * [`iknp`]: IKNP OT extension (Ishai–Kilian–Nissim–Petrank, CRYPTO 2003),
//!   random / correlated / chosen-message 1-of-2 OT.
//! * [`nchoose1`]: 1-out-of-2^m OT from m 1-of-2 ROTs (Naor–Pinkas style).
//! * [`triples`]: Boolean Beaver (AND) triples from 2 ROTs per triple.
//! * [`millionaire`]: CrypTFlow2 (Rathee et al., CCS 2020) Algorithm 1 comparison.
//! * [`arith`]: DReLU, B2A, MUX, ReLU, truncation on additive shares mod 2^l.
//! * [`sizes`]: exact communication (payload bytes each way) and rounds of every protocol.
//!
//! # Use
//! Both parties create an [`OtSession`] once with [`OtSession::setup`] over an
//! [`OtChannel`] (one-time base-OT cost [`sizes::base_setup`]), then call the protocol
//! functions (e.g. [`arith::relu`]) with their own shares; each function's cost is the
//! function of the same name in [`sizes`]. The OT-extension state (PRG streams, hash indices)
//! advances with every call, so both parties must make the same sequence of calls with the
//! same public parameters. After an error the session must be discarded.
//!
//! Two parties take part: [`Role::A`] (e.g. the server) and [`Role::B`] (the client).
//! Every protocol is a function run by both parties with the same public parameters
//! (batch size `n`, bit width `l`, digit size `m`, ...); message lengths are always derived
//! from these public parameters, never from peer-supplied length fields.

pub mod arith;
pub mod base;
pub mod channel;
pub mod iknp;
pub mod millionaire;
pub mod nchoose1;
pub mod prg;
pub mod sizes;
pub mod triples;

#[cfg(test)]
mod tests;

pub use channel::{MemChannel, OtChannel, mem_pair};
pub use iknp::OtSession;

/// The two parties of every protocol in this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Party A (e.g. the server).
    A,
    /// Party B (e.g. the client).
    B,
}

impl Role {
    /// The other party.
    pub fn peer(self) -> Role {
        match self {
            Role::A => Role::B,
            Role::B => Role::A,
        }
    }
}

/// Largest batch (number of elements, or of OTs of one extension call) accepted by any protocol.
/// Every allocation is bounded by a constant multiple of this.
pub const MAX_BATCH: usize = 1 << 28;

/// Errors of the OT module. Messages name the protocol step that failed.
#[derive(Debug, thiserror::Error)]
pub enum OtError {
    /// The peer sent a message of a different length than the protocol step requires.
    #[error("{step}: expected {expected} bytes of {what}, got {got}")]
    Length {
        step: String,
        what: String,
        expected: usize,
        got: usize,
    },
    /// The peer closed the channel.
    #[error("{step}: peer closed the channel")]
    Closed { step: String },
    /// No message arrived within the receive timeout.
    #[error("{step}: timed out after {secs} s waiting for the peer")]
    Timeout { step: String, secs: u64 },
    /// A Ristretto point from the peer failed to decompress (or was the identity).
    #[error("{step}: invalid Ristretto point from peer at index {index}")]
    InvalidPoint { step: String, index: usize },
    /// A parameter is out of range (local misuse, not peer input).
    #[error("invalid parameter: {0}")]
    Param(String),
    /// The operating system random number generator failed.
    #[error("OS randomness unavailable: {0}")]
    Rng(String),
    /// Transport-level failure of a channel implementation.
    #[error("{step}: transport error: {msg}")]
    Transport { step: String, msg: String },
}

impl OtError {
    /// A length error; `what` of the form "step: item" gives
    /// "step: expected N bytes of item, got M".
    pub fn length(what: &str, expected: usize, got: usize) -> OtError {
        let (step, item) = match what.split_once(": ") {
            Some((s, i)) => (s.to_string(), i.to_string()),
            None => (what.to_string(), "message".to_string()),
        };
        OtError::Length {
            step,
            what: item,
            expected,
            got,
        }
    }
}

/// Check a batch size against [`MAX_BATCH`].
pub(crate) fn check_batch(n: usize, what: &str) -> Result<(), OtError> {
    if n > MAX_BATCH {
        return Err(OtError::Param(format!(
            "{what}: batch {n} exceeds cap {MAX_BATCH}"
        )));
    }
    Ok(())
}

/// Check a ring bit width 1 <= l <= 64.
pub(crate) fn check_width(l: u32, what: &str) -> Result<(), OtError> {
    if l == 0 || l > 64 {
        return Err(OtError::Param(format!(
            "{what}: bit width {l} not in 1..=64"
        )));
    }
    Ok(())
}

/// Bit mask of the low `l` bits (l in 0..=64).
#[inline]
pub fn mask(l: u32) -> u64 {
    if l >= 64 { u64::MAX } else { (1u64 << l) - 1 }
}
