"""Write the sample documents and schemas under samples/ (byte-identical on every run).

    .venv/bin/python scripts/make_samples.py [--out samples]

Each PDF is a real text-layer PDF drawn with fpdf2, so the Datalab emulator (and the real API)
read the values printed on it. What each one is for:

  invoice/acme-invoice-1042.pdf        every field clearly labelled and valid   -> auto
  invoice/umbrella-invoice-2207.pdf    two pages, line items and totals on p. 2 -> auto
  invoice/globex-invoice-smudged.pdf   no due date, invoice number breaks the pattern,
                                       total under a loose label               -> needs_review
  invoice/initech-invoice-3318.pdf     clean, but the printed total is 10.00 more than its
                                       lines and tax add up to (x-checks)      -> needs_review
  receipt/corner-cafe-receipt.pdf      a clean receipt                          -> auto

Beside each, ``<name>.expected.json``: its true values (EXPECTED), for ``doctriage eval``.
"""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fpdf import FPDF

# A fixed creation date and producer make the output (and fpdf2's /ID hash) reproducible.
CREATED = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
LETTER = (612.0, 792.0)
RECEIPT_PAGE = (226.0, 420.0)

DOCUMENT_TYPE = {
    "type": "string",
    "enum": ["invoice", "receipt", "credit_note"],
    "description": "Kind of document, as its title says",
}
CURRENCY = {"type": "string", "enum": ["USD", "EUR", "GBP"], "description": "ISO 4217 code"}

INVOICE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Invoice",
    "type": "object",
    "properties": {
        "document_type": DOCUMENT_TYPE,
        "invoice_number": {
            "type": "string",
            "title": "Invoice Number",
            "pattern": "^INV-[0-9]+$",
            "description": "Invoice identifier, e.g. INV-1042",
        },
        "vendor_name": {
            "type": "string",
            "title": "Vendor",
            "description": "Company that issued the invoice",
        },
        "customer_name": {
            "type": "string",
            "title": "Bill To",
            "description": "Customer the invoice is addressed to",
        },
        "invoice_date": {
            "type": "string",
            "format": "date",
            "description": "Day the invoice was issued (YYYY-MM-DD)",
        },
        "due_date": {
            "type": "string",
            "format": "date",
            "description": "Day payment is expected (YYYY-MM-DD)",
        },
        "currency": CURRENCY,
        "line_items": {
            "type": "array",
            "description": "One entry per row of the items table",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string", "description": "What was sold"},
                    "quantity": {"type": "number", "description": "How many"},
                    "unit_price": {"type": "number", "description": "Price of one"},
                    "amount": {"type": "number", "description": "Line total"},
                },
                "required": ["description", "amount"],
            },
        },
        "subtotal": {"type": "number", "description": "Sum of the line items before tax"},
        "tax_amount": {"type": "number", "title": "Tax", "minimum": 0, "description": "Tax"},
        "total_amount": {
            "type": "number",
            "title": "Total Due",
            "minimum": 0,
            "description": "Amount to pay, tax included",
            "x-review-threshold": 0.9,
        },
    },
    "required": [
        "document_type",
        "invoice_number",
        "vendor_name",
        "invoice_date",
        "due_date",
        "currency",
        "line_items",
        "total_amount",
    ],
    "x-checks": [
        {
            "name": "total_matches_lines",
            "sum": ["line_items[].amount", "tax_amount"],
            "equals": "total_amount",
            "tolerance": 0.01,
        }
    ],
}

RECEIPT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Receipt",
    "type": "object",
    "x-review-threshold": 0.75,
    "properties": {
        "document_type": DOCUMENT_TYPE,
        "merchant_name": {"type": "string", "title": "Store", "description": "Shop or merchant"},
        "receipt_number": {
            "type": "string",
            "pattern": "^R-[0-9]+$",
            "description": "Receipt identifier, e.g. R-20931",
        },
        "transaction_date": {
            "type": "string",
            "title": "Date",
            "format": "date",
            "description": "Day of the purchase (YYYY-MM-DD)",
        },
        "items": {
            "type": "array",
            "description": "What was bought",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string", "title": "Item", "description": "Product"},
                    "quantity": {"type": "integer", "description": "How many"},
                    "price": {"type": "number", "description": "Line price"},
                },
                "required": ["description", "price"],
            },
        },
        "subtotal": {"type": "number", "description": "Before tax"},
        "tax_amount": {"type": "number", "title": "Tax", "minimum": 0, "description": "Tax"},
        "total_amount": {
            "type": "number",
            "title": "Total",
            "minimum": 0,
            "description": "Amount paid",
        },
        "currency": CURRENCY,
        "payment_method": {
            "type": "string",
            "title": "Payment",
            "enum": ["cash", "card", "mobile"],
            "description": "How it was paid",
        },
    },
    "required": ["document_type", "merchant_name", "transaction_date", "total_amount", "currency"],
}


class Sheet:
    """A thin pen over fpdf2: text at absolute positions, in points, top-left origin."""

    def __init__(self, title: str, size: tuple[float, float] = LETTER) -> None:
        self.size = size
        self.pdf = FPDF(unit="pt", format=size)
        self.pdf.set_creation_date(CREATED)
        self.pdf.set_producer("doctriage scripts/make_samples.py")
        self.pdf.set_creator("doctriage scripts/make_samples.py")
        self.pdf.set_title(title)
        self.pdf.set_auto_page_break(False)
        self.pdf.set_margins(0, 0, 0)

    def page(self) -> None:
        self.pdf.add_page()

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = 10,
        bold: bool = False,
        width: float = 0,
        align: str = "L",
    ) -> None:
        self.pdf.set_font("Helvetica", "B" if bold else "", size)
        self.pdf.set_xy(x, y)
        self.pdf.cell(width or self.pdf.get_string_width(text) + 2, size * 1.4, text, align=align)

    def fields(
        self, x: float, y: float, pairs: Sequence[tuple[str, str]], gap: float = 110
    ) -> float:
        """Label/value pairs, one per line, values in their own column; returns the next y."""
        for label, value in pairs:
            self.text(x, y, label, bold=True)
            self.text(x + gap, y, value)
            y += 16
        return y

    def table(
        self, x: float, y: float, widths: Sequence[float], rows: Sequence[Sequence[str]]
    ) -> float:
        """A header row (bold) and body rows; the first column left-aligned, the rest right."""
        for n, row in enumerate(rows):
            left = x
            for col, (cell, width) in enumerate(zip(row, widths, strict=True)):
                self.text(left, y, cell, bold=n == 0, width=width, align="L" if col == 0 else "R")
                left += width
            y += 16
        return y

    def bytes(self) -> bytes:
        return bytes(self.pdf.output())


ITEM_WIDTHS = (250.0, 60.0, 100.0, 100.0)
ITEM_HEADER = ("Description", "Qty", "Unit Price", "Amount")


def items_and_totals(
    s: Sheet,
    y: float,
    items: Sequence[Sequence[str]],
    totals: Sequence[tuple[str, str]],
) -> float:
    """An invoice's line items (a table at x=50 from ``y``) and, 30 pt below it, its totals."""
    y = s.table(50, y, ITEM_WIDTHS, [ITEM_HEADER, *items])
    return s.fields(360, y + 30, totals)


def acme_invoice() -> bytes:
    s = Sheet("Acme Corporation invoice INV-1042")
    s.page()
    s.text(50, 48, "INVOICE", size=24, bold=True)
    s.text(50, 92, "Acme Corporation, 123 Industrial Way, Springfield, IL 62701", size=9)
    y = s.fields(
        50,
        116,
        [
            ("Vendor:", "Acme Corporation"),
            ("Invoice Number:", "INV-1042"),
            ("Invoice Date:", "2024-03-15"),
            ("Due Date:", "2024-04-14"),
            ("Bill To:", "Wayne Enterprises"),
            ("Currency:", "USD"),
        ],
    )
    items_and_totals(
        s,
        y + 30,
        [
            ("Anvil, heavy duty", "2", "250.00", "500.00"),
            ("Rocket skates", "1", "450.00", "450.00"),
            ("Giant magnet", "4", "50.00", "200.00"),
        ],
        [("Subtotal:", "1,150.00"), ("Tax:", "86.25"), ("Total Due:", "$1,236.25")],
    )
    s.text(50, 700, "Payment terms: Net 30. Thank you for your business.", size=9)
    return s.bytes()


def umbrella_invoice() -> bytes:
    s = Sheet("Umbrella Corporation invoice INV-2207")
    s.page()
    s.text(50, 48, "INVOICE", size=24, bold=True)
    s.fields(
        50,
        100,
        [
            ("Vendor:", "Umbrella Corporation"),
            ("Invoice Number:", "INV-2207"),
            ("Invoice Date:", "2024-06-03"),
            ("Due Date:", "2024-07-03"),
            ("Bill To:", "Stark Industries"),
            ("Currency:", "EUR"),
        ],
    )
    s.text(50, 260, "The itemised charges are listed on the next page.", size=9)
    s.text(50, 740, "Page 1 of 2", size=8)
    s.page()
    items_and_totals(
        s,
        60,
        [
            ("Consulting hours", "12", "150.00", "1,800.00"),
            ("Laboratory rental", "3", "400.00", "1,200.00"),
            ("Hazmat disposal", "1", "275.50", "275.50"),
        ],
        [("Subtotal:", "3,275.50"), ("Tax:", "655.10"), ("Total Due:", "3,930.60")],
    )
    s.text(50, 740, "Page 2 of 2", size=8)
    return s.bytes()


def globex_invoice() -> bytes:
    s = Sheet("Globex invoice")
    s.page()
    s.text(50, 48, "INVOICE", size=24, bold=True)
    y = s.fields(
        50,
        100,
        [
            ("Vendor:", "Globex Corporation"),
            ("Invoice No.:", "GX-0077"),
            ("Invoice Date:", "2024-03-18"),
            ("Bill To:", "Initech LLC"),
            ("Currency:", "USD"),
        ],
    )
    items_and_totals(
        s,
        y + 30,
        [
            ("TPS report covers", "100", "2.50", "250.00"),
            ("Stapler, red", "1", "50.00", "50.00"),
        ],
        [("Subtotal:", "300.00"), ("Tax:", "22.50"), ("Total Amt:", "$322.50")],
    )
    return s.bytes()


def initech_invoice() -> bytes:
    s = Sheet("Initech invoice INV-3318")
    s.page()
    s.text(50, 48, "INVOICE", size=24, bold=True)
    y = s.fields(
        50,
        100,
        [
            ("Vendor:", "Initech LLC"),
            ("Invoice Number:", "INV-3318"),
            ("Invoice Date:", "2024-08-12"),
            ("Due Date:", "2024-09-11"),
            ("Bill To:", "Globex Corporation"),
            ("Currency:", "USD"),
        ],
    )
    # The lines and tax come to 307.80; the total printed is 317.80.
    items_and_totals(
        s,
        y + 30,
        [
            ("Printer maintenance", "2", "120.00", "240.00"),
            ("Stapler replacement", "3", "15.00", "45.00"),
        ],
        [("Subtotal:", "285.00"), ("Tax:", "22.80"), ("Total Due:", "$317.80")],
    )
    return s.bytes()


def corner_cafe_receipt() -> bytes:
    s = Sheet("Corner Cafe receipt R-20931", size=RECEIPT_PAGE)
    s.page()
    s.text(20, 20, "RECEIPT", size=18, bold=True)
    y = s.fields(20, 54, [("Store:", "Corner Cafe")], gap=70)
    s.text(20, y, "42 Main Street, Portland, OR 97201", size=8)
    y = s.fields(20, y + 20, [("Receipt #:", "R-20931"), ("Date:", "2024-05-02")], gap=70)
    y = s.table(
        20,
        y + 20,
        (110.0, 36.0, 40.0),
        [("Item", "Qty", "Price"), ("Flat white", "2", "9.00"), ("Croissant", "1", "4.25")],
    )
    y = s.fields(
        20,
        y + 20,
        [
            ("Subtotal:", "13.25"),
            ("Tax:", "1.06"),
            ("Total:", "$14.31"),
            ("Currency:", "USD"),
            ("Payment:", "Card"),
        ],
        gap=70,
    )
    s.text(20, y + 20, "Thank you!", size=9)
    return s.bytes()


def _rows(columns: Sequence[str], *rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


INVOICE_COLUMNS = ("description", "quantity", "unit_price", "amount")
# What each document truly says, by schema field (`doctriage eval --truth samples`): the values
# printed on it, whether or not the schema accepts them (Globex's GX-0077 breaks the pattern,
# Initech's total disagrees with its lines); null for what it does not print.
EXPECTED: dict[str, dict[str, Any]] = {
    "invoice/acme-invoice-1042": {
        "document_type": "invoice",
        "invoice_number": "INV-1042",
        "vendor_name": "Acme Corporation",
        "customer_name": "Wayne Enterprises",
        "invoice_date": "2024-03-15",
        "due_date": "2024-04-14",
        "currency": "USD",
        "line_items": _rows(
            INVOICE_COLUMNS,
            ("Anvil, heavy duty", 2, 250.0, 500.0),
            ("Rocket skates", 1, 450.0, 450.0),
            ("Giant magnet", 4, 50.0, 200.0),
        ),
        "subtotal": 1150.0,
        "tax_amount": 86.25,
        "total_amount": 1236.25,
    },
    "invoice/umbrella-invoice-2207": {
        "document_type": "invoice",
        "invoice_number": "INV-2207",
        "vendor_name": "Umbrella Corporation",
        "customer_name": "Stark Industries",
        "invoice_date": "2024-06-03",
        "due_date": "2024-07-03",
        "currency": "EUR",
        "line_items": _rows(
            INVOICE_COLUMNS,
            ("Consulting hours", 12, 150.0, 1800.0),
            ("Laboratory rental", 3, 400.0, 1200.0),
            ("Hazmat disposal", 1, 275.5, 275.5),
        ),
        "subtotal": 3275.5,
        "tax_amount": 655.1,
        "total_amount": 3930.6,
    },
    "invoice/globex-invoice-smudged": {
        "document_type": "invoice",
        "invoice_number": "GX-0077",
        "vendor_name": "Globex Corporation",
        "customer_name": "Initech LLC",
        "invoice_date": "2024-03-18",
        "due_date": None,
        "currency": "USD",
        "line_items": _rows(
            INVOICE_COLUMNS,
            ("TPS report covers", 100, 2.5, 250.0),
            ("Stapler, red", 1, 50.0, 50.0),
        ),
        "subtotal": 300.0,
        "tax_amount": 22.5,
        "total_amount": 322.5,
    },
    "invoice/initech-invoice-3318": {
        "document_type": "invoice",
        "invoice_number": "INV-3318",
        "vendor_name": "Initech LLC",
        "customer_name": "Globex Corporation",
        "invoice_date": "2024-08-12",
        "due_date": "2024-09-11",
        "currency": "USD",
        "line_items": _rows(
            INVOICE_COLUMNS,
            ("Printer maintenance", 2, 120.0, 240.0),
            ("Stapler replacement", 3, 15.0, 45.0),
        ),
        "subtotal": 285.0,
        "tax_amount": 22.8,
        "total_amount": 317.8,
    },
    "receipt/corner-cafe-receipt": {
        "document_type": "receipt",
        "merchant_name": "Corner Cafe",
        "receipt_number": "R-20931",
        "transaction_date": "2024-05-02",
        "items": _rows(
            ("description", "quantity", "price"), ("Flat white", 2, 9.0), ("Croissant", 1, 4.25)
        ),
        "subtotal": 13.25,
        "tax_amount": 1.06,
        "total_amount": 14.31,
        "currency": "USD",
        "payment_method": "card",
    },
}


def write(out: Path) -> list[Path]:
    files: dict[str, bytes] = {
        "invoice/acme-invoice-1042.pdf": acme_invoice(),
        "invoice/umbrella-invoice-2207.pdf": umbrella_invoice(),
        "invoice/globex-invoice-smudged.pdf": globex_invoice(),
        "invoice/initech-invoice-3318.pdf": initech_invoice(),
        "receipt/corner-cafe-receipt.pdf": corner_cafe_receipt(),
        "schemas/invoice.json": (json.dumps(INVOICE_SCHEMA, indent=2) + "\n").encode(),
        "schemas/receipt.json": (json.dumps(RECEIPT_SCHEMA, indent=2) + "\n").encode(),
    }
    for name, expected in EXPECTED.items():
        files[f"{name}.expected.json"] = (json.dumps(expected, indent=2) + "\n").encode()
    written = []
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parent.parent / "samples"
    )
    args = parser.parse_args(argv)
    for path in write(args.out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
