//! `hequant search`: the best mapping of every linear layer, found by exhaustive search.

use super::{ModelArgs, eval_options, load_network};
use crate::export::table::{Table, aligned_left, totals_text};
use crate::mapper::network::{NetworkSearch, search_network};
use crate::model;
use crate::protocol::{CostModel, Protocol};
use crate::spec::mapping::MappingFile;
use crate::units::{human_bytes, human_seconds};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Write;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write the chosen mapping to this file (for `hequant estimate --mapping`).
    #[arg(long)]
    pub save: Option<PathBuf>,
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: SearchFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SearchFormat {
    Table,
    Json,
}

pub fn run(a: &SearchArgs, cm: &CostModel) -> Result<(), String> {
    let net = load_network(&a.model.network)?;
    let protocol = Protocol::parse(&a.model.protocol)?;
    let opts = eval_options(&a.model, protocol, cm)?;
    let layers = model::search_problems(&net, &opts, cm).map_err(|e| e.to_string())?;
    let bar = if std::io::stderr().is_terminal() {
        let b =
            ProgressBar::with_draw_target(Some(layers.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("searching {bar:40} {pos}/{len} layers {elapsed}")
        {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let s = search_network(&net, &opts, cm, &|| bar.inc(1));
    bar.finish_and_clear();
    let s = s.map_err(|e| e.to_string())?;
    if let Some(path) = &a.save {
        let m = MappingFile::from_report(&a.model.network, &s.report);
        crate::io::write_atomic(path, m.to_toml().as_bytes())?;
    }
    match a.format {
        SearchFormat::Table => print!("{}", table(&s)),
        SearchFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
        ),
    }
    if let Some(path) = &a.save {
        eprintln!("saved the mapping to {}", path.display());
    }
    Ok(())
}

/// The search as a terminal table.
pub fn table(s: &NetworkSearch) -> String {
    let r = &s.report;
    let mut t = Table {
        header: [
            "layer",
            "bits",
            "N",
            "tiling",
            "pack",
            "log q",
            "HE bytes",
            "latency",
            "candidates",
            "time",
            "infeasible by constraint",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for l in &s.layers {
        let lr = &r.layers[l.index];
        let m = lr.mapping;
        let infeasible: Vec<String> = l
            .search
            .infeasible
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        t.rows.push(vec![
            l.layer.clone(),
            lr.bits.map_or("-".into(), |b| b.to_string()),
            m.map_or("-".into(), |m| m.n.to_string()),
            m.map_or("-".into(), |m| m.tiling.to_string()),
            m.map_or("-".into(), |m| m.packing.to_string()),
            lr.he.map_or("-".into(), |h| h.log_q.to_string()),
            human_bytes(lr.bytes_linear),
            human_seconds(lr.latency_s),
            l.search.evaluated.to_string(),
            human_seconds(l.seconds),
            if infeasible.is_empty() {
                "-".into()
            } else {
                infeasible.join(", ")
            },
        ]);
    }
    let mut out = format!(
        "{} under {} | objective: {} | bits: {} | link: {}\n",
        r.network, r.protocol, s.objective, r.bits, r.link.name
    );
    for w in &r.warnings {
        let _ = writeln!(out, "!! {w}");
    }
    // Left-align the first two columns and the last (text) one by aligning all but the last.
    let last: Vec<String> = t
        .rows
        .iter_mut()
        .map(|row| row.pop().unwrap_or_default())
        .collect();
    let head_last = t.header.pop().unwrap_or_default();
    let body = aligned_left(&t, 2);
    for (i, line) in body.lines().enumerate() {
        let extra = if i == 0 { &head_last } else { &last[i - 1] };
        let _ = writeln!(out, "{line}  {extra}");
    }
    let infeasible: u64 = s
        .layers
        .iter()
        .map(|l| l.search.infeasible.values().sum::<u64>())
        .sum();
    let _ = writeln!(
        out,
        "searched {} layers: {} candidates ({} infeasible) in {} on {} threads ({:.0} candidates/s)",
        s.layers.len(),
        s.candidates,
        infeasible,
        human_seconds(s.seconds),
        rayon::current_num_threads(),
        s.candidates as f64 / s.seconds.max(1e-9)
    );
    let _ = writeln!(out, "{}", totals_text(r));
    out
}
