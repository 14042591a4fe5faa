//! `hequant mixed`: per-layer bit widths under a communication, latency or proxy budget.

use super::{BnArg, ModelArgs, WireArg, eval_options, load_network};
use crate::export::Format;
use crate::export::table::{COLUMNS, Shrink, Table, aligned_left, fit, totals_text, wrap};
use crate::mapper::mixed::{Budget, Metric, Mixed, mixed_with_progress};
use crate::mapper::sweep::BitRange;
use crate::protocol::{CostModel, Protocol};
use crate::spec::mapping::MappingFile;
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Write;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
#[command(group(ArgGroup::new("budget").required(true).args(["budget_mb", "budget_s", "proxy_budget"])))]
pub struct MixedArgs {
    #[arg(long, short = 'n', default_value = "resnet18-cifar100", help = super::NETWORK_HELP)]
    pub network: String,
    #[arg(long, short = 'p', help = super::PROTOCOL_HELP)]
    pub protocol: Option<String>,
    /// Communication budget in MB (10^6 bytes, both directions): minimise the proxy under it.
    #[arg(long)]
    pub budget_mb: Option<f64>,
    /// Latency budget in seconds on --link: minimise the proxy under it.
    #[arg(long)]
    pub budget_s: Option<f64>,
    /// Precision-loss proxy budget: minimise the cost (--metric) under it.
    #[arg(long)]
    pub proxy_budget: Option<f64>,
    /// Cost minimised under --proxy-budget.
    #[arg(long, value_enum, default_value = "comm")]
    pub metric: MetricArg,
    /// Widths each layer's weights and activations may take: a range LO..HI (2..8) or a set
    /// of consecutive widths (4,5,6).
    #[arg(long, alias = "bits-set", default_value = "2..8")]
    pub bits: String,
    /// Per-layer sensitivities (format "hequant-sensitivity"); default: fan-in of each layer.
    #[arg(long)]
    pub sensitivity: Option<PathBuf>,
    #[command(flatten)]
    pub link: super::LinkArgs,
    /// Byte counts on the protocol's own wire format (native) or bit-packed for every protocol.
    #[arg(long, value_enum, default_value = "native")]
    pub wire: WireArg,
    /// Images per inference; costs are reported per inference.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Slot schemes the packing protocols may use: exact, crt, client, paper, comma-separated.
    #[arg(long, default_value = "exact,crt,client")]
    pub slots: String,
    /// Accumulator bound of quantized layers: worst case, or the layer's own weights.
    #[arg(long, value_enum, default_value = "worst")]
    pub accumulator: super::AccumulatorArg,
    #[command(flatten)]
    pub nonlinear: super::NonlinearArgs,
    /// Points of the front to evaluate exactly and show.
    #[arg(long, default_value_t = 8)]
    pub points: usize,
    /// Write the chosen widths and mappings to this file (for `hequant estimate --mapping`).
    #[arg(long)]
    pub save: Option<PathBuf>,
    #[command(flatten)]
    pub out: super::OutputArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum MetricArg {
    Comm,
    Latency,
}

pub fn run(a: &MixedArgs, cm: &CostModel) -> Result<(), String> {
    let format = a.out.format("mixed", &[Format::Table, Format::Json])?;
    let (lo, hi) = crate::model::BitsSpec::parse_flag("--bits", &a.bits)?.consecutive("--bits")?;
    let set = BitRange { lo, hi };
    let positive = |v: f64, flag: &str| -> Result<f64, String> {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(format!("{flag} {v}: must be a positive number"))
        }
    };
    let (metric, budget) = match (a.budget_mb, a.budget_s, a.proxy_budget) {
        (Some(mb), _, _) => (
            Metric::Comm,
            Budget::Cost(positive(mb, "--budget-mb")? * 1e6),
        ),
        (_, Some(s), _) => (Metric::Latency, Budget::Cost(positive(s, "--budget-s")?)),
        (_, _, Some(p)) => (
            match a.metric {
                MetricArg::Comm => Metric::Comm,
                MetricArg::Latency => Metric::Latency,
            },
            Budget::Proxy(positive(p, "--proxy-budget")?),
        ),
        _ => return Err("give one of --budget-mb, --budget-s, --proxy-budget".into()),
    };
    let net = load_network(&a.network)?;
    let protocol = Protocol::parse(super::protocol_or_default(&a.protocol))?;
    if !protocol.is_quantized() {
        return Err(format!(
            "protocol {protocol} runs fixed point: bit widths do not change its cost (use hequant-naive, hequant-packed or hequant)"
        ));
    }
    let sens = match &a.sensitivity {
        Some(p) => Some(crate::spec::sensitivity::load(p, &net).map_err(|e| e.to_string())?),
        None => None,
    };
    let margs = ModelArgs {
        network: a.network.clone(),
        protocol: a.protocol.clone(),
        bits: None,
        bits_all: true,
        link: a.link.clone(),
        wire: a.wire,
        bn: BnArg::Auto,
        relu: None,
        objective: "comm".into(),
        allow_insecure: false,
        batch: a.batch,
        slots: a.slots.clone(),
        accumulator: a.accumulator,
        cheetah: "2025".into(),
        nonlinear: a.nonlinear.clone(),
    };
    let base = eval_options(&margs, protocol, cm)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} measuring cost tables: {pos} evaluations {elapsed}",
        ) {
            b.set_style(style);
        }
        b
    } else {
        ProgressBar::hidden()
    };
    let m = mixed_with_progress(
        &net,
        &base,
        cm,
        set,
        metric,
        budget,
        sens.as_ref(),
        a.points,
        &|| bar.inc(1),
    );
    bar.finish_and_clear();
    let m = m.map_err(|e| e.to_string())?;
    if let Some(path) = &a.save {
        let f = MappingFile::from_report(&a.network, &m.report);
        crate::io::write_atomic(path, f.to_toml().as_bytes())?;
    }
    a.out.emit(&match format {
        Format::Json => serde_json::to_string_pretty(&m).map_err(|e| e.to_string())? + "\n",
        _ => table(&m, a.sensitivity.is_some(), a.out.wide),
    })?;
    if let Some(path) = &a.save {
        eprintln!("saved the chosen widths and mappings to {}", path.display());
    }
    Ok(())
}

fn mean(v: impl Iterator<Item = u32>) -> f64 {
    let (s, n) = v.fold((0u64, 0u64), |(s, n), x| (s + x as u64, n + 1));
    s as f64 / n.max(1) as f64
}

/// The result as terminal text: the front, then the chosen widths per layer; unless
/// `wide`, within [`COLUMNS`] (long lines wrapped, long layer names cut).
pub fn table(m: &Mixed, user_sensitivity: bool, wide: bool) -> String {
    let show = |v: f64| m.metric.show(v);
    let mut out = String::new();
    let budget = match m.budget {
        Budget::Cost(b) => format!(
            "{} {} budget",
            show(b),
            match m.metric {
                Metric::Comm => "communication",
                Metric::Latency => "latency",
            }
        ),
        Budget::Proxy(p) => format!("proxy budget {p:.3e}"),
    };
    let _ = writeln!(
        out,
        "{} under {}: per-layer widths from {} (weights and activations), {}; link {}",
        m.network, m.protocol, m.set, budget, m.report.link.name
    );
    for w in &m.report.warnings {
        let _ = writeln!(out, "!! {w}");
    }
    let _ = writeln!(
        out,
        "proxy: sum over layers of s_w 2^(-2w) + s_a 2^(-2a), s = {}",
        if user_sensitivity {
            "the sensitivity file"
        } else {
            "the layer's fan-in (default)"
        }
    );
    let first = m.reference.first().map(|r| r.1);
    let reference = match first {
        Some(b) if m.reference.iter().all(|r| r.1 == b) => format!("{b} everywhere"),
        _ => format!(
            "mixed widths (mean w {:.2}, mean a {:.2})",
            mean(m.reference.iter().map(|r| r.1.w.get())),
            mean(m.reference.iter().map(|r| r.1.a.get()))
        ),
    };
    let _ = writeln!(
        out,
        "per-layer tables measured in {} round(s); the chosen point's are around {reference} (exact total {})",
        m.rounds,
        show(m.reference_cost)
    );
    let _ = writeln!(
        out,
        "exact Pareto front of those tables: {} points; shown evenly spread, each evaluated exactly:",
        m.front_size
    );
    let mut t = Table {
        header: ["", "table cost", "exact cost", "proxy", "mean w", "mean a"]
            .map(String::from)
            .to_vec(),
        rows: Vec::new(),
    };
    for (i, p) in m.points.iter().enumerate() {
        t.rows.push(vec![
            if i == m.chosen {
                "chosen".into()
            } else {
                String::new()
            },
            show(p.table_cost),
            show(p.exact_cost),
            format!("{:.3e}", p.proxy),
            format!("{:.2}", mean(p.bits.iter().map(|b| b.1.w.get()))),
            format!("{:.2}", mean(p.bits.iter().map(|b| b.1.a.get()))),
        ]);
    }
    if !wide {
        out = wrap(&out, COLUMNS);
    }
    out.push_str(&aligned_left(&t, 1));
    let c = &m.points[m.chosen];
    let mut t = Table {
        header: ["layer", "bits", "ring", "bytes", "latency"]
            .map(String::from)
            .to_vec(),
        rows: Vec::new(),
    };
    for (name, b) in &c.bits {
        if let Some(l) = m.report.layers.iter().find(|l| &l.name == name) {
            t.rows.push(vec![
                name.clone(),
                b.to_string(),
                l.ring_bits_out.to_string(),
                crate::units::human_bytes(l.bytes()),
                crate::units::human_seconds(l.latency_s),
            ]);
        }
    }
    let _ = writeln!(out, "\nchosen widths:");
    if !wide {
        fit(&mut t, &[(0, Shrink::Middle(12))], COLUMNS);
    }
    out.push_str(&aligned_left(&t, 2));
    let totals = totals_text(&m.report) + "\n";
    out.push_str(&if wide { totals } else { wrap(&totals, COLUMNS) });
    out
}
