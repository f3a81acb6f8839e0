"""The adaptive poll policy: whole seconds, floors and ceilings, growth, cadence, jitter."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doctriage_core.domain.poll_policy import (
    DEFAULT_POLICY,
    PHASES,
    PollObservation,
    PollPolicy,
    expected_processing_seconds,
    next_wait_seconds,
    rate_limited_wait_seconds,
    scores_polled_every,
)

STEADY = replace(DEFAULT_POLICY, jitter=0.0)


def wait(phase: str, seconds: float = 0.0, **kwargs: Any) -> int:
    obs = PollObservation(phase, 1, seconds, **kwargs)  # type: ignore[arg-type]
    return next_wait_seconds(obs, STEADY)


@pytest.mark.parametrize(
    ("phase", "seconds", "kwargs", "expected"),
    [
        # first wait: 0.8 x (2 s + 1 s/page), capped at 60 s
        ("submitted", 0, {"page_count": 1}, 2),
        ("submitted", 0, {"page_count": 10}, 10),
        ("submitted", 0, {"page_count": 40}, 34),
        ("submitted", 0, {"page_count": 500}, 60),
        ("submitted", 3, {"page_count": 10}, 7),  # a slow submit already used 3 s
        ("submitted", 30, {"page_count": 10}, 1),
        ("submitted", 0, {"size_bytes": 2_000_000}, 10),  # ~10 pages guessed from the size
        ("submitted", 0, {"size_bytes": 2_000_000, "page_count": 1}, 2),  # the count wins
        ("submitted", 0, {}, 2),
        # processing: 0.5 x time since submit, between 15 and 30 s
        ("processing", 2, {}, 15),
        ("processing", 40, {}, 20),
        ("processing", 50, {}, 25),
        ("processing", 100, {}, 30),
        ("processing", 5000, {}, 30),
        # complete, unscored: 5 s, or 6 % of the expected time, capped at 15 s
        ("unscored", 0, {"page_count": 1}, 5),
        ("unscored", 40, {"page_count": 1}, 5),
        ("unscored", 0, {"page_count": 200}, 12),
        ("unscored", 0, {"page_count": 2000}, 15),
        # Retry-After is a floor, the deadline (+1 s) a ceiling
        ("processing", 100, {"retry_after": 45}, 45),
        ("processing", 100, {"retry_after": 2.1}, 30),
        ("unscored", 0, {"retry_after": 7.2}, 8),
        ("processing", 100, {"seconds_to_deadline": 3.2}, 4),
        ("processing", 100, {"seconds_to_deadline": 3.0}, 4),
        ("processing", 100, {"seconds_to_deadline": 0}, 1),
        ("processing", 100, {"seconds_to_deadline": -50}, 1),
        ("processing", 100, {"seconds_to_deadline": 500}, 30),
        ("processing", 100, {"retry_after": 60, "seconds_to_deadline": 9.5}, 10),
    ],
)
def test_table(phase: str, seconds: float, kwargs: dict[str, object], expected: int) -> None:
    assert wait(phase, seconds, **kwargs) == expected


observations = st.builds(
    PollObservation,
    phase=st.sampled_from(PHASES),
    polls_in_phase=st.integers(0, 10_000),
    seconds_in_phase=st.floats(allow_nan=False),
    size_bytes=st.none() | st.integers(-1, 10**10),
    page_count=st.none() | st.integers(-1, 100_000),
    retry_after=st.none() | st.floats(allow_nan=False),
    seconds_to_deadline=st.none() | st.floats(allow_nan=False),
)
policies = st.sampled_from([DEFAULT_POLICY, STEADY, replace(DEFAULT_POLICY, jitter=0.9)])


@given(obs=observations, policy=policies, seed=st.integers())
def test_always_a_whole_second_at_least(
    obs: PollObservation, policy: PollPolicy, seed: int
) -> None:
    seconds = next_wait_seconds(obs, policy, random.Random(seed))
    assert isinstance(seconds, int)
    assert seconds >= 1


@given(obs=observations, seed=st.integers())
def test_never_past_deadline_plus_one(obs: PollObservation, seed: int) -> None:
    seconds = next_wait_seconds(obs, DEFAULT_POLICY, random.Random(seed))
    deadline = obs.seconds_to_deadline
    if deadline is not None:
        assert seconds <= max(1, math.floor(max(0.0, min(deadline, 1e9))) + 1)


@given(
    obs=observations,
    retry_after=st.floats(0, 3600),
    slack=st.none() | st.floats(0, 10_000),
    seed=st.integers(),
)
def test_honours_retry_after(
    obs: PollObservation, retry_after: float, slack: float | None, seed: int
) -> None:
    # Only the deadline may cut a Retry-After short (waiting past it helps nobody).
    deadline = None if slack is None else retry_after + slack
    obs = replace(obs, retry_after=retry_after, seconds_to_deadline=deadline)
    assert next_wait_seconds(obs, DEFAULT_POLICY, random.Random(seed)) >= retry_after


@given(
    size=st.none() | st.integers(0, 10**9),
    pages=st.none() | st.integers(1, 5000),
    processing=st.floats(1, 20_000),
)
def test_waits_grow_then_cap_while_processing(
    size: int | None, pages: int | None, processing: float
) -> None:
    t = float(next_wait_seconds(PollObservation("submitted", 0, 0.0, size, pages), STEADY))
    waits = []
    polls = 0
    while t < processing:
        polls += 1
        seconds = next_wait_seconds(PollObservation("processing", polls, t, size, pages), STEADY)
        waits.append(seconds)
        t += seconds
    assert waits == sorted(waits)
    assert all(STEADY.processing_min <= w <= STEADY.processing_cap for w in waits)
    if processing > 1000:
        assert waits[-1] == STEADY.processing_cap


@given(pages=st.none() | st.integers(0, 10**6), size=st.none() | st.integers(0, 10**10))
def test_unscored_cadence_shorter_than_processing_cap(pages: int | None, size: int | None) -> None:
    for seed in range(5):
        unscored = next_wait_seconds(
            PollObservation("unscored", 3, 20.0, size, pages), DEFAULT_POLICY, random.Random(seed)
        )
        assert unscored < DEFAULT_POLICY.processing_cap


@given(
    obs=observations.filter(
        lambda o: (
            o.retry_after is None
            and o.seconds_to_deadline is None
            # throttled waits have their own, wider jitter (test_throttled_waits_...)
            and o.phase != "throttled"
        )
    ),
    seed=st.integers(),
)
def test_jitter_is_bounded(obs: PollObservation, seed: int) -> None:
    base = next_wait_seconds(obs, STEADY)
    jittered = next_wait_seconds(obs, DEFAULT_POLICY, random.Random(seed))
    j = DEFAULT_POLICY.jitter
    assert math.floor(base * (1 - j) - 0.5) <= jittered <= math.ceil(base * (1 + j) + 0.5)
    assert jittered >= 1


def test_jitter_is_deterministic_with_a_seed_and_varies() -> None:
    obs = PollObservation("processing", 4, 1000.0)

    def draws(seed: int) -> list[int]:
        rng = random.Random(seed)
        return [next_wait_seconds(obs, DEFAULT_POLICY, rng) for _ in range(200)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)
    assert set(draws(7)) == {27, 28, 29, 30, 31, 32, 33}


def test_without_rng_still_within_bounds() -> None:
    obs = PollObservation("processing", 4, 1000.0)
    assert all(27 <= next_wait_seconds(obs) <= 33 for _ in range(100))


@given(pages=st.integers(1, 10_000), more=st.integers(1, 10_000))
def test_first_wait_grows_with_pages(pages: int, more: int) -> None:
    few = wait("submitted", page_count=pages)
    many = wait("submitted", page_count=pages + more)
    assert many >= few
    size_few = wait("submitted", size_bytes=pages * 100_000)
    size_many = wait("submitted", size_bytes=(pages + more) * 100_000)
    assert size_many >= size_few


def test_first_wait_strictly_larger_for_more_pages() -> None:
    assert wait("submitted", page_count=1) < wait("submitted", page_count=5)
    assert wait("submitted", page_count=5) < wait("submitted", page_count=30)
    assert wait("submitted", size_bytes=100_000) < wait("submitted", size_bytes=5_000_000)


def test_expected_processing_seconds() -> None:
    assert expected_processing_seconds(10, None) == 12.0
    assert expected_processing_seconds(None, 4_000_000) == 22.0
    assert expected_processing_seconds(None, 10) == 3.0  # at least one page
    assert expected_processing_seconds(None, None) == 3.0
    assert expected_processing_seconds(0, 0) == 3.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"phase": "done"},
        {"polls_in_phase": -1},
        {"seconds_in_phase": math.nan},
        {"retry_after": math.nan},
        {"seconds_to_deadline": math.nan},
    ],
)
def test_observation_refuses_nonsense(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "phase": "processing",
        "polls_in_phase": 1,
        "seconds_in_phase": 3.0,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError, match=r"phase|polls|NaN"):
        PollObservation(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"growth": 1.0},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"min_wait": 0},
        {"processing_min": 40.0},
        {"scoring_wait": 20.0, "scoring_cap": 15.0},
        {"bytes_per_page": 0},
        {"first_wait_cap": 0.5},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        PollPolicy(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ throttled (page rate limit)

NO_THROTTLE_JITTER = replace(DEFAULT_POLICY, throttle_jitter=0.0)


@pytest.mark.parametrize(
    ("submissions", "expected"),
    [(1, 20), (2, 40), (3, 80), (4, 160), (5, 300), (9, 300), (10_000, 300)],
)
def test_throttled_waits_double_with_each_submission_then_cap(
    submissions: int, expected: int
) -> None:
    obs = PollObservation("throttled", submissions, 100.0)
    assert next_wait_seconds(obs, NO_THROTTLE_JITTER) == expected


@given(submissions=st.integers(1, 50), seed=st.integers())
def test_throttled_waits_are_jittered_over_the_upper_half(submissions: int, seed: int) -> None:
    ceiling = next_wait_seconds(PollObservation("throttled", submissions, 0.0), NO_THROTTLE_JITTER)
    seconds = next_wait_seconds(
        PollObservation("throttled", submissions, 0.0), DEFAULT_POLICY, random.Random(seed)
    )
    assert math.floor(ceiling / 2) <= seconds <= ceiling


def test_throttled_burst_spreads_out() -> None:
    rng = random.Random(3)
    waits = {next_wait_seconds(PollObservation("throttled", 1, 0.0), rng=rng) for _ in range(100)}
    assert len(waits) >= 8  # ten documents throttled together do not come back together


def test_throttled_wait_is_bounded_by_the_deadline() -> None:
    obs = PollObservation("throttled", 6, 1000.0, seconds_to_deadline=12.4)
    assert next_wait_seconds(obs, NO_THROTTLE_JITTER) == 13


def test_a_429_without_retry_after_backs_off_exponentially_up_to_a_minute() -> None:
    rng = random.Random(7)
    ceilings = [5, 10, 20, 40, 60, 60, 60]
    for consecutive, ceiling in enumerate(ceilings, start=1):
        draws = [rate_limited_wait_seconds(consecutive, rng) for _ in range(200)]
        assert ceiling / 2 <= min(draws) <= max(draws) <= ceiling
        assert max(draws) - min(draws) > ceiling / 4  # spread out, not in lockstep


def test_scores_polled_every_changes_the_score_cadence_only() -> None:
    assert scores_polled_every(DEFAULT_POLICY.scoring_wait) is DEFAULT_POLICY
    sparse = scores_polled_every(15)
    assert (sparse.scoring_wait, sparse.scoring_cap) == (15, 30)
    assert replace(sparse, scoring_wait=5.0, scoring_cap=15.0) == DEFAULT_POLICY
    unscored = PollObservation(phase="unscored", polls_in_phase=1, seconds_in_phase=0.0)
    assert next_wait_seconds(unscored, sparse, rng=random.Random(1)) in range(13, 18)
