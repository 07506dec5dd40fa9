"""Seeded random patient documents for the population differential test.

Every document is valid patient JSON version 1; together they exercise what changes a truth value:
partial and missing dates, dates after the as-of date, results on the same day (ties), results in
several unit spellings (and units that cannot be read), integer and decimal spellings, comparators,
missing, backwards, zero and negative reference ranges and ranges in another unit, text results in and
outside the vocabulary, scores written as numbers and words, records coded in hierarchical and flat
systems (with dots, lower case), unreadable records, statuses, verification, extra fields, facts of
every type, missing and empty lists, death.
"""
from __future__ import annotations

import datetime
import random

AS_OF_YEAR = 2026

# analyte code -> unit spellings and a value generator (value in that unit)
LABS = {
    "LOINC:2160-0": [("mg/dL", (0.3, 4.0, 2)), ("umol/L", (30, 350, 0)), ("µmol/L", (30, 350, 0)),
                     ("mmol/L", (0.03, 0.35, 3)), (None, (0.5, 2, 1)), ("furlongs", (1, 2, 0))],  # creatinine
    "LOINC:1742-6": [("U/L", (5, 300, 0)), ("IU/L", (5, 300, 0)), ("ukat/L", (0.1, 5, 2))],  # ALT
    "LOINC:1920-8": [("U/L", (5, 300, 0)), ("IU/L", (5, 300, 1))],  # AST
    "LOINC:4548-4": [("%", (4.5, 12.5, 1)), ("mmol/mol", (25, 110, 0)), ("mmol/mol", (25, 110, 1))],  # HbA1c
    "LOINC:777-3": [("10*3/uL", (20, 450, 0)), ("/mm3", (20000, 450000, -3)), ("10^9/L", (20, 450, 0)),
                    ("G/L", (20, 450, 0))],  # platelets
    "LOINC:718-7": [("g/dL", (7, 17, 1)), ("g/L", (70, 170, 0)), ("mmol/L", (4, 11, 1))],  # hemoglobin
    "LOINC:8310-5": [("Cel", (35, 40, 1)), ("[degF]", (95, 104, 1)), ("degF", (95, 104, 0))],  # temperature
    "LOINC:99999-1": [("mg/L", (1, 50, 1)), ("g/L", (0.001, 0.05, 3))],  # a code outside the catalogue
}
# the inputs of derived values (BMI, creatinine clearance, eGFR, corrected calcium): a separate stream
DERIVED_INPUTS = {
    "LOINC:29463-7": [("kg", (30, 160, 1)), ("[lb_av]", (70, 350, 0)), ("g", (30000, 160000, -3)), ("kg", (0, 0, 0))],
    "LOINC:8302-2": [("cm", (140, 200, 0)), ("m", (1.4, 2.0, 2)), ("[in_i]", (55, 78, 0)), ("cm", (0, 0, 0))],
    "LOINC:17861-6": [("mg/dL", (7, 13, 1)), ("mmol/L", (1.8, 3.2, 2)), ("mg/dL", (400, 900, 0))],  # calcium
    "LOINC:1751-7": [("g/dL", (1.5, 5, 1)), ("g/L", (15, 50, 0))],  # albumin
    "LOINC:2160-0": [("mg/dL", (0.3, 4.0, 2)), ("umol/L", (30, 350, 0)), ("mg/dL", (0, 0, 0)), ("mg/dL", (1e-9, 1e-8, 10))],
    "LOINC:33914-3": [("mL/min/1.73m2", (10, 120, 0))],  # a measured eGFR wins over a derived one
    "LOINC:39156-5": [("kg/m2", (18, 45, 1))],  # a measured BMI
}
SCORES = {"LOINC:89247-1": [0, 1, 2, 3, 4, 5, 7, "ECOG 1", "grade 2", "0-1", "unknown"]}
TEXTS = {"LOINC:5196-1": ["Positive", "negative", "Reactive", "non-reactive", "indeterminate", "weird text",
                          "Negative (positive control failed)", "trace", "2+", True, False],
         "LOINC:5804-0": ["negative", "trace", "1+", "++", "3 +", "positive", "Tr", "blah"]}

CONDITIONS = ["ICD10:C50.9", "ICD10:c50.1", "ICD10:C97", "ICD10:Z85.3", "ICD10:E11.9", "ICD10:E10", "ICD10:M32.14",
              "ICD10:I50.9", "ICD10:I21.4", "SNOMED:254637007", "SNOMED:44054006", "SNOMED:999999", "LOCAL:X1"]
MEDICATIONS = ["ATC:L01AA01", "ATC:A10AB01", "ATC:B01AA03", "RXNORM:5856", "RXNORM:3002", "RXNORM:11289",
               "ATC:J04AB02", "LOCAL:M1", "ATC:H02AB07", "RXNORM:3264", "ATC:H02AB01", "ATC:H02AB"]
PROCEDURES = ["CPT:50200", "CPT:33533", "SNOMED:232717009", "CPT:99999"]
STATUSES = [None, "active", "inactive", "resolved", "remission", "completed", "stopped", "on-hold", "intended",
            "entered-in-error", "not-taken", "Active", "recurrence", ""]
VERIFICATIONS = [None, None, None, "confirmed", "provisional", "differential", "Confirmed "]


def _date(rng: random.Random, recent: bool = True) -> str | None:
    roll = rng.random()
    if roll < 0.06:
        return None
    year = rng.choice([AS_OF_YEAR, AS_OF_YEAR, AS_OF_YEAR - 1, AS_OF_YEAR - 2, AS_OF_YEAR - 6] if recent
                      else list(range(1940, AS_OF_YEAR + 1)))
    month = rng.randint(1, 12)
    if year == AS_OF_YEAR and recent:
        month = rng.choice([8, 9, 10, 11, 11, 11, 12])
    day = rng.randint(1, 28)
    if roll < 0.12:
        return f"{year}"
    if roll < 0.22:
        return f"{year}-{month:02d}"
    if roll < 0.25:
        return f"{year}-{month:02d}-{day:02d}T10:00:00Z"
    return f"{year}-{month:02d}-{day:02d}"


def _number(rng: random.Random, low: float, high: float, digits: int):
    value = rng.uniform(low, high)
    if digits <= 0:
        value = round(value, digits)
        return int(value) if rng.random() < 0.8 else float(value)
    return round(value, rng.choice([digits, digits, digits - 1 if digits > 1 else digits, digits + 1]))


def _observation(rng: random.Random, dates: list) -> dict:
    kind = rng.random()
    if kind < 0.72:
        code = rng.choice(list(LABS))
        unit, spec = rng.choice(LABS[code])
        obs = {"code": code, "value": _number(rng, *spec)}
        if unit is not None:
            obs["unit"] = unit
        if rng.random() < 0.06:
            obs["value"] = -obs["value"]
        if rng.random() < 0.08:
            obs["comparator"] = rng.choice(["<", "<=", ">", ">="])
        roll = rng.random()
        if roll < 0.35:
            low, high = spec[0] * 1.5, spec[1] * 0.3
            rr = {"low": round(low, 1), "high": round(max(high, low * 2), 1)}
            sub = rng.random()
            if sub < 0.08:
                rr = {"low": rr["high"], "high": rr["low"]}  # backwards
            elif sub < 0.14:
                rr["low"] = 0
            elif sub < 0.18:
                rr["high"] = 0
            elif sub < 0.22:
                rr["low"] = -1
            elif sub < 0.3:
                del rr["low"]
            if unit is not None and rng.random() < 0.8:
                rr["unit"] = unit
            elif rng.random() < 0.5:
                other_unit, _ = rng.choice(LABS[code])
                if other_unit is not None:
                    rr["unit"] = other_unit
            obs["reference_range"] = rr
    elif kind < 0.84:
        code = rng.choice(list(TEXTS))
        obs = {"code": code, "value": rng.choice(TEXTS[code])}
    elif kind < 0.94:
        code = rng.choice(list(SCORES))
        obs = {"code": code, "value": rng.choice(SCORES[code])}
        if rng.random() < 0.4:  # a coded answer (LOINC LA codes; one the catalogue lacks; "not known"; SNOMED)
            obs["value_code"] = rng.choice(["LOINC:LA9622-7", "LOINC:LA9623-5", "LOINC:LA9625-0", "LOINC:LA4489-6",
                                            "LOINC:LA0000-0", "SNOMED:422512005"])
            if rng.random() < 0.3:
                obs["value"] = rng.choice([None, "ECOG 1", 3, "Symptomatic"])
    else:
        obs = {"code": rng.choice(list(LABS)), "value": None}
    # ties: reuse a date already given to this patient
    obs_date = rng.choice(dates) if dates and rng.random() < 0.3 else _date(rng)
    if obs_date is not None:
        obs["date"] = obs_date
        dates.append(obs_date)
    return obs


def _record(rng: random.Random, codes: list[str], start: str, end: str | None, extra=None) -> dict:
    record: dict = {}
    if rng.random() < 0.07:
        record["unreadable"] = "coded only as text"
        if rng.random() < 0.5:
            record["display"] = "something"
    else:
        record["code"] = rng.choice(codes)
        if rng.random() < 0.15:
            record["codes"] = [rng.choice(codes)]
        if rng.random() < 0.3:
            record["display"] = "A display"
    status = rng.choice(STATUSES)
    if status is not None:
        record["status"] = status
    verification = rng.choice(VERIFICATIONS)
    if verification is not None:
        record["verification"] = verification
    when = _date(rng, recent=rng.random() < 0.6)
    if when is not None:
        record[start] = when
    if end is not None and rng.random() < 0.35:
        finish = _date(rng, recent=True)
        if finish is not None:
            record[end] = finish
    if rng.random() < 0.1:
        record["recorded_date"] = _date(rng) or "not a date"
    for name, values in (extra or {}).items():
        if rng.random() < 0.5:
            record[name] = rng.choice(values)
    return record


def _dosed(rng: random.Random, record: dict) -> dict:
    """A medication's dose, frequency and daily dose, in units that convert, that do not, and per kilogram."""
    if rng.random() < 0.5:
        record["dose"] = {"value": rng.choice([2.5, 5, 10, 20, 0.5, 500, 7.5]),
                          "unit": rng.choice(["mg", "mg", "g", "ug", "mg/kg", "mL"])}
        if rng.random() < 0.1:
            del record["dose"]["unit"]
    roll = rng.random()
    if roll < 0.3:
        record["frequency"] = rng.choice([1, 2, 3, 0.5])
    elif roll < 0.5:
        record["frequency"] = {"frequency": rng.choice([1, 2]), "period": rng.choice([1, 2, 1.5]),
                               "period_unit": rng.choice(["d", "wk", "h", "mo"])}
    elif roll < 0.55:
        record["frequency"] = {"as_needed": True}
    if rng.random() < 0.2:
        record["daily_dose"] = {"value": rng.choice([5, 10, 20, 70]), "unit": rng.choice(["mg/d", "mg/wk", "mg", "g/d"])}
    return record


def _derived_inputs(index: int, doc: dict) -> None:
    """Inputs of derived values on shared and nearby dates (same day, days apart, months apart), some
    partial, some bounds or texts, some in the future; from their own random stream, so that adding them
    leaves the rest of the population as it was."""
    rng = random.Random(f"derived-{index}")
    if "observations" not in doc or rng.random() < 0.3:
        return
    base = rng.choice([(AS_OF_YEAR, 11, 20), (AS_OF_YEAR, 10, 1), (AS_OF_YEAR, 6, 15), (AS_OF_YEAR - 1, 12, 30)])
    for _ in range(rng.randint(2, 9)):
        code = rng.choice(list(DERIVED_INPUTS))
        unit, spec = rng.choice(DERIVED_INPUTS[code])
        obs = {"code": code, "value": _number(rng, *spec), "unit": unit}
        roll = rng.random()
        when = datetime.date(*base) - datetime.timedelta(days=rng.choice([0, 0, 0, 0, 0, 0, 1, 5, 20, 29, 30, 31, 45, 200]))
        year, month, day = when.year, when.month, when.day
        if roll < 0.06:
            obs["date"] = f"{year}-{month:02d}"
        elif roll < 0.08:
            obs["date"] = f"{AS_OF_YEAR}-12-{rng.randint(1, 28):02d}"  # after the as-of date
        elif roll < 0.1:
            pass  # undated
        else:
            obs["date"] = f"{year}-{month:02d}-{day:02d}"
        roll = rng.random()
        if roll < 0.05:
            obs["comparator"] = rng.choice(["<", ">"])
        elif roll < 0.08:
            obs["value"] = "pending"
            del obs["unit"]
        doc["observations"].append(obs)


def _dose_history(index: int, doc: dict) -> None:
    """A run of records of one drug (for dose trends and treatment courses): consecutive, overlapping or with
    a gap, doses the same, rising or falling, the last one open or ended; from its own random stream."""
    rng = random.Random(f"doses-{index}")
    if "medications" not in doc or rng.random() < 0.6:
        return
    code = rng.choice(["ATC:A10AB01", "ATC:B01AA03", "ATC:L01AA01"])
    day = datetime.date(AS_OF_YEAR, 11, 25) - datetime.timedelta(days=rng.choice([40, 100, 200, 400]))
    for step in range(rng.randint(1, 3)):
        length = rng.choice([10, 30, 60, 120])
        record = {"code": code, "start": day.isoformat(),
                  "dose": {"value": rng.choice([5, 10, 10, 20]), "unit": "mg"}, "frequency": rng.choice([1, 1, 2])}
        end = day + datetime.timedelta(days=length)
        if end.isoformat() < f"{AS_OF_YEAR}-11-25" or rng.random() < 0.3:
            record["end"] = end.isoformat()
        else:
            record["status"] = rng.choice(["active", "active", "on-hold", "intended"])
        if rng.random() < 0.1:
            del record["dose"]
        doc["medications"].append(record)
        day = end + datetime.timedelta(days=rng.choice([1, 1, 1, 0, -5, 3]))


def patient(rng: random.Random, index: int) -> dict:
    """One random patient document."""
    doc: dict = {"id": f"P{index:05d}"}
    if rng.random() < 0.93:
        roll = rng.random()
        year = rng.randint(1935, 2012)
        if roll < 0.1:
            doc["birth_date"] = f"{year}"
        elif roll < 0.2:
            doc["birth_date"] = f"{year}-{rng.randint(1, 12):02d}"
        elif roll < 0.22:
            doc["birth_date"] = "2027-01-01"
        elif roll < 0.26:
            doc["birth_date"] = f"{AS_OF_YEAR - rng.choice([18, 50, 75, 76])}-11-{rng.choice([24, 25, 26]):02d}"
        else:
            doc["birth_date"] = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    sex = rng.choice(["female", "male", "female", "male", "other", "unknown", None])
    if sex is not None:
        doc["sex"] = sex
    if rng.random() < 0.9:
        dates: list = []
        doc["observations"] = [_observation(rng, dates) for _ in range(rng.randint(0, 12))]
    if rng.random() < 0.88:
        doc["conditions"] = [_record(rng, CONDITIONS, "onset", "end",
                                     {"stage": ["III", "IV", "2", 3, "3.5", True, None],
                                      "histology": ["SNOMED:35917007", ["ICD10:C50.9", "SNOMED:1"], "ductal", 5],
                                      "severity": ["Severe", "mild ", "moderate"],
                                      "caused_by": ["ATC:L01AA01", ["RXNORM:3002", "LOCAL:X"], "cyclophosphamide",
                                                    "ATC:A10AB01", ["ATC:B01AA03", "ATC:A10AB01"]]})
                             for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.85:
        doc["medications"] = [_dosed(rng, _record(rng, MEDICATIONS, "start", "end",
                                                  {"route": ["oral", "Oral", "intravenous", "IV"],
                                                   "investigational": [True, False],
                                                   "response": ["refractory", "partial response", "none"]}))
                              for _ in range(rng.randint(0, 4))]
    if rng.random() < 0.8:
        doc["procedures"] = [_record(rng, PROCEDURES, "date", "end", {"result": ["normal", "abnormal"],
                                                             "intent": ["palliative", " Curative", ["maintenance", "x"],
                                                                        3, "adjuvant"]})
                             for _ in range(rng.randint(0, 2))]
    if rng.random() < 0.85:
        facts = {}
        for name, values in (("informed_consent", [True, False, None, "yes"]), ("pregnant", [True, False, None, 1]),
                             ("curative", [True, False]), ("smoker", ["Yes", "no", " NO ", True, 3]),
                             ("score", [1, 2.5, 7, "7", True])):
            if rng.random() < 0.7:
                facts[name] = rng.choice(values)
        doc["facts"] = facts
    roll = rng.random()
    if roll < 0.03:
        doc["deceased"] = True
    elif roll < 0.06:
        doc["deceased"] = rng.choice(["2026", "2026-11", "2026-11-20", "2026-12-01", "2020-05-05"])
    elif roll < 0.08:
        doc["deceased"] = False
    _derived_inputs(index, doc)
    _dose_history(index, doc)
    return doc


def population(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [patient(rng, i) for i in range(n)]
