package automl

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// TestRequestCache checks that a cached decode is the document's own decoding, that documents
// differing in one member (a job created again with another request) never share an entry, and
// that the cache stays within its bound.
func TestRequestCache(t *testing.T) {
	doc := func(role string) []byte {
		return fmt.Appendf(nil, `{"AutoMLJobName":"j","AutoMLProblemTypeConfig":{"TextGenerationJobConfig":`+
			`{"BaseModelName":"Llama2-7B","TextGenerationHyperParameters":{"epochCount":"3"}}},"RoleArn":%q}`, role)
	}
	var c requestCache
	for _, role := range []string{"arn:aws:iam::123456789012:role/a", "arn:aws:iam::123456789012:role/b"} {
		var want createRequest
		if err := json.Unmarshal(doc(role), &want); err != nil {
			t.Fatal(err)
		}
		for _, pass := range []string{"miss", "hit"} {
			got, err := c.decode(doc(role))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, want) {
				t.Fatalf("%s %s: decoded %+v, want %+v", role, pass, *got, want)
			}
		}
	}
	if _, err := c.decode([]byte(`{"RoleArn":7}`)); err == nil {
		t.Fatal("a document that does not decode: no error")
	}
	for i := range maxCachedRequests + 10 {
		if _, err := c.decode(doc(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n != maxCachedRequests {
		t.Fatalf("cache holds %d entries after %d documents, want its bound %d", n, maxCachedRequests+12, maxCachedRequests)
	}
}
