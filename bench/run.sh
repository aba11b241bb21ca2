#!/usr/bin/env bash
# run.sh: Lathe's training step side by side with PyTorch's, as a table.
#
#   bench/run.sh [ROUNDS]        (default 3; STEPS=5 timed steps per run)
#
# The shape is the engine-speed issue's: a llama of dim 512, 8 layers, 8 heads (8 kv heads), SwiGLU
# width 1376, vocabulary 32000 (untied output head), batch 4 × 128 tokens, random init, full
# fine-tuning with AdamW and gradient clipping. Lathe runs through `lathe bench train`, PyTorch through
# bench/torch_llama.py (a plain llama in torch with the same shapes and the same step: zero grads,
# forward, cross-entropy, backward, clip, AdamW). The two alternate, Lathe then PyTorch, ROUNDS times:
# the machine is shared and its speed drifts over minutes, so only a ratio of neighbouring runs means
# something. Each row is one run; the ratio compares a Lathe run with the PyTorch run after it.
#
# PyTorch is Debian's python3-torch (1.13) on the OpenMP build of OpenBLAS
# (LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp; the default pthreads build starts its own
# threads beside torch's OpenMP ones and runs many times slower), 2 threads, with the OpenBLAS core
# type bench/openblas_env.sh finds fastest on this CPU, for that command only.
#
# MFU = 6·N·tokens/s / the machine's 2-thread fp32 peak, measured by bench/peak in the same run
# (PEAK_GFLOPS overrides it), N the parameter count
# including the embedding table (58.07M; the same N for both peers). Counting the embedding follows
# `lathe bench train` and the usual 6N rule, though a lookup does no multiply-adds: without it
# (N = 41.7M) every MFU is 0.72 times the one shown, and the ratio does not change. Attention's T²
# FLOP (~2% here) are not counted.
# "best" columns are of each run's fastest step (the least disturbed); cpu_share is the share of
# threads × wall time the run really got on a CPU (low: the machine was busy with other work).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${STEPS:-5}
python=${TORCH_PYTHON:-/usr/bin/python3} # Debian's python3-torch is installed for the system Python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/lathe" ./cmd/lathe
source bench/openblas_env.sh
gcc -O2 -o "$work/openblas_sgemm" bench/openblas_sgemm.c -I/usr/include/x86_64-linux-gnu/openblas-openmp -L"$blasdir" -lopenblas
openblas_pick "$work/openblas_sgemm"
echo "OpenBLAS core for PyTorch: $blas_core (probes, GFLOP/s: $blas_probes)" >&2
if [ -z "${PEAK_GFLOPS:-}" ]; then
	PEAK_GFLOPS=$(go run ./bench/peak -threads 2 | python3 -c 'import json,sys; print([r["gflops"] for r in map(json.loads, sys.stdin) if r["precision"] == "fp32"][-1])')
fi
echo "MFU against $PEAK_GFLOPS GFLOP/s" >&2
if ! "$python" -c 'import torch' 2>/dev/null; then
	echo "run.sh: $python cannot import torch: apt-get install -y python3-torch libopenblas0-openmp" >&2
	exit 1
fi
shape=(--dim 512 --layers 8 --heads 8 --kv-heads 8 --ffn 1376 --vocab 32000 --batch 4 --seq 128 --steps "$steps")

results="$work/results.jsonl"
for ((r = 1; r <= rounds; r++)); do
	echo "round $r/$rounds: lathe" >&2
	GOMAXPROCS=2 "$work/lathe" bench train "${shape[@]}" 2>/dev/null | tail -1 | sed 's/^{/{"peer":"lathe","round":'"$r"',/' >>"$results"
	echo "round $r/$rounds: pytorch" >&2
	peer_env "$python" bench/torch_llama.py "${shape[@]}" --threads 2 | tail -1 | sed 's/^{/{"round":'"$r"',/' >>"$results"
done

PEAK_GFLOPS=$PEAK_GFLOPS python3 - "$results" <<'EOF'
import json, os, statistics, sys
peak = float(os.environ["PEAK_GFLOPS"]) * 1e9
runs = [json.loads(line) for line in open(sys.argv[1])]
torch = next((r for r in runs if r["peer"] == "pytorch"), None)
if torch:
    blas = ["/".join(b.split("/")[-2:]) for b in torch["blas"] if "blas" in b]
    print(f'PyTorch {torch["torch"]} on {", ".join(blas)}; Lathe kernel {runs[0].get("kernel", "?")}; '
          f'{runs[0]["params"] / 1e6:.2f}M parameters, {runs[0]["batch"]}x{runs[0]["seq"]} tokens per step')
# cpu-s/step: the CPU time one step took (ms/step x cpu_share x threads), which a busy machine moves
# less than the wall time; PyTorch's OpenMP threads count their spin-waiting in it.
print(f'{"round":>5} {"peer":<8} {"tok/s":>7} {"best":>7} {"ms/step":>8} {"best":>7} {"MFU":>6} {"best":>6} '
      f'{"cpu_share":>9} {"cpu-s/step":>10} {"lathe/torch":>11} {"best":>5}')
lathe = {r["round"]: r for r in runs if r["peer"] == "lathe"}
ratios, best_ratios = [], []
for r in runs:
    r["mfu"] = 6 * r["params"] * r["tokens_per_second"] / peak
    r["mfu_best"] = 6 * r["params"] * r["tokens_per_second_best"] / peak
    ratio = ""
    if r["peer"] == "pytorch" and r["round"] in lathe:
        l = lathe[r["round"]]
        q, qb = l["tokens_per_second"] / r["tokens_per_second"], l["tokens_per_second_best"] / r["tokens_per_second_best"]
        ratios.append(q)
        best_ratios.append(qb)
        ratio = f'{q:>11.2f} {qb:>5.2f}'
    cpu = r["ms_per_step"] * r["cpu_share"] * r["threads"] / 1e3
    print(f'{r["round"]:>5} {r["peer"]:<8} {r["tokens_per_second"]:>7.0f} {r["tokens_per_second_best"]:>7.0f} '
          f'{r["ms_per_step"]:>8.0f} {r["ms_per_step_best"]:>7.0f} {100 * r["mfu"]:>5.1f}% {100 * r["mfu_best"]:>5.1f}% '
          f'{r["cpu_share"]:>9.2f} {cpu:>10.2f} {ratio}')
if ratios:
    print(f'lathe/pytorch tokens/s by round: {" ".join(f"{q:.2f}" for q in ratios)} (median {statistics.median(ratios):.2f}); '
          f'best steps: {" ".join(f"{q:.2f}" for q in best_ratios)} (median {statistics.median(best_ratios):.2f})')
EOF
