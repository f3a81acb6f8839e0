"""Least privilege as SAM actually deploys it: the roles of the *transformed* template.

``sam deploy`` hands CloudFormation what aws-sam-translator makes of template.yaml: that output
(not the inline statements alone) is what runs in AWS, managed policies and policy templates
included. Each check below names what it refuses and why.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from doctriage_local.template import load_template, resources_of_type, sam_transform

TRANSFORMED = sam_transform(load_template())
RESOURCES: dict[str, Any] = TRANSFORMED["Resources"]
ROLES = resources_of_type(TRANSFORMED, "AWS::IAM::Role")
FUNCTIONS = resources_of_type(TRANSFORMED, "AWS::Lambda::Function")

# The only actions that may be granted on "*", each for the reason given.
ALLOWED_ON_ANY_RESOURCE = {
    # Step Functions' CloudWatch Logs delivery accepts no narrower resource (AWS docs: "Logging
    # using CloudWatch Logs", IAM policies for logging).
    "logs:CreateLogDelivery": "Step Functions log delivery",
    "logs:GetLogDelivery": "Step Functions log delivery",
    "logs:UpdateLogDelivery": "Step Functions log delivery",
    "logs:DeleteLogDelivery": "Step Functions log delivery",
    "logs:ListLogDeliveries": "Step Functions log delivery",
    "logs:PutResourcePolicy": "Step Functions log delivery",
    "logs:DescribeResourcePolicies": "Step Functions log delivery",
    "logs:DescribeLogGroups": "Step Functions log delivery",
    # PutMetricData has no resource type; powertools' EMF metrics do not need it today.
    "cloudwatch:PutMetricData": "metrics have no resource type",
    # Nor has a task token (Service Authorization Reference: no resource type for SendTask*); a
    # grant on the state machine is denied in AWS. Only the webhook's role has it.
    "states:SendTaskSuccess": "task tokens have no resource type",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(role: str) -> list[dict[str, Any]]:
    policies = ROLES[role]["Properties"].get("Policies", [])
    return [s for p in policies for s in _as_list(p["PolicyDocument"]["Statement"])]


def _role_of(function: str) -> str:
    role = FUNCTIONS[function]["Properties"]["Role"]
    assert set(role) == {"Fn::GetAtt"}, f"{function}: role is not one of the template's own"
    return str(role["Fn::GetAtt"][0])


def test_the_transform_makes_the_roles_we_check():
    assert set(FUNCTIONS) == {
        "SubmitFunction",
        "PollFunction",
        "EvaluateFunction",
        "WebhookFunction",
        "AwaitWebhookFunction",
    }
    assert "DocumentStateMachineRole" in ROLES


@pytest.mark.parametrize("role", sorted(ROLES))
def test_no_role_carries_a_managed_policy(role):
    # A managed policy grants what its owner decides, on resources we cannot name: SAM's
    # AWSLambdaBasicExecutionRole (every log group) and AWSLambdaSQSQueueExecutionRole (every
    # queue in the account) are what an explicit role keeps out.
    assert not ROLES[role]["Properties"].get("ManagedPolicyArns"), role


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_statement_names_its_resources(role):
    for statement in _statements(role):
        actions = _as_list(statement["Action"])
        assert not any(a == "*" or a.endswith(":*") for a in actions), (role, actions)
        if "*" in _as_list(statement.get("Resource")):
            excess = [a for a in actions if a not in ALLOWED_ON_ANY_RESOURCE]
            assert not excess, f"{role}: {excess} granted on Resource '*'"
        assert "NotResource" not in statement, role
        assert "NotAction" not in statement, role


PSEUDO = {"AWS::Partition", "AWS::Region", "AWS::AccountId", "AWS::URLSuffix"}


def _names_own_resource(resource: Any) -> bool:
    """Built from one of this template's resources (a Ref, a GetAtt, or a Sub that names one),
    never a literal ARN or pattern that could match another stack's or account's."""
    if not isinstance(resource, dict) or len(resource) != 1:
        return False
    [(name, arg)] = resource.items()
    if name == "Ref":
        return arg in RESOURCES
    if name == "Fn::GetAtt":
        return arg[0] in RESOURCES
    if name != "Fn::Sub":
        return False
    text, variables = (arg, {}) if isinstance(arg, str) else arg
    named = {ref.split(".")[0] for ref in re.findall(r"\$\{([^}!]+)\}", text)}
    unknown = named - PSEUDO - set(RESOURCES) - set(variables)
    own = named & set(RESOURCES) or [v for v in variables.values() if _names_own_resource(v)]
    return not unknown and bool(own)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_resource_is_one_of_this_stacks(role):
    # A literal ARN or pattern (arn:aws:s3:::*, ${Bucket.Arn}* would pass a "*" check) is refused.
    for statement in _statements(role):
        for resource in _as_list(statement.get("Resource")):
            if resource == "*":
                continue  # test_every_statement_names_its_resources limits these
            assert _names_own_resource(resource), f"{role}: {resource}"


@pytest.mark.parametrize(
    ("role", "prefixes"),
    [
        ("SubmitRole", ["incoming/*", "schemas/*"]),
        ("PollRole", ["incoming/*", "schemas/*"]),
        ("EvaluateRole", ["results/*", "schemas/*"]),
    ],
)
def test_listing_is_granted_only_under_the_prefixes_the_role_reads(role, prefixes):
    [listing] = [s for s in _statements(role) if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": prefixes}}


def test_each_function_has_a_role_of_its_own():
    roles = [_role_of(name) for name in FUNCTIONS]
    assert len(set(roles)) == len(roles)
    for name in FUNCTIONS:
        trust = ROLES[_role_of(name)]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}], name
        # Only this account's Lambda may assume it (the confused-deputy guard).
        assert [s.get("Condition") for s in trust] == [
            {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
        ], name


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_a_function_logs_only_to_its_own_log_group(function):
    own = FUNCTIONS[function]["Properties"]["LoggingConfig"]["LogGroup"]
    log_statements = [
        s
        for s in _statements(_role_of(function))
        if any(a.startswith("logs:") for a in _as_list(s["Action"]))
    ]
    assert log_statements, f"{function} cannot write its logs"
    for statement in log_statements:
        assert _as_list(statement["Resource"]) == [{"Fn::GetAtt": [own["Ref"], "Arn"]}]


def test_only_the_intake_queue_may_be_read_or_emptied():
    readers: dict[str, list[Any]] = {}
    for role in ROLES:
        for statement in _statements(role):
            reads = {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & set(_as_list(statement["Action"]))
            if reads:
                readers.setdefault(role, []).extend(_as_list(statement["Resource"]))
    assert readers == {"SubmitRole": [{"Fn::GetAtt": ["IntakeQueue", "Arn"]}]}


def test_submit_may_find_its_workflows_and_tell_a_missing_upload_from_a_forbidden_one():
    statements = {s.get("Sid"): s for s in _statements("SubmitRole")}
    describe = statements["FindWorkflow"]
    assert describe["Action"] == "states:DescribeExecution"
    assert ":execution:" in json.dumps(describe["Resource"])
    listing = statements["TellMissingFromForbidden"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"] == {"Fn::GetAtt": ["DocumentsBucket", "Arn"]}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["incoming/*", "schemas/*"]}}


def test_the_state_machine_may_invoke_only_its_three_tasks():
    invoked = [
        s["Resource"]
        for s in _statements("DocumentStateMachineRole")
        if "lambda:InvokeFunction" in _as_list(s["Action"])
    ]
    assert sorted(r["Fn::Sub"][1]["functionName"]["Ref"] for r in invoked) == [
        "AwaitWebhookFunction",
        "EvaluateFunction",
        "PollFunction",
    ]


def _granted(role: str) -> dict[str, list[Any]]:
    """Every action the role is granted, with the resources it is granted on."""
    granted: dict[str, list[Any]] = {}
    for statement in _statements(role):
        for action in _as_list(statement["Action"]):
            granted.setdefault(action, []).extend(_as_list(statement["Resource"]))
    return granted


def test_the_webhook_reads_its_own_secret_and_never_the_datalab_key():
    # Its URL is public (the body's secret is the auth): it holds nothing a caller could misuse.
    assert _granted("WebhookRole") == {
        "logs:CreateLogStream": [{"Fn::GetAtt": ["WebhookLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["WebhookLogGroup", "Arn"]}],
        "secretsmanager:GetSecretValue": [{"Ref": "WebhookSecret"}],
        "dynamodb:UpdateItem": [{"Fn::GetAtt": ["WebhookTable", "Arn"]}],
        "states:SendTaskSuccess": ["*"],
    }
    senders = [role for role in ROLES if "states:SendTaskSuccess" in _granted(role)]
    assert senders == ["WebhookRole"]
    assert _granted("AwaitWebhookRole") == {
        "logs:CreateLogStream": [{"Fn::GetAtt": ["AwaitWebhookLogGroup", "Arn"]}],
        "logs:PutLogEvents": [{"Fn::GetAtt": ["AwaitWebhookLogGroup", "Arn"]}],
        "dynamodb:UpdateItem": [{"Fn::GetAtt": ["WebhookTable", "Arn"]}],
    }
    key_readers = [
        role
        for role in ROLES
        if {"Ref": "DatalabApiKeySecret"} in _granted(role).get("secretsmanager:GetSecretValue", [])
    ]
    assert sorted(key_readers) == ["PollRole", "SubmitRole"]


def test_only_the_webhook_has_a_public_url():
    urls = resources_of_type(TRANSFORMED, "AWS::Lambda::Url")
    assert [u["Properties"]["TargetFunctionArn"] for u in urls.values()] == [
        {"Ref": "WebhookFunction"}
    ]
