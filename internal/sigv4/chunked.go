package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/lathe-ml/lathe/internal/awserr"
)

// Errors a decoded body reports while it is read. They are *awserr.Error values (wrapped with the
// detail), so an S3 handler that fails on a body read can answer with awserr.As(err) directly, and
// errors.Is(err, sigv4.ErrContentSHA256Mismatch) works too.
var (
	ErrContentSHA256Mismatch = &awserr.Error{Code: "XAmzContentSHA256Mismatch", Status: http.StatusBadRequest,
		Message: "The provided 'x-amz-content-sha256' header does not match what was computed."}
	ErrChunkSignatureMismatch = &awserr.Error{Code: "SignatureDoesNotMatch", Status: http.StatusForbidden,
		Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	ErrMalformedChunkedBody = &awserr.Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
		Message: "The aws-chunked request body is malformed."}
	ErrIncompleteBody = &awserr.Error{Code: "IncompleteBody", Status: http.StatusBadRequest,
		Message: "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header."}
	ErrChunkTooLarge = &awserr.Error{Code: "InvalidRequest", Status: http.StatusBadRequest,
		Message: "An aws-chunked chunk is larger than this server accepts."}
)

const (
	// DefaultMaxChunkSize bounds the memory a signed chunk needs: its data must be held until its
	// signature is checked. SDKs send 64 KiB to 1 MiB chunks.
	DefaultMaxChunkSize = 16 << 20
	maxChunkLine        = 4096
	maxTrailerLines     = 32
	chunkAlgorithm      = "AWS4-HMAC-SHA256-PAYLOAD"
	trailerAlgorithm    = "AWS4-HMAC-SHA256-TRAILER"
	trailerSignatureKey = "x-amz-trailer-signature"
)

// ChunkedOptions configures NewChunkedReader.
type ChunkedOptions struct {
	// PayloadHash is the request's X-Amz-Content-Sha256, one of the STREAMING-* values.
	PayloadHash string
	// Seed is the verified request; its signature seeds the chunk signature chain. Required for
	// the signed modes, ignored for STREAMING-UNSIGNED-PAYLOAD-TRAILER.
	Seed *Result
	// Trailers are the names the request declared in x-amz-trailer; each must arrive, and no other.
	Trailers []string
	// DecodedLength is x-amz-decoded-content-length, or -1 when the request did not give it.
	DecodedLength int64
	// MaxChunkSize bounds one signed chunk; 0 means DefaultMaxChunkSize.
	MaxChunkSize int
}

// ChunkedReader decodes an aws-chunked body, checking each chunk's signature (signed modes), the
// trailer's signature (signed trailer mode) and the decoded length. Signed chunks are released only
// after their signature is checked, so a reader never sees a byte of a forged chunk.
type ChunkedReader struct {
	br       *bufio.Reader
	signed   bool
	trailers bool
	key      []byte
	amzDate  string
	scope    string
	prev     string // signature of the previous chunk (the seed at first)
	maxChunk int64

	declared map[string]bool
	trailer  http.Header

	want int64 // decoded length expected, -1 unknown
	got  int64

	pending  []byte // signed mode: checked data not yet returned
	buf      []byte
	left     int64 // unsigned mode: bytes of the current chunk not yet returned
	needCRLF bool  // unsigned mode: the CRLF after the current chunk is still to read
	err      error // sticky: io.EOF after a good end, else the failure
}

// NewChunkedReader returns a reader of the decoded payload of an aws-chunked body.
func NewChunkedReader(body io.Reader, opts ChunkedOptions) (*ChunkedReader, error) {
	c := &ChunkedReader{
		br:       bufio.NewReaderSize(body, 64<<10),
		want:     opts.DecodedLength,
		maxChunk: int64(opts.MaxChunkSize),
		declared: map[string]bool{},
		trailer:  http.Header{},
	}
	if c.maxChunk <= 0 {
		c.maxChunk = DefaultMaxChunkSize
	}
	switch opts.PayloadHash {
	case StreamingSignedPayload:
		c.signed = true
	case StreamingSignedPayloadTrailer:
		c.signed, c.trailers = true, true
	case StreamingUnsignedPayloadTrailer:
		c.trailers = true
	default:
		return nil, fmt.Errorf("aws-chunked payload %q is not supported", opts.PayloadHash)
	}
	if c.signed {
		if opts.Seed == nil || len(opts.Seed.signingKey) == 0 {
			return nil, errors.New("aws-chunked: a signed streaming payload needs the verified request as seed")
		}
		c.key = opts.Seed.signingKey
		c.amzDate = opts.Seed.Time.UTC().Format(amzDateFormat)
		c.scope = opts.Seed.Scope()
		c.prev = opts.Seed.Signature
	}
	for _, name := range opts.Trailers {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		c.declared[name] = true
		// Announce the key now, as net/http does for declared trailers; the value arrives at EOF.
		c.trailer[http.CanonicalHeaderKey(name)] = nil
	}
	if len(c.declared) > 0 && !c.trailers {
		return nil, fmt.Errorf("aws-chunked: x-amz-trailer is set but %s carries no trailer", opts.PayloadHash)
	}
	return c, nil
}

// Trailer returns the trailing headers. The map is the same before and after EOF: it holds the
// declared names with no values until the body has been read to EOF, then their values.
func (c *ChunkedReader) Trailer() http.Header { return c.trailer }

// Read implements io.Reader.
func (c *ChunkedReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(c.pending) > 0 {
			n := copy(p, c.pending)
			c.pending = c.pending[n:]
			return n, nil
		}
		if c.left > 0 {
			if int64(len(p)) > c.left {
				p = p[:c.left]
			}
			n, err := c.br.Read(p)
			c.left -= int64(n)
			if n == 0 && err != nil {
				c.err = c.truncated(err)
				return 0, c.err
			}
			return n, nil
		}
		if c.err != nil {
			return 0, c.err
		}
		c.err = c.next()
	}
}

// next reads the next chunk header (and, in signed mode, the chunk), or the end of the body.
func (c *ChunkedReader) next() error {
	if c.needCRLF {
		if err := c.readCRLF(); err != nil {
			return err
		}
		c.needCRLF = false
	}
	line, err := c.readLine()
	if err != nil {
		return c.truncated(err)
	}
	sizeStr, ext, hasExt := strings.Cut(line, ";")
	size, perr := strconv.ParseInt(sizeStr, 16, 64)
	if perr != nil || size < 0 || sizeStr == "" || strings.HasPrefix(sizeStr, "+") || strings.HasPrefix(sizeStr, "-") {
		return fmt.Errorf("%w: chunk size %q is not hexadecimal", ErrMalformedChunkedBody, truncate(sizeStr, 20))
	}
	if c.want >= 0 && c.got+size > c.want {
		return fmt.Errorf("%w: the chunks carry more than the %d bytes declared", ErrIncompleteBody, c.want)
	}
	var signature string
	if c.signed {
		sig, ok := strings.CutPrefix(ext, "chunk-signature=")
		if !hasExt || !ok || !isHexSHA256(sig) {
			return fmt.Errorf("%w: chunk header %q has no chunk-signature", ErrMalformedChunkedBody, truncate(line, 100))
		}
		signature = sig
	}
	if size == 0 {
		if c.signed {
			if err := c.checkChunk(nil, signature); err != nil {
				return err
			}
		}
		return c.finish()
	}
	c.got += size
	if !c.signed {
		c.left, c.needCRLF = size, true
		return nil
	}
	if size > c.maxChunk {
		return fmt.Errorf("%w: chunk of %d bytes, limit %d", ErrChunkTooLarge, size, c.maxChunk)
	}
	if int64(cap(c.buf)) < size {
		c.buf = make([]byte, size)
	}
	data := c.buf[:size]
	if _, err := io.ReadFull(c.br, data); err != nil {
		return c.truncated(err)
	}
	if err := c.readCRLF(); err != nil {
		return err
	}
	if err := c.checkChunk(data, signature); err != nil {
		return err
	}
	c.pending = data
	return nil
}

func (c *ChunkedReader) checkChunk(data []byte, signature string) error {
	sum := sha256.Sum256(data)
	sts := chunkAlgorithm + "\n" + c.amzDate + "\n" + c.scope + "\n" + c.prev + "\n" + emptySHA256 + "\n" + hex.EncodeToString(sum[:])
	want := hex.EncodeToString(hmacSHA256(c.key, sts))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return fmt.Errorf("%w: chunk signature %s", ErrChunkSignatureMismatch, signature)
	}
	c.prev = signature
	return nil
}

// finish reads what follows the final chunk: nothing but CRLF, or the trailing headers.
func (c *ChunkedReader) finish() error {
	var canonical strings.Builder
	var trailerSig string
	seen := 0
	skippedBlank := false
	for lines := 0; ; lines++ {
		if lines > maxTrailerLines {
			return fmt.Errorf("%w: too many trailing header lines", ErrMalformedChunkedBody)
		}
		line, err := c.readLine()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			break // some clients end the body without the last CRLF; everything signed has arrived
		}
		if err != nil {
			return err
		}
		if line == "" {
			// A blank line ends the body, except one blank line before the trailers that some
			// encoders write after the final chunk.
			if c.trailers && seen == 0 && trailerSig == "" && !skippedBlank && len(c.declared) > 0 {
				skippedBlank = true
				continue
			}
			break
		}
		if !c.trailers {
			return fmt.Errorf("%w: data after the final chunk", ErrMalformedChunkedBody)
		}
		if trailerSig != "" {
			return fmt.Errorf("%w: trailing header after x-amz-trailer-signature", ErrMalformedChunkedBody)
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.TrimSpace(value)
		if !ok || name == "" {
			return fmt.Errorf("%w: trailing header %q is not name:value", ErrMalformedChunkedBody, truncate(line, 100))
		}
		if name == trailerSignatureKey {
			if !c.signed {
				return fmt.Errorf("%w: x-amz-trailer-signature in an unsigned payload", ErrMalformedChunkedBody)
			}
			trailerSig = value
			continue
		}
		if !c.declared[name] {
			return fmt.Errorf("%w: trailing header %q was not declared in x-amz-trailer", ErrMalformedChunkedBody, truncate(name, 60))
		}
		canonical.WriteString(name + ":" + value + "\n")
		c.trailer.Add(name, value)
		seen++
	}
	for name := range c.declared {
		if len(c.trailer.Values(name)) == 0 {
			return fmt.Errorf("%w: declared trailing header %q did not arrive", ErrMalformedChunkedBody, name)
		}
	}
	if c.signed && c.trailers {
		if !isHexSHA256(trailerSig) {
			return fmt.Errorf("%w: the trailing headers carry no x-amz-trailer-signature", ErrMalformedChunkedBody)
		}
		sum := sha256.Sum256([]byte(canonical.String()))
		sts := trailerAlgorithm + "\n" + c.amzDate + "\n" + c.scope + "\n" + c.prev + "\n" + hex.EncodeToString(sum[:])
		want := hex.EncodeToString(hmacSHA256(c.key, sts))
		if !hmac.Equal([]byte(want), []byte(trailerSig)) {
			return fmt.Errorf("%w: trailer signature %s", ErrChunkSignatureMismatch, trailerSig)
		}
	}
	if c.want >= 0 && c.got != c.want {
		return fmt.Errorf("%w: got %d bytes, x-amz-decoded-content-length says %d", ErrIncompleteBody, c.got, c.want)
	}
	return io.EOF
}

// readLine reads one CRLF-terminated line without its CRLF. At a clean end of input it returns
// io.ErrUnexpectedEOF (the framing always has more to say).
func (c *ChunkedReader) readLine() (string, error) {
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxChunkLine {
		return "", fmt.Errorf("%w: line longer than %d bytes", ErrMalformedChunkedBody, maxChunkLine)
	}
	if err != nil {
		if len(line) == 0 && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)) {
			return "", io.ErrUnexpectedEOF
		}
		return "", c.truncated(err)
	}
	if !bytes.HasSuffix(line, []byte("\r\n")) {
		return "", fmt.Errorf("%w: line %q does not end in CRLF", ErrMalformedChunkedBody, truncate(string(line), 100))
	}
	return string(line[:len(line)-2]), nil
}

func (c *ChunkedReader) readCRLF() error {
	var crlf [2]byte
	if _, err := io.ReadFull(c.br, crlf[:]); err != nil {
		return c.truncated(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return fmt.Errorf("%w: chunk data is not followed by CRLF", ErrMalformedChunkedBody)
	}
	return nil
}

// truncated turns an early end of input into IncompleteBody; other read errors pass through.
func (c *ChunkedReader) truncated(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the aws-chunked body ended early", ErrIncompleteBody)
	}
	return err
}

// NewPayloadHashReader returns a reader of body that fails at EOF with ErrContentSHA256Mismatch
// (wrapped) unless the bytes read hash to wantHex. Use it when Result.HexPayloadHash is true and the
// body is streamed rather than held.
func NewPayloadHashReader(body io.Reader, wantHex string) io.Reader {
	return &payloadHashReader{r: body, h: sha256.New(), want: wantHex}
}

type payloadHashReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	err  error
}

func (p *payloadHashReader) Read(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	n, err := p.r.Read(b)
	p.h.Write(b[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(p.h.Sum(nil)); got != p.want {
			err = fmt.Errorf("%w: body hashes to %s, header says %s", ErrContentSHA256Mismatch, got, p.want)
		}
	}
	if err != nil {
		p.err = err
	}
	return n, err
}
