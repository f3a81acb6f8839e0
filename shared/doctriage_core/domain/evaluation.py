"""Scoring a Datalab extraction against its schema: per-field confidence, flags, review status.

Input is the poll body once ``status == "complete"`` and ``success`` is true. The extraction is read
strictly by the schema: for each declared property ``P`` the keys ``P``, ``P_citations`` and
``P_score`` (``{score: 1..5, reasoning}``); other keys are ignored and suffixes are never stripped.

Nested fields (an array of objects such as ``line_items``, an object such as ``address``) are
read by their schema too (``domain/extraction.read_node``), in either shape Datalab may send:

- per cell: ``{"amount": 500, "amount_score": {...}, "amount_citations": [...]}`` inside each row
  (``city_score`` inside the object). Each cell gets its own result in the field's ``items`` (one
  object per row, column -> result) or ``properties``, and is gated on its own: flags name the
  cell (``low_confidence_field:line_items[1].amount``, ``invalid_field:line_items[0].qty``,
  ``missing_field:line_items[2].amount`` for a required column missing in a row), not the list.
  The list's ``value`` is kept whole, with those score and citation keys taken out of its rows.
- array-level: ``line_items_score`` / ``line_items_citations`` beside plain rows. Only the list's
  own score gates the list (``low_confidence_field:line_items``); its cells carry no score and
  are not gated for confidence (missing and invalid cells are still flagged by path).
- a mix: scored cells are gated by their own scores; an unscored cell is vouched for by its list's
  own score when it has one, else flagged (nothing vouches for it); a list with scored cells and
  no score of its own is not gated itself (its cells are), and its confidence is its lowest scored
  cell's. An empty cell is not gated for confidence (no score can vouch for a value that is not
  there): it is ``missing_field:<path>`` when its column is required, else nothing.
- A container (list, row, object) is flagged ``invalid_field:<path>`` only when its schema fails
  for a reason none of its parts' flags explains. Fewer rows than ``minItems`` is
  ``incomplete_list:<path>`` (not ``invalid_field``). A cell's threshold: its column's
  ``x-review-threshold``, else its list's (object's), else the usual precedence
  (``schemas.field_threshold``).
- ``x-checks`` (``schemas.parse_checks``): each declared sum is evaluated when every value it
  names was found and is a number; a failure is ``failed_check:<name>``; every check's result
  (``passed`` null when it could not be evaluated, ``computed``, ``expected``) goes to ``checks``.

Decisions where the contract is silent:

- found: false for null/absent, blank (whitespace-only) strings, ``[]`` and ``{}``; the value is
  then null and the confidence 0.0 whatever the score says, even when scores are unavailable.
- A score is usable only if ``P_score`` is an object whose ``score`` is an integer 1..5 (an
  integral float such as ``4.0`` counts as 4; ``3.5``, ``"4"``, null, booleans and out-of-range
  numbers do not): ``domain/extraction.read_score``, the same rule the poll step uses to decide
  that scores have arrived. An unusable score is no score: ``score`` and ``confidence`` null
  (``reasoning`` is kept when it is a string).
- A found field without a usable score while other fields have scores is flagged
  ``low_confidence_field:<name>`` (nothing vouches for it), unless its threshold is 0.0.
- When no field has a usable score (``scores_available=False``, or Datalab sent none that we can
  read) the document gets ``scores_unavailable`` instead of a low-confidence flag per unscored
  field; not-found fields (confidence 0.0) are still gated as usual.
- Threshold 1.0 forces review of every field (``confidence < t or t >= 1.0``); 0.0 disables the
  confidence gate (missing/invalid/classification-fallback flags still apply).
- The ``document_type`` classifier property (one with an ``enum``) never gets
  ``low_confidence_field``: its low confidence is ``low_confidence_classification``. When it is not
  found, not a string, or fails its schema (not in the enum), ``document_type`` falls back to the
  upload prefix, ``document_type_confidence`` is 0.0 and the classification flag is raised
  whatever the threshold: that is a failed classification, not a gating decision.
- NaN/Infinity in the extraction JSON are read as null.
- ``extraction_score_average``: Datalab's when it is a number in [1, 5] and scores are available,
  else the mean of the usable field scores, else null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import fastjsonschema

from doctriage_core.domain.citations import BlockIndex, index_blocks, locate
from doctriage_core.domain.extraction import RawNode, parse_extraction, read_node
from doctriage_core.domain.schemas import (
    Check,
    PathSegment,
    document_threshold,
    field_threshold,
    node_validator,
    object_properties,
    parse_checks,
    property_validator,
    required_names,
    resolve,
    row_schema,
)
from doctriage_core.errors import SchemaInvalid

CLASSIFIER_PROPERTY = "document_type"
ReviewStatus = Literal["auto", "needs_review"]
# Float sums (0.1 + 0.2) are compared with this much slack beyond a check's own tolerance.
_CHECK_EPSILON = 1e-9


@dataclass(slots=True)  # not frozen: hundreds are built per document, and frozen is slow to
class FieldResult:  # build; nothing changes one once evaluate_extraction returns it
    value: Any
    found: bool
    confidence: float | None
    score: int | None
    reasoning: str | None
    citations: list[str]
    page: int | None
    bbox: dict[str, float] | None
    # An array of objects: one mapping per row, column -> its cell's result.
    items: list[dict[str, FieldResult]] | None = None
    # A nested object: property -> its result.
    properties: dict[str, FieldResult] | None = None
    # The review threshold that applied to it (after precedence); set by the gate.
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "found": self.found,
            "confidence": self.confidence,
            "score": self.score,
            "reasoning": self.reasoning,
            "citations": list(self.citations),
            "page": self.page,
            "bbox": dict(self.bbox) if self.bbox is not None else None,
            "threshold": self.threshold,
        }
        if self.items is not None:
            out["items"] = [{c: r.to_dict() for c, r in row.items()} for row in self.items]
        if self.properties is not None:
            out["properties"] = {n: r.to_dict() for n, r in self.properties.items()}
        return out

    def parts(self) -> Iterator[FieldResult]:
        """Its cells or properties (one level down)."""
        for row in self.items or ():
            yield from row.values()
        if self.properties:
            yield from self.properties.values()


@dataclass(frozen=True)
class Evaluation:
    fields: dict[str, FieldResult]
    flags: list[str]
    review_status: ReviewStatus
    document_type: str | None
    document_type_confidence: float | None
    extraction_score_average: float | None
    human_review_threshold: float
    # The schema's x-checks results; None when it declares none (the record then has no checks).
    checks: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record fragment this evaluation decides."""
        out: dict[str, Any] = {
            "fields": {name: field.to_dict() for name, field in self.fields.items()},
            "flags": list(self.flags),
            "review_status": self.review_status,
            "document_type": self.document_type,
            "document_type_confidence": self.document_type_confidence,
            "extraction_score_average": self.extraction_score_average,
            "human_review_threshold": self.human_review_threshold,
        }
        if self.checks is not None:
            out["checks"] = [dict(c) for c in self.checks]
        return out


def _finite(value: Any) -> Any:
    """Non-finite floats (NaN, inf) become null: they are not JSON and not data."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def is_found(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return True


def _is_valid(schema: dict[str, Any], name: str, value: Any) -> bool:
    try:
        property_validator(schema, name)(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def confidence_of(score: int) -> float:
    """A usable 1..5 score as a confidence in [0, 1] (seed 000 -> seed 001): 5 -> 1.0, 1 -> 0.0."""
    return (score - 1) / 4


def is_low_confidence(confidence: float | None, threshold: float, *, no_scores: bool) -> bool:
    """The threshold rule: whether a field's confidence sends it to review under ``threshold``."""
    if threshold <= 0.0:
        return False
    if threshold >= 1.0:
        return True
    if confidence is None:
        # Unscored while others are scored: nothing vouches for it. With no scores at all,
        # the document-level scores_unavailable flag says so once instead.
        return not no_scores
    return confidence < threshold


def _average(result: dict[str, Any], scores: list[int], scores_available: bool) -> float | None:
    if not scores_available:
        return None
    reported = result.get("extraction_score_average")
    if (
        isinstance(reported, int | float)
        and not isinstance(reported, bool)
        and math.isfinite(reported)
        and 1 <= reported <= 5
    ):
        return float(reported)
    return sum(scores) / len(scores) if scores else None


def _scored(result: FieldResult) -> Iterator[FieldResult]:
    """Every part below ``result`` (cells of cells included) that carries a usable score."""
    stack = list(result.parts())
    while stack:
        part = stack.pop()
        if part.score is not None:
            yield part
        stack.extend(part.parts())


def _has_part_scores(result: FieldResult) -> bool:
    return next(_scored(result), None) is not None


def _build(node: RawNode, index: BlockIndex, scores_available: bool) -> FieldResult:
    """A field result from what was read, its parts (cells, properties) built the same way."""
    raw = _finite(node.value)
    found = is_found(raw)
    score, reasoning = (node.score, node.reasoning) if scores_available else (None, None)
    items = None
    if node.rows is not None:
        items = [
            {c: _build(cell, index, scores_available) for c, cell in row.items()} if row else {}
            for row in node.rows
        ]
    properties = None
    if node.properties is not None:
        properties = {n: _build(p, index, scores_available) for n, p in node.properties.items()}
    page, bbox = locate(node.citations, index)
    result = FieldResult(
        value=raw if found else None,
        found=found,
        confidence=0.0 if not found else None if score is None else confidence_of(score),
        score=score,
        reasoning=reasoning,
        citations=node.citations,
        page=page,
        bbox=bbox,
        items=items,
        properties=properties,
    )
    if found and score is None and (items is not None or properties is not None):
        lowest = min(
            (p.confidence for p in _scored(result) if p.confidence is not None), default=None
        )
        if lowest is not None:
            result.confidence = lowest
    return result


@dataclass
class _Gate:
    """Flags for one document, field by field and cell by cell."""

    schema: dict[str, Any]
    doc_threshold: float
    upload_threshold: float | None
    no_scores: bool
    flags: set[str] = field(default_factory=set)
    # invalid/missing flags raised so far: a container is invalid only when its parts say nothing.
    problems: int = 0
    # > 0 while inside a container that validated as a whole
    trusted: int = 0
    _validators: dict[tuple[int, bool], Callable[[Any], Any]] = field(default_factory=dict)

    def problem(self, flag: str) -> None:
        if flag not in self.flags:
            self.flags.add(flag)
            self.problems += 1

    def threshold(self, prop: object, path: str, enclosing: float | None) -> float:
        return field_threshold(
            prop,
            path,
            doc_threshold=self.doc_threshold,
            upload_threshold=self.upload_threshold,
            enclosing=enclosing,
        )

    def valid(self, prop: object, value: Any, *, container: bool) -> bool:
        if not isinstance(prop, dict):
            return True
        key = (id(prop), container)
        validator = self._validators.get(key)
        if validator is None:
            # minItems is incomplete_list's, never invalid_field's
            drop = ("minItems",) if container else ()
            validator = self._validators[key] = node_validator(self.schema, prop, drop=drop)
        try:
            validator(value)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def field(
        self,
        path: str,
        prop: object,
        result: FieldResult,
        *,
        threshold: float,
        required: bool,
        gated: bool,
        vouched: bool,
        top_level_valid: bool | None = None,
    ) -> bool:
        """Flags for one field or cell and its parts; True when it is low (caller flags it)."""
        result.threshold = threshold
        if required and not result.found:
            self.problem(f"missing_field:{path}")
        prop = resolve(self.schema, prop)
        before = self.problems
        container = result.items is not None or result.properties is not None
        part_scores = container and _has_part_scores(result)
        own_gate = gated and not (result.found and result.score is None and part_scores)
        parts_gated = gated and part_scores
        parts_vouched = vouched or result.score is not None
        # A container valid as a whole has valid rows and cells: they are not validated again.
        valid = (
            True
            if self.trusted or not result.found
            else top_level_valid
            if top_level_valid is not None and not container
            else self.valid(prop, result.value, container=container)
        )
        self.trusted += container and valid
        if result.items is not None:
            self.rows(path, prop, result, threshold, gated=parts_gated, vouched=parts_vouched)
        elif result.properties is not None:
            self.parts(
                path,
                object_properties(self.schema, prop) or {},
                result.properties,
                required_names(prop),
                threshold,
                gated=parts_gated,
                vouched=parts_vouched,
            )
        self.trusted -= container and valid
        if not valid and self.problems == before:
            self.problem(f"invalid_field:{path}")
        if not own_gate or (result.confidence is None and vouched):
            return False
        return is_low_confidence(result.confidence, threshold, no_scores=self.no_scores)

    def rows(
        self,
        path: str,
        prop: Any,
        result: FieldResult,
        threshold: float,
        *,
        gated: bool,
        vouched: bool,
    ) -> None:
        rows = row_schema(self.schema, prop) or {}
        columns = object_properties(self.schema, rows) or {}
        required = required_names(rows)
        min_items = prop.get("minItems") if isinstance(prop, dict) else None
        count = len(result.items or ())
        if isinstance(min_items, int) and not isinstance(min_items, bool) and count < min_items:
            self.flags.add(f"incomplete_list:{path}")
        values = result.value if isinstance(result.value, list) else []
        for i, cells in enumerate(result.items or ()):
            row_path = f"{path}[{i}]"
            before = self.problems
            row = values[i] if i < len(values) else None
            if not isinstance(row, dict):
                self.problem(f"invalid_field:{row_path}")
                continue
            self.parts(row_path, columns, cells, required, threshold, gated=gated, vouched=vouched)
            if (
                not self.trusted
                and self.problems == before
                and not self.valid(rows, row, container=True)
            ):
                self.problem(f"invalid_field:{row_path}")

    def parts(
        self,
        path: str,
        declared: dict[str, Any],
        parts: dict[str, FieldResult],
        required: frozenset[str],
        threshold: float,
        *,
        gated: bool,
        vouched: bool,
    ) -> None:
        for name, part in parts.items():
            sub_path = f"{path}.{name}"
            prop = declared.get(name)
            low = self.field(
                sub_path,
                prop,
                part,
                threshold=self.threshold(prop, sub_path, threshold),
                required=name in required,
                # an empty cell: missing_field when its column is required, no confidence gate
                gated=gated and part.found,
                vouched=vouched,
            )
            if low:
                self.flags.add(f"low_confidence_field:{sub_path}")


def _resolve_path(
    fields: dict[str, FieldResult], path: tuple[PathSegment, ...]
) -> list[FieldResult] | None:
    """The results a check path names (every row's cell for ``[]``); None if one is not found."""
    level: list[dict[str, FieldResult]] = [fields]
    named: list[FieldResult] = []
    for name, each in path:
        named = []
        for mapping in level:
            result = mapping.get(name)
            if result is None or not result.found:
                return None
            named.append(result)
        if each:
            level = [row for result in named for row in (result.items or ())]
        else:
            level = [result.properties or {} for result in named]
    return named


def _numbers(results: list[FieldResult] | None) -> list[float] | None:
    if results is None:
        return None
    values = [r.value for r in results]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    return [float(v) for v in values]


def run_checks(checks: list[Check], fields: dict[str, FieldResult]) -> list[dict[str, Any]]:
    """Each check's result: passed null when a value it names was not found or not a number."""
    out: list[dict[str, Any]] = []
    for check in checks:
        terms = [_numbers(_resolve_path(fields, path)) for path in check.sum]
        expected_values = _numbers(_resolve_path(fields, check.equals))
        expected = expected_values[0] if expected_values else None
        computed = (
            round(math.fsum(v for term in terms if term for v in term), 9)
            if all(term is not None for term in terms)
            else None
        )
        passed = (
            None
            if computed is None or expected is None
            else abs(computed - expected) <= check.tolerance + _CHECK_EPSILON
        )
        out.append(
            {
                "name": check.name,
                "passed": passed,
                "computed": computed,
                "expected": expected,
                "tolerance": check.tolerance,
            }
        )
    return out


def _every_score(fields: dict[str, FieldResult]) -> list[int]:
    scores = [f.score for f in fields.values() if f.score is not None]
    for f in fields.values():
        if f.items is None and f.properties is None:
            continue
        scores.extend(p.score for p in _scored(f) if p.score is not None)
    return scores


def evaluate_extraction(
    schema: dict[str, Any],
    result: dict[str, Any],
    *,
    upload_doc_type: str,
    default_threshold: float,
    upload_threshold: float | None = None,
    scores_available: bool = True,
) -> Evaluation:
    """Score every declared field of a complete Datalab result and decide review_status."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict) or not properties:
        raise SchemaInvalid('schema must have a non-empty "properties" object')
    checks = parse_checks(schema)
    extracted = parse_extraction(result)
    doc_threshold = document_threshold(
        schema, default_threshold=default_threshold, upload_threshold=upload_threshold
    )
    required = required_names(schema)
    index = index_blocks(result.get("json"))

    fields = {
        name: _build(read_node(schema, prop, extracted, name), index, scores_available)
        for name, prop in properties.items()
    }
    scores = _every_score(fields)
    no_scores = not scores
    gate = _Gate(schema, doc_threshold, upload_threshold, no_scores)
    if no_scores:
        gate.flags.add("scores_unavailable")
    classifier = properties.get(CLASSIFIER_PROPERTY)
    has_classifier = isinstance(classifier, dict) and isinstance(classifier.get("enum"), list)
    document_type: str | None = upload_doc_type
    document_type_confidence: float | None = None

    for name, field_result in fields.items():
        prop = properties[name]
        valid = not field_result.found or _is_valid(schema, name, field_result.value)
        low = gate.field(
            name,
            prop,
            field_result,
            threshold=gate.threshold(prop, name, None),
            required=name in required,
            gated=True,
            vouched=False,
            top_level_valid=valid,
        )
        if has_classifier and name == CLASSIFIER_PROPERTY:
            if field_result.found and valid and isinstance(field_result.value, str):
                document_type = field_result.value
                document_type_confidence = field_result.confidence
            else:
                document_type_confidence = 0.0
                low = True
            if low:
                gate.flags.add("low_confidence_classification")
        elif low:
            gate.flags.add(f"low_confidence_field:{name}")

    check_results = run_checks(checks, fields) if checks is not None else None
    for check in check_results or ():
        if check["passed"] is False:
            gate.flags.add(f"failed_check:{check['name']}")
    ordered = sorted(gate.flags)
    return Evaluation(
        fields=fields,
        flags=ordered,
        review_status="needs_review" if ordered else "auto",
        document_type=document_type,
        document_type_confidence=document_type_confidence,
        extraction_score_average=_average(result, scores, scores_available),
        human_review_threshold=doc_threshold,
        checks=check_results,
    )
