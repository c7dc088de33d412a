"""Install model files set-up puts in place (``scripts/setup.sh``, the image's build).

``python -m aipbx.providers.local.install smart-turn [--wheel FILE]``: the end-of-turn model
(:func:`aipbx.providers.local.models.install_smart_turn`); prints its path, or the error and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from aipbx.providers.errors import ProviderUnavailable
from aipbx.providers.local.models import SMART_TURN_WHEEL, install_smart_turn


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aipbx.providers.local.install")
    commands = parser.add_subparsers(dest="command", required=True)
    turn = commands.add_parser("smart-turn", help=f"take the end-of-turn model out of {SMART_TURN_WHEEL}")
    turn.add_argument("--wheel", type=Path, help="a downloaded wheel (default: download it with pip)")
    args = parser.parse_args(argv)
    try:
        path = install_smart_turn(args.wheel)
    except ProviderUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
