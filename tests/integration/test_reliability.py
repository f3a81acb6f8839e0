"""Nothing lost: bad events, vanished objects, hung and refused connections, malformed messages."""

from __future__ import annotations

import json
import time

from doctriage_local.emulator import FaultRule
from doctriage_local.paths import SAMPLES
from tests.contracts import assert_valid_record
from tests.integration.helpers import process

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


def _sqs_event(stack, key: str, *, version_id=None, etag="0" * 32, size=100):
    body = {
        "Records": [
            {
                "s3": {
                    "bucket": {"name": stack.bucket},
                    "object": {
                        "key": key,
                        "size": size,
                        "eTag": etag,
                        **({"versionId": version_id} if version_id else {}),
                    },
                }
            }
        ]
    }
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "eventSource": "aws:sqs",
            }
        ]
    }


def _submit_and_read(stack, key, **kwargs):
    from doctriage_core.domain.documents import decode_event_key, document_id_for

    result, errored = stack.invoke("SubmitFunction", _sqs_event(stack, key, **kwargs))
    assert not errored
    assert result == {"batchItemFailures": []}
    document_id = document_id_for(
        stack.bucket, decode_event_key(key), kwargs.get("version_id"), kwargs.get("etag", "0" * 32)
    )
    record = stack.record(document_id)
    assert record is not None
    assert_valid_record(record)
    return record


def test_an_object_deleted_before_submit_is_recorded_as_missing(stack, emulator):
    uploaded = stack.upload(ACME.read_bytes(), "invoice", name="deleted-soon.pdf")
    stack.wait_for_records([uploaded["document_id"]], timeout=60)
    stack.client("s3").delete_object(
        Bucket=stack.bucket, Key=uploaded["key"], VersionId=uploaded["version_id"]
    )
    record = _submit_and_read(stack, "incoming/invoice/deleted-soon.pdf", etag="f" * 32)
    assert record["flags"] == ["extraction_failed:object_missing"]


def test_a_key_outside_incoming_is_recorded_as_a_bad_key(stack, emulator):
    record = _submit_and_read(stack, "uploads/invoice/stray.pdf")
    assert record["flags"] == ["extraction_failed:bad_key"]
    assert record["source"]["key"] == "uploads/invoice/stray.pdf"


def test_a_hung_datalab_response_times_out_and_is_retried(stack, emulator):
    # The client gives up after DATALAB_TIMEOUT_SECONDS (2 s); the hang lasts 5 s of wall time.
    emulator.add_fault(FaultRule(match="hung.pdf", kind="poll_timeout", times=1, hang_seconds=500))
    record = process(stack, ACME.read_bytes(), "invoice", name="hung.pdf")
    assert record["status"] == "complete"
    assert record["review_status"] == "auto"


def test_a_malformed_intake_message_lands_in_the_dead_letter_queue(stack, emulator):
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.physical["IntakeQueue"], MessageBody="{not an s3 event")
    dlq = stack.physical["IntakeDeadLetterQueue"]
    deadline = time.monotonic() + 30
    bodies: list[str] = []
    while time.monotonic() < deadline and not bodies:
        messages = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
        bodies = [m["Body"] for m in messages]
    assert bodies == ["{not an s3 event"]
