"""The template's resources created in moto: queues, tables, secrets, buckets, roles, functions,
state machines, with the names, ARNs and settings template.yaml gives them.

Each resource is named ``doctriage-local-<LogicalId>`` and remembered by logical id
(``physical``: its name or URL, ``arns``: its ARN), which is how Ref and GetAtt resolve. The roles
are the deployed ones (SAM's transform applied, see doctriage_local.stack.iam); their policies are
attached once every resource they name exists. Durations shrink by ``time_scale``.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Callable
from typing import Any

from botocore.credentials import Credentials

import doctriage_local.stack.iam as iam_local
from doctriage_local.paths import PROJECT_ROOT
from doctriage_local.stack.function_urls import FunctionUrls
from doctriage_local.stack.functions import Function
from doctriage_local.template import (
    function_properties,
    parameter_defaults,
    resolve,
    resources_of_type,
)

ACCOUNT_ID = "123456789012"
PREFIX = "doctriage-local"


class Resources:
    """The resources of one local stack, by logical id; ``create`` makes them in moto."""

    def __init__(
        self,
        template: dict[str, Any],
        deployed: dict[str, Any],
        client: Callable[[str], Any],
        *,
        region: str,
        time_scale: float,
    ) -> None:
        self.template = template
        self.deployed = deployed  # the template with SAM's transform applied: the roles
        self.client = client
        self.region = region
        self.time_scale = time_scale
        self.params = parameter_defaults(template)
        self.physical: dict[str, str] = {}
        self.arns: dict[str, str] = {}
        self.functions: dict[str, Function] = {}  # by function name
        self.role_credentials: dict[str, Credentials] = {}  # by role logical id
        self.state_machine_role = ""
        self.datalab_api_key = ""
        self.webhook_secret = ""
        # Serves the functions' URLs (FunctionUrlConfig); set by the stack that invokes them.
        self.function_urls: FunctionUrls | None = None

    def resolve(self, value: Any) -> Any:
        """``value`` with its intrinsics (Ref, GetAtt, Sub, ...) resolved to local names."""
        return resolve(value, self._ref, self._get_att)

    def _ref(self, name: str) -> Any:
        if name in self.physical:
            return self.physical[name]
        if name in self.params:
            return self.params[name]
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": PREFIX,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/"
            f"{PREFIX}/00000000-0000-0000-0000-000000000000",
        }
        if name in pseudo:
            return pseudo[name]
        raise KeyError(f"template Ref {name!r} is not available in the local stack")

    def _get_att(self, resource: str, attribute: str) -> Any:
        if attribute == "Arn" and resource in self.arns:
            return self.arns[resource]
        if attribute in ("Name", "QueueName") and resource in self.arns:
            return self.arns[resource].rsplit(":", 1)[-1]
        function = resource.removesuffix("Url")  # SAM names a function's URL <LogicalId>Url
        if attribute == "FunctionUrl" and function in self.physical and self.function_urls:
            return self.function_urls.url_for(self.physical[function])
        raise KeyError(f"template GetAtt {resource}.{attribute} is not available locally")

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def _scaled(self, seconds: Any, minimum: int = 1) -> int:
        return max(minimum, round(float(seconds) * self.time_scale))

    def create(
        self,
        *,
        datalab_api_url: str,
        datalab_api_key: str,
        parameters: dict[str, Any],
        webhook_secret: str = "",
        human_review_threshold: float | None,
    ) -> None:
        """Every resource of the template, in dependency order; then the roles' policies."""
        unknown = sorted(set(parameters) - set(self.params))
        if unknown:
            raise ValueError(f"template.yaml declares no parameter {', '.join(unknown)}")
        self.params.update(parameters)
        if human_review_threshold is not None:
            self.params["HumanReviewThreshold"] = human_review_threshold
        self.params["DatalabApiUrl"] = datalab_api_url
        self.datalab_api_key = datalab_api_key
        self.webhook_secret = webhook_secret
        self._create_queues()
        self._create_tables()
        self._create_secrets()
        self._create_buckets()
        self._name_log_groups()
        self._create_roles()
        self._create_functions()
        self._create_state_machines()
        self._configure_buckets()
        self._grant_roles()

    def _create_queues(self) -> None:
        sqs = self.client("sqs")
        queues = resources_of_type(self.template, "AWS::SQS::Queue")
        for logical_id, res in queues.items():
            props = res.get("Properties", {})
            attributes = {
                key: str(props[key])
                for key in (
                    "MessageRetentionPeriod",
                    "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds",
                )
                if key in props
            }
            if "VisibilityTimeout" in props:
                attributes["VisibilityTimeout"] = str(self._scaled(props["VisibilityTimeout"]))
            url = sqs.create_queue(QueueName=f"{PREFIX}-{logical_id}", Attributes=attributes)[
                "QueueUrl"
            ]
            self.physical[logical_id] = url
            self.arns[logical_id] = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        for logical_id, res in queues.items():
            redrive = res.get("Properties", {}).get("RedrivePolicy")
            if redrive:
                policy = resolve(redrive, self._ref, self._get_att)
                sqs.set_queue_attributes(
                    QueueUrl=self.physical[logical_id],
                    Attributes={"RedrivePolicy": json.dumps(policy)},
                )

    def _create_tables(self) -> None:
        ddb = self.client("dynamodb")
        for logical_id, res in resources_of_type(self.template, "AWS::DynamoDB::Table").items():
            props = res["Properties"]
            name = f"{PREFIX}-{logical_id}"
            ddb.create_table(
                TableName=name,
                AttributeDefinitions=props["AttributeDefinitions"],
                KeySchema=props["KeySchema"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            )
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
            self.physical[logical_id] = name
            self.arns[logical_id] = self._arn("dynamodb", f"table/{name}")

    def _create_secrets(self) -> None:
        secrets = self.client("secretsmanager")
        for logical_id, res in resources_of_type(
            self.template, "AWS::SecretsManager::Secret"
        ).items():
            # The one with a placeholder SecretString is the webhook secret; the other the key.
            placeholder = res.get("Properties", {}).get("SecretString")
            if placeholder is not None:
                value = self.webhook_secret or placeholder
            else:
                value = self.datalab_api_key or "unset"
            arn = secrets.create_secret(Name=f"{PREFIX}-{logical_id}", SecretString=value)["ARN"]
            self.physical[logical_id] = self.arns[logical_id] = arn

    def _create_buckets(self) -> None:
        s3 = self.client("s3")
        for logical_id in resources_of_type(self.template, "AWS::S3::Bucket"):
            name = f"{PREFIX}-{logical_id.lower()}"
            s3.create_bucket(Bucket=name)
            self.physical[logical_id] = name
            self.arns[logical_id] = f"arn:aws:s3:::{name}"

    def _name_log_groups(self) -> None:
        # Not created in moto (the handlers log to stderr); named so role statements resolve.
        for logical_id in resources_of_type(self.template, "AWS::Logs::LogGroup"):
            name = f"/aws/doctriage-local/{logical_id}"
            self.physical[logical_id] = name
            self.arns[logical_id] = self._arn("logs", f"log-group:{name}:*")

    def _create_roles(self) -> None:
        """The deployed roles (SAM's transform applied), with their trust policies only."""
        iam = self.client("iam")
        iam_local.create_operator(iam, ACCOUNT_ID)
        roles = resources_of_type(self.deployed, "AWS::IAM::Role")
        for logical_id, res in roles.items():
            trust = res["Properties"]["AssumeRolePolicyDocument"]
            self.arns[logical_id] = iam.create_role(
                RoleName=f"{PREFIX}-{logical_id}",
                AssumeRolePolicyDocument=json.dumps(resolve(trust, self._ref, self._get_att)),
            )["Role"]["Arn"]
            self.physical[logical_id] = f"{PREFIX}-{logical_id}"

    def _grant_roles(self) -> None:
        """Each role's policies, once every resource they name exists; then its credentials."""
        iam, sts = self.client("iam"), self.client("sts")
        for logical_id, res in resources_of_type(self.deployed, "AWS::IAM::Role").items():
            props = resolve(
                {k: v for k, v in res["Properties"].items() if k != "AssumeRolePolicyDocument"},
                self._ref,
                self._get_att,
            )
            iam_local.grant(iam, self.physical[logical_id], props)
            self.role_credentials[logical_id] = iam_local.assume(
                sts, self.arns[logical_id], f"{PREFIX}-{logical_id}"
            )

    def _deployed_role(self, logical_id: str, property_name: str) -> str:
        """The logical id of the role the transformed template gives ``logical_id``."""
        role = self.deployed["Resources"][logical_id]["Properties"][property_name]
        return str(role["Fn::GetAtt"][0])

    def _create_functions(self) -> None:
        lambda_ = self.client("lambda")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "# runs in-process, see doctriage_local.stack.functions\n")
        for logical_id in resources_of_type(self.template, "AWS::Serverless::Function"):
            props = function_properties(self.template, logical_id)
            name = f"{PREFIX}-{logical_id}"
            role = self._deployed_role(logical_id, "Role")
            arn = lambda_.create_function(
                FunctionName=name,
                Runtime=props.get("Runtime", "python3.13"),
                Role=self.arns[role],
                Handler=props["Handler"],
                Code={"ZipFile": code.getvalue()},
                Timeout=int(props.get("Timeout", 3)),
                MemorySize=int(props.get("MemorySize", 128)),
            )["FunctionArn"]
            module_file, handler_name = props["Handler"].rsplit(".", 1)
            package = props["CodeUri"].strip("/").replace("/", ".")
            reserved = props.get("ReservedConcurrentExecutions")
            self.functions[name] = Function(
                logical_id=logical_id,
                name=name,
                arn=arn,
                module_name=f"{package}.{module_file}",
                handler_name=handler_name,
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                role=role,
                slots=threading.BoundedSemaphore(int(reserved)) if reserved else None,
            )
            self.physical[logical_id] = name
            self.arns[logical_id] = arn

    def _create_state_machines(self) -> None:
        sfn = self.client("stepfunctions")
        machines = resources_of_type(self.template, "AWS::Serverless::StateMachine")
        for logical_id, res in machines.items():
            props = res["Properties"]
            definition = (PROJECT_ROOT / props["DefinitionUri"]).read_text()
            substitutions = resolve(
                props.get("DefinitionSubstitutions", {}), self._ref, self._get_att
            )
            for key, value in substitutions.items():
                definition = definition.replace("${" + key + "}", str(value))
            role = self._deployed_role(logical_id, "RoleArn")
            self.state_machine_role = role
            arn = sfn.create_state_machine(
                name=f"{PREFIX}-{logical_id}",
                definition=definition,
                roleArn=self.arns[role],
                type=props.get("Type", "STANDARD"),
            )["stateMachineArn"]
            self.physical[logical_id] = self.arns[logical_id] = arn

    def _configure_buckets(self) -> None:
        s3 = self.client("s3")
        for logical_id, res in resources_of_type(self.template, "AWS::S3::Bucket").items():
            props = res.get("Properties", {})
            name = self.physical[logical_id]
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            queue_configs = []
            for config in props.get("NotificationConfiguration", {}).get("QueueConfigurations", []):
                resolved = resolve(config, self._ref, self._get_att)
                queue_configs.append(
                    {
                        "QueueArn": resolved["Queue"],
                        "Events": [resolved["Event"]],
                        "Filter": {"Key": {"FilterRules": resolved["Filter"]["S3Key"]["Rules"]}},
                    }
                )
            if queue_configs:
                s3.put_bucket_notification_configuration(
                    Bucket=name, NotificationConfiguration={"QueueConfigurations": queue_configs}
                )
