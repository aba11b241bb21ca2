package eval

import "strings"

// Stem returns the Porter stem of word exactly as NLTK's PorterStemmer() does in its default
// NLTK_EXTENSIONS mode, which is the stemmer rouge_score uses when use_stemmer=True. The word is
// lowercased first, as NLTK does. The algorithm is Porter (1980) plus NLTK's changes: a table of
// irregular forms (dying→die, skies→sky, news→news...), words of one or two letters left alone,
// "ies"/"ied" handled specially in four-letter words, the y→i rule only after a consonant that is
// not the whole stem, "bli"→"ble", "alli" stripped recursively, "fulli"→"ful" and "logi"→"log".
//
// Stem works on bytes: it is defined for the ASCII tokens [a-z0-9]+ that the ROUGE tokenizer
// produces (digits count as consonants, as in NLTK).
func Stem(word string) string {
	w := strings.ToLower(word)
	if s, ok := irregularForms[w]; ok {
		return s
	}
	if len(w) <= 2 {
		return w
	}
	w = step1a(w)
	w = step1b(w)
	w = step1c(w)
	w = step2(w)
	w = step3(w)
	w = step4(w)
	w = step5a(w)
	w = step5b(w)
	return w
}

// irregularForms is NLTK_EXTENSIONS' pool: these words map straight to the given stem.
var irregularForms = map[string]string{
	"sky": "sky", "skies": "sky",
	"dying":   "die",
	"lying":   "lie",
	"tying":   "tie",
	"news":    "news",
	"innings": "inning", "inning": "inning",
	"outings": "outing", "outing": "outing",
	"cannings": "canning", "canning": "canning",
	"howe":    "howe",
	"proceed": "proceed",
	"exceed":  "exceed",
	"succeed": "succeed",
}

// isConsonant: a letter other than a, e, i, o, u, and other than a y preceded by a consonant.
func isConsonant(w string, i int) bool {
	switch w[i] {
	case 'a', 'e', 'i', 'o', 'u':
		return false
	case 'y':
		if i == 0 {
			return true
		}
		return !isConsonant(w, i-1)
	}
	return true
}

// measure is m in [C](VC){m}[V]: the number of vowel-run→consonant transitions.
func measure(stem string) int {
	m := 0
	prevVowel := false
	for i := range len(stem) {
		c := isConsonant(stem, i)
		if c && prevVowel {
			m++
		}
		prevVowel = !c
	}
	return m
}

func positiveMeasure(stem string) bool { return measure(stem) > 0 }
func measureAbove1(stem string) bool   { return measure(stem) > 1 }

func containsVowel(stem string) bool {
	for i := range len(stem) {
		if !isConsonant(stem, i) {
			return true
		}
	}
	return false
}

// endsDoubleConsonant is the paper's *d.
func endsDoubleConsonant(w string) bool {
	n := len(w)
	return n >= 2 && w[n-1] == w[n-2] && isConsonant(w, n-1)
}

// endsCVC is the paper's *o (consonant-vowel-consonant, the last not w, x or y), plus NLTK's
// extension that a two-letter vowel-consonant word also counts.
func endsCVC(w string) bool {
	n := len(w)
	if n >= 3 && isConsonant(w, n-3) && !isConsonant(w, n-2) && isConsonant(w, n-1) &&
		w[n-1] != 'w' && w[n-1] != 'x' && w[n-1] != 'y' {
		return true
	}
	return n == 2 && !isConsonant(w, 0) && isConsonant(w, 1)
}

// rule is one suffix rewrite: when the word ends with suffix and cond (nil: always) holds for the
// stem left after removing it, the suffix becomes repl.
type rule struct {
	suffix, repl string
	cond         func(stem string) bool
}

// applyRules applies the first rule whose suffix matches; when that rule's condition fails the word
// is returned unchanged (later rules are not tried), as in the paper.
func applyRules(w string, rules []rule) string {
	for _, r := range rules {
		if strings.HasSuffix(w, r.suffix) {
			stem := w[:len(w)-len(r.suffix)]
			if r.cond == nil || r.cond(stem) {
				return stem + r.repl
			}
			return w
		}
	}
	return w
}

// step1a: sses→ss, ies→i, ss→ss, s→"" (NLTK: a four-letter "...ies" word becomes "...ie").
func step1a(w string) string {
	if len(w) == 4 && strings.HasSuffix(w, "ies") {
		return w[:1] + "ie"
	}
	return applyRules(w, []rule{{"sses", "ss", nil}, {"ies", "i", nil}, {"ss", "ss", nil}, {"s", "", nil}})
}

// step1b: (m>0) eed→ee; (*v*) ed→""; (*v*) ing→""; then at→ate, bl→ble, iz→ize, a double consonant
// other than l, s, z is halved, and (m=1 and *o) gets an e back. NLTK first maps "ied" to "ie" in
// four-letter words and to "i" otherwise.
func step1b(w string) string {
	if strings.HasSuffix(w, "ied") {
		if len(w) == 4 {
			return w[:1] + "ie"
		}
		return w[:len(w)-3] + "i"
	}
	if strings.HasSuffix(w, "eed") {
		stem := w[:len(w)-3]
		if measure(stem) > 0 {
			return stem + "ee"
		}
		return w
	}
	var stem string
	found := false
	for _, suffix := range []string{"ed", "ing"} {
		if strings.HasSuffix(w, suffix) {
			s := w[:len(w)-len(suffix)]
			if containsVowel(s) {
				stem, found = s, true
				break
			}
		}
	}
	if !found {
		return w
	}
	for _, r := range []rule{{"at", "ate", nil}, {"bl", "ble", nil}, {"iz", "ize", nil}} {
		if strings.HasSuffix(stem, r.suffix) {
			return stem[:len(stem)-len(r.suffix)] + r.repl
		}
	}
	if endsDoubleConsonant(stem) {
		last := stem[len(stem)-1]
		if last != 'l' && last != 's' && last != 'z' {
			return stem[:len(stem)-1]
		}
		return stem
	}
	if measure(stem) == 1 && endsCVC(stem) {
		return stem + "e"
	}
	return stem
}

// step1c: y→i when the y follows a consonant that is not the first letter (NLTK's rule; the paper
// only asks for a vowel somewhere in the stem).
func step1c(w string) string {
	return applyRules(w, []rule{{"y", "i", func(stem string) bool {
		return len(stem) > 1 && isConsonant(stem, len(stem)-1)
	}}})
}

func step2(w string) string {
	// NLTK strips "alli" first and runs step 2 again on the result.
	if strings.HasSuffix(w, "alli") && positiveMeasure(w[:len(w)-4]) {
		return step2(w[:len(w)-4] + "al")
	}
	return applyRules(w, []rule{
		{"ational", "ate", positiveMeasure},
		{"tional", "tion", positiveMeasure},
		{"enci", "ence", positiveMeasure},
		{"anci", "ance", positiveMeasure},
		{"izer", "ize", positiveMeasure},
		{"bli", "ble", positiveMeasure},
		{"alli", "al", positiveMeasure},
		{"entli", "ent", positiveMeasure},
		{"eli", "e", positiveMeasure},
		{"ousli", "ous", positiveMeasure},
		{"ization", "ize", positiveMeasure},
		{"ation", "ate", positiveMeasure},
		{"ator", "ate", positiveMeasure},
		{"alism", "al", positiveMeasure},
		{"iveness", "ive", positiveMeasure},
		{"fulness", "ful", positiveMeasure},
		{"ousness", "ous", positiveMeasure},
		{"aliti", "al", positiveMeasure},
		{"iviti", "ive", positiveMeasure},
		{"biliti", "ble", positiveMeasure},
		{"fulli", "ful", positiveMeasure},
		// NLTK measures the word without "ogi" (so the l stays in the stem it measures).
		{"logi", "log", func(string) bool { return positiveMeasure(w[:len(w)-3]) }},
	})
}

func step3(w string) string {
	return applyRules(w, []rule{
		{"icate", "ic", positiveMeasure},
		{"ative", "", positiveMeasure},
		{"alize", "al", positiveMeasure},
		{"iciti", "ic", positiveMeasure},
		{"ical", "ic", positiveMeasure},
		{"ful", "", positiveMeasure},
		{"ness", "", positiveMeasure},
	})
}

func step4(w string) string {
	return applyRules(w, []rule{
		{"al", "", measureAbove1},
		{"ance", "", measureAbove1},
		{"ence", "", measureAbove1},
		{"er", "", measureAbove1},
		{"ic", "", measureAbove1},
		{"able", "", measureAbove1},
		{"ible", "", measureAbove1},
		{"ant", "", measureAbove1},
		{"ement", "", measureAbove1},
		{"ment", "", measureAbove1},
		{"ent", "", measureAbove1},
		{"ion", "", func(stem string) bool {
			return measure(stem) > 1 && (strings.HasSuffix(stem, "s") || strings.HasSuffix(stem, "t"))
		}},
		{"ou", "", measureAbove1},
		{"ism", "", measureAbove1},
		{"ate", "", measureAbove1},
		{"iti", "", measureAbove1},
		{"ous", "", measureAbove1},
		{"ive", "", measureAbove1},
		{"ize", "", measureAbove1},
	})
}

// step5a: (m>1) e→""; (m=1 and not *o) e→"".
func step5a(w string) string {
	if !strings.HasSuffix(w, "e") {
		return w
	}
	stem := w[:len(w)-1]
	m := measure(stem)
	if m > 1 || (m == 1 && !endsCVC(stem)) {
		return stem
	}
	return w
}

// step5b: (m>1 and *d and *L) → single letter; NLTK measures the word minus one l.
func step5b(w string) string {
	if strings.HasSuffix(w, "ll") && measure(w[:len(w)-1]) > 1 {
		return w[:len(w)-1]
	}
	return w
}
