"""A request_check_url off the configured API origin is refused before anything is sent to it.

The emulator answers submits with a check URL on another host, scheme or port; the poll must fail
the document with ``untrusted_check_url`` and never send the API key there. The emulator itself
listens on 127.0.0.1, so "localhost" or "127.0.0.2" (same machine, other origin) would reach it:
its ``check`` counter proves that no poll was sent at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from doctriage_local.emulator import DatalabEmulator, EmulatorConfig
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record, assert_valid_review_message

TIME_SCALE = 0.01
ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


@pytest.fixture(scope="module")
def untrusted_stack():
    options = StackOptions(time_scale=TIME_SCALE, emulator=EmulatorConfig())
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


@pytest.fixture
def emulator(untrusted_stack) -> Iterator[DatalabEmulator]:
    emulator: DatalabEmulator = untrusted_stack.emulator
    emulator.clear_faults()
    yield emulator
    emulator.config.check_host = None


CHECK_HOSTS: dict[str, Callable[[int], str]] = {
    "other-loopback-address": lambda port: "127.0.0.2",  # emulator: http://127.0.0.2:<port>
    "localhost-by-name": lambda port: "localhost",
    "other-scheme": lambda port: f"https://127.0.0.1:{port}",
    "other-port": lambda port: f"http://127.0.0.1:{port + 1}",
    "foreign-host": lambda port: "https://evil.example",
}


@pytest.mark.parametrize("check_host", list(CHECK_HOSTS), ids=list(CHECK_HOSTS))
def test_a_check_url_off_the_api_origin_is_refused_before_sending(
    untrusted_stack, emulator, check_host
):
    stack = untrusted_stack
    emulator.config.check_host = CHECK_HOSTS[check_host](emulator.port)
    stats = emulator.stats
    name = f"untrusted-{check_host}.pdf"

    uploaded = stack.upload(ACME.read_bytes(), "invoice", name=name)
    records = stack.wait_for_records([uploaded["document_id"]], timeout=20)
    assert uploaded["document_id"] in records, f"no record for {name} within 20 s"
    record = records[uploaded["document_id"]]

    assert_valid_record(record)
    assert record["status"] == "failed"
    assert record["review_status"] == "needs_review"
    assert record["flags"] == ["extraction_failed:untrusted_check_url"]
    assert record["error"]["type"] == "UntrustedCheckUrl"
    assert "not on the configured API origin" in record["error"]["message"]
    assert stack.datalab_api_key not in json.dumps(record)

    after = emulator.stats
    assert after["submit"] == stats["submit"] + 1  # the submit went to the API itself
    request_id, filename = after["submissions"][-1]
    assert filename == name
    assert record["datalab"]["request_id"] == request_id
    assert after["check"] == stats["check"]  # no poll reached the emulator, key or not
    # The failure path records the document, then the execution ends successfully.
    execution = stack.finished_execution(record["document_id"], timeout=10.0)
    assert execution["status"] == "SUCCEEDED"
    states = stack.states_entered(record["document_id"])
    assert "Record Failure" in states
    assert "Evaluate Fields" not in states
    messages = [m for m in stack.review_messages() if m["document_id"] == record["document_id"]]
    assert len(messages) == 1
    assert_valid_review_message(messages[0])


def test_the_configured_origin_still_works(untrusted_stack, emulator):
    stack = untrusted_stack
    emulator.config.check_host = None
    checks = emulator.stats["check"]
    uploaded = stack.upload(ACME.read_bytes(), "invoice", name="trusted.pdf")
    records = stack.wait_for_records([uploaded["document_id"]], timeout=20)
    record = records[uploaded["document_id"]]
    assert record["status"] == "complete"
    assert record["review_status"] == "auto"
    assert emulator.stats["check"] > checks
