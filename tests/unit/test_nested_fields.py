"""Nested fields cell by cell: both shapes Datalab may send, paths in flags, minItems, x-checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from doctriage_core.domain.documents import DocumentRef
from doctriage_core.domain.evaluation import Evaluation, evaluate_extraction
from doctriage_core.domain.extraction import has_scores
from doctriage_core.domain.records import complete_record, review_message
from doctriage_core.domain.schemas import load_schema
from doctriage_core.errors import SchemaInvalid
from tests.contracts import assert_valid_record, assert_valid_review_message

PAGE = {
    "id": "/page/0/Page/0",
    "block_type": "Page",
    "bbox": [0, 0, 100, 200],
    "children": [
        {"id": "/page/0/TableCell/1", "block_type": "TableCell", "bbox": [10, 20, 30, 40]},
        {"id": "/page/0/TableCell/2", "block_type": "TableCell", "bbox": [50, 100, 90, 120]},
        {"id": "/page/0/Table/0", "block_type": "Table", "bbox": [0, 0, 100, 100]},
    ],
}
TREE = {"block_type": "Document", "children": [PAGE]}
NUM = {"type": "number"}
STR = {"type": "string"}
LINES = {
    "type": "array",
    "minItems": 2,
    "items": {
        "type": "object",
        "properties": {"description": STR, "qty": {"type": "integer", "minimum": 1}, "amount": NUM},
        "required": ["description", "amount"],
    },
}
CHECK = {
    "name": "total_matches_lines",
    "sum": ["lines[].amount", "tax"],
    "equals": "total",
    "tolerance": 0.01,
}


def s(score: int) -> dict[str, Any]:
    return {"score": score, "reasoning": f"scored {score}"}


def cell_row(desc: str, amount: Any, score: int = 5, **extra: Any) -> dict[str, Any]:
    return {
        "description": desc,
        "description_score": s(score),
        "amount": amount,
        "amount_score": s(score),
        "amount_citations": ["/page/0/TableCell/2"],
        **extra,
    }


def schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def run(sch: dict[str, Any], extracted: dict[str, Any], **kw: Any) -> Evaluation:
    body = {"status": "complete", "extraction_schema_json": json.dumps(extracted), "json": TREE}
    return evaluate_extraction(
        sch, body, upload_doc_type="invoice", default_threshold=kw.pop("default", 0.8), **kw
    )


def record_of(ev: Evaluation) -> dict[str, Any]:
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
    return record


# --- per-cell keys -------------------------------------------------------------------------------


def test_per_cell_keys_give_each_cell_its_result_and_leave_the_value_clean() -> None:
    ev = run(schema(lines=LINES), {"lines": [cell_row("Bolts", 500), cell_row("Nuts", 20)]})
    lines = ev.fields["lines"]
    assert lines.value == [
        {"description": "Bolts", "amount": 500},
        {"description": "Nuts", "amount": 20},
    ]
    assert lines.items is not None
    assert len(lines.items) == 2
    cell = lines.items[0]["amount"]
    assert (cell.value, cell.found, cell.score, cell.confidence) == (500, True, 5, 1.0)
    assert cell.citations == ["/page/0/TableCell/2"]
    assert cell.page == 0
    assert cell.bbox == pytest.approx({"x": 0.5, "y": 0.5, "width": 0.4, "height": 0.1})
    assert lines.items[0]["qty"].found is False  # every declared column gets a result
    assert lines.score is None
    assert lines.confidence == 1.0
    assert ev.flags == []
    assert record_of(ev)["fields"]["lines"]["items"][1]["amount"]["value"] == 20


def test_a_low_cell_is_flagged_by_its_path_not_the_whole_list() -> None:
    ev = run(schema(lines=LINES), {"lines": [cell_row("Bolts", 500), cell_row("Nuts", 20, 2)]})
    assert ev.flags == [
        "low_confidence_field:lines[1].amount",
        "low_confidence_field:lines[1].description",
    ]
    assert ev.fields["lines"].confidence == 0.25


def test_invalid_and_missing_cells_are_named_by_path() -> None:
    rows = [cell_row("Bolts", 500, qty=0), {"description": "Nuts", "description_score": s(5)}]
    ev = run(schema(lines=LINES), {"lines": rows})
    assert "invalid_field:lines[0].qty" in ev.flags
    assert "missing_field:lines[1].amount" in ev.flags
    assert "invalid_field:lines" not in ev.flags  # the cells explain it


def test_a_row_that_is_not_an_object_is_flagged_by_its_row_path() -> None:
    ev = run(schema(lines=LINES), {"lines": [cell_row("Bolts", 500), "junk"]})
    assert ev.flags == ["invalid_field:lines[1]"]
    assert ev.fields["lines"].items is not None
    assert ev.fields["lines"].items[1] == {}
    record_of(ev)


def test_undeclared_keys_in_a_row_are_never_stripped_or_read() -> None:
    row = cell_row("Bolts", 500, note="x", note_score=s(1), amount_meta={"k": 1})
    ev = run(schema(lines=LINES), {"lines": [row, cell_row("Nuts", 1)]})
    assert ev.fields["lines"].value[0]["note_score"] == s(1)
    assert ev.fields["lines"].value[0]["amount_meta"] == {"k": 1}
    assert ev.flags == []


# --- array-level keys and the mix ----------------------------------------------------------------


def test_array_level_score_gates_the_list_and_cells_carry_none() -> None:
    rows = [{"description": "Bolts", "amount": 500}, {"description": "Nuts", "amount": 20}]
    extracted = {"lines": rows, "lines_score": s(2), "lines_citations": ["/page/0/Table/0"]}
    ev = run(schema(lines=LINES), extracted)
    assert ev.flags == ["low_confidence_field:lines"]
    lines = ev.fields["lines"]
    assert lines.score == 2
    assert lines.page == 0
    assert lines.items is not None
    assert all(
        c.score is None and c.confidence is None
        for row in lines.items
        for c in row.values()
        if c.found
    )
    assert run(schema(lines=LINES), {**extracted, "lines_score": s(5)}).flags == []


def test_mix_unscored_cell_is_vouched_for_by_the_list_score_else_flagged() -> None:
    rows = [cell_row("Bolts", 500), {"description": "Nuts", "amount": 20}]
    assert run(schema(lines=LINES), {"lines": rows, "lines_score": s(5)}).flags == []
    flags = run(schema(lines=LINES), {"lines": rows, "other_score": s(5)}).flags
    assert flags == [
        "low_confidence_field:lines[1].amount",
        "low_confidence_field:lines[1].description",
    ]


def test_poll_sees_cell_scores_as_scores() -> None:
    body = {"extraction_schema_json": json.dumps({"lines": [cell_row("Bolts", 1)]})}
    assert has_scores(body)
    assert has_scores(body, ["lines"])
    plain = {"extraction_schema_json": json.dumps({"lines": [{"amount": 1}]})}
    assert not has_scores(plain)


# --- nested objects -------------------------------------------------------------------------------


def test_nested_object_properties_are_read_and_flagged_by_path() -> None:
    address = {"type": "object", "properties": {"city": STR, "zip": STR}, "required": ["zip"]}
    extracted = {
        "address": {"city": "Oslo", "city_score": s(2), "city_citations": ["/page/0/TableCell/1"]}
    }
    ev = run(schema(address=address), extracted)
    assert ev.fields["address"].value == {"city": "Oslo"}
    props = ev.fields["address"].properties
    assert props is not None
    assert props["city"].score == 2
    assert props["city"].page == 0
    assert ev.flags == ["low_confidence_field:address.city", "missing_field:address.zip"]
    assert record_of(ev)["fields"]["address"]["properties"]["city"]["value"] == "Oslo"


# --- thresholds ---


def test_column_threshold_beats_the_arrays_which_beats_the_document() -> None:
    lines = json.loads(json.dumps(LINES))
    lines["x-review-threshold"] = 0.9
    lines["items"]["properties"]["amount"]["x-review-threshold"] = 0.1
    rows = [cell_row("Bolts", 500, 4), cell_row("Nuts", 20, 4)]  # 0.75 each
    ev = run(schema(lines=lines), {"lines": rows}, default=0.5)
    assert ev.flags == [
        "low_confidence_field:lines[0].description",
        "low_confidence_field:lines[1].description",
    ]
    # Each cell, and the list, carries the threshold that applied to it.
    fields = record_of(ev)["fields"]
    assert fields["lines"]["threshold"] == 0.9
    row = fields["lines"]["items"][0]
    assert (row["description"]["threshold"], row["amount"]["threshold"]) == (0.9, 0.1)
    assert run(schema(lines=lines), {"lines": rows}, upload_threshold=0.5).flags == []


# --- completeness ---


def test_fewer_rows_than_min_items_is_an_incomplete_list_not_invalid() -> None:
    ev = run(schema(lines=LINES), {"lines": [cell_row("Bolts", 500)]})
    assert ev.flags == ["incomplete_list:lines"]


def checked(**extra: Any) -> dict[str, Any]:
    return {**schema(lines=LINES, tax=NUM, total=NUM), "x-checks": [CHECK], **extra}


def test_sum_check_passes_within_tolerance_and_fails_beyond() -> None:
    rows = [cell_row("Bolts", 0.1), cell_row("Nuts", 0.2)]
    ok = run(
        checked(), {"lines": rows, "tax": 1, "total": 1.305, "tax_score": s(5), "total_score": s(5)}
    )
    assert ok.flags == []
    assert ok.checks == [
        {
            "name": "total_matches_lines",
            "passed": True,
            "computed": 1.3,
            "expected": 1.305,
            "tolerance": 0.01,
        }
    ]
    bad = run(
        checked(), {"lines": rows, "tax": 1, "total": 2, "tax_score": s(5), "total_score": s(5)}
    )
    assert bad.flags == ["failed_check:total_matches_lines"]
    assert record_of(bad)["checks"][0]["passed"] is False


def test_a_check_naming_a_value_not_found_is_not_evaluated() -> None:
    rows = [cell_row("Bolts", 1), {"description": "Nuts", "description_score": s(5)}]
    ev = run(
        checked(), {"lines": rows, "tax": 1, "total": 99, "tax_score": s(5), "total_score": s(5)}
    )
    assert ev.checks is not None
    assert ev.checks[0]["passed"] is None
    assert not any(f.startswith("failed_check") for f in ev.flags)
    assert "checks" not in run(schema(tax=NUM), {"tax": 1}).to_dict()


@pytest.mark.parametrize(
    ("checks", "message"),
    [
        ({"name": "x"}, "must be a list"),
        (["x"], "must be an object"),
        ([{**CHECK, "name": "has space"}], "name must be"),
        ([{**CHECK, "sum": []}], "non-empty list"),
        ([{**CHECK, "sum": ["nope"]}], "does not name a declared property"),
        ([{**CHECK, "sum": ["tax[].x"]}], "array of objects"),
        ([{**CHECK, "sum": ["lines[]"]}], "array of objects"),
        ([{**CHECK, "equals": "lines[].amount"}], "only in sum"),
        ([{**CHECK, "tolerance": -1}], "tolerance"),
        ([{**CHECK, "extra": 1}], "unknown keys"),
        ([CHECK, CHECK], "duplicate"),
    ],
)
def test_invalid_x_checks_is_a_schema_error(checks: Any, message: str) -> None:
    text = json.dumps({**schema(lines=LINES, tax=NUM, total=NUM), "x-checks": checks})
    with pytest.raises(SchemaInvalid, match=message):
        load_schema(text)
    with pytest.raises(SchemaInvalid, match=message):
        run(json.loads(text), {})


def test_nested_names_that_collide_with_score_keys_are_refused() -> None:
    lines = {"type": "array", "items": {"type": "object", "properties": {"a": STR, "a_score": NUM}}}
    with pytest.raises(SchemaInvalid, match="collides"):
        load_schema(json.dumps(schema(lines=lines)))


def test_items_via_local_ref_are_read_cell_by_cell() -> None:
    sch = {
        **schema(lines={"type": "array", "items": {"$ref": "#/$defs/line"}}),
        "$defs": {"line": {"type": "object", "properties": {"amount": NUM}}},
    }
    ev = run(sch, {"lines": [{"amount": 3, "amount_score": s(1)}]})
    assert ev.flags == ["low_confidence_field:lines[0].amount"]


def test_review_message_carries_the_flagged_cell_paths() -> None:
    rows = [cell_row("Bolts", 500, qty=0), cell_row("Nuts", 20, 2)]
    message = review_message(record_of(run(checked(), {"lines": rows, "tax": 1, "total": 9})))
    assert message["flagged_paths"] == [
        "lines[0].qty",
        "lines[1].amount",
        "lines[1].description",
        "tax",
        "total",
    ]
    assert_valid_review_message(message)
