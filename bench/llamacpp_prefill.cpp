// Times llama.cpp's prompt processing as llama-bench's ppN does: N tokens in one llama_decode
// (n_batch = n_ubatch = N) into an empty cache, REPS times after one warm-up, and prints the best
// and the median rate as one JSON line.
//
//   prefill model.gguf N threads reps
#include "llama.h"
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
static void quiet(ggml_log_level, const char *, void *) {}
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: prefill model.gguf tokens threads reps\n"); return 2; }
    int n = atoi(argv[2]), threads = atoi(argv[3]), reps = atoi(argv[4]);
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model *model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) { fprintf(stderr, "load %s failed\n", argv[1]); return 1; }
    int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n; cp.n_batch = n; cp.n_ubatch = n; cp.n_seq_max = 1;
    cp.n_threads = threads; cp.n_threads_batch = threads;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
    llama_batch batch = llama_batch_init(n, 0, 1);
    std::vector<double> secs;
    for (int r = 0; r <= reps; r++) {
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = n;
        for (int i = 0; i < n; i++) {
            // The same tokens as Lathe's BenchmarkPrefill: (7i+1) mod the vocabulary.
            batch.token[i] = (7 * i + 1) % nv; batch.pos[i] = i; batch.n_seq_id[i] = 1; batch.seq_id[i][0] = 0; batch.logits[i] = i == n - 1;
        }
        auto t0 = std::chrono::steady_clock::now();
        if (llama_decode(ctx, batch)) { fprintf(stderr, "decode failed\n"); return 1; }
        llama_synchronize(ctx);
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) secs.push_back(s);
    }
    std::sort(secs.begin(), secs.end());
    printf("{\"bench\":\"llama.cpp-prefill\",\"tokens\":%d,\"threads\":%d,\"best_tokens_per_s\":%.1f,\"median_tokens_per_s\":%.1f}\n",
           n, threads, n / secs.front(), n / secs[secs.size() / 2]);
    llama_batch_free(batch);
    return 0;
}
