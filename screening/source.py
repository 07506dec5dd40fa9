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
        line = self.line_text(span.line).replace("\t", " ")
        if not line.strip():
            return ""
        width = 1
        if span.end_line == span.line and span.end_column > span.column:
            width = span.end_column - span.column
        width = max(1, min(width, len(line) - span.column + 1))
        return f"  {line}\n  {' ' * (span.column - 1)}{'^' * width}"
