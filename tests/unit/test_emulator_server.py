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
    emulator = make(clock, rate_limit_per_minute=2, retry_after=True)
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


@pytest.mark.parametrize("limit_polls", [True, False])
def test_polls_count_against_the_rate_limit_unless_told_otherwise(limit_polls: bool) -> None:
    # Whether Datalab counts polls is not documented: by default the emulator assumes it does.
    clock = Clock()
    emulator = make(clock, rate_limit_per_minute=2, limit_polls=limit_polls)
    accepted = submit(emulator)
    assert poll(emulator, accepted).status == 200
    third = poll(emulator, accepted)
    if limit_polls:
        assert third.status == 429
        assert third.body == {"detail": "You can make 2 requests every 60 seconds"}
        assert submit(emulator).status == 429
    else:
        assert third.status == 200
        assert submit(emulator).status == 200


def test_a_limit_names_no_retry_after_unless_asked_to() -> None:
    emulator = make(Clock(), rate_limit_per_minute=1)
    submit(emulator)
    refused = submit(emulator)
    assert refused.status == 429
    assert "Retry-After" not in refused.headers


def test_concurrency_limit_counts_jobs_still_processing() -> None:
    clock = Clock()
    emulator = make(clock, max_concurrent=1, retry_after=True)
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


# ------------------------------------------------------------------ the team's limits (429 text)


def test_limit_messages_are_datalabs() -> None:
    # datalab-api.md: "You can make 400 requests every 60 seconds" / "400 concurrent requests"
    clock = Clock()
    per_minute = make(clock, rate_limit_per_minute=400)
    for _ in range(400):
        per_minute._admit()  # reserve the window without building 400 jobs
    assert submit(per_minute).body == {"detail": "You can make 400 requests every 60 seconds"}
    concurrent = make(clock, max_concurrent=1)
    submit(concurrent)
    concurrent.config.max_concurrent = 400
    concurrent._admitted = 399
    assert "400 concurrent requests" in submit(concurrent).body["detail"]


# ------------------------------------------------------------------ billing


def test_a_one_page_charge_rounds_up_to_the_cent() -> None:
    clock = Clock()
    emulator = make(clock)
    accepted = submit(emulator, "acme.pdf")
    clock.now = 60
    assert poll(emulator, accepted).body["cost_breakdown"]["final_cost_cents"] is None
    assert poll(emulator, accepted).body["cost_breakdown"]["final_cost_cents"] == 1


# ------------------------------------------------------------------ pages in flight


def test_claimed_pages_set_page_count_processing_time_and_cost() -> None:
    clock = Clock()
    emulator = make(clock, claimed_pages={"big": 2000}, processing_seconds_per_page=0.01)
    accepted = submit(emulator, "big-report.pdf")
    clock.now = 2 + 20 - 0.001  # 2 s base + 2,000 pages x 0.01 s
    assert phase(poll(emulator, accepted)) == "processing"
    clock.now = 2 + 20 + 8
    body = poll(emulator, accepted).body
    assert (body["status"], body["success"], body["page_count"]) == ("complete", True, 2000)
    # billed as Datalab bills: null on the first complete answer, then the pages' price
    assert body["cost_breakdown"] == {"final_cost_cents": None}
    assert poll(emulator, accepted).body["cost_breakdown"] == {"final_cost_cents": 1200}
    # the values still come from the real page
    assert json.loads(body["extraction_schema_json"])["invoice_number"] == "INV-1042"


def test_claimed_pages_are_refused_when_not_positive() -> None:
    with pytest.raises(ValueError, match="claimed_pages"):
        EmulatorConfig(claimed_pages={"big": 0})
    with pytest.raises(ValueError, match="max_pages_in_flight"):
        EmulatorConfig(max_pages_in_flight=0)


def test_the_default_limit_is_datalabs_5000_pages() -> None:
    assert EmulatorConfig().max_pages_in_flight == 5000


def test_over_the_pages_in_flight_limit_a_job_is_accepted_then_ends_unsuccessful() -> None:
    # GIVEN a 5,000-page team limit and 2,000-page documents
    clock = Clock()
    emulator = make(clock, claimed_pages={"big": 2000}, processing_seconds_per_page=0.01)
    # WHEN three are submitted together
    first, second, third = (submit(emulator, f"big-{n}.pdf") for n in range(3))
    # THEN all three are accepted (the limit is enforced during processing, not at submission)
    assert [r.status for r in (first, second, third)] == [200, 200, 200]
    # the third ends complete without success once its (short) processing is over
    clock.now = 2.0
    throttled = poll(emulator, third).body
    assert (throttled["status"], throttled["success"]) == ("complete", False)
    assert throttled["error"].startswith("Page rate limit exceeded. Your team has 6,000 pages")
    assert "in flight" in throttled["error"]
    assert throttled["cost_breakdown"] == {"final_cost_cents": 0}
    assert emulator.stats["page_rate_limited"] == 1
    assert emulator.stats["max_pages_in_flight_seen"] == 4000  # the throttled job holds none
    # the first two process as usual
    assert phase(poll(emulator, first)) == "processing"
    clock.now = 30
    assert poll(emulator, second).body["success"] is True
    # once they are complete the team has room again: a resubmit goes through
    again = submit(emulator, "big-2.pdf")
    clock.now = 60
    assert poll(emulator, again).body["success"] is True
    assert emulator.stats["page_rate_limited"] == 1


def test_pages_in_flight_count_jobs_until_complete_not_until_scored() -> None:
    clock = Clock()
    emulator = make(clock, claimed_pages={"big": 3000}, processing_seconds_per_page=0.001)
    submit(emulator, "big-1.pdf")  # complete at 2 + 3 = 5 s, scored at 13 s
    clock.now = 5.0
    late = submit(emulator, "big-2.pdf")
    clock.now = 20
    assert poll(emulator, late).body["success"] is True


def test_a_job_bigger_than_the_limit_runs_when_nothing_else_is_in_flight() -> None:
    clock = Clock()
    emulator = make(clock, max_pages_in_flight=100, claimed_pages={"big": 500})
    accepted = submit(emulator, "big.pdf")
    clock.now = 1000
    assert poll(emulator, accepted).body["success"] is True


def test_no_pages_limit_when_none() -> None:
    clock = Clock()
    emulator = make(
        clock, max_pages_in_flight=None, claimed_pages={"big": 7000}, processing_seconds_per_page=0
    )
    replies = [submit(emulator, f"big-{n}.pdf") for n in range(3)]
    clock.now = 100
    assert all(poll(emulator, r).body["success"] for r in replies)
    assert emulator.stats["page_rate_limited"] == 0


def test_page_rate_limit_fault_throttles_whatever_the_pages() -> None:
    clock = Clock()
    emulator = make(clock)
    emulator.add_fault(FaultRule(match="acme", kind="page_rate_limit", times=1))
    throttled, clean = submit(emulator), submit(emulator)
    clock.now = 30
    assert poll(emulator, throttled).body["error"].startswith("Page rate limit exceeded")
    assert poll(emulator, clean).body["success"] is True
    assert emulator.stats["page_rate_limited"] == 1


def test_success_false_is_a_failure_that_is_not_the_throttle() -> None:
    clock = Clock()
    emulator = make(clock)
    emulator.add_fault(FaultRule(kind="success_false"))
    accepted = submit(emulator)
    clock.now = 30
    body = poll(emulator, accepted).body
    assert (body["status"], body["success"]) == ("complete", False)
    assert not body["error"].startswith("Page rate limit exceeded")


# ------------------------------------------------------------------ result-format faults


def test_null_scores_fault_sends_placeholders_until_the_scores_arrive() -> None:
    clock = Clock()
    emulator = make(clock)
    emulator.add_fault(FaultRule(kind="null_scores"))
    accepted = submit(emulator)
    names = list(json.loads(SCHEMA)["properties"])
    clock.now = 3  # complete, not scored
    body = poll(emulator, accepted).body
    extraction = json.loads(body["extraction_schema_json"])
    assert body["extraction_score_average"] is None
    assert all(extraction[f"{name}_score"] == {"score": None} for name in names)
    clock.now = 11  # scored
    body = poll(emulator, accepted).body
    extraction = json.loads(body["extraction_schema_json"])
    assert body["extraction_score_average"] == 5.0
    assert all(isinstance(extraction[f"{name}_score"]["score"], int) for name in names)


def test_pending_fault_reports_an_undocumented_status_first() -> None:
    clock = Clock()
    emulator = make(clock, pending_seconds=4)
    emulator.add_fault(FaultRule(kind="pending"))
    accepted = submit(emulator)
    timeline = []
    for moment in (0, 3.999, 4, 6.999, 7, 15):
        clock.now = moment
        timeline.append(phase(poll(emulator, accepted)))
    assert timeline == ["pending", "pending", "processing", "processing", "complete", "scored"]


def test_pending_and_null_scores_together() -> None:
    clock = Clock()
    emulator = make(clock, pending_seconds=4)
    emulator.add_fault(FaultRule(kind="pending"))
    emulator.add_fault(FaultRule(kind="null_scores"))
    accepted = submit(emulator)
    assert phase(poll(emulator, accepted)) == "pending"
    clock.now = 7
    assert poll(emulator, accepted).body["extraction_score_average"] is None
    assert emulator.stats["faults_injected"] == 2


def test_relative_check_url_fault() -> None:
    clock = Clock()
    emulator = make(clock)
    emulator.add_fault(FaultRule(match="acme", kind="relative_check_url", times=1))
    relative = submit(emulator)
    absolute = submit(emulator)
    request_id = relative.body["request_id"]
    assert relative.body["request_check_url"] == f"/api/v1/extract/{request_id}"
    assert absolute.body["request_check_url"].startswith("http://emulator.test/")
    # the relative one names a real job on this server
    reply = call(
        emulator,
        httpx.Request(
            "GET",
            "http://emulator.test" + relative.body["request_check_url"],
            headers={"X-API-Key": emulator.api_key},
        ),
    )
    assert reply.body == {"status": "processing"}
