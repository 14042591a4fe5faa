//! `hequant sweep`: totals of several protocols at every uniform bit width of a range.

use super::{BnArg, ModelArgs, OutputArgs, WireArg, eval_options, load_network, parse_protocols};
use crate::export::Format;
use crate::export::table::{COLUMNS, Table, aligned_left, join_wrapped, wrap};
use crate::mapper::sweep::{BitRange, Sweep, sweep};
use crate::protocol::{CostModel, Protocol};
use crate::units::{human_bytes, human_seconds};
use clap::Args;
use std::fmt::Write;

pub const DEFAULT_PROTOCOLS: &str = "cheetah,hequant-naive,hequant-packed,hequant";

/// The options of a sweep (also used by `hequant plot`).
#[derive(Args, Clone)]
pub struct SweepOptions {
    #[arg(long, short = 'n', default_value = "resnet18-cifar100", help = super::NETWORK_HELP)]
    pub network: String,
    /// Protocols to compare (comma-separated).
    #[arg(long, default_value = DEFAULT_PROTOCOLS)]
    pub protocols: String,
    #[arg(long, default_value = "2..16", help = super::BITS_MANY_HELP)]
    pub bits: String,
    /// Apply the widths to the first and last weighted layers too (otherwise they stay w8a8).
    #[arg(long)]
    pub bits_all: bool,
    #[command(flatten)]
    pub link: super::LinkArgs,
    /// Byte counts on the protocol's own wire format (native) or bit-packed for every protocol.
    #[arg(long, value_enum, default_value = "native")]
    pub wire: WireArg,
    /// Search objective for protocols that search: comm, latency, or comm,latency.
    #[arg(long, default_value = "comm")]
    pub objective: String,
    /// Images per inference; costs are reported per inference.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Slot schemes the packing protocols may use: exact, crt, client, paper, comma-separated.
    #[arg(long, default_value = "exact,crt,client")]
    pub slots: String,
    /// Accumulator bound of quantized layers: worst case, or the layer's own weights.
    #[arg(long, value_enum, default_value = "worst")]
    pub accumulator: super::AccumulatorArg,
    /// Which OpenCheetah code the cheetah protocol models: 2025 (current) or 2022.
    #[arg(long, default_value = "2025")]
    pub cheetah: String,
    #[command(flatten)]
    pub nonlinear: super::NonlinearArgs,
}

impl SweepOptions {
    /// Runs the sweep these options describe.
    pub fn run(&self, cm: &CostModel) -> Result<Sweep, String> {
        let widths = super::uniform_widths(&self.bits)?;
        let protocols = parse_protocols(&self.protocols)?;
        let net = load_network(&self.network)?;
        let margs = ModelArgs {
            network: self.network.clone(),
            protocol: None,
            bits: None,
            bits_all: self.bits_all,
            link: self.link.clone(),
            wire: self.wire,
            bn: BnArg::Auto,
            relu: None,
            objective: self.objective.clone(),
            allow_insecure: false,
            batch: self.batch,
            slots: self.slots.clone(),
            accumulator: self.accumulator,
            cheetah: self.cheetah.clone(),
            nonlinear: self.nonlinear.clone(),
        };
        let base = eval_options(&margs, Protocol::Hequant, cm)?;
        let mut s = sweep_widths(&net, &base, cm, &protocols, &widths, self.bits_all)?;
        if protocols.contains(&Protocol::Cheetah) {
            s.notes
                .push(format!("cheetah models the {}", base.cheetah.describe()));
        }
        Ok(s)
    }
}

/// [`sweep`] at the uniform widths `widths` (ascending): one sweep of their range when they
/// are consecutive, else one sweep per width with the Pareto front taken over all of them.
fn sweep_widths(
    net: &crate::workload::Network,
    base: &crate::model::EvalOptions,
    cm: &CostModel,
    protocols: &[Protocol],
    widths: &[u32],
    all_layers: bool,
) -> Result<Sweep, String> {
    let (lo, hi) = match widths {
        [first, .., last] => (*first, *last),
        [one] => (*one, *one),
        [] => return Err("--bits: no width to sweep".into()),
    };
    let range = |lo, hi| BitRange { lo, hi };
    if (hi - lo) as usize + 1 == widths.len() {
        return sweep(net, base, cm, protocols, range(lo, hi), all_layers)
            .map_err(|e| e.to_string());
    }
    let mut points = Vec::new();
    let mut s = None;
    for &b in widths {
        let one =
            sweep(net, base, cm, protocols, range(b, b), all_layers).map_err(|e| e.to_string())?;
        points.extend(one.points.iter().cloned());
        s = Some(one);
    }
    let mut s = s.ok_or("--bits: no width to sweep")?;
    let rank = |p: &Protocol| protocols.iter().position(|q| q == p);
    points.sort_by_key(|p| (rank(&p.protocol), p.bits));
    let objectives: Vec<Vec<f64>> = points
        .iter()
        .map(|p| vec![-(p.bits as f64), p.bytes as f64, p.latency_s])
        .collect();
    let front = crate::mapper::pareto::front(&objectives);
    for (i, p) in points.iter_mut().enumerate() {
        p.pareto = front.contains(&i);
    }
    s.points = points;
    s.bits = range(lo, hi);
    let names: Vec<String> = widths.iter().map(|b| format!("w{b}a{b}")).collect();
    s.notes.push(format!(
        "widths: the set {} (in JSON, bits gives its lowest and highest)",
        names.join(",")
    ));
    Ok(s)
}

#[derive(Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub sweep: SweepOptions,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(a: &SweepArgs, cm: &CostModel) -> Result<(), String> {
    let format = a
        .out
        .format("sweep", &[Format::Table, Format::Json, Format::Csv])?;
    let s = a.sweep.run(cm)?;
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&s).map_err(|e| e.to_string())? + "\n",
        Format::Csv => csv(&s)?,
        _ => table(&s, a.out.wide),
    };
    a.out.emit(&text)
}

/// The widths of a sweep's points: `LO..HI` when every width between is there, else the list.
fn widths_text(s: &Sweep) -> String {
    let mut v: Vec<u32> = s.points.iter().map(|p| p.bits).collect();
    v.sort_unstable();
    v.dedup();
    match v.as_slice() {
        [lo, .., hi] if (hi - lo) as usize + 1 != v.len() => {
            let names: Vec<String> = v.iter().map(|b| format!("w{b}a{b}")).collect();
            names.join(",")
        }
        _ => s.bits.to_string(),
    }
}

/// The sweep as a terminal table, then the Pareto front: every column (`wide`), or within
/// [`COLUMNS`] without the linear/non-linear split and the front on several lines.
pub fn table(s: &Sweep, wide: bool) -> String {
    let mut out = format!(
        "{}: uniform bit widths {} ({}) on the {} link; * = on the Pareto front of (bits, communication, latency)\n",
        s.network,
        widths_text(s),
        if s.bits_all {
            "every layer"
        } else {
            "first and last weighted layer w8a8"
        },
        s.link
    );
    for n in &s.notes {
        let _ = writeln!(out, "!! {n}");
    }
    if !wide {
        out = wrap(&out, COLUMNS);
    }
    let mut t = Table {
        header: [
            "protocol",
            "bits",
            "front",
            "total",
            "client->server",
            "server->client",
            "linear (HE)",
            "non-linear (OT)",
            "rounds",
            "latency",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for p in &s.points {
        t.rows.push(vec![
            p.protocol.name().into(),
            format!("w{}a{}", p.bits, p.bits),
            if p.pareto { "*".into() } else { String::new() },
            human_bytes(p.bytes),
            human_bytes(p.bytes_client_to_server),
            human_bytes(p.bytes_server_to_client),
            human_bytes(p.bytes_linear),
            human_bytes(p.bytes_nonlinear),
            p.rounds.to_string(),
            human_seconds(p.latency_s),
        ]);
    }
    if !wide {
        // The linear (HE) / non-linear (OT) split is in --wide, JSON and CSV.
        for row in t.rows.iter_mut().chain(std::iter::once(&mut t.header)) {
            row.drain(6..8);
        }
    }
    out.push_str(&aligned_left(&t, 3));
    let front: Vec<String> = s
        .front()
        .map(|p| {
            format!(
                "{} w{}a{} ({}, {})",
                p.protocol.name(),
                p.bits,
                p.bits,
                human_bytes(p.bytes),
                human_seconds(p.latency_s)
            )
        })
        .collect();
    if wide {
        let _ = writeln!(out, "Pareto front: {}", front.join("; "));
    } else {
        out.push_str(&join_wrapped("Pareto front:", &front, "; ", COLUMNS));
    }
    out
}

/// The sweep as CSV: one row per protocol and width, exact integers.
pub fn csv(s: &Sweep) -> Result<String, String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let e = |e: csv::Error| e.to_string();
    w.write_record([
        "network",
        "protocol",
        "bits",
        "bytes",
        "bytes_client_to_server",
        "bytes_server_to_client",
        "bytes_linear",
        "bytes_nonlinear",
        "rounds",
        "latency_s",
        "pareto",
    ])
    .map_err(e)?;
    for p in &s.points {
        w.write_record([
            s.network.clone(),
            p.protocol.name().into(),
            p.bits.to_string(),
            p.bytes.to_string(),
            p.bytes_client_to_server.to_string(),
            p.bytes_server_to_client.to_string(),
            p.bytes_linear.to_string(),
            p.bytes_nonlinear.to_string(),
            p.rounds.to_string(),
            format!("{:.6}", p.latency_s),
            p.pareto.to_string(),
        ])
        .map_err(e)?;
    }
    let bytes = w.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| e.to_string())
}
