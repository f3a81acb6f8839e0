"""Wiring for the Lambda handlers: settings, adapters and the Datalab key, built once per container.

Everything is built on first use, not at import, so a cold start pays only for what a function
touches and tests can set the environment before anything reads it. For the same reason the
Datalab client (httpx) is imported on first use: evaluate never calls Datalab and must not load
an HTTP client (submit and poll import it at init). The key is one GetSecretValue call cached
here, rather than powertools' parameters utility, whose providers (SSM, AppConfig, DynamoDB)
cost submit and poll about 4 ms of imports at every cold start (docs/benchmarks.md).
"""

from __future__ import annotations

import time
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

from doctriage_core.adapters.aws import (
    DocumentStore,
    IntakeQueue,
    ResultsTable,
    ReviewQueue,
    Workflows,
)
from doctriage_core.config import ConfigError, Settings, get_settings

if TYPE_CHECKING:
    from doctriage_core.adapters.datalab import DatalabClient

SECRET_MAX_AGE_SECONDS = 300


def settings() -> Settings:
    return get_settings()


@cache
def document_store() -> DocumentStore:
    return DocumentStore(get_settings().documents_bucket)


@cache
def results_table() -> ResultsTable:
    return ResultsTable(get_settings().results_table)


@cache
def review_queue() -> ReviewQueue:
    return ReviewQueue(get_settings().review_queue_url)


@cache
def intake_queue() -> IntakeQueue:
    return IntakeQueue(get_settings().intake_queue_url or "")


@cache
def workflows() -> Workflows:
    arn = get_settings().state_machine_arn
    if not arn:
        raise ConfigError("environment variable STATE_MACHINE_ARN is not set")
    return Workflows(arn)


_clients: dict[str, DatalabClient] = {}
_secrets: dict[str, tuple[float, Any]] = {}  # secret id -> (monotonic time fetched, value)


@cache
def _secrets_manager() -> Any:
    return boto3.client("secretsmanager")


def _secret(secret_id: str) -> Any:
    """The secret's SecretString (None if it has none), fetched at most every 5 minutes."""
    now = time.monotonic()
    cached = _secrets.get(secret_id)
    if cached is None or now - cached[0] >= SECRET_MAX_AGE_SECONDS:
        response = _secrets_manager().get_secret_value(SecretId=secret_id)
        cached = _secrets[secret_id] = (now, response.get("SecretString"))
    return cached[1]


def datalab_client() -> DatalabClient:
    """A client for the configured API with the current key (cached, refreshed every 5 min)."""
    from doctriage_core.adapters.datalab import DatalabClient

    config = get_settings()
    key = _secret(config.datalab_api_key_secret_arn)
    if not isinstance(key, str) or not key.strip():
        raise ConfigError("the Datalab API key secret is empty")
    client = _clients.get(key)
    if client is None:
        for stale in _clients.values():
            stale.close()
        _clients.clear()
        client = _clients[key] = DatalabClient(
            config.datalab_api_url, key.strip(), timeout=config.datalab_timeout_seconds
        )
    return client


def reset() -> None:
    """Forget every cached setting, adapter and client (the local stack calls this between runs)."""
    get_settings.cache_clear()
    for factory in (document_store, results_table, review_queue, intake_queue, workflows):
        factory.cache_clear()
    for client in _clients.values():
        client.close()
    _clients.clear()
    _secrets.clear()
    _secrets_manager.cache_clear()
