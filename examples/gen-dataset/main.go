// Command gen-dataset writes the example instruction dataset in examples/data: short requests for a
// story about an animal, a thing and a feeling, each answered with a story that follows a fixed pattern.
// The pattern is simple enough that Stories260K (a 260K-parameter TinyStories model) learns it in a few
// minutes on a CPU, and rich enough that ROUGE shows whether it did. It is deterministic: the same rows
// every time.
//
//	go run ./examples/gen-dataset -out examples/data
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
)

var (
	names    = []string{"Tom", "Lily", "Max", "Sue", "Ben", "Mia", "Sam", "Anna", "Tim", "Lucy", "Jack", "Kitty", "Bob", "Daisy", "Leo", "Rose"}
	animals  = []string{"cat", "dog", "bird", "fish", "bunny", "frog", "bear", "duck", "lion", "mouse", "pig", "cow"}
	things   = []string{"ball", "kite", "box", "hat", "cake", "tree", "car", "boat", "book", "flower", "toy", "drum"}
	colors   = []string{"red", "blue", "green", "yellow", "big", "small", "pink", "shiny"}
	feelings = []string{"happy", "sad", "scared", "proud", "sleepy", "excited"}
	places   = []string{"park", "garden", "house", "forest", "beach", "school"}
)

func main() {
	out := flag.String("out", "examples/data", "output directory")
	rows := flag.Int("rows", 1000, "number of rows")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	path := filepath.Join(*out, "train.csv")
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	w := csv.NewWriter(f)
	if err := w.Write([]string{"input", "output"}); err != nil {
		log.Fatal(err)
	}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for range *rows {
		name, animal, thing, color, feeling, place := pick(names), pick(animals), pick(things), pick(colors), pick(feelings), pick(places)
		input := fmt.Sprintf("Write a story about a %s named %s who finds a %s %s in the %s and feels %s.", animal, name, color, thing, place, feeling)
		output := fmt.Sprintf("Once upon a time, there was a %s named %s. One day, %s went to the %s and found a %s %s. %s felt very %s. %s played with the %s %s all day.",
			animal, name, name, place, color, thing, name, feeling, name, color, thing)
		if err := w.Write([]string{input, output}); err != nil {
			log.Fatal(err)
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", path)
}
