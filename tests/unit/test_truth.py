"""doctriage_local/truth.py: labelled values against records. The comparison, the row
assignment (reordered, omitted and invented rows; checked against brute force), and the
observations it gives trust.py."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doctriage_local import trust
from doctriage_local.cli import documents
from doctriage_local.cli.options import ConfigurationError
from doctriage_local.truth import NUMBER_TOLERANCE, TruthError, assign, observations, same


def _cell(value: Any, score: int | None = None) -> dict[str, Any]:
    return {"value": value, "found": value is not None, "confidence": None, "score": score}


def _record(fields: dict[str, Any], review_status: str = "needs_review") -> dict[str, Any]:
    return {"document_type": "invoice", "review_status": review_status, "fields": fields}


def _table(*rows: tuple[str, float], score: int = 4) -> dict[str, Any]:
    items = [{"description": _cell(d, 5), "amount": _cell(a, 3)} for d, a in rows]
    return {**_cell([{"description": d, "amount": a} for d, a in rows], score), "items": items}


def _truth_rows(*rows: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"description": d, "amount": a} for d, a in rows]


# ---------------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    ("extracted", "expected", "equal"),
    [
        (1236.25, 1236.25, True),
        (1236.25, 1236.25 + NUMBER_TOLERANCE * 0.8, True),
        (1236.25, 1236.25 + NUMBER_TOLERANCE * 1.2, False),
        (2, 2.0, True),
        ("  Acme   Corporation ", "acme corporation", True),
        ("Acme Corp", "Acme Corporation", False),
        ("1236.25", 1236.25, False),  # nothing across types
        (True, 1, False),
        (False, False, True),
        (None, None, True),
        (None, "", False),
        (["a", "B"], ["A", "b"], True),
        (["a"], ["a", "b"], False),
        ({"city": "Springfield"}, {"city": "springfield"}, True),
        ({"city": "Springfield"}, {"city": "Springfield", "zip": None}, False),
    ],
)
def test_same(extracted, expected, equal):
    assert same(extracted, expected) is equal


# ---------------------------------------------------------------------- assignment


def test_assign_matches_reordered_rows_to_their_partners():
    # truth rows 0, 1, 2 were read as record rows 2, 0, 1 (every cell agrees with its partner)
    agreement = [[0, 0, 2], [2, 0, 0], [0, 2, 1]]
    assert assign(agreement) == [(0, 2), (1, 0), (2, 1)]


def test_assign_leaves_an_omitted_row_without_a_partner():
    # three truth rows, the record has two: the middle one was omitted
    agreement = [[2, 0], [0, 0], [0, 2]]
    assert assign(agreement) == [(0, 0), (2, 1)]


def test_assign_leaves_an_invented_row_without_a_partner():
    # two truth rows, the record has three: record row 1 is in no truth row
    agreement = [[2, 0, 0], [0, 0, 2]]
    assert assign(agreement) == [(0, 0), (1, 2)]


def test_assign_breaks_ties_toward_the_same_row_number():
    assert assign([[1, 1], [1, 1]]) == [(0, 0), (1, 1)]
    assert assign([[1, 1, 1]]) == [(0, 0)]


def test_assign_takes_the_best_total_not_the_greedy_first_pick():
    # greedy (row 0 takes its best, 3) leaves row 1 with 0: total 3; best is 2 + 2
    assert assign([[3, 2], [2, 0]]) == [(0, 1), (1, 0)]


@given(
    st.integers(1, 5).flatmap(
        lambda m: st.lists(
            st.lists(st.integers(0, 3), min_size=m, max_size=m), min_size=1, max_size=5
        )
    )
)
def test_assign_is_optimal_and_one_to_one(agreement):
    pairs = assign(agreement)
    assert len({t for t, _ in pairs}) == len({r for _, r in pairs}) == len(pairs)
    n, m = len(agreement), len(agreement[0])
    k = min(n, m)
    best = max(
        sum(agreement[t][r] for t, r in zip(ts, rs, strict=True))
        for ts in itertools.combinations(range(n), k)
        for rs in itertools.permutations(range(m), k)
    )
    assert sum(agreement[t][r] for t, r in pairs) == best
    assert all(agreement[t][r] > 0 for t, r in pairs)


# ---------------------------------------------------------------------- observations


def _by_path(obs: list[trust.Observation]) -> dict[str, tuple[int | None, bool]]:
    return {o.path: (o.score, o.correct) for o in obs}


def test_scalar_fields_are_observed_at_their_scores_and_unlabelled_ones_are_not():
    record = _record(
        {"total_amount": _cell(322.05, 3), "due_date": _cell(None, 1), "vendor": _cell("X", 5)}
    )
    obs = observations(record, {"total_amount": 322.5, "due_date": None})
    assert _by_path(obs) == {"total_amount": (3, False), "due_date": (1, True)}
    assert {o.field for o in obs} == {"invoice/total_amount", "invoice/due_date"}
    assert not any(o.audit for o in obs)


def test_reordered_rows_count_cell_by_cell_at_their_record_paths():
    record = _record({"line_items": _table(("Skates", 450.0), ("Anvil", 500.0))})
    obs = observations(record, {"line_items": _truth_rows(("Anvil", 500.0), ("Skates", 450.0))})
    assert _by_path(obs) == {
        "line_items": (4, True),
        "line_items[1].description": (5, True),
        "line_items[1].amount": (3, True),
        "line_items[0].description": (5, True),
        "line_items[0].amount": (3, True),
    }


def test_an_omitted_row_counts_every_cell_wrong_without_a_score():
    record = _record({"line_items": _table(("Anvil", 500.0), ("Magnet", 200.0))})
    truth = _truth_rows(("Anvil", 500.0), ("Skates", 450.0), ("Magnet", 200.0))
    obs = _by_path(observations(record, {"line_items": truth}))
    assert obs["line_items"] == (4, False)
    # named past the record's two rows: never one of its cells
    assert obs["line_items[3].description"] == (None, False)
    assert obs["line_items[3].amount"] == (None, False)
    assert obs["line_items[1].amount"] == (3, True)  # Magnet, matched to record row 1
    assert len(obs) == 1 + 3 * 2


def test_an_invented_row_counts_every_cell_wrong_at_its_scores():
    record = _record({"line_items": _table(("Anvil", 500.0), ("Ghost", 1.0))})
    obs = _by_path(observations(record, {"line_items": _truth_rows(("Anvil", 500.0))}))
    assert obs["line_items"] == (4, False)
    assert obs["line_items[1].description"] == (5, False)
    assert obs["line_items[1].amount"] == (3, False)
    assert obs["line_items[0].amount"] == (3, True)


def test_a_wrong_cell_in_a_matched_row_is_wrong_and_the_table_incomplete():
    record = _record({"line_items": _table(("Anvil", 50.0))})
    obs = _by_path(observations(record, {"line_items": _truth_rows(("Anvil", 500.0))}))
    assert obs == {
        "line_items": (4, False),
        "line_items[0].description": (5, True),
        "line_items[0].amount": (3, False),
    }


def test_objects_are_observed_part_by_part_and_auto_records_count_as_audited():
    address = {**_cell({"city": "Springfield"}, 5), "properties": {"city": _cell("Springfield", 5)}}
    obs = observations(_record({"address": address}, "auto"), {"address": {"city": "springfield"}})
    assert [(o.path, o.correct, o.audit) for o in obs] == [("address.city", True, True)]


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"po_number": "1"}, "po_number: the record has no such field"),
        ({"line_items": ["Anvil"]}, "line_items: a table's true value is a list of rows"),
        (["not", "an", "object"], "must be a JSON object"),
    ],
)
def test_expected_values_that_do_not_fit_the_record_are_clear_errors(expected, message):
    record = _record({"line_items": _table(("Anvil", 500.0))})
    with pytest.raises(TruthError, match=message):
        observations(record, expected)


# ---------------------------------------------------------------------- labelled documents


def test_labelled_documents_pair_each_expected_file_with_the_document_beside_it(tmp_path: Path):
    folder = tmp_path / "invoice"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(b"%PDF")
    (folder / "a.expected.json").write_text("{}")
    (folder / "unlabelled.pdf").write_bytes(b"%PDF")
    assert documents.labelled_documents(tmp_path) == [
        (folder / "a.pdf", "invoice", folder / "a.expected.json")
    ]
    (folder / "a.png").write_bytes(b"png")
    with pytest.raises(ConfigurationError, match=r"exactly one document a\.<ext>.*a\.pdf, a\.png"):
        documents.labelled_documents(tmp_path)


def test_the_samples_truth_files_are_not_documents_to_upload():
    samples = documents.sample_documents()
    assert samples
    assert not any(documents.is_truth(path) for path, _ in samples)
    assert all(documents.truth_of(path).is_file() for path, _ in samples)
