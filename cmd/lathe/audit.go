package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/audit"
)

// The audit log rotates at 64 MiB and keeps the ten newest rotated files (with the current one,
// about 700 MiB).
const (
	auditMaxSize = 64 << 20
	auditKeep    = 10
)

func auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit trail (one JSON line per request, in <data dir>/audit/)"}
	var dataDir string
	var lines int
	var follow bool
	tail := &cobra.Command{
		Use:   "tail",
		Short: "Print the last lines of the audit log; -f keeps printing new ones (across rotations)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return auditTail(cmd.Context(), cmd.OutOrStdout(), filepath.Join(dataDir, "audit"), lines, follow, time.Second)
		},
	}
	tail.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the server's data dir (env LATHE_DATA_DIR)")
	tail.Flags().IntVarP(&lines, "lines", "n", 10, "how many of the last lines to print")
	tail.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing lines as they are written")
	cmd.AddCommand(tail)
	return cmd
}

// auditTail prints the last n lines of dir's audit.log and, with follow, every line written after
// them until ctx ends, reopening the log when the server rotates it (a new file under the name).
func auditTail(ctx context.Context, out io.Writer, dir string, n int, follow bool, poll time.Duration) error {
	path := filepath.Join(dir, audit.File)
	f, err := os.Open(path)
	for errors.Is(err, fs.ErrNotExist) && follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		f, err = os.Open(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no audit log in %s (has lathe serve run with this --data-dir?)", dir)
	}
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	// The last n lines: the log is read once; lines are short (a few hundred bytes).
	var last []string
	r := bufio.NewReader(f)
	var partial string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			partial = line
			break
		}
		last = append(last, line)
		if len(last) > n {
			last = last[1:]
		}
	}
	for _, l := range last {
		if _, err := io.WriteString(out, l); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	for {
		line, err := r.ReadString('\n')
		if err == nil {
			if _, err := io.WriteString(out, partial+line); err != nil {
				return err
			}
			partial = ""
			continue
		}
		partial += line
		// At the end: wait, and switch to the new file if the log was rotated.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
		cur, err1 := f.Stat()
		now, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && !os.SameFile(cur, now) {
			// Finish the old file first: lines written before the rename.
			rest, _ := io.ReadAll(r)
			if _, err := out.Write(append([]byte(partial), rest...)); err != nil {
				return err
			}
			partial = ""
			// Several rotations may have passed since the last poll: print the rotated files
			// that came after the one just finished, then go on with the current log.
			// The current log is opened first: should it be rotated meanwhile, it is then read
			// through nf, not printed twice.
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			next, err := nf.Stat()
			if err != nil {
				nf.Close()
				continue
			}
			if err := printRotatedBetween(out, dir, cur, next); err != nil {
				nf.Close()
				return err
			}
			f.Close()
			f, r = nf, bufio.NewReader(nf)
		}
	}
}

// printRotatedBetween prints the rotated logs of dir newer than done and older than next.
func printRotatedBetween(out io.Writer, dir string, done, next os.FileInfo) error {
	names, err := audit.Rotated(dir)
	if err != nil {
		return err
	}
	found := false
	for _, name := range names {
		p := filepath.Join(dir, name)
		if !found {
			if fi, err := os.Stat(p); err == nil && os.SameFile(fi, done) {
				found = true
			}
			continue
		}
		if fi, err := os.Stat(p); err == nil && os.SameFile(fi, next) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue // removed by the server's retention meanwhile
		}
		if _, err := out.Write(b); err != nil {
			return err
		}
	}
	return nil
}
