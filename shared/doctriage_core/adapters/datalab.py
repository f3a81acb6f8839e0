"""Datalab structured-extraction API over httpx: submit one document, check one request.

The client does one HTTP request per call and never retries: a retried submit may start a second
paid job, so retrying is the caller's decision (the state machine retries the transient errors).
Every failure is one of the typed errors in ``doctriage_core.errors``. The API key is sent only to
the configured API origin and never appears in an error message or a repr.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import math
import re
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, NoReturn

import httpx

from doctriage_core.adapters.multipart import MultipartBody
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
    UntrustedCheckUrl,
)

EXTRACT_PATH = "/api/v1/extract"
CONNECT_TIMEOUT = 5.0
# Datalab's page-rate throttle: a ``complete`` job with ``success: false`` and this error text.
PAGE_RATE_LIMIT_PREFIX = "Page rate limit exceeded"
_STATUS_TEXT = re.compile(r"^[a-z_]{1,40}$")
_MAX_TEXT = 500  # how much of Datalab's error text goes into a message
REDACTED = "[redacted]"
_LOOPBACK_NAMES = frozenset({"localhost"})
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: a valid header value, nothing to echo
_CONTENT_TYPE = re.compile(r"^[\x20-\x7e]+$")
_NETWORK_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


@dataclass(frozen=True)
class Submission:
    request_id: str
    check_url: str


def check_api_url(api_url: str) -> str:
    """Return ``api_url`` normalised (lower-case scheme and host, no trailing slash).

    Only https is allowed, except http on a loopback host for the local emulator. User info,
    queries and fragments are refused: the base URL is an origin plus an optional path prefix.
    """
    try:
        url = httpx.URL(api_url.strip())
    except httpx.InvalidURL as exc:
        raise ValueError(f"DATALAB_API_URL is not a URL: {exc}") from exc
    if not url.host:
        raise ValueError("DATALAB_API_URL has no host")
    if url.userinfo:
        raise ValueError("DATALAB_API_URL must not contain user info")
    if url.query or url.fragment:
        raise ValueError("DATALAB_API_URL must not have a query or fragment")
    if url.scheme != "https" and not (url.scheme == "http" and _is_loopback(url.host)):
        raise ValueError("DATALAB_API_URL must use https (http only for a loopback host)")
    netloc = url.netloc.decode("ascii")
    path = url.raw_path.decode("ascii").rstrip("/")
    return f"{url.scheme}://{netloc}{path}"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DatalabClient:
    """Synchronous Datalab client; one instance per Lambda container is fine (it pools)."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not api_key or not _KEY_CHARS.match(api_key):
            raise ValueError("DATALAB_API_KEY is empty or has characters a header cannot carry")
        self.api_url = check_api_url(api_url)
        self._origin = _origin(httpx.URL(self.api_url))
        self._key = api_key
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
            transport=transport,
            follow_redirects=False,  # a redirect could carry the key to another host
        )

    def __repr__(self) -> str:
        return f"DatalabClient(api_url={self.api_url!r})"

    def __enter__(self) -> DatalabClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit(
        self,
        stream: BinaryIO,
        *,
        filename: str,
        content_type: str,
        page_schema: str,
        size: int | None = None,
        webhook_url: str | None = None,
    ) -> Submission:
        """Start a ``fast`` extraction of ``stream``; return the request id and check URL.

        The file is streamed in 64 KiB reads, so memory does not grow with its size. With
        ``size`` the body gets a Content-Length; without it, chunked transfer encoding. With
        ``webhook_url`` Datalab POSTs there when processing completes.
        """
        if not _CONTENT_TYPE.match(content_type):
            raise ValueError("content_type must be printable ASCII")
        fields = {"page_schema": page_schema, "extraction_mode": "fast", "output_format": "json"}
        if webhook_url:
            fields["webhook_url"] = webhook_url
        body = MultipartBody(
            fields=fields,
            file_field="file",
            filename=filename,
            content_type=content_type,
            stream=stream,
            size=size,
        )
        headers = {"X-API-Key": self._key, "Content-Type": body.content_type}
        if body.content_length is not None:
            headers["Content-Length"] = str(body.content_length)
        url = self.api_url + EXTRACT_PATH
        try:
            response = self._http.post(url, content=iter(body), headers=headers)
        except _NETWORK_ERRORS as exc:
            why = _describe(exc, self._key)
            self._fail(DatalabUnreachable(f"submit to Datalab failed: {why}"), exc)
        if response.status_code == 404:
            detail = _detail(response, self._key)
            self._fail(DatalabRequestRejected(f"submit: 404 at {url}: {detail}"))
        data = self._json_body(response, "submit")
        if data.get("success") is False:
            text = _text(data, self._key)
            self._fail(DatalabRequestRejected(f"Datalab refused the document: {text}"))
        request_id, check_url = data.get("request_id"), data.get("request_check_url")
        if not (isinstance(request_id, str) and request_id):
            self._fail(DatalabMalformedResponse("submit response has no request_id"))
        if not (isinstance(check_url, str) and check_url):
            self._fail(DatalabMalformedResponse("submit response has no request_check_url"))
        return Submission(request_id=request_id, check_url=self.resolve_check_url(check_url))

    def resolve_check_url(self, check_url: str) -> str:
        """``check_url`` made absolute against the configured API URL (RFC 3986 resolution).

        ``/api/v1/extract/<id>`` becomes ``<api origin>/api/v1/extract/<id>``; an absolute URL
        is returned as it is. A protocol-relative ``//host/...`` resolves to *that* host, so
        :meth:`check` still refuses it when it is not the configured origin. Trust is decided by
        :meth:`check`, never here.
        """
        try:
            url = httpx.URL(check_url)
        except httpx.InvalidURL:
            return check_url  # check() refuses it with a clear message
        if url.is_absolute_url or not check_url:
            return check_url
        try:
            return str(httpx.URL(self.api_url + "/").join(url))
        except httpx.InvalidURL:
            return check_url

    def check(self, check_url: str) -> dict[str, Any]:
        """Poll once: the parsed body while not terminal or once ``complete`` (scored or not).

        A status other than ``complete`` or ``failed`` (``processing``, and any other word
        Datalab may add, such as ``pending``) is returned as not finished: the caller keeps
        polling, bounded by its deadline. ``failed``, or ``complete`` with ``success: false``,
        raises DatalabExtractionFailed; the page-rate throttle raises its subclass
        DatalabPageRateLimited. A relative ``check_url`` is resolved against the API URL first.
        """
        check_url = self.resolve_check_url(check_url)
        self._check_trusted(check_url)
        try:
            response = self._http.get(check_url, headers={"X-API-Key": self._key})
        except _NETWORK_ERRORS as exc:
            why = _describe(exc, self._key)
            self._fail(DatalabUnreachable(f"poll of Datalab failed: {why}"), exc)
        if response.status_code == 404:
            shown = _clip(check_url, self._key)
            self._fail(DatalabResultExpired(f"Datalab no longer knows {shown}"))
        data = self._json_body(response, "poll")
        status = data.get("status")
        if not (isinstance(status, str) and _STATUS_TEXT.match(status)):
            shown = _clip(repr(status), self._key)
            self._fail(DatalabMalformedResponse(f"poll: unknown status {shown}"))
        if status == "failed":
            text = _text(data, self._key)
            self._fail(DatalabExtractionFailed(f"Datalab extraction failed: {text}"))
        if status == "complete" and data.get("success") is False:
            text = _text(data, self._key)
            if text.startswith(PAGE_RATE_LIMIT_PREFIX):
                self._fail(DatalabPageRateLimited(f"Datalab throttled the job: {text}"))
            self._fail(DatalabExtractionFailed(f"Datalab completed without success: {text}"))
        return data

    # --- helpers ---------------------------------------------------------------------------------

    def _check_trusted(self, check_url: str) -> None:
        try:
            url = httpx.URL(check_url)
        except httpx.InvalidURL as exc:
            shown = _clip(check_url, self._key)
            self._fail(UntrustedCheckUrl(f"check URL is not a URL: {shown}"), exc)
        if url.userinfo or _origin(url) != self._origin:
            self._fail(
                UntrustedCheckUrl(
                    f"check URL {_clip(check_url, self._key)} is not on the configured API origin "
                    f"{self.api_url}; the API key is not sent there"
                )
            )

    def _json_body(self, response: httpx.Response, call: str) -> dict[str, Any]:
        """Map a non-2xx status to its error; parse a 2xx body as a JSON object."""
        status = response.status_code
        if not 200 <= status < 300:
            self._fail(_status_error(response, call, self._key))
        try:
            data = response.json()
        except (ValueError, httpx.DecodingError) as exc:
            why = _describe(exc, self._key)
            self._fail(DatalabMalformedResponse(f"{call}: {status} body is not JSON: {why}"), exc)
        if not isinstance(data, dict):
            self._fail(DatalabMalformedResponse(f"{call}: {status} body is not a JSON object"))
        return data

    def _fail(self, error: DoctriageError, cause: BaseException | None = None) -> NoReturn:
        # Datalab's own text could echo the key back: scrub it from everything we raise.
        error.args = tuple(
            arg.replace(self._key, REDACTED) if isinstance(arg, str) else arg for arg in error.args
        )
        raise error from cause


def _status_error(response: httpx.Response, call: str, secret: str) -> DoctriageError:
    status = response.status_code
    what = f"{call}: Datalab answered {status}: {_detail(response, secret)}"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 429:
        return DatalabRateLimited(what, retry_after=retry_after)
    if status >= 500:
        return DatalabServerError(what, retry_after=retry_after)
    if status == 408:  # the server gave up waiting for our request: a network problem, retryable
        return DatalabUnreachable(what, retry_after=retry_after)
    if status in (401, 403):
        return DatalabAuthError(what)
    if 400 <= status < 500:
        return DatalabRequestRejected(what)
    # 1xx/3xx: redirects are not followed, so the key never leaves the configured host.
    location = response.headers.get("Location")
    extra = f" (Location: {_clip(location, secret)})" if location else ""
    return DatalabMalformedResponse(f"{call}: unexpected status {status}{extra}")


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    # httpx normalises case, IDNA and the default port (None), so equal origins compare equal.
    return (url.scheme, url.host, url.port)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _detail(response: httpx.Response, secret: str) -> str:
    """Datalab's error text from an error response: ``detail`` (FastAPI 422 lists summarised)."""
    try:
        data = response.json()
    except (ValueError, httpx.DecodingError):
        return _clip(response.text.strip(), secret) or response.reason_phrase
    if isinstance(data, dict):
        detail = data.get("detail", data.get("error"))
        if isinstance(detail, list):
            return _clip("; ".join(_validation_item(item) for item in detail), secret)
        if detail is not None:
            return _clip(detail if isinstance(detail, str) else json.dumps(detail), secret)
    return _clip(json.dumps(data), secret)


def _validation_item(item: object) -> str:
    # FastAPI's {type, loc, msg, input}: ``input`` is left out, it may be huge or the document.
    if isinstance(item, dict):
        loc = ".".join(str(part) for part in item.get("loc") or ())
        msg = str(item.get("msg", "invalid"))
        return f"{loc}: {msg}" if loc else msg
    return str(item)


def _text(data: dict[str, Any], secret: str) -> str:
    error = data.get("error")
    if error is None:
        error = data.get("detail") or "no error text"
    return _clip(error if isinstance(error, str) else json.dumps(error), secret)


def _describe(exc: Exception, secret: str) -> str:
    return f"{type(exc).__name__}: {_clip(str(exc), secret)}" if str(exc) else type(exc).__name__


def _clip(text: str, secret: str | None = None) -> str:
    """At most _MAX_TEXT characters of ``text``, with ``secret`` scrubbed out first.

    Scrubbing after clipping would miss a secret that the clip cuts through: its prefix stays.
    """
    if secret:
        text = text.replace(secret, REDACTED)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
