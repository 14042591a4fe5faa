//! Golden tests of the cost model against published and measured figures. Each names
//! its source and tolerance.

use hequant::model::report::{LayerReport, Report};
use hequant::model::{BitsPolicy, BnPolicy, CheetahVersion, EvalOptions, evaluate, parse_bits};
use hequant::protocol::{CostModel, Protocol, WireFormat};
use hequant::spec::network;
use hequant::workload::{CostClass, Network};
use std::path::Path;

fn net(name: &str) -> Network {
    network::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("networks")
            .join(format!("{name}.toml")),
    )
    .unwrap()
}

fn total(n: &Network, p: Protocol, bits: Option<&str>) -> Report {
    let cm = CostModel::builtin().unwrap();
    let mut o = EvalOptions::new(p, &cm);
    o.bits = BitsPolicy {
        uniform: bits.map(|b| parse_bits(b).unwrap()),
        all_layers: false,
    };
    evaluate(n, &o, &cm).unwrap()
}

/// The report under OpenCheetah's 2022 code, the code of the Cheetah paper's figures (the
/// model's default is the current, 2025, code).
fn total_2022(n: &Network, p: Protocol) -> Report {
    let cm = CostModel::builtin().unwrap();
    let mut o = EvalOptions::new(p, &cm);
    o.cheetah = CheetahVersion::Code2022;
    evaluate(n, &o, &cm).unwrap()
}

fn report(n: &Network, p: Protocol, wire: WireFormat) -> Report {
    let cm = CostModel::builtin().unwrap();
    let mut o = EvalOptions::new(p, &cm);
    o.wire = wire;
    evaluate(n, &o, &cm).unwrap()
}

const MIB: f64 = 1048576.0;

/// docs/measured/opencheetah-resnet50-conv.csv: (conv_idx, C, M, alice_sent, bob_sent) of
/// the 53 convolutions, bytes (the file's MiB times 2^20).
fn measured_convs() -> Vec<(u64, u64, u64, f64, f64)> {
    let csv = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/measured/opencheetah-resnet50-conv.csv"),
    )
    .unwrap();
    let mut rows = Vec::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let u = |i: usize| f[i].parse::<u64>().unwrap();
        let mib = |i: usize| f[i].parse::<f64>().unwrap() * MIB;
        rows.push((u(0), u(4), u(7), mib(11), mib(12)));
    }
    assert_eq!(rows.len(), 53);
    rows
}

fn resnet50_convs(r: &Report) -> Vec<&LayerReport> {
    let convs: Vec<_> = r.layers.iter().filter(|l| l.kind == "conv2d").collect();
    assert_eq!(convs.len(), 53);
    convs
}

/// Issue 2, check 1: Cheetah's HomConv ciphertext counts on ResNet-50, worked out by hand
/// from docs/protocol-reference.md 2.1 at N = 4096 for layers of each kind (conv numbers
/// as in docs/measured/opencheetah-resnet50-conv.csv):
/// - conv 1, 3 x 224 x 224, 7 x 7, stride 2, padded to 230 x 230: 230^2 > 4096, so C_w = 1,
///   H_w = min(floor(sqrt(4096 x 230 / 230)), 230) = 64, W_w = min(4096 / 64, 230) = 64;
///   tiles per axis ceil((230 - 7 + 1) / (64 - 7 + 1)) = ceil(224 / 58) = 4, 16 in all:
///   queries 3 x 16 = 48, responses 64 x 16 = 1024;
/// - conv 2, 64 x 56 x 56 -> 256, 1 x 1: 3136 <= 4096, C_w = min(floor(4096 / 3136), 64,
///   4096) = 1: queries 64, responses 256;
/// - conv 4, 64 x 56 x 56 -> 64, 3 x 3 SAME: 58 x 58 = 3364, C_w = min(1, 64, 455) = 1:
///   64 and 64;
/// - conv 12, 256 x 56 x 56 -> 512, 1 x 1 stride 2: subsampled to 28 x 28 = 784, C_w =
///   min(floor(4096 / 784), 256, 4096) = 5: queries ceil(256 / 5) = 52, responses 512;
/// - conv 14, 128 x 58 x 58 (padded) -> 128, 3 x 3 stride 2: 3364, C_w = 1: 128 and 128;
/// - conv 17, 128 x 28 x 28, 3 x 3 SAME: 30 x 30 = 900, C_w = min(4, 128, 455) = 4:
///   queries 128 / 4 = 32, responses 128;
/// - conv 30, 256 x 14 x 14, 3 x 3 SAME: 16 x 16 = 256, C_w = min(16, 256, 455) = 16:
///   queries 16, responses 256;
/// - conv 47, 512 x 7 x 7 -> 2048, 1 x 1: 49, C_w = min(floor(4096 / 49), 512) = 83:
///   queries ceil(512 / 83) = 7, responses 2048;
/// - conv 48, 2048 x 7 x 7 -> 512, 1 x 1: C_w = 83: queries ceil(2048 / 83) = 25,
///   responses 512;
/// - conv 49, 512 x 7 x 7, 3 x 3 SAME: 9 x 9 = 81, C_w = min(50, 512, 455) = 50:
///   queries ceil(512 / 50) = 11, responses 512.
#[test]
fn cheetah_homconv_counts_match_the_rule_worked_by_hand() {
    let r = report(
        &net("resnet50-cheetah"),
        Protocol::Cheetah,
        WireFormat::Native,
    );
    let convs = resnet50_convs(&r);
    let want: [(usize, u64, u64); 10] = [
        (1, 48, 1024),
        (2, 64, 256),
        (4, 64, 64),
        (12, 52, 512),
        (14, 128, 128),
        (17, 32, 128),
        (30, 16, 256),
        (47, 7, 2048),
        (48, 25, 512),
        (49, 11, 512),
    ];
    for (idx, q, resp) in want {
        let l = convs[idx - 1];
        assert_eq!(
            (l.ct_client_to_server, l.ct_server_to_client),
            (q, resp),
            "conv {idx} ({})",
            l.name
        );
    }
}

/// Query ciphertexts of all 53 convolutions of ResNet-50 against OpenCheetah's own run
/// (docs/measured/opencheetah-resnet50-conv.csv, bob_sent_MiB: the client sends only the
/// queries). The measured bytes of conv 3 (64 queries: 64 input channels, C_w = 1) give one
/// query's size, 3.80999 MiB / 64 = 62,423 B; every conv's measured bytes divided by it is
/// within 0.01 of an integer, its query count, which the model must give exactly. The
/// model's query bytes (a SEAL + zstd query of 62,423 B, src/protocol/sizes.rs seal_zstd) must be
/// within 0.05% of each measured figure: the measured size of one query varies by 0.046%
/// across the 53 convs (62,410.6 to 62,439.4 B).
#[test]
fn cheetah_query_counts_and_bytes_match_opencheetah_on_all_53_convs() {
    let r = report(
        &net("resnet50-cheetah"),
        Protocol::Cheetah,
        WireFormat::Native,
    );
    let convs = resnet50_convs(&r);
    let rows = measured_convs();
    let one = rows[2].4 / 64.0;
    for (&(idx, _, _, _, bob), l) in rows.iter().zip(&convs) {
        let count = bob / one;
        assert!((count - count.round()).abs() < 0.01, "conv {idx}: {count}");
        assert_eq!(l.ct_client_to_server, count.round() as u64, "conv {idx}");
        let dev = l.bytes_client_to_server as f64 / bob - 1.0;
        assert!(dev.abs() < 5e-4, "conv {idx}: {:+.3}%", dev * 100.0);
    }
}

/// Bytes of two ResNet-50 convolutions on the bit-packed wire, by hand
/// (docs/protocol-reference.md 2.2; l = 37, N = 4096, log q = 109):
/// - a query: 4096 x 109 bits = 55,808 B + a 16-byte seed = 55,824 B;
/// - a response: c1 at 37 + 13 = 50 bits in all 4096 coefficients (25,600 B) and c0 at
///   37 + 1 = 38 bits where an output sits.
///
/// Conv 3 (64 x 56 x 56 -> 64, 1 x 1): 64 queries = 3,572,736 B; 64 responses keeping
/// 56 x 56 = 3136 outputs, 4096 x 50 + 3136 x 38 = 323,968 bits = 40,496 B each:
/// 2,591,744 B. Conv 12 (stride 2, 28 x 28 outputs, C_w = 5): 52 queries = 2,902,848 B;
/// 512 responses keeping 784 outputs, 204,800 + 29,792 = 234,592 bits = 29,324 B each:
/// 15,013,888 B.
#[test]
fn cheetah_conv_bytes_on_the_packed_wire_by_hand() {
    let r = report(
        &net("resnet50-cheetah"),
        Protocol::Cheetah,
        WireFormat::Packed,
    );
    let convs = resnet50_convs(&r);
    for (idx, up, down) in [(3, 3_572_736, 2_591_744), (12, 2_902_848, 15_013_888)] {
        let l = convs[idx - 1];
        assert_eq!(
            (l.bytes_client_to_server, l.bytes_server_to_client),
            (up, down),
            "conv {idx} ({})",
            l.name
        );
    }
}

/// Issue 2, check 2: Cheetah on ResNet-50 (batch norm as separate layers, as Cheetah runs
/// it). Sources: Cheetah (USENIX Security 2022) reports 2.3 GB (docs/protocol-reference.md
/// 2); OpenCheetah's 2022 code measured 2366.69 MiB (docs/measured/README.md), which is
/// 2.311 x 2^30 B: the paper's GB is 2^30 bytes. Its one decimal covers [2.25, 2.35) x 2^30
/// B = [2304.0, 2406.4) MiB, the measured total inside (-2.6% / +1.7% of it). Band: that
/// interval.
#[test]
fn cheetah_resnet50_total_is_in_the_published_band() {
    let r = total_2022(&net("resnet50-cheetah"), Protocol::Cheetah);
    let mib = r.total.bytes() as f64 / MIB;
    assert!((2304.0..2406.4).contains(&mib), "{mib} MiB");
    assert_eq!(
        r.total.bytes_linear + r.total.bytes_nonlinear,
        r.total.bytes()
    );
    // The 18 batch norms of networks/sources/resnet50_layers.csv (FusedBatchNorm4411) stay
    // HomBN layers (none directly follows a conv). OpenCheetah's program picks the encoding
    // with fewer ciphertexts (docs/protocol-reference.md 2.3): the first, 64 x 56 x 56,
    // coefficient-encoded takes ceil(3136 / 4096) x 64 = 64 against SIMD slots of N = 4096
    // over 3 CRT primes (2 x 37 + 1 + 40 = 115 bits in primes of at most 50 bits)
    // ceil(200,704 / 4096) x 3 = 147: 64 each way. The fifth, 512 x 28 x 28: 512 against
    // ceil(401,408 / 4096) x 3 = 294, so SIMD, 294 each way.
    let bn: Vec<_> = r.layers.iter().filter(|l| l.kind == "batch_norm").collect();
    assert_eq!(bn.len(), 18);
    assert!(bn.iter().all(|l| l.class == CostClass::Linear));
    assert_eq!(
        (bn[0].ct_client_to_server, bn[0].ct_server_to_client),
        (64, 64)
    );
    assert_eq!(bn[4].input.c * bn[4].input.h * bn[4].input.w, 401_408);
    assert_eq!(
        (bn[4].ct_client_to_server, bn[4].ct_server_to_client),
        (294, 294)
    );
}

/// MiB per category as OpenCheetah's log counts them: by layer kind, except that the
/// truncation after a ReLU (its `truncate` flag; OpenCheetah runs it as a separate
/// `truncate_msb0` call logged as truncation) moves from "relu" to "truncate".
fn categories(r: &Report) -> std::collections::BTreeMap<String, f64> {
    let mut m = std::collections::BTreeMap::new();
    for l in &r.layers {
        *m.entry(l.kind.clone()).or_insert(0.0) += (l.bytes() - l.bytes_truncation) as f64 / MIB;
        *m.entry("truncate".to_string()).or_insert(0.0) += l.bytes_truncation as f64 / MIB;
    }
    m
}

/// Per category against OpenCheetah on ResNet-50, both code versions
/// (docs/measured/README.md, MiB both directions, measured on this machine kind).
/// Tolerance 5% per category, two-sided. The model is at (2022 / 2025): Conv -0.5%,
/// BatchNorm -0.2%, MatMul -0.2%, Truncation +2.4% / -0.1% (its 2025 figure is the one
/// cost-models/primitives.toml's 3.6 bits per correlated OT was fitted on), ReLU -3.2% /
/// -1.5%, Maxpool -1.5%. AvgPool (0.75 MiB) and ArgMax (0.11 MiB) are not compared one by
/// one: together 0.04% of the total, and one refill of Ferret's buffer of correlated OTs
/// lands on whichever layer drains it (docs/protocol-reference.md 2.4); both stay below
/// 1 MiB in the model. The total is held to 1%. The first four batch norms, from
/// opencheetah-resnet50-bn-first4.csv, to 1% each.
#[test]
fn cheetah_resnet50_categories_match_opencheetah() {
    let measured = [
        // (category, 2022 code, 2025 code)
        ("conv2d", 1052.45, 1052.44),
        ("batch_norm", 359.69, 359.68),
        ("linear", 1.95, 1.95),
        ("truncate", 340.06, 37.49),
        ("relu", 520.53, 271.57),
        ("max_pool", 91.17, 91.17),
    ];
    let mut off = Vec::new();
    for (v, total_mib) in [
        (CheetahVersion::Code2022, 2366.69),
        (CheetahVersion::Code2025, 1815.17),
    ] {
        let cm = CostModel::builtin().unwrap();
        let mut o = EvalOptions::new(Protocol::Cheetah, &cm);
        o.cheetah = v;
        let r = evaluate(&net("resnet50-cheetah"), &o, &cm).unwrap();
        let got = categories(&r);
        for (kind, m22, m25) in measured {
            let want = if v == CheetahVersion::Code2022 {
                m22
            } else {
                m25
            };
            let g = got.get(kind).copied().unwrap_or(0.0);
            if (g / want - 1.0).abs() > 0.05 {
                off.push(format!(
                    "{v:?} {kind} {g:.2} MiB vs {want} ({:+.1}%)",
                    (g / want - 1.0) * 100.0
                ));
            }
        }
        for kind in ["avg_pool", "argmax"] {
            let g = got.get(kind).copied().unwrap_or(0.0);
            if !(0.0..1.0).contains(&g) || g == 0.0 {
                off.push(format!("{v:?} {kind} {g:.3} MiB, not in (0, 1)"));
            }
        }
        let t = r.total.bytes() as f64 / MIB;
        if (t / total_mib - 1.0).abs() > 0.01 {
            off.push(format!("{v:?} total {t:.2} MiB vs {total_mib}"));
        }
        let bn: Vec<_> = r.layers.iter().filter(|l| l.kind == "batch_norm").collect();
        for (l, want) in bn.iter().zip([6.90855, 27.634, 27.634, 27.6336]) {
            let got = l.bytes() as f64 / MIB;
            if (got / want - 1.0).abs() > 0.01 {
                off.push(format!("{v:?} {} {got:.3} MiB vs {want}", l.name));
            }
        }
    }
    assert!(off.is_empty(), "{}", off.join("; "));
}

/// Every one of the 53 ResNet-50 convolutions against OpenCheetah's measured bytes, each
/// direction (docs/measured/opencheetah-resnet50-conv.csv): within 2%. The queries are
/// within 0.02% (their size is the fitted framing's); the responses 0.4-1.7% under,
/// growing with the body coefficients kept, about 0.2 B each that the SEAL + zstd model
/// does not account for (docs/protocol-reference.md 2.2). Strided 3 x 3 and 7 x 7 convs
/// return all stride-1 outputs of their tiles (conv 1 keeps 224 x 224 / 16 = 3136 per
/// response, not 112 x 112 / 16 = 784).
#[test]
fn cheetah_every_conv_matches_opencheetah_each_way() {
    let r = report(
        &net("resnet50-cheetah"),
        Protocol::Cheetah,
        WireFormat::Native,
    );
    let convs = resnet50_convs(&r);
    let mut off = Vec::new();
    for (&(idx, _, _, alice, bob), l) in measured_convs().iter().zip(&convs) {
        for (dir, got, want) in [
            ("server->client", l.bytes_server_to_client, alice),
            ("client->server", l.bytes_client_to_server, bob),
        ] {
            let dev = got as f64 / want - 1.0;
            if dev.abs() > 0.02 {
                off.push(format!("conv {idx} {dir} {:+.2}%", dev * 100.0));
            }
        }
    }
    assert!(off.is_empty(), "{}", off.join("; "));
    assert_eq!(convs[0].he.unwrap().kept, 1024 * 3136);
}

/// Issue 2, check 3: CrypTFlow2 / Cheetah total communication on ResNet-50.
/// Source: Cheetah (USENIX Security 2022): 12.9x (docs/protocol-reference.md 2). Tolerance:
/// the figure's rounding (0.05, 0.4%) plus the disagreement between Cheetah's published
/// total and its measured one that a ratio over either inherits (up to 2.6%, see
/// `cheetah_resnet50_total_is_in_the_published_band`): 12.9 +- 3%, [12.5, 13.3].
/// The model gives 11.46 (-11.2%).
#[test]
#[ignore = "model off by -11.2% against Cheetah's published 12.9x (docs/protocol-reference.md 2): CrypTFlow2 / Cheetah is 11.46, see issue #12"]
fn cryptflow2_over_cheetah_on_resnet50_is_in_band() {
    let n = net("resnet50-cheetah");
    let c = total_2022(&n, Protocol::Cheetah).total.bytes() as f64;
    let f = total_2022(&n, Protocol::Cryptflow2).total.bytes() as f64;
    let ratio = f / c;
    assert!((12.5..=13.3).contains(&ratio), "{ratio}");
}

/// Issue 2, check 4: HEQuant on ResNet-18 CIFAR-100 at W4A4 (first and last layer 8 bits)
/// against Cheetah. Source: HEQuant's abstract (docs/protocol-reference.md 1): 3.5-23.4x less
/// communication than CrypTFlow2, Cheetah and Iron. A reduction against Cheetah on one
/// network lies within the range claimed over all of them: band [3.5, 23.4], the published
/// end points, no tolerance beyond them.
#[test]
fn hequant_w4a4_resnet18_is_within_the_published_range_below_cheetah() {
    let n = net("resnet18-cifar100");
    let c = total(&n, Protocol::Cheetah, None).total.bytes() as f64;
    let h = total(&n, Protocol::Hequant, Some("w4a4")).total.bytes() as f64;
    assert!(
        (3.5..=23.4).contains(&(c / h)),
        "native wire formats: {}",
        c / h
    );
    // The same on one bit-packed wire format for both, which isolates the protocol.
    let c = report(&n, Protocol::Cheetah, WireFormat::Packed)
        .total
        .bytes() as f64;
    assert!(
        (3.5..=23.4).contains(&(c / h)),
        "bit-packed wire: {}",
        c / h
    );
}

/// Issue 2, check 5: naive quantization saturates. Source: HEQuant's abstract ("quickly
/// saturates as bit precision goes down"), docs/protocol-reference.md 4, item 1: the fixed noise and
/// rounding bits per ciphertext stay while t shrinks, and the ciphertext counts do not
/// change. Check: the saving of halving the bits shrinks as the bits fall, and the
/// ciphertext counts are the same at every width.
#[test]
fn naive_quantization_saturates_at_low_bits() {
    let n = net("resnet18-cifar100");
    let at = |b: u32| {
        let mut cm_o = total(&n, Protocol::HequantNaive, Some(&format!("w{b}a{b}")));
        cm_o.layers.retain(|l| l.class == CostClass::Linear);
        cm_o
    };
    let (r16, r8, r4, r2) = (at(16), at(8), at(4), at(2));
    let lin = |r: &Report| r.layers.iter().map(|l| l.bytes()).sum::<u64>() as f64;
    let s1 = lin(&r16) / lin(&r8);
    let s2 = lin(&r8) / lin(&r4);
    let s3 = lin(&r4) / lin(&r2);
    assert!(s1 > s2 && s2 > s3, "{s1} {s2} {s3}");
    assert!(s3 < 1.25, "halving 4 -> 2 bits should save little: {s3}");
    let cts = |r: &Report| {
        r.layers
            .iter()
            .map(|l| l.ct_client_to_server + l.ct_server_to_client)
            .sum::<u64>()
    };
    assert_eq!(cts(&r16), cts(&r2));
}

/// Issue 2: shipped networks against known totals. Sources: torchvision's model card for
/// ResNet-50 (4.09 GMACs, tolerance 1%); ResNet-18 for CIFAR (0.555 GMACs, 0.5%; 557,056
/// ReLUs exactly: 64x32x32 x 5 + 128x16x16 x 4 + 256x8x8 x 4 + 512x4x4 x 4).
#[test]
fn shipped_networks_match_known_totals() {
    let r50 = net("resnet50-imagenet").stats();
    assert!(
        (r50.macs as f64 / 4.09e9 - 1.0).abs() < 0.01,
        "{}",
        r50.macs
    );
    let r18 = net("resnet18-cifar100").stats();
    assert!(
        (r18.macs as f64 / 0.555e9 - 1.0).abs() < 0.005,
        "{}",
        r18.macs
    );
    assert_eq!(
        r18.relu_elements,
        65536 * 5 + 32768 * 4 + 16384 * 4 + 8192 * 4
    );
    assert_eq!(r18.relu_elements, 557_056);
}

/// Every shipped network evaluates under every protocol, and its report adds up: the
/// layers' bytes (plus CrypTFlow2's one-time keys) are the total, each layer's bytes are
/// its HE plus its OT bytes, and so are the totals. The protocols order as their sources
/// say, on every network at W8A8:
/// - CrypTFlow2 costs more than Cheetah, in all and in its non-linear layers (IKNP at about
///   1000 B per ReLU against Ferret's 60 B, docs/protocol-reference.md 2.4; 12.9x on
///   ResNet-50, section 2);
/// - naive quantization is Cheetah's protocol with l = B = 8 + 8 + ceil(log2 fan_in) <= 29
///   < 37 bits and the same ciphertext counts (section 4, item 1): fewer linear bytes;
/// - packing only adds candidates to the naive protocol's (section 4, item 2; its space
///   keeps the unpacked mapping): at most the naive linear bytes;
/// - the three HEQuant variants run the non-linear layers on the same rings: equal OT bytes.
#[test]
fn every_shipped_network_evaluates_under_every_protocol() {
    let cm = CostModel::builtin().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("networks");
    let mut seen = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        seen += 1;
        let n = network::load(&p).unwrap();
        let mut by = std::collections::HashMap::new();
        for proto in Protocol::ALL {
            let mut o = EvalOptions::new(proto, &cm);
            o.bits.uniform = Some(parse_bits("w8a8").unwrap());
            o.bn = BnPolicy::Auto;
            let r = evaluate(&n, &o, &cm).unwrap_or_else(|e| panic!("{} {proto}: {e}", n.name));
            let t = &r.total;
            let layers: u64 = r.layers.iter().map(|l| l.bytes()).sum();
            assert_eq!(layers + t.bytes_setup, t.bytes(), "{} {proto}", n.name);
            assert_eq!(
                t.bytes_linear + t.bytes_nonlinear,
                t.bytes(),
                "{} {proto}",
                n.name
            );
            for l in &r.layers {
                assert_eq!(
                    l.bytes_linear + l.bytes_nonlinear,
                    l.bytes(),
                    "{} {proto} {}",
                    n.name,
                    l.name
                );
            }
            let cts: u64 = r.layers.iter().map(|l| l.ct_client_to_server).sum();
            assert_eq!(cts, t.ct_client_to_server, "{} {proto}", n.name);
            by.insert(proto, r.total);
        }
        let t = |p: Protocol| &by[&p];
        let name = &n.name;
        assert!(
            t(Protocol::Cryptflow2).bytes() > t(Protocol::Cheetah).bytes(),
            "{name}"
        );
        assert!(
            t(Protocol::Cryptflow2).bytes_nonlinear > t(Protocol::Cheetah).bytes_nonlinear,
            "{name}"
        );
        assert!(
            t(Protocol::HequantNaive).bytes_linear < t(Protocol::Cheetah).bytes_linear,
            "{name}"
        );
        assert!(
            t(Protocol::HequantPacked).bytes_linear <= t(Protocol::HequantNaive).bytes_linear,
            "{name}"
        );
        for p in [Protocol::HequantPacked, Protocol::Hequant] {
            assert_eq!(
                t(p).bytes_nonlinear,
                t(Protocol::HequantNaive).bytes_nonlinear,
                "{name} {p}"
            );
        }
    }
    assert_eq!(seen, 11);
}

/// Non-linear bytes of MiniONN (CIFAR-10) by hand, from the OT costs of
/// cost-models/primitives.toml and the protocols of docs/protocol-reference.md 2.4, at
/// l = 37 (both protocols' fixed point), Cheetah under its 2022 code (exact ReLU). The network has 173,056 ReLU elements (its
/// header) and two 2 x 2 average pools with 64 x 16 x 16 + 64 x 8 x 8 = 20,480 outputs,
/// each a truncation.
/// - Cheetah (Ferret: 3.6 bits per correlated OT, 4 per 1-out-of-16 OT, 4 per AND triple,
///   one l-bit message per OT). DReLU = millionaire on 36 bits: 9 four-bit leaves of
///   4 + 16 x 2 = 36 bits and 2 x 8 = 16 AND triples of 4 bits: 324 + 64 = 388 bits; MUX(37)
///   = 2 x (3.6 + 37) = 81.2 bits; ReLU = 469.2 bits = 58.65 B. Truncation is
///   millionaire(36) and two B2A(37), 388 + 2 x 40.6 = 469.2 bits = 58.65 B. Each layer's
///   bytes round up:
///   ReLU layers of 65,536 (two), 16,384 (two), 4,096 (two) and 1,024 elements and the
///   pools' 16,384 and 4,096: 65,536 x 58.65 = 3,843,686.4 -> 3,843,687, 16,384 x 58.65 =
///   960,921.6 -> 960,922, 4,096 x 58.65 = 240,230.4 -> 240,231, 1,024 x 58.65 = 60,057.6 ->
///   60,058; in all 2 x 3,843,687 + 3 x 960,922 + 3 x 240,231 + 60,058 = 11,350,891 B.
/// - CrypTFlow2 (IKNP: 128 bits per correlated OT, 256 per 1-out-of-16, 288 per AND triple,
///   two l-bit messages per OT). Millionaire(36): 9 x (256 + 32) + 16 x 288 = 2592 + 4608 =
///   7200 bits; MUX(37) = 2 x (128 + 74) = 404; ReLU = 7604 bits = 950.5 B, and the faithful
///   truncation 7200 + 2 x 202 = 7604 bits too. Total 193,536 x 950.5 = 183,955,968 B.
///
/// (The measured figures these calibrate against: about 60 B and 1000 B per ReLU; the
/// 3.6 bits per correlated OT, ResNet-50's 2025 truncation, cost-models/primitives.toml.)
#[test]
fn minionn_nonlinear_bytes_by_hand() {
    let n = net("minionn-cifar10");
    assert_eq!(n.stats().relu_elements, 173_056);
    for (p, want) in [
        (Protocol::Cheetah, 11_350_891),
        (Protocol::Cryptflow2, 183_955_968),
    ] {
        assert_eq!(total_2022(&n, p).total.bytes_nonlinear, want, "{p}");
    }
}
