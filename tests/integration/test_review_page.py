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

import httpx
import pytest

from doctriage_local.paths import SAMPLES
from doctriage_local.review.connect import consumer_for_stack
from doctriage_local.review.server import ReviewServer
from tests.contracts import assert_valid_record
from tests.integration.helpers import process

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

    # Keyboard only: correct invoice_number, accept the other two.
    page.keyboard.press("c")
    page.keyboard.type("INV-0077")
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("a")
    page.keyboard.press("a")
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
    assert review["corrected"] == {"invoice_number": "INV-0077"}
    assert review["accepted"] == ["due_date", "total_amount"]
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

        missing = client.post(url, data=form)
        assert missing.status_code == 400
        assert "due_date" in missing.text
        assert "accept the value or correct it" in missing.text
        assert client.post(url, data={**form, "token": "guess"}).status_code == 403
        assert client.post(url, data=form, headers={"Host": "evil.example:80"}).status_code == 421
        assert "review" not in stack.record(document_id)
        assert _queue_counts(stack) == (0, 1)  # still open here

        released = client.post(f"/doc/{document_id}/release", data={"token": review_server.token})
        assert released.status_code == 303
        assert _queue_counts(stack) == (1, 0)  # back on the queue for someone else
        assert client.post(url, data=form).status_code == 409
        assert "review" not in stack.record(document_id)
