package s3api

import (
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

// lathe has one account; its canonical user is fixed.
var theOwner = owner{ID: "lathe", DisplayName: "lathe"}

type listAllMyBucketsResult struct {
	XMLName xml.Name `xml:"ListAllMyBucketsResult"`
	Xmlns   string   `xml:"xmlns,attr"`
	Owner   owner    `xml:"Owner"`
	Buckets []struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	} `xml:"Buckets>Bucket"`
}

func (h *handler) listBuckets(w http.ResponseWriter) error {
	buckets, err := h.st.listBuckets()
	if err != nil {
		return err
	}
	res := listAllMyBucketsResult{Xmlns: xmlns, Owner: theOwner}
	for _, b := range buckets {
		res.Buckets = append(res.Buckets, struct {
			Name         string `xml:"Name"`
			CreationDate string `xml:"CreationDate"`
		}{b.Name, isoTime(b.Created)})
	}
	return writeXML(w, res)
}

func (h *handler) createBucket(w http.ResponseWriter, r *http.Request, bucket string) error {
	// The body, when present, is a CreateBucketConfiguration; any location is accepted since
	// all buckets live in this one directory.
	if r.ContentLength != 0 {
		var cfg struct {
			XMLName xml.Name `xml:"CreateBucketConfiguration"`
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return asClientError(err)
		}
		if len(strings.TrimSpace(string(data))) > 0 && xml.Unmarshal(data, &cfg) != nil {
			return errMalformedXML
		}
	}
	if err := h.st.createBucket(bucket); err != nil {
		return err
	}
	w.Header().Set("Location", "/"+bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) headBucket(w http.ResponseWriter, bucket string) error {
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *handler) deleteBucket(w http.ResponseWriter, bucket string) error {
	if err := h.st.deleteBucket(bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) getBucketLocation(w http.ResponseWriter, bucket string) error {
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	// us-east-1 is reported as an empty constraint, as S3 does.
	return writeXML(w, struct {
		XMLName xml.Name `xml:"LocationConstraint"`
		Xmlns   string   `xml:"xmlns,attr"`
	}{Xmlns: xmlns})
}

func (h *handler) getBucketVersioning(w http.ResponseWriter, bucket string) error {
	if err := h.st.requireBucket(bucket); err != nil {
		return err
	}
	// Versioning was never enabled: S3 answers with an empty configuration.
	return writeXML(w, struct {
		XMLName xml.Name `xml:"VersioningConfiguration"`
		Xmlns   string   `xml:"xmlns,attr"`
	}{Xmlns: xmlns})
}

// listing

type listEntry struct {
	Key          string `xml:"Key"`
	LastModified string `xml:"LastModified"`
	ETag         string `xml:"ETag"`
	Size         int64  `xml:"Size"`
	Owner        *owner `xml:"Owner,omitempty"`
	StorageClass string `xml:"StorageClass"`
}

type commonPrefix struct {
	Prefix string `xml:"Prefix"`
}

// page is one page of a listing: keys and the common prefixes that roll up the rest.
type page struct {
	keys      []string
	prefixes  []string
	truncated bool
	last      string // the last key or prefix returned, where the next page starts
}

// listPage selects up to maxKeys keys and common prefixes of sorted keys that start with
// prefix and come after marker. When marker is itself a common prefix (it ends with the
// delimiter), every key under it was rolled up into it and is skipped.
func listPage(keys []string, prefix, delimiter, marker string, maxKeys int) page {
	var p page
	markerIsPrefix := delimiter != "" && marker != "" && strings.HasPrefix(marker, prefix) &&
		strings.HasSuffix(marker[len(prefix):], delimiter)
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || (marker != "" && k <= marker) ||
			(markerIsPrefix && strings.HasPrefix(k, marker)) {
			continue
		}
		item, isPrefix := k, false
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				item, isPrefix = k[:len(prefix)+i+len(delimiter)], true
				if n := len(p.prefixes); n > 0 && p.prefixes[n-1] == item {
					continue
				}
			}
		}
		if len(p.keys)+len(p.prefixes) >= maxKeys {
			// With max-keys=0 S3 answers an empty, untruncated page.
			p.truncated = maxKeys > 0
			break
		}
		if isPrefix {
			p.prefixes = append(p.prefixes, item)
		} else {
			p.keys = append(p.keys, item)
		}
		p.last = item
	}
	return p
}

// parseMaxKeys reads max-keys (default and ceiling 1000).
func parseMaxKeys(v string) (int, error) {
	if v == "" {
		return 1000, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, invalidArgument("Provided max-keys not an integer or within integer range")
	}
	return min(n, 1000), nil
}

// encoder applies encoding-type=url to the keys and prefixes of a listing.
func encoder(q url.Values) (func(string) string, string, error) {
	switch et := q.Get("encoding-type"); et {
	case "":
		return func(s string) string { return s }, "", nil
	case "url":
		return func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/") }, et, nil
	default:
		return nil, "", invalidArgument("Invalid Encoding Method specified in Request")
	}
}

func (h *handler) entries(bucket string, keys []string, enc func(string) string, withOwner bool) ([]listEntry, error) {
	out := make([]listEntry, 0, len(keys))
	for _, k := range keys {
		m, err := h.st.statObject(bucket, k)
		if err == errNoSuchKey {
			continue // deleted since the listing was read
		}
		if err != nil {
			return nil, err
		}
		e := listEntry{Key: enc(k), LastModified: isoTime(m.Modified), ETag: quote(m.ETag), Size: m.Size, StorageClass: "STANDARD"}
		if withOwner {
			o := theOwner
			e.Owner = &o
		}
		out = append(out, e)
	}
	return out, nil
}

type listBucketV2Result struct {
	XMLName               xml.Name       `xml:"ListBucketResult"`
	Xmlns                 string         `xml:"xmlns,attr"`
	Name                  string         `xml:"Name"`
	Prefix                string         `xml:"Prefix"`
	Delimiter             string         `xml:"Delimiter,omitempty"`
	MaxKeys               int            `xml:"MaxKeys"`
	EncodingType          string         `xml:"EncodingType,omitempty"`
	KeyCount              int            `xml:"KeyCount"`
	IsTruncated           bool           `xml:"IsTruncated"`
	ContinuationToken     string         `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string         `xml:"NextContinuationToken,omitempty"`
	StartAfter            string         `xml:"StartAfter,omitempty"`
	Contents              []listEntry    `xml:"Contents"`
	CommonPrefixes        []commonPrefix `xml:"CommonPrefixes"`
}

func (h *handler) listObjectsV2(w http.ResponseWriter, bucket string, q url.Values) error {
	maxKeys, err := parseMaxKeys(q.Get("max-keys"))
	if err != nil {
		return err
	}
	enc, encType, err := encoder(q)
	if err != nil {
		return err
	}
	prefix, delimiter, startAfter := q.Get("prefix"), q.Get("delimiter"), q.Get("start-after")
	marker := startAfter
	token := q.Get("continuation-token")
	if q.Has("continuation-token") {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || token == "" {
			return invalidArgument("The continuation token provided is incorrect")
		}
		marker = max(string(raw), startAfter)
	}
	keys, err := h.st.listKeys(bucket, prefix)
	if err != nil {
		return err
	}
	p := listPage(keys, prefix, delimiter, marker, maxKeys)
	res := listBucketV2Result{Xmlns: xmlns, Name: bucket, Prefix: enc(prefix), Delimiter: enc(delimiter),
		MaxKeys: maxKeys, EncodingType: encType, IsTruncated: p.truncated, ContinuationToken: token,
		StartAfter: enc(startAfter)}
	if res.Contents, err = h.entries(bucket, p.keys, enc, q.Get("fetch-owner") == "true"); err != nil {
		return err
	}
	for _, cp := range p.prefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{enc(cp)})
	}
	res.KeyCount = len(res.Contents) + len(res.CommonPrefixes)
	if p.truncated {
		res.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(p.last))
	}
	return writeXML(w, res)
}

type listBucketV1Result struct {
	XMLName        xml.Name       `xml:"ListBucketResult"`
	Xmlns          string         `xml:"xmlns,attr"`
	Name           string         `xml:"Name"`
	Prefix         string         `xml:"Prefix"`
	Marker         string         `xml:"Marker"`
	NextMarker     string         `xml:"NextMarker,omitempty"`
	Delimiter      string         `xml:"Delimiter,omitempty"`
	MaxKeys        int            `xml:"MaxKeys"`
	EncodingType   string         `xml:"EncodingType,omitempty"`
	IsTruncated    bool           `xml:"IsTruncated"`
	Contents       []listEntry    `xml:"Contents"`
	CommonPrefixes []commonPrefix `xml:"CommonPrefixes"`
}

func (h *handler) listObjectsV1(w http.ResponseWriter, bucket string, q url.Values) error {
	maxKeys, err := parseMaxKeys(q.Get("max-keys"))
	if err != nil {
		return err
	}
	enc, encType, err := encoder(q)
	if err != nil {
		return err
	}
	prefix, delimiter, marker := q.Get("prefix"), q.Get("delimiter"), q.Get("marker")
	keys, err := h.st.listKeys(bucket, prefix)
	if err != nil {
		return err
	}
	p := listPage(keys, prefix, delimiter, marker, maxKeys)
	res := listBucketV1Result{Xmlns: xmlns, Name: bucket, Prefix: enc(prefix), Marker: enc(marker),
		Delimiter: enc(delimiter), MaxKeys: maxKeys, EncodingType: encType, IsTruncated: p.truncated}
	if res.Contents, err = h.entries(bucket, p.keys, enc, true); err != nil {
		return err
	}
	for _, cp := range p.prefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, commonPrefix{enc(cp)})
	}
	// S3 sends NextMarker only with a delimiter; without one clients continue from the last key.
	if p.truncated && delimiter != "" {
		res.NextMarker = enc(p.last)
	}
	return writeXML(w, res)
}
