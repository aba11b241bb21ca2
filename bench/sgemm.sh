#!/usr/bin/env bash
# sgemm.sh: Lathe's tensor.MatMul against OpenBLAS's cblas_sgemm, two threads each, side by side.
#
#   bench/sgemm.sh [ROUNDS]
#
# Needs Debian's OpenBLAS (apt-get install -y libopenblas0-openmp libopenblas-dev) and gcc. The two run
# alternately, shape by shape, ROUNDS times (default 3), and the table shows each one's best GFLOP/s,
# the ratio of the bests, the median of the per-round ratios (the figure to quote on a shared, noisy
# machine) and MFU against the 2-core fp32 peak (PEAK_GFLOPS, default 506, the engine-speed issue's
# figure). On the 2-core VM this was written on (AMD family 25 model 17: Zen 4, AVX-512 on 256-bit units), a register-only loop of independent 512-bit FMAs
# runs at 32 FLOP/cycle per core (one zmm FMA or two ymm FMAs a cycle, at 3.64 GHz: ~116 GFLOP/s), so
# ~232 GFLOP/s is the peak actually reachable there; PEAK_GFLOPS=232 gives MFU against that.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
peak=${PEAK_GFLOPS:-506}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

blasdir=/usr/lib/x86_64-linux-gnu/openblas-openmp
gcc -O2 -o "$work/openblas_sgemm" bench/openblas_sgemm.c \
	-I/usr/include/x86_64-linux-gnu/openblas-openmp -L"$blasdir" -lopenblas
go build -o "$work/lathe_sgemm" ./bench/sgemm

openblas() { # M N K LAYOUT: best GFLOP/s of 5 products
	# OpenBLAS at its best: the OpenMP build with two threads, and its own CPU detection (an inherited
	# OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE would override it), for this command only.
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE LD_LIBRARY_PATH="$blasdir" OMP_NUM_THREADS=2 \
		"$work/openblas_sgemm" "$1" "$2" "$3" "$4" 5 | awk '{print $3}'
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
