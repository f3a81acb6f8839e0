"""``doctriage invoke FUNCTION --event FILE``: one handler of a running ``doctriage up``.

The Docker-free ``sam local invoke``: the event goes to the function through the Lambda API of
the local stack, whose handlers run in the ``doctriage up`` process.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from doctriage_local.cli import options
from doctriage_local.cli.options import say
from doctriage_local.stack import PREFIX
from doctriage_local.template import load_template, resources_of_type


def add_parser(sub: Any) -> None:
    invoke = sub.add_parser(
        "invoke",
        help="run one function of a running `doctriage up` on an event file",
        description="The Docker-free `sam local invoke`: sends the event to the function on a "
        "running `doctriage up` and prints the handler's result JSON on stdout (exit 1 when "
        "the handler raised).",
    )
    invoke.add_argument(
        "function",
        metavar="FUNCTION",
        help="logical id in template.yaml: SubmitFunction, PollFunction, ...",
    )
    invoke.add_argument(
        "--event",
        "-e",
        required=True,
        metavar="FILE",
        help="the event JSON file (- for stdin), e.g. events/submit.json",
    )
    options.add_endpoint_url(
        invoke,
        help=f"the `doctriage up` endpoint (default $AWS_ENDPOINT_URL, else "
        f"{options.UP_ENDPOINT_URL})",
    )
    invoke.add_argument("--region", default=options.UP_REGION, help=f"default {options.UP_REGION}")
    invoke.set_defaults(func=run)


def function_names() -> dict[str, str]:
    """Logical id (template.yaml) -> the local stack's function name, for every function."""
    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    return {logical_id: f"{PREFIX}-{logical_id}" for logical_id in functions}


def run(args: argparse.Namespace) -> int:
    """Run one function of a running `doctriage up` on an event; print its result JSON."""
    names = function_names()
    name = names.get(args.function) or (args.function if args.function in names.values() else None)
    if name is None:
        say(
            f"doctriage invoke: no function {args.function!r} in template.yaml; "
            f"one of {', '.join(sorted(names))}"
        )
        return 2
    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
        event = json.loads(text)
    except (OSError, ValueError) as exc:
        say(f"doctriage invoke: cannot read the event {args.event}: {exc}")
        return 2
    endpoint = options.up_endpoint(args.endpoint_url)
    try:
        response = _client(endpoint, args.region).invoke(
            FunctionName=name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
    except ClientError as exc:
        say(
            f"doctriage invoke: {endpoint} refused {name}: {exc} "
            "(is it a `doctriage up` of this project?)"
        )
        return 2
    except BotoCoreError as exc:
        say(
            f"doctriage invoke: no local stack at {endpoint} ({exc}); start one with "
            "`doctriage up` or pass --endpoint-url"
        )
        return 2
    payload = response["Payload"].read().decode()
    try:
        print(json.dumps(json.loads(payload)), flush=True)
    except ValueError:
        print(payload, flush=True)
    if response.get("FunctionError"):
        say(f"doctriage invoke: {args.function} raised an error (see its errorType above)")
        return 1
    return 0


def _client(endpoint: str, region: str) -> Any:
    # Never real AWS: an explicit endpoint and throwaway credentials, whatever the environment.
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106
        config=Config(connect_timeout=5, read_timeout=900, retries={"total_max_attempts": 1}),
    )
