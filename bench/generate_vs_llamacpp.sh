#!/usr/bin/env bash
# Decoding speed, Lathe against llama.cpp on the same GGUF files, side by side and alternating.
#
#   bench/generate_vs_llamacpp.sh LLAMA_SRC [MODEL.gguf ...]
#
# LLAMA_SRC is a llama.cpp source tree, either upstream's layout (ggml/ src/ include/) or ollama's
# vendored one (llama/llama.cpp/ and ml/backend/ggml/ggml/). No cmake is needed: the CPU backend and
# libllama are compiled with g++ -O3 -march=native into $BUILD (default /tmp/llamacpp-build), with a
# small driver (written below) that prefills a prompt in every sequence and times greedy decoding,
# one token per sequence per llama_decode. Nothing of llama.cpp is copied into this repository.
#
# Lathe is timed by llm/generate's BenchmarkDecode on the same file (model.Extend, one token per
# sequence per step), with float32 weights and with UseBF16Weights, or, for a quantized file, from its
# blocks ("lathe quant"). Without MODEL arguments the script writes four random 154M-parameter llamas
# with the stories260K tokenizer (bench/randgguf): float32 and bfloat16 matrices (which llama.cpp
# computes with its bf16 kernels), Q8_0, and llama-quantize's Q4_K_M mix (ggml's reference
# quantizers, so the bytes are what llama-quantize writes; TYPES picks among f32 bf16 q8_0 q4_k_m).
#
# Environment: THREADS ("1 2"), NEW_TOKENS (128), ROUNDS (3), BATCHES ("1 8"), TYPES, BUILD.
# The machine is shared: each round runs every engine once, alternating; compare within a round.
set -euo pipefail
src=${1:?usage: $0 LLAMA_SRC [MODEL.gguf ...]}
shift
THREADS=${THREADS:-1 2} NEW_TOKENS=${NEW_TOKENS:-128} ROUNDS=${ROUNDS:-3} BUILD=${BUILD:-/tmp/llamacpp-build}
BATCHES=${BATCHES:-1 8} TYPES=${TYPES:-f32 bf16 q8_0 q4_k_m}
repo=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$BUILD"
cat > "$BUILD/decode-driver.cpp" <<'CPP'
// Times llama.cpp's greedy decoding of B sequences: prefill the same prompt in each, then one token
// per sequence per llama_decode.
#include "llama.h"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
static void quiet(ggml_log_level, const char *, void *) {}
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: decode model.gguf new_tokens threads batch\n"); return 2; }
    int nnew = atoi(argv[2]), threads = atoi(argv[3]), B = atoi(argv[4]);
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "load %s failed\n", argv[1]); return 1; }
    const llama_vocab *vocab = llama_model_get_vocab(model);
    const char *prompt = "Once upon a time";
    std::vector<llama_token> toks(64);
    int n = llama_tokenize(vocab, prompt, strlen(prompt), toks.data(), toks.size(), true, false);
    toks.resize(n);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = B * (n + nnew + 8); cp.n_batch = B * n; cp.n_ubatch = B * n; cp.n_seq_max = B;
    cp.n_threads = threads; cp.n_threads_batch = threads;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    int nv = llama_vocab_n_tokens(vocab);
    auto argmax = [&](const float *l) { int b = 0; for (int i = 1; i < nv; i++) if (l[i] > l[b]) b = i; return b; };
    llama_batch batch = llama_batch_init(B * n, 0, 1);
    std::vector<llama_token> next(B);
    auto t0 = std::chrono::steady_clock::now();
    batch.n_tokens = 0;
    for (int s = 0; s < B; s++)
        for (int i = 0; i < n; i++) {
            int j = batch.n_tokens++;
            batch.token[j] = toks[i]; batch.pos[j] = i; batch.n_seq_id[j] = 1; batch.seq_id[j][0] = s; batch.logits[j] = i == n - 1;
        }
    if (llama_decode(ctx, batch)) { fprintf(stderr, "prefill failed\n"); return 1; }
    for (int s = 0; s < B; s++) next[s] = argmax(llama_get_logits_ith(ctx, s * n + n - 1));
    auto t1 = std::chrono::steady_clock::now();
    for (int step = 1; step < nnew; step++) {
        batch.n_tokens = B;
        for (int s = 0; s < B; s++) {
            batch.token[s] = next[s]; batch.pos[s] = n + step - 1; batch.n_seq_id[s] = 1; batch.seq_id[s][0] = s; batch.logits[s] = 1;
        }
        if (llama_decode(ctx, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
        for (int s = 0; s < B; s++) next[s] = argmax(llama_get_logits_ith(ctx, s));
    }
    auto t2 = std::chrono::steady_clock::now();
    double dec = std::chrono::duration<double>(t2 - t1).count();
    printf("{\"bench\":\"llama.cpp-decode\",\"batch\":%d,\"prompt_tokens\":%d,\"new_tokens\":%d,\"prefill_s\":%.4f,\"decode_tokens_per_s\":%.1f}\n",
           B, n, nnew, std::chrono::duration<double>(t1 - t0).count(), B * (nnew - 1) / dec);
    llama_batch_free(batch);
    return 0;
}
CPP
bash "$repo/bench/llamacpp_build.sh" "$src" "$BUILD/decode-driver.cpp" "$BUILD" decode

cd "$repo"
go test -c -o "$BUILD/lathe-generate.test" ./llm/generate
if [ $# -eq 0 ]; then
	for t in $TYPES; do
		[ -f "$BUILD/rand154M-$t.gguf" ] || go run ./bench/randgguf -type $t -out "$BUILD/rand154M-$t.gguf" >&2
		set -- "$@" "$BUILD/rand154M-$t.gguf"
	done
fi

# lathe MODEL BATCH THREADS: "f32 tokens/s GB/s" and "bf16 tokens/s GB/s" lines from BenchmarkDecode
# (one "quant tokens/s GB/s" line for a quantized file).
lathe() {
	LATHE_BENCH_MODEL=$1 "$BUILD/lathe-generate.test" -test.run '^$' -test.bench "^BenchmarkDecode/(f32|bf16|quant)/batch=$2\$" \
		-test.benchtime "${NEW_TOKENS}x" -test.cpu "$3" 2>/dev/null |
		awk '/^BenchmarkDecode/ { split($1, a, "/"); for (i = 2; i < NF; i++) { if ($(i+1) == "tokens/s") t = $i; if ($(i+1) == "GB/s") g = $i }; print a[2], t, g }'
}
printf '%-20s %-18s %7s %6s %5s %10s %8s\n' model engine threads batch round tokens/s GB/s
for m in "$@"; do
	for th in $THREADS; do
		for b in $BATCHES; do
			for r in $(seq "$ROUNDS"); do
				tps=$("$BUILD/decode" "$m" "$NEW_TOKENS" "$th" "$b" | grep -o '"decode_tokens_per_s":[0-9.]*' | cut -d: -f2)
				printf '%-20s %-18s %7s %6s %5s %10s %8s\n' "$(basename "$m" .gguf)" llama.cpp "$th" "$b" "$r" "$tps" -
				lathe "$m" "$b" "$th" | while read -r kind tps gbs; do
					printf '%-20s %-18s %7s %6s %5s %10s %8s\n' "$(basename "$m" .gguf)" "lathe $kind" "$th" "$b" "$r" "$tps" "$gbs"
				done
			done
		done
	done
done
