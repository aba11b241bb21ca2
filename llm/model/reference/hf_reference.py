#!/usr/bin/python3
"""An independent reference for Lathe's engine: Hugging Face causal LMs re-implemented in plain PyTorch.

Written from the semantics of transformers' modeling_llama.py, modeling_falcon.py, modeling_gpt_neox.py
and modeling_mpt.py (not copied, and transformers is not needed): the reference reads a real Hugging
Face directory (config.json with the families' own keys, model.safetensors with their own tensor names)
and computes in float64, so that its answers are the exact function of the float32 weights that the
engine only approximates.

Commands (see README.md for the JSON formats):
  make      --family F --layout L --seed S --out DIR   write a tiny random checkpoint of that layout
  run       --model DIR --input IN.json --out OUT.json logits, masked loss, training, greedy tokens
  selfcheck [--family F] [--layout L]                  check the reference against itself
  layouts                                              list the families and layouts
"""

import argparse
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

DT = torch.float64  # every computation; the checkpoint holds float32

# ---------------------------------------------------------------------------------------------------
# Layouts: the config.json each tiny checkpoint gets, with the keys real checkpoints of that family use.
# ---------------------------------------------------------------------------------------------------


def llama_config(hidden, heads, kv, inter, vocab, tied):
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": 2,
        "num_attention_heads": heads, "num_key_value_heads": kv, "hidden_act": "silu",
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None,
        "max_position_embeddings": 128, "vocab_size": vocab, "tie_word_embeddings": tied,
        "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2,
        "initializer_range": 0.02, "torch_dtype": "float32", "use_cache": True,
    }


def falcon_config(**kw):
    # tiiuae/falcon-7b's config.json after transformers' conversion (model_type "falcon").
    c = {
        "architectures": ["FalconForCausalLM"], "model_type": "falcon",
        "alibi": False, "apply_residual_connection_post_layernorm": False, "attention_dropout": 0.0,
        "bias": False, "bos_token_id": 11, "eos_token_id": 11, "hidden_dropout": 0.0,
        "hidden_size": 48, "initializer_range": 0.02, "layer_norm_epsilon": 1e-5,
        "multi_query": True, "new_decoder_architecture": False, "num_attention_heads": 4,
        "num_hidden_layers": 2, "parallel_attn": True, "torch_dtype": "float32", "use_cache": True,
        "vocab_size": 104,
    }
    c.update(kw)
    return c


def falcon_legacy_config():
    # tiiuae/falcon-7b's original config.json (custom code RWForCausalLM): model_type
    # "RefinedWebModel", n_head / n_layer, no new_decoder_architecture key. 5 heads: Falcon-7b has
    # 71, an odd count.
    return {
        "alibi": False, "apply_residual_connection_post_layernorm": False,
        "architectures": ["RWForCausalLM"], "attention_dropout": 0.0,
        "auto_map": {"AutoConfig": "configuration_RW.RWConfig", "AutoModelForCausalLM": "modelling_RW.RWForCausalLM"},
        "bias": False, "bos_token_id": 11, "eos_token_id": 11, "hidden_dropout": 0.0,
        "hidden_size": 40, "initializer_range": 0.02, "layer_norm_epsilon": 1e-5,
        "model_type": "RefinedWebModel", "multi_query": True, "n_head": 5, "n_layer": 2,
        "parallel_attn": True, "torch_dtype": "float32", "transformers_version": "4.27.4",
        "use_cache": True, "vocab_size": 100,
    }


def falcon40b_legacy_config():
    # tiiuae/falcon-40b's original config.json: model_type "RefinedWeb" and n_head_kv, which is what
    # makes it the new decoder architecture (transformers' converter sets new_decoder_architecture
    # exactly when n_head_kv is present).
    c = falcon_legacy_config()
    c.update({"model_type": "RefinedWeb", "hidden_size": 48, "n_head": 6, "n_head_kv": 3, "vocab_size": 96})
    return c


def neox_config(hidden, heads, parallel, vocab):
    # EleutherAI/pythia-*'s config.json.
    return {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox",
        "bos_token_id": 0, "eos_token_id": 0, "hidden_act": "gelu", "hidden_size": hidden,
        "initializer_range": 0.02, "intermediate_size": 4 * hidden, "layer_norm_eps": 1e-5,
        "max_position_embeddings": 64, "num_attention_heads": heads, "num_hidden_layers": 2,
        "rotary_emb_base": 10000, "rotary_pct": 0.25, "tie_word_embeddings": False,
        "torch_dtype": "float32", "use_cache": True, "use_parallel_residual": parallel,
        "vocab_size": vocab,
    }


def mpt_config(d_model, heads, clip, vocab):
    # mosaicml/mpt-7b's config.json (attn_config as a nested object).
    return {
        "architectures": ["MPTForCausalLM"], "model_type": "mpt",
        "attn_config": {
            "alibi": True, "alibi_bias_max": 8, "attn_impl": "torch", "attn_pdrop": 0,
            "attn_type": "multihead_attention", "attn_uses_sequence_id": False, "clip_qkv": clip,
            "prefix_lm": False, "qk_ln": False, "softmax_scale": None,
        },
        "d_model": d_model, "emb_pdrop": 0, "embedding_fraction": 1.0, "expansion_ratio": 4,
        "init_device": "cpu", "learned_pos_emb": True, "logit_scale": None, "max_seq_len": 128,
        "n_heads": heads, "n_layers": 2, "no_bias": True, "norm_type": "low_precision_layernorm",
        "resid_pdrop": 0, "tokenizer_name": "EleutherAI/gpt-neox-20b", "torch_dtype": "float32",
        "use_cache": False, "verbose": 0, "vocab_size": vocab,
    }


LAYOUTS = {
    "llama": {
        "gqa": lambda: llama_config(48, 4, 2, 96, 96, False),
        "tied": lambda: llama_config(32, 4, 4, 64, 100, True),
    },
    "falcon": {
        # multi-query (one kv head), parallel attention+MLP under one input_layernorm, rotary, no biases
        "7b": lambda: falcon_config(),
        # the same architecture under the custom-code config keys
        "7b-legacy": falcon_legacy_config,
        # grouped kv heads, fused QKV per group, ln_attn + ln_mlp
        "40b": lambda: falcon_config(hidden_size=64, num_attention_heads=8, num_kv_heads=2,
                                     new_decoder_architecture=True, vocab_size=108),
        # the same under RefinedWeb's keys (n_head_kv): 6 heads in 3 groups of 2
        "40b-legacy": falcon40b_legacy_config,
        # tiiuae/falcon-rw-1b: ALiBi, biases, per-head interleaved QKV, sequential residual
        "rw": lambda: falcon_config(alibi=True, bias=True, multi_query=False, parallel_attn=False,
                                    bos_token_id=1, eos_token_id=2, vocab_size=100),
    },
    "gpt_neox": {
        # Pythia / Dolly: parallel residual; the file also holds the buffers old exports carry
        "parallel": lambda: neox_config(64, 4, True, 112),
        # use_parallel_residual false (e.g. RedPajama-INCITE), 6 rotary dims of 24
        "sequential": lambda: neox_config(96, 4, False, 104),
    },
    "mpt": {
        # clip_qkv 1.0 clamps about a third of the fused QKV activations of these weights
        "clip": lambda: mpt_config(48, 4, 1.0, 128),
        # 6 heads: gen_slopes' non-power-of-two interleave
        "heads6": lambda: mpt_config(48, 6, None, 120),
    },
}

# ---------------------------------------------------------------------------------------------------
# Reading config.json as transformers does (defaults, legacy aliases).
# ---------------------------------------------------------------------------------------------------


class Arch:
    pass


def first(c, *keys, default=None):
    for k in keys:
        if k in c and c[k] is not None:
            return c[k]
    return default


def parse_config(c):
    a = Arch()
    mt = c.get("model_type")
    if mt == "llama":
        a.family = "llama"
        a.D, a.layers, a.H = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
        a.KV = first(c, "num_key_value_heads", default=a.H)
        a.hd = first(c, "head_dim", default=a.D // a.H)
        a.ffn, a.vocab = c["intermediate_size"], c["vocab_size"]
        a.eps = first(c, "rms_norm_eps", default=1e-6)
        a.theta = first(c, "rope_theta", default=10000.0)
        a.rot = a.hd
        a.tied = bool(c.get("tie_word_embeddings", False))
        if c.get("rope_scaling") not in (None, {}):
            raise SystemExit("llama rope_scaling is not implemented in the reference")
        a.embed, a.head = "model.embed_tokens.weight", "lm_head.weight"
    elif mt in ("falcon", "RefinedWebModel", "RefinedWeb"):
        # Custom-code checkpoints name heads/layers n_head/n_layer and grouped kv heads n_head_kv;
        # transformers' converter turns n_head_kv into num_kv_heads + new_decoder_architecture.
        a.family = "falcon"
        a.D = first(c, "hidden_size", "n_embed")
        a.layers = first(c, "num_hidden_layers", "n_layer")
        a.H = first(c, "num_attention_heads", "n_head")
        kv = first(c, "num_kv_heads", "n_head_kv")
        a.new_arch = bool(first(c, "new_decoder_architecture",
                                default=(mt == "RefinedWeb" or "n_head_kv" in c)))
        a.multi_query = bool(first(c, "multi_query", default=True))
        a.parallel = bool(first(c, "parallel_attn", default=True))
        a.bias = bool(first(c, "bias", default=False))
        a.alibi = bool(first(c, "alibi", default=False))
        a.eps = first(c, "layer_norm_epsilon", default=1e-5)
        a.theta = first(c, "rope_theta", default=10000.0)
        a.hd = a.D // a.H
        a.rot = a.hd
        if a.new_arch:
            a.KV = kv if kv is not None else a.H
        elif a.multi_query:
            a.KV = 1
        else:
            a.KV = kv if kv is not None else a.H
        a.ffn = first(c, "ffn_hidden_size", default=4 * a.D)
        a.num_ln = first(c, "num_ln_in_parallel_attn", default=2 if a.new_arch else None)
        if first(c, "activation", default="gelu") != "gelu":
            raise SystemExit("falcon activation other than gelu not implemented")
        if c.get("apply_residual_connection_post_layernorm"):
            raise SystemExit("apply_residual_connection_post_layernorm not implemented")
        a.vocab = c["vocab_size"]
        a.tied = bool(c.get("tie_word_embeddings", True))
        a.embed, a.head = "transformer.word_embeddings.weight", "lm_head.weight"
    elif mt == "gpt_neox":
        a.family = "gpt_neox"
        a.D, a.layers, a.H = c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"]
        a.KV, a.hd = a.H, a.D // a.H
        a.rot = int(a.hd * first(c, "rotary_pct", "partial_rotary_factor", default=0.25))
        a.theta = first(c, "rotary_emb_base", "rope_theta", default=10000)
        a.ffn, a.vocab = c["intermediate_size"], c["vocab_size"]
        a.eps = first(c, "layer_norm_eps", default=1e-5)
        a.parallel = bool(first(c, "use_parallel_residual", default=True))
        a.tied = bool(c.get("tie_word_embeddings", False))
        if first(c, "hidden_act", default="gelu") != "gelu":
            raise SystemExit("gpt_neox hidden_act other than gelu not implemented")
        if not first(c, "attention_bias", default=True):
            raise SystemExit("gpt_neox without attention biases not implemented")
        a.embed, a.head = "gpt_neox.embed_in.weight", "embed_out.weight"
    elif mt == "mpt":
        a.family = "mpt"
        a.D, a.H, a.layers = c["d_model"], c["n_heads"], c["n_layers"]
        a.KV, a.hd, a.rot = a.H, a.D // a.H, 0
        ac = c.get("attn_config", {})
        if not ac.get("alibi", False) or ac.get("qk_ln") or ac.get("attn_type", "multihead_attention") != "multihead_attention":
            raise SystemExit("mpt without alibi, with qk_ln or grouped attention is not implemented")
        a.alibi_max = ac.get("alibi_bias_max", 8)
        a.clip = ac.get("clip_qkv")
        a.scale = ac.get("softmax_scale") or 1 / math.sqrt(a.D / a.H)
        a.ffn = c.get("expansion_ratio", 4) * a.D
        a.vocab = c["vocab_size"]
        a.eps = first(c, "layer_norm_epsilon", default=1e-5)
        if not c.get("no_bias", True) or c.get("logit_scale") is not None:
            raise SystemExit("mpt with biases or logit_scale is not implemented")
        a.tied = True
        a.embed, a.head = "transformer.wte.weight", None
    else:
        raise SystemExit(f"model_type {mt!r} not covered by the reference")
    if a.tied:
        a.head = a.embed
    return a


# ---------------------------------------------------------------------------------------------------
# Tensor names and shapes (the checkpoint's own), with how they are initialised and whether AdamW
# decays them in Lathe's convention (projection matrices and an untied head: yes; embeddings,
# norms, biases: no).
# ---------------------------------------------------------------------------------------------------


def tensor_specs(a):
    """Returns [(name, shape, kind)] with kind in matrix, embed, norm_w, norm_b, bias."""
    D, H, KV, hd = a.D, a.H, a.KV, a.hd
    s = [(a.embed, (a.vocab, D), "embed")]
    for l in range(a.layers):
        if a.family == "llama":
            p = f"model.layers.{l}."
            s += [(p + "input_layernorm.weight", (D,), "norm_w"),
                  (p + "self_attn.q_proj.weight", (H * hd, D), "matrix"),
                  (p + "self_attn.k_proj.weight", (KV * hd, D), "matrix"),
                  (p + "self_attn.v_proj.weight", (KV * hd, D), "matrix"),
                  (p + "self_attn.o_proj.weight", (D, H * hd), "matrix"),
                  (p + "post_attention_layernorm.weight", (D,), "norm_w"),
                  (p + "mlp.gate_proj.weight", (a.ffn, D), "matrix"),
                  (p + "mlp.up_proj.weight", (a.ffn, D), "matrix"),
                  (p + "mlp.down_proj.weight", (D, a.ffn), "matrix")]
        elif a.family == "falcon":
            p = f"transformer.h.{l}."
            if a.new_arch and a.num_ln == 2:
                norms = ["ln_attn", "ln_mlp"]
            elif a.parallel:
                norms = ["input_layernorm"]
            else:
                norms = ["input_layernorm", "post_attention_layernorm"]
            for n in norms:  # Falcon's LayerNorms always have biases, whatever config.bias says
                s += [(p + n + ".weight", (D,), "norm_w"), (p + n + ".bias", (D,), "norm_b")]
            qkv = (H + 2 * KV) * hd
            lin = [("self_attention.query_key_value", qkv, D), ("self_attention.dense", D, H * hd),
                   ("mlp.dense_h_to_4h", a.ffn, D), ("mlp.dense_4h_to_h", D, a.ffn)]
            for n, o, i in lin:
                s.append((p + n + ".weight", (o, i), "matrix"))
                if a.bias:
                    s.append((p + n + ".bias", (o,), "bias"))
        elif a.family == "gpt_neox":
            p = f"gpt_neox.layers.{l}."
            for n in ["input_layernorm", "post_attention_layernorm"]:
                s += [(p + n + ".weight", (D,), "norm_w"), (p + n + ".bias", (D,), "norm_b")]
            for n, o, i in [("attention.query_key_value", 3 * D, D), ("attention.dense", D, D),
                            ("mlp.dense_h_to_4h", a.ffn, D), ("mlp.dense_4h_to_h", D, a.ffn)]:
                s += [(p + n + ".weight", (o, i), "matrix"), (p + n + ".bias", (o,), "bias")]
        elif a.family == "mpt":
            p = f"transformer.blocks.{l}."
            s += [(p + "norm_1.weight", (D,), "norm_w"),
                  (p + "attn.Wqkv.weight", (3 * D, D), "matrix"),
                  (p + "attn.out_proj.weight", (D, D), "matrix"),
                  (p + "norm_2.weight", (D,), "norm_w"),
                  (p + "ffn.up_proj.weight", (a.ffn, D), "matrix"),
                  (p + "ffn.down_proj.weight", (D, a.ffn), "matrix")]
    if a.family == "llama":
        s.append(("model.norm.weight", (D,), "norm_w"))
    elif a.family == "falcon":
        s += [("transformer.ln_f.weight", (D,), "norm_w"), ("transformer.ln_f.bias", (D,), "norm_b")]
    elif a.family == "gpt_neox":
        s += [("gpt_neox.final_layer_norm.weight", (D,), "norm_w"),
              ("gpt_neox.final_layer_norm.bias", (D,), "norm_b")]
    elif a.family == "mpt":
        s.append(("transformer.norm_f.weight", (D,), "norm_w"))
    if not a.tied:
        s.append((a.head, (a.vocab, D), "matrix"))
    return s


def decays(name, kind):
    # Lathe's train.decays: KindMatrix (projections and an untied output head) only.
    return kind == "matrix"


# Standard deviations of the random weights: larger than the usual 0.02 so that the logits spread
# over a few units (an engine that is off shows, and greedy decoding has clear winners).
STD = {"matrix": 0.15, "embed": 0.4, "bias": 0.05}


def random_tensors(a, seed, cfg):
    rng = np.random.Generator(np.random.PCG64(seed))
    out = {}
    for name, shape, kind in tensor_specs(a):
        if kind == "norm_w":
            t = 1 + 0.1 * rng.standard_normal(shape)
        elif kind == "norm_b":
            t = 0.05 * rng.standard_normal(shape)
        else:
            t = STD[kind] * rng.standard_normal(shape)
        out[name] = t.astype(np.float32)
    if a.family == "gpt_neox" and cfg.get("use_parallel_residual"):
        # Buffers that Pythia-era exports keep in the state dict; a loader must ignore them.
        n = cfg["max_position_embeddings"]
        inv = 1.0 / (cfg["rotary_emb_base"] ** (np.arange(0, a.rot, 2) / a.rot))
        for l in range(a.layers):
            p = f"gpt_neox.layers.{l}.attention."
            out[p + "bias"] = np.tril(np.ones((n, n), dtype=bool)).reshape(1, 1, n, n)
            out[p + "masked_bias"] = np.array(-1e9, dtype=np.float32)
            out[p + "rotary_emb.inv_freq"] = inv.astype(np.float32)
    return out


# ---------------------------------------------------------------------------------------------------
# safetensors, written and read by hand: u64 little-endian header length, JSON header, raw data.
# ---------------------------------------------------------------------------------------------------

ST_DTYPES = {"F32": np.float32, "F64": np.float64, "BOOL": np.bool_, "I64": np.int64}
NP_TO_ST = {np.dtype(np.float32): "F32", np.dtype(np.bool_): "BOOL"}


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        arr = np.array(tensors[name], order="C")  # not ascontiguousarray: it turns a 0-d scalar into 1-d
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": NP_TO_ST[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # data starts 8-aligned, as the safetensors library pads it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base, out = 8 + n, {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        arr = np.frombuffer(data[base + lo:base + hi], dtype=np.dtype(ST_DTYPES[e["dtype"]]).newbyteorder("<"))
        out[name] = arr.reshape(e["shape"])
    return out


def load_model(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    a = parse_config(cfg)
    raw = read_safetensors(os.path.join(d, "model.safetensors"))
    P = {}
    for name, shape, kind in tensor_specs(a):
        if name not in raw:
            raise SystemExit(f"{d}: tensor {name} missing")
        if tuple(raw[name].shape) != tuple(shape):
            raise SystemExit(f"{d}: tensor {name} has shape {raw[name].shape}, want {shape}")
        P[name] = torch.tensor(raw[name].astype(np.float64), dtype=DT)
    return a, P


# ---------------------------------------------------------------------------------------------------
# The forward pass. x is [B, T, D]; q is [B, H, T, hd]; k, v are [B, KV, S, hd] with S = past + T.
# past is one (k, v) per layer as attention sees them (after rotary), so cached decoding reuses them.
# ---------------------------------------------------------------------------------------------------


def rope(x, pos, rot, base):
    """rotate_half rotary on the first rot dims of each head: dim i pairs with i + rot/2, angle
    pos·base^(−2i/rot); the other head dims pass through (GPT-NeoX's rotary_pct)."""
    if rot == 0:
        return x
    inv = 1.0 / (float(base) ** (torch.arange(0, rot, 2, dtype=DT) / rot))
    ang = pos.to(DT)[:, None] * inv[None, :]
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    xr, xp = x[..., :rot], x[..., rot:]
    x1, x2 = xr[..., :rot // 2], xr[..., rot // 2:]
    return torch.cat([xr * cos + torch.cat([-x2, x1], dim=-1) * sin, xp], dim=-1)


def bloom_slopes(h):
    """Falcon's ALiBi slopes (Bloom's build_alibi_tensor): 2^(−8i/n) for the largest power of two
    n ≤ h, then the odd powers of 2^(−4/n) for the remaining heads."""
    n = 2 ** math.floor(math.log2(h))
    base = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
    s = [base ** i for i in range(1, n + 1)]
    if n != h:
        extra = 2.0 ** (-(2.0 ** -(math.log2(2 * n) - 3)))
        s += [extra ** i for i in range(1, 1 + 2 * min(n, h - n), 2)]
    return torch.tensor(s, dtype=DT)


def mpt_slopes(h, bias_max=8):
    """MPT's gen_slopes: 1/2^(i·bias_max/n), i = 1..n for n the next power of two ≥ h; for h < n
    the odd-indexed slopes first, then the even ones, cut to h."""
    n = 2 ** math.ceil(math.log2(h))
    s = [1.0 / 2.0 ** (i * bias_max / n) for i in range(1, n + 1)]
    if n != h:
        s = (s[1::2] + s[::2])[:h]
    return torch.tensor(s, dtype=DT)


def attend(q, k, v, qpos, kpos, scale, bias=None, bias_before_scale=False):
    """Causal attention; query head h reads kv head h // (H/KV). bias is [H, S], added to the raw
    scores before the scale (Falcon's ALiBi) or to the scaled scores (MPT's)."""
    H, KV = q.shape[1], k.shape[1]
    if KV != H:
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
    s = q @ k.transpose(-1, -2)
    if bias is None:
        s = s * scale
    elif bias_before_scale:
        s = (s + bias[None, :, None, :]) * scale
    else:
        s = s * scale + bias[None, :, None, :]
    s = s.masked_fill(kpos[None, :] > qpos[:, None], float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def heads(x, n, hd):  # [B, T, n*hd] -> [B, n, T, hd]
    B, T = x.shape[:2]
    return x.reshape(B, T, n, hd).transpose(1, 2)


def merge(x):  # [B, H, T, hd] -> [B, T, H*hd]
    B, H, T, hd = x.shape
    return x.transpose(1, 2).reshape(B, T, H * hd)


def cat_past(past, k, v):
    if past is None:
        return k, v
    return torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)


def lin(P, name, x):
    y = x @ P[name + ".weight"].T
    b = P.get(name + ".bias")
    return y if b is None else y + b


def layer_norm(P, name, x, eps):
    return F.layer_norm(x, (x.shape[-1],), P[name + ".weight"], P.get(name + ".bias"), eps)


def rms_norm(P, name, x, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * P[name + ".weight"]


def llama_block(a, P, l, x, pos, kpos, past):
    p = f"model.layers.{l}."
    h = rms_norm(P, p + "input_layernorm", x, a.eps)
    q = rope(heads(lin(P, p + "self_attn.q_proj", h), a.H, a.hd), pos, a.rot, a.theta)
    k = rope(heads(lin(P, p + "self_attn.k_proj", h), a.KV, a.hd), pos, a.rot, a.theta)
    v = heads(lin(P, p + "self_attn.v_proj", h), a.KV, a.hd)
    k, v = cat_past(past, k, v)
    x = x + lin(P, p + "self_attn.o_proj", merge(attend(q, k, v, pos, kpos, 1 / math.sqrt(a.hd))))
    h = rms_norm(P, p + "post_attention_layernorm", x, a.eps)
    x = x + lin(P, p + "mlp.down_proj", F.silu(lin(P, p + "mlp.gate_proj", h)) * lin(P, p + "mlp.up_proj", h))
    return x, (k, v)


def falcon_split(a, fused):
    """Falcon's fused query_key_value rows → q [B,H,T,hd], k and v [B,KV,T,hd]:
    new_decoder_architecture: per kv group g, [q × H/KV, k, v] (query heads g·H/KV... use kv head g);
    multi_query: [q × H, k, v]; otherwise per head [q, k, v] interleaved."""
    B, T = fused.shape[:2]
    H, KV, hd = a.H, a.KV, a.hd
    if a.new_arch:
        r = H // KV
        f = fused.view(B, T, KV, r + 2, hd)
        q, k, v = f[:, :, :, :r].reshape(B, T, H, hd), f[:, :, :, r], f[:, :, :, r + 1]
    elif a.multi_query:
        f = fused.view(B, T, H + 2, hd)
        q, k, v = f[:, :, :H], f[:, :, H:H + 1], f[:, :, H + 1:]
    else:
        f = fused.view(B, T, H, 3, hd)
        q, k, v = f[:, :, :, 0], f[:, :, :, 1], f[:, :, :, 2]
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


def falcon_block(a, P, l, x, pos, kpos, past):
    p = f"transformer.h.{l}."
    if a.new_arch and a.num_ln == 2:
        attn_in = layer_norm(P, p + "ln_attn", x, a.eps)
        mlp_in = layer_norm(P, p + "ln_mlp", x, a.eps)
    else:
        attn_in = layer_norm(P, p + "input_layernorm", x, a.eps)
    q, k, v = falcon_split(a, lin(P, p + "self_attention.query_key_value", attn_in))
    scale = 1 / math.sqrt(a.hd)
    if a.alibi:
        # HF: attention_logits = scores + alibi; attention_logits *= inv_norm_factor; the slope
        # times the key's position (softmax ignores the per-query shift to relative distances).
        k, v = cat_past(past, k, v)
        bias = bloom_slopes(a.H)[:, None] * kpos.to(DT)[None, :]
        o = attend(q, k, v, pos, kpos, scale, bias, bias_before_scale=not getattr(a, "swap_alibi", False))
    else:
        q, k = rope(q, pos, a.rot, a.theta), rope(k, pos, a.rot, a.theta)
        k, v = cat_past(past, k, v)
        o = attend(q, k, v, pos, kpos, scale)
    attn = lin(P, p + "self_attention.dense", merge(o))
    residual = x
    if not a.new_arch:
        if a.parallel:
            mlp_in = attn_in
        else:
            residual = x + attn
            mlp_in = layer_norm(P, p + "post_attention_layernorm", residual, a.eps)
    elif a.parallel and a.num_ln == 1:
        mlp_in = attn_in
    mlp = lin(P, p + "mlp.dense_4h_to_h", F.gelu(lin(P, p + "mlp.dense_h_to_4h", mlp_in)))
    if a.new_arch or a.parallel:
        mlp = mlp + attn
    return residual + mlp, (k, v)


def neox_split(a, fused):
    """GPT-NeoX's query_key_value rows, per head [q, k, v]: view(heads, 3·hd)."""
    B, T = fused.shape[:2]
    f = fused.view(B, T, a.H, 3 * a.hd).transpose(1, 2)
    return f[..., :a.hd], f[..., a.hd:2 * a.hd], f[..., 2 * a.hd:]


def neox_block(a, P, l, x, pos, kpos, past):
    p = f"gpt_neox.layers.{l}."
    q, k, v = neox_split(a, lin(P, p + "attention.query_key_value", layer_norm(P, p + "input_layernorm", x, a.eps)))
    q, k = rope(q, pos, a.rot, a.theta), rope(k, pos, a.rot, a.theta)
    k, v = cat_past(past, k, v)
    attn = lin(P, p + "attention.dense", merge(attend(q, k, v, pos, kpos, 1 / math.sqrt(a.hd))))

    def mlp(h):
        return lin(P, p + "mlp.dense_4h_to_h", F.gelu(lin(P, p + "mlp.dense_h_to_4h", h)))
    if a.parallel:  # x + attn(ln1(x)) + mlp(ln2(x))
        return x + attn + mlp(layer_norm(P, p + "post_attention_layernorm", x, a.eps)), (k, v)
    y = x + attn
    return y + mlp(layer_norm(P, p + "post_attention_layernorm", y, a.eps)), (k, v)


def mpt_split(a, fused):
    """MPT's Wqkv rows in thirds: all of q, all of k, all of v (chunk(3))."""
    q, k, v = fused.chunk(3, dim=-1)
    return heads(q, a.H, a.hd), heads(k, a.H, a.hd), heads(v, a.H, a.hd)


def mpt_block(a, P, l, x, pos, kpos, past):
    p = f"transformer.blocks.{l}."
    fused = lin(P, p + "attn.Wqkv", layer_norm(P, p + "norm_1", x, a.eps))
    if a.clip:
        fused = fused.clamp(min=-a.clip, max=a.clip)
    q, k, v = mpt_split(a, fused)
    k, v = cat_past(past, k, v)
    # HF's build_mpt_alibi_tensor: slope·(j − (S−1)) for key j of S, added after the scale.
    bias = mpt_slopes(a.H, a.alibi_max)[:, None] * (kpos - kpos[-1]).to(DT)[None, :]
    x = x + lin(P, p + "attn.out_proj", merge(attend(q, k, v, pos, kpos, a.scale, bias)))
    h = layer_norm(P, p + "norm_2", x, a.eps)
    return x + lin(P, p + "ffn.down_proj", F.gelu(lin(P, p + "ffn.up_proj", h))), (k, v)


BLOCKS = {"llama": llama_block, "falcon": falcon_block, "gpt_neox": neox_block, "mpt": mpt_block}
FINAL_NORM = {"llama": "model.norm", "falcon": "transformer.ln_f", "gpt_neox": "gpt_neox.final_layer_norm",
              "mpt": "transformer.norm_f"}


def forward(a, P, tokens, past=None):
    """tokens [B, T] → logits [B, T, V] and the per-layer (k, v) after these tokens."""
    T = tokens.shape[1]
    start = 0 if past is None else past[0][0].shape[2]
    pos = torch.arange(start, start + T)
    kpos = torch.arange(0, start + T)
    x = P[a.embed][tokens]
    present = []
    for l in range(a.layers):
        x, kv = BLOCKS[a.family](a, P, l, x, pos, kpos, None if past is None else past[l])
        present.append(kv)
    if a.family == "llama":
        x = rms_norm(P, FINAL_NORM["llama"], x, a.eps)
    else:
        x = layer_norm(P, FINAL_NORM[a.family], x, a.eps)
    return x @ P[a.head].T, present


def masked_loss_sum(a, P, tokens, targets, mask):
    logits, _ = forward(a, P, tokens)
    V = logits.shape[-1]
    tgt = torch.where(mask > 0, targets, torch.zeros_like(targets))
    ce = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1), reduction="none")
    return (ce * mask.reshape(-1)).sum()


# ---------------------------------------------------------------------------------------------------
# Training as Lathe's train.Trainer does it.
# ---------------------------------------------------------------------------------------------------


def lathe_lr(s, step):
    """train.Schedule.LR: linear warmup (step+1)/warmup, then linear/cosine decay to min at total."""
    peak, lo, warm, total = s["peak_lr"], s.get("min_lr", 0.0), s.get("warmup_steps", 0), s.get("total_steps", 0)
    decay = s.get("decay", "linear") or "linear"
    if step < warm:
        return peak * (step + 1) / warm
    if decay == "constant" or total <= warm:
        return peak
    frac = min(1.0, (step - warm) / (total - warm))
    if decay == "cosine":
        return lo + (peak - lo) * 0.5 * (1 + math.cos(math.pi * frac))
    return peak + (lo - peak) * frac


def batch_tensors(b):
    t = torch.tensor(b["tokens"], dtype=torch.long)
    return t, torch.tensor(b["targets"], dtype=torch.long), torch.tensor(b["mask"], dtype=DT)


def train(a, P, tc):
    """AdamW (torch's, whose update θ ← θ − lr·λ·θ − lr/(1−β1ᵗ)·m/(√v/√(1−β2ᵗ)+ε) is Lathe's),
    weight decay on Lathe's KindMatrix tensors only, global-norm clipping (torch's
    max/(norm+1e-6), Lathe's too), the loss of a step Σ mask·CE / Σ mask over its micro-batches."""
    kinds = {n: k for n, _, k in tensor_specs(a)}
    params = [P[n] for n in kinds]
    for p in params:
        p.requires_grad_(True)
    ad = tc.get("adamw", {})
    wd = ad.get("weight_decay", 0.0)
    groups = [{"params": [P[n] for n in kinds if decays(n, kinds[n])], "weight_decay": wd},
              {"params": [P[n] for n in kinds if not decays(n, kinds[n])], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=tc["schedule"]["peak_lr"], betas=(ad.get("beta1") or 0.9, ad.get("beta2") or 0.999),
                            eps=ad.get("eps") or 1e-8)
    losses, norms, lrs = [], [], []
    for step in range(tc["steps"]):
        micro = [batch_tensors(b) for b in tc["batches"][step % len(tc["batches"])]]
        count = sum(float(m.sum()) for _, _, m in micro)
        opt.zero_grad(set_to_none=False)
        total = 0.0
        for t, y, m in micro:
            s = masked_loss_sum(a, P, t, y, m)
            (s / count).backward()
            total += float(s)
        max_norm = tc.get("max_grad_norm", 0.0)
        if max_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        else:
            norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
        lr = lathe_lr(tc["schedule"], step)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        losses.append(total / count)
        norms.append(norm)
        lrs.append(lr)
    for p in params:
        p.requires_grad_(False)
    return losses, norms, lrs


def greedy(a, P, prompt, n):
    """n argmax tokens after prompt, each from a full forward over the whole sequence (no cache, no
    EOS stop), with the gap between the best and second-best logit."""
    seq, toks, margins = list(prompt), [], []
    for _ in range(n):
        logits, _ = forward(a, P, torch.tensor([seq]))
        last = logits[0, -1]
        top = torch.topk(last, 2)
        toks.append(int(top.indices[0]))
        margins.append(float(top.values[0] - top.values[1]))
        seq.append(toks[-1])
    return toks, margins


# ---------------------------------------------------------------------------------------------------
# Commands.
# ---------------------------------------------------------------------------------------------------


def cmd_make(family, layout, seed, out):
    if family not in LAYOUTS or layout not in LAYOUTS[family]:
        raise SystemExit(f"unknown family/layout {family}/{layout}; see `layouts`")
    cfg = LAYOUTS[family][layout]()
    a = parse_config(cfg)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(out, "model.safetensors"), random_tensors(a, seed, cfg))


def cmd_run(model, inp, out):
    torch.set_grad_enabled(True)
    a, P = load_model(model)
    with open(inp) as f:
        req = json.load(f)
    res = {"vocab": a.vocab}
    with torch.no_grad():
        t, y, m = batch_tensors(req["batch"])
        logits, _ = forward(a, P, t)
        res["logits"] = [float(v) for v in logits.reshape(-1)]
        res["loss_sum"] = float(masked_loss_sum(a, P, t, y, m))
        res["count"] = float(m.sum())
        res["greedy"], res["greedy_margins"] = greedy(a, P, req["prompt"], req.get("new_tokens", 32))
    if "train" in req:
        res["train_losses"], res["grad_norms"], res["lrs"] = train(a, P, req["train"])
        with torch.no_grad():
            res["final_loss"] = float(masked_loss_sum(a, P, t, y, m)) / res["count"]
    with open(out, "w") as f:
        json.dump(res, f)


# ------------------------------------ self-checks of the reference ---------------------------------


class Checker:
    def __init__(self):
        self.failed = 0

    def check(self, what, ok, detail=""):
        print(f"  {'ok  ' if ok else 'FAIL'} {what} {detail}")
        if not ok:
            self.failed += 1


def explicit_rope(x, pos, rot, base):
    """Rotary written element by element: for each head dim pair (i, i+rot/2), the 2-D rotation by
    pos·base^(−2i/rot); the rest copied. A second derivation of rope()."""
    y = x.clone()
    half = rot // 2
    for t in range(x.shape[-2]):
        for i in range(half):
            th = float(pos[t]) * float(base) ** (-2.0 * i / rot)
            c, s = math.cos(th), math.sin(th)
            a_, b_ = x[..., t, i], x[..., t, i + half]
            y[..., t, i] = a_ * c - b_ * s
            y[..., t, i + half] = b_ * c + a_ * s
    return y


def explicit_rows(a):
    """Row indices of q, k, v (each a list of per-head row lists) in the fused QKV weight, built
    from the layout descriptions rather than from tensor views."""
    H, KV, hd = a.H, a.KV, a.hd
    q, k, v = [], [], []
    if a.family == "falcon" and a.new_arch:
        r = H // KV
        for g in range(KV):
            base = g * (r + 2) * hd
            for j in range(r):
                q.append(list(range(base + j * hd, base + (j + 1) * hd)))
            k.append(list(range(base + r * hd, base + (r + 1) * hd)))
            v.append(list(range(base + (r + 1) * hd, base + (r + 2) * hd)))
    elif a.family == "falcon" and a.multi_query:
        q = [list(range(h * hd, (h + 1) * hd)) for h in range(H)]
        k = [list(range(H * hd, (H + 1) * hd))]
        v = [list(range((H + 1) * hd, (H + 2) * hd))]
    elif a.family in ("falcon", "gpt_neox"):  # per head [q, k, v]
        for h in range(H):
            q.append(list(range(3 * h * hd, (3 * h + 1) * hd)))
            k.append(list(range((3 * h + 1) * hd, (3 * h + 2) * hd)))
            v.append(list(range((3 * h + 2) * hd, (3 * h + 3) * hd)))
    else:  # mpt: thirds
        D = a.D
        for h in range(H):
            q.append(list(range(h * hd, (h + 1) * hd)))
            k.append(list(range(D + h * hd, D + (h + 1) * hd)))
            v.append(list(range(2 * D + h * hd, 2 * D + (h + 1) * hd)))
    return q, k, v


def selfcheck_layout(family, layout, ck):
    with tempfile.TemporaryDirectory() as d:
        cmd_make(family, layout, 7, d)
        a, P = load_model(d)
        cfg = json.load(open(os.path.join(d, "config.json")))
        raw = read_safetensors(os.path.join(d, "model.safetensors"))
        want = random_tensors(a, 7, cfg)
        ck.check("safetensors round trip", set(raw) == set(want) and all(np.array_equal(raw[n], want[n]) for n in want))
        if not a.tied:
            ck.check("untied head present", a.head in raw)
        else:
            ck.check("tied head absent from the file", "lm_head.weight" not in raw)
    g = torch.Generator().manual_seed(3)
    B, T = 2, 12
    tokens = torch.randint(0, min(a.vocab, 90), (B, T), generator=g)
    with torch.no_grad():
        full, _ = forward(a, P, tokens)
        # Incremental decoding: a 5-token prefix, then one token at a time through the cache.
        logits, past = forward(a, P, tokens[:, :5])
        steps = [logits]
        for t in range(5, T):
            l1, past = forward(a, P, tokens[:, t:t + 1], past)
            steps.append(l1)
        inc = torch.cat(steps, dim=1)
        d = float((inc - full).abs().max())
        ck.check("KV-cache decode equals full forward", d < 1e-10, f"(max diff {d:.2e})")
        # ...and the check has teeth: the last token without its past is a different prediction.
        nopast, _ = forward(a, P, tokens[:, T - 1:])
        d = float((nopast[:, 0] - full[:, -1]).abs().max())
        ck.check("decoding without the cache differs", d > 1e-2, f"(max diff {d:.2e})")
        alone, _ = forward(a, P, tokens[1:])
        d = float((alone - full[1:]).abs().max())
        ck.check("sequence independent of its batch", d < 1e-12, f"(max diff {d:.2e})")
        spread = float(full.std())
        ck.check("logits not trivially uniform", spread > 0.5, f"(std {spread:.2f})")
        # Fused QKV split against row indices built from the layout description.
        if a.family != "llama":
            name = {"falcon": "transformer.h.0.self_attention.query_key_value.weight",
                    "gpt_neox": "gpt_neox.layers.0.attention.query_key_value.weight",
                    "mpt": "transformer.blocks.0.attn.Wqkv.weight"}[a.family]
            W = P[name]
            h = torch.randn(1, 3, a.D, dtype=DT, generator=g)
            fused = h @ W.T
            split = {"falcon": falcon_split, "gpt_neox": neox_split, "mpt": mpt_split}[a.family]
            q, k, v = split(a, fused)
            rq, rk, rv = explicit_rows(a)
            ok = all(torch.allclose(t_[0, i], h[0] @ W[rows].T)
                     for t_, rs in ((q, rq), (k, rk), (v, rv)) for i, rows in enumerate(rs))
            ok = ok and q.shape[1] == a.H and k.shape[1] == a.KV
            ck.check("fused QKV split matches the documented row layout", ok, f"(H {a.H}, KV {k.shape[1]}, hd {a.hd})")
        # Rotary against the element-by-element rotation, and relative-position invariance.
        if a.rot:
            x = torch.randn(1, 2, 6, a.hd, dtype=DT, generator=g)
            pos = torch.arange(3, 9)
            d = float((rope(x, pos, a.rot, a.theta) - explicit_rope(x, pos, a.rot, a.theta)).abs().max())
            ck.check(f"rotary (rotate_half on {a.rot} of {a.hd} dims, base {a.theta}) equals explicit pairs", d < 1e-12, f"(max diff {d:.2e})")
            qx, kx = torch.randn(a.hd, dtype=DT, generator=g), torch.randn(a.hd, dtype=DT, generator=g)

            def dot(pq, pk):
                r1 = rope(qx.view(1, 1, 1, -1), torch.tensor([pq]), a.rot, a.theta)
                r2 = rope(kx.view(1, 1, 1, -1), torch.tensor([pk]), a.rot, a.theta)
                return float((r1 * r2).sum())
            ck.check("rotary scores depend on distance only", abs(dot(7, 3) - dot(20, 16)) < 1e-10)
    # Gradients: autograd against central differences of the masked loss (float64), for elements
    # of the embedding, the fused/first projection, a norm and (where present) a bias.
    y = torch.randint(0, min(a.vocab, 90), (B, T), generator=g)
    m = torch.ones(B, T, dtype=DT)
    m[0, :3] = 0
    m[1, -4:] = 0
    names = [a.embed] + [n for n, _, k in tensor_specs(a) if ".0." in n or ".1." in n][:4]
    names += [n for n, _, k in tensor_specs(a) if k in ("norm_b", "bias")][:1]
    for n in names:
        P[n].requires_grad_(True)
    loss = masked_loss_sum(a, P, tokens, y, m)
    grads = torch.autograd.grad(loss, [P[n] for n in names])
    worst = 0.0
    with torch.no_grad():
        for n, gr in zip(names, grads):
            P[n].requires_grad_(False)
            flat, gflat = P[n].view(-1), gr.reshape(-1)
            idx = [int(gflat.abs().argmax())] + torch.randint(0, flat.numel(), (2,), generator=g).tolist()
            if n == a.embed:
                idx = [int(tokens[0, 4]) * a.D + 1]
            for i in idx:
                h = 1e-6
                old = float(flat[i])
                flat[i] = old + h
                up = float(masked_loss_sum(a, P, tokens, y, m))
                flat[i] = old - h
                dn = float(masked_loss_sum(a, P, tokens, y, m))
                flat[i] = old
                fd = (up - dn) / (2 * h)
                worst = max(worst, abs(fd - float(gflat[i])) / max(1e-3, abs(fd)))
    ck.check("autograd equals finite differences", worst < 1e-5, f"(worst rel {worst:.1e} over {len(names)} tensors)")
    if getattr(a, "alibi", False):
        # Where Falcon adds ALiBi (before the 1/sqrt(hd) scale) matters for these weights, so an
        # engine that adds it after the scale, as MPT does, fails the comparison.
        b = Arch()
        b.__dict__.update(a.__dict__)
        b.swap_alibi = True
        with torch.no_grad():
            d = float((forward(b, P, tokens)[0] - forward(a, P, tokens)[0]).abs().max())
        ck.check("ALiBi placement changes the logits", d > 1e-2, f"(max diff {d:.2e})")
    if getattr(a, "clip", None):
        b = Arch()
        b.__dict__.update(a.__dict__)
        b.clip = None
        with torch.no_grad():
            d = float((forward(b, P, tokens)[0] - forward(a, P, tokens)[0]).abs().max())
        ck.check(f"clip_qkv {a.clip} changes the logits", d > 1e-2, f"(max diff {d:.2e})")
    if cfg.get("model_type") in ("RefinedWebModel", "RefinedWeb"):
        # transformers' convert_custom_code_checkpoint.py: the legacy config is the modern one with
        # keys renamed and new_decoder_architecture set exactly when n_head_kv is present.
        conv = {k: v for k, v in cfg.items() if k != "auto_map"}
        conv["model_type"], conv["architectures"] = "falcon", ["FalconForCausalLM"]
        for old, new in (("n_head", "num_attention_heads"), ("n_layer", "num_hidden_layers"), ("n_head_kv", "num_kv_heads")):
            if old in conv:
                conv[new] = conv.pop(old)
        conv["new_decoder_architecture"] = "n_head_kv" in cfg
        ck.check("legacy config reads as its converted form", vars(parse_config(conv)) == vars(a),
                 f"(new_decoder_architecture {a.new_arch}, kv heads {a.KV})")
    if family == "falcon" and layout == "7b":
        # The multi-query layout is the new-decoder layout with one kv group: the same weights
        # through the other split path (and ln_attn = ln_mlp = input_layernorm) give the same model.
        b = Arch()
        b.__dict__.update(a.__dict__)
        b.new_arch, b.num_ln = True, 2
        Q = dict(P)
        for l in range(a.layers):
            for s in ("weight", "bias"):
                Q[f"transformer.h.{l}.ln_attn.{s}"] = P[f"transformer.h.{l}.input_layernorm.{s}"]
                Q[f"transformer.h.{l}.ln_mlp.{s}"] = P[f"transformer.h.{l}.input_layernorm.{s}"]
        with torch.no_grad():
            d = float((forward(b, Q, tokens)[0] - forward(a, P, tokens)[0]).abs().max())
        ck.check("multi-query = new decoder architecture with one kv head", d < 1e-12, f"(max diff {d:.2e})")


def selfcheck_global(ck):
    p = lambda *e: [2.0 ** x for x in e]
    ck.check("falcon (Bloom) slopes, 4 heads", bloom_slopes(4).tolist() == p(-2, -4, -6, -8))
    ck.check("falcon (Bloom) slopes, 6 heads", bloom_slopes(6).tolist() == p(-2, -4, -6, -8, -1, -3))
    ck.check("falcon (Bloom) slopes, 8 heads", bloom_slopes(8).tolist() == p(-1, -2, -3, -4, -5, -6, -7, -8))
    ck.check("mpt slopes, 4 heads", mpt_slopes(4).tolist() == p(-2, -4, -6, -8))
    ck.check("mpt slopes, 6 heads", mpt_slopes(6).tolist() == p(-2, -4, -6, -8, -1, -3))
    ck.check("mpt slopes equal Bloom's for 3..64 heads (alibi_bias_max 8)",
             all(torch.allclose(mpt_slopes(h), bloom_slopes(h)) for h in range(3, 65)))
    s = {"peak_lr": 1.0, "min_lr": 0.1, "warmup_steps": 4, "total_steps": 14, "decay": "cosine"}
    lrs = [lathe_lr(s, i) for i in (0, 3, 4, 9, 14, 20)]
    ck.check("Lathe schedule (warmup (step+1)/n, cosine to min)",
             np.allclose(lrs, [0.25, 1.0, 1.0, 0.55, 0.1, 0.1]), f"{lrs}")
    # torch's AdamW with decoupled decay is Lathe's tensor.AdamW written out.
    g = torch.Generator().manual_seed(5)
    th0 = torch.randn(50, dtype=DT, generator=g)
    th = th0.clone().requires_grad_(True)
    opt = torch.optim.AdamW([th], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    m = torch.zeros(50, dtype=DT)
    v = torch.zeros(50, dtype=DT)
    mine = th0.clone()
    for t in range(1, 4):
        gr = torch.randn(50, dtype=DT, generator=g)
        th.grad = gr.clone()
        opt.step()
        m = 0.9 * m + 0.1 * gr
        v = 0.999 * v + 0.001 * gr * gr
        step = 0.01 / (1 - 0.9 ** t)
        mine = mine - (step * m / (v.sqrt() / math.sqrt(1 - 0.999 ** t) + 1e-8) + 0.01 * 0.1 * mine)
    d = float((th.detach() - mine).abs().max())
    ck.check("torch AdamW equals Lathe's update formula", d < 1e-14, f"(max diff {d:.1e})")


def cmd_selfcheck(family, layout):
    ck = Checker()
    print("global:")
    selfcheck_global(ck)
    for f in LAYOUTS:
        if family and f != family:
            continue
        for lay in LAYOUTS[f]:
            if layout and lay != layout:
                continue
            print(f"{f}/{lay}:")
            selfcheck_layout(f, lay, ck)
    if ck.failed:
        print(f"{ck.failed} check(s) FAILED")
        sys.exit(1)
    print("all checks passed")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--family", required=True)
    mk.add_argument("--layout", required=True)
    mk.add_argument("--seed", type=int, default=1)
    mk.add_argument("--out", required=True)
    rn = sub.add_parser("run")
    rn.add_argument("--model", required=True)
    rn.add_argument("--input", required=True)
    rn.add_argument("--out", required=True)
    sc = sub.add_parser("selfcheck")
    sc.add_argument("--family")
    sc.add_argument("--layout")
    sub.add_parser("layouts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "make":
        cmd_make(args.family, args.layout, args.seed, args.out)
    elif args.cmd == "run":
        cmd_run(args.model, args.input, args.out)
    elif args.cmd == "selfcheck":
        cmd_selfcheck(args.family, args.layout)
    else:
        for f in LAYOUTS:
            print(f, " ".join(LAYOUTS[f]))


if __name__ == "__main__":
    main()
