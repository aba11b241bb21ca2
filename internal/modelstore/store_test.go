package modelstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The real model these machines have, and its sha256 as its README publishes it.
const (
	storiesPath   = "../../../shared/models/stories260K.gguf"
	storiesSHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"
	storiesSize   = 1185376
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "models"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// safetensors builds a valid safetensors file holding one float32 tensor of the given values.
func safetensors(name string, values ...float32) []byte {
	header := fmt.Sprintf(`{%q:{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}}`, name, len(values), 4*len(values))
	for len(header)%8 != 0 {
		header += " "
	}
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
	b.WriteString(header)
	_ = binary.Write(&b, binary.LittleEndian, values)
	return b.Bytes()
}

// hfModel is a small sharded Hugging Face model directory plus files the store must leave out.
func hfModel() map[string][]byte {
	index := `{"metadata":{"total_size":24},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}`
	return map[string][]byte{
		"config.json":                      []byte(`{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":4}`),
		"generation_config.json":           []byte(`{"bos_token_id":1}`),
		"tokenizer.json":                   []byte(`{"version":"1.0","model":{"type":"BPE"}}`),
		"tokenizer_config.json":            []byte(`{"chat_template":"{{ messages }}"}`),
		"special_tokens_map.json":          []byte(`{"bos_token":"<s>"}`),
		"model.safetensors.index.json":     []byte(index),
		"model-00001-of-00002.safetensors": safetensors("a", 1, 2, 3),
		"model-00002-of-00002.safetensors": safetensors("b", 4, 5, 6),
		"pytorch_model.bin":                []byte("pickled duplicate weights"),
		"README.md":                        []byte("# a model card"),
	}
}

var hfWanted = []string{
	"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
	"special_tokens_map.json", "model.safetensors.index.json",
	"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
}

func writeDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func fileNames(e Entry) []string {
	var out []string
	for _, f := range e.Files {
		out = append(out, f.Path)
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestImportRealGGUF(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	e, err := s.Import(ctx, storiesPath, "Stories260K")
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != FormatGGUF || e.Architecture != "llama" {
		t.Errorf("format %s architecture %q, want gguf llama", e.Format, e.Architecture)
	}
	if len(e.Files) != 1 || e.Files[0].SHA256 != storiesSHA256 || e.Size() != storiesSize {
		t.Errorf("files %+v, want one file of %d bytes with sha256 %s", e.Files, storiesSize, storiesSHA256)
	}
	abs, _ := filepath.Abs(storiesPath)
	if e.Source.Path != abs || e.Source.String() != abs {
		t.Errorf("source %+v, want path %s", e.Source, abs)
	}

	p, err := s.Path("Stories260K")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil || sha(data) != storiesSHA256 || filepath.Base(p) != "stories260K.gguf" {
		t.Errorf("Path = %s (read err %v): not the model's bytes", p, err)
	}

	// A second process opening the same folder sees the model as the first left it.
	s2, err := Open(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Get("Stories260K")
	if err != nil || got.Files[0].SHA256 != storiesSHA256 || !got.Added.Equal(e.Added) {
		t.Errorf("Get from a second store = %+v, %v", got, err)
	}

	if _, err := s.Import(ctx, storiesPath, "Stories260K"); !errors.Is(err, ErrExists) {
		t.Errorf("second import under the same name: %v, want ErrExists", err)
	}
	if err := s.Remove("Stories260K"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("Stories260K"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Remove: %v, want ErrNotFound", err)
	}
	if err := s.Remove("Stories260K"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove twice: %v, want ErrNotFound", err)
	}
	if list, err := s.List(); err != nil || len(list) != 0 {
		t.Errorf("List after Remove = %v, %v; want empty", list, err)
	}
	if _, err := os.Stat(storiesPath); err != nil {
		t.Errorf("the source file must survive Remove: %v", err)
	}
}

func TestImportHFDirectory(t *testing.T) {
	src := hfModel()
	dir := writeDir(t, src)
	s := openStore(t)
	e, err := s.Import(context.Background(), dir, "tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	if e.Format != FormatHF || e.Architecture != "llama" {
		t.Errorf("format %s architecture %q, want hf llama", e.Format, e.Architecture)
	}
	if !sameSet(fileNames(e), hfWanted) {
		t.Errorf("files %v, want %v (no .bin duplicate, no README)", fileNames(e), hfWanted)
	}
	p, err := s.Path("tiny-llama")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range e.Files {
		if f.SHA256 != sha(src[f.Path]) || f.Size != int64(len(src[f.Path])) {
			t.Errorf("%s: size %d sha %s, want %d %s", f.Path, f.Size, f.SHA256, len(src[f.Path]), sha(src[f.Path]))
		}
		data, err := os.ReadFile(filepath.Join(p, f.Path))
		if err != nil || !bytes.Equal(data, src[f.Path]) {
			t.Errorf("%s in the store differs from the source (%v)", f.Path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(p, "pytorch_model.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pytorch_model.bin was copied: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Name != "tiny-llama" {
		t.Errorf("List = %v, %v", list, err)
	}
}

func TestImportSingleSafetensors(t *testing.T) {
	dir := writeDir(t, map[string][]byte{
		"config.json":       []byte(`{"model_type":"qwen2"}`),
		"model.safetensors": safetensors("w", 1),
		"tokenizer.json":    []byte(`{}`),
		"onnx/model.onnx":   []byte("onnx"),
	})
	e, err := openStore(t).Import(context.Background(), dir, "q")
	if err != nil {
		t.Fatal(err)
	}
	if e.Architecture != "qwen2" || !sameSet(fileNames(e), []string{"config.json", "model.safetensors", "tokenizer.json"}) {
		t.Errorf("entry %+v", e)
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	hf := func(drop string, change map[string][]byte) map[string][]byte {
		m := hfModel()
		delete(m, drop)
		for k, v := range change {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		src     func(t *testing.T) string
		as      string
		wantErr string
	}{
		{"missing path", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.gguf") }, "m", "no such file"},
		{"text file", func(t *testing.T) string {
			return writeDir(t, map[string][]byte{"m.gguf": []byte("hello")}) + "/m.gguf"
		}, "m", "not a GGUF file"},
		{"gguf truncated after the magic", func(t *testing.T) string {
			return writeDir(t, map[string][]byte{"m.gguf": []byte("GGUF\x03\x00\x00\x00\x00")}) + "/m.gguf"
		}, "m", "truncated or corrupt header"},
		{"gguf without architecture", func(t *testing.T) string {
			return writeDir(t, map[string][]byte{"m.gguf": ggufFile(3, kv{"general.name", "x"})}) + "/m.gguf"
		}, "m", "no general.architecture"},
		{"directory holding a gguf", func(t *testing.T) string {
			return writeDir(t, map[string][]byte{"m.gguf": ggufFile(3, kv{"general.architecture", "llama"})})
		}, "m", "pass the file itself"},
		{"no config.json", func(t *testing.T) string { return writeDir(t, hf("config.json", nil)) }, "m", "no config.json"},
		{"only pytorch weights", func(t *testing.T) string {
			return writeDir(t, map[string][]byte{"config.json": []byte(`{"model_type":"llama"}`), "pytorch_model.bin": []byte("x")})
		}, "m", "no *.safetensors weights"},
		{"shard missing", func(t *testing.T) string { return writeDir(t, hf("model-00002-of-00002.safetensors", nil)) }, "m", "names shard model-00002-of-00002.safetensors, which is missing"},
		{"index escaping the folder", func(t *testing.T) string {
			return writeDir(t, hf("", map[string][]byte{"model.safetensors.index.json": []byte(`{"weight_map":{"a":"../x.safetensors"}}`)}))
		}, "m", "outside the model directory"},
		{"config without model_type", func(t *testing.T) string {
			return writeDir(t, hf("", map[string][]byte{"config.json": []byte(`{"hidden_size":4}`)}))
		}, "m", "config.json has no model_type"},
		{"name with a slash", func(t *testing.T) string { return storiesPath }, "../evil", "invalid model name"},
		{"empty name", func(t *testing.T) string { return storiesPath }, "", "invalid model name"},
		{"name starting with a dot", func(t *testing.T) string { return storiesPath }, ".staging", "invalid model name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			_, err := s.Import(context.Background(), tc.src(t), tc.as)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Import error = %v, want one containing %q", err, tc.wantErr)
			}
			if list, _ := s.List(); len(list) != 0 {
				t.Errorf("a failed import left %v in the store", list)
			}
			if left, _ := os.ReadDir(filepath.Join(s.Dir(), stagingDir)); len(left) != 0 {
				t.Errorf("a failed import left %d staging folders", len(left))
			}
		})
	}
}

func TestConcurrentImportsOfOneName(t *testing.T) {
	s := openStore(t)
	dir := writeDir(t, hfModel())
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine opens its own Store, as separate processes would.
			s2, err := Open(s.Dir())
			if err == nil {
				_, err = s2.Import(context.Background(), dir, "m")
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrExists):
			t.Errorf("concurrent import failed with %v, want success or ErrExists", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d imports succeeded, want exactly 1", ok)
	}
	e, err := s.Get("m")
	if err != nil || !sameSet(fileNames(e), hfWanted) {
		t.Errorf("Get = %+v, %v", e, err)
	}
	p, _ := s.Path("m")
	if ents, _ := os.ReadDir(p); len(ents) != len(hfWanted)+1 { // + manifest.json
		t.Errorf("model folder has %d entries, want %d", len(ents), len(hfWanted)+1)
	}
}

func TestListSkipsWorkFolders(t *testing.T) {
	s := openStore(t)
	for _, d := range []string{stagingDir + "/x-1", downloadsDir + "/y", trashDir + "/old-1/sub", "half-written"} {
		if err := os.MkdirAll(filepath.Join(s.Dir(), d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Import(context.Background(), storiesPath, "Stories260K"); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Name != "Stories260K" {
		t.Errorf("List = %+v, %v; want only Stories260K", list, err)
	}
	if _, err := s.Get("half-written"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a folder without a manifest: Get = %v, want ErrNotFound", err)
	}
	// A removal that a crash interrupted is finished by the next Open.
	if _, err := Open(s.Dir()); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(s.Dir(), trashDir)); len(left) != 0 {
		t.Errorf("Open left %d folders in the trash", len(left))
	}
}

func TestManifestOnDisk(t *testing.T) {
	s := openStore(t)
	if _, err := s.Import(context.Background(), storiesPath, "Stories260K"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(s.Dir(), "Stories260K", ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "format", "architecture", "files", "source", "added"} {
		if _, ok := m[k]; !ok {
			t.Errorf("manifest lacks %q: %s", k, data)
		}
	}
	if m["format"] != "gguf" || !strings.Contains(string(data), storiesSHA256) {
		t.Errorf("manifest %s", data)
	}
}
