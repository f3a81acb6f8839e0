"""A retried Evaluate never changes a decision: written once, delivered at least once.

Step Functions may run a task twice (a Lambda retry after a timeout that in fact succeeded, a
redrive). The second run reads the same raw result but could decide differently (here: another
threshold); the stored record must stay as it was and the review message must be sent again.
"""

from __future__ import annotations

import json
from typing import Any

from doctriage_core.domain.evaluation import evaluate_extraction
from doctriage_local.paths import SAMPLES
from tests.contracts import assert_valid_record, assert_valid_review_message
from tests.integration.helpers import process, review_messages_for

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


def _evaluate_input(stack: Any, document_id: str) -> dict[str, Any]:
    """The exact input the state machine gave the Evaluate Fields task."""
    events = stack.execution_history(document_id)
    entered = [
        e["stateEnteredEventDetails"]
        for e in events
        if e["type"] == "TaskStateEntered"
        and e["stateEnteredEventDetails"]["name"] == "Evaluate Fields"
    ]
    assert len(entered) == 1, [e["type"] for e in events]
    state: dict[str, Any] = json.loads(entered[0]["input"])
    return state


def test_a_retried_evaluate_keeps_the_record_and_resends_the_review_message(stack):
    # An upload threshold of 1.0 forces review of a document that is otherwise auto.
    record = process(
        stack,
        ACME.read_bytes(),
        "invoice",
        name="evaluate-retry.pdf",
        metadata={"human-review-threshold": "1.0"},
    )
    document_id = record["document_id"]
    assert_valid_record(record)
    assert record["review_status"] == "needs_review"
    assert record["human_review_threshold"] == 1.0
    assert record["flags"]
    assert all(f.startswith("low_confidence") for f in record["flags"])
    assert len(review_messages_for(stack, document_id)) == 1

    execution = stack.finished_execution(document_id)
    assert execution["status"] == "SUCCEEDED"
    state = _evaluate_input(stack, document_id)
    assert state["document"]["document_id"] == document_id
    assert state["upload_threshold"] == 1.0
    assert state["poll"]["ready"] is True
    assert state["poll"]["result_key"] == record["datalab"]["result_key"]

    # The retry decides with threshold 0.0: on the same raw result that would be auto.
    retry_state = {**state, "upload_threshold": 0.0}
    s3 = stack.client("s3")
    raw = json.loads(
        s3.get_object(Bucket=stack.bucket, Key=state["poll"]["result_key"])["Body"].read()
    )
    schema = json.loads(
        s3.get_object(Bucket=stack.bucket, Key=state["schema"]["key"])["Body"].read()
    )
    counterfactual = evaluate_extraction(
        schema,
        raw,
        upload_doc_type="invoice",
        default_threshold=0.85,
        upload_threshold=0.0,
        scores_available=bool(state["poll"]["scored"]),
    )
    assert counterfactual.review_status == "auto"
    assert counterfactual.flags == []

    invocations = stack.invocations.get("EvaluateFunction", 0)
    summary, errored = stack.invoke("EvaluateFunction", retry_state)
    assert not errored, summary
    assert stack.invocations["EvaluateFunction"] == invocations + 1
    assert summary == {
        "document_id": document_id,
        "status": "complete",
        "review_status": "needs_review",
        "flags": record["flags"],
        "cost_cents": record["datalab"]["cost_cents"],
    }

    assert stack.record(document_id) == record  # unchanged, field for field
    messages = review_messages_for(stack, document_id)
    assert len(messages) == 2
    for message in messages:
        assert_valid_review_message(message)
        flagged = message.pop("flagged_paths")  # what the reviewer decides: the flags' paths
        assert flagged == sorted({f.split(":", 1)[1] for f in record["flags"] if ":" in f})
        assert message == {**record, "schema_version": "1", "audit": False}
