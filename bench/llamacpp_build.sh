#!/usr/bin/env bash
# Builds a small C++ driver against llama.cpp's sources without cmake: the CPU backend and libllama are
# compiled with gcc/g++ -O3 -march=native into BUILD/obj (reused across drivers and runs), then linked
# with DRIVER into BUILD/NAME. Nothing of llama.cpp is copied into this repository.
#
#   bench/llamacpp_build.sh LLAMA_SRC DRIVER.cpp BUILD NAME
#
# LLAMA_SRC is a llama.cpp source tree, either upstream's layout (ggml/ src/ include/) or ollama's
# vendored one (llama/llama.cpp/ and ml/backend/ggml/ggml/).
set -euo pipefail
src=${1:?usage: $0 LLAMA_SRC DRIVER.cpp BUILD NAME} driver=${2:?} build=${3:?} name=${4:?}
if [ -d "$src/ml/backend/ggml/ggml" ]; then
	ggml=$src/ml/backend/ggml/ggml llama=$src/llama/llama.cpp
else
	ggml=$src/ggml llama=$src
fi
[ -f "$llama/include/llama.h" ] && [ -f "$ggml/include/ggml.h" ] || { echo "no llama.cpp sources under $src" >&2; exit 1; }
mkdir -p "$build/obj"
cp "$driver" "$build/$name.cpp.new"
cmp -s "$build/$name.cpp.new" "$build/$name.cpp" || mv "$build/$name.cpp.new" "$build/$name.cpp"
rm -f "$build/$name.cpp.new"

# The sources: ggml core, the CPU backend (x86), libllama and its model builders.
flags="-O3 -march=native -DNDEBUG -DGGML_USE_CPU -DGGML_USE_LLAMAFILE -D_GNU_SOURCE -DGGML_VERSION=\"0\" -DGGML_COMMIT=\"0\" -w
 -I$ggml/include -I$ggml/src -I$ggml/src/ggml-cpu -I$llama/include -I$llama/src"
srcs=$(ls "$ggml"/src/{ggml.c,ggml-alloc.c,ggml-quants.c,ggml-backend.cpp,ggml-backend-reg.cpp,ggml-opt.cpp,ggml-threading.cpp,ggml.cpp,gguf.cpp} \
	"$ggml"/src/ggml-cpu/*.c "$ggml"/src/ggml-cpu/*.cpp "$ggml"/src/ggml-cpu/arch/x86/*.c* "$ggml"/src/ggml-cpu/llamafile/*.cpp \
	"$ggml"/src/ggml-cpu/amx/*.cpp "$llama"/src/*.cpp 2>/dev/null; ls "$llama"/src/models/*.cpp 2>/dev/null || true)
{
	objs=""
	for s in $srcs "$build/$name.cpp"; do
		o="obj/$(echo "${s#"$src"/}" | tr '/' '_').o"
		objs="$objs $o"
		case $s in
		*.c) printf '%s: %s\n\tgcc %s -c $< -o $@\n' "$o" "$s" "$(echo $flags)" ;;
		*) printf '%s: %s\n\tg++ -std=c++17 %s -c $< -o $@\n' "$o" "$s" "$(echo $flags)" ;;
		esac
	done
	printf '%s:%s\n\tg++ -o $@ $^ -lpthread -lm\n' "$name" "$objs"
} > "$build/Makefile.$name"
echo "building $name against llama.cpp from $src in $build" >&2
make -s -C "$build" -f "Makefile.$name" -j"$(nproc)" "$name" >&2
