//! Sensitivity files (`format = "hequant-sensitivity"`, version 1): per-layer weights of
//! the precision-loss proxy that `hequant mixed` minimises, for example Hessian traces.
//!
//! ```toml
//! format = "hequant-sensitivity"
//! version = 1
//! [[layer]]
//! name = "conv1"
//! weight = 12.5       # multiplies 2^(-2 b_w)
//! activation = 3.0    # multiplies 2^(-2 b_a); defaults to `weight`
//! ```
//!
//! Every weighted layer (conv, fully connected) of the network must be listed.

use super::{SpecError, parse, read_text};
use crate::workload::Network;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use toml::Spanned;

pub const FORMAT: &str = "hequant-sensitivity";
pub const VERSION: i64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: i64,
    #[serde(default)]
    layer: Vec<RawLayer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    name: Spanned<String>,
    weight: Spanned<f64>,
    activation: Option<Spanned<f64>>,
}

/// Sensitivities of one layer to weight and activation quantization noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sensitivity {
    pub weight: f64,
    pub activation: f64,
}

/// Reads a sensitivity file and checks it against the network's weighted layers.
pub fn load(path: &Path, net: &Network) -> Result<HashMap<String, Sensitivity>, SpecError> {
    let text = read_text(path)?;
    from_str(&path.display().to_string(), &text, net)
}

pub fn from_str(
    file: &str,
    text: &str,
    net: &Network,
) -> Result<HashMap<String, Sensitivity>, SpecError> {
    let raw: Raw = parse(file, text, FORMAT, VERSION)?;
    let mut out = HashMap::new();
    for (i, l) in raw.layer.iter().enumerate() {
        let name = l.name.get_ref();
        let at = |span: std::ops::Range<usize>, key: &str, msg: String| {
            SpecError::at(file, text, Some(span), &format!("layer[{i}].{key}"), msg)
        };
        match net.layer_index(name) {
            Some(j) if net.layers[j].kind.has_weights() => {}
            Some(_) => {
                return Err(at(
                    l.name.span(),
                    "name",
                    format!(
                        "layer '{name}' has no weights: only convolutions and fully connected layers take bit widths"
                    ),
                ));
            }
            None => {
                return Err(at(
                    l.name.span(),
                    "name",
                    format!("the network '{}' has no layer named '{name}'", net.name),
                ));
            }
        }
        let check = |v: &Spanned<f64>, key: &str| -> Result<f64, SpecError> {
            let x = *v.get_ref();
            if x.is_finite() && x > 0.0 {
                Ok(x)
            } else {
                Err(at(v.span(), key, format!("{x} is not a positive number")))
            }
        };
        let weight = check(&l.weight, "weight")?;
        let activation = match &l.activation {
            Some(a) => check(a, "activation")?,
            None => weight,
        };
        if out
            .insert(name.clone(), Sensitivity { weight, activation })
            .is_some()
        {
            return Err(at(
                l.name.span(),
                "name",
                format!("layer '{name}' is listed twice"),
            ));
        }
    }
    let missing: Vec<&str> = net
        .layers
        .iter()
        .filter(|l| l.kind.has_weights() && !out.contains_key(&l.name))
        .map(|l| l.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(SpecError::at(
            file,
            text,
            None,
            "layer",
            format!(
                "no sensitivity for the weighted layer(s) {}: list every conv and fully connected layer",
                missing.join(", ")
            ),
        ));
    }
    Ok(out)
}
