package format

// The llama family: llama 1/2/3, mistral and qwen2 share config.json's keys (HFConfig) and the
// tensor names of names.go; they differ in their GGUF rotary layout, mistral's sliding window and
// qwen2's implied Q/K/V biases.
func init() {
	for _, a := range []struct {
		name, class string
		rope        RopePairing
	}{
		{"llama", "LlamaForCausalLM", RopeAdjacent},
		{"mistral", "MistralForCausalLM", RopeAdjacent},
		{"qwen2", "Qwen2ForCausalLM", RopeHalf},
	} {
		Register(&Arch{
			Name: a.name, Class: a.class, GGUF: a.name, GGUFRope: a.rope,
			ParseHF: func(raw []byte) (ModelConfig, error) {
				var c HFConfig
				if err := parseJSON(raw, &c); err != nil {
					return ModelConfig{}, err
				}
				return c.ModelConfig()
			},
			WriteHF: func(m ModelConfig, torchDType string) (any, error) { return HFConfigFrom(m, torchDType) },
			HFNames: func(ModelConfig) (map[string]string, map[string]string) {
				return globalNames, layerNames
			},
			HFLayerPrefix: "model.layers.%d.",
		})
	}
}
