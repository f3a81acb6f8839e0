"""The ``doctriage`` command: run the pipeline on this machine (moto + the Datalab emulator).

``doctriage demo`` processes the bundled samples; ``doctriage run FILE...`` processes yours.
Progress goes to stderr; ``--json`` records go to stdout, one per line, in input order.
``doctriage up`` serves the local stack on 127.0.0.1 for the AWS CLI and SDKs until stopped;
``doctriage invoke FUNCTION --event FILE`` runs one handler on it (``sam local invoke`` without
Docker).
``doctriage review`` serves a page on 127.0.0.1 to clear the review queue (doctriage_local/review/).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from doctriage_local.paths import SAMPLES

DEMO_TIME_SCALE = 0.05
UP_PORT = 4566  # where `doctriage up` serves the AWS APIs (events/env.json names it)
UP_DATALAB_PORT = 4567  # where `doctriage up` serves the Datalab emulator (events/env.json too)
UP_REGION = "us-east-1"


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _time_scale(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError("--time-scale must be in (0, 1]")
    return value


def _stack_options(time_scale: float) -> dict[str, Any]:
    """Point at DATALAB_API_URL/DATALAB_API_KEY when set, else the built-in emulator."""
    url = os.environ.get("DATALAB_API_URL")
    options: dict[str, Any] = {"time_scale": time_scale}
    if url:
        options["datalab_api_url"] = url
        options["datalab_api_key"] = os.environ.get("DATALAB_API_KEY", "")
    return options


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _flagged_fields(record: dict[str, Any]) -> list[str]:
    names = []
    for flag in record.get("flags", []):
        _, _, name = flag.partition(":")
        if name and name in record.get("fields", {}):
            names.append(name)
    return sorted(set(names))


def _describe(record: dict[str, Any]) -> str:
    average = record.get("extraction_score_average")
    return (
        f"{record['status']:<8} {record['review_status']:<12} "
        f"avg={'-' if average is None else f'{average:.2f}'}  "
        f"flags={', '.join(record['flags']) or '-'}"
    )


def _process(
    stack: Any,
    files: list[tuple[Path, str]],
    *,
    metadata: dict[str, str],
    timeout: float,
    progress: bool,
) -> list[tuple[Path, dict[str, Any], dict[str, Any] | None]]:
    uploads = []
    for path, doc_type in files:
        uploaded = stack.upload(path, doc_type, metadata=metadata)
        uploads.append((path, uploaded))
        if progress:
            _say(f"  uploaded  s3://{stack.bucket}/{uploaded['key']}")
    names = {u["document_id"]: p.name for p, u in uploads}

    def on_record(record: dict[str, Any]) -> None:
        if progress:
            _say(f"  recorded  {names[record['document_id']]:<32} {_describe(record)}")

    records = stack.wait_for_records(list(names), timeout=timeout, on_record=on_record)
    return [(p, u, records.get(u["document_id"])) for p, u in uploads]


def cmd_demo(args: argparse.Namespace) -> int:
    from doctriage_local.stack import LocalStack, StackOptions

    samples = sorted(
        (path, path.parent.name)
        for path in SAMPLES.glob("*/*")
        if path.parent.name != "schemas" and path.is_file()
    )
    if not samples:
        _say(f"no samples under {SAMPLES}; run scripts/make_samples.py")
        return 2
    _say(
        f"doctriage demo: {len(samples)} sample documents through the local stack "
        f"(moto + Datalab emulator, time x{1 / args.time_scale:g})"
    )
    with LocalStack(StackOptions(**_stack_options(args.time_scale))) as stack:
        _say(f"  Datalab API at {stack.datalab_api_url}")
        for schema in sorted((SAMPLES / "schemas").glob("*.json")):
            stack.put_schema(schema.stem, schema)
            _say(f"  schema    s3://{stack.bucket}/schemas/{schema.name}")
        results = _process(stack, samples, metadata={}, timeout=args.timeout, progress=True)
        review = stack.review_messages()
        executions = stack.executions()

    _say("")
    print(f"{'document':<34} {'type':<9} {'review_status':<13} {'avg':>4}  flags")
    for path, _, record in results:
        if record is None:
            print(f"{path.name:<34} {'?':<9} {'(no record: timed out)':<13}")
            continue
        average = record.get("extraction_score_average")
        print(
            f"{path.name:<34} {record.get('document_type') or '-':<9} "
            f"{record['review_status']:<13} {'-' if average is None else f'{average:.2f}':>4}  "
            f"{', '.join(record['flags']) or '-'}"
        )
    succeeded = sum(1 for e in executions if e["status"] in ("SUCCEEDED", "FAILED"))
    print(f"\nstate machine executions finished: {succeeded}/{len(executions)}")
    print(f"review queue: {len(review)} message(s)")
    for message in review:
        print(f"\n  {message['source']['key']}  ({message['status']}, {message['review_status']})")
        for flag in message["flags"]:
            print(f"    flag   {flag}")
        for name in _flagged_fields(message):
            field = message["fields"][name]
            box = field.get("bbox")
            where = (
                f"page {field['page'] + 1} at x={box['x']:.2f} y={box['y']:.2f} "
                f"w={box['width']:.2f} h={box['height']:.2f}"
                if box and field.get("page") is not None
                else "no box"
            )
            confidence = field.get("confidence")
            print(
                f"    field  {name} = {json.dumps(field.get('value'))}  "
                f"confidence={'-' if confidence is None else f'{confidence:.2f}'}  {where}"
            )
            if field.get("reasoning"):
                print(f"           {field['reasoning']}")
        if message.get("error"):
            print(f"    error  {message['error']['type']}: {message['error']['message']}")
    if review:
        print("\nReview the flagged documents in your browser: .venv/bin/doctriage review --demo")
    missing = [p.name for p, _, r in results if r is None]
    return 1 if missing else 0


def cmd_run(args: argparse.Namespace) -> int:
    from doctriage_local.stack import LocalStack, StackOptions

    files = [Path(f) for f in args.files]
    for path in files:
        if not path.is_file():
            _say(f"doctriage run: {path}: no such file")
            return 2
    schema = Path(args.schema) if args.schema else SAMPLES / "schemas" / f"{args.doc_type}.json"
    if not schema.is_file():
        _say(
            f"doctriage run: no schema for {args.doc_type!r}: pass --schema FILE "
            f"(looked for {schema})"
        )
        return 2
    metadata = {}
    if args.threshold is not None:
        metadata["human-review-threshold"] = repr(args.threshold)
    progress = not args.json
    with LocalStack(StackOptions(**_stack_options(args.time_scale))) as stack:
        stack.put_schema(args.doc_type, schema)
        results = _process(
            stack,
            [(f, args.doc_type) for f in files],
            metadata=metadata,
            timeout=args.timeout,
            progress=progress,
        )
    missing = 0
    for path, uploaded, record in results:
        if record is None:
            missing += 1
            _say(
                f"doctriage run: {path}: no record within {args.timeout:g} s "
                f"(document_id {uploaded['document_id']})"
            )
        elif args.json:
            print(json.dumps(record, separators=(",", ":")), flush=True)
    return 1 if missing else 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 picks a free one)")
    return value


def cmd_up(args: argparse.Namespace) -> int:
    """Serve the local stack until SIGINT/SIGTERM; one JSON line on stdout once it is ready."""
    import logging
    import signal
    import threading

    from doctriage_local.stack import LocalStack, StackOptions

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
    options = _stack_options(args.time_scale)
    options.update(
        server_port=args.port,
        emulator_port=args.datalab_port,
        log_level=args.log_level,
        region=UP_REGION,
    )
    stack = LocalStack(StackOptions(**options))
    try:
        try:
            stack.start()
        except RuntimeError as exc:
            _say(f"doctriage up: {exc}")
            return 2
        except OSError as exc:  # e.g. the Datalab emulator's port is taken
            _say(
                f"doctriage up: cannot start the local stack: {exc.strerror or exc} "
                f"(--port {args.port}, --datalab-port {args.datalab_port}; 0 picks a free one)"
            )
            return 2
        for schema in sorted((SAMPLES / "schemas").glob("*.json")):
            stack.put_schema(schema.stem, schema)
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
        _say(
            f"doctriage up: the local stack is serving on {info['endpoint_url']} "
            f"(Datalab API at {info['datalab_api_url']}, time x{1 / args.time_scale:g}); "
            "Ctrl-C to stop.\n"
            f"  export AWS_ENDPOINT_URL={info['endpoint_url']} AWS_DEFAULT_REGION={info['region']} "
            "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local\n"
            "  aws --endpoint-url $AWS_ENDPOINT_URL s3 cp FILE "
            f"'s3://{info['bucket']}/incoming/invoice/'\n"
            "  aws --endpoint-url $AWS_ENDPOINT_URL sqs receive-message "
            f"--queue-url {info['review_queue_url']} --wait-time-seconds 20\n"
            "  doctriage invoke EvaluateFunction --event events/evaluate-failure.json"
        )
        while not stop.wait(0.2):
            pass
        _say("doctriage up: stopping")
        return 0
    finally:
        # Handlers restored first: a second Ctrl-C or SIGTERM ends a stop that hangs.
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        stack.stop()


def _function_names() -> dict[str, str]:
    """Logical id (template.yaml) -> the local stack's function name, for every function."""
    from doctriage_local.stack import PREFIX
    from doctriage_local.template import load_template, resources_of_type

    functions = resources_of_type(load_template(), "AWS::Serverless::Function")
    return {logical_id: f"{PREFIX}-{logical_id}" for logical_id in functions}


def cmd_invoke(args: argparse.Namespace) -> int:
    """Run one function of a running `doctriage up` on an event; print its result JSON."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    names = _function_names()
    name = names.get(args.function) or (args.function if args.function in names.values() else None)
    if name is None:
        _say(
            f"doctriage invoke: no function {args.function!r} in template.yaml; "
            f"one of {', '.join(sorted(names))}"
        )
        return 2
    try:
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
        event = json.loads(text)
    except (OSError, ValueError) as exc:
        _say(f"doctriage invoke: cannot read the event {args.event}: {exc}")
        return 2
    endpoint = (
        args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{UP_PORT}"
    )
    # Never real AWS: an explicit endpoint and throwaway credentials, whatever the environment.
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=args.region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106
        config=Config(connect_timeout=5, read_timeout=900, retries={"total_max_attempts": 1}),
    )
    try:
        response = client.invoke(
            FunctionName=name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
    except ClientError as exc:
        _say(
            f"doctriage invoke: {endpoint} refused {name}: {exc} "
            "(is it a `doctriage up` of this project?)"
        )
        return 2
    except BotoCoreError as exc:
        _say(
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
        _say(f"doctriage invoke: {args.function} raised an error (see its errorType above)")
        return 1
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    import boto3

    from doctriage_local.reprocess import failed_records, reprocess

    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    count = 0
    for record in failed_records(dynamodb, args.table, reason=args.reason):
        outcome = reprocess(
            record, s3=s3, dynamodb=dynamodb, table=args.table, dry_run=args.dry_run
        )
        count += 1
        target = outcome.new_document_id or f"skipped ({outcome.note})"
        print(f"{outcome.document_id}  {outcome.reason:<24} {outcome.key}  ->  {target}")
    _say(
        f"doctriage reprocess: {count} failed document(s)"
        + (" (dry run: nothing changed)" if args.dry_run else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="doctriage", description="doctriage on this machine: moto + the Datalab emulator."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="process the bundled samples end to end")
    demo.add_argument(
        "--time-scale",
        type=_time_scale,
        default=DEMO_TIME_SCALE,
        help=f"compress waits and deadlines (default {DEMO_TIME_SCALE})",
    )
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for records")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="process your files and wait for their records")
    run.add_argument("files", nargs="+", metavar="FILE")
    run.add_argument("--doc-type", required=True, help="the incoming/<doc_type>/ prefix")
    run.add_argument("--schema", help="JSON Schema file (default samples/schemas/<doc-type>.json)")
    run.add_argument(
        "--threshold", type=_threshold, help="human review threshold for these uploads (0-1)"
    )
    run.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        help="compress waits, retries and deadlines (0.01 = 100x faster)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds to wait for every record (default 3600)",
    )
    run.add_argument("--json", action="store_true", help="print one record per line on stdout")
    run.set_defaults(func=cmd_run)

    up = sub.add_parser(
        "up",
        help="serve the local stack for the AWS CLI and SDKs until Ctrl-C",
        description="Serve the local stack on 127.0.0.1 (moto's server mode, the real state "
        "machine, the handlers in this process, the Datalab emulator unless DATALAB_API_URL is "
        "set). Prints one JSON line on stdout when ready; logs go to stderr.",
    )
    up.add_argument(
        "--port",
        type=_port,
        default=UP_PORT,
        help=f"port of the AWS endpoint (default {UP_PORT}; 0 picks a free one)",
    )
    up.add_argument(
        "--datalab-port",
        type=_port,
        default=UP_DATALAB_PORT,
        help=f"port of the Datalab emulator (default {UP_DATALAB_PORT}; 0 picks a free one)",
    )
    up.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        help="compress waits, retries and deadlines (0.01 = 100x faster)",
    )
    up.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the handlers' log level (JSON lines on stderr; default INFO)",
    )
    up.add_argument(
        "--log-requests",
        action="store_true",
        help="also log every AWS API request the server answers",
    )
    up.set_defaults(func=cmd_up)

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
    invoke.add_argument(
        "--endpoint-url",
        help=f"the `doctriage up` endpoint (default $AWS_ENDPOINT_URL, else "
        f"http://127.0.0.1:{UP_PORT})",
    )
    invoke.add_argument("--region", default=UP_REGION, help=f"default {UP_REGION}")
    invoke.set_defaults(func=cmd_invoke)

    reprocess = sub.add_parser(
        "reprocess",
        help="send failed documents through the pipeline again",
        description="Copies each failed document's upload onto itself: S3 makes a new version, "
        "which is a new document with its own record. Each failed record is reprocessed once "
        "(it gets reprocessed_as). Scans the results table; for a deployed stack pass --table "
        "and the usual AWS settings.",
    )
    reprocess.add_argument(
        "--table",
        required=True,
        help="the results table (stack output "
        "ResultsTableName; local: doctriage-local-ResultsTable)",
    )
    reprocess.add_argument(
        "--reason",
        help="only documents failed for this reason, e.g. "
        "rate_limited (the part after extraction_failed:)",
    )
    reprocess.add_argument("--endpoint-url", help="e.g. a running `doctriage up`")
    reprocess.add_argument("--dry-run", action="store_true", help="list, change nothing")
    reprocess.set_defaults(func=cmd_reprocess)

    from doctriage_local.review.command import add_parser as add_review_parser

    add_review_parser(sub)  # doctriage review: the review page (doctriage_local/review/)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
