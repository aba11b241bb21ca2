#!/usr/bin/env python3
"""Reliability suite: what a hostile client, broken datasets, kill -9 and an overload do to a real
`lathe serve`, driven as users drive it (boto3, the aws CLI, and raw HTTP with SigV4 signed here so
that every byte can be wrong on purpose).

It builds lathe (or uses LATHE_BIN), imports ../shared/models/stories260K.gguf (LATHE_TEST_MODEL)
into a temporary data dir, starts `lathe serve` on a free loopback port, and runs six categories:

  front door  malformed JSON, wrong X-Amz-Target, oversized bodies, odd content types
  auth        missing, malformed, tampered, expired and future signatures; unknown keys, wrong
              secrets; an expired presigned URL
  s3 keys     odd keys round-trip through Put, List, Get and Delete, or are refused with S3's error
  datasets    broken CSV/Parquet, empty, JSON in CSV, gzip mismatches: the job fails naming the problem
  kill -9     a job killed during AnalyzingData, TrainingModels and its upload resumes to Completed
              after a restart with the metrics of an uninterrupted run
  overload    64 concurrent clients of DescribeAutoMLJobV2 and ListObjectsV2: every call answered

and prints "category | tried | handled | bad". handled: the expected AWS error type, or success
where success is right. bad: a 5xx, a hang (no answer in 30 s), a crash, or a wrong answer or
error shape. Exits non-zero when anything is bad. It takes about three minutes.
"""
import base64
import collections
import concurrent.futures
import datetime
import gzip
import hashlib
import hmac
import http.client
import io
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import boto3
import botocore
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.environ.get("LATHE_TEST_MODEL", os.path.join(ROOT, "..", "shared", "models", "stories260K.gguf"))
KEY = "AKIARELIABILITY00001"
SECRET = "reliabilitySecretKeyForLatheTests0000000"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/LatheReliability"
BUCKET = "lathe-reliability"
TIMEOUT = 30  # seconds without an answer that count as a hang

WORK = tempfile.mkdtemp(prefix="lathe-reliability.")
DATA = os.path.join(WORK, "data")
LOG = os.path.join(WORK, "server.log")
HOST = "127.0.0.1"
PORT = 0
URL = ""
BIN = ""
server = None

CATEGORIES = ["front door", "auth", "s3 keys", "datasets", "kill -9", "overload"]
results = collections.OrderedDict((c, {"tried": 0, "handled": 0, "bad": []}) for c in CATEGORIES)
lock = threading.Lock()


def record(cat, case, ok, detail=""):
    with lock:
        r = results[cat]
        r["tried"] += 1
        if ok:
            r["handled"] += 1
        else:
            r["bad"].append("%s: %s" % (case, detail))


# ---------------------------------------------------------------------------------------------- server
def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server():
    global server
    log = open(LOG, "a")
    env = dict(os.environ, LATHE_ROOT_ACCESS_KEY_ID=KEY, LATHE_ROOT_SECRET_ACCESS_KEY=SECRET)
    server = subprocess.Popen([BIN, "serve", "--addr", "%s:%d" % (HOST, PORT), "--data-dir", DATA],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError("lathe serve exited with %s:\n%s" % (server.returncode, open(LOG).read()[-4000:]))
        try:
            st, _, _ = raw("GET", "/_lathe/health", timeout=2)
            if st == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("lathe serve did not become healthy in 60 s")


def stop_server(sig=signal.SIGTERM):
    if server and server.poll() is None:
        server.send_signal(sig)
        server.wait(timeout=60)


def alive():
    try:
        return server.poll() is None and raw("GET", "/_lathe/health", timeout=5)[0] == 200
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- HTTP
def sigv4(method, path, headers, body, service, key=KEY, secret=SECRET, when=None, query=""):
    """Signs a request (AWS Signature Version 4), adding Host, X-Amz-Date, X-Amz-Content-Sha256 and
    Authorization to headers. path is sent as is (already percent-encoded)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    payload = hashlib.sha256(body).hexdigest()
    headers["Host"] = "%s:%d" % (HOST, PORT)
    headers["X-Amz-Date"] = amz_date
    headers["X-Amz-Content-Sha256"] = payload
    signed = sorted(k.lower() for k in headers)
    canon_headers = "".join("%s:%s\n" % (k.lower(), " ".join(str(v).split())) for k, v in
                            sorted(headers.items(), key=lambda kv: kv[0].lower()))
    canon_query = "&".join(sorted(query.split("&"))) if query else ""
    canonical = "\n".join([method, path, canon_query, canon_headers, ";".join(signed), payload])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], REGION, service)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + secret).encode()
    for part in (amz_date[:8], REGION, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        key, scope, ";".join(signed), sig)
    return headers


def raw(method, path, body=b"", headers=None, timeout=TIMEOUT):
    """One HTTP request; returns (status, headers with lower-case names, body). Raises OSError
    (socket.timeout included) when there is no answer."""
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        c.putrequest(method, path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            c.putheader(k, v)
        if body or method in ("POST", "PUT"):
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def sagemaker_raw(target, body, content_type="application/x-amz-json-1.1", sign=True, **kw):
    h = {"Content-Type": content_type} if content_type is not None else {}
    if target is not None:
        h["X-Amz-Target"] = target
    if sign:
        sigv4("POST", "/", h, body, "sagemaker", **kw)
    return raw("POST", "/", body, h)


def json_error(status, headers, body):
    """The AWS JSON 1.1 error type of a response, or None when it is not one (status, header
    X-Amzn-ErrorType and body {"__type", "message"} must agree)."""
    if not 400 <= status < 500:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    typ = doc.get("__type", "")
    if not typ or "message" not in doc and "Message" not in doc:
        return None
    return typ.split("#")[-1]


def s3_error(status, body):
    """The S3 error code of an XML error response, or None."""
    if not 300 <= status < 500:
        return None
    text = body.decode("utf-8", "replace")
    if "<Error>" not in text or "<Code>" not in text:
        return None
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0]


def client(service, key=KEY, secret=SECRET, retries=1, **cfg):
    session = boto3.session.Session()
    return session.client(service, endpoint_url=URL, region_name=REGION, aws_access_key_id=key,
                          aws_secret_access_key=secret,
                          config=Config(retries={"max_attempts": retries, "mode": "standard"}, connect_timeout=TIMEOUT,
                                        read_timeout=TIMEOUT, s3={"addressing_style": "path"}, **cfg))


def aws_cli(*args, key=KEY, secret=SECRET):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION=REGION,
               AWS_MAX_ATTEMPTS="1", AWS_PAGER="")
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return subprocess.run(["aws", "--endpoint-url", URL, "--region", REGION] + list(args), capture_output=True,
                          text=True, timeout=120, env=env)


def client_error(fn):
    """Runs fn; returns (None, result) on success, (code, status) on an AWS error. Other failures
    (no answer, connection reset) raise."""
    try:
        return None, fn()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"].get("HTTPStatusCode", 0)


# ---------------------------------------------------------------------------------------------- front door
def check_front_door():
    cat = "front door"
    describe = "SageMaker.DescribeAutoMLJobV2"
    bodies = {
        "truncated object": b'{"AutoMLJobName": "x"',
        "lone brace": b"{",
        "array": b"[]",
        "null": b"null",
        "string": b'"AutoMLJobName"',
        "number name": b'{"AutoMLJobName": 5}',
        "object name": b'{"AutoMLJobName": {"a": 1}}',
        "empty name": b'{"AutoMLJobName": ""}',
        "two documents": b'{"AutoMLJobName": "a"}{"AutoMLJobName": "b"}',
        "trailing garbage": b'{"AutoMLJobName": "a"} xyz',
        "invalid UTF-8": b'{"AutoMLJobName": "\xff\xfe"}',
        "NUL in name": b'{"AutoMLJobName": "a\\u0000b"}',
        "deep nesting": b'{"AutoMLJobName": ' + b"[" * 100000 + b"]" * 100000 + b"}",
        "empty body": b"",
        "unknown member": b'{"AutoMLJobName": "nope", "Bogus": [1, 2, 3]}',
        "huge number": b'{"MaxResults": 1e999999}',
        "binary": bytes(random.Random(1).randrange(256) for _ in range(4096)),
    }
    for name, body in bodies.items():
        target = "SageMaker.ListAutoMLJobs" if name == "huge number" else describe
        try:
            st, h, b = sagemaker_raw(target, body)
        except OSError as e:
            record(cat, name, False, "no answer: %s" % e)
            continue
        typ = json_error(st, h, b)
        ok = typ in ("ValidationException", "SerializationException", "ResourceNotFound")
        record(cat, name, ok, "%d %s" % (st, b[:200]))
    # A job request with every member of the wrong type.
    for name, body in {
        "create: name list": {"AutoMLJobName": ["x"]},
        "create: config string": {"AutoMLJobName": "x", "AutoMLJobInputDataConfig": "s3://b/x", "OutputDataConfig": {},
                                  "AutoMLProblemTypeConfig": {}, "RoleArn": ROLE},
        "create: channels of nulls": {"AutoMLJobName": "x", "AutoMLJobInputDataConfig": [None, None],
                                      "OutputDataConfig": {"S3OutputPath": 7}, "AutoMLProblemTypeConfig": None, "RoleArn": ROLE},
    }.items():
        st, h, b = sagemaker_raw("SageMaker.CreateAutoMLJobV2", json.dumps(body).encode())
        record(cat, name, json_error(st, h, b) in ("ValidationException", "SerializationException"), "%d %s" % (st, b[:200]))
    targets = {
        "unknown operation": "SageMaker.NoSuchOperation",
        "other service": "DynamoDB_20120810.ListTables",
        "no operation": "SageMaker.",
        "no dot": "DescribeAutoMLJobV2",
        "lower case": "sagemaker.describeautomljobv2",
        "missing": None,
    }
    for name, target in targets.items():
        st, h, b = sagemaker_raw(target, b'{"AutoMLJobName": "x"}')
        typ = json_error(st, h, b)
        record(cat, "target " + name, typ in ("UnknownOperationException", "InvalidAction", "UnknownOperation",
                                              "MissingAction", "ValidationException"), "%d %s" % (st, b[:200]))
    # Oversized bodies: refused with a 4xx while (or after) the server reads them, never a 5xx or a hang.
    for name, size in {"20 MiB JSON": 20 << 20, "2 MiB JSON": 2 << 20}.items():
        body = b'{"AutoMLJobName": "' + b"a" * size + b'"}'
        try:
            st, h, b = sagemaker_raw(describe, body)
            ok = 400 <= st < 500 and (json_error(st, h, b) is not None)
            record(cat, "oversized " + name, ok, "%d %s" % (st, b[:200]))
        except (BrokenPipeError, ConnectionResetError):
            record(cat, "oversized " + name, True)  # refused before the whole body was sent
        except OSError as e:
            record(cat, "oversized " + name, False, "no answer: %s" % e)
    for name, ctype in {"text/plain": "text/plain", "application/json": "application/json", "xml": "application/xml",
                        "json 1.0": "application/x-amz-json-1.0", "form": "application/x-www-form-urlencoded",
                        "garbage": "a/b;;;=\"", "missing": None}.items():
        st, h, b = sagemaker_raw("SageMaker.ListAutoMLJobs", b"{}", content_type=ctype)
        ok = st == 200 and "AutoMLJobSummaries" in json.loads(b) if st == 200 else json_error(st, h, b) is not None
        record(cat, "content type " + name, ok, "%d %s" % (st, b[:200]))
    # Requests that break HTTP itself (a DEL byte in a header, a bad %-escape in the path) are
    # refused by Go's HTTP server before any handler, with a plain 400, as a load balancer in front
    # of AWS would: handled when that 400 comes and the server goes on.
    for name, (path, headers) in {"DEL in a header": ("/", {"Content-Type": "\x7f;;;="}),
                                  "bad %-escape in the path": ("/%zz", {})}.items():
        st, h, b = raw("POST", path, b"{}", headers)
        record(cat, "HTTP-level " + name, st == 400 and alive(), "%d %s" % (st, b[:200]))
    # The runtime and S3 doors with junk.
    h = {"Content-Type": "application/json"}
    sigv4("POST", "/endpoints/no-such-endpoint/invocations", h, b"\xff{", "sagemaker")
    st, hh, b = raw("POST", "/endpoints/no-such-endpoint/invocations", b"\xff{", h)
    record(cat, "runtime: no endpoint", 400 <= st < 500 and b"ValidationError" in b, "%d %s" % (st, b[:200]))
    for name, path in {"NUL bucket": "/a%00b", "dot bucket": "/../..", "long bucket": "/" + "b" * 300,
                       "no such bucket": "/no-such-bucket-here", "bad list param": "/%s?list-type=9&max-keys=-1" % BUCKET}.items():
        h = {}
        p, _, q = path.partition("?")
        sigv4("GET", p, h, b"", "s3", query=q)
        st, hh, b = raw("GET", path, b"", h)
        record(cat, "s3 path " + name, s3_error(st, b) is not None, "%d %s" % (st, b[:200]))


# ---------------------------------------------------------------------------------------------- auth
def check_auth():
    cat = "auth"
    now = datetime.datetime.now(datetime.timezone.utc)
    list_body = b"{}"

    def sm(name, want, **kw):
        st, h, b = sagemaker_raw("SageMaker.ListAutoMLJobs", list_body, **kw)
        typ = json_error(st, h, b)
        record(cat, "sagemaker " + name, typ in want and st in (400, 403), "%d %s" % (st, b[:200]))

    def s3(name, want, path="/" + BUCKET, **kw):
        h = {}
        sigv4("GET", path, h, b"", "s3", **kw)
        st, hh, b = raw("GET", path, b"", h)
        record(cat, "s3 " + name, s3_error(st, b) in want and st in (400, 403), "%d %s" % (st, b[:200]))

    sm("unsigned", ("MissingAuthenticationToken", "MissingAuthenticationTokenException"), sign=False)
    sm("expired (20 min old)", ("InvalidSignatureException",), when=now - datetime.timedelta(minutes=20))
    sm("future (20 min ahead)", ("InvalidSignatureException",), when=now + datetime.timedelta(minutes=20))
    sm("unknown access key", ("UnrecognizedClientException",), key="AKIANOSUCHKEY0000000")
    sm("wrong secret", ("InvalidSignatureException",), secret="x" * 40)
    s3("expired (20 min old)", ("RequestTimeTooSkewed",), when=now - datetime.timedelta(minutes=20))
    s3("unknown access key", ("InvalidAccessKeyId",), key="AKIANOSUCHKEY0000000")
    s3("wrong secret", ("SignatureDoesNotMatch",), secret="x" * 40)
    st, h, b = raw("GET", "/" + BUCKET)
    record(cat, "s3 unsigned", s3_error(st, b) == "AccessDenied" and st == 403, "%d %s" % (st, b[:200]))
    # Tampered signatures and malformed Authorization headers.
    for name, mangle in {
        "tampered signature": lambda a: a[:-4] + ("0000" if not a.endswith("0000") else "1111"),
        "no signature": lambda a: a.split(", Signature=")[0],
        "garbage": lambda a: "AWS4-HMAC-SHA256 garbage",
        "other scheme": lambda a: "Basic dXNlcjpwYXNz",
        "bad date scope": lambda a: a.replace("/%s/" % REGION, "/%s/" % "xx-nowhere-9"),
        "empty": lambda a: "",
    }.items():
        h = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListAutoMLJobs"}
        sigv4("POST", "/", h, list_body, "sagemaker")
        h["Authorization"] = mangle(h["Authorization"])
        st, hh, b = raw("POST", "/", list_body, h)
        typ = json_error(st, hh, b)
        record(cat, "sagemaker " + name, typ in ("InvalidSignatureException", "IncompleteSignatureException",
                                                 "IncompleteSignature", "MissingAuthenticationToken",
                                                 "MissingAuthenticationTokenException", "SignatureDoesNotMatch"),
               "%d %s" % (st, b[:200]))
        h = {}
        sigv4("GET", "/" + BUCKET, h, b"", "s3")
        h["Authorization"] = mangle(h["Authorization"])
        st, hh, b = raw("GET", "/" + BUCKET, b"", h)
        record(cat, "s3 " + name, s3_error(st, b) in ("SignatureDoesNotMatch", "AuthorizationHeaderMalformed",
                                                       "AccessDenied", "InvalidArgument", "InvalidRequest"),
               "%d %s" % (st, b[:200]))
    # A signed body that was changed on the way.
    h = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListAutoMLJobs"}
    sigv4("POST", "/", h, b'{"MaxResults": 1}', "sagemaker")
    st, hh, b = raw("POST", "/", b'{"MaxResults": 2}', h)
    record(cat, "sagemaker body changed", json_error(st, hh, b) == "InvalidSignatureException", "%d %s" % (st, b[:200]))
    h = {}
    sigv4("PUT", "/%s/tampered" % BUCKET, h, b"signed", "s3")
    st, hh, b = raw("PUT", "/%s/tampered" % BUCKET, b"changed", h)
    record(cat, "s3 body changed", s3_error(st, b) in ("XAmzContentSHA256Mismatch", "BadDigest", "SignatureDoesNotMatch"),
           "%d %s" % (st, b[:200]))
    # As users meet them: the SDK and the CLI with wrong keys, and an expired presigned URL.
    for name, fn, want in [
        ("boto3 unknown key", lambda: client("sagemaker", key="AKIANOSUCHKEY0000000").list_auto_ml_jobs(), "UnrecognizedClientException"),
        ("boto3 wrong secret", lambda: client("sagemaker", secret="y" * 40).list_auto_ml_jobs(), "InvalidSignatureException"),
        ("boto3 s3 unknown key", lambda: client("s3", key="AKIANOSUCHKEY0000000").list_buckets(), "InvalidAccessKeyId"),
        ("boto3 s3 wrong secret", lambda: client("s3", secret="y" * 40).list_objects_v2(Bucket=BUCKET), "SignatureDoesNotMatch"),
    ]:
        code, _ = client_error(fn)
        record(cat, name, code == want, "got %s" % code)
    p = aws_cli("s3", "ls", "s3://%s/" % BUCKET, secret="z" * 40)
    record(cat, "aws cli wrong secret", p.returncode != 0 and "SignatureDoesNotMatch" in p.stderr, p.stderr[-200:])
    url = client("s3").generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "keys/plain.txt"}, ExpiresIn=1)
    time.sleep(2.1)
    u = urllib.parse.urlsplit(url)
    st, h, b = raw("GET", u.path + "?" + u.query)
    record(cat, "expired presigned URL", st == 403 and s3_error(st, b) == "AccessDenied", "%d %s" % (st, b[:200]))


# ---------------------------------------------------------------------------------------------- S3 keys
def check_s3_keys():
    cat = "s3 keys"
    s3 = client("s3")
    keys = ["plain.txt", "with space.txt", "ünïcødé/日本語.csv", "emoji😀.txt", "a//b", "../escape", "./dot", "x/../y",
            "dir/", "%2F%25", "plus+sign", "question?mark", "hash#tag", "semi;colon&amp", "tab\tkey", "ctrl\x01key",
            "new\nline", "back\\slash", "*star~tilde", "quote\"'", "<xml>&amp;", ".", "..", "dir/.", "trailing.",
            " leading space", "trailing space ", "k" * 1024, "clash", "clash/child", "clash/child/deeper/x"]
    for key in keys:
        body = ("body of %r" % key).encode()
        code, _ = client_error(lambda: s3.put_object(Bucket=BUCKET, Key="keys/" + key, Body=body))
        if code is not None:
            # Refused: S3's error, and the key is then absent.
            code2, _ = client_error(lambda: s3.head_object(Bucket=BUCKET, Key="keys/" + key))
            record(cat, repr(key), code in ("InvalidArgument", "KeyTooLongError", "InvalidObjectName", "InvalidKey",
                                            "InvalidRequest", "InvalidURI") and code2 in ("404", "NoSuchKey", "400"),
                   "refused with %s, then HEAD gave %s" % (code, code2))
            continue
        try:
            listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="keys/" + key).get("Contents", [])]
            got = s3.get_object(Bucket=BUCKET, Key="keys/" + key)["Body"].read()
            s3.delete_object(Bucket=BUCKET, Key="keys/" + key)
            code3, _ = client_error(lambda: s3.get_object(Bucket=BUCKET, Key="keys/" + key))
            ok = "keys/" + key in listed and got == body and code3 == "NoSuchKey"
            record(cat, repr(key), ok, "listed %r, body %r, after delete %s" % (listed[:3], got[:40], code3))
        except botocore.exceptions.ClientError as e:
            record(cat, repr(key), False, "stored, then %s" % e)
        if key in ("clash", "clash/child"):
            s3.put_object(Bucket=BUCKET, Key="keys/" + key, Body=body)  # keep it, for the next key to clash with
    code, _ = client_error(lambda: s3.put_object(Bucket=BUCKET, Key="k" * 1025, Body=b"x"))
    record(cat, "1025-byte key", code == "KeyTooLongError", "got %s" % code)
    # Bytes that are not UTF-8, and NUL: S3 refuses them (defect 3).
    for name, path in {"invalid UTF-8": "/%s/bad%%FF%%FEkey" % BUCKET, "NUL": "/%s/a%%00b" % BUCKET,
                       "overlong UTF-8": "/%s/%%C0%%AF" % BUCKET}.items():
        h = {}
        sigv4("PUT", path, h, b"x", "s3")
        st, hh, b = raw("PUT", path, b"x", h)
        record(cat, name, s3_error(st, b) in ("InvalidArgument", "InvalidObjectName", "InvalidURI", "InvalidKey"),
               "%d %s" % (st, b[:200]))
    # Deleting what is not there is a 204, twice, through the CLI and DeleteObjects (defect 1).
    for key in ("nodir/x", "zz/yy/x", "keys/clash/child/deeper/x", "keys/clash/x/y"):
        code, res = client_error(lambda: s3.delete_object(Bucket=BUCKET, Key=key))
        record(cat, "delete missing " + key, code is None and res["ResponseMetadata"]["HTTPStatusCode"] == 204,
               "got %s" % (code or res["ResponseMetadata"]["HTTPStatusCode"]))
    code, res = client_error(lambda: s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "nodir/x"}, {"Key": "zz/yy/x"}]}))
    record(cat, "DeleteObjects missing", code is None and not res.get("Errors"), "got %s %s" % (code, res))
    for i in range(2):
        p = aws_cli("s3", "rm", "s3://%s/dir2/x" % BUCKET)
        record(cat, "aws s3 rm missing #%d" % (i + 1), p.returncode == 0, p.stderr[-200:])
    src = os.path.join(WORK, "cli file.txt")
    open(src, "w").write("cli body")
    cli_key = "keys/cli key with spaces+plus&amp=1.txt"
    p1 = aws_cli("s3", "cp", src, "s3://%s/%s" % (BUCKET, cli_key))
    p2 = aws_cli("s3", "ls", "s3://%s/keys/cli" % BUCKET)
    p3 = aws_cli("s3", "rm", "s3://%s/%s" % (BUCKET, cli_key))
    record(cat, "aws cli odd key", p1.returncode == 0 and cli_key.split("/")[1] in p2.stdout and p3.returncode == 0,
           (p1.stderr + p2.stderr + p3.stderr)[-300:])
    # Racing PUT and DELETE on one key: every answer a success.
    statuses = collections.Counter()

    def race(i):
        c = client("s3")
        for _ in range(20):
            code, _ = client_error(lambda: c.put_object(Bucket=BUCKET, Key="race/a/b/key", Body=b"x") if i % 2 else
                                   c.delete_object(Bucket=BUCKET, Key="race/a/b/key"))
            with lock:
                statuses[code or "ok"] += 1
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(race, range(8)))
    record(cat, "racing PUT/DELETE (160 calls)", set(statuses) == {"ok"}, dict(statuses))


# ---------------------------------------------------------------------------------------------- jobs
def job_request(name, prefix, content_type="text/csv;header=present", compression="None", hp=None):
    return {
        "AutoMLJobName": name,
        "AutoMLJobInputDataConfig": [{
            "ChannelType": "training", "ContentType": content_type, "CompressionType": compression,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://%s/%s" % (BUCKET, prefix)}}}],
        "OutputDataConfig": {"S3OutputPath": "s3://%s/output/" % BUCKET},
        "AutoMLProblemTypeConfig": {"TextGenerationJobConfig": {
            "BaseModelName": "Stories260K",
            "TextGenerationHyperParameters": hp or {"epochCount": "1", "batchSize": "8", "learningRate": "0.001"},
            "ModelAccessConfig": {"AcceptEula": True}}},
        "RoleArn": ROLE,
        "DataSplitConfig": {"ValidationFraction": 0.2},
    }


def describe(name):
    """DescribeAutoMLJobV2 with every member (boto3 drops Lathe's TrainingProgress)."""
    st, h, b = sagemaker_raw("SageMaker.DescribeAutoMLJobV2", json.dumps({"AutoMLJobName": name}).encode())
    if st != 200:
        raise RuntimeError("DescribeAutoMLJobV2 %s: %d %s" % (name, st, b[:300]))
    return json.loads(b)


def wait_job(name, timeout):
    deadline = time.time() + timeout
    d = {}
    while time.time() < deadline:
        d = describe(name)
        if d["AutoMLJobStatus"] in ("Completed", "Failed", "Stopped"):
            return d
        time.sleep(0.25)
    return d


def csv_bytes(rows, header=("input", "output")):
    import csv
    buf = io.StringIO()
    w = csv.writer(buf)
    if header:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


# A 282-byte file on which parquet-go's page index reader indexed out of range (found by the dataset
# package's FuzzReadParquet; internal/dataset/testdata/fuzz/FuzzReadParquet/32c8177c62300e79).
PARQUET_PANIC = ("UEFSMRUwGTxICTAwMDAwMDAwMDkEMBUwOAA3MDAwMDAwMDAsOAAwMBUwOAAxNzAwMDAwMDAwLDgAMDAWMBkcGSgmMDAwMDAwMDAwMDAwMDAw"
                 "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDB0MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"
                 "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAWMBYwMTghMDAwMDAwMDAwMDAwMDAw"
                 "MDAwMDAwMDAwMDAwMDAwMDAwNzAwMDAwMDAwOAAwMA4BAABQQVIx")

GOOD_ROWS = [("What is %d plus %d?" % (i, i + 1), "It is %d." % (2 * i + 1)) for i in range(60)]


def check_datasets():
    cat = "datasets"
    s3 = client("s3")
    good = csv_bytes(GOOD_ROWS[:10])
    footer_bomb = b"PAR1" + b"\0" * 482 + struct.pack("<I", 0xEB000000) + b"PAR1"
    rng = random.Random(7)
    cases = {
        # name: (files, content type, compression, words the FailureReason must hold)
        "broken quoting": ({"a.csv": b'input,output\n"unterminated,quote\nsecond,row\n'}, None, "None", ["a.csv", "quote"]),
        "wrong columns": ({"a.csv": csv_bytes(GOOD_ROWS[:10], ("prompt", "completion"))}, None, "None", ["input"]),
        "extra column": ({"a.csv": b"input,output,extra\nq,a,x\n" * 3}, None, "None", ["extra"]),
        "empty file": ({"a.csv": b""}, None, "None", ["empty"]),
        "header only": ({"a.csv": b"input,output\n"}, None, "None", ["no data rows"]),
        "blank values": ({"a.csv": b"input,output\n ,a\nq,\n"}, None, "None", ["empty"]),
        "JSON in CSV": ({"a.json": json.dumps([{"input": "q", "output": "a"}] * 5).encode()}, None, "None", ["JSON"]),
        "JSON Lines in CSV": ({"a.jsonl": b'{"input": "q", "output": "a"}\n' * 5}, None, "None", ["JSON Lines"]),
        "UTF-16": ({"a.csv": "input,output\nq,a\n".encode("utf-16")}, None, "None", ["UTF-16"]),
        "bad UTF-8": ({"a.csv": b"input,output\nab\xff\xfe,cd\n" * 3}, None, "None", ["UTF-8"]),
        "NUL bytes": ({"a.csv": b"input,output\n\0\0\0,\0\n"}, None, "None", ["row"]),
        "random bytes": ({"a.csv": bytes(rng.randrange(256) for _ in range(4096))}, None, "None", ["a.csv"]),
        "gzip with None": ({"a.csv.gz": gzip.compress(good)}, None, "None", ["CompressionType"]),
        "plain with Gzip": ({"a.csv": good}, None, "Gzip", ["gzip"]),
        "corrupt gzip": ({"a.csv.gz": gzip.compress(good)[:40] + b"\0" * 40}, None, "Gzip", ["gzip"]),
        "broken Parquet": ({"a.parquet": b"PAR1" + bytes(rng.randrange(256) for _ in range(300)) + b"PAR1"},
                           "x-application/vnd.amazon+parquet", "None", ["Parquet"]),
        "Parquet footer bomb": ({"a.parquet": footer_bomb}, "x-application/vnd.amazon+parquet", "None", ["Parquet"]),
        "Parquet that panicked parquet-go": ({"a.parquet": base64.b64decode(PARQUET_PANIC)}, "x-application/vnd.amazon+parquet",
                                             "None", ["Parquet"]),
        "truncated Parquet": ({"a.parquet": b"PAR1\x15\x04\x15"}, "x-application/vnd.amazon+parquet", "None", ["Parquet"]),
        "CSV as Parquet": ({"a.csv": good}, "x-application/vnd.amazon+parquet", "None", ["Parquet"]),
        "Parquet as CSV": ({"a.parquet": footer_bomb}, None, "None", ["Parquet"]),
        "no objects": ({}, None, "None", ["no objects"]),
    }
    created = {}
    sm = client("sagemaker")
    for i, (name, (files, ctype, comp, words)) in enumerate(cases.items()):
        prefix = "bad/%02d/" % i
        for fname, data in files.items():
            s3.put_object(Bucket=BUCKET, Key=prefix + fname, Body=data)
        job = "bad-%02d" % i
        code, _ = client_error(lambda: sm.create_auto_ml_job_v2(**job_request(job, prefix, ctype or "text/csv;header=present", comp)))
        if code is not None:
            # Refused at create time: fine when it is a ValidationException (a clear error).
            record(cat, name, code == "ValidationException", "CreateAutoMLJobV2 answered %s" % code)
            continue
        created[name] = (job, words)
    deadline = time.time() + 150
    for name, (job, words) in created.items():
        d = wait_job(job, max(1, deadline - time.time()))
        reason = d.get("FailureReason", "")
        ok = d.get("AutoMLJobStatus") == "Failed" and all(w.lower() in reason.lower() for w in words)
        record(cat, name, ok, "%s: %r" % (d.get("AutoMLJobStatus"), reason[:200]))
    record(cat, "server alive after the broken datasets", alive(), "the server is down")
    left = [e for e in os.listdir(os.path.join(DATA, "work"))] if os.path.isdir(os.path.join(DATA, "work")) else []
    record(cat, "no work dirs left by failed jobs", not any(e.startswith("bad-") for e in left), "left: %s" % left)


def metrics_of(d):
    best = d.get("BestCandidate") or {}
    ms = (best.get("CandidateProperties") or {}).get("CandidateMetrics") or []
    return sorted((m.get("StandardMetricName") or m.get("MetricName"), m.get("Set"), m.get("Value")) for m in ms)


def check_kill():
    cat = "kill -9"
    s3 = client("s3")
    # Long enough (about 360 steps) for TrainingModels to be seen between two polls.
    rows = [("Tell me about number %d and its friend %d." % (i, 7 * i % 101), "Number %d is %s." % (i, "even" if i % 2 == 0 else "odd"))
            for i in range(300)]
    s3.put_object(Bucket=BUCKET, Key="train/train.csv", Body=csv_bytes(rows))
    hp = {"epochCount": "3", "batchSize": "2", "learningRate": "0.001", "learningRateWarmupSteps": "0"}
    sm = client("sagemaker")
    sm.create_auto_ml_job_v2(**job_request("kill-reference", "train/", hp=hp))
    t0 = time.time()
    ref = wait_job("kill-reference", 120)
    took = time.time() - t0
    if ref.get("AutoMLJobStatus") != "Completed" or not metrics_of(ref):
        record(cat, "uninterrupted reference run", False, "%s %s" % (ref.get("AutoMLJobStatus"), ref.get("FailureReason")))
        return
    want = metrics_of(ref)
    print("   reference job: %.1f s, metrics %s" % (took, want), flush=True)

    def at_analyzing(d):
        return d.get("AutoMLJobSecondaryStatus") == "AnalyzingData"

    def at_training(d):
        p = d.get("TrainingProgress") or {}
        return d.get("AutoMLJobSecondaryStatus") == "TrainingModels" and p.get("Step", 0) >= 2

    def at_upload(job):
        def f(d):
            p = d.get("TrainingProgress") or {}
            if p.get("Message") == "evaluating the fine-tuned model":
                return True
            out = s3.list_objects_v2(Bucket=BUCKET, Prefix="output/%s/" % job).get("Contents", [])
            return any("/checkpoints/" not in o["Key"] and not o["Key"].endswith("training-log.jsonl") for o in out)
        return f

    for phase, when in [("AnalyzingData", lambda job: at_analyzing), ("TrainingModels", lambda job: at_training),
                        ("evaluation/upload", at_upload)]:
        reached = False
        for attempt in range(3):  # a phase can pass between two polls; try again with a new job
            job = "kill-%s-%d" % (phase.split("/")[0].lower(), attempt)
            sm.create_auto_ml_job_v2(**job_request(job, "train/", hp=hp))
            check = when(job)
            deadline = time.time() + 120
            d = {}
            while time.time() < deadline:
                d = describe(job)
                if check(d):
                    reached = True
                    break
                if d["AutoMLJobStatus"] != "InProgress":
                    break
                time.sleep(0.01)
            if reached:
                break
            wait_job(job, 120)
        if not reached:
            record(cat, phase, False, "never saw the job in this phase (last %s/%s)" % (
                d.get("AutoMLJobStatus"), d.get("AutoMLJobSecondaryStatus")))
            continue
        stop_server(signal.SIGKILL)
        start_server()
        d = wait_job(job, 180)
        got = metrics_of(d)
        ok = d.get("AutoMLJobStatus") == "Completed" and got == want
        record(cat, phase, ok, "%s %s; metrics %s, want %s" % (d.get("AutoMLJobStatus"), d.get("FailureReason", ""), got, want))
        print("   killed in %s: %s" % (phase, d.get("AutoMLJobStatus")), flush=True)


# ---------------------------------------------------------------------------------------------- overload
def check_overload():
    cat = "overload"
    s3 = client("s3")
    for i in range(50):
        s3.put_object(Bucket=BUCKET, Key="load/%03d" % i, Body=b"x" * i)
    lat = []

    def one_client(i):
        sm, c = client("sagemaker"), client("s3")
        for j in range(10):
            for name, fn in (("DescribeAutoMLJobV2", lambda: sm.describe_auto_ml_job_v2(AutoMLJobName="kill-reference")),
                             ("ListObjectsV2", lambda: c.list_objects_v2(Bucket=BUCKET, Prefix="load/"))):
                t = time.time()
                try:
                    res = fn()
                    ok = (res.get("AutoMLJobStatus") == "Completed") if name.startswith("Describe") else res.get("KeyCount") == 50
                    record(cat, name, ok, "wrong answer")
                except botocore.exceptions.ClientError as e:
                    record(cat, name, False, "%s %s" % (e.response["ResponseMetadata"].get("HTTPStatusCode"), e.response["Error"]["Code"]))
                except Exception as e:  # no answer, connection reset: the worst kind of bad
                    record(cat, name, False, "%s: %s" % (type(e).__name__, e))
                with lock:
                    lat.append(time.time() - t)
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        list(pool.map(one_client, range(64)))
    lat.sort()
    print("   overload: %d calls from 64 clients in %.1f s; latency p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (
        len(lat), time.time() - t0, 1000 * lat[len(lat) // 2], 1000 * lat[int(len(lat) * 0.99)], 1000 * lat[-1]), flush=True)
    record(cat, "server alive after the overload", alive(), "the server is down")


# ---------------------------------------------------------------------------------------------- main
def main():
    global PORT, URL, BIN
    if not os.path.isfile(MODEL):
        sys.exit("base model not found at %s" % MODEL)
    BIN = os.environ.get("LATHE_BIN") or os.path.join(WORK, "lathe")
    if not os.environ.get("LATHE_BIN"):
        subprocess.run(["go", "build", "-o", BIN, "./cmd/lathe"], cwd=ROOT, check=True)
    subprocess.run([BIN, "models", "import", MODEL, "--name", "Stories260K", "--data-dir", DATA], check=True,
                   stdout=subprocess.DEVNULL)
    PORT = free_port()
    URL = "http://%s:%d" % (HOST, PORT)
    start_server()
    t_start = time.time()
    try:
        client("s3").create_bucket(Bucket=BUCKET)
        client("s3").put_object(Bucket=BUCKET, Key="keys/plain.txt", Body=b"x")
        for name, check in [("front door", check_front_door), ("auth", check_auth), ("s3 keys", check_s3_keys),
                            ("datasets", check_datasets), ("kill -9", check_kill), ("overload", check_overload)]:
            t = time.time()
            try:
                check()
            except Exception as e:  # a check that cannot go on is itself bad
                import traceback
                traceback.print_exc()
                record(name, "the check itself", False, "%s: %s" % (type(e).__name__, e))
            if server.poll() is not None:
                record(name, "server", False, "lathe serve exited with %s" % server.returncode)
                start_server()
            print("%-10s done in %.1f s" % (name, time.time() - t), flush=True)
    finally:
        stop_server()
    bad = 0
    print()
    print("%-10s | %5s | %7s | %3s" % ("category", "tried", "handled", "bad"))
    print("-" * 11 + "+" + "-" * 7 + "+" + "-" * 9 + "+" + "-" * 4)
    for cat, r in results.items():
        print("%-10s | %5d | %7d | %3d" % (cat, r["tried"], r["handled"], len(r["bad"])))
        bad += len(r["bad"])
    tried = sum(r["tried"] for r in results.values())
    handled = sum(r["handled"] for r in results.values())
    print("%-10s | %5d | %7d | %3d" % ("total", tried, handled, bad))
    print("(%.0f s)" % (time.time() - t_start))
    for cat, r in results.items():
        for b in r["bad"]:
            print("BAD %s: %s" % (cat, b))
    if bad:
        print("--- server log (tail)")
        print(open(LOG).read()[-4000:])
    else:
        shutil.rmtree(WORK, ignore_errors=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
