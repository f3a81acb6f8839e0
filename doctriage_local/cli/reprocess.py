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
    options.add_endpoint_url(reprocess, help="e.g. a running `doctriage up`")
    reprocess.add_argument("--dry-run", action="store_true", help="list, change nothing")
    reprocess.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    s3 = boto3.client("s3", endpoint_url=args.endpoint_url)
    count = 0
    for record in reprocessing.failed_records(dynamodb, args.table, reason=args.reason):
        outcome = reprocessing.reprocess(
            record, s3=s3, dynamodb=dynamodb, table=args.table, dry_run=args.dry_run
        )
        count += 1
        target = outcome.new_document_id or f"skipped ({outcome.note})"
        print(f"{outcome.document_id}  {outcome.reason:<24} {outcome.key}  ->  {target}")
    say(
        f"doctriage reprocess: {count} failed document(s)"
        + (" (dry run: nothing changed)" if args.dry_run else "")
    )
    return 0
