#!/usr/bin/env bash
# table.sh: every engine figure of the engine-speed issues beside its peer, measured in one run, as
# one table: Lathe, the peer (OpenBLAS, PyTorch or llama.cpp) and the kernel the peer ran, their
# ratio, and MFU against the peak of this machine measured by the same run (bench/peak): the fp32 peak,
# or the bf16 one for bf16 products; a training step counts 6 FLOP per multiplying parameter per token
# (4 for LoRA, whose base gets no weight gradient; the embedding lookup is not counted) plus attention.
#
#   bench/table.sh [LLAMA_SRC]
#
# Rows: sgemm at the README's three shapes in three layouts (2 threads, OpenBLAS 0.3.21's OpenMP
# build); the training step of the ~58M llama (dim 512, 8 layers, vocab 32000, batch 4x128, full
# fine-tuning with AdamW) in fp32 against PyTorch 1.13, and in bf16 where both sides offer it
# (`lathe bench train --precision bf16`, PyTorch's bf16 autocast); LoRA at TinyLlama-1.1B's shape
# (dim 2048, 22 layers, 32/4 heads, ffn 5632, batch 1x256) with the epoch time of 1,000 rows x 256
# tokens; with LLAMA_SRC (a llama.cpp source tree, see bench/llamacpp_build.sh), decoding at batch 1
# and 8 on 1 and 2 threads (bench/generate_vs_llamacpp.sh) and prompt processing pp512
# (bench/prefill_vs_llamacpp.sh) on the same GGUF files. Each peer pair runs back to back.
#
# Peers at their best: the OpenBLAS and PyTorch commands, and only they, run with the OpenBLAS core
# type that bench/openblas_env.sh finds fastest on this CPU; the table prints its probes and the core
# OpenBLAS reports.
#
# Environment: TRAIN_STEPS (5), LORA_STEPS (3), SGEMM_REPS (5), and those of the decoding scripts
# (THREADS, BATCHES, NEW_TOKENS, PROMPT, BUILD); ROUNDS is 1 for them here: run the whole script
# again for more rounds. Needs gcc, Debian's libopenblas0-openmp, libopenblas-dev and python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
llama_src=${1:-}
TRAIN_STEPS=${TRAIN_STEPS:-5} LORA_STEPS=${LORA_STEPS:-3} SGEMM_REPS=${SGEMM_REPS:-5}
python=${TORCH_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results="$work/results.jsonl"
: >"$results"
source bench/openblas_env.sh

go build -o "$work/lathe" ./cmd/lathe
go build -o "$work/lathe_sgemm" ./bench/sgemm
go build -o "$work/peak" ./bench/peak
gcc -O2 -o "$work/openblas_sgemm" bench/openblas_sgemm.c -I/usr/include/x86_64-linux-gnu/openblas-openmp -L"$blasdir" -lopenblas

openblas_pick "$work/openblas_sgemm"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
family=$(sed -n 's/^cpu family[[:space:]]*: //p' /proc/cpuinfo | head -1)
modelno=$(sed -n 's/^model[[:space:]]*: //p' /proc/cpuinfo | head -1)
printf '{"bench":"machine","cpu":"%s","family":"%s","model":"%s","cores":%d,"blas_core":"%s","blas_probes":"%s"}\n' \
	"$cpu" "$family" "$modelno" "$(nproc)" "${blas_core:-?}" "$blas_probes" >>"$results"

echo "peak" >&2
GOMAXPROCS=2 "$work/peak" -threads 2 >>"$results"

echo "sgemm" >&2
for s in "768 3072 768" "2048 2048 2048" "512 32000 512"; do
	read -r m n k <<<"$s"
	for layout in AB ABt AtB; do
		o=$(peer_env "$work/openblas_sgemm" "$m" "$n" "$k" "$layout" "$SGEMM_REPS" | awk '{print $3}')
		read -r _ _ l kernel busy < <(GOMAXPROCS=2 "$work/lathe_sgemm" "$m" "$n" "$k" "$layout" "$SGEMM_REPS")
		printf '{"bench":"sgemm","shape":"%sx%sx%s","layout":"%s","lathe":%s,"peer":%s,"kernel":"%s","busy":"%s"}\n' \
			"$m" "$n" "$k" "$layout" "$l" "$o" "$kernel" "$busy" >>"$results"
	done
done

train_shape=(--dim 512 --layers 8 --heads 8 --kv-heads 8 --ffn 1376 --vocab 32000 --batch 4 --seq 128 --steps "$TRAIN_STEPS")
train() { # PRECISION: a Lathe run and a PyTorch run of the training step, back to back
	local lflags=() tflags=()
	if [ "$1" = bf16 ]; then
		lflags=(--precision bf16) tflags=(--precision bf16)
	fi
	echo "train $1" >&2
	GOMAXPROCS=2 "$work/lathe" bench train "${train_shape[@]}" "${lflags[@]}" 2>/dev/null | tail -1 |
		sed 's/^{/{"row":"train-'"$1"'","side":"lathe",/' >>"$results"
	peer_env "$python" bench/torch_llama.py "${train_shape[@]}" "${tflags[@]}" --threads 2 | tail -1 |
		sed 's/^{/{"row":"train-'"$1"'","side":"peer",/' >>"$results"
}
train fp32
if "$work/lathe" bench train --help 2>&1 | grep -q -- --precision && "$python" bench/torch_llama.py --help 2>&1 | grep -q -- --precision; then
	train bf16
fi

echo "lora 1.1B" >&2
GOMAXPROCS=2 "$work/lathe" bench train --lora --dim 2048 --layers 22 --heads 32 --kv-heads 4 --ffn 5632 --vocab 32000 \
	--batch 1 --seq 256 --steps "$LORA_STEPS" 2>/dev/null | tail -1 | sed 's/^{/{"row":"lora-1.1b","side":"lathe",/' >>"$results"

if [ -n "$llama_src" ]; then
	echo "decoding" >&2
	ROUNDS=1 bash bench/generate_vs_llamacpp.sh "$llama_src" | tee "$work/decode.txt" >&2
	awk 'NR > 1 { eng = $2; i = 3; if ($2 == "lathe") { eng = $2 " " $3; i = 4 }
		printf "{\"bench\":\"decode\",\"model\":\"%s\",\"engine\":\"%s\",\"threads\":%s,\"batch\":%s,\"tps\":%s}\n", $1, eng, $i, $(i+1), $(i+3) }' \
		"$work/decode.txt" >>"$results"
	echo "pp512" >&2
	ROUNDS=1 bash bench/prefill_vs_llamacpp.sh "$llama_src" | tee "$work/prefill.txt" >&2
	awk 'NR > 1 { eng = $2; i = 3; if ($2 == "lathe") { eng = $2 " " $3; i = 4 }
		printf "{\"bench\":\"prefill\",\"model\":\"%s\",\"engine\":\"%s\",\"threads\":%s,\"tps\":%s}\n", $1, eng, $i, $(i+2) }' \
		"$work/prefill.txt" >>"$results"
fi

python3 - "$results" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
mach = next(r for r in rows if r["bench"] == "machine")
peak = {(r["precision"], r["threads"]): r["gflops"] for r in rows if r["bench"] == "peak"}
p32 = peak.get(("fp32", 2)) or peak.get(("fp32", 1))
p16 = peak.get(("bf16", 2))
print(f'CPU: {mach["cpu"]} (family {mach["family"]} model {mach["model"]}), {mach["cores"]} cores; '
      f'OpenBLAS core: {mach["blas_core"]} (probes, GFLOP/s: {mach["blas_probes"]}); measured peak, 2 threads: fp32 {p32} GFLOP/s'
      + (f', bf16 {p16} GFLOP/s' if p16 else '')
      + f' (1 thread: fp32 {peak.get(("fp32", 1))}' + (f', bf16 {peak.get(("bf16", 1))}' if p16 else '') + ')')
out = []
def step_gflops(r, flop_per_param):
    """GFLOP/s of a training step: flop_per_param (6 full, 4 LoRA: no weight gradients of the base)
    times the parameters that multiply (all but the embedding table, a lookup), plus attention's
    12·layers·seq·dim per token (PaLM's count: scores and values, forward and backward)."""
    n = r["params"] - r["vocab"] * r["dim"]
    attn = 12 * r["layers"] * r["seq"] * r["dim"]
    return (flop_per_param * n + attn) * r["tokens_per_second"] / 1e9
def row(what, lathe, peer, peer_name, unit, mfu=None, note=""):
    ratio = f"{lathe / peer:.2f}" if lathe and peer else "-"
    out.append((what, f"{lathe:.1f} {unit}" if lathe else "-", f"{peer:.1f}" if peer else "-", peer_name,
                ratio, f"{100 * mfu:.0f}%" if mfu else "-", note))
for r in rows:
    if r["bench"] == "sgemm":
        row(f'sgemm {r["shape"]} {r["layout"]}, 2 threads', r["lathe"], r["peer"], f'OpenBLAS ({mach["blas_core"]})',
            "GFLOP/s", r["lathe"] / p32, f'{r["kernel"]}, cores busy {r["busy"]}')
for prec in ("fp32", "bf16"):
    l = next((r for r in rows if r.get("row") == f"train-{prec}" and r["side"] == "lathe"), None)
    t = next((r for r in rows if r.get("row") == f"train-{prec}" and r["side"] == "peer"), None)
    if l:
        pk = p16 if prec == "bf16" and p16 else p32
        row(f'training step {prec}, llama {l["params"] / 1e6:.0f}M, {l["batch"]}x{l["seq"]}', l["tokens_per_second"],
            t and t["tokens_per_second"], f'PyTorch {t["torch"]}' + (" bf16 autocast" if prec == "bf16" else "") if t else "-",
            "tok/s", step_gflops(l, 6) / pk, f'best step {l["tokens_per_second_best"]:.0f} tok/s')
l = next((r for r in rows if r.get("row") == "lora-1.1b"), None)
if l:
    epoch = 1000 * 256 / l["tokens_per_second"] / 60
    pk = p16 if l.get("precision") == "bf16" and l.get("bf16_native") and p16 else p32
    base = l.get("precision", "fp32")
    if base == "bf16" and not l.get("bf16_native"):
        base = "bf16 base widened to fp32"  # no AVX512_BF16: the base's products run in float32
    row(f'LoRA ({base} products), TinyLlama-1.1B shape, 1x256', l["tokens_per_second"], None, "-", "tok/s", step_gflops(l, 4) / pk,
        f'epoch 1000x256: {epoch:.0f} min; peak memory {l["peak_memory_bytes"] / 2**30:.1f} GiB')
def wanted(model):
    """The Lathe run that matches what llama.cpp computes on the file: float32, bfloat16 or the blocks."""
    m = model.lower()
    return "bf16" if "bf16" in m or "f16" in m else "quant" if any(q in m for q in ("q8_0", "q4_", "q6_k")) else "f32"
dec = [r for r in rows if r["bench"] == "decode"]
for r in dec:
    if r["engine"] == "llama.cpp" or r["engine"].split()[1] != wanted(r["model"]):
        continue
    peer = next((p for p in dec if p["engine"] == "llama.cpp" and p["model"] == r["model"] and p["threads"] == r["threads"] and p["batch"] == r["batch"]), None)
    row(f'decode {r["model"]} ({r["engine"].split()[1]}), batch {r["batch"]}, {r["threads"]} thr', r["tps"], peer and peer["tps"], "llama.cpp", "tok/s")
pre = [r for r in rows if r["bench"] == "prefill"]
for r in pre:
    if r["engine"] == "llama.cpp" or r["engine"].split()[1] != wanted(r["model"]):
        continue
    peer = next((p for p in pre if p["engine"] == "llama.cpp" and p["model"] == r["model"] and p["threads"] == r["threads"]), None)
    row(f'pp512 {r["model"]} ({r["engine"].split()[1]}), {r["threads"]} thr', r["tps"], peer and peer["tps"], "llama.cpp", "tok/s")
w = [max(len(str(x[i])) for x in out + [("what", "Lathe", "peer", "peer kernel", "ratio", "MFU", "")]) for i in range(7)]
head = ("what", "Lathe", "peer", "peer (kernel)", "ratio", "MFU", "notes")
print(" | ".join(h.ljust(w[i]) for i, h in enumerate(head)))
print("-|-".join("-" * w[i] for i in range(7)))
for x in out:
    print(" | ".join(str(v).ljust(w[i]) for i, v in enumerate(x)))
EOF
