//! Charts: every kind renders to PNG and SVG in memory with the bundled font, the bytes
//! are real images, and bad output paths leave no file behind.

use hequant::mapper::sweep::{BitRange, sweep};
use hequant::model::{self, BitsPolicy, EvalOptions, parse_bits};
use hequant::plot::{Chart, ImageFormat, Size, layer_bars, render};
use hequant::protocol::{CostModel, Protocol};
use std::path::Path;

fn setup() -> (CostModel, hequant::workload::Network) {
    let cm = CostModel::builtin().expect("cost model");
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("networks/minionn-cifar10.toml");
    (cm, hequant::spec::network::load(&p).expect("network"))
}

fn opts(cm: &CostModel, p: Protocol) -> EvalOptions {
    let mut o = EvalOptions::new(p, cm);
    o.bits = BitsPolicy {
        uniform: Some(parse_bits("w4a4").expect("bits")),
        all_layers: false,
    };
    o
}

#[test]
fn every_chart_renders_to_png_and_svg() {
    let (cm, net) = setup();
    // CrypTFlow2 costs over ten times HEQuant: the log axes are drawn too.
    let protocols = [
        Protocol::Cryptflow2,
        Protocol::Cheetah,
        Protocol::HequantNaive,
        Protocol::Hequant,
    ];
    let s = sweep(
        &net,
        &opts(&cm, Protocol::Hequant),
        &cm,
        &protocols,
        BitRange { lo: 2, hi: 8 },
        false,
    )
    .expect("sweep");
    let r = model::evaluate(&net, &opts(&cm, Protocol::Hequant), &cm).expect("evaluate");
    let rs: Vec<_> = protocols
        .iter()
        .map(|&p| model::evaluate(&net, &opts(&cm, p), &cm).expect("evaluate"))
        .collect();
    let charts = [
        Chart::CommVsBits(&s),
        Chart::Pareto(&s),
        Chart::Layers(&r),
        Chart::Compare(&rs),
    ];
    let size = Size { w: 400, h: 300 };
    for c in &charts {
        let png = render(c, ImageFormat::Png, size).expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height right after the chunk header.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().expect("4")), 400);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().expect("4")), 300);
        let svg =
            String::from_utf8(render(c, ImageFormat::Svg, size).expect("svg")).expect("utf-8");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("<text"), "axis titles and legend are text");
    }
}

#[test]
fn legends_and_axis_titles_are_in_the_svg() {
    let (cm, net) = setup();
    let protocols = [Protocol::Cheetah, Protocol::Hequant];
    let s = sweep(
        &net,
        &opts(&cm, Protocol::Hequant),
        &cm,
        &protocols,
        BitRange { lo: 3, hi: 5 },
        true,
    )
    .expect("sweep");
    let svg = String::from_utf8(
        render(&Chart::CommVsBits(&s), ImageFormat::Svg, Size::COLUMN).expect("svg"),
    )
    .expect("utf-8");
    for needle in ["cheetah", "hequant", "total communication (MB", "bit width"] {
        assert!(svg.contains(needle), "{needle} missing");
    }
}

#[test]
fn layer_bars_add_up_to_the_total() {
    let (cm, net) = setup();
    let r = model::evaluate(&net, &opts(&cm, Protocol::Hequant), &cm).expect("evaluate");
    let bars = layer_bars(&r);
    let linear = r
        .layers
        .iter()
        .filter(|l| l.class == hequant::workload::CostClass::Linear)
        .count();
    assert_eq!(bars.len(), linear);
    let sum: u64 = bars.iter().map(|(_, v)| v.iter().sum::<u64>()).sum();
    assert_eq!(sum, r.total.bytes() - r.total.bytes_setup);
    let nl: u64 = bars.iter().map(|(_, v)| v[2]).sum();
    assert_eq!(nl, r.total.bytes_nonlinear);
}

fn hequant(args: &[&str]) -> (bool, String) {
    let mut a = vec!["hequant"];
    a.extend(args);
    match hequant::cli::run_from(a) {
        Ok(()) => (true, String::new()),
        Err(e) => (false, e),
    }
}

#[test]
fn bad_outputs_fail_cleanly_and_leave_no_file() {
    let dir = std::env::temp_dir().join(format!("hequant-plot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let jpg = dir.join("c.jpg");
    let (ok, err) = hequant(&[
        "plot",
        "compare",
        "-n",
        "minionn-cifar10",
        "--bits",
        "w4a4",
        "-o",
        jpg.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(err.contains("unsupported image extension"), "{err}");
    assert!(!jpg.exists());
    let missing = dir.join("no-such-dir").join("c.png");
    let (ok, err) = hequant(&[
        "plot",
        "layers",
        "-n",
        "minionn-cifar10",
        "--bits",
        "w4a4",
        "-o",
        missing.to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    let (ok, err) = hequant(&[
        "plot",
        "comm-vs-bits",
        "-n",
        "minionn-cifar10",
        "--bits",
        "9..3",
        "-o",
        dir.join("x.svg").to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(err.contains("reversed"), "{err}");
    let (ok, err) = hequant(&[
        "plot",
        "pareto",
        "-n",
        "minionn-cifar10",
        "--size",
        "10x10",
        "-o",
        dir.join("y.svg").to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(err.contains("image size"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    let ok_path = dir.join("ok.svg");
    let (ok, err) = hequant(&[
        "plot",
        "pareto",
        "-n",
        "minionn-cifar10",
        "--bits",
        "2..4",
        "-o",
        ok_path.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{err}");
    assert!(
        std::fs::read_to_string(&ok_path)
            .expect("svg")
            .starts_with("<svg")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
