"""What a reviewer must check in a record, and a submitted review form -> the ``review`` object.

What is decided is named by path, as the flags name it: a top-level field (``total_amount``), a
cell of an array of objects (``line_items[1].amount``), a row (``line_items[0]``, when the row
itself is invalid), a whole list (``line_items``, for ``incomplete_list`` or a list scored as a
whole) or an object's property (``address.city``). ``failed_check:<name>`` asks for a decision on
every value its sum and ``equals`` name (when the schema is at hand to say which). An audit
sample (an ``auto`` record chosen at random) asks for a decision on every field and every cell.

The form, one entry per path:
- ``decision.<path>``: ``accept`` (the extracted value is right) or ``correct``; required for
  every path to decide;
- ``value.<path>``: the corrected value, read by its schema's type when the schema is known
  (``number`` / ``integer`` columns take numbers, ``string`` ones take the text as typed,
  ``null`` means no value) and otherwise as JSON when it parses (``300``, ``["a"]``) and as a
  plain string when it does not (``INV-0077``). A top-level field with nothing to decide in it may
  be corrected too: a value that differs from the extracted one is a correction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from doctriage_core.domain.schemas import (
    Check,
    object_properties,
    parse_checks,
    resolve,
    row_schema,
)
from doctriage_core.domain.timeline import utc_now_iso
from doctriage_core.errors import SchemaInvalid

# Flags naming one path: "<kind>:<path>".
_PATH_FLAGS = {
    "low_confidence_field": "low confidence",
    "missing_field": "required but not found",
    "invalid_field": "fails the schema (type, pattern, enum, format or range)",
    "incomplete_list": "fewer rows than the schema asks for",
}
AUDIT_FLAG = "audit_sample"


@dataclass(frozen=True)
class Reason:
    flag: str
    text: str


@dataclass(frozen=True)
class Node:
    """One part of a record's fields: a field, a row, a cell or a property, by its path."""

    path: str
    field: str  # the top-level field it belongs to
    result: dict[str, Any]  # value, found, confidence, page, bbox... (a row has only its value)
    prop: object  # its schema, None when the schema is not known
    leaf: bool  # no rows or properties below it

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self.result.get("items") or [])


class DecisionError(ValueError):
    """The form does not decide every flagged path (or decides one in a way we cannot store)."""

    def __init__(self, problems: dict[str, str], reviewer: str | None = None) -> None:
        every = ([f"reviewer: {reviewer}"] if reviewer else []) + [
            f"{name}: {text}" for name, text in problems.items()
        ]
        super().__init__("; ".join(every))
        self.problems = problems  # by path
        self.reviewer = reviewer  # what is wrong with the reviewer's name, if anything


def _row(value: Any, index: int) -> dict[str, Any]:
    rows = value if isinstance(value, list) else []
    row = rows[index] if index < len(rows) else None
    return {"value": row, "found": row is not None, "confidence": None, "page": None, "bbox": None}


def _walk(
    schema: dict[str, Any], path: str, field: str, result: dict[str, Any], prop: object
) -> Iterator[Node]:
    prop = resolve(schema, prop)
    items, properties = result.get("items") or [], result.get("properties") or {}
    yield Node(path, field, result, prop, leaf=not (items or properties))
    columns = object_properties(schema, row_schema(schema, prop)) or {}
    for i, cells in enumerate(items):
        row_path = f"{path}[{i}]"
        yield Node(
            row_path, field, _row(result.get("value"), i), row_schema(schema, prop), not cells
        )
        for column, cell in cells.items():
            yield from _walk(schema, f"{row_path}.{column}", field, cell, columns.get(column))
    declared = object_properties(schema, prop) or {}
    for name, sub in properties.items():
        yield from _walk(schema, f"{path}.{name}", field, sub, declared.get(name))


def record_nodes(record: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Node]:
    """Every field, row, cell and property of the record by path, in the record's order."""
    schema = schema or {}
    declared = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    nodes: dict[str, Node] = {}
    for name, result in (record.get("fields") or {}).items():
        for node in _walk(schema, name, name, result, (declared or {}).get(name)):
            nodes[node.path] = node
    return nodes


def is_audit(record: dict[str, Any], message: dict[str, Any] | None = None) -> bool:
    """An audit sample: the record says so, or the review message that brought it does."""
    return record.get("audit_sample") is True or bool(message and message.get("audit") is True)


def schema_checks(schema: dict[str, Any] | None) -> dict[str, Check]:
    """The schema's x-checks by name (none when the schema is unknown or its checks unusable)."""
    if not schema:
        return {}
    try:
        return {check.name: check for check in parse_checks(schema) or []}
    except SchemaInvalid:
        return {}


def check_paths(check: Check, nodes: dict[str, Node]) -> list[str]:
    """The record paths a check sums and compares (``line_items[].amount`` -> every row's)."""
    out: list[str] = []
    for segments in (*check.sum, check.equals):
        prefixes = [""]
        for name, each in segments:
            prefixes = [f"{p}.{name}" if p else name for p in prefixes]
            if each:
                prefixes = [
                    f"{p}[{i}]" for p in prefixes if p in nodes for i in range(len(nodes[p].rows))
                ]
        out.extend(p for p in prefixes if p in nodes and p not in out)
    return out


def applied_threshold(result: dict[str, Any], document_threshold: Any) -> Any:
    """The threshold that applied to a field or cell: its own on the record (evaluate writes it),
    else the document's (a record written before fields carried theirs)."""
    own = result.get("threshold")
    return own if own is not None else document_threshold


def _reason(kind: str, flag: str, node: Node, threshold: Any) -> Reason:
    text = _PATH_FLAGS[kind]
    confidence = node.result.get("confidence")
    threshold = applied_threshold(node.result, threshold)
    if kind == "low_confidence_field" and isinstance(threshold, int | float) and threshold >= 1:
        text = "threshold 1.0 forces review of this field, whatever its confidence"
    elif kind == "low_confidence_field" and confidence is None:
        text = "Datalab gave it no score: nothing vouches for it"
    elif kind == "low_confidence_field" and threshold is not None:
        text = f"confidence {confidence:.2f} is below the threshold {threshold:.2f}"
    if kind == "incomplete_list":
        minimum = node.prop.get("minItems") if isinstance(node.prop, dict) else None
        found = len(node.rows)
        text = f"{found} row{'s' if found != 1 else ''} found" + (
            f"; the schema asks for at least {minimum} (minItems)"
            if isinstance(minimum, int)
            else "; fewer than the schema's minItems"
        )
    return Reason(flag, text)


def to_decide(
    record: dict[str, Any], schema: dict[str, Any] | None = None, *, audit: bool = False
) -> dict[str, list[Reason]]:
    """The paths a reviewer must decide, in the record's order, with why each one is asked."""
    nodes = record_nodes(record, schema)
    threshold = record.get("human_review_threshold")
    checks = schema_checks(schema)
    reasons: dict[str, list[Reason]] = {}
    for flag in record.get("flags") or []:
        for path, reason in _flag_reasons(flag, nodes, threshold, checks):
            reasons.setdefault(path, []).append(reason)
    if audit:
        for node in nodes.values():
            if node.leaf:
                reasons.setdefault(node.path, []).append(
                    Reason(AUDIT_FLAG, "audit sample: every field is checked")
                )
    return {path: reasons[path] for path in nodes if path in reasons}


def _flag_reasons(
    flag: str, nodes: dict[str, Node], threshold: Any, checks: dict[str, Check]
) -> Iterator[tuple[str, Reason]]:
    """The paths one flag asks a reviewer to decide, each with why."""
    kind, _, path = flag.partition(":")
    if kind in _PATH_FLAGS and path in nodes:
        yield path, _reason(kind, flag, nodes[path], threshold)
    elif kind == "low_confidence_classification" and "document_type" in nodes:
        yield "document_type", Reason(flag, "the document type itself is uncertain")
    elif kind == "scores_unavailable":
        for node in nodes.values():
            if node.leaf and node.result.get("confidence") is None:
                yield node.path, Reason(flag, "Datalab never scored this field")
    elif kind == "failed_check" and path in checks:
        for named in check_paths(checks[path], nodes):
            yield named, Reason(flag, f"a value the check {path} adds up or compares")


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


def _types(prop: object) -> list[str]:
    kind = prop.get("type") if isinstance(prop, dict) else None
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def is_number_type(prop: object) -> bool:
    return bool({"number", "integer"} & set(_types(prop)))


def _number(text: str, *, integer: bool) -> int | float | None:
    try:
        number = json.loads(text)
    except ValueError:
        return None
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    if not math.isfinite(number):
        return None
    if integer:
        return int(number) if float(number).is_integer() else None
    return number


def parse_as(text: str, prop: object) -> Any:
    """A corrected value read by its schema's ``type``; ValueError saying what is expected.

    ``null`` is no value whatever the type; without a simple type: ``parse_value``.
    """
    types = [t for t in _types(prop) if t != "null"]
    stripped = text.strip()
    if not types or {"array", "object"} & set(types):
        return parse_value(text)
    if stripped == "null":
        return None
    for kind in types:
        if kind in ("number", "integer"):
            number = _number(stripped, integer=kind == "integer")
            if number is not None:
                return number
        elif kind == "boolean" and stripped in ("true", "false"):
            return stripped == "true"
        elif kind == "string":
            return stripped
    expected = {"number": "a number such as 12.5", "integer": "a whole number such as 3"}
    wanted = " or ".join(expected.get(t, f"{t} (true or false)") for t in types)
    raise ValueError(f"type {wanted}, or null when there is none")


def _same(text: str, value: Any, prop: object) -> bool:
    """Whether the text in a correction box still says the extracted value."""
    if text.strip() == display_value(value).strip():
        return True
    try:
        parsed = parse_as(text, prop)
    except ValueError:
        return False
    # Numbers typed differently (50 for 50.0) and pretty-printed lists mean the same value,
    # but true is not 1.
    return parsed == value and isinstance(parsed, bool) == isinstance(value, bool)


def _first(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


def build_review(
    record: dict[str, Any],
    form: dict[str, list[str]],
    reviewer: str,
    decided_at: str | None = None,
    *,
    schema: dict[str, Any] | None = None,
    audit: bool = False,
) -> dict[str, Any]:
    """The ``review`` object for this form; DecisionError names each path left undecided."""
    nodes = record_nodes(record, schema)
    decide = to_decide(record, schema, audit=audit)
    problems: dict[str, str] = {}
    accepted: list[str] = []
    corrected: dict[str, Any] = {}
    reviewer = reviewer.strip()
    for path in decide:
        node = nodes[path]
        decision = _first(form, f"decision.{path}")
        text = _first(form, f"value.{path}")
        if decision == "accept":
            accepted.append(path)
        elif decision == "correct":
            if text is None or not text.strip():
                problems[path] = "type the correct value (null if there is none)"
            elif _same(text, node.result.get("value"), node.prop):
                accepted.append(path)  # "corrected" to what it already was
            else:
                try:
                    corrected[path] = parse_as(text, node.prop)
                except ValueError as exc:
                    problems[path] = str(exc)
        else:
            problems[path] = "accept the value or correct it"
    fields_deciding = {nodes[path].field for path in decide}
    for name in record.get("fields") or {}:
        text = _first(form, f"value.{name}")
        if name in fields_deciding or text is None:
            continue
        node = nodes[name]
        if not _same(text, node.result.get("value"), node.prop):
            try:
                corrected[name] = parse_as(text, node.prop)
            except ValueError as exc:
                problems[name] = str(exc)
    if problems or not reviewer:
        raise DecisionError(problems, None if reviewer else "enter your name")
    return {
        "reviewer": reviewer,
        "decided_at": decided_at or utc_now_iso(),
        "accepted": accepted,
        "corrected": corrected,
    }


# ---------------------------------------------------------------------- revisions and history

# What a review says beyond who and when; two reviews that agree on these are the same decision.
_BOOKKEEPING = frozenset({"reviewer", "decided_at", "history"})


def revision_of(review: dict[str, Any] | None) -> int:
    """A stored review's revision: how many decisions its history holds (0: no review yet)."""
    return len((review or {}).get("history") or [])


def _decisions(review: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Path -> {"decision": "accept"} or {"decision": "correct", "value": …}."""
    review = review or {}
    out: dict[str, dict[str, Any]] = {
        p: {"decision": "accept"} for p in review.get("accepted") or []
    }
    for path, value in (review.get("corrected") or {}).items():
        out[path] = {"decision": "correct", "value": value}
    return out


def same_decision(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Whether two reviews decide the same (whoever decided and whenever)."""

    def what(review: dict[str, Any] | None) -> dict[str, Any]:
        rest = {k: v for k, v in (review or {}).items() if k not in _BOOKKEEPING}
        return rest | {
            "accepted": sorted(rest.get("accepted") or []),
            "corrected": rest.get("corrected") or {},
        }

    return what(a) == what(b)


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``after`` changes of ``before``: ``{path, was, now}`` for each path decided otherwise
    (was/now: the path's decision, null when undecided) and for any other key of the review
    (``outcome``) whose value differs."""
    was, now = _decisions(before), _decisions(after)
    out = [
        {"path": path, "was": was.get(path), "now": now.get(path)}
        for path in [*now, *(p for p in was if p not in now)]
        if was.get(path) != now.get(path)
    ]
    skip = _BOOKKEEPING | {"accepted", "corrected"}
    for key in sorted((set(before or {}) | set(after)) - skip):
        if (before or {}).get(key) != after.get(key):
            out.append({"path": key, "was": (before or {}).get(key), "now": after.get(key)})
    return out


def with_history(review: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """``review`` as stored over ``previous`` (None for a first decision): its history is the
    previous one's plus an entry for this decision (who, when, what changed)."""
    entry = {
        "reviewer": review["reviewer"],
        "decided_at": review["decided_at"],
        "changes": changes(previous, review),
    }
    earlier = list((previous or {}).get("history") or [])
    return {**{k: v for k, v in review.items() if k != "history"}, "history": [*earlier, entry]}
