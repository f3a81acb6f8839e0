"""Reading an uploaded document: the PDF text layer as lines with boxes, and marker-style output.

Coordinates follow marker: PDF points with the origin at the page's top-left corner, boxes as
``[x0, y0, x1, y1]``. Block ids are ``/page/{page}/{BlockType}/{n}`` with the original 0-based page
index; a line's text segments are its ``Span`` children. Files that are not PDFs have no text
layer here (the emulator does no OCR).
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

# pdfium is not thread-safe and the server handles requests in threads.
_PDFIUM_LOCK = threading.Lock()

# A horizontal gap wider than this share of the line height splits a line into segments
# (columns, or a label and its value set apart); a word space is about a quarter of it.
_SEGMENT_GAP = 0.6

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

    @property
    def lines(self) -> list[Line]:
        return [line for page in self.pages for line in page.lines]


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
        return Document(pages=(), page_count=1, has_text_layer=False)
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
        text = textpage.get_text_range()
        boxes = [textpage.get_charbox(i, loose=True) for i in range(textpage.count_chars())]
    finally:
        textpage.close()
        page.close()
    # pdfium separates visual lines with "\r\n" and joins runs on one baseline with a space.
    raw_lines: list[list[int]] = [[]]
    for i, char in enumerate(text[: len(boxes)]):
        if char in "\r\n":
            if raw_lines[-1]:
                raw_lines.append([])
        else:
            raw_lines[-1].append(i)
    built = [_build_line(text, boxes, idx, height) for idx in raw_lines]
    ordered = sorted(
        (b for b in built if b is not None), key=lambda b: (round(b[1][1], 1), b[1][0])
    )
    lines = tuple(
        Line(id=f"/page/{index}/Line/{n}", page=index, text=t, bbox=box, segments=segs)
        for n, (t, box, segs) in enumerate(ordered)
    )
    return Page(index=index, width=round(width, 2), height=round(height, 2), lines=lines)


def _build_line(
    text: str, boxes: list[Box], indices: list[int], page_height: float
) -> tuple[str, Box, tuple[Segment, ...]] | None:
    inked = [i for i in indices if not text[i].isspace()]
    if not inked:
        return None
    line_height = statistics.median(boxes[i][3] - boxes[i][1] for i in inked) or 1.0
    groups: list[list[int]] = [[inked[0]]]
    for prev, cur in itertools.pairwise(inked):
        gap = boxes[cur][0] - boxes[prev][2]
        if gap > _SEGMENT_GAP * line_height:
            groups.append([])
        groups[-1].append(cur)
    segments = tuple(
        Segment(
            text=" ".join(text[g[0] : g[-1] + 1].split()),
            x0=round(min(boxes[i][0] for i in g), 2),
            x1=round(max(boxes[i][2] for i in g), 2),
        )
        for g in groups
    )
    left = min(boxes[i][0] for i in inked)
    right = max(boxes[i][2] for i in inked)
    bottom = min(boxes[i][1] for i in inked)
    top = max(boxes[i][3] for i in inked)
    # PDF y grows upwards from the bottom edge; marker measures from the top edge.
    bbox = (
        round(max(left, 0.0), 2),
        round(max(page_height - top, 0.0), 2),
        round(right, 2),
        round(min(page_height - bottom, page_height), 2),
    )
    return " ".join(s.text for s in segments), bbox, segments


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
