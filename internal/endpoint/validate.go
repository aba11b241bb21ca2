package endpoint

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// violations collects constraint failures and reports them as SageMaker's front end (Coral) does:
// "2 validation errors detected: Value 'x' at 'endpointName' failed to satisfy constraint: ...".
type violations struct{ msgs []string }

func (v *violations) add(path, value, constraint string) {
	v.msgs = append(v.msgs, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, path, constraint))
}

func (v *violations) missing(path string) {
	v.msgs = append(v.msgs, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", path))
}

func (v *violations) err() error {
	switch len(v.msgs) {
	case 0:
		return nil
	case 1:
		return awserr.Validation("1 validation error detected: %s", v.msgs[0])
	}
	return awserr.Validation("%d validation errors detected: %s", len(v.msgs), strings.Join(v.msgs, "; "))
}

// pattern is a modelled pattern: Coral matches the whole value and quotes the pattern as modelled.
type pattern struct {
	text string
	re   *regexp.Regexp
}

func newPattern(text string) *pattern {
	return &pattern{text: text, re: regexp.MustCompile(`^(?:` + text + `)$`)}
}

// Patterns of the hosting shapes (botocore sagemaker 2017-07-24 service-2.json).
var (
	patModelName   = newPattern(`[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?`)
	patEndpoint    = newPattern(`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`) // EndpointName, EndpointConfigName, VariantName
	patURL         = newPattern(`(https|s3)://([^/]+)/?(.*)`)
	patImage       = newPattern(`[\S]+`)
	patRoleARN     = newPattern(`arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	patEnvKey      = newPattern(`[a-zA-Z_][a-zA-Z0-9_]*`)
	patEnvValue    = newPattern(`[\S\s]*`)
	patNameFilter  = newPattern(`[a-zA-Z0-9-]+`)
	patTag         = newPattern(`([\p{L}\p{Z}\p{N}_.:/=+\-@]*)`)
	patKMS         = newPattern(`[a-zA-Z0-9:/_-]*`)
	patPagingToken = newPattern(`.*`)
)

// Enum values come from the SDK's own types, so they track the service model Lathe is tested with.
var (
	instanceTypes  = enumValues(types.ProductionVariantInstanceType("").Values())
	endpointStatus = enumValues(types.EndpointStatus("").Values())
	containerModes = enumValues(types.ContainerMode("").Values())
	sortOrders     = enumValues(types.OrderKey("").Values())
	modelSortKeys  = enumValues(types.ModelSortKey("").Values())
	configSortKeys = enumValues(types.EndpointConfigSortKey("").Values())
	endpSortKeys   = enumValues(types.EndpointSortKey("").Values())
)

func enumValues[T ~string](vals []T) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

func quote(s string) string { return "'" + s + "'" }

// str checks a string member: presence, length in characters, pattern, enum.
func (v *violations) str(path string, s *string, required bool, max int, pat *pattern, enum []string) {
	if s == nil {
		if required {
			v.missing(path)
		}
		return
	}
	n := utf8.RuneCountInString(*s)
	if max > 0 && n > max {
		v.add(path, quote(*s), fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
	if pat != nil && !pat.re.MatchString(*s) {
		v.add(path, quote(*s), "Member must satisfy regular expression pattern: "+pat.text)
	}
	if enum != nil && !slices.Contains(enum, *s) {
		v.add(path, quote(*s), "Member must satisfy enum value set: ["+strings.Join(enum, ", ")+"]")
	}
}

// minLen checks a string member's minimum length (Coral reports it before the pattern).
func (v *violations) minLen(path string, s *string, min int) {
	if s != nil && utf8.RuneCountInString(*s) < min {
		v.add(path, quote(*s), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	}
}

func (v *violations) intRange(path string, n *int64, min, max int64) {
	if n == nil {
		return
	}
	if *n < min {
		v.add(path, quote(strconv.FormatInt(*n, 10)), fmt.Sprintf("Member must have value greater than or equal to %d", min))
	}
	if max > 0 && *n > max {
		v.add(path, quote(strconv.FormatInt(*n, 10)), fmt.Sprintf("Member must have value less than or equal to %d", max))
	}
}

func (v *violations) listLen(path string, n, min, max int) {
	if n < min {
		v.add(path, quote(fmt.Sprintf("[%d items]", n)), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	}
	if max > 0 && n > max {
		v.add(path, quote(fmt.Sprintf("[%d items]", n)), fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
}

type tag struct {
	Key   *string `json:"Key"`
	Value *string `json:"Value"`
}

func (v *violations) tags(tags []tag) {
	v.listLen("tags", len(tags), 0, 50)
	for i, t := range tags {
		p := fmt.Sprintf("tags.%d.member", i+1)
		v.str(p+".key", t.Key, true, 128, patTag, nil)
		v.minLen(p+".key", t.Key, 1)
		v.str(p+".value", t.Value, true, 256, patTag, nil)
	}
}

// decode reads a request body into v, refusing what is not a JSON object of the right shape.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return awserr.New(400, "SerializationException", "Start of structure or map found where not expected, or a member has the wrong type: %v", err)
	}
	return nil
}
