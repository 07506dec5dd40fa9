"""A hand-written single-process Python screener of benchmarks/bench_rules.crit over NDJSON: the issue's
"hand-written Python screener" baseline, written the way an analyst would write it.

Each line is read with ``json.loads`` and the 20 criteria are applied to the dict: units converted with
if/else on the spellings the population uses, the latest result of each analyte in its window, Kleene
logic with None for unknown. It makes the simplifications handwritten_bench.sql makes (no written-precision
rule, no partial-date ties, no derived eGFR/BMI, no comparators, no terminology), so its decisions differ
from the engine's on some patients; benchmarks/population_engines.py prints how many.

    python benchmarks/handwritten_screener.py POPULATION.ndjson    # prints the decision counts and the time
"""
from __future__ import annotations

import calendar
import json
import sys
import time
from datetime import date

AS_OF = date(2026, 11, 25)

ANALYTE = {}
for _name, _codes in (("ALT", ("1742-6", "1743-4", "76625-3")), ("AST", ("1920-8", "30239-8")),
                      ("bili", ("1975-2", "14631-6")), ("creat", ("2160-0", "38483-4")), ("plt", ("777-3", "26515-7")),
                      ("wbc", ("6690-2", "26464-8")), ("anc", ("751-8", "26499-4")), ("hgb", ("718-7",)),
                      ("a1c", ("4548-4", "17856-6")), ("egfr", ("33914-3", "62238-1", "98979-8")), ("bmi", ("39156-5",)),
                      ("sbp", ("8480-6",))):
    for _code in _codes:
        ANALYTE["LOINC:" + _code] = _name
SAME = frozenset({"U/L", "IU/L", "mg/dL", "10^9/L", "10*3/uL", "g/dL", "%", "mL/min/1.73m2", "mL/min/{1.73_m2}",
                  "kg/m2", "mmHg", "mm[Hg]"})
FALLBACK_ULN = {"ALT": 56.0, "AST": 40.0, "bili": 20.5 / 17.104}


def _months_back(day: date, months: int) -> int:
    month = day.month - months
    year = day.year + (month - 1) // 12
    month = (month - 1) % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1])).toordinal()


END = AS_OF.toordinal()
M3, M6, M12, Y5 = (_months_back(AS_OF, m) for m in (3, 6, 12, 60))
WINDOW = {3: M3, 6: M6, 12: M12}


def _span(text):
    """A partial date as (first day, last day) ordinals; None for no date or one that cannot be read."""
    if not isinstance(text, str):
        return None
    try:
        if len(text) == 4:
            year = int(text)
            return date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            return date(year, month, 1).toordinal(), date(year, month, calendar.monthrange(year, month)[1]).toordinal()
        day = date.fromisoformat(text[:10]).toordinal()
        return day, day
    except ValueError:
        return None


def _convert(value, unit, code):
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if unit == "umol/L":
        return value / 88.4016 if ANALYTE.get(code) == "creat" else value / 17.104
    if unit in ("/mm3", "cells/mm3"):
        return value / 1000
    if unit == "g/L":
        return value / 10
    if unit == "mmol/mol":
        return 0.09148 * value + 2.152
    if unit == "ukat/L":
        return value * 60
    return value if unit in SAME else None


def _uln(ref, unit, code):
    if not isinstance(ref, dict):
        return None
    high = ref.get("high")
    if not isinstance(high, (int, float)) or isinstance(high, bool):
        return None
    ref_unit = ref.get("unit") or unit
    if ref_unit == "umol/L":
        return high / 88.4016 if ANALYTE.get(code) == "creat" else high / 17.104
    if ref_unit == "ukat/L":
        return high * 60
    return high if high > 0 else None


def _codes(record) -> list:
    codes = [record.get("code")]
    more = record.get("codes")
    if isinstance(more, list):
        codes += more
    return [c for c in codes if isinstance(c, str)]


def _in_set(codes, test):
    """A medication in a value set listing ATC classes and RxNorm codes: an ATC code decides; a record coded
    only in RxNorm that matches no listed code may be a product of a listed ingredient (no terminology here)."""
    if any(test(c) for c in codes):
        return True
    if any(c.startswith("ATC:") for c in codes):
        return False
    return None if any(c.startswith("RXNORM:") for c in codes) else False


def _ckd_epi(creatinine, sex, age):
    """eGFR (CKD-EPI 2021) from creatinine in mg/dL, when no eGFR was measured."""
    if creatinine is None or creatinine <= 0 or age is None or sex not in ("female", "male"):
        return None
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = creatinine / kappa
    value = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938 ** age
    return value * 1.012 if sex == "female" else value


def _any(values):
    """Kleene or."""
    unknown = False
    for v in values:
        if v is True:
            return True
        if v is None:
            unknown = True
    return None if unknown else False


def _all(values):
    """Kleene and."""
    unknown = False
    for v in values:
        if v is False:
            return False
        if v is None:
            unknown = True
    return None if unknown else True


def _not(v):
    return None if v is None else not v


def _cmp(x, test):
    return None if x is None else test(x)


def screen(doc: dict) -> str:
    """The decision for one patient document (eligible, ineligible or undetermined)."""
    latest: dict = {}   # (analyte, months) -> (hi, x, uln)
    sbp_n = [0, 0, 0]  # results in the window with a value, those >= 160 mmHg, those without a usable value
    wbc_n = [0, 0, 0]  # the same for WBC < 3 x 10^9/L
    egfr_n = [0, 0, 0]  # and eGFR < 30
    observations = doc.get("observations")
    for o in observations if isinstance(observations, list) else ():
        a = ANALYTE.get(o.get("code"))
        if a is None:
            continue
        span = _span(o.get("date"))
        if span is None or span[1] > END:
            continue
        lo, hi = span
        x = _convert(o.get("value"), o.get("unit"), o.get("code"))
        if a == "sbp":
            if lo >= M6:
                _count(sbp_n, x, x is not None and x >= 160)
            continue
        if a == "wbc" and lo >= M12:
            _count(wbc_n, x, x is not None and x < 3)
        if a == "egfr" and lo >= M12:
            _count(egfr_n, x, x is not None and x < 30)
        uln = _uln(o.get("reference_range"), o.get("unit"), o.get("code"))
        for months, start in WINDOW.items():
            if lo >= start:
                key = (a, months)
                if key not in latest or hi > latest[key][0]:
                    latest[key] = (hi, x, uln)

    def lab(a, months=12):
        found = latest.get((a, months))
        return (None, None) if found is None else found[1:]

    facts = doc.get("facts") if isinstance(doc.get("facts"), dict) else {}

    def fact(name, kind=bool):
        v = facts.get(name)
        if kind is bool:
            return v if isinstance(v, bool) else None
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    sex = doc.get("sex")
    birth = _span(doc.get("birth_date"))
    age = None
    if birth is not None:
        born = date.fromordinal((birth[0] + birth[1]) // 2)  # a partial birth date: its middle
        age = AS_OF.year - born.year - ((AS_OF.month, AS_OF.day) < (born.month, born.day))

    conditions, medications, procedures = doc.get("conditions"), doc.get("medications"), doc.get("procedures")
    has_c, has_m, has_p = (isinstance(x, list) for x in (conditions, medications, procedures))
    t2d = t1d = malignancy = hf = acs = gilbert = False
    for c in conditions if has_c else ():
        codes = _codes(c)
        status = (c.get("status") or "").lower() if isinstance(c.get("status"), str) else ""
        active = status in ("", "active", "recurrence", "relapse")
        for code in codes:
            flat = code.replace(".", "")
            if flat.startswith("ICD10:E11") or code == "SNOMED:44054006":
                t2d = True
            if flat.startswith("ICD10:E10") or code == "SNOMED:46635009":
                t1d = True
            if (flat.startswith("ICD10:") and "C00" <= flat[6:9] <= "C96") or flat.startswith("ICD10:D45") \
                    or code in ("SNOMED:363346000", "SNOMED:254637007"):
                end = _span(c.get("end"))
                malignancy = malignancy or active or (end is not None and end[1] >= Y5)
            if active and (flat.startswith(("ICD10:I50", "ICD10:I110")) or code == "SNOMED:84114007"):
                hf = True
            if flat.startswith(("ICD10:I200", "ICD10:I21", "ICD10:I22")) or code in ("SNOMED:394659003",
                                                                                      "SNOMED:22298006"):
                onset = _span(c.get("onset"))
                acs = acs or (onset is not None and onset[0] >= M6)
            if flat.startswith("ICD10:E804") or code == "SNOMED:27503000":
                gilbert = True
    insulins, anticoags = [], []
    for m in medications if has_m else ():
        codes = _codes(m)
        status = m.get("status").lower() if isinstance(m.get("status"), str) else None
        member = _in_set(codes, lambda c: c.startswith("ATC:A10A") or c == "RXNORM:5856")
        if member is not False:
            end = _span(m.get("end"))
            if end is not None:
                recent = True if end[0] >= M3 else (None if end[1] >= M3 else False)
            else:
                recent = None if status in ("completed", "stopped") else True
            insulins.append(_all([member, recent]))
        member = _in_set(codes, lambda c: c.startswith(("ATC:B01AA", "ATC:B01AF")) or c in ("RXNORM:11289",
                                                                                           "RXNORM:1364430"))
        if member is not False:
            route = m.get("route")
            anticoags.append(_all([member, isinstance(route, str) and route.lower() == "oral",
                                   status is None or status == "active"]))
    insulin, anticoag = _any(insulins), _any(anticoags)
    revasc = False
    for p in procedures if has_p else ():
        if p.get("code") in ("CPT:33533", "CPT:92928", "SNOMED:232717009"):
            day = _span(p.get("date"))
            revasc = revasc or (day is not None and day[0] >= M6)

    a1c3, _ = lab("a1c", 3)
    a1c, _ = lab("a1c")
    creat, creat_uln = lab("creat")
    egfr, _ = lab("egfr")
    plt, _ = lab("plt", 6)
    anc, _ = lab("anc")
    hgb, _ = lab("hgb")
    alt, alt_uln = lab("ALT")
    ast, ast_uln = lab("AST")
    bili, bili_uln = lab("bili")
    bmi, _ = lab("bmi")
    if egfr is None:
        egfr = _ckd_epi(creat, sex, age)
    if creat_uln is None:
        creat_uln = {"female": 90 / 88.4016, "male": 110 / 88.4016}.get(sex, 1.2)
    inclusions = (
        _cmp(age, lambda v: 18 <= v <= 75),
        (t2d and not t1d) if has_c else None,
        _cmp(a1c3, lambda v: 7.00044 <= v <= 10.4767),
        _any([_cmp(creat, lambda v: v <= 1.5), _cmp(creat, lambda v: v <= 1.2 * creat_uln),
              _cmp(egfr, lambda v: v >= 45)]),
        _cmp(plt, lambda v: v >= 100),
        _all([_cmp(anc, lambda v: v >= 1.5), _cmp(hgb, lambda v: v >= 9)]),
        fact("informed_consent"),
        _applies(_all([None if sex is None else sex == "female", _cmp(age, lambda v: v < 50)]),
                 _not(fact("pregnant"))),
    )
    bili_limit = bili_uln if bili_uln is not None else FALLBACK_ULN["bili"]
    exclusions = (
        _all([malignancy if has_c else None, _not(fact("malignancy_curatively_treated"))]),
        _any([_cmp(alt, lambda v: v > 2.5 * (alt_uln if alt_uln is not None else 56)),
              _cmp(ast, lambda v: v > 2.5 * (ast_uln if ast_uln is not None else 40))]),
        (_cmp(bili, lambda v: v > (3 if gilbert else 1.5) * bili_limit) if has_c else
         _same(_cmp(bili, lambda v: v > 3 * bili_limit), _cmp(bili, lambda v: v > 1.5 * bili_limit))),
        (hf or acs) if has_c else None,
        _occasions(sbp_n, 2),
        _cmp(bmi, lambda v: v >= 40),
        insulin if has_m else None,
        _risk_factors(bmi, a1c, _occasions(sbp_n, 2), fact("smoker"), _occasions(egfr_n, 1)),
        _occasions(wbc_n, 2),
        anticoag if has_m else None,
        revasc if has_p else None,
        _cmp(fact("ecog", float), lambda v: v > 1),
    )
    if any(v is False for v in inclusions) or any(v is True for v in exclusions):
        return "ineligible"
    if all(v is True for v in inclusions) and all(v is False for v in exclusions):
        return "eligible"
    return "undetermined"


def _count(counts, x, hit):
    if x is None:
        counts[2] += 1
    else:
        counts[0] += 1
        counts[1] += hit


def _applies(condition, body):
    """`applies if C: B`: true when C is false; B when C holds; when C is unknown, true only if B is."""
    if condition is False:
        return True
    return body if condition is True else (True if body is True else None)


def _same(a, b):
    """if/then/else with an unknown condition: the branches' value when they agree."""
    return a if a is b else None


def _occasions(counts, need):
    """At least ``need`` results meet the test: unknown with no result, with a result whose value cannot be
    used, or with a hit that needs a repeat."""
    seen, hits, unusable = counts
    if hits >= need:
        return True
    return None if seen == 0 or unusable or (hits and seen < need) else False


def _risk_factors(bmi, a1c, hypertension, smoker, low_egfr):
    """E8, at least 2 of 5 (Kleene: true when 2 are true, false when at most 1 can be)."""
    values = [_cmp(bmi, lambda v: v >= 35), _cmp(a1c, lambda v: v >= 9.5), hypertension, smoker, low_egfr]
    true = sum(v is True for v in values)
    unknown = sum(v is None for v in values)
    return True if true >= 2 else (False if true + unknown < 2 else None)


def screen_file(path) -> dict:
    """patient id -> decision, for every line of an NDJSON file (json.loads per line, one process)."""
    decisions = {}
    loads = json.loads
    with open(path, "rb") as stream:
        for line in stream:
            if line.strip():
                doc = loads(line)
                decisions[doc.get("id")] = screen(doc)
    return decisions


if __name__ == "__main__":
    started = time.perf_counter()
    found = screen_file(sys.argv[1])
    elapsed = time.perf_counter() - started
    counts: dict = {}
    for decision in found.values():
        counts[decision] = counts.get(decision, 0) + 1
    print(f"{len(found):,} patients in {elapsed:.2f} s: {counts}")
