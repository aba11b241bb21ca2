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
	if err := checkRotaryRows(len(w), heads, cols); err != nil {
		return nil, err
	}
	out := make([]float32, len(w))
	permuteRowsInto(out, w, heads, cols, toGGUF)
	return out, nil
}

// checkRotaryRows reports whether n values are heads heads of an even number of rows of cols.
func checkRotaryRows(n, heads, cols int) error {
	if heads <= 0 || cols <= 0 || n%(heads*cols) != 0 {
		return fmt.Errorf("permute rotary rows: %d values are not %d heads of rows of %d", n, heads, cols)
	}
	if headDim := n / (heads * cols); headDim%2 != 0 {
		return fmt.Errorf("permute rotary rows: head dim %d is odd", headDim)
	}
	return nil
}

// permuteRowsInto writes w's rows permuted into out (of w's length; checkRotaryRows has passed).
func permuteRowsInto(out, w []float32, heads, cols int, toGGUF bool) {
	headDim := len(w) / (heads * cols)
	half := headDim / 2
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
}
