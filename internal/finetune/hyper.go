package finetune

import (
	"fmt"
	"os"
	"strconv"
)

// HyperParameters are the resolved training settings of a job.
type HyperParameters struct {
	Epochs       int     `json:"epochCount"`
	BatchSize    int     `json:"batchSize"`
	LearningRate float64 `json:"learningRate"`
	WarmupSteps  int     `json:"learningRateWarmupSteps"`
	// Method is "full" (every weight trains) or "lora" (low-rank adapters on the attention and MLP
	// projections; the base weights stay frozen).
	Method    string  `json:"method"`
	LoRARank  int     `json:"loraRank,omitempty"`
	LoRAAlpha float64 `json:"loraAlpha,omitempty"`
	// Schedule is the learning-rate decay after warmup: "cosine" to 10% of the peak.
	Schedule    string  `json:"schedule"`
	WeightDecay float64 `json:"weightDecay"`
	GradClip    float64 `json:"gradClip"`
	Seed        int64   `json:"seed"`
	// Precision is the products' (PrecisionEnv): "fp32", or "bf16" (bfloat16 operands, float32 sums,
	// weights and optimizer: mixed precision for full fine-tuning; for LoRA the frozen bfloat16 base
	// multiplied as it is stored). Empty: the default, fp32 for full fine-tuning and bf16 for LoRA.
	Precision string `json:"precision,omitempty"`
}

// PrecisionEnv names the environment variable of the process that runs training jobs (lathe serve,
// lathe worker) which sets every job's Precision: SageMaker's TextGeneration hyperparameters have no
// such member, so it is a setting of the server, recorded in each job's resolved hyperparameters.
const PrecisionEnv = "LATHE_TRAIN_PRECISION"

// fullFineTuneMaxParams is the largest model trained with full fine-tuning. Full fine-tuning keeps four
// float32 copies of every weight (weights, gradients, two AdamW moments): 16 bytes a parameter, 6.4 GB
// at 400M, which fits the small machines Lathe targets; above it LoRA trains about 1% of the weights.
const fullFineTuneMaxParams = 400_000_000

// ResolveHyperParameters applies the documented per-size defaults, then the job's own values (already
// range-checked by the control plane; checked again here because the CLI calls this directly).
//
// Defaults:
//
//	model size      method  learningRate  batchSize  epochCount
//	< 10M params    full    1e-3          8          3
//	< 400M params   full    5e-5          8          3
//	>= 400M params  lora    2e-4 (r=16)   4          3
//
// learningRateWarmupSteps defaults to 10% of the total steps (at most 250).
func ResolveHyperParameters(params int64, given map[string]string) (HyperParameters, error) {
	hp := HyperParameters{Epochs: 3, BatchSize: 8, Method: "full", Schedule: "cosine", WeightDecay: 0.0, GradClip: 1.0, Seed: 42, WarmupSteps: -1}
	switch p := os.Getenv(PrecisionEnv); p {
	case "", "fp32", "bf16":
		hp.Precision = p
	default:
		return hp, fmt.Errorf("%s=%q: want fp32 or bf16", PrecisionEnv, p)
	}
	switch {
	case params < 10_000_000:
		hp.LearningRate = 1e-3
	case params < fullFineTuneMaxParams:
		hp.LearningRate = 5e-5
	default:
		hp.Method, hp.LearningRate, hp.BatchSize, hp.LoRARank, hp.LoRAAlpha = "lora", 2e-4, 4, 16, 32
	}
	for key, value := range given {
		var err error
		switch key {
		case "epochCount":
			hp.Epochs, err = intIn(key, value, 1, 10)
		case "batchSize":
			hp.BatchSize, err = intIn(key, value, 1, 64)
		case "learningRate":
			hp.LearningRate, err = strconv.ParseFloat(value, 64)
			if err != nil || !(hp.LearningRate > 0 && hp.LearningRate <= 1) {
				err = fmt.Errorf("hyperparameter learningRate must be a number in (0, 1], got %q", value)
			}
		case "learningRateWarmupSteps":
			hp.WarmupSteps, err = intIn(key, value, 0, 250)
		default:
			err = fmt.Errorf("unknown hyperparameter %q (known: epochCount, batchSize, learningRate, learningRateWarmupSteps)", key)
		}
		if err != nil {
			return hp, err
		}
	}
	return hp, nil
}

// warmup resolves the default warmup (-1) against the total number of optimizer steps.
func (hp HyperParameters) warmup(totalSteps int) int {
	if hp.WarmupSteps >= 0 {
		return hp.WarmupSteps
	}
	return min(250, totalSteps/10)
}

func intIn(key, value string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("hyperparameter %s must be an integer from %d to %d, got %q", key, lo, hi, value)
	}
	return n, nil
}

// withMethod overrides the training method the model size picked: "" keeps it, "full" trains every
// weight, "lora" trains adapters (rank 16, alpha 32 unless already set).
func (hp HyperParameters) withMethod(method string) (HyperParameters, error) {
	switch method {
	case "":
	case "full":
		hp.Method = "full"
	case "lora":
		hp.Method = "lora"
		if hp.LoRARank == 0 {
			hp.LoRARank, hp.LoRAAlpha = 16, 32
		}
	default:
		return hp, fmt.Errorf("training method %q: want full or lora", method)
	}
	return hp, nil
}
