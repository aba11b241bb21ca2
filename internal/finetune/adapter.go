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
	PeftType              string         `json:"peft_type"`
	TaskType              string         `json:"task_type"`
	BaseModelNameOrPath   string         `json:"base_model_name_or_path"`
	R                     int            `json:"r"`
	LoraAlpha             float64        `json:"lora_alpha"`
	LoraDropout           float64        `json:"lora_dropout"`
	TargetModules         []string       `json:"target_modules"`
	Bias                  string         `json:"bias"`
	FanInFanOut           bool           `json:"fan_in_fan_out"`
	InferenceMode         bool           `json:"inference_mode"`
	ModulesToSave         []string       `json:"modules_to_save"`
	InitLoraWeights       bool           `json:"init_lora_weights"`
	LayersToTransform     []int          `json:"layers_to_transform"`
	RankPattern           map[string]any `json:"rank_pattern"`
	AlphaPattern          map[string]any `json:"alpha_pattern"`
	UseRSLoRA             bool           `json:"use_rslora"`
	UseDoRA               bool           `json:"use_dora"`
	RevisionOfBaseWeights *string        `json:"revision"`
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
	// Adapters of q, k and v that a checkpoint fuses into one projection (falcon's query_key_value,
	// mpt's Wqkv) become one adapter of rank 3r on it: A stacked, B block-diagonal in the fused row
	// order, so B·A is exactly the three updates. PEFT takes the larger rank and the matching alpha
	// (the same alpha/r scale) from rank_pattern and alpha_pattern.
	fused := map[string]*fusedAdapter{}
	var fusedOrder []string
	for _, t := range e.m.AdapterTensors() {
		base, kind, found := strings.Cut(t.Name, ".weight.lora_")
		if !found {
			return false, fmt.Errorf("unexpected adapter tensor %s", t.Name)
		}
		hf, part, ok := format.HFTensorName(e.base, base+".weight")
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
		if short := module[strings.LastIndex(module, ".")+1:]; !slices.Contains(modules, short) {
			modules = append(modules, short)
		}
		if part >= 0 {
			fa, ok := fused[module]
			if !ok {
				fa = &fusedAdapter{}
				fused[module] = fa
				fusedOrder = append(fusedOrder, module)
			}
			if kind == "a" {
				fa.a[part] = data
			} else {
				fa.b[part] = data
			}
			continue
		}
		tensors = append(tensors, safetensors.Tensor{
			Name:  "base_model.model." + module + ".lora_" + strings.ToUpper(kind) + ".weight",
			DType: "F32", Shape: t.Shape, Data: data,
		})
	}
	var rankPattern, alphaPattern map[string]any
	for _, module := range fusedOrder {
		a, b, err := fused[module].fuse(e.base, lc.Rank)
		if err != nil {
			return false, fmt.Errorf("adapter of %s: %w", module, err)
		}
		r3 := len(a) / cfg.Dim
		tensors = append(tensors,
			safetensors.Tensor{Name: "base_model.model." + module + ".lora_A.weight", DType: "F32", Shape: []int{r3, cfg.Dim}, Data: a},
			safetensors.Tensor{Name: "base_model.model." + module + ".lora_B.weight", DType: "F32", Shape: []int{len(b) / r3, r3}, Data: b})
		short := module[strings.LastIndex(module, ".")+1:]
		if rankPattern == nil {
			rankPattern, alphaPattern = map[string]any{}, map[string]any{}
		}
		rankPattern[short], alphaPattern[short] = r3, lc.Alpha*float64(r3)/float64(lc.Rank)
	}
	pc := peftConfig{TaskType: "CAUSAL_LM", BaseModelNameOrPath: e.entry.HubRepo, R: lc.Rank, LoraAlpha: lc.Alpha,
		LoraDropout: lc.Dropout, TargetModules: modules, RankPattern: rankPattern, AlphaPattern: alphaPattern}
	return true, writePEFT(dir, tensors, pc)
}

// writePEFT writes adapter_model.safetensors and adapter_config.json into dir; pc's fixed fields
// (LORA, no bias, inference mode) are filled in and its target modules sorted.
func writePEFT(dir string, tensors []safetensors.Tensor, pc peftConfig) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "adapter_model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("write adapter: %w", err)
	}
	pc.PeftType, pc.Bias, pc.InferenceMode, pc.InitLoraWeights = "LORA", "none", true, true
	slices.Sort(pc.TargetModules)
	if pc.RankPattern == nil {
		pc.RankPattern, pc.AlphaPattern = map[string]any{}, map[string]any{}
	}
	data, err := json.MarshalIndent(pc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "adapter_config.json"), data, 0o644)
}

// fusedAdapter gathers the q, k and v adapters of one fused projection: a[part] [r, Dim], b[part]
// [rows of the part, r].
type fusedAdapter struct{ a, b [3][]float32 }

// fuse returns the fused adapter: A = [A_q; A_k; A_v] [3r, Dim] and B [fused rows, 3r] with B_q in
// columns 0..r of the query rows, B_k in r..2r of the key rows, B_v in 2r..3r of the value rows,
// rows ordered as the checkpoint's fused tensor. A part without an adapter contributes zeros.
func (f *fusedAdapter) fuse(cfg format.ModelConfig, r int) (a, b []float32, err error) {
	rows := [3]int{cfg.Heads * cfg.HeadDim, cfg.KVHeads * cfg.HeadDim, cfg.KVHeads * cfg.HeadDim}
	a = make([]float32, 3*r*cfg.Dim)
	var wide [3][]float32
	for p := range 3 {
		if f.a[p] != nil {
			copy(a[p*r*cfg.Dim:(p+1)*r*cfg.Dim], f.a[p])
		}
		wide[p] = make([]float32, rows[p]*3*r)
		if f.b[p] == nil {
			continue
		}
		for i := range rows[p] {
			copy(wide[p][i*3*r+p*r:i*3*r+(p+1)*r], f.b[p][i*r:(i+1)*r])
		}
	}
	b, err = format.FuseQKV(wide[0], wide[1], wide[2], format.HFQKVLayout(cfg), cfg.Heads, cfg.KVHeads, cfg.HeadDim, 3*r)
	return a, b, err
}
