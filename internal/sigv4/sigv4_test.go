package sigv4

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The credentials and time of the worked examples in AWS's S3 SigV4 documentation
// ("Signature Calculations for the Authorization Header", "Authenticating Requests: Using Query
// Parameters", "Transferring Payload in Multiple Chunks", "Signature calculations for trailing
// headers"). Their signatures are AWS's, so a pass means Lathe computes what S3 computes.
const (
	exampleAKID   = "AKIAIOSFODNN7EXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	emptyHash     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

var exampleTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func exampleLookup(akid string) (string, bool) {
	switch akid {
	case exampleAKID:
		return exampleSecret, true
	case "AKIDEXAMPLE": // the AWS SigV4 test suite's key
		return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", true
	}
	return "", false
}

type exampleRequest struct {
	name          string
	method, uri   string
	host          string
	headers       [][2]string
	body          string
	signedHeaders string
	signature     string // "" for a presigned URI
	now           time.Time
	streaming     bool
}

func (e exampleRequest) build(signature string) *http.Request {
	r := httptest.NewRequest(e.method, e.uri, strings.NewReader(e.body))
	r.Host = e.host
	for _, h := range e.headers {
		r.Header.Add(h[0], h[1])
	}
	if e.signature != "" {
		scope := "20130524/us-east-1/s3/aws4_request"
		akid := exampleAKID
		if e.host == "example.amazonaws.com" {
			scope, akid = "20150830/us-east-1/service/aws4_request", "AKIDEXAMPLE"
		}
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+akid+"/"+scope+", SignedHeaders="+e.signedHeaders+", Signature="+signature)
	}
	return r
}

var publishedExamples = []exampleRequest{
	{
		name: "S3 GET object with range", method: "GET", uri: "/test.txt", host: "examplebucket.s3.amazonaws.com",
		headers:       [][2]string{{"Range", "bytes=0-9"}, {"X-Amz-Content-Sha256", emptyHash}, {"X-Amz-Date", "20130524T000000Z"}},
		signedHeaders: "host;range;x-amz-content-sha256;x-amz-date",
		signature:     "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
	},
	{
		name: "S3 PUT object with an escaped key and a signed body", method: "PUT", uri: "/test%24file.text", host: "examplebucket.s3.amazonaws.com",
		headers: [][2]string{{"Date", "Fri, 24 May 2013 00:00:00 GMT"}, {"X-Amz-Date", "20130524T000000Z"}, {"X-Amz-Storage-Class", "REDUCED_REDUNDANCY"},
			{"X-Amz-Content-Sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"}},
		body:          "Welcome to Amazon S3.",
		signedHeaders: "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
		signature:     "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
	},
	{
		name: "S3 GET bucket lifecycle (query name without value)", method: "GET", uri: "/?lifecycle", host: "examplebucket.s3.amazonaws.com",
		headers:       [][2]string{{"X-Amz-Content-Sha256", emptyHash}, {"X-Amz-Date", "20130524T000000Z"}},
		signedHeaders: "host;x-amz-content-sha256;x-amz-date",
		signature:     "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
	},
	{
		name: "S3 list objects (query sorted)", method: "GET", uri: "/?prefix=J&max-keys=2", host: "examplebucket.s3.amazonaws.com",
		headers:       [][2]string{{"X-Amz-Content-Sha256", emptyHash}, {"X-Amz-Date", "20130524T000000Z"}},
		signedHeaders: "host;x-amz-content-sha256;x-amz-date",
		signature:     "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
	},
	{
		name: "S3 presigned GET", method: "GET", host: "examplebucket.s3.amazonaws.com",
		uri: "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
			"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
			"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
		now: exampleTime.Add(23 * time.Hour),
	},
	{
		name: "S3 streaming PUT seed", method: "PUT", uri: "/examplebucket/chunkObject.txt", host: "s3.amazonaws.com",
		headers: [][2]string{{"X-Amz-Date", "20130524T000000Z"}, {"X-Amz-Storage-Class", "REDUCED_REDUNDANCY"}, {"Content-Encoding", "aws-chunked"},
			{"X-Amz-Decoded-Content-Length", "66560"}, {"Content-Length", "66824"}, {"X-Amz-Content-Sha256", StreamingSignedPayload}},
		signedHeaders: "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
		signature:     "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		streaming:     true,
	},
	{
		name: "S3 streaming PUT with trailer seed", method: "PUT", uri: "/examplebucket/chunkObject.txt", host: "s3.amazonaws.com",
		headers: [][2]string{{"X-Amz-Date", "20130524T000000Z"}, {"X-Amz-Storage-Class", "REDUCED_REDUNDANCY"}, {"Content-Encoding", "aws-chunked"},
			{"X-Amz-Decoded-Content-Length", "66560"}, {"X-Amz-Trailer", "x-amz-checksum-crc32c"}, {"X-Amz-Content-Sha256", StreamingSignedPayloadTrailer}},
		signedHeaders: "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer",
		signature:     "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e",
		streaming:     true,
	},
	{
		// AWS SigV4 test suite, get-vanilla: a non-S3 service.
		name: "test suite get-vanilla", method: "GET", uri: "/", host: "example.amazonaws.com",
		headers:       [][2]string{{"X-Amz-Date", "20150830T123600Z"}},
		signedHeaders: "host;x-amz-date",
		signature:     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		now:           time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC),
	},
}

func (e exampleRequest) verify(r *http.Request) (*Result, error) {
	now := e.now
	if now.IsZero() {
		now = exampleTime
	}
	if e.streaming || e.signature == "" {
		return VerifyStreaming(r, exampleLookup, now)
	}
	return Verify(r, []byte(e.body), exampleLookup, now)
}

func TestVerifyAcceptsAWSPublishedExamples(t *testing.T) {
	for _, e := range publishedExamples {
		t.Run(e.name, func(t *testing.T) {
			res, err := e.verify(e.build(e.signature))
			if err != nil {
				var se *Error
				if errors.As(err, &se) && se.CanonicalRequest != "" {
					t.Logf("canonical request:\n%s\nstring to sign:\n%s", se.CanonicalRequest, se.StringToSign)
				}
				t.Fatalf("Verify: %v", err)
			}
			if res.AccessKeyID == "" || res.Region != "us-east-1" {
				t.Errorf("result %+v lacks the credential scope", res)
			}
		})
	}
}

func TestVerifyRejectsTamperedExamples(t *testing.T) {
	for _, e := range publishedExamples {
		t.Run(e.name, func(t *testing.T) {
			var r *http.Request
			if e.signature == "" {
				// Change the object name the presigned URL was issued for.
				tampered := e
				tampered.uri = strings.Replace(e.uri, "/test.txt", "/other.txt", 1)
				r = tampered.build("")
			} else {
				r = e.build(e.signature)
				r.Header.Set("X-Amz-Date", r.Header.Get("X-Amz-Date")[:13]+"01Z") // one second later
			}
			_, err := e.verify(r)
			if !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("tampered request: got %v, want a signature mismatch", err)
			}
		})
	}
}

func TestVerifyFailures(t *testing.T) {
	get := publishedExamples[0]
	put := publishedExamples[1]
	presigned := publishedExamples[4]
	cases := []struct {
		name   string
		req    func() *http.Request
		body   string
		now    time.Time
		want   error
		detail string
	}{
		{name: "no authorization at all", req: func() *http.Request { return httptest.NewRequest("GET", "/test.txt", nil) }, want: ErrMissing},
		{name: "unknown access key", req: func() *http.Request {
			r := get.build(get.signature)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), exampleAKID, "AKIAUNKNOWNKEY000000", 1))
			return r
		}, want: ErrUnknownAccessKey},
		{name: "signed with another secret", req: func() *http.Request {
			return get.build("0000000000000000000000000000000000000000000000000000000000000000")
		}, want: ErrSignatureMismatch},
		{name: "clock 16 minutes behind the request", req: func() *http.Request { return get.build(get.signature) },
			now: exampleTime.Add(-16 * time.Minute), want: ErrSkewed},
		{name: "request 16 minutes old", req: func() *http.Request { return get.build(get.signature) },
			now: exampleTime.Add(16 * time.Minute), want: ErrSkewed},
		{name: "request 14 minutes old is fine", req: func() *http.Request { return get.build(get.signature) },
			now: exampleTime.Add(14 * time.Minute)},
		{name: "SigV2 header", req: func() *http.Request {
			r := get.build(get.signature)
			r.Header.Set("Authorization", "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=")
			return r
		}, want: ErrMalformed, detail: "unsupported authorization type"},
		{name: "no X-Amz-Date", req: func() *http.Request {
			r := get.build(get.signature)
			r.Header.Del("X-Amz-Date")
			return r
		}, want: ErrMalformed, detail: "X-Amz-Date"},
		{name: "credential date differs from X-Amz-Date", req: func() *http.Request {
			r := get.build(get.signature)
			r.Header.Set("X-Amz-Date", "20130525T000000Z")
			return r
		}, now: exampleTime.Add(24 * time.Hour), want: ErrMalformed, detail: "does not match"},
		{name: "signed header missing from the request", req: func() *http.Request {
			r := get.build(get.signature)
			r.Header.Del("Range")
			return r
		}, want: ErrMalformed, detail: "range"},
		{name: "body differs from its declared hash", req: func() *http.Request { return put.build(put.signature) },
			body: "Welcome to Amazon S4.", want: ErrPayloadHashMismatch},
		{name: "x-amz-content-sha256 garbage", req: func() *http.Request {
			r := get.build(get.signature)
			r.Header.Set("X-Amz-Content-Sha256", "not-a-hash")
			return r
		}, want: ErrInvalidPayloadHash},
		{name: "presigned URL after its expiry", req: func() *http.Request { return presigned.build("") },
			now: exampleTime.Add(24*time.Hour + time.Second), want: ErrExpired},
		{name: "presigned URL from the future", req: func() *http.Request { return presigned.build("") },
			now: exampleTime.Add(-time.Hour), want: ErrSkewed},
		{name: "presigned URL with an expiry over a week", req: func() *http.Request {
			e := presigned
			e.uri = strings.Replace(e.uri, "X-Amz-Expires=86400", "X-Amz-Expires=604801", 1)
			return e.build("")
		}, want: ErrMalformed},
		{name: "presigned URL without signature", req: func() *http.Request {
			e := presigned
			e.uri = e.uri[:strings.Index(e.uri, "&X-Amz-Signature")]
			return e.build("")
		}, want: ErrMalformed, detail: "X-Amz-Signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := c.now
			if now.IsZero() {
				now = exampleTime
			}
			_, err := Verify(c.req(), []byte(c.body), exampleLookup, now)
			if c.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.detail != "" && !strings.Contains(err.Error(), c.detail) {
				t.Errorf("error %q does not mention %q", err, c.detail)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	const sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	good := "AWS4-HMAC-SHA256 Credential=AKID/20130524/eu-west-1/sagemaker/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + sig
	a, err := ParseAuthorization(good)
	if err != nil {
		t.Fatalf("ParseAuthorization(good): %v", err)
	}
	if a.AccessKeyID != "AKID" || a.Date != "20130524" || a.Region != "eu-west-1" || a.Service != "sagemaker" ||
		strings.Join(a.SignedHeaders, ";") != "content-type;host;x-amz-date;x-amz-target" || a.Signature != sig {
		t.Errorf("parsed %+v", a)
	}
	// botocore writes no spaces after the commas.
	if _, err := ParseAuthorization(strings.ReplaceAll(good, ", ", ",")); err != nil {
		t.Errorf("without spaces: %v", err)
	}
	bad := map[string]string{
		"empty":                 "",
		"algorithm only":        "AWS4-HMAC-SHA256",
		"other algorithm":       "AWS4-ECDSA-P256-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig,
		"no signature":          "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
		"short signature":       "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abc",
		"upper-case signature":  "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.ToUpper(sig),
		"credential short":      "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3, SignedHeaders=host, Signature=" + sig,
		"bad terminator":        "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws5_request, SignedHeaders=host, Signature=" + sig,
		"bad date":              "AWS4-HMAC-SHA256 Credential=AKID/2013-05-24/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig,
		"host not signed":       "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date, Signature=" + sig,
		"upper-case header":     "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=Host, Signature=" + sig,
		"unknown component":     "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + sig + ", Extra=1",
		"component without '='": "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws4_request, SignedHeaders",
	}
	for name, v := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseAuthorization(v); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseAuthorization(%q) = %v, want ErrMalformed", v, err)
			}
		})
	}
}

func TestCanonicalQuery(t *testing.T) {
	cases := map[string]string{
		"":                                 "",
		"lifecycle":                        "lifecycle=",
		"prefix=J&max-keys=2":              "max-keys=2&prefix=J",
		"a=2&a=1":                          "a=1&a=2",
		"k=a%20b&k2=x+y":                   "k=a%20b&k2=x%2By",
		"key=%E2%82%AC&x-id=PutObject":     "key=%E2%82%AC&x-id=PutObject",
		"list-type=2&prefix=a%2Fb&&":       "list-type=2&prefix=a%2Fb",
		"X-Amz-Signature=abc&X-Amz-Date=1": "X-Amz-Date=1",
	}
	for in, want := range cases {
		if got := canonicalQuery(in, true); got != want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

// The SigV2 query-string example of AWS's S3 documentation ("Query string request authentication
// alternative"), addressed path-style.
func TestVerifyPresignedV2(t *testing.T) {
	const uri = "/johnsmith/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620"
	before := time.Unix(1175139620, 0).Add(-time.Minute)
	for _, c := range []struct {
		name string
		uri  string
		now  time.Time
		want error
	}{
		{"documented URL", uri, before, nil},
		{"other object", strings.Replace(uri, "puppy", "kitten", 1), before, ErrSignatureMismatch},
		{"expiry moved", strings.Replace(uri, "1175139620", "1175139999", 1), before, ErrSignatureMismatch},
		{"after expiry", uri, time.Unix(1175139621, 0), ErrExpired},
		{"unknown key", strings.Replace(uri, exampleAKID, "AKIAOTHER", 1), before, ErrUnknownAccessKey},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.uri, nil)
			r.Host = "s3.amazonaws.com"
			res, err := VerifyStreaming(r, exampleLookup, c.now)
			if c.want == nil {
				if err != nil || res.AccessKeyID != exampleAKID || res.PayloadHash != UnsignedPayload {
					t.Fatalf("got %+v, %v", res, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}
