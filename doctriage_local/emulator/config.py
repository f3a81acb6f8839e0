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
  success_false                          status "complete" with success false (page rate limit)
  never_scored                           complete, but the scores never arrive
  expire                                 404 as soon as the job is complete
  malformed                              extraction_schema_json is not valid JSON
Request faults (submit_*, poll_*, auth) fire per matching request; job faults (the rest) are
fixed when a matching document is submitted.

``result_padding_bytes`` makes every ``json`` result at least about that much larger: the block
tree's ``metadata`` gets marker-style ``page_stats`` entries (block counts per page), as a long
document's would. It exercises the size limits a real result meets (Step Functions' 256 KB state,
Lambda payloads) without having to upload a thousand-page document.
"""

from __future__ import annotations

from dataclasses import dataclass

# Faults answered on the HTTP request itself (fire on each matching request).
SUBMIT_FAULTS = frozenset({"submit_429", "submit_500", "submit_529", "submit_timeout"})
POLL_FAULTS = frozenset({"poll_429", "poll_500", "poll_529", "poll_timeout", "poll_drop"})
# Faults baked into the job when it is created (fire once per matching submission).
JOB_FAULTS = frozenset({"failed", "success_false", "never_scored", "expire", "malformed"})
FAULT_KINDS = SUBMIT_FAULTS | POLL_FAULTS | JOB_FAULTS | {"auth"}


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
