package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/modelstore"
)

// runModels runs `lathe models ARGS...` and returns what it printed.
func runModels(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := modelsCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return strings.Join(strings.Fields(out.String()), " "), err // table columns as single spaces
}

func TestModelsImportListRemove(t *testing.T) {
	dir := t.TempDir()
	steps := []struct {
		args    []string
		want    []string // substrings of the output
		notWant []string
		wantErr string
	}{
		{[]string{"list", "--data-dir", dir}, []string{"Stories260K - llama not downloaded fine-tune, serve ggml-org/models/tinyllamas/stories260K.gguf"}, nil, ""},
		{[]string{"import", "../../../shared/models/stories260K.gguf", "--name", "Stories260K", "--data-dir", dir},
			[]string{"imported Stories260K: gguf, llama, 1 file, 1.2 MB", "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"}, []string{"warning"}, ""},
		{[]string{"list", "--data-dir", dir}, []string{"Stories260K gguf llama 1.2 MB fine-tune, serve", "shared/models/stories260K.gguf"}, nil, ""},
		{[]string{"import", "../../../shared/models/stories260K.gguf", "--name", "Stories260K", "--data-dir", dir}, nil, nil, `run "lathe models rm Stories260K" first`},
		{[]string{"import", "../../../shared/models/stories260K.gguf", "--data-dir", dir}, nil, nil, `required flag(s) "name" not set`},
		{[]string{"import", "../../../shared/models/stories260K.gguf", "--name", "Falcon7B", "--data-dir", dir},
			[]string{"warning: the catalog's Falcon7B is a falcon model, but this one is llama"}, nil, ""},
		{[]string{"pull", "NoSuchModel", "--data-dir", dir}, nil, nil, "NoSuchModel is not a catalog model"},
		{[]string{"pull", "Stories260K", "--data-dir", dir}, []string{"Stories260K is already in the store"}, nil, ""},
		{[]string{"rm", "Stories260K", "--data-dir", dir}, []string{"removed Stories260K"}, nil, ""},
		{[]string{"rm", "Stories260K", "--data-dir", dir}, nil, nil, "model not found"},
		{[]string{"list", "--data-dir", dir}, []string{"Stories260K - llama not downloaded"}, []string{"Stories260K gguf"}, ""},
	}
	for _, s := range steps {
		out, err := runModels(t, s.args...)
		name := strings.Join(s.args[:len(s.args)-2], " ")
		if s.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), s.wantErr) {
				t.Errorf("lathe models %s: error %v, want one containing %q", name, err, s.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("lathe models %s: %v", name, err)
			continue
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("lathe models %s printed\n%s\nwithout %q", name, out, w)
			}
		}
		for _, w := range s.notWant {
			if strings.Contains(out, w) {
				t.Errorf("lathe models %s printed\n%s\nwith %q", name, out, w)
			}
		}
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 1185376: "1.2 MB", 269_060_552: "269.1 MB", 3_400_000_000: "3.4 GB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// Every row says what the model can do: a family the engine does not run reads "nothing: no bert
// engine", not a plain "not downloaded" that invites a pull; and pull refuses such a catalog entry.
func TestModelsSayWhatEachCanDo(t *testing.T) {
	bert := catalog.Model{Name: "BertBase", Architecture: "bert", HubRepo: "google-bert/bert-base-uncased"}
	stories, _ := catalog.Lookup("Stories260K")
	var out bytes.Buffer
	err := printModels(&out, []modelstore.Entry{{Name: "MyBert", Format: modelstore.FormatGGUF, Architecture: "bert", Source: modelstore.Source{Path: "/models/bert.gguf"}}},
		[]catalog.Model{stories, bert})
	got := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{
		"NAME FORMAT ARCHITECTURE SIZE CAN SOURCE",
		"MyBert gguf bert 0 B nothing: no bert engine /models/bert.gguf",
		"Stories260K - llama not downloaded fine-tune, serve ggml-org/models/tinyllamas/stories260K.gguf",
		"BertBase - bert not downloaded nothing: no bert engine google-bert/bert-base-uncased",
	} {
		if err != nil || !strings.Contains(got, want) {
			t.Errorf("lathe models list printed\n%s\nwithout %q (%v)", out.String(), want, err)
		}
	}
	if err := checkRunnable(bert); err == nil || !strings.HasPrefix(err.Error(), "BertBase is a bert model, which the engine cannot run yet (it runs ") ||
		!strings.HasSuffix(err.Error(), "): not pulling it") {
		t.Errorf("pull of a bert catalog entry: %v", err)
	}
	for _, m := range catalog.All() {
		if err := checkRunnable(m); err != nil {
			t.Errorf("catalog model %s: %v", m.Name, err)
		}
	}
}
