#!/usr/bin/env bash
# tests/interop/make-quant-ref-fixture.sh - ggml's quantization of real, random and
# adversarial rows, with and without importance weights: the fixture of mixq's quantizers.
#
#   tests/interop/make-quant-ref-fixture.sh              write tests/golden/quant-ref.gguf
#   tests/interop/make-quant-ref-fixture.sh OUT.gguf     write OUT.gguf instead
#   tests/interop/make-quant-ref-fixture.sh --tool-only  only build build/interop/quant-ggml
#
# 1. builds llama.cpp (scripts/build-llama-cpp; cached) and, against the vendored ggml
#    (headers and libggml-base.a, where ggml-quants.c and ggml_quantize_chunk live),
#    tests/interop/quant-ggml.c into build/interop/quant-ggml;
# 2. writes the fixture with it: 8 rows of 512 - row 0 of examples/tinyllm/tinyllm.gguf's
#    blk.0.ffn_down.weight (set "tinyllm"), 2 synthetic rows (set "random") and the 5
#    adversarial rows (set "adversarial") - each with its importance vectors (S.imp and
#    S.imp0, which has zeros) and ggml's bytes in all 13 types without weights, with
#    S.imp and with S.imp0; plus one row of pseudo-random iq4_nl, iq4_xs and q8_K blocks
#    with ggml's dequantization. The key mixq.fixture (quant-ref/1) is the version header
#    tests/unit/test_quant.c checks; tests/golden/README.md documents the layout.
#
# Deterministic: the same llama.cpp gives the same bytes (the data are seeded). Exit
# status 1 on any failure, with a one-line reason.
set -euo pipefail

prog=make-quant-ref-fixture
die() { echo "$prog: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
out=tests/golden/quant-ref.gguf
tool_only=0
case "${1:-}" in
--tool-only) tool_only=1 ;;
-h|--help) sed -n '2,20s/^# \{0,1\}//p' "$0"; exit 0 ;;
-*) echo "$prog: unknown option '$1'" >&2; exit 2 ;;
"") ;;
*) out=$1 ;;
esac

work=build/interop
src_model=examples/tinyllm/tinyllm.gguf
mkdir -p "$work"

# 1. the tool
bin=$(scripts/build-llama-cpp | tail -1) || die "scripts/build-llama-cpp failed"
build=$(dirname "$bin")
llama_src=$(dirname "$build")/src/vendor/llama.cpp
base_lib=$build/ggml/src/libggml-base.a
[ -f "$base_lib" ] || die "no '$base_lib': rebuild with scripts/build-llama-cpp --force"
[ -f "$llama_src/ggml/src/ggml-quants.h" ] || die "no ggml sources under '$llama_src'"
# ggml-quants.h (internal, under ggml/src) declares quantize_row_q8_K_ref; -I. for
# core/fp16.h, which quant-ggml -F compares with ggml's conversions
${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -I. -I"$llama_src/ggml/include" -I"$llama_src/ggml/src" \
    tests/interop/quant-ggml.c "$base_lib" -lstdc++ -lm -lpthread -fopenmp \
    -o "$work/quant-ggml" || die "cannot build tests/interop/quant-ggml.c"
[ "$tool_only" = 1 ] && exit 0

# 2. the fixture
[ -r "$src_model" ] || die "cannot read '$src_model'"
commit=$(sed -n 's/^#define GGML_COMMIT *"\(.*\)"/\1/p' "$build/ggml/src/ggml-version.h" 2>/dev/null || true)
ggml_version=$(sed -n 's/^#define GGML_VERSION *"\(.*\)"/\1/p' "$build/ggml/src/ggml-version.h" 2>/dev/null || true)
tmp=$work/quant-ref.gguf.tmp
"$work/quant-ggml" -o "$tmp" -n 1 -s 2 -a -r 1 \
    -k "mixq.fixture=quant-ref/1" \
    -k "mixq.fixture.generator=tests/interop/make-quant-ref-fixture.sh (tests/interop/quant-ggml.c)" \
    -k "mixq.fixture.llama_cpp=llama.cpp from llama-cpp-python 0.3.36 (commit 0c1e57098bba, MIT licence); ggml ${ggml_version:-unknown} (${commit:-unknown}), libggml-base.a built by scripts/build-llama-cpp on $(uname -m)" \
    -k "mixq.fixture.source=tinyllm: $src_model blk.0.ffn_down.weight row 0; random, adversarial: quant-ggml's seeded generators" \
    "$src_model:blk.0.ffn_down.weight:tinyllm" 2>"$work/quant-ref.log" ||
    die "quant-ggml failed: $(tail -1 "$work/quant-ref.log")"
mkdir -p "$(dirname "$out")"
mv -f "$tmp" "$out"
note "wrote $out ($(wc -c <"$out") bytes)"
