"""Reprocessing failed documents: copy each failed upload onto itself so S3 makes a new version.

A new version is a new document (its own document_id, execution and record), so the failed record
stays as history and the new one goes through the whole pipeline, idempotency included. The old
record gets ``reprocessed_as`` (written once, with a condition), so running this twice never
submits a document twice. Works against a deployed stack or the local one (``--endpoint-url``).

Only what can succeed is sent again (:func:`decide`): a failure of the upload itself (empty, too
large, unsupported type, bad key, gone, invalid threshold metadata, the type's schema missing or
broken, Datalab refusing the file) fails the same way on a copy, so it is skipped unless asked
for (``include_permanent``: e.g. once the schema is fixed). Every other reason (throttling,
timeouts, Datalab or S3 unavailable, configuration, an expired result...) is retried.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from doctriage_core.adapters.aws import from_dynamodb
from doctriage_core.domain.documents import REPROCESS_OF_METADATA, document_id_for

# Reasons a copy of the same upload fails for again, and why (the record's extraction_failed:...).
PERMANENT_REASONS = {
    "empty_file": "the file is empty",
    "file_too_large": "the file is over Datalab's size limit",
    "unsupported_type": "the file's type is not supported",
    "bad_key": "the key is not incoming/<doc_type>/<file name>",
    "object_missing": "the upload is gone",
    "invalid_threshold": "its human-review-threshold metadata is invalid (a copy keeps it)",
    "schema_missing": "no schema for its type (put one, then --include-permanent)",
    "schema_invalid": "its type's schema is broken (fix it, then --include-permanent)",
    "datalab_rejected": "Datalab refused the file itself",
}


@dataclass(frozen=True)
class Decision:
    reprocess: bool
    why: str


def failure_reason(record: dict) -> str:
    """The reason of a failed record: the part after ``extraction_failed:`` of its flag."""
    return next(
        (f.split(":", 1)[1] for f in record.get("flags", []) if f.startswith("extraction_failed:")),
        "unknown",
    )


def decide(record: dict, *, include_permanent: bool = False) -> Decision:
    """Whether a failed record is worth reprocessing, and why (from its failure reason)."""
    reason = failure_reason(record)
    permanent = PERMANENT_REASONS.get(reason)
    if permanent is None:
        return Decision(True, f"{reason}: may succeed on a new try")
    if include_permanent:
        return Decision(
            True, f"{reason}: permanent ({permanent}), sent as --include-permanent asks"
        )
    return Decision(False, f"{reason}: permanent, {permanent}; --include-permanent sends it anyway")


@dataclass(frozen=True)
class Reprocessed:
    document_id: str
    key: str
    reason: str
    new_document_id: str | None  # None: skipped (see note)
    note: str = ""


def failed_records(dynamodb: Any, table: str, *, reason: str | None = None) -> Iterator[dict]:
    """Failed records not yet reprocessed, optionally only those failed for ``reason``."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "#s = :failed AND attribute_not_exists(reprocessed_as)",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":failed": {"S": "failed"}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            record = plain_record(item)
            flags = record.get("flags", [])
            if reason is None or f"extraction_failed:{reason}" in flags:
                yield record
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def reprocess(
    record: dict, *, s3: Any, dynamodb: Any, table: str, dry_run: bool = False
) -> Reprocessed:
    source = record["source"]
    reason = failure_reason(record)
    base = Reprocessed(record["document_id"], source["key"], reason, None)
    copy_source = {"Bucket": source["bucket"], "Key": source["key"]}
    if source.get("version_id"):
        copy_source["VersionId"] = source["version_id"]
    if dry_run:
        return Reprocessed(**{**base.__dict__, "note": "dry run"})
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"document_id": {"S": record["document_id"]}},
            UpdateExpression="SET reprocessed_as = :pending",
            ConditionExpression=(
                "attribute_exists(document_id) AND attribute_not_exists(reprocessed_as)"
            ),
            ExpressionAttributeValues={":pending": {"S": "pending"}},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return Reprocessed(**{**base.__dict__, "note": "already reprocessed"})
        raise
    try:
        # The copy keeps the upload's metadata (its threshold) and says what it reprocesses.
        head = s3.head_object(**copy_source)
        copied = s3.copy_object(
            Bucket=source["bucket"],
            Key=source["key"],
            CopySource=copy_source,
            MetadataDirective="REPLACE",
            Metadata={**head.get("Metadata", {}), REPROCESS_OF_METADATA: record["document_id"]},
            ContentType=head.get("ContentType") or "binary/octet-stream",
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        dynamodb.update_item(
            TableName=table,
            Key={"document_id": {"S": record["document_id"]}},
            UpdateExpression="REMOVE reprocessed_as",
        )
        return Reprocessed(**{**base.__dict__, "note": f"cannot copy the upload: {code}"})
    new_id = document_id_for(
        source["bucket"],
        source["key"],
        copied.get("VersionId"),
        copied.get("CopyObjectResult", {}).get("ETag"),
    )
    dynamodb.update_item(
        TableName=table,
        Key={"document_id": {"S": record["document_id"]}},
        UpdateExpression="SET reprocessed_as = :new",
        ExpressionAttributeValues={":new": {"S": new_id}},
    )
    return Reprocessed(**{**base.__dict__, "new_document_id": new_id})


def plain_record(item: dict) -> Any:
    """A DynamoDB item (as the low-level client returns it) as the plain record it stores."""
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    # DynamoDB numbers read back as the record wrote them: one reader, the adapter's.
    return from_dynamodb({k: deserializer.deserialize(v) for k, v in item.items()})
