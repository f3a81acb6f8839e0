"""The emulator reads the same invoice alike whichever program made the PDF.

One invoice (a title, a vendor address beside a block of labelled fields, an items table, totals)
is drawn four ways: fpdf2 cells flowing row by row, fpdf2 ``text()`` at absolute positions drawn
column by column (every label, then every value, so the content stream is not in reading order),
reportlab's platypus tables, and Chromium's print-to-PDF of ``tests/fixtures/invoice-generators/
invoice.html`` (committed, since CI may have no Chromium; ``make-chromium-pdf`` beside it prints it
again). Each must give the same values, every field at full score.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from PIL import Image
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from doctriage_local.emulator.document import read_document
from doctriage_local.emulator.fields import extract_fields

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_PDF = ROOT / "tests/fixtures/invoice-generators/invoice-chromium.pdf"
SCHEMA = json.loads((ROOT / "samples/schemas/invoice.json").read_text())

ADDRESS = ("Northwind Traders", "1 Harbour Road", "Seattle, WA 98101")
FIELDS = (
    ("Vendor:", "Northwind Traders"),
    ("Invoice Number:", "INV-3051"),
    ("Invoice Date:", "2024-09-12"),
    ("Due Date:", "2024-10-12"),
    ("Bill To:", "Contoso Ltd"),
    ("Currency:", "USD"),
)
HEADER = ("Description", "Qty", "Unit Price", "Amount")
ITEMS = (
    ("Widget, large", "3", "40.00", "120.00"),
    ("Gear set", "2", "75.50", "151.00"),
    ("Service call", "1", "90.00", "90.00"),
)
TOTALS = (("Subtotal:", "361.00"), ("Tax:", "28.88"), ("Total Due:", "$389.88"))

EXPECTED = {
    "document_type": "invoice",
    "invoice_number": "INV-3051",
    "vendor_name": "Northwind Traders",
    "customer_name": "Contoso Ltd",
    "invoice_date": "2024-09-12",
    "due_date": "2024-10-12",
    "currency": "USD",
    "line_items": [
        {"description": "Widget, large", "quantity": 3, "unit_price": 40.0, "amount": 120.0},
        {"description": "Gear set", "quantity": 2, "unit_price": 75.5, "amount": 151.0},
        {"description": "Service call", "quantity": 1, "unit_price": 90.0, "amount": 90.0},
    ],
    "subtotal": 361.0,
    "tax_amount": 28.88,
    "total_amount": 389.88,
}


def fpdf2_cells() -> bytes:
    """The fpdf2 tutorial's way: cells flowing left to right, ``new_y=NEXT`` for a new line."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 12, "INVOICE", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", "", 10)
    top = pdf.get_y()
    for text in ADDRESS:
        pdf.cell(70, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(top)
    for label, value in FIELDS:
        pdf.set_x(110)
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(35, 6, label)
        pdf.set_font("Helvetica", "", 10)
        pdf.cell(0, 6, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(8)
    widths = (90, 20, 35, 35)
    for n, row in enumerate((HEADER, *ITEMS)):
        pdf.set_font("Helvetica", "B" if n == 0 else "", 10)
        for col, (text, width) in enumerate(zip(row, widths, strict=True)):
            pdf.cell(width, 8, text, border=1, align="L" if col == 0 else "R")
        pdf.ln()
    pdf.ln(8)
    for label, value in TOTALS:
        pdf.set_x(120)
        pdf.cell(35, 6, label)
        pdf.cell(35, 6, value, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def fpdf2_text() -> bytes:
    """``text()`` at absolute baselines, one column at a time: labels first, then values."""
    pdf = FPDF(unit="pt", format="letter")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 22)
    pdf.text(50, 60, "INVOICE")
    pdf.set_font("Helvetica", "", 10)
    for n, text in enumerate(ADDRESS):
        pdf.text(50, 100 + 14 * n, text)
    pdf.set_font("Helvetica", "B", 10)
    for n, (label, _) in enumerate(FIELDS):
        pdf.text(330, 100 + 14 * n, label)
    pdf.set_font("Helvetica", "", 10)
    for n, (_, value) in enumerate(FIELDS):
        pdf.text(430, 100 + 14 * n, value)
    lefts, rights = (50, 0, 0, 0), (0, 330, 430, 530)
    for col in range(len(HEADER)):
        for n, row in enumerate((HEADER, *ITEMS)):
            pdf.set_font("Helvetica", "B" if n == 0 else "", 10)
            x = lefts[col] or rights[col] - pdf.get_string_width(row[col])
            pdf.text(x, 220 + 18 * n, row[col])
    for n, (label, _) in enumerate(TOTALS):
        pdf.text(400, 320 + 14 * n, label)
    for n, (_, value) in enumerate(TOTALS):
        pdf.text(530 - pdf.get_string_width(value), 320 + 14 * n, value)
    return bytes(pdf.output())


def reportlab_tables() -> bytes:
    """reportlab's platypus: a title paragraph and tables, placed by the layout engine."""
    out = io.BytesIO()
    bold = ("FONTNAME", (0, 0), (0, -1), "Helvetica-Bold")
    meta = Table(FIELDS, style=[bold])
    header = Table(
        [["\n".join(ADDRESS), meta]],
        colWidths=(250, 250),
        style=[("VALIGN", (0, 0), (-1, -1), "TOP")],
    )
    items = Table(
        (HEADER, *ITEMS),
        colWidths=(220, 50, 90, 90),
        style=TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
            ]
        ),
    )
    totals = Table(
        TOTALS, colWidths=(90, 90), hAlign="RIGHT", style=[("ALIGN", (1, 0), (1, -1), "RIGHT")]
    )
    title = Paragraph("INVOICE", getSampleStyleSheet()["Title"])
    SimpleDocTemplate(out, pagesize=A4, invariant=1).build(
        [title, header, Spacer(1, 18), items, Spacer(1, 18), totals]
    )
    return out.getvalue()


def chromium_print() -> bytes:
    return CHROMIUM_PDF.read_bytes()


GENERATORS: dict[str, Callable[[], bytes]] = {
    "fpdf2 cell()": fpdf2_cells,
    "fpdf2 text(), column by column": fpdf2_text,
    "reportlab platypus tables": reportlab_tables,
    "chromium print-to-pdf": chromium_print,
}


@pytest.mark.parametrize("make", GENERATORS.values(), ids=GENERATORS.keys())
def test_every_generator_gives_the_same_values_at_full_score(make: Callable[[], bytes]) -> None:
    results = extract_fields(SCHEMA, read_document("invoice.pdf", make()))
    assert {name: r.value for name, r in results.items()} == EXPECTED
    low = {name: (r.score, r.reasoning) for name, r in results.items() if r.score < 5}
    assert low == {}


def test_labels_drawn_before_their_values_share_a_line_with_them() -> None:
    page = read_document("invoice.pdf", fpdf2_text()).pages[0]
    rows = [[s.text for s in line.segments] for line in page.lines]
    assert rows[1] == ["Northwind Traders", "Vendor:", "Northwind Traders"]
    assert ["Description", "Qty", "Unit Price", "Amount"] in rows
    assert ["Total Due:", "$389.88"] in rows
    assert [line.id for line in page.lines] == [f"/page/0/Line/{n}" for n in range(len(rows))]


def test_a_line_is_what_shares_a_baseline_not_what_is_near() -> None:
    pdf = FPDF(unit="pt")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 24)
    pdf.text(50, 60, "INVOICE")
    pdf.set_font("Helvetica", "", 8)
    pdf.text(200, 64, "small print tucked under the title")
    pdf.set_font("Helvetica", "", 14)
    pdf.text(200, 100, "$389.88")
    pdf.set_font("Helvetica", "B", 8)
    pdf.text(50, 100, "Total Due:")
    pdf.set_font("Helvetica", "", 10)
    for n, text in enumerate(("Tight leading", "stays two lines")):
        pdf.text(50, 140 + 11 * n, text)
    page = read_document("lines.pdf", bytes(pdf.output())).pages[0]
    assert [[s.text for s in line.segments] for line in page.lines] == [
        ["INVOICE"],
        ["small print tucked under the title"],
        ["Total Due:", "$389.88"],
        ["Tight leading"],
        ["stays two lines"],
    ]


def image_only_page(pdf: FPDF) -> None:
    pdf.add_page()
    pdf.image(Image.new("L", (400, 300), 200), x=20, y=20, w=170)


def test_a_scan_says_it_has_no_text_layer_in_every_field() -> None:
    pdf = FPDF()
    image_only_page(pdf)
    doc = read_document("scan.pdf", bytes(pdf.output()))
    assert (doc.page_count, doc.has_text_layer) == (1, False)
    results = extract_fields(SCHEMA, doc)
    assert {(r.value, r.score) for r in results.values()} == {(None, 1)}
    assert {r.reasoning for r in results.values()} == {
        "Page 1 has no text layer (a scan or image?): the emulator does no OCR, "
        "so nothing could be read."
    }


def test_a_scanned_page_is_named_where_a_field_was_not_found() -> None:
    pdf = FPDF()
    image_only_page(pdf)
    pdf.add_page()
    pdf.set_font("Helvetica", "", 10)
    pdf.cell(0, 8, "Invoice Number: INV-3051")
    results: dict[str, Any] = extract_fields(
        SCHEMA, read_document("mixed.pdf", bytes(pdf.output()))
    )
    assert results["invoice_number"].value == "INV-3051"
    assert "text layer" not in results["invoice_number"].reasoning
    assert results["total_amount"].reasoning == (
        "No label like 'Total Due' was found in the document. Page 1 has no text layer "
        "(a scan or image?): the emulator does no OCR, so nothing on it could be read."
    )


def test_a_file_that_is_not_a_pdf_says_so() -> None:
    doc = read_document("scan.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    results = extract_fields(SCHEMA, doc)
    assert {r.reasoning for r in results.values()} == {
        "The file is not a PDF: the emulator reads only a PDF's text layer and does no OCR, "
        "so nothing could be read."
    }
