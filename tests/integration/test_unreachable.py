"""Datalab refusing connections: submit retries with backoff, then records the failure."""

from __future__ import annotations

import socket

import pytest

from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record
from tests.integration.helpers import process


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: connections refused


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(
        time_scale=0.01,
        datalab_api_url=f"http://127.0.0.1:{_closed_port()}",
        datalab_api_key="unused-key",
        # No retry window: the tenth delivery records the document (test_retry_window.py has
        # the window's own tests).
        parameters={"SubmitRetryWindowSeconds": 0},
    )
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


def test_refused_connections_are_retried_then_recorded(stack):
    acme = (SAMPLES / "invoice" / "acme-invoice-1042.pdf").read_bytes()
    record = process(stack, acme, "invoice", name="unreachable.pdf", timeout=60)

    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["flags"] == ["extraction_failed:datalab_unreachable"]
    # Ten deliveries (the queue's maxReceiveCount), the last of which recorded the failure.
    assert stack.invocations["SubmitFunction"] >= 10
    dlq = stack.client("sqs").receive_message(QueueUrl=stack.physical["IntakeDeadLetterQueue"])
    assert dlq.get("Messages", []) == []
