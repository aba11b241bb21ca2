package modelstore

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

type kv struct {
	key   string
	value any // string, uint32, float32, bool, []string, []int32
}

// ggufFile writes a GGUF header with the given metadata and no tensors, as the format's
// specification lays it out (version 1 with 32-bit counts and lengths).
func ggufFile(version uint32, kvs ...kv) []byte {
	var b bytes.Buffer
	w := func(v any) { _ = binary.Write(&b, binary.LittleEndian, v) }
	n := func(x int) {
		if version == 1 {
			w(uint32(x))
		} else {
			w(uint64(x))
		}
	}
	str := func(s string) { n(len(s)); b.WriteString(s) }
	b.WriteString("GGUF")
	w(version)
	n(0) // tensors
	n(len(kvs))
	for _, e := range kvs {
		str(e.key)
		switch v := e.value.(type) {
		case string:
			w(ggufString)
			str(v)
		case uint32:
			w(ggufUint32)
			w(v)
		case float32:
			w(ggufFloat32)
			w(v)
		case bool:
			w(ggufBool)
			w(v)
		case []string:
			w(ggufArray)
			w(ggufString)
			n(len(v))
			for _, s := range v {
				str(s)
			}
		case []int32:
			w(ggufArray)
			w(ggufInt32)
			n(len(v))
			w(v)
		case [][]string:
			w(ggufArray)
			w(ggufArray)
			n(len(v))
			for _, inner := range v {
				w(ggufString)
				n(len(inner))
				for _, s := range inner {
					str(s)
				}
			}
		default:
			panic("unsupported test value")
		}
	}
	return b.Bytes()
}

func TestGGUFArchitecture(t *testing.T) {
	before := []kv{
		{"general.name", "tiny"},
		{"general.alignment", uint32(32)},
		{"llama.rope.freq_base", float32(10000)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>", "a"}},
		{"tokenizer.ggml.token_type", []int32{2, 3, 3, 1}},
		{"nested", [][]string{{"a", "b"}, {}, {"c"}}},
	}
	tests := []struct {
		name    string
		file    []byte
		want    string
		wantErr string
	}{
		{"v3 after other keys", ggufFile(3, append(before, kv{"general.architecture", "qwen2"})...), "qwen2", ""},
		{"v2 first key", ggufFile(2, kv{"general.architecture", "llama"}), "llama", ""},
		{"v1 32-bit lengths", ggufFile(1, append(before, kv{"general.architecture", "falcon"})...), "falcon", ""},
		{"architecture not a string", ggufFile(3, kv{"general.architecture", uint32(1)}), "", "want string"},
		{"no architecture", ggufFile(3, before...), "", "no general.architecture"},
		{"unknown version", append([]byte("GGUF\x09\x00\x00\x00"), make([]byte, 16)...), "", "unsupported GGUF version 9"},
		{"wrong magic", []byte("GGML\x03\x00\x00\x00"), "", "not a GGUF file"},
		{"cut inside the metadata", ggufFile(3, append(before, kv{"general.architecture", "llama"})...)[:60], "", "truncated"},
		{"absurd string length", append(ggufFile(3)[:16], []byte("\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f")...), "", "string of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readGGUFArchitecture(bufio.NewReader(bytes.NewReader(tc.file)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("architecture = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestGGUFArchitectureOfRealModel(t *testing.T) {
	// The model's README says general.architecture=llama.
	got, err := ggufArchitecture(storiesPath)
	if err != nil || got != "llama" {
		t.Fatalf("architecture of stories260K.gguf = %q, %v; want llama", got, err)
	}
}
