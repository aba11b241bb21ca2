package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/llm/format/half"
)

// Tensor is one tensor to write: float32 values in row-major order, stored as DType (F32, F16 or
// BF16). The values are Data, or, when Data is nil and Fill is set, what Fill writes into dst (as
// many values as Shape holds) when the writer reaches the tensor: Write fills the tensors one at a
// time into one buffer it reuses, so a model held in another form (quantized, bfloat16) is written
// without all of it existing in float32 at once. Fill is called once per file written.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []float32
	Fill  func(dst []float32) error
}

// elements is the number of values Shape holds.
func (t Tensor) elements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

func (t Tensor) streamed() bool { return t.Data == nil && t.Fill != nil }

func (t Tensor) elemBytes() int64 {
	if t.DType == F32 {
		return 4
	}
	return 2
}

func (t Tensor) bytes() int64 {
	if t.streamed() {
		return t.elements() * t.elemBytes()
	}
	return int64(len(t.Data)) * t.elemBytes()
}

func (t Tensor) check() error {
	if t.DType != F32 && t.DType != F16 && t.DType != BF16 {
		return fmt.Errorf("safetensors: tensor %s: writing dtype %q is not supported (F32, F16, BF16 are)", t.Name, t.DType)
	}
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("safetensors: tensor %s: negative dimension in %v", t.Name, t.Shape)
		}
	}
	if n := t.elements(); !t.streamed() && n != int64(len(t.Data)) {
		return fmt.Errorf("safetensors: tensor %s: shape %v holds %d values, got %d", t.Name, t.Shape, n, len(t.Data))
	}
	if t.Name == "" || t.Name == "__metadata__" {
		return fmt.Errorf("safetensors: invalid tensor name %q", t.Name)
	}
	return nil
}

// Write writes one safetensors file holding tensors in the given order. The header is padded
// with spaces to a multiple of 8 bytes so the data is aligned, as the reference writer does.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header := make(map[string]any, len(tensors)+1)
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range tensors {
		if err := t.check(); err != nil {
			return err
		}
		if _, dup := header[t.Name]; dup {
			return fmt.Errorf("safetensors: tensor %s written twice", t.Name)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: []int64{off, off + t.bytes()}}
		off += t.bytes()
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	for len(hdr)%8 != 0 {
		hdr = append(hdr, ' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hdr)))
	bw.Write(lenBuf[:])
	bw.Write(hdr)
	var chunk [4096]byte
	var buf []float32 // the values of the streamed tensor being written
	for _, t := range tensors {
		size := int(t.elemBytes())
		xs := t.Data
		if t.streamed() {
			n := int(t.elements())
			if cap(buf) < n {
				buf = make([]float32, n)
			}
			xs = buf[:n]
			if err := t.Fill(xs); err != nil {
				return fmt.Errorf("safetensors: tensor %s: %w", t.Name, err)
			}
		}
		for len(xs) > 0 {
			n := min(len(xs), len(chunk)/size)
			for i, x := range xs[:n] {
				switch t.DType {
				case F32:
					binary.LittleEndian.PutUint32(chunk[4*i:], math.Float32bits(x))
				case F16:
					binary.LittleEndian.PutUint16(chunk[2*i:], half.F32ToF16(x))
				case BF16:
					binary.LittleEndian.PutUint16(chunk[2*i:], half.F32ToBF16(x))
				}
			}
			if _, err := bw.Write(chunk[:n*size]); err != nil {
				return fmt.Errorf("safetensors: write %s: %w", t.Name, err)
			}
			xs = xs[n:]
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

// WriteFile writes one safetensors file atomically (temporary file, sync, rename).
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	return writeAtomic(path, func(w io.Writer) error { return Write(w, tensors, metadata) })
}

// IndexFile is the name of a sharded checkpoint's index.
const IndexFile = "model.safetensors.index.json"

// SingleFile is the name of an unsharded checkpoint's weights.
const SingleFile = "model.safetensors"

// Index is the content of model.safetensors.index.json.
type Index struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// WriteDir writes tensors into dir in the Hugging Face layout: one model.safetensors when they
// total at most maxShardBytes (or maxShardBytes <= 0), else shards named
// model-00001-of-0000N.safetensors of at most maxShardBytes each (a larger tensor gets a shard
// of its own) plus model.safetensors.index.json. metadata goes into every file's __metadata__
// (transformers expects {"format": "pt"}). It returns the names of the files written.
func WriteDir(dir string, tensors []Tensor, metadata map[string]string, maxShardBytes int64) ([]string, error) {
	var total int64
	for _, t := range tensors {
		if err := t.check(); err != nil {
			return nil, err
		}
		total += t.bytes()
	}
	if maxShardBytes <= 0 || total <= maxShardBytes {
		if err := WriteFile(filepath.Join(dir, SingleFile), tensors, metadata); err != nil {
			return nil, err
		}
		return []string{SingleFile}, nil
	}
	var shards [][]Tensor
	var cur []Tensor
	var curBytes int64
	for _, t := range tensors {
		if len(cur) > 0 && curBytes+t.bytes() > maxShardBytes {
			shards = append(shards, cur)
			cur, curBytes = nil, 0
		}
		cur = append(cur, t)
		curBytes += t.bytes()
	}
	shards = append(shards, cur)
	idx := Index{Metadata: map[string]any{"total_size": total}, WeightMap: map[string]string{}}
	var names []string
	for i, shard := range shards {
		name := fmt.Sprintf("model-%05d-of-%05d.safetensors", i+1, len(shards))
		if err := WriteFile(filepath.Join(dir, name), shard, metadata); err != nil {
			return nil, err
		}
		for _, t := range shard {
			idx.WeightMap[t.Name] = name
		}
		names = append(names, name)
	}
	js, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("safetensors: index: %w", err)
	}
	err = writeAtomic(filepath.Join(dir, IndexFile), func(w io.Writer) error {
		_, err := w.Write(append(js, '\n'))
		return err
	})
	if err != nil {
		return nil, err
	}
	return append(names, IndexFile), nil
}

func writeAtomic(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file private (0600); a model file is as readable as any other output.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
