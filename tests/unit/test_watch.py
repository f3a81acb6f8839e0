"""A running execution's stages from its history events (doctriage_local.stack.watch)."""

from __future__ import annotations

import json

import pytest

from doctriage_local.stack.watch import Stage, Watcher, stages_from_history


def entered(name: str) -> dict:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}


def checked(**poll: object) -> dict:
    output = json.dumps({"document": {}, "poll": poll})
    return {
        "type": "TaskStateExited",
        "stateExitedEventDetails": {"name": "Check Extraction", "output": output},
    }


def failed(error: str, message: str) -> dict:
    cause = json.dumps({"errorType": error, "errorMessage": message})
    return {
        "type": "LambdaFunctionFailed",
        "lambdaFunctionFailedEventDetails": {"error": error, "cause": cause},
    }


STARTED = {"type": "ExecutionStarted"}


@pytest.mark.parametrize(
    ("events", "stage"),
    [
        ([STARTED], Stage("submitted")),
        ([STARTED, entered("Wait For Processing")], Stage("submitted")),
        ([STARTED, entered("Check Extraction")], Stage("processing")),
        (
            [entered("Check Extraction"), checked(phase="processing"), entered("Wait")],
            Stage("processing"),
        ),
        (
            [entered("Check Extraction"), checked(phase="unscored"), entered("Wait")],
            Stage("waiting for scores"),
        ),
        (
            [entered("Check Extraction"), checked(phase="processing", rate_limited=2)],
            Stage("rate limited", "429: the next check waits longer"),
        ),
        (
            [entered("Check Extraction"), checked(phase="throttled")],
            Stage("throttled", "Datalab's page-rate limit; resubmitted after a back-off"),
        ),
        (
            [entered("Check Extraction"), checked(phase="billing"), entered("Wait")],
            Stage("waiting for scores", "scored; one fetch more for Datalab's charge"),
        ),
        ([checked(phase="scored"), entered("Evaluate Fields")], Stage("evaluating")),
        ([entered("Record Failure")], Stage("recording failure")),
    ],
)
def test_the_last_stage(events, stage):
    assert stages_from_history(events)[-1] == stage


def test_every_stage_is_kept_however_short():
    # GIVEN the history a look finds after the first wait, the first check and the second
    events = [
        STARTED,
        entered("Wait For Processing"),
        entered("Check Extraction"),
        checked(phase="processing"),
        entered("Wait Before Next Check"),
        entered("Check Extraction"),
        checked(phase="unscored"),
        entered("Wait Before Next Check"),
    ]
    # THEN each stage is there once, in order, the ones no look saw included
    assert [s.name for s in stages_from_history(events)] == [
        "submitted",
        "processing",
        "waiting for scores",
    ]
    # AND a longer history only extends the list
    assert stages_from_history(events[:4]) == stages_from_history(events)[:2]


def test_a_failed_check_is_retrying_until_one_succeeds():
    failing = [
        entered("Check Extraction"),
        failed("DatalabUnreachable", "poll of Datalab failed: ConnectError"),
        {"type": "LambdaFunctionScheduled"},
    ]
    assert stages_from_history(failing)[-1] == Stage(
        "retrying", "DatalabUnreachable: poll of Datalab failed: ConnectError"
    )
    recovered = [*failing, {"type": "LambdaFunctionSucceeded"}, checked(phase="unscored")]
    assert stages_from_history(recovered)[-1] == Stage("waiting for scores")


class FakeStack:
    """What a Watcher reads of a LocalStack: executions, their history, the functions' logs."""

    datalab_api_url = "https://datalab.example"

    def __init__(self, *, window: float = 0, histories: dict | None = None) -> None:
        self.params = {
            "IntakeMaxReceives": 10,
            "SubmitRetryWindowSeconds": window,
            "ProcessingDeadlineSeconds": 1800,
        }
        self.options = type("Options", (), {"time_scale": 1.0})()
        self.histories = histories or {}
        self.lambda_ = type("Lambda", (), {"log_lines": []})()

    def executions(self):
        return [{"name": name, "executionArn": name} for name in self.histories]

    def history(self, execution_arn):
        return self.histories[execution_arn]


def retry_line(document_id: str, reason: str, error: str) -> dict:
    return {"correlation_id": document_id, "redelivery_in_seconds": 30, "reason": reason,
            "error": error}  # fmt: skip


def test_an_unreachable_datalab_at_submit_is_said_once_with_how_long_submit_retries():
    stack = FakeStack(window=0)
    stack.lambda_.log_lines.append(
        retry_line(
            "doc-1", "datalab_unreachable", "submit to Datalab failed: ConnectError: refused"
        )
    )
    watcher = Watcher(stack)

    first = watcher.observe(["doc-1"])
    assert first.stages == {"doc-1": [Stage("uploaded", "submit retrying: datalab_unreachable")]}
    [notice] = first.notices
    assert notice.startswith("Datalab at https://datalab.example is unreachable (ConnectError:")
    # no window: nine back-offs of at least 15 s, 30 s, ... 450 s (half of each ceiling) = 2265 s
    assert "for at least 38 min (10 deliveries with back-off" in notice
    assert notice.endswith("recorded as failed (extraction_failed:datalab_unreachable)")
    assert watcher.observe(["doc-1"]).notices == []  # said once


def test_the_retry_window_when_it_is_longer_than_the_deliveries():
    stack = FakeStack(window=86400)
    stack.lambda_.log_lines.append(retry_line("doc-1", "datalab_unreachable", "refused"))
    [notice] = Watcher(stack).observe(["doc-1"]).notices
    assert "for at least 24.0 h" in notice


def test_a_failing_check_and_a_rate_limit_are_said_from_the_history():
    stack = FakeStack(
        histories={
            "doc-1": [entered("Check Extraction"), failed("DatalabUnreachable", "poll failed")],
            "doc-2": [entered("Check Extraction"), checked(phase="processing", rate_limited=1)],
        }
    )
    observation = Watcher(stack).observe(["doc-1", "doc-2"])
    assert observation.stages["doc-1"][-1].name == "retrying"
    assert observation.stages["doc-2"][-1].name == "rate limited"
    assert sorted(n.split(" (")[0] for n in observation.notices) == [
        "Datalab at https://datalab.example failed a check",
        "Datalab is rate limiting",
    ]
