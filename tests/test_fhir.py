"""Tests for the FHIR R4 -> patient JSON v1 converter (screening.patient.fhir)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.patient.fhir import ConversionReport, FhirError, fhir_to_patient, is_fhir

SYNTHEA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthea"
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")
JORDAN = "Jordan_Cruickshank_5de38439-d320-46d3-854d-3c098e88de4c.json"
ANGELIC = "Angelic_Mueller_29d755a6-32fa-482e-8fdd-081300209df8.json"
GRANVILLE = "Granville_Crooks_271033b4-ab72-469d-87e2-bbd6c6ecec1f.json"

needs_synthea = pytest.mark.skipif(not SYNTHEA.is_dir(), reason=f"no Synthea data at {SYNTHEA}")

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def load(name: str) -> dict:
    return json.loads((SYNTHEA / name).read_text(encoding="utf-8"))


def bundle(*resources: dict, kind: str = "collection", patient: dict | None = None) -> dict:
    """A bundle holding a Patient (id p1, fullUrl urn:uuid:p1) followed by ``resources``."""
    patient = patient or {"resourceType": "Patient", "id": "p1", "birthDate": "1984-03-15", "gender": "female"}
    entries = [{"fullUrl": "urn:uuid:p1", "resource": patient}]
    entries += [{"fullUrl": f"urn:uuid:r{index}", "resource": r} for index, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def concept(*codings: tuple[str, str, str], text: str | None = None) -> dict:
    result: dict = {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]}
    if text is not None:
        result["text"] = text
    return result


def observation(**fields) -> dict:
    """An ALT Observation of p1 on 2026-11-10; a field given as None is removed."""
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": concept((LOINC, "1742-6", "ALT")),
        "subject": {"reference": "urn:uuid:p1"},
        "effectiveDateTime": "2026-11-10T08:30:00+01:00",
    }
    resource.update(fields)
    return {key: value for key, value in resource.items() if value is not None}


def condition(**fields) -> dict:
    resource = {
        "resourceType": "Condition",
        "code": concept((SNOMED, "55464009", "Systemic lupus erythematosus")),
        "subject": {"reference": "urn:uuid:p1"},
    }
    resource.update(fields)
    return resource


# --- Synthea bundles ---------------------------------------------------------------------------


@needs_synthea
@pytest.mark.parametrize("path", sorted(SYNTHEA.glob("*.json")) if SYNTHEA.is_dir() else [], ids=lambda p: p.stem)
def test_every_synthea_bundle_converts(path: Path) -> None:
    document = json.loads(path.read_text(encoding="utf-8"))
    patient, report = fhir_to_patient(document)
    assert patient["id"] and patient["birth_date"] and patient["sex"] in ("female", "male")
    assert patient["observations"] and report.used["Patient"] == 1
    assert report.used["Observation"] > 0 and report.dropped.get("Encounter", 0) > 0
    for key in ("observations", "conditions", "medications", "procedures", "allergies", "immunizations"):
        for record in patient.get(key, ()):  # a list only when the bundle holds resources of its type
            assert record["code"] == record["codes"][0]
            assert all(code.split(":")[0] in ("LOINC", "SNOMED", "RXNORM", "CVX") for code in record["codes"])
            assert all(v is not None for v in record.values())
            for date_key in ("date", "onset", "end", "start"):
                assert len(record.get(date_key, "")) <= 10
            assert not any(ch in record.get("display", "") for ch in ZERO_WIDTH)
    assert all("value" in o for o in patient["observations"])
    assert "LOINC:55284-4" not in {o["code"] for o in patient["observations"]}
    json.dumps(patient)  # plain JSON data


@needs_synthea
def test_hand_checked_bundle() -> None:
    patient, report = fhir_to_patient(load(JORDAN))
    assert patient["id"] == "3afaeb2a-9f18-40b5-8fe7-dfd882de2f2b"
    assert patient["birth_date"] == "1965-07-05"
    assert patient["sex"] == "female"
    # 198 Observation resources: 180 valued ones plus 9 blood pressure panels of 2 components each
    assert len(patient["observations"]) == 207
    assert report.used == {
        "Patient": 1, "Observation": 198, "Condition": 7, "MedicationRequest": 13, "Procedure": 11, "Immunization": 12,
    }
    assert report.dropped["Claim"] == 32 and report.dropped["Encounter"] == 19

    alt = [o for o in patient["observations"] if o["code"] == "LOINC:1742-6"]
    assert alt == [
        {
            "code": "LOINC:1742-6", "codes": ["LOINC:1742-6"], "display": "ALT (Elevated)",
            "value": 142.266670665861, "unit": "IU/L", "date": "2017-06-24",
        }
    ]
    ast = next(o for o in patient["observations"] if o["code"] == "LOINC:1920-8")
    assert ast["unit"] == "IU/L"

    first_visit = {o["code"]: o for o in patient["observations"] if o["date"] == "2011-07-25"}
    assert first_visit["LOINC:8480-6"]["value"] == 120.97656000159179
    assert first_visit["LOINC:8462-4"]["value"] == 82.98536470405855
    assert first_visit["LOINC:8480-6"]["unit"] == first_visit["LOINC:8462-4"]["unit"] == "mm[Hg]"
    assert first_visit["LOINC:72166-2"]["value"] == "Never smoker"

    miscarriage = next(c for c in patient["conditions"] if c["code"] == "SNOMED:19169002")
    assert miscarriage == {
        "code": "SNOMED:19169002", "codes": ["SNOMED:19169002"], "display": "Miscarriage in first trimester",
        "onset": "1984-02-20", "status": "active", "recorded_date": "1984-02-20",
    }
    pharyngitis = next(c for c in patient["conditions"] if c["code"] == "SNOMED:195662009")
    assert (pharyngitis["onset"], pharyngitis["end"], pharyngitis["status"]) == ("2011-06-08", "2011-06-18", "resolved")

    iron = patient["medications"][0]
    assert iron == {
        "code": "RXNORM:310325", "codes": ["RXNORM:310325"], "display": "ferrous sulfate 325 MG Oral Tablet",
        "start": "1994-12-26", "status": "active",
    }
    procedure = patient["procedures"][0]
    assert procedure["code"] == "SNOMED:428191000124101" and procedure["status"] == "completed"
    assert report.summary().startswith(
        "used 198 Observation, 13 MedicationRequest, 12 Immunization, 11 Procedure, 7 Condition, 1 Patient; dropped 32 Claim, "
    )


@needs_synthea
def test_egfr_unit_spellings_pass_through() -> None:
    patient, _ = fhir_to_patient(load(ANGELIC))
    units = {o["unit"] for o in patient["observations"] if o["code"] == "LOINC:33914-3"}
    assert units == {"mL/min/{1.73_m2}", "mL/min"}


@needs_synthea
def test_zero_width_spaces_are_stripped_from_synthea_displays() -> None:
    assert "\u200b" in (SYNTHEA / GRANVILLE).read_text(encoding="utf-8")
    patient, _ = fhir_to_patient(load(GRANVILLE))
    displays = {o.get("display") for o in patient["observations"]}
    assert "Protein [Mass/volume] in Serum or Plasma" in displays
    assert not any("\u200b" in (d or "") for d in displays)


# --- small inline documents --------------------------------------------------------------------


def test_is_fhir() -> None:
    assert is_fhir({"resourceType": "Bundle"}) and is_fhir({"resourceType": "Patient"})
    assert not is_fhir({"resourceType": "Observation"})
    assert not is_fhir({"id": "P-001", "observations": []})
    assert not is_fhir([{"resourceType": "Bundle"}])


def test_single_patient_resource() -> None:
    patient, report = fhir_to_patient(
        {"resourceType": "Patient", "id": "pat-7", "birthDate": "1970-05", "gender": "other"}
    )
    # a lone Patient says nothing about conditions or medications: the lists are absent (not provided)
    assert patient == {"id": "pat-7", "birth_date": "1970-05", "sex": "other", "facts": {}}
    assert report == ConversionReport(used={"Patient": 1}, dropped={})
    assert report.summary() == "used 1 Patient; dropped nothing"


def test_patient_id_falls_back_to_full_url() -> None:
    document = bundle(patient={"resourceType": "Patient", "gender": "male"})
    patient, _ = fhir_to_patient(document)
    assert patient == {"id": "p1", "sex": "male", "facts": {}}


def test_searchset_bundle() -> None:
    base = "https://fhir.example.org/r4"
    document = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [
            {"fullUrl": f"{base}/Patient/123", "resource": {"resourceType": "Patient", "id": "123"},
             "search": {"mode": "match"}},
            {"fullUrl": f"{base}/Observation/o1", "search": {"mode": "include"},
             "resource": observation(subject={"reference": "Patient/123"},
                                     valueQuantity={"value": 95, "unit": "U/L", "system": UCUM, "code": "U/L"})},
            {"fullUrl": f"{base}/Observation/o2",
             "resource": observation(subject={"reference": f"{base}/Patient/123"}, valueQuantity={"value": 80})},
            {"fullUrl": f"{base}/Observation/o3",
             "resource": observation(subject={"reference": "Patient/999"}, valueQuantity={"value": 12})},
            {"resource": {"resourceType": "OperationOutcome", "issue": []}, "search": {"mode": "outcome"}},
        ],
    }
    patient, report = fhir_to_patient(document)
    assert patient["id"] == "123"
    assert [o["value"] for o in patient["observations"]] == [95, 80]
    assert patient["observations"][0] == {
        "code": "LOINC:1742-6", "codes": ["LOINC:1742-6"], "display": "ALT", "value": 95, "unit": "U/L",
        "date": "2026-11-10",
    }
    assert "unit" not in patient["observations"][1]
    assert report.used == {"Patient": 1, "Observation": 2}
    assert report.dropped == {"Observation of another patient": 1, "OperationOutcome": 1}


def test_observation_values_dates_and_ranges() -> None:
    document = bundle(
        observation(
            valueQuantity={"value": 95.5, "unit": "units per litre", "code": "U/L"},
            referenceRange=[{"low": {"value": 7, "unit": "U/L", "system": UCUM, "code": "U/L"},
                             "high": {"value": 40, "unit": "U/L", "system": UCUM, "code": "U/L"}}],
        ),
        observation(
            code=concept((LOINC, "5048-4", "ANA")),
            effectiveDateTime=None, effectivePeriod={"start": "2026-10-01T10:00:00Z"},
            valueCodeableConcept=concept((SNOMED, "10828004", "Positive")),
        ),
        observation(code=concept((LOINC, "8310-5", "Temp")), effectiveDateTime=None,
                    issued="2026-09-01T12:00:00.123Z", valueString=" \u200bfebrile "),
        observation(code=concept((LOINC, "11996-6", "Pregnancies")), valueBoolean=False),
        observation(code=concept((LOINC, "11996-6", "Pregnancies")), valueCodeableConcept={"coding": [{"code": "N"}]}),
        observation(code=concept((LOINC, "24323-8", "Panel")), hasMember=[{"reference": "urn:uuid:x"}]),
        observation(code=concept(("http://acme.org/labs", "X1", "Local lab")), valueQuantity={"value": 1}),
        observation(status="entered-in-error", valueQuantity={"value": 1000}),
    )
    patient, report = fhir_to_patient(document)
    alt, ana, temp, pregnant, coded = patient["observations"]
    assert alt["value"] == 95.5 and alt["unit"] == "units per litre"  # not UCUM: .unit wins
    assert alt["reference_range"] == {"low": 7, "high": 40, "unit": "U/L"}
    assert (ana["value"], ana["date"], ana["codes"]) == ("Positive", "2026-10-01", ["LOINC:5048-4"])
    assert (temp["value"], temp["date"]) == ("febrile", "2026-09-01")
    assert pregnant["value"] is False
    assert coded["value"] == "N"
    assert report.used["Observation"] == 5
    assert report.dropped == {
        "Observation without a value": 1,
        "Observation without a known code": 1,
        "coding of an unknown system": 1,
        "Observation entered-in-error": 1,
    }


def test_component_observation_is_split_and_parent_kept_only_with_its_own_value() -> None:
    pressure = observation(
        code=concept((LOINC, "55284-4", "Blood Pressure")),
        component=[
            {"code": concept((LOINC, "8480-6", "Systolic")),
             "valueQuantity": {"value": 141, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
            {"code": concept((LOINC, "8462-4", "Diastolic")),
             "valueQuantity": {"value": 92, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
            {"code": concept((LOINC, "8478-0", "Mean")), "dataAbsentReason": {"text": "not measured"}},
        ],
    )
    scored = observation(
        code=concept((LOINC, "72133-2", "Score")), valueInteger=7,
        component=[{"code": concept((LOINC, "72134-0", "Item")), "valueInteger": 3}],
    )
    patient, report = fhir_to_patient(bundle(pressure, scored))
    assert [(o["code"], o["value"], o.get("unit"), o["date"]) for o in patient["observations"]] == [
        ("LOINC:8480-6", 141, "mm[Hg]", "2026-11-10"),
        ("LOINC:8462-4", 92, "mm[Hg]", "2026-11-10"),
        ("LOINC:72133-2", 7, None, "2026-11-10"),
        ("LOINC:72134-0", 3, None, "2026-11-10"),
    ]
    assert report.used["Observation"] == 2 and not report.dropped


def test_condition_with_icd10_and_snomed_codings() -> None:
    lupus = condition(
        code=concept(
            ("http://hl7.org/fhir/sid/icd-10-cm", "M32.14", "Glomerular disease in SLE"),
            ("http://snomed.info/sct", "1234", "Lupus nephritis"),
            ("http://example.org/local", "LN", "lupus"),
            text="Glomerular disease in SLE\ufeff ",
        ),
        clinicalStatus={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                    "code": "relapse"}]},
        verificationStatus={"coding": [{"code": "confirmed"}]},
        onsetPeriod={"start": "2019-03"},
        abatementDateTime="2024-01-31T00:00:00Z",
    )
    patient, report = fhir_to_patient(bundle(lupus))
    assert patient["conditions"] == [
        {
            "code": "ICD10:M32.14", "codes": ["ICD10:M32.14", "SNOMED:1234"],
            "display": "Glomerular disease in SLE", "onset": "2019-03", "end": "2024-01-31", "status": "relapse",
        }
    ]
    assert report.dropped == {"coding of an unknown system": 1}


def test_entered_in_error_and_refuted_conditions_are_dropped() -> None:
    document = bundle(
        condition(verificationStatus={"coding": [{"code": "entered-in-error"}]}),
        condition(verificationStatus={"coding": [{"code": "refuted"}]}),
        condition(code=concept(("urn:oid:1.2.3", "X", "unknown"))),
        condition(code={"coding": [{"system": SNOMED}]}),
        condition(onsetDateTime="2020-02-29"),
    )
    patient, report = fhir_to_patient(document)
    # conditions without a readable code are kept as unreadable records (they used to vanish)
    assert [c.get("onset") for c in patient["conditions"]] == [None, None, "2020-02-29"]
    assert [c.get("unreadable") for c in patient["conditions"]] == [
        "coded only in urn:oid:1.2.3 X (a code system that is not read)", "has no code", None]
    assert report.used["Condition"] == 3
    assert report.dropped == {
        "Condition entered-in-error": 1,
        "Condition refuted": 1,
        "coding of an unknown system": 1,
        "coding without a code": 1,
    }
    assert report.unreadable == {"Condition coded only in urn:oid:1.2.3 X": 1, "Condition has no code": 1}


def test_medication_request_and_statement_with_effective_period() -> None:
    request = {
        "resourceType": "MedicationRequest", "status": "completed", "intent": "order",
        "subject": {"reference": "urn:uuid:p1"},
        "medicationCodeableConcept": concept((RXNORM, "3002", "cyclophosphamide")),
        "authoredOn": "2025-01-10T09:00:00+02:00",
        "dispenseRequest": {"validityPeriod": {"start": "2025-01-10", "end": "2025-07-10"}},
    }
    statement = {
        "resourceType": "MedicationStatement", "status": "active",
        "subject": {"reference": "urn:uuid:p1"},
        "medicationCodeableConcept": concept(("http://www.whocc.no/atc", "L04AA06", "mycophenolic acid")),
        "effectivePeriod": {"start": "2025-08-01", "end": "2026-02-01"},
    }
    single_day = {key: value for key, value in statement.items() if key != "effectivePeriod"}
    single_day["effectiveDateTime"] = "2026-03-04T10:00:00Z"
    patient, report = fhir_to_patient(bundle(request, statement, single_day))
    assert patient["medications"] == [
        {"code": "RXNORM:3002", "codes": ["RXNORM:3002"], "display": "cyclophosphamide",
         "start": "2025-01-10", "end": "2025-07-10", "status": "completed"},
        {"code": "ATC:L04AA06", "codes": ["ATC:L04AA06"], "display": "mycophenolic acid",
         "start": "2025-08-01", "end": "2026-02-01", "status": "active"},
        {"code": "ATC:L04AA06", "codes": ["ATC:L04AA06"], "display": "mycophenolic acid",
         "start": "2026-03-04", "status": "active"},
    ]
    assert report.used == {"Patient": 1, "MedicationRequest": 1, "MedicationStatement": 2}


def test_medication_reference_is_resolved_in_the_bundle() -> None:
    medication = {"resourceType": "Medication", "id": "med-1",
                  "code": concept((RXNORM, "1256", "azathioprine"))}
    unused = {"resourceType": "Medication", "id": "med-2", "code": concept((RXNORM, "9", "other"))}
    by_url = {"resourceType": "MedicationRequest", "status": "active", "subject": {"reference": "urn:uuid:p1"},
              "medicationReference": {"reference": "urn:uuid:r0"}, "authoredOn": "2024-05-01"}
    by_id = dict(by_url, medicationReference={"reference": "Medication/med-1"}, authoredOn="2024-06-01")
    missing = dict(by_url, medicationReference={"reference": "Medication/nowhere"})
    contained = dict(
        by_url, medicationReference={"reference": "#hcq"}, authoredOn="2024-07-01",
        contained=[{"resourceType": "Medication", "id": "hcq",
                    "code": concept((RXNORM, "5521", "hydroxychloroquine"))}],
    )
    patient, report = fhir_to_patient(bundle(medication, unused, by_url, by_id, missing, contained))
    assert [(m.get("code"), m.get("display"), m["start"]) for m in patient["medications"]] == [
        ("RXNORM:1256", "azathioprine", "2024-05-01"),
        ("RXNORM:1256", "azathioprine", "2024-06-01"),
        (None, None, "2024-05-01"),
        ("RXNORM:5521", "hydroxychloroquine", "2024-07-01"),
    ]
    # an unresolved reference is kept as an unreadable medication (it used to vanish)
    assert patient["medications"][2]["unreadable"] == "medication reference 'Medication/nowhere' does not resolve in the bundle"
    assert report.used == {"Patient": 1, "MedicationRequest": 4, "Medication": 1}
    assert report.dropped == {"unreferenced Medication": 1}
    assert report.unreadable == {"MedicationRequest with unresolved medication": 1}


def test_procedure_periods_and_unused_resource_types() -> None:
    biopsy = {
        "resourceType": "Procedure", "status": "completed", "subject": {"reference": "urn:uuid:p1"},
        "code": concept((SNOMED, "287862008", "renal biopsy"), ("http://www.ama-assn.org/go/cpt", "50200", "")),
        "performedPeriod": {"start": "2026-10-01T08:00:00Z", "end": "2026-10-02T09:00:00Z"},
    }
    dialysis = {"resourceType": "Procedure", "status": "completed", "subject": {"reference": "urn:uuid:p1"},
                "code": concept((SNOMED, "265764009", "dialysis")), "performedDateTime": "2026"}
    encounter = {"resourceType": "Encounter", "status": "finished"}
    patient, report = fhir_to_patient(bundle(biopsy, dialysis, encounter, dict(encounter), {"resourceType": "Claim"}))
    assert patient["procedures"] == [
        {"code": "SNOMED:287862008", "codes": ["SNOMED:287862008", "CPT:50200"], "display": "renal biopsy",
         "date": "2026-10-01", "end": "2026-10-02", "status": "completed"},
        {"code": "SNOMED:265764009", "codes": ["SNOMED:265764009"], "display": "dialysis",
         "date": "2026", "status": "completed"},
    ]
    assert report.dropped == {"Encounter": 2, "Claim": 1}
    assert report.summary() == "used 2 Procedure, 1 Patient; dropped 2 Encounter, 1 Claim"


def test_zero_width_characters_are_stripped_from_displays() -> None:
    lupus = condition(code={"coding": [{"system": SNOMED, "code": "55464009",
                                        "display": "\u200bSystemic\u200c lupus\u200d\ufeff  "}]})
    patient, _ = fhir_to_patient(bundle(lupus))
    assert patient["conditions"][0]["display"] == "Systemic lupus"


# --- errors ------------------------------------------------------------------------------------


def test_error_string_is_path_then_message() -> None:
    err = FhirError("not a number", "$.entry[3].resource.valueQuantity.value")
    assert isinstance(err, ValueError)
    assert (err.path, err.message) == ("$.entry[3].resource.valueQuantity.value", "not a number")
    assert str(err) == "$.entry[3].resource.valueQuantity.value: not a number"


def with_entry(resource: object) -> dict:
    document = bundle()
    document["entry"].append({"resource": resource})
    return document


@pytest.mark.parametrize(
    ("document", "path"),
    [
        pytest.param([], "$.resourceType", id="not-a-dict"),
        pytest.param({"resourceType": "Observation"}, "$.resourceType", id="wrong-resource-type"),
        pytest.param({"resourceType": "Bundle", "entry": {}}, "$.entry", id="entry-not-a-list"),
        pytest.param({"resourceType": "Bundle", "entry": [None]}, "$.entry[0]", id="entry-not-an-object"),
        pytest.param(with_entry("Observation"), "$.entry[1].resource", id="resource-not-an-object"),
        pytest.param(with_entry({"id": "x"}), "$.entry[1].resource.resourceType", id="no-resource-type"),
        pytest.param(with_entry(observation(valueQuantity={"value": "95"})),
                     "$.entry[1].resource.valueQuantity.value", id="quantity-string"),
        pytest.param(with_entry(observation(valueQuantity={"value": True})),
                     "$.entry[1].resource.valueQuantity.value", id="quantity-bool"),
        pytest.param(with_entry(observation(component=[{"code": {}, "valueQuantity": {"value": "high"}}])),
                     "$.entry[1].resource.component[0].valueQuantity.value", id="component-quantity"),
        pytest.param(with_entry(observation(valueQuantity={"value": 1},
                                            referenceRange=[{"high": {"value": "40"}}])),
                     "$.entry[1].resource.referenceRange[0].high.value", id="range-string"),
        pytest.param(with_entry(observation(valueQuantity={"value": 1}, effectiveDateTime="2021-02-30")),
                     "$.entry[1].resource.effectiveDateTime", id="impossible-day"),
        pytest.param(with_entry(observation(valueQuantity={"value": 1}, effectiveDateTime="2021-13")),
                     "$.entry[1].resource.effectiveDateTime", id="impossible-month"),
        pytest.param(with_entry(observation(valueQuantity={"value": 1}, effectiveDateTime="yesterday")),
                     "$.entry[1].resource.effectiveDateTime", id="not-a-date"),
        pytest.param(with_entry(observation(valueQuantity={"value": 1}, effectiveDateTime="2021-03-01T25:00:00Z")),
                     "$.entry[1].resource.effectiveDateTime", id="impossible-hour"),
        pytest.param(with_entry(condition(onsetPeriod={"start": "03/2019"})),
                     "$.entry[1].resource.onsetPeriod.start", id="condition-onset"),
        pytest.param(with_entry({"resourceType": "Procedure", "code": concept((SNOMED, "1", "x")),
                                 "performedPeriod": {"start": "2020-01-01", "end": 2020}}),
                     "$.entry[1].resource.performedPeriod.end", id="procedure-end"),
        pytest.param(bundle(patient={"resourceType": "Patient", "id": "p1", "birthDate": "1984-02-30"}),
                     "$.entry[0].resource.birthDate", id="birth-date"),
        pytest.param(bundle(patient={"resourceType": "Patient", "id": "p1", "gender": "F"}),
                     "$.entry[0].resource.gender", id="gender"),
        pytest.param({"resourceType": "Patient", "id": "x", "birthDate": "1984-3-15"}, "$.birthDate",
                     id="lone-patient-date"),
        pytest.param({"resourceType": "Patient"}, "$.id", id="lone-patient-without-id"),
    ],
)
def test_errors_point_at_the_exact_path(document: object, path: str) -> None:
    with pytest.raises(FhirError) as caught:
        fhir_to_patient(document)  # type: ignore[arg-type]
    assert caught.value.path == path
    assert str(caught.value).startswith(f"{path}: ")


def test_a_bundle_with_two_patients_must_be_split() -> None:
    document = with_entry({"resourceType": "Patient", "id": "p2"})
    with pytest.raises(FhirError, match=r"the bundle holds 2 patients; split it") as caught:
        fhir_to_patient(document)
    assert caught.value.path == "$.entry"


def test_a_bundle_without_a_patient_is_an_error() -> None:
    document = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": observation()}]}
    with pytest.raises(FhirError, match="no Patient") as caught:
        fhir_to_patient(document)
    assert caught.value.path == "$.entry"
