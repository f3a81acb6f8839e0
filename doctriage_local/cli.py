"""The ``doctriage`` command: run the pipeline on this machine (moto + the Datalab emulator).

``doctriage demo`` processes the bundled samples; ``doctriage run FILE...`` processes yours.
Progress goes to stderr; ``--json`` records go to stdout, one per line, in input order.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

from doctriage_local.template import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "samples"
DEMO_TIME_SCALE = 0.05


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
    stack: Any, files: list[tuple[Path, str]], *, metadata: dict[str, str], timeout: float,
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
    _say(f"doctriage demo: {len(samples)} sample documents through the local stack "
         f"(moto + Datalab emulator, time x{1 / args.time_scale:g})")
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
                if box and field.get("page") is not None else "no box"
            )
            confidence = field.get("confidence")
            print(f"    field  {name} = {json.dumps(field.get('value'))}  "
                  f"confidence={'-' if confidence is None else f'{confidence:.2f}'}  {where}")
            if field.get("reasoning"):
                print(f"           {field['reasoning']}")
        if message.get("error"):
            print(f"    error  {message['error']['type']}: {message['error']['message']}")
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
        _say(f"doctriage run: no schema for {args.doc_type!r}: pass --schema FILE "
             f"(looked for {schema})")
        return 2
    metadata = {}
    if args.threshold is not None:
        metadata["human-review-threshold"] = repr(args.threshold)
    progress = not args.json
    with LocalStack(StackOptions(**_stack_options(args.time_scale))) as stack:
        stack.put_schema(args.doc_type, schema)
        results = _process(
            stack, [(f, args.doc_type) for f in files], metadata=metadata,
            timeout=args.timeout, progress=progress,
        )
    missing = 0
    for path, uploaded, record in results:
        if record is None:
            missing += 1
            _say(f"doctriage run: {path}: no record within {args.timeout:g} s "
                 f"(document_id {uploaded['document_id']})")
        elif args.json:
            print(json.dumps(record, separators=(",", ":")), flush=True)
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="doctriage", description="doctriage on this machine: moto + the Datalab emulator."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="process the bundled samples end to end")
    demo.add_argument("--time-scale", type=_time_scale, default=DEMO_TIME_SCALE,
                      help=f"compress waits and deadlines (default {DEMO_TIME_SCALE})")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for records")
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="process your files and wait for their records")
    run.add_argument("files", nargs="+", metavar="FILE")
    run.add_argument("--doc-type", required=True, help="the incoming/<doc_type>/ prefix")
    run.add_argument("--schema", help="JSON Schema file (default samples/schemas/<doc-type>.json)")
    run.add_argument("--threshold", type=_threshold,
                     help="human review threshold for these uploads (0-1)")
    run.add_argument("--time-scale", type=_time_scale, default=1.0,
                     help="compress waits, retries and deadlines (0.01 = 100x faster)")
    run.add_argument("--timeout", type=float, default=3600.0,
                     help="seconds to wait for every record (default 3600)")
    run.add_argument("--json", action="store_true", help="print one record per line on stdout")
    run.set_defaults(func=cmd_run)

    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
