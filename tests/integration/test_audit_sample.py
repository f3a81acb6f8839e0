"""Audit sampling through the local stack: AuditSampleRate=1 sends every auto document to the
review queue as an audit (its record stays auto, with audit_sample true). Rate 0 (the shared
stack's, conftest.py) sends none: test_pipeline.py's clean invoice.

The rate reaches the stack as `--parameter-overrides AuditSampleRate=...` does: checked against
template.yaml, then into the evaluate function's environment, under its own IAM role.
"""

from __future__ import annotations

import pytest

from doctriage_local.cli.options import parameter_overrides
from doctriage_local.emulator import EmulatorConfig
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record, assert_valid_review_message
from tests.integration.helpers import TIME_SCALE, process, review_messages_for

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"  # auto at the default threshold
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"  # needs_review


@pytest.fixture(scope="module")
def audit_everything():
    options = StackOptions(
        time_scale=TIME_SCALE,
        emulator=EmulatorConfig(),
        parameters=parameter_overrides(["AuditSampleRate=1"]),
    )
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


def test_at_rate_one_an_auto_document_is_recorded_auto_and_queued_as_an_audit(audit_everything):
    record = process(audit_everything, ACME.read_bytes(), "invoice", name="audited.pdf")
    assert_valid_record(record)
    assert (record["review_status"], record["audit_sample"]) == ("auto", True)
    [message] = review_messages_for(audit_everything, record["document_id"])
    assert_valid_review_message(message)
    assert (message["audit"], message["review_status"], message["flagged_paths"]) == (
        True,
        "auto",
        [],
    )


def test_at_rate_one_a_needs_review_document_is_no_audit(audit_everything):
    record = process(audit_everything, GLOBEX.read_bytes(), "invoice", name="flagged.pdf")
    assert (record["review_status"], record["audit_sample"]) == ("needs_review", False)
    [message] = review_messages_for(audit_everything, record["document_id"])
    assert message["audit"] is False
