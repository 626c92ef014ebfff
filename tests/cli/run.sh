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

# grep_out NAME PATTERN / grep_err NAME PATTERN: the last command's stdout / stderr
# matches PATTERN
grep_stream() {
    local stream=$1
    shift
    if grep -Eq "$2" "$tmp/$stream"; then
        pass=$((pass + 1))
        echo "ok   $1"
    else
        fail=$((fail + 1))
        echo "FAIL $1: std$stream lacks /$2/"
        head -20 "$tmp/$stream" | sed "s/^/     std$stream: /"
    fi
}
grep_out() { grep_stream out "$@"; }
grep_err() { grep_stream err "$@"; }

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
# cuda is always listed: usable where a GPU is, otherwise disabled with one of the reasons
# backends/cuda/cuda.h names (no plugin, no driver, no device, ...) on the line after it
grep_out "backends lists cuda" '^cuda +(usable|disabled) '
cuda_why=$(sed -n '/^cuda  *disabled/{n;p;}' "$tmp/out")
if [ -n "$cuda_why" ]; then
    if echo "$cuda_why" | grep -Eq '^ +why: (plugin not built|no CUDA driver|cuBLAS missing|cannot load plugin|plugin ABI mismatch|driver too old|no CUDA device|device unsupported|CUDA error)'; then
        pass=$((pass + 1)); echo "ok   backends says why cuda is disabled"
    else
        fail=$((fail + 1)); echo "FAIL backends: cuda disabled without a known reason: $cuda_why"
    fi
fi
MIXQ_PLUGIN_DIR="$tmp" expect "backends without the cuda plugin" 0 "$MIXQ" backends
grep_out "backends: cuda plugin not built" '^ +why: plugin not built: no libmixq-cuda\.so in MIXQ_PLUGIN_DIR='

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
expect "eval unknown format" 1 "$MIXQ" eval "$TINY" --plan q7_k
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

# profile: one-line errors for bad input; a quick profile writes profile.yaml
expect "profile bad workload" 1 "$MIXQ" profile "$TINY" --workload warp:9 --out "$tmp/prof"
expect "profile infer on llama" 1 "$MIXQ" profile "$TINY" --workload infer:1 --out "$tmp/prof"
expect "profile bad formats" 2 "$MIXQ" profile "$TINY" --formats f16,q7_k --out "$tmp/prof"
expect "profile empty formats" 2 "$MIXQ" profile "$TINY" --formats , --out "$tmp/prof"
expect "profile bad backend" 1 "$MIXQ" profile "$TINY" --backend warp --out "$tmp/prof"
expect "profile bad threads" 2 "$MIXQ" profile "$TINY" --threads 0 --out "$tmp/prof"
expect "profile bad max-seconds" 2 "$MIXQ" profile "$TINY" --max-seconds -1 --out "$tmp/prof"
for v in 0 nan 1e9 2x ''; do
    expect "tune bad max-seconds '$v'" 2 "$MIXQ" tune --max-seconds "$v"
done
expect "tune bad remote-timeout" 2 "$MIXQ" tune --remote-timeout inf
grep_err "tune bad remote-timeout names the range" '^mixq: error: --remote-timeout wants seconds in \(0, 86400\], not .inf.'
expect "profile unwritable out" 1 "$MIXQ" profile "$TINY" --out /proc/mixq-no
expect "profile quick" 0 "$MIXQ" -q profile "$TINY" --formats q4_0 --workload decode:32 --max-seconds 0.02 \
    --no-memory --cache-dir "$tmp/cache" --out "$tmp/prof"
grep_out "profile summary" '^measured +[0-9]+ distinct shape'
if grep -q '^mixq_schema: profile/1' "$tmp/prof/profile.yaml" 2>/dev/null; then
    pass=$((pass + 1)); echo "ok   profile.yaml written"
else
    fail=$((fail + 1)); echo "FAIL profile.yaml missing or without its schema line"
fi

# synth: usage errors; the test-sized preset written, loaded by info, marked synthetic
expect "synth --help" 0 "$MIXQ" synth --help
grep_out "synth --help usage" '^usage: mixq synth'
grep_out "synth --help says cost only" 'FOR COST PROFILING ONLY'
grep_out "synth --help lists 7B" '^  7B +Llama-2-7B: embedding 4096, 32 blocks'
expect "synth without params" 2 "$MIXQ" synth -o "$tmp/syn.gguf"
expect "synth unknown preset" 2 "$MIXQ" synth --params 12Q -o "$tmp/syn.gguf"
expect "synth other arch" 2 "$MIXQ" synth --arch gpt2 --params tiny -o "$tmp/syn.gguf"
grep_err "synth other arch lists the table" "architecture 'gpt2' is not supported \\(llama, qwen2, qwen3, phi3, gemma, gemma2, gemma3\\)"
expect "synth bad head dim" 2 "$MIXQ" synth --arch qwen3 --params tiny --head-dim 0 -o "$tmp/syn.gguf"
expect "synth bad stddev" 2 "$MIXQ" synth --params tiny --stddev 2 -o "$tmp/syn.gguf"
expect "synth phi3" 0 "$MIXQ" -q synth --arch phi3 --params tiny -o "$tmp/syn-phi3.gguf"
expect "info synthetic phi3" 0 "$MIXQ" info "$tmp/syn-phi3.gguf"
grep_out "info phi3: fused qkv is one layer" 'blk\.0\.attn_qkv\.weight +attn_qkv +0 +64 x 128 +f16'
grep_out "info phi3: fused gate and up" 'blk\.1\.ffn_up\.weight +ffn_up +1 +64 x 256 +f16'
expect "synth gemma2 with a window" 0 "$MIXQ" -q synth --arch gemma2 --params tiny --sliding-window 8 \
    --head-dim 32 -o "$tmp/syn-gemma2.gguf"
expect "info synthetic gemma2" 0 "$MIXQ" info "$tmp/syn-gemma2.gguf"
grep_out "info gemma2 block" '^block +gelu gate, post norms, embeddings scaled, soft caps attention 10 final 3, 1 of 2 blocks slide over 8 positions'
grep_out "info gemma2 head dim" 'head dim 32'
expect "synth llama 3.1 rope factors" 0 "$MIXQ" -q synth --params tiny --rope-freqs -o "$tmp/syn-rf.gguf"
expect "info synthetic rope factors" 0 "$MIXQ" info "$tmp/syn-rf.gguf"
grep_out "info says rope factors" '^rope .*frequency factors \(rope_freqs\)'
expect "eval with rope factors" 0 "$MIXQ" -q eval "$tmp/syn-rf.gguf" --ctx 32 --chunks 1 --plan q8_0
expect "synth phi3 LongRoPE" 0 "$MIXQ" -q synth --arch phi3 --params tiny --rope-freqs -o "$tmp/syn-lr.gguf"
expect "info synthetic LongRoPE" 0 "$MIXQ" info "$tmp/syn-lr.gguf"
grep_out "info says LongRoPE" '^rope .*LongRoPE factors'
grep_out "info says the attention factor" '^rope scaling +attention factor 1\.26491, original context 32'
expect "synth rope factors qwen2" 2 "$MIXQ" synth --arch qwen2 --params tiny --rope-freqs -o "$tmp/syn.gguf"
grep_err "synth rope factors qwen2 says why" "architecture 'qwen2' has no RoPE frequency factors"
expect "synth bad type" 2 "$MIXQ" synth --params tiny --type q7_k -o "$tmp/syn.gguf"
expect "synth non-weight type" 2 "$MIXQ" synth --params tiny --type i32 -o "$tmp/syn.gguf"
expect "synth without output" 2 "$MIXQ" synth --params tiny
expect "synth extra argument" 2 "$MIXQ" synth --params tiny -o "$tmp/syn.gguf" extra
expect "synth vocab too small" 2 "$MIXQ" synth --params tiny --vocab 5 -o "$tmp/syn.gguf"
expect "synth bad seed" 2 "$MIXQ" synth --params tiny --seed x -o "$tmp/syn.gguf"
expect "synth unwritable folder" 1 "$MIXQ" synth --params tiny -o "$tmp/none/syn.gguf"
expect "synth tiny" 0 "$MIXQ" -q synth --arch llama --params tiny -o "$tmp/syn.gguf"
grep_out "synth says what it wrote" '^wrote .*syn\.gguf: synthetic llama tiny'
expect "synth tiny q4_0 vocab 1000" 0 "$MIXQ" -q synth --params TINY --type q4_0 --vocab 1000 --seed 9 \
    -o "$tmp/syn-q4.gguf"
expect "info synthetic" 0 "$MIXQ" info "$tmp/syn.gguf"
grep_out "info synthetic name" '^name +synthetic llama tiny \(random weights'
grep_out "info synthetic layers" '^quantizable layers \(16\):'
grep_out "info synthetic f16" 'blk\.1\.ffn_down\.weight +ffn_down +1 +128 x 64 +f16'
expect "info synthetic q4_0" 0 "$MIXQ" info "$tmp/syn-q4.gguf"
grep_out "info synthetic vocab" '1000 tokens'
grep_out "info synthetic q4_0 layers" 'output\.weight +output +- +64 x 1000 +q4_0'

# sensitivity, tune, search: usage and input errors are one line before anything is
# measured; a quick tune of the bundled model writes the front, which search and eval read
for c in sensitivity tune search; do
    expect "$c --help" 0 "$MIXQ" "$c" --help
    grep_out "$c --help usage" "^usage: mixq $c"
done
expect "tune budget unit" 2 "$MIXQ" tune --budget 8gb
expect "tune budget no unit" 2 "$MIXQ" tune --budget 8
expect "tune budget nan" 2 "$MIXQ" tune --budget nanGB
expect "tune budget absurd" 2 "$MIXQ" tune --budget 1e30GB
expect "tune latency unit" 2 "$MIXQ" tune --latency 200
expect "tune latency negative" 2 "$MIXQ" tune --latency -5ms
expect "tune bad sensitivity" 2 "$MIXQ" tune --sensitivity guess
expect "tune bad pin" 2 "$MIXQ" tune --pin output.weight
expect "tune pin bad format" 2 "$MIXQ" tune --pin output.weight=q7_k
expect "tune pin unknown layer" 1 "$MIXQ" tune --pin blk.77.attn_q.weight=q8_0 --out "$tmp/tune"
expect "tune pin glob matching nothing" 1 "$MIXQ" tune --pin 'blk.*.attn_z.weight=q8_0' --out "$tmp/tune"
expect "tune empty eval" 1 "$MIXQ" tune --eval "$tmp/empty.txt" --out "$tmp/tune"
expect "tune missing eval" 1 "$MIXQ" tune --eval "$tmp/none.txt" --out "$tmp/tune"
expect "tune missing model" 1 "$MIXQ" tune "$tmp/none.gguf" --out "$tmp/tune"
expect "tune bad validate" 2 "$MIXQ" tune --validate 3
expect "tune two models" 2 "$MIXQ" tune "$TINY" "$TINY"
expect "tune bad config" 1 "$MIXQ" tune --config "$tmp/broken.yaml" --out "$tmp/tune"
expect "tune quick" 0 "$MIXQ" -q tune --sensitivity proxy --budget 1GB --latency 10s --workload decode:32 \
    --max-seconds 0.05 --ctx 64 --chunks 1 --cache-dir "$tmp/cache" --out "$tmp/tune"
grep_out "tune summary chosen" '^\* front point [0-9]+'
grep_out "tune summary baselines" '^  uniform q8_0 '
grep_out "tune summary presets" '^  llama\.cpp Q4_K_M '
grep_out "tune summary preset comparison" '^ +llama\.cpp Q4_K_M (meets them with ([0-9.e+-]+x the chosen plan.s KL|KL [0-9.e+-]+ \(the chosen plan.s: [0-9.e+-]+\))|does not fit: over)'
grep_out "tune summary choice" '^chosen +front point [0-9]+'
# the importance matrix (issue 15): the quick tune computed one on the calibration text
# (every chunk of 64 tokens of kjv-eval.txt) into the cache, quantized every format with
# it and recorded the file in front.yaml; it evaluated on kjv-tune.txt, disjoint, so no
# warning
grep_out "tune summary imatrix" '^imatrix +computed on .*/examples/data/kjv-eval\.txt, [0-9]+ chunks of 64 tokens \(calibration; computed in [0-9.]+ s\): '
grep_out "tune summary evaluation text" '^evaluation +.*/examples/data/kjv-tune\.txt, 1 chunk of 64 tokens \(sensitivity and validation KL\)$'
# error compensation: the computed imatrix holds the Gram matrices of every blk.* layer's
# inputs (42 of the bundled model's 44 layers), and every format was quantized with them;
# --no-compensate computes one without, and says so
grep_out "tune summary compensation" '^compensation +42 layers error-compensated'
expect "tune quick --no-compensate" 0 "$MIXQ" -q tune --sensitivity proxy --budget 1GB --latency 10s \
    --workload decode:32 --max-seconds 0.05 --ctx 64 --chunks 1 --no-compensate --cache-dir "$tmp/cache" \
    --out "$tmp/tune-plain"
grep_out "tune --no-compensate summary" '^compensation +0 layers error-compensated.*: none'
# mixq imatrix --gram writes them for mixq quantize --imatrix: the compensated file differs
# from the one quantized with the same importance weights alone, and both run
expect "imatrix --gram" 0 "$MIXQ" imatrix "$TINY" --gram --ctx 32 --chunks 2 -o "$tmp/gram.gguf"
grep_out "imatrix --gram summary" '^gram +42 of 42 entries'
expect "imatrix without --gram" 0 "$MIXQ" imatrix "$TINY" --ctx 32 --chunks 2 -o "$tmp/nogram.gguf"
expect "quantize compensated" 0 "$MIXQ" quantize "$TINY" --plan q4_0 --imatrix "$tmp/gram.gguf" -o "$tmp/q-comp.gguf"
grep_out "quantize compensated summary" '^ +42 layers error-compensated with the file.s Gram matrices'
expect "quantize plain imatrix" 0 "$MIXQ" quantize "$TINY" --plan q4_0 --imatrix "$tmp/nogram.gguf" \
    -o "$tmp/q-plain.gguf"
if [ -s "$tmp/q-comp.gguf" ] && [ "$(stat -c %s "$tmp/q-comp.gguf")" = "$(stat -c %s "$tmp/q-plain.gguf")" ] &&
    ! cmp -s "$tmp/q-comp.gguf" "$tmp/q-plain.gguf"; then
    pass=$((pass + 1)); echo "ok   compensated q4_0 file: same size, other bytes than plain importance-weighted rounding"
else
    fail=$((fail + 1)); echo "FAIL compensated q4_0 file: not a same-size file with other bytes"
fi
expect "eval the compensated file" 0 "$MIXQ" -q eval "$tmp/q-comp.gguf" --plan source --ctx 32 --chunks 1 --no-kl
printf 'broken' >"$tmp/gram-bad.gguf"
expect "quantize with a broken imatrix" 1 "$MIXQ" quantize "$TINY" --plan q4_0 --imatrix "$tmp/gram-bad.gguf" \
    -o "$tmp/q-bad.gguf"
if grep -q 'calibration text' "$tmp/err"; then
    fail=$((fail + 1)); echo "FAIL tune quick: the default texts are said to overlap"; cat "$tmp/err"
else
    pass=$((pass + 1)); echo "ok   tune quick: no overlap warning for the default texts"
fi
im_path=$(awk '/^imatrix:$/{p=1} p && /^  path:/{print $2; exit}' "$tmp/tune/front.yaml")
im_sha=$(awk '/^imatrix:$/{p=1} p && /^  sha256:/{print $2; exit}' "$tmp/tune/front.yaml")
case "$im_path" in
"$(realpath "$tmp/cache")"/imatrix-*.gguf)
    if [ "$(sha256sum "$im_path" | cut -d' ' -f1)" = "$im_sha" ] &&
        grep -q '^  source: computed$' "$tmp/tune/front.yaml"; then
        pass=$((pass + 1)); echo "ok   tune front.yaml records the cached imatrix and its sha256"
    else
        fail=$((fail + 1)); echo "FAIL tune front.yaml: imatrix '$im_path' sha256 '$im_sha' does not match"
    fi ;;
*) fail=$((fail + 1)); echo "FAIL tune front.yaml: imatrix path '$im_path' is not in the cache folder" ;;
esac
# bad importance-matrix arguments: usage errors, or one error line before anything is measured
printf 'GGUF\003\000\000\000garbage' >"$tmp/im-garbage.gguf"
X=(--cache-dir "$tmp/cache" --out "$tmp/tune-x")
expect "tune --imatrix with --no-imatrix" 2 "$MIXQ" tune --imatrix "$tmp/im-garbage.gguf" --no-imatrix
expect "tune --calib with --no-imatrix" 2 "$MIXQ" tune --calib examples/data/kjv-eval.txt --no-imatrix
expect "tune --calib-chunks with --imatrix" 2 "$MIXQ" tune --calib-chunks 2 --imatrix "$tmp/im-garbage.gguf"
expect "tune bad --calib-chunks" 2 "$MIXQ" tune --calib-chunks 0
expect "tune missing --imatrix" 1 "$MIXQ" tune --imatrix "$tmp/none.gguf" "${X[@]}"
expect "tune garbage --imatrix" 1 "$MIXQ" tune --imatrix "$tmp/im-garbage.gguf" "${X[@]}"
expect "tune --imatrix a model file" 1 "$MIXQ" tune --imatrix "$TINY" "${X[@]}"
expect "tune missing --calib" 1 "$MIXQ" tune --calib "$tmp/none.txt" "${X[@]}"
expect "tune empty --calib" 1 "$MIXQ" tune --calib "$tmp/empty.txt" "${X[@]}"
expect "tune --ctx under the imatrix's 16 tokens" 1 "$MIXQ" tune --ctx 8 "${X[@]}"
# the same text for calibration and evaluation: one warning, then the tune goes on (and
# stops here at a target whose agent fails, right after the importance matrix)
"$MIXQ" -q tune --calib examples/data/kjv-tune.txt --calib-chunks 2 --ctx 64 --target cpu:isa=sse9 --no-memory \
    --no-plots "${X[@]}" >"$tmp/out" 2>"$tmp/err"
rc=$?
n_warn=$(grep -c '^mixq: warning: the calibration text .* and the evaluation text .*kjv-tune\.txt. are the same text' "$tmp/err")
if [ "$rc" -eq 1 ] && [ "$n_warn" -eq 1 ] && grep -q '^mixq: error: .*sse9' "$tmp/err"; then
    pass=$((pass + 1)); echo "ok   tune --calib equal to the evaluation text: warned once"
else
    fail=$((fail + 1)); echo "FAIL tune --calib equal to the evaluation text: exit $rc, $n_warn warnings"
    sed 's/^/     stderr: /' "$tmp/err" | head -5
fi
# a tune with the user's importance matrix and a file budget, so that the chosen plan mixes
# formats and has a KL: quantize and eval of the front apply that file by themselves (the
# file holds the bytes tune sized, the KL is the one tune measured), --no-imatrix gives
# another file and KL; export copies it beside the recipe; a front whose imatrix is gone or
# changed is one error line
"$MIXQ" -q imatrix "$TINY" --ctx 64 --chunks 4 -o "$tmp/tim.gguf" >/dev/null 2>&1
expect "tune --imatrix FILE" 0 "$MIXQ" -q tune --imatrix "$tmp/tim.gguf" --sensitivity proxy --size 2MB \
    --workload decode:32 --max-seconds 0.05 --ctx 64 --chunks 1 --no-memory --no-plots --cache-dir "$tmp/cache" \
    --out "$tmp/tim"
grep_out "tune --imatrix summary" "^imatrix +given: $tmp/tim\.gguf \(4 chunks of 64 tokens of .*kjv-eval\.txt\)$"
TF=$tmp/tim/front.yaml
ci=$(awk '/^chosen:$/{getline; print $2; exit}' "$TF")
fb=$(awk -v i="$ci" '$1 == "-" && $2 == "index:" {p = ($3 == i)} p && /^ +file_bytes:/{print $2; exit}' "$TF")
kl_f=$(awk -v i="$ci" '$1 == "-" && $2 == "index:" {p = ($3 == i)} p && /^ +kl:/{print $2; exit}' "$TF")
expect "quantize a front made with --imatrix" 0 "$MIXQ" quantize "$TINY" --plan "$TF" -o "$tmp/tim-q.gguf"
grep_out "quantize applies the front's imatrix" "^imatrix +$tmp/tim\.gguf \(the front.s; --no-imatrix for none\)$"
size=$(stat -c %s "$tmp/tim-q.gguf" 2>/dev/null || echo 0)
# the file holds the bytes tune measured and sized: at most the file_bytes of the point
# (quantize's provenance, which names the imatrix, plus 512 bytes of slack for spellings)
if [ -n "$fb" ] && [ "$size" -gt 0 ] && [ "$size" -le "$fb" ] && [ "$size" -ge $((fb - 1024)) ] &&
    grep -aq "$(sha256sum "$tmp/tim.gguf" | cut -d' ' -f1)" "$tmp/tim-q.gguf"; then
    pass=$((pass + 1)); echo "ok   quantize a front made with --imatrix: $size bytes (tune: at most $fb), records the imatrix"
else
    fail=$((fail + 1)); echo "FAIL quantize a front made with --imatrix: $size bytes, tune measured '$fb' (or no mixq.imatrix.sha256)"
fi
expect "eval a front made with --imatrix" 0 "$MIXQ" eval "$TINY" --plan "$TF" --ctx 64 --chunks 1 \
    --text examples/data/kjv-tune.txt
kl_e=$(awk '/^kl /{print $3}' "$tmp/out")
expect "eval that front with --no-imatrix" 0 "$MIXQ" eval "$TINY" --plan "$TF" --ctx 64 --chunks 1 --no-imatrix \
    --text examples/data/kjv-tune.txt
grep_out "eval --no-imatrix says so" '^imatrix +none \(--no-imatrix\)'
kl_p=$(awk '/^kl /{print $3}' "$tmp/out")
if awk -v f="$kl_f" -v e="$kl_e" -v p="$kl_p" 'BEGIN { d = e / f - 1; q = p / f - 1;
    exit !(f > 0 && d < 5e-3 && d > -5e-3 && (q > 0.05 || q < -0.05)) }'; then
    pass=$((pass + 1)); echo "ok   eval of the front gives tune's KL ($kl_e, front $kl_f); plain quantization another ($kl_p)"
else
    fail=$((fail + 1)); echo "FAIL eval of the front: KL $kl_e, front $kl_f, --no-imatrix $kl_p"
fi
expect "quantize that front with --no-imatrix" 0 "$MIXQ" quantize "$TINY" --plan "$TF" --no-imatrix \
    -o "$tmp/tim-plain.gguf"
grep_err "quantize --no-imatrix of an imatrix front leaves its figures out" 'measured figures are left out'
if [ -s "$tmp/tim-plain.gguf" ] && ! cmp -s "$tmp/tim-q.gguf" "$tmp/tim-plain.gguf"; then
    pass=$((pass + 1)); echo "ok   quantize --no-imatrix writes another file"
else
    fail=$((fail + 1)); echo "FAIL quantize --no-imatrix wrote the same file (or none)"
fi
expect "quantize --imatrix with --no-imatrix" 2 "$MIXQ" quantize "$TINY" --plan q4_k --imatrix "$tmp/tim.gguf" \
    --no-imatrix -o "$tmp/bad.gguf"
expect "eval --imatrix with --no-imatrix" 2 "$MIXQ" eval "$TINY" --imatrix "$tmp/tim.gguf" --no-imatrix
expect "export --imatrix with --no-imatrix" 2 "$MIXQ" export "$TF" --to llama.cpp --imatrix "$tmp/tim.gguf" --no-imatrix
expect "export a front made with --imatrix" 0 "$MIXQ" export "$TF" --to llama.cpp --out-model "$tmp/tl.gguf"
grep_out "export names the copy of the imatrix" "^llama-quantize --pure --imatrix '$tmp/tl\.imatrix\.gguf' --tensor-type-file '$tmp/tl\.tensor-types\.txt'"
if cmp -s "$tmp/tim.gguf" "$tmp/tl.imatrix.gguf"; then
    pass=$((pass + 1)); echo "ok   export copied the imatrix beside the recipe"
else
    fail=$((fail + 1)); echo "FAIL export did not copy the imatrix to $tmp/tl.imatrix.gguf"
fi
expect "export --no-file" 0 "$MIXQ" export "$TF" --to llama.cpp --no-file --out-model "$tmp/tl2.gguf"
grep_out "export --no-file names the imatrix where it is" "^llama-quantize --pure --imatrix '$tmp/tim\.gguf' "
if [ -e "$tmp/tl2.imatrix.gguf" ]; then
    fail=$((fail + 1)); echo "FAIL export --no-file copied the imatrix"
else
    pass=$((pass + 1)); echo "ok   export --no-file copies no imatrix"
fi
expect "export --no-imatrix" 0 "$MIXQ" export "$TF" --to llama.cpp --no-file --no-imatrix --out-model "$tmp/tl3.gguf"
if grep -q -- '--imatrix' "$tmp/out"; then
    fail=$((fail + 1)); echo "FAIL export --no-imatrix still names an imatrix"
else
    pass=$((pass + 1)); echo "ok   export --no-imatrix names none"
fi
expect "export a preset with --imatrix" 0 "$MIXQ" export Q4_K_M --model "$TINY" --to llama.cpp --imatrix "$tmp/tim.gguf" \
    --out-model "$tmp/tl4.gguf"
grep_out "export a preset with --imatrix names the copy" "^llama-quantize --imatrix '$tmp/tl4\.imatrix\.gguf' '.*' '$tmp/tl4\.gguf' Q4_K_M$"
mv "$tmp/tim.gguf" "$tmp/tim-moved.gguf"
expect "quantize a front whose imatrix is gone" 1 "$MIXQ" quantize "$TINY" --plan "$TF" -o "$tmp/bad.gguf"
grep_err "the missing imatrix is named" "the front.s importance matrix '$tmp/tim\.gguf' cannot be read"
expect "export a front whose imatrix is gone" 1 "$MIXQ" export "$TF" --to llama.cpp --out-model "$tmp/tl5.gguf"
expect "quantize a front whose imatrix is gone, --no-imatrix" 0 "$MIXQ" -q quantize "$TINY" --plan "$TF" --no-imatrix \
    -o "$tmp/tim-plain2.gguf"
cp "$tmp/tim-moved.gguf" "$tmp/tim.gguf" && printf 'x' >>"$tmp/tim.gguf"
expect "quantize a front whose imatrix changed" 1 "$MIXQ" quantize "$TINY" --plan "$TF" -o "$tmp/bad.gguf"
grep_err "the change is named" 'has changed since it was recorded'
mv "$tmp/tim-moved.gguf" "$tmp/tim.gguf"
for f in profile.yaml sensitivity.yaml front.yaml; do
    if [ -s "$tmp/tune/$f" ]; then
        pass=$((pass + 1)); echo "ok   tune wrote $f"
    else
        fail=$((fail + 1)); echo "FAIL tune did not write $f"
    fi
done
if command -v gnuplot >/dev/null; then
    for f in front-memory-loss front-latency-loss front-memory-latency validation plan sensitivity layer-times; do
        if [ -s "$tmp/tune/$f.png" ] && [ -s "$tmp/tune/$f.svg" ] && [ -s "$tmp/tune/$f.gp" ]; then
            pass=$((pass + 1)); echo "ok   tune plot $f"
        else
            fail=$((fail + 1)); echo "FAIL tune plot $f missing"
        fi
    done
fi
# calibrated sensitivity: the weight errors mapped to KL by a fit to measured group points;
# with four narrow formats each group is measured at three (cheapest, middle, dearest) and
# q5_0 is predicted. sensitivity.yaml marks every loss; the summary and front.yaml compare
# the validated plans' predicted KL with the measured one.
expect "sensitivity bad method" 2 "$MIXQ" sensitivity "$TINY" --sensitivity auto
expect "tune calibrated" 0 "$MIXQ" tune --sensitivity calibrated --formats f16,q8_0,q5_1,q5_0,q4_0 --budget 1GB \
    --workload decode:32 --max-seconds 0.05 --ctx 64 --chunks 1 --no-memory --no-plots --cache-dir "$tmp/cache" \
    --out "$tmp/tcal"
grep_err "tune calibrated says how many evaluations" 'calibrated sensitivity: [0-9]+ evaluations .*measured would run [0-9]+'
grep_out "tune calibrated: the fit's leave-one-out check" '^ +the fit: leave-one-out Spearman [0-9.-]+, median error [0-9.]+% over its [0-9]+ measured group points'
grep_out "tune calibrated: predicted vs measured KL" '^calibration +predicted \(calibrated sensitivity\) vs measured KL of the [0-9]+ validated plans: median error [0-9.]+%, worst [0-9.]+%'
grep_out "tune calibrated: a plan's error" '^ +uniform q8_0 +predicted [0-9.e+-]+ +measured [0-9.e+-]+ +[+-][0-9.]+%'
if python3 - "$tmp/tcal" >"$tmp/tcal.check" 2>&1 <<'PY'
import sys, yaml
d = sys.argv[1]
s = yaml.safe_load(open(d + "/sensitivity.yaml"))
assert s["method"] == "calibrated" and s["loss"] == "kl", s["method"]
src = {}
for l in s["layers"]:
    for f, v in l.items():
        if isinstance(v, dict) and "loss" in v:
            src.setdefault(v["source"], []).append((l["name"], f))
            assert f == "f32" or v["err"] > 0, (l["name"], f)
assert set(src) == {"measured", "shared", "predicted"}, sorted(src)
assert all(f == "q5_0" for _, f in src["predicted"]), src["predicted"][:3]
c = s["calibration"]
assert c["points"] == 3 * len(s["groups"]) and -1 <= s["rank_correlation"] <= 1
assert sum(c["losses"].values()) == sum(len(v) for v in src.values())
f = yaml.safe_load(open(d + "/front.yaml"))
assert f["sensitivity"]["method"] == "calibrated" and "rank_correlation" in f["sensitivity"]
cal = f["calibration"]
errs = [abs(p["error_percent"]) for p in cal["plans"]]
for p in cal["plans"]:
    assert abs(100 * (p["predicted_kl"] - p["measured_kl"]) / p["measured_kl"] - p["error_percent"]) < 0.01 * max(1, abs(p["error_percent"]))
assert abs(max(errs) - cal["worst_error_percent"]) < 1e-3 * max(1, max(errs))
print("ok")
PY
then
    pass=$((pass + 1)); echo "ok   tune calibrated: sensitivity.yaml marks measured/shared/predicted, front.yaml has the calibration"
else
    fail=$((fail + 1)); echo "FAIL tune calibrated: yaml check"; sed 's/^/     /' "$tmp/tcal.check" | tail -5
fi
# tune --max-kl: a quality bound. Bad values are usage errors; a bound a plan reaches gives
# the fastest measured plan within it (front.yaml: budgets.max_kl, the chosen point's
# measured KL at most X, no faster measured point that meets the budgets, and steered near
# the bound); a bound below every plan's KL (output.weight pinned to q4_0, so not even the
# source's precision is a plan) names the smallest KL any plan reaches; plans within the
# bound that miss the other budgets (KL 0 is the all-f32 plan alone, over a 5 MB file) are
# said not to fit.
# expect_measured NAME WANT CMD...: expect for a run that measures before it fails:
# warnings on how it measured (a busy machine) may come before the one error line
expect_measured() {
    local name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -eq "$want" ] && [ "$(grep -vc '^mixq: warning: ' "$tmp/err")" -eq 1 ] &&
        tail -n 1 "$tmp/err" | grep -q '^mixq: error: '; then
        pass=$((pass + 1)); echo "ok   $name"
    else
        fail=$((fail + 1)); echo "FAIL $name (exit $got, want $want)"; sed 's/^/     stderr: /' "$tmp/err" | head -5
    fi
}
for v in -0.1 nan NaN inf -inf abc '' 0.1nats 1e400; do
    expect "tune bad max-kl '$v'" 2 "$MIXQ" tune --max-kl "$v"
done
grep_err "tune bad max-kl: one line naming the bound" "^mixq: error: KL bound '1e400' is out of range"
expect "search bad max-kl" 2 "$MIXQ" search --max-kl -1
expect "tune --help says --max-kl" 0 "$MIXQ" tune --help
grep_out "tune --help --max-kl" '^  --max-kl X +quality bound'
# tune --runtime llama.cpp: what it takes is refused in one line before anything is measured
# (the runs in llama.cpp itself are the interop tier's)
for v in foo llama.cpp= llama llama.cppX; do
    expect "tune bad runtime '$v'" 2 "$MIXQ" tune --runtime "$v"
done
expect "tune --runtime with --remote" 2 "$MIXQ" tune --runtime llama.cpp --remote 'mixq agent'
expect "tune --runtime without the tools" 1 "$MIXQ" tune --runtime "llama.cpp=$tmp" --no-plots --out "$tmp/rt-x"
grep_err "tune --runtime without the tools names the tool" "^mixq: error: llama.cpp's llama-bench is not in '$tmp'"
expect "tune --runtime, no llama-bench on PATH" 1 env PATH=/nonexistent "$MIXQ" tune --runtime llama.cpp --no-plots \
    --out "$tmp/rt-x"
grep_err "tune --runtime, no llama-bench on PATH says so" "no llama-bench on PATH; give the folder"
expect "tune --help says --runtime" 0 "$MIXQ" tune --help
grep_out "tune --help --runtime" '^  --runtime llama.cpp\[=BINDIR\]'
KQ="--sensitivity proxy --workload decode:32 --max-seconds 0.05 --ctx 64 --chunks 1 --no-memory --no-plots"
KQ="$KQ --cache-dir $tmp/cache"
xkl=$(python3 - "$tmp/tune/front.yaml" <<'PY'
import sys, yaml
f = yaml.safe_load(open(sys.argv[1]))
kl = sorted(p["measured"]["kl"] for p in f["baselines"])  # f16, q8_0 and the presets: a bound in their range
print("%.3g" % kl[len(kl) // 2])
PY
)
expect "tune --max-kl $xkl" 0 "$MIXQ" -q tune $KQ --max-kl "$xkl" --out "$tmp/maxkl"
grep_out "tune --max-kl summary budgets" "^budgets .*, KL at most $xkl "
grep_out "tune --max-kl summary chosen" '^chosen +front point [0-9]+'
python3 - "$tmp/maxkl/front.yaml" "$xkl" >"$tmp/maxkl.check" 2>&1 <<'PY'
import sys, yaml
f, x = yaml.safe_load(open(sys.argv[1])), float(sys.argv[2])
assert f["budgets"]["max_kl"] == x, f["budgets"]
m = [p for p in f["points"] if "measured" in p]
ch = [p for p in m if p["index"] == f["chosen"]["index"]][0]["measured"]
assert ch["kl"] <= x and ch["meets_budgets"], ch
for p in m:  # meets_budgets as measured includes the KL bound; none that meets is faster
    assert p["measured"]["meets_budgets"] == (p["measured"]["kl"] <= x), p
    if p["measured"]["meets_budgets"]:
        assert ch["latency_us"] <= p["measured"]["latency_us"], (ch, p["measured"])
# steered near the bound: a plan over it was measured, or the chosen one is within a decade of
# it (which of the two depends on the quick profile's timings, so on the machine)
kls = sorted(p["measured"]["kl"] for p in m)
assert any(k > x for k in kls) or ch["kl"] >= x / 10, ("nothing steered near the bound", kls)
assert f["search"]["queried_loss"] is not None and f["search"]["loss_ratio"] > 0, f["search"]
print("ok")
PY
if grep -qx ok "$tmp/maxkl.check"; then
    pass=$((pass + 1)); echo "ok   tune --max-kl: the fastest measured plan within the bound, in front.yaml"
else
    fail=$((fail + 1)); echo "FAIL tune --max-kl: front.yaml check"; sed 's/^/     /' "$tmp/maxkl.check" | tail -5
fi
expect_measured "tune --max-kl below every plan" 1 "$MIXQ" -q tune $KQ --max-kl 1e-12 --pin output.weight=q4_0 \
    --out "$tmp/maxkl0"
grep_err "tune --max-kl below every plan names the smallest KL" \
    '^mixq: error: --max-kl 1e-12 is below the smallest KL any plan reaches: [0-9.e+-]+ \(.*as measured'
kmin=$(sed -n 's/.*any plan reaches: \([0-9.e+-]*\) .*/\1/p' "$tmp/err")
if python3 - "$tmp/maxkl0/front.yaml" "$kmin" <<'PY'
import sys, yaml
f, k = yaml.safe_load(open(sys.argv[1])), float(sys.argv[2])
kl = [p["measured"]["kl"] for p in f["points"] + f["baselines"] if "measured" in p]
assert f["chosen"] is None and abs(min(kl) - k) <= 1e-3 * k, (min(kl), k)
PY
then
    pass=$((pass + 1)); echo "ok   tune --max-kl below every plan: the KL named is the smallest measured"
else
    fail=$((fail + 1)); echo "FAIL tune --max-kl below every plan: '$kmin' is not the smallest measured KL"
fi
expect_measured "tune --max-kl within reach, over the size budget" 1 "$MIXQ" -q tune $KQ --max-kl 0 --size 5MB \
    --out "$tmp/maxkl1"
grep_err "tune --max-kl: the plans within it do not fit" \
    '^mixq: error: no validated plan within --max-kl 0 met the other budgets as measured: the fastest within it, front point [0-9]+ \(KL 0\), does not fit: over size as measured'
expect "search --max-kl on a proxy table" 1 "$MIXQ" search --profile "$tmp/tune/profile.yaml" \
    --sensitivity "$tmp/tune/sensitivity.yaml" --max-kl 0.01 --no-plots --out "$tmp/search"
grep_err "search --max-kl on a proxy table says why" 'holds rel_mse losses'

# tune --target: one plan for two targets (the cpu backend on its best path and forced to
# its scalar kernels, each measured by an agent), measured to meet the budgets on both.
# The latency budget is derived, not hard-coded: a first run without one measures the
# plans on both targets; the budget is then 0.7x the slowest plan's latency on the scalar
# target (f16 there: the quantized plans, several times faster, meet it and f16 does not),
# so it binds, and the chosen plan must be shown to meet it on both.
expect "tune --target bad spec" 2 "$MIXQ" tune --target 'cpu:fast'
expect "tune --target bad isa backend" 2 "$MIXQ" tune --target 'ref:isa=scalar'
expect "tune --target empty command" 2 "$MIXQ" tune --target 'neon@'
expect "tune --target twice" 2 "$MIXQ" tune --target cpu --target cpu
expect "tune --target with --remote" 2 "$MIXQ" tune --target cpu --remote 'mixq agent'
expect "tune --per-target alone" 2 "$MIXQ" tune --per-target
expect "tune --target unknown isa" 1 "$MIXQ" -q tune --target cpu:isa=sse9 --no-memory --no-plots \
    --cache-dir "$tmp/cache" --out "$tmp/tgt"
targs=(--target cpu --target cpu:isa=scalar --threads 1 --sensitivity proxy --budget 1GB --workload decode:32
    --max-seconds 0.05 --ctx 64 --chunks 1 --no-memory --no-plots --cache-dir "$tmp/cache")
expect "tune two targets, memory budget only" 0 "$MIXQ" -q tune "${targs[@]}" --out "$tmp/tgt"
if grep -q '^mixq: measuring' "$tmp/err"; then
    fail=$((fail + 1)); echo "FAIL tune two targets -q: the agents still report progress"
else
    pass=$((pass + 1)); echo "ok   tune two targets -q: the agents are quiet too"
fi
grep_out "tune targets summary" '^targets +2, each plan measured on each: cpu; cpu:isa=scalar'
grep_out "tune targets per-target table" '^  per target \(median latency, memory\) +cpu +cpu:isa=scalar'
lat=$(python3 - "$tmp/tgt/front.yaml" <<'PY'
import sys, yaml
f = yaml.safe_load(open(sys.argv[1]))
m = [x["measured"] for x in f["points"] + f["baselines"] if "measured" in x]
print("%.3fus" % (0.7 * max(x["targets"][1]["latency_us"] for x in m)))
PY
)
expect "tune two targets, binding latency budget $lat" 0 "$MIXQ" -q tune "${targs[@]}" --latency "$lat" \
    --per-target --out "$tmp/tgt"
python3 - "$tmp/tgt" "$lat" >"$tmp/tgt.check" 2>&1 <<'PY'
import glob, sys, yaml
d, lat = sys.argv[1], float(sys.argv[2][:-2])
f = yaml.safe_load(open(d + "/front.yaml"))
assert f["targets"] == ["cpu", "cpu:isa=scalar"], f["targets"]
assert f["budgets"]["latency_us"] == lat, f["budgets"]
ch = [p for p in f["points"] if p["index"] == f["chosen"]["index"]][0]["measured"]
assert [t["target"] for t in ch["targets"]] == [0, 1]
for t in ch["targets"]:  # measured to meet the budgets on each target
    assert t["meets_budgets"] and t["latency_us"] <= lat and t["reps"] >= 5, t
    assert t["memory_bytes"] <= f["budgets"]["memory_bytes"], t
assert ch["latency_us"] == max(t["latency_us"] for t in ch["targets"]), ch
m = [x["measured"] for x in f["points"] + f["baselines"] if "measured" in x]
assert any(not x["targets"][1]["meets_budgets"] and not x["meets_budgets"] for x in m), "the budget does not bind"
for i, slug in enumerate(["t1-cpu", "t2-cpu-isa-scalar"]):  # --per-target: each its own plan
    g = yaml.safe_load(open("%s/%s/front.yaml" % (d, slug)))
    p = yaml.safe_load(open("%s/%s/profile.yaml" % (d, slug)))
    assert g["targets"] == [f["targets"][i]] and g["chosen"] is not None, g.get("chosen")
    assert ("scalar" in p["target"]["backend_detail"]) == (i == 1), p["target"]["backend_detail"]
print("ok")
PY
if grep -qx ok "$tmp/tgt.check"; then
    pass=$((pass + 1)); echo "ok   tune two targets: chosen plan meets the budgets on both, as measured"
else
    fail=$((fail + 1)); echo "FAIL tune two targets: front.yaml check"; sed 's/^/     /' "$tmp/tgt.check" | tail -5
fi

expect "eval chosen plan of a front" 0 "$MIXQ" eval "$TINY" --plan "$tmp/tune/front.yaml" --chunks 1 --ctx 64
grep_out "eval front plan label" '^plan +.*\(point [0-9]+ of '
expect "eval front point absent" 1 "$MIXQ" eval "$TINY" --plan "$tmp/tune/front.yaml" --point 999999
expect "eval point on a format" 1 "$MIXQ" eval "$TINY" --plan q8_0 --point 1
expect "memory --help" 0 "$MIXQ" memory --help
grep_out "memory --help usage" '^usage: mixq memory'
expect "memory model only" 0 "$MIXQ" memory "$TINY" --plan q4_0 --no-measure
grep_out "memory model parts" '^  kv cache '
expect "memory measured within 5%" 0 "$MIXQ" memory "$TINY" --plan q8_0 --workload decode:64 --max-error 5
grep_out "memory peak RSS" '^  peak RSS .*measured; the model is [-+][0-9.]+% off'
expect "memory front plan" 0 "$MIXQ" memory "$TINY" --plan "$tmp/tune/front.yaml" --no-measure
expect "memory max-error without measuring" 2 "$MIXQ" memory "$TINY" --no-measure --max-error 5
expect "memory bad max-error" 2 "$MIXQ" memory "$TINY" --max-error x
expect "memory bad plan" 1 "$MIXQ" memory "$TINY" --plan q7_k
expect "memory bad workload" 1 "$MIXQ" memory "$TINY" --workload infer:1
expect "memory no model" 2 "$MIXQ" memory
S="--profile $tmp/tune/profile.yaml --sensitivity $tmp/tune/sensitivity.yaml"
expect "search without tables" 2 "$MIXQ" search --budget 1GB
expect "search" 0 "$MIXQ" -q search $S --budget 1GB --out "$tmp/search"
grep_out "search best point" '^best +point [0-9]+ as predicted'
grep_out "search not validated" '^not validated'
expect "search into a new nested folder" 0 "$MIXQ" -q search $S --budget 1GB --no-plots --out "$tmp/n1/n2/search"
[ -s "$tmp/n1/n2/search/front.yaml" ] && { pass=$((pass + 1)); echo "ok   nested --out created"; } ||
    { fail=$((fail + 1)); echo "FAIL nested --out: no front.yaml"; }
: >"$tmp/afile"
expect "search out under a file" 1 "$MIXQ" -q search $S --budget 1GB --no-plots --out "$tmp/afile/search"
expect "search impossible memory" 1 "$MIXQ" search $S --budget 1KB --no-plots --out "$tmp/search"
# 1 ns: a budget no plan of a measured profile meets (1 us is not that: a profile whose
# isolated layer costs disagree with its end-to-end runs can predict a mixed plan below it)
expect "search impossible latency" 1 "$MIXQ" search $S --latency 0.001us --no-plots --out "$tmp/search"
grep_err "search impossible latency names the fastest plan" "^mixq: error: latency budget 1 ns is below the fastest plan's"
expect "search unknown pin" 1 "$MIXQ" search $S --pin nope.weight=q8_0 --no-plots --out "$tmp/search"
sed 's/^\(\( *\)loss: \).*/\1.nan/' "$tmp/tune/sensitivity.yaml" >"$tmp/nan.yaml"
expect "search NaN sensitivity" 1 "$MIXQ" search --profile "$tmp/tune/profile.yaml" --sensitivity "$tmp/nan.yaml" \
    --no-plots --out "$tmp/search"
sed 's/^mixq_schema: .*/mixq_schema: plan\/1/' "$tmp/tune/profile.yaml" >"$tmp/notprof.yaml"
expect "search not a profile" 1 "$MIXQ" search --profile "$tmp/notprof.yaml" \
    --sensitivity "$tmp/tune/sensitivity.yaml" --no-plots --out "$tmp/search"
expect "search other model" 1 "$MIXQ" search $S "$tmp/syn.gguf" --no-plots --out "$tmp/search"

# ---- tune --remote: the mixq-agent/1 protocol over a pipe. A local agent measures; agents
# that print garbage, exit, truncate a frame, speak another version, send a frame that is
# not YAML, stay silent or die mid-run give one line and exit 1; a rerun reuses the host's
# cache of remote measurements, so fewer measure requests reach the agent.
R="--sensitivity proxy --budget 1GB --workload decode:32 --max-seconds 0.05 --ctx 64 --chunks 1 --no-plots"
R="$R --cache-dir $tmp/rcache --remote-timeout 20 --out $tmp/remote"
AGENT="MIXQ_CACHE_DIR=$tmp/acache $MIXQ -v agent 2>>$tmp/agent.log"
expect "remote tune" 0 "$MIXQ" -q tune $R --remote "$AGENT"
grep_out "remote tune chosen" '^chosen +front point [0-9]+'
if grep -q "^  remote: MIXQ_CACHE_DIR=" "$tmp/remote/front.yaml"; then
    pass=$((pass + 1)); echo "ok   remote tune front names the remote"
else
    fail=$((fail + 1)); echo "FAIL remote tune front lacks 'remote:'"
fi
n1=$(grep -c 'agent: request measure' "$tmp/agent.log")
: >"$tmp/agent.log"
expect "remote tune again" 0 "$MIXQ" -q tune $R --remote "$AGENT"
n2=$(grep -c 'agent: request measure' "$tmp/agent.log")
if [ "$n1" -gt 0 ] && [ "$n2" -lt "$n1" ]; then
    pass=$((pass + 1)); echo "ok   remote rerun reuses measurements ($n1 then $n2 measure requests)"
else
    fail=$((fail + 1)); echo "FAIL remote rerun: $n1 then $n2 measure requests"
fi
expect "remote garbage" 1 "$MIXQ" tune $R --remote "echo garbage"
expect "remote exits" 1 "$MIXQ" tune $R --remote "exit 3"
expect "remote truncated frame" 1 "$MIXQ" tune $R --remote "printf 'mixq-agent/1 100\\nok: true'"
expect "remote other version" 1 "$MIXQ" tune $R --remote "printf 'mixq-agent/2 5\\nok: 1'"
grep -q "speaks 'mixq-agent/2'" "$tmp/err" && { pass=$((pass + 1)); echo "ok   remote version named"; } ||
    { fail=$((fail + 1)); echo "FAIL remote version not named"; cat "$tmp/err"; }
expect "remote not YAML" 1 "$MIXQ" tune $R --remote "printf 'mixq-agent/1 9\\n[1, 2, 3]'"
expect "remote silent" 1 "$MIXQ" tune $R --remote-timeout 1 --remote "sleep 30"
rm -rf "$tmp/rcache"
expect "remote dies mid-run" 1 "$MIXQ" tune $R --remote "head -c 3000 | MIXQ_CACHE_DIR=$tmp/acache $MIXQ agent"
expect "remote without a model there" 1 "$MIXQ" -q tune $R --remote "$AGENT" --remote-model "$tmp/none.gguf"

# ---- quantize and export (issue 7): a front point written as GGUF and read back, the
# llama.cpp recipe and its rules file; a plan that does not match the model, an unknown
# point, an unwritable output: one error line each and no file (nor temporary) left
# no_file NAME PATH: nothing at PATH and no PATH.tmp-* beside it
no_file() {
    if [ ! -e "$2" ] && ! ls "$2".tmp* >/dev/null 2>&1; then
        pass=$((pass + 1)); echo "ok   $1: no file left"
    else
        fail=$((fail + 1)); echo "FAIL $1: $2 (or a temporary) was left behind"
    fi
}
F=$tmp/tune/front.yaml
# a point whose plan mixes formats (the quick tune's chosen point may be uniform)
P=$(awk '/^- index:/{i=$3} /^    layers:$/{getline; if ($0 ~ /^      [a-z]/) {print i; exit}}' "$F")
for c in quantize export; do
    expect "$c --help" 0 "$MIXQ" "$c" --help
    grep_out "$c --help usage" "^usage: mixq $c"
done
grep_out "export --help lists trtexec" '^  trtexec '
expect "quantize without plan" 2 "$MIXQ" quantize "$TINY" -o "$tmp/q.gguf"
expect "quantize without output" 2 "$MIXQ" quantize "$TINY" --plan q8_0
expect "quantize bad point" 2 "$MIXQ" quantize "$TINY" --plan "$F" --point x -o "$tmp/q.gguf"
expect "quantize chosen point" 0 "$MIXQ" quantize "$TINY" --plan "$F" -o "$tmp/q.gguf"
grep_out "quantize names the point" '^plan .*point [0-9]+ of '
grep_out "quantize file type" '^layers .*general\.file_type mostly [a-z0-9_]+$'
grep_out "quantize measured figures" '^measured +kl [0-9.e-]+, ppl '
grep_out "quantize applies the quick tune's imatrix" '^imatrix +/.*/imatrix-[0-9a-f]+\.gguf \(the front.s: computed by mixq tune on .*/examples/data/kjv-eval\.txt, [0-9]+ chunks;'
expect "quantize q4_0" 0 "$MIXQ" quantize "$TINY" --plan q4_0 -o "$tmp/q4.gguf"
expect "info of the q4_0 file" 0 "$MIXQ" info "$tmp/q4.gguf"
if [ "$(grep -cE '^ +[0-9]+ +[a-z_.0-9]+ +[a-z_]+ +[-0-9]+ +[0-9]+ x [0-9]+ +q4_0 ' "$tmp/out")" -eq 44 ]; then
    pass=$((pass + 1)); echo "ok   quantize q4_0: info lists 44 q4_0 layers"
else
    fail=$((fail + 1)); echo "FAIL quantize q4_0: info does not list 44 q4_0 layers"
fi
expect "quantize unknown point" 1 "$MIXQ" quantize "$TINY" --plan "$F" --point 999999 -o "$tmp/bad.gguf"
no_file "quantize unknown point" "$tmp/bad.gguf"
printf 'mixq_schema: plan/1\ndefault: q8_0\nlayers:\n  blk.9.attn_q.weight: q4_0\n' >"$tmp/extra.yaml"
expect "quantize plan with an extra layer" 1 "$MIXQ" quantize "$TINY" --plan "$tmp/extra.yaml" -o "$tmp/bad.gguf"
no_file "quantize plan with an extra layer" "$tmp/bad.gguf"
printf 'mixq_schema: plan/1\nlayers:\n  blk.0.attn_q.weight: q4_0\n' >"$tmp/missing.yaml"
expect "quantize plan with missing layers" 1 "$MIXQ" quantize "$TINY" --plan "$tmp/missing.yaml" -o "$tmp/bad.gguf"
no_file "quantize plan with missing layers" "$tmp/bad.gguf"
"$MIXQ" -q synth --params tiny -o "$tmp/syn-q.gguf" >/dev/null 2>&1
expect "quantize front of another model" 1 "$MIXQ" quantize "$tmp/syn-q.gguf" --plan "$F" -o "$tmp/bad.gguf"
no_file "quantize front of another model" "$tmp/bad.gguf"
expect "quantize unwritable output" 1 "$MIXQ" quantize "$TINY" --plan q8_0 -o "$tmp/no-such-dir/q.gguf"
no_file "quantize unwritable output" "$tmp/no-such-dir/q.gguf"
expect "quantize onto its source" 1 "$MIXQ" quantize "$tmp/q4.gguf" --plan q8_0 -o "$tmp/q4.gguf"
expect "quantize missing model" 1 "$MIXQ" quantize "$tmp/none.gguf" --plan q8_0 -o "$tmp/bad.gguf"
no_file "quantize missing model" "$tmp/bad.gguf"
expect "export without target" 2 "$MIXQ" export "$F"
expect "export unknown target" 2 "$MIXQ" export "$F" --to tensorflow
expect "export plan without model" 2 "$MIXQ" export "$tmp/extra.yaml" --to llama.cpp
expect "export unknown point" 1 "$MIXQ" export "$F" --point 999999 --to llama.cpp
expect "export llama model to trtexec" 1 "$MIXQ" export "$F" --to trtexec
expect "export llama.cpp" 0 "$MIXQ" export "$F" --point "${P:-0}" --to llama.cpp -o "$tmp/rules.txt"
grep_out "export llama.cpp command" '^llama-quantize --pure '
grep_out "export llama.cpp rules file" " --tensor-type-file '$tmp/rules.txt'"
grep_out "export llama.cpp checked" '^# base type Q[48]_0 for [0-9]+ tensors; [0-9]+ --tensor-type rules? select the other [0-9]+ \(checked'
grep_out "export llama.cpp names tune's imatrix, copied beside the rules" "^llama-quantize --pure --imatrix '$tmp/tinyllm-mixq\.imatrix\.gguf' --tensor-type-file "
if [ -s "$tmp/tinyllm-mixq.imatrix.gguf" ] && [ ! -e tinyllm-mixq.imatrix.gguf ]; then
    pass=$((pass + 1)); echo "ok   export llama.cpp: the imatrix copied beside the rules file"
else
    fail=$((fail + 1)); echo "FAIL export llama.cpp: no $tmp/tinyllm-mixq.imatrix.gguf (or one in the working folder)"
fi
if [ -s "$tmp/rules.txt" ] && ! grep -qvE '^\^[^ =]+\$=(f32|f16|bf16|q[2-8]_[01k]|iq4_nl|iq4_xs)$' "$tmp/rules.txt"; then
    pass=$((pass + 1)); echo "ok   export llama.cpp rules file: REGEX=TYPE lines"
else
    fail=$((fail + 1)); echo "FAIL export llama.cpp rules file is empty or malformed"
fi
expect "export uniform plan" 0 "$MIXQ" export q8_0 --model "$TINY" --to llama.cpp
grep_out "export uniform plan has no rules" '^# every layer q8_0: no --tensor-type rules'
expect "export unwritable file" 1 "$MIXQ" export "$F" --to llama.cpp -o "$tmp/no-such-dir/rules.txt"
# an ONNX model for the cases below: fetched from PyPI when absent (a wheel of 2 MB),
# and said loudly when it cannot be (the cases are then not run)
SILERO=models/silero_vad_op18_ifless.onnx
[ -f "$SILERO" ] || scripts/fetch-models silero-vad >"$tmp/fetch.log" 2>&1 ||
    echo "SKIP the ONNX cases (export trtexec/onnxruntime, quantize/tune refusals): $SILERO could not be fetched: $(tail -1 "$tmp/fetch.log")"
if [ -f "$SILERO" ]; then
    expect "quantize an ONNX model" 1 "$MIXQ" quantize "$SILERO" --plan q8_0 -o "$tmp/bad.gguf"
    no_file "quantize an ONNX model" "$tmp/bad.gguf"
    expect "export ONNX to llama.cpp" 1 "$MIXQ" export q8_0 --model "$SILERO" --to llama.cpp
    expect "export ONNX with --imatrix" 1 "$MIXQ" export q8_0 --model "$SILERO" --to trtexec --imatrix "$tmp/tim.gguf"
    expect "tune ONNX with --imatrix" 1 "$MIXQ" -q tune "$SILERO" --imatrix "$tmp/tim.gguf" --cache-dir "$tmp/cache" \
        --out "$tmp/tune-x"
    expect "tune ONNX with --runtime llama.cpp" 1 "$MIXQ" -q tune "$SILERO" --runtime "llama.cpp=$tmp" \
        --cache-dir "$tmp/cache" --out "$tmp/tune-x"
    grep_err "tune ONNX with --runtime says why" "measures GGUF language models"
    expect "export trtexec" 0 "$MIXQ" export q4_0 --model "$SILERO" --to trtexec -o "$tmp/trt.sh"
    grep_out "export trtexec precisions" " --layerPrecisions='\*:fp32,[^ ]+:int8"
    grep_out "export trtexec says q4_0 is rounded" '^# rounded: [0-9]+ layers? of a format under 8 bits \(.*q4_0.*\) -> int8'
    expect "export onnxruntime" 0 "$MIXQ" export q8_0 --model "$SILERO" --to onnxruntime -o "$tmp/ort.json"
    grep_out "export onnxruntime snippet" '^from onnxruntime\.quantization import '
    grep_out "export onnxruntime int8 Conv needs calibration" '^# the int8 Conv nodes need calibration inputs'
    grep_out "export onnxruntime snippet refuses to run uncalibrated" 'sys\.exit\("error: the int8 Conv nodes need calibration'
    if grep -q '"mixq_schema": "ort-recipe/1"' "$tmp/ort.json"; then
        pass=$((pass + 1)); echo "ok   export onnxruntime recipe file"
    else
        fail=$((fail + 1)); echo "FAIL export onnxruntime recipe file"
    fi
fi

# ---- compare: the hardware comparison report from profiles and fronts (reports/compare.h).
# The tune run above left a profile and a front; a second "target" is the same profile under
# another label. Different models, newer schemas and wrong files are one-line errors.
if [ -f "$tmp/tune/profile.yaml" ] && [ -f "$tmp/tune/front.yaml" ]; then
    TP="$tmp/tune/profile.yaml"
    expect "compare --help" 0 "$MIXQ" compare --help
    grep_out "compare --help usage" '^usage: mixq compare'
    expect "compare without profiles" 2 "$MIXQ" compare -o "$tmp/cmp"
    expect "compare unknown option" 2 "$MIXQ" compare "$TP" --frob
    expect "compare --fronts without a file" 2 "$MIXQ" compare "$TP" --fronts
    expect "compare labels not one per profile" 2 "$MIXQ" compare "$TP" "$TP" --label a -o "$tmp/cmp"
    expect "compare" 0 "$MIXQ" compare "$TP" "$TP" --label 'one <b>' --label two --fronts "$tmp/tune/front.yaml" \
        -o "$tmp/cmp" --no-plots
    grep_out "compare summary" '^one <b> +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+x +[0-9.]+x'
    grep_out "compare summary of the default menu's q4_k" '^target \(end to end, median us\) +f16 +q8_0 +q4_k +q8_0/f16 +q4_k/f16$'
    grep_out "compare wrote" "^wrote $tmp/cmp/report.html and $tmp/cmp/report.md \(2 targets, 1 front, [0-9]+ layer shapes\)"
    if grep -q 'one &lt;b&gt;' "$tmp/cmp/report.html" && ! grep -q 'one <b>' "$tmp/cmp/report.html" &&
        grep -q '^| target | f16 (us) |' "$tmp/cmp/report.md"; then
        pass=$((pass + 1)); echo "ok   compare report escaped, Markdown tables"
    else
        fail=$((fail + 1)); echo "FAIL compare report: label not escaped or Markdown table missing"
    fi
    if command -v gnuplot >/dev/null 2>&1; then
        expect "compare with plots" 0 "$MIXQ" -q compare "$TP" --fronts "$tmp/tune/front.yaml" -o "$tmp/cmp-plots"
        if [ "$(grep -c '<svg class="plot"' "$tmp/cmp-plots/report.html")" -ge 5 ] &&
            [ -f "$tmp/cmp-plots/plots/speedup.svg" ] && ! grep -q '<?xml' "$tmp/cmp-plots/report.html"; then
            pass=$((pass + 1)); echo "ok   compare plots inline as SVG"
        else
            fail=$((fail + 1)); echo "FAIL compare plots are not inline"
        fi
    fi
    MIXQ_GNUPLOT="$tmp/no-gnuplot" expect "compare without gnuplot, -o with missing parents" 0 "$MIXQ" compare "$TP" \
        -o "$tmp/cmp-nogp/a/b"
    if grep -q 'This report has no plots: MIXQ_GNUPLOT' "$tmp/cmp-nogp/a/b/report.html"; then
        pass=$((pass + 1)); echo "ok   compare says there is no gnuplot"
    else
        fail=$((fail + 1)); echo "FAIL compare without gnuplot does not say so"
    fi
    # a profile of f16, q8_0 and q4_0 only (as mixq profiled before the K-quants): its q4_0
    # columns; beside the tune's profile, no shared 4-bit format, said in a note
    expect "compare profile of q4_0" 0 "$MIXQ" -q profile "$TINY" --workload decode:32 --formats f16,q8_0,q4_0 \
        --max-seconds 0.05 --cache-dir "$tmp/cache" --no-memory --no-plots --out "$tmp/prof-q40"
    expect "compare q4_0 profiles" 0 "$MIXQ" compare "$tmp/prof-q40/profile.yaml" -o "$tmp/cmp-q40" --no-plots
    grep_out "compare q4_0 profiles: q4_0 columns" '^target \(end to end, median us\) +f16 +q8_0 +q4_0 +q8_0/f16 +q4_0/f16$'
    expect "compare q4_k and q4_0 profiles" 0 "$MIXQ" compare "$TP" "$tmp/prof-q40/profile.yaml" -o "$tmp/cmp-mixed" --no-plots
    grep_out "compare q4_k and q4_0 profiles: note" '^note: The profiles share no format narrower than q8_0 .*: the q4_k columns show q4_k where it was measured, and "-" \(not measured\) for cpu '
    sed 's/^\( *content_hash: \).*/\1'"'"'0123456789abcdef'"'"'/' "$TP" >"$tmp/other-model.yaml"
    expect "compare profiles of two models" 1 "$MIXQ" compare "$TP" "$tmp/other-model.yaml" -o "$tmp/cmp"
    sed 's/^\( *content_hash: \).*/\1'"'"'0123456789abcdef'"'"'/' "$tmp/tune/front.yaml" >"$tmp/other-front.yaml"
    expect "compare front of another model" 1 "$MIXQ" compare "$TP" --fronts "$tmp/other-front.yaml" -o "$tmp/cmp"
    sed 's/^- name: blk\.0\.attn_q\.weight$/- name: blk.0.attn_z.weight/' "$TP" >"$tmp/other-layers.yaml"
    expect "compare other layer names" 1 "$MIXQ" compare "$TP" "$tmp/other-layers.yaml" -o "$tmp/cmp"
    sed 's/^mixq_schema: profile\/1$/mixq_schema: profile\/2/' "$TP" >"$tmp/profile-v2.yaml"
    expect "compare newer profile schema" 1 "$MIXQ" compare "$TP" "$tmp/profile-v2.yaml" -o "$tmp/cmp"
    expect "compare a front as a profile" 1 "$MIXQ" compare "$tmp/tune/front.yaml" -o "$tmp/cmp"
    expect "compare missing profile" 1 "$MIXQ" compare "$tmp/none.yaml" -o "$tmp/cmp"
    expect "compare unwritable folder (under a file)" 1 "$MIXQ" compare "$TP" -o "$TP/x" --no-plots
fi

# ---- imatrix: llama-imatrix's statistic and file (model/imatrix.h); one-line errors for bad
# arguments and for malformed imatrix files handed to quantize --imatrix
expect "imatrix --help" 0 "$MIXQ" imatrix --help
grep_out "imatrix --help usage" '^usage: mixq imatrix'
expect "help lists imatrix" 0 "$MIXQ" --help
grep_out "help lists imatrix" '^  imatrix '
expect "imatrix tiny" 0 "$MIXQ" imatrix "$TINY" --ctx 64 --chunks 2 --threads 2 -o "$tmp/im.gguf"
grep_out "imatrix summary" '^imatrix +42 entries, 2 chunks of 64 tokens \(128 tokens\), [0-9.]+ s'
grep_out "imatrix wrote" "^wrote +$tmp/im.gguf\$"
expect "quantize with mixq's imatrix" 0 "$MIXQ" -q quantize "$TINY" --plan q4_k --imatrix "$tmp/im.gguf" -o "$tmp/im-q4k.gguf"
expect "imatrix --process-output" 0 "$MIXQ" imatrix "$TINY" --ctx 32 --chunks 1 --process-output -o "$tmp/im-out.gguf"
grep_out "imatrix --process-output adds output.weight" '^imatrix +43 entries, 1 chunks of 32 tokens'
MIXQ_ABS=$(cd "$(dirname "$MIXQ")" && pwd)/$(basename "$MIXQ")
TINY_ABS=$PWD/$TINY
mkdir -p "$tmp/imdefault"
cd "$tmp/imdefault" || exit 1
expect "imatrix default text and output" 0 "$MIXQ_ABS" imatrix "$TINY_ABS" --chunks 1
cd - >/dev/null || exit 1
if [ -s "$tmp/imdefault/imatrix.gguf" ]; then
    pass=$((pass + 1)); echo "ok   imatrix default output imatrix.gguf"
else
    fail=$((fail + 1)); echo "FAIL imatrix default output imatrix.gguf missing"
fi
grep_out "imatrix default text" '^text +.*/examples/data/kjv-eval\.txt$'
expect "imatrix missing text" 1 "$MIXQ" imatrix "$TINY" --text "$tmp/none.txt" -o "$tmp/im-x.gguf"
no_file "imatrix missing text" "$tmp/im-x.gguf"
expect "imatrix short text" 1 "$MIXQ" imatrix "$TINY" --text "$tmp/short.txt" -o "$tmp/im-x.gguf"
expect "imatrix empty text" 1 "$MIXQ" imatrix "$TINY" --text "$tmp/empty.txt" -o "$tmp/im-x.gguf"
expect "imatrix ctx 0" 2 "$MIXQ" imatrix "$TINY" --ctx 0
expect "imatrix ctx under 16" 2 "$MIXQ" imatrix "$TINY" --ctx 8
expect "imatrix chunks 0" 2 "$MIXQ" imatrix "$TINY" --chunks 0
expect "imatrix unknown option" 2 "$MIXQ" imatrix "$TINY" --frob
expect "imatrix without model" 2 "$MIXQ" imatrix
expect "imatrix two models" 2 "$MIXQ" imatrix "$TINY" "$TINY"
expect "imatrix missing model" 1 "$MIXQ" imatrix "$tmp/none.gguf"
expect "imatrix unknown backend" 1 "$MIXQ" imatrix "$TINY" --backend warp
cp "$TINY" "$tmp/tiny-copy.gguf"
expect "imatrix -o the model itself" 2 "$MIXQ" imatrix "$tmp/tiny-copy.gguf" -o "$tmp/tiny-copy.gguf"
cmp -s "$TINY" "$tmp/tiny-copy.gguf" && { pass=$((pass + 1)); echo "ok   imatrix -o the model: model untouched"; } ||
    { fail=$((fail + 1)); echo "FAIL imatrix -o the model: model overwritten"; }
expect "imatrix unwritable output" 1 "$MIXQ" imatrix "$TINY" --ctx 32 --chunks 1 -o "$tmp/no-such-dir/im.gguf"
if [ -f "$SILERO" ]; then
    expect "imatrix of an ONNX model" 1 "$MIXQ" imatrix "$SILERO" -o "$tmp/im-x.gguf"
fi
# malformed imatrix files (tests/fuzz's corpus runs `mixq info` only, so they are here)
head -c 200 "$tmp/im.gguf" >"$tmp/im-truncated.gguf"
expect "quantize --imatrix truncated GGUF" 1 "$MIXQ" quantize "$TINY" --plan q4_k --imatrix "$tmp/im-truncated.gguf" -o "$tmp/im-x.gguf"
no_file "quantize --imatrix truncated GGUF" "$tmp/im-x.gguf"
printf '\001\000\000\000\023\000\000\000blk.0.attn_q.weight\001\000\000\000\300\000\000\000' >"$tmp/im-short.dat"
expect "quantize --imatrix truncated .dat" 1 "$MIXQ" quantize "$TINY" --plan q4_k --imatrix "$tmp/im-short.dat" -o "$tmp/im-x.gguf"
printf '\377\377\377\177' >"$tmp/im-absurd.dat"
expect "quantize --imatrix absurd .dat entry count" 1 "$MIXQ" quantize "$TINY" --plan q4_k --imatrix "$tmp/im-absurd.dat" -o "$tmp/im-x.gguf"
expect "quantize --imatrix a model file" 1 "$MIXQ" quantize "$TINY" --plan q4_k --imatrix "$TINY" -o "$tmp/im-x.gguf"

# --shapes (ONNX input shapes, trtexec's syntax) on a model with dynamic H and W (the
# fuzz corpus's ok-dynamic-dims: x [batch, 3, H, W] -> Relu) and a static one (ok-conv)
if python3 tests/fuzz/make-onnx-corpus.py "$tmp/corpus" >/dev/null 2>&1; then
    DYN=$tmp/corpus/ok-dynamic-dims.onnx CONV=$tmp/corpus/ok-conv.onnx
    expect "info dynamic ONNX without --shapes" 0 "$MIXQ" info "$DYN"
    expect "memory dynamic ONNX without --shapes" 1 "$MIXQ" memory "$DYN" --plan f16 --no-measure
    grep_err "dynamic ONNX names the input, the dimension and --shapes" \
        "input 'x' has a dynamic dimension 2 \('H'\): give its size with --shapes 'x:1x3x<H>x<W>'"
    expect "profile dynamic ONNX without --shapes" 1 "$MIXQ" profile "$DYN" --out "$tmp/prof-dyn" --no-cache
    expect "info --shapes" 0 "$MIXQ" info "$DYN" --shapes x:1x3x16x24
    grep_out "info --shapes: the inference's shape" 'one inference: 1 x 3 x 16 x 24'
    grep_out "info --shapes: the shapes given" '^shapes +x:1x3x16x24 \(given\)'
    expect "memory --shapes" 0 "$MIXQ" memory "$DYN" --shapes x:1x3x16x24 --plan f16 --no-measure
    expect "--shapes unknown input" 1 "$MIXQ" info "$DYN" --shapes images:1x3x16x24
    grep_err "--shapes unknown input lists the inputs" "has no input 'images' to give a shape \(its inputs: 'x'\)"
    expect "--shapes wrong rank" 1 "$MIXQ" memory "$DYN" --shapes x:1x3x16 --plan f16 --no-measure
    expect "--shapes against a fixed size" 1 "$MIXQ" info "$CONV" --shapes x:1x4x8x8
    expect "--shapes zero dimension" 2 "$MIXQ" info "$DYN" --shapes x:1x3x0x24
    expect "--shapes negative dimension" 2 "$MIXQ" info "$DYN" --shapes x:1x3x-16x24
    expect "--shapes garbage" 2 "$MIXQ" info "$DYN" --shapes 'x=1,3,16,24'
    expect "--shapes trailing comma" 2 "$MIXQ" info "$DYN" --shapes x:1x3x16x24,
    expect "--shapes input twice" 2 "$MIXQ" info "$DYN" --shapes x:1x3x16x24,x:1x3x8x8
    for cmd in eval profile sensitivity search tune memory export; do
        expect "$cmd takes --shapes (bad syntax is a usage error)" 2 "$MIXQ" "$cmd" "$DYN" --shapes x:1xx3
    done
    # a front.yaml records its tune's --shapes (model.shapes); a plan from it loads the model
    # with them unless --shapes is given
    printf 'mixq_schema: front/1\nmodel: {path: %s, content_hash: "0", shapes: "x:1x3x16x24", layers: 0}\n%s\n' \
        "$DYN" 'chosen: {index: 0}
points:
- index: 0
  plan: {default: f16}' >"$tmp/front-dyn.yaml"
    expect "memory with a front's shapes" 0 "$MIXQ" memory "$DYN" --plan "$tmp/front-dyn.yaml" --no-measure
    grep_err "memory says the front's shapes" "shapes x:1x3x16x24 \(the front's, from its tune\)"
    expect "memory --shapes over the front's" 0 "$MIXQ" memory "$DYN" --plan "$tmp/front-dyn.yaml" --no-measure \
        --shapes x:1x3x8x8
    if grep -q "the front's" "$tmp/err"; then
        fail=$((fail + 1)); echo "FAIL memory --shapes over the front's: stderr names the front's shapes"
    else
        pass=$((pass + 1)); echo "ok   memory --shapes over the front's says nothing of them"
    fi
    # --inputs (NumPy arrays) and the generic quality measure, on ok-typed-constant (x [batch,
    # 64] -> MatMul -> Softmax) and ok-dynamic-dims; tests/cli/make-inputs.py writes the arrays
    TYPED=$tmp/corpus/ok-typed-constant.onnx IN=$tmp/inputs
    if python3 tests/cli/make-inputs.py "$IN"; then
        expect "eval of a model without a task: synthetic inputs" 0 "$MIXQ" eval "$TYPED" --plan q4_0
        grep_out "eval says the inputs are synthetic" '^also +8 synthetic samples \(seeded random\); loss: KL of 1 output'
        grep_out "eval: the generic metric is SQNR" '^sqnr_db +[0-9.]+ \(full precision inf; higher is better\)'
        expect "eval --inputs a folder of .npz" 0 "$MIXQ" eval "$TYPED" --plan q4_0 --inputs "$IN/set"
        grep_out "eval --inputs: three samples" "^kl +mean [0-9.e-]+ .* over 3 samples"
        expect "eval --inputs a .npy (f8)" 0 "$MIXQ" eval "$TYPED" --plan q4_0 --inputs "$IN/one.npy"
        expect "eval --inputs a dynamic model: the array gives the size" 0 "$MIXQ" eval "$DYN" --plan f16 \
            --inputs "$IN/dyn.npy"
        grep_out "eval --inputs: relative MSE of a raw output" '^rel_mse +mean 0 '
        for bad in wrongname.npz extra.npz compressed.npz rank.npy dtype.npy size.npy zero.npy trunc.npy \
            notnpy.npy missing.npz; do
            expect "eval --inputs $bad: one error line" 1 "$MIXQ" eval "$TYPED" --plan q4_0 --inputs "$IN/$bad"
        done
        grep_err "--inputs of a missing file names it" "cannot open '.*missing\.npz'"
        expect "eval --inputs against --shapes" 1 "$MIXQ" eval "$DYN" --plan f16 --inputs "$IN/dyn.npy" \
            --shapes x:1x3x8x4
        grep_err "--inputs against --shapes names both" "dimension 3 is 4 \(--shapes\), the array's 8"
        expect "eval of a model without a task given a text" 1 "$MIXQ" eval "$TYPED" --text "$tmp/corpus/ok-conv.onnx"
        expect "tune --inputs with a wrong array stops before measuring" 1 "$MIXQ" tune "$TYPED" \
            --inputs "$IN/rank.npy" --out "$tmp/tune-in-bad" --no-cache
        expect "sensitivity --inputs wrong name" 1 "$MIXQ" sensitivity "$TYPED" --inputs "$IN/wrongname.npz" \
            --out "$tmp/sens-in-bad" --no-cache
        expect "tune --inputs on a GGUF model" 1 "$MIXQ" tune "$TINY" --inputs "$IN/one.npy"
        expect "tune --inputs a folder" 0 "$MIXQ" -q tune "$TYPED" --inputs "$IN/set" --out "$tmp/tune-in" --no-cache
        grep_out "tune --inputs: the evaluation line names the folder" "^evaluation +$IN/set, every sample"
        grep_out "tune --inputs: a chosen plan" '^chosen +front point [0-9]+'
        expect "tune without inputs: synthetic" 0 "$MIXQ" -q tune "$TYPED" --out "$tmp/tune-syn" --no-cache
        grep_out "tune without inputs says the data are synthetic" '^evaluation +SYNTHETIC inputs: 8 seeded random samples'
        grep_out "tune: loss KL for a softmax output" '^sensitivity +measured \(loss kl\)'
    else
        fail=$((fail + 1)); echo "FAIL --inputs: tests/cli/make-inputs.py did not run"
    fi
else
    fail=$((fail + 1)); echo "FAIL --shapes: tests/fuzz/make-onnx-corpus.py did not run"
fi
expect "--shapes on a GGUF model" 1 "$MIXQ" info "$TINY" --shapes x:1x3
grep_err "--shapes on a GGUF model says ONNX only" "input shapes \(--shapes\) apply to ONNX models only"

echo "cli tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
