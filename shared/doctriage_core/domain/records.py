"""The result record (one per document, terminal) and the review-queue message.

Shapes are fixed by ``contracts/record.schema.json`` and ``contracts/review-message.schema.json``.
Records hold plain JSON values (floats, never Decimal or NaN); the storage adapter converts.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from doctriage_core.domain.documents import DocumentRef
from doctriage_core.domain.evaluation import Evaluation

REVIEW_MESSAGE_SCHEMA_VERSION = "1"
# Flags that name a field or a cell (``low_confidence_field:line_items[1].amount``).
PATH_FLAGS = ("low_confidence_field", "missing_field", "invalid_field", "incomplete_list")
# A failure message is for a human; capping it keeps a record well inside DynamoDB's 400 KB
# item limit and SQS's 256 KB message limit whatever an upstream error text contains. The one
# cap: every failure message reaches a record through failed_record.
MAX_ERROR_MESSAGE = 1000
# Mixed into the audit draw so it is independent of anything else derived from document ids.
_AUDIT_SALT = b"doctriage-audit-sample:"


def _datalab(
    request_id: str | None, result_key: str | None, submissions: int | None
) -> dict[str, Any]:
    # submissions: how many times Datalab accepted the document (more than 1 after page-rate
    # resubmits); null only when it never got a request id from Datalab.
    if submissions is None and request_id is not None:
        submissions = 1
    return {"request_id": request_id, "result_key": result_key, "submissions": submissions}


def chosen_for_audit(document_id: str, rate: float) -> bool:
    """Whether an auto document is audited: a draw uniform over documents, at ``rate`` (0-1).

    Derived from the document id, so an evaluate that is retried (or runs twice) draws the same
    answer: the record is written once, and the message sent again is the same one.
    """
    digest = hashlib.sha256(_AUDIT_SALT + document_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def complete_record(
    evaluation: Evaluation,
    *,
    document: DocumentRef,
    request_id: str | None,
    result_key: str | None,
    submitted_at: str | None,
    completed_at: str,
    submissions: int | None = None,
    audit_sample_rate: float = 0.0,
) -> dict[str, Any]:
    """The record of a document Datalab extracted (review_status auto or needs_review).

    An auto document chosen for audit (:func:`chosen_for_audit`) stays auto, with
    ``audit_sample`` true: it also goes to the review queue so a person checks every field.
    """
    audit = evaluation.review_status == "auto" and chosen_for_audit(
        document.document_id, audit_sample_rate
    )
    return {
        "document_id": document.document_id,
        "status": "complete",
        **evaluation.to_dict(),
        "audit_sample": audit,
        "source": document.source(),
        "datalab": _datalab(request_id, result_key, submissions),
        "error": None,
        "submitted_at": submitted_at,
        "completed_at": completed_at,
    }


def _safe_threshold(threshold: object) -> float:
    # The failure path must always write a record, even when the failure *is* a bad threshold.
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        return 1.0
    value = float(threshold)
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 1.0


def failed_record(
    *,
    document: DocumentRef,
    reason: str,
    error_type: str,
    message: str,
    threshold: float,
    request_id: str | None = None,
    result_key: str | None = None,
    submitted_at: str | None = None,
    completed_at: str,
    submissions: int | None = None,
) -> dict[str, Any]:
    """The record of a document that could not be extracted: needs_review, never dropped.

    Never raises on odd input: a blank reason becomes ``internal_error`` (whitespace in it
    ``_``), a threshold outside [0, 1] is clamped (NaN or a non-number becomes 1.0), the message
    is capped.
    """
    return {
        "document_id": document.document_id,
        "status": "failed",
        "review_status": "needs_review",
        "flags": [f"extraction_failed:{'_'.join(reason.split()) or 'internal_error'}"],
        "document_type": document.doc_type,
        "document_type_confidence": None,
        "extraction_score_average": None,
        "human_review_threshold": _safe_threshold(threshold),
        "fields": {},
        "source": document.source(),
        "datalab": _datalab(request_id, result_key, submissions),
        "error": {"type": error_type or "Error", "message": str(message)[:MAX_ERROR_MESSAGE]},
        "audit_sample": False,
        "submitted_at": submitted_at,
        "completed_at": completed_at,
    }


def flagged_paths(flags: list[str]) -> list[str]:
    """The field and cell paths the flags name (``line_items[1].amount``), sorted, once each."""
    paths = set()
    for flag in flags:
        kind, _, path = flag.partition(":")
        if kind in PATH_FLAGS and path:
            paths.add(path)
    return sorted(paths)


def goes_to_review(record: dict[str, Any]) -> bool:
    """needs_review records (failed ones included), and auto ones sampled for audit."""
    return record.get("review_status") == "needs_review" or record.get("audit_sample") is True


def review_message(record: dict[str, Any]) -> dict[str, Any]:
    """The review-queue body: the whole record plus ``schema_version``, ``flagged_paths`` and
    ``audit``.

    ``flagged_paths``: what a reviewer has to decide, cell by cell for nested fields; ``audit``
    true for an auto record sampled for audit (every field is to be decided, none is flagged).

    Only records that :func:`goes_to_review` belong on the review queue; anything else is a
    caller bug, raised here rather than sent.
    """
    if not goes_to_review(record):
        raise ValueError("only needs_review and audit-sampled records go to the review queue")
    return {
        **record,
        "schema_version": REVIEW_MESSAGE_SCHEMA_VERSION,
        "flagged_paths": flagged_paths(list(record.get("flags") or [])),
        "audit": record.get("review_status") == "auto",
    }
