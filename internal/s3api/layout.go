package s3api

// The on-disk layout. Everything lives under the root directory given to New:
//
//	<root>/<bucket>/...          object data, one regular file per object (see keyPath)
//	<root>/.meta/<bucket>/...    one JSON sidecar per object, at the same relative path as its data
//	<root>/.buckets/<bucket>     bucket record (creation time)
//	<root>/.uploads/<id>/        multipart uploads in progress: upload.json and one file per part
//	<root>/.tmp/                 temporary files, renamed into place once complete and fsynced
//
// Bucket names never start with a dot, so the hidden directories can never be taken for buckets.
//
// A key is split at "/" into segments. Every segment but the last becomes a directory named
// escape(segment)+"%2F"; the last becomes a file named escape(segment), or "%" when it is empty
// (keys that end in "/"). escape percent-encodes '%', '/', control bytes and a leading '.', so
// escape never produces "%2F" or a lone "%" and never the names "." or "..": files and
// directories cannot collide, "a" and "a/b" are both storable, "a//b", "a/" and "/a" are
// ordinary keys, and no key can name a path outside its bucket's directory. Example: the key
// "data/train v1.csv" is stored at <root>/<bucket>/data%2F/train v1.csv.
//
// The one limit this adds to S3's: every escaped segment must fit in a file name (255 bytes).

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

const (
	dirSuffix   = "%2F" // marks a directory that holds the keys under "<segment>/"
	emptyLeaf   = "%"   // the file name of an empty last segment (a key ending in "/")
	maxNameLen  = 255   // NAME_MAX on the filesystems Lathe runs on
	maxKeyBytes = 1024  // S3's limit on a key's UTF-8 length
)

var errBadName = errors.New("not an escaped key segment")

// escape turns one key segment into a file name (see the layout above).
func escape(seg string) string {
	if seg == "" {
		return ""
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' || c == '/' || c < 0x20 || c == 0x7f || (i == 0 && c == '.') {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unescape inverts escape; it refuses names that escape could not have produced.
func unescape(name string) (string, error) {
	if !strings.Contains(name, "%") {
		if strings.HasPrefix(name, ".") {
			return "", errBadName
		}
		return name, nil
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(name) {
			return "", errBadName
		}
		hi, ok1 := unhex(name[i+1])
		lo, ok2 := unhex(name[i+2])
		if !ok1 || !ok2 {
			return "", errBadName
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// keyRelPath maps a key to its path relative to the bucket directory.
func keyRelPath(key string) (string, error) {
	if key == "" {
		return "", errInvalidKey
	}
	if len(key) > maxKeyBytes {
		return "", errKeyTooLong
	}
	segs := strings.Split(key, "/")
	parts := make([]string, len(segs))
	for i, s := range segs {
		name := escape(s)
		if i < len(segs)-1 {
			name += dirSuffix
		} else if name == "" {
			name = emptyLeaf
		}
		if len(name) > maxNameLen {
			return "", errKeyTooLong
		}
		parts[i] = name
	}
	return filepath.Join(parts...), nil
}

// dirPrefix maps the complete segments of a key prefix ("a/b/" of "a/b/c") to the directory,
// relative to the bucket, that holds every key starting with that prefix, and returns the key
// prefix that directory stands for.
func dirPrefix(prefix string) (rel, keyPrefix string, ok bool) {
	i := strings.LastIndex(prefix, "/")
	if i < 0 {
		return "", "", true
	}
	keyPrefix = prefix[:i+1]
	segs := strings.Split(prefix[:i], "/")
	parts := make([]string, len(segs))
	for j, s := range segs {
		parts[j] = escape(s) + dirSuffix
		if len(parts[j]) > maxNameLen {
			return "", "", false
		}
	}
	return filepath.Join(parts...), keyPrefix, true
}

// leafKey decodes a file name found in the data tree into its key segment.
func leafKey(name string) (string, bool) {
	if name == emptyLeaf {
		return "", true
	}
	if strings.HasSuffix(name, dirSuffix) {
		return "", false
	}
	s, err := unescape(name)
	if err != nil || s == "" || escape(s) != name {
		return "", false
	}
	return s, true
}

// dirKey decodes a directory name found in the data tree into its key segment.
func dirKey(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, dirSuffix)
	if !ok {
		return "", false
	}
	s, err := unescape(base)
	if err != nil || escape(s) != base {
		return "", false
	}
	return s, true
}

// keyTextProblem says why key cannot be an object key, or returns "" when it can. S3 keys are
// UTF-8 text, and a key must come back unchanged in a listing, whose XML 1.0 text can carry
// tab, LF and CR but no other C0 control (NUL included) and neither U+FFFE nor U+FFFF: Go's
// encoder would write them as U+FFFD and the listed key could then be neither read nor
// deleted. (S3 itself stores the C0 controls but lists them as character references that
// XML parsers refuse; refusing them at the door is the one behaviour every client can use.)
func keyTextProblem(key string) string {
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRuneInString(key[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Sprintf("the object key is not valid UTF-8 (byte 0x%02X at offset %d)", key[i], i)
		case r == 0:
			return fmt.Sprintf("the object key contains NUL (at offset %d)", i)
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0xFFFE, r == 0xFFFF:
			return fmt.Sprintf("the object key contains %U (at offset %d), which an XML listing cannot carry", r, i)
		}
		i += size
	}
	return ""
}
