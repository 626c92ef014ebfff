#!/usr/bin/env python3
"""Runs ONNX Runtime on the inputs mixq recorded (tests/interop/onnx-run.c) and compares
the outputs with mixq's.

    check-onnx.py MODEL DIR --label NAME --atol A --rtol R

For every case in DIR/manifest.txt: feeds case<k>.in.*.npy (plus the inputs the task
binds, e.g. sr = 16000) to an onnxruntime CPU session of MODEL, and compares each output
with case<k>.out.<i>.npy. An output passes when max |mixq - ort| <= atol + rtol * max |ort|
(the error is judged against the output's scale, not element by element: softmax outputs
hold values near 0 whose relative error means nothing). Prints one line per model: max
absolute error, max error relative to the output's scale, and ok or FAIL. Exit 0 when
all pass, 1 otherwise. Needs numpy and onnxruntime on sys.path (check-onnx.sh installs
them under .cache/).
"""
import argparse
import os
import sys

import numpy as np
import onnxruntime as ort


# the element types onnxruntime wants, by its type names
TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
         "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16, "tensor(int8)": np.int8,
         "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("dir")
    ap.add_argument("--label", required=True)
    ap.add_argument("--atol", type=float, required=True)
    ap.add_argument("--rtol", type=float, required=True)
    a = ap.parse_args()

    bound = {}
    cases = []
    with open(os.path.join(a.dir, "manifest.txt")) as f:
        for line in f:
            w = line.split()
            if w and w[0] == "bound":
                for item in " ".join(w[1:]).split(","):
                    if "=" in item:
                        k, v = item.split("=")
                        bound[k.strip()] = int(v)
            elif w and w[0] == "case":
                cases.append(int(w[1]))
    if not cases:
        print(f"FAIL {a.label}: no cases in {a.dir}")
        return 1

    ort.set_default_logger_severity(3)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inputs = sess.get_inputs()
    outs = [o.name for o in sess.get_outputs()]
    worst_abs = 0.0
    worst_rel = 0.0
    for k in cases:
        feed = {}
        for i in inputs:
            if i.name in bound:
                feed[i.name] = np.array(bound[i.name], dtype=np.int64)
            else:
                arr = np.load(os.path.join(a.dir, f"case{k}.in.{i.name}.npy"))
                feed[i.name] = arr.astype(TYPES.get(i.type, arr.dtype))  # mixq holds f32 / int64
        got = sess.run(outs, feed)
        for j, ref in enumerate(got):
            mine = np.load(os.path.join(a.dir, f"case{k}.out.{j}.npy"))
            ref = np.asarray(ref, dtype=np.float64)
            if mine.shape != ref.shape:
                print(f"FAIL {a.label}: case {k} output {outs[j]}: shape {mine.shape}, onnxruntime {ref.shape}")
                return 1
            err = float(np.max(np.abs(mine.astype(np.float64) - ref))) if ref.size else 0.0
            scale = float(np.max(np.abs(ref))) if ref.size else 0.0
            worst_abs = max(worst_abs, err)
            worst_rel = max(worst_rel, err / scale if scale > 0 else err)
            if err > a.atol + a.rtol * scale:
                print(f"FAIL {a.label}: case {k} output {outs[j]}: max |error| {err:.3g} at scale {scale:.3g} "
                      f"(tolerance {a.atol:g} + {a.rtol:g} x scale)")
                return 1
    print(f"ok   {a.label:<28} {len(cases)} cases: max abs error {worst_abs:.3g}, "
          f"max error / output scale {worst_rel:.3g} (tolerance {a.atol:g} + {a.rtol:g} x scale)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
