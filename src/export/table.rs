//! The terminal table: human units, one row per layer, then totals.

use crate::model::report::Report;
use crate::units::{human_bytes, human_seconds};
use crate::workload::CostClass;
use std::fmt::Write;

pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The per-layer table of a report.
pub fn layer_table(r: &Report) -> Table {
    let header = [
        "layer",
        "kind",
        "shape",
        "bits",
        "l",
        "tiling",
        "pack",
        "N",
        "log q",
        "log t",
        "ct c>s",
        "ct s>c",
        "bytes c>s",
        "bytes s>c",
        "rounds",
        "latency",
    ]
    .map(String::from)
    .to_vec();
    let rows = r
        .layers
        .iter()
        .filter(|l| l.class != CostClass::Free || !l.note.is_empty())
        .map(|l| {
            let m = l.mapping;
            vec![
                l.name.clone(),
                l.kind.clone(),
                l.shape.clone(),
                l.bits.map_or("-".into(), |b| b.to_string()),
                l.ring_bits_out.to_string(),
                m.map_or("-".into(), |m| m.tiling.to_string()),
                m.map_or("-".into(), |m| m.packing.to_string()),
                m.map_or("-".into(), |m| m.n.to_string()),
                l.he.map_or("-".into(), |h| h.log_q.to_string()),
                l.he.map_or("-".into(), |h| h.log_t.to_string()),
                l.ct_client_to_server.to_string(),
                l.ct_server_to_client.to_string(),
                human_bytes(l.bytes_client_to_server),
                human_bytes(l.bytes_server_to_client),
                l.rounds.to_string(),
                if l.class == CostClass::Free {
                    l.note.clone()
                } else {
                    human_seconds(l.latency_s)
                },
            ]
        })
        .collect();
    Table { header, rows }
}

/// Totals as text lines.
pub fn totals_text(r: &Report) -> String {
    let t = &r.total;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "total: {} ({} client->server, {} server->client)",
        human_bytes(t.bytes()),
        human_bytes(t.bytes_client_to_server),
        human_bytes(t.bytes_server_to_client)
    );
    let _ = writeln!(
        s,
        "  linear (HE): {}   non-linear (OT): {}{}",
        human_bytes(t.bytes_linear),
        human_bytes(t.bytes_nonlinear),
        if t.bytes_setup > 0 {
            format!("   (setup keys {})", human_bytes(t.bytes_setup))
        } else {
            String::new()
        }
    );
    let _ = write!(
        s,
        "  rounds: {}   latency on {} ({:.0} Mbit/s, {} RTT): {}   (compute {})",
        t.rounds,
        r.link.name,
        r.link.bandwidth_bps / 1e6,
        human_seconds(r.link.rtt_s),
        human_seconds(t.latency_s),
        human_seconds(t.compute_s)
    );
    if t.offline_s > 0.0 {
        let _ = write!(
            s,
            "\n  offline: {} of server setup (weights to NTT form, once per mapping; not in the latency)",
            human_seconds(t.offline_s)
        );
    }
    if r.batch > 1 {
        let p = &r.per_image;
        let _ = write!(
            s,
            "\n  per image: {}  linear (HE): {}  non-linear (OT): {}  latency: {}",
            human_bytes(p.bytes.round() as u64),
            human_bytes(p.bytes_linear.round() as u64),
            human_bytes(p.bytes_nonlinear.round() as u64),
            human_seconds(p.latency_s)
        );
    }
    s
}

/// The batch as a header fragment: `batch 4 (totals per inference of 4 images)`.
pub fn batch_text(r: &Report) -> String {
    if r.batch > 1 {
        format!(
            "batch: {} (totals per inference of {} images, and per image)",
            r.batch, r.batch
        )
    } else {
        "batch: 1".into()
    }
}

/// Warnings other than the insecure one (which has its own banner), one per line.
pub fn other_warnings(r: &Report) -> impl Iterator<Item = &String> {
    r.warnings.iter().filter(|w| !w.starts_with("INSECURE"))
}

/// Per searched linear layer: the slot scheme it uses and why each other scheme lost.
/// Empty when no layer was searched.
pub fn schemes_text(r: &Report) -> String {
    let mut s = String::new();
    for l in &r.layers {
        let Some(used) = l.scheme_used() else {
            continue;
        };
        if s.is_empty() {
            s.push_str(
                "slot schemes (per searched layer: the choice, then why each other scheme lost):\n",
            );
        }
        let pack = l.mapping.map_or("-".into(), |m| m.packing.to_string());
        let _ = writeln!(s, "  {}: {used} (pack {pack})", l.name);
        for w in l.why_lost() {
            let _ = writeln!(s, "    {:<9} {}", w.scheme, w.text);
        }
    }
    s
}

/// One comparison of several reports: its title and the value compared.
type Comparison = (&'static str, fn(&Report) -> f64);

/// The two comparisons of several reports: communication and latency.
fn comparisons() -> [Comparison; 2] {
    [
        (
            "reduction factor (row / column, total communication)",
            |r| r.total.bytes() as f64,
        ),
        ("latency factor (row / column)", |r| r.total.latency_s),
    ]
}

/// Reduction factors of every report against every other, for communication and latency.
pub fn compare_text(reports: &[Report]) -> String {
    let mut s = String::new();
    for (title, value) in comparisons() {
        s.push_str(&factor_matrix(reports, title, value));
    }
    s
}

/// The same matrices as [`compare_text`], as Markdown tables under a bold title each.
pub fn compare_markdown(reports: &[Report]) -> String {
    let mut s = String::new();
    for (title, value) in comparisons() {
        let g = factor_grid(reports, value);
        let _ = writeln!(
            s,
            "**{title}**
"
        );
        let _ = writeln!(s, "| | {} |", g.labels.join(" | "));
        let _ = writeln!(s, "|---|{}|", vec!["---:"; g.labels.len()].join("|"));
        for (label, row) in g.labels.iter().zip(&g.cells) {
            let _ = writeln!(s, "| {label} | {} |", row.join(" | "));
        }
        s.push('\n');
    }
    s
}

/// A report's name in a comparison: its protocol, with `@N` under a budget of N ReLUs.
fn label(r: &Report) -> String {
    match r
        .relu
        .split("; budget ")
        .nth(1)
        .and_then(|t| t.strip_suffix(" ReLUs"))
    {
        Some(n) => format!("{}@{n}", r.protocol),
        None => r.protocol.clone(),
    }
}

/// Row / column factors of `value`, two decimals, with the reports' labels.
struct FactorGrid {
    labels: Vec<String>,
    cells: Vec<Vec<String>>,
}

fn factor_grid(reports: &[Report], value: impl Fn(&Report) -> f64) -> FactorGrid {
    FactorGrid {
        labels: reports.iter().map(label).collect(),
        cells: reports
            .iter()
            .map(|a| {
                reports
                    .iter()
                    .map(|b| format!("{:.2}", value(a) / value(b).max(1e-12)))
                    .collect()
            })
            .collect(),
    }
}

fn factor_matrix(reports: &[Report], title: &str, value: impl Fn(&Report) -> f64) -> String {
    let g = factor_grid(reports, value);
    let w = g.labels.iter().map(|l| l.len()).max().unwrap_or(8).max(8);
    let mut s = format!("{title}:\n{:w$}", "");
    for l in &g.labels {
        let _ = write!(s, "  {l:>w$}");
    }
    s.push('\n');
    for (l, row) in g.labels.iter().zip(&g.cells) {
        let _ = write!(s, "{l:w$}");
        for c in row {
            let _ = write!(s, "  {c:>w$}");
        }
        s.push('\n');
    }
    s
}

fn aligned(t: &Table) -> String {
    aligned_left(t, 3)
}

/// A table as aligned text: the first `left` columns left-aligned, the others right-aligned.
pub fn aligned_left(t: &Table, left: usize) -> String {
    let mut widths: Vec<usize> = t.header.iter().map(|h| h.len()).collect();
    for row in &t.rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, row: &[String]| {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < left {
                    format!("{:<w$}", c, w = widths[i])
                } else {
                    format!("{:>w$}", c, w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(s, "{}", cells.join("  ").trim_end());
    };
    line(&mut s, &t.header);
    for row in &t.rows {
        line(&mut s, row);
    }
    s
}

/// The full terminal report.
pub fn render(reports: &[Report]) -> String {
    render_with(reports, true)
}

/// The terminal report without the per-layer tables and slot schemes: headers, warnings,
/// totals and the comparison (`estimate --summary`).
pub fn render_summary(reports: &[Report]) -> String {
    render_with(reports, false)
}

/// Columns the summary keeps within.
pub const SUMMARY_COLUMNS: usize = 100;

fn render_with(reports: &[Report], layers: bool) -> String {
    let mut s = String::new();
    for r in reports {
        let head = format!(
            "{} under {} | wire: {} | bits: {} | ReLU: {} | {}",
            r.network,
            r.protocol,
            r.wire,
            r.bits,
            r.relu,
            batch_text(r)
        );
        if !layers && head.chars().count() > SUMMARY_COLUMNS {
            // The summary fits a terminal: the settings go on lines of their own.
            let (first, rest) = head.split_once(" | ").unwrap_or((&head, ""));
            let _ = writeln!(s, "{first}");
            if rest.chars().count() + 2 <= SUMMARY_COLUMNS {
                let _ = writeln!(s, "  {rest}");
            } else {
                for p in rest.split(" | ") {
                    let _ = writeln!(s, "  {p}");
                }
            }
        } else {
            let _ = writeln!(s, "{head}");
        }
        if let Some(c) = &r.cheetah_code {
            let _ = writeln!(s, "models: {c}");
        }
        if r.accumulator.starts_with("the weights") {
            let _ = writeln!(s, "accumulator bound: {}", r.accumulator);
        }
        if r.insecure {
            let _ = writeln!(
                s,
                "!! INSECURE: parameters below 128-bit security accepted with --allow-insecure"
            );
        }
        for w in other_warnings(r) {
            let _ = writeln!(s, "!! {w}");
        }
        if layers {
            s.push_str(&aligned(&layer_table(r)));
            s.push_str(&schemes_text(r));
        }
        let _ = writeln!(s, "{}\n", totals_text(r));
    }
    if reports.len() > 1 {
        s.push_str(&compare_text(reports));
    }
    s
}
