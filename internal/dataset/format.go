package dataset

import "strings"

// Formatter turns a dataset input into the prompt text the model is trained on and that the
// endpoint feeds it at inference time; the response is appended to it as the model's answer.
// Training and the endpoint must use the same Formatter for a model, or the fine-tune is wasted.
type Formatter interface {
	Prompt(input string) string
}

// PlainTemplate is the prompt template for base (non-instruct) models. It is the Alpaca layout
// without its preamble: short, plain text that any tokenizer handles, and a response marker that
// ends with a newline so the response starts on a fresh line. {input} is replaced by the input.
//
//	### Instruction:
//	{input}
//
//	### Response:
//
// The training sequence is this prompt followed by the output and the end-of-sequence token.
const PlainTemplate = "### Instruction:\n{input}\n\n### Response:\n"

// Plain formats prompts with PlainTemplate.
type Plain struct{}

// Prompt implements Formatter.
func (Plain) Prompt(input string) string {
	return strings.Replace(PlainTemplate, "{input}", input, 1)
}

// FormatterFunc adapts a function to Formatter. The pipeline backs it with the model's chat
// template for instruct models: render a conversation of one user message holding input, with
// the generation prompt (the assistant turn's header) added.
type FormatterFunc func(input string) string

// Prompt implements Formatter.
func (f FormatterFunc) Prompt(input string) string { return f(input) }
