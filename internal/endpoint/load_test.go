package endpoint_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/lathe-ml/lathe/internal/endpoint/serving"
)

var loadFor = flag.Duration("load", 0, "run TestLoad: 32 concurrent clients (and one client as the baseline) for this long each, at most 60s")

// TestLoad is the bounded load test of the issue, not part of the default run:
//
//	go test ./internal/endpoint -run TestLoad -v -load=60s
//
// Clients invoke a Stories260K endpoint over loopback with the real runtime SDK, each request
// asking for 32 new tokens; every request must succeed.
func TestLoad(t *testing.T) {
	if *loadFor <= 0 {
		t.Skip("the load test runs only with -load DURATION")
	}
	d := min(*loadFor, 60*time.Second)
	e := startEnv(t, t.TempDir(), serving.Options{MaxBatch: 32})
	e.deploy(t, "load", baseModelContainer("raw"))
	for _, clients := range []int{1, 32} {
		target, err := e.svc.Route("load", "")
		if err != nil {
			t.Fatal(err)
		}
		before := target.Engine.Stats()
		r := runLoad(t, e, clients, d)
		after := target.Engine.Stats()
		meanBatch := 0.0
		if steps := after.Steps - before.Steps; steps > 0 {
			meanBatch = (after.MeanBatch*float64(after.Steps) - before.MeanBatch*float64(before.Steps)) / float64(steps)
		}
		t.Logf("%2d clients, %v: %d requests, %d errors, %.1f req/s, p50 %v, p99 %v, %.0f generated tokens/s, mean batch %.1f",
			clients, d, r.requests, r.errors, r.rps, r.p50, r.p99, r.tokensPerSec, meanBatch)
		if r.errors > 0 {
			t.Errorf("%d clients: %d of %d requests failed (first: %v)", clients, r.errors, r.requests, r.firstErr)
		}
	}
}

type loadResult struct {
	requests, errors int
	firstErr         error
	rps              float64
	p50, p99         time.Duration
	tokensPerSec     float64
}

func runLoad(t *testing.T, e *env, clients int, d time.Duration) loadResult {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	prompts := []string{"Once upon a time", "The little dog", "Tom and Sue went to the park", "One day, a bird"}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		res       loadResult
		tokens    int
		wg        sync.WaitGroup
	)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"inputs":%q,"parameters":{"max_new_tokens":32,"details":true}}`, prompts[(c+i)%len(prompts)])
				t0 := time.Now()
				out, err := e.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
					EndpointName: aws.String("load"), ContentType: aws.String("application/json"), Body: []byte(body)})
				lat := time.Since(t0)
				var got []tgiOut
				if err == nil {
					err = json.Unmarshal(out.Body, &got)
				}
				mu.Lock()
				res.requests++
				if err != nil || len(got) != 1 || got[0].Details == nil {
					res.errors++
					if res.firstErr == nil {
						res.firstErr = fmt.Errorf("%v (%d results)", err, len(got))
					}
				} else {
					latencies = append(latencies, lat)
					tokens += got[0].Details.GeneratedTokens
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	slices.Sort(latencies)
	if n := len(latencies); n > 0 {
		res.p50, res.p99 = latencies[n/2], latencies[min(n-1, n*99/100)]
	}
	res.rps = float64(len(latencies)) / elapsed
	res.tokensPerSec = float64(tokens) / elapsed
	return res
}
