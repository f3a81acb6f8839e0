"""LocalStack's lifecycle: start moto (in-process or served on 127.0.0.1), the Datalab emulator,
the resources and the handlers, in order; stop them all and restore the environment.

One stack is active per process (doctriage_local.stack.patches). What a started stack offers its
users is doctriage_local.stack.operations.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

import boto3

import doctriage_local.stack.iam as iam_local
import doctriage_local.stack.patches as patches
from doctriage_local.stack.function_urls import FunctionUrls
from doctriage_local.stack.functions import (
    EventSourceMappings,
    InProcessLambda,
    handler_environment,
)
from doctriage_local.stack.operations import StackOperations
from doctriage_local.stack.options import StackOptions
from doctriage_local.stack.resources import Resources
from doctriage_local.template import load_template, sam_transform


class LocalStack(StackOperations):
    """Start with ``with LocalStack(StackOptions(...)) as stack:``; one active per process."""

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.template = load_template()
        self.deployed = sam_transform(self.template, self.options.region)
        self.resources = Resources(
            self.template,
            self.deployed,
            self.client,
            region=self.options.region,
            time_scale=self.options.time_scale,
        )
        # The resources' names and ARNs, by logical id (the same dicts as self.resources').
        self.params = self.resources.params
        self.physical = self.resources.physical
        self.arns = self.resources.arns
        self.functions = self.resources.functions
        self.role_credentials = self.resources.role_credentials
        self.lambda_ = InProcessLambda(self.functions, self.role_credentials)
        self.function_urls = FunctionUrls(self.lambda_.invoke)
        self.resources.function_urls = self.function_urls
        self.invocations = self.lambda_.invocations  # by logical id
        self._mappings = EventSourceMappings(self.lambda_, self.client, self.options.region)
        self.emulator: Any = None
        self.datalab_api_url = ""
        self.datalab_api_key = ""
        self.webhook_secret = ""  # Datalab's (the emulator's own, or DATALAB_WEBHOOK_SECRET)
        self.endpoint_url: str | None = None
        self._mock: Any = None
        self._server: Any = None
        self._saved_env: dict[str, str | None] = {}
        # The handlers' CloudWatch EMF lines (what Lambda would ship to CloudWatch Metrics).
        self.metric_lines: collections.deque[str] = collections.deque(maxlen=10_000)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        patches.activate(self)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._set_env(AWS_DEFAULT_REGION=self.options.region, AWS_REGION=self.options.region)
        self._start_datalab()
        self._start_moto()
        self._set_env(  # after moto's start, which sets its own fake keys
            # The operator: an IAM user allowed everything (doctriage_local.stack.iam).
            AWS_ACCESS_KEY_ID=iam_local.OPERATOR_KEY,
            AWS_SECRET_ACCESS_KEY=iam_local.OPERATOR_KEY,
            AWS_SESSION_TOKEN=None,
            AWS_SECURITY_TOKEN=None,
        )
        patches.install()
        iam_local.install_patches()
        iam_local.enforce(False)
        self.resources.create(
            datalab_api_url=self.datalab_api_url,
            datalab_api_key=self.datalab_api_key,
            webhook_secret=self.webhook_secret,
            parameters=self.options.parameters,
            human_review_threshold=self.options.human_review_threshold,
        )
        self._configure_handlers()
        iam_local.state_machine_credentials = lambda: self.role_credentials.get(
            self.resources.state_machine_role
        )
        iam_local.enforce(True)  # from here on every request is checked against its caller's role
        queue_urls = {
            arn: self.physical[lid] for lid, arn in self.arns.items() if lid in self.physical
        }
        self._mappings.start(self.template, self.resources.resolve, queue_urls)

    def stop(self) -> None:
        self._mappings.stop()
        self.function_urls.stop()
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
        patches.deactivate(self)

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
            self.webhook_secret = self.options.webhook_secret or ""
            return
        from doctriage_local.emulator import DatalabEmulator, EmulatorConfig

        config = self.options.emulator or EmulatorConfig()
        config.time_scale = self.options.time_scale
        self.emulator = DatalabEmulator(config, port=self.options.emulator_port).start()
        self.datalab_api_url = self.emulator.url
        self.datalab_api_key = self.emulator.api_key
        self.webhook_secret = self.options.webhook_secret or config.webhook_secret or ""

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

    def _configure_handlers(self) -> None:
        env = handler_environment(self.template, self.functions, self.resources.resolve)
        env.update(
            DOCTRIAGE_TIME_SCALE=str(self.options.time_scale),
            POWERTOOLS_LOG_LEVEL=self.options.log_level,
            **self.options.environment,
        )
        if self.endpoint_url:  # server mode: the handlers' SDK clients talk to our server
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        self._set_env(**env)
        self.lambda_.load_handlers(env.get("POWERTOOLS_SERVICE_NAME"), self.options.log_level)

    @property
    def state_machine_role(self) -> str:
        return self.resources.state_machine_role

    def client(self, service: str) -> Any:
        factory: Any = boto3.client  # any service by name: the stubs' overloads want a literal
        return factory(service, region_name=self.options.region, endpoint_url=self.endpoint_url)

    def invoke(self, function: str, event: Any) -> tuple[Any, bool]:
        """Run a handler in-process: (result, errored). ``function``: logical id or name."""
        return self.lambda_.invoke(function, event)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve the local stack on {host}:{port}: {exc.strerror or exc}"
            ) from exc


@contextlib.contextmanager
def local_stack(**options: Any) -> Iterator[LocalStack]:
    with LocalStack(StackOptions(**options)) as stack:
        yield stack
