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

/// The full terminal report: every column (`--wide`), or the per-layer table within
/// [`COLUMNS`] and long lines wrapped (the default).
pub fn render(reports: &[Report], wide: bool) -> String {
    render_with(reports, true, wide)
}

/// The terminal report without the per-layer tables and slot schemes: headers, warnings,
/// totals and the comparison (`estimate --summary`).
pub fn render_summary(reports: &[Report]) -> String {
    render_with(reports, false, false)
}

/// Columns the default (not `--wide`) terminal output keeps within.
pub const COLUMNS: usize = 100;

/// The mark of a cell cut to fit: the full text is in `--wide`, JSON and CSV.
pub const CUT: char = '…';

/// `s` within `w` characters: cut in the middle (both ends of a layer name tell layers
/// apart: `layer3.0.downsample.0` becomes `layer3.0…sample.0`), marked with [`CUT`].
pub fn cut_middle(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w || w < 3 {
        return s.to_string();
    }
    let head = (w - 1).div_ceil(2);
    let tail = w - 1 - head;
    let mut out: String = s.chars().take(head).collect();
    out.push(CUT);
    out.extend(s.chars().skip(n - tail));
    out
}

/// `s` within `w` characters, cut at the end and marked with [`CUT`].
pub fn cut_end(s: &str, w: usize) -> String {
    if s.chars().count() <= w || w < 2 {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w - 1).collect();
    out.push(CUT);
    out
}

/// How a column may give up width to fit the table within [`COLUMNS`].
#[derive(Clone, Copy)]
pub enum Shrink {
    /// Cut in the middle ([`cut_middle`]), down to this many characters.
    Middle(usize),
    /// Cut at the end ([`cut_end`]), down to this many characters.
    End(usize),
}

/// Narrows the columns `shrink` names, in its order (each down to its minimum before the
/// next gives up a character), until the aligned table (two spaces
/// between columns) fits `limit` characters or each is at its minimum; cut cells carry
/// [`CUT`].
pub fn fit(t: &mut Table, shrink: &[(usize, Shrink)], limit: usize) {
    let cols = t.header.len();
    let mut widths: Vec<usize> = (0..cols)
        .map(|i| {
            t.rows
                .iter()
                .filter_map(|r| r.get(i))
                .chain(std::iter::once(&t.header[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let min = |k: &Shrink| match *k {
        Shrink::Middle(m) | Shrink::End(m) => m,
    };
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * cols.saturating_sub(1);
    while total(&widths) > limit {
        let Some(&(i, _)) = shrink
            .iter()
            .find(|(i, k)| widths[*i] > min(k).max(t.header[*i].chars().count()))
        else {
            break;
        };
        widths[i] -= 1;
    }
    for &(i, k) in shrink {
        for r in &mut t.rows {
            if let Some(c) = r.get_mut(i) {
                *c = match k {
                    Shrink::Middle(_) => cut_middle(c, widths[i]),
                    Shrink::End(_) => cut_end(c, widths[i]),
                };
            }
        }
    }
}

/// Numbered notes below a table: [`Footnotes::mark`] gives a cell its `[n]` (one number
/// per distinct text), [`Footnotes::render`] the lines `[n] text`, wrapped.
#[derive(Default)]
pub struct Footnotes(Vec<String>);

impl Footnotes {
    pub fn mark(&mut self, text: &str) -> String {
        let n = match self.0.iter().position(|t| t == text) {
            Some(i) => i + 1,
            None => {
                self.0.push(text.to_string());
                self.0.len()
            }
        };
        format!("[{n}]")
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        for (i, t) in self.0.iter().enumerate() {
            let _ = writeln!(s, "[{}] {t}", i + 1);
        }
        wrap(&s, COLUMNS)
    }
}

/// Every line of `text` longer than `width` characters broken at spaces; a continuation
/// is indented two more than its line (four under a `!! ` warning).
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if body.chars().count() <= width {
            out.push_str(line);
            continue;
        }
        let lead = body.len() - body.trim_start().len();
        let indent = " ".repeat(
            lead + if body.trim_start().starts_with("!! ") {
                3
            } else {
                2
            },
        );
        let mut cur = body[..lead].to_string();
        let mut fresh = true;
        for word in body.trim_start().split(' ') {
            if !fresh && cur.chars().count() + 1 + word.chars().count() > width {
                out.push_str(&cur);
                out.push('\n');
                cur = indent.clone();
            } else if !fresh {
                cur.push(' ');
            }
            cur.push_str(word);
            fresh = false;
        }
        out.push_str(&cur);
        out.push_str(nl);
    }
    out
}

/// Items joined by `sep` after `prefix`, as many to a line as fit `width`; the further
/// lines indented by two.
pub fn join_wrapped(prefix: &str, items: &[String], sep: &str, width: usize) -> String {
    let mut out = String::new();
    let mut cur = prefix.to_string();
    for (i, it) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() {
            format!("{it}{}", sep.trim_end())
        } else {
            it.clone()
        };
        let fresh = cur.trim().is_empty() || (i == 0 && cur == prefix);
        if !fresh && cur.chars().count() + 1 + piece.chars().count() > width {
            out.push_str(&cur);
            out.push('\n');
            cur = format!("  {piece}");
        } else {
            if !cur.is_empty() && !cur.ends_with(' ') {
                cur.push(' ');
            }
            cur.push_str(&piece);
        }
    }
    out.push_str(&cur);
    out.push('\n');
    out
}

fn render_with(reports: &[Report], layers: bool, wide: bool) -> String {
    let mut s = String::new();
    for r in reports {
        let mut head = String::new();
        let line = format!(
            "{} under {} | wire: {} | bits: {} | ReLU: {} | {}",
            r.network,
            r.protocol,
            r.wire,
            r.bits,
            r.relu,
            batch_text(r)
        );
        if !wide && line.chars().count() > COLUMNS {
            // Within a terminal: the settings go on lines of their own.
            let (first, rest) = line.split_once(" | ").unwrap_or((&line, ""));
            let _ = writeln!(head, "{first}");
            if rest.chars().count() + 2 <= COLUMNS {
                let _ = writeln!(head, "  {rest}");
            } else {
                for p in rest.split(" | ") {
                    let _ = writeln!(head, "  {p}");
                }
            }
        } else {
            let _ = writeln!(head, "{line}");
        }
        if let Some(c) = &r.cheetah_code {
            let _ = writeln!(head, "models: {c}");
        }
        if r.accumulator.starts_with("the weights") {
            let _ = writeln!(head, "accumulator bound: {}", r.accumulator);
        }
        if r.insecure {
            let _ = writeln!(
                head,
                "!! INSECURE: parameters below 128-bit security accepted with --allow-insecure"
            );
        }
        for w in other_warnings(r) {
            let _ = writeln!(head, "!! {w}");
        }
        let mut tail = String::new();
        if layers {
            if wide {
                head.push_str(&aligned(&layer_table(r)));
            } else {
                s.push_str(&wrap(&head, COLUMNS));
                head.clear();
                let mut notes = Footnotes::default();
                s.push_str(&aligned_left(&narrow_layer_table(r, &mut notes), 4));
                tail.push_str(&notes.render());
            }
            tail.push_str(&schemes_text(r));
        }
        let _ = writeln!(tail, "{}\n", totals_text(r));
        if wide {
            s.push_str(&head);
            s.push_str(&tail);
        } else {
            s.push_str(&wrap(&head, COLUMNS));
            s.push_str(&wrap(&tail, COLUMNS));
        }
    }
    if reports.len() > 1 {
        s.push_str(&compare_text(reports));
    }
    s
}

/// A linear layer's mapping in one cell: `N tiling`, then the packing when packed.
pub fn short_mapping(m: Option<crate::mapping::LinearMapping>) -> String {
    m.map_or("-".into(), |m| {
        if m.packing.is_packed() {
            format!("{} {} {}", m.n, m.tiling, m.packing)
        } else {
            format!("{} {}", m.n, m.tiling)
        }
    })
}

/// The per-layer table within [`COLUMNS`]: layer, kind, bits, the mapping in short
/// (`N tiling packing`), bytes each way and latency; a free layer's note is a footnote
/// and long names are cut ([`fit`]). `--wide` ([`layer_table`]) has every column.
pub fn narrow_layer_table(r: &Report, notes: &mut Footnotes) -> Table {
    let header = [
        "layer",
        "kind",
        "bits",
        "mapping",
        "bytes c>s",
        "bytes s>c",
        "latency",
    ]
    .map(String::from)
    .to_vec();
    let rows = r
        .layers
        .iter()
        .filter(|l| l.class != CostClass::Free || !l.note.is_empty())
        .map(|l| {
            vec![
                l.name.clone(),
                l.kind.clone(),
                l.bits.map_or("-".into(), |b| b.to_string()),
                short_mapping(l.mapping),
                human_bytes(l.bytes_client_to_server),
                human_bytes(l.bytes_server_to_client),
                if l.class == CostClass::Free {
                    notes.mark(&l.note)
                } else {
                    human_seconds(l.latency_s)
                },
            ]
        })
        .collect();
    let mut t = Table { header, rows };
    fit(
        &mut t,
        &[
            (1, Shrink::End(10)),
            (0, Shrink::Middle(12)),
            (3, Shrink::End(16)),
        ],
        COLUMNS,
    );
    t
}
