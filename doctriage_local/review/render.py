"""A document's pages as PNG images: PDFs through pypdfium2, images passed through as they are.

PNG encoding is done here with zlib (no imaging library needed). Bounding boxes in records are
page-relative (0-1), so the overlay needs only the page's aspect ratio, not its scale.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass

import pypdfium2 as pdfium

# pdfium is not thread-safe: share the emulator's lock (both may run in one process).
from doctriage_local.emulator.document import _PDFIUM_LOCK

TARGET_WIDTH_PX = 1100  # rendered page width; sharp enough for 9 pt text at 100 % zoom
MAX_SCALE = 3.0
MAX_PAGES = 50  # a review page is not the place to page through a 500-page contract

BROWSER_IMAGES = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}


class RenderError(Exception):
    """The document cannot be shown (not a PDF or browser image, or pdfium cannot open it)."""


@dataclass(frozen=True)
class RenderedPage:
    index: int  # 0-based, as in the record's ``page``
    width: int
    height: int
    content_type: str
    data: bytes


def encode_png(width: int, height: int, stride: int, channels: int, pixels: bytes) -> bytes:
    """8-bit greyscale (1), RGB (3) or RGBA (4) rows, ``stride`` bytes apart -> PNG bytes."""
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    row = width * channels
    raw = b"".join(b"\x00" + pixels[y * stride : y * stride + row] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def _image_size(data: bytes, content_type: str) -> tuple[int, int]:
    if content_type == "image/png" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if content_type == "image/gif" and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if content_type == "image/jpeg":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                break
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return 0, 0  # unknown: the browser lays it out when it arrives


def render_pages(data: bytes, max_pages: int = MAX_PAGES) -> tuple[list[RenderedPage], int]:
    """Every page (up to ``max_pages``) as an image, and the document's page count."""
    for magic, content_type in BROWSER_IMAGES.items():
        if data.startswith(magic):
            width, height = _image_size(data, content_type)
            return [RenderedPage(0, width, height, content_type, data)], 1
    if not data:
        raise RenderError("the file is empty")
    if not data.startswith(b"%PDF"):
        raise RenderError(
            "its content is not a PDF, PNG, JPEG or GIF (the only ones previewed here), "
            "whatever its name says"
        )
    pages: list[RenderedPage] = []
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise RenderError(f"pdfium cannot open this PDF: {exc}") from exc
        try:
            count = len(pdf)
            for index in range(min(count, max_pages)):
                page = pdf[index]
                try:
                    width_pt, _ = page.get_size()
                    scale = min(MAX_SCALE, TARGET_WIDTH_PX / max(width_pt, 1.0))
                    bitmap = page.render(scale=scale, rev_byteorder=True)
                    try:
                        png = encode_png(
                            bitmap.width,
                            bitmap.height,
                            bitmap.stride,
                            bitmap.n_channels,
                            bytes(bitmap.buffer),
                        )
                        pages.append(
                            RenderedPage(index, bitmap.width, bitmap.height, "image/png", png)
                        )
                    finally:
                        bitmap.close()
                finally:
                    page.close()
        finally:
            pdf.close()
    return pages, count


class PageCache:
    """Rendered pages of the last few documents (a reviewer flips back and forth)."""

    def __init__(self, documents: int = 4) -> None:
        self._documents = documents
        self._cache: OrderedDict[str, tuple[list[RenderedPage], int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, document_id: str) -> tuple[list[RenderedPage], int] | None:
        with self._lock:
            if document_id in self._cache:
                self._cache.move_to_end(document_id)
                return self._cache[document_id]
        return None

    def put(self, document_id: str, pages: tuple[list[RenderedPage], int]) -> None:
        with self._lock:
            self._cache[document_id] = pages
            self._cache.move_to_end(document_id)
            while len(self._cache) > self._documents:
                self._cache.popitem(last=False)
