"""`doctriage up` as a newcomer uses it: the real AWS CLI and `doctriage invoke` against it.

One `up` process serves the whole module; it is started as docs/local-stack.md says (with ports
picked by the OS) and, on the fixture's teardown, stopped with SIGTERM, which must end it
promptly with status 0 (a failure there is reported as an error of the module's last test).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from doctriage_local.cli import SAMPLES
from doctriage_local.template import PROJECT_ROOT
from tests.contracts import assert_valid_record, assert_valid_review_message

BIN = Path(sys.executable).parent
READY_TIMEOUT = 60.0
RECORD_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"


def _environment():
    # Never real AWS, always the built-in Datalab emulator, whatever the caller's environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATALAB_"))}
    env.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
    )
    return env


def _command(name):
    script = BIN / name
    assert script.exists(), f"{script} is missing: pip install -e '.[dev]'"
    return str(script)


class Up:
    def __init__(self, process, ready, stderr_path):
        self.process = process
        self.ready = ready
        self.stderr_path = stderr_path

    def aws(self, *args, timeout=30.0):
        """Run the AWS CLI against this stack; its JSON output parsed (None when empty)."""
        done = subprocess.run(
            [
                _command("aws"),
                "--endpoint-url",
                self.ready["endpoint_url"],
                "--output",
                "json",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_environment(),
            check=False,
        )
        assert done.returncode == 0, f"aws {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None

    def log(self):
        return self.stderr_path.read_text(errors="replace")


def _read_ready_line(process, timeout):
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """One `doctriage up` for the module; stopping it with SIGTERM is checked on teardown."""
    stderr_path = tmp_path_factory.mktemp("up") / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [
                _command("doctriage"),
                "up",
                "--port",
                "0",
                "--datalab-port",
                "0",
                "--time-scale",
                "0.01",
            ],
            cwd=PROJECT_ROOT,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        line = _read_ready_line(process, READY_TIMEOUT)
        assert line, (
            f"no ready line within {READY_TIMEOUT} s (exit {process.poll()}):\n"
            f"{stderr_path.read_text()}"
        )
        running = Up(process, json.loads(line), stderr_path)
        yield running

        # SIGTERM (what `docker stop`, systemd and CI runners send) ends it cleanly and promptly.
        assert process.poll() is None, f"`doctriage up` died during the tests:\n{running.log()}"
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`doctriage up` still running {STOP_TIMEOUT} s after SIGTERM")
        assert status == 0, running.log()
        assert "doctriage up: stopping" in running.log(), running.log()
        assert process.stdout.read() == "", "`up` prints only its ready line on stdout"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        process.stdout.close()


def test_ready_line_names_a_local_endpoint_and_the_resources(up):
    ready = up.ready
    assert ready["endpoint_url"].startswith("http://127.0.0.1:")
    assert ready["datalab_api_url"].startswith("http://127.0.0.1:")
    assert ready["region"] == "us-east-1"
    assert ready["pid"] == up.process.pid
    assert ready["time_scale"] == 0.01
    assert set(ready["functions"]) == {"SubmitFunction", "PollFunction", "EvaluateFunction"}
    buckets = [b["Name"] for b in up.aws("s3api", "list-buckets")["Buckets"]]
    assert ready["bucket"] in buckets


def test_aws_cli_upload_reaches_the_review_queue_and_the_results_table(up):
    key = "incoming/invoice/globex smudged.pdf"  # a space: S3 events encode it as '+'
    up.aws("s3", "cp", "--only-show-errors", str(GLOBEX), f"s3://{up.ready['bucket']}/{key}")

    message = None
    deadline = time.monotonic() + RECORD_TIMEOUT
    while message is None and time.monotonic() < deadline:
        received = up.aws(
            "sqs",
            "receive-message",
            "--queue-url",
            up.ready["review_queue_url"],
            "--wait-time-seconds",
            "5",
            "--max-number-of-messages",
            "10",
        )
        for candidate in (received or {}).get("Messages", []):
            body = json.loads(candidate["Body"])
            if body["source"]["key"] == key:
                message = body
    assert message is not None, f"no review message within {RECORD_TIMEOUT} s:\n{up.log()}"
    assert_valid_review_message(message)
    assert message["review_status"] == "needs_review"
    assert "missing_field:due_date" in message["flags"]

    item = up.aws(
        "dynamodb",
        "get-item",
        "--table-name",
        up.ready["results_table"],
        "--key",
        json.dumps({"document_id": {"S": message["document_id"]}}),
    )
    assert item is not None
    assert "Item" in item, f"no record for {message['document_id']}"
    record = _from_dynamodb_json(item["Item"])
    assert_valid_record(record)
    assert record["review_status"] == "needs_review"
    assert record["source"]["key"] == key
    assert record["document_id"] == message["document_id"]


def test_doctriage_invoke_runs_an_event_file_on_the_running_stack(up):
    done = subprocess.run(
        [
            _command("doctriage"),
            "invoke",
            "EvaluateFunction",
            "--event",
            "events/evaluate-failure.json",
            "--endpoint-url",
            up.ready["endpoint_url"],
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "failed"
    assert summary["flags"] == ["extraction_failed:result_expired"]
    event = json.loads((PROJECT_ROOT / "events" / "evaluate-failure.json").read_text())
    assert summary["document_id"] == event["document"]["document_id"]
    item = up.aws(
        "dynamodb",
        "get-item",
        "--table-name",
        up.ready["results_table"],
        "--key",
        json.dumps({"document_id": {"S": summary["document_id"]}}),
    )
    record = _from_dynamodb_json(item["Item"])
    assert_valid_record(record)
    assert record["error"]["type"] == "DatalabResultExpired"


def test_doctriage_invoke_reports_a_handler_error_with_status_1(up):
    # poll.json names a Datalab request on 127.0.0.1:4567; this `up` serves Datalab elsewhere,
    # so the poll function refuses to send the key there (UntrustedCheckUrl).
    done = subprocess.run(
        [
            _command("doctriage"),
            "invoke",
            "PollFunction",
            "-e",
            "events/poll.json",
            "--endpoint-url",
            up.ready["endpoint_url"],
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=_environment(),
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["errorType"] == "UntrustedCheckUrl"
    assert "raised an error" in done.stderr


def _from_dynamodb_json(item):
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    plain = {name: deserializer.deserialize(value) for name, value in item.items()}
    return json.loads(json.dumps(plain, default=_number))


def _number(value):
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value).__name__)
