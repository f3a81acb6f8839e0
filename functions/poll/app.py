"""Poll: one check of a Datalab request; returns a small status with the next wait.

Transient Datalab errors propagate by class name for the state machine to retry.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

# Imported at init, not on the first call: runtime loads the Datalab client (httpx) lazily
# so that evaluate, which never calls Datalab, does without it.
import doctriage_core.adapters.datalab  # noqa: F401
from doctriage_core import runtime
from doctriage_core.workflow.poll import check_extraction
from doctriage_core.workflow.state import PollStatus, WorkflowState

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(correlation_id_path="document.document_id")
@metrics.log_metrics
def lambda_handler(event: WorkflowState, context: LambdaContext) -> PollStatus:
    settings = runtime.poll_settings()
    status = check_extraction(
        event,
        datalab=runtime.datalab_client(settings.datalab),
        store=runtime.document_store(settings.documents_bucket),
        settings=settings,
        requests=runtime.request_budget(settings.usage_table),
    )
    queued = "queued" in status  # nothing asked: the team's request budget had none to spare
    metrics.add_metric(
        name="PollsQueuedForRequests" if queued else "DatalabPolls", unit=MetricUnit.Count, value=1
    )
    logger.info(
        "queued for the request budget" if queued else "checked extraction",
        phase=status["phase"],
        ready=status["ready"],
        next_wait_seconds=status["next_wait_seconds"],
        polls=status["polls"],
    )
    return status
