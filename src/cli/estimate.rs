//! `hequant estimate`: per-layer and total cost of a network under one or more protocols.

use super::{ModelArgs, emit, eval_options, load_network, parse_protocols};
use crate::export::{self, Format};
use crate::model;
use crate::protocol::{CostModel, Protocol};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Compare several protocols (comma-separated); replaces --protocol.
    #[arg(long)]
    pub compare: Option<String>,
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: Format,
    /// Use the per-layer choices of a saved mapping (from `hequant search --save`).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Write the report to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

pub fn run(a: &EstimateArgs, cm: &CostModel) -> Result<(), String> {
    let net = load_network(&a.model.network)?;
    let protocols = match &a.compare {
        Some(list) => parse_protocols(list)?,
        None => vec![Protocol::parse(&a.model.protocol)?],
    };
    let overrides = match &a.mapping {
        Some(path) => {
            let m = crate::spec::mapping::load(path, Some(&net)).map_err(|e| e.to_string())?;
            m.overrides()
        }
        None => Default::default(),
    };
    let mut reports = Vec::new();
    for p in protocols {
        let mut o = eval_options(&a.model, p, cm)?;
        o.overrides = overrides.clone();
        reports.push(model::evaluate(&net, &o, cm).map_err(|e| e.to_string())?);
    }
    emit(&export::render(&reports, a.format), a.output.as_deref())
}
