"""The host agent's long-running process (Celery worker + heartbeat loop).

Placeholder: the runtime is being built separately; ``python -m hostagent run``
delegates here so the CLI does not change when it lands.
"""

from __future__ import annotations

import argparse
import sys


def main(args: argparse.Namespace) -> int:
    print("hostagent run: the agent runtime is not implemented yet "
          "(see docs/hostagent.md); nothing was started", file=sys.stderr)
    return 2
