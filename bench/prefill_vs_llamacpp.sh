#!/usr/bin/env bash
# Prompt processing (llama-bench's pp512), Lathe against llama.cpp on the same GGUF files, alternating.
#
#   bench/prefill_vs_llamacpp.sh LLAMA_SRC [MODEL.gguf ...]
#
# llama.cpp runs bench/llamacpp_prefill.cpp (built against LLAMA_SRC by bench/llamacpp_build.sh into
# $BUILD, default /tmp/llamacpp-build, sharing the objects of the other drivers): PROMPT tokens in one
# llama_decode into an empty cache. Lathe runs llm/generate's BenchmarkPrefill on the same file: one
# model.Extend of the same PROMPT tokens. Without MODEL arguments it uses the random 154M llamas that
# bench/generate_vs_llamacpp.sh writes (TYPES of f32 bf16 q8_0 q4_k_m, all by default). Lathe uses
# float32 weights on a float32 file, bfloat16 ones (UseBF16Weights) on a bf16 file, and a quantized
# file's blocks, as llama.cpp does.
#
# Environment: TYPES, THREADS ("1 2"), PROMPT (512), ROUNDS (3), REPS (3 timed prompts per run), BUILD.
# Prints one line per model, engine, threads and round: each engine's best of REPS prompts, in
# tokens/s; compare within a round (the machine may be shared).
set -euo pipefail
src=${1:?usage: $0 LLAMA_SRC [MODEL.gguf ...]}
shift
TYPES=${TYPES:-f32 bf16 q8_0 q4_k_m} THREADS=${THREADS:-1 2} PROMPT=${PROMPT:-512} ROUNDS=${ROUNDS:-3} REPS=${REPS:-3} BUILD=${BUILD:-/tmp/llamacpp-build}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$BUILD"
bash "$repo/bench/llamacpp_build.sh" "$src" "$repo/bench/llamacpp_prefill.cpp" "$BUILD" prefill
cd "$repo"
go test -c -o "$BUILD/lathe-generate.test" ./llm/generate
if [ $# -eq 0 ]; then
	for t in $TYPES; do
		[ -f "$BUILD/rand154M-$t.gguf" ] || go run ./bench/randgguf -type $t -out "$BUILD/rand154M-$t.gguf" >&2
		set -- "$@" "$BUILD/rand154M-$t.gguf"
	done
fi

# lathe MODEL THREADS: the best tokens/s of REPS prompts (one per go test -count, each after an
# untimed warm-up prompt), with the weights the file's type calls for.
lathe() {
	local kind=f32
	case $(basename "$1") in
	*bf16* | *BF16* | *f16* | *F16*) kind=bf16 ;;
	*q8_0* | *Q8_0* | *q4_* | *Q4_* | *q6_k* | *Q6_K*) kind=quant ;;
	esac
	LATHE_BENCH_MODEL=$1 LATHE_BENCH_PROMPT=$PROMPT "$BUILD/lathe-generate.test" -test.run '^$' \
		-test.bench "^BenchmarkPrefill/$kind/" -test.benchtime 1x -test.count "$REPS" -test.cpu "$2" 2>/dev/null |
		awk -v k="$kind" '/^BenchmarkPrefill/ { for (i = 2; i < NF; i++) if ($(i+1) == "tokens/s" && $i > best) best = $i } END { print k, best }'
}
printf '%-20s %-12s %7s %5s %10s\n' model engine threads round "pp$PROMPT tok/s"
for m in "$@"; do
	for th in $THREADS; do
		for r in $(seq "$ROUNDS"); do
			tps=$("$BUILD/prefill" "$m" "$PROMPT" "$th" "$REPS" | grep -o '"best_tokens_per_s":[0-9.]*' | cut -d: -f2)
			printf '%-20s %-12s %7s %5s %10s\n' "$(basename "$m" .gguf)" llama.cpp "$th" "$r" "$tps"
			lathe "$m" "$th" | while read -r kind tps; do
				printf '%-20s %-12s %7s %5s %10s\n' "$(basename "$m" .gguf)" "lathe $kind" "$th" "$r" "$tps"
			done
		done
	done
done
