#!/usr/bin/env python3
"""bench/mpi.py - the speed-up of `mpirun -np N mixq sensitivity` over one process, on a
workload where forward passes dominate (measured sensitivity of the bundled tinyllm256:
one evaluation per layer and format), side by side: rounds alternate one process and N
ranks, and the medians are compared. Also the speed-up the N-rank run's unit times predict
on 2 and 4 ranks (mixq's own report after the pass: each evaluation's run time, handed out
in order to the first free rank; a rank per machine, transfers free). Writes YAML (--out) and prints it.

    python3 bench/mpi.py --mixq build/mixq [--ranks 2] [--rounds 3] [--out FILE]

Exit 77 (skipped, with the reason) where mpirun is missing or mixq was built without MPI.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MODEL = "examples/tinyllm256/tinyllm256.gguf"
ARGS = ["--sensitivity", "measured", "--formats", "q8_0,q6_k,q4_k", "--ctx", "256", "--chunks", "2",
        "--no-cache"]
REPORT = re.compile(r"evaluations: (\d+) in ([0-9.]+) s on (\d+) ranks?, ([0-9.]+) s of units \(([0-9.]+)x\); "
                    r"the unit times predict ([0-9.]+)x on 2 ranks and ([0-9.]+)x on 4")


def run(cmd, out_dir, report):
    t0 = time.monotonic()
    p = subprocess.run(cmd + ["--out", out_dir], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("bench/mpi: %s failed (exit %d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()[-400:]))
    m = REPORT.search(p.stderr)
    if report and not m:
        sys.exit("bench/mpi: no pass report in %s's messages" % " ".join(cmd))
    return wall, m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixq", default="build/mixq")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args()
    if not shutil.which("mpirun"):
        print("bench-mpi skipped: no mpirun (scripts/install-deps installs openmpi-bin)")
        return 77
    twin = os.path.join(os.path.dirname(os.path.abspath(a.mixq)), "mixq-mpi")
    if not os.access(twin, os.X_OK):
        print("bench-mpi skipped: no %s (mixq was built without MPI)" % twin)
        return 77
    mpirun = ["mpirun", "-q", "--oversubscribe"] + (["--allow-run-as-root"] if os.geteuid() == 0 else [])
    # one process with every core's threads (what a user runs without MPI), one process with
    # a rank's share of the threads (the per-rank speed), and the ranks (each its share)
    share = max(1, (os.cpu_count() or 1) // a.ranks)
    cmds = {"one": [a.mixq, "sensitivity", MODEL] + ARGS,
            "one_share": [a.mixq, "sensitivity", MODEL] + ARGS + ["--threads", str(share)],
            "ranks": mpirun + ["-np", str(a.ranks), a.mixq, "sensitivity", MODEL] + ARGS}
    walls = {k: [] for k in cmds}
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for k, cmd in cmds.items():
                wall, m = run(cmd, os.path.join(tmp, "r%d-%s" % (r, k)), k == "ranks")
                walls[k].append(wall)
                if m:
                    reports.append(m)
    med = {k: statistics.median(v) for k, v in walls.items()}
    med1, medn = med["one"], med["ranks"]
    mn = reports[-1]
    lines = [
        "mixq_bench: mpi",
        "workload: measured sensitivity of %s, %s evaluations (%s)" % (MODEL, mn.group(1), " ".join(ARGS)),
        "cpus: %d" % os.cpu_count(),
        "rounds: %d" % a.rounds,
        "one_process:  # every core's threads",
        "  wall_s: [%s]" % ", ".join("%.2f" % w for w in walls["one"]),
        "  median_wall_s: %.2f" % med1,
        "one_process_share:  # --threads %d, a rank's share" % share,
        "  wall_s: [%s]" % ", ".join("%.2f" % w for w in walls["one_share"]),
        "  median_wall_s: %.2f" % med["one_share"],
        "ranks_%d:" % a.ranks,
        "  wall_s: [%s]" % ", ".join("%.2f" % w for w in walls["ranks"]),
        "  median_wall_s: %.2f" % medn,
        "  pass_wall_s: %s" % mn.group(2),
        "  unit_seconds_sum: %s" % mn.group(4),
        "  pass_speedup_over_unit_sum: %s" % mn.group(5),
        "  predicted_speedup_2_ranks: %s  # from the unit times: one rank per machine, transfers free" % mn.group(6),
        "  predicted_speedup_4_ranks: %s" % mn.group(7),
        "speedup: %.3f  # one process with every core / %d ranks" % (med1 / medn, a.ranks),
        "speedup_same_threads_per_process: %.3f  # one process with a rank's share / %d ranks"
        % (med["one_share"] / medn, a.ranks),
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if a.out:
        os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
