package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/smithy-go"
)

// TestRotatedSecretIsHonouredAtOnce: signing keys are cached per secret, day, region and
// service, so the request right after a key's secret changes must already be checked against the
// new secret: the old one is refused, the new one accepted.
func TestRotatedSecretIsHonouredAtOnce(t *testing.T) {
	const akid = "AKIALATHEROTATE00001"
	var secret atomic.Value
	secret.Store("first/secret/0123456789abcdefghijklmnop")
	ts := startServer(t, false, func(c *Config) {
		c.LookupSecret = func(id string) (string, bool) {
			if id != akid {
				return "", false
			}
			return secret.Load().(string), true
		}
	})
	describe := func(creds Credentials) error {
		_, err := ts.sageMaker(creds).DescribeAutoMLJobV2(context.Background(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String("ok")})
		return err
	}
	first := Credentials{akid, "first/secret/0123456789abcdefghijklmnop"}
	second := Credentials{akid, "second/secret/0123456789abcdefghijklmno"}
	for i := range 2 { // the second call is served from the cached signing key
		if err := describe(first); err != nil {
			t.Fatalf("call %d with the first secret: %v", i+1, err)
		}
	}
	secret.Store(second.SecretAccessKey)
	err := describe(first)
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("first secret after the rotation: %v, want InvalidSignatureException", err)
	}
	if err := describe(second); err != nil {
		t.Fatalf("second secret after the rotation: %v", err)
	}
	secret.Store(first.SecretAccessKey) // rotated back: its cached key is valid again, the other's not
	if err := describe(first); err != nil {
		t.Fatalf("first secret once restored: %v", err)
	}
	if err := describe(second); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("second secret once the first is restored: %v, want InvalidSignatureException", err)
	}
}
