"""FHIR record lists are complete only when the bundle says so; unreadable records are kept and named.

Issue 7, "Trust at the boundary": a bundle without any Condition used to give `conditions: []`,
so a malignancy exclusion passed. Every test here checks both engines (interpreter and fast path).
"""
from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from screening import compile_text, patient_from_document
from screening.cli import app
from screening.patient.fhir import fhir_to_patient

AS_OF = date(2026, 11, 25)
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
IPS = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"

RULES = '''trial "T-FHIR"
valueset malignancy = ICD10:C00-C96, SNOMED:363346000
valueset anticoagulant = RXNORM:11289
valueset penicillin = SNOMED:91936005
exclusion E1 "History of malignancy" = condition malignancy
exclusion E2 "On anticoagulants" = medication anticoagulant
exclusion E3 "Penicillin allergy" = allergy penicillin
'''
TRIAL = compile_text(RULES, "fhir.crit")


def bundle(*resources: dict, patient: dict | None = None) -> dict:
    patient = patient or {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01", "gender": "female"}
    entries = [{"fullUrl": "urn:uuid:p1", "resource": patient}]
    entries += [{"fullUrl": f"urn:uuid:r{i}", "resource": r} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def condition(*codings, text=None, **fields) -> dict:
    code: dict = {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]}
    if text:
        code["text"] = text
    return {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "code": code, **fields}


def empty_list(loinc: str, reason: str = "nilknown") -> dict:
    return {"resourceType": "List", "status": "current", "mode": "snapshot", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": LOINC, "code": loinc}]},
            "emptyReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                        "code": reason}]}}


def screen(document: dict):
    """Interpreter result and fast-path values; the two must agree on every criterion."""
    record = patient_from_document(document, "bundle.json")
    result = TRIAL.screen(record, AS_OF)
    fast = TRIAL.values(record, AS_OF)
    assert [c.value for c in result.criteria] == [value for _, value in fast]
    return result


def verdict(result, criterion: str) -> str:
    return result.criterion(criterion).verdict


# --- which lists are written ---------------------------------------------------------------------


def test_a_lone_patient_provides_no_record_lists() -> None:
    patient, _ = fhir_to_patient({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"})
    assert not {"conditions", "medications", "procedures", "allergies", "immunizations"} & set(patient)
    result = screen({"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"})
    assert verdict(result, "E1") == "unknown"  # used to pass: conditions were written as []
    assert result.criterion("E1").missing == ["conditions (not provided)"]
    assert result.decision == "undetermined"


def test_a_bundle_of_labs_says_nothing_about_conditions() -> None:
    lab = {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
           "code": {"coding": [{"system": LOINC, "code": "1742-6"}]}, "effectiveDateTime": "2026-11-01",
           "valueQuantity": {"value": 30, "unit": "U/L"}}
    patient, _ = fhir_to_patient(bundle(lab))
    assert "observations" in patient and "conditions" not in patient and "medications" not in patient
    assert verdict(screen(bundle(lab)), "E1") == "unknown"


def test_a_resource_of_the_type_makes_the_list_complete() -> None:
    lupus = condition((SNOMED, "55464009", "SLE"))
    result = screen(bundle(lupus))
    assert verdict(result, "E1") == "pass"  # the problem list was exported: no malignancy in it
    assert verdict(result, "E2") == "unknown"  # but no medication list
    assert "medications (not provided)" in result.criterion("E2").missing


def test_an_entered_in_error_resource_still_shows_the_list_was_exported() -> None:
    wrong = condition((ICD10, "C50.9", "breast cancer"), verificationStatus={"coding": [{"code": "entered-in-error"}]})
    patient, report = fhir_to_patient(bundle(wrong))
    assert patient["conditions"] == []
    assert report.dropped["Condition entered-in-error"] == 1
    assert verdict(screen(bundle(wrong)), "E1") == "pass"


@pytest.mark.parametrize("loinc, key", [("11450-4", "conditions"), ("10160-0", "medications"),
                                        ("47519-4", "procedures"), ("48765-2", "allergies"),
                                        ("11369-6", "immunizations")])
def test_list_with_empty_reason_nilknown_is_an_empty_list(loinc: str, key: str) -> None:
    patient, report = fhir_to_patient(bundle(empty_list(loinc)))
    assert patient[key] == []
    assert report.used[f"List: no known {key}"] == 1


@pytest.mark.parametrize("reason", ["notasked", "withheld", "unavailable", "notstarted", "closed"])
def test_other_empty_reasons_leave_the_list_not_provided(reason: str) -> None:
    patient, report = fhir_to_patient(bundle(empty_list("11450-4", reason)))
    assert "conditions" not in patient
    assert report.dropped[f"List of conditions empty ({reason}): not known to be empty"] == 1
    assert verdict(screen(bundle(empty_list("11450-4", reason))), "E1") == "unknown"


def test_nilknown_problem_list_passes_the_malignancy_exclusion() -> None:
    result = screen(bundle(empty_list("11450-4")))
    assert verdict(result, "E1") == "pass"
    assert "no condition in malignancy recorded (0 checked)" in result.criterion("E1").explanation


def test_a_list_of_another_patient_is_ignored() -> None:
    other = dict(empty_list("11450-4"), subject={"reference": "Patient/someone-else"})
    patient, _ = fhir_to_patient(bundle(other))
    assert "conditions" not in patient


@pytest.mark.parametrize("resource, key", [
    (condition((SNOMED, "160245001", "No current problems or disability")), "conditions"),
    (condition((IPS, "no-known-problems", "No known problems")), "conditions"),
    ({"resourceType": "MedicationStatement", "status": "active", "subject": {"reference": "Patient/p1"},
      "medicationCodeableConcept": {"coding": [{"system": SNOMED, "code": "787481004"}]}}, "medications"),
    ({"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"},
      "code": {"coding": [{"system": SNOMED, "code": "716186003", "display": "No known allergy"}]}}, "allergies"),
    ({"resourceType": "Immunization", "status": "completed", "patient": {"reference": "Patient/p1"},
      "vaccineCode": {"coding": [{"system": IPS, "code": "no-known-immunizations"}]}}, "immunizations"),
])
def test_no_known_entries_make_an_empty_list_and_are_not_records(resource: dict, key: str) -> None:
    patient, _ = fhir_to_patient(bundle(resource))
    assert patient[key] == []


def test_no_known_drug_allergy_does_not_rule_out_other_allergies() -> None:
    nkda = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": SNOMED, "code": "409137002", "display": "No known drug allergy"}]}}
    patient, report = fhir_to_patient(bundle(nkda))
    assert "allergies" not in patient
    assert report.dropped["AllergyIntolerance 'no known drug allergy (other allergies not excluded)'"] == 1
    assert verdict(screen(bundle(nkda)), "E3") == "unknown"


def test_no_information_entry_is_not_a_complete_list() -> None:
    patient, _ = fhir_to_patient(bundle(condition((IPS, "no-problem-info", "No information about problems"))))
    assert "conditions" not in patient


def test_refuted_no_known_problems_does_not_complete_the_list() -> None:
    refuted = condition((SNOMED, "160245001", "No current problems"), verificationStatus={"coding": [{"code": "refuted"}]})
    patient, _ = fhir_to_patient(bundle(refuted))
    assert "conditions" not in patient


# --- unreadable records ----------------------------------------------------------------------------


def test_condition_coded_only_as_text_makes_the_exclusion_unknown_and_names_it() -> None:
    document = bundle(condition(text="breast ca"))
    patient, report = fhir_to_patient(document)
    assert patient["conditions"] == [{"unreadable": "coded only as text", "fhir_path": "$.entry[1].resource",
                                      "display": "breast ca"}]
    assert report.unreadable == {"Condition coded only as text": 1}
    result = screen(document)
    e1 = result.criterion("E1")
    assert e1.verdict == "unknown"
    assert e1.missing == ["condition 'breast ca' ($.entry[1].resource): coded only as text: "
                          "cannot tell whether it is in malignancy"]
    assert result.decision == "undetermined"


def test_another_record_that_matches_still_decides() -> None:
    document = bundle(condition(text="breast ca"), condition((ICD10, "C50.9", "Breast cancer")))
    result = screen(document)
    assert verdict(result, "E1") == "fail"
    assert result.criterion("E1").missing == []


@pytest.mark.parametrize("system, name", [("http://hl7.org/fhir/sid/icd-9-cm", "ICD-9-CM"),
                                          ("http://fhir.de/CodeSystem/bfarm/icd-10-gm", "ICD-10-GM"),
                                          ("http://example.org/local-codes", "http://example.org/local-codes")])
def test_conditions_in_unread_code_systems_are_unreadable(system: str, name: str) -> None:
    document = bundle(condition((system, "174.9", "Malignant neoplasm of breast")))
    patient, _ = fhir_to_patient(document)
    assert patient["conditions"][0]["unreadable"] == f"coded only in {name} 174.9 (a code system that is not read)"
    (missing,) = screen(document).criterion("E1").missing
    assert missing.startswith("condition 'Malignant neoplasm of breast' ($.entry[1].resource): coded only in ")
    assert missing.endswith("cannot tell whether it is in malignancy")


def test_unresolved_medication_reference_makes_medication_tests_unknown() -> None:
    request = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
               "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-10-01",
               "medicationReference": {"reference": "Medication/gone", "display": "warfarin 5 mg"}}
    document = bundle(request)
    patient, report = fhir_to_patient(document)
    assert patient["medications"][0]["unreadable"] == "medication reference 'Medication/gone' does not resolve in the bundle"
    assert report.unreadable == {"MedicationRequest with unresolved medication": 1}
    e2 = screen(document).criterion("E2")
    assert e2.verdict == "unknown"
    assert e2.missing == ["medication 'warfarin 5 mg' ($.entry[1].resource): medication reference 'Medication/gone' "
                          "does not resolve in the bundle: cannot tell whether it is in anticoagulant"]


def test_unreadable_record_outside_the_window_cannot_matter() -> None:
    trial = compile_text('trial "T"\nvalueset malignancy = ICD10:C00-C96\n'
                         'exclusion E1 "x" = condition malignancy within 1 year\n', "t.crit")
    document = bundle(condition(text="breast ca", onsetDateTime="2001-01-01", abatementDateTime="2002-01-01"))
    record = patient_from_document(document, "b.json")
    assert trial.screen(record, AS_OF).criteria[0].verdict == "pass"
    assert trial.values(record, AS_OF) == ((True, False),)


def test_hand_written_patient_json_can_mark_a_record_unreadable() -> None:
    record = patient_from_document({"id": "P", "conditions": [{"display": "Ca mammae", "unreadable": "coded only as text"}],
                                    "medications": [], "allergies": []}, "p.json")
    result = TRIAL.screen(record, AS_OF)
    assert result.criterion("E1").missing == ["condition 'Ca mammae' ($.conditions[0]): coded only as text: "
                                              "cannot tell whether it is in malignancy"]
    assert [v for _, v in TRIAL.values(record, AS_OF)] == [None, False, False]


def test_a_record_needs_a_code_or_an_unreadable_reason() -> None:
    from screening.errors import DataError
    with pytest.raises(DataError) as caught:
        patient_from_document({"id": "P", "conditions": [{"display": "x"}]}, "p.json")
    assert "$.conditions[0]" in str(caught.value) and "unreadable" in str(caught.value)


def test_check_and_explain_name_the_unreadable_record(tmp_path) -> None:
    rules = tmp_path / "t.crit"
    rules.write_text(RULES, encoding="utf-8")
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle(condition(text="breast ca"))), encoding="utf-8")
    runner = CliRunner()
    checked = runner.invoke(app, ["check", str(rules), str(path), "--as-of", "2026-11-25", "--format", "json"])
    assert checked.exit_code == 0
    e1 = next(c for c in json.loads(checked.stdout)["criteria"] if c["id"] == "E1")
    assert e1["verdict"] == "unknown" and "coded only as text" in e1["missing"][0]
    explained = runner.invoke(app, ["explain", str(rules), str(path), "--as-of", "2026-11-25"], terminal_width=300)
    assert explained.exit_code == 0
    assert "condition 'breast ca' ($.entry[1].resource): coded only as text" in explained.stdout
    converted = runner.invoke(app, ["convert-fhir", str(path)])
    assert converted.exit_code == 0 and '"unreadable": "coded only as text"' in converted.stdout
