// Package finetune is the pipeline that turns a CreateAutoMLJobV2 request into a fine-tuned model: it
// reads and checks the dataset (AnalyzingData), fine-tunes the base model with checkpoints and live
// progress (TrainingModels), evaluates the base and the fine-tuned model on the validation split
// (loss, perplexity, ROUGE), and writes the model and its reports under the job's output path.
package finetune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/job"
)

// Image is the inference image Lathe records in the candidate's InferenceContainers: Lathe's own
// engine serves the model, so there is no container to pull.
const Image = "lathe/engine:llama"

// objectStore is the part of the S3 client (blob.Client) the pipeline uses.
type objectStore interface {
	List(ctx context.Context, uri string) ([]blob.Object, error)
	Get(ctx context.Context, uri string) ([]byte, error)
	PutBytes(ctx context.Context, uri string, data []byte, contentType string) error
	PutFile(ctx context.Context, uri, path string) error
	Download(ctx context.Context, uri, path string) error
	Delete(ctx context.Context, uri string) error
}

// ModelSource finds a base model on local disk, downloading it into the model store when needed.
type ModelSource interface {
	// Resolve returns the local path (a GGUF file or a Hugging Face directory) of the base model.
	Resolve(ctx context.Context, name string, progress func(done, total int64)) (string, error)
}

// Executor runs fine-tuning jobs. It implements job.Executor.
type Executor struct {
	Objects objectStore
	Models  ModelSource
	WorkDir string // scratch space: one folder per job, holding its checkpoint and log between restarts
	Logger  *slog.Logger
	// Load opens a model for the pipeline; nil means the llm engine (LoadModel).
	Load func(path string, m catalog.Model) (LanguageModel, error)
	// Deployer serves the fine-tuned model when the job asks for an endpoint; nil leaves the job
	// without one (Completed / ModelDeploymentError with the reason).
	Deployer Deployer
}

// metricsReport is metrics.json: the base model and the fine-tuned model, side by side.
type metricsReport struct {
	BaseModel       string             `json:"base_model"`
	HyperParameters HyperParameters    `json:"hyperparameters"`
	Base            Metrics            `json:"base"`
	FineTuned       Metrics            `json:"fine_tuned"`
	TrainSeconds    float64            `json:"train_seconds"`
	PhaseSeconds    map[string]float64 `json:"phase_seconds"`
}

// Execute runs one job end to end. A cancelled ctx (StopAutoMLJob, a runtime limit, a shutdown) saves a
// checkpoint and returns ctx's error; running the same spec again resumes from that checkpoint and
// ends exactly as an uninterrupted run would.
func (e *Executor) Execute(ctx context.Context, spec job.Spec, r job.Reporter) (*job.Result, error) {
	res, err := e.execute(ctx, spec, r)
	if err != nil && ctx.Err() == nil && e.WorkDir != "" {
		// The job failed, and a failed job is not run again: its scratch (an empty folder at least)
		// would stay behind, job after job. An interrupted one (Stop, a shutdown) keeps it to resume.
		if rmErr := os.RemoveAll(filepath.Join(e.WorkDir, spec.Name)); rmErr != nil && e.Logger != nil {
			e.Logger.Warn("remove the failed job's work dir", "job", spec.Name, "err", rmErr)
		}
	}
	return res, err
}

func (e *Executor) execute(ctx context.Context, spec job.Spec, r job.Reporter) (*job.Result, error) {
	logger := e.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("job", spec.Name)
	out := OutputPrefix(spec)
	work := filepath.Join(e.WorkDir, spec.Name)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	timer := newPhaseTimer()

	entry := entryFor(spec.BaseModel)

	// Resume state: the training log may exist only in S3 when the work dir was lost.
	logPath := filepath.Join(work, "training-log.jsonl")
	if _, err := os.Stat(logPath); errors.Is(err, os.ErrNotExist) {
		_ = e.Objects.Download(ctx, out+"training-log.jsonl", logPath)
	}
	tlog, err := openTrainLog(logPath)
	if err != nil {
		return nil, err
	}
	defer tlog.Close()

	// 1. AnalyzingData: the base model (its tokenizer formats the data) and the dataset.
	if err := r.SetPhase(ctx, job.PhaseAnalyzingData); err != nil {
		return nil, err
	}
	path, err := e.Models.Resolve(ctx, spec.BaseModel, func(done, total int64) {
		msg := fmt.Sprintf("downloading base model %s: %d MB", spec.BaseModel, done>>20)
		if total > 0 {
			msg = fmt.Sprintf("downloading base model %s: %d/%d MB", spec.BaseModel, done>>20, total>>20)
		}
		_ = r.Progress(ctx, job.Progress{Phase: job.PhaseAnalyzingData, Message: msg})
	})
	if err != nil {
		return nil, err
	}
	load := e.Load
	if load == nil {
		load = LoadModel
	}
	lm, err := load(path, entry)
	if err != nil {
		return nil, fmt.Errorf("load base model %s: %w", spec.BaseModel, err)
	}
	report, err := e.fineTune(ctx, runSetup{spec: spec, entry: entry, lm: lm, work: work, prefix: out,
		tlog: tlog, r: r, logger: logger, timer: timer,
		export: func(lm LanguageModel) error {
			modelDir, adapterDir := filepath.Join(work, "model"), filepath.Join(work, "adapter")
			hasAdapter, err := lm.Export(modelDir, adapterDir)
			if err != nil {
				return err
			}
			if err := e.uploadDir(ctx, modelDir, out+"model/"); err != nil {
				return err
			}
			if hasAdapter {
				return e.uploadDir(ctx, adapterDir, out+"adapter/")
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	tuned := report.FineTuned
	logger.Info("fine-tuning done", "train_loss", tuned.TrainingLoss, "validation_loss", tuned.ValidationLoss,
		"rougeL", tuned.RougeL, "base_rougeL", report.Base.RougeL, "phases", report.PhaseSeconds)

	res := &job.Result{
		CandidateName:   candidateName(spec.Name),
		TrainingJobName: candidateName(spec.Name),
		Image:           Image,
		ModelDataURL:    out + "model/",
		Environment:     map[string]string{"HF_MODEL_ID": "/opt/ml/model", "LATHE_BASE_MODEL": spec.BaseModel},
		ArtifactsPrefix: out,
		Metrics:         candidateMetrics(tuned),
	}
	if spec.EndpointName != "" {
		// Only the run that holds the job deploys it: a run that was taken over must not create a
		// second endpoint beside the one its successor creates.
		if err := job.CheckLease(ctx, r); err != nil {
			return nil, err
		}
		if err := e.deploy(ctx, spec, r, res); err != nil {
			return nil, err
		}
	}
	// Everything the job made is in S3 now; its scratch (a checkpoint and a copy of the model, several
	// times the model's size) would only fill the disk, job after job. The checkpoint in S3 (weights
	// and two optimizer moments: 12 bytes a parameter, gigabytes for a 360M model) served restarts
	// only: a completed job is not run again, and on a real S3 it would be paid for month after month.
	if err := os.RemoveAll(work); err != nil {
		logger.Warn("remove the job's work dir", "dir", work, "err", err)
	}
	// A run that was taken over leaves the checkpoint to the run that resumes from it.
	if err := job.CheckLease(ctx, r); err != nil {
		return nil, err
	}
	if err := e.Objects.Delete(ctx, out+"checkpoints/checkpoint.bin"); err != nil {
		logger.Warn("remove the job's checkpoint", "uri", out+"checkpoints/checkpoint.bin", "err", err)
	}
	return res, nil
}

// runSetup is one run of the pipeline once its base model is loaded: a job (Execute) or a local run
// (Local), which differ only in where things are kept.
type runSetup struct {
	spec   job.Spec
	entry  catalog.Model
	lm     LanguageModel
	method string // "" keeps the method the model size picks; "full" or "lora" override it
	work   string // local scratch: the checkpoint and the base model's metrics, kept across restarts
	prefix string // where reports go: an s3:// prefix, or a local folder with its trailing separator
	tlog   *trainLog
	r      job.Reporter
	logger *slog.Logger
	timer  *phaseTimer
	// export writes the fine-tuned model where this kind of run keeps it.
	export func(lm LanguageModel) error
}

// fineTune is the pipeline both kinds of run share: analyze the data (data-report.json), evaluate the
// base model, train with checkpoints, evaluate the result, export the model, and write
// samples.jsonl, metrics.json and training-log.jsonl under the prefix.
func (e *Executor) fineTune(ctx context.Context, s runSetup) (*metricsReport, error) {
	data, err := e.analyze(ctx, s.spec, s.entry, s.lm)
	if err != nil {
		return nil, err
	}
	if err := e.putJSON(ctx, s.prefix+"data-report.json", data.report); err != nil {
		return nil, err
	}
	s.timer.end("analyzing_data")

	if err := s.r.SetPhase(ctx, job.PhaseTrainingModels); err != nil {
		return nil, err
	}
	hp, err := ResolveHyperParameters(s.lm.Params(), s.spec.HyperParameters)
	if err != nil {
		return nil, err
	}
	if hp, err = hp.withMethod(s.method); err != nil {
		return nil, err
	}
	report := metricsReport{BaseModel: s.spec.BaseModel, HyperParameters: hp, PhaseSeconds: s.timer.seconds}
	basePath, baseGenPath := filepath.Join(s.work, "metrics-base.json"), filepath.Join(s.work, "generations-base.json")
	var baseGenerations []string // the base model's answers, beside the fine-tuned ones in samples.jsonl
	if !readJSON(basePath, &report.Base) {
		_ = s.r.Progress(ctx, job.Progress{Phase: job.PhaseTrainingModels, Message: "evaluating the base model"})
		var samples []Sample
		if report.Base, samples, err = evaluate(ctx, s.lm, data.val); err != nil {
			return nil, fmt.Errorf("evaluate base model: %w", err)
		}
		for _, smp := range samples {
			baseGenerations = append(baseGenerations, smp.Generation)
		}
		// The generations first: metrics-base.json is what says the base evaluation is done.
		if err := writeJSON(baseGenPath, baseGenerations); err != nil {
			return nil, err
		}
		if err := writeJSON(basePath, report.Base); err != nil {
			return nil, err
		}
	} else {
		readJSON(baseGenPath, &baseGenerations) // absent in a work dir from before they were kept
	}
	s.timer.end("evaluate_base")

	trainStart := time.Now()
	trainLoss, err := e.train(ctx, s.spec, s.lm, hp, data.train, s.work, s.prefix, s.tlog, s.r, s.logger)
	if err != nil {
		return nil, err
	}
	report.TrainSeconds = time.Since(trainStart).Seconds()
	s.timer.end("training")

	_ = s.r.Progress(ctx, job.Progress{Phase: job.PhaseTrainingModels, Message: "evaluating the fine-tuned model"})
	tuned, samples, err := evaluate(ctx, s.lm, data.val)
	if err != nil {
		return nil, fmt.Errorf("evaluate fine-tuned model: %w", err)
	}
	tuned.TrainingLoss = trainLoss
	report.FineTuned = tuned
	s.tlog.Event("eval", map[string]any{"base": report.Base, "fine_tuned": tuned})
	s.timer.end("evaluate_fine_tuned")

	// The artifacts are written only by the run that holds the job (a worker that stalled past its
	// lease and was replaced stops here), each write right after the lease was renewed.
	if err := job.CheckLease(ctx, s.r); err != nil {
		return nil, err
	}
	if err := s.export(s.lm); err != nil {
		return nil, fmt.Errorf("export fine-tuned model: %w", err)
	}
	for i := range samples {
		if i < len(baseGenerations) {
			samples[i].BaseGeneration = baseGenerations[i]
		}
	}
	if err := putJSONLines(ctx, e, s.prefix+"samples.jsonl", samples); err != nil {
		return nil, err
	}
	s.timer.end("writing_artifacts")
	if err := job.CheckLease(ctx, s.r); err != nil {
		return nil, err
	}
	if err := e.putJSON(ctx, s.prefix+"metrics.json", report); err != nil {
		return nil, err
	}
	s.tlog.Event("done", map[string]any{"phase_seconds": report.PhaseSeconds})
	if err := e.Objects.PutFile(ctx, s.prefix+"training-log.jsonl", s.tlog.path); err != nil {
		return nil, err
	}
	return &report, nil
}

// phaseTimer adds up the seconds each phase of a run took (metrics.json's phase_seconds).
type phaseTimer struct {
	seconds map[string]float64
	start   time.Time
}

func newPhaseTimer() *phaseTimer {
	return &phaseTimer{seconds: map[string]float64{}, start: time.Now()}
}

// end charges the time since the last end to the named phase.
func (t *phaseTimer) end(name string) {
	t.seconds[name] += time.Since(t.start).Seconds()
	t.start = time.Now()
}

// train runs the optimizer over the training split for the resolved number of epochs, resuming from
// the job's checkpoint when there is one, and returns the mean training loss over the last epoch.
func (e *Executor) train(ctx context.Context, spec job.Spec, lm LanguageModel, hp HyperParameters, train []Sequence,
	work, out string, tlog *trainLog, r job.Reporter, logger *slog.Logger) (float64, error) {
	stepsPerEpoch := (len(train) + hp.BatchSize - 1) / hp.BatchSize
	total := hp.Epochs * stepsPerEpoch
	ckptPath := filepath.Join(work, "checkpoint.bin")
	ckptURI := out + "checkpoints/checkpoint.bin"
	if _, err := os.Stat(ckptPath); errors.Is(err, os.ErrNotExist) {
		_ = e.Objects.Download(ctx, ckptURI, ckptPath) // absent when the job never checkpointed
	}
	var (
		tr    Trainer
		state trainState
	)
	if _, err := os.Stat(ckptPath); err == nil {
		t, user, err := lm.ResumeTrainer(ckptPath)
		switch {
		case err != nil:
			logger.Warn("checkpoint unreadable; training from the start", "uri", ckptURI, "err", err)
		case json.Unmarshal(user, &state) != nil || state.Step != t.StepCount():
			logger.Warn("checkpoint state does not match; training from the start", "uri", ckptURI)
		default:
			tr = t
		}
	}
	if tr != nil {
		if err := tlog.TrimAfter(state.Step); err != nil {
			return 0, err
		}
		tlog.Event("resumed", map[string]any{"step": state.Step, "total_steps": total})
		logger.Info("resumed from checkpoint", "step", state.Step, "total_steps", total)
	} else {
		state = trainState{}
		if _, fallback := hp.mixedBF16(); fallback {
			logger.Warn("precision bf16 asked, but this CPU has no AVX512_BF16: training in fp32, which is faster and exact here",
				"env", PrecisionEnv)
		}
		var err error
		if tr, err = lm.NewTrainer(hp, total, hp.warmup(total)); err != nil {
			return 0, fmt.Errorf("set up training: %w", err)
		}
		tlog.Event("start", map[string]any{"total_steps": total, "steps_per_epoch": stepsPerEpoch, "examples": len(train), "hyperparameters": hp})
	}
	save := func(ctx context.Context) error {
		user, err := json.Marshal(state)
		if err != nil {
			return err
		}
		if err := tr.Save(ckptPath, user); err != nil {
			return fmt.Errorf("save checkpoint: %w", err)
		}
		// A run that lost the job to another worker must not upload: the lease is checked (and
		// renewed) right before the upload, and the checkpoint is recorded with the job under it.
		if err := job.CheckLease(ctx, r); err != nil {
			return err
		}
		// The log goes first: a crash between the two uploads leaves a log ahead of the checkpoint in
		// S3, which the resuming run trims back to it (a log behind it would have lost steps).
		tlog.Event("checkpoint", map[string]any{"step": state.Step, "uri": ckptURI})
		if err := e.Objects.PutFile(ctx, out+"training-log.jsonl", tlog.path); err != nil {
			return err
		}
		if err := e.Objects.PutFile(ctx, ckptURI, ckptPath); err != nil {
			return err
		}
		return job.RecordCheckpoint(ctx, r, job.Checkpoint{URI: ckptURI, Step: state.Step})
	}
	// A checkpoint every 5% of the steps, but never so often that saving it (the weights and two AdamW
	// moments: 12 bytes a parameter, gigabytes for a 360M model) takes more than a tenth of the time:
	// the next periodic save waits until 9x the last save's duration has passed.
	ckptEvery := max(1, total/20)
	var lastSave time.Time
	var lastSaveTook time.Duration
	batch := make([]Sequence, 0, hp.BatchSize)
	started, tokens := time.Now(), 0
	startStep := state.Step
	orderEpoch, order := -1, []int(nil)
	for state.Step < total {
		if ctx.Err() != nil {
			cause := context.Cause(ctx)
			if err := save(context.WithoutCancel(ctx)); errors.Is(err, job.ErrLeaseLost) {
				logger.Warn("job taken over by another worker: no checkpoint saved, giving it up", "step", state.Step, "err", err)
				return 0, err
			} else if err != nil {
				logger.Error("checkpoint on stop failed", "err", err)
			}
			tlog.Event("stopped", map[string]any{"step": state.Step, "reason": fmt.Sprint(cause)})
			_ = e.Objects.PutFile(context.WithoutCancel(ctx), out+"training-log.jsonl", tlog.path)
			return 0, ctx.Err()
		}
		epoch, inEpoch := state.Step/stepsPerEpoch, state.Step%stepsPerEpoch
		if epoch != orderEpoch {
			orderEpoch, order = epoch, epochOrder(hp.Seed, epoch, len(train))
		}
		batch = batch[:0]
		for i := inEpoch * hp.BatchSize; i < min((inEpoch+1)*hp.BatchSize, len(train)); i++ {
			batch = append(batch, train[order[i]])
			tokens += len(train[order[i]].Tokens)
		}
		loss, err := tr.Step(ctx, batch)
		if err != nil && ctx.Err() != nil {
			continue // stopped mid-step: the top of the loop saves the last whole step
		}
		if err != nil {
			return 0, fmt.Errorf("training step %d: %w", state.Step+1, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return 0, fmt.Errorf("training diverged at step %d (loss %v): lower learningRate", state.Step+1, loss)
		}
		state.Step++
		if epoch == hp.Epochs-1 {
			state.LastEpochLossSum += loss
			state.LastEpochSteps++
		}
		elapsed := time.Since(started).Seconds()
		tps := float64(tokens) / max(elapsed, 1e-9)
		eta := elapsed / float64(state.Step-startStep) * float64(total-state.Step)
		_ = r.Progress(ctx, job.Progress{Phase: job.PhaseTrainingModels, Step: state.Step, TotalSteps: total,
			Epoch: float64(state.Step) / float64(stepsPerEpoch), Loss: loss, TokensPerSecond: tps, ETASeconds: eta})
		tlog.Event("step", map[string]any{"step": state.Step, "epoch": float64(state.Step) / float64(stepsPerEpoch),
			"loss": loss, "lr": tr.LearningRate(), "tokens_per_second": tps})
		// A stop that arrives before or during this save is handled at the top of the loop, which saves
		// without the cancelled ctx: an upload cut short by the stop must not lose the step just done.
		if state.Step%ckptEvery == 0 && state.Step < total && ctx.Err() == nil && time.Since(lastSave) >= 9*lastSaveTook {
			t0 := time.Now()
			if err := save(ctx); errors.Is(err, job.ErrLeaseLost) {
				logger.Warn("job taken over by another worker: giving it up", "step", state.Step, "err", err)
				return 0, err
			} else if err != nil && ctx.Err() == nil {
				return 0, err
			}
			lastSave, lastSaveTook = time.Now(), time.Since(t0)
		}
	}
	if state.LastEpochSteps == 0 {
		return 0, nil
	}
	return state.LastEpochLossSum / float64(state.LastEpochSteps), nil
}

// trainState is the pipeline's part of a checkpoint (the engine saves weights and optimizer state).
// The data order is a function of (seed, epoch), so the step alone says where the data cursor is.
type trainState struct {
	Step             int     `json:"step"`
	LastEpochLossSum float64 `json:"last_epoch_loss_sum"`
	LastEpochSteps   int     `json:"last_epoch_steps"`
}

// epochOrder is the shuffled order of the training examples in one epoch: fixed for (seed, epoch).
func epochOrder(seed int64, epoch, n int) []int {
	return rand.New(rand.NewPCG(uint64(seed), uint64(epoch))).Perm(n)
}

// entryFor is the catalog entry of a base model, or, for a model registered only in the model store,
// the limits Lathe gives a small llama model.
func entryFor(name string) catalog.Model {
	if entry, ok := catalog.Lookup(name); ok {
		return entry
	}
	return catalog.Model{Name: name, Architecture: "llama", MaxRows: 10000, ContextLen: 2048}
}

// OutputPrefix is where a job's artifacts go: S3OutputPath/<job name>/.
func OutputPrefix(spec job.Spec) string {
	return strings.TrimSuffix(spec.OutputPath, "/") + "/" + spec.Name + "/"
}

func candidateName(jobName string) string { return jobName + "-finetune-1" }

func (e *Executor) putJSON(ctx context.Context, uri string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", uri, err)
	}
	return e.Objects.PutBytes(ctx, uri, data, "application/json")
}

func putJSONLines[T any](ctx context.Context, e *Executor, uri string, rows []T) error {
	var b strings.Builder
	for _, row := range rows {
		line, err := json.Marshal(row)
		if err != nil {
			return fmt.Errorf("encode %s: %w", uri, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return e.Objects.PutBytes(ctx, uri, []byte(b.String()), "application/x-ndjson")
}

func (e *Executor) uploadDir(ctx context.Context, dir, prefix string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	for _, ent := range entries {
		if ent.IsDir() {
			continue
		}
		if err := e.Objects.PutFile(ctx, prefix+ent.Name(), filepath.Join(dir, ent.Name())); err != nil {
			return err
		}
	}
	return nil
}

func readJSON(path string, v any) bool {
	data, err := os.ReadFile(path)
	return err == nil && json.Unmarshal(data, v) == nil
}

// writeJSON writes v to path atomically (temp file + rename), so a crash leaves the old file or the new.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
