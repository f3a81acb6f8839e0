"""workflow/webhook.py and the webhook's waits in domain/poll_policy.py, with in-memory ports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from doctriage_core import errors
from doctriage_core.domain.poll_policy import (
    DEFAULT_POLICY,
    scores_first_wait_seconds,
    webhook_timeout_seconds,
)
from doctriage_core.ports import Arrival
from doctriage_core.workflow.webhook import await_webhook, receive_webhook, webhook_secret_set

SECRET = "s3cret"


class FakeArrivals:
    """The WebhookTable's conditional writes, in memory."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def register(self, request_id: str, document_id: str) -> None:
        self.items[request_id] = {"document_id": document_id}

    def expect(self, request_id: str, task_token: str) -> bool:
        item = self.items.setdefault(request_id, {})
        item["task_token"] = task_token
        return "completed_at" not in item

    def arrive(self, request_id: str, at: str) -> Arrival:
        item = self.items.get(request_id)
        if item is None:
            return Arrival("unknown")
        if "completed_at" in item:
            return Arrival("duplicate", str(item.get("task_token", "")))
        item["completed_at"] = at
        return Arrival("first", str(item.get("task_token", "")))


class FakeTasks:
    def __init__(self, gone: bool = False) -> None:
        self.sent: list[str] = []  # tokens whose task this ended
        self.attempts: list[str] = []
        self.gone = gone

    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        """As Step Functions: a token ends its task once; sent again, it is gone."""
        self.attempts.append(task_token)
        if self.gone or task_token in self.sent:
            return False
        self.sent.append(task_token)
        return True


def _receive(body: Any, arrivals: FakeArrivals, tasks: FakeTasks, secret: str = SECRET) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)
    return receive_webhook(
        text, secret=secret, arrivals=arrivals, tasks=tasks, now=lambda: 0.0, sleep=lambda _: None
    )


def _waiting() -> FakeArrivals:
    arrivals = FakeArrivals()
    arrivals.register("req-1", "doc-1")
    await_webhook("req-1", "token-1", arrivals=arrivals)
    return arrivals


GENUINE = {"request_id": "req-1", "request_check_url": "https://x/req-1", "webhook_secret": SECRET}


def test_the_genuine_webhook_sends_the_waiting_token_once():
    arrivals, tasks = _waiting(), FakeTasks()
    answer = _receive(GENUINE, arrivals, tasks)
    assert (answer.status, answer.message) == (200, "accepted")
    assert tasks.sent == ["token-1"]
    # a duplicate: 200, and nothing sent or changed
    before = dict(arrivals.items["req-1"])
    assert _receive(GENUINE, arrivals, tasks).status == 200
    assert tasks.sent == ["token-1"]
    assert arrivals.items["req-1"] == before


class FailingOnce(FakeTasks):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool:
        if not self.attempts:
            self.attempts.append(task_token)
            raise errors.AwsUnavailable("Step Functions throttled")
        return super().succeed(task_token, output)


def test_a_webhook_retried_after_the_token_failed_to_send_sends_it():
    # The arrival is marked, then SendTaskSuccess fails: 5xx, and Datalab sends the webhook
    # again. That retry is a duplicate arrival, yet the workflow still waits: it sends the token.
    arrivals, tasks = _waiting(), FailingOnce()
    with pytest.raises(errors.AwsUnavailable):
        _receive(GENUINE, arrivals, tasks)
    assert "completed_at" in arrivals.items["req-1"]
    answer = _receive(GENUINE, arrivals, tasks)
    assert (answer.status, answer.message) == (200, "duplicate")
    assert tasks.sent == ["token-1"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**GENUINE, "webhook_secret": SECRET + "!"}, 401),
        ({**GENUINE, "webhook_secret": SECRET[:-1]}, 401),
        ({k: v for k, v in GENUINE.items() if k != "webhook_secret"}, 401),
        ({**GENUINE, "webhook_secret": 7}, 401),
        ({**GENUINE, "request_id": "never-sent"}, 403),
        ({**GENUINE, "request_id": ""}, 400),
        ("not json", 400),
        ([GENUINE], 400),
        ({**GENUINE, "padding": "x" * 5000}, 413),
    ],
)
def test_a_forged_unknown_or_malformed_webhook_changes_nothing(body, status):
    arrivals, tasks = _waiting(), FakeTasks()
    before = json.dumps(arrivals.items, sort_keys=True)
    assert _receive(body, arrivals, tasks).status == status
    assert tasks.sent == []
    assert json.dumps(arrivals.items, sort_keys=True) == before


@pytest.mark.parametrize("secret", ["", "unset", "  "])
def test_without_a_secret_configured_every_webhook_is_refused(secret):
    arrivals, tasks = _waiting(), FakeTasks()
    assert (
        _receive({**GENUINE, "webhook_secret": secret}, arrivals, tasks, secret=secret).status
        == 401
    )
    assert tasks.sent == []
    assert not webhook_secret_set(secret)


def test_a_webhook_after_the_wait_timed_out_is_still_accepted():
    # The execution went on polling: the token is gone; Datalab must not retry (200).
    arrivals, tasks = _waiting(), FakeTasks(gone=True)
    assert _receive(GENUINE, arrivals, tasks).status == 200


def test_a_webhook_before_the_wait_makes_the_wait_end_at_once():
    arrivals, tasks = FakeArrivals(), FakeTasks()
    arrivals.register("req-1", "doc-1")
    assert _receive(GENUINE, arrivals, tasks).message == "accepted"
    assert tasks.sent == []  # no one waited yet
    with pytest.raises(errors.WebhookArrivedFirst):
        await_webhook("req-1", "token-1", arrivals=arrivals)


def test_the_webhook_wait_is_bounded_and_grows_with_the_document():
    small = webhook_timeout_seconds(10_000)
    large = webhook_timeout_seconds(200_000 * 100)  # about 100 pages
    assert small == DEFAULT_POLICY.webhook_timeout_min
    assert large == pytest.approx(4 * (2 + 100), abs=1)
    assert webhook_timeout_seconds(200_000 * 5_000) == DEFAULT_POLICY.webhook_timeout_cap
    assert webhook_timeout_seconds(200_000 * 5_000, seconds_to_deadline=600) == 600


def test_the_first_score_poll_comes_about_ten_seconds_after_the_webhook():
    import random

    waits = {scores_first_wait_seconds(rng=random.Random(seed)) for seed in range(50)}
    assert waits <= {9, 10, 11}


class RegisteredLate(FakeArrivals):
    """Submit registers the request only after the webhook's ``before``-th look."""

    def __init__(self, before: int) -> None:
        super().__init__()
        self.looks, self.before = 0, before

    def arrive(self, request_id: str, at: str) -> Arrival:
        self.looks += 1
        if self.looks == self.before:
            self.register(request_id, "doc-1")
        return super().arrive(request_id, at)


def test_a_webhook_that_beats_the_registration_is_accepted_once_it_is_registered():
    arrivals, tasks = RegisteredLate(before=3), FakeTasks()
    answer = _receive(GENUINE, arrivals, tasks)
    assert (answer.status, answer.message) == (200, "accepted")
    assert "completed_at" in arrivals.items["req-1"]  # the wait, when it comes, ends at once
    with pytest.raises(errors.WebhookArrivedFirst):
        await_webhook("req-1", "token-1", arrivals=arrivals)
    # ... while a request never registered is refused after the grace: 8 looks more, then 403
    never, slept = FakeArrivals(), list[float]()
    text = json.dumps({**GENUINE, "request_id": "never-sent"})
    refused = receive_webhook(
        text, secret=SECRET, arrivals=never, tasks=tasks, now=lambda: 0.0, sleep=slept.append
    )
    assert refused.status == 403
    assert sum(slept) == 2.0
