"""IAM in the local stack: each function and the state machine act as their own deployed role.

The roles come from template.yaml as SAM transforms it (``template.sam_transform``): the inline
statements, the policy templates expanded and any managed policy attached. moto's IAM
authorization checks every request against the caller's policies, so a call a role does not
allow fails here as AccessDenied, as it would in AWS.

Identities:
- the operator (you, the tests, the CLI, the AWS CLI against ``doctriage up``): an IAM user with
  every permission whose access key is ``local`` / ``local``;
- a handler invocation: the credentials of its function's role, assumed through STS. Handlers run
  in this process, so a context variable carries the identity of the invocation running on the
  current thread and botocore signs each request with it (``acting_as``);
- the state machine's Lambda tasks: moto's interpreter calls Lambda with the state machine's role.

What moto does not check (so tests/statemachine/test_deployed_roles.py checks it statically):
resource-based policies (bucket and queue policies, trust policies beyond the principal),
``Condition`` blocks (moto refuses a statement whose condition it cannot evaluate, so conditioned
statements are loaded without their condition: they allow more locally than in AWS), and
resources for services whose requests moto authorizes against ``*`` only: this module names the
resource for DynamoDB, Step Functions, Secrets Manager and Lambda; S3 and SQS name their own.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from botocore.credentials import Credentials

OPERATOR_USER = "doctriage-local-operator"
OPERATOR_KEY = "local"  # access key id and secret: what README and docs/local-stack.md export

_identity: contextvars.ContextVar[Credentials | None] = contextvars.ContextVar(
    "doctriage_local_identity", default=None
)
# The state machine's role credentials (set by the stack that owns the roles).
state_machine_credentials: Callable[[], Credentials | None] = lambda: None  # noqa: E731

# API operation -> IAM action, where moto's "<service>:<operation>" is not the IAM action name.
_IAM_ACTION = {"lambda:Invoke": "lambda:InvokeFunction"}


@contextlib.contextmanager
def acting_as(credentials: Credentials | None) -> Iterator[None]:
    """Every AWS request made on this thread inside the block is signed with ``credentials``."""
    token = _identity.set(credentials)
    try:
        yield
    finally:
        _identity.reset(token)


def enforce(on: bool) -> None:
    """Turn moto's IAM authorization on (every request checked) or off (resource setup)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if on else float("inf")
    ActionAuthenticatorMixin.request_count = 0


def create_operator(iam: Any, account_id: str) -> None:
    """The operator's IAM user, allowed everything, with the fixed access key local/local."""
    from moto.iam.models import iam_backends

    iam.create_user(UserName=OPERATOR_USER)
    iam.put_user_policy(
        UserName=OPERATOR_USER,
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    iam.create_access_key(UserName=OPERATOR_USER)
    # moto draws random keys; the docs promise local/local, so set them on moto's record.
    [key] = iam_backends[account_id]["aws"].users[OPERATOR_USER].access_keys
    key.access_key_id = key.secret_access_key = OPERATOR_KEY


def grant(iam: Any, role_name: str, props: dict[str, Any]) -> None:
    """Attach a resolved transformed-template role's inline and managed policies."""
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(_without_conditions(policy["PolicyDocument"])),
        )
    for policy_arn in props.get("ManagedPolicyArns", []):
        iam.attach_role_policy(RoleName=role_name, PolicyArn=policy_arn)


def _without_conditions(document: dict[str, Any]) -> dict[str, Any]:
    statements = document["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    return {
        # SAM's policy templates carry no Version (AWS then assumes 2008-10-17); moto needs one.
        "Version": document.get("Version", "2012-10-17"),
        "Statement": [{k: v for k, v in s.items() if k != "Condition"} for s in statements],
    }


def assume(sts: Any, role_arn: str, session_name: str) -> Credentials:
    # moto does not expire assumed-role credentials, so one session lasts the stack's lifetime.
    found = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"])


# ---------------------------------------------------------------------- moto and botocore patches

_PATCHED = False


def install_patches() -> None:
    """Once per process: sign with the current identity; name resources where moto says ``*``."""
    global _PATCHED
    if _PATCHED:
        return
    from aws_lambda_powertools.utilities.parameters.base import BaseProvider
    from botocore.signers import RequestSigner
    from moto.awslambda.responses import LambdaResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.iam.access_control import IAMRequestBase
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.responses import StepFunctionResponse

    original_auth = RequestSigner.get_auth_instance

    def get_auth_instance(self: Any, *args: Any, **kwargs: Any) -> Any:
        identity = _identity.get()
        if identity is not None and not kwargs.get("request_credentials"):
            kwargs["request_credentials"] = identity
        return original_auth(self, *args, **kwargs)

    original_request_init = IAMRequestBase.__init__

    def request_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_request_init(self, *args, **kwargs)
        self._action = _IAM_ACTION.get(self._action, self._action)

    original_client_for = lambda_eval_utils.boto_client_for

    # powertools caches a fetched secret per process; in Lambda each function has its own, here
    # they share one, and poll would read the key submit fetched without its own grant.
    original_cache_key = BaseProvider._build_cache_key

    def cache_key_per_identity(self: Any, *args: Any, **kwargs: Any) -> Any:
        identity = _identity.get()
        return (
            identity.access_key if identity else None,
            original_cache_key(self, *args, **kwargs),
        )

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        client: Any = original_client_for(region, service, state_credentials)
        credentials = state_machine_credentials()
        if credentials is not None:
            client._request_signer._credentials = credentials
        return client

    RequestSigner.get_auth_instance = get_auth_instance  # type: ignore[method-assign]
    BaseProvider._build_cache_key = cache_key_per_identity  # type: ignore[method-assign]
    IAMRequestBase.__init__ = request_init  # type: ignore[method-assign]
    lambda_eval_utils.boto_client_for = boto_client_for
    DynamoHandler._determine_resource = _dynamodb_resource  # type: ignore[attr-defined]
    StepFunctionResponse._determine_resource = _stepfunctions_resource  # type: ignore[attr-defined]
    SecretsManagerResponse._determine_resource = _secret_resource  # type: ignore[attr-defined]
    LambdaResponse._determine_resource = _lambda_resource  # type: ignore[attr-defined]
    _PATCHED = True


def _dynamodb_resource(self: Any) -> str:
    body = getattr(self, "body", None) or {}
    table = body.get("TableName") if isinstance(body, dict) else None
    if not table:
        tables = list((body.get("RequestItems") or {}) if isinstance(body, dict) else {})
        table = tables[0] if len(tables) == 1 else None
    if not table:
        return "*"
    if str(table).startswith("arn:"):
        return str(table)
    return f"arn:aws:dynamodb:{self.region}:{self.current_account}:table/{table}"


def _stepfunctions_resource(self: Any) -> str:
    for name in ("executionArn", "stateMachineArn"):
        value = self._get_param(name)
        if value:
            return str(value)
    # SendTaskSuccess & co. (a taskToken, no ARN): IAM knows no resource type for them, so only
    # a grant on "*" allows them, here as in AWS (a grant on the state machine is denied).
    return "*"


def _secret_resource(self: Any) -> str:
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    with contextlib.suppress(Exception):
        return str(self.backend.describe_secret(secret_id).arn)
    return str(secret_id)


def _lambda_resource(self: Any) -> str:
    parts = self.path.split("/")
    if "functions" not in parts or parts.index("functions") + 1 >= len(parts):
        return "*"
    name = unquote(parts[parts.index("functions") + 1])
    if name.startswith("arn:"):
        return name
    return f"arn:aws:lambda:{self.region}:{self.current_account}:function:{name}"
