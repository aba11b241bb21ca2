// Package iamtest is the conformance suite every iam.Store backend passes: documents by kind and
// key, ordered listing, rollback on error, and writes that do not lose each other's updates.
package iamtest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/lathe-ml/lathe/internal/iam"
)

// Opener opens a fresh, empty store.
type Opener func(t *testing.T) iam.Store

// Run runs the suite.
func Run(t *testing.T, open Opener) {
	t.Run("documents", func(t *testing.T) { documents(t, open(t)) })
	t.Run("rollback", func(t *testing.T) { rollback(t, open(t)) })
	t.Run("concurrent updates", func(t *testing.T) { concurrent(t, open(t)) })
}

func documents(t *testing.T, s iam.Store) {
	ctx := context.Background()
	err := s.Update(ctx, func(tx iam.Tx) error {
		for _, k := range []string{"carol", "alice", "bob"} {
			if err := tx.Put("user", k, []byte(`{"Name":"`+k+`"}`)); err != nil {
				return err
			}
		}
		if err := tx.Put("role", "alice", []byte(`{"role":true}`)); err != nil {
			return err
		}
		return tx.Put("user", "bob", []byte(`{"Name":"bob","v":2}`)) // replaces
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx iam.Tx) error {
		got, err := tx.Get("user", "bob")
		if err != nil || string(got) != `{"Name":"bob","v":2}` {
			return fmt.Errorf("get bob: %s %v", got, err)
		}
		if _, err := tx.Get("user", "dave"); !errors.Is(err, iam.ErrNotFound) {
			return fmt.Errorf("get dave: %v, want ErrNotFound", err)
		}
		list, err := tx.List("user")
		if err != nil || len(list) != 3 || string(list[0]) != `{"Name":"alice"}` || string(list[2]) != `{"Name":"carol"}` {
			return fmt.Errorf("list: %q %v", list, err)
		}
		roles, err := tx.List("role")
		if err != nil || len(roles) != 1 {
			return fmt.Errorf("roles: %q %v", roles, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx iam.Tx) error {
		if err := tx.Delete("user", "alice"); err != nil {
			return err
		}
		return tx.Delete("user", "nobody") // missing: not an error
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx iam.Tx) error {
		if _, err := tx.Get("user", "alice"); !errors.Is(err, iam.ErrNotFound) {
			return fmt.Errorf("deleted alice: %v", err)
		}
		if _, err := tx.Get("role", "alice"); err != nil {
			return fmt.Errorf("the role of the same key: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func rollback(t *testing.T, s iam.Store) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx iam.Tx) error {
		if err := tx.Put("user", "ghost", []byte(`{}`)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the function's error", err)
	}
	if err := s.View(ctx, func(tx iam.Tx) error {
		_, err := tx.Get("user", "ghost")
		if !errors.Is(err, iam.ErrNotFound) {
			return fmt.Errorf("a rolled-back put is visible: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// concurrent increments one counter from several goroutines, each a read-modify-write in its own
// Update: a store that let two of them read the same value would lose an increment.
func concurrent(t *testing.T, s iam.Store) {
	ctx := context.Background()
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				err := s.Update(ctx, func(tx iam.Tx) error {
					n := 0
					b, err := tx.Get("counter", "c")
					if err == nil {
						n, _ = strconv.Atoi(string(b))
					} else if !errors.Is(err, iam.ErrNotFound) {
						return err
					}
					return tx.Put("counter", "c", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.View(ctx, func(tx iam.Tx) error {
		b, err := tx.Get("counter", "c")
		if err != nil || string(b) != strconv.Itoa(workers*each) {
			return fmt.Errorf("counter %s %v, want %d", b, err, workers*each)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
