"""The workflow step by step (submit, poll, finish), with in-memory fakes of ``ports`` (no moto).

Each fake keeps what it was asked to do (puts, sends, starts, submits) so the tests can check
exactly what a step did and did not touch.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from doctriage_core import errors
from doctriage_core.config import DatalabSettings, EvaluateSettings, PollSettings, SubmitSettings
from doctriage_core.domain.budget import RECHECK_SECONDS, Budget
from doctriage_core.domain.documents import (
    MAX_FILE_BYTES,
    cells_key_for,
    document_id_for,
    result_key_for,
)
from doctriage_core.domain.records import RECORD_BUDGET_BYTES, record_size
from doctriage_core.ports import Arrival
from doctriage_core.workflow.finish import evaluate_document, store_record
from doctriage_core.workflow.intake import Upload, is_last_delivery
from doctriage_core.workflow.poll import check_extraction
from doctriage_core.workflow.state import latest_request
from doctriage_core.workflow.submit import _PrefixedStream, submit_upload
from tests.contracts import assert_valid_record, assert_valid_review_message

BUCKET = "docs-bucket"
PDF = b"%PDF-1.7\n" + b"x" * 300 + b"\n%%EOF\n"
SCHEMA = {
    "properties": {
        "invoice_number": {"type": "string", "pattern": "^INV-[0-9]+$"},
        "total": {"type": "number"},
    },
    "required": ["invoice_number"],
}
T0 = 1_750_000_000.0  # a fixed "now" for the fake clock


S = TypeVar("S", SubmitSettings, PollSettings, EvaluateSettings)
DEFAULTS: dict[str, Any] = {
    "documents_bucket": BUCKET,
    "results_table": "results",
    "review_queue_url": "https://sqs.local/review",
    "intake_queue_url": "https://sqs.local/intake",
    "state_machine_arn": "arn:aws:states:us-east-1:1:stateMachine:sm",
    "idempotency_table": "idempotency",
    "usage_table": "usage",
    "datalab": DatalabSettings(
        api_url="https://www.datalab.to",
        api_key_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:k",
    ),
    "human_review_threshold": 0.85,
    "processing_deadline_seconds": 1800.0,
    "scoring_deadline_seconds": 300.0,
    "max_receives": 3,
    "time_scale": 1.0,
}


def make_settings(kind: type[S], **overrides: Any) -> S:
    """One function's settings: the defaults above that it has, with ``overrides`` (all its own)."""
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(overrides) - names
    assert not unknown, f"{kind.__name__} has no {sorted(unknown)}"
    return kind(**{k: v for k, v in {**DEFAULTS, **overrides}.items() if k in names})


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------ fakes of the Protocols


@dataclass
class FakeInfo:
    size: int
    etag: str | None
    version_id: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class TrackingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.was_closed = False

    def close(self) -> None:
        self.was_closed = True
        super().close()


class FakeStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str], int | None]] = {}
        self.puts: list[tuple[str, bytes]] = []
        self.opened: list[TrackingStream] = []

    def add(
        self, key: str, body: bytes, metadata: dict[str, str] | None = None, size: int | None = None
    ) -> None:
        self.objects[key] = (body, metadata or {}, size)

    def head(self, key: str, version_id: str | None) -> FakeInfo:
        if key not in self.objects:
            raise errors.InvalidDocument(f"{key} no longer exists", reason="object_missing")
        body, metadata, size = self.objects[key]
        return FakeInfo(
            size=len(body) if size is None else size,
            etag='"etag-1"',
            version_id="v-1",
            metadata=dict(metadata),
        )

    def open(self, key: str, version_id: str | None) -> TrackingStream:
        stream = TrackingStream(self.objects[key][0])
        self.opened.append(stream)
        return stream

    def read_schema(self, key: str, version_id: str | None = None) -> tuple[bytes, str | None]:
        if key not in self.objects:
            raise errors.SchemaNotFound(f"no extraction schema at {key}")
        return self.objects[key][0], "schema-v1"

    def read(self, key: str) -> bytes:
        return self.objects[key][0]

    def put_json(self, key: str, body: bytes) -> None:
        self.puts.append((key, body))
        self.objects[key] = (body, {}, None)


class FakeResults:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.put_calls = 0

    def put_once(self, record: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        self.put_calls += 1
        existing = self.items.get(record["document_id"])
        if existing is not None:
            return False, json.loads(json.dumps(existing))
        self.items[record["document_id"]] = json.loads(json.dumps(record))
        return True, record

    def get(self, document_id: str) -> dict[str, Any] | None:
        return self.items.get(document_id)


class FakeQueue:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.messages.append(json.loads(json.dumps(message)))


class FakeWorkflows:
    def __init__(self, existing: set[str] | None = None) -> None:
        self.existing = set(existing or ())
        self.started: list[tuple[str, dict[str, Any]]] = []

    def exists(self, name: str) -> bool:
        return name in self.existing

    def start(self, name: str, state: dict[str, Any]) -> bool:
        if name in self.existing:
            return False
        self.existing.add(name)
        self.started.append((name, json.loads(json.dumps(state))))
        return True


@dataclass
class FakeSubmission:
    request_id: str
    check_url: str


class FakeDatalab:
    """submit reads the stream like the real client (64 KiB reads); check replays answers."""

    def __init__(
        self, *, submit_error: Exception | None = None, answers: list[Any] | None = None
    ) -> None:
        self.submit_error = submit_error
        self.answers = list(answers or [])
        self.submitted: list[dict[str, Any]] = []
        self.checked: list[str] = []

    def submit(
        self,
        stream: Any,
        *,
        filename: str,
        content_type: str,
        page_schema: str,
        size: int | None = None,
        webhook_url: str | None = None,
    ) -> FakeSubmission:
        data = b""
        while chunk := stream.read(64 * 1024):
            data += chunk
        self.submitted.append(
            {
                "data": data,
                "filename": filename,
                "content_type": content_type,
                "page_schema": page_schema,
                "size": size,
                "webhook_url": webhook_url,
            }
        )
        if self.submit_error is not None:
            raise self.submit_error
        n = len(self.submitted)  # req-1, req-2, ...: each accepted submission is a new request
        return FakeSubmission(f"req-{n}", f"https://www.datalab.to/api/v1/extract/req-{n}")

    def check(self, check_url: str) -> dict[str, Any]:
        self.checked.append(check_url)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


# ------------------------------------------------------------------ _PrefixedStream

_DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.mark.parametrize("prefix_len", [0, 1, 16, 100])
@pytest.mark.parametrize("size", [1, 3, 15, 16, 17, 100, 4096, 20000])
def test_prefixed_stream_replays_the_sniffed_bytes_then_the_rest(
    prefix_len: int, size: int
) -> None:
    source = io.BytesIO(_DATA)
    prefix = source.read(prefix_len)
    stream = _PrefixedStream(prefix, source)
    chunks = []
    while chunk := stream.read(size):
        assert len(chunk) <= size
        chunks.append(chunk)
    assert b"".join(chunks) == _DATA
    assert stream.read(size) == b""


@pytest.mark.parametrize("first", [0, 5, 16])
@pytest.mark.parametrize("whole", [-1, None])
def test_prefixed_stream_read_all(first: int, whole: int | None) -> None:
    source = io.BytesIO(_DATA)
    prefix = source.read(16)
    stream = _PrefixedStream(prefix, source)
    head = stream.read(first) if first else b""
    assert head + stream.read(whole) == _DATA  # type: ignore[arg-type]
    assert stream.read() == b""


# ------------------------------------------------------------------ check_extraction


def _state(poll: dict[str, Any] | None = None, *, submitted: float = T0) -> dict[str, Any]:
    state: dict[str, Any] = {
        "document": {
            "document_id": "doc-1",
            "bucket": BUCKET,
            "key": "incoming/invoice/a.pdf",
            "doc_type": "invoice",
            "version_id": "v-1",
            "etag": '"e"',
            "size": 50_000,
        },
        "schema": {"key": "schemas/invoice.json", "version_id": "schema-v1"},
        "upload_threshold": None,
        "datalab": {
            "request_id": "req-1",
            "check_url": "https://www.datalab.to/api/v1/extract/req-1",
        },
        "submitted_at": iso(submitted),
        "first_wait_seconds": 2,
    }
    if poll is not None:
        state["poll"] = poll
    return state


PROCESSING = {"status": "processing"}
UNSCORED = {
    "status": "complete",
    "success": True,
    "page_count": 2,
    "extraction_schema_json": json.dumps({"invoice_number": "INV-1", "total": 5}),
}
SCORED = {
    **UNSCORED,
    "extraction_score_average": 4.5,
    "extraction_schema_json": json.dumps(
        {
            "invoice_number": "INV-1",
            "invoice_number_score": {"score": 5, "reasoning": "r"},
            "total": 5,
            "total_score": {"score": 4, "reasoning": "r"},
        }
    ),
}


def _check(
    state: Any,
    answer: Any,
    *,
    at: float,
    store: FakeStore | None = None,
    **settings: Any,
) -> tuple[dict[str, Any], FakeStore, FakeDatalab]:
    store = store or FakeStore()
    datalab = FakeDatalab(answers=[answer])
    out = _poll(state, datalab, store, at=at, **settings)
    assert datalab.checked == [latest_request(state)["check_url"]]
    return out, store, datalab


def test_processing_keeps_waiting() -> None:
    out, store, _ = _check(_state(), PROCESSING, at=T0 + 10)
    assert out["ready"] is False
    assert out["scored"] is False
    assert out["phase"] == "processing"
    assert out["polls"] == 1
    assert out["phase_polls"] == 1
    assert isinstance(out["next_wait_seconds"], int)
    assert out["next_wait_seconds"] >= 1
    assert store.puts == []
    assert len(json.dumps(out)) < 1000


def test_a_second_processing_poll_counts_on() -> None:
    first, _, _ = _check(_state(), PROCESSING, at=T0 + 10)
    second, _, _ = _check(_state(first), PROCESSING, at=T0 + 30)
    assert (second["polls"], second["phase_polls"], second["phase"]) == (2, 2, "processing")


def test_processing_near_the_deadline_waits_no_longer_than_just_past_it() -> None:
    out, _, _ = _check(_state(), PROCESSING, at=T0 + 1799.5)
    assert out["ready"] is False
    assert out["next_wait_seconds"] == 1


@pytest.mark.parametrize("elapsed", [1800.0, 1801.0, 5000.0])
def test_processing_past_the_deadline_raises(elapsed: float) -> None:
    with pytest.raises(errors.DeadlineExceeded, match="1800"):
        _check(_state(), PROCESSING, at=T0 + elapsed)


def test_first_complete_unscored_poll_stores_the_raw_result_once() -> None:
    out, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    key = result_key_for("doc-1")
    assert key == "results/doc-1/datalab-result.json"
    assert [k for k, _ in store.puts] == [key]
    assert json.loads(store.puts[0][1]) == UNSCORED
    assert out["ready"] is False
    assert out["scored"] is False
    assert out["phase"] == "unscored"
    assert out["phase_polls"] == 1
    assert out["result_key"] == key
    assert out["complete_seen_at"] == iso(T0 + 20)
    assert out["page_count"] == 2
    assert out["next_wait_seconds"] >= 1
    # the state carries keys, never the result
    assert "extraction_schema_json" not in json.dumps(out)


def test_scores_poll_seconds_spaces_the_polls_for_scores_and_nothing_else() -> None:
    # ScoresPollSeconds: how long a complete, unscored document waits before the next look.
    default, _, _ = _check(_state(), UNSCORED, at=T0 + 20)
    sparse, _, _ = _check(_state(), UNSCORED, at=T0 + 20, scores_poll_seconds=15)
    assert 4 <= default["next_wait_seconds"] <= 6  # 5 s +- the 10 % jitter, rounded
    assert 13 <= sparse["next_wait_seconds"] <= 17
    # Processing polls keep their own cadence.
    busy, _, _ = _check(_state(), PROCESSING, at=T0 + 10)
    busy_sparse, _, _ = _check(_state(), PROCESSING, at=T0 + 10, scores_poll_seconds=15)
    assert busy["next_wait_seconds"] == busy_sparse["next_wait_seconds"]


def test_a_later_unscored_poll_does_not_store_again() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    second, store, _ = _check(_state(first), UNSCORED, at=T0 + 30, store=store)
    assert len(store.puts) == 1
    assert second["phase"] == "unscored"
    assert second["phase_polls"] == 2
    assert second["polls"] == 2
    assert second["complete_seen_at"] == iso(T0 + 20)
    assert second["result_key"] == result_key_for("doc-1")
    assert second["ready"] is False


def test_scores_arriving_make_it_ready_and_store_the_scored_result() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    out, store, _ = _check(_state(first), SCORED, at=T0 + 30, store=store)
    assert len(store.puts) == 2
    assert json.loads(store.puts[-1][1]) == SCORED
    assert out["ready"] is True
    assert out["scored"] is True
    assert out["phase"] == "scored"
    assert out["result_key"] == result_key_for("doc-1")
    assert out["complete_seen_at"] == iso(T0 + 20)
    assert out["polls"] == 2


BILLED = {**SCORED, "cost_breakdown": {"final_cost_cents": 2}}


def test_scored_and_billed_on_the_first_complete_poll_is_ready() -> None:
    out, store, _ = _check(_state(), BILLED, at=T0 + 20)
    assert len(store.puts) == 1
    assert (out["ready"], out["scored"], out["complete_seen_at"]) == (True, True, iso(T0 + 20))
    assert out["cost_cents"] == 2.0


def test_scored_on_the_first_complete_poll_without_a_cost_fetches_once_more_for_it() -> None:
    # Datalab fills cost_breakdown in on a later fetch than the first complete one.
    first, store, _ = _check(
        _state(), {**SCORED, "cost_breakdown": {"final_cost_cents": None}}, at=T0 + 20
    )
    assert (first["ready"], first["phase"], first["cost_cents"]) == (False, "billing", None)
    assert first["next_wait_seconds"] <= 4
    out, store, _ = _check(_state(first), BILLED, at=T0 + 23, store=store)
    assert (out["ready"], out["scored"], out["phase"]) == (True, True, "scored")
    assert out["cost_cents"] == 2.0
    assert out["result_key"] == result_key_for("doc-1")
    assert out["complete_seen_at"] == iso(T0 + 20)
    assert len(store.puts) == 1  # the scored copy was already kept


@pytest.mark.parametrize(
    "answer",
    [
        SCORED,
        errors.DatalabRateLimited("429"),
        errors.DatalabServerError("503"),
        errors.DatalabResultExpired("gone"),
    ],
)
def test_the_fetch_for_the_bill_never_holds_the_document_back(answer: Any) -> None:
    first, store, _ = _check(_state(), SCORED, at=T0 + 20)
    out, _, _ = _check(_state(first), answer, at=T0 + 23, store=store)
    assert (out["ready"], out["scored"], out["cost_cents"]) == (True, True, None)


def test_a_cost_seen_while_waiting_for_scores_is_kept() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    second, store, _ = _check(
        _state(first),
        {**UNSCORED, "cost_breakdown": {"final_cost_cents": 3}},
        at=T0 + 30,
        store=store,
    )
    out, _, _ = _check(_state(second), SCORED, at=T0 + 40, store=store)
    assert (out["ready"], out["cost_cents"]) == (True, 3.0)


def test_scored_late_without_any_cost_is_ready_with_none() -> None:
    # Fetched after completion more than once already: Datalab never said; no extra fetch.
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    out, _, _ = _check(_state(first), SCORED, at=T0 + 30, store=store)
    assert (out["ready"], out["cost_cents"]) == (True, None)


def test_unscored_just_before_the_scoring_deadline_still_waits() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    out, _, _ = _check(_state(first), UNSCORED, at=T0 + 20 + 299, store=store)
    assert out["ready"] is False
    assert out["phase"] == "unscored"
    assert out["next_wait_seconds"] <= 2  # capped at just past the deadline


def test_unscored_past_the_scoring_deadline_is_ready_without_scores() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    out, store, _ = _check(_state(first), UNSCORED, at=T0 + 20 + 300, store=store)
    assert out["ready"] is True
    assert out["scored"] is False
    assert out["phase"] == "scores_unavailable"
    assert out["result_key"] == result_key_for("doc-1")
    assert len(store.puts) == 1  # the copy made on the first complete poll is the result


def test_rate_limited_with_retry_after_waits_at_least_that_long() -> None:
    out, store, _ = _check(_state(), errors.DatalabRateLimited("429", retry_after=42.2), at=T0 + 10)
    assert out["ready"] is False
    assert out["phase"] == "processing"
    assert out["next_wait_seconds"] >= 43
    assert store.puts == []


def test_rate_limited_while_unscored_keeps_the_result_key() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    out, _, _ = _check(
        _state(first), errors.DatalabRateLimited("429", retry_after=30), at=T0 + 25, store=store
    )
    assert out["phase"] == "unscored"
    assert out["next_wait_seconds"] >= 30
    assert out["result_key"] == result_key_for("doc-1")
    assert out["complete_seen_at"] == iso(T0 + 20)
    assert len(store.puts) == 1


def test_rate_limited_without_retry_after_waits_and_backs_off_in_a_row() -> None:
    # Found in review: raising left it to the state machine's Retry, which gives up after six
    # attempts and fails the document. Datalab documents no Retry-After: a 429 must only delay.
    first, store, _ = _check(_state(), errors.DatalabRateLimited("429"), at=T0 + 10)
    assert (first["ready"], first["phase"], first["rate_limited"]) == (False, "processing", 1)
    waits = [first["next_wait_seconds"]]
    status = first
    for n in range(2, 6):
        status, _, _ = _check(
            _state(status), errors.DatalabRateLimited("429"), at=T0 + 10 * n, store=store
        )
        assert status["rate_limited"] == n
        waits.append(status["next_wait_seconds"])
    assert waits[-1] >= 30  # the fifth 429 in a row: grown towards Datalab's suggested 60 s
    answered, _, _ = _check(_state(status), PROCESSING, at=T0 + 80, store=store)
    assert "rate_limited" not in answered  # any other answer ends the run of 429s


def test_rate_limited_past_the_processing_deadline_still_ends() -> None:
    # Found as a bug: a 429 with Retry-After used to skip the deadline check and poll forever.
    with pytest.raises(errors.DeadlineExceeded):
        _check(_state(), errors.DatalabRateLimited("429", retry_after=60), at=T0 + 1900)


def test_rate_limited_past_the_scoring_deadline_evaluates_without_scores() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    out, _, _ = _check(
        _state(first),
        errors.DatalabRateLimited("429", retry_after=60),
        at=T0 + 20 + 301,
        store=store,
    )
    assert out["ready"] is True
    assert out["scored"] is False
    assert out["phase"] == "scores_unavailable"
    assert out["result_key"] == result_key_for("doc-1")
    assert out["complete_seen_at"] == iso(T0 + 20)
    assert len(store.puts) == 1


@pytest.mark.parametrize(
    "error",
    [
        errors.DatalabServerError("503"),
        errors.DatalabResultExpired("404"),
        errors.UntrustedCheckUrl("elsewhere"),
    ],
)
def test_other_errors_propagate_by_class(error: Exception) -> None:
    with pytest.raises(type(error)):
        _check(_state(), error, at=T0 + 10)


def test_time_scale_compresses_elapsed_time() -> None:
    # 18.01 real seconds at time_scale 0.01 are 1801 pipeline seconds: past the 1800 s deadline.
    with pytest.raises(errors.DeadlineExceeded):
        _check(_state(), PROCESSING, at=T0 + 18.01, time_scale=0.01)
    out, _, _ = _check(_state(), PROCESSING, at=T0 + 18.01, time_scale=1.0)
    assert out["phase"] == "processing"
    out, _, _ = _check(_state(), PROCESSING, at=T0 + 17.9, time_scale=0.01)
    assert out["phase"] == "processing"
    # and the scoring deadline the same way: 3.01 s at 0.01 is 301 s
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 1, time_scale=0.01)
    out, _, _ = _check(_state(first), UNSCORED, at=T0 + 4.01, store=store, time_scale=0.01)
    assert out["phase"] == "scores_unavailable"


# ------------------------------------------------------------------ the page-rate throttle

PAGE_RATE = errors.DatalabPageRateLimited(
    "Datalab throttled the job: Page rate limit exceeded. Your team has 6,000 pages in flight."
)
UPLOAD_KEY = "incoming/invoice/a.pdf"


def _throttle_store() -> FakeStore:
    """What a resubmit reads: the upload (by version) and the schema (by version)."""
    store = FakeStore()
    store.add(UPLOAD_KEY, PDF)
    store.add("schemas/invoice.json", json.dumps(SCHEMA).encode())
    return store


def _poll(state: Any, datalab: FakeDatalab, store: FakeStore, *, at: float, **settings: Any) -> Any:
    return check_extraction(
        state,
        datalab=datalab,
        store=store,
        settings=make_settings(PollSettings, **settings),
        now=Clock(at),
        rng=random.Random(7),
    )


def test_a_page_rate_limited_job_backs_off_instead_of_failing() -> None:
    # GIVEN Datalab ended the job complete/success:false because of the page rate limit
    # WHEN it is polled
    out, store, datalab = _check(_state(), PAGE_RATE, at=T0 + 30)
    # THEN the document waits to be resubmitted: not ready, nothing stored, nothing sent yet
    assert out["ready"] is False
    assert out["phase"] == "throttled"
    assert out["phase_polls"] == 1
    assert 10 <= out["next_wait_seconds"] <= 20  # first backoff: half to all of 20 s
    assert out["datalab"] == {**_state()["datalab"], "submissions": 1}
    assert store.puts == []
    assert datalab.submitted == []


def test_after_the_backoff_the_poll_resubmits_the_same_upload_and_schema() -> None:
    # GIVEN a document throttled once
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    store = _throttle_store()
    datalab = FakeDatalab()
    datalab.submitted.append({"data": b"", "filename": "earlier submit"})  # req-1 was submit's
    # WHEN the next poll runs
    out = _poll(_state(throttled), datalab, store, at=T0 + 50)
    # THEN it sent exactly what submit sends, checked nothing, and polls the new request next
    assert datalab.checked == []
    resent = datalab.submitted[-1]
    assert resent == {
        "data": PDF,
        "filename": "a.pdf",
        "content_type": "application/pdf",
        "page_schema": json.dumps(SCHEMA),
        "size": 50_000,
        "webhook_url": None,  # a resubmitted document is polled: its new request has none
    }
    assert all(stream.was_closed for stream in store.opened)
    assert out["datalab"] == {
        "request_id": "req-2",
        "check_url": "https://www.datalab.to/api/v1/extract/req-2",
        "submissions": 2,
    }
    assert (out["ready"], out["phase"], out["phase_polls"]) == (False, "submitted", 0)
    assert out["next_wait_seconds"] >= 1
    assert out["polls"] == 2


def test_later_polls_use_the_latest_request_and_carry_the_count() -> None:
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    resubmitted = _poll(_state(throttled), FakeDatalab(), _throttle_store(), at=T0 + 50)
    # _check asserts the poll went to resubmitted["datalab"]["check_url"]
    processing, _, _ = _check(_state(resubmitted), PROCESSING, at=T0 + 55)
    assert processing["phase"] == "processing"
    assert processing["datalab"] == resubmitted["datalab"]
    scored, _, _ = _check(_state(processing), BILLED, at=T0 + 80)
    assert scored["ready"] is True
    assert scored["datalab"] == resubmitted["datalab"]


def test_throttled_again_waits_longer() -> None:
    state: Any = _state()
    state["datalab"]["submissions"] = 3  # two resubmits were throttled already
    waits = []
    for seed in range(20):
        datalab = FakeDatalab(answers=[PAGE_RATE])
        out = check_extraction(
            state,
            datalab=datalab,
            store=FakeStore(),
            settings=make_settings(PollSettings),
            now=Clock(T0 + 300),
            rng=random.Random(seed),
        )
        waits.append(out["next_wait_seconds"])
        assert out["phase_polls"] == 3
    assert all(40 <= w <= 80 for w in waits)  # 20 s doubled twice, upper-half jitter
    assert len(set(waits)) > 5


def test_the_backoff_never_waits_past_the_processing_deadline() -> None:
    out, _, _ = _check(_state(), PAGE_RATE, at=T0 + 1795)
    assert out["phase"] == "throttled"
    assert out["next_wait_seconds"] <= 6


def test_throttled_past_the_processing_deadline_fails_as_timeout() -> None:
    with pytest.raises(errors.DeadlineExceeded, match="page rate limit"):
        _check(_state(), PAGE_RATE, at=T0 + 1800)


def test_a_resubmit_due_past_the_deadline_sends_nothing_and_times_out() -> None:
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 1790)
    datalab = FakeDatalab()
    with pytest.raises(errors.DeadlineExceeded, match="1 submissions"):
        _poll(_state(throttled), datalab, _throttle_store(), at=T0 + 1801)
    assert datalab.submitted == []


def test_a_resubmit_answered_429_without_retry_after_stays_throttled() -> None:
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    datalab = FakeDatalab(submit_error=errors.DatalabRateLimited("429"))
    out = _poll(_state(throttled), datalab, _throttle_store(), at=T0 + 50)
    assert out["phase"] == "throttled"
    assert out["datalab"]["submissions"] == 1


def test_a_resubmit_answered_429_with_retry_after_stays_throttled() -> None:
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    datalab = FakeDatalab(submit_error=errors.DatalabRateLimited("429", retry_after=45))
    out = _poll(_state(throttled), datalab, _throttle_store(), at=T0 + 50)
    assert out["phase"] == "throttled"
    assert out["next_wait_seconds"] >= 45
    assert out["datalab"]["submissions"] == 1  # Datalab accepted nothing


@pytest.mark.parametrize(
    "error",
    [
        errors.DatalabServerError("503"),
        errors.DatalabRequestRejected("422"),
    ],
)
def test_other_resubmit_errors_propagate_by_class(error: Exception) -> None:
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    with pytest.raises(type(error)):
        _poll(_state(throttled), FakeDatalab(submit_error=error), _throttle_store(), at=T0 + 50)


def test_a_resubmit_of_an_upload_gone_since_fails_the_document() -> None:
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    store = FakeStore()
    store.add("schemas/invoice.json", json.dumps(SCHEMA).encode())
    store.open = lambda key, version_id: (_ for _ in ()).throw(  # type: ignore[method-assign]
        errors.InvalidDocument("gone", reason="object_missing")
    )
    with pytest.raises(errors.InvalidDocument):
        _poll(_state(throttled), FakeDatalab(), store, at=T0 + 50)


def test_any_other_unsuccessful_completion_still_fails() -> None:
    with pytest.raises(errors.DatalabExtractionFailed) as info:
        _check(_state(), errors.DatalabExtractionFailed("Out of credits"), at=T0 + 30)
    assert type(info.value) is errors.DatalabExtractionFailed


def test_an_unknown_status_keeps_polling_until_the_deadline() -> None:
    out, _, _ = _check(_state(), {"status": "pending"}, at=T0 + 10)
    assert (out["ready"], out["phase"]) == (False, "processing")
    with pytest.raises(errors.DeadlineExceeded):
        _check(_state(), {"status": "pending"}, at=T0 + 1800)


def test_null_score_placeholders_keep_the_poll_waiting() -> None:
    placeholders = {
        **UNSCORED,
        "extraction_score_average": None,
        "extraction_schema_json": json.dumps(
            {
                "invoice_number": "INV-1",
                "invoice_number_score": {"score": None},
                "total": 5,
                "total_score": {"score": None},
            }
        ),
    }
    out, store, _ = _check(_state(), placeholders, at=T0 + 20)
    assert (out["ready"], out["phase"]) == (False, "unscored")
    later, _, _ = _check(_state(out), SCORED, at=T0 + 30, store=store)
    assert (later["ready"], later["scored"]) == (True, True)


def test_the_record_names_the_latest_request_and_how_many_submissions_it_took() -> None:
    # GIVEN a document throttled once, resubmitted, then scored
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    resubmitted = _poll(_state(throttled), FakeDatalab(), _throttle_store(), at=T0 + 50)
    env = _eval_env(SCORED)
    scored, _, _ = _check(_state(resubmitted), SCORED, at=T0 + 80, store=env.store)
    # WHEN it is evaluated
    _evaluate(env, _state(scored))
    # THEN the record carries the request whose result it kept, and 2 submissions
    record = env.results.items["doc-1"]
    assert_valid_record(record)
    assert record["status"] == "complete"
    assert record["datalab"]["request_id"] == resubmitted["datalab"]["request_id"]
    assert record["datalab"]["submissions"] == 2


def test_a_failure_after_resubmits_records_them() -> None:
    throttled, _, _ = _check(_state(), PAGE_RATE, at=T0 + 30)
    resubmitted = _poll(_state(throttled), FakeDatalab(), _throttle_store(), at=T0 + 50)
    state = _state(resubmitted)
    state["failure"] = {
        "Error": "DeadlineExceeded",
        "Cause": _lambda_cause("DeadlineExceeded", "x"),
    }
    env = _eval_env()
    env.store.add("schemas/invoice.json", json.dumps(SCHEMA).encode())
    _evaluate(env, state)
    record = env.results.items["doc-1"]
    assert_valid_record(record)
    assert record["flags"] == ["extraction_failed:timeout"]
    assert record["datalab"]["request_id"] == resubmitted["datalab"]["request_id"]
    assert record["datalab"]["submissions"] == 2


# ------------------------------------------------------------------ submit_upload


@dataclass
class Env:
    store: FakeStore
    datalab: FakeDatalab
    results: FakeResults
    queue: FakeQueue
    workflows: FakeWorkflows
    factory_calls: int = 0


def _env(*, datalab: FakeDatalab | None = None, existing: set[str] | None = None) -> Env:
    store = FakeStore()
    store.add("schemas/invoice.json", json.dumps(SCHEMA).encode())
    return Env(store, datalab or FakeDatalab(), FakeResults(), FakeQueue(), FakeWorkflows(existing))


def _submit(
    env: Env,
    key: str,
    *,
    receive_count: int = 1,
    spending: Any = None,
    webhook: Any = None,
    **settings: Any,
) -> Any:
    def factory() -> FakeDatalab:
        env.factory_calls += 1
        return env.datalab

    upload = Upload(bucket=BUCKET, raw_key=key, version_id="v-1", etag="etag-1", size=10)
    submit_settings = make_settings(SubmitSettings, **settings)
    return submit_upload(
        upload.document(),
        last_delivery=is_last_delivery(receive_count, submit_settings.max_receives),
        store=env.store,
        datalab=factory,
        results=env.results,
        review_queue=env.queue,
        workflows=env.workflows,
        settings=submit_settings,
        spending=spending,
        webhook=lambda: webhook,
        now=Clock(T0),
        rng=random.Random(3),
    )


def _doc_id(key: str) -> str:
    return document_id_for(BUCKET, key, "v-1", "etag-1")


def test_submit_starts_a_workflow_with_only_keys_and_ids_in_its_state() -> None:
    env = _env()
    key = "incoming/invoice/2024/ACME invoice.pdf"
    env.store.add(key, PDF)
    outcome = _submit(env, "incoming/invoice/2024/ACME+invoice.pdf")

    assert outcome.outcome == "started"
    assert outcome.document_id == _doc_id(key)
    [sent] = env.datalab.submitted
    assert sent["data"] == PDF  # the sniffed head is replayed, nothing lost or doubled
    assert sent["filename"] == "ACME invoice.pdf"
    assert sent["content_type"] == "application/pdf"
    assert json.loads(sent["page_schema"]) == SCHEMA
    assert sent["size"] == len(PDF)
    assert env.store.opened[0].was_closed

    [(name, state)] = env.workflows.started
    assert name == outcome.document_id
    assert set(state) == {
        "document",
        "schema",
        "upload_threshold",
        "datalab",
        "submitted_at",
        "first_wait_seconds",
    }
    assert state["document"] == {
        "document_id": outcome.document_id,
        "bucket": BUCKET,
        "key": key,
        "doc_type": "invoice",
        "version_id": "v-1",
        "etag": "etag-1",
        "size": len(PDF),
    }
    assert state["schema"] == {"key": "schemas/invoice.json", "version_id": "schema-v1"}
    assert state["upload_threshold"] is None
    assert state["datalab"] == {
        "request_id": "req-1",
        "check_url": "https://www.datalab.to/api/v1/extract/req-1",
        "submissions": 1,
    }
    assert state["submitted_at"] == iso(T0)
    assert isinstance(state["first_wait_seconds"], int)
    assert state["first_wait_seconds"] >= 1
    text = json.dumps(state)
    assert "%PDF" not in text
    assert "xxxxxxxx" not in text
    assert len(text) < 2000
    assert env.results.items == {}
    assert env.queue.messages == []


def test_submit_carries_a_valid_upload_threshold() -> None:
    env = _env()
    env.store.add("incoming/invoice/t.pdf", PDF, metadata={"human-review-threshold": "0.5"})
    assert _submit(env, "incoming/invoice/t.pdf").outcome == "started"
    assert env.workflows.started[0][1]["upload_threshold"] == 0.5


def test_a_tiny_document_still_waits_at_least_a_second() -> None:
    env = _env()
    env.store.add("incoming/invoice/tiny.pdf", b"%PDF-")
    _submit(env, "incoming/invoice/tiny.pdf")
    assert env.workflows.started[0][1]["first_wait_seconds"] >= 1


def test_a_duplicate_with_a_workflow_submits_nothing() -> None:
    key = "incoming/invoice/dup.pdf"
    env = _env(existing={_doc_id(key)})
    env.store.add(key, PDF)
    outcome = _submit(env, key)
    assert outcome.outcome == "duplicate"
    assert env.factory_calls == 0
    assert env.datalab.submitted == []
    assert env.workflows.started == []
    assert env.queue.messages == []


def test_a_duplicate_with_a_record_submits_nothing() -> None:
    key = "incoming/invoice/dup.pdf"
    env = _env()
    env.store.add(key, PDF)
    env.results.items[_doc_id(key)] = {"document_id": _doc_id(key), "review_status": "auto"}
    outcome = _submit(env, key)
    assert outcome.outcome == "duplicate"
    assert env.factory_calls == 0
    assert env.workflows.started == []
    assert env.results.put_calls == 0


def _assert_failed(env: Env, outcome: Any, reason: str, *, threshold: float = 0.85) -> dict:
    assert outcome.outcome == "failed"
    assert outcome.reason == reason
    record = env.results.items[outcome.document_id]
    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["review_status"] == "needs_review"
    assert record["flags"] == [f"extraction_failed:{reason}"]
    assert record["human_review_threshold"] == threshold
    assert record["completed_at"] == iso(T0)
    assert record["error"]["message"]
    [message] = env.queue.messages
    assert_valid_review_message(message)
    assert message["document_id"] == outcome.document_id
    assert message["flags"] == record["flags"]
    assert env.workflows.started == []
    return record


@pytest.mark.parametrize(
    ("key", "setup", "reason", "error_type"),
    [
        ("outgoing/invoice/a.pdf", {}, "bad_key", "InvalidDocument"),
        ("incoming/a.pdf", {}, "bad_key", "InvalidDocument"),
        ("incoming/Invoice!/a.pdf", {}, "bad_key", "InvalidDocument"),
        ("incoming/invoice/a.exe", {"body": b"MZ"}, "unsupported_type", "InvalidDocument"),
        ("incoming/invoice/gone.pdf", {"missing": True}, "object_missing", "InvalidDocument"),
        ("incoming/invoice/empty.pdf", {"body": b""}, "empty_file", "InvalidDocument"),
        (
            "incoming/invoice/huge.pdf",
            {"size": MAX_FILE_BYTES + 1},
            "file_too_large",
            "InvalidDocument",
        ),
        (
            "incoming/invoice/renamed.pdf",
            {"body": b"MZ\x90\x00 not a pdf"},
            "unsupported_type",
            "InvalidDocument",
        ),
        (
            "incoming/invoice/t.pdf",
            {"metadata": {"human-review-threshold": "high"}},
            "invalid_threshold",
            "InvalidThreshold",
        ),
        (
            "incoming/invoice/t.pdf",
            {"metadata": {"human-review-threshold": "1.5"}},
            "invalid_threshold",
            "InvalidThreshold",
        ),
        ("incoming/receipt/r.pdf", {}, "schema_missing", "SchemaNotFound"),
        ("incoming/broken/b.pdf", {"schema": b"{not json"}, "schema_invalid", "SchemaInvalid"),
        (
            "incoming/broken/b.pdf",
            {"schema": b'{"properties": {}}'},
            "schema_invalid",
            "SchemaInvalid",
        ),
    ],
)
def test_bad_input_is_recorded_as_failed_without_calling_datalab(
    key: str, setup: dict[str, Any], reason: str, error_type: str
) -> None:
    env = _env()
    if not setup.get("missing"):
        env.store.add(
            key, setup.get("body", PDF), metadata=setup.get("metadata"), size=setup.get("size")
        )
    if "schema" in setup:
        env.store.add("schemas/broken.json", setup["schema"])
    raw_key = key.replace(" ", "+")
    outcome = _submit(env, raw_key)

    record = _assert_failed(env, outcome, reason)
    assert record["error"]["type"] == error_type
    assert record["source"]["key"] == key
    assert env.datalab.submitted == []
    assert all(stream.was_closed for stream in env.store.opened)
    if reason in ("file_too_large", "empty_file", "bad_key", "object_missing"):
        assert env.store.opened == []  # decided from the key and HEAD: nothing downloaded


@pytest.mark.parametrize("metadata", ["0.49", "0", "0.0"])
def test_an_upload_threshold_below_the_stack_minimum_fails_the_document(metadata: str) -> None:
    # GIVEN an operator who allows uploads to lower the threshold to 0.5 and no further
    env = _env()
    env.store.add("incoming/invoice/t.pdf", PDF, metadata={"human-review-threshold": metadata})
    # WHEN an upload asks for less
    outcome = _submit(env, "incoming/invoice/t.pdf", minimum_upload_threshold=0.5)
    # THEN it is refused as an invalid threshold, saying what the minimum is; nothing is sent
    record = _assert_failed(env, outcome, "invalid_threshold")
    assert record["error"]["type"] == "InvalidThreshold"
    assert "below the stack's minimum of 0.5" in record["error"]["message"]
    assert "MinimumUploadThreshold" in record["error"]["message"]
    assert env.datalab.submitted == []


@pytest.mark.parametrize(("metadata", "expected"), [("0.5", 0.5), ("0.9", 0.9), ("1", 1.0)])
def test_an_upload_threshold_at_or_above_the_minimum_is_carried(
    metadata: str, expected: float
) -> None:
    env = _env()
    env.store.add("incoming/invoice/t.pdf", PDF, metadata={"human-review-threshold": metadata})
    outcome = _submit(env, "incoming/invoice/t.pdf", minimum_upload_threshold=0.5)
    assert outcome.outcome == "started"
    assert env.workflows.started[0][1]["upload_threshold"] == expected


def test_a_schema_with_a_remote_ref_fails_the_document_without_reading_it(tmp_path) -> None:
    # GIVEN a schema whose property refers to a readable schema outside it
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"type": "string"}))
    env = _env()
    schema = {"properties": {"invoice_number": {"$ref": outside.as_uri()}}}
    env.store.add("schemas/broken.json", json.dumps(schema).encode())
    env.store.add("incoming/broken/b.pdf", PDF)
    # WHEN an upload of that type is submitted
    outcome = _submit(env, "incoming/broken/b.pdf")
    # THEN it fails as a broken schema does, saying why, and Datalab never sees it
    record = _assert_failed(env, outcome, "schema_invalid")
    assert "not a local reference" in record["error"]["message"]
    assert env.datalab.submitted == []


def test_a_failure_after_a_valid_upload_threshold_records_that_threshold() -> None:
    env = _env()
    env.store.add("incoming/receipt/r.pdf", PDF, metadata={"human-review-threshold": "0.4"})
    record = _assert_failed(
        env, _submit(env, "incoming/receipt/r.pdf"), "schema_missing", threshold=0.4
    )
    assert record["document_type"] == "receipt"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (errors.DatalabAuthError("401: Invalid API key"), "datalab_auth"),
        (errors.DatalabRequestRejected("422: page_schema"), "datalab_rejected"),
        (errors.DatalabMalformedResponse("no request_id"), "malformed_result"),
        (errors.InvalidDocument("stream size mismatch", reason="size_mismatch"), "size_mismatch"),
    ],
)
def test_permanent_datalab_errors_are_recorded_as_failed(error: Exception, reason: str) -> None:
    env = _env(datalab=FakeDatalab(submit_error=error))
    env.store.add("incoming/invoice/a.pdf", PDF)
    record = _assert_failed(env, _submit(env, "incoming/invoice/a.pdf"), reason)
    assert record["error"] == {"type": type(error).__name__, "message": str(error)}
    assert len(env.datalab.submitted) == 1
    assert env.store.opened[0].was_closed


def test_a_configuration_error_met_in_submit_is_a_failed_record_on_the_first_delivery() -> None:
    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)

    def unusable() -> FakeDatalab:
        raise errors.ConfigError("DATALAB_API_URL must use https (http only for a loopback host)")

    upload = Upload(bucket=BUCKET, raw_key="incoming/invoice/a.pdf", version_id="v-1", etag="e")
    outcome = submit_upload(
        upload.document(),
        last_delivery=False,  # not left to the last of 10 deliveries: no retry can fix it
        store=env.store,
        datalab=unusable,
        results=env.results,
        review_queue=env.queue,
        workflows=env.workflows,
        settings=make_settings(SubmitSettings),
        now=Clock(T0),
    )
    record = _assert_failed(env, outcome, "configuration")
    assert record["error"]["type"] == "Misconfigured"
    assert "DATALAB_API_URL must use https" in record["error"]["message"]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (errors.DatalabServerError("503"), "datalab_server_error"),
        (errors.DatalabRateLimited("429", retry_after=3), "rate_limited"),
        (errors.DatalabUnreachable("connect timeout"), "datalab_unreachable"),
    ],
)
def test_transient_errors_raise_until_the_last_delivery_then_record(
    error: Exception, reason: str
) -> None:
    env = _env(datalab=FakeDatalab(submit_error=error))
    env.store.add("incoming/invoice/a.pdf", PDF)
    for receive_count in (1, 2):
        with pytest.raises(type(error)):
            _submit(env, "incoming/invoice/a.pdf", receive_count=receive_count, max_receives=3)
        assert env.results.items == {}
        assert env.queue.messages == []
    outcome = _submit(env, "incoming/invoice/a.pdf", receive_count=3, max_receives=3)
    record = _assert_failed(env, outcome, reason)
    assert record["error"]["type"] == type(error).__name__
    assert len(env.datalab.submitted) == 3
    assert all(stream.was_closed for stream in env.store.opened)


def test_a_delivery_past_the_limit_also_records() -> None:
    env = _env(datalab=FakeDatalab(submit_error=errors.DatalabServerError("500")))
    env.store.add("incoming/invoice/a.pdf", PDF)
    outcome = _submit(env, "incoming/invoice/a.pdf", receive_count=9, max_receives=3)
    _assert_failed(env, outcome, "datalab_server_error")


# ------------------------------------------------------------------ evaluate_document


def _eval_env(result: dict[str, Any] | None = None) -> Env:
    env = _env()
    if result is not None:
        env.store.add(result_key_for("doc-1"), json.dumps(result).encode())
    return env


def _evaluate(env: Env, state: Any, **settings: Any) -> Any:
    return evaluate_document(
        state,
        store=env.store,
        results=env.results,
        review_queue=env.queue,
        settings=make_settings(EvaluateSettings, **settings),
        now=Clock(T0 + 60),
    )


def _ready_state(scored: bool = True, upload_threshold: float | None = None) -> dict[str, Any]:
    state = _state(
        {
            "ready": True,
            "scored": scored,
            "phase": "scored" if scored else "scores_unavailable",
            "polls": 3,
            "result_key": result_key_for("doc-1"),
            "complete_seen_at": iso(T0 + 20),
            "page_count": 2,
            "next_wait_seconds": 0,
        }
    )
    state["upload_threshold"] = upload_threshold
    return state


def test_evaluate_a_scored_result_is_auto_and_sends_nothing() -> None:
    env = _eval_env(SCORED)
    state = _ready_state(upload_threshold=0.7)
    state["poll"]["cost_cents"] = 2.0
    summary = _evaluate(env, state)
    assert summary == {
        "document_id": "doc-1",
        "status": "complete",
        "review_status": "auto",
        "flags": [],
        "cost_cents": 2.0,
    }
    record = env.results.items["doc-1"]
    assert_valid_record(record)
    assert record["fields"]["total"]["confidence"] == 0.75
    # what the poll learnt of the charge and the pages reaches the record
    assert record["datalab"] == {
        "request_id": "req-1",
        "result_key": result_key_for("doc-1"),
        "submissions": 1,
        "cost_cents": 2.0,
        "page_count": 2,
    }
    assert record["submitted_at"] == iso(T0)
    assert record["completed_at"] == iso(T0 + 60)
    assert env.queue.messages == []


def test_an_auto_document_sampled_for_audit_is_recorded_so_and_queued_as_an_audit() -> None:
    # GIVEN every auto document sampled for audit
    env = _eval_env(SCORED)
    summary = _evaluate(env, _ready_state(upload_threshold=0.7), audit_sample_rate=1.0)
    # THEN it stays auto, its record says audit_sample, and the review queue gets it as an audit
    assert summary["review_status"] == "auto"
    record = env.results.items["doc-1"]
    assert_valid_record(record)
    assert record["audit_sample"] is True
    [message] = env.queue.messages
    assert_valid_review_message(message)
    assert (message["audit"], message["review_status"]) == (True, "auto")
    # WHEN evaluate runs again (a retry) under another rate: the stored record is what is sent
    _evaluate(env, _ready_state(upload_threshold=0.7), audit_sample_rate=0.0)
    assert env.results.items["doc-1"]["audit_sample"] is True
    assert env.queue.messages == [message, message]


def test_at_rate_zero_an_auto_document_is_not_sampled_and_sends_nothing() -> None:
    env = _eval_env(SCORED)
    _evaluate(env, _ready_state(upload_threshold=0.7), audit_sample_rate=0.0)
    assert env.results.items["doc-1"]["audit_sample"] is False
    assert env.queue.messages == []


def test_evaluate_without_scores_keeps_values_and_flags_scores_unavailable() -> None:
    env = _eval_env(UNSCORED)
    summary = _evaluate(env, _ready_state(scored=False))
    assert summary["flags"] == ["scores_unavailable"]
    assert summary["review_status"] == "needs_review"
    record = env.results.items["doc-1"]
    assert record["fields"]["invoice_number"]["value"] == "INV-1"
    assert record["fields"]["invoice_number"]["confidence"] is None
    [message] = env.queue.messages
    assert_valid_review_message(message)


def test_evaluate_a_stored_result_that_is_not_json_raises_malformed() -> None:
    env = _eval_env()
    env.store.add(result_key_for("doc-1"), b"{truncated")
    with pytest.raises(errors.DatalabMalformedResponse):
        _evaluate(env, _ready_state())
    assert env.results.items == {}


def _lambda_cause(error_type: str, message: str) -> str:
    return json.dumps(
        {
            "errorMessage": message,
            "errorType": error_type,
            "stackTrace": ['  File "app.py", line 1'],
        }
    )


@pytest.mark.parametrize(
    ("error", "cause", "reason", "message"),
    [
        (
            "DatalabResultExpired",
            _lambda_cause("DatalabResultExpired", "Datalab forgot req-1"),
            "result_expired",
            "Datalab forgot req-1",
        ),
        (
            "DeadlineExceeded",
            _lambda_cause("DeadlineExceeded", "still processing after 1800 s"),
            "timeout",
            "still processing after 1800 s",
        ),
        (
            "UntrustedCheckUrl",
            _lambda_cause("UntrustedCheckUrl", "not on the API origin"),
            "untrusted_check_url",
            "not on the API origin",
        ),
        (
            "DatalabRateLimited",
            _lambda_cause("DatalabRateLimited", "429 again"),
            "rate_limited",
            "429 again",
        ),
        (
            "ConfigError",
            _lambda_cause("ConfigError", "DATALAB_API_URL must use https"),
            "configuration",
            "DATALAB_API_URL must use https",
        ),
        ("States.Timeout", "", "workflow_error", "States.Timeout"),
        ("States.TaskFailed", "plain text cause", "workflow_error", "plain text cause"),
        # a name that exists in errors but is not a DoctriageError
        ("annotations", "x", "workflow_error", "x"),
        ("KeyError", _lambda_cause("KeyError", "'poll'"), "workflow_error", "'poll'"),
    ],
)
def test_evaluate_with_a_failure_records_the_reason(
    error: str, cause: str, reason: str, message: str
) -> None:
    env = _eval_env()
    state = _state({"phase": "unscored", "result_key": result_key_for("doc-1")})
    state["failure"] = {"Error": error, "Cause": cause}
    summary = _evaluate(env, state)
    assert summary == {
        "document_id": "doc-1",
        "status": "failed",
        "review_status": "needs_review",
        "flags": [f"extraction_failed:{reason}"],
        "cost_cents": None,
    }
    record = env.results.items["doc-1"]
    assert_valid_record(record)
    assert record["error"] == {"type": error, "message": message}
    assert record["datalab"] == {
        "request_id": "req-1",
        "result_key": result_key_for("doc-1"),
        "submissions": 1,
        "cost_cents": None,
        "page_count": None,
    }
    assert record["document_type"] == "invoice"
    assert record["submitted_at"] == iso(T0)
    [sent] = env.queue.messages
    assert_valid_review_message(sent)
    assert sent["flags"] == [f"extraction_failed:{reason}"]


def test_a_failure_uses_the_schema_threshold_or_falls_back_when_it_is_gone() -> None:
    env = _eval_env()
    env.store.add(
        "schemas/invoice.json", json.dumps({**SCHEMA, "x-review-threshold": 0.6}).encode()
    )
    state = _state()
    state["failure"] = {"Error": "DeadlineExceeded", "Cause": ""}
    _evaluate(env, state)
    assert env.results.items["doc-1"]["human_review_threshold"] == 0.6

    env = _eval_env()
    del env.store.objects["schemas/invoice.json"]
    state = _state()
    state["upload_threshold"] = 0.3
    state["failure"] = {"Error": "DeadlineExceeded", "Cause": ""}
    _evaluate(env, state)
    assert env.results.items["doc-1"]["human_review_threshold"] == 0.3


# ------------------------------------------------------------------ store_record


def _record(review_status: str, flags: list[str]) -> dict[str, Any]:
    return {
        "document_id": "doc-1",
        "status": "complete",
        "review_status": review_status,
        "flags": flags,
    }


def test_store_record_writes_once_and_resends_the_stored_record() -> None:
    results, queue = FakeResults(), FakeQueue()
    first = _record("needs_review", ["low_confidence_field:total"])
    assert store_record(first, results, queue) == first
    assert [m["flags"] for m in queue.messages] == [["low_confidence_field:total"]]

    # A retry that would decide differently: the first record stays and is delivered again.
    second = _record("auto", [])
    stored = store_record(second, results, queue)
    assert stored == first
    assert results.items["doc-1"] == first
    assert len(queue.messages) == 2
    assert queue.messages[1]["review_status"] == "needs_review"
    assert queue.messages[1]["flags"] == ["low_confidence_field:total"]
    assert queue.messages[1]["schema_version"] == "1"


def test_store_record_of_an_auto_record_sends_nothing_even_on_retry() -> None:
    results, queue = FakeResults(), FakeQueue()
    store_record(_record("auto", []), results, queue)
    stored = store_record(_record("needs_review", ["scores_unavailable"]), results, queue)
    assert stored["review_status"] == "auto"
    assert queue.messages == []
    assert results.put_calls == 2


class _UnavailableWorkflows(FakeWorkflows):
    def exists(self, name: str) -> bool:
        raise errors.AwsUnavailable("Step Functions: ThrottlingException")


def test_step_functions_unavailable_is_redelivered_then_recorded_on_the_last_delivery() -> None:
    # GIVEN Step Functions throttling the duplicate check (found in review: it sat outside the
    # typed net, so the last delivery went to the DLQ with no record)
    env = _env()
    env.workflows = _UnavailableWorkflows()
    key = "incoming/invoice/a.pdf"
    # WHEN it is not the last delivery THEN the error propagates for redelivery
    with pytest.raises(errors.AwsUnavailable):
        _submit(env, key, receive_count=1)
    assert env.results.items == {}
    # WHEN it is the last THEN the document is recorded as failed, nothing sent to Datalab
    outcome = _submit(env, key, receive_count=10)
    assert (outcome.outcome, outcome.reason) == ("failed", "aws_unavailable")
    assert env.results.items[_doc_id(key)]["flags"] == ["extraction_failed:aws_unavailable"]
    assert env.datalab.submitted == []


def _table_result(rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A schema with a line_items table and a scored result of ``rows`` rows, scored by cell;
    row 7's amount scores 2."""
    columns = {"description": {"type": "string"}, "quantity": {"type": "number"}}
    columns.update(unit_price={"type": "number"}, amount={"type": "number"})
    schema = {
        "properties": {
            "invoice_number": {"type": "string"},
            "line_items": {"type": "array", "items": {"type": "object", "properties": columns}},
        }
    }
    items = []
    for n in range(rows):
        row: dict[str, Any] = {"description": f"Widget, model {n:04d}", "quantity": n}
        row.update(unit_price=1.0, amount=n)
        for column in columns:
            score = 2 if (n, column) == (7, "amount") else 5
            row[f"{column}_score"] = {"score": score, "reasoning": f"As printed in row {n + 1}."}
            row[f"{column}_citations"] = [f"/page/{n // 40}/Span/{n % 40 * 3}"]
        items.append(row)
    extraction = {
        "invoice_number": "INV-1",
        "invoice_number_score": {"score": 5, "reasoning": "r"},
        "line_items": items,
    }
    result = {**UNSCORED, "extraction_schema_json": json.dumps(extraction)}
    return schema, result


def test_a_record_too_large_for_dynamodb_keeps_its_cells_in_s3_and_says_so() -> None:
    schema, result = _table_result(500)
    env = _eval_env(result)
    env.store.add("schemas/invoice.json", json.dumps(schema).encode())
    summary = _evaluate(env, _ready_state())

    assert summary["flags"] == ["low_confidence_field:line_items[7].amount"]
    record = env.results.items["doc-1"]
    assert_valid_record(record)
    assert record_size(record) <= RECORD_BUDGET_BYTES
    table = record["fields"]["line_items"]
    assert "items" not in table
    assert len(table["value"]) == 500
    cells_key = record["cells"]["key"]
    assert cells_key == cells_key_for("doc-1")
    assert record["cells"]["paths"] == ["line_items"]
    assert "DynamoDB" in record["cells"]["reason"]
    [(_key, body)] = [(k, b) for k, b in env.store.puts if k == cells_key]
    cells = json.loads(body)["line_items"]
    assert len(cells) == 500
    assert all(
        set(row) == set(schema["properties"]["line_items"]["items"]["properties"]) for row in cells
    )
    assert cells[7]["amount"]["score"] == 2
    assert cells[7]["amount"]["value"] == 7
    # The same record with its cells back would not have fitted.
    assert (
        record_size(
            {**record, "fields": {**record["fields"], "line_items": {**table, "items": cells}}}
        )
        > RECORD_BUDGET_BYTES
    )
    [message] = env.queue.messages
    assert_valid_review_message(message)
    assert message["flagged_paths"] == ["line_items[7].amount"]
    assert message["cells"] == record["cells"]


def test_a_record_that_fits_keeps_its_cells_in_the_record() -> None:
    schema, result = _table_result(20)
    env = _eval_env(result)
    env.store.add("schemas/invoice.json", json.dumps(schema).encode())
    _evaluate(env, _ready_state())

    record = env.results.items["doc-1"]
    assert "cells" not in record
    assert len(record["fields"]["line_items"]["items"]) == 20
    assert [k for k, _ in env.store.puts if k.endswith("cells.json")] == []


# ------------------------------------------------------------------ spend guard


class FakeSpending:
    def __init__(self, pages: int = 0, cents: float = 0.0) -> None:
        self.pages, self.cents = pages, cents
        self.reads: list[tuple[str, str]] = []
        self.added: list[tuple[str, str, str, int, float]] = []

    def spent(self, day: str, month: str) -> tuple[int, float]:
        self.reads.append((day, month))
        return self.pages, self.cents

    def add(self, document_id: str, day: str, month: str, *, pages: int, cents: float) -> None:
        self.added.append((document_id, day, month, pages, cents))


def test_over_the_daily_page_budget_nothing_is_sent_and_nothing_is_recorded() -> None:
    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    spending = FakeSpending(pages=100)
    with pytest.raises(errors.HeldForBudget, match="DailyPageBudget 100") as held:
        _submit(env, "incoming/invoice/a.pdf", spending=spending, budget=Budget(daily_pages=100))
    assert 1 <= held.value.retry_after <= RECHECK_SECONDS
    assert env.datalab.submitted == []
    assert env.workflows.started == []
    assert env.results.items == {}
    assert spending.reads == [("day#2025-06-15", "month#2025-06")]  # T0's UTC day and month


def test_over_the_monthly_cents_budget_nothing_is_sent() -> None:
    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    with pytest.raises(errors.HeldForBudget, match="MonthlyBudgetCents 500"):
        _submit(
            env,
            "incoming/invoice/a.pdf",
            spending=FakeSpending(pages=1, cents=500.0),
            budget=Budget(daily_pages=1000, monthly_cents=500),
        )
    assert env.datalab.submitted == []


def test_under_the_budget_the_upload_is_sent() -> None:
    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    outcome = _submit(
        env,
        "incoming/invoice/a.pdf",
        spending=FakeSpending(pages=99, cents=499.0),
        budget=Budget(daily_pages=100, monthly_cents=500),
    )
    assert outcome.outcome == "started"
    assert len(env.datalab.submitted) == 1


def test_without_a_budget_spending_is_not_even_read() -> None:
    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    spending = FakeSpending(pages=10**9)
    assert _submit(env, "incoming/invoice/a.pdf", spending=spending).outcome == "started"
    assert spending.reads == []


def test_a_records_pages_and_cents_are_counted_by_document_before_it_is_stored() -> None:
    # Counted by document id (the usage table counts an id once: test_usage_table.py) and before
    # the write, so a retry after a failed write cannot lose the count.
    env = _eval_env(BILLED)
    spending = FakeSpending()
    state = _ready_state()
    state["poll"]["cost_cents"] = 2.0
    for _ in range(2):  # a retried evaluate stores the same record again
        evaluate_document(
            state,  # type: ignore[arg-type]
            store=env.store,
            results=env.results,
            review_queue=env.queue,
            settings=make_settings(EvaluateSettings),
            spending=spending,
            now=Clock(T0 + 60),
        )
    assert spending.added == [("doc-1", "day#2025-06-15", "month#2025-06", 2, 2.0)] * 2
    assert env.results.put_calls == 2


# ------------------------------------------------------------------ shared request budget


class FakeRequestBudget:
    def __init__(self, grants: int) -> None:
        self.grants = grants
        self.asked: list[tuple[str, int]] = []

    def take(self, key: str, allowance: int, expires_at: int) -> bool:
        self.asked.append((key, allowance))
        if self.grants <= 0:
            return False
        self.grants -= 1
        return True


def _datalab_settings(per_minute: int) -> DatalabSettings:
    return dataclasses.replace(DEFAULTS["datalab"], requests_per_minute=per_minute)


def _poll_budgeted(
    state: Any,
    datalab: FakeDatalab,
    store: FakeStore,
    *,
    at: float,
    budget: FakeRequestBudget,
    per_minute: int = 400,
) -> Any:
    return check_extraction(
        state,
        datalab=datalab,
        store=store,
        settings=make_settings(PollSettings, datalab=_datalab_settings(per_minute)),
        requests=budget,
        now=Clock(at),
    )


def test_a_poll_without_a_request_to_spare_asks_nothing_and_looks_again_next_window() -> None:
    first, store, _ = _check(_state(), UNSCORED, at=T0 + 20)
    datalab = FakeDatalab(answers=[SCORED])
    out = _poll_budgeted(
        _state(first), datalab, store, at=T0 + 30, budget=FakeRequestBudget(grants=0)
    )
    assert datalab.checked == []  # nothing asked of Datalab
    assert (out["ready"], out["phase"], out["polls"], out["queued"]) == (False, "unscored", 1, 1)
    assert 1 <= out["next_wait_seconds"] <= 5  # the budget's next window
    assert out["complete_seen_at"] == first["complete_seen_at"]
    assert out["result_key"] == first["result_key"]
    # ... and with a request to spare the poll goes on where it was
    again = _poll_budgeted(
        _state(out), datalab, store, at=T0 + 35, budget=FakeRequestBudget(grants=1)
    )
    assert datalab.checked == [_state()["datalab"]["check_url"]]
    assert (again["ready"], again["phase"], again["polls"]) == (True, "scored", 2)
    assert "queued" not in again


def test_a_submit_without_a_request_to_spare_sends_nothing_and_waits_on_the_queue() -> None:
    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    budget = FakeRequestBudget(grants=0)
    upload = Upload(bucket=BUCKET, raw_key="incoming/invoice/a.pdf", version_id="v-1", etag="e")
    with pytest.raises(errors.WaitingForRequests) as waiting:
        submit_upload(
            upload.document(),
            last_delivery=True,  # even on the last delivery: waiting is never a failure
            store=env.store,
            datalab=lambda: env.datalab,
            results=env.results,
            review_queue=env.queue,
            workflows=env.workflows,
            settings=make_settings(SubmitSettings, datalab=_datalab_settings(400)),
            requests=budget,
            now=Clock(T0),
        )
    assert 0 < waiting.value.retry_after <= 5
    assert budget.asked == [(f"requests#{int(T0 // 5)}", 30)]
    assert env.datalab.submitted == []
    assert env.results.items == {}


def test_no_budget_kept_asks_no_table() -> None:
    budget = FakeRequestBudget(grants=0)
    datalab = FakeDatalab(answers=[PROCESSING])
    out = _poll_budgeted(_state(), datalab, FakeStore(), at=T0 + 10, budget=budget, per_minute=0)
    assert out["phase"] == "processing"
    assert len(datalab.checked) == 1
    assert budget.asked == []


# ------------------------------------------------------------------ webhooks


class FakeRegistrations:
    def __init__(self, error: Exception | None = None) -> None:
        self.registered: list[tuple[str, str]] = []
        self.error = error

    def register(self, request_id: str, document_id: str) -> None:
        if self.error is not None:
            raise self.error
        self.registered.append((request_id, document_id))

    def expect(self, request_id: str, task_token: str) -> bool:
        raise AssertionError("submit never waits")

    def arrive(self, request_id: str, at: str) -> Arrival:
        raise AssertionError("submit never receives a webhook")


def test_with_webhooks_on_submit_asks_for_one_and_the_workflow_waits_for_it() -> None:
    from doctriage_core.workflow.submit import Webhook

    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    registrations = FakeRegistrations()
    hook = Webhook(url="https://hook.example/", arrivals=registrations)
    outcome = _submit(env, "incoming/invoice/a.pdf", webhook=hook)
    [sent] = env.datalab.submitted
    assert sent["webhook_url"] == "https://hook.example/"
    assert registrations.registered == [("req-1", outcome.document_id)]
    [(_, state)] = env.workflows.started
    assert state["webhook_wait_seconds"] == 120  # a small file: the floor
    assert 9 <= state["scores_first_wait_seconds"] <= 11


def test_the_webhook_wait_never_outlasts_the_processing_deadline() -> None:
    from doctriage_core.workflow.submit import Webhook

    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    hook = Webhook(url="https://hook.example/", arrivals=FakeRegistrations())
    _submit(env, "incoming/invoice/a.pdf", webhook=hook, processing_deadline_seconds=90)
    [(_, state)] = env.workflows.started
    assert state["webhook_wait_seconds"] == 90  # not the 120 s floor


def test_a_request_that_could_not_be_registered_is_polled_not_sent_again() -> None:
    from doctriage_core.workflow.submit import Webhook

    env = _env()
    env.store.add("incoming/invoice/a.pdf", PDF)
    failing = FakeRegistrations(errors.AwsUnavailable("DynamoDB throttled"))
    hook = Webhook(url="https://hook.example/", arrivals=failing)
    outcome = _submit(env, "incoming/invoice/a.pdf", webhook=hook)
    assert outcome.outcome == "started"
    assert len(env.datalab.submitted) == 1
    [(_, state)] = env.workflows.started
    assert "webhook_wait_seconds" not in state  # the state machine polls as without webhooks
