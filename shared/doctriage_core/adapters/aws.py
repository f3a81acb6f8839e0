"""The only module that talks to AWS: S3, DynamoDB, SQS and Step Functions through boto3.

Each adapter is a small class over one resource; the pipeline receives them ready-made, so tests
and the local stack can point them at moto without patching anything.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO, cast

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from doctriage_core.domain.documents import FIRST_SENT_ATTRIBUTE as FIRST_SENT
from doctriage_core.errors import (
    AwsUnavailable,
    ConfigError,
    DoctriageError,
    InvalidDocument,
    S3AccessDenied,
    S3RequestFailed,
    S3Unavailable,
    SchemaNotFound,
)
from doctriage_core.ports import Arrival

# S3's error codes as it really sends them. HEAD has no body, so its code is the bare status
# ("404", "403") and botocore sets the message to the reason phrase ("Not Found", "Forbidden").
_MISSING_OBJECT = {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "InvalidArgument"}
# Without s3:ListBucket S3 answers 403 for a key that does not exist: missing or forbidden.
_ACCESS_DENIED = {"AccessDenied", "403", "Forbidden", "AllAccessDisabled"}
# Worth asking again later: throttling, S3's own failures, timeouts, and a skewed clock (botocore
# corrects the skew on its own retry; one that still surfaces is the host's, and may pass).
_S3_TRANSIENT = {
    "SlowDown",
    "503",
    "ServiceUnavailable",
    "InternalError",
    "500",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "OperationAborted",
    "Throttling",
    "ThrottlingException",
    "429",
}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _s3_error(
    exc: Exception, uri: str, *, missing: Callable[[str], DoctriageError] | None = None
) -> DoctriageError:
    """The typed error for an S3 failure on ``uri``: missing, denied, transient or permanent.

    ``missing`` builds the error for a key that does not exist (it differs per caller); without
    it a missing key is a permanent S3RequestFailed like any other.
    """
    if not isinstance(exc, ClientError):  # BotoCoreError: no answer, or a broken one
        return S3Unavailable(f"S3 connection failed for {uri} ({type(exc).__name__}: {exc})")
    code = _error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message") or "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    said = f"{code} {message}".strip() or f"HTTP {status}"
    if code in _MISSING_OBJECT and missing is not None:
        return missing(said)
    if code in _ACCESS_DENIED:
        return S3AccessDenied(
            f"S3 denied access to {uri} ({said}): the object may be missing (without "
            "s3:ListBucket S3 answers 403 for a missing key) or the role may lack "
            "s3:GetObject/s3:ListBucket"
        )
    if code in _S3_TRANSIENT or status >= 500 or status == 429:
        return S3Unavailable(f"S3 is unavailable for {uri} ({said})")
    return S3RequestFailed(f"S3 refused the request for {uri} ({said})")


# Throttling and the services' own failures, as DynamoDB, SQS and Step Functions name them.
_AWS_TRANSIENT = {
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "InternalError",
    "RequestThrottled",
}


# A role without the permission, as DynamoDB, SQS and Step Functions say it.
_AWS_ACCESS_DENIED = {"AccessDeniedException", "AccessDenied", "403"}


def _transient_aws_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Raise AwsUnavailable for what is worth asking again later, ConfigError for a role short
    of a permission (an operator must fix it: the document is recorded as failed with reason
    ``configuration``, not left to cycle into a DLQ); anything else as it came."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except ClientError as exc:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = _error_code(exc)
            if code in _AWS_TRANSIENT or status >= 500:
                raise AwsUnavailable(f"{type(self).__name__}.{method.__name__}: {exc}") from exc
            if code in _AWS_ACCESS_DENIED:
                raise ConfigError(
                    f"{type(self).__name__}.{method.__name__}: access denied ({code}): the "
                    f"function's role lacks the permission (template.yaml). {exc}"
                ) from exc
            raise
        except BotoCoreError as exc:
            raise AwsUnavailable(f"{type(self).__name__}.{method.__name__}: {exc}") from exc

    return call


class _S3Body:
    """An S3 object's body whose read errors (reset, timeout, short read) are typed errors."""

    def __init__(self, body: Any, uri: str) -> None:
        self._body = body
        self._uri = uri

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._body.read(None if size is None or size < 0 else size)
        except BotoCoreError as exc:
            raise _s3_error(exc, self._uri) from exc
        return data

    def close(self) -> None:
        self._body.close()


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str | None
    version_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class DocumentStore:
    """The documents bucket: uploads, schemas and raw Datalab results."""

    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._s3: Any = client or boto3.client("s3")

    def _version(self, version_id: str | None) -> dict[str, str]:
        return {"VersionId": version_id} if version_id else {}

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def head(self, key: str, version_id: str | None) -> ObjectInfo:
        uri = self._uri(key)
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(
                exc,
                uri,
                missing=lambda said: InvalidDocument(
                    f"{uri} no longer exists (deleted before it was submitted; S3: {said})",
                    reason="object_missing",
                ),
            ) from exc
        return ObjectInfo(
            size=int(head["ContentLength"]),
            etag=head.get("ETag"),
            version_id=head.get("VersionId"),
            metadata={k.lower(): v for k, v in head.get("Metadata", {}).items()},
        )

    def open(self, key: str, version_id: str | None) -> BinaryIO:
        uri = self._uri(key)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(
                exc,
                uri,
                missing=lambda said: InvalidDocument(
                    f"{uri} no longer exists (S3: {said})", reason="object_missing"
                ),
            ) from exc
        return cast(BinaryIO, _S3Body(response["Body"], uri))

    def read_schema(self, key: str, version_id: str | None = None) -> tuple[bytes, str | None]:
        """The schema's bytes and version id (so evaluate reads exactly what submit sent)."""
        uri = self._uri(key)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, **self._version(version_id))
            data: bytes = _S3Body(response["Body"], uri).read()
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(
                exc,
                uri,
                missing=lambda said: SchemaNotFound(
                    f"no extraction schema at {uri}: upload one to add this document type"
                ),
            ) from exc
        return data, response.get("VersionId")

    def read(self, key: str) -> bytes:
        uri = self._uri(key)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, uri) from exc
        return _S3Body(response["Body"], uri).read()

    def put_json(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
        except (ClientError, BotoCoreError) as exc:
            raise _s3_error(exc, self._uri(key)) from exc


def _to_dynamodb(record: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = json.loads(json.dumps(record), parse_float=Decimal)
    return converted


def from_dynamodb(value: Any) -> Any:
    """An item as DynamoDB returns it, with plain numbers again: the one reader of its Decimals."""
    if isinstance(value, Decimal):
        # 5 stays an int (scores); 5.0 and 0.75 come back as floats, as they were written.
        return int(value) if int(value.as_tuple().exponent) >= 0 else float(value)
    if isinstance(value, dict):
        return {k: from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamodb(v) for v in value]
    return value


class ResultsTable:
    """One item per document. A record is written once: review_status never changes afterwards."""

    def __init__(self, table_name: str, resource: Any = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)
        self.name = table_name

    @_transient_aws_errors
    def put_once(self, record: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Write the record unless one exists; return (written, the record now stored)."""
        try:
            self._table.put_item(
                Item=_to_dynamodb(record),
                ConditionExpression="attribute_not_exists(document_id)",
            )
            return True, record
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
        existing = self.get(record["document_id"])
        return False, existing if existing is not None else record

    @_transient_aws_errors
    def get(self, document_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"document_id": document_id}, ConsistentRead=True).get(
            "Item"
        )
        return from_dynamodb(item) if item else None

    @_transient_aws_errors
    def record_review(self, document_id: str, review: dict[str, Any], *, revision: int = 0) -> bool:
        """Store ``review`` if the stored review is still at ``revision``; False when it is not.

        A review's revision is the length of its ``history`` (one entry per decision stored), 0
        when there is none: ``revision=0`` stores a first decision, ``revision=n`` an amendment
        of the decision with n entries. The condition makes a second decision taken on a stale
        view fail instead of overwriting. Only ``review`` is written: review_status and the
        rest of the record never change. Raises LookupError when there is no record.
        """
        # (attribute_exists before size(): moto's size() raises on a missing attribute)
        condition = (
            "attribute_exists(document_id) AND attribute_not_exists(#review)"
            if revision == 0
            else "attribute_exists(#review.#history) AND size(#review.#history) = :revision"
        )
        names = {"#review": "review"} | ({"#history": "history"} if revision else {})
        values = {":review": _to_dynamodb(review)} | ({":revision": revision} if revision else {})
        try:
            self._table.update_item(
                Key={"document_id": document_id},
                UpdateExpression="SET #review = :review",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
        if self.get(document_id) is None:
            raise LookupError(f"no record for document {document_id}")
        return False


class UsageTable:
    """Pages and cents Datalab charged: one counter item per period (``day#…``, ``month#…``) and
    a marker per counted document (``document#<id>``, expiring) that keeps a retry from counting
    it again."""

    # Long past any retry of the evaluate step that counts a document.
    MARKER_DAYS = 40

    def __init__(self, table_name: str, resource: Any = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    @_transient_aws_errors
    def spent(self, day: str, month: str) -> tuple[int, float]:
        today: dict[str, Any] = self._table.get_item(Key={"period": day}, ConsistentRead=True).get(
            "Item", {}
        )
        this_month: dict[str, Any] = self._table.get_item(
            Key={"period": month}, ConsistentRead=True
        ).get("Item", {})
        return int(today.get("pages", 0)), float(this_month.get("cents", 0))

    @_transient_aws_errors
    def add(self, document_id: str, day: str, month: str, *, pages: int, cents: float) -> None:
        """Count one document in its day and month once, even when evaluate is retried.

        A marker item per document says how far counting got: written ``counting`` first
        (a marker already ``counted`` means there is nothing to do), then the two counters, then
        ``counted``. Not one transaction: the counters are hot items that every document
        updates, and a transaction on them conflicts with concurrent updates. A retry after a
        crash between a counter and the last write counts that document twice (never zero
        times): the guard errs on the side of stopping early.
        """
        marker = {"period": f"document#{document_id}"}
        try:
            self._table.put_item(
                Item={**marker, "state": "counting", "expires_at": self._marker_expiry()},
                ConditionExpression="attribute_not_exists(period) OR #state <> :counted",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":counted": "counted"},
            )
        except ClientError as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return  # counted before
            raise
        for period in (day, month):
            self._table.update_item(
                Key={"period": period},
                UpdateExpression="ADD pages :pages, cents :cents, documents :one",
                ExpressionAttributeValues={
                    ":pages": pages,
                    ":cents": Decimal(str(float(cents))),
                    ":one": 1,
                },
            )
        self._table.update_item(
            Key=marker,
            UpdateExpression="SET #state = :counted",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":counted": "counted"},
        )

    def _marker_expiry(self) -> int:
        return int(time.time()) + self.MARKER_DAYS * 86400


class RequestBudgetTable:
    """The shared request budget's counters (one item per window) in the usage table."""

    def __init__(self, table_name: str, resource: Any = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    @_transient_aws_errors
    def take(self, key: str, allowance: int, expires_at: int) -> bool:
        """One request from the window ``key``; False when its allowance is used up."""
        try:
            self._table.update_item(
                Key={"period": key},
                UpdateExpression="ADD taken :one SET expires_at = :expires",
                ConditionExpression="attribute_not_exists(taken) OR taken < :allowance",
                ExpressionAttributeValues={
                    ":one": 1,
                    ":allowance": allowance,
                    ":expires": expires_at,
                },
            )
            return True
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
        return False


class ReviewQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._sqs: Any = client or boto3.client("sqs")

    @_transient_aws_errors
    def send(self, message: dict[str, Any]) -> None:
        self._sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(message, separators=(",", ":")),
            MessageAttributes={
                "document_id": {"DataType": "String", "StringValue": message["document_id"]},
                "status": {"DataType": "String", "StringValue": message["status"]},
            },
        )


class IntakeQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._sqs: Any = client or boto3.client("sqs")

    @_transient_aws_errors
    def send_again(self, body: str, *, delay_seconds: int, first_sent: str) -> None:
        """The same message as a new one (its deliveries counted afresh), after a delay of up to
        15 minutes, carrying when the first of its line was sent."""
        self._sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            DelaySeconds=max(0, min(900, int(delay_seconds))),
            MessageAttributes={FIRST_SENT: {"DataType": "String", "StringValue": first_sent}},
        )

    @_transient_aws_errors
    def delay(self, receipt_handle: str, seconds: int) -> None:
        """Make a received message visible again after ``seconds`` (0 to 43,200)."""
        self._sqs.change_message_visibility(
            QueueUrl=self.queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(43_200, int(seconds))),
        )


class Workflows:
    """Step Functions executions, one per document, named by document_id."""

    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._sfn: Any = client or boto3.client("stepfunctions")

    def _execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    @_transient_aws_errors
    def exists(self, name: str) -> bool:
        try:
            self._sfn.describe_execution(executionArn=self._execution_arn(name))
        except ClientError as exc:
            if _error_code(exc) == "ExecutionDoesNotExist":
                return False
            raise
        return True

    @_transient_aws_errors
    def start(self, name: str, state: Mapping[str, Any]) -> bool:
        """Start the execution; False when one with this name already exists."""
        try:
            self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(state)
            )
        except ClientError as exc:
            if _error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise
        return True


class WebhookTable:
    """One item per Datalab request sent with a webhook_url: registered by submit, the waiting
    task's token stored by the workflow, the webhook's arrival marked by the webhook function.
    Conditional writes make the token and the arrival meet exactly once, in either order."""

    # Past Datalab's one hour of results and any webhook retry.
    ITEM_DAYS = 2

    def __init__(self, table_name: str, resource: Any = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

    @_transient_aws_errors
    def register(self, request_id: str, document_id: str) -> None:
        expires = int(time.time()) + self.ITEM_DAYS * 86400
        self._table.put_item(
            Item={"request_id": request_id, "document_id": document_id, "expires_at": expires}
        )

    @_transient_aws_errors
    def expect(self, request_id: str, task_token: str) -> bool:
        """Store the token; False when the webhook has arrived already (no one will send it)."""
        item = self._table.update_item(
            Key={"request_id": request_id},
            UpdateExpression="SET task_token = :token",
            ExpressionAttributeValues={":token": task_token},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return "completed_at" not in item

    @_transient_aws_errors
    def arrive(self, request_id: str, at: str) -> Arrival:
        try:
            item = self._table.update_item(
                Key={"request_id": request_id},
                UpdateExpression="SET completed_at = :at",
                ConditionExpression="attribute_exists(request_id) AND "
                "attribute_not_exists(completed_at)",
                ExpressionAttributeValues={":at": at},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = cast(dict[str, Any], exc.response.get("Item") or {})  # low-level: {"S": …}
            if not old:
                return Arrival("unknown")
            return Arrival("duplicate", str((old.get("task_token") or {}).get("S") or ""))
        return Arrival("first", str(item.get("task_token") or ""))


class TaskTokens:
    """Ends a Step Functions task that waits for a token (``.waitForTaskToken``)."""

    _GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}

    def __init__(self, client: Any = None) -> None:
        self._sfn: Any = client or boto3.client("stepfunctions")

    @_transient_aws_errors
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        """False when the task is no longer waiting (timed out into polling, or ended)."""
        try:
            self._sfn.send_task_success(taskToken=task_token, output=json.dumps(output))
        except ClientError as exc:
            if _error_code(exc) in self._GONE:
                return False
            raise
        return True
