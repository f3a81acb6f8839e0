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
}


def _doctriage(*argv: str, cwd: Path, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("doctriage"), *argv],
        cwd=cwd,
        env=environment(),
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
    assert "state machine executions finished: 4/4" in done.stdout
    assert "acme-invoice-1042.pdf" in done.stdout


def test_run_json(tmp_path):
    done = _doctriage(
        "run", str(ACME), "--doc-type", "invoice", "--time-scale", "0.01", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    record = json.loads(line)
    assert_valid_record(record)
    assert record["source"]["key"] == "incoming/invoice/acme-invoice-1042.pdf"
