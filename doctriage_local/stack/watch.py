"""Where each document stands in a running local stack, and what Datalab is doing to all of them.

Read as the operator would read a deployed stack, so no function needs a permission for it:
the results table (recorded), the state machine's executions and their history (submitted; the
poll function's last status: processing, waiting for scores, throttled, rate limited; a failed
check being retried) and the handlers' log lines, as CloudWatch Logs would keep them (submit
retrying an upload, and why). Nothing here prints: the CLI (doctriage_local.cli.progress) does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from doctriage_core.domain.poll_policy import REDELIVERY_BASE_SECONDS, REDELIVERY_CAP_SECONDS

CHECK_STATE = "Check Extraction"  # the poll function's state in statemachine/
# Errors of a check that the state machine retries (its Retry on "Check Extraction").
CHECK_RETRIES = 6


# A document's stages, in the order the pipeline goes through them (some may be skipped).
STAGES = (
    "uploaded",
    "submitted",
    "processing",
    "throttled",
    "rate limited",
    "retrying",
    "waiting for scores",
    "evaluating",
    "recording failure",
    "recorded",
)


@dataclass(frozen=True)
class Stage:
    """One document's stage: ``name`` is one of STAGES, ``detail`` what else is known."""

    name: str
    detail: str = ""


@dataclass
class Observation:
    stages: dict[str, list[Stage]] = field(default_factory=dict)  # by document_id: new ones
    notices: list[str] = field(default_factory=list)  # new since the last observation


def stages_from_history(events: Iterable[dict[str, Any]]) -> list[Stage]:
    """Every stage a running execution went through, oldest first, from its history events.

    All of them, not only the last: a stage shorter than the time between two looks (a first
    wait of a fraction of a second) is still reported. A longer history extends the list.
    """
    state: str | None = None
    poll: dict[str, Any] | None = None
    failure: tuple[str, str] | None = None
    stages = [Stage("submitted")]  # the execution exists: submit started it
    for event in events:
        if "stateEnteredEventDetails" in event:
            state = event["stateEnteredEventDetails"]["name"]
            failure = None  # a Retry stays in its state: a new state is past any failure
        elif "stateExitedEventDetails" in event:
            details = event["stateExitedEventDetails"]
            if details["name"] == CHECK_STATE:
                poll = json.loads(details.get("output") or "{}").get("poll")
        if event["type"] in ("LambdaFunctionFailed", "TaskFailed"):
            details = event.get("lambdaFunctionFailedEventDetails") or event.get(
                "taskFailedEventDetails", {}
            )
            failure = (details.get("error", "?"), _error_message(details.get("cause", "")))
        elif event["type"] in ("LambdaFunctionSucceeded", "TaskSucceeded"):
            failure = None
        stage = _stage(state, poll, failure)
        if stage != stages[-1]:
            stages.append(stage)
    return stages


def _stage(
    state: str | None, poll: dict[str, Any] | None, failure: tuple[str, str] | None
) -> Stage:
    if failure is not None and state == CHECK_STATE:
        return Stage("retrying", f"{failure[0]}: {failure[1]}")
    if state in (None, "Webhook Expected?", "Wait For Processing"):
        return Stage("submitted")
    if state == "Wait For Webhook":
        return Stage("processing", "until Datalab's webhook says complete")
    if state == "Wait For Scores":
        return Stage("waiting for scores", "Datalab's webhook said complete")
    if state == "Evaluate Fields":
        return Stage("evaluating")
    if state in ("Record Failure", "Failure Recorded"):
        return Stage("recording failure")
    return _poll_stage(poll)


def _poll_stage(poll: dict[str, Any] | None) -> Stage:
    if not poll:
        return Stage("processing")
    if poll.get("rate_limited"):
        return Stage("rate limited", "429: the next check waits longer")
    phase = poll.get("phase")
    if phase == "unscored":
        return Stage("waiting for scores")
    if phase == "throttled":
        return Stage("throttled", "Datalab's page-rate limit; resubmitted after a back-off")
    if phase == "submitted":
        return Stage("processing", f"submission {poll['datalab']['submissions']}")
    if phase == "billing":
        return Stage("waiting for scores", "scored; one fetch more for Datalab's charge")
    if phase in ("scored", "scores_unavailable"):
        return Stage("evaluating", "" if phase == "scored" else "scores never came")
    return Stage("processing")


def _error_message(cause: str) -> str:
    """The errorMessage of a Lambda error payload (the cause Step Functions records)."""
    try:
        return str(json.loads(cause).get("errorMessage", cause))
    except (ValueError, AttributeError):
        return cause


class Watcher:
    """Observes documents in ``stack`` (a started LocalStack); one per set of uploads."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self._said: set[str] = set()  # the notices' kinds said so far (each is said once)
        self._reported: dict[str, int] = {}  # by document_id: how many of its stages so far

    def observe(self, document_ids: Iterable[str]) -> Observation:
        """The stages ``document_ids`` (those without a record yet) went through since the
        last look, and any new notice."""
        pending = set(document_ids)
        executions = {e["name"]: e for e in self.stack.executions() if e["name"] in pending}
        retrying = self._submit_retries(pending)
        observation = Observation()
        for document_id in pending:
            execution = executions.get(document_id)
            if execution is None:
                line = retrying.get(document_id)
                if line:
                    stage = Stage("uploaded", f"submit retrying: {line.get('reason')}")
                    observation.stages[document_id] = [stage]
                continue
            stages = stages_from_history(self.stack.history(execution["executionArn"]))
            new = stages[self._reported.get(document_id, 0) :]
            self._reported[document_id] = len(stages)
            observation.stages[document_id] = new
            for stage in new:
                self._notice_from_stage(stage, observation)
        for line in retrying.values():
            self._notice_from_submit(line, observation)
        return observation

    def _submit_retries(self, pending: set[str]) -> dict[str, dict[str, Any]]:
        """Submit's latest "will retry" log line for each pending document (workflow/intake)."""
        lines: dict[str, dict[str, Any]] = {}
        for line in list(self.stack.lambda_.log_lines):
            if line.get("correlation_id") in pending and "redelivery_in_seconds" in line:
                lines[line["correlation_id"]] = line
        return lines

    def _say_once(self, kind: str, text: str, observation: Observation) -> None:
        if kind not in self._said:
            self._said.add(kind)
            observation.notices.append(text)

    def _notice_from_submit(self, line: dict[str, Any], observation: Observation) -> None:
        slug, error = str(line.get("reason")), str(line.get("error", ""))
        if slug == "rate_limited":
            self._say_once("rate_limited", self._rate_limited(), observation)
        elif slug.startswith("datalab_"):
            why = error.partition("failed: ")[2] or error
            self._say_once(
                "unreachable",
                f"Datalab at {self.stack.datalab_api_url} is "
                f"{'unreachable' if slug == 'datalab_unreachable' else 'failing'} ({why}); "
                f"submit retries each upload {self._submit_retry_span()}, then the document is "
                f"recorded as failed (extraction_failed:{slug})",
                observation,
            )
        else:
            self._say_once(
                slug,
                f"submit cannot reach AWS ({slug}: {error}); it retries each upload "
                f"{self._submit_retry_span()}, then the document is recorded as failed",
                observation,
            )

    def _notice_from_stage(self, stage: Stage, observation: Observation) -> None:
        if stage.name == "rate limited" or stage.detail.startswith("DatalabRateLimited"):
            self._say_once("rate_limited", self._rate_limited(), observation)
        elif stage.name == "throttled":
            self._say_once(
                "throttled",
                "Datalab's page-rate limit (too many of the team's pages in flight) stopped a "
                "job: the document is resubmitted after a back-off; it fails only if that "
                f"outlasts its processing deadline ({self._seconds('ProcessingDeadlineSeconds')})",
                observation,
            )
        elif stage.name == "retrying" and stage.detail.startswith("Datalab"):
            self._say_once(
                "check_failing",
                f"Datalab at {self.stack.datalab_api_url} failed a check ({stage.detail}); "
                f"the state machine retries it up to {CHECK_RETRIES} times with back-off, then "
                "the document is recorded as failed",
                observation,
            )

    def _rate_limited(self) -> str:
        return (
            "Datalab is rate limiting (429): documents wait and continue (submit and checks back "
            "off); no document fails for this unless it outlasts its processing deadline "
            f"({self._seconds('ProcessingDeadlineSeconds')})"
        )

    def _submit_retry_span(self) -> str:
        """How long submit keeps retrying an upload: the retry window, and at least the queue's
        deliveries with their shortest back-off (redelivery_delay_seconds' lower half)."""
        deliveries = int(self.stack.params["IntakeMaxReceives"])
        backoff = sum(
            min(REDELIVERY_CAP_SECONDS, REDELIVERY_BASE_SECONDS * 2**n) / 2
            for n in range(deliveries - 1)
        )
        window = float(self.stack.params["SubmitRetryWindowSeconds"])
        span = max(window, backoff) * self.stack.options.time_scale
        return (
            f"for at least {_duration(span)} ({deliveries} deliveries with back-off, "
            f"SubmitRetryWindowSeconds={window:g})"
        )

    def _seconds(self, parameter: str) -> str:
        return _duration(float(self.stack.params[parameter]) * self.stack.options.time_scale)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
