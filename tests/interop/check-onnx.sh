#!/bin/bash
# tests/interop/check-onnx.sh - mixq's ONNX interpreter against ONNX Runtime (CPU, a
# pinned version installed from PyPI into .cache/), on the three real ONNX models that
# scripts/fetch-models places: Silero VAD, PP-OCRv4 recognition, the PP-OCR direction
# classifier; then on the models users bring (13 files from 7 wheels, seeded inputs at
# the --shapes they need).
#
#   BUILD=build tests/interop/check-onnx.sh
#
# tests/interop/onnx-run.c runs each model through mixq's f32 plan on the cpu backend and
# records every inference's inputs and outputs (.npy): Silero VAD on the first 48 frames of
# examples/onnx/vad-mix.wav with the LSTM state carried from frame to frame; the OCR
# models on batches of 2 of their evaluation lines (examples/onnx/, preprocessed as mixq's
# evaluation feeds them). tests/interop/check-onnx.py feeds the same
# inputs to onnxruntime (graph optimizations off, 1 thread) and compares.
#
# Before the models: tests/interop/make-onnx-ops.py writes small models (one or two nodes)
# for the ops added for models users bring (n-ary Max/Min/Sum/Mean, ReduceMin/Prod/L2,
# Instance/GroupNormalization, Gelu, ArgMax, TopK, DepthToSpace, SpaceToDepth, Tile,
# Upsample, Einsum, LSTM, GRU, QDQ, DynamicQuantizeLinear with MatMulInteger), each run on
# 2 pseudo-random inputs with the same
# tolerance; measured at most 7.2e-7 absolute, 3.3e-7 of the output's scale, integer
# outputs exact.
#
# Tolerance: max |mixq - ort| <= 1e-4 + 1e-4 * max |ort| per output. Why: both compute in
# f32 with the same weights and the same formulas; they differ only in summation order
# (mixq's cpu backend sums matmuls in blocked f32 order, ONNX Runtime's MLAS in its own,
# and mixq's host ops accumulate reductions in double), which moves each result by a few
# ulps (~1e-7 relative). Through 40 layers of MobileNet and a transformer neck those
# differences grow to at most ~1e-5 of the output's scale, as measured (3e-6 Silero over
# 48 frames of carried state, 1.2e-5 PP-OCRv4, 2e-6 the classifier): 1e-4 leaves 10x room,
# while any real mistake (a wrong pad, a swapped axis, an off-by-one) changes outputs by
# 1e-2 or more. The error is judged against each output's scale, not element by element,
# since softmax outputs near 0 have meaningless relative errors.
#
# Exit status: 0 all passed, 1 a check failed, 77 when onnxruntime or the models cannot be
# had here (no network) and nothing failed: the check is skipped, and says so.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
ORT_VERSION=1.31.1
ORT_DIR=.cache/onnxruntime-$ORT_VERSION
TOOLS_DIR=.cache/ort-quant-tools # onnx (and onnx-ir, for check-ort-recipe.sh)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
note() { echo "== $*"; }

# onnxruntime (and its numpy) for this python, pinned, in a --target folder
if ! PYTHONPATH=$ORT_DIR "$PYTHON" -c 'import onnxruntime, numpy' 2>/dev/null; then
    rm -rf "$ORT_DIR.tmp"
    if ! "$PYTHON" -m pip install -q --disable-pip-version-check --no-warn-script-location --timeout 30 \
        --target "$ORT_DIR.tmp" "onnxruntime==$ORT_VERSION" >"$tmp/pip.log" 2>&1; then
        echo "check-onnx: skipped: cannot install onnxruntime==$ORT_VERSION: $(grep -m1 ERROR "$tmp/pip.log" || tail -1 "$tmp/pip.log")"
        exit 77
    fi
    rm -rf "$ORT_DIR" && mv "$ORT_DIR.tmp" "$ORT_DIR"
fi
# the driver, against this build's library
if [ ! -f "$BUILD/libmixq.a" ]; then
    make --no-print-directory -s BUILD="$BUILD" "$BUILD/libmixq.a" >&2 || { echo "check-onnx: cannot build $BUILD/libmixq.a"; exit 1; }
fi
driver=$BUILD/interop/onnx-run
mkdir -p "$BUILD/interop"
if [ ! -x "$driver" ] || [ "$driver" -ot tests/interop/onnx-run.c ] || [ "$driver" -ot "$BUILD/libmixq.a" ]; then
    # shellcheck disable=SC2046 # several words
    ${CC:-cc} -O2 -g -std=c11 -D_GNU_SOURCE -I. tests/interop/onnx-run.c "$BUILD/libmixq.a" \
        $(cat "$BUILD/link-flags") -o "$driver" ||
        { echo "check-onnx: cannot build $driver"; exit 1; }
fi

fail=0
# the ops' models: tests/interop/make-onnx-ops.py writes them with the onnx package, pinned
# as check-ort-recipe.sh pins it (the test imports onnx.helper: run from here, a bare `import onnx`
# finds the repository's onnx/ folder as a namespace package and succeeds without the package)
if ! PYTHONPATH=$ORT_DIR:$TOOLS_DIR "$PYTHON" -c 'import onnx.helper' 2>/dev/null; then
    rm -rf "$TOOLS_DIR.tmp"
    if ! "$PYTHON" -m pip install -q --disable-pip-version-check --no-warn-script-location --timeout 30 \
        --target "$TOOLS_DIR.tmp" "onnx==1.23.2" "onnx-ir==1.1.0" >"$tmp/pip.log" 2>&1; then
        echo "check-onnx: cannot install onnx==1.23.2 ($(grep -m1 ERROR "$tmp/pip.log" || tail -1 "$tmp/pip.log")): ops not checked"
        ops_skipped=1
    else
        rm -rf "$TOOLS_DIR" && mv "$TOOLS_DIR.tmp" "$TOOLS_DIR"
    fi
fi
if [ -z "${ops_skipped:-}" ]; then
    note "ONNX ops: one- and two-node models, mixq f32 against onnxruntime $ORT_VERSION (CPU)"
    if ! PYTHONPATH=$ORT_DIR:$TOOLS_DIR "$PYTHON" tests/interop/make-onnx-ops.py "$tmp/ops" >"$tmp/make.log" 2>&1; then
        echo "FAIL make-onnx-ops.py: $(tail -1 "$tmp/make.log")"
        fail=1
    fi
    for model in "$tmp"/ops/*.onnx; do
        [ -f "$model" ] || continue
        label=$(basename "$model" .onnx)
        if ! "$driver" "$model" "$tmp/ops/$label" --cases 2 --batch 1 >"$tmp/run.log" 2>&1; then
            echo "FAIL $label: mixq could not run it: $(tail -1 "$tmp/run.log")"
            fail=1
            continue
        fi
        PYTHONPATH=$ORT_DIR ORT_LOGGING_LEVEL=3 "$PYTHON" tests/interop/check-onnx.py "$model" "$tmp/ops/$label" \
            --label "$label" --atol 1e-4 --rtol 1e-4 2>"$tmp/py.err" || { fail=1; tail -3 "$tmp/py.err"; }
    done
fi

models=$(scripts/fetch-models silero-vad ppocr-rec ppocr-cls 2>"$tmp/fetch.err") || {
    echo "check-onnx: the ONNX models could not be fetched: $(tail -1 "$tmp/fetch.err")"
    [ "$fail" -eq 0 ] && echo "check-onnx: skipped (models)"
    [ "$fail" -eq 0 ] && exit 77
    exit 1
}
note "ONNX models: mixq f32 against onnxruntime $ORT_VERSION (CPU)"
for model in $models; do
    label=$(basename "$model" .onnx)
    out=$tmp/$label
    cases=4
    case $label in silero*) cases=48 ;; esac
    if ! "$driver" "$model" "$out" --cases $cases --batch 2 --wav examples/onnx/vad-mix.wav >"$tmp/run.log" 2>&1; then
        echo "FAIL $label: mixq could not run it: $(tail -1 "$tmp/run.log")"
        fail=1
        continue
    fi
    PYTHONPATH=$ORT_DIR ORT_LOGGING_LEVEL=3 "$PYTHON" tests/interop/check-onnx.py "$model" "$out" --label "$label" \
        --atol 1e-4 --rtol 1e-4 2>"$tmp/py.err" || { fail=1; tail -3 "$tmp/py.err"; }
done

# the models users bring (issue 17's set, scripts/models.lock): NAME, the --shapes it needs
# and the range of its integer inputs ('-': none, 0/1), each on 2 seeded cases at batch 1; a
# model that cannot be fetched is skipped and said, one that mixq refuses or computes
# differently fails. magika reads a file's bytes (0..255): on 0/1 its LayerNorm, written as
# E[x^2] - E[x]^2, cancels to almost 0 and magnifies the summation-order difference (mixq
# reduces in double, onnxruntime in float) to 3e-3 of the output; on bytes it agrees to 2.4e-7.
note "ONNX models users bring: mixq f32 against onnxruntime $ORT_VERSION (CPU)"
while read -r name shapes ints; do
    file=$(scripts/fetch-models "$name" 2>"$tmp/fetch.err") || {
        echo "SKIP $name: cannot be fetched: $(tail -1 "$tmp/fetch.err")"
        continue
    }
    out=$tmp/user-$name
    args=(--cases 2 --batch 1)
    [ "$shapes" = - ] || args+=(--shapes "$shapes")
    [ "$ints" = - ] || args+=(--int-range "$ints")
    if ! "$driver" "$file" "$out" "${args[@]}" >"$tmp/run.log" 2>&1; then
        echo "FAIL $name: mixq could not run it: $(tail -1 "$tmp/run.log")"
        fail=1
        continue
    fi
    PYTHONPATH=$ORT_DIR ORT_LOGGING_LEVEL=3 "$PYTHON" tests/interop/check-onnx.py "$file" "$out" --label "$name" \
        --atol 1e-4 --rtol 1e-4 2>"$tmp/py.err" || { fail=1; tail -3 "$tmp/py.err"; }
done <<'EOF_MODELS'
captcha-crnn - -
ddddocr-ocr input1:1x1x64x256 -
ddddocr-det - -
minilm-l3 input_ids:1x64,attention_mask:1x64 -
dnsmos-sig - -
dnsmos-bak-ovr - -
dnsmos-v8 - -
dnsmos-sig-bak-ovr - -
plcmos-v2 degraded_audio:1x1x100x257 -
wakeword-mel input:1x16000 -
wakeword-embed - -
magika - 256
pulsevad - -
pulsevad-int8 - -
EOF_MODELS
if [ "$fail" -eq 0 ]; then
    echo "check-onnx: all passed"
fi
exit "$fail"
