"""``doctriage run FILE...``: your files through a local stack; ``--json`` prints their records."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from doctriage_local.cli import documents, options
from doctriage_local.cli.options import say
from doctriage_local.paths import SAMPLE_SCHEMAS
from doctriage_local.stack import LocalStack, StackOptions


def add_parser(sub: Any) -> None:
    run_ = sub.add_parser("run", help="process your files and wait for their records")
    run_.add_argument("files", nargs="+", metavar="FILE")
    run_.add_argument("--doc-type", required=True, help="the incoming/<doc_type>/ prefix")
    run_.add_argument("--schema", help="JSON Schema file (default samples/schemas/<doc-type>.json)")
    run_.add_argument(
        "--threshold",
        type=options.threshold,
        help="human review threshold for these uploads (0-1)",
    )
    options.add_time_scale(run_, default=1.0)
    options.add_parameter_overrides(run_)
    options.add_timeout(
        run_, default=3600.0, help="seconds to wait for every record (default 3600)"
    )
    run_.add_argument("--json", action="store_true", help="print one record per line on stdout")
    options.add_quiet(run_)
    run_.set_defaults(func=run, starts_stack=True)


def run(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files]
    for path in files:
        if not path.is_file():
            say(f"doctriage run: {path}: no such file")
            return 2
    schema = Path(args.schema) if args.schema else SAMPLE_SCHEMAS / f"{args.doc_type}.json"
    if not schema.is_file():
        say(
            f"doctriage run: no schema for {args.doc_type!r}: pass --schema FILE "
            f"(looked for {schema})"
        )
        return 2
    metadata = {}
    if args.threshold is not None:
        metadata["human-review-threshold"] = repr(args.threshold)
    with LocalStack(
        StackOptions(**options.stack_options(args.time_scale, args.parameter_overrides))
    ) as stack:
        stack.put_schema(args.doc_type, schema)
        results = documents.process(
            stack,
            [(f, args.doc_type) for f in files],
            metadata=metadata,
            timeout=args.timeout,
            quiet=args.quiet,
        )
    missing = 0
    for path, uploaded, record in results:
        if record is None:
            missing += 1
            say(
                f"doctriage run: {path}: no record within {args.timeout:g} s "
                f"(document_id {uploaded['document_id']})"
            )
        elif args.json:
            print(json.dumps(record, separators=(",", ":")), flush=True)
    recorded = [record for _, _, record in results if record is not None]
    if recorded and not args.quiet:
        say(f"  {documents.cost_summary(recorded)}")
    return 1 if missing else 0
