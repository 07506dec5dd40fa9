"""SNOMED CT RF2 release folders: Snapshot concepts, English descriptions and is-a relationships.

Read from a release folder (searched recursively):

* ``sct2_Concept_Snapshot*.txt``: id, effectiveTime, active, moduleId, definitionStatusId;
* ``sct2_Description_Snapshot-en*.txt``: id, effectiveTime, active, moduleId, conceptId,
  languageCode, typeId, term, caseSignificanceId: the active fully specified name (typeId
  900000000000003001) is the display; a concept without one gets its first active synonym;
* ``sct2_Relationship_Snapshot*.txt`` (the inferred relationships): id, effectiveTime, active,
  moduleId, sourceId, destinationId, relationshipGroup, typeId, characteristicTypeId, modifierId:
  active rows with typeId 116680003 (is a) are the hierarchy.

Every id is checked as an SCTID (digits, partition, Verhoeff check digit), every effectiveTime
as a date, every active flag as 0 or 1; the first bad row stops the load with ``FILE:LINE``.
A Snapshot holds one row per id; should a folder hold more (a Full file renamed, a Delta
applied on top), the row with the latest effectiveTime wins. Full and Delta files themselves are
refused: they hold history, and reading them as a snapshot would resurrect retired content.

The source is named after the release's namespace element in the file names
(``sct2_Concept_Snapshot_INT_20240101.txt`` -> ``SNOMED CT INT``, version ``20240101``); loading
a later release of the same edition or extension replaces the earlier one.
"""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from .errors import LoadError
from .progress import SILENT, Progress, numbered_lines, open_text
from .store import SourceData

IS_A = "116680003"
FSN = "900000000000003001"
SYNONYM = "900000000000013009"

CONCEPT_COLUMNS = ["id", "effectiveTime", "active", "moduleId", "definitionStatusId"]
DESCRIPTION_COLUMNS = ["id", "effectiveTime", "active", "moduleId", "conceptId", "languageCode", "typeId", "term",
                       "caseSignificanceId"]
RELATIONSHIP_COLUMNS = ["id", "effectiveTime", "active", "moduleId", "sourceId", "destinationId", "relationshipGroup",
                        "typeId", "characteristicTypeId", "modifierId"]

_NAME = re.compile(r"^sct2_(?:Concept|Description|Relationship)_(Snapshot|Full|Delta)(?:-[a-z]{2})?_([A-Za-z0-9]+)_(\d{8})\.txt$")

# Verhoeff's dihedral-group tables.
_D = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
      [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
      [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
      [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]]
_P = [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
      [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
      [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8]]
_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]
_DIGITS = {str(i): i for i in range(10)}


def verhoeff_valid(digits: str) -> bool:
    """Does the string of digits end with a correct Verhoeff check digit?"""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[i % 8][_DIGITS[ch]]]
    return c == 0


def verhoeff_digit(digits: str) -> str:
    """The check digit to append to ``digits``."""
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + 1) % 8][_DIGITS[ch]]]
    return str(_INV[c])


_PARTITIONS = {"concept": ("00", "10"), "description": ("01", "11"), "relationship": ("02", "12")}


def sctid_problem(value: str, kind: str) -> str | None:
    """Why ``value`` is not a valid SCTID of this kind (concept, description, relationship); None if it is."""
    if not (6 <= len(value) <= 18) or not value.isdigit() or value[0] == "0":
        return f"{value!r} is not an SCTID (6 to 18 digits, no leading zero)"
    if not verhoeff_valid(value):
        return f"{value} is not an SCTID: its check digit is wrong"
    if value[-3:-1] not in _PARTITIONS[kind]:
        return f"{value} is not a {kind} id (partition {value[-3:-1]})"
    return None


def _effective(value: str, file: str, line: int) -> str:
    if len(value) == 8 and value.isdigit():
        try:
            date(int(value[:4]), int(value[4:6]), int(value[6:]))
            return value
        except ValueError:
            pass
    raise LoadError(file, f"effectiveTime {value!r} is not a date (YYYYMMDD)", line)


def find_release_files(folder: Path) -> dict[str, list[Path]]:
    """The Snapshot files of a release folder, by kind. Raises LoadError for a folder with only
    Full or Delta files, or with no concept file."""
    found: dict[str, list[Path]] = {"concept": [], "description": [], "relationship": []}
    history: list[Path] = []
    for path in sorted(folder.rglob("sct2_*.txt")):
        name = path.name
        if name.startswith("sct2_Concept_Snapshot"):
            found["concept"].append(path)
        elif name.startswith("sct2_Description_Snapshot-en"):
            found["description"].append(path)
        elif name.startswith("sct2_Relationship_Snapshot"):
            found["relationship"].append(path)
        elif re.match(r"sct2_(Concept|Description|Relationship)_(Full|Delta)", name):
            history.append(path)
    if not found["concept"]:
        if history:
            raise LoadError(str(folder), f"only Full/Delta files ({history[0].name} ...): load the release's "
                                         "Snapshot folder (Full and Delta files hold history, not the current state)")
        raise LoadError(str(folder), "no sct2_Concept_Snapshot*.txt file: not a SNOMED CT RF2 release folder")
    if not found["relationship"]:
        raise LoadError(str(folder), "no sct2_Relationship_Snapshot*.txt file (the inferred is-a relationships)")
    return found


def is_rf2_folder(folder: Path) -> bool:
    return folder.is_dir() and next(folder.rglob("sct2_Concept_*.txt"), None) is not None


def _rows(path: Path, columns: list[str], progress: Progress):
    """(line number, fields) of every data row, after checking the header."""
    name = str(path)
    with open_text(path) as handle:
        header = handle.readline()
        got = header.rstrip("\r\n").split("\t")
        if got != columns:
            raise LoadError(name, f"header is {got[:len(columns) + 1]!r}, expected the RF2 columns {columns!r}", 1)
        width = len(columns)
        for number, text in numbered_lines(handle, progress, start=2, already=len(header)):
            fields = text.split("\t")
            if len(fields) != width:
                raise LoadError(name, f"{len(fields)} columns, expected {width} ({', '.join(columns)})", number)
            yield number, fields


def _flag(value: str, file: str, line: int) -> bool:
    if value == "1":
        return True
    if value == "0":
        return False
    raise LoadError(file, f"active is {value!r}, expected 0 or 1", line)


def load_rf2(folder: Path, progress: Progress = SILENT) -> SourceData:
    """Read a SNOMED CT RF2 release folder into a SourceData (nothing is written here)."""
    files = find_release_files(folder)
    all_files = [p for kind in ("concept", "description", "relationship") for p in files[kind]]
    progress.start(f"reading {folder.name or folder}", sum(p.stat().st_size for p in all_files))

    valid_ids: set[str] = set()

    def check_id(value: str, kind: str, file: str, line: int, what: str) -> None:
        if value in valid_ids:
            return
        problem = sctid_problem(value, kind)
        if problem:
            raise LoadError(file, f"{what}: {problem}", line)
        if kind == "concept":
            valid_ids.add(value)

    # concepts: latest row per id wins
    concepts: dict[str, tuple[str, bool, str]] = {}   # id -> (effectiveTime, active, moduleId)
    for path in files["concept"]:
        name = str(path)
        for line, f in _rows(path, CONCEPT_COLUMNS, progress):
            cid, eff = f[0], _effective(f[1], name, line)
            check_id(cid, "concept", name, line, "id")
            active = _flag(f[2], name, line)
            check_id(f[3], "concept", name, line, "moduleId")
            previous = concepts.get(cid)
            if previous is None or eff >= previous[0]:
                concepts[cid] = (eff, active, f[3])

    # descriptions: the FSN (else a synonym) of the latest active row per description id
    descriptions: dict[str, tuple[str, bool, str, str, str]] = {}  # did -> (eff, active, conceptId, typeId, term)
    for path in files["description"]:
        name = str(path)
        for line, f in _rows(path, DESCRIPTION_COLUMNS, progress):
            did, eff = f[0], _effective(f[1], name, line)
            problem = sctid_problem(did, "description")
            if problem:
                raise LoadError(name, f"id: {problem}", line)
            active = _flag(f[2], name, line)
            check_id(f[4], "concept", name, line, "conceptId")
            previous = descriptions.get(did)
            if previous is None or eff >= previous[0]:
                descriptions[did] = (eff, active, f[4], f[6], f[7])
    fsn: dict[str, str] = {}
    synonym: dict[str, str] = {}
    for _, active, concept, type_id, term in descriptions.values():
        if not active:
            continue
        if type_id == FSN:
            fsn.setdefault(concept, term)
        elif type_id == SYNONYM:
            synonym.setdefault(concept, term)
    del descriptions

    # relationships: active is-a rows, latest row per relationship id
    relationships: dict[str, tuple[str, bool, str, str]] = {}
    for path in files["relationship"]:
        name = str(path)
        for line, f in _rows(path, RELATIONSHIP_COLUMNS, progress):
            rid, eff = f[0], _effective(f[1], name, line)
            problem = sctid_problem(rid, "relationship")
            if problem:
                raise LoadError(name, f"id: {problem}", line)
            active = _flag(f[2], name, line)
            check_id(f[4], "concept", name, line, "sourceId")
            check_id(f[5], "concept", name, line, "destinationId")
            check_id(f[7], "concept", name, line, "typeId")
            if f[7] != IS_A:
                continue
            previous = relationships.get(rid)
            if previous is None or eff >= previous[0]:
                relationships[rid] = (eff, active, f[4], f[5])
    progress.done()

    edges = sorted({("SNOMED", src, dst) for _, active, src, dst in relationships.values() if active})
    inactive = {cid for cid, (_, active, _) in concepts.items() if not active}
    edges = [e for e in edges if e[1] not in inactive]

    edition, version = _edition(files["concept"][0], concepts)
    modules = sorted({m for _, _, m in concepts.values()})
    data = SourceData(
        name=f"SNOMED CT {edition}", kind="rf2", version=version,
        effective=f"{version[:4]}-{version[4:6]}-{version[6:]}" if version and len(version) == 8 else None,
        path=str(folder.resolve()),
        details={"modules": len(modules), "inactive_concepts": len(inactive)},
    )
    data.concepts = [("SNOMED", cid, fsn.get(cid) or synonym.get(cid), int(active), None)
                     for cid, (_, active, _) in concepts.items()]
    data.edges = edges
    missing = sum(1 for cid in concepts if cid not in fsn and cid not in synonym)
    if missing:
        data.warnings.append(f"{missing} concepts have no active English description")
    return data


def _edition(concept_file: Path, concepts: dict[str, tuple[str, bool, str]]) -> tuple[str, str | None]:
    """(namespace element, release date) from the file name, else (modules, latest effectiveTime)."""
    match = _NAME.match(concept_file.name)
    latest = max((eff for eff, _, _ in concepts.values()), default=None)
    if match:
        return match.group(2), match.group(3)
    modules = sorted({m for _, _, m in concepts.values()})
    label = modules[0] if len(modules) == 1 else f"{modules[0]} (+{len(modules) - 1} modules)"
    return f"module {label}", latest
