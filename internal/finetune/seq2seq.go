package finetune

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tokenizer"
	"github.com/lathe-ml/lathe/llm/train"
)

// seq2seqContextLen bounds a T5 example (input and output tokens together), which has no context
// length of its own: relative positions extend to any length, but Flan-T5 was trained on 512-token
// inputs and its attention is quadratic in them.
const seq2seqContextLen = 1024

// seq2seqModel is a LanguageModel over an encoder-decoder (T5, Flan-T5). A Sequence keeps the
// pipeline's layout, the prompt then the response: here the prompt is the encoder's input (the dataset
// input and </s>, as T5's tokenizer encodes it) and the response is the decoder's target (the output
// and </s>); the decoder's inputs are the target shifted right behind decoder_start_token_id.
type seq2seqModel struct {
	m     *t5.Model
	tok   *tokenizer.Tokenizer
	entry catalog.Model
}

// loadSeq2Seq opens a T5 checkpoint directory with its tokenizer (tokenizer.json, or spiece.model).
func loadSeq2Seq(dir string, entry catalog.Model) (*seq2seqModel, error) {
	m, err := t5.Load(dir)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if c := m.Config(); tok.VocabSize() > c.Vocab {
		return nil, fmt.Errorf("the tokenizer has %d tokens, the model's vocabulary %d", tok.VocabSize(), c.Vocab)
	}
	return &seq2seqModel{m: m, tok: tok, entry: entry}, nil
}

func (s *seq2seqModel) Params() int64 { return s.m.NumParams() }

func (s *seq2seqModel) ContextLen() int { return seq2seqContextLen }

func (s *seq2seqModel) EOS() int { return int(s.m.Config().EOS) }

// Tokenize encodes the encoder's input (addBOS: the prompt) with the tokenizer's own </s>, and a
// target without it: the pipeline appends EOS to responses itself.
func (s *seq2seqModel) Tokenize(text string, addBOS bool) []int {
	ids := s.tok.Encode(text, addBOS)
	if !addBOS && s.tok.AppendsEOS() && len(ids) > 0 {
		ids = ids[:len(ids)-1]
	}
	if addBOS && len(ids) == 0 {
		ids = []int{s.EOS()} // an empty input still gives the encoder one position, as T5's tokenizer does
	}
	return ids
}

func (s *seq2seqModel) Detokenize(ids []int) string { return s.tok.Decode(ids) }

// Prompt is the input itself: Flan-T5 was instruction-tuned on plain instructions, with no template.
func (s *seq2seqModel) Prompt(input string) string { return input }

// examples converts sequences into T5's (input, target) pairs and the batch's widths.
func (s *seq2seqModel) examples(seqs []Sequence) ([]t5.Example, int, int) {
	ex := make([]t5.Example, len(seqs))
	TE, TD := 1, 1
	for i, q := range seqs {
		in, tg := make([]int32, q.PromptLen), make([]int32, len(q.Tokens)-q.PromptLen)
		for j, t := range q.Tokens[:q.PromptLen] {
			in[j] = int32(t)
		}
		for j, t := range q.Tokens[q.PromptLen:] {
			tg[j] = int32(t)
		}
		ex[i] = t5.Example{Input: in, Target: tg}
		TE, TD = max(TE, len(in)), max(TD, len(tg))
	}
	return ex, TE, TD
}

func (s *seq2seqModel) batch(seqs []Sequence) t5.Batch {
	ex, TE, TD := s.examples(seqs)
	return t5.PackBatch(s.m.Config(), ex, TE, TD)
}

func (s *seq2seqModel) Loss(ctx context.Context, seqs []Sequence) (float64, error) {
	var sum, count float64
	for lo := 0; lo < len(seqs); lo += evalBatch {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		ls, c, err := s.m.LossSum(s.batch(seqs[lo:min(lo+evalBatch, len(seqs))]))
		if err != nil {
			return 0, err
		}
		sum, count = sum+ls, count+c
	}
	if count == 0 {
		return 0, fmt.Errorf("no token counts toward the loss")
	}
	return sum / count, nil
}

// Generate decodes greedily from decoder_start_token_id, the encoder run once per prompt; the EOS that
// ends an answer is not returned.
func (s *seq2seqModel) Generate(ctx context.Context, prompts [][]int, maxNew int) ([][]int, error) {
	out := make([][]int, len(prompts))
	eos := s.m.Config().EOS
	for i, p := range prompts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in := make([]int32, len(p))
		for j, t := range p {
			in[j] = int32(t)
		}
		toks, err := s.m.Greedy(in, maxNew)
		if err != nil {
			return nil, err
		}
		for _, t := range toks {
			if t == eos {
				break
			}
			out[i] = append(out[i], int(t))
		}
	}
	return out, nil
}

// seq2seqLoRATargets are PEFT's default target modules for T5: q and v of every attention (the encoder's,
// the decoder's self- and cross-attention).
var seq2seqLoRATargets = []model.Target{model.TargetQ, model.TargetV}

func (s *seq2seqModel) trainConfig(hp HyperParameters, totalSteps, warmupSteps int) train.Config {
	cfg := trainConfig(hp, totalSteps, warmupSteps)
	if hp.Method == "lora" {
		// The frozen base in bfloat16, as for the decoder families: half its float32 memory.
		cfg.LoRA = &model.LoRAConfig{Rank: hp.LoRARank, Alpha: hp.LoRAAlpha, Targets: seq2seqLoRATargets, FrozenBF16: true}
	}
	return cfg
}

func (s *seq2seqModel) NewTrainer(hp HyperParameters, totalSteps, warmupSteps int) (Trainer, error) {
	tr, err := train.NewNetwork(s.m, s.m.Config(), s.trainConfig(hp, totalSteps, warmupSteps))
	if err != nil {
		return nil, err
	}
	return &seq2seqTrainer{s: s, tr: tr}, nil
}

func (s *seq2seqModel) ResumeTrainer(path string) (Trainer, json.RawMessage, error) {
	tr, user, err := train.ResumeNetwork(s.m, s.m.Config(), path)
	if err != nil {
		return nil, nil, err
	}
	return &seq2seqTrainer{s: s, tr: tr}, user, nil
}

// Export writes the adapters (PEFT, task SEQ_2_SEQ_LM) when there are any, merges them, and writes the
// model as transformers saves a T5ForConditionalGeneration (config.json, model.safetensors) with its
// tokenizer, and as llama.cpp's t5 GGUF (model.gguf).
func (s *seq2seqModel) Export(dir, adapterDir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	lc, hasAdapter := s.m.LoRA()
	if hasAdapter {
		var tensors []safetensors.Tensor
		var modules []string
		for _, a := range s.m.Adapters() {
			tensors = append(tensors, safetensors.Tensor{Name: "base_model.model." + a.Name, DType: "F32", Shape: a.Shape, Data: a.Data})
			if short := a.Module[strings.LastIndex(a.Module, ".")+1:]; !slices.Contains(modules, short) {
				modules = append(modules, short)
			}
		}
		if err := writePEFT(adapterDir, tensors, peftConfig{TaskType: "SEQ_2_SEQ_LM", BaseModelNameOrPath: s.entry.HubRepo,
			R: lc.Rank, LoraAlpha: lc.Alpha, TargetModules: modules}); err != nil {
			return false, err
		}
		s.m.MergeLoRA()
	}
	if err := s.m.Save(dir); err != nil {
		return false, err
	}
	if err := s.tok.WriteHF(dir); err != nil {
		return false, fmt.Errorf("write tokenizer: %w", err)
	}
	// model.gguf for llama.cpp, whose t5 buckets assume T5's default maximum distance (every released
	// T5 and Flan-T5 uses it).
	if s.m.Config().MaxDistance == 128 {
		meta, err := s.tok.GGUFMetadataFor(s.m.Config().Vocab)
		if err != nil {
			return false, fmt.Errorf("tokenizer metadata: %w", err)
		}
		if err := s.m.WriteGGUF(filepath.Join(dir, "model.gguf"), s.entry.Name+"-finetuned", meta); err != nil {
			return false, fmt.Errorf("write gguf: %w", err)
		}
	}
	return hasAdapter, nil
}

// seq2seqTrainer steps the shared trainer over T5 batches: one micro-batch per pipeline batch.
type seq2seqTrainer struct {
	s      *seq2seqModel
	tr     *train.Trainer
	lastLR float64
}

func (t *seq2seqTrainer) Step(ctx context.Context, seqs []Sequence) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	b := t.s.batch(seqs)
	res, err := t.tr.StepFunc(ctx, b.Count(), 1, func(ctx context.Context, _ int, gradScale float64, _ uint64) (float64, error) {
		return t.s.m.ForwardBackward(b, gradScale)
	})
	if err != nil {
		return 0, err
	}
	t.lastLR = res.LR
	return res.Loss, nil
}

func (t *seq2seqTrainer) StepCount() int { return t.tr.StepsDone() }

func (t *seq2seqTrainer) LearningRate() float64 { return t.lastLR }

func (t *seq2seqTrainer) Save(path string, state json.RawMessage) error {
	return t.tr.Save(path, state)
}
