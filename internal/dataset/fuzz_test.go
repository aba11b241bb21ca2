package dataset

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// FuzzReadCSV: any bytes in a CSV channel end in examples or problems, never a panic or an
// error (the error is for I/O failures, and there is no I/O here); every problem names the file.
// Seeds cover the shapes the probe found: JSON in a CSV channel, UTF-16, unclosed quotes, gzip.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{
		"input,output\nq,a\n",
		"input,output\r\n\"q, with comma\",\"a \"\"quoted\"\"\nline\"\r\n",
		"\xef\xbb\xbfinput,output\nq,a\n\nq2,a2",
		"input,output\n\"never closed,a\n",
		"input,output\nq,a,extra\n",
		"Input,Output\nq,a\n",
		`{"input":"q","output":"a"}` + "\n",
		`[{"input":"q","output":"a"}]`,
		"\xff\xfei\x00n\x00",
		"input,output\nq,\xff\n",
		"\x1f\x8b\x08\x00\x00\x00\x00\x00",
		"PAR1",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, compression := range []string{"", CompressionNone, CompressionGzip} {
			examples, problems, err := ReadChannel("s3://b/train/", ContentTypeCSV, compression, []File{{Name: "train.csv", Data: data}})
			if err != nil {
				t.Fatalf("compression %q: error %v; content problems must be problems", compression, err)
			}
			if len(examples) == 0 && len(problems) == 0 {
				t.Fatalf("compression %q: no examples and no problem", compression)
			}
			checkReadResult(t, examples, problems, "train.csv")
		}
	})
}

// checkReadResult: every example is a usable row (valid, non-blank UTF-8 in both columns) of the
// file, and every problem names the file and says something.
func checkReadResult(t *testing.T, examples []Example, problems []Problem, file string) {
	t.Helper()
	for _, ex := range examples {
		if ex.File != file || ex.Row < 1 {
			t.Fatalf("example %+v does not name %s and a row", ex, file)
		}
		for _, v := range []string{ex.Input, ex.Output} {
			if !utf8.ValidString(v) || strings.TrimSpace(v) == "" {
				t.Fatalf("example %+v has an invalid or empty value", ex)
			}
		}
	}
	for _, p := range problems {
		if p.File != file || p.Message == "" {
			t.Fatalf("problem %+v does not name %s or says nothing", p, file)
		}
	}
	if len(problems) > 0 && Summarize(problems, 10) == "" {
		t.Fatal("problems summarize to nothing")
	}
}

// FuzzCSVRoundTrip: rows written by encoding/csv under the header input,output read back exactly
// (the values are the fuzzer's, made valid: UTF-8, not blank, and without the CR that RFC 4180
// turns into LF inside quotes).
func FuzzCSVRoundTrip(f *testing.F) {
	f.Add("q", "a", "second, with comma", "a \"quoted\"\nmulti-line", false)
	f.Add(" leading space", "trailing ", "\ttab", "ünïcødé ✓", true)
	f.Add("{\"json\": 1}", "[1]", "#", "=1+1", false)
	f.Fuzz(func(t *testing.T, in1, out1, in2, out2 string, crlf bool) {
		clean := func(s string) string {
			s = strings.ToValidUTF8(strings.ReplaceAll(s, "\r", ""), "?")
			if strings.TrimSpace(s) == "" {
				s = "x" + s
			}
			return s
		}
		rows := [][]string{{clean(in1), clean(out1)}, {clean(in2), clean(out2)}}
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.UseCRLF = crlf
		if err := w.WriteAll(append([][]string{{ColumnInput, ColumnOutput}}, rows...)); err != nil {
			t.Fatal(err)
		}
		for _, compression := range []string{"", CompressionNone} {
			got, problems, err := ReadAs("rt.csv", ContentTypeCSV, compression, buf.Bytes())
			if err != nil || len(problems) > 0 {
				t.Fatalf("CSV %q: err %v, problems %v", buf.Bytes(), err, problems)
			}
			want := []Example{{rows[0][0], rows[0][1], "rt.csv", 1}, {rows[1][0], rows[1][1], "rt.csv", 2}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("CSV %q read as %+v, want %+v", buf.Bytes(), got, want)
			}
		}
	})
}

// FuzzReadParquet: any bytes in a Parquet channel end in examples or problems, never a panic or
// an error, and reading allocates no more than parquetBudget. Seeds are files the package's own
// writer makes (good, with nulls, wrong types, extra columns), which the fuzzer then corrupts.
func FuzzReadParquet(f *testing.F) {
	type nullable struct {
		Input  *string `parquet:"input,optional"`
		Output string  `parquet:"output"`
	}
	type numberOutput struct {
		Input  string `parquet:"input"`
		Output int64  `parquet:"output"`
	}
	q := "q"
	for _, seed := range [][]byte{
		parquetSeed(f, []stringRow{{"q1", "a1"}, {"q2, with comma", "a2\nline"}}),
		parquetSeed(f, []nullable{{&q, "a"}, {nil, "b"}}),
		parquetSeed(f, []numberOutput{{"q", 1}}),
		parquetSeed(f, []stringRow{}),
	} {
		f.Add(seed)
	}
	f.Add([]byte("PAR1PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00\x04\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var examples []Example
		var problems []Problem
		var err error
		if n := allocated(func() {
			examples, problems, err = ReadChannel("s3://b/train/", ContentTypeParquet, "", []File{{Name: "train.parquet", Data: data}})
		}); n > parquetBudget(len(data)) {
			t.Fatalf("reading a %d-byte file allocated %d bytes", len(data), n)
		}
		if err != nil {
			t.Fatalf("error %v; content problems must be problems", err)
		}
		if len(examples) == 0 && len(problems) == 0 {
			t.Fatal("no examples and no problem")
		}
		checkReadResult(t, examples, problems, "train.parquet")
	})
}

// allocated returns the bytes fn allocates (a fuzz worker runs one input at a time, so the heap's
// running total around fn is fn's).
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// parquetBudget is what reading an n-byte Parquet file may allocate: generous (pages decompress,
// and parquet-go keeps buffers), but far below a size declared in the file and trusted, such as the
// 4 GB footer a 494-byte file once claimed (testdata/fuzz/FuzzReadParquet/footer-larger-than-file).
func parquetBudget(n int) uint64 { return 64<<20 + 1024*uint64(n) }

// FuzzParquetRoundTrip: rows written by the parquet-go writer (as the tests' writeParquet) read
// back exactly.
func FuzzParquetRoundTrip(f *testing.F) {
	f.Add("q", "a", "second, with comma", "a \"quoted\"\nmulti-line")
	f.Add("ünïcødé ✓", "\r\n", "x", "y")
	f.Fuzz(func(t *testing.T, in1, out1, in2, out2 string) {
		clean := func(s string) string {
			s = strings.ToValidUTF8(s, "?")
			if strings.TrimSpace(s) == "" {
				s = "x" + s
			}
			return s
		}
		rows := []stringRow{{clean(in1), clean(out1)}, {clean(in2), clean(out2)}}
		data := writeParquet(t, rows)
		got, problems, err := Read("rt.parquet", ContentTypeParquet, data)
		if err != nil || len(problems) > 0 {
			t.Fatalf("err %v, problems %v", err, problems)
		}
		want := []Example{{rows[0].Input, rows[0].Output, "rt.parquet", 1}, {rows[1].Input, rows[1].Output, "rt.parquet", 2}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, want %+v", got, want)
		}
	})
}

// parquetSeed is writeParquet for a fuzz target's seeds.
func parquetSeed[T any](f *testing.F, rows []T) []byte {
	f.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf)
	if _, err := w.Write(rows); err != nil {
		f.Fatal(err)
	}
	if err := w.Close(); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}
