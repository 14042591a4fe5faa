//! HEQuant explorer: cost model, design-space search, terminal explorer, plots and a
//! real-HE verify mode for HE-based two-party neural-network inference.
//!
//! The layers of the library, from the bottom: [`units`] (validated quantities),
//! [`workload`] (networks), [`protocol`] (protocol families, parameters, ciphertext
//! sizes), [`mapping`] (per-layer choices and their space), [`model`] (the pure
//! evaluation), [`mapper`] (searches), then the front ends.

pub mod cli;
pub mod export;
pub mod io;
pub mod mapper;
pub mod mapping;
pub mod model;
pub mod onnx;
pub mod ot;
pub mod plot;
pub mod protocol;
pub mod spec;
pub mod tui;
pub mod units;
pub mod verify;
pub mod workload;
