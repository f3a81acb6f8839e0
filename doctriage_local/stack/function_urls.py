"""Lambda function URLs on 127.0.0.1: one HTTP server, a path per function.

A function with ``FunctionUrlConfig`` in template.yaml gets ``http://127.0.0.1:<port>/<name>/``
(its ``<LogicalId>Url.FunctionUrl``, as SAM names the URL resource). A request becomes the
payload-format-2.0 event Lambda sends and runs the handler in this process; the handler's
``{statusCode, headers, body}`` is the answer, and a handler error is a 502, as Lambda's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Invoke = Callable[[str, Any], tuple[Any, bool]]
MAX_BODY_BYTES = 1024 * 1024


class FunctionUrls:
    def __init__(self, invoke: Invoke) -> None:
        self._invoke = invoke
        self._names: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url_for(self, function_name: str) -> str:
        """Serve ``function_name`` (started on first use); return its URL."""
        if self._server is None:
            self._start()
        assert self._server is not None
        self._names.add(function_name)
        return f"http://127.0.0.1:{self._server.server_port}/{function_name}/"

    def _start(self) -> None:
        urls = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                urls._answer(self, "GET")

            def do_POST(self) -> None:
                urls._answer(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="function-urls",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _answer(self, request: BaseHTTPRequestHandler, method: str) -> None:
        name, _, rest = request.path.lstrip("/").partition("/")
        if name not in self._names:
            return _reply(request, 404, {"Content-Type": "text/plain"}, b"no such function URL")
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            return _reply(request, 413, {"Content-Type": "text/plain"}, b"payload too large")
        body = request.rfile.read(length).decode("utf-8", errors="replace") if length else ""
        path, _, query = ("/" + rest).partition("?")
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "requestContext": {
                "http": {"method": method, "path": path, "sourceIp": request.client_address[0]}
            },
            "body": body,
            "isBase64Encoded": False,
        }
        result, errored = self._invoke(name, event)
        if errored:
            return _reply(request, 502, {"Content-Type": "text/plain"}, b"Internal Server Error")
        if isinstance(result, dict) and "statusCode" in result:
            payload = result.get("body") or ""
            return _reply(
                request,
                int(result["statusCode"]),
                {str(k): str(v) for k, v in (result.get("headers") or {}).items()},
                payload.encode() if isinstance(payload, str) else json.dumps(payload).encode(),
            )
        return _reply(
            request, 200, {"Content-Type": "application/json"}, json.dumps(result).encode()
        )


def _reply(
    request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    request.send_response(status)
    for key, value in headers.items():
        request.send_header(key, value)
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    request.wfile.write(body)
