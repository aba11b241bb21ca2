package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/job"
)

// finetuneCommand is `lathe finetune`: the job's fine-tuning pipeline run locally, without a server.
func finetuneCommand() *cobra.Command {
	var (
		run                finetune.Local
		epochs, batchSize  int
		warmup             int
		learningRate       float64
		lora, full, chat   bool
		validationFraction float64
	)
	cmd := &cobra.Command{
		Use:   "finetune --model PATH --data train.csv --out DIR",
		Short: "Fine-tune a model on a local CSV/Parquet dataset (input, output columns), without the server",
		Long: `Fine-tune a model on this machine with the same pipeline a job runs: the dataset is checked row by
row and split, prompts use the same template, the base and the fine-tuned model are evaluated on the
validation split (loss, perplexity, ROUGE). DIR receives the model as a Hugging Face directory
(config.json, model.safetensors, tokenizer files) plus model.gguf, and metrics.json, samples.jsonl,
data-report.json and training-log.jsonl.

Ctrl-C saves a checkpoint in DIR/checkpoints; the same command run again resumes from it and ends
exactly as an uninterrupted run would. Hyperparameters left out get the per-size defaults a job gets.`,
		Example: `  lathe finetune --model ../shared/models/stories260K.gguf --data train.csv --out tuned/
  lathe finetune --model smollm/ --data train.parquet --validation val.parquet --out tuned/ --lora --epochs 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if lora && full {
				return errors.New("--lora and --full exclude each other")
			}
			switch {
			case lora:
				run.Method = "lora"
			case full:
				run.Method = "full"
			}
			// Only the flags the user set override the defaults, as in a job's request.
			run.HyperParameters = map[string]string{}
			for flag, key := range map[string]string{"epochs": "epochCount", "batch-size": "batchSize",
				"learning-rate": "learningRate", "warmup-steps": "learningRateWarmupSteps"} {
				if f := cmd.Flags().Lookup(flag); f.Changed {
					run.HyperParameters[key] = f.Value.String()
				}
			}
			if validationFraction <= 0 || validationFraction >= 1 {
				return fmt.Errorf("--validation-fraction must be between 0 and 1, got %v", validationFraction)
			}
			run.ValidationFraction = validationFraction
			run.Entry = finetune.LocalEntry(run.ModelPath, chat)

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep := newTrainProgress(cmd.ErrOrStderr())
			run.Reporter = rep
			res, err := run.Run(ctx)
			rep.finish()
			if err != nil {
				if ctx.Err() != nil {
					ckpt := filepath.Join(run.OutDir, "checkpoints", "checkpoint.bin")
					if _, statErr := os.Stat(ckpt); statErr == nil {
						return fmt.Errorf("interrupted: the checkpoint is %s; run the same command again to resume", ckpt)
					}
					return errors.New("interrupted before training began: nothing to resume; run the same command again to start over")
				}
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "fine-tuned %s (%s, %d epochs, batch %d, learning rate %g) in %s\n", run.Entry.Name,
				res.HyperParameters.Method, res.HyperParameters.Epochs, res.HyperParameters.BatchSize,
				res.HyperParameters.LearningRate, time.Duration(res.TrainSeconds*float64(time.Second)).Round(time.Millisecond))
			fmt.Fprintf(w, "%-16s %10s %10s\n", "validation", "base", "fine-tuned")
			for _, row := range []struct {
				name       string
				base, tune float64
			}{
				{"loss", res.Base.ValidationLoss, res.FineTuned.ValidationLoss},
				{"perplexity", res.Base.Perplexity, res.FineTuned.Perplexity},
				{"rouge1", res.Base.Rouge1, res.FineTuned.Rouge1},
				{"rouge2", res.Base.Rouge2, res.FineTuned.Rouge2},
				{"rougeL", res.Base.RougeL, res.FineTuned.RougeL},
				{"rougeLsum", res.Base.RougeLSum, res.FineTuned.RougeLSum},
			} {
				fmt.Fprintf(w, "%-16s %10.4f %10.4f\n", row.name, row.base, row.tune)
			}
			fmt.Fprintf(w, "model, metrics.json and samples.jsonl written to %s\n", run.OutDir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&run.ModelPath, "model", "", "base model: a GGUF file or a Hugging Face directory")
	f.StringVar(&run.Training, "data", "", "training data: a CSV or Parquet file (columns input, output), or a folder of them")
	f.StringVar(&run.Validation, "validation", "", "validation data (default: hold out --validation-fraction of --data)")
	f.StringVar(&run.OutDir, "out", "", "output directory for the model, metrics and checkpoints")
	// Left unset, these take the per-size defaults of finetune.ResolveHyperParameters.
	f.IntVar(&epochs, "epochs", 0, "epochs over the training data, 1-10 (default 3)")
	f.IntVar(&batchSize, "batch-size", 0, "examples per optimizer step, 1-64 (default 8; 4 with LoRA)")
	f.Float64Var(&learningRate, "learning-rate", 0, "peak learning rate (default 1e-3 below 10M parameters, 5e-5 below 400M, 2e-4 above)")
	f.IntVar(&warmup, "warmup-steps", 0, "linear warmup steps, 0-250 (default 10% of the steps)")
	f.Float64Var(&validationFraction, "validation-fraction", 0.2, "share of --data held out for validation when --validation is not given")
	f.BoolVar(&lora, "lora", false, "train low-rank adapters (rank 16) and merge them on export (default above 400M parameters)")
	f.BoolVar(&full, "full", false, "train every weight (default below 400M parameters)")
	f.BoolVar(&chat, "chat", false, "format prompts with the model's chat template instead of the plain instruction template")
	for _, name := range []string{"model", "data", "out"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

// trainProgress shows a pipeline's progress: a bar (step/total, loss, tokens/s, ETA) on a terminal, one
// line per step otherwise (logs, pipes), and the phases and messages as lines.
type trainProgress struct {
	w       io.Writer
	tty     bool
	bar     *progressbar.ProgressBar
	message string
}

func newTrainProgress(w io.Writer) *trainProgress {
	return &trainProgress{w: w, tty: isTerminal(w)}
}

func (p *trainProgress) SetPhase(_ context.Context, phase string) error {
	p.finish()
	fmt.Fprintln(p.w, phase)
	return nil
}

func (p *trainProgress) Progress(_ context.Context, pr job.Progress) error {
	if pr.Message != "" {
		if pr.Message != p.message {
			p.finish()
			fmt.Fprintln(p.w, pr.Message)
			p.message = pr.Message
		}
		return nil
	}
	if pr.TotalSteps == 0 {
		return nil
	}
	stats := fmt.Sprintf("loss %.4f  %s tok/s  ETA %s", pr.Loss, strconv.FormatFloat(pr.TokensPerSecond, 'f', 0, 64),
		(time.Duration(pr.ETASeconds) * time.Second).String())
	if !p.tty {
		fmt.Fprintf(p.w, "step %d/%d  epoch %.2f  %s\n", pr.Step, pr.TotalSteps, pr.Epoch, stats)
		return nil
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions(pr.TotalSteps,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("training"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionClearOnFinish())
	}
	p.bar.Describe("training " + stats)
	return p.bar.Set(pr.Step)
}

// finish ends the bar's line so that the next output starts on a fresh one.
func (p *trainProgress) finish() {
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
		p.bar = nil
	}
}

// isTerminal reports whether w is a character device (a terminal), where a redrawn bar makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
