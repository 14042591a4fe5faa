//! Saved mappings (`format = "hequant-mapping"`, version 1): the per-layer choices of a
//! search, which `estimate`, `explore` and `verify` can load back.

use super::{SpecError, parse, read_text};
use crate::mapping::LayerChoice;
use crate::model::report::Report;
use crate::workload::Network;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

pub const FORMAT: &str = "hequant-mapping";
pub const VERSION: i64 = 1;

/// A saved mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub format: String,
    pub version: i64,
    /// The network file (path or shipped name) the mapping was made for.
    pub network: String,
    pub protocol: String,
    #[serde(default)]
    pub layer: Vec<LayerChoice>,
}

impl MappingFile {
    /// The mapping a report used, layer by layer (linear layers only).
    pub fn from_report(network: &str, r: &Report) -> MappingFile {
        MappingFile {
            format: FORMAT.into(),
            version: VERSION,
            network: network.into(),
            protocol: r.protocol.clone(),
            layer: r
                .layers
                .iter()
                .filter(|l| l.mapping.is_some() || l.bits.is_some())
                .map(|l| LayerChoice {
                    layer: l.name.clone(),
                    bits: l.bits,
                    linear: l.mapping,
                })
                .collect(),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a mapping serialises")
    }

    /// The per-layer overrides for [`crate::model::EvalOptions::overrides`].
    pub fn overrides(&self) -> HashMap<String, LayerChoice> {
        self.layer
            .iter()
            .map(|c| (c.layer.clone(), c.clone()))
            .collect()
    }
}

/// Reads a mapping file and checks that every layer it names exists in `net`
/// (when given).
pub fn load(path: &Path, net: Option<&Network>) -> Result<MappingFile, SpecError> {
    let text = read_text(path)?;
    from_str(&path.display().to_string(), &text, net)
}

pub fn from_str(file: &str, text: &str, net: Option<&Network>) -> Result<MappingFile, SpecError> {
    let m: MappingFile = parse(file, text, FORMAT, VERSION)?;
    if let Some(net) = net {
        for (i, c) in m.layer.iter().enumerate() {
            if net.layer_index(&c.layer).is_none() {
                let needle = format!("\"{}\"", c.layer);
                let span = text.find(&needle).map(|s| s..s + needle.len());
                return Err(SpecError::at(
                    file,
                    text,
                    span,
                    &format!("layer[{i}].layer"),
                    format!(
                        "the network '{}' has no layer named '{}'",
                        net.name, c.layer
                    ),
                ));
            }
        }
    }
    Ok(m)
}
