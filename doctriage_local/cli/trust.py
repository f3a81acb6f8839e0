"""``doctriage trust``: how far Datalab's scores can be trusted, measured on reviewers' decisions.

Reads records (``--records FILE`` of JSON lines as ``doctriage run --json`` prints them, or
``--table NAME`` of a stack) and prints, with ``--json``, one object::

    {"observations": 412, "target_error": 0.01, "ece": 0.031,
     "by_score": {"5": {"n", "correct", "accuracy", "ci95": [low, high]}, ...},
     "fields": {"invoice/total_amount": {"n", "by_score", "auroc", "can_rank",
                "recommended_min_score", "recommended_threshold", "review_load"}, ...},
     "audit": {"n", "errors", "rate", "ci95"}}

The statistics and the rule are in doctriage_local/trust.py. ``--apply --schema FILE`` writes
the recommended per-field ``x-review-threshold`` values into a copy of the schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from doctriage_local import trust, trust_report
from doctriage_local.cli import options
from doctriage_local.cli.options import ConfigurationError, say


def add_parser(sub: Any) -> None:
    trust_ = sub.add_parser(
        "trust",
        help="calibrate the scores against reviewers' decisions; recommend thresholds",
        description="Each reviewer's decision on a field is an observation (accepted: correct; "
        "corrected: wrong unless to the extracted value). Prints accuracy per score level with "
        "95%% Wilson intervals, ECE, per field AUROC and the lowest score that keeps the error "
        "rate's upper bound under --target-error, and the audit sample's error rate.",
    )
    source = trust_.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--records",
        metavar="FILE",
        help="JSON lines of records, as `doctriage run --json` prints them (- for stdin)",
    )
    source.add_argument(
        "--table",
        help="a results table (stack output ResultsTableName; local: doctriage-local-ResultsTable)",
    )
    options.add_endpoint_url(trust_, help="with --table: e.g. a running `doctriage up`")
    add_report_options(trust_)
    trust_.add_argument(
        "--apply",
        action="store_true",
        help="write the recommended x-review-threshold values into a copy of --schema",
    )
    trust_.add_argument("--schema", metavar="FILE", help="with --apply: the schema to start from")
    trust_.add_argument(
        "--doc-type", help="with --apply: the document type of --schema (default its file name)"
    )
    trust_.add_argument(
        "--output",
        metavar="FILE",
        help="with --apply: where the new schema goes (default stdout; never --schema itself)",
    )
    trust_.set_defaults(func=run)


def add_report_options(parser: Any) -> None:
    """--target-error, --json and --html: how a trust report is asked for (trust and eval)."""
    parser.add_argument(
        "--target-error",
        type=options.error_rate,
        default=trust.DEFAULT_TARGET_ERROR,
        help=f"the error rate to stay under (default {trust.DEFAULT_TARGET_ERROR:g})",
    )
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")


def run(args: argparse.Namespace) -> int:
    schema_path = _checked_options(args)
    records = _from_file(Path(args.records)) if args.records else _from_table(args)
    report = trust.report(records, target_error=args.target_error)
    if args.html:
        Path(args.html).write_text(trust_report.html(report), encoding="utf-8")
    if args.apply:
        assert schema_path is not None
        return _apply(args, schema_path, report)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(table(report))
    return 0


def _checked_options(args: argparse.Namespace) -> Path | None:
    if args.endpoint_url and not args.table:
        raise ConfigurationError("--endpoint-url goes with --table")
    if not args.apply:
        for name in ("schema", "output", "doc_type"):
            if getattr(args, name):
                raise ConfigurationError(f"--{name.replace('_', '-')} goes with --apply")
        return None
    if not args.schema:
        raise ConfigurationError("--apply needs --schema FILE (the schema to start from)")
    schema = Path(args.schema)
    if not schema.is_file():
        raise ConfigurationError(f"--schema {schema}: no such file")
    if args.output and Path(args.output).resolve() == schema.resolve():
        raise ConfigurationError(
            "--output is --schema itself: write a copy, check it, then move it into place"
        )
    return schema


def _from_file(path: Path) -> Iterator[dict[str, Any]]:
    try:
        lines = (sys.stdin.read() if str(path) == "-" else path.read_text("utf-8")).splitlines()
    except OSError as exc:
        raise ConfigurationError(f"--records {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ConfigurationError(f"--records {path} line {number}: not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise ConfigurationError(f"--records {path} line {number}: not a record (an object)")
        yield record


def _from_table(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from doctriage_local.reprocess import plain_record

    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    kwargs: dict[str, Any] = {
        "TableName": args.table,
        "FilterExpression": "attribute_exists(review)",
    }
    while True:
        try:
            page = dynamodb.scan(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise ConfigurationError(f"--table {args.table}: cannot read it: {exc}") from None
        for item in page.get("Items", []):
            yield plain_record(item)
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _apply(args: argparse.Namespace, schema_path: Path, report: dict[str, Any]) -> int:
    from doctriage_core.domain.schemas import load_schema
    from doctriage_core.errors import SchemaInvalid

    text = schema_path.read_text(encoding="utf-8")
    try:
        load_schema(text)
    except SchemaInvalid as exc:
        raise ConfigurationError(f"--schema {schema_path}: {exc}") from None
    doc_type = args.doc_type or schema_path.stem
    updated, changes = trust.apply_thresholds(json.loads(text), doc_type, report)
    new_text = json.dumps(updated, indent=2, ensure_ascii=False) + "\n"
    load_schema(new_text)  # what the pipeline will read must still load
    for change in changes:
        if change.new is None:
            say(f"{change.field}: {change.why}")
        else:
            was = "inherited" if change.old is None else f"{change.old:g}"
            say(f"{change.field}: x-review-threshold {was} -> {change.new:g} ({change.why})")
    if not any(c.field.startswith(f"{doc_type}/") for c in changes):
        say(f"doctriage trust: no decided field of document type {doc_type!r}: nothing to apply")
    if args.output:
        Path(args.output).write_text(new_text, encoding="utf-8")
        say(f"doctriage trust: wrote {args.output}")
    else:
        sys.stdout.write(new_text)
    return 0


def table(report: dict[str, Any]) -> str:
    """The report as a reader sees it without --json."""
    audit = report["audit"]
    ece = "n/a" if report["ece"] is None else f"{report['ece']:.3f}"
    lines = [
        f"{report['observations']} decided fields; ECE {ece}; target error "
        f"{report['target_error']:g}",
        "",
        f"{'score':>5}  {'n':>6}  {'correct':>7}  {'accuracy':>8}  95% interval",
    ]
    for score, level in report["by_score"].items():
        low, high = level["ci95"]
        lines.append(
            f"{score:>5}  {level['n']:>6}  {level['correct']:>7}  {level['accuracy']:>8.1%}  "
            f"[{low:.1%}, {high:.1%}]"
        )
    lines += ["", f"{'field':<36} {'n':>5}  {'AUROC':>5}  {'rank':>4}  {'min':>3}  threshold  load"]
    for key, stats in report["fields"].items():
        area = "-" if stats["auroc"] is None else f"{stats['auroc']:.3f}"
        min_score = stats["recommended_min_score"]
        threshold = stats["recommended_threshold"]
        load = stats["review_load"]
        lines.append(
            f"{key:<36} {stats['n']:>5}  {area:>5}  {'yes' if stats['can_rank'] else 'no':>4}  "
            f"{'-' if min_score is None else min_score:>3}  "
            f"{'review all' if threshold is None else f'{threshold:g}':>9}  "
            f"{'-' if load is None else f'{load:.0%}'}"
        )
    if audit["n"]:
        low, high = audit["ci95"]
        lines += [
            "",
            f"audit: {audit['errors']} wrong of {audit['n']} audited fields "
            f"({audit['rate']:.1%}, 95% interval [{low:.1%}, {high:.1%}])",
        ]
    else:
        lines += ["", "audit: no decided field of an audit-sampled document yet"]
    return "\n".join(lines)


def summary(report: dict[str, Any]) -> str:
    """The report in one line: how often each score level was right, ECE, the audit."""
    levels = report["by_score"]
    right = ", ".join(
        f"{s} {levels[s]['correct']}/{levels[s]['n']}" for s in sorted(levels, reverse=True)
    )
    ece = "n/a" if report["ece"] is None else f"{report['ece']:.3f}"
    audit = report["audit"]
    audited = f"; {audit['errors']} wrong of {audit['n']} audited" if audit["n"] else ""
    return (
        f"{report['observations']} fields checked; right by score {right or '-'}; "
        f"ECE {ece}{audited}"
    )
