"""The importer's lexicon: registry phrases for conditions and drug classes -> value sets.

The data is ``lexicon.toml`` beside this module (each entry with its codes, phrases and the source
the codes were checked against); :func:`lexicon` loads it once. :meth:`Lexicon.match` finds the
longest entry phrase at a position of a normalised line.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_KINDS = {"lifelong", "disease", "event"}


@dataclass(frozen=True)
class Entry:
    """One lexicon entry: a value set the drafter may declare, and the phrases that name it."""

    name: str
    display: str
    record: str                     # "condition", "medication" or "procedure"
    codes: tuple[str, ...]
    kind: str = "disease"           # conditions: "lifelong", "disease", "event"
    history_codes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    source: str = ""
    unsure_codes: tuple[str, ...] = ()          # mixed codes: a record under one makes the test unknown
    unsure_except: tuple[str, ...] = ()
    unsure_history_codes: tuple[str, ...] = ()  # the same, for a history (no window) only
    unsure_question: str = ""

    def declaration(self, history: bool = False) -> tuple[str, str]:
        """(value set name, ``valueset`` declaration); ``history`` adds the codes of a past event."""
        codes = self.codes + (self.history_codes if history else ())
        name = self.name + ("_history" if history and self.history_codes else "")
        display = self.display + (" (event or history of it)" if history and self.history_codes else "")
        text = f'valueset {name} "{display}" = {", ".join(codes)}'
        if self.excluded:
            text += f" except {', '.join(self.excluded)}"
        return name, text

    def unsure_declaration(self, history: bool = False) -> tuple[str, str] | None:
        """(value set name, declaration) of the codes that may or may not be this entry, or None.

        A record under one of them makes the test unknown (a ``review`` with :attr:`unsure_question`),
        never true or false: ICD-10-CM Z86.73 holds a prior stroke and a past TIA alone."""
        codes = self.unsure_codes + (self.unsure_history_codes if history else ())
        if not codes:
            return None
        with_history = history and bool(self.unsure_history_codes)
        name = self.name + ("_history" if with_history else "") + "_unsure"
        display = f"{self.display}{' (history)' if with_history else ''}: codes that may or may not be one"
        text = f'valueset {name} "{display}" = {", ".join(codes)}'
        if self.unsure_except:
            text += f" except {', '.join(self.unsure_except)}"
        return name, text


@dataclass(frozen=True)
class Match:
    entries: tuple[Entry, ...]
    end: int


class Lexicon:
    """The loaded lexicon: entries by name, and one matcher per record kind."""

    def __init__(self, data: dict):
        self.entries: dict[str, Entry] = {}
        for record in ("condition", "medication", "procedure"):
            for raw in data.get(record, []):
                kind = raw.get("kind", "disease")
                if record == "condition" and kind not in _KINDS:
                    raise ValueError(f"lexicon entry {raw['name']}: unknown kind {kind!r}")
                entry = Entry(raw["name"], raw["display"], record, tuple(raw["codes"]), kind,
                              tuple(raw.get("history_codes", ())), tuple(raw.get("except", ())),
                              tuple(raw["phrases"]), raw.get("source", ""), tuple(raw.get("unsure_codes", ())),
                              tuple(raw.get("unsure_except", ())), tuple(raw.get("unsure_history_codes", ())),
                              raw.get("unsure_question", ""))
                if (entry.unsure_codes or entry.unsure_history_codes) and not entry.unsure_question:
                    raise ValueError(f"lexicon entry {entry.name}: unsure codes without an unsure_question")
                if entry.name in self.entries:
                    raise ValueError(f"lexicon entry {entry.name} declared twice")
                if not entry.source:
                    raise ValueError(f"lexicon entry {entry.name} has no source")
                self.entries[entry.name] = entry
        self._patterns: dict[str, list[tuple[re.Pattern, tuple[Entry, ...]]]] = {
            "condition": [], "medication": [], "procedure": []}
        for entry in self.entries.values():
            for phrase in entry.phrases:
                self._patterns[entry.record].append((re.compile(rf"\b(?:{phrase})(?![\w-])", re.I), (entry,)))
        for raw in data.get("compound", []):
            entries = tuple(self.entries[n] for n in raw["names"])
            self._patterns[entries[0].record].append((re.compile(rf"\b(?:{raw['phrase']})(?![\w-])", re.I), entries))

    def match(self, record: str, text: str, pos: int) -> Match | None:
        """The longest phrase of a ``record`` entry ("condition"/"medication"/"procedure") starting at ``pos``."""
        best = None
        for pattern, entries in self._patterns[record]:
            m = pattern.match(text, pos)
            if m and (best is None or m.end() > best.end):
                best = Match(entries, m.end())
        return best


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The lexicon shipped with the package (``screening/ctgov/lexicon.toml``)."""
    path = Path(__file__).with_name("lexicon.toml")
    return Lexicon(tomllib.loads(path.read_text(encoding="utf-8")))
