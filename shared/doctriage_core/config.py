"""Settings read from the Lambda environment (set by template.yaml), validated once per container.

Read on first use, never at import, so tests and the local stack can set the environment first.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import cache


class ConfigError(RuntimeError):
    """The function is deployed with a missing or invalid setting: an operator must fix it."""


@dataclass(frozen=True)
class Settings:
    documents_bucket: str
    results_table: str
    review_queue_url: str
    datalab_api_url: str
    datalab_api_key_secret_arn: str
    human_review_threshold: float
    processing_deadline_seconds: float
    scoring_deadline_seconds: float
    state_machine_arn: str | None = None
    idempotency_table: str | None = None
    intake_queue_url: str | None = None
    datalab_timeout_seconds: float = 30.0
    submit_max_receives: int = 10
    # The lowest review threshold an upload's metadata may ask for (MinimumUploadThreshold).
    minimum_upload_threshold: float = 0.0
    # Local runs only: 0.01 makes every deadline and elapsed time count 100x faster.
    time_scale: float = 1.0


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def _number(name: str, default: float, *, low: float, high: float = math.inf) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if not (low <= value <= high):
        raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
    return value


@cache
def get_settings() -> Settings:
    minimum_upload_threshold = _number("MINIMUM_UPLOAD_THRESHOLD", 0.0, low=0.0, high=1.0)
    human_review_threshold = _number("HUMAN_REVIEW_THRESHOLD", 0.85, low=0.0, high=1.0)
    if human_review_threshold < minimum_upload_threshold:
        raise ConfigError(
            f"HUMAN_REVIEW_THRESHOLD={human_review_threshold} is below "
            f"MINIMUM_UPLOAD_THRESHOLD={minimum_upload_threshold}: the stack default must not "
            "allow what an upload may not ask for"
        )
    return Settings(
        documents_bucket=_required("DOCUMENTS_BUCKET"),
        results_table=_required("RESULTS_TABLE"),
        review_queue_url=_required("REVIEW_QUEUE_URL"),
        datalab_api_url=_required("DATALAB_API_URL"),
        datalab_api_key_secret_arn=_required("DATALAB_API_KEY_SECRET_ARN"),
        human_review_threshold=human_review_threshold,
        processing_deadline_seconds=_number("PROCESSING_DEADLINE_SECONDS", 1800, low=1),
        scoring_deadline_seconds=_number("SCORING_DEADLINE_SECONDS", 300, low=1),
        state_machine_arn=os.environ.get("STATE_MACHINE_ARN") or None,
        idempotency_table=os.environ.get("IDEMPOTENCY_TABLE") or None,
        intake_queue_url=os.environ.get("INTAKE_QUEUE_URL") or None,
        datalab_timeout_seconds=_number("DATALAB_TIMEOUT_SECONDS", 30, low=0.1, high=900),
        submit_max_receives=int(_number("SUBMIT_MAX_RECEIVES", 10, low=1, high=1000)),
        minimum_upload_threshold=minimum_upload_threshold,
        time_scale=_number("DOCTRIAGE_TIME_SCALE", 1.0, low=1e-6, high=1.0),
    )
