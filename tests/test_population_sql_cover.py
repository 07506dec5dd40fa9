"""The constructs the SQL generator used to refuse, against the per-patient engine on a generated population.

`on at least N occasions` in a lab test around an anchor, a derived value (eGFR, BMI, creatinine clearance,
corrected calcium) tested around an anchor, and a derived value as the anchor of a window: each criterion
below is translated (no ``Unsupported``), and every patient of a seeded population (partial dates, missing
values, ties, missing lists: tests/population_gen.py) gets the same value, applicability, verdict, missing
items and review reasons from DuckDB and from the per-patient engine, and the same decision.

Population size: ``SCREENING_DIFF_N`` (default 300), seed ``SCREENING_DIFF_SEED`` (default 10), as the
differential test (tests/test_population_differential.py).
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import random

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

from screening import compile_text, patient_from_document  # noqa: E402
from screening.population import plan  # noqa: E402
from screening.population import duckdb as popduck  # noqa: E402
from screening.population.loader import tables_from_documents  # noqa: E402

from population_gen import population  # noqa: E402

AS_OF = datetime.date(2026, 11, 25)
N = int(os.environ.get("SCREENING_DIFF_N", "300"))
SEED = int(os.environ.get("SCREENING_DIFF_SEED", "10"))

COVER = '''trial "COVER"
title "constructs the SQL generator translates since the sqlcover work"
index date first_dose "first dose of study drug"
lab window 12 months
reference range ALT = 7 to 40 U/L
reference range eGFR = 90 to 120 mL/min/1.73m2

valueset biopsy "renal biopsy" = CPT:50200, SNOMED:232717009
valueset cyclo "cyclophosphamide" = ATC:L01AA01, RXNORM:3002
valueset insulin "insulin" = ATC:A10A, RXNORM:5856
valueset ca "malignancy" = ICD10:C00-C96, ICD10:Z85, SNOMED:254637007

inclusion O1 "occasions after" = creatinine > 1.2 mg/dL on at least 2 occasions within 6 months after procedure biopsy
inclusion O2 "occasions ULN between" = ALT <= 1.5 x ULN on at least 2 occasions between 5 and 300 days after procedure biopsy
exclusion O3 "occasions before" = any platelets < 150 x 10^9/L on at least 3 occasions within 12 months before procedure biopsy
exclusion O4 "occasions around a lab" = hemoglobin < 12 g/dL on at least 2 occasions from 6 months before to 6 months after ALT > 2 x ULN
inclusion O5 "occasions index" = creatinine <= 1.5 mg/dL on at least 2 occasions within 12 months before first_dose
exclusion O6 "occasions end" = HbA1c > 7 % on at least 2 occasions within 12 months after the end of medication cyclo
inclusion D1 "eGFR around" = eGFR >= 60 mL/min/1.73m2 within 3 months before procedure biopsy
inclusion D2 "any BMI around" = any BMI >= 30 kg/m2 from 6 months before to 6 months after procedure biopsy
inclusion D3 "every clearance after the end" = every creatinine_clearance >= 30 mL/min within 12 months after the end of medication insulin
exclusion D4 "calcium index" = corrected_calcium > 10.5 mg/dL within 12 months before first_dose
inclusion D5 "eGFR ULN around" = eGFR <= 1.2 x ULN within 12 months before procedure biopsy
exclusion D6 "eGFR occasions around" = eGFR < 60 mL/min/1.73m2 on at least 2 occasions within 12 months before first_dose
exclusion A1 "record before eGFR" = procedure biopsy within 6 months before eGFR < 60 mL/min/1.73m2
exclusion A2 "record after BMI" = medication insulin within 12 months after BMI >= 30 kg/m2
inclusion A3 "lab before eGFR" = creatinine <= 1.5 mg/dL within 30 days before eGFR < 90 mL/min/1.73m2
exclusion A4 "derived around derived" = any BMI >= 25 kg/m2 from 6 months before to 6 months after creatinine_clearance < 60 mL/min
exclusion A5 "condition between after calcium" = condition ca between 1 and 24 months after corrected_calcium > 9 mg/dL
'''


@pytest.fixture(scope="module")
def trial():
    return compile_text(COVER, "cover.crit")


# results clustered around an anchor, so that the windows around it hold 0, 1, 2, 3 ... results: analyte code ->
# (unit, low, high, decimals)
_CLUSTER = {
    "LOINC:2160-0": [("mg/dL", 0.6, 2.5, 2), ("umol/L", 50, 220, 0)],  # creatinine
    "LOINC:1742-6": [("U/L", 10, 120, 0), ("ukat/L", 0.2, 2, 2)],  # ALT
    "LOINC:777-3": [("10^9/L", 60, 300, 0)],  # platelets
    "LOINC:718-7": [("g/dL", 8, 16, 1), ("g/L", 80, 160, 0)],  # hemoglobin
    "LOINC:4548-4": [("%", 5, 10, 1)],  # HbA1c
    "LOINC:29463-7": [("kg", 45, 130, 1)],  # weight
    "LOINC:8302-2": [("cm", 150, 195, 0)],  # height
    "LOINC:17861-6": [("mg/dL", 8, 12, 1)],  # calcium
    "LOINC:1751-7": [("g/dL", 2, 5, 1)],  # albumin
}


def _clustered(document: dict, index: int) -> dict:
    """A generated patient (its birth date, sex, lists or their absence) given a biopsy, an insulin and a
    cyclophosphamide record and results clustered around them: several results in one window, the same
    specimen in two units on one day, results of one month only, bounds, results on the window's edges."""
    rng = random.Random(f"cover-{index}")
    doc = dict(document, id=f"Q{index:05d}")
    anchor = datetime.date(2026, 11, 25) - datetime.timedelta(days=rng.choice([20, 60, 120, 200, 330, 500]))
    if "procedures" in doc:
        when = anchor.isoformat() if rng.random() < 0.85 else anchor.isoformat()[:7]
        doc["procedures"] = doc["procedures"] + [{"code": rng.choice(["CPT:50200", "SNOMED:232717009"]), "date": when}]
    if "medications" in doc:
        for code in ("ATC:A10AB01", "ATC:L01AA01"):
            start = anchor - datetime.timedelta(days=rng.choice([30, 90]))
            end = anchor + datetime.timedelta(days=rng.choice([-10, 0, 10]))
            record = {"code": code, "start": start.isoformat()}
            if rng.random() < 0.8:
                record["end"] = end.isoformat()
            else:
                record["status"] = rng.choice(["completed", "active"])
            doc["medications"] = doc["medications"] + [record]
    if "observations" not in doc:
        return doc
    observations = list(doc["observations"])
    for code, spellings in _CLUSTER.items():
        for _ in range(rng.choice([0, 1, 2, 2, 3, 4])):
            unit, low, high, decimals = rng.choice(spellings)
            value = round(rng.uniform(low, high), decimals)
            day = anchor + datetime.timedelta(days=rng.choice([-400, -200, -90, -30, -7, -1, 0, 0, 5, 6, 14, 30,
                                                               100, 150, 181, 300]))
            if day > datetime.date(2026, 11, 25) and rng.random() < 0.7:
                day = datetime.date(2026, 11, 25) - datetime.timedelta(days=rng.randint(0, 40))
            obs = {"code": code, "value": int(value) if decimals == 0 else value, "unit": unit}
            roll = rng.random()
            obs["date"] = day.isoformat()[:7] if roll < 0.1 else day.isoformat()
            if code == "LOINC:1742-6" and rng.random() < 0.6:
                obs["reference_range"] = {"low": 7, "high": 40, "unit": "U/L"}
            if rng.random() < 0.05:
                obs["comparator"] = rng.choice(["<", ">"])
            observations.append(obs)
            if code == "LOINC:2160-0" and unit == "mg/dL" and rng.random() < 0.3:  # the same specimen in umol/L
                observations.append({"code": code, "value": round(value * 88.42), "unit": "umol/L", "date": obs["date"]})
    doc["observations"] = observations
    return doc


@pytest.fixture(scope="module")
def documents():
    base = population(N, SEED)
    return base + [_clustered(document, i) for i, document in enumerate(population(N, SEED + 1))]


def _duckdb_rows(checked, documents: list[dict]) -> list[dict]:
    """The wide rows DuckDB gives for ``documents`` (one per patient)."""
    con = popduck.connect(tables_from_documents(documents))
    try:
        popduck.build_dictionaries(con)
        return popduck.screen_trial(con, checked, AS_OF, shared_ready=True).to_pylist()
    finally:
        con.close()


@pytest.fixture(scope="module")
def wide(trial, documents):
    return {row["patient_id"]: row for row in _duckdb_rows(trial.checked, documents)}


def test_every_criterion_is_translated(trial):
    for criterion in trial.checked.criteria:
        # raises Unsupported (naming the construct) if it is not
        plan(dataclasses.replace(trial.checked, criteria=[criterion]), AS_OF)


def test_same_verdicts_as_the_per_patient_engine(trial, documents, wide):
    assert len(wide) == len(documents)
    differences = []
    for document in documents:
        patient = patient_from_document(document, f"{document['id']}.json")
        row = wide[patient.id]
        result = trial.screen(patient, AS_OF)
        for c in result.criteria:
            sql = (row[c.id], row[f"{c.id}__applies"], row[f"{c.id}__verdict"], sorted(row[f"{c.id}__missing"]),
                   sorted(row[f"{c.id}__reviews"]))
            python = (c.value, c.applicable, c.verdict, sorted(set(c.missing)), sorted(set(c.reviews)))
            if sql != python:
                differences.append(f"{patient.id} {c.id}: sql {sql} != python {python}")
        if (row["decision"], row["decision_reason"]) != (result.decision, result.decision_reason):
            differences.append(f"{patient.id}: decision sql {row['decision']!r} != python {result.decision!r}")
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences[:40])


def test_the_population_reaches_every_truth_value_of_each_criterion(trial, wide):
    """Without this, an agreement could be an agreement on a criterion that is always unknown."""
    thin = {}
    for criterion in trial.criteria:
        seen = {row[criterion.id] for row in wide.values()}
        if seen != {True, False, None}:
            thin[criterion.id] = seen
    assert not thin, f"criteria that do not reach true, false and unknown on the population: {thin}"


def _screen_both(rules: str, documents: list[dict]) -> dict:
    """{patient: {criterion: (value, verdict, missing)}} from DuckDB, after checking the per-patient engine agrees."""
    trial = compile_text(rules, "rules.crit")
    rows = _duckdb_rows(trial.checked, documents)
    found = {}
    for row, document in zip(rows, sorted(documents, key=lambda d: d["id"])):
        result = trial.screen(patient_from_document(document, f"{document['id']}.json"), AS_OF)
        found[row["patient_id"]] = {}
        for c in result.criteria:
            sql = (row[c.id], row[f"{c.id}__verdict"], sorted(row[f"{c.id}__missing"]))
            assert sql == (c.value, c.verdict, sorted(c.missing)), f"{document['id']} {c.id}"
            found[row["patient_id"]][c.id] = sql
    return found


STENT = '''trial "STENT"
valueset biliary_stent "biliary stent insertion" = SNOMED:69620002
inclusion I5 "2 stable bilirubin readings at least 5 and not more than 14 days post-stenting" =
    bilirubin <= 1.5 x ULN on at least 2 occasions between 5 and 14 days after procedure biliary_stent
'''


def _bilirubin(day: str, value: float, unit: str = "mg/dL") -> dict:
    return {"code": "LOINC:1975-2", "value": value, "unit": unit, "date": day,
            "reference_range": {"low": 0.3, "high": 1.2, "unit": "mg/dL"}}


def test_occasions_around_an_anchor_the_language_docs_example():
    stent = {"code": "SNOMED:69620002", "date": "2026-06-01"}
    where = "bilirubin between 5 days and 14 days after procedure SNOMED:69620002: "
    found = _screen_both(STENT, [
        {"id": "S1", "procedures": [stent], "observations": [_bilirubin("2026-06-07", 1.0), _bilirubin("2026-06-10", 1.1)]},
        {"id": "S2", "procedures": [stent], "observations": [_bilirubin("2026-06-07", 1.0)]},
        {"id": "S3", "procedures": [stent], "observations": [_bilirubin("2026-06-07", 1.0), _bilirubin("2026-06-12", 2.5)]},
        {"id": "S4", "procedures": [stent],  # one specimen in two units: one occasion
         "observations": [_bilirubin("2026-06-07", 1.0), _bilirubin("2026-06-07", 17.1, "umol/L")]},
        {"id": "S5", "procedures": [{"code": "SNOMED:69620002", "date": "2026-06"}],
         "observations": [_bilirubin("2026-06-07", 1.0)]},
        {"id": "S6", "procedures": [stent]},
    ])
    assert found["S1"]["I5"] == (True, "pass", [])
    assert found["S2"]["I5"] == (None, "unknown", [where + "no bilirubin result from 2026-06-06 to 2026-06-15"])
    assert found["S3"]["I5"] == (False, "fail", [])  # the later reading is high: the first is not confirmed
    assert found["S4"]["I5"] == (None, "unknown", [where + "no bilirubin result from 2026-06-06 to 2026-06-15"])
    assert found["S5"]["I5"] == (None, "unknown", [where + "date of the anchor 2026-06, not a full date"])
    assert found["S6"]["I5"] == (None, "unknown", [where + "bilirubin: no observations provided"])


DERIVED = '''trial "DERIVED"
valueset biopsy "renal biopsy" = CPT:50200
inclusion I1 "eGFR before the biopsy" = eGFR >= 60 mL/min/1.73m2 within 3 months before procedure biopsy
exclusion E1 "biopsy before a low eGFR" = procedure biopsy within 6 months before eGFR < 60 mL/min/1.73m2
'''


def _result(code: str, day: str, value: float, unit: str) -> dict:
    return {"code": code, "value": value, "unit": unit, "date": day}


def test_derived_values_around_an_anchor_and_as_the_anchor():
    biopsy = {"code": "CPT:50200", "date": "2026-09-01"}
    old_egfr = _result("LOINC:33914-3", "2026-01-01", 50, "mL/min/1.73m2")
    found = _screen_both(DERIVED, [
        # no measured eGFR in the window: the derived one (creatinine 0.8 mg/dL, a woman of 56) is read
        {"id": "D1", "birth_date": "1970-01-01", "sex": "female", "procedures": [biopsy],
         "observations": [old_egfr, _result("LOINC:2160-0", "2026-08-15", 0.8, "mg/dL")]},
        # a measured eGFR in the window wins over the derived one
        {"id": "D2", "birth_date": "1970-01-01", "sex": "female", "procedures": [biopsy],
         "observations": [_result("LOINC:33914-3", "2026-08-20", 50, "mL/min/1.73m2"),
                          _result("LOINC:2160-0", "2026-08-15", 0.8, "mg/dL")]},
        # no sex: the derived result has no value, and says why
        {"id": "D3", "birth_date": "1970-01-01", "procedures": [biopsy],
         "observations": [_result("LOINC:2160-0", "2026-08-15", 0.8, "mg/dL")]},
        # a low derived eGFR a month after the biopsy is an anchor of E1
        {"id": "D4", "birth_date": "1950-01-01", "sex": "male", "procedures": [biopsy],
         "observations": [_result("LOINC:2160-0", "2026-10-01", 2.5, "mg/dL")]},
    ])
    assert found["D1"] == {"I1": (True, "pass", []), "E1": (False, "pass", [])}
    assert found["D2"]["I1"] == (False, "fail", [])
    assert found["D3"]["I1"] == (None, "unknown", ["eGFR within 3 months before procedure CPT:50200: eGFR result of "
                                                   "2026-08-15: cannot derive by CKD-EPI 2021: sex not recorded"])
    assert found["D4"] == {"I1": (None, "unknown", ["eGFR within 3 months before procedure CPT:50200: no eGFR result "
                                                    "from 2026-06-01 to 2026-09-01"]),
                           "E1": (True, "fail", [])}
