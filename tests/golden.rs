//! Golden tests of the cost model against published and measured figures. Each names
//! its source and tolerance.

use hequant::model::report::{LayerReport, Report};
use hequant::model::{BitsPolicy, BnPolicy, EvalOptions, evaluate, parse_bits};
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
/// model's query bytes (a SEAL + zstd query of 62,417 B, cost-models/cheetah.toml) must be
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
    let r = total(&net("resnet50-cheetah"), Protocol::Cheetah, None);
    let mib = r.total.bytes() as f64 / MIB;
    assert!((2304.0..2406.4).contains(&mib), "{mib} MiB");
    assert_eq!(
        r.total.bytes_linear + r.total.bytes_nonlinear,
        r.total.bytes()
    );
    // The 18 batch norms of networks/sources/resnet50_layers.csv (FusedBatchNorm4411) stay
    // HomBN layers (none directly follows a conv). The first, 64 x 56 x 56 = 200,704
    // elements, in SIMD slots of N = 4096 over 3 CRT primes (2 x 37 + 1 + 40 = 115 bits in
    // primes of at most 50 bits, docs/protocol-reference.md 2.3): 200,704 / 4096 = 49
    // ciphertexts per prime, 147 each way.
    let bn: Vec<_> = r.layers.iter().filter(|l| l.kind == "batch_norm").collect();
    assert_eq!(bn.len(), 18);
    assert!(bn.iter().all(|l| l.class == CostClass::Linear));
    assert_eq!(
        (bn[0].ct_client_to_server, bn[0].ct_server_to_client),
        (147, 147)
    );
}

/// Per category against OpenCheetah's 2022 code on ResNet-50 (docs/measured/README.md, MiB
/// both directions; the model's ReLU is the 2022 exact one). Tolerance: the disagreement
/// between the sources, the 2022 and the 2025 code, on the categories both run alike
/// (Conv 0.01, BatchNorm 0.01, the others 0.00 MiB), at least the table's rounding (0.01
/// MiB); the first four batch norms from opencheetah-resnet50-bn-first4.csv. The model
/// is off by: Conv -7.3% (its responses -8.4%: OpenCheetah's responses are about 1.25x
/// their bit-packed size, not the query's 1.118x, and strided convs return all stride-1
/// outputs), BatchNorm +30.3% (the first four +134%: OpenCheetah's cost equals a
/// coefficient-encoded depthwise product, not SIMD over three primes), Truncation -5.3%,
/// ReLU +3.5%, Maxpool -2.6%, Avgpool -85%, ArgMax -41%, MatMul +9.3%.
#[test]
#[ignore = "model off against docs/measured/README.md per category (Conv -7.3%, BatchNorm +30%, Truncation -5.3%, ReLU +3.5%, Maxpool -2.6%, Avgpool -85%, ArgMax -41%, MatMul +9.3%), see issue #12"]
fn cheetah_resnet50_categories_match_opencheetah() {
    let r = total(&net("resnet50-cheetah"), Protocol::Cheetah, None);
    let mib = |kind: &str| {
        r.layers
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| l.bytes())
            .sum::<u64>() as f64
            / MIB
    };
    let mut off = Vec::new();
    for (kind, want, tol) in [
        ("conv2d", 1052.45, 0.01),
        ("batch_norm", 359.69, 0.01),
        ("linear", 1.95, 0.01),
        ("truncate", 340.06, 0.01),
        ("relu", 520.53, 0.01),
        ("max_pool", 91.17, 0.01),
        ("avg_pool", 0.75, 0.01),
        ("argmax", 0.11, 0.01),
    ] {
        let got = mib(kind);
        if (got - want).abs() > tol {
            off.push(format!(
                "{kind} {got:.2} MiB vs {want} ({:+.1}%)",
                (got / want - 1.0) * 100.0
            ));
        }
    }
    let bn: Vec<_> = r.layers.iter().filter(|l| l.kind == "batch_norm").collect();
    for (l, want) in bn.iter().zip([6.90855, 27.634, 27.634, 27.6336]) {
        let got = l.bytes() as f64 / MIB;
        if (got - want).abs() > 0.001 {
            off.push(format!("{} {got:.3} MiB vs {want}", l.name));
        }
    }
    assert!(off.is_empty(), "{}", off.join("; "));
}

/// Issue 2, check 3: CrypTFlow2 / Cheetah total communication on ResNet-50.
/// Source: Cheetah (USENIX Security 2022): 12.9x (docs/protocol-reference.md 2). Tolerance:
/// the figure's rounding (0.05, 0.4%) plus the disagreement between Cheetah's published
/// total and its measured one that a ratio over either inherits (up to 2.6%, see
/// `cheetah_resnet50_total_is_in_the_published_band`): 12.9 +- 3%, [12.5, 13.3].
/// The model gives 11.24 (-12.9%).
#[test]
#[ignore = "model off by -12.9% against Cheetah's published 12.9x (docs/protocol-reference.md 2): CrypTFlow2 / Cheetah is 11.24, see issue #12"]
fn cryptflow2_over_cheetah_on_resnet50_is_in_band() {
    let n = net("resnet50-cheetah");
    let c = total(&n, Protocol::Cheetah, None).total.bytes() as f64;
    let f = total(&n, Protocol::Cryptflow2, None).total.bytes() as f64;
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
/// l = 37 (both protocols' fixed point). The network has 173,056 ReLU elements (its
/// header) and two 2 x 2 average pools with 64 x 16 x 16 + 64 x 8 x 8 = 20,480 outputs,
/// each a truncation.
/// - Cheetah (Ferret: 1 bit per correlated OT, 4 per 1-out-of-16 OT, 4 per AND triple, one
///   l-bit message per OT). DReLU = millionaire on 36 bits: 9 four-bit leaves of
///   4 + 16 x 2 = 36 bits and 2 x 8 = 16 AND triples of 4 bits: 324 + 64 = 388 bits; MUX(37)
///   = 2 x (1 + 37) = 76 bits; ReLU = 464 bits = 58 B. Truncation = millionaire(36) + two
///   B2A(37) = 388 + 2 x 38 = 464 bits = 58 B. Total (173,056 + 20,480) x 58 = 11,225,088 B.
/// - CrypTFlow2 (IKNP: 128 bits per correlated OT, 256 per 1-out-of-16, 288 per AND triple,
///   two l-bit messages per OT). Millionaire(36): 9 x (256 + 32) + 16 x 288 = 2592 + 4608 =
///   7200 bits; MUX(37) = 2 x (128 + 74) = 404; ReLU = 7604 bits = 950.5 B, and the faithful
///   truncation 7200 + 2 x 202 = 7604 bits too. Total 193,536 x 950.5 = 183,955,968 B.
///
/// (The measured figures these calibrate against: about 60 B and 1000 B per ReLU.)
#[test]
fn minionn_nonlinear_bytes_by_hand() {
    let n = net("minionn-cifar10");
    assert_eq!(n.stats().relu_elements, 173_056);
    for (p, want) in [
        (Protocol::Cheetah, 11_225_088),
        (Protocol::Cryptflow2, 183_955_968),
    ] {
        assert_eq!(total(&n, p, None).total.bytes_nonlinear, want, "{p}");
    }
}
