"""The emulator's honest extractor: label matching, coercion and scoring, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from doctriage_local.emulator.document import Document, Line, Page, Segment
from doctriage_local.emulator.fields import (
    EXACT,
    LOOSE,
    PARTIAL,
    coerce,
    extract_fields,
    label_match,
    parse_number,
    words,
)

Row = str | tuple[str, ...]


def make_doc(*rows: Row, title: bool = False, gap_after: int | None = None) -> Document:
    """One page; each row is a line, a tuple row has one segment per column (120 pt apart).

    ``title`` makes the first line twice as tall; ``gap_after`` leaves a blank line after it.
    """
    lines = []
    y = 20.0
    for n, row in enumerate(rows):
        texts = (row,) if isinstance(row, str) else row
        height = 24.0 if title and n == 0 else 12.0
        segments = tuple(
            Segment(text, 50.0 + 120 * i, 50.0 + 120 * i + 5 * len(text))
            for i, text in enumerate(texts)
        )
        bbox = (50.0, y, segments[-1].x1, y + height)
        lines.append(Line(f"/page/0/Line/{n}", 0, " ".join(texts), bbox, segments))
        y += height + 4 + (30 if n == gap_after else 0)
    return Document((Page(0, 612.0, 792.0, tuple(lines)),), 1, True)


def extract_one(name: str, prop: dict[str, Any], *rows: Row, **kwargs: Any) -> Any:
    return extract_fields({"properties": {name: prop}}, make_doc(*rows, **kwargs))[name]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invoice No.", ("invoice", "number")),
        ("Invoice #", ("invoice", "number")),
        ("invoiceNumber", ("invoice", "number")),
        ("unit_price", ("unit", "price")),
        ("Qty", ("quantity",)),
        ("  ", ()),
    ],
)
def test_words_normalise_labels_and_names(text: str, expected: tuple[str, ...]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("label", "name", "prop", "expected"),
    [
        ("Invoice Number", "invoice_number", {}, EXACT),
        ("Invoice No.", "invoice_number", {}, EXACT),
        ("INVOICE #", "invoice_number", {}, EXACT),
        ("Bill To", "customer_name", {"title": "Bill To"}, EXACT),
        ("Total", "total_amount", {}, PARTIAL),
        ("Vendor", "vendor_name", {}, PARTIAL),
        ("Total Amount Due", "total_amount", {}, PARTIAL),
        ("Total Amt", "total_amount", {}, LOOSE),
        ("Date", "invoice_date", {}, LOOSE),
        ("Amount payable", "x", {"description": "Amount payable"}, LOOSE),
        ("Invoice Date", "due_date", {}, 0),
        ("Total Due", "due_date", {}, 0),
        ("Subtotal", "total_amount", {}, 0),
        ("Payment terms", "due_date", {"description": "Day payment is expected"}, 0),
        ("", "total_amount", {}, 0),
    ],
)
def test_label_match(label: str, name: str, prop: dict[str, Any], expected: int) -> None:
    assert label_match(label, name, prop) == expected


@pytest.mark.parametrize(
    ("raw", "value", "quality"),
    [
        ("$1,234.50", 1234.5, "clean"),
        ("1234", 1234.0, "clean"),
        ("USD 99.00", 99.0, "clean"),
        ("€5", 5.0, "clean"),
        ("-3.5", -3.5, "clean"),
        ("1.234,50", 1234.5, "coerced"),
        ("(12.00)", -12.0, "coerced"),
        ("TBD", None, "invalid"),
        ("12.3.4", None, "invalid"),
        ("1,23", 1.23, "coerced"),
    ],
)
def test_parse_number(raw: str, value: float | None, quality: str) -> None:
    assert parse_number(raw) == (value, quality)


DATE = {"type": "string", "format": "date"}
INVOICE_NO = {"type": "string", "pattern": "^INV-[0-9]+$"}
CURRENCY = {"type": "string", "enum": ["USD", "EUR", "GBP"]}


@pytest.mark.parametrize(
    ("raw", "prop", "value", "quality"),
    [
        ("INV-1042", INVOICE_NO, "INV-1042", "clean"),
        ("GX-0077", INVOICE_NO, "GX-0077", "invalid"),
        ("2024-03-15", DATE, "2024-03-15", "clean"),
        ("March 15, 2024", DATE, "2024-03-15", "coerced"),
        ("03/18/2024", DATE, "2024-03-18", "coerced"),
        ("31/31/2024", DATE, "31/31/2024", "invalid"),
        ("usd", CURRENCY, "USD", "clean"),
        ("JPY", CURRENCY, "JPY", "invalid"),
        ("3", {"type": "integer"}, 3, "clean"),
        ("2.5", {"type": "integer"}, "2.5", "invalid"),
        ("-5", {"type": "number", "minimum": 0}, -5.0, "invalid"),
        ("12", {"type": ["number", "null"], "maximum": 10}, 12.0, "invalid"),
        ("Yes", {"type": "boolean"}, True, "clean"),
        ("no", {"type": "boolean"}, False, "clean"),
        ("maybe", {"type": "boolean"}, "maybe", "invalid"),
        ("a, b; c", {"type": "array", "items": {"type": "string"}}, ["a", "b", "c"], "clean"),
        ("1, x", {"type": "array", "items": {"type": "number"}}, [1.0, "x"], "invalid"),
        ("ap@acme.test", {"type": "string", "format": "email"}, "ap@acme.test", "clean"),
        ("nobody", {"type": "string", "format": "email"}, "nobody", "invalid"),
        ("  ", {"type": "string"}, None, "empty"),
    ],
)
def test_coerce(raw: str, prop: dict[str, Any], value: Any, quality: str) -> None:
    got_value, got_quality, _ = coerce(raw, prop)
    assert (got_value, got_quality) == (value, quality)


TOTAL_DUE = {"type": "number", "title": "Total Due"}


@pytest.mark.parametrize(
    ("name", "prop", "rows", "value", "score"),
    [
        ("invoice_number", INVOICE_NO, ["Invoice Number: INV-1042"], "INV-1042", 5),
        ("invoice_number", INVOICE_NO, [("Invoice Number", "INV-1042")], "INV-1042", 5),
        ("invoice_number", INVOICE_NO, [("Invoice Number:", "INV-1042")], "INV-1042", 5),
        ("invoice_number", INVOICE_NO, ["Invoice # INV-1042"], "INV-1042", 5),
        ("invoice_number", INVOICE_NO, ["Invoice No.: GX-0077"], "GX-0077", 2),
        ("invoice_number", INVOICE_NO, ["Reference: INV-1042"], None, 1),
        ("total_amount", {"type": "number"}, ["Total: $10.00"], 10.0, 4),
        ("total_amount", {"type": "number"}, ["Total Amt: $10.00"], 10.0, 3),
        ("total_amount", TOTAL_DUE, ["Total Due: $10.00"], 10.0, 5),
        ("total_amount", TOTAL_DUE, ["Total Due: 1.234,50"], 1234.5, 4),
        ("total_amount", TOTAL_DUE, ["Total Due: TBD"], "TBD", 2),
        ("total_amount", {"type": "number"}, ["Total: 1.234,50"], 1234.5, 3),
        ("invoice_date", DATE, ["Invoice Date: March 15, 2024"], "2024-03-15", 4),
        ("due_date", DATE, ["Due Date:"], None, 1),
        ("due_date", DATE, ["Thank you for your business"], None, 1),
        ("currency", CURRENCY, ["Currency: usd"], "USD", 5),
        ("currency", CURRENCY, ["Currency: Yen"], "Yen", 2),
        # Two different values under the same label: keep the first, trust it less.
        (
            "invoice_number",
            INVOICE_NO,
            ["Invoice Number: INV-1", "Invoice Number: INV-2"],
            "INV-1",
            3,
        ),
        # The same value printed twice is not a conflict.
        ("invoice_number", INVOICE_NO, ["Invoice Number: INV-1", "Invoice #: INV-1"], "INV-1", 5),
        # A clearly labelled valid value beats an earlier loose one.
        ("total_amount", {"type": "number"}, ["Total Amt: 9.00", "Total Amount: 10.00"], 10.0, 5),
    ],
)
def test_labelled_values_and_scores(
    name: str, prop: dict[str, Any], rows: list[Row], value: Any, score: int
) -> None:
    result = extract_one(name, prop, *rows)
    assert (result.value, result.score) == (value, score)
    assert (result.citations == []) == (value is None)


def test_reasoning_names_value_label_and_page() -> None:
    result = extract_one("invoice_number", INVOICE_NO, "Invoice Number: INV-1042")
    assert result.reasoning == "Found 'INV-1042' next to label 'Invoice Number' on page 1."
    assert result.citations == ["/page/0/Line/0"]
    bad = extract_one("invoice_number", INVOICE_NO, "Invoice No.: GX-0077")
    assert "does not match the pattern ^INV-[0-9]+$" in bad.reasoning
    empty = extract_one("due_date", DATE, "Due Date:")
    assert "no value" in empty.reasoning


def test_label_owned_by_another_property_is_not_a_loose_match() -> None:
    schema = {"properties": {"invoice_date": DATE, "due_date": DATE, "date": DATE}}
    results = extract_fields(schema, make_doc("Invoice Date: 2024-03-18"))
    assert results["invoice_date"].value == "2024-03-18"
    assert results["due_date"].value is None
    assert results["date"].value is None


DOC_TYPE = {"type": "string", "enum": ["invoice", "receipt", "credit_note"]}


@pytest.mark.parametrize(
    ("rows", "value", "score"),
    [
        (["INVOICE", "Invoice Number: INV-1"], "invoice", 5),
        (["CREDIT NOTE", "Against invoice INV-1"], "credit_note", 4),
        (["RECEIPT", "Thank you"], "receipt", 5),
        (["INVOICE", "Payment due on receipt"], "invoice", 4),
        (["ACME", "This receipt confirms payment"], "receipt", 4),
        (["ACME", "invoice INV-1", "invoice date", "receipt"], "invoice", 3),
        (["ACME", "invoice INV-1", "receipt"], "invoice", 2),
        (["ACME", "Thank you"], None, 1),
        (["Document Type: receipt", "INVOICE"], "receipt", 5),
    ],
)
def test_document_type_classification(rows: list[str], value: Any, score: int) -> None:
    result = extract_one("document_type", DOC_TYPE, *rows, title=True)
    assert (result.value, result.score) == (value, score)
    if value is not None:
        assert result.citations


ITEMS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "quantity": {"type": "integer"},
            "amount": {"type": "number"},
        },
        "required": ["description", "amount"],
    },
}
HEADER = ("Description", "Qty", "Amount")


@pytest.mark.parametrize(
    ("rows", "gap_after", "value", "score"),
    [
        (
            [HEADER, ("Anvil", "2", "500.00"), ("Magnet", "4", "200.00"), ("Total:", "", "700")],
            None,
            [
                {"description": "Anvil", "quantity": 2, "amount": 500.0},
                {"description": "Magnet", "quantity": 4, "amount": 200.0},
            ],
            5,
        ),
        # A blank line ends the table.
        (
            [HEADER, ("Anvil", "2", "500.00"), ("Later", "1", "1.00")],
            1,
            [{"description": "Anvil", "quantity": 2, "amount": 500.0}],
            5,
        ),
        (
            [HEADER, ("Anvil", "two", "500.00")],
            None,
            [{"description": "Anvil", "quantity": "two", "amount": 500.0}],
            2,
        ),
        (
            [("Description", "Amount"), ("Anvil", "500.00")],
            None,
            [{"description": "Anvil", "quantity": None, "amount": 500.0}],
            4,
        ),
        ([HEADER, "Nothing follows"], None, None, 1),
        (["Description Qty Amount"], None, None, 1),
    ],
)
def test_line_item_tables(rows: list[Row], gap_after: int | None, value: Any, score: int) -> None:
    result = extract_one("line_items", ITEMS, *rows, gap_after=gap_after)
    assert (result.value, result.score) == (value, score)
    if value is not None:
        assert result.citations[0] == "/page/0/Line/0"
        assert len(result.citations) == 1 + len(value)


def test_nested_object_collects_its_parts() -> None:
    prop = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^\\d+$"}},
    }
    result = extract_one("address", prop, "City: Springfield", "Zip: 62701")
    assert result.value == {"city": "Springfield", "zip": "62701"}
    assert result.score == 5
    assert result.citations == ["/page/0/Line/0", "/page/0/Line/1"]
    assert extract_one("address", prop, "Nothing here").value is None


def test_document_without_text_layer_finds_nothing() -> None:
    blank = Document((Page(0, 612.0, 792.0, ()),), 1, False)
    results = extract_fields({"properties": {"a": {"type": "string"}, "b": DOC_TYPE}}, blank)
    assert [(r.value, r.score, r.citations) for r in results.values()] == [(None, 1, [])] * 2
    assert results["a"].reasoning == (
        "Page 1 has no text layer (a scan or image?): the emulator does no OCR, "
        "so nothing could be read."
    )
