#!/usr/bin/env python3
"""Check the network description files ``networks/*.toml``.

Reads every file back with ``tomllib`` (so each one is known to parse) and,
independently of ``tools/gen_networks.py``, checks it against the
"hequant-network" format, version 1:

* top-level keys, ``name`` equal to the file stem, ``default_bits`` only on the
  quantized-standard networks;
* layer keys per kind, unique names, ``from`` references to earlier layers;
* shape chaining: every output shape is recomputed from the input and
  compared with the declared ``out`` (which must be present on conv2d, linear,
  pool, add and concat layers); add operands must agree, concat operands must
  agree in H and W;
* MACs (conv2d and linear only) and ReLU elements;
* for the ``*-cheetah`` networks, one layer per row of the operator list in
  ``networks/sources/*.csv``, in order: the kind matches the operator, the
  input / output shapes match the CSV, and the MACs of every conv / matmul and
  the element count of every element-wise operator equal the CSV;
* the targets of the standard networks (e.g. ResNet-18 CIFAR: 0.555 GMACs
  within 0.5 % and exactly 557,056 ReLU elements; torchvision ResNet-50:
  4.09 GMACs within 1 %) and the 53 convolutions of Cheetah's ResNet-50.

Prints one line per file (layers, conv2d count, MACs, ReLU elements) and exits
with status 1 if any check fails.

Usage::

    python3 tools/check_networks.py
"""

from __future__ import annotations

import csv
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
NET_DIR = ROOT / "networks"
SRC_DIR = NET_DIR / "sources"

TOP_REQUIRED = {"format", "version", "name", "description", "source", "input", "layer"}
TOP_OPTIONAL = {"default_bits"}

# Keys allowed per kind (besides name, kind, from, out) and the required ones.
KIND_KEYS = {
    "conv2d": {"out_channels", "kernel", "stride", "padding", "groups", "bn"},
    "linear": {"out_features"},
    "batch_norm": set(),
    "relu": {"truncate", "relu6"},
    "max_pool": {"kernel", "stride", "padding"},
    "avg_pool": {"kernel", "stride", "padding"},
    "global_avg_pool": set(),
    "add": set(),
    "concat": set(),
    "truncate": set(),
    "bias_add": set(),
    "pad": {"padding"},
    "flatten": set(),
    "argmax": set(),
}
KIND_REQUIRED = {
    "conv2d": {"out_channels", "kernel"},
    "linear": {"out_features"},
    "max_pool": {"kernel"},
    "avg_pool": {"kernel"},
    "pad": {"padding"},
}
OUT_REQUIRED = {"conv2d", "linear", "max_pool", "avg_pool", "global_avg_pool", "add", "concat"}

# Cheetah networks: file stem -> operator list.
CHEETAH_CSV = {
    "resnet50-cheetah": "resnet50_layers.csv",
    "sqnet-cheetah": "sqnet_layers.csv",
    "densenet121-cheetah": "densenet121_layers.csv",
    "resnet32-cifar-cheetah": "resnet32_cifar_layers.csv",
}
# Cheetah operator -> layer kind, as required by the brief of the files.
CHEETAH_KIND = {
    "Conv2DWrapper": "conv2d", "FusedBN": "conv2d", "FusedBatchNorm4411": "batch_norm",
    "Relu4": "relu", "ScaleDown4": "truncate", "MatAdd4": "add",
    "MatAddBroadCast2": "bias_add", "MatAddBroadCast4": "bias_add",
    "MaxPool": "max_pool", "AvgPool": "avg_pool", "Pad442": "pad",
    "Concat2T444": "concat", "MatMul2D": "linear", "ArgMax1": "argmax", "ArgMax3": "argmax",
}

STANDARD = [
    "resnet18-cifar100", "resnet18-tinyimagenet", "resnet18-imagenet", "resnet50-imagenet",
    "mobilenetv2-imagenet", "mobilenetv2-cifar100", "minionn-cifar10",
]
EXPECTED_FILES = list(CHEETAH_CSV) + STANDARD

# Totals a file must reach: stem -> (target MACs, relative tolerance, exact ReLU elements or None).
MAC_TARGETS = {
    "resnet18-cifar100": (0.555e9, 0.005, 557_056),
    "resnet50-imagenet": (4.09e9, 0.01, None),
    "resnet18-imagenet": (1.82e9, 0.01, None),
    "mobilenetv2-imagenet": (0.30e9, 0.01, None),
}
CONV_COUNT_TARGETS = {"resnet50-cheetah": 53}


class CheckError(Exception):
    pass


def need(cond: bool, msg: str) -> None:
    if not cond:
        raise CheckError(msg)


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def ints(v, n: int, what: str) -> tuple[int, ...]:
    """An int (repeated n times) or a list of n ints, all >= 0."""
    vals = (v,) * n if is_int(v) else tuple(v) if isinstance(v, list) else None
    need(vals is not None and len(vals) == n and all(is_int(x) and x >= 0 for x in vals),
         f"{what} must be an int or a list of {n} non-negative ints, got {v!r}")
    return vals  # type: ignore[return-value]


@dataclass
class LayerInfo:
    name: str
    kind: str
    inputs: list[tuple[int, int, int]]
    out: tuple[int, int, int]
    macs: int = 0


@dataclass
class Stats:
    layers: list[LayerInfo] = field(default_factory=list)
    macs: int = 0
    relu_elems: int = 0
    conv_count: int = 0


def window(shape, layer: dict, what: str, stride_default) -> tuple[int, int]:
    _, h, w = shape
    kh, kw = ints(layer["kernel"], 2, f"{what}.kernel")
    sh, sw = ints(layer.get("stride", stride_default(kh, kw)), 2, f"{what}.stride")
    pt, pb, pl, pr = ints(layer.get("padding", 0), 4, f"{what}.padding")
    need(kh >= 1 and kw >= 1 and sh >= 1 and sw >= 1, f"{what}: kernel and stride must be >= 1")
    need(h + pt + pb >= kh and w + pl + pr >= kw, f"{what}: kernel {kh}x{kw} larger than padded input {shape}")
    return (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1


def analyse(doc: dict, stem: str) -> Stats:
    """Validate one parsed file and compute its shapes, MACs and ReLU elements."""
    keys = set(doc)
    need(TOP_REQUIRED <= keys, f"missing top-level keys {sorted(TOP_REQUIRED - keys)}")
    need(keys <= TOP_REQUIRED | TOP_OPTIONAL, f"unknown top-level keys {sorted(keys - TOP_REQUIRED - TOP_OPTIONAL)}")
    need(doc["format"] == "hequant-network", f"format is {doc['format']!r}")
    need(doc["version"] == 1 and is_int(doc["version"]), f"version is {doc['version']!r}")
    need(doc["name"] == stem, f"name {doc['name']!r} differs from the file stem {stem!r}")
    for k in ("description", "source"):
        need(isinstance(doc[k], str) and doc[k].strip() != "", f"{k} must be a non-empty string")
    c, h, w = ints(doc["input"], 3, "input")
    need(min(c, h, w) >= 1, "input dimensions must be >= 1")
    if stem.endswith("-cheetah"):
        need("default_bits" not in doc, "default_bits must be omitted on the *-cheetah networks")
    else:
        need(doc.get("default_bits") == {"w": 8, "a": 8}, "default_bits must be { w = 8, a = 8 }")
    need(isinstance(doc["layer"], list) and doc["layer"], "no [[layer]] tables")

    shapes: dict[str, tuple[int, int, int]] = {"input": (c, h, w)}
    stats = Stats()
    prev = "input"
    for i, layer in enumerate(doc["layer"]):
        name = layer.get("name")
        what = f"layer {i} ({name})"
        need(isinstance(name, str) and name != "", f"layer {i}: missing name")
        need(name not in shapes, f"{what}: duplicate name (or the reserved name 'input')")
        kind = layer.get("kind")
        need(kind in KIND_KEYS, f"{what}: unknown kind {kind!r}")
        extra = set(layer) - KIND_KEYS[kind] - {"name", "kind", "from", "out"}
        need(not extra, f"{what}: keys {sorted(extra)} not allowed on {kind}")
        missing = KIND_REQUIRED.get(kind, set()) - set(layer)
        need(not missing, f"{what}: missing keys {sorted(missing)}")
        need(kind not in OUT_REQUIRED or "out" in layer, f"{what}: {kind} must declare out")

        src = layer.get("from", prev)
        if kind in ("add", "concat"):
            need(isinstance(layer.get("from"), list), f"{what}: {kind} needs from = [...]")
            need(len(src) == 2 if kind == "add" else len(src) >= 2,
                 f"{what}: {kind} has {len(src)} operands")
            srcs = list(src)
        else:
            need(isinstance(src, str), f"{what}: from must be one layer name")
            srcs = [src]
        for s in srcs:
            need(s in shapes, f"{what}: from {s!r} is not an earlier layer or 'input'")
        ins = [shapes[s] for s in srcs]
        ic, ih, iw = ins[0]
        macs = 0

        if kind == "conv2d":
            oc = layer["out_channels"]
            groups = layer.get("groups", 1)
            need(is_int(oc) and oc >= 1 and is_int(groups) and groups >= 1, f"{what}: bad out_channels / groups")
            need(ic % groups == 0 and oc % groups == 0, f"{what}: groups {groups} does not divide {ic} -> {oc}")
            need(layer.get("bn", "none") in ("none", "folded"), f"{what}: bn must be 'none' or 'folded'")
            oh, ow = window(ins[0], layer, what, lambda kh, kw: 1)
            kh, kw = ints(layer["kernel"], 2, what)
            out = (oc, oh, ow)
            macs = oc * oh * ow * (ic // groups) * kh * kw
            stats.conv_count += 1
        elif kind == "linear":
            of = layer["out_features"]
            need(is_int(of) and of >= 1, f"{what}: bad out_features")
            out = (of, 1, 1)
            macs = ic * ih * iw * of
        elif kind in ("max_pool", "avg_pool"):
            oh, ow = window(ins[0], layer, what, lambda kh, kw: [kh, kw])
            out = (ic, oh, ow)
        elif kind == "global_avg_pool":
            out = (ic, 1, 1)
        elif kind == "add":
            need(ins[0] == ins[1], f"{what}: operand shapes {ins[0]} and {ins[1]} differ")
            out = ins[0]
        elif kind == "concat":
            need(len({s[1:] for s in ins}) == 1, f"{what}: operand H, W differ: {ins}")
            out = (sum(s[0] for s in ins), ih, iw)
        elif kind == "pad":
            need(isinstance(layer["padding"], list), f"{what}: pad needs padding = [t, b, l, r]")
            pt, pb, pl, pr = ints(layer["padding"], 4, f"{what}.padding")
            out = (ic, ih + pt + pb, iw + pl + pr)
        elif kind == "flatten":
            out = (ic * ih * iw, 1, 1)
        elif kind == "argmax":
            out = (1, 1, 1)
        else:  # batch_norm, relu, truncate, bias_add
            out = ins[0]
            if kind == "relu":
                for flag in ("truncate", "relu6"):
                    need(isinstance(layer.get(flag, False), bool), f"{what}: {flag} must be a bool")
                stats.relu_elems += ic * ih * iw

        if "out" in layer:
            declared = ints(layer["out"], 3, f"{what}.out")
            need(declared == out, f"{what}: declared out {list(declared)} but computed {list(out)}")
        shapes[name] = out
        stats.macs += macs
        stats.layers.append(LayerInfo(name, kind, ins, out, macs))
        prev = name
    return stats


def check_against_csv(stats: Stats, csv_name: str) -> str:
    """One layer per CSV row, in order; kinds, shapes, MACs and element counts agree."""
    with (SRC_DIR / csv_name).open(newline="") as f:
        rows = list(csv.DictReader(f))
    need(len(stats.layers) == len(rows), f"{len(stats.layers)} layers but {csv_name} has {len(rows)} rows")

    def num(row, key) -> Optional[int]:
        return int(row[key]) if row[key].strip() else None

    matched = 0
    for layer, row in zip(stats.layers, rows):
        idx, op = int(row["idx"]), row["op"]
        what = f"{layer.name} vs {csv_name} row {idx} ({op})"
        m = re.fullmatch(r"op(\d+)_([a-z_0-9]+)", layer.name)
        need(m is not None and int(m.group(1)) == idx, f"{what}: name does not carry the CSV idx")
        need(layer.kind == CHEETAH_KIND.get(op), f"{what}: kind {layer.kind} but the operator maps to {CHEETAH_KIND.get(op)}")
        chw = (num(row, "C"), num(row, "H"), num(row, "W"))
        if op in ("Pad442", "Concat2T444"):
            need(layer.out == chw, f"{what}: output {layer.out} but CSV says {chw}")
        elif op in ("MatMul2D", "MatAddBroadCast2"):
            c, h, w = layer.inputs[0]
            need(num(row, "H") == 1 and c * h * w == num(row, "W"), f"{what}: input {layer.inputs[0]} vs CSV 1 x {row['W']}")
        elif not op.startswith("ArgMax"):
            for shape in layer.inputs:
                need(shape == chw, f"{what}: input {shape} but CSV says {chw}")
        if num(row, "outH") is not None:
            need(layer.out[1:] == (num(row, "outH"), num(row, "outW")), f"{what}: output {layer.out} vs CSV")
        if op in ("Conv2DWrapper", "FusedBN", "MatMul2D"):
            need(layer.macs == num(row, "macs"), f"{what}: {layer.macs} MACs but CSV says {row['macs']}")
            matched += 1
        if num(row, "elems") is not None:
            c, h, w = layer.out
            need(c * h * w == num(row, "elems"), f"{what}: {c * h * w} elements but CSV says {row['elems']}")
    return f"{len(rows)} CSV rows, all {matched} conv/matmul MACs equal {csv_name}"


def check_targets(stem: str, stats: Stats) -> list[str]:
    notes = []
    if stem in MAC_TARGETS:
        target, tol, relus = MAC_TARGETS[stem]
        dev = stats.macs / target - 1
        need(abs(dev) <= tol, f"{stats.macs:,} MACs is {dev:+.2%} from the target {target / 1e9:.3f} G (tolerance {tol:.1%})")
        notes.append(f"MACs {dev:+.2%} from {target / 1e9:.3f} G (tol {tol:.1%})")
        if relus is not None:
            need(stats.relu_elems == relus, f"{stats.relu_elems:,} ReLU elements, expected {relus:,}")
            notes.append(f"ReLU elements == {relus:,}")
    if stem in CONV_COUNT_TARGETS:
        want = CONV_COUNT_TARGETS[stem]
        need(stats.conv_count == want, f"{stats.conv_count} conv2d layers, expected {want}")
        notes.append(f"conv2d count == {want}")
    return notes


def main() -> int:
    failures = 0
    paths = sorted(NET_DIR.glob("*.toml"))
    stems = [p.stem for p in paths]
    for missing in sorted(set(EXPECTED_FILES) - set(stems)):
        print(f"FAIL {missing}.toml: file missing")
        failures += 1
    order = [s for s in EXPECTED_FILES if s in stems] + sorted(set(stems) - set(EXPECTED_FILES))

    print(f"{'file':<30}{'layers':>7}{'conv2d':>8}{'MACs':>16}{'GMACs':>8}{'ReLU elems':>13}")
    for stem in order:
        path = NET_DIR / f"{stem}.toml"
        try:
            with path.open("rb") as f:
                doc = tomllib.load(f)
            stats = analyse(doc, stem)
            notes = []
            if stem in CHEETAH_CSV:
                notes.append(check_against_csv(stats, CHEETAH_CSV[stem]))
            notes += check_targets(stem, stats)
        except (CheckError, tomllib.TOMLDecodeError, KeyError, TypeError) as e:
            print(f"FAIL {path.name}: {e}")
            failures += 1
            continue
        print(f"{path.name:<30}{len(stats.layers):>7}{stats.conv_count:>8}{stats.macs:>16,}"
              f"{stats.macs / 1e9:>8.3f}{stats.relu_elems:>13,}")
        for note in notes:
            print(f"    ok: {note}")
    print(f"{len(order)} files, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
