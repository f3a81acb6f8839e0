"""domain/budget.py: when the spend guard holds uploads, and when it looks again."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from doctriage_core.domain.budget import (
    RECHECK_SECONDS,
    Budget,
    Periods,
    Spent,
    over_budget,
    seconds_until_recheck,
)


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_no_budget_never_holds() -> None:
    assert not Budget().enabled
    assert over_budget(Budget(), Spent(pages_today=10**9, cents_this_month=1e12)) is None


@pytest.mark.parametrize(("pages", "held"), [(99, False), (100, True), (101, True)])
def test_the_daily_page_budget_holds_once_it_is_spent(pages: int, held: bool) -> None:
    verdict = over_budget(Budget(daily_pages=100), Spent(pages_today=pages))
    assert (verdict is not None) is held
    if held:
        assert verdict == f"today's Datalab pages are spent: {pages} of DailyPageBudget 100"


@pytest.mark.parametrize(("cents", "held"), [(4999.5, False), (5000.0, True)])
def test_the_monthly_budget_holds_once_its_cents_are_spent(cents: float, held: bool) -> None:
    verdict = over_budget(Budget(monthly_cents=5000), Spent(cents_this_month=cents))
    assert (verdict is not None) is held
    if held:
        assert "MonthlyBudgetCents 5,000" in str(verdict)


def test_periods_are_utc_days_and_months() -> None:
    periods = Periods.at(_at("2026-12-31T23:59:59"))
    assert (periods.day, periods.month) == ("day#2026-12-31", "month#2026-12")
    periods = Periods.at(_at("2027-01-01T00:00:00"))
    assert (periods.day, periods.month) == ("day#2027-01-01", "month#2027-01")


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        ("2026-12-01T12:00:00", RECHECK_SECONDS),  # mid-day: the usual look again
        ("2026-12-01T23:55:00", 300),  # just before midnight: right when the day turns
        ("2026-12-31T23:59:59.5", 1),  # never less than a second
    ],
)
def test_a_held_upload_looks_again_soon_and_right_when_the_day_turns(
    now: str, seconds: float
) -> None:
    assert seconds_until_recheck(_at(now)) == seconds
