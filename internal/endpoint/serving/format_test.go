package serving_test

import (
	"errors"
	"testing"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// An instruct model without a chat template (Falcon-7B-Instruct ships none) is fine-tuned on the plain
// template, so the instruct format serves it with the plain one; asking for chat explicitly is still
// refused.
func TestInstructFormatWithoutChatTemplate(t *testing.T) {
	if f := serving.FormatFor("Falcon7BInstruct"); f != serving.FormatInstruct {
		t.Fatalf("FormatFor(Falcon7BInstruct) = %s, want instruct", f)
	}
	e := load(t, serving.Options{Format: serving.FormatInstruct})
	if e.Format() != serving.FormatPlain {
		t.Fatalf("instruct format on a model without a chat template serves as %s, want plain", e.Format())
	}
	if _, err := serving.Load(storiesPath, serving.Options{Format: serving.FormatChat}); !errors.Is(err, tokenizer.ErrNoChatTemplate) {
		t.Fatalf("chat format without a template: %v, want ErrNoChatTemplate", err)
	}
}
