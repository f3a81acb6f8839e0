"""The spend guard: stop sending documents to Datalab once a day's pages or a month's cents
are spent, and say when to look again.

Pure: what has been spent comes in (the usage table's counters, which evaluate adds to as each
document's record is written), a verdict comes out. Periods are UTC calendar days and months.
Spend is counted when a document completes, so documents already at Datalab when the budget
runs out still finish: the overshoot is at most what was in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# A held upload looks again at least this often, so that raising the budget resumes it soon.
RECHECK_SECONDS = 900


@dataclass(frozen=True)
class Budget:
    """DailyPageBudget and MonthlyBudgetCents; None: no limit of that kind."""

    daily_pages: int | None = None
    monthly_cents: int | None = None

    @property
    def enabled(self) -> bool:
        return self.daily_pages is not None or self.monthly_cents is not None


@dataclass(frozen=True)
class Periods:
    day: str  # "day#2026-12-01"
    month: str  # "month#2026-12"

    @classmethod
    def at(cls, now: float) -> Periods:
        moment = datetime.fromtimestamp(now, UTC)
        return cls(day=f"day#{moment:%Y-%m-%d}", month=f"month#{moment:%Y-%m}")


@dataclass(frozen=True)
class Spent:
    pages_today: int = 0
    cents_this_month: float = 0.0


def over_budget(budget: Budget, spent: Spent) -> str | None:
    """Why nothing more may be sent now, or None when the budget allows it."""
    if budget.daily_pages is not None and spent.pages_today >= budget.daily_pages:
        return (
            f"today's Datalab pages are spent: {spent.pages_today:,} of DailyPageBudget "
            f"{budget.daily_pages:,}"
        )
    if budget.monthly_cents is not None and spent.cents_this_month >= budget.monthly_cents:
        return (
            f"this month's Datalab budget is spent: {spent.cents_this_month:,g} of "
            f"MonthlyBudgetCents {budget.monthly_cents:,} cents"
        )
    return None


def seconds_until_recheck(now: float) -> float:
    """Until the next look: RECHECK_SECONDS, or sooner when the UTC day (and so a month) turns."""
    moment = datetime.fromtimestamp(now, UTC)
    midnight = (moment + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, min(float(RECHECK_SECONDS), (midnight - moment).total_seconds()))
