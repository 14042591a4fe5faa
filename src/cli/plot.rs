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
    /// Total communication of several protocols, split as in `layers`.
    Compare {
        #[command(flatten)]
        model: ModelArgs,
        /// Protocols to compare (comma-separated).
        #[arg(long, default_value = "cheetah,hequant-naive,hequant-packed,hequant")]
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
        | PlotChart::Compare { out, .. } => out,
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
            let o = eval_options(m, Protocol::parse(&m.protocol)?, cm)?;
            let r = model::evaluate(&net, &o, cm).map_err(|e| e.to_string())?;
            let rows = plot::layer_bars(&r).len();
            plot::render(
                &Chart::Layers(&r),
                format,
                size.unwrap_or(Size::for_rows(rows)),
            )
        }
        PlotChart::Compare {
            model: m,
            protocols,
            ..
        } => {
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
