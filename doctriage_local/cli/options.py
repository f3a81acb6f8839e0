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


def stack_options(time_scale: float) -> dict[str, Any]:
    """StackOptions for a local stack: DATALAB_API_URL/DATALAB_API_KEY when set, else the
    built-in emulator."""
    url = os.environ.get("DATALAB_API_URL")
    options: dict[str, Any] = {"time_scale": time_scale}
    if url:
        options["datalab_api_url"] = url
        options["datalab_api_key"] = os.environ.get("DATALAB_API_KEY", "")
    return options


def up_endpoint(endpoint_url: str | None) -> str:
    """The endpoint of a running `doctriage up`: the option, else $AWS_ENDPOINT_URL, else ours."""
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or UP_ENDPOINT_URL
