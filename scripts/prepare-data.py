#!/usr/bin/env python3
"""Regenerate mixq's text data, byte for byte, from Debian packages.

Sources (public domain):
  - bible-kjv-text: the King James Bible, read with the `bible` program (bible-kjv).
  - r-cran-janeaustenr: Jane Austen's six novels, stored as R lazy-load data;
    read here without R by a small reader of R's serialization format. When the
    package is not installed, its .deb is fetched with `apt-get download` into
    build/debs and unpacked there (installing it would pull in all of R).

Outputs (in OUTDIR, default examples/data):
  kjv-train.txt    first 95% of the KJV (verses, one per line)   -- not committed
  kjv-heldout.txt  last 5% of the KJV                             -- not committed
  kjv-eval.txt     first 16 KiB of the held-out part, cut at a line end -- committed
                   (the calibration text: importance matrices)
  kjv-tune.txt     the next 16 KiB of the held-out part, cut at a line end -- committed
                   (mixq tune's evaluation text, disjoint from the calibration text)
  austen-eval.txt  first 16 KiB of Persuasion, cut at a line end  -- committed

Only the Python standard library is used.  Usage:
  scripts/prepare-data.py [--out DIR] [--check]
--check regenerates into a temporary folder and compares with the committed files;
it exits 77 (skip) when the Debian sources cannot be had.
"""
import argparse
import gzip
import os
import re
import struct
import subprocess
import sys
import tempfile
import zlib

EVAL_BYTES = 16384
HOLDOUT_FRACTION = 0.05
RDATA_REL = "usr/lib/R/site-library/janeaustenr/data/Rdata"
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SKIP = False  # --check: a missing source skips instead of failing


def die(msg, unavailable=False):
    sys.stderr.write("prepare-data: %s\n" % msg)
    sys.exit(77 if unavailable and SKIP else 1)


def janeaustenr_rdata():
    """The Rdata path prefix, from the installed package or its unpacked .deb."""
    installed = "/" + RDATA_REL
    if os.path.exists(installed + ".rdb"):
        return installed
    debs = os.path.join(ROOT, "build", "debs")
    unpacked = os.path.join(debs, "janeaustenr", RDATA_REL)
    if os.path.exists(unpacked + ".rdb"):
        return unpacked
    os.makedirs(debs, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", "r-cran-janeaustenr"], cwd=debs, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deb = sorted(f for f in os.listdir(debs) if f.startswith("r-cran-janeaustenr_"))[-1]
        subprocess.run(["dpkg-deb", "-x", deb, "janeaustenr"], cwd=debs, check=True)
    except (OSError, IndexError, subprocess.CalledProcessError) as e:
        die("cannot get r-cran-janeaustenr (apt-get download failed: %s)" % e, unavailable=True)
    return unpacked


def kjv_text():
    try:
        out = subprocess.run(["bible", "Gen1:1-Rev22:21"], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, COLUMNS="100000")).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        die("cannot run 'bible' (scripts/install-deps installs bible-kjv): %s" % e, unavailable=True)
    verses = []
    # Without a terminal, `bible` prints "Ge1:1 text" for the first verse of a
    # range and then "  N text" wrapped at 80 columns; re-join the wrapped lines.
    cur = None
    for line in out.decode("ascii").split("\n"):
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m:
            if cur is not None:
                verses.append(cur)
            cur = m.group(2)
        elif re.match(r"^[1-3]?[A-Za-z]+\d+:\d+ ", line):
            if cur is not None:
                verses.append(cur)
            cur = line.split(" ", 1)[1]
        elif line == "" or re.match(r"^[1-3]? ?[A-Z][A-Za-z ]+ \d+$", line):
            if cur is not None:
                verses.append(cur)
            cur = None
        else:
            if cur is None:
                die("unexpected line in bible output: %r" % line[:60])
            cur += " " + line
    if cur is not None:
        verses.append(cur)
    if len(verses) != 31102:
        die("expected 31102 verses from bible, got %d" % len(verses))
    return "".join(v.strip() + "\n" for v in verses).encode("ascii")


class RReader:
    """Just enough of R's XDR serialization to read character vectors and lists."""

    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []

    def int(self):
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def header(self):
        if self.d[:2] != b"X\n":
            die("R data: not XDR serialization")
        self.p = 2
        version = self.int()
        self.int()
        self.int()
        if version == 3:
            n = self.int()
            self.p += n
        return self.item()

    def length(self):
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) | lo
        return n

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr = flags & (1 << 9)
        has_tag = flags & (1 << 10)
        if t == 254:  # NILVALUE
            return None
        if t in (253, 242, 241, 250, 251, 252):  # environments, markers
            return ("env", t)
        if t == 255:  # REFSXP
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP
            s = self.item()
            self.refs.append(("sym", s))
            return ("sym", s)
        if t in (2, 6, 239, 240):  # LISTSXP, LANGSXP, ATTR*
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            node = {"tag": tag, "car": car, "cdr": cdr, "attr": attr}
            return ("pairlist", node)
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            s = self.d[self.p:self.p + n]
            self.p += n
            return s.decode("utf-8") if (flags >> 12) & 8 else s.decode("latin-1")
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.length()
            v = struct.unpack_from(">%di" % n, self.d, self.p)
            self.p += 4 * n
            val = list(v)
        elif t == 14:  # REALSXP
            n = self.length()
            v = struct.unpack_from(">%dd" % n, self.d, self.p)
            self.p += 8 * n
            val = list(v)
        elif t == 16:  # STRSXP
            n = self.length()
            val = [self.item() for _ in range(n)]
        elif t == 19:  # VECSXP
            n = self.length()
            val = [self.item() for _ in range(n)]
        else:
            die("R data: unsupported SEXP type %d" % t)
        attr = self.item() if has_attr else None
        return ("vec", val, attr)


def pairlist_dict(pl):
    out = {}
    while pl is not None and pl[0] == "pairlist":
        node = pl[1]
        out[node["tag"][1]] = node["car"]
        pl = node["cdr"]
    return out


def vec_names(v):
    attrs = pairlist_dict(v[2])
    return attrs["names"][1]


def austen_book(name):
    rdata = janeaustenr_rdata()
    try:
        rdx = gzip.open(rdata + ".rdx").read()
        rdb = open(rdata + ".rdb", "rb").read()
    except OSError as e:
        die("cannot read janeaustenr data: %s" % e)
    index = RReader(rdx).header()
    fields = dict(zip(vec_names(index), index[1]))
    variables = fields["variables"]
    keys = dict(zip(vec_names(variables), [k[1] for k in variables[1]]))
    if name not in keys:
        die("janeaustenr has no dataset '%s'" % name)
    off, n = keys[name]
    blob = rdb[off:off + n]
    raw = zlib.decompress(blob[4:])
    obj = RReader(raw).header()
    return "".join(line + "\n" for line in obj[1]).encode("utf-8")


def cut(data, nbytes):
    part = data[:nbytes]
    return part[:part.rindex(b"\n") + 1]


def generate(outdir):
    os.makedirs(outdir, exist_ok=True)
    kjv = kjv_text()
    split = kjv.index(b"\n", int(len(kjv) * (1 - HOLDOUT_FRACTION))) + 1
    kjv_eval = cut(kjv[split:], EVAL_BYTES)
    files = {
        "kjv-train.txt": kjv[:split],
        "kjv-heldout.txt": kjv[split:],
        "kjv-eval.txt": kjv_eval,
        "kjv-tune.txt": cut(kjv[split + len(kjv_eval):], EVAL_BYTES),
        "austen-eval.txt": cut(austen_book("persuasion"), EVAL_BYTES),
    }
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "examples", "data"))
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    global SKIP
    SKIP = a.check
    if not a.check:
        for name, data in generate(a.out).items():
            print("%-16s %8d bytes" % (name, len(data)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(tmp)
        for name in ("kjv-eval.txt", "kjv-tune.txt", "austen-eval.txt"):
            with open(os.path.join(a.out, name), "rb") as f:
                if f.read() != files[name]:
                    die("%s differs from a fresh regeneration" % name)
    print("prepare-data: committed texts match a fresh regeneration")


if __name__ == "__main__":
    main()
