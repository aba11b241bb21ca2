# openblas_env.sh: sourced by the bench scripts so that OpenBLAS (and PyTorch on it) runs at its best.
#
# OpenBLAS 0.3.21 does not know CPUs newer than its tables and falls back to older kernels: on a Zen 5
# whose environment sets OPENBLAS_CORETYPE=Haswell, 62 GFLOP/s on one core where its SkylakeX kernels
# do 136. openblas_pick SGEMM_BINARY probes a 768x3072x768 product on two threads with each candidate
# (the core type the environment sets, if any, and SkylakeX on a CPU with AVX-512) and keeps the
# faster in $coretype; peer_env CMD... then runs a peer's command, and only it, with that core type
# and the OpenMP build of OpenBLAS. $blas_probes says what each candidate did, $blas_core what
# OpenBLAS itself reports (OPENBLAS_VERBOSE=2) for the chosen one.
blasdir=/usr/lib/x86_64-linux-gnu/openblas-openmp

openblas_pick() {
	local sgemm=$1 c g best=0 candidates=${OPENBLAS_CORETYPE:-}
	if grep -qw avx512f /proc/cpuinfo; then
		candidates="$candidates SkylakeX"
	fi
	coretype="" blas_probes=""
	for c in $candidates; do
		g=$(env OPENBLAS_CORETYPE="$c" LD_LIBRARY_PATH="$blasdir" OMP_NUM_THREADS=2 "$sgemm" 768 3072 768 AB 3 | awk '{print $3}')
		blas_probes="$blas_probes $c:$g"
		if awk -v g="$g" -v b="$best" 'BEGIN{exit !(g > b)}'; then
			coretype=$c best=$g
		fi
	done
	blas_probes=${blas_probes# }
	blas_core=$(peer_env OPENBLAS_VERBOSE=2 "$sgemm" 64 64 64 AB 1 2>&1 | sed -n 's/.*Core: //p' | head -1)
}

peer_env() {
	if [ -n "${coretype:-}" ]; then
		env OPENBLAS_CORETYPE="$coretype" LD_LIBRARY_PATH="$blasdir" OMP_NUM_THREADS=2 "$@"
	else
		env -u OPENBLAS_CORETYPE LD_LIBRARY_PATH="$blasdir" OMP_NUM_THREADS=2 "$@"
	fi
}
