package automl_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// BenchmarkHTTP measures DescribeAutoMLJobV2 and ListAutoMLJobs through the whole stack (SigV4-signed
// aws-sdk-go-v2 calls over loopback, the front door, the service, SQLite) with 10,000 jobs in the
// store, at 1, 16 and 64 concurrent clients. It reports requests/s and the p99 latency.
//
//	go test ./internal/automl -run X -bench HTTP -benchtime 2000x
func BenchmarkHTTP(b *testing.B) {
	sm, svc := startStack(b, nil)
	ctx := context.Background()
	create := svc.Operations()["CreateAutoMLJobV2"]
	t := &testing.T{}
	for i := range 10000 {
		if _, err := create(ctx, []byte(edit(t, sampleRequest, change{"AutoMLJobName", fmt.Sprintf("http-job-%05d", i)}))); err != nil {
			b.Fatal(err)
		}
	}
	calls := map[string]func(i int) error{
		"Describe": func(i int) error {
			_, err := sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(fmt.Sprintf("http-job-%05d", (i*7919)%10000))})
			return err
		},
		"List": func(int) error {
			_, err := sm.ListAutoMLJobs(ctx, &sagemaker.ListAutoMLJobsInput{SortBy: types.AutoMLSortByCreationTime, MaxResults: aws.Int32(10)})
			return err
		},
	}
	for _, name := range []string{"Describe", "List"} {
		for _, clients := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", name, clients), func(b *testing.B) {
				call := calls[name]
				lat := make([]time.Duration, b.N)
				var wg sync.WaitGroup
				next := make(chan int, b.N)
				for i := range b.N {
					next <- i
				}
				close(next)
				b.ResetTimer()
				start := time.Now()
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range next {
							t0 := time.Now()
							if err := call(i); err != nil {
								b.Error(err)
								return
							}
							lat[i] = time.Since(t0)
						}
					}()
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				slices.Sort(lat)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			})
		}
	}
}
