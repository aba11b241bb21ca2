package automl

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// violations collects constraint failures in the style of SageMaker's (Coral) validation layer:
//
//	2 validation errors detected: Value 'x_y' at 'autoMLJobName' failed to satisfy constraint: Member
//	must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}; Value ...
//
// Member paths are lowerCamel; list members are "list.N.member.field" with N counted from 1.
type violations struct {
	msgs []string
}

func (v *violations) add(path, value, constraint string) {
	v.msgs = append(v.msgs, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, path, constraint))
}

func (v *violations) missing(path string) {
	v.msgs = append(v.msgs, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", path))
}

// err returns the ValidationException for the collected failures, or nil.
func (v *violations) err() error {
	switch len(v.msgs) {
	case 0:
		return nil
	case 1:
		return awserr.Validation("1 validation error detected: %s", v.msgs[0])
	}
	return awserr.Validation("%d validation errors detected: %s", len(v.msgs), strings.Join(v.msgs, "; "))
}

func quote(s string) string { return "'" + s + "'" }

// pattern is a model pattern: Coral matches the whole value, and quotes the pattern as modelled.
type pattern struct {
	text string
	re   *regexp.Regexp
}

func newPattern(text string) pattern {
	return pattern{text: text, re: regexp.MustCompile(`^(?:` + text + `)$`)}
}

// strRule is the constraint set of a string member.
type strRule struct {
	min, max int // max 0 = unbounded
	pat      *pattern
	enum     []string
}

// checkString validates a string member; required says whether absence is an error.
func (v *violations) checkString(path string, s *string, required bool, r strRule) {
	if s == nil {
		if required {
			v.missing(path)
		}
		return
	}
	v.checkStringValue(path, *s, r)
}

func (v *violations) checkStringValue(path, s string, r strRule) {
	n := utf8.RuneCountInString(s)
	if n < r.min {
		v.add(path, quote(s), fmt.Sprintf("Member must have length greater than or equal to %d", r.min))
	}
	if r.max > 0 && n > r.max {
		v.add(path, quote(s), fmt.Sprintf("Member must have length less than or equal to %d", r.max))
	}
	if r.pat != nil && !r.pat.re.MatchString(s) {
		v.add(path, quote(s), "Member must satisfy regular expression pattern: "+r.pat.text)
	}
	if r.enum != nil && !contains(r.enum, s) {
		v.add(path, quote(s), "Member must satisfy enum value set: ["+strings.Join(r.enum, ", ")+"]")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkInt validates an integer member against an inclusive range (nil bounds are open).
func (v *violations) checkInt(path string, n *int32, required bool, min, max *int32) {
	if n == nil {
		if required {
			v.missing(path)
		}
		return
	}
	if min != nil && *n < *min {
		v.add(path, quote(strconv.Itoa(int(*n))), fmt.Sprintf("Member must have value greater than or equal to %d", *min))
	}
	if max != nil && *n > *max {
		v.add(path, quote(strconv.Itoa(int(*n))), fmt.Sprintf("Member must have value less than or equal to %d", *max))
	}
}

// checkFloat validates a float member against an inclusive range.
func (v *violations) checkFloat(path string, f *float64, min, max float64) {
	if f == nil {
		return
	}
	s := quote(strconv.FormatFloat(*f, 'g', -1, 64))
	if *f < min {
		v.add(path, s, fmt.Sprintf("Member must have value greater than or equal to %s", strconv.FormatFloat(min, 'g', -1, 64)))
	}
	if *f > max {
		v.add(path, s, fmt.Sprintf("Member must have value less than or equal to %s", strconv.FormatFloat(max, 'g', -1, 64)))
	}
}

// checkLen validates the length of a list or map member.
func (v *violations) checkLen(path string, n int, present, required bool, min, max int, render func() string) {
	if !present {
		if required {
			v.missing(path)
		}
		return
	}
	if n < min {
		v.add(path, quote(render()), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	}
	if max > 0 && n > max {
		v.add(path, quote(render()), fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
}

func i32(n int32) *int32 { return &n }

func item(list string, i int, member string) string {
	return fmt.Sprintf("%s.%d.member.%s", list, i+1, member)
}
