package policy

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Condition is one (operator, key, values) triple of a Condition block.
type Condition struct {
	Operator string   // as written, e.g. "ForAnyValue:StringLikeIfExists"
	Base     string   // the operator without qualifier and IfExists, e.g. "StringLike"
	Set      string   // "", "ForAnyValue" or "ForAllValues"
	IfExists bool     // the ...IfExists form
	Key      string   // the context key as written
	Values   []string // JSON strings, numbers and booleans, as strings
}

// operators maps each base operator to its family and whether it is the negated form.
var operators = map[string]struct {
	family  string
	negated bool
}{
	"StringEquals": {"String", false}, "StringNotEquals": {"String", true},
	"StringEqualsIgnoreCase": {"StringIgnoreCase", false}, "StringNotEqualsIgnoreCase": {"StringIgnoreCase", true},
	"StringLike": {"StringLike", false}, "StringNotLike": {"StringLike", true},
	"NumericEquals": {"NumericEquals", false}, "NumericNotEquals": {"NumericEquals", true},
	"NumericLessThan": {"NumericLessThan", false}, "NumericLessThanEquals": {"NumericLessThanEquals", false},
	"NumericGreaterThan": {"NumericGreaterThan", false}, "NumericGreaterThanEquals": {"NumericGreaterThanEquals", false},
	"DateEquals": {"DateEquals", false}, "DateNotEquals": {"DateEquals", true},
	"DateLessThan": {"DateLessThan", false}, "DateLessThanEquals": {"DateLessThanEquals", false},
	"DateGreaterThan": {"DateGreaterThan", false}, "DateGreaterThanEquals": {"DateGreaterThanEquals", false},
	"Bool":         {"Bool", false},
	"BinaryEquals": {"Binary", false},
	"IpAddress":    {"Ip", false}, "NotIpAddress": {"Ip", true},
	"ArnEquals": {"Arn", false}, "ArnLike": {"Arn", false}, "ArnNotEquals": {"Arn", true}, "ArnNotLike": {"Arn", true},
	"Null": {"Null", false},
}

// parseOperator splits "ForAllValues:StringLikeIfExists" into its parts.
func parseOperator(op string) (set, base string, ifExists bool, ok bool) {
	rest := op
	if q, after, found := strings.Cut(op, ":"); found {
		if q != "ForAnyValue" && q != "ForAllValues" {
			return "", "", false, false
		}
		set, rest = q, after
	}
	if _, known := operators[rest]; known {
		return set, rest, false, true
	}
	if b, found := strings.CutSuffix(rest, "IfExists"); found {
		if _, known := operators[b]; known && b != "Null" {
			return set, b, true, true
		}
	}
	return "", "", false, false
}

func parseConditions(b json.RawMessage) ([]Condition, error) {
	var block map[string]map[string]json.RawMessage
	if err := json.Unmarshal(b, &block); err != nil {
		return nil, malformed("Syntax errors in policy.")
	}
	var out []Condition
	ops := make([]string, 0, len(block))
	for op := range block {
		ops = append(ops, op)
	}
	sort.Strings(ops) // a stable order keeps error messages and decisions reproducible
	for _, op := range ops {
		set, base, ifExists, ok := parseOperator(op)
		if !ok {
			return nil, malformed("Invalid Condition type : %s", op)
		}
		keys := make([]string, 0, len(block[op]))
		for k := range block[op] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			return nil, malformed("Syntax errors in policy.")
		}
		for _, key := range keys {
			vals, err := conditionValues(block[op][key])
			if err != nil || key == "" {
				return nil, malformed("Syntax errors in policy.")
			}
			for _, v := range vals {
				if !validValue(base, v) {
					return nil, malformed("Invalid value %q for Condition operator %s on key %s", v, op, key)
				}
			}
			out = append(out, Condition{Operator: op, Base: base, Set: set, IfExists: ifExists, Key: key, Values: vals})
		}
	}
	return out, nil
}

// conditionValues decodes a string, number or boolean, or a non-empty list of them.
func conditionValues(b json.RawMessage) ([]string, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil {
		list = []json.RawMessage{b}
	} else if len(list) == 0 {
		return nil, errEmpty
	}
	out := make([]string, 0, len(list))
	for _, item := range list {
		var v any
		if err := json.Unmarshal(item, &v); err != nil {
			return nil, err
		}
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case bool:
			out = append(out, strconv.FormatBool(x))
		case float64:
			out = append(out, strings.TrimSpace(string(item)))
		default:
			return nil, errEmpty
		}
	}
	return out, nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errEmpty = constError("empty or non-scalar condition value")

// validValue refuses policy values that an operator could never compare, so that a typo cannot
// quietly turn a Deny statement off.
func validValue(base, v string) bool {
	switch operators[base].family {
	case "NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals":
		_, ok := parseNumber(v)
		return ok
	case "DateEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals":
		_, ok := parseDate(v)
		return ok
	case "Bool", "Null":
		return strings.EqualFold(v, "true") || strings.EqualFold(v, "false")
	case "Ip":
		_, ok := parseIPRange(v)
		return ok
	case "Binary":
		_, err := base64.StdEncoding.DecodeString(v)
		return err == nil
	}
	return true
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseDate reads the forms AWS accepts: ISO 8601 (date, date-time with or without seconds and
// fraction) or seconds since the epoch.
func parseDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < -1e12 || n > 1e12 {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func parseIPRange(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// eval decides one condition against the request context. vars substitutes policy variables in
// String and Arn values (nil under the 2008 language version).
func (c *Condition) eval(ctx Context, vars bool) bool {
	info := operators[c.Base]
	have, present := ctx.get(c.Key)
	if c.Base == "Null" {
		absent := !present || len(have) == 0
		for _, v := range c.Values {
			if strings.EqualFold(v, "true") == absent {
				return true
			}
		}
		return false
	}
	if !present || len(have) == 0 {
		switch {
		case c.IfExists:
			return true
		case c.Set == "ForAllValues":
			return true
		case c.Set == "ForAnyValue":
			return false
		}
		return info.negated
	}
	// one reports whether a context value matches any policy value (with the positive operator).
	one := func(got string) bool {
		for _, want := range c.Values {
			if matchValue(info.family, got, want, ctx, vars) {
				return true
			}
		}
		return false
	}
	// test is the per-value result of the operator as written (negated: matches no policy value).
	test := func(got string) bool { return one(got) != info.negated }
	switch c.Set {
	case "ForAllValues":
		for _, got := range have {
			if !test(got) {
				return false
			}
		}
		return true
	case "ForAnyValue":
		for _, got := range have {
			if test(got) {
				return true
			}
		}
		return false
	}
	// A single-valued operator on a multi-valued key: any value matching makes the positive form
	// true; the negated form needs none to match (NOR).
	anyMatch := false
	for _, got := range have {
		if one(got) {
			anyMatch = true
			break
		}
	}
	return anyMatch != info.negated
}

// matchValue compares one context value with one policy value under a positive operator family.
func matchValue(family, got, want string, ctx Context, vars bool) bool {
	switch family {
	case "String", "StringIgnoreCase", "StringLike":
		pat, ok := substitute(want, ctx, vars)
		if !ok {
			return false
		}
		switch family {
		case "String":
			return pat.text() == got
		case "StringIgnoreCase":
			return strings.EqualFold(pat.text(), got)
		}
		return pat.match(got, false)
	case "Arn":
		pat, ok := substitute(want, ctx, vars)
		if !ok {
			return false
		}
		return matchARN(pat, got)
	case "NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals":
		g, ok1 := parseNumber(got)
		w, ok2 := parseNumber(want)
		if !ok1 || !ok2 {
			return false
		}
		switch family {
		case "NumericEquals":
			return g == w
		case "NumericLessThan":
			return g < w
		case "NumericLessThanEquals":
			return g <= w
		case "NumericGreaterThan":
			return g > w
		}
		return g >= w
	case "DateEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals":
		g, ok1 := parseDate(got)
		w, ok2 := parseDate(want)
		if !ok1 || !ok2 {
			return false
		}
		switch family {
		case "DateEquals":
			return g.Equal(w)
		case "DateLessThan":
			return g.Before(w)
		case "DateLessThanEquals":
			return !g.After(w)
		case "DateGreaterThan":
			return g.After(w)
		}
		return !g.Before(w)
	case "Bool":
		return strings.EqualFold(got, want)
	case "Binary":
		return got == want
	case "Ip":
		p, ok := parseIPRange(want)
		if !ok {
			return false
		}
		a, err := netip.ParseAddr(strings.TrimSpace(got))
		if err != nil {
			return false
		}
		return p.Contains(a.Unmap()) || p.Contains(a)
	}
	return false
}
