"""Numbers that are not numbers (NaN, Infinity, 1e999, huge integers) and reference ranges that
cannot be limits of normal: refused at their JSON path, or the limit is unknown and says why."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import AS_OF, ROOT, obs, one, patient, trial
from screening import DataError, patient_from_document
from screening.patient.fhir import FhirError, fhir_to_patient
from screening.patient.load import parse_json

SCREENING = str(Path(sys.executable).with_name("screening"))
TRIAL = str(ROOT / "trials" / "NCT00659217.crit")
ALT = "LOINC:1742-6"
CREATININE = "LOINC:2160-0"


def problems(call) -> list[tuple[str, str]]:
    with pytest.raises(DataError) as caught:
        call()
    return [(p.path, p.message) for p in caught.value.problems]


# ---------------------------------------------------------------- JSON text
@pytest.mark.parametrize("literal, path, message", [
    ("NaN", "$.observations[0].value", "NaN is not a number: patient JSON takes finite numbers only"),
    ("Infinity", "$.observations[0].value", "Infinity is not a number: patient JSON takes finite numbers only"),
    ("-Infinity", "$.observations[0].value", "-Infinity is not a number: patient JSON takes finite numbers only"),
    ("1e999", "$.observations[0].value", "1e999 is too large to be a number (it overflows to infinity)"),
    ("-1.5E+400", "$.observations[0].value", "-1.5E+400 is too large to be a number (it overflows to infinity)"),
    ("1" + "0" * 400, "$.observations[0].value",
     "100000000000...000000 (401 characters) is too large to be a number (it overflows to infinity)"),
    ("9" * 5000, "$.observations[0].value",  # beyond Python's 4300-digit int limit: no ValueError
     "999999999999...999999 (5,000 characters) is too large to be a number (it overflows to infinity)"),
])
def test_a_value_that_is_not_a_finite_number_is_refused_at_its_path(literal, path, message):
    text = '{"id": "x", "observations": [{"code": "LOINC:1742-6", "value": %s, "unit": "U/L"}]}' % literal
    assert problems(lambda: parse_json(text, "p.json")) == [(path, message)]


def test_every_bad_number_is_reported_in_ranges_facts_and_extra_fields():
    text = ('{"id": "x", "observations": [{"code": "LOINC:1742-6", "value": 50, "unit": "U/L", '
            '"reference_range": {"low": -Infinity, "high": 1e400}}], "facts": {"weight": NaN}, '
            '"conditions": [{"code": "ICD10:M32", "severity": [1, Infinity]}]}')
    assert problems(lambda: parse_json(text, "p.json")) == [
        ("$.observations[0].reference_range.low", "-Infinity is not a number: patient JSON takes finite numbers only"),
        ("$.observations[0].reference_range.high", "1e400 is too large to be a number (it overflows to infinity)"),
        ("$.facts.weight", "NaN is not a number: patient JSON takes finite numbers only"),
        ("$.conditions[0].severity[1]", "Infinity is not a number: patient JSON takes finite numbers only"),
    ]


def test_large_but_finite_numbers_and_underflow_are_numbers():
    document = parse_json('{"a": 1e308, "b": -1.7976931348623157e308, "c": 1e-999, "d": %s}' % ("9" * 300), "p")
    assert document["a"] == 1e308 and document["c"] == 0.0 and document["d"] == int("9" * 300)


def test_check_refuses_nan_with_exit_2_and_the_path(tmp_path):
    (tmp_path / "p.json").write_text('{"id": "x", "birth_date": "1980-01-01", "facts": {"smoker": NaN}}')
    proc = subprocess.run([SCREENING, "check", TRIAL, "p.json", "--as-of", "2026-11-25"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "p.json: $.facts.smoker: NaN is not a number: patient JSON takes finite numbers only"
    assert proc.stdout == ""


# ---------------------------------------------------------------- Python objects (the API)
def test_the_api_refuses_nan_inf_and_huge_integers_at_their_path():
    document = {"id": "x",
                "observations": [{"code": ALT, "value": float("nan"), "unit": "U/L",
                                  "reference_range": {"low": float("-inf"), "high": 40}}],
                "facts": {"count": 10 ** 400},
                "medications": [{"code": "ATC:L04AX01", "dose": float("inf")}]}
    assert problems(lambda: patient_from_document(document, "api")) == [
        ("$.observations[0].value", "NaN is not a number: patient JSON takes finite numbers only"),
        ("$.observations[0].reference_range.low", "-Infinity is not a number: patient JSON takes finite numbers only"),
        ("$.facts.count", "an integer of 1,329 bits is too large to be a number (it overflows to infinity)"),
        ("$.medications[0].dose", "Infinity is not a number: patient JSON takes finite numbers only"),
    ]


def test_the_api_refuses_values_that_are_not_json():
    document = {"id": "x", "facts": {"when": {1, 2}}, "conditions": [{"code": "ICD10:M32", 3: "x"}]}
    assert problems(lambda: patient_from_document(document)) == [
        ("$.facts.when", "not a JSON value (a Python set)"),
        ("$.conditions[0]", "key 3 is not a string"),
    ]


def _fhir_bundle(value) -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1984-03-15"}},
        {"fullUrl": "urn:uuid:o1", "resource": {
            "resourceType": "Observation", "status": "final", "subject": {"reference": "urn:uuid:p1"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
            "effectiveDateTime": "2026-11-10", "valueQuantity": {"value": value, "code": "U/L"}}}]}


def test_fhir_numbers_are_refused_in_text_in_the_api_and_in_the_converter():
    text = json.dumps(_fhir_bundle(1)).replace('"value": 1', '"value": NaN')
    assert problems(lambda: parse_json(text, "b.json")) == [
        ("$.entry[1].resource.valueQuantity.value", "NaN is not a number: patient JSON takes finite numbers only")]
    assert problems(lambda: patient_from_document(_fhir_bundle(float("inf")))) == [
        ("$.entry[1].resource.valueQuantity.value", "Infinity is not a number: patient JSON takes finite numbers only")]
    for value in (float("nan"), float("-inf"), 10 ** 400):  # the converter alone refuses them too
        with pytest.raises(FhirError) as caught:
            fhir_to_patient(_fhir_bundle(value))
        assert caught.value.path == "$.entry[1].resource.valueQuantity.value"
        assert caught.value.message == "not a finite number (NaN, infinite, or too large)"


def test_a_value_that_overflows_once_converted_is_unknown_with_a_warning():
    t = trial('inclusion I1 "x" = creatinine <= 1.5 mg/dL\n')
    record = patient(observations=[obs(CREATININE, 1e308, "mmol/L")])  # x 11.3 mg/dL per mmol/L: infinite
    result = one(t, record)
    assert (result.verdict, result.value) == ("unknown", None)
    assert result.missing == ["creatinine result of 2026-11-10: 1e+308 mmol/L is out of range once converted"]
    assert record.warnings == ["$.observations[0].value: 1e+308 mmol/L is out of range once converted"]


# ---------------------------------------------------------------- reference ranges
ULN_RULE = 'exclusion E1 "x" = ALT > 2 x ULN\n'


def test_a_backwards_range_is_not_used_and_the_limit_says_why():
    record = patient(observations=[obs(ALT, 95, "U/L", low=40, high=7)])
    result = one(trial(ULN_RULE), record)  # 95 > 2 x 40 if the range were read either way round: not decided
    assert (result.verdict, result.value) == ("unknown", None)
    assert result.missing == ["reference range (ULN) for ALT: $.observations[0].reference_range runs backwards "
                              "(low 40 > high 7)"]
    assert record.warnings == ["$.observations[0].reference_range: runs backwards (low 40 > high 7); "
                               "the range is not used"]
    screened = trial(ULN_RULE).screen(record, AS_OF)
    assert screened.warnings == record.warnings and screened.to_dict()["warnings"] == record.warnings


def test_a_dropped_range_falls_back_to_the_rule_sets_table_with_the_warning_kept():
    t = trial('reference range ALT = 7 to 40 U/L\n' + ULN_RULE)
    record = patient(observations=[obs(ALT, 95, "U/L", low=40, high=7)])
    result = one(t, record)
    assert (result.verdict, result.value) == ("fail", True)  # 95 > 2 x 40 (the rule set's table)
    assert "from the rule set's reference ranges" in result.explanation
    assert t.screen(record, AS_OF).warnings == record.warnings != []


@pytest.mark.parametrize("low, high, rule, missing, warnings", [
    (-5, 40, 'inclusion I1 "x" = ALT >= 0.5 x LLN\n',
     "reference range (LLN) for ALT: $.observations[0].reference_range.low is -5, which cannot be a limit of normal",
     ["$.observations[0].reference_range.low: -5 cannot be a limit of normal; it is not used"]),
    (-40, -7, ULN_RULE,
     "reference range (ULN) for ALT: $.observations[0].reference_range.high is -7, which cannot be a limit of normal",
     ["$.observations[0].reference_range.low: -40 cannot be a limit of normal; it is not used",
      "$.observations[0].reference_range.high: -7 cannot be a limit of normal; it is not used"]),
    (None, 0, ULN_RULE,
     "reference range (ULN) for ALT: $.observations[0].reference_range.high is 0, which cannot be a limit of normal",
     ["$.observations[0].reference_range.high: 0 cannot be a limit of normal; it is not used"]),
    (0, 40, 'inclusion I1 "x" = ALT >= 0.5 x LLN\n',  # "0 to 40" is common: no warning, but no LLN
     "reference range (LLN) for ALT: $.observations[0].reference_range.low is 0, which is no lower limit of normal",
     []),
])
def test_negative_and_zero_limits_make_the_test_unknown(low, high, rule, missing, warnings):
    record = patient(observations=[obs(ALT, 95, "U/L", low=low, high=high)])
    result = one(trial(rule), record)
    assert (result.verdict, result.value, result.missing) == ("unknown", None, [missing])
    assert record.warnings == warnings


def test_a_zero_lower_limit_keeps_the_upper_one():
    record = patient(observations=[obs(ALT, 95, "U/L", low=0, high=40)])
    result = one(trial(ULN_RULE), record)
    assert (result.verdict, result.value, record.warnings) == ("fail", True, [])
    assert "ULN 40 U/L (from the observation) = 80 U/L; over by 15 U/L" in result.explanation


def test_a_document_full_of_bad_numbers_lists_twenty_and_counts_the_rest():
    text = '{"id": "x", "facts": {%s}}' % ", ".join(f'"f{i}": NaN' for i in range(200))
    found = problems(lambda: parse_json(text, "p.json"))
    assert len(found) == 21
    assert found[0] == ("$.facts.f0", "NaN is not a number: patient JSON takes finite numbers only")
    assert found[-1] == ("$", "... and 180 more problems of this document")


def test_an_inline_case_patient_with_yaml_nan_is_refused_at_its_position(tmp_path):
    cases = tmp_path / "t.cases.yaml"
    cases.write_text(f"trial: {TRIAL}\nas_of: 2026-11-25\ncases:\n  - name: a\n    patient:\n      id: x\n"
                     "      observations:\n        - {code: \"LOINC:1742-6\", value: .nan, unit: U/L}\n"
                     "    decision: ineligible\n")
    proc = subprocess.run([SCREENING, "test", "t.cases.yaml"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert ("t.cases.yaml:8:41: inline patient: $.observations[0].value: NaN is not a number: patient JSON takes "
            "finite numbers only") in proc.stdout + proc.stderr


def test_a_negative_concentration_is_not_a_result():
    """A creatinine of -1 mg/dL is an error in the record: unknown with a warning, never `<= 1.5` true."""
    from helpers import one, patient, trial
    t = trial('inclusion I1 "x" = any creatinine <= 1.5 mg/dL within 1 year\n')
    p = patient(observations=[{"code": "LOINC:2160-0", "value": -1, "unit": "mg/dL", "date": "2026-11-01"}])
    c = one(t, p)
    assert (c.verdict, c.value) == ("unknown", None)
    assert "negative" in c.explanation
    assert p.warnings == ["$.observations[0].value: -1 mg/dL is negative, which no creatinine result can be; "
                          "the result is not used"]
    # a temperature below zero Celsius is a number like any other (an offset unit)
    t2 = trial('exclusion E1 "x" = temperature < 35 Cel\n')
    assert one(t2, patient(observations=[{"code": "LOINC:8310-5", "value": -1, "unit": "Cel",
                                          "date": "2026-11-20"}])).value is True
