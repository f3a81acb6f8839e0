"""The emulator's HTTP face: Datalab's submit and poll endpoints over a timeline of jobs.

A job is extracted the moment it is submitted; what a poll sees then depends only on the clock:
``processing`` until the processing time has passed, ``complete`` without scores, then (fast mode
only) with scores after the scoring lag, and 404 once the result's time to live is over. Rate
limits and injected faults sit in front. ``/_emulator/*`` lets other processes drive it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from .config import JOB_FAULTS, POLL_FAULTS, SUBMIT_FAULTS, EmulatorConfig, FaultRule
from .document import (
    SUPPORTED_EXTENSIONS,
    Document,
    DocumentError,
    pad_metadata,
    parse_page_range,
    read_document,
    render,
)
from .fields import FieldResult, extract_fields
from .multipart import MultipartError, Part, parse_form
from .seeding import seed_errors

EXTRACT_PATH = "/api/v1/extract"
MODES = ("fast", "balanced", "turbo")
OUTPUT_FORMATS = ("markdown", "html", "json", "chunks")
# Multipart framing around the file may push a body a little past the file-size limit.
_FORM_SLACK = 64 * 1024
_FAULT_DETAIL = {
    429: "You can make 400 requests every 60 seconds",
    500: "Internal Server Error",
    529: "The server is overloaded; please try again later",
}
# Datalab's wording starts "Page rate limit exceeded. Your team has N pages in flight" [V]; the
# rest of the sentence is ours.
_PAGE_RATE_ERROR = (
    "Page rate limit exceeded. Your team has {in_flight:,} pages in flight "
    "(limit {limit}). Please resubmit once some of them have finished."
)
_FAILED_ERROR = "Extraction failed: the document could not be processed"


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the socket without answering


@dataclass
class _Job:
    request_id: str
    filename: str
    mode: str
    output_format: str
    faults: frozenset[str]
    page_count: int
    runtime: float
    complete_at: float
    scored_at: float
    expire_at: float
    output: Any
    fields: dict[str, FieldResult]
    error: str | None
    pending_until: float = 0.0
    throttled: str | None = None  # the page-rate error when the team was over its limit
    billed: bool = False  # a complete answer went out: later ones carry the cost

    @property
    def pages_held(self) -> int:
        """Pages this job holds in flight until it is complete (a throttled job holds none)."""
        return 0 if self.throttled is not None or self.error is not None else self.page_count


def _detail(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"detail": message}, headers or {})


def _invalid(loc: str, msg: str, value: Any, kind: str = "value_error") -> Reply:
    """A FastAPI-style 422."""
    return Reply(
        422, {"detail": [{"type": kind, "loc": ["body", loc], "msg": msg, "input": value}]}
    )


def _seconds(value: float) -> str:
    """Retry-After value: whole seconds when >= 1, else a decimal."""
    value = max(value, 0.0)
    if value >= 1:
        return str(math.ceil(value))
    return f"{math.ceil(value * 1000) / 1000:.3f}".rstrip("0").rstrip(".") or "0"


class DatalabEmulator:
    """A local stand-in for Datalab's structured-extraction API (see datalab-api.md).

    ``stats`` counts every submit and check request, 429s from the rate/concurrency limits
    (``rate_limited``), jobs ended by the pages-in-flight limit (``page_rate_limited``, the
    ``page_rate_limit`` fault included), fault firings, the most pages ever in flight
    (``max_pages_in_flight_seen``), and lists accepted jobs as ``(request_id, filename)``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._faults: list[FaultRule] = []
        self._fired: dict[tuple[int, str], int] = {}
        self._recent: deque[float] = deque()
        self._admitted = 0  # admitted submits whose job is not created yet
        self._counter = 0
        self._stats: dict[str, Any] = {
            "submit": 0,
            "check": 0,
            "rate_limited": 0,
            "page_rate_limited": 0,
            "page_rate_limited_jobs": [],  # (request_id, filename) of each
            "max_pages_in_flight_seen": 0,
            "faults_injected": 0,
            "webhook_posts": 0,
            "webhooks_delivered": 0,
            "webhooks_refused": 0,
            "webhooks_lost": 0,
            "submissions": [],
        }
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> DatalabEmulator:
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler)
        self._server.emulator = self
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="datalab-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that hold a connection for a timeout fault
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DatalabEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start()")
        return f"http://{self.host}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return dict(
                self._stats,
                submissions=list(self._stats["submissions"]),
                page_rate_limited_jobs=list(self._stats["page_rate_limited_jobs"]),
            )

    def add_fault(self, rule: FaultRule) -> None:
        with self._lock:
            self._faults.append(rule)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fired.clear()

    # --- requests ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: Message, body: bytes | None) -> Reply:
        """Answer one request; ``body`` is None when it was too large to keep."""
        if path == EXTRACT_PATH:
            return (
                self._submit(headers, body)
                if method == "POST"
                else _detail(405, "Method Not Allowed")
            )
        if path.startswith(EXTRACT_PATH + "/"):
            if method != "GET":
                return _detail(405, "Method Not Allowed")
            return self._poll(headers, path.removeprefix(EXTRACT_PATH + "/"))
        if path.startswith("/_emulator/"):
            return self._admin(method, path.removeprefix("/_emulator/"), body)
        return _detail(404, "Not Found")

    def _submit(self, headers: Message, body: bytes | None) -> Reply:
        self._count("submit")
        if headers.get("X-API-Key") != self.config.api_key:
            return _detail(401, "Invalid API key")
        if body is None:
            return self._too_large()
        try:
            form = parse_form(headers.get("Content-Type", ""), body)
        except MultipartError as exc:
            return _invalid("file", str(exc), None)
        upload = form.get("file")
        filename = (upload.filename or "") if upload else ""
        if self._take_fault(filename, {"auth"}):
            return _detail(401, "Invalid API key")
        refused = self._admit()
        if refused is not None:
            return refused
        try:
            return self._accept(form, filename)
        finally:
            with self._lock:
                self._admitted -= 1

    def _accept(self, form: dict[str, Part], filename: str) -> Reply:
        checked = self._validate(form)
        if isinstance(checked, Reply):
            return checked
        schema, mode, output_format, pages, max_pages = checked
        rule = self._take_fault(filename, SUBMIT_FAULTS)
        if rule is not None and rule.kind == "submit_timeout":
            # A slow server, not a dead one: the job still starts once the wait is over.
            self._stopping.wait(rule.hang_seconds * self.config.time_scale)
        elif rule is not None:
            return self._fault_reply(rule)
        faults = self._take_job_faults(filename)
        content = form["file"].data
        error = None
        try:
            doc = read_document(filename, content, pages, max_pages)
        except DocumentError as exc:
            doc, error = Document(pages=(), page_count=0, has_text_layer=False), str(exc)
        dropping = "drop_row" in faults
        fields = extract_fields(schema, doc, drop_row=dropping) if error is None else {}
        fields = seed_errors(schema, fields, self.config.seeded_errors, filename)
        output = render(doc, output_format)
        if output_format == "json" and self.config.result_padding_bytes > 0:
            output = pad_metadata(output, self.config.result_padding_bytes)
        page_count = self._claimed_pages(filename, doc.page_count) if error is None else 0
        scale = self.config.time_scale
        pending = self.config.pending_seconds * scale if "pending" in faults else 0.0
        now = self._clock()
        with self._lock:
            # Decided now, with the job's creation, so that concurrent submits cannot both slip
            # under the limit; the client only learns it from the poll (complete, success false).
            throttled = self._page_rate_verdict(page_count, now, forced="page_rate_limit" in faults)
            seconds = self.config.base_processing_seconds
            if throttled is None:
                seconds += self.config.processing_seconds_per_page * page_count
            self._counter += 1
            request_id = _request_id(self._counter, content)
            complete_at = now + pending + seconds * scale
            job = _Job(
                request_id=request_id,
                filename=filename,
                mode=mode,
                output_format=output_format,
                faults=faults,
                page_count=page_count,
                runtime=round(seconds, 3),
                complete_at=complete_at,
                scored_at=complete_at + self.config.scoring_lag_seconds * scale,
                expire_at=complete_at + self.config.result_ttl_seconds * scale,
                output=output,
                fields=fields,
                error=error,
                pending_until=now + pending,
                throttled=throttled,
            )
            self._jobs[request_id] = job
            if throttled is not None:
                self._stats["page_rate_limited"] += 1
                self._stats["page_rate_limited_jobs"].append((request_id, filename))
            self._stats["max_pages_in_flight_seen"] = max(
                self._stats["max_pages_in_flight_seen"], self._pages_in_flight(now)
            )
            self._stats["submissions"].append((request_id, filename))
            for stale in [k for k, j in self._jobs.items() if j.expire_at <= now]:
                del self._jobs[stale]
        path = f"{EXTRACT_PATH}/{request_id}"
        check_url = f"{self._check_base()}{path}"
        webhook = form.get("webhook_url")
        if webhook is not None and self.config.webhook_secret:
            self._send_webhook_later(
                webhook.data.decode("utf-8", errors="replace"), request_id, check_url, job
            )
        return Reply(
            200,
            {
                "success": True,
                "error": None,
                "request_id": request_id,
                "request_check_url": path if "relative_check_url" in faults else check_url,
                "versions": {},
            },
        )

    def _send_webhook_later(self, url: str, request_id: str, check_url: str, job: _Job) -> None:
        if "webhook_lost" in job.faults:
            self._count("webhooks_lost")
            return
        body = json.dumps(
            {
                "request_id": request_id,
                "request_check_url": check_url,
                "webhook_secret": self.config.webhook_secret,
            }
        ).encode()
        scale = self.config.time_scale

        def send() -> None:
            due = job.complete_at + self.config.webhook_delay_seconds * scale - self._clock()
            if self._stopping.wait(max(0.0, due)):
                return
            for attempt in range(self.config.webhook_attempts):
                if attempt and self._stopping.wait(2 ** (attempt - 1) * scale):
                    return
                self._count("webhook_posts")
                status = _post(url, body, self.config.webhook_timeout_seconds * scale)
                if 200 <= status < 300:
                    self._count("webhooks_delivered")
                    return
                if 400 <= status < 500:
                    self._count("webhooks_refused")
                    return
            self._count("webhooks_lost")

        threading.Thread(target=send, name=f"webhook-{request_id}", daemon=True).start()

    def _claimed_pages(self, filename: str, real: int) -> int:
        for part, pages in self.config.claimed_pages.items():
            if part in filename:
                return pages
        return real

    def _pages_in_flight(self, now: float) -> int:
        """Pages of jobs submitted and not yet complete (call with the lock held)."""
        return sum(j.pages_held for j in self._jobs.values() if j.complete_at > now)

    def _page_rate_verdict(self, pages: int, now: float, *, forced: bool) -> str | None:
        """The page-rate error if this job takes the team over its limit (lock held), else None."""
        limit = self.config.max_pages_in_flight
        in_flight = self._pages_in_flight(now)
        over = limit is not None and in_flight > 0 and in_flight + pages > limit
        if not (forced or over):
            return None
        return _PAGE_RATE_ERROR.format(
            in_flight=in_flight + pages,
            limit=f"{limit:,}" if limit is not None else "none",
        )

    def _validate(
        self, form: dict[str, Part]
    ) -> Reply | tuple[dict[str, Any], str, str, set[int] | None, int | None]:
        upload = form.get("file")
        if upload is None or upload.filename is None:
            if "file_url" in form:
                return _detail(400, "file_url is not supported by the emulator; upload the file")
            return _invalid("file", "Field required", None, "missing")
        schema = _page_schema(form)
        if isinstance(schema, Reply):
            return schema
        mode = form["extraction_mode"].text if "extraction_mode" in form else "balanced"
        if mode not in MODES:
            return _invalid(
                "extraction_mode", "Input should be 'fast', 'balanced' or 'turbo'", mode, "enum"
            )
        output_format = form["output_format"].text if "output_format" in form else "markdown"
        if output_format not in OUTPUT_FORMATS:
            msg = "Input should be 'markdown', 'html', 'json' or 'chunks'"
            return _invalid("output_format", msg, output_format, "enum")
        limits = _page_limits(form)
        if isinstance(limits, Reply):
            return limits
        pages, max_pages = limits
        extension = os.path.splitext(upload.filename)[1].lower()
        if extension not in SUPPORTED_EXTENSIONS:
            supported = " ".join(sorted(SUPPORTED_EXTENSIONS))
            return _detail(
                400, f"Unsupported file type {extension or '(none)'}; use one of {supported}"
            )
        if len(upload.data) > self.config.max_upload_bytes:
            return self._too_large()
        return schema, mode, output_format, pages, max_pages

    def _poll(self, headers: Message, request_id: str) -> Reply:
        self._count("check")
        if headers.get("X-API-Key") != self.config.api_key:
            return _detail(401, "Invalid API key")
        if self.config.limit_polls:
            refused = self._admit(poll=True)
            if refused is not None:
                return refused
        job = self._job(request_id)
        if job is not None:
            if self._take_fault(job.filename, {"auth"}):
                return _detail(401, "Invalid API key")
            rule = self._take_fault(job.filename, POLL_FAULTS)
            if rule is not None and rule.kind == "poll_timeout":
                self._stopping.wait(rule.hang_seconds * self.config.time_scale)
            elif rule is not None and rule.kind == "poll_drop":
                return Reply(0, drop=True)
            elif rule is not None:
                return self._fault_reply(rule)
            job = self._job(request_id)
        now = self._clock()
        if job is None or ("expire" in job.faults and now >= job.complete_at):
            return _detail(404, "Request not found; results are deleted an hour after processing")
        if now < job.pending_until:
            return Reply(200, {"status": "pending"})
        if now < job.complete_at:
            return Reply(200, {"status": "processing"})
        return Reply(200, self._result(job, now))

    def _result(self, job: _Job, now: float) -> dict[str, Any]:
        if job.error is not None or "failed" in job.faults:
            return {
                "status": "failed",
                "success": False,
                "error": job.error or _FAILED_ERROR,
                "output_format": job.output_format,
                "page_count": job.page_count,
                "versions": {},
            }
        body: dict[str, Any] = {
            "status": "complete",
            "success": True,
            "error": None,
            "output_format": job.output_format,
            job.output_format: job.output,
            "extraction_schema_json": None,
            "page_count": job.page_count,
            "runtime": job.runtime,
            "cost_breakdown": {"final_cost_cents": self._bill(job)},
            "versions": {},
        }
        unsuccessful = job.throttled or (_FAILED_ERROR if "success_false" in job.faults else None)
        if unsuccessful is not None:
            body.update(success=False, error=unsuccessful, cost_breakdown={"final_cost_cents": 0})
            body[job.output_format] = None
            return body
        scored = job.mode == "fast" and "never_scored" not in job.faults and now >= job.scored_at
        placeholders = not scored and "null_scores" in job.faults
        extraction: dict[str, Any] = {}
        scores: list[int] = []  # every score sent, cells' included
        for name, result in job.fields.items():
            _put_field(extraction, name, result, self.config.nested_scores, scored, scores)
            if placeholders:
                extraction[f"{name}_score"] = {"score": None}
        text = json.dumps(extraction)
        body["extraction_schema_json"] = (
            text[: len(text) // 2] if "malformed" in job.faults else text
        )
        if scored:
            body["extraction_score_average"] = sum(scores) / len(scores)
        elif placeholders:
            body["extraction_score_average"] = None
        return body

    def _bill(self, job: _Job) -> int | None:
        """Datalab's charge: null on the first complete answer, filled in on later fetches."""
        with self._lock:
            billed, job.billed = job.billed, True
        return math.ceil(job.page_count * self.config.cents_per_page) if billed else None

    def _admin(self, method: str, what: str, body: bytes | None) -> Reply:
        if what == "stats" and method == "GET":
            return Reply(200, self.stats)
        if what != "faults":
            return _detail(404, "Not Found")
        if method == "GET":
            with self._lock:
                return Reply(200, [asdict(rule) for rule in self._faults])
        if method == "DELETE":
            self.clear_faults()
            return Reply(200, {"cleared": True})
        if method == "POST":
            try:
                rule = FaultRule(**json.loads(body or b"{}"))
            except (TypeError, ValueError) as exc:
                return _detail(400, f"bad fault rule: {exc}")
            self.add_fault(rule)
            return Reply(201, asdict(rule))
        return _detail(405, "Method Not Allowed")

    # --- helpers ----------------------------------------------------------------------------

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    def _job(self, request_id: str) -> _Job | None:
        now = self._clock()
        with self._lock:
            job = self._jobs.get(request_id)
            if job is not None and now >= job.expire_at:
                del self._jobs[request_id]
                return None
            return job

    def _take_fault(self, filename: str, kinds: set[str] | frozenset[str]) -> FaultRule | None:
        """The first rule of these kinds that still fires for this filename (and count it)."""
        with self._lock:
            for index, rule in enumerate(self._faults):
                if rule.kind not in kinds or rule.match not in filename:
                    continue
                fired = self._fired.get((index, filename), 0)
                if rule.times is not None and fired >= rule.times:
                    continue
                self._fired[(index, filename)] = fired + 1
                self._stats["faults_injected"] += 1
                return rule
        return None

    def _take_job_faults(self, filename: str) -> frozenset[str]:
        """The job faults that fire for this submission: at most one rule of each kind."""
        kinds: set[str] = set()
        for kind in sorted(JOB_FAULTS):
            if self._take_fault(filename, {kind}) is not None:
                kinds.add(kind)
        return frozenset(kinds)

    def _fault_reply(self, rule: FaultRule) -> Reply:
        status = int(rule.kind.rsplit("_", 1)[1])
        headers = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = _seconds(rule.retry_after)
        return _detail(status, _FAULT_DETAIL[status], headers)

    def _admit(self, *, poll: bool = False) -> Reply | None:
        """Apply the per-minute and concurrency limits; on success reserve a slot.

        A poll (when ``limit_polls``) counts against the per-minute limit only: it starts no job.
        """
        limit = self.config.rate_limit_per_minute
        concurrent = None if poll else self.config.max_concurrent
        now = self._clock()
        window = 60.0 * self.config.time_scale
        with self._lock:
            while self._recent and self._recent[0] <= now - window:
                self._recent.popleft()
            refused = None
            if limit is not None and len(self._recent) >= limit:
                wait = self._recent[0] + window - now
                refused = f"You can make {limit} requests every 60 seconds", wait
            if refused is None and concurrent is not None:
                running = [j.complete_at for j in self._jobs.values() if j.complete_at > now]
                if len(running) + self._admitted >= concurrent:
                    wait = min(running) - now if running else window
                    refused = f"You can make {concurrent} concurrent requests", wait
            if refused is not None:
                self._stats["rate_limited"] += 1
                # Reported on the emulator's own timeline (unscaled), like every other time it
                # speaks of: a client in a compressed run scales it like its own waits.
                retry_after = refused[1] / self.config.time_scale
                headers = {"Retry-After": _seconds(retry_after)} if self.config.retry_after else {}
                return _detail(429, refused[0], headers)
            if limit is not None:
                self._recent.append(now)
            if not poll:
                self._admitted += 1
        return None

    def _too_large(self) -> Reply:
        megabytes = self.config.max_upload_bytes / (1024 * 1024)
        return _detail(413, f"File too large: the limit is {megabytes:g} MB")

    def _check_base(self) -> str:
        host = self.config.check_host
        if not host:
            return self.url
        if "://" in host:
            return host.rstrip("/")
        return f"http://{host}" if ":" in host else f"http://{host}:{self.port}"


def _put_field(
    extraction: dict[str, Any],
    name: str,
    result: FieldResult,
    shape: str,
    scored: bool,
    scores: list[int],
) -> None:
    """Property ``name``'s keys; a table's in ``shape`` (``EmulatorConfig.nested_scores``)."""

    def keys(owner: dict[str, Any], key: str, part: FieldResult) -> None:
        owner[key] = part.value
        owner[f"{key}_citations"] = part.citations
        if scored:
            owner[f"{key}_score"] = {"score": part.score, "reasoning": part.reasoning}
            scores.append(part.score)

    if result.cells is None or shape == "array":
        keys(extraction, name, result)
        return
    rows: list[dict[str, Any]] = []
    for number, cells in enumerate(result.cells):
        row: dict[str, Any] = {}
        for column, cell in cells.items():
            if shape == "per_item" or number % 2 == 0:
                keys(row, column, cell)
            else:
                row[column] = cell.value
        rows.append(row)
    if shape == "mixed":
        keys(extraction, name, result)
    extraction[name] = rows


def _page_schema(form: dict[str, Part]) -> Reply | dict[str, Any]:
    """The ``page_schema`` field as Datalab checks it (a JSON Schema with properties)."""
    if "page_schema" not in form:
        return _invalid("page_schema", "Field required", None, "missing")
    raw_schema = form["page_schema"].text
    try:
        schema = json.loads(raw_schema)
    except ValueError:
        return _invalid("page_schema", "page_schema is not valid JSON", raw_schema, "json_invalid")
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return _invalid("page_schema", "page_schema must be a JSON Schema with properties", schema)
    if not schema["properties"]:
        return _invalid("page_schema", "page_schema has no properties", schema)
    return schema


def _page_limits(form: dict[str, Part]) -> Reply | tuple[set[int] | None, int | None]:
    """``page_range`` (0-based, "0,5-10") and ``max_pages``, when given."""
    pages = None
    if form.get("page_range") and form["page_range"].text.strip():
        try:
            pages = parse_page_range(form["page_range"].text)
        except ValueError as exc:
            return _invalid("page_range", str(exc), form["page_range"].text)
    max_pages = None
    if form.get("max_pages") and form["max_pages"].text.strip():
        text = form["max_pages"].text.strip()
        if not text.isdigit() or int(text) < 1:
            return _invalid("max_pages", "Input should be a positive integer", text, "int_parsing")
        max_pages = int(text)
    return pages, max_pages


def _post(url: str, body: bytes, timeout: float) -> int:
    """POST a webhook: the answer's status, 0 for no answer (refused, timed out)."""
    headers = {"Content-Type": "application/json"}
    request = Request(url, data=body, method="POST", headers=headers)  # noqa: S310 (the given URL)
    try:
        with urlopen(request, timeout=max(0.1, timeout)) as answer:  # noqa: S310
            return int(answer.status)
    except HTTPError as exc:
        return int(exc.code)
    except (URLError, OSError):
        return 0


def _request_id(counter: int, content: bytes) -> str:
    """22 url-safe characters like Datalab's ids; deterministic for the same submissions."""
    digest = hashlib.sha256(f"{counter}:".encode() + hashlib.sha256(content).digest()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


class _Server(ThreadingHTTPServer):
    # Daemon handler threads: stop() never waits for keep-alive connections clients still hold.
    daemon_threads = True
    emulator: DatalabEmulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out and hang up are part of the game, not server errors.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _dispatch(self, method: str) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        body: bytes | None
        if length > emulator.config.max_upload_bytes + _FORM_SLACK:
            # Read and drop it: answering before the client has sent everything resets the socket.
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            body = None
        else:
            body = self.rfile.read(length)
        reply = emulator.handle(method, urlsplit(self.path).path, self.headers, body)
        if reply.drop:
            self.close_connection = True
            return
        data = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
