#!/usr/bin/python3
"""An independent T5 in plain PyTorch, after the semantics of transformers' modeling_t5.py
(T5ForConditionalGeneration), for llm/t5's reference test.

    /usr/bin/python3 t5_reference.py OUTDIR

writes tiny random checkpoints in Hugging Face's layout under OUTDIR/<case>/ (config.json with the real
keys, safetensors written by hand: no transformers, no safetensors package) and prints one JSON object
on stdout: for each case the batch, the logits, the mean loss, the gradient of that loss for every
tensor, and 32 greedy tokens; and the relative position buckets of a few settings as torch computes
them. The model runs in float64 from the float32 weights it wrote; the buckets are computed in float32
as transformers computes them.
"""

import json
import math
import os
import struct
import sys

import torch


def relative_position_bucket(rel, bidirectional, num_buckets, max_distance):
    """transformers' T5Attention._relative_position_bucket: rel = key position - query position."""
    buckets = torch.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        buckets = buckets + (rel > 0).to(torch.long) * num_buckets
        dist = torch.abs(rel)
    else:
        dist = -torch.min(rel, torch.zeros_like(rel))
    max_exact = num_buckets // 2
    is_small = dist < max_exact
    # float32, as in transformers: the log-spaced boundaries depend on its rounding.
    large = max_exact + (
        torch.log(dist.float() / max_exact) / math.log(max_distance / max_exact) * (num_buckets - max_exact)
    ).to(torch.long)
    large = torch.min(large, torch.full_like(large, num_buckets - 1))
    return buckets + torch.where(is_small, dist, large)


def position_bias(table, q_len, k_len, bidirectional, cfg):
    """[1, heads, q_len, k_len]: table[bucket(key - query)] for every pair."""
    rel = torch.arange(k_len)[None, :] - torch.arange(q_len)[:, None]
    b = relative_position_bucket(rel, bidirectional, cfg["relative_attention_num_buckets"],
                                 cfg["relative_attention_max_distance"])
    return table[b].permute(2, 0, 1).unsqueeze(0)


def layer_norm(x, w, eps):
    """T5LayerNorm: scale only, no mean subtraction, no bias."""
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def activation(x, name):
    if name == "relu":
        return torch.relu(x)
    if name == "gelu_new":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    raise ValueError(name)


class T5:
    def __init__(self, cfg, p):
        self.cfg, self.p = cfg, p
        self.heads, self.d_kv = cfg["num_heads"], cfg["d_kv"]
        self.eps = cfg["layer_norm_epsilon"]
        proj = cfg["feed_forward_proj"]
        self.gated = proj.startswith("gated-")
        self.act = "gelu_new" if proj == "gated-gelu" else proj.split("-")[-1]
        self.tied = cfg.get("tie_word_embeddings", True)

    def attention(self, pre, x, kv, bias):
        p, B, Tq, Tk = self.p, x.shape[0], x.shape[1], kv.shape[1]
        H, D = self.heads, self.d_kv
        q = (x @ p[pre + ".q.weight"].T).view(B, Tq, H, D).transpose(1, 2)
        k = (kv @ p[pre + ".k.weight"].T).view(B, Tk, H, D).transpose(1, 2)
        v = (kv @ p[pre + ".v.weight"].T).view(B, Tk, H, D).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) + bias  # no 1/sqrt(d)
        w = torch.softmax(scores, dim=-1)
        o = (w @ v).transpose(1, 2).reshape(B, Tq, H * D)
        return o @ p[pre + ".o.weight"].T

    def ffn(self, pre, x):
        p = self.p
        if self.gated:
            h = activation(x @ p[pre + ".wi_0.weight"].T, self.act) * (x @ p[pre + ".wi_1.weight"].T)
        else:
            h = activation(x @ p[pre + ".wi.weight"].T, self.act)
        return h @ p[pre + ".wo.weight"].T

    def encode(self, ids, mask):
        p, cfg = self.p, self.cfg
        T = ids.shape[1]
        neg = torch.finfo(torch.float64).min
        pad = (1.0 - mask[:, None, None, :].double()) * neg
        bias = position_bias(p["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"], T, T,
                             True, cfg) + pad
        h = p["shared.weight"][ids]
        for l in range(cfg["num_layers"]):
            pre = "encoder.block.%d.layer." % l
            n = layer_norm(h, p[pre + "0.layer_norm.weight"], self.eps)
            h = h + self.attention(pre + "0.SelfAttention", n, n, bias)
            h = h + self.ffn(pre + "1.DenseReluDense", layer_norm(h, p[pre + "1.layer_norm.weight"], self.eps))
        return layer_norm(h, p["encoder.final_layer_norm.weight"], self.eps)

    def logits(self, ids, mask, dec_ids):
        p, cfg = self.p, self.cfg
        enc = self.encode(ids, mask)
        T = dec_ids.shape[1]
        neg = torch.finfo(torch.float64).min
        future = torch.arange(T)[None, :] > torch.arange(T)[:, None]
        causal = torch.zeros(T, T, dtype=torch.float64).masked_fill(future, neg)
        self_bias = position_bias(p["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"], T, T,
                                  False, cfg) + causal
        cross_bias = (1.0 - mask[:, None, None, :].double()) * neg  # no position bias in cross-attention
        h = p["shared.weight"][dec_ids]
        for l in range(cfg.get("num_decoder_layers", cfg["num_layers"])):
            pre = "decoder.block.%d.layer." % l
            n = layer_norm(h, p[pre + "0.layer_norm.weight"], self.eps)
            h = h + self.attention(pre + "0.SelfAttention", n, n, self_bias)
            n = layer_norm(h, p[pre + "1.layer_norm.weight"], self.eps)
            h = h + self.attention(pre + "1.EncDecAttention", n, enc, cross_bias)
            h = h + self.ffn(pre + "2.DenseReluDense", layer_norm(h, p[pre + "2.layer_norm.weight"], self.eps))
        h = layer_norm(h, p["decoder.final_layer_norm.weight"], self.eps)
        if self.tied:
            return (h * cfg["d_model"] ** -0.5) @ p["shared.weight"].T
        return h @ p["lm_head.weight"].T


def tensor_shapes(cfg):
    """Every tensor of T5ForConditionalGeneration's state dict (shared once), name -> shape."""
    C, I, F, V = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"], cfg["d_ff"], cfg["vocab_size"]
    nb = cfg.get("relative_attention_num_buckets", 32)
    gated = cfg["feed_forward_proj"].startswith("gated-")
    shapes = {"shared.weight": [V, C]}

    def attn(pre):
        for m in "qkv":
            shapes[pre + "." + m + ".weight"] = [I, C]
        shapes[pre + ".o.weight"] = [C, I]

    def ffn(pre):
        for m in (["wi_0", "wi_1"] if gated else ["wi"]):
            shapes[pre + "." + m + ".weight"] = [F, C]
        shapes[pre + ".wo.weight"] = [C, F]

    for stack, n, subs in (("encoder", cfg["num_layers"], 2),
                           ("decoder", cfg.get("num_decoder_layers", cfg["num_layers"]), 3)):
        for l in range(n):
            pre = "%s.block.%d.layer." % (stack, l)
            attn(pre + "0.SelfAttention")
            if l == 0:
                shapes[pre + "0.SelfAttention.relative_attention_bias.weight"] = [nb, cfg["num_heads"]]
            shapes[pre + "0.layer_norm.weight"] = [C]
            if subs == 3:
                attn(pre + "1.EncDecAttention")
                shapes[pre + "1.layer_norm.weight"] = [C]
            ffn(pre + "%d.DenseReluDense" % (subs - 1))
            shapes[pre + "%d.layer_norm.weight" % (subs - 1)] = [C]
        shapes[stack + ".final_layer_norm.weight"] = [C]
    if not cfg.get("tie_word_embeddings", True):
        shapes["lm_head.weight"] = [V, C]
    return shapes


def random_weights(cfg, seed, gain):
    """gain scales the matrices that write into the residual stream (o, wo), so that the blocks, not the
    input embedding, decide the output: a random tied model otherwise predicts its input token."""
    g = torch.Generator().manual_seed(seed)
    p = {}
    for name, shape in tensor_shapes(cfg).items():
        if name.endswith("layer_norm.weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif name in ("shared.weight", "lm_head.weight"):
            t = torch.randn(shape, generator=g, dtype=torch.float64)
        elif "relative_attention_bias" in name:
            t = 0.5 * torch.randn(shape, generator=g, dtype=torch.float64)
        else:
            t = torch.randn(shape, generator=g, dtype=torch.float64) / math.sqrt(shape[1])
            if name.endswith((".o.weight", ".wo.weight")):
                t = t * gain
        p[name] = t.float().double()  # the float32 values the checkpoint holds
    return p


def write_safetensors(path, tensors):
    """The safetensors format by hand: u64 header length, JSON header, little-endian F32 data."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    hdr = json.dumps(header).encode()
    hdr += b" " * (-len(hdr) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)


def save(dirname, cfg, p, layout):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    tensors = dict(p)
    if layout == "aliases":
        # As older checkpoints store it: the embedding under both stacks' names, a tied lm_head too.
        shared = tensors.pop("shared.weight")
        tensors["encoder.embed_tokens.weight"] = shared
        tensors["decoder.embed_tokens.weight"] = shared
        tensors["lm_head.weight"] = shared
    if layout == "sharded":
        names = list(tensors)
        half = len(names) // 2
        shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
        weight_map = {}
        for fname, ns in shards.items():
            write_safetensors(os.path.join(dirname, fname), {n: tensors[n] for n in ns})
            weight_map.update({n: fname for n in ns})
        with open(os.path.join(dirname, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 4 * sum(t.numel() for t in tensors.values())},
                       "weight_map": weight_map}, f, indent=2)
    else:
        write_safetensors(os.path.join(dirname, "model.safetensors"), tensors)


CASES = [
    # flan-t5's shape: gated-gelu, untied head, more decoder than encoder layers, inner width
    # num_heads*d_kv = 18 unlike d_model 16; weights in two shards.
    ("flan", {
        "architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": 16, "d_kv": 6,
        "d_ff": 24, "num_layers": 2, "num_decoder_layers": 3, "num_heads": 3,
        "relative_attention_num_buckets": 8, "relative_attention_max_distance": 16, "layer_norm_epsilon": 1e-6,
        "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False, "vocab_size": 64,
        "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0, "is_encoder_decoder": True,
        "dropout_rate": 0.1, "initializer_factor": 1.0, "use_cache": True,
    }, "sharded", 1, 1.0),
    # t5 v1.0's shape: relu, tie_word_embeddings and num_decoder_layers and the bucket keys missing
    # (tied head scaled by d_model^-0.5; transformers' defaults of 32 buckets over 128 positions).
    ("t5v1", {
        "architectures": ["T5ForConditionalGeneration"], "model_type": "t5", "d_model": 16, "d_kv": 8,
        "d_ff": 24, "num_layers": 2, "num_heads": 2, "layer_norm_epsilon": 1e-6, "feed_forward_proj": "relu",
        "vocab_size": 64, "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0,
        "is_encoder_decoder": True,
    }, "aliases", 2, 4.0),
]


def main():
    out = sys.argv[1]
    torch.set_grad_enabled(True)
    result = {"cases": [], "buckets": []}
    # Encoder rows of 9 (the second padded after 6 tokens); decoder labels of 20 (past max distance 16),
    # the second's last 3 ignored (-100). Decoder inputs: labels shifted right from decoder_start_token_id.
    gen = torch.Generator().manual_seed(0)
    enc_ids = torch.randint(2, 64, (2, 9), generator=gen)
    enc_mask = torch.ones(2, 9, dtype=torch.long)
    enc_mask[1, 6:] = 0
    enc_ids[1, 6:] = 0
    labels = torch.randint(2, 64, (2, 20), generator=gen)
    labels[:, -1] = 1
    labels[1, 17:] = -100
    greedy_input = torch.randint(2, 64, (1, 11), generator=gen)
    for name, cfg, layout, seed, gain in CASES:
        p = random_weights(cfg, seed, gain)
        save(os.path.join(out, name), cfg, p, layout)
        full = dict(cfg)
        full.setdefault("relative_attention_num_buckets", 32)
        full.setdefault("relative_attention_max_distance", 128)
        params = {k: v.clone().requires_grad_(True) for k, v in p.items()}
        model = T5(full, params)
        dec_ids = torch.full_like(labels, cfg["pad_token_id"])
        dec_ids[:, 0] = cfg["decoder_start_token_id"]
        dec_ids[:, 1:] = labels[:, :-1]
        dec_ids[dec_ids == -100] = cfg["pad_token_id"]
        logits = model.logits(enc_ids, enc_mask, dec_ids)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=-100)
        loss.backward()
        with torch.no_grad():
            seq = torch.tensor([[cfg["decoder_start_token_id"]]])
            ones = torch.ones_like(greedy_input)
            for _ in range(32):  # no cache: the whole decoder again each step; no stop at EOS
                nxt = model.logits(greedy_input, ones, seq)[0, -1].argmax()
                seq = torch.cat([seq, nxt.view(1, 1)], dim=1)
        result["cases"].append({
            "name": name,
            "enc_ids": enc_ids.flatten().tolist(), "enc_mask": enc_mask.flatten().tolist(),
            "dec_ids": dec_ids.flatten().tolist(), "labels": labels.flatten().tolist(),
            "B": 2, "t_enc": enc_ids.shape[1], "t_dec": labels.shape[1],
            "logits": logits.detach().flatten().tolist(), "loss": loss.item(),
            "grads": {k: v.grad.flatten().tolist() for k, v in params.items()},
            "greedy_input": greedy_input.flatten().tolist(), "greedy": seq[0, 1:].tolist(),
        })
    rel = torch.arange(-300, 301)
    for nb, md in ((32, 128), (8, 16), (16, 40)):
        for bidirectional in (True, False):
            result["buckets"].append({
                "num_buckets": nb, "max_distance": md, "bidirectional": bidirectional, "first": -300,
                "buckets": relative_position_bucket(rel, bidirectional, nb, md).tolist(),
            })
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
