#!/usr/bin/python3
"""torch_llama.py: the PyTorch peer of `lathe bench train`: training steps of a plain llama in torch.

The same model as Lathe's engine (llm/model): token embedding, per block RMSNorm -> q, k, v projections
(no biases) -> rotary embedding (half-split pairs) -> causal grouped-query attention -> output
projection -> residual, RMSNorm -> SwiGLU (gate, up, down) -> residual; a final RMSNorm, an untied
output head and cross-entropy. Random N(0, 0.02^2) weights, unit norms. One step is what Lathe's
Trainer.Step does: zero the gradients, forward, backward, clip the global norm to 1, AdamW (weight
decay 0.1 on the projection matrices only). Prints one JSON line, like `lathe bench train`.
With --precision bf16 the forward runs under torch.autocast("cpu", torch.bfloat16) (the linear layers
and matmuls in bfloat16, the weights, gradients and AdamW in float32): the peer of
`lathe bench train --precision bf16`.

Run it with Debian's python3-torch (/usr/bin/python3) and the OpenMP build of OpenBLAS:
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 bench/torch_llama.py
(bench/run.sh does; the pthreads build of OpenBLAS starts its own threads beside torch's and is
many times slower).
"""

import argparse
import json
import math
import os
import resource
import time

import torch
import torch.nn.functional as F
from torch import nn

PEAK_FLOPS = 506e9  # the 2-core fp32 peak (it assumed Zen 5), as in `lathe bench train`


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, cos, sin):
    """Rotates pairs (i, i + HD/2) of every head of x [B, H, T, HD] by position t: cos, sin [T, HD/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        hd = a.dim // a.heads
        self.heads, self.kv_heads, self.hd = a.heads, a.kv_heads, hd
        self.attn_norm = RMSNorm(a.dim, a.eps)
        self.wq = nn.Linear(a.dim, a.heads * hd, bias=False)
        self.wk = nn.Linear(a.dim, a.kv_heads * hd, bias=False)
        self.wv = nn.Linear(a.dim, a.kv_heads * hd, bias=False)
        self.wo = nn.Linear(a.heads * hd, a.dim, bias=False)
        self.ffn_norm = RMSNorm(a.dim, a.eps)
        self.w_gate = nn.Linear(a.dim, a.ffn, bias=False)
        self.w_up = nn.Linear(a.dim, a.ffn, bias=False)
        self.w_down = nn.Linear(a.ffn, a.dim, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.heads, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.kv_heads, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            s = (q @ k.transpose(-2, -1)) * (1 / math.sqrt(self.hd))
            o = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
        x = x + self.wo(o.transpose(1, 2).reshape(B, T, -1))
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class Llama(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed = nn.Embedding(a.vocab, a.dim)
        self.blocks = nn.ModuleList(Block(a) for _ in range(a.layers))
        self.norm = RMSNorm(a.dim, a.eps)
        self.output = nn.Linear(a.dim, a.vocab, bias=False)
        half = a.dim // a.heads // 2
        freq = 1.0 / (a.rope_theta ** (torch.arange(half, dtype=torch.float64) / half))
        ang = torch.arange(a.seq, dtype=torch.float64)[:, None] * freq[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        self.register_buffer("mask", torch.ones(a.seq, a.seq, dtype=torch.bool).triu(1), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets):
        x = self.embed(tokens)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        logits = self.output(self.norm(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def loaded_blas():
    """The BLAS and OpenMP libraries this process has mapped (which build torch really runs on)."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            name = os.path.basename(path)
            if any(s in name for s in ("blas", "lapack", "omp", "mkl", "dnnl")):
                libs.add(path)
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=1376)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5, help="timed steps, after --warmup untimed ones")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--foreach", action="store_true", help="AdamW's multi-tensor (foreach) implementation")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="bf16: the forward under CPU autocast to bfloat16 (mixed precision)")
    ap.add_argument("--eps", type=float, default=1e-5)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    a = ap.parse_args()
    if a.dim % a.heads or a.heads % a.kv_heads:
        ap.error("--dim must be a multiple of --heads, and --heads of --kv-heads")

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Llama(a)
    params = sum(p.numel() for p in model.parameters())
    # Weight decay on the projection matrices only, as Lathe's AdamW (not the embedding, head, norms).
    matrices = [p for n, p in model.named_parameters() if n.startswith("blocks.") and p.dim() == 2]
    others = [p for n, p in model.named_parameters() if not (n.startswith("blocks.") and p.dim() == 2)]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}],
                            lr=1e-4, foreach=a.foreach)

    gen = torch.Generator().manual_seed(7)

    def step():
        data = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=gen)
        inputs, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            loss = model(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return time.perf_counter() - t0, loss.item()

    for _ in range(a.warmup):
        step()
    times, loss = [], 0.0
    wall0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(a.steps):
        d, loss = step()
        times.append(d)
    wall = time.perf_counter() - wall0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)

    tokens = a.batch * a.seq
    mean, best = sum(times) / len(times), min(times)
    tps, tps_best = tokens / mean, tokens / best
    print(json.dumps({
        "bench": "train", "peer": "pytorch", "torch": torch.__version__, "dim": a.dim, "layers": a.layers,
        "heads": a.heads, "kv_heads": a.kv_heads, "ffn": a.ffn, "vocab": a.vocab, "batch": a.batch,
        "seq": a.seq, "steps": a.steps, "method": "full", "params": params, "threads": torch.get_num_threads(),
        "adamw_foreach": a.foreach, "precision": a.precision,
        "ms_per_step": mean * 1e3, "ms_per_step_best": best * 1e3,
        "tokens_per_second": tps, "tokens_per_second_best": tps_best,
        "gflops": 6 * params * tps / 1e9, "mfu": 6 * params * tps / PEAK_FLOPS,
        "mfu_best": 6 * params * tps_best / PEAK_FLOPS, "final_loss": loss,
        # the share of threads x wall time the timed steps really ran on a CPU (see `lathe bench`)
        "cpu_share": cpu / (wall * a.threads),
        "blas": loaded_blas(),
    }))


if __name__ == "__main__":
    main()
