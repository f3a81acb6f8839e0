"""Property-based invariants of evaluate_extraction and the records built from it."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from doctriage_core.domain.documents import DocumentRef
from doctriage_core.domain.evaluation import Evaluation, evaluate_extraction
from doctriage_core.domain.records import complete_record, review_message
from tests.contracts import assert_valid_record, assert_valid_review_message

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
    ev = evaluate(case)
    record = complete_record(
        ev,
        document=DocumentRef("doc-1", "bucket", "incoming/invoice/x.pdf", "invoice"),
        request_id="req",
        result_key="results/doc-1.json",
        submitted_at=None,
        completed_at="2025-01-01T00:00:00.000Z",
    )
    assert_valid_record(record)
    if record["review_status"] == "needs_review":
        assert_valid_review_message(review_message(record))
