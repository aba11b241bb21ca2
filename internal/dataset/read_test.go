package dataset

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// TestReadBadCSV: every bad CSV ends in problems whose summary names the file, where the problem
// is, and what to fix.
func TestReadBadCSV(t *testing.T) {
	cases := []struct {
		name string
		data string
		want []string // substrings of the summary
	}{
		{"wrong columns", "prompt,completion\na,b\n",
			[]string{`train.csv line 1: header: extra column "prompt"`, `no "input" column`, `no "output" column`, `found "prompt", "completion"`}},
		{"extra column", "input,output,id\na,b,1\n",
			[]string{`train.csv line 1: header: extra column "id"; the header must name exactly the columns input and output (found "input", "output", "id")`}},
		{"duplicate column", "input,input,output\na,b,c\n",
			[]string{`column "input" appears more than once`}},
		{"missing column", "input\na\n",
			[]string{`train.csv line 1: header: no "output" column; the header must name exactly the columns input and output (found "input")`}},
		{"wrong case", "Input,output\na,b\n",
			[]string{`column "Input" must be named "input" (column names are case-sensitive)`}},
		{"unnamed column", "input,output,\na,b,\n",
			[]string{`column 3 has no name`}},
		{"empty file", "",
			[]string{`train.csv: is empty: a CSV dataset needs the header row "input,output" and at least one data row`}},
		{"only blank lines", "\n\r\n  \n",
			[]string{`train.csv: is empty`}},
		{"header only", "input,output\n",
			[]string{`train.csv: has a header row but no data rows`}},
		{"bare quote", "input,output\na,b\nsay \"hi\",c\nd,e\n",
			[]string{`train.csv line 3: bare " in a non-quoted field: put the whole value in double quotes`}},
		{"unclosed quote", "input,output\na,b\n\"never closed,c\nd,e\n",
			[]string{`train.csv line 3: a quoted value starts here and is never closed`}},
		{"quote in quoted field", "input,output\n\"a\"x,b\n",
			[]string{`train.csv line 2: extraneous or missing " in a quoted field`}},
		{"wrong field count", "input,output\na,b\nc,d,e\n",
			[]string{`train.csv row 2: has 3 fields but the header has 2: put values that contain commas in double quotes`}},
		{"invalid UTF-8", "input,output\na,b\nc,caf\xe9\n",
			[]string{`train.csv row 2: column "output" is not valid UTF-8 (byte 0xE9 at byte 4 of the value): save the file as UTF-8`}},
		{"invalid UTF-8 in header", "input,out\xffput\na,b\n",
			[]string{`column 2's name is not valid UTF-8`}},
		{"empty values", "input,output\na,\n,b\n   ,c\n",
			[]string{`train.csv row 1: column "output" is empty`, `train.csv row 2: column "input" is empty`, `train.csv row 3: column "input" is empty`}},
		{"multi-line row locates by row and line", "input,output\n\"x\ny\",b\nc,\n",
			[]string{`train.csv row 2 (line 4): column "output" is empty`}},
		{"UTF-16", "\xff\xfei\x00n\x00",
			[]string{`train.csv: is UTF-16 encoded: save it as UTF-8`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, problems, err := Read("train.csv", ContentTypeCSV, []byte(c.data))
			if err != nil {
				t.Fatal(err)
			}
			if len(problems) == 0 {
				t.Fatalf("no problems reported for %q", c.data)
			}
			s := Summarize(problems, 10)
			for _, w := range c.want {
				if !strings.Contains(s, w) {
					t.Errorf("summary %q\nlacks %q", s, w)
				}
			}
		})
	}
}

func TestReadGoodCSV(t *testing.T) {
	want := []Example{
		{Input: "Hello, world", Output: "He said \"hi\"", File: "f.csv", Row: 1},
		{Input: "line one\nline two", Output: "ok", File: "f.csv", Row: 2},
		{Input: "naïve café ☕", Output: "  keep spaces ", File: "f.csv", Row: 3},
	}
	body := "\"Hello, world\",\"He said \"\"hi\"\"\"\n\"line one\nline two\",ok\nnaïve café ☕,  keep spaces \n"
	cases := []struct{ name, data string }{
		{"LF", "input,output\n" + body},
		{"CRLF", strings.ReplaceAll("input,output\n"+body, "\n", "\r\n")},
		{"BOM", "\xef\xbb\xbfinput,output\n" + body},
		{"no final newline", "input,output\n" + strings.TrimSuffix(body, "\n")},
		{"blank lines skipped", "input,output\n\n" + strings.Replace(body, "ok\n", "ok\n\n", 1) + "\n\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, problems, err := Read("f.csv", ContentTypeCSV, []byte(c.data))
			if err != nil || len(problems) > 0 {
				t.Fatalf("err %v, problems %v", err, problems)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
	t.Run("columns in any order, spaces around names", func(t *testing.T) {
		got, problems, _ := Read("f.csv", "", []byte(" output , input\nb,a\n"))
		if len(problems) > 0 || len(got) != 1 || got[0].Input != "a" || got[0].Output != "b" {
			t.Errorf("got %v, problems %v", got, problems)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte("input,output\na,b\n"))
		zw.Close()
		got, problems, _ := Read("f.csv.gz", ContentTypeCSV, buf.Bytes())
		if len(problems) > 0 || len(got) != 1 || got[0].Output != "b" {
			t.Errorf("got %v, problems %v", got, problems)
		}
	})
}

// A broken row does not hide the good rows and problems after it.
func TestReadCSVGoesOnAfterAProblem(t *testing.T) {
	data := "input,output\na,b\nsay \"hi\",c\nd,e\nf,\ng,h\n"
	got, problems, err := ReadCSV("t.csv", strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].Input != "g" || got[2].Row != 5 {
		t.Errorf("examples %v, want a, d and g (row 5)", got)
	}
	if len(problems) != 2 || problems[1].Row != 4 || problems[1].Column != "output" {
		t.Errorf("problems %+v, want the bare quote and row 4's empty output", problems)
	}
}

type stringRow struct {
	Input  string `parquet:"input"`
	Output string `parquet:"output"`
}

func writeParquet[T any](t *testing.T, rows []T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadParquet(t *testing.T) {
	t.Run("string columns", func(t *testing.T) {
		data := writeParquet(t, []stringRow{{"q1", "a1"}, {"q2, with comma", "a2\nline"}})
		got, problems, err := Read("d.parquet", ContentTypeParquet, data)
		if err != nil || len(problems) > 0 {
			t.Fatalf("err %v, problems %v", err, problems)
		}
		want := []Example{{"q1", "a1", "d.parquet", 1}, {"q2, with comma", "a2\nline", "d.parquet", 2}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
	t.Run("many rows across row groups", func(t *testing.T) {
		rows := make([]stringRow, 1000)
		for i := range rows {
			rows[i] = stringRow{fmt.Sprint("q", i), fmt.Sprint("a", i)}
		}
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[stringRow](&buf, parquet.MaxRowsPerRowGroup(300))
		w.Write(rows)
		w.Close()
		got, problems, _ := Read("d.parquet", "", buf.Bytes())
		if len(problems) > 0 || len(got) != 1000 || got[999].Input != "q999" || got[999].Row != 1000 {
			t.Errorf("read %d rows, problems %v", len(got), problems)
		}
	})

	type numberOutput struct {
		Input  string `parquet:"input"`
		Output int64  `parquet:"output"`
	}
	type nullable struct {
		Input  *string `parquet:"input,optional"`
		Output string  `parquet:"output"`
	}
	type extra struct {
		Input  string  `parquet:"input"`
		Output string  `parquet:"output"`
		Score  float64 `parquet:"score"`
	}
	type jsonOutput struct {
		Input  string `parquet:"input"`
		Output string `parquet:"output,json"`
	}
	type onlyInput struct {
		Input string `parquet:"input"`
	}
	type binary struct {
		Input  []byte `parquet:"input"`
		Output string `parquet:"output"`
	}
	q := "question"
	cases := []struct {
		name        string
		contentType string
		data        []byte
		want        []string
	}{
		{"number column", ContentTypeParquet, writeParquet(t, []numberOutput{{"q", 1}}),
			[]string{`d.parquet: column "output" has type INT64; both columns must be strings`}},
		{"JSON column", ContentTypeParquet, writeParquet(t, []jsonOutput{{"q", `{"a":1}`}}),
			[]string{`d.parquet: column "output" has type BYTE_ARRAY (JSON); both columns must be strings`}},
		{"null", ContentTypeParquet, writeParquet(t, []nullable{{&q, "a"}, {nil, "b"}}),
			[]string{`d.parquet row 2: column "input" is null`}},
		{"extra column", ContentTypeParquet, writeParquet(t, []extra{{"q", "a", 1}}),
			[]string{`d.parquet: extra column "score"; the file must have exactly the columns input and output (found "input", "output", "score")`}},
		{"missing column", ContentTypeParquet, writeParquet(t, []onlyInput{{"q"}}),
			[]string{`no "output" column`}},
		{"binary column with invalid UTF-8", ContentTypeParquet, writeParquet(t, []binary{{[]byte("ok"), "a"}, {[]byte{0xc3, 0x28}, "b"}}),
			[]string{`d.parquet row 2: column "input" is not valid UTF-8`}},
		{"no rows", ContentTypeParquet, writeParquet(t, []stringRow{}),
			[]string{`d.parquet: has no rows`}},
		{"CSV bytes declared Parquet", ContentTypeParquet, []byte("input,output\na,b\n"),
			[]string{`is not a Parquet file`, `set ContentType to text/csv;header=present`}},
		{"Parquet bytes declared CSV", ContentTypeCSV, writeParquet(t, []stringRow{{"q", "a"}}),
			[]string{`is a Parquet file`, `set ContentType to x-application/vnd.amazon+parquet`}},
		{"truncated file", ContentTypeParquet, []byte("PAR1garbage"),
			[]string{`d.parquet: is not a readable Parquet file`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, problems, err := Read("d.parquet", c.contentType, c.data)
			if err != nil {
				t.Fatal(err)
			}
			s := Summarize(problems, 5)
			for _, w := range c.want {
				if !strings.Contains(s, w) {
					t.Errorf("summary %q\nlacks %q", s, w)
				}
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	var ps []Problem
	for i := 1; i <= 15; i++ {
		ps = append(ps, Problem{File: "train.csv", Row: i, Column: "output", Message: `column "output" is empty`})
	}
	got := Summarize(ps, 3)
	want := `train.csv row 1: column "output" is empty; train.csv row 2: column "output" is empty; train.csv row 3: column "output" is empty; ... and 12 more problems`
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := Summarize(ps[:4], 3); !strings.HasSuffix(got, "; ... and 1 more problem") {
		t.Errorf("one more: %q", got)
	}
	if got := Summarize(nil, 3); got != "" {
		t.Errorf("no problems: %q", got)
	}

	long := strings.Repeat("é", 400) // 800 bytes per message
	var big []Problem
	for range 5 {
		big = append(big, Problem{File: "f.csv", Row: 1, Message: long})
	}
	got = Summarize(big, 5)
	if len(got) > MaxSummaryLen || !strings.HasSuffix(got, "; ... and 4 more problems") {
		t.Errorf("long summary is %d bytes, ends %q", len(got), got[max(0, len(got)-40):])
	}
	huge := []Problem{{File: "f.csv", Message: strings.Repeat("x", 5000)}, {File: "g.csv", Message: "y"}}
	if got := Summarize(huge, 2); len(got) > MaxSummaryLen || !strings.HasSuffix(got, "...; ... and 1 more problem") {
		t.Errorf("cut summary is %d bytes, ends %q", len(got), got[max(0, len(got)-40):])
	}
}

func TestReadChannel(t *testing.T) {
	files := []File{
		{Name: "train/", Data: nil}, // folder marker
		{Name: "train/a.csv", Data: []byte("input,output\na,b\n")},
		{Name: "train/b.parquet", Data: writeParquet(t, []stringRow{{"c", "d"}})},
	}
	got, problems, err := ReadChannel("s3://bucket/train/", "", CompressionNone, files)
	if err != nil || len(problems) > 0 {
		t.Fatalf("err %v, problems %v", err, problems)
	}
	want := []Example{{"a", "b", "train/a.csv", 1}, {"c", "d", "train/b.parquet", 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}

	for _, files := range [][]File{nil, {{Name: "train/"}}} {
		_, problems, _ := ReadChannel("s3://bucket/train/", ContentTypeCSV, CompressionNone, files)
		want := "s3://bucket/train/: there are no objects under this prefix: upload the dataset"
		if s := Summarize(problems, 3); !strings.HasPrefix(s, want) {
			t.Errorf("empty prefix: %q, want it to start with %q", s, want)
		}
	}
}
