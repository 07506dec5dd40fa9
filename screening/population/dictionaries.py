"""Dictionary tables: the project's own readers applied once per distinct value of the store, joined in SQL.

A population repeats the same few spellings millions of times: a handful of unit spellings per
analyte, a few hundred result texts, some thousands of record code lists. Each distinct one is read
here once, by the very functions the per-patient engine uses (the unit registry, the analyte
catalogue, the text vocabulary, the score reader, the value sets' :class:`~screening.codes.CodeMatcher`),
and the answers become small tables the generated SQL joins. Pint is called once per distinct unit
spelling, never per row; the arithmetic of conversion (and the unit-precision rule) runs in SQL.

Every builder takes the distinct values (an iterable of tuples) and returns a ``pyarrow.Table``, so any
engine can feed it: DuckDB (:mod:`screening.population.duckdb`) or Spark (collect the distinct values,
build, broadcast).
"""
from __future__ import annotations

import math

import pyarrow as pa

from ..analytes import catalogue
from ..codes import normalise_code
from ..errors import UnitProblem
from ..units import Conversion, parse_unit
from ..vocabulary import normalise_text

CODES = pa.schema([("code", pa.string()), ("key", pa.string()), ("is_score", pa.bool_()),
                   ("catalogue", pa.bool_()), ("dimension", pa.string())])
UNITS = pa.schema([("code", pa.string()), ("unit", pa.string()), ("factor", pa.float64()), ("addend", pa.float64()),
                   ("exact", pa.bool_()), ("log10_factor", pa.float64()), ("dimension", pa.string()),
                   ("problem", pa.string()), ("no_negative", pa.bool_())])
REF_UNITS = pa.schema([("code", pa.string()), ("unit", pa.string()), ("ref_unit", pa.string()),
                       ("factor", pa.float64()), ("addend", pa.float64()), ("exact", pa.bool_()),
                       ("log10_factor", pa.float64()), ("problem", pa.string())])
TEXTS = pa.schema([("value_string", pa.string()), ("text", pa.string())])
SCORES = pa.schema([("code", pa.string()), ("unit", pa.string()), ("value_number", pa.float64()),
                    ("value_string", pa.string()), ("value_bool", pa.bool_()),
                    ("value", pa.float64()), ("text", pa.string()), ("problem", pa.string())])


def _conversion_of(code: str, unit_text: str | None) -> tuple[Conversion | None, str | None, str | None]:
    """As screening.patient.record._obs: (conversion, dimension, problem) for a value in ``unit_text``."""
    analyte = catalogue().for_code(code)
    try:
        unit = parse_unit(unit_text or "1")
        if analyte is not None and analyte.unit_text:
            return analyte.conversion_from(unit), analyte.unit.dimension, None
        return Conversion(unit.scale, unit.offset), unit.dimension, None
    except UnitProblem as exc:
        return None, None, str(exc)


def _log10(factor: float | None) -> float | None:
    return math.log10(abs(factor)) if factor else None


def codes_table(codes) -> pa.Table:
    """Observation code -> the analyte key the patient record groups it under, and what kind it is."""
    rows = []
    for (code,) in codes:
        analyte = catalogue().for_code(code)
        rows.append({"code": code, "key": analyte.name if analyte else code,
                     "is_score": bool(analyte and analyte.is_score),
                     "catalogue": bool(analyte is not None and analyte.unit_text),
                     "dimension": analyte.unit.dimension if analyte is not None and analyte.unit_text else None})
    return pa.Table.from_pylist(rows, schema=CODES)


def units_table(pairs) -> pa.Table:
    """(code, unit) -> the conversion into the analyte's catalogue unit (or SI base units), or why none."""
    rows = []
    for code, unit_text in pairs:
        conv, dimension, problem = _conversion_of(code, unit_text)
        analyte = catalogue().for_code(code)
        no_negative = False
        if conv is not None and analyte is not None and analyte.unit_text:
            unit = parse_unit(unit_text or "1")
            no_negative = not (unit.offset or analyte.unit.offset)
        rows.append({"code": code, "unit": unit_text, "factor": conv.factor if conv else None,
                     "addend": conv.offset if conv else None, "exact": conv.exact if conv else None,
                     "log10_factor": _log10(conv.factor) if conv else None, "dimension": dimension,
                     "problem": problem, "no_negative": no_negative})
    return pa.Table.from_pylist(rows, schema=UNITS)


def ref_units_table(triples) -> pa.Table:
    """(code, unit, ref_unit) -> the conversion of a reference range written in another unit than its value."""
    rows = []
    for code, unit_text, ref_unit in triples:
        analyte = catalogue().for_code(code)
        problem = conv = None
        try:
            runit = parse_unit(ref_unit)
            if analyte and analyte.unit_text:
                conv = analyte.conversion_from(runit)
            else:
                conv = Conversion(runit.scale, runit.offset)
                value_unit = parse_unit(unit_text or "1")
                if runit.dimension != value_unit.dimension:
                    raise UnitProblem(f"reference range unit {ref_unit!r} does not match value unit {unit_text!r}")
        except UnitProblem as exc:
            conv, problem = None, str(exc)
        rows.append({"code": code, "unit": unit_text, "ref_unit": ref_unit,
                     "factor": conv.factor if conv else None, "addend": conv.offset if conv else None,
                     "exact": conv.exact if conv else None, "log10_factor": _log10(conv.factor) if conv else None,
                     "problem": problem})
    return pa.Table.from_pylist(rows, schema=REF_UNITS)


def texts_table(values) -> pa.Table:
    """A result text -> its canonical term (screening.vocabulary.normalise_text)."""
    return pa.Table.from_pylist([{"value_string": v, "text": normalise_text(v)} for (v,) in values], schema=TEXTS)


class _ScoreModel:
    __slots__ = ("value", "unit")

    def __init__(self, value, unit):
        self.value, self.unit = value, unit


def scores_table(rows) -> pa.Table:
    """(code, unit, value_number, value_is_integer, value_string, value_bool) of a score -> (value, text, problem),
    read by the per-patient loader's own score reader."""
    from ..patient.record import Obs, _score_obs

    out = []
    for code, unit, number, is_integer, string, boolean in rows:
        analyte = catalogue().for_code(code)
        value = string if string is not None else (boolean if boolean is not None else (
            None if number is None else (int(number) if is_integer else number)))
        blank = Obs()
        blank.path = "$"
        obs = _score_obs(blank, analyte, _ScoreModel(value, unit), [])
        out.append({"code": code, "unit": unit, "value_number": number, "value_string": string, "value_bool": boolean,
                    "value": obs.value, "text": obs.text, "problem": obs.problem})
    return pa.Table.from_pylist(out, schema=SCORES)


def record_codes_table(pairs, matchers) -> pa.Table:
    """(code, codes) of a record -> for each matcher: in (TRUE), out (FALSE), undecidable (NULL) and why;
    the classification screening.evaluate.record_test makes (``CodeMatcher.classify`` of the normalised codes)."""
    fields = [("code", pa.string()), ("codes", pa.list_(pa.string())), ("has_codes", pa.bool_())]
    for index in range(len(matchers)):
        fields += [(f"m{index}", pa.bool_()), (f"w{index}", pa.string())]
    rows = []
    for code, codes in pairs:
        listed = ([code] if code else []) + [c for c in (codes or []) if c != code]
        normalised = tuple(normalise_code(c) for c in listed)
        row = {"code": code, "codes": codes, "has_codes": bool(normalised)}
        for index, matcher in enumerate(matchers):
            member, why = matcher.classify(normalised) if normalised else (False, None)
            row[f"m{index}"], row[f"w{index}"] = member, why
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


LAB_TEXTS = pa.schema([("text", pa.string()), ("v", pa.bool_()), ("problem", pa.string())])


def lab_text_table(node, texts) -> pa.Table:
    """A normalised result text -> evaluate.text_result for one ``ANALYTE is VALUE`` (or grade) test."""
    from ..evaluate import text_result

    rows = []
    for (text,) in texts:
        value, problem = text_result(node, text)
        rows.append({"text": text, "v": value, "problem": problem})
    return pa.Table.from_pylist(rows, schema=LAB_TEXTS)


CODE_FIELDS = pa.schema([("value_json", pa.string()), ("v", pa.bool_()), ("shown", pa.string())])


def code_field_table(qualifier_matcher, field_name: str, values) -> pa.Table:
    """A record field's JSON value -> ir.CodeQualifier.test (``with FIELD in VALUESET``)."""
    import json

    from .. import ir

    qualifier = ir.CodeQualifier(field_name, qualifier_matcher)
    rows = []
    for (value_json,) in values:
        actual = json.loads(value_json)
        rows.append({"value_json": value_json, "v": None if actual is None else qualifier.test(actual),
                     "shown": repr(actual)})
    return pa.Table.from_pylist(rows, schema=CODE_FIELDS)


DOSE_COLUMNS = ("dose_value", "dose_value_is_integer", "dose_unit", "daily_dose_value", "daily_dose_value_is_integer",
                "daily_dose_unit", "frequency_per_day", "frequency_count", "frequency_period", "frequency_period_unit",
                "frequency_as_needed")
DOSE_PATH = "@PATH@"
"""Stands for the record's JSON path in a dose problem (the SQL puts the path of each record in its place)."""


def doses_table(rows) -> pa.Table:
    """The dose columns of a medication -> screening.doses.read_dose: mg per administration, mg per day, problems."""
    from types import SimpleNamespace

    from ..doses import read_dose

    def number(value, is_integer):
        return None if value is None else (int(value) if is_integer else value)

    fields = [(c, t) for c, t in zip(DOSE_COLUMNS, (pa.float64(), pa.bool_(), pa.string(), pa.float64(), pa.bool_(),
                                                      pa.string(), pa.float64(), pa.int64(), pa.float64(), pa.string(),
                                                      pa.bool_()))]
    fields += [("recorded", pa.bool_()), ("per_dose", pa.float64()), ("daily", pa.float64()),
               ("per_dose_problem", pa.string()), ("daily_problem", pa.string())]
    out = []
    for row in rows:
        r = dict(zip(DOSE_COLUMNS, row))
        dose = (SimpleNamespace(value=number(r["dose_value"], r["dose_value_is_integer"]), unit=r["dose_unit"])
                if r["dose_value"] is not None else None)
        daily = (SimpleNamespace(value=number(r["daily_dose_value"], r["daily_dose_value_is_integer"]),
                                 unit=r["daily_dose_unit"]) if r["daily_dose_value"] is not None else None)
        if r["frequency_per_day"] is not None:
            frequency = r["frequency_per_day"]
        elif r["frequency_count"] is not None or r["frequency_period"] is not None or r["frequency_period_unit"] \
                is not None or r["frequency_as_needed"] is not None:
            frequency = SimpleNamespace(frequency=r["frequency_count"], period=r["frequency_period"],
                                        period_unit=r["frequency_period_unit"], as_needed=bool(r["frequency_as_needed"]))
        else:
            frequency = None
        found = read_dose(SimpleNamespace(dose=dose, daily_dose=daily, frequency=frequency), DOSE_PATH)
        out.append({**r, "recorded": found is not None,
                    "per_dose": found.per_dose if found else None, "daily": found.daily if found else None,
                    "per_dose_problem": found.per_dose_problem if found else None,
                    "daily_problem": found.daily_problem if found else None})
    return pa.Table.from_pylist(out, schema=pa.schema(fields))
