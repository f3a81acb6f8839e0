"""The local stack for integration tests: moto + the real ASL + the real handlers + the emulator.

Fixtures only; helpers (``process``, ``review_messages_for``, ``TIME_SCALE``) are in helpers.py.
"""

from __future__ import annotations

import pytest

from doctriage_local.emulator import EmulatorConfig
from doctriage_local.stack import StackOptions
from tests.integration.helpers import TIME_SCALE, stack_with_sample_schemas


@pytest.fixture(scope="module")
def stack():
    options = StackOptions(
        time_scale=TIME_SCALE,
        emulator=EmulatorConfig(),
        # Short enough that a hung Datalab response times out within a test (not time-scaled).
        environment={"DATALAB_TIMEOUT_SECONDS": "2"},
        # Ten minutes of pipeline time: a submit failing on every delivery (45 s of wall time
        # here) is past it by its last delivery and recorded; test_retry_window.py covers the
        # window itself.
        # No audit sampling: tests that see an auto document assert that nothing is queued for it
        # (test_audit_sample.py samples every one).
        parameters={"SubmitRetryWindowSeconds": 600, "AuditSampleRate": 0},
    )
    with stack_with_sample_schemas(options) as running:
        yield running


@pytest.fixture
def emulator(stack):
    stack.emulator.clear_faults()
    yield stack.emulator
    stack.emulator.clear_faults()
