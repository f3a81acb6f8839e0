"""The state the state machine passes between the steps, typed.

``WorkflowInput`` is what submit starts an execution with (events/poll.json without ``poll``);
the poll step's result lands at ``$.poll`` as a ``PollStatus``; a caught error lands at
``$.failure`` as a ``Failure`` (Step Functions' ``{Error, Cause}``). Only S3 keys and ids cross
Step Functions, never a document or a result (256 KB state limit).
"""

from __future__ import annotations

import json
from typing import Literal, NotRequired, TypedDict

from doctriage_core.domain.poll_policy import Phase as WaitingPhase

# The phases the poll policy waits in, and the two a ready status ends in.
Phase = WaitingPhase | Literal["scored", "scores_unavailable"]


class DocumentState(TypedDict):
    document_id: str
    bucket: str
    key: str
    doc_type: str | None
    version_id: str | None
    etag: str | None
    size: int | None
    reprocess_of: NotRequired[str]  # a reprocess's copy: the failed document it sends again


class SchemaRef(TypedDict):
    key: str
    version_id: str | None


class DatalabRequest(TypedDict):
    """The Datalab request a document is on, and how many submissions it has taken."""

    request_id: str
    check_url: str
    submissions: int


class _WebhookWait(TypedDict, total=False):
    # Present only when submit asked Datalab for a webhook: the state machine then waits for it
    # up to webhook_wait_seconds, and polls for scores scores_first_wait_seconds after it.
    webhook_wait_seconds: int
    scores_first_wait_seconds: int


class WorkflowInput(_WebhookWait):
    document: DocumentState
    schema: SchemaRef
    upload_threshold: float | None
    datalab: DatalabRequest
    submitted_at: str
    first_wait_seconds: float


class PollStatus(TypedDict, total=False):
    """What the poll step returns: the Choice reads ``ready``, the Wait ``next_wait_seconds``."""

    ready: bool
    scored: bool
    phase: Phase
    polls: int
    phase_polls: int
    next_wait_seconds: float
    datalab: DatalabRequest
    result_key: str | None
    complete_seen_at: str | None
    page_count: int | None
    cost_cents: float | None  # Datalab's charge (cost_breakdown), once a fetch has carried it
    queued: int  # times the team's shared request budget had nothing to spare (no request made)
    rate_limited: int  # 429s in a row (absent after any other answer): the back-off grows with it


class Failure(TypedDict, total=False):
    """A Catch's output: the error's name, and its cause (a Lambda's error JSON)."""

    Error: str
    Cause: str


class WorkflowState(WorkflowInput, total=False):
    """The input of the poll and evaluate tasks: the workflow input and what the loop added."""

    poll: PollStatus
    failure: Failure


def latest_request(state: WorkflowState) -> DatalabRequest:
    """The Datalab request the document is on now, and how many submissions it took.

    Submit's (``state.datalab``) until a page-rate resubmit; then the poll status carries the
    newer one (``state.poll.datalab``). Workflows started before ``submissions`` existed count 1.
    """
    poll = state.get("poll") or {}
    current = poll.get("datalab") or state["datalab"]
    return {
        "request_id": current.get("request_id"),
        "check_url": current.get("check_url"),
        "submissions": int(current.get("submissions") or 1),
    }


def describe_failure(failure: Failure) -> tuple[str, str]:
    """(error name, message) from a Catch's output; a Lambda's Cause is its error JSON."""
    name = str(failure.get("Error") or "States.TaskFailed")
    cause = failure.get("Cause") or ""
    message = cause
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict):
            message = str(parsed.get("errorMessage") or cause)
    except ValueError:
        pass
    return name, message or name  # failed_record caps it
