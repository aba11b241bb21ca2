#!/usr/bin/env python3
"""Conformance suite for the SageMaker AutoML V2 (TextGeneration) control plane.

Each case makes one boto3 call (or a short sequence) and checks what real Amazon SageMaker answers, as
recorded in ../shared/reference/sagemaker-api.md: shapes, constraints, enums, defaults, error codes and
lifecycle. Run it against any server that claims to speak SageMaker:

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... python3 scripts/conformance.py --endpoint-url URL

It prints PASS/FAIL per case and ends with "conformance: N passed, N failed"; the exit status is 1 when a
case failed, unless --report-only (for measuring another emulator, such as moto).

Notes on what the cases assume:
- Accepted jobs name BaseModelName "Stories260K", a model Lathe can really fine-tune. Real SageMaker does
  not know that name (it would answer ValidationException; use --base-model Falcon7BInstruct there). moto
  accepts any name, so a moto run keeps "Stories260K" too. On Lathe, import the model first
  (`lathe models import stories260K.gguf --name Stories260K`, as scripts/e2e.sh does): the stopped job
  must still be running when the stop arrives, not already failed for want of its base model.
- Client-side parameter validation is off, so out-of-range values reach the server, as they do from the
  Go SDK (which checks only that required members are present).
- The errors for rules SageMaker documents without naming the error (EULA, unknown base model,
  hyperparameter ranges, MaxCandidates) are asserted as ValidationException, the code SageMaker uses for
  every other invalid input (reference section 10).
- A field "named" in a message is matched case-insensitively: Coral's constraint messages use lowerCamel
  member paths ('autoMLJobName'), hand-written ones PascalCase (AutoMLJobName).
- Every job of a run has the run's prefix, so a run works on a server that already holds jobs. Accepted
  jobs point at an S3 prefix with no data (they fail in data analysis, as they would on SageMaker),
  except the one that is stopped: it gets a small dataset so that it is still running when stopped.
"""
import argparse
import datetime
import os
import re
import sys
import time
import traceback
import uuid

import boto3
import botocore
from botocore.config import Config

ROLE = "arn:aws:iam::123456789012:role/LatheConformance"
BUCKET = "lathe-conformance"
CSV = "text/csv;header=present"
PARQUET = "x-application/vnd.amazon+parquet"
HYPERPARAMETERS = {"epochCount": "1", "batchSize": "4", "learningRate": "0.0001", "learningRateWarmupSteps": "2"}

JOB_STATUSES = {"Completed", "InProgress", "Failed", "Stopped", "Stopping"}
SECONDARY_STATUSES = {
    "Starting", "MaxCandidatesReached", "Failed", "Stopped", "MaxAutoMLJobRuntimeReached", "Stopping",
    "CandidateDefinitionsGenerated", "Completed", "ExplainabilityError", "DeployingModel",
    "ModelDeploymentError", "GeneratingModelInsightsReport", "ModelInsightsError", "AnalyzingData",
    "FeatureEngineering", "ModelTuning", "GeneratingExplainabilityReport", "TrainingModels", "PreTraining"}
JOB_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:automl-job/.*$")


class Suite:
    def __init__(self, endpoint_url, region, base_model):
        cfg = Config(parameter_validation=False, retries={"total_max_attempts": 1},
                     connect_timeout=10, read_timeout=60, s3={"addressing_style": "path"})
        self.sm = boto3.client("sagemaker", endpoint_url=endpoint_url, region_name=region, config=cfg)
        self.s3 = boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=cfg)
        self.base = base_model
        self.run = "cf" + uuid.uuid4().hex[:6]  # lower case: the sort checks compare names as strings
        self.arns = {}  # job name -> ARN returned by CreateAutoMLJobV2

    def name(self, suffix):
        return "%s-%s" % (self.run, suffix)

    def uri(self, path):
        return "s3://%s/%s/%s" % (BUCKET, self.run, path)

    def request(self, suffix, **overrides):
        """The request of the aws-samples fine-tuning notebook (reference section 2): one training
        channel, ValidationFraction 0.1, BaseModelName, the four hyperparameters as strings and
        AcceptEula; no CompletionCriteria and no AutoMLJobObjective."""
        req = {
            "AutoMLJobName": self.name(suffix),
            "AutoMLJobInputDataConfig": [channel("training", CSV, self.uri("train/"))],
            "OutputDataConfig": {"S3OutputPath": self.uri("output/")},
            "AutoMLProblemTypeConfig": {"TextGenerationJobConfig": {
                "BaseModelName": self.base,
                "TextGenerationHyperParameters": dict(HYPERPARAMETERS),
                "ModelAccessConfig": {"AcceptEula": True},
            }},
            "RoleArn": ROLE,
            "DataSplitConfig": {"ValidationFraction": 0.1},
        }
        req.update(overrides)
        return req

    def text_generation(self, req):
        return req["AutoMLProblemTypeConfig"]["TextGenerationJobConfig"]

    def create(self, req):
        arn = self.sm.create_auto_ml_job_v2(**req)["AutoMLJobArn"]
        self.arns[req["AutoMLJobName"]] = arn
        return arn

    def describe(self, suffix):
        return self.sm.describe_auto_ml_job_v2(AutoMLJobName=self.name(suffix))

    def list_names(self, **kw):
        """Every page of ListAutoMLJobs, as (names in order, pages)."""
        names, pages, token = [], [], None
        for _ in range(100):
            args = dict(kw)
            if token:
                args["NextToken"] = token
            page = self.sm.list_auto_ml_jobs(**args)
            pages.append(page)
            names += [s["AutoMLJobName"] for s in page["AutoMLJobSummaries"]]
            token = page.get("NextToken")
            if not token:
                return names, pages
        raise AssertionError("ListAutoMLJobs still returned a NextToken after 100 pages")

    def rejected(self, req, code, *fields):
        """Asserts that CreateAutoMLJobV2 fails with code and a message naming each field."""
        expect_error(lambda: self.sm.create_auto_ml_job_v2(**req), code, *fields)


def channel(kind, content_type, uri, data_type="S3Prefix"):
    c = {"DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": uri}}, "CompressionType": "None"}
    if kind:
        c["ChannelType"] = kind
    if content_type:
        c["ContentType"] = content_type
    return c


def expect_error(call, code, *fields):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        got = e.response["Error"]["Code"]
        msg = e.response["Error"].get("Message", "")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        assert got == code, "want %s, got %s (HTTP %s): %s" % (code, got, status, msg)
        assert status == 400, "want HTTP 400 for %s, got %s" % (code, status)
        for f in fields:
            assert f.lower() in msg.lower(), "message %r does not name %r" % (msg, f)
        return msg
    raise AssertionError("want %s, the call succeeded" % code)


def check(cond, fmt, *args):
    if not cond:
        raise AssertionError(fmt % args if args else fmt)


# ------------------------------------------------------------------------------------------ the cases
# Each case is a function of the suite; CASES lists them in run order (later cases use jobs that
# earlier ones created; a case whose job is missing fails on its own).

def create_sample_request(s):
    req = s.request("sample", Tags=[{"Key": "team", "Value": "conformance"}])
    arn = s.create(req)
    check(JOB_ARN.match(arn), "AutoMLJobArn %r does not match the automl-job ARN pattern", arn)
    check(arn.lower().endswith(":automl-job/" + req["AutoMLJobName"].lower()), "ARN %r does not end with the job name", arn)


def create_minimal_without_completion_criteria(s):
    # Only the required members: no CompletionCriteria (moto answers 500 here), no DataSplitConfig, and
    # a channel with neither ChannelType nor ContentType (defaults training and CSV).
    req = {
        "AutoMLJobName": s.name("minimal"),
        "AutoMLJobInputDataConfig": [channel(None, None, s.uri("train/"))],
        "OutputDataConfig": {"S3OutputPath": s.uri("output/")},
        "AutoMLProblemTypeConfig": {"TextGenerationJobConfig": {"BaseModelName": s.base}},
        "RoleArn": ROLE,
    }
    check(JOB_ARN.match(s.create(req)), "bad AutoMLJobArn")


def create_validation_channel(s):
    req = s.request("valchan", AutoMLJobInputDataConfig=[
        channel("training", CSV, s.uri("train/")), channel("validation", CSV, s.uri("validation/"))])
    del req["DataSplitConfig"]
    check(JOB_ARN.match(s.create(req)), "bad AutoMLJobArn")


def create_name_pattern(s):
    s.rejected(s.request("bad_name!"), "ValidationException", "autoMLJobName")


def create_name_too_long(s):
    req = s.request("x")
    req["AutoMLJobName"] = s.run + "-" + "a" * (33 - len(s.run) - 1)
    check(len(req["AutoMLJobName"]) == 33, "test bug: name length")
    s.rejected(req, "ValidationException", "autoMLJobName")


def create_three_channels(s):
    chans = [channel("training", CSV, s.uri("a/")), channel("validation", CSV, s.uri("b/")),
             channel("validation", CSV, s.uri("c/"))]
    req = s.request("bad-3chan", AutoMLJobInputDataConfig=chans)
    del req["DataSplitConfig"]
    s.rejected(req, "ValidationException", "autoMLJobInputDataConfig")


def create_two_training_channels(s):
    req = s.request("bad-2train", AutoMLJobInputDataConfig=[
        channel("training", CSV, s.uri("a/")), channel("training", CSV, s.uri("b/"))])
    s.rejected(req, "ValidationException", "training")


def create_validation_channel_and_fraction(s):
    req = s.request("bad-valfrac", AutoMLJobInputDataConfig=[
        channel("training", CSV, s.uri("a/")), channel("validation", CSV, s.uri("b/"))])
    s.rejected(req, "ValidationException", "ValidationFraction")


def create_mismatched_content_types(s):
    req = s.request("bad-mixed", AutoMLJobInputDataConfig=[
        channel("training", CSV, s.uri("a/")), channel("validation", PARQUET, s.uri("b/"))])
    del req["DataSplitConfig"]
    s.rejected(req, "ValidationException", "ContentType")


def create_unsupported_content_type(s):
    req = s.request("bad-ctype", AutoMLJobInputDataConfig=[channel("training", "application/json", s.uri("a/"))])
    s.rejected(req, "ValidationException", "ContentType")


def create_manifest_file(s):
    req = s.request("bad-manifest", AutoMLJobInputDataConfig=[
        channel("training", CSV, s.uri("a/manifest.json"), data_type="ManifestFile")])
    s.rejected(req, "ValidationException", "S3DataType")


def create_non_s3_uri(s):
    # http:// fails the model's pattern (https|s3)://..., so SageMaker's validation layer rejects it.
    req = s.request("bad-uri", AutoMLJobInputDataConfig=[channel("training", CSV, "http://example.com/train/")])
    s.rejected(req, "ValidationException", "s3Uri")


def create_validation_fraction_zero(s):
    s.rejected(s.request("bad-frac0", DataSplitConfig={"ValidationFraction": 0.0}), "ValidationException", "ValidationFraction")


def create_validation_fraction_one(s):
    s.rejected(s.request("bad-frac1", DataSplitConfig={"ValidationFraction": 1.0}), "ValidationException", "ValidationFraction")


def hyperparameter_case(key, value):
    def case(s):
        req = s.request("bad-hp")
        s.text_generation(req)["TextGenerationHyperParameters"][key] = value
        s.rejected(req, "ValidationException", key)
    case.__name__ = "create_hyperparameter_%s_%s" % (key, re.sub(r"\W", "_", value))
    return case


def create_unknown_hyperparameter(s):
    req = s.request("bad-hpkey")
    s.text_generation(req)["TextGenerationHyperParameters"]["dropout"] = "0.1"
    s.rejected(req, "ValidationException", "dropout")


def create_max_candidates_two(s):
    req = s.request("bad-maxcand")
    s.text_generation(req)["CompletionCriteria"] = {"MaxCandidates": 2}
    s.rejected(req, "ValidationException", "MaxCandidates")


def create_endpoint_name_with_auto_generate(s):
    req = s.request("bad-deploy", ModelDeployConfig={"AutoGenerateEndpointName": True, "EndpointName": "my-endpoint"})
    s.rejected(req, "ValidationException", "EndpointName")


def create_llama2_without_eula(s):
    req = s.request("bad-eula")
    tg = s.text_generation(req)
    tg["BaseModelName"] = "Llama2-7B"
    del tg["ModelAccessConfig"]
    s.rejected(req, "ValidationException", "Eula")


def create_unknown_base_model(s):
    req = s.request("bad-model")
    s.text_generation(req)["BaseModelName"] = "NoSuchModel7B"
    s.rejected(req, "ValidationException", "BaseModelName")


def create_tabular_problem_type(s):
    # A tabular config without its required TargetAttributeName: SageMaker rejects it for that member,
    # Lathe (text generation only) for the problem type; both messages name tabularJobConfig.
    req = s.request("bad-tabular", AutoMLProblemTypeConfig={"TabularJobConfig": {"CompletionCriteria": {"MaxCandidates": 1}}})
    s.rejected(req, "ValidationException", "tabularJobConfig")


def create_tag_pattern(s):
    s.rejected(s.request("bad-tag", Tags=[{"Key": "bad#key", "Value": "v"}]), "ValidationException", "tags")


def create_role_arn_pattern(s):
    s.rejected(s.request("bad-role", RoleArn="arn:aws:iam::12345:role/short"), "ValidationException", "roleArn")


def create_duplicate_name_other_case(s):
    req = s.request("dup")
    s.create(req)
    again = s.request("dup")
    again["AutoMLJobName"] = req["AutoMLJobName"].upper()
    expect_error(lambda: s.sm.create_auto_ml_job_v2(**again), "ResourceInUse")


def create_rejected_leave_no_job(s):
    names, _ = s.list_names(NameContains=s.run + "-bad")
    check(names == [], "rejected requests were stored as jobs: %s", names)


def describe_echoes_request(s):
    req = s.request("sample")
    d = s.describe("sample")
    check(d["AutoMLJobName"] == req["AutoMLJobName"], "AutoMLJobName %r", d.get("AutoMLJobName"))
    check(d["AutoMLJobArn"] == s.arns.get(req["AutoMLJobName"]), "AutoMLJobArn %r differs from the create answer", d.get("AutoMLJobArn"))
    chans = d["AutoMLJobInputDataConfig"]
    check(len(chans) == 1, "%d channels", len(chans))
    want = req["AutoMLJobInputDataConfig"][0]
    for k in ("ChannelType", "ContentType"):
        check(chans[0].get(k) == want[k], "channel %s %r, want %r", k, chans[0].get(k), want[k])
    check(chans[0]["DataSource"] == want["DataSource"], "DataSource %r", chans[0].get("DataSource"))
    check(d["OutputDataConfig"]["S3OutputPath"] == req["OutputDataConfig"]["S3OutputPath"], "OutputDataConfig %r", d["OutputDataConfig"])
    check(d["RoleArn"] == ROLE, "RoleArn %r", d.get("RoleArn"))
    tg = d["AutoMLProblemTypeConfig"]["TextGenerationJobConfig"]
    check(tg.get("BaseModelName") == s.base, "BaseModelName %r", tg.get("BaseModelName"))
    check(tg.get("TextGenerationHyperParameters") == HYPERPARAMETERS, "hyperparameters %r", tg.get("TextGenerationHyperParameters"))
    check(tg.get("ModelAccessConfig") == {"AcceptEula": True}, "ModelAccessConfig %r", tg.get("ModelAccessConfig"))
    check(d.get("DataSplitConfig", {}).get("ValidationFraction") == 0.1, "DataSplitConfig %r", d.get("DataSplitConfig"))


def describe_default_validation_fraction(s):
    d = s.describe("minimal")
    check(d.get("DataSplitConfig", {}).get("ValidationFraction") == 0.2, "DataSplitConfig %r, want ValidationFraction 0.2", d.get("DataSplitConfig"))


def describe_resolved_base_model(s):
    d = s.describe("minimal")
    got = d.get("ResolvedAttributes", {}).get("AutoMLProblemTypeResolvedAttributes", {})
    check(got == {"TextGenerationResolvedAttributes": {"BaseModelName": s.base}},
          "ResolvedAttributes.AutoMLProblemTypeResolvedAttributes %r", got)


def describe_problem_type_config_name(s):
    d = s.describe("sample")
    check(d.get("AutoMLProblemTypeConfigName") == "TextGeneration", "AutoMLProblemTypeConfigName %r", d.get("AutoMLProblemTypeConfigName"))


def describe_statuses_from_enums(s):
    for suffix in ("sample", "minimal", "valchan"):
        d = s.describe(suffix)
        check(d["AutoMLJobStatus"] in JOB_STATUSES, "%s: AutoMLJobStatus %r", suffix, d["AutoMLJobStatus"])
        check(d["AutoMLJobSecondaryStatus"] in SECONDARY_STATUSES, "%s: AutoMLJobSecondaryStatus %r", suffix, d["AutoMLJobSecondaryStatus"])


def describe_timestamps(s):
    d = s.describe("sample")
    now = datetime.datetime.now(datetime.timezone.utc)
    for k in ("CreationTime", "LastModifiedTime"):
        t = d[k]
        check(isinstance(t, datetime.datetime) and t.tzinfo is not None, "%s %r is not a datetime", k, t)
        check(abs((now - t).total_seconds()) < 3600, "%s %s is far from now (%s)", k, t, now)
    check(d["LastModifiedTime"] >= d["CreationTime"], "LastModifiedTime before CreationTime")


def describe_missing_job(s):
    name = s.name("missing")
    expect_error(lambda: s.sm.describe_auto_ml_job_v2(AutoMLJobName=name), "ResourceNotFound", name)


def created_names(s):
    return {n for n in s.arns}


def list_default_sort_name_descending(s):
    names, _ = s.list_names(NameContains=s.run)
    want = created_names(s)
    check(set(names) == want, "listed %s, created %s", names, sorted(want))
    check(names == sorted(names, reverse=True), "not sorted by name, descending: %s", names)


def list_name_contains(s):
    names, _ = s.list_names(NameContains=s.run + "-s")
    want = {n for n in created_names(s) if (s.run + "-s") in n}
    check(set(names) == want and want, "NameContains %r gave %s, want %s", s.run + "-s", names, sorted(want))


def list_paging(s):
    names, pages = s.list_names(NameContains=s.run, MaxResults=2)
    check(len(pages) >= 2, "MaxResults 2 over %d jobs gave one page", len(created_names(s)))
    for p in pages:
        check(len(p["AutoMLJobSummaries"]) <= 2, "a page of %d summaries", len(p["AutoMLJobSummaries"]))
    check(len(names) == len(set(names)), "a job listed twice across pages: %s", names)
    check(set(names) == created_names(s), "pages gave %s", names)
    check(names == sorted(names, reverse=True), "pages out of order: %s", names)


def list_max_results_zero(s):
    expect_error(lambda: s.sm.list_auto_ml_jobs(MaxResults=0), "ValidationException", "maxResults")


def list_max_results_101(s):
    expect_error(lambda: s.sm.list_auto_ml_jobs(MaxResults=101), "ValidationException", "maxResults")


def stop_job(s):
    # A dataset, so that Lathe's worker is still busy with the job (not already failed) when the stop
    # arrives. A real server moves the job to Stopping at once and to Stopped when its work has ended;
    # a fast one may get there before the first Describe, so Stopped is accepted there too.
    rows = "".join('"Once upon a time %d, there was a cat.","The cat sat on the mat %d times."\n' % (i, i) for i in range(400))
    try:
        s.s3.create_bucket(Bucket=BUCKET)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s.s3.put_object(Bucket=BUCKET, Key="%s/stop-data/train.csv" % s.run, Body=("input,output\n" + rows).encode())
    req = s.request("stop", AutoMLJobInputDataConfig=[channel("training", CSV, s.uri("stop-data/"))])
    s.text_generation(req)["TextGenerationHyperParameters"] = {"epochCount": "10", "batchSize": "1"}
    s.create(req)
    s.sm.stop_auto_ml_job(AutoMLJobName=req["AutoMLJobName"])
    seen = []
    deadline = time.time() + 180
    while True:
        d = s.describe("stop")
        seen.append("%s/%s" % (d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"]))
        if d["AutoMLJobStatus"] != "Stopping":
            break
        check(d["AutoMLJobSecondaryStatus"] == "Stopping", "statuses after stop: %s", seen)
        check(time.time() < deadline, "still Stopping after 180 s")
        time.sleep(0.2)
    check(seen[-1] == "Stopped/Stopped", "statuses after stop: %s, want Stopping... then Stopped/Stopped", seen)
    check("EndTime" in d, "a Stopped job has no EndTime")


def list_status_equals(s):
    names, pages = s.list_names(NameContains=s.run, StatusEquals="Stopped")
    check(names == [s.name("stop")], "StatusEquals Stopped gave %s, want only the stopped job", names)
    for p in pages:
        for j in p["AutoMLJobSummaries"]:
            check(j["AutoMLJobStatus"] == "Stopped", "summary %s is %s", j["AutoMLJobName"], j["AutoMLJobStatus"])


def stop_missing_job(s):
    name = s.name("missing")
    expect_error(lambda: s.sm.stop_auto_ml_job(AutoMLJobName=name), "ResourceNotFound", name)


def candidates_missing_job(s):
    name = s.name("missing")
    expect_error(lambda: s.sm.list_candidates_for_auto_ml_job(AutoMLJobName=name), "ResourceNotFound", name)


def candidates_max_results_301(s):
    expect_error(lambda: s.sm.list_candidates_for_auto_ml_job(AutoMLJobName=s.name("sample"), MaxResults=301),
                 "ValidationException", "maxResults")


def tags_of(s, arn):
    return {t["Key"]: t["Value"] for t in s.sm.list_tags(ResourceArn=arn)["Tags"]}


def tags_add_and_list(s):
    arn = s.arns[s.name("sample")]
    s.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "stage", "Value": "test"}])
    got = tags_of(s, arn)
    check(got == {"team": "conformance", "stage": "test"}, "ListTags after AddTags: %s", got)


def tags_delete_and_list(s):
    arn = s.arns[s.name("sample")]
    s.sm.delete_tags(ResourceArn=arn, TagKeys=["team"])
    got = tags_of(s, arn)
    check(got == {"stage": "test"}, "ListTags after DeleteTags: %s", got)


CASES = [
    create_sample_request,
    create_minimal_without_completion_criteria,
    create_validation_channel,
    create_name_pattern,
    create_name_too_long,
    create_three_channels,
    create_two_training_channels,
    create_validation_channel_and_fraction,
    create_mismatched_content_types,
    create_unsupported_content_type,
    create_manifest_file,
    create_non_s3_uri,
    create_validation_fraction_zero,
    create_validation_fraction_one,
    hyperparameter_case("epochCount", "11"),
    hyperparameter_case("batchSize", "65"),
    hyperparameter_case("learningRate", "1.5"),
    hyperparameter_case("learningRateWarmupSteps", "251"),
    hyperparameter_case("epochCount", "three"),
    create_unknown_hyperparameter,
    create_max_candidates_two,
    create_endpoint_name_with_auto_generate,
    create_llama2_without_eula,
    create_unknown_base_model,
    create_tabular_problem_type,
    create_tag_pattern,
    create_role_arn_pattern,
    create_duplicate_name_other_case,
    create_rejected_leave_no_job,
    describe_echoes_request,
    describe_default_validation_fraction,
    describe_resolved_base_model,
    describe_problem_type_config_name,
    describe_statuses_from_enums,
    describe_timestamps,
    describe_missing_job,
    list_default_sort_name_descending,
    list_name_contains,
    list_paging,
    list_max_results_zero,
    list_max_results_101,
    stop_job,
    list_status_equals,
    stop_missing_job,
    candidates_missing_job,
    candidates_max_results_301,
    tags_add_and_list,
    tags_delete_and_list,
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoint-url", required=True, help="the SageMaker endpoint, e.g. http://127.0.0.1:8080")
    ap.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    ap.add_argument("--base-model", default="Stories260K", help="BaseModelName of the accepted jobs")
    ap.add_argument("--report-only", action="store_true", help="exit 0 even when cases fail")
    ap.add_argument("-v", "--verbose", action="store_true", help="print a traceback for each failure")
    args = ap.parse_args()

    suite = Suite(args.endpoint_url, args.region, args.base_model)
    print("conformance: %d cases against %s (job prefix %s)" % (len(CASES), args.endpoint_url, suite.run), flush=True)
    passed = failed = 0
    for case in CASES:
        try:
            case(suite)
            passed += 1
            print("PASS %s" % case.__name__, flush=True)
        except Exception as e:
            failed += 1
            detail = str(e) if isinstance(e, (AssertionError, botocore.exceptions.ClientError)) else repr(e)
            print("FAIL %s: %s" % (case.__name__, detail.replace("\n", " ")[:400]), flush=True)
            if args.verbose:
                traceback.print_exc()
    print("conformance: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed and not args.report_only else 0)


if __name__ == "__main__":
    main()
