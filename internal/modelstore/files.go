package modelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// hfMetadataFiles are the small files of a Hugging Face directory that the engine reads besides the
// weights. Everything else (pytorch_model.bin, *.pth, onnx/, *.gguf, flax and tf weights) duplicates
// the safetensors weights in another format and is left out.
var hfMetadataFiles = []string{
	"config.json",
	"generation_config.json",
	"tokenizer.json",
	"tokenizer_config.json",
	"special_tokens_map.json",
	"chat_template.jinja", // newer repos keep the chat template here instead of tokenizer_config.json
	"spiece.model",        // T5's SentencePiece model: the tokenizer of repos without tokenizer.json
}

const (
	hfConfig      = "config.json"
	safetensorsIx = "model.safetensors.index.json"
)

// selectHFFiles picks, from the top-level file names of a Hugging Face directory, the files the
// store keeps. The weights are the shards the index names when there is an index, else
// model.safetensors, else every *.safetensors file (a single unindexed checkpoint under another
// name). shards is called only when names contains the index.
func selectHFFiles(names []string, shards func() ([]string, error)) ([]string, error) {
	var out []string
	for _, n := range names {
		if slices.Contains(hfMetadataFiles, n) {
			out = append(out, n)
		}
	}
	switch {
	case slices.Contains(names, safetensorsIx):
		list, err := shards()
		if err != nil {
			return nil, err
		}
		for _, s := range list {
			if !slices.Contains(names, s) {
				return nil, fmt.Errorf("%s names shard %s, which is missing", safetensorsIx, s)
			}
		}
		out = append(out, safetensorsIx)
		out = append(out, list...)
	case slices.Contains(names, "model.safetensors"):
		out = append(out, "model.safetensors")
	default:
		for _, n := range names {
			if strings.HasSuffix(n, ".safetensors") {
				out = append(out, n)
			}
		}
	}
	if !slices.Contains(out, hfConfig) {
		return nil, errors.New("no config.json: a Hugging Face model directory needs config.json and *.safetensors weights")
	}
	if !slices.ContainsFunc(out, func(n string) bool { return strings.HasSuffix(n, ".safetensors") }) {
		return nil, errors.New("no *.safetensors weights (only safetensors are supported; convert pytorch_model.bin first)")
	}
	return out, nil
}

// indexShards returns the distinct shard files a model.safetensors.index.json maps tensors to.
func indexShards(data []byte) ([]string, error) {
	var ix struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(data, &ix); err != nil {
		return nil, fmt.Errorf("parse %s: %w", safetensorsIx, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("%s has no weight_map", safetensorsIx)
	}
	var shards []string
	for _, f := range ix.WeightMap {
		if f != filepath.Base(f) || f == "." || f == ".." {
			return nil, fmt.Errorf("%s names shard %q outside the model directory", safetensorsIx, f)
		}
		if !slices.Contains(shards, f) {
			shards = append(shards, f)
		}
	}
	slices.Sort(shards)
	return shards, nil
}

// modelFiles says what an import source is and which files to copy: for a GGUF file, the file
// itself (absolute); for a Hugging Face directory, the selected file names inside it.
func modelFiles(src string) ([]string, Format, error) {
	info, err := os.Stat(src)
	if err != nil {
		return nil, "", err
	}
	if !info.IsDir() {
		if err := checkGGUFMagic(src); err != nil {
			return nil, "", err
		}
		return []string{src}, FormatGGUF, nil
	}
	dirents, err := os.ReadDir(src)
	if err != nil {
		return nil, "", err
	}
	var names, ggufs []string
	for _, d := range dirents {
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			names = append(names, d.Name())
			if strings.HasSuffix(d.Name(), ".gguf") {
				ggufs = append(ggufs, d.Name())
			}
		}
	}
	if !slices.Contains(names, hfConfig) && len(ggufs) > 0 {
		return nil, "", fmt.Errorf("%s is a directory without config.json; to import a GGUF model pass the file itself (%s)", src, filepath.Join(src, ggufs[0]))
	}
	files, err := selectHFFiles(names, func() ([]string, error) {
		data, err := os.ReadFile(filepath.Join(src, safetensorsIx))
		if err != nil {
			return nil, err
		}
		return indexShards(data)
	})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", src, err)
	}
	return files, FormatHF, nil
}

// architecture reads the architecture of a complete model folder: general.architecture from a GGUF
// file, model_type from a Hugging Face config.json.
func architecture(dir string, e Entry) (string, error) {
	if e.Format == FormatGGUF {
		return ggufArchitecture(filepath.Join(dir, e.Files[0].Path))
	}
	data, err := os.ReadFile(filepath.Join(dir, hfConfig))
	if err != nil {
		return "", err
	}
	var cfg struct {
		ModelType string `json:"model_type"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return "", fmt.Errorf("parse config.json: %w", err)
	}
	if cfg.ModelType == "" {
		return "", errors.New("config.json has no model_type")
	}
	return cfg.ModelType, nil
}

// copyFile copies src to dst (a new file), returning its size and sha256, and syncs dst to disk.
func copyFile(ctx context.Context, src, dst string) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, in})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", fmt.Errorf("copy %s: %w", src, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
