"""Contract checks other tests share: records and review messages against contracts/*.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"


@cache
def _validator(name: str) -> Draft202012Validator:
    schemas = {p.name: json.loads(p.read_text()) for p in CONTRACTS.glob("*.schema.json")}
    registry: Registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    schema = schemas[name]
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry)


def _assert_valid(name: str, instance: Any) -> None:
    # A JSON round trip first: what is stored or sent is JSON, and NaN must not sneak through.
    text = json.dumps(instance, allow_nan=False)
    errors = sorted(_validator(name).iter_errors(json.loads(text)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def assert_valid_record(record: dict[str, Any]) -> None:
    _assert_valid("record.schema.json", record)


def assert_valid_review_message(msg: dict[str, Any]) -> None:
    _assert_valid("review-message.schema.json", msg)
