"""How long the workflow waits before its next Datalab poll (the Wait state's SecondsPath).

Pure: an observation of where a document stands goes in, whole seconds come out.

Why not Datalab's fixed 2 s loop: a Standard workflow pays for every state transition (a poll is
three: Poll task, Choice, Wait) and Datalab rate-limits requests per key. So:

* before the first poll, wait about as long as Datalab plausibly needs (a couple of seconds plus
  about a second per page; the page count is guessed from the size when unknown);
* while ``processing``, poll at times that grow geometrically (each wait a fraction of the time
  already spent), capped. Overshooting completion costs little: scores arrive some seconds to a
  minute after ``complete``, so a late ``complete`` is mostly hidden behind that lag;
* once ``complete`` but unscored, poll on a shorter flat cadence, slower for long documents
  (whoever waited minutes for 300 pages does not need the scores to the second);
* throttled (Datalab ended the job with its page-rate limit: too many of the team's pages in
  flight), wait before resubmitting: exponential in the number of submissions so far, with
  full jitter on the upper half, so a throttled burst comes back spread out rather than all at
  once into the same limit;
* scored on the very poll that first said ``complete``, which carries no cost yet (Datalab
  fills ``cost_breakdown`` in on a later fetch), wait a moment for one more fetch of the bill;
* with a webhook (Datalab POSTs when processing completes), no poll before it: the workflow waits
  on the webhook up to ``webhook_timeout_seconds`` (a generous multiple of the expected time, so
  a lost webhook costs latency, never a document, and a slow document is not polled early), then
  falls back to the loop above; after the webhook, the first score poll comes
  ``scores_first_wait_seconds`` later (scores follow ``complete`` by seconds to a minute), then
  the unscored cadence;
* jitter spreads polls of documents uploaded together; ``Retry-After`` is a floor; the deadline
  is a ceiling (deadline + 1 s, so the poll after the wait sees it passed).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

Phase = Literal["submitted", "processing", "unscored", "throttled", "billing"]
PHASES: tuple[Phase, ...] = ("submitted", "processing", "unscored", "throttled", "billing")


@dataclass(frozen=True)
class PollPolicy:
    # Datalab's processing time: about base + per page.
    base_seconds: float = 2.0
    seconds_per_page: float = 1.0
    # Page guess from the size when the count is unknown. Scans run to hundreds of KB a page,
    # text PDFs to tens: a large figure guesses few pages, so the first poll errs early.
    bytes_per_page: int = 200_000
    # First poll at this fraction of the expected time (most documents are not done earlier),
    # capped: a size-based guess can be far off.
    first_wait_fraction: float = 0.8
    first_wait_cap: float = 60.0
    # Processing: the next poll at ``growth`` times the time since submit, the wait between
    # ``processing_min`` and ``processing_cap``. The floor is high because ``complete`` alone is
    # not actionable: scores follow seconds to a minute later, which hides a late ``complete``.
    growth: float = 1.5
    processing_min: float = 15.0
    processing_cap: float = 30.0
    # Complete but unscored: a flat cadence, a fraction of the expected processing time for long
    # documents (the delay target is 10 % of it, this leaves room for the estimate's error).
    scoring_wait: float = 5.0
    scoring_fraction: float = 0.06
    scoring_cap: float = 15.0
    # Throttled by the page-rate limit: before the n-th resubmit wait between half and all of
    # ``throttle_base * 2 ** (n - 1)``, at most ``throttle_cap``. The base is about how long a
    # few hundred pages of other documents take to leave the team's pages in flight.
    throttle_base: float = 20.0
    throttle_cap: float = 300.0
    # Full jitter on the upper part: the wait is drawn from [1 - throttle_jitter, 1] of that.
    throttle_jitter: float = 0.5
    # Scored, but the cost not filled in yet: the wait before the one fetch more for the bill.
    billing_wait: float = 1.0
    # Webhook-assisted waiting: wait for the webhook up to ``webhook_timeout_factor`` times the
    # expected processing time, between the floor and the cap; then poll as without a webhook.
    webhook_timeout_factor: float = 4.0
    webhook_timeout_min: float = 120.0
    webhook_timeout_cap: float = 1800.0
    # After the webhook: the first score poll this long after it (scores are never there at
    # once: Datalab scores after ``complete``), then the unscored cadence.
    scores_first_wait: float = 10.0
    # +- this fraction of every wait, so documents submitted together do not poll together.
    jitter: float = 0.1
    min_wait: int = 1

    def __post_init__(self) -> None:
        if self.growth <= 1:
            raise ValueError("growth must be above 1")
        if not 0 <= self.jitter < 1 or not 0 <= self.throttle_jitter < 1:
            raise ValueError("jitter and throttle_jitter must be in [0, 1)")
        if self.min_wait < 1:
            raise ValueError("min_wait must be at least 1 s")
        if not self.min_wait <= self.processing_min <= self.processing_cap:
            raise ValueError("need min_wait <= processing_min <= processing_cap")
        if not self.min_wait <= self.scoring_wait <= self.scoring_cap:
            raise ValueError("need min_wait <= scoring_wait <= scoring_cap")
        if not self.min_wait <= self.throttle_base <= self.throttle_cap:
            raise ValueError("need min_wait <= throttle_base <= throttle_cap")
        if self.bytes_per_page <= 0 or self.first_wait_fraction <= 0 or self.first_wait_cap < 1:
            raise ValueError("bytes_per_page, first_wait_fraction, first_wait_cap must be positive")


DEFAULT_POLICY = PollPolicy()


def scores_polled_every(seconds: float, policy: PollPolicy = DEFAULT_POLICY) -> PollPolicy:
    """``policy`` with score polls ``seconds`` apart (ScoresPollSeconds): fewer Datalab requests a
    document, scores found up to that much later. Long documents still stretch it, up to twice."""
    if seconds == policy.scoring_wait:
        return policy
    return replace(policy, scoring_wait=seconds, scoring_cap=max(policy.scoring_cap, 2 * seconds))


@dataclass(frozen=True)
class PollObservation:
    """Where a document stands when the next wait is chosen.

    ``polls_in_phase`` counts the polls already made whose answer put the document in this phase
    (0 for ``submitted``; for ``throttled``, the submissions Datalab throttled so far, >= 1).
    ``seconds_in_phase`` runs from submit for ``submitted``, ``processing`` and ``throttled``,
    from the first poll that saw ``complete`` for ``unscored``.
    """

    phase: Phase
    polls_in_phase: int
    seconds_in_phase: float
    size_bytes: int | None = None
    page_count: int | None = None
    retry_after: float | None = None
    seconds_to_deadline: float | None = None

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"unknown phase {self.phase!r}")
        if self.polls_in_phase < 0:
            raise ValueError("polls_in_phase must be >= 0")
        for name in ("seconds_in_phase", "retry_after", "seconds_to_deadline"):
            value = getattr(self, name)
            if value is not None and math.isnan(value):
                raise ValueError(f"{name} is NaN")


def expected_processing_seconds(
    page_count: int | None, size_bytes: int | None, policy: PollPolicy = DEFAULT_POLICY
) -> float:
    """Datalab's likely processing time from the page count, else guessed from the size."""
    if page_count is not None and page_count > 0:
        pages = float(page_count)
    elif size_bytes is not None and size_bytes > 0:
        pages = max(1.0, size_bytes / policy.bytes_per_page)
    else:
        pages = 1.0
    return policy.base_seconds + policy.seconds_per_page * pages


def next_wait_seconds(
    obs: PollObservation, policy: PollPolicy = DEFAULT_POLICY, rng: random.Random | None = None
) -> int:
    """Whole seconds (>= 1) to wait before the next poll (or, throttled, the resubmit)."""
    wait = _model_wait(obs, policy)
    draw = rng.random() if rng is not None else random.random()
    if obs.phase == "throttled":
        wait *= 1 - policy.throttle_jitter * draw  # a throttled burst comes back spread out
    else:
        wait *= 1 + policy.jitter * (2 * draw - 1)
    seconds = max(policy.min_wait, math.floor(wait + 0.5))
    if obs.retry_after is not None:
        seconds = max(seconds, math.ceil(max(0.0, min(obs.retry_after, 1e9))))
    if obs.seconds_to_deadline is not None:
        # floor + 1 is strictly past the deadline, so the check after the wait fires.
        seconds = min(seconds, math.floor(max(0.0, min(obs.seconds_to_deadline, 1e9))) + 1)
    return max(1, seconds)


def _model_wait(obs: PollObservation, policy: PollPolicy) -> float:
    expected = expected_processing_seconds(obs.page_count, obs.size_bytes, policy)
    elapsed = max(0.0, min(obs.seconds_in_phase, 1e9))
    if obs.phase == "submitted":
        # Not before Datalab can plausibly be done; time already spent (a slow submit) counts.
        first = min(policy.first_wait_cap, policy.first_wait_fraction * expected)
        return max(policy.min_wait, first - elapsed)
    if obs.phase == "processing":
        wait = (policy.growth - 1) * elapsed
        return min(policy.processing_cap, max(policy.processing_min, wait))
    if obs.phase == "throttled":
        exponent = min(max(0, obs.polls_in_phase - 1), 30)
        return min(policy.throttle_cap, policy.throttle_base * 2**exponent)
    if obs.phase == "billing":
        return policy.billing_wait
    return min(policy.scoring_cap, max(policy.scoring_wait, policy.scoring_fraction * expected))


def webhook_timeout_seconds(
    size_bytes: int | None,
    policy: PollPolicy = DEFAULT_POLICY,
    seconds_to_deadline: float | None = None,
) -> int:
    """Whole seconds to wait for Datalab's webhook before falling back to polling."""
    expected = expected_processing_seconds(None, size_bytes, policy)
    wait = policy.webhook_timeout_factor * expected
    wait = min(policy.webhook_timeout_cap, max(policy.webhook_timeout_min, wait))
    if seconds_to_deadline is not None:
        wait = min(wait, max(1.0, seconds_to_deadline))
    return max(1, math.ceil(wait))


def scores_first_wait_seconds(
    policy: PollPolicy = DEFAULT_POLICY, rng: random.Random | None = None
) -> int:
    """Whole seconds from the webhook to the first score poll (jittered as every wait)."""
    draw = rng.random() if rng is not None else random.random()
    wait = policy.scores_first_wait * (1 + policy.jitter * (2 * draw - 1))
    return max(policy.min_wait, math.floor(wait + 0.5))


REDELIVERY_BASE_SECONDS = 30
REDELIVERY_CAP_SECONDS = 900


def redelivery_delay_seconds(
    receive_count: int, retry_after: float | None = None, rng: random.Random | None = None
) -> int:
    """How long a submit that hit a transient Datalab error stays invisible on the intake queue.

    Exponential (30 s, 60 s, 120 s, ...) with full jitter on the upper half, capped at 15 min,
    never shorter than Datalab's Retry-After: a throttled burst spreads out instead of
    returning all at once, and no message waits the queue's whole visibility timeout.
    """
    ceiling = min(REDELIVERY_CAP_SECONDS, REDELIVERY_BASE_SECONDS * 2 ** max(0, receive_count - 1))
    draw = rng.random() if rng is not None else random.random()
    delay = ceiling / 2 + draw * ceiling / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, REDELIVERY_CAP_SECONDS))
    return max(1, math.ceil(delay))


RATE_LIMIT_BASE_SECONDS = 5
RATE_LIMIT_CAP_SECONDS = 60  # Datalab's docs suggest waiting up to 60 s after a 429


def rate_limited_wait_seconds(consecutive: int, rng: random.Random | None = None) -> float:
    """How long a poll waits after a 429 that named no Retry-After (Datalab documents none).

    Exponential in the 429s in a row (5 s, 10 s, ... up to 60 s), drawn from the upper half so a
    throttled burst comes back spread out. The caller's deadline still bounds it.
    """
    exponent = min(max(0, consecutive - 1), 30)
    ceiling = min(RATE_LIMIT_CAP_SECONDS, RATE_LIMIT_BASE_SECONDS * 2**exponent)
    draw = rng.random() if rng is not None else random.random()
    return ceiling / 2 + draw * ceiling / 2
