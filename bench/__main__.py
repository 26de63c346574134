"""python -m bench list | run NAME [options] | summary   (bench/harness.py says what a benchmark is)."""

from __future__ import annotations

import importlib
import sys

from bench.harness import SUITE


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "list":
        width = max(map(len, SUITE))
        for name, what in SUITE.items():
            print(f"{name:<{width}}  {what}")
        return 0
    if command == "run":
        if not rest or rest[0] not in SUITE:
            print(f"python -m bench run NAME [options]; NAME one of: {', '.join(SUITE)}", file=sys.stderr)
            return 2
        return int(importlib.import_module(f"bench.{rest[0]}").main(rest[1:]) or 0)
    if command == "summary":
        from bench.summary import headline_table, history

        print(headline_table())
        print()
        print(history())
        return 0
    print(f"unknown command {command!r}: list, run or summary", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
