"""Patients (documents, or validated models) -> the tables of the store, in Python, one patient at a time.

This is the reference loader (tests, small populations, the Python path): each document is validated
exactly as the per-patient engine validates it (patient JSON version 1, or FHIR R4 converted), then
written into :mod:`screening.population.schema`'s tables as written. Bulk ingestion without Python per
row reads NDJSON/Parquet into the same tables.
"""
from __future__ import annotations

import json
from datetime import date

import pyarrow as pa

from ..dates import DateProblem, parse_partial
from ..errors import DataError
from ..patient.model import Patient
from . import schema


def _days(text) -> tuple[date | None, date | None]:
    if not isinstance(text, str):
        return None, None
    try:
        lo, hi = parse_partial(text)
    except DateProblem:
        return None, None
    return date.fromordinal(lo), date.fromordinal(hi)


def _date_columns(row: dict, name: str, text) -> None:
    lo, hi = _days(text)
    row[f"{name}_text"] = text if isinstance(text, str) else None
    row[f"{name}_lo"], row[f"{name}_hi"] = lo, hi


def _number(value) -> tuple[float | None, bool | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, None
    return float(value), isinstance(value, int)


# the record columns of the store; every other field of a record goes to record_fields
_COLUMNS = {"code", "codes", "display", "status", "verification", "unreadable", "onset", "start", "date", "end",
            "dose", "daily_dose", "frequency", "investigational"}
_NAMED = ("route", "response", "result", "criticality", "category", "caused_by")


def _kind_of(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "object"


class TableBuilder:
    """Accumulates patients as rows of every table; :meth:`tables` returns them as Arrow tables."""

    def __init__(self):
        self.rows: dict[str, list[dict]] = {name: [] for name in schema.TABLES}

    def add_document(self, document: dict, source: str = "") -> None:
        """Validate one patient JSON (or FHIR) document as the per-patient engine does, and add it."""
        from ..patient.load import document_problems, validated_model

        problems = document_problems(document)
        if problems:
            raise DataError(source or "<patient>", problems)
        self.add_model(validated_model(document, source or "<patient>"), source)

    def add_model(self, model: Patient, source: str = "") -> None:
        """Add one validated patient."""
        pid = model.id
        row = {"patient_id": pid, "source": source or None, "sex": model.sex}
        _date_columns(row, "birth", model.birth_date)
        deceased = model.deceased
        row["deceased"] = True if (deceased is True or isinstance(deceased, str)) else None
        _date_columns(row, "deceased", deceased if isinstance(deceased, str) else None)
        for name in schema.LISTS:
            row[f"has_{name}"] = getattr(model, name) is not None
        self.rows["patients"].append(row)
        for seq, obs in enumerate(model.observations or ()):
            o = {"patient_id": pid, "seq": seq, "code": obs.code, "codes": obs.codes, "display": obs.display,
                 "unit": obs.unit, "comparator": obs.comparator,
                 "value_string": obs.value if isinstance(obs.value, str) else None,
                 "value_bool": obs.value if isinstance(obs.value, bool) else None, "value_code": obs.value_code}
            o["value_number"], o["value_is_integer"] = _number(obs.value)
            _date_columns(o, "date", obs.date)
            rr = obs.reference_range
            o["ref_low"], o["ref_low_is_integer"] = _number(rr.low if rr else None)
            o["ref_high"], o["ref_high_is_integer"] = _number(rr.high if rr else None)
            o["ref_unit"], o["ref_text"] = (rr.unit, rr.text) if rr else (None, None)
            self.rows["observations"].append(o)
        for kind in schema.RECORD_KINDS:
            for seq, record in enumerate(getattr(model, kind) or ()):
                self._record(pid, kind, seq, record)
        for name, value in (model.facts or {}).items():
            kind = _kind_of(value)
            self.rows["facts"].append({
                "patient_id": pid, "name": name, "value_kind": kind,
                "value_bool": value if kind == "bool" else None,
                "value_number": float(value) if kind == "number" else None,
                "value_string": value if kind == "string" else None})

    def _record(self, pid: str, kind: str, seq: int, record) -> None:
        row = {"patient_id": pid, "seq": seq, "code": record.code, "codes": record.codes, "display": record.display,
               "status": record.status, "verification": record.verification, "unreadable": record.unreadable}
        _date_columns(row, "start", getattr(record, schema.START_FIELD[kind]))
        end_field = schema.END_FIELD[kind]
        _date_columns(row, "end", getattr(record, end_field) if end_field else None)
        extra = dict(record.model_extra or {})
        _date_columns(row, "recorded", extra.get("recorded_date"))
        if kind == "medications":
            for name in ("dose", "daily_dose"):
                quantity = getattr(record, name)
                row[f"{name}_value"], row[f"{name}_value_is_integer"] = _number(quantity.value if quantity else None)
                row[f"{name}_unit"] = quantity.unit if quantity else None
            frequency = record.frequency
            row["frequency_per_day"] = float(frequency) if isinstance(frequency, (int, float)) else None
            timed = frequency if frequency is not None and not isinstance(frequency, (int, float)) else None
            row["frequency_count"] = timed.frequency if timed else None
            row["frequency_period"] = float(timed.period) if timed and timed.period is not None else None
            row["frequency_period_unit"] = timed.period_unit if timed else None
            row["frequency_as_needed"] = timed.as_needed if timed else None
            row["investigational"] = record.investigational
        self.rows[kind].append(row)
        fields = {name: getattr(record, name) for name in _NAMED if getattr(record, name, None) is not None}
        fields.update(extra)
        for name, value in fields.items():
            value_kind = _kind_of(value)
            self.rows["record_fields"].append({
                "patient_id": pid, "kind": kind, "seq": seq, "name": name, "value_kind": value_kind,
                "value_string": value if value_kind == "string" else None,
                "value_number": float(value) if value_kind == "number" else None,
                "value_bool": value if value_kind == "bool" else None,
                "value_json": json.dumps(value, ensure_ascii=False, separators=(",", ":")),
                "items": ([item if isinstance(item, str) else None for item in value] if value_kind == "list" else None),
            })

    def tables(self) -> dict[str, pa.Table]:
        """Every table of the store, as Arrow tables with exactly the store's schemas."""
        return {name: pa.Table.from_pylist(self.rows[name], schema=schema.TABLES[name]) for name in schema.TABLES}


def tables_from_documents(documents, sources=None) -> dict[str, pa.Table]:
    """Patient documents (dicts: patient JSON v1 or FHIR R4) -> the store's tables. Raises DataError."""
    builder = TableBuilder()
    for index, document in enumerate(documents):
        builder.add_document(document, sources[index] if sources else "")
    return builder.tables()
