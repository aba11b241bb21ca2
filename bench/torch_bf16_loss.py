#!/usr/bin/python3
"""torch_bf16_loss.py: PyTorch's bf16 autocast on the fine-tune that checks Lathe's mixed precision.

Lathe's TestMixedBF16Loss (llm/train/precision_test.go) fine-tunes every weight of stories260K for
300 steps in float32 and in bfloat16 mixed precision and requires the loss curves to agree within 1%.
With LATHE_PRECISION_DUMP set it writes the run's token sequences, settings and both loss curves:

    LATHE_PRECISION_DUMP=/tmp/bf16run.json go test ./llm/train -run TestMixedBF16Loss -count=1
    /usr/bin/python3 bench/torch_bf16_loss.py /tmp/bf16run.json

This script loads the same GGUF weights into a PyTorch llama (adjacent-pair rotary, as ggml's llama
files lay out q and k), runs the same 300 steps twice from them, in float32 and with the forward under
torch.autocast("cpu", torch.bfloat16), with the same schedule (linear warmup, cosine decay), AdamW
(weight decay on the block matrices only), clipping and masking, and prints one JSON line: each run's
mean loss over all steps and the last 50, the held-out loss, and the relative differences bf16 vs
fp32 for PyTorch and for Lathe side by side.
"""

import argparse
import json
import math
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

STORIES = "../shared/models/stories260K.gguf"


def read_gguf(path):
    """Returns (metadata dict, {name: float32 numpy array in row-major [rows, cols] order})."""
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return v[0] if len(v) == 1 else v

    def string():
        nonlocal pos
        n = take("Q")
        s = buf[pos:pos + n].decode("utf-8", "replace")
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        return take(scalar[t])

    if buf[:4] != b"GGUF":
        raise SystemExit(f"{path}: not a GGUF file")
    pos = 4
    version, n_tensors, n_kv = take("I"), take("Q"), take("Q")
    meta = {}
    for _ in range(n_kv):
        k = string()
        meta[k] = value(take("I"))
    infos = []
    for _ in range(n_tensors):
        name = string()
        dims = [take("Q") for _ in range(take("I"))]
        infos.append((name, dims, take("I"), take("Q")))
    align = meta.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, dims, typ, off in infos:
        n = int(np.prod(dims))
        shape = list(reversed(dims))  # ggml's ne0 is the fastest dimension
        if typ == 0:
            a = np.frombuffer(buf, np.float32, n, start + off)
        elif typ == 1:
            a = np.frombuffer(buf, np.float16, n, start + off).astype(np.float32)
        else:
            raise SystemExit(f"{name}: GGUF type {typ} (this script reads F32 and F16 files)")
        tensors[name] = a.reshape(shape).copy()
    return meta, tensors


class RMSNorm(nn.Module):
    def __init__(self, w, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.tensor(w))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


def rope_adjacent(x, cos, sin):
    """Rotates pairs (2i, 2i+1) of every head of x [B, H, T, HD] by position t: cos, sin [T, HD/2]."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def linear(w):
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight = nn.Parameter(torch.tensor(w))
    return lin


class Llama(nn.Module):
    def __init__(self, meta, t, T):
        super().__init__()
        arch = meta["general.architecture"]
        g = lambda k: meta[f"{arch}.{k}"]
        self.dim, self.layers = g("embedding_length"), g("block_count")
        self.heads = g("attention.head_count")
        self.kv_heads = meta.get(f"{arch}.attention.head_count_kv", self.heads)
        self.hd = self.dim // self.heads
        eps = meta.get(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)
        theta = meta.get(f"{arch}.rope.freq_base", 10000.0)
        self.embed = nn.Embedding.from_pretrained(torch.tensor(t["token_embd.weight"]), freeze=False)
        self.blocks = nn.ModuleList()
        for l in range(self.layers):
            b = nn.Module()
            p = f"blk.{l}."
            b.attn_norm, b.ffn_norm = RMSNorm(t[p + "attn_norm.weight"], eps), RMSNorm(t[p + "ffn_norm.weight"], eps)
            b.wq, b.wk, b.wv = linear(t[p + "attn_q.weight"]), linear(t[p + "attn_k.weight"]), linear(t[p + "attn_v.weight"])
            b.wo = linear(t[p + "attn_output.weight"])
            b.gate, b.up, b.down = linear(t[p + "ffn_gate.weight"]), linear(t[p + "ffn_up.weight"]), linear(t[p + "ffn_down.weight"])
            self.blocks.append(b)
        self.norm = RMSNorm(t["output_norm.weight"], eps)
        self.tied = "output.weight" not in t
        if not self.tied:
            self.output = linear(t["output.weight"])
        half = self.hd // 2
        freq = 1.0 / (theta ** (torch.arange(half, dtype=torch.float64) * 2 / self.hd))
        ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool).triu(1), persistent=False)

    def forward(self, tokens, targets):
        B, T = tokens.shape
        x = self.embed(tokens)
        cos, sin = self.cos[:T], self.sin[:T]
        for b in self.blocks:
            h = b.attn_norm(x)
            q = b.wq(h).view(B, T, self.heads, self.hd).transpose(1, 2)
            k = b.wk(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
            v = b.wv(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
            q, k = rope_adjacent(q, cos, sin), rope_adjacent(k, cos, sin)
            if self.kv_heads != self.heads:
                k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
                v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
            s = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(self.hd))
            o = torch.softmax(s.float().masked_fill(self.mask[:T, :T], float("-inf")), dim=-1).type_as(v) @ v
            x = x + b.wo(o.transpose(1, 2).reshape(B, T, -1))
            h = b.ffn_norm(x)
            x = x + b.down(F.silu(b.gate(h)) * b.up(h))
        h = self.norm(x)
        logits = F.linear(h, self.embed.weight) if self.tied else self.output(h)
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-100)


def pack(seqs, T):
    """Lathe's PackBatch with PromptLen 1: predict every token after the first, pad and mask the rest."""
    tokens = torch.zeros(len(seqs), T, dtype=torch.long)
    targets = torch.full((len(seqs), T), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        n = min(len(s) - 1, T)
        tokens[i, :n] = torch.tensor(s[:n])
        targets[i, :n] = torch.tensor(s[1:n + 1])
    return tokens, targets


def lr_at(sch, step):
    """Lathe's Schedule.LR: linear warmup, then cosine (or linear) decay to MinLR at TotalSteps."""
    if step < sch["WarmupSteps"]:
        return sch["PeakLR"] * (step + 1) / sch["WarmupSteps"]
    if sch["Decay"] == "constant" or sch["TotalSteps"] <= sch["WarmupSteps"]:
        return sch["PeakLR"]
    frac = min(1.0, (step - sch["WarmupSteps"]) / (sch["TotalSteps"] - sch["WarmupSteps"]))
    if sch["Decay"] == "cosine":
        return sch["MinLR"] + (sch["PeakLR"] - sch["MinLR"]) * 0.5 * (1 + math.cos(math.pi * frac))
    return sch["PeakLR"] + (sch["MinLR"] - sch["PeakLR"]) * frac


def run(meta, tensors, data, bf16):
    T, cfg = data["T"], data["config"]
    model = Llama(meta, tensors, T)
    matrices = [p for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2]
    others = [p for n, p in model.named_parameters() if not (n.startswith("blocks.") and p.dim() == 2)]
    adam = cfg["AdamW"]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": adam["WeightDecay"]},
                             {"params": others, "weight_decay": 0.0}],
                            lr=1.0, betas=(adam["Beta1"] or 0.9, adam["Beta2"] or 0.999), eps=adam["Eps"] or 1e-8)
    losses = []
    for i, seqs in enumerate(data["steps"]):
        tokens, targets = pack(seqs, T)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg["Schedule"], i)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(tokens, targets)
        loss.backward()
        if cfg["MaxGradNorm"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["MaxGradNorm"])
        opt.step()
        losses.append(loss.item())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        held = model(*pack(data["held"], T)).item()
    return losses, held


def stats(losses, held):
    return {"mean": sum(losses) / len(losses), "last50": sum(losses[-50:]) / 50, "held": held}


def rel(a, b):
    return {k: abs(a[k] - b[k]) / b[k] for k in a}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dump", help="the file TestMixedBF16Loss wrote ($LATHE_PRECISION_DUMP)")
    ap.add_argument("--gguf", default=STORIES, help="the model the test fine-tuned (stories260K.gguf)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.dump) as f:
        data = json.load(f)
    meta, tensors = read_gguf(a.gguf)
    t0 = time.perf_counter()
    f32, held32 = run(meta, tensors, data, False)
    bf, heldbf = run(meta, tensors, data, True)
    torch_f32, torch_bf = stats(f32, held32), stats(bf, heldbf)
    lathe_f32 = stats(data["lathe_fp32"], data["lathe_held_fp32"])
    lathe_bf = stats(data["lathe_bf16"], data["lathe_held_bf16"])
    print(json.dumps({
        "bench": "bf16_loss", "torch": torch.__version__, "steps": len(data["steps"]), "seconds": time.perf_counter() - t0,
        "torch_fp32": torch_f32, "torch_bf16": torch_bf, "torch_rel_diff": rel(torch_bf, torch_f32),
        "lathe_fp32": lathe_f32, "lathe_bf16": lathe_bf, "lathe_rel_diff": rel(lathe_bf, lathe_f32),
        "first_loss": {"torch": f32[0], "lathe": data["lathe_fp32"][0]},
    }))


if __name__ == "__main__":
    main()
