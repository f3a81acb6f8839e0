"""Seeded errors: the emulator's values made wrong at a rate that depends on the score it reports.

The honest extractor (fields.py) reads the bundled samples correctly, so its scores say nothing
about correctness. With ``EmulatorConfig.seeded_errors`` (score -> error rate) each found value
is replaced, with that probability, by a plausible wrong one, so that a score-5 field is rarely
wrong and a score-2 one often, as a real scorer's might be. The draw is deterministic per
(document filename, field path): the same upload always gets the same errors.

- Tables are seeded cell by cell at each cell's own score (``line_items[1].amount``), whatever
  shape the scores are sent in; the rows' values follow their cells.
- What is not found (``None``) stays not found, and objects are left whole: their parts are not
  separate results here.
- Wrong values, as misreadings: a number gets two adjacent digits swapped (``1236.25`` ->
  ``1236.52``) or its last digit changed; an integer ``+ 1``; a boolean flipped; an ISO date a
  day later; an enum the next member; any other string like a number, digits first
  (``INV-1042`` -> ``INV-1024``), else two letters swapped; a list its last element.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from typing import Any

from .fields import FieldResult, schema_type

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def draw(filename: str, path: str) -> float:
    """A uniform number in [0, 1) fixed by (document, field path)."""
    digest = hashlib.sha256(f"{filename}\0{path}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def seed_errors(
    schema: dict[str, Any],
    fields: dict[str, FieldResult],
    rates: dict[int, float],
    filename: str,
) -> dict[str, FieldResult]:
    """``fields`` with the seeded errors of document ``filename`` in them (module docstring)."""
    if not rates:
        return fields
    props: dict[str, Any] = schema.get("properties", {})
    seeded = {}
    for name, result in fields.items():
        prop = props.get(name, {})
        if result.cells is not None:
            columns = prop.get("items", {}).get("properties", {})
            cells = [
                {
                    column: _seeded(
                        cell, columns.get(column, {}), rates, filename, f"{name}[{i}].{column}"
                    )
                    for column, cell in row.items()
                }
                for i, row in enumerate(result.cells)
            ]
            rows = [{column: cell.value for column, cell in row.items()} for row in cells]
            seeded[name] = dataclasses.replace(result, value=rows, cells=cells)
        else:
            seeded[name] = _seeded(result, prop, rates, filename, name)
    return seeded


def _seeded(
    result: FieldResult, prop: dict[str, Any], rates: dict[int, float], filename: str, path: str
) -> FieldResult:
    if result.value is None or isinstance(result.value, dict):
        return result
    if draw(filename, path) >= rates.get(result.score, 0.0):
        return result
    return dataclasses.replace(result, value=wrong_value(result.value, prop))


def wrong_value(value: Any, prop: dict[str, Any]) -> Any:
    """A plausible wrong reading of ``value`` (never equal to it)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return float(_swapped(f"{value:.2f}"))
    if isinstance(value, list):
        items = prop.get("items", {})
        return [*value[:-1], wrong_value(value[-1], items)] if value else value
    text = str(value)
    members = list(prop.get("enum") or ())
    others = [e for e in members if e != value]
    if others:  # the next member (the first other one for a value the enum does not hold)
        return members[(members.index(value) + 1) % len(members)] if value in members else others[0]
    if _ISO_DATE.match(text) and schema_type(prop) == "string":
        try:
            return (datetime.date.fromisoformat(text) + datetime.timedelta(days=1)).isoformat()
        except ValueError:
            pass
    return _swapped(text)


def _swapped(text: str) -> str:
    """A misread: the last two adjacent digits that differ swapped, else the last digit changed,
    else the last two adjacent characters that differ swapped, else a character added."""
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    for i in reversed(digits):
        if i + 1 < len(text) and text[i + 1].isdigit() and text[i] != text[i + 1]:
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if digits:
        i = digits[-1]
        return text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1 :]
    for i in range(len(text) - 2, -1, -1):
        if text[i] != text[i + 1]:
            return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text + "x"
