// Command testhub is the end-to-end script's Hugging Face hub: it writes tiny random models under the
// repositories of catalog names (Falcon-7B's layout as tiiuae/falcon-7b-instruct and tiiuae/falcon-7b,
// Flan-T5's as google/flan-t5-large) into -root, serves them on a free loopback port, prints the URL
// on stdout, and serves until killed. Point `lathe serve` at it with HF_ENDPOINT.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/lathe-ml/lathe/internal/hubtest"
)

func main() {
	root := flag.String("root", "", "folder for the repositories (created)")
	shared := flag.String("shared", "../shared", "the shared folder with models/vocab/ggml-vocab-falcon.gguf")
	t5Tokenizer := flag.String("t5-tokenizer", "llm/tokenizer/testdata/unigram_t5like.tokenizer.json", "a T5 tokenizer.json")
	flag.Parse()
	if *root == "" {
		log.Fatal("testhub: -root is required")
	}
	falconVocab := filepath.Join(*shared, "models", "vocab", "ggml-vocab-falcon.gguf")
	for i, repo := range []string{"tiiuae/falcon-7b-instruct", "tiiuae/falcon-7b"} {
		if err := hubtest.WriteDecoder(filepath.Join(*root, repo), hubtest.Falcon7BConfig, falconVocab, uint64(i+1)); err != nil {
			log.Fatalf("testhub: %s: %v", repo, err)
		}
	}
	if err := hubtest.WriteT5(filepath.Join(*root, "google", "flan-t5-large"), *t5Tokenizer, 3); err != nil {
		log.Fatalf("testhub: flan-t5: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "http://%s\n", ln.Addr())
	log.Fatal(http.Serve(ln, hubtest.Hub{Root: *root}))
}
