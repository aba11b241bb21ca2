package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/finetune"
	"github.com/lathe-ml/lathe/llm/generate"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// generateCommand is `lathe generate`: continue one prompt with a local model, streaming the text.
func generateCommand() *cobra.Command {
	var (
		modelPath, prompt string
		raw, chat         bool
		opt               generate.Options
	)
	cmd := &cobra.Command{
		Use:   "generate --model PATH [--prompt TEXT]",
		Short: "Generate text with a local model (GGUF file or Hugging Face directory), streamed as it comes",
		Long: `Generate text with a local model. The prompt (--prompt, or standard input) is an instruction
formatted with the same template fine-tuning uses (### Instruction / ### Response, or the model's chat
template with --chat), so a model from "lathe finetune" answers as it was trained to; --raw continues
the text as it is. The generated text is written to standard output token by token.`,
		Example: `  lathe generate --model tuned/model.gguf --prompt "Summarize: ..."
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
			lm, err := finetune.LoadModel(modelPath, finetune.LocalEntry(modelPath, chat))
			if err != nil {
				return fmt.Errorf("load model %s: %w", modelPath, err)
			}
			m, tok, stops, err := finetune.Engine(lm)
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
			if room := m.Config().ContextLen - len(ids); room < opt.MaxNewTokens {
				if room < 1 {
					return fmt.Errorf("the prompt is %d tokens, the model's context only %d", len(ids), m.Config().ContextLen)
				}
				opt.MaxNewTokens = room
			}
			opt.StopTokens = stops
			fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens, seed %d\n", len(ids), opt.Seed)

			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			w := cmd.OutOrStdout()
			var werr error
			res, err := generate.Generate(ctx, m, [][]int32{ids}, opt, streamDetokenizer(tok), func(t generate.Token) error {
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
	f.StringVar(&modelPath, "model", "", "a GGUF file or a Hugging Face directory")
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
	return cmd
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
