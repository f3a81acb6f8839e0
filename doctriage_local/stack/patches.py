"""moto and powertools patched for the local stack, once per process.

Each patch defers to the active stack (one per process, ``activate``/``deactivate``), or to the
patched code's own behaviour when none runs:
- Lambda: moto's invoke runs the handler in this process (doctriage_local.stack.functions);
- time: Wait states, Retry intervals and task timeouts (a ``.waitForTaskToken`` task's
  TimeoutSecondsPath) shrink by the stack's ``time_scale``;
- S3 events carry the version id of a versioned bucket's object, as real S3's do;
- moto's ASL interpreter: an IsPresent Choice's missing path is not logged as an ERROR;
- powertools: EMF metric lines are kept on the stack (stdout belongs to the CLI), and the Logger
  keeps per-thread keys and Metrics per-thread metric sets (Lambda runs one event per container;
  here invocations run concurrently, and powertools shares one metric set per process: one
  handler's flush emptied another's set between its check and its serialising, failing that
  document with "Must contain at least one metric").
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

_ACTIVE: Any = None  # the LocalStack running in this process, if any
_LOCK = threading.Lock()
_PATCHED = False


def activate(stack: Any) -> None:
    global _ACTIVE
    with _LOCK:
        if _ACTIVE is not None:
            raise RuntimeError("a LocalStack is already running in this process")
        _ACTIVE = stack


def deactivate(stack: Any) -> None:
    global _ACTIVE
    with _LOCK:
        if _ACTIVE is stack:
            _ACTIVE = None


def _time_scale() -> float:
    return float(_ACTIVE.options.time_scale) if _ACTIVE is not None else 1.0


def install() -> None:
    """Patch moto and powertools once per process."""
    global _PATCHED
    if _PATCHED:
        return
    _patch_lambda_invoke()
    _patch_waits()
    _patch_s3_events()
    _patch_powertools()
    _quiet_choice_path_errors()
    _PATCHED = True


def _quiet_choice_path_errors() -> None:
    """moto's ASL interpreter logs, at ERROR, every path an ``IsPresent`` Choice finds missing
    ("Webhook Expected?" on each document without a webhook); a real missing path still fails
    the execution (States.Runtime, in its history and the document's record)."""
    import logging

    def not_a_missing_path(record: logging.LogRecord) -> bool:
        return "NoSuchJsonPathError" not in record.getMessage()

    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").addFilter(
        not_a_missing_path
    )


def _patch_lambda_invoke() -> None:
    from moto.awslambda.models import LambdaFunction

    original_invoke = LambdaFunction._invoke_lambda

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        stack = _ACTIVE
        if stack is None or self.function_name not in stack.functions:
            return original_invoke(self, event)
        payload = json.loads(event) if isinstance(event, str) else (event or {})
        result, errored = stack.invoke(self.function_name, payload)
        return json.dumps(result), errored, ""

    LambdaFunction._invoke_lambda = invoke_lambda  # type: ignore[method-assign]


def _patch_waits() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
        WaitFunction,
    )

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * _time_scale())

    class _ScaledTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(seconds * _time_scale())

    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import Timeout

    def timeout_body(self: Any, env: Any) -> None:
        env.stack.append(self._eval_seconds(env=env) * _time_scale())

    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (  # noqa: E501
        StateTaskService,
    )

    original_before = StateTaskService._before_eval_execution

    def before_eval_execution(self: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        # A task that timed out before its worker thread got here (a short scaled timeout on a
        # loaded machine) has an ended frame, where every eval is skipped: moto would record a
        # TaskScheduled event with the state input as its timeout, which breaks
        # GetExecutionHistory. An abandoned attempt records nothing.
        if env.is_running():
            original_before(self, env, *args, **kwargs)

    WaitFunction._wait_interval = wait_interval  # type: ignore[method-assign]
    Timeout._eval_body = timeout_body  # type: ignore[method-assign]
    StateTaskService._before_eval_execution = before_eval_execution  # type: ignore[method-assign]
    retrier_decl.time = _ScaledTime()  # type: ignore[assignment]


def _patch_s3_events() -> None:
    from moto.s3 import notifications

    original_event = notifications._get_s3_event

    def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        # Real S3 puts the version id of a versioned bucket's object in the event; moto does not.
        event = original_event(event_name, bucket, key, notification_id)
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version_id
        return event

    notifications._get_s3_event = s3_event


def _patch_powertools() -> None:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch as emf

    def emf_print(*args: Any, **kwargs: Any) -> None:
        # powertools prints EMF to stdout; here stdout belongs to the CLI, so keep them aside.
        if _ACTIVE is not None:
            _ACTIVE.metric_lines.append(" ".join(str(a) for a in args))
        else:
            print(*args, file=sys.stderr)

    # Lambda runs one event per container; here concurrent invocations share one Logger, so each
    # thread keeps its own context (function name, request id, correlation id).
    Logger.append_keys = Logger.thread_safe_append_keys  # type: ignore[method-assign]
    Logger.remove_keys = Logger.thread_safe_remove_keys  # type: ignore[method-assign]
    emf.print = emf_print  # type: ignore[attr-defined]
    _metric_sets_per_thread(emf.AmazonCloudWatchEMFProvider)


def _metric_sets_per_thread(provider: type) -> None:
    """Each thread gets its own metric, dimension and metadata sets on every EMF provider, as each
    Lambda container has its own process; the default dimensions stay shared (set at import)."""
    local = threading.local()

    def sets_of(provider: Any) -> dict[str, Any]:
        if not hasattr(local, "sets"):
            local.sets = {}
        sets: dict[str, Any] = local.sets.setdefault(id(provider), {})
        return sets

    def per_thread(name: str) -> property:
        def fresh(self: Any) -> Any:
            if name == "dimension_sets":
                return []
            if name == "dimension_set":
                defaults = getattr(self, "default_dimensions", None) or {}
                return {k: v if isinstance(v, str) else str(v) for k, v in defaults.items()}
            return {}

        def get(self: Any) -> Any:
            sets = sets_of(self)
            if name not in sets:
                sets[name] = fresh(self)
            return sets[name]

        def set_(self: Any, value: Any) -> None:
            # __init__ hands every provider the process-wide dicts of Metrics; keep them apart.
            sets_of(self)[name] = type(value)(value)

        return property(get, set_)

    for name in ("metric_set", "dimension_set", "metadata_set", "dimension_sets"):
        setattr(provider, name, per_thread(name))
