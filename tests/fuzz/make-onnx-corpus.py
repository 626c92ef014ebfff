#!/usr/bin/env python3
"""Writes a deterministic corpus of malformed ONNX files, and a few valid ones.

    make-onnx-corpus.py OUTDIR

bad-<what>.onnx files are malformed protobuf, malformed ONNX (cycles, missing values,
shapes that do not fit), or valid but use something mixq does not support (external
data, unknown ops, an If decided at run time): `mixq info FILE` must exit 1 with exactly
one error line. ok-<what>.onnx files are valid: `mixq info` must not crash on them.
tests/fuzz/run-corpus.sh runs them; `make fuzz` also uses them as seeds for
tests/fuzz/fuzz_onnx.c. Python standard library only; the same bytes on every run.
"""
import os
import struct
import sys

FLOAT, INT64, STRING = 1, 7, 8


# ---- a protobuf writer ---------------------------------------------------------------------

def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def key(field, wt):
    return varint(field << 3 | wt)


def f_int(field, v):
    return key(field, 0) + varint(v)


def f_bytes(field, b):
    b = b.encode() if isinstance(b, str) else b
    return key(field, 2) + varint(len(b)) + b


def f_float(field, v):
    return key(field, 5) + struct.pack("<f", v)


# ---- ONNX messages ------------------------------------------------------------------------

def tensor(name, dims, values=None, elem=FLOAT, raw=None, extra=b""):
    out = b"".join(f_int(1, d) for d in dims) + f_int(2, elem) + f_bytes(8, name)
    if raw is None and values is not None:
        if elem == FLOAT:
            raw = struct.pack("<%df" % len(values), *values)
        else:
            out += f_bytes(7, b"".join(varint(v) for v in values))
    if raw is not None:
        out += f_bytes(9, raw)
    return out + extra


def value_info(name, elem, dims):
    shape = b"".join(f_bytes(1, f_int(1, d) if isinstance(d, int) else f_bytes(2, d)) for d in dims)
    return f_bytes(1, name) + f_bytes(2, f_bytes(1, f_int(1, elem) + f_bytes(2, shape)))


def attr_int(name, v):
    return f_bytes(5, f_bytes(1, name) + f_int(20, 2) + f_int(3, v))


def attr_ints(name, vs):
    return f_bytes(5, f_bytes(1, name) + f_int(20, 7) + f_bytes(8, b"".join(varint(v) for v in vs)))


def attr_float(name, v):
    return f_bytes(5, f_bytes(1, name) + f_int(20, 1) + f_float(2, v))


def attr_str(name, v):
    return f_bytes(5, f_bytes(1, name) + f_int(20, 3) + f_bytes(4, v))


def attr_floats(name, vs):
    return f_bytes(5, f_bytes(1, name) + f_int(20, 6) + f_bytes(7, struct.pack("<%df" % len(vs), *vs)))


def attr_tensor(name, t):
    return f_bytes(5, f_bytes(1, name) + f_int(20, 4) + f_bytes(5, t))


def attr_graph(name, g):
    return f_bytes(5, f_bytes(1, name) + f_int(20, 5) + f_bytes(6, g))


def node(op, ins, outs, attrs=b"", name=None, domain=None):
    out = b"".join(f_bytes(1, i) for i in ins) + b"".join(f_bytes(2, o) for o in outs)
    out += f_bytes(3, name or outs[0]) + f_bytes(4, op)
    if domain is not None:
        out += f_bytes(7, domain)
    return out + attrs


def graph(nodes, inits=(), inputs=(), outputs=(), name="g"):
    out = b"".join(f_bytes(1, n) for n in nodes) + f_bytes(2, name)
    out += b"".join(f_bytes(5, t) for t in inits)
    out += b"".join(f_bytes(11, v) for v in inputs)
    out += b"".join(f_bytes(12, v) for v in outputs)
    return out


def model(g, opset=13, ir=8, extra=b""):
    return f_int(1, ir) + f_bytes(2, "corpus") + f_bytes(8, f_bytes(1, "") + f_int(2, opset)) + f_bytes(7, g) + extra


def floats(n, seed=1):
    return [((i * 37 + seed) % 101) / 50.0 - 1.0 for i in range(n)]


# ---- valid models -------------------------------------------------------------------------

def conv_model(cin=3, in_dims=(1, 3, 8, 8)):
    """Conv 3->4 3x3 pad 1, Relu, GlobalAveragePool, Flatten, Gemm 4->2."""
    g = graph(
        [node("Conv", ["x", "w", "b"], ["c"], attr_ints("pads", [1, 1, 1, 1]) + attr_ints("kernel_shape", [3, 3])),
         node("Relu", ["c"], ["r"]),
         node("GlobalAveragePool", ["r"], ["p"]),
         node("Flatten", ["p"], ["f"]),
         node("Gemm", ["f", "fc", "fcb"], ["y"], attr_int("transB", 1))],
        inits=[tensor("w", [4, cin, 3, 3], floats(4 * cin * 9)), tensor("b", [4], floats(4, 2)),
               tensor("fc", [2, 4], floats(8, 3)), tensor("fcb", [2], floats(2, 4))],
        inputs=[value_info("x", FLOAT, list(in_dims))],
        outputs=[value_info("y", FLOAT, ["batch", 2])])
    return model(g)


def typed_model():
    """MatMul with the weight in float_data (packed), a Constant bias, Add, Softmax."""
    w = tensor("w", [64, 8], None) + f_bytes(4, struct.pack("<512f", *floats(512)))
    bias = tensor("bias", [8], floats(8))
    g = graph([node("MatMul", ["x", "w"], ["m"]),
               node("Constant", [], ["bias"], attr_tensor("value", bias)),
               node("Add", ["m", "bias"], ["a"]),
               node("Softmax", ["a"], ["y"], attr_int("axis", -1))],
              inits=[w], inputs=[value_info("x", FLOAT, ["batch", 64])],
              outputs=[value_info("y", FLOAT, ["batch", 8])])
    return model(g)


def if_model(cond_from_input=False, depth=1):
    """Silero-like inputs (input, state, sr): If (sr == 16000) Relu else Neg."""
    def branch(op, d):
        if d <= 1:
            return graph([node(op, ["input"], [op.lower() + "_out"]), node("Identity", ["state"], [op.lower() + "_st"])],
                         outputs=[value_info(op.lower() + "_out", FLOAT, []),
                                  value_info(op.lower() + "_st", FLOAT, [])], name=op)
        inner = node("If", ["cond"], [op.lower() + "_out", op.lower() + "_st"],
                     attr_graph("then_branch", branch(op, d - 1)) + attr_graph("else_branch", branch(op, d - 1)))
        return graph([inner], outputs=[value_info(op.lower() + "_out", FLOAT, []),
                                       value_info(op.lower() + "_st", FLOAT, [])], name=op)
    cond = node("Greater", ["input", "zero"], ["cond"]) if cond_from_input else node("Equal", ["sr", "k"], ["cond"])
    g = graph([cond, node("If", ["cond"], ["output", "stateN"],
                          attr_graph("then_branch", branch("Relu", depth)) + attr_graph("else_branch", branch("Neg", depth)))],
              inits=[tensor("k", [], [16000], elem=INT64), tensor("zero", [], [0.0])],
              inputs=[value_info("input", FLOAT, ["batch", 64]), value_info("state", FLOAT, [2, "batch", 4]),
                      value_info("sr", INT64, [])],
              outputs=[value_info("output", FLOAT, ["batch", 64]), value_info("stateN", FLOAT, [2, "batch", 4])])
    return model(g)


def old_opset_model():
    """Opset 9 forms: Squeeze axes and Slice bounds as attributes."""
    g = graph([node("Squeeze", ["x"], ["s"], attr_ints("axes", [0])),
               node("Slice", ["s"], ["y"], attr_ints("starts", [1]) + attr_ints("ends", [3]) + attr_ints("axes", [0]))],
              inputs=[value_info("x", FLOAT, [1, 4])], outputs=[value_info("y", FLOAT, [2])])
    return model(g, opset=9, ir=4)


def dynamic_model():
    g = graph([node("Relu", ["x"], ["y"])], inputs=[value_info("x", FLOAT, ["batch", 3, "H", "W"])],
              outputs=[value_info("y", FLOAT, ["batch", 3, "H", "W"])])
    return model(g)


def one_node(op, ins, attrs=b"", inits=(), in_dims=(1, 4), opset=13):
    g = graph([node(op, ins, ["y"], attrs)], inits=inits, inputs=[value_info("x", FLOAT, list(in_dims))],
              outputs=[value_info("y", FLOAT, [])])
    return model(g, opset=opset)


def new_ops_model():
    """The ops added for models users bring, chained: Einsum (a layer), Gelu, Max, TopK,
    Tile, DepthToSpace, InstanceNormalization, ReduceL2."""
    g = graph([node("Einsum", ["x", "w"], ["e"], attr_str("equation", "bi,oi->bo")),
               node("Gelu", ["e"], ["g"], attr_str("approximate", "tanh")),
               node("Max", ["g", "e", "c"], ["m"]),
               node("TopK", ["m", "k"], ["v", "i"], attr_int("axis", -1)),
               node("Tile", ["v", "r"], ["t"]),
               node("Reshape", ["t", "s"], ["t4"]),
               node("DepthToSpace", ["t4"], ["d"], attr_int("blocksize", 2) + attr_str("mode", "CRD")),
               node("InstanceNormalization", ["d", "sc", "b"], ["n"]),
               node("ReduceL2", ["n"], ["y"], attr_ints("axes", [2, 3]))],
              inits=[tensor("w", [8, 4], floats(32)), tensor("c", [8], floats(8, 5)), tensor("k", [1], [4], elem=INT64),
                     tensor("r", [2], [1, 2], elem=INT64), tensor("s", [4], [1, 8, 1, 1], elem=INT64),
                     tensor("sc", [2], floats(2, 6)), tensor("b", [2], floats(2, 7))],
              inputs=[value_info("x", FLOAT, [1, 4])], outputs=[value_info("y", FLOAT, [1, 2, 1, 1])])
    return model(g, opset=20, ir=9)


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(out):
        if f.endswith(".onnx"):
            os.unlink(os.path.join(out, f))
    files = {}
    good = conv_model()
    files["ok-conv"] = good
    files["ok-typed-constant"] = typed_model()
    files["ok-if-folded"] = if_model()
    files["ok-opset9-attributes"] = old_opset_model()
    files["ok-dynamic-dims"] = dynamic_model()
    files["ok-new-ops"] = new_ops_model()

    # protobuf
    for i, cut in enumerate(sorted({1, 2, 3, 5, 8, 13, 21, 40, 77, len(good) // 3, len(good) // 2, len(good) - 9,
                                    len(good) - 1})):
        files["bad-truncated-%02d" % i] = good[:cut]
    files["bad-varint-11-bytes"] = b"\x08" + b"\xff" * 10 + b"\x01"
    files["bad-group-wire-type"] = b"\x0b\x0c"
    files["bad-wire-type-7"] = b"\x0f" + good
    files["bad-graph-as-varint"] = f_int(1, 8) + f_int(7, 3)
    files["bad-length-past-end"] = f_int(1, 8) + key(7, 2) + varint(1 << 40) + b"\0" * 16
    files["bad-field-number-zero"] = b"\x00\x00" + good
    files["bad-not-onnx"] = b"GGML this is not a model at all\n" * 4
    files["bad-no-graph"] = f_int(1, 8) + f_bytes(8, f_bytes(1, "") + f_int(2, 13))
    files["bad-ir-version"] = model(graph([node("Relu", ["x"], ["y"])], inputs=[value_info("x", FLOAT, [1])],
                                          outputs=[value_info("y", FLOAT, [1])]), ir=99)
    files["bad-no-opset"] = f_int(1, 8) + f_bytes(7, graph([node("Relu", ["x"], ["y"])]))
    files["bad-old-opset"] = one_node("Relu", ["x"], opset=5)
    files["bad-metadata-no-value"] = good + f_bytes(14, f_bytes(1, "key"))
    files["bad-attribute-graph-varint"] = one_node("If", ["x"], f_bytes(5, f_bytes(1, "then_branch") + f_int(6, 1)))
    files["bad-nul-in-name"] = one_node("Relu", ["x\0y"])

    # tensors
    files["bad-raw-short"] = one_node("Add", ["x", "w"], inits=[tensor("w", [4], raw=b"\0" * 12)])
    files["bad-raw-long"] = one_node("Add", ["x", "w"], inits=[tensor("w", [4], raw=b"\0" * 20)])
    files["bad-typed-count"] = one_node("Add", ["x", "w"],
                                        inits=[tensor("w", [4], None) + f_bytes(4, struct.pack("<3f", 1, 2, 3))])
    files["bad-typed-wrong-field"] = one_node("Add", ["x", "w"], inits=[tensor("w", [2], None) + f_bytes(7, b"\1\2")])
    files["bad-dims-absurd"] = one_node("Add", ["x", "w"], inits=[tensor("w", [1 << 62, 1 << 62], raw=b"")])
    files["bad-dims-negative"] = one_node("Add", ["x", "w"], inits=[tensor("w", [-4], raw=b"\0" * 16)])
    files["bad-too-many-dims"] = one_node("Add", ["x", "w"], inits=[tensor("w", [1] * 9, raw=b"\0" * 4)])
    files["bad-external-data"] = one_node("Add", ["x", "w"], inits=[tensor(
        "w", [4], None, extra=f_bytes(13, f_bytes(1, "location") + f_bytes(2, "w.bin")) + f_int(14, 1))])
    files["bad-string-tensor"] = one_node("Add", ["x", "w"], inits=[tensor("w", [1], None, elem=STRING) +
                                                                  f_bytes(6, "abc")])
    files["bad-unnamed-initializer"] = one_node("Add", ["x", "w"], inits=[f_int(1, 4) + f_int(2, FLOAT) +
                                                                        f_bytes(9, b"\0" * 16)])

    # graphs
    files["bad-cycle"] = model(graph([node("Relu", ["b"], ["a"]), node("Relu", ["a"], ["b"]), node("Relu", ["b"], ["y"])],
                                     inputs=[value_info("x", FLOAT, [4])], outputs=[value_info("y", FLOAT, [4])]))
    files["bad-self-loop"] = model(graph([node("Add", ["x", "y"], ["y"])], inputs=[value_info("x", FLOAT, [4])],
                                         outputs=[value_info("y", FLOAT, [4])]))
    files["bad-missing-initializer"] = one_node("Conv", ["x", "weights"], in_dims=(1, 3, 8, 8))
    files["bad-duplicate-output"] = model(graph([node("Relu", ["x"], ["y"]), node("Neg", ["x"], ["y"], name="n2")],
                                                inputs=[value_info("x", FLOAT, [4])],
                                                outputs=[value_info("y", FLOAT, [4])]))
    files["bad-unknown-output"] = model(graph([node("Relu", ["x"], ["z"])], inputs=[value_info("x", FLOAT, [4])],
                                              outputs=[value_info("y", FLOAT, [4])]))
    files["bad-unsupported-ops"] = model(graph([node("RNN", ["x"], ["a"]), node("Loop", ["a"], ["b"]),
                                                node("MyOp", ["b"], ["y"], domain="com.example")],
                                               inputs=[value_info("x", FLOAT, [4])],
                                               outputs=[value_info("y", FLOAT, [4])]))
    files["bad-input-count"] = one_node("Relu", ["x", "x", "x"])
    files["bad-if-at-run-time"] = if_model(cond_from_input=True)
    files["bad-if-nested-too-deep"] = if_model(depth=12)

    # shapes that do not fit, found by the load-time shape pass or constant folding
    files["bad-conv-channels"] = conv_model(cin=4)
    files["bad-reshape-count"] = one_node("Reshape", ["x", "s"], inits=[tensor("s", [2], [3, 3], elem=INT64)])
    files["bad-matmul-k"] = one_node("MatMul", ["x", "w"], inits=[tensor("w", [5, 2], floats(10))])
    files["bad-broadcast"] = one_node("Add", ["x", "w"], inits=[tensor("w", [3], floats(3))])
    files["bad-gather-index"] = model(graph(
        [node("Gather", ["d", "i"], ["g"], attr_int("axis", 0)), node("Add", ["x", "g"], ["y"])],
        inits=[tensor("d", [4], floats(4)), tensor("i", [1], [9], elem=INT64)],
        inputs=[value_info("x", FLOAT, [1])], outputs=[value_info("y", FLOAT, [1])]))
    files["bad-huge-constant"] = model(graph(
        [node("ConstantOfShape", ["s"], ["c"]), node("Add", ["x", "c"], ["y"])],
        inits=[tensor("s", [2], [1 << 20, 1 << 20], elem=INT64)],
        inputs=[value_info("x", FLOAT, [1])], outputs=[value_info("y", FLOAT, [])]))
    # the ops added for models users bring: bad attributes, input counts, forms
    nchw = (1, 8, 2, 2)
    files["bad-einsum-not-matmul"] = one_node("Einsum", ["x", "w"], attr_str("equation", "ij,jk->i"),
                                              [tensor("w", [4, 2], floats(8))])
    files["bad-einsum-three-operands"] = one_node("Einsum", ["x", "x", "x"], attr_str("equation", "ij,ij,ij->ij"))
    files["bad-einsum-no-equation"] = one_node("Einsum", ["x", "w"], inits=[tensor("w", [4, 2], floats(8))])
    files["bad-einsum-rank"] = one_node("Einsum", ["x", "w"], attr_str("equation", "bij,jk->bik"),
                                        [tensor("w", [4, 2], floats(8))])
    files["bad-gelu-approximate"] = one_node("Gelu", ["x"], attr_str("approximate", "fast"), opset=20)
    files["bad-depthtospace-mode"] = one_node("DepthToSpace", ["x"], attr_int("blocksize", 2) + attr_str("mode", "XYZ"),
                                              in_dims=nchw)
    files["bad-depthtospace-no-blocksize"] = one_node("DepthToSpace", ["x"], in_dims=nchw)
    files["bad-spacetodepth-blocksize"] = one_node("SpaceToDepth", ["x"], attr_int("blocksize", 3), in_dims=nchw)
    files["bad-groupnorm-groups"] = one_node("GroupNormalization", ["x", "s", "b"], attr_int("num_groups", 3),
                                             [tensor("s", [8], floats(8)), tensor("b", [8], floats(8))], nchw, 21)
    files["bad-instancenorm-input-count"] = one_node("InstanceNormalization", ["x", "s"],
                                                     inits=[tensor("s", [8], floats(8))], in_dims=nchw)
    files["bad-argmax-axis"] = one_node("ArgMax", ["x"], attr_int("axis", 7))
    files["bad-topk-one-output"] = one_node("TopK", ["x", "k"], attr_int("axis", -1),
                                            [tensor("k", [1], [2], elem=INT64)], opset=11)
    files["bad-topk-k"] = model(graph([node("TopK", ["x", "k"], ["y", "i"])], inits=[tensor("k", [1], [9], elem=INT64)],
                                      inputs=[value_info("x", FLOAT, [1, 4])], outputs=[value_info("y", FLOAT, [])]),
                                opset=11)
    files["bad-tile-repeats"] = one_node("Tile", ["x", "r"], inits=[tensor("r", [3], [1, 2, 3], elem=INT64)])
    files["bad-upsample-scale"] = one_node("Upsample", ["x"], attr_floats("scales", [1, 1, 0.5, 1]), in_dims=nchw,
                                           opset=8)
    files["bad-max-no-inputs"] = one_node("Max", [])
    lstm_w = [tensor("w", [1, 8, 4], floats(32)), tensor("r", [1, 8, 2], floats(16, 3))]
    files["ok-lstm"] = one_node("LSTM", ["x", "w", "r"], attr_int("hidden_size", 2), lstm_w, (3, 1, 4), 14)
    files["bad-lstm-direction"] = one_node("LSTM", ["x", "w", "r"], attr_str("direction", "both"), lstm_w, (3, 1, 4), 14)
    files["bad-lstm-hidden-size"] = one_node("LSTM", ["x", "w", "r"], attr_int("hidden_size", 3), lstm_w, (3, 1, 4), 14)
    files["bad-gru-weight-rank"] = one_node("GRU", ["x", "w", "r"], inits=[tensor("w", [6, 4], floats(24)),
                                                                           tensor("r", [6, 2], floats(12))],
                                            in_dims=(3, 1, 4), opset=14)
    files["bad-reducel2-axis"] = one_node("ReduceL2", ["x"], attr_ints("axes", [5]))
    files["bad-conv-kernel-wider"] = conv_model(in_dims=(1, 3, 1, 1)) .replace(b"pads", b"padz")

    for name, data in sorted(files.items()):
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(data)
    print("make-onnx-corpus: %d files in %s" % (len(files), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
