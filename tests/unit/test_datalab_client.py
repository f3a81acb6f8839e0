"""DatalabClient against httpx transports playing Datalab: fields sent, errors mapped, key kept."""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import http.server
import io
import json
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from doctriage_core.adapters.datalab import (
    _MAX_TEXT,
    DatalabClient,
    Submission,
    check_api_url,
    parse_retry_after,
)
from doctriage_core.adapters.multipart import CHUNK_SIZE
from doctriage_core.errors import (
    DatalabAuthError,
    DatalabExtractionFailed,
    DatalabMalformedResponse,
    DatalabPageRateLimited,
    DatalabRateLimited,
    DatalabRequestRejected,
    DatalabResultExpired,
    DatalabServerError,
    DatalabUnreachable,
    DoctriageError,
    InvalidDocument,
    UntrustedCheckUrl,
)

API = "https://api.datalab.to"
KEY = "dl-SECRET-key-0123456789"
CHECK_URL = f"{API}/api/v1/extract/req-1"
SCHEMA = json.dumps({"properties": {"invoice_number": {"type": "string"}}})
SUBMITTED: dict[str, Any] = {
    "success": True,
    "error": None,
    "request_id": "req-1",
    "request_check_url": CHECK_URL,
    "versions": {},
}

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that keeps every request it was sent."""

    def __init__(self, respond: Handler) -> None:
        self.respond = respond
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.respond(request)


def client_for(respond: Handler, api_url: str = API) -> tuple[DatalabClient, Recorder]:
    recorder = Recorder(respond)
    return DatalabClient(api_url, KEY, transport=httpx.MockTransport(recorder)), recorder


def reply(status: int = 200, body: Any = None, **kwargs: Any) -> Handler:
    def respond(_request: httpx.Request) -> httpx.Response:
        if isinstance(body, (bytes, str)):
            return httpx.Response(status, content=body, **kwargs)
        return httpx.Response(status, json=body, **kwargs)

    return respond


def submit(client: DatalabClient, data: bytes = b"%PDF-1.7 tiny", **kwargs: Any) -> Submission:
    args: dict[str, Any] = {
        "filename": "invoice.pdf",
        "content_type": "application/pdf",
        "page_schema": SCHEMA,
        "size": len(data),
    }
    args.update(kwargs)
    return client.submit(io.BytesIO(data), **args)


def parse_multipart(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    """name -> (filename, content type, payload)."""
    raw = request.read()
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts[str(name)] = (part.get_filename(), part.get_content_type(), payload)
    return parts


# --- check_api_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://www.datalab.to", "https://www.datalab.to"),
        ("https://www.datalab.to/", "https://www.datalab.to"),
        (" HTTPS://API.Datalab.TO/ ", "https://api.datalab.to"),
        ("https://api.datalab.to:8443/prefix/", "https://api.datalab.to:8443/prefix"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://127.9.9.9:8765/", "http://127.9.9.9:8765"),
        ("http://localhost:8765", "http://localhost:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
    ],
)
def test_check_api_url_accepts(given: str, expected: str) -> None:
    assert check_api_url(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "www.datalab.to",
        "http://www.datalab.to",
        "http://10.0.0.5:8765",
        "http://localhost.evil.com",
        "http://127.0.0.1.nip.io",
        "ftp://api.datalab.to",
        "https://user:pw@api.datalab.to",
        "https://api.datalab.to?x=1",
        "https://api.datalab.to/#frag",
    ],
)
def test_check_api_url_refuses(given: str) -> None:
    with pytest.raises(ValueError, match="DATALAB_API_URL"):
        check_api_url(given)


def test_client_refuses_bad_url_and_key() -> None:
    with pytest.raises(ValueError, match="https"):
        DatalabClient("http://www.datalab.to", KEY)
    for bad in ("", "has space", "line\nbreak", "ünïcode"):
        with pytest.raises(ValueError, match="DATALAB_API_KEY") as info:
            DatalabClient(API, bad)
        assert not bad or bad not in str(info.value)


# --- submit ---------------------------------------------------------------------------------------


def test_submit_sends_fast_json_multipart_with_key() -> None:
    client, recorder = client_for(reply(200, SUBMITTED))
    data = b"%PDF-1.7\n" + bytes(range(256)) * 10

    result = submit(client, data)

    assert result == Submission(request_id="req-1", check_url=CHECK_URL)
    [request] = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == f"{API}/api/v1/extract"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = parse_multipart(request)
    assert set(parts) == {"page_schema", "extraction_mode", "output_format", "file"}
    assert parts["extraction_mode"][2] == b"fast"
    assert parts["output_format"][2] == b"json"
    assert parts["page_schema"][2] == SCHEMA.encode()
    assert parts["file"] == ("invoice.pdf", "application/pdf", data)
    assert int(request.headers["content-length"]) == len(request.read())


def test_submit_without_size_is_chunked() -> None:
    client, recorder = client_for(reply(200, SUBMITTED))
    submit(client, b"abc", size=None)
    [request] = recorder.requests
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert parse_multipart(request)["file"][2] == b"abc"


def test_submit_escapes_filename_and_refuses_header_injection() -> None:
    client, recorder = client_for(reply(200, SUBMITTED))
    submit(client, filename='a"b\r\nX-Evil: 1.pdf')
    raw = recorder.requests[0].read()
    assert b"\r\nX-Evil" not in raw
    assert b'filename="a%22b%0D%0AX-Evil: 1.pdf"' in raw
    with pytest.raises(ValueError, match="content_type"):
        submit(client, content_type="application/pdf\r\nX-Evil: 1")


@pytest.mark.parametrize("announced", [5, 20])
def test_submit_stream_not_matching_size(announced: int) -> None:
    client, _ = client_for(reply(200, SUBMITTED))
    with pytest.raises(InvalidDocument) as info:
        submit(client, b"0123456789", size=announced)
    assert info.value.reason == "size_mismatch"


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (
            {"success": False, "error": "Unsupported file type"},
            DatalabRequestRejected,
            "Unsupported",
        ),
        ({"success": True, "request_check_url": CHECK_URL}, DatalabMalformedResponse, "request_id"),
        ({"success": True, "request_id": "r"}, DatalabMalformedResponse, "request_check_url"),
        (
            {"success": True, "request_id": "", "request_check_url": CHECK_URL},
            DatalabMalformedResponse,
            "request_id",
        ),
        (
            {"success": True, "request_id": 7, "request_check_url": CHECK_URL},
            DatalabMalformedResponse,
            "request_id",
        ),
        (
            {"success": True, "request_id": "r", "request_check_url": None},
            DatalabMalformedResponse,
            "request_check_url",
        ),
        ([SUBMITTED], DatalabMalformedResponse, "not a JSON object"),
        ("<html>gateway</html>", DatalabMalformedResponse, "not JSON"),
        (b"\xff\xfe\x00", DatalabMalformedResponse, "not JSON"),
    ],
)
def test_submit_bad_200_bodies(body: Any, error: type[Exception], text: str) -> None:
    client, _ = client_for(reply(200, body))
    with pytest.raises(error, match=text):
        submit(client)


# --- errors by status, both calls ----------------------------------------------------------------

STATUS_ERRORS: list[tuple[int, type[DoctriageError]]] = [
    (400, DatalabRequestRejected),
    (401, DatalabAuthError),
    (403, DatalabAuthError),
    (405, DatalabRequestRejected),
    (408, DatalabUnreachable),
    (413, DatalabRequestRejected),
    (422, DatalabRequestRejected),
    (429, DatalabRateLimited),
    (500, DatalabServerError),
    (502, DatalabServerError),
    (503, DatalabServerError),
    (504, DatalabServerError),
    (529, DatalabServerError),
    (599, DatalabServerError),
    (301, DatalabMalformedResponse),
]


def call(client: DatalabClient, which: str) -> object:
    return submit(client) if which == "submit" else client.check(CHECK_URL)


@pytest.mark.parametrize("which", ["submit", "check"])
@pytest.mark.parametrize(("status", "error"), STATUS_ERRORS)
def test_status_maps_to_error(which: str, status: int, error: type[DoctriageError]) -> None:
    client, recorder = client_for(
        reply(status, {"detail": "Datalab says no"}, headers={"Location": "https://evil.com/"})
    )
    with pytest.raises(error) as info:
        call(client, which)
    assert type(info.value) is error
    assert len(recorder.requests) == 1  # no retry, no redirect followed
    if status != 301:
        assert "Datalab says no" in str(info.value)
        assert str(status) in str(info.value)


def test_404_is_expired_on_check_rejected_on_submit() -> None:
    client, _ = client_for(reply(404, {"detail": "Not Found"}))
    with pytest.raises(DatalabResultExpired):
        client.check(CHECK_URL)
    with pytest.raises(DatalabRequestRejected):
        submit(client)


def test_422_validation_list_is_summarised() -> None:
    detail = [
        {"type": "missing", "loc": ["body", "page_schema"], "msg": "Field required", "input": None},
        {
            "type": "enum",
            "loc": ["body", "extraction_mode"],
            "msg": "bad mode",
            "input": "x" * 5000,
        },
    ]
    client, _ = client_for(reply(422, {"detail": detail}))
    with pytest.raises(DatalabRequestRejected) as info:
        submit(client)
    message = str(info.value)
    assert "body.page_schema: Field required" in message
    assert "body.extraction_mode: bad mode" in message
    assert "xxxxx" not in message


def test_error_text_from_plain_or_huge_bodies_is_clipped() -> None:
    client, _ = client_for(reply(502, "<html>" + "bad gateway " * 1000 + "</html>"))
    with pytest.raises(DatalabServerError) as info:
        client.check(CHECK_URL)
    assert "bad gateway" in str(info.value)
    assert len(str(info.value)) < 700


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 30 ", 30.0),
        ("-4", 0.0),
        ("soon", None),
        ("", None),
        ("inf", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 42, usegmt=True), now=now) == 42.0
    assert parse_retry_after(email.utils.formatdate(now - 42, usegmt=True), now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00", now=now) is None  # no zone


@pytest.mark.parametrize("which", ["submit", "check"])
def test_429_carries_retry_after(which: str) -> None:
    client, _ = client_for(
        reply(429, {"detail": "400 requests every 60 seconds"}, headers={"Retry-After": "12"})
    )
    with pytest.raises(DatalabRateLimited) as info:
        call(client, which)
    assert info.value.retry_after == 12.0
    assert info.value.transient


def test_429_http_date_and_missing_retry_after() -> None:
    later = email.utils.formatdate(time.time() + 90, usegmt=True)
    client, _ = client_for(reply(429, {"detail": "slow down"}, headers={"Retry-After": later}))
    with pytest.raises(DatalabRateLimited) as info:
        client.check(CHECK_URL)
    assert info.value.retry_after is not None
    assert 85 <= info.value.retry_after <= 90
    client, _ = client_for(reply(429, {"detail": "slow down"}))
    with pytest.raises(DatalabRateLimited) as info:
        client.check(CHECK_URL)
    assert info.value.retry_after is None


def test_503_retry_after_is_kept() -> None:
    client, _ = client_for(reply(503, "busy", headers={"Retry-After": "5"}))
    with pytest.raises(DatalabServerError) as info:
        client.check(CHECK_URL)
    assert info.value.retry_after == 5.0


NETWORK_ERRORS = [
    httpx.ConnectError("[Errno 111] Connection refused"),
    httpx.ConnectTimeout("connect timed out"),
    httpx.ReadTimeout("read timed out"),
    httpx.WriteTimeout("write timed out"),
    httpx.PoolTimeout("pool timed out"),
    httpx.ReadError("connection reset"),
    httpx.WriteError("broken pipe"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    httpx.ProxyError("proxy said no"),
]


@pytest.mark.parametrize("which", ["submit", "check"])
@pytest.mark.parametrize("exc", NETWORK_ERRORS, ids=lambda e: type(e).__name__)
def test_network_errors_are_unreachable(which: str, exc: httpx.HTTPError) -> None:
    def respond(_request: httpx.Request) -> httpx.Response:
        raise exc

    client, _ = client_for(respond)
    with pytest.raises(DatalabUnreachable) as info:
        call(client, which)
    assert info.value.__cause__ is exc
    assert type(exc).__name__ in str(info.value)


def test_timeouts_are_configured() -> None:
    client = DatalabClient(API, KEY, timeout=12.5)
    timeout = client._http.timeout
    assert timeout.connect == 5.0
    assert timeout.read == 12.5
    client.close()


def test_context_manager_closes() -> None:
    with DatalabClient(API, KEY) as client:
        assert not client._http.is_closed
    assert client._http.is_closed


# --- check ----------------------------------------------------------------------------------------

COMPLETE = {
    "status": "complete",
    "success": True,
    "error": None,
    "output_format": "json",
    "json": {"block_type": "Document", "children": []},
    "extraction_schema_json": '{"invoice_number": "INV-1"}',
    "page_count": 2,
}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "processing"},
        COMPLETE,
        # statuses Datalab has not documented are not finished: the caller keeps polling
        {"status": "pending"},
        {"status": "queued"},
    ],
)
def test_check_returns_body(body: dict[str, Any]) -> None:
    client, recorder = client_for(reply(200, body))
    assert client.check(CHECK_URL) == body
    [request] = recorder.requests
    assert request.method == "GET"
    assert str(request.url) == CHECK_URL
    assert request.headers["x-api-key"] == KEY


@pytest.mark.parametrize(
    ("body", "error", "text"),
    [
        (
            {"status": "failed", "error": "Could not parse PDF"},
            DatalabExtractionFailed,
            "Could not parse PDF",
        ),
        (
            {"status": "complete", "success": False, "error": "Out of credits"},
            DatalabExtractionFailed,
            "Out of credits",
        ),
        ({"status": "failed"}, DatalabExtractionFailed, "no error text"),
        ({"success": True}, DatalabMalformedResponse, "None"),
        ({"status": None}, DatalabMalformedResponse, "unknown status"),
        ({"status": 3}, DatalabMalformedResponse, "unknown status"),
        ({"status": "<script>" * 100}, DatalabMalformedResponse, "unknown status"),
        (["complete"], DatalabMalformedResponse, "not a JSON object"),
        ("not json", DatalabMalformedResponse, "not JSON"),
    ],
)
def test_check_failures(body: Any, error: type[Exception], text: str) -> None:
    client, _ = client_for(reply(200, body))
    with pytest.raises(error, match=text) as info:
        client.check(CHECK_URL)
    assert type(info.value) is error  # not the page-rate throttle, which is a subclass


def test_page_rate_limit_is_its_own_error() -> None:
    # GIVEN a job Datalab ended because the team had too many pages in flight
    body = {
        "status": "complete",
        "success": False,
        "error": "Page rate limit exceeded. Your team has 6,000 pages in flight.",
    }
    client, _ = client_for(reply(200, body))
    # WHEN it is checked THEN it is the throttle (a kind of failed extraction), not a failure
    with pytest.raises(DatalabPageRateLimited, match="6,000 pages in flight") as info:
        client.check(CHECK_URL)
    assert isinstance(info.value, DatalabExtractionFailed)
    assert info.value.reason == "page_rate_limited"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.com/api/v1/extract/req-1",
        "https://www.datalab.to/api/v1/extract/req-1",  # another Datalab host: still not ours
        "https://api.datalab.to:8443/api/v1/extract/req-1",
        "http://api.datalab.to/api/v1/extract/req-1",
        "https://api.datalab.to@evil.com/api/v1/extract/req-1",
        "https://evil.com@api.datalab.to/api/v1/extract/req-1",
        "https://user:pw@api.datalab.to/api/v1/extract/req-1",
        "https://api.datalab.to.evil.com/api/v1/extract/req-1",
        "//evil.com/api/v1/extract/req-1",
        "//evil.example/api/v1/extract/req-1",
        "//api.datalab.to.evil.com/api/v1/extract/req-1",
        "//user@api.datalab.to/api/v1/extract/req-1",
        "https://evil.com\\@api.datalab.to/",
        "https://[::1/",
        "",
    ],
)
def test_untrusted_check_url_sends_nothing(url: str) -> None:
    client, recorder = client_for(reply(200, {"status": "processing"}))
    with pytest.raises(UntrustedCheckUrl) as info:
        client.check(url)
    assert recorder.requests == []
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.datalab.to/api/v1/extract/req-1",
        "https://API.DATALAB.TO/api/v1/extract/req-1",
        "https://api.datalab.to:443/api/v1/extract/req-1",
    ],
)
def test_same_origin_check_url_is_trusted(url: str) -> None:
    client, recorder = client_for(reply(200, {"status": "processing"}))
    assert client.check(url) == {"status": "processing"}
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("relative", "absolute"),
    [
        ("/api/v1/extract/req-1", f"{API}/api/v1/extract/req-1"),
        ("api/v1/extract/req-1", f"{API}/api/v1/extract/req-1"),
        ("/api/v1/extract/req-1?x=1", f"{API}/api/v1/extract/req-1?x=1"),
        # protocol-relative to our own host is same-origin after resolution, with our scheme
        ("//api.datalab.to/api/v1/extract/req-1", f"{API}/api/v1/extract/req-1"),
    ],
)
def test_relative_check_url_resolves_against_the_api_origin(relative: str, absolute: str) -> None:
    client, recorder = client_for(reply(200, {"status": "processing"}))
    assert client.check(relative) == {"status": "processing"}
    [request] = recorder.requests
    assert str(request.url) == absolute
    assert request.headers["x-api-key"] == KEY


def test_relative_check_url_keeps_the_origin_not_the_path_prefix() -> None:
    client, recorder = client_for(reply(200, {"status": "processing"}), api_url=f"{API}/prefix")
    client.check("/api/v1/extract/req-1")
    assert str(recorder.requests[0].url) == f"{API}/api/v1/extract/req-1"


def test_submit_returns_a_relative_check_url_resolved() -> None:
    client, _ = client_for(reply(200, {**SUBMITTED, "request_check_url": "/api/v1/extract/req-1"}))
    submission = client.submit(
        io.BytesIO(b"%PDF-1.7"),
        filename="a.pdf",
        content_type="application/pdf",
        page_schema=SCHEMA,
        size=8,
    )
    assert submission == Submission(request_id="req-1", check_url=CHECK_URL)


def test_submit_keeps_a_protocol_relative_check_url_for_check_to_refuse() -> None:
    client, recorder = client_for(
        reply(200, {**SUBMITTED, "request_check_url": "//evil.example/api/v1/extract/req-1"})
    )
    submission = client.submit(
        io.BytesIO(b"%PDF-1.7"),
        filename="a.pdf",
        content_type="application/pdf",
        page_schema=SCHEMA,
        size=8,
    )
    assert submission.check_url == "https://evil.example/api/v1/extract/req-1"
    with pytest.raises(UntrustedCheckUrl):
        client.check(submission.check_url)
    assert len(recorder.requests) == 1  # the submit; no poll went to evil.example


def test_loopback_emulator_origin() -> None:
    base = "http://127.0.0.1:8765"
    client, recorder = client_for(reply(200, {"status": "processing"}), api_url=base)
    client.check(f"{base}/api/v1/extract/r")
    with pytest.raises(UntrustedCheckUrl):
        client.check("http://127.0.0.1:9999/api/v1/extract/r")
    with pytest.raises(UntrustedCheckUrl):
        client.check("http://localhost:8765/api/v1/extract/r")
    assert len(recorder.requests) == 1


# --- the key never leaks -------------------------------------------------------------------------


def echo_key(status: int) -> Handler:
    def respond(request: httpx.Request) -> httpx.Response:
        key = request.headers["x-api-key"]
        return httpx.Response(
            status,
            json={
                "detail": f"bad key {key}",
                "error": f"key {key}",
                "status": "failed",
                "success": False,
            },
            headers={"Location": f"https://x/{key}"},
        )

    return respond


def raise_with_key(_request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"failed for {KEY}")


@pytest.mark.parametrize(
    "respond",
    [echo_key(s) for s in (200, 301, 400, 401, 403, 404, 408, 413, 422, 429, 500, 529)]
    + [raise_with_key, reply(200, "not json"), reply(200, {"status": "?"})],
)
@pytest.mark.parametrize("which", ["submit", "check", "untrusted"])
def test_key_never_in_errors(respond: Handler, which: str) -> None:
    client, _ = client_for(respond)
    url = f"https://evil.com/{KEY}" if which == "untrusted" else CHECK_URL
    with pytest.raises(DoctriageError) as info:
        submit(client) if which == "submit" else client.check(url)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert KEY not in repr(client)
    assert KEY not in str(vars(info.value))


# The clip keeps _MAX_TEXT characters: this padding puts its cut 10 characters into the key.
STRADDLE = "x" * (_MAX_TEXT - 10) + KEY + " and more text after it"


def raise_straddling(_request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(STRADDLE)


@pytest.mark.parametrize(
    "respond",
    [
        reply(500, {"detail": STRADDLE}),
        reply(400, {"error": STRADDLE}),
        reply(502, STRADDLE),
        reply(422, {"detail": [{"loc": ["body"], "msg": STRADDLE}]}),
        reply(200, {"status": "failed", "error": STRADDLE}),
        reply(200, {"status": "complete", "success": False, "error": STRADDLE}),
        reply(200, {"status": STRADDLE}),
        reply(301, "", headers={"Location": STRADDLE}),
        raise_straddling,
    ],
    ids=[
        "detail",
        "error",
        "plain",
        "validation",
        "failed",
        "unsuccessful",
        "status",
        "location",
        "network",
    ],
)
def test_a_key_the_clip_cuts_through_leaves_no_prefix(respond: Handler) -> None:
    # GIVEN Datalab's error text with the key where the clip cuts through it
    client, _ = client_for(respond)
    # WHEN the error is raised
    with pytest.raises(DoctriageError) as info:
        client.check(CHECK_URL)
    message = str(info.value)
    # THEN the text was clipped right there, and not even the key's first characters are in it
    kept, clipped, _ = message.partition("…")
    assert clipped
    assert "x" * 100 in kept
    assert not [n for n in range(2, len(KEY)) if kept.endswith(KEY[:n])]
    assert KEY[:8] not in message


# --- streaming ------------------------------------------------------------------------------------


class GeneratedStream:
    """A file-like of ``size`` bytes made up on the fly, remembering how it was read."""

    def __init__(self, size: int) -> None:
        self.remaining = size
        self.reads: list[int] = []

    def read(self, n: int = -1) -> bytes:
        self.reads.append(n)
        if n is None or n < 0:
            raise AssertionError("the whole stream was asked for at once")
        take = min(n, self.remaining)
        self.remaining -= take
        return b"x" * take


class DrainingTransport(httpx.BaseTransport):
    """Drains the request body chunk by chunk, keeping only counts (MockTransport reads it all)."""

    def __init__(self) -> None:
        self.body_bytes = 0
        self.largest_chunk = 0
        self.headers: httpx.Headers | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.headers = request.headers
        assert isinstance(request.stream, httpx.SyncByteStream)
        for chunk in request.stream:
            self.body_bytes += len(chunk)
            self.largest_chunk = max(self.largest_chunk, len(chunk))
        return httpx.Response(200, json=SUBMITTED)


@pytest.mark.parametrize("known_size", [True, False])
def test_submit_streams_large_file_in_chunks(known_size: bool) -> None:
    size = 48 * 1024 * 1024
    stream = GeneratedStream(size)
    transport = DrainingTransport()
    client = DatalabClient(API, KEY, transport=transport)

    tracemalloc.start()
    try:
        client.submit(
            stream,  # type: ignore[arg-type]
            filename="big.pdf",
            content_type="application/pdf",
            page_schema=SCHEMA,
            size=size if known_size else None,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert stream.remaining == 0
    assert max(stream.reads) <= CHUNK_SIZE
    assert len(stream.reads) >= size // CHUNK_SIZE
    assert transport.largest_chunk <= CHUNK_SIZE + 1024
    assert transport.body_bytes > size
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte file"
    assert transport.headers is not None
    if known_size:
        assert int(transport.headers["content-length"]) == transport.body_bytes
    else:
        assert "content-length" not in transport.headers


def test_submit_over_a_real_socket_with_content_length() -> None:
    """h11 on a real connection accepts our Content-Length; the server sees the same form."""
    seen: dict[str, Any] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            seen["body"] = self.rfile.read(length)
            seen["headers"] = dict(self.headers)
            payload = json.dumps(
                {**SUBMITTED, "request_check_url": f"{base}/api/v1/extract/req-1"}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        data = bytes(range(256)) * 1000
        with DatalabClient(base, KEY) as client:
            result = submit(client, data)
        assert result.check_url == f"{base}/api/v1/extract/req-1"
        request = httpx.Request(
            "POST",
            base,
            headers={"content-type": seen["headers"]["Content-Type"]},
            content=seen["body"],
        )
        parts = parse_multipart(request)
        assert parts["file"] == ("invoice.pdf", "application/pdf", data)
        assert parts["extraction_mode"][2] == b"fast"
        assert seen["headers"]["X-API-Key"] == KEY
    finally:
        server.shutdown()
        server.server_close()
