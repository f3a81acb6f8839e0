"""Submit: one SQS message per S3 upload -> validated, sent to Datalab, workflow started.

Bad input is recorded as a failed document here; transient Datalab errors are reported as batch
item failures so SQS redelivers just those messages.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from doctriage_core import runtime
from doctriage_core.pipeline import Upload, submit_upload

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


class MalformedMessage(ValueError):
    """The intake message is not an S3 event notification."""


def _uploads(body: str) -> list[Upload]:
    try:
        event = json.loads(body)
        if event.get("Event") == "s3:TestEvent":
            return []
        return [Upload.from_s3_record(record) for record in event["Records"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MalformedMessage(f"not an S3 event notification: {body[:200]!r}") from exc


def record_handler(record: SQSRecord) -> None:
    uploads = _uploads(record.body)
    if not uploads:
        logger.info("skipping S3 test event")
        metrics.add_metric(name="TestEventsSkipped", unit=MetricUnit.Count, value=1)
        return
    receive_count = int(record.attributes.approximate_receive_count or 1)
    for upload in uploads:
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
        logger.set_correlation_id(outcome.document_id)
        logger.info("upload handled", outcome=outcome.outcome, reason=outcome.reason,
                    key=upload.raw_key)
        metric = {"started": "DocumentsSubmitted", "duplicate": "DuplicateUploads",
                  "failed": "DocumentsRejected"}[outcome.outcome]
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
