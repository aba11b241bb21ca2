package endpoint

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// sourceMarker, inside a variant's download folder, holds the URI the folder was downloaded from;
// it is written last, so its presence means the download is complete (a restart reuses it).
const sourceMarker = ".lathe-source"

// loadDeployment downloads and loads every variant's model.
func (s *Service) loadDeployment(ctx context.Context, key string, dep deployment) ([]liveVariant, error) {
	var out []liveVariant
	for _, v := range dep.Variants {
		eng, err := s.loadVariant(ctx, key, v)
		if err == nil && ctx.Err() != nil {
			eng.Close()
			err = ctx.Err()
		}
		if err != nil {
			for _, lv := range out {
				lv.engine.Close()
			}
			return nil, fmt.Errorf("variant %s (model %s): %w", v.Name, v.ModelName, err)
		}
		out = append(out, liveVariant{name: v.Name, weight: v.Weight, engine: eng})
	}
	return out, nil
}

func (s *Service) loadVariant(ctx context.Context, key string, v variantSpec) (*serving.Engine, error) {
	return loadModel(ctx, s.cfg.Objects, s.cfg.Models, s.cfg.Serving, v, filepath.Join(s.endpointDir(key), strings.ToLower(v.Name)))
}

// loadModel downloads a variant's model into dir (a base model comes from models instead) and loads
// it: what an API node does for its own endpoints and a worker for its replicas.
func loadModel(ctx context.Context, objects Objects, models ModelSource, opts serving.Options, v variantSpec, dir string) (*serving.Engine, error) {
	base := v.Environment[EnvBaseModel]
	var modelPath string
	if v.Source == "" {
		if models == nil {
			return nil, errors.New("this server has no model store to serve base models from")
		}
		p, err := models.Resolve(ctx, base, nil)
		if err != nil {
			return nil, fmt.Errorf("base model %s: %w", base, err)
		}
		modelPath = p
	} else {
		p, err := FetchModel(ctx, objects, v.Source, dir)
		if err != nil {
			return nil, err
		}
		modelPath = p
		if base == "" {
			base = TrainedFrom(ctx, objects, v.Source)
		}
	}
	format := serving.FormatFor(base)
	if f, ok := v.Environment[EnvPromptFormat]; ok {
		pf, err := serving.ParsePromptFormat(f)
		if err != nil {
			return nil, err
		}
		format = pf
	}
	opts.Format = format
	if w, ok := v.Environment[EnvWeights]; ok {
		weights, err := serving.ParseWeights(w)
		if err != nil {
			return nil, err
		}
		opts.Weights = weights
	}
	return serving.Load(modelPath, opts)
}

// TrainedFrom reads the base model of a fine-tuning job's artifact from the metrics.json the
// pipeline writes beside the model prefix (S3OutputPath/<job>/model/ -> .../<job>/metrics.json);
// "" when there is none.
func TrainedFrom(ctx context.Context, objects Objects, source string) string {
	if strings.HasSuffix(source, ".gguf") {
		return ""
	}
	parent := strings.TrimSuffix(source, "/")
	i := strings.LastIndex(parent, "/")
	if i < len("s3://") {
		return ""
	}
	data, err := objects.Get(ctx, parent[:i+1]+"metrics.json")
	if err != nil {
		return ""
	}
	var m struct {
		BaseModel string `json:"base_model"`
	}
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	return m.BaseModel
}

// FetchModel fetches a model artifact into dir, as CreateModel's ModelDataUrl names it: every
// object under an s3:// prefix (a Hugging Face directory, such as a job's ModelDataUrl; its .gguf
// copy is skipped when config.json is there), one .gguf object, or a model.tar.gz. It returns what
// to load. A dir already holding a complete download of source is reused.
func FetchModel(ctx context.Context, objects Objects, source, dir string) (string, error) {
	if objects == nil {
		return "", errors.New("this server has no object store to read model data from")
	}
	bucket, key, err := blob.ParseURI(source)
	if err != nil {
		return "", err
	}
	if b, err := os.ReadFile(filepath.Join(dir, sourceMarker)); err == nil && string(b) == source {
		return serving.ModelPath(dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	objs, err := objects.List(ctx, source)
	if err != nil {
		return "", fmt.Errorf("list %s: %w", source, err)
	}
	prefix := key
	if len(objs) == 1 && objs[0].Key == key {
		if strings.HasSuffix(key, ".tar.gz") {
			return downloadTarball(ctx, objects, source, dir)
		}
		if !strings.HasSuffix(key, ".gguf") {
			return "", fmt.Errorf("%s is neither a .gguf file, a model.tar.gz nor a model directory", source)
		}
		prefix = path.Dir(key) + "/"
	} else if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
		if objs, err = objects.List(ctx, "s3://"+bucket+"/"+prefix); err != nil {
			return "", fmt.Errorf("list %s: %w", source, err)
		}
	}
	if len(objs) == 0 {
		return "", fmt.Errorf("no model data at %s", source)
	}
	hasConfig := false
	for _, o := range objs {
		hasConfig = hasConfig || o.Key == prefix+"config.json"
	}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		if rel == "" || strings.HasSuffix(rel, "/") || (hasConfig && strings.HasSuffix(rel, ".gguf")) {
			continue
		}
		local := filepath.Join(dir, filepath.FromSlash(rel))
		if !strings.HasPrefix(local, dir+string(filepath.Separator)) {
			return "", fmt.Errorf("object key %s leaves the model folder", o.Key)
		}
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return "", err
		}
		if err := objects.Download(ctx, o.URI, local); err != nil {
			return "", fmt.Errorf("download %s: %w", o.URI, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, sourceMarker), []byte(source), 0o644); err != nil {
		return "", err
	}
	return serving.ModelPath(dir)
}

// downloadTarball fetches a model.tar.gz (SageMaker's usual model artifact) and unpacks it into dir.
func downloadTarball(ctx context.Context, objects Objects, source, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tarball := filepath.Join(dir, ".model.tar.gz")
	if err := objects.Download(ctx, source, tarball); err != nil {
		return "", fmt.Errorf("download %s: %w", source, err)
	}
	defer os.Remove(tarball)
	if err := untar(tarball, dir); err != nil {
		return "", fmt.Errorf("unpack %s: %w", source, err)
	}
	if err := os.WriteFile(filepath.Join(dir, sourceMarker), []byte(source), 0o644); err != nil {
		return "", err
	}
	return serving.ModelPath(dir)
}

// untar unpacks the regular files and folders of a gzipped tar into dir, refusing paths that leave it.
func untar(tarball, dir string) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		local := filepath.Join(dir, filepath.FromSlash(h.Name))
		if local == dir {
			continue
		}
		if !strings.HasPrefix(local, dir+string(filepath.Separator)) {
			return fmt.Errorf("entry %s leaves the model folder", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(local, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
				return err
			}
			out, err := os.Create(local)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
