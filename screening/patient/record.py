"""A validated patient turned into the indexed form the evaluator reads.

Loading does all the per-patient work once: dates become day ordinals (partial dates become
ranges), numeric observations are converted into their analyte's catalogue unit (or SI base
units for codes outside the catalogue), reference ranges likewise, and observations are grouped
by analyte, newest first. Evaluating a criterion is then lookups and float comparisons.
"""
from __future__ import annotations

import math

from ..analytes import catalogue
from ..codes import normalise_code
from ..derived import derive_all
from ..dates import DateProblem, parse_partial
from ..doses import read_dose
from ..errors import UnitProblem
from ..units import Conversion, parse_unit, written_step
from ..vocabulary import normalise_text  # noqa: F401 (re-exported: the one text normaliser)
from .model import Patient


class Obs:
    """One observation, its value already in the analyte's canonical unit."""

    __slots__ = ("code", "key", "value", "text", "dimension", "lo", "hi", "ref_low", "ref_high",
                 "unit", "to_canonical", "problem", "path", "display", "raw_value", "comparator", "ref_problem",
                 "resolution", "raw_ref", "derived", "value_high", "oldest")

    def __init__(self):
        self.value = None  # float in canonical unit, or None
        self.text = None  # normalised text value, or None
        self.dimension = None
        self.ref_low = self.ref_high = None
        self.unit = None
        self.to_canonical = None  # Conversion from the patient's unit to the canonical one
        self.problem = None  # why a numeric value cannot be used
        self.ref_problem = None  # {"low"|"high": why that limit of the reference range is not used}
        self.display = None
        self.comparator = None  # "<", "<=", ">", ">=": the value is a bound of an interval (FHIR comparator)
        self.resolution = 0.0  # half the unit of the last written digit, in the canonical unit
        # {"ULN": high, "LLN": low} as written, when the reference range is in the value's own unit and
        # that unit is converted with rounding: a multiple of a limit then compares in that unit
        self.raw_ref = None
        # a derived value (screening.derived): how it was made; the top of its interval when the age
        # is uncertain (value is then the bottom); the date of its oldest fresh input
        self.derived = None
        self.value_high = None
        self.oldest = None

    def copy_with_value(self, value: float) -> "Obs":
        """This observation with another value (one end of a derived interval)."""
        other = Obs()
        for name in Obs.__slots__:
            if hasattr(self, name):
                setattr(other, name, getattr(self, name))
        other.value = other.raw_value = value
        other.value_high = None
        return other

    def in_own_unit(self, canonical: float) -> float:
        """A canonical-unit value expressed in this observation's unit (for explanations)."""
        conv = self.to_canonical
        if conv is None or conv.factor == 0:
            return canonical
        return (canonical - conv.offset) / conv.factor  # reports format to 6 significant digits


class Series(list):
    """One analyte's observations, newest first. ``overlaps``: some partial dates overlap, so which
    result is the latest may be unknown (the evaluator then checks before trusting the first)."""

    __slots__ = ("overlaps",)


class Entry:
    """A condition, medication or procedure with its dates as ordinal ranges."""

    __slots__ = ("code", "codes", "display", "status", "start_lo", "start_hi", "end_lo", "end_hi", "attributes", "path",
                 "verification", "unreadable", "recorded", "dose")

    def field(self, name: str):
        if name == "display":
            return self.display
        if name == "status":
            return self.status
        return self.attributes.get(name)


class PatientRecord:
    """The indexed patient the evaluator reads. Build it with :func:`index_patient`."""

    __slots__ = ("id", "sex", "birth", "labs", "conditions", "medications", "procedures", "facts",
                 "source", "warnings", "allergies", "immunizations", "deceased", "derived", "mrn", "name")

    def describe(self) -> str:
        return f"{self.id} ({self.source})" if self.source else self.id


def written(number) -> str:
    """A JSON number in a message, as every engine shows it: as Python prints it, except an integer a double cannot
    hold (beyond 2**53), which the population store keeps as a double: the double's exact value, and from 10**38
    (no exact SQL integer holds it) its 15 significant digits (``%.15g``)."""
    if isinstance(number, int) and not isinstance(number, bool) and abs(number) > 2 ** 53:
        if abs(number) >= 10 ** 38:
            return "%.15g" % float(number)
        return str(int(float(number)))
    return str(number)


def _quoted(unit) -> str:
    """A unit as written, between single quotes (None when absent), as the SQL engines write it too."""
    return "None" if unit is None else f"'{unit}'"


def _lab_key(code: str) -> str:
    analyte = catalogue().for_code(code)
    return analyte.name if analyte else code


def _obs(index: int, model, warnings: list[str]) -> Obs:
    obs = Obs()
    obs.code = model.code
    obs.key = _lab_key(model.code)
    obs.path = f"$.observations[{index}]"
    obs.display = model.display
    obs.raw_value = model.value
    obs.comparator = model.comparator
    obs.lo, obs.hi = parse_partial(model.date) if model.date else (None, None)
    value = model.value
    score = catalogue().for_code(model.code)
    if score is not None and score.is_score:
        return _score_obs(obs, score, model, warnings)
    if isinstance(value, str):
        obs.text = normalise_text(value)
        return obs
    if isinstance(value, bool):
        obs.text = "positive" if value else "negative"
        return obs
    if value is None:
        obs.problem = "no value recorded"
        return obs
    obs.unit = model.unit
    analyte = catalogue().for_code(model.code)
    try:
        unit = parse_unit(model.unit or "1")
        if analyte is not None and analyte.unit_text:
            conv = analyte.conversion_from(unit)
            obs.dimension = analyte.unit.dimension
        else:
            conv = Conversion(unit.scale, unit.offset)
            obs.dimension = unit.dimension
    except UnitProblem as exc:
        obs.problem = f"{_quoted(model.unit)} cannot be used: {exc}"
        warnings.append(f"{obs.path}.unit: {exc}")
        return obs
    if value < 0 and analyte is not None and analyte.unit_text and not (unit.offset or analyte.unit.offset):
        # a concentration, count, rate or score below zero is an error in the record, not a result
        obs.problem = f"{written(value)} {model.unit or ''} is negative, which no {analyte.name} result can be".replace("  ", " ")
        warnings.append(f"{obs.path}.value: {obs.problem}; the result is not used")
        return obs
    obs.to_canonical = conv
    # converted at the precision it was written with (units.Conversion.apply_written)
    obs.value = conv.apply_written(value)
    obs.resolution = written_step(value) * abs(conv.factor) / 2
    if not math.isfinite(obs.value):  # a finite value that overflows in the analyte's unit
        obs.value = None
        obs.problem = f"{written(value)} {model.unit or ''} is out of range once converted".replace("  ", " ")
        warnings.append(f"{obs.path}.value: {obs.problem}")
        return obs
    rr = model.reference_range
    if rr is not None and (rr.low is not None or rr.high is not None):
        try:
            rconv = conv
            if rr.unit and rr.unit != model.unit:
                runit = parse_unit(rr.unit)
                rconv = analyte.conversion_from(runit) if analyte and analyte.unit_text else Conversion(runit.scale, runit.offset)
                if analyte is None and runit.dimension != obs.dimension:
                    raise UnitProblem(f"reference range unit {rr.unit!r} does not match value unit {model.unit!r}")
            obs.ref_low = rconv.apply_written(rr.low) if rr.low is not None else None
            obs.ref_high = rconv.apply_written(rr.high) if rr.high is not None else None
            if rconv == conv and not conv.exact:
                obs.raw_ref = {"ULN": rr.high, "LLN": rr.low}
        except UnitProblem as exc:
            warnings.append(f"{obs.path}.reference_range.unit: {exc}")
        else:
            _check_range(obs, rr, warnings)
    return obs


def _score_obs(obs: Obs, analyte, model, warnings: list[str]) -> Obs:
    """A score or class (ECOG, NYHA, Child-Pugh ...): a whole number on its scale, from a number or a
    text ("ECOG 1", "Class III", "B"); anything else is kept as text and is unknown to every test."""
    from ..scores import describe, on_scale, value_of

    value = model.value
    obs.dimension = analyte.unit.dimension
    obs.unit = model.unit
    obs.to_canonical = Conversion(1.0)
    answers = dict(analyte.answers)
    if model.value_code is not None and (model.value_code.startswith("LOINC:") or model.value_code in answers
                                         or model.value_code in analyte.unknown_answers):
        # a coded answer decides; its display text is never read in place of an answer code the catalogue
        # lacks (a SNOMED CT code it does not list leaves the text to be read, as without a code)
        code = model.value_code
        text_value = value_of(analyte, value) if isinstance(value, str) else None
        if isinstance(value, str):
            obs.text = normalise_text(value)
        if code in analyte.unknown_answers:
            obs.problem = f"recorded as not known ({code})"
            return obs
        if code not in answers:
            obs.problem = (f"answer code {code} is not one the catalogue knows for {analyte.display}; its display "
                           "text is not read in its place")
            return obs
        number = answers[code]
        if (text_value is not None and text_value != number) or (
                isinstance(value, (int, float)) and not isinstance(value, bool) and float(value) != number):
            obs.problem = f"the answer code {code} ({number:g}) and the value {value!r} disagree"
            warnings.append(f"{obs.path}: {obs.problem}")
            return obs
        obs.text = None
        obs.value = number
        obs.resolution = 0.5
        return obs
    if isinstance(value, str):
        number = value_of(analyte, value)
        if number is None:
            obs.text = normalise_text(value)
            obs.problem = (f"{value!r} is not read as a value of {analyte.display} "
                           f"({describe(analyte)}; a range or a description is not read)")
            return obs
        value = number
    elif isinstance(value, bool) or value is None:
        obs.problem = "no value recorded" if value is None else "true/false is not a score"
        return obs
    elif model.unit:
        try:
            analyte.conversion_from(parse_unit(model.unit))
        except UnitProblem as exc:
            obs.problem = f"{_quoted(model.unit)} cannot be used: {exc}"
            warnings.append(f"{obs.path}.unit: {exc}")
            return obs
    if not on_scale(analyte, value):
        obs.problem = f"{value:g} is not on the {analyte.display} scale ({describe(analyte)}, whole numbers)"
        warnings.append(f"{obs.path}.value: {obs.problem}")
        return obs
    obs.value = float(value)
    obs.resolution = 0.5
    return obs


def _check_range(obs: Obs, rr, warnings: list[str]) -> None:
    """Drop limits of normal that cannot be limits; say why on the Obs (and in a warning when the
    range itself is wrong). A multiple of a limit (``2 x ULN``) needs a positive, finite limit."""
    path = f"{obs.path}.reference_range"
    problems = {}
    if rr.low is not None and rr.high is not None and rr.low > rr.high:
        why = f"{path} runs backwards (low {written(rr.low)} > high {written(rr.high)})"
        problems = {"low": why, "high": why}
        warnings.append(f"{path}: runs backwards (low {written(rr.low)} > high {written(rr.high)}); the range is not used")
    else:
        for side, raw in (("low", rr.low), ("high", rr.high)):
            if raw is None:
                continue
            if raw < 0 or (raw == 0 and side == "high"):
                problems[side] = f"{path}.{side} is {written(raw)}, which cannot be a limit of normal"
                warnings.append(f"{path}.{side}: {written(raw)} cannot be a limit of normal; it is not used")
            elif raw == 0:  # "0 to 40" is common: no warning, but 0 is no lower limit to take a multiple of
                problems[side] = f"{path}.low is 0, which is no lower limit of normal"
    for side in problems:
        setattr(obs, "ref_low" if side == "low" else "ref_high", None)
    for side in ("low", "high"):
        limit = obs.ref_low if side == "low" else obs.ref_high
        if limit is not None and (limit == 0 or not math.isfinite(limit)):  # overflow or underflow in conversion
            setattr(obs, "ref_low" if side == "low" else "ref_high", None)
            problems[side] = f"{path}.{side} is out of range once converted"
            warnings.append(f"{path}.{side}: out of range once converted; it is not used")
    obs.ref_problem = problems or None
    if obs.raw_ref is not None:  # only the limits still in use
        obs.raw_ref = {"ULN": rr.high if obs.ref_high is not None else None,
                       "LLN": rr.low if obs.ref_low is not None else None}


def _entry(index: int, kind: str, model, start: str | None, end: str | None) -> Entry:
    entry = Entry()
    codes = ([model.code] if model.code else []) + [c for c in (model.codes or []) if c != model.code]
    entry.code = model.code or (codes[0] if codes else None)
    entry.codes = tuple(normalise_code(c) for c in codes)
    entry.display = model.display
    entry.status = model.status.lower() if model.status else None
    entry.start_lo, entry.start_hi = parse_partial(start) if start else (None, None)
    entry.end_lo, entry.end_hi = parse_partial(end) if end else (None, None)
    entry.attributes = {k: v for k, v in (model.model_extra or {}).items()}
    for name in ("route", "response", "result", "criticality", "category", "verification", "investigational",
                 "caused_by"):
        value = getattr(model, name, None)
        if value is not None:
            entry.attributes[name] = value
    entry.path = f"$.{kind}[{index}]"
    verification = (model.verification or "").strip().lower()
    entry.verification = verification if verification and verification != "confirmed" else None
    entry.unreadable = model.unreadable
    entry.recorded = _recorded(entry.attributes.get("recorded_date"))
    entry.dose = read_dose(model, entry.path) if kind == "medications" else None
    return entry


def _recorded(text) -> tuple[int | None, int | None]:
    """The (partial) date a record was recorded (extra field ``recorded_date``), as an ordinal range."""
    if not isinstance(text, str):
        return None, None
    try:
        return parse_partial(text)
    except DateProblem:  # not a date: as if absent (the record's date is then unknown)
        return None, None


def index_patient(model: Patient, source: str = "") -> PatientRecord:
    """Turn a validated :class:`Patient` into a :class:`PatientRecord` (all conversions happen here)."""
    record = PatientRecord()
    record.id = model.id
    record.mrn, record.name = model.mrn, model.name
    record.sex = model.sex
    record.birth = parse_partial(model.birth_date) if model.birth_date else None
    record.source = source
    record.warnings = []
    labs: dict[str, Series] = {}
    for i, obs_model in enumerate(model.observations or ()):
        obs = _obs(i, obs_model, record.warnings)
        labs.setdefault(obs.key, Series()).append(obs)
    for series in labs.values():
        series.sort(key=lambda o: (o.hi if o.hi is not None else -1, o.lo or -1), reverse=True)
        series.overlaps = any(b.hi is not None and a.lo is not None and b.hi >= a.lo
                              for a, b in zip(series, series[1:]))
    record.labs = labs if model.observations is not None else None
    record.conditions = (None if model.conditions is None else
                         [_entry(i, "conditions", m, m.onset, m.end) for i, m in enumerate(model.conditions)])
    record.medications = (None if model.medications is None else
                          [_entry(i, "medications", m, m.start, m.end) for i, m in enumerate(model.medications)])
    record.procedures = (None if model.procedures is None else
                         [_entry(i, "procedures", m, m.date, m.end or m.date) for i, m in enumerate(model.procedures)])
    record.allergies = (None if model.allergies is None else
                        [_entry(i, "allergies", m, m.onset, m.end) for i, m in enumerate(model.allergies)])
    record.immunizations = (None if model.immunizations is None else
                            [_entry(i, "immunizations", m, m.date, m.date) for i, m in enumerate(model.immunizations)])
    # date of death as an ordinal range, True (deceased, date unknown) or None (not recorded as deceased)
    deceased = model.deceased
    record.deceased = parse_partial(deceased) if isinstance(deceased, str) else (True if deceased is True else None)
    record.facts = dict(model.facts) if model.facts is not None else None
    record.derived = derive_all(record)  # BMI, creatinine clearance, eGFR, corrected calcium from their inputs
    return record
