"""Document pages -> images for the review page (pypdfium2 + a zlib PNG encoder)."""

from __future__ import annotations

import struct
import zlib

import pytest

from doctriage_local.paths import SAMPLES
from doctriage_local.review.render import RenderError, encode_png, render_pages

GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"


def _decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    position, idat, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunk = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + chunk) & 0xFFFFFFFF
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        position += 12 + length
    width, height, depth, color_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8
    return width, height, color_type, zlib.decompress(idat)


def test_encode_png_writes_rows_with_their_filter_byte_and_skips_stride_padding():
    pixels = bytes([255, 0, 0, 0, 255, 0, 9, 9]) + bytes([0, 0, 255, 10, 20, 30, 9, 9])
    width, height, color_type, raw = _decode_png(encode_png(2, 2, 8, 3, pixels))
    assert (width, height, color_type) == (2, 2, 2)
    assert raw == b"\x00" + pixels[:6] + b"\x00" + pixels[8:14]


def test_a_pdf_page_is_rendered_at_its_aspect_ratio():
    pages, count = render_pages(GLOBEX.read_bytes())
    assert count == 1
    [page] = pages
    assert page.index == 0
    assert page.content_type == "image/png"
    width, height, _, raw = _decode_png(page.data)
    assert (width, height) == (page.width, page.height)
    assert height / width == pytest.approx(792 / 612, rel=0.01)  # US Letter
    assert min(raw) == 0
    assert max(raw) == 255


def test_browser_images_are_passed_through():
    png = encode_png(3, 5, 3, 1, bytes(15))
    pages, count = render_pages(png)
    assert count == 1
    assert (pages[0].width, pages[0].height, pages[0].data) == (3, 5, png)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "the file is empty"),
        (b"PK\x03\x04 a docx", "not a PDF, PNG, JPEG or GIF"),
        (b"%PDF-1.7 truncated", "pdfium cannot open this PDF"),
    ],
)
def test_what_cannot_be_shown_is_a_clear_error(data, said):
    with pytest.raises(RenderError, match=said):
        render_pages(data)
