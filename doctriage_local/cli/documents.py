"""Documents through a local stack, for the commands that run one (demo, run, review --demo, up).

Upload files, wait for their terminal records, report their progress on stderr; the samples and
their schemas as the commands find them under samples/ (doctriage_local.paths).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doctriage_local.cli.options import ConfigurationError, say
from doctriage_local.cli.progress import reporter
from doctriage_local.paths import SAMPLE_SCHEMAS, SAMPLES
from doctriage_local.stack.watch import Watcher
from doctriage_local.truth import TRUTH_SUFFIX

Result = tuple[Path, dict[str, Any], dict[str, Any] | None]  # file, upload, record (None: none)


def sample_documents() -> list[tuple[Path, str]]:
    """Every bundled sample as (file, doc_type), doc_type being its folder's name (its expected
    values beside it are not documents)."""
    return sorted(
        (path, path.parent.name)
        for path in SAMPLES.glob("*/*")
        if path.parent != SAMPLE_SCHEMAS and path.is_file() and not is_truth(path)
    )


def is_truth(path: Path) -> bool:
    return path.name.endswith(TRUTH_SUFFIX)


def truth_of(document: Path) -> Path:
    """Where a document's expected values are: ``name.pdf`` -> ``name.expected.json``."""
    return document.with_name(document.stem + TRUTH_SUFFIX)


def labelled_documents(root: Path) -> list[tuple[Path, str, Path]]:
    """Every (document, doc_type, expected file) under ``root``: each ``name.expected.json`` and
    the one other file named ``name.<ext>`` beside it; doc_type is their folder's name."""
    labelled = []
    for expected in sorted(root.rglob(f"*{TRUTH_SUFFIX}")):
        stem = expected.name[: -len(TRUTH_SUFFIX)]
        beside = [
            p
            for p in expected.parent.iterdir()
            if p.is_file() and p.stem == stem and not is_truth(p)
        ]
        if len(beside) != 1:
            found = ", ".join(sorted(p.name for p in beside)) or "none"
            raise ConfigurationError(
                f"{expected}: needs exactly one document {stem}.<ext> beside it (found {found})"
            )
        labelled.append((beside[0], expected.parent.name, expected))
    return labelled


def seeded_emulator() -> Any:
    """The emulator of the demos (demo, review --demo) and ``eval --seeded-errors``: its values
    wrong at the rate of their score (EmulatorConfig.seeded_errors), as a real scorer's are."""
    from doctriage_local.emulator import SEEDED_ERROR_RATES, EmulatorConfig

    return EmulatorConfig(seeded_errors=dict(SEEDED_ERROR_RATES))


def put_sample_schemas(stack: Any, *, progress: bool = False) -> None:
    """Every samples/schemas/<doc_type>.json onto the stack's bucket."""
    for schema in sorted(SAMPLE_SCHEMAS.glob("*.json")):
        stack.put_schema(schema.stem, schema)
        if progress:
            say(f"  schema    s3://{stack.bucket}/schemas/{schema.name}")


def describe(record: dict[str, Any]) -> str:
    average = record.get("extraction_score_average")
    return (
        f"{record['status']:<8} {record['review_status']:<12} "
        f"avg={'-' if average is None else f'{average:.2f}'}  "
        f"flags={', '.join(record['flags']) or '-'}"
    )


def process(
    stack: Any,
    files: list[tuple[Path, str]],
    *,
    metadata: dict[str, str],
    timeout: float,
    quiet: bool = False,
) -> list[Result]:
    """Upload every (file, doc_type) and wait up to ``timeout`` for their records, in order;
    each document's stage on stderr as it changes (doctriage_local.cli.progress) unless quiet."""
    progress = reporter(len(files), quiet=quiet)
    try:
        uploads = []
        for path, doc_type in files:
            uploaded = stack.upload(path, doc_type, metadata=metadata)
            uploads.append((path, uploaded))
            progress.stage(path.name, "uploaded", f"s3://{stack.bucket}/{uploaded['key']}")
        names = {u["document_id"]: p.name for p, u in uploads}
        watcher = Watcher(stack)

        def on_waiting(pending: list[str]) -> None:
            observation = watcher.observe(pending)
            for text in observation.notices:
                progress.notice(f"{text}; this command waits up to {timeout:g} s (--timeout)")
            for document_id, stages in observation.stages.items():
                for stage in stages:
                    progress.stage(names[document_id], stage.name, stage.detail)

        def on_record(record: dict[str, Any]) -> None:
            progress.recorded(names[record["document_id"]], describe(record))

        records = stack.wait_for_records(
            list(names),
            timeout=timeout,
            on_record=on_record,
            on_waiting=None if quiet else on_waiting,
            # Each look reads every pending execution's history: fewer of them for a big batch,
            # whose handlers share this process's CPU (30 files: a look every 1.5 s).
            waiting_every=max(0.5, len(files) / 20),
        )
    finally:
        progress.close()
    return [(p, u, records.get(u["document_id"])) for p, u in uploads]


def cost_summary(records: list[dict[str, Any]]) -> str:
    """One line: what Datalab charged for these records, and per 1,000 documents at that rate."""
    usages = [r.get("datalab") or {} for r in records]
    billed = [u["cost_cents"] for u in usages if u.get("cost_cents") is not None]
    pages = sum(u.get("page_count") or 0 for u in usages)
    if not billed:
        return f"cost: Datalab named no charge for any of {len(records)} document(s)"
    cents = sum(billed)
    line = (
        f"cost: {cents:g} cent(s) from Datalab for {len(billed)} document(s), {pages} page(s): "
        f"${cents / len(billed) * 1000 / 100:,.2f} per 1,000 documents like these"
    )
    unknown = len(records) - len(billed)
    return line + (f" ({unknown} without a figure)" if unknown else "")
