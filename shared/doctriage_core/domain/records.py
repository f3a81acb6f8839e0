"""The result record (one per document, terminal) and the review-queue message.

Shapes are fixed by ``contracts/record.schema.json`` and ``contracts/review-message.schema.json``.
Records hold plain JSON values (floats, never Decimal or NaN); the storage adapter converts.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from doctriage_core.domain.documents import DocumentRef, cells_key_for
from doctriage_core.domain.evaluation import Evaluation

REVIEW_MESSAGE_SCHEMA_VERSION = "1"
# Flags that name a field or a cell (``low_confidence_field:line_items[1].amount``).
PATH_FLAGS = ("low_confidence_field", "missing_field", "invalid_field", "incomplete_list")
# A failure message is for a human; capping it keeps a record well inside DynamoDB's 400 KB
# item limit and SQS's 256 KB message limit whatever an upstream error text contains. The one
# cap: every failure message reaches a record through failed_record.
MAX_ERROR_MESSAGE = 1000
# DynamoDB refuses an item over 400 KB. A record stays under this many bytes of compact JSON (a
# little more than DynamoDB counts for the same item) so that the reviewer's decision, written
# into the same item later, still fits.
RECORD_BUDGET_BYTES = 300_000


class Usage(NamedTuple):
    """What Datalab says the document took: its charge (null until it says) and pages."""

    cost_cents: float | None = None
    page_count: int | None = None

    @classmethod
    def from_poll(cls, poll: Mapping[str, Any]) -> Usage:
        return cls(poll.get("cost_cents"), poll.get("page_count"))


# Mixed into the audit draw so it is independent of anything else derived from document ids.
_AUDIT_SALT = b"doctriage-audit-sample:"


def _datalab(
    request_id: str | None,
    result_key: str | None,
    submissions: int | None,
    usage: Usage | None,
) -> dict[str, Any]:
    # submissions: how many times Datalab accepted the document (more than 1 after page-rate
    # resubmits); null only when it never got a request id from Datalab.
    if submissions is None and request_id is not None:
        submissions = 1
    usage = usage or Usage()
    return {
        "request_id": request_id,
        "result_key": result_key,
        "submissions": submissions,
        "cost_cents": usage.cost_cents,
        "page_count": usage.page_count,
    }


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
    usage: Usage | None = None,
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
        "datalab": _datalab(request_id, result_key, submissions, usage),
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
    usage: Usage | None = None,
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
        "datalab": _datalab(request_id, result_key, submissions, usage),
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


def record_size(record: dict[str, Any]) -> int:
    return len(json.dumps(record, separators=(",", ":")))


def keep_cells_apart(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the record to store, its cells to keep in S3 or None): cells leave only when needed.

    A record over ``RECORD_BUDGET_BYTES`` (a 500-row table's cells take most of it) keeps every
    list's ``value``, flags and checks, and loses the lists' ``items``; they go to
    ``cells_key_for(document_id)`` as ``{path: items}``, and the record's ``cells`` says where,
    which lists and why. Cells nested in an object's ``properties`` are found by path.
    """
    size = record_size(record)
    if size <= RECORD_BUDGET_BYTES:
        return record, None
    cells: dict[str, Any] = {}
    fields = {name: _without_items(name, f, cells) for name, f in record["fields"].items()}
    if not cells:
        return record, None
    key = cells_key_for(record["document_id"])
    slim = {**record, "fields": fields}
    slim["cells"] = {
        "key": key,
        "paths": sorted(cells),
        "reason": (
            f"the record with its cells is {size:,} bytes, over the {RECORD_BUDGET_BYTES:,}-byte "
            "budget under DynamoDB's 400 KB item limit: the cells are kept in S3"
        ),
    }
    return slim, cells


def _without_items(path: str, field: dict[str, Any], cells: dict[str, Any]) -> dict[str, Any]:
    if "items" in field:
        cells[path] = field["items"]
        return {k: v for k, v in field.items() if k != "items"}
    if "properties" in field:
        parts = field["properties"]
        return {
            **field,
            "properties": {k: _without_items(f"{path}.{k}", p, cells) for k, p in parts.items()},
        }
    return field


def restore_cells(record: dict[str, Any], cells: dict[str, Any]) -> dict[str, Any]:
    """The record as evaluated: ``keep_cells_apart``'s cells (``{path: items}``) put back."""
    fields = dict(record["fields"])
    for path, items in cells.items():
        name, *parts = path.split(".")
        fields[name] = _with_items(fields[name], parts, items)
    return {k: v for k, v in {**record, "fields": fields}.items() if k != "cells"}


def _with_items(field: dict[str, Any], parts: list[str], items: Any) -> dict[str, Any]:
    if not parts:
        return {**field, "items": items}
    head, *rest = parts
    properties = dict(field["properties"])
    properties[head] = _with_items(properties[head], rest, items)
    return {**field, "properties": properties}
