package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/lathe-ml/lathe/internal/blob"
	"github.com/lathe-ml/lathe/internal/client"
	"github.com/lathe-ml/lathe/internal/job"
	"github.com/lathe-ml/lathe/internal/server"
)

// clientFlags are the flags every client verb shares: where the server is and how to sign.
type clientFlags struct {
	endpoint string
	region   string
	dataDir  string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.endpoint, "endpoint", envOr("LATHE_ENDPOINT", "http://127.0.0.1:8080"), "Lathe server URL (env LATHE_ENDPOINT)")
	cmd.PersistentFlags().StringVar(&f.region, "region", envOr("LATHE_REGION", "us-east-1"), "signing region")
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", defaultDataDir(), "the server's data dir, to read its generated credentials when AWS_ACCESS_KEY_ID is not set")
}

func (f *clientFlags) clients() (*client.Clients, error) {
	// A server that is not there is the first thing to say, before credentials, and at once: the SDK
	// would retry the refused connection and then print its retry error.
	if err := f.reachable(); err != nil {
		return nil, err
	}
	key, secret, err := clientCredentials(f.dataDir)
	if err != nil {
		return nil, err
	}
	return client.New(client.Options{Endpoint: f.endpoint, Region: f.region, AccessKeyID: key, SecretAccessKey: secret})
}

// reachable asks the server's health route, which answers without credentials; a connection that
// fails (refused, no such host, timed out) means there is no server to talk to.
func (f *clientFlags) reachable() error {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get(strings.TrimSuffix(f.endpoint, "/") + "/_lathe/health")
	if err != nil {
		return f.noServer(err)
	}
	resp.Body.Close()
	return nil
}

// noServer is the error a client verb reports when nothing answers at its endpoint: what to do, not
// the transport's words (still there to errors.Is / errors.As).
func (f *clientFlags) noServer(cause error) error {
	return &noServerError{endpoint: f.endpoint, cause: cause}
}

type noServerError struct {
	endpoint string
	cause    error
}

func (e *noServerError) Error() string {
	return fmt.Sprintf("no Lathe server at %s; start one with lathe serve (or set --endpoint / LATHE_ENDPOINT to yours)", e.endpoint)
}

func (e *noServerError) Unwrap() error { return e.cause }

// explain rewords a connection failure that happened after the check above (the server went away
// in the middle of a command).
func (f *clientFlags) explain(err error) error {
	var opErr *net.OpError
	if err != nil && errors.As(err, &opErr) && opErr.Op == "dial" {
		return f.noServer(opErr)
	}
	return err
}

func jobsCommand() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{Use: "jobs", Short: "Create, watch and stop fine-tuning jobs on a running Lathe server"}
	cf.register(cmd)
	cmd.AddCommand(jobsCreateCommand(&cf), jobsDescribeCommand(&cf), jobsListCommand(&cf),
		jobsStopCommand(&cf), jobsWaitCommand(&cf), jobsLogsCommand(&cf))
	for _, sub := range cmd.Commands() {
		if run := sub.RunE; run != nil {
			sub.RunE = func(c *cobra.Command, args []string) error { return cf.explain(run(c, args)) }
		}
	}
	return cmd
}

func jobsCreateCommand(cf *clientFlags) *cobra.Command {
	var (
		train, validation, output, model, contentType, role string
		fraction                                            float64
		hp                                                  = map[string]*string{}
		wait, acceptEula                                    bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Start a fine-tuning job (CreateAutoMLJobV2 with a TextGenerationJobConfig)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.clients()
			if err != nil {
				return err
			}
			ct := map[string]string{"csv": "text/csv;header=present", "parquet": "x-application/vnd.amazon+parquet"}[contentType]
			if ct == "" {
				return fmt.Errorf("--content-type must be csv or parquet, not %q", contentType)
			}
			channels := []types.AutoMLJobChannel{channel(types.AutoMLChannelTypeTraining, ct, train)}
			if validation != "" {
				channels = append(channels, channel(types.AutoMLChannelTypeValidation, ct, validation))
			}
			hps := map[string]string{}
			for k, v := range hp {
				if *v != "" {
					hps[k] = *v
				}
			}
			in := &sagemaker.CreateAutoMLJobV2Input{
				AutoMLJobName:            aws.String(args[0]),
				AutoMLJobInputDataConfig: channels,
				OutputDataConfig:         &types.AutoMLOutputDataConfig{S3OutputPath: aws.String(output)},
				RoleArn:                  aws.String(role),
				AutoMLProblemTypeConfig: &types.AutoMLProblemTypeConfigMemberTextGenerationJobConfig{Value: types.TextGenerationJobConfig{
					BaseModelName:                 aws.String(model),
					TextGenerationHyperParameters: hps,
					ModelAccessConfig:             &types.ModelAccessConfig{AcceptEula: aws.Bool(acceptEula)},
				}},
			}
			if validation == "" {
				in.DataSplitConfig = &types.AutoMLDataSplitConfig{ValidationFraction: aws.Float32(float32(fraction))}
			}
			out, err := c.SageMaker.CreateAutoMLJobV2(cmd.Context(), in)
			if err != nil {
				return err
			}
			fmt.Println(aws.ToString(out.AutoMLJobArn))
			if wait {
				return waitJob(cmd.Context(), c, args[0], cmd.ErrOrStderr())
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&train, "train", "", "s3:// prefix of the training data (required)")
	f.StringVar(&validation, "validation", "", "s3:// prefix of the validation data (default: split the training data)")
	f.StringVar(&output, "output", "", "s3:// output path for the model and reports (required)")
	f.StringVar(&model, "base-model", "Stories260K", "BaseModelName")
	f.StringVar(&contentType, "content-type", "csv", "csv or parquet")
	f.StringVar(&role, "role", "arn:aws:iam::000000000000:role/lathe", "RoleArn (recorded; Lathe does not assume roles)")
	f.Float64Var(&fraction, "validation-fraction", 0.2, "fraction of the training data held out for validation")
	f.BoolVar(&acceptEula, "accept-eula", false, "accept the base model's licence (needed for the Llama 2 family)")
	f.BoolVar(&wait, "wait", false, "wait for the job to end, showing progress")
	for _, k := range []string{"epochCount", "batchSize", "learningRate", "learningRateWarmupSteps"} {
		hp[k] = f.String(k, "", "hyperparameter "+k)
	}
	_ = cmd.MarkFlagRequired("train")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func channel(t types.AutoMLChannelType, contentType, uri string) types.AutoMLJobChannel {
	return types.AutoMLJobChannel{
		ChannelType: t,
		ContentType: aws.String(contentType),
		DataSource: &types.AutoMLDataSource{S3DataSource: &types.AutoMLS3DataSource{
			S3DataType: types.AutoMLS3DataTypeS3Prefix, S3Uri: aws.String(uri),
		}},
	}
}

func jobsDescribeCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Print DescribeAutoMLJobV2 as JSON, with the live training progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.clients()
			if err != nil {
				return err
			}
			var out json.RawMessage
			if err := c.Call(cmd.Context(), "DescribeAutoMLJobV2", map[string]string{"AutoMLJobName": args[0]}, &out); err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			var v any
			_ = json.Unmarshal(out, &v)
			return enc.Encode(v)
		},
	}
}

func jobsListCommand(cf *clientFlags) *cobra.Command {
	var status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.clients()
			if err != nil {
				return err
			}
			in := &sagemaker.ListAutoMLJobsInput{SortBy: types.AutoMLSortByCreationTime, SortOrder: types.AutoMLSortOrderDescending}
			if status != "" {
				in.StatusEquals = types.AutoMLJobStatus(status)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSTATUS\tSECONDARY\tCREATED\tFAILURE")
			p := sagemaker.NewListAutoMLJobsPaginator(c.SageMaker, in)
			for p.HasMorePages() {
				page, err := p.NextPage(cmd.Context())
				if err != nil {
					return err
				}
				for _, j := range page.AutoMLJobSummaries {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", aws.ToString(j.AutoMLJobName), j.AutoMLJobStatus, j.AutoMLJobSecondaryStatus,
						aws.ToTime(j.CreationTime).Local().Format(time.DateTime), truncate(aws.ToString(j.FailureReason), 60))
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only jobs with this AutoMLJobStatus")
	return cmd
}

func jobsStopCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stop NAME",
		Short: "Stop a running job (it keeps its last checkpoint)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.clients()
			if err != nil {
				return err
			}
			_, err = c.SageMaker.StopAutoMLJob(cmd.Context(), &sagemaker.StopAutoMLJobInput{AutoMLJobName: aws.String(args[0])})
			return err
		},
	}
}

func jobsWaitCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait for a job to end, with a progress bar and ETA; exits non-zero unless it completed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.clients()
			if err != nil {
				return err
			}
			return waitJob(cmd.Context(), c, args[0], cmd.ErrOrStderr())
		},
	}
}

// describeView is the part of DescribeAutoMLJobV2 that `wait` shows, including Lathe's progress member.
type describeView struct {
	AutoMLJobStatus          string
	AutoMLJobSecondaryStatus string
	FailureReason            string
	TrainingProgress         *job.Progress
	BestCandidate            *struct {
		CandidateProperties struct {
			CandidateMetrics []struct {
				StandardMetricName string
				Value              float64
				Set                string
			}
		}
		InferenceContainers []struct{ ModelDataUrl string }
	}
}

// waitJob polls the job until it ends, drawing the training progress as a bar with loss, tokens/s and ETA.
func waitJob(ctx context.Context, c *client.Clients, name string, w io.Writer) error {
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt)
	defer cancel()
	var bar *progressbar.ProgressBar
	phase, message := "", ""
	for {
		var d describeView
		if err := c.Call(ctx, "DescribeAutoMLJobV2", map[string]string{"AutoMLJobName": name}, &d); err != nil {
			return err
		}
		if d.AutoMLJobSecondaryStatus != phase {
			if bar != nil {
				_ = bar.Finish()
				bar = nil
				fmt.Fprintln(w)
			}
			phase = d.AutoMLJobSecondaryStatus
			fmt.Fprintf(w, "%s  %s/%s\n", time.Now().Format(time.TimeOnly), d.AutoMLJobStatus, phase)
		}
		// Messages say what a phase is doing between steps (downloading the base model, evaluating).
		if p := d.TrainingProgress; p != nil && p.Message != "" && p.Message != message {
			message = p.Message
			if bar == nil {
				fmt.Fprintf(w, "%s  %s\n", time.Now().Format(time.TimeOnly), message)
			}
		}
		if p := d.TrainingProgress; p != nil && p.TotalSteps > 0 && phase == job.PhaseTrainingModels {
			if bar == nil {
				bar = progressbar.NewOptions(p.TotalSteps, progressbar.OptionSetWriter(w), progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(200*time.Millisecond))
			}
			bar.Describe(fmt.Sprintf("epoch %.2f loss %.4f %s tok/s", p.Epoch, p.Loss, strconv.FormatFloat(p.TokensPerSecond, 'f', 0, 64)))
			_ = bar.Set(p.Step)
		}
		switch d.AutoMLJobStatus {
		case "Completed", "Failed", "Stopped":
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(w)
			}
			if d.AutoMLJobStatus != "Completed" {
				return fmt.Errorf("job %s ended %s/%s: %s", name, d.AutoMLJobStatus, d.AutoMLJobSecondaryStatus, d.FailureReason)
			}
			if bc := d.BestCandidate; bc != nil {
				for _, m := range bc.CandidateProperties.CandidateMetrics {
					fmt.Fprintf(w, "  %-15s %-10s %.4f\n", m.StandardMetricName, m.Set, m.Value)
				}
				if len(bc.InferenceContainers) > 0 {
					fmt.Fprintf(w, "  model: %s\n", bc.InferenceContainers[0].ModelDataUrl)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func jobsLogsCommand(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the job's JSON-lines training log from its output path",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.clients()
			if err != nil {
				return err
			}
			d, err := c.SageMaker.DescribeAutoMLJobV2(cmd.Context(), &sagemaker.DescribeAutoMLJobV2Input{AutoMLJobName: aws.String(args[0])})
			if err != nil {
				return err
			}
			uri := strings.TrimSuffix(aws.ToString(d.OutputDataConfig.S3OutputPath), "/") + "/" + args[0] + "/training-log.jsonl"
			bucket, key, err := blob.ParseURI(uri)
			if err != nil {
				return err
			}
			obj, err := c.S3.GetObject(cmd.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return fmt.Errorf("read %s: %w", uri, err)
			}
			defer obj.Body.Close()
			_, err = io.Copy(os.Stdout, obj.Body)
			return err
		},
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// clientCredentials finds the keys a client verb signs with: the AWS environment, else the server's
// root keys (LATHE_ROOT_* or the credentials it generated into its data dir).
func clientCredentials(dataDir string) (key, secret string, err error) {
	if k, s := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); k != "" && s != "" {
		return k, s, nil
	}
	keys, err := server.LoadRootKeys(dataDir, false)
	if err != nil {
		return "", "", fmt.Errorf("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or --data-dir to the server's data dir (%w)", err)
	}
	return keys.AccessKeyID, keys.SecretAccessKey, nil
}
