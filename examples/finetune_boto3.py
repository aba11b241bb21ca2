#!/usr/bin/env python3
"""Fine-tune Stories260K on examples/data/train.csv with boto3, as against Amazon SageMaker.

Only the endpoint URL differs from a SageMaker script. With `lathe serve` running and its credentials in
the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY):

    AWS_ENDPOINT_URL=http://127.0.0.1:8080 python3 examples/finetune_boto3.py --job my-job
"""
import argparse
import os
import time

import boto3
from botocore.config import Config

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("--job", default="stories-boto3")
p.add_argument("--bucket", default="boto3-example")
p.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:8080"))
p.add_argument("--epochs", default="3")
args = p.parse_args()

session = boto3.Session(region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
s3 = session.client("s3", endpoint_url=args.endpoint_url, config=Config(s3={"addressing_style": "path"}))
sm = session.client("sagemaker", endpoint_url=args.endpoint_url)

# 1. The dataset: CSV with the columns input and output, under an S3 prefix.
if args.bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
    s3.create_bucket(Bucket=args.bucket)
s3.upload_file(os.path.join(here, "data", "train.csv"), args.bucket, "train/train.csv")

# 2. The job: the request from the SageMaker documentation, with a base model Lathe runs on a CPU.
sm.create_auto_ml_job_v2(
    AutoMLJobName=args.job,
    AutoMLJobInputDataConfig=[{
        "ChannelType": "training",
        "ContentType": "text/csv;header=present",
        "CompressionType": "None",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{args.bucket}/train/"}},
    }],
    OutputDataConfig={"S3OutputPath": f"s3://{args.bucket}/output/"},
    AutoMLProblemTypeConfig={"TextGenerationJobConfig": {
        "BaseModelName": "Stories260K",
        "TextGenerationHyperParameters": {"epochCount": args.epochs, "batchSize": "8",
                                          "learningRate": "0.002", "learningRateWarmupSteps": "10"},
        "ModelAccessConfig": {"AcceptEula": True},
    }},
    RoleArn="arn:aws:iam::123456789012:role/LatheExample",
    DataSplitConfig={"ValidationFraction": 0.2},
)

# 3. Wait, as one waits for SageMaker.
while True:
    d = sm.describe_auto_ml_job_v2(AutoMLJobName=args.job)
    print(time.strftime("%H:%M:%S"), d["AutoMLJobStatus"], d["AutoMLJobSecondaryStatus"], flush=True)
    if d["AutoMLJobStatus"] in ("Completed", "Failed", "Stopped"):
        break
    time.sleep(5)
if d["AutoMLJobStatus"] != "Completed":
    raise SystemExit("job ended %s: %s" % (d["AutoMLJobStatus"], d.get("FailureReason")))

# 4. The metrics and the model, where SageMaker puts them.
best = d["BestCandidate"]
for m in best["CandidateProperties"]["CandidateMetrics"]:
    print("%-15s %-10s %.4f" % (m["StandardMetricName"], m["Set"], m["Value"]))
print("model:", best["InferenceContainers"][0]["ModelDataUrl"])
