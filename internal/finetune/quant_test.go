package finetune

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/gguf"
	"github.com/lathe-ml/lathe/llm/format/safetensors"
	"github.com/lathe-ml/lathe/llm/model"
	"github.com/lathe-ml/lathe/llm/tokenizer"
)

// writeQ4KMModel writes a random llama (rows of 256 values) with Stories260K's tokenizer as a GGUF
// file quantized as llama-quantize's Q4_K_M, and returns its path.
func writeQ4KMModel(t *testing.T) string {
	t.Helper()
	ck, err := format.Open(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	mc := ck.Config()
	ck.Close()
	mc.Dim, mc.Layers, mc.Heads, mc.KVHeads, mc.HeadDim, mc.FFN, mc.RopeDim = 256, 2, 4, 4, 64, 512, 64
	mc.TiedEmbeddings = false
	cfg, err := model.ConfigFrom(mc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.NewRandom(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	kvs, err := tok.GGUFMetadata()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rand-Q4_K_M.gguf")
	opts := format.GGUFOptions{Type: gguf.Q4_K, Extra: kvs,
		TypeOf: func(name string, shape []int) gguf.TensorType {
			return gguf.Q4KM(name, shape[len(shape)-1], cfg.Layers)
		}}
	if err := format.WriteGGUF(path, m.ExportConfig(mc), m.NamedTensors(), opts); err != nil {
		t.Fatal(err)
	}
	return path
}

// QLoRA as a user runs it: a Q4_K_M GGUF imported into the model store (`lathe models import`), then
// a LoRA fine-tune of it (`lathe finetune --method lora`). The base stays in its 4-bit blocks while it
// trains, the run learns, and the exported PEFT adapter added to the base's values (the Q4_K_M blocks
// decoded, which is what the exported merged model holds) gives the merged weights.
func TestLoRAOnQ4KMBaseFromTheStore(t *testing.T) {
	store, err := modelstore.Open(filepath.Join(t.TempDir(), "models"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Import(context.Background(), writeQ4KMModel(t), "rand-Q4_K_M"); err != nil {
		t.Fatal(err)
	}
	path, err := store.Path("rand-Q4_K_M")
	if err != nil {
		t.Fatal(err)
	}
	quantized := false
	var engine *engineModel
	load := func(p string, e catalog.Model) (LanguageModel, error) {
		lm, err := LoadModel(p, e)
		if em, ok := lm.(*engineModel); ok {
			quantized, _ = em.m.QuantizedWeights()
			engine = em
		}
		return lm, err
	}
	out := t.TempDir()
	rep, err := Local{ModelPath: path, Entry: LocalEntry(path, false), Training: familyTaskCSV(t), ValidationFraction: 0.2,
		HyperParameters: map[string]string{"epochCount": "4", "batchSize": "8", "learningRate": "0.01"}, Method: "lora",
		OutDir: out, Load: load}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !quantized {
		t.Fatal("the Q4_K_M base was widened at load")
	}
	// The export streamed the merge: the base is still in its blocks afterwards (a 7B's would not
	// have fit in float32 beside them), adapters attached.
	if q, _ := engine.m.QuantizedWeights(); !q {
		t.Error("the export widened the Q4_K_M base")
	}
	if _, ok := engine.m.LoRA(); !ok {
		t.Error("the export merged the adapters into the model")
	}
	b, f := rep.Base, rep.FineTuned
	t.Logf("validation loss %.4f -> %.4f", b.ValidationLoss, f.ValidationLoss)
	if !(f.ValidationLoss < b.ValidationLoss-1) {
		t.Fatalf("did not learn: validation loss %.4f -> %.4f", b.ValidationLoss, f.ValidationLoss)
	}

	// the base's values: the store's file, widened
	base, err := model.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	base.WidenWeights()
	var w0 []float32
	for _, tn := range base.NamedTensors() {
		if tn.Name == "blk.1.ffn_down.weight" { // Q6_K in Q4_K_M's mix (the last block)
			w0 = tn.Data
		}
	}
	ad, err := safetensors.Open(filepath.Join(out, "adapter", "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	tuned, err := safetensors.OpenDir(out)
	if err != nil {
		t.Fatal(err)
	}
	defer tuned.Close()
	const module = "model.layers.1.mlp.down_proj"
	a, errA := ad.Float32("base_model.model." + module + ".lora_A.weight")
	bm, errB := ad.Float32("base_model.model." + module + ".lora_B.weight")
	w1, errW := tuned.Float32(module + ".weight")
	if errA != nil || errB != nil || errW != nil || w0 == nil {
		t.Fatalf("tensors missing: %v %v %v", errA, errB, errW)
	}
	cols, rows := 512, 256
	r := len(a) / cols
	scale := 32.0 / 16 // the LoRA defaults: alpha 32, rank 16
	if r != 16 {
		t.Fatalf("adapter rank %d", r)
	}
	changed := 0
	for i := range rows {
		for j := range cols {
			var d float64
			for k := range r {
				d += float64(bm[i*r+k]) * float64(a[k*cols+j])
			}
			want := float64(w0[i*cols+j]) + scale*d
			if math.Abs(float64(w1[i*cols+j])-want) > 1e-5 {
				t.Fatalf("[%d,%d]: exported %g, base + (alpha/r)·B·A %g", i, j, w1[i*cols+j], want)
			}
			if math.Abs(scale*d) > 1e-4 {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("the adapter did not change the weights")
	}
}
