package finetune

import (
	"context"
	"encoding/json"
)

// Sequence is one tokenized example: the prompt tokens then the response tokens (ending with EOS).
// The loss counts only Tokens[PromptLen:], the response.
type Sequence struct {
	Tokens    []int
	PromptLen int
	Input     string // the dataset's input, for samples
	Output    string // the dataset's output: the reference for ROUGE
}

// LanguageModel is what the pipeline needs from a loaded base model and its tokenizer.
type LanguageModel interface {
	Params() int64
	ContextLen() int
	Tokenize(text string, addBOS bool) []int
	Detokenize(ids []int) string
	EOS() int
	// Prompt renders a dataset input the way the model is trained and served: the model's chat
	// template for instruct models, the plain template otherwise.
	Prompt(input string) string
	// NewTrainer starts training from the base weights.
	NewTrainer(hp HyperParameters, totalSteps, warmupSteps int) (Trainer, error)
	// ResumeTrainer restores a trainer saved by Trainer.Save, with the caller's state saved beside it.
	ResumeTrainer(path string) (Trainer, json.RawMessage, error)
	// Loss is the mean cross-entropy over the response tokens of seqs, with the current weights.
	Loss(ctx context.Context, seqs []Sequence) (float64, error)
	// Generate continues each prompt greedily for at most maxNew tokens or until EOS, returning the
	// new tokens only.
	Generate(ctx context.Context, prompts [][]int, maxNew int) ([][]int, error)
	// Export writes the current weights as a Hugging Face directory (config.json, model.safetensors,
	// tokenizer files) plus model.gguf, into dir; LoRA adapters are first written on their own into
	// adapterDir (PEFT layout, hasAdapter true) and then merged.
	Export(dir, adapterDir string) (hasAdapter bool, err error)
}

// Trainer updates a LanguageModel's weights one optimizer step at a time.
type Trainer interface {
	// Step ends early with ctx's error when ctx is done mid-step, leaving the state of the last
	// whole step.
	Step(ctx context.Context, batch []Sequence) (loss float64, err error)
	StepCount() int
	LearningRate() float64
	// Save writes the whole training state (weights or adapters, optimizer moments, step, RNG) and
	// the caller's own state in one file, atomically; LanguageModel.ResumeTrainer restores both, so
	// that training continues bit-identically.
	Save(path string, state json.RawMessage) error
}
