"""Medication doses: the amount per administration and the daily total, in canonical units.

A medication record may carry ``dose`` ({value, unit}: the amount given each time),
``frequency`` (administrations per day, or FHIR timing {frequency, period, period_unit}) and
``daily_dose`` ({value, unit} with a unit per time, e.g. mg/d). The loader computes, once per
patient, the dose in mg and the daily total in mg/day (``daily_dose`` as recorded, else dose times
frequency); a rule's threshold is converted to the same unit at compile time. Whatever cannot be
computed (no frequency, a dose per kilogram or per m2, a unit that is not a mass, an as-needed
order, a daily dose that disagrees with dose x frequency) is kept as a named problem: the test is
unknown, never false and never true.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from .errors import UnitProblem
from .units import Conversion, parse_unit, snap_value, written_step

MASS = "[mass]"
MASS_PER_TIME = "[mass].[time]^-1"
# FHIR Timing.repeat.periodUnit -> days; a month or a year has no exact length in days, so a
# monthly or yearly schedule gives no daily total (unknown, named)
PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0}
_PER_BODY = ("/kg", "/m2", "/m^2", "/m²", "/[sq_m]", "/bsa")


@dataclass(frozen=True)
class Dose:
    """One medication record's dose, read at load time: values in mg and mg/day (None when unknown)."""

    per_dose: float | None  # mg per administration
    per_dose_resolution: float
    daily: float | None  # mg per day
    daily_resolution: float
    per_dose_problem: str | None
    daily_problem: str | None
    shown: str  # as recorded, for explanations ("5 mg twice a day")


def unit_kind(text: str) -> tuple[str | None, Conversion | None, str | None]:
    """('dose'|'daily', conversion to mg or mg/day, problem) for a unit written in a rule or a record."""
    lowered = text.replace(" ", "").lower()
    if any(marker in lowered for marker in _PER_BODY):
        return None, None, (f"{text!r} is a dose per body weight or body surface area, which needs the "
                            "patient's weight or BSA (not computed)")
    try:
        unit = parse_unit(text)
    except UnitProblem as exc:
        return None, None, f"{text!r} cannot be used: {exc}"
    if unit.dimension == MASS:
        return "dose", Conversion(unit.scale / parse_unit("mg").scale), None
    if unit.dimension == MASS_PER_TIME:
        return "daily", Conversion(unit.scale / parse_unit("mg/d").scale), None
    return None, None, (f"{text!r} is not a mass (mg, g, ug) or a mass per time (mg/d, mg/day); "
                        "doses in other units are not compared")


def _amount(quantity, want: str, path: str) -> tuple[float | None, float, str | None]:
    if quantity is None:
        return None, 0.0, None
    if quantity.unit is None:
        return None, 0.0, f"{path} has no unit"
    kind, conv, problem = unit_kind(quantity.unit)
    if problem:
        return None, 0.0, f"{path} {problem}"
    if kind != want:
        need = "a mass (mg)" if want == "dose" else "a mass per time (mg/d)"
        return None, 0.0, f"{path} unit {quantity.unit!r} is not {need}"
    if quantity.value < 0:
        return None, 0.0, f"{path} is negative"
    # exact conversion (snapped to 12 significant digits), not rounded to the written precision: dose
    # units differ by powers of ten or by a time factor (1/7 for a week), and a dose threshold in the
    # patient's own unit must compare as written (15 mg/wk is not "more than 14.8 mg/wk" only once rounded)
    value = conv.apply(quantity.value)
    return value, written_step(quantity.value) * conv.factor / 2, None


def per_day(frequency) -> tuple[float | None, str | None]:
    """Administrations per day from ``frequency`` (a number per day or {frequency, period, period_unit})."""
    if frequency is None:
        return None, "frequency not recorded"
    if isinstance(frequency, (int, float)):
        return float(frequency), None
    if frequency.as_needed:
        return None, "taken as needed: no daily total"
    count = frequency.frequency if frequency.frequency is not None else 1
    period = frequency.period if frequency.period is not None else 1
    unit = frequency.period_unit or "d"
    if unit not in PERIOD_DAYS:
        return None, f"a schedule per {unit!r} has no exact daily total"
    if period <= 0:
        return None, "frequency period is not positive"
    days = period * PERIOD_DAYS[unit]
    daily = count / days if days > 0 else math.inf
    if not math.isfinite(daily) or daily == 0:  # 5e-324 h, 1e308 wk: beyond what a double holds
        return None, f"frequency {count} per {period:g} {unit} has no daily total a number can hold"
    return snap_value(daily), None


def read_dose(model, path: str) -> Dose | None:
    """The :class:`Dose` of a medication model (None when it records no dose at all)."""
    dose, daily, frequency = model.dose, model.daily_dose, model.frequency
    if dose is None and daily is None:
        return None
    per_dose, per_res, per_problem = _amount(dose, "dose", f"{path}.dose")
    if dose is None:
        per_problem = "dose per administration not recorded"
    recorded, rec_res, daily_problem = _amount(daily, "daily", f"{path}.daily_dose")
    computed = None
    comp_res = 0.0
    comp_problem = None
    if per_dose is not None:
        times, comp_problem = per_day(frequency)
        if times is not None:
            computed = snap_value(per_dose * times)
            comp_res = per_res * times
    elif dose is not None:
        comp_problem = per_problem
    if daily is not None:
        total, total_res = recorded, rec_res
        if recorded is not None and computed is not None and abs(recorded - computed) > rec_res + comp_res + 1e-9 * max(
                abs(recorded), 1):
            total, daily_problem = None, (f"daily dose {recorded:g} mg/day disagrees with dose x frequency "
                                          f"{computed:g} mg/day")
    else:
        total, total_res, daily_problem = computed, comp_res, comp_problem
    if total is not None and not math.isfinite(total):
        total, daily_problem = None, "daily dose out of range"
    parts = []
    if dose is not None:
        parts.append(f"{dose.value:g} {dose.unit or ''}".strip())
        if frequency is not None:
            parts.append(_show_frequency(frequency))
    if daily is not None:
        parts.append(f"{daily.value:g} {daily.unit or ''}".strip() + " daily")
    return Dose(per_dose, per_res, total, total_res, per_problem, daily_problem, ", ".join(parts))


def _show_frequency(frequency) -> str:
    if isinstance(frequency, (int, float)):
        return f"{frequency:g} times a day"
    if frequency.as_needed:
        return "as needed"
    unit = _UNIT_WORDS.get(frequency.period_unit or "d", frequency.period_unit)
    every = unit if (frequency.period or 1) == 1 else f"{frequency.period:g} {unit}s"
    return f"{frequency.frequency or 1:g} times per {every}"


_UNIT_WORDS = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year"}


@dataclass(frozen=True)
class EquivalentDrug:
    """A drug of an equivalence group: ``low``-``high`` mg of it equal the group's common dose."""

    name: str
    group: str
    low: float
    high: float
    codes: tuple[str, ...]


@lru_cache(maxsize=1)
def equivalents() -> dict[str, EquivalentDrug]:
    """Drug name -> its entry in screening/data/dose_equivalents.toml (read once)."""
    text = resources.files("screening.data").joinpath("dose_equivalents.toml").read_text(encoding="utf-8")
    table = {}
    for group, body in tomllib.loads(text).items():
        for name, drug in body["drugs"].items():
            dose = drug["dose"]
            low, high = (float(dose[0]), float(dose[1])) if isinstance(dose, list) else (float(dose), float(dose))
            table[name] = EquivalentDrug(name, group, low, high, tuple(drug["codes"]))
    return table
