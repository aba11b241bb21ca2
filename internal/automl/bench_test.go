package automl_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lathe-ml/lathe/internal/automl"
)

// benchEnv is a store holding 10,000 jobs created through CreateAutoMLJobV2, a third of them stopped.
func benchEnv(b *testing.B) *env {
	b.Helper()
	t := &testing.T{}
	e := newEnvTB(b, automl.Config{})
	ctx := context.Background()
	create := e.ops["CreateAutoMLJobV2"]
	stop := e.ops["StopAutoMLJob"]
	for i := range 10000 {
		name := fmt.Sprintf("bench-job-%05d", i)
		if _, err := create(ctx, []byte(edit(t, sampleRequest, change{"AutoMLJobName", name}))); err != nil {
			b.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := stop(ctx, []byte(`{"AutoMLJobName":"`+name+`"}`)); err != nil {
				b.Fatal(err)
			}
		}
	}
	return e
}

func BenchmarkDescribe10k(b *testing.B) {
	e := benchEnv(b)
	op := e.ops["DescribeAutoMLJobV2"]
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			body := fmt.Appendf(nil, `{"AutoMLJobName":"bench-job-%05d"}`, (i*7919)%10000)
			if _, err := op(ctx, body); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

func BenchmarkList10k(b *testing.B) {
	e := benchEnv(b)
	op := e.ops["ListAutoMLJobs"]
	ctx := context.Background()
	for _, q := range []struct{ name, body string }{
		{"default", `{}`},
		{"100-by-creation-time", `{"SortBy":"CreationTime","MaxResults":100}`},
		{"status-filter-by-status", `{"StatusEquals":"Stopping","SortBy":"Status","MaxResults":100}`},
		{"name-contains", `{"NameContains":"job-05","MaxResults":100}`},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := op(ctx, []byte(q.body)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
