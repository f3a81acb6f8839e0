"""The local stack: template.yaml's resources in moto, the real ASL executed, the real handlers.

What is real here: the resources' settings (read from template.yaml), the S3 -> SQS notification,
the state machine definition executed by moto's Step Functions interpreter, the three handlers,
the Datalab client talking HTTP to the emulator (or to ``DATALAB_API_URL``).
What is emulated by hand, and why:
- Lambda: moto would need Docker to run a function; we call the handler named in the template
  in-process instead, one invocation at a time (a Lambda container handles one event at a time,
  and powertools' module-level objects assume it).
- The SQS event source mapping: moto's runs inside SendMessage, so an S3 upload would block on
  the submit function and partial batch failures would be ignored; ours polls the queue in a
  thread, honours ``batchItemFailures`` and leaves failed messages for redelivery and the DLQ.
- Time: Wait states, Retry intervals, visibility timeouts and deadlines all shrink by
  ``time_scale`` so long scenarios run in seconds.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import io
import json
import logging
import os
import socket
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
from botocore.credentials import Credentials

from doctriage_local import iam as iam_local
from doctriage_local.paths import PROJECT_ROOT
from doctriage_local.template import (
    function_properties,
    load_template,
    parameter_defaults,
    resolve,
    resources_of_type,
    sam_transform,
)

ACCOUNT_ID = "123456789012"
PREFIX = "doctriage-local"
log = logging.getLogger("doctriage.local")

_ACTIVE: LocalStack | None = None
_PATCH_LOCK = threading.Lock()


@dataclass
class StackOptions:
    time_scale: float = 1.0
    datalab_api_url: str | None = None  # None: start the built-in emulator
    datalab_api_key: str | None = None
    emulator: Any = None  # an EmulatorConfig; its time_scale is set from ours
    human_review_threshold: float | None = None
    region: str = "us-east-1"
    server_port: int | None = None  # serve the stack on 127.0.0.1:port for other processes (0: any)
    emulator_port: int = 0  # the built-in emulator's port on 127.0.0.1 (0: any free port)
    log_level: str = "WARNING"  # the handlers' powertools log level
    environment: dict[str, str] = field(default_factory=dict)  # extra handler environment
    parameters: dict[str, Any] = field(default_factory=dict)  # template parameter overrides


@dataclass
class _Function:
    logical_id: str
    name: str
    arn: str
    module_name: str
    handler_name: str
    timeout: int
    memory: int
    role: str  # logical id of its role in the transformed template
    slots: threading.BoundedSemaphore | None = None  # ReservedConcurrentExecutions, if set
    module: ModuleType | None = None


class _FakeContext:
    def __init__(self, fn: _Function, timeout_s: float) -> None:
        self.function_name = fn.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.arn
        self.memory_limit_in_mb = fn.memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalStack:
    """Start with ``with LocalStack(StackOptions(...)) as stack:``; one active per process."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.template = load_template()
        self.deployed = sam_transform(self.template, self.options.region)
        self.role_credentials: dict[str, Credentials] = {}
        self.state_machine_role = ""
        self.params = parameter_defaults(self.template)
        self.physical: dict[str, str] = {}
        self.arns: dict[str, str] = {}
        self.functions: dict[str, _Function] = {}
        self.emulator: Any = None
        self.datalab_api_url = ""
        self.endpoint_url: str | None = None
        self._count_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mock: Any = None
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.invocations: dict[str, int] = {}
        # The handlers' CloudWatch EMF lines (what Lambda would ship to CloudWatch Metrics).
        self.metric_lines: collections.deque[str] = collections.deque(maxlen=10_000)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        global _ACTIVE
        with _PATCH_LOCK:
            if _ACTIVE is not None:
                raise RuntimeError("a LocalStack is already running in this process")
            _ACTIVE = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # functions/ (the handlers) and doctriage_core (the layer, from shared/) are installed
        # with doctriage_local (pyproject.toml), so the handlers import as they do under pytest.
        self._set_env(AWS_DEFAULT_REGION=self.options.region, AWS_REGION=self.options.region)
        self._start_datalab()
        self._start_moto()
        self._set_env(  # after moto's start, which sets its own fake keys
            # The operator: an IAM user allowed everything (doctriage_local.iam).
            AWS_ACCESS_KEY_ID=iam_local.OPERATOR_KEY,
            AWS_SECRET_ACCESS_KEY=iam_local.OPERATOR_KEY,
            AWS_SESSION_TOKEN=None,
            AWS_SECURITY_TOKEN=None,
        )
        _install_patches()
        iam_local.install_patches()
        iam_local.enforce(False)
        self._create_resources()
        self._configure_handlers()
        iam_local.state_machine_credentials = lambda: self.role_credentials.get(
            self.state_machine_role
        )
        iam_local.enforce(True)  # from here on every request is checked against its caller's role
        self._start_event_source_mappings()

    def stop(self) -> None:
        global _ACTIVE
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)
        with contextlib.suppress(Exception):
            from doctriage_core import runtime

            runtime.reset()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        iam_local.enforce(False)
        iam_local.state_machine_credentials = lambda: None
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        with _PATCH_LOCK:
            if _ACTIVE is self:
                _ACTIVE = None

    def _set_env(self, **values: str | None) -> None:
        """Set (or, for None, unset) environment variables until the stack stops."""
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _start_datalab(self) -> None:
        if self.options.datalab_api_url:
            self.datalab_api_url = self.options.datalab_api_url.rstrip("/")
            self.datalab_api_key = self.options.datalab_api_key or ""
            return
        from doctriage_local.emulator import DatalabEmulator, EmulatorConfig

        config = self.options.emulator or EmulatorConfig()
        config.time_scale = self.options.time_scale
        self.emulator = DatalabEmulator(config, port=self.options.emulator_port).start()
        self.datalab_api_url = self.emulator.url
        self.datalab_api_key = self.emulator.api_key

    def _start_moto(self) -> None:
        from moto import mock_aws
        from moto.core.config import default_user_config

        if self.options.server_port is None:
            self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
            self._mock.start()
            return
        from moto.server import ThreadedMotoServer

        default_user_config["stepfunctions"]["execute_state_machine"] = True
        port = self.options.server_port
        if port:
            # ThreadedMotoServer.start() waits forever when its thread cannot bind: fail first.
            _check_port_free("127.0.0.1", port)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        port = self._server.get_host_and_port()[1]  # the real one when port 0 was asked for
        self.endpoint_url = f"http://127.0.0.1:{port}"
        # moto's interpreter calls Lambda through localhost:$MOTO_PORT; handlers use the endpoint.
        self._set_env(MOTO_PORT=str(port), AWS_ENDPOINT_URL=self.endpoint_url)

    def client(self, service: str) -> Any:
        factory: Any = boto3.client  # any service by name: the stubs' overloads want a literal
        return factory(service, region_name=self.options.region, endpoint_url=self.endpoint_url)

    # ------------------------------------------------------------------ resources

    def _ref(self, name: str) -> Any:
        if name in self.physical:
            return self.physical[name]
        if name in self.params:
            return self.params[name]
        pseudo = {
            "AWS::Region": self.options.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": PREFIX,
            "AWS::StackId": f"arn:aws:cloudformation:{self.options.region}:{ACCOUNT_ID}:stack/"
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
        raise KeyError(f"template GetAtt {resource}.{attribute} is not available locally")

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.options.region}:{ACCOUNT_ID}:{resource}"

    def _scaled(self, seconds: Any, minimum: int = 1) -> int:
        return max(minimum, round(float(seconds) * self.options.time_scale))

    def _create_resources(self) -> None:
        unknown = sorted(set(self.options.parameters) - set(self.params))
        if unknown:
            raise ValueError(f"template.yaml declares no parameter {', '.join(unknown)}")
        self.params.update(self.options.parameters)
        if self.options.human_review_threshold is not None:
            self.params["HumanReviewThreshold"] = self.options.human_review_threshold
        self.params["DatalabApiUrl"] = self.datalab_api_url
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
        for logical_id in resources_of_type(self.template, "AWS::SecretsManager::Secret"):
            arn = secrets.create_secret(
                Name=f"{PREFIX}-{logical_id}", SecretString=self.datalab_api_key or "unset"
            )["ARN"]
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
            archive.writestr("app.py", "# runs in-process, see doctriage_local.stack\n")
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
            self.functions[name] = _Function(
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

    def _configure_handlers(self) -> None:
        env: dict[str, str] = {}
        for fn in self.functions.values():
            variables = function_properties(self.template, fn.logical_id)["Environment"][
                "Variables"
            ]
            env.update({k: str(v) for k, v in resolve(variables, self._ref, self._get_att).items()})
        env.update(
            DOCTRIAGE_TIME_SCALE=str(self.options.time_scale),
            POWERTOOLS_LOG_LEVEL=self.options.log_level,
            **self.options.environment,
        )
        if self.endpoint_url:  # server mode: the handlers' SDK clients talk to our server
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        self._set_env(**env)
        from doctriage_core import runtime

        runtime.reset()
        for fn in self.functions.values():
            fn.module = importlib.import_module(fn.module_name)
        service_logger = logging.getLogger(env.get("POWERTOOLS_SERVICE_NAME"))
        # The handlers' modules may come from an earlier stack in this process: set the level.
        service_logger.setLevel(self.options.log_level)
        # Handler logs go to stderr so that stdout stays for what the CLI prints.
        for handler in service_logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.stream = _CurrentStderr()

    # ------------------------------------------------------------------ invocation

    def invoke(self, function: str, event: Any) -> tuple[Any, bool]:
        """Run a handler in-process: (result, errored). ``function``: logical id or name."""
        fn = self.functions.get(function) or next(
            (f for f in self.functions.values() if f.logical_id == function), None
        )
        if fn is None or fn.module is None:
            raise KeyError(f"no function {function!r} in template.yaml")
        handler: Callable[[Any, Any], Any] = getattr(fn.module, fn.handler_name)
        with self._count_lock:
            self.invocations[fn.logical_id] = self.invocations.get(fn.logical_id, 0) + 1
        # Concurrent, as Lambda runs them: only reserved concurrency (if set) bounds a function.
        with (
            fn.slots or contextlib.nullcontext(),
            iam_local.acting_as(self.role_credentials[fn.role]),
        ):
            try:
                return handler(event, _FakeContext(fn, fn.timeout)), False
            except Exception as exc:  # the Lambda runtime's error payload
                log.debug("%s raised %s", fn.logical_id, type(exc).__name__, exc_info=True)
                return {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }, True

    def _start_event_source_mappings(self) -> None:
        for fn in self.functions.values():
            props = function_properties(self.template, fn.logical_id)
            for event in props.get("Events", {}).values():
                if event.get("Type") != "SQS":
                    continue
                props = resolve(event["Properties"], self._ref, self._get_att)
                queue_arn = props["Queue"]
                queue_id = next(k for k, v in self.arns.items() if v == queue_arn)
                # Lambda runs up to MaximumConcurrency batches of one mapping at once (5 pollers
                # to start with when it is unset).
                pollers = int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 5))
                for index in range(pollers):
                    thread = threading.Thread(
                        target=self._poll_queue,
                        args=(fn, self.physical[queue_id], queue_arn, props),
                        name=f"esm-{fn.logical_id}-{index}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)

    def _poll_queue(self, fn: _Function, queue_url: str, queue_arn: str, props: dict) -> None:
        # The event source mapping reads and deletes with the function's own role, as in AWS.
        with iam_local.acting_as(self.role_credentials[fn.role]):
            self._consume_queue(fn, queue_url, queue_arn, props)

    def _consume_queue(self, fn: _Function, queue_url: str, queue_arn: str, props: dict) -> None:
        sqs = self.client("sqs")
        batch_size = min(10, int(props.get("BatchSize", 10)))
        partial = "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])
        while not self._stopping.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("receiving from %s failed", queue_url)
                time.sleep(0.5)
                continue
            if not messages:
                continue
            event = {"Records": [_sqs_record(m, queue_arn, self.options.region) for m in messages]}
            result, errored = self.invoke(fn.name, event)
            failed: set[str] = set()
            if errored:
                failed = {m["MessageId"] for m in messages}
            elif partial and isinstance(result, dict):
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] in failed:
                    continue  # visible again after the (scaled) visibility timeout
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # ------------------------------------------------------------------ what users do

    @property
    def bucket(self) -> str:
        return self.physical["DocumentsBucket"]

    def put_schema(self, doc_type: str, schema: bytes | str | Path) -> None:
        body = schema.read_bytes() if isinstance(schema, Path) else schema
        self.client("s3").put_object(
            Bucket=self.bucket,
            Key=f"schemas/{doc_type}.json",
            Body=body,
            ContentType="application/json",
        )

    def upload(
        self,
        body: bytes | Path,
        doc_type: str,
        *,
        name: str | None = None,
        key: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Put a document under incoming/<doc_type>/; return its key, version and document_id."""
        from doctriage_core.domain.documents import document_id_for

        if isinstance(body, Path):
            name = name or body.name
            body = body.read_bytes()
        key = key or f"incoming/{doc_type}/{name}"
        response = self.client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=body, Metadata=metadata or {}
        )
        version_id = response.get("VersionId")
        return {
            "key": key,
            "version_id": version_id,
            "document_id": document_id_for(self.bucket, key, version_id, response.get("ETag")),
        }

    def record(self, document_id: str) -> dict[str, Any] | None:
        from doctriage_core.adapters.aws import ResultsTable

        table = ResultsTable(
            self.physical["ResultsTable"],
            boto3.resource(
                "dynamodb", region_name=self.options.region, endpoint_url=self.endpoint_url
            ),
        )
        return table.get(document_id)

    def wait_for_records(
        self,
        document_ids: list[str],
        timeout: float = 120.0,
        on_record: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Block until every document has its terminal record (or the timeout passes)."""
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(set(document_ids)) and time.monotonic() < deadline:
            for document_id in document_ids:
                if document_id in done:
                    continue
                record = self.record(document_id)
                if record is not None:
                    done[document_id] = record
                    if on_record:
                        on_record(record)
            time.sleep(0.05)
        return done

    def review_messages(self, *, delete: bool = False, max_messages: int = 100) -> list[dict]:
        """What is on the review queue (left there unless ``delete``)."""
        sqs = self.client("sqs")
        url = self.physical["ReviewQueue"]
        bodies: list[dict] = []
        handles: list[str] = []
        while len(bodies) < max_messages:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                handles.append(message["ReceiptHandle"])
        for handle in handles:
            if delete:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
            else:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0
                )
        return bodies

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.physical["DocumentStateMachine"]
        )
        return [execution for page in pages for execution in page["executions"]]

    def _execution_arn(self, document_id: str) -> str:
        for execution in self.executions():
            if execution["name"] == document_id:
                return str(execution["executionArn"])
        raise LookupError(f"no execution named {document_id}")

    def finished_execution(self, document_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The execution named ``document_id`` (as DescribeExecution gives it) once it has ended.

        Waits until it exists and is no longer RUNNING; raises TimeoutError after ``timeout``.
        """
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        last_status: str | None = None
        while True:
            for execution in self.executions():
                if execution["name"] == document_id:
                    last_status = execution["status"]
                    if last_status != "RUNNING":
                        described: dict[str, Any] = sfn.describe_execution(
                            executionArn=execution["executionArn"]
                        )
                        return described
            if time.monotonic() > deadline:
                state = "still RUNNING" if last_status else "never started"
                raise TimeoutError(
                    f"execution {document_id} did not finish within {timeout} s ({state})"
                )
            time.sleep(0.05)

    def execution_history(self, document_id: str) -> list[dict[str, Any]]:
        """Every event of the execution named ``document_id``, following nextToken."""
        sfn = self.client("stepfunctions")
        kwargs: dict[str, Any] = {
            "executionArn": self._execution_arn(document_id),
            "maxResults": 1000,
        }
        events: list[dict[str, Any]] = []
        while True:
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def states_entered(self, document_id: str) -> list[str]:
        """The names of the states the execution named ``document_id`` entered, in order."""
        return [
            event["stateEnteredEventDetails"]["name"]
            for event in self.execution_history(document_id)
            if "stateEnteredEventDetails" in event
        ]

    def info(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.options.region,
            "bucket": self.bucket,
            "intake_queue_url": self.physical["IntakeQueue"],
            "review_queue_url": self.physical["ReviewQueue"],
            "results_table": self.physical["ResultsTable"],
            "state_machine_arn": self.physical["DocumentStateMachine"],
            "datalab_api_url": self.datalab_api_url,
        }


class _CurrentStderr:
    """Whatever sys.stderr is at the time of writing (pytest swaps it between tests)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve the local stack on {host}:{port}: {exc.strerror or exc}"
            ) from exc


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


# ---------------------------------------------------------------------- moto patches

_PATCHED = False


def _install_patches() -> None:
    """Patch moto once per process; each patch defers to the active stack (or moto's own code)."""
    global _PATCHED
    if _PATCHED:
        return
    from moto.awslambda.models import LambdaFunction
    from moto.s3 import notifications
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    original_invoke = LambdaFunction._invoke_lambda

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        stack = _ACTIVE
        if stack is None or self.function_name not in stack.functions:
            return original_invoke(self, event)
        payload = json.loads(event) if isinstance(event, str) else (event or {})
        result, errored = stack.invoke(self.function_name, payload)
        return json.dumps(result), errored, ""

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        scale = _ACTIVE.options.time_scale if _ACTIVE else 1.0
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * scale)

    class _ScaledTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(seconds * (_ACTIVE.options.time_scale if _ACTIVE else 1.0))

    original_event = notifications._get_s3_event

    def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        # Real S3 puts the version id of a versioned bucket's object in the event; moto does not.
        event = original_event(event_name, bucket, key, notification_id)
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version_id
        return event

    def emf_print(*args: Any, **kwargs: Any) -> None:
        # powertools prints EMF to stdout; here stdout belongs to the CLI, so keep them aside.
        if _ACTIVE is not None:
            _ACTIVE.metric_lines.append(" ".join(str(a) for a in args))
        else:
            print(*args, file=sys.stderr)

    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch as emf

    # Lambda runs one event per container; here concurrent invocations share one Logger, so each
    # thread keeps its own context (function name, request id, correlation id).
    Logger.append_keys = Logger.thread_safe_append_keys  # type: ignore[method-assign]
    Logger.remove_keys = Logger.thread_safe_remove_keys  # type: ignore[method-assign]

    emf.print = emf_print  # type: ignore[attr-defined]
    LambdaFunction._invoke_lambda = invoke_lambda  # type: ignore[method-assign]
    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
    retrier_decl.time = _ScaledTime()  # type: ignore[assignment]
    notifications._get_s3_event = s3_event
    _PATCHED = True


@contextlib.contextmanager
def local_stack(**options: Any) -> Iterator[LocalStack]:
    with LocalStack(StackOptions(**options)) as stack:
        yield stack
