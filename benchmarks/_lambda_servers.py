"""The far side of lambda_bench's memory runs, in a process of its own so that what it holds
(moto's copy of a 100 MB upload, a generated Datalab result) never counts against the handler.

``python -m benchmarks._lambda_servers`` prints one JSON line ``{"moto": url, "sink": url}`` once
both listen on 127.0.0.1, then serves until stdin closes. Two servers:

- moto (S3, DynamoDB, SQS, Step Functions, Secrets Manager) as a ThreadedMotoServer;
- a Datalab sink: ``POST /api/v1/extract`` reads the multipart body in 1 MiB pieces, keeps only
  its length and answers like Datalab; ``GET /api/v1/extract/result-<pages>-<fields>`` answers a
  complete, scored result with a marker-style block tree of that many pages (generated once per
  shape); ``GET /_sink/stats`` lists the byte counts received.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EXTRACT_PATH = "/api/v1/extract"
BLOCKS_PER_PAGE = 40
_BLOCK_TEXT = (
    "Invoice lines, totals and terms as marker renders them: one paragraph of ordinary text "
    "inside its block's HTML, about as long as a real line item or clause. "
)


def field_names(fields: int) -> list[str]:
    return [f"field_{i:03d}" for i in range(fields)]


def make_result(pages: int, fields: int) -> dict[str, Any]:
    """A complete, scored Datalab result: ``fields`` extracted values and a block tree."""
    tree_pages = []
    for p in range(pages):
        blocks = [
            {
                "id": f"/page/{p}/Text/{b}",
                "block_type": "Text",
                "html": f"<p>{_BLOCK_TEXT}({p}.{b})</p>",
                "polygon": [
                    [50.0, 60.0 + 15 * b],
                    [550.0, 60.0 + 15 * b],
                    [550.0, 72.0 + 15 * b],
                    [50.0, 72.0 + 15 * b],
                ],
                "bbox": [50.0, 60.0 + 15 * b, 550.0, 72.0 + 15 * b],
                "children": None,
                "section_hierarchy": {"1": f"/page/{p}/SectionHeader/0"},
                "images": {},
            }
            for b in range(BLOCKS_PER_PAGE)
        ]
        tree_pages.append(
            {
                "id": f"/page/{p}/Page/0",
                "block_type": "Page",
                "html": "".join(f"<content-ref src='{b['id']}'></content-ref>" for b in blocks),
                "polygon": [[0.0, 0.0], [612.0, 0.0], [612.0, 792.0], [0.0, 792.0]],
                "bbox": [0.0, 0.0, 612.0, 792.0],
                "children": blocks,
                "section_hierarchy": None,
                "images": {},
            }
        )
    extraction: dict[str, Any] = {}
    for i, name in enumerate(field_names(fields)):
        extraction[name] = f"value {i}"
        extraction[f"{name}_citations"] = [f"/page/{i % pages}/Text/{i % BLOCKS_PER_PAGE}"]
        extraction[f"{name}_score"] = {"score": 5, "reasoning": "printed clearly"}
    return {
        "status": "complete",
        "success": True,
        "output_format": "json",
        "json": {"children": tree_pages, "block_type": "Document", "metadata": {}},
        "extraction_schema_json": json.dumps(extraction),
        "extraction_score_average": 5.0,
        "page_count": pages,
        "runtime": 1.0,
    }


def schema_for(fields: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": f"value {name}"} for name in field_names(fields)
        },
    }


class _Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.received: list[int] = []
        self.results: dict[str, bytes] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _SinkHandler(BaseHTTPRequestHandler):
    server: _Sink
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path != EXTRACT_PATH:
            self._reply(404, b'{"detail": "Not Found"}')
            return
        received = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while size := int(self.rfile.readline().split(b";")[0], 16):
                received += len(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                chunk = self.rfile.read(min(left, 1 << 20))
                if not chunk:
                    break
                received += len(chunk)
                left -= len(chunk)
        with self.server.lock:
            self.server.received.append(received)
            request_id = f"sink-{len(self.server.received)}"
        body = {
            "success": True,
            "error": None,
            "request_id": request_id,
            "request_check_url": f"{self.server.url}{EXTRACT_PATH}/{request_id}",
        }
        self._reply(200, json.dumps(body).encode())

    def do_GET(self) -> None:
        if self.path == "/_sink/stats":
            with self.server.lock:
                self._reply(200, json.dumps({"received": self.server.received}).encode())
            return
        name = self.path.removeprefix(EXTRACT_PATH + "/")
        if name.startswith("result-"):
            with self.server.lock:
                body = self.server.results.get(name)
                if body is None:
                    _, pages, fields = name.split("-")
                    body = json.dumps(make_result(int(pages), int(fields))).encode()
                    self.server.results[name] = body
            self._reply(200, body)
            return
        self._reply(200, json.dumps({"status": "processing", "success": None}).encode())


def main() -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    sink = _Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    print(json.dumps({"moto": f"http://{host}:{port}", "sink": sink.url}), flush=True)
    sys.stdin.read()  # until the bench closes our stdin (or exits)
    sink.shutdown()
    moto.stop()


if __name__ == "__main__":
    main()
