package store

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Cursor is the position after the last row of a ListJobs page, shared by the backends so that both
// page the same way. Filter pins the query it was made for, so a cursor cannot be replayed against a
// different filter or order.
type Cursor struct {
	Filter string `json:"f"`
	Key    string `json:"k"` // the sort column's value: status text, or created_ns in decimal
	Name   string `json:"n"` // the lower-cased name, the tie-breaker
}

// Fingerprint identifies the filter and order of q (not its position or page size).
func Fingerprint(q JobQuery) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%q|%q|%d|%d|%d|%d|%q|%t", q.NameContains, q.Status,
		q.CreatedAfter.UnixNano(), q.CreatedBefore.UnixNano(), q.ModifiedAfter.UnixNano(),
		q.ModifiedBefore.UnixNano(), q.SortBy, q.Descending))
	return hex.EncodeToString(h[:8])
}

// Encode returns the opaque token handed to the client as NextToken.
func (c Cursor) Encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses a token made by Encode for the query q; ErrBadCursor when it was not.
func DecodeCursor(s string, q JobQuery) (Cursor, error) {
	var c Cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, ErrBadCursor
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, ErrBadCursor
	}
	if c.Filter == "" || c.Name == "" {
		return c, fmt.Errorf("%w: incomplete", ErrBadCursor)
	}
	if c.Filter != Fingerprint(q) {
		return c, fmt.Errorf("%w: made for another query", ErrBadCursor)
	}
	return c, nil
}

// SortColumn names the column a query orders by before the name: "" (the name alone), "created"
// or "status"; an error for an unknown sort key.
func SortColumn(q JobQuery) (string, error) {
	switch q.SortBy {
	case "", SortByName:
		return "", nil
	case SortByCreationTime:
		return "created", nil
	case SortByStatus:
		return "status", nil
	}
	return "", errors.New("unknown sort key " + q.SortBy)
}
