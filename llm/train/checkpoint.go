package train

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/llm/model"
)

// A checkpoint file is
//
//	"LATHECK1" | uint64 LE header length | header (JSON) | float32 LE tensors | sha256 of all before
//
// The tensors are, in the header's order, every trainable tensor (all weights for full fine-tuning,
// the adapters for LoRA) followed by AdamW's first and second moments of each.

const checkpointMagic = "LATHECK1"

type checkpointHeader struct {
	Step        int
	AdamSteps   int
	Config      Config
	ModelConfig json.RawMessage // the network's configuration (llm/model's Config, t5's Config)
	// BaseFingerprint identifies the frozen base weights of a LoRA run (model.Fingerprint).
	BaseFingerprint string          `json:",omitempty"`
	Sampler         *Sampler        `json:",omitempty"`
	User            json.RawMessage `json:",omitempty"`
	Tensors         []checkpointTensor
}

type checkpointTensor struct {
	Name string
	Len  int
}

// ErrCorruptCheckpoint is returned when a checkpoint's checksum or structure is wrong.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// Save writes the whole training state (trainable weights, optimizer moments, step, config, sampler
// and the caller's user state, e.g. its own progress counters as JSON) to path atomically: a
// temporary file in the same directory, fsynced, renamed over path, and the directory fsynced.
func (t *Trainer) Save(path string, user json.RawMessage) error {
	hdr := checkpointHeader{Step: t.step, AdamSteps: t.opt.t, Config: t.cfg, ModelConfig: t.arch,
		Sampler: t.Sampler, User: user}
	if lc, ok := t.net.LoRA(); ok {
		hdr.Config.LoRA = &lc
		hdr.BaseFingerprint = t.net.Fingerprint()
	}
	for _, part := range t.parts() {
		for i, p := range t.params {
			hdr.Tensors = append(hdr.Tensors, checkpointTensor{Name: part.prefix + p.Name, Len: len(part.data[i])})
		}
	}
	head, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("save checkpoint: encode header: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	w.WriteString(checkpointMagic)
	binary.Write(w, binary.LittleEndian, uint64(len(head)))
	w.Write(head)
	buf := make([]byte, 4<<10)
	for _, part := range t.parts() {
		for _, data := range part.data {
			for off := 0; off < len(data); off += len(buf) / 4 {
				chunk := data[off:min(len(data), off+len(buf)/4)]
				for i, v := range chunk {
					binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
				}
				w.Write(buf[:4*len(chunk)])
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if _, err := f.Write(sum.Sum(nil)); err != nil {
		f.Close()
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save checkpoint %s: sync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

type checkpointPart struct {
	prefix string
	data   [][]float32
}

// parts lists the saved tensors: weights, then the two moments, each in the parameters' order.
func (t *Trainer) parts() []checkpointPart {
	var w [][]float32
	for _, p := range t.params {
		w = append(w, p.Data)
	}
	return []checkpointPart{{"", w}, {"adam_m/", t.opt.m}, {"adam_v/", t.opt.v}}
}

// Resume restores a trainer from a checkpoint written by Save. m is the base model the run started
// from (for LoRA its base weights must be the same; for full fine-tuning they are overwritten). It
// returns the trainer, with its Sampler restored when one was saved, and the user state.
func Resume(m *model.Model, path string) (*Trainer, json.RawMessage, error) {
	t, user, err := ResumeNetwork(m, m.Config(), path)
	if err != nil {
		return nil, nil, err
	}
	t.Model = m
	return t, user, nil
}

// ResumeNetwork is Resume for any Network, whose configuration arch must be the one the checkpoint
// recorded.
func ResumeNetwork(m Network, arch any, path string) (*Trainer, json.RawMessage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("resume: %w", err)
	}
	defer f.Close()
	if err := verifyChecksum(f); err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", path, err)
	}
	r := bufio.NewReaderSize(f, 1<<20)
	var magic [8]byte
	var n uint64
	if _, err := io.ReadFull(r, magic[:]); err != nil || string(magic[:]) != checkpointMagic {
		return nil, nil, fmt.Errorf("resume %s: not a Lathe checkpoint: %w", path, ErrCorruptCheckpoint)
	}
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<30 {
		return nil, nil, fmt.Errorf("resume %s: bad header length: %w", path, ErrCorruptCheckpoint)
	}
	head := make([]byte, n)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", path, err)
	}
	var hdr checkpointHeader
	if err := json.Unmarshal(head, &hdr); err != nil {
		return nil, nil, fmt.Errorf("resume %s: header: %v: %w", path, err, ErrCorruptCheckpoint)
	}
	want, err := json.Marshal(arch)
	if err != nil {
		return nil, nil, fmt.Errorf("resume %s: encode the model configuration: %w", path, err)
	}
	got := []byte(hdr.ModelConfig)
	if !bytes.Equal(want, got) {
		return nil, nil, fmt.Errorf("resume %s: checkpoint is for model %s, not %s", path, got, want)
	}
	if hdr.BaseFingerprint != "" {
		if fp := m.Fingerprint(); fp != hdr.BaseFingerprint {
			return nil, nil, fmt.Errorf("resume %s: the adapters were trained on other base weights (fingerprint %s, this model %s)", path, hdr.BaseFingerprint, fp)
		}
	}
	t, err := NewNetwork(m, arch, hdr.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("resume %s: %w", path, err)
	}
	parts := t.parts()
	i := 0
	for _, part := range parts {
		for j, p := range t.params {
			if i >= len(hdr.Tensors) || hdr.Tensors[i].Name != part.prefix+p.Name || hdr.Tensors[i].Len != len(part.data[j]) {
				return nil, nil, fmt.Errorf("resume %s: tensor %d does not match the model's %s%s: %w", path, i, part.prefix, p.Name, ErrCorruptCheckpoint)
			}
			i++
		}
	}
	buf := make([]byte, 4<<10)
	for _, part := range parts {
		for _, data := range part.data {
			for off := 0; off < len(data); off += len(buf) / 4 {
				chunk := data[off:min(len(data), off+len(buf)/4)]
				if _, err := io.ReadFull(r, buf[:4*len(chunk)]); err != nil {
					return nil, nil, fmt.Errorf("resume %s: %w", path, err)
				}
				for k := range chunk {
					chunk[k] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*k:]))
				}
			}
		}
	}
	t.step, t.opt.t = hdr.Step, hdr.AdamSteps
	if hdr.Sampler != nil {
		t.Sampler = hdr.Sampler
		t.Sampler.orderE = -1
	}
	return t, hdr.User, nil
}

// verifyChecksum checks that the last 32 bytes of f are the sha256 of the rest.
func verifyChecksum(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if size < int64(len(checkpointMagic)+8+sha256.Size) {
		return fmt.Errorf("file of %d bytes is too short: %w", size, ErrCorruptCheckpoint)
	}
	var h hash.Hash = sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size-sha256.Size)); err != nil {
		return err
	}
	stored := make([]byte, sha256.Size)
	if _, err := f.ReadAt(stored, size-sha256.Size); err != nil {
		return err
	}
	if !bytes.Equal(stored, h.Sum(nil)) {
		return fmt.Errorf("checksum mismatch: %w", ErrCorruptCheckpoint)
	}
	return nil
}
