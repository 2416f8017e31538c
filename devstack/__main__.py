"""`python -m devstack up|down|clean|status|env`: the commands behind `make devstack*`."""

from __future__ import annotations

import argparse
import sys

from devstack import stack
from devstack.proc import StackError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "clean", "status", "env"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            stack.up()
        elif args.command == "down":
            stack.down()
        elif args.command == "clean":
            stack.clean()
        elif args.command == "status":
            return stack.status()
        else:
            for key, value in stack.environment().items():
                print(f"{key}={value}")
    except StackError as exc:
        print(f"[devstack] FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
