//! The charts: communication against bit width for every protocol, for the whole network
//! or one layer, swept inline or on a background thread that reports progress and can be
//! cancelled.

use crate::mapping::LayerChoice;
use crate::model::report::{Report, Totals};
use crate::model::{self, BitsPolicy, EvalOptions};
use crate::protocol::{CostModel, Protocol};
use crate::units::Bits;
use crate::workload::{BitWidths, Network};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, channel};

/// Bit widths the chart sweeps.
pub const CHART_BITS: std::ops::RangeInclusive<u32> = 2..=16;

/// Communication against uniform bit width for each protocol, and the baselines.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    /// (protocol, points (bits, total bytes)); a width the model rejects has no point.
    pub series: Vec<(Protocol, Vec<(f64, f64)>)>,
    /// Totals of Cheetah and CrypTFlow2 on the same network and link.
    pub baselines: Vec<(Protocol, Result<Totals, String>)>,
    /// What the chart was computed for.
    pub key: ChartKey,
}

/// What a chart depends on besides the network and the cost model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartKey {
    pub(super) objective: String,
    pub(super) link: String,
    pub(super) all_layers: bool,
    /// For a chart of one layer: the layer's index and the revision of the settings
    /// (the other layers' choices change its rings).
    pub(super) layer: Option<(usize, u64)>,
}

/// Whether the chart shows the whole network or the selected layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartScope {
    Network,
    Layer,
    /// The selected layer's search: every feasible candidate and the Pareto front.
    Pareto,
}

pub(super) fn chart_key(o: &EvalOptions) -> ChartKey {
    ChartKey {
        objective: o.objective.name().to_string(),
        link: o.link_name.clone(),
        all_layers: o.bits.all_layers,
        layer: None,
    }
}

/// Evaluations one chart sweep runs.
pub fn chart_steps() -> usize {
    let widths = CHART_BITS.count();
    Protocol::ALL
        .iter()
        .map(|p| if p.is_quantized() { widths } else { 1 })
        .sum()
}

/// Communication against uniform bit width for every protocol (no per-layer overrides).
pub fn chart_data(net: &Network, cm: &CostModel, opts: &EvalOptions) -> ChartData {
    sweep(net, cm, opts, chart_key(opts), &|_| true)
        .expect("a sweep that is never stopped finishes")
}

/// The chart sweep; `progress(done)` is called after each evaluation and stops the
/// sweep (returning `None`) when it returns false. For a layer chart (`key.layer`), only
/// that layer's bit widths vary (the other layers keep the current choices, manual
/// mappings only under the current protocol) and its own bytes are plotted.
pub(super) fn sweep(
    net: &Network,
    cm: &CostModel,
    opts: &EvalOptions,
    key: ChartKey,
    progress: &dyn Fn(usize) -> bool,
) -> Option<ChartData> {
    let base = EvalOptions {
        overrides: Default::default(),
        ..opts.clone()
    };
    let layer = key.layer.map(|(i, _)| i);
    let y = |r: &Report| match layer {
        Some(i) => r.layers[i].bytes() as f64,
        None => r.total.bytes() as f64,
    };
    let mut series = Vec::new();
    let mut baselines = Vec::new();
    let mut done = 0;
    let mut step = || {
        done += 1;
        progress(done)
    };
    for p in Protocol::ALL {
        let mut pts = Vec::new();
        if p.is_quantized() {
            for b in CHART_BITS {
                let bits = Bits::try_new(b as i64).expect("chart widths are in 1..=32");
                let bits = BitWidths { w: bits, a: bits };
                let o = match layer {
                    None => EvalOptions {
                        protocol: p,
                        bits: BitsPolicy {
                            uniform: Some(bits),
                            all_layers: opts.bits.all_layers,
                        },
                        ..base.clone()
                    },
                    Some(i) => {
                        let mut o = EvalOptions {
                            protocol: p,
                            ..opts.clone()
                        };
                        let name = &net.layers[i].name;
                        for (n, c) in o.overrides.iter_mut() {
                            if p != opts.protocol || n == name {
                                c.linear = None;
                            }
                        }
                        o.overrides.insert(
                            name.clone(),
                            LayerChoice {
                                layer: name.clone(),
                                bits: Some(bits),
                                linear: None,
                            },
                        );
                        o
                    }
                };
                if let Ok(r) = model::evaluate(net, &o, cm) {
                    pts.push((b as f64, y(&r)));
                }
                if !step() {
                    return None;
                }
            }
        } else {
            let o = EvalOptions {
                protocol: p,
                ..base.clone()
            };
            let r = model::evaluate(net, &o, cm).map_err(|e| e.to_string());
            if let Ok(r) = &r {
                for b in [*CHART_BITS.start(), *CHART_BITS.end()] {
                    pts.push((b as f64, y(r)));
                }
            }
            baselines.push((p, r.map(|r| r.total)));
            if !step() {
                return None;
            }
        }
        series.push((p, pts));
    }
    Some(ChartData {
        series,
        baselines,
        key,
    })
}

/// A chart sweep running on its own thread.
#[derive(Debug)]
pub struct ChartJob {
    rx: Receiver<JobMsg>,
    cancel: Arc<AtomicBool>,
    pub(super) key: ChartKey,
    /// Evaluations finished and in all.
    pub done: usize,
    pub total: usize,
}

#[derive(Debug)]
enum JobMsg {
    Progress(usize),
    Done(Box<ChartData>),
}

impl ChartJob {
    pub(super) fn start(
        net: Arc<Network>,
        cm: Arc<CostModel>,
        opts: EvalOptions,
        key: ChartKey,
    ) -> ChartJob {
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let job_key = key.clone();
        std::thread::spawn(move || {
            let progress =
                |n: usize| !stop.load(Ordering::Relaxed) && tx.send(JobMsg::Progress(n)).is_ok();
            if let Some(c) = sweep(&net, &cm, &opts, job_key, &progress) {
                let _ = tx.send(JobMsg::Done(Box::new(c)));
            }
        });
        ChartJob {
            rx,
            cancel,
            key,
            done: 0,
            total: chart_steps(),
        }
    }
}

/// Takes a job's messages: (something changed, the finished chart).
pub(super) fn drain(job: &mut Option<ChartJob>) -> (bool, Option<ChartData>) {
    let Some(j) = job.as_mut() else {
        return (false, None);
    };
    let mut changed = false;
    loop {
        match j.rx.try_recv() {
            Ok(JobMsg::Progress(n)) => {
                j.done = n;
                changed = true;
            }
            Ok(JobMsg::Done(c)) => {
                *job = None;
                return (true, Some(*c));
            }
            Err(TryRecvError::Empty) => return (changed, None),
            Err(TryRecvError::Disconnected) => {
                *job = None;
                return (true, None);
            }
        }
    }
}

impl Drop for ChartJob {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}
