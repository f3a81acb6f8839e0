"""Citations -> page and box.

Datalab cites the blocks a value came from by id (``/page/{n}/{BlockType}/{i}``, 0-based original
page index). With ``output_format=json`` the result carries the block tree: every node has ``id``,
``block_type``, ``bbox`` ([x0, y0, x1, y1], PDF points) and/or ``polygon`` ([[x, y] x 4]) and
``children``; page nodes' boxes give the page size. We index the tree once, then turn a field's
citations into the page of its first resolvable block and a page-relative box in [0, 1] that a
reviewer can draw over the page image.

Anything malformed in the tree is skipped, never raised: a bad box only costs the overlay.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

_PAGE_ID = re.compile(r"^/page/(\d+)/")

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(frozen=True)
class BlockLocation:
    page: int | None
    block: dict[str, Any]
    page_box: Box | None

    @property
    def box(self) -> Box | None:
        # Computed on demand: a result has thousands of blocks and a few hundred citations.
        return block_box(self.block)


BlockIndex = dict[str, BlockLocation]


def page_from_id(block_id: str) -> int | None:
    match = _PAGE_ID.match(block_id)
    return int(match.group(1)) if match else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def block_box(block: dict[str, Any]) -> Box | None:
    """[x0, y0, x1, y1] from ``bbox``, else the extent of ``polygon``; None when unusable."""
    bbox = block.get("bbox")
    if isinstance(bbox, list | tuple) and len(bbox) == 4:
        nums = [_number(v) for v in bbox]
        if all(n is not None for n in nums):
            x0, y0, x1, y1 = (n for n in nums if n is not None)
            if x1 >= x0 and y1 >= y0:
                return (x0, y0, x1, y1)
    polygon = block.get("polygon")
    if isinstance(polygon, list | tuple) and polygon:
        xs: list[float] = []
        ys: list[float] = []
        for point in polygon:
            if not isinstance(point, list | tuple) or len(point) != 2:
                return None
            x, y = _number(point[0]), _number(point[1])
            if x is None or y is None:
                return None
            xs.append(x)
            ys.append(y)
        return (min(xs), min(ys), max(xs), max(ys))
    return None


def _has_area(box: Box) -> bool:
    width, height = box[2] - box[0], box[3] - box[1]
    return math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0


def index_blocks(tree: object) -> BlockIndex:
    """id -> (page index, block, page box) for every block with a string id.

    Page index: from the enclosing Page block's id (its original page number), else from the
    block's own id, else the Page block's position among the pages. Iterative with a seen-set,
    so neither a very deep tree nor a node reachable twice can hang or blow the stack.
    """
    index: BlockIndex = {}
    stack: list[tuple[Any, int | None, Box | None]] = [(tree, None, None)]
    seen: set[int] = set()
    page_position = 0
    while stack:
        node, page, page_box = stack.pop()
        if not isinstance(node, dict) or id(node) in seen:
            continue
        seen.add(id(node))
        node_id = node.get("id")
        node_id = node_id if isinstance(node_id, str) else None
        if node.get("block_type") == "Page":
            own = page_from_id(node_id) if node_id else None
            page = own if own is not None else page_position
            page_position += 1
            box = block_box(node)
            page_box = box if box and _has_area(box) else None
        if node_id is not None and node_id not in index:
            block_page = page if page is not None else page_from_id(node_id)
            index[node_id] = BlockLocation(block_page, node, page_box)
        children = node.get("children")
        if isinstance(children, list):
            # reversed: pages are visited in document order, so positions count correctly
            stack.extend((child, page, page_box) for child in reversed(children))
    return index


def relative_bbox(box: Box, page_box: Box) -> dict[str, float]:
    """Page-relative {x, y, width, height}, clamped to the page."""
    px0, py0, px1, py1 = page_box
    pw, ph = px1 - px0, py1 - py0

    def clamp(v: float) -> float:
        return 0.0 if math.isnan(v) else min(1.0, max(0.0, v))

    x0, x1 = clamp((box[0] - px0) / pw), clamp((box[2] - px0) / pw)
    y0, y1 = clamp((box[1] - py0) / ph), clamp((box[3] - py0) / ph)
    return {"x": x0, "y": y0, "width": max(0.0, x1 - x0), "height": max(0.0, y1 - y0)}


def locate(citations: list[str], index: BlockIndex) -> tuple[int | None, dict[str, float] | None]:
    """(page, bbox) for a field's citations.

    The first cited block found in the tree with a usable box wins; else the first found in the
    tree (page only); else the first id that names its page (``/page/{n}/...``); else (None, None).
    """
    first_known: BlockLocation | None = None
    for block_id in citations:
        loc = index.get(block_id)
        if loc is None:
            continue
        box = loc.box if loc.page_box is not None else None
        if box is not None and loc.page_box is not None:
            return loc.page, relative_bbox(box, loc.page_box)
        if first_known is None:
            first_known = loc
    if first_known is not None:
        return first_known.page, None
    for block_id in citations:
        page = page_from_id(block_id)
        if page is not None:
            return page, None
    return None, None
