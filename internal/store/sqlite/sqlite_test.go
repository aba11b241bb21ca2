package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/sqlite"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newJob(name string, created time.Time) *store.Job {
	return &store.Job{
		Name: name, ARN: "arn:aws:sagemaker:us-east-1:123456789012:automl-job/" + strings.ToLower(name),
		Request: json.RawMessage(`{"AutoMLJobName":"` + name + `"}`), Spec: json.RawMessage(`{"Name":"` + name + `"}`),
		Status: store.StatusInProgress, Secondary: "Starting", Created: created, Modified: created,
	}
}

func TestCreateGetAndReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lathe.db")
	s := open(t, path)
	j := newJob("My-Job", t0)
	j.Deadline = t0.Add(time.Hour)
	if err := s.CreateJob(ctx, j, []store.Tag{{Key: "team", Value: "nlp"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateJob(ctx, newJob("my-JOB", t0), []store.Tag{{Key: "x", Value: "y"}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate name in other case: got %v, want ErrExists", err)
	}
	// The refused duplicate left no tags behind (its tags share the ARN of the existing job).
	tags, _, err := s.ListTags(ctx, j.ARN, "", 50)
	if err != nil || len(tags) != 1 || tags[0] != (store.Tag{Key: "team", Value: "nlp"}) {
		t.Fatalf("tags after refused duplicate = %v, %v", tags, err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("the database is not in WAL mode: %v", err)
	}
	owner := "w1"
	if c, err := s.ClaimJob(ctx, owner, t0, t0.Add(time.Minute)); err != nil || c == nil {
		t.Fatalf("claim: %v %v", c, err)
	}
	res := json.RawMessage(`{"CandidateName":"c"}`)
	if err := s.FinishJob(ctx, "my-job", owner, store.FinalState{Status: store.StatusCompleted, Secondary: "Completed", Result: res, Ended: t0.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := open(t, path) // reopening runs the migrations again: they must be a no-op
	got, err := s2.GetJob(ctx, "MY-JOB")
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "My-Job" || got.Status != store.StatusCompleted || got.Secondary != "Completed" ||
		!got.Ended.Equal(t0.Add(2*time.Minute)) || !got.Created.Equal(t0) || !got.Deadline.Equal(t0.Add(time.Hour)) ||
		string(got.Result) != string(res) || got.LeaseOwner != "" || got.Attempts != 1 {
		t.Fatalf("after reopen: %+v", got)
	}
	tags, _, err = s2.ListTags(ctx, j.ARN, "", 50)
	if err != nil || len(tags) != 1 {
		t.Fatalf("tags after reopen = %v, %v", tags, err)
	}
	if _, err := s2.GetJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

func TestClaimIsExclusive(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "lathe.db"))
	const jobs = 20
	for i := range jobs {
		if err := s.CreateJob(ctx, newJob(fmt.Sprintf("job-%02d", i), t0.Add(time.Duration(i)*time.Second)), nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("w%d", w)
			for {
				j, err := s.ClaimJob(ctx, owner, t0, t0.Add(time.Minute))
				if err != nil {
					t.Error(err)
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				if prev, ok := claimed[j.Name]; ok {
					t.Errorf("job %s claimed by %s and %s", j.Name, prev, owner)
				}
				claimed[j.Name] = owner
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Fatalf("claimed %d jobs, want %d", len(claimed), jobs)
	}
}

func TestLeaseExpiryAndGuards(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "lathe.db"))
	if err := s.CreateJob(ctx, newJob("j", t0), nil); err != nil {
		t.Fatal(err)
	}
	j, err := s.ClaimJob(ctx, "dead", t0, t0.Add(30*time.Second))
	if err != nil || j == nil || j.Attempts != 1 {
		t.Fatalf("first claim: %+v %v", j, err)
	}
	if j, err := s.ClaimJob(ctx, "w2", t0.Add(29*time.Second), t0.Add(time.Minute)); err != nil || j != nil {
		t.Fatalf("claim during a live lease: %+v %v", j, err)
	}
	j, err = s.ClaimJob(ctx, "w2", t0.Add(31*time.Second), t0.Add(time.Minute))
	if err != nil || j == nil || j.Attempts != 2 || j.LeaseOwner != "w2" {
		t.Fatalf("claim after expiry: %+v %v", j, err)
	}
	// The dead worker's writes are refused now.
	for name, err := range map[string]error{
		"renew":    func() error { _, err := s.RenewLease(ctx, "j", "dead", t0.Add(time.Hour)); return err }(),
		"phase":    s.SetSecondaryStatus(ctx, "j", "dead", "TrainingModels", t0),
		"progress": s.SetProgress(ctx, "j", "dead", json.RawMessage(`{}`), t0),
		"finish":   s.FinishJob(ctx, "j", "dead", store.FinalState{Status: store.StatusFailed, Secondary: "Failed", Ended: t0}),
		"release":  s.ReleaseLease(ctx, "j", "dead"),
	} {
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Errorf("%s by a former owner: %v, want ErrLeaseLost", name, err)
		}
	}
	// Stop while running: the phase no longer changes the Stopping secondary status; renew reports it.
	if _, err := s.RequestStop(ctx, "J", t0.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSecondaryStatus(ctx, "j", "w2", "TrainingModels", t0); err != nil {
		t.Fatal(err)
	}
	stop, err := s.RenewLease(ctx, "j", "w2", t0.Add(2*time.Minute))
	if err != nil || !stop {
		t.Fatalf("renew after stop request: %v %v", stop, err)
	}
	got, _ := s.GetJob(ctx, "j")
	if got.Status != store.StatusStopping || got.Secondary != "Stopping" || !got.StopRequested {
		t.Fatalf("after stop request: %s/%s stop=%v", got.Status, got.Secondary, got.StopRequested)
	}
	// Released, the job goes back to the queue.
	if err := s.ReleaseLease(ctx, "j", "w2"); err != nil {
		t.Fatal(err)
	}
	// A released claim is not counted: the dead worker's claim and w3's make 2.
	if j, err := s.ClaimJob(ctx, "w3", t0, t0.Add(time.Minute)); err != nil || j == nil || j.Status != store.StatusStopping || j.Attempts != 2 {
		t.Fatalf("claim after release: %+v %v", j, err)
	}
}

func TestListJobs(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "lathe.db"))
	statuses := []string{store.StatusInProgress, store.StatusCompleted, store.StatusFailed}
	type row struct {
		name    string
		created time.Time
		status  string
	}
	var all []row
	// 300 jobs; creation times are deliberately not in name order, and some collide.
	for i := range 300 {
		name := fmt.Sprintf("Job-%03d", (i*7)%300)
		if i%5 == 0 {
			name = strings.ToLower(name) + "-x"
		}
		created := t0.Add(time.Duration(i/2) * time.Second)
		j := newJob(name, created)
		j.Status = statuses[i%3]
		if err := s.CreateJob(ctx, j, nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, row{name, created, j.Status})
	}
	byName := func(a, b row) int { return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name)) }
	cases := []struct {
		name   string
		q      store.JobQuery
		filter func(row) bool
		cmp    func(a, b row) int
	}{
		{"name desc", store.JobQuery{Descending: true}, nil, func(a, b row) int { return -byName(a, b) }},
		{"name asc, contains", store.JobQuery{NameContains: "JOB-1"}, func(r row) bool { return strings.Contains(strings.ToLower(r.name), "job-1") }, byName},
		{"created asc", store.JobQuery{SortBy: store.SortByCreationTime}, nil, func(a, b row) int {
			if c := a.created.Compare(b.created); c != 0 {
				return c
			}
			return byName(a, b)
		}},
		{"created desc, after", store.JobQuery{SortBy: store.SortByCreationTime, Descending: true, CreatedAfter: t0.Add(50 * time.Second)},
			func(r row) bool { return r.created.After(t0.Add(50 * time.Second)) }, func(a, b row) int {
				if c := b.created.Compare(a.created); c != 0 {
					return c
				}
				return -byName(a, b)
			}},
		{"status asc, status filter, before", store.JobQuery{SortBy: store.SortByStatus, Status: store.StatusFailed, CreatedBefore: t0.Add(100 * time.Second)},
			func(r row) bool { return r.status == store.StatusFailed && r.created.Before(t0.Add(100*time.Second)) }, byName},
		{"status desc", store.JobQuery{SortBy: store.SortByStatus, Descending: true}, nil, func(a, b row) int {
			if c := strings.Compare(b.status, a.status); c != 0 {
				return c
			}
			return -byName(a, b)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			rows := slices.Clone(all)
			slices.SortStableFunc(rows, tc.cmp)
			for _, r := range rows {
				if tc.filter == nil || tc.filter(r) {
					want = append(want, r.name)
				}
			}
			var got []string
			q := tc.q
			q.Limit = 17
			pages := 0
			for {
				page, err := s.ListJobs(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				for _, j := range page.Jobs {
					got = append(got, j.Name)
				}
				if page.Next == "" {
					break
				}
				q.After = page.Next
			}
			if !slices.Equal(got, want) {
				t.Fatalf("got %d jobs %v...\nwant %d %v...", len(got), head(got), len(want), head(want))
			}
			if wantPages := max(1, (len(want)+16)/17); pages != wantPages {
				t.Errorf("pages = %d, want %d", pages, wantPages)
			}
		})
	}
	// A cursor only works with the query it was made for.
	page, err := s.ListJobs(ctx, store.JobQuery{Limit: 5})
	if err != nil || page.Next == "" {
		t.Fatal(page, err)
	}
	for _, q := range []store.JobQuery{
		{Limit: 5, After: page.Next, Descending: true},
		{Limit: 5, After: page.Next, Status: store.StatusFailed},
		{Limit: 5, After: "not-a-cursor"},
		{Limit: 5, After: page.Next[:len(page.Next)-3]},
	} {
		if _, err := s.ListJobs(ctx, q); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("cursor reused with %+v: %v, want ErrBadCursor", q, err)
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 8)] }

func TestTags(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "lathe.db"))
	arn := "arn:aws:sagemaker:us-east-1:123456789012:automl-job/a"
	if err := s.AddTags(ctx, arn, []store.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}}, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTags(ctx, arn, []store.Tag{{Key: "a", Value: "3"}, {Key: "c", Value: "4"}}, 3); err != nil { // overwrite + 1 new = 3
		t.Fatal(err)
	}
	if err := s.AddTags(ctx, arn, []store.Tag{{Key: "d", Value: "5"}, {Key: "a", Value: "9"}}, 3); !errors.Is(err, store.ErrTooManyTags) {
		t.Fatalf("over the limit: %v", err)
	}
	tags, more, err := s.ListTags(ctx, arn, "", 2)
	if err != nil || !more || !slices.Equal(tags, []store.Tag{{Key: "a", Value: "3"}, {Key: "b", Value: "1"}}) {
		t.Fatalf("page 1: %v %v %v", tags, more, err)
	}
	tags, more, err = s.ListTags(ctx, arn, "b", 2)
	if err != nil || more || !slices.Equal(tags, []store.Tag{{Key: "c", Value: "4"}}) {
		t.Fatalf("page 2: %v %v %v", tags, more, err)
	}
	if err := s.DeleteTags(ctx, arn, []string{"a", "zz"}); err != nil {
		t.Fatal(err)
	}
	tags, _, _ = s.ListTags(ctx, arn, "", 50)
	if !slices.Equal(tags, []store.Tag{{Key: "b", Value: "1"}, {Key: "c", Value: "4"}}) {
		t.Fatalf("after delete: %v", tags)
	}
}
