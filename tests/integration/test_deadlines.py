"""Deadlines end the poll loop: a document Datalab never finishes fails with ``timeout``; scores
that never come give ``scores_unavailable`` with the extracted values kept.

One stack with small deadlines (PROCESSING_DEADLINE_SECONDS, SCORING_DEADLINE_SECONDS in the
handlers' environment); each test sets the emulator's timing for the documents it submits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from doctriage_local.emulator import DatalabEmulator, EmulatorConfig, FaultRule
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record, assert_valid_review_message

TIME_SCALE = 0.01
PROCESSING_DEADLINE = 120  # pipeline seconds: 1.2 s of wall time here
SCORING_DEADLINE = 60  # 0.6 s of wall time
ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


@pytest.fixture(scope="module")
def deadline_stack():
    options = StackOptions(
        time_scale=TIME_SCALE,
        # No webhooks: the deadlines of the poll loop itself (test_webhooks.py has the wait).
        emulator=EmulatorConfig(webhook_secret=""),
        environment={
            "PROCESSING_DEADLINE_SECONDS": str(PROCESSING_DEADLINE),
            "SCORING_DEADLINE_SECONDS": str(SCORING_DEADLINE),
        },
    )
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


@pytest.fixture
def emulator(deadline_stack) -> Iterator[DatalabEmulator]:
    emulator: DatalabEmulator = deadline_stack.emulator
    saved = (emulator.config.base_processing_seconds, emulator.config.scoring_lag_seconds)
    emulator.clear_faults()
    yield emulator
    emulator.clear_faults()
    emulator.config.base_processing_seconds, emulator.config.scoring_lag_seconds = saved


def _process(stack: Any, name: str) -> dict[str, Any]:
    uploaded = stack.upload(ACME.read_bytes(), "invoice", name=name)
    records = stack.wait_for_records([uploaded["document_id"]], timeout=20)
    assert uploaded["document_id"] in records, f"no record for {name} within 20 s"
    return records[uploaded["document_id"]]


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _review_messages(stack: Any, document_id: str) -> list[dict[str, Any]]:
    return [m for m in stack.review_messages() if m["document_id"] == document_id]


def test_processing_past_the_deadline_fails_the_document_with_timeout(deadline_stack, emulator):
    # Datalab would need 10x the deadline to finish this document.
    emulator.config.base_processing_seconds = PROCESSING_DEADLINE * 10
    checks_before = emulator.stats["check"]
    started = time.monotonic()
    record = _process(deadline_stack, "processing-timeout.pdf")
    elapsed = time.monotonic() - started

    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["review_status"] == "needs_review"
    assert record["flags"] == ["extraction_failed:timeout"]
    assert record["error"]["type"] == "DeadlineExceeded"
    assert f"{PROCESSING_DEADLINE} s" in record["error"]["message"]
    assert record["fields"] == {}
    assert record["datalab"]["request_id"]
    assert record["datalab"]["result_key"] is None  # Datalab never completed
    # It gave up at the deadline, not before, and not much after (wall time, scaled).
    waited = _seconds_between(record["submitted_at"], record["completed_at"])
    assert waited >= PROCESSING_DEADLINE * TIME_SCALE
    assert elapsed < 15
    assert emulator.stats["check"] - checks_before >= 2  # it did poll while processing
    # The failure path records the document, then the execution ends successfully.
    execution = deadline_stack.finished_execution(record["document_id"], timeout=10.0)
    assert execution["status"] == "SUCCEEDED"
    states = deadline_stack.states_entered(record["document_id"])
    assert "Record Failure" in states
    assert "Evaluate Fields" not in states
    [message] = _review_messages(deadline_stack, record["document_id"])
    assert_valid_review_message(message)
    assert message["flags"] == ["extraction_failed:timeout"]


@pytest.mark.parametrize("how", ["long_scoring_lag", "never_scored"])
def test_scores_past_the_scoring_deadline_give_scores_unavailable(deadline_stack, emulator, how):
    name = f"scoring-deadline-{how}.pdf"
    if how == "never_scored":
        emulator.add_fault(FaultRule(match=name, kind="never_scored"))
    else:
        emulator.config.scoring_lag_seconds = SCORING_DEADLINE * 20
    checks_before = emulator.stats["check"]
    record = _process(deadline_stack, name)

    assert_valid_record(record)
    assert record["status"] == "complete"
    assert record["review_status"] == "needs_review"
    assert record["flags"] == ["scores_unavailable"]
    assert record["extraction_score_average"] is None
    assert record["error"] is None
    fields = record["fields"]
    assert fields["invoice_number"]["value"] == "INV-1042"
    assert fields["vendor_name"]["value"] == "Acme Corporation"
    assert fields["total_amount"]["value"] == pytest.approx(1236.25)
    assert fields["invoice_number"]["confidence"] is None
    assert fields["invoice_number"]["score"] is None
    assert fields["invoice_number"]["bbox"] is not None
    # Complete, then several unscored polls until the scoring deadline passed.
    assert emulator.stats["check"] - checks_before >= 2
    waited = _seconds_between(record["submitted_at"], record["completed_at"])
    assert waited >= SCORING_DEADLINE * TIME_SCALE
    execution = deadline_stack.finished_execution(record["document_id"], timeout=10.0)
    assert execution["status"] == "SUCCEEDED"
    states = deadline_stack.states_entered(record["document_id"])
    assert "Evaluate Fields" in states
    assert "Record Failure" not in states
    [message] = _review_messages(deadline_stack, record["document_id"])
    assert_valid_review_message(message)
    assert message["flags"] == ["scores_unavailable"]
