#!/usr/bin/env python3
"""bench/e2e.py - mixq's forward pass beside llama.cpp's llama-bench, alternately, in one run.

Two models: SmolLM2-135M (scripts/fetch-models; prompt 512, generate 128 tokens) and a
model large enough that decode is bound by memory bandwidth, `mixq synth --params 1B`
(Llama-3.2-1B's shapes, 1.5 B parameters of random weights, f16; prompt 128, generate 32:
the same shapes per token, fewer of them, so that a round takes seconds). Each is
requantized by llama.cpp's own llama-quantize: lower-case names with --pure (every tensor
gets the type, token_embd included: f16, q8_0, q4_0, q4_k, q5_k, q6_k, ...), upper-case
preset names as llama-quantize's presets (Q4_K_M, Q6_K: the files users deploy, their
per-tensor mixture and fallbacks included). mixq runs each file as stored. For each file,
ROUNDS rounds alternate: build/bench-e2e (mixq: pp and tg, one rep), then llama-bench -p
PP -n TG -r 1 with the same thread count. Reports per model and format the median
tokens/s of both tools over the rounds, the ratio mixq / llama.cpp and the spread of the
rounds' ratios (min, max), and for tg the fraction of the DRAM read bandwidth each tool's
decode reaches (weight bytes per token x tokens/s / bandwidth, bench-e2e --bandwidth,
measured once per file after its rounds), as YAML on stdout and in build/bench/e2e.yaml.
llama-bench runs as users run it, with its extra CPU buffer types (weight repacking, AMX);
where that crashes (this machine's AMX kernels on quantized files, llama.cpp #20824) or
LLAMA_ARG_REPACK is 0, with --repack 0, and the YAML says which (llama_cpp_repack).
Medians of alternating runs, because this machine's memory bandwidth drifts by +-15%.

Usage: bench/e2e.py [--threads N] [--rounds N] [--models smollm2,synth-1b]
                    [--formats f16,q8_0,q4_0,q4_k,q5_k,q6_k,Q4_K_M,Q6_K] [--mixq-bench PATH]
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


def run(cmd, crash_ok=False, **kw):
    """stdout of cmd; None where it was killed by a signal and crash_ok."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if r.returncode < 0 and crash_ok:
        return None
    if r.returncode != 0:
        die("%s failed (exit %d): %s" % (os.path.basename(cmd[0]), r.returncode, r.stderr.strip()[-500:]))
    return r.stdout


def last_line(out):
    lines = [l for l in out.splitlines() if l.strip()]
    return lines[-1] if lines else ""


# name -> (how to get its source file, prompt tokens, generated tokens)
MODELS = {"smollm2": ("fetch", 512, 128), "synth-1b": ("synth", 128, 32)}


def parse_mixq(out):
    """Reads bench-e2e's YAML (a fixed, flat shape) without a YAML library."""
    vals, section = {}, None
    for line in out.splitlines():
        if line.startswith("pp:") or line.startswith("tg:"):
            section = line[:2]
        elif section and line.strip().startswith("median:"):
            vals[section] = float(line.split(":")[1])
        elif line.startswith("weight_bytes_per_token:") or line.startswith("dram_read_gbs:"):
            vals[line.split(":")[0]] = float(line.split(":")[1])
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


def source_model(name, bin_dir, mixq):
    """The source file of a model: fetched, or written by mixq synth once."""
    how = MODELS[name][0]
    if how == "fetch":
        return last_line(run([os.path.join(ROOT, "scripts", "fetch-models"), name]))
    path = os.path.join(ROOT, ".cache", "bench", "synth-1B-F16.gguf")
    if not os.path.exists(path):
        sys.stderr.write("bench-e2e: mixq synth --params 1B -> %s\n" % path)
        run([mixq, "-q", "synth", "--params", "1B", "--type", "f16", "-o", path])
    return path


def spread(m, l):
    """The rounds' ratios mixq / llama.cpp: min and max."""
    r = [a / b for a, b in zip(m, l)]
    return min(r), max(r)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--models", default="smollm2,synth-1b")
    ap.add_argument("--formats", default="f16,q8_0,q4_0,q4_k,q5_k,q6_k,Q4_K_M,Q6_K")
    ap.add_argument("--mixq-bench", default=os.path.join(ROOT, "build", "bench-e2e"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "e2e.yaml"))
    a = ap.parse_args()
    formats = a.formats.split(",")
    for f in formats:
        if f not in PURE and f not in PRESETS:
            die("unknown format '%s' (--pure types: %s; presets: %s)" % (f, ", ".join(PURE), ", ".join(PRESETS)))
    if not os.access(a.mixq_bench, os.X_OK):
        die("'%s' is missing: run make first" % a.mixq_bench)
    models = a.models.split(",")
    for name in models:
        if name not in MODELS:
            die("unknown model '%s' (%s)" % (name, ", ".join(MODELS)))
    bin_dir = last_line(run([os.path.join(ROOT, "scripts", "build-llama-cpp")]))
    mixq = os.path.join(os.path.dirname(a.mixq_bench), "mixq")
    # llama-bench does not read LLAMA_ARG_REPACK as llama.cpp's other tools do (mixq tune --runtime
    # passes it on the same way)
    repack = ["--repack", "0"] if os.environ.get("LLAMA_ARG_REPACK", "").lower() in ("0", "false", "off",
                                                                                       "disabled") else []
    cache = os.path.join(ROOT, ".cache", "bench")
    os.makedirs(cache, exist_ok=True)
    lines = ["mixq_schema: bench-e2e-compare/2",
             "files: each model requantized by llama-quantize (lower case: --pure; upper case: the preset)",
             "threads: %d" % a.threads, "rounds: %d" % a.rounds,
             "units: tokens per second, medians over the alternating rounds; ratio: mixq / llama.cpp of the medians, "
             "spread: the rounds' own ratios (min, max); tg_dram_fraction: weight bytes per token x tokens/s / "
             "DRAM read bandwidth", "models:"]
    for name in models:
        src = source_model(name, bin_dir, mixq)
        n_pp, n_tg = MODELS[name][1], MODELS[name][2]
        stem = os.path.splitext(os.path.basename(src))[0]
        lines += ["  %s:" % name, "    source: '%s'" % src, "    pp_tokens: %d" % n_pp, "    tg_tokens: %d" % n_tg,
                  "    formats:"]
        for f in formats:
            pure = f in PURE
            path = os.path.join(cache, "%s-%s%s.gguf" % (stem, f.upper(), "-pure" if pure else ""))
            if not os.path.exists(path):
                sys.stderr.write("bench-e2e: llama-quantize%s %s -> %s\n" % (" --pure" if pure else "", f.upper(),
                                                                             path))
                run([os.path.join(bin_dir, "llama-quantize"), "--allow-requantize"] + (["--pure"] if pure else []) +
                    [src, path + ".tmp", f.upper()])
                os.replace(path + ".tmp", path)
            m_pp, m_tg, l_pp, l_tg = [], [], [], []
            no_repack = list(repack)
            for r in range(a.rounds):
                sys.stderr.write("bench-e2e: %s %s round %d/%d\n" % (name, f, r + 1, a.rounds))
                mv = parse_mixq(run([a.mixq_bench, path, "--threads", str(a.threads), "--reps", "1",
                                     "--prompt", str(n_pp), "--gen", str(n_tg)]))
                cmd = [os.path.join(bin_dir, "llama-bench"), "-m", path, "-p", str(n_pp), "-n", str(n_tg), "-t",
                       str(a.threads), "-r", "1", "-o", "json"]
                out = run(cmd + no_repack, crash_ok=not no_repack)
                if out is None:  # llama.cpp's AMX kernels crash on quantized files (llama.cpp #20824)
                    sys.stderr.write("bench-e2e: llama-bench crashed on %s with its extra buffer types (repacking, "
                                     "AMX): --repack 0 from now on for this file\n" % os.path.basename(path))
                    no_repack = ["--repack", "0"]
                    out = run(cmd + no_repack)
                lv = parse_llama(out)
                m_pp.append(mv["pp"]); m_tg.append(mv["tg"]); l_pp.append(lv["pp"]); l_tg.append(lv["tg"])
            bw = parse_mixq(run([a.mixq_bench, path, "--threads", str(a.threads), "--reps", "1", "--prompt", "8",
                                 "--gen", "4", "--bandwidth"]))
            mp, mt, lp, lt = (statistics.median(v) for v in (m_pp, m_tg, l_pp, l_tg))
            frac = lambda tps: bw["weight_bytes_per_token"] * tps / (bw["dram_read_gbs"] * 1e9)
            lines += ["      %s:" % f,
                      "        pp: {mixq: %.2f, llama_cpp: %.2f, ratio: %.3f, spread: [%.3f, %.3f]}"
                      % ((mp, lp, mp / lp) + spread(m_pp, l_pp)),
                      "        tg: {mixq: %.2f, llama_cpp: %.2f, ratio: %.3f, spread: [%.3f, %.3f]}"
                      % ((mt, lt, mt / lt) + spread(m_tg, l_tg)),
                      "        llama_cpp_repack: %s" % ("false" if no_repack else "true"),
                      "        tg_dram_fraction: {mixq: %.3f, llama_cpp: %.3f, weight_bytes_per_token: %.0f, "
                      "dram_read_gbs: %.2f}" % (frac(mt), frac(lt), bw["weight_bytes_per_token"],
                                                bw["dram_read_gbs"]),
                      "        rounds_mixq_pp: [%s]" % ", ".join("%.2f" % v for v in m_pp),
                      "        rounds_llama_pp: [%s]" % ", ".join("%.2f" % v for v in l_pp),
                      "        rounds_mixq_tg: [%s]" % ", ".join("%.2f" % v for v in m_tg),
                      "        rounds_llama_tg: [%s]" % ", ".join("%.2f" % v for v in l_tg)]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out + ".tmp", "w") as fh:
        fh.write(text)
    os.replace(a.out + ".tmp", a.out)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
