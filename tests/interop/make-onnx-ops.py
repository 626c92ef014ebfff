#!/usr/bin/env python3
"""Writes small ONNX models, one or two nodes each, that exercise the ops mixq added for
models users bring (issue 17): n-ary Max/Min/Sum/Mean, ReduceMin/Prod/L2,
InstanceNormalization, GroupNormalization (opsets 18 and 21), Gelu, ArgMax, TopK,
DepthToSpace, SpaceToDepth, Tile, Upsample, the matmul forms of Einsum, LSTM and GRU,
QuantizeLinear/DequantizeLinear, DynamicQuantizeLinear and MatMulInteger.

    make-onnx-ops.py OUTDIR

Every input has fixed dimensions (the first of them any batch, tests/interop/onnx-run.c
runs --batch 1), so that onnx-run feeds pseudo-random values in [-1, 1) and
check-onnx.py compares mixq's outputs with ONNX Runtime's. Weights are initializers drawn
from a fixed seed: the same files on every run. Needs the onnx package (check-onnx.sh
installs a pinned one under .cache/).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I64 = TensorProto.FLOAT, TensorProto.INT64
rng = np.random.default_rng(17)


def w(name, *shape, scale=1.0):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def ints(name, vals):
    return numpy_helper.from_array(np.array(vals, dtype=np.int64), name)


def floats(name, vals):
    return numpy_helper.from_array(np.array(vals, dtype=np.float32), name)


def model(nodes, inputs, outputs, inits=(), opset=13, check=True):
    """inputs/outputs: (name, dims) floats, or (name, dims, elem). check=False for ops the
    checker calls deprecated (GroupNormalization-18), which ONNX Runtime still runs."""
    vi = lambda t: helper.make_tensor_value_info(t[0], t[2] if len(t) > 2 else F, t[1])
    g = helper.make_graph(nodes, "ops", [vi(t) for t in inputs], [vi(t) for t in outputs], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="mixq-ops")
    m.ir_version = 8 if opset <= 17 else 10
    if check:
        onnx.checker.check_model(m)
    return m


def N(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, **attrs)


def cases():
    X = [("a", [2, 3, 4])]
    yield "max-broadcast", model([N("Max", ["a", "b", "c"], ["y"])], X + [("b", [3, 1]), ("c", [4])], [("y", [2, 3, 4])])
    yield "min-broadcast", model([N("Min", ["a", "b"], ["y"])], X, [("y", [2, 3, 4])], [w("b", 1, 4)])
    yield "sum-three", model([N("Sum", ["a", "b", "c"], ["y"])], X + [("b", [4]), ("c", [3, 1])], [("y", [2, 3, 4])])
    yield "mean-two", model([N("Mean", ["a", "b"], ["y"])], X + [("b", [2, 1, 4])], [("y", [2, 3, 4])])
    yield "max-one", model([N("Max", ["a"], ["y"])], X, [("y", [2, 3, 4])], opset=8)

    yield "reducemin-attr", model([N("ReduceMin", ["a"], ["y"], axes=[1], keepdims=0)], X, [("y", [2, 4])])
    yield "reducemin-input", model([N("ReduceMin", ["a", "ax"], ["y"])], X, [("y", [2, 3, 1])], [ints("ax", [-1])], 18)
    yield "reduceprod-input", model([N("ReduceProd", ["a", "ax"], ["y"], keepdims=0)], X, [("y", [3])],
                                    [ints("ax", [0, 2])], 18)
    yield "reduceprod-attr", model([N("ReduceProd", ["a"], ["y"], axes=[2])], X, [("y", [2, 3, 1])])
    yield "reducel2-all", model([N("ReduceL2", ["a"], ["y"], keepdims=0)], X, [("y", [])], opset=18)
    yield "reducel2-noop", model([N("ReduceL2", ["a"], ["y"], noop_with_empty_axes=1)], X, [("y", [2, 3, 4])], opset=18)
    yield "reducel2-attr", model([N("ReduceL2", ["a"], ["y"], axes=[0, -1])], X, [("y", [1, 3, 1])])

    yield "instancenorm", model([N("InstanceNormalization", ["x", "s", "b"], ["y"], epsilon=1e-3)], [("x", [2, 3, 5, 4])],
                                [("y", [2, 3, 5, 4])], [w("s", 3), w("b", 3)])
    yield "groupnorm-18", model([N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=3)], [("x", [2, 6, 3, 3])],
                                [("y", [2, 6, 3, 3])], [w("s", 3), w("b", 3)], 18, check=False)
    yield "groupnorm-21", model([N("GroupNormalization", ["x", "s", "b"], ["y"], num_groups=2, epsilon=1e-4)],
                                [("x", [2, 6, 7])], [("y", [2, 6, 7])], [w("s", 6), w("b", 6)], 21)
    for ap in ("none", "tanh"):
        yield "gelu-" + ap, model([N("Mul", ["x", "k"], ["t"]), N("Gelu", ["t"], ["y"], approximate=ap)],
                                  [("x", [4, 32])], [("y", [4, 32])], [floats("k", [4.0])], 20)

    # ties (values rounded to halves) for select_last_index
    tie = [N("Mul", ["x", "k"], ["t"]), N("Round", ["t"], ["r"])]
    yield "argmax-keepdims", model(tie + [N("ArgMax", ["r"], ["y"], axis=1)], [("x", [3, 5, 4])], [("y", [3, 1, 4], I64)],
                                   [floats("k", [2.0])])
    yield "argmax-last", model(tie + [N("ArgMax", ["r"], ["y"], axis=-1, keepdims=0, select_last_index=1)],
                               [("x", [3, 5, 4])], [("y", [3, 5], I64)], [floats("k", [2.0])])
    yield "topk-largest", model([N("TopK", ["x", "k"], ["v", "i"], axis=-1)], [("x", [3, 10])],
                                [("v", [3, 4]), ("i", [3, 4], I64)], [ints("k", [4])], 11)
    yield "topk-smallest-axis0", model([N("TopK", ["x", "k"], ["v", "i"], axis=0, largest=0)], [("x", [6, 5])],
                                       [("v", [3, 5]), ("i", [3, 5], I64)], [ints("k", [3])], 11)
    yield "topk-opset1", model([N("TopK", ["x"], ["v", "i"], k=2)], [("x", [2, 7])], [("v", [2, 2]), ("i", [2, 2], I64)],
                               opset=9)

    yield "depthtospace-dcr", model([N("DepthToSpace", ["x"], ["y"], blocksize=2)], [("x", [1, 8, 3, 2])],
                                    [("y", [1, 2, 6, 4])])
    yield "depthtospace-crd", model([N("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")], [("x", [2, 8, 3, 2])],
                                    [("y", [2, 2, 6, 4])])
    yield "spacetodepth", model([N("SpaceToDepth", ["x"], ["y"], blocksize=2)], [("x", [1, 3, 4, 6])],
                                [("y", [1, 12, 2, 3])])
    yield "tile", model([N("Tile", ["x", "r"], ["y"])], [("x", [1, 3, 2])], [("y", [2, 3, 6])], [ints("r", [2, 1, 3])])

    yield "upsample-nearest", model([N("Upsample", ["x", "s"], ["y"])], [("x", [1, 2, 3, 4])], [("y", [1, 2, 6, 12])],
                                    [floats("s", [1, 1, 2, 3])], 9)
    yield "upsample-linear", model([N("Upsample", ["x", "s"], ["y"], mode="linear")], [("x", [1, 2, 3, 4])],
                                   [("y", [1, 2, 4, 10])], [floats("s", [1, 1, 1.5, 2.5])], 9)
    yield "upsample-attr", model([N("Upsample", ["x"], ["y"], mode="nearest", scales=[1.0, 1.0, 2.0, 2.0])],
                                 [("x", [1, 2, 3, 4])], [("y", [1, 2, 6, 8])], opset=8)

    E = lambda eq, ins, out, inits=(): model([N("Einsum", ["a", "b"], ["y"], equation=eq)], ins, [("y", out)], inits, 12)
    yield "einsum-bij-jk", E("bij,jk->bik", [("a", [2, 5, 16])], [2, 5, 8], [w("b", 16, 8)])
    yield "einsum-ellipsis-kj", E("...ij,kj->...ik", [("a", [2, 3, 5, 16])], [2, 3, 5, 8], [w("b", 8, 16)])
    yield "einsum-batched", E("bhij,bhjk->bhik", [("a", [1, 2, 3, 4]), ("b", [1, 2, 4, 5])], [1, 2, 3, 5])
    yield "einsum-transposed-out", E("bsk,nk->bns", [("a", [2, 5, 16])], [2, 8, 5], [w("b", 8, 16)])
    yield "einsum-implicit", E("ij,jk", [("a", [5, 16])], [5, 8], [w("b", 16, 8)])
    yield "einsum-two-contracted", E("bcij,cjn->bin", [("a", [2, 3, 4, 5])], [2, 4, 6], [w("b", 3, 5, 6)])

    # recurrences: X [seq, batch, input] (or [batch, seq, input] with layout 1)
    S, B, I, H = 5, 2, 6, 4
    def rnn(op, G, D, extra_in=(), opset=14, outs=("y", "yh", "yc"), layout=0, **attrs):
        ins = ["x", "w", "r", "b"] + list(extra_in)
        xs = [B, S, I] if layout else [S, B, I]
        ys = [B, S, D, H] if layout else [S, D, B, H]
        hs = [B, D, H] if layout else [D, B, H]
        inits = [w("w", D, G * H, I, scale=0.5), w("r", D, G * H, H, scale=0.5), w("b", D, 2 * G * H, scale=0.5)]
        inputs = [("x", xs)]
        for e in extra_in:
            if e in ("h0", "c0"):
                inputs.append((e, hs))
            elif e == "p":
                inits.append(w("p", D, 3 * H, scale=0.5))
            elif e == "sl":
                inits.append(numpy_helper.from_array(np.full(B, S, dtype=np.int32), "sl"))
            elif e == "":
                pass
        outputs = [(o, ys if k == 0 else hs) for k, o in enumerate(outs)]
        if layout:
            attrs["layout"] = layout
        return model([N(op, ins, list(outs), hidden_size=H, **attrs)], inputs, outputs, inits, opset)
    yield "lstm-forward", rnn("LSTM", 4, 1)
    yield "lstm-bidirectional-peepholes", rnn("LSTM", 4, 2, ["sl", "h0", "c0", "p"], direction="bidirectional")
    yield "lstm-reverse-clip", rnn("LSTM", 4, 1, ["", "h0"], direction="reverse", clip=0.7, opset=7,
                                   outs=("y", "yh"))
    yield "lstm-input-forget", rnn("LSTM", 4, 1, input_forget=1, outs=("y",))
    # (layout 1 is not here: ONNX Runtime's CPU LSTM refuses it; a unit test checks it
    # against layout 0 transposed)
    yield "gru-forward", rnn("GRU", 3, 1, outs=("y", "yh"))
    yield "gru-bidirectional-lbr", rnn("GRU", 3, 2, ["", "h0"], direction="bidirectional", linear_before_reset=1,
                                       outs=("y", "yh"))
    yield "gru-reverse-clip", rnn("GRU", 3, 1, direction="reverse", clip=0.5, outs=("y", "yh"))

    yield "logsoftmax-axis1", model([N("LogSoftmax", ["a"], ["y"], axis=1)], X, [("y", [2, 3, 4])])
    yield "logsoftmax-opset11", model([N("LogSoftmax", ["a"], ["y"], axis=1)], X, [("y", [2, 3, 4])], opset=11)

    # quantized models: QDQ (QuantizeLinear / DequantizeLinear per tensor and per axis), and
    # onnxruntime.quantization.quantize_dynamic's pattern (DynamicQuantizeLinear, then
    # MatMulInteger with a constant int8 B, Cast, the two scales)
    q8 = lambda name, *shape: numpy_helper.from_array(rng.integers(-127, 128, shape).astype(np.int8), name)
    u8 = lambda name, vals: numpy_helper.from_array(np.array(vals, dtype=np.uint8), name)
    i8 = lambda name, vals: numpy_helper.from_array(np.array(vals, dtype=np.int8), name)
    yield "qdq-per-tensor", model([N("QuantizeLinear", ["a", "s", "z"], ["q"]), N("DequantizeLinear", ["q", "s", "z"], ["y"])],
                                  X, [("y", [2, 3, 4])], [floats("s", 0.01), u8("z", 120)])
    yield "qdq-per-axis", model([N("QuantizeLinear", ["a", "s", "z"], ["q"], axis=1),
                                 N("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1)],
                                X, [("y", [2, 3, 4])], [floats("s", [0.02, 0.005, 0.01]), i8("z", [0, -3, 5])])
    yield "qdq-weight", model([N("DequantizeLinear", ["wq", "ws"], ["w"], axis=1), N("MatMul", ["a", "w"], ["y"])],
                              X, [("y", [2, 3, 8])], [q8("wq", 4, 8), floats("ws", np.linspace(0.01, 0.02, 8))])
    for per_col in (False, True):
        zp = i8("wz", rng.integers(-3, 4, 16)) if per_col else i8("wz", 2)
        ws = floats("ws", 0.02)
        yield "dynamic-matmulinteger" + ("-per-column" if per_col else ""), model(
            [N("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             N("MatMulInteger", ["xq", "wq", "xz", "wz"], ["yi"]),
             N("Cast", ["yi"], ["yf"], to=F), N("Mul", ["xs", "ws"], ["s"]), N("Mul", ["yf", "s"], ["y"])],
            [("x", [3, 64])], [("y", [3, 16])], [q8("wq", 64, 16), zp, ws])
    # quantize_dynamic's convolutions: ConvInteger, grouped and padded (onnxruntime takes a
    # single weight zero point only)
    yield "dynamic-convinteger", model(
        [N("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
         N("ConvInteger", ["xq", "wq", "xz", "wz"], ["yi"], pads=[1, 1, 1, 1], group=2),
         N("Cast", ["yi"], ["yf"], to=F), N("Mul", ["yf", "xs"], ["y"])],
        [("x", [1, 4, 6, 5])], [("y", [1, 6, 6, 5])], [q8("wq", 6, 2, 3, 3), i8("wz", -2)])


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    os.makedirs(sys.argv[1], exist_ok=True)
    n = 0
    for name, m in cases():
        onnx.save(m, os.path.join(sys.argv[1], name + ".onnx"))
        n += 1
    print("make-onnx-ops: %d models in %s" % (n, sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
