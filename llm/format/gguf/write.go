package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// Writer builds a GGUF v3 file: metadata in the order it was set, then tensors in the order they
// were added, each padded to the alignment (general.alignment if set, else 32) as ggml's loader
// requires (it checks every offset and reads the padded size of the last tensor too).
type Writer struct {
	Metadata Metadata
	tensors  []pendingTensor
	names    map[string]bool
}

type pendingTensor struct {
	info TensorInfo
	f32  []float32                 // converted to info.Type while writing
	raw  []byte                    // written as is
	fill func(dst []float32) error // produces the float32 values while writing (AddTensorFunc)
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer { return &Writer{names: map[string]bool{}} }

// ggml limits: GGML_MAX_NAME (64, including the terminating NUL) and GGML_MAX_DIMS.
const (
	maxNameLen = 63
	maxDims    = 4
)

func (w *Writer) checkTensor(name string, dims []uint64, typ TensorType) (TensorInfo, uint64, error) {
	info := TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: typ}
	if w.names == nil {
		w.names = map[string]bool{}
	}
	if len(name) == 0 || len(name) > maxNameLen {
		return info, 0, fmt.Errorf("gguf: tensor name %q must be 1 to %d bytes (ggml's limit)", name, maxNameLen)
	}
	if w.names[name] {
		return info, 0, fmt.Errorf("gguf: tensor %q added twice", name)
	}
	if len(dims) == 0 || len(dims) > maxDims {
		return info, 0, fmt.Errorf("gguf: tensor %s has %d dims; ggml takes 1 to %d", name, len(dims), maxDims)
	}
	n, err := info.Bytes()
	if err != nil {
		return info, 0, err
	}
	return info, n, nil
}

// AddTensor adds a tensor from float32 values in row-major order, stored as typ (F32, F16 or BF16;
// Q8_0, Q4_0, Q4_K and Q6_K are quantized now, with ggml's reference quantizers). dims are in ggml
// order (Dims[0] contiguous): a [out, in] weight has dims [in, out]. The slice is kept, not copied,
// until the file is written.
func (w *Writer) AddTensor(name string, dims []uint64, typ TensorType, data []float32) error {
	if typ != F32 && typ != F16 && typ != BF16 {
		if !typ.Quantizable() {
			return fmt.Errorf("gguf: tensor %s: writing type %s from float32 is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K are)", name, typ)
		}
		raw, err := Quantize(typ, data)
		if err != nil {
			return fmt.Errorf("gguf: tensor %s: %w", name, err)
		}
		return w.AddRawTensor(name, dims, typ, raw)
	}
	info, _, err := w.checkTensor(name, dims, typ)
	if err != nil {
		return err
	}
	if uint64(len(data)) != info.Elements() {
		return fmt.Errorf("gguf: tensor %s: dims %v hold %d values, got %d", name, dims, info.Elements(), len(data))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, pendingTensor{info: info, f32: data})
	return nil
}

// AddTensorFunc adds a tensor whose float32 values fill writes into dst (of the tensor's element
// count) when WriteTo reaches it, converted then to typ as AddTensor's are (a quantized typ is
// quantized then). WriteTo fills the tensors one at a time into one buffer it reuses, so a file of
// any size is written holding one tensor's values: the way to write a model held in another form
// (quantized, bfloat16) without widening all of it first. fill is called once per WriteTo.
func (w *Writer) AddTensorFunc(name string, dims []uint64, typ TensorType, fill func(dst []float32) error) error {
	if !typ.Quantizable() {
		return fmt.Errorf("gguf: tensor %s: writing type %s from float32 is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K are)", name, typ)
	}
	if fill == nil {
		return fmt.Errorf("gguf: tensor %s: no fill function", name)
	}
	info, _, err := w.checkTensor(name, dims, typ)
	if err != nil {
		return err
	}
	w.names[name] = true
	w.tensors = append(w.tensors, pendingTensor{info: info, fill: fill})
	return nil
}

// AddRawTensor adds a tensor whose bytes are already encoded as typ (any type with a known block
// layout, e.g. copied from another GGUF file).
func (w *Writer) AddRawTensor(name string, dims []uint64, typ TensorType, raw []byte) error {
	info, n, err := w.checkTensor(name, dims, typ)
	if err != nil {
		return err
	}
	if uint64(len(raw)) != n {
		return fmt.Errorf("gguf: tensor %s: %s dims %v take %d bytes, got %d", name, typ, dims, n, len(raw))
	}
	w.names[name] = true
	w.tensors = append(w.tensors, pendingTensor{info: info, raw: raw})
	return nil
}

func (w *Writer) alignment() (int64, error) {
	v, ok := w.Metadata.Get("general.alignment")
	if !ok {
		return DefaultAlignment, nil
	}
	a, isInt := asInt(v)
	if !isInt || a <= 0 || a&(a-1) != 0 {
		return 0, fmt.Errorf("gguf: general.alignment %v is not a positive power of two", v)
	}
	if _, isU32 := v.(uint32); !isU32 {
		return 0, fmt.Errorf("gguf: general.alignment must be a uint32 (llama.cpp rejects other types), got %T", v)
	}
	return a, nil
}

// WriteTo writes the file.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	e := &encoder{w: bufio.NewWriterSize(out, 1<<20)}
	e.write([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(w.Metadata.Len()))
	for _, kv := range w.Metadata.KVs() {
		e.str(kv.Key)
		e.value(kv.Value)
	}
	offset := uint64(0)
	for i := range w.tensors {
		t := &w.tensors[i]
		t.info.Offset = offset
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(offset)
		n, _ := t.info.Bytes()
		offset += uint64(alignUp(int64(n), align))
	}
	e.pad(align)
	var buf []float32 // the values of the AddTensorFunc tensor being written
	for _, t := range w.tensors {
		switch {
		case t.fill != nil:
			n := int(t.info.Elements())
			if cap(buf) < n {
				buf = make([]float32, n)
			}
			if err := t.fill(buf[:n]); err != nil {
				return e.n, fmt.Errorf("gguf: tensor %s: %w", t.info.Name, err)
			}
			if typ := t.info.Type; typ != F32 && typ != F16 && typ != BF16 {
				raw, err := Quantize(t.info.Type, buf[:n])
				if err != nil {
					return e.n, fmt.Errorf("gguf: tensor %s: %w", t.info.Name, err)
				}
				e.write(raw)
			} else {
				e.floats(t.info.Type, buf[:n])
			}
		case t.raw != nil:
			e.write(t.raw)
		default:
			e.floats(t.info.Type, t.f32)
		}
		e.pad(align)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.n, e.err
}

// WriteFile writes the file atomically: to a temporary file in the same directory, synced, then
// renamed over path, so a crash never leaves a truncated model behind.
func (w *Writer) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file private (0600); a model file is as readable as any other output.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	if _, err := w.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write gguf %s: %w", path, err)
	}
	return nil
}

type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
	buf [8]byte
}

func (e *encoder) write(b []byte) {
	if e.err != nil {
		return
	}
	k, err := e.w.Write(b)
	e.n += int64(k)
	e.err = err
}

func (e *encoder) u8(v uint8)   { e.buf[0] = v; e.write(e.buf[:1]) }
func (e *encoder) u16(v uint16) { binary.LittleEndian.PutUint16(e.buf[:], v); e.write(e.buf[:2]) }
func (e *encoder) u32(v uint32) { binary.LittleEndian.PutUint32(e.buf[:], v); e.write(e.buf[:4]) }
func (e *encoder) u64(v uint64) { binary.LittleEndian.PutUint64(e.buf[:], v); e.write(e.buf[:8]) }
func (e *encoder) str(s string) { e.u64(uint64(len(s))); e.write([]byte(s)) }

func (e *encoder) boolean(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) pad(align int64) {
	var zeros [64]byte
	for r := alignUp(e.n, align) - e.n; r > 0 && e.err == nil; {
		k := min(r, int64(len(zeros)))
		e.write(zeros[:k])
		r -= k
	}
}

// value writes a value's type tag and payload; Metadata.Set has already checked the Go type.
func (e *encoder) value(v any) {
	t, et, _ := valueTypeOf(v)
	e.u32(uint32(t))
	if t == TypeArray {
		e.u32(uint32(et))
	}
	switch x := v.(type) {
	case uint8:
		e.u8(x)
	case int8:
		e.u8(uint8(x))
	case uint16:
		e.u16(x)
	case int16:
		e.u16(uint16(x))
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case bool:
		e.boolean(x)
	case string:
		e.str(x)
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case []uint8:
		writeArray(e, x, e.u8)
	case []int8:
		writeArray(e, x, func(v int8) { e.u8(uint8(v)) })
	case []uint16:
		writeArray(e, x, e.u16)
	case []int16:
		writeArray(e, x, func(v int16) { e.u16(uint16(v)) })
	case []uint32:
		writeArray(e, x, e.u32)
	case []int32:
		writeArray(e, x, func(v int32) { e.u32(uint32(v)) })
	case []float32:
		writeArray(e, x, func(v float32) { e.u32(math.Float32bits(v)) })
	case []bool:
		writeArray(e, x, e.boolean)
	case []string:
		writeArray(e, x, e.str)
	case []uint64:
		writeArray(e, x, e.u64)
	case []int64:
		writeArray(e, x, func(v int64) { e.u64(uint64(v)) })
	case []float64:
		writeArray(e, x, func(v float64) { e.u64(math.Float64bits(v)) })
	}
}

func writeArray[T any](e *encoder, xs []T, put func(T)) {
	e.u64(uint64(len(xs)))
	for _, x := range xs {
		put(x)
	}
}

func (e *encoder) floats(t TensorType, xs []float32) {
	var chunk [4096]byte
	size := 4
	if t != F32 {
		size = 2
	}
	for len(xs) > 0 && e.err == nil {
		n := min(len(xs), len(chunk)/size)
		for i, x := range xs[:n] {
			switch t {
			case F32:
				binary.LittleEndian.PutUint32(chunk[4*i:], math.Float32bits(x))
			case F16:
				binary.LittleEndian.PutUint16(chunk[2*i:], half.F32ToF16(x))
			case BF16:
				binary.LittleEndian.PutUint16(chunk[2*i:], half.F32ToBF16(x))
			}
		}
		e.write(chunk[:n*size])
		xs = xs[n:]
	}
}
