// Package modelstore keeps the base models a fine-tuning job starts from: a folder (normally
// <data dir>/models) with one sub-folder per model, holding either one GGUF file or a Hugging Face
// directory (config.json, *.safetensors, tokenizer files), and a manifest.json that records the
// format, the architecture, every file's size and sha256, and where the model came from.
//
// The store is safe to use from several processes at once (the server and `lathe models import`
// run side by side): a model becomes visible only by renaming a complete staging folder into place,
// and it disappears by being renamed out of the way before it is deleted, so a reader never sees a
// half-written model. Downloads from the Hugging Face hub are serialised per model by a file lock.
package modelstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Format is how a model's weights are laid out on disk.
type Format string

const (
	// FormatGGUF is one .gguf file (llama.cpp / ollama).
	FormatGGUF Format = "gguf"
	// FormatHF is a Hugging Face directory: config.json, *.safetensors, tokenizer files.
	FormatHF Format = "hf"
)

// Errors callers can test for with errors.Is.
var (
	ErrNotFound = errors.New("model not found in the model store")
	ErrExists   = errors.New("model already in the model store")
	ErrGated    = errors.New("gated or private repository")
	ErrChecksum = errors.New("checksum mismatch")
)

// ManifestName is the file in each model's folder that describes it.
const ManifestName = "manifest.json"

// Folders of the store root that are not models; model names cannot start with a dot.
const (
	stagingDir   = ".staging"   // imports being copied
	downloadsDir = ".downloads" // pulls in progress (resumable), and their lock files
	trashDir     = ".trash"     // models being removed
)

// File is one file of a model, relative to the model's folder.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Source says where a model came from: a Hugging Face hub repository, or a local path it was
// imported from.
type Source struct {
	Endpoint string `json:"endpoint,omitempty"` // hub URL the model was pulled from
	Repo     string `json:"repo,omitempty"`     // hub repository, e.g. HuggingFaceTB/SmolLM2-135M
	Revision string `json:"revision,omitempty"` // commit the files were downloaded at (or the requested revision when the hub did not say)
	File     string `json:"file,omitempty"`     // the one file pulled, for GGUF models
	Path     string `json:"path,omitempty"`     // absolute local path the model was imported from
}

// String is the source as a person reads it: "repo@revision" or the imported path.
func (s Source) String() string {
	if s.Repo == "" {
		return s.Path
	}
	out := s.Repo
	if s.File != "" {
		out += "/" + s.File
	}
	rev := s.Revision
	if len(rev) == 40 { // a commit id: the short form is enough to find it
		rev = rev[:10]
	}
	if rev != "" {
		out += "@" + rev
	}
	return out
}

// Entry is one model of the store, as its manifest describes it.
type Entry struct {
	Name         string    `json:"name"`
	Format       Format    `json:"format"`
	Architecture string    `json:"architecture"`
	Files        []File    `json:"files"`
	Source       Source    `json:"source"`
	Added        time.Time `json:"added"` // when it was imported or pulled
}

// Size is the total size of the model's files in bytes.
func (e Entry) Size() int64 {
	var n int64
	for _, f := range e.Files {
		n += f.Size
	}
	return n
}

// Store is a model store rooted at one directory.
type Store struct {
	root string
}

// Open opens the model store rooted at dir (normally <data dir>/models), creating it when missing.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("model store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create model store: %w", err)
	}
	// Finish removals a crash interrupted: nothing refers to a model once it is in the trash.
	if trash, err := os.ReadDir(filepath.Join(abs, trashDir)); err == nil {
		for _, d := range trash {
			_ = os.RemoveAll(filepath.Join(abs, trashDir, d.Name()))
		}
	}
	return &Store{root: abs}, nil
}

// DirName is the store's folder inside Lathe's data dir.
const DirName = "models"

// OpenDataDir opens the model store of a Lathe data dir: <dataDir>/models. The server, the worker
// and the CLI all open it this way, so they share one store.
func OpenDataDir(dataDir string) (*Store, error) { return Open(filepath.Join(dataDir, DirName)) }

// Dir is the store's root directory.
func (s *Store) Dir() string { return s.root }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether name can name a model in the store: letters, digits, '.', '_' and
// '-', starting with a letter or digit, at most 128 characters (all catalog names qualify).
func ValidName(name string) bool { return nameRE.MatchString(name) }

func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("invalid model name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	return nil
}

// List returns every model in the store, sorted by name.
func (s *Store) List() ([]Entry, error) {
	dirents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list model store %s: %w", s.root, err)
	}
	var out []Entry
	for _, d := range dirents {
		if !d.IsDir() || !ValidName(d.Name()) {
			continue
		}
		e, err := readManifest(filepath.Join(s.root, d.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // not a model folder (models appear with their manifest, by rename)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get returns the model with the given name, or an error wrapping ErrNotFound.
func (s *Store) Get(name string) (Entry, error) {
	if err := checkName(name); err != nil {
		return Entry{}, err
	}
	e, err := readManifest(filepath.Join(s.root, name))
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, fmt.Errorf("model %s: %w (%s)", name, ErrNotFound, s.root)
	}
	return e, err
}

// Path returns what the engine loads for the model: the .gguf file of a GGUF model, the directory
// of a Hugging Face model.
func (s *Store) Path(name string) (string, error) {
	e, err := s.Get(name)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(s.root, name)
	if e.Format == FormatGGUF {
		if len(e.Files) != 1 {
			return "", fmt.Errorf("model %s: manifest lists %d files, a GGUF model has one", name, len(e.Files))
		}
		return filepath.Join(dir, e.Files[0].Path), nil
	}
	return dir, nil
}

// Remove deletes a model. It first renames the model's folder out of the store, so other processes
// see either the whole model or none of it; a process that has the files open keeps reading them.
func (s *Store) Remove(name string) error {
	if _, err := s.Get(name); err != nil {
		return err
	}
	trash := filepath.Join(s.root, trashDir)
	if err := os.MkdirAll(trash, 0o755); err != nil {
		return fmt.Errorf("remove model %s: %w", name, err)
	}
	gone := filepath.Join(trash, name+"-"+randomSuffix())
	if err := os.Rename(filepath.Join(s.root, name), gone); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("model %s: %w", name, ErrNotFound)
		}
		return fmt.Errorf("remove model %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove model %s: delete %s: %w", name, gone, err)
	}
	return nil
}

// Import copies a model into the store under name: srcPath is a GGUF file or a Hugging Face
// directory. The copy is staged in a private folder, hashed, described by a manifest and then
// renamed into place, so a failed or concurrent import never leaves a half model behind.
func (s *Store) Import(ctx context.Context, srcPath, name string) (Entry, error) {
	if err := checkName(name); err != nil {
		return Entry{}, err
	}
	abs, err := filepath.Abs(srcPath)
	if err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", srcPath, err)
	}
	if _, err := s.Get(name); err == nil {
		return Entry{}, fmt.Errorf("import %s as %s: %w (to replace it, run \"lathe models rm %s\" first)", srcPath, name, ErrExists, name)
	}
	files, format, err := modelFiles(abs)
	if err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", srcPath, err)
	}

	stage, err := s.newStagingDir(name)
	if err != nil {
		return Entry{}, err
	}
	defer os.RemoveAll(stage) // gone after a successful rename; cleans up a failed import

	entry := Entry{Name: name, Format: format, Source: Source{Path: abs}}
	for _, rel := range files {
		src := rel
		if format == FormatHF {
			src = filepath.Join(abs, rel)
		}
		dstRel := filepath.Base(rel)
		size, sum, err := copyFile(ctx, src, filepath.Join(stage, dstRel))
		if err != nil {
			return Entry{}, fmt.Errorf("import %s: %w", srcPath, err)
		}
		entry.Files = append(entry.Files, File{Path: dstRel, Size: size, SHA256: sum})
	}
	if entry.Architecture, err = architecture(stage, entry); err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", srcPath, err)
	}
	entry.Added = time.Now().UTC()
	if err := s.commit(stage, entry); err != nil {
		return Entry{}, fmt.Errorf("import %s: %w", srcPath, err)
	}
	return entry, nil
}

func (s *Store) newStagingDir(name string) (string, error) {
	parent := filepath.Join(s.root, stagingDir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("create staging folder: %w", err)
	}
	dir, err := os.MkdirTemp(parent, name+"-")
	if err != nil {
		return "", fmt.Errorf("create staging folder: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("create staging folder: %w", err)
	}
	return dir, nil
}

// commit writes the manifest into the complete staging folder and renames the folder into the
// store. The rename is atomic: if another process got there first, it fails and nothing changes.
func (s *Store) commit(stage string, e Entry) error {
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(stage, ManifestName), append(data, '\n')); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := syncDir(stage); err != nil {
		return err
	}
	final := filepath.Join(s.root, e.Name)
	if err := os.Rename(stage, final); err != nil {
		if _, statErr := os.Stat(filepath.Join(final, ManifestName)); statErr == nil {
			return fmt.Errorf("model %s: %w", e.Name, ErrExists)
		}
		return fmt.Errorf("move model %s into the store: %w", e.Name, err)
	}
	return syncDir(s.root)
}

func readManifest(dir string) (Entry, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return Entry{}, err
	}
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		return Entry{}, fmt.Errorf("read manifest of %s: %w", dir, err)
	}
	return e, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a rename or a new file in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
