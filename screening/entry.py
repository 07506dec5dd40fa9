"""The ``screening`` console script: loads the command line, and answers Ctrl-C while it loads (exit 130, one
line, never a traceback: the engine's modules take a few hundred milliseconds to import)."""
from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``screening`` console script (screening.cli.main once loaded)."""
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise SystemExit(130) from None
    run()
