"""What a reviewer must check in a record, and a submitted review form -> the ``review`` object.

What is decided is named by path, as the flags name it: a top-level field (``total_amount``), a
cell of an array of objects (``line_items[1].amount``), a row (``line_items[0]``, when the row
itself is invalid), a whole list (``line_items``, for ``incomplete_list`` or a list scored as a
whole) or an object's property (``address.city``). ``failed_check:<name>`` asks for a decision on
every value its sum and ``equals`` name (when the schema is at hand to say which). An audit
sample (an ``auto`` record chosen at random) asks for a decision on every field and every cell.

The form, one entry per path:
- ``decision.<path>``: ``accept`` (the extracted value is right), ``accept_anyway`` (it fails its
  schema but is kept: ``note.<path>`` says why), ``correct`` or ``absent`` (not on the document:
  null; a path the schema requires also needs ``confirm.<path>=yes``); required for every path
  to decide;
- ``value.<path>``: the corrected value, read by its schema's type when the schema is known
  (numbers as people type them, ``1,234.50`` or ``300,00``; ``format: date`` strings normalised
  to YYYY-MM-DD; ``null`` is not on the document), then validated against its property schema;
  without a schema, as JSON when it parses (``300``, ``["a"]``) and as a plain string when it
  does not (``INV-0077``). A top-level field with nothing to decide in it may be corrected too:
  a value that differs from the extracted one is a correction.

A failed document has nothing to decide path by path: its form has an ``outcome``
(``entered_by_hand`` with a ``value.<field>`` per schema property, ``reprocess``, or
``rejected`` with a ``reject_reason``) and an optional ``note``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastjsonschema

from doctriage_core.domain.evaluation import FieldResult, run_checks
from doctriage_core.domain.schemas import (
    Check,
    node_validator,
    object_properties,
    parse_checks,
    required_names,
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
    required: bool = False  # its schema (or its row's, or its object's) requires it

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self.result.get("items") or [])


class DecisionError(ValueError):
    """The form does not decide every flagged path (or decides one in a way we cannot store)."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {text}" for name, text in problems.items()))
        self.problems = problems  # by path (``outcome`` for a failed document's outcome)


def _row(value: Any, index: int) -> dict[str, Any]:
    rows = value if isinstance(value, list) else []
    row = rows[index] if index < len(rows) else None
    return {"value": row, "found": row is not None, "confidence": None, "page": None, "bbox": None}


def _walk(
    schema: dict[str, Any],
    path: str,
    field: str,
    result: dict[str, Any],
    prop: object,
    required: bool,
) -> Iterator[Node]:
    prop = resolve(schema, prop)
    items, properties = result.get("items") or [], result.get("properties") or {}
    yield Node(path, field, result, prop, leaf=not (items or properties), required=required)
    rows = row_schema(schema, prop)
    columns, needed = object_properties(schema, rows) or {}, required_names(rows)
    for i, cells in enumerate(items):
        row_path = f"{path}[{i}]"
        yield Node(row_path, field, _row(result.get("value"), i), rows, not cells)
        for column, cell in cells.items():
            yield from _walk(
                schema, f"{row_path}.{column}", field, cell, columns.get(column), column in needed
            )
    declared, needed = object_properties(schema, prop) or {}, required_names(prop)
    for name, sub in properties.items():
        yield from _walk(schema, f"{path}.{name}", field, sub, declared.get(name), name in needed)


def record_nodes(record: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Node]:
    """Every field, row, cell and property of the record by path, in the record's order."""
    schema = schema or {}
    declared = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    needed = required_names(schema)
    nodes: dict[str, Node] = {}
    for name, result in (record.get("fields") or {}).items():
        for node in _walk(schema, name, name, result, (declared or {}).get(name), name in needed):
            nodes[node.path] = node
    return nodes


def schema_nodes(schema: dict[str, Any] | None) -> dict[str, Node]:
    """The schema's top-level properties as empty fields: what a failed document's values,
    entered by hand, fill in."""
    schema = schema or {}
    declared = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    needed = required_names(schema)
    return {
        name: Node(name, name, {"value": None}, resolve(schema, prop), True, name in needed)
        for name, prop in (declared or {}).items()
    }


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


def checks_after(
    record: dict[str, Any], schema: dict[str, Any] | None, review: dict[str, Any]
) -> list[dict[str, Any]]:
    """The schema's x-checks over the record's values as ``review`` corrects them: evaluation's
    own rule (``run_checks``), so a correction that breaks a sum is told as the pipeline would."""
    checks = list(schema_checks(schema).values())
    if not checks:
        return []
    fields = copy.deepcopy(record.get("fields") or {})
    for path, value in (review.get("corrected") or {}).items():
        with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
            _set_value(fields, path, value)
    return run_checks(checks, {name: _as_result(f) for name, f in fields.items()})


def _set_value(fields: dict[str, Any], path: str, value: Any) -> None:
    """Put a corrected ``value`` at ``path`` (``total``, ``line_items[1].amount``, ``a.b``)."""
    parts = [int(i) if i else n for n, i in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]
    first, rest = str(parts[0]), parts[1:]
    node: Any = fields.setdefault(first, {"value": None, "found": False})
    for part in rest:
        if isinstance(part, int):
            node = node["items"][part]  # a row: column -> cell result
        elif "properties" in node:
            node = node["properties"][part]
        else:
            node = node[part]
    node["value"], node["found"] = value, value is not None
    if isinstance(value, list):
        node["items"] = [
            {column: {"value": v, "found": v is not None} for column, v in row.items()}
            for row in value
            if isinstance(row, dict)
        ]


def _as_result(field: dict[str, Any]) -> FieldResult:
    items = field.get("items")
    properties = field.get("properties")
    return FieldResult(
        value=field.get("value"),
        found=bool(field.get("found")),
        confidence=None,
        score=None,
        reasoning=None,
        citations=[],
        page=None,
        bbox=None,
        items=[{c: _as_result(cell) for c, cell in row.items()} for row in items]
        if isinstance(items, list)
        else None,
        properties={p: _as_result(r) for p, r in properties.items()}
        if isinstance(properties, dict)
        else None,
    )


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


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"{literal} is not a finite number")
    return number


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON's")


def parse_value(text: str) -> Any:
    """A corrected value: JSON when it parses (finite numbers only: NaN, Infinity and 1e400
    cannot be stored), else the (stripped) string."""
    text = text.strip()
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    except ValueError:
        return text


def _types(prop: object) -> list[str]:
    kind = prop.get("type") if isinstance(prop, dict) else None
    if isinstance(kind, str):
        return [kind]
    return [k for k in kind if isinstance(k, str)] if isinstance(kind, list) else []


def is_number_type(prop: object) -> bool:
    return bool({"number", "integer"} & set(_types(prop)))


# A number as people type it: a currency sign or code around it, thousands grouped by ",", ".",
# a space or "'", then the decimal separator ("." or ",", not the grouping one) and the fraction.
_CURRENCY = re.compile(r"^(?:[$€£¥]|[A-Z]{3})?\s*(?P<n>.*?)\s*(?:[$€£¥]|[A-Z]{3})?$")
_NUMBER = re.compile(
    r"(?P<sign>-?)(?P<whole>\d{1,3}(?:(?P<sep>[,.' ])\d{3})(?:(?P=sep)\d{3})*|\d+)"
    r"(?:(?P<dec>[.,])(?P<fraction>\d+))?"
)
NOT_A_NUMBER = "not a number: type digits, e.g. 1234.50, 1,234.50 or 300,00"
NOT_A_WHOLE_NUMBER = "not a whole number: type digits, e.g. 3 or 1,200"
MAX_DIGITS = 38  # DynamoDB's numbers


def read_number(text: str, *, integer: bool = False) -> int | float:
    """``1,234.50``, ``$322.50``, ``300,00``, ``1.234,5``, ``EUR 12`` -> the number; ValueError.

    ``1,234`` is one thousand two hundred thirty-four; ``1.234`` (one dot, no comma) is a decimal.
    """
    stripped = text.replace("\u00a0", " ").strip()
    match = _NUMBER.fullmatch((_CURRENCY.fullmatch(stripped) or {"n": stripped})["n"])
    if match is None or (match["sep"] and match["sep"] == match["dec"]):
        raise ValueError(NOT_A_WHOLE_NUMBER if integer else NOT_A_NUMBER)
    whole, fraction = match["whole"], match["fraction"]
    if match["sep"] == "." and not fraction and whole.count(".") == 1 and not integer:
        whole, fraction = whole.split(".")  # 1.234 is a decimal, but a whole number's 1.000 is 1000
    digits = re.sub(r"\D", "", whole)
    if len(digits.lstrip("0")) + len(fraction or "") > MAX_DIGITS:
        raise ValueError(f"more than {MAX_DIGITS} digits: a record cannot hold that number")
    number: int | float = (
        float(f"{match['sign']}{digits}.{fraction}") if fraction else int(match["sign"] + digits)
    )
    if integer:
        if not float(number).is_integer():
            raise ValueError(f"{text.strip()} is not a whole number: type one, e.g. 3")
        return int(number)
    return number


_MONTHS = {
    name: i
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}


def read_date(text: str) -> str:
    """A date as typed -> ``YYYY-MM-DD``: ``2024-3-5``, ``2024/03/05``, ``5 March 2024``,
    ``Mar 5, 2024``, ``25.12.2024``; ``03/04/2024`` is refused (which is the month?)."""
    words = re.findall(r"[a-z]+|\d+", text.lower())
    numbers = [int(w) for w in words if w.isdigit()]
    months = [_MONTHS[w] for w in words if w in _MONTHS]
    if len(words) != 3 or len(numbers) + len(months) != 3:
        raise ValueError("not a date: type it as YYYY-MM-DD")
    if months:  # 5 March 2024, March 5 2024
        day, year = numbers if numbers[1] > 31 else numbers[::-1]
        month = months[0]
    elif len(words[0]) == 4:  # 2024-03-05
        year, month, day = numbers
    else:  # 25.12.2024, 12/25/2024: only when the day cannot be the month
        first, second, year = numbers
        if first <= 12 and second <= 12 and first != second:
            raise ValueError(f"{text.strip()} is ambiguous (day or month first?): type YYYY-MM-DD")
        day, month = (first, second) if first > 12 or first == second else (second, first)
    if year < 1000:
        raise ValueError(f"{text.strip()}: type the year in full (YYYY-MM-DD)")
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        raise ValueError(f"no such date: {text.strip()} (type it as YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Reading:
    """A typed correction as it will be stored; ``shown``: how it was read, when that is not
    the text as typed (``1,234.50`` -> ``read as 1234.5``)."""

    value: Any
    shown: str | None = None


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
    problem = "a value of its type"
    for kind in types:
        try:
            if kind in ("number", "integer"):
                return read_number(stripped, integer=kind == "integer")
            if kind == "boolean" and stripped in ("true", "false"):
                return stripped == "true"
            if kind == "string" and isinstance(prop, dict) and prop.get("format") == "date":
                return read_date(stripped)
            if kind == "string":
                return stripped
        except ValueError as exc:
            problem = str(exc)
    if types == ["boolean"]:
        problem = "true or false"
    raise ValueError(problem)


def schema_problem(value: Any, prop: object, schema: dict[str, Any] | None) -> str | None:
    """Why ``value`` fails its property schema (pattern, enum, range, type...), else None.

    Null is never checked here: whether a field may be absent is ``required``'s business.
    """
    if value is None or not isinstance(prop, dict) or schema is None:
        return None
    try:
        node_validator(schema, prop)(value)
    except SchemaInvalid:
        return None  # a schema we cannot compile checks nothing (evaluation said so already)
    except fastjsonschema.JsonSchemaValueException as exc:
        return "fails the schema: " + _schema_message(exc.message)
    return None


def _schema_message(message: str) -> str:
    """fastjsonschema's ``data[0].amount must be number`` -> ``[0].amount must be a number``;
    ``data must match pattern ...`` -> ``the value must match pattern ...``."""
    where, _, rest = message.partition(" ")
    inside = where.removeprefix("data").lstrip(".")
    rest = re.sub(r"^must be (number|integer|string|boolean|array|object|null)\b", _article, rest)
    return f"{inside or 'the value'} {rest}"


def _article(match: re.Match[str]) -> str:
    kind = match[1]
    return f"must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def read_correction(text: str, node: Node, schema: dict[str, Any] | None) -> Reading:
    """A correction box's text -> the value to store; ValueError with the reason to show."""
    value = parse_as(text, node.prop)
    if value is None:
        raise ValueError('for no value choose "not on the document"')
    problem = schema_problem(value, node.prop, schema)
    if problem:
        raise ValueError(problem)
    literal = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return Reading(value, None if literal == text.strip() else f"read as {literal}")


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


OUTCOMES = ("decided", "entered_by_hand", "reprocess", "rejected")
REJECT_REASONS = {
    "not_a_document": "not a document of this kind",
    "unreadable": "unreadable",
    "duplicate": "a duplicate of another document",
}
ABSENT_REQUIRED = 'required by the schema: tick "confirm" to say it is not on the document'


class _Decisions:
    """The answers of one form, gathered path by path."""

    def __init__(self, form: dict[str, list[str]], schema: dict[str, Any] | None) -> None:
        self.form, self.schema = form, schema
        self.problems: dict[str, str] = {}
        self.accepted: list[str] = []
        self.corrected: dict[str, Any] = {}
        self.notes: dict[str, str] = {}

    def absent(self, node: Node) -> None:
        if node.required and _first(self.form, f"confirm.{node.path}") != "yes":
            self.problems[node.path] = ABSENT_REQUIRED
        else:
            self.corrected[node.path] = None

    def accept(self, node: Node, *, anyway: bool) -> None:
        value = node.result.get("value")
        fails = schema_problem(value, node.prop, self.schema)
        note = (_first(self.form, f"note.{node.path}") or "").strip()
        if value is None and node.required:
            self.problems[node.path] = (
                'it is required and has no value: correct it, or choose "not on the document"'
            )
        elif fails and not anyway:
            self.problems[node.path] = f'the extracted value {fails}: correct it or "accept anyway"'
        elif anyway and not note:
            self.problems[node.path] = '"accept anyway" needs a note saying why'
        else:
            self.accepted.append(node.path)
            if anyway:
                self.notes[node.path] = note

    def correct(self, node: Node, text: str | None) -> None:
        if text is None or not text.strip():
            self.problems[node.path] = 'type the correct value (or choose "not on the document")'
        elif text.strip() == "null":
            self.absent(node)
        elif _same(text, node.result.get("value"), node.prop):
            self.accept(node, anyway=False)  # "corrected" to what it already was
        else:
            try:
                self.corrected[node.path] = read_correction(text, node, self.schema).value
            except ValueError as exc:
                self.problems[node.path] = str(exc)

    def decide(self, node: Node) -> None:
        decision = _first(self.form, f"decision.{node.path}")
        if decision == "accept":
            self.accept(node, anyway=False)
        elif decision == "accept_anyway":
            self.accept(node, anyway=True)
        elif decision == "absent":
            self.absent(node)
        elif decision == "correct":
            self.correct(node, _first(self.form, f"value.{node.path}"))
        else:
            self.problems[node.path] = "accept the value, correct it, or say it is not there"

    def enter(self, node: Node) -> None:
        """A value typed by hand for a failed document: empty is not on the document."""
        text = _first(self.form, f"value.{node.path}") or ""
        if not text.strip() or text.strip() == "null":
            self.absent(node)
        else:
            self.correct(node, text)


def is_failed(record: dict[str, Any]) -> bool:
    return record.get("status") == "failed"


def build_review(
    record: dict[str, Any],
    form: dict[str, list[str]],
    reviewer: str,
    decided_at: str | None = None,
    *,
    schema: dict[str, Any] | None = None,
    audit: bool = False,
) -> dict[str, Any]:
    """The ``review`` object for this form; DecisionError names each path left undecided.

    A failed document's form chooses an ``outcome`` instead (``_failed_review``). A
    ``reprocess`` review is returned without ``reprocessed_as``: the caller reprocesses.
    """
    reviewer = reviewer.strip()
    if not reviewer:
        raise ValueError("a review needs the reviewer's name")
    base = {"reviewer": reviewer, "decided_at": decided_at or utc_now_iso()}
    if is_failed(record):
        return {**base, **_failed_review(form, schema)}
    nodes = record_nodes(record, schema)
    decide = to_decide(record, schema, audit=audit)
    answers = _Decisions(form, schema)
    for path in decide:
        answers.decide(nodes[path])
    fields_deciding = {nodes[path].field for path in decide}
    for name in record.get("fields") or {}:
        text = _first(form, f"value.{name}")
        if name in fields_deciding or text is None:
            continue
        node = nodes[name]
        if not _same(text, node.result.get("value"), node.prop):
            answers.correct(node, text)
    if answers.problems:
        raise DecisionError(answers.problems)
    review: dict[str, Any] = {**base, "outcome": "decided", "accepted": answers.accepted}
    review["corrected"] = answers.corrected
    return {**review, "notes": answers.notes} if answers.notes else review


def _failed_review(form: dict[str, list[str]], schema: dict[str, Any] | None) -> dict[str, Any]:
    outcome = _first(form, "outcome")
    note = (_first(form, "note") or "").strip()
    extra = {"note": note} if note else {}
    if outcome == "reprocess":
        return {"outcome": outcome, "accepted": [], "corrected": {}, **extra}
    if outcome == "rejected":
        reason = _first(form, "reject_reason")
        if reason not in REJECT_REASONS:
            raise DecisionError({"outcome": "say why it is rejected"})
        rejected = {"outcome": outcome, "rejected_reason": reason}
        return {**rejected, "accepted": [], "corrected": {}, **extra}
    if outcome != "entered_by_hand":
        raise DecisionError(
            {"outcome": "choose an outcome: enter the values by hand, reprocess, or reject"}
        )
    nodes = schema_nodes(schema)
    if not nodes:
        raise DecisionError({"outcome": "no schema for this type: nothing to enter by hand"})
    answers = _Decisions(form, schema)
    for node in nodes.values():
        answers.enter(node)
    if answers.problems:
        raise DecisionError(answers.problems)
    return {"outcome": outcome, "accepted": [], "corrected": answers.corrected, **extra}


def check_correction(
    record: dict[str, Any], schema: dict[str, Any] | None, path: str, text: str
) -> dict[str, Any]:
    """What the page shows beside a box as the reviewer types: ``{"shown": "read as 1234.5"}``
    or ``{"problem": "..."}`` (``{}``: nothing to say). The same reading the decision uses."""
    nodes = schema_nodes(schema) if is_failed(record) else record_nodes(record, schema)
    node = nodes.get(path)
    if node is None:
        return {"problem": f"no field {path}"}
    return reading_of(text, node, schema)


def reading_of(text: str, node: Node, schema: dict[str, Any] | None) -> dict[str, Any]:
    """``check_correction`` for a node at hand (the page renders it for a form sent back)."""
    if not text.strip() or _same(text, node.result.get("value"), node.prop):
        return {}
    if text.strip() == "null":
        return {"shown": "null: not on the document" + (" (required: confirm)" * node.required)}
    try:
        reading = read_correction(text, node, schema)
    except ValueError as exc:
        return {"problem": str(exc)}
    if reading.shown:
        return {"shown": reading.shown}
    if isinstance(reading.value, str) and reading.value != text:
        return {"shown": f"read as {reading.value} (spaces around it dropped)"}
    constraints = _CONSTRAINTS & set(node.prop) if isinstance(node.prop, dict) else set()
    return (
        {"shown": "fits the schema (" + ", ".join(sorted(constraints)) + ")"} if constraints else {}
    )


# What a value can fail beyond its type: a correction meeting any of these says so.
_CONSTRAINTS = frozenset(
    {"pattern", "enum", "const", "format", "minimum", "maximum", "minLength", "maxLength"}
)


# ---------------------------------------------------------------------- revisions and history

# What a review says beyond who and when; two reviews that agree on these are the same decision.
_BOOKKEEPING = frozenset({"reviewer", "decided_at", "history"})


def _outcome_stated(review: dict[str, Any] | None) -> dict[str, Any] | None:
    """Reviews stored before outcomes existed decided fields: their outcome is ``decided``."""
    if review is None or "outcome" in review:
        return review
    return {**review, "outcome": "decided"}


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
        # reprocessed_as follows from the reprocess outcome; it is not decided
        ignored = _BOOKKEEPING | {"reprocessed_as"}
        rest = {k: v for k, v in (_outcome_stated(review) or {}).items() if k not in ignored}
        return rest | {
            "accepted": sorted(rest.get("accepted") or []),
            "corrected": rest.get("corrected") or {},
        }

    return what(a) == what(b)


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """What ``after`` changes of ``before``: ``{path, was, now}`` for each path decided otherwise
    (was/now: the path's decision, null when undecided) and for any other key of the review
    (``outcome``) whose value differs."""
    if before is not None:
        before, after = _outcome_stated(before), _outcome_stated(after) or after
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
