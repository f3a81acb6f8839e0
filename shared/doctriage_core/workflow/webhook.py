"""Webhook-assisted waiting: Datalab's webhook ends the workflow's wait for processing.

Two steps meet on one item per Datalab request (ports.WebhookArrivals), in either order:
``await_webhook`` (the state machine's ``.waitForTaskToken`` task) stores the task token;
``receive_webhook`` (the webhook function behind its URL) checks the secret, marks the request
complete once, and sends the token when someone waits. When the webhook came first, the waiting
step raises WebhookArrivedFirst and the state machine goes on at once. A webhook that never
comes is the task's timeout: the state machine falls back to the poll loop.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from doctriage_core import errors
from doctriage_core.domain.timeline import iso_utc
from doctriage_core.ports import TaskTokens, WebhookArrivals

# What the webhook secret holds until an operator puts Datalab's there: webhooks off.
UNSET_SECRET = "unset"  # noqa: S105 (a placeholder, not a secret)
# Datalab's body is three short strings; anything much larger is not read.
MAX_BODY_CHARS = 4096
# Submit registers a request id once Datalab has answered the submit; a webhook for a document
# Datalab processed at once may come first. With the right secret it is Datalab's, so an unknown
# id is looked up again for this long before the 403 (which Datalab does not retry).
REGISTRATION_GRACE_SECONDS = 2.0
REGISTRATION_RETRY_SECONDS = 0.25


def webhook_secret_set(secret: str | None) -> bool:
    return bool(secret and secret.strip() and secret.strip() != UNSET_SECRET)


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    message: str


def receive_webhook(
    body: str,
    *,
    secret: str,
    arrivals: WebhookArrivals,
    tasks: TaskTokens,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookAnswer:
    """Datalab's POST ``{request_id, request_check_url, webhook_secret}``.

    401 for a wrong or missing secret, 403 for a request this stack did not send (after
    REGISTRATION_GRACE_SECONDS: submit may not have registered it yet), 400 for a body
    that is not that JSON object (Datalab retries none of these); 200 for the first arrival and
    for a duplicate alike, the duplicate changing nothing. AWS failures propagate (5xx: Datalab
    retries). 413 for a body over MAX_BODY_CHARS, unparsed.
    """
    if len(body) > MAX_BODY_CHARS:
        return WebhookAnswer(413, "the body is too large")
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return WebhookAnswer(400, "the body is not JSON")
    if not isinstance(payload, dict):
        return WebhookAnswer(400, "the body is not a JSON object")
    given = payload.get("webhook_secret")
    if not webhook_secret_set(secret) or not isinstance(given, str):
        return WebhookAnswer(401, "no webhook secret")
    if not hmac.compare_digest(given.encode(), secret.strip().encode()):
        return WebhookAnswer(401, "wrong webhook secret")
    request_id = payload.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        return WebhookAnswer(400, "no request_id")
    arrival = arrivals.arrive(request_id, iso_utc(now()))
    for _ in range(int(REGISTRATION_GRACE_SECONDS / REGISTRATION_RETRY_SECONDS)):
        if arrival.kind != "unknown":
            break
        sleep(REGISTRATION_RETRY_SECONDS)
        arrival = arrivals.arrive(request_id, iso_utc(now()))
    if arrival.kind == "unknown":
        return WebhookAnswer(403, "unknown request")
    if arrival.task_token:
        # A workflow waits: end its wait (gone: it timed out into polling, or ended already).
        # A duplicate sends it again: Datalab retries after a 5xx, which may have come between
        # marking the arrival and sending the token; a token sent before changes nothing.
        tasks.succeed(arrival.task_token, {"webhook": "complete"})
    return WebhookAnswer(200, "duplicate" if arrival.kind == "duplicate" else "accepted")


def await_webhook(request_id: str, task_token: str, *, arrivals: WebhookArrivals) -> None:
    """Store the waiting task's token; WebhookArrivedFirst if the webhook came already."""
    if not arrivals.expect(request_id, task_token):
        raise errors.WebhookArrivedFirst(f"the webhook for {request_id} came before the wait")
