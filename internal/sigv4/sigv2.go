package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Presigned S3 URLs in the older SigV2 form (AWSAccessKeyId, Expires, Signature) are what boto3's
// generate_presigned_url produces by default for S3, so users' scripts send them. Only this query
// form of SigV2 is accepted; SigV2 Authorization headers are refused like on new S3 regions.

// PresignedV2 reports whether r carries a SigV2 presigned-URL signature in its query.
func PresignedV2(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("AWSAccessKeyId") && q.Has("Signature") && !q.Has(queryAlgorithm)
}

// subresourcesV2 are the query parameters that SigV2 signs as part of the resource.
var subresourcesV2 = map[string]bool{
	"acl": true, "cors": true, "delete": true, "lifecycle": true, "location": true, "logging": true,
	"notification": true, "partNumber": true, "policy": true, "requestPayment": true, "restore": true,
	"tagging": true, "torrent": true, "uploadId": true, "uploads": true, "versionId": true,
	"versioning": true, "versions": true, "website": true,
	"response-cache-control": true, "response-content-disposition": true, "response-content-encoding": true,
	"response-content-language": true, "response-content-type": true, "response-expires": true,
}

// verifyPresignedV2 checks an S3 SigV2 query-string signature:
// base64(HMAC-SHA1(secret, VERB\nContent-MD5\nContent-Type\nExpires\n<x-amz headers><resource>)).
func verifyPresignedV2(r *http.Request, lookup SecretLookup, now time.Time) (*Result, error) {
	q := r.URL.Query()
	akid, signature, expiresStr := q.Get("AWSAccessKeyId"), q.Get("Signature"), q.Get("Expires")
	if akid == "" || signature == "" || expiresStr == "" {
		return nil, malformed("query-string authentication requires the AWSAccessKeyId, Expires and Signature parameters")
	}
	expiresUnix, err := strconv.ParseInt(expiresStr, 10, 64)
	if err != nil || expiresUnix < 0 {
		return nil, malformed("Expires %q is not a number of seconds since the epoch", truncate(expiresStr, 20))
	}
	given, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(given) != sha1.Size {
		return nil, malformed("Signature is not a base64 HMAC-SHA1")
	}
	secret, ok := lookup(akid)
	if !ok {
		return nil, &Error{Kind: KindUnknownAccessKey, AccessKeyID: akid, Detail: "access key " + truncate(akid, 40) + " is not known"}
	}
	expires := time.Unix(expiresUnix, 0)
	if now.After(expires) {
		return nil, &Error{Kind: KindExpired, ServerTime: now, Expires: expires, RequestTime: expires,
			Detail: "presigned URL expired at " + expires.UTC().Format(time.RFC3339)}
	}
	var first *Error
	for _, path := range canonicalPaths(r, "s3") {
		sts := r.Method + "\n" + r.Header.Get("Content-MD5") + "\n" + r.Header.Get("Content-Type") + "\n" +
			expiresStr + "\n" + amzHeadersV2(r) + path + subresourceQueryV2(r.URL.RawQuery)
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write([]byte(sts))
		if hmac.Equal(mac.Sum(nil), given) {
			return &Result{AccessKeyID: akid, Service: "s3", Time: now, Signature: signature,
				PayloadHash: UnsignedPayload, Presigned: true}, nil
		}
		if first == nil {
			first = &Error{Kind: KindSignatureMismatch, AccessKeyID: akid, StringToSign: sts, SignatureGiven: signature,
				Detail: "the SigV2 signature does not match the request"}
		}
	}
	return nil, first
}

// amzHeadersV2 renders the x-amz-* headers as SigV2 signs them: lower-case, sorted, "name:value\n".
func amzHeadersV2(r *http.Request) string {
	var names []string
	for k := range r.Header {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-amz-") {
			names = append(names, lk)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		vals := r.Header.Values(n)
		for i := range vals {
			vals[i] = trimAll(vals[i])
		}
		b.WriteString(n + ":" + strings.Join(vals, ",") + "\n")
	}
	return b.String()
}

// subresourceQueryV2 keeps the signed sub-resources of a query, sorted, values decoded.
func subresourceQueryV2(rawQuery string) string {
	var parts []string
	for part := range strings.SplitSeq(rawQuery, "&") {
		k, v, hasValue := strings.Cut(part, "=")
		if !subresourcesV2[k] {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			v = dv
		}
		if hasValue {
			parts = append(parts, k+"="+v)
		} else {
			parts = append(parts, k)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	return "?" + strings.Join(parts, "&")
}
