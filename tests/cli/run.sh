#!/bin/bash
# tests/cli/run.sh - the mixq command line: exit codes, one-line errors, outputs.
# Usage: MIXQ=build/mixq tests/cli/run.sh     (from the repository root)
set -u
MIXQ=${MIXQ:-build/mixq}
TINY=examples/tinyllm/tinyllm.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# expect NAME WANT_STATUS CMD... : runs CMD, checks its exit status; on a failure
# status other than 0 it also checks that stderr is exactly one "mixq: error: " line.
expect() {
    local name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    local ok=1
    [ "$got" -eq "$want" ] || ok=0
    if [ "$want" -ne 0 ] && [ "$ok" -eq 1 ]; then
        [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q '^mixq: error: ' "$tmp/err" || ok=0
    fi
    if [ "$ok" -eq 1 ]; then
        pass=$((pass + 1))
        echo "ok   $name"
    else
        fail=$((fail + 1))
        echo "FAIL $name (exit $got, want $want)"
        sed 's/^/     stderr: /' "$tmp/err" | head -5
    fi
}

# grep_out NAME PATTERN: the last command's stdout matches PATTERN
grep_out() {
    if grep -Eq "$2" "$tmp/out"; then
        pass=$((pass + 1))
        echo "ok   $1"
    else
        fail=$((fail + 1))
        echo "FAIL $1: stdout lacks /$2/"
        head -20 "$tmp/out" | sed 's/^/     stdout: /'
    fi
}

expect "version" 0 "$MIXQ" --version
grep_out "version text" '^mixq [0-9]+\.[0-9]+\.[0-9]+$'
expect "help" 0 "$MIXQ" --help
grep_out "help lists eval" '^  eval '
for c in info eval backends; do
    expect "$c --help" 0 "$MIXQ" "$c" --help
    grep_out "$c --help usage" "^usage: mixq $c"
done
expect "no command" 2 "$MIXQ"
expect "unknown command" 2 "$MIXQ" frobnicate
expect "unknown global option" 2 "$MIXQ" --frobnicate
expect "info without model" 2 "$MIXQ" info
expect "info unknown option" 2 "$MIXQ" info --frob "$TINY"

expect "backends" 0 "$MIXQ" backends
grep_out "backends lists ref" '^ref +usable'

expect "info tiny" 0 "$MIXQ" info "$TINY"
grep_out "info layer count" '^quantizable layers \(44\):'
grep_out "info names a layer" 'blk\.5\.ffn_down\.weight +ffn_down +5 +512 x 192 +f32'
grep_out "info q4_0 size" '^  q4_0 +4\.50 bits/weight'
expect "info missing file" 1 "$MIXQ" info "$tmp/none.gguf"
printf 'not a gguf file at all' >"$tmp/junk.gguf"
expect "info junk file" 1 "$MIXQ" info "$tmp/junk.gguf"
expect "info directory" 1 "$MIXQ" info "$tmp"

expect "eval f32" 0 "$MIXQ" eval "$TINY" --chunks 2
grep_out "eval prints ppl" '^ppl +[0-9]+\.[0-9]+ \+/- '
expect "eval q4_0 with kl" 0 "$MIXQ" eval "$TINY" --chunks 2 --plan q4_0 --threads 1
grep_out "eval prints kl" '^kl +mean [0-9.e-]+ \+/- '
grep_out "eval prints same top" '^same top +[0-9.]+%'
cat >"$tmp/plan.yaml" <<'YAML'
mixq_schema: plan/1
default: q4_0
layers:
  output.weight: q8_0
YAML
expect "eval plan file" 0 "$MIXQ" -q eval "$TINY" --chunks 2 --plan "$tmp/plan.yaml" --text examples/data/austen-eval.txt
grep_out "eval plan label" '^plan +mixed \('
printf 'mixq_schema: plan/1\ndefault: q4_0\nlayers:\n  blk.99.attn_q.weight: f16\n' >"$tmp/bad-plan.yaml"
expect "eval plan with unknown layer" 1 "$MIXQ" eval "$TINY" --plan "$tmp/bad-plan.yaml"
printf 'mixq_schema: plan/1\ndefault: [q4_0\n' >"$tmp/broken.yaml"
expect "eval broken yaml" 1 "$MIXQ" eval "$TINY" --plan "$tmp/broken.yaml"
expect "eval unknown format" 1 "$MIXQ" eval "$TINY" --plan q3_k
expect "eval non-plan format" 1 "$MIXQ" eval "$TINY" --plan i32
: >"$tmp/empty.txt"
expect "eval empty text" 1 "$MIXQ" eval "$TINY" --text "$tmp/empty.txt"
printf 'too short' >"$tmp/short.txt"
expect "eval short text" 1 "$MIXQ" eval "$TINY" --text "$tmp/short.txt"
expect "eval missing text" 1 "$MIXQ" eval "$TINY" --text "$tmp/none.txt"
expect "eval unknown backend" 1 "$MIXQ" eval "$TINY" --backend warp
expect "eval threads 0" 2 "$MIXQ" eval "$TINY" --threads 0
expect "eval threads junk" 2 "$MIXQ" eval "$TINY" --threads 2x
expect "eval ctx too small" 2 "$MIXQ" eval "$TINY" --ctx 2
expect "eval two models" 2 "$MIXQ" eval "$TINY" "$TINY"

echo "cli tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
