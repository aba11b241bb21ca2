package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// generateCommand is `lathe generate`: continue one prompt with a local model, streaming the text.
func generateCommand() *cobra.Command {
	var (
		modelRef, prompt string
		raw, chat        bool
		opt              generate.Options
		cf               clientFlags
	)
	cmd := &cobra.Command{
		Use:   "generate --model PATH|NAME|s3://... [--prompt TEXT]",
		Short: "Generate text with a model (local file or folder, store name, or s3:// artifact), streamed as it comes",
		Long: `Generate text with a model: a GGUF file or Hugging Face directory on disk, a model of the store
("Stories260K"; a catalog model not downloaded yet is pulled first), or an s3:// URI as endpoints take
it (a job's ModelDataUrl, a .gguf object, a model.tar.gz), read through the Lathe server's S3 API
(--endpoint, signed with the data dir's keys or AWS_ACCESS_KEY_ID) or LATHE_S3_ENDPOINT. The prompt (--prompt, or standard input) is an instruction
formatted with the same template fine-tuning uses (### Instruction / ### Response, or the model's chat
template with --chat), so a model from "lathe finetune" answers as it was trained to; --raw continues
the text as it is. The generated text is written to standard output token by token.`,
		Example: `  lathe generate --model tuned/model.gguf --prompt "Summarize: ..."
  lathe generate --model Stories260K --raw --prompt "Once upon a time"
  lathe generate --model s3://quickstart/output/stories-quickstart/model/ --prompt "Write a story about a cat."
  lathe generate --model ../shared/models/stories260K.gguf --raw --prompt "Once upon a time" --temperature 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if raw && chat {
				return errors.New("--raw and --chat exclude each other")
			}
			if !cmd.Flags().Changed("prompt") {
				in, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("read the prompt from standard input: %w", err)
				}
				prompt = strings.TrimRight(string(in), "\r\n")
			}
			if opt.MaxNewTokens < 1 {
				return fmt.Errorf("--max-new-tokens must be at least 1, got %d", opt.MaxNewTokens)
			}
			if !cmd.Flags().Changed("seed") {
				var b [8]byte
				_, _ = rand.Read(b[:])
				opt.Seed = binary.LittleEndian.Uint64(b[:])
			}
			modelPath, entryName, cleanup, err := resolveModel(cmd.Context(), modelRef, &cf, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer cleanup()
			lm, err := finetune.LoadModel(modelPath, finetune.LocalEntry(entryName, chat))
			if err != nil {
				return fmt.Errorf("load model %s: %w", modelRef, err)
			}
			m, tok, stops, err := finetune.Decoding(lm)
			if err != nil {
				return err
			}
			if chat && tok.ChatTemplate == "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "the model has no chat template: using the plain instruction template")
			}
			text := prompt
			if !raw {
				text = lm.Prompt(prompt)
			}
			var ids []int32
			for _, id := range lm.Tokenize(text, true) {
				ids = append(ids, int32(id))
			}
			if room := m.ContextLen() - len(ids); room < opt.MaxNewTokens {
				if room < 1 {
					return fmt.Errorf("the prompt is %d tokens, the model's context only %d", len(ids), m.ContextLen())
				}
				opt.MaxNewTokens = room
			}
			opt.StopTokens = stops
			// Greedy decoding draws nothing: a seed would suggest that another one changes the text.
			if opt.Temperature == 0 || opt.TopK == 1 {
				fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens, greedy decoding\n", len(ids))
				if cmd.Flags().Changed("seed") {
					fmt.Fprintln(cmd.ErrOrStderr(), "--seed has no effect: greedy decoding (--temperature 0 or --top-k 1) draws no random numbers")
				}
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens, seed %d\n", len(ids), opt.Seed)
			}

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			var werr error
			res, err := generate.GenerateWith(ctx, m, [][]int32{ids}, opt, streamDetokenizer(tok), func(t generate.Token) error {
				if _, err := io.WriteString(w, t.Text); err != nil {
					werr = err
					return err
				}
				return nil
			})
			fmt.Fprintln(w)
			if werr != nil {
				return fmt.Errorf("write the output: %w", werr)
			}
			if err != nil && ctx.Err() == nil {
				return err
			}
			if len(res) == 1 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%d tokens, finish: %s\n", len(res[0].Tokens), res[0].Finish)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelRef, "model", "", "a GGUF file or Hugging Face directory, a model of the store, or an s3:// model artifact")
	f.StringVar(&prompt, "prompt", "", "the prompt (default: read standard input)")
	f.IntVar(&opt.MaxNewTokens, "max-new-tokens", 256, "most tokens to generate")
	f.Float64Var(&opt.Temperature, "temperature", 0.8, "sampling temperature; 0 is greedy decoding")
	f.IntVar(&opt.TopK, "top-k", 40, "sample from the K most likely tokens; 0 keeps all")
	f.Float64Var(&opt.TopP, "top-p", 0.95, "sample from the smallest set of tokens whose probability reaches P; 1 keeps all")
	f.Float64Var(&opt.RepetitionPenalty, "repetition-penalty", 1, "penalise tokens already in the prompt or output (> 1); 1 is off")
	f.Uint64Var(&opt.Seed, "seed", 0, "sampling seed: the same seed gives the same text (default: random, printed)")
	f.StringArrayVar(&opt.StopSequences, "stop", nil, "stop before this text (repeatable)")
	f.BoolVar(&raw, "raw", false, "continue the prompt as it is, without the instruction template")
	f.BoolVar(&chat, "chat", false, "format the prompt with the model's chat template")
	_ = cmd.MarkFlagRequired("model")
	f.StringVar(&cf.endpoint, "endpoint", envOr("LATHE_ENDPOINT", "http://127.0.0.1:8080"), "Lathe server URL whose S3 API serves s3:// models (env LATHE_ENDPOINT)")
	f.StringVar(&cf.region, "region", envOr("LATHE_REGION", "us-east-1"), "signing region for s3:// models")
	f.StringVar(&cf.dataDir, "data-dir", defaultDataDir(), "Lathe's data dir: its model store, and its keys for s3:// models (env LATHE_DATA_DIR)")
	return cmd
}

// resolveModel finds what --model names, in the order a user would expect: a file or folder on disk;
// an s3:// URI, downloaded to a temporary folder (cleanup removes it) as an endpoint downloads its
// ModelDataUrl; else a model of the store (a catalog model not downloaded yet is pulled, as endpoints
// and jobs do). name is what picks the prompt template: the file's name, the store name, or the base
// model a job's metrics.json names.
func resolveModel(ctx context.Context, ref string, cf *clientFlags, stderr io.Writer) (path, name string, cleanup func(), err error) {
	cleanup = func() {}
	if _, statErr := os.Stat(ref); statErr == nil {
		return ref, ref, cleanup, nil
	}
	if strings.HasPrefix(ref, "s3://") {
		if os.Getenv("LATHE_S3_ENDPOINT") == "" {
			if err := cf.reachable(); err != nil { // the Lathe server's S3 API it would read from
				return "", "", cleanup, err
			}
		}
		key, secret, err := clientCredentials(cf.dataDir)
		if err != nil {
			return "", "", cleanup, err
		}
		objects, err := blob.New(ctx, blob.OptionsFromEnv(blob.Options{Endpoint: cf.endpoint, Region: cf.region,
			AccessKeyID: key, SecretAccessKey: secret, PathStyle: true}))
		if err != nil {
			return "", "", cleanup, err
		}
		dir, err := os.MkdirTemp("", "lathe-generate-")
		if err != nil {
			return "", "", cleanup, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		fmt.Fprintf(stderr, "downloading %s\n", ref)
		path, err := endpoint.FetchModel(ctx, objects, ref, filepath.Join(dir, "model"))
		if err != nil {
			cleanup()
			return "", "", func() {}, fmt.Errorf("model %s: %w", ref, err)
		}
		name := path
		if base := endpoint.TrainedFrom(ctx, objects, ref); base != "" {
			name = base // a job's artifact is prompted as its base model was during training
		}
		return path, name, cleanup, nil
	}
	notFound := fmt.Errorf("--model %s: no such file or folder, and no model of that name in the store of %s (lathe models list shows them)", ref, cf.dataDir)
	_, inCatalog := catalog.Lookup(ref)
	if _, err := os.Stat(filepath.Join(cf.dataDir, modelstore.DirName)); err != nil && !inCatalog {
		return "", "", cleanup, notFound // and no store to create on the way
	}
	store, err := modelstore.OpenDataDir(cf.dataDir)
	if err != nil {
		return "", "", cleanup, err
	}
	if _, err := store.Get(ref); err != nil && !inCatalog {
		return "", "", cleanup, notFound
	}
	pulled := false
	path, err = finetune.StoreSource{Store: store}.Resolve(ctx, ref, func(done, total int64) {
		pulled = true
		fmt.Fprintf(stderr, "\rpulling %s into the store: %d/%d MB", ref, done>>20, total>>20)
	})
	if pulled {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return "", "", cleanup, fmt.Errorf("model %s: %w", ref, err)
	}
	return path, ref, cleanup, nil
}

// streamDetokenizer decodes generated ids as a continuation of the prompt: unlike Tokenizer.Decode,
// which reads the ids as a whole text, it keeps the SentencePiece word-start space of the first
// token ("Once upon a time" + " there").
func streamDetokenizer(tok *tokenizer.Tokenizer) generate.Detokenize {
	return func(ids []int32) string {
		d := tok.NewStreamDecoder()
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(d.Next(int(id)))
		}
		b.WriteString(d.Flush())
		return b.String()
	}
}
