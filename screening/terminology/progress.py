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


def open_text(path, what: str = "cannot read"):
    """A release file opened as UTF-8 text with its line ends kept; a LoadError naming it otherwise."""
    from .errors import LoadError

    try:
        return open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise LoadError(str(path), f"{what}: {exc.strerror}") from None


def numbered_lines(handle, progress: Progress, start: int = 1, already: int = 0):
    """(line number, text without its line end) of every non-empty line of a release file, telling
    ``progress`` the bytes read about once a megabyte (``already``: bytes read before, e.g. a header)."""
    pending = already
    for number, raw in enumerate(handle, start=start):
        pending += len(raw)
        if pending > 1 << 20:
            progress.advance(pending)
            pending = 0
        text = raw.rstrip("\r\n")
        if text:
            yield number, text
    progress.advance(pending)
