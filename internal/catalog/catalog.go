// Package catalog is the list of base models a TextGeneration job may name in BaseModelName: the 18
// models SageMaker Autopilot offers, and small models that fine-tune well on a CPU. Each entry says
// where the weights come from (the Hugging Face hub), which architecture they are, and the limits
// Autopilot applies to them (rows across both channels, context length, EULA).
package catalog

import (
	"slices"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/t5"
)

// Model is one catalog entry.
type Model struct {
	Name         string // BaseModelName as the API spells it
	JumpStartID  string // SageMaker JumpStart model id; empty for Lathe's own entries
	HubRepo      string // Hugging Face repository the weights are pulled from
	HubFile      string // for single-file (GGUF) models: the file inside HubRepo; empty for HF directories
	Architecture string // config.json model_type / general.architecture: llama, mistral, qwen2, falcon, ...
	Parameters   int64  // approximate parameter count
	MaxRows      int    // rows allowed across training and validation channels
	ContextLen   int    // tokens per example; longer rows are truncated
	NeedsEULA    bool   // ModelAccessConfig.AcceptEula must be true (the Llama 2 licence)
	Instruct     bool   // tuned for chat/instructions: prompts use its chat template
}

// DefaultModel is the BaseModelName SageMaker uses when the request names none.
const DefaultModel = "Falcon7BInstruct"

var models = []Model{
	{"Dolly3B", "huggingface-textgeneration-dolly-v2-3b-bf16", "databricks/dolly-v2-3b", "", "gpt_neox", 2_800_000_000, 10000, 1024, false, true},
	{"Dolly7B", "huggingface-textgeneration-dolly-v2-7b-bf16", "databricks/dolly-v2-7b", "", "gpt_neox", 6_900_000_000, 10000, 1024, false, true},
	{"Dolly12B", "huggingface-textgeneration-dolly-v2-12b-bf16", "databricks/dolly-v2-12b", "", "gpt_neox", 12_000_000_000, 10000, 1024, false, true},
	{"Falcon7B", "huggingface-llm-falcon-7b-bf16", "tiiuae/falcon-7b", "", "falcon", 7_000_000_000, 1000, 1024, false, false},
	{"Falcon7BInstruct", "huggingface-llm-falcon-7b-instruct-bf16", "tiiuae/falcon-7b-instruct", "", "falcon", 7_000_000_000, 1000, 1024, false, true},
	{"Falcon40B", "huggingface-llm-falcon-40b-bf16", "tiiuae/falcon-40b", "", "falcon", 40_000_000_000, 10000, 1024, false, false},
	{"Falcon40BInstruct", "huggingface-llm-falcon-40b-instruct-bf16", "tiiuae/falcon-40b-instruct", "", "falcon", 40_000_000_000, 10000, 1024, false, true},
	{"FlanT5L", "huggingface-text2text-flan-t5-large", "google/flan-t5-large", "", "t5", 780_000_000, 10000, 1024, false, true},
	{"FlanT5XL", "huggingface-text2text-flan-t5-xl", "google/flan-t5-xl", "", "t5", 3_000_000_000, 10000, 1024, false, true},
	{"FlanT5XXL", "huggingface-text2text-flan-t5-xxll", "google/flan-t5-xxl", "", "t5", 11_000_000_000, 10000, 1024, false, true},
	{"Llama2-7B", "meta-textgeneration-llama-2-7b", "meta-llama/Llama-2-7b-hf", "", "llama", 6_700_000_000, 10000, 2048, true, false},
	{"Llama2-7BChat", "meta-textgeneration-llama-2-7b-f", "meta-llama/Llama-2-7b-chat-hf", "", "llama", 6_700_000_000, 10000, 2048, true, true},
	{"Llama2-13B", "meta-textgeneration-llama-2-13b", "meta-llama/Llama-2-13b-hf", "", "llama", 13_000_000_000, 7000, 2048, true, false},
	{"Llama2-13BChat", "meta-textgeneration-llama-2-13b-f", "meta-llama/Llama-2-13b-chat-hf", "", "llama", 13_000_000_000, 7000, 2048, true, true},
	{"Mistral7B", "huggingface-llm-mistral-7b", "mistralai/Mistral-7B-v0.1", "", "mistral", 7_200_000_000, 10000, 2048, false, false},
	{"Mistral7BInstruct", "huggingface-llm-mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.1", "", "mistral", 7_200_000_000, 10000, 2048, false, true},
	{"MPT7B", "huggingface-textgeneration1-mpt-7b-bf16", "mosaicml/mpt-7b", "", "mpt", 6_700_000_000, 10000, 1024, false, false},
	{"MPT7BInstruct", "huggingface-textgeneration1-mpt-7b-instruct-bf16", "mosaicml/mpt-7b-instruct", "", "mpt", 6_700_000_000, 10000, 1024, false, true},

	// Lathe's small models: they fine-tune in minutes to hours on a CPU.
	{"Stories260K", "", "ggml-org/models", "tinyllamas/stories260K.gguf", "llama", 260_000, 10000, 512, false, false},
	{"SmolLM2-135M", "", "HuggingFaceTB/SmolLM2-135M", "", "llama", 135_000_000, 10000, 2048, false, false},
	{"SmolLM2-135MInstruct", "", "HuggingFaceTB/SmolLM2-135M-Instruct", "", "llama", 135_000_000, 10000, 2048, false, true},
	{"SmolLM2-360M", "", "HuggingFaceTB/SmolLM2-360M", "", "llama", 360_000_000, 10000, 2048, false, false},
	{"SmolLM2-360MInstruct", "", "HuggingFaceTB/SmolLM2-360M-Instruct", "", "llama", 360_000_000, 10000, 2048, false, true},
	{"SmolLM2-1-7B", "", "HuggingFaceTB/SmolLM2-1.7B", "", "llama", 1_700_000_000, 10000, 2048, false, false},
	{"SmolLM2-1-7BInstruct", "", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "", "llama", 1_700_000_000, 10000, 2048, false, true},
	{"TinyLlama-1-1BChat", "", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "", "llama", 1_100_000_000, 10000, 2048, false, true},
	{"Qwen2-5-0-5BInstruct", "", "Qwen/Qwen2.5-0.5B-Instruct", "", "qwen2", 494_000_000, 10000, 2048, false, true},
	// One CPU-sized real model of each family the guide names, to fine-tune a family on a laptop:
	// Pythia is GPT-NeoX (Dolly v2's architecture and tokenizer), falcon-rw-1b is falcon with ALiBi.
	{"Pythia-70M", "", "EleutherAI/pythia-70m", "", "gpt_neox", 70_000_000, 10000, 2048, false, false},
	{"Pythia-160M", "", "EleutherAI/pythia-160m", "", "gpt_neox", 160_000_000, 10000, 2048, false, false},
	{"Pythia-410M", "", "EleutherAI/pythia-410m", "", "gpt_neox", 410_000_000, 10000, 2048, false, false},
	{"FalconRW-1B", "", "tiiuae/falcon-rw-1b", "", "falcon", 1_300_000_000, 10000, 2048, false, false},
	// Flan-T5's two sizes below the guide's FlanT5L: an encoder-decoder to fine-tune on a laptop.
	{"FlanT5Small", "", "google/flan-t5-small", "", "t5", 77_000_000, 10000, 1024, false, true},
	{"FlanT5Base", "", "google/flan-t5-base", "", "t5", 248_000_000, 10000, 1024, false, true},
}

// SupportedArchitectures are the architectures the engine runs: the decoder-only ones llm/format reads
// (each registers itself by its Hugging Face model_type), and T5's encoder-decoder (llm/t5).
var SupportedArchitectures = append(format.Architectures(), t5.ModelType)

// Lookup returns the catalog entry with the given name (exact, case-sensitive as in SageMaker).
func Lookup(name string) (Model, bool) {
	for _, m := range models {
		if m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

// All returns every catalog entry, in catalog order.
func All() []Model { return slices.Clone(models) }

// Names returns the catalog's model names, for error messages.
func Names() []string {
	out := make([]string, len(models))
	for i, m := range models {
		out[i] = m.Name
	}
	return out
}

// Runnable reports whether the engine can fine-tune models of this architecture (a model_type, an
// alias such as "RefinedWebModel", or a GGUF name such as "gptneox").
func Runnable(arch string) bool {
	if arch == t5.ModelType {
		return true
	}
	name, ok := format.CanonicalArch(arch)
	return ok && slices.Contains(SupportedArchitectures, name)
}
