"""The review page, served on 127.0.0.1 by the standard library's HTTP server.

One document is open at a time (this server holds its message; the heartbeat keeps it hidden
from other consumers). Routes:

    GET  /                      the open document, else the next one, else a waiting page
    GET  /doc/<id>              a document's review page (read-only unless it is the open one)
    GET  /doc/<id>/page/<n>     page n (0-based) as an image
    POST /doc/<id>/decision     store the decision, delete the message, go to the next document
                                (a different decision stored first: the conflict page)
    POST /doc/<id>/amend        record a decision over the stored one (from the conflict page)
    POST /doc/<id>/skip         give the open document up: hidden a while, then anyone's
    POST /doc/<id>/check        how a correction would be read and whether it is valid (JSON)
    POST /next, /api/next       long-poll the queue for the next document (form / JSON)
    GET  /api/status            what this server has done, as JSON
    GET  /static/<file>         review.css, review.js

POSTs carry a per-server token (a page on another site cannot post decisions to it) and the
Host header must name this server (no DNS rebinding).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from doctriage_local.review import page
from doctriage_local.review.consumer import (
    MAX_WAIT_SECONDS,
    OpenDocument,
    ReviewConsumer,
    Stored,
)
from doctriage_local.review.decision import (
    DecisionError,
    build_review,
    check_correction,
    checks_after,
    is_audit,
    revision_of,
)
from doctriage_local.review.render import PageCache, RenderedPage, RenderError, render_pages

log = logging.getLogger("doctriage.review")

STATIC = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
MAX_FORM_BYTES = 1 << 20


class ReviewServer:
    """``with ReviewServer(consumer, port=0, reviewer="ana") as server: print(server.url)``."""

    def __init__(
        self,
        consumer: ReviewConsumer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reviewer: str,
        wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> None:
        if not reviewer.strip():
            raise ValueError("the review server needs a reviewer's name (--reviewer NAME)")
        self.consumer = consumer
        self.reviewer = reviewer.strip()  # every decision this server stores is theirs
        self.wait_seconds = wait_seconds
        self.token = secrets.token_urlsafe(24)
        self.current: OpenDocument | None = None
        self._titles: dict[str, str] = {}
        self._lock = threading.RLock()
        self._next_lock = threading.Lock()
        self._stopped = threading.Event()
        self._pages = PageCache()
        self._schemas: dict[str, dict[str, Any] | None] = {}  # by document id
        self._thread: threading.Thread | None = None
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        self.host, self.port = host, int(self.httpd.server_address[1])
        self.allowed_hosts = {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", str(host))}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ReviewServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="review-server", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving; an open, undecided document goes back on the queue."""
        self._stopped.set()
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()
        with self._lock:
            if self.current is not None:
                self.consumer.release(self.current)
                self.current = None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __enter__(self) -> ReviewServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the desk

    def next_document(self, wait_seconds: float) -> OpenDocument | None:
        with self._next_lock:
            with self._lock:
                if self.current is not None:
                    return self.current
            document = self.consumer.open_next(wait_seconds)
            if document is None:
                return None
            with self._lock:
                if self._stopped.is_set():
                    self.consumer.release(document)
                    return None
                self.current = document
                key = (document.record.get("source") or {}).get("key")
                self._titles[document.document_id] = key or document.document_id
            return document

    def open_document(self, document_id: str) -> OpenDocument | None:
        with self._lock:
            if self.current is not None and self.current.document_id == document_id:
                return self.current
        return None

    def decide(self, document: OpenDocument, review: dict[str, Any]) -> Stored:
        with self._lock:
            stored = self.consumer.decide(document, review)
            if self.current is document:
                self.current = None
            return stored

    def reprocess(self, record: dict[str, Any]) -> str:
        return self.consumer.reprocess(record)

    def skip(self, document: OpenDocument) -> None:
        with self._lock:
            self.consumer.skip(document)
            if self.current is document:
                self.current = None

    def title(self, document_id: str) -> str:
        return self._titles.get(document_id, document_id)

    def pages(self, record: dict[str, Any]) -> tuple[list[RenderedPage], int]:
        cached = self._pages.get(record["document_id"])
        if cached is None:
            data, _ = self.consumer.document_bytes(record)
            cached = render_pages(data)
            self._pages.put(record["document_id"], cached)
        return cached

    def schema(self, record: dict[str, Any]) -> dict[str, Any] | None:
        document_id = record["document_id"]
        if document_id not in self._schemas:
            if len(self._schemas) > 64:
                self._schemas.clear()
            self._schemas[document_id] = self.consumer.schema_for(record)
        return self._schemas[document_id]

    def status(self) -> dict[str, Any]:
        stats = self.consumer.stats
        with self._lock:
            current = self.current.document_id if self.current else None
            beats = self.current.heartbeat.beats if self.current else 0
        return {
            "open": current,
            "heartbeats": beats,
            "opened": stats.opened,
            "decided": stats.decided,
            "already_decided": stats.already_decided,
            "identical_acknowledged": stats.identical_acknowledged,
            "amended": stats.amended,
            "skipped": stats.skipped,
            "duplicates_acknowledged": stats.duplicates_acknowledged,
            "released": stats.released,
            "left_alone": stats.left_alone,
            "queue_url": self.consumer.queue_url,
        }


def _handler_for(server: ReviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_ReviewHandler):
        review = server

    return Handler


class _ReviewHandler(BaseHTTPRequestHandler):
    review: ReviewServer
    server_version = "doctriage-review"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------------ plumbing

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if content_type.startswith("text/html"):
            self.send_header(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
                "script-src 'self'; form-action 'self'; frame-ancestors 'none'",
            )
            self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status >= 400:
            self.close_connection = True  # an unread request body must not become the next one
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                log.debug("%s went away before the answer to %s", self.client_address, self.path)

    def _html(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/html; charset=utf-8")

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _redirect(self, location: str) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": location})

    def _error(self, status: int, title: str, message: str) -> None:
        self._html(status, page.message_page(title, message, token=self.review.token))

    def _host_ok(self) -> bool:
        if self.review.stopped:
            # A keep-alive connection outlives shutdown(): its thread must not take documents.
            # Closed without an answer, a browser retries on a new connection (a new server).
            self.close_connection = True
            return False
        if self.headers.get("Host", "") in self.review.allowed_hosts:
            return True
        self._send(HTTPStatus.MISDIRECTED_REQUEST, b"wrong Host", "text/plain")
        return False

    def _form(self) -> dict[str, list[str]] | None:
        """The POSTed form when its token is ours; None (and a 403 or 413 sent) otherwise."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_FORM_BYTES:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Too large", "The form is too large.")
            return None
        raw = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        form = parse_qs(raw, keep_blank_values=True)
        token = self.headers.get("X-Review-Token") or (form.get("token") or [""])[0]
        if not secrets.compare_digest(token, self.review.token):
            self._error(
                HTTPStatus.FORBIDDEN,
                "Refused",
                "This form is not from this review page (reload the page and try again).",
            )
            return None
        return form

    # ------------------------------------------------------------------ routes

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        try:
            if not parts:
                self._index(query, url.query)
            elif parts == ["api", "status"]:
                self._json(HTTPStatus.OK, self.review.status())
            elif parts[0] == "static" and len(parts) == 2:
                self._static(parts[1])
            elif parts[0] == "doc" and len(parts) == 2:
                self._document(parts[1], self._notice(query))
            elif parts[0] == "doc" and len(parts) == 4 and parts[2] == "page":
                self._page_image(parts[1], parts[3])
            elif parts == ["favicon.ico"]:
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            else:
                self._error(HTTPStatus.NOT_FOUND, "Not found", f"Nothing at {url.path}.")
        except Exception as exc:
            log.exception("GET %s failed", self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "Something went wrong", str(exc))

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/") if p]
        form = self._form()
        if form is None:
            return
        try:
            if parts == ["next"]:
                document = self.review.next_document(self.review.wait_seconds)
                self._redirect(page.document_url(document.document_id) if document else "/")
            elif parts == ["api", "next"]:
                document = self.review.next_document(self.review.wait_seconds)
                document_id = document.document_id if document else None
                self._json(
                    HTTPStatus.OK,
                    {
                        "document_id": document_id,
                        "url": page.document_url(document_id) if document_id else None,
                        **self.review.status(),
                    },
                )
            elif len(parts) == 3 and parts[0] == "doc" and parts[2] == "decision":
                self._decide(parts[1], form)
            elif len(parts) == 3 and parts[0] == "doc" and parts[2] == "amend":
                self._amend(parts[1], form)
            elif len(parts) == 3 and parts[0] == "doc" and parts[2] == "skip":
                self._skip(parts[1])
            elif len(parts) == 3 and parts[0] == "doc" and parts[2] == "check":
                self._check(parts[1], form)
            else:
                self._error(HTTPStatus.NOT_FOUND, "Not found", f"Nothing to post at {self.path}.")
        except Exception as exc:
            log.exception("POST %s failed", self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "Something went wrong", str(exc))

    def _notice(self, query: dict[str, list[str]]) -> str | None:
        notice = self._settled(query)
        if notice and "reprocessed_as" in query:
            notice += f" It goes through the pipeline again as {query['reprocessed_as'][0]}."
        if notice and "checks_failing" in query:
            names = query["checks_failing"][0].replace(",", ", ")
            notice += (
                f" With its corrections, {names} does not add up: if that is wrong, amend the "
                "decision from the document's page."
            )
        return notice

    def _settled(self, query: dict[str, list[str]]) -> str | None:
        review = self.review
        if "decided" in query:
            return f"Decision stored for {review.title(query['decided'][0])}."
        if "identical" in query:
            return (
                f"{review.title(query['identical'][0])} already had this same decision: "
                "acknowledged."
            )
        if "amended" in query:
            return f"Amendment stored for {review.title(query['amended'][0])}."
        if "kept" in query:
            return f"The stored decision for {review.title(query['kept'][0])} stands."
        if "skipped" in query:
            return (
                f"Skipped {review.title(query['skipped'][0])}: kept from you for "
                f"{review.consumer.skip_seconds} s, and open to other reviewers after that."
            )
        return None

    def _index(self, query: dict[str, list[str]], raw_query: str) -> None:
        review = self.review
        auto = True  # a skipped document is hidden: the next one is another
        document = review.next_document(0)
        if document is not None:
            suffix = f"?{raw_query}" if raw_query else ""
            self._redirect(page.document_url(document.document_id) + suffix)
            return
        stats = review.consumer.stats
        self._html(
            HTTPStatus.OK,
            page.waiting_page(
                token=review.token,
                notice=self._notice(query),
                auto=auto,
                decided=stats.decided,
                duplicates=stats.duplicates_acknowledged,
                queue_url=review.consumer.queue_url,
            ),
        )

    def _static(self, name: str) -> None:
        path = STATIC / name
        if path.suffix not in STATIC_TYPES or path.parent != STATIC or not path.is_file():
            self._error(HTTPStatus.NOT_FOUND, "Not found", f"No static file {name}.")
            return
        self._send(
            HTTPStatus.OK,
            path.read_bytes(),
            STATIC_TYPES[path.suffix],
            {"Cache-Control": "no-cache"},
        )

    def _record(self, document_id: str) -> tuple[dict[str, Any] | None, OpenDocument | None]:
        document = self.review.open_document(document_id)
        if document is not None:
            return document.record, document
        return self.review.consumer.get_record(document_id), None

    def _render(
        self,
        record: dict[str, Any],
        document: OpenDocument | None,
        status: int = HTTPStatus.OK,
        **extra: Any,
    ) -> None:
        try:
            pages, count = self.review.pages(record)
            render_error = None
        except (RenderError, KeyError) as exc:
            pages, count, render_error = [], 0, str(exc)
        except Exception as exc:  # S3 errors: show the fields anyway
            log.warning("cannot read %s: %s", record["document_id"], exc)
            pages, count, render_error = [], 0, f"cannot read the document from S3: {exc}"
        warning = None
        if document is not None and document.heartbeat.error:
            warning = (
                "This document's message could not be kept hidden from other reviewers "
                f"({document.heartbeat.error}); someone else may be reviewing it too."
            )
        self._html(
            status,
            page.document_page(
                record,
                pages=pages,
                page_count=count,
                render_error=render_error,
                token=self.review.token,
                reviewer=self.review.reviewer,
                is_open=document is not None,
                lease_warning=warning,
                schema=self.review.schema(record),
                audit=document.audit if document else is_audit(record),
                queue=self._queue_facts(document),
                **extra,
            ),
        )

    def _queue_facts(self, document: OpenDocument | None) -> page.QueueFacts | None:
        if document is None:
            return None
        consumer = self.review.consumer
        return page.QueueFacts(
            receive_count=document.receive_count,
            max_receive_count=consumer.max_receive_count,
            depth=consumer.queue_depth(),
        )

    def _document(self, document_id: str, notice: str | None) -> None:
        record, document = self._record(document_id)
        if record is None:
            self._error(
                HTTPStatus.NOT_FOUND, "No such document", f"There is no record for {document_id}."
            )
            return
        self._render(record, document, notice=notice)

    def _page_image(self, document_id: str, number: str) -> None:
        record, _ = self._record(document_id)
        if record is None or not number.isdigit():
            self._error(HTTPStatus.NOT_FOUND, "Not found", "No such page.")
            return
        try:
            pages, _ = self.review.pages(record)
        except RenderError as exc:
            self._error(HTTPStatus.NOT_FOUND, "No preview", str(exc))
            return
        match = next((p for p in pages if p.index == int(number)), None)
        if match is None:
            self._error(HTTPStatus.NOT_FOUND, "Not found", "No such page.")
            return
        self._send(
            HTTPStatus.OK, match.data, match.content_type, {"Cache-Control": "private, max-age=300"}
        )

    def _decide(self, document_id: str, form: dict[str, list[str]]) -> None:
        document = self.review.open_document(document_id)
        if document is None:
            record = self.review.consumer.get_record(document_id)
            if record is not None and record.get("review"):
                self._decided_elsewhere(record, form)
                return
            self._error(
                HTTPStatus.CONFLICT,
                "Not open here",
                "This document is not open on this review server (it was put back on "
                "the queue, or taken by another reviewer). Your decision was not stored.",
            )
            return
        try:
            decision = self._review_of(document.record, form, audit=document.audit)
        except DecisionError as exc:
            self._render(document.record, document, HTTPStatus.BAD_REQUEST, form=form, error=exc)
            return
        try:
            self._reprocess_if_still_at(document.record, decision, revision=0)
            outcome = self.review.decide(document, decision)
        except Exception as exc:
            log.exception("storing the decision for %s failed", document_id)
            self._render(
                document.record,
                document,
                HTTPStatus.SERVICE_UNAVAILABLE,
                form=form,
                notice=f"The decision could not be stored ({exc}); the document is still open "
                "and its message still on the queue: try again.",
            )
            return
        self._answer(document.record, decision, outcome, form)

    def _decided_elsewhere(self, record: dict[str, Any], form: dict[str, list[str]]) -> None:
        """A decision posted for a document decided meanwhile (another tab, another reviewer):
        acknowledged when it is the same, else the conflict page. Nothing is written."""
        try:
            decision = self._review_of(record, form)
        except DecisionError as exc:
            self._render(record, None, HTTPStatus.BAD_REQUEST, form=form, error=exc)
            return
        outcome = self.review.consumer.against_stored(record["document_id"], decision)
        self._answer(record, decision, outcome, form)

    def _answer(
        self,
        record: dict[str, Any],
        decision: dict[str, Any],
        outcome: Stored,
        form: dict[str, list[str]],
    ) -> None:
        document_id = record["document_id"]
        if outcome.kind == "conflict":
            self._html(
                HTTPStatus.CONFLICT,
                page.conflict_page(
                    record,
                    stored=outcome.review,
                    yours=decision,
                    form=form,
                    revision=revision_of(outcome.review),
                    token=self.review.token,
                ),
            )
            return
        which = {"stored": "decided", "amended": "amended", "identical": "identical"}[outcome.kind]
        again = outcome.review.get("reprocessed_as") if outcome.kind != "identical" else None
        also = f"&reprocessed_as={quote(again, safe='')}" if again else ""
        if outcome.kind != "identical" and decision.get("corrected"):
            after = checks_after(record, self.review.schema(record), decision)
            failing = ",".join(c["name"] for c in after if c["passed"] is False)
            also += f"&checks_failing={quote(failing, safe=',')}" if failing else ""
        self._redirect(f"/?{which}={quote(document_id, safe='')}{also}")

    def _amend(self, document_id: str, form: dict[str, list[str]]) -> None:
        record = self.review.consumer.get_record(document_id)
        if record is None or not record.get("review"):
            self._error(
                HTTPStatus.CONFLICT, "Nothing to amend", f"{document_id} has no stored decision."
            )
            return
        try:
            revision = int((form.get("revision") or [""])[0])
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "Bad form", "The amendment names no revision.")
            return
        try:
            decision = self._review_of(record, form)
        except DecisionError as exc:
            self._error(HTTPStatus.BAD_REQUEST, "Not stored", str(exc))
            return
        self._reprocess_if_still_at(record, decision, revision=revision)
        outcome = self.review.consumer.amend(document_id, decision, revision=revision)
        self._answer(record, decision, outcome, form)

    def _review_of(
        self, record: dict[str, Any], form: dict[str, list[str]], audit: bool | None = None
    ) -> dict[str, Any]:
        """The decision this form makes, signed by this server's reviewer; DecisionError."""
        return build_review(
            record,
            form,
            self.review.reviewer,
            schema=self.review.schema(record),
            audit=is_audit(record) if audit is None else audit,
        )

    def _reprocess_if_still_at(
        self, record: dict[str, Any], decision: dict[str, Any], *, revision: int
    ) -> None:
        """A reprocess decision's upload goes round again, if the stored review is still at
        ``revision`` (read now): that cannot be taken back by a later conflict, so it goes only
        ahead of a decision that will be stored (short of a race in the moment between)."""
        if decision["outcome"] != "reprocess":
            return
        current = self.review.consumer.get_record(record["document_id"]) or {}
        if revision_of(current.get("review")) == revision:
            decision["reprocessed_as"] = self.review.reprocess(record)

    def _check(self, document_id: str, form: dict[str, list[str]]) -> None:
        record, _ = self._record(document_id)
        if record is None:
            self._json(HTTPStatus.NOT_FOUND, {"problem": f"no record for {document_id}"})
            return
        path, text = (form.get("path") or [""])[0], (form.get("text") or [""])[0]
        self._json(HTTPStatus.OK, check_correction(record, self.review.schema(record), path, text))

    def _skip(self, document_id: str) -> None:
        document = self.review.open_document(document_id)
        if document is not None:
            self.review.skip(document)
        self._redirect(f"/?skipped={quote(document_id, safe='')}")
