//! `hequant verify`: run a network's linear layers with real HE as two parties and compare
//! with the model. `hequant verify --listen/--connect` runs one party per process.

use super::{ModelArgs, OutputArgs, eval_options};
use crate::export::Format;
use crate::export::table::{COLUMNS, Footnotes, Shrink, Table, aligned_left, fit, wrap};
use crate::model;
use crate::protocol::CostModel;
use crate::units::human_bytes;
use crate::verify::{self, RunOptions, VerifyReport};
use clap::Args;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DataArg {
    /// Shares uniform mod 2^l, weights uniform signed integers (CSPRNG).
    Random,
    /// Every share 2^l - 1, every weight -2^(b_w - 1): the fullest slots.
    WorstCase,
}

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Only these layers (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<String>>,
    /// Run the per-layer choices of a saved mapping (its network and protocol replace
    /// --network and --protocol).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Be the server party only, waiting for a client on this address (e.g. 0.0.0.0:7000).
    #[arg(long, conflicts_with = "connect")]
    pub listen: Option<String>,
    /// Be the client party only, connecting to a server on this address.
    #[arg(long)]
    pub connect: Option<String>,
    /// Data of the layers (both parties must use the same).
    #[arg(long, value_enum, default_value = "random")]
    pub data: DataArg,
    /// Which layers to run: linear ones by HE, non-linear ones by OT, or both.
    #[arg(long, value_enum, default_value = "all")]
    pub part: PartArg,
    /// Seconds to wait for the peer before a receive fails.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Secure inference of the whole network: shares carried from layer to layer, linear
    /// layers by HE, non-linear ones by OT, the output checked against plaintext inference
    /// (quantized protocols, batch 1).
    #[arg(long, conflicts_with_all = ["layers", "part"])]
    pub end_to_end: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartArg {
    All,
    Linear,
    Nonlinear,
}

pub fn run(a: &VerifyArgs, cm: &CostModel) -> Result<(), String> {
    a.out.format("verify", &[Format::Table, Format::Json])?;
    let (net, protocol, overrides, _) = super::target(&a.model, a.mapping.as_deref())?;
    let mut o = eval_options(&a.model, protocol, cm)?;
    o.overrides = overrides;
    let report = model::evaluate(&net, &o, cm).map_err(|e| e.to_string())?;
    if a.timeout == 0 || a.timeout > 86_400 {
        return Err(format!(
            "--timeout {}: must be between 1 and 86400 seconds",
            a.timeout
        ));
    }
    let timeout = std::time::Duration::from_secs(a.timeout);
    let mut plan = verify::plan(&net, &report, protocol, cm, &o.link, a.layers.as_deref())
        .map_err(|e| e.to_string())?;
    if a.end_to_end {
        if o.batch > 1 {
            return Err("--end-to-end runs one image: leave out --batch".into());
        }
        if o.relu_budget.is_some() {
            return Err("--end-to-end runs every ReLU: leave out --relu-budget".into());
        }
        if o.accumulator == model::AccumulatorBound::Weights {
            return Err("--end-to-end draws random weights, which rings sized to the network's own weights (--accumulator weights) do not hold: leave out --accumulator weights".into());
        }
        let e = verify::e2e::plan(&net, &report, plan, cm, o.approx)
            .map_err(|e| format!("--end-to-end: {e}"))?;
        return end_to_end(a, &e, &o.link, cm, timeout);
    }
    let mut nl = verify::nonlinear::plan(&net, &report, cm, o.batch, a.layers.as_deref())
        .map_err(|e| e.to_string())?;
    if o.approx || o.relu_budget.is_some() {
        // The run executes exact ReLUs on every element; what these options price is not run.
        let why = if o.approx {
            "--approx prices the fused approximate ReLU, which the per-layer run does not run (`verify --end-to-end --approx` does)"
        } else {
            "--relu-budget prices a subset of the ReLUs, which the verify mode does not run yet"
        };
        let (keep, drop): (Vec<_>, Vec<_>) = nl
            .layers
            .drain(..)
            .zip(nl.model.drain(..))
            .partition(|(l, _)| l.pool.is_some() || l.crt.is_some());
        for (l, _) in drop {
            nl.skipped.push(verify::nonlinear::NlSkipped {
                name: l.name,
                reason: why.into(),
            });
        }
        (nl.layers, nl.model) = keep.into_iter().unzip();
    }
    if a.part == PartArg::Nonlinear {
        plan.layers.clear();
        plan.skipped.clear();
    }
    if a.part == PartArg::Linear {
        nl.layers.clear();
        nl.model.clear();
        nl.skipped.clear();
    }
    if plan.layers.is_empty() && nl.layers.is_empty() {
        let mut m = format!("no layer of '{}' under {protocol} can be run", net.name);
        for s in &plan.skipped {
            let _ = write!(m, "\n  {}: {}", s.name, s.reason);
        }
        for s in &nl.skipped {
            let _ = write!(m, "\n  {}: {}", s.name, s.reason);
        }
        return Err(m);
    }
    let opts = RunOptions {
        data: match a.data {
            DataArg::Random => verify::DataMode::Random,
            DataArg::WorstCase => verify::DataMode::WorstCase,
        },
        fault: None,
        progress: Some(|s: &str| eprintln!("linear layer {s}")),
    };
    let progress = |s: &str| eprintln!("non-linear layer {s}");
    if let Some(addr) = &a.listen {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!("server party: waiting for a client on {addr}");
        // One run at a time: a client that connects while a phase is served is refused.
        let mut early = None;
        if !plan.layers.is_empty() {
            let (stream, peer) = verify::accept(&listener, timeout).map_err(|e| e.to_string())?;
            eprintln!("server party: client {peer} connected");
            let (r, next) =
                verify::while_refusing(&listener, || verify::server::serve(stream, &plan, &opts));
            r.map_err(|e| e.to_string())?;
            early = next;
            eprintln!(
                "server party: all {} linear layers served",
                plan.layers.len()
            );
        }
        if !nl.layers.is_empty() {
            let stream =
                verify::accept_next(&listener, early, timeout).map_err(|e| e.to_string())?;
            let (r, _) = verify::while_refusing(&listener, || {
                verify::nonlinear::serve(stream, &nl, timeout, None)
            });
            r.map_err(|e| e.to_string())?;
            eprintln!(
                "server party: all {} non-linear layers served",
                nl.layers.len()
            );
        }
        return Ok(());
    }
    let mut rep = if plan.layers.is_empty() {
        VerifyReport::without_layers(&plan)
    } else {
        match &a.connect {
            Some(addr) => {
                let stream = verify::connect(addr, timeout).map_err(|e| e.to_string())?;
                verify::client::run(stream, &plan, &opts)
            }
            None => verify::run_local(&plan, &opts),
        }
        .map_err(|e| e.to_string())?
    };
    if !nl.layers.is_empty() {
        let r = match &a.connect {
            Some(addr) => {
                let stream = verify::connect(addr, timeout).map_err(|e| e.to_string())?;
                verify::nonlinear::run_client(stream, &nl, &o.link, cm, timeout, &progress)
            }
            None => verify::nonlinear::run_local(&nl, &o.link, cm, None, &progress),
        }
        .map_err(|e| e.to_string())?;
        rep.ok &= r.ok;
        rep.nonlinear = Some(r);
    } else if !nl.skipped.is_empty() {
        rep.nonlinear = Some(verify::nonlinear::NlReport {
            layers: Vec::new(),
            setup_predicted: 0,
            setup_measured: 0,
            skipped: nl.skipped.clone(),
            ok: true,
        });
    }
    write_report(a, &rep, table, cm)?;
    if rep.ok {
        Ok(())
    } else {
        let nl_bad: u64 = rep
            .nonlinear
            .as_ref()
            .map_or(0, |n| n.layers.iter().map(|l| l.mismatches).sum());
        let bad: u64 = rep.layers.iter().map(|l| l.mismatches).sum::<u64>() + nl_bad;
        let coeffs: u64 = rep.layers.iter().map(|l| l.coefficient_mismatches).sum();
        Err(format!(
            "verify FAILED: {bad} wrong outputs and {coeffs} wrongly decrypted coefficients in {} layer(s)",
            rep.layers.iter().filter(|l| !l.correct).count()
                + rep.nonlinear.as_ref().map_or(0, |n| n
                    .layers
                    .iter()
                    .filter(|l| !l.correct)
                    .count())
        ))
    }
}

/// Writes a report as JSON or as its table (`--format`), to `-o` or standard output.
fn write_report<R: serde::Serialize>(
    a: &VerifyArgs,
    rep: &R,
    table: fn(&R, bool) -> String,
    cm: &CostModel,
) -> Result<(), String> {
    let replaced = cm.security_replaced.as_ref().map(|f| {
        format!("security table replaced: {f} is not the shipped HE-standard table; every 128-bit claim rests on it")
    });
    let text = match a.out.format("verify", &[Format::Table, Format::Json])? {
        Format::Json => {
            let mut v = serde_json::to_value(rep).expect("the report serialises");
            if let (Some(w), Some(o)) = (&replaced, v.as_object_mut()) {
                o.insert("security_table_replaced".into(), w.clone().into());
            }
            serde_json::to_string_pretty(&v).expect("the report serialises") + "\n"
        }
        _ => match &replaced {
            Some(w) if a.out.wide => format!("!! {w}\n{}", table(rep, true)),
            Some(w) => wrap(&format!("!! {w}\n"), COLUMNS) + &table(rep, false),
            None => table(rep, a.out.wide),
        },
    };
    a.out.emit(&text)
}

/// `verify --end-to-end`: both parties here, or one of them with --listen / --connect.
fn end_to_end(
    a: &VerifyArgs,
    e: &verify::e2e::E2ePlan,
    link: &crate::protocol::Link,
    cm: &CostModel,
    timeout: std::time::Duration,
) -> Result<(), String> {
    use verify::e2e;
    let progress = |s: &str| eprintln!("{s}");
    if let Some(addr) = &a.listen {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        eprintln!("server party: waiting for a client on {addr}");
        let (he, ot) = e2e::accept_pair(&listener).map_err(|e| e.to_string())?;
        let (r, _) = verify::while_refusing(&listener, || e2e::serve(he, ot, e, timeout, None));
        r.map_err(|e| e.to_string())?;
        eprintln!("server party: {} steps served", e.steps.len() - 1);
        return Ok(());
    }
    let rep = match &a.connect {
        Some(addr) => {
            let (he, ot) = e2e::connect_pair(addr).map_err(|e| e.to_string())?;
            e2e::run_client(he, ot, e, link, cm, timeout, &progress)
        }
        None => e2e::run_local(e, link, cm, timeout, None, &progress),
    }
    .map_err(|e| e.to_string())?;
    write_report(a, &rep, e2e_table, cm)?;
    if rep.ok {
        Ok(())
    } else {
        Err(format!(
            "verify --end-to-end FAILED: {} step(s) wrong, output {}",
            rep.steps.iter().filter(|s| !s.correct).count(),
            if rep.output_exact {
                "equal to the plaintext inference".to_string()
            } else {
                format!(
                    "differs from the plaintext inference in {} of {} elements",
                    rep.output_differ, rep.output_elems
                )
            }
        ))
    }
}

/// The end-to-end report as a text table: every column (`wide`), or within [`COLUMNS`]
/// with each step's protocol as a footnote, without the ring and the model's bytes.
pub fn e2e_table(r: &verify::e2e::E2eReport, wide: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "verify --end-to-end {} under {} ({}): secure inference as two parties over TCP, linear layers by real HE, non-linear by real OT; predicted latency for link {}",
        r.network, r.protocol, r.bits, r.link
    );
    if r.insecure {
        let _ = writeln!(s, "{INSECURE}");
    }
    let mut t = Table {
        header: [
            "step", "protocol", "elems", "ring", "ok", "pred B", "meas B", "ratio", "model B",
            "rounds", "pred s", "meas s",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    let mut notes = Footnotes::default();
    let mut after = Vec::new();
    for st in &r.steps {
        t.rows.push(vec![
            st.name.clone(),
            if wide {
                st.what.clone()
            } else {
                notes.mark(&st.what)
            },
            st.elems.to_string(),
            format!("{}>{}", st.ring_in, st.ring),
            if st.correct { "yes" } else { "NO" }.into(),
            st.predicted_bytes.to_string(),
            st.measured_bytes.to_string(),
            ratio(st.measured_bytes as f64, st.predicted_bytes as f64),
            st.model_bytes.to_string(),
            format!("{}/{}", st.predicted_rounds, st.measured_rounds),
            format!("{:.3}", st.predicted_s),
            format!("{:.3}", st.measured_s),
        ]);
        after.push(if !st.correct {
            format!(
                "  MISMATCH {}: {} wrong outputs (tolerance {})\n",
                st.name, st.mismatches, st.tolerance
            )
        } else if st.inexact > 0 {
            format!(
                "  inexact {}: {} of {} outputs off the exact value by at most {}\n",
                st.name, st.inexact, st.elems, st.tolerance
            )
        } else {
            String::new()
        });
    }
    if !wide {
        select(&mut t, &[0, 1, 2, 4, 5, 6, 7, 9, 10, 11]);
        fit(&mut t, &[(0, Shrink::Middle(12))], COLUMNS);
    }
    let mut foot = interleave(&aligned_left(&t, 2), &after);
    foot.push_str(&notes.render());
    let _ = writeln!(
        foot,
        "total: predicted {} ({} B), measured {} B (ratio {}); the model prices these layers at {} ({} B); base-OT setup {} B; predicted {:.3} s, measured {:.3} s",
        human_bytes(r.predicted_bytes),
        r.predicted_bytes,
        r.measured_bytes,
        ratio(r.measured_bytes as f64, r.predicted_bytes as f64),
        human_bytes(r.model_bytes),
        r.model_bytes,
        r.setup_bytes,
        r.predicted_s,
        r.measured_s
    );
    let _ = writeln!(
        foot,
        "bytes: HE ciphertext payloads and OT payloads both ways (frame headers, parameter sets and the verification reveals apart); predicted: the model's HE sizes and ot::sizes of the OT steps run; model B: the estimate's figure for the layer (its OT cost family)."
    );
    let _ = writeln!(
        foot,
        "requantization shifts (public, from the server's calibration): {}",
        r.shifts
            .iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        foot,
        "activations above their b_a bits in the plaintext inference (unclamped, kept exactly by the rings): {}",
        r.activation_overflows
    );
    for a in &r.approximate {
        let _ = writeln!(foot, "APPROXIMATE {a}");
    }
    let _ = writeln!(
        foot,
        "output: {} elements, {}; class {} (plaintext inference: class {})",
        r.output_elems,
        if r.output_exact {
            "equal to the plaintext quantized inference, bit for bit".to_string()
        } else {
            format!(
                "{} differ from the plaintext quantized inference (largest |difference| {})",
                r.output_differ, r.output_max_abs_diff
            )
        },
        r.class,
        r.plaintext_class
    );
    let _ = writeln!(
        foot,
        "{}",
        if r.ok {
            if r.insecure {
                "result: ok, every step correct on its input and the output as stated (INSECURE parameters)"
            } else {
                "result: ok, every step correct on its input and the output as stated"
            }
        } else {
            "result: FAILED, see above"
        }
    );
    narrow_text(s, foot, wide)
}

/// Keeps the columns `keep` of a table (in that order).
fn select(t: &mut Table, keep: &[usize]) {
    for row in t.rows.iter_mut().chain(std::iter::once(&mut t.header)) {
        *row = keep.iter().map(|&i| row[i].clone()).collect();
    }
}

/// An aligned table's lines, each row followed by its lines of `after` (the header by none).
fn interleave(table: &str, after: &[String]) -> String {
    let mut s = String::new();
    for (i, line) in table.lines().enumerate() {
        s.push_str(line);
        s.push('\n');
        if let Some(a) = i.checked_sub(1).and_then(|i| after.get(i)) {
            s.push_str(a);
        }
    }
    s
}

/// The text above a table and the table with the text below, wrapped within [`COLUMNS`]
/// unless `wide` (the table, fitted already, is kept as it is by the wrap).
fn narrow_text(head: String, rest: String, wide: bool) -> String {
    if wide {
        head + &rest
    } else {
        wrap(&head, COLUMNS) + &wrap(&rest, COLUMNS)
    }
}

fn ratio(m: f64, p: f64) -> String {
    if p > 0.0 {
        format!("{:.3}", m / p)
    } else {
        "-".into()
    }
}

/// The report as a text table: every column (`wide`), or within [`COLUMNS`]: layer, N,
/// ok, bytes and seconds predicted and measured, headroom (the rest in `--wide`).
pub fn table(r: &VerifyReport, wide: bool) -> String {
    let mut head = String::new();
    let _ = writeln!(
        head,
        "verify {} under {} ({}), real HE and OT over TCP; predicted latency for link {}",
        r.network, r.protocol, r.bits, r.link
    );
    if r.insecure {
        let _ = writeln!(head, "{INSECURE}");
    }
    let mut s = String::new();
    if !r.layers.is_empty() || r.nonlinear.is_none() {
        let mut t = Table {
            header: [
                "layer",
                "N",
                "q/t",
                "tiling",
                "ct in/out",
                "ok",
                "pred B",
                "meas B",
                "ratio",
                "pred s",
                "meas s",
                "ratio",
                "enc s",
                "srv s",
                "dec s",
                "xfer s",
                "headroom",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
        };
        let mut after = Vec::new();
        for l in &r.layers {
            t.rows.push(vec![
                l.name.clone(),
                l.n.to_string(),
                format!("{}/{}", l.log_q, l.log_t),
                if l.packing == "-" {
                    l.tiling.clone()
                } else {
                    format!("{} {}", l.tiling, l.packing)
                },
                format!("{}/{}", l.ct_in, l.ct_out),
                if l.correct { "yes" } else { "NO" }.into(),
                l.predicted_bytes.to_string(),
                l.measured_bytes.to_string(),
                ratio(l.measured_bytes as f64, l.predicted_bytes as f64),
                format!("{:.3}", l.predicted_s),
                format!("{:.3}", l.measured_s),
                ratio(l.measured_s, l.predicted_s),
                format!("{:.3}", l.encrypt_s),
                format!("{:.3}", l.server_s),
                format!("{:.3}", l.decrypt_s),
                format!("{:.3}", l.transfer_s),
                format!("{:.1}/{:.1}", l.noise_headroom_bits, l.model_headroom_bits),
            ]);
            let mut a = String::new();
            for m in &l.first_mismatches {
                let _ = writeln!(
                    a,
                    "  MISMATCH {} at output (c {}, y {}, x {}): got {}, expected {}",
                    l.name,
                    m.position[0],
                    m.position[1],
                    m.position[2],
                    m.got.map_or("nothing".to_string(), |v| v.to_string()),
                    m.expected
                );
            }
            for m in &l.first_coefficient_mismatches {
                let _ = writeln!(
                    a,
                    "  WRONG COEFFICIENT {} at response output {}: decrypted {}, expected {} (a decryption failure)",
                    l.name, m.index, m.got, m.expected
                );
            }
            if l.coefficient_mismatches as usize > l.first_coefficient_mismatches.len() {
                let _ = writeln!(
                    a,
                    "  ... {} wrong coefficients in {} in all",
                    l.coefficient_mismatches, l.name
                );
            }
            if l.mismatches as usize > l.first_mismatches.len() {
                let _ = writeln!(
                    a,
                    "  ... {} wrong outputs in {} in all",
                    l.mismatches, l.name
                );
            }
            after.push(a);
        }
        if !wide {
            select(&mut t, &[0, 1, 5, 6, 7, 8, 9, 10, 11, 16]);
            fit(&mut t, &[(0, Shrink::Middle(12))], COLUMNS);
        }
        s.push_str(&interleave(&aligned_left(&t, 1), &after));
        let payload: u64 = r.layers.iter().map(|l| l.payload_bytes).sum();
        let _ = writeln!(
            s,
            "total: predicted {} ({} B), ciphertext payload {} B, on the socket {} B (ratio {}); predicted {:.3} s, measured {:.3} s (ratio {})",
            human_bytes(r.predicted_bytes),
            r.predicted_bytes,
            payload,
            r.measured_bytes,
            ratio(r.measured_bytes as f64, r.predicted_bytes as f64),
            r.predicted_s,
            r.measured_s,
            ratio(r.measured_s, r.predicted_s)
        );
        // The offline weight encoding: predicted, measured.
        let offline = r.layers.iter().fold((0.0, 0.0), |(p, m), l| {
            (p + l.predicted_offline_s, m + l.weight_encode_s)
        });
        let _ = writeln!(
            s,
            "bytes: both directions; socket bytes include 12-byte frame headers and the layer's parameter set.\n\
             time: online (client encryption to decryption); the server's weight encoding into NTT form is input-independent (offline) and left out: predicted {:.3} s, measured {:.3} s in all (ratio {}).\n\
             headroom: measured/model bits. measured: log2((Delta/2) / largest decryption error seen, truncation included); model: margin of its 2^-40 noise bound",
            offline.0,
            offline.1,
            ratio(offline.1, offline.0)
        );
    }
    if !r.tolerance.is_empty() {
        let _ = writeln!(s, "tolerance: {}", r.tolerance);
    }
    for k in &r.not_run {
        let _ = writeln!(s, "NOT RUN {}: {}", k.name, k.reason);
    }
    if let Some(n) = &r.nonlinear {
        nonlinear_table(&mut s, n, wide);
    }
    let _ = writeln!(
        s,
        "{}{}",
        if r.ok {
            "result: ok, every output of every layer run is correct"
        } else {
            "result: FAILED, wrong outputs above"
        },
        if r.insecure {
            " (INSECURE parameters)"
        } else {
            ""
        }
    );
    narrow_text(head, s, wide)
}

/// The mark of a run whose parameters are below 128-bit security.
const INSECURE: &str = "INSECURE: parameters below 128-bit security were accepted (--allow-insecure); this run proves nothing about a secure deployment";

/// The non-linear part of the report: per layer, predicted (this tool's OT, `ot::sizes`)
/// against measured bytes each way and rounds, and the model's figure for the protocol.
fn nonlinear_table(s: &mut String, n: &verify::nonlinear::NlReport, wide: bool) {
    if !n.layers.is_empty() {
        let _ = writeln!(
            s,
            "\nnon-linear layers, real OT (Chou-Orlandi base OT + IKNP extension) over TCP; predicted by ot::sizes"
        );
        let mut t = Table {
            header: [
                "layer",
                "elems",
                "steps",
                "ok",
                "pred s>c",
                "meas s>c",
                "pred c>s",
                "meas c>s",
                "rounds p/m",
                "pred s",
                "meas s",
                "model B",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
        };
        let mut after = Vec::new();
        for l in &n.layers {
            t.rows.push(vec![
                l.name.clone(),
                l.n.to_string(),
                l.steps.clone(),
                if l.correct { "yes" } else { "NO" }.into(),
                l.predicted_server_to_client.to_string(),
                l.measured_server_to_client.to_string(),
                l.predicted_client_to_server.to_string(),
                l.measured_client_to_server.to_string(),
                format!("{}/{}", l.predicted_rounds, l.measured_rounds),
                format!("{:.3}", l.predicted_s),
                format!("{:.3}", l.measured_s),
                l.model_bytes.to_string(),
            ]);
            after.push(if l.correct {
                String::new()
            } else {
                format!("  MISMATCH {}: {} wrong outputs\n", l.name, l.mismatches)
            });
        }
        if !wide {
            select(&mut t, &[0, 1, 3, 4, 5, 6, 7, 8, 9, 10]);
            fit(&mut t, &[(0, Shrink::Middle(12))], COLUMNS);
        }
        s.push_str(&interleave(&aligned_left(&t, 1), &after));
    }
    if !n.layers.is_empty() {
        let pred: u64 = n
            .layers
            .iter()
            .map(|l| l.predicted_server_to_client + l.predicted_client_to_server)
            .sum();
        let meas: u64 = n
            .layers
            .iter()
            .map(|l| l.measured_server_to_client + l.measured_client_to_server)
            .sum();
        let model: u64 = n.layers.iter().map(|l| l.model_bytes).sum();
        let _ = writeln!(
            s,
            "non-linear total: predicted {} ({pred} B), measured {meas} B (ratio {}); base-OT setup predicted {} B, measured {} B; the model's cost family prices these layers at {} ({model} B)",
            human_bytes(pred),
            ratio(meas as f64, pred as f64),
            n.setup_predicted,
            n.setup_measured,
            human_bytes(model),
        );
        let _ = writeln!(
            s,
            "non-linear bytes: OT payload both ways (12-byte frame headers apart); the server's reveal of its shares for the check is left out. Exact: every output equal to the plaintext ReLU or maximum, every CRT conversion to the value the client dealt (for those layers the server's input share is revealed before the run, so that the client can deal the values)."
        );
    }
    for k in &n.skipped {
        let _ = writeln!(s, "NOT RUN {}: {}", k.name, k.reason);
    }
}
