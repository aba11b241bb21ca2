package tokenizer

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// spieceModel writes a SentencePiece ModelProto the way T5's spiece.model is laid out: the
// pieces (<pad> and </s> CONTROL, <unk> UNKNOWN, the rest NORMAL), a TrainerSpec with pad 0,
// eos 1, unk 2 and no BOS (-1, a negative varint), and a NormalizerSpec with the charsmap.
func spieceModel(pieces []hfScoredPiece, charsmap []byte, addDummyPrefix bool, modelType uint64) []byte {
	var b []byte
	for i, p := range pieces {
		var sp []byte
		sp = protowire.AppendTag(sp, 1, protowire.BytesType)
		sp = protowire.AppendString(sp, p.Piece)
		sp = protowire.AppendTag(sp, 2, protowire.Fixed32Type)
		sp = protowire.AppendFixed32(sp, math.Float32bits(float32(p.Score)))
		typ := uint64(TypeNormal)
		switch i {
		case 0, 1:
			typ = uint64(TypeControl)
		case 2:
			typ = uint64(TypeUnknown)
		}
		if typ != uint64(TypeNormal) { // NORMAL is the default and left out, as protobuf does
			sp = protowire.AppendTag(sp, 3, protowire.VarintType)
			sp = protowire.AppendVarint(sp, typ)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, sp)
	}
	var ts []byte
	for _, f := range []struct {
		num protowire.Number
		v   int64
	}{{3, int64(modelType)}, {4, int64(len(pieces))}, {40, 2}, {41, -1}, {42, 1}, {43, 0}} {
		ts = protowire.AppendTag(ts, f.num, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(f.v))
	}
	ts = protowire.AppendTag(ts, 45, protowire.BytesType) // unk_piece: a field the reader skips
	ts = protowire.AppendString(ts, "<unk>")
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, ts)
	var ns []byte
	ns = protowire.AppendTag(ns, 1, protowire.BytesType)
	ns = protowire.AppendString(ns, "nmt_nfkc")
	ns = protowire.AppendTag(ns, 2, protowire.BytesType)
	ns = protowire.AppendBytes(ns, charsmap)
	if !addDummyPrefix {
		ns = protowire.AppendTag(ns, 3, protowire.VarintType)
		ns = protowire.AppendVarint(ns, 0)
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	return protowire.AppendBytes(b, ns)
}

// t5LikePieces is the model vocabulary of testdata/unigram_t5like.tokenizer.json without the
// sentinels, as spiece.model holds it.
func t5LikePieces(t *testing.T, tok *Tokenizer) []hfScoredPiece {
	t.Helper()
	var out []hfScoredPiece
	for id, s := range tok.uni.scores {
		if strings.HasPrefix(tok.Token(id), "<extra_id_") {
			break
		}
		out = append(out, hfScoredPiece{tok.Token(id), s})
	}
	return out
}

func TestSpieceFallbackMatchesTokenizerJSON(t *testing.T) {
	want, _ := t5Like(t)
	pieces := t5LikePieces(t, want)
	if len(pieces) != 3342 {
		t.Fatalf("%d pieces", len(pieces))
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spiece.model"), spieceModel(pieces, nmtNFKC(t), true, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	// Flan-T5's tokenizer_config.json names the class and extra_ids.
	cfg := `{"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "extra_ids": 100, "tokenizer_class": "T5Tokenizer"}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertSameUnigram(t, want, got)

	// Exported to tokenizer.json, it loads back the same.
	out := t.TempDir()
	if err := got.WriteHF(out); err != nil {
		t.Fatal(err)
	}
	back, err := LoadHF(out)
	if err != nil {
		t.Fatal(err)
	}
	assertSameUnigram(t, want, back)
}

func TestSpieceOptions(t *testing.T) {
	tests := []struct {
		name      string
		cfg       string
		dummy     bool
		wantExtra int // id of <extra_id_0>, -1 for none
		wantEOS   bool
		wantFirst string // first piece of Encode("the model")
	}{
		{"T5 class defaults to 100 sentinels", `{"tokenizer_class": "T5TokenizerFast"}`, true, 3341 + 100, true, "▁the"},
		{"explicit extra_ids", `{"extra_ids": 3}`, true, 3344, true, "▁the"},
		{"no config: no sentinels, EOS appended", ``, true, -1, true, "▁the"},
		{"add_eos_token false", `{"add_eos_token": false}`, true, -1, false, "▁the"},
		{"no dummy prefix", ``, false, -1, true, "the"},
	}
	tok, _ := t5Like(t)
	pieces := t5LikePieces(t, tok)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := FromSentencePiece(spieceModel(pieces, nmtNFKC(t), tc.dummy, 1), []byte(tc.cfg))
			if err != nil {
				t.Fatal(err)
			}
			id, ok := sp.ID("<extra_id_0>")
			if !ok {
				id = -1
			}
			if id != tc.wantExtra {
				t.Errorf("<extra_id_0> = %d, want %d", id, tc.wantExtra)
			}
			if id >= 0 && sp.TokenType(id) != TypeControl {
				t.Errorf("<extra_id_0> has type %d, want control", sp.TokenType(id))
			}
			ids := sp.Encode("the model", false)
			if sp.AddEOS != tc.wantEOS || (ids[len(ids)-1] == 1) != tc.wantEOS {
				t.Errorf("AddEOS %v, ids %v; want EOS appended %v", sp.AddEOS, ids, tc.wantEOS)
			}
			if got := sp.Token(ids[0]); got != tc.wantFirst {
				t.Errorf("first piece %q, want %q", got, tc.wantFirst)
			}
			if sp.BOS != -1 || sp.EOS != 1 || sp.PAD != 0 || sp.UNK != 2 {
				t.Errorf("bos %d eos %d pad %d unk %d", sp.BOS, sp.EOS, sp.PAD, sp.UNK)
			}
		})
	}
}

func TestSpieceErrors(t *testing.T) {
	tok, _ := t5Like(t)
	pieces := t5LikePieces(t, tok)[:10]
	good := spieceModel(pieces, nil, true, 1)
	tests := []struct {
		name  string
		model []byte
	}{
		{"BPE model", spieceModel(pieces, nil, true, 2)},
		{"truncated", good[:len(good)-3]},
		{"no pieces", nil},
		{"bad charsmap", spieceModel(pieces, []byte{9, 0, 0, 0}, true, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := FromSentencePiece(tc.model, nil); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := FromSentencePiece(good, nil); err != nil {
		t.Errorf("model without a charsmap: %v", err)
	}
	if _, err := LoadHF(t.TempDir()); err == nil || !strings.Contains(err.Error(), "spiece.model") {
		t.Errorf("empty directory: %v", err)
	}
}
