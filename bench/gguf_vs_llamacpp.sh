#!/usr/bin/env bash
# Do the GGUF files Lathe writes load in llama.cpp and compute what Lathe computes? For a tiny random
# model of each family layout (Falcon-7B, Falcon-40B, falcon-rw's ALiBi, GPT-NeoX, MPT, Flan-T5),
# exported as a job exports it, llama.cpp's logits at every position and its tokenization of a few
# texts are compared with Lathe's (bench/ggufcheck).
#
#   bench/gguf_vs_llamacpp.sh LLAMA_SRC
#
# LLAMA_SRC: a llama.cpp source tree (see bench/llamacpp_build.sh); BUILD (default /tmp/llamacpp-build).
set -euo pipefail
src=${1:?usage: $0 LLAMA_SRC}
BUILD=${BUILD:-/tmp/llamacpp-build}
repo=$(cd "$(dirname "$0")/.." && pwd)
bash "$repo/bench/llamacpp_build.sh" "$src" "$repo/bench/llamacpp_logits.cpp" "$BUILD" logits
cd "$repo"
go run ./bench/ggufcheck -logits "$BUILD/logits" -shared "$repo/../shared"
