package tokenizer

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Templates as published in the models' tokenizer_config.json (JSON-decoded): SmolLM2-Instruct's
// ChatML template, Llama-2-chat's and Llama-3-Instruct's (whose "+ x | trim" tests filter
// precedence). The Zephyr-style template (TinyLlama-Chat) leans on trim_blocks/lstrip_blocks.
// Expected strings were rendered by Python Jinja2 3.1 in the environment transformers'
// apply_chat_template uses (ImmutableSandboxedEnvironment with trim_blocks=True,
// lstrip_blocks=True, raise_exception), with bos_token "<s>" and eos_token "</s>" (Llama 3:
// "<|begin_of_text|>" and "<|eot_id|>").
const (
	smolLM2Template = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
	llama2Template  = `{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}`
	llama3Template  = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
	zephyrTemplate  = "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

func TestChatTemplatesRenderLikeTransformers(t *testing.T) {
	userOnly := []Message{{"user", "What is 2+2?"}}
	multi := []Message{{"system", "You are terse."}, {"user", "Hi there!"}, {"assistant", "  Hello. "}, {"user", "Name a color.\nOne word."}}
	tests := []struct {
		name      string
		template  string
		messages  []Message
		genPrompt bool
		want      string
	}{
		{"SmolLM2 default system", smolLM2Template, userOnly, false,
			"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n"},
		{"SmolLM2 generation prompt", smolLM2Template, userOnly, true,
			"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"},
		{"SmolLM2 multi-turn", smolLM2Template, multi, true,
			"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n  Hello. <|im_end|>\n<|im_start|>user\nName a color.\nOne word.<|im_end|>\n<|im_start|>assistant\n"},
		{"Llama 2 single turn", llama2Template, userOnly, true, "<s>[INST] What is 2+2? [/INST]"},
		{"Llama 2 system and history", llama2Template, multi, false,
			"<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there! [/INST] Hello. </s><s>[INST] Name a color.\nOne word. [/INST]"},
		// The filter binds tighter than +: only the content is trimmed.
		{"Llama 3", llama3Template, multi, true,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nName a color.\nOne word.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"Zephyr", zephyrTemplate, userOnly, false, "<|user|>\nWhat is 2+2?</s>\n"},
		{"Zephyr multi-turn with prompt", zephyrTemplate, multi, true,
			"<|system|>\nYou are terse.</s>\n<|user|>\nHi there!</s>\n<|assistant|>\n  Hello. </s>\n<|user|>\nName a color.\nOne word.</s>\n<|assistant|>\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := CompileChatTemplate(tc.template)
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]any{"bos_token": "<s>", "eos_token": "</s>"}
			if tc.template == llama3Template {
				vars = map[string]any{"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
			}
			got, err := c.Render(tc.messages, tc.genPrompt, vars)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestChatTemplateErrors(t *testing.T) {
	c, err := CompileChatTemplate(llama2Template)
	if err != nil {
		t.Fatal(err)
	}
	// The template itself refuses two user turns in a row.
	_, err = c.Render([]Message{{"user", "a"}, {"user", "b"}}, false, map[string]any{"bos_token": "<s>", "eos_token": "</s>"})
	if err == nil || !strings.Contains(err.Error(), "Conversation roles must alternate") {
		t.Errorf("error %v", err)
	}
	if _, err := CompileChatTemplate("{% for m in messages %}{{ m.content }"); err == nil {
		t.Error("a broken template compiled")
	}
	if _, err := CompileChatTemplate(""); !errors.Is(err, ErrNoChatTemplate) {
		t.Errorf("empty template: %v", err)
	}
	if _, err := loadStories(t).ApplyChatTemplate([]Message{{"user", "hi"}}, true); !errors.Is(err, ErrNoChatTemplate) {
		t.Errorf("stories260K has no template, got %v", err)
	}
}

// The tokenizer's own template gets bos_token/eos_token from its vocabulary, and the rendered
// ChatML markers encode as single special tokens.
func TestApplyChatTemplateWithTokenizer(t *testing.T) {
	tok := byteLevelFixture(t, false)
	s, err := tok.ApplyChatTemplate([]Message{{"user", "hello"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if s != "<|im_start|>user\nhello<|im_end|>\n" {
		t.Errorf("rendered %q", s)
	}
	ids := tok.Encode(s, false)
	if ids[0] != 301 || ids[len(ids)-2] != 302 {
		t.Errorf("ids %v", ids)
	}
}

// Qwen2.5-Instruct's template (tokenizer_config.json, JSON-decoded, in testdata) branches on
// tools, message.tool_calls and loop state; expected strings from Python Jinja2 as above.
func TestQwen25ChatTemplate(t *testing.T) {
	src, err := os.ReadFile("testdata/qwen2.5-instruct.jinja")
	if err != nil {
		t.Fatal(err)
	}
	c, err := CompileChatTemplate(string(src))
	if err != nil {
		t.Fatal(err)
	}
	multi := []Message{{"system", "You are terse."}, {"user", "Hi there!"}, {"assistant", "  Hello. "}, {"user", "Name a color.\nOne word."}}
	tests := []struct {
		name      string
		messages  []Message
		genPrompt bool
		want      string
	}{
		{"system and history", multi, true,
			"<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n  Hello. <|im_end|>\n<|im_start|>user\nName a color.\nOne word.<|im_end|>\n<|im_start|>assistant\n"},
		{"default system", multi[1:2], false,
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi there!<|im_end|>\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Render(tc.messages, tc.genPrompt, map[string]any{"eos_token": "<|im_end|>"})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// A template that writes bos_token itself (Llama 2's) must not leave the prompt with two BOS tokens
// once Encode adds its own.
func TestChatPromptLeavesBOSToEncode(t *testing.T) {
	tok, err := Load(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	tok.ChatTemplate = llama2Template
	text, err := tok.ChatPrompt([]Message{{"user", "Hi there!"}})
	if err != nil {
		t.Fatal(err)
	}
	if text != "[INST] Hi there! [/INST]" {
		t.Errorf("ChatPrompt = %q", text)
	}
	ids := tok.Encode(text, true)
	if ids[0] != tok.BOS || ids[1] == tok.BOS {
		t.Errorf("encoded prompt starts %v; want exactly one BOS (%d)", ids[:2], tok.BOS)
	}
}
