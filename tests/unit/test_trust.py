"""doctriage_local/trust.py against hand-worked values: observations from decisions, Wilson
intervals, ECE, AUROC with ties, the recommendation rule at each of its boundaries, and the
schema it writes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from doctriage_core.domain.evaluation import confidence_of, is_low_confidence
from doctriage_core.domain.schemas import load_schema
from doctriage_local import trust, trust_report
from doctriage_local.paths import SAMPLE_SCHEMAS
from doctriage_local.trust import Observation, auroc, by_score, ece, recommend, wilson
from tests.contracts import assert_valid_record


def _field(value: Any, score: int | None) -> dict[str, Any]:
    return {
        "value": value,
        "found": value is not None,
        "confidence": None if score is None else confidence_of(score),
        "score": score,
    }


def _record(review: dict[str, Any] | None, *, audit: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "document_id": "d1",
        "status": "complete",
        "review_status": "auto" if audit else "needs_review",
        "flags": [] if audit else ["low_confidence_field:total"],
        "document_type": "invoice",
        "human_review_threshold": 0.85,
        "source": {"bucket": "b", "key": "incoming/invoice/a.pdf"},
        "audit_sample": audit,
        "fields": {
            "total": _field(100.0, 2),
            "number": _field("INV-1", 5),
            "due": _field("2026-01-01", 4),
            "note": _field("x", 3),
            "line_items": {
                **_field([{"amount": 60}, {"amount": 40}], None),
                "items": [{"amount": _field(60, 5)}, {"amount": _field(40, 1)}],
            },
            "address": {
                **_field({"city": "Oslo"}, None),
                "properties": {"city": _field("Oslo", 4)},
            },
        },
    }
    if review is not None:
        record["review"] = {"reviewer": "r", "decided_at": "2026-12-01T00:00:00Z", **review}
    assert_valid_record(record)
    return record


def _obs(score: int, correct: bool, n: int = 1) -> list[Observation]:
    return [Observation("invoice", "total", score, correct, False)] * n


# ---------------------------------------------------------------------- observations


def test_decisions_become_observations_by_path() -> None:
    review = {
        "accepted": ["number", "line_items[0].amount", "address.city"],
        "corrected": {"total": 120.0, "due": "2026-01-01", "line_items[1].amount": 45},
    }
    got = {o.path: o for o in trust.observations([_record(review)])}
    # accepted: correct; corrected to another value: wrong; "corrected" to itself: confirmed
    assert {p: (o.score, o.correct) for p, o in got.items()} == {
        "number": (5, True),
        "line_items[0].amount": (5, True),
        "address.city": (4, True),
        "total": (2, False),
        "due": (4, True),
        "line_items[1].amount": (1, False),
    }
    # undecided fields (note) are not observations; cells pool per column
    assert got["line_items[1].amount"].field == "invoice/line_items[].amount"
    assert got["address.city"].field == "invoice/address.city"


def test_records_without_a_review_and_paths_the_record_lacks_are_no_observations() -> None:
    records = [
        _record(None),
        _record({"accepted": ["nope", "line_items[7].amount", "line_items[0]"], "corrected": {}}),
    ]
    assert list(trust.observations(records)) == []


def test_a_corrected_value_of_another_type_is_wrong_and_audit_comes_from_the_record() -> None:
    [o] = trust.observations([_record({"accepted": [], "corrected": {"total": "100"}}, audit=True)])
    assert (o.correct, o.audit) == (False, True)


# ---------------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [(0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (8, 10, 0.4902, 0.9433), (1, 2, 0.0945, 0.9055)],
)
def test_wilson_interval(successes: int, n: int, low: float, high: float) -> None:
    assert wilson(successes, n) == pytest.approx((low, high), abs=5e-5)


@pytest.mark.parametrize(("successes", "n"), [(0, 0), (3, 2), (-1, 4)])
def test_wilson_refuses_what_is_not_a_proportion(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="wilson"):
        wilson(successes, n)


def test_ece_weighs_each_score_bins_gap_by_its_share() -> None:
    # score 5: 9/10 right (gap |0.9 - 1.0| = 0.1); score 3: 5/10 right (gap |0.5 - 0.5| = 0)
    levels = by_score(_obs(5, True, 9) + _obs(5, False) + _obs(3, True, 5) + _obs(3, False, 5))
    assert ece(levels) == pytest.approx(0.05)
    # score 1: 2/4 right: confidence 0.0, gap 0.5
    assert ece(by_score(_obs(1, True, 2) + _obs(1, False, 2))) == pytest.approx(0.5)
    assert ece({}) is None


def test_auroc_counts_ties_half_and_is_null_with_one_class() -> None:
    # right at 5, 5, 4; wrong at 4, 2: of 6 pairs, 4 wins + (4 vs 4) half + (4 vs 2) win = 5.5
    obs = _obs(5, True, 2) + _obs(4, True) + _obs(4, False) + _obs(2, False)
    assert auroc(by_score(obs)) == pytest.approx(5.5 / 6)
    assert auroc(by_score(_obs(4, True) + _obs(4, False))) == 0.5
    assert auroc(by_score(_obs(5, True, 3))) is None
    assert auroc(by_score(_obs(1, False, 3))) is None


def test_by_score_levels_are_the_levels_seen() -> None:
    levels = by_score(
        _obs(5, True, 8) + _obs(5, False, 2) + [Observation("i", "x", None, True, False)]
    )
    assert levels == {5: {"n": 10, "correct": 8, "accuracy": 0.8, "ci95": list(wilson(8, 10))}}


# ---------------------------------------------------------------------- the rule's boundaries


def _ranked(top: int) -> list[Observation]:
    """``top`` right at score 5, then 5/10 right at 3 and 0/10 at 1 (AUROC well above 0.55)."""
    return _obs(5, True, top) + _obs(3, True, 5) + _obs(3, False, 5) + _obs(1, False, 10)


def test_thirty_observations_can_rank_twenty_nine_cannot() -> None:
    # at 0.3 only score 5 qualifies: 0 errors of 10 -> upper 0.2775; of 9 -> 0.2991
    assert recommend(by_score(_ranked(10)), target_error=0.3)[::2] == (True, 5)
    assert recommend(by_score(_ranked(9)), target_error=0.3)[::2] == (False, None)


def test_three_score_levels_can_rank_two_cannot() -> None:
    two = _obs(5, True, 20) + _obs(1, False, 10)
    assert recommend(by_score(two), target_error=0.3) == (False, 1.0, None)
    # at 0.3: scores >= 1 have 10 errors of 31 (upper 0.495), scores >= 3 none of 21 (0.155)
    can_rank, _, min_score = recommend(by_score(two + _obs(3, True)), target_error=0.3)
    assert (can_rank, min_score) == (True, 3)


@pytest.mark.parametrize(
    ("at_three", "at_one", "area", "min_score"), [(300, 300, 0.55, 5), (298, 302, 0.549, None)]
)
def test_auroc_of_055_can_rank_0549_cannot(
    at_three: int, at_one: int, area: float, min_score: int | None
) -> None:
    # 1000 right: 400 at 5, the rest at 3 and 1; 10 wrong, all at 3:
    # AUROC = (400 + at_three / 2) / 1000
    obs = _obs(5, True, 400) + _obs(3, True, at_three) + _obs(1, True, at_one) + _obs(3, False, 10)
    can_rank, got, recommended = recommend(by_score(obs), target_error=0.01)
    assert got == pytest.approx(area)
    assert (can_rank, recommended) == (min_score is not None, min_score)


def test_the_lowest_score_whose_wilson_upper_error_bound_meets_the_target() -> None:
    # 0 errors of n at score 5: the upper bound is z^2 / (n + z^2): 0.009982 at 381, 0.010008 at 380
    assert recommend(by_score(_ranked(381)), target_error=0.01)[2] == 5
    assert recommend(by_score(_ranked(380)), target_error=0.01)[2] is None
    # the lowest such level wins: at 0.05, scores >= 3 (5 errors of 391, upper 0.0296) qualify,
    # scores >= 1 (15 of 401, upper 0.0608) do not
    assert recommend(by_score(_ranked(381)), target_error=0.05)[2] == 3


@pytest.mark.parametrize(
    ("min_score", "threshold"), [(1, 0.0), (2, 0.25), (3, 0.5), (4, 0.75), (5, 0.875)]
)
def test_the_recommended_threshold_lets_exactly_the_scores_at_or_above_pass(
    min_score: int, threshold: float
) -> None:
    got = trust.threshold_for(min_score)
    assert got == threshold
    assert got < 1.0  # 1.0 would force review of every field
    passing = [
        s for s in range(1, 6) if not is_low_confidence(confidence_of(s), got, no_scores=False)
    ]
    assert passing == list(range(min_score, 6))


def test_review_load_is_the_share_below_the_minimum_score() -> None:
    levels = by_score(_ranked(380))  # 380 at 5, 10 at 3, 10 at 1
    assert trust.review_load(levels, 5) == pytest.approx(20 / 400)
    assert trust.review_load(levels, None) == 1.0


# ---------------------------------------------------------------------- the report


def test_report_has_the_issues_shape() -> None:
    review = {"accepted": ["number", "address.city"], "corrected": {"total": 1.0}}
    report = trust.report([_record(review), _record(review, audit=True)], target_error=0.05)
    json.dumps(report, allow_nan=False)
    assert report["observations"] == 6
    assert report["by_score"]["2"] == {
        "n": 2,
        "correct": 0,
        "accuracy": 0.0,
        "ci95": [0.0, pytest.approx(0.6576, abs=1e-4)],
    }
    assert report["audit"] == {
        "n": 3,
        "errors": 1,
        "rate": pytest.approx(1 / 3),
        "ci95": list(wilson(1, 3)),
    }
    assert set(report["fields"]) == {"invoice/number", "invoice/address.city", "invoice/total"}
    total = report["fields"]["invoice/total"]
    assert total == {
        "n": 2,
        "by_score": {"2": report["by_score"]["2"]},
        "auroc": None,
        "can_rank": False,
        "recommended_min_score": None,
        "recommended_threshold": None,
        "review_load": 1.0,
    }
    assert trust.report([])["audit"] == {"n": 0, "errors": 0, "rate": None, "ci95": None}


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1])
def test_report_refuses_a_target_error_outside_zero_to_one(target: float) -> None:
    with pytest.raises(ValueError, match="target error"):
        trust.report([], target_error=target)


def test_the_html_report_is_self_contained_with_a_diagram_per_field() -> None:
    review = {"accepted": ["number", "address.city"], "corrected": {"total": 1.0}}
    page = trust_report.html(trust.report([_record(review)], target_error=0.05))
    assert page.count("<svg") == 1 + 3  # all fields pooled, then one per field
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "invoice/address.city" in page


# ---------------------------------------------------------------------- closing the loop


def _stats(min_score: int | None, *, can_rank: bool = True) -> dict[str, Any]:
    levels = by_score(_ranked(381))
    return {
        "n": 401,
        "by_score": {str(s): v for s, v in levels.items()},
        "auroc": auroc(levels),
        "can_rank": can_rank,
        "recommended_min_score": min_score,
        "recommended_threshold": None if min_score is None else trust.threshold_for(min_score),
        "review_load": trust.review_load(levels, min_score),
    }


def test_apply_writes_a_columns_threshold_in_the_item_schema_and_keeps_the_rest() -> None:
    schema = json.loads((SAMPLE_SCHEMAS / "invoice.json").read_text())
    before = copy.deepcopy(schema)
    report: dict[str, Any] = {
        "target_error": 0.01,
        "fields": {
            "invoice/line_items[].amount": _stats(5),
            "invoice/subtotal": _stats(4),
            "invoice/total_amount": _stats(None, can_rank=False),
            "invoice/no_such_field": _stats(3),
            "receipt/total": _stats(3),
        },
    }
    updated, changes = trust.apply_thresholds(schema, "invoice", report)
    assert schema == before  # a copy: the input is never touched
    props = updated["properties"]
    assert props["line_items"]["items"]["properties"]["amount"]["x-review-threshold"] == 0.875
    assert "x-review-threshold" not in props["line_items"]
    assert props["subtotal"]["x-review-threshold"] == 0.75
    assert props["total_amount"]["x-review-threshold"] == 0.9  # not enough evidence: kept
    load_schema(json.dumps(updated))
    by_field = {c.field: c for c in changes}
    assert set(by_field) == set(report["fields"]) - {"receipt/total"}
    assert (by_field["invoice/subtotal"].old, by_field["invoice/subtotal"].new) == (None, 0.75)
    assert "0 error(s) in 381" in by_field["invoice/line_items[].amount"].why
    assert by_field["invoice/total_amount"].why.startswith("kept: not enough evidence")
    assert by_field["invoice/no_such_field"].new is None


def test_the_one_line_summary_names_each_score_levels_rights_ece_and_the_audit() -> None:
    from doctriage_local.cli.trust import summary

    obs = [
        Observation("invoice", "total_amount", 5, True, True),
        Observation("invoice", "total_amount", 5, True, False),
        Observation("invoice", "due_date", 2, False, True),
        Observation("invoice", "vendor_name", None, True, False),
    ]
    # ECE: 2/3 * |1 - 1| + 1/3 * |0 - 0.25|
    assert summary(trust.summarize(obs)) == (
        "4 fields checked; right by score 5 2/2, 2 0/1; ECE 0.083; 1 wrong of 2 audited"
    )
    assert summary(trust.summarize([])) == "0 fields checked; right by score -; ECE n/a"
