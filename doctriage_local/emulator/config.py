"""Knobs of the Datalab emulator: timing, limits, and the faults it injects on demand.

Fault kinds:
  submit_429 / submit_500 / submit_529   submit answers that status (Retry-After if retry_after)
  submit_timeout                         submit holds the connection hang_seconds, then answers
                                         normally: the job exists even if the client gave up
  poll_429 / poll_500 / poll_529         a poll answers that status
  poll_timeout                           a poll holds the connection hang_seconds, then answers
  poll_drop                              a poll closes the socket without any answer
  auth                                   401 on submit or poll, as if the key were revoked
  failed                                 the job ends with status "failed"
  success_false                          status "complete" with success false and an error that
                                         is not the page-rate throttle (a real failure)
  page_rate_limit                        status "complete" with success false, "Page rate limit
                                         exceeded. Your team has N pages in flight..." whatever
                                         the pages in flight (max_pages_in_flight does it for real)
  never_scored                           complete, but the scores never arrive
  null_scores                            complete, and until the scores arrive every field has
                                         ``"<field>_score": {"score": null}`` and the body
                                         ``"extraction_score_average": null`` (placeholders)
  pending                                ``"status": "pending"`` (a status Datalab does not
                                         document) for ``pending_seconds``, then processing
  relative_check_url                     the submit answer's request_check_url is relative
                                         (``/api/v1/extract/<id>``)
  expire                                 404 as soon as the job is complete
  malformed                              extraction_schema_json is not valid JSON
  drop_row                               the last row of each table is left out, scores as high
                                         as ever (so only a minItems or x-checks sum catches it)
  webhook_lost                           the job's webhook is never sent (Datalab's may not come)
Request faults (submit_*, poll_*, auth) fire per matching request; job faults (the rest) are
fixed when a matching document is submitted (one rule per kind: a job can be pending *and* get
null placeholders).

Team limits, as Datalab's (datalab-api.md): ``rate_limit_per_minute`` answers 429 on submit and,
with ``limit_polls`` (the default: whether polls count is not documented, so assume the stricter),
on polls too; ``max_concurrent`` answers 429 on submit (with a ``Retry-After`` header only when
``retry_after`` is set: Datalab documents none); ``max_pages_in_flight`` (5,000 by
default, None: unlimited) is enforced during processing, not at submission: a job whose pages
would take the team's pages in flight (pages of jobs submitted and not yet complete) over the
limit is accepted, then ends ``complete`` with ``success: false`` and the page-rate error, after
``base_processing_seconds``; it holds no pages.
A job bigger than the whole limit is let through when nothing else is in flight (otherwise it
could never run; what Datalab does then is not documented).

``claimed_pages`` maps a filename substring to a page count the emulator pretends the document
has: processing time, ``page_count``, cost and pages in flight use it, while the values are still
read from the real pages (the extra pages are as good as blank). It lets a test submit
"2,000-page" documents without building them; nothing else changes.

Billing, as Datalab's: ``cost_breakdown.final_cost_cents`` is null on the poll that first
reports ``complete`` and filled in on every later fetch: ``ceil(pages * cents_per_page)``
(a throttled or unsuccessful job costs 0).

``nested_scores`` is the shape a table (an array of objects) is scored in; which one Datalab uses
is not documented (datalab-api.md), so the emulator sends each on demand:
  array     (default) ``line_items`` holds plain rows, ``line_items_score`` and
            ``line_items_citations`` (the header and row lines) sit beside it: the one shape
            Datalab documents (``<field>_score`` for each schema field)
  per_item  each cell carries its own keys inside its row: ``"amount": 500``,
            ``"amount_score": {...}``, ``"amount_citations": ["/page/0/Span/7"]``; the list has none
  mixed     both at once: the list's own keys beside the rows, and cell keys in every other row
            (the first, third, ...), so some cells are scored and the rest only vouched for
Cells cite the Span blocks (one per text segment of a line, inside its Line in the ``json`` tree)
they were read from, so a cell's citation resolves to its own box.

``seeded_errors`` (score -> error rate; empty, the default: none) makes the emulator's scores
relate to correctness as a real scorer's might: each found value is replaced, with the rate of
the score it reports, by a plausible wrong one, deterministically per (filename, field path), cells
of tables one by one (seeding.py says how). ``SEEDED_ERROR_RATES`` is the set `doctriage demo`
and `doctriage eval --seeded-errors` use; without it every value is read as printed, which the
tests that expect exact sample values rely on.
Webhooks, as Datalab's: a submit with ``webhook_url`` gets a POST there ``webhook_delay_seconds``
after processing completes, ``{"request_id", "request_check_url", "webhook_secret"}`` with
``webhook_secret`` (Datalab's account secret; "" sends no webhooks). A 5xx answer, a timeout
(``webhook_timeout_seconds``) or a refused connection is retried (``webhook_attempts`` in all,
1 s doubling between them); a 4xx is not. ``stats`` counts ``webhook_posts`` (attempts),
``webhooks_delivered`` (2xx), ``webhooks_refused`` (4xx) and ``webhooks_lost`` (given up, or
dropped by the ``webhook_lost`` fault).

``result_padding_bytes`` makes every ``json`` result at least about that much larger: the block
tree's ``metadata`` gets marker-style ``page_stats`` entries (block counts per page), as a long
document's would. It exercises the size limits a real result meets (Step Functions' 256 KB state,
Lambda payloads) without having to upload a thousand-page document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Faults answered on the HTTP request itself (fire on each matching request).
SUBMIT_FAULTS = frozenset({"submit_429", "submit_500", "submit_529", "submit_timeout"})
POLL_FAULTS = frozenset({"poll_429", "poll_500", "poll_529", "poll_timeout", "poll_drop"})
# Faults baked into the job when it is created (fire once per matching submission).
JOB_FAULTS = frozenset(
    {
        "failed",
        "success_false",
        "page_rate_limit",
        "never_scored",
        "null_scores",
        "pending",
        "relative_check_url",
        "expire",
        "malformed",
        "drop_row",
        "webhook_lost",
    }
)
FAULT_KINDS = SUBMIT_FAULTS | POLL_FAULTS | JOB_FAULTS | {"auth"}
NESTED_SCORES = ("array", "per_item", "mixed")
# score -> how often a value reported at that score is wrong (``seeded_errors``)
SEEDED_ERROR_RATES = {5: 0.01, 4: 0.05, 3: 0.2, 2: 0.4, 1: 0.6}


@dataclass
class EmulatorConfig:
    """All durations are real-world seconds; every one is multiplied by ``time_scale``."""

    api_key: str = "emulator-key"
    base_processing_seconds: float = 2.0
    processing_seconds_per_page: float = 1.0
    scoring_lag_seconds: float = 8.0
    result_ttl_seconds: float = 3600.0
    time_scale: float = 1.0
    rate_limit_per_minute: int | None = None
    max_concurrent: int | None = None
    check_host: str | None = None
    max_upload_bytes: int = 200 * 1024 * 1024
    result_padding_bytes: int = 0  # json output only; see the module docstring
    max_pages_in_flight: int | None = 5000  # Datalab's team limit; None: unlimited
    limit_polls: bool = True  # polls count against rate_limit_per_minute too
    # A limit's 429 names when to come back. Datalab documents no Retry-After, so by default the
    # emulator sends none and the client must back off on its own.
    retry_after: bool = False
    claimed_pages: dict[str, int] = field(default_factory=dict)  # filename part -> page count
    pending_seconds: float = 5.0  # how long the "pending" fault reports status "pending"
    # Datalab's published balanced-mode price, $6 per 1,000 pages; a request's charge is rounded
    # up to the cent, and (as Datalab's) is null on the poll that first reports complete.
    cents_per_page: float = 0.6
    nested_scores: str = "array"  # how tables are scored: one of NESTED_SCORES (module docstring)
    seeded_errors: dict[int, float] = field(default_factory=dict)  # score -> error rate; {}: off
    webhook_secret: str = "emulator-webhook-secret"  # noqa: S105 (the emulator's own; "": none)
    webhook_delay_seconds: float = 0.5  # after completion
    webhook_attempts: int = 5
    webhook_timeout_seconds: float = 30.0  # Datalab waits up to 30 s for the answer

    def __post_init__(self) -> None:
        if self.max_pages_in_flight is not None and self.max_pages_in_flight < 1:
            raise ValueError("max_pages_in_flight must be >= 1 or None")
        if any(pages < 1 for pages in self.claimed_pages.values()):
            raise ValueError("claimed_pages values must be >= 1")
        for score, rate in self.seeded_errors.items():
            if score not in range(1, 6) or not 0.0 <= rate <= 1.0:
                raise ValueError(f"seeded_errors maps scores 1-5 to rates 0-1, got {score}: {rate}")
        if self.nested_scores not in NESTED_SCORES:
            raise ValueError(
                f"unknown nested_scores {self.nested_scores!r}; known: {', '.join(NESTED_SCORES)}"
            )


@dataclass
class FaultRule:
    """Misbehave for documents whose filename contains ``match`` ("" matches every document).

    ``times`` is how often the rule fires per matching filename (None: always). ``retry_after``
    (seconds on the emulator's unscaled timeline) adds a ``Retry-After`` header to 429/500/529
    answers. ``hang_seconds`` (scaled) is how long ``submit_timeout`` and ``poll_timeout`` hold
    the connection.
    """

    match: str = ""
    kind: str = ""  # required; a default only so that FaultRule(kind=...) reads well
    times: int | None = None
    retry_after: float | None = None
    hang_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 or None")
