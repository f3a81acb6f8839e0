"""What every ``doctriage`` command parses the same way: the shared options and their validators.

A command adds an option through the ``add_*`` helpers below rather than ``add_argument`` with a
type of its own, so ``--port``, ``--time-scale``, ``--timeout``, ``--log-level`` and
``--endpoint-url`` accept and refuse the same values in every command. Also here: the addresses
``doctriage up`` serves on (``events/env.json`` names them) and the stack options the commands
that run a local stack share.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any

DEMO_TIME_SCALE = 0.05
UP_PORT = 4566  # where `doctriage up` serves the AWS APIs (events/env.json names it)
UP_DATALAB_PORT = 4567  # where `doctriage up` serves the Datalab emulator (events/env.json too)
UP_REGION = "us-east-1"
UP_ENDPOINT_URL = f"http://127.0.0.1:{UP_PORT}"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# ---------------------------------------------------------------------- validators


class ConfigurationError(Exception):
    """A command's configuration (environment or options) it cannot start with.

    ``doctriage`` (cli/main.py) prints it as one line on stderr and exits 2, before any work.
    """


class Parser(argparse.ArgumentParser):
    """argparse that refuses a bad option in one line on stderr (exit 2), not usage + error."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: {message} (--help for usage)\n")


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return value


def threshold(text: str) -> float:
    """A human review threshold: a number in [0, 1]."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def error_rate(text: str) -> float:
    """A target error rate: a number strictly between 0 and 1."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1 (both excluded)")
    return value


def time_scale(text: str) -> float:
    """A time scale: in (0, 1]; 0.01 runs the pipeline's timeline 100 times faster."""
    value = _number(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError("--time-scale must be in (0, 1]")
    return value


def seconds(text: str) -> float:
    """A duration in seconds: a number >= 0."""
    value = _number(text)
    if value < 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (>= 0)")
    return value


def port(text: str) -> int:
    """A TCP port on 127.0.0.1: 0-65535, where 0 picks a free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 picks a free one)")
    return value


# ---------------------------------------------------------------------- options


def add_time_scale(parser: Any, *, default: float | None, help: str | None = None) -> None:
    parser.add_argument(
        "--time-scale",
        type=time_scale,
        default=default,
        help=help or "compress waits, retries and deadlines (0.01 = 100x faster)",
    )


def add_timeout(parser: Any, *, default: float, help: str) -> None:
    parser.add_argument("--timeout", type=seconds, default=default, help=help)


def add_quiet(parser: Any) -> None:
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress on stderr (errors are still said)",
    )


def add_port(parser: Any, flag: str, *, default: int, what: str) -> None:
    parser.add_argument(
        flag,
        type=port,
        default=default,
        help=f"port of {what} on 127.0.0.1 (default {default}; 0 picks a free one)",
    )


def add_log_level(parser: Any, *, default: str = "INFO", help: str) -> None:
    parser.add_argument("--log-level", default=default, choices=LOG_LEVELS, help=help)


def add_endpoint_url(parser: Any, *, help: str) -> None:
    parser.add_argument("--endpoint-url", help=help)


# ---------------------------------------------------------------------- shared behaviour


def say(message: str) -> None:
    """Progress and errors go to stderr; stdout is for what a command prints as its result."""
    print(message, file=sys.stderr, flush=True)


def datalab_environment() -> dict[str, str | None]:
    """DATALAB_API_URL and DATALAB_API_KEY, checked: {} for the built-in emulator, else both
    (and DATALAB_WEBHOOK_SECRET, which turns webhook-assisted waiting on).

    ConfigurationError unless the URL is https (http only on a loopback host: 127.0.0.1,
    localhost, ::1) and a key is set with it: the functions would refuse it anyway, but only
    once a document meets it.
    """
    from doctriage_core.adapters.datalab import check_api_url

    url = os.environ.get("DATALAB_API_URL", "").strip()
    key = os.environ.get("DATALAB_API_KEY", "").strip()
    if not url:  # the emulator (a DATALAB_API_KEY alone, e.g. for Datalab's SDK, is ignored)
        return {}
    try:
        check_api_url(url)
    except ValueError as exc:
        raise ConfigurationError(f"{exc} (DATALAB_API_URL={_shown(url)})") from None
    if not key:
        raise ConfigurationError("DATALAB_API_URL is set but DATALAB_API_KEY is not")
    secret = os.environ.get("DATALAB_WEBHOOK_SECRET", "").strip()
    return {"datalab_api_url": url, "datalab_api_key": key, "webhook_secret": secret or None}


def _shown(url: str) -> str:
    """A URL as it may be printed: any user info (a password) left out."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def stack_options(time_scale: float, overrides: list[str] | None = None) -> dict[str, Any]:
    """StackOptions for a local stack: DATALAB_API_URL/DATALAB_API_KEY when set (checked, see
    :func:`datalab_environment`), else the built-in emulator; template parameter overrides."""
    return {
        "time_scale": time_scale,
        **datalab_environment(),
        "parameters": parameter_overrides(overrides or []),
    }


def add_parameter_overrides(parser: Any) -> None:
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        metavar="KEY=VALUE",
        default=[],
        help="template.yaml parameters, as `sam deploy --parameter-overrides` takes them "
        "(e.g. HumanReviewThreshold=0.9 IntakeMaxReceives=5), checked against the template",
    )


# Set by the local stack itself: an override would be silently replaced.
_NOT_OVERRIDABLE = {"DatalabApiUrl": "set DATALAB_API_URL (and DATALAB_API_KEY) instead"}


def parameter_overrides(pairs: list[str]) -> dict[str, Any]:
    """``Key=Value`` pairs checked as CloudFormation would check them against template.yaml's
    Parameters (declared name, Type, MinValue/MaxValue, AllowedValues, AllowedPattern)."""
    from doctriage_local.template import load_template

    declared: dict[str, Any] = load_template().get("Parameters", {})
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--parameter-overrides: {pair!r} is not Key=Value")
        if name not in declared:
            known = ", ".join(sorted(declared))
            raise ConfigurationError(f"--parameter-overrides: no parameter {name!r} ({known})")
        if name in _NOT_OVERRIDABLE:
            raise ConfigurationError(f"--parameter-overrides: {name}: {_NOT_OVERRIDABLE[name]}")
        values[name] = _parameter_value(name, raw, declared[name])
    return values


def _parameter_value(name: str, raw: str, spec: dict[str, Any]) -> Any:
    import re

    def refuse(why: str) -> ConfigurationError:
        return ConfigurationError(f"--parameter-overrides: {name}={raw!r} {why}")

    value: Any = raw
    if spec.get("Type") == "Number":
        try:
            value = float(raw)
        except ValueError:
            raise refuse("is not a number") from None
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (low is not None and value < float(low)) or (high is not None and value > float(high)):
            raise refuse(f"must be between {low} and {high}")
        value = int(value) if value == int(value) else value
    allowed = spec.get("AllowedValues")
    if allowed is not None and str(value) not in {str(a) for a in allowed}:
        raise refuse(f"is not one of {', '.join(map(str, allowed))}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(pattern, raw):
        raise refuse(f"does not match {pattern}")
    return value


def endpoint(url: str, *, source: str) -> str:
    """An AWS endpoint URL: http(s) with a host, else ConfigurationError naming ``source``."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise ConfigurationError(f"{source}={url!r} is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{source}={_shown(url)!r} is not an http(s) URL with a host (e.g. {UP_ENDPOINT_URL})"
        )
    return url


def endpoint_option(endpoint_url: str | None) -> str | None:
    """--endpoint-url, else $AWS_ENDPOINT_URL (boto3 reads it too), each checked; None if unset."""
    if endpoint_url:
        return endpoint(endpoint_url, source="--endpoint-url")
    env = os.environ.get("AWS_ENDPOINT_URL", "").strip()
    return endpoint(env, source="AWS_ENDPOINT_URL") if env else None


def up_endpoint(endpoint_url: str | None) -> str:
    """The endpoint of a running `doctriage up`: the option, else $AWS_ENDPOINT_URL, else ours."""
    return endpoint_option(endpoint_url) or UP_ENDPOINT_URL


def check(args: argparse.Namespace) -> None:
    """What every command checks before it starts (ConfigurationError, one line, exit 2):
    the Datalab environment where a local stack is started, the endpoint where one is used."""
    if getattr(args, "starts_stack", False) or getattr(args, "demo", False):
        datalab_environment()
        parameter_overrides(getattr(args, "parameter_overrides", None) or [])
    if hasattr(args, "endpoint_url") or getattr(args, "uses_endpoint", False):
        endpoint_option(getattr(args, "endpoint_url", None))
