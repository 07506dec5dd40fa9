"""A deterministic synthetic patient population for the benchmarks (patient JSON version 1).

``generate(n, seed=...)`` yields ``n`` patient documents, the same ones for the same seed on
every machine (only :class:`random.Random` drives it). The population is shaped after a
type 2 diabetes trial (``benchmarks/bench_rules.crit``) and made to be awkward on purpose:

* 10 to 30 observations per patient across ALT, AST, bilirubin, creatinine, platelets, WBC,
  ANC, hemoglobin, HbA1c, eGFR, BMI and systolic blood pressure (plus a few labs no rule uses),
  in mixed units: creatinine and bilirubin in mg/dL or umol/L, platelets, WBC and ANC in
  10^9/L, /mm3 or 10*3/uL, hemoglobin in g/dL or g/L, HbA1c in % or mmol/mol, eGFR in
  mL/min/1.73m2 or mL/min/{1.73_m2}, ALT in U/L, IU/L or ukat/L, blood pressure in mmHg or mm[Hg];
* reference ranges on some observations (sometimes in another unit than the value), none on
  others, so that ``x ULN`` uses the rule set's fallback table too;
* dates over the two years before the fixed as-of date 2026-11-25, a few of them partial
  (``2026-03``) or after the as-of date; some values exactly at the rule set's thresholds
  (100,000/mm3, 53 mmol/mol, 90 g/L, ...), some text results (``"<5"``), a few in a unit of the
  wrong dimension;
* conditions (ICD-10 and SNOMED CT codes, some inside the rule set's value sets, with full,
  partial or missing dates and statuses), medications (ATC and RxNorm, routes), procedures
  (CPT and SNOMED CT) and facts;
* a few percent of patients without a section (no observations list, no birth date, no facts
  ...), so that unknowns occur.

Run ``python benchmarks/population.py N OUT.ndjson [--seed S]`` to write N patients, one per line.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
from datetime import date, timedelta
from pathlib import Path

AS_OF = date(2026, 11, 25)

# analyte -> (LOINC codes, [(unit, factor from canonical, decimals, weight)])
# factor: value_in_unit = canonical * factor (HbA1c mmol/mol is handled apart: IFCC is not a ratio).
LABS = {
    "ALT": (["1742-6", "1743-4", "76625-3"], [("U/L", 1.0, 0, 6), ("IU/L", 1.0, 0, 3), ("ukat/L", 1 / 60, 2, 1)]),
    "AST": (["1920-8", "30239-8"], [("U/L", 1.0, 0, 6), ("IU/L", 1.0, 0, 4)]),
    "bilirubin": (["1975-2", "14631-6"], [("mg/dL", 1.0, 1, 5), ("umol/L", 17.104, 0, 5)]),
    "creatinine": (["2160-0", "38483-4"], [("mg/dL", 1.0, 2, 5), ("umol/L", 88.4016, 0, 5)]),
    "platelets": (["777-3", "26515-7"], [("10^9/L", 1.0, 0, 4), ("/mm3", 1000.0, -3, 3), ("10*3/uL", 1.0, 0, 3)]),
    "WBC": (["6690-2", "26464-8"], [("10^9/L", 1.0, 1, 4), ("/mm3", 1000.0, -2, 3), ("10*3/uL", 1.0, 1, 3)]),
    "ANC": (["751-8", "26499-4"], [("10^9/L", 1.0, 2, 4), ("/mm3", 1000.0, -1, 3), ("cells/mm3", 1000.0, -1, 1),
                                     ("10*3/uL", 1.0, 2, 2)]),
    "hemoglobin": (["718-7"], [("g/dL", 1.0, 1, 6), ("g/L", 10.0, 0, 4)]),
    "HbA1c": (["4548-4", "17856-6"], [("%", 1.0, 1, 6), ("mmol/mol", None, 0, 4)]),
    "eGFR": (["33914-3", "62238-1", "98979-8"], [("mL/min/1.73m2", 1.0, 0, 6), ("mL/min/{1.73_m2}", 1.0, 0, 4)]),
    "BMI": (["39156-5"], [("kg/m2", 1.0, 1, 1)]),
    "systolic_bp": (["8480-6"], [("mmHg", 1.0, 0, 5), ("mm[Hg]", 1.0, 0, 5)]),
}
# how often each analyte is measured, relative to the others
LAB_WEIGHTS = {"ALT": 9, "AST": 8, "bilirubin": 6, "creatinine": 9, "platelets": 8, "WBC": 8, "ANC": 6,
               "hemoglobin": 8, "HbA1c": 8, "eGFR": 7, "BMI": 5, "systolic_bp": 10}
# labs that no rule reads: they only cost loading time, as in real records
NOISE_LABS = [("LOINC:2823-3", "potassium", "mmol/L", 3.5, 5.2, 1),
              ("LOINC:2951-2", "sodium", "mmol/L", 134, 146, 0),
              ("LOINC:2345-7", "glucose", "mg/dL", 70, 250, 0),
              ("LOINC:2524-7", "lactate", "mmol/L", 0.5, 2.5, 1)]

# values exactly at the rule set's thresholds, in the unit they are written in (unit, value)
AT_THRESHOLD = {
    "platelets": [("/mm3", 100000), ("10*3/uL", 100), ("10^9/L", 100)],
    "HbA1c": [("mmol/mol", 53), ("mmol/mol", 91), ("%", 9.5)],
    "hemoglobin": [("g/L", 90), ("g/dL", 9)],
    "ANC": [("/mm3", 1500), ("10^9/L", 1.5)],
    "creatinine": [("mg/dL", 1.5)],
    "WBC": [("/mm3", 3000), ("10^9/L", 3)],
    "eGFR": [("mL/min/1.73m2", 45), ("mL/min/{1.73_m2}", 30)],
    "BMI": [("kg/m2", 40), ("kg/m2", 35)],
    "systolic_bp": [("mmHg", 160), ("mm[Hg]", 160)],
}

# (codes, display, weight) -- the first code is the record's code, the rest go to "codes"
CONDITIONS = {
    "t2d": [(["ICD10:E11.9"], "Type 2 diabetes mellitus without complications", 5),
            (["ICD10:E11.65", "SNOMED:44054006"], "Type 2 diabetes mellitus with hyperglycemia", 3),
            (["ICD10:E11.22"], "Type 2 diabetes mellitus with diabetic chronic kidney disease", 1),
            (["SNOMED:44054006"], "Diabetes mellitus type 2", 2)],
    "t1d": [(["ICD10:E10.9"], "Type 1 diabetes mellitus without complications", 2),
            (["SNOMED:46635009"], "Diabetes mellitus type 1", 1)],
    "malignancy": [(["ICD10:C50.911"], "Malignant neoplasm of right female breast", 3),
                   (["ICD10:C18.7"], "Malignant neoplasm of sigmoid colon", 2),
                   (["ICD10:C61"], "Malignant neoplasm of prostate", 2),
                   (["ICD10:C44.91"], "Basal cell carcinoma of skin", 3),
                   (["ICD10:D45"], "Polycythemia vera", 1),
                   (["SNOMED:363346000"], "Malignant neoplastic disease", 1),
                   (["SNOMED:254637007"], "Non-small cell lung cancer", 1),
                   (["ICD10:D05.10"], "Intraductal carcinoma in situ of breast", 1)],  # not in the value set
    "heart_failure": [(["ICD10:I50.9"], "Heart failure, unspecified", 3),
                      (["ICD10:I11.0"], "Hypertensive heart disease with heart failure", 1),
                      (["SNOMED:84114007"], "Heart failure", 1)],
    "acs": [(["ICD10:I21.4"], "Non-ST elevation myocardial infarction", 3),
            (["ICD10:I22.0"], "Subsequent STEMI of anterior wall", 1),
            (["ICD10:I20.0"], "Unstable angina", 2),
            (["SNOMED:22298006"], "Myocardial infarction", 1),
            (["ICD10:I20.9"], "Angina pectoris, unspecified", 2)],  # not in the value set
    "gilbert": [(["ICD10:E80.4"], "Gilbert syndrome", 2), (["SNOMED:27503000"], "Gilbert's syndrome", 1)],
    "other": [(["ICD10:I10"], "Essential hypertension", 8), (["SNOMED:38341003"], "Hypertensive disorder", 3),
              (["ICD10:E78.5"], "Hyperlipidemia, unspecified", 6), (["ICD10:J45.909"], "Asthma", 2),
              (["ICD10:M54.5"], "Low back pain", 3), (["ICD10:K21.9"], "GERD", 3),
              (["ICD10:F32.9"], "Major depressive disorder", 2), (["ICD10:N18.3"], "CKD stage 3", 2),
              (["ICD10:E66.9"], "Obesity", 4), (["SNOMED:73211009"], "Diabetes mellitus", 1)],
}
# (code, extra codes, display, route, weight)
MEDICATIONS = {
    "metformin": [("RXNORM:6809", ["ATC:A10BA02"], "metformin 1000 mg", "oral", 1)],
    "insulin": [("ATC:A10AE04", [], "insulin glargine", "subcutaneous", 3),
                ("ATC:A10AB05", [], "insulin aspart", "subcutaneous", 1),
                ("RXNORM:5856", [], "insulin", "subcutaneous", 1)],
    "anticoagulant": [("ATC:B01AA03", ["RXNORM:11289"], "warfarin 5 mg", "oral", 2),
                      ("ATC:B01AF01", [], "rivaroxaban 20 mg", "oral", 2),
                      ("RXNORM:1364430", [], "apixaban 5 mg", "Oral", 2),
                      ("ATC:B01AB05", [], "enoxaparin", "subcutaneous", 1)],  # not in the value set
    "other": [("ATC:B01AC06", [], "aspirin 81 mg", "oral", 4), ("ATC:C10AA05", [], "atorvastatin", "oral", 5),
              ("ATC:C09AA02", [], "enalapril", "oral", 3), ("ATC:A10BK01", [], "dapagliflozin", "oral", 2),
              ("ATC:A10BJ06", [], "semaglutide", "subcutaneous", 1)],
}
PROCEDURES = [("CPT:92928", "Percutaneous coronary stent", 2), ("CPT:33533", "CABG, arterial", 1),
              ("SNOMED:232717009", "Coronary artery bypass graft", 1), ("CPT:45378", "Colonoscopy", 4),
              ("CPT:93000", "Electrocardiogram", 6), ("SNOMED:387713003", "Surgical procedure", 2)]

CONDITION_STATUSES = [("active", 50), ("resolved", 14), ("remission", 4), ("inactive", 5), ("recurrence", 2),
                      (None, 25)]
MEDICATION_STATUSES = [("active", 55), ("completed", 12), ("stopped", 10), ("on-hold", 3), (None, 20)]


def _pick(rng: random.Random, weighted):
    """Pick from [(item..., weight)] by the last element."""
    total = sum(w[-1] for w in weighted)
    x = rng.random() * total
    for item in weighted:
        x -= item[-1]
        if x < 0:
            return item
    return weighted[-1]


def _iso(day: date) -> str:
    return day.isoformat()


def _partial(rng: random.Random, day: date, full: float, month: float) -> str | None:
    """A date written fully, as year-month, as year only, or not at all."""
    x = rng.random()
    if x < full:
        return day.isoformat()
    if x < full + month:
        return f"{day.year:04d}-{day.month:02d}"
    if x < full + month + (1 - full - month) / 2:
        return f"{day.year:04d}"
    return None


def _round(value: float, decimals: int):
    if decimals <= 0:
        step = 10 ** (-decimals)
        return int(round(value / step) * step)
    return round(value, decimals)


class _Profile:
    """A patient's latent state: which conditions they have and their usual lab levels."""

    def __init__(self, rng: random.Random, sex: str | None, age: int):
        self.t2d = rng.random() < 0.72
        self.t1d = rng.random() < (0.03 if self.t2d else 0.15)
        self.malignancy = rng.random() < 0.08
        self.heart_failure = rng.random() < 0.05
        self.acs = rng.random() < 0.05
        self.gilbert = rng.random() < 0.03
        self.ckd = rng.random() < 0.12
        self.hepatic = rng.random() < 0.05
        self.marrow = rng.random() < 0.05
        self.hypertensive = rng.random() < 0.25
        female = sex == "female"
        self.base = {
            "ALT": rng.lognormvariate(math.log(24), 0.45) * (rng.uniform(2.5, 6) if self.hepatic else 1),
            "AST": rng.lognormvariate(math.log(23), 0.4) * (rng.uniform(2.2, 5) if self.hepatic else 1),
            "bilirubin": rng.lognormvariate(math.log(0.6), 0.35) * (rng.uniform(2.2, 4.5) if self.gilbert else 1)
            * (rng.uniform(1.5, 3) if self.hepatic else 1),
            "creatinine": rng.lognormvariate(math.log(0.78 if female else 0.98), 0.18)
            * (rng.uniform(1.5, 3.2) if self.ckd else 1),
            "platelets": rng.lognormvariate(math.log(250), 0.25) * (rng.uniform(0.25, 0.5) if self.marrow else 1),
            "WBC": rng.lognormvariate(math.log(6.8), 0.25) * (rng.uniform(0.3, 0.55) if self.marrow else 1),
            "hemoglobin": rng.gauss(12.9 if female else 14.3, 1.2) - (rng.uniform(2.5, 5) if self.marrow else 0),
            "HbA1c": rng.uniform(6.2, 11.5) if (self.t2d or self.t1d) else rng.uniform(4.8, 6.2),
            "BMI": min(max(rng.gauss(31 if self.t2d else 27, 6), 16.5), 58),
            "systolic_bp": rng.gauss(150 if self.hypertensive else 128, 14),
        }
        self.base["ANC"] = self.base["WBC"] * rng.uniform(0.45, 0.7)
        # a CKD-EPI-like shape: eGFR falls as creatinine rises, and with age
        self.base["eGFR"] = min(140 * (self.base["creatinine"] / (0.7 if female else 0.9)) ** -1.1 * 0.993 ** age, 130)

    def value(self, rng: random.Random, analyte: str) -> float:
        base = self.base[analyte]
        if analyte in ("hemoglobin", "BMI", "systolic_bp", "HbA1c"):
            spread = {"hemoglobin": 0.6, "BMI": 0.8, "systolic_bp": 11, "HbA1c": 0.5}[analyte]
            return max(base + rng.gauss(0, spread), 0.1)
        return base * rng.lognormvariate(0, 0.12)


def _reference_range(rng: random.Random, analyte: str, unit: str, factor: float, sex: str | None, value_unit_range):
    """A reference range as labs print it, in the value's unit or (sometimes) another one."""
    female = sex == "female"
    canonical = {
        "ALT": (7, rng.choice((33, 40, 55, 56))),
        "AST": (10, rng.choice((32, 35, 40))),
        "bilirubin": (0.1, rng.choice((1.0, 1.2))),
        "creatinine": ((0.5, 1.0) if female else (0.7, 1.3)),
        "platelets": (150, 400),
        "hemoglobin": ((12.0, 15.5) if female else (13.5, 17.5)),
    }.get(analyte)
    if canonical is None:
        return None
    low, high = canonical
    x = rng.random()
    if value_unit_range and x < 0.12 and analyte in ("creatinine", "bilirubin"):
        # the range in the catalogue unit while the value is in umol/L
        out = {"low": low, "high": high, "unit": "mg/dL"}
    else:
        decimals = 0 if factor >= 10 else 2
        out = {"low": _round(low * factor, decimals), "high": _round(high * factor, decimals), "unit": unit}
        if rng.random() < 0.15:
            out.pop("unit")  # the unit of the value is implied
    if rng.random() < 0.1:
        out.pop("low")  # an upper limit only: "< 40"
    return out


def _observation(rng: random.Random, profile: _Profile, analyte: str, sex: str | None, day: date,
                 when: str | None) -> dict:
    codes, units = LABS[analyte]
    code = "LOINC:" + (codes[0] if rng.random() < 0.8 else rng.choice(codes))
    unit, factor, decimals, _w = _pick(rng, units)
    obs: dict = {"code": code}
    if rng.random() < 0.3:
        obs["display"] = analyte
    special = rng.random()
    if special < 0.006:
        obs["value"] = rng.choice(("<5", "hemolyzed", "pending", "see comment")) if analyte != "ALT" else "<5"
        obs["unit"] = unit
    elif special < 0.009:
        obs["value"] = None
    elif special < 0.011:
        obs["value"] = round(profile.value(rng, analyte), 1)
        obs["unit"] = rng.choice(("mmol/L", "kg", "s"))  # a unit of the wrong dimension
    elif special < 0.04 and analyte in AT_THRESHOLD:
        unit, value = rng.choice(AT_THRESHOLD[analyte])
        obs["value"] = value
        obs["unit"] = unit
        factor = next(f for u, f, _d, _w in units if u == unit)
    else:
        canonical = profile.value(rng, analyte)
        if unit == "mmol/mol":
            value = _round((canonical - 2.152) / 0.09148, 0)
        else:
            value = _round(canonical * factor, decimals)
        obs["value"] = value
        obs["unit"] = unit
    if isinstance(obs.get("value"), (int, float)) and rng.random() < 0.55:
        rr = _reference_range(rng, analyte, obs.get("unit", unit), factor or 1.0, sex, unit == "umol/L")
        if rr:
            obs["reference_range"] = rr
    if when is not None:
        obs["date"] = when
    return obs


def _lab_day(rng: random.Random) -> tuple[date, str | None]:
    """A result date: mostly recent, over the past two years; a few partial or after the as-of date."""
    x = rng.random()
    if x < 0.004:
        day = AS_OF + timedelta(days=rng.randint(1, 20))
        return day, day.isoformat()
    day = AS_OF - timedelta(days=int(730 * rng.random() ** 2.2))
    if x < 0.014:
        return day, f"{day.year:04d}-{day.month:02d}"
    if x < 0.016:
        return day, None  # undated
    return day, day.isoformat()


def _condition(rng: random.Random, group: str, recent: bool = False) -> dict:
    codes, display, _w = _pick(rng, CONDITIONS[group])
    record: dict = {"code": codes[0]}
    if len(codes) > 1:
        record["codes"] = codes[1:]
    if rng.random() < 0.8:
        record["display"] = display
    onset = AS_OF - timedelta(days=rng.randint(10, 365) if recent else rng.randint(30, 365 * 15))
    status = _pick(rng, CONDITION_STATUSES)[0]
    when = _partial(rng, onset, 0.72, 0.1)
    if when is not None:
        record["onset"] = when
    if status is not None:
        record["status"] = status
    if status in ("resolved", "remission", "inactive") or (status is None and rng.random() < 0.15):
        if rng.random() < 0.7:
            span = (AS_OF - onset).days
            end = onset + timedelta(days=rng.randint(0, max(span + 60, 1)))
            record["end"] = _partial(rng, end, 0.8, 0.15) or end.isoformat()
    return record


def _medication(rng: random.Random, group: str) -> dict:
    code, extra, display, route, _w = _pick(rng, MEDICATIONS[group])
    record: dict = {"code": code, "display": display}
    if extra:
        record["codes"] = list(extra)
    status = _pick(rng, MEDICATION_STATUSES)[0]
    if status is not None:
        record["status"] = status
    start = AS_OF - timedelta(days=rng.randint(0, 365 * 6))
    when = _partial(rng, start, 0.8, 0.1)
    if when is not None:
        record["start"] = when
    if status in ("completed", "stopped") or (status is None and rng.random() < 0.3):
        if rng.random() < 0.8:
            end = start + timedelta(days=rng.randint(1, max((AS_OF - start).days + 30, 2)))
            record["end"] = end.isoformat()
    if rng.random() < 0.85:
        record["route"] = route
    if rng.random() < 0.1:
        record["response"] = rng.choice(("good", "partial", "failed"))
    return record


def _procedure(rng: random.Random) -> dict:
    code, display, _w = _pick(rng, PROCEDURES)
    record: dict = {"code": code, "display": display}
    day = AS_OF - timedelta(days=rng.randint(-10, 365 * 3))
    when = _partial(rng, day, 0.85, 0.07)
    if when is not None:
        record["date"] = when
    if rng.random() < 0.6:
        record["status"] = "completed"
    if code in ("CPT:92928", "CPT:33533") and rng.random() < 0.3:
        record["result"] = rng.choice(("successful", "complicated"))
    return record


def make_patient(rng: random.Random, index: int, seed: int) -> dict:
    """One patient document."""
    patient: dict = {"version": 1, "id": f"S{seed}-{index:07d}"}
    x = rng.random()
    sex = "female" if x < 0.49 else "male" if x < 0.98 else rng.choice(("other", "unknown", None))
    if sex is not None:
        patient["sex"] = sex
    age = int(min(max(rng.gauss(58, 14), 14), 95))
    birth = AS_OF - timedelta(days=age * 365 + rng.randint(0, 364))
    x = rng.random()
    if x < 0.95:
        patient["birth_date"] = birth.isoformat()
    elif x < 0.97:
        patient["birth_date"] = f"{birth.year:04d}"
    # else: no birth date (3%)
    profile = _Profile(rng, sex, age)

    if rng.random() >= 0.03:  # 3% without an observations list
        observations = []
        names = list(LAB_WEIGHTS)
        weights = [LAB_WEIGHTS[n] for n in names]
        count = rng.randint(10, 30)
        for analyte in rng.choices(names, weights, k=count):
            day, when = _lab_day(rng)
            observations.append(_observation(rng, profile, analyte, sex, day, when))
        for code, display, unit, low, high, decimals in NOISE_LABS:
            if rng.random() < 0.3:
                day, when = _lab_day(rng)
                obs = {"code": code, "display": display, "value": _round(rng.uniform(low, high), decimals),
                       "unit": unit}
                if when:
                    obs["date"] = when
                observations.append(obs)
        rng.shuffle(observations)
        patient["observations"] = observations

    if rng.random() >= 0.03:
        conditions = []
        if profile.t2d:
            conditions.append(_condition(rng, "t2d"))
        if profile.t1d:
            conditions.append(_condition(rng, "t1d"))
        if profile.malignancy:
            conditions.append(_condition(rng, "malignancy"))
        if profile.heart_failure:
            conditions.append(_condition(rng, "heart_failure"))
        if profile.acs:
            conditions.append(_condition(rng, "acs", recent=rng.random() < 0.5))
        if profile.gilbert:
            conditions.append(_condition(rng, "gilbert"))
        for _ in range(rng.randint(0, 4)):
            conditions.append(_condition(rng, "other"))
        rng.shuffle(conditions)
        patient["conditions"] = conditions

    if rng.random() >= 0.04:
        medications = []
        if profile.t2d and rng.random() < 0.8:
            medications.append(_medication(rng, "metformin"))
        if (profile.t1d or profile.t2d) and rng.random() < (0.9 if profile.t1d else 0.15):
            medications.append(_medication(rng, "insulin"))
        if rng.random() < 0.09:
            medications.append(_medication(rng, "anticoagulant"))
        for _ in range(rng.randint(0, 3)):
            medications.append(_medication(rng, "other"))
        patient["medications"] = medications

    if rng.random() >= 0.05:
        patient["procedures"] = [_procedure(rng) for _ in range(rng.choice((0, 0, 0, 1, 1, 2)))]

    if rng.random() >= 0.03:
        facts: dict = {}
        x = rng.random()
        if x < 0.88:
            facts["informed_consent"] = True
        elif x < 0.93:
            facts["informed_consent"] = False
        if sex == "female" or rng.random() < 0.05:
            x = rng.random()
            if x < 0.85:
                facts["pregnant"] = False
            elif x < 0.87:
                facts["pregnant"] = True
        x = rng.random()
        if x < 0.9:
            facts["ecog"] = _pick(rng, [(0, 50), (1, 30), (2, 12), (3, 5)])[0]
        elif x < 0.92:
            facts["ecog"] = "1"  # recorded as text: not a number
        if rng.random() < 0.85:
            facts["smoker"] = rng.random() < 0.22
        if profile.malignancy and rng.random() < 0.5:
            facts["malignancy_curatively_treated"] = rng.random() < 0.6
        patient["facts"] = facts
    return patient


def generate(n: int, seed: int = 20261125):
    """Yield ``n`` patient JSON (version 1) dicts; the same ones for the same seed."""
    rng = random.Random(seed)
    for index in range(n):
        yield make_patient(rng, index, seed)


def write_ndjson(path: str | Path, n: int, seed: int = 20261125) -> Path:
    """Write ``n`` patients to ``path``, one JSON document per line (generated on the fly)."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as out:
        for patient in generate(n, seed):
            out.write(json.dumps(patient, separators=(",", ":")))
            out.write("\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic patient population as NDJSON.")
    parser.add_argument("n", type=int, help="number of patients")
    parser.add_argument("out", help="output file (.ndjson)")
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args(argv)
    write_ndjson(args.out, args.n, args.seed)
    print(f"wrote {args.n} patients to {args.out} (seed {args.seed})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
