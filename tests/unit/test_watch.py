"""A running execution's stages from its history events (doctriage_local.stack.watch)."""

from __future__ import annotations

import json

import pytest

from doctriage_local.stack.watch import Stage, stages_from_history


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
