"""The emulator's seeded errors: deterministic per (document, field), at the rate of the score
reported, plausible (never the true value), and off unless asked for."""

from __future__ import annotations

import json

import pytest

from doctriage_local.emulator import SEEDED_ERROR_RATES, EmulatorConfig
from doctriage_local.emulator.document import read_document
from doctriage_local.emulator.fields import FieldResult, extract_fields
from doctriage_local.emulator.seeding import draw, seed_errors, wrong_value
from doctriage_local.paths import SAMPLE_SCHEMAS, SAMPLES

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
SCHEMA = json.loads((SAMPLE_SCHEMAS / "invoice.json").read_text())


def _acme() -> dict[str, FieldResult]:
    return extract_fields(SCHEMA, read_document(ACME.name, ACME.read_bytes()))


def test_no_rates_no_errors():
    fields = _acme()
    assert seed_errors(SCHEMA, fields, {}, ACME.name) == fields
    assert EmulatorConfig().seeded_errors == {}  # off by default


def test_a_rate_of_one_makes_every_found_value_wrong_and_keeps_the_scores():
    fields = _acme()
    seeded = seed_errors(SCHEMA, fields, {5: 1.0}, ACME.name)
    for name, result in fields.items():
        assert seeded[name].score == result.score == 5
        if result.cells is None:
            assert seeded[name].value != result.value, name
    rows, cells = seeded["line_items"].value, seeded["line_items"].cells
    assert cells is not None
    for row, honest_row, row_cells in zip(rows, fields["line_items"].value, cells, strict=True):
        assert all(row[c] != honest_row[c] for c in honest_row)  # every cell, one by one
        assert row == {c: cell.value for c, cell in row_cells.items()}  # rows follow cells


def test_only_the_rates_of_the_reported_scores_apply():
    fields = {"a": FieldResult("INV-1042", [], 5, ""), "b": FieldResult("INV-1042", [], 2, "")}
    seeded = seed_errors({"properties": {}}, fields, {5: 0.0, 2: 1.0}, "x.pdf")
    assert (seeded["a"].value, seeded["b"].value) == ("INV-1042", "INV-1024")


def test_nothing_found_stays_nothing_found():
    fields = {"due_date": FieldResult(None, [], 1, "")}
    assert seed_errors({"properties": {}}, fields, {1: 1.0}, "x.pdf") == fields


def test_draws_are_fixed_per_document_and_field_and_uniform_enough():
    assert draw("a.pdf", "total_amount") == draw("a.pdf", "total_amount")
    assert draw("a.pdf", "total_amount") != draw("b.pdf", "total_amount")
    assert draw("a.pdf", "line_items[0].amount") != draw("a.pdf", "line_items[1].amount")
    hits = sum(draw(f"doc-{n}.pdf", "total_amount") < 0.2 for n in range(4000))
    assert 0.18 < hits / 4000 < 0.22


def test_the_demo_rates_fall_with_the_score():
    rates = [SEEDED_ERROR_RATES[s] for s in (1, 2, 3, 4, 5)]
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] > 0


@pytest.mark.parametrize(
    ("value", "prop", "wrong"),
    [
        (1236.25, {"type": "number"}, 1236.52),
        (500.0, {"type": "number"}, 50.0),
        (3, {"type": "integer"}, 4),
        (True, {"type": "boolean"}, False),
        ("2024-03-15", {"type": "string", "format": "date"}, "2024-03-16"),
        ("2024-02-29", {"type": "string", "format": "date"}, "2024-03-01"),
        ("USD", {"enum": ["USD", "EUR", "GBP"]}, "EUR"),
        ("GBP", {"enum": ["USD", "EUR", "GBP"]}, "USD"),
        ("usd", {"enum": ["USD", "EUR"]}, "USD"),
        ("Acme Corporation", {"type": "string"}, "Acme Corporatino"),
        ("aaa", {"type": "string"}, "aaax"),
        ("R-111", {"type": "string"}, "R-112"),
        (["a", "b"], {"type": "array", "items": {"type": "string"}}, ["a", "bx"]),
    ],
)
def test_wrong_values_are_plausible_and_never_the_value(value, prop, wrong):
    assert wrong_value(value, prop) == wrong
    assert wrong_value(value, prop) != value


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="seeded_errors maps scores 1-5 to rates 0-1"):
        EmulatorConfig(seeded_errors={6: 0.1})
    with pytest.raises(ValueError, match="seeded_errors"):
        EmulatorConfig(seeded_errors={5: 1.5})
