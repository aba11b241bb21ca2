package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/store"
	"github.com/lathe-ml/lathe/internal/store/storeopen"
)

// workersCommand is `lathe workers`: the fleet's registry in the metadata store.
func workersCommand() *cobra.Command {
	var dataDir, database string
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "The processes that run jobs: lathe serve with --workers 1 or more, and lathe worker",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the data dir of a single lathe serve (its SQLite database) (env LATHE_DATA_DIR)")
	cmd.PersistentFlags().StringVar(&database, "database", os.Getenv("LATHE_DATABASE"), storeopen.Usage+" (env LATHE_DATABASE)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the workers: id, host, the jobs each holds, and when each last sent a heartbeat",
		Long: `List the workers registered in the metadata store: id (the owner in job leases), host, the jobs
each holds a live lease on, the endpoint replicas placed on it (endpoint/variant/n and their state),
and how long ago it last sent a heartbeat. A worker heartbeats every third of its lease whether it runs a job or not; one that stops cleanly leaves the list, one that
died stays (its heartbeat ageing) for a day.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := storeopen.Open(cmd.Context(), database, dataDir)
			if err != nil {
				return fmt.Errorf("open metadata store %s: %w", storeopen.Describe(database, dataDir), err)
			}
			defer st.Close()
			ws, err := st.ListWorkers(cmd.Context())
			if err != nil {
				return err
			}
			rs, err := st.ListReplicas(cmd.Context())
			if err != nil {
				return err
			}
			replicas := map[string][]string{} // endpoint replicas by worker
			for _, r := range rs {
				if r.Worker != "" {
					replicas[r.Worker] = append(replicas[r.Worker], r.ID+"("+r.State+")")
				}
			}
			return printWorkers(cmd.OutOrStdout(), ws, replicas, time.Now())
		},
	}
	cmd.AddCommand(list)
	return cmd
}

// printWorkers writes the table of workers; ages are relative to now.
func printWorkers(w io.Writer, ws []store.WorkerInfo, replicas map[string][]string, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tJOBS\tREPLICAS\tLAST HEARTBEAT\tUP")
	for _, x := range ws {
		jobs := strings.Join(x.Jobs, ",")
		if jobs == "" {
			jobs = "-"
		}
		reps := strings.Join(replicas[x.ID], ",")
		if reps == "" {
			reps = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\n", x.ID, x.Host, jobs, reps, age(now.Sub(x.LastHeartbeat)), age(x.LastHeartbeat.Sub(x.Started)))
	}
	return tw.Flush()
}

// age rounds a duration for a table: 0.4s, 12s, 3m5s, 2h10m0s.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}
