package policy

import (
	"strings"
	"unicode/utf8"
)

// Context is a request context: condition keys (case-insensitive) to their values.
type Context map[string][]string

// Set sets a key's values.
func (c Context) Set(key string, values ...string) { c[strings.ToLower(key)] = values }

// Get returns a key's values and whether it is present.
func (c Context) get(key string) ([]string, bool) {
	v, ok := c[strings.ToLower(key)]
	return v, ok
}

// token is one piece of a pattern: literal text, or a '*' / '?' wildcard written in the policy.
type token struct {
	lit  string
	wild byte
}

// pattern is a policy value after policy variables are substituted. Text that came from a
// variable is literal even when it contains '*' or '?'.
type pattern []token

// text renders the pattern back as a string (wildcards as their characters).
func (p pattern) text() string {
	var b strings.Builder
	for _, t := range p {
		if t.wild != 0 {
			b.WriteByte(t.wild)
		} else {
			b.WriteString(t.lit)
		}
	}
	return b.String()
}

// literalPattern splits s into literal text and wildcards, substituting nothing.
func literalPattern(s string) pattern {
	var p pattern
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '*' || s[i] == '?' {
			if i > start {
				p = append(p, token{lit: s[start:i]})
			}
			p = append(p, token{wild: s[i]})
			start = i + 1
		}
	}
	if start < len(s) {
		p = append(p, token{lit: s[start:]})
	}
	return p
}

// substitute replaces ${key} and ${key, 'default'} with the context's value (the special ${*},
// ${?} and ${$} with those characters). ok is false when a variable has no value and no default:
// AWS then treats the value as not matching. Under the 2008 language (vars false) "${" is text.
func substitute(s string, ctx Context, vars bool) (pattern, bool) {
	if !vars || !strings.Contains(s, "${") {
		return literalPattern(s), true
	}
	var p pattern
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			p = append(p, literalPattern(s)...)
			return p, true
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			p = append(p, literalPattern(s)...)
			return p, true
		}
		p = append(p, literalPattern(s[:i])...)
		expr := strings.TrimSpace(s[i+2 : i+j])
		s = s[i+j+1:]
		switch expr {
		case "*", "?", "$":
			p = append(p, token{lit: expr})
			continue
		}
		key, def, hasDef := strings.Cut(expr, ",")
		key = strings.TrimSpace(key)
		if hasDef {
			def = strings.TrimSpace(def)
			if len(def) >= 2 && def[0] == '\'' && def[len(def)-1] == '\'' {
				def = def[1 : len(def)-1]
			} else {
				return nil, false
			}
		}
		vals, ok := ctx.get(key)
		switch {
		case ok && len(vals) == 1:
			p = append(p, token{lit: vals[0]})
		case hasDef:
			p = append(p, token{lit: def})
		default:
			return nil, false
		}
	}
}

// match reports whether s matches the pattern ('*' any run, '?' one character); fold compares
// literals case-insensitively.
func (p pattern) match(s string, fold bool) bool {
	if fold {
		s = strings.ToLower(s)
	}
	// Iterative matching with backtracking to the last '*': linear for the usual patterns and never
	// exponential, whatever a policy author writes.
	ti, off := 0, 0 // token index, offset in s
	starT, starS := -1, 0
	for {
		if ti < len(p) {
			t := p[ti]
			switch {
			case t.wild == '*':
				starT, starS = ti, off
				ti++
				continue
			case t.wild == '?':
				if off < len(s) {
					_, n := utf8.DecodeRuneInString(s[off:])
					off += n
					ti++
					continue
				}
			default:
				lit := t.lit
				if fold {
					lit = strings.ToLower(lit)
				}
				if strings.HasPrefix(s[off:], lit) {
					off += len(lit)
					ti++
					continue
				}
			}
		} else if off == len(s) {
			return true
		}
		if starT < 0 || starS >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starS:])
		starS += n
		ti, off = starT+1, starS
	}
}

// split cuts the pattern at the first n-1 ':' that appear in its literal text.
func (p pattern) split(n int) []pattern {
	out := []pattern{nil}
	for _, t := range p {
		if t.wild != 0 {
			out[len(out)-1] = append(out[len(out)-1], t)
			continue
		}
		lit := t.lit
		for len(out) < n {
			i := strings.IndexByte(lit, ':')
			if i < 0 {
				break
			}
			if i > 0 {
				out[len(out)-1] = append(out[len(out)-1], token{lit: lit[:i]})
			}
			out = append(out, nil)
			lit = lit[i+1:]
		}
		if lit != "" {
			out[len(out)-1] = append(out[len(out)-1], token{lit: lit})
		}
	}
	return out
}

// matchARN compares an ARN with an ARN pattern component by component (partition, service,
// region, account, resource), so a '*' in one component never spans into the next. A pattern
// that is only "*" matches anything.
func matchARN(p pattern, arn string) bool {
	if len(p) == 1 && p[0].wild == '*' {
		return true
	}
	parts := strings.SplitN(arn, ":", 6)
	pats := p.split(6)
	if len(parts) != 6 || len(pats) != 6 {
		return false
	}
	for i := range parts {
		if !pats[i].match(parts[i], false) {
			return false
		}
	}
	return true
}

// matchAction compares an action ("s3:GetObject") with an action pattern ("s3:Get*"),
// case-insensitively as AWS does.
func matchAction(pat, action string) bool {
	return literalPattern(pat).match(action, true)
}
