package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is a Hugging Face checkpoint's weights: model.safetensors, or the shards listed by
// model.safetensors.index.json. It looks tensors up across files.
type Dir struct {
	files  []*File
	byName map[string]*File
	names  []string
}

// OpenDir opens the weights in dir: the index if there is one, else model.safetensors, else the
// only *.safetensors file there.
func OpenDir(dir string) (*Dir, error) {
	d := &Dir{byName: map[string]*File{}}
	idxPath := filepath.Join(dir, IndexFile)
	js, err := os.ReadFile(idxPath)
	switch {
	case err == nil:
		var idx Index
		if err := json.Unmarshal(js, &idx); err != nil {
			return nil, fmt.Errorf("read %s: %w", idxPath, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("read %s: empty weight_map", idxPath)
		}
		opened := map[string]*File{}
		for name, shard := range idx.WeightMap {
			if shard != filepath.Base(shard) {
				d.Close()
				return nil, fmt.Errorf("read %s: shard %q is not a file name in the directory", idxPath, shard)
			}
			f, ok := opened[shard]
			if !ok {
				f, err = Open(filepath.Join(dir, shard))
				if err != nil {
					d.Close()
					return nil, err
				}
				opened[shard] = f
				d.files = append(d.files, f)
			}
			if _, ok := f.Tensor(name); !ok {
				d.Close()
				return nil, fmt.Errorf("read %s: index puts %s in %s, which does not hold it", idxPath, name, shard)
			}
			d.byName[name] = f
		}
	case errors.Is(err, fs.ErrNotExist):
		path := filepath.Join(dir, SingleFile)
		if _, err := os.Stat(path); err != nil {
			matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
			if len(matches) != 1 {
				return nil, fmt.Errorf("open safetensors in %s: no %s or %s (found %d *.safetensors files)", dir, IndexFile, SingleFile, len(matches))
			}
			path = matches[0]
		}
		f, err := Open(path)
		if err != nil {
			return nil, err
		}
		d.files = []*File{f}
		for _, t := range f.Tensors {
			d.byName[t.Name] = f
		}
	default:
		return nil, fmt.Errorf("open safetensors in %s: %w", dir, err)
	}
	for name := range d.byName {
		d.names = append(d.names, name)
	}
	sort.Strings(d.names)
	return d, nil
}

// Names lists every tensor name, sorted.
func (d *Dir) Names() []string { return d.names }

// Tensor returns the info of the named tensor.
func (d *Dir) Tensor(name string) (TensorInfo, bool) {
	f, ok := d.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensor(name)
}

// Float32 returns the named tensor as float32, row-major.
func (d *Dir) Float32(name string) ([]float32, error) {
	f, ok := d.byName[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q", name)
	}
	return f.Float32(name)
}

// Raw returns the named tensor's bytes as stored.
func (d *Dir) Raw(name string) ([]byte, error) {
	f, ok := d.byName[name]
	if !ok {
		return nil, fmt.Errorf("safetensors: no tensor %q", name)
	}
	return f.Raw(name)
}

// Metadata returns the __metadata__ of the first file (shards normally carry the same).
func (d *Dir) Metadata() map[string]string {
	if len(d.files) == 0 {
		return nil
	}
	return d.files[0].Metadata
}

// Close closes every file.
func (d *Dir) Close() error {
	var errs []string
	for _, f := range d.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
