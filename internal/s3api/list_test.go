package s3api_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

var listKeys = []string{
	"a-1", "a.txt", "a/1", "a/2", "a/b/1", "a/b/2", "a/c/1", "b", "c/", "c/d", "data/train.csv", "data/valid.csv", "z z",
}

func fillList(t *testing.T) *testServer {
	s := startServer(t)
	s.mkBucket(t, "list")
	for _, k := range listKeys {
		s.put(t, "list", k, []byte("v:"+k))
	}
	return s
}

func TestListObjectsV2(t *testing.T) {
	s := fillList(t)
	ctx := context.Background()
	cases := []struct {
		name       string
		prefix     string
		delimiter  string
		startAfter string
		keys       []string
		prefixes   []string
	}{
		{name: "everything", keys: listKeys},
		{name: "prefix a/", prefix: "a/", keys: []string{"a/1", "a/2", "a/b/1", "a/b/2", "a/c/1"}},
		{name: "prefix a", prefix: "a", keys: []string{"a-1", "a.txt", "a/1", "a/2", "a/b/1", "a/b/2", "a/c/1"}},
		{name: "delimiter at the root", delimiter: "/", keys: []string{"a-1", "a.txt", "b", "z z"}, prefixes: []string{"a/", "c/", "data/"}},
		{name: "delimiter under a/", prefix: "a/", delimiter: "/", keys: []string{"a/1", "a/2"}, prefixes: []string{"a/b/", "a/c/"}},
		{name: "partial segment prefix", prefix: "data/t", keys: []string{"data/train.csv"}},
		{name: "prefix that is a key ending in /", prefix: "c/", delimiter: "/", keys: []string{"c/", "c/d"}},
		{name: "no match", prefix: "nothing/", keys: nil},
		{name: "start-after", startAfter: "a/c/1", keys: []string{"b", "c/", "c/d", "data/train.csv", "data/valid.csv", "z z"}},
		{name: "other delimiter", delimiter: ".", keys: []string{"a-1", "a/1", "a/2", "a/b/1", "a/b/2", "a/c/1", "b", "c/", "c/d", "z z"},
			prefixes: []string{"a.", "data/train.", "data/valid."}},
	}
	for _, c := range cases {
		// Each case is listed in one page and in pages of one and two entries; all must agree.
		for _, maxKeys := range []int32{1000, 1, 2} {
			var keys, prefixes []string
			in := &s3.ListObjectsV2Input{Bucket: aws.String("list"), Prefix: aws.String(c.prefix), MaxKeys: aws.Int32(maxKeys)}
			if c.delimiter != "" {
				in.Delimiter = aws.String(c.delimiter)
			}
			if c.startAfter != "" {
				in.StartAfter = aws.String(c.startAfter)
			}
			p := s3.NewListObjectsV2Paginator(s.client, in)
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if n := len(page.Contents) + len(page.CommonPrefixes); int32(n) > maxKeys || aws.ToInt32(page.KeyCount) != int32(n) {
					t.Errorf("%s: page of %d entries, KeyCount %d, max-keys %d", c.name, n, aws.ToInt32(page.KeyCount), maxKeys)
				}
				for _, o := range page.Contents {
					keys = append(keys, aws.ToString(o.Key))
					if aws.ToInt64(o.Size) != int64(len("v:"+aws.ToString(o.Key))) || aws.ToString(o.ETag) != `"`+md5hex([]byte("v:"+aws.ToString(o.Key)))+`"` {
						t.Errorf("%s: entry %s size %d etag %s", c.name, aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToString(o.ETag))
					}
				}
				for _, cp := range page.CommonPrefixes {
					prefixes = append(prefixes, aws.ToString(cp.Prefix))
				}
			}
			if !slices.Equal(keys, c.keys) || !slices.Equal(prefixes, c.prefixes) {
				t.Errorf("%s (max-keys %d):\n keys %q\n want %q\n prefixes %q\n want %q", c.name, maxKeys, keys, c.keys, prefixes, c.prefixes)
			}
		}
	}

	out, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), MaxKeys: aws.Int32(0)})
	if err != nil || len(out.Contents) != 0 || aws.ToBool(out.IsTruncated) {
		t.Errorf("max-keys 0: %v, %d entries, truncated %v", err, len(out.Contents), aws.ToBool(out.IsTruncated))
	}
	_, err = s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("list"), ContinuationToken: aws.String("not a token!")})
	if errCode(err) != "InvalidArgument" {
		t.Errorf("bad continuation token: got %v, want InvalidArgument", err)
	}
	_, err = s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nobucket")})
	if errCode(err) != "NoSuchBucket" {
		t.Errorf("listing a missing bucket: got %v, want NoSuchBucket", err)
	}
}

// rawGet sends an unsigned GET (the handler leaves authentication to the front door).
func rawGet(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestListEncodingTypeURL(t *testing.T) {
	s := startServer(t)
	s.mkBucket(t, "enc")
	s.put(t, "enc", "dir/a b+c&é", []byte("x"))
	status, body := rawGet(t, s.url+"/enc?list-type=2&encoding-type=url&delimiter=%2F&prefix=dir%2F")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	for _, want := range []string{"<EncodingType>url</EncodingType>", "<Key>dir/a+b%2Bc%26%C3%A9</Key>", "<Prefix>dir/</Prefix>"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s:\n%s", want, body)
		}
	}
	// The encoded key decodes back the way botocore decodes it (unquote_plus).
	dec, err := url.QueryUnescape("dir/a+b%2Bc%26%C3%A9")
	if err != nil || dec != "dir/a b+c&é" {
		t.Errorf("decoded %q, %v", dec, err)
	}
	status, body = rawGet(t, s.url+"/enc?list-type=2&encoding-type=base64")
	if status != 400 || !strings.Contains(body, "<Code>InvalidArgument</Code>") {
		t.Errorf("unknown encoding-type: %d %s", status, body)
	}
}

func TestListObjectsV1(t *testing.T) {
	s := fillList(t)
	ctx := context.Background()
	for _, delim := range []string{"", "/"} {
		var keys, prefixes []string
		marker := ""
		for range 100 {
			in := &s3.ListObjectsInput{Bucket: aws.String("list"), MaxKeys: aws.Int32(2), Marker: aws.String(marker)}
			if delim != "" {
				in.Delimiter = aws.String(delim)
			}
			out, err := s.client.ListObjects(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				keys = append(keys, aws.ToString(o.Key))
				if o.Owner == nil || aws.ToString(o.Owner.ID) == "" {
					t.Errorf("v1 entry %s without Owner", aws.ToString(o.Key))
				}
			}
			for _, cp := range out.CommonPrefixes {
				prefixes = append(prefixes, aws.ToString(cp.Prefix))
			}
			if !aws.ToBool(out.IsTruncated) {
				break
			}
			// Clients continue from NextMarker when given, else from the last key.
			if out.NextMarker != nil {
				marker = aws.ToString(out.NextMarker)
			} else {
				marker = keys[len(keys)-1]
			}
		}
		wantKeys, wantPrefixes := listKeys, []string(nil)
		if delim == "/" {
			wantKeys, wantPrefixes = []string{"a-1", "a.txt", "b", "z z"}, []string{"a/", "c/", "data/"}
		}
		if !slices.Equal(keys, wantKeys) || !slices.Equal(prefixes, wantPrefixes) {
			t.Errorf("v1 delimiter %q: keys %q prefixes %q", delim, keys, prefixes)
		}
	}
}
