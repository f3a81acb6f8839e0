"""load_schema, parse_threshold, document_threshold."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from doctriage_core.domain.schemas import document_threshold, load_schema, parse_threshold
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
