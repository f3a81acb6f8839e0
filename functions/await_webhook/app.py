"""Await webhook: the state machine's ``.waitForTaskToken`` task stores its token against the
Datalab request; the webhook function sends it when Datalab's webhook comes.

Raises WebhookArrivedFirst (caught by name in the ASL) when the webhook came before the wait.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from doctriage_core import runtime
from doctriage_core.workflow.webhook import await_webhook

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="document_id")
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.webhook_settings()
    await_webhook(
        event["request_id"], event["task_token"], arrivals=runtime.webhook_table(settings.table)
    )
    return {"waiting": True}
