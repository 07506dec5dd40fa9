"""The normalised store the population engine reads: one table per list of patient JSON version 1.

Every table is defined once here as an Arrow schema; :func:`duckdb_ddl` renders the same columns as
DuckDB ``CREATE TABLE`` statements. Ingestion (NDJSON, FHIR NDJSON, Parquet) writes exactly these
tables; the SQL generated from a rule set (:mod:`screening.population.sql`) reads them.

What the tables keep, and why (docs/population.md has the column reference):

* **Values as written.** A number keeps its JSON spelling class (``value_is_integer``) because the
  unit-precision rule reads the last written digit: JSON ``7`` (an integer) and ``7.0`` (a float)
  differ. Units, reference ranges, codes, statuses and dates are stored as written; conversion to
  catalogue units happens in the engine, once per distinct (analyte, unit) pair.
* **Absent list = unknown, empty list = none.** ``patients.has_<list>`` is TRUE when the document
  gave the list (even empty), FALSE when it did not: a question about a list that was not provided
  is unknown, never false.
* **Partial dates** as three columns: ``<name>_text`` (as written, ``2019-03``), ``<name>_lo`` and
  ``<name>_hi`` (the first and last day the text can mean, as DATE). A date-time means its date.
* **Records** (conditions, medications, procedures, allergies, immunizations) share one column set;
  medications add their dose columns. Extra fields (``route``, ``stage``, ``histology``,
  ``recorded_date`` ...) go to ``record_fields``, one row per (record, field).
"""
from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1
"""Bumped whenever a table or column changes meaning (docs/population.md "Schema changes")."""

RECORD_KINDS = ("conditions", "medications", "procedures", "allergies", "immunizations")
"""The record lists of patient JSON version 1, each its own table with :data:`RECORD_COLUMNS`."""

LISTS = ("observations",) + RECORD_KINDS + ("facts",)
"""The lists whose presence is recorded in ``patients.has_<list>``."""

# The start and end fields each record list names ``start_*`` and ``end_*`` (docs/population.md).
START_FIELD = {"conditions": "onset", "medications": "start", "procedures": "date", "allergies": "onset",
               "immunizations": "date"}
END_FIELD = {"conditions": "end", "medications": "end", "procedures": "end", "allergies": "end",
             "immunizations": None}


def _date(name: str) -> list[pa.Field]:
    return [pa.field(f"{name}_text", pa.string()), pa.field(f"{name}_lo", pa.date32()),
            pa.field(f"{name}_hi", pa.date32())]


PATIENTS = pa.schema([
    pa.field("patient_id", pa.string(), nullable=False),
    pa.field("source", pa.string()),  # where the document came from: "file.ndjson:12"
    *_date("birth"),
    pa.field("sex", pa.string()),  # female | male | other | unknown | NULL
    pa.field("deceased", pa.bool_()),  # TRUE: recorded as deceased (with or without a date); NULL: not recorded
    *_date("deceased"),  # the date of death, when given
    *[pa.field(f"has_{name}", pa.bool_(), nullable=False) for name in LISTS],
])

OBSERVATIONS = pa.schema([
    pa.field("patient_id", pa.string(), nullable=False),
    pa.field("seq", pa.int32(), nullable=False),  # index in the document's list: $.observations[seq]
    pa.field("code", pa.string(), nullable=False),  # SYSTEM:CODE as written
    pa.field("codes", pa.list_(pa.string())),  # the other codes as written
    pa.field("display", pa.string()),
    pa.field("value_number", pa.float64()),  # a JSON number
    pa.field("value_is_integer", pa.bool_()),  # the number was a JSON integer (7, not 7.0): its last digit
    pa.field("value_string", pa.string()),  # a JSON string, as written
    pa.field("value_bool", pa.bool_()),  # a JSON boolean
    pa.field("value_code", pa.string()),  # a coded answer (SYSTEM:CODE, e.g. a LOINC answer LA code), as read
    pa.field("unit", pa.string()),  # as written
    pa.field("comparator", pa.string()),  # < <= > >= (the value is a bound of an interval)
    *_date("date"),
    pa.field("ref_low", pa.float64()),
    pa.field("ref_low_is_integer", pa.bool_()),
    pa.field("ref_high", pa.float64()),
    pa.field("ref_high_is_integer", pa.bool_()),
    pa.field("ref_unit", pa.string()),
    pa.field("ref_text", pa.string()),
])

RECORD_COLUMNS = [
    pa.field("patient_id", pa.string(), nullable=False),
    pa.field("seq", pa.int32(), nullable=False),  # index in the document's list: $.conditions[seq]
    pa.field("code", pa.string()),  # SYSTEM:CODE as written; NULL for an unreadable record
    pa.field("codes", pa.list_(pa.string())),  # the other codes as written
    pa.field("display", pa.string()),
    pa.field("status", pa.string()),  # as written (the engine lower-cases)
    pa.field("verification", pa.string()),  # as written
    pa.field("unreadable", pa.string()),  # why the record has no usable code
    *_date("start"),  # onset (conditions, allergies), start (medications), date (procedures, immunizations)
    *_date("end"),  # end (immunizations: always NULL; procedures: as written, the engine defaults it)
    *_date("recorded"),  # the extra field recorded_date, when it is a date
]

RECORDS = pa.schema(RECORD_COLUMNS)

_QUANTITY = [("value", pa.float64()), ("value_is_integer", pa.bool_()), ("unit", pa.string())]

MEDICATIONS = pa.schema(RECORD_COLUMNS + [
    *[pa.field(f"dose_{n}", t) for n, t in _QUANTITY],  # dose {value, unit}
    *[pa.field(f"daily_dose_{n}", t) for n, t in _QUANTITY],  # daily_dose {value, unit}
    pa.field("frequency_per_day", pa.float64()),  # frequency given as a number (administrations per day)
    pa.field("frequency_count", pa.int64()),  # frequency given as {frequency, period, period_unit, as_needed}
    pa.field("frequency_period", pa.float64()),
    pa.field("frequency_period_unit", pa.string()),
    pa.field("frequency_as_needed", pa.bool_()),
    pa.field("investigational", pa.bool_()),
])

RECORD_FIELDS = pa.schema([
    pa.field("patient_id", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # conditions | medications | ... (the table)
    pa.field("seq", pa.int32(), nullable=False),  # the record's seq in that table
    pa.field("name", pa.string(), nullable=False),  # the field's name as written
    pa.field("value_kind", pa.string(), nullable=False),  # string | number | bool | list | object | null
    pa.field("value_string", pa.string()),  # a JSON string
    pa.field("value_number", pa.float64()),  # a JSON number
    pa.field("value_bool", pa.bool_()),
    pa.field("value_json", pa.string()),  # the value as JSON text (every kind)
    pa.field("items", pa.list_(pa.string())),  # a list: its string items (NULL for an item that is not a string)
])

FACTS = pa.schema([
    pa.field("patient_id", pa.string(), nullable=False),
    pa.field("name", pa.string(), nullable=False),
    pa.field("value_kind", pa.string(), nullable=False),  # bool | number | string | null
    pa.field("value_bool", pa.bool_()),
    pa.field("value_number", pa.float64()),
    pa.field("value_string", pa.string()),
])

TABLES: dict[str, pa.Schema] = {
    "patients": PATIENTS,
    "observations": OBSERVATIONS,
    "conditions": RECORDS,
    "medications": MEDICATIONS,
    "procedures": RECORDS,
    "allergies": RECORDS,
    "immunizations": RECORDS,
    "record_fields": RECORD_FIELDS,
    "facts": FACTS,
}
"""Every table of the store and its columns, in order."""

_DUCK = {pa.string(): "VARCHAR", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN", pa.date32(): "DATE",
         pa.int32(): "INTEGER", pa.int64(): "BIGINT", pa.list_(pa.string()): "VARCHAR[]"}


def duckdb_ddl(prefix: str = "") -> list[str]:
    """``CREATE TABLE`` statements for every table (names prefixed with ``prefix``)."""
    statements = []
    for name, schema in TABLES.items():
        columns = ", ".join(f"{f.name} {_DUCK[f.type]}{'' if f.nullable else ' NOT NULL'}" for f in schema)
        statements.append(f"CREATE TABLE {prefix}{name} ({columns})")
    return statements


def empty_tables() -> dict[str, pa.Table]:
    """One empty Arrow table per table of the store."""
    return {name: schema.empty_table() for name, schema in TABLES.items()}
