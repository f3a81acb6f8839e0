"""Webhook-assisted waiting through the local stack: the emulator POSTs Datalab's webhook to the
webhook function's URL on 127.0.0.1, which ends the workflow's wait (issue 15, items 1-2).

Its own stack: a slower time scale than the other modules', so that the webhook wait (120 s of
pipeline time at least) leaves a test time to act on a waiting execution.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from doctriage_local.emulator import EmulatorConfig, FaultRule
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import StackOptions
from tests.contracts import assert_valid_record
from tests.integration.helpers import process, stack_with_sample_schemas

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
SCALE = 0.05  # 120 s of pipeline time: 6 s here
SECRET = "emulator-webhook-secret"


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(
        time_scale=SCALE,
        # "long-" documents take 62 s at Datalab: a poll loop would check them several times.
        emulator=EmulatorConfig(claimed_pages={"long-": 60}, webhook_secret=SECRET),
        parameters={"AuditSampleRate": 0},
    )
    with stack_with_sample_schemas(options) as running:
        yield running


def _webhook_url(stack: Any) -> str:
    return str(stack.resources.resolve({"Fn::GetAtt": ["WebhookFunctionUrl", "FunctionUrl"]}))


def _post(stack: Any, body: dict[str, Any]) -> tuple[int, str]:
    request = Request(
        _webhook_url(stack),
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except HTTPError as exc:
        return exc.code, exc.read().decode()


def _item(stack: Any, request_id: str) -> dict[str, Any]:
    table = stack.physical["WebhookTable"]
    item = stack.client("dynamodb").get_item(
        TableName=table, Key={"request_id": {"S": request_id}}, ConsistentRead=True
    )
    return dict(item.get("Item", {}))


def _request_of(stack: Any, filename: str) -> str:
    [request_id] = [r for r, f in stack.emulator.stats["submissions"] if f == filename]
    return str(request_id)


def _waiting_request(stack: Any, filename: str, timeout: float = 20.0) -> str:
    """The request id of ``filename`` once its workflow waits on the webhook (token stored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        submitted = [r for r, f in stack.emulator.stats["submissions"] if f == filename]
        if submitted and "task_token" in _item(stack, submitted[0]):
            return str(submitted[0])
        time.sleep(0.02)
    raise TimeoutError(f"{filename}: no workflow waited on its webhook within {timeout} s")


def _checks(stack: Any) -> int:
    return int(stack.emulator.stats["check"])


def test_the_webhook_ends_the_wait_with_fewer_datalab_requests(stack, emulator):
    # GIVEN a 60-page document (62 s at Datalab) and webhooks on (the emulator's secret)
    checks, delivered = _checks(stack), stack.emulator.stats["webhooks_delivered"]
    # WHEN it goes through the pipeline
    record = process(stack, ACME.read_bytes(), "invoice", name="long-webhook.pdf")
    # THEN Datalab's webhook ended the wait: no poll while processing, only the score polls
    assert_valid_record(record)
    assert (record["status"], record["review_status"]) == ("complete", "auto")
    states = stack.states_entered(record["document_id"])
    assert "Wait For Processing" not in states
    assert states[:3] == ["Webhook Expected?", "Wait For Webhook", "Wait For Scores"]
    assert stack.emulator.stats["webhooks_delivered"] == delivered + 1
    webhook_checks = _checks(stack) - checks
    assert webhook_checks <= 2  # the score poll (and, scored at once, one fetch for the bill)
    assert record["datalab"]["cost_cents"] == 36.0  # 60 pages at 0.6 cent

    # AND without webhooks (the secret set back to "unset") the same document is polled more
    secrets = stack.client("secretsmanager")
    secrets.put_secret_value(SecretId=stack.physical["WebhookSecret"], SecretString="unset")
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # what the 5-minute cache does in Lambda
    try:
        checks = _checks(stack)
        polled = process(stack, ACME.read_bytes(), "invoice", name="long-polled.pdf")
        assert "Wait For Webhook" not in stack.states_entered(polled["document_id"])
        assert _checks(stack) - checks >= webhook_checks + 2
    finally:
        secrets.put_secret_value(SecretId=stack.physical["WebhookSecret"], SecretString=SECRET)
        parameters.clear_caches()


def test_a_lost_webhook_falls_back_to_polling(stack, emulator):
    # GIVEN Datalab never sends this document's webhook
    emulator.add_fault(FaultRule(match="lost-", kind="webhook_lost"))
    # WHEN it goes through the pipeline
    record = process(stack, ACME.read_bytes(), "invoice", name="lost-webhook.pdf")
    # THEN the wait timed out into the poll loop and the document is recorded all the same
    assert_valid_record(record)
    assert (record["status"], record["review_status"]) == ("complete", "auto")
    history = stack.execution_history(record["document_id"])
    assert any(e["type"] == "TaskTimedOut" for e in history)
    states = stack.states_entered(record["document_id"])
    assert states[:3] == ["Webhook Expected?", "Wait For Webhook", "Check Extraction"]
    assert stack.emulator.stats["webhooks_lost"] >= 1


def test_forged_unknown_and_duplicate_webhooks_change_nothing(stack, emulator):
    # GIVEN a workflow waiting on a webhook that Datalab will not send by itself
    emulator.add_fault(FaultRule(match="forged-", kind="webhook_lost"))
    uploaded = stack.upload(ACME.read_bytes(), "invoice", name="forged-webhook.pdf")
    request_id = _waiting_request(stack, "forged-webhook.pdf")
    waiting = _item(stack, request_id)
    genuine = {"request_id": request_id, "request_check_url": "x", "webhook_secret": SECRET}

    # WHEN a webhook comes with the wrong secret, with none, or for a request never sent
    forged = _post(stack, {**genuine, "webhook_secret": SECRET + "x"})
    no_secret = _post(stack, {"request_id": request_id})
    unknown = _post(stack, {**genuine, "request_id": "never-sent"})
    # THEN each is refused, and nothing changed: the workflow still waits
    assert (forged[0], no_secret[0], unknown[0]) == (401, 401, 403)
    assert _item(stack, request_id) == waiting
    assert _item(stack, "never-sent") == {}
    assert stack.states_entered(uploaded["document_id"])[-1] == "Wait For Webhook"

    # WHEN the genuine webhook comes, THEN it ends the wait (long before the timeout)
    assert _post(stack, genuine) == (200, "accepted")
    arrived = _item(stack, request_id)
    assert "completed_at" in arrived
    # AND a duplicate gets 200 and changes nothing
    assert _post(stack, genuine) == (200, "duplicate")
    assert _item(stack, request_id) == arrived
    records = stack.wait_for_records([uploaded["document_id"]], timeout=60)
    record = records[uploaded["document_id"]]
    assert record["review_status"] == "auto"
    history = stack.execution_history(uploaded["document_id"])
    assert not any(e["type"] == "TaskTimedOut" for e in history)
    assert "Wait For Scores" in stack.states_entered(uploaded["document_id"])
