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
	out, _ := json.Marshal(c.output("hi", []generation{{res, 5}}, texts{7: " a", 9: " b", 2: "</s>"}))
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
	if out, _ := json.Marshal(plain.output("hi", []generation{{res, 5}}, texts{})); string(out) != `{"generated_text":" a b"}` {
		t.Errorf("output without details = %s", out)
	}
}

// best_of answers with the sequence of the best mean token log-probability (the end-of-sequence
// token counted), lists the other with its own seed, and refuses what TGI refuses.
func TestBestOf(t *testing.T) {
	c, err := parseTGI([]byte(`{"inputs":"hi","parameters":{"best_of":2,"do_sample":true,"details":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.bestOf != 2 || !c.opt.Logprobs {
		t.Fatalf("best_of %d, logprobs %v", c.bestOf, c.opt.Logprobs)
	}
	// Mean −1.0 over three tokens (the stop token's −0.5 included) beats a mean of −1.25 over two.
	first := generate.Result{Tokens: []int32{7, 9}, Logprobs: []float32{-1.25, -1.25}, Text: " a b", Finish: generate.FinishLength}
	second := generate.Result{Tokens: []int32{9, 7}, Logprobs: []float32{-2, -0.5}, Text: " b a", Finish: generate.FinishEOS,
		StopToken: 2, StopLogprob: -0.5}
	out := c.output("hi", []generation{{first, 11}, {second, 12}}, texts{7: " a", 9: " b", 2: "</s>"})
	if out.GeneratedText != " b a" || *out.Details.Seed != 12 || len(out.Details.BestOfSequences) != 1 ||
		out.Details.BestOfSequences[0].GeneratedText != " a b" || *out.Details.BestOfSequences[0].Seed != 11 ||
		len(out.Details.BestOfSequences[0].Tokens) != 2 {
		t.Errorf("best_of answered %+v", out)
	}
	for body, want := range map[string]string{
		`{"inputs":"x","parameters":{"best_of":3,"do_sample":true}}`:          "`best_of` must be > 0 and <= 2. Given: 3",
		`{"inputs":"x","parameters":{"best_of":0}}`:                           "`best_of` must be > 0 and <= 2. Given: 0",
		`{"inputs":"x","parameters":{"best_of":2}}`:                           "you must use sampling when `best_of` is > 1",
		`{"inputs":"x","parameters":{"best_of":2,"do_sample":true,"seed":4}}`: "`seed` must not be set when `best_of` > 1",
	} {
		if _, err := parseTGI([]byte(body)); err == nil || err.Error() != "Input validation error: "+want {
			t.Errorf("%s: error %v, want %q", body, err, want)
		}
	}
}
