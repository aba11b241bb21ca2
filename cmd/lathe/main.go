// Command lathe is the Lathe server and its command-line client.
//
//	lathe serve                 the SageMaker-compatible server (control plane, runtime, S3) on one port
//	lathe worker                runs the jobs of API nodes sharing a PostgreSQL database, with no public API
//	lathe workers list          the processes that run jobs: id, host, jobs, last heartbeat
//	lathe credentials           the data dir's root keys as export lines for the aws CLI
//	lathe jobs ...              create, watch and stop fine-tuning jobs on a running server
//	lathe models ...            the base-model store (list, import, pull from the Hugging Face hub)
//	lathe finetune              a fine-tune on local files, without the server
//	lathe generate              text from a model, streamed
//	lathe bench ...             engine benchmarks (matmul, train, generate), one JSON line each
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "lathe",
		Short:         "Lathe: self-hosted LLM fine-tuning that speaks the SageMaker Autopilot API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), workerCommand(), workersCommand(), credentialsCommand(), jobsCommand(), modelsCommand())
	root.AddCommand(finetuneCommand(), generateCommand(), benchCommand(), auditCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "lathe:", err)
		os.Exit(1)
	}
}

// envOr returns the environment variable key, or def when it is unset or empty.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
