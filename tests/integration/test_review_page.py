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


def _queue_record(stack, extracted, name, *, body_extra=None):
    """A record of ``extracted`` (the real evaluation) on the table and the review queue."""
    record = record_of(run(ORDER_SCHEMA, extracted))
    record["document_id"] = f"doc-{name}"
    record["source"] = {"bucket": stack.bucket, "key": f"incoming/order/{name}.pdf"}
    stack.client("s3").put_object(
        Bucket=FIXTURES_BUCKET, Key=record["source"]["key"], Body=GLOBEX.read_bytes()
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
    page.wait_for_function("el => el.textContent === ''", arg=reading.element_handle())
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

        released = client.post(f"/doc/{document_id}/release", data={"token": review_server.token})
        assert released.status_code == 303
        assert _queue_counts(stack) == (1, 0)  # back on the queue for someone else
        assert client.post(url, data=form).status_code == 409
        assert "review" not in stack.record(document_id)


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
    page.wait_for_url(f"**decided={third}")
    stored = stack.record(third)
    assert stored["review"]["outcome"] == "reprocess"
    assert stored["review"]["reprocessed_as"] == stored["reprocessed_as"]
    assert stored["reprocessed_as"] not in ids | {"pending"}
    assert_valid_record(stored)
    again = stack.wait_for_records([stored["reprocessed_as"]], timeout=60)
    assert again[stored["reprocessed_as"]]["source"]["key"] == stored["source"]["key"]
    assert _eventually(lambda: review_server.status()["decided"] == 3)
