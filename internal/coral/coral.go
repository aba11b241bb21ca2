// Package coral reports request validation failures the way SageMaker's front end (Coral) does, so
// every Lathe operation words them alike:
//
//	2 validation errors detected: Value 'x_y' at 'autoMLJobName' failed to satisfy constraint: Member
//	must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}; Value ...
//
// Member paths are lowerCamel; list members are "list.N.member.field" with N counted from 1.
package coral

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// Violations collects constraint failures; Err turns them into one ValidationException.
type Violations struct {
	msgs []string
}

// Add records that value (already quoted, see Quote) at path breaks constraint.
func (v *Violations) Add(path, value, constraint string) {
	v.msgs = append(v.msgs, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, path, constraint))
}

// Missing records that the required member at path is absent.
func (v *Violations) Missing(path string) {
	v.msgs = append(v.msgs, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", path))
}

// Len is the number of failures recorded.
func (v *Violations) Len() int { return len(v.msgs) }

// Messages are the failures recorded, in order.
func (v *Violations) Messages() []string { return v.msgs }

// Err returns the ValidationException for the collected failures, or nil.
func (v *Violations) Err() error {
	switch len(v.msgs) {
	case 0:
		return nil
	case 1:
		return awserr.Validation("1 validation error detected: %s", v.msgs[0])
	}
	return awserr.Validation("%d validation errors detected: %s", len(v.msgs), strings.Join(v.msgs, "; "))
}

// Quote renders a value as Coral's messages show it.
func Quote(s string) string { return "'" + s + "'" }

// Pattern is a modelled pattern: Coral matches the whole value, and quotes the pattern as modelled.
type Pattern struct {
	Text string
	re   *regexp.Regexp
}

// NewPattern compiles a pattern of the service model.
func NewPattern(text string) *Pattern {
	return &Pattern{Text: text, re: regexp.MustCompile(`^(?:` + text + `)$`)}
}

// Match reports whether the whole of s matches.
func (p *Pattern) Match(s string) bool { return p.re.MatchString(s) }
