"""The Datalab emulator over real HTTP, driven with httpx like the pipeline's client drives it.

Delays run at time_scale 0.01, so an hour-long result lifetime or a minute of scoring lag takes
well under a second.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from doctriage_local.emulator import DatalabEmulator, EmulatorConfig, FaultRule

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SCALE = 0.01
# One TLS context for every client: building one per client costs ~50 ms of CA loading.
TLS = httpx.create_ssl_context()

EXPECTED: dict[str, tuple[str, dict[str, Any], dict[str, int]]] = {
    "invoice/acme-invoice-1042.pdf": (
        "invoice",
        {
            "document_type": "invoice",
            "invoice_number": "INV-1042",
            "vendor_name": "Acme Corporation",
            "customer_name": "Wayne Enterprises",
            "invoice_date": "2024-03-15",
            "due_date": "2024-04-14",
            "currency": "USD",
            "subtotal": 1150.0,
            "tax_amount": 86.25,
            "total_amount": 1236.25,
            "line_items": [
                {
                    "description": "Anvil, heavy duty",
                    "quantity": 2,
                    "unit_price": 250,
                    "amount": 500,
                },
                {"description": "Rocket skates", "quantity": 1, "unit_price": 450, "amount": 450},
                {"description": "Giant magnet", "quantity": 4, "unit_price": 50, "amount": 200},
            ],
        },
        {},
    ),
    "invoice/umbrella-invoice-2207.pdf": (
        "invoice",
        {
            "invoice_number": "INV-2207",
            "due_date": "2024-07-03",
            "currency": "EUR",
            "total_amount": 3930.6,
            "line_items": [
                {
                    "description": "Consulting hours",
                    "quantity": 12,
                    "unit_price": 150,
                    "amount": 1800,
                },
                {
                    "description": "Laboratory rental",
                    "quantity": 3,
                    "unit_price": 400,
                    "amount": 1200,
                },
                {
                    "description": "Hazmat disposal",
                    "quantity": 1,
                    "unit_price": 275.5,
                    "amount": 275.5,
                },
            ],
        },
        {},
    ),
    "invoice/globex-invoice-smudged.pdf": (
        "invoice",
        {
            "document_type": "invoice",
            "invoice_number": "GX-0077",
            "vendor_name": "Globex Corporation",
            "invoice_date": "2024-03-18",
            "due_date": None,
            "total_amount": 322.5,
        },
        {"invoice_number": 2, "due_date": 1, "total_amount": 3},
    ),
    # Read as printed: that its total disagrees with its lines is for evaluation to find.
    "invoice/initech-invoice-3318.pdf": (
        "invoice",
        {
            "invoice_number": "INV-3318",
            "vendor_name": "Initech LLC",
            "tax_amount": 22.8,
            "total_amount": 317.8,
            "line_items": [
                {
                    "description": "Printer maintenance",
                    "quantity": 2,
                    "unit_price": 120,
                    "amount": 240,
                },
                {
                    "description": "Stapler replacement",
                    "quantity": 3,
                    "unit_price": 15,
                    "amount": 45,
                },
            ],
        },
        {},
    ),
    "receipt/corner-cafe-receipt.pdf": (
        "receipt",
        {
            "document_type": "receipt",
            "merchant_name": "Corner Cafe",
            "receipt_number": "R-20931",
            "transaction_date": "2024-05-02",
            "total_amount": 14.31,
            "tax_amount": 1.06,
            "currency": "USD",
            "payment_method": "card",
            "items": [
                {"description": "Flat white", "quantity": 2, "price": 9.0},
                {"description": "Croissant", "quantity": 1, "price": 4.25},
            ],
        },
        {},
    ),
}


@pytest.fixture
def start() -> Iterator[Callable[..., DatalabEmulator]]:
    running: list[DatalabEmulator] = []

    def _start(**config: Any) -> DatalabEmulator:
        config.setdefault("time_scale", SCALE)
        emulator = DatalabEmulator(EmulatorConfig(**config)).start()
        running.append(emulator)
        return emulator

    yield _start
    for emulator in running:
        emulator.stop()


@pytest.fixture
def emu(start: Callable[..., DatalabEmulator]) -> DatalabEmulator:
    return start()


def client(emulator: DatalabEmulator, **kwargs: Any) -> httpx.Client:
    kwargs.setdefault("timeout", 5)
    return httpx.Client(headers={"X-API-Key": emulator.api_key}, verify=TLS, **kwargs)


def schema_text(doc_type: str) -> str:
    return (SAMPLES / "schemas" / f"{doc_type}.json").read_text()


def submit(
    emulator: DatalabEmulator,
    sample: str = "invoice/acme-invoice-1042.pdf",
    *,
    filename: str | None = None,
    content: bytes | None = None,
    data: dict[str, str] | None = None,
    http: httpx.Client | None = None,
) -> httpx.Response:
    form = {"page_schema": schema_text(sample.split("/")[0]), "extraction_mode": "fast"}
    form["output_format"] = "json"
    form.update(data or {})
    body = (SAMPLES / sample).read_bytes() if content is None else content
    files = {"file": (filename or Path(sample).name, body, "application/pdf")}
    if http is not None:
        return http.post(f"{emulator.url}/api/v1/extract", files=files, data=form)
    with client(emulator) as c:
        return c.post(f"{emulator.url}/api/v1/extract", files=files, data=form)


def get(emulator: DatalabEmulator, url: str) -> httpx.Response:
    with client(emulator) as c:
        return c.get(url)


def wait_for(
    emulator: DatalabEmulator, url: str, done: Callable[[dict[str, Any]], bool], timeout: float = 5
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    with client(emulator) as c:
        while True:
            response = c.get(url)
            assert response.status_code == 200, response.text
            body = response.json()
            if done(body):
                return body
            assert time.monotonic() < deadline, f"gave up waiting; last body {body}"
            time.sleep(0.01)


def finished(body: dict[str, Any]) -> bool:
    return body["status"] != "processing"


def scored(body: dict[str, Any]) -> bool:
    return "extraction_score_average" in body


def check_url(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["request_check_url"])


# --- the happy path --------------------------------------------------------------------------


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_goes_processing_complete_scored_with_honest_values(
    start: Callable[..., DatalabEmulator], sample: str
) -> None:
    # Long enough phases (0.3 s, then 0.4 s) that polling every 10 ms sees each one.
    emulator = start(
        base_processing_seconds=30, processing_seconds_per_page=0, scoring_lag_seconds=40
    )
    accepted = submit(emulator, sample)
    assert accepted.status_code == 200
    submitted = accepted.json()
    assert submitted["success"] is True
    assert submitted["error"] is None
    assert (
        submitted["request_check_url"] == f"{emulator.url}/api/v1/extract/{submitted['request_id']}"
    )

    phases: list[str] = []
    with client(emulator) as c:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            body = c.get(submitted["request_check_url"]).json()
            now = "scored" if scored(body) else body["status"]
            if not phases or phases[-1] != now:
                phases.append(now)
            if now == "scored":
                break
            time.sleep(0.01)
    assert phases == ["processing", "complete", "scored"]

    doc_type, values, low_scores = EXPECTED[sample]
    assert body["success"] is True
    assert body["output_format"] == "json"
    assert isinstance(body["extraction_schema_json"], str)
    extraction = json.loads(body["extraction_schema_json"])
    for name, value in values.items():
        assert extraction[name] == value, name
    properties = json.loads(schema_text(doc_type))["properties"]
    scores = {name: extraction[f"{name}_score"]["score"] for name in properties}
    assert scores == {name: low_scores.get(name, 5) for name in properties}
    assert body["extraction_score_average"] == pytest.approx(sum(scores.values()) / len(scores))
    for name in properties:
        assert extraction[f"{name}_score"]["reasoning"]
    assert_citations_point_into_pages(body, extraction, properties)
    assert body["page_count"] == len(body["json"]["children"])


def assert_citations_point_into_pages(
    body: dict[str, Any], extraction: dict[str, Any], properties: dict[str, Any]
) -> None:
    blocks = {}
    for page_index, page in enumerate(body["json"]["children"]):
        assert page["id"] == f"/page/{page_index}/Page/0"
        for block in page["children"]:
            blocks[block["id"]] = (page, block)
    for name in properties:
        citations = extraction[f"{name}_citations"]
        assert (citations == []) == (extraction[name] is None), name
        for cited in citations:
            page, block = blocks[cited]
            assert block["block_type"] == "Line"
            assert cited.startswith(page["id"].removesuffix("Page/0"))
            x0, y0, x1, y1 = block["bbox"]
            _, _, width, height = page["bbox"]
            assert 0 <= x0 < x1 <= width
            assert 0 <= y0 < y1 <= height
    # The invoice number's citation is the line that prints it.
    if extraction.get("invoice_number"):
        (cited,) = extraction["invoice_number_citations"]
        assert extraction["invoice_number"] in blocks[cited][1]["html"]


@pytest.mark.parametrize("mode", [None, "balanced", "turbo"])
def test_only_fast_mode_is_ever_scored(emu: DatalabEmulator, mode: str | None) -> None:
    data = {} if mode is None else {"extraction_mode": mode}
    form_without_mode = submit(emu, data=data) if mode else None
    if mode is None:  # the field left out entirely: the server's default (balanced) applies
        with client(emu) as c:
            form_without_mode = c.post(
                f"{emu.url}/api/v1/extract",
                files={"file": ("a.pdf", (SAMPLES / "invoice/acme-invoice-1042.pdf").read_bytes())},
                data={"page_schema": schema_text("invoice")},
            )
    assert form_without_mode is not None
    url = check_url(form_without_mode)
    wait_for(emu, url, finished)
    time.sleep(3 * 8 * SCALE)  # three times the scoring lag
    body = get(emu, url).json()
    assert body["status"] == "complete"
    assert "extraction_score_average" not in body
    extraction = json.loads(body["extraction_schema_json"])
    assert extraction["invoice_number"] == "INV-1042"
    assert not [k for k in extraction if k.endswith("_score")]
    if mode is None:
        assert body["output_format"] == "markdown"
        assert "INV-1042" in body["markdown"]


def test_page_range_limits_pages_and_keeps_page_numbers(emu: DatalabEmulator) -> None:
    url = check_url(submit(emu, "invoice/umbrella-invoice-2207.pdf", data={"page_range": "1"}))
    body = wait_for(emu, url, scored)
    extraction = json.loads(body["extraction_schema_json"])
    assert body["page_count"] == 1
    assert [p["id"] for p in body["json"]["children"]] == ["/page/1/Page/0"]
    assert extraction["invoice_number"] is None
    assert extraction["total_amount"] == 3930.6
    assert extraction["total_amount_citations"][0].startswith("/page/1/")


def test_non_pdf_upload_finds_nothing(emu: DatalabEmulator) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    url = check_url(submit(emu, filename="scan.png", content=png))
    body = wait_for(emu, url, scored)
    extraction = json.loads(body["extraction_schema_json"])
    properties = json.loads(schema_text("invoice"))["properties"]
    assert all(extraction[name] is None for name in properties)
    assert {extraction[f"{name}_score"]["score"] for name in properties} == {1}
    assert body["extraction_score_average"] == 1.0


def test_same_input_gives_the_same_output(start: Callable[..., DatalabEmulator]) -> None:
    bodies = []
    for _ in range(2):
        emulator = start()
        first = submit(emulator).json()
        body = wait_for(emulator, first["request_check_url"], scored)
        bodies.append((first["request_id"], body))
    assert bodies[0] == bodies[1]


def test_check_host_goes_into_request_check_url(start: Callable[..., DatalabEmulator]) -> None:
    emulator = start(check_host="localhost")
    url = check_url(submit(emulator))
    assert url.startswith(f"http://localhost:{emulator.port}/api/v1/extract/")
    assert get(emulator, url).status_code == 200  # and it is the same server


def test_stop_does_not_wait_for_open_client_connections(
    start: Callable[..., DatalabEmulator],
) -> None:
    emulator = start()
    with client(emulator) as c:
        assert c.get(f"{emulator.url}/_emulator/stats").status_code == 200  # kept alive
        began = time.monotonic()
        emulator.stop()
        assert time.monotonic() - began < 1


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}])
def test_bad_key_is_401_on_submit_and_poll(emu: DatalabEmulator, headers: dict[str, str]) -> None:
    url = check_url(submit(emu))
    with httpx.Client(headers=headers, verify=TLS) as anonymous:
        refused = submit(emu, http=anonymous)
        assert refused.status_code == 401
        assert "detail" in refused.json()
        assert anonymous.get(url).status_code == 401


@pytest.mark.parametrize(
    ("data", "filename", "status", "loc"),
    [
        ({}, "notes.txt", 400, None),
        ({}, "no-extension", 400, None),
        ({"page_schema": "not json"}, "a.pdf", 422, "page_schema"),
        ({"page_schema": '{"type": "object"}'}, "a.pdf", 422, "page_schema"),
        ({"page_schema": "[]"}, "a.pdf", 422, "page_schema"),
        ({"extraction_mode": "slow"}, "a.pdf", 422, "extraction_mode"),
        ({"output_format": "pdf"}, "a.pdf", 422, "output_format"),
        ({"page_range": "3-1"}, "a.pdf", 422, "page_range"),
        ({"max_pages": "0"}, "a.pdf", 422, "max_pages"),
    ],
)
def test_invalid_requests(
    emu: DatalabEmulator, data: dict[str, str], filename: str, status: int, loc: str | None
) -> None:
    response = submit(emu, filename=filename, data=data)
    assert response.status_code == status
    detail = response.json()["detail"]
    if status == 422:
        assert detail[0]["loc"] == ["body", loc]
        assert {"type", "loc", "msg", "input"} <= set(detail[0])
    else:
        assert isinstance(detail, str)
    assert emu.stats["submissions"] == []


def test_missing_page_schema_and_missing_file_are_422(emu: DatalabEmulator) -> None:
    with client(emu) as c:
        no_schema = c.post(f"{emu.url}/api/v1/extract", files={"file": ("a.pdf", b"%PDF")})
        no_file = c.post(f"{emu.url}/api/v1/extract", data={"page_schema": schema_text("invoice")})
    assert no_schema.status_code == 422
    assert no_schema.json()["detail"][0]["loc"] == ["body", "page_schema"]
    assert no_file.status_code == 422
    assert no_file.json()["detail"][0]["loc"] == ["body", "file"]


@pytest.mark.parametrize("size", [2_000, 200_000])
def test_too_large_upload_is_413(start: Callable[..., DatalabEmulator], size: int) -> None:
    emulator = start(max_upload_bytes=1_000)
    response = submit(emulator, filename="big.pdf", content=b"%PDF" + bytes(size))
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


def test_unknown_id_is_404_and_results_expire(start: Callable[..., DatalabEmulator]) -> None:
    emulator = start(result_ttl_seconds=20)  # 0.2 s after completion
    assert get(emulator, f"{emulator.url}/api/v1/extract/nope").status_code == 404
    url = check_url(submit(emulator))
    wait_for(emulator, url, finished)
    time.sleep(0.3)
    gone = get(emulator, url)
    assert gone.status_code == 404
    assert "detail" in gone.json()


def test_broken_pdf_fails(emu: DatalabEmulator) -> None:
    url = check_url(submit(emu, filename="broken.pdf", content=b"%PDF-1.4 truncated"))
    body = wait_for(emu, url, finished)
    assert body["status"] == "failed"
    assert body["success"] is False
    assert body["error"]


# --- limits ----------------------------------------------------------------------------------


def test_rate_limit_429_with_retry_after(start: Callable[..., DatalabEmulator]) -> None:
    emulator = start(rate_limit_per_minute=2, retry_after=True)  # a 0.6 s window at this scale
    assert [submit(emulator).status_code for _ in range(2)] == [200, 200]
    refused = submit(emulator)
    assert refused.status_code == 429
    assert refused.json() == {"detail": "You can make 2 requests every 60 seconds"}
    retry_after = float(refused.headers["Retry-After"])  # on the unscaled timeline
    assert 0 < retry_after <= 60
    time.sleep(retry_after * SCALE + 0.02)
    assert submit(emulator).status_code == 200
    assert emulator.stats["rate_limited"] == 1


def test_concurrency_limit_429(start: Callable[..., DatalabEmulator]) -> None:
    emulator = start(max_concurrent=1, base_processing_seconds=50, retry_after=True)
    url = check_url(submit(emulator))
    refused = submit(emulator)
    assert refused.status_code == 429
    assert refused.json()["detail"] == "You can make 1 concurrent requests"
    assert 0 < float(refused.headers["Retry-After"]) <= 51 + 1
    wait_for(emulator, url, finished)
    assert submit(emulator).status_code == 200


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "retry_after"),
    [("submit_429", 429, 50), ("submit_500", 500, None), ("submit_529", 529, 100)],
)
def test_submit_error_faults(
    emu: DatalabEmulator, kind: str, status: int, retry_after: float | None
) -> None:
    emu.add_fault(FaultRule(match="acme", kind=kind, times=1, retry_after=retry_after))
    refused = submit(emu)
    assert refused.status_code == status
    assert "detail" in refused.json()
    expected = None if retry_after is None else f"{retry_after:g}"
    assert refused.headers.get("Retry-After") == expected
    assert submit(emu, "invoice/globex-invoice-smudged.pdf").status_code == 200  # no match
    assert submit(emu).status_code == 200  # fired its one time
    assert emu.stats["faults_injected"] == 1
    assert emu.stats["submit"] == 3


def test_submit_timeout_holds_the_connection_then_starts_the_job(emu: DatalabEmulator) -> None:
    emu.add_fault(FaultRule(kind="submit_timeout", times=1, hang_seconds=50))  # 0.5 s
    with client(emu, timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        submit(emu, http=impatient)
    assert emu.stats["submissions"] == []
    deadline = time.monotonic() + 3
    while not emu.stats["submissions"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [name for _, name in emu.stats["submissions"]] == ["acme-invoice-1042.pdf"]


@pytest.mark.parametrize(
    ("kind", "status", "retry_after"),
    [("poll_429", 429, 30), ("poll_500", 500, None), ("poll_529", 529, None)],
)
def test_poll_error_faults(
    emu: DatalabEmulator, kind: str, status: int, retry_after: float | None
) -> None:
    url = check_url(submit(emu))
    emu.add_fault(FaultRule(match="acme-invoice", kind=kind, times=2, retry_after=retry_after))
    with client(emu) as c:
        assert [c.get(url).status_code for _ in range(3)] == [status, status, 200]
    emu.clear_faults()
    emu.add_fault(FaultRule(kind=kind, retry_after=retry_after))
    refused = get(emu, url)
    assert refused.headers.get("Retry-After") == (None if retry_after is None else "30")
    assert emu.stats["faults_injected"] == 3


def test_poll_timeout_hangs(emu: DatalabEmulator) -> None:
    url = check_url(submit(emu))
    emu.add_fault(FaultRule(kind="poll_timeout", times=1, hang_seconds=30))
    with client(emu, timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get(url)
    assert get(emu, url).status_code == 200


def test_poll_drop_closes_without_answer(emu: DatalabEmulator) -> None:
    url = check_url(submit(emu))
    emu.add_fault(FaultRule(kind="poll_drop", times=1))
    with pytest.raises(httpx.RemoteProtocolError):
        get(emu, url)
    assert get(emu, url).status_code == 200


@pytest.mark.parametrize(
    "kind", ["failed", "success_false", "page_rate_limit", "never_scored", "malformed", "expire"]
)
def test_job_faults(start: Callable[..., DatalabEmulator], kind: str) -> None:
    emu = start(base_processing_seconds=30)  # 0.3 s: time to see it processing
    emu.add_fault(FaultRule(match="acme", kind=kind, times=1))
    url = check_url(submit(emu))
    clean_url = check_url(submit(emu))  # the rule fired once: the next job is healthy
    assert get(emu, url).json() == {"status": "processing"}
    wait_for(emu, clean_url, scored)
    time.sleep(2 * 8 * SCALE)  # past the scoring lag of the faulty job too
    response = get(emu, url)
    if kind == "expire":
        assert response.status_code == 404
        return
    body = response.json()
    if kind == "failed":
        assert (body["status"], body["success"]) == ("failed", False)
        assert body["error"]
    elif kind == "success_false":
        assert (body["status"], body["success"]) == ("complete", False)
        assert body["error"]
        assert not body["error"].startswith("Page rate limit exceeded")  # a real failure
    elif kind == "page_rate_limit":
        assert (body["status"], body["success"]) == ("complete", False)
        assert body["error"].startswith("Page rate limit exceeded. Your team has ")
    elif kind == "never_scored":
        assert body["status"] == "complete"
        assert body["success"] is True
        assert "extraction_score_average" not in body
        assert "invoice_number_score" not in json.loads(body["extraction_schema_json"])
    elif kind == "malformed":
        assert body["status"] == "complete"
        with pytest.raises(json.JSONDecodeError):
            json.loads(body["extraction_schema_json"])
    assert emu.stats["faults_injected"] == 1


def test_auth_fault_on_submit_and_poll(emu: DatalabEmulator) -> None:
    emu.add_fault(FaultRule(match="acme", kind="auth", times=1))
    assert submit(emu).status_code == 401
    url = check_url(submit(emu))  # the rule fired its one time for this document
    other_url = check_url(submit(emu, "invoice/globex-invoice-smudged.pdf"))
    emu.add_fault(FaultRule(match="acme", kind="auth", times=1))
    assert get(emu, other_url).status_code == 200
    assert get(emu, url).status_code == 401
    assert get(emu, url).status_code == 200
    assert emu.stats["faults_injected"] == 2


# --- driving it from another process ---------------------------------------------------------


def test_standalone_process_with_admin_endpoints() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "doctriage_local.emulator", "--port", "0", "--time-scale", "0.01"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        url, key = ready["url"], ready["api_key"]
        assert key == "emulator-key"
        with httpx.Client(headers={"X-API-Key": key}, timeout=5, verify=TLS) as c:
            added = c.post(f"{url}/_emulator/faults", json={"kind": "submit_500", "times": 1})
            assert added.status_code == 201
            assert added.json()["kind"] == "submit_500"
            assert c.post(f"{url}/_emulator/faults", json={"kind": "nope"}).status_code == 400
            assert [rule["kind"] for rule in c.get(f"{url}/_emulator/faults").json()] == [
                "submit_500"
            ]
            files = {"file": ("a.pdf", (SAMPLES / "invoice/acme-invoice-1042.pdf").read_bytes())}
            data = {"page_schema": schema_text("invoice"), "extraction_mode": "fast"}
            assert c.post(f"{url}/api/v1/extract", files=files, data=data).status_code == 500
            assert c.delete(f"{url}/_emulator/faults").status_code == 200
            accepted = c.post(f"{url}/api/v1/extract", files=files, data=data)
            assert accepted.status_code == 200
            stats = c.get(f"{url}/_emulator/stats").json()
            assert stats["submit"] == 2
            assert stats["faults_injected"] == 1
            assert stats["submissions"] == [[accepted.json()["request_id"], "a.pdf"]]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# --- Datalab's team limits and result-format variants, over HTTP ----------------------------


def test_pages_in_flight_limit_over_http(start: Callable[..., DatalabEmulator]) -> None:
    # GIVEN a 5,000-page team limit and documents that claim 2,000 pages each
    emu = start(claimed_pages={"acme": 2000}, processing_seconds_per_page=0.05)  # 1 s of wall
    # WHEN three are submitted at once
    urls = [check_url(submit(emu, filename=f"acme-{n}.pdf")) for n in range(3)]
    # THEN each is accepted, two are extracted and the third ends complete without success
    bodies = [wait_for(emu, url, lambda b: b["status"] == "complete") for url in urls]
    assert [b["success"] for b in bodies] == [True, True, False]
    assert bodies[2]["error"].startswith("Page rate limit exceeded. Your team has 6,000 pages")
    assert [b["page_count"] for b in bodies[:2]] == [2000, 2000]
    stats = wait_for(emu, f"{emu.url}/_emulator/stats", lambda b: True)
    assert stats["page_rate_limited"] == 1
    assert stats["max_pages_in_flight_seen"] == 4000


def test_null_score_placeholders_over_http(start: Callable[..., DatalabEmulator]) -> None:
    emu = start()
    emu.add_fault(FaultRule(kind="null_scores"))
    url = check_url(submit(emu))
    unscored = wait_for(emu, url, lambda b: b["status"] == "complete")
    extraction = json.loads(unscored["extraction_schema_json"])
    assert unscored["extraction_score_average"] is None
    assert extraction["invoice_number_score"] == {"score": None}
    real = wait_for(emu, url, lambda b: b.get("extraction_score_average") is not None)
    assert json.loads(real["extraction_schema_json"])["invoice_number_score"]["score"] == 5


def test_pending_status_over_http(start: Callable[..., DatalabEmulator]) -> None:
    # 0.2 s of "pending", then processing long enough (10 s) that no loaded machine skips it
    emu = start(pending_seconds=20, base_processing_seconds=1000)
    emu.add_fault(FaultRule(kind="pending"))
    url = check_url(submit(emu))
    assert get(emu, url).json() == {"status": "pending"}
    assert wait_for(emu, url, lambda b: b["status"] != "pending")["status"] == "processing"


def test_relative_check_url_over_http(emu: DatalabEmulator) -> None:
    emu.add_fault(FaultRule(kind="relative_check_url"))
    submitted = submit(emu).json()
    assert submitted["request_check_url"] == f"/api/v1/extract/{submitted['request_id']}"
    assert get(emu, emu.url + submitted["request_check_url"]).json()["status"] == "processing"
