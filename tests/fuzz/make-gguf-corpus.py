#!/usr/bin/env python3
"""Writes a deterministic corpus of malformed GGUF files, and a few valid ones.

    make-gguf-corpus.py OUTDIR

bad-<what>.gguf files are malformed (or valid but use something mixq does not read, such
as an iq2_xxs tensor): `mixq info FILE` must exit 1 with exactly one error line.
ok-<what>.gguf files are valid GGUF (not necessarily a model mixq can run): `mixq info`
must not crash on them. tests/fuzz/run-corpus.sh runs them; `make fuzz` also uses them as
seeds. Python standard library only; the same bytes on every run.
"""
import os
import struct
import sys

# value types (GGUF's numbers)
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
# ggml tensor types
T_F32, T_F16, T_Q4_0, T_Q8_0, T_IQ2_XXS, T_I32, T_BF16 = 0, 1, 2, 8, 16, 26, 30
ALIGN = 32

SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
          BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b)) + b


def header(n_tensors, n_kv, version=3, magic=b"GGUF"):
    return magic + u32(version) + u64(n_tensors) + u64(n_kv)


def value(vtype, v):
    """The bytes of a value (without its type tag). Arrays: v = (elem_type, [items])."""
    if vtype == STR:
        return gstr(v)
    if vtype == ARR:
        et, items = v
        return u32(et) + u64(len(items)) + b"".join(value(et, it) for it in items)
    return struct.pack(SCALAR[vtype], v)


def kv(key, vtype, v):
    return gstr(key) + u32(vtype) + value(vtype, v)


def tinfo(name, ne, ggml_type, offset):
    return gstr(name) + u32(len(ne)) + b"".join(u64(d) for d in ne) + u32(ggml_type) + u64(offset)


def pad(b, align=ALIGN):
    return b + b"\0" * ((-len(b)) % align)


def gguf(kvs=(), tensors=(), version=3, align=ALIGN):
    """A file laid out as llama.cpp's writer does. tensors: (name, ne, type, data bytes);
    offsets are assigned consecutively, each aligned."""
    out = header(len(tensors), len(kvs), version)
    out += b"".join(kv(*k) for k in kvs)
    offset, blobs = 0, []
    for name, ne, ttype, data in tensors:
        out += tinfo(name, ne, ttype, offset)
        blobs.append(pad(data, align))
        offset += len(blobs[-1])
    out = pad(out, align)
    return out + b"".join(blobs)


def f32_bytes(n, seed=1):
    return b"".join(struct.pack("<f", ((i * 37 + seed) % 101) / 50.0 - 1.0) for i in range(n))


def q8_0_bytes(n_blocks):
    # f16 scale 1/127 (0x2008) and 32 int8 values per block
    return b"".join(struct.pack("<H", 0x2008) + bytes((i * 7 + j) % 256 for j in range(32))
                    for i in range(n_blocks))


def nested(depth, leaf_type=U8):
    """An array value nested `depth` levels deep: [[...[1]...]]."""
    v = (leaf_type, [1])
    for _ in range(depth - 1):
        v = (ARR, [v])
    return v


SMALL_KVS = [
    ("general.architecture", STR, "test"),
    ("general.name", STR, "corpus"),
    ("general.alignment", U32, 32),
]
SMALL_TENSORS = [
    ("token_embd.weight", [8, 4], T_F32, f32_bytes(32)),
    ("output.weight", [32, 2], T_Q8_0, q8_0_bytes(2)),
]


def corpus():
    files = {}

    # ---- valid files
    files["ok-empty"] = header(0, 0)
    files["ok-empty-v2"] = header(0, 0, version=2)
    files["ok-small"] = gguf(SMALL_KVS, SMALL_TENSORS)
    files["ok-all-value-types"] = gguf([
        ("u8", U8, 255), ("i8", I8, -128), ("u16", U16, 65535), ("i16", I16, -32768),
        ("u32", U32, 4294967295), ("i32", I32, -2147483648), ("f32", F32, 1.5),
        ("bool", BOOL, 1), ("str", STR, b"nul\0inside"), ("u64", U64, 2**64 - 1),
        ("i64", I64, -2**63), ("f64", F64, 2.5),
        ("arr.str", ARR, (STR, ["a", "", "b\0c"])), ("arr.i32", ARR, (I32, [1, -2, 3])),
        ("arr.bool", ARR, (BOOL, [0, 1])), ("arr.empty", ARR, (F64, [])),
        ("arr.nested", ARR, (ARR, [(U16, [1, 2]), (U16, []), (U16, [3])])),
        ("arr.deep8", ARR, nested(8)),
    ], [("t.f16", [4], T_F16, b"\0\x3c" * 4), ("t.bf16", [2, 2], T_BF16, b"\x80\x3f" * 4),
        ("t.q4_0", [32], T_Q4_0, b"\0\x3c" + bytes(range(16))),
        ("t.i32", [3], T_I32, struct.pack("<3i", 1, 2, 3))], align=64)

    # A file to cut in every section. Its first value is long, so that cuts after it leave
    # enough bytes for the header's counts to look plausible and the cut is found where
    # it is (a cut right after the header fails the count check instead).
    t_kvs = [("general.description", STR, "x" * 300), ("general.architecture", STR, "test"),
             ("tokenizer.ggml.tokens", ARR, (STR, ["tok%d" % i for i in range(10)])),
             ("tokenizer.ggml.token_type", ARR, (I32, list(range(10))))]
    trunc = gguf(t_kvs, SMALL_TENSORS)
    files["ok-truncation-base"] = trunc
    kv_at = [24]
    for k in t_kvs:
        kv_at.append(kv_at[-1] + len(kv(*k)))
    infos_at = kv_at[-1]
    info0 = len(tinfo(*SMALL_TENSORS[0][:3], 0))
    infos_end = infos_at + info0 + len(tinfo(*SMALL_TENSORS[1][:3], 0))
    data_start = infos_end + (-infos_end) % ALIGN
    data_end = data_start + 128 + len(SMALL_TENSORS[1][3])
    assert len(trunc) == data_end + (-data_end) % ALIGN
    key1 = len(t_kvs[1][0])
    key2 = len(t_kvs[2][0])
    cuts = {
        "kv-key-length": kv_at[1] + 4,
        "kv-key": kv_at[1] + 8 + 5,
        "kv-type": kv_at[1] + 8 + key1 + 2,
        "kv-value-length": kv_at[1] + 8 + key1 + 4 + 3,
        "kv-value": kv_at[2] - 2,
        "array-type": kv_at[2] + 8 + key2 + 4 + 2,
        "array-count": kv_at[2] + 8 + key2 + 4 + 4 + 5,
        "array-strings": kv_at[3] - 3,
        "array-ints": kv_at[4] - 3,
        "tensor-info-name": infos_at + 12,
        "tensor-info-ndims": infos_at + 8 + 17 + 2,
        "tensor-info-dims": infos_at + 8 + 17 + 4 + 6,
        "tensor-info-type": infos_at + info0 - 10,
        "tensor-info-offset": infos_at + info0 - 4,
        "tensor-info-second": infos_end - 3,
        "padding": infos_end + 1,
        "data-first-tensor": data_start + 40,
        "data-last-byte": data_end - 1,
    }
    for what, at in cuts.items():
        files["bad-truncated-" + what] = trunc[:at]
    small = files["ok-small"]

    # ---- header
    files["bad-empty"] = b""
    files["bad-magic-only"] = b"GGUF"
    files["bad-magic-short"] = b"GG"
    files["bad-magic"] = b"GGML" + small[4:]
    files["bad-magic-elf"] = b"\x7fELF" + bytes(60)
    files["bad-version-0"] = header(0, 0, version=0)
    files["bad-version-1"] = header(0, 0, version=1)
    files["bad-version-1-short"] = b"GGUF" + u32(1) + u32(0) + u32(0)  # v1: 32-bit counts
    files["bad-version-4"] = header(0, 0, version=4)
    files["bad-version-big-endian"] = header(0, 0, version=0x03000000)
    files["bad-truncated-header"] = small[:12]
    files["bad-truncated-header-counts"] = small[:20]
    files["bad-nkv-huge"] = header(0, 2**63) + bytes(64)
    files["bad-nkv-max"] = header(0, 2**64 - 1) + bytes(64)
    files["bad-ntensors-huge"] = header(2**62, 0) + bytes(64)
    files["bad-ntensors-max"] = header(2**64 - 1, 1) + kv("a", U8, 1) + bytes(64)
    files["bad-counts-sum"] = header(2, 2) + bytes(80)

    # ---- key/values: truncated inside arrays
    nest = header(0, 1) + kv("n", ARR, (ARR, [(U32, [1, 2, 3])] * 4))
    files["bad-truncated-array-nested"] = nest[:len(nest) - 5]

    # ---- key/values: malformed
    files["bad-key-length-huge"] = header(0, 1) + u64(2**62) + bytes(40)
    files["bad-key-length-max"] = header(0, 1) + u64(2**64 - 1) + bytes(40)
    files["bad-string-huge"] = header(0, 1) + gstr("k") + u32(STR) + u64(2**62) + bytes(40)
    files["bad-string-past-end"] = header(0, 1) + gstr("k") + u32(STR) + u64(100) + b"x" * 60
    files["bad-value-type-unknown"] = header(0, 1) + gstr("k") + u32(13) + bytes(8)
    files["bad-value-type-huge"] = header(0, 1) + gstr("k") + u32(0xFFFFFFFF) + bytes(8)
    files["bad-bool-2"] = header(0, 1) + gstr("k") + u32(BOOL) + b"\x02" + bytes(4)
    files["bad-bool-array-2"] = header(0, 1) + gstr("k") + u32(ARR) + u32(BOOL) + u64(3) + b"\1\0\2"
    files["bad-array-count-huge"] = (header(0, 1) + gstr("tokenizer.ggml.tokens") + u32(ARR) +
                                     u32(STR) + u64(9999999999) + bytes(120))
    files["bad-array-count-overflow"] = (header(0, 1) + gstr("k") + u32(ARR) + u32(U64) +
                                         u64(2**61) + bytes(64))
    files["bad-array-count-max"] = (header(0, 1) + gstr("k") + u32(ARR) + u32(ARR) +
                                    u64(2**64 - 1) + bytes(64))
    files["bad-array-elem-type-unknown"] = header(0, 1) + gstr("k") + u32(ARR) + u32(42) + u64(0)
    files["bad-array-nested-9"] = header(0, 1) + kv("k", ARR, nested(9))
    files["bad-array-nested-100"] = header(0, 1) + kv("k", ARR, nested(100))
    # 100 levels of arrays that claim one element each, and nothing after: the depth limit
    # or the end of the file, whichever comes first
    files["bad-array-nested-100-empty"] = (header(0, 1) + gstr("k") + u32(ARR) +
                                           (u32(ARR) + u64(1)) * 100)
    files["bad-duplicate-keys"] = gguf([("a", U32, 1), ("b", U32, 2), ("a", U32, 3)])
    files["bad-duplicate-keys-far"] = gguf([("k%d" % i, U8, i) for i in range(50)] + [("k7", STR, "x")])
    files["bad-alignment-0"] = gguf([("general.alignment", U32, 0)])
    files["bad-alignment-3"] = gguf([("general.alignment", U32, 3)])
    files["bad-alignment-string"] = gguf([("general.alignment", STR, "32")])
    files["bad-alignment-u64"] = gguf([("general.alignment", U64, 32)])
    files["bad-alignment-i32-negative"] = gguf([("general.alignment", I32, -32)])

    # ---- tensor infos: malformed (one tensor, 64 bytes of data unless said otherwise)
    def one(name="t", ne=(16,), ttype=T_F32, offset=0, data=64, kvs=b"", n_kv=0):
        out = header(1, n_kv) + kvs + tinfo(name, list(ne), ttype, offset)
        return pad(out) + bytes(data)

    files["bad-ndims-0"] = one(ne=())
    files["bad-ndims-5"] = one(ne=(1, 1, 2, 2, 4))
    files["bad-ndims-huge"] = header(1, 0) + gstr("t") + u32(0xFFFFFFFF) + bytes(64)
    files["bad-ne-zero"] = one(ne=(16, 0))
    files["bad-ne-negative"] = one(ne=(2**63,))
    files["bad-ne-max"] = one(ne=(2**64 - 1, 1))
    files["bad-nelems-overflow"] = one(ne=(2**32, 2**31, 2))
    files["bad-nelems-overflow-4d"] = one(ne=(2**16, 2**16, 2**16, 2**16))
    files["bad-nbytes-overflow"] = one(ne=(2**40, 2**22))
    files["bad-offset-misaligned"] = one(offset=16, data=96)
    files["bad-offset-misaligned-64"] = one(offset=32, data=128,
                                            kvs=kv("general.alignment", U32, 64), n_kv=1)
    files["bad-offset-past-end"] = one(offset=2**40)
    files["bad-offset-end-by-one"] = one(data=63)
    files["bad-offset-size-overflow"] = one(offset=2**64 - 32)
    files["bad-offset-size-overflow-2"] = one(ne=(2**40,), offset=2**64 - 2**41)
    files["bad-q8_0-row"] = one(ne=(33,), ttype=T_Q8_0, data=128)
    files["bad-q4_0-row"] = one(ne=(16, 2), ttype=T_Q4_0, data=128)
    files["bad-name-too-long"] = one(name="n" * 257)
    files["bad-name-length-huge"] = header(1, 0) + u64(2**62) + bytes(64)
    files["bad-name-nul"] = one(name=b"blk.0\0.weight")
    files["bad-type-iq2_xxs"] = one(name="blk.0.ffn_down.weight", ne=(256, 2), ttype=T_IQ2_XXS, data=132)
    files["bad-type-unknown"] = one(ttype=99)
    files["bad-type-huge"] = one(ttype=0xFFFFFFFF)

    # ---- tensors together
    def many(infos, data):
        out = header(len(infos), 0) + b"".join(tinfo(*t) for t in infos)
        return pad(out) + bytes(data)

    files["bad-overlap"] = many([("a", [16], T_F32, 0), ("b", [4], T_F32, 32)], 96)
    files["bad-overlap-same-offset"] = many([("a", [8], T_F32, 0), ("b", [8], T_F32, 0)], 64)
    files["bad-overlap-reversed"] = many([("a", [8], T_F32, 64), ("b", [32], T_F32, 0)], 128)
    files["bad-duplicate-tensor-names"] = many([("w", [8], T_F32, 0), ("w", [8], T_F32, 32)], 64)
    files["bad-second-tensor-past-end"] = many([("a", [8], T_F32, 0), ("b", [8], T_F32, 32)], 60)
    files["bad-type-iq2_xxs-then-malformed"] = many([("a", [256], T_IQ2_XXS, 0),
                                                  ("b", [8], T_F32, 2**40)], 256)
    return files


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make-gguf-corpus.py OUTDIR\n")
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):  # files of an older corpus
        if name.endswith(".gguf") and (name.startswith("bad-") or name.startswith("ok-")):
            os.remove(os.path.join(out, name))
    files = corpus()
    total = 0
    for name in sorted(files):
        data = files[name]
        total += len(data)
        with open(os.path.join(out, name + ".gguf"), "wb") as f:
            f.write(data)
    assert total < 1 << 20, "corpus too large: %d bytes" % total
    n_bad = sum(1 for n in files if n.startswith("bad-"))
    print("gguf corpus: %d files (%d malformed, %d valid), %d bytes in %s"
          % (len(files), n_bad, len(files) - n_bad, total, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
