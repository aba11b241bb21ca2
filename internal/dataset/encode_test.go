package dataset

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func examples(n int) []Example {
	out := make([]Example, n)
	for i := range out {
		out[i] = Example{Input: fmt.Sprint("question ", i), Output: fmt.Sprint("answer ", i), File: "t.csv", Row: i + 1}
	}
	return out
}

func TestSplit(t *testing.T) {
	all := examples(100)
	train, val, err := Split(all, 0.2, SplitSeed)
	if err != nil {
		t.Fatal(err)
	}
	if len(train) != 80 || len(val) != 20 {
		t.Fatalf("split 100 rows at 0.2 into %d/%d, want 80/20", len(train), len(val))
	}
	seen := map[int]bool{}
	for _, s := range [][]Example{train, val} {
		if !slices.IsSortedFunc(s, func(a, b Example) int { return a.Row - b.Row }) {
			t.Error("a side lost the original order")
		}
		for _, e := range s {
			if seen[e.Row] {
				t.Errorf("row %d is on both sides", e.Row)
			}
			seen[e.Row] = true
		}
	}

	train2, val2, _ := Split(all, 0.2, SplitSeed)
	if !reflect.DeepEqual(val, val2) || !reflect.DeepEqual(train, train2) {
		t.Error("the same split twice gave different sets")
	}

	shuffled := slices.Clone(all)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	_, val3, _ := Split(shuffled, 0.2, SplitSeed)
	if !sameRows(val, val3) {
		t.Error("the validation set depends on the order the rows were read in")
	}

	_, val4, _ := Split(all, 0.2, SplitSeed+1)
	if sameRows(val, val4) {
		t.Error("another seed chose the same validation set")
	}

	sizes := []struct {
		n         int
		fraction  float64
		wantTrain int
		wantVal   int
	}{
		{2, 0.2, 1, 1}, {3, 0.01, 2, 1}, {10, 0.99, 1, 9}, {10, 0.25, 7, 3}, {1000, 0.2, 800, 200},
	}
	for _, s := range sizes {
		tr, va, err := Split(examples(s.n), s.fraction, SplitSeed)
		if err != nil || len(tr) != s.wantTrain || len(va) != s.wantVal {
			t.Errorf("Split(%d rows, %v) = %d/%d, %v; want %d/%d", s.n, s.fraction, len(tr), len(va), err, s.wantTrain, s.wantVal)
		}
	}
}

func sameRows(a, b []Example) bool {
	rows := func(s []Example) []int {
		var r []int
		for _, e := range s {
			r = append(r, e.Row)
		}
		slices.Sort(r)
		return r
	}
	return slices.Equal(rows(a), rows(b))
}

func TestSplitRefuses(t *testing.T) {
	cases := []struct {
		name     string
		n        int
		fraction float64
		want     string
	}{
		{"one row", 1, 0.2, "the dataset has 1 valid row; splitting it into training and validation sets needs at least 2"},
		{"no rows", 0, 0.2, "has 0 valid rows"},
		{"fraction 0", 10, 0, "must be between 0 and 1"},
		{"fraction 1", 10, 1, "must be between 0 and 1"},
	}
	for _, c := range cases {
		_, _, err := Split(examples(c.n), c.fraction, SplitSeed)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestCheckRowLimit(t *testing.T) {
	if err := CheckRowLimit(1000, 1000, "Falcon7B"); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	err := CheckRowLimit(12345, 1000, "Falcon7B")
	want := "the dataset has 12,345 rows across the training and validation channels, but base model Falcon7B accepts at most 1,000: remove 11,345 rows or choose a base model with a higher limit"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestPlainPrompt(t *testing.T) {
	got := Plain{}.Prompt("Name a colour.")
	if want := "### Instruction:\nName a colour.\n\n### Response:\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var f Formatter = FormatterFunc(func(in string) string { return "<|user|>" + in + "<|assistant|>" })
	if got := f.Prompt("hi"); got != "<|user|>hi<|assistant|>" {
		t.Errorf("FormatterFunc: %q", got)
	}
}

// byteTokenizer is a real (if simple) tokenizer: one token per byte, offset past the specials.
const (
	bos = 1
	eos = 2
)

func byteTokenize(text string, addBOS bool) []int {
	var out []int
	if addBOS {
		out = append(out, bos)
	}
	for _, b := range []byte(text) {
		out = append(out, int(b)+3)
	}
	return out
}

func detokenize(tokens []int) string {
	var b strings.Builder
	for _, t := range tokens {
		switch t {
		case bos:
			b.WriteString("<s>")
		case eos:
			b.WriteString("</s>")
		default:
			b.WriteByte(byte(t - 3))
		}
	}
	return b.String()
}

// rawFormat is a Formatter that adds a short marker, to keep the expected strings readable.
var rawFormat = FormatterFunc(func(in string) string { return in + ">" })

func TestEncodeLossMask(t *testing.T) {
	seqs, rep, err := Encode([]Example{{Input: "Hi", Output: "Yo"}}, byteTokenize, eos, 64, Plain{})
	if err != nil {
		t.Fatal(err)
	}
	s := seqs[0]
	prompt := "<s>### Instruction:\nHi\n\n### Response:\n"
	if got := detokenize(s.Tokens); got != prompt+"Yo</s>" {
		t.Errorf("sequence %q", got)
	}
	if got := detokenize(s.Tokens[:s.PromptLen]); got != prompt {
		t.Errorf("prompt part %q, want %q", got, prompt)
	}
	mask := s.LossMask()
	var targets []int
	for i, m := range mask {
		if m {
			targets = append(targets, s.Tokens[i])
		}
	}
	if got := detokenize(targets); got != "Yo</s>" {
		t.Errorf("loss targets %q, want only the response and EOS", got)
	}
	if rep.Rows != 1 || rep.ResponseTokens != 3 || rep.PromptTokens != s.PromptLen || rep.TotalTokens != len(s.Tokens) || rep.TruncatedRows != 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestEncodeTruncation(t *testing.T) {
	cases := []struct {
		name          string
		input, output string
		ctx           int
		wantSeq       string
		wantPromptLen int
	}{
		// Fits exactly: 1 BOS + 3 + 1 marker + 2 + EOS = 8.
		{"fits", "abc", "xy", 8, "<s>abc>xy</s>", 5},
		// The response loses its end (and EOS); the prompt stays whole.
		{"long response", "abc", "0123456789", 10, "<s>abc>01234", 5},
		// A prompt too long to leave a quarter of the context: its middle goes; BOS, its
		// beginning and its end (with the marker) stay, and the response keeps ctx/4 tokens.
		{"long prompt", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", 16, "<s>ABCDEVWXYZ>0123", 12},
		// A short response is kept whole and the prompt gives way.
		{"long prompt, short answer", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ok", 16, "<s>ABCDEFVWXYZ>ok</s>", 13},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			seqs, rep, _ := Encode([]Example{{Input: c.input, Output: c.output}}, byteTokenize, eos, c.ctx, rawFormat)
			s := seqs[0]
			if got := detokenize(s.Tokens); got != c.wantSeq {
				t.Errorf("sequence %q, want %q", got, c.wantSeq)
			}
			if len(s.Tokens) > c.ctx {
				t.Errorf("%d tokens, context is %d", len(s.Tokens), c.ctx)
			}
			if s.PromptLen != c.wantPromptLen {
				t.Errorf("prompt length %d, want %d", s.PromptLen, c.wantPromptLen)
			}
			full := 1 + len(c.input) + 1 + len(c.output) + 1
			if s.Truncated != (full > c.ctx) || rep.DroppedTokens != max(0, full-c.ctx) {
				t.Errorf("truncated %v, dropped %d; the example has %d tokens", s.Truncated, rep.DroppedTokens, full)
			}
		})
	}
}

func TestEncodeTooManyTruncated(t *testing.T) {
	var exs []Example
	for i := range 10 {
		out := "short"
		if i < 7 {
			out = strings.Repeat("long answer ", 10)
		}
		exs = append(exs, Example{Input: "q", Output: out})
	}
	seqs, rep, err := Encode(exs, byteTokenize, eos, 32, rawFormat)
	if len(seqs) != 10 || rep.TruncatedRows != 7 {
		t.Fatalf("%d sequences, %d truncated", len(seqs), rep.TruncatedRows)
	}
	want := "7 of 10 rows (70%) are longer than the base model's context of 32 tokens and would be truncated; a job fails when more than 60% of its rows are truncated: shorten the inputs and outputs (the longest row is 124 tokens), or choose a base model with a longer context"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, _, err := Encode(exs[1:], byteTokenize, eos, 32, rawFormat); err == nil {
		t.Errorf("6 of 9 truncated is 67%%: no error")
	}
	if _, _, err := Encode(append(exs[1:], Example{Input: "q", Output: "a"}), byteTokenize, eos, 32, rawFormat); err != nil {
		t.Errorf("6 of 10 truncated: %v", err)
	}
	// Rows all longer than the context.
	_, _, err = Encode(exs[:3], byteTokenize, eos, 32, rawFormat)
	if err == nil || !strings.HasPrefix(err.Error(), "3 of 3 rows (100%)") {
		t.Errorf("all rows too long: %v", err)
	}
}

func TestReportHistogramAndMerge(t *testing.T) {
	var exs []Example
	for _, n := range []int{5, 14, 20, 40, 100, 300} { // example lengths are n + 3 (BOS, marker, EOS)
		exs = append(exs, Example{Input: "", Output: strings.Repeat("x", n)})
	}
	_, rep, _ := Encode(exs, byteTokenize, eos, 100, rawFormat)
	want := []Bucket{{1, 16, 1}, {17, 32, 2}, {33, 64, 1}, {65, 100, 0}, {101, 0, 2}}
	if !reflect.DeepEqual(rep.Histogram, want) {
		t.Errorf("histogram %+v, want %+v", rep.Histogram, want)
	}
	if rep.MaxLength != 303 || rep.TruncatedRows != 2 {
		t.Errorf("max length %d, truncated %d", rep.MaxLength, rep.TruncatedRows)
	}
	b, err := json.Marshal(rep)
	if err != nil || !strings.Contains(string(b), `"lengthHistogram":[{"from":1,"to":16,"rows":1}`) || !strings.Contains(string(b), `{"from":101,"rows":2}`) {
		t.Errorf("JSON %s, %v", b, err)
	}

	_, rep2, _ := Encode(exs[:2], byteTokenize, eos, 100, rawFormat)
	m, err := rep.Merge(rep2)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 8 || m.Histogram[0].Rows != 2 || m.Histogram[1].Rows != 3 || m.TotalTokens != rep.TotalTokens+rep2.TotalTokens {
		t.Errorf("merged %+v", m)
	}
	if CheckTruncation(m) != nil {
		t.Error("2 of 8 truncated should pass")
	}
	_, other, _ := Encode(exs[:1], byteTokenize, eos, 50, rawFormat)
	if _, err := rep.Merge(other); err == nil {
		t.Error("merging reports of different context lengths: no error")
	}
}
