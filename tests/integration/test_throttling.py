"""Datalab's team limits and result-format variants, end to end through the local stack.

Throttling never fails a document: a burst of long documents over the 5,000-pages-in-flight team
limit ends with every document complete, some of them after a resubmit (``datalab.submissions``).
Null score placeholders and an undocumented ``pending`` status keep the poll waiting; a relative
``request_check_url`` is resolved against the API origin.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

import pytest

from doctriage_local.emulator import DatalabEmulator, FaultRule
from doctriage_local.paths import SAMPLES
from tests.contracts import assert_valid_record
from tests.integration.helpers import process

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"


@pytest.fixture
def long_documents(stack, emulator) -> Iterator[DatalabEmulator]:
    """Files named ``long-*`` claim 2,000 pages against Datalab's default 5,000-page limit.

    At Datalab's 1 s a page such a document would outlast the 30-minute processing deadline
    by itself; 0.05 s a page (102 s of the pipeline's time, 1 s of wall time here) keeps the
    scenario about the limit while ten uploads still overlap.
    """
    config = emulator.config
    saved = (config.claimed_pages, config.processing_seconds_per_page, config.max_pages_in_flight)
    config.claimed_pages = {"long-": 2000}
    config.processing_seconds_per_page = 0.05
    config.max_pages_in_flight = 5000
    yield emulator
    config.claimed_pages, config.processing_seconds_per_page, config.max_pages_in_flight = saved


def test_a_burst_over_the_pages_in_flight_limit_completes_every_document(stack, long_documents):
    # GIVEN 10 documents of 2,000 pages each: only two fit in 5,000 pages in flight
    throttled_before = len(long_documents.stats["page_rate_limited_jobs"])
    uploads = [stack.upload(ACME.read_bytes(), "invoice", name=f"long-{n}.pdf") for n in range(10)]
    ids = [u["document_id"] for u in uploads]
    # WHEN they are all processed
    records = stack.wait_for_records(ids, timeout=120)
    # THEN every one is complete and scored: throttling failed none of them
    assert len(records) == 10, f"{10 - len(records)} documents have no record"
    for record in records.values():
        assert_valid_record(record)
        assert record["status"] == "complete", record["error"]
        assert "scores_unavailable" not in record["flags"]
        assert record["datalab"]["submissions"] >= 1
    submissions = sorted(r["datalab"]["submissions"] for r in records.values())
    assert submissions[-1] > 1, submissions  # the limit really bit, and was waited out
    # every throttled job's document was resubmitted (a poll Task retried after its resubmit may
    # have sent one more job, so count documents, not jobs)
    throttled = long_documents.stats["page_rate_limited_jobs"][throttled_before:]
    assert throttled
    by_name = {posixpath.basename(r["source"]["key"]): r for r in records.values()}
    assert {name for _, name in throttled} <= set(by_name)
    assert all(by_name[name]["datalab"]["submissions"] > 1 for _, name in throttled)
    assert long_documents.stats["max_pages_in_flight_seen"] <= 5000
    # the record names the request whose result it kept, and that request was a long-* job
    accepted = dict(long_documents.stats["submissions"])
    assert all(accepted[r["datalab"]["request_id"]].startswith("long-") for r in records.values())


def test_any_other_unsuccessful_completion_still_fails_the_document(stack, emulator):
    emulator.add_fault(FaultRule(match="not-throttle.pdf", kind="success_false"))
    record = process(stack, ACME.read_bytes(), "invoice", name="not-throttle.pdf")
    assert record["status"] == "failed"
    assert record["flags"] == ["extraction_failed:datalab_failed"]
    assert record["datalab"]["submissions"] == 1


@pytest.mark.parametrize("kind", ["null_scores", "pending", "relative_check_url"])
def test_result_format_variants_end_scored(stack, emulator, kind):
    # GIVEN Datalab answers with placeholders, an undocumented status, or a relative check URL
    name = f"variant-{kind}.pdf"
    emulator.add_fault(FaultRule(match=name, kind=kind))
    config = emulator.config
    saved = (config.pending_seconds, config.scoring_lag_seconds)
    # Long enough that the first poll (after ~2 s) still sees "pending" or the placeholders.
    config.pending_seconds = config.scoring_lag_seconds = 30
    try:
        record = process(stack, ACME.read_bytes(), "invoice", name=name)
    finally:
        config.pending_seconds, config.scoring_lag_seconds = saved
    # THEN the document completes with its scores, not scores_unavailable
    assert_valid_record(record)
    assert record["status"] == "complete", record["error"]
    assert record["flags"] == []
    assert record["review_status"] == "auto"
    assert record["fields"]["invoice_number"]["confidence"] == 1.0
    assert record["datalab"]["submissions"] == 1
    polls = stack.states_entered(record["document_id"]).count("Check Extraction")
    assert polls >= 2  # it waited through the placeholder / pending answers
