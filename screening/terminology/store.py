"""The local terminology store: one SQLite file holding concepts, is-a edges, their precomputed
transitive closure, links between systems (ATC -> RxNorm ingredient) and FHIR value sets.

Why SQLite: it ships with Python (no new dependency), a store is one file that can be copied
between machines, reads need no server and no lock, and a load runs inside one transaction, so a
load that fails half-way (a malformed row) is rolled back and the store is left exactly as it
was. DuckDB would build the closure faster in bulk, but its point lookups cost tens of
microseconds each and it is a 30 MB dependency; the descendant test is what must be fast.

Schema (see ``SCHEMA``): every concept has an integer id, unique per ``(system, code)`` and stable
across reloads; ``closure(descendant, ancestor)`` is a WITHOUT ROWID table whose primary key
answers "is X a descendant of Y" with one B-tree probe and "all descendants of Y" with one range
scan; ancestors (for ``lookup``) are few and are found by walking the edges upwards, so the
closure needs no second index. Self pairs are not stored.

Systems are the short names of the criteria language: SNOMED, RXNORM, ATC, LOINC, ICD10, CPT,
LOCAL; a FHIR CodeSystem with another canonical URL is stored under that URL, and RxNorm's other
source vocabularies under their SAB (``MSH``, ``DRUGBANK`` ...).
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .closure import compute_closure
from .errors import BadMember, SystemNotLoaded, TerminologyError, UnknownConcept
from .progress import SILENT, Progress

SCHEMA_VERSION = "1"
ENV_VAR = "SCREENING_TERMINOLOGY"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,          -- what a newer version replaces: 'SNOMED CT INT', 'RxNorm', 'ValueSet <url>'
    kind TEXT NOT NULL,                 -- rf2 | rxnorm | fhir-codesystem | fhir-valueset
    version TEXT, effective TEXT, path TEXT, loaded_at TEXT,
    systems TEXT,                       -- JSON list
    concepts INTEGER, relationships INTEGER,
    details TEXT                        -- JSON object (e.g. the versions of RxNorm's source vocabularies)
);
CREATE TABLE IF NOT EXISTS concepts (
    id INTEGER PRIMARY KEY,
    system TEXT NOT NULL, code TEXT NOT NULL,
    display TEXT, active INTEGER, kind TEXT,
    source INTEGER,                     -- NULL: only referenced (a parent from a module not loaded)
    UNIQUE (system, code)
);
CREATE INDEX IF NOT EXISTS concepts_by_source ON concepts (source);
CREATE TABLE IF NOT EXISTS edges (source INTEGER NOT NULL, system TEXT NOT NULL, child INTEGER NOT NULL, parent INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS edges_by_source ON edges (source);
CREATE INDEX IF NOT EXISTS edges_by_child ON edges (child, parent);
CREATE INDEX IF NOT EXISTS edges_by_parent ON edges (parent);
CREATE TABLE IF NOT EXISTS links (source INTEGER NOT NULL, from_id INTEGER NOT NULL, to_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS links_by_from ON links (from_id, to_id);
CREATE INDEX IF NOT EXISTS links_by_source ON links (source);
CREATE TABLE IF NOT EXISTS closure (
    ancestor INTEGER NOT NULL, descendant INTEGER NOT NULL,
    PRIMARY KEY (ancestor, descendant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS valuesets (
    url TEXT PRIMARY KEY, version TEXT, name TEXT, title TEXT, source INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS valueset_rules (
    source INTEGER NOT NULL, url TEXT NOT NULL, seq INTEGER NOT NULL,
    include INTEGER NOT NULL,           -- 1 include, 0 exclude
    op TEXT NOT NULL,                   -- '=' one code, '<<' is-a, '<' descendent-of, '*' whole system, 'valueset'
    system TEXT, code TEXT
);
CREATE INDEX IF NOT EXISTS valueset_rules_by_url ON valueset_rules (url, seq);
"""

# Systems whose plain member (no << or <) expands: an RxNorm concept stands for everything that
# contains it, an ATC class for its sub-classes and their drugs. Others match exactly.
EXPANDING_SYSTEMS = ("RXNORM", "ATC")
# all ancestors of a concept id (bound twice: the concept, and again by the caller's filter)
_UP = ("WITH RECURSIVE up(id) AS (SELECT parent FROM edges WHERE child = ? "
       "UNION SELECT e.parent FROM edges e JOIN up ON e.child = up.id)")
_MEMBER = re.compile(r"^\s*(<<|<)?\s*([A-Za-z][A-Za-z0-9_.-]*):(.+?)\s*$")


def default_store_path() -> Path:
    """``$SCREENING_TERMINOLOGY`` when set, else ``terminology.sqlite`` in the per-user data folder
    (``~/.local/share/screening`` on Linux, ``~/Library/Application Support/screening`` on macOS,
    ``%LOCALAPPDATA%\\screening`` on Windows)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_data_path("screening", appauthor=False) / "terminology.sqlite"


def resolve_store_path(option: str | os.PathLike | None) -> Path:
    """``--store`` wins over ``$SCREENING_TERMINOLOGY``, which wins over the per-user default."""
    return Path(option).expanduser() if option else default_store_path()


def normalise(system: str, code: str) -> str:
    """The stored form of a code: ATC and ICD-10 upper case without dots, others trimmed."""
    code = code.strip()
    if system in ("ATC", "ICD10"):
        return code.replace(".", "").upper()
    return code


def ref(system: str, code: str) -> str:
    """``SNOMED:254837009``; a system stored under its URL is written FHIR-style, ``url|code``."""
    return f"{system}|{code}" if ":" in system else f"{system}:{code}"


def split_ref(text: str) -> tuple[str, str]:
    """The inverse of :func:`ref`."""
    if "|" in text and ":" in text.split("|", 1)[0]:
        system, _, code = text.partition("|")
    else:
        system, _, code = text.partition(":")
    return system, code


@dataclass(frozen=True)
class Member:
    """A value-set member: ``op`` is '' (the code itself, or for RXNORM/ATC what it stands for),
    '<<' (the concept and its descendants) or '<' (descendants only)."""

    op: str
    system: str
    code: str

    def __str__(self) -> str:
        return self.op + ref(self.system, self.code)


_URL_MEMBER = re.compile(r"^\s*(<<|<)?\s*([a-z][a-z0-9+.-]*:[^|\s]+)\|(.+?)\s*$")


def parse_member(text: str) -> Member:
    """``<<SNOMED:363346000`` -> Member('<<', 'SNOMED', '363346000'); ``VALUESET:http://...`` keeps the URL;
    a code of a CodeSystem stored under its URL is written FHIR-style, ``<<http://example.org/cs|code``."""
    url_match = _URL_MEMBER.match(text)
    if url_match and not text.lstrip("<").strip().upper().startswith("VALUESET:"):
        return Member(url_match.group(1) or "", url_match.group(2), url_match.group(3).strip())
    match = _MEMBER.match(text)
    if not match:
        raise BadMember(f"{text!r}: a member is written [<<|<]SYSTEM:CODE or VALUESET:url")
    op, system, code = match.group(1) or "", match.group(2).upper(), match.group(3).strip()
    if system == "VALUESET" and op:
        raise BadMember(f"{text!r}: {op} does not apply to a value set")
    if system not in ("VALUESET",):
        code = normalise(system, code)
    return Member(op, system, code)


@dataclass(frozen=True)
class SourceInfo:
    name: str
    kind: str
    version: str | None
    effective: str | None
    path: str | None
    loaded_at: str | None
    systems: tuple[str, ...]
    concepts: int
    relationships: int
    details: dict

    def describe(self) -> str:
        bits = [self.name]
        if self.version:
            bits.append(f"version {self.version}")
        if self.effective:
            bits.append(f"effective {self.effective}")
        return ", ".join(bits)

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "version": self.version, "effective": self.effective,
                "systems": list(self.systems), "concepts": self.concepts, "relationships": self.relationships,
                "loaded_at": self.loaded_at, "path": self.path, **({"details": self.details} if self.details else {})}


@dataclass(frozen=True)
class Concept:
    system: str
    code: str
    display: str | None
    active: bool | None          # None: referenced only (defined by a source that is not loaded)
    kind: str | None             # RxNorm term type (IN, SCD, ...), None elsewhere
    source: str | None
    parents: tuple[tuple[str, str | None], ...]     # (code, display)
    ancestors: tuple[tuple[str, str | None], ...]   # (code, display), every ancestor, sorted by display

    @property
    def ref(self) -> str:
        return f"{self.system}:{self.code}"


@dataclass
class ValueSetDef:
    url: str
    version: str | None
    name: str | None
    title: str | None
    rules: list[tuple[int, str, str | None, str | None]]   # (include, op, system, code)


@dataclass
class SourceData:
    """Everything one source contributes, as a loader read it (codes, not ids)."""

    name: str
    kind: str
    version: str | None = None
    effective: str | None = None
    path: str | None = None
    details: dict = field(default_factory=dict)
    concepts: list[tuple[str, str, str | None, int, str | None]] = field(default_factory=list)  # system, code, display, active, kind
    edges: list[tuple[str, str, str]] = field(default_factory=list)       # system, child, parent
    links: list[tuple[str, str, str, str]] = field(default_factory=list)  # from system, code, to system, code
    valuesets: list[ValueSetDef] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class LoadSummary:
    """What one ``load`` did, for the command's summary."""

    sources: list[tuple[SourceData, str | None]] = field(default_factory=list)  # (data, replaced version or None)
    closure_rows: dict[str, int] = field(default_factory=dict)
    cycles: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class TerminologyStore:
    """A store file opened for queries (and, through :meth:`write`, for loads).

    >>> store = TerminologyStore.open("terminology.sqlite")
    >>> store.is_descendant("SNOMED", "254837009", "363346000")
    True
    >>> sorted(store.expand("<<SNOMED:363346000"))[:2]
    ['SNOMED:109838007', 'SNOMED:254701007']
    """

    def __init__(self, connection: sqlite3.Connection, path: Path):
        self._db = connection
        self.path = path
        self._code_ids: dict[tuple[str, str], int | None] = {}

    # ---- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, create: bool = False) -> "TerminologyStore":
        """Open a store (default: :func:`default_store_path`). Without ``create`` a missing file
        is an error that says how to build one."""
        target = Path(path) if path is not None else default_store_path()
        if not target.exists():
            if not create:
                raise TerminologyError(
                    f"no terminology store at {target}: build one with `screening terminology load RELEASE... "
                    f"--store {target}` (or set {ENV_VAR})")
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(str(target), isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA foreign_keys = OFF")
            db.execute("PRAGMA mmap_size = 4294967296")   # reads through the OS page cache, no copies
            db.execute("PRAGMA cache_size = -65536")
            db.execute("PRAGMA busy_timeout = 60000")
            if create:
                db.execute("PRAGMA journal_mode = WAL")  # readers never block a load, nor a load readers
                db.executescript(SCHEMA)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise TerminologyError(f"{target}: not a terminology store ({exc})") from None
        if row is None or row[0] != SCHEMA_VERSION:
            raise TerminologyError(f"{target}: store schema {row[0] if row else '?'} is not {SCHEMA_VERSION}; "
                                   f"rebuild it with `screening terminology load`")
        store = cls(db, target)
        store._snapshot()
        return store

    def _snapshot(self) -> None:
        """Hold one read transaction while the store is open: every query sees the same snapshot
        (a load committed meanwhile is seen on the next open), and a query costs one B-tree probe
        instead of a lock round trip (about 5 us instead of 20 us)."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")

    def close(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._db.close()

    def __enter__(self) -> "TerminologyStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- sources and systems -------------------------------------------------------------

    def sources(self) -> list[SourceInfo]:
        rows = self._db.execute(
            "SELECT name, kind, version, effective, path, loaded_at, systems, concepts, relationships, details "
            "FROM sources ORDER BY name").fetchall()
        return [SourceInfo(r[0], r[1], r[2], r[3], r[4], r[5], tuple(json.loads(r[6] or "[]")), r[7] or 0, r[8] or 0,
                           json.loads(r[9] or "{}")) for r in rows]

    def systems(self) -> dict[str, int]:
        """System -> number of concepts defined by a loaded source."""
        rows = self._db.execute(
            "SELECT system, count(*) FROM concepts WHERE source IS NOT NULL GROUP BY system ORDER BY system")
        return dict(rows.fetchall())

    def has_system(self, system: str) -> bool:
        return self._db.execute("SELECT 1 FROM concepts WHERE system = ? AND source IS NOT NULL LIMIT 1",
                                (system,)).fetchone() is not None

    def counts(self) -> dict[str, int]:
        one = lambda sql: self._db.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "concepts": one("SELECT count(*) FROM concepts WHERE source IS NOT NULL"),
            "relationships": one("SELECT count(*) FROM edges"),
            "closure_rows": one("SELECT count(*) FROM closure"),
            "links": one("SELECT count(*) FROM links"),
            "valuesets": one("SELECT count(*) FROM valuesets"),
        }

    def closure_rows(self) -> dict[str, int]:
        """Closure rows (ancestor-descendant pairs, self pairs not counted) per system."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'closure_rows'").fetchone()
        return json.loads(row[0]) if row else {}

    def valuesets(self) -> list[tuple[str, str | None, str | None]]:
        """(url, version, title or name) of every loaded value set."""
        return self._db.execute("SELECT url, version, coalesce(title, name) FROM valuesets ORDER BY url").fetchall()

    # ---- concepts ------------------------------------------------------------------------

    def _id(self, system: str, code: str) -> int | None:
        key = (system, code)
        found = self._code_ids.get(key, False)
        if found is False:
            row = self._db.execute("SELECT id FROM concepts WHERE system = ? AND code = ?", key).fetchone()
            found = row[0] if row else None
            if len(self._code_ids) < 200_000:
                self._code_ids[key] = found
        return found

    def contains(self, system: str, code: str) -> bool:
        """Is the code defined by a loaded source (not just referenced)?"""
        return self._db.execute("SELECT 1 FROM concepts WHERE system = ? AND code = ? AND source IS NOT NULL",
                                (system, normalise(system, code))).fetchone() is not None

    def lookup(self, system: str, code: str) -> Concept | None:
        """Display, active flag, direct parents and all ancestors of a concept; None when unknown."""
        code = normalise(system, code)
        row = self._db.execute(
            "SELECT c.id, c.display, c.active, c.kind, s.name FROM concepts c LEFT JOIN sources s ON s.id = c.source "
            "WHERE c.system = ? AND c.code = ?", (system, code)).fetchone()
        if row is None:
            return None
        cid, display, active, kind, source = row
        parents = self._db.execute(
            "SELECT DISTINCT p.code, p.display FROM edges e JOIN concepts p ON p.id = e.parent "
            "WHERE e.system = ? AND e.child = ? ORDER BY p.display, p.code", (system, cid)).fetchall()
        ancestors = self._db.execute(
            f"{_UP} SELECT a.code, a.display FROM up JOIN concepts a ON a.id = up.id WHERE up.id != ? "
            "ORDER BY a.display, a.code", (cid, cid)).fetchall()
        return Concept(system, code, display, None if active is None else bool(active), kind, source,
                       tuple(parents), tuple(ancestors))

    def find(self, code: str) -> list[Concept]:
        """A bare code in every system that has it (``lookup 254837009`` without a system)."""
        rows = self._db.execute("SELECT system FROM concepts WHERE code = ? OR code = ? ORDER BY system",
                                (code.strip(), normalise("ATC", code))).fetchall()
        found = [self.lookup(system, code if system not in ("ATC", "ICD10") else normalise(system, code))
                 for (system,) in dict.fromkeys(rows)]
        return [c for c in found if c is not None]

    def displays(self, refs: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """``SYSTEM:CODE`` -> (display, term type) for the codes the store has, in a few queries."""
        by_system: dict[str, list[str]] = {}
        for item in refs:
            system, code = split_ref(item)
            by_system.setdefault(system, []).append(code)
        found: dict[str, tuple[str | None, str | None]] = {}
        for system, codes in by_system.items():
            for start in range(0, len(codes), 500):
                chunk = codes[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for code, display, kind in self._db.execute(
                        f"SELECT code, display, kind FROM concepts WHERE system = ? AND code IN ({marks})", (system, *chunk)):
                    found[ref(system, code)] = (display, kind)
        return found

    def is_descendant(self, system: str, code: str, ancestor: str, include_self: bool = False) -> bool:
        """Is ``code`` a (strict, unless include_self) descendant of ``ancestor`` in ``system``?
        One primary-key probe of the closure table."""
        d = self._id(system, code)
        if d is None:
            return False
        a = self._id(system, ancestor)
        if a is None:
            return False
        if d == a:
            return include_self
        return self._db.execute("SELECT 1 FROM closure WHERE ancestor = ? AND descendant = ?", (a, d)).fetchone() is not None

    def descendants(self, system: str, code: str, include_self: bool = True) -> frozenset[str]:
        """Codes of every descendant (and the concept itself unless include_self is false).
        Raises UnknownConcept when the store does not have the code."""
        code = normalise(system, code)
        cid = self._require(system, code)
        rows = self._db.execute(
            "SELECT c.code FROM closure x JOIN concepts c ON c.id = x.descendant WHERE x.ancestor = ?", (cid,))
        found = {r[0] for r in rows}
        if include_self:
            found.add(code)
        return frozenset(found)

    def ancestors(self, system: str, code: str) -> frozenset[str]:
        cid = self._require(system, normalise(system, code))
        rows = self._db.execute(f"{_UP} SELECT c.code FROM up JOIN concepts c ON c.id = up.id WHERE up.id != ?",
                                (cid, cid))
        return frozenset(r[0] for r in rows)

    def _require(self, system: str, code: str) -> int:
        row = self._db.execute("SELECT id FROM concepts WHERE system = ? AND code = ?", (system, code)).fetchone()
        if row is None:
            if not self.has_system(system):
                raise SystemNotLoaded(f"{system}:{code}: the terminology store ({self.path}) holds no {system} concepts")
            raise UnknownConcept(f"{system}:{code} is not in the terminology store ({self.path})")
        return row[0]

    # ---- expansion -----------------------------------------------------------------------

    def expand(self, member: str | Member) -> frozenset[str]:
        """The codes a value-set member stands for, as normalised ``SYSTEM:CODE`` strings.

        * ``SNOMED:x`` (and LOINC, ICD10, LOCAL, ...): the code itself, store or not.
        * ``<<SNOMED:x``: x and all its descendants; ``<SNOMED:x``: the descendants only.
        * ``RXNORM:x`` (= ``<<RXNORM:x``): x and every RxNorm concept that contains it or specialises it
          (an ingredient -> its precise ingredients, brands, components, clinical and branded drugs and
          dose forms, packs); ``<RXNORM:x`` without x itself.
        * ``ATC:x`` (= ``<<ATC:x``): the ATC class and its sub-classes, and for each of them the linked
          RxNorm ingredients and everything that contains them (as RXNORM codes).
        * ``VALUESET:url``: a loaded FHIR ValueSet (its expansion, or its compose resolved now).

        Raises UnknownConcept / SystemNotLoaded when an expanding member's code is not in the store.
        """
        if isinstance(member, str):
            member = parse_member(member)
        if member.system == "VALUESET":
            return self._expand_valueset(member.code, ())
        op = member.op
        if not op:
            if member.system not in EXPANDING_SYSTEMS:
                return frozenset({ref(member.system, member.code)})
            op = "<<"
        include_self = op == "<<"
        codes = self.descendants(member.system, member.code, include_self=include_self)
        result = {ref(member.system, c) for c in codes}
        if member.system != "RXNORM":
            result |= self._linked_rxnorm(self._require(member.system, member.code), include_self)
        return frozenset(result)

    def _linked_rxnorm(self, cid: int, include_self: bool) -> set[str]:
        """RXNORM concepts linked from a concept or its descendants (ATC -> ingredient), and every
        RxNorm concept that contains them."""
        linked = "SELECT l.to_id FROM closure x JOIN links l ON l.from_id = x.descendant WHERE x.ancestor = ?"
        params: tuple = (cid,)
        if include_self:
            linked += " UNION SELECT to_id FROM links WHERE from_id = ?"
            params += (cid,)
        rows = self._db.execute(
            f"WITH linked(id) AS ({linked}) "
            "SELECT c.code FROM linked JOIN concepts c ON c.id = linked.id UNION "
            "SELECT c.code FROM linked JOIN closure x ON x.ancestor = linked.id JOIN concepts c ON c.id = x.descendant",
            params)
        return {f"RXNORM:{r[0]}" for r in rows}

    def _expand_valueset(self, url: str, seen: tuple[str, ...]) -> frozenset[str]:
        url = url.split("|", 1)[0]
        if url in seen:
            raise TerminologyError(f"value set {url} includes itself (through {' -> '.join(seen)})")
        if self._db.execute("SELECT 1 FROM valuesets WHERE url = ?", (url,)).fetchone() is None:
            raise UnknownConcept(f"value set {url} is not in the terminology store ({self.path})")
        include: set[str] = set()
        exclude: set[str] = set()
        for inc, op, system, code in self._db.execute(
                "SELECT include, op, system, code FROM valueset_rules WHERE url = ? ORDER BY seq", (url,)).fetchall():
            target = include if inc else exclude
            if op == "=":
                target.add(ref(system, code))
            elif op in ("<<", "<"):
                target.update(ref(system, c) for c in self.descendants(system, code, include_self=(op == "<<")))
            elif op == "*":
                target.update(ref(system, r[0]) for r in self._db.execute(
                    "SELECT code FROM concepts WHERE system = ? AND source IS NOT NULL", (system,)))
            elif op == "valueset":
                target.update(self._expand_valueset(code, seen + (url,)))
        return frozenset(include - exclude)

    # ---- loading -------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator["StoreWriter"]:
        """One atomic load: everything written inside the block is committed together, or, if the
        block raises, rolled back (the store is left as it was)."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")   # end the read snapshot
        self._db.execute("PRAGMA cache_size = -262144")  # 256 MB page cache while loading
        self._db.execute("BEGIN IMMEDIATE")
        writer = StoreWriter(self._db)
        try:
            yield writer
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._code_ids.clear()
            self._snapshot()


class StoreWriter:
    """Writes sources into an open transaction (see :meth:`TerminologyStore.write`)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        self.touched: set[str] = set()

    def replace_source(self, data: SourceData) -> str | None:
        """Write a source, replacing an earlier load with the same name (any version). Returns the
        replaced version (or '' when it had none), None when the source is new."""
        db = self._db
        row = db.execute("SELECT id, version FROM sources WHERE name = ?", (data.name,)).fetchone()
        replaced = None
        if row is not None:
            sid, replaced = row[0], row[1] or ""
            self.touched.update(r[0] for r in db.execute("SELECT DISTINCT system FROM edges WHERE source = ?", (sid,)))
            db.execute("DELETE FROM edges WHERE source = ?", (sid,))
            db.execute("DELETE FROM links WHERE source = ?", (sid,))
            db.execute("DELETE FROM valueset_rules WHERE source = ?", (sid,))
            db.execute("DELETE FROM valuesets WHERE source = ?", (sid,))
            db.execute("UPDATE concepts SET source = NULL WHERE source = ?", (sid,))
        systems = sorted({c[0] for c in data.concepts} | {e[0] for e in data.edges}
                         | {r[2] for v in data.valuesets for r in v.rules if r[2] and r[1] != "valueset"})
        values = (data.kind, data.version, data.effective, data.path,
                  datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), json.dumps(systems),
                  len(data.concepts), len(data.edges), json.dumps(data.details, sort_keys=True))
        if row is None:
            sid = db.execute("INSERT INTO sources (name, kind, version, effective, path, loaded_at, systems, concepts, "
                             "relationships, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (data.name, *values)).lastrowid
        else:
            db.execute("UPDATE sources SET kind = ?, version = ?, effective = ?, path = ?, loaded_at = ?, systems = ?, "
                       "concepts = ?, relationships = ?, details = ? WHERE id = ?", (*values, sid))

        db.executemany(
            "INSERT INTO concepts (system, code, display, active, kind, source) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (system, code) DO UPDATE SET display = excluded.display, active = excluded.active, "
            "kind = excluded.kind, source = excluded.source",
            ((s, c, d, a, k, sid) for s, c, d, a, k in data.concepts))
        referenced = {(s, c) for s, c, _ in data.edges} | {(s, p) for s, _, p in data.edges}
        referenced |= {(a, b) for a, b, _, _ in data.links} | {(c, d) for _, _, c, d in data.links}
        db.executemany("INSERT OR IGNORE INTO concepts (system, code) VALUES (?, ?)", sorted(referenced))
        ids = self._ids({s for s, _ in referenced})
        db.executemany("INSERT INTO edges (source, system, child, parent) VALUES (?, ?, ?, ?)",
                       ((sid, s, ids[s, c], ids[s, p]) for s, c, p in data.edges))
        db.executemany("INSERT INTO links (source, from_id, to_id) VALUES (?, ?, ?)",
                       ((sid, ids[a, b], ids[c, d]) for a, b, c, d in data.links))
        for vs in data.valuesets:
            db.execute("DELETE FROM valueset_rules WHERE url = ?", (vs.url,))
            db.execute("INSERT OR REPLACE INTO valuesets VALUES (?, ?, ?, ?, ?)",
                       (vs.url, vs.version, vs.name, vs.title, sid))
            db.executemany("INSERT INTO valueset_rules VALUES (?, ?, ?, ?, ?, ?, ?)",
                           ((sid, vs.url, i, inc, op, system, code) for i, (inc, op, system, code) in enumerate(vs.rules)))
        self.touched.update(e[0] for e in data.edges)
        return replaced

    def _ids(self, systems: set[str]) -> dict[tuple[str, str], int]:
        ids: dict[tuple[str, str], int] = {}
        for system in systems:
            for code, cid in self._db.execute("SELECT code, id FROM concepts WHERE system = ?", (system,)):
                ids[system, code] = cid
        return ids

    def finish(self, progress: Progress = SILENT) -> tuple[dict[str, int], dict[str, int]]:
        """Drop concepts nobody defines or references, and rebuild the closure of every system whose
        edges changed. Returns (closure rows per system, cycle count per system)."""
        db = self._db
        db.execute("DELETE FROM concepts WHERE source IS NULL AND NOT EXISTS (SELECT 1 FROM edges WHERE child = concepts.id) "
                   "AND NOT EXISTS (SELECT 1 FROM edges WHERE parent = concepts.id) "
                   "AND NOT EXISTS (SELECT 1 FROM links WHERE from_id = concepts.id OR to_id = concepts.id)")
        rows: dict[str, int] = {}
        cycles: dict[str, int] = {}
        if not self.touched:
            return rows, cycles
        for system in sorted(self.touched):
            db.execute("DELETE FROM closure WHERE ancestor IN (SELECT id FROM concepts WHERE system = ?)", (system,))
        db.execute("CREATE TEMP TABLE IF NOT EXISTS closure_stage (ancestor INTEGER, descendant INTEGER)")
        for system in sorted(self.touched):
            progress.start(f"closure {system}", None)
            closure = compute_closure(db.execute("SELECT child, parent FROM edges WHERE system = ?", (system,)))
            progress.done()
            total = closure.rows
            progress.start(f"writing closure {system}", total)
            batch: list[tuple[int, int]] = []
            for node, ancestors in closure.ancestors.items():
                batch.extend((a, node) for a in ancestors)
                if len(batch) >= 100_000:
                    db.executemany("INSERT INTO closure_stage VALUES (?, ?)", batch)
                    progress.advance(len(batch))
                    batch.clear()
            db.executemany("INSERT INTO closure_stage VALUES (?, ?)", batch)
            progress.advance(len(batch))
            if closure.cycles:
                cycles[system] = len(closure.cycles)
            del closure
            # one sort, then appends in key order into the WITHOUT ROWID table
            db.execute("INSERT INTO closure SELECT ancestor, descendant FROM closure_stage ORDER BY ancestor, descendant")
            db.execute("DELETE FROM closure_stage")
            progress.done()
            rows[system] = total
        stored = json.loads((db.execute("SELECT value FROM meta WHERE key = 'closure_rows'").fetchone() or ["{}"])[0])
        stored.update(rows)
        stored = {k: v for k, v in stored.items() if v}
        db.execute("INSERT OR REPLACE INTO meta VALUES ('closure_rows', ?)", (json.dumps(stored, sort_keys=True),))
        return rows, cycles

