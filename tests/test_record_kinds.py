"""The record kinds `allergy` and `immunization`: from FHIR, in patient JSON, in the language, on both engines."""
from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from screening import compile_text, patient_from_document
from screening.cli import app
from screening.errors import SourceError
from screening.patient.fhir import fhir_to_patient

AS_OF = date(2026, 11, 25)
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"

RULES = '''trial "T-KINDS"
valueset penicillin "penicillin allergy" = SNOMED:91936005, SNOMED:294505008
valueset live_vaccine "live attenuated vaccine" = CVX:03, CVX:21, CVX:94, CVX:187
exclusion E1 "Known allergy to penicillin" = allergy penicillin
exclusion E2 "Active, severe penicillin allergy" = active allergy penicillin with criticality = "high"
exclusion E3 "Received a live vaccine within 4 weeks" = immunization live_vaccine within 4 weeks
inclusion I1 "Vaccinated against influenza" = immunization CVX:141
exclusion E4 "Food allergy" = allergy SNOMED:91935009 with category contains "food"
exclusion E5 "Resolved penicillin allergy" = resolved allergy penicillin
'''
TRIAL = compile_text(RULES, "kinds.crit")


def bundle(*resources: dict) -> dict:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01", "gender": "male"}
    entries = [{"fullUrl": "urn:uuid:p1", "resource": patient}]
    entries += [{"fullUrl": f"urn:uuid:r{i}", "resource": r} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def allergy(code="91936005", display="Allergy to penicillin", clinical="active", verification="confirmed",
            **fields) -> dict:
    resource = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                "clinicalStatus": {"coding": [{"code": clinical}]},
                "verificationStatus": {"coding": [{"code": verification}]}}
    resource.update(fields)
    return resource


def vaccine(code="03", display="MMR", day="2026-11-10", status="completed") -> dict:
    return {"resourceType": "Immunization", "status": status, "patient": {"reference": "Patient/p1"},
            "vaccineCode": {"coding": [{"system": CVX, "code": code, "display": display}]},
            "occurrenceDateTime": f"{day}T09:00:00Z"}


def screen(document: dict) -> dict[str, bool | None]:
    record = patient_from_document(document, "b.json")
    result = TRIAL.screen(record, AS_OF)
    values = {c.id: c.value for c in result.criteria}
    assert list(values.values()) == [v for _, v in TRIAL.values(record, AS_OF)]
    return values


def test_allergy_intolerance_becomes_an_allergy_record() -> None:
    resource = allergy(criticality="high", category=["medication"], onsetDateTime="2001-05")
    patient, report = fhir_to_patient(bundle(resource))
    assert patient["allergies"] == [{
        "code": "SNOMED:91936005", "codes": ["SNOMED:91936005"], "display": "Allergy to penicillin",
        "status": "active", "onset": "2001-05", "criticality": "high", "category": "medication",
    }]
    assert report.used["AllergyIntolerance"] == 1


def test_immunization_becomes_an_immunization_record_with_cvx_codes() -> None:
    patient, report = fhir_to_patient(bundle(vaccine()))
    assert patient["immunizations"] == [{"code": "CVX:03", "codes": ["CVX:03"], "display": "MMR",
                                         "date": "2026-11-10", "status": "completed"}]
    assert report.used["Immunization"] == 1


def test_not_done_immunization_is_not_a_vaccine_given_but_the_list_exists() -> None:
    patient, report = fhir_to_patient(bundle(vaccine(status="not-done")))
    assert patient["immunizations"] == [] and report.dropped["Immunization not-done"] == 1
    assert screen(bundle(vaccine(status="not-done")))["E3"] is False


def test_allergy_and_vaccine_tests_on_both_engines() -> None:
    values = screen(bundle(allergy(criticality="high", category=["medication"]), vaccine(),
                           vaccine("141", "Influenza", "2025-10-01")))
    assert values == {"E1": True, "E2": True, "E3": True, "I1": True, "E4": False, "E5": False}


def test_a_live_vaccine_before_the_window_does_not_exclude() -> None:
    values = screen(bundle(vaccine(day="2026-09-01")))
    assert values["E3"] is False and values["I1"] is False
    assert values["E1"] is None  # no AllergyIntolerance at all: allergies not provided


def test_allergy_qualifiers_and_status() -> None:
    low = allergy(criticality="low")
    assert screen(bundle(low))["E2"] is False
    assert screen(bundle(allergy()))["E2"] is None  # criticality not recorded
    resolved = allergy(clinical="resolved")
    values = screen(bundle(resolved))
    assert (values["E1"], values["E2"], values["E5"]) == (True, False, True)
    assert screen(bundle(allergy("91935009", "Peanut allergy", category=["food"])))["E4"] is True


def test_unconfirmed_allergy_is_unknown_and_refuted_is_dropped() -> None:
    document = bundle(allergy(verification="unconfirmed"))
    assert screen(document)["E1"] is None
    result = TRIAL.screen(patient_from_document(document, "b.json"), AS_OF)
    assert result.criterion("E1").missing == ["allergy SNOMED:91936005: verification status unconfirmed, not confirmed"]
    assert screen(bundle(allergy(verification="refuted")))["E1"] is False


def test_allergy_coded_only_as_text_is_named() -> None:
    text_only = allergy()
    text_only["code"] = {"text": "PCN"}
    result = TRIAL.screen(patient_from_document(bundle(text_only), "b.json"), AS_OF)
    assert result.criterion("E1").missing == [
        "allergy 'PCN' ($.entry[1].resource): coded only as text: cannot tell whether it is in penicillin allergy"]


def test_explanations_use_the_new_nouns() -> None:
    result = TRIAL.screen(patient_from_document(bundle(allergy(), vaccine(day="2026-09-01")), "b.json"), AS_OF)
    assert "allergy SNOMED:91936005 'Allergy to penicillin' (active) matches penicillin allergy" \
        in result.criterion("E1").explanation
    assert "no immunization in live attenuated vaccine within 4 weeks recorded (1 checked)" \
        in result.criterion("E3").explanation


def test_patient_json_lists_and_schema() -> None:
    record = patient_from_document({"id": "P", "allergies": [{"code": "SNOMED:91936005", "status": "active"}],
                                    "immunizations": [{"code": "CVX:03", "date": "2026-11-20"}]}, "p.json")
    assert screen({"id": "P", "allergies": [], "immunizations": []}) == {
        "E1": False, "E2": False, "E3": False, "I1": False, "E4": False, "E5": False}
    assert TRIAL.screen(record, AS_OF).decision == "ineligible"
    schema = json.loads(CliRunner().invoke(app, ["schema"]).stdout)
    assert {"allergies", "immunizations", "deceased"} <= set(schema["properties"])
    assert "comparator" in schema["$defs"]["Observation"]["properties"]
    assert "unreadable" in schema["$defs"]["Condition"]["properties"]


def test_resolved_is_for_conditions_and_allergies_only() -> None:
    with pytest.raises(SourceError) as caught:
        compile_text('trial "T"\nexclusion E1 "x" = resolved immunization CVX:03\n', "t.crit")
    assert "`resolved` applies to conditions and allergies" in str(caught.value.diagnostics[0])


def test_cvx_is_a_code_system_of_patient_json() -> None:
    from screening.errors import DataError
    with pytest.raises(DataError):
        patient_from_document({"id": "P", "immunizations": [{"code": "CVZ:03"}]}, "p.json")


@pytest.mark.parametrize("rule", ["medication cyc within 3 months", "medication cyc", "active medication cyc",
                                  "inactive medication cyc within 3 months"])
def test_a_medication_not_taken_is_no_exposure(rule) -> None:
    # FHIR MedicationStatement.status not-taken: the patient did not take it; never an exposure
    trial = compile_text(f'trial "T"\nvalueset cyc "cyclophosphamide" = RXNORM:3002\n'
                         f'inclusion I1 "on cyclophosphamide" = {rule}\n', "t.crit")
    p = patient_from_document({"version": 1, "id": "p", "medications": [
        {"code": "RXNORM:3002", "start": "2026-10-01", "end": "2026-10-20", "status": "not-taken"}]})
    (c,) = trial.screen(p, AS_OF).criteria
    assert (c.verdict, trial.values(p, AS_OF)) == ("fail", ((True, False),))


def test_an_intended_medication_is_not_known_to_be_current():
    """MedicationStatement `intended` is a plan: `active medication X` is unknown, never true."""
    from helpers import one, patient, trial
    t = trial('exclusion E1 "x" = active medication RXNORM:3002\n')
    c = one(t, patient(medications=[{"code": "RXNORM:3002", "status": "intended", "start": "2026-11-01"}]))
    assert (c.verdict, c.value) == ("unknown", None)
