"""``doctriage``: the parser made of every subcommand module's ``add_parser``, and ``main``."""

from __future__ import annotations

import argparse
import sys

from doctriage_local.cli import (
    demo,
    eval_truth,
    invoke,
    options,
    reprocess,
    review,
    run,
    trust,
    up,
)

# in `doctriage --help` order
COMMANDS = (demo, run, up, invoke, reprocess, review, trust, eval_truth)


def parser() -> argparse.ArgumentParser:
    top = options.Parser(
        prog="doctriage", description="doctriage on this machine: moto + the Datalab emulator."
    )
    sub = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run one command; a configuration it cannot start with is one line on stderr, exit 2."""
    args = parser().parse_args(argv)
    try:
        options.check(args)  # before any work: nothing is started with a bad configuration
        result: int = args.func(args)
    except options.ConfigurationError as exc:
        options.say(f"doctriage {args.command}: {exc}")
        return 2
    except KeyboardInterrupt:
        # The local stack stops on the way out (its with-block); nothing of it is kept.
        options.say(
            f"doctriage {args.command}: interrupted; documents in flight and the local stack's "
            "records are gone with it"
        )
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
