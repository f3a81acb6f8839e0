"""Every exception the workflow raises on purpose.

Step Functions matches a Lambda error by the exception's *class name* (the runtime reports it as
``errorType``), never by its base class, so the ASL lists these names one by one and a test checks
that each name there exists here and that every transient one is retried.

Permanent errors carry a short ``reason`` slug: it becomes the record's flag
``extraction_failed:<reason>``.

The registries below are derived from the class hierarchy of this module when it is imported,
never listed by hand: a new subclass of :class:`TransientError` written here is in
``TRANSIENT_ERRORS``, and the static ASL test (tests/statemachine/) then fails until the state
machine retries it too. (A subclass defined elsewhere, later, is not: keep them all here.)
"""

from __future__ import annotations


class DoctriageError(Exception):
    """Base of all our document errors: each names why one document failed."""

    reason = "internal_error"
    transient = False


# --- transient: the state machine retries these with backoff and jitter --------------------------


class TransientError(DoctriageError):
    transient = True
    reason = "datalab_unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatalabRateLimited(TransientError):
    """429: over the per-minute or concurrent request limit."""

    reason = "rate_limited"


class DatalabServerError(TransientError):
    """500, 502, 503, 504 or 529 (overloaded)."""

    reason = "datalab_server_error"


class DatalabUnreachable(TransientError):
    """Connection refused or reset, DNS failure, read or connect timeout."""

    reason = "datalab_unreachable"


class S3Unavailable(TransientError):
    """S3 throttled us (SlowDown, 503), failed on its side (500, InternalError), timed out
    (RequestTimeout, a read or connect timeout), could not be reached, or saw our clock skewed."""

    reason = "s3_unavailable"


class AwsUnavailable(TransientError):
    """DynamoDB, SQS or Step Functions throttled us or failed on their side after botocore's own
    retries (ThrottlingException, ProvisionedThroughputExceeded, 5xx), or could not be reached."""

    reason = "aws_unavailable"


# --- permanent: the failure path records the document as failed ---------------------------------


class PermanentError(DoctriageError):
    reason = "internal_error"


class DatalabAuthError(PermanentError):
    """401 / 403: the API key is wrong or the subscription is inactive."""

    reason = "datalab_auth"


class DatalabRequestRejected(PermanentError):
    """400 / 413 / 422: Datalab refused the request itself (file type, size, schema)."""

    reason = "datalab_rejected"


class DatalabResultExpired(PermanentError):
    """404 on poll: Datalab no longer knows the request (results expire about an hour after)."""

    reason = "result_expired"


class DatalabExtractionFailed(PermanentError):
    """Status ``failed``, or ``complete`` with ``success: false``."""

    reason = "datalab_failed"


class DatalabPageRateLimited(DatalabExtractionFailed):
    """``complete`` with ``success: false`` and "Page rate limit exceeded...": a throttle.

    Datalab enforces its pages-in-flight team limit while processing, not at submission, so the
    job ends ``complete`` without success. The poll step handles it by resubmitting the document
    after a backoff (bounded by the processing deadline); it never reaches the state machine.
    It is listed with the permanent errors so that the state machine never retries it: a retried
    poll would only re-read the same throttled job.
    """

    reason = "page_rate_limited"


class DatalabMalformedResponse(PermanentError):
    """A response we cannot read: not JSON, missing fields, or unparsable extraction JSON."""

    reason = "malformed_result"


class UntrustedCheckUrl(PermanentError):
    """A ``request_check_url`` on another host or scheme than the configured API's.

    The key stays home: no request is sent.
    """

    reason = "untrusted_check_url"


class DeadlineExceeded(PermanentError):
    """Datalab did not finish processing before the processing deadline."""

    reason = "timeout"


class InvalidDocument(PermanentError):
    """The uploaded object cannot be sent: empty, too large, unsupported type, bad key, gone."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SchemaNotFound(PermanentError):
    """No ``schemas/<doc_type>.json`` in the bucket."""

    reason = "schema_missing"


class SchemaInvalid(PermanentError):
    """The schema is not valid JSON, or not a JSON Schema object with ``properties``."""

    reason = "schema_invalid"


class S3AccessDenied(PermanentError):
    """403 AccessDenied (HEAD: a bare 403 Forbidden): S3 refused to say, let alone serve.

    Without s3:ListBucket, S3 answers 403 rather than 404 for a key that does not exist, so the
    object may be gone as well as the role short of s3:GetObject.
    """

    reason = "access_denied"


class S3RequestFailed(PermanentError):
    """Any other S3 error: the same request would fail the same way again."""

    reason = "s3_error"


class Misconfigured(PermanentError):
    """A setting every document needs is unusable (a :class:`ConfigError` met in submit, e.g. a
    DATALAB_API_URL that is not https): recorded as failed with the reason, never left to cycle
    through the intake queue's deliveries into the DLQ. Reprocess them once the setting is fixed.
    """

    reason = "configuration"


class InvalidThreshold(PermanentError):
    """A review threshold that is not a number in [0, 1], or an upload's below the stack minimum."""

    reason = "invalid_threshold"


# --- not a document's failure: raised to the Lambda runtime, never recorded as a reason ---------


class ConfigError(RuntimeError):
    """The function is deployed with a missing or invalid setting: an operator must fix it.

    Not a DoctriageError on purpose: it names no document. Raised before any document is in
    hand (a missing table or queue name), nothing can be recorded and the invocation fails. Met
    by a document in submit (the Datalab URL or key unusable), the document is recorded as failed
    with reason ``configuration`` (:class:`Misconfigured`); in the state machine the catch-all
    records ``configuration`` too.
    """


class MalformedMessage(ValueError):
    """An intake message that is not an S3 event notification: no retry can fix it (to the DLQ)."""


class HeldForBudget(RuntimeError):
    """The spend guard (DailyPageBudget, MonthlyBudgetCents) holds the upload: nothing is sent.

    Not a failure and never recorded: intake keeps the message on the intake queue and looks
    again after ``retry_after`` seconds, however long the budget stays spent.
    """

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WaitingForRequests(HeldForBudget):
    """The shared request budget (DatalabRequestsPerMinute) is used up for this moment: the
    upload waits on the intake queue for the next window, as a spent budget holds it, but it is
    no alarm: it is how a burst queues instead of provoking 429s."""


class WebhookArrivedFirst(RuntimeError):
    """Not a failure: Datalab's webhook for the request came before the workflow began waiting
    for it. The state machine catches it by name and goes straight on to the score polls."""


_BASES = (DoctriageError, TransientError, PermanentError)


def _concrete(base: type[DoctriageError]) -> tuple[type[DoctriageError], ...]:
    """Every subclass of ``base`` at any depth, bases excluded, in definition order."""
    found: list[type[DoctriageError]] = []
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found and cls not in _BASES:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return tuple(found)


TRANSIENT_ERRORS: tuple[type[DoctriageError], ...] = _concrete(TransientError)
PERMANENT_ERRORS: tuple[type[DoctriageError], ...] = _concrete(PermanentError)
# Errors for the operator, the DLQ or the state machine's routing, not a document's state: the
# third and last registry.
OPERATIONAL_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    MalformedMessage,
    HeldForBudget,
    WaitingForRequests,
    WebhookArrivedFirst,
)
