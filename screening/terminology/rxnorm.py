"""RxNorm release folders: RXNCONSO.RRF (concepts), RXNREL.RRF (relations), RXNSAB.RRF (versions).

RxNorm concepts (SAB=RXNORM) are stored under the system RXNORM with their term type (IN, PIN,
MIN, BN, SCDC, SCDF, SCDG, SBDC, SBDF, SBDG, SCD, SBD, GPCK, BPCK, DF, ...) and the name of that
term type as display. The "hierarchy" stored for RxNorm is *contains or specialises*: its closure
answers "which RxNorm concepts contain this ingredient", so that ``RXNORM:3002`` (cyclophosphamide)
expands to its precise ingredients, brand names, components, dose forms and groups, clinical and
branded drugs and packs.

The relation walk. A row of RXNREL with SAB=RXNORM whose RELA is one of ``WALK`` links two
concepts; the concept whose term type ranks higher in ``RANK`` contains (or is a more specific
form of) the other, and becomes its child. Ranking by term type rather than trusting the
direction of RXCUI1/RXCUI2 makes the walk independent of how a release orders each pair (every
RxNorm relation is present in both directions anyway). Rows between concepts of the same rank
(a quantified SCD and its SCD, ``reformulated_to``), and the dose-form relations
(``has_dose_form``, ``doseformgroup_of``) are not walked: a tablet does not contain a drug.

Other vocabularies in RXNCONSO (ATC, MeSH, DrugBank, NDDF, ...) are stored under their SAB as
system (ATC as ``ATC``, codes upper case without dots), with a link to the RxNorm concept that
shares their RXCUI (ATC ``L01AA01`` -> RxNorm ingredient 3002). ATC codes get their hierarchy
from the code itself (levels of 1, 3, 4, 5 and 7 characters: ``L01AA01`` is-a ``L01AA`` is-a
``L01A`` ...), which is how the WHO defines it.
"""
from __future__ import annotations

import re
from pathlib import Path

from .errors import LoadError
from .progress import SILENT, Progress, numbered_lines, open_text
from .store import SourceData, normalise

RXNCONSO_FIELDS = ["RXCUI", "LAT", "TS", "LUI", "STT", "SUI", "ISPREF", "RXAUI", "SAUI", "SCUI", "SDUI", "SAB", "TTY",
                   "CODE", "STR", "SRL", "SUPPRESS", "CVF"]
RXNREL_FIELDS = ["RXCUI1", "RXAUI1", "STYPE1", "REL", "RXCUI2", "RXAUI2", "STYPE2", "RELA", "RUI", "SRUI", "SAB", "SL",
                 "RG", "DIR", "SUPPRESS", "CVF"]
RXNSAB_FIELDS = 25

# Term types by how much they contain: a concept contains every linked concept of lower rank.
RANK = {"IN": 0, "PIN": 1, "MIN": 1, "BN": 2, "SCDC": 3, "SCDG": 3, "SCDF": 4, "SBDC": 5, "SBDG": 5, "SBDF": 6,
        "SCD": 6, "SBD": 7, "GPCK": 8, "BPCK": 9}
WALK = frozenset({
    "has_ingredient", "ingredient_of", "has_precise_ingredient", "precise_ingredient_of",
    "has_ingredients", "ingredients_of", "has_part", "part_of", "has_form", "form_of",
    "consists_of", "constitutes", "has_tradename", "tradename_of", "isa", "inverse_isa",
    "contains", "contained_in",
})
# Preferred term type for a concept's kind and display, when an RXCUI has several rows.
_TTY_ORDER = list(RANK) + ["DF", "DFG", "ET", "PSN", "SY", "TMSY"]
ATC_LEVELS = (1, 3, 4, 5)


def is_rxnorm_folder(folder: Path) -> bool:
    return folder.is_dir() and _find(folder, "RXNCONSO.RRF") is not None


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / "rrf" / name):
        if candidate.is_file():
            return candidate
    return next(iter(sorted(folder.rglob(name))), None)


def _rows(path: Path, width: int, progress: Progress, names: list[str] | None = None):
    name = str(path)
    with open_text(path) as handle:
        for number, text in numbered_lines(handle, progress):
            fields = text.split("|")
            if len(fields) != width + 1 or fields[-1] != "":
                what = f" ({'|'.join(names)}|)" if names else ""
                raise LoadError(name, f"{len(fields) - 1 if fields[-1] == '' else len(fields)} fields, expected "
                                      f"{width} separated and ended by '|'{what}", number)
            yield number, fields


def _rxcui(value: str, file: str, line: int, column: str) -> str:
    if not value.isdigit():
        raise LoadError(file, f"{column} {value!r} is not an RXCUI (digits)", line)
    return value


def system_of_sab(sab: str) -> str:
    return "RXNORM" if sab == "RXNORM" else sab


def load_rxnorm(folder: Path, progress: Progress = SILENT) -> SourceData:
    conso = _find(folder, "RXNCONSO.RRF")
    rel = _find(folder, "RXNREL.RRF")
    if conso is None:
        raise LoadError(str(folder), "no RXNCONSO.RRF: not an RxNorm release folder")
    if rel is None:
        raise LoadError(str(folder), "no RXNREL.RRF beside RXNCONSO.RRF: the relations are needed")
    sab_file = _find(folder, "RXNSAB.RRF")
    progress.start(f"reading {folder.name or folder}", conso.stat().st_size + rel.stat().st_size)

    # RXNCONSO: per RXCUI the rows of SAB=RXNORM; per (SAB, CODE) of other sources, the name and RXCUIs
    rx: dict[str, tuple[int, str, str, str]] = {}          # rxcui -> (tty order, tty, str, suppress)
    other: dict[tuple[str, str], tuple[int, str, str]] = {}  # (system, code) -> (preference, str, suppress)
    other_cuis: dict[tuple[str, str], set[str]] = {}
    name = str(conso)
    for line, f in _rows(conso, len(RXNCONSO_FIELDS), progress, RXNCONSO_FIELDS):
        rxcui = _rxcui(f[0], name, line, "RXCUI")
        sab, tty, code, text, suppress = f[11], f[12], f[13], f[14], f[16]
        if not sab or not tty:
            raise LoadError(name, "SAB and TTY must not be empty", line)
        if suppress not in ("N", "O", "Y", "E", ""):
            raise LoadError(name, f"SUPPRESS {suppress!r}, expected N, O, Y or E", line)
        if sab == "RXNORM":
            order = _TTY_ORDER.index(tty) if tty in _TTY_ORDER else len(_TTY_ORDER)
            previous = rx.get(rxcui)
            if previous is None or order < previous[0]:
                rx[rxcui] = (order, tty, text, suppress)
        else:
            if not code or code == "NOCODE":
                continue
            system = system_of_sab(sab)
            key = (system, normalise(system, code))
            preference = 0 if f[6] == "Y" and suppress == "N" else 1 if suppress == "N" else 2
            previous = other.get(key)
            if previous is None or preference < previous[0]:
                other[key] = (preference, text, suppress)
            other_cuis.setdefault(key, set()).add(rxcui)

    # RXNREL: the containment walk between RxNorm concepts
    edges: set[tuple[str, str, str]] = set()
    name = str(rel)
    for line, f in _rows(rel, len(RXNREL_FIELDS), progress, RXNREL_FIELDS):
        a = _rxcui(f[0], name, line, "RXCUI1") if f[0] else ""
        b = _rxcui(f[4], name, line, "RXCUI2") if f[4] else ""
        if f[10] != "RXNORM" or f[7] not in WALK or not a or not b:
            continue
        ta, tb = rx.get(a), rx.get(b)
        if ta is None or tb is None:
            continue
        ra, rb = RANK.get(ta[1]), RANK.get(tb[1])
        if ra is None or rb is None or ra == rb:
            continue
        edges.add(("RXNORM", a, b) if ra > rb else ("RXNORM", b, a))
    progress.done()

    data = SourceData(name="RxNorm", kind="rxnorm", path=str(folder.resolve()))
    data.concepts = [("RXNORM", cui, text, int(suppress in ("N", "")), tty) for cui, (_, tty, text, suppress) in rx.items()]
    data.concepts += [(system, code, text, int(suppress in ("N", "")), None)
                      for (system, code), (_, text, suppress) in other.items()]
    for system, code in other:
        if system != "ATC":
            continue
        # every level of the code, also the classes a release does not list (they become
        # referenced-only concepts, so ATC:L01AA still expands)
        chain = [code[:n] for n in ATC_LEVELS if n < len(code)] + [code]
        edges.update(("ATC", child, parent) for parent, child in zip(chain, chain[1:]))
    data.edges = sorted(edges)
    data.links = sorted((system, code, "RXNORM", cui) for (system, code), cuis in other_cuis.items()
                        for cui in cuis if cui in rx)
    sabs = sorted({system for system, _ in other} | {"RXNORM"})
    versions = _versions(sab_file, progress) if sab_file else {}
    data.version, data.effective = _release(folder, versions.get("RXNORM"))
    data.details = {"sources": {sab: versions.get(sab, "") for sab in sabs},
                    "term_types": _count(tty for _, tty, _, _ in rx.values())}
    return data


def _count(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def _versions(path: Path, progress: Progress) -> dict[str, str]:
    """RSAB -> VSAB (a versioned source name such as RXNORM_24AA_240102F) from RXNSAB.RRF."""
    found: dict[str, str] = {}
    for _, f in _rows(path, RXNSAB_FIELDS, progress):
        found[f[3]] = f[2]
    return found


def _release(folder: Path, vsab: str | None) -> tuple[str | None, str | None]:
    """(version, ISO effective date) from RXNSAB's RXNORM entry or the release folder's name
    (``RxNorm_full_01022024`` -> 2024-01-02)."""
    for part in [folder.resolve().name, folder.resolve().parent.name]:
        m = re.search(r"(\d{2})(\d{2})(\d{4})$", part)
        if m:
            month, day, year = m.groups()
            return vsab or f"{year}{month}{day}", f"{year}-{month}-{day}"
    if vsab:
        m = re.search(r"_(\d{2})(\d{2})(\d{2})F?$", vsab)
        if m:
            return vsab, f"20{m.group(1)}-{m.group(2)}-{m.group(3)}"
        return vsab, None
    return None, None
