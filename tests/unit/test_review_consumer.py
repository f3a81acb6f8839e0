"""The review-queue consumer and ResultsTable.record_review against moto's SQS and DynamoDB."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from doctriage_core.adapters.aws import ResultsTable
from doctriage_local.review.consumer import ReviewConsumer
from doctriage_local.review.decision import revision_of, with_history
from tests.contracts import assert_valid_record

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
    first = with_history(_review(total=300.25), None)

    assert table.record_review("doc-1", first) is True
    assert table.record_review("doc-1", _review("bo", total=1)) is False
    stored = table.get("doc-1")
    assert stored.pop("review") == first
    assert stored == _record()  # review_status and the rest as written


def test_an_amendment_is_stored_only_over_the_revision_it_amends(aws):
    _, _, table = aws
    table.put_once(_record())
    first = with_history(_review(total=300.25), None)
    table.record_review("doc-1", first)
    amended = with_history(_review("bo", total=301), first)
    assert (revision_of(first), revision_of(amended)) == (1, 2)

    assert table.record_review("doc-1", amended, revision=2) is False  # not what is stored
    assert table.record_review("doc-1", amended, revision=1) is True
    assert table.record_review("doc-1", with_history(_review("cy"), first), revision=1) is False
    stored = table.get("doc-1")["review"]
    assert stored == amended
    assert [h["reviewer"] for h in stored["history"]] == ["ana", "bo"]
    assert stored["history"][1]["changes"] == [
        {
            "path": "total",
            "was": {"decision": "correct", "value": 300.25},
            "now": {"decision": "correct", "value": 301},
        }
    ]
    with pytest.raises(LookupError):
        table.record_review("doc-missing", amended, revision=1)


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
    assert consumer.decide(document, _review(total=300)).kind == "stored"
    assert table.get("doc-1")["review"]["corrected"] == {"total": 300}
    assert_valid_record(table.get("doc-1"))
    assert _counts(aws) == (0, 0)
    assert consumer.stats.decided == 1


def test_when_storing_fails_the_message_stays_and_the_document_stays_open(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())

    class Broken:
        def get(self, document_id):
            return table.get(document_id)

        def record_review(self, document_id, review, revision=0):
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
    bo = with_history(_review("bo", total=300), None)
    table.record_review("doc-1", bo)  # another reviewer, another server

    conflict = consumer.decide(document, _review("ana", total=301))
    assert (conflict.kind, conflict.review) == ("conflict", bo)  # the stored one, to show
    assert table.get("doc-1")["review"] == bo  # nothing overwritten
    assert _counts(aws) == (0, 0)  # the document has a decision: its message is done
    assert consumer.stats.already_decided == 1


def test_the_same_decision_a_second_time_is_simply_acknowledged(aws):
    _, _, table = aws
    table.put_once(_record())
    bo = with_history({**_review("bo", total=300), "accepted": ["a", "b"]}, None)
    table.record_review("doc-1", bo)
    consumer = _consumer(aws)

    again = consumer.against_stored("doc-1", {**_review("ana", total=300), "accepted": ["b", "a"]})
    assert again.kind == "identical"
    assert consumer.against_stored("doc-1", _review("ana", total=300)).kind == "conflict"
    assert consumer.stats.identical_acknowledged == 1
    assert table.get("doc-1")["review"] == bo


def test_an_amendment_keeps_the_history_and_a_stale_one_is_a_conflict(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())
    consumer = _consumer(aws)
    consumer.decide(consumer.open_next(wait_seconds=1), _review("ana", total=300))

    amended = consumer.amend("doc-1", _review("bo", total=301), revision=1)
    assert amended.kind == "amended"
    stale = consumer.amend("doc-1", _review("cy", total=302), revision=1)  # saw revision 1
    assert (stale.kind, stale.review) == ("conflict", amended.review)
    same = consumer.amend("doc-1", _review("cy", total=301), revision=2)
    assert same.kind == "identical"
    stored = table.get("doc-1")
    assert_valid_record(stored)
    assert stored["review"]["reviewer"] == "bo"
    assert stored["review"]["corrected"] == {"total": 301}
    assert [(h["reviewer"], len(h["changes"])) for h in stored["review"]["history"]] == [
        ("ana", 1),
        ("bo", 1),
    ]
    assert consumer.stats.amended == 1
    with pytest.raises(LookupError):
        consumer.amend("doc-unknown", _review(), revision=1)


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

    assert consumer.decide(document, review).kind == "stored"
    stored = table.get("doc-1")["review"]
    assert stored == with_history(review, None)  # path keys and float values as they were


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


# ---------------------------------------------------------------------- skipping, the queue


def test_a_skipped_document_is_kept_from_its_reviewer_and_the_next_is_another(aws):
    sqs, queue_url, table = aws
    for name in ("doc-1", "doc-2"):
        table.put_once(_record(name))
    _send(aws, _record("doc-1"))
    consumer = _consumer(aws, skip_seconds=30)

    first = consumer.open_next(wait_seconds=1)
    _send(aws, _record("doc-2"))
    consumer.skip(first)
    assert _counts(aws) == (1, 1)  # doc-1 hidden (from everyone: SQS has no per-reader view)
    second = consumer.open_next(wait_seconds=1)
    assert second.document_id == "doc-2"  # not the skipped one again
    assert consumer.stats.skipped == 1

    # Someone puts doc-1 back early (released elsewhere): still kept from this reviewer.
    sqs.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=first.receipt_handle, VisibilityTimeout=0
    )
    assert consumer.open_next(wait_seconds=0) is None
    assert consumer.stats.kept_from_skipper == 1
    assert _counts(aws) == (0, 2)  # hidden again, for what is left of its 30 s
    second.heartbeat.stop()


def test_a_skipped_document_comes_back_once_its_while_is_over(aws):
    _, _, table = aws
    table.put_once(_record())
    _send(aws, _record())
    consumer = _consumer(aws, skip_seconds=1)
    consumer.skip(consumer.open_next(wait_seconds=1))
    assert consumer.open_next(wait_seconds=0) is None
    again = consumer.open_next(wait_seconds=3)
    assert again is not None
    assert again.receive_count == 2  # handed out twice: the page says so
    again.heartbeat.stop()


def test_the_queue_depth_and_the_dlq_limit_are_read_from_sqs(aws):
    sqs, queue_url, _ = aws
    dlq = sqs.create_queue(QueueName="review-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    consumer = _consumer(aws)
    assert consumer.max_receive_count is None  # no redrive policy on this queue
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 7})
        },
    )
    assert _consumer(aws).max_receive_count == 7
    _send(aws, _record("doc-1"))
    _send(aws, _record("doc-2"))
    assert consumer.queue_depth() == (2, 0)


def test_a_reprocess_decided_otherwise_meanwhile_sends_nothing_through_again(aws):
    import http.client
    import urllib.parse

    from doctriage_local.review.server import ReviewServer

    sqs, queue_url, table = aws
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="docs")
    s3.put_bucket_versioning(Bucket="docs", VersioningConfiguration={"Status": "Enabled"})
    key = "incoming/invoice/doc-1.pdf"
    version = s3.put_object(Bucket="docs", Key=key, Body=b"%PDF-1.4 x")["VersionId"]
    failed = _record(
        status="failed",
        flags=["extraction_failed:timeout"],
        fields={},
        source={"bucket": "docs", "key": key, "version_id": version},
    )
    table.put_once(failed)
    _send(aws, failed)
    consumer = ReviewConsumer(
        sqs=sqs,
        queue_url=queue_url,
        table=table,
        s3=s3,
        dynamodb=boto3.client("dynamodb", region_name=REGION),
        visibility_timeout=30,
    )
    with ReviewServer(consumer, port=0, reviewer="ana", wait_seconds=1) as server:
        assert server.next_document(1) is not None  # ana has it open ...
        rejected = {"outcome": "rejected", "rejected_reason": "duplicate"}
        bo = {"reviewer": "bo", "decided_at": "2024-05-01T10:00:00.000Z", **rejected}
        # ... when bo, on another server, rejects it first
        assert table.record_review(
            "doc-1", with_history({**bo, "accepted": [], "corrected": {}}, None)
        )
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request(
            "POST",
            "/doc/doc-1/decision",
            urllib.parse.urlencode({"token": server.token, "outcome": "reprocess"}),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert connection.getresponse().status == 409  # the conflict page
    stored = table.get("doc-1")
    assert stored["review"]["outcome"] == "rejected"
    assert "reprocessed_as" not in stored  # no new document was started
    assert len(s3.list_object_versions(Bucket="docs")["Versions"]) == 1


def test_a_review_stored_before_outcomes_is_the_same_decision_as_one_with_decided():
    from doctriage_local.review.decision import changes, same_decision

    old = {"reviewer": "bo", "decided_at": "t", "accepted": ["a"], "corrected": {}}
    new = {**old, "reviewer": "ana", "outcome": "decided"}
    assert same_decision(old, new)
    assert changes(old, new) == []
