"""What a reviewer must decide, and a review form -> the record's ``review`` object."""

from __future__ import annotations

import copy
import re

import pytest

from doctriage_local.review.decision import (
    DecisionError,
    build_review,
    display_value,
    flagged_fields,
    parse_value,
)
from doctriage_local.review.page import confidence_class, document_page
from tests.contracts import assert_valid_record


def _field(value, confidence, *, page=0, bbox=True, reasoning="r"):
    return {
        "value": value,
        "found": value is not None,
        "confidence": confidence,
        "score": None if confidence is None else int(confidence * 4 + 1),
        "reasoning": reasoning,
        "citations": [],
        "page": page if bbox else None,
        "bbox": {"x": 0.1, "y": 0.2, "width": 0.3, "height": 0.02} if bbox else None,
    }


def _record(**overrides):
    record = {
        "document_id": "doc-1",
        "status": "complete",
        "review_status": "needs_review",
        "flags": [
            "invalid_field:invoice_number",
            "low_confidence_field:due_date",
            "low_confidence_field:invoice_number",
            "low_confidence_field:total_amount",
            "missing_field:due_date",
        ],
        "document_type": "invoice",
        "document_type_confidence": 1.0,
        "extraction_score_average": 4.2,
        "human_review_threshold": 0.85,
        "fields": {
            "document_type": _field("invoice", 1.0),
            "invoice_number": _field("GX-0077", 0.25),
            "vendor_name": _field("Globex", 1.0),
            "due_date": _field(None, 0.0, bbox=False),
            "line_items": _field([{"description": "Stapler", "amount": 50.0}], 1.0),
            "total_amount": _field(322.5, 0.5),
        },
        "source": {"bucket": "b", "key": "incoming/invoice/x.pdf", "version_id": "v1"},
        "datalab": {"request_id": "r", "result_key": "results/doc-1/datalab-result.json"},
        "error": None,
    }
    record.update(overrides)
    return record


def _form(**fields):
    return {key.replace("__", "."): [value] for key, value in fields.items()}


def test_flagged_fields_follow_the_record_order_with_every_reason():
    flagged = flagged_fields(_record())
    assert list(flagged) == ["invoice_number", "due_date", "total_amount"]
    assert [r.flag for r in flagged["due_date"]] == [
        "low_confidence_field:due_date",
        "missing_field:due_date",
    ]
    assert "0.25 is below the threshold 0.85" in flagged["invoice_number"][1].text


def test_classification_and_unscored_fields_are_flagged_for_review():
    record = _record(flags=["low_confidence_classification", "scores_unavailable"])
    record["fields"]["vendor_name"]["confidence"] = None
    assert list(flagged_fields(record)) == ["document_type", "vendor_name"]


def test_a_failed_document_has_nothing_to_decide_field_by_field():
    record = _record(status="failed", flags=["extraction_failed:timeout"], fields={})
    assert flagged_fields(record) == {}
    review = build_review(record, _form(), "ana", decided_at="2024-01-01T00:00:00.000Z")
    assert review == {
        "reviewer": "ana",
        "decided_at": "2024-01-01T00:00:00.000Z",
        "accepted": [],
        "corrected": {},
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("INV-0077", "INV-0077"),
        (" INV-0077 ", "INV-0077"),
        ("300", 300),
        ("322.50", 322.5),
        ("null", None),
        ('"300"', "300"),
        ('["a", 1]', ["a", 1]),
        ("2024-03-18", "2024-03-18"),
        ("true", True),
    ],
)
def test_corrected_values_are_json_when_they_parse(text, value):
    assert parse_value(text) == value
    assert type(parse_value(text)) is type(value)


def test_a_complete_form_becomes_the_review():
    form = _form(
        decision__invoice_number="correct",
        value__invoice_number="INV-0077",
        decision__due_date="accept",
        value__due_date="",
        decision__total_amount="correct",
        value__total_amount="322.5",  # same value: accepted
        value__vendor_name="Globex Corporation",  # unflagged, changed: a correction
        value__document_type="invoice",  # unflagged, unchanged
        value__line_items='[\n  {"description": "Stapler", "amount": 50.0}\n]',  # pretty, same
    )
    review = build_review(_record(), form, " ana ")
    assert review["reviewer"] == "ana"
    assert review["accepted"] == ["due_date", "total_amount"]
    assert review["corrected"] == {
        "invoice_number": "INV-0077",
        "vendor_name": "Globex Corporation",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", review["decided_at"])
    assert_valid_record({**_record(), "review": review})


def test_every_flagged_field_needs_a_decision_and_the_reviewer_a_name():
    form = _form(
        decision__invoice_number="correct",
        value__invoice_number="  ",
        decision__total_amount="accept",
    )
    with pytest.raises(DecisionError) as raised:
        build_review(_record(), form, "")
    assert set(raised.value.problems) == {"invoice_number", "due_date"}
    assert "null" in raised.value.problems["invoice_number"]
    assert raised.value.reviewer


def test_display_value_round_trips_through_parse_value():
    for value in ("GX-0077", 322.5, 3, [1, 2], {"a": None}, True):
        assert parse_value(display_value(value)) == value
    assert display_value(None) == ""


def test_box_colours_by_confidence():
    assert confidence_class(0.25, 0.85) == "conf-low"
    assert confidence_class(0.5, 0.85) == "conf-mid"
    assert confidence_class(0.85, 0.85) == "conf-ok"
    assert confidence_class(None, 0.85) == "conf-none"


def test_the_page_escapes_document_text_and_places_boxes_in_percent():
    record = copy.deepcopy(_record())
    record["fields"]["invoice_number"]["value"] = '<script>alert("x")</script>'
    record["fields"]["invoice_number"]["reasoning"] = "<img src=x onerror=alert(1)>"
    html = document_page(
        record, pages=[], page_count=0, render_error=None, token="t", reviewer="ana", is_open=True
    )
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert 'name="decision.invoice_number"' in html
    assert html.count('class="field-card flagged') == 3
    assert "<details" in html
    assert "5 other fields" not in html
    assert "3 other fields" in html


def test_a_decided_record_is_shown_read_only():
    review = {
        "reviewer": "bo",
        "decided_at": "2024-01-01T00:00:00.000Z",
        "accepted": ["due_date"],
        "corrected": {"invoice_number": "INV-1"},
    }
    html = document_page(
        _record(review=review),
        pages=[],
        page_count=0,
        render_error=None,
        token="t",
        reviewer="ana",
        is_open=True,
    )
    assert "Decided" in html
    assert "bo" in html
    assert "INV-1" in html
    assert '<fieldset class="whole" disabled>' in html
    assert "Put back on the queue" not in html
    assert re.search(r'name="decision.due_date" value="accept"\s+checked', html)
    assert re.search(r'name="decision.invoice_number" value="correct"\s+checked', html)
    assert 'value="INV-1"' in html
