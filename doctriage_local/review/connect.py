"""Which review queue and results table: a consumer for a local stack or a deployed one.

- ``consumer_for_stack``: a LocalStack running in this process (``doctriage review --demo``);
- ``connect``: a stack another process serves (``doctriage up``) or a deployed stack, found by
  its outputs or named queue and table. Raises ``Unreachable`` saying what to do instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from doctriage_core.adapters.aws import ResultsTable
from doctriage_local.review.consumer import ReviewConsumer
from doctriage_local.stack import PREFIX


class Unreachable(Exception):
    """No review queue to consume: the message says why and what to do instead."""


@dataclass(frozen=True)
class Where:
    """The stack to review: nothing set means the local stack `doctriage up` serves."""

    stack_name: str | None = None
    queue_url: str | None = None
    table: str | None = None
    bucket: str | None = None  # read documents from this bucket, not each record's source
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None

    @property
    def local(self) -> bool:
        return not (self.stack_name or self.queue_url or self.table)


@dataclass(frozen=True)
class Connection:
    consumer: ReviewConsumer
    queue_url: str
    table_name: str
    waiting: str  # SQS's ApproximateNumberOfMessages when connected
    results: Any  # the results table as a boto3 Table resource (reads beyond the consumer's)


def consumer_for_stack(stack: Any, **options: Any) -> ReviewConsumer:
    """A consumer of a LocalStack running in this process (or served by it)."""
    region, endpoint = stack.options.region, stack.endpoint_url
    table = ResultsTable(
        stack.physical["ResultsTable"],
        boto3.resource("dynamodb", region_name=region, endpoint_url=endpoint),
    )
    return ReviewConsumer(
        sqs=stack.client("sqs"),
        queue_url=stack.physical["ReviewQueue"],
        table=table,
        s3=stack.client("s3"),
        dynamodb=stack.client("dynamodb"),
        **options,
    )


def connect(
    where: Where, *, local_endpoint: str, local_region: str, visibility_timeout: int
) -> Connection:
    """A consumer of ``where``'s review queue; for the local stack, ``local_endpoint`` (unless
    ``where`` names an endpoint) with throwaway credentials unless a profile or keys are set."""
    endpoint = where.endpoint_url
    credentials: dict[str, Any] = {}
    if where.local:
        endpoint = endpoint or local_endpoint
        if not (where.profile or _environment_has_keys()):
            credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    session: Any = boto3.Session(  # Any: clients by name, which the stubs' overloads refuse
        profile_name=where.profile,
        region_name=where.region or (local_region if where.local else None),
        **credentials,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint)

    sqs = client("sqs")
    try:
        queue_url, table_name = _queue_and_table(where, sqs, client)
        waiting = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    except EndpointConnectionError as exc:
        if where.local:
            raise Unreachable(
                f"no local stack at {endpoint}. Start one in another terminal with "
                "`doctriage up` (then process documents), or run `doctriage review --demo` for "
                "a stack of its own with the samples processed; for a deployed stack pass "
                "--stack-name or --queue-url and --table."
            ) from exc
        raise Unreachable(str(exc)) from exc
    except (ClientError, BotoCoreError) as exc:
        raise Unreachable(f"cannot read the review queue: {exc}") from exc
    dynamodb = session.resource("dynamodb", endpoint_url=endpoint)
    table = ResultsTable(table_name, dynamodb)
    consumer = ReviewConsumer(
        sqs=sqs,
        queue_url=queue_url,
        table=table,
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        bucket=where.bucket,
        visibility_timeout=visibility_timeout,
    )
    return Connection(consumer, queue_url, table_name, str(waiting), dynamodb.Table(table_name))


def _environment_has_keys() -> bool:
    return bool(os.environ.get("AWS_ACCESS_KEY_ID"))


def _queue_and_table(where: Where, sqs: Any, client: Any) -> tuple[str, str]:
    queue_url, table_name = where.queue_url, where.table
    if where.stack_name:
        outputs = _stack_outputs(client("cloudformation"), where.stack_name)
        queue_url = queue_url or outputs.get("ReviewQueueUrl")
        table_name = table_name or outputs.get("ResultsTableName")
    if where.local:
        queue_url = sqs.get_queue_url(QueueName=f"{PREFIX}-ReviewQueue")["QueueUrl"]
        table_name = f"{PREFIX}-ResultsTable"
    if not queue_url or not table_name:
        raise Unreachable("pass both --queue-url and --table (or --stack-name)")
    return queue_url, table_name


def _stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
