// Package dataset reads the prompt/response datasets of a TextGeneration job, checks them row by
// row, splits them into training and validation sets, formats prompts and tokenizes them for
// training.
//
// The format is SageMaker Autopilot's: CSV (content type text/csv;header=present) or Parquet
// (x-application/vnd.amazon+parquet), with exactly two string columns named input (the prompt)
// and output (the response). Lathe's reading rules, where SageMaker's documentation is silent:
//
//   - Column names are case-sensitive, as in the SageMaker documentation ("Input" is reported as
//     a problem that says to rename it); whitespace around a CSV header name is ignored.
//   - CSV follows RFC 4180: a header row, fields separated by commas, quoted fields may hold
//     commas, doubled quotes and line breaks; CRLF or LF line ends; UTF-8 with or without a byte
//     order mark. Blank lines are skipped. Values are kept exactly as written (not trimmed), but
//     a value that is empty or only whitespace is a problem.
//   - Parquet columns must be strings: BYTE_ARRAY with the STRING (UTF8) annotation, or plain
//     BYTE_ARRAY holding UTF-8. Nulls are problems.
//   - Compression follows the channel's CompressionType, checked against the bytes: with Gzip every
//     object must be gzip-compressed (CSV or Parquet inside); with None a gzip-compressed object is
//     a problem that says to set CompressionType to Gzip, rather than being decompressed silently,
//     so the request says what the data is. Without a CompressionType (local runs), gzip is
//     detected by its magic bytes.
//   - A JSON or JSON Lines file in a CSV channel is reported as such, not as a CSV syntax error.
//
// Everything wrong is collected as a Problem (file, row, line, column, message) rather than
// stopping at the first, so one FailureReason (see Summarize) can tell the user most of what to
// fix in one go.
package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Example is one prompt/response pair and where it came from.
type Example struct {
	Input  string `json:"input"`
	Output string `json:"output"`
	File   string `json:"file"`
	Row    int    `json:"row"` // 1-based data row in File
}

// Content types a TextGeneration channel may declare.
const (
	ContentTypeCSV     = "text/csv;header=present"
	ContentTypeParquet = "x-application/vnd.amazon+parquet"
)

// Column names the dataset must have.
const (
	ColumnInput  = "input"
	ColumnOutput = "output"
)

var parquetMagic = []byte("PAR1")

// Channel compression types (AutoMLJobChannel.CompressionType).
const (
	CompressionNone = "None"
	CompressionGzip = "Gzip"
)

// Read reads one dataset object. contentType is the channel's ContentType; "" means detect the
// format from the bytes. Gzip-compressed objects are decompressed first. The error is for I/O
// failures only; everything wrong with the content is returned as problems.
func Read(name, contentType string, data []byte) ([]Example, []Problem, error) {
	return ReadAs(name, contentType, "", data)
}

// ReadAs is Read for a channel whose CompressionType is compression (CompressionNone,
// CompressionGzip, or "" to detect gzip by its magic bytes).
func ReadAs(name, contentType, compression string, data []byte) ([]Example, []Problem, error) {
	gzipped := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
	switch {
	case compression == CompressionGzip && !gzipped:
		return nil, []Problem{{File: name, Message: "is not gzip-compressed, but the channel's CompressionType is Gzip: " +
			"upload gzip-compressed files (gzip train.csv) or set CompressionType to None"}}, nil
	case compression == CompressionNone && gzipped:
		return nil, []Problem{{File: name, Message: "is gzip-compressed, but the channel's CompressionType is None: " +
			"set CompressionType to Gzip or upload the file uncompressed"}}, nil
	}
	if gzipped {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, []Problem{{File: name, Message: fmt.Sprintf("looks gzip-compressed but cannot be decompressed: %v", err)}}, nil
		}
		plain, err := io.ReadAll(zr)
		if err != nil {
			return nil, []Problem{{File: name, Message: fmt.Sprintf("gzip data is corrupt: %v", err)}}, nil
		}
		data = plain
	}
	isParquet := bytes.HasPrefix(data, parquetMagic)
	wantParquet := strings.Contains(strings.ToLower(contentType), "parquet")
	switch {
	case contentType == "" && isParquet, wantParquet && isParquet:
		return ReadParquet(name, bytes.NewReader(data), int64(len(data)))
	case wantParquet:
		return nil, []Problem{{File: name, Message: "is not a Parquet file (it does not start with PAR1), but the channel's ContentType is " +
			ContentTypeParquet + ": upload Parquet files or set ContentType to " + ContentTypeCSV}}, nil
	case isParquet:
		return nil, []Problem{{File: name, Message: "is a Parquet file, but the channel's ContentType is " + contentType +
			": set ContentType to " + ContentTypeParquet}}, nil
	}
	return ReadCSV(name, bytes.NewReader(data))
}

// File is one object of a channel: its key (or name) and its bytes.
type File struct {
	Name string
	Data []byte
}

// ReadChannel reads every object under one channel's S3 prefix (uri, used in messages). Empty
// objects whose key ends in "/" are folder markers (the S3 console makes them) and are skipped;
// a prefix with no other object is a problem.
// compression is the channel's CompressionType (see ReadAs).
func ReadChannel(uri, contentType, compression string, files []File) ([]Example, []Problem, error) {
	var examples []Example
	var problems []Problem
	read := 0
	for _, f := range files {
		if strings.HasSuffix(f.Name, "/") && len(f.Data) == 0 {
			continue
		}
		read++
		ex, ps, err := ReadAs(f.Name, contentType, compression, f.Data)
		if err != nil {
			return nil, nil, err
		}
		examples = append(examples, ex...)
		problems = append(problems, ps...)
	}
	if read == 0 {
		problems = append(problems, Problem{File: uri, Message: "there are no objects under this prefix: upload the dataset (CSV or Parquet files with the columns input and output) there"})
	}
	return examples, problems, nil
}

// ReadCSV reads a CSV dataset file (see the package documentation for the rules).
func ReadCSV(name string, r io.Reader) ([]Example, []Problem, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	fileProblem := func(msg string) []Problem { return []Problem{{File: name, Message: msg}} }
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return nil, fileProblem("is UTF-16 encoded: save it as UTF-8"), nil
	}
	data = bytes.TrimPrefix(data, []byte{0xEF, 0xBB, 0xBF})
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fileProblem(`is empty: a CSV dataset needs the header row "input,output" and at least one data row`), nil
	}
	if kind := jsonKind(data); kind != "" {
		return nil, fileProblem(fmt.Sprintf(`is %s, not CSV: a CSV dataset starts with the header row "input,output"; `+
			`convert it to CSV (or Parquet) with the columns input and output`, kind)), nil
	}

	cr := csv.NewReader(bytes.NewReader(data))
	header, err := cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, []Problem{{File: name, Line: pe.Line, Message: "header row: " + csvSyntaxMessage(pe)}}, nil
		}
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	inCol, outCol, problems := checkHeader(name, header)
	if len(problems) > 0 {
		return nil, problems, nil
	}

	var examples []Example
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line := 0
		if len(rec) > 0 {
			line, _ = cr.FieldPos(0)
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return nil, nil, fmt.Errorf("read %s: %w", name, err)
			}
			if errors.Is(pe.Err, csv.ErrFieldCount) {
				problems = append(problems, Problem{File: name, Row: row, Line: line,
					Message: fmt.Sprintf("has %d fields but the header has %d: put values that contain commas in double quotes", len(rec), len(header))})
				continue
			}
			// A syntax error: the line is the useful locator (the row count may be off after it).
			// An unclosed quote runs to the end of the file, and the next Read returns io.EOF.
			at := pe.Line
			if errors.Is(pe.Err, csv.ErrQuote) {
				at = pe.StartLine
			}
			problems = append(problems, Problem{File: name, Line: at, Message: csvSyntaxMessage(pe)})
			continue
		}
		ex := Example{Input: rec[inCol], Output: rec[outCol], File: name, Row: row}
		bad := false
		for _, c := range []struct {
			name, value string
		}{{ColumnInput, ex.Input}, {ColumnOutput, ex.Output}} {
			if msg := checkValue(c.value); msg != "" {
				problems = append(problems, Problem{File: name, Row: row, Line: line, Column: c.name, Message: fmt.Sprintf("column %q %s", c.name, msg)})
				bad = true
			}
		}
		if !bad {
			examples = append(examples, ex)
		}
	}
	if len(examples) == 0 && len(problems) == 0 {
		problems = append(problems, Problem{File: name, Message: "has a header row but no data rows"})
	}
	return examples, problems, nil
}

// checkHeader finds the input and output columns. When the header is wrong it returns one
// problem that lists everything wrong with it.
func checkHeader(file string, header []string) (inCol, outCol int, problems []Problem) {
	inCol, outCol = -1, -1
	var issues []string
	seen := map[string]bool{}
	for i, raw := range header {
		name := strings.TrimSpace(raw)
		switch {
		case !utf8.ValidString(name):
			issues = append(issues, fmt.Sprintf("column %d's name is not valid UTF-8", i+1))
			continue
		case name == "":
			issues = append(issues, fmt.Sprintf("column %d has no name", i+1))
			continue
		case seen[name]:
			issues = append(issues, fmt.Sprintf("column %q appears more than once", name))
			continue
		}
		seen[name] = true
		switch {
		case name == ColumnInput:
			inCol = i
		case name == ColumnOutput:
			outCol = i
		default:
			issues = append(issues, nameIssue(name))
		}
	}
	issues = append(issues, missingColumns(seen)...)
	if len(issues) > 0 {
		problems = []Problem{{File: file, Line: 1, Message: fmt.Sprintf(
			"header: %s; the header must name exactly the columns input and output (found %s)",
			strings.Join(issues, ", "), quoteList(header))}}
	}
	return inCol, outCol, problems
}

// nameIssue describes a column name that is neither input nor output.
func nameIssue(name string) string {
	if strings.EqualFold(name, ColumnInput) || strings.EqualFold(name, ColumnOutput) {
		return fmt.Sprintf("column %q must be named %q (column names are case-sensitive)", name, strings.ToLower(name))
	}
	return fmt.Sprintf("extra column %q", name)
}

// missingColumns reports input and output when no column has that name in any case (a
// differently-cased one was already reported by nameIssue).
func missingColumns(seen map[string]bool) []string {
	var out []string
	for _, want := range []string{ColumnInput, ColumnOutput} {
		if !seenFold(seen, want) {
			out = append(out, fmt.Sprintf("no %q column", want))
		}
	}
	return out
}

func seenFold(seen map[string]bool, name string) bool {
	for k := range seen {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", strings.TrimSpace(n))
	}
	return strings.Join(q, ", ")
}

// checkValue returns what is wrong with one input or output value ("" when nothing is).
func checkValue(v string) string {
	if !utf8.ValidString(v) {
		off := 0
		for off < len(v) {
			r, size := utf8.DecodeRuneInString(v[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return fmt.Sprintf("is not valid UTF-8 (byte 0x%02X at byte %d of the value): save the file as UTF-8", v[off], off+1)
	}
	if strings.TrimSpace(v) == "" {
		return "is empty"
	}
	return ""
}

func csvSyntaxMessage(pe *csv.ParseError) string {
	switch {
	case errors.Is(pe.Err, csv.ErrQuote) && pe.StartLine != pe.Line:
		return `a quoted value starts here and is never closed: end it with a " and double each " inside it`
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return `bare " in a non-quoted field: put the whole value in double quotes, with no space before the opening quote, and double each " inside it ("say ""hi""")`
	case errors.Is(pe.Err, csv.ErrQuote):
		return `extraneous or missing " in a quoted field: a quoted value must end with a " and each " inside it must be doubled`
	}
	return pe.Err.Error()
}

// ReadParquet reads a Parquet dataset file (see the package documentation for the rules).
func ReadParquet(name string, r io.ReaderAt, size int64) (examples []Example, problems []Problem, err error) {
	// parquet-go reads untrusted bytes and can panic on a corrupt file (an index out of range in
	// its page index reader, found by FuzzReadParquet): that is a problem with the file, not a
	// crash of the job runner.
	defer func() {
		if p := recover(); p != nil {
			examples, err = nil, nil
			problems = []Problem{{File: name, Message: fmt.Sprintf("is not a readable Parquet file: it is corrupt (%v)", p)}}
		}
	}()
	// parquet-go allocates the footer length the file declares before reading it: a 500-byte
	// file claiming a 4 GB footer would take the server's memory. Check it against the size first.
	if msg := parquetFooterProblem(r, size); msg != "" {
		return nil, []Problem{{File: name, Message: "is not a readable Parquet file: " + msg}}, nil
	}
	// The page index and bloom filters are for filtered reads; a dataset is read whole.
	f, err := parquet.OpenFile(r, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, []Problem{{File: name, Message: fmt.Sprintf("is not a readable Parquet file: %v", err)}}, nil
	}
	if msg := parquetPagesProblem(r, size, f.Metadata()); msg != "" {
		return nil, []Problem{{File: name, Message: "is not a readable Parquet file: " + msg}}, nil
	}
	inCol, outCol := -1, -1
	var names, issues []string
	seen := map[string]bool{}
	for _, field := range f.Schema().Fields() {
		n := field.Name()
		names = append(names, n)
		if seen[n] {
			issues = append(issues, fmt.Sprintf("column %q appears more than once", n))
			continue
		}
		seen[n] = true
		if n != ColumnInput && n != ColumnOutput {
			issues = append(issues, nameIssue(n))
			continue
		}
		if msg := parquetTypeProblem(field); msg != "" {
			problems = append(problems, Problem{File: name, Column: n,
				Message: fmt.Sprintf("column %q %s; both columns must be strings", n, msg)})
			continue
		}
		leaf, _ := f.Schema().Lookup(n)
		if n == ColumnInput {
			inCol = leaf.ColumnIndex
		} else {
			outCol = leaf.ColumnIndex
		}
	}
	issues = append(issues, missingColumns(seen)...)
	if len(issues) > 0 {
		problems = append([]Problem{{File: name, Message: fmt.Sprintf(
			"%s; the file must have exactly the columns input and output (found %s)",
			strings.Join(issues, ", "), quoteList(names))}}, problems...)
	}
	if len(problems) > 0 {
		return nil, problems, nil
	}
	if f.NumRows() == 0 {
		return nil, []Problem{{File: name, Message: "has no rows"}}, nil
	}

	rowNum := 0
	buf := make([]parquet.Row, 256)
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				rowNum++
				ex := Example{File: name, Row: rowNum}
				got := map[int]bool{}
				for _, v := range row {
					if v.Column() != inCol && v.Column() != outCol {
						continue
					}
					got[v.Column()] = !v.IsNull()
					if v.IsNull() {
						continue
					}
					if v.Column() == inCol {
						ex.Input = string(v.ByteArray())
					} else {
						ex.Output = string(v.ByteArray())
					}
				}
				bad := false
				for _, c := range []struct {
					name  string
					col   int
					value string
				}{{ColumnInput, inCol, ex.Input}, {ColumnOutput, outCol, ex.Output}} {
					msg := checkValue(c.value)
					if !got[c.col] {
						msg = "is null"
					}
					if msg != "" {
						problems = append(problems, Problem{File: name, Row: rowNum, Column: c.name, Message: fmt.Sprintf("column %q %s", c.name, msg)})
						bad = true
					}
				}
				if !bad {
					examples = append(examples, ex)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rows.Close()
				return nil, append(problems, Problem{File: name, Row: rowNum + 1, Message: fmt.Sprintf("cannot be read: %v", err)}), nil
			}
		}
		rows.Close()
	}
	return examples, problems, nil
}

// parquetFooterProblem checks the file's tail (footer length, then "PAR1") against its size.
func parquetFooterProblem(r io.ReaderAt, size int64) string {
	const minSize = 4 + 4 + 4 // "PAR1", the footer length, "PAR1" (and a footer in between)
	if size < minSize {
		return fmt.Sprintf("it has %d bytes, too few for the Parquet header and footer", size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return fmt.Sprintf("reading its footer: %v", err)
	}
	if string(tail[4:]) != "PAR1" {
		return fmt.Sprintf("it does not end with PAR1 (it ends with %q): the file is truncated or not Parquet", tail[4:])
	}
	if n := int64(binary.LittleEndian.Uint32(tail[:4])); n > size-minSize {
		return fmt.Sprintf("its footer claims %d bytes, more than the %d-byte file holds: the file is truncated or corrupt", n, size)
	}
	return ""
}

// maxParquetPage bounds the uncompressed size of one page. parquet-go allocates the sizes a page
// header declares before reading the page: a 285-byte file declared a 76 MB page (found by
// FuzzReadParquet), and a page header can declare up to 2 GiB. Writers default to 1 MiB pages.
const maxParquetPage = 256 << 20

// parquetPagesProblem walks the page headers of every column chunk and checks the sizes they
// declare before parquet-go allocates them: each page's bytes lie inside its chunk, inside the
// file, and it does not claim to decompress to more than 1024 times its size (gzip's limit) or
// maxParquetPage.
func parquetPagesProblem(r io.ReaderAt, size int64, md *format.FileMetaData) string {
	for i, rg := range md.RowGroups {
		for j, cc := range rg.Columns {
			m := cc.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 0 || m.TotalCompressedSize < 0 || m.TotalCompressedSize > size || start > size-m.TotalCompressedSize {
				return fmt.Sprintf("row group %d, column %d: its data (%d bytes at %d) lies outside the %d-byte file", i+1, j+1, m.TotalCompressedSize, start, size)
			}
			chunk := make([]byte, m.TotalCompressedSize)
			if _, err := r.ReadAt(chunk, start); err != nil && !(errors.Is(err, io.EOF) && len(chunk) == 0) {
				return fmt.Sprintf("row group %d, column %d: %v", i+1, j+1, err)
			}
			for off := 0; off < len(chunk); {
				br := bytes.NewReader(chunk[off:])
				var h format.PageHeader
				if err := thrift.NewDecoder(new(thrift.CompactProtocol).NewReader(br)).Decode(&h); err != nil {
					return fmt.Sprintf("row group %d, column %d: page header at byte %d: %v", i+1, j+1, start+int64(off), err)
				}
				off += len(chunk[off:]) - br.Len()
				c, u := int64(h.CompressedPageSize), int64(h.UncompressedPageSize)
				switch {
				case c < 0 || c > int64(len(chunk)-off):
					return fmt.Sprintf("row group %d, column %d: a page at byte %d claims %d bytes, more than its column chunk holds", i+1, j+1, start+int64(off), c)
				case u < 0 || u > maxParquetPage || u > 1024*c+1<<16:
					return fmt.Sprintf("row group %d, column %d: a page of %d bytes at byte %d claims to decompress to %d bytes", i+1, j+1, c, start+int64(off), u)
				}
				off += int(c)
			}
		}
	}
	return ""
}

// parquetTypeProblem says what is wrong with a column's type, or "" for a string column.
func parquetTypeProblem(field parquet.Field) string {
	if !field.Leaf() {
		return "is a nested group, list or map"
	}
	if field.Repeated() {
		return "is a repeated (list) column"
	}
	t := field.Type()
	if t.Kind() != parquet.ByteArray {
		return "has type " + parquetTypeName(t)
	}
	lt := t.LogicalType()
	if lt == nil || lt.Value == nil {
		return "" // plain BYTE_ARRAY: its values are checked as UTF-8
	}
	if _, ok := lt.Value.(*format.StringType); ok {
		return ""
	}
	return "has type " + parquetTypeName(t)
}

func parquetTypeName(t parquet.Type) string {
	lt := t.LogicalType()
	if lt == nil || lt.Value == nil {
		return t.Kind().String()
	}
	if _, ok := lt.Value.(*format.IntType); ok {
		return t.Kind().String() // INT(64,true) says no more than INT64
	}
	return t.Kind().String() + " (" + lt.String() + ")"
}

// jsonKind says whether data is a JSON document ("JSON") or JSON Lines ("JSON Lines"), or neither
// (""). A CSV header never starts with '{' or '[', so only such data is parsed.
func jsonKind(data []byte) string {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return ""
	}
	if json.Valid(trimmed) {
		return "JSON"
	}
	first, _, _ := bytes.Cut(trimmed, []byte("\n"))
	if json.Valid(bytes.TrimSpace(first)) {
		return "JSON Lines"
	}
	return ""
}
