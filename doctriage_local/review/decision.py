"""What a reviewer must check in a record, and a submitted review form -> the ``review`` object.

The form, one entry per field (``<name>`` is the field's name as it is in the record):
- ``decision.<name>``: ``accept`` (the extracted value is right) or ``correct``; required for
  every flagged field;
- ``value.<name>``: the corrected value, read as JSON when it parses (``300``, ``null``,
  ``["a"]``, ``"300"`` for the string) and as a plain string otherwise (``INV-0077``). Unflagged
  fields may be corrected too: a value that differs from the extracted one is a correction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from doctriage_core.domain.timeline import utc_now_iso

# Flags naming one field: "<kind>:<field name>".
_FIELD_FLAGS = {
    "low_confidence_field": "low confidence",
    "missing_field": "required but not found",
    "invalid_field": "fails the schema (type, pattern, enum, format or range)",
}


@dataclass(frozen=True)
class Reason:
    flag: str
    text: str


class DecisionError(ValueError):
    """The form does not decide every flagged field (or decides one in a way we cannot store)."""

    def __init__(self, problems: dict[str, str], reviewer: str | None = None) -> None:
        every = ([f"reviewer: {reviewer}"] if reviewer else []) + [
            f"{name}: {text}" for name, text in problems.items()
        ]
        super().__init__("; ".join(every))
        self.problems = problems  # by field name
        self.reviewer = reviewer  # what is wrong with the reviewer's name, if anything


def flagged_fields(record: dict[str, Any]) -> dict[str, list[Reason]]:
    """Fields a reviewer must decide, in the record's field order, with why each was flagged."""
    fields: dict[str, Any] = record.get("fields") or {}
    threshold = record.get("human_review_threshold")
    reasons: dict[str, list[Reason]] = {}
    for flag in record.get("flags") or []:
        kind, _, name = flag.partition(":")
        if kind in _FIELD_FLAGS and name in fields:
            text = _FIELD_FLAGS[kind]
            confidence = fields[name].get("confidence")
            if kind == "low_confidence_field" and confidence is not None and threshold is not None:
                text = f"confidence {confidence:.2f} is below the threshold {threshold:.2f}"
            reasons.setdefault(name, []).append(Reason(flag, text))
        elif kind == "low_confidence_classification" and "document_type" in fields:
            reasons.setdefault("document_type", []).append(
                Reason(flag, "the document type itself is uncertain")
            )
        elif kind == "scores_unavailable":
            for name, field in fields.items():
                if field.get("confidence") is None:
                    reasons.setdefault(name, []).append(
                        Reason(flag, "Datalab never scored this field")
                    )
    return {name: reasons[name] for name in fields if name in reasons}


def display_value(value: Any) -> str:
    """How a value is shown in a correction box: strings as they are, anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def parse_value(text: str) -> Any:
    """A corrected value: JSON when it parses, else the (stripped) string."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _same(text: str, value: Any) -> bool:
    """Whether the text in a correction box still says the extracted value."""
    if text.strip() == display_value(value).strip():
        return True
    # Lists and objects may be shown pretty-printed: compare what they mean.
    return isinstance(value, (list, dict)) and parse_value(text) == value


def _first(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def build_review(
    record: dict[str, Any], form: dict[str, list[str]], reviewer: str, decided_at: str | None = None
) -> dict[str, Any]:
    """The ``review`` object for this form; DecisionError names each field left undecided."""
    fields: dict[str, Any] = record.get("fields") or {}
    flagged = flagged_fields(record)
    problems: dict[str, str] = {}
    accepted: list[str] = []
    corrected: dict[str, Any] = {}
    reviewer = reviewer.strip()
    for name, field in fields.items():
        decision = _first(form, f"decision.{name}")
        text = _first(form, f"value.{name}")
        unchanged = text is None or _same(text, field.get("value"))
        if name in flagged:
            if decision == "accept":
                accepted.append(name)
            elif decision == "correct":
                if text is None or not text.strip():
                    problems[name] = "type the correct value (null if there is none)"
                elif unchanged:
                    accepted.append(name)  # "corrected" to what it already was
                else:
                    corrected[name] = parse_value(text)
            else:
                problems[name] = "accept the value or correct it"
        elif not unchanged and text is not None:
            corrected[name] = parse_value(text)
    if problems or not reviewer:
        raise DecisionError(problems, None if reviewer else "enter your name")
    return {
        "reviewer": reviewer,
        "decided_at": decided_at or utc_now_iso(),
        "accepted": accepted,
        "corrected": corrected,
    }
