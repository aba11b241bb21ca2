package tokenizer

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// charsmap is SentencePiece's precompiled_charsmap, the normalization table a model carries in
// its spiece.model (normalizer_spec.precompiled_charsmap) and Hugging Face in tokenizer.json's
// Precompiled normalizer (base64). For T5 it is "nmt_nfkc": NFKC plus mapping of control and
// odd whitespace characters.
//
// Layout (little-endian): a uint32 with the trie's size in bytes, the trie as that many bytes of
// uint32 units (a darts-clone double array over the UTF-8 bytes of the strings that change), then
// the replacement strings, each ended by a NUL. A key's trie value is the offset of its
// replacement in that string blob.
type charsmap struct {
	raw        []byte // as stored, so that export writes it back unchanged
	units      []uint32
	normalized []byte
}

func parseCharsmap(b []byte) (*charsmap, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("precompiled_charsmap: %d bytes, too short", len(b))
	}
	size := binary.LittleEndian.Uint32(b)
	if size%4 != 0 || size == 0 || uint64(size) > uint64(len(b)-4) {
		return nil, fmt.Errorf("precompiled_charsmap: trie size %d does not fit %d bytes", size, len(b))
	}
	c := &charsmap{raw: b, units: make([]uint32, size/4), normalized: b[4+size:]}
	for i := range c.units {
		c.units[i] = binary.LittleEndian.Uint32(b[4+4*i:])
	}
	if !utf8.Valid(c.normalized) {
		return nil, fmt.Errorf("precompiled_charsmap: replacement strings are not UTF-8")
	}
	return c, nil
}

// A darts-clone unit packs a node: bits 0-7 the label of the edge into it (bit 31 set marks a
// value unit), bit 8 "has a leaf child", bits 10-31 the offset to its children (shifted left by
// 8 more when bit 9 is set). A leaf unit holds the value in bits 0-30.
func dartsHasLeaf(u uint32) bool  { return (u>>8)&1 == 1 }
func dartsValue(u uint32) uint32  { return u & (1<<31 - 1) }
func dartsLabel(u uint32) uint32  { return u & (1<<31 | 0xFF) }
func dartsOffset(u uint32) uint32 { return (u >> 10) << ((u & (1 << 9)) >> 6) }

// lookup returns the replacement for the shortest prefix of key that the trie holds. Shortest,
// not longest as SentencePiece's own normalizer does: Hugging Face takes the first
// common-prefix result, and matching it is the point.
func (c *charsmap) lookup(key string) (string, bool) {
	u := c.units
	pos := dartsOffset(u[0])
	for i := 0; i < len(key); i++ {
		b := key[i]
		if b == 0 {
			break
		}
		pos ^= uint32(b)
		if int(pos) >= len(u) {
			return "", false
		}
		unit := u[pos]
		if dartsLabel(unit) != uint32(b) {
			return "", false
		}
		pos ^= dartsOffset(unit)
		if dartsHasLeaf(unit) {
			if int(pos) >= len(u) {
				return "", false
			}
			start := int(dartsValue(u[pos]))
			if start > len(c.normalized) {
				return "", false
			}
			end := start
			for end < len(c.normalized) && c.normalized[end] != 0 {
				end++
			}
			return string(c.normalized[start:end]), true
		}
	}
	return "", false
}

// normalize applies the table as Hugging Face's Precompiled normalizer does: text is cut into
// extended grapheme clusters; a cluster shorter than 6 bytes is looked up whole, and otherwise
// (or when the whole cluster has no entry) each of its characters is looked up on its own.
// Because lookup takes the shortest matching prefix, a whole-cluster hit on its first character
// replaces the entire cluster ("Ａ" + U+0301 becomes "A"): that is what Hugging Face does.
func (c *charsmap) normalize(s string) string {
	out := make([]byte, 0, len(s))
	state := -1
	for len(s) > 0 {
		var g string
		g, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
		if len(g) < 6 {
			if r, ok := c.lookup(g); ok {
				out = append(out, r...)
				continue
			}
		}
		for len(g) > 0 {
			_, n := utf8.DecodeRuneInString(g)
			if r, ok := c.lookup(g[:n]); ok {
				out = append(out, r...)
			} else {
				out = append(out, g[:n]...)
			}
			g = g[n:]
		}
	}
	return string(out)
}
