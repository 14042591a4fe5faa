//! `hequant calibrate`: measure this machine's per-operation HE costs and write a compute
//! profile (`format = "hequant-compute"`) that `--cost-models DIR` then uses.

use super::emit;
use crate::protocol::CostModel;
use crate::verify::measure::{self, CALIBRATION_LOG_Q, CALIBRATION_N};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct CalibrateArgs {
    /// Write the profile here (name it compute.toml inside a --cost-models directory);
    /// standard output when absent.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Repetitions of each operation (the median is kept).
    #[arg(long, default_value_t = 21, value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub reps: u32,
}

/// Spread (90th over 10th percentile of an operation's runs) above which calibrate warns.
const SPREAD_WARN: f64 = 1.5;

pub fn run(a: &CalibrateArgs, cm: &CostModel) -> Result<(), String> {
    let c = measure::calibrate(a.reps as usize);
    let text = format!(
        "# Per-operation compute costs measured by `hequant calibrate` (median of {reps} runs,\n\
         # one thread, microseconds at N = {n}; other ring degrees scale linearly with N).\n\
         # Seeded encryption (the mask expanded from its seed by tfhe 1.8.2, mask * s by NTT)\n\
         # and decryption by NTT, with q = 2^{lq} in a u64 container; NTT\n\
         # operations over {primes} CRT primes below 2^50 (tfhe-ntt prime64), per polynomial.\n\
         format = \"hequant-compute\"\n\
         version = 1\n\
         source = \"hequant calibrate: median of {reps} runs at N = {n}, log q = {lq}, {primes} NTT primes\"\n\
         threads = 1\n\
         encrypt_us = {:.1}\n\
         decrypt_us = {:.1}\n\
         ntt_forward_us = {:.1}\n\
         mul_acc_us = {:.2}\n\
         ntt_inverse_us = {:.1}\n\
         # OT-based non-linear layers: not measured here, kept from the cost model in use.\n\
         ot_ns_per_bit = {}\n\
         # The NTT figures are for this many CRT primes; a mapping's own prime count scales them.\n\
         ntt_primes = {primes}\n\
         # NTT work over as many 62-bit primes, for bounds the small ones do not cover.\n\
         wide_prime_factor = {:.2}\n\
         # With q = 2^109 in a u128 container, as Cheetah's parameters run (log q > 64).\n\
         encrypt_wide_us = {:.1}\n\
         decrypt_wide_us = {:.1}\n\
         # The server's expansion of a query's mask from its seed (u64, then u128 container).\n\
         decompress_us = {:.1}\n\
         decompress_wide_us = {:.1}\n\
         # The server's other online work per query and per response, and mul_acc_us above:\n\
         # from 16x30x30 -> 32 and 56x56x64 -> 64 3x3 layers at Cheetah's parameters, run by\n\
         # the server's own code (products as they stream through the weights).\n\
         server_query_us = {:.1}\n\
         server_response_us = {:.1}\n",
        c.encrypt_us,
        c.decrypt_us,
        c.ntt_forward_us,
        c.mul_acc_us,
        c.ntt_inverse_us,
        cm.compute.ot_ns_per_bit,
        c.wide_prime_factor,
        c.encrypt_wide_us,
        c.decrypt_wide_us,
        c.decompress_us,
        c.decompress_wide_us,
        c.server_query_us,
        c.server_response_us,
        reps = c.reps,
        n = CALIBRATION_N,
        lq = CALIBRATION_LOG_Q,
        primes = c.primes,
    );
    // How far each operation's runs spread: a busy machine spreads them and moves the
    // medians with them.
    let spreads = c
        .spreads
        .0
        .iter()
        .map(|(k, r)| format!("{k} {r:.2}x"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!("{text}# Spread of the runs (90th over 10th percentile): {spreads}\n");
    eprintln!("spread of the runs (90th over 10th percentile): {spreads}");
    if let Some((k, r)) = c.spreads.widest_above(SPREAD_WARN) {
        eprintln!(
            "warning: the runs of {k} spread {r:.2}x (more than {SPREAD_WARN}x): the machine is busy and the figures may move between runs; run calibrate again when it is quiet, or with more --reps"
        );
    }
    // The file must load back as a compute profile.
    crate::spec::parse::<crate::protocol::ComputeProfile>(
        "calibration",
        &text,
        crate::protocol::COMPUTE_FORMAT,
        1,
    )
    .map_err(|e| format!("internal: the calibration does not parse back: {e}"))?;
    // The file goes into a cost-model directory of its own (`--cost-models DIR`): create it.
    if let Some(dir) = a
        .output
        .as_deref()
        .and_then(|p| p.parent())
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    }
    emit(&text, a.output.as_deref())?;
    if let Some(p) = &a.output {
        eprintln!(
            "wrote {}; use it with --cost-models {}",
            p.display(),
            p.parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or(".".into(), |d| d.display().to_string())
        );
    }
    Ok(())
}
