"""Scores and classes as dated observations: ECOG, Karnofsky, Lansky, NYHA, CCS, Child-Pugh, CTCAE
grade; LVEF, measured GFR, QTcF and QTcB in the catalogue. Both engines (one() compares them)."""
import pytest

from screening import SourceError
from screening.analytes import catalogue
from screening.scores import value_of

from helpers import obs, one, patient, trial

ECOG, NYHA, KARNOFSKY = "LOINC:89247-1", "LOINC:88020-3", "LOINC:89243-0"


def compile_error(rule: str):
    with pytest.raises(SourceError) as info:
        trial(f'inclusion I1 "t" = {rule}\n')
    return info.value.first


@pytest.mark.parametrize("name, code", [
    ("ECOG", "LOINC:89247-1"), ("Karnofsky", "LOINC:89243-0"), ("KPS", "LOINC:89243-0"),
    ("Lansky", "LOCAL:lansky"), ("NYHA", "LOINC:88020-3"), ("CCS", "LOCAL:ccs_angina_class"),
    ("Child_Pugh", "LOCAL:child_pugh_class"), ("Child_Pugh_score", "LOCAL:child_pugh_score"),
    ("CTCAE_grade", "LOCAL:ctcae_grade"), ("LVEF", "LOINC:10230-1"), ("measured_GFR", "LOCAL:measured_gfr"),
    ("QTcF", "LOCAL:QTcF"), ("QTcB", "LOCAL:QTcB"), ("QTc", "LOINC:8636-3"),
])
def test_catalogue_names_and_codes(name, code):
    analyte = catalogue().lookup(name)
    assert analyte is not None and code in analyte.codes
    assert catalogue().for_code(code) is analyte


@pytest.mark.parametrize("name, text, value", [
    ("ECOG", "ECOG 1", 1), ("ECOG", "grade 2", 2), ("ECOG", "PS 0", 0), ("ECOG", "1", 1),
    ("NYHA", "Class III", 3), ("NYHA", "III", 3), ("NYHA", "3", 3), ("NYHA", "NYHA class II", 2),
    ("CCS", "CCS class IV", 4), ("Child_Pugh", "B", 2), ("Child_Pugh", "Child-Pugh C", 3),
    ("Karnofsky", "KPS 80%", 80), ("Karnofsky", "80", 80), ("CTCAE_grade", "Grade 3", 3),
    # not one value: a range, a choice, a grade sign, off the scale, a description, a fraction
    ("ECOG", "ECOG 0-1", None), ("NYHA", "II-III", None), ("NYHA", "II or III", None), ("NYHA", "2+", None),
    ("NYHA", "V", None), ("ECOG", "7", None), ("ECOG", "mild", None), ("ECOG", "1.5", None),
    ("Child_Pugh", "B (7 points)", None), ("Child_Pugh", "D", None), ("ECOG", "1 %", None), ("ECOG", "<2", None),
])
def test_texts_are_read_or_left_unknown(name, text, value):
    assert value_of(catalogue().lookup(name), text) == value


@pytest.mark.parametrize("value, day, expected", [
    (1, "2026-11-20", "pass"), (0, "2026-11-20", "pass"), (2, "2026-11-20", "fail"),
    ("ECOG 1", "2026-11-20", "pass"), ("grade 3", "2026-11-20", "fail"),
    (1, "2026-10-01", "unknown"),  # outside 14 days: no result in the window
    ("ECOG 0-1", "2026-11-20", "unknown"), (7, "2026-11-20", "unknown"), ("unable to assess", "2026-11-20", "unknown"),
])
def test_ecog_within_14_days(value, day, expected):
    t = trial('inclusion I1 "ECOG 0-1 within 14 days of enrolment" = ECOG <= 1 within 14 days\n')
    result = one(t, patient(observations=[obs(ECOG, value, day=day)]))
    assert result.verdict == expected
    if expected == "unknown":
        assert result.missing


def test_ecog_between_and_scores_in_units_a_score_takes():
    t = trial('inclusion I1 "ECOG 0 or 1" = ECOG between 0 and 1\n')
    assert one(t, patient(observations=[obs(ECOG, 1, "{score}")])).verdict == "pass"
    assert one(t, patient(observations=[obs(ECOG, 1, "1")])).verdict == "pass"
    result = one(t, patient(observations=[obs(ECOG, 1, "mg")]))
    assert result.verdict == "unknown" and "a score takes no unit" in result.missing[0]


@pytest.mark.parametrize("history, expected", [
    (["Class I", "class II"], "pass"),
    (["Class II", "class III", "I"], "fail"),  # any result >= III ever
    (["NYHA class IV"], "fail"),
    ([2, 4], "fail"),
    (["I", "II-III"], "unknown"),  # the second one might be III
    ([], "unknown"),
])
def test_history_of_nyha_iii_iv(history, expected):
    t = trial('exclusion E1 "History of NYHA class III-IV heart failure" = any NYHA >= III\n')
    observations = [obs(NYHA, v, day=f"{2010 + i}-01-01") for i, v in enumerate(history)]
    assert one(t, patient(observations=observations)).verdict == expected


@pytest.mark.parametrize("rule, value, expected", [
    ("NYHA is III", "Class III", "pass"), ("NYHA is III", 2, "fail"), ("NYHA is not III", 2, "pass"),
    ("NYHA <= II", "I", "pass"), ("CCS >= III", "CCS class IV", "pass"),
])
def test_class_comparisons(rule, value, expected):
    code = NYHA if rule.startswith("NYHA") else "LOCAL:ccs_angina_class"
    assert one(trial(f'inclusion I1 "t" = {rule}\n'), patient(observations=[obs(code, value)])).verdict == expected


@pytest.mark.parametrize("rule, code, value, expected", [
    ("Child_Pugh is A", "LOCAL:child_pugh_class", "A", "pass"),
    ("Child_Pugh is A", "LOCAL:child_pugh_class", "Child-Pugh B", "fail"),
    ("Child_Pugh <= B", "LOCAL:child_pugh_class", "B", "pass"),
    ("Child_Pugh_score <= 7", "LOCAL:child_pugh_score", 7, "pass"),
    ("Child_Pugh_score <= 7", "LOCAL:child_pugh_score", 8, "fail"),
    ("Child_Pugh is A", "LOCAL:child_pugh_score", 6, "unknown"),  # the class is not derived from the points
    ("Karnofsky >= 70 %", "LOINC:89243-0", 70, "pass"),
    ("Karnofsky >= 70", "LOINC:89243-0", "KPS 60%", "fail"),
    ("Lansky >= 50", "LOCAL:lansky", 60, "pass"),
])
def test_child_pugh_karnofsky_lansky(rule, code, value, expected):
    assert one(trial(f'inclusion I1 "t" = {rule}\n'), patient(observations=[obs(code, value)])).verdict == expected


@pytest.mark.parametrize("rule, message", [
    ("ECOG <= 1 mg", "a score takes no unit"),
    ("ECOG <= 1 %", "a score takes no unit"),  # a % is points only for Karnofsky and Lansky
    ("ECOG <= 7", "not on the ECOG performance status scale"),
    ("ECOG <= 1.5", "not on the ECOG performance status scale"),
    ("ECOG <= 2 x ULN", "compare it with a value on its scale"),
    ("NYHA >= V", "not on the NYHA functional class scale"),
    ("NYHA >= 2+", "not on the NYHA functional class scale"),
    ("Child_Pugh is D", "not on the Child-Pugh class scale"),
])
def test_score_compile_errors(rule, message):
    error = compile_error(rule)
    assert message in error.message
    assert error.span.line == 2 and error.span.column in (20, 28)  # the comparison, or its threshold


@pytest.mark.parametrize("rule, code, value, unit, expected", [
    ("LVEF >= 50 %", "LOINC:10230-1", 55, "%", "pass"),
    ("LVEF >= 50 %", "LOINC:10230-1", 45, "%", "fail"),
    ("measured_GFR >= 60 mL/min/1.73m2", "LOCAL:measured_gfr", 65, "mL/min/1.73m2", "pass"),
    ("QTcF <= 470 ms", "LOCAL:QTcF", 450, "ms", "pass"),
    ("QTcF <= 470 ms", "LOCAL:QTcB", 450, "ms", "unknown"),  # a Bazett result is not a Fridericia one
    ("QTc <= 470 ms", "LOCAL:QTcF", 450, "ms", "unknown"),  # nor the method-less QTc
    ("QTcB <= 470 ms", "LOCAL:QTcB", 0.48, "s", "fail"),
])
def test_lvef_measured_gfr_and_qtc_methods(rule, code, value, unit, expected):
    assert one(trial(f'inclusion I1 "t" = {rule}\n'), patient(observations=[obs(code, value, unit)])).verdict == expected


def test_egfr_is_not_measured_gfr():
    t = trial('inclusion I1 "t" = eGFR >= 60 mL/min/1.73m2\n')
    assert one(t, patient(observations=[obs("LOCAL:measured_gfr", 90, "mL/min/1.73m2")])).verdict == "unknown"
