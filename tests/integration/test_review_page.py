"""The review page in a real browser (headless Chromium via Playwright) against a local stack.

A smudged invoice goes through the pipeline to the review queue; the review server (in this
process, on a free port) opens it; the browser checks that each flagged field's box sits on the
field, corrects invoice_number with the keyboard and stores the decision; DynamoDB and SQS are
then read back. Skips only when no Chromium is installed (scripts/install-browser installs it).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pytest

from doctriage_core.adapters.aws import ResultsTable
from doctriage_core.domain.records import review_message
from doctriage_local.paths import SAMPLES
from doctriage_local.review.connect import consumer_for_stack
from doctriage_local.review.server import ReviewServer
from tests.contracts import assert_valid_record
from tests.integration.helpers import process
from tests.unit.test_nested_fields import CHECK, LINES, NUM, cell_row, record_of, run, s, schema

GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VISIBILITY_TIMEOUT = 2  # seconds; the heartbeat extends it every 0.5 s
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    for candidate in (
        os.environ.get("DOCTRIAGE_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (/usr/bin/chromium): run scripts/install-browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def review_server(stack):
    stack.review_messages(delete=True)  # only what this test puts there
    consumer = consumer_for_stack(
        stack, visibility_timeout=VISIBILITY_TIMEOUT, heartbeat_interval=0.5
    )
    with ReviewServer(consumer, port=0, reviewer="test-reviewer", wait_seconds=1) as server:
        yield server


# A document type of this test's own: its records come from the real evaluation, put on the
# table and the review queue directly, the document and schema in a bucket without S3
# notifications (an upload under incoming/ would start the pipeline).
FIXTURES_BUCKET = "review-page-fixtures"
ORDER_SCHEMA = {**schema(lines=LINES, tax=NUM, total=NUM), "x-checks": [CHECK]}


@pytest.fixture
def fixture_server(stack):
    s3 = stack.client("s3")
    s3.create_bucket(Bucket=FIXTURES_BUCKET)
    s3.put_object(
        Bucket=FIXTURES_BUCKET, Key="schemas/order.json", Body=json.dumps(ORDER_SCHEMA).encode()
    )
    stack.review_messages(delete=True)
    consumer = consumer_for_stack(
        stack, visibility_timeout=VISIBILITY_TIMEOUT, heartbeat_interval=0.5, bucket=FIXTURES_BUCKET
    )
    with ReviewServer(consumer, port=0, reviewer="test-reviewer", wait_seconds=1) as server:
        yield server


def _queue_record(stack, extracted, name, *, body_extra=None, document=None):
    """A record of ``extracted`` (the real evaluation) on the table and the review queue."""
    record = record_of(run(ORDER_SCHEMA, extracted))
    record["document_id"] = f"doc-{name}"
    record["source"] = {"bucket": stack.bucket, "key": f"incoming/order/{name}.pdf"}
    stack.client("s3").put_object(
        Bucket=FIXTURES_BUCKET, Key=record["source"]["key"], Body=document or GLOBEX.read_bytes()
    )
    dynamodb = boto3.resource(
        "dynamodb", region_name=stack.options.region, endpoint_url=stack.endpoint_url
    )
    ResultsTable(stack.physical["ResultsTable"], dynamodb).put_once(record)
    body = (
        review_message(record)
        if record["review_status"] == "needs_review"
        else {**record, "schema_version": "1"}
    )
    stack.client("sqs").send_message(
        QueueUrl=stack.physical["ReviewQueue"],
        MessageBody=json.dumps({**body, **(body_extra or {})}),
    )
    return record


def _queue_counts(stack):
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.physical["ReviewQueue"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def _eventually(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _dark_pixels(png: bytes) -> int:
    from PIL import Image

    return sum(Image.open(io.BytesIO(png)).convert("L").histogram()[:110])


def test_a_reviewer_corrects_a_flagged_field_in_the_browser(stack, review_server, page):
    record = process(stack, GLOBEX.read_bytes(), "invoice", name="review-page-globex.pdf")
    document_id = record["document_id"]
    assert record["review_status"] == "needs_review"

    # The page opens the document from the review queue.
    page.goto(review_server.url)
    page.wait_for_url(f"**/doc/{document_id}")
    assert page.locator("h1").inner_text() == "incoming/invoice/review-page-globex.pdf"
    flagged = page.locator(".field-card.flagged").evaluate_all(
        "cards => cards.map(c => c.dataset.field)"
    )
    assert flagged == ["invoice_number", "due_date", "total_amount"]
    others = page.locator("details.others")
    assert others.evaluate("d => d.open") is False
    assert others.locator(".field-row").count() == len(record["fields"]) - 3
    card = page.locator('.field-card[data-field="invoice_number"]')
    assert "does not match the pattern" in card.locator(".reasoning").inner_text()
    assert "invalid_field:invoice_number" in card.locator(".reasons").inner_text()
    due_date = page.locator('.field-card[data-field="due_date"]')
    assert "not found on any page" in due_date.inner_text()

    # Each flagged field's box is the record's bbox on the rendered page.
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )
    image = page.locator("#page-0 img").bounding_box()
    assert image["width"] > 500
    for name, colour in (("invoice_number", "conf-low"), ("total_amount", "conf-mid")):
        bbox = record["fields"][name]["bbox"]
        box = page.locator(f'.box[data-field="{name}"]')
        assert colour in box.get_attribute("class")
        rect = box.bounding_box()
        expected = {
            "x": image["x"] + bbox["x"] * image["width"],
            "y": image["y"] + bbox["y"] * image["height"],
            "width": bbox["width"] * image["width"],
            "height": bbox["height"] * image["height"],
        }
        for key, value in expected.items():
            assert rect[key] == pytest.approx(value, abs=1.5), (name, key, rect, expected)
    assert page.locator('.box[data-field="due_date"]').count() == 0  # not found: no box
    # ... and the page under the box shows text, where a box-sized patch beside it is blank.
    rect = page.locator('.box[data-field="invoice_number"]').bounding_box()
    assert _dark_pixels(page.screenshot(clip=rect)) > 30
    blank = {**rect, "x": image["x"] + 0.62 * image["width"]}
    assert _dark_pixels(page.screenshot(clip=blank)) == 0
    assert _axe_violations(page) == []  # axe-core: no serious or critical violation

    # While the document is open, the heartbeat keeps its message hidden past the timeout.
    time.sleep(VISIBILITY_TIMEOUT + 0.5)
    assert _queue_counts(stack) == (0, 1)
    assert review_server.status()["heartbeats"] >= 2

    # The reviewer's name is the server's, shown, not a box to type in.
    assert page.locator("#reviewer").inner_text() == "test-reviewer"
    assert page.locator('input[name="reviewer"]').count() == 0

    # Keyboard only. A correction that fails the field's pattern is refused beside the field,
    # and the form is not sent.
    page.keyboard.press("c")
    page.keyboard.type("12345")
    reading = card.locator(".reading")
    page.wait_for_function(
        "el => el.textContent.includes('must match pattern')", arg=reading.element_handle()
    )
    assert "refused" in reading.get_attribute("class")
    page.keyboard.press("Control+Enter")
    time.sleep(0.5)
    assert page.url.endswith(f"/doc/{document_id}")  # not sent
    assert page.evaluate("document.activeElement.name") == "value.invoice_number"
    page.keyboard.press("Control+a")
    page.keyboard.type("INV-0077")
    page.wait_for_function(
        "el => el.textContent === 'fits the schema (pattern)'", arg=reading.element_handle()
    )
    page.keyboard.press("Escape")
    # due_date is not on the document: required, so it needs its confirmation.
    page.keyboard.press("j")
    page.keyboard.press("n")
    assert page.evaluate("document.activeElement.name") == "confirm.due_date"
    page.keyboard.press("Space")
    # total_amount as people type money: the reading is shown before anything is stored.
    page.keyboard.press("j")
    page.keyboard.press("c")
    page.keyboard.type("$1,234.50")
    total = page.locator('.field-card[data-field="total_amount"] .reading')
    page.wait_for_function("el => el.textContent === 'read as 1234.5'", arg=total.element_handle())
    page.keyboard.press("Escape")
    assert page.locator("#progress").inner_text() == "3 of 3 flagged fields decided"
    assert page.locator('input[name="decision.invoice_number"][value="correct"]').is_checked()
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1400, "height": 1500})  # the whole panel in the picture
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)

    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/?decided=*")
    assert "Decision stored for incoming/invoice/review-page-globex.pdf" in page.inner_text("main")

    stored = stack.record(document_id)
    assert_valid_record(stored)
    review = stored.pop("review")
    assert review["corrected"] == {
        "invoice_number": "INV-0077",
        "due_date": None,
        "total_amount": 1234.5,
    }
    assert review["accepted"] == []
    assert review["outcome"] == "decided"
    assert review["reviewer"] == "test-reviewer"
    assert review["decided_at"].endswith("Z")
    assert stored == record  # nothing else changed: review_status is still needs_review
    assert stored["review_status"] == "needs_review"
    assert _eventually(lambda: _queue_counts(stack) == (0, 0)), "the message was not deleted"

    # A duplicate message for the decided document is acknowledged, not shown, not re-decided.
    stack.client("sqs").send_message(
        QueueUrl=stack.physical["ReviewQueue"],
        MessageBody=json.dumps({**record, "schema_version": "1"}),
    )
    assert _eventually(lambda: review_server.status()["duplicates_acknowledged"] == 1)
    assert _eventually(lambda: _queue_counts(stack) == (0, 0))
    assert stack.record(document_id)["review"] == review
    assert review_server.status()["decided"] == 1
    page.wait_for_function("() => document.getElementById('duplicates').textContent === '1'")
    assert "/doc/" not in page.url
    assert _axe_violations(page) == []  # the waiting page too


def test_an_incomplete_or_foreign_form_stores_nothing(stack, review_server):
    record = process(stack, GLOBEX.read_bytes(), "invoice", name="review-form-globex.pdf")
    document_id = record["document_id"]
    with httpx.Client(base_url=review_server.url, timeout=10) as client:
        opened = client.get("/", follow_redirects=True)
        assert opened.url.path == f"/doc/{document_id}"
        url = f"/doc/{document_id}/decision"
        form = {
            "token": review_server.token,
            "reviewer": "someone",
            "decision.invoice_number": "correct",
            "value.invoice_number": "INV-1",
        }

        # The server is the authority: a correction that fails its schema is refused with a
        # 4xx and the reason, whatever the page did or did not check.
        refused = client.post(
            url,
            data={
                **form,
                "decision.due_date": "absent",
                "confirm.due_date": "yes",
                "decision.total_amount": "accept",
                "value.invoice_number": "12345",
            },
        )
        assert refused.status_code == 400
        assert "fails the schema: the value must match pattern ^INV-[0-9]+$" in refused.text
        assert "review" not in stack.record(document_id)

        missing = client.post(url, data=form)
        assert missing.status_code == 400
        assert "due_date" in missing.text
        assert "accept the value, correct it, or say it is not there" in missing.text
        assert client.post(url, data={**form, "token": "guess"}).status_code == 403
        assert client.post(url, data=form, headers={"Host": "evil.example:80"}).status_code == 421
        assert "review" not in stack.record(document_id)
        assert _queue_counts(stack) == (0, 1)  # still open here

        held = review_server.current
        skipped = client.post(f"/doc/{document_id}/skip", data={"token": review_server.token})
        assert skipped.status_code == 303
        assert _queue_counts(stack) == (0, 1)  # given up, hidden a while, then anyone's
        assert client.post(url, data=form).status_code == 409
        assert "review" not in stack.record(document_id)
    _forget(stack, held)


def _forget(stack, document):
    """Delete a skipped document's message: hidden, it would outlive the test."""
    stack.client("sqs").delete_message(
        QueueUrl=stack.physical["ReviewQueue"], ReceiptHandle=document.receipt_handle
    )


def _box_matches(page, selector, bbox):
    image = page.locator("#page-0 img").bounding_box()
    rect = page.locator(selector).bounding_box()
    expected = {
        "x": image["x"] + bbox["x"] * image["width"],
        "y": image["y"] + bbox["y"] * image["height"],
        "width": bbox["width"] * image["width"],
        "height": bbox["height"] * image["height"],
    }
    for key, value in expected.items():
        assert rect[key] == pytest.approx(value, abs=1.5), (selector, key, rect, expected)


def test_a_reviewer_decides_the_cells_of_a_table_one_by_one(stack, fixture_server, page):
    lines = [
        cell_row("Bolts", 500, qty=0),  # qty invalid (minimum 1) and unscored
        cell_row("Nuts", 20, 2),  # low confidence
        {"description": "Washers", "description_score": s(5)},  # its required amount missing
    ]
    record = _queue_record(
        stack,
        {"lines": lines, "tax": 10, "tax_score": s(5), "total": 530, "total_score": s(5)},
        "nested-cells",
    )
    cells = ["lines[0].qty", "lines[1].description", "lines[1].amount", "lines[2].amount"]

    page.goto(fixture_server.url)
    page.wait_for_url(f"**/doc/{record['document_id']}")
    flagged = page.locator(".field-card.flagged").evaluate_all(
        "cards => cards.map(c => c.dataset.field)"
    )
    assert flagged == cells
    table = page.locator('.table-group[data-field="lines"] table')
    assert table.locator("caption").inner_text() == "lines: 3 rows"
    assert table.locator("tbody tr").count() == 3
    assert table.locator("td.to-decide").count() == 4
    assert page.locator(".field-card.active").get_attribute("data-field") == cells[0]

    # The flagged cell with a citation has its own box: the cell's bbox on the rendered page.
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )
    bbox = record["fields"]["lines"]["items"][1]["amount"]["bbox"]
    _box_matches(page, '.box[data-field="lines[1].amount"]', bbox)
    assert "conf-low" in page.locator('.box[data-field="lines[1].amount"]').get_attribute("class")

    # A marked cell in the table leads to its card, and so does its box.
    table.locator("td.to-decide a").nth(3).click()
    assert page.locator(".field-card.active").get_attribute("data-field") == "lines[2].amount"
    page.locator('.box[data-field="lines[1].amount"]').click()
    assert page.locator(".field-card.active").get_attribute("data-field") == "lines[1].amount"

    # Keyboard only, from the first cell: accept two (qty 0 fails its minimum: "accept anyway",
    # with a note), correct two (numbers for number columns).
    page.keyboard.press("k")
    page.keyboard.press("k")
    page.keyboard.press("a")
    assert page.evaluate("document.activeElement.name") == "note.lines[0].qty"
    page.keyboard.type("as printed")
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("a")
    page.keyboard.press("c")
    page.keyboard.type("25")
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("c")
    page.keyboard.type("12.5")
    page.keyboard.press("Escape")
    assert page.locator("#progress").inner_text() == "4 of 4 flagged fields decided"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-page-table.png"), full_page=True)
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/?decided=*")
    # 500 + 25 + 12.5 + 10 is not the total of 530: said once stored, as evaluation would.
    assert "With its corrections, total_matches_lines does not add up" in page.inner_text("main")

    stored = stack.record(record["document_id"])
    assert_valid_record(stored)
    review = stored.pop("review")
    assert review["accepted"] == ["lines[0].qty", "lines[1].description"]
    assert review["notes"] == {"lines[0].qty": "as printed"}
    assert review["corrected"] == {"lines[1].amount": 25, "lines[2].amount": 12.5}
    assert stored == record


def test_an_audit_sample_is_decided_field_by_field_and_cell_by_cell(stack, fixture_server):
    extracted = {
        "lines": [cell_row("Bolts", 500), cell_row("Nuts", 20)],
        "tax": 10,
        "tax_score": s(5),
        "total": 530,
        "total_score": s(5),
    }
    record = _queue_record(stack, extracted, "audit-sample", body_extra={"audit": True})
    assert record["review_status"] == "auto"  # the record does not say audit: the message does
    every = [f"lines[{i}].{c}" for i in (0, 1) for c in ("description", "qty", "amount")]
    every += ["tax", "total"]
    with httpx.Client(base_url=fixture_server.url, timeout=10) as client:
        opened = client.get("/", follow_redirects=True)
        assert opened.url.path == f"/doc/{record['document_id']}"
        assert "to measure how often auto is wrong" in opened.text
        assert "Check 8 fields" in opened.text
        url = f"/doc/{record['document_id']}/decision"
        form = {"token": fixture_server.token, "reviewer": "ana"}
        form.update({f"decision.{p}": "accept" for p in every if p != "lines[1].amount"})

        missing = client.post(url, data=form)
        assert missing.status_code == 400
        assert "lines[1].amount" in missing.text
        not_a_number = client.post(
            url, data={**form, "decision.lines[1].amount": "correct", "value.lines[1].amount": "x"}
        )
        assert not_a_number.status_code == 400
        assert "not a number: type digits" in not_a_number.text
        assert "review" not in stack.record(record["document_id"])

        stored = client.post(
            url,
            data={**form, "decision.lines[1].amount": "correct", "value.lines[1].amount": "21"},
        )
        assert stored.status_code == 303
    review = stack.record(record["document_id"])["review"]
    assert review["accepted"] == [p for p in every if p != "lines[1].amount"]
    assert review["corrected"] == {"lines[1].amount": 21}


AXE = Path(__file__).resolve().parents[1] / "fixtures" / "axe" / "axe.min.js"  # axe-core 4.10.3


def _open_failed(page, ids):
    """Wait for the page to open one of the failed documents; its id."""
    page.wait_for_url("**/doc/*", timeout=30_000)
    document_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    assert document_id in ids
    assert "Extraction failed: choose an outcome" in page.inner_text("#outcomes")
    return document_id


def test_a_failed_document_is_entered_by_hand_rejected_or_reprocessed(stack, review_server, page):
    failed = [process(stack, b"", "invoice", name=f"review-failed-{i}.pdf") for i in range(3)]
    assert all(r["status"] == "failed" for r in failed)
    assert all("extraction_failed:empty_file" in r["flags"] for r in failed)
    ids = {r["document_id"] for r in failed}
    page.goto(review_server.url)

    # Nothing chosen: nothing stored, the message kept.
    first = _open_failed(page, ids)
    page.locator("#submit").click()
    page.wait_for_selector("#error-summary")
    assert "choose an outcome" in page.inner_text("#outcomes")
    assert "review" not in stack.record(first)

    # 1. The values by hand, each read and checked like a correction.
    number = page.locator('.hand-entry[data-field="invoice_number"] .correction')
    number.fill("12345")
    reading = page.locator('.hand-entry[data-field="invoice_number"] .reading')
    page.wait_for_function(
        "el => el.textContent.includes('must match pattern')", arg=reading.element_handle()
    )
    assert page.locator('input[name="outcome"][value="entered_by_hand"]').is_checked()
    page.locator("#submit").click()
    time.sleep(0.5)
    assert "review" not in stack.record(first)  # refused on the page: not sent
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-page-failed.png"), full_page=True)
    values = {
        "document_type": "invoice",
        "invoice_number": "INV-9",
        "vendor_name": "Acme",
        "invoice_date": "5 March 2024",
        "currency": "USD",
        "line_items": '[{"description": "Bolts", "amount": 1234.5}]',
        "total_amount": "$1,234.50",
    }
    for name, text in values.items():
        page.locator(f'.hand-entry[data-field="{name}"] .correction').fill(text)
    page.wait_for_function(
        "el => el.textContent === 'read as 2024-03-05'",
        arg=page.locator('.hand-entry[data-field="invoice_date"] .reading').element_handle(),
    )
    page.locator('input[name="confirm.due_date"]').check()  # required, not on the document
    page.locator("#submit").click()
    page.wait_for_url(f"**decided={first}")  # and the next document opens
    review = stack.record(first)["review"]
    assert review["outcome"] == "entered_by_hand"
    assert review["reviewer"] == "test-reviewer"
    assert review["corrected"]["invoice_date"] == "2024-03-05"
    assert review["corrected"]["total_amount"] == 1234.5
    assert review["corrected"]["line_items"] == [{"description": "Bolts", "amount": 1234.5}]
    assert review["corrected"]["due_date"] is None
    assert_valid_record(stack.record(first))

    # 2. Rejected, with a reason.
    second = _open_failed(page, ids - {first})
    page.locator('input[name="outcome"][value="rejected"]').check()
    page.locator("#submit").click()
    page.wait_for_selector("#error-summary")
    assert "say why it is rejected" in page.inner_text("#outcomes")
    page.locator('select[name="reject_reason"]').select_option("unreadable")
    page.locator("#submit").click()
    page.wait_for_url(f"**decided={second}")
    review = stack.record(second)["review"]
    assert (review["outcome"], review["rejected_reason"]) == ("rejected", "unreadable")
    assert_valid_record(stack.record(second))

    # 3. Reprocessed: the upload goes round again as a new document, as doctriage reprocess.
    third = _open_failed(page, ids - {first, second})
    page.locator('input[name="outcome"][value="reprocess"]').check()
    page.locator("#submit").click()
    page.wait_for_url(f"**decided={third}&reprocessed_as=*")
    stored = stack.record(third)
    assert f"through the pipeline again as {stored['reprocessed_as']}" in page.inner_text("main")
    assert stored["review"]["outcome"] == "reprocess"
    assert stored["review"]["reprocessed_as"] == stored["reprocessed_as"]
    assert stored["reprocessed_as"] not in ids | {"pending"}
    assert_valid_record(stored)
    again = stack.wait_for_records([stored["reprocessed_as"]], timeout=60)
    assert again[stored["reprocessed_as"]]["source"]["key"] == stored["source"]["key"]
    assert _eventually(lambda: review_server.status()["decided"] == 3)


def _axe_violations(page):
    """axe-core's serious and critical violations on the page as it stands (WCAG 2.x A/AA)."""
    if not AXE.is_file():
        pytest.skip(f"axe-core is missing at {AXE} (vendored; see tests/fixtures/axe/README.md)")
    # (the page's CSP forbids an injected <script>; evaluation through the driver is not one)
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    found = page.evaluate(
        """async () => (await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                            "wcag22aa", "best-practice"]},
            resultTypes: ["violations"],
        })).violations.map(v => ({id: v.id, impact: v.impact,
                                  nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


_FOCUS_UNDER_BAR = """() => {
  const el = document.activeElement;
  const bar = document.querySelector(".submit-row");
  if (!el || el === document.body || !bar || bar.contains(el)) return null;
  const r = el.getBoundingClientRect(), b = bar.getBoundingClientRect();
  const covered = r.bottom > b.top + 1 && r.top < b.bottom - 1 &&
    r.right > b.left + 1 && r.left < b.right - 1;
  return covered ? `${el.outerHTML.slice(0, 90)} bottom ${r.bottom} under bar top ${b.top}` : null;
}"""


def _tab_through_the_form(page, presses=60):
    """Tab from the top of the page; no focused control is ever (even partly) under the bar."""
    page.locator("body").focus()
    page.evaluate("() => window.scrollTo(0, 0)")
    seen = 0
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("() => !!document.activeElement.closest('#decision-form')"):
            seen += 1
        assert page.evaluate(_FOCUS_UNDER_BAR) is None
    return seen


def _two_page_pdf():
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(GLOBEX.read_bytes())
    pdf.import_pages(pdfium.PdfDocument(GLOBEX.read_bytes()))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


_NESTED = {
    "lines": [
        cell_row("Bolts", 500, qty=0),
        cell_row("Nuts", 20, 2),
        cell_row("Washers", 7, 2),
        cell_row("Screws", 3, 2),
    ],
    "tax": 10,
    "tax_score": s(2),
    "total": 530,
    "total_score": s(2),
}


_STICKING_OUT = """() => [...document.querySelectorAll("*")]
  .filter(e => e.getBoundingClientRect().right > innerWidth + 0.5 &&
               !e.closest(".table-wrap, .viewer, pre"))
  .map(e => `${e.tagName}.${e.className} ${e.textContent.slice(0, 40)}`).slice(0, 5)"""


def _assert_no_sideways_scroll(page):
    wide = page.evaluate("() => document.documentElement.scrollWidth > innerWidth")
    assert not wide, page.evaluate(_STICKING_OUT)


def _images_loaded(page):
    page.wait_for_function(
        "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    )


def test_on_a_phone_the_card_shows_its_crop_and_nothing_scrolls_sideways(
    stack, fixture_server, browser
):
    record = _queue_record(stack, _NESTED, "phone", document=_two_page_pdf())
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto(fixture_server.url)
        page.wait_for_url(f"**/doc/{record['document_id']}")
        _images_loaded(page)
        _assert_no_sideways_scroll(page)
        assert page.evaluate("() => getComputedStyle(document.body).fontSize") == "16px"

        # Each card with a box shows the page around it, the box marked in the crop.
        boxed = page.locator(".field-card.flagged:has(.crop)")
        assert boxed.count() >= 2
        first = boxed.first
        first.focus()
        crop = first.locator(".crop")
        assert crop.is_visible()
        mark = crop.locator(".crop-mark").bounding_box()
        frame = crop.bounding_box()
        assert frame["width"] > 300
        assert mark["width"] > 0
        assert frame["x"] <= mark["x"]
        assert mark["x"] + mark["width"] <= frame["x"] + frame["width"]
        # ... the page image behind it, scaled so the mark sits on the field's bbox in it.
        assert first.get_attribute("data-field") == "lines[0].amount"
        bbox = record["fields"]["lines"]["items"][0]["amount"]["bbox"]
        image = crop.locator("img").bounding_box()
        assert image["width"] > 1.5 * frame["width"]  # the page, zoomed to the field
        for key, size in (("x", "width"), ("y", "height"), ("width", "width")):
            at = mark[key] - (image[key] if key in "xy" else 0)
            assert at / image[size] == pytest.approx(bbox[key], abs=0.005), key

        # A mouse click on a radio of a card further down lands: focus scrolls nothing under it.
        radio = boxed.nth(1).locator('input[type=radio][value="accept"]')
        radio.scroll_into_view_if_needed()
        before = page.evaluate("() => scrollY")
        radio.click(no_wait_after=True)
        assert radio.is_checked()
        assert page.evaluate("() => scrollY") == before
        _assert_no_sideways_scroll(page)

        assert _tab_through_the_form(page) > 10
        assert _axe_violations(page) == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-page-390.png"), full_page=True)
    finally:
        context.close()


def test_the_page_image_zooms_pans_and_jumps_to_a_page(stack, fixture_server, page):
    record = _queue_record(stack, _NESTED, "zoom", document=_two_page_pdf())
    page.goto(fixture_server.url)
    page.wait_for_url(f"**/doc/{record['document_id']}")
    _images_loaded(page)
    bbox = record["fields"]["lines"]["items"][3]["amount"]["bbox"]
    box = '.box[data-field="lines[3].amount"]'  # the topmost of the rows' boxes (one cell)
    width = page.locator("#page-0 img").bounding_box()["width"]
    viewer = page.locator("#viewer")

    page.get_by_role("button", name="Zoom in").click()
    page.get_by_role("button", name="Zoom in").click()
    assert page.locator("#zoom-level").inner_text() == "150%"
    assert page.locator("#page-0 img").bounding_box()["width"] == pytest.approx(1.5 * width, 1)
    page.locator(box).click()  # shown in the viewer, on its field at any zoom
    _box_matches(page, box, bbox)
    _assert_no_sideways_scroll(page)

    # A mouse drag on the page pans it.
    start = viewer.evaluate("v => [v.scrollLeft, v.scrollTop]")
    area = viewer.bounding_box()
    x, y = area["x"] + 40, area["y"] + 300
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y - 150, steps=5)
    page.mouse.up()
    assert viewer.evaluate("v => [v.scrollLeft, v.scrollTop]") == [start[0] - 120, start[1] + 150]

    page.keyboard.down("Control")  # Ctrl+wheel (a touchpad's pinch) zooms the page image only
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    assert page.locator("#zoom-level").inner_text() == "200%"
    page.keyboard.press("0")  # back to the width of the viewer
    assert page.locator("#zoom-level").inner_text() == "100%"
    assert page.locator("#page-0 img").bounding_box()["width"] == pytest.approx(width, 1)

    # The page jump brings page 2 to the top of the viewer, and follows scrolling back.
    assert page.locator("#page-jump option").count() == 2
    page.locator("#page-jump").select_option(label="2")
    top = viewer.bounding_box()["y"]
    assert page.locator("#page-1").bounding_box()["y"] == pytest.approx(top, abs=2)
    page.locator("#viewer").focus()
    page.keyboard.press("Home")  # the viewer scrolls by keyboard too
    page.wait_for_function("() => document.getElementById('page-jump').value === '0'")

    assert _tab_through_the_form(page) > 10
    assert _axe_violations(page) == []


# ---------------------------------------------------------------------- no lost work, real skip

# An order whose tax alone is flagged (scored 2: confidence 0.25 under the 0.8 threshold).
LOW_TAX = {
    "lines": [cell_row("Bolts", 500), cell_row("Nuts", 20)],
    "tax": 10,
    "tax_score": s(2),
    "total": 530,
    "total_score": s(5),
}


def _draft_keys(page):
    return page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('doctriage-review-draft:'))"
    )


def test_a_second_different_decision_gets_the_conflict_page_and_may_amend(
    stack, fixture_server, browser
):
    record = _queue_record(stack, LOW_TAX, "conflict")
    document_id = record["document_id"]
    assert record["flags"] == ["low_confidence_field:tax"]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    first, second = context.new_page(), context.new_page()
    first.goto(fixture_server.url)
    first.wait_for_url(f"**/doc/{document_id}")
    second.goto(first.url)  # the same document in a second tab
    assert second.locator(".field-card.flagged").count() == 1

    first.keyboard.press("a")
    first.keyboard.press("Control+Enter")
    first.wait_for_url("**/?decided=*")
    second.keyboard.press("c")
    second.keyboard.type("11")
    second.keyboard.press("Escape")
    second.keyboard.press("Control+Enter")

    # Not a silent discard: the conflict page shows the stored decision and what mine changes.
    second.wait_for_selector("#conflict-title")
    assert "decided differently meanwhile" in second.locator("h1").inner_text()
    text = second.inner_text("main")
    assert "Yours was not stored" in text
    assert "Accepted: tax" in text
    assert "tax: accepted → corrected to 11" in text
    assert stack.record(document_id)["review"]["accepted"] == ["tax"]  # still the first

    second.click("#amend")
    second.wait_for_url("**/?amended=*")
    assert "Amendment stored for incoming/order/conflict.pdf" in second.inner_text("main")
    stored = stack.record(document_id)
    assert_valid_record(stored)
    review = stored["review"]
    assert (review["accepted"], review["corrected"]) == ([], {"tax": 11})
    assert [len(h["changes"]) for h in review["history"]] == [2, 1]  # the first: tax, outcome
    assert review["history"][1]["changes"][0] == {
        "path": "tax",
        "was": {"decision": "accept"},
        "now": {"decision": "correct", "value": 11},
    }
    assert _draft_keys(second) == []  # the stored amendment needs no draft

    # The same decision once more is simply acknowledged; nothing is written.
    with httpx.Client(base_url=fixture_server.url, timeout=10) as client:
        again = client.post(
            f"/doc/{document_id}/decision",
            data={
                "token": fixture_server.token,
                "reviewer": "test-reviewer",
                "decision.tax": "correct",
                "value.tax": "11",
            },
        )
        assert again.status_code == 303
        assert "identical=" in again.headers["location"]
    assert stack.record(document_id)["review"] == review
    context.close()


def test_unsaved_choices_survive_a_reload_and_a_review_server_restart(stack, fixture_server, page):
    record = _queue_record(stack, LOW_TAX, "draft")
    document_id = record["document_id"]
    dialogs = []

    def on_dialog(dialog):
        dialogs.append(dialog.type)
        dialog.accept()

    page.on("dialog", on_dialog)
    page.goto(fixture_server.url)
    page.wait_for_url(f"**/doc/{document_id}")
    assert page.locator("#draft-restored").count() == 0
    page.keyboard.press("c")
    page.keyboard.type("12,00")  # read as 12.0, as the page shows beside the box
    page.keyboard.press("Escape")
    assert _draft_keys(page) == [f"doctriage-review-draft:{document_id}"]

    page.reload()  # leaving with unsaved choices warns first
    assert dialogs == ["beforeunload"]
    page.wait_for_selector("#draft-restored")
    assert page.locator('input[name="decision.tax"][value="correct"]').is_checked()
    assert page.locator('input[name="value.tax"]').input_value() == "12,00"
    # ... and its reading is shown again before anything is stored, as when it was typed.
    reading = page.locator('.field-card[data-field="tax"] .reading')
    page.wait_for_function("el => el.textContent === 'read as 12.0'", arg=reading.element_handle())

    # The review server restarts (the document goes back on the queue, a new token).
    port = fixture_server.port
    fixture_server.stop()
    with ReviewServer(
        fixture_server.consumer, port=port, reviewer="test-reviewer", wait_seconds=1
    ) as restarted:
        page.goto(restarted.url)
        page.wait_for_url(f"**/doc/{document_id}")
        page.wait_for_selector("#draft-restored")
        assert page.locator('input[name="value.tax"]').input_value() == "12,00"
        page.keyboard.press("Control+Enter")
        page.wait_for_url("**/?decided=*")
        assert stack.record(document_id)["review"]["corrected"] == {"tax": 12}
        assert _draft_keys(page) == []


def _eventually_received(sqs, queue_url, timeout=10.0):
    """The next message: moto can answer a receive empty just after a visibility change."""
    deadline = time.monotonic() + timeout
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"]
        ).get("Messages")
        if messages:
            return messages[0]
        assert time.monotonic() < deadline, "no message became visible"


def test_skip_moves_on_to_another_document_and_says_when_one_nears_the_dlq(
    stack, fixture_server, page
):
    skipped = _queue_record(stack, LOW_TAX, "skipped")
    # Handed out eight times already (maxReceiveCount is 10): the next delivery is the ninth.
    sqs, queue_url = stack.client("sqs"), stack.physical["ReviewQueue"]
    # (The review server may take a turn in between: count the deliveries, not the loops.)
    received = 0
    while received < 8:
        message = _eventually_received(sqs, queue_url)
        received = int(message["Attributes"]["ApproximateReceiveCount"])
        sqs.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    page.goto(fixture_server.url)
    page.wait_for_url(f"**/doc/{skipped['document_id']}")
    handed_out = re.search(r"handed out (\d+) times", page.locator("#queue-facts").inner_text())
    assert handed_out is not None
    assert 9 <= int(handed_out.group(1)) <= 10
    assert re.search(r"1 more delivery|last delivery", page.locator("#near-dlq").inner_text())

    other = _queue_record(stack, LOW_TAX, "next")
    held = fixture_server.current
    page.click("#skip")
    page.wait_for_url(f"**/doc/{other['document_id']}?skipped=*")
    assert "Skipped incoming/order/skipped.pdf" in page.inner_text("main")
    facts = page.locator("#queue-facts").inner_text()
    assert "handed out 1 time" in facts
    assert page.locator("#near-dlq").count() == 0

    page.keyboard.press("a")
    page.keyboard.press("Control+Enter")
    page.wait_for_url("**/?decided=*")
    time.sleep(2.5)  # two long polls: the skipped document is not handed back to its skipper
    assert "/doc/" not in page.url
    assert _queue_counts(stack) == (0, 1)  # hidden, not deleted: others get it after a while
    assert "review" not in stack.record(skipped["document_id"])
    _forget(stack, held)
