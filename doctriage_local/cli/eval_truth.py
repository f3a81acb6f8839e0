"""``doctriage eval --truth DIR``: calibration from a labelled set instead of reviewers' decisions.

Every ``name.expected.json`` under DIR (the true values by schema field) names the document
``name.<ext>`` beside it; its folder's name is its document type (as under samples/). The
documents go through a local stack (the emulator, or Datalab when DATALAB_API_URL is set), each
labelled field of each record becomes an observation (doctriage_local/truth.py says how it is
compared) and the report is ``doctriage trust``'s, table or ``--json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from doctriage_local import trust, trust_report, truth
from doctriage_local.cli import documents, options
from doctriage_local.cli.options import ConfigurationError, say
from doctriage_local.cli.trust import add_report_options, table
from doctriage_local.paths import SAMPLE_SCHEMAS
from doctriage_local.stack import LocalStack, StackOptions


def add_parser(sub: Any) -> None:
    eval_ = sub.add_parser(
        "eval",
        help="calibrate the scores against a labelled set of documents",
        description="Runs every document that has a <name>.expected.json beside it under --truth "
        "through a local stack, compares each labelled field (and table cell: rows matched by "
        "best assignment, omitted rows wrong) with its true value, and prints the report of "
        "`doctriage trust` over those observations.",
    )
    eval_.add_argument(
        "--truth",
        required=True,
        metavar="DIR",
        help="documents in <doc_type>/ folders, each with <name>.expected.json beside it",
    )
    eval_.add_argument(
        "--schemas",
        metavar="DIR",
        default=str(SAMPLE_SCHEMAS),
        help="where <doc_type>.json schemas are (default samples/schemas)",
    )
    eval_.add_argument(
        "--seeded-errors",
        action="store_true",
        help="the emulator makes values wrong at a rate set by their score "
        "(EmulatorConfig.seeded_errors), as a real scorer's errors might be",
    )
    add_report_options(eval_)
    options.add_time_scale(eval_, default=1.0)
    options.add_parameter_overrides(eval_)
    options.add_timeout(
        eval_, default=3600.0, help="seconds to wait for every record (default 3600)"
    )
    options.add_quiet(eval_)
    eval_.set_defaults(func=run, starts_stack=True)


def run(args: argparse.Namespace) -> int:
    root = Path(args.truth)
    if not root.is_dir():
        raise ConfigurationError(f"--truth {root}: no such directory")
    labelled = documents.labelled_documents(root)
    if not labelled:
        raise ConfigurationError(f"--truth {root}: no <name>{truth.TRUTH_SUFFIX} under it")
    expected = {document: load_expected(path) for document, _, path in labelled}
    schemas = _schemas(Path(args.schemas), {doc_type for _, doc_type, _ in labelled})
    stack_options = options.stack_options(args.time_scale, args.parameter_overrides)
    if args.seeded_errors:
        if stack_options.get("datalab_api_url"):
            raise ConfigurationError("--seeded-errors is the emulator's: unset DATALAB_API_URL")
        stack_options["emulator"] = documents.seeded_emulator()
    with LocalStack(StackOptions(**stack_options)) as stack:
        for doc_type, schema in schemas.items():
            stack.put_schema(doc_type, schema)
        results = documents.process(
            stack,
            [(document, doc_type) for document, doc_type, _ in labelled],
            metadata={},
            timeout=args.timeout,
            quiet=args.quiet,
        )
    missing = [path for path, _, record in results if record is None]
    for path in missing:
        say(f"doctriage eval: {path}: no record within {args.timeout:g} s (not counted)")
    report = trust.summarize(observed(results, expected), target_error=args.target_error)
    if args.html:
        Path(args.html).write_text(trust_report.html(report), encoding="utf-8")
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 1 if missing else 0


def load_expected(path: Path) -> dict[str, Any]:
    try:
        expected = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path}: cannot read it as JSON ({exc})") from None
    if not isinstance(expected, dict):
        raise ConfigurationError(f"{path}: not a JSON object of field -> true value")
    return expected


def observed(
    results: list[documents.Result], expected: dict[Path, dict[str, Any]]
) -> list[trust.Observation]:
    """The observations of every record whose document has expected values."""
    found = []
    for path, _, record in results:
        if record is None or path not in expected:
            continue
        try:
            found += truth.observations(record, expected[path])
        except truth.TruthError as exc:
            raise ConfigurationError(f"{documents.truth_of(path)}: {exc}") from None
    return found


def _schemas(folder: Path, doc_types: set[str]) -> dict[str, Path]:
    schemas = {t: folder / f"{t}.json" for t in sorted(doc_types)}
    for doc_type, schema in schemas.items():
        if not schema.is_file():
            raise ConfigurationError(
                f"no schema for document type {doc_type!r} (looked for {schema}; --schemas DIR)"
            )
    return schemas
