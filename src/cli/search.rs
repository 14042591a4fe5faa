//! `hequant search`: the best mapping of every linear layer, found by exhaustive search.

use super::{ModelArgs, OutputArgs, eval_options, load_network};
use crate::export::Format;
use crate::export::table::{
    COLUMNS, Footnotes, Shrink, Table, aligned_left, fit, join_wrapped, totals_text, wrap,
};
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
    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(a: &SearchArgs, cm: &CostModel) -> Result<(), String> {
    let format = a.out.format("search", &[Format::Table, Format::Json])?;
    let net = load_network(&a.model.network)?;
    let protocol = Protocol::parse(super::protocol_or_default(&a.model.protocol))?;
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
    a.out.emit(&match format {
        Format::Json => serde_json::to_string_pretty(&s).map_err(|e| e.to_string())? + "\n",
        _ => table(&s, a.out.wide),
    })?;
    if let Some(path) = &a.save {
        eprintln!("saved the mapping to {}", path.display());
    }
    Ok(())
}

/// The search as a terminal table: every column (`wide`), or within [`COLUMNS`] with the
/// mapping in short, the constraints that ruled candidates out as footnotes, without the
/// per-layer search time and long layer names cut.
pub fn table(s: &NetworkSearch, wide: bool) -> String {
    let r = &s.report;
    let header: &[&str] = if wide {
        &[
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
    } else {
        &[
            "layer",
            "bits",
            "mapping",
            "HE bytes",
            "latency",
            "candidates",
            "infeasible",
        ]
    };
    let mut t = Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        rows: Vec::new(),
    };
    let mut notes = Footnotes::default();
    for l in &s.layers {
        let lr = &r.layers[l.index];
        let m = lr.mapping;
        let infeasible: Vec<String> = l
            .search
            .infeasible
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let bits = lr.bits.map_or("-".into(), |b| b.to_string());
        let bytes = human_bytes(lr.bytes_linear);
        let latency = human_seconds(lr.latency_s);
        let evaluated = l.search.evaluated.to_string();
        let time = human_seconds(l.seconds);
        t.rows.push(if wide {
            vec![
                l.layer.clone(),
                bits,
                m.map_or("-".into(), |m| m.n.to_string()),
                m.map_or("-".into(), |m| m.tiling.to_string()),
                m.map_or("-".into(), |m| m.packing.to_string()),
                lr.he.map_or("-".into(), |h| h.log_q.to_string()),
                bytes,
                latency,
                evaluated,
                time,
                if infeasible.is_empty() {
                    "-".into()
                } else {
                    infeasible.join(", ")
                },
            ]
        } else {
            let count: u64 = l.search.infeasible.values().sum();
            vec![
                l.layer.clone(),
                bits,
                crate::export::table::short_mapping(m),
                bytes,
                latency,
                evaluated,
                if infeasible.is_empty() {
                    "-".into()
                } else {
                    format!("{count} {}", notes.mark(&infeasible.join(", ")))
                },
            ]
        });
    }
    let parts = [
        format!("{} under {}", r.network, r.protocol),
        format!("objective: {}", s.objective),
        format!("bits: {}", r.bits),
        format!("link: {}", r.link.name),
    ];
    let mut out = if wide {
        parts.join(" | ") + "\n"
    } else {
        join_wrapped("", &parts, " | ", COLUMNS)
    };
    for w in &r.warnings {
        let _ = writeln!(out, "!! {w}");
    }
    if !wide {
        out = wrap(&out, COLUMNS);
        fit(
            &mut t,
            &[(0, Shrink::Middle(12)), (2, Shrink::End(16))],
            COLUMNS,
        );
    }
    // Left-align the first two columns and the last (text) one by aligning all but the last.
    let last: Vec<String> = t
        .rows
        .iter_mut()
        .map(|row| row.pop().unwrap_or_default())
        .collect();
    let head_last = t.header.pop().unwrap_or_default();
    let body = aligned_left(&t, if wide { 2 } else { 3 });
    for (i, line) in body.lines().enumerate() {
        let extra = if i == 0 { &head_last } else { &last[i - 1] };
        let _ = writeln!(out, "{line}  {extra}");
    }
    let mut foot = String::new();
    if !wide {
        foot.push_str("infeasible: candidates ruled out, by constraint in the footnote\n");
        foot.push_str(&notes.render());
    }
    let infeasible: u64 = s
        .layers
        .iter()
        .map(|l| l.search.infeasible.values().sum::<u64>())
        .sum();
    let _ = writeln!(
        foot,
        "searched {} layers: {} candidates ({} infeasible) in {} on {} threads ({:.0} candidates/s)",
        s.layers.len(),
        s.candidates,
        infeasible,
        human_seconds(s.seconds),
        rayon::current_num_threads(),
        s.candidates as f64 / s.seconds.max(1e-9)
    );
    let _ = writeln!(foot, "{}", totals_text(r));
    if wide {
        out.push_str(&foot);
    } else {
        out.push_str(&wrap(&foot, COLUMNS));
    }
    out
}
