"""Timestamps and pipeline time: the one ISO 8601 format, and the one place time is scaled.

Pure (the clock is passed in). Local runs compress the pipeline's timeline with
DOCTRIAGE_TIME_SCALE (0.01: a 300 s deadline passes in 3 s of wall time); :class:`Timeline` is
the only code that applies that scale, in both directions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime


def iso_utc(ts: float) -> str:
    """A Unix time as ISO 8601 UTC with milliseconds and a ``Z``: ``2025-01-31T12:00:00.123Z``."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now_iso() -> str:
    """Now, as :func:`iso_utc` writes it."""
    return iso_utc(time.time())


@dataclass(frozen=True)
class Timeline:
    """Pipeline seconds against wall seconds: equal in the cloud, ``scale`` apart locally."""

    scale: float = 1.0

    def seconds_since(self, since_iso: str, now: float) -> float:
        """Pipeline seconds from an ISO timestamp to the wall-clock time ``now`` (never < 0)."""
        started = datetime.fromisoformat(since_iso).timestamp()
        return max(0.0, now - started) / self.scale

    def wall_seconds(self, pipeline_seconds: float) -> int:
        """How long to really wait for ``pipeline_seconds`` of the pipeline's time (whole s)."""
        return round(pipeline_seconds * self.scale)
