"""A configuration no document can succeed with: refused by the commands, recorded by submit.

The commands refuse a non-https DATALAB_API_URL before they start (test_installed_commands.py
runs them); the functions, deployed with one anyway, record each document as failed with reason
``configuration`` on its first delivery, never cycling it into the intake DLQ unseen.
"""

from __future__ import annotations

import pytest

from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record
from tests.integration.helpers import process, review_messages_for


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(
        time_scale=0.01, datalab_api_url="http://example.com", datalab_api_key="unused-key"
    )
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


def test_a_non_https_datalab_url_fails_each_document_with_the_reason(stack):
    acme = (SAMPLES / "invoice" / "acme-invoice-1042.pdf").read_bytes()
    record = process(stack, acme, "invoice", name="misconfigured.pdf", timeout=60)

    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["flags"] == ["extraction_failed:configuration"]
    assert record["error"]["type"] == "Misconfigured"
    assert "DATALAB_API_URL must use https" in record["error"]["message"]
    [message] = review_messages_for(stack, record["document_id"])
    assert message["flags"] == ["extraction_failed:configuration"]
    # The first delivery (and S3's s3:TestEvent, if counted), not ten of them.
    assert stack.invocations["SubmitFunction"] <= 2
    dlq = stack.client("sqs").receive_message(QueueUrl=stack.physical["IntakeDeadLetterQueue"])
    assert dlq.get("Messages", []) == []
    assert stack.executions() == []  # nothing was sent, nothing started
