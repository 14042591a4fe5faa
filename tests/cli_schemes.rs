//! Slot schemes in the reports: the scheme each searched layer uses, why the others lost,
//! the `paper` warning, and the batch's per-image totals, in every output format.

use std::process::Command;

const PAPER: &str = "slot scheme paper: not sound for secret-shared inputs";

fn run(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn estimate(batch: &str, slots: &str, format: &str) -> String {
    run(&[
        "estimate",
        "-n",
        "resnet18-cifar100",
        "-p",
        "hequant-packed",
        "--bits",
        "w4a4",
        "--batch",
        batch,
        "--slots",
        slots,
        "--format",
        format,
    ])
}

/// The CSV rows as maps from column name to value.
fn csv_rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn csv_names_the_scheme_and_why_the_others_lost() {
    let rows = csv_rows(&estimate("4", "exact,crt,client", "csv"));
    let row = |name: &str| rows.iter().find(|r| r["layer"] == name).unwrap();
    // The first layer reads the client's own image: client bit slots win there.
    assert_eq!(row("conv1")["scheme"], "client");
    assert!(row("conv1")["why_lost"].contains("exact: best"));
    assert!(row("conv1")["why_lost"].contains("% over the choice"));
    // Every searched linear layer names a scheme; other layers name none.
    for r in &rows {
        let searched = r["kind"] == "conv2d" || r["kind"] == "linear";
        if r["layer"] != "TOTAL" && r["layer"] != "PER_IMAGE" {
            assert_eq!(!r["scheme"].is_empty(), searched, "{}", r["layer"]);
        }
        assert_eq!(r["batch"], "4");
    }
    // No paper warning when paper is not allowed.
    assert!(rows.iter().all(|r| !r["warnings"].contains(PAPER)));
}

#[test]
fn crt_on_a_strided_layer_without_a_batch_is_infeasible_because_of_the_stride() {
    let rows = csv_rows(&estimate("1", "exact,crt,client", "csv"));
    let strided = rows
        .iter()
        .find(|r| r["layer"] == "layer2.0.conv1")
        .unwrap();
    assert!(strided["shape"].contains("s2"));
    let why = &strided["why_lost"];
    let crt = why
        .split("; ")
        .find(|w| w.starts_with("crt:"))
        .unwrap_or_else(|| panic!("no crt entry in {why}"));
    assert!(
        crt.contains("infeasible") && crt.contains("strided"),
        "{crt}"
    );
    // A stride-1 single-tile layer: CRT needs as many tiles as components.
    let single = rows
        .iter()
        .find(|r| r["layer"] == "layer1.0.conv1")
        .unwrap();
    assert!(single["why_lost"].contains("spatial tiles, the layer has 1"));
}

#[test]
fn paper_is_marked_in_every_format() {
    let slots = "exact,crt,client,paper";
    let j: serde_json::Value = serde_json::from_str(&estimate("1", slots, "json")).unwrap();
    let warnings = j["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains(PAPER)),
        "{warnings:?}"
    );
    for f in ["table", "markdown", "csv"] {
        assert!(
            estimate("1", slots, f).contains(PAPER),
            "{f} lacks the warning"
        );
    }
    // The default (sound) schemes carry no such warning.
    let j: serde_json::Value =
        serde_json::from_str(&estimate("1", "exact,crt,client", "json")).unwrap();
    assert!(
        j["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| !w.as_str().unwrap().contains(PAPER))
    );
}

#[test]
fn per_image_totals_are_the_totals_over_the_batch() {
    let j: serde_json::Value =
        serde_json::from_str(&estimate("4", "exact,crt,client", "json")).unwrap();
    assert_eq!(j["batch"], 4);
    let t = &j["total"];
    let p = &j["per_image"];
    let total = (t["bytes_client_to_server"].as_u64().unwrap()
        + t["bytes_server_to_client"].as_u64().unwrap()) as f64;
    assert_eq!(p["bytes"].as_f64().unwrap(), total / 4.0);
    assert_eq!(
        p["bytes_linear"].as_f64().unwrap(),
        t["bytes_linear"].as_u64().unwrap() as f64 / 4.0
    );
    // Every searched layer serialises its per-scheme outcomes.
    let conv1 = j["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "conv1")
        .unwrap();
    assert_eq!(conv1["mapping"]["packing"]["scheme"], "client");
    assert!(conv1["schemes"].as_array().unwrap().len() >= 3);
    // The CSV's PER_IMAGE row agrees.
    let rows = csv_rows(&estimate("4", "exact,crt,client", "csv"));
    let tot = rows.iter().find(|r| r["layer"] == "TOTAL").unwrap();
    let per = rows.iter().find(|r| r["layer"] == "PER_IMAGE").unwrap();
    for k in ["bytes_client_to_server", "bytes_server_to_client"] {
        let a: f64 = tot[k].parse().unwrap();
        let b: f64 = per[k].parse().unwrap();
        assert_eq!(b, a / 4.0, "{k}");
    }
    // The table and Markdown headers state the batch and the per-image totals.
    for f in ["table", "markdown"] {
        let s = estimate("4", "exact,crt,client", f);
        assert!(s.contains("batch: 4"), "{f}");
        assert!(s.contains("per image: "), "{f}");
        assert!(s.contains("conv1: client"), "{f}");
    }
}

#[test]
fn plot_packing_writes_an_svg_with_every_series() {
    let dir = std::env::temp_dir().join(format!("hequant-packing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("packing.svg");
    let o = Command::new(env!("CARGO_BIN_EXE_hequant"))
        .args(["plot", "packing", "--batch", "4", "--bits", "2..4", "-o"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") && svg.len() > 1000);
    for name in [
        "hequant-naive (no packing)",
        "hequant-packed, slots exact",
        "hequant-packed, slots client",
        "hequant-packed, slots crt",
        "hequant-packed, slots exact+crt+client",
        "hequant (exact+crt+client)",
    ] {
        // Each legend entry is one text element of its own.
        assert!(svg.lines().any(|l| l.trim() == name), "{name} missing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
