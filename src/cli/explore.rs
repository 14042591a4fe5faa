//! `hequant explore`: the interactive explorer, or the `estimate` report on a pipe.

use super::{ModelArgs, emit, eval_options};
use crate::export::{self, Format};
use crate::model;
use crate::protocol::CostModel;
use crate::tui::App;
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Args)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Open a saved mapping (its network, protocol and per-layer choices replace --network
    /// and --protocol).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Print the report as `estimate` does instead of starting the explorer
    /// (also when standard output is not a terminal).
    #[arg(long)]
    pub no_tui: bool,
    #[arg(long, help = super::WIDE_HELP)]
    pub wide: bool,
    /// Where `w` saves the mapping.
    #[arg(long, default_value = "mapping.toml")]
    pub save: PathBuf,
    /// Where `e` exports the report; the extension picks the format (.csv, .md, .txt; else JSON).
    #[arg(long, default_value = "report.json")]
    pub export: PathBuf,
    /// Where `i` writes the chart image (.png or .svg).
    #[arg(long, default_value = "chart.png")]
    pub chart: PathBuf,
}

pub fn run(a: &ExploreArgs, cm: &CostModel) -> Result<(), String> {
    let (net, protocol, overrides, net_spec) = super::target(&a.model, a.mapping.as_deref())?;
    let mut opts = eval_options(&a.model, protocol, cm)?;
    opts.overrides = overrides;
    if a.no_tui || !std::io::stdout().is_terminal() {
        let r = model::evaluate(&net, &opts, cm).map_err(|e| e.to_string())?;
        return emit(&export::render(&[r], Format::Table, a.wide), None);
    }
    if a.wide {
        return Err(
            "--wide widens the printed report: add --no-tui (the explorer fits its own window)"
                .into(),
        );
    }
    let mut app = App::new(net, cm.clone(), &net_spec, opts)?;
    app.save_path = a.save.clone();
    app.export_path = a.export.clone();
    app.chart_path = a.chart.clone();
    crate::tui::event::run(&mut app)
}
