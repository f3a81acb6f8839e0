"""Reading Datalab's result format: the extracted object, field scores, "have scores arrived?".

One reader for two callers: the poll step asks :func:`has_scores` whether to stop waiting, the
evaluation reads the same scores with :func:`read_score`. They must agree, or the poll stops on a
score the evaluation then refuses (a ``{"score": null}`` placeholder used to end the wait and give
``scores_unavailable``). So a poll is scored exactly when some field carries a score that
:func:`read_score` accepts.

Pure: no I/O. ``extraction_score_average`` alone is not taken as "scored": evaluation does not
read field scores from it, and a null or early average must not end the wait.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from doctriage_core.domain.schemas import object_properties, row_schema
from doctriage_core.errors import DatalabMalformedResponse

SCORE_SUFFIX = "_score"
CITATIONS_SUFFIX = "_citations"
# A property schema without these keys cannot have parts (columns, nested properties).
_NESTING_KEYS = frozenset({"items", "properties", "$ref"})


def parse_extraction(result: object) -> dict[str, Any]:
    """The extracted object from ``extraction_schema_json`` (a JSON string, or already a dict)."""
    if not isinstance(result, dict):
        raise DatalabMalformedResponse("the Datalab result is not a JSON object")
    raw = result.get("extraction_schema_json")
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw, parse_constant=lambda _: None)
        except ValueError as exc:
            raise DatalabMalformedResponse(f"extraction_schema_json is not JSON: {exc}") from exc
    else:
        data = raw
    if not isinstance(data, dict):
        raise DatalabMalformedResponse(
            f"extraction_schema_json must be a JSON object, got {type(data).__name__}"
        )
    return data


def read_score(raw: object) -> tuple[int | None, str | None]:
    """(score, reasoning) from ``P_score``; score None when unusable.

    Usable: an object whose ``score`` is an integer 1..5 (an integral float such as ``4.0``
    counts as 4; ``3.5``, ``"4"``, null, booleans and out-of-range numbers do not). ``reasoning``
    is kept when it is a string, whether or not the score is usable.
    """
    if not isinstance(raw, dict):
        return None, None
    reasoning = raw.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, str) else None
    score = raw.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float):
        return None, reasoning
    if isinstance(score, float) and not score.is_integer():
        return None, reasoning
    if not 1 <= score <= 5:
        return None, reasoning
    return int(score), reasoning


def field_score(extracted: dict[str, Any], name: str) -> tuple[int | None, str | None]:
    """The usable score of property ``name`` (``<name>_score``), by :func:`read_score`'s rules."""
    return read_score(extracted.get(f"{name}{SCORE_SUFFIX}"))


def read_citations(raw: object) -> list[str]:
    return [c for c in raw if isinstance(c, str)] if isinstance(raw, list) else []


@dataclass(slots=True)
class RawNode:
    """One property as Datalab sent it, read by its schema.

    ``value`` is the property's value with the score and citation keys of its declared columns
    (or nested properties) taken out of each row (or object), recursively; nothing undeclared is
    touched. ``rows`` (an array of objects: one entry per row, None for a row that is not an
    object) and ``properties`` (a nested object) hold the parts, each read the same way.
    """

    value: Any
    score: int | None
    reasoning: str | None
    citations: list[str]
    rows: list[dict[str, RawNode] | None] | None = None
    properties: dict[str, RawNode] | None = None


def _read_parts(
    schema: dict[str, Any], declared: dict[str, Any], raw: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, RawNode]]:
    """(the object without its parts' score/citation keys, each declared part read)."""
    parts = {name: read_node(schema, prop, raw, name) for name, prop in declared.items()}
    cleaned = dict(raw)
    for name, part in parts.items():
        for key in (f"{name}{SCORE_SUFFIX}", f"{name}{CITATIONS_SUFFIX}"):
            if key not in declared:
                cleaned.pop(key, None)
        if name in cleaned:
            cleaned[name] = part.value
    return cleaned, parts


def read_node(
    schema: dict[str, Any], prop: object, container: dict[str, Any], name: str
) -> RawNode:
    """Property ``name`` of ``container`` (the extraction, a row, an object) by its schema.

    Its own keys are ``name``, ``name_score`` and ``name_citations`` beside it (array-level, for
    a list); a column's are ``col``, ``col_score``, ``col_citations`` inside each row (per cell);
    either, both or neither may be present. Never strips suffixes: only declared names are read.
    """
    raw = container.get(name)
    score, reasoning = read_score(container.get(f"{name}{SCORE_SUFFIX}"))
    citations = read_citations(container.get(f"{name}{CITATIONS_SUFFIX}"))
    if isinstance(prop, dict) and not prop.keys() & _NESTING_KEYS:
        return RawNode(raw, score, reasoning, citations)  # a flat field: the common case
    rows = row_schema(schema, prop)
    if rows is not None:
        columns = object_properties(schema, rows) or {}
        read: list[dict[str, RawNode] | None] = []
        value: list[Any] = []
        for row in raw if isinstance(raw, list) else ():
            if isinstance(row, dict):
                cleaned, cells = _read_parts(schema, columns, row)
                value.append(cleaned)
                read.append(cells)
            else:
                value.append(row)
                read.append(None)
        kept = value if isinstance(raw, list) else raw
        return RawNode(kept, score, reasoning, citations, rows=read)
    declared = object_properties(schema, prop)
    if declared is not None and isinstance(raw, dict):
        cleaned, parts = _read_parts(schema, declared, raw)
        return RawNode(cleaned, score, reasoning, citations, properties=parts)
    if declared is not None:
        return RawNode(raw, score, reasoning, citations, properties={})
    return RawNode(raw, score, reasoning, citations)


def _nested_scored(value: object) -> bool:
    """Some object inside ``value`` has a key ``P`` with a usable ``P_score`` beside it."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                if (
                    key.endswith(SCORE_SUFFIX)
                    and key[: -len(SCORE_SUFFIX)] in node
                    and read_score(item)[0] is not None
                ):
                    return True
                if isinstance(item, list | dict):
                    stack.append(item)
    return False


def cost_cents(body: dict[str, Any]) -> float | None:
    """What Datalab charged for the request (``cost_breakdown.final_cost_cents``), or None.

    None on the poll that first reports ``complete`` (Datalab fills it in on a later fetch) and
    whenever the body carries no usable figure: a cost is never guessed.
    """
    breakdown = body.get("cost_breakdown")
    cents = breakdown.get("final_cost_cents") if isinstance(breakdown, dict) else None
    if isinstance(cents, bool) or not isinstance(cents, int | float):
        return None
    return float(cents) if math.isfinite(cents) and cents >= 0 else None


def has_scores(body: dict[str, Any], names: Iterable[str] | None = None) -> bool:
    """True when some field of a complete poll body carries a score evaluation would accept.

    ``names`` are the schema's properties; without them (the poll step does not read the
    schema) every key ``P`` of the extraction that has a ``P_score`` beside it is a field.
    Never raises: an unreadable extraction has no scores (evaluation then reports why).
    """
    try:
        extracted = parse_extraction(body)
    except DatalabMalformedResponse:
        return False
    fields = (
        list(names)
        if names is not None
        else [
            key[: -len(SCORE_SUFFIX)]
            for key in extracted
            if key.endswith(SCORE_SUFFIX) and key[: -len(SCORE_SUFFIX)] in extracted
        ]
    )
    if any(field_score(extracted, name)[0] is not None for name in fields):
        return True
    # Cell scores (``amount_score`` inside each row of a list, ``city_score`` inside an object).
    nested = names if names is not None else list(extracted)
    return any(_nested_scored(extracted.get(name)) for name in nested)
