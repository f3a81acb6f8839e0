"""``doctriage up``: serve the local stack on 127.0.0.1 for the AWS CLI and SDKs until stopped."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
from typing import Any

from doctriage_local.cli import documents, options
from doctriage_local.cli.options import say
from doctriage_local.stack import LocalStack, StackOptions


def add_parser(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="serve the local stack for the AWS CLI and SDKs until Ctrl-C",
        description="Serve the local stack on 127.0.0.1 (moto's server mode, the real state "
        "machine, the handlers in this process, the Datalab emulator unless DATALAB_API_URL is "
        "set). Prints one JSON line on stdout when ready; logs go to stderr.",
    )
    options.add_port(up, "--port", default=options.UP_PORT, what="the AWS endpoint")
    options.add_port(
        up, "--datalab-port", default=options.UP_DATALAB_PORT, what="the Datalab emulator"
    )
    options.add_time_scale(up, default=1.0)
    options.add_parameter_overrides(up)
    options.add_log_level(up, help="the handlers' log level (JSON lines on stderr; default INFO)")
    up.add_argument(
        "--log-requests",
        action="store_true",
        help="also log every AWS API request the server answers",
    )
    up.set_defaults(func=run, starts_stack=True)


def run(args: argparse.Namespace) -> int:
    """Serve the local stack until SIGINT/SIGTERM; one JSON line on stdout once it is ready."""
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    stack_options = options.stack_options(args.time_scale, args.parameter_overrides)
    stack_options.update(
        server_port=args.port,
        emulator_port=args.datalab_port,
        log_level=args.log_level,
        region=options.UP_REGION,
    )
    stack = LocalStack(StackOptions(**stack_options))
    try:
        failed = _start(stack, args)
        if failed is not None:
            return failed
        documents.put_sample_schemas(stack)
        _announce(stack, args)
        while not stop.wait(0.2):
            pass
        say(f"doctriage up: stopping; {_in_flight(stack)}")
        return 0
    finally:
        # Handlers restored first: a second Ctrl-C or SIGTERM ends a stop that hangs.
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stack.stop()


def _in_flight(stack: LocalStack) -> str:
    """How many documents the stop ends unfinished (nothing outlives the stack)."""
    try:
        running = sum(1 for e in stack.executions() if e["status"] == "RUNNING")
    except Exception:  # the stop must not fail for the count's sake
        return "everything in the stack is gone with it"
    return f"{running} document(s) in flight end with it; nothing in the stack is kept"


def _start(stack: LocalStack, args: argparse.Namespace) -> int | None:
    """Start the stack; None when it runs, else the exit status (the reason said on stderr)."""
    try:
        stack.start()
    except RuntimeError as exc:
        say(f"doctriage up: {exc}")
        return 2
    except OSError as exc:  # e.g. the Datalab emulator's port is taken
        say(
            f"doctriage up: cannot start the local stack: {exc.strerror or exc} "
            f"(--port {args.port}, --datalab-port {args.datalab_port}; 0 picks a free one)"
        )
        return 2
    return None


def _announce(stack: LocalStack, args: argparse.Namespace) -> None:
    """The ready line on stdout (what scripts wait for), then how to use it on stderr."""
    info = stack.info()
    ready = {
        **info,
        "functions": {fn.logical_id: fn.name for fn in stack.functions.values()},
        "time_scale": args.time_scale,
        "pid": os.getpid(),
    }
    print(json.dumps(ready), flush=True)
    # awscli v1 ignores AWS_ENDPOINT_URL for SQS (it pins queue.amazonaws.com unless
    # --endpoint-url is given), so the hints pass --endpoint-url to every aws command.
    say(
        f"doctriage up: the local stack is serving on {info['endpoint_url']} "
        f"(Datalab API at {info['datalab_api_url']}, time x{1 / args.time_scale:g}); "
        "Ctrl-C to stop.\n"
        f"  export AWS_ENDPOINT_URL={info['endpoint_url']} AWS_DEFAULT_REGION={info['region']} "
        "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n"
        "  aws --endpoint-url $AWS_ENDPOINT_URL s3 cp FILE "
        f"'s3://{info['bucket']}/incoming/invoice/'\n"
        "  aws --endpoint-url $AWS_ENDPOINT_URL sqs get-queue-attributes "
        f"--queue-url {info['review_queue_url']} --attribute-names ApproximateNumberOfMessages\n"
        "  doctriage review          # the review page (receive-message burns receive counts)\n"
        "  doctriage review --peek   # what waits for review, receiving nothing\n"
        "  doctriage invoke EvaluateFunction --event events/evaluate-failure.json"
    )
