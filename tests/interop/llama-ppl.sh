#!/bin/bash
# tests/interop/llama-ppl.sh - runs llama-perplexity with --kl-divergence against saved
# log-probabilities and keeps its output, for run.sh and check-export.sh.
#
#   tests/interop/llama-ppl.sh LLAMA_BIN MODEL TEXT CTX CHUNKS BASE.logits OUT.txt
#
# llama-perplexity (0.3.36) sometimes exits 0 with the end of its stdout missing (the last
# chunks and the summary; 2 runs of 6 on a loaded 2-core machine), so it is run again, up
# to 3 times, until the summary ("Mean    KLD") is there; each retry is said on stdout.
# Exit status: 0 with the whole output in OUT.txt; 1 when it failed or never finished
# (OUT.txt holds the last run's output).
set -u
[ $# -eq 7 ] || { echo "usage: $0 LLAMA_BIN MODEL TEXT CTX CHUNKS BASE.logits OUT.txt" >&2; exit 2; }
bin=$1 model=$2 text=$3 ctx=$4 chunks=$5 base=$6 out=$7
for try in 1 2 3; do
    "$bin/llama-perplexity" -m "$model" -f "$text" -c "$ctx" --chunks "$chunks" \
        --kl-divergence-base "$base" --kl-divergence >"$out" 2>&1 || exit 1
    grep -q '^Mean    KLD' "$out" && exit 0
    echo "note $(basename "$model"): llama-perplexity's output was cut short (run $try), running it again"
done
exit 1
