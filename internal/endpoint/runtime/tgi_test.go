package runtime

import (
	"encoding/json"
	"testing"

	"github.com/lathe-ml/lathe/llm/generate"
)

// texts is a tokenTexter over a fixed vocabulary.
type texts map[int32]string

func (v texts) TokenTexts(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = v[id]
	}
	return out
}

func (v texts) SpecialText(id int32) string { return v[id] }

// The details of an answer that ended on the end-of-sequence token list it last, special, with its
// log-probability, and count it; prefill is an empty list; without details nothing is added.
func TestDetailsListTokensAndTheEndOfSequence(t *testing.T) {
	c, err := parseTGI([]byte(`{"inputs":"hi","parameters":{"details":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.opt.Logprobs {
		t.Fatal("details did not ask the generator for log-probabilities")
	}
	res := generate.Result{Tokens: []int32{7, 9}, Logprobs: []float32{-0.25, -1.5}, Text: " a b", Finish: generate.FinishEOS,
		StopToken: 2, StopLogprob: -0.125}
	out, _ := json.Marshal(c.output("hi", res, texts{7: " a", 9: " b", 2: "</s>"}))
	want := `{"generated_text":" a b","details":{"finish_reason":"eos_token","generated_tokens":3,"seed":null,"prefill":[],` +
		`"tokens":[{"id":7,"text":" a","logprob":-0.25,"special":false},{"id":9,"text":" b","logprob":-1.5,"special":false},` +
		`{"id":2,"text":"\u003c/s\u003e","logprob":-0.125,"special":true}]}}`
	if string(out) != want {
		t.Errorf("output\n %s\nwant\n %s", out, want)
	}
	plain, _ := parseTGI([]byte(`{"inputs":"hi"}`))
	if plain.opt.Logprobs {
		t.Error("log-probabilities asked for without details")
	}
	if out, _ := json.Marshal(plain.output("hi", res, texts{})); string(out) != `{"generated_text":" a b"}` {
		t.Errorf("output without details = %s", out)
	}
}
