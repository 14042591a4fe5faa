//! The explorer's state and its update function. Every change is tried on a copy of the
//! evaluation options and the model is re-run; only a change the model accepts replaces
//! the state, so bad input leaves a message in the status line and nothing else.

use super::action::{Action, Axis};
use super::chart::{
    ChartData, ChartJob, ChartKey, ChartScope, chart_data, chart_key, drain, sweep,
};
use crate::export;
use crate::mapper::{Objective, search_layer};
use crate::mapping::{LayerChoice, LinearMapping, PackDirection, Packing, SlotScheme, Tiling};
use crate::model::linear::{ConvGeom, HeContext, LinearCost, evaluate_coeff};
use crate::model::report::{LayerReport, Report};
use crate::model::{self, EvalOptions};
use crate::protocol::{CostModel, Link, Protocol};
use crate::spec::mapping::MappingFile;
use crate::units::Bits;
use crate::workload::{BitWidths, CostClass, Network};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How many of the best alternatives the detail pane lists.
pub const ALTERNATIVES: usize = 5;
/// Deepest undo history kept.
const UNDO_DEPTH: usize = 200;
/// Rows moved by PageUp / PageDown.
const PAGE: usize = 10;

/// The column the layer table is sorted by (descending, except network order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Network,
    Bytes,
    ClientToServer,
    ServerToClient,
    NonLinear,
    Latency,
}

impl SortColumn {
    pub const ALL: [SortColumn; 6] = [
        SortColumn::Network,
        SortColumn::Bytes,
        SortColumn::ClientToServer,
        SortColumn::ServerToClient,
        SortColumn::NonLinear,
        SortColumn::Latency,
    ];
    pub fn name(self) -> &'static str {
        match self {
            SortColumn::Network => "network",
            SortColumn::Bytes => "bytes",
            SortColumn::ClientToServer => "bytes c>s",
            SortColumn::ServerToClient => "bytes s>c",
            SortColumn::NonLinear => "non-linear bytes",
            SortColumn::Latency => "latency",
        }
    }
    fn key(self, l: &LayerReport) -> f64 {
        match self {
            SortColumn::Network => 0.0,
            SortColumn::Bytes => l.bytes() as f64,
            SortColumn::ClientToServer => l.bytes_client_to_server as f64,
            SortColumn::ServerToClient => l.bytes_server_to_client as f64,
            SortColumn::NonLinear => l.bytes_nonlinear as f64,
            SortColumn::Latency => l.latency_s,
        }
    }
}

/// What the lower right pane shows when the screen is too narrow for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Detail,
    Chart,
}

/// A status-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// Why a layer's mapping is what it is: its search, and the best alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// Index into the report's layers.
    pub layer: usize,
    pub evaluated: u64,
    pub feasible: u64,
    /// Infeasible candidates counted by the constraint they violate.
    pub infeasible: BTreeMap<&'static str, u64>,
    pub examples: BTreeMap<&'static str, String>,
    /// The search's own choice.
    pub best: Option<(LinearMapping, LinearCost)>,
    /// The best feasible candidates by the objective: (mapping, cost, latency in s).
    pub alternatives: Vec<(LinearMapping, LinearCost, f64)>,
    /// Every feasible candidate as (bytes, latency in s), and the Pareto front of them
    /// (no other candidate has both fewer bytes and a lower latency), by bytes.
    pub cloud: Vec<(u64, f64)>,
    pub front: Vec<(u64, f64)>,
    /// The layer's current mapping on the same axes.
    pub current: (u64, f64),
    /// Whether the layer's mapping is pinned by hand (or by a loaded mapping).
    pub pinned: bool,
}

/// One entry of the undo history.
#[derive(Debug, Clone)]
struct Saved {
    opts: EvalOptions,
    report: Report,
}

/// The explorer's whole state.
#[derive(Debug)]
pub struct App {
    pub net: Arc<Network>,
    pub cm: Arc<CostModel>,
    /// The network as given on the command line (written into saved mappings).
    pub network_spec: String,
    pub opts: EvalOptions,
    /// The report of `opts`: always one the model produced.
    pub report: Report,
    /// Indices into `report.layers` of the rows shown, in display order.
    pub rows: Vec<usize>,
    /// Position of the selection in `rows`.
    pub selected: usize,
    pub sort: SortColumn,
    pub pane: Pane,
    pub show_help: bool,
    pub status: Status,
    pub chart: ChartData,
    /// A newer chart being computed in the background (see [`App::background`]).
    pub chart_job: Option<ChartJob>,
    /// Sweep the chart on a background thread (the terminal) or inline (tests, scripts).
    pub background: bool,
    /// The chart the user cancelled: not restarted until the settings change again.
    chart_cancelled: Option<ChartKey>,
    pub chart_scope: ChartScope,
    /// The chart of the selected layer (when the scope is a layer), and its sweep.
    pub layer_chart: Option<ChartData>,
    pub layer_job: Option<ChartJob>,
    layer_cancelled: Option<ChartKey>,
    /// Counts the changes of the settings (undo included).
    revision: u64,
    /// A link given on the command line that the links file does not name (`n` cycles
    /// through it too).
    custom_link: Option<(String, Link)>,
    pub detail: Option<Detail>,
    pub save_path: PathBuf,
    pub export_path: PathBuf,
    /// Where `i` writes the chart image (PNG or SVG by extension).
    pub chart_path: PathBuf,
    pub quit: bool,
    undo: Vec<Saved>,
}

impl App {
    /// Evaluates the starting point; an error here is the command line's to report.
    pub fn new(
        net: Network,
        cm: CostModel,
        network_spec: &str,
        opts: EvalOptions,
    ) -> Result<App, String> {
        let report = model::evaluate(&net, &opts, &cm).map_err(|e| e.to_string())?;
        let custom_link = (!cm.links.link.contains_key(&opts.link_name))
            .then(|| (opts.link_name.clone(), opts.link));
        let chart = chart_data(&net, &cm, &opts);
        let mut app = App {
            net: Arc::new(net),
            cm: Arc::new(cm),
            network_spec: network_spec.to_string(),
            opts,
            report,
            rows: Vec::new(),
            selected: 0,
            sort: SortColumn::Network,
            pane: Pane::Detail,
            show_help: false,
            status: Status {
                text: "? for help".into(),
                error: false,
            },
            chart,
            chart_job: None,
            background: false,
            chart_cancelled: None,
            chart_scope: ChartScope::Network,
            layer_chart: None,
            layer_job: None,
            layer_cancelled: None,
            revision: 0,
            custom_link,
            detail: None,
            save_path: PathBuf::from("mapping.toml"),
            export_path: PathBuf::from("report.json"),
            chart_path: PathBuf::from("chart.png"),
            quit: false,
            undo: Vec::new(),
        };
        app.refresh(None);
        Ok(app)
    }

    /// The selected layer's report.
    pub fn selected_layer(&self) -> Option<&LayerReport> {
        self.rows
            .get(self.selected)
            .map(|&i| &self.report.layers[i])
    }

    /// Depth of the undo history.
    pub fn undo_depth(&self) -> usize {
        self.undo.len()
    }

    /// The mean weight bits of the weighted layers (where the chart marks the current choice).
    pub fn mean_weight_bits(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .report
            .layers
            .iter()
            .zip(&self.net.layers)
            .filter(|(_, l)| l.kind.has_weights())
            .filter_map(|(r, _)| r.bits.map(|b| b.w.get() as f64))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Takes what the background sweeps have sent; true when the screen should be redrawn.
    pub fn tick(&mut self) -> bool {
        let (a, network) = drain(&mut self.chart_job);
        if let Some(c) = network {
            self.chart = c;
        }
        let (b, layer) = drain(&mut self.layer_job);
        if let Some(c) = layer {
            self.layer_chart = Some(c);
        }
        a || b
    }

    /// Applies one action.
    pub fn update(&mut self, action: Action) {
        if self.show_help {
            // Any key only closes the help.
            self.show_help = false;
            return;
        }
        match action {
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(PAGE as i64)),
            Action::PageDown => self.move_by(PAGE as i64),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Select(pos) => {
                let d = pos as i64 - self.selected as i64;
                self.move_by(d);
            }
            Action::WeightBits(d) => self.layer_bits(d, 0),
            Action::ActBits(d) => self.layer_bits(0, d),
            Action::AllBits(d) => self.all_bits(d),
            Action::CycleProtocol => self.cycle_protocol(),
            Action::CycleLink => self.cycle_link(),
            Action::CycleObjective => self.cycle_objective(),
            Action::CycleSort => {
                let i = SortColumn::ALL.iter().position(|&s| s == self.sort);
                self.sort = SortColumn::ALL[(i.unwrap_or(0) + 1) % SortColumn::ALL.len()];
                let keep = self.selected_index();
                self.sort_rows(keep);
                self.info(format!("sorted by {}", self.sort.name()));
            }
            Action::NextAlternative => self.next_alternative(),
            Action::AutoMapping => self.auto_mapping(),
            Action::Tile(axis, d) => self.tile(axis, d),
            Action::TogglePane => {
                self.pane = match self.pane {
                    Pane::Detail => Pane::Chart,
                    Pane::Chart => Pane::Detail,
                };
            }
            Action::CancelJob => {
                let mut msg = Vec::new();
                if let Some(j) = self.chart_job.take() {
                    msg.push(format!("network sweep at {}/{}", j.done, j.total));
                    self.chart_cancelled = Some(j.key.clone());
                }
                if let Some(j) = self.layer_job.take() {
                    msg.push(format!("layer sweep at {}/{}", j.done, j.total));
                    self.layer_cancelled = Some(j.key.clone());
                }
                if msg.is_empty() {
                    self.error("nothing is running".into());
                } else {
                    self.info(format!(
                        "cancelled the {} (the chart is stale)",
                        msg.join(" and the ")
                    ));
                }
            }
            Action::ChartScope => {
                self.chart_scope = match self.chart_scope {
                    ChartScope::Network => ChartScope::Layer,
                    ChartScope::Layer => ChartScope::Pareto,
                    ChartScope::Pareto => ChartScope::Network,
                };
                self.refresh_charts();
            }
            Action::Undo => self.undo(),
            Action::SaveMapping => self.save(),
            Action::ExportReport => self.export(),
            Action::ExportChart => self.export_chart(),
            Action::Help => self.show_help = true,
            Action::Quit => self.quit = true,
        }
    }

    fn info(&mut self, text: String) {
        self.status = Status { text, error: false };
    }

    fn error(&mut self, text: String) {
        self.status = Status { text, error: true };
    }

    fn selected_index(&self) -> Option<usize> {
        self.rows.get(self.selected).copied()
    }

    fn move_by(&mut self, d: i64) {
        if self.rows.is_empty() {
            return;
        }
        let max = self.rows.len() as i64 - 1;
        self.selected = (self.selected as i64).saturating_add(d).clamp(0, max) as usize;
        self.detail = self.compute_detail();
        self.refresh_charts();
    }

    /// Tries a change of the options; on success it becomes the state (undoable).
    fn try_change(
        &mut self,
        change: impl FnOnce(&mut EvalOptions, &App) -> Result<String, String>,
    ) {
        let mut o = self.opts.clone();
        let msg = match change(&mut o, self) {
            Ok(m) => m,
            Err(e) => return self.error(e),
        };
        let (warm, kept) = self.warm_start(&o);
        match model::evaluate(&self.net, &warm, &self.cm) {
            Ok(mut r) => {
                // A kept layer's search would have run as before: keep its outcomes.
                for (new, old) in r.layers.iter_mut().zip(&self.report.layers) {
                    if new.name == old.name && kept.contains(&new.name) {
                        new.schemes = old.schemes.clone();
                    }
                }
                let keep = self.selected_index();
                let old_opts = std::mem::replace(&mut self.opts, o);
                let old_report = std::mem::replace(&mut self.report, r);
                self.undo.push(Saved {
                    opts: old_opts,
                    report: old_report,
                });
                if self.undo.len() > UNDO_DEPTH {
                    self.undo.remove(0);
                }
                self.refresh(keep);
                let total = crate::units::human_bytes(self.report.total.bytes());
                self.info(format!("{msg}; total {total}"));
            }
            Err(e) => self.error(format!("not applied: {e}")),
        }
    }

    /// The options `new` with the searched mapping of every layer whose search cannot have
    /// changed pinned, so that the model searches only the layers a change touches.
    ///
    /// A linear layer's search depends on the protocol, objective, link (unless the
    /// objective is communication) and the other global options, and on its own bit widths alone (they set its accumulator ring and
    /// so its HE context); the search is deterministic and a pinned mapping is priced by
    /// the same `evaluate_coeff`, so the report is the one a full evaluation gives (a test
    /// checks this after every kind of change).
    fn warm_start(&self, new: &EvalOptions) -> (EvalOptions, Vec<String>) {
        let mut o = new.clone();
        let mut kept = Vec::new();
        let old = &self.opts;
        let same_globals = new.protocol == old.protocol
            && new.objective == old.objective
            // Minimum communication does not look at the link.
            && (new.link == old.link || new.objective == Objective::Comm)
            && new.wire == old.wire
            && new.bits == old.bits
            && new.bn == old.bn
            && new.relu == old.relu
            && new.allow_insecure == old.allow_insecure
            && new.batch == old.batch
            && new.slots == old.slots
            && new.approx == old.approx
            && new.relu_budget == old.relu_budget;
        if !same_globals {
            return (o, kept);
        }
        for r in &self.report.layers {
            let Some(m) = r.mapping else {
                continue;
            };
            let (before, after) = (old.overrides.get(&r.name), new.overrides.get(&r.name));
            let pinned = |c: Option<&LayerChoice>| c.is_some_and(|c| c.linear.is_some());
            if before.and_then(|c| c.bits) != after.and_then(|c| c.bits)
                || pinned(before)
                || pinned(after)
            {
                continue;
            }
            o.overrides
                .entry(r.name.clone())
                .or_insert_with(|| LayerChoice {
                    layer: r.name.clone(),
                    bits: None,
                    linear: None,
                })
                .linear = Some(m);
            kept.push(r.name.clone());
        }
        (o, kept)
    }

    /// Re-derives rows, selection, detail and (when their inputs changed) the charts.
    fn refresh(&mut self, keep: Option<usize>) {
        self.revision += 1;
        self.sort_rows(keep);
    }

    /// The key of the layer chart, when the scope is a layer and the selection has weights.
    pub fn layer_chart_key(&self) -> Option<ChartKey> {
        let i = self.selected_index()?;
        (self.chart_scope == ChartScope::Layer && self.net.layers[i].kind.has_weights()).then(
            || ChartKey {
                layer: Some((i, self.revision)),
                ..chart_key(&self.opts)
            },
        )
    }

    /// Brings both charts up to date: inline, or by (re)starting background sweeps.
    fn refresh_charts(&mut self) {
        let key = chart_key(&self.opts);
        let have = self.chart.key.clone();
        if let Some(c) = self.sync_chart(key, Some(&have), false) {
            self.chart = c;
        }
        match self.layer_chart_key() {
            Some(key) => {
                let have = self.layer_chart.as_ref().map(|c| c.key.clone());
                if let Some(c) = self.sync_chart(key, have.as_ref(), true) {
                    self.layer_chart = Some(c);
                }
            }
            None => self.layer_job = None,
        }
    }

    /// A chart computed inline when it is out of date and the app is not in background
    /// mode; in background mode, starts (or keeps) a sweep for it.
    fn sync_chart(
        &mut self,
        key: ChartKey,
        have: Option<&ChartKey>,
        layer: bool,
    ) -> Option<ChartData> {
        let (job, cancelled) = if layer {
            (&mut self.layer_job, &self.layer_cancelled)
        } else {
            (&mut self.chart_job, &self.chart_cancelled)
        };
        if have == Some(&key) {
            *job = None;
            return None;
        }
        if !self.background {
            return sweep(&self.net, &self.cm, &self.opts, key, &|_| true);
        }
        if job.as_ref().is_none_or(|j| j.key != key) && cancelled.as_ref() != Some(&key) {
            // Replacing a running job cancels it.
            *job = Some(ChartJob::start(
                self.net.clone(),
                self.cm.clone(),
                self.opts.clone(),
                key,
            ));
        }
        None
    }

    /// The rows shown: the layers with a cost, in the order of the sort column.
    pub(crate) fn ordered_rows(&self) -> Vec<usize> {
        let layers = &self.report.layers;
        let mut rows: Vec<usize> = (0..layers.len())
            .filter(|&i| layers[i].class != CostClass::Free)
            .collect();
        if self.sort != SortColumn::Network {
            let s = self.sort;
            rows.sort_by(|&a, &b| {
                s.key(&layers[b])
                    .total_cmp(&s.key(&layers[a]))
                    .then(a.cmp(&b))
            });
        }
        rows
    }

    fn sort_rows(&mut self, keep: Option<usize>) {
        let rows = self.ordered_rows();
        self.selected = keep
            .and_then(|k| rows.iter().position(|&i| i == k))
            .unwrap_or(self.selected.min(rows.len().saturating_sub(1)));
        self.rows = rows;
        self.detail = self.compute_detail();
        self.refresh_charts();
    }

    fn layer_bits(&mut self, dw: i32, da: i32) {
        let Some(l) = self.selected_layer() else {
            return;
        };
        let name = l.name.clone();
        let Some(b) = l.bits else {
            return self.error(if self.opts.protocol.is_quantized() {
                format!("{name} has no weights: bit widths apply to conv and linear layers")
            } else {
                format!(
                    "{} runs in fixed point: bit widths apply to the hequant protocols (p)",
                    self.opts.protocol
                )
            });
        };
        let new = match step_bits(b, dw, da) {
            Ok(n) => n,
            Err(e) => return self.error(format!("{name}: {e}")),
        };
        self.try_change(move |o, _| {
            let e = o.overrides.entry(name.clone()).or_insert(LayerChoice {
                layer: name.clone(),
                bits: None,
                linear: None,
            });
            e.bits = Some(new);
            Ok(format!("{name}: {b} -> {new}"))
        });
    }

    fn all_bits(&mut self, d: i32) {
        let mut changes = Vec::new();
        for (r, l) in self.report.layers.iter().zip(&self.net.layers) {
            let (Some(b), true) = (r.bits, l.kind.has_weights()) else {
                continue;
            };
            match step_bits(b, d, d) {
                Ok(n) => changes.push((r.name.clone(), n)),
                Err(e) => return self.error(format!("{}: {e}; nothing changed", r.name)),
            }
        }
        if changes.is_empty() {
            return self.error(format!(
                "{} runs in fixed point: bit widths apply to the hequant protocols (p)",
                self.opts.protocol
            ));
        }
        let n = changes.len();
        self.try_change(move |o, _| {
            for (name, bits) in changes {
                let e = o.overrides.entry(name.clone()).or_insert(LayerChoice {
                    layer: name,
                    bits: None,
                    linear: None,
                });
                e.bits = Some(bits);
            }
            Ok(format!(
                "{n} weighted layers: {} bit {}",
                d.abs(),
                if d > 0 { "more" } else { "less" }
            ))
        });
    }

    fn cycle_protocol(&mut self) {
        let i = Protocol::ALL
            .iter()
            .position(|&p| p == self.opts.protocol)
            .unwrap_or(0);
        let next = Protocol::ALL[(i + 1) % Protocol::ALL.len()];
        self.try_change(move |o, _| {
            o.protocol = next;
            let pinned = o.overrides.values().filter(|c| c.linear.is_some()).count();
            for c in o.overrides.values_mut() {
                c.linear = None;
            }
            o.overrides.retain(|_, c| c.bits.is_some());
            Ok(if pinned > 0 {
                format!("protocol {next} ({pinned} manual mappings released)")
            } else {
                format!("protocol {next}")
            })
        });
    }

    fn cycle_link(&mut self) {
        let mut links: Vec<(String, Link)> = self
            .cm
            .links
            .link
            .iter()
            .map(|(n, l)| (n.clone(), *l))
            .collect();
        links.extend(self.custom_link.clone());
        if links.is_empty() {
            return self.error("the links file defines no link".into());
        }
        let i = links.iter().position(|(n, _)| *n == self.opts.link_name);
        let (name, link) = links[i.map_or(0, |i| (i + 1) % links.len())].clone();
        self.try_change(move |o, _| {
            o.link = link;
            o.link_name = name.clone();
            Ok(format!("link {name}"))
        });
    }

    fn cycle_objective(&mut self) {
        let next = match self.opts.objective {
            Objective::Comm => Objective::Latency,
            Objective::Latency => Objective::CommThenLatency { tolerance: 0.01 },
            Objective::CommThenLatency { .. } => Objective::Comm,
        };
        self.try_change(move |o, _| {
            o.objective = next;
            Ok(format!("objective {}", next.name()))
        });
    }

    /// The selected layer's geometry and HE context, when it has a coefficient mapping.
    fn layer_he(&self, idx: usize) -> Option<(ConvGeom, HeContext, LinearMapping)> {
        let r = &self.report.layers[idx];
        let m = r.mapping?;
        let g = ConvGeom::of(&self.net.layers[idx])?;
        let ctx = model::layer_context(
            &self.net,
            idx,
            &self.opts,
            &self.cm,
            r.ring_bits_out,
            r.bits,
        );
        Some((g, ctx, m))
    }

    fn no_mapping_message(&self, r: &LayerReport) -> String {
        if r.class != CostClass::Linear {
            format!("{} is not a linear layer: it has no HE mapping", r.name)
        } else {
            format!(
                "{} under {} uses SIMD encoding: no tiling to choose",
                r.name, self.opts.protocol
            )
        }
    }

    fn pin(&mut self, name: String, m: LinearMapping, msg: String) {
        self.try_change(move |o, _| {
            let e = o.overrides.entry(name.clone()).or_insert(LayerChoice {
                layer: name,
                bits: None,
                linear: None,
            });
            e.linear = Some(m);
            Ok(msg)
        });
    }

    fn tile(&mut self, axis: Axis, d: i32) {
        let Some(idx) = self.selected_index() else {
            return;
        };
        let r = &self.report.layers[idx];
        let name = r.name.clone();
        let Some((g, ctx, m)) = self.layer_he(idx) else {
            return self.error(self.no_mapping_message(r));
        };
        let cand = match self.knob(axis, d, m) {
            Ok(c) => c,
            Err(e) => return self.error(format!("{name}: {e}")),
        };
        if let Err(e) = evaluate_coeff(&g, &cand, &ctx, &self.cm) {
            return self.error(format!(
                "{name}: {} does not fit: {e}",
                crate::mapper::describe(&cand)
            ));
        }
        let msg = format!(
            "{name}: {} -> {} (manual)",
            crate::mapper::describe(&m),
            crate::mapper::describe(&cand)
        );
        self.pin(name, cand, msg);
    }

    /// The mapping `m` with one knob turned, within what the protocol may choose.
    fn knob(&self, axis: Axis, d: i32, m: LinearMapping) -> Result<LinearMapping, String> {
        let t = m.tiling;
        let step = |v: u64| -> Result<u64, String> {
            let n = match axis {
                Axis::Channels if d < 0 => v / 2,
                Axis::Channels => v.saturating_mul(2),
                _ => v.saturating_add_signed(d as i64),
            };
            if n < 1 || n == v {
                return Err(format!("{} = {v} cannot go lower", axis.name()));
            }
            Ok(n)
        };
        let space = model::space_for(&self.opts, &self.cm);
        let p = m.packing;
        Ok(match axis {
            Axis::Channels => LinearMapping {
                tiling: Tiling {
                    c_w: step(t.c_w)?,
                    ..t
                },
                ..m
            },
            Axis::Rows => LinearMapping {
                tiling: Tiling {
                    h_w: step(t.h_w)?,
                    ..t
                },
                ..m
            },
            Axis::Cols => LinearMapping {
                tiling: Tiling {
                    w_w: step(t.w_w)?,
                    ..t
                },
                ..m
            },
            Axis::Direction => {
                if space.max_pack_factor < 2 {
                    return Err(format!("{} does not pack", self.opts.protocol));
                }
                let all = &space.pack_directions;
                let i = all.iter().position(|&x| x == p.direction);
                let direction = all[i.map_or(0, |i| (i + 1) % all.len())];
                let factor = if direction == PackDirection::None {
                    1
                } else {
                    p.factor.max(2)
                };
                LinearMapping {
                    packing: Packing {
                        direction,
                        factor,
                        scheme: if PackDirection::CRT.contains(&direction) {
                            SlotScheme::Crt
                        } else if p.scheme == SlotScheme::Crt {
                            SlotScheme::Exact
                        } else {
                            p.scheme
                        },
                    },
                    ..m
                }
            }
            Axis::Factor => {
                if !p.is_packed() {
                    return Err("not packed: choose a packing direction first (P)".into());
                }
                let f = p.factor as i64 + d as i64;
                if f < 2 || f > space.max_pack_factor as i64 {
                    return Err(format!(
                        "packing factor {f}: {} packs 2 to {} values",
                        self.opts.protocol, space.max_pack_factor
                    ));
                }
                LinearMapping {
                    packing: Packing {
                        factor: f as u32,
                        ..p
                    },
                    ..m
                }
            }
            Axis::RingDegree => {
                let all = &space.ring_degrees;
                if all.len() < 2 {
                    return Err(format!(
                        "{} has a single ring degree (N = {})",
                        self.opts.protocol, m.n
                    ));
                }
                let i = all.iter().position(|&x| x == m.n);
                LinearMapping {
                    n: all[i.map_or(0, |i| (i + 1) % all.len())],
                    ..m
                }
            }
        })
    }

    fn next_alternative(&mut self) {
        let Some(idx) = self.selected_index() else {
            return;
        };
        let r = &self.report.layers[idx];
        let name = r.name.clone();
        let current = r.mapping;
        let alts: Vec<LinearMapping> = self
            .detail
            .as_ref()
            .filter(|d| d.layer == idx)
            .map(|d| d.alternatives.iter().map(|a| a.0).collect())
            .unwrap_or_default();
        if current.is_none() || alts.is_empty() {
            return self.error(if current.is_none() {
                self.no_mapping_message(r)
            } else {
                format!("{name}: no feasible alternative")
            });
        }
        let pos = alts.iter().position(|a| Some(*a) == current);
        let k = pos.map_or(0, |p| (p + 1) % alts.len());
        let m = alts[k];
        let msg = format!(
            "{name}: alternative {} of {}: {} (manual)",
            k + 1,
            alts.len(),
            crate::mapper::describe(&m)
        );
        self.pin(name, m, msg);
    }

    fn auto_mapping(&mut self) {
        let Some(r) = self.selected_layer() else {
            return;
        };
        let name = r.name.clone();
        if self
            .opts
            .overrides
            .get(&name)
            .is_none_or(|c| c.linear.is_none())
        {
            return self.error(format!("{name} already uses the automatic mapping"));
        }
        self.try_change(move |o, _| {
            if let Some(c) = o.overrides.get_mut(&name) {
                c.linear = None;
                if c.bits.is_none() {
                    o.overrides.remove(&name);
                }
            }
            Ok(format!("{name}: automatic mapping"))
        });
    }

    fn undo(&mut self) {
        let Some(s) = self.undo.pop() else {
            return self.error("nothing to undo".into());
        };
        let keep = self.selected_index();
        self.opts = s.opts;
        self.report = s.report;
        self.refresh(keep);
        self.info(format!(
            "undone; total {}",
            crate::units::human_bytes(self.report.total.bytes())
        ));
    }

    fn save(&mut self) {
        let m = MappingFile::from_report(&self.network_spec, &self.report);
        let res = crate::io::write_atomic(&self.save_path, m.to_toml().as_bytes());
        match res {
            Ok(()) => self.info(format!(
                "saved the mapping of {} layers to {}",
                m.layer.len(),
                self.save_path.display()
            )),
            Err(e) => self.error(e),
        }
    }

    fn export(&mut self) {
        let format = export_format(&self.export_path);
        let text = export::render(std::slice::from_ref(&self.report), format, true);
        match crate::io::write_atomic(&self.export_path, text.as_bytes()) {
            Ok(()) => self.info(format!(
                "exported the report to {} ({format:?})",
                self.export_path.display()
            )),
            Err(e) => self.error(e),
        }
    }

    /// Writes the chart through the same renderer as `hequant plot`: with the network chart
    /// showing, communication against the uniform bit width for every protocol (2..16, as
    /// on screen); otherwise the per-layer breakdown of the current report. The status line
    /// says which.
    fn export_chart(&mut self) {
        use crate::plot::{Chart, ImageFormat, Size, layer_bars, render};
        let format = match ImageFormat::from_path(&self.chart_path) {
            Ok(f) => f,
            Err(e) => return self.error(e.to_string()),
        };
        let (bytes, what) = if self.chart_scope == ChartScope::Network {
            let bits = crate::mapper::sweep::BitRange {
                lo: *super::chart::CHART_BITS.start(),
                hi: *super::chart::CHART_BITS.end(),
            };
            let base = EvalOptions {
                overrides: Default::default(),
                ..self.opts.clone()
            };
            let sw = crate::mapper::sweep::sweep(
                &self.net,
                &base,
                &self.cm,
                &Protocol::ALL,
                bits,
                self.opts.bits.all_layers,
            );
            match sw {
                Ok(sw) => (
                    render(&Chart::CommVsBits(&sw), format, Size::COLUMN),
                    "communication vs bit width",
                ),
                Err(e) => return self.error(e.to_string()),
            }
        } else {
            let rows = layer_bars(&self.report).len();
            (
                render(&Chart::Layers(&self.report), format, Size::for_rows(rows)),
                "per-layer breakdown",
            )
        };
        match bytes
            .map_err(|e| e.to_string())
            .and_then(|b| crate::io::write_atomic(&self.chart_path, &b))
        {
            Ok(()) => self.info(format!(
                "exported the {what} chart to {}",
                self.chart_path.display()
            )),
            Err(e) => self.error(e),
        }
    }

    /// The search behind the selected layer's mapping.
    fn compute_detail(&self) -> Option<Detail> {
        let idx = self.selected_index()?;
        let (g, ctx, m) = self.layer_he(idx)?;
        let he = self.report.layers[idx].he?;
        let space = model::space_for(&self.opts, &self.cm);
        let link = self.opts.link;
        let profile = &self.cm.compute;
        let lat = |m: &LinearMapping, c: &LinearCost| model::mapping_latency(&link, profile, m, c);
        // The search reports the latency of every feasible candidate, in candidate order:
        // recording them there ranks the alternatives without a second pass.
        let seen = Mutex::new(Vec::new());
        let record = |m: &LinearMapping, c: &LinearCost| {
            let t = lat(m, c);
            if let Ok(mut v) = seen.lock() {
                let i = v.len();
                v.push((i, *m, *c, t));
            }
            t
        };
        let s = search_layer(&g, &ctx, &self.cm, &space, self.opts.objective, &record);
        let mut alts: Vec<(usize, LinearMapping, LinearCost, f64)> =
            seen.into_inner().unwrap_or_default();
        let feasible = alts.len() as u64;
        let cloud: Vec<(u64, f64)> = alts.iter().map(|a| (a.2.total_bytes(), a.3)).collect();
        let front = pareto_front(&cloud);
        match self.opts.objective {
            Objective::Latency => alts.sort_by(|a, b| a.3.total_cmp(&b.3).then(a.0.cmp(&b.0))),
            _ => alts.sort_by_key(|a| (a.2.total_bytes(), a.0)),
        }
        alts.truncate(ALTERNATIVES);
        let name = &self.report.layers[idx].name;
        Some(Detail {
            layer: idx,
            evaluated: s.evaluated,
            feasible,
            infeasible: s.infeasible,
            examples: s.examples,
            best: s.best,
            alternatives: alts.into_iter().map(|a| (a.1, a.2, a.3)).collect(),
            cloud,
            front,
            current: (he.total_bytes(), lat(&m, &he)),
            pinned: self
                .opts
                .overrides
                .get(name)
                .is_some_and(|c| c.linear.is_some()),
        })
    }
}

/// The points no other point beats on both coordinates (ties kept once), by the first.
pub fn pareto_front(points: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let mut v = points.to_vec();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut front: Vec<(u64, f64)> = Vec::new();
    for p in v {
        if front.last().is_none_or(|l| p.1 < l.1) {
            front.push(p);
        }
    }
    front
}

/// The export format of a path, by its extension: `.csv`, `.md`, `.txt` (the terminal
/// table), anything else JSON.
pub fn export_format(path: &std::path::Path) -> export::Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => export::Format::Csv,
        Some("md") => export::Format::Markdown,
        Some("txt") => export::Format::Table,
        _ => export::Format::Json,
    }
}

/// Bit widths moved by (dw, da), or why they cannot be.
fn step_bits(b: BitWidths, dw: i32, da: i32) -> Result<BitWidths, String> {
    let w = b.w.get() as i64 + dw as i64;
    let a = b.a.get() as i64 + da as i64;
    let bw = Bits::try_new(w).map_err(|e| format!("weight bits {w}: {e}"))?;
    let ba = Bits::try_new(a).map_err(|e| format!("activation bits {a}: {e}"))?;
    Ok(BitWidths { w: bw, a: ba })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::load_network;
    use crate::protocol::CostModel;

    fn app(protocol: Protocol) -> App {
        let cm = CostModel::builtin().unwrap();
        let net = load_network("resnet18-cifar100").unwrap();
        let mut o = EvalOptions::new(protocol, &cm);
        o.bits.uniform = Some(model::parse_bits("w4a4").unwrap());
        App::new(net, cm, "resnet18-cifar100", o).unwrap()
    }

    /// Selects the first row whose layer satisfies `f`.
    fn select(a: &mut App, f: impl Fn(&LayerReport) -> bool) {
        let pos = a.rows.iter().position(|&i| f(&a.report.layers[i])).unwrap();
        a.selected = pos;
        a.detail = a.compute_detail();
    }

    fn is_conv(l: &LayerReport) -> bool {
        l.kind == "conv2d"
    }

    /// After any change, the state's report is the one a full evaluation of its options
    /// gives (the warm start only saves searches).
    #[test]
    fn state_report_equals_a_full_evaluation() {
        for (net, protocol) in [
            ("resnet18-cifar100", Protocol::Hequant),
            ("resnet18-cifar100", Protocol::HequantPacked),
            ("resnet18-cifar100", Protocol::HequantNaive),
            ("mobilenetv2-cifar100", Protocol::Hequant),
        ] {
            let cm = CostModel::builtin().unwrap();
            let n = load_network(net).unwrap();
            let mut o = EvalOptions::new(protocol, &cm);
            o.bits.uniform = Some(model::parse_bits("w4a4").unwrap());
            let mut a = App::new(n, cm, net, o).unwrap();
            let steps = [
                Action::CycleLink,
                Action::WeightBits(1),
                Action::Down,
                Action::Down,
                Action::Down,
                Action::ActBits(1),
                Action::AllBits(-1),
                Action::Tile(Axis::Rows, -1),
                Action::Down,
                Action::WeightBits(2),
                Action::NextAlternative,
                Action::Up,
                Action::AutoMapping,
                Action::Up,
                Action::WeightBits(-1),
                Action::Undo,
                Action::CycleObjective,
                Action::WeightBits(1),
                Action::CycleLink,
                Action::AllBits(1),
                // Wide steps move the best packing and ring degree.
                Action::WeightBits(8),
                Action::ActBits(6),
                Action::AllBits(-3),
                Action::AllBits(-1),
                Action::Top,
                Action::WeightBits(-6),
            ];
            for s in steps {
                a.update(s);
                let full = model::evaluate(&a.net, &a.opts, &a.cm).unwrap();
                for (x, y) in a.report.layers.iter().zip(&full.layers) {
                    assert_eq!(x, y, "{net} {protocol} after {s:?}: layer {}", y.name);
                }
                assert_eq!(a.report, full, "{net} {protocol} after {s:?}");
            }
        }
    }

    #[test]
    fn movement_is_clamped() {
        let mut a = app(Protocol::Hequant);
        a.update(Action::Up);
        assert_eq!(a.selected, 0);
        a.update(Action::Down);
        assert_eq!(a.selected, 1);
        a.update(Action::Bottom);
        assert_eq!(a.selected, a.rows.len() - 1);
        a.update(Action::Down);
        assert_eq!(a.selected, a.rows.len() - 1);
        a.update(Action::Top);
        assert_eq!(a.selected, 0);
    }

    #[test]
    fn weight_bits_change_the_selected_layer_only() {
        let mut a = app(Protocol::Hequant);
        // The second conv runs at w4a4 (the first weighted layer stays w8a8).
        let second = a
            .report
            .layers
            .iter()
            .filter(|l| is_conv(l))
            .nth(1)
            .unwrap()
            .name
            .clone();
        select(&mut a, |l| l.name == second);
        let before = a.report.clone();
        a.update(Action::WeightBits(1));
        assert!(!a.status.error, "{}", a.status.text);
        let l = a.selected_layer().unwrap();
        assert_eq!(l.name, second);
        assert_eq!(l.bits.map(|b| (b.w.get(), b.a.get())), Some((5, 4)));
        // Every other layer keeps its widths.
        for (x, y) in before.layers.iter().zip(&a.report.layers) {
            if x.name != second {
                assert_eq!(x.bits, y.bits, "{}", x.name);
            }
        }
        // The state equals a direct evaluation with the same override.
        let mut o = before_opts(&a);
        o.overrides.insert(
            second.clone(),
            LayerChoice {
                layer: second.clone(),
                bits: Some(model::parse_bits("w5a4").unwrap()),
                linear: None,
            },
        );
        let direct = model::evaluate(&a.net, &o, &a.cm).unwrap();
        assert_eq!(direct.total, a.report.total);
        a.update(Action::ActBits(-1));
        let l = a.selected_layer().unwrap();
        assert_eq!(l.bits.map(|b| (b.w.get(), b.a.get())), Some((5, 3)));
    }

    fn before_opts(a: &App) -> EvalOptions {
        let mut o = a.opts.clone();
        o.overrides.clear();
        o
    }

    #[test]
    fn bits_out_of_range_change_nothing() {
        let mut a = app(Protocol::Hequant);
        select(&mut a, is_conv);
        // Walk the weight bits down to 1, then one more.
        for _ in 0..7 {
            a.update(Action::WeightBits(-1));
        }
        assert_eq!(a.selected_layer().unwrap().bits.unwrap().w.get(), 1);
        let report = a.report.clone();
        let opts = a.opts.clone();
        let depth = a.undo_depth();
        a.update(Action::WeightBits(-1));
        assert!(a.status.error);
        assert!(a.status.text.contains("weight bits 0"), "{}", a.status.text);
        assert_eq!(a.report, report);
        assert_eq!(a.opts, opts);
        assert_eq!(a.undo_depth(), depth);
    }

    #[test]
    fn all_bits_and_undo() {
        let mut a = app(Protocol::Hequant);
        let start = a.report.clone();
        a.update(Action::AllBits(-1));
        assert!(!a.status.error, "{}", a.status.text);
        for (r, l) in a.report.layers.iter().zip(&a.net.layers) {
            if l.kind.has_weights() {
                let old = start.layers.iter().find(|x| x.name == r.name).unwrap();
                let (o, n) = (old.bits.unwrap(), r.bits.unwrap());
                assert_eq!((n.w.get() + 1, n.a.get() + 1), (o.w.get(), o.a.get()));
            }
        }
        assert!(a.report.total.bytes() != start.total.bytes());
        a.update(Action::Undo);
        assert_eq!(a.report, start);
        a.update(Action::Undo);
        assert!(a.status.error);
        assert_eq!(a.status.text, "nothing to undo");
    }

    #[test]
    fn fixed_point_protocols_reject_bit_changes() {
        let mut a = app(Protocol::Cheetah);
        select(&mut a, is_conv);
        let r = a.report.clone();
        a.update(Action::WeightBits(1));
        assert!(a.status.error);
        assert!(a.status.text.contains("fixed point"));
        a.update(Action::AllBits(1));
        assert!(a.status.error);
        assert_eq!(a.report, r);
    }

    #[test]
    fn protocol_link_objective_cycle() {
        let mut a = app(Protocol::Hequant);
        a.update(Action::CycleProtocol);
        assert_eq!(a.opts.protocol, Protocol::ALL[0]);
        assert_eq!(a.report.protocol, Protocol::ALL[0].name());
        let lan = a.report.total.latency_s;
        a.update(Action::CycleLink);
        assert_eq!(a.opts.link_name, "wan");
        assert_eq!(a.report.link.name, "wan");
        // The WAN is slower than the LAN in the shipped links file.
        assert!(a.report.total.latency_s > lan);
        a.update(Action::CycleObjective);
        assert_eq!(a.opts.objective, Objective::Latency);
    }

    #[test]
    fn a_command_line_link_stays_in_the_cycle() {
        let cm = CostModel::builtin().unwrap();
        let net = load_network("resnet18-cifar100").unwrap();
        let mut o = EvalOptions::new(Protocol::Hequant, &cm);
        o.bits.uniform = Some(model::parse_bits("w4a4").unwrap());
        o.link = Link {
            bandwidth_bps: crate::units::BitsPerSecond::try_new(1e6).unwrap(),
            rtt_s: 0.5,
        };
        o.link_name = "custom 1 Mbit/s 500 ms".into();
        let mut a = App::new(net, cm, "resnet18-cifar100", o).unwrap();
        let named = a.cm.links.link.len();
        let mut seen = Vec::new();
        for _ in 0..=named {
            a.update(Action::CycleLink);
            assert!(!a.status.error, "{}", a.status.text);
            seen.push(a.report.link.name.clone());
        }
        assert_eq!(seen.last().unwrap(), "custom 1 Mbit/s 500 ms");
        assert_eq!(a.report.link.rtt_s, 0.5);
        assert_eq!(seen[0], "lan");
    }

    #[test]
    fn sorting_keeps_the_selection_and_orders_rows() {
        let mut a = app(Protocol::Hequant);
        a.update(Action::Down);
        a.update(Action::Down);
        let name = a.selected_layer().unwrap().name.clone();
        a.update(Action::CycleSort);
        assert_eq!(a.sort, SortColumn::Bytes);
        assert_eq!(a.selected_layer().unwrap().name, name);
        let bytes: Vec<u64> = a.rows.iter().map(|&i| a.report.layers[i].bytes()).collect();
        assert!(bytes.windows(2).all(|w| w[0] >= w[1]), "{bytes:?}");
        // Free layers are not rows.
        assert!(
            a.rows
                .iter()
                .all(|&i| a.report.layers[i].class != CostClass::Free)
        );
    }

    #[test]
    fn manual_tile_that_does_not_fit_changes_nothing() {
        let mut a = app(Protocol::Hequant);
        select(&mut a, is_conv);
        let r = a.report.clone();
        // Doubling C_w until it cannot fit in N coefficients (or exceeds the channels).
        let mut guard = 0;
        while !a.status.error && guard < 20 {
            a.update(Action::Tile(Axis::Channels, 1));
            guard += 1;
        }
        assert!(a.status.error, "{}", a.status.text);
        assert!(a.status.text.contains("does not fit"), "{}", a.status.text);
        let pinned = a.report.clone();
        a.update(Action::Tile(Axis::Channels, 1));
        assert_eq!(a.report, pinned);
        // Back to automatic gives the original report.
        if guard > 1 {
            a.update(Action::AutoMapping);
            assert_eq!(a.report.total, r.total);
        }
    }

    #[test]
    fn manual_tile_is_pinned_and_evaluated() {
        let mut a = app(Protocol::Hequant);
        select(&mut a, is_conv);
        let m = a.selected_layer().unwrap().mapping.unwrap();
        a.update(Action::Tile(Axis::Rows, -1));
        assert!(!a.status.error, "{}", a.status.text);
        let l = a.selected_layer().unwrap();
        assert_eq!(l.mapping.unwrap().tiling.h_w, m.tiling.h_w - 1);
        assert!(a.detail.as_ref().unwrap().pinned);
        // The pinned cost is the model's cost of that mapping.
        let (g, ctx, mm) = a.layer_he(a.selected_index().unwrap()).unwrap();
        let c = evaluate_coeff(&g, &mm, &ctx, &a.cm).unwrap();
        assert_eq!(a.selected_layer().unwrap().he, Some(c));
    }

    #[test]
    fn packing_and_ring_degree_knobs() {
        let mut a = app(Protocol::Hequant);
        // conv1 reads the client's own image: bit slots sized to the true accumulator
        // (no share wrap) pay there.
        select(&mut a, is_conv);
        let first = a.selected_layer().unwrap().mapping.unwrap();
        assert_eq!(first.packing.scheme, SlotScheme::Client, "{first:?}");
        assert!(first.packing.factor > 1, "{first:?}");
        // A layer on shares at w4a4 with one spatial tile: no sound packing fits.
        select(&mut a, |l| l.name == "layer1.0.conv1");
        let m = a.selected_layer().unwrap().mapping.unwrap();
        assert!(
            !m.packing.is_packed(),
            "layer1.0.conv1 is searched unpacked: {m:?}"
        );
        let r = a.report.clone();
        a.update(Action::Tile(Axis::Factor, 1));
        assert!(a.status.error);
        assert!(a.status.text.contains("not packed"), "{}", a.status.text);
        assert_eq!(a.report, r);
        // A change either applies (and is the model's cost of the new mapping) or says why not.
        let check = |a: &App, before: &Report, want: &dyn Fn(LinearMapping) -> bool| {
            let now = a.selected_layer().unwrap().mapping.unwrap();
            if a.status.error {
                assert!(a.status.text.contains("does not fit"), "{}", a.status.text);
                assert_eq!(&a.report, before);
            } else {
                assert!(want(now), "{now:?}");
                let (g, ctx, _) = a.layer_he(a.selected_index().unwrap()).unwrap();
                let c = evaluate_coeff(&g, &now, &ctx, &a.cm).unwrap();
                assert_eq!(a.selected_layer().unwrap().he, Some(c));
            }
        };
        let before = a.report.clone();
        a.update(Action::Tile(Axis::RingDegree, 1));
        let ns = model::space_for(&a.opts, &a.cm).ring_degrees;
        check(&a, &before, &|x| x.n != m.n && ns.contains(&x.n));
        a.update(Action::Undo);
        let before = a.report.clone();
        a.update(Action::Tile(Axis::Direction, 1));
        check(&a, &before, &|x| {
            x.packing.direction != PackDirection::None && x.packing.factor == 2
        });
        // Cheetah neither packs nor chooses N.
        let mut c = app(Protocol::Cheetah);
        select(&mut c, is_conv);
        c.update(Action::Tile(Axis::Direction, 1));
        assert!(
            c.status.text.contains("cheetah does not pack"),
            "{}",
            c.status.text
        );
        c.update(Action::Tile(Axis::RingDegree, 1));
        assert!(
            c.status.text.contains("single ring degree"),
            "{}",
            c.status.text
        );
    }

    #[test]
    fn alternatives_are_sorted_and_the_best_is_the_search_choice() {
        let mut a = app(Protocol::Hequant);
        select(&mut a, is_conv);
        let d = a.detail.clone().unwrap();
        assert!(!d.alternatives.is_empty());
        let comm: Vec<u64> = d.alternatives.iter().map(|x| x.1.total_bytes()).collect();
        assert!(comm.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(d.best.map(|b| b.0), Some(d.alternatives[0].0));
        assert_eq!(d.best.map(|b| b.0), a.selected_layer().unwrap().mapping);
        let counted: u64 = d.infeasible.values().sum();
        assert_eq!(counted + d.feasible, d.evaluated);
        a.update(Action::NextAlternative);
        if d.alternatives.len() > 1 {
            assert_eq!(
                a.selected_layer().unwrap().mapping,
                Some(d.alternatives[1].0)
            );
        }
    }

    #[test]
    fn pareto_front_of_hand_made_points() {
        let pts = [
            (5, 1.0),
            (3, 3.0),
            (4, 2.0),
            (4, 2.5),
            (6, 0.5),
            (7, 0.7),
            (3, 3.0),
        ];
        assert_eq!(
            pareto_front(&pts),
            vec![(3, 3.0), (4, 2.0), (5, 1.0), (6, 0.5)]
        );
        assert!(pareto_front(&[]).is_empty());
    }

    #[test]
    fn the_search_choice_is_on_the_front() {
        let mut a = app(Protocol::Hequant);
        select(&mut a, is_conv);
        let d = a.detail.clone().unwrap();
        assert_eq!(d.cloud.len() as u64, d.feasible);
        let (_, c) = d.best.unwrap();
        let best_bytes = c.total_bytes();
        // Minimum communication is the front's first point.
        assert_eq!(d.front[0].0, best_bytes);
        assert_eq!(d.current, d.front[0]);
        for p in &d.cloud {
            assert!(
                d.front.iter().any(|f| f.0 <= p.0 && f.1 <= p.1),
                "{p:?} is not dominated by the front"
            );
        }
    }

    #[test]
    fn non_linear_layers_have_no_mapping_to_change() {
        let mut a = app(Protocol::Hequant);
        select(&mut a, |l| l.kind == "relu");
        let r = a.report.clone();
        a.update(Action::Tile(Axis::Cols, 1));
        assert!(a.status.error);
        assert!(a.status.text.contains("not a linear layer"));
        a.update(Action::WeightBits(1));
        assert!(a.status.error);
        assert_eq!(a.report, r);
    }

    #[test]
    fn save_and_export() {
        let dir = std::env::temp_dir().join(format!("hequant-tui-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = app(Protocol::Hequant);
        select(&mut a, is_conv);
        a.update(Action::WeightBits(1));
        a.save_path = dir.join("m.toml");
        a.export_path = dir.join("r.json");
        a.update(Action::SaveMapping);
        assert!(!a.status.error, "{}", a.status.text);
        a.update(Action::ExportReport);
        assert!(!a.status.error, "{}", a.status.text);
        // The saved mapping reproduces the report.
        let m = crate::spec::mapping::load(&a.save_path, Some(&a.net)).unwrap();
        let mut o = a.opts.clone();
        o.overrides = m.overrides();
        let again = model::evaluate(&a.net, &o, &a.cm).unwrap();
        assert_eq!(again.total, a.report.total);
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&a.export_path).unwrap()).unwrap();
        assert_eq!(j["total"]["bytes_linear"], a.report.total.bytes_linear);
        // The extension picks the exporter.
        a.export_path = dir.join("r.csv");
        a.update(Action::ExportReport);
        let csv = std::fs::read_to_string(&a.export_path).unwrap();
        assert!(csv.starts_with("network,protocol,"), "{csv}");
        assert!(csv.contains("TOTAL"));
        a.export_path = dir.join("r.md");
        a.update(Action::ExportReport);
        let md = std::fs::read_to_string(&a.export_path).unwrap();
        assert!(
            md.starts_with("### resnet18-cifar100 under hequant"),
            "{md}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn chart_export_goes_through_the_plot_renderer() {
        let dir = std::env::temp_dir().join(format!("hequant-tui-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut a = app(Protocol::Hequant);
        // The network chart: communication against bit width, as a PNG.
        a.chart_path = dir.join("c.png");
        a.update(Action::ExportChart);
        assert!(!a.status.error, "{}", a.status.text);
        assert!(
            a.status.text.contains("communication vs bit width"),
            "{}",
            a.status.text
        );
        let png = std::fs::read(&a.chart_path).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // Another scope: the per-layer breakdown, as SVG with every linear layer named.
        a.update(Action::ChartScope);
        a.chart_path = dir.join("l.svg");
        a.update(Action::ExportChart);
        assert!(
            a.status.text.contains("per-layer breakdown"),
            "{}",
            a.status.text
        );
        let svg = std::fs::read_to_string(&a.chart_path).unwrap();
        assert!(svg.contains("<svg") && svg.contains("layer4.1.conv2"));
        // A bad extension: a message, no file, nothing else changed.
        let before = a.report.total.clone();
        a.chart_path = dir.join("c.gif");
        a.update(Action::ExportChart);
        assert!(
            a.status.error && a.status.text.contains("extension"),
            "{}",
            a.status.text
        );
        assert!(!a.chart_path.exists());
        assert_eq!(a.report.total, before);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_save_path_changes_nothing() {
        let mut a = app(Protocol::Hequant);
        a.save_path = PathBuf::from("/nonexistent-hequant-dir/m.toml");
        let r = a.report.clone();
        a.update(Action::SaveMapping);
        assert!(a.status.error);
        assert!(
            a.status.text.contains("does not exist"),
            "{}",
            a.status.text
        );
        assert_eq!(a.report, r);
        assert_eq!(a.undo_depth(), 0);
    }

    #[test]
    fn help_closes_on_any_key() {
        let mut a = app(Protocol::Hequant);
        a.update(Action::Help);
        assert!(a.show_help);
        a.update(Action::Quit);
        assert!(!a.show_help);
        assert!(!a.quit);
        a.update(Action::Help);
        a.update(Action::Down);
        assert!(!a.show_help);
        assert_eq!(
            a.selected, 0,
            "the key that closes the help does nothing else"
        );
        a.update(Action::Quit);
        assert!(a.quit);
    }

    /// Ticks until the background sweep is done (failing after a generous bound).
    fn finish(a: &mut App) {
        for _ in 0..6000 {
            a.tick();
            if a.chart_job.is_none() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the background sweep did not finish");
    }

    #[test]
    fn background_sweep_matches_the_inline_one() {
        let mut a = app(Protocol::Hequant);
        a.background = true;
        a.update(Action::CycleObjective);
        let job = a.chart_job.as_ref().expect("a sweep started");
        assert_eq!(job.total, crate::tui::chart::chart_steps());
        finish(&mut a);
        let inline = chart_data(&a.net, &a.cm, &a.opts);
        assert_eq!(a.chart, inline);
    }

    #[test]
    fn cancelled_sweep_keeps_the_old_chart() {
        let mut a = app(Protocol::Hequant);
        a.background = true;
        let old = a.chart.clone();
        a.update(Action::CycleObjective);
        assert!(a.chart_job.is_some());
        a.update(Action::CancelJob);
        assert!(a.chart_job.is_none());
        assert!(!a.status.error);
        assert!(a.status.text.contains("cancelled"), "{}", a.status.text);
        assert_eq!(a.chart, old);
        // Not restarted by an unrelated change; restarted by new chart settings.
        select(&mut a, is_conv);
        a.update(Action::WeightBits(-1));
        assert!(a.chart_job.is_none());
        a.update(Action::CycleObjective);
        assert!(a.chart_job.is_some());
        a.update(Action::CancelJob);
        a.update(Action::CancelJob);
        assert!(a.status.error);
    }

    #[test]
    fn layer_chart_varies_only_the_selected_layer() {
        let mut a = app(Protocol::Hequant);
        let second = a
            .report
            .layers
            .iter()
            .filter(|l| is_conv(l))
            .nth(1)
            .unwrap()
            .name
            .clone();
        select(&mut a, |l| l.name == second);
        assert!(a.layer_chart.is_none());
        a.update(Action::ChartScope);
        let c = a.layer_chart.clone().expect("computed inline");
        assert_eq!(Some(c.key.clone()), a.layer_chart_key());
        let hq = &c
            .series
            .iter()
            .find(|s| s.0 == Protocol::Hequant)
            .unwrap()
            .1;
        // At the layer's own width (w4a4) the point is the layer's current bytes.
        let at4 = hq.iter().find(|p| p.0 == 4.0).unwrap().1;
        assert_eq!(at4, a.selected_layer().unwrap().bytes() as f64);
        // At 8 bits it is a direct evaluation with that one layer at w8a8.
        let idx = a.selected_index().unwrap();
        let mut o = a.opts.clone();
        o.overrides.insert(
            second.clone(),
            LayerChoice {
                layer: second.clone(),
                bits: Some(model::parse_bits("w8a8").unwrap()),
                linear: None,
            },
        );
        let r = model::evaluate(&a.net, &o, &a.cm).unwrap();
        let at8 = hq.iter().find(|p| p.0 == 8.0).unwrap().1;
        assert_eq!(at8, r.layers[idx].bytes() as f64);
        // A change of the settings recomputes it.
        a.update(Action::WeightBits(1));
        assert_eq!(
            a.layer_chart.as_ref().map(|c| c.key.clone()),
            a.layer_chart_key()
        );
        assert_ne!(a.layer_chart.as_ref().unwrap().key, c.key);
        // Layers without weights have no layer chart.
        select(&mut a, |l| l.kind == "relu");
        assert_eq!(a.layer_chart_key(), None);
        a.update(Action::ChartScope);
        assert_eq!(a.chart_scope, ChartScope::Pareto);
        assert_eq!(a.layer_chart_key(), None);
        a.update(Action::ChartScope);
        assert_eq!(a.chart_scope, ChartScope::Network);
    }

    #[test]
    fn chart_and_baselines() {
        let a = app(Protocol::Hequant);
        assert_eq!(a.chart.series.len(), Protocol::ALL.len());
        let hq = &a
            .chart
            .series
            .iter()
            .find(|s| s.0 == Protocol::Hequant)
            .unwrap()
            .1;
        assert!(!hq.is_empty());
        // The point at the network's uniform width equals a direct evaluation.
        let four = hq.iter().find(|p| p.0 == 4.0).unwrap().1;
        assert_eq!(four, a.report.total.bytes() as f64);
        let names: Vec<Protocol> = a.chart.baselines.iter().map(|b| b.0).collect();
        assert_eq!(names, vec![Protocol::Cheetah, Protocol::Cryptflow2]);
    }
}
