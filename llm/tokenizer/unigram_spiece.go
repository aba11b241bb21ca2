package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// loadSpiece is LoadHF for a directory without tokenizer.json: SentencePiece's spiece.model
// (as T5 checkpoints ship it) and tokenizer_config.json. notFound is tokenizer.json's error,
// returned when there is no spiece.model either.
func loadSpiece(dir string, notFound error) (*Tokenizer, error) {
	model, err := os.ReadFile(filepath.Join(dir, "spiece.model"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w (and no spiece.model)", notFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	tc, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := FromSentencePiece(model, tc)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer from %s: %w", filepath.Join(dir, "spiece.model"), err)
	}
	return t, nil
}

// spModel is the part of SentencePiece's ModelProto (sentencepiece_model.proto) a Unigram
// tokenizer needs.
type spModel struct {
	pieces []spPiece
	// TrainerSpec
	modelType                  int32 // 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR
	byteFallback               bool
	unkID, bosID, eosID, padID int32
	// NormalizerSpec
	charsmap               []byte
	addDummyPrefix         bool
	removeExtraWhitespaces bool
}

type spPiece struct {
	piece string
	score float32
	typ   TokenType // SentencePiece's Type enum numbers token types as GGUF (and TokenType) do
}

// parseSpModel reads the protobuf wire format of a .model file. Field numbers:
//
//	ModelProto     { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
//	                 NormalizerSpec normalizer_spec = 3; }
//	SentencePiece  { string piece = 1; float score = 2; Type type = 3 [default NORMAL]; }
//	TrainerSpec    { ModelType model_type = 3 [default UNIGRAM]; bool byte_fallback = 35;
//	                 int32 unk_id = 40 [default 0]; bos_id = 41 [1]; eos_id = 42 [2]; pad_id = 43 [-1]; }
//	NormalizerSpec { bytes precompiled_charsmap = 2; bool add_dummy_prefix = 3 [default true];
//	                 bool remove_extra_whitespaces = 4 [default true]; }
func parseSpModel(b []byte) (*spModel, error) {
	m := &spModel{modelType: 1, unkID: 0, bosID: 1, eosID: 2, padID: -1, addDummyPrefix: true, removeExtraWhitespaces: true}
	err := walkProto(b, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			p := spPiece{typ: TypeNormal}
			if err := walkProto(sub, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
				switch {
				case num == 1 && typ == protowire.BytesType:
					p.piece = string(sub)
				case num == 2 && typ == protowire.Fixed32Type:
					p.score = math.Float32frombits(uint32(v))
				case num == 3 && typ == protowire.VarintType:
					p.typ = TokenType(int32(v))
				}
				return nil
			}); err != nil {
				return fmt.Errorf("piece %d: %w", len(m.pieces), err)
			}
			m.pieces = append(m.pieces, p)
		case num == 2 && typ == protowire.BytesType:
			return walkProto(sub, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if typ != protowire.VarintType {
					return nil
				}
				switch num {
				case 3:
					m.modelType = int32(v)
				case 35:
					m.byteFallback = v != 0
				case 40:
					m.unkID = int32(v) // negative int32s are 10-byte varints; the cast undoes that
				case 41:
					m.bosID = int32(v)
				case 42:
					m.eosID = int32(v)
				case 43:
					m.padID = int32(v)
				}
				return nil
			})
		case num == 3 && typ == protowire.BytesType:
			return walkProto(sub, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
				switch {
				case num == 2 && typ == protowire.BytesType:
					m.charsmap = append([]byte(nil), sub...)
				case num == 3 && typ == protowire.VarintType:
					m.addDummyPrefix = v != 0
				case num == 4 && typ == protowire.VarintType:
					m.removeExtraWhitespaces = v != 0
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parse SentencePiece model: %w", err)
	}
	return m, nil
}

// walkProto calls f for each field of a message: v holds varint and fixed values, sub the bytes
// of length-delimited ones. Unknown fields and groups are skipped.
func walkProto(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var sub []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			v = uint64(x)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			sub, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, sub); err != nil {
			return err
		}
	}
	return nil
}

// FromSentencePiece builds a tokenizer from a SentencePiece Unigram model file (spiece.model) and
// tokenizer_config.json (nil if none), the same tokenizer transformers' T5 converter writes into
// tokenizer.json: the pieces and scores, the precompiled charsmap as normalizer, WhitespaceSplit
// (when the model removes extra whitespace) and Metaspace (prefixing "▁" when the model adds a
// dummy prefix). T5's sentinel tokens <extra_id_0>..<extra_id_N-1> follow the pieces, numbered
// downwards (<extra_id_0> last), N from tokenizer_config.json's extra_ids, else 100 for a T5
// tokenizer_class. EOS is appended by default, as T5's tokenizers do, unless the config's
// add_eos_token says otherwise.
func FromSentencePiece(spieceModel, tokenizerConfigJSON []byte) (*Tokenizer, error) {
	sp, err := parseSpModel(spieceModel)
	if err != nil {
		return nil, err
	}
	if sp.modelType != 1 {
		return nil, fmt.Errorf("SentencePiece model type %d is not supported without tokenizer.json (Unigram, 1, is)", sp.modelType)
	}
	if len(sp.pieces) == 0 {
		return nil, fmt.Errorf("SentencePiece model has no pieces")
	}
	var tc hfTokenizerConfig
	var extra struct {
		ExtraIDs       *int   `json:"extra_ids"`
		TokenizerClass string `json:"tokenizer_class"`
	}
	if len(tokenizerConfigJSON) > 0 {
		if err := json.Unmarshal(tokenizerConfigJSON, &tc); err != nil {
			return nil, fmt.Errorf("parse tokenizer_config.json: %w", err)
		}
		_ = json.Unmarshal(tokenizerConfigJSON, &extra)
	}
	nExtra := 0
	switch {
	case extra.ExtraIDs != nil:
		nExtra = max(*extra.ExtraIDs, 0)
	case strings.HasPrefix(extra.TokenizerClass, "T5Tokenizer"):
		nExtra = 100 // T5Tokenizer's default
	}

	pieces := make([]string, 0, len(sp.pieces)+nExtra)
	scores := make([]float64, 0, len(sp.pieces)+nExtra)
	for _, p := range sp.pieces {
		pieces = append(pieces, p.piece)
		scores = append(scores, float64(p.score))
	}
	for i := nExtra - 1; i >= 0; i-- {
		pieces = append(pieces, fmt.Sprintf("<extra_id_%d>", i))
		scores = append(scores, 0)
	}
	unk := int(sp.unkID)
	if unk < 0 || unk >= len(sp.pieces) {
		unk = -1
	}
	t := newUnigramTokenizer(pieces, scores, unk, sp.byteFallback)
	for i, p := range sp.pieces {
		switch p.typ {
		case TypeControl, TypeUserDefined, TypeUnused, TypeByte, TypeUnknown:
			t.types[i] = p.typ
		}
	}
	for i := len(sp.pieces); i < len(pieces); i++ {
		t.types[i] = TypeControl
	}
	if len(sp.charsmap) > 0 {
		cm, err := parseCharsmap(sp.charsmap)
		if err != nil {
			return nil, err
		}
		t.uni.normalizers = []normStep{precompiledStep{cm}}
	}
	t.uni.wsSplit = sp.removeExtraWhitespaces
	if !sp.addDummyPrefix {
		t.uni.prepend, t.uni.decode = prependNever, decodeKeep
	}

	id := func(v int32) int {
		if v < 0 || int(v) >= len(sp.pieces) {
			return -1
		}
		return int(v)
	}
	t.UNK, t.BOS, t.EOS, t.PAD = unk, id(sp.bosID), id(sp.eosID), id(sp.padID)
	if t.UNK >= 0 {
		t.types[t.UNK] = TypeUnknown
	}
	named := func(ref hfTokenRef, cur int) int {
		if ref.Content == "" {
			return cur
		}
		if id, ok := t.uni.trie.find(ref.Content); ok {
			return id
		}
		return cur
	}
	t.BOS, t.EOS, t.PAD = named(tc.BOS, t.BOS), named(tc.EOS, t.EOS), named(tc.PAD, t.PAD)
	t.AddEOS = t.EOS >= 0
	if tc.AddEOS != nil {
		t.AddEOS = *tc.AddEOS && t.EOS >= 0
	}
	if tc.AddBOS != nil {
		t.AddBOS = *tc.AddBOS && t.BOS >= 0
	}
	if t.ChatTemplate, err = parseChatTemplate(tc.ChatTemplate); err != nil {
		return nil, err
	}
	if err := t.init(); err != nil {
		return nil, err
	}
	return t, nil
}
