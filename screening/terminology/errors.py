"""Errors of the terminology store: bad release files (with file and line), unknown concepts."""
from __future__ import annotations

from ..errors import ScreeningError


class TerminologyError(ScreeningError):
    """A terminology problem the user must fix (exit status 2 on the command line)."""

    code = "terminology"


class LoadError(TerminologyError):
    """A release file that cannot be loaded. Rendered ``FILE:LINE: message`` (or ``FILE: $.path: message``
    for JSON documents); the store is left exactly as it was before the load began."""

    code = "terminology-load"

    def __init__(self, file: str, message: str, line: int | None = None, path: str | None = None):
        self.file = str(file)
        self.line = line
        self.path = path
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        if self.line is not None:
            return f"{self.file}:{self.line}: {self.message}"
        if self.path is not None:
            return f"{self.file}: {self.path}: {self.message}"
        return f"{self.file}: {self.message}"


class UnknownConcept(TerminologyError):
    """A code that the store does not hold, in a system that it does hold."""

    code = "unknown-concept"


class SystemNotLoaded(TerminologyError):
    """A member needs a hierarchy (``<<SNOMED:...``) of a system the store holds nothing of."""

    code = "system-not-loaded"


class BadMember(TerminologyError):
    """A value-set member that is not written ``[<<|<]SYSTEM:CODE`` or ``VALUESET:url``."""

    code = "bad-member"
