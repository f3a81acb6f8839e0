"""Progress on stderr for the commands that process documents (run, demo, review --demo).

On a terminal: a ``rich`` display (a bar for the batch, a line per document with its stage and
elapsed time) with notices printed above it. Elsewhere (CI, pipes, ``--json`` consumers): one
plain line per change, ``[12.3s] acme-invoice-1042.pdf: waiting for scores``. ``--quiet``:
nothing. Stdout is never written here. The stages come from doctriage_local.stack.watch.
"""

from __future__ import annotations

import time
from typing import Protocol

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from doctriage_local.cli.options import say
from doctriage_local.stack.watch import STAGES

# Beyond this many documents the display keeps the bar and a count per stage, not a line each.
ROWS = 12


class Reporter(Protocol):
    def stage(self, document: str, stage: str, detail: str = "") -> None: ...
    def recorded(self, document: str, summary: str) -> None: ...
    def notice(self, text: str) -> None: ...
    def close(self) -> None: ...


def reporter(count: int, *, quiet: bool = False) -> Reporter:
    """The reporter for ``count`` documents: rich on a terminal, plain lines elsewhere."""
    if quiet:
        return Quiet()
    console = Console(stderr=True)
    if console.is_terminal and not console.is_dumb_terminal:
        return RichReporter(console, count)
    return PlainReporter()


class _BatchOnly(ProgressColumn):
    """A column shown on the batch's row only (a document's row has no bar or count)."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> RenderableType:
        return self.column.render(task) if task.fields.get("batch") else Text("")


class Quiet:
    def stage(self, document: str, stage: str, detail: str = "") -> None:
        pass

    def recorded(self, document: str, summary: str) -> None:
        pass

    def notice(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class PlainReporter:
    """One line per change on stderr, each with the seconds since that document's upload."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._since: dict[str, float] = {}
        self._last: dict[str, str] = {}

    def _elapsed(self, document: str | None = None) -> str:
        since = self._since.setdefault(document, time.monotonic()) if document else self._started
        return f"[{time.monotonic() - since:.1f}s]"

    def stage(self, document: str, stage: str, detail: str = "") -> None:
        line = f"{stage} ({detail})" if detail else stage
        if self._last.get(document) != line:
            self._last[document] = line
            say(f"{self._elapsed(document)} {document}: {line}")

    def recorded(self, document: str, summary: str) -> None:
        self.stage(document, f"recorded {summary}")

    def notice(self, text: str) -> None:
        say(f"{self._elapsed()} {text}")

    def close(self) -> None:
        pass


class RichReporter:
    """A live display on the terminal: the batch's bar, then each document's stage."""

    def __init__(self, console: Console, count: int) -> None:
        self._progress = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}", markup=False),
            _BatchOnly(BarColumn()),
            _BatchOnly(MofNCompleteColumn()),
            TimeElapsedColumn(),
            console=console,
        )
        self._count = count
        self._batch = self._progress.add_task("", total=count, batch=True)
        self._rows: dict[str, TaskID] = {}
        self._stages: dict[str, str] = {}
        self._progress.start()

    def stage(self, document: str, stage: str, detail: str = "") -> None:
        self._stages[document] = stage
        if self._count <= ROWS:
            if document not in self._rows:
                self._rows[document] = self._progress.add_task("", total=1)
            line = f"{stage} ({detail})" if detail else stage
            self._progress.update(self._rows[document], description=f"{document}: {line}")
        self._describe_batch()

    def recorded(self, document: str, summary: str) -> None:
        self.stage(document, "recorded")
        if document in self._rows:
            self._progress.update(self._rows[document], completed=1)
        self._progress.advance(self._batch)
        self._progress.console.print(
            f"recorded  {document:<32} {summary}", markup=False, highlight=False
        )

    def _describe_batch(self) -> None:
        stages = list(self._stages.values())
        counts = [(stages.count(name), name) for name in STAGES if name != "recorded"]
        waiting = ", ".join(f"{n} {name}" for n, name in counts if n)
        self._progress.update(self._batch, description=waiting or "all recorded")

    def notice(self, text: str) -> None:
        self._progress.console.print(text, style="yellow", markup=False, highlight=False)

    def close(self) -> None:
        self._progress.stop()
