"""Units as registries and lab reports paste them: superscript exponents (10⁹/L, /mm³, m²), the
space in "1.73 m²", and both micro signs, in rule files and in patient results, on both engines."""
import pytest

from screening import SourceError
from screening.parser import lark_parser
from screening.units import convert, parse_unit, to_ucum

from helpers import obs, one, patient, trial


@pytest.mark.parametrize("written, ucum", [
    ("10⁹/L", "10*9/L"),
    ("x 10⁹/L", "10*9/L"),
    ("×10⁹/L", "10*9/L"),
    ("10¹²/L", "10*12/L"),
    ("x10³/µL", "10*3/uL"),
    ("/mm³", "/mm3"),
    ("cells/mm³", "/mm3"),
    ("mm²", "mm2"),
    ("m²", "m2"),
    ("kg/m²", "kg/m2"),
    ("mL/min/1.73 m²", "mL/min/{1.73_m2}"),
    ("mL/min/1.73m²", "mL/min/{1.73_m2}"),
    ("µmol/L", "umol/L"),  # U+00B5 micro sign
    ("μmol/L", "umol/L"),  # U+03BC Greek mu
    ("10⁻³", "10*-3"),
])
def test_superscripts_are_read_as_exponents(written, ucum):
    assert to_ucum(written) == ucum
    parse_unit(written)  # and it is a unit


def test_superscript_counts_convert_exactly():
    assert convert(100_000, "/mm³", "10⁹/L") == 100.0
    assert convert(1500, "cells/mm³", "10^9/L") == 1.5
    assert convert(4.5, "10¹²/L", "10^12/L") == 4.5
    assert parse_unit("mL/min/1.73 m²").dimension == parse_unit("mL/min/1.73m2").dimension


def test_a_lost_superscript_is_still_refused():
    with pytest.raises(Exception) as info:
        parse_unit("109/L")
    assert "ambiguous" in str(info.value)


def test_grammar_stays_free_of_conflicts_and_collisions():
    lark_parser.cache_clear()
    try:
        lark_parser(strict=True)
    finally:
        lark_parser.cache_clear()


@pytest.mark.parametrize("rule, canonical", [
    ("platelets >= 100 x 10⁹/L", 100.0),
    ("platelets >= 100 10⁹/L", 100.0),
    ("platelets>=100x10⁹/L", 100.0),
    ("platelets >= 100,000/mm³", 100.0),
    ("ANC >= 1,500 cells/mm³", 1.5),
    ("eGFR >= 60 mL/min/1.73 m²", 60.0),
    ("eGFR >= 60 mL/min/1.73m²", 60.0),
    ("BMI < 35 kg/m²", 35.0),
    ("creatinine <= 133 μmol/L", 1.50),
    ("creatinine <= 133 µmol/L", 1.50),
])
def test_rule_files_read_superscript_units(rule, canonical):
    t = trial(f'inclusion I1 "t" = {rule}\n')
    assert t.criteria[0].condition.bound.value == pytest.approx(canonical)


def test_superscript_in_a_unit_that_does_not_fit_the_analyte_is_a_compile_error():
    with pytest.raises(SourceError) as info:
        trial('inclusion I1 "t" = hemoglobin >= 10 x 10¹²/L\n')
    assert "incompatible units" in str(info.value)
    assert info.value.first.span.line == 2


@pytest.mark.parametrize("value, unit, expected", [
    (150, "10⁹/L", "pass"),
    (150, "x 10⁹/L", "pass"),
    (99, "10⁹/L", "fail"),
    (150_000, "/mm³", "pass"),
    (99_000, "cells/mm³", "fail"),
    (150, "x10³/µL", "pass"),
    (150, "x10³/μL", "pass"),
])
def test_patient_results_in_superscript_units_on_both_engines(value, unit, expected):
    t = trial('inclusion I1 "platelets" = platelets >= 100 x 10^9/L\n')
    p = patient(observations=[obs("LOINC:777-3", value, unit)])
    assert one(t, p).verdict == expected  # one() also compares trial.values with trial.screen


def test_patient_egfr_per_1_73_m2_with_a_space_and_superscript():
    t = trial('inclusion I1 "eGFR" = eGFR >= 60 mL/min/1.73m2\n')
    assert one(t, patient(observations=[obs("LOINC:33914-3", 62, "mL/min/1.73 m²")])).verdict == "pass"
    assert one(t, patient(observations=[obs("LOINC:33914-3", 58, "mL/min/1.73 m²")])).verdict == "fail"
