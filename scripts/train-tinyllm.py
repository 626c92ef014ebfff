#!/usr/bin/python3
"""Train mixq's bundled models: byte-level llamas ("tinyllm", "tinyllm256") on the King
James Bible.

What it makes (examples/MODEL/, MODEL = tinyllm or tinyllm256):
  MODEL.gguf       the model, F32, llama architecture, readable by llama.cpp and mixq
  golden.gguf      token ids and the PyTorch F32 logits of a few sequences, and the
                   perplexities this script measured (the C forward pass is tested on it)
  training.txt     the hyperparameters, the training log summary and measured figures

The architecture is llama's: RMSNorm, rotary embeddings in llama.cpp's "normal" layout
(adjacent pairs (2i, 2i+1) rotate together, so no permutation is needed when exporting),
grouped-query attention (6 query heads share 2 key/value heads), SwiGLU, an untied output
matrix.  The vocabulary is 256 bytes + BOS + EOS + one never-occurring merge result
(see write_gguf), so a token id is a byte value.

Perplexity is measured as llama-perplexity measures it: the text is tokenized with BOS in
front, cut into chunks of n_ctx tokens, the first token of every chunk is replaced by BOS,
and the next-token log-likelihood is scored for the second half of every chunk only.

Usage (Debian's python3-torch with OpenBLAS; tinyllm about 1.5 h on 2 cores, 1500 steps of
32 x 256 tokens; tinyllm256, twice the parameters, about 1 h on a quiet 2-core machine,
2.4 s a step):
  scripts/prepare-data.py          # writes examples/data/kjv-train.txt and the eval texts
  scripts/train-tinyllm.py [--model tinyllm|tinyllm256] [--steps N] [--work DIR] [--out DIR]
It checkpoints to WORK (default build/train, build/train-tinyllm256) every 100 steps and
resumes from there when interrupted.
The GGUF writer below is this script's own, independent of mixq's C writer.
"""
import argparse
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The bundled models. "tinyllm" (examples/tinyllm/) has 192-wide rows, so ggml's K-quants
# (256-value super-blocks) apply only to its ffn_down; "tinyllm256" (examples/tinyllm256/)
# has every row a multiple of 256 (embedding 256, feed-forward 768), so every layer can
# take every format: the full-precision benchmark of requantization.
PRESETS = {
    "tinyllm": dict(
        n_vocab=259, n_embd=192, n_layer=6, n_head=6, n_head_kv=2, n_ff=512, n_ctx=256,
        rope_theta=10000.0, norm_eps=1e-5,
        batch=32, lr=3e-3, lr_min=3e-4, warmup=100, weight_decay=0.1, seed=1234,
    ),
    "tinyllm256": dict(
        n_vocab=259, n_embd=256, n_layer=6, n_head=4, n_head_kv=2, n_ff=768, n_ctx=256,
        rope_theta=10000.0, norm_eps=1e-5,
        batch=32, lr=2e-3, lr_min=2e-4, warmup=100, weight_decay=0.1, seed=4321,
    ),
}
HP = dict(PRESETS["tinyllm"])
BOS, EOS, NULNUL = 256, 257, 258


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(n_ctx, head_dim, theta):
    inv = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    ang = torch.arange(n_ctx, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope(x, cos, sin):
    # x: [B, H, T, D]; pairs (2i, 2i+1) rotate by angle pos * theta^(-2i/D)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    c, s = cos[: x.shape[2]], sin[: x.shape[2]]
    y0 = x0 * c - x1 * s
    y1 = x0 * s + x1 * c
    return torch.stack((y0, y1), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, hp):
        super().__init__()
        d, hd = hp["n_embd"], hp["n_embd"] // hp["n_head"]
        self.n_head, self.n_head_kv, self.hd = hp["n_head"], hp["n_head_kv"], hd
        self.attn_norm = RMSNorm(d, hp["norm_eps"])
        self.wq = nn.Linear(d, hp["n_head"] * hd, bias=False)
        self.wk = nn.Linear(d, hp["n_head_kv"] * hd, bias=False)
        self.wv = nn.Linear(d, hp["n_head_kv"] * hd, bias=False)
        self.wo = nn.Linear(hp["n_head"] * hd, d, bias=False)
        self.ffn_norm = RMSNorm(d, hp["norm_eps"])
        self.w_gate = nn.Linear(d, hp["n_ff"], bias=False)
        self.w_up = nn.Linear(d, hp["n_ff"], bias=False)
        self.w_down = nn.Linear(hp["n_ff"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.n_head, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.n_head_kv, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.n_head_kv, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        rep = self.n_head // self.n_head_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
        att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.wo(y)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class TinyLlama(nn.Module):
    def __init__(self, hp):
        super().__init__()
        self.hp = hp
        self.tok = nn.Embedding(hp["n_vocab"], hp["n_embd"])
        self.blocks = nn.ModuleList(Block(hp) for _ in range(hp["n_layer"]))
        self.norm = RMSNorm(hp["n_embd"], hp["norm_eps"])
        self.out = nn.Linear(hp["n_embd"], hp["n_vocab"], bias=False)
        cos, sin = rope_tables(hp["n_ctx"], hp["n_embd"] // hp["n_head"], hp["rope_theta"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.triu(torch.ones(hp["n_ctx"], hp["n_ctx"], dtype=torch.bool), 1)
        self.register_buffer("mask", mask, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * hp["n_layer"]) if name.endswith(("wo.weight", "w_down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx):
        x = self.tok(idx)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        return self.out(self.norm(x))


# ---------------------------------------------------------------- evaluation

def perplexity(model, data, n_ctx, max_chunks=None):
    """llama-perplexity's method; returns (ppl, mean nll in nats, scored tokens, chunks)."""
    toks = np.concatenate([[BOS], np.frombuffer(data, dtype=np.uint8)]).astype(np.int64)
    n_chunks = len(toks) // n_ctx
    if max_chunks is not None:
        n_chunks = min(n_chunks, max_chunks)
    first = n_ctx // 2
    nll, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for c in range(n_chunks):
            seq = torch.from_numpy(toks[c * n_ctx:(c + 1) * n_ctx].copy())
            seq[0] = BOS
            logits = model(seq[None])[0].double()
            lp = torch.log_softmax(logits, -1)
            tgt = seq[first + 1:]
            nll -= lp[first:n_ctx - 1].gather(1, tgt[:, None]).sum().item()
            count += n_ctx - 1 - first
    return math.exp(nll / count), nll / count, count, n_chunks


# ---------------------------------------------------------------- GGUF writer

GGUF_UINT32, GGUF_INT32, GGUF_FLOAT32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY, GGUF_UINT64 = 4, 5, 6, 7, 8, 9, 10
GGML_F32, GGML_I32 = 0, 26
ALIGN = 32


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, v):
    if vtype == GGUF_UINT32:
        return struct.pack("<I", v)
    if vtype == GGUF_INT32:
        return struct.pack("<i", v)
    if vtype == GGUF_FLOAT32:
        return struct.pack("<f", v)
    if vtype == GGUF_BOOL:
        return struct.pack("<B", 1 if v else 0)
    if vtype == GGUF_STRING:
        return gguf_str(v)
    if vtype == GGUF_UINT64:
        return struct.pack("<Q", v)
    raise ValueError(vtype)


def write_gguf(path, kvs, tensors):
    """kvs: list of (key, type, value) where an array is (GGUF_ARRAY, (elemtype, list)).
    tensors: list of (name, numpy array C-contiguous float32 or int32); GGUF dims are the
    numpy shape reversed (ne0 is the contiguous dimension)."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)))
    for key, vt, val in kvs:
        out += gguf_str(key) + struct.pack("<I", vt)
        if vt == GGUF_ARRAY:
            et, items = val
            out += struct.pack("<IQ", et, len(items))
            for it in items:
                out += gguf_value(et, it)
        else:
            out += gguf_value(vt, val)
    offset, blobs = 0, []
    for name, arr in tensors:
        ggml_type = GGML_F32 if arr.dtype == np.float32 else GGML_I32
        assert arr.dtype in (np.float32, np.int32)
        out += gguf_str(name) + struct.pack("<I", arr.ndim)
        for d in reversed(arr.shape):
            out += struct.pack("<Q", d)
        out += struct.pack("<IQ", ggml_type, offset)
        blob = np.ascontiguousarray(arr).tobytes()
        blobs.append((offset, blob))
        offset = (offset + len(blob) + ALIGN - 1) // ALIGN * ALIGN
    out += b"\0" * ((-len(out)) % ALIGN)
    base = len(out)
    for off, blob in blobs:
        out += b"\0" * (base + off - len(out))
        out += blob
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, path)


def byte_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def model_tensors(model):
    hp = model.hp
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    t = [("token_embd.weight", sd["tok.weight"])]
    for i in range(hp["n_layer"]):
        p = "blocks.%d." % i
        t += [
            ("blk.%d.attn_norm.weight" % i, sd[p + "attn_norm.weight"]),
            ("blk.%d.attn_q.weight" % i, sd[p + "wq.weight"]),
            ("blk.%d.attn_k.weight" % i, sd[p + "wk.weight"]),
            ("blk.%d.attn_v.weight" % i, sd[p + "wv.weight"]),
            ("blk.%d.attn_output.weight" % i, sd[p + "wo.weight"]),
            ("blk.%d.ffn_norm.weight" % i, sd[p + "ffn_norm.weight"]),
            ("blk.%d.ffn_gate.weight" % i, sd[p + "w_gate.weight"]),
            ("blk.%d.ffn_up.weight" % i, sd[p + "w_up.weight"]),
            ("blk.%d.ffn_down.weight" % i, sd[p + "w_down.weight"]),
        ]
    t += [("output_norm.weight", sd["norm.weight"]), ("output.weight", sd["out.weight"])]
    return [(n, np.ascontiguousarray(a, dtype=np.float32)) for n, a in t]


def write_model(path, model):
    hp = model.hp
    b2u = byte_to_unicode()
    tokens = [b2u[b] for b in range(256)] + ["<s>", "</s>", b2u[0] + b2u[0]]
    types = [1] * 256 + [3, 3, 1]  # 1 = normal, 3 = control
    a = "llama."
    kvs = [
        ("general.architecture", GGUF_STRING, "llama"),
        ("general.name", GGUF_STRING, hp.get("name", "tinyllm") + "-kjv"),
        ("general.license", GGUF_STRING, "MIT"),
        ("general.file_type", GGUF_UINT32, 0),
        (a + "vocab_size", GGUF_UINT32, hp["n_vocab"]),
        (a + "context_length", GGUF_UINT32, hp["n_ctx"]),
        (a + "embedding_length", GGUF_UINT32, hp["n_embd"]),
        (a + "block_count", GGUF_UINT32, hp["n_layer"]),
        (a + "feed_forward_length", GGUF_UINT32, hp["n_ff"]),
        (a + "attention.head_count", GGUF_UINT32, hp["n_head"]),
        (a + "attention.head_count_kv", GGUF_UINT32, hp["n_head_kv"]),
        (a + "rope.dimension_count", GGUF_UINT32, hp["n_embd"] // hp["n_head"]),
        (a + "rope.freq_base", GGUF_FLOAT32, hp["rope_theta"]),
        (a + "attention.layer_norm_rms_epsilon", GGUF_FLOAT32, hp["norm_eps"]),
        ("tokenizer.ggml.model", GGUF_STRING, "gpt2"),
        ("tokenizer.ggml.pre", GGUF_STRING, "default"),
        ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, tokens)),
        ("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_INT32, types)),
        # llama.cpp refuses a gpt2 vocabulary without merges; this one merges two NUL
        # bytes, which never occur in text, so tokenization stays one token per byte.
        ("tokenizer.ggml.merges", GGUF_ARRAY, (GGUF_STRING, [b2u[0] + " " + b2u[0]])),
        ("tokenizer.ggml.bos_token_id", GGUF_UINT32, BOS),
        ("tokenizer.ggml.eos_token_id", GGUF_UINT32, EOS),
        ("tokenizer.ggml.add_bos_token", GGUF_BOOL, True),
        ("tokenizer.ggml.add_eos_token", GGUF_BOOL, False),
    ]
    write_gguf(path, kvs, model_tensors(model))


GOLDEN_TEXTS = [
    b"In the beginning God created the heaven and the earth.",
    b"Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who,",
    b"for i in range(10): print(i) # \x00\xff\x7f mixq \xe2\x9c\x93 golden",
]


def write_golden(path, model, figures):
    model.eval()
    kvs = [("mixq_golden.version", GGUF_UINT32, 1),
           ("mixq_golden.n_seq", GGUF_UINT32, len(GOLDEN_TEXTS))]
    for k, v in figures.items():
        kvs.append(("mixq_golden." + k, GGUF_FLOAT32 if isinstance(v, float) else GGUF_UINT32, v))
    tensors = []
    with torch.no_grad():
        for i, text in enumerate(GOLDEN_TEXTS):
            toks = np.array([BOS] + list(text), dtype=np.int32)
            logits = model(torch.from_numpy(toks.astype(np.int64))[None])[0].float().numpy()
            tensors.append(("golden.%d.tokens" % i, toks))
            tensors.append(("golden.%d.logits" % i, np.ascontiguousarray(logits)))  # [n_tok, n_vocab]
    write_gguf(path, kvs, tensors)


# ---------------------------------------------------------------- training

def lr_at(step, steps):
    if step < HP["warmup"]:
        return HP["lr"] * (step + 1) / HP["warmup"]
    t = (step - HP["warmup"]) / max(1, steps - HP["warmup"])
    return HP["lr_min"] + 0.5 * (HP["lr"] - HP["lr_min"]) * (1 + math.cos(math.pi * t))


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    ap = argparse.ArgumentParser(description="train mixq's bundled byte-level llama")
    ap.add_argument("--model", choices=sorted(PRESETS), default="tinyllm",
                    help="which bundled model (default tinyllm; its folders default to its name)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--data", default=os.path.join(root, "examples", "data"))
    ap.add_argument("--work", default=None, help="checkpoints (default build/train, or build/train-MODEL)")
    ap.add_argument("--out", default=None, help="output folder (default examples/MODEL)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--bench", action="store_true", help="time 10 steps and exit")
    ap.add_argument("--export-checkpoint", action="store_true",
                    help="write the model and golden files from the last checkpoint without training")
    args = ap.parse_args()
    HP.clear()
    HP.update(PRESETS[args.model])
    HP["name"] = args.model
    if args.work is None:
        args.work = os.path.join(root, "build", "train" if args.model == "tinyllm" else "train-" + args.model)
    if args.out is None:
        args.out = os.path.join(root, "examples", args.model)

    torch.set_num_threads(args.threads)
    torch.manual_seed(HP["seed"])
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    try:
        train = np.frombuffer(open(os.path.join(args.data, "kjv-train.txt"), "rb").read(), dtype=np.uint8)
        evals = {n: open(os.path.join(args.data, n + "-eval.txt"), "rb").read() for n in ("kjv", "austen")}
    except OSError as e:
        sys.exit("train-tinyllm: %s (run scripts/prepare-data.py first)" % e)

    model = TinyLlama(HP)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=HP["lr"], betas=(0.9, 0.95))
    ckpt = os.path.join(args.work, "ckpt.pt")
    step, log = 0, []
    if os.path.exists(ckpt) and not args.bench:
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, log = st["step"], st["log"]
        torch.set_rng_state(st["rng"])
        print("resumed at step %d" % step, flush=True)
    print("params %d, steps %d, threads %d" % (n_params, args.steps, args.threads), flush=True)
    if args.export_checkpoint:
        args.steps = step

    B, T = HP["batch"], HP["n_ctx"]
    t0 = time.time()
    while step < args.steps:
        model.train()
        starts = torch.randint(0, len(train) - T - 1, (B,))
        xy = torch.stack([torch.from_numpy(train[s:s + T + 1].astype(np.int64)) for s in starts.tolist()])
        x, y = xy[:, :-1].clone(), xy[:, 1:]
        x[:, 0] = BOS
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps)
        loss = F.cross_entropy(model(x).reshape(-1, HP["n_vocab"]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if args.bench and step == 10:
            print("%.3f s/step" % ((time.time() - t0) / 10))
            return
        if step % 100 == 0 or step == args.steps:
            ppl = perplexity(model, evals["kjv"], T, max_chunks=8)[0]
            log.append((step, loss.item(), ppl))
            print("step %5d loss %.4f kjv-ppl(8 chunks) %.3f  %.0f s" % (step, loss.item(), ppl, time.time() - t0), flush=True)
        if step % 100 == 0 or step == args.steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "log": log, "rng": torch.get_rng_state()}, ckpt + ".tmp")
            os.replace(ckpt + ".tmp", ckpt)

    figures = {}
    for name, text in evals.items():
        ppl, nll, count, chunks = perplexity(model, text, T)
        ppl8, _, _, _ = perplexity(model, text, T, max_chunks=8)
        figures[name + "_ppl"] = ppl
        figures[name + "_ppl_8chunks"] = ppl8
        figures[name + "_bpb"] = nll / math.log(2)
        figures[name + "_chunks"] = chunks
        print("%s-eval: ppl %.4f (first 8 chunks %.4f), %.4f bits/byte, %d chunks, %d scored tokens"
              % (name, ppl, ppl8, nll / math.log(2), chunks, count), flush=True)
    write_model(os.path.join(args.out, args.model + ".gguf"), model)
    write_golden(os.path.join(args.out, "golden.gguf"), model, figures)
    with open(os.path.join(args.out, "training.txt"), "w") as f:
        f.write("# written by scripts/train-tinyllm.py\n")
        f.write("torch %s, threads %d, params %d, steps %d, tokens seen %d\n"
                % (torch.__version__, args.threads, n_params, args.steps, args.steps * B * T))
        f.write("hyperparameters: %s\n" % " ".join("%s=%s" % kv for kv in HP.items() if kv[0] != "name"))
        for k, v in figures.items():
            f.write("%s: %s\n" % (k, ("%.6f" % v) if isinstance(v, float) else v))
        f.write("log (step, train loss, kjv ppl on 8 chunks):\n")
        for s, l, p in log[::5] + ([log[-1]] if log and (len(log) - 1) % 5 else []):
            f.write("  %5d %.4f %.3f\n" % (s, l, p))
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
