package format

import "fmt"

// PermuteHFToGGUF reorders the rows of a Q or K projection (weight [heads*headDim, cols], or
// bias with cols = 1) from Hugging Face's half-split rotary layout to GGUF's adjacent-pair layout,
// exactly as llama.cpp's convert_hf_to_gguf.py permute does:
//
//	w.reshape(heads, 2, headDim/2, cols).swapaxes(1, 2).reshape(heads*headDim, cols)
//
// so GGUF row h*headDim + 2i + j is HF row h*headDim + j*headDim/2 + i. heads is the number of
// query heads for Q and of kv heads for K (the converter passes n_head_kv for K).
func PermuteHFToGGUF(w []float32, heads, cols int) ([]float32, error) {
	return permuteRows(w, heads, cols, true)
}

// PermuteGGUFToHF is the inverse of PermuteHFToGGUF.
func PermuteGGUFToHF(w []float32, heads, cols int) ([]float32, error) {
	return permuteRows(w, heads, cols, false)
}

func permuteRows(w []float32, heads, cols int, toGGUF bool) ([]float32, error) {
	if heads <= 0 || cols <= 0 || len(w)%(heads*cols) != 0 {
		return nil, fmt.Errorf("permute rotary rows: %d values are not %d heads of rows of %d", len(w), heads, cols)
	}
	headDim := len(w) / (heads * cols)
	if headDim%2 != 0 {
		return nil, fmt.Errorf("permute rotary rows: head dim %d is odd", headDim)
	}
	half := headDim / 2
	out := make([]float32, len(w))
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			for j := 0; j < 2; j++ {
				gg := h*headDim + 2*i + j
				hf := h*headDim + j*half + i
				dst, src := gg, hf
				if !toGGUF {
					dst, src = hf, gg
				}
				copy(out[dst*cols:(dst+1)*cols], w[src*cols:(src+1)*cols])
			}
		}
	}
	return out, nil
}
