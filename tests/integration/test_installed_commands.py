"""Every installed `doctriage` subcommand runs as a user runs it: `.venv/bin/doctriage <cmd>`.

Run from a directory outside the project, so that no command depends on the working directory
or on the project root being on sys.path. `--help` for each; a real run for each, here (demo,
run) or in the test file that already drives it as a subprocess (RUN_AS_A_SUBPROCESS_IN).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from doctriage_local.paths import SAMPLES
from tests.contracts import assert_valid_record
from tests.integration.up_process import command, environment

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"

# subcommand -> the test file that runs it as a subprocess doing real work
RUN_AS_A_SUBPROCESS_IN = {
    "demo": "test_installed_commands.py",
    "run": "test_installed_commands.py",
    "up": "test_aws_cli.py",
    "invoke": "test_aws_cli.py",
    "reprocess": "test_aws_cli.py",
    "review": "test_review_cli.py",
    "trust": "test_trust_cli.py",
    "eval": "test_eval_cli.py",
}


def _doctriage(
    *argv: str, cwd: Path, timeout: float = 180.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("doctriage"), *argv],
        cwd=cwd,
        env=environment(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _subcommands(tmp_path: Path) -> set[str]:
    done = _doctriage("--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    match = re.search(r"\{([a-z,]+)\}", done.stdout)
    assert match, done.stdout
    return set(match.group(1).split(","))


def test_every_subcommand_has_a_subprocess_run(tmp_path):
    assert _subcommands(tmp_path) == set(RUN_AS_A_SUBPROCESS_IN)
    here = Path(__file__).parent
    for name, test_file in RUN_AS_A_SUBPROCESS_IN.items():
        source = (here / test_file).read_text()
        # up_process runs the installed console script (command("doctriage")), as _doctriage does
        assert "from tests.integration.up_process import" in source, f"{test_file}: no subprocess"
        assert name in source, f"{test_file} does not run `doctriage {name}`"


@pytest.mark.parametrize("name", sorted(RUN_AS_A_SUBPROCESS_IN))
def test_help(name, tmp_path):
    done = _doctriage(name, "--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: doctriage {name}")


@pytest.mark.parametrize("name", ["up", "review"])
def test_port_is_checked_the_same_way_everywhere(name, tmp_path):
    done = _doctriage(name, "--port", "70000", cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "'70000' is not a port number (0 picks a free one)" in done.stderr


def test_demo(tmp_path):
    done = _doctriage("demo", "--timeout", "120", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "state machine executions finished: 5/5" in done.stdout
    assert "acme-invoice-1042.pdf" in done.stdout
    # it ends with the trust summary over the samples' true values (errors seeded by score)
    last = done.stdout.splitlines()[-1]
    assert last.startswith("trust, against the samples' true values: 100 fields checked;"), last


def test_run_json(tmp_path):
    done = _doctriage(
        "run",
        str(ACME),
        "--doc-type",
        "invoice",
        "--time-scale",
        "0.01",
        "--json",
        # every auto document audited: the parameter reaches the evaluate function
        "--parameter-overrides",
        "AuditSampleRate=1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    record = json.loads(line)
    assert_valid_record(record)
    assert record["source"]["key"] == "incoming/invoice/acme-invoice-1042.pdf"
    assert (record["review_status"], record["audit_sample"]) == ("auto", True)


def test_run_takes_the_templates_parameters_as_sam_deploy_does(tmp_path):
    # GIVEN the stack-wide threshold overridden to 1.0 (every field below it needs review)
    done = _doctriage(
        "run",
        str(ACME),
        "--doc-type",
        "invoice",
        "--time-scale",
        "0.01",
        "--json",
        "--parameter-overrides",
        "HumanReviewThreshold=1.0",
        "IntakeMaxReceives=5",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    record = json.loads(line)
    # THEN the clean invoice, auto at the default 0.85, goes to review at 1.0
    assert record["human_review_threshold"] == 1.0
    assert record["review_status"] == "needs_review"


# Each command that starts a local stack, and each that talks to one, with a configuration it
# must refuse before doing anything: one line on stderr, exit status 2, no traceback.
NOT_HTTPS = {"DATALAB_API_URL": "http://example.com", "DATALAB_API_KEY": "k"}
NO_KEY = {"DATALAB_API_URL": "https://www.datalab.to"}
BAD_ENDPOINT = {"AWS_ENDPOINT_URL": "127.0.0.1:4566"}
REFUSED = [
    (["demo"], NOT_HTTPS, "DATALAB_API_URL must use https (http only for a loopback host)"),
    (["run", str(ACME), "--doc-type", "invoice"], NOT_HTTPS, "DATALAB_API_URL must use https"),
    (["up", "--port", "0", "--datalab-port", "0"], NOT_HTTPS, "DATALAB_API_URL must use https"),
    (["review", "--demo"], NOT_HTTPS, "DATALAB_API_URL must use https"),
    (["up", "--port", "0"], NO_KEY, "DATALAB_API_URL is set but DATALAB_API_KEY is not"),
    (["run", str(ACME), "--doc-type", "invoice"], NO_KEY, "DATALAB_API_KEY is not"),
    (["invoke", "SubmitFunction", "-e", "x.json"], BAD_ENDPOINT, "AWS_ENDPOINT_URL="),
    (["reprocess", "--table", "t"], BAD_ENDPOINT, "is not an http(s) URL with a host"),
    (["review"], BAD_ENDPOINT, "is not an http(s) URL with a host"),
    (["run", str(ACME), "--doc-type", "invoice", "--threshold", "1.5"], {}, "between 0 and 1"),
    (["up", "--time-scale", "2"], {}, "--time-scale must be in (0, 1]"),
    (["demo", "--parameter-overrides", "HumanReviewThreshold=2"], {}, "between 0 and 1"),
    (
        ["run", str(ACME), "--doc-type", "invoice", "--parameter-overrides", "AuditSampleRate=1.5"],
        {},
        "AuditSampleRate='1.5' must be between 0 and 1",
    ),
    (["up", "--parameter-overrides", "NoSuchParameter=1"], {}, "no parameter 'NoSuchParameter'"),
    (["review", "--demo", "--parameter-overrides", "LogRetentionDays=2"], {}, "not one of"),
    (["run", str(ACME), "--doc-type", "invoice", "--parameter-overrides", "X"], {}, "Key=Value"),
    (["demo", "--parameter-overrides", "DatalabApiUrl=https://x"], {}, "DATALAB_API_URL"),
    (["eval", "--truth", str(SAMPLES)], NOT_HTTPS, "DATALAB_API_URL must use https"),
    (["eval", "--truth", "nowhere"], {}, "--truth nowhere: no such directory"),
    (["eval", "--truth", "."], {}, "no <name>.expected.json under it"),
    (
        ["eval", "--truth", str(SAMPLES), "--seeded-errors"],
        {"DATALAB_API_URL": "https://www.datalab.to", "DATALAB_API_KEY": "k"},
        "--seeded-errors is the emulator's",
    ),
    (["eval", "--truth", str(SAMPLES), "--schemas", "nowhere"], {}, "no schema for document"),
]


@pytest.mark.parametrize(("argv", "env", "said"), REFUSED, ids=lambda v: str(v)[:40])
def test_a_bad_configuration_is_refused_in_one_line(argv, env, said, tmp_path):
    done = _doctriage(*argv, cwd=tmp_path, timeout=60, env=env)
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"doctriage {argv[0]}: "), line
    assert said in line
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_http_on_loopback_is_allowed(tmp_path):
    # Refused connections (nothing listens there) are retried, so only the start is checked:
    # `up` gets as far as its ready line, which is all this test waits for.
    done = _doctriage(
        "reprocess",
        "--table",
        "doctriage-local-ResultsTable",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "--dry-run",
        cwd=tmp_path,
        timeout=60,
        env={"DATALAB_API_URL": "http://127.0.0.1:9", "DATALAB_API_KEY": "k"},
    )
    assert "is not an http(s) URL" not in done.stderr
    assert "DATALAB_API_URL" not in done.stderr


def test_ctrl_c_ends_a_command_in_one_line_without_a_traceback(tmp_path):
    import signal
    import time

    # GIVEN `doctriage demo` under way (its stack started, documents in flight)
    process = subprocess.Popen(
        [command("doctriage"), "demo"],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    assert process.stderr is not None
    started = ""
    while "uploaded" not in started and time.monotonic() < deadline:
        started += process.stderr.readline()
    # WHEN the user presses Ctrl-C
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    # THEN one line says what happened, and no traceback
    assert process.returncode == 130, rest
    assert "Traceback" not in rest, rest
    assert rest.strip().splitlines()[-1].startswith("doctriage demo: interrupted"), rest
