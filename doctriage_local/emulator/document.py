"""Reading an uploaded document: the PDF text layer as lines with boxes, and marker-style output.

Coordinates follow marker: PDF points with the origin at the page's top-left corner, boxes as
``[x0, y0, x1, y1]``. Block ids are ``/page/{page}/{BlockType}/{n}`` with the original 0-based page
index. Lines are the visual lines rebuilt from pdfium's character boxes, not pdfium's own line
breaks (those follow the content stream's order); a line's text segments are its ``Span``
children. Files that are not PDFs, and pages without a text layer, read as nothing (the emulator
does no OCR); ``Document.unread_note`` says which.
"""

from __future__ import annotations

import html
import itertools
import json
import statistics
import threading
from dataclasses import dataclass
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

# pdfium is not thread-safe and the server handles requests in threads.
_PDFIUM_LOCK = threading.Lock()

# A horizontal gap wider than this share of the line height splits a line into segments
# (columns, or a label and its value set apart); a word space is about a quarter of it, and
# letters of one word touch or overlap (kerning), so a gap wider than _WORD_GAP is a space.
_SEGMENT_GAP = 0.6
_WORD_GAP = 0.1

# The SDK's list of accepted file types.
SUPPORTED_EXTENSIONS = frozenset(
    {
        ".pdf", ".png", ".jpg", ".jpeg", ".gif", ".tiff", ".webp", ".docx", ".doc", ".xlsx",
        ".xlsm", ".xltx", ".xls", ".csv", ".ods", ".pptx", ".ppt", ".html", ".epub",
    }
)  # fmt: skip

Box = tuple[float, float, float, float]


class DocumentError(Exception):
    """The file claims to be a PDF but pdfium cannot open it."""


@dataclass(frozen=True)
class Segment:
    """A run of text within a line, separated from its neighbours by a wide gap."""

    text: str
    x0: float
    x1: float


@dataclass(frozen=True)
class Line:
    id: str
    page: int
    text: str
    bbox: Box
    segments: tuple[Segment, ...]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]


@dataclass(frozen=True)
class Page:
    index: int
    width: float
    height: float
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Document:
    pages: tuple[Page, ...]
    page_count: int
    has_text_layer: bool
    is_pdf: bool = True

    @property
    def lines(self) -> list[Line]:
        return [line for page in self.pages for line in page.lines]

    def unread_note(self) -> str | None:
        """What of the document could not be read, said for a field's reasoning; None if all was."""
        if not self.is_pdf:
            return (
                "The file is not a PDF: the emulator reads only a PDF's text layer and does no "
                "OCR, so nothing could be read."
            )
        if not self.pages:
            return "No page of the PDF was read (is the page range past its end?)."
        blank = [str(p.index + 1) for p in self.pages if not p.lines]
        if not blank:
            return None
        which = f"Page {blank[0]} has" if len(blank) == 1 else f"Pages {', '.join(blank)} have"
        why = f"{which} no text layer (a scan or image?): the emulator does no OCR"
        if len(blank) < len(self.pages):
            return f"{why}, so nothing on {'it' if len(blank) == 1 else 'them'} could be read."
        return f"{why}, so nothing could be read."


def parse_page_range(spec: str) -> set[int]:
    """``"0,5-10"`` -> {0, 5, ..., 10}; raises ValueError on anything else."""
    pages: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        start, end = int(first), int(last) if sep else int(first)
        if start < 0 or end < start:
            raise ValueError(f"bad page range {part!r}")
        pages.update(range(start, end + 1))
    if not pages:
        raise ValueError("empty page range")
    return pages


def read_document(
    filename: str, content: bytes, page_range: set[int] | None = None, max_pages: int | None = None
) -> Document:
    if not filename.lower().endswith(".pdf"):
        return Document(pages=(), page_count=1, has_text_layer=False, is_pdf=False)
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(content)
        except pdfium.PdfiumError as exc:
            raise DocumentError(f"Could not open the PDF: {exc}") from exc
        try:
            indices = [i for i in range(len(pdf)) if page_range is None or i in page_range]
            if max_pages is not None:
                indices = indices[:max_pages]
            pages = tuple(_read_page(pdf, i) for i in indices)
        finally:
            pdf.close()
    return Document(pages=pages, page_count=len(pages), has_text_layer=any(p.lines for p in pages))


def _read_page(pdf: pdfium.PdfDocument, index: int) -> Page:
    page = pdf[index]
    textpage = page.get_textpage()
    try:
        width, height = page.get_size()
        chars = _inked_chars(textpage)
    finally:
        textpage.close()
        page.close()
    built = [_build_line(chars, page_height=height) for chars in _visual_lines(chars)]
    ordered = sorted(built, key=lambda b: (round(b[1][1], 1), b[1][0]))
    lines = tuple(
        Line(id=f"/page/{index}/Line/{n}", page=index, text=t, bbox=box, segments=segs)
        for n, (t, box, segs) in enumerate(ordered)
    )
    return Page(index=index, width=round(width, 2), height=round(height, 2), lines=lines)


@dataclass(frozen=True)
class _Char:
    text: str
    box: Box  # pdfium's loose box: PDF points, origin at the bottom-left corner

    @property
    def middle(self) -> float:
        return (self.box[1] + self.box[3]) / 2


def _inked_chars(textpage: pdfium.PdfTextPage) -> list[_Char]:
    """The page's printed characters with their boxes, in content-stream order.

    Spaces are left out, printed or generated by pdfium: words are told apart by the gaps
    between the boxes instead, which every generator's output has whatever it writes.
    """
    chars = []
    for i in range(textpage.count_chars()):
        text = chr(pdfium_c.FPDFText_GetUnicode(textpage, i))
        if text.isspace() or not text.isprintable():
            continue
        box = textpage.get_charbox(i, loose=True)
        if box[3] > box[1]:
            chars.append(_Char(text, box))
    return chars


def _visual_lines(chars: list[_Char]) -> list[list[_Char]]:
    """Characters grouped into the lines a reader sees, each line's characters left to right.

    pdfium's own line breaks follow the content stream, so text drawn column by column (labels,
    then values) comes out as separate lines. Here two characters share a line when each one's
    vertical middle lies within the other's height: a label and a smaller value on one baseline
    do, the line above or below does not.
    """
    lines: list[list[_Char]] = []
    bottom = top = 0.0
    for char in sorted(chars, key=lambda c: -c.middle):
        low, high = char.box[1], char.box[3]
        if lines and bottom <= char.middle <= top and low <= (bottom + top) / 2 <= high:
            lines[-1].append(char)
            bottom, top = min(bottom, low), max(top, high)
        else:
            lines.append([char])
            bottom, top = low, high
    return [sorted(line, key=lambda c: c.box[0]) for line in lines]


def _build_line(chars: list[_Char], page_height: float) -> tuple[str, Box, tuple[Segment, ...]]:
    line_height = statistics.median(c.box[3] - c.box[1] for c in chars)
    segments: list[list[str]] = [[chars[0].text]]
    edges = [[chars[0].box[0], chars[0].box[2]]]
    for prev, cur in itertools.pairwise(chars):
        gap = cur.box[0] - prev.box[2]
        if gap > _SEGMENT_GAP * line_height:
            segments.append([])
            edges.append([cur.box[0], cur.box[2]])
        elif gap > _WORD_GAP * line_height:
            segments[-1].append(" ")
        segments[-1].append(cur.text)
        edges[-1][1] = max(edges[-1][1], cur.box[2])
    segs = tuple(
        Segment(text="".join(texts), x0=round(x0, 2), x1=round(x1, 2))
        for texts, (x0, x1) in zip(segments, edges, strict=True)
    )
    left = min(c.box[0] for c in chars)
    right = max(c.box[2] for c in chars)
    bottom = min(c.box[1] for c in chars)
    top = max(c.box[3] for c in chars)
    # PDF y grows upwards from the bottom edge; marker measures from the top edge.
    bbox = (
        round(max(left, 0.0), 2),
        round(max(page_height - top, 0.0), 2),
        round(right, 2),
        round(min(page_height - bottom, page_height), 2),
    )
    return " ".join(s.text for s in segs), bbox, segs


def _polygon(box: Box) -> list[list[float]]:
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


@dataclass(frozen=True)
class Span:
    """One segment of a line as a block of its own: the box a table cell's citation names."""

    id: str
    text: str
    bbox: Box


def line_spans(doc: Document) -> dict[str, tuple[Span, ...]]:
    """Line id -> its segments as Span blocks, numbered through each page in reading order
    (``/page/0/Span/7``, as marker numbers a block type per page); each spans its segment's width
    and its line's height, so it lies inside the line's box."""
    spans: dict[str, tuple[Span, ...]] = {}
    for page in doc.pages:
        numbers = itertools.count()
        for line in page.lines:
            x0, y0, x1, y1 = line.bbox
            spans[line.id] = tuple(
                Span(
                    f"/page/{page.index}/Span/{next(numbers)}",
                    segment.text,
                    (max(segment.x0, x0), y0, min(segment.x1, x1), y1),
                )
                for segment in line.segments
            )
    return spans


def _block(block_id: str, block_type: str, text: str, box: Box, children: Any) -> dict[str, Any]:
    return {
        "id": block_id,
        "block_type": block_type,
        "html": html.escape(text, quote=False),
        "polygon": _polygon(box),
        "bbox": list(box),
        "children": children,
    }


def _line_block(line: Line, spans: tuple[Span, ...]) -> dict[str, Any]:
    children = [_block(s.id, "Span", s.text, s.bbox, None) for s in spans]
    return _block(line.id, "Line", line.text, line.bbox, children or None)


def block_tree(doc: Document) -> dict[str, Any]:
    """The ``json`` output: Document -> Page -> Line -> Span, like marker's JSON renderer."""
    spans = line_spans(doc)
    pages = []
    for page in doc.pages:
        box = (0.0, 0.0, page.width, page.height)
        pages.append(
            {
                "id": f"/page/{page.index}/Page/0",
                "block_type": "Page",
                "html": "".join(f"<content-ref src='{ln.id}'></content-ref>" for ln in page.lines),
                "polygon": _polygon(box),
                "bbox": list(box),
                "children": [_line_block(line, spans[line.id]) for line in page.lines],
            }
        )
    return {"block_type": "Document", "children": pages, "metadata": {}}


_BLOCK_TYPES = ("Line", "Span", "Text", "SectionHeader", "Table", "TableCell", "PageHeader")


def pad_metadata(tree: dict[str, Any], padding_bytes: int) -> dict[str, Any]:
    """``tree`` with ``metadata.page_stats`` grown by at least ``padding_bytes`` of JSON.

    The entries look like marker's per-page statistics, so a padded result stays a plausible
    Datalab answer: nothing in it is cited, and readers that ignore ``metadata`` see no change.
    """
    if padding_bytes <= 0:
        return tree
    stats: list[dict[str, Any]] = []
    size = 0
    page = 0
    while size < padding_bytes:
        entry = {
            "page_id": page,
            "text_extraction_method": "pdftext" if page % 7 else "surya",
            "block_counts": [
                [name, (page * 31 + i * 17) % 97 + 1] for i, name in enumerate(_BLOCK_TYPES)
            ],
            "block_metadata": {
                "llm_request_count": page % 3,
                "llm_error_count": 0,
                "llm_tokens_used": (page * 1237) % 4096,
                "previous_text": "",
                "previous_type": "",
                "previous_order": 0,
            },
        }
        stats.append(entry)
        size += len(json.dumps(entry)) + 2
        page += 1
    metadata = dict(tree.get("metadata") or {})
    metadata["page_stats"] = [*metadata.get("page_stats", []), *stats]
    return {**tree, "metadata": metadata}


def render(doc: Document, output_format: str) -> Any:
    """The converted document in the requested ``output_format``."""
    if output_format == "json":
        return block_tree(doc)
    if output_format == "html":
        return "".join(f"<p>{html.escape(line.text)}</p>" for line in doc.lines)
    if output_format == "chunks":
        spans = line_spans(doc)
        return {
            "blocks": [
                dict(_line_block(line, spans[line.id]), page=line.page) for line in doc.lines
            ]
        }
    return "\n\n".join("\n".join(line.text for line in page.lines) for page in doc.pages)
