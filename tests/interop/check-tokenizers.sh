#!/bin/bash
# tests/interop/check-tokenizers.sh - mixq's tokenizer on every vocabulary llama.cpp tests.
#
#   tests/interop/check-tokenizers.sh [MODELS_DIR]
#
# For each MODELS_DIR/ggml-vocab-*.gguf that has .inp and .out beside it (llama.cpp's
# tokenizer test cases, see tests/test-tokenizer-0.cpp there), tokenizes every case with
# add_special = false and compares the ids exactly. MODELS_DIR defaults to the models/
# folder of the llama.cpp tree scripts/build-llama-cpp unpacks
# (.cache/llama.cpp/*/src/vendor/llama.cpp/models).
#
# Prints one line per vocabulary: supported (cases passed / failed) or refused (mixq's
# one-line reason; kinds mixq does not implement, such as bert or t5, are refusals, not
# failures). Exit status: 0 when every supported vocabulary passes every case, 1 when
# one fails, 2 on a build or usage error, 77 (skip) when there is no models folder.
#
# Builds tests/interop/tokenize-vocab.c into $BUILD/interop/ (BUILD defaults to build)
# against $BUILD/libmixq.a, running make for the library when it is missing.
set -u

prog=check-tokenizers
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-build}
cc=${CC:-cc}
cd "$repo" || exit 2

if [ $# -gt 1 ]; then
    echo "usage: $0 [MODELS_DIR]" >&2
    exit 2
fi
models=${1:-}
if [ -z "$models" ]; then
    for d in .cache/llama.cpp/*/src/vendor/llama.cpp/models; do
        [ -d "$d" ] && models=$d
    done
fi
if [ -z "$models" ] || [ ! -d "$models" ]; then
    echo "$prog: skipped: no llama.cpp models folder (give one, or run scripts/build-llama-cpp)" >&2
    exit 77
fi

if [ ! -f "$build/libmixq.a" ]; then
    make --no-print-directory -s BUILD="$build" "$build/libmixq.a" >&2 || { echo "$prog: cannot build $build/libmixq.a" >&2; exit 2; }
fi
driver=$build/interop/tokenize-vocab
mkdir -p "$build/interop"
if [ ! -x "$driver" ] || [ "$driver" -ot tests/interop/tokenize-vocab.c ] || [ "$driver" -ot "$build/libmixq.a" ]; then
    # shellcheck disable=SC2046 # several words
    "$cc" -O2 -g -std=c11 -D_GNU_SOURCE -I. tests/interop/tokenize-vocab.c "$build/libmixq.a" \
        $(cat "$build/link-flags") -o "$driver" ||
        { echo "$prog: cannot build $driver" >&2; exit 2; }
fi

n_ok=0 n_fail=0 n_refused=0
printf '%-34s %-10s %s\n' vocabulary status result
for vocab in "$models"/ggml-vocab-*.gguf; do
    [ -f "$vocab.inp" ] && [ -f "$vocab.out" ] || continue
    name=$(basename "$vocab" .gguf)
    err=$(mktemp)
    out=$("$driver" "$vocab" 2>"$err")
    rc=$?
    case $rc in
    0)
        printf '%-34s %-10s %s\n' "$name" supported "$(echo "$out" | sed -n 's/^cases: //p')"
        n_ok=$((n_ok + 1)) ;;
    1)
        printf '%-34s %-10s %s\n' "$name" FAILED "$(echo "$out" | sed -n 's/^cases: //p')"
        echo "$out" | grep -A2 '^FAIL' | head -12 | sed 's/^/    /'
        n_fail=$((n_fail + 1)) ;;
    3)
        printf '%-34s %-10s %s\n' "$name" refused "$(sed 's/^mixq: error: //; s/^[^:]*\.gguf'"'"': //' "$err" | head -1)"
        n_refused=$((n_refused + 1)) ;;
    *)
        printf '%-34s %-10s %s\n' "$name" ERROR "$(head -1 "$err")"
        n_fail=$((n_fail + 1)) ;;
    esac
    rm -f "$err"
done
echo "$prog: $n_ok supported and passing, $n_fail failing, $n_refused refused ($models)"
[ "$n_fail" -eq 0 ]
