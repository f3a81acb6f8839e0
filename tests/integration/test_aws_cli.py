"""`doctriage up` as a newcomer uses it: the real AWS CLI and `doctriage invoke` against it.

One `up` process serves the whole module; it is started as docs/local-stack.md says (with ports
picked by the OS) and, on the fixture's teardown, stopped with SIGTERM, which must end it
promptly with status 0 (a failure there is reported as an error of the module's last test).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from doctriage_local.paths import PROJECT_ROOT, SAMPLES
from tests.contracts import assert_valid_record, assert_valid_review_message
from tests.integration.up_process import command, environment, running_up

READY_TIMEOUT = 60.0
RECORD_TIMEOUT = 40.0
STOP_TIMEOUT = 15.0
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """One `doctriage up` for the module; stopping it with SIGTERM is checked on teardown."""
    stderr_path = tmp_path_factory.mktemp("up") / "stderr.log"
    # stop_timeout=0: should a check below fail, the process is killed at once.
    with running_up(stderr_path, ready_timeout=READY_TIMEOUT, stop_timeout=0) as running:
        yield running

        # SIGTERM (what `docker stop`, systemd and CI runners send) ends it cleanly and promptly.
        process = running.process
        assert process.poll() is None, f"`doctriage up` died during the tests:\n{running.log()}"
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`doctriage up` still running {STOP_TIMEOUT} s after SIGTERM")
        assert status == 0, running.log()
        assert "doctriage up: stopping" in running.log(), running.log()
        assert "in flight end with it; nothing in the stack is kept" in running.log()
        assert process.stdout is not None
        assert process.stdout.read() == "", "`up` prints only its ready line on stdout"


def _invoke(up, function, *event_args):
    """`doctriage invoke FUNCTION *event_args` against the running stack, from the project root."""
    return subprocess.run(
        [
            command("doctriage"),
            "invoke",
            function,
            *event_args,
            "--endpoint-url",
            up.ready["endpoint_url"],
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        check=False,
    )


def test_ready_line_names_a_local_endpoint_and_the_resources(up):
    ready = up.ready
    assert ready["endpoint_url"].startswith("http://127.0.0.1:")
    assert ready["datalab_api_url"].startswith("http://127.0.0.1:")
    assert ready["region"] == "us-east-1"
    assert ready["pid"] == up.process.pid
    assert ready["time_scale"] == 0.01
    assert set(ready["functions"]) == {
        "SubmitFunction",
        "PollFunction",
        "EvaluateFunction",
        "WebhookFunction",
        "AwaitWebhookFunction",
    }
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

    item = _get_item(up, message["document_id"])
    assert item is not None
    assert "Item" in item, f"no record for {message['document_id']}"
    record = _from_dynamodb_json(item["Item"])
    assert_valid_record(record)
    assert record["review_status"] == "needs_review"
    assert record["source"]["key"] == key
    assert record["document_id"] == message["document_id"]


def test_doctriage_invoke_runs_an_event_file_on_the_running_stack(up):
    done = _invoke(up, "EvaluateFunction", "--event", "events/evaluate-failure.json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "failed"
    assert summary["flags"] == ["extraction_failed:result_expired"]
    event = json.loads((PROJECT_ROOT / "events" / "evaluate-failure.json").read_text())
    assert summary["document_id"] == event["document"]["document_id"]
    item = _get_item(up, summary["document_id"])
    record = _from_dynamodb_json(item["Item"])
    assert_valid_record(record)
    assert record["error"]["type"] == "DatalabResultExpired"


def test_doctriage_invoke_reports_a_handler_error_with_status_1(up):
    # poll.json names a Datalab request on 127.0.0.1:4567; this `up` serves Datalab elsewhere,
    # so the poll function refuses to send the key there (UntrustedCheckUrl).
    done = _invoke(up, "PollFunction", "-e", "events/poll.json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["errorType"] == "UntrustedCheckUrl"
    assert "raised an error" in done.stderr


def test_the_installed_doctriage_reprocess_dry_run_works_from_any_directory(up, tmp_path):
    # GIVEN a failed record on the running stack
    done = _invoke(up, "EvaluateFunction", "--event", "events/evaluate-failure.json")
    assert done.returncode == 0, done.stderr
    document_id = json.loads(done.stdout)["document_id"]
    # WHEN the installed command runs from a directory with no project code in it, as a user's
    # shell would (nothing on PYTHONPATH, not the project root)
    env = {k: v for k, v in environment().items() if k != "PYTHONPATH"}

    def reprocess(*args):
        return subprocess.run(
            [command("doctriage"), "reprocess", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )

    usage = reprocess("--help")
    assert usage.returncode == 0, usage.stderr
    assert "usage: doctriage reprocess" in usage.stdout
    listed = reprocess(
        "--table",
        up.ready["results_table"],
        "--endpoint-url",
        up.ready["endpoint_url"],
        "--reason",
        "result_expired",
        "--dry-run",
    )
    # THEN it lists the failed document and changes nothing
    assert listed.returncode == 0, listed.stderr
    assert "ModuleNotFoundError" not in listed.stderr
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(document_id)]
    assert "result_expired" in line
    assert "would reprocess (result_expired: may succeed on a new try)" in line
    assert "(dry run: nothing changed)" in listed.stderr
    record = _from_dynamodb_json(_get_item(up, document_id)["Item"])
    assert "reprocessed_as" not in record


def _get_item(up, document_id):
    """`aws dynamodb get-item` of a document's record in the results table (None when empty)."""
    return up.aws(
        "dynamodb",
        "get-item",
        "--table-name",
        up.ready["results_table"],
        "--key",
        json.dumps({"document_id": {"S": document_id}}),
    )


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
