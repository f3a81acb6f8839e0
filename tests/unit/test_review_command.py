"""`doctriage review` without a stack to talk to says what to do instead."""

from __future__ import annotations

from doctriage_local.cli.main import main


def test_review_without_a_local_stack_explains_the_alternatives(capsys, monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    status = main(["review", "--endpoint-url", "http://127.0.0.1:9", "--port", "0"])
    err = capsys.readouterr().err
    assert status == 2
    assert "no local stack at http://127.0.0.1:9" in err
    assert "doctriage up" in err
    assert "doctriage review --demo" in err


def test_a_deployed_stack_needs_both_queue_and_table(capsys):
    status = main(["review", "--queue-url", "https://sqs.example/q", "--region", "us-east-1"])
    assert status == 2
    assert "--table" in capsys.readouterr().err
