"""Clinical codes: the SYSTEM:CODE form, normalisation, and value-set matching.

ICD-10 and ATC are hierarchies written as prefixes, so a value set entry matches its
descendants (``ICD10:M32`` matches ``ICD10:M32.14``) and ``ICD10:C00-C96`` is a range over
three-character categories. Other systems (SNOMED CT, RxNorm, LOINC, CPT, CVX, LOCAL) match by
exact code: members such as ``<<SNOMED:363346000`` or an RxNorm ingredient are expanded once, at
compile time, against the terminology store (:mod:`screening.check`), into the matcher's set.

A member that could not be expanded (no store, the system not loaded, the concept not in the
store) leaves its system *undecidable*: a record coded in that system that matches nothing is
neither in nor out, and :meth:`CodeMatcher.classify` says unknown and why, unless another of the
record's codes decides (a code in a system the value set covers completely, such as ICD-10).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

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
    """Matches normalised patient codes against a value set.

    ``exact``, ``prefixes`` and ``ranges`` are the codes that are certainly in it. ``undecidable``
    maps a system (``"*"``: any) whose hierarchy a member needed but the compile could not expand
    to the reason, worded as what would decide it; ``covered`` are the systems in which the value
    set lists members and nothing is missing, so a code of such a system that matches nothing is
    certainly out. ``parts`` are included value sets with an ``except`` of their own (kept whole,
    their exclusion applies to them only); ``excluded`` is this value set's ``except`` part.
    ``known`` (optional) says whether a code is a concept of the terminology store: a code of an
    expanded system that the store does not hold is undecidable too.
    """

    name: str
    exact: frozenset[str]
    prefixes: tuple[str, ...]
    ranges: tuple[tuple[str, str, str], ...]  # (system, first, last) over 3-character categories
    undecidable: dict = field(default_factory=dict)  # system -> why a code of it cannot be decided
    covered: frozenset[str] = frozenset()
    parts: tuple["CodeMatcher", ...] = ()
    excluded: "CodeMatcher | None" = None
    known: object = None  # callable(ref) -> str | None: why the store cannot place the code, None when it can
    expanded: frozenset[str] = frozenset()  # systems whose codes were expanded against the store

    def matches(self, code: str) -> bool:
        """Is the code certainly in the value set's own members (ignoring parts and exclusions)?"""
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
        """Is the record certainly in the value set? (``classify`` is True)"""
        return self.classify(codes)[0] is True

    def classify(self, codes: tuple[str, ...]) -> tuple[bool | None, str | None]:
        """Is a record with these codes (codings of one concept) in the value set?

        (True, None), (False, None), or (None, why): a code matches -> True; else a code of a
        covered system -> False; else a code of an undecidable system -> unknown; else False.
        Then ``except``: in and not excluded (Kleene). Memoised: code tuples recur across patients.
        """
        cache = self._seen
        found = cache.get(codes)
        if found is None:
            found = self._classify(codes)
            if len(cache) < 100_000:
                cache[codes] = found
        return found

    def _own(self, codes) -> tuple[bool | None, str | None]:
        if any(self.matches(code) for code in codes):
            return True, None
        if not self.undecidable and self.known is None:
            return False, None
        why = None
        for code in codes:
            system = code.partition(":")[0]
            if self.known is not None and system in self.expanded:
                unplaced = self.known(code)  # a code the store does not hold cannot be placed in its hierarchy
                if unplaced:
                    why = why or unplaced
                    continue
            if system in self.covered:
                return False, None
            if why is None:
                why = self.undecidable.get(system) or self.undecidable.get("*")
        return (None, why) if why else (False, None)

    def _classify(self, codes) -> tuple[bool | None, str | None]:
        value, why = self._own(codes)
        for part in self.parts:
            if value is True:
                break
            other, reason = part.classify(codes)
            if other is True:
                value, why = True, None
            elif other is None and value is False:
                value, why = None, reason
        if value is False or self.excluded is None:
            return value, why
        out, reason = self.excluded.classify(codes)
        if out is True:
            return False, None
        if out is None:
            return None, f"it may be in the part after `except` ({self.excluded.name}): {reason}"
        return value, why

    def __post_init__(self) -> None:
        self._seen: dict[tuple[str, ...], tuple[bool | None, str | None]] = {}
