"""A 500-row table through the deployed evaluate function: the record fits in DynamoDB.

Its cells would take the item over DynamoDB's 400 KB limit, so evaluate keeps them in S3 beside
the raw result (as its role, with the template's permission) and the record says where.
"""

from __future__ import annotations

import json

import pytest

from doctriage_core.domain.documents import cells_key_for, result_key_for
from doctriage_core.domain.records import RECORD_BUDGET_BYTES, record_size
from doctriage_local.paths import PROJECT_ROOT
from doctriage_local.review.connect import consumer_for_stack
from doctriage_local.stack import LocalStack, StackOptions
from tests.contracts import assert_valid_record, assert_valid_review_message
from tests.integration.helpers import TIME_SCALE
from tests.unit.test_workflow import _table_result

DOCUMENT_ID = "doc-large-table-500-rows"


@pytest.fixture(scope="module")
def stack():
    with LocalStack(StackOptions(time_scale=TIME_SCALE)) as running:
        yield running


def _state(stack: LocalStack) -> dict:
    state = json.loads((PROJECT_ROOT / "events" / "evaluate.json").read_text())
    state["document"].update(
        document_id=DOCUMENT_ID, bucket=stack.bucket, key="incoming/bigtable/table.pdf"
    )
    state["document"]["doc_type"] = "bigtable"
    state["schema"]["key"] = "schemas/bigtable.json"
    state["poll"]["result_key"] = result_key_for(DOCUMENT_ID)
    return state


def test_a_500_row_table_keeps_its_cells_in_s3_beside_the_raw_result(stack):
    schema, result = _table_result(500)
    stack.put_schema("bigtable", json.dumps(schema))
    s3 = stack.client("s3")
    s3.put_object(
        Bucket=stack.bucket, Key=result_key_for(DOCUMENT_ID), Body=json.dumps(result).encode()
    )

    summary, errored = stack.invoke("EvaluateFunction", _state(stack))

    assert not errored, summary
    record = stack.record(DOCUMENT_ID)
    assert record is not None
    assert_valid_record(record)
    assert record_size(record) <= RECORD_BUDGET_BYTES
    assert record["cells"]["key"] == cells_key_for(DOCUMENT_ID)
    assert "items" not in record["fields"]["line_items"]
    body = s3.get_object(Bucket=stack.bucket, Key=record["cells"]["key"])["Body"].read()
    cells = json.loads(body)["line_items"]
    assert len(cells) == 500
    assert cells[7]["amount"]["score"] == 2
    [message] = stack.review_messages()
    assert_valid_review_message(message)
    assert message["flagged_paths"] == ["line_items[7].amount"]

    # The reviewer sees the cells as evaluated: the review consumer puts them back.
    consumer = consumer_for_stack(stack)
    opened = consumer.open_next(wait_seconds=5)
    assert opened is not None
    assert opened.document_id == DOCUMENT_ID
    assert "cells" not in opened.record
    assert opened.record["fields"]["line_items"]["items"] == cells
    consumer.release(opened)
