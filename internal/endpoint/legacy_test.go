package endpoint_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/lathe-ml/lathe/internal/endpoint"
	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

// legacySchema is endpoints.db as Lathe wrote it before the hosting resources moved into the
// metadata store (times in seconds as REAL, the requests as JSON).
const legacySchema = `
CREATE TABLE models (key TEXT PRIMARY KEY, name TEXT NOT NULL, arn TEXT NOT NULL, created REAL NOT NULL, spec TEXT NOT NULL);
CREATE TABLE endpoint_configs (key TEXT PRIMARY KEY, name TEXT NOT NULL, arn TEXT NOT NULL, created REAL NOT NULL, spec TEXT NOT NULL);
CREATE TABLE endpoints (key TEXT PRIMARY KEY, name TEXT NOT NULL, arn TEXT NOT NULL, config_name TEXT NOT NULL,
	status TEXT NOT NULL, failure TEXT NOT NULL DEFAULT '', created REAL NOT NULL, modified REAL NOT NULL, deployment TEXT NOT NULL);
INSERT INTO models VALUES ('old-model', 'Old-Model', 'arn:aws:sagemaker:us-east-1:123456789012:model/old-model', 1767323045.5,
	'{"ModelName":"Old-Model","PrimaryContainer":{"Environment":{"LATHE_BASE_MODEL":"Stories260K","LATHE_PROMPT_FORMAT":"raw"}}}');
INSERT INTO endpoint_configs VALUES ('old-config', 'Old-Config', 'arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/old-config', 1767323046.25,
	'{"EndpointConfigName":"Old-Config","ProductionVariants":[{"VariantName":"AllTraffic","ModelName":"Old-Model","InitialInstanceCount":1,"InstanceType":"ml.c5.xlarge"}]}');
INSERT INTO endpoints VALUES ('old-endpoint', 'Old-Endpoint', 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/old-endpoint', 'Old-Config',
	'InService', '', 1767323047.125, 1767323048.0,
	'{"variants":[{"name":"AllTraffic","model_name":"Old-Model","weight":1,"instance_type":"ml.c5.xlarge","instance_count":1,"environment":{"LATHE_BASE_MODEL":"Stories260K","LATHE_PROMPT_FORMAT":"raw"}}]}');
`

// A data dir from before the move keeps its endpoints: endpoints.db's rows are imported into the
// metadata store on start, the endpoint serves again, and the file is set aside (read once).
func TestLegacyEndpointsDBIsImported(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, endpoint.LegacyFile)
	old, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(legacySchema); err != nil {
		t.Fatal(err)
	}
	old.Close()

	e := startEnv(t, dir, serving.Options{})
	ctx := context.Background()
	e.waitInService(t, "Old-Endpoint")
	d, err := e.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("Old-Endpoint")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(d.EndpointConfigName) != "Old-Config" || d.CreationTime.UnixMilli() != 1767323047125 ||
		len(d.ProductionVariants) != 1 || aws.ToString(d.ProductionVariants[0].VariantName) != "AllTraffic" {
		t.Errorf("imported endpoint: %+v", d)
	}
	m, err := e.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("old-model")})
	if err != nil || aws.ToString(m.ModelName) != "Old-Model" || m.CreationTime.UnixMilli() != 1767323045500 {
		t.Errorf("imported model: %+v, %v", m, err)
	}
	c, err := e.sm.DescribeEndpointConfig(ctx, &sagemaker.DescribeEndpointConfigInput{EndpointConfigName: aws.String("Old-Config")})
	if err != nil || len(c.ProductionVariants) != 1 || aws.ToString(c.ProductionVariants[0].ModelName) != "Old-Model" {
		t.Errorf("imported endpoint config: %+v, %v", c, err)
	}
	res, _ := invoke(t, e, "Old-Endpoint", `{"inputs":"Once upon a time","parameters":{"max_new_tokens":4}}`)
	if len(res) != 1 || res[0].GeneratedText == "" {
		t.Errorf("imported endpoint answered %+v", res)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("endpoints.db is still there after the import (%v)", err)
	}
	if _, err := os.Stat(path + ".imported"); err != nil {
		t.Errorf("endpoints.db.imported: %v", err)
	}

	// The next start reads the store alone, and a resource deleted meanwhile stays deleted.
	if _, err := e.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("Old-Model")}); err != nil {
		t.Fatal(err)
	}
	e.stop()
	e = startEnv(t, dir, serving.Options{})
	e.waitInService(t, "Old-Endpoint")
	if _, err := e.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("Old-Model")}); err == nil {
		t.Error("the deleted model came back after a restart")
	}
}
