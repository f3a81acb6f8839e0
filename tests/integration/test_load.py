"""A burst beyond Datalab's rate limit: everything terminal, one submission each, none throttled.

The full run (500 documents, 400/min) is `make load`; this is the same code on a smaller burst
with a tighter limit, so throttling really happens within the test's time.
"""

from benchmarks.load_bench import run_load


def test_a_burst_beyond_the_rate_limit_loses_nothing():
    result = run_load(
        30,
        rate_limit_per_minute=20,
        max_concurrent=50,
        max_pages_in_flight=None,
        mixed_sizes=False,
        time_scale=0.05,
        timeout=240,
    )

    assert result["lost"] == 0
    assert result["terminal_records"] == 30
    assert result["rate_limited_responses_429"] > 0  # the limit really bit
    assert result["duplicate_submissions"] == 0
    assert result["datalab_submissions_accepted"] == 30
    assert result["failures"] == {}
