"""The spend guard through the local stack: over DailyPageBudget an upload waits, unsent and
unfailed, on the intake queue; raising the budget lets it through.

Spending is counted from the records (evaluate adds each document's pages and cents to the usage
table), as the deployed roles allow: submit only reads it, evaluate only adds to it.
"""

from __future__ import annotations

import os
import time

import pytest

from doctriage_core import runtime
from doctriage_core.domain.budget import Periods
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record
from tests.integration.helpers import TIME_SCALE, process

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
# The held upload looks again every 900 s of pipeline time: 9 s here.
HELD_FOR = 12.0


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(time_scale=TIME_SCALE, parameters={"DailyPageBudget": "1"})
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


def _usage(stack: LocalStack) -> dict:
    table = stack.client("dynamodb")
    key = {"period": {"S": Periods.at(time.time()).day}}
    item = table.get_item(TableName=stack.physical["UsageTable"], Key=key).get("Item", {})
    return {k: float(v["N"]) for k, v in item.items() if "N" in v}


def test_over_the_daily_budget_an_upload_waits_unsent_until_the_budget_is_raised(stack):
    # GIVEN a day's budget of one page, spent by the first document
    first = process(stack, ACME.read_bytes(), "invoice", name="within-budget.pdf")
    assert first["status"] == "complete", first["error"]
    assert _usage(stack) == {"pages": 1, "cents": 1, "documents": 1}
    sent = stack.emulator.stats["submit"]

    # WHEN another upload arrives
    held = stack.upload(ACME.read_bytes(), "invoice", name="over-budget.pdf")

    # THEN it is not sent to Datalab, nor recorded (not even as failed), however long it waits
    records = stack.wait_for_records([held["document_id"]], timeout=HELD_FOR)
    assert records == {}
    assert stack.emulator.stats["submit"] == sent
    assert stack.record(held["document_id"]) is None

    # WHEN the budget is raised (sam deploy would give the function its new environment)
    os.environ["DAILY_PAGE_BUDGET"] = "100"
    runtime.reset()
    try:
        # THEN the held upload goes through at its next look
        records = stack.wait_for_records([held["document_id"]], timeout=60)
    finally:
        os.environ["DAILY_PAGE_BUDGET"] = "1"
        runtime.reset()
    record = records[held["document_id"]]
    assert_valid_record(record)
    assert (record["status"], record["review_status"]) == ("complete", "auto")
    assert _usage(stack)["pages"] == 2
