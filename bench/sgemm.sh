#!/usr/bin/env bash
# sgemm.sh: Lathe's tensor.MatMul against OpenBLAS's cblas_sgemm, two threads each, side by side.
#
#   bench/sgemm.sh [ROUNDS]
#
# Needs Debian's OpenBLAS (apt-get install -y libopenblas0-openmp libopenblas-dev) and gcc. The two run
# alternately, shape by shape, ROUNDS times (default 3), and the table shows each one's best GFLOP/s,
# the ratio of the bests, the median of the per-round ratios (the figure to quote on a shared, noisy
# machine) and MFU against the machine's 2-thread fp32 peak, measured by bench/peak in the same run
# (PEAK_GFLOPS overrides it).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
peak=${PEAK_GFLOPS:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

source bench/openblas_env.sh
gcc -O2 -o "$work/openblas_sgemm" bench/openblas_sgemm.c \
	-I/usr/include/x86_64-linux-gnu/openblas-openmp -L"$blasdir" -lopenblas
go build -o "$work/lathe_sgemm" ./bench/sgemm
openblas_pick "$work/openblas_sgemm"
if [ -z "$peak" ]; then # the 2-thread fp32 peak of this machine, measured now (bench/peak)
	peak=$(go run ./bench/peak -threads 2 | python3 -c 'import json,sys; print([r["gflops"] for r in map(json.loads, sys.stdin) if r["precision"] == "fp32"][-1])')
fi
echo "MFU against $peak GFLOP/s" >&2
echo "OpenBLAS core: $blas_core (probes, GFLOP/s: $blas_probes)" >&2

openblas() { # M N K LAYOUT: best GFLOP/s of 5 products
	# OpenBLAS at its best: the OpenMP build with two threads and the fastest core type
	# (bench/openblas_env.sh), for this command only.
	peer_env "$work/openblas_sgemm" "$1" "$2" "$3" "$4" 5 | awk '{print $3}'
}
lathe() { # M N K LAYOUT: best GFLOP/s of 5 products
	GOMAXPROCS=2 "$work/lathe_sgemm" "$1" "$2" "$3" "$4" 5 | awk '{print $3}'
}

shapes=("768 3072 768" "2048 2048 2048" "512 32000 512")
declare -A best_l best_o ratios
for ((r = 1; r <= rounds; r++)); do
	for s in "${shapes[@]}"; do
		for layout in AB ABt AtB; do
			read -r m n k <<<"$s"
			key="$m $n $k $layout"
			o=$(openblas "$m" "$n" "$k" "$layout")
			l=$(lathe "$m" "$n" "$k" "$layout")
			echo "round $r $key lathe $l openblas $o ratio $(awk -v l="$l" -v o="$o" 'BEGIN{printf "%.2f", l/o}')" >&2
			ratios[$key]+="$(awk -v l="$l" -v o="$o" 'BEGIN{print l/o}') "
			best_l[$key]=$(awk -v a="${best_l[$key]:-0}" -v b="$l" 'BEGIN{print (b > a ? b : a)}')
			best_o[$key]=$(awk -v a="${best_o[$key]:-0}" -v b="$o" 'BEGIN{print (b > a ? b : a)}')
		done
	done
done

printf '%-16s %-6s %12s %13s %10s %12s %7s %7s\n' shape layout lathe_GF/s openblas_GF/s best_ratio median_ratio mfu_l mfu_o
for s in "${shapes[@]}"; do
	for layout in AB ABt AtB; do
		read -r m n k <<<"$s"
		key="$m $n $k $layout"
		med=$(tr ' ' '\n' <<<"${ratios[$key]}" | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2)}')
		awk -v s="${m}x${n}x${k}" -v t="$layout" -v l="${best_l[$key]}" -v o="${best_o[$key]}" -v p="$peak" -v md="$med" \
			'BEGIN{printf "%-16s %-6s %12.1f %13.1f %10.2f %12.2f %6.0f%% %6.0f%%\n", s, t, l, o, l/o, md, 100*l/p, 100*o/p}'
	done
done
