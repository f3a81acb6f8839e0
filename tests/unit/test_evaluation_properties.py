"""Property-based invariants of evaluate_extraction and the records built from it."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from doctriage_core.domain.evaluation import Evaluation, evaluate_extraction
from tests.unit.test_nested_fields import record_of

PROPERTY_POOL: dict[str, dict[str, Any]] = {
    "invoice_number": {"type": "string", "pattern": "^INV-"},
    "total": {"type": "number", "minimum": 0},
    "issued": {"type": "string", "format": "date"},
    "currency": {"enum": ["EUR", "USD"]},
    "credit": {"type": "string"},
    "credit_score": {"type": "integer"},
    "document_type": {"type": "string", "enum": ["invoice", "receipt"]},
    "lines": {
        "type": "array",
        "items": {"type": "object", "properties": {"sku": {"type": "string"}}},
    },
    "address": {"type": "object", "properties": {"city": {"type": "string"}}},
}

thresholds = st.sampled_from([0.0, 0.25, 0.5, 0.6, 0.75, 0.85, 0.99, 1.0]) | st.floats(0, 1)
values = st.one_of(
    st.none(),
    st.sampled_from(
        ["", "  ", [], {}, "INV-1", "2024-01-31", "EUR", "invoice", "receipt", "passport"]
    ),
    st.integers(-5, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=8),
    st.lists(st.fixed_dictionaries({"sku": st.text(max_size=3) | st.integers()}), max_size=3),
    st.fixed_dictionaries({"city": st.text(max_size=5)}),
)
score_objects = st.one_of(
    st.builds(lambda s, r: {"score": s, "reasoning": r}, st.integers(1, 5), st.text(max_size=5)),
    st.builds(
        lambda s: {"score": s},
        st.integers(-2, 8) | st.floats(0, 6) | st.booleans() | st.text(max_size=2),
    ),
    st.none(),
    st.text(max_size=3),
)
citations = st.lists(
    st.sampled_from(["/page/0/Text/1", "/page/3/Text/2", "block_1", "x"]), max_size=3
)
TREE = {
    "block_type": "Document",
    "children": [
        {
            "id": "/page/0/Page/0",
            "block_type": "Page",
            "polygon": [[0, 0], [100, 0], [100, 100], [0, 100]],
            "children": [{"id": "/page/0/Text/1", "block_type": "Text", "bbox": [10, 10, 50, 20]}],
        }
    ],
}


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.lists(st.sampled_from(sorted(PROPERTY_POOL)), min_size=1, max_size=6, unique=True)
    )
    properties: dict[str, Any] = {}
    for name in names:
        prop = dict(PROPERTY_POOL[name])
        if draw(st.booleans()):
            prop["x-review-threshold"] = draw(thresholds)
        properties[name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = draw(st.lists(st.sampled_from(names), unique=True))
    if draw(st.booleans()):
        schema["x-review-threshold"] = draw(thresholds)
    extracted: dict[str, Any] = {}
    for name in names:
        if draw(st.booleans()):
            extracted[name] = draw(values)
        if draw(st.booleans()):
            extracted[f"{name}_score"] = draw(score_objects)
        if draw(st.booleans()):
            extracted[f"{name}_citations"] = draw(citations)
    extracted |= draw(st.dictionaries(st.sampled_from(["junk", "junk_score", "x_meta"]), values))
    result: dict[str, Any] = {"extraction_schema_json": json.dumps(extracted), "json": TREE}
    if draw(st.booleans()):
        result["extraction_score_average"] = draw(st.none() | st.floats(0, 7) | st.integers(0, 7))
    return {
        "schema": schema,
        "result": result,
        "default": draw(thresholds),
        "upload": draw(st.none() | thresholds),
        "scores_available": draw(st.booleans()),
    }


def evaluate(case: dict[str, Any], upload: float | None = None) -> Evaluation:
    return evaluate_extraction(
        case["schema"],
        case["result"],
        upload_doc_type="invoice",
        default_threshold=case["default"],
        upload_threshold=upload if upload is not None else case["upload"],
        scores_available=case["scores_available"],
    )


@settings(max_examples=300, deadline=None)
@given(case=cases())
def test_invariants(case: dict[str, Any]) -> None:
    ev = evaluate(case)
    assert (ev.review_status == "auto") == (not ev.flags)
    assert ev.flags == sorted(set(ev.flags))
    assert set(ev.fields) == set(case["schema"]["properties"])
    for field in ev.fields.values():
        assert field.confidence is None or 0.0 <= field.confidence <= 1.0
        assert field.score is None or (type(field.score) is int and 1 <= field.score <= 5)
        if not field.found:
            assert field.value is None
            assert field.confidence == 0.0
        if not case["scores_available"]:
            assert field.score is None
    if not case["scores_available"]:
        assert "scores_unavailable" in ev.flags
    assert ev.document_type_confidence is None or 0.0 <= ev.document_type_confidence <= 1.0


@settings(max_examples=300, deadline=None)
@given(case=cases(), pair=st.tuples(thresholds, thresholds))
def test_raising_the_threshold_never_removes_a_flag(
    case: dict[str, Any], pair: tuple[float, float]
) -> None:
    low, high = sorted(pair)
    flags_low, flags_high = set(evaluate(case, low).flags), set(evaluate(case, high).flags)
    assert flags_low <= flags_high
    if flags_low:
        assert flags_high


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_every_record_validates(case: dict[str, Any]) -> None:
    record_of(evaluate(case))  # validates the record, and the review message when there is one


# --- nested schemas: arrays of objects and objects, in either shape Datalab may send ------------

COLUMN_POOL: dict[str, dict[str, Any]] = {
    "description": {"type": "string"},
    "qty": {"type": "integer", "minimum": 1},
    "amount": {"type": "number"},
    "sku": {"type": "string", "pattern": "^S"},
}
cell_values = st.none() | st.sampled_from(["", "S1", "x"]) | st.integers(-2, 50) | st.floats(0, 9)


@st.composite
def nested_cases(draw: st.DrawFn) -> dict[str, Any]:
    columns = draw(st.lists(st.sampled_from(sorted(COLUMN_POOL)), min_size=1, unique=True))
    item: dict[str, Any] = {
        "type": "object",
        "properties": {c: dict(COLUMN_POOL[c]) for c in columns},
        "required": draw(st.lists(st.sampled_from(columns), unique=True)),
    }
    for c in columns:
        if draw(st.booleans()):
            item["properties"][c]["x-review-threshold"] = draw(thresholds)
    lines: dict[str, Any] = {"type": "array", "items": item}
    if draw(st.booleans()):
        lines["minItems"] = draw(st.integers(0, 4))
    address = {"type": "object", "properties": {"city": {"type": "string"}}}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"lines": lines, "address": address, "total": {"type": "number"}},
    }
    if "amount" in columns and draw(st.booleans()):
        schema["x-checks"] = [{"name": "sum", "sum": ["lines[].amount"], "equals": "total"}]

    def cells(row_columns: list[str]) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for c in row_columns:
            if draw(st.booleans()):
                row[c] = draw(cell_values)
            if draw(st.booleans()):
                row[f"{c}_score"] = draw(score_objects)
            if draw(st.booleans()):
                row[f"{c}_citations"] = draw(citations)
        return row

    rows = draw(st.lists(st.builds(lambda: cells(columns)) | st.just("junk"), max_size=5))
    extracted: dict[str, Any] = {"lines": rows, "address": cells(["city"]), "total": 3}
    for name in ("lines", "address", "total"):
        if draw(st.booleans()):
            extracted[f"{name}_score"] = draw(score_objects)
    return {"schema": schema, "extracted": extracted, "upload": draw(st.none() | thresholds)}


def _path_exists(fields: dict[str, Any], path: str) -> bool:
    """``lines[1].amount``, ``lines[0]``, ``address.city``, ``lines`` name a result (or a row)."""
    node: Any = {"properties": fields}
    for part in path.split("."):
        match = re.fullmatch(r"([^\[\]]+)((?:\[\d+\])*)", part)
        if match is None or match.group(1) not in (node.get("properties") or {}):
            return False
        node = node["properties"][match.group(1)]
        for index in re.findall(r"\[(\d+)\]", match.group(2)):
            items = node.get("items") or []
            if int(index) >= len(items):
                return False
            node = {"properties": items[int(index)]}
    return True


@settings(max_examples=300, deadline=None)
@given(case=nested_cases())
def test_every_cell_of_every_row_gets_one_result_and_flags_name_existing_paths(
    case: dict[str, Any],
) -> None:
    ev = evaluate_extraction(
        case["schema"],
        {"extraction_schema_json": json.dumps(case["extracted"]), "json": TREE},
        upload_doc_type="invoice",
        default_threshold=0.8,
        upload_threshold=case["upload"],
    )
    rows = case["extracted"]["lines"]
    columns = set(case["schema"]["properties"]["lines"]["items"]["properties"])
    lines = ev.to_dict()["fields"]["lines"]
    assert len(lines["items"]) == len(rows)
    for row, cells in zip(rows, lines["items"], strict=True):
        assert set(cells) == (columns if isinstance(row, dict) else set())
    for value in lines["value"] or []:  # the value keeps no score or citation key of a column
        if isinstance(value, dict):
            assert not any(f"{c}_score" in value or f"{c}_citations" in value for c in columns)
    fields = ev.to_dict()["fields"]
    for flag in ev.flags:
        kind, _, path = flag.partition(":")
        if kind in {"low_confidence_field", "missing_field", "invalid_field", "incomplete_list"}:
            assert _path_exists(fields, path), flag
    record_of(ev)
