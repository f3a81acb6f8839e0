"""Webhook: Datalab's POST when processing completes, behind a Lambda Function URL.

The URL has no AWS auth (Datalab cannot sign): the secret in the body is the auth, checked in
constant time in workflow/webhook.py. The body and the secret are never logged.
"""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from doctriage_core import runtime
from doctriage_core.workflow.webhook import receive_webhook

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = runtime.webhook_settings()
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", errors="replace")
    answer = receive_webhook(
        body,
        secret=runtime.webhook_secret(settings.secret_arn),
        arrivals=runtime.webhook_table(settings.table),
        tasks=runtime.task_tokens("stepfunctions"),
    )
    metrics.add_metric(name=f"Webhooks{answer.status}", unit=MetricUnit.Count, value=1)
    logger.info("webhook answered", status=answer.status, outcome=answer.message)
    return {
        "statusCode": answer.status,
        "headers": {"Content-Type": "text/plain"},
        "body": answer.message,
    }
