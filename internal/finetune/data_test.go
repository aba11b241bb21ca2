package finetune

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/dataset"
	"github.com/lathe-ml/lathe/internal/job"
)

// TestExecuteRefusesBadDatasets runs jobs on datasets a user gets wrong and checks that each fails in
// AnalyzingData, before any training, with an error (the job's FailureReason) that says what to fix.
func TestExecuteRefusesBadDatasets(t *testing.T) {
	env := newEnv(t).withStories(t)
	good := pairsCSV(t, patternRows(20))
	longRows := make([][2]string, 20)
	for i := range longRows {
		longRows[i] = [2]string{fmt.Sprintf("Tell story number %d.", i), strings.Repeat("The cat sat on the big red mat and then it ran to the park. ", 60)}
	}
	tooMany := make([][2]string, 10_001)
	for i := range tooMany {
		tooMany[i] = [2]string{fmt.Sprint(i), "y"}
	}
	type numberRow struct {
		Input  string `parquet:"input"`
		Output int64  `parquet:"output"`
	}
	type pair struct {
		Input  string `parquet:"input"`
		Output string `parquet:"output"`
	}
	manyBad := []byte("input,output\n")
	for i := 0; i < 12; i++ {
		manyBad = append(manyBad, fmt.Sprintf("question %d,\n", i)...)
	}

	type file struct {
		key  string
		data []byte
	}
	for _, c := range []struct {
		name        string
		files       []file
		contentType string // the training channel's; CSV when empty
		validation  []file // a validation channel, when not nil
		want        []string
	}{
		{name: "wrong columns", files: []file{{"a.csv", csvFile(t, []string{"prompt", "completion"}, [][]string{{"hi", "there"}})}},
			want: []string{"a.csv", `extra column "prompt"`, `no "input" column`, `no "output" column`, "exactly the columns input and output"}},
		{name: "extra column", files: []file{{"a.csv", csvFile(t, []string{"input", "output", "label"}, [][]string{{"hi", "there", "x"}})}},
			want: []string{"a.csv line 1", `extra column "label"`}},
		{name: "capitalised column names", files: []file{{"a.csv", csvFile(t, []string{"Input", "Output"}, [][]string{{"hi", "there"}})}},
			want: []string{`column "Input" must be named "input"`, "case-sensitive"}},
		{name: "empty file", files: []file{{"a.csv", nil}},
			want: []string{"a.csv", "is empty", `header row "input,output"`}},
		{name: "header only", files: []file{{"a.csv", []byte("input,output\n")}},
			want: []string{"a.csv", "no data rows"}},
		{name: "broken quoting", files: []file{{"a.csv", []byte("input,output\n\"unterminated,quote\nsecond,row\n")}},
			want: []string{"a.csv line 2", "never closed"}},
		{name: "unquoted comma", files: []file{{"a.csv", []byte("input,output\nhi,there\nwhat is 1,000 plus 1,1001\n")}},
			want: []string{"a.csv row 2", "has 3 fields but the header has 2", "double quotes"}},
		{name: "invalid UTF-8", files: []file{{"a.csv", []byte("input,output\nhello,world\nab\xff\xfe,cd\n")}},
			want: []string{"a.csv row 2", `column "input" is not valid UTF-8`, "save the file as UTF-8"}},
		{name: "UTF-16", files: []file{{"a.csv", []byte("\xff\xfei\x00n\x00")}},
			want: []string{"a.csv", "UTF-16", "save it as UTF-8"}},
		{name: "empty value", files: []file{{"a.csv", []byte("input,output\nhello,world\nhi,\n")}},
			want: []string{"a.csv row 2", `column "output" is empty`}},
		{name: "many problems", files: []file{{"a.csv", manyBad}},
			want: []string{"a.csv row 1", "a.csv row 5", "and 7 more problems"}},
		{name: "many problems in a deep folder", files: []file{{strings.Repeat("exports/", 13) + "a.csv", manyBad}},
			want: []string{"a.csv row 1", "more problems"}},
		{name: "problems in two files", files: []file{{"a.csv", good}, {"b.csv", []byte("input,output\nhi,\n")}},
			want: []string{"b.csv row 1", `column "output" is empty`}},
		{name: "parquet number column", contentType: dataset.ContentTypeParquet,
			files: []file{{"a.parquet", parquetFile(t, []numberRow{{"one", 1}, {"two", 2}})}},
			want:  []string{"a.parquet", `column "output" has type INT64`, "must be strings"}},
		{name: "CSV in a Parquet channel", contentType: dataset.ContentTypeParquet, files: []file{{"a.csv", good}},
			want: []string{"a.csv", "is not a Parquet file", dataset.ContentTypeCSV}},
		{name: "Parquet in a CSV channel", files: []file{{"a.parquet", parquetFile(t, []pair{{"a", "b"}, {"c", "d"}})}},
			want: []string{"a.parquet", "is a Parquet file", dataset.ContentTypeParquet}},
		{name: "no objects", files: nil,
			want: []string{"no objects under this prefix", "upload the dataset"}},
		{name: "one row", files: []file{{"a.csv", []byte("input,output\nhi,there\n")}},
			want: []string{"1 valid row", "at least 2"}},
		{name: "too many rows", files: []file{{"a.csv", pairsCSV(t, tooMany)}},
			want: []string{"10,001 rows", "Stories260K accepts at most 10,000", "remove 1 rows"}},
		{name: "too many rows across both channels", files: []file{{"a.csv", pairsCSV(t, tooMany[:9000])}},
			validation: []file{{"v.csv", pairsCSV(t, tooMany[9000:])}},
			want:       []string{"10,001 rows across the training and validation channels"}},
		{name: "rows longer than the context", files: []file{{"a.csv", pairsCSV(t, longRows)}},
			want: []string{"20 of 20 rows (100%) are longer than the base model's context of 512 tokens", "more than 60%", "shorten the inputs and outputs"}},
		{name: "bad validation channel", files: []file{{"a.csv", good}}, validation: []file{{"v.csv", []byte("input,output\n")}},
			want: []string{"validation", "v.csv", "no data rows"}},
		{name: "empty validation channel", files: []file{{"a.csv", good}}, validation: []file{},
			want: []string{"validation", "no objects under this prefix"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := strings.ReplaceAll(c.name, " ", "-")
			s := spec(name, "bad/"+name+"/train/", nil)
			for _, f := range c.files {
				env.put(t, "bad/"+name+"/train/"+f.key, f.data)
			}
			if c.contentType != "" {
				s.Channels[0].ContentType = c.contentType
			}
			if c.validation != nil {
				for _, f := range c.validation {
					env.put(t, "bad/"+name+"/validation/"+f.key, f.data)
				}
				s.Channels = append(s.Channels, job.Channel{Type: "validation", ContentType: dataset.ContentTypeCSV, S3URI: uri("bad/" + name + "/validation/")})
				s.ValidationFraction = 0
			}
			rec := &recorder{}
			_, err := env.executor(t, "").Execute(context.Background(), s, rec)
			if err == nil {
				t.Fatal("Execute succeeded")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			if len(err.Error()) > 1024 {
				t.Errorf("error is %d bytes; a FailureReason holds 1024", len(err.Error()))
			}
			if !slices.Equal(rec.phases, []string{job.PhaseAnalyzingData}) {
				t.Errorf("phases %v: the job should fail in AnalyzingData", rec.phases)
			}
		})
	}
}

// TestExecuteRefusesBadHyperParameters checks the values the control plane should already have
// refused, as the executor sees them when a job comes from elsewhere (the CLI).
func TestExecuteRefusesBadHyperParameters(t *testing.T) {
	env := newEnv(t).withStories(t)
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(20)))
	for _, c := range []struct {
		key, value string
		want       string
	}{
		{"epochCount", "0", "epochCount must be an integer from 1 to 10"},
		{"epochCount", "two", "epochCount must be an integer from 1 to 10"},
		{"batchSize", "65", "batchSize must be an integer from 1 to 64"},
		{"learningRate", "2", "learningRate must be a number in (0, 1]"},
		{"learningRate", "-0.1", "learningRate must be a number in (0, 1]"},
		{"learningRate", "fast", "learningRate must be a number in (0, 1]"},
		{"learningRate", "NaN", "learningRate must be a number in (0, 1]"},
		{"learningRateWarmupSteps", "251", "learningRateWarmupSteps must be an integer from 0 to 250"},
		{"dropout", "0.1", `unknown hyperparameter "dropout"`},
	} {
		t.Run(c.key+"="+c.value, func(t *testing.T) {
			_, err := env.executor(t, "").Execute(context.Background(), spec("hp", "train/", map[string]string{c.key: c.value}), &recorder{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Execute returned %v, want an error saying %q", err, c.want)
			}
		})
	}
}

func TestResolveHyperParameters(t *testing.T) {
	for _, c := range []struct {
		name   string
		params int64
		given  map[string]string
		want   HyperParameters
	}{
		{"tiny model defaults", 260_000, nil,
			HyperParameters{Epochs: 3, BatchSize: 8, LearningRate: 1e-3, WarmupSteps: -1, Method: "full", Schedule: "cosine", GradClip: 1, Seed: 42}},
		{"small model defaults", 135_000_000, nil,
			HyperParameters{Epochs: 3, BatchSize: 8, LearningRate: 5e-5, WarmupSteps: -1, Method: "full", Schedule: "cosine", GradClip: 1, Seed: 42}},
		{"large model trains LoRA", 1_100_000_000, nil,
			HyperParameters{Epochs: 3, BatchSize: 4, LearningRate: 2e-4, WarmupSteps: -1, Method: "lora", LoRARank: 16, LoRAAlpha: 32, Schedule: "cosine", GradClip: 1, Seed: 42}},
		{"the request's values win", 260_000, map[string]string{"epochCount": "10", "batchSize": "1", "learningRate": "0.5", "learningRateWarmupSteps": "0"},
			HyperParameters{Epochs: 10, BatchSize: 1, LearningRate: 0.5, WarmupSteps: 0, Method: "full", Schedule: "cosine", GradClip: 1, Seed: 42}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolveHyperParameters(c.params, c.given)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
		})
	}
	hp := HyperParameters{WarmupSteps: -1}
	for total, want := range map[int]int{9: 0, 100: 10, 5000: 250} {
		if got := hp.warmup(total); got != want {
			t.Errorf("default warmup over %d steps = %d, want %d (10%%, at most 250)", total, got, want)
		}
	}
}

// TestExecuteReadsParquetAndValidationChannels runs jobs on the other ways a dataset may come: a
// Parquet training channel split by ValidationFraction, and a validation channel used as is.
func TestExecuteReadsParquetAndValidationChannels(t *testing.T) {
	env := newEnv(t).withStories(t)
	type pair struct {
		Input  string `parquet:"input"`
		Output string `parquet:"output"`
	}
	rows := patternRows(100)
	pq := make([]pair, len(rows))
	for i, r := range rows {
		pq[i] = pair{r[0], r[1]}
	}
	env.put(t, "parquet/train/a.parquet", parquetFile(t, pq[:60]))
	env.put(t, "parquet/train/b.parquet", parquetFile(t, pq[60:]))
	env.put(t, "channels/train/a.csv", pairsCSV(t, rows[:80]))
	env.put(t, "channels/validation/a.csv", pairsCSV(t, rows[80:]))

	parquetSpec := spec("parquet", "parquet/train/", nil)
	parquetSpec.Channels[0].ContentType = dataset.ContentTypeParquet
	channelSpec := spec("channels", "channels/train/", nil)
	channelSpec.Channels = append(channelSpec.Channels, job.Channel{Type: "validation", ContentType: dataset.ContentTypeCSV, S3URI: uri("channels/validation/")})
	channelSpec.ValidationFraction = 0

	// The 60% truncation rule is about the whole dataset: 7 long rows of 10 in the training channel
	// and 10 short ones in the validation channel are 35% truncated, which trains.
	long := slices.Clone(rows[:10])
	for i := range 7 {
		long[i][1] = strings.Repeat(long[i][1]+" ", 60)
	}
	env.put(t, "long/train/a.csv", pairsCSV(t, long))
	env.put(t, "long/validation/a.csv", pairsCSV(t, rows[10:20]))
	longSpec := spec("long", "long/train/", nil)
	longSpec.Channels = append(longSpec.Channels, job.Channel{Type: "validation", ContentType: dataset.ContentTypeCSV, S3URI: uri("long/validation/")})
	longSpec.ValidationFraction = 0

	// A CSV as spreadsheets and scripts write them: a BOM, CRLF line ends, quoted values with commas,
	// quotes and line breaks; a gzip-compressed second file; and the folder marker the S3 console makes.
	quirky := slices.Clone(rows[:40])
	for i := range quirky {
		switch i % 3 {
		case 0:
			quirky[i][1] = strings.Replace(quirky[i][1], ".", `, said "hi".`, 1)
		case 1:
			quirky[i][1] = strings.Replace(quirky[i][1], ". ", ".\n", 1)
		}
	}
	first := bytes.ReplaceAll(pairsCSV(t, quirky[:25]), []byte("\n"), []byte("\r\n"))
	env.put(t, "quirky/train/", nil)
	env.put(t, "quirky/train/a.csv", append([]byte("\xef\xbb\xbf"), first...))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(pairsCSV(t, quirky[25:]))
	_ = zw.Close()
	env.put(t, "quirky/train/b.csv.gz", gz.Bytes())
	quirkySpec := spec("quirky", "quirky/train/", nil)

	for _, c := range []struct {
		spec                  job.Spec
		trainRows, validation int
		validationInputs      []string // when the validation set is known
		truncated             int
	}{
		{parquetSpec, 80, 20, nil, 0},
		{channelSpec, 80, 20, inputs(rows[80:]), 0},
		{longSpec, 10, 10, inputs(rows[10:20]), 7},
		{quirkySpec, 32, 8, nil, 0},
	} {
		t.Run(c.spec.Name, func(t *testing.T) {
			res, err := env.executor(t, "").Execute(context.Background(), c.spec, &recorder{})
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if len(res.Metrics) != 7 {
				t.Errorf("%d metrics, want 7", len(res.Metrics))
			}
			out := "output/" + c.spec.Name + "/"
			var dr struct {
				TrainingRows   int            `json:"training_rows"`
				ValidationRows int            `json:"validation_rows"`
				Training       dataset.Report `json:"training"`
				Files          map[string]int `json:"files"`
			}
			if err := json.Unmarshal(env.get(t, out+"data-report.json"), &dr); err != nil {
				t.Fatal(err)
			}
			if dr.TrainingRows != c.trainRows || dr.ValidationRows != c.validation {
				t.Errorf("data report: %d training and %d validation rows, want %d and %d", dr.TrainingRows, dr.ValidationRows, c.trainRows, c.validation)
			}
			if dr.Training.TruncatedRows != c.truncated {
				t.Errorf("data report: %d truncated training rows, want %d", dr.Training.TruncatedRows, c.truncated)
			}
			if c.spec.Name == "quirky" && (len(dr.Files) != 2 || dr.Files[uri("quirky/train/a.csv")] != 25 || dr.Files[uri("quirky/train/b.csv.gz")] != 15) {
				t.Errorf("data report files %v, want 25 rows from a.csv and 15 from b.csv.gz (and no folder marker)", dr.Files)
			}
			refs := map[string]string{}
			for _, r := range append(quirky, rows...) {
				if _, ok := refs[r[0]]; !ok {
					refs[r[0]] = r[1] // quirky first: the quirky job's outputs
				}
			}
			var got []string
			for _, l := range lines(env.get(t, out+"samples.jsonl")) {
				var s Sample
				if err := json.Unmarshal([]byte(l), &s); err != nil {
					t.Fatal(err)
				}
				got = append(got, s.Input)
				if c.spec.Name == "quirky" && s.Reference != refs[s.Input] {
					t.Errorf("reference %q, want the dataset's output %q", s.Reference, refs[s.Input])
				}
			}
			if c.validationInputs != nil {
				if !slices.Equal(got, c.validationInputs) {
					t.Errorf("samples are not the validation channel's rows:\n got %q\nwant %q", got, c.validationInputs)
				}
			}
		})
	}
}

func inputs(rows [][2]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r[0])
	}
	return out
}

// TestExecuteBaseModelMissing runs a job whose base model is not in the store while the hub cannot
// be reached: the job fails with what to run instead.
func TestExecuteBaseModelMissing(t *testing.T) {
	env := newEnv(t) // an empty model store
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(20)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	t.Setenv("HF_ENDPOINT", closed)
	t.Setenv("HF_TOKEN", "")

	for _, c := range []struct {
		model string
		want  []string
	}{
		{"Stories260K", []string{"Stories260K", "lathe models import", "--name Stories260K", closed}},
		{"my-own-model", []string{"my-own-model", "lathe models import", "--name my-own-model"}},
	} {
		t.Run(c.model, func(t *testing.T) {
			s := spec("missing", "train/", nil)
			s.BaseModel = c.model
			_, err := env.executor(t, "").Execute(context.Background(), s, &recorder{})
			if err == nil {
				t.Fatal("Execute succeeded without a base model")
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestExecutePullsMissingBaseModel runs a job whose catalog base model is not in the store, with
// HF_ENDPOINT naming a hub-shaped server on 127.0.0.1 that has it: the job downloads it (reporting the
// download in AnalyzingData), keeps it in the store, and trains.
func TestExecutePullsMissingBaseModel(t *testing.T) {
	model, err := os.ReadFile(storiesPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(model)
	entry, _ := catalog.Lookup("Stories260K")
	const commit = "0123456789abcdef0123456789abcdef01234567"
	var mu sync.Mutex
	var unknown []string
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/models/" + entry.HubRepo + "/revision/main":
			_ = json.NewEncoder(w).Encode(map[string]string{"sha": commit})
		case "/api/models/" + entry.HubRepo + "/tree/" + commit + "/" + path.Dir(entry.HubFile):
			_ = json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": entry.HubFile, "size": len(model),
				"oid": "not-checked-for-lfs", "lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(model)}}})
		case "/" + entry.HubRepo + "/resolve/" + commit + "/" + entry.HubFile:
			w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:])+`"`)
			http.ServeContent(w, r, path.Base(entry.HubFile), time.Time{}, bytes.NewReader(model))
		default:
			mu.Lock()
			unknown = append(unknown, r.Method+" "+r.URL.String())
			mu.Unlock()
			w.Header().Set("X-Error-Code", "EntryNotFound")
			http.Error(w, "not found", http.StatusNotFound)
		}
	}))
	defer hub.Close()
	t.Setenv("HF_ENDPOINT", hub.URL)
	t.Setenv("HF_TOKEN", "")

	env := newEnv(t) // an empty model store
	env.put(t, "train/a.csv", pairsCSV(t, patternRows(40)))
	rec := &recorder{}
	_, err = env.executor(t, "").Execute(context.Background(), spec("pull", "train/", nil), rec)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Fatalf("Execute: %v (requests the test hub did not know: %v)", err, unknown)
	}
	stored, err := env.models.Get("Stories260K")
	if err != nil {
		t.Fatalf("the pulled model is not in the store: %v", err)
	}
	if len(stored.Files) != 1 || stored.Files[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("stored files %+v, want the GGUF with sha256 %x", stored.Files, sum)
	}
	downloading := 0
	for _, p := range rec.progress {
		if p.Phase == job.PhaseAnalyzingData && strings.Contains(p.Message, "downloading base model Stories260K") {
			downloading++
		}
	}
	if downloading == 0 {
		t.Errorf("no download progress was reported in AnalyzingData: %+v", rec.progress)
	}
}
