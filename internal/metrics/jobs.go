package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/store"
)

// listPage is how many job summaries one store read returns while counting.
const listPage = 1000

// jobStats is one scrape's reading of the job table.
type jobStats struct {
	byStatus        map[string]int
	queued          int
	oldestWait      time.Duration
	tokensPerSecond map[string]float64 // by job name, running jobs that reported throughput
}

// readJobs counts the jobs by status and looks at each unfinished one (its lease and progress).
// Unfinished jobs are few (a worker runs one at a time), finished ones are only counted.
func readJobs(ctx context.Context, jobs store.Jobs, now time.Time) (*jobStats, error) {
	s := &jobStats{byStatus: map[string]int{}, tokensPerSecond: map[string]float64{}}
	var unfinished []string
	q := store.JobQuery{SortBy: store.SortByName, Limit: listPage}
	for {
		page, err := jobs.ListJobs(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("list jobs: %w", err)
		}
		for _, j := range page.Jobs {
			s.byStatus[j.Status]++
			if j.Status == store.StatusInProgress || j.Status == store.StatusStopping {
				unfinished = append(unfinished, j.Name)
			}
		}
		if page.Next == "" {
			break
		}
		q.After = page.Next
	}
	for _, name := range unfinished {
		j, err := jobs.GetJob(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted between the list and now
		}
		if err != nil {
			return nil, fmt.Errorf("get job %s: %w", name, err)
		}
		if j.Status != store.StatusInProgress && j.Status != store.StatusStopping {
			continue // finished since the list
		}
		// The lease expiry is by the store's clock; this process's clock is close enough for a
		// gauge (a lease is tens of seconds, clocks agree to well under that).
		if j.LeaseOwner == "" || !j.LeaseExpiry.After(now) {
			s.queued++
			s.oldestWait = max(s.oldestWait, now.Sub(j.Created))
			continue
		}
		if len(j.Progress) == 0 {
			continue
		}
		var p job.Progress
		if err := json.Unmarshal(j.Progress, &p); err != nil {
			return nil, fmt.Errorf("job %s: decode progress: %w", name, err)
		}
		if p.TokensPerSecond > 0 {
			s.tokensPerSecond[j.Name] = p.TokensPerSecond
		}
	}
	return s, nil
}
