"""`matches` patterns: compiled with RE2 (linear-time matching, case-insensitive), never Python's re.

One place for the options, used by the checker and by the cache of checked rule sets (which keeps
a pattern as its text and compiles it again, with exactly these options).
"""
from __future__ import annotations

import re2

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.case_sensitive = False
_RE2_OPTIONS.log_errors = False  # the error comes back to us, not to stderr
_RE2_OPTIONS.max_mem = 8 << 20  # a pattern whose automaton would need more is refused


def compile_pattern(text: str):
    """A `matches` pattern compiled with RE2 (linear-time matching, case-insensitive): (pattern, None)
    or (None, the reason it is refused)."""
    try:
        return re2.compile(text, options=_RE2_OPTIONS), None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return None, str(reason)
