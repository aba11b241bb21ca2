package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"testing"
)

// nmtNFKC returns SentencePiece's nmt_nfkc precompiled_charsmap, the normalization table of T5's
// spiece.model (see testdata/README.md for where the bytes come from).
func nmtNFKC(t testing.TB) []byte {
	t.Helper()
	f, err := os.Open("testdata/nmt_nfkc.charsmap.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The expected values are Hugging Face's own tests of its Precompiled normalizer on this table
// (tokenizers/src/normalizers/precompiled_test.rs).
func TestPrecompiledNMTNFKC(t *testing.T) {
	cm, err := parseCharsmap(nmtNFKC(t))
	if err != nil {
		t.Fatal(err)
	}
	lookups := []struct {
		name, key, want string
		ok              bool
	}{
		{"ligature fi", "\ufb01", "fi", true},
		{"space is kept", " ", "", false},
		{"double-struck G", "𝔾", "G", true},
		{"double-struck o", "𝕠", "o", true},
		{"zero-width joiner becomes a space", "\u200d", " ", true},
		{"arabic alef + madda above (two characters)", "\u0627\u0653", "آ", true},
		{"plain ASCII has no entry", "a", "", false},
	}
	for _, tc := range lookups {
		t.Run("lookup "+tc.name, func(t *testing.T) {
			got, ok := cm.lookup(tc.key)
			if got != tc.want || ok != tc.ok {
				t.Errorf("lookup(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.ok)
			}
		})
	}
	texts := []struct{ name, in, want string }{
		{"mathematical letters", "𝔾𝕠𝕠𝕕 𝕞𝕠𝕣𝕟𝕚𝕟𝕘", "Good morning"},
		// Thai: clusters over 6 bytes fall back to one character at a time.
		{"thai", "เขาไม่ได้พูดสักคำ", "เขาไม\u0e48ได\u0e49พ\u0e39ดส\u0e31กค\u0e4dา"},
		{"hindi", "ड़ी दुख", "ड\u093cी द\u0941ख"},
		{"a two-character cluster found whole", "\u0627\u0653", "آ"},
		{"ascii unchanged", "Hello, world!", "Hello, world!"},
	}
	for _, tc := range texts {
		t.Run("normalize "+tc.name, func(t *testing.T) {
			if got := cm.normalize(tc.in); got != tc.want {
				t.Errorf("normalize(%q) = %q (%+q), want %q", tc.in, got, got, tc.want)
			}
		})
	}
}

// buildCharsmap writes a precompiled_charsmap for a few rules the way SentencePiece lays one
// out: the keys' UTF-8 bytes in a darts-clone double array whose values are offsets into a blob
// of NUL-terminated replacements. The trie is built naively (each node's children placed at the
// first free base) but in the same unit format, so lookups exercise the real decoding.
func buildCharsmap(t *testing.T, rules map[string]string) []byte {
	t.Helper()
	type node struct {
		children map[byte]*node
		value    int // offset of the replacement, -1 if no key ends here
	}
	root := &node{children: map[byte]*node{}, value: -1}
	var blob []byte
	for k, v := range rules {
		n := root
		for i := 0; i < len(k); i++ {
			c := n.children[k[i]]
			if c == nil {
				c = &node{children: map[byte]*node{}, value: -1}
				n.children[k[i]] = c
			}
			n = c
		}
		n.value = len(blob)
		blob = append(append(blob, v...), 0)
	}
	units := make([]uint32, 1, 1024)
	used := map[uint32]bool{0: true}
	grow := func(i uint32) {
		for uint32(len(units)) <= i {
			units = append(units, 0)
		}
	}
	// place gives node n (stored at index at) a base so that every child label (and, when a key
	// ends at n, the leaf at label 0) lands on a free unit; the base is the offset stored in n.
	var place func(n *node, at uint32)
	place = func(n *node, at uint32) {
		labels := make([]uint32, 0, len(n.children)+1)
		if n.value >= 0 {
			labels = append(labels, 0)
		}
		for b := 0; b < 256; b++ {
			if n.children[byte(b)] != nil {
				labels = append(labels, uint32(b))
			}
		}
		var offset uint32
		for offset = 1 << 8; ; offset += 1 << 8 { // multiples of 256 so base^label = base+label
			base := at ^ offset
			ok := offset < 1<<21 // fits the 21-bit offset field without the extension bit
			for _, l := range labels {
				if used[base^l] {
					ok = false
				}
			}
			if ok {
				break
			}
		}
		base := at ^ offset
		units[at] |= offset << 10
		if n.value >= 0 {
			units[at] |= 1 << 8
		}
		for _, l := range labels {
			used[base^l] = true
			grow(base ^ l)
		}
		if n.value >= 0 {
			units[base] = uint32(n.value) | 1<<31 // a value unit
		}
		for _, l := range labels {
			if l == 0 {
				continue
			}
			units[base^l] |= l
			place(n.children[byte(l)], base^l)
		}
	}
	place(root, 0)
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.LittleEndian, uint32(4*len(units)))
	_ = binary.Write(&buf, binary.LittleEndian, units)
	buf.Write(blob)
	return buf.Bytes()
}

func TestPrecompiledBuiltTable(t *testing.T) {
	cm, err := parseCharsmap(buildCharsmap(t, map[string]string{
		"Ａ":            "A",
		"ｂ":            "b",
		"\t":           " ",
		"\u00ad":       "",     // soft hyphen: deleted
		"e\u0301":      "é",    // a two-character key, reached only as a whole cluster
		"\u2460":       "1",    // circled digit one
		"\u2460\u2460": "(11)", // never wins: the shorter prefix "①" is found first
	}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, in, want string }{
		{"full-width letters", "Ａｂ", "Ab"},
		{"tab becomes space", "a\tb", "a b"},
		{"deletion", "co\u00adop", "coop"},
		{"combining sequence as one cluster", "cafe\u0301", "café"},
		{"shortest prefix wins", "\u2460\u2460", "11"},
		{"cluster hit on its first character drops the rest", "Ａ\u0301", "A"},
		{"no rule", "plain", "plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cm.normalize(tc.in); got != tc.want {
				t.Errorf("normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	for _, bad := range [][]byte{nil, {1, 0, 0, 0}, {8, 0, 0, 0, 1, 2, 3, 4}} {
		if _, err := parseCharsmap(bad); err == nil {
			t.Errorf("parseCharsmap(%v) accepted a malformed table", bad)
		}
	}
}
