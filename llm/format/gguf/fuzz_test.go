package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"runtime"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// allocated returns the bytes fn allocates (the heap's running total, read around it: a fuzz
// worker runs one input at a time, so the total is fn's).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// readBudget is what reading an n-byte file may allocate: a constant for buffers plus a bounded
// multiple of the file size (metadata and tensor infos held as Go values). A declared size that
// were trusted (a 2^60-element array, a 2^40-byte string) would blow far past it.
func readBudget(n int) uint64 { return 4<<20 + 64*uint64(n) }

// smallGGUF is a file with every metadata kind and three tensor types, for seeds.
func smallGGUF(tb testing.TB) []byte {
	tb.Helper()
	w := NewWriter()
	for _, kv := range []KV{
		{"general.architecture", "llama"}, {"u8", uint8(7)}, {"i64", int64(-1)}, {"f32", float32(0.5)},
		{"bool", true}, {"a.str", []string{"a", "", "<0x0A>"}}, {"a.i32", []int32{1, -2}}, {"general.alignment", uint32(32)},
	} {
		if err := w.Metadata.Set(kv.Key, kv.Value); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.AddTensor("f32", []uint64{2, 2}, F32, []float32{1, 2, 3, 4}); err != nil {
		tb.Fatal(err)
	}
	if err := w.AddTensor("f16", []uint64{3}, F16, []float32{1, -2, 0.5}); err != nil {
		tb.Fatal(err)
	}
	if err := w.AddRawTensor("q8", []uint64{32}, Q8_0, make([]byte, 34)); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzRead: any bytes read as a GGUF file give a File or an error, never a panic, and reading
// allocates no more than readBudget however large the sizes the header declares. Every tensor of a
// File that reads can be asked for: its bytes or a clear error.
func FuzzRead(f *testing.F) {
	good := smallGGUF(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte("GGUF"))
	f.Add([]byte("GGUF\x01\x00\x00\x00"))
	// A header that claims 2^62 metadata entries, and one whose first string claims 2^60 bytes.
	huge := binary.LittleEndian.AppendUint32([]byte("GGUF"), 3)
	huge = binary.LittleEndian.AppendUint64(huge, 0)
	f.Add(binary.LittleEndian.AppendUint64(huge, 1<<62))
	f.Add(binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(huge, 1), 1<<60))
	f.Fuzz(func(t *testing.T, data []byte) {
		var file *File
		var err error
		if n := allocated(func() { file, err = Read(bytes.NewReader(data), int64(len(data))) }); n > readBudget(len(data)) {
			t.Fatalf("reading %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		for _, ti := range file.Tensors {
			got, ok := file.Tensor(ti.Name)
			if !ok || !reflect.DeepEqual(got, ti) {
				t.Fatalf("Tensor(%q) = %+v %v, want %+v", ti.Name, got, ok, ti)
			}
			if raw, err := file.Raw(ti.Name); err == nil {
				if want, _ := ti.Bytes(); uint64(len(raw)) != want {
					t.Fatalf("tensor %s: %d raw bytes, want %d", ti.Name, len(raw), want)
				}
			}
			if vals, err := file.Float32(ti.Name); err == nil && uint64(len(vals)) != ti.Elements() {
				t.Fatalf("tensor %s: %d values, want %d", ti.Name, len(vals), ti.Elements())
			}
		}
	})
}

// FuzzWriteRead: a file written by Writer reads back with the same metadata (keys, order, exact
// Go types and values) and the same tensors (infos, bytes, values).
func FuzzWriteRead(f *testing.F) {
	f.Add("tokenizer.ggml.model", "gpt2", uint32(7), -1.5, "blk.0.attn_q.weight", []byte{0, 0, 128, 63, 0, 0, 0, 64}, uint8(0))
	f.Add("", "", uint32(0), math.Inf(1), "t", []byte{}, uint8(3))
	f.Add("k\x00\xff", "▁héllo\n", uint32(math.MaxUint32), math.NaN(), "a/b.c", bytes.Repeat([]byte{0xff}, 68), uint8(2))
	f.Fuzz(func(t *testing.T, key, value string, u uint32, x float64, name string, data []byte, align uint8) {
		kvs := []KV{
			{"general.architecture", "llama"},
			{"fuzz." + key, value},
			{"u32", u},
			{"f64", x},
			{"a.u8", append([]uint8{}, data...)},
			{"a.str", []string{key, value, ""}},
			{"general.alignment", uint32(1) << (align % 8)},
		}
		if len(name) == 0 || len(name) > maxNameLen {
			name = "t"
		}
		w := NewWriter()
		for _, kv := range kvs {
			if err := w.Metadata.Set(kv.Key, kv.Value); err != nil {
				t.Fatal(err)
			}
		}
		values := make([]float32, len(data)/4)
		for i := range values {
			values[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		dims := []uint64{uint64(len(values))}
		if len(values) == 0 {
			dims = []uint64{0}
		}
		if err := w.AddTensor(name, dims, F32, values); err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(name+".h", []uint64{1, uint64(len(values))}, F16, values); err != nil && len(name) < maxNameLen-1 {
			t.Fatal(err)
		}
		// An empty tensor whose other dimension is as large as the fuzzer likes.
		if err := w.AddRawTensor("empty", []uint64{uint64(u) + 1, 0}, F32, nil); err != nil && name != "empty" {
			t.Fatal(err)
		}
		q8 := make([]byte, 34*(1+len(data)/34))
		copy(q8, data)
		if err := w.AddRawTensor("q8", []uint64{32 * uint64(len(q8)/34)}, Q8_0, q8); err != nil && name != "q8" {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		file, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("reading what Writer wrote: %v", err)
		}
		if got := file.Metadata.KVs(); !sameKVs(got, kvs) {
			t.Fatalf("metadata\n got %#v\nwant %#v", got, kvs)
		}
		if file.Alignment != int(uint32(1)<<(align%8)) {
			t.Fatalf("alignment %d", file.Alignment)
		}
		got, err := file.Float32(name)
		if err != nil || len(got) != len(values) {
			t.Fatalf("tensor %s: %d values, err %v", name, len(got), err)
		}
		for i := range values {
			if math.Float32bits(got[i]) != math.Float32bits(values[i]) {
				t.Fatalf("tensor %s value %d: %x, want %x", name, i, math.Float32bits(got[i]), math.Float32bits(values[i]))
			}
		}
		if h, err := file.Float32(name + ".h"); err == nil {
			for i := range values {
				want := half.F16ToF32(half.F32ToF16(values[i]))
				if math.Float32bits(h[i]) != math.Float32bits(want) && !(math.IsNaN(float64(h[i])) && math.IsNaN(float64(want))) {
					t.Fatalf("F16 value %d: %g, want %g", i, h[i], want)
				}
			}
		}
		if e, ok := file.Tensor("empty"); name != "empty" && (!ok || e.Elements() != 0 || e.Dims[0] != uint64(u)+1) {
			t.Fatalf("empty tensor: %+v %v", e, ok)
		}
		if name != "q8" {
			raw, err := file.Raw("q8")
			if err != nil || !bytes.Equal(raw, q8) {
				t.Fatalf("Q8_0 tensor: err %v, bytes differ: %v", err, !bytes.Equal(raw, q8))
			}
		}
	})
}

// sameKVs is reflect.DeepEqual with NaN equal to NaN (a float64 written and read back keeps its bits).
func sameKVs(a, b []KV) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, xok := a[i].Value.(float64)
		y, yok := b[i].Value.(float64)
		if xok && yok && a[i].Key == b[i].Key && math.Float64bits(x) == math.Float64bits(y) {
			continue
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}
