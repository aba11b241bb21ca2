package tokenizer

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// FromGGUF builds the tokenizer stored in a GGUF file's metadata: tokenizer.ggml.model "llama"
// (SentencePiece BPE merged by score, as llama.cpp's llm_tokenizer_spm) or "gpt2" (byte-level BPE
// with tokenizer.ggml.merges and the pre-tokenizer named by tokenizer.ggml.pre).
func FromGGUF(md *gguf.Metadata) (*Tokenizer, error) {
	model, _ := md.String("tokenizer.ggml.model")
	tokens, ok := md.Strings("tokenizer.ggml.tokens")
	if !ok {
		return nil, fmt.Errorf("tokenizer: gguf has no tokenizer.ggml.tokens")
	}
	t := &Tokenizer{tokens: tokens, BOS: -1, EOS: -1, UNK: -1, PAD: -1}
	if types, ok := md.Ints("tokenizer.ggml.token_type"); ok {
		if len(types) != len(tokens) {
			return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(types), len(tokens))
		}
		t.types = make([]TokenType, len(types))
		for i, v := range types {
			t.types[i] = TokenType(v)
		}
	} else {
		t.types = make([]TokenType, len(tokens))
		for i := range t.types {
			t.types[i] = TypeNormal
		}
	}
	id := func(key string) int {
		v, ok := md.Int(key)
		if !ok || v < 0 || v >= int64(len(tokens)) {
			return -1
		}
		return int(v)
	}
	t.BOS, t.EOS = id("tokenizer.ggml.bos_token_id"), id("tokenizer.ggml.eos_token_id")
	t.UNK, t.PAD = id("tokenizer.ggml.unknown_token_id"), id("tokenizer.ggml.padding_token_id")
	t.ChatTemplate, _ = md.String("tokenizer.chat_template")
	switch model {
	case "llama":
		t.kind, t.mode, t.byteFallback = SentencePiece, byScore, true
		scores, ok := md.Float32s("tokenizer.ggml.scores")
		if !ok || len(scores) != len(tokens) {
			return nil, fmt.Errorf("tokenizer: SentencePiece gguf needs tokenizer.ggml.scores for each of %d tokens", len(tokens))
		}
		t.scores = scores
		t.AddBOS, t.AddEOS = true, false
		t.prepend = prependFirst
		if v, ok := md.Bool("tokenizer.ggml.add_space_prefix"); ok && !v {
			t.prepend = prependNever
		}
		if t.UNK < 0 {
			t.UNK = 0 // llama.cpp's default for SentencePiece vocabularies
		}
	case "gpt2":
		t.kind, t.mode = ByteLevel, byRank
		merges, ok := md.Strings("tokenizer.ggml.merges")
		if !ok {
			return nil, fmt.Errorf("tokenizer: byte-level gguf has no tokenizer.ggml.merges")
		}
		t.ranks = make(map[[2]string]int, len(merges))
		for r, m := range merges {
			a, b, ok := strings.Cut(m, " ")
			if !ok {
				return nil, fmt.Errorf("tokenizer: merge %d %q is not two tokens", r, m)
			}
			if _, dup := t.ranks[[2]string{a, b}]; !dup {
				t.ranks[[2]string{a, b}] = r
			}
		}
		pre, _ := md.String("tokenizer.ggml.pre")
		p, err := ggufPre(pre)
		if err != nil {
			return nil, err
		}
		t.pre = p
		t.ignoreMerges = p.style == styleLlama3
		// Hugging Face normalizes to NFC before GPT-2's pattern for gpt-neox-20b's tokenizer (MPT,
		// Pythia, Dolly v2). llama.cpp names it "mpt"; older conversions of gpt-neox models carry
		// no name, so the architecture tells.
		arch, _ := md.String("general.architecture")
		t.nfc = pre == "mpt" || ((pre == "" || pre == "default") && arch == "gptneox")
		t.AddBOS = false
	default:
		return nil, fmt.Errorf("tokenizer: tokenizer.ggml.model %q is not supported (llama and gpt2 are)", model)
	}
	if v, ok := md.Bool("tokenizer.ggml.add_bos_token"); ok {
		t.AddBOS = v
	}
	if v, ok := md.Bool("tokenizer.ggml.add_eos_token"); ok {
		t.AddEOS = v
	}
	if err := t.init(); err != nil {
		return nil, err
	}
	return t, nil
}

// GGUFMetadata returns the tokenizer as GGUF metadata (tokenizer.ggml.* and
// tokenizer.chat_template), for writing a model loaded from Hugging Face files into GGUF.
func (t *Tokenizer) GGUFMetadata() ([]gguf.KV, error) { return t.GGUFMetadataFor(0) }

// GGUFMetadataFor is GGUFMetadata for a model whose embedding has vocab rows: llama.cpp requires as
// many tokens as rows, so a tokenizer with fewer (Flan-T5's 32,100 for 32,128 rows, Pythia's 50,277
// for 50,304) is padded with unused tokens "[PAD<id>]", as llama.cpp's converter pads it.
func (t *Tokenizer) GGUFMetadataFor(vocab int) ([]gguf.KV, error) {
	kvs, err := t.ggufMetadata()
	if err != nil || vocab <= len(t.tokens) {
		return kvs, err
	}
	for i, kv := range kvs {
		switch v := kv.Value.(type) {
		case []string: // tokenizer.ggml.tokens
			if kv.Key == "tokenizer.ggml.tokens" {
				padded := slices.Clone(v)
				for id := len(v); id < vocab; id++ {
					padded = append(padded, fmt.Sprintf("[PAD%d]", id))
				}
				kvs[i].Value = padded
			}
		case []int32: // tokenizer.ggml.token_type
			padded := slices.Clone(v)
			for len(padded) < vocab {
				padded = append(padded, int32(TypeUnused))
			}
			kvs[i].Value = padded
		case []float32: // tokenizer.ggml.scores
			padded := slices.Clone(v)
			for len(padded) < vocab {
				padded = append(padded, -1000)
			}
			kvs[i].Value = padded
		}
	}
	return kvs, nil
}

func (t *Tokenizer) ggufMetadata() ([]gguf.KV, error) {
	types := make([]int32, len(t.types))
	for i, v := range t.types {
		types[i] = int32(v)
	}
	var kvs []gguf.KV
	switch t.kind {
	case Unigram:
		// llama.cpp's "t5" (UGM) tokenizer: the pieces with their log-probabilities, the precompiled
		// normalization table, a "▁" prefix, runs of spaces merged (WhitespaceSplit + Metaspace).
		u := t.uni
		scores := make([]float32, len(t.tokens))
		for i := range scores {
			if i < len(u.scores) {
				scores[i] = float32(u.scores[i])
			}
		}
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.model", Value: "t5"}, gguf.KV{Key: "tokenizer.ggml.scores", Value: scores},
			gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: u.prepend != prependNever},
			gguf.KV{Key: "tokenizer.ggml.remove_extra_whitespaces", Value: u.wsSplit})
		for _, n := range u.normalizers {
			if p, ok := n.(precompiledStep); ok && len(p.cm.raw) > 0 {
				kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.precompiled_charsmap", Value: []uint8(p.cm.raw)})
			}
		}
	case SentencePiece:
		scores := t.scores
		if t.mode == byRank {
			scores = t.scoresFromRanks() // Hugging Face BPE: llama.cpp merges by score
		}
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.model", Value: "llama"}, gguf.KV{Key: "tokenizer.ggml.scores", Value: scores})
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_space_prefix", Value: t.prepend != prependNever})
	case ByteLevel:
		pre := t.pre.ggufName(t.nfc)
		if pre == "" {
			return nil, fmt.Errorf("tokenizer: this pre-tokenizer has no llama.cpp name")
		}
		merges := make([]string, len(t.ranks))
		for pair, r := range t.ranks {
			merges[r] = pair[0] + " " + pair[1]
		}
		kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.model", Value: "gpt2"}, gguf.KV{Key: "tokenizer.ggml.pre", Value: pre},
			gguf.KV{Key: "tokenizer.ggml.merges", Value: merges})
	}
	kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.tokens", Value: t.tokens}, gguf.KV{Key: "tokenizer.ggml.token_type", Value: types})
	for _, s := range []struct {
		key string
		id  int
	}{{"bos", t.BOS}, {"eos", t.EOS}, {"unknown", t.UNK}, {"padding", t.PAD}} {
		if s.id >= 0 {
			kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml." + s.key + "_token_id", Value: uint32(s.id)})
		}
	}
	kvs = append(kvs, gguf.KV{Key: "tokenizer.ggml.add_bos_token", Value: t.AddBOS}, gguf.KV{Key: "tokenizer.ggml.add_eos_token", Value: t.AddEOS})
	if t.ChatTemplate != "" {
		kvs = append(kvs, gguf.KV{Key: "tokenizer.chat_template", Value: t.ChatTemplate})
	}
	return kvs, nil
}

// scoresFromRanks gives each token the score -rank of the merge that produces it, which makes
// llama.cpp's score-ordered merging follow the ranks; tokens that no merge produces get a score
// below every merge so that they are never preferred.
func (t *Tokenizer) scoresFromRanks() []float32 {
	scores := make([]float32, len(t.tokens))
	for i := range scores {
		scores[i] = -1e9
	}
	for pair, r := range t.ranks {
		if id, ok := t.ids[pair[0]+pair[1]]; ok && (scores[id] == -1e9 || -float32(r) > scores[id]) {
			scores[id] = -float32(r)
		}
	}
	return scores
}
