package dataset

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a dataset file, located as precisely as the format allows.
type Problem struct {
	File    string `json:"file"`             // object name (key) the problem is in
	Row     int    `json:"row,omitempty"`    // 1-based data row (the header is not a row); 0 when not about a row
	Line    int    `json:"line,omitempty"`   // 1-based line of the CSV file where the row starts; 0 for Parquet
	Column  string `json:"column,omitempty"` // column name, when the problem is about one column
	Message string `json:"message"`          // what is wrong and, where it is not obvious, how to fix it
}

// String renders the problem as it appears in a FailureReason: the file, then the row (or, for
// a CSV syntax error, the line), then the message.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	switch {
	case p.Row > 0 && p.Line > 0 && p.Line != p.Row+1:
		fmt.Fprintf(&b, " row %d (line %d)", p.Row, p.Line)
	case p.Row > 0:
		fmt.Fprintf(&b, " row %d", p.Row)
	case p.Line > 0:
		fmt.Fprintf(&b, " line %d", p.Line)
	}
	b.WriteString(": ")
	b.WriteString(p.Message)
	return b.String()
}

// MaxSummaryLen is the longest string Summarize returns: SageMaker's FailureReason holds at most
// 1024 characters.
const MaxSummaryLen = 1024

// Summarize renders the first limit problems for a FailureReason, separated by "; ", followed by
// "; ... and N more problems" when there are more. It drops problems from the end (and counts
// them in N) until the result fits in MaxSummaryLen bytes; a single problem that is too long on
// its own is cut. It returns "" for no problems.
func Summarize(problems []Problem, limit int) string {
	if len(problems) == 0 {
		return ""
	}
	limit = min(max(limit, 1), len(problems))
	parts := make([]string, limit)
	for i := range parts {
		parts[i] = problems[i].String()
	}
	for shown := limit; ; shown-- {
		suffix := ""
		if more := len(problems) - shown; more > 0 {
			suffix = fmt.Sprintf("; ... and %d more %s", more, plural(more, "problem", "problems"))
		}
		s := strings.Join(parts[:shown], "; ")
		if len(s)+len(suffix) <= MaxSummaryLen {
			return s + suffix
		}
		if shown == 1 {
			return cutUTF8(s, MaxSummaryLen-len(suffix)) + suffix
		}
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// cutUTF8 shortens s to at most n bytes without splitting a UTF-8 sequence, ending with "...".
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	end := n - 3
	for end > 0 && s[end]&0xC0 == 0x80 { // do not cut inside a multi-byte character
		end--
	}
	return s[:end] + "..."
}
