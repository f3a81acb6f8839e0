"""The local stack enforces IAM: each function and the state machine act as their deployed role.

A call the template does not grant fails here as AccessDenied, as it would in AWS; so does a call
a role makes outside the resources it names. The last test removes one statement from a copy of
the template and watches an ordinary pipeline test fail for it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from doctriage_local.paths import PROJECT_ROOT, TEMPLATE_PATH
from doctriage_local.stack import LocalStack, StackOptions, iam
from doctriage_local.template import load_template
from tests.integration.helpers import TIME_SCALE


@pytest.fixture(scope="module")
def stack():
    with LocalStack(StackOptions(time_scale=TIME_SCALE)) as running:
        yield running


def _denied(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    # moto's SQS answers the HTTP status as the code; the message is IAM's either way.
    assert error["Code"] in ("AccessDenied", "AccessDeniedException", "403"), error
    assert "not authorized" in error.get("Message", "") or error["Code"] == "AccessDenied", error
    return str(error["Code"])


def test_each_role_may_make_the_calls_its_function_makes(stack):
    sqs, ddb, sfn = stack.client("sqs"), stack.client("dynamodb"), stack.client("stepfunctions")
    execution = stack.physical["DocumentStateMachine"].replace(":stateMachine:", ":execution:")
    with iam.acting_as(stack.role_credentials["SubmitRole"]):
        sqs.receive_message(QueueUrl=stack.physical["IntakeQueue"], WaitTimeSeconds=0)
        with pytest.raises(ClientError, match="ExecutionDoesNotExist"):
            sfn.describe_execution(executionArn=f"{execution}:no-such-document")
        ddb.get_item(
            TableName=stack.physical["ResultsTable"], Key={"document_id": {"S": "nothing"}}
        )
    with iam.acting_as(stack.role_credentials["EvaluateRole"]):
        sqs.send_message(QueueUrl=stack.physical["ReviewQueue"], MessageBody="{}")
    stack.review_messages(delete=True)


def test_a_role_is_denied_what_its_function_does_not_need(stack):
    sqs, ddb, s3 = stack.client("sqs"), stack.client("dynamodb"), stack.client("s3")
    secrets = stack.client("secretsmanager")
    with iam.acting_as(stack.role_credentials["SubmitRole"]):
        # Submit may consume the intake queue only: never the review queue's extracted values.
        _denied(lambda: sqs.receive_message(QueueUrl=stack.physical["ReviewQueue"]))
        _denied(lambda: s3.put_object(Bucket=stack.bucket, Key="results/x.json", Body=b"{}"))
    with iam.acting_as(stack.role_credentials["PollRole"]):
        _denied(
            lambda: ddb.put_item(
                TableName=stack.physical["ResultsTable"], Item={"document_id": {"S": "forged"}}
            )
        )
        _denied(lambda: s3.get_object(Bucket=stack.bucket, Key="results/doc-x/datalab-result.json"))
    with iam.acting_as(stack.role_credentials["EvaluateRole"]):
        _denied(lambda: secrets.get_secret_value(SecretId=stack.physical["DatalabApiKeySecret"]))


def test_the_state_machine_may_invoke_poll_and_evaluate_but_not_submit(stack):
    lambda_ = stack.client("lambda")
    with iam.acting_as(stack.role_credentials[stack.state_machine_role]):
        submit = stack.physical["SubmitFunction"]
        _denied(lambda: lambda_.invoke(FunctionName=submit, Payload=b"{}"))


def test_unknown_credentials_are_refused(stack):
    s3 = stack.client("s3")
    stranger = iam.Credentials("AKIAIOSFODNN7EXAMPLE", "not-a-secret")
    with iam.acting_as(stranger), pytest.raises(ClientError, match="InvalidAccessKeyId"):
        s3.list_objects_v2(Bucket=stack.bucket)


def _sids(template: dict, role: str) -> set[str]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    return {s.get("Sid") for p in policies for s in p["PolicyDocument"]["Statement"]}


def _template_without(tmp_path: Path, role: str, sid: str) -> Path:
    """A copy of template.yaml with one statement (by Sid) cut out of one role."""
    lines = TEMPLATE_PATH.read_text().splitlines(keepends=True)
    in_role = next(i for i, line in enumerate(lines) if line.rstrip() == f"  {role}:")
    start = next(
        i for i in range(in_role, len(lines)) if lines[i].strip().startswith(f"- Sid: {sid}")
    )
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent
    ):
        end += 1
    broken = tmp_path / "template.yaml"
    broken.write_text("".join(lines[:start] + lines[end:]))
    original, copy = load_template(TEMPLATE_PATH), load_template(broken)
    assert _sids(original, role) - _sids(copy, role) == {sid}
    assert original["Resources"].keys() == copy["Resources"].keys()
    return broken


RAW_RESULT_TEST = "tests/integration/test_pipeline.py::test_the_raw_result_is_kept_in_s3"
LARGE_RECORD_TEST = (
    "tests/integration/test_large_record.py"
    "::test_a_500_row_table_keeps_its_cells_in_s3_beside_the_raw_result"
)

SPEND_GUARD_TEST = (
    "tests/integration/test_spend_guard.py"
    "::test_over_the_daily_budget_an_upload_waits_unsent_until_the_budget_is_raised"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("role", "sid", "test"),
    [
        ("PollRole", "KeepRawResults", RAW_RESULT_TEST),
        # Found in review: the secret cache was shared by all functions, so poll read the key
        # submit had fetched; it is kept per role now.
        ("PollRole", "DatalabKey", RAW_RESULT_TEST),
        ("EvaluateRole", "ReadResultsAndSchemas", RAW_RESULT_TEST),
        ("EvaluateRole", "KeepCellsApart", LARGE_RECORD_TEST),
        ("SubmitRole", "ReadSpending", SPEND_GUARD_TEST),
        ("EvaluateRole", "CountSpending", SPEND_GUARD_TEST),
    ],
)
def test_removing_a_statement_fails_the_pipeline_test_that_needs_it(tmp_path, role, sid, test):
    # GIVEN a template whose role lacks one statement its function needs
    broken = _template_without(tmp_path, role, sid)
    # WHEN the ordinary test of that call runs against it
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            test,
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DOCTRIAGE_TEMPLATE": str(broken)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    # THEN it fails, and for the denied call
    assert run.returncode == 1, run.stdout[-3000:]
    assert "1 failed" in run.stdout
    denied = re.compile(
        r"AccessDenied|access denied|denied access|authorized to perform", re.IGNORECASE
    )
    assert denied.search(run.stdout), run.stdout[-3000:]
