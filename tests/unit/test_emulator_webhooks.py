"""The emulator's webhooks, as Datalab's: POSTed after completion, 5xx and no answer retried,
4xx not, none without a webhook_url or with the webhook_lost fault (a receiver on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from doctriage_local.emulator import FaultRule
from tests.unit.test_emulator_server import Clock, make, submit


class Receiver:
    """Answers each POST with the next status of ``statuses`` (the last one repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses[min(len(receiver.bodies), len(statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.server.shutdown()
        receiver.server.server_close()


def _settled(emulator: Any, key: str, value: int, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while emulator.stats[key] < value and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # nothing more is sent after the outcome
    return dict(emulator.stats)


@pytest.mark.parametrize(
    ("statuses", "posts", "outcome"),
    [
        ([200], 1, "webhooks_delivered"),
        ([500, 503, 200], 3, "webhooks_delivered"),
        ([403], 1, "webhooks_refused"),  # a 4xx is final, as Datalab's
        ([500], 5, "webhooks_lost"),  # webhook_attempts, then given up
    ],
)
def test_the_webhook_is_retried_on_5xx_only(receivers, statuses, posts, outcome) -> None:
    receiver = Receiver(statuses)
    receivers.append(receiver)
    emulator = make(Clock(), time_scale=0.001)
    reply = submit(emulator, webhook_url=receiver.url)
    stats = _settled(emulator, outcome, 1)
    assert (stats["webhook_posts"], stats[outcome]) == (posts, 1)
    assert receiver.bodies[0] == {
        "request_id": reply.body["request_id"],
        "request_check_url": reply.body["request_check_url"],
        "webhook_secret": "emulator-webhook-secret",
    }


def test_no_webhook_without_a_url_or_when_lost(receivers) -> None:
    receiver = Receiver([200])
    receivers.append(receiver)
    emulator = make(Clock(), time_scale=0.001)
    submit(emulator)  # no webhook_url
    emulator.add_fault(FaultRule(match="lost", kind="webhook_lost"))
    submit(emulator, "lost.pdf", webhook_url=receiver.url)
    stats = _settled(emulator, "webhooks_lost", 1)
    assert (stats["webhook_posts"], stats["webhooks_lost"]) == (0, 1)
    assert receiver.bodies == []
