package sigv4

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// canonicalHeaders renders "name:value\n" for every signed header, in the order of SignedHeaders
// (which SDKs sort; the string to sign uses the order the client gave, so a client that did not
// sort fails as it would on AWS).
func canonicalHeaders(r *http.Request, signed []string, trim func(string) string) (string, error) {
	var b strings.Builder
	for _, name := range signed {
		var values []string
		switch name {
		case "host":
			// Go's server moves Host out of the header map.
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			values = r.TransferEncoding
		default:
			values = r.Header.Values(name)
		}
		if len(values) == 0 {
			return "", malformed("signed header %q is not present in the request", name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trim(v))
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// The SigV4 rule for header values, "trim and collapse sequential spaces", is read two ways by
// the SDKs, and a signature is checked against both when they differ:
//
//   - trimAll, botocore's `' '.join(value.split())`: any whitespace (tab, NBSP, ...) separates;
//   - trimSpaces, the Go SDK's: runs of the space character are collapsed, then the ends are
//     trimmed of any Unicode whitespace, so a tab inside a value is signed as a tab but a vertical
//     tab or NBSP at either end is dropped.
func trimAll(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") && !strings.ContainsFunc(v, func(r rune) bool { return r != ' ' && unicode.IsSpace(r) }) {
		return v
	}
	return strings.Join(strings.Fields(v), " ")
}

func trimSpaces(v string) string {
	for strings.Contains(v, "  ") {
		v = strings.ReplaceAll(v, "  ", " ")
	}
	return strings.TrimSpace(v)
}

// canonicalPaths returns the canonical URI forms a client may have signed for this request.
//
// S3 clients sign the path exactly as they sent it (botocore quotes it once and signs that; the Go
// SDK signs the escaped path with URI escaping disabled), so the raw wire path comes first, then the
// strict RFC 3986 encoding of the decoded path for clients or proxies that escape differently.
// Every other service escapes the wire path a second time.
func canonicalPaths(r *http.Request, service string) []string {
	raw := wirePath(r)
	if service != "s3" {
		return []string{uriEncode(raw, false)}
	}
	paths := []string{raw}
	if decoded, err := url.PathUnescape(raw); err == nil {
		if strict := uriEncode(decoded, false); strict != raw {
			paths = append(paths, strict)
		}
	}
	return paths
}

// wirePath is the path as the client sent it, before Go's URL decoding.
func wirePath(r *http.Request) string {
	uri := r.RequestURI
	if uri == "" {
		return emptyToSlash(r.URL.EscapedPath())
	}
	if !strings.HasPrefix(uri, "/") {
		// absolute-form (a proxy request) or "*": let net/url find the path.
		if u, err := url.ParseRequestURI(uri); err == nil {
			return emptyToSlash(u.EscapedPath())
		}
		return emptyToSlash(r.URL.EscapedPath())
	}
	path, _, _ := strings.Cut(uri, "?")
	return path
}

func emptyToSlash(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// canonicalQuery sorts the query parameters by encoded name then value, each strictly encoded.
// A '+' stays a literal plus (SDKs send spaces as %20). For a presigned URL the signature itself
// is left out.
func canonicalQuery(rawQuery string, presigned bool) string {
	if rawQuery == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if dk, err := url.PathUnescape(k); err == nil {
			k = dk
		}
		if dv, err := url.PathUnescape(v); err == nil {
			v = dv
		}
		if presigned && k == querySignature {
			continue
		}
		pairs = append(pairs, pair{uriEncode(k, true), uriEncode(v, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// uriEncode percent-encodes every byte except the RFC 3986 unreserved characters (and '/' unless
// encodeSlash), with upper-case hex, as SigV4 specifies.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
