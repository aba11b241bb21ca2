package automl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// epochTime is a timestamp on the wire: epoch seconds as a JSON number, with milliseconds.
type epochTime time.Time

func (t epochTime) IsZero() bool { return time.Time(t).IsZero() }

func (t epochTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

func (t *epochTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeFor[epochTime]()}
	}
	sec, frac := math.Modf(f)
	*t = epochTime(time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC())
	return nil
}

func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number"
}

// decode reads a JSON 1.1 request body into v. Unknown members are ignored, as the SDKs expect of a
// newer server; a member of the wrong type is a SerializationException that names the member.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		path := memberPath(te.Field)
		if path == "" {
			return serialization("Invalid request body: expected a JSON object, got %s", te.Value)
		}
		return serialization("Invalid value at '%s': expected %s, got %s", path, expected(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return serialization("Malformed JSON request body at offset %d: %v", se.Offset, se)
	}
	return serialization("Invalid request body: %v", err)
}

func serialization(format string, args ...any) *awserr.Error {
	return awserr.New(400, "SerializationException", format, args...)
}

// memberPath turns Go's "AutoMLJobInputDataConfig.DataSource" into the lowerCamel path of the
// validation messages ("autoMLJobInputDataConfig.dataSource").
func memberPath(field string) string {
	if field == "" {
		return ""
	}
	parts := strings.Split(field, ".")
	for i, p := range parts {
		parts[i] = lowerFirst(p)
	}
	return strings.Join(parts, ".")
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func expected(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	if t == reflect.TypeFor[epochTime]() {
		return "a timestamp (epoch seconds as a number)"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer (%d bits)", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}
