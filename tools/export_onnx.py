#!/usr/bin/env python3
"""Exports torchvision ResNet-18, ResNet-50 and MobileNetV2 to ONNX for the import tests.

The models are built without pretrained weights and exported with torch.onnx (TorchScript
exporter, opset 17, input 1x3x224x224, batch axis left dynamic as in most real exports).
The initializers are then stripped of their data (dims and data type kept; tensors of at most 8
elements, which hold Clip bounds, shapes and axes, are kept whole) with the `onnx` package, so
that each file is a few tens of kilobytes: the importer reads shapes only.

A quantized ResNet-18 (`resnet18_qdq.onnx`) comes from onnxruntime's static quantization
of the float export (QDQ format, uint8 activations, int8 weights, the ReLUs kept), calibrated
on two random inputs (the scales do not matter here), then stripped the same way.

The `*_dynamo.onnx` files come from the torch.export-based exporter (`dynamo=True`, the
default since torch 2.9; it needs the `onnxscript` package), which writes a different graph
(ReduceMean for the average pool, Reshape for the flatten, opset 20, fixed batch 1).

    python3 -m venv venv && venv/bin/pip install torch torchvision onnx onnxruntime onnxscript
    venv/bin/python tools/export_onnx.py tests/data
"""

import os
import sys

import numpy as np
import onnx
import torch
import torchvision


def strip(path):
    m = onnx.load(path)
    for t in m.graph.initializer:
        if np.prod(t.dims, dtype=np.int64) <= 8:
            continue  # scalars, shapes and axes (Clip, Reshape, ReduceMean): read by the importer
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.ClearField("int64_data")
        t.ClearField("int32_data")
    # The torch.export-based exporter annotates every node and value with stack traces.
    for n in m.graph.node:
        n.ClearField("metadata_props")
    for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        v.ClearField("metadata_props")
    m.graph.ClearField("value_info")
    onnx.save(m, path)
    return os.path.getsize(path)


def quantize(src, dst):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Random(CalibrationDataReader):
        def __init__(self):
            self.left = 2
            self.rng = np.random.default_rng(0)

        def get_next(self):
            if self.left == 0:
                return None
            self.left -= 1
            return {"input": self.rng.random((1, 3, 224, 224), dtype=np.float32)}

    quantize_static(
        src,
        dst,
        Random(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"QDQKeepRemovableActivations": True},
    )


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data"
    os.makedirs(out, exist_ok=True)
    models = {
        "resnet18": torchvision.models.resnet18,
        "resnet50": torchvision.models.resnet50,
        "mobilenet_v2": torchvision.models.mobilenet_v2,
    }
    # The eval-mode export folds each BatchNormalization into its Conv; the extra
    # "resnet18_bn" export keeps them (TrainingMode.PRESERVE on a model in eval mode),
    # so that the importer's own folding is tested on a real file too.
    jobs = [(n, c, torch.onnx.TrainingMode.EVAL) for n, c in models.items()]
    jobs.append(("resnet18_bn", torchvision.models.resnet18, torch.onnx.TrainingMode.PRESERVE))
    for name, ctor, training in jobs:
        model = ctor(weights=None).eval()
        x = torch.zeros(1, 3, 224, 224)
        path = os.path.join(out, f"{name}.onnx")
        torch.onnx.export(
            model,
            (x,),
            path,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
            do_constant_folding=True,
            training=training,
            dynamo=False,
        )
        if name == "resnet18":
            full = os.path.join(out, "resnet18_full.onnx")
            qdq = os.path.join(out, "resnet18_qdq.onnx")
            torch.onnx.export(
                model, (x,), full, input_names=["input"], output_names=["logits"],
                opset_version=17, dynamo=False,
            )
            quantize(full, qdq)
            os.remove(full)
            print(f"{qdq}: {strip(qdq)} bytes")
        if name in ("resnet18", "mobilenet_v2"):
            dyn = os.path.join(out, f"{name}_dynamo.onnx")
            torch.onnx.export(model, (x,), dynamo=True).save(dyn)
            print(f"{dyn}: {strip(dyn)} bytes")
        size = strip(path)
        print(f"{path}: {size} bytes, torch {torch.__version__}, torchvision {torchvision.__version__}")


if __name__ == "__main__":
    main()
