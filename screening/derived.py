"""Derived values: BMI, creatinine clearance (Cockcroft-Gault), eGFR (CKD-EPI 2021) and corrected
calcium (Payne), computed from a patient's other results when no measured value is in the window.

The derivations belong to the analyte catalogue: ``BMI >= 30 kg/m2``, ``creatinine_clearance >= 60
mL/min``, ``eGFR >= 60 mL/min/1.73m2`` and ``corrected_calcium <= 10.5 mg/dL`` are ordinary lab tests.
A measured result in the test's window always wins; only when there is none does the test read the
derived series built here, once, when the patient is loaded (docs/semantics.md#derived-values).

The rule for "close enough in time": a derived value exists on each date D on which one of its
inputs was measured; each input is the latest result on or before D within that input's limit
(``fresh`` inputs: 30 days, calcium and albumin: the same day; height: 30 days, or any height taken
when the patient was surely an adult). Age is the age in whole years on D. The derived value is
dated D, and it is inside a window only when every fresh input is (so a 20-day-old creatinine does
not become a "within 14 days" eGFR). Values are computed in the catalogue units from the inputs'
canonical values, never rounded; the threshold is compared with the unrounded value.

Missing or unusable inputs never disappear: a date on which an input exists but another input,
the sex or the birth date is missing, or an input is unusable (a text, a bound such as "< 0.5",
a partial date), becomes a derived result with no value and a problem naming what is missing, so
the test is unknown, never a confident pass. A partial birth date gives an age range; the derived
value is then an interval (``value`` to ``value_high``) and a threshold inside it is unknown.
"""
from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

from .dates import show, whole_years

ADULT_YEARS = 18


@dataclass(frozen=True)
class Input:
    key: str  # the analyte read (catalogue name)
    days: int  # latest result on or before D, at most this many days before D
    adult_any_time: bool = False  # or any earlier result taken when the patient was surely an adult
    fresh: bool = True  # the derived value is inside a window only when this input is


@dataclass(frozen=True)
class Derivation:
    key: str  # the analyte derived
    method: str  # how reports name the formula
    inputs: tuple[Input, ...]
    needs_age: bool
    needs_sex: bool
    adults_only: bool
    formula: object  # f(values: dict[key, float], age: int | None, sex: str | None) -> float
    plausible: tuple[float, float] = (0.0, math.inf)  # a value outside says the inputs are wrong, not the patient


def _bmi(v, age, sex):
    metres = v["height"] / 100.0
    return v["weight"] / (metres * metres)


def _cockcroft_gault(v, age, sex):
    # (140 - age) x weight (kg, actual body weight) [x 0.85 female] / (72 x serum creatinine mg/dL)
    return (140 - age) * v["weight"] * (0.85 if sex == "female" else 1.0) / (72.0 * v["creatinine"])


def _ckd_epi_2021(v, age, sex):
    # Inker et al., NEJM 2021 (race-free): 142 x min(Scr/k,1)^a x max(Scr/k,1)^-1.200 x 0.9938^age [x 1.012 F]
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = v["creatinine"] / kappa
    return (142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.200 * 0.9938 ** age
            * (1.012 if sex == "female" else 1.0))


def _payne(v, age, sex):
    # Payne et al., BMJ 1973: calcium (mg/dL) + 0.8 x (4.0 - albumin g/dL)
    return v["calcium"] + 0.8 * (4.0 - v["albumin"])


DERIVATIONS: dict[str, Derivation] = {d.key: d for d in (
    Derivation("BMI", "weight / height^2", (Input("weight", 30), Input("height", 30, adult_any_time=True, fresh=False)),
               needs_age=False, needs_sex=False, adults_only=False, formula=_bmi, plausible=(5.0, 150.0)),
    Derivation("creatinine_clearance", "Cockcroft-Gault, actual body weight",
               (Input("creatinine", 30), Input("weight", 30)),
               needs_age=True, needs_sex=True, adults_only=True, formula=_cockcroft_gault, plausible=(0.0, 400.0)),
    Derivation("eGFR", "CKD-EPI 2021", (Input("creatinine", 30),),
               needs_age=True, needs_sex=True, adults_only=True, formula=_ckd_epi_2021, plausible=(0.0, 250.0)),
    Derivation("corrected_calcium", "Payne: calcium + 0.8 x (4.0 - albumin g/dL)",
               (Input("calcium", 0), Input("albumin", 0)),
               needs_age=False, needs_sex=False, adults_only=False, formula=_payne, plausible=(1.0, 30.0)),
)}


class Derived:
    """How a derived result was made: the method, the inputs (analyte, Obs) and the age used."""

    __slots__ = ("method", "inputs", "ages", "sex")

    def __init__(self, method, inputs, ages, sex):
        self.method, self.inputs, self.ages, self.sex = method, inputs, ages, sex


def derive_all(record) -> dict:
    """The derived series of every derivation whose inputs the patient has (analyte -> Series)."""
    from .patient.record import Series

    out = {}
    labs = record.labs
    if not labs:
        return out
    for derivation in DERIVATIONS.values():
        if not any(labs.get(i.key) for i in derivation.inputs):
            continue
        found = _derive(derivation, record)
        if found:
            series = Series(found)
            series.sort(key=lambda o: (o.hi if o.hi is not None else -1, o.lo or -1), reverse=True)
            series.overlaps = any(b.hi is not None and a.lo is not None and b.hi >= a.lo
                                  for a, b in zip(series, series[1:]))
            out[derivation.key] = series
    return out


def _usable(obs) -> bool:
    return obs.value is not None and obs.comparator is None and obs.lo is not None and obs.lo == obs.hi


def _why_unusable(obs) -> str:
    if obs.lo is None:
        return "undated"
    if obs.lo != obs.hi:
        return f"dated only {show(obs.lo, obs.hi)}"
    if obs.comparator is not None and obs.value is not None:
        return f"reported only as a bound ({obs.comparator} {obs.in_own_unit(obs.value):.6g} {obs.unit or ''})".rstrip(")").rstrip() + ")"
    return obs.problem or "not a number"


def _surely_adult_on(record, day: int) -> bool:
    birth = record.birth
    return birth is not None and birth[1] <= day and whole_years(birth[1], day) >= ADULT_YEARS


def _pick(record, spec: Input, day: int, order: dict):
    """The input for a derived value on ``day``: (obs, None), or (None, what is missing)."""
    series = record.labs.get(spec.key) or ()
    keys = order.get(spec.key)
    if keys is None:  # the series is newest first: -hi ascending, so a bisection finds the first on or before D
        keys = order[spec.key] = [-(o.hi if o.hi is not None else -1) for o in series]
    for obs in itertools.islice(series, bisect.bisect_left(keys, -day), None):
        if obs.hi is None or obs.lo > day:
            continue
        if obs.hi > day:  # a partial date that may be after D
            continue
        close = day - obs.hi <= spec.days or (spec.adult_any_time and _surely_adult_on(record, obs.lo))
        if not close:
            break
        if not _usable(obs):
            return obs, f"{spec.key} result of {show(obs.lo, obs.hi)} cannot be used: {_why_unusable(obs)}"
        return obs, None
    limit = "on the same day" if spec.days == 0 else f"within {spec.days} days before"
    extra = " (or any height taken as an adult)" if spec.adult_any_time else ""
    return None, f"no {spec.key} result {limit}{extra}"


def _derive(derivation: Derivation, record) -> list:
    from .analytes import catalogue
    from .patient.record import Obs

    analyte = catalogue().lookup(derivation.key)
    days: set[tuple[int, int]] = set()
    for spec in derivation.inputs:
        for obs in record.labs.get(spec.key) or ():
            if obs.lo is not None:
                days.add((obs.lo, obs.hi))
    made, seen_inputs, order = [], set(), {}
    for lo, hi in sorted(days):
        obs = Obs()
        obs.key = obs.code = derivation.key
        obs.path = f"derived {derivation.key}"
        obs.unit = analyte.unit_text
        obs.dimension = analyte.unit.dimension
        obs.lo, obs.hi = lo, hi
        obs.value_high = None
        obs.raw_value = None  # set with the value; a derived result with a problem has none
        obs.oldest = lo
        problems, picked = [], []
        if lo != hi:  # an input dated only to a month or year: used for nothing, but named
            problems.append(f"an input is dated only {show(lo, hi)}")
        else:
            for index, spec in enumerate(derivation.inputs):
                found, problem = _pick(record, spec, lo, order)
                if index == 0 and found is None:
                    break  # no primary input on D (a new weight alone does not void an older clearance)
                if problem:
                    problems.append(problem)
                else:
                    picked.append((spec, found))
        if lo == hi and not picked and not problems:
            continue
        ages = None
        sex = record.sex
        if derivation.needs_sex and sex not in ("female", "male"):
            problems.append("sex not recorded" if sex in (None, "unknown") else f"sex {sex}: the formula needs female or male")
        if derivation.needs_age or derivation.adults_only:
            birth = record.birth
            if birth is None:
                problems.append("birth_date not recorded")
            elif birth[0] > lo:
                problems.append(f"birth_date {show(*birth)} is after the result")
            else:
                ages = (whole_years(min(birth[1], lo), lo), whole_years(birth[0], lo))
                if derivation.adults_only and ages[0] < ADULT_YEARS:
                    problems.append(f"{derivation.method} is for adults; age on {show(lo, hi)} is "
                                    f"{ages[0] if ages[0] == ages[1] else f'{ages[0]} to {ages[1]}'}")
        if not problems:
            identity = tuple(id(o) for _, o in picked)
            if identity in seen_inputs:
                continue  # the same inputs as an earlier date: no new value
            seen_inputs.add(identity)
            values = {spec.key: o.value for spec, o in picked}
            try:
                results = sorted(derivation.formula(values, age, sex) for age in sorted(set(ages or (None,))))
            except (ZeroDivisionError, OverflowError, ValueError):  # a height or creatinine of 0
                results = [math.nan]
            low, high = derivation.plausible
            if not all(math.isfinite(r) and r >= 0 for r in results):
                problems.append(f"{derivation.method} gives no value for these inputs")
            elif not all(low <= r <= high for r in results):
                # a creatinine of 1e-300 mg/dL is an error in the record: its "eGFR" decides nothing
                shown = ", ".join(f"{r:.4g}" for r in results)
                problems.append(f"{derivation.method} gives {shown}, outside {low:g} to {high:g} {analyte.unit_text}: "
                                f"the inputs cannot be right")
            else:
                obs.value = obs.raw_value = results[0]
                if len(results) > 1 and results[-1] != results[0]:
                    obs.value_high = results[-1]
                fresh = [o.lo for spec, o in picked if spec.fresh]
                obs.oldest = min(fresh) if fresh else lo
        if problems:
            obs.problem = f"cannot derive by {derivation.method}: " + "; ".join(problems)
        obs.derived = Derived(derivation.method, tuple((spec.key, o) for spec, o in picked), ages, sex)
        made.append(obs)
    return made


def describe(obs) -> str:
    """``derived by CKD-EPI 2021 from creatinine 0.9 mg/dL on 2026-11-18, age 45, female``."""
    how = obs.derived
    parts = []
    for key, o in how.inputs:
        unit = f" {o.unit}" if o.unit else ""
        parts.append(f"{key} {o.in_own_unit(o.value):.6g}{unit} on {show(o.lo, o.hi)}")
    if how.ages is not None and DERIVATIONS[obs.key].needs_age:
        young, old = how.ages
        parts.append(f"age {young}" if young == old else f"age {young} to {old} (birth date not exact)")
    if DERIVATIONS[obs.key].needs_sex and how.sex in ("female", "male"):
        parts.append(how.sex)
    return f"derived by {how.method} from " + ", ".join(parts)


def usable_in(obs, start: int, end: int) -> bool:
    """A derived result at the as-of date ``end`` in a window from ``start``: made only from inputs on
    or before ``end``, and every fresh input inside the window."""
    return obs.hi <= end and obs.oldest >= start


def series_for(patient, key: str, measured, start: int, end: int):
    """The results a test of ``key`` reads: the measured ones when any is in the window, else the
    derived ones (those usable in the window). Returns (series, derived?)."""
    if measured:
        for obs in measured:
            if obs.lo is None or obs.lo > end:
                continue
            if obs.hi >= start:
                return measured, False
            break
    derived = (getattr(patient, "derived", None) or {}).get(key)
    if not derived:
        return measured, False
    from .patient.record import Series

    kept = Series(o for o in derived if usable_in(o, start, end))
    kept.overlaps = derived.overlaps
    if not kept:
        return measured, False
    return kept, True


def missing_inputs(key: str) -> str:
    """``or creatinine, birth date and sex to derive it (CKD-EPI 2021)``."""
    derivation = DERIVATIONS[key]
    names = [i.key for i in derivation.inputs]
    if derivation.needs_age:
        names.append("birth date")
    if derivation.needs_sex:
        names.append("sex")
    listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
    return f" (or {listed} to derive it by {derivation.method})"
