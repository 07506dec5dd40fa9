"""Derived values (screening/derived.py): BMI, Cockcroft-Gault creatinine clearance, CKD-EPI 2021 eGFR,
corrected calcium. Every test goes through tests/helpers.one(), which checks that the fast path
(Trial.values) and the interpreter (Trial.screen) agree.

Expected values are the published equations worked by hand (docs/semantics.md#derived-values):
* CKD-EPI 2021 (Inker et al., NEJM 2021): 142 x min(Scr/k,1)^a x max(Scr/k,1)^-1.200 x 0.9938^age
  [x 1.012 female]; k 0.7 F / 0.9 M, a -0.241 F / -0.302 M.
  Female 50 years, Scr 1.0 mg/dL: 142 x (1/0.7)^-1.2 x 0.9938^50 x 1.012 = 68.63.
  Male 60 years, Scr 1.0 mg/dL: 142 x (1/0.9)^-1.2 x 0.9938^60 = 86.16.
  Female 40 years, Scr 0.6 mg/dL: 142 x (0.6/0.7)^-0.241 x 0.9938^40 x 1.012 = 116.30.
* Cockcroft-Gault (1976): (140 - age) x weight / (72 x Scr) [x 0.85 female].
  Male 60 years, 72 kg, Scr 1.0 mg/dL: 80 x 72 / 72 = 80.0 mL/min (the textbook example).
  Female 72 years, 60 kg, Scr 1.2 mg/dL: 68 x 60 x 0.85 / 86.4 = 40.14 mL/min.
* BMI: 90 kg / 1.70 m^2 = 31.14 kg/m2.
* Payne corrected calcium: 8.0 mg/dL + 0.8 x (4.0 - 2.0 g/dL) = 9.6 mg/dL.
"""
from __future__ import annotations

from datetime import date

import pytest

from helpers import AS_OF, obs, one, patient, trial

CREATININE = "LOINC:2160-0"
WEIGHT = "LOINC:29463-7"
HEIGHT = "LOINC:8302-2"
BMI = "LOINC:39156-5"
EGFR = "LOINC:33914-3"
CRCL = "LOINC:2164-2"
CALCIUM = "LOINC:17861-6"
ALBUMIN = "LOINC:1751-7"


def crit(rule: str):
    return trial(f'inclusion I1 "registry text" = {rule}\n')


def born(age: int) -> str:
    """A birth date giving whole ``age`` years on the result dates used here (2026-11-10)."""
    return f"{2026 - age}-01-01"


@pytest.mark.parametrize("sex, age, scr, below, above", [
    ("female", 50, 1.0, 68.6, 68.7),
    ("male", 60, 1.0, 86.1, 86.2),
    ("female", 40, 0.6, 116.2, 116.3),
])
def test_ckd_epi_2021_worked_examples(sex, age, scr, below, above):
    p = patient(sex=sex, birth_date=born(age), observations=[obs(CREATININE, scr, "mg/dL")])
    assert one(crit(f"eGFR >= {below} mL/min/1.73m2"), p).verdict == "pass"
    assert one(crit(f"eGFR >= {above} mL/min/1.73m2"), p).verdict == "fail"


def test_ckd_epi_from_si_creatinine():
    # 88.4 umol/L of creatinine is 1.000 mg/dL (113.12 g/mol): the same 68.63 as above
    p = patient(sex="female", birth_date=born(50), observations=[obs(CREATININE, 88.4, "umol/L")])
    assert one(crit("eGFR >= 68.6 mL/min/1.73m2"), p).verdict == "pass"
    assert one(crit("eGFR >= 68.7 mL/min/1.73m2"), p).verdict == "fail"


def test_cockcroft_gault_worked_examples():
    male = patient(sex="male", birth_date=born(60),
                   observations=[obs(CREATININE, 1.0, "mg/dL"), obs(WEIGHT, 72, "kg", day="2026-11-01")])
    assert one(crit("creatinine_clearance >= 80 mL/min"), male).verdict == "pass"
    assert one(crit("creatinine_clearance > 80 mL/min"), male).verdict == "fail"
    female = patient(sex="female", birth_date=born(72),
                     observations=[obs(CREATININE, 1.2, "mg/dL"), obs(WEIGHT, 60, "kg")])
    assert one(crit("creatinine_clearance >= 40.1 mL/min"), female).verdict == "pass"
    assert one(crit("creatinine_clearance >= 40.2 mL/min"), female).verdict == "fail"


def test_explanation_names_inputs_and_method():
    p = patient(sex="male", birth_date=born(60),
                observations=[obs(CREATININE, 1.0, "mg/dL"), obs(WEIGHT, 72, "kg", day="2026-11-01")])
    result = crit("creatinine_clearance >= 60 mL/min").screen(p, AS_OF)
    detail = result.criteria[0].evidence[0].detail
    assert "derived by Cockcroft-Gault" in detail
    assert "creatinine 1 mg/dL on 2026-11-10" in detail and "weight 72 kg on 2026-11-01" in detail
    assert "age 60" in detail and "male" in detail


def test_weight_missing_is_unknown_naming_it():
    p = patient(sex="male", birth_date=born(60), observations=[obs(CREATININE, 1.0, "mg/dL")])
    c = one(crit("creatinine_clearance >= 60 mL/min"), p)
    assert c.verdict == "unknown"
    assert any("no weight result within 30 days" in m for m in c.missing)


def test_weight_too_old_is_unknown():
    p = patient(sex="male", birth_date=born(60),
                observations=[obs(CREATININE, 1.0, "mg/dL"), obs(WEIGHT, 72, "kg", day="2026-09-01")])
    c = one(crit("creatinine_clearance >= 60 mL/min"), p)
    assert c.verdict == "unknown" and any("weight" in m for m in c.missing)


def test_no_input_at_all_names_what_would_derive_it():
    p = patient(sex="female", birth_date=born(50), observations=[])
    c = one(crit("eGFR >= 60 mL/min/1.73m2 within 3 months"), p)
    assert c.verdict == "unknown"
    assert c.missing == ["eGFR result within 3 months (or creatinine, birth date and sex to derive it by CKD-EPI 2021)"]


@pytest.mark.parametrize("fields, named", [
    ({"birth_date": born(50)}, "sex not recorded"),
    ({"birth_date": born(50), "sex": "unknown"}, "sex not recorded"),
    ({"sex": "female"}, "birth_date not recorded"),
    ({"sex": "female", "birth_date": born(16)}, "is for adults"),
])
def test_demographics_missing_is_unknown(fields, named):
    p = patient(observations=[obs(CREATININE, 0.6, "mg/dL")], **fields)
    c = one(crit("eGFR >= 30 mL/min/1.73m2"), p)
    assert c.verdict == "unknown"
    assert any(named in m for m in c.missing), c.missing


def test_partial_birth_date_straddling_the_threshold_is_unknown():
    # born in 1976: age 49 or 50 on 2026-11-10, eGFR 68.63 to 69.06
    p = patient(sex="female", birth_date="1976", observations=[obs(CREATININE, 1.0, "mg/dL")])
    assert one(crit("eGFR >= 60 mL/min/1.73m2"), p).verdict == "pass"
    c = one(crit("eGFR >= 68.8 mL/min/1.73m2"), p)
    assert c.verdict == "unknown"
    assert any("depending on the age" in m for m in c.missing)


def test_creatinine_reported_as_a_bound_is_unknown():
    o = obs(CREATININE, 0.5, "mg/dL")
    o["comparator"] = "<"
    p = patient(sex="female", birth_date=born(50), observations=[o])
    c = one(crit("eGFR >= 60 mL/min/1.73m2"), p)
    assert c.verdict == "unknown" and any("bound" in m for m in c.missing)


def test_a_measured_value_in_the_window_wins():
    p = patient(sex="female", birth_date=born(50),
                observations=[obs(EGFR, 45, "mL/min/{1.73_m2}", day="2026-10-01"), obs(CREATININE, 1.0, "mg/dL")])
    c = one(crit("eGFR >= 60 mL/min/1.73m2 within 3 months"), p)
    assert c.verdict == "fail"
    assert "(measured)" in c.evidence[0].detail
    # the measured result outside the window: the derived one (68.6) decides
    c = one(crit("eGFR >= 60 mL/min/1.73m2 within 30 days"), p)
    assert c.verdict == "pass" and "derived by CKD-EPI 2021" in c.evidence[0].detail


def test_derived_value_is_in_a_window_only_when_its_inputs_are():
    # creatinine 20 days before the as-of date, weight yesterday: not a "within 14 days" clearance
    p = patient(sex="male", birth_date=born(60),
                observations=[obs(CREATININE, 1.0, "mg/dL", day="2026-11-05"), obs(WEIGHT, 72, "kg", day="2026-11-24")])
    assert one(crit("creatinine_clearance >= 60 mL/min within 30 days"), p).verdict == "pass"
    c = one(crit("creatinine_clearance >= 60 mL/min within 14 days"), p)
    assert c.verdict == "unknown"


def test_inputs_after_the_as_of_date_are_ignored():
    p = patient(sex="female", birth_date=born(50),
                observations=[obs(CREATININE, 3.0, "mg/dL", day="2026-11-01"), obs(CREATININE, 1.0, "mg/dL", day="2026-11-20")])
    assert one(crit("eGFR >= 60 mL/min/1.73m2"), p).verdict == "pass"
    assert one(crit("eGFR >= 60 mL/min/1.73m2"), p, date(2026, 11, 10)).verdict == "fail"


def test_bmi_from_weight_and_height():
    p = patient(sex="male", birth_date=born(45),
                observations=[obs(WEIGHT, 90, "kg"), obs(HEIGHT, 170, "cm", day="2026-11-10")])
    assert one(crit("BMI >= 31.1 kg/m2"), p).verdict == "pass"
    assert one(crit("BMI >= 31.2 kg/m2"), p).verdict == "fail"


def test_bmi_adult_height_any_time_child_height_not():
    adult = patient(sex="male", birth_date=born(45),
                    observations=[obs(WEIGHT, 90, "kg"), obs(HEIGHT, 170, "cm", day="2016-05-01")])
    assert one(crit("BMI >= 30 kg/m2"), adult).verdict == "pass"
    # a height taken at 15 says nothing about the adult's height
    young = patient(sex="male", birth_date=born(20),
                    observations=[obs(WEIGHT, 90, "kg"), obs(HEIGHT, 170, "cm", day="2021-05-01")])
    c = one(crit("BMI >= 30 kg/m2"), young)
    assert c.verdict == "unknown" and any("height" in m for m in c.missing)


def test_measured_bmi_wins_over_derived():
    p = patient(sex="male", birth_date=born(45),
                observations=[obs(BMI, 28, "kg/m2", day="2026-10-01"), obs(WEIGHT, 90, "kg"), obs(HEIGHT, 170, "cm")])
    assert one(crit("BMI >= 30 kg/m2 within 3 months"), p).verdict == "fail"


def test_corrected_calcium_payne():
    p = patient(observations=[obs(CALCIUM, 8.0, "mg/dL"), obs(ALBUMIN, 2.0, "g/dL")])
    assert one(crit("corrected_calcium <= 9.6 mg/dL"), p).verdict == "pass"
    assert one(crit("corrected_calcium < 9.6 mg/dL"), p).verdict == "fail"
    # albumin of another day: not the same specimen, unknown
    other = patient(observations=[obs(CALCIUM, 8.0, "mg/dL"), obs(ALBUMIN, 2.0, "g/dL", day="2026-11-09")])
    c = one(crit("corrected_calcium <= 10.5 mg/dL"), other)
    assert c.verdict == "unknown" and any("albumin" in m for m in c.missing)


def test_any_selector_over_derived_values():
    p = patient(sex="female", birth_date=born(50),
                observations=[obs(CREATININE, 3.0, "mg/dL", day="2026-10-01"), obs(CREATININE, 1.0, "mg/dL")])
    assert one(crit("any eGFR < 30 mL/min/1.73m2 within 3 months"), p).verdict == "pass"
    assert one(crit("eGFR < 30 mL/min/1.73m2 within 3 months"), p).verdict == "fail"


def test_an_unusable_bound_input_is_named_not_a_crash():
    """A creatinine reported as `< 0 U/L` (a bound in a unit creatinine cannot have; found by
    tests/test_fuzz.py) leaves the derived clearance unknown with the input's problem named."""
    t = trial('inclusion I1 "x" = creatinine_clearance >= 60 mL/min\n')
    p = patient(birth_date="1970-01-01", sex="female",
                observations=[{"code": "LOINC:2160-0", "value": 0, "unit": "U/L", "comparator": "<", "date": "2026-11-01"},
                              {"code": "LOINC:29463-7", "value": 70, "unit": "kg", "date": "2026-11-01"}])
    c = one(t, p)
    assert (c.verdict, c.value) == ("unknown", None)


def test_an_implausible_derived_value_decides_nothing():
    """A creatinine of 1e-300 mg/dL (an error in the record) gives an 'eGFR' beyond any patient's:
    unknown, never a pass of `eGFR >= 60`."""
    t = trial('inclusion I1 "x" = eGFR >= 60 mL/min/1.73m2\n')
    p = patient(birth_date="1970-01-01", sex="female",
                observations=[{"code": "LOINC:2160-0", "value": 1e-300, "unit": "mg/dL", "date": "2026-11-01"}])
    c = one(t, p)
    assert (c.verdict, c.value) == ("unknown", None)
    assert "the inputs cannot be right" in c.explanation


def test_a_derived_result_without_value_in_a_mean_is_explained_not_a_crash():
    # the latest eGFR cannot be derived (no sex): the mean of the latest 2 is unknown, named, and the
    # explanation lists that result as "no value" (it used to raise AttributeError on raw_value)
    p = patient(birth_date=born(50), observations=[obs(CREATININE, 1.0, "mg/dL"),
                                                   obs(CREATININE, 1.1, "mg/dL", day="2026-10-01")])
    result = one(crit("mean eGFR of the latest 2 < 45 mL/min/1.73m2"), p)
    assert result.verdict == "unknown"
    assert result.missing == ["eGFR result of 2026-11-10: cannot derive by CKD-EPI 2021: sex not recorded"]
    assert "no value" in str(result.evidence)
