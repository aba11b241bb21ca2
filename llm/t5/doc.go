// Package t5 is the T5 encoder-decoder (Hugging Face model_type "t5": t5 v1.0, t5 v1.1 and
// google/flan-t5-small … xxl) as an engine package: its configuration from config.json, its weights
// under transformers' names from safetensors (Load, Save), the training forward and backward over a
// batch of encoder inputs and decoder targets (LossSum, ForwardBackward, Params), and generation with
// an encoder pass per request (Encode) and an incremental decoder with a KV cache (Decoder.Step,
// Greedy).
//
// It is written as llm/model is, in llm.c's manner: every operator is a pair X_forward/X_backward next
// to each other (layers.go) over flat slices, generic over float32 and float64 so that every backward is
// checked against finite differences in float64 (grad_test.go); weights, gradients and activations are
// each one allocation carved into named tensors; a training step allocates nothing once the batch shape
// is known. The architecture (net.go) composes the operators: each block is norm → attention →
// residual, (decoder: norm → cross-attention → residual,) norm → feed-forward → residual; T5's own
// choices are RMS layer norms without bias, no 1/√d in attention, a relative position bias shared by
// the layers of a stack (bidirectional buckets in the encoder, causal in the decoder, none in
// cross-attention), a gated-GELU or ReLU feed-forward, and, when the head is tied to the shared
// embedding, the decoder output scaled by d_model^-½.
//
// reference/t5_reference.py is an independent implementation in plain PyTorch of transformers'
// modeling_t5.py; reference_test.go checks logits, loss and greedy tokens against it.
//
// Left for later: LoRA adapters (net.hook is where they attach: every projection goes through net.lin
// and net.linBack, keyed by a site naming the stack, layer and matrix, q and v being the usual
// targets); registration with the job pipeline and the tokenizer (SentencePiece); dropout; bfloat16
// weights and a SIMD GELU for speed; batched generation (Decoder serves one sequence).
package t5
