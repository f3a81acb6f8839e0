"""Submit: validate one upload, send it to Datalab with its schema, start its workflow.

Bad input ends as a failed record here; transient errors propagate for intake to redeliver,
until the last delivery (intake decides which that is), which records the document instead.
"""

from __future__ import annotations

import json
import posixpath
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO

from doctriage_core import errors
from doctriage_core.config import SubmitSettings
from doctriage_core.domain.budget import Budget, Periods, Spent, over_budget, seconds_until_recheck
from doctriage_core.domain.documents import (
    SNIFF_BYTES,
    UPLOAD_THRESHOLD_METADATA,
    DocumentRef,
    check_content,
    check_size,
    content_type_for,
    doc_type_from_key,
    reprocess_of,
    schema_key_for,
)
from doctriage_core.domain.poll_policy import (
    PollObservation,
    next_wait_seconds,
    scores_first_wait_seconds,
    webhook_timeout_seconds,
)
from doctriage_core.domain.schemas import document_threshold, load_schema, parse_threshold
from doctriage_core.domain.timeline import iso_utc
from doctriage_core.ports import (
    Datalab,
    Queue,
    RequestBudget,
    Results,
    Spending,
    Starter,
    Store,
    SubmissionLike,
    WebhookArrivals,
)
from doctriage_core.workflow.finish import fail_document
from doctriage_core.workflow.request_budget import request_wait
from doctriage_core.workflow.state import WorkflowInput


@dataclass(frozen=True)
class SubmitOutcome:
    document_id: str
    outcome: str  # "started" | "duplicate" | "failed"
    reason: str | None = None


@dataclass(frozen=True)
class Webhook:
    """Webhook-assisted waiting, when on: the URL Datalab is given, where requests register."""

    url: str
    arrivals: WebhookArrivals


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
    schema: dict[str, object],
    *,
    store: Store,
    datalab: Datalab,
    size: int | None,
    webhook_url: str | None = None,
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
            webhook_url=webhook_url,
        )
    finally:
        body.close()


def _upload_threshold(metadata: dict[str, str], settings: SubmitSettings) -> float | None:
    """The upload's own threshold (S3 metadata), held to the stack's MinimumUploadThreshold."""
    if UPLOAD_THRESHOLD_METADATA not in metadata:
        return None
    source = f"S3 metadata x-amz-meta-{UPLOAD_THRESHOLD_METADATA}"
    threshold = parse_threshold(metadata[UPLOAD_THRESHOLD_METADATA], source=source)
    if threshold < settings.minimum_upload_threshold:
        # Whoever may upload must not switch review off where the operator forbids it.
        raise errors.InvalidThreshold(
            f"{source}={threshold} is below the stack's minimum of "
            f"{settings.minimum_upload_threshold} (MinimumUploadThreshold)"
        )
    return threshold


def _registered(hook: Webhook, request_id: str, document_id: str) -> bool:
    """Register the request for its webhook. The document is at Datalab already: on an AWS
    failure here it is polled without the webhook rather than sent again."""
    try:
        hook.arrivals.register(request_id, document_id)
    except (errors.AwsUnavailable, errors.ConfigError):
        return False
    return True


def _check_budget(budget: Budget, spending: Spending, now: float) -> None:
    periods = Periods.at(now)
    pages, cents = spending.spent(periods.day, periods.month)
    held = over_budget(budget, Spent(pages_today=pages, cents_this_month=cents))
    if held is not None:
        raise errors.HeldForBudget(held, retry_after=seconds_until_recheck(now))


def submit_upload(
    document: DocumentRef,
    *,
    last_delivery: bool,
    store: Store,
    datalab: Callable[[], Datalab],
    results: Results,
    review_queue: Queue,
    workflows: Starter,
    settings: SubmitSettings,
    spending: Spending | None = None,
    requests: RequestBudget | None = None,
    webhook: Callable[[], Webhook | None] = lambda: None,
    now: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> SubmitOutcome:
    """Validate the upload, send it to Datalab, start its workflow; bad input ends as a record.

    Transient errors propagate (the message is redelivered) unless this is the last delivery
    the queue allows: that one records the document as failed instead of losing it to the DLQ.
    Over the spend guard's budget (``spending`` and ``settings.budget``) nothing is sent:
    HeldForBudget propagates, and intake keeps the message; so does WaitingForRequests when the
    team's shared request budget (``requests``) has nothing left this moment. With ``webhook``
    on, Datalab is given its URL and the workflow waits for it (``webhook_wait_seconds``) before
    polling.
    """
    threshold = settings.human_review_threshold
    try:
        if workflows.exists(document.document_id) or results.get(document.document_id):
            return SubmitOutcome(document.document_id, "duplicate")
        doc_type = doc_type_from_key(document.key)
        document = replace(document, doc_type=doc_type)
        content_type_for(document.key)  # an unsupported type fails before any S3 read
        info = store.head(document.key, document.version_id)
        document = replace(
            document,
            size=info.size,
            etag=document.etag or info.etag,
            version_id=document.version_id or info.version_id,
            reprocess_of=reprocess_of(info.metadata),
        )
        check_size(info.size)
        upload_threshold = _upload_threshold(info.metadata, settings)
        if upload_threshold is not None:
            threshold = upload_threshold
        schema_key = schema_key_for(doc_type)
        raw_schema, schema_version = store.read_schema(schema_key)
        schema = load_schema(raw_schema)
        threshold = document_threshold(
            schema,
            default_threshold=settings.human_review_threshold,
            upload_threshold=upload_threshold,
        )
        if spending is not None and settings.budget.enabled:
            _check_budget(settings.budget, spending, now())
        wait = request_wait(requests, settings.datalab, now(), settings.time_scale)
        if wait is not None:
            raise errors.WaitingForRequests(
                "the Datalab team's request budget is used up for now", retry_after=wait
            )
        hook = webhook()
        submission = send_document(
            document,
            schema,
            store=store,
            datalab=datalab(),
            size=info.size,
            webhook_url=hook.url if hook else None,
        )
    except errors.ConfigError as exc:
        # A setting no document can succeed without (the Datalab URL or key): recorded as failed
        # with the reason rather than left to cycle its deliveries into the DLQ unseen.
        failure = errors.Misconfigured(f"the function is misconfigured: {exc}")
        fail_document(
            document, failure, threshold, results, review_queue, completed_at=iso_utc(now())
        )
        return SubmitOutcome(document.document_id, "failed", failure.reason)
    except (errors.PermanentError, errors.TransientError) as exc:
        if isinstance(exc, errors.TransientError) and not last_delivery:
            raise
        fail_document(document, exc, threshold, results, review_queue, completed_at=iso_utc(now()))
        return SubmitOutcome(document.document_id, "failed", exc.reason)

    first_wait = next_wait_seconds(
        PollObservation(
            phase="submitted", polls_in_phase=0, seconds_in_phase=0.0, size_bytes=info.size
        ),
        rng=rng,
    )
    state: WorkflowInput = {
        "document": document.to_state(),  # type: ignore[typeddict-item]
        "schema": {"key": schema_key, "version_id": schema_version},
        "upload_threshold": upload_threshold,
        "datalab": {
            "request_id": submission.request_id,
            "check_url": submission.check_url,
            "submissions": 1,
        },
        "submitted_at": iso_utc(now()),
        "first_wait_seconds": first_wait,
    }
    if hook is not None and _registered(hook, submission.request_id, document.document_id):
        state["webhook_wait_seconds"] = webhook_timeout_seconds(
            info.size, seconds_to_deadline=settings.processing_deadline_seconds
        )
        state["scores_first_wait_seconds"] = scores_first_wait_seconds(rng=rng)
    started = workflows.start(document.document_id, state)
    return SubmitOutcome(document.document_id, "started" if started else "duplicate")
