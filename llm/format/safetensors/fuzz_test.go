package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// allocated returns the bytes fn allocates (a fuzz worker runs one input at a time, so the heap's
// running total around fn is fn's).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// readBudget is what reading an n-byte file may allocate: a constant plus a bounded multiple of
// the file size (the header and its decoded JSON). A trusted header length or shape would not fit.
func readBudget(n int) uint64 { return 4<<20 + 64*uint64(n) }

func writeSeed(tb testing.TB, tensors []Tensor, md map[string]string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tensors, md); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzRead: any bytes read as a safetensors file give a File or an error, never a panic, within
// readBudget; every tensor of a File that reads gives its bytes, and its values when it has a
// float dtype.
func FuzzRead(f *testing.F) {
	f.Add(writeSeed(f, []Tensor{{Name: "w", DType: F32, Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}}, {Name: "b", DType: BF16, Shape: []int{3}, Data: []float32{1, 2, 3}}},
		map[string]string{"format": "pt"}))
	f.Add(writeSeed(f, []Tensor{{Name: "scalar", DType: F16, Data: []float32{1}}, {Name: "empty", DType: F32, Shape: []int{0, 5}}}, nil))
	hdr := func(json string) []byte {
		return append(binary.LittleEndian.AppendUint64(nil, uint64(len(json))), json...)
	}
	f.Add(hdr(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`))
	f.Add(hdr(`{"a":{"dtype":"I8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}` + "\x00\x00\x00"))
	f.Add(hdr(`{"__metadata__":{"k":1}}`))
	f.Add(binary.LittleEndian.AppendUint64(nil, 1<<62))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var file *File
		var err error
		if n := allocated(func() { file, err = Read(bytes.NewReader(data), int64(len(data))) }); n > readBudget(len(data)) {
			t.Fatalf("reading %d bytes allocated %d bytes", len(data), n)
		}
		if err != nil {
			return
		}
		for _, ti := range file.Tensors {
			raw, err := file.Raw(ti.Name)
			if err != nil || int64(len(raw)) != ti.End-ti.Begin {
				t.Fatalf("tensor %s: %d bytes, err %v; want %d", ti.Name, len(raw), err, ti.End-ti.Begin)
			}
			vals, err := file.Float32(ti.Name)
			switch ti.DType {
			case F32, F16, BF16:
				if err != nil || int64(len(vals)) != ti.Elements() {
					t.Fatalf("tensor %s: %d values, err %v; want %d", ti.Name, len(vals), err, ti.Elements())
				}
			}
		}
	})
}

// FuzzWriteRead: tensors and metadata written by Write read back the same: names, dtypes, shapes,
// values (exactly for F32, as the half conversions give for F16 and BF16) and the metadata map.
func FuzzWriteRead(f *testing.F) {
	f.Add("model.layers.0.mlp.weight", "format", "pt", []byte{0, 0, 128, 63, 0, 0, 0, 64}, uint8(2))
	f.Add("__metadata", "", "", []byte{}, uint8(0))
	f.Add("naïve \"quoted\" ✓", "k\x00", "\xff", bytes.Repeat([]byte{0xff, 0x7f}, 9), uint8(5))
	f.Fuzz(func(t *testing.T, name, key, value string, data []byte, rows uint8) {
		if name == "" || name == "__metadata__" {
			name = "t" + name
		}
		values := make([]float32, len(data)/4)
		for i := range values {
			values[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		}
		shape := []int{len(values)}
		if r := int(rows%4) + 1; len(values)%r == 0 {
			shape = []int{r, len(values) / r}
		}
		tensors := []Tensor{{Name: name, DType: F32, Shape: shape, Data: values}, {Name: name + ".f16", DType: F16, Shape: shape, Data: values}, {Name: name + ".bf16", DType: BF16, Shape: shape, Data: values}}
		md := map[string]string{key: value}
		var buf bytes.Buffer
		if err := Write(&buf, tensors, md); err != nil {
			t.Fatal(err)
		}
		file, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("reading what Write wrote: %v", err)
		}
		// JSON keeps strings as valid UTF-8: invalid bytes come back as U+FFFD, as in any JSON.
		wantMD := map[string]string{}
		for k, v := range md {
			wantMD[toValidJSON(k)] = toValidJSON(v)
		}
		if !reflect.DeepEqual(file.Metadata, wantMD) {
			t.Fatalf("metadata %q, want %q", file.Metadata, wantMD)
		}
		for _, want := range tensors {
			ti, ok := file.Tensor(toValidJSON(want.Name))
			if !ok || ti.DType != want.DType || !reflect.DeepEqual(ti.Shape, want.Shape) {
				t.Fatalf("tensor %q: %+v %v, want dtype %s shape %v", want.Name, ti, ok, want.DType, want.Shape)
			}
			got, err := file.Float32(ti.Name)
			if err != nil || len(got) != len(values) {
				t.Fatalf("tensor %q: %d values, err %v", ti.Name, len(got), err)
			}
			for i, v := range values {
				switch want.DType {
				case F16:
					v = half.F16ToF32(half.F32ToF16(v))
				case BF16:
					v = half.BF16ToF32(half.F32ToBF16(v))
				}
				if math.Float32bits(got[i]) != math.Float32bits(v) && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(v))) {
					t.Fatalf("tensor %q value %d: %g, want %g", ti.Name, i, got[i], v)
				}
			}
		}
	})
}

// toValidJSON is what a Go string becomes after encoding/json writes it and reads it back: each
// byte that is not part of valid UTF-8 becomes its own U+FFFD.
func toValidJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r) // ranging over a string yields U+FFFD for each invalid byte
	}
	return b.String()
}
