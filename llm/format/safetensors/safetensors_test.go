package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// handMade builds a file byte by byte as the format description says, independent of Write.
func handMade(header string, data []byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestReadHandMadeFile(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[4,8]},` +
		`"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"c":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}`
	data := []byte{0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f, 0x49, 0x40, 0x00, 0x00, 0x20, 0x41}
	b := handMade(header, data)
	f, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
	tests := []struct {
		name  string
		shape []int
		want  []float32
	}{
		{"a", []int{2}, []float32{1, -2}},
		{"b", []int{1, 2}, []float32{1, 3.140625}},
		{"c", []int{}, []float32{10}},
	}
	for _, tc := range tests {
		got, err := f.Float32(tc.name)
		info, _ := f.Tensor(tc.name)
		if err != nil || !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(info.Shape, tc.shape) {
			t.Errorf("%s: %v shape %v err %v, want %v shape %v", tc.name, got, info.Shape, err, tc.want, tc.shape)
		}
	}
	if f.Tensors[0].Name != "a" || f.Tensors[2].Name != "c" {
		t.Errorf("tensors not in data order: %v", f.Tensors)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	tensors := []Tensor{
		{Name: "model.embed_tokens.weight", DType: F32, Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, -6.5}},
		{Name: "model.norm.weight", DType: F16, Shape: []int{3}, Data: []float32{0.5, 1, 65504}},
		{Name: "lm_head.weight", DType: BF16, Shape: []int{1, 3}, Data: []float32{1, -1.5, 256}},
	}
	var buf bytes.Buffer
	if err := Write(&buf, tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if hl := binary.LittleEndian.Uint64(b); hl%8 != 0 {
		t.Errorf("header length %d not a multiple of 8", hl)
	}
	f, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tensors {
		got, err := f.Float32(tt.Name)
		info, _ := f.Tensor(tt.Name)
		if err != nil || !reflect.DeepEqual(got, tt.Data) || info.DType != tt.DType || !reflect.DeepEqual(info.Shape, tt.Shape) {
			t.Errorf("%s: %v %+v err %v", tt.Name, got, info, err)
		}
	}
	if f.Metadata["format"] != "pt" {
		t.Errorf("metadata %v", f.Metadata)
	}
}

func TestWriteDirShardsAndIndex(t *testing.T) {
	var tensors []Tensor
	for i := 0; i < 5; i++ {
		data := make([]float32, 100)
		for j := range data {
			data[j] = float32(i*1000 + j)
		}
		tensors = append(tensors, Tensor{Name: "layer" + string(rune('a'+i)) + ".weight", DType: F32, Shape: []int{10, 10}, Data: data})
	}
	dir := t.TempDir()
	files, err := WriteDir(dir, tensors, map[string]string{"format": "pt"}, 900) // 400 bytes each: two per shard
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors", IndexFile}
	if !reflect.DeepEqual(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	var idx Index
	js, _ := os.ReadFile(filepath.Join(dir, IndexFile))
	if err := json.Unmarshal(js, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.Metadata["total_size"] != float64(2000) || idx.WeightMap["layere.weight"] != "model-00003-of-00003.safetensors" {
		t.Errorf("index %s", js)
	}
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if len(d.Names()) != 5 {
		t.Errorf("names %v", d.Names())
	}
	for _, tt := range tensors {
		got, err := d.Float32(tt.Name)
		if err != nil || !reflect.DeepEqual(got, tt.Data) {
			t.Errorf("%s: err %v", tt.Name, err)
		}
	}
	// Unsharded: one model.safetensors, no index.
	single := t.TempDir()
	files, err = WriteDir(single, tensors, nil, 0)
	if err != nil || !reflect.DeepEqual(files, []string{SingleFile}) {
		t.Fatalf("files %v err %v", files, err)
	}
	d2, err := OpenDir(single)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if got, _ := d2.Float32("layerc.weight"); !reflect.DeepEqual(got, tensors[2].Data) {
		t.Error("single-file tensor differs")
	}
}

func TestReadRejectsBadFiles(t *testing.T) {
	tests := []struct {
		name   string
		header string
		data   int
		match  string
	}{
		{"offsets disagree with shape", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 8, "takes 8 bytes"},
		{"past the end", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4, "outside"},
		{"overlap", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8, "overlap"},
		{"unknown dtype", `{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}`, 2, "unknown dtype"},
		{"absurd shape", `{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, 0, "more values"},
		{"not JSON", `{"a":`, 0, "header JSON"},
		{"bad metadata", `{"__metadata__":{"n":1}}`, 0, "__metadata__"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := handMade(tc.header, make([]byte, tc.data))
			_, err := Read(bytes.NewReader(b), int64(len(b)))
			if err == nil || !strings.Contains(err.Error(), tc.match) {
				t.Errorf("error %v, want one containing %q", err, tc.match)
			}
		})
	}
	b := binary.LittleEndian.AppendUint64(nil, 1<<40)
	if _, err := Read(bytes.NewReader(b), int64(len(b))); err == nil {
		t.Error("accepted a header length larger than the file")
	}
	// A dtype that exists but does not decode to float32 opens, and reading it says why.
	b = handMade(`{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}`, make([]byte, 8))
	f, err := Read(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Float32("ids"); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Errorf("Float32 of I64: %v", err)
	}
	if err := Write(&bytes.Buffer{}, []Tensor{{Name: "x", DType: F32, Shape: []int{2}, Data: []float32{1}}}, nil); err == nil {
		t.Error("Write accepted a shape/data mismatch")
	}
	// An index naming a shard that does not hold the tensor.
	dir := t.TempDir()
	if _, err := WriteDir(dir, []Tensor{{Name: "x", DType: F32, Shape: []int{1}, Data: []float32{1}}}, nil, 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, IndexFile), []byte(`{"metadata":{},"weight_map":{"y":"model.safetensors"}}`), 0o644)
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Errorf("OpenDir with a wrong index: %v", err)
	}
	if _, err := OpenDir(t.TempDir()); err == nil {
		t.Error("OpenDir of an empty directory succeeded")
	}
}

// Corrupted files fail with errors, never panics or giant allocations.
func TestReadCorruptedFilesDoesNotPanic(t *testing.T) {
	var buf bytes.Buffer
	err := Write(&buf, []Tensor{{Name: "a", DType: F16, Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "b", DType: F32, Shape: []int{3}, Data: []float32{1, 2, 3}}}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 3000; i++ {
		b := append([]byte(nil), good...)
		for k := 0; k < 1+r.IntN(3); k++ {
			b[r.IntN(len(b))] = "0123456789[]{},:\"-eE"[r.IntN(20)]
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
