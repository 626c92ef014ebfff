#!/usr/bin/env bash
# tests/interop/check-quant.sh - mixq's dequantization and quantization against
# llama.cpp's: dequantization on every tensor of the models llama-quantize writes, and
# quantization on every weight tensor of tinyllm and thousands of synthetic rows (the
# interop tier of the checks the offline fixtures tests/golden/quant-src.gguf and
# quant-ref.gguf make on a few rows).
#
#   tests/interop/check-quant.sh
#
# 1. tests/interop/make-quant-fixture.sh --models-only: llama.cpp's tools, dequant-ggml
#    and the quantized tinyllm models in build/interop/models/ (presets Q4_1 .. Q6_K and
#    --pure Q2_K; 32-block fallbacks and f32 norms included);
# 2. make build/libmixq.a, then tests/interop/dequant-mixq.c against it;
# 3. for each model: dequant-ggml writes llama.cpp's floats of every tensor, dequant-mixq
#    compares mixq's with them bit for bit (any NaN equals any NaN) and prints a line per
#    tensor into build/interop/compare/MODEL.txt;
# 4. prints per type: models, tensors, elements, the largest absolute difference and
#    whether all were equal;
# 5. quantization: tests/interop/make-quant-ref-fixture.sh --tool-only builds quant-ggml;
#    quant-ggml -F compares core/fp16.h's f32<->f16 conversions with ggml's over every
#    input (NaN payloads apart, which mixq's quantizers handle as ggml does);
# 6. quant-ggml quantizes every f32 tensor of examples/tinyllm/tinyllm.gguf (rows a
#    multiple of 32 wide), 4096 synthetic rows of 512 and the 5 adversarial rows with
#    ggml_quantize_chunk into all 13 types, without weights and with two importance
#    vectors (one with zeros), plus pseudo-random iq4_nl/iq4_xs/q8_K blocks and ggml's
#    dequantization of them and of the quantized rows, into build/interop/quant-live.gguf;
# 7. make build/test-unit; its test quant/ggml-live (MIXQ_QUANT_REF=that file) quantizes
#    the same rows with mixq and prints per type the rows compared and byte-identical
#    for each weighting, and the dequantized elements compared.
#
# Exit status: 0 all equal, 1 a difference or a failure (one line on stderr).
set -euo pipefail

prog=check-quant
die() { echo "$prog: $*" >&2; exit 1; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
work=build/interop
cmpdir=$work/compare

tests/interop/make-quant-fixture.sh --models-only || die "cannot build the tools or the models"
make --no-print-directory build/libmixq.a >"$work/make.log" 2>&1 ||
    die "make build/libmixq.a failed; see '$work/make.log'"
command -v pkg-config >/dev/null || die "pkg-config not found; run scripts/install-deps"
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -ffp-contract=off -Wall -Wextra -I. \
    tests/interop/dequant-mixq.c build/libmixq.a \
    $(cat build/link-flags) \
    -o "$work/dequant-mixq" || die "cannot build tests/interop/dequant-mixq.c"

rm -rf "$cmpdir"
mkdir -p "$cmpdir"
status=0
n_models=0
for model in "$work"/models/tinyllm-*.gguf; do
    name=$(basename "$model" .gguf)
    ggml_out=$cmpdir/$name.ggml.gguf
    "$work/dequant-ggml" -o "$ggml_out" "$model" 2>"$cmpdir/$name.ggml.log" ||
        die "dequant-ggml failed on '$model': $(tail -1 "$cmpdir/$name.ggml.log")"
    rc=0
    "$work/dequant-mixq" -c "$ggml_out" "$model" >"$cmpdir/$name.txt" 2>"$cmpdir/$name.mixq.log" || rc=$?
    if [ "$rc" -ne 0 ] && ! grep -q DIFFERENT "$cmpdir/$name.txt"; then
        die "dequant-mixq failed on '$model': $(tail -1 "$cmpdir/$name.mixq.log")"
    fi
    [ "$rc" -eq 0 ] || status=1
    # every tensor must have been compared: mixq reads all of these types
    want=$(grep -c ' tensors$' "$cmpdir/$name.ggml.log" || true)
    n_ggml=$(sed -n 's/.*: \([0-9]*\) of \([0-9]*\) tensors$/\2/p' "$cmpdir/$name.ggml.log")
    n_mixq=$(grep -c '^tensor ' "$cmpdir/$name.txt" || true)
    if [ "$want" != 1 ] || [ "$n_ggml" != "$n_mixq" ]; then
        echo "$prog: $name: llama.cpp has ${n_ggml:-?} tensors, mixq compared $n_mixq" >&2
        status=1
    fi
    rm -f "$ggml_out"
    n_models=$((n_models + 1))
done
[ "$n_models" -gt 0 ] || die "no models in '$work/models'"

echo "llama.cpp's dequantization vs mixq's, $n_models models from llama-quantize:"
cat "$cmpdir"/*.txt | awk '
    $1 == "tensor" {
        t = $2; n[t]++; el[t] += $4
        if (!(t in mx)) mx[t] = 0
        if ($5 == "inf") mx[t] = "inf"
        else if (mx[t] != "inf" && $5 + 0 > mx[t] + 0) mx[t] = $5
        if ($6 != "equal") bad[t]++
    }
    END {
        printf "%-6s %8s %12s %14s  %s\n", "type", "tensors", "elements", "max |diff|", "bit-exact"
        for (t in n)
            printf "%-6s %8d %12d %14s  %s\n", t, n[t], el[t], mx[t], bad[t] ? "NO (" bad[t] " differ)" : "yes"
    }' | { read -r head; echo "$head"; sort; }
if [ "$status" -ne 0 ]; then
    echo "$prog: dequantization differs; per-tensor lines in $cmpdir/" >&2
    grep -h DIFFERENT "$cmpdir"/*.txt | head -5 >&2 || true
fi

# 5. quantization: the tool, and the f16 conversion every quantizer rounds its scales with
tests/interop/make-quant-ref-fixture.sh --tool-only || die "cannot build quant-ggml"
echo
echo "core/fp16.h's conversions vs ggml's, every input:"
"$work/quant-ggml" -F || { echo "$prog: core/fp16.h rounds differently from ggml" >&2; status=1; }

# 6. ggml's bytes
live=$work/quant-live.gguf
"$work/quant-ggml" -o "$live" -s 4096 -a -r 64 -D -k "mixq.fixture=quant-ref/1" \
    examples/tinyllm/tinyllm.gguf 2>"$work/quant-live.log" ||
    die "quant-ggml failed: $(tail -1 "$work/quant-live.log")"

# 7. mixq's bytes, compared
make --no-print-directory build/test-unit >"$work/make-test-unit.log" 2>&1 ||
    die "make build/test-unit failed; see '$work/make-test-unit.log'"
echo
echo "llama.cpp's quantization vs mixq's ($(grep -o 'quantized [0-9]* rows' "$work/quant-live.log" | cut -d' ' -f2) rows: tinyllm's tensors, synthetic and adversarial rows):"
rc=0
MIXQ_QUANT_REF=$live build/test-unit quant/ggml-live >"$work/quant-live.txt" 2>&1 || rc=$?
grep -v '^unit tests:' "$work/quant-live.txt" || true
grep -q '^ok   quant/ggml-live' "$work/quant-live.txt" || rc=1
rm -f "$live" # 130 MB
if [ "$rc" -ne 0 ]; then
    echo "$prog: quantization differs from llama.cpp's" >&2
    status=1
fi
[ "$status" -eq 0 ] || exit 1
echo "$prog: all equal"
