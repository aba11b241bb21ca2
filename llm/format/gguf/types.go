// Package gguf reads and writes GGUF files, the checkpoint format of llama.cpp and ollama.
//
// A GGUF file is a little-endian header (magic "GGUF", version, counts), typed key/value metadata,
// one info record per tensor (name, dims, ggml type, offset), then the tensor data, each tensor
// starting at a multiple of the alignment (general.alignment, default 32) from the start of the
// data section. Dims are in ggml order: Dims[0] is the contiguous (innermost) axis, so a weight
// matrix of PyTorch shape [out, in] has Dims [in, out]; TensorInfo.Shape gives the row-major view.
//
// Versions 2 and 3 are read (they differ only in that v3 allows big-endian files, which are
// refused here); version 3 is written.
package gguf

import "fmt"

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when general.alignment is absent.
const DefaultAlignment = 32

// ValueType is the type tag of a metadata value.
type ValueType uint32

// The metadata value types, numbered as in the GGUF specification.
const (
	TypeUint8 ValueType = iota
	TypeInt8
	TypeUint16
	TypeInt16
	TypeUint32
	TypeInt32
	TypeFloat32
	TypeBool
	TypeString
	TypeArray
	TypeUint64
	TypeInt64
	TypeFloat64
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool",
	"string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", uint32(t))
}

// TensorType is a ggml tensor element type.
type TensorType uint32

// The ggml tensor types, numbered as in ggml.h. Only some can be decoded (see TensorType.Decodable);
// the others are still listed so that a file holding them opens and names them.
const (
	F32     TensorType = 0
	F16     TensorType = 1
	Q4_0    TensorType = 2
	Q4_1    TensorType = 3
	Q5_0    TensorType = 6
	Q5_1    TensorType = 7
	Q8_0    TensorType = 8
	Q8_1    TensorType = 9
	Q2_K    TensorType = 10
	Q3_K    TensorType = 11
	Q4_K    TensorType = 12
	Q5_K    TensorType = 13
	Q6_K    TensorType = 14
	Q8_K    TensorType = 15
	IQ2_XXS TensorType = 16
	IQ2_XS  TensorType = 17
	IQ3_XXS TensorType = 18
	IQ1_S   TensorType = 19
	IQ4_NL  TensorType = 20
	IQ3_S   TensorType = 21
	IQ2_S   TensorType = 22
	IQ4_XS  TensorType = 23
	I8      TensorType = 24
	I16     TensorType = 25
	I32     TensorType = 26
	I64     TensorType = 27
	F64     TensorType = 28
	IQ1_M   TensorType = 29
	BF16    TensorType = 30
)

type typeTraits struct {
	name      string
	blockSize int // elements per block
	typeSize  int // bytes per block
}

// traits holds the block layout of every type this package knows (ggml.c's type_traits table).
var traits = map[TensorType]typeTraits{
	F32: {"F32", 1, 4}, F16: {"F16", 1, 2}, BF16: {"BF16", 1, 2}, F64: {"F64", 1, 8},
	I8: {"I8", 1, 1}, I16: {"I16", 1, 2}, I32: {"I32", 1, 4}, I64: {"I64", 1, 8},
	Q4_0: {"Q4_0", 32, 18}, Q4_1: {"Q4_1", 32, 20}, Q5_0: {"Q5_0", 32, 22}, Q5_1: {"Q5_1", 32, 24},
	Q8_0: {"Q8_0", 32, 34}, Q8_1: {"Q8_1", 32, 36},
	Q2_K: {"Q2_K", 256, 84}, Q3_K: {"Q3_K", 256, 110}, Q4_K: {"Q4_K", 256, 144}, Q5_K: {"Q5_K", 256, 176},
	Q6_K: {"Q6_K", 256, 210}, Q8_K: {"Q8_K", 256, 292},
	IQ2_XXS: {"IQ2_XXS", 256, 66}, IQ2_XS: {"IQ2_XS", 256, 74}, IQ3_XXS: {"IQ3_XXS", 256, 98},
	IQ1_S: {"IQ1_S", 256, 50}, IQ4_NL: {"IQ4_NL", 32, 18}, IQ3_S: {"IQ3_S", 256, 110},
	IQ2_S: {"IQ2_S", 256, 82}, IQ4_XS: {"IQ4_XS", 256, 136}, IQ1_M: {"IQ1_M", 256, 56},
}

func (t TensorType) String() string {
	if tr, ok := traits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("TensorType(%d)", uint32(t))
}

// BlockSize is the number of elements one block of this type holds (1 for plain types), or 0 if
// the type is unknown.
func (t TensorType) BlockSize() int { return traits[t].blockSize }

// BlockBytes is the number of bytes one block of this type takes, or 0 if the type is unknown.
func (t TensorType) BlockBytes() int { return traits[t].typeSize }

// Decodable reports whether Float32 can turn tensors of this type into float32 values.
func (t TensorType) Decodable() bool {
	switch t {
	case F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K:
		return true
	}
	return false
}

// RowBytes is the byte size of n elements of this type; n must be a multiple of the block size.
func (t TensorType) RowBytes(n uint64) (uint64, error) {
	tr, ok := traits[t]
	if !ok {
		return 0, fmt.Errorf("unknown ggml tensor type %d", uint32(t))
	}
	if n%uint64(tr.blockSize) != 0 {
		return 0, fmt.Errorf("%d elements of %s are not a whole number of %d-element blocks", n, tr.name, tr.blockSize)
	}
	return n / uint64(tr.blockSize) * uint64(tr.typeSize), nil
}

// TensorInfo describes one tensor of a GGUF file.
type TensorInfo struct {
	Name   string
	Dims   []uint64 // ggml order: Dims[0] is the contiguous axis (a weight's "in" dimension)
	Type   TensorType
	Offset uint64 // from the start of the data section
}

// Elements is the number of values the tensor holds.
func (t TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// Shape is the row-major shape (PyTorch order): the reverse of Dims. A weight matrix with Dims
// [in, out] has Shape [out, in], and its data is laid out row by row.
func (t TensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(t.Dims)-1-i] = int(d)
	}
	return s
}

// Bytes is the size of the tensor's data in the file.
func (t TensorInfo) Bytes() (uint64, error) {
	if len(t.Dims) == 0 {
		return t.Type.RowBytes(1)
	}
	if t.Elements() == 0 {
		return 0, nil
	}
	row, err := t.Type.RowBytes(t.Dims[0])
	if err != nil {
		return 0, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return row * (t.Elements() / t.Dims[0]), nil
}
