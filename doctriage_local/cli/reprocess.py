"""``doctriage reprocess``: send failed documents through the pipeline again.

The command around doctriage_local.reprocess, which does the work (and says why it is safe to
run twice).
"""

from __future__ import annotations

import argparse
from typing import Any

import boto3

from doctriage_local import reprocess as reprocessing
from doctriage_local.cli import options
from doctriage_local.cli.options import say


def add_parser(sub: Any) -> None:
    reprocess = sub.add_parser(
        "reprocess",
        help="send failed documents that can succeed through the pipeline again",
        description="Copies each failed document's upload onto itself: S3 makes a new version, "
        "which is a new document with its own record. Each failed record is reprocessed once "
        "(it gets reprocessed_as). Failures of the upload itself (empty, unsupported type, bad "
        "key, invalid threshold, schema missing or broken...) are skipped: a copy fails the "
        "same way. Scans the results table; for a deployed stack pass --table and the usual AWS "
        "settings.",
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
    options.add_endpoint_url(reprocess, help="e.g. a running `doctriage up`")
    reprocess.add_argument(
        "--include-permanent",
        action="store_true",
        help="also send failures of the upload itself (e.g. once its schema is fixed)",
    )
    reprocess.add_argument(
        "--dry-run",
        action="store_true",
        help="list each failed document with what would be done and why; change nothing",
    )
    reprocess.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    count = sent = 0
    for record in reprocessing.failed_records(dynamodb, args.table, reason=args.reason):
        count += 1
        decision = reprocessing.decide(record, include_permanent=args.include_permanent)
        line = f"{record['document_id']}  {reprocessing.failure_reason(record):<24} "
        line += f"{record['source']['key']}  ->  "
        if not decision.reprocess:
            print(f"{line}{'would skip' if args.dry_run else 'skipped'} ({decision.why})")
        elif args.dry_run:
            sent += 1
            print(f"{line}would reprocess ({decision.why})")
        else:
            outcome = reprocessing.reprocess(record, s3=s3, dynamodb=dynamodb, table=args.table)
            sent += outcome.new_document_id is not None
            print(line + (outcome.new_document_id or f"skipped ({outcome.note})"))
    verb = "would be reprocessed" if args.dry_run else "reprocessed"
    say(
        f"doctriage reprocess: {count} failed document(s), {sent} {verb}, "
        f"{count - sent} skipped" + (" (dry run: nothing changed)" if args.dry_run else "")
    )
    return 0
