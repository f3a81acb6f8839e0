"""Taking one Datalab request from the team's shared budget, for submit and poll alike (the
windows and their shares: domain/request_budget.py)."""

from __future__ import annotations

from doctriage_core.config import DatalabSettings
from doctriage_core.domain.request_budget import window_at
from doctriage_core.ports import RequestBudget


def request_wait(
    budget: RequestBudget | None, settings: DatalabSettings, now: float, time_scale: float
) -> float | None:
    """Take one request from the team's shared budget: None when granted, else how long (in
    the pipeline's time) until the next window may grant one. No budget kept: always granted."""
    if budget is None or settings.requests_per_minute <= 0:
        return None
    window = window_at(now, settings.requests_per_minute, time_scale)
    if budget.take(window.key, window.allowance, window.expires_at):
        return None
    return window.seconds_left
