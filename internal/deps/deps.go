//go:build tools

// Package deps pins the module's third-party dependencies while the packages that use them are written.
package deps

import (
	_ "github.com/ardanlabs/jinja"
	_ "github.com/aws/aws-sdk-go-v2/aws"
	_ "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/aws/aws-sdk-go-v2/service/sagemaker"
	_ "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	_ "github.com/aws/smithy-go"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/text/unicode/norm"
	_ "modernc.org/sqlite"
)
