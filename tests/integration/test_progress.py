"""`doctriage run`'s progress on stderr, as the installed command prints it when stderr is not a
terminal: one line per change of a document's stage; Datalab unreachable or rate limiting said
as soon as the pipeline meets it. Stdout keeps only what it printed before (--json: records).
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from doctriage_local.paths import PROJECT_ROOT, SAMPLES
from tests.contracts import assert_valid_record
from tests.integration.up_process import command, environment

ACME = SAMPLES / "invoice" / "acme-invoice-1042.pdf"
GLOBEX = SAMPLES / "invoice" / "globex-invoice-smudged.pdf"
# `[12.3s] acme-invoice-1042.pdf: waiting for scores` (doctriage_local.stack.watch's stages)
STAGE_LINE = re.compile(r"^\[\d+\.\ds\] (?P<document>[^:]+): (?P<stage>.*)$")
STAGES = (
    "uploaded", "submitted", "processing", "waiting for scores", "throttled", "rate limited",
    "retrying", "evaluating", "recording failure", "recorded",
)  # fmt: skip


@contextmanager
def emulator(*argv: str) -> Iterator[dict[str, str]]:
    """The Datalab emulator in its own process (its timeline unscaled unless argv says so)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "doctriage_local.emulator", "--port", "0", *argv],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        yield {"DATALAB_API_URL": ready["url"], "DATALAB_API_KEY": ready["api_key"]}
    finally:
        process.terminate()
        process.wait(timeout=10)


def _run(*argv: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("doctriage"), "run", *argv],
        cwd=tmp_path,
        env=environment(**env),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _stages(stderr: str, document: str) -> list[str]:
    """The stages stderr names for ``document``, in order, repeats of the same one merged."""
    stages: list[str] = []
    for line in stderr.splitlines():
        match = STAGE_LINE.match(line)
        if not match or match["document"] != document:
            continue
        [stage] = [s for s in STAGES if re.match(rf"{s}\b", match["stage"])]
        if stages[-1:] != [stage]:
            stages.append(stage)
    return stages


def test_run_json_says_each_documents_stages_in_order_on_stderr(tmp_path):
    # GIVEN a Datalab that takes its time: seconds of processing, then 6 s before the scores
    with emulator("--scoring-lag", "6") as datalab:
        # WHEN `doctriage run --json` processes two documents, stderr not a terminal
        done = _run(
            str(ACME), str(GLOBEX), "--doc-type", "invoice", "--time-scale", "0.1", "--json",
            env=datalab,
            tmp_path=tmp_path,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # THEN stdout holds the two records and nothing else
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["source"]["key"] for r in records] == [
        "incoming/invoice/acme-invoice-1042.pdf",
        "incoming/invoice/globex-invoice-smudged.pdf",
    ]
    for record in records:
        assert_valid_record(record)
    # AND stderr says each document's stages as they came, each line with its elapsed time
    for document in (ACME.name, GLOBEX.name):
        stages = _stages(done.stderr, document)
        expected = ["uploaded", "submitted", "processing", "waiting for scores", "recorded"]
        assert [s for s in stages if s in expected] == expected, done.stderr
    assert f"{ACME.name}: uploaded (s3://" in done.stderr
    assert re.search(rf"^\[\d+\.\ds\] {ACME.name}: recorded complete\s+auto", done.stderr, re.M)


def test_quiet_says_nothing_and_changes_no_record(tmp_path):
    done = _run(
        str(ACME), "--doc-type", "invoice", "--time-scale", "0.01", "--json", "--quiet",
        env={},
        tmp_path=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _stages(done.stderr, ACME.name) == []
    assert_valid_record(json.loads(done.stdout))


class _Lines:
    """A process's stderr read line by line on a thread: wait for a line, boundedly."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert process.stderr is not None
        stderr = process.stderr

        def read() -> None:
            for line in stderr:
                self._lines.put(line)

        threading.Thread(target=read, daemon=True).start()

    def wait_for(self, text: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        return None


@contextmanager
def _running(*argv: str, env: dict[str, str], tmp_path: Path) -> Iterator[_Lines]:
    process = subprocess.Popen(
        [command("doctriage"), *argv],
        cwd=tmp_path,
        env=environment(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _Lines(process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: refused


def test_an_unreachable_datalab_is_said_when_first_met_with_what_happens_next(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    # GIVEN nothing listening where DATALAB_API_URL points; retries that would take an hour
    # WHEN `doctriage run` processes a document
    with _running(
        "run", str(ACME), "--doc-type", "invoice", "--json",
        env={"DATALAB_API_URL": url, "DATALAB_API_KEY": "unused"},
        tmp_path=tmp_path,
    ) as stderr:  # fmt: skip
        # THEN stderr says so at the first refused connection, not when the retries run out
        line = stderr.wait_for("is unreachable", timeout=60)
        assert line is not None, "".join(stderr.seen)
        assert f"Datalab at {url} is unreachable" in line
        assert "connection refused" in line.lower()
        assert "submit retries each upload for at least" in line
        assert "recorded as failed (extraction_failed:datalab_unreachable)" in line
        # AND the document's own line says why it is still "uploaded"
        assert stderr.wait_for(f"{ACME.name}: uploaded (submit retrying: datalab_unreachable)", 30)


def test_a_rate_limiting_datalab_is_said_and_documents_wait(tmp_path):
    # GIVEN a Datalab that allows one request a minute (polls count): the second is a 429
    with (
        emulator("--rate-limit-per-minute", "1") as datalab,
        _running(
            "run", str(ACME), "--doc-type", "invoice", "--time-scale", "0.1",
            env=datalab,
            tmp_path=tmp_path,
        ) as stderr,
    ):  # fmt: skip
        # THEN stderr says Datalab is rate limiting, and that documents wait rather than fail
        line = stderr.wait_for("Datalab is rate limiting (429)", timeout=60)
        assert line is not None, "".join(stderr.seen)
        assert "documents wait and continue" in line
        assert stderr.wait_for(f"{ACME.name}: rate limited (429", 30), "".join(stderr.seen)
