"""The Datalab key: read from Secrets Manager, sent only to Datalab, never written anywhere else."""

from __future__ import annotations

import json
import logging

import pytest

from doctriage_local.emulator import EmulatorConfig, FaultRule
from doctriage_local.paths import SAMPLES
from doctriage_local.stack import LocalStack, StackOptions
from tests.integration.helpers import process

KEY = "dlk-Sup3rSecretKeyValue-7f3a9c"  # distinctive enough to find anywhere


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(time_scale=0.01, emulator=EmulatorConfig(api_key=KEY), log_level="DEBUG")
    with LocalStack(options) as running:
        running.put_schema("invoice", SAMPLES / "schemas" / "invoice.json")
        yield running


def test_the_key_never_appears_in_logs_records_messages_or_state(stack, capfd, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every library, at its most talkative...
    # ...except botocore's wire log, which prints raw AWS response bodies (the secret's among
    # them) by design and is off in Lambda unless someone turns it on: never do that in production.
    caplog.set_level(logging.INFO, logger="botocore")
    stack.emulator.add_fault(FaultRule(match="rejected.pdf", kind="auth"))
    stack.emulator.add_fault(FaultRule(match="poll-errors.pdf", kind="poll_500", times=1))
    acme = (SAMPLES / "invoice" / "acme-invoice-1042.pdf").read_bytes()
    records = [
        process(stack, acme, "invoice", name="fine.pdf"),
        process(stack, acme, "invoice", name="rejected.pdf"),
        process(stack, acme, "invoice", name="poll-errors.pdf"),
    ]
    assert [r["status"] for r in records] == ["complete", "failed", "complete"]
    assert stack.emulator.stats["check"] > 0  # the key was used, successfully

    histories = [stack.execution_history(e["name"]) for e in stack.executions()]
    captured = capfd.readouterr()
    everything = "\n".join(
        [
            captured.out,
            captured.err,
            caplog.text,
            json.dumps(records),
            json.dumps(stack.review_messages()),
            json.dumps(histories, default=str),
        ]
    )
    loggers = {r.name for r in caplog.records}
    assert {"doctriage", "httpx"} <= loggers  # our handlers' and the HTTP client's logs were read
    assert KEY not in everything
    assert KEY[:12] not in everything


def test_the_key_comes_from_secrets_manager(stack):
    arn = stack.physical["DatalabApiKeySecret"]
    secret = stack.client("secretsmanager").get_secret_value(SecretId=arn)
    assert secret["SecretString"] == KEY
    # Handlers are given the secret's ARN, never the key itself.
    import os

    assert os.environ["DATALAB_API_KEY_SECRET_ARN"] == arn
    assert KEY not in json.dumps(dict(os.environ))
