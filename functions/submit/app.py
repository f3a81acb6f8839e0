"""Submit: one SQS message per S3 upload -> validated, sent to Datalab, workflow started.

Bad input is recorded as a failed document here; transient Datalab errors are reported as batch
item failures so SQS redelivers just those messages. Each document is submitted at most once:
powertools Idempotency (DynamoDB, keyed by document_id) covers duplicate S3 events and SQS
redeliveries, including two deliveries in flight at the same time.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

# Imported at init, not on the first call: runtime loads the Datalab client (httpx) lazily
# so that evaluate, which never calls Datalab, does without it.
import doctriage_core.adapters.datalab  # noqa: F401
from doctriage_core import runtime
from doctriage_core.domain.poll_policy import redelivery_delay_seconds
from doctriage_core.errors import DatalabRateLimited, TransientError
from doctriage_core.pipeline import Upload, submit_upload

logger = Logger()
metrics = Metrics()
IDEMPOTENCY_HOURS = 24
_OUTCOME_METRICS = {
    "started": "DocumentsSubmitted",
    "duplicate": "DuplicateUploads",
    "failed": "DocumentsRejected",
}


class MalformedMessage(ValueError):
    """The intake message is not an S3 event notification."""


_LOGGED_BODY_CHARS = 200
_UPLOAD_EVENT = "ObjectCreated:"


def _is_upload(record: dict[str, Any]) -> bool:
    """An ``ObjectCreated:*`` record (S3 writes it without ``s3:`` inside records).

    A record without ``eventName`` counts as an upload: S3 always names the event, so only a
    hand-made replay of an upload lacks it.
    """
    name = record.get("eventName")
    return name is None or str(name).removeprefix("s3:").startswith(_UPLOAD_EVENT)


def _uploads(body: str) -> tuple[list[Upload], list[tuple[str, str | None]]]:
    """The uploads an intake message names, and (event name, key) of its other records."""
    try:
        event = json.loads(body)
        if event.get("Event") == "s3:TestEvent":
            return [], []
        records = event["Records"]
        uploads = [Upload.from_s3_record(record) for record in records if _is_upload(record)]
        others = [
            (str(record["eventName"]), record.get("s3", {}).get("object", {}).get("key"))
            for record in records
            if not _is_upload(record)
        ]
        return uploads, others
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessage(f"not an S3 event notification: {body[:200]!r}") from exc


def _submit(upload: Upload, receive_count: int) -> dict[str, Any]:
    outcome = submit_upload(
        upload,
        receive_count=receive_count,
        store=runtime.document_store(),
        datalab=runtime.datalab_client,
        results=runtime.results_table(),
        review_queue=runtime.review_queue(),
        workflows=runtime.workflows(),
        settings=runtime.settings(),
    )
    return asdict(outcome)


@cache
def _idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="document_id", expires_after_seconds=IDEMPOTENCY_HOURS * 3600
    )


@cache
def _idempotent_submit() -> Any:
    """_submit, at most once per document_id (built on first use: the table comes from settings)."""
    table = runtime.settings().idempotency_table
    if not table:
        return lambda document, upload, receive_count: _submit(upload, receive_count)
    persistence = DynamoDBPersistenceLayer(table_name=table)
    config = _idempotency_config()

    @idempotent_function(
        data_keyword_argument="document", persistence_store=persistence, config=config
    )
    def submit_once(document: dict[str, str], upload: Upload, receive_count: int) -> dict[str, Any]:
        return _submit(upload, receive_count)

    return submit_once


class _Throttle:
    """Once Datalab says 429 in an invocation, the rest of the batch waits without asking.

    One per invocation (as the batch processor is): nothing about a batch outlives it.
    """

    def __init__(self) -> None:
        self.retry_after: float | None = None
        self.active = False


def record_handler(record: SQSRecord, throttle: _Throttle) -> None:
    logger.set_correlation_id(None)  # not the previous record's document
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        uploads, others = _uploads(record.body)
    except MalformedMessage:
        if receive_count == 1:  # once, not once per delivery
            logger.error(
                "intake message is not an S3 event notification; it goes to the DLQ",
                message_id=record.message_id,
                body=record.body[:_LOGGED_BODY_CHARS],
                body_length=len(record.body),
            )
        # Retrying cannot fix it: let it use up its deliveries at once and land in the DLQ.
        _redeliver_after(record, 0)
        raise
    for event_name, key in others:
        # A bucket notification wider than s3:ObjectCreated:* must not turn into documents.
        logger.info("skipping S3 event that is not an upload", event_name=event_name, key=key)
        metrics.add_metric(name="NonUploadEventsSkipped", unit=MetricUnit.Count, value=1)
    if not uploads:
        if not others:
            logger.info("skipping S3 test event")
            metrics.add_metric(name="TestEventsSkipped", unit=MetricUnit.Count, value=1)
        return
    for upload in uploads:
        document_id = upload.document().document_id
        logger.set_correlation_id(document_id)
        try:
            if throttle.active and receive_count < runtime.settings().submit_max_receives:
                raise DatalabRateLimited(
                    "deferred: Datalab rate-limited this batch", retry_after=throttle.retry_after
                )
            outcome = _idempotent_submit()(
                document={"document_id": document_id}, upload=upload, receive_count=receive_count
            )
        except DatalabRateLimited as exc:
            throttle.active, throttle.retry_after = True, exc.retry_after
            _delay_redelivery(record, receive_count, exc.retry_after)
            raise
        except TransientError as exc:
            _delay_redelivery(record, receive_count, exc.retry_after)
            raise
        logger.info(
            "upload handled",
            outcome=outcome["outcome"],
            reason=outcome["reason"],
            key=upload.raw_key,
        )
        metrics.add_metric(
            name=_OUTCOME_METRICS[outcome["outcome"]], unit=MetricUnit.Count, value=1
        )


def _redeliver_after(record: SQSRecord, seconds: float) -> None:
    settings = runtime.settings()
    if settings.intake_queue_url:
        runtime.intake_queue().delay(record.receipt_handle, round(seconds * settings.time_scale))


def _delay_redelivery(record: SQSRecord, receive_count: int, retry_after: float | None) -> None:
    """Back off this one message instead of waiting out the queue's whole visibility timeout."""
    delay = redelivery_delay_seconds(receive_count, retry_after)
    _redeliver_after(record, delay)
    logger.warning(
        "Datalab or S3 unavailable; will retry",
        redelivery_in_seconds=delay,
        receive_count=receive_count,
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    _idempotency_config().register_lambda_context(context)
    throttle = _Throttle()
    return process_partial_response(
        event=event,
        record_handler=lambda record: record_handler(record, throttle),
        processor=BatchProcessor(event_type=EventType.SQS),
        context=context,
    )
