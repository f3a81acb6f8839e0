"""`doctriage up` (and other `doctriage` commands) run as separate processes, as a user runs them.

`running_up` starts `doctriage up` with OS-picked ports, waits for its JSON ready line on stdout
and yields it wrapped in an `UpProcess`; on exit the process is stopped (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from doctriage_local.paths import PROJECT_ROOT

BIN = Path(sys.executable).parent
UP_ARGV = ["up", "--port", "0", "--datalab-port", "0", "--time-scale", "0.01"]


def environment(**extra: str) -> dict[str, str]:
    """Never real AWS, always the built-in Datalab emulator, whatever the caller's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DATALAB_"))}
    env.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def command(name: str) -> str:
    """The path of a console script installed next to this interpreter."""
    script = BIN / name
    assert script.exists(), f"{script} is missing: pip install -e '.[dev]'"
    return str(script)


def start(argv: list[str], stderr_path: Path, **env: str) -> subprocess.Popen[str]:
    """`doctriage *argv` in the project root; stdout piped, stderr written to ``stderr_path``."""
    with stderr_path.open("wb") as stderr:
        return subprocess.Popen(
            [command("doctriage"), *argv],
            cwd=PROJECT_ROOT,
            env=environment(**env),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints on stdout, or "" if none comes within ``timeout``."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


def stop(process: subprocess.Popen[str], timeout: float = 20) -> int:
    """SIGTERM the process if it still runs (SIGKILL after ``timeout``); its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()
    return process.returncode


class UpProcess:
    """A running `doctriage up`: its process, its parsed ready line and its stderr log."""

    def __init__(
        self, process: subprocess.Popen[str], ready: dict[str, Any], stderr_path: Path
    ) -> None:
        self.process = process
        self.ready = ready
        self.stderr_path = stderr_path

    def aws(self, *args: str, timeout: float = 30.0) -> Any:
        """Run the AWS CLI against this stack; its JSON output parsed (None when empty)."""
        done = subprocess.run(
            [
                command("aws"),
                "--endpoint-url",
                self.ready["endpoint_url"],
                "--output",
                "json",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment(),
            check=False,
        )
        assert done.returncode == 0, f"aws {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@contextmanager
def running_up(
    stderr_path: Path, *, ready_timeout: float = 60.0, stop_timeout: float = 20.0
) -> Iterator[UpProcess]:
    """`doctriage up` started and ready; stopped on exit unless the caller already stopped it."""
    process = start(UP_ARGV, stderr_path)
    try:
        line = first_line(process, ready_timeout)
        assert line, (
            f"`doctriage up` printed no ready line within {ready_timeout} s "
            f"(exit {process.poll()}):\n{stderr_path.read_text()}"
        )
        yield UpProcess(process, json.loads(line), stderr_path)
    finally:
        stop(process, timeout=stop_timeout)
