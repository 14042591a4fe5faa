//! Drawing: borrows the state, never changes it.

use super::app::{App, Pane, SortColumn};
use super::chart::{CHART_BITS, ChartScope};
use super::keymap::{KEYMAP, key_labels};
use crate::mapper::describe;
use crate::model::report::{LayerReport, PAPER_WARNING};
use crate::protocol::Protocol;
use crate::units::{human_bytes, human_seconds};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};

/// The smallest terminal the explorer draws on.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// From this width on, the totals, the chart and the detail pane stand side by side.
const WIDE: u16 = 150;

/// Where each part of the screen goes.
struct Areas {
    header: Rect,
    body: Rect,
    status: Rect,
    table: Rect,
    totals: Rect,
    /// The chart; `None` when it shares the lower pane with the detail and is hidden.
    chart: Option<Rect>,
    detail: Option<Rect>,
}

/// The layout of a screen, or `None` when it is too small.
fn areas(area: Rect, pane: Pane) -> Option<Areas> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let [header, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    Some(if area.width >= WIDE {
        let [table, right] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(58)]).areas(body);
        let [totals, chart, detail] = Layout::vertical([
            Constraint::Length(9),
            Constraint::Percentage(40),
            Constraint::Min(0),
        ])
        .areas(right);
        Areas {
            header,
            body,
            status,
            table,
            totals,
            chart: Some(chart),
            detail: Some(detail),
        }
    } else {
        let [table, bottom] =
            Layout::vertical([Constraint::Min(8), Constraint::Percentage(45)]).areas(body);
        let [totals, lower] =
            Layout::horizontal([Constraint::Length(31), Constraint::Min(0)]).areas(bottom);
        Areas {
            header,
            body,
            status,
            table,
            totals,
            chart: (pane == Pane::Chart).then_some(lower),
            detail: (pane == Pane::Detail).then_some(lower),
        }
    })
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let Some(a) = areas(area, app.pane) else {
        let msg = format!(
            "terminal too small: {}x{}, need at least {MIN_WIDTH}x{MIN_HEIGHT} (q quits)",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    };
    draw_header(f, app, a.header);
    draw_status(f, app, a.status);
    draw_table(f, app, a.table);
    draw_totals(f, app, a.totals);
    if let Some(r) = a.chart {
        draw_chart(f, app, r);
    }
    if let Some(r) = a.detail {
        draw_detail(f, app, r);
    }
    if app.show_help {
        draw_help(f, a.body);
    }
}

/// The first row the table shows: the selection kept near the middle.
fn table_offset(app: &App, visible: usize) -> usize {
    app.selected
        .saturating_sub(visible / 2)
        .min(app.rows.len().saturating_sub(visible))
}

/// The table row (a position in `app.rows`) drawn at a screen cell, for mouse clicks.
pub fn row_at(app: &App, screen: Rect, column: u16, row: u16) -> Option<usize> {
    let a = areas(screen, app.pane)?;
    let inner = Block::bordered().inner(a.table);
    // The first line of the table is its header.
    let first = inner.y + 1;
    if app.show_help
        || column < inner.x
        || column >= inner.x + inner.width
        || row < first
        || row >= inner.y + inner.height
    {
        return None;
    }
    let visible = inner.height.saturating_sub(1) as usize;
    let pos = table_offset(app, visible) + (row - first) as usize;
    (pos < app.rows.len()).then_some(pos)
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let r = &app.report;
    let mut spans = vec![
        Span::styled(" hequant ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "{} | {} | {} | objective {} | sort {}",
            r.network,
            r.protocol,
            r.link.name,
            app.opts.objective.name(),
            app.sort.name()
        )),
    ];
    if r.insecure {
        spans.push(Span::styled(" INSECURE", Style::new().fg(Color::Red)));
    }
    if r.warnings.iter().any(|w| w == PAPER_WARNING) {
        spans.push(Span::styled(
            format!(" !! {PAPER_WARNING}"),
            Style::new().fg(Color::Red),
        ));
    }
    f.render_widget(Line::from(spans), area);
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    let style = if app.status.error {
        Style::new().fg(Color::Red)
    } else {
        Style::new().fg(Color::Green)
    };
    let undo = app.undo_depth();
    let line = Line::from(vec![
        Span::styled(format!(" {}", app.status.text), style),
        Span::raw(if undo > 0 {
            format!("  (u undoes {undo})")
        } else {
            String::new()
        }),
    ]);
    f.render_widget(line, area);
}

/// A table column: its header, width, the priority with which it is kept on a narrow
/// screen (lower is kept first), whether it is right-aligned, and its cell.
struct Column {
    header: &'static str,
    width: u16,
    priority: u8,
    right: bool,
    sort: Option<SortColumn>,
    cell: fn(&LayerReport, u64) -> String,
}

fn dash() -> String {
    "-".into()
}

const COLUMNS: &[Column] = &[
    Column {
        header: "layer",
        width: 18,
        priority: 0,
        right: false,
        sort: None,
        cell: |l, _| l.name.clone(),
    },
    Column {
        header: "kind",
        width: 10,
        priority: 9,
        right: false,
        sort: None,
        cell: |l, _| l.kind.clone(),
    },
    Column {
        header: "shape",
        width: 24,
        priority: 12,
        right: false,
        sort: None,
        cell: |l, _| l.shape.clone(),
    },
    Column {
        header: "bits",
        width: 6,
        priority: 1,
        right: false,
        sort: None,
        cell: |l, _| l.bits.map_or_else(dash, |b| b.to_string()),
    },
    Column {
        header: "pack",
        width: 10,
        priority: 8,
        right: false,
        sort: None,
        cell: |l, _| l.mapping.map_or_else(dash, |m| m.packing.to_string()),
    },
    Column {
        header: "tiling",
        width: 13,
        priority: 6,
        right: false,
        sort: None,
        cell: |l, _| l.mapping.map_or_else(dash, |m| m.tiling.to_string()),
    },
    Column {
        header: "N",
        width: 5,
        priority: 10,
        right: true,
        sort: None,
        cell: |l, _| l.mapping.map_or_else(dash, |m| m.n.to_string()),
    },
    Column {
        header: "logq",
        width: 4,
        priority: 11,
        right: true,
        sort: None,
        cell: |l, _| l.he.map_or_else(dash, |h| h.log_q.to_string()),
    },
    Column {
        header: "c>s",
        width: 9,
        priority: 2,
        right: true,
        sort: Some(SortColumn::ClientToServer),
        cell: |l, _| human_bytes(l.bytes_client_to_server),
    },
    Column {
        header: "s>c",
        width: 9,
        priority: 3,
        right: true,
        sort: Some(SortColumn::ServerToClient),
        cell: |l, _| human_bytes(l.bytes_server_to_client),
    },
    Column {
        header: "non-lin",
        width: 9,
        priority: 7,
        right: true,
        sort: Some(SortColumn::NonLinear),
        cell: |l, _| human_bytes(l.bytes_nonlinear),
    },
    Column {
        header: "latency",
        width: 9,
        priority: 5,
        right: true,
        sort: Some(SortColumn::Latency),
        cell: |l, _| human_seconds(l.latency_s),
    },
    Column {
        header: "share",
        width: 6,
        priority: 4,
        right: true,
        sort: Some(SortColumn::Bytes),
        cell: |l, total| {
            if total == 0 {
                dash()
            } else {
                format!("{:.1}%", l.bytes() as f64 * 100.0 / total as f64)
            }
        },
    },
];

/// The columns that fit in `width`, in display order.
fn fitting_columns(width: u16) -> Vec<&'static Column> {
    let mut by_priority: Vec<&Column> = COLUMNS.iter().collect();
    by_priority.sort_by_key(|c| c.priority);
    let mut used = 0u16;
    let mut keep = Vec::new();
    for c in by_priority {
        if used + c.width < width {
            used += c.width + 1;
            keep.push(c.header);
        }
    }
    COLUMNS
        .iter()
        .filter(|c| keep.contains(&c.header))
        .collect()
}

fn draw_table(f: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(format!(" layers ({} with a cost) ", app.rows.len()));
    let inner = block.inner(area);
    let cols = fitting_columns(inner.width.saturating_sub(2));
    let total = app.report.total.bytes();
    let header = Row::new(cols.iter().map(|c| {
        let mut s = c.header.to_string();
        if c.sort.is_some() && c.sort == Some(app.sort) {
            s.push('v');
        }
        Cell::from(if c.right {
            Line::from(s).right_aligned()
        } else {
            Line::from(s)
        })
    }))
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.rows.iter().map(|&i| {
        let l = &app.report.layers[i];
        let pinned = app
            .opts
            .overrides
            .get(&l.name)
            .is_some_and(|c| c.linear.is_some());
        Row::new(cols.iter().map(|c| {
            let mut s = (c.cell)(l, total);
            if c.header == "tiling" && pinned {
                s.push('*');
            }
            Cell::from(if c.right {
                Line::from(s).right_aligned()
            } else {
                Line::from(s)
            })
        }))
    });
    // The layer name takes what the other columns leave.
    let widths = cols.iter().map(|c| {
        if c.header == "layer" {
            Constraint::Min(c.width)
        } else {
            Constraint::Length(c.width)
        }
    });
    let visible = inner.height.saturating_sub(1) as usize;
    let offset = table_offset(app, visible);
    let mut state = TableState::default()
        .with_offset(offset)
        .with_selected(Some(app.selected));
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_totals(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.report.total;
    let mut lines = vec![
        Line::from(format!(
            "total {}, {} rounds",
            human_bytes(t.bytes()),
            t.rounds
        )),
        Line::from(format!(
            "c>s {}  s>c {}",
            human_bytes(t.bytes_client_to_server),
            human_bytes(t.bytes_server_to_client)
        )),
        Line::from(format!(
            "HE {}  OT {}",
            human_bytes(t.bytes_linear),
            human_bytes(t.bytes_nonlinear)
        )),
        Line::from(format!(
            "latency {} on {}",
            human_seconds(t.latency_s),
            app.report.link.name
        )),
        Line::from(if app.chart_job.is_some() {
            "reduction      (updating)"
        } else {
            "reduction      comm    time"
        }),
    ];
    for (p, b) in &app.chart.baselines {
        lines.push(Line::from(match b {
            Ok(bt) if t.bytes() > 0 && t.latency_s > 0.0 => format!(
                "{:<11} {:>6.2}x {:>6.2}x",
                p.name(),
                bt.bytes() as f64 / t.bytes() as f64,
                bt.latency_s / t.latency_s
            ),
            Ok(_) => format!("{:<11} -", p.name()),
            Err(_) => format!("{:<11} not evaluable", p.name()),
        }));
    }
    for w in &app.report.warnings {
        lines.push(Line::styled(w.clone(), Style::new().fg(Color::Red)));
    }
    let p = Paragraph::new(lines)
        .block(Block::bordered().title(" totals "))
        .wrap(Wrap { trim: true });
    f.render_widget(p, area);
}

fn protocol_color(p: Protocol) -> Color {
    match p {
        Protocol::Cheetah => Color::Yellow,
        Protocol::Cryptflow2 => Color::Magenta,
        Protocol::HequantNaive => Color::Blue,
        Protocol::HequantPacked => Color::Cyan,
        Protocol::Hequant => Color::Green,
    }
}

fn short_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Cheetah => "cheetah",
        Protocol::Cryptflow2 => "cf2",
        Protocol::HequantNaive => "naive",
        Protocol::HequantPacked => "packed",
        Protocol::Hequant => "hequant",
    }
}

fn draw_chart(f: &mut Frame, app: &App, area: Rect) {
    let log = |v: f64| v.max(1.0).log10();
    let (data, job, title, current) = match app.chart_scope {
        ChartScope::Pareto => return draw_pareto(f, app, area),
        ChartScope::Network => (
            Some(&app.chart),
            app.chart_job.as_ref(),
            " total comm vs uniform bits (log) ".to_string(),
            app.mean_weight_bits()
                .map(|b| (b, app.report.total.bytes() as f64)),
        ),
        ChartScope::Layer => {
            let Some(key) = app.layer_chart_key() else {
                let p = Paragraph::new("select a conv or linear layer (v: network chart)")
                    .block(Block::bordered().title(" layer chart "))
                    .wrap(Wrap { trim: true });
                f.render_widget(p, area);
                return;
            };
            let l = app.selected_layer();
            (
                app.layer_chart.as_ref().filter(|c| c.key == key),
                app.layer_job.as_ref(),
                format!(
                    " {} comm vs its bits (log) ",
                    l.map_or("", |l| l.name.as_str())
                ),
                l.and_then(|l| l.bits.map(|b| (b.w.get() as f64, l.bytes() as f64))),
            )
        }
    };
    let title = match job {
        Some(j) => format!(" updating {}/{} (z stops){title}", j.done, j.total),
        None => title,
    };
    let Some(data) = data else {
        f.render_widget(Block::bordered().title(title), area);
        return;
    };
    let series: Vec<(Protocol, Vec<(f64, f64)>)> = data
        .series
        .iter()
        .map(|(p, pts)| (*p, pts.iter().map(|&(x, y)| (x, log(y))).collect()))
        .collect();
    let current: Vec<(f64, f64)> = current.map(|(x, y)| (x, log(y))).into_iter().collect();
    let ys = series
        .iter()
        .flat_map(|s| s.1.iter().map(|p| p.1))
        .chain(current.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let (lo, hi) = if lo.is_finite() {
        (
            ((lo - 0.05) * 2.0).floor() / 2.0,
            ((hi + 0.05) * 2.0).ceil() / 2.0,
        )
    } else {
        (0.0, 1.0)
    };
    let mut datasets: Vec<Dataset> = series
        .iter()
        .filter(|s| !s.1.is_empty())
        .map(|(p, pts)| {
            Dataset::default()
                .name(p.name())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(protocol_color(*p)))
                .data(pts)
        })
        .collect();
    if !current.is_empty() {
        datasets.push(
            Dataset::default()
                .name(format!("now: {}", app.report.protocol))
                .marker(Marker::Custom('#'))
                .graph_type(GraphType::Scatter)
                .style(Style::new().fg(Color::White).add_modifier(Modifier::BOLD))
                .data(&current),
        );
    }
    let ylabels: Vec<Span> = [lo, (lo + hi) / 2.0, hi]
        .iter()
        .map(|&y| Span::raw(human_bytes(10f64.powf(y).round() as u64)))
        .collect();
    let mut legend: Vec<Span> = series
        .iter()
        .filter(|s| !s.1.is_empty())
        .map(|(p, _)| {
            Span::styled(
                format!(" {} ", short_name(*p)),
                Style::new().fg(protocol_color(*p)),
            )
        })
        .collect();
    if !current.is_empty() {
        legend.push(Span::raw(" # now "));
    }
    let (x0, x1) = (*CHART_BITS.start() as f64, *CHART_BITS.end() as f64);
    let chart = Chart::new(datasets)
        .block(
            Block::bordered()
                .title(title)
                .title_bottom(Line::from(legend)),
        )
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels(["2", "9", "16"].map(Span::raw)),
        )
        .y_axis(Axis::default().bounds([lo, hi]).labels(ylabels))
        .legend_position(None);
    f.render_widget(chart, area);
}

/// The selected layer's search: bytes (log) against latency for every feasible candidate,
/// the Pareto front, and the current mapping.
fn draw_pareto(f: &mut Frame, app: &App, area: Rect) {
    let (Some(d), Some(l)) = (app.detail.as_ref(), app.selected_layer()) else {
        let p = Paragraph::new("select a layer with an HE mapping (v: network chart)")
            .block(Block::bordered().title(" search front "))
            .wrap(Wrap { trim: true });
        f.render_widget(p, area);
        return;
    };
    let pt = |&(b, t): &(u64, f64)| ((b.max(1) as f64).log10(), t * 1e3);
    let cloud: Vec<(f64, f64)> = d.cloud.iter().map(pt).collect();
    let front: Vec<(f64, f64)> = d.front.iter().map(pt).collect();
    let current = [pt(&d.current)];
    let (x0, x1, y1) = cloud
        .iter()
        .chain(&current)
        .fold((f64::INFINITY, f64::NEG_INFINITY, 0f64), |(a, b, c), p| {
            (a.min(p.0), b.max(p.0), c.max(p.1))
        });
    let (x0, x1) = (x0 - 0.02, x1 + 0.02);
    let y1 = if y1 > 0.0 { y1 * 1.05 } else { 1.0 };
    let datasets = vec![
        Dataset::default()
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::DarkGray))
            .data(&cloud),
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Green))
            .data(&front),
        Dataset::default()
            .marker(Marker::Custom('#'))
            .graph_type(GraphType::Scatter)
            .style(Style::new().fg(Color::White).add_modifier(Modifier::BOLD))
            .data(&current),
    ];
    let bytes = |x: f64| Span::raw(human_bytes(10f64.powf(x).round() as u64));
    let ms = |y: f64| Span::raw(human_seconds(y / 1e3));
    let chart = Chart::new(datasets)
        .block(
            Block::bordered()
                .title(format!(
                    " {}: {} candidates, bytes (log) vs latency ",
                    l.name, d.feasible
                ))
                .title_bottom(Line::from(vec![
                    Span::styled(" • feasible ", Style::new().fg(Color::DarkGray)),
                    Span::styled(" Pareto front ", Style::new().fg(Color::Green)),
                    Span::raw(" # now "),
                ])),
        )
        .x_axis(Axis::default().bounds([x0, x1]).labels([
            bytes(x0),
            bytes((x0 + x1) / 2.0),
            bytes(x1),
        ]))
        .y_axis(
            Axis::default()
                .bounds([0.0, y1])
                .labels([ms(0.0), ms(y1 / 2.0), ms(y1)]),
        )
        .legend_position(None);
    f.render_widget(chart, area);
}

fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let Some(l) = app.selected_layer() else {
        f.render_widget(Block::bordered().title(" detail "), area);
        return;
    };
    let mut lines = vec![Line::from(format!(
        "{} {}  {}",
        l.kind,
        l.shape,
        l.bits.map_or_else(String::new, |b| b.to_string())
    ))];
    lines.push(Line::from(format!(
        "ring in {} out {} bits, {} rounds, {} + {}",
        l.ring_bits_in,
        l.ring_bits_out,
        l.rounds,
        human_bytes(l.bytes_client_to_server),
        human_bytes(l.bytes_server_to_client)
    )));
    match (l.mapping, l.he) {
        (Some(m), Some(h)) => {
            let how = match &app.detail {
                Some(d) if d.pinned => "manual",
                _ => "search",
            };
            lines.push(Line::from(format!("mapping {} ({how})", describe(&m))));
            lines.push(Line::from(format!(
                "log q {}  log t {}  slot {} bits  headroom {:.1} bits",
                h.log_q, h.log_t, h.slot_bits, h.headroom_bits
            )));
            lines.push(Line::from(format!(
                "ct {} in / {} out, {} tiles, noise 2^{:.1}",
                h.ct_in, h.ct_out, h.tiles, h.noise_log2
            )));
        }
        _ => {
            if !l.note.is_empty() {
                lines.push(Line::from(l.note.clone()));
            }
        }
    }
    if let Some(used) = l.scheme_used() {
        // One line per slot scheme: the choice, then each other's best or its binding.
        let width = area.width.saturating_sub(2) as usize;
        let cut = |t: String| -> String {
            if t.chars().count() > width {
                let mut s: String = t.chars().take(width.saturating_sub(1)).collect();
                s.push('~');
                s
            } else {
                t
            }
        };
        let chosen =
            l.he.map_or_else(|| "-".into(), |h| human_bytes(h.total_bytes()));
        lines.push(Line::from(cut(format!(
            "slot scheme {used} ({chosen}); the others:"
        ))));
        for w in l.why_lost() {
            lines.push(Line::from(cut(format!(" {:<8} {}", w.scheme, w.text))));
        }
    }
    if let Some(d) = app.detail.as_ref() {
        let why: Vec<String> = d
            .infeasible
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        lines.push(Line::from(format!(
            "{} candidates, {} feasible{}{}",
            d.evaluated,
            d.feasible,
            if why.is_empty() { "" } else { "; infeasible: " },
            why.join(", ")
        )));
        lines.push(Line::styled(
            format!("best by {} (a pins the next):", app.opts.objective.name()),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        for (i, (m, c, lat)) in d.alternatives.iter().enumerate() {
            let mark = if Some(*m) == l.mapping { ">" } else { " " };
            lines.push(Line::from(format!(
                "{mark}{} {:<30} {:>9} {:>9}",
                i + 1,
                describe(m),
                human_bytes(c.total_bytes()),
                human_seconds(*lat)
            )));
        }
        for (k, e) in &d.examples {
            lines.push(Line::styled(
                format!("{k}: {e}"),
                Style::new().fg(Color::DarkGray),
            ));
        }
    }
    let p = Paragraph::new(lines)
        .block(Block::bordered().title(format!(" {} ", l.name)))
        .wrap(Wrap { trim: false });
    f.render_widget(p, area);
}

/// The help overlay, generated from the keymap table.
fn draw_help(f: &mut Frame, area: Rect) {
    let inner_h = area.height.saturating_sub(2) as usize;
    let per_col = if KEYMAP.len() <= inner_h {
        KEYMAP.len()
    } else {
        KEYMAP.len().div_ceil(2)
    };
    let ncols = KEYMAP.len().div_ceil(per_col.max(1));
    let width = (ncols as u16 * 40 + 2).min(area.width);
    let height = (per_col as u16 + 2).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    f.render_widget(Clear, rect);
    let block = Block::bordered().title(" keys (any key closes) ");
    let inner = block.inner(rect);
    f.render_widget(block, rect);
    let cols = Layout::horizontal(vec![Constraint::Ratio(1, ncols as u32); ncols]).split(inner);
    for (chunk, col) in KEYMAP.chunks(per_col.max(1)).zip(cols.iter()) {
        let rows = chunk.iter().map(|b| {
            Row::new([
                Cell::from(key_labels(b)).style(Style::new().add_modifier(Modifier::BOLD)),
                Cell::from(b.help),
            ])
        });
        let t = Table::new(rows, [Constraint::Length(10), Constraint::Min(0)]);
        f.render_widget(t, *col);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
    use crate::model::linear::LinearCost;
    use crate::model::report::{PerImage, SchemeOutcome, Totals};
    use crate::model::{EvalOptions, parse_bits};
    use crate::protocol::CostModel;
    use crate::tui::action::Action;
    use crate::tui::app::{ALTERNATIVES, Detail, pareto_front};
    use crate::tui::chart::ChartData;
    use crate::units::{Bits, BitsPerSecond, RingDegree};
    use crate::workload::{BitWidths, CostClass, LayerKind};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use std::collections::BTreeMap;

    fn app() -> App {
        app_for(Protocol::Hequant, CostModel::builtin().unwrap(), |_| {})
    }

    /// resnet18-cifar100 at w4a4 under `protocol`, with `tweak` applied to the options.
    fn app_for(protocol: Protocol, cm: CostModel, tweak: impl FnOnce(&mut EvalOptions)) -> App {
        let net = crate::cli::load_network("resnet18-cifar100").unwrap();
        let mut o = EvalOptions::new(protocol, &cm);
        o.bits.uniform = Some(parse_bits("w4a4").unwrap());
        tweak(&mut o);
        App::new(net, cm, "resnet18-cifar100", o).unwrap()
    }

    fn render(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, app)).unwrap();
        t
    }

    fn screen(app: &App, w: u16, h: u16) -> String {
        render(app, w, h).backend().to_string()
    }

    // The synthetic report of the snapshots: every number the screen shows, made up from
    // the layer's index (and, for the charts, the protocol's position and the bit width)
    // by the formulas below, so that no model output reaches a snapshot.

    /// A layer's cost class from its kind alone: weighted layers run under HE, batch
    /// norms are folded into the conv before them, additions extend rings (OT) and the
    /// other kinds are what the workload says.
    fn synthetic_class(kind: &LayerKind) -> CostClass {
        match kind {
            k if k.has_weights() => CostClass::Linear,
            LayerKind::BatchNorm => CostClass::Free,
            LayerKind::Add => CostClass::NonLinear,
            k => k.cost_class(),
        }
    }

    /// Alternative `j` of layer `i`'s mapping (`j = 0` is the layer's own).
    fn synthetic_mapping(i: usize, j: usize) -> LinearMapping {
        let (i, j) = (i as u64, j as u64);
        let packing = match (i + j) % 3 {
            0 => Packing::new(
                PackDirection::Spatial,
                2 + (i % 3) as u32,
                SlotScheme::Client,
            ),
            1 => Packing::NONE,
            _ => Packing::new(PackDirection::OutputChannel, 2, SlotScheme::Exact),
        };
        LinearMapping {
            n: RingDegree::try_new(if (i + j) % 2 == 0 { 4096 } else { 2048 }).unwrap(),
            tiling: Tiling {
                c_w: 1 + i % 4,
                h_w: 4 + i % 9 + j,
                w_w: 4 + i % 9,
                m_w: 1 << (i % 4),
            },
            packing,
        }
    }

    /// Layer `i`'s HE cost, sending `bytes_in` and `bytes_out`.
    fn synthetic_cost(i: usize, bytes_in: u64, bytes_out: u64, packed: bool) -> LinearCost {
        let k = i as u64 + 1;
        LinearCost {
            ct_in: k,
            ct_out: 2 * k,
            bytes_in,
            bytes_out,
            products: 100 * k,
            weight_polys: 10 * k,
            log_q: 60 + (i % 20) as u32,
            log_t: 20 + (i % 10) as u32,
            slot_bits: if packed { 18 + (i % 5) as u32 } else { 0 },
            c1_bits: 30,
            c0_bits: 20,
            kept: 64 * k,
            noise_log2: 10.0 + i as f64 / 4.0,
            headroom_bits: 1.5 + (i % 4) as f64 / 2.0,
            tiles: 1 + k % 3,
            insecure: false,
            ntt_primes: 2,
            ntt_prime_bits: 50,
            runs: 1,
            conversion_bytes: 0,
            conversion_rounds: 0,
        }
    }

    /// Every slot scheme's outcome on a layer whose choice sends `chosen` bytes: the
    /// three bit-slot ones feasible at (11 + j) / 10 of it, CRT infeasible.
    fn synthetic_schemes(chosen: u64) -> Vec<SchemeOutcome> {
        ["unpacked", "exact", "client", "crt"]
            .iter()
            .enumerate()
            .map(|(j, s)| {
                let crt = *s == "crt";
                let j = j as u64;
                SchemeOutcome {
                    scheme: s.to_string(),
                    evaluated: 10 * (j + 1),
                    feasible: if crt { 0 } else { 5 * (j + 1) },
                    best_bytes: (!crt).then_some(chosen * (11 + j) / 10),
                    best: (!crt).then(|| format!("synthetic candidate {j}")),
                    binding: crt.then(|| "synthetic binding".to_string()),
                    reason: crt.then(|| "synthetic reason".to_string()),
                }
            })
            .collect()
    }

    /// A chart: protocol `p` (position `j`) at `b` bits sends `scale * (j + 1) * (b + 2)`
    /// bytes, a fixed-point protocol `scale * 40 * (j + 1)` at every width; the baselines
    /// send (j + 1) * 100 MB and take (j + 1) * 10 s.
    fn synthetic_chart(c: &mut ChartData, scale: f64) {
        c.series = Protocol::ALL
            .iter()
            .enumerate()
            .map(|(j, &p)| {
                let j = (j + 1) as f64;
                let pts = if p.is_quantized() {
                    CHART_BITS
                        .map(|b| (b as f64, scale * j * (b + 2) as f64))
                        .collect()
                } else {
                    vec![
                        (*CHART_BITS.start() as f64, scale * 40.0 * j),
                        (*CHART_BITS.end() as f64, scale * 40.0 * j),
                    ]
                };
                (p, pts)
            })
            .collect();
        c.baselines = Protocol::ALL
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.is_quantized())
            .map(|(j, &p)| {
                let j = j as u64 + 1;
                let t = Totals {
                    bytes_client_to_server: j * 40_000_000,
                    bytes_server_to_client: j * 60_000_000,
                    rounds: 100 * j as u32,
                    latency_s: 10.0 * j as f64,
                    ..Default::default()
                };
                (p, Ok(t))
            })
            .collect();
    }

    /// The selected layer's search, when it has an HE mapping: 30 + 2k feasible
    /// candidates of 36 + 8k (k = index + 1), its own mapping first.
    fn synthetic_detail(a: &App) -> Option<Detail> {
        let idx = a.rows.get(a.selected).copied()?;
        let l = &a.report.layers[idx];
        let (m, he) = (l.mapping?, l.he?);
        let k = idx as u64 + 1;
        let feasible = 30 + 2 * k;
        let infeasible =
            BTreeMap::from([("security", 3 * k), ("slot packing", 2 * k), ("tiling", k)]);
        let examples = BTreeMap::from([("tiling", format!("synthetic example of layer {idx}"))]);
        let alternatives = (0..ALTERNATIVES)
            .map(|j| {
                let grow = |b: u64| b * (10 + j as u64) / 10;
                let mj = synthetic_mapping(idx, j);
                let cj = synthetic_cost(
                    idx,
                    grow(he.bytes_in),
                    grow(he.bytes_out),
                    mj.packing.is_packed(),
                );
                (mj, cj, l.latency_s * (1.0 + j as f64 / 4.0))
            })
            .collect();
        // The current mapping, then candidates with more bytes and latencies around it.
        let tb = he.total_bytes();
        let current = (tb, l.latency_s);
        let cloud: Vec<(u64, f64)> = std::iter::once(current)
            .chain((1..feasible).map(|p| {
                (
                    tb + tb * (1 + (p * 7) % 23) / 10,
                    l.latency_s * (0.2 + ((p * 5) % 17) as f64 / 8.0),
                )
            }))
            .collect();
        Some(Detail {
            layer: idx,
            evaluated: feasible + 6 * k,
            feasible,
            infeasible,
            examples,
            best: Some((m, he)),
            alternatives,
            front: pareto_front(&cloud),
            cloud,
            current,
            pinned: a
                .opts
                .overrides
                .get(&l.name)
                .is_some_and(|c| c.linear.is_some()),
        })
    }

    /// Replaces every number the screen shows with the synthetic ones above: each layer's
    /// costs, rings, bits, mapping, HE figures, note and slot schemes, the totals, the
    /// report's protocol name, warnings and insecure flag, both charts and the detail pane's
    /// search; the rows are rebuilt from the synthetic classes (and sorted by the synthetic
    /// costs). The state the actions built (selection, sort, pane, scope, help, overrides,
    /// status, undo) stays.
    fn synthetic(a: &mut App) {
        let net = a.net.clone();
        for (i, (l, nl)) in a.report.layers.iter_mut().zip(&net.layers).enumerate() {
            let k = i as u64 + 1;
            let class = synthetic_class(&nl.kind);
            let costs = class != CostClass::Free;
            let (c2s, s2c) = if costs {
                (k * 10_000 + 500, k * 20_000)
            } else {
                (0, 0)
            };
            l.class = class;
            l.bits = nl.kind.has_weights().then(|| BitWidths {
                w: Bits::try_new(2 + (i % 7) as i64).unwrap(),
                a: Bits::try_new(3 + (i % 6) as i64).unwrap(),
            });
            l.ring_bits_in = 16 + (i % 8) as u32;
            l.ring_bits_out = 16 + ((i + 3) % 8) as u32;
            l.bytes_client_to_server = c2s;
            l.bytes_server_to_client = s2c;
            let linear = class == CostClass::Linear;
            l.bytes_linear = if linear { c2s + s2c } else { 0 };
            l.bytes_nonlinear = if class == CostClass::NonLinear {
                c2s + s2c
            } else {
                0
            };
            l.bytes_truncation = 0;
            l.ct_client_to_server = if linear { k } else { 0 };
            l.ct_server_to_client = if linear { 2 * k } else { 0 };
            l.rounds = if costs { 1 + (i % 4) as u32 } else { 0 };
            l.compute_s = if costs { k as f64 * 1e-3 } else { 0.0 };
            l.latency_s = if costs { k as f64 * 2.5e-3 } else { 0.0 };
            l.mapping = linear.then(|| synthetic_mapping(i, 0));
            l.he = l
                .mapping
                .map(|m| synthetic_cost(i, c2s, s2c, m.packing.is_packed()));
            l.note = format!("synthetic note of layer {i}");
            l.schemes = if linear {
                synthetic_schemes(c2s + s2c)
            } else {
                Vec::new()
            };
            l.seal_zstd = None;
        }
        let r = &mut a.report;
        let mut t = Totals::default();
        for l in &r.layers {
            t.add(l);
        }
        r.per_image = PerImage::of(&t, 1);
        r.total = t;
        r.batch = 1;
        r.protocol = "hequant".into();
        r.insecure = false;
        r.warnings.clear();
        // The rows as the app orders them, on the synthetic costs.
        let rows = a.ordered_rows();
        a.selected = a.selected.min(rows.len().saturating_sub(1));
        a.rows = rows;
        synthetic_chart(&mut a.chart, 1e6);
        if let Some(c) = a.layer_chart.as_mut() {
            synthetic_chart(c, 1e4);
        }
        a.detail = synthetic_detail(a);
    }

    /// The whole-screen snapshots: name (the test's), the actions applied to a new app,
    /// and the screen size.
    const SCREENS: &[(&str, &[Action], u16, u16)] = &[
        ("main_screen_80x24", &[Action::Down], 80, 24),
        ("main_screen_160x50", &[], 160, 50),
        ("chart_pane_120x40", &[Action::TogglePane], 120, 40),
        (
            "layer_chart_120x40",
            &[
                Action::Down,
                Action::Down,
                Action::TogglePane,
                Action::ChartScope,
            ],
            120,
            40,
        ),
        (
            "pareto_120x40",
            &[Action::TogglePane, Action::ChartScope, Action::ChartScope],
            120,
            40,
        ),
        ("help_overlay", &[Action::Help], 80, 24),
    ];

    /// Screen `name` of [`SCREENS`] drawn from `a`: its actions applied, then the
    /// synthetic report put in.
    fn shot(mut a: App, name: &str) -> String {
        let &(_, actions, w, h) = SCREENS.iter().find(|s| s.0 == name).unwrap();
        for &x in actions {
            a.update(x);
        }
        synthetic(&mut a);
        screen(&a, w, h)
    }

    // Whole-screen snapshots on the synthetic report above (the app, its actions and panes
    // are the real ones; every number drawn is made up): they pin the layout only, and a
    // change of the model's numbers cannot change them (the model's numbers have golden
    // tests of their own).
    #[test]
    fn main_screen_80x24() {
        insta::assert_snapshot!(shot(app(), "main_screen_80x24"));
    }

    #[test]
    fn main_screen_160x50() {
        insta::assert_snapshot!(shot(app(), "main_screen_160x50"));
    }

    #[test]
    fn chart_pane_120x40() {
        insta::assert_snapshot!(shot(app(), "chart_pane_120x40"));
    }

    #[test]
    fn layer_chart_120x40() {
        insta::assert_snapshot!(shot(app(), "layer_chart_120x40"));
    }

    #[test]
    fn pareto_120x40() {
        insta::assert_snapshot!(shot(app(), "pareto_120x40"));
    }

    #[test]
    fn help_overlay() {
        insta::assert_snapshot!(shot(app(), "help_overlay"));
    }

    /// Every snapshot screen is drawn from three apps whose model outputs differ and must
    /// come out the same, so that a displayed number the synthetic report misses fails
    /// here: the snapshots' own (hequant); hequant-naive (other mappings, packings, slot
    /// schemes, candidate counts and bytes everywhere); and hequant under a cost model with
    /// other constants (OT bits, compute costs) on a slower link of the same name (other
    /// non-linear bytes, latencies). The options differ in nothing else the screen shows
    /// but the protocol's name in the header, which is the report's `protocol` string: the
    /// synthetic report writes `hequant` there. Before the replacement the screens must
    /// differ, or this test would prove nothing.
    #[test]
    fn snapshots_do_not_depend_on_the_model() {
        let naive = || {
            app_for(
                Protocol::HequantNaive,
                CostModel::builtin().unwrap(),
                |_| {},
            )
        };
        let changed = || {
            let mut cm = CostModel::builtin().unwrap();
            for ot in cm.primitives.ot.values_mut() {
                ot.cot_bits *= 2.0;
                ot.and_triple_bits *= 3.0;
            }
            cm.compute.mul_acc_us *= 3.0;
            cm.compute.ntt_forward_us *= 2.0;
            cm.compute.ot_ns_per_bit *= 5.0;
            app_for(Protocol::Hequant, cm, |o| {
                o.link.bandwidth_bps =
                    BitsPerSecond::try_new(o.link.bandwidth_bps.get() / 3.0).unwrap();
                o.link.rtt_s *= 2.0;
            })
        };
        let base = app();
        for (what, other) in [("hequant-naive", naive()), ("other constants", changed())] {
            assert_ne!(base.report.total, other.report.total, "{what}");
            assert_ne!(screen(&base, 160, 50), screen(&other, 160, 50), "{what}");
        }
        for &(name, ..) in SCREENS {
            let want = shot(app(), name);
            assert!(!want.contains("NaN"), "{name}: {want}");
            for (what, other) in [("hequant-naive", naive()), ("other constants", changed())] {
                assert_eq!(want, shot(other, name), "{name} differs under {what}");
            }
        }
    }

    #[test]
    fn detail_lists_every_slot_scheme_and_paper_is_marked() {
        let cm = CostModel::builtin().unwrap();
        let net = crate::cli::load_network("resnet18-cifar100").unwrap();
        let mut o = EvalOptions::new(Protocol::HequantPacked, &cm);
        o.bits.uniform = Some(parse_bits("w4a4").unwrap());
        o.slots = crate::model::parse_slots("exact,crt,client,paper").unwrap();
        let a = App::new(net, cm, "resnet18-cifar100", o).unwrap();
        let s = screen(&a, 160, 50);
        assert!(s.contains("slot scheme paper: not sound"), "{s}");
        for scheme in ["client", "crt", "exact", "unpacked"] {
            assert!(
                s.contains(&format!(" {scheme:<8} ")),
                "{scheme} missing: {s}"
            );
        }
    }

    #[test]
    fn clicks_select_the_row_under_the_pointer() {
        let a = app();
        let full = Rect::new(0, 0, 80, 24);
        // Row 0 is the header line, row 1 the table's border, row 2 its header, row 3 the
        // first layer (the drawn screen in the 80x24 snapshot).
        assert_eq!(row_at(&a, full, 10, 3), Some(0));
        assert_eq!(row_at(&a, full, 10, 5), Some(2));
        assert_eq!(row_at(&a, full, 10, 2), None);
        assert_eq!(row_at(&a, full, 10, 20), None);
        assert_eq!(row_at(&a, Rect::new(0, 0, 40, 10), 10, 3), None);
        let s = screen(&a, 80, 24);
        let line: &str = s.lines().nth(5).unwrap();
        assert!(line.contains(&a.report.layers[a.rows[2]].name), "{line}");
    }

    #[test]
    fn too_small() {
        let s = screen(&app(), 60, 20);
        assert!(s.contains("terminal too small: 60x20"), "{s}");
        assert!(!s.contains("layers"));
    }

    #[test]
    fn every_key_is_in_the_help() {
        let mut a = app();
        a.update(Action::Help);
        let s = screen(&a, 160, 50);
        for b in KEYMAP {
            assert!(s.contains(b.help), "{} missing from the help", b.help);
        }
    }

    #[test]
    fn any_size_draws_without_panic() {
        let mut a = app();
        a.update(Action::CycleSort);
        for w in [0u16, 1, 10, 79, 80, 81, 100, 149, 150, 151, 230] {
            for h in [0u16, 1, 5, 23, 24, 25, 40, 70] {
                render(&a, w, h);
                a.show_help = !a.show_help;
                render(&a, w, h);
            }
        }
    }
}
