package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/server"
)

func credentialsCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "credentials",
		Short: "Print the data dir's root credentials as export lines for the aws CLI and SDKs",
		Long: `Print the root credentials of a data dir (LATHE_ROOT_ACCESS_KEY_ID / LATHE_ROOT_SECRET_ACCESS_KEY when
set, else the keys lathe serve keeps in <data dir>/credentials.json) as shell export lines:

  eval "$(lathe credentials --data-dir ./lathe-data)"
  aws s3 ls`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys, err := server.LoadRootKeys(dataDir, false)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n", keys.AccessKeyID, keys.SecretAccessKey)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "the server's data dir (env LATHE_DATA_DIR)")
	return cmd
}

// announceRootKeys tells the person starting the server which keys sign requests and where they are
// kept, on every start: the keys belong to the data dir, so a restart (or the quickstart's data dir
// served again) uses the same ones.
func announceRootKeys(keys server.RootKeys, dataDir string) {
	w := os.Stderr
	switch {
	case keys.Generated:
		fmt.Fprintf(w, "Generated root credentials for this data dir (kept in %s; every lathe serve over it uses them):\n"+
			"  export AWS_ACCESS_KEY_ID=%s\n  export AWS_SECRET_ACCESS_KEY=%s\n", keys.Path, keys.AccessKeyID, keys.SecretAccessKey)
		return
	case keys.FromEnv && keys.Saved:
		fmt.Fprintf(w, "Root credentials: access key %s from %s, now kept in %s for later starts.\n",
			keys.AccessKeyID, server.EnvRootAccessKeyID, keys.Path)
	case keys.FromEnv && keys.Differ:
		fmt.Fprintf(w, "Root credentials: access key %s from %s; it overrides the data dir's own keys in %s for this run only.\n",
			keys.AccessKeyID, server.EnvRootAccessKeyID, keys.Path)
	case keys.FromEnv:
		fmt.Fprintf(w, "Root credentials: access key %s from %s (the data dir's keys).\n", keys.AccessKeyID, server.EnvRootAccessKeyID)
	default:
		fmt.Fprintf(w, "Root credentials: access key %s, kept in %s.\n", keys.AccessKeyID, keys.Path)
	}
	fmt.Fprintf(w, "  For the aws CLI and SDKs: eval \"$(lathe credentials --data-dir %s)\"\n", dataDir)
}
