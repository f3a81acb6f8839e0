"""complete_record, failed_record, review_message against the contracts in contracts/."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from doctriage_core.domain.documents import DocumentRef
from doctriage_core.domain.evaluation import evaluate_extraction
from doctriage_core.domain.records import (
    MAX_ERROR_MESSAGE,
    REVIEW_MESSAGE_SCHEMA_VERSION,
    chosen_for_audit,
    complete_record,
    failed_record,
    keep_cells_apart,
    restore_cells,
    review_message,
)
from doctriage_core.domain.timeline import utc_now_iso
from tests.contracts import assert_valid_record, assert_valid_review_message

DOC = DocumentRef(
    document_id="doc-abc",
    bucket="bucket",
    key="incoming/invoice/a b.pdf",
    doc_type="invoice",
    version_id="v1",
    etag='"e"',
    size=123,
)
SCHEMA = {
    "properties": {
        "invoice_number": {"type": "string"},
        "total": {"type": "number"},
        "document_type": {"enum": ["invoice", "receipt"]},
    },
    "required": ["invoice_number"],
}
TREE = {
    "block_type": "Document",
    "children": [
        {
            "id": "/page/0/Page/0",
            "block_type": "Page",
            "bbox": [0, 0, 100, 100],
            "children": [{"id": "/page/0/Text/0", "block_type": "Text", "bbox": [10, 10, 20, 20]}],
        }
    ],
}


def body(**extracted: Any) -> dict[str, Any]:
    return {
        "status": "complete",
        "success": True,
        "extraction_schema_json": json.dumps(extracted),
        "json": TREE,
    }


def complete(
    extracted: dict[str, Any],
    *,
    audit_sample_rate: float = 0.0,
    document: DocumentRef = DOC,
    **kw: Any,
) -> dict[str, Any]:
    ev = evaluate_extraction(
        SCHEMA, body(**extracted), upload_doc_type="invoice", default_threshold=0.85, **kw
    )
    return complete_record(
        ev,
        document=document,
        audit_sample_rate=audit_sample_rate,
        request_id="req-1",
        result_key="results/doc-abc.json",
        submitted_at="2025-01-01T00:00:00.000Z",
        completed_at="2025-01-01T00:01:00.000Z",
    )


GOOD = {
    "invoice_number": "INV-1",
    "invoice_number_score": {"score": 5, "reasoning": "r"},
    "invoice_number_citations": ["/page/0/Text/0"],
    "total": 12.5,
    "total_score": {"score": 5, "reasoning": "r"},
    "document_type": "receipt",
    "document_type_score": {"score": 5, "reasoning": "r"},
}


def test_complete_record_auto() -> None:
    record = complete(GOOD)
    assert_valid_record(record)
    assert record["status"] == "complete"
    assert (record["review_status"], record["flags"]) == ("auto", [])
    assert (record["document_type"], record["document_type_confidence"]) == ("receipt", 1.0)
    assert record["source"] == {
        "bucket": "bucket",
        "key": "incoming/invoice/a b.pdf",
        "version_id": "v1",
        "etag": '"e"',
        "size": 123,
    }
    # one submission unless the caller says otherwise (a page-rate resubmit does)
    assert record["datalab"] == {
        "request_id": "req-1",
        "result_key": "results/doc-abc.json",
        "submissions": 1,
        "cost_cents": None,
        "page_count": None,
    }
    assert record["error"] is None
    assert record["fields"]["invoice_number"]["bbox"] == pytest.approx(
        {"x": 0.1, "y": 0.1, "width": 0.1, "height": 0.1}
    )
    assert (record["submitted_at"], record["completed_at"]) == (
        "2025-01-01T00:00:00.000Z",
        "2025-01-01T00:01:00.000Z",
    )
    with pytest.raises(ValueError, match="needs_review"):
        review_message(record)


@pytest.mark.parametrize(
    ("extracted", "kw"),
    [
        ({"total": "x"}, {}),
        (GOOD, {"scores_available": False}),
        (GOOD, {"upload_threshold": 1.0}),
        ({}, {}),
    ],
)
def test_complete_record_needs_review_and_its_message(
    extracted: dict[str, Any], kw: dict[str, Any]
) -> None:
    record = complete(extracted, **kw)
    assert_valid_record(record)
    assert record["review_status"] == "needs_review"
    message = review_message(record)
    assert_valid_review_message(message)
    assert message["schema_version"] == REVIEW_MESSAGE_SCHEMA_VERSION == "1"
    extra = {"schema_version", "flagged_paths", "audit"}
    assert {k: v for k, v in message.items() if k not in extra} == record
    assert message["audit"] is False
    assert message["flagged_paths"] == sorted(
        {f.partition(":")[2] for f in record["flags"] if f.partition(":")[2]}
    )


def failed(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "document": DOC,
        "reason": "timeout",
        "error_type": "DeadlineExceeded",
        "message": "Datalab did not finish",
        "threshold": 0.85,
        "completed_at": "2025-01-01T00:10:00.000Z",
    }
    return failed_record(**(args | kw))


def test_failed_record() -> None:
    record = failed(request_id="req-1")
    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["review_status"] == "needs_review"
    assert record["flags"] == ["extraction_failed:timeout"]
    assert record["fields"] == {}
    assert record["document_type"] == "invoice"
    assert record["human_review_threshold"] == 0.85
    assert record["error"] == {"type": "DeadlineExceeded", "message": "Datalab did not finish"}
    assert record["datalab"] == {
        "request_id": "req-1",
        "result_key": None,
        "submissions": 1,
        "cost_cents": None,
        "page_count": None,
    }
    assert record["submitted_at"] is None
    message = review_message(record)
    assert_valid_review_message(message)


@pytest.mark.parametrize(
    ("kw", "check"),
    [
        ({"reason": ""}, lambda r: r["flags"] == ["extraction_failed:internal_error"]),
        ({"reason": "bad key\n"}, lambda r: r["flags"] == ["extraction_failed:bad_key"]),
        ({"threshold": math.nan}, lambda r: r["human_review_threshold"] == 1.0),
        ({"threshold": 1.5}, lambda r: r["human_review_threshold"] == 1.0),
        ({"threshold": -2}, lambda r: r["human_review_threshold"] == 0.0),
        ({"threshold": "0.5"}, lambda r: r["human_review_threshold"] == 1.0),
        ({"message": "x" * 10_000}, lambda r: len(r["error"]["message"]) == MAX_ERROR_MESSAGE),
        ({"error_type": ""}, lambda r: r["error"]["type"] == "Error"),
        (
            {"document": DocumentRef("doc-x", "b", "stray.pdf", None)},
            lambda r: r["document_type"] is None,
        ),
    ],
)
def test_failed_record_never_breaks_the_contract(kw: dict[str, Any], check: Any) -> None:
    record = failed(**kw)
    assert_valid_record(record)
    assert_valid_review_message(review_message(record))
    assert check(record)


def test_records_are_plain_json() -> None:
    for record in (complete(GOOD), complete({}, scores_available=False), failed()):
        assert json.loads(json.dumps(record, allow_nan=False)) == record


def test_utc_now_iso() -> None:
    now = utc_now_iso()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)
    parsed = datetime.fromisoformat(now.replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - parsed).total_seconds()) < 5


# --- the contract helpers themselves catch what they should ---------------------------------


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(review_status="auto"),  # flags present but auto
        lambda r: r.update(flags=["made_up"]),
        lambda r: r["fields"]["total"].update(confidence=1.5),
        lambda r: r["fields"]["total"].update(score=3.5),
        lambda r: r["fields"]["total"].update(bbox={"x": 2, "y": 0, "width": 0, "height": 0}),
        lambda r: r.update(human_review_threshold=math.nan),
        lambda r: r.pop("source"),
    ],
)
def test_record_contract_rejects(mutate: Any) -> None:
    record = complete({"total": "x", "total_score": {"score": 5}})
    mutate(record)
    with pytest.raises((AssertionError, ValueError)):
        assert_valid_record(record)


def test_review_message_contract_requires_version() -> None:
    message = review_message(failed())
    assert_valid_review_message(message)
    for broken in (
        {k: v for k, v in message.items() if k != "schema_version"},
        message | {"schema_version": "2"},
    ):
        with pytest.raises(AssertionError):
            assert_valid_review_message(broken)
    with pytest.raises(AssertionError):
        assert_valid_review_message(complete(GOOD) | {"schema_version": "1"})


def test_a_record_without_a_datalab_request_has_no_submissions_and_one_with_them_counts() -> None:
    never_sent = failed(request_id=None)
    assert never_sent["datalab"]["submissions"] is None
    resubmitted = failed(request_id="req-3", submissions=3)
    assert_valid_record(resubmitted)
    assert resubmitted["datalab"]["submissions"] == 3


def test_cells_kept_apart_come_back_as_they_were() -> None:
    cell = {"value": "x" * 400, "found": True, "confidence": 1.0, "score": 5, "reasoning": "r"}
    cell.update(citations=[], page=0, bbox=None)
    rows = [{"sku": cell} for _ in range(1000)]
    record = {
        "document_id": "doc-1",
        "fields": {
            "lines": {**cell, "value": [], "items": rows},
            "shipping": {**cell, "value": {}, "properties": {"parcels": {**cell, "items": rows}}},
            "total": cell,
        },
    }
    stored, cells = keep_cells_apart(record)
    assert cells is not None
    assert sorted(cells) == stored["cells"]["paths"] == ["lines", "shipping.parcels"]
    assert "items" not in stored["fields"]["lines"]
    assert "items" not in stored["fields"]["shipping"]["properties"]["parcels"]
    assert restore_cells(stored, cells) == record


def test_an_auto_record_sampled_for_audit_stays_auto_and_its_message_says_audit() -> None:
    # GIVEN every auto document sampled (rate 1)
    record = complete(GOOD, audit_sample_rate=1.0)
    assert_valid_record(record)
    # THEN it stays auto, is marked, and goes to the review queue as an audit
    assert (record["review_status"], record["audit_sample"]) == ("auto", True)
    message = review_message(record)
    assert_valid_review_message(message)
    assert (message["audit"], message["flagged_paths"]) == (True, [])
    # and the message contract refuses an audit that is not an audit-sampled auto record
    for broken in (message | {"audit_sample": False}, message | {"review_status": "needs_review"}):
        with pytest.raises(AssertionError):
            assert_valid_review_message(broken)


def test_only_auto_records_are_sampled_and_rate_zero_samples_none() -> None:
    assert complete(GOOD, audit_sample_rate=0.0)["audit_sample"] is False
    assert complete({"total": "x"}, audit_sample_rate=1.0)["audit_sample"] is False
    assert failed()["audit_sample"] is False
    assert review_message(complete({"total": "x"}, audit_sample_rate=1.0))["audit"] is False


def test_the_audit_draw_is_the_same_for_a_document_every_time_and_near_its_rate() -> None:
    ids = [f"doc-{i}" for i in range(4000)]
    first = [chosen_for_audit(i, 0.1) for i in ids]
    assert first == [chosen_for_audit(i, 0.1) for i in ids]  # a retry never re-draws
    # 4000 draws at 0.1: 400 expected, sd 19; 6 sd either side never fails by chance
    assert 286 < sum(first) < 514
    # a lower rate samples a subset of a higher one (one draw per document, compared to the rate)
    assert all(a <= b for a, b in zip((chosen_for_audit(i, 0.05) for i in ids), first, strict=True))
    assert not any(chosen_for_audit(i, 0.0) for i in ids)
    assert all(chosen_for_audit(i, 1.0) for i in ids)
