package automl

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lathe-ml/lathe/internal/coral"
)

// strRule is the constraint set of a string member.
type strRule struct {
	min, max int // max 0 = unbounded
	pat      *coral.Pattern
	enum     []string
}

// checkString validates a string member; required says whether absence is an error.
func (v *violations) checkString(path string, s *string, required bool, r strRule) {
	if s == nil {
		if required {
			v.Missing(path)
		}
		return
	}
	v.checkStringValue(path, *s, r)
}

func (v *violations) checkStringValue(path, s string, r strRule) {
	n := utf8.RuneCountInString(s)
	if n < r.min {
		v.Add(path, coral.Quote(s), fmt.Sprintf("Member must have length greater than or equal to %d", r.min))
	}
	if r.max > 0 && n > r.max {
		v.Add(path, coral.Quote(s), fmt.Sprintf("Member must have length less than or equal to %d", r.max))
	}
	if r.pat != nil && !r.pat.Match(s) {
		v.Add(path, coral.Quote(s), "Member must satisfy regular expression pattern: "+r.pat.Text)
	}
	if r.enum != nil && !contains(r.enum, s) {
		v.Add(path, coral.Quote(s), "Member must satisfy enum value set: ["+strings.Join(r.enum, ", ")+"]")
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
			v.Missing(path)
		}
		return
	}
	if min != nil && *n < *min {
		v.Add(path, coral.Quote(strconv.Itoa(int(*n))), fmt.Sprintf("Member must have value greater than or equal to %d", *min))
	}
	if max != nil && *n > *max {
		v.Add(path, coral.Quote(strconv.Itoa(int(*n))), fmt.Sprintf("Member must have value less than or equal to %d", *max))
	}
}

// checkFloat validates a float member against an inclusive range.
func (v *violations) checkFloat(path string, f *float64, min, max float64) {
	if f == nil {
		return
	}
	s := coral.Quote(strconv.FormatFloat(*f, 'g', -1, 64))
	if *f < min {
		v.Add(path, s, fmt.Sprintf("Member must have value greater than or equal to %s", strconv.FormatFloat(min, 'g', -1, 64)))
	}
	if *f > max {
		v.Add(path, s, fmt.Sprintf("Member must have value less than or equal to %s", strconv.FormatFloat(max, 'g', -1, 64)))
	}
}

// checkLen validates the length of a list or map member.
func (v *violations) checkLen(path string, n int, present, required bool, min, max int, render func() string) {
	if !present {
		if required {
			v.Missing(path)
		}
		return
	}
	if n < min {
		v.Add(path, coral.Quote(render()), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	}
	if max > 0 && n > max {
		v.Add(path, coral.Quote(render()), fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
}

func i32(n int32) *int32 { return &n }

func item(list string, i int, member string) string {
	return fmt.Sprintf("%s.%d.member.%s", list, i+1, member)
}

// violations collects constraint failures in Coral's words (package coral) and adds the checks of
// the AutoML shapes.
type violations struct{ coral.Violations }
