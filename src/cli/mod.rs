//! Command-line commands wiring the library together; no business logic here.

use crate::export::Format;
use crate::mapper::Objective;
use crate::model::{self, BitsPolicy, BnPolicy, EvalOptions};
use crate::protocol::{CostModel, Link, Protocol, ReluVariant, WireFormat};
use crate::units::{BitsPerSecond, human_bytes};
use crate::workload::Network;
use clap::{Args, Parser, Subcommand};

mod calibrate;
mod estimate;
mod explore;
mod import;
mod mixed;
mod plot;
mod search;
mod sweep;
mod verify;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "hequant",
    version,
    about = "Cost model, design-space search, explorer and real-HE verifier for HE-based two-party inference"
)]
pub struct Cli {
    /// Directory of cost-model files that replace the shipped ones (missing files fall back).
    #[arg(long, global = true, value_name = "DIR")]
    pub cost_models: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Predict per-layer and total communication, rounds and latency.
    Estimate(Box<estimate::EstimateArgs>),
    /// Import an ONNX model as a network file, with a summary of what was imported.
    Import(import::ImportArgs),
    /// Find the best mapping of every linear layer by exhaustive search.
    Search(Box<search::SearchArgs>),
    /// Totals of several protocols at every uniform bit width of a range, and the Pareto front.
    Sweep(Box<sweep::SweepArgs>),
    /// Per-layer bit widths that minimise a precision-loss proxy under a budget, with the front.
    Mixed(Box<mixed::MixedArgs>),
    /// Draw charts (PNG or SVG): comm-vs-bits, pareto, layers, compare.
    Plot(Box<plot::PlotArgs>),
    /// Explore a network interactively in the terminal, every number recomputed on each key.
    Explore(Box<explore::ExploreArgs>),
    /// List the shipped networks with layers, MACs and ReLU count.
    Networks,
    /// List the protocol models and their parameter files.
    Protocols,
    /// Run the linear layers with real HE as two parties; compare with the model.
    Verify(Box<verify::VerifyArgs>),
    /// Measure this machine's HE operation costs and write a compute profile.
    Calibrate(calibrate::CalibrateArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to standard output: `hequant man > hequant.1`.
    Man,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccumulatorArg {
    /// b_a + b_w + ceil(log2 fan_in)
    Worst,
    /// b_a + 1 + ceil(log2 max_o sum |W_o|) of the layer's quantized weights
    Weights,
}

/// Help of every `--network`: one text wherever the flag appears.
pub const NETWORK_HELP: &str =
    "Network file (TOML or ONNX), or the name of a shipped network (see `hequant networks`)";

/// Help of every `--wide`.
pub const WIDE_HELP: &str = "Show every column of the tables (by default they fit 100 \
     columns: long notes move to footnotes, long names are cut with a mark)";

/// Help of every `--protocol/-p`.
pub const PROTOCOL_HELP: &str = "Protocol model, see `hequant protocols` (default: hequant)";

/// The protocol `-p` names, or the default.
pub fn protocol_or_default(p: &Option<String>) -> &str {
    p.as_deref().unwrap_or("hequant")
}

/// Help of `--bits` where a command takes one width.
pub const BITS_ONE_HELP: &str = "One bit width for the weighted layers, e.g. w4a4 or w8a4 (a \
     number b is wbab; the first and last layer stay w8a8 unless --bits-all)";

/// Help of `--bits` where a command takes several uniform widths.
pub const BITS_MANY_HELP: &str = "Bit widths: a range LO..HI (2..8 is w2a2 to w8a8, both \
     included) or a set (4,6,8 or w4a4,w8a8); each point is a uniform width wbab";

/// `--bits` of a command that takes one width ([`model::BitsSpec`]).
pub fn one_width(s: &str) -> Result<crate::workload::BitWidths, String> {
    model::BitsSpec::parse_flag("--bits", s)?.one("--bits")
}

/// `--bits` of a command that evaluates uniform widths `w{b}a{b}`: b ascending.
pub fn uniform_widths(s: &str) -> Result<Vec<u32>, String> {
    model::BitsSpec::parse_flag("--bits", s)?.uniform("--bits")
}

/// The link of the latency model, shared by every command that prices latency.
#[derive(Args, Clone)]
pub struct LinkArgs {
    /// Link for the latency model: lan, wan, or a name from the links file.
    #[arg(long, default_value = "lan")]
    pub link: String,
    /// Custom link bandwidth in Mbit/s (with --rtt-ms; replaces --link).
    #[arg(long, requires = "rtt_ms")]
    pub bandwidth_mbps: Option<f64>,
    /// Custom link round-trip time in milliseconds (with --bandwidth-mbps; replaces --link).
    #[arg(long, requires = "bandwidth_mbps")]
    pub rtt_ms: Option<f64>,
}

impl Default for LinkArgs {
    fn default() -> Self {
        LinkArgs {
            link: "lan".into(),
            bandwidth_mbps: None,
            rtt_ms: None,
        }
    }
}

impl LinkArgs {
    /// The link these options name, and its name for reports.
    pub fn resolve(&self, cm: &CostModel) -> Result<(Link, String), String> {
        match (self.bandwidth_mbps, self.rtt_ms) {
            (Some(bw), Some(rtt)) => {
                let bandwidth_bps = BitsPerSecond::try_new(bw * 1e6)
                    .map_err(|e| format!("--bandwidth-mbps {bw}: {e}"))?;
                if !(rtt.is_finite() && rtt >= 0.0) {
                    return Err(format!("--rtt-ms {rtt}: must be a non-negative number"));
                }
                let link = Link {
                    bandwidth_bps,
                    rtt_s: rtt / 1e3,
                };
                Ok((link, format!("custom {bw} Mbit/s {rtt} ms")))
            }
            (None, None) => Ok((cm.link(&self.link)?, self.link.clone())),
            _ => Err("give both --bandwidth-mbps and --rtt-ms for a custom link".into()),
        }
    }
}

/// Options shared by every command that evaluates a network.
#[derive(Args, Clone)]
pub struct ModelArgs {
    #[arg(long, short = 'n', default_value = "resnet18-cifar100", help = NETWORK_HELP)]
    pub network: String,
    #[arg(long, short = 'p', help = PROTOCOL_HELP)]
    pub protocol: Option<String>,
    #[arg(long, help = BITS_ONE_HELP)]
    pub bits: Option<String>,
    /// Apply --bits to the first and last weighted layers too.
    #[arg(long)]
    pub bits_all: bool,
    #[command(flatten)]
    pub link: LinkArgs,
    /// Byte counts on the protocol's own wire format (native) or bit-packed for every protocol.
    #[arg(long, value_enum, default_value = "native")]
    pub wire: WireArg,
    /// Batch norms: fold those that follow a conv (auto) or price each with HE (separate).
    #[arg(long, value_enum, default_value = "auto")]
    pub bn: BnArg,
    /// ReLU protocol: the protocol file's default, the exact comparison, or Cheetah's 2023 approximate ReLU.
    #[arg(long, value_enum)]
    pub relu: Option<ReluArg>,
    /// Search objective for protocols that search: comm, latency, or comm,latency.
    #[arg(long, default_value = "comm")]
    pub objective: String,
    /// Accept parameter sets below 128-bit security (every output is then marked insecure).
    #[arg(long)]
    pub allow_insecure: bool,
    /// Images per inference; costs are reported per inference and per image.
    #[arg(long, default_value_t = 1)]
    pub batch: u64,
    /// Slot schemes the packing protocols may use: exact, crt, client, paper (not sound for
    /// secret shares), comma-separated.
    #[arg(long, default_value = "exact,crt,client")]
    pub slots: String,
    /// Accumulator bound of quantized layers: the worst case over all b_w-bit weights, or
    /// the layer's own weights (largest output-channel L1 norm; networks imported from ONNX
    /// models with weights)
    #[arg(long, value_enum, default_value = "worst")]
    pub accumulator: AccumulatorArg,
    /// Which OpenCheetah code the cheetah protocol models: 2025 (the current code:
    /// approximate ReLU, msb0-heuristic truncation) or 2022 (the paper's: exact ReLU,
    /// faithful truncation); --relu still overrides its ReLU
    #[arg(long, default_value = "2025")]
    pub cheetah: String,
    #[command(flatten)]
    pub nonlinear: NonlinearArgs,
}

/// Options of the non-linear layers shared by estimate, search, sweep, mixed and explore.
#[derive(Args, Clone, Default)]
pub struct NonlinearArgs {
    /// Approximate fused ReLU + requantization (opt-in): compare only the top l - s bits after
    /// a local truncation of the shares; error up to 1 LSB (see the report's warnings).
    #[arg(long)]
    pub approx: bool,
    /// Keep only N ReLUs over the network (SNL / SENet-style budgets), spread over the relu
    /// layers in proportion to their elements; replaces the network file's budgets.
    #[arg(long, value_name = "N")]
    pub relu_budget: Option<String>,
}

/// Parses `--relu-budget N`: a non-negative integer.
pub fn parse_relu_budget(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| {
        format!("--relu-budget '{s}': expected a number of kept ReLUs, an integer >= 0")
    })
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum WireArg {
    Native,
    Packed,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BnArg {
    Auto,
    Separate,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReluArg {
    Exact,
    Approx,
}

pub fn run() -> Result<(), String> {
    execute(Cli::parse())
}

/// Runs the command line given as arguments (the first is the program name), for tests:
/// a parse error comes back as the error text instead of exiting.
pub fn run_from<I, T>(args: I) -> Result<(), String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    execute(Cli::try_parse_from(args).map_err(|e| e.to_string())?)
}

fn execute(cli: Cli) -> Result<(), String> {
    let cm = match &cli.cost_models {
        Some(d) => CostModel::load_dir(d),
        None => CostModel::builtin(),
    }
    .map_err(|e| e.to_string())?;
    match cli.command {
        Command::Estimate(a) => estimate::run(&a, &cm),
        Command::Import(a) => import::run(&a),
        Command::Search(a) => search::run(&a, &cm),
        Command::Sweep(a) => sweep::run(&a, &cm),
        Command::Mixed(a) => mixed::run(&a, &cm),
        Command::Plot(a) => plot::run(&a, &cm),
        Command::Explore(a) => explore::run(&a, &cm),
        Command::Networks => networks(),
        Command::Protocols => protocols(&cm),
        Command::Verify(a) => verify::run(&a, &cm),
        Command::Calibrate(a) => calibrate::run(&a, &cm),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "hequant", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| format!("writing the man page: {e}"))
        }
    }
}

/// Directory of the shipped networks.
pub fn networks_dir() -> PathBuf {
    let local = PathBuf::from("networks");
    if local.is_dir() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("networks")
    }
}

/// Loads a network from a path, or by the name of a shipped network.
/// A saved mapping and the network it names. The file's `network` is tried as given (a
/// shipped name, or a path from the current directory), then as a path next to the mapping
/// file, then, when it is a path to a file `networks/NAME.toml` and NAME is a shipped network,
/// as that shipped network; the mapping is then checked against the network.
pub fn load_mapping(
    path: &std::path::Path,
) -> Result<(Network, crate::spec::mapping::MappingFile), String> {
    let m = crate::spec::mapping::load(path, None).map_err(|e| e.to_string())?;
    let spec = std::path::Path::new(&m.network);
    let net = load_network(&m.network).or_else(|first| {
        if let Some(beside) = path.parent().map(|d| d.join(spec)).filter(|b| b.exists()) {
            return load_network(&beside.to_string_lossy());
        }
        let shipped = spec
            .parent()
            .filter(|d| d.ends_with("networks"))
            .and(spec.file_stem())
            .and_then(|s| s.to_str())
            .filter(|s| networks_dir().join(format!("{s}.toml")).exists());
        match shipped {
            Some(name) => load_network(name),
            None => Err(format!("{}: network: {first}", path.display())),
        }
    })?;
    let m = crate::spec::mapping::load(path, Some(&net)).map_err(|e| e.to_string())?;
    Ok((net, m))
}

/// What a command runs: a saved mapping's network, protocol and per-layer choices
/// (`--mapping`, [`load_mapping`]), or `--network` and `--protocol` with no choices; and how
/// the network was named.
pub type Target = (
    Network,
    Protocol,
    std::collections::HashMap<String, crate::mapping::LayerChoice>,
    String,
);

pub fn target(model: &ModelArgs, mapping: Option<&std::path::Path>) -> Result<Target, String> {
    match mapping {
        Some(path) => {
            let (net, m) = load_mapping(path)?;
            let p = Protocol::parse(&m.protocol)
                .map_err(|e| format!("{}: protocol: {e}", path.display()))?;
            let overrides = m.overrides();
            Ok((net, p, overrides, m.network))
        }
        None => Ok((
            load_network(&model.network)?,
            Protocol::parse(protocol_or_default(&model.protocol))?,
            Default::default(),
            model.network.clone(),
        )),
    }
}

pub fn load_network(spec: &str) -> Result<Network, String> {
    let p = PathBuf::from(spec);
    let path = if p.exists() {
        p
    } else if !spec.contains('/') && !spec.contains('.') {
        let q = networks_dir().join(format!("{spec}.toml"));
        if !q.exists() {
            return Err(format!(
                "no network '{spec}': not a file, and not a shipped network (see `hequant networks`)"
            ));
        }
        q
    } else {
        return Err(format!("cannot read network {spec}: no such file"));
    };
    if path
        .extension()
        .is_some_and(|x| x.eq_ignore_ascii_case("onnx"))
    {
        let opts = crate::onnx::ImportOptions::default();
        return crate::onnx::load(&path, &opts)
            .map(|i| i.network)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    crate::spec::network::load(&path).map_err(|e| e.to_string())
}

/// Builds evaluation options from the shared arguments.
pub fn eval_options(
    a: &ModelArgs,
    protocol: Protocol,
    cm: &CostModel,
) -> Result<EvalOptions, String> {
    let mut o = EvalOptions::new(protocol, cm);
    (o.link, o.link_name) = a.link.resolve(cm)?;
    o.bits = BitsPolicy {
        uniform: a.bits.as_deref().map(one_width).transpose()?,
        all_layers: a.bits_all,
    };
    o.wire = match a.wire {
        WireArg::Native => WireFormat::Native,
        WireArg::Packed => WireFormat::Packed,
    };
    o.bn = match a.bn {
        BnArg::Auto => BnPolicy::Auto,
        BnArg::Separate => BnPolicy::Separate,
    };
    o.relu = a.relu.map(|r| match r {
        ReluArg::Exact => ReluVariant::Exact,
        ReluArg::Approx => ReluVariant::Approx,
    });
    o.objective = Objective::parse(&a.objective)?;
    o.allow_insecure = a.allow_insecure;
    if a.batch == 0 || a.batch > model::MAX_BATCH {
        return Err(format!(
            "--batch {}: must be between 1 and {}",
            a.batch,
            model::MAX_BATCH
        ));
    }
    o.batch = a.batch;
    o.slots = model::parse_slots(&a.slots)?;
    o.cheetah = model::CheetahVersion::parse(&a.cheetah).map_err(|e| format!("--cheetah: {e}"))?;
    o.accumulator = match a.accumulator {
        AccumulatorArg::Worst => model::AccumulatorBound::Worst,
        AccumulatorArg::Weights => model::AccumulatorBound::Weights,
    };
    o.approx = a.nonlinear.approx;
    o.relu_budget = a
        .nonlinear
        .relu_budget
        .as_deref()
        .map(parse_relu_budget)
        .transpose()?;
    Ok(o)
}

/// The report options shared by every command that writes a report: `--format`, `-o` and
/// `--wide`; [`OutputArgs::format`] picks the format, [`OutputArgs::emit`] writes.
#[derive(Args, Clone, Default)]
pub struct OutputArgs {
    /// Output format: table, json, csv or markdown (a command that cannot write one says
    /// so). Default: from the extension of -o (.json, .csv, .md; else table), else table.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// Write the report to this file instead of standard output (its extension picks the
    /// format unless --format is given).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(long, help = WIDE_HELP)]
    pub wide: bool,
}

impl OutputArgs {
    /// The format asked for (`--format`, else the extension of `-o`, else the table), if
    /// `command` can write it (`can`).
    pub fn format(&self, command: &str, can: &[Format]) -> Result<Format, String> {
        let (f, from) = match (self.format, &self.output) {
            (Some(f), _) => (f, format!("--format {}", f.name())),
            (None, Some(p)) => (
                Format::from_path(p),
                format!("-o {} (by its extension)", p.display()),
            ),
            (None, None) => (Format::Table, "the default".into()),
        };
        if can.contains(&f) {
            Ok(f)
        } else {
            let names: Vec<&str> = can.iter().map(|f| f.name()).collect();
            Err(format!(
                "{command} cannot write {} ({from}): it writes {}",
                f.name(),
                names.join(", ")
            ))
        }
    }

    /// Writes the report to `-o` or standard output.
    pub fn emit(&self, text: &str) -> Result<(), String> {
        emit(text, self.output.as_deref())
    }
}

/// Writes text to a file (atomically) or standard output.
pub fn emit(text: &str, output: Option<&Path>) -> Result<(), String> {
    match output {
        Some(p) => crate::io::write_atomic(p, text.as_bytes()),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

pub fn parse_protocols(s: &str) -> Result<Vec<Protocol>, String> {
    let v: Result<Vec<Protocol>, String> =
        s.split(',').map(|p| Protocol::parse(p.trim())).collect();
    let v = v?;
    if v.is_empty() {
        return Err("no protocol given".into());
    }
    Ok(v)
}

fn networks() -> Result<(), String> {
    let dir = networks_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    println!(
        "{:<26} {:>7} {:>7} {:>10} {:>12}  input      source",
        "network", "layers", "linear", "GMACs", "ReLUs"
    );
    for p in entries {
        let n = crate::spec::network::load(&p).map_err(|e| e.to_string())?;
        let s = n.stats();
        let src: String = n.source.chars().take(60).collect();
        println!(
            "{:<26} {:>7} {:>7} {:>10.3} {:>12}  {:<10} {}",
            n.name,
            s.layers,
            s.linear_layers,
            s.macs as f64 / 1e9,
            s.relu_elements,
            n.input.to_string(),
            src
        );
    }
    Ok(())
}

fn protocols(cm: &CostModel) -> Result<(), String> {
    let dir = cm
        .dir
        .as_ref()
        .map_or("cost-models (built in)".to_string(), |d| {
            d.display().to_string()
        });
    println!("cost-model files: {dir}");
    for p in Protocol::ALL {
        let f = cm.protocol_file(p);
        println!(
            "{:<15} {:<16} {}",
            p.name(),
            f.name.clone() + ".toml",
            p.summary()
        );
        let q = cm.query_example(p);
        println!(
            "{:<15} {:<16} wire: {} ; query ciphertext {}",
            "",
            "",
            f.wire.native_name,
            human_bytes(q)
        );
    }
    println!(
        "shared: primitives.toml (OT costs), security.toml (128-bit table), links.toml (lan, wan), compute.toml"
    );
    Ok(())
}
