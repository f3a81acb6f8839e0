"""evaluate_extraction: parsing by schema, confidence, thresholds, flags, classification."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from doctriage_core.domain.evaluation import Evaluation, evaluate_extraction
from doctriage_core.errors import DatalabMalformedResponse, InvalidThreshold, SchemaInvalid

PAGE = {
    "id": "/page/0/Page/0",
    "block_type": "Page",
    "polygon": [[0, 0], [600, 0], [600, 800], [0, 800]],
    "children": [{"id": "/page/0/Text/1", "block_type": "Text", "bbox": [60, 80, 300, 160]}],
}
TREE = {"block_type": "Document", "children": [PAGE]}


def result(extracted: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "status": "complete",
        "success": True,
        "extraction_schema_json": json.dumps(extracted),
        **extra,
    }


def scored(score: Any, reasoning: str = "because") -> dict[str, Any]:
    return {"score": score, "reasoning": reasoning}


def schema(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, **extra}


def run(
    sch: dict[str, Any],
    extracted: dict[str, Any] | None = None,
    *,
    raw: dict[str, Any] | None = None,
    doc_type: str = "invoice",
    default: float = 0.85,
    upload: float | None = None,
    scores_available: bool = True,
) -> Evaluation:
    body = raw if raw is not None else result(extracted or {})
    return evaluate_extraction(
        sch,
        body,
        upload_doc_type=doc_type,
        default_threshold=default,
        upload_threshold=upload,
        scores_available=scores_available,
    )


STR = {"type": "string"}


# --- parsing strictly by the schema --------------------------------------------------------------


def test_reads_value_citations_and_score_of_each_property() -> None:
    ev = run(
        schema({"invoice_number": STR}),
        {
            "invoice_number": "INV-1",
            "invoice_number_citations": ["/page/0/Text/1"],
            "invoice_number_score": scored(5, "verbatim"),
        },
    )
    field = ev.fields["invoice_number"]
    assert (field.value, field.found, field.score, field.confidence) == ("INV-1", True, 5, 1.0)
    assert field.reasoning == "verbatim"
    assert field.citations == ["/page/0/Text/1"]


def test_property_named_like_a_score_key_is_a_value() -> None:
    ev = run(
        schema({"credit_score": {"type": "integer"}}),
        {"credit_score": 720, "credit_score_score": scored(4)},
    )
    field = ev.fields["credit_score"]
    assert (field.value, field.score, field.confidence) == (720, 4, 0.75)


def test_score_of_credit_is_not_mistaken_for_a_credit_score_property() -> None:
    # Only `credit` is declared: `credit_score` is its score object, not a field.
    ev = run(schema({"credit": STR}), {"credit": "A", "credit_score": scored(5)})
    assert set(ev.fields) == {"credit"}
    assert ev.fields["credit"].score == 5


def test_colliding_properties_value_wins() -> None:
    # load_schema rejects this schema; evaluate_extraction alone reads `credit_score` as a value.
    ev = run(
        schema({"credit": STR, "credit_score": {"type": "integer"}}),
        {"credit": "A", "credit_score": 720, "credit_score_score": scored(5)},
    )
    assert ev.fields["credit_score"].value == 720
    assert ev.fields["credit"].score is None
    assert "low_confidence_field:credit" in ev.flags


def test_unknown_keys_are_ignored() -> None:
    ev = run(
        schema({"a": STR}),
        {"a": "x", "a_score": scored(5), "b": "y", "b_score": scored(1), "a_meta": {}},
    )
    assert set(ev.fields) == {"a"}
    assert ev.flags == []
    assert ev.extraction_score_average == 5.0


def test_line_items_with_a_list_score_are_gated_by_it_and_cells_by_path() -> None:
    items = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"sku": STR, "qty": {"type": "integer", "minimum": 1}},
            "required": ["sku"],
        },
    }
    lines = [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]
    ev = run(schema({"lines": items}), {"lines": lines, "lines_score": scored(5)})
    assert ev.fields["lines"].value == lines
    assert ev.fields["lines"].confidence == 1.0
    assert ev.flags == []

    bad = run(schema({"lines": items}), {"lines": [{"qty": 0}], "lines_score": scored(5)})
    assert bad.flags == ["invalid_field:lines[0].qty", "missing_field:lines[0].sku"]


def test_nested_object_keeps_its_value_whole() -> None:
    address = {"type": "object", "properties": {"city": STR}}
    ev = run(schema({"addr": address}), {"addr": {"city": "Oslo"}, "addr_score": scored(3)})
    assert ev.fields["addr"].value == {"city": "Oslo"}
    assert ev.fields["addr"].confidence == 0.5


# --- confidence and found ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "confidence"), [(1, 0.0), (2, 0.25), (3, 0.5), (4, 0.75), (5, 1.0)]
)
def test_confidence_is_score_minus_one_over_four(score: int, confidence: float) -> None:
    ev = run(schema({"a": STR}), {"a": "x", "a_score": scored(score)})
    assert ev.fields["a"].confidence == confidence
    assert isinstance(ev.fields["a"].confidence, float)


@pytest.mark.parametrize(
    "extracted",
    [
        {"a_score": scored(5)},
        {"a": None, "a_score": scored(5)},
        {"a": "", "a_score": scored(5)},
        {"a": "  \n\t", "a_score": scored(5)},
        {"a": [], "a_score": scored(5)},
        {"a": {}, "a_score": scored(5)},
    ],
    ids=["absent", "null", "empty", "blank", "empty-list", "empty-object"],
)
def test_not_found_means_null_value_and_zero_confidence(extracted: dict[str, Any]) -> None:
    ev = run(schema({"a": {}}), extracted)
    field = ev.fields["a"]
    assert (field.found, field.value, field.confidence) == (False, None, 0.0)
    assert field.score == 5  # the raw score is still reported
    assert "low_confidence_field:a" in ev.flags


@pytest.mark.parametrize("value", [0, False, "0", 0.0, [None], " x "])
def test_falsy_but_present_values_are_found(value: Any) -> None:
    ev = run(schema({"a": {}}), {"a": value, "a_score": scored(5)})
    assert ev.fields["a"].found is True
    assert ev.fields["a"].value == value
    assert ev.flags == []


@pytest.mark.parametrize(
    "score_obj",
    [
        None,
        "5",
        5,
        [5],
        {"reasoning": "no score"},
        {"score": "5"},
        {"score": True},
        {"score": 3.5},
        {"score": 0},
        {"score": 6},
        {"score": -1},
        {"score": None},
    ],
    ids=repr,
)
def test_malformed_score_is_no_score_and_flags_the_field(score_obj: Any) -> None:
    extracted = {"a": "x", "b": "y", "b_score": scored(5)}
    if score_obj is not None:
        extracted["a_score"] = score_obj
    ev = run(schema({"a": STR, "b": STR}), extracted)
    assert ev.fields["a"].score is None
    assert ev.fields["a"].confidence is None
    assert ev.flags == ["low_confidence_field:a"]


def test_non_finite_score_is_malformed() -> None:
    ev = run(
        schema({"a": STR, "b": STR}),
        raw={
            "extraction_schema_json": {
                "a": "x",
                "a_score": {"score": math.nan},
                "b": "y",
                "b_score": scored(5),
            }
        },
    )
    assert ev.fields["a"].score is None
    assert ev.flags == ["low_confidence_field:a"]


def test_integral_float_score_counts() -> None:
    ev = run(schema({"a": STR}), {"a": "x", "a_score": scored(4.0)})
    assert ev.fields["a"].score == 4
    assert isinstance(ev.fields["a"].score, int)


def test_reasoning_kept_even_when_score_is_unusable() -> None:
    ev = run(schema({"a": STR}), {"a": "x", "a_score": {"score": 9, "reasoning": "odd"}})
    assert ev.fields["a"].reasoning == "odd"
    assert ev.fields["a"].score is None


def test_unscored_field_not_flagged_at_threshold_zero() -> None:
    ev = run(schema({"a": STR, "b": STR}), {"a": "x", "b": "y", "b_score": scored(5)}, default=0.0)
    assert ev.flags == []


# --- thresholds ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("top", "prop", "upload", "score", "flagged", "doc_threshold"),
    [
        (None, None, None, 4, True, 0.85),  # stack default 0.85: 0.75 < 0.85
        (None, None, None, 5, False, 0.85),
        (0.7, None, None, 4, False, 0.7),  # document type beats default
        (0.9, 0.5, None, 3, False, 0.9),  # property beats document type; 0.5 < 0.5 is false
        (0.5, 0.9, None, 4, True, 0.5),
        (0.9, 0.9, 0.2, 2, False, 0.2),  # upload beats property and document type
        (None, 0.2, 0.9, 4, True, 0.9),
        (None, None, 1.0, 5, True, 1.0),  # 1.0 forces review even at score 5
        (None, 1.0, None, 5, True, 0.85),
        (None, None, 0.0, 1, False, 0.0),  # 0.0 disables gating
        ("0.6", None, None, 3, True, 0.6),  # numeric strings accepted
    ],
)
def test_threshold_precedence(
    top: Any, prop: Any, upload: float | None, score: int, flagged: bool, doc_threshold: float
) -> None:
    a: dict[str, Any] = {"type": "string"}
    if prop is not None:
        a["x-review-threshold"] = prop
    sch = schema({"a": a}) | ({"x-review-threshold": top} if top is not None else {})
    ev = run(sch, {"a": "x", "a_score": scored(score)}, upload=upload)
    assert ev.flags == (["low_confidence_field:a"] if flagged else [])
    assert ev.human_review_threshold == doc_threshold


def test_property_threshold_applies_to_that_field_only() -> None:
    sch = schema({"a": STR | {"x-review-threshold": 1.0}, "b": STR})
    ev = run(sch, {"a": "x", "a_score": scored(5), "b": "y", "b_score": scored(5)})
    assert ev.flags == ["low_confidence_field:a"]
    # The record says which threshold applied to each field.
    assert (ev.fields["a"].threshold, ev.fields["b"].threshold) == (1.0, 0.85)


def test_threshold_zero_keeps_other_flags() -> None:
    sch = schema({"a": STR, "b": {"type": "integer"}}, required=["a"])
    ev = run(sch, {"b": "nope", "b_score": scored(1)}, default=0.0)
    assert ev.flags == ["invalid_field:b", "missing_field:a"]


@pytest.mark.parametrize("bad", [1.5, -0.1, math.nan, "abc", True])
def test_bad_upload_threshold_raises(bad: Any) -> None:
    with pytest.raises(InvalidThreshold, match="upload"):
        run(schema({"a": STR}), {"a": "x"}, upload=bad)


# --- flags ---------------------------------------------------------------------------------------


def test_missing_field_only_for_required() -> None:
    sch = schema({"a": STR, "b": STR}, required=["a"])
    ev = run(sch, {"a": "", "a_score": scored(5), "b": None, "b_score": scored(5)}, default=0.0)
    assert ev.flags == ["missing_field:a"]


def test_missing_required_field_is_also_low_confidence() -> None:
    ev = run(schema({"a": STR}, required=["a"]), {"a_score": scored(5)})
    assert ev.flags == ["low_confidence_field:a", "missing_field:a"]


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ({"type": "number"}, "12.00"),
        ({"type": "integer"}, 1.5),
        ({"type": "string"}, 5),
        ({"type": "string", "pattern": "^INV-\\d+$"}, "X-1"),
        ({"enum": ["EUR", "USD"]}, "GBP"),
        ({"type": "string", "format": "date"}, "2024-13-45"),
        ({"type": "string", "format": "date"}, "31/01/2024"),
        ({"type": "string", "format": "date-time"}, "2024-01-31"),
        ({"type": "string", "format": "email"}, "not-an-email"),
        ({"type": "number", "minimum": 0}, -1),
        ({"type": "number", "maximum": 100}, 101),
        ({"type": "array", "items": {"type": "string"}}, ["a", 1]),
    ],
    ids=repr,
)
def test_invalid_field(prop: dict[str, Any], value: Any) -> None:
    ev = run(schema({"a": prop}), {"a": value, "a_score": scored(5)})
    assert ev.flags == ["invalid_field:a"]
    assert ev.fields["a"].value == value  # kept for the reviewer


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ({"type": "string", "format": "date"}, "2024-01-31"),
        ({"type": "string", "format": "date-time"}, "2024-01-31T10:00:00Z"),
        ({"type": "string", "format": "email"}, "a@example.com"),
        ({"type": "number", "minimum": 0, "maximum": 100}, 100),
        ({"type": "string", "pattern": "^INV-\\d+$"}, "INV-7"),
    ],
    ids=repr,
)
def test_valid_field(prop: dict[str, Any], value: Any) -> None:
    assert run(schema({"a": prop}), {"a": value, "a_score": scored(5)}).flags == []


def test_one_invalid_field_does_not_hide_another() -> None:
    sch = schema({"a": {"type": "number"}, "b": {"type": "string", "format": "date"}, "c": STR})
    extracted = {"a": "x", "b": "y", "c": "ok"} | {f"{k}_score": scored(5) for k in "abc"}
    assert run(sch, extracted).flags == ["invalid_field:a", "invalid_field:b"]


def test_not_found_field_is_not_invalid() -> None:
    ev = run(schema({"a": {"type": "number"}}), {"a": None, "a_score": scored(5)}, default=0.0)
    assert ev.flags == []


def test_definitions_refs_resolve_per_property() -> None:
    sch = schema(
        {"a": {"$ref": "#/$defs/code"}, "b": {"$ref": "#/definitions/code"}},
        **{"$defs": {"code": {"pattern": "^C"}}, "definitions": {"code": {"pattern": "^C"}}},
    )
    ev = run(sch, {"a": "C1", "b": "X1"} | {f"{k}_score": scored(5) for k in "ab"})
    assert ev.flags == ["invalid_field:b"]


DOC_TYPE = {"type": "string", "enum": ["invoice", "receipt"]}


@pytest.mark.parametrize(
    ("extracted", "default", "doc_type", "confidence", "flags"),
    [
        ({"document_type": "receipt", "document_type_score": scored(5)}, 0.85, "receipt", 1.0, []),
        (
            {"document_type": "receipt", "document_type_score": scored(3)},
            0.85,
            "receipt",
            0.5,
            ["low_confidence_classification"],
        ),
        (
            {"document_type": "receipt", "document_type_score": scored(3)},
            0.5,
            "receipt",
            0.5,
            [],
        ),
        (
            {"document_type_score": scored(5)},
            0.85,
            "invoice",
            0.0,
            ["low_confidence_classification"],
        ),
        (  # not found is a failed classification even with gating disabled
            {"document_type": None, "document_type_score": scored(5)},
            0.0,
            "invoice",
            0.0,
            ["low_confidence_classification"],
        ),
        (
            {"document_type": "passport", "document_type_score": scored(5)},
            0.85,
            "invoice",
            0.0,
            ["invalid_field:document_type", "low_confidence_classification"],
        ),
        (
            {"document_type": "receipt", "document_type_score": scored(5)},
            1.0,
            "receipt",
            1.0,
            ["low_confidence_classification"],
        ),
    ],
)
def test_classification(
    extracted: dict[str, Any], default: float, doc_type: str, confidence: float, flags: list[str]
) -> None:
    sch = schema({"document_type": DOC_TYPE, "x": STR})
    ev = run(sch, extracted | {"x": "v", "x_score": scored(5)}, doc_type="invoice", default=default)
    assert ev.document_type == doc_type
    assert ev.document_type_confidence == confidence
    expected = flags + (["low_confidence_field:x"] if default >= 1.0 else [])
    assert ev.flags == sorted(expected)
    assert not any(f == "low_confidence_field:document_type" for f in ev.flags)


def test_unscored_classification_is_low_when_others_are_scored() -> None:
    sch = schema({"document_type": DOC_TYPE, "x": STR})
    ev = run(sch, {"document_type": "receipt", "x": "v", "x_score": scored(5)})
    assert ev.document_type == "receipt"
    assert ev.document_type_confidence is None
    assert ev.flags == ["low_confidence_classification"]


def test_document_type_without_enum_is_an_ordinary_field() -> None:
    ev = run(
        schema({"document_type": STR}),
        {"document_type": "receipt", "document_type_score": scored(2)},
    )
    assert ev.document_type == "invoice"
    assert ev.document_type_confidence is None
    assert ev.flags == ["low_confidence_field:document_type"]


def test_no_classifier_uses_upload_prefix() -> None:
    ev = run(schema({"a": STR}), {"a": "x", "a_score": scored(5)}, doc_type="receipt")
    assert (ev.document_type, ev.document_type_confidence) == ("receipt", None)


def test_scores_unavailable() -> None:
    sch = schema({"a": STR, "b": STR})
    ev = run(
        sch,
        raw=result({"a": "x", "a_score": scored(5), "b": ""}, extraction_score_average=5),
        scores_available=False,
    )
    a, b = ev.fields["a"], ev.fields["b"]
    assert (a.value, a.found, a.confidence, a.score, a.reasoning) == ("x", True, None, None, None)
    assert (b.found, b.confidence) == (False, 0.0)
    assert ev.flags == ["low_confidence_field:b", "scores_unavailable"]
    assert ev.extraction_score_average is None
    assert ev.review_status == "needs_review"


def test_scores_unavailable_raised_even_at_threshold_zero() -> None:
    ev = run(schema({"a": STR}), {"a": "x"}, default=0.0, scores_available=False)
    assert ev.flags == ["scores_unavailable"]


def test_no_readable_score_at_all_is_scores_unavailable() -> None:
    ev = run(schema({"a": STR, "b": STR}), {"a": "x", "a_score": {"score": "5"}, "b": "y"})
    assert ev.flags == ["scores_unavailable"]


def test_auto_when_no_flags() -> None:
    ev = run(schema({"a": STR}), {"a": "x", "a_score": scored(5)})
    assert (ev.flags, ev.review_status) == ([], "auto")


def test_flags_sorted_and_unique() -> None:
    sch = schema({"z": {"type": "number"}, "a": STR, "m": STR}, required=["a"])
    ev = run(sch, {"z": "x", "z_score": scored(1), "m": "y", "m_score": scored(2)})
    assert ev.flags == [
        "invalid_field:z",
        "low_confidence_field:a",
        "low_confidence_field:m",
        "low_confidence_field:z",
        "missing_field:a",
    ]
    assert ev.review_status == "needs_review"


# --- extraction_score_average --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"extraction_score_average": 4.5}, 4.5),
        ({"extraction_score_average": 3}, 3.0),
        ({}, 4.0),
        ({"extraction_score_average": None}, 4.0),
        ({"extraction_score_average": 7}, 4.0),
        ({"extraction_score_average": 0.5}, 4.0),
        ({"extraction_score_average": "4.5"}, 4.0),
        ({"extraction_score_average": True}, 4.0),
    ],
)
def test_score_average(extra: dict[str, Any], expected: float) -> None:
    extracted = {"a": "x", "a_score": scored(5), "b": "", "b_score": scored(3), "c": "z"}
    ev = run(schema({"a": STR, "b": STR, "c": STR}), raw=result(extracted, **extra))
    assert ev.extraction_score_average == expected


def test_score_average_null_without_scores() -> None:
    assert run(schema({"a": STR}), {"a": "x"}).extraction_score_average is None


# --- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"extraction_schema_json": "{not json"},
        {"extraction_schema_json": "[1, 2]"},
        {"extraction_schema_json": "null"},
        {"extraction_schema_json": 42},
        {},
        "not a dict",
    ],
    ids=repr,
)
def test_malformed_extraction_raises(body: Any) -> None:
    with pytest.raises(DatalabMalformedResponse):
        run(schema({"a": STR}), raw=body)


def test_extraction_given_as_object_is_accepted() -> None:
    ev = run(schema({"a": STR}), raw={"extraction_schema_json": {"a": "x", "a_score": scored(5)}})
    assert ev.fields["a"].value == "x"


def test_nan_in_extraction_reads_as_null() -> None:
    body = {"extraction_schema_json": '{"a": NaN, "a_score": {"score": 5}, "b": [1, Infinity]}'}
    ev = run(schema({"a": {}, "b": {}}), raw=body, default=0.0)
    assert ev.fields["a"].found is False
    assert ev.fields["b"].value == [1, None]


@pytest.mark.parametrize("bad", [{}, {"properties": {}}, {"properties": []}])
def test_unusable_schema_raises(bad: dict[str, Any]) -> None:
    with pytest.raises(SchemaInvalid):
        run(bad, {"a": "x"})


# --- citations wired into fields -----------------------------------------------------------------


def test_field_gets_page_and_box_from_citations() -> None:
    extracted = {
        "a": "x",
        "a_score": scored(5),
        "a_citations": ["block_1", 7, "/page/0/Text/1"],
        "b": "y",
        "b_score": scored(5),
        "b_citations": ["/page/4/Text/9"],
    }
    ev = run(schema({"a": STR, "b": STR}), raw=result(extracted, json=TREE))
    a, b = ev.fields["a"], ev.fields["b"]
    assert a.citations == ["block_1", "/page/0/Text/1"]
    assert a.page == 0
    assert a.bbox == pytest.approx({"x": 0.1, "y": 0.1, "width": 0.4, "height": 0.1})
    assert (b.page, b.bbox) == (4, None)


def test_to_dict_is_the_record_fragment() -> None:
    ev = run(schema({"a": STR}), raw=result({"a": "x", "a_score": scored(5)}, json=TREE))
    assert ev.to_dict() == {
        "fields": {
            "a": {
                "value": "x",
                "found": True,
                "confidence": 1.0,
                "score": 5,
                "reasoning": "because",
                "citations": [],
                "page": None,
                "bbox": None,
                "threshold": 0.85,
            }
        },
        "flags": [],
        "review_status": "auto",
        "document_type": "invoice",
        "document_type_confidence": None,
        "extraction_score_average": 5.0,
        "human_review_threshold": 0.85,
    }


def test_validators_are_compiled_once() -> None:
    from doctriage_core.domain.schemas import _compile

    sch = schema({"a": {"type": "string", "maxLength": 12345}})
    run(sch, {"a": "x", "a_score": scored(5)})
    misses = _compile.cache_info().misses
    for _ in range(3):
        run(sch, {"a": "y", "a_score": scored(5)})
    assert _compile.cache_info().misses == misses


def test_domain_modules_stay_pure() -> None:
    import subprocess
    import sys
    from pathlib import Path

    shared = Path(__file__).resolve().parents[2] / "shared"

    code = (
        "import sys; import doctriage_core.domain.evaluation, doctriage_core.domain.records;"
        "bad = {'boto3', 'botocore', 'httpx'} & set(sys.modules); print(sorted(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(shared)},
    )
    assert out.stdout.strip() == "[]"
