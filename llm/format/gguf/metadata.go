package gguf

import (
	"fmt"
	"math"
)

// KV is one metadata entry. Value holds the Go type that matches the GGUF type exactly, so a file
// read and written back keeps its types: uint8, int8, uint16, int16, uint32, int32, float32, bool,
// string, uint64, int64, float64, or a slice of one of these for an array.
type KV struct {
	Key   string
	Value any
}

// Metadata is a file's key/value metadata in file order, with typed accessors. The accessors
// convert between numeric widths where no value is lost (an int32 token id reads as Uint; a
// float32 epsilon reads as Float) and report ok=false when the key is absent or of another kind.
type Metadata struct {
	kvs   []KV
	index map[string]int
}

// NewMetadata builds Metadata from entries; a later entry replaces an earlier one with the same key.
func NewMetadata(kvs ...KV) (Metadata, error) {
	var m Metadata
	for _, kv := range kvs {
		if err := m.Set(kv.Key, kv.Value); err != nil {
			return Metadata{}, err
		}
	}
	return m, nil
}

// Set adds or replaces a key. The value must be one of KV's Go types.
func (m *Metadata) Set(key string, value any) error {
	if _, _, err := valueTypeOf(value); err != nil {
		return fmt.Errorf("metadata %s: %w", key, err)
	}
	if m.index == nil {
		m.index = map[string]int{}
	}
	if i, ok := m.index[key]; ok {
		m.kvs[i].Value = value
		return nil
	}
	m.index[key] = len(m.kvs)
	m.kvs = append(m.kvs, KV{key, value})
	return nil
}

// Delete removes a key if present.
func (m *Metadata) Delete(key string) {
	i, ok := m.index[key]
	if !ok {
		return
	}
	m.kvs = append(m.kvs[:i], m.kvs[i+1:]...)
	delete(m.index, key)
	for j := i; j < len(m.kvs); j++ {
		m.index[m.kvs[j].Key] = j
	}
}

// KVs returns the entries in order. The slice is shared; do not modify it.
func (m *Metadata) KVs() []KV { return m.kvs }

// Len is the number of entries.
func (m *Metadata) Len() int { return len(m.kvs) }

// Get returns the raw value of a key.
func (m *Metadata) Get(key string) (any, bool) {
	i, ok := m.index[key]
	if !ok {
		return nil, false
	}
	return m.kvs[i].Value, true
}

// String returns a string value.
func (m *Metadata) String(key string) (string, bool) {
	v, _ := m.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Bool returns a bool value.
func (m *Metadata) Bool(key string) (bool, bool) {
	v, _ := m.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Uint returns a non-negative integer value of any integer type.
func (m *Metadata) Uint(key string) (uint64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	if i, ok := asInt(v); ok && i >= 0 {
		return uint64(i), true
	}
	if u, ok := v.(uint64); ok {
		return u, true
	}
	return 0, false
}

// Int returns an integer value of any integer type that fits int64.
func (m *Metadata) Int(key string) (int64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	return asInt(v)
}

// Float returns a float32 or float64 value (or an integer, converted).
func (m *Metadata) Float(key string) (float64, bool) {
	v, ok := m.Get(key)
	if !ok {
		return 0, false
	}
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := asInt(v); ok {
		return float64(i), true
	}
	return 0, false
}

// Strings returns an array of strings.
func (m *Metadata) Strings(key string) ([]string, bool) {
	v, _ := m.Get(key)
	s, ok := v.([]string)
	return s, ok
}

// Float32s returns an array of float32 (as token scores are stored), converting a float64 array.
func (m *Metadata) Float32s(key string) ([]float32, bool) {
	v, _ := m.Get(key)
	switch x := v.(type) {
	case []float32:
		return x, true
	case []float64:
		out := make([]float32, len(x))
		for i, f := range x {
			out[i] = float32(f)
		}
		return out, true
	}
	return nil, false
}

// Ints returns an array of any integer type as ints.
func (m *Metadata) Ints(key string) ([]int, bool) {
	v, _ := m.Get(key)
	var out []int
	conv := func(n int, at func(int) int64) {
		out = make([]int, n)
		for i := range out {
			out[i] = int(at(i))
		}
	}
	switch x := v.(type) {
	case []uint8:
		conv(len(x), func(i int) int64 { return int64(x[i]) })
	case []int8:
		conv(len(x), func(i int) int64 { return int64(x[i]) })
	case []uint16:
		conv(len(x), func(i int) int64 { return int64(x[i]) })
	case []int16:
		conv(len(x), func(i int) int64 { return int64(x[i]) })
	case []uint32:
		conv(len(x), func(i int) int64 { return int64(x[i]) })
	case []int32:
		conv(len(x), func(i int) int64 { return int64(x[i]) })
	case []int64:
		conv(len(x), func(i int) int64 { return x[i] })
	case []uint64:
		for _, u := range x {
			if u > math.MaxInt64 {
				return nil, false
			}
		}
		conv(len(x), func(i int) int64 { return int64(x[i]) })
	default:
		return nil, false
	}
	return out, true
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case uint8:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case int16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// valueTypeOf maps a Go value to its GGUF type (and element type for arrays).
func valueTypeOf(v any) (ValueType, ValueType, error) {
	switch v.(type) {
	case uint8:
		return TypeUint8, 0, nil
	case int8:
		return TypeInt8, 0, nil
	case uint16:
		return TypeUint16, 0, nil
	case int16:
		return TypeInt16, 0, nil
	case uint32:
		return TypeUint32, 0, nil
	case int32:
		return TypeInt32, 0, nil
	case float32:
		return TypeFloat32, 0, nil
	case bool:
		return TypeBool, 0, nil
	case string:
		return TypeString, 0, nil
	case uint64:
		return TypeUint64, 0, nil
	case int64:
		return TypeInt64, 0, nil
	case float64:
		return TypeFloat64, 0, nil
	case []uint8:
		return TypeArray, TypeUint8, nil
	case []int8:
		return TypeArray, TypeInt8, nil
	case []uint16:
		return TypeArray, TypeUint16, nil
	case []int16:
		return TypeArray, TypeInt16, nil
	case []uint32:
		return TypeArray, TypeUint32, nil
	case []int32:
		return TypeArray, TypeInt32, nil
	case []float32:
		return TypeArray, TypeFloat32, nil
	case []bool:
		return TypeArray, TypeBool, nil
	case []string:
		return TypeArray, TypeString, nil
	case []uint64:
		return TypeArray, TypeUint64, nil
	case []int64:
		return TypeArray, TypeInt64, nil
	case []float64:
		return TypeArray, TypeFloat64, nil
	}
	return 0, 0, fmt.Errorf("value of Go type %T has no GGUF type (use a sized integer, float32/64, bool, string, or a slice of one)", v)
}
