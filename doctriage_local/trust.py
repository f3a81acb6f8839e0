"""Measured trust: reviewers' decisions as observations, and what they say about Datalab's scores.

Pure functions, no I/O (``doctriage trust`` in cli/trust.py reads and prints). Local tooling, not
the Lambda layer: no function uses it, and the layer's import time is budgeted.

- An observation is a reviewer's decision on one field or cell path of a record: a path in
  ``review.accepted`` is correct; a path in ``review.corrected`` is wrong unless the corrected
  value equals the extracted one (a confirmation). Undecided fields are not observations.
- Cells count by path (``line_items[1].amount``) and are pooled per column for a field's
  statistics and recommendation: ``invoice/line_items[].amount``, where a column's
  ``x-review-threshold`` lives.
- Calibration uses the score's confidence (``evaluation.confidence_of``). A decided field without
  a usable score counts as an observation (and in the audit) but in no score level.
- ``recommended_min_score``: the lowest score level *seen* for the field whose observations at or
  above it have a 95 % Wilson upper bound on the error rate at most the target. Levels never seen
  are never recommended: no evidence says anything about them.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from doctriage_core.domain.evaluation import confidence_of, is_low_confidence

Z95 = 1.96  # the two-sided 95 % normal quantile, as Wilson intervals are usually quoted
SCORES = (1, 2, 3, 4, 5)
MIN_OBSERVATIONS = 30
MIN_SCORE_LEVELS = 3
MIN_AUROC = 0.55
DEFAULT_TARGET_ERROR = 0.01
_PART = re.compile(r"^([^\[\]]+)(?:\[(\d+)\])?$")  # a name, or a name and a row: line_items[1]
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class Observation:
    document_type: str
    path: str  # as decided: line_items[1].amount
    score: int | None
    correct: bool
    audit: bool  # from an audit_sample record

    @property
    def field(self) -> str:
        """The key its field's statistics go under: ``invoice/line_items[].amount``."""
        return f"{self.document_type}/{_INDEX.sub('[]', self.path)}"


# ---------------------------------------------------------------------- observations


def field_at(fields: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The field or cell result a path names in a record's ``fields``, else None.

    ``total``, ``address.city`` (``properties``), ``line_items[1].amount`` (row 1 of ``items``);
    a row itself (``line_items[1]``) is not a field.
    """
    named: Any = fields  # name -> field result, at the current level
    node: Any = None
    for part in path.split("."):
        match = _PART.match(part)
        if match is None or not isinstance(named, dict):
            return None
        name, row = match.group(1), match.group(2)
        node = named.get(name)
        if row is None:
            named = node.get("properties") if isinstance(node, dict) else None
            continue
        rows = node.get("items") if isinstance(node, dict) else None
        if not isinstance(rows, list) or int(row) >= len(rows):
            return None
        named, node = rows[int(row)], None
    return node if isinstance(node, dict) and "value" in node else None


def observations(records: Iterable[dict[str, Any]]) -> Iterator[Observation]:
    """Every decided field of every record, in record order (accepted, then corrected)."""
    for record in records:
        review = record.get("review")
        if not isinstance(review, dict):
            continue
        fields = record.get("fields") or {}
        document_type = str(record.get("document_type") or "unknown")
        audit = record.get("audit_sample") is True
        corrected = review.get("corrected") or {}
        decided = [(p, None) for p in review.get("accepted") or () if p not in corrected]
        decided += list(corrected.items())
        for path, value in decided:
            field = field_at(fields, path)
            if field is None:
                continue  # a decision on nothing the record holds: no evidence of a score
            correct = path not in corrected or value == field.get("value")
            yield Observation(document_type, path, field.get("score"), correct, audit)


# ---------------------------------------------------------------------- statistics


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (``n`` > 0)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson: need 0 <= successes <= n and n > 0, got {successes}/{n}")
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def by_score(obs: Iterable[Observation]) -> dict[int, dict[str, Any]]:
    """Per score level seen: n, correct, accuracy and its 95 % Wilson interval."""
    n: Counter[int] = Counter()
    correct: Counter[int] = Counter()
    for o in obs:
        if o.score is not None:
            n[o.score] += 1
            correct[o.score] += o.correct
    return {
        s: {
            "n": n[s],
            "correct": correct[s],
            "accuracy": correct[s] / n[s],
            "ci95": list(wilson(correct[s], n[s])),
        }
        for s in sorted(n)
    }


def ece(levels: dict[int, dict[str, Any]]) -> float | None:
    """Expected calibration error over score bins: sum of n_s/N * |accuracy_s - confidence_s|."""
    total = sum(level["n"] for level in levels.values())
    if total == 0:
        return None
    return sum(
        level["n"] / total * abs(level["accuracy"] - confidence_of(s))
        for s, level in levels.items()
    )


def auroc(levels: dict[int, dict[str, Any]]) -> float | None:
    """How well confidence ranks correct above wrong: P(a correct one scores higher than a wrong
    one), ties counting half; None when either class is empty."""
    right = {s: level["correct"] for s, level in levels.items()}
    wrong = {s: level["n"] - level["correct"] for s, level in levels.items()}
    pairs = sum(right.values()) * sum(wrong.values())
    if pairs == 0:
        return None
    wins = sum(
        right[a] * wrong[b] * (1.0 if a > b else 0.5 if a == b else 0.0)
        for a in levels
        for b in levels
    )
    return wins / pairs


def threshold_for(min_score: int) -> float:
    """A review threshold under which exactly the scores >= ``min_score`` pass.

    Found with the evaluation's own rule (``is_low_confidence``): the confidence of
    ``min_score`` when that works, else halfway down to the level below (1.0 would force review
    of every field, so score 5 alone passes at 0.875).
    """
    candidates = [confidence_of(min_score)]
    if min_score > SCORES[0]:
        candidates.append((confidence_of(min_score - 1) + confidence_of(min_score)) / 2)
    for threshold in candidates:
        passing = {
            s for s in SCORES if not is_low_confidence(confidence_of(s), threshold, no_scores=False)
        }
        if passing == {s for s in SCORES if s >= min_score}:
            return threshold
    raise AssertionError(f"no threshold lets exactly scores >= {min_score} pass")


def recommend(
    levels: dict[int, dict[str, Any]], *, target_error: float
) -> tuple[bool, float | None, int | None]:
    """(can_rank, auroc, recommended_min_score) for one field's score levels."""
    n = sum(level["n"] for level in levels.values())
    area = auroc(levels)
    can_rank = (
        n >= MIN_OBSERVATIONS
        and len(levels) >= MIN_SCORE_LEVELS
        and area is not None
        and area >= MIN_AUROC
    )
    if not can_rank:
        return False, area, None
    for s in sorted(levels):
        above = [level for t, level in levels.items() if t >= s]
        count = sum(level["n"] for level in above)
        errors = count - sum(level["correct"] for level in above)
        if wilson(errors, count)[1] <= target_error:
            return True, area, s
    return True, area, None


def review_load(levels: dict[int, dict[str, Any]], min_score: int | None) -> float | None:
    """The share of the field's observed fields a recommendation sends to review (None: none)."""
    n = sum(level["n"] for level in levels.values())
    if n == 0:
        return None
    if min_score is None:
        return 1.0
    return sum(level["n"] for s, level in levels.items() if s < min_score) / n


def _audit(obs: list[Observation]) -> dict[str, Any]:
    audited = [o for o in obs if o.audit]
    errors = sum(not o.correct for o in audited)
    n = len(audited)
    return {
        "n": n,
        "errors": errors,
        "rate": errors / n if n else None,
        "ci95": list(wilson(errors, n)) if n else None,
    }


def report(
    records: Iterable[dict[str, Any]], *, target_error: float = DEFAULT_TARGET_ERROR
) -> dict[str, Any]:
    """The ``doctriage trust --json`` object (shape in the module docstring of cli/trust.py)."""
    return summarize(observations(records), target_error=target_error)


def summarize(
    observed: Iterable[Observation], *, target_error: float = DEFAULT_TARGET_ERROR
) -> dict[str, Any]:
    """The report over observations from anywhere: reviewers' decisions (``report``) or labelled
    truth (doctriage_local/truth.py)."""
    if not 0.0 < target_error < 1.0:
        raise ValueError(f"the target error must be in (0, 1), got {target_error}")
    obs = list(observed)
    levels = by_score(obs)
    per_field: dict[str, list[Observation]] = defaultdict(list)
    for o in obs:
        per_field[o.field].append(o)
    fields = {}
    for key in sorted(per_field):
        field_levels = by_score(per_field[key])
        can_rank, area, min_score = recommend(field_levels, target_error=target_error)
        fields[key] = {
            "n": len(per_field[key]),
            "by_score": _keyed(field_levels),
            "auroc": area,
            "can_rank": can_rank,
            "recommended_min_score": min_score,
            "recommended_threshold": None if min_score is None else threshold_for(min_score),
            "review_load": review_load(field_levels, min_score),
        }
    return {
        "observations": len(obs),
        "target_error": target_error,
        "by_score": _keyed(levels),
        "ece": ece(levels),
        "fields": fields,
        "audit": _audit(obs),
    }


def _keyed(levels: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(s): level for s, level in levels.items()}  # JSON object keys are strings


# ---------------------------------------------------------------------- closing the loop


@dataclass(frozen=True)
class Change:
    field: str  # the report's key: invoice/line_items[].amount
    old: float | None  # the property's own x-review-threshold before (None: it inherited one)
    new: float | None  # None: kept (``why`` says why)
    why: str


def evidence(stats: dict[str, Any], *, target_error: float) -> str:
    """Why a field's recommendation is what it is, in one line."""
    levels = {int(s): level for s, level in stats["by_score"].items()}
    area = "n/a" if stats["auroc"] is None else f"{stats['auroc']:.3f}"
    scored = sum(level["n"] for level in levels.values())
    if not stats["can_rank"]:
        reasons = []
        if scored < MIN_OBSERVATIONS:
            reasons.append(f"{scored} scored observations < {MIN_OBSERVATIONS}")
        if len(levels) < MIN_SCORE_LEVELS:
            reasons.append(f"{len(levels)} score level(s) seen < {MIN_SCORE_LEVELS}")
        if stats["auroc"] is None or stats["auroc"] < MIN_AUROC:
            reasons.append(f"AUROC {area} < {MIN_AUROC}")
        return "not enough evidence: " + ", ".join(reasons)
    s = stats["recommended_min_score"]
    if s is None:
        return (
            f"no score level keeps the error rate's 95% upper bound <= {target_error:g} "
            f"({scored} observations, AUROC {area})"
        )
    above = [level for t, level in levels.items() if t >= s]
    count = sum(level["n"] for level in above)
    errors = count - sum(level["correct"] for level in above)
    upper = wilson(errors, count)[1]
    return (
        f"scores >= {s}: {errors} error(s) in {count}, 95% upper bound {upper:.4f} <= "
        f"{target_error:g}; AUROC {area}; review load {stats['review_load']:.0%}"
    )


def _schema_node(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The property (or column) schema a report path names: ``line_items[].amount`` is the
    ``amount`` property of ``line_items``' item schema (where a column's threshold is read)."""
    from doctriage_core.domain.schemas import object_properties, resolve, row_schema

    named = object_properties(schema, schema)
    node: object = None
    for part in path.split("."):
        name, rows = (part[:-2], True) if part.endswith("[]") else (part, False)
        node = (named or {}).get(name)
        if node is None:
            return None
        named = object_properties(schema, row_schema(schema, node) if rows else node)
        if rows:
            node = None  # a row is not a property: a column must follow
    node = resolve(schema, node)
    return node if isinstance(node, dict) else None


def apply_thresholds(
    schema: dict[str, Any], document_type: str, trust: dict[str, Any]
) -> tuple[dict[str, Any], list[Change]]:
    """A copy of ``schema`` with each recommended ``x-review-threshold`` of ``document_type``'s
    fields written in, and what was changed or kept and why. ``schema`` itself is not touched."""
    import copy

    from doctriage_core.domain.schemas import THRESHOLD_KEY

    updated = copy.deepcopy(schema)
    changes = []
    prefix = f"{document_type}/"
    for key, stats in trust["fields"].items():
        if not key.startswith(prefix):
            continue
        node = _schema_node(updated, key[len(prefix) :])
        why = evidence(stats, target_error=trust["target_error"])
        if node is None:
            changes.append(Change(key, None, None, "kept: the schema declares no such property"))
            continue
        old = node.get(THRESHOLD_KEY)
        new = stats["recommended_threshold"]
        if new is None:
            changes.append(Change(key, old, None, f"kept: {why}"))
        else:
            node[THRESHOLD_KEY] = new
            changes.append(Change(key, old, new, why))
    return updated, changes
