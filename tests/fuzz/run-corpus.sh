#!/usr/bin/env bash
# tests/fuzz/run-corpus.sh - runs `mixq info` on every file of a GGUF or ONNX corpus.
#
#     MIXQ=build/mixq tests/fuzz/run-corpus.sh DIR
#
# DIR is written by tests/fuzz/make-gguf-corpus.py or make-onnx-corpus.py. For each file:
#   bad-*.gguf, bad-*.onnx  must exit with status 1 and print exactly one line on stderr, starting
#               with "mixq: error: " (malformed, or valid but unsupported);
#   ok-*.gguf, ok-*.onnx    must exit 0 or 1 (a valid GGUF file need not be a model mixq runs);
# and no file may crash mixq, hang it (MIXQ_CORPUS_TIMEOUT seconds, default 20), or make
# a sanitizer print anything. Other files are ignored. Prints one line per violation and
# a summary; exits 1 on any violation, 2 on bad usage.
set -u

usage() {
    echo "usage: MIXQ=path/to/mixq $0 DIR" >&2
    exit 2
}

[ $# -eq 1 ] || usage
dir=$1
mixq=${MIXQ:-}
[ -n "$mixq" ] || usage
if [ ! -x "$mixq" ]; then
    echo "run-corpus: '$mixq' is not an executable" >&2
    exit 2
fi
if [ ! -d "$dir" ]; then
    echo "run-corpus: '$dir' is not a directory" >&2
    exit 2
fi
limit=${MIXQ_CORPUS_TIMEOUT:-20}
have_timeout=no
command -v timeout >/dev/null 2>&1 && have_timeout=yes

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mixq-corpus.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# What sanitizers and the C runtime print when something goes wrong.
crash_re='AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|MemorySanitizer|ThreadSanitizer|runtime error:|Segmentation fault|Aborted|internal error|assertion'

n_files=0 n_bad=0 n_ok=0 n_fail=0 n_skipped=0

fail() { # file, reason
    n_fail=$((n_fail + 1))
    echo "FAIL $1: $2"
    # show what mixq printed, indented, so that the report says why
    if [ -s "$tmp/err" ]; then
        head -n 20 "$tmp/err" | sed 's/^/    | /'
    fi
}

shopt -s nullglob
for f in "$dir"/*; do
    name=$(basename -- "$f")
    case $name in
    bad-*.gguf | bad-*.onnx) kind=bad ;;
    ok-*.gguf | ok-*.onnx) kind=ok ;;
    *)
        n_skipped=$((n_skipped + 1))
        continue
        ;;
    esac
    n_files=$((n_files + 1))
    if [ "$kind" = bad ]; then n_bad=$((n_bad + 1)); else n_ok=$((n_ok + 1)); fi
    if [ $have_timeout = yes ]; then
        timeout -k 5 "$limit" "$mixq" info "$f" >"$tmp/out" 2>"$tmp/err" </dev/null
    else
        "$mixq" info "$f" >"$tmp/out" 2>"$tmp/err" </dev/null
    fi
    rc=$?

    if [ $have_timeout = yes ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
        fail "$name" "timed out after ${limit}s (exit $rc)"
        continue
    fi
    if [ $rc -ge 128 ]; then
        fail "$name" "killed by signal $((rc - 128))"
        continue
    fi
    # (mixq's own error lines may quote text from the file, so they are not searched)
    if grep -v '^mixq: error: ' "$tmp/err" | grep -Eq "$crash_re"; then
        fail "$name" "crash or sanitizer report (exit $rc)"
        continue
    fi
    if [ "$kind" = bad ]; then
        lines=$(wc -l <"$tmp/err")
        if [ $rc -ne 1 ]; then
            fail "$name" "exit status $rc, want 1"
        elif [ "$lines" -ne 1 ]; then
            fail "$name" "$lines lines on stderr, want exactly one"
        elif ! head -n 1 "$tmp/err" | grep -q '^mixq: error: '; then
            fail "$name" "stderr does not start with 'mixq: error: '"
        fi
    else
        if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
            fail "$name" "exit status $rc, want 0 or 1"
        fi
    fi
done

if [ $n_files -eq 0 ]; then
    echo "run-corpus: no bad-* or ok-* model files in '$dir'" >&2
    exit 1
fi
ignored=""
[ $n_skipped -gt 0 ] && ignored=" ($n_skipped other files ignored)"
echo "corpus: $n_files files ($n_bad malformed, $n_ok valid): $((n_files - n_fail)) passed, $n_fail failed$ignored"
[ $n_fail -eq 0 ]
