"""A ~5 MB Datalab result goes through the real state machine: only S3 keys cross its states.

Step Functions refuses state larger than 256 KB, so the poll task keeps the raw result in S3 and
returns a small status; every event of the execution's history must stay far below that limit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from doctriage_local.emulator import EmulatorConfig
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record

TIME_SCALE = 0.01
PADDING = 5 * 1024 * 1024
STATE_LIMIT = 256 * 1024
ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


@pytest.fixture(scope="module")
def large_stack():
    options = StackOptions(
        time_scale=TIME_SCALE, emulator=EmulatorConfig(result_padding_bytes=PADDING)
    )
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


def _payloads(event: dict[str, Any]) -> list[str]:
    """Every input/output string an event carries (state input, task output, ...)."""
    found: list[str] = []
    for key, details in event.items():
        if key.endswith("EventDetails") and isinstance(details, dict):
            found.extend(
                v for k, v in details.items() if k in ("input", "output") and isinstance(v, str)
            )
    return found


def test_a_5_mb_result_passes_through_the_state_machine_as_s3_keys(large_stack):
    stack = large_stack
    uploaded = stack.upload(ACME.read_bytes(), "invoice", name="large-result.pdf")
    document_id = uploaded["document_id"]
    records = stack.wait_for_records([document_id], timeout=60)
    assert document_id in records, "no record within 60 s"
    record = records[document_id]

    assert_valid_record(record)
    assert record["status"] == "complete"
    assert record["review_status"] == "auto"
    assert record["fields"]["invoice_number"]["value"] == "INV-1042"
    assert record["fields"]["invoice_number"]["bbox"] is not None

    raw = stack.client("s3").get_object(Bucket=stack.bucket, Key=record["datalab"]["result_key"])
    body = raw["Body"].read()
    assert raw["ContentLength"] >= PADDING
    assert len(body) >= PADDING
    result = json.loads(body)
    assert result["status"] == "complete"
    assert result["extraction_score_average"] == record["extraction_score_average"]
    assert len(json.dumps(result["json"]["metadata"])) >= PADDING

    execution = stack.finished_execution(document_id)
    assert execution["status"] == "SUCCEEDED"
    assert len(execution["input"].encode()) < STATE_LIMIT
    events = stack.execution_history(document_id)
    payloads = [p for event in events for p in _payloads(event)]
    assert len(payloads) >= 10  # the history really carries the states' inputs and outputs
    largest = max(len(p.encode()) for p in payloads)
    assert largest < STATE_LIMIT, f"a state of {largest} bytes crossed Step Functions"
    assert largest < 8 * 1024  # in fact a few KB: keys and ids only
    assert not any("page_stats" in p or "extraction_schema_json" in p for p in payloads)
