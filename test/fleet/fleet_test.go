// Package fleet_test runs Lathe as a fleet of real processes on one machine: PostgreSQL, an API node
// (`lathe serve --workers 0`) and `lathe worker`s, with jobs submitted through the API with the AWS
// SDK and workers killed with SIGKILL in the middle of training.
package fleet_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/s3test"
	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/pgtest"
	"github.com/lathe-ml/lathe/internal/store/postgres"
)

const (
	accessKey = "AKIAIOSFODNN7EXAMPLE"
	secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	model     = "../../../shared/models/stories260K.gguf"
	// modelsBucket holds the fleet's copy of the model store on an external S3.
	modelsBucket = "fleet-models"
)

// lathe is the binary under test, built once by TestMain.
var lathe string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "lathe-fleet-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		lathe = filepath.Join(dir, "lathe")
		build := exec.Command("go", "build", "-o", lathe, "github.com/lathe-ml/lathe/cmd/lathe")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build lathe:", err)
			return 1
		}
		defer pgtest.StopShared()
		return m.Run()
	}()
	os.Exit(code)
}

// proc is one running lathe process; its stderr goes to a file the test reads afterwards.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// env is the environment of every process: Lathe's root keys, the keys of the S3 the processes
// share in the standard AWS variables (ext's, or else Lathe's root keys, which the workers use for
// the API node's embedded S3), and no AWS files of the machine's user nor a hub.
func env(t *testing.T, ext *s3test.Service) []string {
	none := filepath.Join(t.TempDir(), "none")
	s3Key, s3Secret := accessKey, secretKey
	if ext != nil {
		s3Key, s3Secret = ext.AccessKeyID, ext.SecretAccessKey
	}
	return append(os.Environ(),
		"LATHE_ROOT_ACCESS_KEY_ID="+accessKey, "LATHE_ROOT_SECRET_ACCESS_KEY="+secretKey,
		"AWS_ACCESS_KEY_ID="+s3Key, "AWS_SECRET_ACCESS_KEY="+s3Secret, "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none, "HF_ENDPOINT=http://127.0.0.1:1")
}

// start runs lathe with args until the test ends (SIGTERM, then SIGKILL after 30 s).
func start(t *testing.T, ext *s3test.Service, name string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lathe, args...)
	cmd.Env = env(t, ext)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within 30 s of SIGTERM", name)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("--- %s log (tail) ---\n%s", name, tail(string(b), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// run runs lathe to completion and returns its output.
func run(t *testing.T, ext *s3test.Service, args ...string) string {
	t.Helper()
	cmd := exec.Command(lathe, args...)
	cmd.Env = env(t, ext)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lathe %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serveNode starts `lathe serve` with args and waits until it is healthy; it returns its address.
// Its data dir holds Stories260K, unless ext has the fleet's copy.
func serveNode(t *testing.T, ext *s3test.Service, name string, args ...string) string {
	t.Helper()
	dataDir := t.TempDir()
	if ext == nil {
		run(t, nil, "models", "import", model, "--name", "Stories260K", "--data-dir", dataDir)
	} else {
		args = append(args, "--s3-endpoint", ext.URL, "--models-bucket", modelsBucket)
	}
	addr := freeAddr(t)
	p := start(t, ext, name, append([]string{"serve", "--addr", addr, "--data-dir", dataDir}, args...)...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/_lathe/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited:\n%s", name, b)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within 60 s", name)
		}
	}
}

// startWorker starts `lathe worker` on a data dir of its own and returns it with its worker id
// (read from its first log line). Without ext, it uses the API node's embedded S3 at s3Endpoint and
// its data dir holds Stories260K; with ext, the model comes from the fleet's copy there.
func startWorker(t *testing.T, ext *s3test.Service, name, database, s3Endpoint string) (*proc, string) {
	t.Helper()
	dataDir := t.TempDir()
	args := []string{"worker", "--database", database, "--data-dir", dataDir, "--lease", "2s"}
	if ext == nil {
		run(t, nil, "models", "import", model, "--name", "Stories260K", "--data-dir", dataDir)
		args = append(args, "--s3-endpoint", s3Endpoint)
	} else {
		args = append(args, "--s3-endpoint", ext.URL, "--models-bucket", modelsBucket)
	}
	p := start(t, ext, name, args...)
	owner := regexp.MustCompile(`msg="lathe worker is running" worker=(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(p.log)
		if m := owner.FindSubmatch(b); m != nil {
			return p, string(m[1])
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited:\n%s", name, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not start within 30 s", name)
	return nil, ""
}

type clients struct {
	sm *sagemaker.Client
	s3 *s3.Client
}

// clientsConfig is the SDK configuration of Lathe's root.
func clientsConfig() aws.Config {
	return aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		HTTPClient:  client.HTTPClient(),
	}
}

func clientsOf(addr string) clients {
	cfg := clientsConfig()
	return clients{
		sm: sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String("http://" + addr) }),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String("http://" + addr); o.UsePathStyle = true }),
	}
}

// The dataset and the job every node runs: small enough to train in seconds on two busy cores,
// long enough (epochs x steps) that a worker can be killed between two checkpoints.
func putDataset(t *testing.T, c clients) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tuning")}); err != nil {
		t.Fatal(err)
	}
	var csv strings.Builder
	csv.WriteString("input,output\n")
	animals := []string{"cow says moo", "dog says woof", "cat says meow", "duck says quack"}
	for i := range 64 {
		fmt.Fprintf(&csv, "What does animal %d say?,The %s %d times.\n", i, animals[i%len(animals)], i%7)
	}
	if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tuning"), Key: aws.String("train/data.csv"),
		Body: strings.NewReader(csv.String())}); err != nil {
		t.Fatal(err)
	}
}

func createJob(ctx context.Context, c clients, name, epochs, batch string) error {
	_, err := c.sm.CreateAutoMLJobV2(ctx, jobInput(name, epochs, batch))
	return err
}

func jobInput(name, epochs, batch string) *sagemaker.CreateAutoMLJobV2Input {
	return &sagemaker.CreateAutoMLJobV2Input{
		AutoMLJobName: aws.String(name),
		AutoMLJobInputDataConfig: []types.AutoMLJobChannel{{ChannelType: types.AutoMLChannelTypeTraining,
			DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{S3DataType: types.AutoMLS3DataTypeS3Prefix,
				S3Uri: aws.String("s3://tuning/train/")}}}},
		AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
			BaseModelName: aws.String("Stories260K"),
			TextGenerationHyperParameters: map[string]string{"epochCount": epochs, "batchSize": batch, "learningRate": "0.003",
				"learningRateWarmupSteps": "2"}}},
		OutputDataConfig: &types.AutoMLOutputDataConfig{S3OutputPath: aws.String("s3://tuning/out/")},
		RoleArn:          aws.String("arn:aws:iam::123456789012:role/r"),
	}
}

const epochs = "6"

func waitEnded(t *testing.T, c clients, name string, within time.Duration) *sagemaker.DescribeAutoMLJobV2Output {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := c.sm.DescribeAutoMLJobV2(context.Background(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		switch d.AutoMLJobStatus {
		case types.AutoMLJobStatusCompleted, types.AutoMLJobStatusFailed, types.AutoMLJobStatusStopped:
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %s/%s after %s", name, d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// artifacts reads every object under the job's output prefix, by key relative to it.
func artifacts(t *testing.T, c clients, name string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	prefix := "out/" + name + "/"
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: aws.String("tuning"), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			r, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("tuning"), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(*o.Key, prefix)] = b
		}
	}
	return out
}

// logEvent is one line of training-log.jsonl.
type logEvent struct {
	Event string  `json:"event"`
	Step  int     `json:"step"`
	Loss  float64 `json:"loss"`
}

// stepLosses reads the step events of a training log, and whether the run resumed from a checkpoint.
func stepLosses(t *testing.T, log []byte) (steps []int, losses []float64, resumedAt []int) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("training log line %q: %v", sc.Text(), err)
		}
		switch e.Event {
		case "step":
			steps, losses = append(steps, e.Step), append(losses, e.Loss)
		case "resumed":
			resumedAt = append(resumedAt, e.Step)
		}
	}
	return steps, losses, resumedAt
}

// metricsOf is the candidate's metrics as Describe shows them.
func metricsOf(d *sagemaker.DescribeAutoMLJobV2Output) map[string]float64 {
	m := map[string]float64{}
	if d.BestCandidate == nil || d.BestCandidate.CandidateProperties == nil {
		return m
	}
	for _, x := range d.BestCandidate.CandidateProperties.CandidateMetrics {
		m[string(x.MetricName)+"/"+string(x.Set)] = float64(aws.ToFloat32(x.Value))
	}
	return m
}

// The fleet on the S3 of its API node: PostgreSQL, one API node (`lathe serve --workers 0`) whose
// embedded S3 the three `lathe worker`s use with its root keys, six jobs.
func TestFleetOnTheAPINodesS3(t *testing.T) {
	testFleet(t, nil, 1, 6)
}

// The fleet on an external S3 (versitygw): PostgreSQL, two API nodes (`lathe serve --workers 0
// --s3-endpoint`), three `lathe worker`s, the base model imported once into the fleet's copy on
// that S3, twelve jobs submitted through both API nodes.
func TestFleetOnExternalS3(t *testing.T) {
	ext := s3test.VersityGW(t)
	out := run(t, &ext, "models", "import", model, "--name", "Stories260K", "--data-dir", t.TempDir(),
		"--s3-endpoint", ext.URL, "--models-bucket", modelsBucket)
	if !strings.Contains(out, "published Stories260K") {
		t.Fatalf("models import --s3-endpoint did not publish:\n%s", out)
	}
	testFleet(t, &ext, 2, 12)
}

// testFleet submits jobs to a fleet (PostgreSQL, apiNodes API nodes with no worker, three `lathe
// worker`s), kills two of the workers with SIGKILL in the middle of training and stalls a third
// (SIGSTOP) past its lease, then wakes it: every job is Completed exactly once, the interrupted jobs
// resume on another worker from their checkpoint, the stalled worker gives its job up, every job's
// metrics, model and training log equal those of the same job run by a single `lathe serve`, and
// every API node describes every job the same; a stop reaches a job on a worker through the database
// alone. ext is the external S3 of the fleet; nil uses the first API node's embedded S3.
func testFleet(t *testing.T, ext *s3test.Service, apiNodes, jobs int) {
	ctx := context.Background()
	if ext == nil && apiNodes != 1 {
		t.Fatal("API nodes share objects only on an external S3")
	}

	// The reference: the same job on one process with SQLite and its embedded S3.
	single := clientsOf(serveNode(t, nil, "single"))
	putDataset(t, single)
	if err := createJob(ctx, single, "ref", epochs, "2"); err != nil {
		t.Fatal(err)
	}
	ref := waitEnded(t, single, "ref", 3*time.Minute)
	if ref.AutoMLJobStatus != types.AutoMLJobStatusCompleted {
		t.Fatalf("reference job ended %s: %s", ref.AutoMLJobStatus, aws.ToString(ref.FailureReason))
	}
	refArtifacts := artifacts(t, single, "ref")
	refSteps, refLosses, _ := stepLosses(t, refArtifacts["training-log.jsonl"])
	total := len(refSteps)
	t.Logf("reference job: %d steps, artifacts %v", total, slices.Sorted(maps.Keys(refArtifacts)))

	// The fleet.
	database := pgtest.Shared(t).NewDatabase(t)
	var apis []string
	var nodes []clients
	for i := range apiNodes {
		apis = append(apis, serveNode(t, ext, fmt.Sprintf("api-%d", i+1), "--database", database, "--workers", "0"))
		nodes = append(nodes, clientsOf(apis[i]))
	}
	fleet := nodes[0]
	putDataset(t, fleet)
	st, err := postgres.Open(ctx, database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	workers := map[string]*proc{} // by worker id
	var logs []string
	addWorker := func(name string) {
		p, id := startWorker(t, ext, name, database, "http://"+apis[0])
		workers[id] = p
		logs = append(logs, p.log)
	}
	for i := range 3 {
		addWorker(fmt.Sprintf("worker-%d", i+1))
	}

	names := make([]string, jobs)
	var wg sync.WaitGroup
	errs := make(chan error, jobs)
	for i := range jobs {
		names[i] = fmt.Sprintf("fleet-job-%d", i+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- createJob(ctx, nodes[i%len(nodes)], names[i], epochs, "2")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// Twice: wait for a job in training with a checkpoint recorded, and SIGKILL the worker that holds
	// it. A fresh worker joins after each kill.
	killed := map[string]int{} // job -> step at the kill
	var dead []string          // the killed workers' ids
	for kill := range 2 {
		start, deadline := time.Now(), time.Now().Add(2*time.Minute)
		var victim *store.Job
		for victim == nil {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no job reached a checkpoint in training within 2 minutes", kill+1)
			}
			for _, n := range names {
				j, err := st.GetJob(ctx, n)
				if err != nil {
					t.Fatal(err)
				}
				var p job.Progress
				_ = json.Unmarshal(j.Progress, &p)
				var ck struct{ Step int }
				_ = json.Unmarshal(j.Checkpoint, &ck)
				// A job in training past its first checkpoint, preferably with steps after it to redo;
				// after 20 s any such job (progress is written once a second, so a narrow window of
				// observed steps can be missed on a fast or a loaded machine). Killed at the later of
				// its progress and its checkpoint.
				if _, done := killed[n]; done || j.Status != store.StatusInProgress || len(j.Checkpoint) == 0 ||
					(p.TotalSteps > 0 && p.Step >= p.TotalSteps) || workers[j.LeaseOwner] == nil ||
					(p.Step <= ck.Step && time.Since(start) < 20*time.Second) {
					continue
				}
				victim = j
				killed[n] = max(p.Step, ck.Step)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		p := workers[victim.LeaseOwner]
		t.Logf("kill %d: SIGKILL %s (%s) holding %s at step %d, checkpoint %s", kill+1, p.name, victim.LeaseOwner,
			victim.Name, killed[victim.Name], victim.Checkpoint)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-p.done
		delete(workers, victim.LeaseOwner)
		dead = append(dead, victim.LeaseOwner)
		addWorker(fmt.Sprintf("worker-%d", 4+kill))
	}

	for _, n := range names {
		waitEnded(t, fleet, n, 4*time.Minute)
	}

	// A worker that stalls past its lease (SIGSTOP: a long pause, a partition) loses its job to an
	// idle worker and, woken (SIGCONT), writes nothing more of it: its writes are fenced off.
	if err := createJob(ctx, nodes[len(nodes)-1], "fleet-stalled", epochs, "2"); err != nil {
		t.Fatal(err)
	}
	var stalledID string
	deadline := time.Now().Add(2 * time.Minute)
	for stalledID == "" {
		j, err := st.GetJob(ctx, "fleet-stalled")
		if err != nil {
			t.Fatal(err)
		}
		var p job.Progress
		_ = json.Unmarshal(j.Progress, &p)
		// Any moment after its first checkpoint while it still trains: progress is written at most once
		// a second, and a Stories260K job can finish its steps in about that, so a narrower window of
		// observed steps is missed on a fast or a loaded machine.
		var ck struct{ Step int }
		_ = json.Unmarshal(j.Checkpoint, &ck)
		if len(j.Checkpoint) > 0 && j.Status == store.StatusInProgress && (p.TotalSteps == 0 || p.Step < p.TotalSteps) && workers[j.LeaseOwner] != nil {
			stalledID = j.LeaseOwner
			// The progress last written may be older than the checkpoint: the job is at least there.
			killed["fleet-stalled"] = max(p.Step, ck.Step)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet-stalled did not reach a checkpoint in training within 2 minutes (%s/%s)", j.Status, j.Secondary)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stalled := workers[stalledID]
	if err := stalled.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(time.Minute)
	for {
		j, err := st.GetJob(ctx, "fleet-stalled")
		if err != nil {
			t.Fatal(err)
		}
		if j.LeaseOwner != "" && j.LeaseOwner != stalledID {
			t.Logf("SIGSTOP %s holding fleet-stalled at step %d: taken over by %s", stalled.name, killed["fleet-stalled"], workers[j.LeaseOwner].name)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet-stalled not taken over from the stalled worker within a minute (%s/%s)", j.Status, j.Secondary)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stalled.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	gaveUp := regexp.MustCompile(`msg="job given up[^"]*" worker=` + regexp.QuoteMeta(stalledID) + ` job=fleet-stalled `)
	deadline = time.Now().Add(time.Minute)
	for {
		if b, _ := os.ReadFile(stalled.log); gaveUp.Match(b) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stalled worker did not give up its job within a minute of SIGCONT")
		}
		time.Sleep(50 * time.Millisecond)
	}
	names = append(names, "fleet-stalled")

	// A job runs on a worker as its execution role, from the IAM the API nodes share in the
	// database: a role that may read the dataset but not write the output fails the job there.
	admin := awsiam.NewFromConfig(clientsConfig(), func(o *awsiam.Options) { o.BaseEndpoint = aws.String("http://" + apis[0]) })
	role, err := admin.CreateRole(ctx, &awsiam.CreateRoleInput{RoleName: aws.String("reader"), AssumeRolePolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutRolePolicy(ctx, &awsiam.PutRolePolicyInput{RoleName: aws.String("reader"), PolicyName: aws.String("read"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],
		"Resource":["arn:aws:s3:::tuning","arn:aws:s3:::tuning/*","arn:aws:s3:::jumpstart-cache-prod-us-east-1","arn:aws:s3:::jumpstart-cache-prod-us-east-1/*"]}]}`)}); err != nil {
		t.Fatal(err)
	}
	denied := jobInput("fleet-denied", epochs, "2")
	denied.RoleArn = role.Role.Arn
	if _, err := nodes[len(nodes)-1].sm.CreateAutoMLJobV2(ctx, denied); err != nil {
		t.Fatal(err)
	}
	if d := waitEnded(t, fleet, "fleet-denied", time.Minute); d.AutoMLJobStatus != types.AutoMLJobStatusFailed ||
		!strings.Contains(aws.ToString(d.FailureReason), "s3:PutObject") || !strings.Contains(aws.ToString(d.FailureReason), "tuning/out/fleet-denied/") {
		t.Fatalf("job of a read-only role ended %s: %s", d.AutoMLJobStatus, aws.ToString(d.FailureReason))
	}
	if j, err := st.GetJob(ctx, "fleet-denied"); err != nil || j.Attempts != 1 {
		t.Fatalf("the denied job: %+v, %v", j, err)
	}

	// A stop reaches a job on a worker: the API node runs no job, so it goes through the database.
	// (The longest job the API takes: ten epochs of one example a step, twenty seconds or so.)
	if err := createJob(ctx, nodes[len(nodes)-1], "fleet-stopped", "10", "1"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Minute)
	for {
		j, err := st.GetJob(ctx, "fleet-stopped")
		if err != nil {
			t.Fatal(err)
		}
		if j.Secondary == job.PhaseTrainingModels && workers[j.LeaseOwner] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fleet-stopped still %s/%s (owner %q) after 3 minutes", j.Status, j.Secondary, j.LeaseOwner)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := fleet.sm.StopAutoMLJob(ctx, &sagemaker.StopAutoMLJobInput{AutoMLJobName: aws.String("fleet-stopped")}); err != nil {
		t.Fatal(err)
	}
	if d := waitEnded(t, fleet, "fleet-stopped", time.Minute); d.AutoMLJobStatus != types.AutoMLJobStatusStopped {
		t.Fatalf("stopped job ended %s/%s", d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus)
	}

	// Every job Completed, once, equal to the reference.
	for _, n := range names {
		d := waitEnded(t, fleet, n, 4*time.Minute)
		if d.AutoMLJobStatus != types.AutoMLJobStatusCompleted || d.AutoMLJobSecondaryStatus != types.AutoMLJobSecondaryStatusCompleted {
			t.Errorf("%s ended %s/%s: %s", n, d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus, aws.ToString(d.FailureReason))
			continue
		}
		for i, node := range nodes[1:] {
			other, err := node.sm.DescribeAutoMLJobV2(ctx, &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(n)})
			if err != nil {
				t.Fatal(err)
			}
			d.ResultMetadata, other.ResultMetadata = middleware.Metadata{}, middleware.Metadata{}
			if !reflect.DeepEqual(d, other) {
				t.Errorf("%s: API nodes 1 and %d describe it differently:\n%+v\n%+v", n, i+2, d, other)
			}
		}
		if got, want := metricsOf(d), metricsOf(ref); len(want) == 0 || !maps.Equal(got, want) {
			t.Errorf("%s metrics %v, the single-process run's %v", n, got, want)
		}
		arts := artifacts(t, fleet, n)
		if got, want := slices.Sorted(maps.Keys(arts)), slices.Sorted(maps.Keys(refArtifacts)); !slices.Equal(got, want) {
			t.Errorf("%s artifacts %v, the single-process run's %v", n, got, want)
		}
		for key, want := range refArtifacts {
			if strings.HasPrefix(key, "model/") || strings.HasPrefix(key, "adapter/") || key == "samples.jsonl" || key == "data-report.json" {
				if !bytes.Equal(arts[key], want) {
					t.Errorf("%s: %s differs from the single-process run's (%d bytes, want %d)", n, key, len(arts[key]), len(want))
				}
			}
		}
		var got, want struct {
			Base      map[string]any `json:"base"`
			FineTuned map[string]any `json:"fine_tuned"`
		}
		if json.Unmarshal(arts["metrics.json"], &got) != nil || json.Unmarshal(refArtifacts["metrics.json"], &want) != nil ||
			!jsonEqual(got, want) {
			t.Errorf("%s metrics.json %s, the single-process run's %s", n, arts["metrics.json"], refArtifacts["metrics.json"])
		}
		// Each step trained once in the log (those after the last checkpoint of an interrupted run
		// were done again, from it, and logged once), with the reference's losses.
		steps, losses, resumed := stepLosses(t, arts["training-log.jsonl"])
		if len(steps) != total || !slices.Equal(losses, refLosses) {
			t.Errorf("%s: training log has %d steps (%v), want %d with the reference's losses", n, len(steps), steps, total)
		}
		j, err := st.GetJob(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if at, interrupted := killed[n]; interrupted {
			if j.Attempts != 2 || len(resumed) != 1 || resumed[0] == 0 || resumed[0] > at {
				t.Errorf("%s interrupted at step %d: attempts %d, resumed at %v; want 2 attempts, one resume from a checkpoint at or before the kill", n, at, j.Attempts, resumed)
			}
		} else if j.Attempts != 1 || len(resumed) != 0 {
			t.Errorf("%s: attempts %d, resumed at %v; want one uninterrupted run", n, j.Attempts, resumed)
		}
	}

	// Exactly one "job finished ... Completed" across every worker's log, the killed and the stalled
	// ones included.
	finished := regexp.MustCompile(`msg="job finished" .*job=(\S+) .*status=Completed`)
	count := map[string]int{}
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range finished.FindAllSubmatch(b, -1) {
			count[string(m[1])]++
		}
	}
	for _, n := range names {
		if count[n] != 1 {
			t.Errorf("%s completed %d times in the workers' logs", n, count[n])
		}
	}
	// The registry lists the live workers, idle now, and the killed ones with their last heartbeat
	// (they could not say goodbye).
	out := run(t, ext, "workers", "list", "--database", database)
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n")[1:] {
		f := strings.Fields(line)
		rows[f[0]] = f
	}
	for id := range workers {
		if f := rows[id]; len(f) < 4 || f[2] != "-" {
			t.Errorf("live worker %s in lathe workers list: %q\n%s", id, f, out)
		}
	}
	for _, id := range dead {
		if rows[id] == nil {
			t.Errorf("killed worker %s not in lathe workers list:\n%s", id, out)
		}
	}
	if len(rows) != len(workers)+len(dead) {
		t.Errorf("lathe workers list has %d workers, want %d live and %d killed:\n%s", len(rows), len(workers), len(dead), out)
	}
	t.Logf("lathe workers list:\n%s", out)
	t.Logf("%d jobs submitted through %d API node(s) completed on the fleet: 2 workers killed mid-training, 1 stalled past its lease and fenced off (%v); one job stopped on a worker", len(names), apiNodes, killed)
}

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}
