package finetune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// Local is a fine-tuning run on this machine without the server (`lathe finetune`). It runs the
// job's own pipeline over local files: the same dataset checks, split and prompt format, the same
// training loop with its checkpoints and data order, the same evaluation of the base and the
// fine-tuned model; only the storage is a local folder instead of S3.
//
// Everything goes into OutDir:
//
//	config.json, model.safetensors, tokenizer files, model.gguf   the fine-tuned model (Export)
//	metrics.json, samples.jsonl, data-report.json, training-log.jsonl
//	checkpoints/   while a run is unfinished: the checkpoint a rerun resumes from (removed at the end)
type Local struct {
	ModelPath string        // a GGUF file or a Hugging Face directory
	Entry     catalog.Model // limits and prompt style; LocalEntry gives a local model's defaults
	// Training and Validation are CSV or Parquet files, or folders of them (read like an S3 prefix).
	// Without Validation, ValidationFraction of the training rows are held out.
	Training, Validation string
	ValidationFraction   float64
	// HyperParameters are a job's TextGenerationHyperParameters (epochCount, batchSize, learningRate,
	// learningRateWarmupSteps), applied over the per-size defaults.
	HyperParameters map[string]string
	// Method overrides the training method the model size picks: "full" or "lora"; "" keeps it.
	Method   string
	OutDir   string
	Reporter job.Reporter // phases and training progress; nil reports nothing
	Logger   *slog.Logger
	// Load opens the model; nil means the llm engine (LoadModel).
	Load func(path string, m catalog.Model) (LanguageModel, error)
}

// LocalReport is what a finished local run measured (also written to OutDir/metrics.json).
type LocalReport struct {
	HyperParameters HyperParameters
	Base, FineTuned Metrics
	TrainSeconds    float64
}

// LocalEntry is the catalog entry a local model file runs under: the catalog's own entry when the
// file's name is a catalog model's name, otherwise the limits Lathe gives a model registered only in
// the store (as a job does). instruct says to format prompts with the model's chat template.
func LocalEntry(path string, instruct bool) catalog.Model {
	entry := entryFor(strings.TrimSuffix(filepath.Base(filepath.Clean(path)), ".gguf"))
	entry.Instruct = instruct
	return entry
}

// Run fine-tunes the model. A cancelled ctx (Ctrl-C) saves a checkpoint under OutDir/checkpoints and
// returns ctx's error; running the same Local again resumes there and ends exactly as an
// uninterrupted run would.
func (l Local) Run(ctx context.Context) (*LocalReport, error) {
	logger := l.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := l.Reporter
	if r == nil {
		r = silentReporter{}
	}
	out, err := filepath.Abs(l.OutDir)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(out, "checkpoints")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("create output dir: %w", err)
	}
	prefix := out + string(filepath.Separator)
	e := &Executor{Objects: localStore{}, WorkDir: work, Logger: logger, Load: l.Load}
	if e.Load == nil {
		e.Load = LoadModel
	}

	timer := newPhaseTimer()

	tlog, err := openTrainLog(filepath.Join(work, "training-log.jsonl"))
	if err != nil {
		return nil, err
	}
	defer tlog.Close()

	if err := r.SetPhase(ctx, job.PhaseAnalyzingData); err != nil {
		return nil, err
	}
	lm, err := e.Load(l.ModelPath, l.Entry)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", l.ModelPath, err)
	}
	spec := job.Spec{Name: l.Entry.Name, BaseModel: l.Entry.Name, ValidationFraction: l.ValidationFraction, HyperParameters: l.HyperParameters,
		Channels: []job.Channel{{Type: "training", S3URI: l.Training}}}
	if l.Validation != "" {
		spec.Channels = append(spec.Channels, job.Channel{Type: "validation", S3URI: l.Validation})
		spec.ValidationFraction = 0
	}
	report, err := e.fineTune(ctx, runSetup{spec: spec, entry: l.Entry, lm: lm, method: l.Method, work: work,
		prefix: prefix, tlog: tlog, r: r, logger: logger, timer: timer,
		export: func(lm LanguageModel) error {
			_, err := lm.Export(out, filepath.Join(out, "adapter"))
			return err
		}})
	if err != nil {
		return nil, err
	}
	// The finished run's log and reports stay; its checkpoint is spent: a rerun trains afresh.
	if err := os.RemoveAll(work); err != nil {
		return nil, fmt.Errorf("remove the spent checkpoint: %w", err)
	}
	return &LocalReport{HyperParameters: report.HyperParameters, Base: report.Base, FineTuned: report.FineTuned,
		TrainSeconds: report.TrainSeconds}, nil
}

// Engine returns the llm model, tokenizer and stop tokens behind a LanguageModel that LoadModel
// returned, for callers that drive the engine directly (streaming generation).
func Engine(lm LanguageModel) (*model.Model, *tokenizer.Tokenizer, []int32, error) {
	e, ok := lm.(*engineModel)
	if !ok {
		return nil, nil, nil, fmt.Errorf("the model is not backed by Lathe's engine (%T)", lm)
	}
	return e.m, e.tok, e.stops, nil
}

// Decoding returns the model behind a LanguageModel that LoadModel returned as llm/generate decodes it
// (a decoder-only model, or T5's encoder-decoder), with its tokenizer and stop tokens: for callers
// that stream generation themselves.
func Decoding(lm LanguageModel) (generate.Model, *tokenizer.Tokenizer, []int32, error) {
	switch e := lm.(type) {
	case *engineModel:
		return generate.DecoderOnly(e.m), e.tok, e.stops, nil
	case *seq2seqModel:
		return e.m.Decoding(), e.tok, []int32{e.m.Config().EOS}, nil
	}
	return nil, nil, nil, fmt.Errorf("the model is not backed by Lathe's engine (%T)", lm)
}

type silentReporter struct{}

func (silentReporter) SetPhase(context.Context, string) error       { return nil }
func (silentReporter) Progress(context.Context, job.Progress) error { return nil }

// localStore is the pipeline's objectStore over the local file system: a URI is a path, and a
// "prefix" is a file or a folder (listed recursively, hidden files skipped).
type localStore struct{}

func (localStore) List(_ context.Context, uri string) ([]blob.Object, error) {
	fi, err := os.Stat(uri)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []blob.Object{{URI: uri, Key: filepath.Base(uri), Size: fi.Size(), LastModified: fi.ModTime()}}, nil
	}
	var objs []blob.Object
	err = filepath.WalkDir(uri, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") && path != uri {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(uri, path)
		objs = append(objs, blob.Object{URI: path, Key: rel, Size: info.Size(), LastModified: info.ModTime()})
		return nil
	})
	return objs, err
}

func (localStore) Get(_ context.Context, uri string) ([]byte, error) { return os.ReadFile(uri) }

func (localStore) PutBytes(_ context.Context, uri string, data []byte, _ string) error {
	if err := os.MkdirAll(filepath.Dir(uri), 0o755); err != nil {
		return err
	}
	tmp := uri + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", uri, err)
	}
	return os.Rename(tmp, uri)
}

func (localStore) PutFile(_ context.Context, uri, path string) error { return placeFile(path, uri) }

func (localStore) Delete(_ context.Context, uri string) error {
	if err := os.Remove(uri); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (localStore) Download(_ context.Context, uri, path string) error {
	if _, err := os.Stat(uri); errors.Is(err, os.ErrNotExist) {
		return blob.ErrNotFound
	}
	return placeFile(uri, path)
}

// placeFile makes dst hold src's bytes: nothing to do when they are one file, a hard link when the
// file system allows it (checkpoints can be gigabytes), a copy otherwise.
func placeFile(src, dst string) error {
	si, err := os.Stat(src)
	if err != nil {
		return err
	}
	if di, err := os.Stat(dst); err == nil && os.SameFile(si, di) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		if err := copyFile(src, tmp); err != nil {
			return fmt.Errorf("copy %s to %s: %w", src, dst, err)
		}
	}
	return os.Rename(tmp, dst)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
