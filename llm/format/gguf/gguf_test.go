package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// The real model shared by the project (see ../shared/models/README.md); never copied into the repo.
const stories260K = "../../../../shared/models/stories260K.gguf"

func TestOpenStories260K(t *testing.T) {
	f, err := Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Version != 3 || f.Alignment != 32 {
		t.Errorf("version %d alignment %d, want 3 and 32", f.Version, f.Alignment)
	}
	if a, _ := f.Metadata.String("general.architecture"); a != "llama" {
		t.Errorf("architecture %q", a)
	}
	for key, want := range map[string]uint64{
		"llama.embedding_length": 64, "llama.block_count": 5, "llama.attention.head_count": 8,
		"llama.attention.head_count_kv": 4, "llama.feed_forward_length": 172, "tokenizer.ggml.bos_token_id": 1,
	} {
		if got, ok := f.Metadata.Uint(key); !ok || got != want {
			t.Errorf("%s = %d (present %v), want %d", key, got, ok, want)
		}
	}
	if eps, ok := f.Metadata.Float("llama.attention.layer_norm_rms_epsilon"); !ok || eps < 0.99e-5 || eps > 1.01e-5 {
		t.Errorf("rms eps %g", eps)
	}
	tokens, _ := f.Metadata.Strings("tokenizer.ggml.tokens")
	scores, _ := f.Metadata.Float32s("tokenizer.ggml.scores")
	types, _ := f.Metadata.Ints("tokenizer.ggml.token_type")
	if len(tokens) != 512 || len(scores) != 512 || len(types) != 512 {
		t.Fatalf("tokenizer arrays: %d tokens, %d scores, %d types", len(tokens), len(scores), len(types))
	}
	if tokens[1] != "<s>" || tokens[3] != "<0x00>" || types[3] != 6 || types[1] != 3 {
		t.Errorf("tokens[1]=%q tokens[3]=%q types[1]=%d types[3]=%d", tokens[1], tokens[3], types[1], types[3])
	}
	if len(f.Tensors) != 3+5*9 {
		t.Errorf("%d tensors", len(f.Tensors))
	}
	q, ok := f.Tensor("blk.0.attn_k.weight")
	if !ok || !reflect.DeepEqual(q.Dims, []uint64{64, 32}) || !reflect.DeepEqual(q.Shape(), []int{32, 64}) || q.Type != F32 {
		t.Errorf("attn_k info %+v shape %v", q, q.Shape())
	}
	// output.weight equals token_embd.weight in this model (tied).
	emb, err := f.Float32("token_embd.weight")
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Float32("output.weight")
	if err != nil {
		t.Fatal(err)
	}
	if len(emb) != 64*512 || !reflect.DeepEqual(emb, out) {
		t.Errorf("token_embd (%d values) differs from output.weight", len(emb))
	}
	// Float32 agrees with decoding the raw bytes.
	raw, _ := f.Raw("blk.3.ffn_norm.weight")
	norm, _ := f.Float32("blk.3.ffn_norm.weight")
	for i := range norm {
		if bits := binary.LittleEndian.Uint32(raw[4*i:]); bits != math.Float32bits(norm[i]) {
			t.Fatalf("value %d differs from raw bytes", i)
		}
	}
	if _, err := f.Float32("no.such.tensor"); err == nil {
		t.Error("reading a missing tensor succeeded")
	}
}

// Writing stories260K back out with the same metadata and tensors, in the same order, gives the
// same bytes as the original (which llama.cpp's writer produced): header, padding and data alike.
func TestRewriteStories260KIsByteIdentical(t *testing.T) {
	f, err := Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := NewWriter()
	for _, kv := range f.Metadata.KVs() {
		if err := w.Metadata.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for _, ti := range f.Tensors {
		data, err := f.Float32(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(ti.Name, ti.Dims, F32, data); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "copy.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(stories260K)
	copied, _ := os.ReadFile(path)
	if !bytes.Equal(orig, copied) {
		t.Errorf("rewritten file differs: %d bytes vs %d", len(copied), len(orig))
	}
	g, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !reflect.DeepEqual(g.Metadata.KVs(), f.Metadata.KVs()) || !reflect.DeepEqual(g.Tensors, f.Tensors) {
		t.Error("re-read metadata or tensor infos differ")
	}
}

// Every metadata type, arrays included, survives a write and a read with its exact Go type.
func TestMetadataAllTypesRoundTrip(t *testing.T) {
	kvs := []KV{
		{"u8", uint8(200)}, {"i8", int8(-5)}, {"u16", uint16(60000)}, {"i16", int16(-30000)},
		{"u32", uint32(4000000000)}, {"i32", int32(-2000000000)}, {"f32", float32(1.5)}, {"bool", true},
		{"str", "héllo ▁ 世界"}, {"u64", uint64(1) << 63}, {"i64", int64(-1) << 62}, {"f64", 2.25},
		{"a.u8", []uint8{1, 2}}, {"a.i8", []int8{-1}}, {"a.u16", []uint16{7}}, {"a.i16", []int16{-7}},
		{"a.u32", []uint32{1, 2, 3}}, {"a.i32", []int32{1, -2, 3}}, {"a.f32", []float32{0.5, -0.25}},
		{"a.bool", []bool{true, false}}, {"a.str", []string{"a", "", "<0x0A>"}}, {"a.u64", []uint64{9}},
		{"a.i64", []int64{-9}}, {"a.f64", []float64{1e300}}, {"a.empty", []string{}},
		{"general.alignment", uint32(64)},
	}
	w := NewWriter()
	for _, kv := range kvs {
		if err := w.Metadata.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	f16vals := []float32{1, -2, 0.1, 65504, 3.14159}
	bf16vals := []float32{1, -2, 0.1, 1e20, 3.14159}
	if err := w.AddTensor("a", []uint64{5}, F16, f16vals); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", []uint64{5, 1}, BF16, bf16vals); err != nil {
		t.Fatal(err)
	}
	q8 := make([]byte, 34)
	q8[1] = 0x3c // d = 1
	q8[2] = 0xff // -1
	if err := w.AddRawTensor("c", []uint64{32}, Q8_0, q8); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata.KVs(), kvs) {
		t.Errorf("metadata differs:\n got %#v\nwant %#v", f.Metadata.KVs(), kvs)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 || buf.Len()%64 != 0 {
		t.Errorf("alignment %d, data offset %d, size %d", f.Alignment, f.DataOffset, buf.Len())
	}
	for _, ti := range f.Tensors {
		if ti.Offset%64 != 0 {
			t.Errorf("tensor %s at offset %d", ti.Name, ti.Offset)
		}
	}
	a, _ := f.Float32("a")
	b, _ := f.Float32("b")
	c, _ := f.Float32("c")
	for i := range f16vals {
		if a[i] != half.F16ToF32(half.F32ToF16(f16vals[i])) || b[i] != half.BF16ToF32(half.F32ToBF16(bf16vals[i])) {
			t.Errorf("value %d: f16 %g bf16 %g", i, a[i], b[i])
		}
	}
	if a[3] != 65504 || b[0] != 1 || c[0] != -1 || c[1] != 0 {
		t.Errorf("a[3]=%g b[0]=%g c[0]=%g c[1]=%g", a[3], b[0], c[0], c[1])
	}
	if u, ok := f.Metadata.Uint("i8"); ok {
		t.Errorf("negative int8 read as Uint %d", u)
	}
	if v, ok := f.Metadata.Uint("u8"); !ok || v != 200 {
		t.Errorf("Uint(u8) = %d %v", v, ok)
	}
	if v, ok := f.Metadata.Ints("a.i32"); !ok || !reflect.DeepEqual(v, []int{1, -2, 3}) {
		t.Errorf("Ints(a.i32) = %v", v)
	}
	if _, ok := f.Metadata.Strings("a.i32"); ok {
		t.Error("Strings read an int array")
	}
}

func TestWriterRejectsBadTensors(t *testing.T) {
	tests := []struct {
		name string
		add  func(w *Writer) error
	}{
		{"count mismatch", func(w *Writer) error { return w.AddTensor("x", []uint64{3, 2}, F32, make([]float32, 5)) }},
		{"type without a quantizer", func(w *Writer) error { return w.AddTensor("x", []uint64{256}, Q5_K, make([]float32, 256)) }},
		{"quantized, not whole blocks", func(w *Writer) error { return w.AddTensor("x", []uint64{16}, Q8_0, make([]float32, 16)) }},
		{"duplicate", func(w *Writer) error {
			_ = w.AddTensor("x", []uint64{1}, F32, []float32{1})
			return w.AddTensor("x", []uint64{1}, F32, []float32{1})
		}},
		{"name too long", func(w *Writer) error { return w.AddTensor(strings.Repeat("n", 64), []uint64{1}, F32, []float32{1}) }},
		{"five dims", func(w *Writer) error { return w.AddTensor("x", []uint64{1, 1, 1, 1, 1}, F32, []float32{1}) }},
		{"raw size wrong", func(w *Writer) error { return w.AddRawTensor("x", []uint64{32}, Q4_0, make([]byte, 17)) }},
		{"raw not whole blocks", func(w *Writer) error { return w.AddRawTensor("x", []uint64{16}, Q4_0, make([]byte, 9)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.add(NewWriter()); err == nil {
				t.Error("accepted")
			}
		})
	}
	var m Metadata
	if err := m.Set("x", 3); err == nil {
		t.Error("metadata accepted a Go int (no GGUF width)")
	}
	w := NewWriter()
	_ = w.Metadata.Set("general.alignment", uint32(48))
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("alignment 48 accepted")
	}
}

func TestReadRejectsBadFiles(t *testing.T) {
	good := func() []byte {
		w := NewWriter()
		_ = w.Metadata.Set("general.architecture", "llama")
		_ = w.AddTensor("t", []uint64{4}, F32, []float32{1, 2, 3, 4})
		var buf bytes.Buffer
		_, _ = w.WriteTo(&buf)
		return buf.Bytes()
	}
	// Byte offsets in good(): magic 0, version 4, tensor count 8, kv count 16, first key length 24.
	tests := []struct {
		name  string
		edit  func(b []byte) []byte
		match string
	}{
		{"wrong magic", func(b []byte) []byte { b[0] = 'X'; return b }, "not a GGUF"},
		{"version 1", func(b []byte) []byte { b[4] = 1; return b }, "version 1"},
		{"version 4", func(b []byte) []byte { b[4] = 4; return b }, "version 4"},
		{"big endian", func(b []byte) []byte { b[4], b[7] = 0, 3; return b }, "big-endian"},
		{"truncated header", func(b []byte) []byte { return b[:30] }, "ends inside"},
		{"absurd kv count", func(b []byte) []byte { b[23] = 0x7f; return b }, "more than"},
		{"absurd string length", func(b []byte) []byte { b[31] = 0x7f; return b }, "past the end"},
		{"truncated data", func(b []byte) []byte { return b[:len(b)-40] }, "past the end"},
		{"absurd dims", func(b []byte) []byte {
			// the tensor info follows the one KV: name "t" (8+1 bytes), n_dims, then dims[0]
			i := bytes.Index(b, []byte{1, 0, 0, 0, 0, 0, 0, 0, 't'}) + 9 + 4
			binary.LittleEndian.PutUint64(b[i:], 1<<62)
			return b
		}, "more values"},
		{"bad value type", func(b []byte) []byte { b[32+len("general.architecture")] = 99; return b }, "unknown metadata value type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(good())
			_, err := Read(bytes.NewReader(b), int64(len(b)))
			if err == nil || !strings.Contains(err.Error(), tc.match) {
				t.Errorf("error %v, want one containing %q", err, tc.match)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Error("opened a missing file")
	}
}

// Corrupted files fail with errors, never panics or giant allocations.
func TestReadCorruptedFilesDoesNotPanic(t *testing.T) {
	w := NewWriter()
	_ = w.Metadata.Set("general.architecture", "llama")
	_ = w.Metadata.Set("tokenizer.ggml.tokens", []string{"a", "bb", "ccc"})
	_ = w.Metadata.Set("tokenizer.ggml.scores", []float32{0, -1, -2})
	_ = w.AddTensor("x", []uint64{4, 2}, F16, []float32{1, 2, 3, 4, 5, 6, 7, 8})
	q := make([]byte, 210)
	_ = w.AddRawTensor("q", []uint64{256}, Q6_K, q)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		b := append([]byte(nil), good...)
		for k := 0; k < 1+r.IntN(4); k++ {
			b[r.IntN(len(b))] = byte(r.IntN(256))
		}
		if r.IntN(4) == 0 {
			b = b[:r.IntN(len(b))]
		}
		f, err := Read(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			continue
		}
		for _, ti := range f.Tensors {
			_, _ = f.Float32(ti.Name)
		}
	}
}
