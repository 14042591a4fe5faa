//! `hequant estimate`: per-layer and total cost of a network under one or more protocols.

use super::{ModelArgs, OutputArgs, eval_options, parse_protocols, parse_relu_budget};
use crate::export::{self, Format};
use crate::model;
use crate::protocol::{CostModel, Protocol};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct EstimateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Protocols to compare (comma-separated). Replaces --protocol. An entry
    /// `protocol@N` prices that protocol with a budget of N ReLUs (as --relu-budget), e.g.
    /// `hequant,cheetah@49900`.
    #[arg(long, alias = "compare")]
    pub protocols: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Use the per-layer choices of a saved mapping (from `hequant search --save`); its
    /// network and protocol replace --network and --protocol.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Print the totals only: each report's header, warnings and totals, without the
    /// per-layer table (and the comparison when several protocols are given). Table
    /// format only.
    #[arg(long)]
    pub summary: bool,
}

pub fn run(a: &EstimateArgs, cm: &CostModel) -> Result<(), String> {
    // A saved mapping brings its network and protocol (they replace --network and
    // --protocol; --protocols still lists protocols, each with the mapping's choices).
    let (net, protocol, overrides, _) = super::target(&a.model, a.mapping.as_deref())?;
    let format = a.out.format(
        "estimate",
        &[Format::Table, Format::Json, Format::Csv, Format::Markdown],
    )?;
    let protocols = match &a.protocols {
        Some(list) => parse_compare(list)?,
        None => vec![(protocol, None)],
    };
    let mut reports = Vec::new();
    for (p, budget) in protocols {
        let mut o = eval_options(&a.model, p, cm)?;
        o.overrides = overrides.clone();
        if budget.is_some() {
            o.relu_budget = budget;
        }
        reports.push(model::evaluate(&net, &o, cm).map_err(|e| e.to_string())?);
    }
    if a.summary {
        if format != Format::Table {
            return Err(format!(
                "--summary prints the table format's totals; --format {} already carries them (drop --summary)",
                format.name()
            ));
        }
        return a.out.emit(&export::table::render_summary(&reports));
    }
    a.out.emit(&export::render(&reports, format, a.out.wide))
}

/// Parses `--protocols`: protocols, each optionally `@N` for a budget of N ReLUs.
fn parse_compare(list: &str) -> Result<Vec<(Protocol, Option<u64>)>, String> {
    let mut out = Vec::new();
    for entry in list.split(',') {
        let (name, budget) = match entry.split_once('@') {
            Some((n, b)) => (
                n,
                Some(parse_relu_budget(b).map_err(|e| format!("--protocols '{entry}': {e}"))?),
            ),
            None => (entry, None),
        };
        let p = parse_protocols(name)?;
        out.extend(p.into_iter().map(|p| (p, budget)));
    }
    Ok(out)
}
