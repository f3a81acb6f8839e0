"""The emulator's job timeline, limits and fault bookkeeping, on a fake clock (no sockets)."""

from __future__ import annotations

import json
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from doctriage_local.emulator import DatalabEmulator, EmulatorConfig, FaultRule
from doctriage_local.emulator.server import Reply, _seconds

ROOT = Path(__file__).resolve().parents[2]
ACME = ROOT / "samples" / "invoice" / "acme-invoice-1042.pdf"
SCHEMA = (ROOT / "samples" / "schemas" / "invoice.json").read_text()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **config: Any) -> DatalabEmulator:
    config.setdefault("check_host", "http://emulator.test")
    return DatalabEmulator(EmulatorConfig(**config), clock=clock)


def call(emulator: DatalabEmulator, request: httpx.Request) -> Reply:
    headers = Message()
    for name, value in request.headers.items():
        headers[name] = value
    return emulator.handle(request.method, request.url.path, headers, request.read())


def submit(
    emulator: DatalabEmulator, filename: str = "acme.pdf", content: bytes | None = None, **data: str
) -> Reply:
    request = httpx.Request(
        "POST",
        "http://emulator.test/api/v1/extract",
        headers={"X-API-Key": emulator.api_key},
        files={"file": (filename, ACME.read_bytes() if content is None else content)},
        data={"page_schema": SCHEMA, "extraction_mode": "fast", **data},
    )
    return call(emulator, request)


def poll(emulator: DatalabEmulator, reply: Reply) -> Reply:
    url = reply.body["request_check_url"]
    return call(emulator, httpx.Request("GET", url, headers={"X-API-Key": emulator.api_key}))


def phase(reply: Reply) -> str:
    if reply.status != 200:
        return str(reply.status)
    if reply.body["status"] != "complete":
        return reply.body["status"]
    return "scored" if "extraction_score_average" in reply.body else "complete"


@pytest.mark.parametrize(
    ("scale", "moments"),
    [
        (
            1.0,
            [
                (2.999, "processing"),
                (3.0, "complete"),
                (10.999, "complete"),
                (11.0, "scored"),
                (3602.9, "scored"),
                (3603.0, "404"),
            ],
        ),
        (0.5, [(1.49, "processing"), (1.5, "complete"), (5.5, "scored"), (1801.5, "404")]),
    ],
)
def test_timeline_processing_complete_scored_expired(
    scale: float, moments: list[tuple[float, str]]
) -> None:
    # One page: 2 s base + 1 s per page, then 8 s of scoring lag, then an hour to live.
    clock = Clock()
    emulator = make(clock, time_scale=scale)
    accepted = submit(emulator)
    assert accepted.status == 200
    for moment, expected in moments:
        clock.now = moment
        assert phase(poll(emulator, accepted)) == expected, moment


def test_scores_are_added_to_the_same_extraction() -> None:
    clock = Clock()
    emulator = make(clock)
    accepted = submit(emulator)
    clock.now = 3
    before = json.loads(poll(emulator, accepted).body["extraction_schema_json"])
    clock.now = 11
    after_body = poll(emulator, accepted).body
    after = json.loads(after_body["extraction_schema_json"])
    assert {k: v for k, v in after.items() if not k.endswith("_score")} == before
    scores = [after[f"{name}_score"]["score"] for name in json.loads(SCHEMA)["properties"]]
    assert after_body["extraction_score_average"] == sum(scores) / len(scores) == 5.0


def test_rate_limit_window_and_retry_after() -> None:
    clock = Clock()
    emulator = make(clock, rate_limit_per_minute=2)
    assert [submit(emulator).status for _ in range(2)] == [200, 200]
    clock.now = 10
    refused = submit(emulator)
    assert refused.status == 429
    assert refused.body == {"detail": "You can make 2 requests every 60 seconds"}
    assert refused.headers["Retry-After"] == "50"
    clock.now = 60
    assert submit(emulator).status == 200
    assert emulator.stats["rate_limited"] == 1
    assert emulator.stats["submit"] == 4


def test_concurrency_limit_counts_jobs_still_processing() -> None:
    clock = Clock()
    emulator = make(clock, max_concurrent=1)
    assert submit(emulator).status == 200  # processing until t=3
    clock.now = 1
    refused = submit(emulator)
    assert (refused.status, refused.headers["Retry-After"]) == (429, "2")
    assert "concurrent" in refused.body["detail"]
    clock.now = 3
    assert submit(emulator).status == 200


def test_request_ids_are_deterministic_per_sequence() -> None:
    def ids(emulator: DatalabEmulator) -> list[str]:
        return [
            submit(emulator).body["request_id"],
            submit(emulator).body["request_id"],
            submit(emulator, content=b"other").body["request_id"],
        ]

    first, second = ids(make(Clock())), ids(make(Clock()))
    assert first == second
    assert len(set(first)) == 3
    assert all(len(i) == 22 for i in first)


def test_fault_times_are_counted_per_filename() -> None:
    emulator = make(Clock())
    emulator.add_fault(FaultRule(match="acme", kind="submit_500", times=2))
    assert [submit(emulator, "acme.pdf").status for _ in range(3)] == [500, 500, 200]
    assert submit(emulator, "acme-2.pdf").status == 500
    assert submit(emulator, "globex.pdf").status == 200
    assert emulator.stats["faults_injected"] == 3
    emulator.clear_faults()
    emulator.add_fault(FaultRule(kind="submit_529"))  # match "" hits every document, always
    assert [submit(emulator, f"{n}.pdf").status for n in range(3)] == [529, 529, 529]


def test_submissions_are_listed_in_stats() -> None:
    emulator = make(Clock())
    request_id = submit(emulator, "acme.pdf").body["request_id"]
    assert emulator.stats["submissions"] == [(request_id, "acme.pdf")]


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule(kind="submit_418")


@pytest.mark.parametrize(
    ("seconds", "header"), [(50.0, "50"), (1.2, "2"), (0.6, "0.6"), (0.0004, "0.001"), (-1, "0")]
)
def test_retry_after_format(seconds: float, header: str) -> None:
    assert _seconds(seconds) == header
