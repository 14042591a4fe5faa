//! Turning reports into bytes: one module per format, each from the one result type.

pub mod table;

use crate::model::report::Report;
use std::fmt::Write;

/// Output formats of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for a terminal (`text` is an old name of it).
    #[value(alias = "text")]
    Table,
    Json,
    Csv,
    /// Markdown (also `md`).
    #[value(alias = "md")]
    Markdown,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Markdown => "markdown",
        }
    }

    /// The format a file's extension names: `.json`, `.csv`, `.md`; anything else the table.
    pub fn from_path(p: &std::path::Path) -> Format {
        match p
            .extension()
            .and_then(|x| x.to_str())
            .map(|x| x.to_ascii_lowercase())
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            Some("md") | Some("markdown") => Format::Markdown,
            _ => Format::Table,
        }
    }
}

/// JSON (the schema-versioned contract): one object, or an array for several reports.
pub fn json(reports: &[Report]) -> String {
    let s = if reports.len() == 1 {
        serde_json::to_string_pretty(&reports[0])
    } else {
        serde_json::to_string_pretty(reports)
    };
    s.expect("reports serialise") + "\n"
}

const CSV_HEADER: [&str; 31] = [
    "network",
    "protocol",
    "wire",
    "layer",
    "kind",
    "class",
    "shape",
    "w_bits",
    "a_bits",
    "ring_bits",
    "c_w",
    "h_w",
    "w_w",
    "m_w",
    "packing",
    "n",
    "log_q",
    "log_t",
    "ct_client_to_server",
    "ct_server_to_client",
    "bytes_client_to_server",
    "bytes_server_to_client",
    "bytes_nonlinear",
    "rounds",
    "latency_s",
    "insecure",
    "batch",
    "scheme",
    "why_lost",
    "warnings",
    "offline_s",
];

/// CSV: one row per layer and one `TOTAL` row per report, exact integers; with a batch
/// above one, a `PER_IMAGE` row (the totals divided by the batch) follows. `scheme` is a
/// searched layer's slot scheme, `why_lost` the other schemes' outcomes; `warnings` (on
/// the total rows) those of the report, `; `-separated.
pub fn csv(reports: &[Report]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).expect("in-memory write");
    for r in reports {
        for l in &r.layers {
            let m = l.mapping;
            let opt = |v: Option<String>| v.unwrap_or_default();
            w.write_record([
                r.network.clone(),
                r.protocol.clone(),
                r.wire.clone(),
                l.name.clone(),
                l.kind.clone(),
                format!("{:?}", l.class).to_lowercase(),
                l.shape.clone(),
                opt(l.bits.map(|b| b.w.to_string())),
                opt(l.bits.map(|b| b.a.to_string())),
                l.ring_bits_out.to_string(),
                opt(m.map(|m| m.tiling.c_w.to_string())),
                opt(m.map(|m| m.tiling.h_w.to_string())),
                opt(m.map(|m| m.tiling.w_w.to_string())),
                opt(m.map(|m| m.tiling.m_w.to_string())),
                opt(m.map(|m| m.packing.to_string())),
                opt(m.map(|m| m.n.to_string())),
                opt(l.he.map(|h| h.log_q.to_string())),
                opt(l.he.map(|h| h.log_t.to_string())),
                l.ct_client_to_server.to_string(),
                l.ct_server_to_client.to_string(),
                l.bytes_client_to_server.to_string(),
                l.bytes_server_to_client.to_string(),
                l.bytes_nonlinear.to_string(),
                l.rounds.to_string(),
                format!("{:.6}", l.latency_s),
                r.insecure.to_string(),
                r.batch.to_string(),
                l.scheme_used().unwrap_or_default().to_string(),
                l.why_lost_compact(),
                String::new(),
                format!("{:.6}", l.offline_s),
            ])
            .expect("in-memory write");
        }
        let t = &r.total;
        let mut row = vec![
            r.network.clone(),
            r.protocol.clone(),
            r.wire.clone(),
            "TOTAL".into(),
        ];
        row.resize(18, String::new());
        row.extend([
            t.ct_client_to_server.to_string(),
            t.ct_server_to_client.to_string(),
            t.bytes_client_to_server.to_string(),
            t.bytes_server_to_client.to_string(),
            t.bytes_nonlinear.to_string(),
            t.rounds.to_string(),
            format!("{:.6}", t.latency_s),
            r.insecure.to_string(),
            r.batch.to_string(),
            String::new(),
            String::new(),
            r.warnings.join("; "),
            format!("{:.6}", t.offline_s),
        ]);
        w.write_record(row).expect("in-memory write");
        if r.batch > 1 {
            let p = &r.per_image;
            let mut row = vec![
                r.network.clone(),
                r.protocol.clone(),
                r.wire.clone(),
                "PER_IMAGE".into(),
            ];
            row.resize(20, String::new());
            row.extend([
                p.bytes_client_to_server.to_string(),
                p.bytes_server_to_client.to_string(),
                p.bytes_nonlinear.to_string(),
                String::new(),
                format!("{:.6}", p.latency_s),
                r.insecure.to_string(),
                r.batch.to_string(),
                String::new(),
                String::new(),
                r.warnings.join("; "),
                String::new(),
            ]);
            w.write_record(row).expect("in-memory write");
        }
    }
    String::from_utf8(w.into_inner().expect("flush")).expect("csv is utf-8")
}

/// Markdown: the same table as the terminal one, as a pipe table.
pub fn markdown(reports: &[Report]) -> String {
    let mut s = String::new();
    for r in reports {
        let t = table::layer_table(r);
        let _ = writeln!(
            s,
            "### {} under {} ({}; bits: {}; ReLU: {}; {} link; {})\n",
            r.network,
            r.protocol,
            r.wire,
            r.bits,
            r.relu,
            r.link.name,
            table::batch_text(r)
        );
        if r.insecure {
            let _ = writeln!(
                s,
                "**INSECURE parameters accepted with --allow-insecure**\n"
            );
        }
        for w in table::other_warnings(r) {
            let _ = writeln!(s, "**WARNING: {w}**\n");
        }
        let _ = writeln!(s, "| {} |", t.header.join(" | "));
        let _ = writeln!(
            s,
            "|{}|",
            t.header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
        );
        for row in &t.rows {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        let schemes = table::schemes_text(r);
        if !schemes.is_empty() {
            let _ = writeln!(s, "\n```text\n{}```", schemes);
        }
        let _ = writeln!(s, "\n{}\n", table::totals_text(r).replace('\n', "  \n"));
    }
    if reports.len() > 1 {
        s.push_str(&table::compare_markdown(reports));
    }
    s
}

/// Renders reports in a format; `wide`: the table with every column (else within
/// [`table::COLUMNS`]).
pub fn render(reports: &[Report], format: Format, wide: bool) -> String {
    match format {
        Format::Table => table::render(reports, wide),
        Format::Json => json(reports),
        Format::Csv => csv(reports),
        Format::Markdown => markdown(reports),
    }
}
