"""What a reviewer must decide, and a review form -> the record's ``review`` object."""

from __future__ import annotations

import copy
import json
import re

import pytest

from doctriage_local.cli.main import main
from doctriage_local.paths import SAMPLES
from doctriage_local.review.decision import (
    DecisionError,
    build_review,
    check_correction,
    display_value,
    parse_value,
    read_date,
    read_number,
    record_nodes,
    schema_problem,
    to_decide,
    with_history,
)
from doctriage_local.review.page import QueueFacts, confidence_class, conflict_page, document_page
from doctriage_local.review.render import RenderedPage
from doctriage_local.review.server import ReviewServer
from tests.contracts import assert_valid_record
from tests.unit.test_nested_fields import (
    CHECK,
    LINES,
    NUM,
    STR,
    cell_row,
    record_of,
    run,
    s,
    schema,
)


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
    flagged = to_decide(_record())
    assert list(flagged) == ["invoice_number", "due_date", "total_amount"]
    assert [r.flag for r in flagged["due_date"]] == [
        "low_confidence_field:due_date",
        "missing_field:due_date",
    ]
    assert "0.25 is below the threshold 0.85" in flagged["invoice_number"][1].text


def test_classification_and_unscored_fields_are_flagged_for_review():
    record = _record(flags=["low_confidence_classification", "scores_unavailable"])
    record["fields"]["vendor_name"]["confidence"] = None
    assert list(to_decide(record)) == ["document_type", "vendor_name"]


def _failed():
    return _record(status="failed", flags=["extraction_failed:timeout"], fields={})


INVOICE = json.loads((SAMPLES / "schemas" / "invoice.json").read_text())


def test_a_failed_document_cannot_be_stored_without_an_outcome():
    record = _failed()
    assert to_decide(record) == {}
    for form in (_form(), _form(outcome="store"), _form(outcome="rejected")):
        with pytest.raises(DecisionError) as raised:
            build_review(record, form, "ana", schema=INVOICE)
        assert list(raised.value.problems) == ["outcome"]
    with pytest.raises(DecisionError, match="nothing to enter by hand"):
        build_review(record, _form(outcome="entered_by_hand"), "ana")


def test_a_failed_document_is_rejected_with_a_reason_or_reprocessed():
    record = _failed()
    rejected = build_review(
        record, _form(outcome="rejected", reject_reason="duplicate", note="same as INV-7"), "ana"
    )
    assert rejected["outcome"] == "rejected"
    assert rejected["rejected_reason"] == "duplicate"
    assert rejected["note"] == "same as INV-7"
    assert_valid_record({**record, "review": rejected})
    again = build_review(record, _form(outcome="reprocess"), "ana")
    assert again["outcome"] == "reprocess"
    with pytest.raises(Exception, match="reprocessed_as"):
        assert_valid_record({**record, "review": again})  # the server adds the new id
    assert_valid_record({**record, "review": {**again, "reprocessed_as": "doc-2"}})


def test_a_failed_documents_values_entered_by_hand_are_read_and_validated():
    record = _failed()
    form = _form(
        outcome="entered_by_hand",
        value__invoice_number="INV-0077",
        value__invoice_date="5 March 2024",
        value__total_amount="$1,234.50",
        value__currency="usd",
    )
    with pytest.raises(DecisionError) as raised:
        build_review(record, form, "ana", schema=INVOICE)
    assert raised.value.problems["currency"].startswith("fails the schema: the value must be one")
    assert set(raised.value.problems) == {"currency"} | {
        name for name in INVOICE.get("required", []) if f"value.{name}" not in form
    }
    form["value.currency"] = ["USD"]
    for name in INVOICE.get("required", []):
        form.setdefault(f"confirm.{name}", ["yes"])
    review = build_review(record, form, "ana", schema=INVOICE)
    assert review["outcome"] == "entered_by_hand"
    assert review["corrected"]["invoice_number"] == "INV-0077"
    assert review["corrected"]["invoice_date"] == "2024-03-05"
    assert review["corrected"]["total_amount"] == 1234.5
    assert review["corrected"]["vendor_name"] is None  # left empty: not on the document
    assert_valid_record({**record, "review": review})


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


def test_every_flagged_field_needs_a_decision_and_the_review_a_reviewer():
    form = _form(
        decision__invoice_number="correct",
        value__invoice_number="  ",
        decision__total_amount="accept",
    )
    with pytest.raises(DecisionError) as raised:
        build_review(_record(), form, "ana")
    assert set(raised.value.problems) == {"invoice_number", "due_date"}
    assert "not on the document" in raised.value.problems["invoice_number"]
    with pytest.raises(ValueError, match="reviewer"):
        build_review(_record(), form, " ")


def test_display_value_round_trips_through_parse_value():
    for value in ("GX-0077", 322.5, 3, [1, 2], {"a": None}, True):
        assert parse_value(display_value(value)) == value
    assert display_value(None) == ""


def test_box_colours_by_confidence():
    assert confidence_class({"confidence": 0.25}, 0.85) == "conf-low"
    assert confidence_class({"confidence": 0.5}, 0.85) == "conf-mid"
    assert confidence_class({"confidence": 0.85}, 0.85) == "conf-ok"
    assert confidence_class({"confidence": None}, 0.85) == "conf-none"


def test_the_page_escapes_document_text_and_places_boxes_in_percent():
    record = copy.deepcopy(_record())
    record["fields"]["invoice_number"]["value"] = '<script>alert("x")</script>'
    record["fields"]["invoice_number"]["reasoning"] = "<img src=x onerror=alert(1)>"
    html = _pageless(record)
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
    html = _pageless(_record(review=review))
    assert "Decided" in html
    assert "bo" in html
    assert "INV-1" in html
    assert '<fieldset class="whole" disabled>' in html
    assert "Skip: give it to someone else" not in html  # nothing to give up: it is decided
    assert re.search(r'name="decision.due_date" value="accept"\s+checked', html)
    assert re.search(r'name="decision.invoice_number" value="correct"\s+checked', html)
    assert 'value="INV-1"' in html


# ---------------------------------------------------------------------- nested fields, by path
# Records from the real evaluation (tests/unit/test_nested_fields.py's helpers), not by hand.

SCHEMA = {**schema(lines=LINES, tax=NUM, total=NUM), "x-checks": [CHECK]}


def _nested(lines, tax=10, total=None, **record_extra):
    extracted = {"lines": lines, "tax": tax, "tax_score": s(5)}
    if total is not None:
        extracted.update(total=total, total_score=s(5))
    return {**record_of(run(SCHEMA, extracted)), **record_extra}


def _flagged_cells():
    """Row 0: qty 0 (invalid, unscored); row 1 scored 2; row 2 lacks its required amount."""
    return _nested(
        [
            cell_row("Bolts", 500, qty=0),
            cell_row("Nuts", 20, 2),
            {"description": "Washers", "description_score": s(5)},
        ],
        total=530,
    )


def _answer_each(record, schema=SCHEMA):
    """A form that passes: accept, "accept anyway" what fails its schema, "not on the document"
    (confirmed) what is required and has no value."""
    form: dict[str, list[str]] = {}
    nodes = record_nodes(record, schema)
    for path in to_decide(record, schema):
        node = nodes[path]
        value = node.result.get("value")
        if schema_problem(value, node.prop, schema):
            form |= {f"decision.{path}": ["accept_anyway"], f"note.{path}": ["as printed"]}
        elif value is None and node.required:
            form |= {f"decision.{path}": ["absent"], f"confirm.{path}": ["yes"]}
        else:
            form[f"decision.{path}"] = ["accept"]
    return form


def test_a_value_that_fails_its_schema_is_accepted_only_anyway_and_with_a_note():
    record = _flagged_cells()
    form = _answer_each(record)
    assert form["decision.lines[0].qty"] == ["accept_anyway"]
    review = build_review(record, form, "ana", schema=SCHEMA)
    assert review["notes"] == {"lines[0].qty": "as printed"}
    assert "lines[0].qty" in review["accepted"]
    assert_valid_record({**record, "review": review})
    plain = {**form, "decision.lines[0].qty": ["accept"]}
    with pytest.raises(DecisionError) as raised:
        build_review(record, plain, "ana", schema=SCHEMA)
    assert raised.value.problems == {
        "lines[0].qty": "the extracted value fails the schema: the value must be bigger than or "
        'equal to 1: correct it or "accept anyway"'
    }
    with pytest.raises(DecisionError, match="needs a note"):
        build_review(record, {**form, "note.lines[0].qty": [" "]}, "ana", schema=SCHEMA)
    # Required and not found: "not on the document" only once confirmed, never by accepting.
    for answer in ({"decision.lines[2].amount": ["accept"]}, {"confirm.lines[2].amount": [""]}):
        with pytest.raises(DecisionError) as raised:
            build_review(record, {**form, **answer}, "ana", schema=SCHEMA)
        assert list(raised.value.problems) == ["lines[2].amount"]


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("322.50", 322.5),
        ("$322.50", 322.5),
        ("1,234.50", 1234.5),
        ("300,00", 300.0),
        ("1.234,50", 1234.5),
        ("1 234,50", 1234.5),
        ("EUR 12", 12),
        ("322.50 USD", 322.5),
        ("1,234", 1234),
        ("-3", -3),
    ],
)
def test_numbers_are_read_in_the_forms_people_type_them(text, number):
    assert read_number(text) == number
    assert type(read_number(text)) is type(number)


@pytest.mark.parametrize("text", ["three hundred", "1,2,3", "1,234,50", "12a", "$", ""])
def test_what_is_not_a_number_is_refused(text):
    with pytest.raises(ValueError, match="not a number"):
        read_number(text)


def test_a_whole_number_reads_a_dot_between_thousands_as_grouping():
    assert read_number("1.000", integer=True) == 1000
    assert read_number("1.000") == 1.0  # a decimal where fractions may be
    with pytest.raises(ValueError, match="not a whole number"):
        read_number("1.5", integer=True)


@pytest.mark.parametrize("text", ["9" * 39, "1" * 20 + "." + "1" * 19, "9" * 400])
def test_a_number_a_record_cannot_hold_is_refused(text):
    with pytest.raises(ValueError, match="more than 38 digits"):
        read_number(text)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400", "[1, NaN]"])
def test_json_corrections_hold_finite_numbers_only(text):
    assert parse_value(text) == text  # kept as the text typed, never a float that cannot be stored


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("2024-03-05", "2024-03-05"),
        ("2024-3-5", "2024-03-05"),
        ("2024/03/05", "2024-03-05"),
        ("5 March 2024", "2024-03-05"),
        ("Mar 5, 2024", "2024-03-05"),
        ("25.12.2024", "2024-12-25"),
        ("12/25/2024", "2024-12-25"),
    ],
)
def test_dates_are_normalised_to_the_schema_format(text, date):
    assert read_date(text) == date


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("03/04/2024", "ambiguous"),
        ("2024-02-30", "no such date"),
        ("soon", "not a date"),
        ("25.12.24", "the year in full"),  # not the year 24
    ],
)
def test_a_date_that_cannot_be_read_is_refused(text, problem):
    with pytest.raises(ValueError, match=problem):
        read_date(text)


def test_a_correction_is_read_by_its_type_and_checked_against_its_property_schema():
    record = _record()
    # The page's live check and the stored decision read the text the same way.
    assert check_correction(record, INVOICE, "total_amount", "$1,234.50") == {
        "shown": "read as 1234.5"
    }
    assert check_correction(record, INVOICE, "total_amount", "1234.5") == {
        "shown": "fits the schema (minimum)"
    }
    assert "pattern" in check_correction(record, INVOICE, "invoice_number", "12345")["problem"]
    # A right value says it fits what it could have failed; spaces dropped are said too.
    assert check_correction(record, INVOICE, "invoice_number", "INV-0078") == {
        "shown": "fits the schema (pattern)"
    }
    assert check_correction(record, INVOICE, "invoice_number", " INV-0078 ") == {
        "shown": "read as INV-0078 (spaces around it dropped)"
    }
    form = _form(
        decision__invoice_number="correct",
        value__invoice_number="12345",  # a string with a pattern: not stored as a number
        decision__due_date="correct",
        value__due_date="March 5, 2024",
        decision__total_amount="correct",
        value__total_amount="300,00",
    )
    with pytest.raises(DecisionError) as raised:
        build_review(record, form, "ana", schema=INVOICE)
    assert list(raised.value.problems) == ["invoice_number"]
    assert "the value must match pattern ^INV-[0-9]+$" in raised.value.problems["invoice_number"]
    form["value.invoice_number"] = ["INV-12345"]
    review = build_review(record, form, "ana", schema=INVOICE)
    assert review["corrected"] == {
        "invoice_number": "INV-12345",
        "due_date": "2024-03-05",
        "total_amount": 300.0,
    }
    assert review["outcome"] == "decided"


def test_each_flagged_cell_is_decided_on_its_own_by_its_path():
    decide = to_decide(_flagged_cells(), SCHEMA)
    assert list(decide) == [
        "lines[0].qty",
        "lines[1].description",
        "lines[1].amount",
        "lines[2].amount",
    ]
    assert [r.flag for r in decide["lines[0].qty"]] == [
        "invalid_field:lines[0].qty",
        "low_confidence_field:lines[0].qty",
    ]
    assert "no score" in decide["lines[0].qty"][1].text
    assert "0.25 is below the threshold 0.80" in decide["lines[1].amount"][0].text


def test_corrected_cells_are_stored_by_path_and_parsed_by_their_column_type():
    record = _flagged_cells()
    form = {
        "decision.lines[0].qty": ["correct"],
        "value.lines[0].qty": ["4"],
        "decision.lines[1].description": ["correct"],
        "value.lines[1].description": ["300"],  # a string column keeps the text
        "decision.lines[1].amount": ["correct"],
        "value.lines[1].amount": ["20.0"],  # the same number: accepted
        "decision.lines[2].amount": ["correct"],
        "value.lines[2].amount": [" 12.5 "],
        "value.lines": ["[]"],  # the list holds cells to decide: not a whole-list correction
    }
    review = build_review(record, form, "ana", schema=SCHEMA)
    assert review["accepted"] == ["lines[1].amount"]
    assert review["corrected"] == {
        "lines[0].qty": 4,
        "lines[1].description": "300",
        "lines[2].amount": 12.5,
    }
    assert type(review["corrected"]["lines[0].qty"]) is int
    assert_valid_record({**record, "review": review})


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("lines[2].amount", "twelve", "not a number: type digits, e.g. 1234.50"),
        ("lines[2].amount", "three hundred twenty-two fifty", "not a number"),
        ("lines[0].qty", "2.5", "2.5 is not a whole number"),
        ("lines[0].qty", "true", "not a whole number"),
        ("lines[0].qty", "0", "fails the schema: the value must be bigger than or equal to 1"),
    ],
)
def test_a_value_its_column_cannot_hold_is_a_clear_error(path, text, expected):
    form = _answer_each(_flagged_cells())
    form.update({f"decision.{path}": ["correct"], f"value.{path}": [text]})
    with pytest.raises(DecisionError) as raised:
        build_review(_flagged_cells(), form, "ana", schema=SCHEMA)
    assert list(raised.value.problems) == [path]
    assert expected in raised.value.problems[path]


def test_null_clears_a_cell_and_without_the_schema_values_are_read_as_json():
    record = _flagged_cells()
    form = _answer_each(record)
    form.update({"decision.lines[1].description": ["correct"]})
    form.update({"value.lines[1].description": ["null"]})
    with pytest.raises(DecisionError, match="confirm"):
        build_review(record, form, "a", schema=SCHEMA)  # a required column: confirm it
    form["confirm.lines[1].description"] = ["yes"]
    assert build_review(record, form, "a", schema=SCHEMA)["corrected"] == {
        "lines[1].description": None,
        "lines[2].amount": None,
    }
    form["value.lines[1].description"] = ["300"]
    assert build_review(record, form, "a")["corrected"] == {
        "lines[1].description": 300,
        "lines[2].amount": None,
    }


def test_an_incomplete_list_is_decided_as_a_whole_with_what_was_expected():
    record = _nested([cell_row("Bolts", 500)], total=510)
    assert record["flags"] == ["incomplete_list:lines"]
    decide = to_decide(record, SCHEMA)
    assert list(decide) == ["lines"]
    assert decide["lines"][0].text == "1 row found; the schema asks for at least 2 (minItems)"
    assert "fewer than the schema's minItems" in to_decide(record)["lines"][0].text
    rows = '[{"description": "Bolts", "amount": 500}, {"description": "Nuts", "amount": 0}]'
    review = build_review(
        record, {"decision.lines": ["correct"], "value.lines": [rows]}, "ana", schema=SCHEMA
    )
    assert review["corrected"] == {"lines": json.loads(rows)}
    with pytest.raises(DecisionError) as raised:
        build_review(record, {}, "ana", schema=SCHEMA)
    assert list(raised.value.problems) == ["lines"]


def test_a_failed_check_asks_for_every_value_it_adds_up_and_compares():
    record = _nested([cell_row("Bolts", 500), cell_row("Nuts", 20)], tax=10, total=600)
    assert record["flags"] == ["failed_check:total_matches_lines"]
    assert list(to_decide(record, SCHEMA)) == ["lines[0].amount", "lines[1].amount", "tax", "total"]
    assert to_decide(record) == {}  # without the schema the page only shows the check


def test_an_audit_sample_asks_for_every_field_and_every_cell():
    record = _nested([cell_row("Bolts", 500), cell_row("Nuts", 20)], total=530, audit_sample=True)
    assert record["review_status"] == "auto"
    assert record["flags"] == []
    assert to_decide(record, SCHEMA) == {}
    decide = to_decide(record, SCHEMA, audit=True)
    columns = ("description", "qty", "amount")
    assert list(decide) == [f"lines[{i}].{c}" for i in (0, 1) for c in columns] + ["tax", "total"]
    assert {r.flag for reasons in decide.values() for r in reasons} == {"audit_sample"}
    form = {f"decision.{p}": ["accept"] for p in decide}
    del form["decision.tax"]
    with pytest.raises(DecisionError) as raised:
        build_review(record, form, "ana", schema=SCHEMA, audit=True)
    assert list(raised.value.problems) == ["tax"]
    form.update({"decision.tax": ["correct"], "value.tax": ["11"]})
    review = build_review(record, form, "ana", schema=SCHEMA, audit=True)
    assert review["corrected"] == {"tax": 11}
    assert review["accepted"] == [p for p in decide if p != "tax"]
    assert_valid_record({**record, "review": review})


def _pageless(record, **options):
    """The review page of ``record`` open for ana, without page images."""
    return document_page(
        record,
        pages=[],
        page_count=0,
        render_error=None,
        token="t",
        reviewer="ana",
        is_open=True,
        **options,
    )


def _page(record, **options):
    options.setdefault("schema", SCHEMA)
    return document_page(
        record,
        pages=[RenderedPage(0, 100, 200, "image/png", b"")],
        page_count=1,
        render_error=None,
        token="t",
        reviewer="ana",
        is_open=True,
        **options,
    )


def test_the_page_shows_the_list_as_a_table_with_each_flagged_cell_marked_and_boxed():
    record = _flagged_cells()
    record["fields"]["lines"]["items"][2]["description"]["value"] = "<b>Washers</b>"
    html = _page(record)
    assert "<caption>lines: 3 rows</caption>" in html
    assert "&lt;b&gt;Washers&lt;/b&gt;" in html
    assert "<b>Washers" not in html
    # The four cells to decide are marked in the table and each leads to its own card.
    marked = re.findall(r'<td class="to-decide [^"]*"><a href="#(field-\d)"', html)
    assert marked == ["field-0", "field-1", "field-2", "field-3"]
    cards = re.findall(
        r'<fieldset class="field-card flagged[^"]*" id="(field-\d)"\s+data-field="([^"]+)"', html
    )
    assert cards == [
        ("field-0", "lines[0].qty"),
        ("field-1", "lines[1].description"),
        ("field-2", "lines[1].amount"),
        ("field-3", "lines[2].amount"),
    ]
    assert 'name="decision.lines[1].amount" value="accept"' in html
    assert re.search(r'name="value.lines\[1\].amount"[^>]*inputmode="decimal"', html)
    assert not re.search(r'name="value.lines\[1\].description"[^>]*inputmode', html)
    # The box is the cell's own bbox (TableCell/2: x 50-90, y 100-120 on a 100 x 200 page).
    [box] = re.findall(r'<a class="box [^"]*" id="box-2" href="#field-2"[^>]*>', html)
    assert 'data-field="lines[1].amount"' in box
    assert "left:50.0000%;top:50.0000%;width:40.0000%;height:10.0000%" in box
    assert html.count('class="box ') == 1  # the other cells have no citation on the page
    assert 'class="field-row"' in html  # tax and total: not flagged, listed below
    assert "Check 4 flagged fields" in html


def test_a_failed_check_is_shown_with_its_sum_the_expected_value_and_the_tolerance():
    record = _nested([cell_row("Bolts", 500), cell_row("Nuts", 20)], tax=10, total=600)
    html = _page(record)
    [row] = re.findall(r'<tr class="check-failed">.*?</tr>', html)
    assert "<code>total_matches_lines</code>" in row
    assert "lines[].amount + tax = total" in row
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells == ["<b>failed</b>", "530.0", "600.0", "0.01"]
    assert "Check 4 flagged fields" in html
    assert "lines[].amount" not in _page(record, schema=None)  # no schema: no rule to show
    assert "<b>failed</b>" in _page(record, schema=None)


def test_an_incomplete_list_shows_its_rows_found_and_the_minimum():
    html = _page(_nested([cell_row("Bolts", 500)], total=510))
    [card] = re.findall(r'<fieldset class="field-card.*?</fieldset>', html, re.S)
    assert 'data-field="lines"' in card
    assert "1 row found; the schema asks for at least 2 (minItems)" in card
    assert "<caption>1 row</caption>" in card  # the extracted rows, as a table
    assert '<textarea name="value.lines"' in card


def test_an_audit_sample_says_so_and_asks_for_every_field():
    record = _nested([cell_row("Bolts", 500), cell_row("Nuts", 20)], total=530, audit_sample=True)
    html = _page(record, audit=True)
    assert "Audit sample" in html
    assert (
        "chosen at random from documents that passed automatically, to measure how often auto "
        "is wrong" in html
    )
    assert "Check 8 fields" in html
    assert 'data-noun="field"' in html
    assert html.count('class="field-card flagged') == 8
    assert "Audit sample" not in _page(record)


# ---------------------------------------------------------------------- thresholds that applied


def test_review_will_not_serve_a_page_that_signs_decisions_with_no_name(capsys):
    assert main(["review", "--reviewer", " ", "--port", "0"]) == 2
    assert "pass --reviewer NAME" in capsys.readouterr().err
    with pytest.raises(ValueError, match="reviewer"):
        ReviewServer(None, reviewer="")  # type: ignore[arg-type]


def test_the_page_shows_the_reviewer_and_has_no_box_to_change_it():
    html = _pageless(_record())
    assert 'reviewing as <b id="reviewer">ana</b>' in html
    assert 'name="reviewer"' not in html


def test_a_failed_document_offers_its_three_outcomes_and_the_schema_fields():
    record = _failed()
    html = _pageless(record, schema=INVOICE)
    for outcome in ("entered_by_hand", "reprocess", "rejected"):
        assert f'name="outcome" value="{outcome}"' in html
    assert html.count('class="hand-entry') == len(INVOICE["properties"])
    assert 'name="confirm.invoice_number"' in html  # required: empty needs confirming
    assert 'name="confirm.customer_name"' not in html
    assert "timeout: may succeed on a new try" in html  # doctriage reprocess's own advice
    error = DecisionError({"outcome": "choose an outcome"})
    refused = _pageless(record, schema=INVOICE, error=error, form={})
    assert '<a href="#outcomes">outcome</a>: choose an outcome' in refused


def test_a_value_failing_its_schema_is_offered_only_accept_anyway_with_a_note():
    html = _pageless(_record(), schema=INVOICE)
    card = html.split('data-field="invoice_number"', 1)[1].split("</fieldset>", 1)[0]
    assert 'value="accept_anyway"' in card
    assert 'value="accept"' not in card
    assert 'name="note.invoice_number"' in card
    assert "must match pattern" in card
    total = html.split('data-field="total_amount"', 1)[1].split("</fieldset>", 1)[0]
    assert 'value="accept"' in total
    assert 'value="absent"' in total


def test_the_page_shows_each_fields_own_threshold_and_says_1_0_forces_review():
    sch = schema(
        forced=STR | {"x-review-threshold": 1.0},
        strict=STR | {"x-review-threshold": 0.95},
        plain=STR,
    )
    extracted = {"forced": "a", "forced_score": s(5), "strict": "b", "strict_score": s(5)}
    extracted |= {"plain": "c", "plain_score": s(5)}
    record = record_of(run(sch, extracted, default=0.8))
    assert record["flags"] == ["low_confidence_field:forced"]
    assert_valid_record(record)
    reason = to_decide(record, sch)["forced"][0].text
    assert reason == "threshold 1.0 forces review of this field, whatever its confidence"
    html = _pageless(record)
    card = html[html.index('data-field="forced"') :]
    assert "1.0 forces review (this field&#x27;s own; the document&#x27;s is 0.80)" in card
    assert "1.00 is below" not in html
    # Colours use the threshold that applied: 0.9 is amber under 0.95 though above the 0.8.
    strict = {**record["fields"]["strict"], "confidence": 0.9}
    assert confidence_class(strict, 0.8) == "conf-mid"
    assert confidence_class({**strict, "threshold": None}, 0.8) == "conf-ok"


def test_a_record_without_field_thresholds_falls_back_to_the_documents():
    flagged = to_decide(_record(human_review_threshold=1.0))
    assert "forces review" in flagged["total_amount"][0].text


# ---------------------------------------------------------------------- the queue, conflicts


def _open_page(queue):
    return _pageless(_record(), queue=queue)


def test_the_page_says_how_often_a_document_was_handed_out_and_when_it_nears_the_dlq():
    html = _open_page(QueueFacts(receive_count=3, max_receive_count=10, depth=(4, 1)))
    assert 'handed out <b id="receive-count">3</b> times' in html
    assert '<b id="queue-waiting">4</b> waiting on the review queue' in html
    assert "near-dlq" not in html
    near = _open_page(QueueFacts(receive_count=8, max_receive_count=10, depth=None))
    assert "Near the review dead-letter queue: 2 more deliveries" in near
    last = _open_page(QueueFacts(receive_count=10, max_receive_count=10, depth=None))
    assert "This is its last delivery" in last
    assert "near-dlq" not in _open_page(QueueFacts(9, None, None))  # no redrive policy


def test_the_conflict_page_shows_the_stored_decision_and_offers_an_amendment():
    record = _record()
    stored = with_history(
        {
            "reviewer": "bo",
            "decided_at": "2024-05-01T10:00:00.000Z",
            "accepted": ["invoice_number", "due_date", "total_amount"],
            "corrected": {},
        },
        None,
    )
    form = _form(
        token="t",
        reviewer="ana",
        decision__invoice_number="correct",
        value__invoice_number='INV-"77"',
        decision__due_date="accept",
        decision__total_amount="accept",
    )
    yours = build_review(record, form, "ana", decided_at="2024-05-01T11:00:00.000Z")
    html = conflict_page(record, stored=stored, yours=yours, form=form, revision=1, token="t")
    assert "The stored decision" in html
    assert "By <b>bo</b>" in html
    assert (
        "<code>invoice_number</code>: accepted &rarr; corrected to "
        "&quot;INV-\\&quot;77\\&quot;&quot;" in html
    )
    assert 'name="revision" value="1"' in html
    assert 'name="value.invoice_number" value="INV-&quot;77&quot;"' in html  # resent, escaped
    assert html.count('name="token"') == 1
    assert 'action="/doc/doc-1/amend"' in html


def test_a_form_sent_back_shows_the_reading_of_what_it_holds():
    # A refused decision's page keeps the typed text, and says again how it is read.
    form = _form(decision__total_amount="correct", value__total_amount="$1,234.50")
    html = _pageless(_record(), schema=INVOICE, form=form, error=DecisionError({"x": "y"}))
    card = html.split('data-field="total_amount"', 1)[1].split("</fieldset>", 1)[0]
    assert re.search(
        r'<p class="reading" id="reading-\d+" aria-live="polite">read as 1234.5</p>', card
    )
    refused = _form(decision__invoice_number="correct", value__invoice_number="12345")
    html = _pageless(_record(), schema=INVOICE, form=refused, error=DecisionError({"x": "y"}))
    card = html.split('data-field="invoice_number"', 1)[1].split("</fieldset>", 1)[0]
    assert 'class="reading refused"' in card
    assert "must match pattern" in card


def test_schema_refusals_name_the_part_that_fails_in_words():
    from doctriage_local.review.decision import schema_problem

    lines = {"type": "array", "items": {"type": "object", "properties": {"amount": NUM}}}
    problem = schema_problem([{"amount": "934.50"}], lines, {"type": "object", "properties": {}})
    assert problem == "fails the schema: [0].amount must be a number"


def test_the_conflict_page_warns_that_an_amended_reprocess_sends_the_upload_again():
    record = _failed()
    stored = with_history(
        {
            "reviewer": "bo",
            "decided_at": "2024-05-01T10:00:00.000Z",
            "outcome": "rejected",
            "rejected_reason": "unreadable",
            "accepted": [],
            "corrected": {},
        },
        None,
    )
    form = _form(token="t", outcome="reprocess")
    yours = build_review(record, form, "ana", schema=INVOICE)
    html = conflict_page(record, stored=stored, yours=yours, form=form, revision=1, token="t")
    assert 'id="resend-warning"' in html
    rejected = build_review(record, _form(outcome="rejected", reject_reason="duplicate"), "ana")
    html = conflict_page(record, stored=stored, yours=rejected, form=form, revision=1, token="t")
    assert 'id="resend-warning"' not in html


def test_checks_after_the_corrections_are_evaluations_own():
    from doctriage_local.review.decision import checks_after

    record = _nested([cell_row("Bolts", 500), cell_row("Nuts", 20)], total=530)
    [before] = record["checks"]
    assert (before["name"], before["passed"]) == ("total_matches_lines", True)

    def after(corrected):
        [check] = checks_after(record, SCHEMA, {"corrected": corrected})
        return check["passed"], check["computed"], check["expected"]

    assert after({}) == (True, 530.0, 530.0)
    assert after({"total": 532}) == (False, 530.0, 532.0)  # the total no longer adds up
    assert after({"lines[1].amount": 22, "total": 532}) == (True, 532.0, 532.0)  # a cell
    whole = [{"description": "Bolts", "amount": 400}, {"description": "Nuts", "amount": 20}]
    assert after({"lines": whole}) == (False, 430.0, 530.0)  # the whole list
    assert after({"tax": None}) == (None, None, 530.0)  # not on the document: nothing to add
    assert checks_after(record, None, {"corrected": {"total": 1}}) == []  # no schema, no checks


def test_a_failed_reprocess_says_what_it_reprocessed_and_that_once_more_costs_again():
    earlier = "doc-" + "b" * 40
    record = _failed()
    assert 'id="already-reprocessed"' not in _pageless(record, schema=INVOICE)
    record["source"] = {**record["source"], "reprocess_of": earlier}
    assert_valid_record(record)
    html = _pageless(record, schema=INVOICE)
    assert f"a reprocess of <code>{earlier}</code>" in html
    assert 'id="already-reprocessed"' in html


def test_an_unscored_cell_shows_its_lists_confidence():
    html = _page(_flagged_cells())
    card = html.split('data-field="lines[0].qty"', 1)[1].split("</legend>", 1)[0]
    assert "unscored (its list: confidence 0.25)" in card
    whole = _pageless(_record())  # a top-level field has no list to speak for it
    assert "its list" not in whole
