package dataset

import (
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The channel's CompressionType is checked against the bytes: Gzip reads gzip-compressed CSV and
// Parquet, and refuses a file that is not compressed; None refuses a compressed file instead of
// decompressing it behind the request's back; without a CompressionType (a local run) gzip is
// detected. Each problem says which setting to change.
func TestReadChannelCompression(t *testing.T) {
	csvData := []byte("input,output\nq,a\n")
	parquetData := writeParquet(t, []stringRow{{"q", "a"}})
	cases := []struct {
		name, contentType, compression string
		data                           []byte
		problem                        string // "" when the file reads as one example
	}{
		{"gzip CSV, Gzip", ContentTypeCSV, CompressionGzip, gzipped(t, csvData), ""},
		{"gzip Parquet, Gzip", ContentTypeParquet, CompressionGzip, gzipped(t, parquetData), ""},
		{"plain CSV, None", ContentTypeCSV, CompressionNone, csvData, ""},
		{"gzip CSV, no CompressionType (local)", ContentTypeCSV, "", gzipped(t, csvData), ""},
		{"gzip CSV, None", ContentTypeCSV, CompressionNone, gzipped(t, csvData),
			"s3://b/train/d.csv.gz: is gzip-compressed, but the channel's CompressionType is None: set CompressionType to Gzip or upload the file uncompressed"},
		{"gzip Parquet, None", ContentTypeParquet, CompressionNone, gzipped(t, parquetData),
			"s3://b/train/d.csv.gz: is gzip-compressed, but the channel's CompressionType is None"},
		{"plain CSV, Gzip", ContentTypeCSV, CompressionGzip, csvData,
			"s3://b/train/d.csv.gz: is not gzip-compressed, but the channel's CompressionType is Gzip: upload gzip-compressed files (gzip train.csv) or set CompressionType to None"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, problems, err := ReadChannel("s3://b/train/", c.contentType, c.compression, []File{{Name: "s3://b/train/d.csv.gz", Data: c.data}})
			if err != nil {
				t.Fatal(err)
			}
			summary := Summarize(problems, 10)
			switch {
			case c.problem == "" && (len(problems) > 0 || len(got) != 1 || got[0].Output != "a"):
				t.Errorf("read %+v, problems %q; want one example", got, summary)
			case c.problem != "" && (len(got) > 0 || !strings.Contains(summary, c.problem)):
				t.Errorf("read %+v, problems %q; want a problem containing %q", got, summary, c.problem)
			}
		})
	}
}

// A JSON or JSON Lines file in a CSV channel is named as what it is, not reported as a CSV quoting
// error on its first line.
func TestJSONInACSVChannel(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"JSON array", `[{"input": "q", "output": "a"}, {"input": "q2", "output": "a2"}]`,
			`train.json: is JSON, not CSV: a CSV dataset starts with the header row "input,output"; convert it to CSV (or Parquet) with the columns input and output`},
		{"JSON Lines", "{\"input\": \"q\", \"output\": \"a\"}\n{\"input\": \"q2\", \"output\": \"a2\"}\n",
			`train.json: is JSON Lines, not CSV`},
		{"pretty-printed JSON object", "{\n  \"input\": \"q\",\n  \"output\": \"a\"\n}\n", `train.json: is JSON, not CSV`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, problems, err := Read("train.json", ContentTypeCSV, []byte(c.data))
			if err != nil {
				t.Fatal(err)
			}
			if s := Summarize(problems, 10); len(problems) != 1 || !strings.Contains(s, c.want) {
				t.Errorf("problems %q, want one containing %q", s, c.want)
			}
		})
	}
	// A CSV whose first value happens to start with a brace is still CSV.
	got, problems, _ := Read("t.csv", ContentTypeCSV, []byte("input,output\n{x},y\n"))
	if len(problems) > 0 || len(got) != 1 || got[0].Input != "{x}" {
		t.Errorf("CSV with braces: %+v, %+v", got, problems)
	}
}
