#!/bin/bash
# tests/interop/check-export.sh - mixq quantize and mixq export --to llama.cpp against the
# real llama.cpp tools (issue 7), on the bundled model and on SmolLM2-135M.
#
#   MIXQ=build/mixq LLAMA_BIN=DIR SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf \
#       tests/interop/check-export.sh          (tests/interop/run.sh calls it)
#
# For each model and each plan (all-f16 (tinyllm only), all-q8_0, all-q4_0, and the mixed plan that
# `mixq tune` chooses (proxy sensitivity): tinyllm under a 10 MB budget, SmolLM2 under 145 MB; the fronts are
# kept in .cache/interop/ and reused):
#  1. mixq quantize writes OUT.gguf; mixq eval of the source with the plan gives ppl_mixq
#     and kl_mixq (mean KL from the reference: the source file's weights as shipped, each
#     layer in its stored type; tinyllm: f32), and mixq eval of OUT.gguf as it is
#     ('--plan source') must give exactly the same perplexity: the file is what was measured;
#  2. llama-perplexity runs OUT.gguf with --kl-divergence against the reference's
#     log-probabilities that mixq saved (eval --plan source --save-logits: the same
#     reference as kl_mixq's, SmolLM2's shipped q4_1 run by the q4_1 kernels): ppl_llama
#     and kl_llama = KL(reference || llama.cpp running OUT.gguf);
#  3. |ppl_llama / ppl_mixq - 1| <= ppl tolerance and |kl_llama - kl_mixq| <= kl tolerance,
#     the tolerances of run.sh for the same formats: float plans ppl 1e-3, kl 1e-4; plans
#     with integer formats 2e-3 / 5e-4 on tinyllm and 2e-2 / 1.5e-2 on SmolLM2. Why those
#     bound this comparison too: both KL figures measure the same quantized weights (step 1
#     makes them byte-identical to what llama-quantize writes, step 4) against the same
#     reference log-probabilities, so they differ only by how far llama.cpp's arithmetic on those
#     weights is from mixq's, which is what run.sh's tolerances were measured for
#     (activation rounding to f16 or Q8_0 blocks, summation order; SmolLM2's outlier
#     channels amplify both);
#  4. mixq export --to llama.cpp gives the llama-quantize command; run as printed (with
#     the rules inline) on the source model, every tensor of its result has the planned
#     type (mixq info lists them, compared line by line with OUT.gguf's), and, where
#     llama.cpp's gguf-py and numpy can be imported, every tensor's bytes equal OUT.gguf's.
# Then, for SmolLM2: the mixed file must be smaller than the all-q8_0 file and have lower
# measured KL (mixq's and llama.cpp's) than the all-q4_0 file.
#
# Exit status: 0 all passed, 1 a check failed, 77 when llama.cpp or SmolLM2 are missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
MIXQ=${MIXQ:-build/mixq}
LLAMA_BIN=${LLAMA_BIN:-$(scripts/build-llama-cpp 2>/dev/null | tail -1)}
SMOL=${SMOL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
TINY=examples/tinyllm/tinyllm.gguf
TEXT=examples/data/kjv-eval.txt
cache=.cache/interop
GGUF_PY=$(ls -d .cache/llama.cpp/*/src/vendor/llama.cpp/gguf-py 2>/dev/null | tail -1)
ORT_DIR=.cache/onnxruntime-1.31.1 # numpy for gguf-py, installed by check-onnx.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
note() { echo "== $*"; }
bad() { echo "FAIL $*"; fail=1; }

if [ ! -x "$LLAMA_BIN/llama-perplexity" ] || [ ! -x "$LLAMA_BIN/llama-quantize" ]; then
    echo "check-export: skipped: no llama.cpp tools in '$LLAMA_BIN'"
    exit 77
fi
[ -f "$SMOL" ] || { echo "check-export: skipped: no $SMOL (scripts/fetch-models smollm2)"; exit 77; }
mkdir -p "$cache"
have_gguf_py=0
if [ -n "$GGUF_PY" ] && PYTHONPATH=$GGUF_PY:$ORT_DIR python3 -c 'import gguf, numpy' 2>/dev/null; then
    have_gguf_py=1
fi

# The mixed plans: the chosen points of a tune under a budget between all-q4_0 and all-q8_0.
front() { # LABEL MODEL ARGS...
    local label=$1 model=$2
    shift 2
    local dir=$cache/export-tune-$label
    # tuned again when the model is newer than the kept front (the bundled model is
    # retrained) or the tune's arguments changed
    if [ ! -s "$dir/front.yaml" ] || [ "$dir/front.yaml" -ot "$model" ] || [ "$(cat "$dir/args" 2>/dev/null)" != "$*" ]; then
        rm -rf "$dir"
        "$MIXQ" -q tune "$model" "$@" --out "$dir" --cache-dir "$cache/export-tune-cache" >"$tmp/tune.log" 2>&1 ||
            { echo "FAIL tune $label: $(tail -1 "$tmp/tune.log")" >&2; return 1; } # stdout is the path
        echo "$*" >"$dir/args"
    fi
    echo "$dir/front.yaml"
}
note "mixed plans: mixq tune (kept in $cache/export-tune-*)"
# --no-compensate: what is checked is that llama-quantize reproduces mixq's bytes, which
# error-compensated tensors are not (mixq export says so in the recipe)
TINY_FRONT=$(front tiny "$TINY" --sensitivity proxy --no-compensate --budget 10MB)
# SmolLM2: proxy sensitivity and an imatrix of 8 chunks (grouped sensitivity over the
# 10-format menu and the whole calibration text made this tune 8 minutes of a clean CI run;
# what is checked here is the front's export, not the tune's choice)
SMOL_FRONT=$(front smol "$SMOL" --sensitivity proxy --no-compensate --ctx 256 --chunks 2 --calib-chunks 8 --budget 145MB)

# types MODEL: "name type" of every layer, as mixq info lists them
types() {
    "$MIXQ" info "$1" | awk '/^quantizable layers/{on=1; next} on && /^ +[0-9]+ /{print $2, $(NF-1)} on && /^$/{exit}'
}

declare -A SIZE KLM KLL
run_model() { # LABEL MODEL CTX CHUNKS FRONT INT_PTOL INT_KTOL PLANS
    local label=$1 model=$2 ctx=$3 chunks=$4 frontfile=$5 iptol=$6 iktol=$7 plans=$8
    "$MIXQ" -q eval "$model" --plan source --ctx "$ctx" --chunks "$chunks" --no-kl --text "$TEXT" \
        --save-logits "$tmp/$label-ref.logits" >/dev/null || { bad "$label: mixq eval of the reference failed"; return; }
    local plan
    for plan in $plans; do
        local c=$label-$plan out=$tmp/$label-$plan.gguf planarg=$plan ptol=$iptol ktol=$iktol
        [ "$plan" = mixed ] && planarg=$frontfile
        [ "$plan" = f16 ] && ptol=1e-3 && ktol=1e-4
        [ -n "$planarg" ] || { bad "$c: no front"; continue; }
        "$MIXQ" -q quantize "$model" --plan "$planarg" -o "$out" >"$tmp/q.out" || { bad "$c: mixq quantize failed"; continue; }
        SIZE[$c]=$(stat -c %s "$out")
        local m ppl_m kl_m ppl_f
        m=$("$MIXQ" -q eval "$model" --plan "$planarg" --ctx "$ctx" --chunks "$chunks" --text "$TEXT") ||
            { bad "$c: mixq eval failed"; continue; }
        ppl_m=$(echo "$m" | awk '/^ppl /{print $2}')
        kl_m=$(echo "$m" | awk '/^kl /{print $3}')
        ppl_f=$("$MIXQ" -q eval "$out" --plan source --ctx "$ctx" --chunks "$chunks" --no-kl --text "$TEXT" |
            awk '/^ppl /{print $2}')
        if [ "$ppl_f" != "$ppl_m" ]; then
            bad "$c: mixq eval of the written file gives ppl $ppl_f, of the plan $ppl_m"
        fi
        tests/interop/llama-ppl.sh "$LLAMA_BIN" "$out" "$TEXT" "$ctx" "$chunks" "$tmp/$label-ref.logits" \
            "$tmp/$c.txt" || { bad "$c: llama-perplexity failed: $(tail -2 "$tmp/$c.txt" | head -1)"; continue; }
        local ppl_l kl_l v
        ppl_l=$(awk -F: '/^Mean PPL\(Q\) +:/{split($2,a," "); print a[1]}' "$tmp/$c.txt")
        kl_l=$(awk -F: '/^Mean    KLD/{split($2,a," "); print a[1]}' "$tmp/$c.txt")
        KLM[$c]=$kl_m
        KLL[$c]=$kl_l
        v=$(awk -v m="$ppl_m" -v l="$ppl_l" -v km="$kl_m" -v kl="$kl_l" -v pt="$ptol" -v kt="$ktol" 'BEGIN {
            r = l / m - 1; if (r < 0) r = -r; d = kl - km; if (d < 0) d = -d;
            printf "%.2e %.2e %s", r, d, (m > 0 && l > 0 && km != "" && kl != "" && r <= pt && d <= kt) ? "ok" : "FAIL" }')
        read -r rel kdiff verdict <<<"$v"
        printf '%-20s %10s %10s %9s %10s %10s %9s  %s (tolerances ppl %s, kl %s)\n' "$c" "$ppl_m" "$ppl_l" "$rel" \
            "$kl_m" "$kl_l" "$kdiff" "$verdict" "$ptol" "$ktol"
        [ "$verdict" = ok ] || fail=1

        # the exported llama-quantize command, run as printed
        local exp
        if [ "$plan" = mixed ]; then
            exp=$("$MIXQ" -q export "$frontfile" --to llama.cpp --out-model "$tmp/$c-lq.gguf")
        else
            exp=$("$MIXQ" -q export "$plan" --model "$model" --to llama.cpp --out-model "$tmp/$c-lq.gguf")
        fi || { bad "$c: mixq export failed"; continue; }
        local cmd
        cmd=$(echo "$exp" | awk '/^llama-quantize /{p=1} p{print} p && !/\\$/{exit}')
        if ! (eval "\"$LLAMA_BIN/\"$cmd") >"$tmp/lq.log" 2>&1; then
            bad "$c: the exported llama-quantize command failed: $(tail -1 "$tmp/lq.log")"
            continue
        fi
        types "$out" >"$tmp/want.types"
        types "$tmp/$c-lq.gguf" >"$tmp/got.types"
        local n_rules
        n_rules=$(echo "$exp" | grep -c '^ *--tensor-type ')
        if [ -s "$tmp/want.types" ] && cmp -s "$tmp/want.types" "$tmp/got.types"; then
            echo "ok   $c: llama-quantize with $n_rules rules: all $(wc -l <"$tmp/got.types") layers have their planned types"
        else
            bad "$c: llama-quantize's types differ from the plan's:"
            diff "$tmp/want.types" "$tmp/got.types" | head -5
        fi
        if [ "$have_gguf_py" = 1 ]; then
            PYTHONPATH=$GGUF_PY:$ORT_DIR python3 - "$out" "$tmp/$c-lq.gguf" "$c" <<'EOF' || fail=1
import sys
import gguf
a, b = (gguf.GGUFReader(p) for p in sys.argv[1:3])
tb = {t.name: t for t in b.tensors}
bad = [t.name for t in a.tensors
       if t.name not in tb or t.tensor_type != tb[t.name].tensor_type or t.data.tobytes() != tb[t.name].data.tobytes()]
if bad or len(a.tensors) != len(b.tensors):
    print(f"FAIL {sys.argv[3]}: {len(bad)} tensors differ from llama-quantize's, e.g. {bad[:3]}")
    sys.exit(1)
print(f"ok   {sys.argv[3]}: all {len(a.tensors)} tensors byte-identical to llama-quantize's")
EOF
        fi
        rm -f "$tmp/$c-lq.gguf"
    done
}

note "mixq quantize, llama-perplexity and the exported llama-quantize command"
printf '%-20s %10s %10s %9s %10s %10s %9s  %s\n' case ppl_mixq ppl_llama ppl_rel kl_mixq kl_llama kl_diff verdict
# SmolLM2: 2 chunks, and no f16 plan (run.sh's smollm2-f16 case and check-quantize-files
# cover its file and its arithmetic; q8_0 and q4_0 stay for the comparison below)
run_model tinyllm "$TINY" 256 16 "$TINY_FRONT" 2e-3 5e-4 "f16 q8_0 q4_0 mixed"
run_model smollm2 "$SMOL" 512 2 "$SMOL_FRONT" 2e-2 1.5e-2 "q8_0 q4_0 mixed"

note "SmolLM2: the mixed plan against all-q8_0 and all-q4_0"
s_mix=${SIZE[smollm2-mixed]:-}
if [ -n "$s_mix" ] && [ -n "${SIZE[smollm2-q8_0]:-}" ] && [ -n "${KLM[smollm2-q4_0]:-}" ]; then
    printf '%-10s %12s %10s %10s\n' plan bytes kl_mixq kl_llama
    for p in q8_0 mixed q4_0; do
        printf '%-10s %12s %10s %10s\n' "$p" "${SIZE[smollm2-$p]}" "${KLM[smollm2-$p]}" "${KLL[smollm2-$p]}"
    done
    v=$(awk -v sm="$s_mix" -v s8="${SIZE[smollm2-q8_0]}" -v km="${KLM[smollm2-mixed]}" -v k4="${KLM[smollm2-q4_0]}" \
        -v lm="${KLL[smollm2-mixed]}" -v l4="${KLL[smollm2-q4_0]}" \
        'BEGIN { print (sm < s8 && km < k4 && lm < l4) ? "ok" : "FAIL" }')
    if [ "$v" = ok ]; then
        echo "ok   smollm2: the mixed file is smaller than all-q8_0 and has lower KL than all-q4_0"
    else
        bad "smollm2: the mixed file is not smaller than all-q8_0 with lower KL than all-q4_0"
    fi
else
    bad "smollm2: missing figures for the comparison"
fi

[ "$fail" -eq 0 ] && echo "check-export: all passed"
exit "$fail"
