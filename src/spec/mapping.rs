//! Saved mappings (`format = "hequant-mapping"`, version 1): the per-layer choices of a
//! search, which `estimate`, `explore` and `verify` can load back.

use super::{SpecError, parse, read_text};
use crate::mapping::LayerChoice;
use crate::model::report::Report;
use crate::workload::{CostClass, Network};
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

/// Mapping entries as spans: where each `[[layer]]` entry and its `layer` key are.
#[derive(Deserialize)]
struct EntrySpans {
    #[serde(default)]
    layer: Vec<toml::Spanned<EntrySpan>>,
}

#[derive(Deserialize)]
struct EntrySpan {
    layer: toml::Spanned<String>,
}

/// Parses and validates mapping text; `file` names it in errors. Unknown keys are errors;
/// with `net`, every entry must name a linear layer of it (conv, fully connected, batch
/// norm), at most once.
pub fn from_str(file: &str, text: &str, net: Option<&Network>) -> Result<MappingFile, SpecError> {
    let m: MappingFile = parse(file, text, FORMAT, VERSION)?;
    let spans: Vec<std::ops::Range<usize>> = toml::from_str::<EntrySpans>(text)
        .map(|s| s.layer.iter().map(|e| e.get_ref().layer.span()).collect())
        .unwrap_or_default();
    let span = |i: usize| spans.get(i).cloned();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, c) in m.layer.iter().enumerate() {
        let key = format!("layer[{i}].layer");
        if let Some(j) = seen.insert(c.layer.as_str(), i) {
            return Err(SpecError::at(
                file,
                text,
                span(i),
                &key,
                format!(
                    "the layer '{}' has a second entry (the first is layer[{j}])",
                    c.layer
                ),
            ));
        }
        let Some(net) = net else { continue };
        match net.layer_index(&c.layer) {
            None => {
                return Err(SpecError::at(
                    file,
                    text,
                    span(i),
                    &key,
                    format!(
                        "the network '{}' has no layer named '{}'",
                        net.name, c.layer
                    ),
                ));
            }
            Some(k) if net.layers[k].kind.cost_class() != CostClass::Linear => {
                return Err(SpecError::at(
                    file,
                    text,
                    span(i),
                    &key,
                    format!(
                        "'{}' is a {} layer: a mapping gives choices only to linear layers (conv2d, linear, batch_norm)",
                        c.layer,
                        net.layers[k].kind.name()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "format = \"hequant-mapping\"\nversion = 1\nnetwork = \"t\"\nprotocol = \"hequant\"\n";
    const NET: &str = "format = \"hequant-network\"\nversion = 1\nname = \"t\"\ninput = [3, 8, 8]\n\n[[layer]]\nname = \"c1\"\nkind = \"conv2d\"\nout_channels = 4\nkernel = 3\n\n[[layer]]\nname = \"r1\"\nkind = \"relu\"\n";

    fn err(body: &str) -> SpecError {
        let net = crate::spec::network::from_str("t.toml", NET).unwrap();
        from_str("m.toml", &format!("{HEAD}{body}"), Some(&net)).unwrap_err()
    }

    #[test]
    fn a_good_mapping_loads() {
        let net = crate::spec::network::from_str("t.toml", NET).unwrap();
        let body = "\n[[layer]]\nlayer = \"c1\"\nbits = { w = 4, a = 4 }\n";
        let m = from_str("m.toml", &format!("{HEAD}{body}"), Some(&net)).unwrap();
        assert_eq!(m.layer.len(), 1);
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        for (body, key, line) in [
            ("colour = 1\n", "colour", 5),
            ("\n[[layer]]\nlayer = \"c1\"\nbitz = 4\n", "bitz", 8),
            (
                "\n[[layer]]\nlayer = \"c1\"\n[layer.linear]\nn = 4096\npacking = { direction = \"none\", factor = 1 }\ntiling = { c_w = 3, h_w = 8, w_w = 8, m_w = 1, x = 1 }\n",
                "x",
                11,
            ),
        ] {
            let e = err(body);
            assert_eq!((e.key.as_str(), e.line), (key, line), "{e}");
        }
    }

    #[test]
    fn duplicates_and_non_linear_layers_are_refused() {
        let e = err("\n[[layer]]\nlayer = \"c1\"\n\n[[layer]]\nlayer = \"c1\"\n");
        assert_eq!((e.key.as_str(), e.line), ("layer[1].layer", 10), "{e}");
        assert!(e.message.contains("second entry"), "{e}");
        let e = err("\n[[layer]]\nlayer = \"r1\"\n");
        assert_eq!((e.key.as_str(), e.line), ("layer[0].layer", 7), "{e}");
        assert!(e.message.contains("relu layer"), "{e}");
        let e = err("\n[[layer]]\nlayer = \"nope\"\n");
        assert!(e.message.contains("no layer named 'nope'"), "{e}");
    }
}
