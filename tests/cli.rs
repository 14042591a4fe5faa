//! The command line end to end: outputs, the JSON contract, and bad input. Every bad
//! input must exit non-zero with a message naming the problem, never panic.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn fails_with(args: &[&str], needles: &[&str]) {
    let o = run(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{args:?} succeeded");
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: expected '{n}' in: {err}");
    }
}

/// A cost-model directory whose cheetah.toml has `log_q = 109` replaced by `log_q = {q}`.
fn cheetah_with_log_q(q: u32) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hequant-cm-{q}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cost-models/cheetah.toml"
    ))
    .unwrap();
    std::fs::write(
        dir.join("cheetah.toml"),
        text.replace("log_q = 109", &format!("log_q = {q}")),
    )
    .unwrap();
    dir
}

fn tmp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hequant-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const NET: &str = "format = \"hequant-network\"\nversion = 1\nname = \"t\"\ninput = [3, 8, 8]\ndefault_bits = { w = 4, a = 4 }\n\n[[layer]]\nname = \"c1\"\nkind = \"conv2d\"\nout_channels = 4\nkernel = 3\npadding = 1\n\n[[layer]]\nname = \"r1\"\nkind = \"relu\"\n";

#[test]
fn json_contract() {
    let o = run(&[
        "estimate",
        "-n",
        "resnet18-cifar100",
        "-p",
        "hequant",
        "--bits",
        "w4a4",
        "--format",
        "json",
    ]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["protocol"], "hequant");
    let l = &v["layers"][0];
    for k in [
        "name",
        "kind",
        "ct_client_to_server",
        "ct_server_to_client",
        "bytes_client_to_server",
        "bytes_server_to_client",
        "rounds",
        "latency_s",
    ] {
        assert!(!l[k].is_null(), "layer field {k}");
    }
    for k in [
        "bytes_client_to_server",
        "bytes_server_to_client",
        "bytes_linear",
        "bytes_nonlinear",
        "rounds",
        "latency_s",
    ] {
        assert!(!v["total"][k].is_null(), "total field {k}");
    }
    let sum: u64 = v["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["bytes_client_to_server"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, v["total"]["bytes_client_to_server"].as_u64().unwrap());
}

#[test]
fn compare_gives_an_array_and_factors() {
    let o = run(&[
        "estimate",
        "--compare",
        "cheetah,hequant",
        "--bits",
        "w4a4",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    let t = run(&["estimate", "--compare", "cheetah,hequant", "--bits", "w4a4"]);
    assert!(String::from_utf8_lossy(&t.stdout).contains("reduction factor"));
}

#[test]
fn csv_and_markdown_and_output_file() {
    let p = std::env::temp_dir().join(format!("hequant-out-{}.csv", std::process::id()));
    let o = run(&[
        "estimate",
        "-p",
        "cheetah",
        "--format",
        "csv",
        "-o",
        p.to_str().unwrap(),
    ]);
    assert!(o.status.success() && o.stdout.is_empty());
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.starts_with("network,protocol,wire,layer"));
    assert!(text.lines().last().unwrap().contains("TOTAL"));
    let md = run(&["estimate", "-p", "cheetah", "--format", "markdown"]);
    assert!(String::from_utf8_lossy(&md.stdout).contains("| layer | kind |"));
}

/// Markdown is Markdown all through: the heading keeps bits and ReLU mode, and a comparison's
/// reduction and latency matrices are pipe tables whose cells agree with the JSON totals.
#[test]
fn markdown_comparisons_are_tables() {
    let args = [
        "estimate",
        "-n",
        "minionn-cifar10",
        "--bits",
        "w4a4",
        "--compare",
        "cheetah,hequant",
    ];
    let md = run(&[&args[..], &["--format", "markdown"]].concat());
    let md = String::from_utf8_lossy(&md.stdout).to_string();
    assert!(
        md.contains("bits: w4a4 (first and last layer w8a8); ReLU: exact;"),
        "{md}"
    );
    assert!(!md.contains("reduction factor (row / column, total communication):"));
    let table_after = |title: &str| -> Vec<Vec<String>> {
        let start = md.find(&format!("**{title}**")).expect(title);
        md[start..]
            .lines()
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .collect()
    };
    let bytes = table_after("reduction factor (row / column, total communication)");
    assert_eq!(bytes[0], ["", "cheetah", "hequant"]);
    assert_eq!(bytes[1][0], "---");
    let j = run(&[&args[..], &["--format", "json"]].concat());
    let j: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    let total = |i: usize| {
        let t = &j[i]["total"];
        (t["bytes_client_to_server"].as_u64().unwrap()
            + t["bytes_server_to_client"].as_u64().unwrap()) as f64
    };
    assert_eq!(bytes[2][0], "cheetah");
    assert_eq!(bytes[2][2], format!("{:.2}", total(0) / total(1)));
    assert_eq!(bytes[3][1], format!("{:.2}", total(1) / total(0)));
    let lat = table_after("latency factor (row / column)");
    assert_eq!(lat.len(), 4);
    assert_eq!(lat[2][1], "1.00");
}

#[test]
fn wire_format_is_reported_and_changes_bytes() {
    let a = run(&["estimate", "-p", "cheetah", "--format", "json"]);
    let b = run(&[
        "estimate", "-p", "cheetah", "--format", "json", "--wire", "packed",
    ]);
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&a.stdout).unwrap(),
        serde_json::from_slice(&b.stdout).unwrap(),
    );
    assert_eq!(a["wire"], "SEAL serialisation + zstd");
    assert_eq!(b["wire"], "bit-packed");
    assert!(a["total"]["bytes_linear"].as_u64() > b["total"]["bytes_linear"].as_u64());
}

#[test]
fn malformed_toml_names_file_and_line() {
    let p = tmp(
        "bad.toml",
        "format = \"hequant-network\"\nversion = 1\nname = [\n",
    );
    fails_with(&["estimate", "-n", p.to_str().unwrap()], &["bad.toml:"]);
}

#[test]
fn unknown_version_is_refused() {
    let p = tmp("v9.toml", &NET.replace("version = 1", "version = 9"));
    fails_with(
        &["estimate", "-n", p.to_str().unwrap()],
        &["v9.toml:2:", "version", "unsupported version 9"],
    );
}

#[test]
fn unknown_layer_kind_is_refused() {
    let p = tmp("kind.toml", &NET.replace("\"relu\"", "\"gelu\""));
    fails_with(
        &["estimate", "-n", p.to_str().unwrap()],
        &[
            "kind.toml:16:",
            "layer[1].kind",
            "unknown layer kind 'gelu'",
        ],
    );
}

#[test]
fn unknown_protocol_is_refused() {
    fails_with(&["estimate", "-p", "iron"], &["unknown protocol 'iron'"]);
}

#[test]
fn shapes_that_do_not_chain_are_refused() {
    let p = tmp(
        "chain.toml",
        &(NET.to_string()
            + "\n[[layer]]\nname = \"a\"\nkind = \"add\"\nfrom = [\"r1\", \"input\"]\n"),
    );
    fails_with(
        &["estimate", "-n", p.to_str().unwrap()],
        &["chain.toml:21:", "layer[2].from", "4x8x8 and 3x8x8"],
    );
}

#[test]
fn bit_width_out_of_range_is_refused() {
    fails_with(&["estimate", "--bits", "w40a4"], &["1..=32"]);
    let p = tmp("bits.toml", &NET.replace("w = 4, a = 4", "w = 0, a = 4"));
    fails_with(
        &["estimate", "-n", p.to_str().unwrap()],
        &["bits.toml:5:", "1..=32"],
    );
}

#[test]
fn tile_larger_than_the_ring_is_refused() {
    // The mapping names its network by a path next to it (its network replaces -n).
    let net = tmp("tile-net.toml", NET);
    let map = tmp(
        "tile.toml",
        "format = \"hequant-mapping\"\nversion = 1\nnetwork = \"tile-net.toml\"\nprotocol = \"hequant\"\n\n[[layer]]\nlayer = \"c1\"\n\n[layer.linear]\nn = 256\ntiling = { c_w = 3, h_w = 10, w_w = 10, m_w = 1 }\npacking = { direction = \"none\", factor = 1 }\n",
    );
    fails_with(
        &[
            "estimate",
            "-n",
            net.to_str().unwrap(),
            "--mapping",
            map.to_str().unwrap(),
        ],
        &["layer 'c1'", "ring capacity", "300 coefficients", "N = 256"],
    );
}

#[test]
fn modulus_that_cannot_hold_the_plaintext_is_refused() {
    let dir = cheetah_with_log_q(30);
    fails_with(
        &["--cost-models", dir.to_str().unwrap(), "estimate"],
        &["cheetah.toml:", "he.log_q", "cannot hold"],
    );
}

#[test]
fn insecure_parameters_need_the_flag_and_are_marked() {
    let dir = cheetah_with_log_q(120);
    let d = dir.to_str().unwrap();
    fails_with(
        &["--cost-models", d, "estimate", "-p", "cheetah"],
        &["below 128-bit security", "--allow-insecure"],
    );
    for fmt in ["table", "json", "csv", "markdown"] {
        let o = run(&[
            "--cost-models",
            d,
            "estimate",
            "-p",
            "cheetah",
            "--allow-insecure",
            "--format",
            fmt,
        ]);
        assert!(o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout)
                .to_lowercase()
                .contains("insecure"),
            "{fmt} output does not say insecure"
        );
    }
}

#[test]
fn missing_bits_for_a_quantized_protocol_is_explained() {
    let p = tmp(
        "nobits.toml",
        &NET.replace("default_bits = { w = 4, a = 4 }\n", ""),
    );
    fails_with(
        &["estimate", "-n", p.to_str().unwrap(), "-p", "hequant"],
        &["layer 'c1'", "--bits"],
    );
}

#[test]
fn unwritable_output_path_is_an_error() {
    fails_with(
        &["estimate", "-o", "/nonexistent-dir/x.json"],
        &["cannot write", "/nonexistent-dir"],
    );
}

#[test]
fn networks_and_protocols_list() {
    let o = run(&["networks"]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("resnet50-cheetah") && s.contains("4.089"));
    let o = run(&["protocols"]);
    let s = String::from_utf8_lossy(&o.stdout);
    for p in [
        "cheetah",
        "cryptflow2",
        "hequant-naive",
        "hequant-packed",
        "hequant",
    ] {
        assert!(s.contains(p));
    }
}

/// A reader that closes the pipe after one byte (`hequant estimate | head -c 1`): the
/// program ends without a panic message.
#[test]
fn a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args([
            "estimate",
            "--format",
            "json",
            "--network",
            "resnet50-imagenet",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut out = child.stdout.take().expect("stdout");
    let mut one = [0u8; 1];
    out.read_exact(&mut one).expect("one byte");
    drop(out);
    let res = child.wait_with_output().expect("it ends");
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

/// `calibrate -o DIR/compute.toml`, as the README writes it, creates DIR (a cost-model
/// directory of its own) and writes a file that `--cost-models DIR` then reads.
#[test]
fn calibrate_creates_its_output_directory() {
    let dir = std::env::temp_dir().join(format!("hequant-cal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("my-machine").join("compute.toml");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args(["calibrate", "--reps", "3", "-o", out.to_str().unwrap()])
        .output()
        .expect("run calibrate");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).expect("the calibrated file");
    assert!(text.contains("format = \"hequant-compute\""), "{text}");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args([
            "--cost-models",
            dir.join("my-machine").to_str().unwrap(),
            "estimate",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run estimate");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_man_page_cover_every_subcommand() {
    // Every subcommand of `hequant --help` appears in each shell's script and in the man page.
    let help = String::from_utf8(run(&["--help"]).stdout).unwrap();
    let subs: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|s| *s != "help")
        .collect();
    assert!(subs.len() >= 12, "{subs:?}");
    for shell in ["bash", "zsh", "fish"] {
        let o = run(&["completions", shell]);
        assert!(o.status.success(), "{shell}");
        let s = String::from_utf8(o.stdout).unwrap();
        for sub in &subs {
            assert!(s.contains(sub), "{shell} completions lack '{sub}'");
        }
        // Options of a subcommand are completed too.
        assert!(
            s.contains("accumulator") && s.contains("end-to-end"),
            "{shell}"
        );
    }
    let man = String::from_utf8(run(&["man"]).stdout).unwrap();
    assert!(
        man.starts_with(".ie") && man.contains(".TH hequant 1"),
        "{}",
        &man[..80]
    );
    for sub in &subs {
        assert!(man.contains(sub), "the man page lacks '{sub}'");
    }
    fails_with(&["completions", "tcsh"], &["tcsh"]);
}

/// `estimate --summary` prints every report's totals without its per-layer table, within 100
/// columns, on every shipped network, five protocols at batch 4 on the WAN link; and refuses a
/// format other than the table, which carries the totals already.
#[test]
fn estimate_summary_fits_100_columns_on_every_shipped_network() {
    let nets = shipped_networks();
    let protocols = "cryptflow2,cheetah,hequant-naive,hequant-packed,hequant";
    for n in &nets {
        let o = run(&[
            "estimate",
            "--summary",
            "-n",
            n,
            "--protocols",
            protocols,
            "--bits",
            "w4a4",
            "--batch",
            "4",
            "--link",
            "wan",
        ]);
        assert!(
            o.status.success(),
            "{n}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8(o.stdout).unwrap();
        for line in out.lines() {
            assert!(
                line.chars().count() <= 100,
                "{n}: {} columns: {line}",
                line.chars().count()
            );
            assert!(
                !line.starts_with("layer "),
                "{n}: a per-layer table: {line}"
            );
        }
        assert_eq!(
            out.matches("\ntotal: ").count() + out.starts_with("total: ") as usize,
            5,
            "{n}"
        );
        assert_eq!(out.matches("  per image: ").count(), 5, "{n}");
    }
    fails_with(
        &["estimate", "--summary", "-f", "json"],
        &["--summary", "json"],
    );
}

/// The shipped networks' names, sorted.
fn shipped_networks() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/networks");
    let mut nets: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            (p.extension()? == "toml").then_some(stem)
        })
        .collect();
    nets.sort();
    assert!(nets.len() >= 10, "{nets:?}");
    nets
}

/// The standard output of a command that must succeed.
fn stdout_of(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The default tables of estimate, search, sweep and mixed fit 100 columns (characters,
/// not bytes) on every shipped network; `--wide` shows the columns they leave out, and a
/// layer name cut to fit (marked `…`) is whole in `--wide`.
#[test]
fn default_tables_fit_100_columns_on_every_shipped_network() {
    let commands: [&[&str]; 4] = [
        &[
            "estimate",
            "--bits",
            "w4a4",
            "--protocols",
            "cheetah,hequant",
        ],
        &["search", "--bits", "w4a4"],
        &["sweep", "--bits", "4..4", "--protocols", "cheetah,hequant"],
        &[
            "mixed",
            "--bits",
            "4..4",
            "--budget-mb",
            "100000",
            "--points",
            "2",
        ],
    ];
    let mut cut = 0;
    for n in &shipped_networks() {
        for c in commands {
            let args = [c, &["-n", n]].concat();
            let out = stdout_of(&args);
            for line in out.lines() {
                assert!(
                    line.chars().count() <= 100,
                    "{args:?}: {} columns: {line}",
                    line.chars().count()
                );
            }
            if c[0] == "estimate" && out.contains('…') {
                cut += 1;
                // Every name the narrow table cut is whole in the wide one.
                let wide = stdout_of(&[&args[..], &["--wide"]].concat());
                let names: Vec<&str> = wide
                    .lines()
                    .skip_while(|l| !l.starts_with("layer "))
                    .skip(1)
                    .take_while(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with("slot"))
                    .filter_map(|l| l.split_whitespace().next())
                    .collect();
                let cut_names = out
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .filter_map(|w| w.split_once('…').map(|ht| (w, ht)));
                for (short, (head, tail)) in cut_names {
                    assert!(
                        names
                            .iter()
                            .any(|w| *w != short && w.starts_with(head) && w.ends_with(tail)),
                        "{n}: no whole name for {short} in --wide"
                    );
                }
            }
        }
    }
    assert!(cut > 0, "no shipped network has a layer name cut to fit");
    // --wide restores what the narrow tables leave out.
    for (args, column) in [
        (&["estimate", "-n", "resnet18-cifar100"][..], "log q"),
        (
            &["search", "-n", "minionn-cifar10"][..],
            "infeasible by constraint",
        ),
        (
            &["sweep", "-n", "minionn-cifar10", "--bits", "4..5"][..],
            "non-linear (OT)",
        ),
    ] {
        let narrow = stdout_of(args);
        let wide = stdout_of(&[args, &["--wide"]].concat());
        assert!(
            !narrow.contains(column),
            "{args:?}: '{column}' in the narrow table"
        );
        assert!(wide.contains(column), "{args:?}: no '{column}' with --wide");
        assert!(
            wide.lines().any(|l| l.chars().count() > 100),
            "{args:?}: --wide fits 100 columns, so it cannot show more"
        );
    }
}

/// verify's report (a linear and a non-linear layer of ResNet-18, real HE and OT) fits 100
/// columns by default; `--wide` shows the per-phase times it leaves out.
#[test]
fn verify_table_fits_100_columns_and_wide_shows_every_column() {
    let args = [
        "verify",
        "-n",
        "resnet18-cifar100",
        "--bits",
        "w4a4",
        "--layers",
        "layer4.0.downsample.0,layer4.1.relu2",
    ];
    let narrow = stdout_of(&args);
    for line in narrow.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    assert!(narrow.contains("layer4.0.downsample.0") && narrow.contains("layer4.1.relu2"));
    let wide = stdout_of(&[&args[..], &["--wide"]].concat());
    for column in ["xfer s", "ct in/out", "model B"] {
        assert!(!narrow.contains(column), "'{column}' in the narrow table");
        assert!(wide.contains(column), "no '{column}' with --wide");
    }
}

/// The offline time is in every format: JSON per layer and in the totals, the CSV's
/// `offline_s` column (layers and TOTAL row), and the table's `offline:` line; the total
/// is the layers' sum, and only weighted layers have any.
#[test]
fn offline_time_is_in_every_format_and_sums_over_layers() {
    let args = ["estimate", "-n", "minionn-cifar10", "-p", "cheetah"];
    let json: serde_json::Value =
        serde_json::from_slice(&run(&[&args[..], &["-f", "json"]].concat()).stdout).unwrap();
    let layers = json["layers"].as_array().unwrap();
    let sum: f64 = layers
        .iter()
        .map(|l| l["offline_s"].as_f64().unwrap())
        .sum();
    let total = json["total"]["offline_s"].as_f64().unwrap();
    assert!(total > 0.0 && (sum - total).abs() < 1e-12, "{sum} {total}");
    for l in layers {
        let weighted = l["he"].is_object();
        assert_eq!(
            l["offline_s"].as_f64().unwrap() > 0.0,
            weighted,
            "{}",
            l["name"]
        );
    }
    let csv_out = String::from_utf8(run(&[&args[..], &["-f", "csv"]].concat()).stdout).unwrap();
    let mut rd = csv::Reader::from_reader(csv_out.as_bytes());
    let col = rd
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "offline_s")
        .unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    let csv_total: f64 = rows.last().unwrap()[col].parse().unwrap();
    assert!((csv_total - total).abs() < 1e-6, "{csv_total} {total}");
    let table = String::from_utf8(run(&args).stdout).unwrap();
    assert!(table.contains("  offline: "), "{table}");
}

/// One bit-width grammar: a command that takes one width refuses a range or a set, and one
/// that takes several refuses what it cannot sweep; every error names the flag and the text.
#[test]
fn bit_widths_errors_name_the_flag_and_the_text() {
    let n = ["-n", "minionn-cifar10"];
    for cmd in [
        &["estimate"][..],
        &["search"],
        &["explore", "--no-tui"],
        &["verify"],
        &["plot", "layers", "-o", "/tmp/hequant-never.png"],
    ] {
        fails_with(
            &[cmd, &n[..], &["--bits", "2..8"]].concat(),
            &["--bits takes one width here, e.g. w4a4; got a range 2..8"],
        );
        fails_with(
            &[cmd, &n[..], &["--bits", "4,6"]].concat(),
            &["--bits takes one width here", "a set"],
        );
    }
    for (bits, says) in [
        ("w0a4", "width 0 is outside 1..=32"),
        ("w99a4", "width 99 is outside 1..=32"),
        ("8..2", "reversed"),
        ("4,,6", "a width is missing"),
        ("", "empty"),
        ("w4", "not a width"),
    ] {
        let quoted = format!("--bits '{bits}'");
        for cmd in [
            &["estimate"][..],
            &["sweep"],
            &["mixed", "--budget-mb", "10"],
            &["plot", "packing", "-o", "/tmp/hequant-never.svg"],
        ] {
            fails_with(&[cmd, &n[..], &["--bits", bits]].concat(), &[&quoted, says]);
        }
    }
    fails_with(
        &["sweep", "-n", "minionn-cifar10", "--bits", "w4a8,w8a8"],
        &["--bits 'w4a8,w8a8'", "w4a8 is not one"],
    );
    fails_with(
        &[
            "mixed",
            "-n",
            "minionn-cifar10",
            "--budget-mb",
            "10",
            "--bits",
            "4,6,8",
        ],
        &["--bits", "consecutive", "4..8"],
    );
}

/// A sweep takes a range, a set, or one width (a set of one); a set's points are the range's
/// points at those widths.
#[test]
fn sweep_takes_a_range_a_set_or_one_width() {
    let sweep = |bits: &str| {
        let args = [
            "sweep",
            "-n",
            "minionn-cifar10",
            "--protocols",
            "hequant,cheetah",
            "--bits",
            bits,
            "--format",
            "csv",
        ];
        stdout_of(&args)
    };
    let pick = |csv: &str, bits: &[&str]| -> Vec<String> {
        csv.lines()
            .skip(1)
            .filter(|l| bits.contains(&l.split(',').nth(2).unwrap()))
            .map(|l| l.rsplit_once(',').unwrap().0.to_string()) // without the front column
            .collect()
    };
    let range = sweep("4..7");
    let set = sweep("w7a7,4,6");
    assert_eq!(pick(&set, &["4", "6", "7"]), pick(&range, &["4", "6", "7"]));
    assert_eq!(pick(&set, &["5"]), Vec::<String>::new());
    // The front is taken over the set's points: a point is on it when no other point has
    // as many bits or more, as few bytes or fewer and as low a latency or lower, one of
    // them strictly.
    let rows: Vec<(f64, f64, f64, bool)> = set
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap();
            (-num(2), num(3), num(9), f[10] == "true")
        })
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let dominated = rows.iter().enumerate().any(|(j, q)| {
            j != i
                && q.0 <= r.0
                && q.1 <= r.1
                && q.2 <= r.2
                && (q.0 < r.0 || q.1 < r.1 || q.2 < r.2)
        });
        assert_eq!(r.3, !dominated, "{set}");
    }
    // Protocol-major, then bits ascending.
    let order: Vec<String> = set
        .lines()
        .skip(1)
        .map(|l| l.split(',').skip(1).take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        order,
        [
            "hequant 4",
            "hequant 6",
            "hequant 7",
            "cheetah 4",
            "cheetah 6",
            "cheetah 7"
        ]
    );
    let one = sweep("w5a5");
    assert_eq!(one.lines().count(), 3, "{one}");
    assert_eq!(pick(&one, &["5"]).len(), 2);
    // The table names the set, not the range around it.
    let t = stdout_of(&[
        "sweep",
        "-n",
        "minionn-cifar10",
        "--protocols",
        "hequant",
        "--bits",
        "4,6",
    ]);
    assert!(t.contains("w4a4,w6a6"), "{t}");
}

/// sweep, mixed and plot take the custom link of estimate: the same flags, the same link.
#[test]
fn custom_link_everywhere() {
    let link = ["--bandwidth-mbps", "100", "--rtt-ms", "20"];
    let json = |args: &[&[&str]]| -> serde_json::Value {
        let base = ["-n", "minionn-cifar10", "--format", "json"];
        serde_json::from_str(&stdout_of(&[args.concat(), base.to_vec()].concat())).unwrap()
    };
    let uniform = ["--bits", "4", "--bits-all"];
    let sweep = ["sweep", "--protocols", "hequant"];
    let e = json(&[&["estimate"], &uniform, &link]);
    let name = e["link"]["name"].as_str().unwrap().to_string();
    assert!(name.contains("100") && name.contains("20"), "{name}");
    let s = json(&[&sweep, &uniform, &link]);
    assert_eq!(s["link"].as_str(), Some(name.as_str()));
    assert_eq!(s["points"][0]["latency_s"], e["total"]["latency_s"]);
    let lan = json(&[&sweep, &uniform]);
    assert_ne!(lan["points"][0]["latency_s"], s["points"][0]["latency_s"]);
    let m = json(&[&["mixed", "--bits", "4..5", "--budget-mb", "100"], &link]);
    assert_eq!(m["report"]["link"]["name"].as_str(), Some(name.as_str()));
    let png = std::env::temp_dir().join(format!("hequant-link-{}.png", std::process::id()));
    let png = png.to_str().unwrap();
    for chart in ["comm-vs-bits", "pareto", "layers", "compare"] {
        let bits = if chart == "layers" || chart == "compare" {
            "w4a4"
        } else {
            "4..5"
        };
        let args = [
            &[
                "plot",
                chart,
                "-n",
                "minionn-cifar10",
                "--bits",
                bits,
                "-o",
                png,
            ][..],
            &link,
        ]
        .concat();
        stdout_of(&args);
    }
    for cmd in [
        &["sweep"][..],
        &["mixed", "--budget-mb", "10"],
        &["plot", "pareto", "-o", png],
    ] {
        fails_with(
            &[cmd, &["--bandwidth-mbps=-5", "--rtt-ms", "1"]].concat(),
            &["--bandwidth-mbps -5"],
        );
        fails_with(
            &[cmd, &["--bandwidth-mbps", "5", "--rtt-ms=-1"]].concat(),
            &["--rtt-ms -1"],
        );
        fails_with(
            &[cmd, &["--link", "moon"]].concat(),
            &["moon", "--bandwidth-mbps and --rtt-ms"],
        );
        fails_with(&[cmd, &["--rtt-ms", "1"]].concat(), &["--bandwidth-mbps"]);
    }
}

/// `plot compare` draws --protocols: a -p is refused, not ignored.
#[test]
fn plot_compare_refuses_a_protocol_it_would_ignore() {
    let png = std::env::temp_dir().join(format!("hequant-cmp-{}.png", std::process::id()));
    let _ = std::fs::remove_file(&png);
    let p = png.to_str().unwrap();
    fails_with(
        &[
            "plot",
            "compare",
            "-n",
            "minionn-cifar10",
            "-p",
            "cheetah",
            "-o",
            p,
        ],
        &["--protocols cheetah", "-p/--protocol"],
    );
    assert!(!png.exists());
}

/// import writes its summary as table (`text` an old name) or json; other formats are refused.
#[test]
fn import_formats() {
    let f = "tests/data/resnet18_bn.onnx";
    let table = stdout_of(&["import", f]);
    assert_eq!(stdout_of(&["import", f, "--format", "text"]), table);
    assert_eq!(stdout_of(&["import", f, "-f", "table"]), table);
    let j: serde_json::Value =
        serde_json::from_str(&stdout_of(&["import", f, "-f", "json"])).unwrap();
    assert!(j["network"].is_string(), "{j}");
    for bad in ["csv", "markdown"] {
        fails_with(
            &["import", f, "--format", bad],
            &[&format!("'{bad}'"), "--format", "table, json"],
        );
    }
}

/// `explore --no-tui` prints estimate's report, narrow by default and with every column with
/// --wide; --wide with the explorer itself is refused.
#[test]
fn explore_no_tui_takes_wide() {
    let args = ["-n", "resnet18-cifar100", "--bits", "w4a4"];
    for wide in [&[][..], &["--wide"]] {
        assert_eq!(
            stdout_of(&[&["explore", "--no-tui"][..], &args, wide].concat()),
            stdout_of(&[&["estimate"][..], &args, wide].concat())
        );
    }
    let narrow = stdout_of(&[&["explore", "--no-tui"][..], &args].concat());
    let wide = stdout_of(&[&["explore", "--no-tui", "--wide"][..], &args].concat());
    assert_ne!(narrow, wide);
}

/// One option of a `--help` page: its short letter and its description (without the
/// `[default: ..]` and the possible values, which may differ by command).
#[derive(Debug, Clone, PartialEq)]
struct HelpFlag {
    short: Option<char>,
    text: String,
}

/// The subcommands a `--help` page lists under `Commands:` (without `help`).
fn help_commands(page: &str) -> Vec<String> {
    page.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|c| c != "help")
        .collect()
}

/// The options of a `--help` page by long name (`--network`), in the short or the long
/// layout of clap: a line `  -n, --network <NETWORK>  text` or the flag alone with the text
/// on the following, more indented lines.
fn help_flags(page: &str) -> std::collections::BTreeMap<String, HelpFlag> {
    let mut out = std::collections::BTreeMap::new();
    let mut current: Option<(String, HelpFlag, bool)> = None;
    let mut finish = |c: Option<(String, HelpFlag, bool)>| {
        if let Some((name, mut f, _)) = c {
            for cut in [" [default:", " [possible values:", " [aliases:"] {
                if let Some(i) = f.text.find(cut) {
                    f.text.truncate(i);
                }
            }
            f.text = f.text.split_whitespace().collect::<Vec<_>>().join(" ");
            out.insert(name, f);
        }
    };
    for line in page.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if (2..=6).contains(&indent) && t.starts_with('-') {
            finish(current.take());
            let (spec, text) = t.split_once("  ").unwrap_or((t, ""));
            let short = spec
                .strip_prefix('-')
                .filter(|s| !s.starts_with('-'))
                .and_then(|s| s.chars().next());
            let Some(long) = spec
                .split_whitespace()
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(',').to_string())
            else {
                continue;
            };
            let f = HelpFlag {
                short,
                text: text.trim().to_string(),
            };
            current = Some((long, f, false));
        } else if let Some((_, f, done)) = current.as_mut() {
            if indent > 6 && !*done {
                if t.starts_with('[') || t == "Possible values:" {
                    *done = true;
                } else {
                    f.text.push(' ');
                    f.text.push_str(t);
                }
            } else if indent <= 6 && !t.is_empty() {
                finish(current.take());
            }
        }
    }
    finish(current.take());
    out
}

/// Every (sub)command path with its `--help` page: `estimate`, ..., `plot layers`, ...
fn every_help_page() -> Vec<(String, String)> {
    let mut pages = Vec::new();
    let mut todo: Vec<Vec<String>> = help_commands(&stdout_of(&["--help"]))
        .into_iter()
        .map(|c| vec![c])
        .collect();
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let page = stdout_of(&args);
        let subs = help_commands(&page);
        if subs.is_empty() {
            pages.push((path.join(" "), page));
        } else {
            todo.extend(subs.into_iter().map(|s| [path.clone(), vec![s]].concat()));
        }
    }
    pages.sort();
    pages
}

/// The shared flags: where each applies, and which commands must agree on its text (a
/// class; commands of one class must show the same text, and the same short letter).
fn shared_flag_classes(flag: &str, command: &str) -> Option<&'static str> {
    let one_width = [
        "estimate",
        "search",
        "explore",
        "verify",
        "plot layers",
        "plot compare",
    ];
    let many_widths = ["sweep", "plot comm-vs-bits", "plot pareto", "plot packing"];
    let reports = ["estimate", "search", "sweep", "mixed", "verify"];
    let priced = |c: &str| {
        one_width.contains(&c)
            || c == "sweep"
            || c == "mixed"
            || c == "plot comm-vs-bits"
            || c == "plot pareto"
    };
    let yes = |b: bool| b.then_some("all");
    match flag {
        "--network" => yes(one_width.contains(&command)
            || many_widths.contains(&command)
            || command == "mixed"),
        "--bits" if one_width.contains(&command) => Some("one width"),
        "--bits" if many_widths.contains(&command) => Some("several widths"),
        "--bits" => (command == "mixed").then_some("mixed"),
        "--protocol" => yes([
            "estimate",
            "search",
            "explore",
            "verify",
            "mixed",
            "plot layers",
        ]
        .contains(&command)),
        // estimate's entries may carry a ReLU budget (`cheetah@49900`): its text says more.
        "--protocols" if command == "estimate" => Some("with budgets"),
        "--protocols" => {
            yes(["sweep", "plot comm-vs-bits", "plot pareto", "plot compare"].contains(&command))
        }
        "--format" if reports.contains(&command) => Some("report"),
        "--format" => (command == "import").then_some("import"),
        "--output" if reports.contains(&command) => Some("report"),
        "--output" if command.starts_with("plot ") => Some("image"),
        "--output" => match command {
            "import" => Some("import"),
            "calibrate" => Some("calibrate"),
            _ => None,
        },
        "--link" | "--bandwidth-mbps" | "--rtt-ms" => yes(priced(command)),
        "--cost-models" => Some("all"),
        "--wide" => yes(reports.contains(&command) || command == "explore"),
        _ => unreachable!("{flag}"),
    }
}

/// Walks every subcommand's `--help`: each shared flag is there wherever it applies (and
/// nowhere else), with one short letter and one help text per meaning.
#[test]
fn shared_flags_have_one_spelling_and_one_help_text() {
    let shared = [
        "--network",
        "--bits",
        "--protocol",
        "--protocols",
        "--format",
        "--output",
        "--link",
        "--bandwidth-mbps",
        "--rtt-ms",
        "--cost-models",
        "--wide",
    ];
    let pages = every_help_page();
    let names: Vec<&str> = pages.iter().map(|(c, _)| c.as_str()).collect();
    for c in [
        "estimate",
        "sweep",
        "mixed",
        "verify",
        "plot compare",
        "import",
    ] {
        assert!(names.contains(&c), "{c} not walked: {names:?}");
    }
    let mut seen: std::collections::BTreeMap<(String, &str), (String, HelpFlag)> =
        Default::default();
    let mut problems = Vec::new();
    for (command, page) in &pages {
        let flags = help_flags(page);
        for flag in shared {
            let class = shared_flag_classes(flag, command);
            match (class, flags.get(flag)) {
                (None, Some(_)) => problems.push(format!("{command}: {flag} is not expected here")),
                (Some(_), None) => problems.push(format!("{command}: {flag} is missing")),
                (None, None) => {}
                (Some(class), Some(f)) => {
                    if f.text.is_empty() {
                        problems.push(format!("{command}: {flag} has no help text"));
                    }
                    match seen.get(&(flag.to_string(), class)) {
                        Some((first, g)) if g != f => problems
                            .push(format!("{flag}: {first} says {g:?}, {command} says {f:?}")),
                        Some(_) => {}
                        None => {
                            seen.insert((flag.to_string(), class), (command.clone(), f.clone()));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let protocols = |class| &seen[&("--protocols".to_string(), class)].1.text;
    assert!(
        protocols("with budgets").starts_with(&format!("{}. ", protocols("all"))),
        "estimate's --protocols says more than the others', starting with the same"
    );
    // The parser reads both of clap's layouts (checked here so that the test cannot pass
    // by reading nothing).
    let f = help_flags(
        "Options:\n  -n, --network <N>  One text [default: x]\n      --bits <B>\n          Two\n          lines\n\n          [default: 2..8]\n  -h, --help  Print help\n",
    );
    assert_eq!(
        f["--network"],
        HelpFlag {
            short: Some('n'),
            text: "One text".into()
        }
    );
    assert_eq!(
        f["--bits"],
        HelpFlag {
            short: None,
            text: "Two lines".into()
        }
    );
    assert!(seen.len() >= shared.len(), "{seen:?}");
}

/// Every command line of the README's code blocks (`hequant SUB ...`, `$ hequant SUB ...`,
/// `cargo run --release -- SUB ...`, continuation lines joined) with its README line number,
/// as words up to a pipe, a redirection, a comment or the next command.
fn readme_command_lines(readme: &str, subcommands: &[String]) -> Vec<(usize, Vec<String>)> {
    let mut out = Vec::new();
    let mut in_code = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            pending = None;
            continue;
        }
        if !in_code {
            continue;
        }
        let (n, text) = match pending.take() {
            Some((n, before)) => (n, before + " " + line.trim()),
            None => (i + 1, line.trim().to_string()),
        };
        if let Some(head) = text.strip_suffix('\\') {
            pending = Some((n, head.to_string()));
            continue;
        }
        let t = text.strip_prefix("$ ").unwrap_or(&text);
        let Some(rest) = t
            .strip_prefix("hequant ")
            .or_else(|| t.strip_prefix("cargo run --release -- "))
        else {
            continue;
        };
        let words: Vec<String> = rest
            .split_whitespace()
            .take_while(|w| !["|", ">", ">>", "2>", "#", "&&", ";", "2>&1"].contains(w))
            .map(String::from)
            .collect();
        // A table row that starts with the protocol `hequant` names no subcommand.
        if words.first().is_some_and(|w| subcommands.contains(w)) {
            out.push((n, words));
        }
    }
    out
}

/// The README's examples use only flags that their subcommand's --help lists: hidden old
/// spellings (--compare, --bits-set) are not listed, so they are caught too.
#[test]
fn readme_examples_use_only_listed_flags() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let subcommands = help_commands(&stdout_of(&["--help"]));
    let lines = readme_command_lines(&readme, &subcommands);
    assert!(lines.len() >= 20, "{lines:?}");
    let mut pages: std::collections::HashMap<Vec<String>, _> = Default::default();
    let mut problems = Vec::new();
    for (n, words) in &lines {
        let path: Vec<String> = match words.as_slice() {
            [plot, chart, ..] if plot == "plot" => vec![plot.clone(), chart.clone()],
            [c, ..] => vec![c.clone()],
            [] => continue,
        };
        let flags = pages.entry(path.clone()).or_insert_with(|| {
            let args: Vec<&str> = path.iter().map(String::as_str).chain(["--help"]).collect();
            help_flags(&stdout_of(&args))
        });
        for w in words {
            let ok = if let Some(long) = w.strip_prefix("--") {
                let name = format!("--{}", long.split('=').next().unwrap_or(long));
                flags.contains_key(&name)
            } else if let Some(short) = w.strip_prefix('-').filter(|s| s.len() == 1) {
                let c = short.chars().next();
                flags.values().any(|f| f.short == c)
            } else {
                true
            };
            if !ok {
                problems.push(format!(
                    "README.md:{n}: `hequant {}` has no {w}",
                    path.join(" ")
                ));
            }
        }
    }
    // The check itself: an old spelling is caught.
    let old = readme_command_lines("```\nhequant estimate --compare a,b\n```\n", &subcommands);
    assert_eq!(
        old,
        [(
            2,
            vec!["estimate".to_string(), "--compare".into(), "a,b".into()]
        )]
    );
    assert!(!help_flags(&stdout_of(&["estimate", "--help"])).contains_key("--compare"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
