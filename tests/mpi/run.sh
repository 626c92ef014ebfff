#!/bin/bash
# tests/mpi/run.sh - `mpirun -np 2 mixq ...` (core/dist.h): the ranks' results equal one
# process's exactly (sensitivity: measured and calibrated; imatrix, with Gram matrices),
# a tune completes, a killed rank ends the run with one line naming it and the rerun
# resumes from the cache, and a build without MPI refuses a launch of several ranks.
# Usage: MIXQ=build/mixq MIXQ_MPI=yes|no tests/mpi/run.sh   (from the repository root)
# Skips (exit 77), saying why, where mixq was built without MPI or mpirun is missing.
set -u
MIXQ=${MIXQ:-build/mixq}
CC=${CC:-cc}
TINY=examples/tinyllm/tinyllm.gguf
TINY256=examples/tinyllm256/tinyllm256.gguf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "${2:-}" ] && sed 's/^/     /' "$2" | tail -8; }

# A build without MPI, under a launcher's environment: one line from rank 0, none from
# the others (core/dist.c alone, compiled without MQ_WITH_MPI)
if $CC -std=c11 -D_GNU_SOURCE -I. -o "$tmp/refuse" tests/mpi/refuse.c core/dist.c core/status.c core/log.c \
    -lpthread 2>"$tmp/cc.err"; then
    OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$tmp/refuse" >"$tmp/out" 2>"$tmp/err"
    r0=$?
    OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 "$tmp/refuse" >>"$tmp/out" 2>"$tmp/err1"
    r1=$?
    if [ $r0 -eq 1 ] && [ $r1 -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && [ ! -s "$tmp/err1" ] &&
        grep -q '^mixq: error: started by an MPI launcher with 2 ranks, but this mixq was built without MPI' "$tmp/err"; then
        ok "a build without MPI refuses 2 ranks in one line, from rank 0 only"
    else
        bad "a build without MPI under 2 ranks (exit $r0/$r1)" "$tmp/err"
    fi
    PMI_SIZE=1 "$tmp/refuse" >"$tmp/out" 2>"$tmp/err"
    if grep -q '^rc 0 worker 0' "$tmp/out" && [ ! -s "$tmp/err" ]; then
        ok "a build without MPI runs one rank as a single process"
    else
        bad "a build without MPI, one rank" "$tmp/out"
    fi
else
    bad "build tests/mpi/refuse.c" "$tmp/cc.err"
fi

if [ "${MIXQ_MPI:-no}" != yes ]; then
    echo "mpi tests: $pass passed, $fail failed; the rest skipped: mixq was built without MPI" \
         "(scripts/install-deps installs libopenmpi-dev; make WITH_MPI=yes)"
    [ $fail -eq 0 ] && exit 77 || exit 1
fi
if ! command -v mpirun >/dev/null 2>&1; then
    echo "mpi tests: $pass passed, $fail failed; the rest skipped: no mpirun (scripts/install-deps installs openmpi-bin)"
    [ $fail -eq 0 ] && exit 77 || exit 1
fi
MPIRUN=(mpirun -q --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)

# same_layers NAME A B: two sensitivity.yaml files have equal losses, sources and metrics
same_layers() {
    if python3 - "$2" "$3" >"$tmp/cmp" 2>&1 <<'PY'
import sys, yaml
a, b = (yaml.safe_load(open(p)) for p in sys.argv[1:3])
assert a["layers"] == b["layers"], [(x["name"], x, y) for x, y in zip(a["layers"], b["layers"]) if x != y][:2]
assert a["evaluated"] == b["evaluated"] > 0, (a["evaluated"], b["evaluated"])
for k in ("rank_correlation", "calibration"):
    assert a.get(k) == b.get(k), (k, a.get(k), b.get(k))
PY
    then ok "$1"; else bad "$1" "$tmp/cmp"; fi
}

S=(--formats q8_0,q5_0,q4_k --ctx 64 --chunks 2 --no-cache --cache-dir "$tmp/nocache")
for method in measured calibrated; do
    "$MIXQ" -q sensitivity "$TINY" --sensitivity $method "${S[@]}" --threads 1 --out "$tmp/s1-$method" \
        >/dev/null 2>"$tmp/err" || bad "sensitivity $method, one process" "$tmp/err"
    "${MPIRUN[@]}" -np 2 "$MIXQ" -q sensitivity "$TINY" --sensitivity $method "${S[@]}" --out "$tmp/s2-$method" \
        >"$tmp/out" 2>"$tmp/err" || bad "sensitivity $method, mpirun -np 2" "$tmp/err"
    same_layers "sensitivity $method: 2 ranks give one process's losses exactly" \
        "$tmp/s1-$method/sensitivity.yaml" "$tmp/s2-$method/sensitivity.yaml"
done
if [ -s "$tmp/err" ]; then bad "sensitivity -q under mpirun: the ranks printed" "$tmp/err"; else
    ok "sensitivity -q under mpirun: no rank prints"; fi

I=(--ctx 64 --chunks 6 --gram)
"$MIXQ" -q imatrix "$TINY256" "${I[@]}" -o "$tmp/im1.gguf" >/dev/null 2>"$tmp/err" || bad "imatrix, one process" "$tmp/err"
"${MPIRUN[@]}" -np 2 "$MIXQ" -q imatrix "$TINY256" "${I[@]}" -o "$tmp/im2.gguf" >/dev/null 2>"$tmp/err" ||
    bad "imatrix, mpirun -np 2" "$tmp/err"
if cmp -s "$tmp/im1.gguf" "$tmp/im2.gguf"; then ok "imatrix: 2 ranks write one process's file byte for byte"; else
    bad "imatrix: 2 ranks' file differs from one process's"; fi

# a tune: imatrix and sensitivity over the ranks, search and validation on rank 0
"${MPIRUN[@]}" -np 2 "$MIXQ" tune --sensitivity measured --formats q8_0,q4_k --budget 1GB --latency 10s \
    --workload decode:16 --max-seconds 0.05 --ctx 64 --chunks 1 --calib-chunks 2 --no-plots \
    --cache-dir "$tmp/tcache" --out "$tmp/tune" >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 0 ] && grep -q '^chosen' "$tmp/out" && [ -s "$tmp/tune/front.yaml" ] &&
    grep -q 'evaluations over 2 MPI ranks' "$tmp/err" && grep -q 'imatrix: 2 chunks over 2 MPI ranks' "$tmp/err" &&
    grep -q '^mixq: warning: 2 MPI ranks share this machine' "$tmp/err" &&
    grep -q 'validation on the target (on MPI rank 0 alone' "$tmp/err" && ! grep -q '^mixq\[rank' "$tmp/err"; then
    ok "tune under mpirun -np 2: imatrix and evaluations over the ranks, a chosen plan, rank 1 silent"
else
    bad "tune under mpirun -np 2" "$tmp/err"
fi

# a worker whose model differs (MIXQ_MODEL_PATH names another file): rank 0 prints its one
# line; naming the same file under another path works
"${MPIRUN[@]}" -np 2 -x MIXQ_MODEL_PATH="$PWD/$TINY256" "$MIXQ" -q sensitivity "$TINY" --sensitivity measured \
    --formats q8_0 --ctx 64 --chunks 1 --no-cache --cache-dir "$tmp/nocache" --out "$tmp/w" >"$tmp/out" 2>"$tmp/err"
got=$?
if [ $got -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    grep -q "^mixq: error: rank 1: '.*tinyllm256.gguf' is not the model rank 0 loaded" "$tmp/err"; then
    ok "a rank with another model: one line from rank 0 naming the rank"
else
    bad "a rank with another model (exit $got)" "$tmp/err"
fi
cp "$TINY" "$tmp/copy.gguf"
"${MPIRUN[@]}" -np 2 -x MIXQ_MODEL_PATH="$PWD/$TINY" "$MIXQ" -q sensitivity "$tmp/copy.gguf" --sensitivity measured \
    --formats q8_0 --ctx 64 --chunks 1 --no-cache --cache-dir "$tmp/nocache" --out "$tmp/w" >"$tmp/out" 2>"$tmp/err" &&
    ok "MIXQ_MODEL_PATH: the workers open the same model under another path" ||
    bad "MIXQ_MODEL_PATH with the same model" "$tmp/err"

# a rank that dies: one line naming it; the rerun takes what was gathered from the cache
K=(--sensitivity measured --formats q8_0,q5_0,q4_k,q6_k --ctx 128 --chunks 4 --cache-dir "$tmp/kcache")
"${MPIRUN[@]}" -np 2 "$MIXQ" -q sensitivity "$TINY" "${K[@]}" --out "$tmp/k" >"$tmp/out" 2>"$tmp/err" &
run=$!
victim=""
for _ in $(seq 1 100); do # rank 1, once it has evaluated something
    for p in $(pgrep -f "sensitivity $TINY --sensitivity measured --formats q8_0,q5_0,q4_k,q6_k"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$p
    done
    [ -n "$victim" ] && [ "$(grep -rl ' data=' "$tmp/kcache" 2>/dev/null | wc -l)" -ge 6 ] && break
    sleep 0.1
done
[ -n "$victim" ] && kill -9 "$victim"
wait $run
got=$?
if [ -n "$victim" ] && [ $got -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] &&
    grep -q "^mixq: error: rank 1 (pid $victim) ended before the run did" "$tmp/err"; then
    ok "a killed rank: the run stops with one line naming it (exit $got)"
else
    bad "a killed rank (pid '${victim}', exit $got)" "$tmp/err"
fi
"${MPIRUN[@]}" -np 2 "$MIXQ" sensitivity "$TINY" "${K[@]}" --out "$tmp/k" >"$tmp/out" 2>"$tmp/err"
got=$?
total=$(grep -Eo '^mixq: measured sensitivity: [0-9]+ evaluations' "$tmp/err" | grep -Eo '[0-9]+ evaluations' |
    grep -Eo '[0-9]+')
read -r ev ca < <(grep -Eo '^[0-9]+ evaluated, [0-9]+ from the cache' "$tmp/out" | grep -Eo '[0-9]+' | tr '\n' ' ')
if [ $got -eq 0 ] && [ "${ca:-0}" -gt 0 ] && [ $((ev + ca)) -eq "${total:-0}" ]; then
    ok "after a killed rank the rerun completes, resuming from the cache ($(grep -Eo '[0-9]+ evaluated, [0-9]+ from the cache' "$tmp/out"))"
else
    bad "the rerun after a killed rank" "$tmp/out"
fi

echo "mpi tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
