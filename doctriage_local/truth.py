"""Labelled truth: a record's fields compared with their known values, as trust observations.

Pure functions, no I/O (``doctriage eval`` in cli/eval_truth.py runs the documents). A labelled
document ``name.pdf`` has ``name.expected.json`` beside it: one JSON object, schema field ->
its true value (an array of objects as a list of rows, an object as an object). A field the
file leaves out is unlabelled (no observation); ``null`` says the document does not hold it.

Each labelled field becomes a ``trust.Observation`` at the score the record gives it, as a
reviewer's decision would (trust.py's rules take it from there):

- Equal means: numbers within ``NUMBER_TOLERANCE`` (half a cent: amounts are printed to the
  cent); strings with whitespace runs collapsed, ends trimmed and case folded (``"ACME  Corp"``
  is ``"acme corp"``: the case of a name or code is rarely what a reviewer corrects); ``None``
  only to ``None``; lists element by element; objects key by key; nothing across types.
- Tables (a field with ``items``): the table itself is one observation at its own score (right
  only if every row was read and no row was invented), and each cell of the truth is one at the
  cell's score. Rows are matched by best assignment (``assign``): the most cells in agreement,
  ties to the nearest row number, so a table read in another order still counts cell by cell.
  A truth row without a partner (omitted) counts every cell wrong, without a score (no score can
  vouch for a cell that is not there); a row the record has and the truth does not (invented)
  counts every cell wrong at its own score.
- ``audit`` is true on the fields of ``auto`` records: with the truth known, every field of an
  auto document has been checked, which is what an audit sample measures.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from doctriage_local.trust import Observation

TRUTH_SUFFIX = ".expected.json"
NUMBER_TOLERANCE = 0.005


class TruthError(ValueError):
    """An expected file that does not fit its record's fields."""


def same(extracted: Any, expected: Any) -> bool:
    """Whether an extracted value is its expected one (the module docstring's rules)."""
    if isinstance(extracted, bool) or isinstance(expected, bool):
        return extracted is expected
    if isinstance(extracted, int | float) and isinstance(expected, int | float):
        return math.isclose(extracted, expected, rel_tol=0.0, abs_tol=NUMBER_TOLERANCE)
    if isinstance(extracted, str) and isinstance(expected, str):
        return _normalised(extracted) == _normalised(expected)
    if isinstance(extracted, list) and isinstance(expected, list):
        return len(extracted) == len(expected) and all(map(same, extracted, expected))
    if isinstance(extracted, dict) and isinstance(expected, dict):
        return extracted.keys() == expected.keys() and all(
            same(extracted[k], expected[k]) for k in expected
        )
    return extracted is None and expected is None


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def assign(agreement: list[list[int]]) -> list[tuple[int, int]]:
    """Best row assignment: (truth row, record row) pairs that maximise the total of
    ``agreement[t][r]`` (cells in agreement), ties broken toward ``t == r``; pairs with nothing
    in agreement are left out (an omitted row and an invented one, not a match).

    The Hungarian method (Kuhn-Munkres with potentials), O(n^2 m): exact for tables of any
    size, where trying every permutation would not be.
    """
    if not agreement or not agreement[0]:
        return []
    n, m = len(agreement), len(agreement[0])
    flip = n > m  # the method wants no more rows than columns
    rows, cols = (m, n) if flip else (n, m)
    unit = rows * cols + 1  # one cell of agreement outweighs every tie-break together

    def cost(i: int, j: int) -> int:
        t, r = (j, i) if flip else (i, j)
        return -agreement[t][r] * unit + abs(t - r)

    matched = _hungarian(rows, cols, cost)
    pairs = [((j, i) if flip else (i, j)) for i, j in enumerate(matched)]
    return sorted((t, r) for t, r in pairs if agreement[t][r] > 0)


def _hungarian(n: int, m: int, cost: Any) -> list[int]:
    """For each of ``n`` rows the column (of ``m`` >= ``n``) of a minimum-cost assignment."""
    u, v = [0.0] * (n + 1), [0.0] * (m + 1)
    owner, way = [0] * (m + 1), [0] * (m + 1)  # owner[j]: the row (1-based) column j has
    for i in range(1, n + 1):
        owner[0], j0 = i, 0
        least, used = [math.inf] * (m + 1), [False] * (m + 1)
        while owner[j0] != 0:  # grow a path of tight edges from row i to a free column
            used[j0] = True
            i0, delta, j1 = owner[j0], math.inf, 0
            for j in range(1, m + 1):
                if used[j]:
                    continue
                reduced = cost(i0 - 1, j - 1) - u[i0] - v[j]
                if reduced < least[j]:
                    least[j], way[j] = reduced, j0
                if least[j] < delta:
                    delta, j1 = least[j], j
            for j in range(m + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    least[j] -= delta
            j0 = j1
        while j0:  # flip the path: each column on it goes to the row before
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    matched = [0] * n
    for j in range(1, m + 1):
        if owner[j]:
            matched[owner[j] - 1] = j - 1
    return matched


def observations(record: dict[str, Any], expected: dict[str, Any]) -> list[Observation]:
    """Every labelled field of ``expected`` checked against ``record`` (the module docstring)."""
    if not isinstance(expected, dict):
        raise TruthError("the expected values must be a JSON object: field -> true value")
    document_type = str(record.get("document_type") or "unknown")
    audit = record.get("review_status") == "auto"
    fields = record.get("fields") or {}
    return [
        Observation(document_type, path, score, correct, audit)
        for path, score, correct in _checked(fields, expected, "")
    ]


def _checked(
    fields: dict[str, Any], expected: dict[str, Any], prefix: str
) -> Iterator[tuple[str, int | None, bool]]:
    for name, truth in expected.items():
        path = f"{prefix}{name}"
        field = fields.get(name)
        if not isinstance(field, dict):
            raise TruthError(f"{path}: the record has no such field (is it in the schema?)")
        if field.get("items") is not None and isinstance(truth, list | None):
            yield from _table(path, field, truth or [])
        elif field.get("properties") is not None and isinstance(truth, dict):
            yield from _checked(field["properties"], truth, f"{path}.")
        else:
            yield path, field.get("score"), same(field.get("value"), truth)


def _table(
    path: str, field: dict[str, Any], truth: list[Any]
) -> Iterator[tuple[str, int | None, bool]]:
    if not all(isinstance(row, dict) for row in truth):
        raise TruthError(f"{path}: a table's true value is a list of rows (objects)")
    rows: list[dict[str, Any]] = field["items"]

    def agrees(cell: Any, value: Any) -> bool:
        return isinstance(cell, dict) and same(cell.get("value"), value)

    agreement = [[sum(agrees(row.get(c), v) for c, v in t.items()) for row in rows] for t in truth]
    pairs = assign(agreement)
    complete = len(pairs) == len(truth) == len(rows) and all(
        agreement[t][r] == len(truth[t]) for t, r in pairs
    )
    yield path, field.get("score"), complete
    partner = dict(pairs)
    for t, true_row in enumerate(truth):
        r = partner.get(t)
        for column, value in true_row.items():
            if r is None:  # omitted: named past the record's rows, so it never aliases a cell
                yield f"{path}[{len(rows) + t}].{column}", None, False
            else:
                cell = rows[r].get(column) or {}
                yield f"{path}[{r}].{column}", cell.get("score"), agrees(cell, value)
    invented = set(range(len(rows))) - set(partner.values())
    for r in sorted(invented):
        for column, cell in rows[r].items():
            yield f"{path}[{r}].{column}", cell.get("score"), False
