package serving

import "strings"

// TokenTextAt is the text ids[i] adds to the text of ids[:i], as TokenTexts lists it: the texts of
// ids[0..i] concatenate to the generation's text. A stream calls it once per new token.
func (e *Engine) TokenTextAt(ids []int32, i int) string {
	prev, cur := e.detokenize(ids[:i]), e.detokenize(ids[:i+1])
	if rest, ok := strings.CutPrefix(cur, prev); ok {
		return rest
	}
	return e.detokenize(ids[i : i+1]) // a multi-byte character completed by this token rewrote the tail
}

// TokenTextAfter is the text token id adds when it follows token prev (" the", with its space, where
// decoding the token alone gives "the"): the text of a token that was not chosen, such as one of
// OpenAI's top_logprobs alternatives. prev < 0 decodes id alone.
func (e *Engine) TokenTextAfter(prev, id int32) string {
	if prev < 0 {
		return e.detokenize([]int32{id})
	}
	before, both := e.detokenize([]int32{prev}), e.detokenize([]int32{prev, id})
	if rest, ok := strings.CutPrefix(both, before); ok {
		return rest
	}
	return e.detokenize([]int32{id}) // a multi-byte character completed by id rewrote prev's text
}
