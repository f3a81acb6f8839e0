"""Run the Datalab emulator on its own: ``python -m doctriage_local.emulator --port 8765``.

Prints one JSON line ``{"url": ..., "api_key": ...}`` once it is listening, then serves until
interrupted. Other processes add faults through ``POST /_emulator/faults``.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from collections.abc import Sequence

from doctriage_local.cli import options

from .config import NESTED_SCORES, EmulatorConfig
from .server import DatalabEmulator


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m doctriage_local.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=options.port, default=0, help="0 picks a free port")
    parser.add_argument(
        "--time-scale", type=options.time_scale, default=1.0, help="multiplies every delay"
    )
    parser.add_argument("--api-key", default=EmulatorConfig.api_key)
    parser.add_argument("--scoring-lag", type=float, default=EmulatorConfig.scoring_lag_seconds)
    parser.add_argument("--rate-limit-per-minute", type=int, default=None)
    parser.add_argument("--max-concurrent", type=int, default=None)
    parser.add_argument("--check-host", default=None, help="host to put in request_check_url")
    parser.add_argument(
        "--max-pages-in-flight",
        type=int,
        default=EmulatorConfig.max_pages_in_flight,
        help="the team's pages-in-flight limit (0: unlimited)",
    )
    parser.add_argument(
        "--nested-scores",
        choices=NESTED_SCORES,
        default=EmulatorConfig.nested_scores,
        help="how tables are scored: beside the list (array), in each cell (per_item), or the "
        "list and every other row's cells (mixed)",
    )
    args = parser.parse_args(argv)
    config = EmulatorConfig(
        api_key=args.api_key,
        scoring_lag_seconds=args.scoring_lag,
        time_scale=args.time_scale,
        rate_limit_per_minute=args.rate_limit_per_minute,
        max_concurrent=args.max_concurrent,
        check_host=args.check_host,
        max_pages_in_flight=args.max_pages_in_flight or None,
        nested_scores=args.nested_scores,
    )
    emulator = DatalabEmulator(config, host=args.host, port=args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"url": emulator.url, "api_key": emulator.api_key}), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
