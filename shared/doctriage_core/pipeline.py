"""One workflow step each: submit an upload, check an extraction, evaluate or fail a document.

The handlers call these with adapters already built; nothing here creates a client or reads the
environment. What crosses Step Functions is a small ``state`` dict (events/poll.json and
events/evaluate.json show it whole): S3 keys and ids, never a document or a result.
"""

from __future__ import annotations

import json
import posixpath
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol

from doctriage_core import errors
from doctriage_core.config import Settings
from doctriage_core.domain.documents import (
    SNIFF_BYTES,
    DocumentRef,
    check_content,
    check_size,
    content_type_for,
    decode_event_key,
    doc_type_from_key,
    document_id_for,
    schema_key_for,
)
from doctriage_core.domain.evaluation import evaluate_extraction
from doctriage_core.domain.extraction import has_scores
from doctriage_core.domain.poll_policy import PollObservation, next_wait_seconds
from doctriage_core.domain.records import (
    complete_record,
    failed_record,
    review_message,
    utc_now_iso,
)
from doctriage_core.domain.schemas import document_threshold, load_schema, parse_threshold

UPLOAD_THRESHOLD_METADATA = "human-review-threshold"
_MAX_ERROR_MESSAGE = 1000


# --- ports: what the pipeline needs from the outside (adapters/aws.py, adapters/datalab.py) ----


class ObjectInfoLike(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def version_id(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, str]: ...


class Store(Protocol):
    def head(self, key: str, version_id: str | None) -> ObjectInfoLike: ...
    def open(self, key: str, version_id: str | None) -> BinaryIO: ...
    def read_schema(self, key: str, version_id: str | None = None) -> tuple[bytes, str | None]: ...
    def read(self, key: str) -> bytes: ...
    def put_json(self, key: str, body: bytes) -> None: ...


class Results(Protocol):
    def put_once(self, record: dict[str, Any]) -> tuple[bool, dict[str, Any]]: ...
    def get(self, document_id: str) -> dict[str, Any] | None: ...


class Queue(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class Starter(Protocol):
    def exists(self, name: str) -> bool: ...
    def start(self, name: str, state: dict[str, Any]) -> bool: ...


class SubmissionLike(Protocol):
    @property
    def request_id(self) -> str: ...
    @property
    def check_url(self) -> str: ...


class Datalab(Protocol):
    def submit(
        self,
        stream: BinaryIO,
        *,
        filename: str,
        content_type: str,
        page_schema: str,
        size: int | None = None,
    ) -> SubmissionLike: ...
    def check(self, check_url: str) -> dict[str, Any]: ...


# --- shared ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One object named by an S3 event record, as it arrived (key still URL-encoded)."""

    bucket: str
    raw_key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    @classmethod
    def from_s3_record(cls, record: dict[str, Any]) -> Upload:
        s3 = record["s3"]
        obj = s3["object"]
        return cls(
            bucket=s3["bucket"]["name"],
            raw_key=obj["key"],
            version_id=obj.get("versionId") or None,
            etag=obj.get("eTag") or None,
            size=obj.get("size"),
        )

    def document(self) -> DocumentRef:
        key = decode_event_key(self.raw_key)
        return DocumentRef(
            document_id=document_id_for(self.bucket, key, self.version_id, self.etag),
            bucket=self.bucket,
            key=key,
            doc_type=None,
            version_id=self.version_id,
            etag=self.etag,
            size=self.size,
        )


def store_record(record: dict[str, Any], results: Results, review_queue: Queue) -> dict[str, Any]:
    """Write once, deliver at least once: a retry re-sends the stored record, never a new one."""
    _, stored = results.put_once(record)
    if stored["review_status"] == "needs_review":
        review_queue.send(review_message(stored))
    return stored


def _elapsed(since_iso: str, now: float, settings: Settings) -> float:
    started = datetime.fromisoformat(since_iso).timestamp()
    return max(0.0, now - started) / settings.time_scale


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _PrefixedStream:
    """A read-only stream that replays the bytes already read to sniff the file type."""

    def __init__(self, prefix: bytes, rest: BinaryIO) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size is None or size < 0:
                data, self._prefix = self._prefix + self._rest.read(), b""
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return self._rest.read(size)


def send_document(
    document: DocumentRef,
    schema: dict[str, Any],
    *,
    store: Store,
    datalab: Datalab,
    size: int | None,
) -> SubmissionLike:
    """Stream one upload (by its version) to Datalab with the schema: the one way both submit
    and a page-rate resubmit send a document, so a resubmit asks for exactly what submit did.

    Reads the first bytes to check the content really is the type its name says.
    """
    body = store.open(document.key, document.version_id)
    try:
        head = body.read(SNIFF_BYTES)
        check_content(document.key, head)
        return datalab.submit(
            _PrefixedStream(head, body),  # type: ignore[arg-type]
            filename=posixpath.basename(document.key),
            content_type=content_type_for(document.key),
            page_schema=json.dumps(schema),
            size=size,
        )
    finally:
        body.close()


# --- submit ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitOutcome:
    document_id: str
    outcome: str  # "started" | "duplicate" | "failed"
    reason: str | None = None


def submit_upload(
    upload: Upload,
    *,
    receive_count: int,
    store: Store,
    datalab: Callable[[], Datalab],
    results: Results,
    review_queue: Queue,
    workflows: Starter,
    settings: Settings,
    now: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> SubmitOutcome:
    """Validate the upload, send it to Datalab, start its workflow; bad input ends as a record.

    Transient Datalab errors propagate (the message is redelivered) until the last delivery
    the queue allows, which records the document as failed instead of losing it to the DLQ.
    """
    document = upload.document()
    if workflows.exists(document.document_id) or results.get(document.document_id):
        return SubmitOutcome(document.document_id, "duplicate")
    threshold = settings.human_review_threshold
    try:
        doc_type = doc_type_from_key(document.key)
        document = replace(document, doc_type=doc_type)
        content_type_for(document.key)  # an unsupported type fails before any S3 read
        info = store.head(document.key, document.version_id)
        document = replace(
            document,
            size=info.size,
            etag=document.etag or info.etag,
            version_id=document.version_id or info.version_id,
        )
        check_size(info.size)
        upload_threshold = None
        if UPLOAD_THRESHOLD_METADATA in info.metadata:
            upload_threshold = parse_threshold(
                info.metadata[UPLOAD_THRESHOLD_METADATA],
                source=f"S3 metadata x-amz-meta-{UPLOAD_THRESHOLD_METADATA}",
            )
            if upload_threshold < settings.minimum_upload_threshold:
                # Whoever may upload must not switch review off where the operator forbids it.
                raise errors.InvalidThreshold(
                    f"S3 metadata x-amz-meta-{UPLOAD_THRESHOLD_METADATA}={upload_threshold} is "
                    f"below the stack's minimum of {settings.minimum_upload_threshold} "
                    "(MinimumUploadThreshold)"
                )
            threshold = upload_threshold
        schema_key = schema_key_for(doc_type)
        raw_schema, schema_version = store.read_schema(schema_key)
        schema = load_schema(raw_schema)
        threshold = document_threshold(
            schema,
            default_threshold=settings.human_review_threshold,
            upload_threshold=upload_threshold,
        )
        submission = send_document(document, schema, store=store, datalab=datalab(), size=info.size)
    except errors.PermanentError as exc:
        _fail(document, exc, threshold, results, review_queue, now)
        return SubmitOutcome(document.document_id, "failed", exc.reason)
    except errors.TransientError as exc:
        if receive_count < settings.submit_max_receives:
            raise
        _fail(document, exc, threshold, results, review_queue, now)
        return SubmitOutcome(document.document_id, "failed", exc.reason)

    first_wait = next_wait_seconds(
        PollObservation(
            phase="submitted", polls_in_phase=0, seconds_in_phase=0.0, size_bytes=info.size
        ),
        rng=rng,
    )
    state = {
        "document": document.to_state(),
        "schema": {"key": schema_key, "version_id": schema_version},
        "upload_threshold": upload_threshold,
        "datalab": {
            "request_id": submission.request_id,
            "check_url": submission.check_url,
            "submissions": 1,
        },
        "submitted_at": _iso(now()),
        "first_wait_seconds": first_wait,
    }
    started = workflows.start(document.document_id, state)
    return SubmitOutcome(document.document_id, "started" if started else "duplicate")


def _fail(
    document: DocumentRef,
    exc: errors.DoctriageError,
    threshold: float,
    results: Results,
    review_queue: Queue,
    now: Callable[[], float],
) -> dict[str, Any]:
    record = failed_record(
        document=document,
        reason=exc.reason,
        error_type=type(exc).__name__,
        message=str(exc)[:_MAX_ERROR_MESSAGE],
        threshold=threshold,
        completed_at=_iso(now()),
    )
    return store_record(record, results, review_queue)


# --- poll -----------------------------------------------------------------------------------------


def result_key_for(document_id: str) -> str:
    return f"results/{document_id}/datalab-result.json"


def latest_request(state: dict[str, Any]) -> dict[str, Any]:
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


def check_extraction(
    state: dict[str, Any],
    *,
    datalab: Datalab,
    store: Store,
    settings: Settings,
    now: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Poll Datalab once (or resubmit a throttled document); return the small status the state
    machine branches and waits on.

    The status always carries ``datalab`` (request_id, check_url, submissions): the request to
    poll next, which a page-rate resubmit replaces.
    """
    previous = state.get("poll") or {}
    document_id = state["document"]["document_id"]
    request = latest_request(state)
    polls = int(previous.get("polls", 0)) + 1
    phase = previous.get("phase", "processing")
    phase_polls = int(previous.get("phase_polls", 0))
    current = now()
    since_submit = _elapsed(state["submitted_at"], current, settings)
    processing_left = settings.processing_deadline_seconds - since_submit

    def waiting(
        new_phase: str,
        seconds_in_phase: float,
        deadline_left: float,
        retry_after: float | None = None,
        polls_in_phase: int | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        in_phase = polls_in_phase or (phase_polls + 1 if new_phase == phase else 1)
        wait = next_wait_seconds(
            PollObservation(
                phase=new_phase,  # type: ignore[arg-type]
                polls_in_phase=in_phase,
                seconds_in_phase=seconds_in_phase,
                size_bytes=state["document"].get("size"),
                page_count=extra.get("page_count") or previous.get("page_count"),
                retry_after=retry_after,
                seconds_to_deadline=deadline_left,
            ),
            rng=rng,
        )
        return {
            **{
                k: v
                for k, v in previous.items()
                if k in ("complete_seen_at", "result_key", "page_count")
            },
            **extra,
            "ready": False,
            "scored": False,
            "phase": new_phase,
            "polls": polls,
            "phase_polls": in_phase,
            "next_wait_seconds": wait,
            "datalab": request,
        }

    def throttled(retry_after: float | None = None) -> dict[str, Any]:
        # Counted by submissions, not polls: each resubmit that is throttled again waits longer.
        return waiting(
            "throttled",
            since_submit,
            processing_left,
            retry_after,
            polls_in_phase=request["submissions"],
        )

    if phase == "throttled":
        if processing_left <= 0:
            raise errors.DeadlineExceeded(
                f"Datalab's page rate limit still throttled the document after "
                f"{request['submissions']} submissions and "
                f"{settings.processing_deadline_seconds:.0f} s"
            )
        try:
            return _resubmit(
                state, request, polls, processing_left, datalab=datalab, store=store, rng=rng
            )
        except errors.DatalabRateLimited as exc:
            if exc.retry_after is None:
                raise
            return throttled(exc.retry_after)

    try:
        body = datalab.check(request["check_url"])
    except errors.DatalabPageRateLimited as exc:
        # Not a failure: Datalab had too many of the team's pages in flight. Back off, then
        # the next poll resubmits (phase "throttled"); the processing deadline still holds.
        if processing_left <= 0:
            raise errors.DeadlineExceeded(
                f"Datalab's page rate limit still throttled the document after "
                f"{settings.processing_deadline_seconds:.0f} s: {exc}"
            ) from exc
        return throttled()
    except errors.DatalabRateLimited as exc:
        # Datalab said when to come back: wait in the Wait state rather than burn a retry.
        if exc.retry_after is None:
            raise
        # The deadlines hold while throttled too, or a 429 storm would poll forever.
        if phase == "unscored":
            since_complete = _elapsed(previous["complete_seen_at"], current, settings)
            left = settings.scoring_deadline_seconds - since_complete
            if left <= 0:
                return _ready(previous, polls, request, scored=False)
            return waiting("unscored", since_complete, left, exc.retry_after)
        if processing_left <= 0:
            raise errors.DeadlineExceeded(
                f"Datalab was still processing (and rate-limiting us) after "
                f"{settings.processing_deadline_seconds:.0f} s"
            ) from exc
        return waiting("processing", since_submit, processing_left, exc.retry_after)

    if body.get("status") != "complete":
        # "processing", or a status Datalab has not documented (e.g. "pending"): not finished.
        if processing_left <= 0:
            raise errors.DeadlineExceeded(
                f"Datalab was still processing after {settings.processing_deadline_seconds:.0f} s"
            )
        return waiting("processing", since_submit, processing_left)

    result_key = result_key_for(document_id)
    scored = has_scores(body)
    first_complete = phase != "unscored"
    if first_complete or scored:
        # Datalab deletes results about an hour after completion: keep our own copy now.
        store.put_json(result_key, json.dumps(body).encode())
    complete_seen_at: str = (
        previous.get("complete_seen_at") if not first_complete else None
    ) or _iso(current)
    page_count = body.get("page_count")
    done = {
        "result_key": result_key,
        "complete_seen_at": complete_seen_at,
        "page_count": page_count,
    }
    if scored:
        return _ready(done, polls, request, scored=True)
    since_complete = _elapsed(complete_seen_at, current, settings)
    scoring_left = settings.scoring_deadline_seconds - since_complete
    if scoring_left <= 0:
        return _ready(done, polls, request, scored=False)
    return waiting(
        "unscored",
        since_complete,
        scoring_left,
        result_key=result_key,
        complete_seen_at=complete_seen_at,
        page_count=page_count,
    )


def _resubmit(
    state: dict[str, Any],
    request: dict[str, Any],
    polls: int,
    processing_left: float,
    *,
    datalab: Datalab,
    store: Store,
    rng: random.Random | None,
) -> dict[str, Any]:
    """Send a throttled document to Datalab again: the same upload version, the same schema
    version, the same parameters as submit; the status then polls the new request."""
    document = DocumentRef.from_state(state["document"])
    raw_schema, _ = store.read_schema(state["schema"]["key"], state["schema"].get("version_id"))
    submission = send_document(
        document, load_schema(raw_schema), store=store, datalab=datalab, size=document.size
    )
    wait = next_wait_seconds(
        PollObservation(
            phase="submitted",
            polls_in_phase=0,
            seconds_in_phase=0.0,
            size_bytes=document.size,
            seconds_to_deadline=processing_left,
        ),
        rng=rng,
    )
    return {
        "ready": False,
        "scored": False,
        "phase": "submitted",
        "polls": polls,
        "phase_polls": 0,
        "next_wait_seconds": wait,
        "datalab": {
            "request_id": submission.request_id,
            "check_url": submission.check_url,
            "submissions": request["submissions"] + 1,
        },
    }


def _ready(
    known: dict[str, Any], polls: int, request: dict[str, Any], *, scored: bool
) -> dict[str, Any]:
    """The last status: evaluate now, with scores or (deadline passed) without them."""
    return {
        "ready": True,
        "scored": scored,
        "phase": "scored" if scored else "scores_unavailable",
        "polls": polls,
        "next_wait_seconds": 0,
        **{k: known.get(k) for k in ("result_key", "complete_seen_at", "page_count")},
        "datalab": request,
    }


# --- evaluate and fail ----------------------------------------------------------------------------


def evaluate_document(
    state: dict[str, Any],
    *,
    store: Store,
    results: Results,
    review_queue: Queue,
    settings: Settings,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Score the stored result, write the record once, queue it for review when it needs one."""
    if "failure" in state:
        return record_workflow_failure(
            state,
            store=store,
            results=results,
            review_queue=review_queue,
            settings=settings,
            now=now,
        )
    document = DocumentRef.from_state(state["document"])
    poll = state["poll"]
    raw_schema, _ = store.read_schema(state["schema"]["key"], state["schema"].get("version_id"))
    schema = load_schema(raw_schema)
    try:
        result = json.loads(store.read(poll["result_key"]))
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
        result_key=poll["result_key"],
        submitted_at=state.get("submitted_at"),
        completed_at=_iso(now()),
    )
    stored = store_record(record, results, review_queue)
    return _summary(stored)


def record_workflow_failure(
    state: dict[str, Any],
    *,
    store: Store,
    results: Results,
    review_queue: Queue,
    settings: Settings,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The state machine caught an error: record the document as failed with the reason."""
    document = DocumentRef.from_state(state["document"])
    error_name, message = _describe_failure(state["failure"])
    error_class = getattr(errors, error_name, None)
    reason = (
        error_class.reason
        if isinstance(error_class, type) and issubclass(error_class, errors.DoctriageError)
        else "workflow_error"
    )
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
        reason=reason,
        error_type=error_name,
        message=message,
        threshold=threshold,
        request_id=request["request_id"] if request else None,
        submissions=request["submissions"] if request else None,
        result_key=poll.get("result_key"),
        submitted_at=state.get("submitted_at"),
        completed_at=_iso(now()),
    )
    return _summary(store_record(record, results, review_queue))


def _describe_failure(failure: dict[str, Any]) -> tuple[str, str]:
    """Step Functions' Catch output ``{Error, Cause}``; a Lambda's Cause is its error JSON."""
    name = str(failure.get("Error") or "States.TaskFailed")
    cause = failure.get("Cause") or ""
    message = cause
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict):
            message = str(parsed.get("errorMessage") or cause)
    except ValueError:
        pass
    return name, (message or name)[:_MAX_ERROR_MESSAGE]


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "document_id": record["document_id"],
        "status": record["status"],
        "review_status": record["review_status"],
        "flags": record["flags"],
    }


__all__ = [
    "SubmitOutcome",
    "Upload",
    "check_extraction",
    "evaluate_document",
    "has_scores",
    "latest_request",
    "record_workflow_failure",
    "result_key_for",
    "send_document",
    "store_record",
    "submit_upload",
    "utc_now_iso",
]
