"""domain/request_budget.py: fixed windows that never let a sliding minute past the limit."""

from __future__ import annotations

import pytest

from doctriage_core.domain.request_budget import WINDOW_SECONDS, window_at


@pytest.mark.parametrize(("per_minute", "allowance"), [(400, 30), (200, 15), (60, 4), (13, 1)])
def test_each_window_takes_a_share_no_sliding_minute_can_exceed(per_minute, allowance):
    assert window_at(1000.0, per_minute).allowance == allowance
    # A sliding minute overlaps at most 60 / WINDOW_SECONDS + 1 windows.
    assert allowance * (60 // WINDOW_SECONDS + 1) <= per_minute


def test_a_limit_under_one_a_window_still_grants_one():
    assert window_at(1000.0, 5).allowance == 1  # about 12 a minute: the floor of the scheme


def test_windows_follow_the_clock():
    first, same, next_ = window_at(1000.0, 400), window_at(1004.9, 400), window_at(1005.0, 400)
    assert first.key == same.key != next_.key
    assert first.seconds_left == pytest.approx(5.0)
    assert same.seconds_left == pytest.approx(0.1)


def test_local_time_scale_compresses_the_window_but_waits_are_pipeline_seconds():
    window = window_at(10.0, 400, time_scale=0.01)  # windows of 50 ms
    assert window.key == "requests#200"
    assert window.seconds_left == pytest.approx(5.0)
