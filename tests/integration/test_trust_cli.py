"""`doctriage trust` as a user runs it: the installed command, from a directory outside the
project, on records with reviewers' decisions (the README's worked example among them), and on
the results table of a running `doctriage up` after a decision is stored.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from doctriage_core.domain.schemas import load_schema
from doctriage_local import trust
from doctriage_local.paths import PROJECT_ROOT, SAMPLE_SCHEMAS, SAMPLES
from tests.contracts import assert_valid_record
from tests.integration.up_process import command, environment, running_up

README = PROJECT_ROOT / "README.md"
# Not in a folder: samples/<folder>/ holds documents of that type, which demo uploads.
REVIEWED = SAMPLES / "reviewed-invoices.jsonl"
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"


def _trust(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [command("doctriage"), "trust", *argv],
        cwd=cwd,
        env=environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _readme_example() -> tuple[list[str], str]:
    """The README's `doctriage trust` command and the output it shows."""
    match = re.search(
        r"```sh\n\.venv/bin/doctriage trust (.+?)\n```\n```text\n(.+?)```", README.read_text(), re.S
    )
    assert match, "README has no worked example of doctriage trust with its output"
    return match.group(1).split(), match.group(2)


def test_the_readmes_worked_example_prints_what_the_readme_shows(tmp_path):
    argv, shown = _readme_example()
    done = _trust(*argv, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown


def test_the_trust_sample_is_what_its_script_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_trust_sample", PROJECT_ROOT / "scripts" / "make_trust_sample.py"
    )
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.write(tmp_path / "x.jsonl").read_bytes() == REVIEWED.read_bytes()
    for line in REVIEWED.read_text().splitlines():
        assert_valid_record(json.loads(line))


def test_json_is_the_report_of_the_records_file(tmp_path):
    done = _trust("--records", str(REVIEWED), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    records = [json.loads(line) for line in REVIEWED.read_text().splitlines()]
    assert printed == json.loads(json.dumps(trust.report(records)))
    assert set(printed) >= {"observations", "by_score", "ece", "fields", "audit"}
    # at the default 1 % target, 134 error-free score-5 amounts cannot prove it (upper 2.8 %)
    amount = printed["fields"]["invoice/line_items[].amount"]
    assert (amount["can_rank"], amount["recommended_min_score"]) == (True, None)


def test_apply_writes_a_copy_with_the_evidence_and_never_the_input(tmp_path):
    schema = tmp_path / "invoice.json"
    schema.write_bytes((SAMPLE_SCHEMAS / "invoice.json").read_bytes())
    original = schema.read_bytes()
    out = tmp_path / "tuned.json"
    done = _trust(
        "--records",
        str(REVIEWED),
        "--target-error",
        "0.05",
        "--apply",
        "--schema",
        str(schema),
        "--output",
        str(out),
        "--html",
        str(tmp_path / "report.html"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert schema.read_bytes() == original
    tuned = load_schema(out.read_text())
    amount = tuned["properties"]["line_items"]["items"]["properties"]["amount"]
    assert amount["x-review-threshold"] == 0.875
    assert tuned["properties"]["total_amount"]["x-review-threshold"] == 0.9  # kept
    assert (
        "invoice/line_items[].amount: x-review-threshold inherited -> 0.875 (scores >= 5: "
        "0 error(s) in 134" in done.stderr
    )
    assert "invoice/due_date: kept: not enough evidence: AUROC 0.370 < 0.55" in done.stderr
    assert (tmp_path / "report.html").read_text().count("<svg") == 5

    # WHEN the output would be the schema itself THEN it is refused, the schema unchanged
    refused = _trust(
        "--records", str(REVIEWED), "--apply", "--schema", str(schema), "--output", str(schema),
        cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--output is --schema itself" in refused.stderr
    assert schema.read_bytes() == original


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--records", "nope.jsonl"], "--records nope.jsonl: No such file or directory"),
        (["--records", "bad.jsonl"], "--records bad.jsonl line 2: not JSON"),
        (["--records", "bad.jsonl", "--target-error", "0"], "must be between 0 and 1"),
        (["--records", "bad.jsonl", "--apply"], "--apply needs --schema FILE"),
        (["--records", "bad.jsonl", "--schema", "x.json"], "--schema goes with --apply"),
        ([], "one of the arguments --records --table is required"),
        (["--records", "bad.jsonl", "--endpoint-url", "http://127.0.0.1:9"], "goes with --table"),
        (["--table", "t", "--endpoint-url", "http://127.0.0.1:9"], "--table t: cannot read it"),
    ],
)
def test_bad_input_is_refused_in_one_line(argv, said, tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"document_id": "a"}\n{not json\n')
    done = _trust(*argv, cwd=tmp_path)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert said in line
    assert "Traceback" not in done.stderr


def test_a_decision_stored_on_a_running_stack_is_read_from_its_table(tmp_path):
    import boto3

    with running_up(tmp_path / "up.log", ready_timeout=60) as up:
        ready = up.ready
        aws = {
            "endpoint_url": ready["endpoint_url"],
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
        boto3.client("s3", **aws).upload_file(
            str(GLOBEX), ready["bucket"], "incoming/invoice/trust.pdf"
        )
        table = boto3.resource("dynamodb", **aws).Table(ready["results_table"])
        deadline = time.monotonic() + 40
        while not (items := table.scan()["Items"]):
            assert time.monotonic() < deadline, "no record within 40 s"
            time.sleep(0.2)
        [item] = items
        # GIVEN a reviewer's decision on the record: one value confirmed, one corrected
        table.update_item(
            Key={"document_id": item["document_id"]},
            UpdateExpression="SET review = :r",
            ExpressionAttributeValues={
                ":r": {
                    "reviewer": "t",
                    "decided_at": "2026-12-01T00:00:00Z",
                    "accepted": ["vendor_name"],
                    "corrected": {"invoice_number": "INV-0077"},
                }
            },
        )
        done = _trust(
            "--table",
            ready["results_table"],
            "--endpoint-url",
            ready["endpoint_url"],
            "--json",
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["observations"] == 2
    assert report["fields"]["invoice/vendor_name"]["n"] == 1
    [(_score, level)] = report["fields"]["invoice/invoice_number"]["by_score"].items()
    assert (level["n"], level["correct"]) == (1, 0)
