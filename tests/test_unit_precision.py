"""A verdict at the threshold does not depend on the unit the lab used (the unit-precision rule).

A quantity converted from the unit it was written in is rounded to the power of ten nearest to its
written resolution carried through the conversion (docs/semantics.md). Published equivalences hold
both ways; every verdict is asserted on both engines (helpers.one checks the fast path agrees).
"""
import pytest

from helpers import obs, one, patient, trial

CODES = {"HbA1c": "LOINC:4548-4", "creatinine": "LOINC:2160-0", "glucose": "LOINC:2345-7",
         "platelets": "LOINC:777-3", "bilirubin": "LOINC:1975-2", "temperature": "LOINC:8310-5",
         "BUN": "LOINC:3094-0", "urea": "LOINC:3091-6", "hemoglobin": "LOINC:718-7"}

# (analyte, patient value, patient unit, rule, expected truth)
CASES = [
    ("HbA1c", 53, "mmol/mol", "HbA1c <= 7 %", True),        # 7.00044 % by the master equation
    ("HbA1c", 7.0, "%", "HbA1c <= 53 mmol/mol", True),
    ("HbA1c", 7.0, "%", "HbA1c >= 53 mmol/mol", True),
    ("HbA1c", 53, "mmol/mol", "HbA1c >= 7.0 %", True),
    ("HbA1c", 54, "mmol/mol", "HbA1c <= 7 %", False),       # 7.09 %
    ("HbA1c", 48, "mmol/mol", "HbA1c >= 6.5 %", True),      # 6.54 %
    ("creatinine", 1.5, "mg/dL", "creatinine <= 132 umol/L", False),  # 1.5 mg/dL = 132.6 umol/L
    ("creatinine", 1.5, "mg/dL", "creatinine <= 133 umol/L", True),
    ("creatinine", 1.5, "mg/dL", "creatinine <= 1.5 mg/dL", True),
    ("creatinine", 133, "umol/L", "creatinine <= 1.5 mg/dL", True),
    ("creatinine", 1.5, "mg/dL", "creatinine <= 132.6 umol/L", True),
    ("creatinine", 132.6, "umol/L", "creatinine <= 1.5 mg/dL", True),
    ("creatinine", 134, "umol/L", "creatinine <= 1.5 mg/dL", False),
    ("glucose", 7.0, "mmol/L", "glucose <= 126 mg/dL", True),  # 126.1 mg/dL; published 7.0 = 126
    ("glucose", 7.0, "mmol/L", "glucose >= 126 mg/dL", True),
    ("glucose", 126, "mg/dL", "glucose >= 7.0 mmol/L", True),
    ("glucose", 126, "mg/dL", "glucose <= 7.0 mmol/L", True),
    ("glucose", 7.1, "mmol/L", "glucose <= 126 mg/dL", False),
    ("bilirubin", 1.2, "mg/dL", "bilirubin <= 20.5 umol/L", True),  # 1.2 mg/dL = 20.5 umol/L
    ("bilirubin", 20.5, "umol/L", "bilirubin <= 1.2 mg/dL", True),
    ("bilirubin", 21, "umol/L", "bilirubin <= 1.2 mg/dL", True),   # 1.23 mg/dL: a mg/dL lab says 1.2
    ("bilirubin", 22, "umol/L", "bilirubin <= 1.2 mg/dL", False),  # 1.29 mg/dL: 1.3
    ("platelets", 100, "10^9/L", "platelets >= 100,000/mm3", True),  # powers of ten: exact
    ("platelets", 100000, "/mm3", "platelets >= 100 x 10^9/L", True),
    ("platelets", 99, "10^9/L", "platelets >= 100,000/mm3", False),
    ("temperature", 100.4, "degF", "temperature >= 38.0 Cel", True),  # 38.0 degC
    ("temperature", 38.0, "Cel", "temperature >= 100.4 degF", True),
    ("hemoglobin", 9.0, "g/dL", "hemoglobin >= 90 g/L", True),
]


@pytest.mark.parametrize("analyte,value,unit,rule,expected", CASES, ids=[f"{c[1]} {c[2]} vs {c[3]}" for c in CASES])
def test_published_equivalences_hold_both_ways(analyte, value, unit, rule, expected):
    t = trial(f'inclusion I1 "x" = {rule}\n')
    c = one(t, patient(observations=[obs(CODES[analyte], value, unit)]))
    assert c.value is expected


def test_reference_ranges_follow_the_same_rule():
    # ULN 20.5 umol/L from the observation: 1.2 mg/dL; bilirubin 2.4 mg/dL is exactly 2 x ULN
    t = trial('exclusion E1 "x" = bilirubin > 2 x ULN\n')
    p = patient(observations=[obs(CODES["bilirubin"], 41, "umol/L", low=3.4, high=20.5)])
    assert one(t, p).value is False  # 41 umol/L = 2.4 mg/dL = 2 x 1.2
    t2 = trial('reference range bilirubin = 3.4 to 20.5 umol/L\nexclusion E1 "x" = bilirubin > 2 x ULN\n')
    assert one(t2, patient(observations=[obs(CODES["bilirubin"], 2.4, "mg/dL")])).value is False
    assert one(t2, patient(observations=[obs(CODES["bilirubin"], 2.5, "mg/dL")])).value is True


# ---------------------------------------------------------------- dimensionless and G/L
from screening import SourceError  # noqa: E402


@pytest.mark.parametrize("unit", ["1", "{ratio}", "mg/g"])
def test_hba1c_in_another_dimensionless_unit_is_refused_not_guessed(unit):
    t = trial('inclusion I1 "x" = HbA1c <= 7 %\n')
    p = patient(observations=[obs(CODES["HbA1c"], 0.065, unit)])
    c = one(t, p)
    assert (c.verdict, c.value) == ("unknown", None)
    assert "refused rather than guessed" in c.explanation
    assert any("refused" in w for w in p.warnings)
    if unit != "1":  # a bare 1 is not a unit in the grammar
        with pytest.raises(SourceError, match="refused rather than guessed"):
            trial(f'inclusion I1 "x" = HbA1c <= 0.07 {unit}\n')


def test_a_dimensionless_unit_for_a_concentration_is_refused():
    c = one(trial('inclusion I1 "x" = creatinine <= 1.5 mg/dL\n'), patient(observations=[obs(CODES["creatinine"], 1.2, "%")]))
    assert c.value is None
    with pytest.raises(SourceError):
        trial('inclusion I1 "x" = creatinine <= 1.5 %\n')


def test_g_per_litre_with_a_capital_g_is_giga_per_litre():
    t = trial('inclusion I1 "x" = platelets >= 100 x 10^9/L\n')
    assert one(t, patient(observations=[obs(CODES["platelets"], 150, "G/L")])).value is True
    assert one(t, patient(observations=[obs(CODES["platelets"], 90, "G/l")])).value is False
    assert one(trial('inclusion I1 "x" = platelets >= 100 G/L\n'),
               patient(observations=[obs(CODES["platelets"], 100000, "/mm3")])).value is True
    # g/L stays grams per litre: hemoglobin 95 g/L
    assert one(trial('inclusion I1 "x" = hemoglobin >= 9 g/dL\n'),
               patient(observations=[obs(CODES["hemoglobin"], 95, "g/L")])).value is True


def test_a_gauss_dimension_never_reaches_a_count():
    with pytest.raises(SourceError):
        trial('inclusion I1 "x" = platelets >= 100 G.L\n')
    c = one(trial('inclusion I1 "x" = platelets >= 100 x 10^9/L\n'),
            patient(observations=[obs(CODES["platelets"], 150, "G")]))
    assert c.value is None


# (analyte, patient value, rule, expected): value and threshold written in the same (non-canonical)
# unit compare in that unit, exactly; rounding each side on its own could reorder them
SAME_UNIT = [
    ("creatinine", 84.69, "umol/L", "creatinine >= 84.7 umol/L", False),
    ("creatinine", 84.69, "umol/L", "creatinine < 84.7 umol/L", True),
    ("creatinine", 21.01, "umol/L", "creatinine <= 21.0 umol/L", False),
    ("creatinine", 6.99, "umol/L", "creatinine > 7.0 umol/L", False),
    ("creatinine", 134.46, "umol/L", "creatinine >= 134.5 umol/L", False),
    ("creatinine", 21.01, "umol/L", "creatinine between 5 umol/L and 21.0 umol/L", False),
    ("glucose", 6.99, "mmol/L", "glucose >= 7.0 mmol/L", False),
    ("bilirubin", 20.51, "umol/L", "bilirubin <= 20.5 umol/L", False),
]


@pytest.mark.parametrize("analyte,value,unit,rule,expected", SAME_UNIT)
def test_a_value_and_a_threshold_in_the_same_unit_compare_exactly(analyte, value, unit, rule, expected):
    t = trial(f'inclusion I1 "x" = {rule}\n')
    assert one(t, patient(observations=[obs(CODES[analyte], value, unit)])).value is expected
    # a comparator result in the same unit: the interval decides in that unit too
    bound = {"value": value, "unit": unit, "comparator": ">=" if expected is False and "<" in rule else "<="}
    o = {"code": CODES[analyte], "date": "2026-11-10", **bound}
    one(t, patient(observations=[o]))  # both engines agree


@pytest.mark.parametrize("value,high,rule,expected", [
    (21.01, 21.0, "creatinine <= 1 x ULN", False),
    (84.69, 84.7, "creatinine < 1 x ULN", True),
    (127.04, 84.7, "creatinine > 1.5 x ULN", False),   # 1.5 x 84.7 = 127.05
    (127.06, 84.7, "creatinine > 1.5 x ULN", True),
])
def test_a_multiple_of_a_limit_in_the_value_s_own_unit_compares_in_that_unit(value, high, rule, expected):
    t = trial(f'inclusion I1 "x" = {rule}\n')
    p = patient(observations=[obs(CODES["creatinine"], value, "umol/L", high=high)])
    assert one(t, p).value is expected


@pytest.mark.parametrize("value, unit", [
    (2.9973830842611253e-29, "Cel"),   # an offset conversion of a tiny value (found by tests/test_fuzz.py)
    (2.9973830842611253e-29, "[degF]"),
    (5e-324, "mg/dL"),                 # the smallest float: its last digit is far below any float's precision
    (1.5e306, "umol/L"),               # overflows once converted: unusable, never a crash
])
def test_absurd_magnitudes_load_without_a_crash(value, unit):
    from helpers import patient
    code = "LOINC:8310-5" if unit in ("Cel", "[degF]") else "LOINC:2160-0"
    record = patient(observations=[{"code": code, "value": value, "unit": unit, "date": "2026-11-01"}])
    (obs,) = next(iter(record.labs.values()))
    assert obs.value is None or obs.value == obs.value  # a number, or unusable with a reason
    if obs.value is None:
        assert "out of range once converted" in obs.problem


# A result reported in the unit the threshold was written in is compared exactly: rounding both
# into the catalogue unit (mg/dL for creatinine) must not make 133 umol/L "equal" to 132.6 umol/L.
@pytest.mark.parametrize("analyte, value, unit, rule, expected", [
    ("creatinine", 133, "umol/L", "creatinine > 132.6 umol/L", True),
    ("creatinine", 133, "µmol/L", "creatinine > 132.6 umol/L", True),      # one unit, two spellings
    ("creatinine", 132.6, "umol/L", "creatinine > 132.6 umol/L", False),
    ("creatinine", 133, "umol/L", "creatinine <= 132.6 umol/L", False),
    ("creatinine", 133, "umol/L", "creatinine between 100 umol/L and 132.6 umol/L", False),
    ("creatinine", 133, "umol/L", "creatinine between 1.0 mg/dL and 132.9 umol/L", False),  # two units
    ("creatinine", 132.7, "umol/L", "creatinine between 1.0 mg/dL and 132.9 umol/L", True),
    ("glucose", 7.0, "mmol/L", "glucose > 6.99 mmol/L", True),
    ("bilirubin", 20.6, "umol/L", "bilirubin > 20.5 umol/L", True),
    ("creatinine", 133, "umol/L", "creatinine <= 1.5 mg/dL", True),          # other unit: at written precision
])
def test_a_result_in_the_thresholds_own_unit_is_compared_exactly(analyte, value, unit, rule, expected):
    t = trial(f'exclusion E1 "x" = {rule}\n')
    c = one(t, patient(observations=[obs(CODES[analyte], value, unit)]))
    assert c.value is expected


def test_the_margin_is_told_in_the_unit_the_decision_compared():
    """A ULN multiple with the range in the result's own unit is decided in that unit; the explanation's
    margin must be the same numbers (30 umol/L against 1.5 x 21 = 31.5 umol/L: under by 1.5 umol/L),
    not a rounding residue of the converted values."""
    t = trial('exclusion E1 "x" = bilirubin > 1.5 x ULN\n')
    p = patient(observations=[obs(CODES["bilirubin"], 30, "umol/L", high=21)])
    c = one(t, p)
    assert c.value is False
    assert "under by 1.5 umol/L" in c.explanation
