"""Source text and positions: spans into a rule file, and the caret rendering used by every error."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A region of a source file: 1-based line and column of its start, and its end."""

    line: int
    column: int
    end_line: int
    end_column: int

    @classmethod
    def from_meta(cls, meta) -> "Span":
        """Build a span from a Lark ``meta`` (requires ``propagate_positions``)."""
        if getattr(meta, "empty", True):
            return cls(1, 1, 1, 1)
        return cls(meta.line, meta.column, meta.end_line, meta.end_column)

    @classmethod
    def from_token(cls, token) -> "Span":
        end_line = token.end_line or token.line
        end_column = token.end_column or token.column + len(str(token))
        return cls(token.line, token.column, end_line, end_column)


EXCERPT_WIDTH = 120  # longest source excerpt printed under a message, in characters


def normalise_text(text: str) -> str:
    """Text as the parsers read it: without a leading byte-order mark, with LF line ends.

    CRLF and CR-only line ends become LF, so that line numbers are the ones an editor shows and
    columns are unchanged (the CR of a CRLF pair sits at the end of its line).
    """
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _visible(line: str) -> str:
    """A source line safe to print: control and text-direction characters shown as U+FFFD (one column each)."""
    if line.isprintable():
        return line
    from .limits import forbidden_char

    return "".join("\ufffd" if forbidden_char(ch) else ch for ch in line)


@dataclass(frozen=True, slots=True)
class Source:
    """A named text (a rule file or a case file) that errors can point into."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        lines = self.text.split("\n")  # as the parser counts lines (not str.splitlines)
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def excerpt(self, span: Span) -> str:
        """The source line of ``span`` with a caret line under the spanned columns."""
        line = _visible(self.line_text(span.line).replace("\t", " "))
        if not line.strip():
            return ""
        width = 1
        if span.end_line == span.line and span.end_column > span.column:
            width = span.end_column - span.column
        width = max(1, min(width, len(line) - span.column + 1))
        column = span.column
        if len(line) > EXCERPT_WIDTH:  # a long (machine-written) line: show the part around the caret
            start = max(0, min(column - 1 - EXCERPT_WIDTH // 3, len(line) - EXCERPT_WIDTH))
            width = min(width, EXCERPT_WIDTH - (column - 1 - start))
            head = "…" if start > 0 else ""
            tail = "…" if start + EXCERPT_WIDTH < len(line) else ""
            line = head + line[start:start + EXCERPT_WIDTH] + tail
            column = column - start + len(head)
        return f"  {line}\n  {' ' * (column - 1)}{'^' * max(1, width)}"
