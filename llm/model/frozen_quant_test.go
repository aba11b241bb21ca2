package model

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/lathe-ml/lathe/llm/format"
	"github.com/lathe-ml/lathe/llm/format/gguf"
)

// quantTestModel writes one random llama (rows of 256 values, so every K format applies; weights of
// std 0.08, large enough that the logits depend on them) as GGUF files of the given types and
// returns their paths by type name. "Q4_K_M" is llama-quantize's mix (gguf.Q4KM).
func quantTestModel(t *testing.T, types ...string) map[string]string {
	t.Helper()
	ck, err := format.Open(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	mc := ck.Config()
	ck.Close()
	mc.Dim, mc.Layers, mc.Heads, mc.KVHeads, mc.HeadDim, mc.FFN = 256, 2, 4, 2, 64, 512
	mc.RopeDim, mc.TiedEmbeddings, mc.AttentionBias = 64, false, false
	cfg, err := ConfigFrom(mc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewRandom(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range m.Tensors() {
		if len(tn.Shape) == 2 {
			for i := range tn.Data {
				tn.Data[i] *= 4
			}
		}
	}
	dir := t.TempDir()
	paths := map[string]string{}
	for _, name := range types {
		opts := format.GGUFOptions{}
		switch name {
		case "F32":
		case "F16":
			opts.Type = gguf.F16
		case "Q8_0":
			opts.Type = gguf.Q8_0
		case "Q4_K_M":
			opts.Type = gguf.Q4_K
			opts.TypeOf = func(n string, shape []int) gguf.TensorType { return gguf.Q4KM(n, shape[len(shape)-1], cfg.Layers) }
		default:
			t.Fatalf("type %s", name)
		}
		paths[name] = filepath.Join(dir, name+".gguf")
		if err := format.WriteGGUF(paths[name], m.ExportConfig(mc), m.NamedTensors(), opts); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

func mustLoad(t *testing.T, path string) *Model {
	t.Helper()
	m, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A Q8_0 or Q4_K_M file keeps its matrices quantized, and decoding from the blocks gives the logits
// of the same file widened to float32 up to the rounding of the activations to int8 blocks (as
// llama.cpp rounds them). That rounding must move the logits less than the file's own quantization
// moved them from the float32 model it was written from (measured: Q4_K_M 0.31 against 3.7; Q8_0,
// whose weights are rounded as finely as the activations, 0.13 against 0.22), and change the most
// likely next token at no more than 10% of the positions (the near ties of a random model). Several sequences decoded together give exactly the logits each gets alone (each
// row's activations are quantized on their own), and a prompt longer than quantRows (prefilled
// through bfloat16 products of the dequantized layers where the CPU has AVX512_BF16, through the
// widened layers elsewhere, the head still quantized) ends close to token-by-token decoding.
func TestQuantizedLogitsCloseToWidened(t *testing.T) {
	paths := quantTestModel(t, "F32", "Q8_0", "Q4_K_M")
	toks := randomTokens(31, 80, 512) // past quantRows, for the long prefill below
	exact := extendOneByOne(t, mustLoad(t, paths["F32"]), toks)
	for _, typ := range []string{"Q8_0", "Q4_K_M"} {
		t.Run(typ, func(t *testing.T) {
			q, wide := mustLoad(t, paths[typ]), mustLoad(t, paths[typ])
			wide.WidenWeights()
			if ok, bytes := q.QuantizedWeights(); !ok || q.n.w.layers[0].wq != nil {
				t.Fatalf("matrices not held quantized (%v, %d bytes)", ok, bytes)
			} else {
				t.Logf("quantized matrices: %d bytes", bytes)
			}
			if ok, _ := wide.QuantizedWeights(); ok {
				t.Fatal("WidenWeights left the matrices quantized")
			}
			// LoRA checkpoints record the base's fingerprint: the blocks and their widened values agree
			if fq, fw := q.Fingerprint(), wide.Fingerprint(); fq != fw {
				t.Fatalf("fingerprint %s quantized, %s widened", fq, fw)
			}
			a, b := extendOneByOne(t, q, toks), extendOneByOne(t, wide, toks)
			V := q.Config().Vocab
			kernel, file := maxAbsDiff(a, b), maxAbsDiff(b, exact)
			same := 0
			for i := range toks {
				if argmax(a[i*V:(i+1)*V]) == argmax(b[i*V:(i+1)*V]) {
					same++
				}
			}
			t.Logf("%d positions: max |Δlogit| from the activations' rounding %.4f, from the file's quantization %.4f; same argmax at %d", len(toks), kernel, file, same)
			if kernel > file {
				t.Errorf("the kernels move the logits by %.4f, more than the file's quantization (%.4f)", kernel, file)
			}
			if same*10 < 9*len(toks) {
				t.Errorf("argmax agrees at %d of %d positions", same, len(toks))
			}
			// two sequences at once: bit for bit what each gives alone
			c1, c2 := q.NewKVCache(len(toks)), q.NewKVCache(len(toks))
			pair := make([]float32, 2*V)
			for i := range 10 {
				if err := q.Extend([]*KVCache{c1, c2}, [][]int32{{toks[i]}, {toks[20+i]}}, pair); err != nil {
					t.Fatal(err)
				}
			}
			alone := extendOneByOne(t, q, toks[20:30])
			if d := maxAbsDiff(pair[:V], a[9*V:10*V]); d != 0 {
				t.Errorf("batched sequence 1 differs from alone by %g", d)
			}
			if d := maxAbsDiff(pair[V:], alone[9*V:]); d != 0 {
				t.Errorf("batched sequence 2 differs from alone by %g", d)
			}
			last := make([]float32, V)
			if err := q.Extend([]*KVCache{q.NewKVCache(len(toks))}, [][]int32{toks}, last); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(last, a[(len(toks)-1)*V:]); d > kernel {
				t.Errorf("long prefill differs from the widened model by %g", d)
			}
		})
	}
}

// QLoRA: LoRA on a frozen Q4_K_M base reaches, on the same data and steps, a loss within 2% of LoRA
// on the F16 file it was quantized from; the adapters it trained, merged into the F16 base, give
// that base a loss within 2% of the quantized model's; and merging widens the quantized base.
func TestQLoRALossNearF16(t *testing.T) {
	paths := quantTestModel(t, "F16", "Q4_K_M")
	f16, q4 := mustLoad(t, paths["F16"]), mustLoad(t, paths["Q4_K_M"])
	lc := LoRAConfig{Rank: 8, Alpha: 16, FrozenBF16: true, Targets: []Target{TargetQ, TargetK, TargetV, TargetO, TargetGate, TargetUp, TargetDown}}
	f16c := lc
	f16c.FrozenBF16 = false // the f16 values exactly, in float32
	if err := q4.AttachLoRA(lc, 3); err != nil {
		t.Fatal(err)
	}
	if err := f16.AttachLoRA(f16c, 3); err != nil {
		t.Fatal(err)
	}
	if ok, _ := q4.QuantizedWeights(); !ok || q4.BF16Weights() {
		t.Fatal("FrozenBF16 replaced the quantized base")
	}
	// Sequences of one short pattern with a random skip at each position (token i is pat[(i+j)%5],
	// j 0 or 1), so the next token has an entropy of ln 2 that no model beats: each step trains on 8
	// new sequences, and the loss is measured on 8 others, as a fine-tune's validation loss is.
	pat := randomTokens(40, 5, 512)
	seqs := func(seed uint64) Batch {
		rng := rand.New(rand.NewPCG(seed, 9))
		var ex []Example
		for range 8 {
			toks := make([]int32, 32)
			for i := range toks {
				toks[i] = pat[(i+rng.IntN(2))%len(pat)]
			}
			ex = append(ex, Example{Tokens: toks, PromptLen: 1})
		}
		return PackBatch(ex, 32, 0)
	}
	held := seqs(2)
	loss := func(m *Model) float64 {
		s, n, err := m.LossSum(held)
		if err != nil {
			t.Fatal(err)
		}
		return s / n
	}
	l0f, l0q := loss(f16), loss(q4)
	const steps = 60
	for _, m := range []*Model{f16, q4} {
		trainAdam(t, m, func(step int) Batch { return seqs(uint64(100 + step)) }, steps, 1e-2)
	}
	lf, lq := loss(f16), loss(q4)
	t.Logf("loss before: F16 %.4f, Q4_K_M %.4f; after %d steps: F16 %.4f, Q4_K_M %.4f (%.2f%%)", l0f, l0q, steps, lf, lq, 100*(lq-lf)/lf)
	if lq > l0q*0.5 {
		t.Fatalf("training hardly lowered the loss (%.4f -> %.4f): the comparison would say nothing", l0q, lq)
	}
	if math.Abs(lq-lf) > 0.02*lf {
		t.Errorf("Q4_K_M base loss %.4f vs F16 base %.4f: more than 2%% apart", lq, lf)
	}
	// the adapters trained on the Q4_K_M base, merged into the F16 base
	base := mustLoad(t, paths["F16"])
	if err := base.AttachLoRA(f16c, 3); err != nil {
		t.Fatal(err)
	}
	src := q4.AdapterTensors()
	for i, p := range base.Trainable() {
		copy(p.Data, src[i].Data)
	}
	base.MergeLoRA()
	if lm := loss(base); math.Abs(lm-lq) > 0.02*lq {
		t.Errorf("adapters merged into the F16 base: loss %.4f, on the Q4_K_M base %.4f", lm, lq)
	} else {
		t.Logf("adapters merged into the F16 base: loss %.4f", lm)
	}
	// merging into the quantized model's own base widens it and keeps its function
	q4.MergeLoRA()
	if ok, _ := q4.QuantizedWeights(); ok {
		t.Error("MergeLoRA left the base quantized")
	}
	if lm := loss(q4); math.Abs(lm-lq) > 1e-4*lq {
		t.Errorf("merged Q4_K_M model: loss %.6f, with adapters %.6f", lm, lq)
	}
}

// trainAdam runs steps of Adam on m's trainable tensors, step s on batch(s).
func trainAdam(t *testing.T, m *Model, batch func(step int) Batch, steps int, lr float64) {
	t.Helper()
	ps := m.Trainable()
	mom, vel := make([][]float64, len(ps)), make([][]float64, len(ps))
	for i, p := range ps {
		mom[i], vel[i] = make([]float64, len(p.Data)), make([]float64, len(p.Data))
	}
	for step := 1; step <= steps; step++ {
		m.ZeroGrads()
		b := batch(step)
		if _, err := m.ForwardBackward(b, 1/b.Count(), uint64(step)); err != nil {
			t.Fatal(err)
		}
		c1, c2 := 1-math.Pow(0.9, float64(step)), 1-math.Pow(0.999, float64(step))
		for i, p := range ps {
			for j, g := range p.Grad {
				mom[i][j] = 0.9*mom[i][j] + 0.1*float64(g)
				vel[i][j] = 0.999*vel[i][j] + 0.001*float64(g)*float64(g)
				p.Data[j] -= float32(lr * mom[i][j] / c1 / (math.Sqrt(vel[i][j]/c2) + 1e-8))
			}
		}
	}
}
