"""DynamoDB, SQS and Step Functions errors as AWS answers them, through the adapters.

botocore retries throttling on its own; what still surfaces is AwsUnavailable (a TransientError:
the intake message is redelivered with back-off, the state machine retries), while anything else
(AccessDenied, validation) surfaces as it came. Found in review: raw ClientErrors waited out the
intake queue's whole visibility timeout and, on the last delivery, left no record.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from doctriage_core import errors
from doctriage_core.adapters.aws import ResultsTable, ReviewQueue, Workflows

NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"}, region_name="us-east-1")
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:docs"


def _client(service: str) -> Any:
    factory: Any = boto3.client  # any service by name: the stubs' overloads want a literal
    return factory(service, config=NO_RETRIES, aws_access_key_id="k", aws_secret_access_key="s")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("ServiceUnavailable", 503),
        ("InternalFailure", 500),
    ],
)
def test_a_throttled_or_failing_step_functions_is_transient(code: str, status: int) -> None:
    client = _client("stepfunctions")
    workflows = Workflows(MACHINE, client)
    with Stubber(client) as stub:
        stub.add_client_error("describe_execution", code, http_status_code=status)
        with pytest.raises(errors.AwsUnavailable) as caught:
            workflows.exists("doc-1")
    assert isinstance(caught.value, errors.TransientError)
    assert code in str(caught.value)


def test_an_execution_that_does_not_exist_is_an_answer_not_an_error() -> None:
    client = _client("stepfunctions")
    with Stubber(client) as stub:
        stub.add_client_error("describe_execution", "ExecutionDoesNotExist", http_status_code=400)
        assert Workflows(MACHINE, client).exists("doc-1") is False


def test_access_denied_is_a_configuration_error_not_a_transient_one() -> None:
    # A role short of a permission: an operator must fix it (submit records the document as
    # failed with reason "configuration"); retrying it would only fill the DLQ.
    client = _client("stepfunctions")
    with Stubber(client) as stub:
        stub.add_client_error("start_execution", "AccessDeniedException", http_status_code=400)
        with pytest.raises(errors.ConfigError, match=r"access denied \(AccessDeniedException\)"):
            Workflows(MACHINE, client).start("doc-1", {})


def test_dynamodb_throughput_exceeded_is_transient_and_a_taken_key_is_not_an_error() -> None:
    resource = boto3.resource(
        "dynamodb", config=NO_RETRIES, aws_access_key_id="k", aws_secret_access_key="s"
    )
    table = ResultsTable("results", resource)
    client = resource.meta.client
    with Stubber(client) as stub:
        stub.add_client_error(
            "put_item", "ProvisionedThroughputExceededException", http_status_code=400
        )
        with pytest.raises(errors.AwsUnavailable):
            table.put_once({"document_id": "doc-1"})


def test_an_sqs_outage_is_transient() -> None:
    client = _client("sqs")
    queue = ReviewQueue("https://sqs.us-east-1.amazonaws.com/123456789012/review", client)
    with Stubber(client) as stub:
        stub.add_client_error("send_message", "InternalError", http_status_code=500)
        with pytest.raises(errors.AwsUnavailable):
            queue.send({"document_id": "doc-1", "status": "failed"})
