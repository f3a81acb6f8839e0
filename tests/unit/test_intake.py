"""workflow/intake.py with fakes: what a message is, the batch throttle, back-off, last delivery."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from doctriage_core import errors
from doctriage_core.config import SubmitSettings
from doctriage_core.domain.documents import DocumentRef
from doctriage_core.domain.poll_policy import redelivery_delay_seconds
from doctriage_core.domain.timeline import iso_utc
from doctriage_core.workflow.intake import Intake, is_last_delivery, parse_message
from tests.unit.test_workflow import make_settings

BUCKET = "docs-bucket"


def _record(key: str, event_name: str | None = "ObjectCreated:Put") -> dict[str, Any]:
    record: dict[str, Any] = {
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "eTag": "e", "size": 3}}
    }
    if event_name is not None:
        record["eventName"] = event_name
    return record


def _body(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []
        self.correlation: list[str | None] = []

    def info(self, msg: str, **fields: Any) -> None:
        self.lines.append(("info", msg, fields))

    def warning(self, msg: str, **fields: Any) -> None:
        self.lines.append(("warning", msg, fields))

    def error(self, msg: str, **fields: Any) -> None:
        self.lines.append(("error", msg, fields))

    def set_correlation_id(self, value: str | None) -> None:
        self.correlation.append(value)


class FakeRedeliveries:
    def __init__(self) -> None:
        self.delays: list[tuple[str, int]] = []
        self.sent: list[tuple[str, int, str]] = []

    def delay(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))

    def send_again(self, body: str, *, delay_seconds: int, first_sent: str) -> None:
        self.sent.append((body, delay_seconds, first_sent))


class FakeSubmit:
    """Answers from a script: an outcome name, or an exception to raise."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[DocumentRef, bool]] = []

    def __call__(self, document: DocumentRef, last_delivery: bool) -> Mapping[str, Any]:
        self.calls.append((document, last_delivery))
        answer = self.answers.pop(0) if self.answers else "started"
        if isinstance(answer, Exception):
            raise answer
        return {"outcome": answer, "reason": None}


def _intake(submit: FakeSubmit, **settings: Any) -> tuple[Intake, FakeRedeliveries, list[str]]:
    redeliveries, counted = FakeRedeliveries(), list[str]()
    intake = Intake(
        submit=submit,
        redeliveries=redeliveries,
        settings=make_settings(SubmitSettings, **settings),
        log=FakeLog(),
        count=counted.append,
    )
    return intake, redeliveries, counted


def test_an_upload_is_submitted_and_counted() -> None:
    submit = FakeSubmit("started")
    intake, redeliveries, counted = _intake(submit)
    intake.handle(_body(_record("incoming/invoice/a+b.pdf")), receive_count=1, receipt_handle="r")
    assert [document.key for document, _ in submit.calls] == ["incoming/invoice/a b.pdf"]
    assert counted == ["DocumentsSubmitted"]
    assert redeliveries.delays == []


def test_other_events_and_test_events_are_skipped_not_submitted() -> None:
    submit = FakeSubmit()
    intake, _, counted = _intake(submit)
    intake.handle(
        _body(_record("incoming/invoice/x.pdf", "ObjectRemoved:Delete")),
        receive_count=1,
        receipt_handle="r",
    )
    intake.handle(json.dumps({"Event": "s3:TestEvent"}), receive_count=1, receipt_handle="r")
    assert submit.calls == []
    assert counted == ["NonUploadEventsSkipped", "TestEventsSkipped"]


def test_a_folder_marker_is_skipped_with_a_log_line_and_a_metric() -> None:
    submit = FakeSubmit()
    intake, redeliveries, counted = _intake(submit)
    marker = _record("incoming/invoice/2027/")
    marker["s3"]["object"]["size"] = 0
    log = intake._log
    intake.handle(
        _body(marker, _record("incoming/invoice/2027/a.pdf")), receive_count=1, receipt_handle="r"
    )
    assert [document.key for document, _ in submit.calls] == ["incoming/invoice/2027/a.pdf"]
    assert counted == ["FolderMarkersSkipped", "DocumentsSubmitted"]
    assert redeliveries.delays == []
    assert isinstance(log, FakeLog)
    skipped = [line for line in log.lines if "folder marker" in line[1]]
    assert skipped == [
        ("info", "skipping folder marker (not a document)", {"key": "incoming/invoice/2027/"})
    ]


def test_a_key_ending_with_a_slash_that_has_bytes_is_still_an_upload() -> None:
    submit = FakeSubmit("failed")
    intake, _, counted = _intake(submit)
    intake.handle(_body(_record("incoming/invoice/odd/")), receive_count=1, receipt_handle="r")
    assert len(submit.calls) == 1  # recorded as failed by submit (a bad key), never lost
    assert counted == ["DocumentsRejected"]


def test_a_record_without_an_event_name_is_an_upload() -> None:
    assert len(parse_message(_body(_record("incoming/invoice/a.pdf", None))).uploads) == 1


@pytest.mark.parametrize("body", ["not json", "[]", "{}", '{"Records": [{"s3": {}}]}'])
def test_a_malformed_message_goes_to_the_dlq_at_once(body: str) -> None:
    intake, redeliveries, _ = _intake(FakeSubmit())
    with pytest.raises(errors.MalformedMessage):
        intake.handle(body, receive_count=1, receipt_handle="r")
    assert redeliveries.delays == [("r", 0)]


@pytest.mark.parametrize(
    ("receive_count", "max_receives", "last"),
    [(1, 3, False), (2, 3, False), (3, 3, True), (9, 3, True)],
)
def test_the_last_delivery_is_the_queues_max_receive_count(
    receive_count: int, max_receives: int, last: bool
) -> None:
    assert is_last_delivery(receive_count, max_receives) is last
    submit = FakeSubmit()
    # retry window 0: the last delivery gives up at once (the window has its own tests)
    intake, _, _ = _intake(submit, max_receives=max_receives, retry_window_seconds=0)
    intake.handle(
        _body(_record("incoming/invoice/a.pdf")), receive_count=receive_count, receipt_handle="r"
    )
    assert submit.calls[0][1] is last


def test_a_transient_error_backs_off_in_pipeline_time_and_raises() -> None:
    submit = FakeSubmit(errors.DatalabServerError("503"))
    intake, redeliveries, counted = _intake(submit, time_scale=0.1)
    with pytest.raises(errors.DatalabServerError):
        intake.handle(_body(_record("incoming/invoice/a.pdf")), receive_count=2, receipt_handle="r")
    # 30-60 s of pipeline time (the second delivery's jittered back-off) is 3-6 s of wall time
    [(handle, seconds)] = redeliveries.delays
    assert handle == "r"
    assert 3 <= seconds <= 6
    assert counted == []


def test_after_a_429_the_rest_of_the_batch_waits_without_asking() -> None:
    submit = FakeSubmit(errors.DatalabRateLimited("429", retry_after=40))
    intake, redeliveries, _ = _intake(submit)
    for handle in ("r1", "r2"):
        with pytest.raises(errors.DatalabRateLimited):
            intake.handle(
                _body(_record(f"incoming/invoice/{handle}.pdf")),
                receive_count=1,
                receipt_handle=handle,
            )
    assert len(submit.calls) == 1  # the second never reached Datalab
    delay = redelivery_delay_seconds(1, 40)
    assert redeliveries.delays == [("r1", round(delay)), ("r2", round(delay))]


def test_on_its_last_delivery_a_throttled_batch_still_submits() -> None:
    submit = FakeSubmit(errors.DatalabRateLimited("429", retry_after=40), "failed")
    intake, _, counted = _intake(submit, max_receives=3, retry_window_seconds=0)
    with pytest.raises(errors.DatalabRateLimited):
        intake.handle(
            _body(_record("incoming/invoice/a.pdf")), receive_count=1, receipt_handle="r1"
        )
    intake.handle(_body(_record("incoming/invoice/b.pdf")), receive_count=3, receipt_handle="r2")
    assert [last for _, last in submit.calls] == [False, True]
    assert counted == ["DocumentsRejected"]


def test_each_invocation_has_its_own_throttle() -> None:
    first, _, _ = _intake(FakeSubmit(errors.DatalabRateLimited("429", retry_after=40)))
    with pytest.raises(errors.DatalabRateLimited):
        first.handle(_body(_record("incoming/invoice/a.pdf")), receive_count=1, receipt_handle="r")
    submit = FakeSubmit("started")
    second, _, _ = _intake(submit)
    second.handle(_body(_record("incoming/invoice/b.pdf")), receive_count=1, receipt_handle="r")
    assert len(submit.calls) == 1


T_FIRST = "2026-12-01T10:00:00.000Z"
T_FIRST_EPOCH = 1796119200.0  # T_FIRST as a timestamp


def test_out_of_deliveries_within_the_window_the_upload_is_sent_again_not_failed() -> None:
    # GIVEN a throttled upload on the queue's last delivery, an hour after its first copy
    body = _body(_record("incoming/invoice/a.pdf"), _record("incoming/invoice/b.pdf"))
    submit = FakeSubmit(errors.DatalabRateLimited("429"), errors.DatalabServerError("503"))
    intake, redeliveries, counted = _intake(submit, max_receives=3)
    # WHEN it is handled THEN nothing raises (the message is done with), nothing is recorded as
    # failed (submit was told not to give up), and the message is sent again once, fresh
    intake.handle(
        body,
        receive_count=3,
        receipt_handle="r",
        first_sent=T_FIRST,
        now=lambda: T_FIRST_EPOCH + 3600,
    )
    assert [give_up for _, give_up in submit.calls] == [False, False]
    [(sent_body, delay, first_sent)] = redeliveries.sent
    assert (sent_body, first_sent) == (body, T_FIRST)  # the window counts from the first copy
    assert 1 <= delay <= 900
    assert counted == ["UploadsSentAgain"]
    assert redeliveries.delays == []


def test_past_the_window_the_last_delivery_records_the_failure() -> None:
    submit = FakeSubmit("failed")
    intake, redeliveries, counted = _intake(submit, max_receives=3, retry_window_seconds=86400)
    intake.handle(
        _body(_record("incoming/invoice/a.pdf")),
        receive_count=3,
        receipt_handle="r",
        first_sent=T_FIRST,
        now=lambda: T_FIRST_EPOCH + 86400 + 1,
    )
    assert [give_up for _, give_up in submit.calls] == [True]
    assert redeliveries.sent == []
    assert counted == ["DocumentsRejected"]


def test_before_the_last_delivery_nothing_is_sent_again() -> None:
    submit = FakeSubmit(errors.DatalabRateLimited("429"))
    intake, redeliveries, _ = _intake(submit, max_receives=3)
    with pytest.raises(errors.DatalabRateLimited):
        intake.handle(_body(_record("incoming/invoice/a.pdf")), receive_count=2, receipt_handle="r")
    assert redeliveries.sent == []
    assert len(redeliveries.delays) == 1


def test_a_sent_again_message_carries_its_first_copys_time_through_lambdas_event() -> None:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    # GIVEN a re-sent message, as Lambda's event gives it (camelCase message attributes)
    record = SQSRecord(
        {
            "messageId": "m",
            "receiptHandle": "r",
            "body": _body(_record("incoming/invoice/a.pdf")),
            "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1796122800000"},
            "messageAttributes": {
                "doctriage-first-sent": {"stringValue": T_FIRST, "dataType": "String"}
            },
        }
    )
    submit = FakeSubmit(errors.DatalabRateLimited("429"))
    intake, redeliveries, _ = _intake(submit, max_receives=3)
    # WHEN it runs out of deliveries again THEN the window still counts from the first copy
    intake.handle_record(record)
    [(_, _, first_sent)] = redeliveries.sent
    assert first_sent == T_FIRST


# ------------------------------------------------------------------ spend guard


def _held() -> errors.HeldForBudget:
    return errors.HeldForBudget("today's Datalab pages are spent", retry_after=600)


def test_an_upload_held_for_the_budget_waits_on_the_queue_and_is_not_failed() -> None:
    submit = FakeSubmit(_held())
    intake, redeliveries, counted = _intake(submit, max_receives=3)
    with pytest.raises(errors.HeldForBudget):
        intake.handle(_body(_record("incoming/invoice/a.pdf")), receive_count=1, receipt_handle="r")
    assert redeliveries.delays == [("r", 600)]  # looks again in 10 min, not the visibility timeout
    assert redeliveries.sent == []
    assert counted == ["UploadsHeldForBudget"]


def test_held_past_the_retry_window_on_its_last_delivery_it_is_sent_again_never_failed() -> None:
    # GIVEN an upload held for days: its last delivery, long past the retry window
    submit = FakeSubmit(_held())
    intake, redeliveries, counted = _intake(submit, max_receives=3, retry_window_seconds=3600)
    later = T_FIRST_EPOCH + 5 * 86400
    # WHEN it is handled THEN it is not recorded (no exception, no failure), but sent again with
    # a fresh first-sent time: waiting for the budget does not use up the retry window
    intake.handle(
        _body(_record("incoming/invoice/a.pdf")),
        receive_count=3,
        receipt_handle="r",
        first_sent=T_FIRST,
        now=lambda: later,
    )
    [(_, delay, first_sent)] = redeliveries.sent
    assert delay == 600
    assert first_sent == iso_utc(later)
    assert counted == ["UploadsHeldForBudget"]
