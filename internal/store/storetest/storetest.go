// Package storetest is the conformance suite of store.Store: every backend (store/sqlite,
// store/postgres) runs the same cases from its own tests, so the API and the workers see one
// behaviour whichever database holds the metadata.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/store"
)

// NewDatabase makes a new, empty database for one test and returns how to open a store on it.
type NewDatabase func(t *testing.T) Opener

// Opener opens a store on one database. Each call makes a separate handle (its own connections),
// as another process would have.
type Opener func() (store.Store, error)

// handle opens a store with open and closes it when the test ends.
func handle(t *testing.T, open Opener) store.Store {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Migrator is implemented by the backends: the versions recorded in schema_migrations, in order.
type Migrator interface {
	AppliedMigrations(ctx context.Context) ([]int, error)
}

// T0 is the creation time of the suite's first job.
var T0 = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

var t0 = T0

// Run runs the whole suite against a backend.
func Run(t *testing.T, newDB NewDatabase) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, newDB NewDatabase)
	}{
		{"create, get and reopen", testCreateGetReopen},
		{"concurrent opens migrate once", testConcurrentOpens},
		{"concurrent creates of one name", testConcurrentCreate},
		{"not found", testNotFound},
		{"list jobs", testListJobs},
		{"request stop", testRequestStop},
		{"claims are exclusive across handles", testClaimIsExclusive},
		{"claimers racing for one job", testClaimRace},
		{"expired lease is taken over and the old holder fenced", testTakeover},
		{"a lease runs out on the store's clock", testLeaseRunsOut},
		{"a worker that restarts under its old id is fenced", testSameOwnerReclaim},
		{"release and finish end the lease", testReleaseAndFinish},
		{"concurrent writes of an old and a new holder", testConcurrentFencedWrites},
		{"tags", testTags},
		{"concurrent tag adds respect the limit", testConcurrentTags},
		{"workers registry", testWorkers},
		{"endpoint replicas", testReplicas},
		{"hosting resources shared by handles", testHosting},
		{"one replica secret for the fleet", testReplicaSecret},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newDB) })
	}
}

// NewJob returns a job row as the API would create it.
func NewJob(name string, created time.Time) *store.Job {
	return &store.Job{
		Name: name, ARN: "arn:aws:sagemaker:us-east-1:123456789012:automl-job/" + strings.ToLower(name),
		Request: json.RawMessage(`{"AutoMLJobName":"` + name + `"}`), Spec: json.RawMessage(`{"Name":"` + name + `"}`),
		Status: store.StatusInProgress, Secondary: "Starting", Created: created, Modified: created,
	}
}

func mustCreate(t *testing.T, s store.Store, names ...string) {
	t.Helper()
	for i, n := range names {
		if err := s.CreateJob(context.Background(), NewJob(n, t0.Add(time.Duration(i)*time.Second)), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func mustGet(t *testing.T, s store.Store, name string) *store.Job {
	t.Helper()
	j, err := s.GetJob(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func mustClaim(t *testing.T, s store.Store, owner string, d time.Duration) *store.Job {
	t.Helper()
	j, err := s.ClaimJob(context.Background(), owner, d)
	if err != nil || j == nil {
		t.Fatalf("claim by %s: %+v, %v", owner, j, err)
	}
	return j
}

// jsonEqual compares documents by value: PostgreSQL's jsonb does not keep the bytes.
func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func testCreateGetReopen(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	s := handle(t, open)
	j := NewJob("My-Job", t0)
	j.Deadline = t0.Add(time.Hour)
	j.Request = json.RawMessage(`{"AutoMLJobName":"My-Job","Tags":[{"Key":"team","Value":"nlp"}],"Nested":{"é":"ü","n":[1,2.5,null]}}`)
	if err := s.CreateJob(ctx, j, []store.Tag{{Key: "team", Value: "nlp"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateJob(ctx, NewJob("my-JOB", t0), []store.Tag{{Key: "x", Value: "y"}}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate name in other case: got %v, want ErrExists", err)
	}
	// The refused duplicate left no tags behind (its tags share the ARN of the existing job).
	tags, _, err := s.ListTags(ctx, j.ARN, "", 50)
	if err != nil || len(tags) != 1 || tags[0] != (store.Tag{Key: "team", Value: "nlp"}) {
		t.Fatalf("tags after refused duplicate = %v, %v", tags, err)
	}
	c := mustClaim(t, s, "w1", time.Minute)
	if c.Name != "My-Job" || c.LeaseOwner != "w1" || c.LeaseToken != 1 || c.Attempts != 1 || c.LeaseExpiry.IsZero() {
		t.Fatalf("claimed: %+v", c)
	}
	res := json.RawMessage(`{"CandidateName":"c"}`)
	if err := s.FinishJob(ctx, c.Lease(), store.FinalState{Status: store.StatusCompleted, Secondary: "Completed", Result: res, Ended: t0.Add(2 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := handle(t, open) // opening again runs the migrations again: they must be a no-op
	got := mustGet(t, s2, "MY-JOB")
	if got.Name != "My-Job" || got.ARN != j.ARN || got.Status != store.StatusCompleted || got.Secondary != "Completed" ||
		!got.Ended.Equal(t0.Add(2*time.Minute)) || !got.Created.Equal(t0) || !got.Modified.Equal(t0.Add(2*time.Minute)) ||
		!got.Deadline.Equal(t0.Add(time.Hour)) || !jsonEqual(got.Result, res) || !jsonEqual(got.Request, j.Request) ||
		!jsonEqual(got.Spec, j.Spec) || got.Progress != nil || got.Checkpoint != nil ||
		got.LeaseOwner != "" || !got.LeaseExpiry.IsZero() || got.LeaseToken != 1 || got.Attempts != 1 {
		t.Fatalf("after reopen: %+v", got)
	}
	tags, _, err = s2.ListTags(ctx, j.ARN, "", 50)
	if err != nil || len(tags) != 1 {
		t.Fatalf("tags after reopen = %v, %v", tags, err)
	}
	if m, ok := s2.(Migrator); !ok {
		t.Fatalf("%T does not report its migrations", s2)
	} else if v, err := m.AppliedMigrations(ctx); err != nil || len(v) == 0 || v[0] != 1 {
		t.Fatalf("applied migrations %v, %v", v, err)
	}
}

func testConcurrentOpens(t *testing.T, newDB NewDatabase) {
	open := newDB(t)
	const n = 6
	stores := make([]store.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = open() })
	}
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
		if errs[i] != nil {
			t.Fatalf("open %d of %d at once: %v", i, n, errs[i])
		}
	}
	var want []int
	for i, s := range stores {
		v, err := s.(Migrator).AppliedMigrations(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			want = v
			for k, x := range v {
				if x != k+1 {
					t.Fatalf("applied migrations %v: each version once, in order", v)
				}
			}
		} else if !slices.Equal(v, want) {
			t.Fatalf("handle %d sees migrations %v, handle 0 %v", i, v, want)
		}
	}
	// Every handle works on the one schema.
	mustCreate(t, stores[n-1], "after-concurrent-open")
	mustGet(t, stores[0], "after-concurrent-open")
}

func testConcurrentCreate(t *testing.T, newDB NewDatabase) {
	open := newDB(t)
	a, b := handle(t, open), handle(t, open)
	var (
		wg              sync.WaitGroup
		mu              sync.Mutex
		created, exists int
	)
	for i := range 16 {
		s := a
		if i%2 == 1 {
			s = b
		}
		name := "Race"
		if i%3 == 0 {
			name = "RACE"
		}
		wg.Go(func() {
			err := s.CreateJob(context.Background(), NewJob(name, t0), []store.Tag{{Key: fmt.Sprint("k", i), Value: "v"}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created++
			case errors.Is(err, store.ErrExists):
				exists++
			default:
				t.Errorf("create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if created != 1 || exists != 15 {
		t.Fatalf("created %d, refused %d; want 1 and 15", created, exists)
	}
	tags, _, err := a.ListTags(context.Background(), NewJob("race", t0).ARN, "", 50)
	if err != nil || len(tags) != 1 {
		t.Fatalf("tags of the one created job: %v, %v (the refused creates must leave none)", tags, err)
	}
}

func testNotFound(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	s := handle(t, newDB(t))
	if _, err := s.GetJob(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get of a missing job: %v, want ErrNotFound", err)
	}
	if _, err := s.RequestStop(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("stop of a missing job: %v, want ErrNotFound", err)
	}
	if j, err := s.ClaimJob(ctx, "w", time.Minute); err != nil || j != nil {
		t.Errorf("claim from an empty queue: %+v, %v; want nil, nil", j, err)
	}
	l := store.Lease{Job: "nope", Owner: "w", Token: 1}
	if _, err := s.RenewLease(ctx, l, time.Minute); !errors.Is(err, store.ErrFenced) {
		t.Errorf("renew on a missing job: %v, want ErrFenced", err)
	}
	if err := s.SetProgress(ctx, l, json.RawMessage(`{}`), t0); !errors.Is(err, store.ErrFenced) {
		t.Errorf("progress on a missing job: %v, want ErrFenced", err)
	}
	tags, more, err := s.ListTags(ctx, "arn:none", "", 10)
	if err != nil || more || len(tags) != 0 {
		t.Errorf("tags of an untagged resource: %v %v %v", tags, more, err)
	}
	if err := s.DeleteTags(ctx, "arn:none", []string{"a"}); err != nil {
		t.Errorf("delete of missing tags: %v", err)
	}
	if _, err := s.ListJobs(ctx, store.JobQuery{Limit: 0}); err == nil {
		t.Error("list with limit 0 succeeded")
	}
	if _, err := s.ListJobs(ctx, store.JobQuery{Limit: 1, SortBy: "Size"}); err == nil {
		t.Error("list with an unknown sort key succeeded")
	}
}

func testListJobs(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	s := handle(t, newDB(t))
	statuses := []string{store.StatusInProgress, store.StatusCompleted, store.StatusFailed}
	type row struct {
		name    string
		created time.Time
		status  string
	}
	var all []row
	// 300 jobs; creation times are deliberately not in name order, and some collide. Names mix
	// cases, digits, '-' and '_' so that an ordering by locale rather than by code point shows.
	for i := range 300 {
		name := fmt.Sprintf("Job-%03d", (i*7)%300)
		switch i % 5 {
		case 0:
			name = strings.ToLower(name) + "-x"
		case 1:
			name = strings.ReplaceAll(name, "-", "_")
		}
		created := t0.Add(time.Duration(i/2) * time.Second)
		j := NewJob(name, created)
		j.Status = statuses[i%3]
		j.Modified = created.Add(time.Duration(i%4) * time.Minute)
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
		{"name asc", store.JobQuery{}, nil, byName},
		{"name desc", store.JobQuery{Descending: true}, nil, func(a, b row) int { return -byName(a, b) }},
		{"name asc, contains", store.JobQuery{NameContains: "JOB-1"}, func(r row) bool { return strings.Contains(strings.ToLower(r.name), "job-1") }, byName},
		{"contains with a LIKE wildcard", store.JobQuery{NameContains: "_1"}, func(r row) bool { return strings.Contains(strings.ToLower(r.name), "_1") }, byName},
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
		{"modified window", store.JobQuery{ModifiedAfter: t0.Add(time.Minute), ModifiedBefore: t0.Add(3 * time.Minute)}, nil, byName},
	}
	// The modified window holds rows whose i%4 == 2 (modified = created + 2 min, created < 150 s).
	modified := map[string]bool{}
	for i, r := range all {
		if m := r.created.Add(time.Duration(i%4) * time.Minute); m.After(t0.Add(time.Minute)) && m.Before(t0.Add(3*time.Minute)) {
			modified[r.name] = true
		}
	}
	cases[len(cases)-1].filter = func(r row) bool { return modified[r.name] }
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
					if j.ARN == "" || j.Status == "" || j.Created.IsZero() || j.Request != nil {
						t.Fatalf("summary %+v: want name, ARN, status, times and no documents", j)
					}
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

func testRequestStop(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	s := handle(t, newDB(t))
	mustCreate(t, s, "running", "done")
	d := mustClaim(t, s, "w", time.Minute) // "done", created second, is claimed after "running"
	if d.Name != "running" {
		t.Fatalf("claimed %s first, want the oldest job", d.Name)
	}
	d = mustClaim(t, s, "w", time.Minute)
	if err := s.FinishJob(ctx, d.Lease(), store.FinalState{Status: store.StatusCompleted, Secondary: "Completed", Ended: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	j, err := s.RequestStop(ctx, "RUNNING", t0.Add(time.Minute))
	if err != nil || j.Status != store.StatusStopping || j.Secondary != "Stopping" || !j.StopRequested || !j.Modified.Equal(t0.Add(time.Minute)) {
		t.Fatalf("stop of a running job: %+v, %v", j, err)
	}
	j, err = s.RequestStop(ctx, "done", t0.Add(2*time.Hour))
	if err != nil || j.Status != store.StatusCompleted || j.StopRequested || !j.Modified.Equal(t0.Add(time.Hour)) {
		t.Fatalf("stop of a finished job must leave it unchanged: %+v, %v", j, err)
	}
}

func testClaimIsExclusive(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	handles := []store.Store{handle(t, open), handle(t, open)} // two "processes"
	const jobs = 40
	for i := range jobs {
		if err := handles[0].CreateJob(ctx, NewJob(fmt.Sprintf("job-%02d", i), t0.Add(time.Duration(i)*time.Second)), nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	for w := range 8 {
		s := handles[w%2]
		owner := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				j, err := s.ClaimJob(ctx, owner, time.Hour)
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
				if j.LeaseOwner != owner || j.LeaseToken != 1 || j.Attempts != 1 {
					t.Errorf("claim of %s by %s: owner %s token %d attempts %d", j.Name, owner, j.LeaseOwner, j.LeaseToken, j.Attempts)
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Fatalf("claimed %d jobs, want %d", len(claimed), jobs)
	}
	if j, err := handles[1].ClaimJob(ctx, "late", time.Hour); err != nil || j != nil {
		t.Fatalf("claim with every lease live: %+v, %v", j, err)
	}
}

// testClaimRace starts claimers on several handles at the same instant, round after round, each
// round on one new job: exactly one of them gets it, with the token of the first claim.
func testClaimRace(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	handles := []store.Store{handle(t, open), handle(t, open), handle(t, open), handle(t, open)}
	const rounds, claimers = 40, 8
	for r := range rounds {
		name := fmt.Sprintf("round-%02d", r)
		if err := handles[0].CreateJob(ctx, NewJob(name, t0.Add(time.Duration(r)*time.Second)), nil); err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			got   = make([]*store.Job, claimers)
			errs  = make([]error, claimers)
		)
		for c := range claimers {
			wg.Go(func() {
				<-start
				got[c], errs[c] = handles[c%len(handles)].ClaimJob(ctx, fmt.Sprintf("w%d", c), time.Hour)
			})
		}
		close(start)
		wg.Wait()
		var winners []string
		for c := range claimers {
			if errs[c] != nil {
				t.Fatalf("round %d, claimer %d: %v", r, c, errs[c])
			}
			if got[c] != nil {
				winners = append(winners, fmt.Sprintf("w%d (token %d)", c, got[c].LeaseToken))
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: the one job was claimed by %v", r, winners)
		}
		// The jobs of the previous rounds stay leased for an hour, so each round races for its own job only.
		j := mustGet(t, handles[0], name)
		if j.LeaseToken != 1 || j.Attempts != 1 {
			t.Fatalf("round %d: token %d, attempts %d after one claim", r, j.LeaseToken, j.Attempts)
		}
	}
}

// fencedWrites makes every write a lease holder can make and returns the errors by name.
func fencedWrites(s store.Store, l store.Lease) map[string]error {
	ctx := context.Background()
	_, renew := s.RenewLease(ctx, l, time.Hour)
	return map[string]error{
		"renew":      renew,
		"phase":      s.SetSecondaryStatus(ctx, l, "TrainingModels", t0.Add(time.Hour)),
		"progress":   s.SetProgress(ctx, l, json.RawMessage(`{"Step":99}`), t0),
		"checkpoint": s.SetCheckpoint(ctx, l, json.RawMessage(`{"Step":99}`)),
		"finish":     s.FinishJob(ctx, l, store.FinalState{Status: store.StatusFailed, Secondary: "Failed", Ended: t0}),
		"release":    s.ReleaseLease(ctx, l),
	}
}

func wantFenced(t *testing.T, who string, errs map[string]error) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(errs)) {
		if !errors.Is(errs[name], store.ErrFenced) {
			t.Errorf("%s by %s: %v, want ErrFenced", name, who, errs[name])
		}
	}
}

func testTakeover(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	a, b := handle(t, open), handle(t, open)
	mustCreate(t, a, "j")

	// A live lease is not taken.
	old := mustClaim(t, a, "w1", time.Hour)
	if j, err := b.ClaimJob(ctx, "w2", time.Hour); err != nil || j != nil {
		t.Fatalf("claim during a live lease: %+v, %v", j, err)
	}
	// The holder renews and records its work; then it stalls and its lease runs out (renewed to
	// zero length: it lapses at once, as if the heartbeats had stopped long ago).
	if stop, err := a.RenewLease(ctx, old.Lease(), time.Hour); err != nil || stop {
		t.Fatalf("renew: %v %v", stop, err)
	}
	if err := a.SetCheckpoint(ctx, old.Lease(), json.RawMessage(`{"Step":10,"Key":"ckpt/10"}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSecondaryStatus(ctx, old.Lease(), "TrainingModels", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RenewLease(ctx, old.Lease(), 0); err != nil {
		t.Fatal(err)
	}
	// A lease that ran out but was not taken is still its holder's (the token is current).
	if err := a.SetProgress(ctx, old.Lease(), json.RawMessage(`{"Step":11}`), t0); err != nil {
		t.Fatalf("write under a lapsed lease nobody took: %v", err)
	}

	// Another worker takes the job over with a higher token and sees where the first one got to.
	nu := mustClaim(t, b, "w2", time.Hour)
	if nu.LeaseToken <= old.LeaseToken || nu.LeaseOwner != "w2" || nu.Attempts != 2 {
		t.Fatalf("takeover: token %d (old %d), owner %s, attempts %d", nu.LeaseToken, old.LeaseToken, nu.LeaseOwner, nu.Attempts)
	}
	if !jsonEqual(nu.Checkpoint, json.RawMessage(`{"Step":10,"Key":"ckpt/10"}`)) || !jsonEqual(nu.Progress, json.RawMessage(`{"Step":11}`)) ||
		nu.Secondary != "TrainingModels" {
		t.Fatalf("the new holder sees checkpoint %s, progress %s, phase %s", nu.Checkpoint, nu.Progress, nu.Secondary)
	}
	if !nu.LeaseExpiry.After(time.Now().Add(50 * time.Minute)) {
		t.Fatalf("lease expiry %v, want about an hour from now", nu.LeaseExpiry)
	}

	// The old holder wakes up: every write it makes is refused, through either handle.
	wantFenced(t, "the old holder", fencedWrites(a, old.Lease()))
	wantFenced(t, "the old holder via another handle", fencedWrites(b, old.Lease()))
	// A forged lease with a token from the future is refused too.
	future := nu.Lease()
	future.Token++
	wantFenced(t, "a lease with a token never issued", fencedWrites(a, future))

	// The refused writes changed nothing; the new holder's go through.
	got := mustGet(t, a, "j")
	if got.LeaseOwner != "w2" || got.LeaseToken != nu.LeaseToken || got.Status != store.StatusInProgress ||
		!jsonEqual(got.Checkpoint, nu.Checkpoint) || !jsonEqual(got.Progress, nu.Progress) {
		t.Fatalf("after refused writes: %+v", got)
	}
	if err := b.SetCheckpoint(ctx, nu.Lease(), json.RawMessage(`{"Step":20}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.FinishJob(ctx, nu.Lease(), store.FinalState{Status: store.StatusCompleted, Secondary: "Completed", Ended: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	got = mustGet(t, a, "j")
	if got.Status != store.StatusCompleted || !jsonEqual(got.Checkpoint, json.RawMessage(`{"Step":20}`)) || got.LeaseOwner != "" {
		t.Fatalf("after the new holder finished: %+v", got)
	}
	// A finished job is no longer in the queue.
	if j, err := a.ClaimJob(ctx, "w3", time.Hour); err != nil || j != nil {
		t.Fatalf("claim of a finished job: %+v, %v", j, err)
	}
}

func testLeaseRunsOut(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	a, b := handle(t, open), handle(t, open)
	mustCreate(t, a, "j")
	const lease = 300 * time.Millisecond
	before := time.Now()
	old := mustClaim(t, a, "w1", lease)
	if d := time.Until(old.LeaseExpiry); d > lease {
		t.Fatalf("lease expires in %v, want at most %v", d, lease)
	}
	// The holder stops renewing; another worker polls until the lease has run out.
	var nu *store.Job
	for deadline := time.Now().Add(30 * time.Second); nu == nil; time.Sleep(20 * time.Millisecond) {
		var err error
		if nu, err = b.ClaimJob(ctx, "w2", time.Hour); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("a %v lease not taken over after 30 s", lease)
		}
	}
	if since := time.Since(before); since < lease {
		t.Fatalf("taken over %v after the claim, before the %v lease ran out", since, lease)
	}
	t.Logf("taken over after %v", time.Since(before))
	if nu.LeaseToken != old.LeaseToken+1 || nu.LeaseOwner != "w2" {
		t.Fatalf("takeover: %+v", nu)
	}
	wantFenced(t, "the holder whose lease ran out", fencedWrites(a, old.Lease()))
}

func testSameOwnerReclaim(t *testing.T, newDB NewDatabase) {
	s := handle(t, newDB(t))
	mustCreate(t, s, "j")
	first := mustClaim(t, s, "host-1", 0) // the process dies; restarted, it has the same id
	second := mustClaim(t, s, "host-1", time.Hour)
	if second.LeaseToken != first.LeaseToken+1 {
		t.Fatalf("tokens %d then %d", first.LeaseToken, second.LeaseToken)
	}
	wantFenced(t, "the first incarnation", fencedWrites(s, first.Lease()))
	if _, err := s.RenewLease(context.Background(), second.Lease(), time.Hour); err != nil {
		t.Fatalf("the second incarnation: %v", err)
	}
}

func testReleaseAndFinish(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	s := handle(t, newDB(t))
	mustCreate(t, s, "j")
	a := mustClaim(t, s, "w1", time.Hour)
	// A stop while running: the phase no longer changes the Stopping secondary status, and the
	// heartbeat learns of it.
	if _, err := s.RequestStop(ctx, "J", t0.Add(40*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSecondaryStatus(ctx, a.Lease(), "TrainingModels", t0.Add(50*time.Second)); err != nil {
		t.Fatal(err)
	}
	if stop, err := s.RenewLease(ctx, a.Lease(), time.Hour); err != nil || !stop {
		t.Fatalf("renew after a stop request: %v %v", stop, err)
	}
	got := mustGet(t, s, "j")
	if got.Status != store.StatusStopping || got.Secondary != "Stopping" || !got.StopRequested {
		t.Fatalf("after a stop request: %s/%s stop=%v", got.Status, got.Secondary, got.StopRequested)
	}
	// Released (a graceful shutdown), the job goes back to the queue; the claim is not counted.
	if err := s.ReleaseLease(ctx, a.Lease()); err != nil {
		t.Fatal(err)
	}
	got = mustGet(t, s, "j")
	if got.LeaseOwner != "" || !got.LeaseExpiry.IsZero() || got.Attempts != 0 {
		t.Fatalf("after release: %+v", got)
	}
	wantFenced(t, "a released lease", fencedWrites(s, a.Lease()))
	b := mustClaim(t, s, "w2", time.Hour)
	if b.Status != store.StatusStopping || b.Attempts != 1 || b.LeaseToken != a.LeaseToken+1 {
		t.Fatalf("claim after release: %+v", b)
	}
	f := store.FinalState{Status: store.StatusStopped, Secondary: "Stopped", FailureReason: "", Ended: t0.Add(time.Hour)}
	if err := s.FinishJob(ctx, b.Lease(), f); err != nil {
		t.Fatal(err)
	}
	wantFenced(t, "the lease of a finished job", fencedWrites(s, b.Lease()))
	got = mustGet(t, s, "j")
	if got.Status != store.StatusStopped || got.Secondary != "Stopped" || !got.Ended.Equal(f.Ended) || got.LeaseOwner != "" {
		t.Fatalf("after finish (and refused late writes): %+v", got)
	}
	if _, err := s.ClaimJob(ctx, "w3", -time.Second); err == nil {
		t.Fatal("a negative lease duration was accepted")
	}
}

func testConcurrentFencedWrites(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	a, b := handle(t, open), handle(t, open)
	mustCreate(t, a, "j")
	old := mustClaim(t, a, "old", 0)
	nu := mustClaim(t, b, "new", time.Hour)
	var (
		wg                     sync.WaitGroup
		mu                     sync.Mutex
		oldAccepted, newFailed int
	)
	for i := range 50 {
		wg.Go(func() {
			err := a.SetProgress(ctx, old.Lease(), json.RawMessage(fmt.Sprintf(`{"Step":%d,"By":"old"}`, i)), t0)
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, store.ErrFenced) {
				oldAccepted++
			}
		})
		wg.Go(func() {
			err := b.SetProgress(ctx, nu.Lease(), json.RawMessage(fmt.Sprintf(`{"Step":%d,"By":"new"}`, i)), t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				newFailed++
			}
		})
	}
	wg.Wait()
	if oldAccepted != 0 || newFailed != 0 {
		t.Fatalf("%d writes of the old holder not refused, %d of the new one failed", oldAccepted, newFailed)
	}
	var p struct{ By string }
	if err := json.Unmarshal(mustGet(t, a, "j").Progress, &p); err != nil || p.By != "new" {
		t.Fatalf("stored progress by %q, %v", p.By, err)
	}
}

func testTags(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	s := handle(t, newDB(t))
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
	// Keys order by code point ("B" < "a"), whatever the database's locale.
	other := arn + "-2"
	if err := s.AddTags(ctx, other, []store.Tag{{Key: "a", Value: ""}, {Key: "B", Value: "x"}, {Key: "_", Value: "y"}}, 50); err != nil {
		t.Fatal(err)
	}
	tags, more, err := s.ListTags(ctx, other, "", 50)
	if err != nil || more || !slices.Equal(tags, []store.Tag{{Key: "B", Value: "x"}, {Key: "_", Value: "y"}, {Key: "a", Value: ""}}) {
		t.Fatalf("tags of another resource: %v %v %v", tags, more, err)
	}
	tags, more, err = s.ListTags(ctx, arn, "", 2)
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

func testConcurrentTags(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	handles := []store.Store{handle(t, open), handle(t, open)}
	arn := "arn:aws:sagemaker:us-east-1:123456789012:automl-job/t"
	const writers, each, limit = 8, 10, 25
	var (
		wg sync.WaitGroup
		mu sync.Mutex
		ok int
	)
	for w := range writers {
		var tags []store.Tag
		for k := range each {
			tags = append(tags, store.Tag{Key: fmt.Sprintf("w%d-%d", w, k), Value: "v"})
		}
		wg.Go(func() {
			err := handles[w%2].AddTags(ctx, arn, tags, limit)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrTooManyTags):
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	tags, _, err := handles[0].ListTags(ctx, arn, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	// Only two writers' ten tags fit under 25: any more means two transactions each counted the
	// tags without seeing the other's.
	if ok != limit/each || len(tags) != ok*each {
		t.Fatalf("%d writers succeeded and %d tags are stored; want %d and %d", ok, len(tags), limit/each, limit/each*each)
	}
}

// testWorkers: workers register with their heartbeat, are listed most recent first with the jobs
// they hold a live lease on (seen from another handle), and are forgotten when they stop.
func testWorkers(t *testing.T, newDB NewDatabase) {
	ctx := context.Background()
	open := newDB(t)
	a, b := handle(t, open), handle(t, open)
	if ws, err := b.ListWorkers(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("workers of a new store: %+v, %v", ws, err)
	}
	started := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	if err := a.WorkerHeartbeat(ctx, "w1", "host-a", started); err != nil {
		t.Fatal(err)
	}
	if err := a.WorkerHeartbeat(ctx, "w2", "host-b", started); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, a, "j1", "j2", "j3")
	mustClaim(t, a, "w1", time.Hour)
	mustClaim(t, a, "w1", time.Hour)
	done := mustClaim(t, a, "w2", time.Hour)
	if err := a.FinishJob(ctx, done.Lease(), store.FinalState{Status: store.StatusCompleted, Secondary: "Completed", Ended: t0}); err != nil {
		t.Fatal(err)
	}
	ws, err := b.ListWorkers(ctx)
	if err != nil || len(ws) != 2 {
		t.Fatalf("workers: %+v, %v", ws, err)
	}
	// w2 beat last; it holds no job any more.
	if ws[0].ID != "w2" || ws[0].Host != "host-b" || len(ws[0].Jobs) != 0 || ws[1].ID != "w1" ||
		fmt.Sprint(ws[1].Jobs) != "[j1 j2]" || !ws[1].Started.Equal(started) || ws[1].LastHeartbeat.IsZero() ||
		ws[0].LastHeartbeat.Before(ws[1].LastHeartbeat) {
		t.Fatalf("workers: %+v", ws)
	}
	// Another beat of w1 puts it first, under the same registration.
	if err := a.WorkerHeartbeat(ctx, "w1", "host-a", started); err != nil {
		t.Fatal(err)
	}
	if ws, err = b.ListWorkers(ctx); err != nil || len(ws) != 2 || ws[0].ID != "w1" || !ws[0].Started.Equal(started) {
		t.Fatalf("workers after w1's beat: %+v, %v", ws, err)
	}
	if err := a.RemoveWorker(ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveWorker(ctx, "unknown"); err != nil {
		t.Fatal(err)
	}
	if ws, err = b.ListWorkers(ctx); err != nil || len(ws) != 1 || ws[0].ID != "w1" {
		t.Fatalf("workers after w2 stopped: %+v, %v", ws, err)
	}
}
