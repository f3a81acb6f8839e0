"""`doctriage eval --truth` as a user runs it: the installed command, from a directory outside
the project, on the samples and their expected values (the README's worked example among them).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from doctriage_local.paths import PROJECT_ROOT, SAMPLES
from tests.integration.up_process import command, environment

README = PROJECT_ROOT / "README.md"
# 4 invoices x (10 fields + the table) + 40 cells; the receipt 9 fields + its table + 6 cells
SAMPLE_OBSERVATIONS = 100


def _eval(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("doctriage"), "eval", *argv],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _report(tmp_path: Path, *argv: str) -> dict[str, Any]:
    done = _eval("--truth", str(SAMPLES), "--time-scale", "0.01", "--json", *argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_the_honest_emulator_reads_every_sample_as_its_truth_says(tmp_path):
    # the expected files and the comparison agree with what is printed on the samples
    report = _report(tmp_path)
    assert report["observations"] == SAMPLE_OBSERVATIONS
    wrong = {
        k: f
        for k, f in report["fields"].items()
        if any(level["correct"] < level["n"] for level in f["by_score"].values())
    }
    assert wrong == {}
    assert report["audit"]["errors"] == 0


def test_with_seeded_errors_score_five_is_right_more_often_than_the_low_scores(tmp_path):
    report = _report(tmp_path, "--seeded-errors", "--html", "report.html")
    assert "invoice/total_amount" in (tmp_path / "report.html").read_text()
    assert report["observations"] == SAMPLE_OBSERVATIONS
    levels = report["by_score"]
    low = [levels[s] for s in ("1", "2", "3") if s in levels]
    low_accuracy = sum(level["correct"] for level in low) / sum(level["n"] for level in low)
    assert levels["5"]["accuracy"] > low_accuracy
    # the one seeded error: Globex's total, read under a loose label (score 3)
    assert report["fields"]["invoice/total_amount"]["by_score"]["3"] == {
        "n": 1,
        "correct": 0,
        "accuracy": 0.0,
        "ci95": pytest.approx([0.0, 0.7935], abs=1e-4),
    }


def _readme_example() -> tuple[list[str], str]:
    match = re.search(
        r"```sh\n\.venv/bin/doctriage eval (.+?)\n```\n```text\n(.+?)```", README.read_text(), re.S
    )
    assert match, "README has no worked example of doctriage eval with its output"
    return match.group(1).split(), match.group(2)


def test_the_readmes_worked_example_prints_what_the_readme_shows(tmp_path):
    argv, shown = _readme_example()
    done = _eval(*argv, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    # the README leaves the per-field rows out ("..."): what it shows is printed, in order
    lines = [line for line in shown.splitlines() if line != "..."]
    at = 0
    for line in lines:
        assert line in printed[at:], f"README shows {line!r}, not printed:\n{done.stdout}"
        at = printed.index(line, at) + 1
