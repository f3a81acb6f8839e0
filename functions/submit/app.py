"""Submit: one SQS message per S3 upload -> validated, sent to Datalab, workflow started.

The intake policy (what a message is, throttle, back-off, last delivery) is workflow/intake.py;
here: batch processing, and idempotency (each document_id submitted at most once, in DynamoDB).
"""

from __future__ import annotations

from dataclasses import asdict
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.batch import process_partial_response as process
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
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
from doctriage_core.domain.documents import DocumentRef
from doctriage_core.workflow import intake

logger = Logger()
metrics = Metrics()
CONFIG = IdempotencyConfig(event_key_jmespath="document_id", expires_after_seconds=24 * 3600)


@cache
def _idempotent_submit(table: str) -> intake.Submit:
    """The submit step, at most once per document_id (the table is required: never off)."""
    persistence = DynamoDBPersistenceLayer(table_name=table)

    @idempotent_function(
        data_keyword_argument="document", persistence_store=persistence, config=CONFIG
    )
    def submit_once(document: dict[str, str], ref: DocumentRef, last: bool) -> dict[str, Any]:
        return asdict(runtime.submit_step(runtime.submit_settings())(ref, last))

    return lambda ref, last: submit_once(
        document={"document_id": ref.document_id}, ref=ref, last=last
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    CONFIG.register_lambda_context(context)
    s = runtime.submit_settings()
    batch = intake.Intake(  # one per invocation, as the batch processor: nothing outlives it
        submit=_idempotent_submit(s.idempotency_table),
        redeliveries=runtime.intake_queue(s.intake_queue_url),
        settings=s,
        log=logger,
        count=lambda name: metrics.add_metric(name=name, unit=MetricUnit.Count, value=1),
    )
    processor = BatchProcessor(event_type=EventType.SQS)
    return process(
        event=event, record_handler=batch.handle_record, processor=processor, context=context
    )
