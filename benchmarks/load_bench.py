"""Load: a burst of documents of mixed sizes through the local stack at Datalab's team limits.

    .venv/bin/python -m benchmarks.load_bench [--documents 500] [--rate-limit 400]
                                              [--max-concurrent 400] [--pages-in-flight 5000]
                                              [--time-scale 1.0]

Handlers run concurrently, as Lambda runs them (submit up to its MaximumConcurrency), and the
emulator enforces requests per minute, concurrent requests and pages in flight. Every upload
must end as a terminal record, none failed for being throttled, and no document submitted more
often than its record says (page-rate resubmits are counted there, anything beyond is a
duplicate). Prints documents per minute against the ceiling the request limit allows (limit ÷
Datalab requests per document, and the pages-in-flight limit ÷ the page-seconds a document
holds, whichever is lower) and the 429s seen; exits 1 when a guarantee does not hold.
"""

from __future__ import annotations

import argparse
import collections
import posixpath
import sys
import time
from typing import Any

import pypdfium2 as pdfium

from doctriage_local.emulator import EmulatorConfig
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions

# Pages the emulator pretends a document has (by a part of its file name), for a mix of sizes
# without thousand-page PDFs: 60 % are the samples as they are (1-2 pages), then 20, 100, 500.
SIZE_MIX = [None, None, None, 20, None, 100, None, None, 20, 500, None, None, 20, None, 20,
            100, None, None, 20, None]  # fmt: skip


def _name(n: int, sample: str, pages: int | None) -> str:
    return f"load-{n:05d}-{f'p{pages}-' if pages else ''}{sample}"


def run_load(
    documents: int = 500,
    *,
    rate_limit_per_minute: int | None = 400,
    max_concurrent: int | None = 400,
    max_pages_in_flight: int | None = 5000,
    mixed_sizes: bool = True,
    seconds_per_page: float = 0.25,
    time_scale: float = 1.0,
    timeout: float = 3600.0,
    request_budget: int | None = None,
) -> dict[str, Any]:
    """``request_budget``: the stack's DatalabRequestsPerMinute (None: the template's default,
    0: no shared budget)."""
    samples = sorted(p for p in SAMPLES.glob("*/*.pdf"))
    sizes = SIZE_MIX if mixed_sizes else [None]
    emulator = EmulatorConfig(
        rate_limit_per_minute=rate_limit_per_minute,
        max_concurrent=max_concurrent,
        max_pages_in_flight=max_pages_in_flight,
        claimed_pages={f"-p{pages}-": pages for pages in set(sizes) if pages},
        # A 500-page job then takes about 2 min: pages in flight, not the clock, bound the run.
        processing_seconds_per_page=seconds_per_page,
    )
    pages = {p: len(pdfium.PdfDocument(p)) for p in samples}
    page_seconds = 0.0  # pages in flight x seconds, summed over the documents' jobs
    for n in range(documents):
        claimed = sizes[n % len(sizes)] or pages[samples[n % len(samples)]]
        page_seconds += claimed * (emulator.base_processing_seconds + claimed * seconds_per_page)
    parameters = {} if request_budget is None else {"DatalabRequestsPerMinute": str(request_budget)}
    options = StackOptions(time_scale=time_scale, emulator=emulator, parameters=parameters)
    with LocalStack(options) as stack:
        for schema in (SAMPLES / "schemas").glob("*.json"):
            stack.put_schema(schema.stem, schema)
        bodies = {p: p.read_bytes() for p in samples}
        started = time.monotonic()
        ids = []
        for n in range(documents):
            sample = samples[n % len(samples)]
            name = _name(n, sample.name, sizes[n % len(sizes)])
            ids.append(stack.upload(bodies[sample], sample.parent.name, name=name)["document_id"])
        uploaded_in = time.monotonic() - started
        records = stack.wait_for_records(ids, timeout=timeout)
        elapsed = time.monotonic() - started
        stats = stack.emulator.stats
        invocations = dict(stack.invocations)
    accepted = collections.Counter(name for _, name in stats["submissions"])
    recorded = {
        posixpath.basename(r["source"]["key"]): (r.get("datalab") or {}).get("submissions") or 0
        for r in records.values()
    }
    outcomes = collections.Counter(f"{r['status']}/{r['review_status']}" for r in records.values())
    failures = collections.Counter(
        f for r in records.values() if r["status"] == "failed" for f in r["flags"]
    )
    requests = stats["submit"] + stats["check"]
    admitted = requests - stats["rate_limited"]
    per_document = admitted / documents
    minutes = elapsed / time_scale / 60  # on the pipeline's own timeline
    throughput = documents / minutes
    # Two ceilings: the request limit over the requests a document needs, and the pages-in-flight
    # limit over the page-seconds a document holds. The lower one binds.
    ceilings = []
    if rate_limit_per_minute:
        ceilings.append(rate_limit_per_minute / per_document)
    if max_pages_in_flight:
        ceilings.append(max_pages_in_flight * 60 / (page_seconds / documents))
    ceiling = min(ceilings) if ceilings else None
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
        "page_rate_resubmits": sum(max(0, n - 1) for n in recorded.values()),
        "duplicate_submissions": sum(
            max(0, count - recorded.get(name, 0)) for name, count in accepted.items()
        ),
        "datalab_poll_requests": stats["check"],
        "rate_limited_responses_429": stats["rate_limited"],
        "page_rate_limited_jobs": stats.get("page_rate_limited", 0),
        "most_pages_in_flight": stats.get("max_pages_in_flight_seen"),
        "datalab_requests_per_document": round(per_document, 2),
        "documents_per_minute": round(throughput, 1),
        "ceiling_by_requests_per_minute": round(ceilings[0], 1) if rate_limit_per_minute else None,
        "ceiling_by_pages_in_flight": round(ceilings[-1], 1) if max_pages_in_flight else None,
        "ceiling_documents_per_minute": round(ceiling, 1) if ceiling else None,
        "throughput_to_ceiling": round(throughput / ceiling, 2) if ceiling else None,
        "handler_invocations": invocations,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--rate-limit", type=int, default=400, help="requests per minute")
    parser.add_argument("--max-concurrent", type=int, default=400)
    parser.add_argument("--pages-in-flight", type=int, default=5000)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument(
        "--request-budget",
        type=int,
        default=None,
        help="DatalabRequestsPerMinute for the stack (default the template's; 0: no budget)",
    )
    args = parser.parse_args(argv)
    result = run_load(
        args.documents,
        rate_limit_per_minute=args.rate_limit,
        max_concurrent=args.max_concurrent,
        max_pages_in_flight=args.pages_in_flight,
        time_scale=args.time_scale,
        request_budget=args.request_budget,
    )
    width = max(len(k) for k in result)
    print(
        f"load: {args.documents} documents of mixed sizes, Datalab limited to "
        f"{args.rate_limit}/min, {args.max_concurrent} concurrent and {args.pages_in_flight} "
        f"pages in flight, time x{1 / args.time_scale:g}"
    )
    for key, value in result.items():
        print(f"  {key:<{width}}  {value}")
    # Throttling that outlasted a deadline ends as timeout: that is a failure for throttling too.
    throttled = sum(
        v for k, v in result["failures"].items() if "rate_limit" in k or k.endswith(":timeout")
    )
    ok = result["lost"] == 0 and result["duplicate_submissions"] == 0 and throttled == 0
    print(
        "PASS" if ok else "FAIL",
        "(every document terminal, none submitted more than its record says, none failed for "
        "throttling)",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
