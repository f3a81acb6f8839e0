"""``doctriage demo``: the bundled samples end to end through a local stack, then a summary."""

from __future__ import annotations

import argparse
import json
from typing import Any

from doctriage_local import trust
from doctriage_local.cli import documents, eval_truth, options
from doctriage_local.cli import trust as trust_cli
from doctriage_local.cli.options import say
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions


def add_parser(sub: Any) -> None:
    demo = sub.add_parser("demo", help="process the bundled samples end to end")
    options.add_time_scale(
        demo,
        default=options.DEMO_TIME_SCALE,
        help=f"compress waits and deadlines (default {options.DEMO_TIME_SCALE})",
    )
    options.add_timeout(demo, default=300.0, help="seconds to wait for records")
    options.add_parameter_overrides(demo)
    options.add_quiet(demo)
    demo.set_defaults(func=run, starts_stack=True)


def run(args: argparse.Namespace) -> int:
    samples = documents.sample_documents()
    if not samples:
        say(f"no samples under {SAMPLES}; run scripts/make_samples.py")
        return 2
    say(
        f"doctriage demo: {len(samples)} sample documents through the local stack "
        f"(moto + Datalab emulator, time x{1 / args.time_scale:g})"
    )
    # Seeded errors (the emulator's only: a real Datalab makes its own) give the trust line meaning.
    stack_options = options.stack_options(args.time_scale, args.parameter_overrides)
    with LocalStack(StackOptions(**stack_options, emulator=documents.seeded_emulator())) as stack:
        say(f"  Datalab API at {stack.datalab_api_url}")
        documents.put_sample_schemas(stack, progress=not args.quiet)
        results = documents.process(
            stack, samples, metadata={}, timeout=args.timeout, quiet=args.quiet
        )
        review = stack.review_messages()
        executions = stack.executions()

    say("")
    _print_records(results)
    finished = sum(1 for e in executions if e["status"] in ("SUCCEEDED", "FAILED"))
    print(f"\nstate machine executions finished: {finished}/{len(executions)}")
    print(f"review queue: {len(review)} message(s)")
    recorded = [record for _, _, record in results if record is not None]
    if recorded:
        print(documents.cost_summary(recorded))
    for message in review:
        _print_review_message(message)
    if review:
        print("\nReview the flagged documents in your browser: .venv/bin/doctriage review --demo")
    print(f"\ntrust, against the samples' true values: {_trust_line(results)}")
    missing = [p.name for p, _, r in results if r is None]
    return 1 if missing else 0


def _trust_line(results: list[documents.Result]) -> str:
    expected = {
        path: eval_truth.load_expected(documents.truth_of(path))
        for path, _, _ in results
        if documents.truth_of(path).is_file()
    }
    return trust_cli.summary(trust.summarize(eval_truth.observed(results, expected)))


def _print_records(results: list[documents.Result]) -> None:
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


def _print_review_message(message: dict[str, Any]) -> None:
    audit = ", audit sample: every field to decide" if message.get("audit") else ""
    print(
        f"\n  {message['source']['key']}  ({message['status']}, {message['review_status']}{audit})"
    )
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
    for check in message.get("checks") or ():
        if check["passed"] is False:
            print(
                f"    check  {check['name']}: computed {check['computed']:g}, "
                f"expected {check['expected']:g} (tolerance {check['tolerance']:g})"
            )
    if message.get("error"):
        print(f"    error  {message['error']['type']}: {message['error']['message']}")


def _flagged_fields(record: dict[str, Any]) -> list[str]:
    names = []
    for flag in record.get("flags", []):
        _, _, name = flag.partition(":")
        if name and name in record.get("fields", {}):
            names.append(name)
    return sorted(set(names))
