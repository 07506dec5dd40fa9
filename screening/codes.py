"""Clinical codes: the SYSTEM:CODE form, normalisation, and value-set matching.

ICD-10 and ATC are hierarchies written as prefixes, so a value set entry matches its
descendants (``ICD10:M32`` matches ``ICD10:M32.14``) and ``ICD10:C00-C96`` is a range over
three-character categories. Other systems (SNOMED CT, RxNorm, LOINC, CPT, CVX, LOCAL) match exactly:
no terminology server is consulted, so SNOMED descendants must be listed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

SYSTEMS = ("LOINC", "SNOMED", "ICD10", "RXNORM", "ATC", "CPT", "CVX", "LOCAL")
HIERARCHICAL = ("ICD10", "ATC")
_ICD_RANGE = re.compile(r"^([A-Z]\d{2})-([A-Z]\d{2})$")


def normalise_code(code: str) -> str:
    """``ICD10:m32.14`` -> ``ICD10:M3214``; other systems unchanged (whitespace trimmed)."""
    system, _, body = code.partition(":")
    body = body.strip()
    if system in HIERARCHICAL:
        body = body.replace(".", "").upper()
    return f"{system}:{body}"


def range_of(system: str, code: str) -> tuple[str, str] | None:
    """``C00-C96`` -> ("C00", "C96") for hierarchical systems; None when not a range."""
    if system not in HIERARCHICAL:
        return None
    match = _ICD_RANGE.match(code.upper())
    if not match:
        return None
    return match.group(1), match.group(2)


@dataclass(eq=False)
class CodeMatcher:
    """Matches normalised patient codes against a value set."""

    name: str
    exact: frozenset[str]
    prefixes: tuple[str, ...]
    ranges: tuple[tuple[str, str, str], ...]  # (system, first, last) over 3-character categories

    def matches(self, code: str) -> bool:
        if code in self.exact:
            return True
        for prefix in self.prefixes:
            if code.startswith(prefix):
                return True
        if self.ranges:
            system, _, body = code.partition(":")
            head = body[:3]
            for r_system, first, last in self.ranges:
                if system == r_system and first <= head <= last:
                    return True
        return False

    def matches_any(self, codes: tuple[str, ...]) -> bool:
        """Does any of a record's codes match? Memoised: the same code tuples recur across patients."""
        cache = self._seen
        found = cache.get(codes)
        if found is None:
            found = any(self.matches(code) for code in codes)
            if len(cache) < 100_000:
                cache[codes] = found
        return found

    def __post_init__(self) -> None:
        self._seen: dict[tuple[str, ...], bool] = {}
