"""``doctriage review``: the review page for a local stack, a deployed stack, or a demo.

doctriage review --demo                     own local stack + the bundled samples
doctriage review                            the stack `doctriage up` serves (127.0.0.1:4566)
doctriage review --stack-name doctriage     a deployed stack, found by its outputs
doctriage review --queue-url URL --table NAME [--bucket NAME] [--region R] [--profile P]
doctriage review --peek [which stack]       what waits, without receiving a message

The page, its server and the queue consumer are doctriage_local.review; this is the command.
"""

from __future__ import annotations

import argparse
import getpass
import signal
import webbrowser
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from doctriage_core.domain.records import goes_to_review
from doctriage_local.cli import documents, options
from doctriage_local.cli.options import say
from doctriage_local.review.connect import (
    Connection,
    Unreachable,
    Where,
    connect,
    consumer_for_stack,
)
from doctriage_local.review.consumer import MAX_WAIT_SECONDS, ReviewConsumer
from doctriage_local.review.peek import peek, render
from doctriage_local.review.server import ReviewServer
from doctriage_local.stack import LocalStack, StackOptions

DEFAULT_PORT = 8765


def add_parser(sub: Any) -> None:
    review = sub.add_parser(
        "review",
        help="review flagged documents in your browser (consumes the review queue)",
        description="Serve a review page on 127.0.0.1: one document from the review queue at a "
        "time, its pages with the flagged fields' boxes, accept or correct each flagged value. "
        "The decision is stored on the record (under `review`) before the message is deleted.",
    )
    _add_where(
        review.add_argument_group("which stack (default: the local stack `doctriage up` serves)")
    )
    review.add_argument(
        "--peek",
        action="store_true",
        help="list what waits for review and the queue's counts, receiving no message "
        "(receive-message would count towards the DLQ); no page is served",
    )
    page = review.add_argument_group("the review page")
    options.add_port(page, "--port", default=DEFAULT_PORT, what="the review page")
    page.add_argument(
        "--reviewer",
        default=_default_reviewer(),
        help="your name on every decision this page stores, shown on the page "
        "(default: your login)",
    )
    page.add_argument("--open", action="store_true", help="open the page in your web browser")
    page.add_argument(
        "--wait-seconds",
        type=options.seconds,
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
    options.add_time_scale(
        demo, default=None, help="compress the pipeline's waits (default: doctriage demo's)"
    )
    options.add_timeout(demo, default=300.0, help="seconds to wait for the samples' records")
    options.add_parameter_overrides(demo)
    review.set_defaults(func=run)


def _add_where(where: Any) -> None:
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
    options.add_endpoint_url(
        where,
        help=f"AWS endpoint (default for the local stack: {options.UP_ENDPOINT_URL}; none for AWS)",
    )
    where.add_argument("--region", help="AWS region (default: your AWS configuration)")
    where.add_argument("--profile", help="AWS profile")


def _default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


def run(args: argparse.Namespace) -> int:
    if args.demo and args.peek:
        say("doctriage review: --peek reads a running stack; --demo would start one of its own")
        return 2
    if not args.peek and not args.reviewer.strip():
        say("doctriage review: no login name to sign the decisions with: pass --reviewer NAME")
        return 2
    if args.demo:
        return _demo(args)
    where = Where(
        stack_name=args.stack_name,
        queue_url=args.queue_url,
        table=args.table,
        bucket=args.bucket,
        endpoint_url=args.endpoint_url,
        region=args.region,
        profile=args.profile,
    )
    try:
        connection = connect(
            where,
            local_endpoint=options.up_endpoint(None),
            local_region=options.UP_REGION,
            visibility_timeout=args.visibility_timeout,
        )
    except Unreachable as exc:
        say(f"doctriage review: {exc}")
        return 2
    if args.peek:
        return _peek(connection)
    say(
        f"doctriage review: {connection.queue_url}: about {connection.waiting} message(s) "
        f"waiting; table {connection.table_name}"
    )
    return serve(connection.consumer, args)


def _peek(connection: Connection) -> int:
    try:
        result = peek(connection.consumer.sqs, connection.queue_url, connection.results)
    except (ClientError, BotoCoreError) as exc:
        say(f"doctriage review --peek: cannot read the queue's counts or the table: {exc}")
        return 2
    print(render(result, connection.queue_url), flush=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    time_scale = args.time_scale or options.DEMO_TIME_SCALE
    samples = documents.sample_documents()
    say(
        f"doctriage review --demo: {len(samples)} sample documents through a local stack "
        f"(moto + Datalab emulator, time x{1 / time_scale:g})"
    )
    stack_options = options.stack_options(time_scale, args.parameter_overrides)
    # the demo's seeded errors (documents.seeded_emulator): what `doctriage demo` showed
    with LocalStack(StackOptions(**stack_options, emulator=documents.seeded_emulator())) as stack:
        documents.put_sample_schemas(stack)
        results = documents.process(stack, samples, metadata={}, timeout=args.timeout)
        waiting = sum(1 for _, _, r in results if r and goes_to_review(r))
        say(f"  {waiting} document(s) on the review queue")
        consumer = consumer_for_stack(stack, visibility_timeout=args.visibility_timeout)
        return serve(consumer, args)


def serve(consumer: ReviewConsumer, args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C or SIGTERM; an open document goes back to the queue."""
    try:
        server = _server(consumer, args)
    except OSError as exc:
        say(f"doctriage review: cannot serve on 127.0.0.1:{args.port}: {exc.strerror or exc}")
        return 2
    say(f"doctriage review: open {server.url} (reviewer {server.reviewer}; Ctrl-C to stop)")
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
        say(
            f"doctriage review: {stats.decided} decision(s) stored, "
            f"{stats.duplicates_acknowledged} duplicate message(s) acknowledged"
        )
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _server(consumer: ReviewConsumer, args: argparse.Namespace) -> ReviewServer:
    server_options = {"reviewer": args.reviewer, "wait_seconds": args.wait_seconds}
    try:
        return ReviewServer(consumer, port=args.port, **server_options)
    except OSError:
        if args.port != DEFAULT_PORT:
            raise
        return ReviewServer(consumer, port=0, **server_options)  # the default port is taken
