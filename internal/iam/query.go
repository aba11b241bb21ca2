package iam

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lathe-ml/lathe/internal/iam/policy"
)

// The Query protocol versions and XML namespaces of the two services.
const (
	IAMVersion   = "2010-05-08"
	STSVersion   = "2011-06-15"
	iamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// Error is an IAM/STS error as the Query protocol carries it.
type Error struct {
	Status  int
	Code    string
	Message string
	Type    string // Sender (default) or Receiver
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func noSuchEntity(format string, args ...any) *Error {
	return errorf(http.StatusNotFound, "NoSuchEntity", format, args...)
}

func alreadyExists(format string, args ...any) *Error {
	return errorf(http.StatusConflict, "EntityAlreadyExists", format, args...)
}

func deleteConflict(format string, args ...any) *Error {
	return errorf(http.StatusConflict, "DeleteConflict", format, args...)
}

func validationError(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "ValidationError", format, args...)
}

// AccessDenied is the Query protocols' denial.
func AccessDenied(message string) *Error {
	return errorf(http.StatusForbidden, "AccessDenied", "%s", message)
}

// QueryRequest is one IAM or STS Query call.
type QueryRequest struct {
	Service   string // "iam" or "sts" (the SigV4 signing name)
	Form      url.Values
	Principal *Principal
	Context   policy.Context // aws:SourceIp, aws:SecureTransport, ...: the front door's keys
	RequestID string
}

// call is what an operation sees.
type call struct {
	*QueryRequest
	ctx    context.Context
	action string
}

type operation func(s *Service, c *call) (any, error)

// ServeQuery answers a Query call with the HTTP status and XML body AWS would send.
func (s *Service) ServeQuery(ctx context.Context, q *QueryRequest) (int, []byte) {
	action := q.Form.Get("Action")
	ns, ops, version := iamNamespace, iamOperations, IAMVersion
	if q.Service == "sts" {
		ns, ops, version = stsNamespace, stsOperations, STSVersion
	}
	fail := func(err error) (int, []byte) {
		var e *Error
		if !errors.As(err, &e) {
			s.log.Error("iam operation failed", "action", action, "request_id", q.RequestID, "err", err)
			e = &Error{Status: http.StatusInternalServerError, Code: "ServiceFailure", Type: "Receiver",
				Message: "The request processing has failed because of an unknown error, exception or failure."}
		}
		return e.Status, errorDocument(ns, e, q.RequestID)
	}
	if action == "" {
		return fail(errorf(http.StatusBadRequest, "MissingAction", "Missing Action"))
	}
	op, ok := ops[action]
	if !ok {
		return fail(errorf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, version))
	}
	if v := q.Form.Get("Version"); v != version {
		return fail(errorf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version %s", action, v))
	}
	out, err := op(s, &call{QueryRequest: q, ctx: ctx, action: action})
	if err != nil {
		return fail(err)
	}
	return http.StatusOK, responseDocument(ns, action, out, q.RequestID)
}

// responseDocument wraps a result as <ActionResponse><ActionResult>...</ActionResult>
// <ResponseMetadata><RequestId>..</RequestId></ResponseMetadata></ActionResponse>.
func responseDocument(ns, action string, result any, requestID string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<%sResponse xmlns="%s">`, action, ns)
	if result != nil {
		enc := xml.NewEncoder(&b)
		if err := enc.EncodeElement(result, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
			// Every result is a struct of strings, numbers, times and lists: this is a bug.
			panic(fmt.Sprintf("encode %s result: %v", action, err))
		}
	}
	b.WriteString("<ResponseMetadata><RequestId>")
	_ = xml.EscapeText(&b, []byte(requestID))
	b.WriteString("</RequestId></ResponseMetadata>")
	fmt.Fprintf(&b, "</%sResponse>", action)
	return b.Bytes()
}

func errorDocument(ns string, e *Error, requestID string) []byte {
	typ := e.Type
	if typ == "" {
		typ = "Sender"
	}
	doc := struct {
		XMLName xml.Name `xml:"ErrorResponse"`
		NS      string   `xml:"xmlns,attr"`
		Error   struct {
			Type    string
			Code    string
			Message string
		}
		RequestID string `xml:"RequestId"`
	}{NS: ns, RequestID: requestID}
	doc.Error.Type, doc.Error.Code, doc.Error.Message = typ, e.Code, e.Message
	b, _ := xml.Marshal(doc)
	return b
}

// members renders a list as AWS's <Name><member>..</member></Name>, present even when empty.
type members[T any] struct {
	Member []T `xml:"member"`
}

// isoTime is a timestamp as the Query protocol writes it.
type isoTime time.Time

func (t isoTime) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format("2006-01-02T15:04:05Z")), nil
}

// encodeDocument URL-encodes a policy document, as IAM returns them (boto3 decodes them).
func encodeDocument(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

// Parameter checks, with IAM's validation messages.
var (
	namePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)
	pathPattern = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)
)

// required returns a parameter that must be present.
func (c *call) required(name string) (string, error) {
	v, ok := c.Form[name]
	if !ok || len(v) == 0 {
		return "", validationError("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(name))
	}
	return v[0], nil
}

// name returns a required entity name checked against IAM's pattern and length.
func (c *call) name(param string, max int) (string, error) {
	v, err := c.required(param)
	if err != nil {
		return "", err
	}
	return v, checkName(param, v, max)
}

func checkName(param, v string, max int) error {
	switch {
	case len(v) < 1 || len(v) > max:
		return validationError("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", v, lowerFirst(param), max)
	case !namePattern.MatchString(v):
		return validationError(`1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`, v, lowerFirst(param))
	}
	return nil
}

// path returns the optional Path parameter (default "/").
func (c *call) path(param string) (string, error) {
	v := c.Form.Get(param)
	if v == "" {
		if _, set := c.Form[param]; !set {
			return "/", nil
		}
	}
	if len(v) > 512 || !pathPattern.MatchString(v) {
		return "", validationError(`1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)`, v, lowerFirst(param))
	}
	return v, nil
}

// maxItems returns MaxItems (1..1000, default 100) and the Marker.
func (c *call) page() (int, string, error) {
	n := 100
	if v := c.Form.Get("MaxItems"); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 1 || i > 1000 {
			return 0, "", validationError("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", v)
		}
		n = i
	}
	return n, c.Form.Get("Marker"), nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// paginate cuts a sorted list after marker (an opaque token: the last key returned).
func paginate[T any](items []T, key func(T) string, max int, marker string) (page []T, truncated bool, next string) {
	start := 0
	if marker != "" {
		for start < len(items) && strings.ToLower(key(items[start])) <= strings.ToLower(marker) {
			start++
		}
	}
	items = items[start:]
	if len(items) > max {
		return items[:max], true, key(items[max-1])
	}
	return items, false, ""
}

// authorize asks whether the caller may run this IAM action on the resource.
func (s *Service) authorize(c *call, action, resource string) error {
	d, err := s.Authorize(c.ctx, Request{Principal: c.Principal, Action: action, Resource: resource, Context: c.Context})
	if err != nil {
		return err
	}
	if !d.Allowed {
		return AccessDenied(d.Message)
	}
	return nil
}

// parseDocument checks a policy document parameter.
func parseDocument(param, doc string, kind policy.Kind) error {
	if doc == "" {
		return validationError("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(param))
	}
	if _, err := policy.Parse([]byte(doc), kind); err != nil {
		var me *policy.MalformedError
		if errors.As(err, &me) {
			return errorf(http.StatusBadRequest, "MalformedPolicyDocument", "%s", me.Message)
		}
		return err
	}
	return nil
}

// ErrorDocument renders an error as the Query protocol of service ("iam" or "sts") writes it, for
// failures the front door answers itself (signatures, expired tokens).
func ErrorDocument(service string, e *Error, requestID string) []byte {
	ns := iamNamespace
	if service == "sts" {
		ns = stsNamespace
	}
	return errorDocument(ns, e, requestID)
}

// NewError returns a Query protocol error.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}
