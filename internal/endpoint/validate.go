package endpoint

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/coral"
)

// Patterns of the hosting shapes (botocore sagemaker 2017-07-24 service-2.json).
var (
	patModelName   = coral.NewPattern(`[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?`)
	patEndpoint    = coral.NewPattern(`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`) // EndpointName, EndpointConfigName, VariantName
	patURL         = coral.NewPattern(`(https|s3)://([^/]+)/?(.*)`)
	patImage       = coral.NewPattern(`[\S]+`)
	patRoleARN     = coral.NewPattern(`arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`)
	patEnvKey      = coral.NewPattern(`[a-zA-Z_][a-zA-Z0-9_]*`)
	patEnvValue    = coral.NewPattern(`[\S\s]*`)
	patNameFilter  = coral.NewPattern(`[a-zA-Z0-9-]+`)
	patTag         = coral.NewPattern(`([\p{L}\p{Z}\p{N}_.:/=+\-@]*)`)
	patKMS         = coral.NewPattern(`[a-zA-Z0-9:/_-]*`)
	patPagingToken = coral.NewPattern(`.*`)
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

// str checks a string member: presence, length in characters, pattern, enum.
func (v *violations) str(path string, s *string, required bool, max int, pat *coral.Pattern, enum []string) {
	if s == nil {
		if required {
			v.Missing(path)
		}
		return
	}
	n := utf8.RuneCountInString(*s)
	if max > 0 && n > max {
		v.Add(path, coral.Quote(*s), fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
	if pat != nil && !pat.Match(*s) {
		v.Add(path, coral.Quote(*s), "Member must satisfy regular expression pattern: "+pat.Text)
	}
	if enum != nil && !slices.Contains(enum, *s) {
		v.Add(path, coral.Quote(*s), "Member must satisfy enum value set: ["+strings.Join(enum, ", ")+"]")
	}
}

// minLen checks a string member's minimum length (Coral reports it before the pattern).
func (v *violations) minLen(path string, s *string, min int) {
	if s != nil && utf8.RuneCountInString(*s) < min {
		v.Add(path, coral.Quote(*s), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	}
}

func (v *violations) intRange(path string, n *int64, min, max int64) {
	if n == nil {
		return
	}
	if *n < min {
		v.Add(path, coral.Quote(strconv.FormatInt(*n, 10)), fmt.Sprintf("Member must have value greater than or equal to %d", min))
	}
	if max > 0 && *n > max {
		v.Add(path, coral.Quote(strconv.FormatInt(*n, 10)), fmt.Sprintf("Member must have value less than or equal to %d", max))
	}
}

func (v *violations) listLen(path string, n, min, max int) {
	if n < min {
		v.Add(path, coral.Quote(fmt.Sprintf("[%d items]", n)), fmt.Sprintf("Member must have length greater than or equal to %d", min))
	}
	if max > 0 && n > max {
		v.Add(path, coral.Quote(fmt.Sprintf("[%d items]", n)), fmt.Sprintf("Member must have length less than or equal to %d", max))
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

// violations collects constraint failures in Coral's words (package coral) and adds the checks of
// the hosting shapes.
type violations struct{ coral.Violations }
