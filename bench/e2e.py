#!/usr/bin/env python3
"""bench/e2e.py - mixq's forward pass beside llama.cpp's llama-bench, alternately, in one run.

SmolLM2-135M (scripts/fetch-models) is requantized by llama.cpp's own llama-quantize:
lower-case names with --pure (every tensor gets the type, token_embd included: f16, q8_0,
q4_0, q4_k, q6_k, ...), upper-case preset names as llama-quantize's presets (Q4_K_M, Q6_K:
the files users deploy, their per-tensor mixture and fallbacks included). mixq runs each
file as stored. For each file, ROUNDS rounds alternate: build/bench-e2e (mixq: pp512 and
tg128, one rep),
then llama-bench -p 512 -n 128 -r 1 with the same thread count. Reports per format the
median tokens/s of both tools over the rounds and the ratio mixq / llama.cpp, as YAML on
stdout and in build/bench/e2e.yaml. Medians of alternating runs, because this machine's
memory bandwidth drifts by +-15%.

Usage: bench/e2e.py [--threads N] [--rounds N] [--formats f16,q8_0,q4_0,Q4_K_M,Q6_K] [--mixq-bench PATH]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# --pure types (mixq's plan formats) and llama-quantize presets
PURE = ["f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl",
        "iq4_xs"]
PRESETS = ["Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "IQ4_XS"]


def die(msg):
    sys.stderr.write("bench-e2e: %s\n" % msg)
    sys.exit(1)


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode != 0:
        die("%s failed (exit %d): %s" % (os.path.basename(cmd[0]), r.returncode, r.stderr.strip()[-500:]))
    return r.stdout


def last_line(out):
    lines = [l for l in out.splitlines() if l.strip()]
    return lines[-1] if lines else ""


def parse_mixq(out):
    """Reads bench-e2e's YAML (a fixed, flat shape) without a YAML library."""
    vals, section = {}, None
    for line in out.splitlines():
        if line.startswith("pp:") or line.startswith("tg:"):
            section = line[:2]
        elif section and line.strip().startswith("median:"):
            vals[section] = float(line.split(":")[1])
    if "pp" not in vals or "tg" not in vals:
        die("cannot read bench-e2e output:\n" + out)
    return vals


def parse_llama(out):
    vals = {}
    for rec in json.loads(out):
        if rec.get("n_prompt", 0) > 0 and rec.get("n_gen", 0) == 0:
            vals["pp"] = rec["avg_ts"]
        elif rec.get("n_gen", 0) > 0 and rec.get("n_prompt", 0) == 0:
            vals["tg"] = rec["avg_ts"]
    if "pp" not in vals or "tg" not in vals:
        die("cannot read llama-bench output:\n" + out[:500])
    return vals


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--formats", default="f16,q8_0,q4_0,Q4_K_M,Q6_K")
    ap.add_argument("--mixq-bench", default=os.path.join(ROOT, "build", "bench-e2e"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "e2e.yaml"))
    a = ap.parse_args()
    formats = a.formats.split(",")
    for f in formats:
        if f not in PURE and f not in PRESETS:
            die("unknown format '%s' (--pure types: %s; presets: %s)" % (f, ", ".join(PURE), ", ".join(PRESETS)))
    if not os.access(a.mixq_bench, os.X_OK):
        die("'%s' is missing: run make first" % a.mixq_bench)
    bin_dir = last_line(run([os.path.join(ROOT, "scripts", "build-llama-cpp")]))
    src = last_line(run([os.path.join(ROOT, "scripts", "fetch-models"), "smollm2"]))
    cache = os.path.join(ROOT, ".cache", "bench")
    os.makedirs(cache, exist_ok=True)
    results = []
    for f in formats:
        pure = f in PURE
        path = os.path.join(cache, "SmolLM2-135M-%s%s.gguf" % (f.upper(), "-pure" if pure else ""))
        if not os.path.exists(path):
            sys.stderr.write("bench-e2e: llama-quantize%s %s -> %s\n" % (" --pure" if pure else "", f.upper(), path))
            run([os.path.join(bin_dir, "llama-quantize"), "--allow-requantize"] + (["--pure"] if pure else []) +
                [src, path + ".tmp", f.upper()])
            os.replace(path + ".tmp", path)
        m_pp, m_tg, l_pp, l_tg = [], [], [], []
        for r in range(a.rounds):
            sys.stderr.write("bench-e2e: %s round %d/%d\n" % (f, r + 1, a.rounds))
            mv = parse_mixq(run([a.mixq_bench, path, "--threads", str(a.threads), "--reps", "1"]))
            lv = parse_llama(run([os.path.join(bin_dir, "llama-bench"), "-m", path, "-p", "512", "-n", "128",
                                  "-t", str(a.threads), "-r", "1", "-o", "json"]))
            m_pp.append(mv["pp"]); m_tg.append(mv["tg"]); l_pp.append(lv["pp"]); l_tg.append(lv["tg"])
        results.append((f, m_pp, m_tg, l_pp, l_tg))
    lines = ["mixq_schema: bench-e2e-compare/1",
             "model: SmolLM2-135M-Instruct requantized by llama-quantize (lower case: --pure; upper case: the preset)",
             "threads: %d" % a.threads, "rounds: %d" % a.rounds,
             "units: tokens per second, medians over the alternating rounds", "formats:"]
    for f, m_pp, m_tg, l_pp, l_tg in results:
        mp, mt, lp, lt = (statistics.median(v) for v in (m_pp, m_tg, l_pp, l_tg))
        lines += ["  %s:" % f,
                  "    pp512: {mixq: %.2f, llama_cpp: %.2f, ratio: %.3f}" % (mp, lp, mp / lp),
                  "    tg128: {mixq: %.2f, llama_cpp: %.2f, ratio: %.3f}" % (mt, lt, mt / lt),
                  "    rounds_mixq_pp: [%s]" % ", ".join("%.2f" % v for v in m_pp),
                  "    rounds_llama_pp: [%s]" % ", ".join("%.2f" % v for v in l_pp),
                  "    rounds_mixq_tg: [%s]" % ", ".join("%.2f" % v for v in m_tg),
                  "    rounds_llama_tg: [%s]" % ", ".join("%.2f" % v for v in l_tg)]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(a.out + ".tmp", a.out)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
