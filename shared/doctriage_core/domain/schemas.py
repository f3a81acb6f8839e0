"""Extraction schemas and review thresholds.

An extraction schema is a JSON Schema object stored at ``schemas/<doc_type>.json``: it is sent to
Datalab as ``page_schema`` and it is also what we check the extracted values against. Each
property is validated on its own by a compiled fastjsonschema validator, so one bad field never
hides another.

Thresholds (0-1) come from four places; the most specific present one wins: upload metadata >
property ``x-review-threshold`` > top-level ``x-review-threshold`` > stack default.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import fastjsonschema

from doctriage_core.domain.documents import UPLOAD_THRESHOLD_METADATA
from doctriage_core.errors import InvalidThreshold, SchemaInvalid

THRESHOLD_KEY = "x-review-threshold"
# Local definitions a property may $ref ("#/definitions/x", "#/$defs/x"): copied into each
# property's own schema so the reference still resolves when the property is compiled alone.
_DEFINITION_KEYS = ("definitions", "$defs")
SUFFIXES = ("_citations", "_score")
# The validator cache's key: the same text as json.dumps(..., sort_keys=True), without building
# a new encoder for every property of every document (json.dumps does when given sort_keys).
_CACHE_KEY = json.JSONEncoder(sort_keys=True)
# Schemas that passed load_schema's checks, by their text. The checks depend on the text alone
# and a warm container reads the same few schemas for every document, so a text seen before
# gives back the schema parsed then (callers only read it), and its validators stay cached.
_CHECKED: dict[str, dict[str, Any]] = {}
_CHECKED_TEXTS_MAX = 64

Validator = Callable[[Any], Any]


def parse_threshold(value: object, *, source: str) -> float:
    """A review threshold as a float in [0, 1]; numbers or numeric strings ("0.9").

    Booleans, NaN, infinities, out-of-range values and anything else raise InvalidThreshold
    naming ``source`` so the failure says where the bad value came from.
    """
    number: float | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not 0.0 <= number <= 1.0:  # NaN fails the range test too
        raise InvalidThreshold(
            f"{source}: review threshold must be a number in [0, 1], got {value!r}"
        )
    return number


def document_threshold(
    schema: dict[str, Any], *, default_threshold: float, upload_threshold: float | None
) -> float:
    """The document-level threshold: upload > document type (top-level key) > stack default."""
    if upload_threshold is not None:
        return parse_threshold(
            upload_threshold, source=f"upload metadata {UPLOAD_THRESHOLD_METADATA}"
        )
    if THRESHOLD_KEY in schema:
        return parse_threshold(schema[THRESHOLD_KEY], source=f"schema top-level {THRESHOLD_KEY}")
    return parse_threshold(default_threshold, source="stack default HumanReviewThreshold")


def field_threshold(
    prop: object,
    name: str,
    *,
    doc_threshold: float,
    upload_threshold: float | None,
    enclosing: float | None = None,
) -> float:
    """One property's threshold: upload > property > the enclosing property's > the document's.

    The one place the precedence is written. ``doc_threshold`` is :func:`document_threshold`,
    computed once per document and passed in; ``enclosing`` is the threshold that applied to
    the array or object a cell belongs to (``line_items`` for ``line_items[0].amount``): a
    column's ``x-review-threshold`` in the item schema applies to its cells, else the array's.
    """
    if upload_threshold is None and isinstance(prop, dict) and THRESHOLD_KEY in prop:
        return parse_threshold(prop[THRESHOLD_KEY], source=f"property {name!r} {THRESHOLD_KEY}")
    return enclosing if enclosing is not None else doc_threshold


def resolve(schema: dict[str, Any], node: object) -> object:
    """``node`` with a local ``$ref`` (``#/$defs/x``, ``#/definitions/x``) followed, else as is."""
    for _ in range(16):  # a chain of references, never a loop
        if not isinstance(node, dict) or not isinstance(node.get("$ref"), str):
            return node
        target: object = schema
        for part in node["$ref"].lstrip("#").strip("/").split("/"):
            if not part:
                continue
            if not isinstance(target, dict) or part not in target:
                return node
            target = target[part]
        node = target
    return node


def object_properties(schema: dict[str, Any], prop: object) -> dict[str, Any] | None:
    """The declared properties of a nested object property, else None."""
    prop = resolve(schema, prop)
    if isinstance(prop, dict) and isinstance(prop.get("properties"), dict) and prop["properties"]:
        return {name: resolve(schema, sub) for name, sub in prop["properties"].items()}
    return None


def row_schema(schema: dict[str, Any], prop: object) -> dict[str, Any] | None:
    """The item schema of an array-of-objects property (one with declared columns), else None."""
    prop = resolve(schema, prop)
    if not isinstance(prop, dict) or "items" not in prop:
        return None
    items = resolve(schema, prop["items"])
    if isinstance(items, dict) and object_properties(schema, items) is not None:
        return items
    return None


def required_names(node: object) -> frozenset[str]:
    required = node.get("required") if isinstance(node, dict) else None
    if not isinstance(required, list):
        return frozenset()
    return frozenset(r for r in required if isinstance(r, str))


def node_validator(
    schema: dict[str, Any], node: dict[str, Any], *, drop: tuple[str, ...] = ()
) -> Validator:
    """The compiled validator of any sub-schema (a column, a row, an array without ``drop``)."""
    try:
        return _compile_standalone(schema, node, drop)
    except Exception as exc:  # fastjsonschema raises several types (definition, regex, ...)
        raise SchemaInvalid(f"a nested property is not a usable JSON Schema: {exc}") from exc


def _compile_standalone(
    schema: dict[str, Any], node: dict[str, Any], drop: tuple[str, ...] = ()
) -> Validator:
    """``node`` compiled on its own, with the document's definitions its $refs may name."""
    standalone = {k: v for k, v in node.items() if k not in drop}
    for key in _DEFINITION_KEYS:
        if key in schema and key not in standalone:
            standalone[key] = schema[key]
    return _compile(_CACHE_KEY.encode(standalone))


# (schema object, property name) -> validator, for the schema objects load_schema hands out
# again (it keeps them): encoding a property to find its compiled validator costs more than
# validating with it.
_VALIDATORS: dict[tuple[int, str], tuple[dict[str, Any], Validator]] = {}


def property_validator(schema: dict[str, Any], name: str) -> Validator:
    """The compiled validator of one property (cached by the property's JSON text)."""
    known = _VALIDATORS.get((id(schema), name))
    if known is not None and known[0] is schema:
        return known[1]
    validator = _property_validator(schema, name)
    if len(_VALIDATORS) >= 4 * _CHECKED_TEXTS_MAX:
        _VALIDATORS.clear()
    _VALIDATORS[(id(schema), name)] = (schema, validator)
    return validator


def _property_validator(schema: dict[str, Any], name: str) -> Validator:
    prop = schema["properties"][name]
    if not isinstance(prop, dict):
        raise SchemaInvalid(f"property {name!r}: its schema must be a JSON object")
    try:
        return _compile_standalone(schema, prop)
    except Exception as exc:  # fastjsonschema raises several types (definition, regex, ...)
        raise SchemaInvalid(f"property {name!r}: not a usable JSON Schema: {exc}") from exc


def _refuse_remote(uri: str) -> Any:
    raise SchemaInvalid(
        f"$ref resolves to {uri!r}, outside the schema: only local references (#/...) are "
        "allowed, and no schema is ever fetched"
    )


class _NoRemoteRefs(Mapping[str, Callable[[str], Any]]):
    """fastjsonschema's ``handlers``: every URI scheme has one, and it refuses.

    fastjsonschema fetches a remote ``$ref`` with urlopen (no timeout, any scheme, file://
    included) unless a handler for its scheme is given; claiming every scheme leaves it none.
    """

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _refuse_remote

    def __contains__(self, scheme: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_NO_REMOTE_REFS = _NoRemoteRefs()


@lru_cache(maxsize=2048)
def _compile(schema_text: str) -> Validator:
    return fastjsonschema.compile(json.loads(schema_text), handlers=_NO_REMOTE_REFS)


def _check_refs(node: object, path: str = "#") -> None:
    """Every ``$ref`` is local (``#...``): a schema is one self-contained document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise SchemaInvalid(
                f"$ref {ref!r} at {path} is not a local reference: only references within "
                "the schema (#/definitions/..., #/$defs/...) are allowed; nothing is fetched"
            )
        for key, value in node.items():
            _check_refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_refs(value, f"{path}/{index}")


def load_schema(raw: bytes | str) -> dict[str, Any]:
    """Parse and check an extraction schema; SchemaInvalid with a clear message if unusable.

    Beyond JSON Schema itself we require: a non-empty ``properties`` object whose property schemas
    are objects that compile; every ``$ref`` local (``#/...``: nothing is ever fetched);
    ``required`` a list of declared property names; every ``x-review-threshold`` a number in
    [0, 1]; and no property named like another property's ``_score`` / ``_citations`` key
    (``credit`` beside ``credit_score``), because Datalab's flat output could not tell the value
    of one from the score of the other.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        known = _CHECKED.get(text)
        if known is not None:
            return known
        schema = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SchemaInvalid(f"schema is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise SchemaInvalid(f"schema must be a JSON object, got {type(schema).__name__}")
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise SchemaInvalid('schema must have a non-empty "properties" object')
    _check_refs(schema)
    _check_properties(schema, properties)
    _check_required(schema.get("required", []), properties)
    _check_thresholds(schema, properties)
    _check_nested(schema, properties, "")
    parse_checks(schema)
    if len(_CHECKED) >= _CHECKED_TEXTS_MAX:
        _CHECKED.clear()
    _CHECKED[text] = schema
    return schema


def _check_properties(schema: dict[str, Any], properties: dict[str, Any]) -> None:
    for name in properties:
        if not name.strip():
            raise SchemaInvalid("schema has a property with an empty name")
        for suffix in SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in properties:
                raise SchemaInvalid(
                    f"property {name!r} collides with the {suffix} key of property "
                    f"{name[: -len(suffix)]!r}; rename one of them"
                )
        property_validator(schema, name)


def _check_required(required: object, properties: dict[str, Any]) -> None:
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise SchemaInvalid('"required" must be a list of property names')
    unknown = sorted(set(required) - set(properties))
    if unknown:
        raise SchemaInvalid(f'"required" names undeclared properties: {", ".join(unknown)}')


def _check_thresholds(schema: dict[str, Any], properties: dict[str, Any]) -> None:
    try:
        if THRESHOLD_KEY in schema:
            parse_threshold(schema[THRESHOLD_KEY], source=f"schema top-level {THRESHOLD_KEY}")
        for name, prop in properties.items():
            if THRESHOLD_KEY in prop:
                parse_threshold(prop[THRESHOLD_KEY], source=f"property {name!r} {THRESHOLD_KEY}")
    except InvalidThreshold as exc:
        raise SchemaInvalid(str(exc)) from exc


def _check_nested(schema: dict[str, Any], properties: dict[str, Any], where: str) -> None:
    """The nested columns and properties obey the same naming rule as the top level."""
    for name, prop in properties.items():
        nested = object_properties(schema, prop)
        rows = row_schema(schema, prop)
        if rows is not None:
            nested = object_properties(schema, rows)
        if nested is None:
            continue
        path = f"{where}{name}"
        for sub, sub_prop in nested.items():
            if isinstance(sub_prop, dict) and THRESHOLD_KEY in sub_prop:
                try:
                    parse_threshold(sub_prop[THRESHOLD_KEY], source=f"property {path}.{sub}")
                except InvalidThreshold as exc:
                    raise SchemaInvalid(str(exc)) from exc
            for suffix in SUFFIXES:
                if sub.endswith(suffix) and sub[: -len(suffix)] in nested:
                    raise SchemaInvalid(
                        f"property {path}.{sub!s} collides with the {suffix} key of "
                        f"{path}.{sub[: -len(suffix)]}; rename one of them"
                    )
        _check_nested(schema, nested, f"{path}.")


# --- x-checks: declared sums -------------------------------------------------------------------

CHECKS_KEY = "x-checks"
_CHECK_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_SEGMENT = re.compile(r"^([^.\[\]]+)(\[\])?$")
_CHECK_KEYS = frozenset({"name", "sum", "equals", "tolerance", "description"})

# A path: (property name, True when followed by "[]": every row of that array).
PathSegment = tuple[str, bool]


@dataclass(frozen=True)
class Check:
    name: str
    sum: tuple[tuple[PathSegment, ...], ...]
    equals: tuple[PathSegment, ...]
    tolerance: float


def parse_path(
    schema: dict[str, Any], text: object, *, rows_allowed: bool, source: str
) -> tuple[PathSegment, ...]:
    """``line_items[].amount`` / ``tax_amount`` / ``address.city`` checked against the schema."""
    if not isinstance(text, str) or not text:
        raise SchemaInvalid(f"{source}: a path must be a non-empty string, got {text!r}")
    segments: list[PathSegment] = []
    props: dict[str, Any] | None = schema.get("properties")
    parts = text.split(".")
    for position, part in enumerate(parts):
        match = _SEGMENT.match(part)
        if match is None or props is None or match.group(1) not in props:
            raise SchemaInvalid(f"{source}: path {text!r} does not name a declared property")
        name, each = match.group(1), match.group(2) is not None
        prop = resolve(schema, props[name])
        last = position == len(parts) - 1
        if each:
            rows = row_schema(schema, prop)
            if not rows_allowed or rows is None or last:
                raise SchemaInvalid(
                    f"{source}: path {text!r}: [] names a column of an array of objects"
                    + ("" if rows_allowed else ", and only in sum")
                )
            props = object_properties(schema, rows)
        elif not last:
            props = object_properties(schema, prop)
        segments.append((name, each))
    return tuple(segments)


def _parse_check(schema: dict[str, Any], raw: object, position: int) -> Check:
    source = f"{CHECKS_KEY}[{position}]"
    if not isinstance(raw, dict):
        raise SchemaInvalid(f"{source} must be an object")
    unknown = sorted(set(raw) - _CHECK_KEYS)
    if unknown:
        raise SchemaInvalid(f"{source}: unknown keys {', '.join(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not _CHECK_NAME.match(name):
        raise SchemaInvalid(f"{source}: name must be letters, digits, _ . -; got {name!r}")
    sums = raw.get("sum")
    if not isinstance(sums, list) or not sums:
        raise SchemaInvalid(f"{source} ({name}): sum must be a non-empty list of paths")
    tolerance = raw.get("tolerance", 0)
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, int | float)
        or not math.isfinite(tolerance)
        or tolerance < 0
    ):
        raise SchemaInvalid(f"{source} ({name}): tolerance must be a number >= 0")
    return Check(
        name=name,
        sum=tuple(
            parse_path(schema, p, rows_allowed=True, source=f"{source} ({name}) sum") for p in sums
        ),
        equals=parse_path(
            schema, raw.get("equals"), rows_allowed=False, source=f"{source} ({name}) equals"
        ),
        tolerance=float(tolerance),
    )


def parse_checks(schema: dict[str, Any]) -> list[Check] | None:
    """The schema's ``x-checks`` (None when it declares none); SchemaInvalid when unusable."""
    if CHECKS_KEY not in schema:
        return None
    raw = schema[CHECKS_KEY]
    if not isinstance(raw, list):
        raise SchemaInvalid(f"{CHECKS_KEY} must be a list of checks")
    checks = [_parse_check(schema, item, i) for i, item in enumerate(raw)]
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SchemaInvalid(f"{CHECKS_KEY}: duplicate check names {', '.join(duplicates)}")
    return checks
