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
from collections.abc import Iterable
from typing import Any

from doctriage_core.errors import DatalabMalformedResponse

SCORE_SUFFIX = "_score"


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
    return any(field_score(extracted, name)[0] is not None for name in fields)
