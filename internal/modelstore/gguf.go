package modelstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The store reads just enough of a GGUF file to learn its architecture: the header and the
// metadata key-value pairs up to general.architecture (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
// Loading tensors is the engine's job (llm/format).

const ggufMagic = "GGUF"

// GGUF metadata value types.
const (
	ggufUint8 uint32 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

// Limits that keep a corrupt or hostile header from making the reader allocate or skip absurdly.
const (
	maxGGUFKeyLen    = 1 << 16
	maxGGUFStringLen = 1 << 30
)

func checkGGUFMagic(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil || string(magic[:]) != ggufMagic {
		return fmt.Errorf("%s is not a GGUF file (it does not start with %q); pass a .gguf file or a Hugging Face directory", path, ggufMagic)
	}
	return nil
}

// ggufArchitecture returns the general.architecture metadata value of a GGUF file.
func ggufArchitecture(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	arch, err := readGGUFArchitecture(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return "", fmt.Errorf("read GGUF metadata of %s: %w", path, err)
	}
	return arch, nil
}

func readGGUFArchitecture(r *bufio.Reader) (string, error) {
	g := ggufReader{r: r}
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:]) != ggufMagic {
		return "", errors.New("not a GGUF file")
	}
	version := g.u32()
	var kvCount uint64
	switch version {
	case 1: // counts were 32-bit in version 1
		g.u32()
		kvCount = uint64(g.u32())
		g.v1 = true
	case 2, 3:
		g.u64() // tensor count
		kvCount = g.u64()
	default:
		if g.err == nil {
			return "", fmt.Errorf("unsupported GGUF version %d", version)
		}
	}
	for i := uint64(0); i < kvCount && g.err == nil; i++ {
		key := g.str(maxGGUFKeyLen)
		typ := g.u32()
		if key == "general.architecture" {
			if typ != ggufString {
				return "", fmt.Errorf("general.architecture has type %d, want string", typ)
			}
			arch := g.str(maxGGUFKeyLen)
			if g.err != nil {
				break
			}
			if arch == "" {
				return "", errors.New("general.architecture is empty")
			}
			return arch, nil
		}
		g.skip(typ)
	}
	if g.err != nil {
		return "", fmt.Errorf("truncated or corrupt header: %w", g.err)
	}
	return "", errors.New("no general.architecture key")
}

// ggufReader reads little-endian GGUF values, remembering the first error.
type ggufReader struct {
	r   *bufio.Reader
	v1  bool // version 1 file: string lengths and array counts are 32-bit
	err error
}

func (g *ggufReader) read(n int) []byte {
	if g.err != nil {
		return make([]byte, n)
	}
	b := make([]byte, n)
	_, g.err = io.ReadFull(g.r, b)
	return b
}

func (g *ggufReader) u32() uint32 { return binary.LittleEndian.Uint32(g.read(4)) }
func (g *ggufReader) u64() uint64 { return binary.LittleEndian.Uint64(g.read(8)) }

func (g *ggufReader) length() uint64 {
	if g.v1 {
		return uint64(g.u32())
	}
	return g.u64()
}

func (g *ggufReader) str(limit uint64) string {
	n := g.length()
	if g.err == nil && n > limit {
		g.err = fmt.Errorf("string of %d bytes", n)
	}
	if g.err != nil {
		return ""
	}
	return string(g.read(int(n)))
}

func (g *ggufReader) discard(n uint64) {
	if g.err != nil {
		return
	}
	if _, err := io.CopyN(io.Discard, g.r, int64(n)); err != nil {
		g.err = err
	}
}

// skip passes over one value of the given type.
func (g *ggufReader) skip(typ uint32) {
	switch typ {
	case ggufUint8, ggufInt8, ggufBool:
		g.discard(1)
	case ggufUint16, ggufInt16:
		g.discard(2)
	case ggufUint32, ggufInt32, ggufFloat32:
		g.discard(4)
	case ggufUint64, ggufInt64, ggufFloat64:
		g.discard(8)
	case ggufString:
		n := g.length()
		if g.err == nil && n > maxGGUFStringLen {
			g.err = fmt.Errorf("string of %d bytes", n)
		}
		g.discard(n)
	case ggufArray:
		elem := g.u32()
		count := g.length()
		for i := uint64(0); i < count && g.err == nil; i++ {
			g.skip(elem)
		}
	default:
		if g.err == nil {
			g.err = fmt.Errorf("unknown metadata value type %d", typ)
		}
	}
}
