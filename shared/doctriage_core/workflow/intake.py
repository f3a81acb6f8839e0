"""Intake: one SQS message naming S3 uploads -> each upload submitted once, or backed off.

The intake policy lives here, and only here:

- what a message is: an S3 event notification; ``ObjectCreated:*`` records are uploads, other
  event names are skipped, ``s3:TestEvent`` is skipped, anything else is MalformedMessage (no
  retry can fix it: it goes to the DLQ at once);
- a "folder" marker (the S3 console's "Create folder": a 0-byte object whose key ends with
  ``/``) is no document: skipped with one log line and a metric, never recorded;
- the per-invocation throttle: once Datalab says 429, the rest of the batch waits without asking;
- redelivery back-off (domain/poll_policy.redelivery_delay_seconds), in pipeline time;
- the retry window: transient failures (429s, outages) delay a document, they do not fail it.
  When a message's deliveries run out within ``retry_window_seconds`` of its first copy, it is
  sent again as a new message (counted afresh, with back-off); past the window, the delivery the
  queue allows last records the document as failed instead of losing it to the DLQ
  (:func:`is_last_delivery`).

Build one :class:`Intake` per invocation (as the batch processor is): nothing about a batch
outlives it, and concurrent invocations in one process share nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from doctriage_core import errors
from doctriage_core.config import SubmitSettings
from doctriage_core.domain.documents import (
    FIRST_SENT_ATTRIBUTE,
    DocumentRef,
    decode_event_key,
    document_id_for,
)
from doctriage_core.domain.poll_policy import redelivery_delay_seconds
from doctriage_core.domain.timeline import Timeline, iso_utc
from doctriage_core.ports import Redeliveries

_UPLOAD_EVENT = "ObjectCreated:"
_LOGGED_BODY_CHARS = 200


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

    def is_folder_marker(self) -> bool:
        """The S3 console's "Create folder" object: a key ending with ``/``, no bytes."""
        return decode_event_key(self.raw_key).endswith("/") and not self.size

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


@dataclass(frozen=True)
class IntakeMessage:
    uploads: list[Upload] = field(default_factory=list)
    # (event name, key) of records that are not uploads: skipped, never documents.
    others: list[tuple[str, str | None]] = field(default_factory=list)


def is_upload(record: dict[str, Any]) -> bool:
    """An ``ObjectCreated:*`` record (S3 writes it without ``s3:`` inside records).

    A record without ``eventName`` counts as an upload: S3 always names the event, so only a
    hand-made replay of an upload lacks it.
    """
    name = record.get("eventName")
    return name is None or str(name).removeprefix("s3:").startswith(_UPLOAD_EVENT)


def parse_message(body: str) -> IntakeMessage:
    """The uploads an intake message names, and its other records; MalformedMessage if none."""
    try:
        event = json.loads(body)
        if event.get("Event") == "s3:TestEvent":
            return IntakeMessage()
        records = event["Records"]
        return IntakeMessage(
            uploads=[Upload.from_s3_record(r) for r in records if is_upload(r)],
            others=[
                (str(r["eventName"]), r.get("s3", {}).get("object", {}).get("key"))
                for r in records
                if not is_upload(r)
            ],
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise errors.MalformedMessage(f"not an S3 event notification: {body[:200]!r}") from exc


def _first_sent(record: SQSMessage) -> str | None:
    """When the first copy of this message was sent: carried by a re-sent one, else its own
    SentTimestamp (Lambda always sends both keys; a hand-made event may lack them)."""
    try:
        carried = (record.message_attributes or {}).get(FIRST_SENT_ATTRIBUTE) or {}
        if carried.get("stringValue"):
            return str(carried["stringValue"])
        return iso_utc(int(record.attributes.sent_timestamp) / 1000)
    except (KeyError, TypeError, ValueError):
        return None


def is_last_delivery(receive_count: int, max_receives: int) -> bool:
    """The queue's maxReceiveCount-th delivery (or later): the last chance to record it."""
    return receive_count >= max_receives


class Log(Protocol):
    def info(self, msg: str, **fields: Any) -> Any: ...
    def warning(self, msg: str, **fields: Any) -> Any: ...
    def error(self, msg: str, **fields: Any) -> Any: ...
    def set_correlation_id(self, value: str | None) -> Any: ...


class _Attributes(Protocol):
    @property
    def approximate_receive_count(self) -> str | None: ...
    @property
    def sent_timestamp(self) -> str: ...


class SQSMessage(Protocol):
    """One SQS record as powertools' batch processor hands it over (SQSRecord)."""

    @property
    def body(self) -> str: ...
    @property
    def receipt_handle(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def attributes(self) -> _Attributes: ...
    @property
    def message_attributes(self) -> Mapping[str, Any]: ...


# submit(document, last_delivery) -> {"outcome": ..., "reason": ...} (workflow.submit's outcome).
Submit = Callable[[DocumentRef, bool], Mapping[str, Any]]
# What each outcome counts as (the handler's metrics).
METRICS = {
    "started": "DocumentsSubmitted",
    "duplicate": "DuplicateUploads",
    "failed": "DocumentsRejected",
    "non_upload": "NonUploadEventsSkipped",
    "test_event": "TestEventsSkipped",
    "folder_marker": "FolderMarkersSkipped",
    "sent_again": "UploadsSentAgain",
    "held_for_budget": "UploadsHeldForBudget",
    "waiting_for_requests": "UploadsWaitingForRequests",
}


class Intake:
    """The intake policy for one invocation's batch (build one per invocation)."""

    def __init__(
        self,
        *,
        submit: Submit,
        redeliveries: Redeliveries,
        settings: SubmitSettings,
        log: Log,
        count: Callable[[str], None],
    ) -> None:
        self._submit = submit
        self._redeliveries = redeliveries
        self._max_receives = settings.max_receives
        self._retry_window = settings.retry_window_seconds
        self._timeline = Timeline(settings.time_scale)
        self._log = log
        self._count = lambda outcome: count(METRICS[outcome])  # count(metric name)
        self._throttled = False
        self._retry_after: float | None = None

    def handle_record(self, record: SQSMessage) -> None:
        """:meth:`handle` for a record of powertools' batch processor."""
        self.handle(
            record.body,
            receive_count=int(record.attributes.approximate_receive_count or 1),
            receipt_handle=record.receipt_handle,
            message_id=record.message_id,
            first_sent=_first_sent(record),
        )

    def handle(
        self,
        body: str,
        *,
        receive_count: int,
        receipt_handle: str,
        message_id: str = "",
        first_sent: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        """Submit every upload the message names; raise (for redelivery) what must be retried."""
        self._log.set_correlation_id(None)  # not the previous record's document
        try:
            message = parse_message(body)
        except errors.MalformedMessage:
            if receive_count == 1:  # once, not once per delivery
                self._log.error(
                    "intake message is not an S3 event notification; it goes to the DLQ",
                    message_id=message_id,
                    body=body[:_LOGGED_BODY_CHARS],
                    body_length=len(body),
                )
            # Retrying cannot fix it: let it use up its deliveries at once and land in the DLQ.
            self._redeliver(receipt_handle, 0)
            raise
        for event_name, key in message.others:
            # A bucket notification wider than s3:ObjectCreated:* must not turn into documents.
            self._log.info(
                "skipping S3 event that is not an upload", event_name=event_name, key=key
            )
            self._count("non_upload")
        if not message.uploads and not message.others:
            self._log.info("skipping S3 test event")
            self._count("test_event")
        last = is_last_delivery(receive_count, self._max_receives)
        first_sent = first_sent or iso_utc(now())
        # Only past the retry window does the last delivery record a transient failure.
        give_up = last and self._timeline.seconds_since(first_sent, now()) >= self._retry_window
        held, send_again = self._submit_all(
            message.uploads, receive_count, last, give_up, receipt_handle
        )
        if held is not None:
            # A fresh first_sent: waiting for the budget does not use up the retry window.
            delay = self._timeline.wall_seconds(held.retry_after)
            self._redeliveries.send_again(body, delay_seconds=delay, first_sent=iso_utc(now()))
        elif send_again is not None:
            self._send_again(body, first_sent, receive_count, send_again)

    def _submit_all(
        self,
        uploads: list[Upload],
        receive_count: int,
        last: bool,
        give_up: bool,
        receipt_handle: str,
    ) -> tuple[errors.HeldForBudget | None, errors.TransientError | None]:
        """Submit each upload; on the last delivery, what held or failed them (to send again)."""
        held: errors.HeldForBudget | None = None
        send_again: errors.TransientError | None = None
        for upload in uploads:
            if upload.is_folder_marker():
                self._log.info("skipping folder marker (not a document)", key=upload.raw_key)
                self._count("folder_marker")
                continue
            try:
                self._submit_one(upload, receive_count, last, give_up, receipt_handle)
            except errors.HeldForBudget as exc:
                if not last:
                    raise
                held = exc  # never given up on: held, not failing
            except errors.TransientError as exc:
                if not last or give_up:
                    raise
                send_again = exc  # the others of this message still get their turn
        return held, send_again

    def _send_again(
        self, body: str, first_sent: str, receive_count: int, exc: errors.TransientError
    ) -> None:
        """Out of deliveries within the retry window: the same message again, counted afresh."""
        delay = redelivery_delay_seconds(receive_count, exc.retry_after)
        self._redeliveries.send_again(
            body, delay_seconds=self._timeline.wall_seconds(delay), first_sent=first_sent
        )
        self._log.warning(
            "still unavailable after the queue's deliveries; sent the upload again",
            reason=exc.reason,
            first_sent=first_sent,
            redelivery_in_seconds=delay,
        )
        self._count("sent_again")

    def _submit_one(
        self, upload: Upload, receive_count: int, last: bool, give_up: bool, receipt_handle: str
    ) -> None:
        document = upload.document()
        self._log.set_correlation_id(document.document_id)
        try:
            if self._throttled and not last:
                raise errors.DatalabRateLimited(
                    "deferred: Datalab rate-limited this batch", retry_after=self._retry_after
                )
            outcome = self._submit(document, give_up)
        except errors.HeldForBudget as exc:
            waiting = isinstance(exc, errors.WaitingForRequests)
            log = self._log.info if waiting else self._log.warning
            log(
                "upload waits: nothing was sent",
                reason=str(exc),
                key=upload.raw_key,
                next_look_in_seconds=round(exc.retry_after, 1),
            )
            self._count("waiting_for_requests" if waiting else "held_for_budget")
            if not last:
                self._redeliver(receipt_handle, exc.retry_after)
            raise
        except errors.TransientError as exc:
            if isinstance(exc, errors.DatalabRateLimited):
                self._throttled, self._retry_after = True, exc.retry_after
            if not last:
                self._back_off(receipt_handle, receive_count, exc)
            raise
        # An operator must fix a configuration failure: say it at ERROR, not in passing.
        log = self._log.error if outcome["reason"] == "configuration" else self._log.info
        log(
            "upload handled",
            outcome=outcome["outcome"],
            reason=outcome["reason"],
            key=upload.raw_key,
        )
        self._count(outcome["outcome"])

    def _back_off(
        self, receipt_handle: str, receive_count: int, exc: errors.TransientError
    ) -> None:
        """Back off this one message instead of waiting out the queue's whole visibility timeout."""
        delay = redelivery_delay_seconds(receive_count, exc.retry_after)
        self._redeliver(receipt_handle, delay)
        self._log.warning(
            "Datalab or S3 unavailable; will retry",
            reason=exc.reason,
            error=str(exc),
            redelivery_in_seconds=delay,
            receive_count=receive_count,
        )

    def _redeliver(self, receipt_handle: str, seconds: float) -> None:
        self._redeliveries.delay(receipt_handle, self._timeline.wall_seconds(seconds))
