"""The review-queue consumer and ResultsTable.record_review against moto's SQS and DynamoDB."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from doctriage_core.adapters.aws import ResultsTable
from doctriage_local.review.consumer import ReviewConsumer

REGION = "us-east-1"


def _record(document_id="doc-1", **extra):
    return {
        "document_id": document_id,
        "status": "complete",
        "review_status": "needs_review",
        "flags": ["low_confidence_field:total"],
        "human_review_threshold": 0.85,
        "fields": {"total": {"value": 322.5, "found": True, "confidence": 0.5}},
        "source": {
            "bucket": "docs",
            "key": f"incoming/invoice/{document_id}.pdf",
            "version_id": None,
        },
        **extra,
    }


def _review(reviewer="ana", **corrected):
    return {
        "reviewer": reviewer,
        "decided_at": "2024-05-01T10:00:00.000Z",
        "accepted": [],
        "corrected": corrected,
    }


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="review")["QueueUrl"]
        dynamodb = boto3.resource("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="results",
            KeySchema=[{"AttributeName": "document_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "document_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield sqs, queue_url, ResultsTable("results", dynamodb)


def _consumer(aws, **options):
    sqs, queue_url, table = aws
    options.setdefault("visibility_timeout", 30)
    return ReviewConsumer(
        sqs=sqs,
        queue_url=queue_url,
        table=table,
        s3=boto3.client("s3", region_name=REGION),
        **options,
    )


def _send(aws, record, schema_version="1"):
    sqs, queue_url, _ = aws
    sqs.send_message(
        QueueUrl=queue_url, MessageBody=json.dumps({**record, "schema_version": schema_version})
    )


def _counts(aws):
    sqs, queue_url, _ = aws
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


# ---------------------------------------------------------------------- ResultsTable.record_review


def test_record_review_is_stored_once_and_changes_nothing_else(aws):
    _, _, table = aws
    table.put_once(_record())
    first = _review(total=300.25)

    assert table.record_review("doc-1", first) is True
    assert table.record_review("doc-1", _review("bo", total=1)) is False
    stored = table.get("doc-1")
    assert stored.pop("review") == first
    assert stored == _record()  # review_status and the rest as written


def test_record_review_of_an_unknown_document_is_an_error(aws):
    _, _, table = aws
    with pytest.raises(LookupError):
        table.record_review("doc-missing", _review())
    assert table.get("doc-missing") is None  # no half record was created


# ---------------------------------------------------------------------- the consumer


def test_an_empty_queue_gives_nothing_after_the_long_poll(aws):
    started = time.monotonic()
    assert _consumer(aws).open_next(wait_seconds=1) is None
    assert 0.9 <= time.monotonic() - started < 5


def test_a_decision_is_stored_before_the_message_is_deleted(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())
    consumer = _consumer(aws)

    document = consumer.open_next(wait_seconds=1)
    assert document is not None
    assert document.document_id == "doc-1"
    assert document.record == _record()  # the table's record, not the message body
    assert _counts(aws) == (0, 1)
    assert consumer.decide(document, _review(total=300)) is True
    assert table.get("doc-1")["review"]["corrected"] == {"total": 300}
    assert _counts(aws) == (0, 0)
    assert consumer.stats.decided == 1


def test_when_storing_fails_the_message_stays_and_the_document_stays_open(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())

    class Broken:
        def get(self, document_id):
            return table.get(document_id)

        def record_review(self, document_id, review):
            raise RuntimeError("DynamoDB is down")

    consumer = _consumer(aws)
    consumer.table = Broken()
    document = consumer.open_next(wait_seconds=1)
    with pytest.raises(RuntimeError):
        consumer.decide(document, _review())
    assert _counts(aws) == (0, 1)  # still ours, not deleted
    consumer.release(document)
    assert _counts(aws) == (1, 0)  # and back on the queue


def test_the_heartbeat_keeps_an_open_document_from_other_consumers(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())
    consumer = _consumer(aws, visibility_timeout=2, heartbeat_interval=0.25)
    other = _consumer(aws, visibility_timeout=1)

    document = consumer.open_next(wait_seconds=1)
    time.sleep(3)  # well past the visibility timeout
    assert other.open_next(wait_seconds=0) is None
    assert document.heartbeat.beats >= 3
    assert document.heartbeat.error is None

    consumer.release(document)
    beats = document.heartbeat.beats
    again = other.open_next(wait_seconds=1)
    assert again is not None
    assert again.document_id == "doc-1"
    time.sleep(0.4)
    assert document.heartbeat.beats == beats  # stopped with the release
    other.release(again)


def test_without_a_heartbeat_the_message_would_come_back(aws):
    # The control for the test above: moto does honour the visibility timeout.
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())
    consumer = _consumer(aws, visibility_timeout=1, heartbeat_interval=60)
    document = consumer.open_next(wait_seconds=1)
    time.sleep(1.5)
    assert _counts(aws) == (1, 0)
    document.heartbeat.stop()


def test_duplicates_for_a_decided_document_are_acknowledged(aws):
    _, _, table = aws
    table.put_once(_record())
    table.record_review("doc-1", _review())
    _send(aws, _record())
    _send(aws, _record())
    consumer = _consumer(aws)

    assert consumer.open_next(wait_seconds=1) is None
    assert consumer.stats.duplicates_acknowledged == 2
    assert _counts(aws) == (0, 0)
    assert table.get("doc-1")["review"] == _review()


def test_a_document_decided_elsewhere_meanwhile_is_not_decided_twice(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())
    consumer = _consumer(aws)
    document = consumer.open_next(wait_seconds=1)
    table.record_review("doc-1", _review("bo"))  # another reviewer, another server

    assert consumer.decide(document, _review("ana")) is False
    assert table.get("doc-1")["review"]["reviewer"] == "bo"
    assert _counts(aws) == (0, 0)
    assert consumer.stats.already_decided == 1


@pytest.mark.parametrize("body", ["not json", json.dumps({"no": "id"})])
def test_messages_that_are_not_review_messages_are_left_for_the_dlq(aws, body):
    sqs, queue_url, _ = aws
    sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    consumer = _consumer(aws)
    assert consumer.open_next(wait_seconds=0) is None
    assert consumer.stats.left_alone == 1
    assert _counts(aws) == (0, 1)  # not deleted: back after the timeout, then the DLQ


def test_an_unknown_schema_version_or_record_is_left_alone(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record(), schema_version="2")
    _send(aws, _record("doc-unknown"))
    consumer = _consumer(aws)
    assert consumer.open_next(wait_seconds=1) is None
    assert consumer.stats.left_alone == 2
    assert _counts(aws) == (0, 2)


# ---------------------------------------------------------------------- nested paths, audits


def test_a_decision_by_cell_path_is_stored_and_read_back_as_written(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())
    consumer = _consumer(aws)
    document = consumer.open_next(wait_seconds=1)
    review = {
        **_review(**{"line_items[1].amount": 25.5, "line_items[0].description": None}),
        "accepted": ["line_items[0].amount", "address.city", "line_items"],
    }

    assert consumer.decide(document, review) is True
    assert table.get("doc-1")["review"] == review  # path keys and float values as they were


@pytest.mark.parametrize(
    ("record_extra", "body_extra", "audit"),
    [
        ({}, {}, False),
        ({"audit_sample": True}, {}, True),  # the record says so
        ({}, {"audit": True}, True),  # the message says so
        ({"audit_sample": False}, {"audit": "yes"}, False),  # only true is true
    ],
)
def test_an_audit_sample_opens_as_an_audit(aws, record_extra, body_extra, audit):
    sqs, queue_url, table = aws
    record = _record(**record_extra, review_status="auto", flags=[])
    table.put_once(record)
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({**record, **body_extra, "schema_version": "1"}),
    )
    document = _consumer(aws).open_next(wait_seconds=1)
    assert document is not None
    assert document.audit is audit
    document.heartbeat.stop()


def test_the_schema_is_read_from_the_records_bucket_by_its_upload_type(aws):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="docs")
    schema = {"type": "object", "properties": {"total": {"type": "number"}}}
    s3.put_object(Bucket="docs", Key="schemas/invoice.json", Body=json.dumps(schema).encode())
    consumer = _consumer(aws)

    assert consumer.schema_for(_record()) == schema
    receipt = _record()
    receipt["source"] = {**receipt["source"], "key": "incoming/receipt/r.pdf"}
    assert consumer.schema_for(receipt) is None  # no schema there: the page reads JSON
    s3.put_object(Bucket="docs", Key="schemas/invoice.json", Body=b"{not json")
    assert consumer.schema_for(_record()) is None
