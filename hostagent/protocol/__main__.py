"""``python -m hostagent.protocol doc [--write PATH]`` | ``bench [--n N]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hostagent.protocol")
    sub = parser.add_subparsers(dest="command", required=True)
    doc = sub.add_parser("doc", help="print (or --write) docs/protocol.md from the types")
    doc.add_argument("--write", metavar="PATH")
    bench = sub.add_parser("bench", help="µs per heartbeat decode and validation")
    bench.add_argument("--n", type=int, default=20000)
    args = parser.parse_args(argv)
    if args.command == "doc":
        from hostagent.protocol.doc import render

        text = render()
        if args.write:
            Path(args.write).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    from hostagent.protocol.bench import report

    print(report(args.n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
