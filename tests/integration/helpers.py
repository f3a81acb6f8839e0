"""Helpers for the integration tests (the fixtures stay in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from doctriage_local.paths import SAMPLE_SCHEMAS
from doctriage_local.stack import LocalStack, StackOptions

# 1 s of the pipeline's timeline takes 10 ms here: fast, yet the 300 s scoring deadline is still 3 s
# of wall time, which a loaded 2-core CI machine meets.
TIME_SCALE = 0.01


@contextmanager
def stack_with_sample_schemas(options: StackOptions) -> Iterator[LocalStack]:
    """A running local stack with every sample schema in its bucket."""
    with LocalStack(options) as running:
        for schema in SAMPLE_SCHEMAS.glob("*.json"):
            running.put_schema(schema.stem, schema)
        yield running


def process(
    stack: Any,
    body: Any,
    doc_type: str,
    *,
    name: str,
    metadata: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Upload one document and wait for its terminal record."""
    uploaded = stack.upload(body, doc_type, name=name, metadata=metadata)
    records = stack.wait_for_records([uploaded["document_id"]], timeout=timeout)
    assert uploaded["document_id"] in records, f"no record for {name} within {timeout} s"
    record: dict[str, Any] = records[uploaded["document_id"]]
    return record


def review_messages_for(stack: Any, document_id: str) -> list[dict[str, Any]]:
    """The review queue's messages about ``document_id`` (left on the queue)."""
    return [m for m in stack.review_messages() if m["document_id"] == document_id]
