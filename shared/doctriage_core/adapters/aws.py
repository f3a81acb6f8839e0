"""The only module that talks to AWS: S3, DynamoDB, SQS and Step Functions through boto3.

Each adapter is a small class over one resource; the pipeline receives them ready-made, so tests
and the local stack can point them at moto without patching anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, BinaryIO

import boto3
from botocore.exceptions import ClientError

from doctriage_core.errors import InvalidDocument, SchemaNotFound

_MISSING_OBJECT = {"NoSuchKey", "NoSuchVersion", "404", "NotFound", "InvalidArgument"}


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


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

    def head(self, key: str, version_id: str | None) -> ObjectInfo:
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_OBJECT:
                raise InvalidDocument(
                    f"s3://{self.bucket}/{key} no longer exists (deleted before it was submitted)",
                    reason="object_missing",
                ) from exc
            raise
        return ObjectInfo(
            size=int(head["ContentLength"]),
            etag=head.get("ETag"),
            version_id=head.get("VersionId"),
            metadata={k.lower(): v for k, v in head.get("Metadata", {}).items()},
        )

    def open(self, key: str, version_id: str | None) -> BinaryIO:
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_OBJECT:
                raise InvalidDocument(
                    f"s3://{self.bucket}/{key} no longer exists", reason="object_missing"
                ) from exc
            raise
        body: BinaryIO = response["Body"]
        return body

    def read_schema(self, key: str, version_id: str | None = None) -> tuple[bytes, str | None]:
        """The schema's bytes and version id (so evaluate reads exactly what submit sent)."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, **self._version(version_id))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_OBJECT:
                raise SchemaNotFound(
                    f"no extraction schema at s3://{self.bucket}/{key}: upload one to add this "
                    "document type"
                ) from exc
            raise
        return response["Body"].read(), response.get("VersionId")

    def read(self, key: str) -> bytes:
        data: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def put_json(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")


def _to_dynamodb(record: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = json.loads(json.dumps(record), parse_float=Decimal)
    return converted


def _from_dynamodb(value: Any) -> Any:
    if isinstance(value, Decimal):
        # 5 stays an int (scores); 5.0 and 0.75 come back as floats, as they were written.
        return int(value) if int(value.as_tuple().exponent) >= 0 else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamodb(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamodb(v) for v in value]
    return value


class ResultsTable:
    """One item per document. A record is written once: review_status never changes afterwards."""

    def __init__(self, table_name: str, resource: Any = None) -> None:
        self._table = (resource or boto3.resource("dynamodb")).Table(table_name)

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

    def get(self, document_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"document_id": document_id}, ConsistentRead=True).get(
            "Item"
        )
        return _from_dynamodb(item) if item else None

    def record_review(self, document_id: str, review: dict[str, Any]) -> bool:
        """Store a reviewer's decision under ``review`` once; False when one is already stored.

        Only ``review`` is written: review_status and the rest of the record never change.
        Raises LookupError when there is no record for ``document_id``.
        """
        try:
            self._table.update_item(
                Key={"document_id": document_id},
                UpdateExpression="SET #review = :review",
                ConditionExpression=(
                    "attribute_exists(document_id) AND attribute_not_exists(#review)"
                ),
                ExpressionAttributeNames={"#review": "review"},
                ExpressionAttributeValues={":review": _to_dynamodb(review)},
            )
            return True
        except ClientError as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
        if self.get(document_id) is None:
            raise LookupError(f"no record for document {document_id}")
        return False


class ReviewQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._sqs: Any = client or boto3.client("sqs")

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

    def exists(self, name: str) -> bool:
        try:
            self._sfn.describe_execution(executionArn=self._execution_arn(name))
        except ClientError as exc:
            if _error_code(exc) == "ExecutionDoesNotExist":
                return False
            raise
        return True

    def start(self, name: str, state: dict[str, Any]) -> bool:
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
