// Package client builds the AWS SDK clients that Lathe's own CLI verbs (`lathe jobs ...`) use to talk
// to a running Lathe server, exactly as any SageMaker user's code would, plus a raw JSON call for the
// members that the SDK's generated types drop (the live TrainingProgress of a job).
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

// Options say where the server is and how to sign.
type Options struct {
	Endpoint        string // http://127.0.0.1:8080
	Region          string
	AccessKeyID     string
	SecretAccessKey string
}

// Clients holds configured SDK clients for one Lathe server.
type Clients struct {
	opts      Options
	cfg       aws.Config
	SageMaker *sagemaker.Client
	S3        *s3.Client
}

// New returns clients for the server described by opts.
func New(opts Options) (*Clients, error) {
	if opts.Endpoint == "" {
		return nil, fmt.Errorf("no Lathe endpoint: set --endpoint or LATHE_ENDPOINT")
	}
	if opts.AccessKeyID == "" || opts.SecretAccessKey == "" {
		return nil, fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or pass --data-dir of the server")
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	cfg := aws.Config{
		Region:      opts.Region,
		Credentials: credentials.NewStaticCredentialsProvider(opts.AccessKeyID, opts.SecretAccessKey, ""),
		HTTPClient:  HTTPClient(),
	}
	c := &Clients{opts: opts, cfg: cfg}
	c.SageMaker = sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(opts.Endpoint) })
	c.S3 = s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(opts.Endpoint)
		o.UsePathStyle = true
	})
	return c, nil
}

// Call sends one SageMaker JSON 1.1 operation and decodes the whole response into out, keeping the
// members that the SDK's types do not know (such as a job's TrainingProgress).
func (c *Clients) Call(ctx context.Context, op string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.opts.Endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "SageMaker."+op)
	sum := sha256.Sum256(body)
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("%s: credentials: %w", op, err)
	}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sagemaker", c.opts.Region, time.Now()); err != nil {
		return fmt.Errorf("%s: sign: %w", op, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: read response: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(data, &e)
		return fmt.Errorf("%s: %s: %s", op, e.Type, e.Message)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: decode response: %w", op, err)
	}
	return nil
}
