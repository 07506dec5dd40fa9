"""Hemoglobin in mmol/L (European labs: moles of the monomer, 16,114.5 g/mol) converts to and from
g/dL, at the precision it was written with, the same on both engines."""
import pytest

from screening.analytes import catalogue
from screening.units import parse_unit

from helpers import obs, one, patient, trial


@pytest.mark.parametrize("mmol, g_dl", [("8.0", 12.9), ("6.2", 10.0), ("7.4", 11.9), ("5.6", 9.0), ("9.3", 15.0)])
def test_published_equivalents(mmol, g_dl):
    conversion = catalogue().lookup("hemoglobin").conversion_from(parse_unit("mmol/L"))
    assert conversion.factor == pytest.approx(1.61145)  # 1 g/dL = 0.6206 mmol/L
    assert conversion.apply_written(float(mmol), mmol) == g_dl


@pytest.mark.parametrize("value, unit, expected", [
    (6.2, "mmol/L", "pass"),  # 10.0 g/dL at its written precision
    (6.1, "mmol/L", "fail"),  # 9.8 g/dL
    (8.0, "mmol/l", "pass"),
    (10.0, "g/dL", "pass"),
    (100, "g/L", "pass"),
])
def test_patient_hemoglobin_in_mmol_per_litre_on_both_engines(value, unit, expected):
    t = trial('inclusion I1 "Hb >= 10 g/dL" = hemoglobin >= 10 g/dL\n')
    p = patient(observations=[obs("LOINC:718-7", value, unit)])
    assert one(t, p).verdict == expected


@pytest.mark.parametrize("value, unit, expected", [
    (10.0, "g/dL", "pass"),  # the threshold 6.2 mmol/L is 10.0 g/dL
    (9.9, "g/dL", "fail"),
    (6.2, "mmol/L", "pass"),
    (6.1, "mmol/L", "fail"),
])
def test_threshold_in_mmol_per_litre(value, unit, expected):
    t = trial('inclusion I1 "Hb >= 6.2 mmol/L" = Hb >= 6.2 mmol/L\n')
    assert t.criteria[0].condition.bound.value == 10.0
    p = patient(observations=[obs("LOINC:718-7", value, unit)])
    assert one(t, p).verdict == expected


def test_hemoglobin_in_moles_by_its_own_loinc_code():
    t = trial('inclusion I1 "Hb" = hemoglobin >= 10 g/dL\n')
    assert one(t, patient(observations=[obs("LOINC:59260-0", 8.0, "mmol/L")])).verdict == "pass"
