#!/bin/bash
# tests/interop/check-quantize-files.sh - every weight format mixq writes, byte for byte
# against llama-quantize, with and without an importance matrix (issue 14).
#
#   MIXQ=build/mixq LLAMA_BIN=DIR SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf \
#       tests/interop/check-quantize-files.sh        (tests/interop/run.sh calls it)
#
# For each model (tinyllm f32; tinyllm256 f32 when present; SmolLM2 as shipped in q4_1):
#  1. llama-imatrix on the first chunks of examples/data/kjv-eval.txt writes the model's
#     importance matrix, as GGUF and as a legacy .dat (both formats mixq reads);
#  2. for each format TYPE: `llama-quantize --pure SRC OUT TYPE` and
#     `mixq quantize SRC --plan TYPE -o OUT2` must give the same tensors (types, shapes,
#     bytes: tests/interop/gguf-cmp.c); then the same with `--imatrix` given to both, once
#     the GGUF file and once the .dat (whose values llama-imatrix rounds differently, so the
#     two files give slightly different importance weights: each tool reads each file the
#     same way, which is what is checked). Layers whose rows are
#     not whole blocks of TYPE fall back in both (tinyllm's 192-wide rows: q4_k -> q5_0).
# SmolLM2 (135 M weights; llama-quantize and mixq each take up to 100 s per iq4 file here)
# runs q4_k (on its 1536-wide rows a K-quant; elsewhere the q5_0 fallback) with and
# without the GGUF imatrix (every K-quant's quantizer runs on tinyllm's 512-wide rows),
# unless FULL=1, which runs it like the others (every format, both imatrix files: the run
# the closing notes quote). tinyllm256, whose every row is a multiple of 256, runs the
# formats that tinyllm's 192-wide rows send to a fallback (the K-quants and iq4_xs), on
# every layer, unless FULL=1.
# Prints one line per model, format and imatrix: identical or DIFFERENT (with the first
# tensors that differ).
#
# Exit status: 0 all identical, 1 a difference or a failure, 77 when llama.cpp is missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
MIXQ=${MIXQ:-build/mixq}
BUILD=${BUILD:-build}
LLAMA_BIN=${LLAMA_BIN:-$(scripts/build-llama-cpp 2>/dev/null | tail -1)}
SMOL=${SMOL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
TYPES=${TYPES:-"q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k q6_k iq4_nl iq4_xs"}
FULL=${FULL:-0}
SMOL_TYPES=${SMOL_TYPES:-"q4_k"}
TINY256_TYPES=${TINY256_TYPES:-"q2_k q3_k q4_k q5_k q6_k iq4_xs"}
TEXT=examples/data/kjv-eval.txt
work=$BUILD/interop/quantize-files
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL $*"; fail=1; }

for t in llama-quantize llama-imatrix; do
    if [ ! -x "$LLAMA_BIN/$t" ]; then
        echo "check-quantize-files: skipped: no $t in '$LLAMA_BIN'"
        exit 77
    fi
done
mkdir -p "$work"
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -I. tests/interop/gguf-cmp.c "$BUILD/libmixq.a" \
    $(cat "$BUILD/link-flags") -o "$work/gguf-cmp" ||
    { echo "check-quantize-files: cannot build tests/interop/gguf-cmp.c"; exit 1; }

models="examples/tinyllm/tinyllm.gguf"
[ -f examples/tinyllm256/tinyllm256.gguf ] && models="$models examples/tinyllm256/tinyllm256.gguf"
[ -f "$SMOL" ] && models="$models $SMOL" || echo "check-quantize-files: no $SMOL: SmolLM2 left out"
for model in $models; do
    name=$(basename "$model" .gguf)
    ctx=256
    case "$name" in SmolLM2*) ctx=512 ;; esac
    im=$work/$name.imatrix
    if [ ! -s "$im.gguf" ] || [ ! -s "$im.dat" ] || [ "$im.gguf" -ot "$model" ]; then
        for fmt in gguf dat; do
            "$LLAMA_BIN/llama-imatrix" -m "$model" -f "$TEXT" -c "$ctx" --chunks 8 -t 2 --no-ppl \
                --output-format "$fmt" -o "$tmp/im.$fmt" >"$tmp/imatrix.log" 2>&1 &&
                mv "$tmp/im.$fmt" "$im.$fmt" ||
                { bad "$name: llama-imatrix --output-format $fmt: $(tail -1 "$tmp/imatrix.log")"; continue 2; }
        done
    fi
    requant="" types=$TYPES imats="none gguf dat"
    case "$name" in
    SmolLM2*)
        requant="--allow-requantize"
        [ "$FULL" = 1 ] || { types=$SMOL_TYPES imats="none gguf"; } ;;
    tinyllm256) [ "$FULL" = 1 ] || types=$TINY256_TYPES ;;
    esac
    for type in $types; do
        upper=$(echo "$type" | tr '[:lower:]' '[:upper:]')
        for imat in $imats; do
            args=""
            [ "$imat" != none ] && args="--imatrix $im.$imat"
            ref=$tmp/llama.gguf
            # shellcheck disable=SC2086
            "$LLAMA_BIN/llama-quantize" --pure $requant $args "$model" "$ref" "$upper" 2 \
                >"$tmp/lq.log" 2>&1 || { bad "$name $type imatrix=$imat: llama-quantize: $(tail -1 "$tmp/lq.log")"; continue; }
            # shellcheck disable=SC2086
            "$MIXQ" quantize "$model" --plan "$type" $args -o "$tmp/mixq.gguf" -q >"$tmp/mq.log" 2>&1 ||
                { bad "$name $type imatrix=$imat: mixq quantize: $(tail -1 "$tmp/mq.log")"; continue; }
            if "$work/gguf-cmp" "$ref" "$tmp/mixq.gguf" >"$tmp/cmp.txt" 2>&1; then
                printf "%-32s %-7s imatrix %-4s %s\n" "$name" "$type" "$imat" "$(tail -1 "$tmp/cmp.txt")"
            else
                bad "$name $type imatrix=$imat: $(tail -1 "$tmp/cmp.txt")"
                head -3 "$tmp/cmp.txt" | sed 's/^/    /'
            fi
        done
    done
done
[ "$fail" -eq 0 ] && echo "check-quantize-files: every format byte-identical with llama-quantize"
exit "$fail"
