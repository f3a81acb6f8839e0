"""The review queue's consumer: one document open at a time, deleted only once decided.

- Long polling: ``receive_message(WaitTimeSeconds=…, MaxNumberOfMessages=1)``; one message at a
  time, so documents nobody is looking at stay available to other reviewers.
- While a document is open a heartbeat thread keeps extending its visibility timeout
  (``change_message_visibility``), so it is not handed to a second reviewer mid-review.
- The decision is stored on the record first (``ResultsTable.record_review``, conditional on the
  review's revision: a first decision only while there is none, an amendment only over the
  revision the reviewer saw); only then is the message deleted. If storing fails the message
  stays and comes back after its visibility timeout. A second, different decision is never
  written over the first: it is a conflict, which the reviewer may record as an amendment
  (``review.history`` keeps who, when and what changed).
- The queue is at-least-once: a message for a document that already has a decision is
  acknowledged (deleted) without showing it to anyone, and without a second decision.
- An audit sample (``audit: true`` in the message, or the record's ``audit_sample``) opens as
  one: every field is to be decided.
- Messages we cannot act on (unknown ``schema_version``, no record in the table, not JSON) are
  left alone: they come back after the visibility timeout and end in the review DLQ after the
  queue's maxReceiveCount.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from doctriage_core.domain.documents import doc_type_from_key, schema_key_for
from doctriage_core.domain.records import restore_cells
from doctriage_core.domain.schemas import load_schema
from doctriage_core.errors import DoctriageError
from doctriage_local import reprocess as reprocessing
from doctriage_local.review.decision import is_audit, revision_of, same_decision, with_history

log = logging.getLogger("doctriage.review")

SCHEMA_VERSIONS = frozenset({"1"})
MAX_WAIT_SECONDS = 20  # SQS's longest long poll
MAX_VISIBILITY_SECONDS = 12 * 60 * 60  # SQS's limit, counted from the receive
SKIP_SECONDS = 120  # how long a skipped document stays hidden (from everyone: SQS has no per-
# consumer visibility), so that it does not come straight back to the reviewer who skipped it


class VisibilityHeartbeat:
    """Extends a received message's visibility timeout every ``interval`` seconds until stopped."""

    def __init__(
        self, sqs: Any, queue_url: str, receipt_handle: str, *, timeout: int, interval: float
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._receipt_handle = receipt_handle
        self._timeout = timeout
        self._interval = interval
        self._stop = threading.Event()
        self._started = time.monotonic()
        self.beats = 0
        self.error: str | None = None  # set when an extension failed (the lease may be lost)
        self._thread = threading.Thread(target=self._run, name="review-heartbeat", daemon=True)

    def start(self) -> VisibilityHeartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            held = time.monotonic() - self._started
            # SQS refuses to extend past 12 h from the receive; ask for what is left.
            timeout = int(min(self._timeout, MAX_VISIBILITY_SECONDS - held - self._interval))
            if timeout <= 0:
                self.error = "held for SQS's 12-hour maximum: the message is visible again"
                return
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self._queue_url,
                    ReceiptHandle=self._receipt_handle,
                    VisibilityTimeout=timeout,
                )
                self.beats += 1
            except (ClientError, BotoCoreError) as exc:
                if self._stop.is_set():
                    return
                self.error = str(exc)
                log.warning("could not extend the review message's visibility: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)


@dataclass
class OpenDocument:
    """A document a reviewer has open: its record, and the message that brought it."""

    document_id: str
    record: dict[str, Any]
    message_id: str
    receipt_handle: str
    receive_count: int
    heartbeat: VisibilityHeartbeat
    audit: bool = False  # an audit sample: every field to decide
    opened_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Stored:
    """What became of a decision: ``stored`` (a first decision), ``amended``, ``identical``
    (the stored review decides the same: acknowledged) or ``conflict`` (a different decision
    is stored; nothing was overwritten). ``review``: the review on the record now."""

    kind: Literal["stored", "amended", "identical", "conflict"]
    review: dict[str, Any]


@dataclass
class ConsumerStats:
    opened: int = 0
    decided: int = 0  # decisions this consumer stored
    already_decided: int = 0  # decisions refused: a different one was stored first (conflicts)
    identical_acknowledged: int = 0  # decisions the same as the one already stored
    amended: int = 0  # amendments stored over an earlier decision
    duplicates_acknowledged: int = 0  # messages deleted because the document had a decision
    released: int = 0
    skipped: int = 0
    kept_from_skipper: int = 0  # a skipped document received again early: hidden again
    left_alone: int = 0  # messages we could not act on (left for redelivery and the DLQ)


class ReviewConsumer:
    """Takes documents from the review queue and stores decisions on the results table."""

    def __init__(
        self,
        *,
        sqs: Any,
        queue_url: str,
        table: Any,  # doctriage_core.adapters.aws.ResultsTable
        s3: Any,
        dynamodb: Any = None,  # a low-level DynamoDB client: reprocessing writes with one
        bucket: str | None = None,  # read documents from here instead of record.source.bucket
        visibility_timeout: int = 300,
        heartbeat_interval: float | None = None,
        skip_seconds: int = SKIP_SECONDS,
    ) -> None:
        if not 1 <= visibility_timeout <= MAX_VISIBILITY_SECONDS:
            raise ValueError("visibility_timeout must be between 1 s and 12 h")
        if not 1 <= skip_seconds <= MAX_VISIBILITY_SECONDS:
            raise ValueError("skip_seconds must be between 1 s and 12 h")
        self.sqs = sqs
        self.queue_url = queue_url
        self.table = table
        self.s3 = s3
        self.dynamodb = dynamodb
        self.bucket = bucket
        self.visibility_timeout = visibility_timeout
        # Extend well before the timeout runs out: a beat may be late on a busy machine.
        self.heartbeat_interval = heartbeat_interval or max(0.2, visibility_timeout / 3)
        self.skip_seconds = skip_seconds
        self.stats = ConsumerStats()
        # Documents this reviewer skipped -> until when (monotonic) they are kept from them.
        self._skipped: dict[str, float] = {}
        self._redrive: tuple[int | None] | None = None  # (maxReceiveCount,) once read
        self._lock = threading.Lock()
        self._table_lock = threading.Lock()  # boto3 resources are not thread-safe

    # ------------------------------------------------------------------ receiving

    def open_next(self, wait_seconds: float = MAX_WAIT_SECONDS) -> OpenDocument | None:
        """The next document to review (its visibility extended until decided or released).

        Long-polls for up to ``wait_seconds``; acknowledges duplicates on the way.
        """
        deadline = time.monotonic() + max(0.0, wait_seconds)
        while True:
            remaining = deadline - time.monotonic()
            wait = max(0, min(MAX_WAIT_SECONDS, math.ceil(remaining)))
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=1,
                WaitTimeSeconds=wait,
                VisibilityTimeout=self.visibility_timeout,
                AttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            for message in messages:
                opened = self._open(message)
                if opened is not None:
                    return opened
            if time.monotonic() >= deadline:
                return None

    def _open(self, message: dict[str, Any]) -> OpenDocument | None:
        try:
            body = json.loads(message["Body"])
            document_id = body["document_id"]
            version = body.get("schema_version")
        except (ValueError, KeyError, TypeError):
            log.warning(
                "review message %s is not a review message: left alone", message.get("MessageId")
            )
            self.stats.left_alone += 1
            return None
        if version not in SCHEMA_VERSIONS:
            log.warning(
                "review message for %s has schema_version %r (this consumer reads %s): left alone",
                document_id,
                version,
                ", ".join(sorted(SCHEMA_VERSIONS)),
            )
            self.stats.left_alone += 1
            return None
        hidden_for = self._skipped_for(document_id)
        if hidden_for > 0:
            # Skipped here, and back early (released elsewhere): keep it from this reviewer.
            self._change_visibility(message["ReceiptHandle"], hidden_for, document_id)
            self.stats.kept_from_skipper += 1
            return None
        record = self.get_record(document_id)
        if record is None:
            log.warning("no record for %s in the results table: message left alone", document_id)
            self.stats.left_alone += 1
            return None
        if record.get("review"):
            self._delete(message["ReceiptHandle"])
            self.stats.duplicates_acknowledged += 1
            log.info("%s already has a decision: duplicate message acknowledged", document_id)
            return None
        heartbeat = VisibilityHeartbeat(
            self.sqs,
            self.queue_url,
            message["ReceiptHandle"],
            timeout=self.visibility_timeout,
            interval=self.heartbeat_interval,
        ).start()
        self.stats.opened += 1
        return OpenDocument(
            document_id=document_id,
            record=record,
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
            heartbeat=heartbeat,
            audit=is_audit(record, body),
        )

    # ------------------------------------------------------------------ deciding

    def decide(self, document: OpenDocument, review: dict[str, Any]) -> Stored:
        """Store the first decision on an open document, then delete its message.

        Stored only while no review is on the record (the condition on its revision); when one
        is, nothing is overwritten: the answer says whether it decides the same (the second is
        simply acknowledged) or differently (a conflict, with the stored review). The message is
        deleted either way: the document has a decision. When storing fails the exception
        propagates and the document stays open (and its message on the queue).
        """
        first = with_history(review, None)
        with self._table_lock:
            written = self.table.record_review(document.document_id, first, revision=0)
        document.heartbeat.stop()
        self._delete(document.receipt_handle)
        if written:
            with self._lock:
                self.stats.decided += 1
            return Stored("stored", first)
        return self.against_stored(document.document_id, review)

    def amend(self, document_id: str, review: dict[str, Any], *, revision: int) -> Stored:
        """Store ``review`` over the decided record's review if it is still at ``revision``
        (what the reviewer saw): its history keeps every earlier decision and what changed."""
        with self._table_lock:
            record = self.table.get(document_id)
        current = (record or {}).get("review")
        if current is None:
            raise LookupError(f"{document_id} has no decision to amend")
        if revision_of(current) != revision or same_decision(current, review):
            return self.against_stored(document_id, review, current)
        amended = with_history(review, current)
        with self._table_lock:
            written = self.table.record_review(document_id, amended, revision=revision)
        if not written:
            return self.against_stored(document_id, review)
        with self._lock:
            self.stats.amended += 1
        return Stored("amended", amended)

    def against_stored(
        self, document_id: str, review: dict[str, Any], current: dict[str, Any] | None = None
    ) -> Stored:
        """A decision that was not written, told against the review stored (read unless given)."""
        if current is None:
            with self._table_lock:
                current = (self.table.get(document_id) or {}).get("review") or {}
        identical = same_decision(current, review)
        with self._lock:
            if identical:
                self.stats.identical_acknowledged += 1
            else:
                self.stats.already_decided += 1
        return Stored("identical" if identical else "conflict", current)

    def reprocess(self, record: dict[str, Any]) -> str:
        """Send a failed document through the pipeline again, as ``doctriage reprocess`` does;
        the new document's id. RuntimeError when the upload cannot be copied."""
        if self.dynamodb is None:
            raise RuntimeError("this review consumer has no DynamoDB client to reprocess with")
        with self._table_lock:
            done = reprocessing.reprocess(
                record, s3=self.s3, dynamodb=self.dynamodb, table=self.table.name
            )
            if done.new_document_id is None and done.note == "already reprocessed":
                again = (self.table.get(record["document_id"]) or {}).get("reprocessed_as")
                if not again or again == "pending":  # another reprocess is copying it now
                    raise RuntimeError("being reprocessed elsewhere right now: try again")
                return str(again)
        if done.new_document_id is None:
            raise RuntimeError(f"not reprocessed: {done.note}")
        return done.new_document_id

    def release(self, document: OpenDocument) -> None:
        """Put an open document back on the queue for anyone (visible again now)."""
        document.heartbeat.stop()
        self._change_visibility(document.receipt_handle, 0, document.document_id)
        self.stats.released += 1

    def skip(self, document: OpenDocument) -> None:
        """Give an open document up: hidden for ``skip_seconds`` (so this reviewer's next one is
        another), then visible to every reviewer; this consumer keeps it from this reviewer
        until then even if someone else puts it back sooner."""
        document.heartbeat.stop()
        with self._lock:
            now = time.monotonic()
            self._skipped = {d: t for d, t in self._skipped.items() if t > now}
            self._skipped[document.document_id] = now + self.skip_seconds
        self._change_visibility(document.receipt_handle, self.skip_seconds, document.document_id)
        self.stats.skipped += 1

    def _skipped_for(self, document_id: str) -> int:
        """Seconds this reviewer is still to be spared ``document_id`` (0: not skipped)."""
        with self._lock:
            until = self._skipped.get(document_id, 0.0)
        return max(0, math.ceil(until - time.monotonic()))

    def _change_visibility(self, receipt_handle: str, seconds: int, document_id: str) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except (ClientError, BotoCoreError) as exc:
            log.warning(
                "could not change %s's visibility to %d s (it returns after its visibility "
                "timeout): %s",
                document_id,
                seconds,
                exc,
            )

    # ------------------------------------------------------------------ the queue

    def queue_depth(self) -> tuple[int, int] | None:
        """(waiting, with a reviewer) from SQS's approximate counts; None when unreadable."""
        try:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            return (
                int(attributes["ApproximateNumberOfMessages"]),
                int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            )
        except (ClientError, BotoCoreError, KeyError, ValueError) as exc:
            log.warning("cannot read the review queue's depth: %s", exc)
            return None

    @property
    def max_receive_count(self) -> int | None:
        """The queue's RedrivePolicy maxReceiveCount: past it, SQS moves a message to the DLQ."""
        if self._redrive is None:
            try:
                policy = self.sqs.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=["RedrivePolicy"]
                )["Attributes"].get("RedrivePolicy")
                self._redrive = (int(json.loads(policy)["maxReceiveCount"]) if policy else None,)
            except (ClientError, BotoCoreError, KeyError, ValueError, TypeError) as exc:
                log.warning("cannot read the review queue's redrive policy: %s", exc)
                return None  # asked again next time
        return self._redrive[0]

    def _delete(self, receipt_handle: str) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt_handle)
        except (ClientError, BotoCoreError) as exc:
            # The decision is stored: a redelivered copy is acknowledged as a duplicate.
            log.warning("could not delete a decided review message: %s", exc)

    # ------------------------------------------------------------------ documents

    def get_record(self, document_id: str) -> dict[str, Any] | None:
        """The record as evaluated: cells kept in S3 (a record too large for DynamoDB) put back."""
        with self._table_lock:
            record: dict[str, Any] | None = self.table.get(document_id)
        if record is None or "cells" not in record:
            return record
        source = record.get("source") or {}
        response = self.s3.get_object(
            Bucket=self.bucket or source["bucket"], Key=record["cells"]["key"]
        )
        return restore_cells(record, json.loads(response["Body"].read()))

    def schema_for(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The extraction schema of the record's upload type, None when it cannot be read.

        The page needs it for what the record does not say: column types (a number column takes
        numbers), minItems, the paths an x-check names. It is the schema in the bucket now,
        which is the one the document was evaluated with unless it has changed since.
        """
        source = record.get("source") or {}
        try:
            key = schema_key_for(doc_type_from_key(str(source.get("key"))))
            response = self.s3.get_object(Bucket=self.bucket or source["bucket"], Key=key)
            return load_schema(response["Body"].read())
        except (KeyError, DoctriageError, ClientError, BotoCoreError) as exc:
            log.warning("no schema for %s (%s): values read as JSON", record["document_id"], exc)
            return None

    def document_bytes(self, record: dict[str, Any]) -> tuple[bytes, str]:
        """The uploaded object (exactly the version that was evaluated) and its content type."""
        source = record["source"]
        extra = {"VersionId": source["version_id"]} if source.get("version_id") else {}
        response = self.s3.get_object(
            Bucket=self.bucket or source["bucket"], Key=source["key"], **extra
        )
        body: bytes = response["Body"].read()
        return body, str(response.get("ContentType") or "")
