"""Wiring for the Lambda handlers: settings, adapters and the Datalab key, built once per container.

Everything is built on first use, not at import, so a cold start pays only for what a function
touches and tests can set the environment before anything reads it. For the same reason the
Datalab client (httpx) is imported on first use: evaluate never calls Datalab and must not load
an HTTP client (submit and poll import it at init). The key comes from Secrets Manager through
powertools' Parameters (cached for 5 minutes), imported on the first call that needs it: its
providers (SSM, AppConfig, DynamoDB) cost about 4 ms of imports (docs/benchmarks.md).

Each function reads its own settings (``submit_settings``, ``poll_settings``,
``evaluate_settings``) and builds the adapters from them: an adapter is cached per resource name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Generic, TypeVar

from doctriage_core import config
from doctriage_core.adapters.aws import (
    DocumentStore,
    IntakeQueue,
    RequestBudgetTable,
    ResultsTable,
    ReviewQueue,
    TaskTokens,
    UsageTable,
    WebhookTable,
    Workflows,
)
from doctriage_core.config import (
    DatalabSettings,
    SubmitSettings,
    evaluate_settings,
    poll_settings,
    submit_settings,
    webhook_settings,
)
from doctriage_core.errors import ConfigError

if TYPE_CHECKING:
    from doctriage_core.adapters.datalab import DatalabClient
    from doctriage_core.domain.documents import DocumentRef
    from doctriage_core.workflow.submit import SubmitOutcome, Webhook

__all__ = [
    "datalab_client",
    "document_store",
    "evaluate_settings",
    "intake_queue",
    "poll_settings",
    "request_budget",
    "reset",
    "results_table",
    "review_queue",
    "submit_settings",
    "submit_step",
    "task_tokens",
    "usage_table",
    "webhook_secret",
    "webhook_settings",
    "webhook_table",
    "workflows",
]

SECRET_MAX_AGE_SECONDS = 300


_build_lock = threading.Lock()
_Adapter = TypeVar("_Adapter")


class _OnePerName(Generic[_Adapter]):
    """One adapter per resource name, built on first use. Built under a lock: boto3's default
    session is not safe to create clients on from two threads at once (the local stack runs
    handlers on many threads; a Lambda container never does, and pays one uncontended lock)."""

    def __init__(self, adapter: Callable[[str], _Adapter]) -> None:
        self._build = cache(adapter)

    def __call__(self, name: str) -> _Adapter:
        with _build_lock:
            return self._build(name)

    def cache_clear(self) -> None:
        self._build.cache_clear()


document_store = _OnePerName(DocumentStore)
results_table = _OnePerName(ResultsTable)
review_queue = _OnePerName(ReviewQueue)
intake_queue = _OnePerName(IntakeQueue)
workflows = _OnePerName(Workflows)
usage_table = _OnePerName(UsageTable)
request_budget = _OnePerName(RequestBudgetTable)
webhook_table = _OnePerName(WebhookTable)
task_tokens = _OnePerName(lambda _region: TaskTokens())

_clients: dict[tuple[str, str, float], DatalabClient] = {}
# A Lambda container runs one event at a time; the local stack runs handlers on many threads
# at once, and replacing the client under a thread still using it would close its connection.
_clients_lock = threading.Lock()


def datalab_client(settings: DatalabSettings) -> DatalabClient:
    """A client for the configured API with the current key (cached, refreshed every 5 min)."""
    from aws_lambda_powertools.utilities import parameters

    from doctriage_core.adapters.datalab import DatalabClient, check_api_url

    try:
        check_api_url(settings.api_url)  # before the secret is read: a bad URL never gets a key
    except ValueError as exc:
        raise ConfigError(f"{exc}; no document can be sent to Datalab until it is fixed") from exc
    key = parameters.get_secret(settings.api_key_secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(key, str) or not key.strip():
        raise ConfigError("the Datalab API key secret is empty")
    # By everything the client is built from: a new key, URL or timeout gets a new client.
    wanted = (settings.api_url, key, settings.timeout_seconds)
    with _clients_lock:
        client = _clients.get(wanted)
        if client is None:
            for stale in _clients.values():
                stale.close()
            _clients.clear()
            try:
                client = DatalabClient(
                    settings.api_url, key.strip(), timeout=settings.timeout_seconds
                )
            except ValueError as exc:  # the key has characters a header cannot carry
                raise ConfigError(str(exc)) from exc
            _clients[wanted] = client
    return client


def webhook_secret(secret_arn: str) -> str:
    """The webhook secret (cached 5 min, as the key): "" or ``unset`` means webhooks are off."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE_SECONDS)
    return value if isinstance(value, str) else ""


def submit_step(settings: SubmitSettings) -> Callable[[DocumentRef, bool], SubmitOutcome]:
    """workflow.submit.submit_upload with submit's adapters: (document, last_delivery)."""
    from doctriage_core.workflow.submit import submit_upload

    def step(document: DocumentRef, last_delivery: bool) -> SubmitOutcome:
        return submit_upload(
            document,
            last_delivery=last_delivery,
            store=document_store(settings.documents_bucket),
            datalab=lambda: datalab_client(settings.datalab),
            results=results_table(settings.results_table),
            review_queue=review_queue(settings.review_queue_url),
            workflows=workflows(settings.state_machine_arn),
            spending=usage_table(settings.usage_table),
            requests=request_budget(settings.usage_table),
            webhook=_submit_webhook(settings),
            settings=settings,
        )

    return step


def _submit_webhook(settings: SubmitSettings) -> Callable[[], Webhook | None]:
    """What submit needs to ask for a webhook, or None while the secret is unset (read per
    document, so putting Datalab's secret in turns webhooks on within the cache's 5 minutes)."""
    from doctriage_core.workflow.submit import Webhook
    from doctriage_core.workflow.webhook import webhook_secret_set

    def current() -> Webhook | None:
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        hook = settings.webhook
        if hook is None:
            return None
        try:
            secret = webhook_secret(hook.secret_arn)
        except GetParameterError:  # an optimisation only: without it the documents are polled
            return None
        if not webhook_secret_set(secret):
            return None
        return Webhook(url=hook.url, arrivals=webhook_table(hook.table))

    return current


def reset() -> None:
    """Forget every cached setting, adapter and client (the local stack calls this between runs)."""
    config.clear()
    for factory in (
        document_store,
        results_table,
        review_queue,
        intake_queue,
        workflows,
        usage_table,
        request_budget,
        webhook_table,
        task_tokens,
    ):
        factory.cache_clear()
    for client in _clients.values():
        client.close()
    _clients.clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
