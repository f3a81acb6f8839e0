"""The shared request budget: every submit and poll of a Datalab team draws from one allowance,
so a burst waits its turn instead of provoking a storm of 429s.

Datalab counts requests in a sliding 60 s window (DatalabRequestsPerMinute: its published limit
is 200-400 a minute by plan). The budget counts them in fixed windows of ``WINDOW_SECONDS``: one
atomic counter per window (DynamoDB ``ADD`` under a condition), no read-modify-write. A sliding
minute overlaps at most ``60 / WINDOW_SECONDS + 1`` fixed windows, so each window may take that
share of the limit and no minute can exceed it (12/13 of the limit is used at full load).
Pure: the clock and the limit come in, the window's key and its allowance go out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW_SECONDS = 5
_WINDOWS_PER_MINUTE_OVERLAP = 60 // WINDOW_SECONDS + 1


@dataclass(frozen=True)
class Window:
    key: str  # "requests#<window number>"
    allowance: int  # requests this window may take
    seconds_left: float  # until the next window opens, in the pipeline's time
    expires_at: int  # when DynamoDB may forget the counter (epoch seconds)


def window_at(now: float, requests_per_minute: int, time_scale: float = 1.0) -> Window:
    """The window ``now`` (epoch seconds) falls in and its share of the per-minute limit.

    ``time_scale`` compresses the window as it compresses every other duration in local runs
    (the Datalab emulator's minute is compressed alike).
    """
    length = WINDOW_SECONDS * time_scale
    number = math.floor(now / length)
    return Window(
        key=f"requests#{number}",
        allowance=max(1, requests_per_minute // _WINDOWS_PER_MINUTE_OVERLAP),
        seconds_left=max(0.05, ((number + 1) * length - now) / time_scale),
        expires_at=int(now) + 3600,
    )
