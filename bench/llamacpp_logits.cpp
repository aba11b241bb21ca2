// Prints llama.cpp's logits for a token sequence: `logits MODEL.gguf T1 T2 ...` runs the tokens through
// the model in one llama_decode and prints, per position, its logits on one line. For an
// encoder-decoder: `logits MODEL.gguf E1 E2 ... -- D1 D2 ...` encodes the E tokens and decodes the D
// tokens (the caller puts the decoder start token first).
#include "llama.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: logits MODEL.gguf TOKENS... [-- DECODER TOKENS...]\n"); return 2; }
	std::vector<llama_token> enc, dec;
	bool second = false;
	for (int i = 2; i < argc && strcmp(argv[2], "--tokenize") != 0; i++) {
		if (strcmp(argv[i], "--") == 0) { second = true; continue; }
		(second ? dec : enc).push_back(atoi(argv[i]));
	}
	llama_backend_init();
	llama_model_params mp = llama_model_default_params();
	llama_model *model = llama_model_load_from_file(argv[1], mp);
	if (!model) { fprintf(stderr, "load failed\n"); return 1; }
	if (argc == 4 && strcmp(argv[2], "--tokenize") == 0) {
		// `logits MODEL.gguf --tokenize TEXT`: the ids llama.cpp's tokenizer gives TEXT (specials added).
		const llama_vocab *vocab = llama_model_get_vocab(model);
		std::vector<llama_token> ids(strlen(argv[3]) + 16);
		int n = llama_tokenize(vocab, argv[3], (int)strlen(argv[3]), ids.data(), (int)ids.size(), true, false);
		if (n < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
		for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
		printf("\n");
		return 0;
	}
	llama_context_params cp = llama_context_default_params();
	cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512; cp.n_threads = 2; cp.n_threads_batch = 2;
	// A float32 KV cache: its default float16 would round every key and value (about 5e-4 of the logits).
	cp.type_k = GGML_TYPE_F32; cp.type_v = GGML_TYPE_F32;
	cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED; // its CPU kernel takes Q in float16
	llama_context *ctx = llama_init_from_model(model, cp);
	if (!ctx) { fprintf(stderr, "context failed\n"); return 1; }
	const int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
	std::vector<llama_token> *toks = &enc;
	if (second) {
		llama_batch eb = llama_batch_get_one(enc.data(), (int)enc.size());
		if (llama_encode(ctx, eb) != 0) { fprintf(stderr, "encode failed\n"); return 1; }
		toks = &dec;
	}
	llama_batch b = llama_batch_init((int)toks->size(), 0, 1);
	for (size_t i = 0; i < toks->size(); i++) {
		b.token[i] = (*toks)[i]; b.pos[i] = (llama_pos)i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
	}
	b.n_tokens = (int)toks->size();
	if (llama_decode(ctx, b) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
	printf("%d\n", V);
	for (int i = 0; i < b.n_tokens; i++) {
		const float *l = llama_get_logits_ith(ctx, i);
		for (int v = 0; v < V; v++) printf(v ? " %.7g" : "%.7g", l[v]);
		printf("\n");
	}
	llama_batch_free(b);
	llama_free(ctx);
	llama_model_free(model);
	return 0;
}
