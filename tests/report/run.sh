#!/bin/bash
# tests/report/run.sh - the comparison report (mixq compare) in a real browser: headless
# Chromium renders it and the check fails on any console error, failed load or external
# request (tests/report/check-html.py), keeping screenshots.
# Usage: MIXQ=build/mixq tests/report/run.sh [SHOTS_DIR]   (from the repository root)
# Exit 0 pass, 1 fail, 77 skip (no chromium, reason printed).
#
# First it proves that the check can fail: a page with a deliberate script error and a page
# that loads a missing external image must both fail it. Then it profiles the bundled model
# on the cpu backend twice (best path, and MIXQ_CPU_ISA=scalar), tunes it once for a front,
# writes the report and checks it with its plots.
set -u
MIXQ=${MIXQ:-build/mixq}
SHOTS=${1:-build/report-shots}
PYTHON=${PYTHON:-python3}
CHECK=tests/report/check-html.py
TINY=examples/tinyllm/tinyllm.gguf
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "report browser check: skip: chromium is not installed (Debian: apt-get install chromium)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$SHOTS"
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }

# the check must fail on a broken page
cat >"$tmp/script-error.html" <<'HTML'
<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>broken</title></head>
<body><p>A page with a deliberate script error.</p><script>notDefinedAnywhere();</script></body></html>
HTML
cat >"$tmp/external.html" <<'HTML'
<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>external</title></head>
<body><p>A page that loads a missing file.</p><img src="missing.png" alt="missing"></body></html>
HTML
for page in script-error external; do
    "$PYTHON" "$CHECK" "$tmp/$page.html" --shot "$tmp/$page.png" >"$tmp/$page.out" 2>&1
    rc=$?
    if [ $rc -eq 1 ] && grep -q 'FAIL' "$tmp/$page.out"; then
        ok "browser check fails on $page.html"
    else
        bad "browser check passes $page.html (exit $rc): it cannot fail"
        sed 's/^/     /' "$tmp/$page.out"
    fi
done
grep -q 'uncaught exception: ReferenceError: notDefinedAnywhere' "$tmp/script-error.out" &&
    ok "browser check names the script error" || bad "browser check does not name the script error"

# a real report: two targets and a front of the bundled model
"$MIXQ" -q profile "$TINY" --out "$tmp/cpu" --max-seconds 0.05 --no-memory --no-plots >/dev/null &&
    MIXQ_CPU_ISA=scalar "$MIXQ" -q profile "$TINY" --out "$tmp/scalar" --max-seconds 0.05 --no-memory \
        --no-plots >/dev/null &&
    "$MIXQ" -q tune --sensitivity proxy --budget 9MB --max-seconds 0.05 --no-memory --no-plots \
        --out "$tmp/tune" >/dev/null || { bad "profiling the bundled model for the report"; exit 1; }
"$MIXQ" -q compare "$tmp/cpu/profile.yaml" "$tmp/scalar/profile.yaml" --fronts "$tmp/tune/front.yaml" \
    -o "$tmp/report" >"$tmp/compare.out" || { bad "mixq compare"; cat "$tmp/compare.out"; exit 1; }
ok "mixq compare wrote the report"
want=9 # e2e, speed-up, 2 x (roofline, layer times), 3 front views
command -v gnuplot >/dev/null 2>&1 || want=0
if "$PYTHON" "$CHECK" "$tmp/report/report.html" --shot "$SHOTS/report-full.png" --top "$SHOTS/report-top.png" \
    --min-plots $want; then
    ok "report renders without console errors ($SHOTS/report-full.png)"
else
    bad "report in the browser"
fi
exit $fail
