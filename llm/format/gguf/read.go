package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"
)

// File is an open GGUF file. Tensor data stays on disk until asked for: Float32 and Raw read one
// tensor with ReadAt, so a model is never held twice in memory.
type File struct {
	Version    uint32
	Metadata   Metadata
	Tensors    []TensorInfo
	Alignment  int
	DataOffset int64 // absolute file offset of the data section

	r      io.ReaderAt
	size   int64
	closer io.Closer
	byName map[string]int
}

// Open opens and parses a GGUF file. Close it when done.
func Open(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open gguf: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("open gguf %s: %w", path, err)
	}
	f, err := Read(fh, st.Size())
	if err != nil {
		fh.Close()
		return nil, fmt.Errorf("read gguf %s: %w", path, err)
	}
	f.closer = fh
	return f, nil
}

// Read parses a GGUF file of the given size from r. The File reads tensor data from r later, so r
// must stay usable while the File is.
func Read(r io.ReaderAt, size int64) (*File, error) {
	d := &decoder{r: bufio.NewReaderSize(io.NewSectionReader(r, 0, size), 1<<16), limit: size}
	var magic [4]byte
	d.read(magic[:])
	if d.err != nil {
		return nil, fmt.Errorf("header: %w", d.err)
	}
	if string(magic[:]) != Magic {
		return nil, fmt.Errorf("not a GGUF file (magic %q)", magic[:])
	}
	f := &File{r: r, size: size, byName: map[string]int{}}
	f.Version = d.u32()
	switch {
	case d.err != nil:
		return nil, fmt.Errorf("header: %w", d.err)
	case f.Version == 1:
		return nil, errors.New("GGUF version 1 is not supported (re-convert the model with a current llama.cpp)")
	case f.Version&0xffff == 0 && f.Version != 0:
		return nil, fmt.Errorf("big-endian GGUF files are not supported (version field %#x)", f.Version)
	case f.Version != 2 && f.Version != 3:
		return nil, fmt.Errorf("unsupported GGUF version %d", f.Version)
	}
	nTensors := d.u64()
	nKV := d.u64()
	if d.err != nil {
		return nil, fmt.Errorf("header: %w", d.err)
	}
	// Every KV takes at least 12 bytes and every tensor info at least 24: bound the counts by the
	// file size before allocating anything.
	if nKV > uint64(size)/12 || nTensors > uint64(size)/24 {
		return nil, fmt.Errorf("header claims %d metadata entries and %d tensors, more than a %d-byte file holds", nKV, nTensors, size)
	}
	for i := uint64(0); i < nKV; i++ {
		key := d.str()
		typ := ValueType(d.u32())
		v := d.value(typ, 0)
		if d.err != nil {
			return nil, fmt.Errorf("metadata entry %d (%q): %w", i, key, d.err)
		}
		if _, dup := f.Metadata.Get(key); dup {
			return nil, fmt.Errorf("metadata key %q appears twice", key)
		}
		if err := f.Metadata.Set(key, v); err != nil {
			return nil, err
		}
	}
	f.Alignment = DefaultAlignment
	if v, ok := f.Metadata.Get("general.alignment"); ok {
		a, isInt := asInt(v)
		if !isInt || a <= 0 || a&(a-1) != 0 || a > 1<<20 {
			return nil, fmt.Errorf("general.alignment %v is not a power of two", v)
		}
		f.Alignment = int(a)
	}
	f.Tensors = make([]TensorInfo, 0, nTensors)
	for i := uint64(0); i < nTensors; i++ {
		var t TensorInfo
		t.Name = d.str()
		nDims := d.u32()
		if d.err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, d.err)
		}
		if nDims > 8 {
			return nil, fmt.Errorf("tensor %q has %d dims", t.Name, nDims)
		}
		t.Dims = make([]uint64, nDims)
		for j := range t.Dims {
			t.Dims[j] = d.u64()
		}
		t.Type = TensorType(d.u32())
		t.Offset = d.u64()
		if d.err != nil {
			return nil, fmt.Errorf("tensor info %d: %w", i, d.err)
		}
		if _, dup := f.byName[t.Name]; dup {
			return nil, fmt.Errorf("tensor %q appears twice", t.Name)
		}
		f.byName[t.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, t)
	}
	f.DataOffset = alignUp(d.n, int64(f.Alignment))
	for _, t := range f.Tensors {
		// A tensor with a zero dimension holds nothing, however large its other dimensions (the
		// Writer writes a [2^20, 0] tensor; reading it back must work): only non-empty shapes are
		// bounded by the file size.
		empty := false
		for _, d := range t.Dims {
			empty = empty || d == 0
		}
		n := uint64(1)
		for _, d := range t.Dims {
			if !empty && n > uint64(size)/d {
				return nil, fmt.Errorf("tensor %s: dims %v hold more values than the file has bytes", t.Name, t.Dims)
			}
			n *= d
		}
		if t.Offset%uint64(f.Alignment) != 0 {
			return nil, fmt.Errorf("tensor %s: offset %d is not a multiple of the alignment %d", t.Name, t.Offset, f.Alignment)
		}
		n, err := t.Bytes()
		if err != nil {
			if t.Type.BlockSize() == 0 {
				continue // unknown type: the tensor is listed, but reading it fails with a clear error
			}
			return nil, err
		}
		if end := uint64(f.DataOffset) + t.Offset + n; end > uint64(size) || end < t.Offset {
			return nil, fmt.Errorf("tensor %s: data [%d, %d) runs past the end of the file (%d bytes)", t.Name, uint64(f.DataOffset)+t.Offset, end, size)
		}
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

// Raw returns the tensor's bytes exactly as stored.
func (f *File) Raw(name string) ([]byte, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	n, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	if _, err := f.r.ReadAt(buf, f.DataOffset+int64(t.Offset)); err != nil {
		return nil, fmt.Errorf("gguf: read tensor %s: %w", name, err)
	}
	return buf, nil
}

// Float32 returns the tensor's values as float32 in row-major order (see TensorInfo.Shape),
// dequantizing F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K.
func (f *File) Float32(name string) ([]float32, error) {
	t, ok := f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("gguf: no tensor %q", name)
	}
	if !t.Type.Decodable() {
		return nil, fmt.Errorf("gguf: tensor %s has type %s, which cannot be decoded (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)", name, t.Type)
	}
	out := make([]float32, t.Elements())
	if t.Type == F32 && littleEndianHost {
		// Read straight into the result: no second copy of the tensor.
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(out))), len(out)*4)
		if _, err := f.r.ReadAt(b, f.DataOffset+int64(t.Offset)); err != nil {
			return nil, fmt.Errorf("gguf: read tensor %s: %w", name, err)
		}
		return out, nil
	}
	raw, err := f.Raw(name)
	if err != nil {
		return nil, err
	}
	if err := Dequantize(t.Type, raw, out); err != nil {
		return nil, fmt.Errorf("gguf: tensor %s: %w", name, err)
	}
	return out, nil
}

var littleEndianHost = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// decoder reads the header sequentially, counting bytes and remembering the first error.
type decoder struct {
	r     *bufio.Reader
	n     int64
	limit int64
	err   error
	buf   [8]byte
}

func (d *decoder) read(b []byte) {
	if d.err != nil {
		return
	}
	k, err := io.ReadFull(d.r, b)
	d.n += int64(k)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("file ends inside the header at byte %d", d.n)
		}
		d.err = err
	}
}

func (d *decoder) u8() uint8   { d.read(d.buf[:1]); return d.buf[0] }
func (d *decoder) u16() uint16 { d.read(d.buf[:2]); return binary.LittleEndian.Uint16(d.buf[:2]) }
func (d *decoder) u32() uint32 { d.read(d.buf[:4]); return binary.LittleEndian.Uint32(d.buf[:4]) }
func (d *decoder) u64() uint64 { d.read(d.buf[:8]); return binary.LittleEndian.Uint64(d.buf[:8]) }

func (d *decoder) str() string {
	n := d.u64()
	if d.err != nil {
		return ""
	}
	if n > uint64(d.limit-d.n) {
		d.err = fmt.Errorf("string of %d bytes at byte %d runs past the end of the file", n, d.n)
		return ""
	}
	b := make([]byte, n)
	d.read(b)
	return string(b)
}

func (d *decoder) boolean() bool {
	b := d.u8()
	if d.err == nil && b > 1 {
		d.err = fmt.Errorf("bool value %d at byte %d", b, d.n-1)
	}
	return b == 1
}

// value decodes one value of type typ; depth guards against arrays of arrays.
func (d *decoder) value(typ ValueType, depth int) any {
	switch typ {
	case TypeUint8:
		return d.u8()
	case TypeInt8:
		return int8(d.u8())
	case TypeUint16:
		return d.u16()
	case TypeInt16:
		return int16(d.u16())
	case TypeUint32:
		return d.u32()
	case TypeInt32:
		return int32(d.u32())
	case TypeFloat32:
		return math.Float32frombits(d.u32())
	case TypeBool:
		return d.boolean()
	case TypeString:
		return d.str()
	case TypeUint64:
		return d.u64()
	case TypeInt64:
		return int64(d.u64())
	case TypeFloat64:
		return math.Float64frombits(d.u64())
	case TypeArray:
		if depth > 0 {
			d.fail(errors.New("arrays of arrays are not supported"))
			return nil
		}
		et := ValueType(d.u32())
		n := d.u64()
		if d.err != nil {
			return nil
		}
		if n > uint64(d.limit-d.n) { // every element takes at least one byte
			d.fail(fmt.Errorf("array of %d elements runs past the end of the file", n))
			return nil
		}
		return d.array(et, int(n))
	}
	d.fail(fmt.Errorf("unknown metadata value type %d", uint32(typ)))
	return nil
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) array(et ValueType, n int) any {
	switch et {
	case TypeUint8:
		return readArray(d, n, d.u8)
	case TypeInt8:
		return readArray(d, n, func() int8 { return int8(d.u8()) })
	case TypeUint16:
		return readArray(d, n, d.u16)
	case TypeInt16:
		return readArray(d, n, func() int16 { return int16(d.u16()) })
	case TypeUint32:
		return readArray(d, n, d.u32)
	case TypeInt32:
		return readArray(d, n, func() int32 { return int32(d.u32()) })
	case TypeFloat32:
		return readArray(d, n, func() float32 { return math.Float32frombits(d.u32()) })
	case TypeBool:
		return readArray(d, n, d.boolean)
	case TypeString:
		return readArray(d, n, d.str)
	case TypeUint64:
		return readArray(d, n, d.u64)
	case TypeInt64:
		return readArray(d, n, func() int64 { return int64(d.u64()) })
	case TypeFloat64:
		return readArray(d, n, func() float64 { return math.Float64frombits(d.u64()) })
	case TypeArray:
		d.fail(errors.New("arrays of arrays are not supported"))
		return nil
	}
	d.fail(fmt.Errorf("unknown array element type %d", uint32(et)))
	return nil
}

func readArray[T any](d *decoder, n int, next func() T) []T {
	out := make([]T, 0, min(n, 1<<16))
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, next())
	}
	return out
}
