"""Settings read from the Lambda environment (set by template.yaml), one set per function.

Each function requires only the variables it uses: a missing required one is a ConfigError
naming it. Read on first use, never at import, so tests and the local stack can set the
environment first; cached for the container's life (``runtime.reset`` forgets them).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cache

from doctriage_core.domain.budget import Budget
from doctriage_core.errors import ConfigError

__all__ = [
    "ConfigError",
    "DatalabSettings",
    "EvaluateSettings",
    "PollSettings",
    "SubmitSettings",
    "WebhookSettings",
    "evaluate_settings",
    "poll_settings",
    "submit_settings",
    "webhook_settings",
]


@dataclass(frozen=True)
class DatalabSettings:
    api_url: str
    api_key_secret_arn: str
    timeout_seconds: float = 30.0
    # The team's shared request budget (DatalabRequestsPerMinute); 0: no budget kept.
    requests_per_minute: int = 0


@dataclass(frozen=True)
class WebhookSettings:
    """Webhook-assisted waiting: the table the webhook and the workflow meet on, the secret
    Datalab sends in each webhook's body, and (submit only) the URL Datalab is given."""

    table: str
    secret_arn: str
    url: str = ""


@dataclass(frozen=True)
class SubmitSettings:
    documents_bucket: str
    results_table: str
    review_queue_url: str
    intake_queue_url: str
    state_machine_arn: str
    idempotency_table: str
    usage_table: str
    datalab: DatalabSettings
    # The spend guard (DailyPageBudget, MonthlyBudgetCents); off when neither is set.
    budget: Budget = field(default_factory=Budget)
    # None: no webhook is asked for (the template always sets it; bare test environments may not).
    webhook: WebhookSettings | None = None
    human_review_threshold: float = 0.85
    # The lowest review threshold an upload's metadata may ask for (MinimumUploadThreshold).
    minimum_upload_threshold: float = 0.0
    # The intake queue's maxReceiveCount (template parameter IntakeMaxReceives).
    max_receives: int = 10
    # How long transient failures (429s, outages) may delay a document before it is recorded as
    # failed (SubmitRetryWindowSeconds): its message is sent again fresh when its deliveries run
    # out within it.
    retry_window_seconds: float = 86400.0
    # ProcessingDeadlineSeconds: the webhook wait never outlasts it.
    processing_deadline_seconds: float = 1800.0
    # Local runs only: 0.01 makes every deadline and elapsed time count 100x faster.
    time_scale: float = 1.0


@dataclass(frozen=True)
class PollSettings:
    documents_bucket: str
    datalab: DatalabSettings
    usage_table: str
    processing_deadline_seconds: float = 1800.0
    scoring_deadline_seconds: float = 300.0
    # How often to look for scores once Datalab has processed (ScoresPollSeconds).
    scores_poll_seconds: float = 5.0
    time_scale: float = 1.0


@dataclass(frozen=True)
class EvaluateSettings:
    documents_bucket: str
    results_table: str
    review_queue_url: str
    usage_table: str
    human_review_threshold: float = 0.85
    # The fraction of auto documents also queued for review as audits (AuditSampleRate).
    audit_sample_rate: float = 0.02


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


def _budget_limit(name: str) -> int | None:
    """A budget parameter: empty (no limit) or a whole number of at least 1."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{name}={raw!r} must be empty (no limit) or a whole number >= 1")
    return int(raw)


def _datalab() -> DatalabSettings:
    return DatalabSettings(
        api_url=_required("DATALAB_API_URL"),
        api_key_secret_arn=_required("DATALAB_API_KEY_SECRET_ARN"),
        timeout_seconds=_number("DATALAB_TIMEOUT_SECONDS", 30, low=0.1, high=900),
        requests_per_minute=int(_number("DATALAB_REQUESTS_PER_MINUTE", 0, low=0, high=100_000)),
    )


def _review_threshold() -> float:
    return _number("HUMAN_REVIEW_THRESHOLD", 0.85, low=0.0, high=1.0)


def _time_scale() -> float:
    return _number("DOCTRIAGE_TIME_SCALE", 1.0, low=1e-6, high=1.0)


@cache
def submit_settings() -> SubmitSettings:
    minimum_upload_threshold = _number("MINIMUM_UPLOAD_THRESHOLD", 0.0, low=0.0, high=1.0)
    human_review_threshold = _review_threshold()
    if human_review_threshold < minimum_upload_threshold:
        raise ConfigError(
            f"HUMAN_REVIEW_THRESHOLD={human_review_threshold} is below "
            f"MINIMUM_UPLOAD_THRESHOLD={minimum_upload_threshold}: the stack default must not "
            "allow what an upload may not ask for"
        )
    return SubmitSettings(
        documents_bucket=_required("DOCUMENTS_BUCKET"),
        results_table=_required("RESULTS_TABLE"),
        review_queue_url=_required("REVIEW_QUEUE_URL"),
        intake_queue_url=_required("INTAKE_QUEUE_URL"),
        state_machine_arn=_required("STATE_MACHINE_ARN"),
        # Required: idempotency never switches itself off. Tests that want it off say so with
        # powertools' POWERTOOLS_IDEMPOTENCY_DISABLED=true.
        idempotency_table=_required("IDEMPOTENCY_TABLE"),
        usage_table=_required("USAGE_TABLE"),
        datalab=_datalab(),
        budget=Budget(
            daily_pages=_budget_limit("DAILY_PAGE_BUDGET"),
            monthly_cents=_budget_limit("MONTHLY_BUDGET_CENTS"),
        ),
        webhook=_submit_webhook(),
        human_review_threshold=human_review_threshold,
        minimum_upload_threshold=minimum_upload_threshold,
        max_receives=int(_number("SUBMIT_MAX_RECEIVES", 10, low=1, high=1000)),
        retry_window_seconds=_number("SUBMIT_RETRY_WINDOW_SECONDS", 86400, low=0, high=1209600),
        processing_deadline_seconds=_number("PROCESSING_DEADLINE_SECONDS", 1800, low=1),
        time_scale=_time_scale(),
    )


def _submit_webhook() -> WebhookSettings | None:
    url = os.environ.get("WEBHOOK_URL", "").strip()
    if not url:
        return None
    return WebhookSettings(
        table=_required("WEBHOOK_TABLE"), secret_arn=_required("WEBHOOK_SECRET_ARN"), url=url
    )


@cache
def webhook_settings() -> WebhookSettings:
    return WebhookSettings(
        table=_required("WEBHOOK_TABLE"), secret_arn=_required("WEBHOOK_SECRET_ARN")
    )


@cache
def poll_settings() -> PollSettings:
    return PollSettings(
        documents_bucket=_required("DOCUMENTS_BUCKET"),
        datalab=_datalab(),
        usage_table=_required("USAGE_TABLE"),
        processing_deadline_seconds=_number("PROCESSING_DEADLINE_SECONDS", 1800, low=1),
        scoring_deadline_seconds=_number("SCORING_DEADLINE_SECONDS", 300, low=1),
        scores_poll_seconds=_number("SCORES_POLL_SECONDS", 5, low=1, high=60),
        time_scale=_time_scale(),
    )


@cache
def evaluate_settings() -> EvaluateSettings:
    return EvaluateSettings(
        documents_bucket=_required("DOCUMENTS_BUCKET"),
        results_table=_required("RESULTS_TABLE"),
        review_queue_url=_required("REVIEW_QUEUE_URL"),
        usage_table=_required("USAGE_TABLE"),
        human_review_threshold=_review_threshold(),
        audit_sample_rate=_number("AUDIT_SAMPLE_RATE", 0.02, low=0.0, high=1.0),
    )


def clear() -> None:
    """Forget the cached settings (the next read sees the environment as it is then)."""
    for read in (submit_settings, poll_settings, evaluate_settings, webhook_settings):
        read.cache_clear()
