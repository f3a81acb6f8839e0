"""Transient failures at submit delay a document within the retry window; they do not fail it.

With IntakeMaxReceives=3 an upload answered 503 five times runs out of deliveries after three:
within SubmitRetryWindowSeconds it is sent again as a new message (its deliveries counted afresh)
and then goes through. Past the window, the last delivery records it, as before.
"""

from __future__ import annotations

import pytest

from doctriage_local.emulator import EmulatorConfig, FaultRule
from doctriage_local.paths import SAMPLE_SCHEMAS, SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record
from tests.integration.helpers import process

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


def _stack(window_seconds: int) -> LocalStack:
    return LocalStack(
        StackOptions(
            time_scale=0.002,
            emulator=EmulatorConfig(),
            parameters={"IntakeMaxReceives": 3, "SubmitRetryWindowSeconds": window_seconds},
        )
    )


@pytest.fixture
def patient():
    with _stack(86400) as running:
        running.put_schema("invoice", SAMPLE_SCHEMAS / "invoice.json")
        yield running


def _sent_again(stack: LocalStack) -> int:
    return sum('"UploadsSentAgain"' in line for line in stack.metric_lines)


def test_an_upload_failing_past_its_deliveries_is_sent_again_and_completes(patient):
    # GIVEN Datalab answering this upload's submit 503 five times (three deliveries allowed)
    patient.emulator.add_fault(FaultRule(match="outage.pdf", kind="submit_500", times=5))
    # WHEN it is uploaded
    record = process(patient, ACME.read_bytes(), "invoice", name="outage.pdf", timeout=90)
    # THEN it completes, submitted once, after being sent again as a new message
    assert_valid_record(record)
    assert record["status"] == "complete"
    assert record["datalab"]["submissions"] == 1
    assert _sent_again(patient) >= 1
    dlq = patient.client("sqs").get_queue_attributes(
        QueueUrl=patient.physical["IntakeDeadLetterQueue"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]
    assert dlq["ApproximateNumberOfMessages"] == "0"


def test_past_the_window_the_last_delivery_records_the_failure():
    with _stack(0) as stack:
        stack.put_schema("invoice", SAMPLE_SCHEMAS / "invoice.json")
        stack.emulator.add_fault(FaultRule(match="down.pdf", kind="submit_500"))
        record = process(stack, ACME.read_bytes(), "invoice", name="down.pdf", timeout=60)
        assert record["status"] == "failed"
        assert record["flags"] == ["extraction_failed:datalab_server_error"]
        assert _sent_again(stack) == 0
