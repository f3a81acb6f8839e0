"""Evaluate: scores -> confidence and flags -> the record (written once) -> the review queue.

The state machine's failure path calls this too, with ``failure`` in the input.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from doctriage_core import runtime
from doctriage_core.workflow.finish import Summary, evaluate_document
from doctriage_core.workflow.state import WorkflowState

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="document.document_id")
@metrics.log_metrics
def lambda_handler(event: WorkflowState, context: LambdaContext) -> Summary:
    settings = runtime.evaluate_settings()
    summary = evaluate_document(
        event,
        store=runtime.document_store(settings.documents_bucket),
        results=runtime.results_table(settings.results_table),
        review_queue=runtime.review_queue(settings.review_queue_url),
        settings=settings,
        spending=runtime.usage_table(settings.usage_table),
    )
    name = (
        "DocumentsFailed"
        if summary["status"] == "failed"
        else (
            "DocumentsAutoApproved" if summary["review_status"] == "auto" else "DocumentsNeedReview"
        )
    )
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if summary["cost_cents"] is not None:
        metrics.add_metric(
            name="DatalabCostCents", unit=MetricUnit.Count, value=summary["cost_cents"]
        )
    logger.info("document recorded", **summary)
    return summary
