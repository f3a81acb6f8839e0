"""Wiring for the Lambda handlers: settings, adapters and the Datalab key, built once per container.

Everything is built on first use, not at import, so a cold start pays only for what a function
touches and tests can set the environment before anything reads it. For the same reason the
Datalab client (httpx) is imported on first use: evaluate never calls Datalab and must not load
an HTTP client (submit and poll import it at init). The key comes from Secrets Manager through
powertools' Parameters (cached for 5 minutes), imported on the first call that needs it: its
providers (SSM, AppConfig, DynamoDB) cost about 4 ms of imports (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING

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
# A Lambda container runs one event at a time; the local stack runs handlers on many threads
# at once, and replacing the client under a thread still using it would close its connection.
_clients_lock = threading.Lock()


def datalab_client() -> DatalabClient:
    """A client for the configured API with the current key (cached, refreshed every 5 min)."""
    from aws_lambda_powertools.utilities import parameters

    from doctriage_core.adapters.datalab import DatalabClient

    config = get_settings()
    key = parameters.get_secret(config.datalab_api_key_secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(key, str) or not key.strip():
        raise ConfigError("the Datalab API key secret is empty")
    with _clients_lock:
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
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
