"""Each handler imported and called directly with its events/*.json, as Lambda would call it.

Inside a running local stack (it sets the template's environment and hosts the resources) and
as the function's own role (doctriage_local.stack.iam.acting_as), so IAM is enforced as in AWS. The
context is a fake LambdaContext, as in powertools' examples/batch_processing tests.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from doctriage_core import errors, runtime
from doctriage_core.domain.documents import document_id_for
from doctriage_local.paths import EVENTS, SAMPLES
from doctriage_local.stack import iam


@dataclass
class LambdaContext:
    function_name: str = "test"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id: str = "da658bd3-2d6f-4e7b-8ec2-937234644fdc"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def _call(stack: Any, logical_id: str, event: Any, context: LambdaContext) -> Any:
    """functions.<name>.app.lambda_handler(event, context), signed as the function's role."""
    module = importlib.import_module(f"functions.{logical_id.removesuffix('Function').lower()}.app")
    (role,) = {f.role for f in stack.functions.values() if f.logical_id == logical_id}
    with iam.acting_as(stack.role_credentials[role]):
        return module.lambda_handler(event, context)


def _put_the_object_submit_json_announces(stack: Any) -> str:
    (message,) = _event("submit.json")["Records"]
    (record,) = json.loads(message["body"])["Records"]
    key = unquote_plus(record["s3"]["object"]["key"])
    etag = record["s3"]["object"]["eTag"]
    sample = next(
        p for p in SAMPLES.glob("*/*.pdf") if p.stat().st_size == record["s3"]["object"]["size"]
    )
    put = stack.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=sample.read_bytes())
    # The upload itself starts a pipeline too (as its own document, by its version): let it end
    # here, so that no later test's settings reset lands on its handlers mid-run.
    uploaded = document_id_for(stack.bucket, key, put.get("VersionId"), put.get("ETag"))
    assert stack.wait_for_records([uploaded], timeout=60), "the upload's own pipeline never ended"
    return document_id_for(stack.bucket, key, None, etag)


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


def test_submit_event_starts_one_workflow_and_a_redelivery_starts_none(stack, lambda_context):
    # GIVEN the upload submit.json announces
    document_id = _put_the_object_submit_json_announces(stack)
    # WHEN the handler gets the event, twice (SQS delivers at least once)
    first = _call(stack, "SubmitFunction", _event("submit.json"), lambda_context)
    second = _call(stack, "SubmitFunction", _event("submit.json"), lambda_context)
    # THEN both succeed and one workflow runs to one record
    assert first == second == {"batchItemFailures": []}
    assert stack.finished_execution(document_id)["status"] == "SUCCEEDED"
    assert [e["name"] for e in stack.executions()].count(document_id) == 1
    assert stack.record(document_id)["status"] == "complete"


def test_a_malformed_message_fails_its_batch_for_the_dlq(stack, lambda_context):
    # GIVEN a one-message batch whose body is not an S3 event
    event = _event("submit.json")
    event["Records"][0]["body"] = "not an S3 event"
    # WHEN submit handles it THEN the whole batch failed: powertools raises, SQS redelivers it
    # (made visible again at once) until it lands in the DLQ
    with pytest.raises(BatchProcessingError, match="All records failed"):
        _call(stack, "SubmitFunction", event, lambda_context)


def test_poll_event_for_a_request_datalab_does_not_know_fails_by_class(stack, lambda_context):
    # GIVEN poll.json pointed at this stack's Datalab, with a request it never saw
    event = _event("poll.json")
    event["datalab"]["check_url"] = f"{stack.emulator.url}/api/v1/extract/never-submitted"
    # WHEN the poll handler runs THEN the error's class is the name the ASL matches
    with pytest.raises(errors.DatalabResultExpired):
        _call(stack, "PollFunction", event, lambda_context)


def test_evaluate_failure_event_records_the_failure(stack, lambda_context):
    event = _event("evaluate-failure.json")
    summary = _call(stack, "EvaluateFunction", event, lambda_context)
    assert summary == {
        "document_id": event["document"]["document_id"],
        "status": "failed",
        "review_status": "needs_review",
        "flags": ["extraction_failed:result_expired"],
        "cost_cents": None,
    }


def test_submit_without_its_idempotency_table_refuses_to_run(
    stack, lambda_context, monkeypatch, fresh_settings
):
    # Idempotency never switches itself off: tests that want it off say
    # POWERTOOLS_IDEMPOTENCY_DISABLED=true.
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    with pytest.raises(errors.ConfigError, match="IDEMPOTENCY_TABLE"):
        _call(stack, "SubmitFunction", _event("submit.json"), lambda_context)


def test_evaluate_needs_none_of_submits_settings(
    stack, lambda_context, monkeypatch, fresh_settings
):
    for name in ("IDEMPOTENCY_TABLE", "STATE_MACHINE_ARN", "INTAKE_QUEUE_URL", "DATALAB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    summary = _call(stack, "EvaluateFunction", _event("evaluate-failure.json"), lambda_context)
    assert summary["status"] == "failed"
