"""What template.yaml promises about security and operations, checked statically.

cfn-lint checks that the template is valid; these check that it says what the README claims:
encryption at rest, TLS only, least privilege, log retention, alarms and the dashboard.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from doctriage_local.paths import PROJECT_ROOT
from doctriage_local.template import function_properties, load_template, resources_of_type

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]


def _props(logical_id: str) -> dict[str, Any]:
    return RESOURCES[logical_id].get("Properties", {})


def _tls_denied(statements: list[dict[str, Any]]) -> bool:
    return any(
        s["Effect"] == "Deny"
        and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        for s in statements
    )


def test_the_bucket_is_versioned_private_encrypted_and_tls_only():
    bucket = _props("DocumentsBucket")
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    policy = _props("DocumentsBucketPolicy")["PolicyDocument"]["Statement"]
    assert _tls_denied(policy)


def test_every_queue_is_encrypted_and_tls_only():
    queues = resources_of_type(TEMPLATE, "AWS::SQS::Queue")
    assert len(queues) == 4
    covered: set[str] = set()
    for policy in resources_of_type(TEMPLATE, "AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        if _tls_denied(props["PolicyDocument"]["Statement"]):
            covered |= {q["Ref"] for q in props["Queues"]}
    for name, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name
        assert name in covered, f"{name} accepts plain HTTP"


def test_working_queues_have_dead_letter_queues():
    for name in ("IntakeQueue", "ReviewQueue"):
        redrive = _props(name)["RedrivePolicy"]
        limit = redrive["maxReceiveCount"]
        if isinstance(limit, dict):  # a parameter: its lowest allowed value
            limit = TEMPLATE["Parameters"][limit["Ref"]]["MinValue"]
        assert limit >= 1
        assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0].endswith("DeadLetterQueue")


def test_submit_gives_up_on_the_delivery_the_queue_allows_last():
    # One parameter sets both: they cannot drift apart by an edit of one of them.
    submit = function_properties(TEMPLATE, "SubmitFunction")["Environment"]["Variables"]
    queue_limit = _props("IntakeQueue")["RedrivePolicy"]["maxReceiveCount"]
    assert submit["SUBMIT_MAX_RECEIVES"] == queue_limit == {"Ref": "IntakeMaxReceives"}
    assert TEMPLATE["Parameters"]["IntakeMaxReceives"]["Default"] == 10


def test_poll_may_stream_an_upload_as_long_as_submit_may():
    # The poll step resubmits page-rate-throttled documents: the same stream as submit's.
    timeout = {
        name: int(function_properties(TEMPLATE, name)["Timeout"])
        for name in ("SubmitFunction", "PollFunction")
    }
    assert timeout["PollFunction"] >= timeout["SubmitFunction"]


def test_tables_are_encrypted_and_results_recoverable():
    for table in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    assert _props("ResultsTable")["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]


def test_every_log_group_has_retention_and_every_function_logs_to_one():
    groups = resources_of_type(TEMPLATE, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        assert group["Properties"].get("RetentionInDays"), name
    for name in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        assert _props(name)["LoggingConfig"]["LogGroup"]["Ref"] in groups


def _statements(function: str) -> list[dict[str, Any]]:
    role = _props(function)["Role"]["Fn::GetAtt"][0]
    return [s for p in _props(role)["Policies"] for s in p["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("function", ["SubmitFunction", "PollFunction", "EvaluateFunction"])
def test_function_policies_name_their_resources(function):
    statements = _statements(function)
    assert statements
    for statement in statements:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources, f"{function}: {statement['Sid']} grants on *"
        actions = statement["Action"]
        actions = actions if isinstance(actions, list) else [actions]
        assert not any(a.endswith(":*") or a == "*" for a in actions), statement["Sid"]


def test_only_submit_and_poll_may_read_the_datalab_key():
    readers = {
        name
        for name in ("SubmitFunction", "PollFunction", "EvaluateFunction")
        if any("secretsmanager:GetSecretValue" in json.dumps(s) for s in _statements(name))
    }
    assert readers == {"SubmitFunction", "PollFunction"}


def test_the_datalab_api_must_be_https():
    assert _props_param("DatalabApiUrl")["AllowedPattern"].startswith("^https://")


def _props_param(name: str) -> dict[str, Any]:
    return TEMPLATE["Parameters"][name]


def _alarm_on(metric: str, dimension_value: Any) -> bool:
    for alarm in resources_of_type(TEMPLATE, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if props["MetricName"] == metric and any(
            d["Value"] == dimension_value for d in props["Dimensions"]
        ):
            assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}]
            return True
    return False


@pytest.mark.parametrize("queue", ["IntakeDeadLetterQueue", "ReviewDeadLetterQueue"])
def test_messages_in_a_dead_letter_queue_raise_an_alarm(queue):
    assert _alarm_on("ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [queue, "QueueName"]})


def test_failed_executions_and_a_review_backlog_raise_alarms():
    assert _alarm_on("ExecutionsFailed", {"Ref": "DocumentStateMachine"})
    assert _alarm_on("ApproximateAgeOfOldestMessage", {"Fn::GetAtt": ["ReviewQueue", "QueueName"]})


def test_the_dashboard_shows_documents_queues_workflows_and_errors():
    [dashboard] = resources_of_type(TEMPLATE, "AWS::CloudWatch::Dashboard").values()
    body_template, variables = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    body = json.loads(body_template)  # valid JSON before substitution: ${...} sit in strings
    titles = {w["properties"]["title"] for w in body["widgets"]}
    assert {"Documents", "Queues (messages visible)", "Workflows"} <= titles
    metrics = json.dumps(body)
    for name in (
        "DocumentsAutoApproved",
        "DocumentsNeedReview",
        "DocumentsFailed",
        "ExecutionsFailed",
        "Errors",
        "DatalabCostCents",
    ):
        assert name in metrics
    assert set(variables) >= {"IntakeQueueName", "ReviewQueueName"}


def test_every_doctriage_metric_on_the_dashboard_is_one_a_function_emits():
    [dashboard] = resources_of_type(TEMPLATE, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"]["Fn::Sub"][0])
    shown: set[str] = set()
    for widget in body["widgets"]:
        namespace = None
        for metric in widget["properties"]["metrics"]:
            names = [part for part in metric if isinstance(part, str)]
            if not names:
                continue  # a metric-math expression
            namespace = namespace if names[0] == "." else names[0]
            if namespace == "Doctriage":
                shown.add(names[1])
    code = "".join(p.read_text() for p in (PROJECT_ROOT / "functions").glob("*/app.py"))
    code += (PROJECT_ROOT / "shared" / "doctriage_core" / "workflow" / "intake.py").read_text()
    assert len(shown) >= 6
    assert {name for name in shown if f'"{name}"' not in code} == set()
