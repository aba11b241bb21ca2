package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Target is a projection that a LoRA adapter can attach to.
type Target int

const (
	TargetQ Target = iota
	TargetK
	TargetV
	TargetO
	TargetGate
	TargetUp
	TargetDown
	numTargets
)

var targetNames = [numTargets]string{"q", "k", "v", "o", "gate", "up", "down"}

var targetFields = [numTargets]field{fWq, fWk, fWv, fWo, fGate, fUp, fDown}

var targetGGUF = [numTargets]string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

func (t Target) String() string { return targetNames[t] }

// ParseTarget accepts "q", "k", "v", "o", "gate", "up", "down" and the Hugging Face module names
// ("q_proj", ..., "gate_proj", "up_proj", "down_proj").
func ParseTarget(s string) (Target, error) {
	name := strings.TrimSuffix(strings.ToLower(s), "_proj")
	for i, n := range targetNames {
		if n == name {
			return Target(i), nil
		}
	}
	return 0, fmt.Errorf("unknown LoRA target %q (want q, k, v, o, gate, up, down)", s)
}

// dims returns the (in, out) sizes of a target's projection.
func (t Target) dims(c Config) (in, out int) {
	qd, kvd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	switch t {
	case TargetQ:
		return c.Dim, qd
	case TargetK, TargetV:
		return c.Dim, kvd
	case TargetO:
		return qd, c.Dim
	case TargetGate:
		if !c.gated() {
			return 0, 0 // a plain MLP has no gate
		}
		return c.Dim, c.FFN
	case TargetUp:
		return c.Dim, c.FFN
	default:
		return c.FFN, c.Dim
	}
}

// HasTarget reports whether the model has the projection t (a plain MLP has no gate).
func (c Config) HasTarget(t Target) bool { return t != TargetGate || c.gated() }

// LoRAConfig describes low-rank adapters: W' = W + (Alpha/Rank)·B·A on each target projection of every
// layer, with dropout on the adapter's input during training.
type LoRAConfig struct {
	Rank    int
	Alpha   float64
	Dropout float64
	Targets []Target
	// FrozenBF16 keeps the frozen base's block matrices in bfloat16 (half their memory). On a CPU with
	// AVX512_BF16 the base's products multiply them as they are, the activations rounded to bfloat16
	// (tensor.MatMulBF16: about twice the float32 speed; the loss stays within 1% of float32's, see
	// TestLoRABF16ProductsLoss); elsewhere, or with WidenFrozen, each layer is widened to float32
	// while it runs, which costs about as much as reading it once more. The frozen output head stays
	// float32 in memory and, where the base multiplies in bfloat16, is multiplied so too (rounded as
	// it is packed): at TinyLlama's shape it is 6% of the products. The adapters, norms and embedding
	// stay float32.
	FrozenBF16 bool
	// WidenFrozen makes a FrozenBF16 base multiply in float32 (each layer widened, the activations
	// unrounded) even where the CPU multiplies bfloat16: the exact products, at float32 speed.
	WidenFrozen bool
}

func (c LoRAConfig) validate() error {
	if c.Rank <= 0 {
		return fmt.Errorf("lora rank %d must be positive", c.Rank)
	}
	if c.Alpha <= 0 {
		return fmt.Errorf("lora alpha %g must be positive", c.Alpha)
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("lora dropout %g must be in [0, 1)", c.Dropout)
	}
	if len(c.Targets) == 0 {
		return fmt.Errorf("lora needs at least one target projection")
	}
	for _, t := range c.Targets {
		if t < 0 || t >= numTargets {
			return fmt.Errorf("lora target %d out of range", t)
		}
	}
	return nil
}

// adapter is one projection's low-rank pair: a [Rank, in], b [out, Rank].
type adapter[F float] struct{ a, b []F }

// loraWeights are all adapters (or their gradients), one allocation; layers[l][t] has nil slices for
// projections without an adapter.
type loraWeights[F float] struct {
	slab   []F
	layers [][numTargets]adapter[F]
}

func newLoRAWeights[F float](c Config, lc LoRAConfig) *loraWeights[F] {
	n := 0
	for range c.Layers {
		for _, t := range lc.Targets {
			in, out := t.dims(c)
			n += lc.Rank * (in + out)
		}
	}
	w := &loraWeights[F]{slab: make([]F, n), layers: make([][numTargets]adapter[F], c.Layers)}
	off := 0
	take := func(k int) []F { s := w.slab[off : off+k : off+k]; off += k; return s }
	for l := range c.Layers {
		for _, t := range lc.Targets {
			in, out := t.dims(c)
			w.layers[l][t] = adapter[F]{a: take(lc.Rank * in), b: take(out * lc.Rank)}
		}
	}
	return w
}

// lora holds the attached adapters, their gradients and the scaling Alpha/Rank.
type lora[F float] struct {
	cfg   LoRAConfig
	scale F
	on    [numTargets]bool
	w, g  *loraWeights[F]
}

func newLoRA[F float](c Config, lc LoRAConfig, seed uint64) *lora[F] {
	lc.Targets = slices.Clone(lc.Targets)
	slices.Sort(lc.Targets)
	lc.Targets = slices.Compact(lc.Targets)
	lo := &lora[F]{cfg: lc, scale: F(lc.Alpha / float64(lc.Rank)), w: newLoRAWeights[F](c, lc), g: newLoRAWeights[F](c, lc)}
	for _, t := range lc.Targets {
		lo.on[t] = true
	}
	// As peft does: A ~ kaiming-uniform(a=√5) = U(−1/√in, 1/√in), B = 0, so the adapted model starts
	// equal to the base model.
	rng := rand.New(rand.NewPCG(seed, 0x6c6f7261))
	for l := range c.Layers {
		for _, t := range lc.Targets {
			in, _ := t.dims(c)
			bound := 1 / math.Sqrt(float64(in))
			for i := range lo.w.layers[l][t].a {
				lo.w.layers[l][t].a[i] = F((2*rng.Float64() - 1) * bound)
			}
		}
	}
	return lo
}

// adapter returns layer l's adapter on t, or nil.
func (lo *lora[F]) adapter(l int, t Target) *adapter[F] {
	if lo == nil || !lo.on[t] {
		return nil
	}
	return &lo.w.layers[l][t]
}

// dropKeep decides, as a pure function of (seed, layer, target, element), whether dropout keeps an
// element: the mask is the same for any thread count and after a resume.
func dropKeep(seed uint64, l int, t Target, i int, p float64) bool {
	z := seed ^ (uint64(l*int(numTargets)+int(t)+1) * 0x9E3779B97F4A7C15) ^ (uint64(i) * 0xD1B54A32D192ED03)
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	z ^= z >> 31
	return float64(z>>11)/(1<<53) >= p
}

// dropoutForward: xd[i] = inp[i]·keep_i/(1−p)
func dropoutForward[F float](xd, inp []F, seed uint64, l int, t Target, p float64) {
	s := F(1 / (1 - p))
	for i, v := range inp {
		if dropKeep(seed, l, t, i, p) {
			xd[i] = v * s
		} else {
			xd[i] = 0
		}
	}
}

// dropoutBackward: dinp[i] += dxd[i]·keep_i/(1−p)
func dropoutBackward[F float](dinp, dxd []F, seed uint64, l int, t Target, p float64) {
	s := F(1 / (1 - p))
	for i, v := range dxd {
		if dropKeep(seed, l, t, i, p) {
			dinp[i] += v * s
		}
	}
}

// loraForward adds the adapter's path to a projection's output: with xd = dropout(inp),
// hs[N,r] = s·xd·Aᵀ and out[N,OC] += hs·Bᵀ. xd is inp itself when there is no dropout.
func loraForward[F float](out, hs, xd []F, ad *adapter[F], s F, N, C, OC, r int) {
	matmul(hs, xd, ad.a, N, r, C, false, true, false)
	for i := range hs[:N*r] {
		hs[i] *= s
	}
	matmul(out, hs, ad.b, N, OC, r, false, true, true)
}

// loraBackward: dB[OC,r] += doutᵀ·hs; dh[N,r] = s·dout·B; dA[r,C] += dhᵀ·xd; dxd[N,C] = dh·A
// (the caller routes dxd through dropout into dinp). The frozen W's gradient is never computed.
func loraBackward[F float](dxd, dh []F, gad, ad *adapter[F], dout, hs, xd []F, s F, N, C, OC, r int, accumulate bool) {
	matmul(gad.b, dout, hs, OC, r, N, true, false, true)
	matmul(dh, dout, ad.b, N, r, OC, false, false, false)
	for i := range dh[:N*r] {
		dh[i] *= s
	}
	matmul(gad.a, dh, xd, r, C, N, true, false, true)
	matmul(dxd, dh, ad.a, N, C, r, false, false, accumulate)
}

// mergeInto adds the adapter's product to a base matrix: w += scale·B·A ([out, in]), with tmp (of
// out·in values) holding B·A. MergeLoRA and MergedTensors both merge through it, so a merged export
// has the same bits whichever wrote it.
func (lo *lora[F]) mergeInto(w, tmp []F, ad *adapter[F], in, out int) {
	matmul(tmp, ad.b, ad.a, out, in, lo.cfg.Rank, false, false, false)
	for i, v := range tmp {
		w[i] += lo.scale * v
	}
}
