"""S3 errors as AWS really answers them, through DocumentStore and on into submit_upload.

The S3 client is real boto3 with botocore's Stubber answering what S3 documents: a GET of a key
the role may not list is ``403 AccessDenied`` (a HEAD is a bare ``403`` / ``Forbidden``: HEAD
responses have no body), throttling is ``503 SlowDown``, and so on. moto answers 404 where AWS
answers 403, so only a stub shows what a deployed submit sees.
"""

from __future__ import annotations

import functools
import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.response import StreamingBody
from botocore.stub import Stubber

from doctriage_core import errors
from doctriage_core.adapters.aws import DocumentStore
from doctriage_core.config import SubmitSettings
from doctriage_core.workflow.intake import Upload
from doctriage_core.workflow.submit import submit_upload
from tests.unit.test_workflow import (
    BUCKET,
    PDF,
    SCHEMA,
    T0,
    Clock,
    Env,
    FakeDatalab,
    FakeQueue,
    FakeResults,
    FakeWorkflows,
    make_settings,
)
from tests.unit.test_workflow import _assert_failed as assert_failed

KEY = "incoming/invoice/a.pdf"
URI = f"s3://{BUCKET}/{KEY}"
SCHEMA_KEY = "schemas/invoice.json"


def _client(**config: Any) -> Any:
    return boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.fixture
def s3() -> Iterator[tuple[DocumentStore, Stubber]]:
    client = _client()
    with Stubber(client) as stubber:
        yield DocumentStore(BUCKET, client), stubber
        stubber.assert_no_pending_responses()


def _error(stubber: Stubber, method: str, code: str, status: int, message: str = "") -> None:
    stubber.add_client_error(
        method, service_error_code=code, service_message=message, http_status_code=status
    )


def _call(store: DocumentStore, operation: str, key: str = KEY) -> Any:
    """One DocumentStore read, by the S3 operation it makes."""
    if operation == "head_object":
        return store.head(key, "v-1")
    if key == SCHEMA_KEY:
        return store.read_schema(key)
    return store.open(key, "v-1")


def _read_all(body: Any) -> None:
    while body.read(64 * 1024):
        pass


# ------------------------------------------------------------------ the adapter


def test_a_head_answered_403_is_access_denied_naming_the_uri_and_the_permissions(s3) -> None:
    store, stubber = s3
    # GIVEN S3's answer to a HEAD the role may not make (or of a key it may not list)
    _error(stubber, "head_object", "403", 403, "Forbidden")
    # WHEN submit asks for the object's size
    with pytest.raises(errors.S3AccessDenied) as caught:
        store.head(KEY, "v-1")
    # THEN the error is permanent and says what to check
    assert caught.value.reason == "access_denied"
    assert not caught.value.transient
    message = str(caught.value)
    assert URI in message
    assert "may be missing" in message
    assert "s3:GetObject" in message
    assert "s3:ListBucket" in message


@pytest.mark.parametrize("method", ["open", "read_schema", "read"])
def test_a_get_answered_access_denied_is_access_denied(s3, method: str) -> None:
    store, stubber = s3
    _error(stubber, "get_object", "AccessDenied", 403, "Access Denied")
    key = SCHEMA_KEY if method == "read_schema" else KEY
    call = functools.partial(store.open, version_id=None) if method == "open" else None
    call = call or getattr(store, method)
    with pytest.raises(errors.S3AccessDenied) as caught:
        call(key)
    assert f"s3://{BUCKET}/{key}" in str(caught.value)
    assert "AccessDenied" in str(caught.value)


def test_a_put_answered_access_denied_is_access_denied(s3) -> None:
    store, stubber = s3
    _error(stubber, "put_object", "AccessDenied", 403, "Access Denied")
    with pytest.raises(errors.S3AccessDenied):
        store.put_json("results/doc-1/datalab-result.json", b"{}")


@pytest.mark.parametrize(
    ("method", "code", "status"),
    [
        ("head_object", "404", 404),
        ("head_object", "NotFound", 404),
        ("get_object", "NoSuchKey", 404),
        ("get_object", "NoSuchVersion", 404),
    ],
)
def test_a_missing_upload_is_object_missing(s3, method: str, code: str, status: int) -> None:
    store, stubber = s3
    _error(stubber, method, code, status)
    with pytest.raises(errors.InvalidDocument) as caught:
        _call(store, method)
    assert caught.value.reason == "object_missing"
    assert URI in str(caught.value)


def test_a_missing_schema_is_schema_not_found(s3) -> None:
    store, stubber = s3
    _error(stubber, "get_object", "NoSuchKey", 404, "The specified key does not exist.")
    with pytest.raises(errors.SchemaNotFound) as caught:
        store.read_schema(SCHEMA_KEY)
    assert f"s3://{BUCKET}/{SCHEMA_KEY}" in str(caught.value)


TRANSIENT = [
    ("get_object", "SlowDown", 503),
    ("get_object", "ServiceUnavailable", 503),
    ("get_object", "InternalError", 500),
    ("get_object", "RequestTimeout", 400),
    ("get_object", "RequestTimeTooSkewed", 403),
    ("get_object", "OperationAborted", 409),
    ("get_object", "SomethingNew", 502),  # any 5xx, whatever its code
    ("head_object", "503", 503),
    ("head_object", "500", 500),
]


@pytest.mark.parametrize(("method", "code", "status"), TRANSIENT)
def test_throttling_and_server_errors_are_transient(
    s3, method: str, code: str, status: int
) -> None:
    store, stubber = s3
    _error(stubber, method, code, status)
    with pytest.raises(errors.S3Unavailable) as caught:
        _call(store, method)
    assert caught.value.transient
    assert caught.value.reason == "s3_unavailable"
    assert URI in str(caught.value)


@pytest.mark.parametrize(
    ("code", "status"),
    [("InvalidObjectState", 403), ("InvalidRequest", 400), ("KMS.DisabledException", 400)],
)
def test_any_other_s3_error_is_permanent(s3, code: str, status: int) -> None:
    store, stubber = s3
    _error(stubber, "get_object", code, status)
    with pytest.raises(errors.S3RequestFailed) as caught:
        store.open(KEY, None)
    assert not caught.value.transient
    assert caught.value.reason == "s3_error"
    assert code in str(caught.value)


def test_s3_that_cannot_be_reached_is_transient() -> None:
    # A port nothing listens on: connection refused, a real botocore EndpointConnectionError.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(errors.S3Unavailable) as caught:
        DocumentStore(BUCKET, client).head(KEY, None)
    assert "EndpointConnectionError" in str(caught.value)


def test_a_body_cut_short_while_streaming_is_transient(s3) -> None:
    store, stubber = s3
    # GIVEN a GET whose body ends before its Content-Length (the connection dropped)
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(b"%PDF-1.7 and then"), 10_000), "ContentLength": 10_000},
    )
    body = store.open(KEY, None)
    # WHEN it is read to the end, THEN the short read is a transient error, not botocore's own
    with pytest.raises(errors.S3Unavailable):
        _read_all(body)


# ------------------------------------------------------------------ submit_upload over it


def _env(store: DocumentStore) -> Env:
    return Env(store, FakeDatalab(), FakeResults(), FakeQueue(), FakeWorkflows())  # type: ignore[arg-type]


def _submit(env: Env, *, receive_count: int = 1) -> Any:
    return submit_upload(
        Upload(bucket=BUCKET, raw_key=KEY, version_id="v-1", etag="etag-1", size=10).document(),
        last_delivery=receive_count >= 3,
        store=env.store,
        datalab=lambda: env.datalab,
        results=env.results,
        review_queue=env.queue,
        workflows=env.workflows,
        settings=make_settings(SubmitSettings),
        now=Clock(T0),
    )


def _head_ok(stubber: Stubber) -> None:
    stubber.add_response(
        "head_object", {"ContentLength": len(PDF), "ETag": '"etag-1"', "VersionId": "v-1"}
    )


def _schema_ok(stubber: Stubber) -> None:
    body = json.dumps(SCHEMA).encode()
    stubber.add_response(
        "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body)), "VersionId": "s-1"}
    )


@pytest.mark.parametrize(
    ("where", "code", "status", "reason", "error_type"),
    [
        ("head", "403", 403, "access_denied", "S3AccessDenied"),
        ("head", "404", 404, "object_missing", "InvalidDocument"),
        ("schema", "AccessDenied", 403, "access_denied", "S3AccessDenied"),
        ("schema", "NoSuchKey", 404, "schema_missing", "SchemaNotFound"),
        ("object", "AccessDenied", 403, "access_denied", "S3AccessDenied"),
        ("object", "InvalidObjectState", 403, "s3_error", "S3RequestFailed"),
    ],
)
def test_a_permanent_s3_error_in_submit_is_a_failed_record(
    s3, where: str, code: str, status: int, reason: str, error_type: str
) -> None:
    store, stubber = s3
    # GIVEN S3 refuses one of submit's three reads for good
    if where == "head":
        _error(stubber, "head_object", code, status)
    else:
        _head_ok(stubber)
        if where == "schema":
            _error(stubber, "get_object", code, status)
        else:
            _schema_ok(stubber)
            _error(stubber, "get_object", code, status)
    # WHEN the first delivery is submitted
    env = _env(store)
    outcome = _submit(env)
    # THEN the document is recorded as failed and queued for review; nothing is raised
    record = assert_failed(env, outcome, reason)
    assert record["error"]["type"] == error_type
    assert env.datalab.submitted == []


@pytest.mark.parametrize("where", ["head", "schema", "object"])
def test_a_transient_s3_error_in_submit_is_retried_then_recorded_on_the_last_delivery(
    s3, where: str
) -> None:
    store, stubber = s3
    env = _env(store)
    for receive_count in (1, 2, 3):
        if where == "head":
            _error(stubber, "head_object", "503", 503)
        else:
            _head_ok(stubber)
            if where != "schema":
                _schema_ok(stubber)
            _error(stubber, "get_object", "SlowDown", 503, "Please reduce your request rate.")
        if receive_count < 3:
            # GIVEN a delivery the queue will redeliver: the error goes back to SQS
            with pytest.raises(errors.S3Unavailable):
                _submit(env, receive_count=receive_count)
            assert env.results.items == {}
            assert env.queue.messages == []
        else:
            # WHEN the last delivery fails the same way, THEN the document is recorded as failed
            outcome = _submit(env, receive_count=receive_count)
            record = assert_failed(env, outcome, "s3_unavailable")
            assert record["error"]["type"] == "S3Unavailable"
    assert env.datalab.submitted == []


def test_a_body_cut_short_while_sent_to_datalab_is_retried(s3) -> None:
    store, stubber = s3
    _head_ok(stubber)
    _schema_ok(stubber)
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(PDF[:100]), len(PDF)), "ContentLength": len(PDF)},
    )
    env = _env(store)
    with pytest.raises(errors.S3Unavailable):
        _submit(env)
    assert env.results.items == {}
