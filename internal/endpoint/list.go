package endpoint

import (
	"cmp"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// listRequest is the common input of ListModels, ListEndpointConfigs and ListEndpoints.
type listRequest struct {
	SortBy                 *string  `json:"SortBy"`
	SortOrder              *string  `json:"SortOrder"`
	NextToken              *string  `json:"NextToken"`
	MaxResults             *int64   `json:"MaxResults"`
	NameContains           *string  `json:"NameContains"`
	CreationTimeBefore     *float64 `json:"CreationTimeBefore"`
	CreationTimeAfter      *float64 `json:"CreationTimeAfter"`
	LastModifiedTimeBefore *float64 `json:"LastModifiedTimeBefore"`
	LastModifiedTimeAfter  *float64 `json:"LastModifiedTimeAfter"`
	StatusEquals           *string  `json:"StatusEquals"`
}

type listItem struct {
	name     string
	created  time.Time
	modified time.Time
	status   string
	summary  map[string]any
}

func parseList(body []byte, sortKeys []string, endpoints bool) (*listRequest, error) {
	var q listRequest
	if err := decode(body, &q); err != nil {
		return nil, err
	}
	v := &violations{}
	v.str("sortBy", q.SortBy, false, 0, nil, sortKeys)
	v.str("sortOrder", q.SortOrder, false, 0, nil, sortOrders)
	v.str("nextToken", q.NextToken, false, 8192, patPagingToken, nil)
	v.intRange("maxResults", q.MaxResults, 1, 100)
	v.str("nameContains", q.NameContains, false, 63, patNameFilter, nil)
	if endpoints {
		v.str("statusEquals", q.StatusEquals, false, 0, nil, endpointStatus)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return &q, nil
}

// apply filters, sorts (CreationTime descending by default, as SageMaker) and pages items; the next
// token is the offset of the next page in the same listing.
func (q *listRequest) apply(items []listItem) ([]map[string]any, string, error) {
	before := func(t time.Time, f *float64) bool { return f == nil || t.Before(fromUnix(*f)) }
	after := func(t time.Time, f *float64) bool { return f == nil || t.After(fromUnix(*f)) }
	kept := items[:0]
	for _, it := range items {
		if q.NameContains != nil && !strings.Contains(strings.ToLower(it.name), strings.ToLower(*q.NameContains)) {
			continue
		}
		if !before(it.created, q.CreationTimeBefore) || !after(it.created, q.CreationTimeAfter) ||
			!before(it.modified, q.LastModifiedTimeBefore) || !after(it.modified, q.LastModifiedTimeAfter) {
			continue
		}
		if q.StatusEquals != nil && it.status != *q.StatusEquals {
			continue
		}
		kept = append(kept, it)
	}
	by := "CreationTime"
	if q.SortBy != nil {
		by = *q.SortBy
	}
	desc := q.SortOrder == nil || *q.SortOrder == "Descending"
	slices.SortStableFunc(kept, func(a, b listItem) int {
		c := 0
		switch by {
		case "Name":
			c = strings.Compare(a.name, b.name)
		case "Status":
			c = strings.Compare(a.status, b.status)
		default:
			c = a.created.Compare(b.created)
		}
		if c == 0 {
			c = cmp.Compare(a.name, b.name)
		}
		if desc {
			return -c
		}
		return c
	})
	start := 0
	if q.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*q.NextToken)
		n, err2 := strconv.Atoi(string(b))
		if err != nil || err2 != nil || n < 0 {
			return nil, "", awserr.Validation("Invalid pagination token: NextToken must come from the previous response.")
		}
		start = min(n, len(kept))
	}
	limit := 10
	if q.MaxResults != nil {
		limit = int(*q.MaxResults)
	}
	end := min(start+limit, len(kept))
	page := make([]map[string]any, 0, end-start)
	for _, it := range kept[start:end] {
		page = append(page, it.summary)
	}
	next := ""
	if end < len(kept) {
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return page, next, nil
}

// listOutput is a List response: the page under key, and NextToken only when more follow.
func listOutput(key string, page []map[string]any, next string) map[string]any {
	out := map[string]any{key: page}
	if next != "" {
		out["NextToken"] = next
	}
	return out
}
