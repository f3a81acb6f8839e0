"""Lambda in this process: the template's handlers invoked in-process, the SQS event source
mappings that feed them, and the fake context they get.

moto would need Docker to run a function, so each handler named in the template is imported and
called here, in the invocation's own role (doctriage_local.stack.iam). moto's own event source
mapping runs inside SendMessage (an S3 upload would block on the submit function) and ignores
partial batch failures; ours polls the queue in threads, honours ``batchItemFailures`` and leaves
failed messages for redelivery and the DLQ.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import json
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from botocore.credentials import Credentials

import doctriage_local.stack.iam as iam_local
from doctriage_local.template import function_properties

log = logging.getLogger("doctriage.local")


@dataclass
class Function:
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


class FakeContext:
    """The parts of Lambda's context object the handlers and powertools read."""

    def __init__(self, fn: Function, timeout_s: float) -> None:
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


class InProcessLambda:
    """The template's functions (by name), their handlers imported, invoked one event per call."""

    def __init__(
        self, functions: dict[str, Function], role_credentials: dict[str, Credentials]
    ) -> None:
        self.functions = functions
        self.role_credentials = role_credentials
        self.invocations: dict[str, int] = {}  # by logical id
        self._count_lock = threading.Lock()
        # The handlers' log lines as dicts, as CloudWatch Logs would keep them (the operator's
        # view of what the functions said: doctriage_local.stack.watch reads them).
        self.log_lines: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)

    def load_handlers(self, service_name: str | None, log_level: str) -> None:
        """Import every handler's module (after the handlers' environment is set)."""
        from doctriage_core import runtime

        runtime.reset()
        for fn in self.functions.values():
            fn.module = importlib.import_module(fn.module_name)
        service_logger = logging.getLogger(service_name)
        # The handlers' modules may come from an earlier stack in this process: set the level.
        service_logger.setLevel(log_level)
        # Handler logs go to stderr so that stdout stays for what the CLI prints.
        kept = _KeptLogs(self.log_lines)
        for handler in list(service_logger.handlers):
            if isinstance(handler, _KeptLogs):  # an earlier stack's
                service_logger.removeHandler(handler)
            elif isinstance(handler, logging.StreamHandler):
                handler.stream = _CurrentStderr()
                kept.setFormatter(handler.formatter)
        service_logger.addHandler(kept)

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
                return handler(event, FakeContext(fn, fn.timeout)), False
            except Exception as exc:  # the Lambda runtime's error payload
                log.debug("%s raised %s", fn.logical_id, type(exc).__name__, exc_info=True)
                return {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__),
                }, True


def handler_environment(
    template: dict[str, Any], functions: dict[str, Function], resolve: Callable[[Any], Any]
) -> dict[str, str]:
    """Every function's environment variables from the template (Globals applied), resolved."""
    env: dict[str, str] = {}
    for fn in functions.values():
        variables = function_properties(template, fn.logical_id)["Environment"]["Variables"]
        env.update({k: str(v) for k, v in resolve(variables).items()})
    return env


class EventSourceMappings:
    """The template's SQS events: pollers that invoke their function with batches of messages."""

    def __init__(self, lambda_: InProcessLambda, client: Callable[[str], Any], region: str) -> None:
        self.lambda_ = lambda_
        self.client = client
        self.region = region
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def stop(self) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def start(
        self,
        template: dict[str, Any],
        resolve: Callable[[Any], Any],
        queue_urls: dict[str, str],
    ) -> None:
        """One poller thread per concurrent batch of each SQS event; ``queue_urls`` by ARN."""
        for fn in self.lambda_.functions.values():
            props = function_properties(template, fn.logical_id)
            for event in props.get("Events", {}).values():
                if event.get("Type") != "SQS":
                    continue
                props = resolve(event["Properties"])
                queue_arn = props["Queue"]
                # Lambda runs up to MaximumConcurrency batches of one mapping at once (5 pollers
                # to start with when it is unset).
                pollers = int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 5))
                for index in range(pollers):
                    thread = threading.Thread(
                        target=self._poll_queue,
                        args=(fn, queue_urls[queue_arn], queue_arn, props),
                        name=f"esm-{fn.logical_id}-{index}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)

    def _poll_queue(self, fn: Function, queue_url: str, queue_arn: str, props: dict) -> None:
        # The event source mapping reads and deletes with the function's own role, as in AWS.
        with iam_local.acting_as(self.lambda_.role_credentials[fn.role]):
            self._consume_queue(fn, queue_url, queue_arn, props)

    def _consume_queue(self, fn: Function, queue_url: str, queue_arn: str, props: dict) -> None:
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
            event = {"Records": [_sqs_record(m, queue_arn, self.region) for m in messages]}
            result, errored = self.lambda_.invoke(fn.name, event)
            failed: set[str] = set()
            if errored:
                failed = {m["MessageId"] for m in messages}
            elif partial and isinstance(result, dict):
                failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] in failed:
                    continue  # visible again after the (scaled) visibility timeout
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


class _KeptLogs(logging.Handler):
    """Each log line (powertools' JSON, so with the correlation id) kept as a dict."""

    def __init__(self, lines: collections.deque[dict[str, Any]]) -> None:
        super().__init__()
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(json.loads(self.format(record)))
        except ValueError:  # not powertools' JSON formatter: keep the message alone
            self.lines.append({"level": record.levelname, "message": record.getMessage()})


class _CurrentStderr:
    """Whatever sys.stderr is at the time of writing (pytest swaps it between tests)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        # Lambda's event spells message attributes in camelCase, unlike ReceiveMessage's answer.
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
