"""The one family of errors the package raises for bad input.

Every error has a stable ``code``, a message, and a location: a span in a named source
(rule file, case file) or a JSON path in a patient document. The CLI prints them as
``file:line:column: message`` followed by the source line and a caret, and exits with status 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .source import Source, Span


class ScreeningError(Exception):
    """Base class: bad input that the user must fix. ``str(err)`` is the full message."""

    code = "error"

    def render(self) -> str:
        return str(self)


@dataclass
class Diagnostic:
    """One problem found in a source file."""

    code: str
    message: str
    source: Source
    span: Span
    hint: str | None = None
    severity: str = "error"  # or "warning" (lint: reported, the rule set still compiles)

    def render(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        head = f"{self.source.name}:{self.span.line}:{self.span.column}: {label}{self.message}"
        parts = [head]
        excerpt = self.source.excerpt(self.span)
        if excerpt:
            parts.append(excerpt)
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)


class SourceError(ScreeningError):
    """One or more problems in a rule file or case file, each with its position."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        self.code = self.diagnostics[0].code if self.diagnostics else "error"
        super().__init__(self.render())

    def render(self) -> str:
        rendered = "\n".join(d.render() for d in self.diagnostics)
        if len(self.diagnostics) > 1:
            rendered += f"\n{len(self.diagnostics)} problems found"
        return rendered

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


def source_error(code: str, message: str, source: Source, span: Span, hint: str | None = None) -> SourceError:
    """A SourceError holding a single diagnostic."""
    return SourceError([Diagnostic(code, message, source, span, hint)])


@dataclass
class DataProblem:
    """One problem in a JSON document, located by a JSON path such as ``$.observations[2].date``."""

    path: str
    message: str
    code: str = "invalid-data"

    def render(self, name: str) -> str:
        return f"{name}: {self.path}: {self.message}"


class DataError(ScreeningError):
    """Problems in a patient (or FHIR) document; every problem names its JSON path."""

    code = "invalid-data"

    def __init__(self, name: str, problems: list[DataProblem]):
        self.name = name
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render(self.name) for p in self.problems)


class UsageError(ScreeningError):
    """A command was called with arguments that cannot work (missing file, bad date, ...)."""

    code = "usage"


@dataclass
class UnitProblem(Exception):
    """A unit string that cannot be read, or two units that cannot be converted.

    Raised by :mod:`screening.units` without a position; the checker attaches one.
    """

    message: str
    hint: str | None = field(default=None)

    def __str__(self) -> str:
        return self.message
