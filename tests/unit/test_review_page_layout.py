"""The review page's layout pieces: a card's crop of the page, box tags kept on the page."""

from __future__ import annotations

import re

import pytest

from doctriage_local.review.decision import Node
from doctriage_local.review.page import CROP_MIN_WIDTH, _boxes, _crop_html


def _styles(html: str) -> list[dict[str, float]]:
    """Each style attribute's percentages, by property."""
    return [
        {k: float(v) for k, v in re.findall(r"([a-z-]+):(-?[\d.]+)%", style)}
        for style in re.findall(r'style="([^"]*)"', html)
    ]


@pytest.mark.parametrize(
    "box",
    [
        {"x": 0.40, "y": 0.30, "width": 0.10, "height": 0.02},  # a narrow field mid-page
        {"x": 0.85, "y": 0.97, "width": 0.15, "height": 0.03},  # in the bottom right corner
        {"x": 0.00, "y": 0.00, "width": 0.90, "height": 0.05},  # nearly the page's width
    ],
)
def test_the_crop_shows_the_page_around_the_box_with_the_box_marked(box):
    field = {"value": "x", "page": 0, "bbox": box}
    html = _crop_html(3, field, "doc-1", {0: (1100, 1400)})
    crop, image, mark = _styles(html)
    assert 'src="/doc/doc-1/page/0"' in html
    crop_w = 100 / image["width"]
    assert crop_w >= min(1.0, CROP_MIN_WIDTH) - 1e-6
    left = -image["left"] / 100 * crop_w
    assert 0 <= left <= 1 - crop_w + 1e-6  # the crop never runs off the page
    # The mark, in crop percent, is the box in page fractions.
    assert left + mark["left"] / 100 * crop_w == pytest.approx(box["x"], abs=1e-4)
    assert mark["width"] / 100 * crop_w == pytest.approx(box["width"], abs=1e-4)
    ratio = re.search(r"aspect-ratio:([\d.]+) / ([\d.]+)", html)
    assert ratio
    crop_h = float(ratio[2]) / 1400
    top = -image["top"] / 100 * crop_h
    assert 0 <= top <= 1 - crop_h + 1e-3
    assert top + mark["top"] / 100 * crop_h == pytest.approx(box["y"], abs=1e-3)
    assert crop == {}  # only the aspect ratio


def test_no_crop_without_a_box_or_the_page_size():
    assert _crop_html(0, {"value": "x", "page": None, "bbox": None}, "d", {0: (10, 10)}) == ""
    boxed = {"value": "x", "page": 1, "bbox": {"x": 0, "y": 0, "width": 0.1, "height": 0.1}}
    assert _crop_html(0, boxed, "d", {0: (10, 10)}) == ""  # page 1 was not rendered


def test_a_box_at_the_right_edge_has_its_tag_on_its_left():
    def node(x: float) -> Node:
        bbox = {"x": x, "y": 0.1, "width": 0.1, "height": 0.02}
        result = {"value": 1, "confidence": 0.2, "page": 0, "bbox": bbox}
        return Node(path=f"f{x}", field=f"f{x}", result=result, prop=None, leaf=True)

    nodes = {"left": node(0.1), "right": node(0.8)}
    html = _boxes(0, nodes, {"left": 0, "right": 1}, 0.8)
    assert 'class="box conf-low" id="box-0"' in html
    assert 'class="box conf-low tag-left" id="box-1"' in html
