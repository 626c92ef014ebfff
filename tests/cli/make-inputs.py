#!/usr/bin/env python3
"""tests/cli/make-inputs.py DIR - NumPy input arrays for the CLI's --inputs cases, written
with the standard library only (the .npy format by hand, .npz through zipfile as np.savez
writes it: stored members, force_zip64), for the fuzz corpus's ok-typed-constant.onnx
(x [batch, 64] float) and ok-dynamic-dims.onnx (x [batch, 3, H, W] float):

  set/s0..s2.npz   a data set of three samples          one.npy      one sample, f8
  dyn.npy          x as 1 x 3 x 8 x 8                   wrongname.npz  an array 'images'
  extra.npz        x and a 'y' no input takes           compressed.npz  np.savez_compressed
  rank.npy, dtype.npy (int64), size.npy (1 x 63), zero.npy (0 x 64), trunc.npy, notnpy.npy
"""
import os
import random
import struct
import sys
import zipfile


def npy(descr, shape, vals, fmt):
    dims = "%d," % shape[0] if len(shape) == 1 else ", ".join("%d" % d for d in shape)
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
    return (b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() +
            struct.pack("<%d%s" % (len(vals), fmt), *vals))


def npz(path, arrays, compress=False):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        for name, data in arrays.items():
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                f.write(data)


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "set"), exist_ok=True)
    r = random.Random(1)
    row = lambda n: [r.uniform(-1, 1) for _ in range(n)]
    for i in range(3):
        npz(os.path.join(out, "set", "s%d.npz" % i), {"x": npy("<f4", (1, 64), row(64), "f")})
    files = {
        "one.npy": npy("<f8", (1, 64), row(64), "d"),
        "dyn.npy": npy("<f4", (1, 3, 8, 8), row(192), "f"),
        "rank.npy": npy("<f4", (64,), row(64), "f"),
        "dtype.npy": npy("<i8", (1, 64), [1] * 64, "q"),
        "size.npy": npy("<f4", (1, 63), row(63), "f"),
        "zero.npy": npy("<f4", (0, 64), [], "f"),
        "trunc.npy": npy("<f4", (1, 64), row(64), "f")[:-10],
        "notnpy.npy": b"not an array",
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    npz(os.path.join(out, "wrongname.npz"), {"images": npy("<f4", (1, 64), row(64), "f")})
    npz(os.path.join(out, "extra.npz"), {"x": npy("<f4", (1, 64), row(64), "f"),
                                          "y": npy("<f4", (1, 2), row(2), "f")})
    npz(os.path.join(out, "compressed.npz"), {"x": npy("<f4", (1, 64), row(64), "f")}, True)


if __name__ == "__main__":
    main()
