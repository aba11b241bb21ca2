package tokenizer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ardanlabs/jinja"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string `json:"role"` // "system", "user" or "assistant"
	Content string `json:"content"`
}

// ChatTemplate is a compiled Jinja chat template (tokenizer_config.json's chat_template or GGUF's
// tokenizer.chat_template). It renders as transformers' apply_chat_template does (Jinja with
// trim_blocks and lstrip_blocks, raise_exception available); a template using Jinja features the
// engine lacks fails with an error rather than rendering something else.
type ChatTemplate struct {
	tmpl *jinja.Template
}

// ErrNoChatTemplate is returned by ApplyChatTemplate when the model ships no template.
var ErrNoChatTemplate = errors.New("the model has no chat template")

// CompileChatTemplate parses a chat template.
func CompileChatTemplate(src string) (*ChatTemplate, error) {
	if src == "" {
		return nil, ErrNoChatTemplate
	}
	t, err := jinja.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("chat template cannot be compiled (unsupported Jinja?): %w", err)
	}
	return &ChatTemplate{tmpl: t}, nil
}

// Render formats messages. vars become template variables besides messages and
// add_generation_prompt: bos_token and eos_token at least, as transformers passes them.
func (c *ChatTemplate) Render(messages []Message, addGenerationPrompt bool, vars map[string]any) (string, error) {
	msgs := make([]any, len(messages))
	for i, m := range messages {
		msgs[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	data := make(map[string]any, len(vars)+2)
	for k, v := range vars {
		data[k] = v
	}
	data["messages"] = msgs
	data["add_generation_prompt"] = addGenerationPrompt
	out, err := c.tmpl.Render(data)
	if err != nil {
		return "", fmt.Errorf("render chat template: %w", err)
	}
	return out, nil
}

// ApplyChatTemplate renders messages with the model's own template, passing bos_token and
// eos_token as the tokenizer's BOS/EOS strings.
func (t *Tokenizer) ApplyChatTemplate(messages []Message, addGenerationPrompt bool) (string, error) {
	c, err := CompileChatTemplate(t.ChatTemplate)
	if err != nil {
		return "", err
	}
	return c.Render(messages, addGenerationPrompt, map[string]any{
		"bos_token": t.TokenText(t.BOS),
		"eos_token": t.TokenText(t.EOS),
	})
}

// ChatPrompt renders messages with the chat template, ready for the assistant's turn, as text for
// Encode(text, true): a template that writes the BOS token itself (Llama 2's does) would otherwise
// get it twice. Training and serving both format prompts through it, so they cannot drift apart.
func (t *Tokenizer) ChatPrompt(messages []Message) (string, error) {
	text, err := t.ApplyChatTemplate(messages, true)
	if err != nil {
		return "", err
	}
	if t.BOS >= 0 {
		text = strings.TrimPrefix(text, t.TokenText(t.BOS))
	}
	return text, nil
}
