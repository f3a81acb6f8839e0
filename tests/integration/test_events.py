"""Every file in events/ runs through its handler on the local stack and does what it claims.

The events are what `doctriage invoke` and `sam local invoke` are fed, so they must keep the shapes
the pipeline really produces: each state event is compared with the input the state machine gave
the same function in a real execution, and env.json with the environment template.yaml declares.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote_plus, urlsplit

import pytest

from doctriage_core.domain.documents import document_id_for
from doctriage_local.cli.options import UP_DATALAB_PORT, UP_PORT
from doctriage_local.emulator import FaultRule
from doctriage_local.paths import EVENTS, SAMPLES
from doctriage_local.stack import PREFIX
from doctriage_local.template import (
    function_properties,
    load_template,
    parameter_defaults,
    resolve,
    resources_of_type,
)
from tests.contracts import assert_valid_record, assert_valid_review_message
from tests.integration.helpers import process, review_messages_for

STATE_EVENTS = {  # file -> the function that takes it
    "submit.json": "SubmitFunction",
    "poll.json": "PollFunction",
    "evaluate.json": "EvaluateFunction",
    "evaluate-failure.json": "EvaluateFunction",
    "webhook.json": "WebhookFunction",
}


def _load(name):
    return json.loads((EVENTS / name).read_text())


def _md5(data):
    return hashlib.md5(data).hexdigest()  # S3's ETag of a single-part upload


def _sample_with_md5(etag):
    matches = [p for p in SAMPLES.glob("*/*.pdf") if _md5(p.read_bytes()) == etag]
    assert matches, f"no sample under {SAMPLES} has the MD5 {etag} the event names"
    return matches[0]


def _shape(value):
    """The nested key structure of a JSON value (leaf values and types left out)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return None


def _lambda_inputs(stack, document_id, logical_id):
    """The inputs the state machine gave one function, in order, from the execution history."""
    function_arn = stack.arns[logical_id]
    history = stack.execution_history(document_id)
    return [
        json.loads(event["lambdaFunctionScheduledEventDetails"]["input"])
        for event in history
        if event["type"] == "LambdaFunctionScheduled"
        and event["lambdaFunctionScheduledEventDetails"]["resource"] == function_arn
    ]


def _invoke(stack, logical_id, event):
    result, errored = stack.invoke(logical_id, event)
    assert not errored, f"{logical_id} raised: {result}"
    return result


def test_events_holds_exactly_the_events_these_tests_invoke():
    names = {p.name for p in EVENTS.glob("*.json")} - {"env.json"}
    assert names == set(STATE_EVENTS), "a new event file needs a check in this module"
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    assert set(STATE_EVENTS.values()) <= set(functions)


def test_submit_poll_and_evaluate_events_take_one_document_to_its_record(stack, emulator):
    submit_event = _load("submit.json")
    poll_event = _load("poll.json")
    evaluate_event = _load("evaluate.json")
    (message,) = submit_event["Records"]
    assert message["md5OfBody"] == _md5(message["body"].encode())
    (s3_record,) = json.loads(message["body"])["Records"]
    bucket = s3_record["s3"]["bucket"]["name"]
    key = unquote_plus(s3_record["s3"]["object"]["key"])
    etag = s3_record["s3"]["object"]["eTag"]
    assert bucket == stack.bucket
    assert message["eventSourceARN"] == stack.arns["IntakeQueue"]

    # The object the event announces, byte for byte: its ETag (MD5) is part of the document id.
    body = _sample_with_md5(etag).read_bytes()
    assert s3_record["s3"]["object"]["size"] == len(body)
    put = stack.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    assert put["ETag"].strip('"') == etag
    # No versionId in the event (it works against any upload of that key): the id is the ETag's.
    document_id = document_id_for(bucket, key, None, etag)
    # The state events name documents of their own, never submit.json's nor a real upload's (a
    # real upload has a version id): invoking them cannot overwrite a real document's record.
    assert key.startswith("incoming/invoice/events/")
    for event in (poll_event, evaluate_event):
        document = event["document"]
        assert document["key"].startswith("incoming/invoice/events/")
        assert document["key"] != key
        assert document["version_id"] is None
        assert document["document_id"] == document_id_for(
            bucket, document["key"], None, document["etag"]
        )
        assert {k: document[k] for k in ("bucket", "etag", "size")} == {
            "bucket": bucket,
            "etag": etag,
            "size": len(body),
        }
    assert evaluate_event["poll"]["result_key"] == (
        f"results/{evaluate_event['document']['document_id']}/datalab-result.json"
    )

    # submit.json: accepted, and the document's workflow runs to its record.
    assert _invoke(stack, "SubmitFunction", submit_event) == {"batchItemFailures": []}
    execution = stack.finished_execution(document_id)
    assert execution["status"] == "SUCCEEDED"
    record = stack.record(document_id)
    assert record is not None
    assert record["source"]["key"] == key

    # poll.json and evaluate.json have the shapes of the inputs the state machine really gave.
    real_poll_inputs = _lambda_inputs(stack, document_id, "PollFunction")
    real_evaluate_inputs = _lambda_inputs(stack, document_id, "EvaluateFunction")
    assert real_poll_inputs
    assert len(real_evaluate_inputs) == 1
    # The events are of a workflow without webhooks; here they were on (the emulator's secret),
    # which adds the webhook's keys: the poll and evaluate steps read none of them.
    assert "webhook_wait_seconds" in real_poll_inputs[0]
    assert _shape(poll_event) == _shape(_without_webhook(real_poll_inputs[0]))
    assert _shape(evaluate_event) == _shape(_without_webhook(real_evaluate_inputs[0]))

    # poll.json, pointed at submit.json's document and the Datalab request submit made (the
    # file's are made-up ones).
    datalab = real_poll_inputs[0]["datalab"]
    for event in (poll_event, evaluate_event):
        event["document"].update(document_id=document_id, key=key)
    poll_event["datalab"] = datalab
    status = _invoke(stack, "PollFunction", poll_event)
    assert status["ready"] is True
    assert status["scored"] is True
    assert status["next_wait_seconds"] == 0
    assert status["result_key"] == f"results/{document_id}/datalab-result.json"
    stored = json.loads(
        stack.client("s3").get_object(Bucket=bucket, Key=status["result_key"])["Body"].read()
    )
    assert stored["status"] == "complete"

    # evaluate.json writes the record: drop the workflow's copy first so this one is the writer.
    stack.client("dynamodb").delete_item(
        TableName=stack.physical["ResultsTable"], Key={"document_id": {"S": document_id}}
    )
    evaluate_event["datalab"] = evaluate_event["poll"]["datalab"] = datalab
    evaluate_event["poll"]["result_key"] = status["result_key"]
    summary = _invoke(stack, "EvaluateFunction", evaluate_event)
    assert summary == {
        "document_id": document_id,
        "status": "complete",
        "review_status": "auto",
        "flags": [],
        "cost_cents": 1.0,  # as the event's poll status says
    }
    record = stack.record(document_id)
    assert record is not None
    assert_valid_record(record)
    assert record["datalab"] == {
        "request_id": datalab["request_id"],
        "result_key": status["result_key"],
        "submissions": 1,
        "cost_cents": 1.0,
        "page_count": 1,
    }
    assert record["source"]["version_id"] is None  # as the event says
    assert record["fields"]["invoice_number"]["value"] == "INV-1042"


def test_evaluate_failure_event_matches_a_real_catch_and_records_the_failure(stack, emulator):
    event = _load("evaluate-failure.json")

    # A real failure of the same kind: Datalab forgets the request (404) once it is complete.
    emulator.add_fault(FaultRule(match="expired-for-events", kind="expire"))
    globex = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"
    real = process(stack, globex.read_bytes(), "invoice", name="expired-for-events.pdf")
    assert real["flags"] == ["extraction_failed:result_expired"]
    stack.finished_execution(real["document_id"])
    real_input = _lambda_inputs(stack, real["document_id"], "EvaluateFunction")[-1]
    # "poll" is there only when an earlier check succeeded, which depends on timing.
    assert _shape({**event, "poll": None}) == _shape({**_without_webhook(real_input), "poll": None})
    assert _shape(event["poll"]) == _shape(
        {
            "ready": 0,
            "scored": 0,
            "phase": 0,
            "polls": 0,
            "phase_polls": 0,
            "next_wait_seconds": 0,
            "datalab": {"request_id": 0, "check_url": 0, "submissions": 0},
        }
    )
    assert event["failure"]["Error"] == real_input["failure"]["Error"] == "DatalabResultExpired"
    cause = json.loads(event["failure"]["Cause"])
    real_cause = json.loads(real_input["failure"]["Cause"])
    assert set(real_cause) <= set(cause)  # real Lambda adds requestId
    assert cause["errorType"] == event["failure"]["Error"]

    # The file's document is self-consistent (its id is what submit would derive).
    document = event["document"]
    assert _sample_with_md5(document["etag"]).stat().st_size == document["size"]
    assert document["document_id"] == document_id_for(
        document["bucket"], document["key"], document["version_id"], document["etag"]
    )

    summary = _invoke(stack, "EvaluateFunction", event)
    assert summary == {
        "document_id": document["document_id"],
        "status": "failed",
        "review_status": "needs_review",
        "flags": ["extraction_failed:result_expired"],
        "cost_cents": None,
    }
    record = stack.record(document["document_id"])
    assert record is not None
    assert_valid_record(record)
    assert record["error"]["type"] == "DatalabResultExpired"
    assert record["error"]["message"] == cause["errorMessage"]
    assert record["datalab"]["request_id"] == event["datalab"]["request_id"]
    assert record["datalab"]["submissions"] == 1
    (message,) = review_messages_for(stack, document["document_id"])
    assert_valid_review_message(message)
    assert message["flags"] == ["extraction_failed:result_expired"]


def _expected_environment(stack, logical_id):
    """What `doctriage up` (default ports) gives the function: template.yaml's variables."""
    variables = function_properties(stack.template, logical_id)["Environment"]["Variables"]

    defaults = parameter_defaults(stack.template)  # `up` runs with the template's defaults

    def ref(name):
        return stack.physical[name] if name in stack.physical else defaults[name]

    def get_att(resource, attribute):
        return stack.resources.resolve({"Fn::GetAtt": [resource, attribute]})

    return resolve(variables, ref, get_att)


def _without_webhook(state: dict[str, Any]) -> dict[str, Any]:
    webhook_keys = {"webhook_wait_seconds", "scores_first_wait_seconds", "webhook"}
    return {k: v for k, v in state.items() if k not in webhook_keys}


@pytest.mark.parametrize(
    "logical_id",
    [
        "SubmitFunction",
        "PollFunction",
        "EvaluateFunction",
        "WebhookFunction",
        "AwaitWebhookFunction",
    ],
)
def test_env_json_sets_each_variable_template_yaml_declares_as_up_does(stack, logical_id):
    env = _load("env.json")
    functions = resources_of_type(stack.template, "AWS::Serverless::Function")
    assert set(env) == set(functions)
    expected = _expected_environment(stack, logical_id)
    # sam local invoke --env-vars only overrides variables the template declares: same names.
    assert set(env[logical_id]) == set(expected)

    for name, value in env[logical_id].items():
        assert isinstance(value, str), name
        wanted = expected[name]
        if name == "DATALAB_API_URL":
            assert value == f"http://127.0.0.1:{UP_DATALAB_PORT}"
        elif name == "AWS_ENDPOINT_URL":  # should the template declare it (docs/local-stack.md)
            assert value == f"http://127.0.0.1:{UP_PORT}"
        elif name == "WEBHOOK_URL":
            # The function URL's port is picked when the stack starts (Datalab, not a function
            # in Docker, is what calls it): only its path is fixed.
            assert urlsplit(value).path == urlsplit(wanted).path
        elif name.endswith("_SECRET_ARN"):
            # The secret's name (its ARN ends in a random suffix); GetSecretValue takes either.
            assert wanted.rsplit(":", 1)[1].startswith(f"{value}-")
            secret = stack.client("secretsmanager").get_secret_value(SecretId=value)
            assert secret["ARN"] == wanted
        elif str(wanted).startswith(("http://", "https://")):  # queue URLs: `up`'s origin
            assert urlsplit(value)._replace(path="").geturl() == f"http://127.0.0.1:{UP_PORT}"
            assert urlsplit(value).path == urlsplit(wanted).path
        else:
            assert value == str(wanted), name


def test_webhook_event_is_what_the_function_url_sends_and_changes_nothing_unregistered(stack):
    event = _load("webhook.json")
    # The shape the stack's function URL gives the handler (and Lambda's, payload format 2.0).
    sent: list[dict] = []
    original = stack.function_urls._invoke

    def recording(name, e):
        sent.append(e)
        return original(name, e)

    stack.function_urls._invoke = recording
    try:
        url = stack.resources.resolve({"Fn::GetAtt": ["WebhookFunctionUrl", "FunctionUrl"]})
        request = urllib.request.Request(url, data=event["body"].encode(), method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
    finally:
        stack.function_urls._invoke = original
    assert refused.value.code == 403  # never registered: refused, after the 2 s grace
    headers = sent[0].pop("headers")
    assert set(event.pop("headers")) <= set(headers)  # a client sends more, as it likes
    assert _shape(sent[0]) == _shape(event)
    assert sent[0]["body"] == event["body"]
    event = _load("webhook.json")
    # Invoked as `doctriage invoke WebhookFunction --event events/webhook.json`: the same answer,
    # and nothing written for the request.
    answer = _invoke(stack, "WebhookFunction", event)
    assert (answer["statusCode"], answer["body"]) == (403, "unknown request")
    item = stack.client("dynamodb").get_item(
        TableName=f"{PREFIX}-WebhookTable", Key={"request_id": {"S": "events-webhook-request"}}
    )
    assert "Item" not in item
