"""`doctriage review` as a user runs it after `doctriage up`: separate processes, real HTTP.

`up` serves the local stack; a document goes through it; `doctriage review` (found the stack via
AWS_ENDPOINT_URL, as `up` tells users to export) serves the page; a decision is posted; SIGTERM
ends the review process cleanly, and the record and the queue are read back over the endpoint.
"""

from __future__ import annotations

import subprocess
import time

import boto3
import httpx
import pytest

from doctriage_local.paths import SAMPLES
from tests.integration.up_process import (
    command,
    environment,
    first_line,
    running_up,
    start,
    stop,
)

GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    with running_up(tmp_path_factory.mktemp("up") / "stderr.log", ready_timeout=60) as running:
        yield running.ready


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
    review = start(
        ["review", "--port", "0", "--reviewer", "cli", "--wait-seconds", "1"],
        log,
        AWS_ENDPOINT_URL=up["endpoint_url"],
    )
    try:
        url = first_line(review, 30).strip()
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
                    "reviewer": "someone else",  # not a field: the server's --reviewer signs
                    "decision.invoice_number": "correct",
                    "value.invoice_number": "INV-0077",
                    "decision.due_date": "absent",
                    "confirm.due_date": "yes",  # required by the schema
                    "decision.total_amount": "accept",
                },
            )
            assert stored.status_code == 303, stored.text
            document_id = opened.url.path.rsplit("/", 1)[1]
    finally:
        status = stop(review)
    assert status == 0, log.read_text()
    assert "1 decision(s) stored" in log.read_text()

    item = dynamodb.get_item(
        TableName=up["results_table"], Key={"document_id": {"S": document_id}}
    )["Item"]
    assert item["review_status"] == {"S": "needs_review"}
    review_item = item["review"]["M"]
    assert review_item["reviewer"] == {"S": "cli"}
    # due_date is not on the document: its own answer, null.
    assert review_item["corrected"]["M"] == {
        "invoice_number": {"S": "INV-0077"},
        "due_date": {"NULL": True},
    }
    assert review_item["accepted"]["L"] == [{"S": "total_amount"}]
    assert review_item["outcome"] == {"S": "decided"}
    assert waiting() == (0, 0)


def test_peek_lists_what_waits_and_changes_no_receive_count(up, tmp_path):
    aws = {
        "endpoint_url": up["endpoint_url"],
        "region_name": "us-east-1",
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",
    }
    sqs = boto3.client("sqs", **aws)
    queue = up["review_queue_url"]
    # GIVEN a needs_review document on the review queue (and a decided one from the test above)
    boto3.client("s3", **aws).upload_file(str(GLOBEX), up["bucket"], "incoming/invoice/peek.pdf")
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not _waiting(sqs, queue):
        time.sleep(0.2)
    assert _waiting(sqs, queue) == 1, "the document did not reach the review queue"

    # WHEN the queue is peeked at, twice
    for _ in range(2):
        done = subprocess.run(
            [command("doctriage"), "review", "--peek"],
            cwd=tmp_path,
            env=environment(AWS_ENDPOINT_URL=up["endpoint_url"]),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        # THEN it lists the undecided document with its key and flags, and the queue's counts
        assert "1 waiting, 0 with a reviewer, 0 delayed; 0 in its DLQ" in done.stdout
        assert "1 record(s) wait for a decision" in done.stdout, done.stdout
        [row] = [line for line in done.stdout.splitlines() if "incoming/invoice/peek.pdf" in line]
        assert "complete" in row
        assert "missing_field:due_date" in row
        assert "review-cli.pdf" not in done.stdout  # decided above: nothing waits for it

    # AND nothing was received: the first receive is the message's first
    [message] = sqs.receive_message(
        QueueUrl=queue, AttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=1
    )["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def _waiting(sqs, queue_url):
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])
