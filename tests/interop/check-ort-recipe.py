#!/usr/bin/env python3
"""Scores an ONNX model that onnxruntime.quantization made from a mixq recipe (mixq export
--to onnxruntime) on the evaluation lines mixq scores, and compares with mixq's figure.

    check-ort-recipe.py --task cls|rec --source SRC.onnx --quantized Q.onnx --recipe R.json
        --inputs DIR --data TSV --mixq-f32 X --mixq-plan Y --tol T --label NAME

DIR holds the evaluation images as mixq's evaluation feeds them (tests/interop/onnx-run.c:
case<k>.in.x.npy, batches in TSV order). TSV is the task's manifest (FILE<tab>ANGLE for
the direction classifier, FILE<tab>TEXT for recognition). The metric is computed as
onnx/onnx_task.c computes it: accuracy of the argmax class (cls), or the character error
rate of the greedy CTC decoding against the line's text, in Unicode code points (rec).

Checks, each printed as ok or FAIL:
  1. the metric implementation: ONNX Runtime running SRC (f32) gives exactly mixq's
     full-precision figure (X), so that step 3 compares like with like;
  2. the recipe was applied: every Conv the recipe sends to int8 reads an int8 weight and
     its input through DequantizeLinear (QDQ), and Q holds one MatMulNBits per node the
     recipe sends to 4 or 8 bits;
  3. Q's metric lies within T of mixq's figure for the plan (Y).
Exit 0 when all pass, 1 otherwise. Needs numpy, onnx and onnxruntime on sys.path.
"""
import argparse
import glob
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def load_inputs(d, n):
    files = sorted(glob.glob(os.path.join(d, "case*.in.*.npy")),
                   key=lambda p: int(os.path.basename(p)[4:].split(".")[0]))
    if not files:
        return None
    x = np.concatenate([np.load(p) for p in files])
    return x[:n] if len(x) >= n else None


def manifest(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, _, value = line.partition("\t")
            rows.append(value)
    return rows


def alphabet(model_path):
    meta = {p.key: p.value for p in onnx.load(model_path, load_external_data=False).metadata_props}
    return [""] + meta["character"].split("\n")


def run(path, x):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i:i + 2]})[0] for i in range(0, len(x), 2)])


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        diag, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            up = row[j]
            row[j] = min(diag + (a[i - 1] != b[j - 1]), up + 1, row[j - 1] + 1)
            diag = up
    return row[len(b)]


def metric(task, probs, labels, chars):
    if task == "cls":
        want = [0 if a.strip() == "0" else 1 for a in labels]
        return float(np.mean(np.argmax(probs, axis=1) == np.array(want)))
    edits = total = 0
    for i, text in enumerate(labels):
        got, prev = [], -1
        for k in np.argmax(probs[i], axis=1):
            if k != prev and 0 < k < len(chars):
                got.append(chars[k])
            prev = k
        got = "".join(got)
        edits += edit_distance(got, text)
        total += len(text)
    return edits / total if total else 0.0


def main():
    ap = argparse.ArgumentParser()
    for a in ("--task", "--source", "--quantized", "--recipe", "--inputs", "--data", "--label"):
        ap.add_argument(a, required=True)
    for a in ("--mixq-f32", "--mixq-plan", "--tol"):
        ap.add_argument(a, type=float, required=True)
    a = ap.parse_args()
    ort.set_default_logger_severity(3)
    labels = manifest(a.data)
    x = load_inputs(a.inputs, len(labels))
    if x is None:
        print(f"FAIL {a.label}: fewer recorded inputs in {a.inputs} than lines in {a.data}")
        return 1
    if a.task == "rec":
        chars = alphabet(a.source)
        # the model's last class is a space when it has one more class than the dictionary
        # lists (onnx/onnx_task.c rec_alphabet)
        n_classes = onnx.load(a.source, load_external_data=False).graph.output[0].type.tensor_type.shape.dim[2].dim_value
        if n_classes == len(chars) + 1:
            chars.append(" ")
    else:
        chars = None
    fail = 0

    m_f32 = metric(a.task, run(a.source, x), labels, chars)
    if abs(m_f32 - a.mixq_f32) <= 1e-6 + 1e-5 * abs(a.mixq_f32):  # mixq prints 6 digits
        print(f"ok   {a.label}: onnxruntime f32 {m_f32:.6g} = mixq's full precision {a.mixq_f32:.6g}")
    else:
        print(f"FAIL {a.label}: onnxruntime f32 gives {m_f32:.6g}, mixq's full precision is {a.mixq_f32:.6g}")
        fail = 1

    r = json.load(open(a.recipe))
    g = onnx.load(a.quantized, load_external_data=False).graph
    producer = {o: n for n in g.node for o in n.output}
    int8_inits = {t.name for t in g.initializer if t.data_type == onnx.TensorProto.INT8}
    by_name = {n.name: n for n in g.node}
    want_conv = r["qdq_int8"]["nodes"]
    # a Conv of the recipe's int8 list reads its weight through a DequantizeLinear of an int8
    # initializer (QDQ), and its input through a DequantizeLinear of 16-bit codes
    got_conv = 0
    for name in want_conv:
        n = by_name.get(name)
        if n is None or n.op_type != "Conv" or len(n.input) < 2:
            continue
        w, xin = producer.get(n.input[1]), producer.get(n.input[0])
        if w is not None and w.op_type == "DequantizeLinear" and w.input[0] in int8_inits and \
                xin is not None and xin.op_type == "DequantizeLinear":
            got_conv += 1
    want_nb = sum(len(grp["nodes"]) for grp in r["matmul_nbits"])
    got_nb = sum(n.op_type == "MatMulNBits" for n in g.node)
    if got_conv == len(want_conv) and got_nb == want_nb and got_conv + got_nb > 0:
        print(f"ok   {a.label}: {got_conv} Conv nodes read int8 weights through DequantizeLinear and "
              f"{got_nb} MatMulNBits nodes, as the recipe asks ({len(r['keep_float'])} nodes kept in float)")
    else:
        print(f"FAIL {a.label}: {got_conv} int8 QDQ Conv and {got_nb} MatMulNBits nodes, the recipe asks for "
              f"{len(want_conv)} and {want_nb}")
        fail = 1

    m_q = metric(a.task, run(a.quantized, x), labels, chars)
    d = abs(m_q - a.mixq_plan)
    name = "accuracy" if a.task == "cls" else "cer"
    verdict = "ok  " if d <= a.tol else "FAIL"
    print(f"{verdict} {a.label}: {name} onnxruntime {m_q:.6g}, mixq {a.mixq_plan:.6g} (f32 {a.mixq_f32:.6g}), "
          f"|difference| {d:.4g} <= {a.tol:g}" if d <= a.tol else
          f"{verdict} {a.label}: {name} onnxruntime {m_q:.6g}, mixq {a.mixq_plan:.6g} (f32 {a.mixq_f32:.6g}), "
          f"|difference| {d:.4g} > {a.tol:g}")
    return 1 if fail or d > a.tol else 0


if __name__ == "__main__":
    sys.exit(main())
