"""The emulator's tables: a result per cell citing its own Span, each scoring shape, drop_row.

Each shape is evaluated by the real reader (``domain/evaluation.py``) to show the two agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from doctriage_core.domain.citations import index_blocks, locate
from doctriage_core.domain.evaluation import Evaluation, evaluate_extraction
from doctriage_local.emulator import DatalabEmulator, EmulatorConfig, FaultRule
from doctriage_local.emulator.document import read_document
from doctriage_local.emulator.fields import extract_fields
from tests.unit.test_emulator_server import Clock, poll, submit

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
UMBRELLA = SAMPLES / "invoice" / "umbrella-invoice-2207.pdf"
INITECH = SAMPLES / "invoice" / "initech-invoice-3318.pdf"
SCHEMA = json.loads((SAMPLES / "schemas" / "invoice.json").read_text())
COLUMNS = ("description", "quantity", "unit_price", "amount")


def scored_body(
    pdf: Path, shape: str = "array", fault: str | None = None, schema: dict[str, Any] = SCHEMA
) -> dict[str, Any]:
    """The scored poll body for ``pdf`` from an emulator sending tables in ``shape``."""
    clock = Clock()
    emulator = DatalabEmulator(
        EmulatorConfig(check_host="http://emulator.test", nested_scores=shape), clock=clock
    )
    if fault is not None:
        emulator.add_fault(FaultRule(kind=fault))
    accepted = submit(
        emulator, pdf.name, pdf.read_bytes(), output_format="json", page_schema=json.dumps(schema)
    )
    clock.now = 1000
    body: dict[str, Any] = poll(emulator, accepted).body
    assert body["status"] == "complete"
    return body


def evaluate(body: dict[str, Any], schema: dict[str, Any] = SCHEMA) -> Evaluation:
    return evaluate_extraction(schema, body, upload_doc_type="invoice", default_threshold=0.85)


def line_items(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    extracted = json.loads(body["extraction_schema_json"])
    rows: list[dict[str, Any]] = extracted["line_items"]
    return extracted, rows


def test_array_shape_scores_the_list_beside_plain_rows() -> None:
    body = scored_body(ACME, "array")
    extracted, rows = line_items(body)
    assert extracted["line_items_score"]["score"] == 5
    assert len(extracted["line_items_citations"]) == 4  # the header and three row lines
    assert [set(row) for row in rows] == [set(COLUMNS)] * 3
    ev = evaluate(body)
    assert ev.flags == []
    items = ev.fields["line_items"].items
    assert items is not None
    assert all(cell.score is None for row in items for cell in row.values())


def test_per_item_shape_scores_and_cites_every_cell_and_not_the_list() -> None:
    body = scored_body(ACME, "per_item")
    extracted, rows = line_items(body)
    assert "line_items_score" not in extracted
    assert "line_items_citations" not in extracted
    assert rows[0]["amount"] == 500.0
    assert rows[0]["amount_score"]["score"] == 5
    assert (
        rows[0]["amount_score"]["reasoning"] == "Read '500.00' under 'Amount' in row 1 on page 1."
    )
    for row in rows:
        for column in COLUMNS:
            [span] = row[f"{column}_citations"]
            assert span.startswith("/page/0/Span/")
    ev = evaluate(body)
    assert ev.flags == []
    items = ev.fields["line_items"].items
    assert items is not None
    assert [row["amount"].value for row in items] == [500.0, 450.0, 200.0]
    assert all(cell.score == 5 and cell.bbox is not None for r in items for cell in r.values())
    assert ev.fields["line_items"].score is None
    assert ev.fields["line_items"].confidence == 1.0  # its lowest cell's


def test_mixed_shape_scores_the_list_and_every_other_row() -> None:
    body = scored_body(ACME, "mixed")
    extracted, rows = line_items(body)
    assert extracted["line_items_score"]["score"] == 5
    assert ["amount_score" in row for row in rows] == [True, False, True]
    ev = evaluate(body)
    assert ev.flags == []  # the unscored row is vouched for by the list's score
    items = ev.fields["line_items"].items
    assert items is not None
    assert [row["amount"].score for row in items] == [5, None, 5]


def test_a_cell_that_breaks_its_column_schema_is_scored_low_and_flagged_by_its_path() -> None:
    schema = json.loads(json.dumps(SCHEMA))
    schema["properties"]["line_items"]["items"]["properties"]["quantity"]["maximum"] = 10
    globex = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"
    body = scored_body(globex, "per_item", schema=schema)
    _, rows = line_items(body)
    assert rows[0]["quantity"] == 100
    assert rows[0]["quantity_score"] == {
        "score": 2,
        "reasoning": "Read '100' under 'Qty' in row 1 on page 1, but it is above the maximum 10.",
    }
    assert rows[1]["quantity_score"]["score"] == 5
    flags = evaluate(body, schema).flags
    assert "invalid_field:line_items[0].quantity" in flags
    assert "low_confidence_field:line_items[0].quantity" in flags
    assert not any(flag.endswith(":line_items") for flag in flags)


@pytest.mark.parametrize("shape", ["per_item", "mixed"])
def test_every_cell_citation_resolves_to_a_box_inside_its_row_line(shape: str) -> None:
    # Umbrella's table is on its second page: the page comes from the Span's own Page.
    body = scored_body(UMBRELLA, shape)
    doc = read_document(UMBRELLA.name, UMBRELLA.read_bytes())
    row_lines = extract_fields(SCHEMA, doc)["line_items"].citations[1:]  # after the header
    index = index_blocks(body["json"])
    items = evaluate(body).fields["line_items"].items
    assert items is not None
    assert len(items) == len(row_lines) == 3
    for line_id, row in zip(row_lines, items, strict=True):
        line_page, line_box = locate([line_id], index)
        assert line_page == 1
        assert line_box is not None
        lefts = []
        for column in COLUMNS:
            cell = row[column]
            if cell.score is None:  # an unscored row of the mix: no cell keys
                assert cell.citations == []
                continue
            assert cell.page == 1
            assert cell.bbox is not None
            assert cell.bbox["x"] >= line_box["x"] - 1e-9
            assert cell.bbox["x"] + cell.bbox["width"] <= line_box["x"] + line_box["width"] + 1e-9
            assert cell.bbox["y"] == pytest.approx(line_box["y"])
            assert cell.bbox["height"] == pytest.approx(line_box["height"])
            assert cell.bbox["width"] < line_box["width"]  # the cell's own box, not the line's
            lefts.append(cell.bbox["x"])
        assert lefts == sorted(lefts)


def test_drop_row_leaves_out_the_last_row_of_each_table_and_keeps_the_score() -> None:
    body = scored_body(ACME, "per_item", fault="drop_row")
    _, rows = line_items(body)
    assert [row["description"] for row in rows] == ["Anvil, heavy duty", "Rocket skates"]
    assert all(row["amount_score"]["score"] == 5 for row in rows)
    strict = json.loads(json.dumps(SCHEMA))
    strict["properties"]["line_items"]["minItems"] = 3
    ev = evaluate(body, strict)
    assert ev.flags == ["failed_check:total_matches_lines", "incomplete_list:line_items"]
    array = line_items(scored_body(ACME, "array", fault="drop_row"))[0]
    assert array["line_items_score"]["reasoning"].startswith("Found 2 row(s)")
    assert len(array["line_items_citations"]) == 3


def test_the_initech_sample_total_disagrees_with_its_lines() -> None:
    ev = evaluate(scored_body(INITECH))
    assert ev.flags == ["failed_check:total_matches_lines"]
    assert ev.checks == [
        {
            "name": "total_matches_lines",
            "passed": False,
            "computed": 307.8,
            "expected": 317.8,
            "tolerance": 0.01,
        }
    ]


def test_unknown_nested_scores_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="per_item"):
        EmulatorConfig(nested_scores="cells")
