"""doctriage reprocess sends again only what can succeed: decided from the failure reason."""

from __future__ import annotations

import pytest

from doctriage_core import errors
from doctriage_local.reprocess import PERMANENT_REASONS, decide


def _failed(reason: str) -> dict:
    return {"document_id": "doc-1", "flags": [f"extraction_failed:{reason}"]}


@pytest.mark.parametrize(
    "reason",
    ["empty_file", "unsupported_type", "bad_key", "invalid_threshold", "schema_invalid"],
)
def test_permanent_input_failures_are_skipped_unless_asked_for(reason: str) -> None:
    skipped = decide(_failed(reason))
    assert not skipped.reprocess
    assert skipped.why.startswith(f"{reason}: permanent, ")
    assert "--include-permanent" in skipped.why
    assert decide(_failed(reason), include_permanent=True).reprocess


@pytest.mark.parametrize(
    "reason",
    [
        "rate_limited",
        "timeout",
        "datalab_unreachable",
        "s3_unavailable",
        "configuration",
        "result_expired",
        "workflow_error",
        "unknown",
    ],
)
def test_transient_ish_failures_are_retried(reason: str) -> None:
    decision = decide(_failed(reason))
    assert decision.reprocess
    assert decision.why == f"{reason}: may succeed on a new try"


def test_every_transient_error_is_retried_and_every_permanent_reason_is_a_real_one() -> None:
    for cls in errors.TRANSIENT_ERRORS:
        assert cls.reason not in PERMANENT_REASONS, cls
    known = {cls.reason for cls in errors.PERMANENT_ERRORS}
    document_reasons = {"empty_file", "file_too_large", "unsupported_type", "bad_key"}
    assert set(PERMANENT_REASONS) <= known | document_reasons | {"object_missing"}
