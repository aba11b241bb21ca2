// Package safetensors reads and writes Hugging Face safetensors files and sharded checkpoints.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the end of the header),
// plus an optional "__metadata__" object of string to string, then the raw little-endian data.
// Shapes are row-major (PyTorch order): a linear layer's weight is [out, in].
//
// A sharded checkpoint is a directory with model-0000i-of-0000n.safetensors files and
// model.safetensors.index.json, whose "weight_map" says which file holds each tensor.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"unsafe"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// The dtypes this package decodes and writes.
const (
	F32  = "F32"
	F16  = "F16"
	BF16 = "BF16"
)

// maxHeaderBytes bounds the JSON header, as the reference implementation does (100 MB).
const maxHeaderBytes = 100_000_000

// dtypeSizes lists every dtype the format defines, so files holding others still open.
var dtypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType string
	Shape []int // row-major
	Begin int64 // data offsets relative to the start of the data section
	End   int64
}

// Elements is the number of values the tensor holds.
func (t TensorInfo) Elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// File is an open safetensors file; tensor data is read on demand with ReadAt.
type File struct {
	Metadata map[string]string
	Tensors  []TensorInfo // in data order

	r          io.ReaderAt
	dataOffset int64
	closer     io.Closer
	byName     map[string]int
}

// Open opens and parses a safetensors file. Close it when done.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("open safetensors %s: %w", path, err)
	}
	f, err := Read(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	f.closer = fh
	return f, nil
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Read parses a safetensors file of the given size from r, which must stay usable while the File is.
func Read(r io.ReaderAt, size int64) (*File, error) {
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeaderBytes || int64(n) > size-8 {
		return nil, fmt.Errorf("header length %d does not fit a %d-byte file", n, size)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fmt.Errorf("header JSON: %w", err)
	}
	f := &File{r: r, dataOffset: 8 + int64(n), byName: map[string]int{}}
	dataSize := size - f.dataOffset
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &f.Metadata); err != nil {
				return nil, fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", name, err)
		}
		t := TensorInfo{Name: name, DType: e.DType, Shape: e.Shape}
		size, ok := dtypeSizes[e.DType]
		if !ok {
			return nil, fmt.Errorf("tensor %s: unknown dtype %q", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("tensor %s: data_offsets must be [begin, end]", name)
		}
		// A shape with a zero dimension holds nothing, however large its other dimensions: only
		// the others of a non-empty shape are bounded by the data (a [1, 0] tensor in a file with
		// no data bytes reads).
		empty := false
		for _, d := range e.Shape {
			empty = empty || d == 0
		}
		elems := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("tensor %s: negative dimension in shape %v", name, e.Shape)
			}
			if !empty && elems > dataSize/int64(d) {
				return nil, fmt.Errorf("tensor %s: shape %v holds more values than the file has bytes", name, e.Shape)
			}
			elems *= int64(d)
		}
		t.Begin, t.End = e.DataOffsets[0], e.DataOffsets[1]
		if t.Begin < 0 || t.End < t.Begin || t.End > dataSize {
			return nil, fmt.Errorf("tensor %s: data_offsets [%d, %d] outside the %d data bytes", name, t.Begin, t.End, dataSize)
		}
		if t.End-t.Begin != t.Elements()*int64(size) {
			return nil, fmt.Errorf("tensor %s: %s shape %v takes %d bytes, offsets give %d", name, e.DType, e.Shape, t.Elements()*int64(size), t.End-t.Begin)
		}
		f.Tensors = append(f.Tensors, t)
	}
	sort.Slice(f.Tensors, func(i, j int) bool {
		if f.Tensors[i].Begin != f.Tensors[j].Begin {
			return f.Tensors[i].Begin < f.Tensors[j].Begin
		}
		return f.Tensors[i].Name < f.Tensors[j].Name
	})
	for i, t := range f.Tensors {
		if i > 0 && t.Begin < f.Tensors[i-1].End {
			return nil, fmt.Errorf("tensors %s and %s overlap", f.Tensors[i-1].Name, t.Name)
		}
		f.byName[t.Name] = i
	}
	return f, nil
}

// Close closes the underlying file (if Open opened it).
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// Tensor returns the info of the named tensor.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// Raw returns the tensor's bytes as stored.
func (f *File) Raw(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q", name)
	}
	buf := make([]byte, t.End-t.Begin)
	if err := f.readAt(buf, f.dataOffset+t.Begin); err != nil {
		return nil, fmt.Errorf("safetensors: read tensor %s: %w", name, err)
	}
	return buf, nil
}

// readAt fills buf from off. An empty tensor reads nothing: an io.ReaderAt may answer io.EOF to
// an empty read at the end of its data (bytes.Reader does), where the tensor is still fine.
func (f *File) readAt(buf []byte, off int64) error {
	if len(buf) == 0 {
		return nil
	}
	_, err := f.r.ReadAt(buf, off)
	return err
}

// Float32 returns the tensor's values as float32 in row-major order, widening F16 and BF16.
func (f *File) Float32(name string) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q", name)
	}
	out := make([]float32, t.Elements())
	switch t.DType {
	case F32:
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), len(out)*4)
		if err := f.readAt(b, f.dataOffset+t.Begin); err != nil {
			return nil, fmt.Errorf("safetensors: read tensor %s: %w", name, err)
		}
		if !littleEndianHost {
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		}
	case F16, BF16:
		raw, err := f.Raw(name)
		if err != nil {
			return nil, err
		}
		conv := half.F16ToF32
		if t.DType == BF16 {
			conv = half.BF16ToF32
		}
		for i := range out {
			out[i] = conv(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	default:
		return nil, fmt.Errorf("safetensors: tensor %s has dtype %s; only F32, F16 and BF16 decode to float32", name, t.DType)
	}
	return out, nil
}

var littleEndianHost = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()
