//! Network files (`networks/*.toml`, format "hequant-network", version 1).

use super::{SpecError, parse, read_text};
use crate::workload::{BitWidths, BnFold, LayerDef, LayerKind, Network, Padding, Shape, Window};
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

pub const FORMAT: &str = "hequant-network";
pub const VERSION: i64 = 1;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[allow(dead_code)]
    format: String,
    #[allow(dead_code)]
    version: i64,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source: String,
    input: Spanned<Vec<u64>>,
    default_bits: Option<BitWidths>,
    #[serde(default)]
    layer: Vec<Spanned<RawLayer>>,
    /// Operators an import left out (see [`Network::skipped`]).
    #[serde(default)]
    skipped: Vec<String>,
    /// ReLUs kept over the whole network (read as any value, checked below).
    relu_budget_total: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(x) => vec![x.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayer {
    name: Spanned<String>,
    kind: Spanned<String>,
    from: Option<Spanned<OneOrMany<String>>>,
    out_channels: Option<Spanned<u64>>,
    out_features: Option<Spanned<u64>>,
    kernel: Option<Spanned<OneOrMany<u64>>>,
    stride: Option<Spanned<OneOrMany<u64>>>,
    padding: Option<Spanned<OneOrMany<u64>>>,
    groups: Option<Spanned<u64>>,
    bn: Option<Spanned<BnFold>>,
    truncate: Option<Spanned<bool>>,
    relu6: Option<Spanned<bool>>,
    out: Option<Spanned<Vec<u64>>>,
    bits: Option<Spanned<BitWidths>>,
    /// ReLUs kept in this relu layer (read as any value, checked below).
    relu_budget: Option<Spanned<toml::Value>>,
    /// Largest output-channel L1 norms of the quantized weights, for 2..=16 bits.
    weight_l1: Option<Spanned<Vec<u64>>>,
}

impl RawLayer {
    /// (key, span) of every optional key that is present.
    fn present(&self) -> Vec<(&'static str, std::ops::Range<usize>)> {
        let mut v = Vec::new();
        macro_rules! p {
            ($($f:ident),*) => {$(if let Some(x) = &self.$f { v.push((stringify!($f), x.span())); })*};
        }
        p!(
            out_channels,
            out_features,
            kernel,
            stride,
            padding,
            groups,
            bn,
            truncate,
            relu6,
            relu_budget,
            weight_l1
        );
        v
    }
}

/// Reads and validates a network file.
pub fn load(path: &Path) -> Result<Network, SpecError> {
    let text = read_text(path)?;
    from_str(&path.display().to_string(), &text)
}

/// Parses and validates network text; `file` names it in errors.
pub fn from_str(file: &str, text: &str) -> Result<Network, SpecError> {
    let raw: RawNetwork = parse(file, text, FORMAT, VERSION)?;
    let input = shape3(file, text, &raw.input, "input")?;
    let mut defs = Vec::with_capacity(raw.layer.len());
    let mut spans = Vec::with_capacity(raw.layer.len());
    for (i, sl) in raw.layer.iter().enumerate() {
        let l = sl.get_ref();
        let key = |k: &str| format!("layer[{i}].{k}");
        let err = |k: &str, span: std::ops::Range<usize>, m: String| {
            SpecError::at(file, text, Some(span), &key(k), m)
        };
        let kind_name = l.kind.get_ref().as_str();
        let allowed: &[&str] = match kind_name {
            "conv2d" => &[
                "out_channels",
                "kernel",
                "stride",
                "padding",
                "groups",
                "bn",
                "weight_l1",
            ],
            "linear" => &["out_features", "weight_l1"],
            "relu" => &["truncate", "relu6", "relu_budget"],
            "max_pool" | "avg_pool" => &["kernel", "stride", "padding"],
            "pad" => &["padding"],
            "batch_norm" | "global_avg_pool" | "add" | "concat" | "truncate" | "extend"
            | "bias_add" | "flatten" | "argmax" => &[],
            other => {
                return Err(err(
                    "kind",
                    l.kind.span(),
                    format!(
                        "unknown layer kind '{other}' (known: conv2d, linear, batch_norm, relu, max_pool, avg_pool, global_avg_pool, add, concat, truncate, extend, bias_add, pad, flatten, argmax)"
                    ),
                ));
            }
        };
        for (k, span) in l.present() {
            if !allowed.contains(&k) {
                return Err(err(
                    k,
                    span,
                    format!("a {kind_name} layer takes no '{k}' key"),
                ));
            }
        }
        let need = |x: &Option<Spanned<u64>>, k: &str| -> Result<u64, SpecError> {
            x.as_ref().map(|v| *v.get_ref()).ok_or_else(|| {
                err(
                    k,
                    sl.span(),
                    format!("a {kind_name} layer needs the key '{k}'"),
                )
            })
        };
        let pair = |x: &Option<Spanned<OneOrMany<u64>>>, k: &str, default: Option<u64>| match x {
            None => default.map(|d| (d, d)).ok_or_else(|| {
                err(
                    k,
                    sl.span(),
                    format!("a {kind_name} layer needs the key '{k}'"),
                )
            }),
            Some(v) => match v.get_ref().to_vec().as_slice() {
                [a] if *a > 0 => Ok((*a, *a)),
                [a, b] if *a > 0 && *b > 0 => Ok((*a, *b)),
                _ => Err(err(
                    k,
                    v.span(),
                    format!("'{k}' must be a positive integer or [h, w]"),
                )),
            },
        };
        let padding = |x: &Option<Spanned<OneOrMany<u64>>>| match x {
            None => Ok(Padding::default()),
            Some(v) => match v.get_ref().to_vec().as_slice() {
                [p] => Ok(Padding::uniform(*p)),
                [h, w] => Ok(Padding {
                    top: *h,
                    bottom: *h,
                    left: *w,
                    right: *w,
                }),
                [t, b, le, r] => Ok(Padding {
                    top: *t,
                    bottom: *b,
                    left: *le,
                    right: *r,
                }),
                _ => Err(err(
                    "padding",
                    v.span(),
                    "'padding' must be p, [ph, pw] or [top, bottom, left, right]".into(),
                )),
            },
        };
        let window = |kernel: (u64, u64), stride: (u64, u64), pad: Padding| Window {
            kh: kernel.0,
            kw: kernel.1,
            sh: stride.0,
            sw: stride.1,
            pad,
        };
        let kind = match kind_name {
            "conv2d" => {
                let groups = l.groups.as_ref().map_or(1, |g| *g.get_ref());
                if groups == 0 {
                    return Err(err(
                        "groups",
                        l.groups.as_ref().unwrap().span(),
                        "'groups' must be at least 1".into(),
                    ));
                }
                LayerKind::Conv2d {
                    out_channels: need(&l.out_channels, "out_channels")?,
                    window: window(
                        pair(&l.kernel, "kernel", None)?,
                        pair(&l.stride, "stride", Some(1))?,
                        padding(&l.padding)?,
                    ),
                    groups,
                    bn: l.bn.as_ref().map_or(BnFold::None, |b| *b.get_ref()),
                }
            }
            "linear" => LayerKind::Linear {
                out_features: need(&l.out_features, "out_features")?,
            },
            "batch_norm" => LayerKind::BatchNorm,
            "relu" => LayerKind::Relu {
                truncate: l.truncate.as_ref().is_some_and(|t| *t.get_ref()),
                relu6: l.relu6.as_ref().is_some_and(|t| *t.get_ref()),
            },
            "max_pool" | "avg_pool" => {
                let k = pair(&l.kernel, "kernel", None)?;
                let w = window(
                    k,
                    pair(&l.stride, "stride", Some(k.0))?,
                    padding(&l.padding)?,
                );
                if kind_name == "max_pool" {
                    LayerKind::MaxPool { window: w }
                } else {
                    LayerKind::AvgPool { window: w }
                }
            }
            "global_avg_pool" => LayerKind::GlobalAvgPool,
            "add" => LayerKind::Add,
            "concat" => LayerKind::Concat,
            "truncate" => LayerKind::Truncate,
            "extend" => LayerKind::Extend,
            "bias_add" => LayerKind::BiasAdd,
            "pad" => LayerKind::Pad {
                pad: padding(&l.padding)?,
            },
            "flatten" => LayerKind::Flatten,
            _ => LayerKind::Argmax,
        };
        let declared_output = match &l.out {
            Some(o) => Some(shape3(file, text, o, &key("out"))?),
            None => None,
        };
        defs.push(LayerDef {
            name: l.name.get_ref().clone(),
            kind,
            from: l
                .from
                .as_ref()
                .map(|f| f.get_ref().to_vec())
                .unwrap_or_default(),
            declared_output,
            bits: l.bits.as_ref().map(|b| *b.get_ref()),
            weight_l1: l
                .weight_l1
                .as_ref()
                .map(|v| crate::workload::WeightL1(v.get_ref().clone())),
        });
        spans.push(sl);
    }
    let skipped = raw.skipped;
    let budget_total = match &raw.relu_budget_total {
        Some(v) => Some(budget_value(file, text, v, "relu_budget_total")?),
        None => None,
    };
    let mut budgets = Vec::new();
    for (i, sl) in raw.layer.iter().enumerate() {
        if let Some(v) = &sl.get_ref().relu_budget {
            let key = format!("layer[{i}].relu_budget");
            if budget_total.is_some() {
                return Err(SpecError::at(
                    file,
                    text,
                    Some(v.span()),
                    &key,
                    "give either per-layer relu_budget keys or one relu_budget_total, not both"
                        .into(),
                ));
            }
            budgets.push((i, budget_value(file, text, v, &key)?, v.span(), key));
        }
    }
    let mut net = Network::build(
        raw.name,
        raw.description,
        raw.source,
        input,
        raw.default_bits,
        defs,
    )
    .map_err(|e| {
        if e.key == "input" {
            return SpecError::at(file, text, Some(raw.input.span()), "input", e.message);
        }
        let layer = spans.get(e.layer);
        let span = layer.map(|l| {
            let l2 = l.get_ref();
            match e.key {
                "name" => l2.name.span(),
                "from" => l2.from.as_ref().map_or(l.span(), |f| f.span()),
                "out" => l2.out.as_ref().map_or(l.span(), |f| f.span()),
                "bits" => l2.bits.as_ref().map_or(l.span(), |f| f.span()),
                "weight_l1" => l2.weight_l1.as_ref().map_or(l.span(), |f| f.span()),
                "kernel" => l2.kernel.as_ref().map_or(l.span(), |f| f.span()),
                "groups" => l2.groups.as_ref().map_or(l.span(), |f| f.span()),
                "stride" => l2.stride.as_ref().map_or(l.span(), |f| f.span()),
                "padding" => l2.padding.as_ref().map_or(l.span(), |f| f.span()),
                "out_channels" => l2.out_channels.as_ref().map_or(l.span(), |f| f.span()),
                "out_features" => l2.out_features.as_ref().map_or(l.span(), |f| f.span()),
                _ => l.span(),
            }
        });
        let key = if layer.is_some() && e.key != "layer" {
            format!("layer[{}].{}", e.layer, e.key)
        } else {
            e.key.to_string()
        };
        let message = if e.key == "layer" {
            e.message
        } else {
            e.to_string()
        };
        SpecError::at(file, text, span, &key, message)
    })?;
    net.skipped = skipped;
    for (i, k, span, key) in budgets {
        let l = &net.layers[i];
        if k > l.output.elems() {
            return Err(SpecError::at(
                file,
                text,
                Some(span),
                &key,
                format!(
                    "relu_budget = {k} is more than the {} elements of layer '{}' ({})",
                    l.output.elems(),
                    l.name,
                    l.output
                ),
            ));
        }
        net.relu_budget.insert(l.name.clone(), k);
    }
    if let (Some(t), Some(v)) = (budget_total, &raw.relu_budget_total) {
        let all = net.stats().relu_elements;
        if t > all {
            return Err(SpecError::at(
                file,
                text,
                Some(v.span()),
                "relu_budget_total",
                format!(
                    "relu_budget_total = {t} is more than the {all} ReLU elements of the network"
                ),
            ));
        }
        net.relu_budget_total = Some(t);
    }
    Ok(net)
}

/// A ReLU budget: a non-negative integer.
fn budget_value(
    file: &str,
    text: &str,
    v: &Spanned<toml::Value>,
    key: &str,
) -> Result<u64, SpecError> {
    match v.get_ref() {
        toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
        other => Err(SpecError::at(
            file,
            text,
            Some(v.span()),
            key,
            format!("a ReLU budget is a number of kept ReLUs, an integer >= 0; got {other}"),
        )),
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn pair_text(a: u64, b: u64) -> String {
    if a == b {
        a.to_string()
    } else {
        format!("[{a}, {b}]")
    }
}

fn padding_text(p: &Padding) -> String {
    if p.top == p.bottom && p.left == p.right {
        pair_text(p.top, p.left)
    } else {
        format!("[{}, {}, {}, {}]", p.top, p.bottom, p.left, p.right)
    }
}

fn bits_text(b: &BitWidths) -> String {
    format!("{{ w = {}, a = {} }}", b.w.get(), b.a.get())
}

/// Writes a network in this format, the inverse of [`from_str`]: reading the text back
/// gives the same network. `comment` goes first, each line prefixed with `# `. A layer's
/// `from` is written only where it is not the previous layer; every layer declares its
/// output shape (`out`), which the reader checks.
pub fn to_toml(net: &Network, comment: &str) -> String {
    let mut t = String::new();
    for line in comment.lines() {
        t.push_str(format!("# {line}").trim_end());
        t.push('\n');
    }
    if !comment.is_empty() {
        t.push('\n');
    }
    t.push_str(&format!(
        "format = {}\nversion = {VERSION}\n",
        quote(FORMAT)
    ));
    t.push_str(&format!("name = {}\n", quote(&net.name)));
    t.push_str(&format!("description = {}\n", quote(&net.description)));
    t.push_str(&format!("source = {}\n", quote(&net.source)));
    let i = net.input;
    t.push_str(&format!("input = [{}, {}, {}]\n", i.c, i.h, i.w));
    if let Some(b) = &net.default_bits {
        t.push_str(&format!("default_bits = {}\n", bits_text(b)));
    }
    if !net.skipped.is_empty() {
        let v: Vec<String> = net.skipped.iter().map(|s| quote(s)).collect();
        t.push_str(&format!("skipped = [{}]\n", v.join(", ")));
    }
    if let Some(b) = net.relu_budget_total {
        t.push_str(&format!("relu_budget_total = {b}\n"));
    }
    for (k, l) in net.layers.iter().enumerate() {
        t.push_str("\n[[layer]]\n");
        t.push_str(&format!("name = {}\n", quote(&l.name)));
        t.push_str(&format!("kind = {}\n", quote(l.kind.name())));
        let previous = if k == 0 { usize::MAX } else { k - 1 };
        if l.inputs != [previous] {
            let names: Vec<String> = l
                .inputs
                .iter()
                .map(|&j| {
                    quote(if j == usize::MAX {
                        "input"
                    } else {
                        net.layers.get(j).map_or("input", |x| x.name.as_str())
                    })
                })
                .collect();
            match names.as_slice() {
                [one] => t.push_str(&format!("from = {one}\n")),
                _ => t.push_str(&format!("from = [{}]\n", names.join(", "))),
            }
        }
        let win = |t: &mut String, w: &Window| {
            t.push_str(&format!("kernel = {}\n", pair_text(w.kh, w.kw)));
            t.push_str(&format!("stride = {}\n", pair_text(w.sh, w.sw)));
            t.push_str(&format!("padding = {}\n", padding_text(&w.pad)));
        };
        match &l.kind {
            LayerKind::Conv2d {
                out_channels,
                window,
                groups,
                bn,
            } => {
                t.push_str(&format!("out_channels = {out_channels}\n"));
                win(&mut t, window);
                if *groups != 1 {
                    t.push_str(&format!("groups = {groups}\n"));
                }
                if *bn == BnFold::Folded {
                    t.push_str("bn = \"folded\"\n");
                }
            }
            LayerKind::Linear { out_features } => {
                t.push_str(&format!("out_features = {out_features}\n"));
            }
            LayerKind::Relu { truncate, relu6 } => {
                if *truncate {
                    t.push_str("truncate = true\n");
                }
                if *relu6 {
                    t.push_str("relu6 = true\n");
                }
                if let Some(b) = net.relu_budget.get(&l.name) {
                    t.push_str(&format!("relu_budget = {b}\n"));
                }
            }
            LayerKind::MaxPool { window } | LayerKind::AvgPool { window } => win(&mut t, window),
            LayerKind::Pad { pad } => {
                t.push_str(&format!("padding = {}\n", padding_text(pad)));
            }
            _ => {}
        }
        let o = l.output;
        t.push_str(&format!("out = [{}, {}, {}]\n", o.c, o.h, o.w));
        if let Some(b) = &l.bits {
            t.push_str(&format!("bits = {}\n", bits_text(b)));
        }
        if let Some(w) = &l.weight_l1 {
            let v: Vec<String> = w.0.iter().map(u64::to_string).collect();
            t.push_str(&format!(
                "# largest output-channel L1 norm of the weights quantized to 2..=16 bits\nweight_l1 = [{}]\n",
                v.join(", ")
            ));
        }
    }
    t
}

fn shape3(file: &str, text: &str, v: &Spanned<Vec<u64>>, key: &str) -> Result<Shape, SpecError> {
    match v.get_ref().as_slice() {
        [c, h, w] if *c > 0 && *h > 0 && *w > 0 => Ok(Shape::new(*c, *h, *w)),
        _ => Err(SpecError::at(
            file,
            text,
            Some(v.span()),
            key,
            "a shape is [channels, height, width] with each at least 1".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
format = "hequant-network"
version = 1
name = "tiny"
input = [3, 8, 8]

[[layer]]
name = "c1"
kind = "conv2d"
out_channels = 4
kernel = 3
padding = 1

[[layer]]
name = "r1"
kind = "relu"

[[layer]]
name = "c2"
kind = "conv2d"
out_channels = 4
kernel = 3
padding = 1

[[layer]]
name = "add"
kind = "add"
from = ["c2", "r1"]
out = [4, 8, 8]
"#;

    #[test]
    fn writes_what_it_reads() {
        let n = from_str("tiny.toml", GOOD).unwrap();
        let text = to_toml(&n, "a comment\nover two lines");
        let back = from_str("back.toml", &text).unwrap();
        assert_eq!(back, n, "{text}");
        assert!(text.starts_with("# a comment\n# over two lines\n"));
    }

    #[test]
    fn parses_a_residual_block() {
        let n = from_str("tiny.toml", GOOD).unwrap();
        assert_eq!(n.layers.len(), 4);
        assert_eq!(n.layers[3].inputs, vec![2, 1]);
    }

    #[test]
    fn unknown_kind_points_at_line() {
        let bad = GOOD.replace("kind = \"relu\"", "kind = \"relux\"");
        let e = from_str("tiny.toml", &bad).unwrap_err();
        assert_eq!(e.key, "layer[1].kind");
        assert_eq!(e.line, 16, "{e}");
    }

    #[test]
    fn shapes_that_do_not_chain_point_at_from() {
        let bad = GOOD.replace(
            "padding = 1\n\n[[layer]]\nname = \"add\"",
            "\n[[layer]]\nname = \"add\"",
        );
        let e = from_str("tiny.toml", &bad).unwrap_err();
        assert!(e.message.contains("one shape"), "{e}");
        assert_eq!(e.key, "layer[3].from");
    }

    #[test]
    fn key_of_wrong_kind_is_refused() {
        let bad = GOOD.replace("kind = \"relu\"", "kind = \"relu\"\nout_channels = 3");
        let e = from_str("tiny.toml", &bad).unwrap_err();
        assert_eq!(e.key, "layer[1].out_channels", "{e}");
    }

    #[test]
    fn bad_bits_points_at_line() {
        let bad = GOOD.replace(
            "kernel = 3\npadding = 1\n\n[[layer]]\nname = \"r1\"",
            "kernel = 3\npadding = 1\nbits = { w = 0, a = 4 }\n\n[[layer]]\nname = \"r1\"",
        );
        let e = from_str("tiny.toml", &bad).unwrap_err();
        assert!(e.message.contains("1..=32"), "{e}");
        assert_eq!(e.line, 13, "{e}");
    }

    #[test]
    fn limits_point_at_the_key_and_its_line() {
        let e = from_str(
            "tiny.toml",
            &GOOD.replacen("padding = 1", "padding = 4611686018427387904", 1),
        )
        .unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("layer[0].padding", 12), "{e}");
        let e = from_str(
            "tiny.toml",
            &GOOD.replacen("out_channels = 4", "out_channels = 1000000", 1),
        )
        .unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.line),
            ("layer[0].out_channels", 10),
            "{e}"
        );
        let e = from_str(
            "tiny.toml",
            &GOOD.replace(
                "input = [3, 8, 8]",
                "input = [18446744073709551615, 32, 32]",
            ),
        )
        .unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("input", 5), "{e}");
        assert!(e.message.contains("limit"), "{e}");
    }

    fn budget_error(text: &str) -> SpecError {
        from_str("tiny.toml", text).unwrap_err()
    }

    #[test]
    fn relu_budgets_are_read_and_written() {
        let t = GOOD.replace("kind = \"relu\"", "kind = \"relu\"\nrelu_budget = 100");
        let n = from_str("tiny.toml", &t).unwrap();
        assert_eq!(n.relu_budget.get("r1"), Some(&100));
        assert_eq!(n.relu_kept(None).unwrap()[1], Some(100));
        let back = from_str("back.toml", &to_toml(&n, "")).unwrap();
        assert_eq!(back, n);
        let t = GOOD.replace(
            "input = [3, 8, 8]",
            "input = [3, 8, 8]\nrelu_budget_total = 0",
        );
        let n = from_str("tiny.toml", &t).unwrap();
        assert_eq!(n.relu_kept(None).unwrap()[1], Some(0));
        assert_eq!(n.relu_kept(Some(256)).unwrap()[1], Some(256));
        assert!(
            n.relu_kept(Some(257))
                .unwrap_err()
                .contains("--relu-budget")
        );
        assert_eq!(from_str("back.toml", &to_toml(&n, "")).unwrap(), n);
    }

    #[test]
    fn bad_relu_budgets_name_file_line_and_key() {
        let at_r1 = |v: &str| {
            GOOD.replace(
                "kind = \"relu\"",
                &format!("kind = \"relu\"\nrelu_budget = {v}"),
            )
        };
        for v in ["-5", "\"lots\"", "1.5", "true"] {
            let e = budget_error(&at_r1(v));
            assert_eq!(e.key, "layer[1].relu_budget", "{v}: {e}");
            assert_eq!((e.file.as_str(), e.line), ("tiny.toml", 17), "{v}: {e}");
            assert!(e.message.contains("integer >= 0"), "{v}: {e}");
        }
        // r1 has 4 x 8 x 8 = 256 elements.
        let e = budget_error(&at_r1("257"));
        assert_eq!(
            (e.key.as_str(), e.line),
            ("layer[1].relu_budget", 17),
            "{e}"
        );
        assert!(e.message.contains("256 elements"), "{e}");
        let total = |v: &str| {
            GOOD.replace(
                "input = [3, 8, 8]",
                &format!("input = [3, 8, 8]\nrelu_budget_total = {v}"),
            )
        };
        for v in ["-1", "\"x\"", "257"] {
            let e = budget_error(&total(v));
            assert_eq!(
                (e.key.as_str(), e.line),
                ("relu_budget_total", 6),
                "{v}: {e}"
            );
        }
        let both = total("10").replace("kind = \"relu\"", "kind = \"relu\"\nrelu_budget = 3");
        let e = budget_error(&both);
        assert_eq!(e.key, "layer[1].relu_budget", "{e}");
        assert!(e.message.contains("not both"), "{e}");
        let on_conv = GOOD.replacen("kernel = 3", "kernel = 3\nrelu_budget = 3", 1);
        let e = budget_error(&on_conv);
        assert_eq!(e.key, "layer[0].relu_budget", "{e}");
    }
}
