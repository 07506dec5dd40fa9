"""Progress reporting for long loads: a tiny interface the loaders call, and a silent default."""
from __future__ import annotations


class Progress:
    """Loaders call ``start(label, total)`` then ``advance(n)`` (bytes or rows), then ``done()``.

    The base class does nothing; the command line passes one that draws a bar (see cli.py).
    ``total`` may be None when the amount of work is not known in advance.
    """

    def start(self, label: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass

    def done(self) -> None:
        pass

    def note(self, message: str) -> None:
        """A line of information (a warning such as a cycle in a hierarchy)."""


SILENT = Progress()
