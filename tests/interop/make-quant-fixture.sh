#!/usr/bin/env bash
# tests/interop/make-quant-fixture.sh - blocks written by llama.cpp's llama-quantize and
# llama.cpp's own floats for them: the fixture of mixq's source-only types.
#
#   tests/interop/make-quant-fixture.sh                 write tests/golden/quant-src.gguf
#   tests/interop/make-quant-fixture.sh OUT.gguf        write OUT.gguf instead
#   tests/interop/make-quant-fixture.sh --models-only   only build the tools and models
#
# 1. builds llama.cpp's tools (scripts/build-llama-cpp; cached) and, against the vendored
#    ggml, tests/interop/dequant-ggml.c into build/interop/;
# 2. quantizes examples/tinyllm/tinyllm.gguf (f32) with llama-quantize into
#    build/interop/models/: the presets Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q4_K_S Q5_K_S
#    Q6_K as published files mix them, plus --pure Q2_K, because the Q2_K preset stores
#    this model's only 256-wide rows (ffn_down; the others are 192 wide and fall back to
#    32-block types) as q3_K;
# 3. writes the fixture with dequant-ggml: for each of q4_1 q5_0 q5_1 q2_k q3_k q4_k q5_k
#    q6_k, rows 0..3 of a blk.N.ffn_down.weight (512 wide) as TYPE.blocks (llama-quantize's
#    bytes, the real type) and TYPE.f32 (ggml's to_float of them), and two rows of seeded
#    pseudo-random bytes as TYPE.random.blocks / TYPE.random.f32; the key mixq.fixture
#    (quant-src/1) is the version header tests/unit/test_quant_src.c checks.
#
# Deterministic: the same llama.cpp gives the same bytes (llama-quantize's chunks are
# split over threads but each row is quantized alone). Everything else stays under
# build/interop/. Exit status 1 on any failure, with a one-line reason.
set -euo pipefail

prog=make-quant-fixture
die() { echo "$prog: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
out=tests/golden/quant-src.gguf
models_only=0
case "${1:-}" in
--models-only) models_only=1 ;;
-h|--help) sed -n '2,24s/^# \{0,1\}//p' "$0"; exit 0 ;;
-*) echo "$prog: unknown option '$1'" >&2; exit 2 ;;
"") ;;
*) out=$1 ;;
esac

work=build/interop
models=$work/models
src_model=examples/tinyllm/tinyllm.gguf
[ -r "$src_model" ] || die "cannot read '$src_model'"
mkdir -p "$models"

# 1. tools
bin=$(scripts/build-llama-cpp | tail -1) || die "scripts/build-llama-cpp failed"
build=$(dirname "$bin")
llama_src=$(dirname "$build")/src/vendor/llama.cpp
base_lib=$build/ggml/src/libggml-base.a
[ -x "$bin/llama-quantize" ] || die "no llama-quantize in '$bin'"
[ -f "$base_lib" ] || die "no '$base_lib': rebuild with scripts/build-llama-cpp --force"
[ -f "$llama_src/ggml/include/gguf.h" ] || die "no ggml headers under '$llama_src'"
# ggml-base holds the type traits (ggml.c, ggml-quants.c) and the gguf API (gguf.cpp);
# it is built with -fopenmp when GGML_OPENMP is on
${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -I"$llama_src/ggml/include" \
    tests/interop/dequant-ggml.c "$base_lib" -lstdc++ -lm -lpthread -fopenmp \
    -o "$work/dequant-ggml" || die "cannot build tests/interop/dequant-ggml.c"

# 2. quantized models: name=llama-quantize arguments
runs=(
    "Q4_1=Q4_1" "Q5_0=Q5_0" "Q5_1=Q5_1" "Q2_K=Q2_K" "Q3_K_S=Q3_K_S" "Q3_K_M=Q3_K_M"
    "Q4_K_S=Q4_K_S" "Q5_K_S=Q5_K_S" "Q6_K=Q6_K" "pure-Q2_K=--pure Q2_K"
)
for r in "${runs[@]}"; do
    name=${r%%=*}
    read -r -a args <<<"${r#*=}"
    dst=$models/tinyllm-$name.gguf
    if [ "$dst" -nt "$bin/llama-quantize" ] && [ "$dst" -nt "$src_model" ]; then
        continue
    fi
    # type name last, then the thread count; options before the files
    n=${#args[@]}
    "$bin/llama-quantize" "${args[@]:0:n-1}" "$src_model" "$dst.tmp" "${args[n-1]}" 2 \
        >"$models/tinyllm-$name.log" 2>&1 ||
        die "llama-quantize ${r#*=} failed; see '$models/tinyllm-$name.log'"
    mv -f "$dst.tmp" "$dst"
done
note "quantized models in $models"
[ "$models_only" = 1 ] && exit 0

# 3. the fixture: TYPE model tensor (a different layer per type, for variety)
picks=(
    "q4_1 Q4_1 blk.0" "q5_0 Q5_0 blk.1" "q5_1 Q5_1 blk.2" "q2_k pure-Q2_K blk.3"
    "q3_k Q3_K_S blk.4" "q4_k Q4_K_S blk.5" "q5_k Q5_K_S blk.0" "q6_k Q6_K blk.1"
)
version=$(grep -m1 '^version:' "$models/tinyllm-Q4_1.log" | sed 's/^version: //' || true)
specs=()
keys=(
    -k "mixq.fixture=quant-src/1"
    -k "mixq.fixture.generator=tests/interop/make-quant-fixture.sh"
    -k "mixq.fixture.llama_cpp=llama.cpp from llama-cpp-python 0.3.36 (commit 0c1e57098bba, MIT licence); llama-quantize version ${version:-unknown}"
    -k "mixq.fixture.source=examples/tinyllm/tinyllm.gguf quantized by llama-quantize"
)
for p in "${picks[@]}"; do
    read -r type model layer <<<"$p"
    specs+=("$models/tinyllm-$model.gguf:$layer.ffn_down.weight:$type")
    keys+=(-k "$type.source=tinyllm-$model.gguf $layer.ffn_down.weight rows 0..3")
done
tmp=$work/quant-src.gguf.tmp
"$work/dequant-ggml" -o "$tmp" -n 4 -b -r 2 "${keys[@]}" "${specs[@]}" 2>"$work/dequant-ggml.log" ||
    die "dequant-ggml failed: $(tail -1 "$work/dequant-ggml.log")"
# each picked tensor must have its type (a preset that chose another would fool the test)
for p in "${picks[@]}"; do
    read -r type model layer <<<"$p"
    grep -qi ": $layer.ffn_down.weight ($type, 512 x " "$work/dequant-ggml.log" ||
        die "tinyllm-$model.gguf $layer.ffn_down.weight is not $type; see '$work/dequant-ggml.log'"
done
mkdir -p "$(dirname "$out")"
mv -f "$tmp" "$out"
note "wrote $out ($(wc -c <"$out") bytes)"
