"""Value-set members expanded against the terminology store, once, at compile time.

:class:`Expander` wraps an open :class:`~screening.terminology.TerminologyStore` (or None: no
store) for :mod:`screening.check`. It expands members (``<<SNOMED:x``, ``RXNORM:x``, ``ATC:x``,
``VALUESET:url``), caching each; when a member cannot be expanded it says, in words a
coordinator can act on, what would decide the records it leaves open ("without a SNOMED CT
hierarchy: load a SNOMED CT release (screening terminology load)"). At screening time it answers
one question only, memoised per code: does the store hold this code (:meth:`known`)? A code the
store does not hold cannot be placed in the hierarchy, so a record carrying it is unknown.
"""
from __future__ import annotations

from .terminology.errors import SystemNotLoaded, TerminologyError, UnknownConcept

__all__ = ["Expander", "INGREDIENT_KINDS", "TerminologyError", "describe_sources"]

#: RxNorm term types that are ingredients: a member of one of these stands for every product containing it
INGREDIENT_KINDS = ("IN", "PIN", "MIN")

_LOAD = "(screening terminology load)"
_WHAT = {
    "SNOMED": ("a SNOMED CT hierarchy", "load a SNOMED CT release"),
    "RXNORM": ("RxNorm", "load an RxNorm release"),
    "LOINC": ("a LOINC hierarchy", "load a LOINC code system"),
    "LOCAL": ("a hierarchy of LOCAL codes", "load the site's CodeSystem of LOCAL codes"),
}


def _what(system: str) -> tuple[str, str]:
    return _WHAT.get(system, (f"a {system} hierarchy", f"load a {system} code system"))


def describe_sources(sources: list[dict] | None) -> str:
    """``SNOMED CT INT version 20240101 (effective 2024-01-01); RxNorm ...`` or ``none``."""
    if not sources:
        return "none"
    parts = []
    for s in sources:
        text = s["source"]
        if s.get("version"):
            text += f" version {s['version']}"
        if s.get("effective") and s.get("effective") != s.get("version"):
            text += f" (effective {s['effective']})"
        parts.append(text)
    return "; ".join(parts)


class Expander:
    """Expansions of value-set members for one compile (None store: nothing expands)."""

    def __init__(self, store=None):
        self.store = store
        self._cache: dict[tuple[str, str, str], tuple[frozenset[str], str | None]] = {}
        self._lookups: dict[tuple[str, str], object] = {}
        self._known: dict[str, str | None] = {}
        self._systems: dict[str, bool] = {}

    # ---- compile time
    def missing(self, system: str, member: str | None = None) -> str:
        """Why records of ``system`` cannot be placed: no store, or the store has none of the system."""
        what, how = _what(system)
        if self.store is None:
            return f"without {what}: {how} {_LOAD}"
        return f"without {what} (the terminology store has none): {how} {_LOAD}"

    def try_expand(self, op: str, system: str, code: str) -> tuple[frozenset[str], str | None]:
        """(codes, None), or (empty, why the member's records cannot be decided)."""
        key = (op, system, code)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._try(op, system, code)
        return found

    def _try(self, op: str, system: str, code: str) -> tuple[frozenset[str], str | None]:
        target = "RXNORM" if system == "ATC" else system
        member = f"{op}{system}:{code}"
        if self.store is None:
            why = self.missing(target)
            if system == "ATC":
                why = f"without RxNorm (to find the products in {member}): load an RxNorm release {_LOAD}"
            return frozenset(), why
        try:
            return self.expand(op, system, code), None
        except SystemNotLoaded:
            if system == "ATC":
                return frozenset(), (f"without RxNorm and its ATC links (to find the products in {member}): "
                                     f"load an RxNorm release {_LOAD}")
            return frozenset(), self.missing(target)
        except UnknownConcept:
            _, how = _what(target)
            return frozenset(), f"{member} is not in the terminology store: {how} that has it {_LOAD}"

    def expand(self, op: str, system: str, code: str) -> frozenset[str]:
        """Raises TerminologyError (UnknownConcept, SystemNotLoaded) when the store cannot expand it."""
        if self.store is None:
            raise SystemNotLoaded(f"{op}{system}:{code}: no terminology store")
        from .terminology.store import Member

        return self.store.expand(Member(op, system, code))

    def lookup(self, system: str, code: str):
        """The store's concept (display, active, RxNorm term type), or None."""
        if self.store is None:
            return None
        key = (system, code)
        if key not in self._lookups:
            try:
                self._lookups[key] = self.store.lookup(system, code)
            except TerminologyError:
                self._lookups[key] = None
        return self._lookups[key]

    def has_descendants(self, system: str, code: str) -> bool:
        try:
            return bool(self.store.descendants(system, code, include_self=False))
        except TerminologyError:
            return False

    def sources(self) -> list[dict] | None:
        """The store's sources, for reports: [{"source", "version", "effective"}]; None without a store."""
        if self.store is None:
            return None
        return [{"source": s.name, "version": s.version, "effective": s.effective} for s in self.store.sources()]

    # ---- screening time
    def known(self, ref: str) -> str | None:
        """None when the store holds the code; else why a record carrying it cannot be placed (memoised)."""
        if ref in self._known:
            return self._known[ref]
        system, _, code = ref.partition(":")
        why = None
        if not self.store.contains(system, code):
            _, how = _what(system)
            why = f"{ref} is not in the terminology store: {how} (or extension) that has it {_LOAD}"
        if len(self._known) < 200_000:
            self._known[ref] = why
        return why
