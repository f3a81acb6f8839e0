"""Cold start, memory, evaluate time and cost per 1,000 documents of the deployed functions.

Run from the project root after ``make build`` (``make bench`` does both):
``.venv/bin/python -m benchmarks.lambda_bench [--runs 15] [--only init,memory,evaluate,cost]``.

init      Each function as ``sam build`` left it (.aws-sam/build): a fresh python3.13 per run,
          laid out like Lambda (the function dir first, then the layer's ``python/``, the standard
          library, then the runtime's boto3), timing ``import app``. Beside it, in the same run:
          a bare ``import boto3`` (the target is at most 1.5x that) and the same artifact with
          the other bytecode choice: every .pyc removed, or the layer compiled with compileall.
          Lambda's task root and layers are read-only, so Python can never cache bytecode there:
          the no-bytecode copy must stay free of __pycache__ (checked after the runs) and every
          child runs with -B and PYTHONDONTWRITEBYTECODE=1 so that no run warms another.
memory    The built handlers in the same layout, against moto and a Datalab sink served by
          another process (benchmarks/_lambda_servers.py), so that moto's copy of a 100 MB
          upload is never in the measured process. One process per input: warm-up call, then
          the measured call with Linux's peak-RSS mark reset just before it, then a second copy
          under tracemalloc. Submit: 1 MB and 100 MB documents (target: growth from 1 MB to
          100 MB under 20 MB). Poll and evaluate: a scored 200-field result with a 10-page and a
          1,000-page block tree (about 20 KB of JSON a page). Each MemorySize in template.yaml
          must be the smallest size that holds the largest input's peak RSS plus 25% and runs
          its call, slowed down to that size's CPU share, within half the function's timeout.
evaluate  load_schema + evaluate_extraction for 200 fields (target: under 5 ms warm, median).
cost      The local stack (moto + the real ASL + the handlers + the emulator) processes 20 sample
          documents; Lambda invocations, Step Functions transitions (from the execution
          histories), DynamoDB/SQS/S3/Secrets Manager requests and handler durations are counted
          in-process and priced per 1,000 documents at template.yaml's memory sizes.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import math
import os
import py_compile
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(PROJECT)]  # for benchmarks/ itself; doctriage_core is installed

from benchmarks._lambda_servers import BLOCKS_PER_PAGE, make_result, schema_for  # noqa: E402
from doctriage_local.template import function_properties, load_template  # noqa: E402

BUILD = PROJECT / ".aws-sam" / "build"
CHILD = Path(__file__).resolve().parent / "_lambda_child.py"
FUNCTIONS = ("SubmitFunction", "PollFunction", "EvaluateFunction")
# What the python3.13 runtime itself provides (the layer does not ship boto3).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
REGION = "us-east-1"

TARGET_INIT_RATIO = 1.5
TARGET_SUBMIT_GROWTH_MB = 20.0
TARGET_EVALUATE_MS = 5.0
MEMORY_HEADROOM = 1.25  # a memory size must hold the measured peak RSS plus a quarter
# ... and finish the measured call, slowed down by the CPU share of that size, in half its timeout.
TIMEOUT_SHARE = 0.5
# The largest result poll and evaluate are sized for: a 1,000-page document's block tree.
DESIGN_PAGES = 1_000
LAMBDA_SIZES_MB = (128, 192, 256, 320, 384, 448, 512, 640, 768, 1024)
FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB, proportionally less below

# us-east-1 list prices.
LAMBDA_USD_PER_GB_S = 0.0000133334  # arm64
LAMBDA_USD_PER_REQUEST = 0.20 / 1_000_000
SFN_USD_PER_TRANSITION = 0.025 / 1_000
DDB_USD_PER_WRU = 0.625 / 1_000_000  # on-demand
DDB_USD_PER_RRU = 0.125 / 1_000_000
SQS_USD_PER_REQUEST = 0.40 / 1_000_000  # standard queue, per 64 KB chunk
S3_USD_PER_PUT = 0.005 / 1_000
S3_USD_PER_GET = 0.0004 / 1_000
SECRETS_USD_PER_CALL = 0.05 / 10_000
LOGS_USD_PER_GB = 0.50  # CloudWatch Logs ingestion
PLATFORM_LOG_BYTES = 350  # START, END and REPORT lines per invocation


# ------------------------------------------------------------------------------------ helpers


@dataclass
class Row:
    section: str
    metric: str
    value: str
    target: str = ""
    verdict: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *args: str) -> None:
        self.rows.append(Row(*args))

    def print(self) -> None:
        headers = ("", "metric", "value", "target", "")
        table = [headers] + [(r.section, r.metric, r.value, r.target, r.verdict) for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
        line = "  ".join("-" * w for w in widths)
        print(line)
        for i, row in enumerate(table):
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
            if i == 0:
                print(line)
        print(line)
        for note in self.notes:
            print(f"* {note}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def template_memory() -> dict[str, int]:
    template = load_template()
    return {fn: int(function_properties(template, fn).get("MemorySize", 128)) for fn in FUNCTIONS}


def code_dirs() -> dict[str, Path]:
    template = load_template()
    return {fn: PROJECT / function_properties(template, fn)["CodeUri"] for fn in FUNCTIONS}


def lambda_python() -> str:
    """The base python3.13 (not the venv's wrapper): with -I -S it sees only the stdlib."""
    base = getattr(sys, "_base_executable", sys.executable)
    if sys.version_info[:2] != (3, 13):
        print(
            f"warning: this is Python {sys.version.split()[0]}; Lambda runs 3.13", file=sys.stderr
        )
    return base


def stale_files() -> list[str]:
    """Source files that differ from (or are missing in) the sam build artifact."""
    stale = []
    for fn, src in code_dirs().items():
        for path in src.glob("*.py"):
            built = BUILD / fn / path.name
            if not built.exists() or built.read_bytes() != path.read_bytes():
                stale.append(str(path.relative_to(PROJECT)))
    core = PROJECT / "shared" / "doctriage_core"
    for path in core.rglob("*.py"):
        built = BUILD / "CoreLayer" / "python" / "doctriage_core" / path.relative_to(core)
        if not built.exists() or built.read_bytes() != path.read_bytes():
            stale.append(str(path.relative_to(PROJECT)))
    return stale


def strip_bytecode(root: Path) -> None:
    for cache in list(root.rglob("__pycache__")):
        shutil.rmtree(cache)
    for pyc in root.rglob("*.pyc"):
        pyc.unlink()


def bytecode_files(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.pyc"))


def make_runtime_dir(target: Path) -> Path:
    """A stand-in for the runtime's site-packages: links to this venv's boto3 and its deps."""
    target.mkdir(parents=True)
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed in {sys.prefix}")
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)
    return target


def lambda_env(function: str, memory: int, task: str, extra: dict[str, str] | None = None) -> dict:
    template = load_template()
    # The baseline (no function) gets the Globals' environment like every function.
    own = function if function in FUNCTIONS else FUNCTIONS[-1]
    variables = function_properties(template, own)["Environment"]["Variables"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",  # ignored under -I; -B does the same
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "LAMBDA_TASK_ROOT": task,
        "_HANDLER": "app.lambda_handler",
    }
    env.update({k: v for k, v in variables.items() if isinstance(v, str | int | float)})
    env = {k: str(v) for k, v in env.items()}
    env.update(extra or {})
    return env


# ------------------------------------------------------------------------------------ init


@dataclass
class InitResult:
    as_built_bytecode: bool
    baseline: list[float]
    as_built: dict[str, list[float]]
    other: dict[str, list[float]]
    flags: dict[str, dict[str, Any]]


def run_init(report: Report, runs: int, work: Path) -> InitResult:
    python = lambda_python()
    memory = template_memory()
    runtime = make_runtime_dir(work / "runtime")
    as_built = work / "as-built"
    shutil.copytree(BUILD, as_built, symlinks=True)
    layer_py = as_built / "CoreLayer" / "python"
    ships = bytecode_files(layer_py / "doctriage_core") > 0
    plain = work / "no-bytecode"
    shutil.copytree(as_built, plain, symlinks=True)
    strip_bytecode(plain)
    if ships:
        other_root, other_label = plain, "bytecode removed"
    else:
        other_root, other_label = work / "compiled", "layer precompiled (compileall)"
        shutil.copytree(plain, other_root, symlinks=True)
        compileall.compile_dir(
            str(other_root / "CoreLayer" / "python"),
            quiet=2,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    built_label = "as built (layer bytecode shipped)" if ships else "as built (no bytecode)"

    def command(root: Path | None, fn: str | None) -> list[str]:
        task = str(root / fn) if root and fn else "-"
        layer = str(root / "CoreLayer" / "python") if root else "-"
        module = "app" if fn else "boto3"
        return [python, "-I", "-S", "-B", str(CHILD), "init", task, layer, str(runtime), module]

    baseline: tuple[str, str | None, Path | None] = ("boto3", None, None)
    variants: list[tuple[str, str | None, Path | None]] = []
    for fn in FUNCTIONS:
        variants += [("built", fn, as_built), ("other", fn, other_root)]
    times: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    cpu: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    ratios: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    cpu_ratios: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    flags: dict[str, dict[str, Any]] = {}

    def run_one(kind: str, fn: str | None, root: Path | None) -> dict[str, Any]:
        cmd = command(root, fn)
        env = lambda_env(fn or "Baseline", memory.get(fn or "", 128), cmd[6])
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"init run of {fn or 'boto3'} failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if not result["dont_write_bytecode"]:
            raise RuntimeError("a child ran without -B")
        times[(kind, fn)].append(result["ms"])
        cpu[(kind, fn)].append(result["cpu_ms"])
        return result

    rng = random.Random(20250601)
    for _ in range(runs):
        order = variants[:]
        rng.shuffle(order)  # spread the machine's load evenly over the variants
        for kind, fn, root in order:
            # Each run is paired with a bare boto3 import right beside it (in a random order),
            # so that both see the same load from whatever else runs on the machine.
            pair = [baseline, (kind, fn, root)]
            rng.shuffle(pair)
            base_run, run = sorted((run_one(*v) for v in pair), key=lambda r: r["module"] == "app")
            ratios[(kind, fn)].append(run["ms"] / base_run["ms"])
            cpu_ratios[(kind, fn)].append(run["cpu_ms"] / base_run["cpu_ms"])
            if kind == "built" and fn:
                flags[fn] = run
    leaked = bytecode_files(plain)
    if leaked:
        raise RuntimeError(f"{leaked} .pyc files appeared in the no-bytecode copy: runs warmed up")

    base, base_cpu = median(times[("boto3", None)]), median(cpu[("boto3", None)])
    report.add(
        "init",
        f"bare `import boto3` (median of {len(times[('boto3', None)])} runs)",
        f"{base:.0f} ms (CPU {base_cpu:.0f} ms)",
        "",
        "",
    )

    def figures(key: tuple[str, str]) -> tuple[str, float]:
        wall, cpu_ms = median(times[key]), median(cpu[key])
        ratio, cpu_ratio = median(ratios[key]), median(cpu_ratios[key])
        # Three decimals where a verdict depends on it: 1.503 must not read as 1.50.
        digits = 3 if key[0] == "built" else 2
        text = (
            f"{wall:.0f} ms = {ratio:.{digits}f}x (CPU {cpu_ms:.0f} ms = {cpu_ratio:.{digits}f}x)"
        )
        return text, ratio

    for fn in FUNCTIONS:
        text, ratio = figures(("built", fn))
        report.add(
            "init",
            f"{fn} {built_label}",
            text,
            f"<= {TARGET_INIT_RATIO}x",
            verdict(ratio <= TARGET_INIT_RATIO),
        )
        report.add("init", f"{fn} {other_label}", figures(("other", fn))[0], "", "")
        info = flags[fn]
        loaded = (
            ", ".join(
                name
                for name, key in (
                    ("httpx", "httpx"),
                    ("parameters", "parameters"),
                    ("X-Ray SDK", "xray"),
                )
                if info[key]
            )
            or "none of httpx/parameters/X-Ray"
        )
        report.add("init", f"{fn} loads", f"{info['modules']} modules; {loaded}", "", "")
    report.notes.append(
        f"init: medians of {runs} fresh interpreters per variant, in a shuffled order, each run "
        "paired with a bare boto3 import beside it; a ratio is the median over the pairs of "
        "import time / boto3 time (the verdict uses wall time; CPU time is shown too, being "
        "less disturbed by other load on the machine). The no-bytecode copy still had 0 .pyc "
        "files after all runs."
    )
    return InitResult(
        ships,
        times[("boto3", None)],
        {fn: times[("built", fn)] for fn in FUNCTIONS},
        {fn: times[("other", fn)] for fn in FUNCTIONS},
        flags,
    )


# ------------------------------------------------------------------------------------ memory


@contextlib.contextmanager
def far_side() -> Iterator[dict[str, str]]:
    """moto + the Datalab sink in their own process."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._lambda_servers"],
        cwd=PROJECT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the moto/sink process did not start")
        yield json.loads(line)
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _clients(endpoint: str) -> dict[str, Any]:
    import boto3

    kwargs = {
        "region_name": REGION,
        "endpoint_url": endpoint,
        "aws_access_key_id": "bench",
        "aws_secret_access_key": "bench",
    }
    return {
        name: boto3.client(name, **kwargs)  # type: ignore[call-overload]
        for name in ("s3", "dynamodb", "sqs", "stepfunctions", "secretsmanager")
    }


def _sqs_event(bucket: str, key: str, head: dict[str, Any]) -> dict[str, Any]:
    s3_event = {
        "Records": [
            {
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {
                        "key": key,
                        "size": head["ContentLength"],
                        "eTag": head["ETag"].strip('"'),
                        "versionId": head.get("VersionId"),
                    },
                }
            }
        ]
    }
    return {
        "Records": [
            {
                "messageId": f"m-{key}",
                "receiptHandle": f"r-{key}",
                "body": json.dumps(s3_event),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "awsRegion": REGION,
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:intake",
            }
        ]
    }


def _document_state(bucket: str, name: str) -> dict[str, Any]:
    from doctriage_core.domain.documents import DocumentRef, document_id_for

    key = f"incoming/bench200/{name}.pdf"
    return DocumentRef(
        document_id=document_id_for(bucket, key, None, name),
        bucket=bucket,
        key=key,
        doc_type="bench200",
        version_id=None,
        etag=name,
        size=1000,
    ).to_state()


@dataclass
class MemoryRun:
    function: str
    label: str
    size: int  # bytes of the document, or pages of the result
    process_peak_mb: float
    growth_mb: float
    traced_mb: float
    seconds: float
    method: str


def run_memory(report: Report, work: Path) -> dict[str, list[MemoryRun]]:
    python = lambda_python()
    memory = template_memory()
    runtime = work / "runtime"
    if not runtime.exists():
        make_runtime_dir(runtime)
    root = work / "as-built"
    if not root.exists():
        shutil.copytree(BUILD, root, symlinks=True)
    layer = str(root / "CoreLayer" / "python")
    results: dict[str, list[MemoryRun]] = defaultdict(list)
    with far_side() as servers:
        aws = _clients(servers["moto"])
        bucket = "bench-documents"
        aws["s3"].create_bucket(Bucket=bucket)
        aws["s3"].put_object(
            Bucket=bucket,
            Key="schemas/invoice.json",
            Body=(PROJECT / "samples/schemas/invoice.json").read_bytes(),
        )
        aws["s3"].put_object(
            Bucket=bucket, Key="schemas/bench200.json", Body=json.dumps(schema_for(200)).encode()
        )
        ddb = aws["dynamodb"]
        for table, key in (
            ("bench-results", "document_id"),
            ("bench-idempotency", "id"),
            ("bench-usage", "period"),
        ):
            ddb.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            )
        queue = aws["sqs"].create_queue(QueueName="bench-review")["QueueUrl"]
        machine = aws["stepfunctions"].create_state_machine(
            name="bench",
            roleArn="arn:aws:iam::123456789012:role/bench",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        secret = aws["secretsmanager"].create_secret(Name="bench-key", SecretString="bench-key")[
            "ARN"
        ]
        env_extra = {
            "AWS_ENDPOINT_URL": servers["moto"],
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "DOCUMENTS_BUCKET": bucket,
            "RESULTS_TABLE": "bench-results",
            "REVIEW_QUEUE_URL": queue,
            "DATALAB_API_URL": servers["sink"],
            "DATALAB_API_KEY_SECRET_ARN": secret,
            "STATE_MACHINE_ARN": machine,
            "IDEMPOTENCY_TABLE": "bench-idempotency",
            "USAGE_TABLE": "bench-usage",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }

        def put_document(name: str, size: int) -> dict[str, Any]:
            key = f"incoming/invoice/{name}.pdf"
            body = b"%PDF-1.7\n" + os.urandom(size - 9)
            aws["s3"].put_object(Bucket=bucket, Key=key, Body=body)
            return _sqs_event(bucket, key, aws["s3"].head_object(Bucket=bucket, Key=key))

        def poll_state(name: str, pages: int) -> dict[str, Any]:
            now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return {
                "document": _document_state(bucket, name),
                "schema": {"key": "schemas/bench200.json", "version_id": None},
                "upload_threshold": None,
                "datalab": {
                    "request_id": name,
                    "check_url": f"{servers['sink']}/api/v1/extract/result-{pages}-200",
                },
                "submitted_at": now,
                "first_wait_seconds": 1,
            }

        def evaluate_state(name: str, pages: int) -> dict[str, Any]:
            state = poll_state(name, pages)
            key = f"results/{state['document']['document_id']}/datalab-result.json"
            aws["s3"].put_object(
                Bucket=bucket, Key=key, Body=json.dumps(make_result(pages, 200)).encode()
            )
            state["poll"] = {
                "ready": True,
                "scored": True,
                "phase": "scored",
                "polls": 1,
                "result_key": key,
                "page_count": pages,
                "next_wait_seconds": 0,
            }
            return state

        mb = 1024 * 1024
        plans: list[tuple[str, str, int, Callable[[str, int], Any]]] = [
            ("SubmitFunction", "1 MB document", mb, put_document),
            ("SubmitFunction", "100 MB document", 100 * mb, put_document),
            ("PollFunction", "10-page result", 10, poll_state),
            ("PollFunction", f"{DESIGN_PAGES:,}-page result", DESIGN_PAGES, poll_state),
            ("EvaluateFunction", "10-page result", 10, evaluate_state),
            ("EvaluateFunction", f"{DESIGN_PAGES:,}-page result", DESIGN_PAGES, evaluate_state),
        ]
        warm_size = {"SubmitFunction": 64 * 1024, "PollFunction": 2, "EvaluateFunction": 2}
        for i, (fn, label, size, make) in enumerate(plans):
            print(f"memory: {fn} {label}", file=sys.stderr)
            spec = {
                "function": fn,
                "memory": memory[fn],
                "out": str(work / f"memory-{i}.json"),
                "warmups": [make(f"warm-{i}", warm_size[fn])],
                "runs": [
                    {
                        "label": label,
                        "rss_event": make(f"rss-{i}", size),
                        "traced_event": make(f"traced-{i}", size),
                    }
                ],
            }
            spec_file = work / f"memory-{i}-spec.json"
            spec_file.write_text(json.dumps(spec))
            task = str(root / fn)
            done = subprocess.run(
                [
                    python,
                    "-I",
                    "-S",
                    "-B",
                    str(CHILD),
                    "memory",
                    task,
                    layer,
                    str(runtime),
                    str(spec_file),
                ],
                env=lambda_env(fn, memory[fn], task, env_extra),
                capture_output=True,
                text=True,
                timeout=900,
            )
            if done.returncode != 0:
                raise RuntimeError(f"memory run {fn} {label} failed:\n{done.stderr[-3000:]}")
            out = json.loads(Path(spec["out"]).read_text())
            for r in out["runs"]:
                _check_outcome(fn, r["result"])
                _check_outcome(fn, r["traced_result"])
                results[fn].append(
                    MemoryRun(
                        fn,
                        r["label"],
                        size,
                        out["process_peak_kb"] / 1024,
                        (r["rss_peak_kb"] - r["rss_before_kb"]) / 1024,
                        r["traced_peak_bytes"] / mb,
                        r["seconds"],
                        r["peak_method"],
                    )
                )
        import urllib.request

        with urllib.request.urlopen(f"{servers['sink']}/_sink/stats") as response:
            received = json.load(response)["received"]
    if max(received, default=0) < 100 * mb:
        raise RuntimeError(f"the sink never received the 100 MB document: {received}")

    timeouts = {
        fn: int(function_properties(load_template(), fn).get("Timeout", 3)) for fn in FUNCTIONS
    }
    for fn in FUNCTIONS:
        for run in results[fn]:
            report.add(
                "memory",
                f"{fn} {run.label}",
                f"peak RSS {run.process_peak_mb:.0f} MB; call {run.growth_mb:+.1f} MB "
                f"(traced {run.traced_mb:.1f} MB) in {run.seconds:.2f} s",
                "",
                "",
            )
    submit = {r.label: r for r in results["SubmitFunction"]}
    small, large = submit["1 MB document"], submit["100 MB document"]
    difference = round(large.growth_mb - small.growth_mb, 1) + 0.0  # no "-0.0"
    report.add(
        "memory",
        "SubmitFunction growth, 100 MB minus 1 MB",
        f"{difference:+.1f} MB",
        f"< {TARGET_SUBMIT_GROWTH_MB:.0f} MB",
        verdict(difference < TARGET_SUBMIT_GROWTH_MB),
    )
    for fn in FUNCTIONS:
        peak = max(r.process_peak_mb for r in results[fn])
        seconds = max(r.seconds for r in results[fn])
        budget = timeouts[fn] * TIMEOUT_SHARE

        def fits(
            size: int, peak: float = peak, seconds: float = seconds, budget: float = budget
        ) -> bool:
            return (
                size >= peak * MEMORY_HEADROOM and seconds * max(1, FULL_VCPU_MB / size) <= budget
            )

        smallest = next((size for size in LAMBDA_SIZES_MB if fits(size)), LAMBDA_SIZES_MB[-1])
        configured = memory[fn]
        note = (
            "the smallest that fits"
            if configured == smallest
            else (
                f"smallest that fits: {smallest} MB"
                if fits(configured)
                else f"too small: needs {smallest} MB"
            )
        )
        slowed = seconds * max(1, FULL_VCPU_MB / configured)
        report.add(
            "memory",
            f"{fn} MemorySize (largest input: peak RSS, time at that CPU share)",
            f"{configured} MB ({note}): {peak:.0f} MB, ~{slowed:.0f} s of {timeouts[fn]} s",
            f"peak x {MEMORY_HEADROOM}, time <= {TIMEOUT_SHARE:.0%} timeout",
            verdict(configured == smallest),
        )
        by_size = sorted(results[fn], key=lambda r: r.size)
        if fn != "SubmitFunction" and len(by_size) >= 2:
            lo, hi = by_size[0], by_size[-1]
            per_page = (hi.process_peak_mb - lo.process_peak_mb) / (hi.size - lo.size)
            if per_page > 0:
                pages = lo.size + (configured / MEMORY_HEADROOM - lo.process_peak_mb) / per_page
                report.add(
                    "memory",
                    f"{fn} largest result within {configured} MB / {MEMORY_HEADROOM}",
                    f"~{pages:,.0f} pages ({per_page * 1024:.0f} KB of RSS per page)",
                    "",
                    "",
                )
    method = {r.method for runs in results.values() for r in runs}
    report.notes.append(
        "memory: peak RSS via " + " / ".join(sorted(method)) + " (VmHWM: the kernel's "
        "high-water mark, reset just before the measured call); 'traced' = tracemalloc's peak "
        "of Python allocations during a second, identical call."
    )
    return results


def _check_outcome(fn: str, result: Any) -> None:
    ok = (
        result == {"batchItemFailures": []}
        if fn == "SubmitFunction"
        else isinstance(result, dict) and result.get("ready") is True
        if fn == "PollFunction"
        else isinstance(result, dict) and result.get("status") == "complete"
    )
    if not ok:
        raise RuntimeError(f"{fn} did not succeed in the memory run: {result!r}")


# ------------------------------------------------------------------------------------ evaluate


def evaluation_input(fields: int, pages: int) -> tuple[bytes, dict[str, Any]]:
    """A 200-field schema as a real one looks (mixed types, patterns, enums, line items,
    per-field thresholds, distinct descriptions) and a complete, scored result for it."""
    props: dict[str, Any] = {
        "document_type": {
            "type": "string",
            "enum": ["invoice", "receipt", "credit_note"],
            "description": "Kind of document",
        }
    }
    values: dict[str, Any] = {"document_type": "invoice"}
    for i in range(fields - 1):
        name = f"field_{i:03d}"
        kind = i % 6
        if kind == 0:
            prop: dict[str, Any] = {"type": "string", "description": f"Free text number {i}"}
            value: Any = f"Acme Widgets {i}"
        elif kind == 1:
            prop = {"type": "number", "minimum": 0, "description": f"Amount {i}"}
            value = i * 1.25
        elif kind == 2:
            prop = {"type": "string", "format": "date", "description": f"Date {i} (YYYY-MM-DD)"}
            value = "2025-05-01"
        elif kind == 3:
            prop = {
                "type": "string",
                "pattern": "^INV-[0-9]+$",
                "description": f"Reference {i}",
                "x-review-threshold": 0.9,
            }
            value = f"INV-{1000 + i}"
        elif kind == 4:
            prop = {"type": "string", "enum": ["USD", "EUR", "GBP"], "description": f"Code {i}"}
            value = "EUR"
        else:
            prop = {
                "type": "array",
                "description": f"Table {i}",
                "items": {
                    "type": "object",
                    "required": ["description", "amount"],
                    "properties": {
                        "description": {"type": "string"},
                        "quantity": {"type": "number"},
                        "amount": {"type": "number"},
                    },
                },
            }
            value = [
                {"description": f"item {j}", "quantity": j, "amount": j * 2.5} for j in range(3)
            ]
        props[name] = prop
        values[name] = value
    extraction: dict[str, Any] = {}
    for i, (name, value) in enumerate(values.items()):
        extraction[name] = value if i % 17 else None  # a few not found
        extraction[f"{name}_citations"] = [f"/page/{i % max(pages, 1)}/Text/{i % 40}"]
        extraction[f"{name}_score"] = {"score": 1 + i % 5, "reasoning": "as printed"}
    schema = {
        "type": "object",
        "properties": props,
        "required": list(props)[:50],
        "x-review-threshold": 0.85,
    }
    result = make_result(max(pages, 1), 0)
    if not pages:
        del result["json"]
    result["extraction_schema_json"] = json.dumps(extraction)
    return json.dumps(schema).encode(), result


def run_evaluate(report: Report, repeats: int = 300) -> float:
    from doctriage_core.domain import schemas
    from doctriage_core.domain.evaluation import evaluate_extraction

    def timed(raw: bytes, result: dict[str, Any]) -> tuple[float, float]:
        started, cpu_started = time.perf_counter(), time.process_time()
        schema = schemas.load_schema(raw)
        evaluation = evaluate_extraction(
            schema, result, upload_doc_type="invoice", default_threshold=0.85
        )
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        assert len(evaluation.fields) == 200
        return elapsed * 1000, cpu * 1000

    def medians(raw: bytes, result: dict[str, Any], n: int) -> tuple[float, float]:
        runs = [timed(raw, result) for _ in range(n)]
        return median([w for w, _ in runs]), median([c for _, c in runs])

    raw, result = evaluation_input(200, 0)
    schemas._compile.cache_clear()
    schemas._CHECKED.clear()
    schemas._VALIDATORS.clear()
    cold, _ = timed(raw, result)
    medians(raw, result, 30)
    warm, warm_cpu = medians(raw, result, repeats)
    raw_tree, result_tree = evaluation_input(200, 20)
    medians(raw_tree, result_tree, 10)
    tree, tree_cpu = medians(raw_tree, result_tree, repeats // 3)
    report.add(
        "evaluate",
        f"200 fields, warm, no block tree (median of {repeats})",
        f"{warm:.2f} ms (CPU {warm_cpu:.2f} ms)",
        f"< {TARGET_EVALUATE_MS:.0f} ms",
        verdict(warm < TARGET_EVALUATE_MS),
    )
    report.add(
        "evaluate",
        "200 fields, warm, 20-page block tree (800 blocks)",
        f"{tree:.2f} ms (CPU {tree_cpu:.2f} ms)",
        "",
        "",
    )
    report.add(
        "evaluate", "200 fields, first call (compiles the validators)", f"{cold:.0f} ms", "", ""
    )
    run_table(report, warm, repeats // 10)
    return warm


TABLE_ROWS = 500


def table_input(rows: int) -> tuple[bytes, dict[str, Any]]:
    """An invoice whose line_items table has ``rows`` rows of 4 columns, scored and cited cell by
    cell (Datalab's per-item shape) against a real block tree, with a sum check over the lines."""
    columns = {
        "description": {"type": "string"},
        "quantity": {"type": "number", "minimum": 0},
        "unit_price": {"type": "number", "minimum": 0},
        "amount": {"type": "number"},
    }
    schema = {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string", "pattern": "^INV-[0-9]+$"},
            "total_amount": {"type": "number"},
            "line_items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["description", "amount"],
                    "properties": columns,
                },
            },
        },
        "x-checks": [
            {
                "name": "total_matches_lines",
                "sum": ["line_items[].amount"],
                "equals": "total_amount",
                "tolerance": 0.01,
            }
        ],
    }
    pages = -(-rows // BLOCKS_PER_PAGE)
    items = []
    for n in range(rows):
        row: dict[str, Any] = {"description": f"Widget model {n:04d}, boxed", "quantity": 2}
        row.update(unit_price=1.25, amount=2.5)
        for column in columns:
            row[f"{column}_score"] = {
                "score": 5,
                "reasoning": f"Row {n + 1}, as printed.",
            }
            row[f"{column}_citations"] = [
                f"/page/{n // BLOCKS_PER_PAGE}/Text/{n % BLOCKS_PER_PAGE}"
            ]
        items.append(row)
    extraction = {
        "invoice_number": "INV-1042",
        "invoice_number_score": {"score": 5, "reasoning": "printed clearly"},
        "total_amount": 2.5 * rows,
        "total_amount_score": {"score": 5, "reasoning": "printed clearly"},
        "line_items": items,
    }
    result = make_result(pages, 0)
    result["extraction_schema_json"] = json.dumps(extraction)
    return json.dumps(schema).encode(), result


def run_table(report: Report, flat_ms: float, repeats: int) -> None:
    from doctriage_core.domain import schemas
    from doctriage_core.domain.evaluation import evaluate_extraction
    from doctriage_core.domain.records import keep_cells_apart, record_size

    raw, result = table_input(TABLE_ROWS)

    def timed() -> tuple[float, Any]:
        started = time.perf_counter()
        evaluation = evaluate_extraction(
            schemas.load_schema(raw), result, upload_doc_type="invoice", default_threshold=0.85
        )
        return (time.perf_counter() - started) * 1000, evaluation

    timed()
    runs = [timed() for _ in range(max(repeats, 5))]
    table_ms = median(ms for ms, _ in runs)
    whole = {"document_id": "doc-bench", **runs[-1][1].to_dict()}
    assert len(whole["fields"]["line_items"]["items"]) == TABLE_ROWS
    assert whole["flags"] == [], whole["flags"][:3]
    stored, cells = keep_cells_apart(whole)
    report.add(
        "evaluate",
        f"{TABLE_ROWS}-row table, 4 columns, cell scores and boxes (median of {len(runs)})",
        f"{table_ms:.1f} ms = {table_ms / flat_ms:.1f}x the 200 fields",
        "",
        "",
    )
    kept = "cells kept in S3" if cells is not None else "cells kept in the record"
    with_cells, stored_kb = record_size(whole) / 1000, record_size(stored) / 1000
    report.add(
        "evaluate",
        f"{TABLE_ROWS}-row table: record size",
        f"{with_cells:.0f} KB with cells; stored {stored_kb:.0f} KB ({kept})",
        "< 400 KB stored",
        verdict(record_size(stored) < 400_000),
    )


# ------------------------------------------------------------------------------------ cost


@dataclass
class CostCounts:
    documents: int
    invocations: Counter[str]
    durations: dict[str, list[float]]
    transitions: int
    retries: int
    requests: Counter[str]
    wru: float
    rru: float
    log_bytes: int
    statuses: Counter[str]


def _item_kb(item: dict[str, Any]) -> float:
    return len(json.dumps(item, default=str)) / 1024


def _is_s3_test_event(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and all('"s3:TestEvent"' in str(r.get("body", "")) for r in records)


def run_cost_counts(documents: int) -> CostCounts:
    import botocore.client

    from doctriage_local.emulator import EmulatorConfig
    from doctriage_local.stack import LocalStack, StackOptions

    local = threading.local()
    requests: Counter[str] = Counter()
    units = {"wru": 0.0, "rru": 0.0}
    durations: dict[str, list[float]] = defaultdict(list)
    log_bytes = [0]
    original_call = botocore.client.BaseClient._make_api_call

    def counting_call(self: Any, operation: str, params: dict[str, Any]) -> Any:
        response = original_call(self, operation, params)
        service = self.meta.service_model.service_name
        in_handler = getattr(local, "active", False)
        esm = threading.current_thread().name.startswith("esm-")
        if esm and operation == "ReceiveMessage" and not response.get("Messages"):
            esm = False  # an empty long poll: a fixed cost per poller, not per document
        if in_handler or (esm and operation in ("ReceiveMessage", "DeleteMessage")):
            requests[f"{service}:{operation}"] += 1
            if service == "dynamodb":
                if operation in ("PutItem", "UpdateItem", "DeleteItem"):
                    size = _item_kb(params.get("Item") or params)
                    units["wru"] += max(1, math.ceil(size))
                elif operation == "GetItem":
                    size = _item_kb(response.get("Item") or {})
                    strong = params.get("ConsistentRead")
                    units["rru"] += max(1, math.ceil(size / 4)) * (1 if strong else 0.5)
        return response

    class CountingStderr:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def write(self, text: str) -> int:
            if getattr(local, "active", False):
                log_bytes[0] += len(text.encode())
                return len(text)
            if getattr(local, "quiet", False):
                return len(text)
            return int(self.inner.write(text))

        def flush(self) -> None:
            self.inner.flush()

    samples = sorted((PROJECT / "samples").glob("*/*.pdf"))
    invocations: Counter[str] = Counter()

    def timed(logical_id: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def run(event: Any, context: Any) -> Any:
            if _is_s3_test_event(event):  # once per bucket configuration, not per document
                local.quiet = True
                try:
                    return handler(event, context)
                finally:
                    local.quiet = False
            invocations[logical_id] += 1
            local.active = True
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                durations[logical_id].append(time.perf_counter() - started)
                local.active = False

        return run

    class CountingStack(LocalStack):
        """Times each handler (inside the stack's one-at-a-time lock, not waiting for it)."""

        def _configure_handlers(self) -> None:
            super()._configure_handlers()
            for fn in self.functions.values():
                handler = getattr(fn.module, fn.handler_name)
                setattr(fn.module, fn.handler_name, timed(fn.logical_id, handler))

    botocore.client.BaseClient._make_api_call = counting_call  # type: ignore[method-assign]
    saved_stderr = sys.stderr
    sys.stderr = CountingStderr(saved_stderr)
    try:
        options = StackOptions(time_scale=0.01, emulator=EmulatorConfig(), log_level="INFO")
        with CountingStack(options) as stack:
            for schema in (PROJECT / "samples" / "schemas").glob("*.json"):
                stack.put_schema(schema.stem, schema)
            ids = []
            for i in range(documents):
                path = samples[i % len(samples)]
                uploaded = stack.upload(path, path.parent.name, name=f"{path.stem}-{i}.pdf")
                ids.append(uploaded["document_id"])
            records = stack.wait_for_records(ids, timeout=300)
            if len(records) < len(ids):
                raise RuntimeError(f"only {len(records)} of {len(ids)} documents finished")
            time.sleep(0.5)  # let the last executions reach their end state
            sfn = stack.client("stepfunctions")
            transitions = retries = 0
            for execution in stack.executions():
                events = sfn.get_execution_history(
                    executionArn=execution["executionArn"], maxResults=1000
                )["events"]
                kinds = Counter(e["type"] for e in events)
                transitions += sum(n for k, n in kinds.items() if k.endswith("StateEntered"))
                scheduled = kinds.get("LambdaFunctionScheduled", 0) + kinds.get("TaskScheduled", 0)
                retries += max(0, scheduled - kinds.get("TaskStateEntered", 0))
    finally:
        botocore.client.BaseClient._make_api_call = original_call  # type: ignore[method-assign]
        sys.stderr = saved_stderr
    return CostCounts(
        documents=documents,
        invocations=invocations,
        durations=dict(durations),
        transitions=transitions,
        retries=retries,
        requests=requests,
        wru=units["wru"],
        rru=units["rru"],
        log_bytes=log_bytes[0],
        statuses=Counter(r["review_status"] for r in records.values()),
    )


def run_cost(report: Report, documents: int, init: InitResult | None) -> None:
    counts = run_cost_counts(documents)
    memory = template_memory()
    per = 1_000 / counts.documents
    invocations = sum(counts.invocations.values())
    gb_s = gb_s_cpu = 0.0
    parts = []
    for fn in FUNCTIONS:
        calls = counts.durations.get(fn, [])
        if not calls:
            continue
        seconds = sum(math.ceil(d * 1000) / 1000 for d in calls)  # billed per ms
        gb = memory[fn] / 1024
        gb_s += seconds * gb
        # Wholly CPU-bound, a call runs FULL_VCPU_MB / memory times longer than here.
        gb_s_cpu += seconds * max(1.0, FULL_VCPU_MB / memory[fn]) * gb
        parts.append(
            f"{fn.removesuffix('Function').lower()} {len(calls) * per / 1000:.1f}"
            f" x {statistics.mean(calls) * 1000:.0f} ms"
        )
    lambda_requests = invocations * per * LAMBDA_USD_PER_REQUEST
    lambda_compute = gb_s * per * LAMBDA_USD_PER_GB_S
    lambda_cpu_bound = gb_s_cpu * per * LAMBDA_USD_PER_GB_S
    transitions = (counts.transitions + counts.retries) * per
    sfn = transitions * SFN_USD_PER_TRANSITION
    ddb = (counts.wru * DDB_USD_PER_WRU + counts.rru * DDB_USD_PER_RRU) * per
    sqs_requests = sum(n for k, n in counts.requests.items() if k.startswith("sqs:"))
    sqs_requests += counts.documents  # S3 -> intake queue notification, one per upload
    sqs = sqs_requests * per * SQS_USD_PER_REQUEST
    s3_puts = sum(n for k, n in counts.requests.items() if k in ("s3:PutObject",))
    s3_gets = sum(n for k, n in counts.requests.items() if k in ("s3:GetObject", "s3:HeadObject"))
    s3 = (s3_puts * S3_USD_PER_PUT + s3_gets * S3_USD_PER_GET) * per
    secrets = counts.requests["secretsmanager:GetSecretValue"] * per * SECRETS_USD_PER_CALL
    logs_gb = (counts.log_bytes + invocations * PLATFORM_LOG_BYTES) * per / 1e9
    logs = logs_gb * LOGS_USD_PER_GB
    total = lambda_requests + lambda_compute + sfn + ddb + sqs + s3 + secrets + logs
    docs = f"{counts.documents} documents ({dict(counts.statuses)})"
    report.add("cost", "local run", docs, "", "")
    report.add("cost", "Lambda invocations per document, mean duration", "; ".join(parts), "", "")
    report.add(
        "cost",
        "Lambda requests per 1,000 documents",
        f"{invocations * per:,.0f} -> ${lambda_requests:.4f}",
        "",
        "",
    )
    sizes = "/".join(str(memory[fn]) for fn in FUNCTIONS)
    report.add(
        "cost",
        f"Lambda GB-s per 1,000 docs ({sizes} MB, durations as measured)",
        f"{gb_s * per:.2f} GB-s -> ${lambda_compute:.4f}",
        "",
        "",
    )
    report.add(
        "cost",
        "  same if wholly CPU-bound at those sizes (upper bound)",
        f"{gb_s_cpu * per:.2f} GB-s -> ${lambda_cpu_bound:.4f}",
        "",
        "",
    )
    report.add(
        "cost",
        "Step Functions Standard transitions per 1,000 documents",
        f"{transitions:,.0f} ({counts.retries} retries) -> ${sfn:.4f}",
        "",
        "",
    )
    report.add(
        "cost",
        "DynamoDB on-demand request units per 1,000 documents",
        f"{counts.wru * per:,.0f} WRU + {counts.rru * per:,.0f} RRU -> ${ddb:.4f}",
        "",
        "",
    )
    report.add(
        "cost",
        "SQS requests per 1,000 documents (incl. S3 notifications)",
        f"{sqs_requests * per:,.0f} -> ${sqs:.4f}",
        "",
        "",
    )
    report.add(
        "cost",
        "S3 requests per 1,000 documents (results, schemas, uploads read)",
        f"{s3_puts * per:,.0f} PUT + {s3_gets * per:,.0f} GET/HEAD -> ${s3:.4f}",
        "",
        "",
    )
    report.add(
        "cost",
        "Secrets Manager + CloudWatch Logs per 1,000 documents",
        f"${secrets:.4f} + {logs_gb * 1000:.1f} MB logs ${logs:.4f}",
        "",
        "",
    )
    report.add("cost", "total per 1,000 documents (durations as measured)", f"${total:.3f}", "", "")

    # The emulator's documents are short and scored quickly: about one poll each. Real documents
    # take longer; poll_bench's mixed workload gives the polls and transitions they need.
    from benchmarks import poll_bench

    mixed = poll_bench.run(poll_bench.MIXED).adaptive
    local_polls = counts.invocations["PollFunction"] / counts.documents
    local_transitions = (counts.transitions + counts.retries) / counts.documents
    poll_calls = counts.durations.get("PollFunction", [])
    poll_seconds = statistics.mean(poll_calls) if poll_calls else 0.0
    per_poll = (
        poll_seconds * memory["PollFunction"] / 1024 * LAMBDA_USD_PER_GB_S + LAMBDA_USD_PER_REQUEST
    )
    projected = (
        total
        + (mixed.polls - local_polls) * 1_000 * per_poll
        + (mixed.transitions - local_transitions) * 1_000 * SFN_USD_PER_TRANSITION
    )
    mixed_sfn = mixed.transitions * 1_000 * SFN_USD_PER_TRANSITION
    report.add(
        "cost",
        f"  with poll_bench's mixed workload ({mixed.polls:.1f} polls, "
        f"{mixed.transitions:.1f} transitions a document)",
        f"${projected:.3f} (Step Functions ${mixed_sfn:.3f})",
        "",
        "",
    )
    if init is not None:
        worst = max(median(v) for v in init.as_built.values()) / 1000
        cold = worst * max(memory.values()) / 1024 * LAMBDA_USD_PER_GB_S
        report.notes.append(
            f"cost: a cold start's init is billed too (since Aug 2025): at most ${cold:.7f} "
            "per new container here, per container, not per document."
        )
    detail = ", ".join(f"{k} {v * per:,.0f}" for k, v in sorted(counts.requests.items()))
    report.notes.append(f"cost: requests per 1,000 documents by API: {detail}.")


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    global BUILD
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lambda_bench")
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per init variant")
    parser.add_argument("--documents", type=int, default=20, help="documents in the cost run")
    parser.add_argument(
        "--only", default="init,memory,evaluate,cost", help="comma-separated sections to run"
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=BUILD,
        help="the sam build to measure (default .aws-sam/build)",
    )
    parser.add_argument(
        "--allow-stale",
        action="store_true",
        help="measure a build older than the sources (warns instead)",
    )
    args = parser.parse_args(argv)
    sections = set(args.only.split(","))
    BUILD = args.build_dir.resolve()
    started = time.perf_counter()
    report = Report()
    init: InitResult | None = None
    if sections & {"init", "memory"}:
        if not (BUILD / "CoreLayer" / "python").is_dir():
            print("no sam build in .aws-sam/build: run `make build` first", file=sys.stderr)
            return 2
        stale = stale_files()
        if stale:
            print(
                f"the sam build is older than {', '.join(stale[:5])}: run `make build` first",
                file=sys.stderr,
            )
            if not args.allow_stale:
                return 2
            report.notes.append(f"STALE BUILD: differs from {', '.join(stale)}")
    with tempfile.TemporaryDirectory(prefix="lambda-bench-") as tmp:
        work = Path(tmp)
        if "init" in sections:
            init = run_init(report, args.runs, work)
        if "memory" in sections:
            run_memory(report, work)
    if "evaluate" in sections:
        run_evaluate(report)
    if "cost" in sections:
        run_cost(report, args.documents, init)
    report.print()
    failed = [r for r in report.rows if r.verdict == "FAIL"]
    print(f"{'FAIL' if failed else 'PASS'}  [{time.perf_counter() - started:.0f} s]")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
