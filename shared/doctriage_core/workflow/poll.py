"""Poll: check one Datalab request (or resubmit a throttled document) and say how long to wait.

Returns the small ``PollStatus`` the state machine branches and waits on; the result itself is
copied to S3 the first time it is complete (Datalab deletes results about an hour after) and
never passes through Step Functions. Transient Datalab errors propagate by class name for the
state machine to retry; the deadlines (pipeline time, see domain/timeline.py) bound every wait.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from typing import Any, cast

from doctriage_core import errors
from doctriage_core.config import PollSettings
from doctriage_core.domain.documents import DocumentRef, result_key_for
from doctriage_core.domain.extraction import cost_cents, has_scores
from doctriage_core.domain.poll_policy import (
    PollObservation,
    next_wait_seconds,
    rate_limited_wait_seconds,
    scores_polled_every,
)
from doctriage_core.domain.timeline import Timeline, iso_utc
from doctriage_core.ports import Datalab, RequestBudget, Store
from doctriage_core.workflow.request_budget import request_wait
from doctriage_core.workflow.state import (
    DatalabRequest,
    Phase,
    PollStatus,
    WorkflowState,
    latest_request,
)

_CARRIED = ("complete_seen_at", "result_key", "page_count", "cost_cents")


class _Poll:
    """One poll: what the previous status said, the clock, and how to build the next status."""

    def __init__(
        self,
        state: WorkflowState,
        settings: PollSettings,
        now: float,
        rng: random.Random | None,
    ) -> None:
        self.state = state
        self.settings = settings
        self.timeline = Timeline(settings.time_scale)
        self.policy = scores_polled_every(settings.scores_poll_seconds)
        self.rng = rng
        self.now = now
        self.previous: PollStatus = state.get("poll") or {}
        self.request = latest_request(state)
        self.polls = int(self.previous.get("polls", 0)) + 1
        self.phase = self.previous.get("phase", "processing")
        self.phase_polls = int(self.previous.get("phase_polls", 0))
        self.since_submit = self.timeline.seconds_since(state["submitted_at"], now)
        self.processing_left = settings.processing_deadline_seconds - self.since_submit

    def seconds_since(self, iso: str) -> float:
        return self.timeline.seconds_since(iso, self.now)

    def waiting(
        self,
        new_phase: Phase,
        seconds_in_phase: float,
        deadline_left: float,
        retry_after: float | None = None,
        polls_in_phase: int | None = None,
        **extra: Any,
    ) -> PollStatus:
        in_phase = polls_in_phase or (self.phase_polls + 1 if new_phase == self.phase else 1)
        wait = next_wait_seconds(
            PollObservation(
                phase=new_phase,  # type: ignore[arg-type]
                polls_in_phase=in_phase,
                seconds_in_phase=seconds_in_phase,
                size_bytes=self.state["document"].get("size"),
                page_count=extra.get("page_count") or self.previous.get("page_count"),
                retry_after=retry_after,
                seconds_to_deadline=deadline_left,
            ),
            self.policy,
            rng=self.rng,
        )
        carried = {k: v for k, v in self.previous.items() if k in _CARRIED}
        return cast(
            PollStatus,
            {
                **carried,
                **extra,
                "ready": False,
                "scored": False,
                "phase": new_phase,
                "polls": self.polls,
                "phase_polls": in_phase,
                "next_wait_seconds": wait,
                "datalab": self.request,
            },
        )

    def throttled(self, retry_after: float | None = None) -> PollStatus:
        # Counted by submissions, not polls: each resubmit that is throttled again waits longer.
        return self.waiting(
            "throttled",
            self.since_submit,
            self.processing_left,
            retry_after,
            polls_in_phase=self.request["submissions"],
        )

    def ready(self, known: PollStatus, *, scored: bool) -> PollStatus:
        """The last status: evaluate now, with scores or (deadline passed) without them."""
        return cast(
            PollStatus,
            {
                "ready": True,
                "scored": scored,
                "phase": "scored" if scored else "scores_unavailable",
                "polls": self.polls,
                "next_wait_seconds": 0,
                **{k: known.get(k) for k in _CARRIED},
                "datalab": self.request,
            },
        )

    def queued(self, wait: float) -> PollStatus:
        """The status as it was (no request made), to be looked at again after ``wait``."""
        kept = ("rate_limited", *_CARRIED)
        return cast(
            PollStatus,
            {
                **{k: v for k, v in self.previous.items() if k in kept},
                "ready": False,
                "scored": False,
                "phase": self.phase,
                "polls": self.polls - 1,
                "phase_polls": self.phase_polls,
                "next_wait_seconds": max(1, math.ceil(wait)),
                "datalab": self.request,
                "queued": int(self.previous.get("queued", 0)) + 1,
            },
        )

    def deadline_exceeded(self, what: str) -> errors.DeadlineExceeded:
        return errors.DeadlineExceeded(
            f"{what} after {self.settings.processing_deadline_seconds:.0f} s"
        )


def check_extraction(
    state: WorkflowState,
    *,
    datalab: Datalab,
    store: Store,
    settings: PollSettings,
    requests: RequestBudget | None = None,
    now: Callable[[], float] = time.time,
    rng: random.Random | None = None,
) -> PollStatus:
    """Poll Datalab once (or resubmit a throttled document); return the next status.

    With no request to spare in the team's shared budget (``requests``), nothing is asked: the
    same status comes back with a wait until the budget's next window.

    The status always carries ``datalab`` (request_id, check_url, submissions): the request to
    poll next, which a page-rate resubmit replaces.
    """
    poll = _Poll(state, settings, now(), rng)
    wait = request_wait(requests, settings.datalab, poll.now, settings.time_scale)
    if wait is not None:
        return poll.queued(wait)
    if poll.phase == "throttled":
        return _throttled_again(poll, datalab=datalab, store=store)
    if poll.phase == "billing":
        return _fetch_cost(poll, datalab)
    try:
        body = datalab.check(poll.request["check_url"])
    except errors.DatalabPageRateLimited as exc:
        # Not a failure: Datalab had too many of the team's pages in flight. Back off, then
        # the next poll resubmits (phase "throttled"); the processing deadline still holds.
        if poll.processing_left <= 0:
            raise errors.DeadlineExceeded(
                f"Datalab's page rate limit still throttled the document after "
                f"{settings.processing_deadline_seconds:.0f} s: {exc}"
            ) from exc
        return poll.throttled()
    except errors.DatalabRateLimited as exc:
        return _rate_limited(poll, exc)
    if body.get("status") != "complete":
        # "processing", or a status Datalab has not documented (e.g. "pending"): not finished.
        if poll.processing_left <= 0:
            raise poll.deadline_exceeded("Datalab was still processing")
        return poll.waiting("processing", poll.since_submit, poll.processing_left)
    return _complete(poll, body, store)


def _throttled_again(poll: _Poll, *, datalab: Datalab, store: Store) -> PollStatus:
    if poll.processing_left <= 0:
        raise errors.DeadlineExceeded(
            f"Datalab's page rate limit still throttled the document after "
            f"{poll.request['submissions']} submissions and "
            f"{poll.settings.processing_deadline_seconds:.0f} s"
        )
    try:
        return _resubmit(poll, datalab=datalab, store=store)
    except errors.DatalabRateLimited as exc:
        return poll.throttled(_come_back_after(poll, exc))


def _come_back_after(poll: _Poll, exc: errors.DatalabRateLimited) -> float:
    """Datalab's Retry-After when it names one, else our own back-off (it documents none)."""
    if exc.retry_after is not None:
        return exc.retry_after
    return rate_limited_wait_seconds(int(poll.previous.get("rate_limited", 0)) + 1, poll.rng)


def _rate_limited(poll: _Poll, exc: errors.DatalabRateLimited) -> PollStatus:
    # A 429 delays the document, never fails it: wait in the Wait state, not in a Retry that
    # would give up. The deadlines hold while throttled too, or a 429 storm would poll forever.
    retry_after = _come_back_after(poll, exc)
    in_a_row = int(poll.previous.get("rate_limited", 0)) + 1
    if poll.phase == "unscored":
        since_complete = poll.seconds_since(str(poll.previous["complete_seen_at"]))
        left = poll.settings.scoring_deadline_seconds - since_complete
        if left <= 0:
            return poll.ready(poll.previous, scored=False)
        return poll.waiting("unscored", since_complete, left, retry_after, rate_limited=in_a_row)
    if poll.processing_left <= 0:
        raise poll.deadline_exceeded("Datalab was still processing (and rate-limiting us)") from exc
    return poll.waiting(
        "processing", poll.since_submit, poll.processing_left, retry_after, rate_limited=in_a_row
    )


def _complete(poll: _Poll, body: dict[str, Any], store: Store) -> PollStatus:
    result_key = result_key_for(poll.state["document"]["document_id"])
    scored = has_scores(body)
    first_complete = poll.phase != "unscored"
    if first_complete or scored:
        # Datalab deletes results about an hour after completion: keep our own copy now.
        store.put_json(result_key, json.dumps(body).encode())
    complete_seen_at: str = (
        poll.previous.get("complete_seen_at") if not first_complete else None
    ) or iso_utc(poll.now)
    cost = cost_cents(body)
    done: PollStatus = {
        "result_key": result_key,
        "complete_seen_at": complete_seen_at,
        "page_count": body.get("page_count"),
        "cost_cents": cost if cost is not None else poll.previous.get("cost_cents"),
    }
    if scored and done["cost_cents"] is None and first_complete:
        # Datalab bills on a later fetch than the first complete one: fetch once more for it.
        return poll.waiting("billing", 0.0, poll.settings.scoring_deadline_seconds, **done)
    if scored:
        return poll.ready(done, scored=True)
    since_complete = poll.seconds_since(complete_seen_at)
    scoring_left = poll.settings.scoring_deadline_seconds - since_complete
    if scoring_left <= 0:
        return poll.ready(done, scored=False)
    return poll.waiting("unscored", since_complete, scoring_left, **done)


def _fetch_cost(poll: _Poll, datalab: Datalab) -> PollStatus:
    """The one fetch more for the bill, after the scores: best effort, it never holds a
    document back. Any error, or still no figure, leaves the cost unknown (null)."""
    try:
        cost = cost_cents(datalab.check(poll.request["check_url"]))
    except errors.DoctriageError:
        cost = None
    return poll.ready({**poll.previous, "cost_cents": cost}, scored=True)


def _resubmit(poll: _Poll, *, datalab: Datalab, store: Store) -> PollStatus:
    """Send a throttled document to Datalab again: the same upload version, the same schema
    version, the same parameters as submit; the status then polls the new request (no webhook:
    the workflow is in its poll loop already)."""
    # Here, not at init: submit's module (the schema compiler, the record's evaluation) is only
    # needed by the rare throttled document, and every poll container would load it.
    from doctriage_core.domain.schemas import load_schema
    from doctriage_core.workflow.submit import send_document

    state = poll.state
    document = DocumentRef.from_state(state["document"])
    raw_schema, _ = store.read_schema(state["schema"]["key"], state["schema"].get("version_id"))
    submission = send_document(
        document, load_schema(raw_schema), store=store, datalab=datalab, size=document.size
    )
    wait = next_wait_seconds(
        PollObservation(
            phase="submitted",
            polls_in_phase=0,
            seconds_in_phase=0.0,
            size_bytes=document.size,
            seconds_to_deadline=poll.processing_left,
        ),
        rng=poll.rng,
    )
    request: DatalabRequest = {
        "request_id": submission.request_id,
        "check_url": submission.check_url,
        "submissions": poll.request["submissions"] + 1,
    }
    return {
        "ready": False,
        "scored": False,
        "phase": "submitted",
        "polls": poll.polls,
        "phase_polls": 0,
        "next_wait_seconds": wait,
        "datalab": request,
    }
