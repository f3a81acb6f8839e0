"""``doctriage review --peek``: what waits for review, read without receiving a message.

Receiving is what the review queue counts towards its ``maxReceiveCount`` (10): every
``ReceiveMessage`` does, ``VisibilityTimeout=0`` too, and after ten a message moves to the
review DLQ unreviewed. So the peek receives nothing. It reads:

- the queue's attributes (``GetQueueAttributes``): messages waiting, held by a reviewer (not
  visible), delayed, and the review DLQ's count;
- the records that wait for a decision, from the results table (``Scan``): every
  ``needs_review`` record without a ``review``. They are what the queue's messages stand for
  (evaluate queues exactly those), but not one to one: a message lost to the DLQ still leaves
  its record undecided, and a decided document's duplicate message may still be queued.

What no API shows without a receive is a message's own receive count or its body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr

from doctriage_core.adapters.aws import from_dynamodb

_COUNTS = {
    "waiting": "ApproximateNumberOfMessages",
    "with a reviewer": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


@dataclass(frozen=True)
class Undecided:
    document_id: str
    key: str
    status: str
    flags: list[str]
    completed_at: str


@dataclass(frozen=True)
class Peek:
    queue: dict[str, int]  # by the names in _COUNTS
    dead_letters: int | None  # None: the queue has no DLQ (or it cannot be read)
    undecided: list[Undecided]  # oldest first


def peek(sqs: Any, queue_url: str, table: Any) -> Peek:
    """``table``: the results table as a boto3 DynamoDB Table resource."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=[*_COUNTS.values(), "RedrivePolicy"]
    )["Attributes"]
    return Peek(
        queue={name: int(attributes.get(attribute, 0)) for name, attribute in _COUNTS.items()},
        dead_letters=_dead_letters(sqs, attributes.get("RedrivePolicy")),
        undecided=sorted(_undecided(table), key=lambda u: u.completed_at),
    )


def _dead_letters(sqs: Any, redrive_policy: str | None) -> int | None:
    if not redrive_policy:
        return None
    name = json.loads(redrive_policy)["deadLetterTargetArn"].rsplit(":", 1)[-1]
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _undecided(table: Any) -> list[Undecided]:
    kwargs: dict[str, Any] = {
        "FilterExpression": Attr("review_status").eq("needs_review") & Attr("review").not_exists(),
        "ProjectionExpression": "document_id, #source, #status, flags, completed_at",
        "ExpressionAttributeNames": {"#source": "source", "#status": "status"},
    }
    found: list[Undecided] = []
    while True:
        page = table.scan(**kwargs)
        for item in page.get("Items", []):
            record = from_dynamodb(item)
            found.append(
                Undecided(
                    document_id=record["document_id"],
                    key=record.get("source", {}).get("key", "?"),
                    status=record.get("status", "?"),
                    flags=list(record.get("flags", [])),
                    completed_at=record.get("completed_at", ""),
                )
            )
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def render(result: Peek, queue_url: str, *, now: datetime | None = None) -> str:
    """The peek as the command prints it on stdout."""
    now = now or datetime.now(UTC)
    counts = ", ".join(f"{n} {name}" for name, n in result.queue.items())
    dlq = "no DLQ" if result.dead_letters is None else f"{result.dead_letters} in its DLQ"
    lines = [f"review queue {queue_url}: {counts}; {dlq}"]
    lines.append(
        f"{len(result.undecided)} record(s) wait for a decision "
        "(needs_review, no review yet), oldest first:"
    )
    if result.undecided:
        lines.append(f"  {'age':>7}  {'document_id':<44}  {'status':<8}  key  flags")
    for waiting in result.undecided:
        lines.append(
            f"  {_age(waiting.completed_at, now):>7}  {waiting.document_id:<44}  "
            f"{waiting.status:<8}  {waiting.key}  {', '.join(waiting.flags) or '-'}"
        )
    lines.append(
        "Nothing was received from the queue, so no receive count changed (a message's own "
        "receive count and body show only to a receive, which counts as one)."
    )
    return "\n".join(lines)


def _age(completed_at: str, now: datetime) -> str:
    try:
        then = datetime.fromisoformat(completed_at.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
