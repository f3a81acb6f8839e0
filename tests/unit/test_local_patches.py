"""The local stack's patches of powertools: concurrent handlers (threads here, containers in
Lambda) keep their metrics apart."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from doctriage_local.stack import patches


def test_concurrent_handlers_each_flush_their_own_metrics(monkeypatch):
    patches.install()
    lines: list[str] = []
    monkeypatch.setattr(patches, "_ACTIVE", SimpleNamespace(metric_lines=lines))
    # Two functions' Metrics, as two handler modules make them: powertools shares one metric set
    # between them per process unless the patch keeps one per thread.
    submit, poll = Metrics(namespace="T", service="submit"), Metrics(namespace="T", service="poll")
    both_added, first_flushed = threading.Barrier(2), threading.Event()
    failures: list[BaseException] = []

    def handler(metrics: Metrics, name: str, flush_first: bool) -> None:
        try:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
            both_added.wait(timeout=5)
            if not flush_first:
                first_flushed.wait(timeout=5)
            metrics.flush_metrics(raise_on_empty_metrics=True)  # empty: SchemaValidationError
            first_flushed.set()
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=handler, args=(submit, "Submitted", True)),
        threading.Thread(target=handler, args=(poll, "Polled", False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert failures == []
    emitted = [json.loads(line) for line in lines]
    names = [[m["Name"] for m in e["_aws"]["CloudWatchMetrics"][0]["Metrics"]] for e in emitted]
    assert names == [["Submitted"], ["Polled"]]
    assert [e["service"] for e in emitted] == ["submit", "poll"]
