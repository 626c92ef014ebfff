#!/bin/bash
# tests/interop/check-ort-recipe.sh - mixq export --to onnxruntime applied by ONNX Runtime's
# own quantization tools (issue 8), on the PP-OCR direction classifier and PP-OCRv4
# recognition models.
#
#   BUILD=build tests/interop/check-ort-recipe.sh       (tests/interop/run.sh calls it)
#
# For each model and plan (all-q8_0, all-q4_0, and a mixed plan file: q8_0 with the largest
# layer that could be q8_0 in f32, the next two in q4_0, and the first layer in f32):
#  1. mixq export PLAN --to onnxruntime writes the recipe (JSON) and prints the python that
#     applies it; the python runs as printed, with onnxruntime.quantization
#     (MatMulNBitsQuantizer, quantize_static in QDQ form), calibrated on the first 8 of
#     the evaluation lines, and writes the quantized model;
#  2. tests/interop/check-ort-recipe.py runs it with onnxruntime on the evaluation lines
#     mixq scores (inputs recorded by tests/interop/onnx-run.c), checks that every Conv the
#     recipe sends to int8 reads an int8 weight through DequantizeLinear (and MatMulNBits
#     nodes as asked), that onnxruntime on the f32 model gives exactly mixq's
#     full-precision figure (the metric is computed the same way), and that the quantized
#     model's figure is within the tolerance of mixq's figure for the plan that ONNX
#     Runtime can express: the recipe's per-layer "onnxruntime" column said back in mixq
#     formats (float -> f32, qdq_int8 -> q8_0, matmul_nbits4/8 -> q4_0/q8_0). Where the
#     recipe rounds (q4_0 convolutions -> int8, f16 -> f32; its notes list them), that is
#     the plan ONNX Runtime runs; mixq's figure for the plan as given is printed beside it.
#
# Tolerances, and why the formats differ: mixq's q8_0 has one weight scale per block of 32
# and quantizes activations per block of 32 at run time; the recipe's ONNX Runtime Conv has
# one int8 weight scale per output channel (coarser) and 16-bit activations with one scale
# per tensor, calibrated (finer, but values beyond the calibrated range are clipped). They
# round different values, so a few samples near a decision boundary go the other way.
# Accuracy (classifier, 64 lines: one line is 0.0156) within 0.0625, four lines; measured
# 0.0156 (onnxruntime 0.891, mixq 0.875). Character error rate (recognition, 40 lines, 864
# characters) within 0.02, 17 characters; measured 0.0023 (0.0266 vs 0.0243 at q8_0, 0.0243
# vs 0.0220 mixed). A recipe that quantized the wrong nodes or lost a scale moves these
# far more: ONNX Runtime's dynamic int8 Conv (ConvInteger, 8-bit activations with one
# scale per tensor), which an earlier recipe used, gives a CER of 0.885 on recognition.
#
# Exit status: 0 all passed, 1 a check failed, 77 when onnxruntime, onnx or the models cannot
# be had here (no network): the check is skipped, and says so.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
MIXQ=${MIXQ:-$BUILD/mixq}
PYTHON=${PYTHON:-python3}
ORT_DIR=.cache/onnxruntime-1.31.1 # installed by check-onnx.sh
TOOLS_DIR=.cache/ort-quant-tools  # onnx and onnx-ir, which onnxruntime.quantization imports
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL $*"; fail=1; }
PYP=$ORT_DIR:$TOOLS_DIR

if ! PYTHONPATH=$ORT_DIR "$PYTHON" -c 'import onnxruntime, numpy' 2>/dev/null; then
    echo "check-ort-recipe: skipped: no onnxruntime in $ORT_DIR (tests/interop/check-onnx.sh installs it)"
    exit 77
fi
if ! PYTHONPATH=$PYP "$PYTHON" -c 'import onnxruntime.quantization.matmul_nbits_quantizer' 2>/dev/null; then
    rm -rf "$TOOLS_DIR.tmp"
    if ! "$PYTHON" -m pip install -q --disable-pip-version-check --no-warn-script-location --timeout 30 \
        --target "$TOOLS_DIR.tmp" "onnx==1.23.2" "onnx-ir==1.1.0" >"$tmp/pip.log" 2>&1; then
        echo "check-ort-recipe: skipped: cannot install onnx and onnx-ir: $(grep -m1 ERROR "$tmp/pip.log" || tail -1 "$tmp/pip.log")"
        exit 77
    fi
    rm -rf "$TOOLS_DIR" && mv "$TOOLS_DIR.tmp" "$TOOLS_DIR"
fi
models=$(scripts/fetch-models ppocr-cls ppocr-rec 2>"$tmp/fetch.err") || {
    echo "check-ort-recipe: skipped: the ONNX models could not be fetched: $(tail -1 "$tmp/fetch.err")"
    exit 77
}
driver=$BUILD/interop/onnx-run # built by check-onnx.sh
[ -x "$driver" ] || { bad "no $driver (tests/interop/check-onnx.sh builds it)"; exit 1; }

# metric MODEL PLAN: mixq's figure for the plan and the full-precision one ("X F32")
metric() {
    "$MIXQ" -q eval "$1" --plan "$2" --no-kl | awk '/^(accuracy|cer) /{gsub(/[;)]/, "", $5); print $2, $5; exit}'
}

for model in $models; do
    label=$(basename "$model" .onnx)
    case $label in
    *cls*) task=cls data=examples/onnx/ocr-cls.tsv tol=0.0625 ;;
    *rec*) task=rec data=examples/onnx/ocr-rec.tsv tol=0.02 ;;
    *) continue ;;
    esac
    n=$(grep -vc '^#' "$data")
    "$driver" "$model" "$tmp/$label-in" --cases $(((n + 1) / 2)) --batch 2 >"$tmp/run.log" 2>&1 && [ "$n" -ge 8 ] ||
        { bad "$label: mixq could not record the inputs: $(tail -1 "$tmp/run.log")"; continue; }
    # the mixed plan: q8_0; of the layers whose rows are whole blocks, the largest f32 and
    # the next two q4_0; the first layer f32
    "$MIXQ" info "$model" | awk '/^quantizable layers/{on=1; next} on && /^ +[0-9]+ /{print $2, $NF, $5}' |
        sort -k2,2nr >"$tmp/layers"
    {
        echo "mixq_schema: plan/1"
        echo "default: q8_0"
        echo "layers:"
        awk '$3 % 32 == 0 && n < 3 {print "  " $1 ": " (n++ ? "q4_0" : "f32")}' "$tmp/layers"
        "$MIXQ" info "$model" | awk '/^quantizable layers/{on=1; next} on && /^ +0 /{print "  " $2 ": f32"; exit}'
    } >"$tmp/$label-mixed.yaml"
    for plan in q8_0 q4_0 mixed; do
        c=$label-$plan planarg=$plan
        [ "$plan" = mixed ] && planarg=$tmp/$label-mixed.yaml
        "$MIXQ" -q export "$planarg" --model "$model" --to onnxruntime -o "$tmp/$c.json" \
            --out-model "$tmp/$c.onnx" >"$tmp/$c.py" || { bad "$c: mixq export failed"; continue; }
        # calibration (activation ranges): the first 8 of the evaluation lines
        PYTHONPATH=$PYP "$PYTHON" "$tmp/$c.py" "$tmp/$label-in"/case[0-3].in.*.npy >"$tmp/$c.log" 2>&1 ||
            { bad "$c: the exported python failed: $(grep -v INFO "$tmp/$c.log" | tail -1)"; continue; }
        # the plan ONNX Runtime runs, in mixq's formats
        "$PYTHON" - "$tmp/$c.json" >"$tmp/$c-ort.yaml" <<'EOF'
import json, sys
back = {"float": "f32", "qdq_int8": "q8_0", "matmul_nbits4": "q4_0", "matmul_nbits8": "q8_0"}
r = json.load(open(sys.argv[1]))
print("mixq_schema: plan/1\nlayers:")
for l in r["layers"]:
    print(f"  {l['layer']}: {back[l['onnxruntime']]}")
EOF
        read -r m_plan m_f32 <<<"$(metric "$model" "$planarg")"
        read -r m_ort _ <<<"$(metric "$model" "$tmp/$c-ort.yaml")"
        [ -n "$m_ort" ] && [ -n "$m_f32" ] || { bad "$c: mixq eval failed"; continue; }
        n_round=$(grep -c '"rounded": true' "$tmp/$c.json")
        echo "     $c: mixq $m_plan for the plan as given, $m_ort for the plan onnxruntime runs ($n_round layers rounded)"
        PYTHONPATH=$PYP ORT_LOGGING_LEVEL=3 "$PYTHON" tests/interop/check-ort-recipe.py --task "$task" \
            --source "$model" --quantized "$tmp/$c.onnx" --recipe "$tmp/$c.json" --inputs "$tmp/$label-in" \
            --data "$data" --mixq-f32 "$m_f32" --mixq-plan "$m_ort" --tol "$tol" --label "$c" || fail=1
    done
done
[ "$fail" -eq 0 ] && echo "check-ort-recipe: all passed"
exit "$fail"
