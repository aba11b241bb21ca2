package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/automl"
	"github.com/lathe-ml/lathe/internal/store"
)

// Sizes of the Describe benchmark: the target is Describe p99 under 5 ms with 64
// concurrent clients over 10,000 jobs.
const (
	BenchJobs    = 10_000
	BenchClients = 64
)

// benchRequest is a CreateAutoMLJobV2 request as a client sends it, so the stored documents are
// the size real ones are.
const benchRequest = `{"AutoMLJobInputDataConfig":[{"ChannelType":"training","CompressionType":"None",` +
	`"ContentType":"text/csv;header=present","DataSource":{"S3DataSource":{"S3DataType":"S3Prefix","S3Uri":"s3://b/train/"}}}],` +
	`"AutoMLJobName":%q,"AutoMLProblemTypeConfig":{"TextGenerationJobConfig":{"BaseModelName":"Llama2-7B",` +
	`"CompletionCriteria":{"MaxAutoMLJobRuntimeInSeconds":3600,"MaxRuntimePerTrainingJobInSeconds":3000},` +
	`"ModelAccessConfig":{"AcceptEula":true},"TextGenerationHyperParameters":{"epochCount":"3","learningRate":"0.0001"}}},` +
	`"DataSplitConfig":{"ValidationFraction":0.1},"ModelDeployConfig":{"AutoGenerateEndpointName":true},` +
	`"OutputDataConfig":{"S3OutputPath":"s3://b/out/"},"RoleArn":"arn:aws:iam::123456789012:role/r",` +
	`"Tags":[{"Key":"team","Value":"nlp"}]}`

// BenchDescribe fills s with BenchJobs jobs through CreateAutoMLJobV2 and measures, with
// BenchClients concurrent clients, the latency of reading one job by name: the store's GetJob, and
// the whole DescribeAutoMLJobV2 operation (the store read, the response built and encoded to JSON,
// all but the HTTP round trip). b.N is the number of calls; p50 and p99 are reported in
// microseconds. Run it with -benchtime=NNNNx (a count, not a duration).
func BenchDescribe(b *testing.B, s store.Store) {
	ctx := context.Background()
	svc, err := automl.New(automl.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	ops := svc.Operations()
	create, describe := ops["CreateAutoMLJobV2"], ops["DescribeAutoMLJobV2"]
	names := make([]string, BenchJobs)
	for i := range names {
		names[i] = fmt.Sprintf("bench-job-%05d", i)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(names); i += 8 {
				if _, err := create(ctx, fmt.Appendf(nil, benchRequest, names[i])); err != nil {
					errs <- fmt.Errorf("create %s: %w", names[i], err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.Logf("created %d jobs in %v", BenchJobs, time.Since(start).Round(time.Millisecond))

	b.Run("GetJob", func(b *testing.B) {
		measure(b, names, func(name string) error {
			_, err := s.GetJob(ctx, name)
			return err
		})
	})
	b.Run("DescribeAutoMLJobV2", func(b *testing.B) {
		measure(b, names, func(name string) error {
			out, err := describe(ctx, fmt.Appendf(nil, `{"AutoMLJobName":%q}`, name))
			if err != nil {
				return err
			}
			_, err = json.Marshal(out)
			return err
		})
	})
}

// measure runs b.N calls of call spread over BenchClients goroutines, each on random names, and
// reports the latency percentiles.
func measure(b *testing.B, names []string, call func(name string) error) {
	per := (b.N + BenchClients - 1) / BenchClients
	lat := make([][]time.Duration, BenchClients)
	errs := make([]error, BenchClients)
	var wg sync.WaitGroup
	// Warm up first, unmeasured: connections are opened and statements prepared on first use, a
	// cost of a process's first seconds, not of its steady state.
	for c := range BenchClients {
		wg.Go(func() {
			for i := range 8 {
				if err := call(names[(c*8+i)%len(names)]); err != nil {
					errs[c] = err
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	for c := range BenchClients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 1))
			lat[c] = make([]time.Duration, 0, per)
			for range per {
				name := names[r.IntN(len(names))]
				t := time.Now()
				if err := call(name); err != nil {
					errs[c] = err
					return
				}
				lat[c] = append(lat[c], time.Since(t))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for c := range BenchClients {
		if errs[c] != nil {
			b.Fatal(errs[c])
		}
		all = append(all, lat[c]...)
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
