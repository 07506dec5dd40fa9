"""FHIR bulk NDJSON (one resource per line, as the Bulk Data ``$export`` writes it) into the population store.

A bulk export is a folder of ``<Type>.ndjson`` files (``Patient.ndjson``, ``Observation.ndjson``,
``Condition.ndjson`` ...), or a single NDJSON file of mixed resources. DuckDB reads every line, parses
it once, links each resource to its patient by ``subject`` (or ``patient``) ``.reference``, and maps
the resources into the tables of :mod:`screening.population.schema` in SQL, with the meaning the
per-patient FHIR reader (:mod:`screening.patient.fhir`) gives them: statuses, verification status,
value[x], units and comparators, reference ranges, codings by system URL, partial dates, dosage.

SQL maps a resource only where it can *prove* it maps it exactly as the Python reader would. A
patient with any resource outside that proven subset (an unusual value[x], an extension the reader
interprets, contained resources, a medicationReference, a code that cannot be read, a "no known ..."
entry, a List or AdverseEvent, an invalid date or number ...) is read, whole, by the per-patient
reader: their resources are put into one Bundle, converted by :func:`screening.patient.fhir.fhir_to_patient`
and added through :class:`screening.population.loader.TableBuilder`. That reader either accepts
them or refuses the patient with its own message, at the ``file:line`` of the culprit resource, so
a patient is accepted, refused and mapped exactly as ``check`` would on the same resources as one
bundle. ``tests/test_population_fhir_ingest.py`` holds the two paths together.

Resources whose patient cannot be told (no subject reference) or is not among the input's Patient
resources are reported at their ``file:line`` and skipped. Lines that are not JSON are reported
and skipped. Resource types the reader does not use (Encounter, Claim ...) are counted and dropped.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa

from ..errors import DataError, DataProblem
from ..patient.fhir import (COMPARATORS, GENDERS, IPS_ABSENT, NONE_KNOWN, NOT_A_RECORD, REJECTED_VERIFICATION,
                            SYSTEMS, UCUM)
from ..patient.load import parse_json
from ..patient.model import MAX_POSITIVE_INT
from .ingest import CHUNK_BYTES, _line_table, read_line_chunks
from .loader import TableBuilder
from .schema import TABLES, duckdb_ddl

READ_TYPES = ("Observation", "Condition", "MedicationRequest", "MedicationStatement", "Procedure",
              "AllergyIntolerance", "Immunization")
"""Resource types SQL maps itself (for the patients whose resources it proves it can read)."""

PYTHON_TYPES = ("List", "AdverseEvent")
"""Resource types the reader uses that SQL does not map: their patients go through the Python reader."""

CONTEXT_TYPES = ("MedicationAdministration",)
"""Resource types the reader does not map but may resolve a reference to (an AdverseEvent's suspect):
kept, with their patient, for the bundles the Python reader reads; Medication and Substance by id."""

_LINKED = READ_TYPES + PYTHON_TYPES + CONTEXT_TYPES
_KEPT = ("Patient", "Medication", "Substance") + _LINKED

_KIND = {"Condition": "conditions", "MedicationRequest": "medications", "MedicationStatement": "medications",
         "Procedure": "procedures", "AllergyIntolerance": "allergies", "Immunization": "immunizations"}

_WS = r"[\t-\r\x{1c}-\x{20}\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
"""The characters Python's ``str.strip()`` removes (``str.isspace``), as an RE2 class."""

_FHIR_DATE = (r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
              r"(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?")
"""screening.patient.fhir._DATE_TIME in RE2 syntax."""

_PATIENT_ID = r"[A-Za-z0-9\-\.]{1,64}"
"""A FHIR id: the Patient ids SQL keys by as written (others go through the Python reader)."""


MEMBERS = ("resourceType", "id", "subject", "patient", "status", "verificationStatus", "clinicalStatus", "code",
           "vaccineCode", "medicationCodeableConcept", "extension", "stage", "severity", "bodySite", "component",
           "effectiveDateTime", "effectivePeriod", "issued", "valueQuantity", "valueCodeableConcept", "valueString",
           "valueBoolean", "valueInteger", "referenceRange", "onsetDateTime", "onsetPeriod", "abatementDateTime",
           "abatementPeriod", "recordedDate", "authoredOn", "dispenseRequest", "dosageInstruction", "dosage",
           "reasonCode", "reasonReference", "performedDateTime", "performedPeriod", "occurrenceDateTime", "criticality",
           "category", "birthDate", "gender", "deceasedDateTime", "deceasedBoolean")
"""The top-level members SQL reads: each line is parsed once into a struct of these (as JSON; a JSON null
becomes SQL NULL, so presence is read from the line's keys)."""

_MEMBERS = "{" + ",".join(f'"{name}":"JSON"' for name in MEMBERS) + "}"


_NESTED_KEYS = ("system", "code", "display", "text", "coding", "value", "unit", "comparator", "low", "high", "start",
                "end", "reference", "frequency", "period", "periodUnit", "doseQuantity", "doseAndRate", "timing",
                "repeat", "asNeededBoolean", "asNeededCodeableConcept", "url", "valueBoolean", "validityPeriod",
                "referenceRange", "valueQuantity", "valueCodeableConcept", "valueString", "valueInteger", "id",
                "resourceType")
_FLAT_DUPLICATE = "|".join(f'[{{,]\\s*"{key}"\\s*:[^{{}}]*,\\s*"{key}"\\s*:' for key in _NESTED_KEYS)
"""A key given twice in one object with no object between (in DuckDB's minified JSON text)."""


def _member(path: str, _fdate_fine: bool = False) -> str:
    """SQL for a member path of the parsed struct ``d``: ``effectivePeriod.start`` -> its start."""
    head, _, rest = path.partition(".")
    sql = f"json_extract(d.{head}, '$.{rest}')" if rest else f"d.{head}"
    return f"_fdate_fine({sql})" if _fdate_fine else sql


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pairs(pairs) -> str:
    return "[" + ", ".join(_sql_str(f"{system}|{code}") for system, code in pairs) + "]"


_SYSTEM_CASE = "CASE s " + " ".join(f"WHEN {_sql_str(url)} THEN {_sql_str(name)}" for url, name in SYSTEMS.items()) + " END"

_MACROS = rf"""
CREATE OR REPLACE TEMP MACRO _fjt(x) AS coalesce(json_type(x), 'MISSING');
CREATE OR REPLACE TEMP MACRO _fstr(x) AS CASE WHEN json_type(x) = 'VARCHAR' THEN json_extract_string(x, '$') END;
CREATE OR REPLACE TEMP MACRO _ftext(x) AS nullif(regexp_replace(_fstr(x), '^{_WS}+|{_WS}+$', '', 'g'), '');
CREATE OR REPLACE TEMP MACRO _fclean(x) AS nullif(regexp_replace(regexp_replace(_fstr(x), '[\x{{200b}}-\x{{200d}}\x{{feff}}]', '', 'g'),
    '^{_WS}+|{_WS}+$', '', 'g'), '');
CREATE OR REPLACE TEMP MACRO _farr(x) AS coalesce(CASE WHEN json_type(x) = 'ARRAY' THEN from_json(x, '["JSON"]') END, []::JSON[]);
CREATE OR REPLACE TEMP MACRO _fsys(s) AS {_SYSTEM_CASE};
CREATE OR REPLACE TEMP MACRO _fdate_ok(t) AS regexp_full_match(t, '{_FHIR_DATE}') AND substr(t, 1, 4) <> '0000'
    AND (length(t) = 4 OR (substr(t, 6, 2) BETWEEN '01' AND '12'
         AND (length(t) = 7 OR try_cast(substr(t, 1, 10) AS DATE) IS NOT NULL)));
-- a date element the reader accepts: absent, null, or a valid FHIR date (anything else: the Python reader)
CREATE OR REPLACE TEMP MACRO _fdate_fine(x) AS _fjt(x) IN ('MISSING', 'NULL') OR (_fjt(x) = 'VARCHAR' AND _fdate_ok(_fstr(x)));
CREATE OR REPLACE TEMP MACRO _fdate(x) AS CASE WHEN _fjt(x) = 'VARCHAR' AND _fdate_ok(_fstr(x)) THEN substr(_fstr(x), 1, 10) END;
CREATE OR REPLACE TEMP MACRO _fdlo(t) AS CASE WHEN length(t) = 4 THEN make_date(substr(t, 1, 4)::INT, 1, 1)
    WHEN length(t) = 7 THEN make_date(substr(t, 1, 4)::INT, substr(t, 6, 2)::INT, 1) ELSE substr(t, 1, 10)::DATE END;
CREATE OR REPLACE TEMP MACRO _fdhi(t) AS CASE WHEN length(t) = 4 THEN make_date(substr(t, 1, 4)::INT, 12, 31)
    WHEN length(t) = 7 THEN last_day(make_date(substr(t, 1, 4)::INT, substr(t, 6, 2)::INT, 1)) ELSE substr(t, 1, 10)::DATE END;
CREATE OR REPLACE TEMP MACRO _fnum_ok(x) AS _fjt(x) IN ('UBIGINT', 'BIGINT', 'DOUBLE') AND isfinite(try_cast(x AS DOUBLE));
CREATE OR REPLACE TEMP MACRO _fnum(x) AS CASE WHEN _fnum_ok(x) THEN x::DOUBLE END;
CREATE OR REPLACE TEMP MACRO _fint(x) AS CASE WHEN _fjt(x) IN ('UBIGINT', 'BIGINT') THEN TRUE
    WHEN _fjt(x) = 'DOUBLE' THEN NOT regexp_matches(x::VARCHAR, '[.eE]') END;
-- a CodeableConcept: its codings (objects or not), its codes from known systems (first occurrence kept)
CREATE OR REPLACE TEMP MACRO _fcodings(c) AS _farr(json_extract(c, 'coding'));
CREATE OR REPLACE TEMP MACRO _fcodes_all(c) AS list_filter(list_transform(_fcodings(c),
    lambda x: _fsys(_fstr(json_extract(x, 'system'))) || ':' || _ftext(json_extract(x, 'code'))), lambda x: x IS NOT NULL);
-- first occurrences in order (call it on a column: the lambda reads `l` once per item)
CREATE OR REPLACE TEMP MACRO _fdedupe(l) AS list_filter(l, lambda x, i: list_position(l, x) = i);
CREATE OR REPLACE TEMP MACRO _fcodes(c) AS list_filter(_fcodes_all(c), lambda x, i: list_position(_fcodes_all(c), x) = i);
CREATE OR REPLACE TEMP MACRO _floinc_first(l) AS list_concat(list_filter(l, lambda x: starts_with(x, 'LOINC:')),
    list_filter(l, lambda x: NOT starts_with(x, 'LOINC:')));
CREATE OR REPLACE TEMP MACRO _fdisplay(c) AS coalesce(_fclean(json_extract(c, 'text')),
    list_filter(list_transform(_fcodings(c), lambda x: _fclean(json_extract(x, 'display'))), lambda x: x IS NOT NULL)[1]);
CREATE OR REPLACE TEMP MACRO _fstatus(c) AS list_filter(list_transform(_fcodings(c), lambda x: _ftext(json_extract(x, 'code'))),
    lambda x: x IS NOT NULL)[1];
-- codings Python could not even look up (a system that is a list or an object)
CREATE OR REPLACE TEMP MACRO _fodd_system(c) AS len(list_filter(_fcodings(c),
    lambda x: _fjt(json_extract(x, 'system')) IN ('ARRAY', 'OBJECT'))) > 0;
-- a coding that makes a resource a statement about its list ("no known allergies"), not a record
CREATE OR REPLACE TEMP MACRO _fstatement(c) AS len(list_filter(_fcodings(c),
    lambda x: list_contains({_pairs(list(NONE_KNOWN) + list(NOT_A_RECORD))}, _fstr(json_extract(x, 'system')) || '|' || _ftext(json_extract(x, 'code'))))) > 0;
-- Python's _unit: the UCUM code, else the unit, else (no system, no unit) the code
CREATE OR REPLACE TEMP MACRO _funit(q) AS CASE
    WHEN _fstr(json_extract(q, 'system')) = '{UCUM}' AND _ftext(json_extract(q, 'code')) IS NOT NULL THEN _ftext(json_extract(q, 'code'))
    WHEN _fjt(json_extract(q, 'system')) IN ('MISSING', 'NULL') AND _ftext(json_extract(q, 'unit')) IS NULL THEN _ftext(json_extract(q, 'code'))
    ELSE _ftext(json_extract(q, 'unit')) END;
CREATE OR REPLACE TEMP MACRO _fvalued(q) AS _fjt(json_extract(q, 'value')) NOT IN ('MISSING', 'NULL');
"""


@dataclass
class FhirIngestSummary:
    """What one ingestion did (the fields ``batch`` records, as :class:`.ingest.IngestSummary`)."""

    records: int = 0  # resource lines read (blank lines excluded)
    patients: int = 0
    bad: int = 0  # lines (or patients) reported in errors
    python_path: int = 0  # patients read by the per-patient FHIR reader
    bytes_read: int = 0
    lines: int = 0
    dropped: dict = field(default_factory=dict)  # resource type -> count (types the reader does not use)


def bulk_files(path: Path) -> list[Path]:
    """The NDJSON files of a bulk export folder (``*.ndjson``, sorted by name), or the one file given."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".ndjson", ".jsonl")),
                  key=lambda p: p.name)


def looks_like_bulk(path: Path) -> bool:
    """True for a FHIR bulk NDJSON input: a folder holding ``*.ndjson`` files, or an NDJSON file whose first
    non-blank line is a FHIR resource other than a Bundle (one bundle per line is patient NDJSON's business)."""
    path = Path(path)
    if path.is_dir():
        return bool(bulk_files(path))
    try:
        with path.open("rb") as stream:
            for raw in stream:
                if raw.strip():
                    break
            else:
                return False
    except OSError:
        return False
    match = re.match(rb'\s*(\xef\xbb\xbf)?\s*\{.*?"resourceType"\s*:\s*"([A-Za-z]+)"', raw[:1 << 20])
    if match is None:
        try:
            document = json.loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            return False
        kind = document.get("resourceType") if isinstance(document, dict) else None
    else:
        kind = match.group(2).decode()
    return isinstance(kind, str) and kind != "Bundle"


class FhirBulkIngester:
    """Reads FHIR bulk NDJSON files into the store tables of a DuckDB connection.

    ``on_error(entry)`` receives one dict per refused line or patient, as ``batch`` writes to errors.jsonl:
    ``{"input": "Observation.ndjson:5", "line": 5, "error": ..., "problems": [...]}``.
    """

    def __init__(self, con, *, on_error: Callable[[dict], None], prefix: str = "", create: bool = True,
                 chunk_bytes: int = CHUNK_BYTES):
        self.con, self.on_error, self.prefix, self.chunk_bytes = con, on_error, prefix, chunk_bytes
        self.summary = FhirIngestSummary()
        self.files: list[str] = []
        self.unreadable_refs: list = []  # (f, line, reference) of lines not read that name a patient
        if create:
            for statement in duckdb_ddl(prefix):
                con.execute(statement)
        con.execute(_MACROS)

    # ------------------------------------------------------------------ reporting
    def _where(self, f: int, line: int) -> str:
        return f"{self.files[f]}:{line}"

    def _refuse(self, f: int, line: int, problems: list[DataProblem]) -> None:
        self.summary.bad += 1
        self.on_error({"input": self._where(f, line), "line": line,
                       "error": "; ".join(f"{p.path}: {p.message}" for p in problems),
                       "problems": [{"path": p.path, "message": p.message, "code": p.code} for p in problems]})

    # ------------------------------------------------------------------ reading
    def ingest(self, paths: list[Path], progress: Callable[[FhirIngestSummary], None] | None = None) -> FhirIngestSummary:
        """Read every file, then map the resources; returns the summary."""
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE _fl (f INTEGER, line BIGINT, text VARCHAR)")
        done = 0
        for f, path in enumerate(paths):
            self.files.append(path.name if len(paths) > 1 or path.parent.name else str(path))
            for chunk in read_line_chunks(path, chunk_bytes=self.chunk_bytes):
                for line, problems in chunk.refused:
                    self._refuse(f, line, problems)
                    self._unreadable(f, line, chunk.refused_heads.get(line, ""))
                con.register("_chunk_lines", _line_table(chunk))
                try:
                    con.execute("INSERT INTO _fl SELECT ?, line, text FROM _chunk_lines", [f])
                finally:
                    con.unregister("_chunk_lines")
                self.summary.bytes_read = done + chunk.end_offset
                self.summary.lines += chunk.end_line - chunk.first_line + 1
                if progress is not None:
                    progress(self.summary)
            done += path.stat().st_size
        con.execute("DELETE FROM _fl WHERE regexp_full_match(text, '[ \\t\\r\\x0b\\x0c]*')")
        self.summary.records = con.execute("SELECT count(*) FROM _fl").fetchall()[0][0]  # resources, until _link
        self._parse()
        self._link()
        python = self._prove()
        self._store_sql()
        self._store_python(python)
        self.summary.patients = con.execute(f"SELECT count(*) FROM {self.prefix}patients").fetchall()[0][0]
        if progress is not None:
            progress(self.summary)
        return self.summary

    def _parse(self) -> None:
        """Every line of a type that is read parsed once into a struct of the members read (``d``) and its keys
        (``k``); the other types are only counted (their type read from the line's start when it is there).
        A line DuckDB cannot parse, or that may hold what Python's JSON reader refuses (NaN, Infinity, an
        overflowing number, a duplicate key), is read by that reader alone: refused with its message, or used."""
        con = self.con
        relevant = ", ".join(map(_sql_str, ("Patient", "Medication") + READ_TYPES + PYTHON_TYPES))
        kept = ", ".join(map(_sql_str, _KEPT))
        # a JSON number follows ':', ',' or '['; integers of 20 digits or more (beyond 64 bits) keep their
        # spelling only in Python (`big`: the patient goes to the Python reader)
        objects = " OR ".join(f"NOT coalesce(list_unique(json_keys(d.{name})) = len(json_keys(d.{name})), TRUE)"
                              for name in MEMBERS if name not in ("resourceType", "id"))
        con.execute(rf"""
CREATE OR REPLACE TEMP TABLE _fr AS
SELECT f, line, d, k, rt, doubt OR (rt IN ({relevant}) AND (list_unique(k) <> len(k) OR {objects}
                                   OR regexp_matches(t, '{_FLAT_DUPLICATE}'))) AS doubt, big
FROM (SELECT f, line, t, d, rt, CASE WHEN d IS NOT NULL THEN json_keys(t) END AS k,
             d IS NULL OR (rt IN ({relevant}) AND regexp_matches(t, '[:,\[]\s*-?(NaN|Infinity|[0-9.]+[eE]\+?[0-9]{{3}})')) AS doubt,
             rt IN ({relevant}) AND regexp_matches(t, '[:,\[]\s*-?[0-9]{{20,}}[.eE,}}\]\s]') AS big
      FROM (SELECT f, line, t, rt, CASE WHEN rt IN ({kept}) THEN try(from_json(t, '{_MEMBERS}')) END AS d
            FROM (SELECT f, line, t, coalesce(nullif(regexp_extract(t, '^\s*\{{\s*"resourceType"\s*:\s*"([A-Za-z]+)"[,}}]', 1), ''),
                                                 CASE WHEN json_valid(t) THEN _fstr(json_extract(t, 'resourceType')) END) AS rt
                  FROM (SELECT f, line, CASE WHEN text[1] = chr(65279) THEN text[2:] ELSE text END AS t FROM _fl))
            WHERE rt IS NULL OR rt IN ({kept})))""")
        refused, accepted = [], []
        for f, line, text in con.execute("SELECT r.f, r.line, l.text FROM _fr r JOIN _fl l USING (f, line) "
                                         "WHERE doubt ORDER BY r.f, r.line").fetchall():
            try:
                document = parse_json(text.removeprefix("\ufeff").rstrip("\r\n"), self._where(f, line), one_line=True)
            except DataError as exc:
                self._refuse(f, line, exc.problems)
                refused.append((f, line))
                self._unreadable(f, line, text)
                continue
            accepted.append((f, line, json.dumps(document, ensure_ascii=False)))
        if refused or accepted:
            con.register("_doubts", pa.table({
                "f": pa.array([r[0] for r in refused + accepted], pa.int32()),
                "line": pa.array([r[1] for r in refused + accepted], pa.int64()),
                "text": pa.array([None] * len(refused) + [a[2] for a in accepted], pa.string())}))
            con.execute("CREATE OR REPLACE TEMP TABLE _dt AS SELECT * FROM _doubts")
            con.unregister("_doubts")
            con.execute("DELETE FROM _fr WHERE (f, line) IN (SELECT f, line FROM _dt WHERE text IS NULL)")
            con.execute(f"UPDATE _fr SET doubt = FALSE, big = TRUE, "
                        f"d = CASE WHEN json_type(_dt.text) = 'OBJECT' THEN from_json(_dt.text, '{_MEMBERS}') END, "
                        f"k = coalesce(json_keys(_dt.text), []), rt = _fstr(json_extract(_dt.text, 'resourceType')) "
                        "FROM _dt WHERE _fr.f = _dt.f AND _fr.line = _dt.line AND _dt.text IS NOT NULL")
        con.execute("""
CREATE OR REPLACE TEMP VIEW _res AS
SELECT f, line, d, k, big, rt, CASE WHEN d IS NULL THEN 'not an object' END AS jt,
       json_extract(CASE WHEN list_contains(k, 'subject') THEN d.subject ELSE d.patient END, 'reference') AS ref
FROM _fr""")
        for f, line, rt in con.execute("SELECT f, line, rt FROM _fr WHERE rt IS NULL OR d IS NULL ORDER BY f, line").fetchall():
            what = "no resourceType" if rt is None else "not a JSON object"
            self._refuse(f, line, [DataProblem("$.resourceType" if rt is None else "$",
                                               f"not a FHIR resource ({what}); skipped", "fhir")])
        con.execute("DELETE FROM _fr WHERE rt IS NULL OR d IS NULL")
        # the types the reader does not use: counted, never parsed
        for rt, n in con.execute(rf"""
SELECT rt, count(*) FROM (
  SELECT coalesce(nullif(regexp_extract(t, '^\s*\{{\s*"resourceType"\s*:\s*"([A-Za-z]+)"[,}}]', 1), ''),
                  CASE WHEN json_valid(t) THEN _fstr(json_extract(t, 'resourceType')) END) AS rt
  FROM (SELECT CASE WHEN text[1] = chr(65279) THEN text[2:] ELSE text END AS t FROM _fl))
WHERE rt NOT IN ({kept}) GROUP BY rt ORDER BY rt""").fetchall():
            self.summary.dropped[rt] = n

    def _link(self) -> None:
        """Patients by id (the first line of an id wins); every resource read linked to its patient."""
        con = self.con
        con.execute("""
CREATE OR REPLACE TEMP TABLE _pat AS
SELECT f, line, d, k, big, pid, row_number() OVER (PARTITION BY pid ORDER BY f, line) AS nth,
       first_value(f) OVER (PARTITION BY pid ORDER BY f, line) AS f0,
       first_value(line) OVER (PARTITION BY pid ORDER BY f, line) AS line0
FROM (SELECT f, line, d, k, big, _fstr(d.id) AS pid FROM _res WHERE rt = 'Patient')""")
        for f, line in con.execute("SELECT f, line FROM _pat WHERE pid IS NULL OR trim(pid) = '' "
                                   "ORDER BY f, line").fetchall():
            self._refuse(f, line, [DataProblem("$.id", "a Patient in bulk NDJSON needs an id (its resources name "
                                                       "it by Patient/<id>); not screened", "fhir")])
        for f, line, pid, f0, line0 in con.execute("SELECT f, line, pid, f0, line0 FROM _pat WHERE nth > 1 AND "
                                                   "trim(pid) <> '' ORDER BY f, line").fetchall():
            self._refuse(f, line, [DataProblem("$.id", f"duplicate patient id {pid!r}: already given by "
                                                       f"{self._where(f0, line0)}; this line is not screened",
                                               "duplicate-id")])
        con.execute("DELETE FROM _pat WHERE nth > 1 OR pid IS NULL OR trim(pid) = ''")
        types = ", ".join(map(_sql_str, _LINKED))
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _link AS
SELECT f, line, big, rt, ref, CASE
    WHEN starts_with(r, 'urn:uuid:') THEN substr(r, 10)
    ELSE nullif(regexp_extract(r, '(^|/)Patient/([^/]+)$', 2), '') END AS pid
FROM (SELECT *, split_part(_fstr(ref), '/_history/', 1) AS r FROM _res WHERE rt IN ({types}))""")
        rows = con.execute("""
SELECT l.f, l.line, l.rt, _fstr(l.ref), l.pid FROM _link l
WHERE (l.pid IS NULL OR l.pid NOT IN (SELECT pid FROM _pat)) AND l.rt NOT IN (""" + ", ".join(map(_sql_str, CONTEXT_TYPES)) + """)
ORDER BY l.f, l.line""").fetchall()
        for f, line, rt, ref, pid in rows:
            if pid is None:
                message = (f"the {rt} names no patient (subject.reference)" if ref is None else
                           f"the {rt} refers to {ref!r}, not a Patient") + "; skipped"
            else:
                message = f"the {rt} refers to Patient/{pid}, which is not among the input's Patient resources; skipped"
            self._refuse(f, line, [DataProblem("$.subject", message, "fhir-patient")])
        con.execute("DELETE FROM _link WHERE pid IS NULL OR pid NOT IN (SELECT pid FROM _pat)")
        for f, line, reference in self.unreadable_refs:
            head = reference.partition("/_history/")[0]
            found = re.search(r"(?:^|/)Patient/([^/]+)$", head)
            pid = head[9:] if head.startswith("urn:uuid:") else (found.group(1) if found else None)
            row = con.execute("SELECT f, line FROM _pat WHERE pid = ?", [pid]).fetchall() if pid else []
            if row:
                self._refuse(row[0][0], row[0][1], [DataProblem("$", f"patient {pid!r} is not screened: its resource "
                                                                     f"at {self._where(f, line)} could not be read",
                                                                "fhir")])
                con.execute("DELETE FROM _pat WHERE pid = ?", [pid])
                con.execute("DELETE FROM _link WHERE pid = ?", [pid])

    def _unreadable(self, f: int, line: int, text: str) -> None:
        """A resource line that could not be read: the patient it names (if its text tells) is not screened
        without it."""
        found = re.search(r'"(?:subject|patient)"\s*:\s*\{[^{}]*"reference"\s*:\s*"([^"]*)"', text)
        if found:
            self.unreadable_refs.append((f, line, found.group(1)))

    # ------------------------------------------------------------------ SQL: what it can prove
    def _prove(self) -> list[str]:
        """Map every resource SQL can map (``_obs``, ``_rec``), mark the ones it cannot, and return the patients
        to read with the Python reader."""
        con = self.con
        bad_dates = {
            "Observation": ["effectiveDateTime", "effectivePeriod.start", "issued"],
            "Condition": ["onsetDateTime", "onsetPeriod.start", "abatementDateTime", "abatementPeriod.end", "recordedDate"],
            "MedicationRequest": ["authoredOn", "dispenseRequest.validityPeriod.end"],
            "MedicationStatement": ["effectivePeriod.start", "effectivePeriod.end", "effectiveDateTime"],
            "Procedure": ["performedDateTime", "performedPeriod.start", "performedPeriod.end"],
            "AllergyIntolerance": ["onsetDateTime", "onsetPeriod.start"],
            "Immunization": ["occurrenceDateTime"],
        }
        # a resource whose date elements are not all valid (the reader may raise, or not, depending on which it reads)
        date_checks = " ".join(
            f"WHEN '{rt}' THEN " + " AND ".join(_member(p, _fdate_fine=True) for p in paths)
            for rt, paths in bad_dates.items())
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _lr AS
SELECT f, line, big, rt, pid, status, verif, dates_ok,
       list_contains(k, 'contained') OR _fjt(d.status) NOT IN ('MISSING', 'NULL', 'VARCHAR') OR _fodd_system(concept)
         OR (rt NOT IN ('Observation', 'MedicationAdministration') AND (_fstatement(concept)
             -- the reader looks for "no known" codes in the first of these present: exactly the type's own
             OR len(list_filter(k, lambda x: x IN ('code', 'vaccineCode', 'medicationCodeableConcept'))) > 1
             OR (NOT list_contains(k, concept_key) AND len(list_filter(k, lambda x: x IN ('code', 'vaccineCode',
                                                                      'medicationCodeableConcept'))) > 0)))
         OR (rt IN ('MedicationRequest', 'MedicationStatement')
             AND len(list_filter(_farr(d.reasonCode), lambda r: _fodd_system(r))) > 0) AS odd
FROM (SELECT *, _fstr(d.status) AS status,
             CASE WHEN rt IN ('Condition', 'AllergyIntolerance') THEN _fstatus(d.verificationStatus) END AS verif,
             CASE rt {date_checks} ELSE TRUE END AS dates_ok,
             CASE rt WHEN 'Immunization' THEN 'vaccineCode' WHEN 'MedicationRequest' THEN 'medicationCodeableConcept'
                     WHEN 'MedicationStatement' THEN 'medicationCodeableConcept' ELSE 'code' END AS concept_key,
             CASE rt WHEN 'Immunization' THEN d.vaccineCode WHEN 'MedicationRequest' THEN d.medicationCodeableConcept
                     WHEN 'MedicationStatement' THEN d.medicationCodeableConcept ELSE d.code END AS concept
      FROM _link JOIN _fr USING (f, line, rt, big))""")
        # the records the reader drops before reading them (entered-in-error, refuted, cancelled, not-done)
        con.execute("""
CREATE OR REPLACE TEMP TABLE _lr2 AS
SELECT _lr.*, _fr.d, _fr.k, NOT odd AND coalesce(status = 'entered-in-error' OR (_lr.rt = 'Observation' AND status = 'cancelled')
            OR (_lr.rt = 'Immunization' AND status = 'not-done') OR verif IN ('entered-in-error', 'refuted'), FALSE) AS dropped
FROM _lr JOIN _fr USING (f, line)""")
        self._observations()
        self._records()
        rows = con.execute("""
SELECT DISTINCT pid FROM (
  SELECT pid FROM _lr2 WHERE odd OR big OR (NOT dropped AND NOT dates_ok) OR rt IN ('List', 'AdverseEvent')
  UNION ALL SELECT pid FROM _oel WHERE NOT fine
  UNION ALL SELECT pid FROM _rec WHERE NOT fine
  UNION ALL SELECT pid FROM _pat WHERE big OR NOT (regexp_full_match(pid, '""" + _PATIENT_ID + """')
      AND _fdate_fine(d.birthDate) AND _fdate_fine(d.deceasedDateTime)
      AND (_fjt(d.gender) IN ('MISSING', 'NULL') OR _fstr(d.gender) IN (""" + ", ".join(map(_sql_str, GENDERS)) + """))))
ORDER BY pid""").fetchall()
        python = [r[0] for r in rows]
        con.execute("CREATE OR REPLACE TEMP TABLE _py (pid VARCHAR)")
        if python:
            con.execute("INSERT INTO _py SELECT unnest(?)", [python])
        return python

    def _observations(self) -> None:
        """Each valued element of an Observation (itself, then each component object) as an observation."""
        con = self.con
        # the element's pieces: from the parsed struct for the Observation, from the component's JSON for a component
        pieces = ("code", "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
                  "referenceRange")
        date = ("coalesce(_fdate(d.effectiveDateTime), _fdate(json_extract(d.effectivePeriod, '$.start')), "
                "_fdate(d.issued))")
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _oel AS
SELECT pid, f, line, ci, date, vkeys, len(vkeys) AS nv, vkeys[1] AS vk,
       _floinc_first(_fdedupe(ca)) AS codes, display, code, q, vc, vs, vb, vi, rr
FROM (SELECT *, _fcodes_all(code) AS ca, _fdisplay(code) AS display,
       valueQuantity AS q, valueCodeableConcept AS vc, valueString AS vs, valueBoolean AS vb, valueInteger AS vi,
       CASE WHEN _fjt(referenceRange) = 'ARRAY' THEN _farr(referenceRange)[1] END AS rr
FROM (SELECT pid, f, line, -1 AS ci, {date} AS date, list_filter(k, lambda x: starts_with(x, 'value')) AS vkeys,
             {", ".join(f"d.{n} AS {n}" for n in pieces)}
      FROM _lr2 WHERE rt = 'Observation' AND NOT dropped
      UNION ALL
      SELECT pid, f, line, ci, date, list_filter(json_keys(e), lambda x: starts_with(x, 'value')),
             {", ".join(f"json_extract(e, '{n}')" for n in pieces)}
      FROM (SELECT pid, f, line, unnest(_farr(d.component)) AS e, generate_subscripts(_farr(d.component), 1) - 1 AS ci,
                   {date} AS date
            FROM _lr2 WHERE rt = 'Observation' AND NOT dropped AND _fjt(d.component) = 'ARRAY')
      WHERE json_type(e) = 'OBJECT'))""")
        cc_text = ("coalesce(_fclean(json_extract(vc, 'text')), list_filter(list_transform(_fcodings(vc), lambda x: _fclean(json_extract(x, 'display'))), "
                   "lambda x: x IS NOT NULL)[1], list_filter(list_transform(_fcodings(vc), lambda x: _fclean(json_extract(x, 'code'))), "
                   "lambda x: x IS NOT NULL)[1])")
        answer = ("coalesce(list_filter(list_transform(_fcodings(vc), lambda x: CASE WHEN _fstr(json_extract(x, 'system')) = 'http://loinc.org' "
                  "AND starts_with(_ftext(json_extract(x, 'code')), 'LA') THEN 'LOINC:' || _ftext(json_extract(x, 'code')) END), lambda x: x IS NOT NULL)[1], "
                  "list_filter(list_transform(_fcodings(vc), lambda x: CASE WHEN _fstr(json_extract(x, 'system')) = 'http://snomed.info/sct' "
                  "AND _ftext(json_extract(x, 'code')) IS NOT NULL THEN 'SNOMED:' || _ftext(json_extract(x, 'code')) END), lambda x: x IS NOT NULL)[1])")
        q_ok = (f"(_fjt(q) <> 'OBJECT' OR NOT _fvalued(q) OR (_fnum_ok(json_extract(q, 'value')) AND (_fjt(json_extract(q, 'comparator')) IN ('MISSING', 'NULL') "
                f"OR _fstr(json_extract(q, 'comparator')) IN ({', '.join(map(_sql_str, COMPARATORS))}))))")
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _oel2 AS
SELECT *, CASE vk
    WHEN 'valueQuantity' THEN _fjt(q) = 'OBJECT' AND _fvalued(q)
    WHEN 'valueCodeableConcept' THEN {cc_text} IS NOT NULL
    WHEN 'valueString' THEN _fclean(vs) IS NOT NULL
    WHEN 'valueBoolean' THEN _fjt(vb) = 'BOOLEAN'
    WHEN 'valueInteger' THEN TRUE ELSE FALSE END AS valued,
  CASE vk WHEN 'valueQuantity' THEN json_extract(q, 'value') WHEN 'valueInteger' THEN vi END AS num,
  CASE vk WHEN 'valueCodeableConcept' THEN {cc_text} WHEN 'valueString' THEN _fclean(vs) END AS vstr,
  CASE vk WHEN 'valueCodeableConcept' THEN {answer} END AS vcode,
  CASE WHEN _fjt(rr) = 'OBJECT' AND _fvalued(json_extract(rr, 'low')) THEN json_extract(rr, '$.low.value') END AS lo,
  CASE WHEN _fjt(rr) = 'OBJECT' AND _fvalued(json_extract(rr, 'high')) THEN json_extract(rr, '$.high.value') END AS hi,
  NOT _fodd_system(code) AND nv <= 1 AND (nv = 0 OR vk IN ('valueQuantity', 'valueCodeableConcept', 'valueString', 'valueBoolean', 'valueInteger'))
    AND {q_ok}
    AND (vk IS DISTINCT FROM 'valueInteger' OR _fnum_ok(vi))
    AND (_fjt(rr) <> 'OBJECT' OR ((NOT _fvalued(json_extract(rr, 'low')) OR _fnum_ok(json_extract(rr, '$.low.value')))
                                 AND (NOT _fvalued(json_extract(rr, 'high')) OR _fnum_ok(json_extract(rr, '$.high.value'))))) AS fine
FROM _oel""")
        con.execute("DROP TABLE _oel")
        con.execute("ALTER TABLE _oel2 RENAME TO _oel")

    def _records(self) -> None:
        """Conditions, medications, procedures, allergies and immunizations, one row each (``fine``: SQL
        proves the mapping)."""
        con = self.con
        concept = ("CASE rt WHEN 'Immunization' THEN d.vaccineCode "
                   "WHEN 'MedicationRequest' THEN d.medicationCodeableConcept "
                   "WHEN 'MedicationStatement' THEN d.medicationCodeableConcept ELSE d.code END")
        start = ("CASE rt WHEN 'Condition' THEN coalesce(_fdate(d.onsetDateTime), _fdate(json_extract(d.onsetPeriod, '$.start'))) "
                 "WHEN 'AllergyIntolerance' THEN coalesce(_fdate(d.onsetDateTime), _fdate(json_extract(d.onsetPeriod, '$.start'))) "
                 "WHEN 'MedicationRequest' THEN _fdate(d.authoredOn) "
                 "WHEN 'MedicationStatement' THEN coalesce(_fdate(json_extract(d.effectivePeriod, '$.start')), _fdate(d.effectiveDateTime)) "
                 "WHEN 'Procedure' THEN coalesce(_fdate(d.performedDateTime), _fdate(json_extract(d.performedPeriod, '$.start'))) "
                 "WHEN 'Immunization' THEN _fdate(d.occurrenceDateTime) END")
        end = ("CASE rt WHEN 'Condition' THEN coalesce(_fdate(d.abatementDateTime), _fdate(json_extract(d.abatementPeriod, '$.end'))) "
               "WHEN 'MedicationRequest' THEN _fdate(json_extract(d.dispenseRequest, '$.validityPeriod.end')) "
               "WHEN 'MedicationStatement' THEN _fdate(json_extract(d.effectivePeriod, '$.end')) "
               "WHEN 'Procedure' THEN _fdate(json_extract(d.performedPeriod, '$.end')) END")
        investigational = ("len(list_filter(_farr(d.extension), lambda x: ends_with(lower(_fstr(json_extract(x, 'url'))), "
                           "'investigational'))) > 0")
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _rec AS
SELECT pid, f, line, rt, d, k, {concept} AS c, status, verif, {start} AS start, {end} AS end_,
       CASE WHEN rt = 'Condition' THEN _fdate(d.recordedDate) END AS recorded,
       CASE WHEN rt IN ('MedicationRequest', 'MedicationStatement') THEN
         CASE WHEN rt = 'MedicationRequest' THEN d.dosageInstruction ELSE d.dosage END END AS dosage
FROM _lr2 WHERE rt <> 'Observation' AND rt IN ({', '.join(map(_sql_str, READ_TYPES))}) AND NOT dropped AND NOT odd""")
        # Python's _reason: each reasonCode concept's codes, else its text (or "reason coded only as text"),
        # then each reasonReference: the codes of the patient's Condition it names (the last of that id),
        # else "reason '<reference>' not read" (SQL spells Python's repr of plain ASCII only: `safe`)
        con.execute(r"""
CREATE OR REPLACE TEMP TABLE _rr AS
SELECT m.f, m.line,
       flatten(list(CASE WHEN len(c.codes) > 0 THEN c.codes ELSE ['reason ' || chr(39) || m.t || chr(39) || ' not read'] END
                    ORDER BY m.k)) AS parts,
       bool_and(coalesce(regexp_full_match(m.t, '[ -~]*') AND NOT regexp_matches(m.t, '[\x27\\]'), FALSE)) AS safe
FROM (SELECT f, line, pid, k, t, split_part(t, '/_history/', 1) AS key
      FROM (SELECT f, line, pid, generate_subscripts(items, 1) AS k,
                   unnest(list_transform(items, lambda x: _fstr(json_extract(x, 'reference')))) AS t
            FROM (SELECT f, line, pid, _farr(d.reasonReference) AS items FROM _rec
                  WHERE rt IN ('MedicationRequest', 'MedicationStatement') AND list_contains(k, 'reasonReference')))) m
LEFT JOIN (SELECT pid, 'Condition/' || _fstr(d.id) AS key,
                  arg_max(_fcodes(d.code), f * 10000000000 + line) AS codes
           FROM _lr2 WHERE rt = 'Condition' AND _fjt(d.id) = 'VARCHAR' GROUP BY ALL) c
  ON c.pid = m.pid AND c.key = m.key
GROUP BY m.f, m.line""")
        reason = ("list_filter(list_concat(flatten(list_transform(_farr(d.reasonCode), lambda r: "
                  "CASE WHEN len(_fcodes(r)) > 0 THEN _fcodes(r) ELSE [coalesce(_fdisplay(r), 'reason coded only as text')] "
                  "END)), coalesce(parts, [])), lambda x: x IS NOT NULL)")
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _rec2 AS
SELECT *, coalesce(safe, TRUE) AS reasons_ok, _fdedupe(ca) AS codes, _fdisplay(c) AS display,
  CASE WHEN rt = 'Condition' THEN _fstatus(d.clinicalStatus) WHEN rt = 'AllergyIntolerance'
       THEN _fstatus(d.clinicalStatus) ELSE _ftext(d.status) END AS status_out,
  CASE WHEN verif IS NOT NULL AND verif <> 'confirmed' THEN verif END AS verification,
  CASE WHEN rt IN ('MedicationRequest', 'MedicationStatement') THEN {reason} END AS reasons,
  CASE WHEN rt = 'AllergyIntolerance' THEN _ftext(d.criticality) END AS criticality,
  CASE WHEN rt = 'AllergyIntolerance' THEN nullif(array_to_string(list_filter(list_transform(_farr(d.category),
       lambda x: _ftext(x)), lambda x: x IS NOT NULL), ', '), '') END AS category,
  CASE WHEN _fjt(dosage) = 'ARRAY' AND json_array_length(dosage) = 1 AND json_type(json_extract(dosage, '$[0]')) = 'OBJECT'
       THEN json_extract(dosage, '$[0]') END AS d1
FROM (SELECT *, _fcodes_all(c) AS ca FROM _rec) LEFT JOIN _rr USING (f, line)""")
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _rec3 AS
SELECT *, CASE WHEN _fjt(json_extract(d1, 'doseAndRate')) = 'ARRAY' AND json_array_length(json_extract(d1, 'doseAndRate')) = 1
               AND json_type(json_extract(d1, '$.doseAndRate[0].doseQuantity')) = 'OBJECT'
               AND json_exists(json_extract(d1, '$.doseAndRate[0].doseQuantity'), '$.value') THEN json_extract(d1, '$.doseAndRate[0].doseQuantity') END AS dq,
       json_extract(d1, '$.timing.repeat') AS rep
FROM _rec2""")
        con.execute(f"""
CREATE OR REPLACE TEMP TABLE _rec4 AS
SELECT *,
  dq IS NOT NULL AND (_fjt(json_extract(d1, 'asNeededBoolean')) = 'BOOLEAN' AND (json_extract(d1, 'asNeededBoolean'))::BOOLEAN
                      OR json_exists(d1, '$.asNeededCodeableConcept')) AS as_needed,
  CASE WHEN dq IS NOT NULL AND _fjt(rep) = 'OBJECT' AND _fjt(json_extract(rep, 'frequency')) IN ('UBIGINT', 'BIGINT')
       AND try_cast(json_extract(rep, 'frequency') AS BIGINT) BETWEEN 1 AND {MAX_POSITIVE_INT}
       THEN try_cast(json_extract(rep, 'frequency') AS BIGINT) END AS fcount,
  CASE WHEN dq IS NOT NULL AND _fjt(rep) = 'OBJECT' AND _fnum(json_extract(rep, 'period')) > 0 THEN _fnum(json_extract(rep, 'period')) END AS fperiod,
  CASE WHEN dq IS NOT NULL AND _fjt(rep) = 'OBJECT' AND _ftext(json_extract(rep, 'periodUnit')) IN ('s', 'min', 'h', 'd', 'wk', 'mo', 'a')
       THEN _ftext(json_extract(rep, 'periodUnit')) END AS funit,
  len(codes) > 0
  AND NOT (rt = 'Condition' AND (list_contains(k, 'extension') OR _fjt(d.stage) NOT IN ('MISSING', 'NULL')
           OR _fjt(d.severity) NOT IN ('MISSING', 'NULL') OR _fjt(d.bodySite) NOT IN ('MISSING', 'NULL')))
  AND NOT (rt IN ('MedicationRequest', 'MedicationStatement') AND (NOT list_contains(k, 'medicationCodeableConcept')
           OR {investigational} OR NOT reasons_ok))
  AND (dq IS NULL OR (_fnum_ok(json_extract(dq, 'value')) AND (_fjt(rep) <> 'OBJECT' OR _fjt(json_extract(rep, 'period')) IN ('MISSING', 'NULL')
                                                  OR _fnum_ok(json_extract(rep, 'period'))))) AS fine
FROM _rec3""")
        for name in ("_rec", "_rec2", "_rec3", "_rr"):
            con.execute(f"DROP TABLE {name}")
        con.execute("ALTER TABLE _rec4 RENAME TO _rec")

    # ------------------------------------------------------------------ SQL: the store
    def _store_sql(self) -> None:
        con, p = self.con, self.prefix
        kinds = {"conditions": ("Condition",), "medications": ("MedicationRequest", "MedicationStatement"),
                 "procedures": ("Procedure",), "allergies": ("AllergyIntolerance",), "immunizations": ("Immunization",)}
        has = ", ".join(f"EXISTS (SELECT 1 FROM _lr2 x WHERE x.pid = pt.pid AND x.rt IN ({', '.join(map(_sql_str, types))}))"
                        for types in kinds.values())
        files = "[" + ", ".join(_sql_str(name) for name in self.files) + "]"
        con.execute(f"""
INSERT INTO {p}patients
SELECT pid, {files}[f + 1] || ':' || line, birth, _fdlo(birth), _fdhi(birth), _fstr(d.gender),
       CASE WHEN died IS NOT NULL OR _fjt(d.deceasedBoolean) = 'BOOLEAN' AND (d.deceasedBoolean)::BOOLEAN THEN TRUE END,
       died, _fdlo(died), _fdhi(died),
       EXISTS (SELECT 1 FROM _oel o WHERE o.pid = pt.pid AND o.valued AND len(o.codes) > 0), {has}, TRUE
FROM (SELECT *, _fdate(d.birthDate) AS birth,
             CASE WHEN _fjt(d.deceasedDateTime) NOT IN ('MISSING', 'NULL') THEN _fdate(d.deceasedDateTime) END AS died
      FROM _pat WHERE pid NOT IN (SELECT pid FROM _py)) pt""")
        con.execute(f"""
INSERT INTO {p}observations
SELECT pid, (row_number() OVER (PARTITION BY pid ORDER BY f, line, ci) - 1)::INTEGER, codes[1], codes, display,
       CASE WHEN num IS NOT NULL THEN num::DOUBLE END, _fint(num), vstr,
       CASE WHEN vk = 'valueBoolean' THEN vb::BOOLEAN END,
       CASE WHEN vstr IS NOT NULL THEN vcode END,
       CASE WHEN vk = 'valueQuantity' THEN _funit(q) END,
       CASE WHEN vk = 'valueQuantity' THEN _fstr(json_extract(q, 'comparator')) END,
       date, _fdlo(date), _fdhi(date),
       lo::DOUBLE, _fint(lo), hi::DOUBLE, _fint(hi),
       coalesce(CASE WHEN lo IS NOT NULL THEN _funit(json_extract(rr, 'low')) END, CASE WHEN hi IS NOT NULL THEN _funit(json_extract(rr, 'high')) END),
       NULL
FROM _oel WHERE valued AND len(codes) > 0 AND pid NOT IN (SELECT pid FROM _py)""")
        for kind, types in kinds.items():
            medication = ""
            if kind == "medications":
                medication = """,
       CASE WHEN dq IS NOT NULL THEN (json_extract(dq, 'value'))::DOUBLE END, CASE WHEN dq IS NOT NULL THEN _fint(json_extract(dq, 'value')) END,
       CASE WHEN dq IS NOT NULL THEN _funit(dq) END, NULL, NULL, NULL, NULL,
       CASE WHEN written THEN fcount END, CASE WHEN written THEN fperiod END, CASE WHEN written THEN funit END,
       CASE WHEN written THEN as_needed END, NULL"""
            con.execute(f"""
CREATE OR REPLACE TEMP TABLE _k AS
SELECT *, (row_number() OVER (PARTITION BY pid ORDER BY f, line) - 1)::INTEGER AS seq,
       as_needed OR (fperiod IS NOT NULL AND funit IS NOT NULL) AS written
FROM _rec WHERE rt IN ({', '.join(map(_sql_str, types))}) AND pid NOT IN (SELECT pid FROM _py)""")
            con.execute(f"""
INSERT INTO {p}{kind}
SELECT pid, seq, codes[1], codes, display, status_out, verification, NULL,
       start, _fdlo(start), _fdhi(start), end_, _fdlo(end_), _fdhi(end_),
       recorded, _fdlo(recorded), _fdhi(recorded){medication}
FROM _k""")
            fields = []
            if kind == "conditions":
                fields.append("SELECT pid, seq, 'recorded_date' AS name, 'string' AS vk, recorded AS s, NULL::VARCHAR[] AS items "
                              "FROM _k WHERE recorded IS NOT NULL")
            if kind == "medications":
                fields.append("SELECT pid, seq, 'reason' AS name, 'list' AS vk, NULL::VARCHAR AS s, list_filter(reasons, lambda x, i: "
                              "list_position(reasons, x) = i) AS items FROM _k WHERE len(reasons) > 0")
            if kind == "allergies":
                fields.append("SELECT pid, seq, 'criticality' AS name, 'string' AS vk, criticality AS s, NULL::VARCHAR[] AS items FROM _k WHERE criticality IS NOT NULL")
                fields.append("SELECT pid, seq, 'category' AS name, 'string' AS vk, category AS s, NULL::VARCHAR[] AS items FROM _k WHERE category IS NOT NULL")
            for query in fields:
                con.execute(f"""
INSERT INTO {p}record_fields
SELECT pid, '{kind}', seq, name, vk, s, NULL, NULL, CASE WHEN vk = 'list' THEN to_json(items) ELSE to_json(s) END::VARCHAR,
       items
FROM ({query})""")

    # ------------------------------------------------------------------ the Python reader
    def _store_python(self, python: list[str]) -> None:
        """Each patient SQL could not prove: their resources as one Bundle, read by the per-patient reader."""
        if not python:
            return
        from pydantic import ValidationError

        from ..patient.fhir import FhirError, fhir_to_patient
        from ..patient.load import _problems
        from ..patient.model import Patient

        con = self.con
        self.summary.python_path += len(python)
        rows = con.execute("""
SELECT x.pid, x.pass, x.f, x.line, r.text FROM (
  SELECT pid, 0 AS pass, f, line FROM _pat JOIN _py USING (pid)
  UNION ALL SELECT pid, 1, f, line FROM _link JOIN _py USING (pid)) x JOIN _fl r USING (f, line)
ORDER BY 1, 2, 3, 4""").fetchall()
        medications = self._medications_for(python)
        builder = TableBuilder()
        current, entries = None, []

        def flush():
            if current is not None:
                self._read_patient(current, entries, medications.get(current, []), builder,
                                   fhir_to_patient, FhirError, Patient, ValidationError, _problems)

        for pid, _pass, f, line, text in rows:
            if pid != current:
                flush()
                current, entries = pid, []
            entries.append((f, line, json.loads(text.removeprefix("\ufeff"))))
        flush()
        tables = builder.tables()
        for name, table in tables.items():
            if table.num_rows:
                con.register("_py_rows", table)
                con.execute(f"INSERT INTO {self.prefix}{name} SELECT * FROM _py_rows")
                con.unregister("_py_rows")

    def _medications_for(self, python: list[str]) -> dict[str, list]:
        """The Medication and Substance resources each Python-path patient's resources reference (``Medication/<id>``)."""
        con = self.con
        rows = con.execute(r"""
WITH refs AS (
  SELECT DISTINCT l.pid, regexp_extract(split_part(ref, '/_history/', 1), '(^|/)((Medication|Substance)/[^/]+)$', 2) AS mid
  FROM (SELECT pid, unnest(regexp_extract_all(fr.text, '"reference"\s*:\s*"([^"]*)"', 1)) AS ref
        FROM _link JOIN _py USING (pid) JOIN _fl fr USING (f, line)) l)
SELECT refs.pid, m.f, m.line, l.text FROM refs
JOIN (SELECT f, line, rt || '/' || _fstr(d.id) AS mid FROM _fr WHERE rt IN ('Medication', 'Substance')) m USING (mid)
JOIN _fl l ON l.f = m.f AND l.line = m.line
WHERE refs.mid <> '' ORDER BY 1, 2, 3""").fetchall()
        found: dict[str, list] = {}
        for pid, f, line, text in rows:
            found.setdefault(pid, []).append((f, line, json.loads(text.removeprefix("\ufeff"))))
        return found

    def _read_patient(self, pid, entries, medications, builder, fhir_to_patient, FhirError, Patient,
                      ValidationError, _problems) -> None:
        everything = entries + medications
        bundle = {"resourceType": "Bundle", "type": "collection",
                  "entry": [{"resource": resource} for _, _, resource in everything]}
        f0, line0 = entries[0][0], entries[0][1]
        try:
            document, _report = fhir_to_patient(bundle)
        except FhirError as exc:
            match = re.match(r"\$\.entry\[(\d+)\]\.resource(.*)", exc.path)
            if match:
                f, line, _ = everything[int(match.group(1))]
                path = "$" + match.group(2)
            else:
                f, line, path = f0, line0, exc.path
            self._refuse(f, line, [DataProblem(path, f"{exc.message} (patient {pid!r} is not screened)", "fhir")])
            return
        except Exception as exc:  # the reader failed on a shape it does not expect: the patient is refused
            self._refuse(f0, line0, [DataProblem("$", f"the FHIR reader could not read patient {pid!r}'s resources "
                                                      f"({type(exc).__name__}: {exc}); not screened", "fhir")])
            return
        for key in ("conditions", "medications", "procedures", "allergies", "immunizations"):
            for record in document.get(key) or ():
                where = record.get("fhir_path")
                match = re.fullmatch(r"\$\.entry\[(\d+)\]\.resource", where) if isinstance(where, str) else None
                if match:
                    f, line, _ = everything[int(match.group(1))]
                    record["fhir_path"] = self._where(f, line)
        try:
            model = Patient.model_validate(document)
        except ValidationError as exc:
            self._refuse(f0, line0, _problems(exc))
            return
        builder.add_model(model, self._where(f0, line0))


def bundles_to_bulk(bundles, folder: str | Path) -> dict[str, int]:
    """Write FHIR Bundles as a bulk export: one ``<Type>.ndjson`` per resource type in ``folder``, each
    resource on one line, references to bundle entries (``urn:uuid:...`` fullUrls) rewritten as
    ``Type/id``, as a server's ``$export`` writes them. Returns the resources written per type."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    streams: dict = {}
    counts: dict[str, int] = {}
    try:
        for bundle in bundles:
            entries = [e for e in bundle.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
            names = {}
            for entry in entries:
                resource = entry["resource"]
                if not isinstance(resource.get("id"), str) and isinstance(entry.get("fullUrl"), str):
                    resource["id"] = entry["fullUrl"].rsplit(":", 1)[-1].rsplit("/", 1)[-1]
                if isinstance(entry.get("fullUrl"), str) and isinstance(resource.get("id"), str):
                    names[entry["fullUrl"]] = f"{resource['resourceType']}/{resource['id']}"
            for entry in entries:
                resource = _rewrite_references(entry["resource"], names)
                kind = resource["resourceType"]
                if kind not in streams:
                    streams[kind] = (folder / f"{kind}.ndjson").open("w", encoding="utf-8")
                streams[kind].write(json.dumps(resource, ensure_ascii=False, separators=(",", ":")) + "\n")
                counts[kind] = counts.get(kind, 0) + 1
    finally:
        for stream in streams.values():
            stream.close()
    return counts


def _rewrite_references(value, names: dict):
    if isinstance(value, dict):
        out = {k: _rewrite_references(v, names) for k, v in value.items()}
        if isinstance(out.get("reference"), str) and out["reference"] in names:
            out["reference"] = names[out["reference"]]
        return out
    if isinstance(value, list):
        return [_rewrite_references(v, names) for v in value]
    return value


def ingest_fhir_bulk(con, path: str | Path, *, on_error: Callable[[dict], None], prefix: str = "",
                     progress: Callable[[FhirIngestSummary], None] | None = None,
                     chunk_bytes: int = CHUNK_BYTES) -> FhirIngestSummary:
    """Read a FHIR bulk export (a folder of ``*.ndjson``, or one NDJSON file of resources) into the store
    tables, created in ``con``."""
    files = bulk_files(Path(path))
    ingester = FhirBulkIngester(con, on_error=on_error, prefix=prefix, chunk_bytes=chunk_bytes)
    return ingester.ingest(files, progress)


def tables_from_bulk(path: str | Path, on_error: Callable[[dict], None] | None = None) -> dict[str, pa.Table]:
    """The store's tables (Arrow) from a FHIR bulk export, in a fresh in-memory DuckDB; refused lines go to
    ``on_error`` (or are ignored)."""
    import duckdb

    con = duckdb.connect()
    try:
        ingest_fhir_bulk(con, path, on_error=on_error or (lambda entry: None))
        return {name: con.sql(f"SELECT * FROM {name}").to_arrow_table().cast(schema)
                for name, schema in TABLES.items()}
    finally:
        con.close()
