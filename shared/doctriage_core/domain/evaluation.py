"""Scoring a Datalab extraction against its schema: per-field confidence, flags, review status.

Input is the poll body once ``status == "complete"`` and ``success`` is true. The extraction is read
strictly by the schema: for each declared property ``P`` the keys ``P``, ``P_citations`` and
``P_score`` (``{score: 1..5, reasoning}``); other keys are ignored and suffixes are never stripped.
Nested objects and arrays (line items) are one field: carried whole, validated against their
property schema, scored by their own top-level ``P_score``.

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
from dataclasses import dataclass
from typing import Any, Literal

import fastjsonschema

from doctriage_core.domain.citations import index_blocks, locate
from doctriage_core.domain.extraction import field_score, parse_extraction
from doctriage_core.domain.schemas import (
    document_threshold,
    field_threshold,
    property_validator,
)
from doctriage_core.errors import SchemaInvalid

CLASSIFIER_PROPERTY = "document_type"
ReviewStatus = Literal["auto", "needs_review"]


@dataclass(frozen=True)
class FieldResult:
    value: Any
    found: bool
    confidence: float | None
    score: int | None
    reasoning: str | None
    citations: list[str]
    page: int | None
    bbox: dict[str, float] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "found": self.found,
            "confidence": self.confidence,
            "score": self.score,
            "reasoning": self.reasoning,
            "citations": list(self.citations),
            "page": self.page,
            "bbox": dict(self.bbox) if self.bbox is not None else None,
        }


@dataclass(frozen=True)
class Evaluation:
    fields: dict[str, FieldResult]
    flags: list[str]
    review_status: ReviewStatus
    document_type: str | None
    document_type_confidence: float | None
    extraction_score_average: float | None
    human_review_threshold: float

    def to_dict(self) -> dict[str, Any]:
        """The record fragment this evaluation decides."""
        return {
            "fields": {name: field.to_dict() for name, field in self.fields.items()},
            "flags": list(self.flags),
            "review_status": self.review_status,
            "document_type": self.document_type,
            "document_type_confidence": self.document_type_confidence,
            "extraction_score_average": self.extraction_score_average,
            "human_review_threshold": self.human_review_threshold,
        }


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


def _read_citations(raw: object) -> list[str]:
    return [c for c in raw if isinstance(c, str)] if isinstance(raw, list) else []


def _is_valid(schema: dict[str, Any], name: str, value: Any) -> bool:
    try:
        property_validator(schema, name)(value)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


def _is_low(confidence: float | None, threshold: float, *, no_scores: bool) -> bool:
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
    extracted = parse_extraction(result)
    doc_threshold = document_threshold(
        schema, default_threshold=default_threshold, upload_threshold=upload_threshold
    )
    required_list = schema.get("required")
    required = (
        {r for r in required_list if isinstance(r, str)}
        if isinstance(required_list, list)
        else set()
    )
    index = index_blocks(result.get("json"))

    fields: dict[str, FieldResult] = {}
    for name in properties:
        raw = _finite(extracted.get(name))
        found = is_found(raw)
        score, reasoning = field_score(extracted, name) if scores_available else (None, None)
        confidence: float | None
        if not found:
            confidence = 0.0
        elif score is None:
            confidence = None
        else:
            confidence = (score - 1) / 4
        citations = _read_citations(extracted.get(f"{name}_citations"))
        page, bbox = locate(citations, index)
        fields[name] = FieldResult(
            value=raw if found else None,
            found=found,
            confidence=confidence,
            score=score,
            reasoning=reasoning,
            citations=citations,
            page=page,
            bbox=bbox,
        )

    scores = [f.score for f in fields.values() if f.score is not None]
    no_scores = not scores
    flags: set[str] = {"scores_unavailable"} if no_scores else set()
    classifier = properties.get(CLASSIFIER_PROPERTY)
    has_classifier = isinstance(classifier, dict) and isinstance(classifier.get("enum"), list)
    document_type: str | None = upload_doc_type
    document_type_confidence: float | None = None

    for name, field in fields.items():
        threshold = field_threshold(
            properties[name], name, doc_threshold=doc_threshold, upload_threshold=upload_threshold
        )
        valid = not field.found or _is_valid(schema, name, field.value)
        if name in required and not field.found:
            flags.add(f"missing_field:{name}")
        if not valid:
            flags.add(f"invalid_field:{name}")
        low = _is_low(field.confidence, threshold, no_scores=no_scores)
        if has_classifier and name == CLASSIFIER_PROPERTY:
            if field.found and valid and isinstance(field.value, str):
                document_type = field.value
                document_type_confidence = field.confidence
            else:
                document_type_confidence = 0.0
                low = True
            if low:
                flags.add("low_confidence_classification")
        elif low:
            flags.add(f"low_confidence_field:{name}")

    ordered = sorted(flags)
    return Evaluation(
        fields=fields,
        flags=ordered,
        review_status="needs_review" if ordered else "auto",
        document_type=document_type,
        document_type_confidence=document_type_confidence,
        extraction_score_average=_average(result, scores, scores_available),
        human_review_threshold=doc_threshold,
    )
