"""docs/local-stack.md's `events/` sequence, as a newcomer runs it against `doctriage up`: in
order on a fresh stack, then again on the used one. No event touches a real upload's record.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from doctriage_core.domain.documents import document_id_for
from doctriage_local.paths import EVENTS, PROJECT_ROOT, SAMPLES
from tests.integration.up_process import command, environment, running_up

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
SUBMIT_KEY = "incoming/invoice/events/ACME invoice 1042.pdf"  # as docs/local-stack.md uploads it


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    with running_up(tmp_path_factory.mktemp("up") / "stderr.log") as running:
        yield running


def _invoke(up, function, event):
    return subprocess.run(
        [command("doctriage"), "invoke", function, "--event", f"events/{event}"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(AWS_ENDPOINT_URL=up.ready["endpoint_url"]),
        check=False,
    )


def _record(up, document_id, *, timeout=40.0):
    deadline = time.monotonic() + timeout
    while True:
        item = up.aws(
            "dynamodb",
            "get-item",
            "--table-name",
            up.ready["results_table"],
            "--key",
            json.dumps({"document_id": {"S": document_id}}),
        )
        if item and "Item" in item:
            return item["Item"]
        if timeout == 0:
            return None
        assert time.monotonic() < deadline, f"no record for {document_id} within {timeout} s"
        time.sleep(0.2)


def _event_document_id(name):
    return json.loads((EVENTS / name).read_text())["document"]["document_id"]


def _run_the_sequence(up):
    """The steps of docs/local-stack.md, in order; the real documents' ids."""
    bucket = up.ready["bucket"]
    target = f"s3://{bucket}/{SUBMIT_KEY}"
    copied = subprocess.run(  # `aws s3 cp` prints text, not JSON
        [command("aws"), "--endpoint-url", up.ready["endpoint_url"], "s3", "cp", str(ACME), target],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(),
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    head = up.aws("s3api", "head-object", "--bucket", bucket, "--key", SUBMIT_KEY)
    uploaded = document_id_for(bucket, SUBMIT_KEY, head["VersionId"], head["ETag"])
    submitted = document_id_for(bucket, SUBMIT_KEY, None, head["ETag"])  # submit.json's

    done = _invoke(up, "SubmitFunction", "submit.json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"batchItemFailures": []}
    # Shapes only, on a plain stack: a request this emulator never saw, a result never stored.
    done = _invoke(up, "PollFunction", "poll.json")
    assert done.returncode == 1, done.stdout[:1500]
    done = _invoke(up, "EvaluateFunction", "evaluate.json")
    assert done.returncode == 1, done.stdout[:1500]
    assert json.loads(done.stdout)["errorType"] == "S3RequestFailed"
    done = _invoke(up, "EvaluateFunction", "evaluate-failure.json")
    assert done.returncode == 0, done.stdout[:1500]
    assert json.loads(done.stdout)["document_id"] == _event_document_id("evaluate-failure.json")
    return uploaded, submitted


def test_the_events_sequence_on_a_fresh_stack_then_on_a_used_one(up):
    events = {
        _event_document_id(n) for n in ("poll.json", "evaluate.json", "evaluate-failure.json")
    }
    first = _run_the_sequence(up)
    again = _run_the_sequence(up)  # the same steps on the stack the first run used

    assert first[1] == again[1]  # submit.json names one document: the second submit is a duplicate
    assert again[0] != first[0]  # the second upload is a new version, a new document
    for document_id in {*first, *again}:
        assert document_id not in events
        record = _record(up, document_id)
        assert record["status"]["S"] == "complete", record
        assert record["review_status"]["S"] == "auto", record
        assert record["fields"]["M"]["invoice_number"]["M"]["value"]["S"] == "INV-1042"
    assert _record(up, _event_document_id("evaluate.json"), timeout=0) is None
    failed = _record(up, _event_document_id("evaluate-failure.json"))
    assert failed["flags"]["L"] == [{"S": "extraction_failed:result_expired"}]
