"""``doctriage review``: the review page for a local stack, a deployed stack, or a demo.

doctriage review --demo                     own local stack + the bundled samples
doctriage review                            the stack `doctriage up` serves (127.0.0.1:4566)
doctriage review --stack-name doctriage     a deployed stack, found by its outputs
doctriage review --queue-url URL --table NAME [--bucket NAME] [--region R] [--profile P]
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
import webbrowser
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from doctriage_local.review.consumer import MAX_WAIT_SECONDS, ReviewConsumer
from doctriage_local.review.server import ReviewServer

DEFAULT_PORT = 8765


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def add_parser(sub: Any) -> None:
    review = sub.add_parser(
        "review",
        help="review flagged documents in your browser (consumes the review queue)",
        description="Serve a review page on 127.0.0.1: one document from the review queue at a "
        "time, its pages with the flagged fields' boxes, accept or correct each flagged value. "
        "The decision is stored on the record (under `review`) before the message is deleted.",
    )
    where = review.add_argument_group(
        "which stack (default: the local stack `doctriage up` serves)"
    )
    where.add_argument(
        "--demo",
        action="store_true",
        help="start a local stack here, process the bundled samples, review them",
    )
    where.add_argument(
        "--stack-name",
        help="a deployed stack: read the queue and table from its "
        "outputs (ReviewQueueUrl, ResultsTableName)",
    )
    where.add_argument("--queue-url", help="the review queue's URL")
    where.add_argument("--table", help="the results table's name")
    where.add_argument(
        "--bucket",
        help="read documents from this bucket instead of the one in each record's source",
    )
    where.add_argument(
        "--endpoint-url",
        help="AWS endpoint (default for the local stack: http://127.0.0.1:4566; none for AWS)",
    )
    where.add_argument("--region", help="AWS region (default: your AWS configuration)")
    where.add_argument("--profile", help="AWS profile")
    page = review.add_argument_group("the review page")
    page.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    page.add_argument(
        "--reviewer",
        default=_default_reviewer(),
        help="your name on the decisions (default: your login)",
    )
    page.add_argument("--open", action="store_true", help="open the page in your web browser")
    page.add_argument(
        "--wait-seconds",
        type=float,
        default=MAX_WAIT_SECONDS,
        help="long-poll the queue for up to this long per request (default 20)",
    )
    page.add_argument(
        "--visibility-timeout",
        type=int,
        default=300,
        help="seconds an open document stays hidden from other reviewers between "
        "heartbeats (extended every third of it; default 300)",
    )
    demo = review.add_argument_group("--demo")
    demo.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="compress the pipeline's waits (default: doctriage demo's)",
    )
    demo.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the samples' records"
    )
    review.set_defaults(func=cmd_review)


def cmd_review(args: argparse.Namespace) -> int:
    if args.demo:
        return _demo(args)
    try:
        consumer = _connect(args)
    except _Unreachable as exc:
        _say(f"doctriage review: {exc}")
        return 2
    return serve(consumer, args)


# ---------------------------------------------------------------------- serving


def serve(consumer: ReviewConsumer, args: argparse.Namespace) -> int:
    try:
        server = _server(consumer, args)
    except OSError as exc:
        _say(f"doctriage review: cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}")
        return 2
    _say(f"doctriage review: open {server.url} (reviewer {args.reviewer or '?'}; Ctrl-C to stop)")
    print(server.url, flush=True)
    if args.open:
        webbrowser.open(server.url)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` too puts the open doc back
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()
        stats = consumer.stats
        _say(
            f"doctriage review: {stats.decided} decision(s) stored, "
            f"{stats.duplicates_acknowledged} duplicate message(s) acknowledged"
        )
    return 0


def _server(consumer: ReviewConsumer, args: argparse.Namespace) -> ReviewServer:
    options = {"reviewer": args.reviewer, "wait_seconds": args.wait_seconds}
    try:
        return ReviewServer(consumer, port=args.port, **options)
    except OSError:
        if args.port != DEFAULT_PORT:
            raise
        return ReviewServer(consumer, port=0, **options)  # the default port is taken: any port


def _results_table(name: str, resource: Any) -> Any:
    """doctriage_core's ResultsTable (the layer's package, installed from shared/ with this one)."""
    from doctriage_core.adapters.aws import ResultsTable

    return ResultsTable(name, resource)


def consumer_for_stack(stack: Any, **options: Any) -> ReviewConsumer:
    """A consumer of a LocalStack running in this process (or served by it)."""
    region, endpoint = stack.options.region, stack.endpoint_url
    table = _results_table(
        stack.physical["ResultsTable"],
        boto3.resource("dynamodb", region_name=region, endpoint_url=endpoint),
    )
    return ReviewConsumer(
        sqs=stack.client("sqs"),
        queue_url=stack.physical["ReviewQueue"],
        table=table,
        s3=stack.client("s3"),
        **options,
    )


def _demo(args: argparse.Namespace) -> int:
    from doctriage_local import cli
    from doctriage_local.stack import LocalStack, StackOptions

    time_scale = args.time_scale or cli.DEMO_TIME_SCALE
    samples = sorted(
        (path, path.parent.name)
        for path in cli.SAMPLES.glob("*/*")
        if path.parent.name != "schemas" and path.is_file()
    )
    _say(
        f"doctriage review --demo: {len(samples)} sample documents through a local stack "
        f"(moto + Datalab emulator, time x{1 / time_scale:g})"
    )
    with LocalStack(StackOptions(**cli._stack_options(time_scale))) as stack:
        for schema in sorted((cli.SAMPLES / "schemas").glob("*.json")):
            stack.put_schema(schema.stem, schema)
        results = cli._process(stack, samples, metadata={}, timeout=args.timeout, progress=True)
        waiting = sum(1 for _, _, r in results if r and r["review_status"] == "needs_review")
        _say(f"  {waiting} document(s) on the review queue")
        consumer = consumer_for_stack(stack, visibility_timeout=args.visibility_timeout)
        return serve(consumer, args)


# ---------------------------------------------------------------------- connecting


class _Unreachable(Exception):
    pass


def _connect(args: argparse.Namespace) -> ReviewConsumer:
    from doctriage_local import cli
    from doctriage_local.stack import PREFIX

    local = not (args.stack_name or args.queue_url or args.table)
    endpoint = args.endpoint_url
    credentials: dict[str, Any] = {}
    if local:
        endpoint = (
            endpoint or os.environ.get("AWS_ENDPOINT_URL") or (f"http://127.0.0.1:{cli.UP_PORT}")
        )
        if not (args.profile or os.environ.get("AWS_ACCESS_KEY_ID")):
            credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    session: Any = boto3.Session(  # Any: clients by name, which the stubs' overloads refuse
        profile_name=args.profile,
        region_name=args.region or (cli.UP_REGION if local else None),
        **credentials,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint)

    sqs = client("sqs")
    queue_url, table_name = args.queue_url, args.table
    try:
        if args.stack_name:
            outputs = _stack_outputs(client("cloudformation"), args.stack_name)
            queue_url = queue_url or outputs.get("ReviewQueueUrl")
            table_name = table_name or outputs.get("ResultsTableName")
        if local:
            queue_url = sqs.get_queue_url(QueueName=f"{PREFIX}-ReviewQueue")["QueueUrl"]
            table_name = f"{PREFIX}-ResultsTable"
        if not queue_url or not table_name:
            raise _Unreachable("pass both --queue-url and --table (or --stack-name)")
        waiting = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
    except EndpointConnectionError as exc:
        if local:
            raise _Unreachable(
                f"no local stack at {endpoint}. Start one in another terminal with "
                "`doctriage up` (then process documents), or run `doctriage review --demo` for "
                "a stack of its own with the samples processed; for a deployed stack pass "
                "--stack-name or --queue-url and --table."
            ) from exc
        raise _Unreachable(str(exc)) from exc
    except (ClientError, BotoCoreError) as exc:
        raise _Unreachable(f"cannot read the review queue: {exc}") from exc
    _say(f"doctriage review: {queue_url}: about {waiting} message(s) waiting; table {table_name}")
    table = _results_table(table_name, session.resource("dynamodb", endpoint_url=endpoint))
    return ReviewConsumer(
        sqs=sqs,
        queue_url=queue_url,
        table=table,
        s3=client("s3"),
        bucket=args.bucket,
        visibility_timeout=args.visibility_timeout,
    )


def _stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
