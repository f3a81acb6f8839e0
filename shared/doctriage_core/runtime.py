"""Wiring for the Lambda handlers: settings, adapters and the Datalab key, built once per container.

Everything is built on first use, not at import, so a cold start pays only for what a function
touches and tests can set the environment before anything reads it.
"""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities import parameters

from doctriage_core.adapters.aws import DocumentStore, ResultsTable, ReviewQueue, Workflows
from doctriage_core.adapters.datalab import DatalabClient
from doctriage_core.config import ConfigError, Settings, get_settings

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
def workflows() -> Workflows:
    arn = get_settings().state_machine_arn
    if not arn:
        raise ConfigError("environment variable STATE_MACHINE_ARN is not set")
    return Workflows(arn)


_clients: dict[str, DatalabClient] = {}


def datalab_client() -> DatalabClient:
    """A client for the configured API with the current key (cached, refreshed every 5 min)."""
    config = get_settings()
    key = parameters.get_secret(config.datalab_api_key_secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(key, str) or not key.strip():
        raise ConfigError("the Datalab API key secret is empty")
    client = _clients.get(key)
    if client is None:
        for stale in _clients.values():
            stale.close()
        _clients.clear()
        client = _clients[key] = DatalabClient(config.datalab_api_url, key.strip())
    return client


def reset() -> None:
    """Forget every cached setting, adapter and client (the local stack calls this between runs)."""
    get_settings.cache_clear()
    for factory in (document_store, results_table, review_queue, workflows):
        factory.cache_clear()
    for client in _clients.values():
        client.close()
    _clients.clear()
    parameters.clear_caches()
