package eval

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The expected values in this file are rouge_score's own: the hand cases of its
// rouge_scorer_test.py and tokenize_test.py. (Its ROUGE-1.5.5 fixture files are not copied into this
// repository: third-party text stays out of it.)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func checkScore(t *testing.T, what string, got Score, p, r, f, tol float64) {
	t.Helper()
	if !near(got.Precision, p, tol) || !near(got.Recall, r, tol) || !near(got.FMeasure, f, tol) {
		t.Errorf("%s = P %.5f R %.5f F %.5f, want P %.5f R %.5f F %.5f", what,
			got.Precision, got.Recall, got.FMeasure, p, r, f)
	}
}

func TestRougeScorerHandCases(t *testing.T) {
	plain := Scorer{}
	cases := []struct {
		name, target, prediction string
		pick                     func(Rouge) Score
		p, r, f                  float64
	}{
		{"rouge1", "testing one two", "testing", func(r Rouge) Score { return r.Rouge1 }, 1, 1.0 / 3, 0.5},
		{"rouge2", "testing one two", "testing one", func(r Rouge) Score { return r.Rouge2 }, 1, 0.5, 2.0 / 3},
		{"rouge1 multiple types", "testing one two", "testing one", func(r Rouge) Score { return r.Rouge1 }, 1, 2.0 / 3, 0.8},
		{"rougeL consecutive", "testing one two", "testing one", func(r Rouge) Score { return r.RougeL }, 1, 2.0 / 3, 0.8},
		{"rougeL non-consecutive", "testing one two", "testing two", func(r Rouge) Score { return r.RougeL }, 1, 2.0 / 3, 0.8},
		{"rougeLsum union of LCS", "w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", func(r Rouge) Score { return r.RougeLsum }, 0.4, 0.8, 0.53333},
		{"rougeLsum empty prediction", "w1 w2 w3 w4 w5", "", func(r Rouge) Score { return r.RougeLsum }, 0, 0, 0},
		{"rougeLsum empty target", "", "w1", func(r Rouge) Score { return r.RougeLsum }, 0, 0, 0},
		{"rougeLsum prediction all punctuation", "w1 w2 w3 w4 w5", "/", func(r Rouge) Score { return r.RougeLsum }, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkScore(t, c.name, c.pick(plain.Score(c.target, c.prediction)), c.p, c.r, c.f, 1e-4)
		})
	}
	for _, pick := range []func(Rouge) Score{
		func(r Rouge) Score { return r.Rouge1 }, func(r Rouge) Score { return r.Rouge2 },
		func(r Rouge) Score { return r.RougeL }, func(r Rouge) Score { return r.RougeLsum },
	} {
		checkScore(t, "empty prediction", pick(plain.Score("testing one two", "")), 0, 0, 0, 0)
	}
}

func TestLCSIndicesBreakTiesLikeRougeScore(t *testing.T) {
	ref := strings.Fields("1 2 3 4 5")
	if got := lcsIndices(ref, strings.Fields("2 5 3 4")); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("LCS indices = %v, want [1 2 3]", got)
	}
	if got := lcsIndices(ref, strings.Fields("8 9")); len(got) != 0 {
		t.Errorf("LCS of disjoint lists = %v, want none", got)
	}
	union := unionLCS(ref, [][]string{strings.Fields("1 2 6 7 8"), strings.Fields("1 3 8 9 5")})
	if !slices.Equal(union, strings.Fields("1 2 3 5")) {
		t.Errorf("union LCS = %v, want [1 2 3 5]", union)
	}
	// When two LCSs tie, rouge_score's backtrack prefers the earlier ref token: for ref "a b" and
	// candidate "b a" it takes "a". With a second candidate "b" the union is then "a b": 2 hits.
	tie := DefaultScorer.Score("a b", "b a\nb").RougeLsum
	checkScore(t, "rougeLsum with tied LCSs", tie, 2.0/3, 1, 0.8, 1e-12)

	s := summaryLCSScore([][]string{ref}, [][]string{strings.Fields("1 2 6 7 8"), strings.Fields("1 3 8 9 5")})
	checkScore(t, "summary-level LCS", s, 0.4, 0.8, 0.53333, 1e-4)
	if s := summaryLCSScore([][]string{{"reference"}}, [][]string{{}}); s.Recall != 0 {
		t.Errorf("summary LCS with an empty candidate sentence: recall %v, want 0", s.Recall)
	}
}

func TestTokenize(t *testing.T) {
	cases := []struct {
		text string
		stem bool
		want []string
	}{
		{"one Two three", false, []string{"one", "two", "three"}},     // rouge_score tokenize_test
		{"one\n Two \nthree", false, []string{"one", "two", "three"}}, // rouge_score tokenize_test
		{"Hello, World! It's 2024-01-02.", false, []string{"hello", "world", "it", "s", "2024", "01", "02"}},
		{"café naïve", false, []string{"caf", "na", "ve"}}, // non-ASCII letters separate tokens
		{"The runners were running quickly", true, []string{"the", "runner", "were", "run", "quickli"}},
		{"cats ran", true, []string{"cat", "ran"}}, // only tokens longer than 3 characters are stemmed
		{"İstanbul \u212Aelvin", false, []string{"i", "stanbul", "kelvin"}},
		{"!!! ...", true, nil},
	}
	for _, c := range cases {
		if got := Tokenize(c.text, c.stem); !slices.Equal(got, c.want) {
			t.Errorf("Tokenize(%q, %v) = %q, want %q", c.text, c.stem, got, c.want)
		}
	}
}

func TestStemMatchesNLTK(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "porter_nltk.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	n, bad := 0, 0
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		word, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("bad golden line %q", line)
		}
		n++
		if got := Stem(word); got != want {
			bad++
			if bad <= 20 {
				t.Errorf("Stem(%q) = %q, nltk gives %q", word, got, want)
			}
		}
	}
	if n < 10000 {
		t.Fatalf("only %d golden words read", n)
	}
	if bad > 0 {
		t.Errorf("%d of %d words stem differently from nltk", bad, n)
	}
}

func TestMean(t *testing.T) {
	targets := []string{"testing one two", "the cat sat"}
	predictions := []string{"testing", "the cat sat"}
	got, err := Scorer{}.Mean(targets, predictions)
	if err != nil {
		t.Fatal(err)
	}
	// Pair 1 F1 is 0.5 (rouge_score's testRouge1), pair 2 is a perfect match.
	if !near(got.Rouge1.FMeasure, 0.75, 1e-12) {
		t.Errorf("mean rouge1 F = %v, want 0.75", got.Rouge1.FMeasure)
	}
	if !near(got.RougeL.Recall, (1.0/3+1)/2, 1e-12) {
		t.Errorf("mean rougeL recall = %v, want %v", got.RougeL.Recall, (1.0/3+1)/2)
	}
	if _, err := (Scorer{}).Mean(nil, nil); err == nil {
		t.Error("Mean of no pairs: no error, want one (a ROUGE of 0 that measured nothing)")
	}
	if _, err := (Scorer{}).Mean([]string{"a"}, nil); err == nil {
		t.Error("Mean with mismatched lengths: no error")
	}
}

func TestScoresJSONAndMetrics(t *testing.T) {
	r := DefaultScorer.Score("the quick brown fox", "the quick brown dog")
	s := NewScores(math.Log(4), 1.25, r, true, 1)
	if !near(s.Perplexity, 4, 1e-12) {
		t.Errorf("perplexity of loss ln 4 = %v, want 4", s.Perplexity)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"TrainingLoss", "ValidationLoss", "Perplexity", "Rouge1", "Rouge2", "RougeL", "RougeLSum"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON %s lacks %q", b, k)
		}
	}
	m := s.Metrics()
	if len(m) != 7 || m[6].Name != "TrainingLoss" || m[6].Set != "Train" || m[0].Name != "Rouge1" || m[0].Value != 0.75 {
		t.Errorf("Metrics() = %+v", m)
	}
	if len(NewScores(1, 0, r, true, 1).Metrics()) != 6 {
		t.Error("a base model without training loss should list six metrics")
	}
}
