"""domain/extraction.py: one reader of Datalab's result for the poll step and the evaluation.

The property that matters: the poll stops waiting (``has_scores``) exactly when the evaluation
finds a usable score, so a ``{"score": null}`` placeholder keeps the poll waiting instead of
ending it with ``scores_unavailable``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doctriage_core.domain.evaluation import evaluate_extraction
from doctriage_core.domain.extraction import has_scores, parse_extraction, read_score
from doctriage_core.errors import DatalabMalformedResponse

SCHEMA = {"properties": {"invoice_number": {"type": "string"}, "total": {"type": "number"}}}


def _extraction(**values: Any) -> dict[str, Any]:
    return {"status": "complete", "extraction_schema_json": json.dumps(values)}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_extraction(total=5, total_score={"score": 4, "reasoning": "ok"}), True),
        (_extraction(total=5, total_score={"score": 4.0}), True),
        # the extraction already parsed into a dict counts the same
        ({"extraction_schema_json": {"total": 5, "total_score": {"score": 4}}}, True),
        # Datalab's placeholders before scoring: null scores and a null average
        (
            {
                **_extraction(total=5, total_score={"score": None}),
                "extraction_score_average": None,
            },
            False,
        ),
        # an average alone does not make a field scored (evaluation reads field scores)
        ({"extraction_score_average": 4.5, "extraction_schema_json": "{}"}, False),
        ({"extraction_score_average": None, "extraction_schema_json": "{}"}, False),
        ({"extraction_schema_json": "{}"}, False),
        # scores evaluation refuses are no scores here either
        (_extraction(total=5, total_score={"score": 3.5}), False),
        (_extraction(total=5, total_score={"score": "4"}), False),
        (_extraction(total=5, total_score={"score": True}), False),
        (_extraction(total=5, total_score={"score": 0}), False),
        (_extraction(total=5, total_score={"score": 6}), False),
        (_extraction(total=5, total_score=4), False),
        # one usable score among placeholders is enough (evaluation flags the others)
        (
            _extraction(
                total=5,
                total_score={"score": None},
                invoice_number="A",
                invoice_number_score={"score": 5},
            ),
            True,
        ),
        # a score with no field next to it is not a field score
        (_extraction(total=5, other_score={"score": 4}), False),
        # a property named credit_score holding a string is a value, not a score
        (_extraction(credit_score="750", credit_score_citations=["/page/0/Line/1"]), False),
        (_extraction(credit="A", credit_score="750"), False),
        (_extraction(total=5, total_score={"reasoning": "pending"}), False),
        ({"extraction_schema_json": "{not json"}, False),
        ({"extraction_schema_json": "[1, 2]"}, False),
        ({"extraction_schema_json": None}, False),
        ("not a dict", False),
    ],
)
def test_has_scores(body: Any, expected: bool) -> None:
    assert has_scores(body) is expected


def test_has_scores_by_schema_names_reads_only_those_fields() -> None:
    body = _extraction(total=5, total_score={"score": 4}, other=1, other_score={"score": 4})
    assert has_scores(body, ["invoice_number"]) is False
    assert has_scores(body, ["total"]) is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"score": 5, "reasoning": "r"}, (5, "r")),
        ({"score": 1.0}, (1, None)),
        ({"score": None, "reasoning": "pending"}, (None, "pending")),
        ({"score": 2.5}, (None, None)),
        (None, (None, None)),
        ("5", (None, None)),
    ],
)
def test_read_score(raw: object, expected: tuple[int | None, str | None]) -> None:
    assert read_score(raw) == expected


def test_parse_extraction_refuses_what_is_not_an_object() -> None:
    with pytest.raises(DatalabMalformedResponse):
        parse_extraction({"extraction_schema_json": "[1]"})
    assert parse_extraction({"extraction_schema_json": '{"a": NaN}'}) == {"a": None}


scores = st.one_of(
    st.none(),
    st.integers(-1, 7),
    st.floats(0, 6, allow_nan=False),
    st.booleans(),
    st.text(max_size=2),
    st.dictionaries(
        st.sampled_from(["score", "reasoning"]),
        st.one_of(st.none(), st.integers(-1, 7), st.floats(0, 6, allow_nan=False), st.text()),
    ),
)
values = st.one_of(st.none(), st.just("INV-1"), st.integers(0, 100))


@given(
    invoice_number=values,
    total=values,
    invoice_number_score=st.none() | scores,
    total_score=st.none() | scores,
    average=st.none() | st.floats(0, 6, allow_nan=False),
)
def test_the_poll_and_the_evaluation_agree_on_what_a_score_is(
    invoice_number: Any, total: Any, invoice_number_score: Any, total_score: Any, average: Any
) -> None:
    # GIVEN any complete body, placeholders and junk scores included
    extraction: dict[str, Any] = {"invoice_number": invoice_number, "total": total}
    if invoice_number_score is not None:
        extraction["invoice_number_score"] = invoice_number_score
    if total_score is not None:
        extraction["total_score"] = total_score
    body = {
        "status": "complete",
        "extraction_schema_json": json.dumps(extraction),
        "extraction_score_average": average,
    }
    # WHEN the poll decides whether scores have arrived and the evaluation reads them
    evaluation = evaluate_extraction(SCHEMA, body, upload_doc_type="invoice", default_threshold=0.5)
    # THEN "scored" means exactly "the evaluation found a usable score"
    assert has_scores(body) is ("scores_unavailable" not in evaluation.flags)
    assert has_scores(body, SCHEMA["properties"]) is has_scores(body)
