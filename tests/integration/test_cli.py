"""The doctriage command as a user runs it: demo and run --json, each on its own local stack."""

from __future__ import annotations

import json
import re

import pytest

from doctriage_local.cli.main import main
from doctriage_local.paths import SAMPLES
from tests.contracts import assert_valid_record

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"


def test_run_json_prints_one_contract_record_per_file_in_input_order(capsys):
    status = main(
        [
            "run",
            str(GLOBEX),
            str(ACME),
            "--doc-type",
            "invoice",
            "--time-scale",
            "0.005",
            "--timeout",
            "120",
            "--json",
        ]
    )
    out = capsys.readouterr().out.splitlines()

    assert status == 0
    assert len(out) == 2
    records = [json.loads(line) for line in out]
    for record in records:
        assert_valid_record(record)
    assert [r["source"]["key"] for r in records] == [
        "incoming/invoice/globex-invoice-smudged.pdf",
        "incoming/invoice/acme-invoice-1042.pdf",
    ]
    assert [r["review_status"] for r in records] == ["needs_review", "auto"]


def test_run_threshold_applies_to_the_uploads(capsys):
    status = main(
        [
            "run",
            str(ACME),
            "--doc-type",
            "invoice",
            "--threshold",
            "1",
            "--time-scale",
            "0.005",
            "--timeout",
            "120",
            "--json",
        ]
    )
    record = json.loads(capsys.readouterr().out)
    assert status == 0
    assert record["human_review_threshold"] == 1.0
    assert record["review_status"] == "needs_review"


def test_demo_shows_both_outcomes_and_the_review_queue(capsys):
    # No audit samples: at the default 2 % an auto sample would sometimes be queued too.
    status = main(
        [
            "demo",
            "--time-scale",
            "0.005",
            "--timeout",
            "120",
            "--parameter-overrides",
            "AuditSampleRate=0",
        ]
    )
    out = capsys.readouterr().out

    assert status == 0
    assert "auto" in out
    assert "needs_review" in out
    assert "review queue: 2 message(s)" in out
    # what Datalab charged, filled in after completion, reaches every record and the summary
    assert re.search(
        r"^cost: \d+ cent\(s\) from Datalab for \d+ document\(s\), \d+ page\(s\): "
        r"\$[\d.,]+ per 1,000 documents like these$",
        out,
        re.MULTILINE,
    ), out
    assert "check  total_matches_lines: computed 307.8, expected 317.8 (tolerance 0.01)" in out
    assert "missing_field:due_date" in out
    assert "page 1 at x=" in out  # a box a reviewer can find


def test_demo_at_audit_rate_one_queues_every_auto_sample_as_an_audit(capsys):
    argv = ["demo", "--time-scale", "0.005", "--timeout", "120"]
    status = main([*argv, "--parameter-overrides", "AuditSampleRate=1"])
    out = capsys.readouterr().out
    assert status == 0
    # three auto samples and the two flagged ones (globex, initech's failed sum check)
    assert "review queue: 5 message(s)" in out
    assert out.count("(complete, auto, audit sample: every field to decide)") == 3


@pytest.mark.parametrize(
    "argv",
    [
        ["run", str(ACME), "--doc-type", "invoice", "--threshold", "1.5"],
        ["run", str(ACME), "--doc-type", "invoice", "--threshold", "high"],
        ["run", str(ACME), "--doc-type", "invoice", "--time-scale", "0"],
        ["run", "--doc-type", "invoice"],
    ],
)
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "doctriage" in capsys.readouterr().err


def test_missing_file_and_missing_schema_are_clear_errors(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.pdf"), "--doc-type", "invoice"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["run", str(ACME), "--doc-type", "purchase_order"]) == 2
    assert "--schema" in capsys.readouterr().err
