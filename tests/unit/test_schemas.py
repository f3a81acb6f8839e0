"""load_schema, parse_threshold, document_threshold."""

from __future__ import annotations

import http.server
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from doctriage_core.domain.schemas import (
    document_threshold,
    load_schema,
    parse_threshold,
    property_validator,
)
from doctriage_core.errors import InvalidThreshold, SchemaInvalid

INVOICE = {
    "type": "object",
    "x-review-threshold": 0.8,
    "properties": {
        "invoice_number": {"type": "string", "pattern": "^INV-", "x-review-threshold": 0.95},
        "issued": {"type": "string", "format": "date"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
        "credit_score": {"type": "integer"},
    },
    "required": ["invoice_number"],
    "$defs": {"line": {"type": "object", "properties": {"sku": {"type": "string"}}}},
}


@pytest.mark.parametrize("raw", [json.dumps(INVOICE), json.dumps(INVOICE).encode()])
def test_load_schema_accepts_bytes_and_text(raw: str | bytes) -> None:
    assert load_schema(raw) == INVOICE


def with_props(props: Any, **extra: Any) -> str:
    return json.dumps({"properties": props, **extra})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"schema"', "must be a JSON object"),
        ("{}", "non-empty"),
        (with_props({}), "non-empty"),
        (with_props([{"a": {}}]), "non-empty"),
        (with_props({"a": "string"}), "'a'.*JSON object"),
        (with_props({"a": True}), "'a'.*JSON object"),
        (with_props({"a": {"type": "strng"}}), "'a'.*not a usable"),
        (with_props({"a": {"type": "string", "pattern": "("}}), "'a'.*not a usable"),
        (with_props({"a": {"minimum": "zero"}}), "'a'.*not a usable"),
        (with_props({"a": {"$ref": "#/$defs/missing"}}), "'a'.*not a usable"),
        (with_props({" ": {}}), "empty name"),
        (with_props({"a": {}}, required="a"), "required"),
        (with_props({"a": {}}, required=[1]), "required"),
        (with_props({"a": {}}, required=["a", "b"]), "undeclared properties: b"),
        (with_props({"a": {"x-review-threshold": "abc"}}), "property 'a' x-review-threshold"),
        (with_props({"a": {"x-review-threshold": 1.5}}), "property 'a' x-review-threshold"),
        (with_props({"a": {"x-review-threshold": -0.1}}), "property 'a' x-review-threshold"),
        (with_props({"a": {"x-review-threshold": True}}), "property 'a' x-review-threshold"),
        (with_props({"a": {}}, **{"x-review-threshold": 2}), "top-level x-review-threshold"),
        (with_props({"credit": {}, "credit_score": {}}), "'credit_score' collides"),
        (with_props({"total": {}, "total_citations": {}}), "'total_citations' collides"),
    ],
)
def test_load_schema_rejects(raw: str | bytes, message: str) -> None:
    with pytest.raises(SchemaInvalid, match=message):
        load_schema(raw)


def test_schema_invalid_reason_is_schema_invalid() -> None:
    with pytest.raises(SchemaInvalid) as info:
        load_schema(with_props({"a": {"x-review-threshold": "abc"}}))
    assert info.value.reason == "schema_invalid"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.9", 0.9), (0.9, 0.9), (0, 0.0), (1, 1.0), (" 0.5 ", 0.5), ("1", 1.0), ("0", 0.0)],
)
def test_parse_threshold(value: object, expected: float) -> None:
    parsed = parse_threshold(value, source="here")
    assert parsed == expected
    assert isinstance(parsed, float)


@pytest.mark.parametrize(
    "value",
    ["abc", "", 1.5, -0.1, math.nan, "nan", math.inf, "-inf", True, False, None, [0.5], {}],
    ids=repr,
)
def test_parse_threshold_rejects(value: object) -> None:
    with pytest.raises(InvalidThreshold, match="upload metadata"):
        parse_threshold(value, source="upload metadata")


@pytest.mark.parametrize(
    ("top", "upload", "expected"),
    [(None, None, 0.85), (0.7, None, 0.7), ("0.7", None, 0.7), (0.7, 0.3, 0.3), (None, 0.0, 0.0)],
)
def test_document_threshold_precedence(top: Any, upload: float | None, expected: float) -> None:
    sch: dict[str, Any] = {"properties": {"a": {"x-review-threshold": 0.1}}}
    if top is not None:
        sch["x-review-threshold"] = top
    assert document_threshold(sch, default_threshold=0.85, upload_threshold=upload) == expected


def test_document_threshold_rejects_a_bad_default() -> None:
    with pytest.raises(InvalidThreshold, match="HumanReviewThreshold"):
        document_threshold({"properties": {}}, default_threshold=85, upload_threshold=None)


# ------------------------------------------------------------------ $ref: local only, never fetched


class _SchemaServer(http.server.ThreadingHTTPServer):
    """Serves a valid JSON Schema at every path and remembers each path it was asked for."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                body = json.dumps({"type": "string"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def schema_server() -> Iterator[_SchemaServer]:
    server = _SchemaServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def schema_file(tmp_path: Path) -> str:
    path = tmp_path / "remote.json"
    path.write_text(json.dumps({"type": "string"}))
    return path.as_uri()


def _remote_ref_schemas(url: str) -> list[dict[str, Any]]:
    return [
        {"properties": {"a": {"$ref": url}}},
        {"properties": {"a": {"type": "array", "items": {"$ref": url}}}},
        {"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"$ref": url}}},
        {"properties": {"a": {"type": "string"}}, "definitions": {"unused": {"$ref": url}}},
    ]


def test_a_schema_with_an_http_ref_is_refused_and_nothing_is_fetched(schema_server) -> None:
    # GIVEN a server that would answer with a perfectly good schema
    url = schema_server.url("/schemas/string.json")
    for schema in _remote_ref_schemas(url):
        # WHEN a schema refers to it, THEN the schema is invalid, naming the reference
        with pytest.raises(SchemaInvalid, match="not a local reference") as caught:
            load_schema(json.dumps(schema))
        assert url in str(caught.value)
    # AND the server was never asked
    assert schema_server.hits == []


def test_a_schema_with_a_file_ref_is_refused(schema_file: str) -> None:
    for schema in _remote_ref_schemas(schema_file):
        with pytest.raises(SchemaInvalid, match="not a local reference"):
            load_schema(json.dumps(schema))


@pytest.mark.parametrize("kind", ["http", "file"])
def test_compiling_a_property_never_fetches_a_ref(
    kind: str, schema_server: _SchemaServer, schema_file: str
) -> None:
    # The compiler itself refuses too, for callers that skip load_schema's check.
    url = schema_server.url("/direct.json") if kind == "http" else schema_file
    schema = {"properties": {"a": {"type": "object", "properties": {"b": {"$ref": url}}}}}
    with pytest.raises(SchemaInvalid, match="only local references"):
        property_validator(schema, "a")
    assert schema_server.hits == []


def test_local_refs_still_work() -> None:
    schema = load_schema(json.dumps(INVOICE))
    validate = property_validator(schema, "lines")
    validate([{"sku": "A-1"}])
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate([{"sku": 1}])
