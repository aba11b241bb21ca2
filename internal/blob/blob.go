// Package blob is how Lathe reads and writes s3:// URIs: datasets, model artifacts, metrics.
// It wraps aws-sdk-go-v2's S3 client and works the same against the embedded S3 API
// (internal/s3api) and any external S3: AWS, versitygw, MinIO, Ceph.
package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// ErrNotFound is wrapped by every error about a missing object or bucket; test with errors.Is.
var ErrNotFound = errors.New("not found")

const (
	// DefaultPartSize is the multipart part size, and the size above which uploads go multipart.
	DefaultPartSize = 16 << 20
	minPartSize     = 5 << 20 // S3's minimum for every part but the last
	maxParts        = 10000
	uploadWorkers   = 4
)

// Options says which S3 to talk to. The zero value means AWS S3 with the SDK's usual
// configuration (AWS_REGION, AWS_ACCESS_KEY_ID, shared config files, ...).
type Options struct {
	// Endpoint is the S3 API's base URL, e.g. "http://127.0.0.1:8080"; empty for AWS.
	Endpoint string
	// Region defaults to the SDK's configured region, else us-east-1.
	Region string
	// AccessKeyID and SecretAccessKey, when set, are used instead of the SDK's credential chain.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// PathStyle addresses buckets as http://host/bucket/key (the embedded API, versitygw and
	// MinIO need it) instead of http://bucket.host/key.
	PathStyle bool
	// PartSize is the multipart part size and threshold; 0 means DefaultPartSize. S3 needs at
	// least 5 MiB.
	PartSize int64
}

// OptionsFromEnv returns the S3 that Lathe's own reads and writes should use: the one named by
// LATHE_S3_ENDPOINT when set (path style unless LATHE_S3_PATH_STYLE=false; region and
// credentials from the usual AWS environment), else embedded, the server's own S3 API.
func OptionsFromEnv(embedded Options) Options {
	ep := os.Getenv("LATHE_S3_ENDPOINT")
	if ep == "" {
		return embedded
	}
	return External(ep)
}

// External returns the options of an external S3 at endpoint: path style unless
// LATHE_S3_PATH_STYLE=false, region and credentials from the standard AWS chain (AWS_REGION,
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files, ...).
func External(endpoint string) Options {
	return Options{Endpoint: endpoint, PathStyle: os.Getenv("LATHE_S3_PATH_STYLE") != "false"}
}

// Client reads and writes s3:// URIs. It is safe for concurrent use.
type Client struct {
	s3       *s3.Client
	partSize int64
	pageSize int32 // ListObjectsV2 max-keys; 0 leaves S3's default (1000)
}

// New returns a client for the S3 that opts describe.
func New(ctx context.Context, opts Options) (*Client, error) {
	var loads []func(*config.LoadOptions) error
	if opts.Region != "" {
		loads = append(loads, config.WithRegion(opts.Region))
	}
	if opts.AccessKeyID != "" {
		loads = append(loads, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, opts.SessionToken)))
	}
	// The SDK's own buildable HTTP client honours AWS_CA_BUNDLE; a plain http.Client would not.
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("blob: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	partSize := opts.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < minPartSize {
		return nil, fmt.Errorf("blob: part size %d is under S3's minimum of 5 MiB", partSize)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		// Multipart objects carry no whole-object checksum to validate; that is expected.
		o.DisableLogOutputChecksumValidationSkipped = true
		o.APIOptions = append(o.APIOptions, sseMiddleware) // WithSSEKMS (sse.go)
	})
	return &Client{s3: client, partSize: partSize}, nil
}

// S3 returns the underlying SDK client, for calls this package does not wrap.
func (c *Client) S3() *s3.Client { return c.s3 }

// ParseURI splits "s3://bucket/key" into bucket and key. The key may be empty ("s3://bucket"
// or "s3://bucket/"), which List reads as "the whole bucket".
func ParseURI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", fmt.Errorf("blob: %q is not an s3:// URI", uri)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("blob: %q names no bucket", uri)
	}
	return bucket, key, nil
}

// parseObjectURI is ParseURI for calls that need a key.
func parseObjectURI(uri string) (bucket, key string, err error) {
	bucket, key, err = ParseURI(uri)
	if err == nil && key == "" {
		err = fmt.Errorf("blob: %q names no object key", uri)
	}
	return bucket, key, err
}

// notFound reports whether err says the object or its bucket does not exist.
func notFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "NotFound":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound
}

// wrap adds the operation and URI to err, and ErrNotFound when that is what it means.
func wrap(op, uri string, err error) error {
	if notFound(err) {
		return fmt.Errorf("%s %s: %w: %w", op, uri, ErrNotFound, err)
	}
	return fmt.Errorf("%s %s: %w", op, uri, err)
}

// Object is one listed object.
type Object struct {
	URI          string // s3://bucket/key
	Key          string
	Size         int64
	ETag         string // as S3 sends it, quoted
	LastModified time.Time
}

// List returns every object whose key starts with the URI's key, in key order, following
// S3's pagination to the end. "s3://bucket/data/" lists everything under data/.
func (c *Client) List(ctx context.Context, uri string) ([]Object, error) {
	bucket, prefix, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if c.pageSize > 0 {
		in.MaxKeys = aws.Int32(c.pageSize)
	}
	var out []Object
	p := s3.NewListObjectsV2Paginator(c.s3, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, wrap("list", uri, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			out = append(out, Object{URI: "s3://" + bucket + "/" + key, Key: key, Size: aws.ToInt64(o.Size),
				ETag: aws.ToString(o.ETag), LastModified: aws.ToTime(o.LastModified)})
		}
	}
	return out, nil
}

// Open returns the object's content as a stream; the caller closes it.
func (c *Client) Open(ctx context.Context, uri string) (io.ReadCloser, error) {
	bucket, key, err := parseObjectURI(uri)
	if err != nil {
		return nil, err
	}
	out, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, wrap("open", uri, err)
	}
	return out.Body, nil
}

// Get returns the whole object; for small objects (use Open or Download for large ones).
func (c *Client) Get(ctx context.Context, uri string) ([]byte, error) {
	rc, err := c.Open(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	return data, nil
}

// Exists reports whether the object exists.
func (c *Client) Exists(ctx context.Context, uri string) (bool, error) {
	bucket, key, err := parseObjectURI(uri)
	if err != nil {
		return false, err
	}
	_, err = c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	if notFound(err) {
		return false, nil
	}
	return false, wrap("head", uri, err)
}

// Delete removes the object. Deleting a missing object succeeds, as in S3; a missing bucket
// is ErrNotFound.
func (c *Client) Delete(ctx context.Context, uri string) error {
	bucket, key, err := parseObjectURI(uri)
	if err != nil {
		return err
	}
	if _, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
		return wrap("delete", uri, err)
	}
	return nil
}

// CreateBucket creates a bucket; one that already exists and is ours is not an error.
func (c *Client) CreateBucket(ctx context.Context, bucket string) error {
	_, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// PutBytes stores data as the object.
func (c *Client) PutBytes(ctx context.Context, uri string, data []byte, contentType string) error {
	bucket, key, err := parseObjectURI(uri)
	if err != nil {
		return err
	}
	if int64(len(data)) > c.partSize {
		return c.multipart(ctx, uri, bucket, key, contentType, int64(len(data)), func(off, n int64) io.ReadSeeker {
			return bytes.NewReader(data[off : off+n])
		})
	}
	return c.putOne(ctx, uri, bucket, key, contentType, bytes.NewReader(data))
}

// Put stores what r yields as the object, streaming: it holds at most one part in memory and
// goes multipart when r is longer than one part.
func (c *Client) Put(ctx context.Context, uri string, r io.Reader, contentType string) error {
	bucket, key, err := parseObjectURI(uri)
	if err != nil {
		return err
	}
	buf := make([]byte, c.partSize)
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return c.putOne(ctx, uri, bucket, key, contentType, bytes.NewReader(buf[:n]))
	}
	if err != nil {
		return fmt.Errorf("put %s: read: %w", uri, err)
	}
	return c.multipartStream(ctx, uri, bucket, key, contentType, buf, r)
}

// PutFile uploads a local file, in parallel parts when it is larger than one part. The
// content type comes from the file's extension.
func (c *Client) PutFile(ctx context.Context, uri, path string) error {
	bucket, key, err := parseObjectURI(uri)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("put %s: %w", uri, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("put %s: %w", uri, err)
	}
	contentType := mime.TypeByExtension(filepath.Ext(path))
	if fi.Size() <= c.partSize {
		return c.putOne(ctx, uri, bucket, key, contentType, f)
	}
	return c.multipart(ctx, uri, bucket, key, contentType, fi.Size(), func(off, n int64) io.ReadSeeker {
		return io.NewSectionReader(f, off, n)
	})
}

func (c *Client) putOne(ctx context.Context, uri, bucket, key, contentType string, body io.ReadSeeker) error {
	in := &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: body}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	if _, err := c.s3.PutObject(ctx, in); err != nil {
		return wrap("put", uri, err)
	}
	return nil
}

// partSizeFor keeps a large object within S3's 10,000 parts.
func (c *Client) partSizeFor(size int64) int64 {
	return max(c.partSize, (size+maxParts-1)/maxParts)
}

// multipart uploads size bytes, part i being section(i*partSize, n), with a few parts in flight.
func (c *Client) multipart(ctx context.Context, uri, bucket, key, contentType string, size int64, section func(off, n int64) io.ReadSeeker) error {
	id, err := c.createUpload(ctx, uri, bucket, key, contentType)
	if err != nil {
		return err
	}
	partSize := c.partSizeFor(size)
	nparts := int((size + partSize - 1) / partSize)
	parts := make([]types.CompletedPart, nparts)
	errs := make([]error, nparts)
	next := make(chan int)
	var wg sync.WaitGroup
	partCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(uploadWorkers, nparts) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				off := int64(i) * partSize
				n := min(partSize, size-off)
				parts[i], errs[i] = c.uploadPart(partCtx, bucket, key, id, int32(i+1), section(off, n))
				if errs[i] != nil {
					cancel()
				}
			}
		}()
	}
	for i := 0; i < nparts; i++ {
		if partCtx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return c.abort(uri, bucket, key, id, err)
	}
	if ctx.Err() != nil {
		return c.abort(uri, bucket, key, id, ctx.Err())
	}
	return c.complete(ctx, uri, bucket, key, id, parts)
}

// multipartStream uploads first, then the rest of r, one part at a time.
func (c *Client) multipartStream(ctx context.Context, uri, bucket, key, contentType string, first []byte, r io.Reader) error {
	id, err := c.createUpload(ctx, uri, bucket, key, contentType)
	if err != nil {
		return err
	}
	var parts []types.CompletedPart
	buf := first
	for n := int32(1); ; n++ {
		if n > maxParts {
			return c.abort(uri, bucket, key, id, fmt.Errorf("more than %d parts of %d bytes", maxParts, c.partSize))
		}
		p, err := c.uploadPart(ctx, bucket, key, id, n, bytes.NewReader(buf))
		if err != nil {
			return c.abort(uri, bucket, key, id, err)
		}
		parts = append(parts, p)
		buf = buf[:cap(buf)]
		got, err := io.ReadFull(r, buf)
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return c.abort(uri, bucket, key, id, fmt.Errorf("read: %w", err))
		}
		buf = buf[:got]
	}
	return c.complete(ctx, uri, bucket, key, id, parts)
}

func (c *Client) createUpload(ctx context.Context, uri, bucket, key, contentType string) (string, error) {
	in := &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if contentType != "" {
		in.ContentType = aws.String(contentType)
	}
	out, err := c.s3.CreateMultipartUpload(ctx, in)
	if err != nil {
		return "", wrap("put", uri, err)
	}
	return aws.ToString(out.UploadId), nil
}

func (c *Client) uploadPart(ctx context.Context, bucket, key, id string, n int32, body io.ReadSeeker) (types.CompletedPart, error) {
	out, err := c.s3.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: aws.String(id), PartNumber: aws.Int32(n), Body: body})
	if err != nil {
		return types.CompletedPart{}, fmt.Errorf("part %d: %w", n, err)
	}
	// The part checksums stay out of CompleteMultipartUpload: the upload was created without a
	// checksum algorithm, and S3 servers such as versitygw then refuse parts that carry one.
	return types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.ETag}, nil
}

func (c *Client) complete(ctx context.Context, uri, bucket, key, id string, parts []types.CompletedPart) error {
	_, err := c.s3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: aws.String(id), MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return c.abort(uri, bucket, key, id, err)
	}
	return nil
}

// abort gives up a multipart upload so that its parts do not linger, and returns cause.
func (c *Client) abort(uri, bucket, key, id string, cause error) error {
	// The caller's context may be what failed; the clean-up gets its own.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, _ = c.s3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: aws.String(id)})
	return wrap("put", uri, cause)
}

// Download writes the object to path, atomically: the file appears complete or not at all.
func (c *Client) Download(ctx context.Context, uri, path string) error {
	rc, err := c.Open(ctx, uri)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return fmt.Errorf("download %s: %w", uri, err)
	}
	_, err = io.Copy(tmp, rc)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("download %s to %s: %w", uri, path, err)
	}
	return nil
}
