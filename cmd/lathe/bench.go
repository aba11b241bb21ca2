package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/llm/cpuinfo"
	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/t5"
	"github.com/lathe-ml/lathe/llm/tensor"
	"github.com/lathe-ml/lathe/llm/train"
)

// PeakFLOPS is the float32 peak this benchmark's MFU is measured against: 506 GFLOP/s, the figure the
// engine-speed issue gives for the two-core machine Lathe's numbers are quoted on, assuming Zen 5 (2
// cores × 2 AVX-512 FMA units × 16 lanes × 2 FLOP × ~3.95 GHz). That machine reports itself as AMD
// family 25 model 17 (Zen 4), which runs AVX-512 on 256-bit units: a register-only FMA loop measures
// 32 FLOP/cycle/core at 3.64 GHz, ~232 GFLOP/s for two cores, so MFU here is ~0.46 of the MFU against
// what that machine can really do. The 506 stays so that numbers compare across sessions.
const PeakFLOPS = 506e9

// benchCommand is `lathe bench`: engine speed on this machine. Each verb prints its progress on
// standard error and its result as one JSON line, the last line on standard output.
func benchCommand() *cobra.Command {
	var profile string
	var profileFile *os.File
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the engine: matrix multiplication, a training step, generation (one JSON line each)",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if profile == "" {
				return nil
			}
			f, err := os.Create(profile)
			if err != nil {
				return fmt.Errorf("create the CPU profile: %w", err)
			}
			profileFile = f
			return pprof.StartCPUProfile(f)
		},
		PersistentPostRunE: func(*cobra.Command, []string) error {
			if profileFile == nil {
				return nil
			}
			pprof.StopCPUProfile()
			return profileFile.Close()
		},
	}
	cmd.PersistentFlags().StringVar(&profile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	cmd.AddCommand(benchMatmulCommand(), benchTrainCommand(), benchGenerateCommand())
	return cmd
}

// resources are the fields every result carries: threads and the process's peak memory.
type resources struct {
	Threads int    `json:"threads"`
	Kernel  string `json:"kernel"`
	// PeakMemoryBytes is the process's peak resident set (getrusage maxrss); GoSysBytes is the
	// memory the Go runtime holds from the OS (runtime.MemStats.Sys).
	PeakMemoryBytes int64  `json:"peak_memory_bytes"`
	GoSysBytes      uint64 `json:"go_sys_bytes"`
}

func measureResources() resources {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r := resources{Threads: tensor.Workers(), Kernel: tensor.KernelName(), GoSysBytes: ms.Sys}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		r.PeakMemoryBytes = int64(ru.Maxrss)
		if runtime.GOOS == "linux" {
			r.PeakMemoryBytes *= 1024 // kilobytes on Linux, bytes on macOS
		}
	}
	return r
}

// cpuShare is the share of threads × wall time that the process ran on a CPU since (wallStart,
// cpuStart): near 1 when the benchmark had the cores to itself, lower when other work on the machine
// took them (then the timings measure the machine's load as much as the engine).
func cpuShare(wallStart time.Time, cpuStart time.Duration) float64 {
	wall := time.Since(wallStart)
	return float64(cpuinfo.ProcessTime()-cpuStart) / (float64(wall) * float64(tensor.Workers()))
}

func printResult(w io.Writer, v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", line)
	return err
}

type matmulResult struct {
	Bench  string `json:"bench"`
	M      int    `json:"m"`
	N      int    `json:"n"`
	K      int    `json:"k"`
	Layout string `json:"layout"`
	Iters  int    `json:"iters"`
	// GFLOPS is 2·M·N·K over the mean time of one product; GFLOPSBest over the fastest one.
	GFLOPS     float64 `json:"gflops"`
	GFLOPSBest float64 `json:"gflops_best"`
	MsPerIter  float64 `json:"ms_per_iter"`
	CPUShare   float64 `json:"cpu_share"` // see cpuShare
	resources
}

func benchMatmulCommand() *cobra.Command {
	var m, n, k, iters int
	var layout string
	cmd := &cobra.Command{
		Use:   "matmul --m M --n N --k K",
		Short: "GFLOP/s of C = A·B (nn), A·Bᵀ (nt) or Aᵀ·B (tn), C M×N, on all threads",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if m < 1 || n < 1 || k < 1 || iters < 1 {
				return fmt.Errorf("--m, --n, --k and --iters must be positive")
			}
			var transA, transB bool
			switch layout {
			case "nn":
			case "nt":
				transB = true
			case "tn":
				transA = true
			default:
				return fmt.Errorf("--layout %q: want nn, nt or tn", layout)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
			for i := range a {
				a[i] = rng.Float32()*2 - 1
			}
			for i := range b {
				b[i] = rng.Float32()*2 - 1
			}
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "matmul %dx%dx%d %s, %d threads, kernel %s: %d iterations after one warm-up\n",
				m, n, k, layout, tensor.Workers(), tensor.KernelName(), iters)
			tensor.MatMul(c, a, b, m, n, k, transA, transB, false)
			times := make([]time.Duration, iters)
			wall0, cpu0 := time.Now(), cpuinfo.ProcessTime()
			for i := range times {
				start := time.Now()
				tensor.MatMul(c, a, b, m, n, k, transA, transB, false)
				times[i] = time.Since(start)
			}
			share := cpuShare(wall0, cpu0)
			flop := 2 * float64(m) * float64(n) * float64(k)
			var total time.Duration
			for _, d := range times {
				total += d
			}
			mean := total.Seconds() / float64(iters)
			best := slices.Min(times).Seconds()
			res := matmulResult{Bench: "matmul", M: m, N: n, K: k, Layout: layout, Iters: iters,
				GFLOPS: flop / mean / 1e9, GFLOPSBest: flop / best / 1e9, MsPerIter: mean * 1e3, CPUShare: share, resources: measureResources()}
			fmt.Fprintf(stderr, "%.1f GFLOP/s mean, %.1f best, %.2f ms per product, %.0f%% of %d threads' time on a CPU\n",
				res.GFLOPS, res.GFLOPSBest, res.MsPerIter, 100*share, res.Threads)
			return printResult(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&m, "m", 768, "rows of C")
	f.IntVar(&n, "n", 3072, "columns of C")
	f.IntVar(&k, "k", 768, "inner dimension")
	f.StringVar(&layout, "layout", "nn", "nn: A·B, nt: A·Bᵀ (B stored N×K), tn: Aᵀ·B (A stored K×M)")
	f.IntVar(&iters, "iters", 10, "timed products")
	return cmd
}

type trainResult struct {
	Bench   string `json:"bench"`
	Arch    string `json:"arch"`
	Dim     int    `json:"dim"`
	Layers  int    `json:"layers"`
	Heads   int    `json:"heads"`
	KVHeads int    `json:"kv_heads"`
	FFN     int    `json:"ffn"`
	Vocab   int    `json:"vocab"`
	Batch   int    `json:"batch"`
	Seq     int    `json:"seq"`
	Steps   int    `json:"steps"`
	Method  string `json:"method"`
	// Precision is the products': "fp32", or "bf16" (--precision; VDPBF16PS where BF16Native).
	Precision  string `json:"precision"`
	BF16Native bool   `json:"bf16_native"`
	Params     int    `json:"params"`
	// MsPerStep is the mean time of one optimizer step (forward, backward, clipping, AdamW) over the
	// timed steps; the first step runs untimed as a warm-up.
	MsPerStep       float64 `json:"ms_per_step"`
	MsPerStepBest   float64 `json:"ms_per_step_best"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	// TokensPerSecondBest and MFUBest are those of the fastest step (the least disturbed, on a
	// shared machine).
	TokensPerSecondBest float64 `json:"tokens_per_second_best"`
	// GFLOPS counts 6·Params FLOP per token (2 forward, 4 backward) for full fine-tuning and 4·Params
	// for LoRA (no weight gradients of the frozen weights); attention's T² terms are not counted.
	// MFU is GFLOPS over PeakFLOPS (506 GFLOP/s).
	GFLOPS    float64 `json:"gflops"`
	MFU       float64 `json:"mfu"`
	MFUBest   float64 `json:"mfu_best"`
	FinalLoss float64 `json:"final_loss"`
	CPUShare  float64 `json:"cpu_share"` // of the timed steps; see cpuShare
	resources
}

func benchTrainCommand() *cobra.Command {
	var cfg model.Config
	var batch, seq, steps int
	var lora bool
	var arch, precision string
	cmd := &cobra.Command{
		Use:   "train [--arch A] --dim D --layers L --heads H --kv-heads K --ffn F --vocab V --batch B --seq T --steps S",
		Short: "Tokens/s and MFU of training steps of a randomly initialised model of a family (full fine-tuning with AdamW, or --lora)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 1 || seq < 1 || steps < 1 {
				return fmt.Errorf("--batch, --seq and --steps must be positive")
			}
			if cfg.Heads < 1 || cfg.Dim%cfg.Heads != 0 {
				return fmt.Errorf("--dim %d must be a multiple of --heads %d", cfg.Dim, cfg.Heads)
			}
			cfg.HeadDim = cfg.Dim / cfg.Heads
			cfg.NormEps, cfg.RopeTheta, cfg.ContextLen = 1e-5, 10000, seq
			if arch == "t5" {
				cfg.KVHeads = cfg.Heads // T5 has no grouped kv heads; the rest of cfg is only its dimensions
			} else if arch != "llama" {
				fc, err := familyConfig(arch, cfg, seq)
				if err != nil {
					return err
				}
				cfg = fc
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			switch {
			case precision == "":
				precision = "fp32"
				if lora && arch != "t5" {
					precision = "bf16" // a LoRA job's default: the frozen bfloat16 base multiplied as it is
				}
			case precision != "fp32" && precision != "bf16":
				return fmt.Errorf("--precision %q: want fp32 or bf16", precision)
			case precision == "bf16" && arch == "t5":
				return fmt.Errorf("--precision bf16 is for the decoder families: t5 multiplies in float32")
			}
			stderr := cmd.ErrOrStderr()
			tc := train.Config{
				Schedule:    train.Schedule{PeakLR: 1e-4, MinLR: 1e-4, TotalSteps: steps + 1, Decay: "constant"},
				AdamW:       train.AdamWConfig{WeightDecay: 0.1},
				MaxGradNorm: 1,
				Seed:        1,
			}
			method, flopPerToken := "full", 6.0
			if lora {
				method, flopPerToken = "lora", 4.0
				// As the job pipeline does: the frozen base in bfloat16 (what makes a 7B fit in 24 GiB).
				// --precision fp32 widens each layer of it to float32 for the base's products.
				tc.LoRA = &model.LoRAConfig{Rank: 16, Alpha: 32, FrozenBF16: true, WidenFrozen: precision == "fp32"}
			}
			// Random tokens: the speed of a step does not depend on what the tokens are.
			rng := rand.New(rand.NewPCG(7, 7))
			var step func() (train.StepResult, error)
			var params int64
			if arch == "t5" {
				var err error
				if step, params, err = t5BenchStep(cfg, tc, batch, seq, rng); err != nil {
					return err
				}
				// A token runs through the encoder or the decoder, about half the weights each.
				flopPerToken /= 2
			} else {
				var m *model.Model
				var err error
				if lora {
					// Straight into the bfloat16 base, as a LoRA job loads a large model: a 7B's float32
					// copy (28 GB) would never fit where the job does.
					m, err = model.FromSourceBF16(cfg, randomSource{cfg: cfg, rng: rand.New(rand.NewPCG(1, 1))})
				} else {
					m, err = model.NewRandom(cfg, 1)
				}
				if err != nil {
					return err
				}
				m.SetMixedBF16(!lora && precision == "bf16")
				if !lora && precision == "bf16" && !tensor.BF16Native() {
					// Measured as asked; a job would train in fp32 here (see finetune's mixedBF16).
					fmt.Fprintln(stderr, "note: this CPU has no AVX512_BF16: bf16 products are widened to float32, slower than fp32; jobs asking for bf16 train in fp32 here")
				}
				if tc.LoRA != nil {
					for _, t := range []model.Target{model.TargetQ, model.TargetK, model.TargetV, model.TargetO,
						model.TargetGate, model.TargetUp, model.TargetDown} {
						if cfg.HasTarget(t) { // falcon's, gpt_neox's and mpt's MLP has no gate
							tc.LoRA.Targets = append(tc.LoRA.Targets, t)
						}
					}
				}
				tr, err := train.New(m, tc)
				if err != nil {
					return err
				}
				params = int64(cfg.NumParams())
				examples := make([]model.Example, batch)
				for i := range examples {
					examples[i].Tokens = make([]int32, seq+1)
				}
				var b model.Batch
				step = func() (train.StepResult, error) {
					for _, ex := range examples {
						for j := range ex.Tokens {
							ex.Tokens[j] = int32(rng.IntN(cfg.Vocab))
						}
					}
					if b.Tokens == nil {
						b = model.PackBatch(examples, seq, 0)
					} else {
						model.PackInto(&b, examples, 0)
					}
					return tr.Step(b)
				}
			}
			fmt.Fprintf(stderr, "train: %s, %.1fM parameters (%s, %s products, bfloat16 kernels: %v), batch %d × %d tokens, %d threads, kernel %s; one warm-up step, then %d timed\n",
				arch, float64(params)/1e6, method, precision, tensor.BF16Native(), batch, seq, tensor.Workers(), tensor.KernelName(), steps)

			ctx := cmd.Context()
			times := make([]time.Duration, 0, steps)
			var loss float64
			var wall0 time.Time
			var cpu0 time.Duration
			for i := 0; i <= steps; i++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				start := time.Now()
				r, err := step()
				if err != nil {
					return fmt.Errorf("step %d: %w", i, err)
				}
				d := time.Since(start)
				loss = r.Loss
				if math.IsNaN(loss) {
					return fmt.Errorf("step %d: loss is NaN", i)
				}
				if i == 0 {
					fmt.Fprintf(stderr, "warm-up step: %.0f ms, loss %.4f\n", d.Seconds()*1e3, loss)
					wall0, cpu0 = time.Now(), cpuinfo.ProcessTime()
					continue
				}
				times = append(times, d)
				fmt.Fprintf(stderr, "step %d/%d: %.0f ms, %.0f tokens/s, loss %.4f\n", i, steps, d.Seconds()*1e3,
					float64(batch*seq)/d.Seconds(), loss)
			}
			share := cpuShare(wall0, cpu0)
			var total time.Duration
			for _, d := range times {
				total += d
			}
			mean, best := total.Seconds()/float64(len(times)), slices.Min(times).Seconds()
			tps, tpsBest := float64(batch*seq)/mean, float64(batch*seq)/best
			gflops := flopPerToken * float64(params) * tps / 1e9
			res := trainResult{Bench: "train", Arch: arch, Dim: cfg.Dim, Layers: cfg.Layers, Heads: cfg.Heads, KVHeads: cfg.KVHeads,
				FFN: cfg.FFN, Vocab: cfg.Vocab, Batch: batch, Seq: seq, Steps: steps, Method: method, Precision: precision,
				BF16Native: tensor.BF16Native(), Params: int(params),
				MsPerStep: mean * 1e3, MsPerStepBest: best * 1e3, TokensPerSecond: tps, TokensPerSecondBest: tpsBest,
				GFLOPS: gflops, MFU: gflops * 1e9 / PeakFLOPS, MFUBest: flopPerToken * float64(params) * tpsBest / PeakFLOPS,
				FinalLoss: loss, CPUShare: share, resources: measureResources()}
			fmt.Fprintf(stderr, "%.1f ms per step, %.0f tokens/s (best step %.0f), %.1f GFLOP/s, MFU %.1f%% (best %.1f%%), %.0f%% of %d threads' time on a CPU\n",
				res.MsPerStep, tps, tpsBest, gflops, 100*res.MFU, 100*res.MFUBest, 100*share, res.Threads)
			return printResult(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Dim, "dim", 512, "model width")
	f.IntVar(&cfg.Layers, "layers", 8, "transformer blocks")
	f.IntVar(&cfg.Heads, "heads", 8, "query heads")
	f.IntVar(&cfg.KVHeads, "kv-heads", 8, "key/value heads")
	f.IntVar(&cfg.FFN, "ffn", 1376, "SwiGLU hidden width")
	f.IntVar(&cfg.Vocab, "vocab", 32000, "vocabulary size")
	f.IntVar(&batch, "batch", 4, "sequences per step")
	f.IntVar(&seq, "seq", 128, "tokens per sequence")
	f.IntVar(&steps, "steps", 5, "timed steps (after one warm-up step)")
	f.BoolVar(&lora, "lora", false, "train LoRA adapters (rank 16 on every projection, the frozen base in bfloat16) instead of every weight")
	f.StringVar(&precision, "precision", "", "the products' precision: fp32, or bf16 (bfloat16 operands, float32 sums and master weights; "+
		"mixed precision for full fine-tuning, the frozen base multiplied as it is stored for --lora); default fp32, bf16 with --lora")
	f.StringVar(&arch, "arch", "llama", "the block's family, as its checkpoints lay it out: llama, falcon-7b (multi-query, parallel attention, "+
		"4x GELU MLP; --ffn and --kv-heads are the family's), falcon-40b (grouped kv, two norms), gpt_neox (biases, partial rotary, "+
		"parallel residual, untied head), mpt (ALiBi, LayerNorm without bias; --ffn a multiple of --dim), t5 (Flan-T5's "+
		"encoder-decoder, --layers each; LoRA on q and v)")
	return cmd
}

// randomSource yields N(0, 0.02²) tensors (norm gains 1, biases 0) one at a time, for a model built
// straight into bfloat16.
type randomSource struct {
	cfg model.Config
	rng *rand.Rand
}

func (r randomSource) Tensor(name string) ([]float32, []int, error) {
	shape, ok := r.cfg.TensorShape(name)
	if !ok {
		return nil, nil, fmt.Errorf("no tensor %s", name)
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]float32, n)
	switch {
	case strings.Contains(name, "norm") && strings.HasSuffix(name, ".weight"):
		for i := range data {
			data[i] = 1
		}
	case strings.HasSuffix(name, ".bias"):
	default:
		for i := range data {
			data[i] = float32(r.rng.NormFloat64() * 0.02)
		}
	}
	return data, shape, nil
}

// t5BenchStep is a Flan-T5-shaped encoder-decoder at the benchmark's dimensions (d_kv = dim/heads,
// gated-GELU, untied head, as many decoder as encoder layers) and its training step: each sequence is
// seq/2 encoder tokens and seq/2 target tokens, so that a step moves as many tokens as a decoder-only
// model's of the same --seq. LoRA goes on q and v, as jobs put it.
func t5BenchStep(c model.Config, tc train.Config, batch, seq int, rng *rand.Rand) (func() (train.StepResult, error), int64, error) {
	cfg := t5.Config{DModel: c.Dim, DKV: c.Dim / c.Heads, DFF: c.FFN, EncoderLayers: c.Layers, DecoderLayers: c.Layers,
		Heads: c.Heads, Buckets: 32, MaxDistance: 128, Eps: 1e-6, FeedForwardProj: "gated-gelu", Act: t5.ActGELUTanh,
		Gated: true, Vocab: c.Vocab, DecoderStart: 0, EOS: 1, Pad: 0}
	m, err := t5.NewRandom(cfg, 1)
	if err != nil {
		return nil, 0, err
	}
	if tc.LoRA != nil {
		tc.LoRA.Targets = []model.Target{model.TargetQ, model.TargetV}
	}
	tr, err := train.NewNetwork(m, cfg, tc)
	if err != nil {
		return nil, 0, err
	}
	params := m.NumParams()
	te, td := max(1, seq/2), max(1, seq-seq/2)
	examples := make([]t5.Example, batch)
	step := func() (train.StepResult, error) {
		for i := range examples {
			in, tg := make([]int32, te), make([]int32, td)
			for j := range in {
				in[j] = int32(rng.IntN(cfg.Vocab))
			}
			for j := range tg {
				tg[j] = int32(rng.IntN(cfg.Vocab))
			}
			examples[i] = t5.Example{Input: in, Target: tg}
		}
		b := t5.PackBatch(cfg, examples, te, td)
		return tr.StepFunc(context.Background(), b.Count(), 1, func(_ context.Context, _ int, scale float64, _ uint64) (float64, error) {
			return m.ForwardBackward(b, scale)
		})
	}
	return step, params, nil
}

// familyConfig is the model of a family at the benchmark's dimensions: the config.json the family's
// checkpoints carry, read by llm/format as a real one would be, so the block is the family's own.
func familyConfig(arch string, c model.Config, seq int) (model.Config, error) {
	var js map[string]any
	switch arch {
	case "falcon-7b", "falcon-40b":
		js = map[string]any{"model_type": "falcon", "hidden_size": c.Dim, "num_hidden_layers": c.Layers,
			"num_attention_heads": c.Heads, "parallel_attn": true, "bias": false, "alibi": false, "vocab_size": c.Vocab}
		if arch == "falcon-7b" {
			js["multi_query"], js["new_decoder_architecture"] = true, false
		} else {
			js["num_kv_heads"], js["new_decoder_architecture"] = c.KVHeads, true
		}
	case "gpt_neox":
		js = map[string]any{"model_type": "gpt_neox", "hidden_size": c.Dim, "num_hidden_layers": c.Layers,
			"num_attention_heads": c.Heads, "intermediate_size": c.FFN, "hidden_act": "gelu", "rotary_pct": 0.25,
			"use_parallel_residual": true, "tie_word_embeddings": false, "vocab_size": c.Vocab, "max_position_embeddings": seq}
	case "mpt":
		if c.FFN%c.Dim != 0 {
			return model.Config{}, fmt.Errorf("--arch mpt: --ffn %d must be a multiple of --dim %d (expansion_ratio)", c.FFN, c.Dim)
		}
		js = map[string]any{"model_type": "mpt", "d_model": c.Dim, "n_heads": c.Heads, "n_layers": c.Layers,
			"expansion_ratio": c.FFN / c.Dim, "max_seq_len": seq, "vocab_size": c.Vocab, "no_bias": true,
			"attn_config": map[string]any{"alibi": true, "alibi_bias_max": 8}}
	default:
		return model.Config{}, fmt.Errorf("--arch %q: want llama, falcon-7b, falcon-40b, gpt_neox or mpt", arch)
	}
	raw, err := json.Marshal(js)
	if err != nil {
		return model.Config{}, err
	}
	a, _ := format.LookupArch(js["model_type"].(string))
	mc, err := a.ParseHF(raw)
	if err != nil {
		return model.Config{}, fmt.Errorf("--arch %s: %w", arch, err)
	}
	cfg, err := model.ConfigFrom(mc)
	if err != nil {
		return model.Config{}, fmt.Errorf("--arch %s: %w", arch, err)
	}
	cfg.ContextLen = seq
	return cfg, nil
}

type generateResult struct {
	Bench        string `json:"bench"`
	Model        string `json:"model"`
	Params       int64  `json:"params"`
	Batch        int    `json:"batch"`
	Weights      string `json:"weights"` // float32 or bfloat16
	PromptTokens int    `json:"prompt_tokens"`
	NewTokens    int    `json:"new_tokens"` // generated per sequence
	// PrefillMs is the time to the first new token (the prompt's forward); TokensPerSecond counts
	// the tokens after it, over all sequences of the batch, against the time after it (decoding).
	PrefillMs       float64 `json:"prefill_ms"`
	TokensPerSecond float64 `json:"tokens_per_second"`
	MsPerToken      float64 `json:"ms_per_token"` // one decoding step of the whole batch
	CPUShare        float64 `json:"cpu_share"`    // of the whole generation; see cpuShare
	resources
}

func benchGenerateCommand() *cobra.Command {
	var modelPath, prompt string
	var newTokens, batch int
	var bf16 bool
	cmd := &cobra.Command{
		Use:   "generate --model PATH --new-tokens N",
		Short: "Greedy generation speed (prefill, then decoding tokens/s) with a KV cache",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newTokens < 2 || batch < 1 {
				return errors.New("--new-tokens must be at least 2 and --batch at least 1")
			}
			lm, err := finetune.LoadModel(modelPath, finetune.LocalEntry(modelPath, false))
			if err != nil {
				return fmt.Errorf("load model %s: %w", modelPath, err)
			}
			m, _, _, err := finetune.Engine(lm)
			if err != nil {
				return err
			}
			if bf16 {
				m.UseBF16Weights()
			}
			ids := make([]int32, 0, 16)
			for _, id := range lm.Tokenize(prompt, true) {
				ids = append(ids, int32(id))
			}
			if len(ids)+newTokens > m.Config().ContextLen {
				return fmt.Errorf("%d prompt + %d new tokens do not fit the model's context of %d", len(ids), newTokens, m.Config().ContextLen)
			}
			prompts := make([][]int32, batch)
			for i := range prompts {
				prompts[i] = ids
			}
			stderr := cmd.ErrOrStderr()
			fmt.Fprintf(stderr, "generate: %s, %d parameters, batch %d, %d prompt tokens, %d new tokens, %d threads\n",
				modelPath, lm.Params(), batch, len(ids), newTokens, tensor.Workers())
			// No stop tokens: every sequence generates exactly newTokens, so runs are comparable.
			opt := generate.Options{MaxNewTokens: newTokens}
			var firstAt time.Time
			produced := 0
			start, cpu0 := time.Now(), cpuinfo.ProcessTime()
			_, err = generate.Generate(cmd.Context(), m, prompts, opt, nil, func(t generate.Token) error {
				if firstAt.IsZero() {
					firstAt = time.Now()
				}
				produced++
				return nil
			})
			if err != nil {
				return err
			}
			end, share := time.Now(), cpuShare(start, cpu0)
			decoded := produced - batch // the first token of each sequence comes out of the prefill
			decodeSec := end.Sub(firstAt).Seconds()
			weights := "float32"
			if bf16 {
				weights = "bfloat16"
			}
			res := generateResult{Bench: "generate", Model: modelPath, Params: lm.Params(), Batch: batch, Weights: weights,
				PromptTokens: len(ids), NewTokens: produced / batch, PrefillMs: firstAt.Sub(start).Seconds() * 1e3,
				TokensPerSecond: float64(decoded) / decodeSec, MsPerToken: decodeSec * 1e3 / float64(decoded/batch),
				CPUShare: share, resources: measureResources()}
			fmt.Fprintf(stderr, "prefill %.1f ms, %.1f tokens/s decoding (%.2f ms per step), %.0f%% of %d threads' time on a CPU\n",
				res.PrefillMs, res.TokensPerSecond, res.MsPerToken, 100*share, res.Threads)
			return printResult(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "a GGUF file or a Hugging Face directory")
	f.StringVar(&prompt, "prompt", "Once upon a time", "the prompt every sequence starts from")
	f.IntVar(&newTokens, "new-tokens", 128, "tokens to generate per sequence")
	f.IntVar(&batch, "batch", 1, "sequences decoded together")
	f.BoolVar(&bf16, "bf16", false, "decode with bfloat16 weights (half the bytes per token), as large endpoints do")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
