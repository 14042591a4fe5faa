//! `hequant plot`: charts as PNG or SVG (by the output's extension).

use super::sweep::SweepOptions;
use super::{ModelArgs, eval_options, load_network, parse_protocols};
use crate::model;
use crate::plot::{self, Chart, ImageFormat, Size};
use crate::protocol::{CostModel, Protocol};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args)]
pub struct PlotArgs {
    #[command(subcommand)]
    pub chart: PlotChart,
}

/// Where the image goes.
#[derive(Args, Clone)]
pub struct Output {
    /// Output image: .png or .svg.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Image size WIDTHxHEIGHT in pixels (default: one paper column, 720x450; `layers`
    /// grows taller with the number of layers).
    #[arg(long)]
    pub size: Option<String>,
}

#[derive(Subcommand)]
pub enum PlotChart {
    /// Total communication against the uniform bit width, one line per protocol.
    CommVsBits {
        #[command(flatten)]
        sweep: SweepOptions,
        #[command(flatten)]
        out: Output,
    },
    /// Latency against communication over a sweep, with the Pareto front.
    Pareto {
        #[command(flatten)]
        sweep: SweepOptions,
        #[command(flatten)]
        out: Output,
    },
    /// Communication per linear layer, split into client->server, server->client and non-linear.
    Layers {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        out: Output,
    },
    /// Bytes of the linear layers per image (HE, plus the OT conversions of CRT slots)
    /// against the uniform bit width, one line per slot
    /// scheme: hequant-naive, hequant-packed with each sound scheme alone and with all of
    /// them, and hequant.
    Packing {
        #[arg(long, short = 'n', default_value = "resnet18-cifar100", help = super::NETWORK_HELP)]
        network: String,
        #[arg(long, default_value = "2..8", help = super::BITS_MANY_HELP)]
        bits: String,
        /// Images per inference (bytes are per image: the inference's over the batch).
        #[arg(long, default_value_t = 4)]
        batch: u64,
        /// Byte counts on the protocol's own wire format (native) or bit-packed.
        #[arg(long, value_enum, default_value = "native")]
        wire: super::WireArg,
        #[command(flatten)]
        out: Output,
    },
    /// Total communication of several protocols, split as in `layers`.
    // --protocols names the protocols; -p is refused (not shown).
    #[command(mut_arg("protocol", |a| a.hide(true)))]
    Compare {
        #[command(flatten)]
        model: ModelArgs,
        /// Protocols to compare (comma-separated).
        #[arg(long, default_value = super::sweep::DEFAULT_PROTOCOLS)]
        protocols: String,
        #[command(flatten)]
        out: Output,
    },
}

pub fn run(a: &PlotArgs, cm: &CostModel) -> Result<(), String> {
    let out = match &a.chart {
        PlotChart::CommVsBits { out, .. }
        | PlotChart::Pareto { out, .. }
        | PlotChart::Layers { out, .. }
        | PlotChart::Compare { out, .. }
        | PlotChart::Packing { out, .. } => out,
    };
    // Check the output before any work.
    let format = ImageFormat::from_path(&out.output).map_err(|e| e.to_string())?;
    let size = out
        .size
        .as_deref()
        .map(Size::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    let bytes = match &a.chart {
        PlotChart::CommVsBits { sweep, .. } => {
            let s = sweep.run(cm)?;
            plot::render(&Chart::CommVsBits(&s), format, size.unwrap_or(Size::COLUMN))
        }
        PlotChart::Pareto { sweep, .. } => {
            let s = sweep.run(cm)?;
            plot::render(&Chart::Pareto(&s), format, size.unwrap_or(Size::COLUMN))
        }
        PlotChart::Layers { model: m, .. } => {
            let net = load_network(&m.network)?;
            let o = eval_options(m, Protocol::parse(super::protocol_or_default(&m.protocol))?, cm)?;
            let r = model::evaluate(&net, &o, cm).map_err(|e| e.to_string())?;
            let rows = plot::layer_bars(&r).len();
            plot::render(
                &Chart::Layers(&r),
                format,
                size.unwrap_or(Size::for_rows(rows)),
            )
        }
        PlotChart::Packing {
            network,
            bits,
            batch,
            wire,
            ..
        } => {
            let l = packing_lines(network, bits, *batch, *wire, cm)?;
            plot::render(&Chart::Lines(&l), format, size.unwrap_or(Size::COLUMN))
        }
        PlotChart::Compare {
            model: m,
            protocols,
            ..
        } => {
            if let Some(p) = &m.protocol {
                return Err(format!(
                    "plot compare draws the protocols of --protocols, not -p/--protocol: write --protocols {p}"
                ));
            }
            let net = load_network(&m.network)?;
            let mut reports = Vec::new();
            for p in parse_protocols(protocols)? {
                let o = eval_options(m, p, cm)?;
                reports.push(model::evaluate(&net, &o, cm).map_err(|e| e.to_string())?);
            }
            plot::render(
                &Chart::Compare(&reports),
                format,
                size.unwrap_or(Size::COLUMN),
            )
        }
    }
    .map_err(|e| e.to_string())?;
    crate::io::write_atomic(&out.output, &bytes)?;
    eprintln!("wrote {}", out.output.display());
    Ok(())
}

/// The series of `hequant plot packing`: (label, protocol, --slots).
pub const PACKING_SERIES: [(&str, &str, &str); 6] = [
    (
        "hequant-naive (no packing)",
        "hequant-naive",
        "exact,crt,client",
    ),
    ("hequant-packed, slots exact", "hequant-packed", "exact"),
    ("hequant-packed, slots client", "hequant-packed", "client"),
    ("hequant-packed, slots crt", "hequant-packed", "crt"),
    (
        "hequant-packed, slots exact+crt+client",
        "hequant-packed",
        "exact,crt,client",
    ),
    ("hequant (exact+crt+client)", "hequant", "exact,crt,client"),
];

/// Linear bytes per image of every [`PACKING_SERIES`] at every width of `bits`.
fn packing_lines(
    network: &str,
    bits: &str,
    batch: u64,
    wire: super::WireArg,
    cm: &CostModel,
) -> Result<plot::Lines, String> {
    let widths = super::uniform_widths(bits)?;
    let net = load_network(network)?;
    let mut series = Vec::new();
    for (label, protocol, slots) in PACKING_SERIES {
        let mut pts = Vec::new();
        for &b in &widths {
            let m = super::ModelArgs {
                network: network.into(),
                protocol: Some(protocol.into()),
                bits: Some(format!("w{b}a{b}")),
                bits_all: false,
                link: Default::default(),
                wire,
                bn: super::BnArg::Auto,
                relu: None,
                objective: "comm".into(),
                allow_insecure: false,
                batch,
                slots: slots.into(),
                accumulator: super::AccumulatorArg::Worst,
                cheetah: "2025".into(),
                nonlinear: Default::default(),
            };
            let o = eval_options(&m, Protocol::parse(protocol)?, cm)?;
            let r = model::evaluate(&net, &o, cm).map_err(|e| e.to_string())?;
            pts.push((b, r.linear_with_conversions_per_image().round() as u64));
        }
        series.push((label.to_string(), pts));
    }
    Ok(plot::Lines {
        caption: format!(
            "{}: linear bytes per image by slot scheme (batch {batch})",
            net.name
        ),
        x_desc: "bit width b (wbab; first and last layer w8a8; bits)".into(),
        y_desc: "HE + CRT conversions per image (MB)".into(),
        series,
    })
}
