"""Citations -> page index and page-relative box, and robustness to malformed block trees."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doctriage_core.domain.citations import index_blocks, locate


def page(n: int | None, children: list[Any], **geometry: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"block_type": "Page", "children": children}
    if n is not None:
        block["id"] = f"/page/{n}/Page/0"
    block |= geometry or {"polygon": [[0, 0], [500, 0], [500, 1000], [0, 1000]]}
    return block


def text(block_id: str, **geometry: Any) -> dict[str, Any]:
    return {"id": block_id, "block_type": "Text", **geometry}


def doc(*pages: dict[str, Any]) -> dict[str, Any]:
    return {"block_type": "Document", "children": list(pages), "metadata": {}}


TREE = doc(
    page(0, [text("/page/0/Text/1", bbox=[50, 100, 250, 200])]),
    page(
        1,
        [
            {
                "id": "/page/1/TableGroup/0",
                "block_type": "TableGroup",
                "bbox": [0, 0, 500, 500],
                "children": [
                    text(
                        "/page/1/Table/2", polygon=[[100, 500], [400, 500], [400, 600], [100, 600]]
                    )
                ],
            },
            text("/page/1/Text/3"),
        ],
    ),
)


@pytest.mark.parametrize(
    ("citations", "expected_page", "expected_bbox"),
    [
        (["/page/0/Text/1"], 0, {"x": 0.1, "y": 0.1, "width": 0.4, "height": 0.1}),
        (["/page/1/Table/2"], 1, {"x": 0.2, "y": 0.5, "width": 0.6, "height": 0.1}),  # polygon
        (["/page/1/TableGroup/0"], 1, {"x": 0.0, "y": 0.0, "width": 1.0, "height": 0.5}),
        (["/page/7/Text/1"], 7, None),  # not in the tree: page from the id
        (["block_123"], None, None),
        ([], None, None),
        (
            ["block_9", "/page/1/Table/2", "/page/0/Text/1"],
            1,
            {"x": 0.2, "y": 0.5, "width": 0.6, "height": 0.1},
        ),
        (
            ["/page/1/Text/3", "/page/0/Text/1"],
            0,
            {"x": 0.1, "y": 0.1, "width": 0.4, "height": 0.1},
        ),
        (["/page/1/Text/3"], 1, None),  # known block without geometry
        (["block_1", "/page/3/Text/1"], 3, None),
    ],
)
def test_locate(citations: list[str], expected_page: int | None, expected_bbox: Any) -> None:
    found_page, bbox = locate(citations, index_blocks(TREE))
    assert found_page == expected_page
    assert bbox == (pytest.approx(expected_bbox) if expected_bbox else None)


def test_page_index_is_the_original_page_from_the_page_id() -> None:
    # page_range=5-6: the tree's first page is original page 5
    tree = doc(page(5, [text("/page/5/Text/0", bbox=[0, 0, 10, 10])]))
    assert locate(["/page/5/Text/0"], index_blocks(tree))[0] == 5


def test_page_index_falls_back_to_position() -> None:
    tree = doc(page(None, []), page(None, [text("t", bbox=[0, 0, 50, 100])]))
    pg, bbox = locate(["t"], index_blocks(tree))
    assert pg == 1
    assert bbox == pytest.approx({"x": 0.0, "y": 0.0, "width": 0.1, "height": 0.1})


def test_page_size_from_bbox_with_origin_offset() -> None:
    tree = doc(page(0, [text("t", bbox=[110, 220, 160, 320])], bbox=[10, 20, 210, 420]))
    assert locate(["t"], index_blocks(tree))[1] == pytest.approx(
        {"x": 0.5, "y": 0.5, "width": 0.25, "height": 0.25}
    )


def test_box_is_clamped_to_the_page() -> None:
    tree = doc(page(0, [text("t", bbox=[-50, 900, 600, 1200])]))
    assert locate(["t"], index_blocks(tree))[1] == pytest.approx(
        {"x": 0.0, "y": 0.9, "width": 1.0, "height": 0.1}
    )


@pytest.mark.parametrize(
    "tree",
    [
        None,
        [],
        "tree",
        {"children": "x"},
        {"children": [1, None, "x", [], {"id": 5}]},
        doc(page(0, [text("t", bbox=["a", 0, 1, 1])])),
        doc(page(0, [text("t", bbox=[5, 5, 1, 1])])),  # inverted
        doc(page(0, [text("t", polygon=[[0, 0], [1]])])),
        doc(page(0, [text("t", polygon="square")])),
        doc(page(0, [text("t", bbox=[0, 0, 1, 1])], polygon=[[0, 0], [0, 0], [0, 0], [0, 0]])),
        doc(page(0, [text("t", bbox=[0, 0, 1, 1])], bbox=None)),
        doc(page(0, [text("t", bbox=[0, 0, 1, float("nan")])])),
        doc(page(0, [text("t", bbox=[True, 0, 1, 1])])),
    ],
    ids=repr,
)
def test_malformed_trees_do_not_crash(tree: Any) -> None:
    pg, bbox = locate(["t", "/page/0/Text/1"], index_blocks(tree))
    assert bbox is None
    assert pg in (None, 0)


def test_deep_and_shared_trees_do_not_crash() -> None:
    deep: dict[str, Any] = {"id": "leaf", "block_type": "Text"}
    for i in range(20_000):
        deep = {"id": f"n{i}", "block_type": "Group", "children": [deep]}
    assert "leaf" in index_blocks(doc(page(0, [deep])))

    cyclic: dict[str, Any] = {"id": "c", "block_type": "Group", "children": []}
    cyclic["children"].append(cyclic)
    assert set(index_blocks(cyclic)) == {"c"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
blocks = st.recursive(
    st.fixed_dictionaries(
        {},
        optional={
            "id": st.sampled_from(["t", "/page/0/Text/1", "/page/2/Page/0"]) | st.integers(),
            "block_type": st.sampled_from(["Page", "Text", "Document"]),
            "bbox": st.lists(st.floats(-1e3, 1e4) | st.integers(), max_size=5) | json_values,
            "polygon": st.lists(st.lists(st.floats(-1e3, 1e4), max_size=3), max_size=5)
            | json_values,
        },
    ),
    lambda inner: st.fixed_dictionaries(
        {"block_type": st.sampled_from(["Page", "Group"]), "children": st.lists(inner, max_size=4)},
        optional={
            "id": st.just("/page/1/Page/0"),
            "polygon": st.just([[0, 0], [10, 0], [10, 10], [0, 10]]),
        },
    ),
    max_leaves=15,
)


@given(tree=blocks | json_values)
def test_any_tree_gives_a_page_and_a_box_in_range(tree: Any) -> None:
    pg, bbox = locate(["t", "/page/0/Text/1", "x"], index_blocks(tree))
    assert pg is None or (isinstance(pg, int) and pg >= 0)
    if bbox is not None:
        assert set(bbox) == {"x", "y", "width", "height"}
        assert all(0.0 <= v <= 1.0 for v in bbox.values())
        assert bbox["x"] + bbox["width"] <= 1.0 + 1e-9
