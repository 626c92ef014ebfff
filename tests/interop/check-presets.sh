#!/bin/bash
# tests/interop/check-presets.sh - llama.cpp's quantization presets as mixq plans
# (model/preset.h, issue 14) against the pinned llama-quantize itself.
#
#   MIXQ=build/mixq LLAMA_BIN=DIR SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf \
#       tests/interop/check-presets.sh            (tests/interop/run.sh calls it)
#   tests/interop/check-presets.sh --write-expected
#
# Check (the default): for each model (the bundled tinyllm; SmolLM2-135M when fetched) and
# each preset (Q2_K .. Q6_K, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, IQ4_XS; F16, BF16 and
# F32 on tinyllm only, whose files are small; SmolLM2: Q3_K_M, Q4_K_M, Q5_K_M, Q6_K and
# Q4_K_M with an imatrix unless FULL=1):
#  1. llama-quantize MODEL OUT PRESET (--allow-requantize: SmolLM2 ships in q4_1) writes
#     llama.cpp's file; mixq quantize MODEL --plan PRESET writes mixq's (preset:NAME where
#     the name is also a format's, the bare name otherwise, so both spellings are used);
#  2. every tensor has the same type in both files (norms included) and general.file_type
#     is the same;
#  3. the fallback count mixq computes equals the "N of M tensor(s) required fallback
#     quantization" that llama-quantize prints (0 when it prints none);
#  4. every tensor's bytes are the same, once every quantizer is ported to mixq
#     (core/dtype_quant.c has no NOT_YET left); until then this step says "skipped:
#     quantizers not ported" and passes nothing.
# Then the same with an importance matrix (llama-imatrix's, given to both tools as
# --imatrix): the presets whose rules ask whether one is given (Q4_0, Q5_0, IQ4_NL, IQ4_XS
# on tinyllm; Q4_0, Q5_0, IQ4_XS on SmolLM2, whose 30 blocks make those rules fire) and
# Q4_K_M, so the importance-weighted quantizers are compared too.
# A table per preset and model says which steps held.
#
# --write-expected regenerates the unit test's tables, tests/golden/presets/*.txt
# (tests/unit/test_preset.c), from `llama-quantize --dry-run [--imatrix F] MODEL PRESET`:
# tinyllm, SmolLM2 and three synthetic llama shapes with rows in multiples of 256 (GQA 4 with
# 16 blocks, no GQA with 16 blocks, GQA 4 with 80 blocks: llama.cpp's "70B"), each preset
# without an imatrix and the presets whose rules read one (Q4_0, Q5_0, IQ4_NL, IQ4_XS) with
# an imatrix that llama-imatrix computes on tinyllm (the rules only ask whether one is
# given). The synthetic models are written by tests/interop/preset-tool.c from the table's
# own "model synth" line, as the unit test writes them.
#
# Exit status: 0 all passed, 1 a check failed, 77 when llama.cpp's tools are missing.
set -u
cd "$(dirname "$0")/../.." || exit 1
MIXQ=${MIXQ:-build/mixq}
BUILD=${BUILD:-build}
LLAMA_BIN=${LLAMA_BIN:-$(scripts/build-llama-cpp 2>/dev/null | tail -1)}
SMOL=${SMOL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
TINY=examples/tinyllm/tinyllm.gguf
GOLDEN=tests/golden/presets
LLAMA_COMMIT=0c1e57098bba
work=$BUILD/interop/presets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL $*"; fail=1; }

PRESETS="Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 IQ4_NL IQ4_XS"
FLOAT_PRESETS="F16 BF16 F32"
IMATRIX_PRESETS="Q4_0 Q5_0 IQ4_NL IQ4_XS" # the presets whose rules ask whether an imatrix is given
# SmolLM2 (135 M weights: each tool takes 10-100 s per file here) runs the presets that
# tune validates as baselines, every preset only with FULL=1 (the closing notes' run); its
# tensor types for every preset are also the unit test's golden table (test_preset.c)
SMOL_PRESETS=${SMOL_PRESETS:-"Q3_K_M Q4_K_M Q5_K_M Q6_K"}

if [ ! -x "$LLAMA_BIN/llama-quantize" ]; then
    echo "check-presets: skipped: no llama-quantize in '$LLAMA_BIN' (scripts/build-llama-cpp)"
    exit 77
fi
mkdir -p "$work"

# preset-tool, built against mixq's library (as check-quant.sh builds dequant-mixq)
make --no-print-directory BUILD="$BUILD" "$BUILD/libmixq.a" >"$work/make.log" 2>&1 ||
    { echo "check-presets: make $BUILD/libmixq.a failed; see '$work/make.log'" >&2; exit 1; }
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -I. tests/interop/preset-tool.c "$BUILD/libmixq.a" \
    $(cat "$BUILD/link-flags") -o "$work/preset-tool" ||
    { echo "check-presets: cannot build tests/interop/preset-tool.c" >&2; exit 1; }
TOOL=$work/preset-tool

# ---- --write-expected: the unit test's tables from llama-quantize --dry-run -------------------

# dry_types MODEL PRESET [IMATRIX]: "NAME TYPE" of every tensor, then "fallback N M"
dry_types() {
    local args=(--dry-run)
    [ -n "${3:-}" ] && args+=(--imatrix "$3")
    "$LLAMA_BIN/llama-quantize" "${args[@]}" "$1" "$2" >"$tmp/dry.log" 2>&1 || return 1
    awk '
        /^\[ *[0-9]+\/ *[0-9]+\] / {
            line = $0; sub(/^\[ *[0-9]+\/ */, "", line); m = line; sub(/\].*/, "", m); n = m + 0
            sub(/^[0-9]+\] +/, "", line); split(line, f, " ")
            # a quantized tensor ends in "(TYPE)", a copied one has only "type = TYPE"
            if (match($0, /\([a-zA-Z0-9_]+\)$/)) t = substr($0, RSTART + 1, RLENGTH - 2)
            else { match($0, /type = *[a-zA-Z0-9_]+/); t = substr($0, RSTART, RLENGTH); sub(/type = */, "", t) }
            print f[1], tolower(t)
        }
        /required fallback quantization/ { for (i = 1; i <= NF; i++) if ($i == "of") fb = $(i - 1) }
        END { print "fallback", fb + 0, n }' "$tmp/dry.log"
}

# table_lines PRESET IMATRIX_FLAG < dry_types output: the table's lines for one preset
table_lines() {
    awk -v p="$1" -v im="$2" '
        $1 == "fallback" { fb = $2 " " $3; next }
        {
            name = $1; block = -1; role = name; sub(/\.weight$/, "", role)
            if (name ~ /^blk\.[0-9]+\./) { split(name, a, "."); block = a[2] + 0; role = a[3] }
            type[role, block] = $2; if (block + 1 > nb[role]) nb[role] = block + 1
            seen[role] = 1
        }
        END {
            n = split("token_embd attn_q attn_k attn_v attn_output ffn_gate ffn_up ffn_down output", roles, " ")
            for (r = 1; r <= n; r++) {
                ro = roles[r]
                if (!(ro in seen)) continue
                if (ro == "token_embd" || ro == "output") { print p, im, ro, type[ro, -1]; continue }
                out = ""; prev = ""; cnt = 0
                for (b = 0; b < nb[ro]; b++) {
                    t = type[ro, b]
                    if (t == prev) { cnt++; continue }
                    if (cnt) out = out " " prev (cnt > 1 ? "*" cnt : "")
                    prev = t; cnt = 1
                }
                out = out " " prev (cnt > 1 ? "*" cnt : "")
                print p, im, ro out
            }
            print p, im, "fallback", fb
        }'
}

write_table() { # NAME MODEL_LINE DESCRIPTION IMATRIX [MODEL_FILE]
    local name=$1 model_line=$2 desc=$3 imatrix=$4 model=${5:-}
    local out=$GOLDEN/$name.txt
    {
        echo "# mixq.fixture presets/1"
        echo "# llama-quantize's type for every quantizable tensor of $desc,"
        echo "# per preset: llama-quantize --dry-run [--imatrix F] MODEL PRESET, llama.cpp $LLAMA_COMMIT"
        echo "# (llama-cpp-python 0.3.36, scripts/build-llama-cpp). Read by tests/unit/test_preset.c;"
        echo "# regenerate with: tests/interop/check-presets.sh --write-expected"
        echo "#"
        echo "# model file PATH | model synth SHAPE (written as tests/interop/preset-tool.c writes it)"
        echo "# PRESET IMATRIX ROLE TYPES: IMATRIX is - (none) or imatrix (--imatrix given);"
        echo "#   TYPES one per block in block order (TYPE*N: N blocks in a row), one for"
        echo "#   token_embd and output; PRESET IMATRIX fallback N M: llama-quantize's \"N of M"
        echo "#   tensor(s) required fallback quantization\" (0 where it prints none)"
        echo "$model_line"
    } >"$tmp/table.txt"
    if [ -z "$model" ]; then
        model=$tmp/$name.gguf
        "$TOOL" synth "$tmp/table.txt" "$model" || { bad "$name: cannot write the synthetic model"; return; }
    fi
    local p
    for p in $PRESETS $FLOAT_PRESETS; do
        dry_types "$model" "$p" >"$tmp/types" || { bad "$name $p: llama-quantize --dry-run failed"; return; }
        table_lines "$p" - <"$tmp/types" >>"$tmp/table.txt"
    done
    for p in $IMATRIX_PRESETS; do
        dry_types "$model" "$p" "$imatrix" >"$tmp/types" || { bad "$name $p: llama-quantize --dry-run --imatrix failed"; return; }
        table_lines "$p" imatrix <"$tmp/types" >>"$tmp/table.txt"
    done
    mkdir -p "$GOLDEN"
    mv "$tmp/table.txt" "$out"
    echo "wrote $out ($(grep -vc '^#' "$out") lines)"
}

if [ "${1:-}" = --write-expected ]; then
    imatrix=$tmp/tiny.imatrix.gguf
    "$LLAMA_BIN/llama-imatrix" -m "$TINY" -f examples/data/kjv-eval.txt -c 128 --chunks 2 -o "$imatrix" \
        >"$tmp/imatrix.log" 2>&1 || { echo "check-presets: llama-imatrix failed: $(tail -1 "$tmp/imatrix.log")" >&2; exit 1; }
    write_table tinyllm "model file $TINY" "the bundled tinyllm (192-wide rows, ffn_down 512; 6 blocks, GQA 3, untied)" \
        "$imatrix" "$TINY"
    write_table synth-gqa4 "model synth n_vocab=320 n_ctx=256 n_embd=256 n_layer=16 n_ff=768 n_head=8 n_head_kv=2" \
        "a synthetic llama (rows multiples of 256; 16 blocks, GQA 4, untied)" "$imatrix"
    write_table synth-mha "model synth n_vocab=320 n_ctx=256 n_embd=256 n_layer=16 n_ff=512 n_head=4 n_head_kv=4" \
        "a synthetic llama (rows multiples of 256; 16 blocks, no GQA, untied)" "$imatrix"
    write_table synth-70b "model synth n_vocab=320 n_ctx=256 n_embd=256 n_layer=80 n_ff=256 n_head=8 n_head_kv=2" \
        "a synthetic llama typed 70B by llama.cpp (80 blocks with GQA; rows multiples of 256)" "$imatrix"
    if [ -f "$SMOL" ]; then
        write_table smollm2 "model file $SMOL" \
            "SmolLM2-135M-Instruct as shipped in q4_1 (576-wide rows, ffn_down 1536; 30 blocks, GQA 3, tied output)" \
            "$imatrix" "$SMOL"
    else
        echo "check-presets: no $SMOL (scripts/fetch-models smollm2): its table is left as it is"
    fi
    exit "$fail"
fi

# ---- the check: mixq quantize --plan PRESET against llama-quantize PRESET ----------------------

ported=0
n_not_yet=$(grep -c NOT_YET core/dtype_quant.c 2>/dev/null)
[ "${n_not_yet:-1}" = 0 ] && ported=1
if [ "$ported" = 1 ]; then
    echo "bytes: compared (every quantizer is ported: core/dtype_quant.c has no NOT_YET)"
else
    echo "bytes: skipped: quantizers not ported (core/dtype_quant.c: ${n_not_yet:-?} NOT_YET)"
fi

printf '%-15s %-8s %9s %10s %12s %-34s %s\n' model preset tensors fallback file_type bytes types
check_model() { # LABEL MODEL IMATRIX|- PRESETS...
    local label=$1 model=$2 im=$3
    shift 3
    local p lq_im=() mq_im=() tool_im=
    if [ "$im" != - ]; then
        lq_im=(--imatrix "$im") mq_im=(--imatrix "$im") tool_im=imatrix
    fi
    for p; do
        local arg=$p lq=$tmp/llama.gguf mq=$tmp/mixq.gguf
        case $p in *_S | *_M | *_L) ;; *) arg=preset:$p ;; esac
        rm -f "$lq" "$mq"
        if ! "$LLAMA_BIN/llama-quantize" --allow-requantize "${lq_im[@]}" "$model" "$lq" "$p" 2 >"$tmp/lq.log" 2>&1; then
            bad "$label $p: llama-quantize failed: $(tail -1 "$tmp/lq.log")"
            continue
        fi
        if ! "$MIXQ" -q quantize "$model" --plan "$arg" "${mq_im[@]}" -o "$mq" >"$tmp/mq.log" 2>&1; then
            bad "$label $p: mixq quantize --plan $arg failed: $(tail -1 "$tmp/mq.log")"
            continue
        fi
        local fb_l fb_m
        fb_l=$(awk '/required fallback quantization/ { for (i = 1; i <= NF; i++) if ($i == "of") print $(i - 1) "/" $(i + 1) }' "$tmp/lq.log")
        [ -n "$fb_l" ] || fb_l=0/$(awk '/^\[ *[0-9]+\/ *[0-9]+\] /{ s = $0; sub(/^\[ *[0-9]+\/ */, "", s); sub(/\].*/, "", s); n = s } END { print n + 0 }' "$tmp/lq.log")
        fb_m=$("$TOOL" plan "$model" "$p" $tool_im | awk '$1 == "fallback" { print $2 "/" $4 }')
        local types_ok=ok bytes_ok fb_ok=ok ft
        "$TOOL" cmp "$mq" "$lq" >"$tmp/types.txt" || types_ok=FAIL
        ft=$(awk '$1 == "file_type" { print $2 "/" $3 }' "$tmp/types.txt")
        [ "$fb_l" = "$fb_m" ] || fb_ok=FAIL
        if [ "$ported" = 1 ]; then
            if "$TOOL" cmp "$mq" "$lq" bytes >"$tmp/bytes.txt"; then
                bytes_ok=identical
            else
                bytes_ok="FAIL $(grep -c 'DIFFERENT' "$tmp/bytes.txt") differ"
            fi
        else
            bytes_ok="skipped: quantizers not ported"
        fi
        printf '%-15s %-8s %9s %10s %12s %-34s %s\n' "$label" "$p" "$(grep -c '^tensor ' "$tmp/types.txt")" \
            "$fb_m $fb_ok" "$ft" "$bytes_ok" "$types_ok"
        if [ "$types_ok" != ok ]; then
            bad "$label $p: tensor types differ from llama-quantize's (mixq, llama.cpp):"
            grep DIFFERENT "$tmp/types.txt" | head -5
        fi
        [ "$fb_ok" = ok ] || bad "$label $p: fallback count $fb_m, llama-quantize reports $fb_l"
        case $bytes_ok in FAIL*)
            bad "$label $p: tensor bytes differ from llama-quantize's:"
            grep DIFFERENT "$tmp/bytes.txt" | head -5 ;;
        esac
    done
    rm -f "$tmp/llama.gguf" "$tmp/mixq.gguf"
}

# imatrix MODEL OUT: llama-imatrix's importance matrix of MODEL (two chunks of 128 tokens)
imatrix() {
    "$LLAMA_BIN/llama-imatrix" -m "$1" -f examples/data/kjv-eval.txt -c 128 --chunks 2 -o "$2" \
        >"$tmp/imatrix.log" 2>&1 || { bad "llama-imatrix of $1 failed: $(tail -1 "$tmp/imatrix.log")"; return 1; }
}
# shellcheck disable=SC2086
check_model tinyllm "$TINY" - $PRESETS $FLOAT_PRESETS
# with an imatrix: the presets whose rules ask for one (SmolLM2's 30 blocks make them fire)
# and one K-quant, quantized with importance weights by both tools
# shellcheck disable=SC2086
imatrix "$TINY" "$tmp/tiny.imatrix.gguf" && check_model tinyllm+imatrix "$TINY" "$tmp/tiny.imatrix.gguf" $IMATRIX_PRESETS Q4_K_M
if [ -f "$SMOL" ]; then
    # shellcheck disable=SC2086
    if [ "${FULL:-0}" = 1 ]; then
        check_model smollm2 "$SMOL" - $PRESETS
        imatrix "$SMOL" "$tmp/smol.imatrix.gguf" &&
            check_model smollm2+imatrix "$SMOL" "$tmp/smol.imatrix.gguf" Q4_0 Q5_0 IQ4_XS Q4_K_M
    else
        check_model smollm2 "$SMOL" - $SMOL_PRESETS
        imatrix "$SMOL" "$tmp/smol.imatrix.gguf" &&
            check_model smollm2+imatrix "$SMOL" "$tmp/smol.imatrix.gguf" Q4_K_M
    fi
else
    echo "smollm2: skipped: no $SMOL (scripts/fetch-models smollm2)"
fi

[ "$fail" -eq 0 ] && echo "check-presets: all passed"
exit "$fail"
