"""The local stack for integration tests: moto + the real ASL + the real handlers + the emulator."""

from __future__ import annotations

import pytest

from doctriage_local.emulator import EmulatorConfig
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions

# 1 s of the pipeline's timeline takes 10 ms here: fast, yet the 300 s scoring deadline is still 3 s
# of wall time, which a loaded 2-core CI machine meets.
TIME_SCALE = 0.01


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(
        time_scale=TIME_SCALE,
        emulator=EmulatorConfig(),
        # Short enough that a hung Datalab response times out within a test (not time-scaled).
        environment={"DATALAB_TIMEOUT_SECONDS": "2"},
    )
    with LocalStack(options) as running:
        for schema in (SAMPLES / "schemas").glob("*.json"):
            running.put_schema(schema.stem, schema)
        yield running


@pytest.fixture
def emulator(stack):
    stack.emulator.clear_faults()
    yield stack.emulator
    stack.emulator.clear_faults()


def process(stack, body, doc_type, *, name, metadata=None, timeout=60.0):
    """Upload one document and wait for its terminal record."""
    uploaded = stack.upload(body, doc_type, name=name, metadata=metadata)
    records = stack.wait_for_records([uploaded["document_id"]], timeout=timeout)
    assert uploaded["document_id"] in records, f"no record for {name} within {timeout} s"
    return records[uploaded["document_id"]]


def review_messages_for(stack, document_id):
    return [m for m in stack.review_messages() if m["document_id"] == document_id]
