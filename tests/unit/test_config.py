"""Settings from the environment: MinimumUploadThreshold and how it bounds the stack default."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from doctriage_core import config
from doctriage_core.config import submit_settings as get_settings
from doctriage_core.errors import ConfigError

REQUIRED = {
    "DOCUMENTS_BUCKET": "docs",
    "RESULTS_TABLE": "results",
    "REVIEW_QUEUE_URL": "https://sqs.local/review",
    "DATALAB_API_URL": "https://www.datalab.to",
    "DATALAB_API_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:k",
    "INTAKE_QUEUE_URL": "https://sqs.local/intake",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:1:stateMachine:sm",
    "IDEMPOTENCY_TABLE": "idempotency",
    "USAGE_TABLE": "usage",
}


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    optional = ("HUMAN_REVIEW_THRESHOLD", "MINIMUM_UPLOAD_THRESHOLD", "AUDIT_SAMPLE_RATE")
    for name in (*optional, "SCORES_POLL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    config.clear()
    yield
    config.clear()


def test_the_minimum_defaults_to_zero() -> None:
    assert get_settings().minimum_upload_threshold == 0.0


@pytest.mark.parametrize(("raw", "expected"), [("0", 0.0), ("0.6", 0.6), ("1", 1.0)])
def test_the_minimum_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: float
) -> None:
    monkeypatch.setenv("MINIMUM_UPLOAD_THRESHOLD", raw)
    monkeypatch.setenv("HUMAN_REVIEW_THRESHOLD", "1")
    assert get_settings().minimum_upload_threshold == expected


@pytest.mark.parametrize("raw", ["-0.1", "1.5", "high", "nan"])
def test_a_minimum_outside_zero_to_one_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("MINIMUM_UPLOAD_THRESHOLD", raw)
    with pytest.raises(ConfigError, match="MINIMUM_UPLOAD_THRESHOLD"):
        get_settings()


def test_a_stack_threshold_below_the_minimum_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MINIMUM_UPLOAD_THRESHOLD", "0.9")
    monkeypatch.setenv("HUMAN_REVIEW_THRESHOLD", "0.85")
    with pytest.raises(ConfigError, match=r"HUMAN_REVIEW_THRESHOLD=0\.85 is below"):
        get_settings()


def test_a_stack_threshold_at_the_minimum_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIMUM_UPLOAD_THRESHOLD", "0.85")
    monkeypatch.setenv("HUMAN_REVIEW_THRESHOLD", "0.85")
    settings = get_settings()
    assert (settings.human_review_threshold, settings.minimum_upload_threshold) == (0.85, 0.85)


@pytest.mark.parametrize(
    "url", ["http://example.com", "ftp://www.datalab.to", "https://user:pw@www.datalab.to"]
)
def test_an_unusable_datalab_url_is_a_config_error_at_first_use(url: str) -> None:
    from doctriage_core import runtime
    from doctriage_core.config import DatalabSettings

    settings = DatalabSettings(api_url=url, api_key_secret_arn="arn:never-read")
    with pytest.raises(ConfigError, match="DATALAB_API_URL"):
        runtime.datalab_client(settings)  # before the secret is read (no AWS call is made)


def test_the_audit_sample_rate_defaults_to_two_percent() -> None:
    assert config.evaluate_settings().audit_sample_rate == 0.02


@pytest.mark.parametrize(("raw", "expected"), [("0", 0.0), ("0.5", 0.5), ("1", 1.0)])
def test_the_audit_sample_rate_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: float
) -> None:
    monkeypatch.setenv("AUDIT_SAMPLE_RATE", raw)
    assert config.evaluate_settings().audit_sample_rate == expected


@pytest.mark.parametrize("raw", ["-0.01", "1.01", "some", "nan"])
def test_an_audit_sample_rate_outside_zero_to_one_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("AUDIT_SAMPLE_RATE", raw)
    with pytest.raises(ConfigError, match="AUDIT_SAMPLE_RATE"):
        config.evaluate_settings()


def test_scores_are_polled_every_5_s_unless_the_stack_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert config.poll_settings().scores_poll_seconds == 5
    monkeypatch.setenv("SCORES_POLL_SECONDS", "15")
    config.clear()
    assert config.poll_settings().scores_poll_seconds == 15


@pytest.mark.parametrize("raw", ["0", "61", "often"])
def test_scores_poll_seconds_outside_1_to_60_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("SCORES_POLL_SECONDS", raw)
    with pytest.raises(ConfigError, match="SCORES_POLL_SECONDS"):
        config.poll_settings()
