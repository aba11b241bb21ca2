// Package eval computes the evaluation metrics a TextGeneration job reports: ROUGE-1, ROUGE-2,
// ROUGE-L and ROUGE-L-Sum of generations against references, and perplexity from a mean
// cross-entropy loss.
//
// ROUGE is computed exactly as Google's rouge_score package (the pip package rouge-score, which
// Hugging Face evaluate's "rouge" metric wraps) computes it:
//
//   - Tokenizer (rouge_score's DefaultTokenizer): lowercase, every run of characters outside
//     [a-z0-9] becomes a separator, and with stemming on, tokens longer than 3 characters are
//     replaced by their Porter stem (NLTK's PorterStemmer in its default NLTK_EXTENSIONS mode;
//     see Stem).
//   - ROUGE-N: clipped n-gram overlap; precision = overlap / prediction n-grams, recall = overlap /
//     target n-grams, F-measure = 2PR/(P+R) (0 when P+R is 0).
//   - ROUGE-L: the longest common subsequence of the two token lists.
//   - ROUGE-Lsum: summary-level LCS: both texts are split into sentences on "\n" (empty lines
//     dropped), and for each target sentence the union of its LCS with every prediction sentence
//     is counted, each token at most as often as it occurs in both texts (as ROUGE-1.5.5 does).
//     Sentences are not split on punctuation: a caller who wants that must insert newlines.
//
// Stemming is on in DefaultScorer (rouge_score's use_stemmer=True, the configuration most
// fine-tuning reports use); Hugging Face evaluate's own default is off, so set UseStemmer false
// to compare with a plain evaluate.load("rouge").compute(...).
//
// Aggregation: Scorer.Mean returns the arithmetic mean over pairs of each precision, recall and
// F-measure. rouge_score's BootstrapAggregator (used by evaluate) reports the median of 1000
// bootstrap resamples of that mean, which is a random estimate of the same number; Lathe reports
// the exact mean, so a rerun gives the same value.
package eval

import (
	"errors"
	"fmt"
	"strings"
)

// Score is one ROUGE variant for one pair (or the mean over a set of pairs).
type Score struct {
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	FMeasure  float64 `json:"fmeasure"`
}

// Rouge holds the four ROUGE variants a TextGeneration job reports.
type Rouge struct {
	Rouge1    Score `json:"rouge1"`
	Rouge2    Score `json:"rouge2"`
	RougeL    Score `json:"rougeL"`
	RougeLsum Score `json:"rougeLsum"`
}

// Scorer computes ROUGE. The zero value does not stem; DefaultScorer does.
type Scorer struct {
	UseStemmer bool // Porter-stem tokens longer than 3 characters (rouge_score's use_stemmer)
}

// DefaultScorer is the scorer Lathe reports metrics with: stemming on.
var DefaultScorer = Scorer{UseStemmer: true}

// Tokenize splits text into ROUGE tokens as rouge_score's DefaultTokenizer does.
func Tokenize(text string, stem bool) []string {
	var tokens []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		t := cur.String()
		cur.Reset()
		if stem && len(t) > 3 {
			t = Stem(t)
		}
		if t != "" {
			tokens = append(tokens, t)
		}
	}
	for _, r := range text {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			cur.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			cur.WriteRune(r + ('a' - 'A'))
		case r == '\u212A': // KELVIN SIGN: Python's str.lower() turns it into "k"
			cur.WriteByte('k')
		case r == '\u0130': // LATIN CAPITAL I WITH DOT: lower() gives "i" + U+0307, a separator
			cur.WriteByte('i')
			flush()
		default:
			flush()
		}
	}
	flush()
	return tokens
}

// Score computes the four ROUGE variants of prediction against target.
func (s Scorer) Score(target, prediction string) Rouge {
	tt := Tokenize(target, s.UseStemmer)
	pt := Tokenize(prediction, s.UseStemmer)
	return Rouge{
		Rouge1:    ngramScore(tt, pt, 1),
		Rouge2:    ngramScore(tt, pt, 2),
		RougeL:    lcsScore(tt, pt),
		RougeLsum: summaryLCSScore(s.sentences(target), s.sentences(prediction)),
	}
}

// Mean scores every (targets[i], predictions[i]) pair and returns the mean of each number. It
// refuses an empty set rather than report a ROUGE of 0 that measured nothing.
func (s Scorer) Mean(targets, predictions []string) (Rouge, error) {
	if len(targets) != len(predictions) {
		return Rouge{}, fmt.Errorf("rouge: %d targets but %d predictions", len(targets), len(predictions))
	}
	if len(targets) == 0 {
		return Rouge{}, errors.New("rouge: no pairs to score")
	}
	var sum Rouge
	for i := range targets {
		r := s.Score(targets[i], predictions[i])
		sum.Rouge1 = sum.Rouge1.add(r.Rouge1)
		sum.Rouge2 = sum.Rouge2.add(r.Rouge2)
		sum.RougeL = sum.RougeL.add(r.RougeL)
		sum.RougeLsum = sum.RougeLsum.add(r.RougeLsum)
	}
	n := float64(len(targets))
	return Rouge{sum.Rouge1.div(n), sum.Rouge2.div(n), sum.RougeL.div(n), sum.RougeLsum.div(n)}, nil
}

func (a Score) add(b Score) Score {
	return Score{a.Precision + b.Precision, a.Recall + b.Recall, a.FMeasure + b.FMeasure}
}

func (a Score) div(n float64) Score { return Score{a.Precision / n, a.Recall / n, a.FMeasure / n} }

func newScore(precision, recall float64) Score {
	f := 0.0
	if precision+recall > 0 {
		f = 2 * precision * recall / (precision + recall)
	}
	return Score{precision, recall, f}
}

// ngramScore is ROUGE-N: clipped counts of shared n-grams.
func ngramScore(target, prediction []string, n int) Score {
	tc := ngrams(target, n)
	pc := ngrams(prediction, n)
	overlap, tTotal, pTotal := 0, 0, 0
	for g, c := range tc {
		overlap += min(c, pc[g])
		tTotal += c
	}
	for _, c := range pc {
		pTotal += c
	}
	return newScore(float64(overlap)/float64(max(pTotal, 1)), float64(overlap)/float64(max(tTotal, 1)))
}

func ngrams(tokens []string, n int) map[string]int {
	counts := make(map[string]int)
	for i := 0; i+n <= len(tokens); i++ {
		// Tokens are [a-z0-9]+, so a space joins them without ambiguity.
		counts[strings.Join(tokens[i:i+n], " ")]++
	}
	return counts
}

// lcsScore is ROUGE-L.
func lcsScore(target, prediction []string) Score {
	if len(target) == 0 || len(prediction) == 0 {
		return Score{}
	}
	l := lcsTable(target, prediction)[len(target)][len(prediction)]
	return newScore(float64(l)/float64(len(prediction)), float64(l)/float64(len(target)))
}

// lcsTable: t[i][j] is the LCS length of ref[:i] and can[:j].
func lcsTable(ref, can []string) [][]int {
	t := make([][]int, len(ref)+1)
	cells := make([]int, (len(ref)+1)*(len(can)+1))
	for i := range t {
		t[i] = cells[i*(len(can)+1) : (i+1)*(len(can)+1)]
	}
	for i := 1; i <= len(ref); i++ {
		for j := 1; j <= len(can); j++ {
			if ref[i-1] == can[j-1] {
				t[i][j] = t[i-1][j-1] + 1
			} else {
				t[i][j] = max(t[i-1][j], t[i][j-1])
			}
		}
	}
	return t
}

// lcsIndices returns the indices into ref of one LCS of ref and can. Which LCS it is matters for
// ROUGE-Lsum's union, so the backtrack breaks ties exactly as rouge_score's _backtrack_norec: move
// left only when that cell is strictly larger than the one above.
func lcsIndices(ref, can []string) []int {
	t := lcsTable(ref, can)
	var rev []int
	i, j := len(ref), len(can)
	for i > 0 && j > 0 {
		switch {
		case ref[i-1] == can[j-1]:
			rev = append(rev, i-1)
			i--
			j--
		case t[i][j-1] > t[i-1][j]:
			j--
		default:
			i--
		}
	}
	out := make([]int, len(rev))
	for k, v := range rev {
		out[len(rev)-1-k] = v
	}
	return out
}

// sentences splits text on "\n", drops empty lines, and tokenizes each line.
func (s Scorer) sentences(text string) [][]string {
	var out [][]string
	for line := range strings.SplitSeq(text, "\n") {
		if line != "" {
			out = append(out, Tokenize(line, s.UseStemmer))
		}
	}
	return out
}

// summaryLCSScore is ROUGE-Lsum (summary-level LCS, section 3.2 of Lin 2004, with ROUGE-1.5.5's
// guard against counting a token more often than it occurs).
func summaryLCSScore(ref, can [][]string) Score {
	if len(ref) == 0 || len(can) == 0 {
		return Score{}
	}
	m, n := 0, 0
	refCounts := make(map[string]int)
	canCounts := make(map[string]int)
	for _, s := range ref {
		m += len(s)
		for _, t := range s {
			refCounts[t]++
		}
	}
	for _, s := range can {
		n += len(s)
		for _, t := range s {
			canCounts[t]++
		}
	}
	if m == 0 || n == 0 {
		return Score{}
	}
	hits := 0
	for _, r := range ref {
		for _, t := range unionLCS(r, can) {
			if canCounts[t] > 0 && refCounts[t] > 0 {
				hits++
				canCounts[t]--
				refCounts[t]--
			}
		}
	}
	return newScore(float64(hits)/float64(n), float64(hits)/float64(m))
}

// unionLCS returns the tokens of ref that are in the LCS of ref with at least one candidate
// sentence, in ref order.
func unionLCS(ref []string, cans [][]string) []string {
	in := make([]bool, len(ref))
	for _, c := range cans {
		for _, i := range lcsIndices(ref, c) {
			in[i] = true
		}
	}
	var out []string
	for i, ok := range in {
		if ok {
			out = append(out, ref[i])
		}
	}
	return out
}
