"""Reading documents for the emulator: PDF text lines, marker-style block tree, form parsing."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from doctriage_local.emulator.document import (
    DocumentError,
    block_tree,
    parse_page_range,
    read_document,
    render,
)
from doctriage_local.emulator.multipart import MultipartError, parse_form

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
UMBRELLA = SAMPLES / "invoice" / "umbrella-invoice-2207.pdf"


def load_make_samples() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", ROOT / "scripts/make_samples.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_samples_are_what_the_script_writes(tmp_path: Path) -> None:
    written = load_make_samples().write(tmp_path)
    assert len(written) == 12  # 5 documents, their 5 expected values, 2 schemas
    for path in written:
        committed = SAMPLES / path.relative_to(tmp_path)
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale"


def test_pdf_lines_have_text_segments_and_top_left_boxes() -> None:
    doc = read_document(ACME.name, ACME.read_bytes())
    assert doc.page_count == 1
    assert doc.has_text_layer
    page = doc.pages[0]
    assert (page.width, page.height) == (612.0, 792.0)
    texts = [line.text for line in page.lines]
    assert texts[0] == "INVOICE"
    assert "Invoice Number: INV-1042" in texts
    numbered = next(line for line in page.lines if line.text.startswith("Invoice Number"))
    assert [s.text for s in numbered.segments] == ["Invoice Number:", "INV-1042"]
    for n, line in enumerate(page.lines):
        assert line.id == f"/page/0/Line/{n}"
        x0, y0, x1, y1 = line.bbox
        assert 0 <= x0 < x1 <= page.width
        assert 0 <= y0 < y1 <= page.height
    # Reading order runs down the page: the title sits above everything else.
    tops = [line.bbox[1] for line in page.lines]
    assert tops == sorted(tops)
    assert page.lines[0].bbox[1] < 80


def test_block_tree_is_shaped_like_markers_json() -> None:
    tree = block_tree(read_document(UMBRELLA.name, UMBRELLA.read_bytes()))
    assert tree["block_type"] == "Document"
    assert tree["metadata"] == {}
    assert [p["id"] for p in tree["children"]] == ["/page/0/Page/0", "/page/1/Page/0"]
    for index, page in enumerate(tree["children"]):
        assert page["block_type"] == "Page"
        assert page["bbox"] == [0.0, 0.0, 612.0, 792.0]
        assert page["polygon"] == [[0.0, 0.0], [612.0, 0.0], [612.0, 792.0], [0.0, 792.0]]
        spans = []
        for block in page["children"]:
            assert re.fullmatch(rf"/page/{index}/Line/\d+", block["id"])
            assert block["block_type"] == "Line"
            x0, y0, x1, y1 = block["bbox"]
            assert block["polygon"] == [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            # Each segment of a line is a Span of its own, inside the line's box.
            for span in block["children"]:
                assert span["block_type"] == "Span"
                assert span["children"] is None
                sx0, sy0, sx1, sy1 = span["bbox"]
                assert x0 <= sx0 < sx1 <= x1
                assert (sy0, sy1) == (y0, y1)
                spans.append(span["id"])
        assert spans == [f"/page/{index}/Span/{n}" for n in range(len(spans))]
    row = next(ln for ln in tree["children"][1]["children"] if ln["html"].startswith("Consulting"))
    cells = ["Consulting hours", "12", "150.00", "1,800.00"]
    assert [span["html"] for span in row["children"]] == cells


def test_page_range_and_max_pages_keep_original_page_numbers() -> None:
    second = read_document(UMBRELLA.name, UMBRELLA.read_bytes(), page_range={1})
    assert second.page_count == 1
    assert all(line.id.startswith("/page/1/") for line in second.lines)
    first = read_document(UMBRELLA.name, UMBRELLA.read_bytes(), max_pages=1)
    assert [p.index for p in first.pages] == [0]


@pytest.mark.parametrize(
    ("spec", "pages"),
    [("0", {0}), ("0,5-7", {0, 5, 6, 7}), (" 2 , 2-3 ", {2, 3})],
)
def test_parse_page_range(spec: str, pages: set[int]) -> None:
    assert parse_page_range(spec) == pages


@pytest.mark.parametrize("spec", ["", "3-1", "x", "-1", "1-"])
def test_parse_page_range_rejects_nonsense(spec: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_page_range(spec)


def test_non_pdf_has_no_text_layer_and_broken_pdf_is_an_error() -> None:
    image = read_document("scan.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    assert (image.pages, image.page_count, image.has_text_layer) == ((), 1, False)
    with pytest.raises(DocumentError):
        read_document("broken.pdf", b"%PDF-1.4 not really")


def test_render_formats() -> None:
    doc = read_document(ACME.name, ACME.read_bytes())
    assert "Invoice Number: INV-1042" in render(doc, "markdown")
    assert "<p>Invoice Number: INV-1042</p>" in render(doc, "html")
    chunks = render(doc, "chunks")["blocks"]
    assert chunks[0]["id"] == "/page/0/Line/0"
    assert chunks[0]["page"] == 0


def test_parse_form_reads_what_httpx_sends() -> None:
    pdf = ACME.read_bytes()
    request = httpx.Request(
        "POST",
        "http://x/api/v1/extract",
        files={"file": ("acme invoice.pdf", pdf, "application/pdf")},
        data={"page_schema": '{"properties": {}}', "extraction_mode": "fast"},
    )
    form = parse_form(request.headers["Content-Type"], request.read())
    assert form["file"].data == pdf
    assert form["file"].filename == "acme invoice.pdf"
    assert form["file"].content_type == "application/pdf"
    assert form["page_schema"].text == '{"properties": {}}'
    assert form["extraction_mode"].text == "fast"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{}"),
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"--x\r\nno blank line"),
    ],
)
def test_parse_form_rejects_malformed_bodies(content_type: str, body: bytes) -> None:
    with pytest.raises(MultipartError):
        parse_form(content_type, body)
