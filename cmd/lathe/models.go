package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/catalog"
	"github.com/lathe-ml/lathe/internal/modelstore"
	"github.com/lathe-ml/lathe/internal/modelstore/s3models"
)

// modelsCommand is `lathe models`: the base-model store in <data dir>/models. It works on the
// folder directly, so it runs whether or not a server is using the same data dir.
func modelsCommand() *cobra.Command {
	var dataDir string
	var sh sharedFlags
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Base models: list the store and the catalog, import a GGUF file or Hugging Face directory, pull from the Hugging Face hub",
		Long: `Base models: list the store and the catalog, import a GGUF file or Hugging Face directory, pull from the Hugging Face hub.

With --s3-endpoint (the external S3 that "lathe serve --s3-endpoint" uses, with the standard AWS
credentials), import and pull also publish the model under s3://BUCKET/` + s3models.Prefix + `NAME/, where every
Lathe process sharing that S3 finds it and caches it in its own data dir; list shows those models
too, and rm removes the shared copy as well.`,
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", defaultDataDir(), "Lathe's data dir; models live in its models/ folder ($LATHE_DATA_DIR)")
	cmd.PersistentFlags().StringVar(&sh.s3Endpoint, "s3-endpoint", os.Getenv("LATHE_S3_ENDPOINT"), "the external S3 whose models every process shares (env LATHE_S3_ENDPOINT)")
	cmd.PersistentFlags().StringVar(&sh.bucket, "models-bucket", defaultModelsBucket(), modelsBucketUsage)
	cmd.AddCommand(modelsListCommand(&dataDir, &sh), modelsImportCommand(&dataDir, &sh), modelsPullCommand(&dataDir, &sh), modelsRemoveCommand(&dataDir, &sh))
	return cmd
}

// sharedFlags name the fleet's copy of the model store on an external S3.
type sharedFlags struct{ s3Endpoint, bucket string }

func (f *sharedFlags) open(ctx context.Context, store *modelstore.Store) (*s3models.Shared, error) {
	return sharedModelsFor(ctx, store, f.s3Endpoint, f.bucket)
}

// publish uploads a model of the local store to the shared copy, when there is one.
func publish(ctx context.Context, w io.Writer, shared *s3models.Shared, name string) error {
	if shared == nil {
		return nil
	}
	if _, err := shared.Publish(ctx, name); err != nil {
		return err
	}
	fmt.Fprintf(w, "published %s to %s for every process sharing this S3\n", name, shared.URI(name, ""))
	return nil
}

func modelsListCommand(dataDir *string, sh *sharedFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the models in the store, then the catalog models not downloaded yet, with what each can do",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := modelstore.OpenDataDir(*dataDir)
			if err != nil {
				return err
			}
			entries, err := store.List()
			if err != nil {
				return err
			}
			shared, err := sh.open(cmd.Context(), store)
			if err != nil {
				return err
			}
			if shared != nil {
				// The fleet's models that this data dir has not cached yet are as usable as its own.
				remote, err := shared.List(cmd.Context())
				if err != nil {
					return err
				}
				have := map[string]bool{}
				for _, e := range entries {
					have[e.Name] = true
				}
				for _, e := range remote {
					if !have[e.Name] {
						entries = append(entries, e)
					}
				}
				slices.SortFunc(entries, func(a, b modelstore.Entry) int { return strings.Compare(a.Name, b.Name) })
			}
			return printModels(cmd.OutOrStdout(), entries, catalog.All())
		},
	}
}

// printModels writes the store's models, then the catalog's models that are not in the store, each
// with what Lathe can do with it (CAN), so that "not downloaded" never hides "cannot run".
func printModels(w io.Writer, entries []modelstore.Entry, cat []catalog.Model) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tFORMAT\tARCHITECTURE\tSIZE\tCAN\tSOURCE")
	stored := map[string]bool{}
	for _, e := range entries {
		stored[e.Name] = true
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Format, e.Architecture, formatBytes(e.Size()), canDo(e.Architecture), e.Source)
	}
	for _, m := range cat {
		if stored[m.Name] {
			continue
		}
		src := m.HubRepo
		if m.HubFile != "" {
			src += "/" + m.HubFile
		}
		fmt.Fprintf(tw, "%s\t-\t%s\tnot downloaded\t%s\t%s\n", m.Name, m.Architecture, canDo(m.Architecture), src)
	}
	return tw.Flush()
}

// canDo is what Lathe can do with a model of the architecture: fine-tune it and serve it, or, when
// the engine does not run it, why not.
func canDo(arch string) string {
	if catalog.Runnable(arch) {
		return "fine-tune, serve"
	}
	return "nothing: no " + arch + " engine"
}

// checkRunnable refuses to pull a catalog model the engine cannot run: gigabytes for nothing.
func checkRunnable(m catalog.Model) error {
	if catalog.Runnable(m.Architecture) {
		return nil
	}
	return fmt.Errorf("%s is a %s model, which the engine cannot run yet (it runs %s): not pulling it",
		m.Name, m.Architecture, strings.Join(catalog.SupportedArchitectures, ", "))
}

func modelsImportCommand(dataDir *string, sh *sharedFlags) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import PATH --name NAME",
		Short: "Copy a GGUF file or a Hugging Face directory (config.json, *.safetensors, tokenizer) into the store",
		Example: `  lathe models import ../shared/models/stories260K.gguf --name Stories260K
  lathe models import ./SmolLM2-135M-Instruct --name SmolLM2-135MInstruct`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := modelstore.OpenDataDir(*dataDir)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			shared, err := sh.open(ctx, store)
			if err != nil {
				return err
			}
			e, err := store.Import(ctx, args[0], name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "imported %s: %s, %s, %s, %s, into %s\n", e.Name, e.Format, e.Architecture, files(len(e.Files)), formatBytes(e.Size()), store.Dir())
			for _, f := range e.Files {
				fmt.Fprintf(out, "  %s  %s  %s\n", f.SHA256, formatBytes(f.Size), f.Path)
			}
			warnAboutModel(cmd.ErrOrStderr(), e)
			return publish(ctx, out, shared, e.Name)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the model's name in the store (a catalog name such as Stories260K to use it as BaseModelName)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// warnAboutModel tells the user when an imported model will not work as they probably expect.
func warnAboutModel(w io.Writer, e modelstore.Entry) {
	if m, ok := catalog.Lookup(e.Name); ok && !strings.EqualFold(m.Architecture, e.Architecture) {
		fmt.Fprintf(w, "warning: the catalog's %s is a %s model, but this one is %s\n", e.Name, m.Architecture, e.Architecture)
	}
	if !catalog.Runnable(e.Architecture) {
		fmt.Fprintf(w, "warning: the engine does not run %s models yet (it runs %s); jobs naming %s will be refused\n",
			e.Architecture, strings.Join(catalog.SupportedArchitectures, ", "), e.Name)
	}
}

func modelsPullCommand(dataDir *string, sh *sharedFlags) *cobra.Command {
	var revision string
	cmd := &cobra.Command{
		Use:   "pull NAME",
		Short: "Download a catalog model from the Hugging Face hub into the store (resumable, sha256-checked)",
		Long: `Download a catalog model from the Hugging Face hub into the store.

An interrupted pull resumes where it stopped when run again. Every file is checked
against the hub's sha256. HF_ENDPOINT selects a mirror (default https://huggingface.co);
HF_TOKEN is sent for gated models (accept the licence on the model's page first).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, ok := catalog.Lookup(args[0])
			if !ok {
				return fmt.Errorf("%s is not a catalog model; the catalog has %s (to add another model use \"lathe models import\")",
					args[0], strings.Join(catalog.Names(), ", "))
			}
			if err := checkRunnable(m); err != nil {
				return err
			}
			store, err := modelstore.OpenDataDir(*dataDir)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			shared, err := sh.open(ctx, store)
			if err != nil {
				return err
			}
			bar := newPullBar(cmd.ErrOrStderr(), m.Name)
			e, err := store.Pull(ctx, m.Name, modelstore.SourceFor(m), modelstore.PullOptions{Revision: revision, Progress: bar.update})
			bar.finish(err == nil)
			switch {
			case errors.Is(err, modelstore.ErrExists):
				fmt.Fprintf(cmd.OutOrStdout(), "%s is already in the store (%s); remove it first to pull it again\n", m.Name, store.Dir())
				return publish(ctx, cmd.OutOrStdout(), shared, m.Name)
			case errors.Is(err, context.Canceled):
				return fmt.Errorf("pull of %s interrupted; run it again to resume", m.Name)
			case err != nil:
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pulled %s from %s: %s, %s, %s, %s\n", e.Name, e.Source, e.Format, e.Architecture, files(len(e.Files)), formatBytes(e.Size()))
			warnAboutModel(cmd.ErrOrStderr(), e)
			return publish(ctx, cmd.OutOrStdout(), shared, e.Name)
		},
	}
	cmd.Flags().StringVar(&revision, "revision", "main", "branch, tag or commit of the hub repository")
	return cmd
}

func modelsRemoveCommand(dataDir *string, sh *sharedFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Delete a model from the store (and its shared copy, with --s3-endpoint)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := modelstore.OpenDataDir(*dataDir)
			if err != nil {
				return err
			}
			shared, err := sh.open(cmd.Context(), store)
			if err != nil {
				return err
			}
			if shared == nil {
				if err := store.Remove(args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
				return nil
			}
			// Either copy may be missing: the model is gone when neither is left.
			localErr := store.Remove(args[0])
			sharedErr := shared.Remove(cmd.Context(), args[0])
			for _, err := range []error{localErr, sharedErr} {
				if err != nil && !errors.Is(err, modelstore.ErrNotFound) {
					return err
				}
			}
			if localErr != nil && sharedErr != nil {
				return localErr
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
}

// pullBar shows a pull's bytes, speed and ETA. The bar appears with the first progress report,
// when the total size is known.
type pullBar struct {
	w    io.Writer
	name string
	bar  *progressbar.ProgressBar
}

func newPullBar(w io.Writer, name string) *pullBar { return &pullBar{w: w, name: name} }

func (p *pullBar) update(done, total int64) {
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription("pulling "+p.name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		)
	}
	_ = p.bar.Set64(done)
}

func (p *pullBar) finish(ok bool) {
	if p.bar == nil {
		return
	}
	if ok {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit()
	fmt.Fprintln(p.w)
}

func files(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}

// formatBytes is a size as people read it: 1.2 MB, 270 MB, 3.4 GB.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// defaultDataDir is where Lathe keeps its state unless --data-dir says otherwise.
func defaultDataDir() string {
	if d := os.Getenv("LATHE_DATA_DIR"); d != "" {
		return d
	}
	return "./lathe-data"
}
