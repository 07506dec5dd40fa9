"""The analyte catalogue: names, aliases, LOINC codes, units and molar masses."""
from __future__ import annotations

import re
import tomllib
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from screening.analytes import Analyte, catalogue
from screening.errors import UnitProblem
from screening.units import parse_unit

DOCS = Path(__file__).resolve().parents[1] / "docs" / "language.md"

MASS_CONC = "[length]^-3.[mass]"
SUBSTANCE_CONC = "[length]^-3.[substance]"


def _raw() -> dict:
    text = resources.files("screening.data").joinpath("analytes.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_catalogue_loads_every_entry():
    cat = catalogue()
    assert len(cat.analytes) == len(_raw()) == 61
    assert all(isinstance(a, Analyte) for a in cat.analytes)
    assert catalogue() is cat  # read once per process


def test_catalogue_names_are_the_documented_ones():
    text = DOCS.read_text(encoding="utf-8")
    listed = re.search(r"codes and units\): (.*?) \(names are case-insensitive", text, re.S).group(1)
    documented = {name.strip() for name in listed.replace("\n", " ").split(",")}
    assert documented == {a.name for a in catalogue().analytes}


@pytest.mark.parametrize("analyte", [a for a in catalogue().analytes if a.unit_text], ids=lambda a: a.name)
def test_every_unit_parses(analyte):
    unit = parse_unit(analyte.unit_text)
    assert unit.ucum and unit.dimension
    assert analyte.kind in ("quantity", "score")
    assert analyte.conversion_from(unit).apply(1.5) == 1.5  # its own unit converts to itself


def test_qualitative_analytes_have_no_unit():
    qualitative = {a.name for a in catalogue().analytes if a.kind == "qualitative"}
    assert qualitative == {"ANA", "HBsAg", "HCV_antibody", "HIV_test", "urine_protein"}
    for name in qualitative:
        analyte = catalogue().lookup(name)
        assert analyte.unit is None
        with pytest.raises(UnitProblem, match="qualitative"):
            analyte.conversion_from(parse_unit("U/L"))
    assert all(a.unit_text for a in catalogue().analytes if a.kind in ("quantity", "score"))


def test_no_loinc_code_belongs_to_two_analytes():
    # counted in the TOML itself, not through the loader (which would refuse to build the index)
    counts = Counter(code for entry in _raw().values() for code in entry["loinc"])
    assert [code for code, n in counts.items() if n > 1] == []
    local = sum(len(entry.get("local", ())) for entry in _raw().values())
    assert len(catalogue().by_code) == sum(counts.values()) + local
    for code in counts:
        assert re.fullmatch(r"\d{1,7}-\d", code), code  # LOINC: number, hyphen, check digit


def _loinc_check_digit(number: str) -> str:
    """LOINC's mod-10 check digit (Luhn over the digits, from the right)."""
    total = 0
    for i, digit in enumerate(reversed(number)):
        d = int(digit) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return str((10 - total % 10) % 10)


def test_every_loinc_code_has_a_valid_check_digit():
    assert _loinc_check_digit("1742") == "6" and _loinc_check_digit("2160") == "0"
    bad = [code for a in catalogue().analytes for code in a.loinc
           if _loinc_check_digit(code.split("-")[0]) != code.split("-")[1]]
    assert bad == []


@pytest.mark.parametrize(("code", "name"), [
    ("1742-6", "ALT"),
    ("2160-0", "creatinine"),
    ("38483-4", "creatinine"),
    ("777-3", "platelets"),
    ("4548-4", "HbA1c"),
    ("33914-3", "eGFR"),
    ("8480-6", "systolic_bp"),
    ("8462-4", "diastolic_bp"),
    ("718-7", "hemoglobin"),
    ("2345-7", "glucose"),
])
def test_loinc_codes_resolve(code, name):
    assert catalogue().for_code(f"LOINC:{code}").name == name
    assert f"LOINC:{code}" in catalogue().lookup(name).codes


def test_unknown_codes_and_names_resolve_to_nothing():
    assert catalogue().for_code("LOINC:0000-0") is None
    assert catalogue().for_code("1742-6") is None  # the system prefix is part of the key
    assert catalogue().lookup("serum_glutamate") is None


@pytest.mark.parametrize("analyte", catalogue().analytes, ids=lambda a: a.name)
def test_names_and_aliases_resolve_case_insensitively(analyte):
    for key in (analyte.name, *analyte.aliases):
        for spelling in (key, key.lower(), key.upper(), key.swapcase()):
            assert catalogue().lookup(spelling) is analyte, spelling


@pytest.mark.parametrize(("alias", "name"), [
    ("SGPT", "ALT"), ("sgot", "AST"), ("Hb", "hemoglobin"), ("HGB", "hemoglobin"), ("plt", "platelets"),
    ("a1c", "HbA1c"), ("GFR", "eGFR"), ("crcl", "creatinine_clearance"), ("urate", "uric_acid"),
    ("Pulse", "heart_rate"), ("SBP", "systolic_bp"), ("anti_hcv", "HCV_antibody"),
])
def test_aliases(alias, name):
    assert catalogue().lookup(alias).name == name


def test_names_list_holds_names_and_aliases():
    names = catalogue().names()
    assert names == sorted(names)
    assert {"ALT", "SGPT", "creatinine", "serum_creatinine", "PLT", "A1c"} <= set(names)


@pytest.mark.parametrize("analyte", [a for a in catalogue().analytes if a.molar_mass], ids=lambda a: a.name)
def test_molar_mass_goes_with_a_mass_or_substance_concentration(analyte):
    assert analyte.unit.dimension in {MASS_CONC, SUBSTANCE_CONC}
    # and it is used: the other concentration converts through it and back
    other = "umol/L" if analyte.unit.dimension == MASS_CONC else "mg/dL"
    there = analyte.conversion_from(parse_unit(other)).apply(100)
    assert there > 0


def test_documented_molar_masses():
    expected = {"creatinine": 113.12, "glucose": 180.156, "bilirubin": 584.66, "cholesterol": 386.65,
                "urea": 60.06, "BUN": 28.014, "calcium": 40.078, "uric_acid": 168.11}
    assert {name: catalogue().lookup(name).molar_mass for name in expected} == expected


def test_analyte_conversions_into_the_catalogue_unit():
    cat = catalogue()
    # 88.4 umol/L creatinine = 0.0884 mmol/L x 113.12 mg/mmol = 9.999808 mg/L = 0.9999808 mg/dL
    assert cat.lookup("creatinine").conversion_from(parse_unit("umol/L")).apply(88.4) == 0.9999808
    # 5 mmol/L urea = 5 x 28.014 mg/L urea nitrogen = 14.007 mg/dL
    assert cat.lookup("BUN").conversion_from(parse_unit("mmol/L")).apply(5) == 14.007
    # 1 ukat/L = 60 U/L
    assert cat.lookup("ALT").conversion_from(parse_unit("ukat/L")).apply(1) == 60.0
    assert cat.lookup("ALT").conversion_from(parse_unit("IU/L")).apply(45) == 45.0
    # 150,000 /mm3 = 150 x 10^9/L
    assert cat.lookup("platelets").conversion_from(parse_unit("cells/mm3")).apply(150_000) == 150.0
    assert cat.lookup("eGFR").conversion_from(parse_unit("mL/min")).apply(45) == 45.0
    assert cat.lookup("temperature").conversion_from(parse_unit("degF")).apply(100.4) == 38.0
    assert cat.lookup("weight").conversion_from(parse_unit("lb")).apply(150) == 68.0388555
    assert cat.lookup("hemoglobin").conversion_from(parse_unit("g/L")).apply(95) == 9.5
    assert cat.lookup("hematocrit").conversion_from(parse_unit("L/L")).apply(0.45) == 45.0
    # anti-dsDNA is reported in IU/mL: WHO International Units, not enzyme units
    assert cat.lookup("anti_dsDNA").conversion_from(parse_unit("IU/mL")).apply(30) == 30.0


def test_hba1c_from_ifcc_uses_the_master_equation():
    hba1c = catalogue().lookup("HbA1c")
    assert hba1c.ifcc_to_ngsp == (0.09148, 2.152)
    assert hba1c.conversion_from(parse_unit("mmol/mol")).apply(53) == 7.00044  # 0.09148 x 53 + 2.152
    assert hba1c.conversion_from(parse_unit("mmol/mol")).apply(48) == 6.54304
    # issue 7: a dimensionless unit other than % and mmol/mol is refused, not read as a plain ratio
    with pytest.raises(UnitProblem, match="refused rather than guessed"):
        hba1c.conversion_from(parse_unit("1"))


def test_conversions_the_catalogue_refuses():
    cat = catalogue()
    with pytest.raises(UnitProblem, match="incompatible units for ALT"):
        cat.lookup("ALT").conversion_from(parse_unit("mg/dL"))
    with pytest.raises(UnitProblem, match="molar mass"):
        cat.lookup("albumin").conversion_from(parse_unit("umol/L"))
    with pytest.raises(UnitProblem, match="incompatible"):
        cat.lookup("systolic_bp").conversion_from(parse_unit("kg"))


def test_equivalents_convert_through_the_valence_and_only_with_one():
    from screening.errors import UnitProblem
    from screening.units import parse_unit

    calcium = catalogue().lookup("calcium")
    assert calcium.conversion_from(parse_unit("mEq/L")).apply(5) == pytest.approx(10.0195)  # 2.5 mmol/L
    assert catalogue().lookup("sodium").conversion_from(parse_unit("mEq/L")).apply(140) == 140.0
    with pytest.raises(UnitProblem, match="valence"):
        catalogue().lookup("creatinine").conversion_from(parse_unit("mEq/L"))


def test_international_units_convert_only_to_international_units():
    from screening.errors import UnitProblem
    from screening.units import parse_unit

    dsdna = catalogue().lookup("anti_dsDNA")
    assert dsdna.conversion_from(parse_unit("IU/mL")).apply(200) == 200.0
    with pytest.raises(UnitProblem, match="arbitrary"):
        dsdna.conversion_from(parse_unit("10^9/L"))
