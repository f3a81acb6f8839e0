"""Load: a burst of documents through the local stack against a rate-limited Datalab emulator.

    .venv/bin/python -m benchmarks.load_bench [--documents 500] [--rate-limit 400]
                                              [--max-concurrent 400] [--time-scale 1.0]

Every upload must end as a terminal record, with exactly one accepted Datalab submission per
document and none failed for being throttled. Prints the time taken and the Datalab calls made;
exits 1 when any of that does not hold.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from typing import Any

from doctriage_local.cli import SAMPLES
from doctriage_local.emulator import EmulatorConfig
from doctriage_local.stack import LocalStack, StackOptions


def run_load(
    documents: int = 500,
    *,
    rate_limit_per_minute: int | None = 400,
    max_concurrent: int | None = 400,
    time_scale: float = 1.0,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    samples = sorted(p for p in SAMPLES.glob("*/*.pdf"))
    emulator = EmulatorConfig(
        rate_limit_per_minute=rate_limit_per_minute, max_concurrent=max_concurrent
    )
    with LocalStack(StackOptions(time_scale=time_scale, emulator=emulator)) as stack:
        for schema in (SAMPLES / "schemas").glob("*.json"):
            stack.put_schema(schema.stem, schema)
        bodies = {p: p.read_bytes() for p in samples}
        started = time.monotonic()
        ids = []
        for n in range(documents):
            sample = samples[n % len(samples)]
            uploaded = stack.upload(
                bodies[sample], sample.parent.name, name=f"load-{n:05d}-{sample.name}"
            )
            ids.append(uploaded["document_id"])
        uploaded_in = time.monotonic() - started
        records = stack.wait_for_records(ids, timeout=timeout)
        elapsed = time.monotonic() - started
        stats = stack.emulator.stats
        invocations = dict(stack.invocations)
    accepted = collections.Counter(name for _, name in stats["submissions"])
    outcomes = collections.Counter(f"{r['status']}/{r['review_status']}" for r in records.values())
    failures = collections.Counter(
        f for r in records.values() if r["status"] == "failed" for f in r["flags"]
    )
    return {
        "documents": documents,
        "uploaded_in_seconds": round(uploaded_in, 1),
        "seconds": round(elapsed, 1),
        "terminal_records": len(records),
        "lost": documents - len(records),
        "outcomes": dict(outcomes),
        "failures": dict(failures),
        "datalab_submit_requests": stats["submit"],
        "datalab_submissions_accepted": sum(accepted.values()),
        "duplicate_submissions": sum(c - 1 for c in accepted.values() if c > 1),
        "datalab_poll_requests": stats["check"],
        "rate_limited_responses": stats["rate_limited"],
        "handler_invocations": invocations,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--rate-limit", type=int, default=400, help="requests per minute")
    parser.add_argument("--max-concurrent", type=int, default=400)
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    result = run_load(
        args.documents,
        rate_limit_per_minute=args.rate_limit,
        max_concurrent=args.max_concurrent,
        time_scale=args.time_scale,
    )
    width = max(len(k) for k in result)
    print(
        f"load: {args.documents} documents, Datalab limited to {args.rate_limit}/min and "
        f"{args.max_concurrent} concurrent, time x{1 / args.time_scale:g}"
    )
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")
    throttled = sum(v for k, v in result["failures"].items() if "rate_limited" in k)
    ok = result["lost"] == 0 and result["duplicate_submissions"] == 0 and throttled == 0
    print(
        "PASS" if ok else "FAIL",
        "(every document terminal, one submission each, none failed for throttling)",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
