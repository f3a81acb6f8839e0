"""``doctriage``: the parser made of every subcommand module's ``add_parser``, and ``main``."""

from __future__ import annotations

import argparse
import sys

from doctriage_local.cli import demo, invoke, reprocess, review, run, up

COMMANDS = (demo, run, up, invoke, reprocess, review)  # in `doctriage --help` order


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="doctriage", description="doctriage on this machine: moto + the Datalab emulator."
    )
    sub = top.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
