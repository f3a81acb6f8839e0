"""`doctriage review` as a user runs it after `doctriage up`: separate processes, real HTTP.

`up` serves the local stack; a document goes through it; `doctriage review` (found the stack via
AWS_ENDPOINT_URL, as `up` tells users to export) serves the page; a decision is posted; SIGTERM
ends the review process cleanly, and the record and the queue are read back over the endpoint.
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

import boto3
import httpx
import pytest

from doctriage_local.cli import SAMPLES
from doctriage_local.template import PROJECT_ROOT

DOCTRIAGE = str(Path(sys.executable).parent / "doctriage")
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"


def _environment(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATALAB_"))}
    env.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def _first_line(process, timeout):
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def _start(argv, stderr_path, **env):
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(
            [DOCTRIAGE, *argv],
            cwd=PROJECT_ROOT,
            env=_environment(**env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def _stop(process, timeout=20):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    process.stdout.close()
    return process.returncode


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    log = tmp_path_factory.mktemp("up") / "stderr.log"
    process = _start(["up", "--port", "0", "--datalab-port", "0", "--time-scale", "0.01"], log)
    try:
        line = _first_line(process, 60)
        assert line, f"`doctriage up` not ready within 60 s:\n{log.read_text()}"
        yield json.loads(line)
    finally:
        _stop(process)


def test_doctriage_review_clears_a_document_of_a_running_up(up, tmp_path):
    aws = {
        "endpoint_url": up["endpoint_url"],
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    sqs, dynamodb = boto3.client("sqs", **aws), boto3.client("dynamodb", **aws)
    boto3.client("s3", **aws).upload_file(
        str(GLOBEX), up["bucket"], "incoming/invoice/review-cli.pdf"
    )

    def waiting():
        attributes = sqs.get_queue_attributes(
            QueueUrl=up["review_queue_url"],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    deadline = time.monotonic() + 40
    while waiting() == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert waiting() == (1, 0), "the document did not reach the review queue"

    log = tmp_path / "review.log"
    review = _start(
        ["review", "--port", "0", "--reviewer", "cli", "--wait-seconds", "1"],
        log,
        AWS_ENDPOINT_URL=up["endpoint_url"],
    )
    try:
        url = _first_line(review, 30).strip()
        assert url.startswith("http://127.0.0.1:"), log.read_text()
        with httpx.Client(base_url=url, timeout=10) as client:
            opened = client.get("/", follow_redirects=True)
            assert opened.url.path.startswith("/doc/")
            assert "incoming/invoice/review-cli.pdf" in opened.text
            token = opened.text.split('name="token" value="', 1)[1].split('"', 1)[0]
            stored = client.post(
                f"{opened.url.path}/decision",
                data={
                    "token": token,
                    "reviewer": "cli",
                    "decision.invoice_number": "correct",
                    "value.invoice_number": "INV-0077",
                    "decision.due_date": "correct",
                    "value.due_date": "null",
                    "decision.total_amount": "accept",
                },
            )
            assert stored.status_code == 303, stored.text
            document_id = opened.url.path.rsplit("/", 1)[1]
    finally:
        status = _stop(review)
    assert status == 0, log.read_text()
    assert "1 decision(s) stored" in log.read_text()

    item = dynamodb.get_item(
        TableName=up["results_table"], Key={"document_id": {"S": document_id}}
    )["Item"]
    assert item["review_status"] == {"S": "needs_review"}
    review_item = item["review"]["M"]
    assert review_item["reviewer"] == {"S": "cli"}
    assert review_item["corrected"]["M"] == {
        "invoice_number": {"S": "INV-0077"},
        "due_date": {"NULL": True},
    }
    assert review_item["accepted"]["L"] == [{"S": "total_amount"}]
    assert waiting() == (0, 0)
