package server

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
	"github.com/lathe-ml/lathe/internal/iam"
	"github.com/lathe-ml/lathe/internal/iam/policy"
	"github.com/lathe-ml/lathe/internal/sigv4"
)

// isQueryProtocol reports whether a request is an IAM or STS Query call: a form POST to "/" (S3
// never takes a form at the root; SageMaker sends JSON).
func isQueryProtocol(r *http.Request) bool {
	if r.URL.Path != "/" || r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "" {
		return false
	}
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded")
}

// serveIAM answers IAM's and STS's Query protocols (the signing name says which).
func (s *server) serveIAM(w *recorder, r *http.Request) {
	service := signingService(r)
	if service != "sts" {
		service = "iam"
	}
	fail := func(status int, code, message string) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		_, _ = w.Write(iam.ErrorDocument(service, iam.NewError(status, code, message), RequestID(r.Context())))
	}
	body, aerr := readBounded(r, MaxSageMakerBody)
	if aerr != nil {
		fail(aerr.Status, "RequestEntityTooLarge", aerr.Message)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(http.StatusBadRequest, "MalformedQueryString", "The request body is not a valid form: "+err.Error())
		return
	}
	for k, v := range r.URL.Query() {
		if _, ok := form[k]; !ok {
			form[k] = v
		}
	}
	w.op = form.Get("Action")
	res, err := sigv4.Verify(r, body, s.lookup, s.now())
	if err == nil && res.Service != "iam" && res.Service != "sts" {
		err = &sigv4.Error{Kind: sigv4.KindMalformed, Detail: fmt.Sprintf("Credential should be scoped to correct service: '%s'.", service)}
	}
	if err != nil {
		var e *sigv4.Error
		if !errors.As(err, &e) {
			s.log.Error("signature check failed", "request_id", RequestID(r.Context()), "err", err)
			fail(http.StatusInternalServerError, "ServiceFailure", internalMessage)
			return
		}
		w.accessKey = e.AccessKeyID
		s.log.Info("authentication failed", "request_id", RequestID(r.Context()), "reason", e.Error())
		switch e.Kind {
		case sigv4.KindMissing:
			fail(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
		case sigv4.KindUnknownAccessKey:
			fail(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		case sigv4.KindSignatureMismatch, sigv4.KindPayloadHashMismatch, sigv4.KindInvalidPayloadHash:
			fail(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
		case sigv4.KindSkewed, sigv4.KindExpired:
			fail(http.StatusForbidden, "SignatureDoesNotMatch", skewMessage(e))
		default:
			fail(http.StatusBadRequest, "IncompleteSignature", e.Detail)
		}
		return
	}
	service = res.Service
	w.accessKey = res.AccessKeyID
	r = withCaller(r, res)
	if s.cfg.IAM == nil {
		fail(http.StatusNotImplemented, "NotImplemented", "This server does not serve IAM or STS.")
		return
	}
	p, status, code, msg := s.principal(r, res)
	if p == nil {
		if code == "ExpiredToken" {
			msg = "The security token included in the request is expired"
		}
		fail(status, code, msg)
		return
	}
	st, doc := s.cfg.IAM.ServeQuery(r.Context(), &iam.QueryRequest{Service: service, Form: form, Principal: p,
		Context: requestContext(r, res), RequestID: RequestID(r.Context())})
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(st)
	_, _ = w.Write(doc)
}

// principal resolves who signed a request. The root key is the account's root; any other key is
// IAM's. When it fails, status/code/message say why in IAM's words (the caller translates).
func (s *server) principal(r *http.Request, res *sigv4.Result) (p *iam.Principal, status int, code, message string) {
	root := s.cfg.Credentials.AccessKeyID
	if s.cfg.IAM == nil {
		return &iam.Principal{Type: iam.TypeRoot, ARN: "arn:aws:iam::" + s.cfg.AccountID + ":root", Account: s.cfg.AccountID, AccessKeyID: res.AccessKeyID}, 0, "", ""
	}
	if root != "" && res.AccessKeyID == root {
		return s.cfg.IAM.Root(res.AccessKeyID), 0, "", ""
	}
	token := r.Header.Get("X-Amz-Security-Token")
	if token == "" {
		token = r.URL.Query().Get("X-Amz-Security-Token")
	}
	p, err := s.cfg.IAM.Resolve(r.Context(), res.AccessKeyID, token)
	switch {
	case err == nil:
		return p, 0, "", ""
	case errors.Is(err, iam.ErrExpiredToken):
		return nil, http.StatusForbidden, "ExpiredToken", "The security token included in the request is expired"
	case errors.Is(err, iam.ErrInvalidToken):
		return nil, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."
	}
	s.log.Error("resolve principal", "request_id", RequestID(r.Context()), "access_key", res.AccessKeyID, "err", err)
	return nil, http.StatusInternalServerError, "InternalFailure", internalMessage
}

// requestContext is the condition keys the front door knows about every request.
func requestContext(r *http.Request, res *sigv4.Result) policy.Context {
	c := policy.Context{}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		c.Set("aws:SourceIp", host)
	}
	if r.TLS != nil {
		c.Set("aws:SecureTransport", "true")
	} else {
		c.Set("aws:SecureTransport", "false")
	}
	if res != nil {
		c.Set("aws:RequestedRegion", res.Region)
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		c.Set("aws:UserAgent", ua)
	}
	return c
}

// authorize asks IAM whether the request's principal may run action on resource. It returns the
// denial message ("" when allowed), or an error for a failure that is not the caller's.
func (s *server) authorize(r *http.Request, p *iam.Principal, action, resource string, c policy.Context, resourcePolicy *policy.Policy) (string, error) {
	if s.cfg.IAM == nil || p.Type == iam.TypeRoot {
		return "", nil
	}
	d, err := s.cfg.IAM.Authorize(r.Context(), iam.Request{Principal: p, Action: action, Resource: resource, Context: c, ResourcePolicy: resourcePolicy})
	if err != nil {
		return "", err
	}
	noteDecision(r.Context(), p, action, resource, d)
	if d.Allowed {
		return "", nil
	}
	s.log.Info("access denied", "request_id", RequestID(r.Context()), "principal", p.ARN, "action", action, "resource", resource,
		"decision", d.Result.Decision.String(), "policy", d.Result.Policy)
	return d.Message, nil
}

// allowJSON authorizes a SageMaker control-plane or runtime call and answers the denial itself
// (AccessDeniedException, or the token errors of AWS's JSON services). It reports whether the call
// may go on.
//
// target names the resource and the request's own condition keys; it is only called for a non-root
// caller, so the root's requests are not parsed twice.
func (s *server) allowJSON(w *recorder, r *http.Request, which api, res *sigv4.Result, action string, target func() (string, policy.Context)) bool {
	if s.cfg.IAM == nil {
		return true
	}
	p, status, code, msg := s.principal(r, res)
	if p == nil {
		switch code {
		case "ExpiredToken":
			writeJSONError(w, which, http.StatusBadRequest, "ExpiredTokenException", msg)
		case "InvalidClientTokenId":
			writeJSONError(w, which, http.StatusForbidden, "UnrecognizedClientException", msg)
		default:
			writeJSONError(w, which, status, code, msg)
		}
		return false
	}
	if p.Type == iam.TypeRoot {
		return true
	}
	resource, c := target()
	for k, v := range requestContext(r, res) {
		if _, ok := c[k]; !ok {
			c[k] = v
		}
	}
	if s.cfg.ResourceTags != nil && strings.HasPrefix(resource, "arn:") && !strings.HasSuffix(resource, ":*") {
		tags, err := s.cfg.ResourceTags(r.Context(), resource)
		if err != nil {
			s.log.Error("read resource tags", "request_id", RequestID(r.Context()), "resource", resource, "err", err)
			writeJSONError(w, which, http.StatusInternalServerError, "InternalFailure", internalMessage)
			return false
		}
		for k, v := range tags {
			c.Set("aws:ResourceTag/"+k, v)
		}
	}
	denied, err := s.authorize(r, p, action, resource, c, nil)
	if err != nil {
		s.log.Error("authorize", "request_id", RequestID(r.Context()), "err", err)
		writeJSONError(w, which, http.StatusInternalServerError, "InternalFailure", internalMessage)
		return false
	}
	if denied != "" {
		writeJSONError(w, which, http.StatusBadRequest, "AccessDeniedException", denied)
		return false
	}
	return true
}

// sageMakerResource is the ARN a SageMaker operation acts on, from the names in its request:
// arn:aws:sagemaker:REGION:ACCOUNT:automl-job/name (names lower-cased, as SageMaker's ARNs are).
func (s *server) sageMakerResource(op string, body []byte) (string, policy.Context) {
	var in map[string]json.RawMessage
	_ = json.Unmarshal(body, &in)
	c := policy.Context{}
	str := func(k string) string {
		var v string
		_ = json.Unmarshal(in[k], &v)
		return v
	}
	var tags []struct{ Key, Value string }
	if json.Unmarshal(in["Tags"], &tags) == nil && len(tags) > 0 {
		var keys []string
		for _, t := range tags {
			c.Set("aws:RequestTag/"+t.Key, t.Value)
			keys = append(keys, t.Key)
		}
		c.Set("aws:TagKeys", keys...)
	}
	arn := func(kind, name string) string {
		return "arn:aws:sagemaker:" + s.cfg.Region + ":" + s.cfg.AccountID + ":" + kind + "/" + strings.ToLower(name)
	}
	switch {
	case op == "AddTags" || op == "ListTags" || op == "DeleteTags":
		if v := str("ResourceArn"); v != "" {
			return v, c
		}
	case strings.Contains(op, "AutoMLJob") && str("AutoMLJobName") != "":
		return arn("automl-job", str("AutoMLJobName")), c
	case strings.Contains(op, "EndpointConfig") && str("EndpointConfigName") != "":
		return arn("endpoint-config", str("EndpointConfigName")), c
	case strings.Contains(op, "Endpoint") && str("EndpointName") != "":
		return arn("endpoint", str("EndpointName")), c
	case strings.Contains(op, "Model") && str("ModelName") != "":
		return arn("model", str("ModelName")), c
	}
	// The List operations act on no one resource: AWS names the service's whole account scope.
	return "arn:aws:sagemaker:" + s.cfg.Region + ":" + s.cfg.AccountID + ":*", c
}

// s3Authz is one permission an S3 request needs.
type s3Authz struct {
	action, resource string
}

// s3Permissions maps an S3 REST call to the actions and resources IAM checks for it, and the
// S3 condition keys it carries (s3:prefix, s3:delimiter, s3:max-keys for listings).
func s3Permissions(r *http.Request) ([]s3Authz, policy.Context) {
	c := policy.Context{}
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	q := r.URL.Query()
	if bucket == "" {
		return []s3Authz{{"s3:ListAllMyBuckets", "arn:aws:s3:::*"}}, c
	}
	bucketARN := "arn:aws:s3:::" + bucket
	one := func(action string) []s3Authz { return []s3Authz{{action, bucketARN}} }
	if key == "" {
		sub := func(name, get, put, del string) ([]s3Authz, bool) {
			if !q.Has(name) {
				return nil, false
			}
			switch r.Method {
			case http.MethodPut, http.MethodPost:
				return one(put), true
			case http.MethodDelete:
				return one(del), true
			}
			return one(get), true
		}
		for _, s := range [][4]string{
			{"policy", "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"},
			{"tagging", "s3:GetBucketTagging", "s3:PutBucketTagging", "s3:PutBucketTagging"},
			{"encryption", "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration", "s3:PutEncryptionConfiguration"},
			{"versioning", "s3:GetBucketVersioning", "s3:PutBucketVersioning", "s3:PutBucketVersioning"},
			{"acl", "s3:GetBucketAcl", "s3:PutBucketAcl", "s3:PutBucketAcl"},
			{"cors", "s3:GetBucketCORS", "s3:PutBucketCORS", "s3:PutBucketCORS"},
			{"lifecycle", "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration", "s3:PutLifecycleConfiguration"},
			{"location", "s3:GetBucketLocation", "s3:GetBucketLocation", "s3:GetBucketLocation"},
			{"uploads", "s3:ListBucketMultipartUploads", "s3:ListBucketMultipartUploads", "s3:ListBucketMultipartUploads"},
			{"versions", "s3:ListBucketVersions", "s3:ListBucketVersions", "s3:ListBucketVersions"},
		} {
			if a, ok := sub(s[0], s[1], s[2], s[3]); ok {
				return a, c
			}
		}
		switch r.Method {
		case http.MethodPut:
			return one("s3:CreateBucket"), c
		case http.MethodDelete:
			return one("s3:DeleteBucket"), c
		case http.MethodPost:
			if q.Has("delete") {
				// DeleteObjects names its keys in the body: allowDeleteObjects checks
				// s3:DeleteObject on each once the body is decoded.
				return nil, c
			}
		}
		for _, k := range []string{"prefix", "delimiter", "max-keys"} {
			if q.Has(k) {
				c.Set("s3:"+k, q.Get(k))
			}
		}
		return one("s3:ListBucket"), c
	}
	objectARN := bucketARN + "/" + key
	obj := func(action string) []s3Authz { return []s3Authz{{action, objectARN}} }
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case q.Has("tagging"):
			return obj("s3:GetObjectTagging"), c
		case q.Has("acl"):
			return obj("s3:GetObjectAcl"), c
		case q.Has("uploadId"):
			return obj("s3:ListMultipartUploadParts"), c
		}
		return obj("s3:GetObject"), c
	case http.MethodDelete:
		switch {
		case q.Has("tagging"):
			return obj("s3:DeleteObjectTagging"), c
		case q.Has("uploadId"):
			return obj("s3:AbortMultipartUpload"), c
		}
		return obj("s3:DeleteObject"), c
	case http.MethodPut:
		if q.Has("tagging") {
			return obj("s3:PutObjectTagging"), c
		}
		if q.Has("acl") {
			return obj("s3:PutObjectAcl"), c
		}
		perms := obj("s3:PutObject")
		if src := r.Header.Get("X-Amz-Copy-Source"); src != "" {
			// A copy reads its source: without this a user confined to one bucket could copy
			// another bucket's objects into it.
			src, _, _ = strings.Cut(src, "?")
			if u, err := url.PathUnescape(src); err == nil {
				src = u
			}
			perms = append(perms, s3Authz{"s3:GetObject", "arn:aws:s3:::" + strings.TrimPrefix(src, "/")})
		}
		return perms, c
	}
	return obj("s3:PutObject"), c // POST: multipart create and complete
}

// allowS3 authorizes an S3 request and answers a denial itself in S3's XML.
func (s *server) allowS3(w *recorder, r *http.Request, res *sigv4.Result) bool {
	if s.cfg.IAM == nil {
		return true
	}
	p, status, code, _ := s.principal(r, res)
	if p == nil {
		switch code {
		case "ExpiredToken":
			s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "ExpiredToken", Message: "The provided token has expired."})
		case "InvalidClientTokenId":
			s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "InvalidToken", Message: "The provided token is malformed or otherwise invalid."})
		default:
			s.writeS3Error(w, r, s3Error{Status: status, Code: "InternalError", Message: internalMessage})
		}
		return false
	}
	if p.Type == iam.TypeRoot {
		return true
	}
	perms, c := s3Permissions(r)
	for k, v := range requestContext(r, res) {
		c[k] = v
	}
	for _, perm := range perms {
		bp := s.bucketPolicy(r, perm.resource)
		denied, err := s.authorize(r, p, perm.action, perm.resource, c, bp)
		if err != nil {
			s.log.Error("authorize", "request_id", RequestID(r.Context()), "err", err)
			s.writeS3Error(w, r, s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: internalMessage})
			return false
		}
		if denied != "" {
			s.writeS3Error(w, r, s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: denied})
			return false
		}
	}
	return true
}

// bucketPolicy returns the policy of the bucket a resource ARN is in, or nil.
func (s *server) bucketPolicy(r *http.Request, resource string) *policy.Policy {
	rest, ok := strings.CutPrefix(resource, "arn:aws:s3:::")
	bucket, _, _ := strings.Cut(rest, "/")
	if !ok || bucket == "" || bucket == "*" {
		return nil
	}
	doc, ok, err := s.cfg.IAM.BucketPolicy(r.Context(), bucket)
	if err != nil || !ok {
		if err != nil {
			s.log.Error("read bucket policy", "bucket", bucket, "err", err)
		}
		return nil
	}
	p, err := policy.Parse([]byte(doc), policy.Resource)
	if err != nil {
		s.log.Error("stored bucket policy does not parse", "bucket", bucket, "err", err)
		return nil
	}
	return p
}

// serveS3IAM is IAM's part of an S3 request once its body is decoded: it answers PutBucketPolicy,
// GetBucketPolicy and DeleteBucketPolicy (the policies are IAM's to keep and evaluate), drops a
// bucket's policy with the bucket, and authorizes each key of a DeleteObjects. It reports whether
// it answered the request.
func (s *server) serveS3IAM(w *recorder, r *http.Request, res *sigv4.Result) bool {
	if s.cfg.IAM == nil || s.cfg.S3 == nil {
		return false
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if bucket == "" || key != "" {
		return false
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost && q.Has("delete") {
		return !s.allowDeleteObjects(w, r, res, bucket)
	}
	if !q.Has("policy") {
		if r.Method == http.MethodDelete && len(q) == 0 {
			s.cfg.S3.ServeHTTP(w, r)
			if w.status == http.StatusNoContent {
				if err := s.cfg.IAM.DeleteBucketPolicy(r.Context(), bucket); err != nil {
					s.log.Error("delete the policy of a deleted bucket", "bucket", bucket, "err", err)
				}
			}
			return true
		}
		return false
	}
	w.op = "BucketPolicy"
	head := httptest.NewRequest(http.MethodHead, "/"+url.PathEscape(bucket), nil).WithContext(r.Context())
	probe := httptest.NewRecorder()
	s.cfg.S3.ServeHTTP(probe, head)
	if probe.Code == http.StatusNotFound {
		s.writeS3Error(w, r, s3Error{Status: http.StatusNotFound, Code: "NoSuchBucket", Message: "The specified bucket does not exist"})
		return true
	}
	switch r.Method {
	case http.MethodGet:
		w.op = "GetBucketPolicy"
		doc, ok, err := s.cfg.IAM.BucketPolicy(r.Context(), bucket)
		if err != nil {
			s.log.Error("read bucket policy", "bucket", bucket, "err", err)
			s.writeS3Error(w, r, s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: internalMessage})
			return true
		}
		if !ok {
			s.writeS3Error(w, r, s3Error{Status: http.StatusNotFound, Code: "NoSuchBucketPolicy", Message: "The bucket policy does not exist"})
			return true
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, doc)
	case http.MethodPut:
		w.op = "PutBucketPolicy"
		body, err := io.ReadAll(io.LimitReader(r.Body, policy.MaxDocumentSize+1))
		if err != nil {
			s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "The request body could not be read: " + err.Error()})
			return true
		}
		if len(body) > policy.MaxDocumentSize {
			s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "PolicyTooLarge", Message: "Policy exceeds the maximum allowed document size."})
			return true
		}
		if err := s.cfg.IAM.PutBucketPolicy(r.Context(), bucket, string(body)); err != nil {
			var e *iam.Error
			if errors.As(err, &e) {
				s.writeS3Error(w, r, s3Error{Status: e.Status, Code: e.Code, Message: e.Message})
				return true
			}
			s.log.Error("put bucket policy", "bucket", bucket, "err", err)
			s.writeS3Error(w, r, s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: internalMessage})
			return true
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		w.op = "DeleteBucketPolicy"
		if err := s.cfg.IAM.DeleteBucketPolicy(r.Context(), bucket); err != nil {
			s.log.Error("delete bucket policy", "bucket", bucket, "err", err)
			s.writeS3Error(w, r, s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: internalMessage})
			return true
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		s.writeS3Error(w, r, s3Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed", Message: "The specified method is not allowed against this resource."})
	}
	return true
}

// maxDeleteObjectsBody bounds a DeleteObjects request: 1,000 keys of up to 1,024 bytes, escaped.
const maxDeleteObjectsBody = 8 << 20

// allowDeleteObjects reads a DeleteObjects body, checks s3:DeleteObject on every key it names and
// puts the body back for the S3 handler. One denied key refuses the whole request (AWS would
// delete the others and list that key as AccessDenied; refusing all never deletes more).
func (s *server) allowDeleteObjects(w *recorder, r *http.Request, res *sigv4.Result, bucket string) bool {
	p, status, _, _ := s.principal(r, res)
	if p == nil {
		s.writeS3Error(w, r, s3Error{Status: status, Code: "AccessDenied", Message: "Access Denied"})
		return false
	}
	if p.Type == iam.TypeRoot {
		return true
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDeleteObjectsBody+1))
	if err != nil {
		if e := awserr.As(err); e != nil {
			s.writeS3Error(w, r, s3Error{Status: e.Status, Code: e.Code, Message: e.Message})
		} else {
			s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "IncompleteBody", Message: "The request body could not be read: " + err.Error()})
		}
		return false
	}
	var doc struct {
		Objects []struct {
			Key string `xml:"Key"`
		} `xml:"Object"`
	}
	if len(body) > maxDeleteObjectsBody || xml.Unmarshal(body, &doc) != nil {
		s.writeS3Error(w, r, s3Error{Status: http.StatusBadRequest, Code: "MalformedXML",
			Message: "The XML you provided was not well-formed or did not validate against our published schema"})
		return false
	}
	c := requestContext(r, res)
	bucketARN := "arn:aws:s3:::" + bucket
	bp := s.bucketPolicy(r, bucketARN)
	for _, o := range doc.Objects {
		denied, err := s.authorize(r, p, "s3:DeleteObject", bucketARN+"/"+o.Key, c, bp)
		if err != nil {
			s.log.Error("authorize", "request_id", RequestID(r.Context()), "err", err)
			s.writeS3Error(w, r, s3Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: internalMessage})
			return false
		}
		if denied != "" {
			s.writeS3Error(w, r, s3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: denied})
			return false
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}
