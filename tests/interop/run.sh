#!/bin/bash
# tests/interop/run.sh - the interop tier (make check-interop): mixq against llama.cpp's
# own tools, built from the llama.cpp source that the llama-cpp-python sdist vendors
# (scripts/build-llama-cpp), on the bundled model and on SmolLM2-135M (scripts/fetch-models).
#
#   MIXQ=build/mixq tests/interop/run.sh
#
# 1. tokenizers: every vocabulary llama.cpp tests (models/ggml-vocab-*.gguf .inp/.out);
#    then a varied sample text (tests/interop/tokenize-sample.txt) through llama-tokenize
#    and mixq, for tinyllm and SmolLM2: the ids must be identical;
# 2. dequantization: every tensor llama-quantize writes in every source type, bit for bit,
#    and quantization: ggml's quantizers against mixq's on real and synthetic rows
#    (tests/interop/check-quant.sh); then whole files: mixq quantize --plan TYPE against
#    llama-quantize --pure TYPE for every format, with and without an importance matrix
#    (check-quantize-files.sh);
# 3. perplexity and next-token distributions: mixq evaluates a model and saves its
#    log-probabilities (eval --save-logits, llama-perplexity's format); llama-perplexity
#    --kl-divergence runs llama.cpp on the same tokens and reports its perplexity and the
#    KL divergence KL(mixq || llama.cpp). Models: tinyllm (f32, requantized to q8_0 and
#    q4_0 by llama-quantize --pure, and its Q4_K_M and Q6_K presets), SmolLM2 (as
#    shipped in q4_1, requantized to f16, q8_0, q4_0 by llama-quantize --pure, and its
#    Q4_K_M and Q6_K presets), a synthetic model of every architecture mixq runs (llama,
#    qwen2, qwen3, phi3, gemma, gemma2, gemma3: tests/golden/arch/manifest) and, where it
#    was fetched, Qwen2.5-Coder-1.5B-Instruct as shipped (Q4_K_M);
# 4. ONNX Runtime on the ONNX models (check-onnx.sh);
# 5. the memory model within 5% of the measured peak RSS (check-memory.sh);
# 6. mixq quantize / export --to llama.cpp against llama-perplexity and llama-quantize
#    (check-export.sh), and export --to onnxruntime applied by onnxruntime.quantization
#    (check-ort-recipe.sh);
# 7. llama.cpp's presets as plans: mixq quantize --plan PRESET against llama-quantize
#    PRESET, tensor types, fallbacks, file type and bytes (check-presets.sh);
# 8. mixq imatrix against llama-imatrix, and the importance matrix mixq tune computes
#    carried through front.yaml to mixq quantize and to the exported llama-quantize
#    recipe, whose file must be byte-identical (check-imatrix.sh);
# 9. quality on both bundled models (tinyllm, and tinyllm256 whose every layer can take
#    every K-quant): mixq tune --size N at the size N of each of
#    llama-quantize's Q3_K_M, Q4_K_M and Q5_K_M files (made with llama-imatrix's importance
#    matrix on the calibration text), measured by llama-perplexity --kl-divergence on text
#    neither tool read (examples/data/austen-eval.txt); mixq computes its own importance
#    matrix on the same text (with the Gram matrices of its error-compensated quantization).
#    Issue 15's goal is the step's bar: every mixq file no larger and at most 0.85x the
#    preset's KL (tinyllm: measured 0.69x, 0.66x, 0.54x when it was set; tinyllm256: 0.66x,
#    0.74x, and at Q5_K_M 0.97x, which misses the goal, so 1.05x guards it there;
#    scripts/compare-presets).
# 10. mixq tune --runtime llama.cpp on both bundled-size models (tinyllm, SmolLM2): every
#    validated plan written as a GGUF file, timed by llama-bench and its KL measured by
#    llama-perplexity; front.yaml must record llama.cpp's figures for every measured plan,
#    mixq's KL and llama.cpp's must agree within the KL tolerances below plus 10% of the
#    KL (their short texts make large KLs noisy: 0.216 / 0.201 for SmolLM2's Q3_K_M over
#    one chunk), and the table of
#    both tools' latencies per plan and the median gap is printed (issue 18).
#
# Tolerances, and why (ppl: |ppl_llama / ppl_mixq - 1|; kl: mean KL divergence):
#   float weights (tinyllm f32, SmolLM2 f16): ppl 1e-3, kl 1e-4. Same arithmetic up to
#     summation order; llama.cpp rounds activations to f16 for f16 weights (mixq keeps
#     f32); the logits file stores log-probabilities in 16-bit steps of 16/65535 nats.
#   tinyllm q8_0 / q4_0: ppl 2e-3, kl 5e-4. Both quantize activations to Q8_0 blocks, but
#     with different rounding (ggml's SIMD quantizer rounds half to even and scales by
#     127/amax; mixq follows ggml's reference: half away from zero, 1/(amax/127)), so a
#     few activation codes differ.
#   SmolLM2 integer formats (q8_0, q4_0, and q4_1 as shipped, which mixq runs as f32
#     while llama.cpp quantizes activations to Q8_1): ppl 2e-2, kl 1.5e-2. SmolLM2 has
#     outlier channels: a block holding one large activation quantizes its other 31
#     values with a coarse step, so a rounding difference anywhere changes a code by a
#     large relative amount and the difference propagates through attention to every
#     later token. Two exact implementations of the same arithmetic differ by this much:
#     mixq's cpu and ref backends, whose Q8_0 activation codes are bit-identical and
#     whose only difference is float summation order, are KL 0.004 apart on SmolLM2
#     q8_0, the same size as the q8_0-vs-f32 loss itself (see the closing notes).
#
# Exit status: 0 all passed, 1 a check failed, 77 when llama.cpp cannot be built or the
# model cannot be fetched here (no network): the tier is skipped, and says so.
set -u
cd "$(dirname "$0")/../.." || exit 1
# llama.cpp's tools run without their extra CPU buffer types (weight repacking and AMX;
# llama-perplexity's --no-repack), here and in every script this calls: on a CPU with AMX
# (this machine's Xeon has AMX-INT8) the pinned llama.cpp's AMX matmul crashes on
# quantized files (llama.cpp #20824; every Q4_0/Q8_0/K-quant case failed so in a clean
# clone here), and the plain CPU kernels are llama.cpp's reference arithmetic
export LLAMA_ARG_REPACK=0
MIXQ=${MIXQ:-build/mixq}
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
note() { echo "== [${SECONDS}s] $*"; } # seconds since the tier started: where CI time goes
bad() { echo "FAIL $*"; fail=1; }

LLAMA_BIN=$(scripts/build-llama-cpp 2>"$tmp/build.err" | tail -1)
if [ ! -x "$LLAMA_BIN/llama-perplexity" ]; then
    echo "interop: skipped: llama.cpp could not be built here: $(tail -1 "$tmp/build.err")"
    exit 77
fi
SMOL=$(scripts/fetch-models smollm2 2>"$tmp/fetch.err" | tail -1)
if [ ! -f "$SMOL" ]; then
    echo "interop: skipped: SmolLM2 could not be fetched: $(tail -1 "$tmp/fetch.err")"
    exit 77
fi
TINY=examples/tinyllm/tinyllm.gguf
TINY256=examples/tinyllm256/tinyllm256.gguf
TEXT=examples/data/kjv-eval.txt
cache=.cache/interop
mkdir -p "$cache"
# the real qwen2 model (issue 16), only where it was fetched: it is 1.1 GB in 22 wheels
QWEN=models/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf
[ -f "$QWEN" ] || { echo "interop: Qwen2.5-Coder-1.5B skipped: not fetched (scripts/fetch-models qwen2.5-coder-1.5b)"; QWEN=; }

note "tokenizers: llama.cpp's vocabulary tests"
BUILD=$BUILD tests/interop/check-tokenizers.sh || bad "check-tokenizers"

note "tokenization of a varied sample (tests/interop/tokenize-sample.txt)"
driver=$BUILD/interop/tokenize-vocab # built by check-tokenizers.sh
for model in "$TINY" "$SMOL" $QWEN; do
    "$LLAMA_BIN/llama-tokenize" -m "$model" -f tests/interop/tokenize-sample.txt --ids --no-escape \
        --log-disable 2>/dev/null | tr -d '[],' | tr -s ' ' '\n' | sed '/^$/d' >"$tmp/llama.ids"
    "$driver" --ids-special "$model" tests/interop/tokenize-sample.txt | tr ' ' '\n' | sed '/^$/d' >"$tmp/mixq.ids"
    n=$(wc -l <"$tmp/llama.ids")
    if [ "$n" -gt 0 ] && cmp -s "$tmp/llama.ids" "$tmp/mixq.ids"; then
        echo "ok   $(basename "$model"): $n tokens identical"
    else
        bad "$(basename "$model"): token ids differ from llama-tokenize ($n vs $(wc -l <"$tmp/mixq.ids"))"
        diff "$tmp/llama.ids" "$tmp/mixq.ids" | head -6
    fi
done

note "dequantization of every source type against ggml's, and ggml's quantizers"
tests/interop/check-quant.sh || bad "check-quant"
note "mixq quantize against llama-quantize --pure, every format, with and without an imatrix"
MIXQ=$MIXQ BUILD=$BUILD LLAMA_BIN=$LLAMA_BIN SMOL=$SMOL tests/interop/check-quantize-files.sh ||
    bad "check-quantize-files"

BUILD=$BUILD tests/interop/check-onnx.sh; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 77 ] || bad "check-onnx"
BUILD=$BUILD MIXQ=$MIXQ tests/interop/check-ort-recipe.sh; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 77 ] || bad "check-ort-recipe"

note "memory model against measured peak RSS (SmolLM2, synthetic 1B)"
MIXQ=$MIXQ SMOL=$SMOL tests/interop/check-memory.sh || bad "check-memory"

note "mixq quantize and export --to llama.cpp against llama-perplexity and llama-quantize"
MIXQ=$MIXQ LLAMA_BIN=$LLAMA_BIN SMOL=$SMOL tests/interop/check-export.sh || bad "check-export"

note "llama.cpp's presets: mixq quantize --plan PRESET against llama-quantize PRESET"
MIXQ=$MIXQ BUILD=$BUILD LLAMA_BIN=$LLAMA_BIN SMOL=$SMOL tests/interop/check-presets.sh || bad "check-presets"
note "mixq imatrix against llama-imatrix"; MIXQ=$MIXQ BUILD=$BUILD LLAMA_BIN=$LLAMA_BIN SMOL=$SMOL tests/interop/check-imatrix.sh || bad "check-imatrix"

note "perplexity and KL divergence against llama-perplexity"
requant() { # SRC TYPE OUT
    [ -f "$3" ] && return 0
    if "$LLAMA_BIN/llama-quantize" --allow-requantize --pure "$1" "$3.tmp" "$2" >"$tmp/q.log" 2>&1; then
        mv "$3.tmp" "$3"
    else
        bad "llama-quantize $2 of $1: $(tail -1 "$tmp/q.log")"
    fi
}
# model  mixq-plan  ctx  chunks  ppl-tolerance  kl-tolerance  label
cases=(
    "$TINY f32 256 16 1e-3 1e-4 tinyllm-f32"
    "$cache/tiny-Q8_0.gguf source 256 16 2e-3 5e-4 tinyllm-q8_0"
    "$cache/tiny-Q4_0.gguf source 256 16 2e-3 5e-4 tinyllm-q4_0"
    "$cache/smol-F16.gguf source 512 4 1e-3 1e-4 smollm2-f16"
    "$cache/smol-Q8_0.gguf source 512 4 2e-2 1.5e-2 smollm2-q8_0"
    "$cache/smol-Q4_0.gguf source 512 4 2e-2 1.5e-2 smollm2-q4_0"
    "$SMOL f32 512 4 2e-2 1.5e-2 smollm2-q4_1-as-shipped"
    "$cache/tiny-Q4_K_M.gguf source 256 16 2e-3 5e-4 tinyllm-Q4_K_M"
    "$cache/tiny-Q6_K.gguf source 256 16 2e-3 5e-4 tinyllm-Q6_K"
    "$cache/smol-Q4_K_M.gguf source 512 4 2e-2 1.5e-2 smollm2-Q4_K_M"
    "$cache/smol-Q6_K.gguf source 512 4 2e-2 1.5e-2 smollm2-Q6_K"
)
# every architecture of llm/arch.h: its synthetic model (f32, random weights, the shapes and
# options tests/golden/arch/manifest gives) against llama.cpp, live
if MIXQ=$MIXQ scripts/make-arch-golden --models "$cache" >"$tmp/synth.list"; then
    while read -r path ctx chunks; do
        cases+=("$path f32 $ctx $chunks 1e-3 1e-4 $(basename "$path" .gguf)-f32")
    done <"$tmp/synth.list"
else
    bad "scripts/make-arch-golden --models: the synthetic models could not be written"
fi
[ -n "$QWEN" ] && cases+=("$QWEN source 512 2 2e-2 1.5e-2 qwen2.5-1.5b-as-shipped")
preset() { # SRC PRESET OUT: llama-quantize's preset, as users make it
    [ -f "$3" ] && return 0
    if "$LLAMA_BIN/llama-quantize" --allow-requantize "$1" "$3.tmp" "$2" >"$tmp/q.log" 2>&1; then
        mv "$3.tmp" "$3"
    else
        bad "llama-quantize $2 of $1: $(tail -1 "$tmp/q.log")"
    fi
}
for p in Q4_K_M Q6_K; do preset "$TINY" $p "$cache/tiny-$p.gguf"; preset "$SMOL" $p "$cache/smol-$p.gguf"; done
requant "$TINY" Q8_0 "$cache/tiny-Q8_0.gguf"
requant "$TINY" Q4_0 "$cache/tiny-Q4_0.gguf"
for t in F16 Q8_0 Q4_0; do requant "$SMOL" "$t" "$cache/smol-$t.gguf"; done
printf '%-26s %12s %12s %10s %12s %10s\n' case ppl_mixq ppl_llama ppl_rel kl_mean same_top
for c in "${cases[@]}"; do
    read -r model plan ctx chunks ptol ktol label <<<"$c"
    [ -f "$model" ] || { bad "$label: no model $model"; continue; }
    out=$("$MIXQ" -q eval "$model" --plan "$plan" --ctx "$ctx" --chunks "$chunks" --no-kl \
        --text "$TEXT" --save-logits "$tmp/$label.logits") || { bad "$label: mixq eval failed"; continue; }
    ppl_m=$(echo "$out" | awk '/^ppl /{print $2}')
    tests/interop/llama-ppl.sh "$LLAMA_BIN" "$model" "$TEXT" "$ctx" "$chunks" "$tmp/$label.logits" \
        "$tmp/$label.txt" || { bad "$label: llama-perplexity failed: $(tail -2 "$tmp/$label.txt" | head -1)"; continue; }
    ppl_l=$(awk -F: '/^Mean PPL\(Q\) +:/{split($2,a," "); print a[1]}' "$tmp/$label.txt")
    kld=$(awk -F: '/^Mean    KLD/{split($2,a," "); print a[1]}' "$tmp/$label.txt")
    same=$(awk -F: '/^Same top p/{split($2,a," "); print a[1]}' "$tmp/$label.txt")
    verdict=$(awk -v m="$ppl_m" -v l="$ppl_l" -v k="$kld" -v pt="$ptol" -v kt="$ktol" 'BEGIN {
        r = l / m - 1; if (r < 0) r = -r;
        printf "%.2e %s", r, (m > 0 && l > 0 && r <= pt && k <= kt) ? "ok" : "FAIL" }')
    printf '%-26s %12s %12s %10s %12s %9s%%  %s (tolerances ppl %s, kl %s)\n' "$label" "$ppl_m" "$ppl_l" \
        "${verdict% *}" "$kld" "$same" "${verdict#* }" "$ptol" "$ktol"
    [ "${verdict#* }" = ok ] || fail=1
done

note "quality: mixq tune --size (each preset's bytes) against llama.cpp's Q3_K_M, Q4_K_M, Q5_K_M, on held-out text"
# model, presets, bar: tinyllm256's Q5_K_M misses the goal (0.97x measured when this was
# set, 0.66x and 0.74x at Q3_K_M and Q4_K_M): its bar there guards against regressions
while read -r model presets bar; do
    out=$BUILD/interop/compare-presets-$(basename "$model" .gguf)-${presets//,/-}
    MIXQ=$MIXQ scripts/compare-presets "$model" --presets "$presets" --fail-above "$bar" --out "$out" ||
        bad "compare-presets: a mixq plan for $model ($presets) is larger than its preset or has ${bar}x its KL or more (see $out)"
done <<LIST
$TINY Q3_K_M,Q4_K_M,Q5_K_M 0.85
$TINY256 Q3_K_M,Q4_K_M 0.85
$TINY256 Q5_K_M 1.05
LIST

note "mixq tune --runtime llama.cpp: every validated plan measured in llama.cpp too"
mkdir -p "$BUILD/interop"
# model, label, |KL mixq - KL llama.cpp| tolerance (step 3's, plus 10%), tune options (SmolLM2:
# sized for CI, a quick proxy tune over five formats)
while read -r model label ktol opts; do
    out=$BUILD/interop/runtime-$label
    rm -rf "$out"
    # shellcheck disable=SC2086 # opts is a list of options
    if ! "$MIXQ" tune "$model" --runtime "llama.cpp=$LLAMA_BIN" --out "$out" --no-plots $opts >"$out.log" 2>&1; then
        bad "tune --runtime llama.cpp on $label: $(grep -m1 '^mixq: error' "$out.log" || tail -1 "$out.log")"
        continue
    fi
    python3 - "$out/front.yaml" "$label" "$ktol" <<'PY' || bad "tune --runtime llama.cpp on $label: front.yaml (above)"
import statistics, sys, yaml
f = yaml.safe_load(open(sys.argv[1]))
label, ktol = sys.argv[2], float(sys.argv[3])
ok = f.get("runtime", {}).get("name") == "llama.cpp"
rows, gaps, ratios = [], [], []
items = [("point %d" % p["index"], p) for p in f["points"]] + [(b["label"], b) for b in f.get("baselines") or []]
for name, p in items:
    m = p.get("measured")
    if not m:
        continue
    r = m.get("runtime")
    if not r or not r["latency_us"] > 0 or r["reps"] < 1:
        print("FAIL %s %s: no llama.cpp figures" % (label, name)); ok = False; continue
    d = abs(m["kl"] - r["kl"])
    good = d <= ktol + 0.1 * abs(r["kl"])
    ok &= good
    if r["predicted_latency_gap"] == r["predicted_latency_gap"]:  # NaN: a plan outside the searched formats
        gaps.append(r["predicted_latency_gap"])
    ratios.append(m["latency_us"] / r["latency_us"])
    rows.append("  %-4s %-24.24s mixq %9.1f us  llama.cpp %9.1f us (MAD %6.1f)  gap %+6.1f%%  KL %.5f / %.5f  %s"
                % (label[:4], name, m["latency_us"], r["latency_us"], r["latency_mad_us"],
                   100 * r["predicted_latency_gap"], m["kl"], r["kl"], "ok" if good else "FAIL (KL apart %.3g)" % d))
print("\n".join(rows))
if ratios:
    print("%s: %d plans; median gap of mixq's predicted latency from llama.cpp's measured %+.1f%%; mixq's measured / "
          "llama.cpp's latency: median %.3fx" % (label, len(ratios), 100 * statistics.median(gaps) if gaps else float("nan"), statistics.median(ratios)))
sys.exit(0 if ok and rows else 1)
PY
done <<LIST
$TINY tinyllm 5e-4 --ctx 128 --chunks 2
$SMOL smollm2 1.5e-2 --sensitivity proxy --max-seconds 0.1 --no-memory --ctx 256 --chunks 1 --formats q8_0,q4_0,q4_k,q5_k,q6_k --workload decode:256 --no-imatrix
LIST

if [ "$fail" -eq 0 ]; then
    echo "interop: all passed in ${SECONDS}s"
else
    echo "interop: FAILED"
fi
exit "$fail"
