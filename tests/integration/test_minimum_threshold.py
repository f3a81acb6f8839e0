"""MinimumUploadThreshold: the operator's floor under an upload's human-review-threshold.

The stack is started with the parameter overridden, as `sam deploy --parameter-overrides` would:
the template passes it to the functions as MINIMUM_UPLOAD_THRESHOLD.
"""

from __future__ import annotations

import pytest

from doctriage_local.emulator import EmulatorConfig
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record
from tests.integration.helpers import TIME_SCALE, process

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(
        time_scale=TIME_SCALE,
        emulator=EmulatorConfig(),
        parameters={"MinimumUploadThreshold": 0.5},
    )
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


def test_an_upload_asking_for_less_than_the_minimum_fails(stack):
    # GIVEN an uploader who tries to switch review off
    record = process(
        stack,
        ACME.read_bytes(),
        "invoice",
        name="no-review-please.pdf",
        metadata={"human-review-threshold": "0"},
    )
    # THEN the document fails as an invalid threshold and is queued for review
    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["review_status"] == "needs_review"
    assert record["flags"] == ["extraction_failed:invalid_threshold"]
    assert "below the stack's minimum of 0.5" in record["error"]["message"]
    assert record["human_review_threshold"] == 0.85


def test_an_upload_at_or_above_the_minimum_is_honoured(stack):
    record = process(
        stack,
        ACME.read_bytes(),
        "invoice",
        name="lenient.pdf",
        metadata={"human-review-threshold": "0.6"},
    )
    assert_valid_record(record)
    assert record["status"] == "complete"
    assert record["human_review_threshold"] == 0.6
