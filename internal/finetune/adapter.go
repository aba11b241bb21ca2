package finetune

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
)

// peftConfig is adapter_config.json as Hugging Face PEFT writes it for a LoRA adapter.
type peftConfig struct {
	PeftType              string   `json:"peft_type"`
	TaskType              string   `json:"task_type"`
	BaseModelNameOrPath   string   `json:"base_model_name_or_path"`
	R                     int      `json:"r"`
	LoraAlpha             float64  `json:"lora_alpha"`
	LoraDropout           float64  `json:"lora_dropout"`
	TargetModules         []string `json:"target_modules"`
	Bias                  string   `json:"bias"`
	FanInFanOut           bool     `json:"fan_in_fan_out"`
	InferenceMode         bool     `json:"inference_mode"`
	ModulesToSave         []string `json:"modules_to_save"`
	InitLoraWeights       bool     `json:"init_lora_weights"`
	LayersToTransform     []int    `json:"layers_to_transform"`
	RankPattern           struct{} `json:"rank_pattern"`
	AlphaPattern          struct{} `json:"alpha_pattern"`
	UseRSLoRA             bool     `json:"use_rslora"`
	UseDoRA               bool     `json:"use_dora"`
	RevisionOfBaseWeights *string  `json:"revision"`
}

// exportAdapter writes the model's LoRA adapters, before they are merged, in PEFT's layout
// (adapter_model.safetensors + adapter_config.json), so they can be loaded on top of the base model
// with transformers/PEFT. It writes nothing for a fully fine-tuned model.
func (e *engineModel) exportAdapter(dir string) (bool, error) {
	lc, ok := e.m.LoRA()
	if !ok {
		return false, nil
	}
	cfg := e.m.Config()
	var tensors []safetensors.Tensor
	var modules []string
	for _, t := range e.m.AdapterTensors() {
		base, kind, found := strings.Cut(t.Name, ".weight.lora_")
		if !found {
			return false, fmt.Errorf("unexpected adapter tensor %s", t.Name)
		}
		hf, ok := format.HFName(base + ".weight")
		if !ok {
			return false, fmt.Errorf("no Hugging Face name for %s", base)
		}
		data := t.Data
		// B's rows are output rows of Q or K: a model running in GGUF's adjacent rotary layout holds
		// them permuted, and PEFT expects Hugging Face's half-split order.
		if kind == "b" && e.m.RopePairing() == format.RopeAdjacent {
			heads := 0
			switch {
			case strings.HasSuffix(base, ".attn_q"):
				heads = cfg.Heads
			case strings.HasSuffix(base, ".attn_k"):
				heads = cfg.KVHeads
			}
			if heads > 0 {
				var err error
				if data, err = format.PermuteGGUFToHF(t.Data, heads, t.Shape[1]); err != nil {
					return false, fmt.Errorf("permute %s: %w", t.Name, err)
				}
			}
		}
		module := strings.TrimSuffix(hf, ".weight")
		tensors = append(tensors, safetensors.Tensor{
			Name:  "base_model.model." + module + ".lora_" + strings.ToUpper(kind) + ".weight",
			DType: "F32", Shape: t.Shape, Data: data,
		})
		if short := module[strings.LastIndex(module, ".")+1:]; !slices.Contains(modules, short) {
			modules = append(modules, short)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return false, fmt.Errorf("write adapter: %w", err)
	}
	slices.Sort(modules)
	pc := peftConfig{PeftType: "LORA", TaskType: "CAUSAL_LM", BaseModelNameOrPath: e.entry.HubRepo, R: lc.Rank,
		LoraAlpha: lc.Alpha, LoraDropout: lc.Dropout, TargetModules: modules, Bias: "none", InferenceMode: true, InitLoraWeights: true}
	data, err := json.MarshalIndent(pc, "", "  ")
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(filepath.Join(dir, "adapter_config.json"), data, 0o644)
}
