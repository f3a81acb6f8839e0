"""The whole pipeline through the real state machine under moto, the real handlers and the emulator.

Each test uploads to S3 exactly as a user would and reads the terminal record back from DynamoDB.
"""

from __future__ import annotations

import json
import time

import pytest

from doctriage_core.domain.documents import document_id_for
from doctriage_local.emulator import FaultRule
from doctriage_local.paths import SAMPLES
from tests.contracts import assert_valid_record, assert_valid_review_message
from tests.integration.helpers import process, review_messages_for

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"
INITECH = SAMPLES / "invoice" / "initech-invoice-3318.pdf"
RECEIPT = SAMPLES / "receipt" / "corner-cafe-receipt.pdf"


# ------------------------------------------------------------------ the three outcomes


def test_a_clean_invoice_is_auto_with_values_from_the_document(stack, emulator):
    record = process(stack, ACME.read_bytes(), "invoice", name="auto-acme.pdf")

    assert_valid_record(record)
    assert record["status"] == "complete"
    assert record["review_status"] == "auto"
    assert record["flags"] == []
    assert record["document_type"] == "invoice"
    assert record["fields"]["invoice_number"]["value"] == "INV-1042"
    assert record["fields"]["invoice_number"]["confidence"] == 1.0
    assert record["fields"]["total_amount"]["value"] == pytest.approx(1236.25)
    assert record["fields"]["invoice_number"]["page"] == 0
    assert record["fields"]["invoice_number"]["bbox"]["width"] > 0
    assert record["extraction_score_average"] == 5.0
    assert record["human_review_threshold"] == 0.85
    assert record["datalab"]["result_key"].startswith("results/")
    # Datalab's charge arrives after the first complete poll; the record has it anyway.
    assert (record["datalab"]["cost_cents"], record["datalab"]["page_count"]) == (1.0, 1)
    # AuditSampleRate=0 here (conftest.py): not sampled for audit, nothing queued
    assert record["audit_sample"] is False
    assert review_messages_for(stack, record["document_id"]) == []
    assert stack.finished_execution(record["document_id"])["status"] == "SUCCEEDED"


def test_a_smudged_invoice_needs_review_and_reaches_the_queue(stack, emulator):
    record = process(stack, GLOBEX.read_bytes(), "invoice", name="review-globex.pdf")

    assert_valid_record(record)
    assert record["review_status"] == "needs_review"
    assert "missing_field:due_date" in record["flags"]
    assert "invalid_field:invoice_number" in record["flags"]
    assert record["fields"]["due_date"] == {
        **record["fields"]["due_date"],
        "value": None,
        "found": False,
        "confidence": 0.0,
    }
    messages = review_messages_for(stack, record["document_id"])
    assert len(messages) == 1
    assert_valid_review_message(messages[0])
    assert messages[0]["flags"] == record["flags"]
    assert messages[0]["fields"]["invoice_number"]["bbox"] is not None


def test_the_raw_result_is_kept_in_s3(stack, emulator):
    record = process(stack, RECEIPT.read_bytes(), "receipt", name="raw-kept.pdf")
    assert record["status"] == "complete", record["error"]
    raw = stack.client("s3").get_object(Bucket=stack.bucket, Key=record["datalab"]["result_key"])
    body = json.loads(raw["Body"].read())
    assert body["status"] == "complete"
    assert body["extraction_score_average"] == record["extraction_score_average"]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("failed", "datalab_failed"),
        ("success_false", "datalab_failed"),
        ("expire", "result_expired"),
        ("malformed", "malformed_result"),
    ],
)
def test_datalab_failures_end_as_failed_records_on_the_review_queue(stack, emulator, kind, reason):
    name = f"fault-{kind}.pdf"
    emulator.add_fault(FaultRule(match=name, kind=kind))
    record = process(stack, ACME.read_bytes(), "invoice", name=name)

    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["review_status"] == "needs_review"
    assert record["flags"] == [f"extraction_failed:{reason}"]
    assert record["error"]["message"]
    messages = review_messages_for(stack, record["document_id"])
    assert [m["status"] for m in messages] == ["failed"]
    assert_valid_review_message(messages[0])
    # the failure is in the record; the workflow itself did its job
    assert stack.finished_execution(record["document_id"])["status"] == "SUCCEEDED"


def test_scores_that_never_come_give_scores_unavailable(stack, emulator):
    emulator.add_fault(FaultRule(match="never-scored.pdf", kind="never_scored"))
    record = process(stack, ACME.read_bytes(), "invoice", name="never-scored.pdf")

    assert record["status"] == "complete"
    assert record["flags"] == ["scores_unavailable"]
    assert record["fields"]["invoice_number"]["value"] == "INV-1042"
    assert record["fields"]["invoice_number"]["confidence"] is None


# ------------------------------------------------------------------ tables: completeness and sums


def test_a_total_that_disagrees_with_its_lines_fails_the_sum_check(stack, emulator):
    record = process(stack, INITECH.read_bytes(), "invoice", name="sum-initech.pdf")

    assert_valid_record(record)
    assert record["flags"] == ["failed_check:total_matches_lines"]
    assert record["checks"] == [
        {
            "name": "total_matches_lines",
            "passed": False,
            "computed": 307.8,
            "expected": 317.8,
            "tolerance": 0.01,
        }
    ]
    [message] = review_messages_for(stack, record["document_id"])
    assert_valid_review_message(message)
    assert message["flags"] == ["failed_check:total_matches_lines"]


def test_a_dropped_row_is_caught_by_min_items_and_the_sum_check(stack, emulator):
    schema = json.loads((SAMPLES / "schemas" / "invoice.json").read_text())
    schema["properties"]["line_items"]["minItems"] = 3
    stack.put_schema("invoice_of_three", json.dumps(schema))
    emulator.add_fault(FaultRule(match="dropped-row.pdf", kind="drop_row"))
    record = process(stack, ACME.read_bytes(), "invoice_of_three", name="dropped-row.pdf")

    assert_valid_record(record)
    assert record["flags"] == ["failed_check:total_matches_lines", "incomplete_list:line_items"]
    assert len(record["fields"]["line_items"]["value"]) == 2
    assert record["fields"]["line_items"]["confidence"] == 1.0  # the scores never noticed
    assert record["checks"][0]["computed"] == 1036.25  # 1,236.25 less the 200.00 row


def test_cells_scored_one_by_one_reach_the_record_with_their_own_boxes(stack, emulator):
    stack.emulator.config.nested_scores = "per_item"
    try:
        record = process(stack, ACME.read_bytes(), "invoice", name="per-item-acme.pdf")
    finally:
        stack.emulator.config.nested_scores = "array"

    assert_valid_record(record)
    assert record["review_status"] == "auto"
    line_items = record["fields"]["line_items"]
    assert line_items["score"] is None  # only the cells were scored
    amounts = [row["amount"] for row in line_items["items"]]
    assert [a["value"] for a in amounts] == [500, 450, 200]
    assert all(a["score"] == 5 and a["page"] == 0 for a in amounts)
    tops = [a["bbox"]["y"] for a in amounts]
    assert tops == sorted(tops)
    assert len(set(tops)) == 3  # each on its own row's line


# ------------------------------------------------------------------ transient faults are retried


@pytest.mark.parametrize("kind", ["poll_500", "poll_529", "poll_drop", "poll_429"])
def test_transient_poll_faults_are_retried_by_the_state_machine(stack, emulator, kind):
    name = f"transient-{kind}.pdf"
    emulator.add_fault(FaultRule(match=name, kind=kind, times=2))
    record = process(stack, ACME.read_bytes(), "invoice", name=name)

    assert record["status"] == "complete"
    assert record["review_status"] == "auto"
    assert emulator.stats["faults_injected"] >= 2


def test_a_rate_limited_submit_is_redelivered_not_lost(stack, emulator):
    emulator.add_fault(FaultRule(match="submit-429.pdf", kind="submit_429", times=2))
    record = process(stack, ACME.read_bytes(), "invoice", name="submit-429.pdf")
    assert record["status"] == "complete"
    assert record["review_status"] == "auto"


def test_a_submit_that_keeps_failing_is_recorded_on_its_last_delivery(stack, emulator):
    emulator.add_fault(FaultRule(match="submit-500.pdf", kind="submit_500"))
    record = process(stack, ACME.read_bytes(), "invoice", name="submit-500.pdf")
    assert record["status"] == "failed"
    assert record["flags"] == ["extraction_failed:datalab_server_error"]


def test_a_bad_key_is_refused_by_datalab_auth_and_recorded(stack, emulator):
    emulator.add_fault(FaultRule(match="auth.pdf", kind="auth"))
    record = process(stack, ACME.read_bytes(), "invoice", name="auth.pdf")
    assert record["flags"] == ["extraction_failed:datalab_auth"]
    assert stack.datalab_api_key not in json.dumps(record)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("body", "doc_type", "name", "reason"),
    [
        (b"", "invoice", "empty.pdf", "empty_file"),
        (b"plain text", "invoice", "notes.txt", "unsupported_type"),
        (b"MZ\x90\x00not a pdf at all", "invoice", "renamed.pdf", "unsupported_type"),
        (ACME.read_bytes(), "purchase_order", "no-schema.pdf", "schema_missing"),
        (ACME.read_bytes(), "broken", "broken-schema.pdf", "schema_invalid"),
    ],
)
def test_bad_input_ends_as_a_failed_record(stack, emulator, body, doc_type, name, reason):
    stack.put_schema("broken", b"{not json")
    submits_before = emulator.stats["submit"]
    record = process(stack, body, doc_type, name=name)

    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["flags"] == [f"extraction_failed:{reason}"]
    assert record["document_type"] == doc_type
    assert emulator.stats["submit"] == submits_before  # nothing was sent to Datalab
    assert len(review_messages_for(stack, record["document_id"])) == 1


def test_an_invalid_upload_threshold_is_a_clear_failure(stack, emulator):
    record = process(
        stack,
        ACME.read_bytes(),
        "invoice",
        name="bad-threshold.pdf",
        metadata={"human-review-threshold": "high"},
    )
    assert record["flags"] == ["extraction_failed:invalid_threshold"]
    assert "high" in record["error"]["message"]


def test_an_upload_threshold_of_one_forces_review(stack, emulator):
    record = process(
        stack,
        ACME.read_bytes(),
        "invoice",
        name="threshold-one.pdf",
        metadata={"human-review-threshold": "1.0"},
    )
    assert record["human_review_threshold"] == 1.0
    assert record["review_status"] == "needs_review"
    assert all(f.startswith("low_confidence") for f in record["flags"])


def test_keys_with_spaces_plus_percent_and_non_ascii(stack, emulator):
    name = "ACME invoice +50% résumé.pdf"
    record = process(stack, ACME.read_bytes(), "invoice", name=name)
    assert record["source"]["key"] == f"incoming/invoice/{name}"
    assert record["review_status"] == "auto"


def test_a_duplicate_event_starts_nothing_new(stack, emulator):
    uploaded = stack.upload(ACME.read_bytes(), "invoice", name="duplicate.pdf")
    first = stack.wait_for_records([uploaded["document_id"]], timeout=60)
    assert first
    submits = emulator.stats["submit"]
    # Replay the same S3 event, as SQS would on a redelivery.
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key=uploaded["key"])
    event = {
        "Records": [
            {
                "s3": {
                    "bucket": {"name": stack.bucket},
                    "object": {
                        "key": uploaded["key"].replace(" ", "+"),
                        "size": head["ContentLength"],
                        "eTag": head["ETag"].strip('"'),
                        "versionId": uploaded["version_id"],
                    },
                }
            }
        ]
    }
    result, errored = stack.invoke(
        "SubmitFunction",
        {
            "Records": [
                {
                    "messageId": "m1",
                    "receiptHandle": "r1",
                    "body": json.dumps(event),
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "eventSource": "aws:sqs",
                }
            ]
        },
    )
    assert not errored
    assert result == {"batchItemFailures": []}
    assert emulator.stats["submit"] == submits
    assert stack.record(uploaded["document_id"]) == first[uploaded["document_id"]]


def test_s3_test_events_and_malformed_messages(stack, emulator):
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": stack.bucket}
    result, errored = stack.invoke(
        "SubmitFunction",
        {
            "Records": [
                {
                    "messageId": "ok",
                    "receiptHandle": "r",
                    "body": json.dumps(test_event),
                    "attributes": {"ApproximateReceiveCount": "1"},
                },
                {
                    "messageId": "bad",
                    "receiptHandle": "r",
                    "body": "{not json",
                    "attributes": {"ApproximateReceiveCount": "1"},
                },
            ]
        },
    )
    assert not errored
    assert result == {"batchItemFailures": [{"itemIdentifier": "bad"}]}


def _sqs_message(message_id, body, receive_count=1):
    return {
        "messageId": message_id,
        "receiptHandle": f"receipt-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "eventSource": "aws:sqs",
    }


def _sqs_event(message_id, body, receive_count=1):
    return {"Records": [_sqs_message(message_id, body, receive_count)]}


def _s3_record(stack, event_name, key):
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {
            "bucket": {"name": stack.bucket},
            "object": {"key": key, "size": 1711, "eTag": "599a38471f80908d5575cb8e62a00a2f"},
        },
    }


def _emf_metrics(stack, name):
    lines = list(stack.metric_lines)  # a copy: handlers (the webhook's too) append meanwhile
    return sum(1 for line in lines if f'"{name}"' in line and '"Doctriage"' in line)


@pytest.mark.parametrize(
    "event_name",
    ["ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated", "ObjectRestore:Completed"],
)
def test_s3_events_other_than_object_created_are_skipped(stack, emulator, event_name):
    # GIVEN a bucket notification wider than s3:ObjectCreated:* (a misconfiguration)
    key = f"incoming/invoice/{event_name.replace(':', '-')}.pdf"
    [record] = [_s3_record(stack, event_name, key)]
    document_id = document_id_for(stack.bucket, key, None, record["s3"]["object"]["eTag"])
    submits, skipped = emulator.stats["submit"], _emf_metrics(stack, "NonUploadEventsSkipped")
    # WHEN its event reaches submit
    result, errored = stack.invoke(
        "SubmitFunction", _sqs_event(f"m-{event_name}", json.dumps({"Records": [record]}))
    )
    # THEN it is acknowledged and counted, and nothing else happens: no record, no Datalab call
    assert not errored
    assert result == {"batchItemFailures": []}
    assert stack.record(document_id) is None
    assert emulator.stats["submit"] == submits
    assert _emf_metrics(stack, "NonUploadEventsSkipped") == skipped + 1


def test_an_s3_console_folder_marker_is_skipped_not_recorded(stack, emulator):
    # GIVEN the S3 console's "Create folder": a 0-byte object whose key ends with "/"
    key = "incoming/invoice/2027/"
    skipped, submits = _emf_metrics(stack, "FolderMarkersSkipped"), emulator.stats["submit"]
    put = stack.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=b"")
    # WHEN its notification reaches submit (through the bucket and the intake queue)
    deadline = time.monotonic() + 30
    while _emf_metrics(stack, "FolderMarkersSkipped") == skipped:
        assert time.monotonic() < deadline, "the folder marker was never skipped"
        time.sleep(0.05)
    # THEN it is counted and nothing else: no record, no review message, no Datalab call
    document_id = document_id_for(stack.bucket, key, put.get("VersionId"), put["ETag"].strip('"'))
    assert stack.record(document_id) is None
    assert review_messages_for(stack, document_id) == []
    assert emulator.stats["submit"] == submits


def test_an_object_created_record_beside_a_removed_one_is_still_submitted(stack, emulator):
    uploaded = stack.upload(ACME.read_bytes(), "invoice", name="created-beside-removed.pdf")
    stack.wait_for_records([uploaded["document_id"]], timeout=60)
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key=uploaded["key"])
    created = _s3_record(stack, "ObjectCreated:Put", uploaded["key"].replace(" ", "+"))
    created["s3"]["object"].update(eTag=head["ETag"].strip('"'), versionId=uploaded["version_id"])
    removed = _s3_record(stack, "ObjectRemoved:Delete", "incoming/invoice/removed-beside.pdf")
    removed_id = document_id_for(stack.bucket, removed["s3"]["object"]["key"], None, "x")
    result, errored = stack.invoke(
        "SubmitFunction", _sqs_event("m-mixed", json.dumps({"Records": [removed, created]}))
    )
    assert not errored
    assert result == {"batchItemFailures": []}
    # The upload was recognised (a duplicate of the one already processed); the removal ignored.
    assert stack.record(uploaded["document_id"])["status"] == "complete"
    assert stack.record(removed_id) is None


def test_a_malformed_intake_message_is_logged_once_and_still_goes_to_the_dlq(stack, capsys):
    body = "not an S3 event " + "z" * 5000
    message_id = "malformed-once"
    capsys.readouterr()
    # GIVEN the same malformed message delivered three times
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    for receive_count in (1, 2, 3):
        # (beside a good message: powertools fails the whole invocation when every record fails)
        batch = [_sqs_message("fine", test_event), _sqs_message(message_id, body, receive_count)]
        result, errored = stack.invoke("SubmitFunction", {"Records": batch})
        # THEN every delivery is reported failed, so it uses up its deliveries into the DLQ
        assert not errored
        assert result == {"batchItemFailures": [{"itemIdentifier": message_id}]}
    logged = [
        json.loads(line)
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("{") and message_id in line
    ]
    # AND it was logged once, at ERROR, with its id and a clipped body
    assert len(logged) == 1, logged
    [entry] = logged
    assert entry["level"] == "ERROR"
    assert entry["message_id"] == message_id
    assert entry["body"].startswith("not an S3 event")
    assert len(entry["body"]) <= 200
    assert entry["body_length"] == len(body)
    assert "z" * 300 not in json.dumps(entry)
