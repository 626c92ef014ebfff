#!/bin/bash
# tests/interop/check-memory.sh - the memory model against measured peak RSS on models of
# real size: SmolLM2-135M (uniform f32, f16, q8_0, q4_0) and the
# synthetic Llama-3.2-1B shape (mixq synth: f16, q8_0, q4_0). `mixq memory --max-error 5`
# runs each plan's decode:512 workload in a separate process and fails when the model
# (weights + KV cache + scratch + measured runtime overhead) is more than 5% off its peak
# RSS. The synthetic file (2.8 GiB) is written once under .cache/interop.
#
#   MIXQ=build/mixq SMOL=models/SmolLM2-135M-Instruct.Q4_1.gguf tests/interop/check-memory.sh
set -u
cd "$(dirname "$0")/../.." || exit 1
MIXQ=${MIXQ:-build/mixq}
SMOL=${SMOL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
cache=.cache/interop
mkdir -p "$cache"
fail=0
check() { # MODEL PLAN
    local out
    if out=$("$MIXQ" -q memory "$1" --plan "$2" --max-error 5 2>&1); then
        echo "ok   $(basename "$1") $2: $(echo "$out" | sed -n 's/^ *peak RSS *//p')"
    else
        echo "FAIL $(basename "$1") $2"
        echo "$out" | sed 's/^/     /' | tail -8
        fail=1
    fi
}
if [ -f "$SMOL" ]; then
    for p in f32 f16 q8_0 q4_0; do check "$SMOL" "$p"; done
else
    echo "skip SmolLM2: $SMOL is missing (scripts/fetch-models smollm2)"
fi
syn=$cache/synth-1B-f16.gguf
if [ ! -f "$syn" ]; then
    "$MIXQ" -q synth --arch llama --params 1B --type f16 -o "$syn" || { echo "FAIL mixq synth 1B"; exit 1; }
fi
for p in f16 q8_0 q4_0; do check "$syn" "$p"; done
exit $fail
