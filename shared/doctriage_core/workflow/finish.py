"""Finish: evaluate a complete extraction, or record a failure; write the record once.

Both ends of the state machine land here (Evaluate, and the failure path with ``failure`` in
its input), and so does submit when an upload cannot even start: every document ends as
exactly one record, queued for review when it needs one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypedDict

from doctriage_core import errors
from doctriage_core.config import EvaluateSettings
from doctriage_core.domain.budget import Periods
from doctriage_core.domain.documents import DocumentRef
from doctriage_core.domain.evaluation import evaluate_extraction
from doctriage_core.domain.records import (
    Usage,
    complete_record,
    failed_record,
    goes_to_review,
    keep_cells_apart,
    review_message,
)
from doctriage_core.domain.schemas import document_threshold, load_schema
from doctriage_core.domain.timeline import iso_utc
from doctriage_core.ports import Queue, Results, Spending, Store
from doctriage_core.workflow.state import WorkflowState, describe_failure, latest_request


class Summary(TypedDict):
    """What evaluate returns to the state machine (and logs)."""

    document_id: str
    status: str
    review_status: str
    flags: list[str]
    cost_cents: float | None


def store_record(
    record: dict[str, Any],
    results: Results,
    review_queue: Queue,
    spending: Spending | None = None,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Write once, deliver at least once: a retry re-sends the stored record, never a new one.

    What Datalab charged is added to ``spending`` (the spend guard's counters) first: counting
    is idempotent per document, so a retry after a failed write neither loses nor doubles it.
    """
    if spending is not None:
        _count_spending(record, spending, now())
    _, stored = results.put_once(record)
    if goes_to_review(stored):
        review_queue.send(review_message(stored))
    return stored


def _count_spending(record: dict[str, Any], spending: Spending, now: float) -> None:
    datalab = record.get("datalab") or {}
    pages, cents = datalab.get("page_count"), datalab.get("cost_cents")
    if pages is None and cents is None:
        return
    periods = Periods.at(now)
    spending.add(
        record["document_id"],
        periods.day,
        periods.month,
        pages=int(pages or 0),
        cents=float(cents or 0),
    )


def fail_document(
    document: DocumentRef,
    exc: errors.DoctriageError,
    threshold: float,
    results: Results,
    review_queue: Queue,
    *,
    completed_at: str,
) -> dict[str, Any]:
    """Record an upload that never started a workflow (submit's bad input, last delivery)."""
    record = failed_record(
        document=document,
        reason=exc.reason,
        error_type=type(exc).__name__,
        message=str(exc),
        threshold=threshold,
        completed_at=completed_at,
    )
    return store_record(record, results, review_queue)


def evaluate_document(
    state: WorkflowState,
    *,
    store: Store,
    results: Results,
    review_queue: Queue,
    settings: EvaluateSettings,
    spending: Spending | None = None,
    now: Callable[[], float] = time.time,
) -> Summary:
    """Score the stored result, write the record once, queue it for review when it needs one.

    With ``failure`` in the state (the failure path's Catch), record the document as failed.
    """
    if "failure" in state:
        failed = _record_failure(state, store, settings, iso_utc(now()))
        return summary(store_record(failed, results, review_queue, spending, now))
    document = DocumentRef.from_state(state["document"])
    poll = state["poll"]
    raw_schema, _ = store.read_schema(state["schema"]["key"], state["schema"].get("version_id"))
    schema = load_schema(raw_schema)
    result_key = str(poll["result_key"])
    try:
        result = json.loads(store.read(result_key))
    except ValueError as exc:
        raise errors.DatalabMalformedResponse("the stored Datalab result is not JSON") from exc
    evaluation = evaluate_extraction(
        schema,
        result,
        upload_doc_type=document.doc_type or "",
        default_threshold=settings.human_review_threshold,
        upload_threshold=state.get("upload_threshold"),
        scores_available=bool(poll.get("scored")),
    )
    request = latest_request(state)
    record = complete_record(
        evaluation,
        document=document,
        request_id=request["request_id"],
        submissions=request["submissions"],
        usage=Usage.from_poll(poll),
        result_key=result_key,
        submitted_at=state.get("submitted_at"),
        completed_at=iso_utc(now()),
        audit_sample_rate=settings.audit_sample_rate,
    )
    record, cells = keep_cells_apart(record)
    if cells is not None:
        # Before the record: a stored record never points at cells that are not there yet.
        store.put_json(record["cells"]["key"], json.dumps(cells).encode())
    return summary(store_record(record, results, review_queue, spending, now))


def _failure_reason(error_name: str) -> str:
    if error_name == errors.ConfigError.__name__:
        return errors.Misconfigured.reason
    error_class = getattr(errors, error_name, None)
    if isinstance(error_class, type) and issubclass(error_class, errors.DoctriageError):
        return error_class.reason
    return "workflow_error"


def _record_failure(
    state: WorkflowState, store: Store, settings: EvaluateSettings, completed_at: str
) -> dict[str, Any]:
    """The state machine caught an error: the document's failed record, with the reason."""
    document = DocumentRef.from_state(state["document"])
    error_name, message = describe_failure(state["failure"])
    threshold = settings.human_review_threshold
    upload_threshold = state.get("upload_threshold")
    try:
        raw_schema, _ = store.read_schema(state["schema"]["key"], state["schema"].get("version_id"))
        threshold = document_threshold(
            load_schema(raw_schema),
            default_threshold=settings.human_review_threshold,
            upload_threshold=upload_threshold,
        )
    except errors.DoctriageError:
        threshold = upload_threshold if upload_threshold is not None else threshold
    poll = state.get("poll") or {}
    request = latest_request(state) if state.get("datalab") else None
    record = failed_record(
        document=document,
        reason=_failure_reason(error_name),
        error_type=error_name,
        message=message,
        threshold=threshold,
        request_id=request["request_id"] if request else None,
        submissions=request["submissions"] if request else None,
        usage=Usage.from_poll(poll),
        result_key=poll.get("result_key"),
        submitted_at=state.get("submitted_at"),
        completed_at=completed_at,
    )
    return record


def summary(record: dict[str, Any]) -> Summary:
    return {
        "document_id": record["document_id"],
        "status": record["status"],
        "review_status": record["review_status"],
        "flags": record["flags"],
        "cost_cents": (record.get("datalab") or {}).get("cost_cents"),
    }
