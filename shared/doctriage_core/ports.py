"""Ports: what the workflow steps need from the outside, as Protocols.

adapters/aws.py and adapters/datalab.py implement them; the unit tests implement them in memory.
Nothing here imports boto3 or httpx.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Literal, NamedTuple, Protocol


class ObjectInfoLike(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def etag(self) -> str | None: ...
    @property
    def version_id(self) -> str | None: ...
    @property
    def metadata(self) -> dict[str, str]: ...


class Store(Protocol):
    def head(self, key: str, version_id: str | None) -> ObjectInfoLike: ...
    def open(self, key: str, version_id: str | None) -> BinaryIO: ...
    def read_schema(self, key: str, version_id: str | None = None) -> tuple[bytes, str | None]: ...
    def read(self, key: str) -> bytes: ...
    def put_json(self, key: str, body: bytes) -> None: ...


class Results(Protocol):
    def put_once(self, record: dict[str, Any]) -> tuple[bool, dict[str, Any]]: ...
    def get(self, document_id: str) -> dict[str, Any] | None: ...


class Spending(Protocol):
    """What Datalab has been paid, per UTC day and month (``domain/budget.py``'s periods)."""

    def spent(self, day: str, month: str) -> tuple[int, float]: ...  # (pages today, cents)
    def add(self, document_id: str, day: str, month: str, *, pages: int, cents: float) -> None:
        """Count one document once (a repeated call for the same document counts nothing)."""


class RequestBudget(Protocol):
    """The Datalab team's shared request allowance (``domain/request_budget.py``'s windows)."""

    def take(self, key: str, allowance: int, expires_at: int) -> bool: ...


class Queue(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class Redeliveries(Protocol):
    """The intake queue, as submit uses it: when to deliver a message again."""

    def delay(self, receipt_handle: str, seconds: int) -> None: ...
    def send_again(self, body: str, *, delay_seconds: int, first_sent: str) -> None: ...


class Starter(Protocol):
    def exists(self, name: str) -> bool: ...
    def start(self, name: str, state: Any) -> bool: ...


class SubmissionLike(Protocol):
    @property
    def request_id(self) -> str: ...
    @property
    def check_url(self) -> str: ...


class Datalab(Protocol):
    def submit(
        self,
        stream: BinaryIO,
        *,
        filename: str,
        content_type: str,
        page_schema: str,
        size: int | None = None,
        webhook_url: str | None = None,
    ) -> SubmissionLike: ...
    def check(self, check_url: str) -> dict[str, Any]: ...


class Arrival(NamedTuple):
    """A webhook's arrival: the first, a duplicate, or for a request never registered; and the
    waiting task's token ("" when no one waits yet)."""

    kind: Literal["first", "duplicate", "unknown"]
    task_token: str = ""


class WebhookArrivals(Protocol):
    """Per Datalab request: registered at submit, its task token, its webhook's arrival."""

    def register(self, request_id: str, document_id: str) -> None: ...
    def expect(self, request_id: str, task_token: str) -> bool: ...  # False: arrived already
    def arrive(self, request_id: str, at: str) -> Arrival: ...


class TaskTokens(Protocol):
    def succeed(self, task_token: str, output: dict[str, Any]) -> bool: ...  # False: gone
