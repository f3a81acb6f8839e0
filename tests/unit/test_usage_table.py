"""adapters/aws.py on moto: the usage table's spend counters (once per document) and the shared
request budget's windows (no more than their allowance)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from doctriage_core.adapters.aws import RequestBudgetTable, UsageTable


@pytest.fixture
def dynamodb():
    with mock_aws():
        ddb = boto3.resource("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="usage",
            KeySchema=[{"AttributeName": "period", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "period", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ddb


def test_nothing_spent_reads_as_zero(dynamodb):
    assert UsageTable("usage", dynamodb).spent("day#2026-12-01", "month#2026-12") == (0, 0.0)


def test_a_document_counts_once_in_its_day_and_month_however_often_it_is_added(dynamodb):
    usage = UsageTable("usage", dynamodb)
    usage.add("doc-1", "day#2026-12-01", "month#2026-12", pages=3, cents=2.0)
    usage.add("doc-1", "day#2026-12-01", "month#2026-12", pages=3, cents=2.0)  # a retry
    usage.add("doc-2", "day#2026-12-02", "month#2026-12", pages=1, cents=0.5)
    assert usage.spent("day#2026-12-01", "month#2026-12") == (3, 2.5)
    assert usage.spent("day#2026-12-02", "month#2026-12") == (1, 2.5)


def test_a_request_window_grants_its_allowance_then_refuses_until_the_next(dynamodb):
    budget = RequestBudgetTable("usage", dynamodb)
    assert [budget.take("requests#1", 3, 9999) for _ in range(5)] == [True] * 3 + [False] * 2
    assert budget.take("requests#2", 3, 9999) is True
