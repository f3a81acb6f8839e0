"""Reprocessing failed documents: a new version of the upload goes through the pipeline again."""

from __future__ import annotations

from doctriage_local.emulator import FaultRule
from doctriage_local.paths import SAMPLES
from doctriage_local.reprocess import failed_records, reprocess
from tests.contracts import assert_valid_record
from tests.integration.helpers import process

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


def test_a_failed_document_is_reprocessed_once_into_a_new_record(stack, emulator):
    emulator.add_fault(FaultRule(match="flaky-datalab.pdf", kind="failed"))
    failed = process(
        stack,
        ACME.read_bytes(),
        "invoice",
        name="flaky-datalab.pdf",
        metadata={"human-review-threshold": "0.5"},
    )
    assert failed["status"] == "failed"
    emulator.clear_faults()  # Datalab is healthy again
    dynamodb, s3 = stack.client("dynamodb"), stack.client("s3")
    table = stack.physical["ResultsTable"]

    candidates = [
        r
        for r in failed_records(dynamodb, table, reason="datalab_failed")
        if r["document_id"] == failed["document_id"]
    ]
    assert len(candidates) == 1
    outcome = reprocess(candidates[0], s3=s3, dynamodb=dynamodb, table=table)

    assert outcome.new_document_id
    assert outcome.new_document_id != failed["document_id"]
    records = stack.wait_for_records([outcome.new_document_id], timeout=60)
    new = records[outcome.new_document_id]
    assert_valid_record(new)
    assert new["status"] == "complete"
    assert new["source"]["key"] == failed["source"]["key"]
    assert new["human_review_threshold"] == 0.5  # the upload's metadata came along
    assert new["source"]["reprocess_of"] == failed["document_id"]  # ... and names what it redoes
    assert "reprocess_of" not in failed["source"]
    old = stack.record(failed["document_id"])
    assert old["review_status"] == "needs_review"  # history is kept, review_status unchanged
    assert old["reprocessed_as"] == outcome.new_document_id
    # Running it again finds nothing left to do for this document.
    assert failed["document_id"] not in {r["document_id"] for r in failed_records(dynamodb, table)}
    again = reprocess(candidates[0], s3=s3, dynamodb=dynamodb, table=table)
    assert again.new_document_id is None
    assert again.note == "already reprocessed"


def test_reason_filter_and_dry_run(stack, emulator):
    emulator.add_fault(FaultRule(match="expired-once.pdf", kind="expire"))
    failed = process(stack, ACME.read_bytes(), "invoice", name="expired-once.pdf")
    dynamodb, table = stack.client("dynamodb"), stack.physical["ResultsTable"]
    ids = {r["document_id"] for r in failed_records(dynamodb, table, reason="datalab_failed")}
    assert failed["document_id"] not in ids
    record = next(
        r
        for r in failed_records(dynamodb, table, reason="result_expired")
        if r["document_id"] == failed["document_id"]
    )
    outcome = reprocess(record, s3=stack.client("s3"), dynamodb=dynamodb, table=table, dry_run=True)
    assert outcome.new_document_id is None
    assert "reprocessed_as" not in stack.record(failed["document_id"])


def test_the_command_skips_permanent_failures_unless_asked_and_dry_run_says_why(
    stack, monkeypatch, capsys
):
    from doctriage_local.cli import reprocess as command
    from doctriage_local.cli.main import main

    empty = process(stack, b"", "invoice", name="empty-for-reprocess.pdf")
    assert empty["flags"] == ["extraction_failed:empty_file"]
    clients = {service: stack.client(service) for service in ("dynamodb", "s3")}
    monkeypatch.setattr(command.boto3, "client", lambda service, **_: clients[service])
    table = stack.physical["ResultsTable"]

    def line_for(*argv: str) -> str:
        assert main(["reprocess", "--table", table, "--reason", "empty_file", *argv]) == 0
        out = capsys.readouterr().out
        [line] = [line for line in out.splitlines() if line.startswith(empty["document_id"])]
        return line

    assert line_for("--dry-run").endswith(
        "would skip (empty_file: permanent, the file is empty; --include-permanent sends it anyway)"
    )
    assert line_for().endswith(
        "skipped (empty_file: permanent, the file is empty; --include-permanent sends it anyway)"
    )
    assert "reprocessed_as" not in stack.record(empty["document_id"])  # nothing was copied
    assert "would reprocess (empty_file: permanent" in line_for("--include-permanent", "--dry-run")
    sent = line_for("--include-permanent").rsplit("->  ", 1)[1]
    assert sent.startswith("doc-")
    assert stack.record(empty["document_id"])["reprocessed_as"] == sent
