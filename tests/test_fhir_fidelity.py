"""FHIR fidelity (issue 7): versioned references, comparators as intervals, unconfirmed diagnoses, death.

Verdicts are asserted on both engines: ``trial.screen`` (interpreter) and ``trial.values`` (fast path).
"""
from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

from screening import compile_text, patient_from_document
from screening.cli import app
from screening.errors import DataError
from screening.evaluate import interval_test
from screening.patient.fhir import fhir_to_patient

AS_OF = date(2026, 11, 25)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"


def bundle(*resources: dict, patient: dict | None = None, patient_url: str = "urn:uuid:p1") -> dict:
    patient = patient or {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01", "gender": "female"}
    entries = [{"fullUrl": patient_url, "resource": patient}]
    entries += [{"fullUrl": f"urn:uuid:r{i}", "resource": r} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def creatinine(value, comparator=None, unit="mg/dL", day="2026-11-01") -> dict:
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    if comparator:
        quantity["comparator"] = comparator
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": LOINC, "code": "2160-0", "display": "Creatinine"}]},
            "effectiveDateTime": day, "valueQuantity": quantity}


def both(trial, document) -> list:
    """Criterion values from the interpreter, checked against the fast path."""
    record = patient_from_document(document, "b.json")
    result = trial.screen(record, AS_OF)
    values = [c.value for c in result.criteria]
    assert values == [v for _, v in trial.values(record, AS_OF)]
    assert [c.verdict for c in result.criteria] == [c.verdict for c in trial.screen(record, AS_OF, explain=False).criteria]
    return values


# --- versioned references --------------------------------------------------------------------------


@pytest.mark.parametrize("reference", [
    "Patient/p1/_history/3",
    "urn:uuid:p1",
    "https://fhir.example.org/r4/Patient/p1/_history/7",
    "https://fhir.example.org/r4/Patient/p1",
])
def test_versioned_and_full_url_references_are_the_same_patient(reference: str) -> None:
    lab = dict(creatinine(1.0), subject={"reference": reference})
    patient, report = fhir_to_patient(bundle(lab))
    assert len(patient["observations"]) == 1 and report.used["Observation"] == 1


def test_versioned_full_url_of_the_patient_entry() -> None:
    lab = dict(creatinine(1.0), subject={"reference": "https://h.org/fhir/Patient/p1"})
    document = bundle(lab, patient_url="https://h.org/fhir/Patient/p1/_history/2")
    patient, _ = fhir_to_patient(document)
    assert len(patient["observations"]) == 1


def test_another_patients_history_is_still_another_patient() -> None:
    lab = dict(creatinine(1.0), subject={"reference": "Patient/p2/_history/1"})
    patient, report = fhir_to_patient(bundle(lab))
    assert "observations" not in patient and report.dropped == {"Observation of another patient": 1}


def test_versioned_medication_reference_resolves() -> None:
    medication = {"resourceType": "Medication", "id": "m1",
                  "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "11289"}]}}
    request = {"resourceType": "MedicationRequest", "status": "active", "subject": {"reference": "Patient/p1"},
               "medicationReference": {"reference": "Medication/m1/_history/4"}}
    patient, _ = fhir_to_patient(bundle(medication, request))
    assert patient["medications"][0]["code"] == "RXNORM:11289"


# --- comparators -----------------------------------------------------------------------------------


def test_comparator_is_carried_into_patient_json() -> None:
    patient, _ = fhir_to_patient(bundle(creatinine(1.5, ">")))
    assert patient["observations"][0]["comparator"] == ">"
    assert patient["observations"][0]["value"] == 1.5


def test_bad_comparator_is_an_error_with_its_path() -> None:
    with pytest.raises(DataError) as caught:
        patient_from_document(bundle(creatinine(1.5, "~")), "b.json")
    assert "$.entry[1].resource.valueQuantity.comparator" in str(caught.value)


def test_ad_comparator_is_not_a_number() -> None:
    patient, _ = fhir_to_patient(bundle(creatinine(1.5, "ad")))
    assert patient["observations"][0]["value"] == "ad 1.5 mg/dL"


COMPARATOR_RULES = compile_text('''trial "T-CMP"
inclusion A "<= 1.5" = creatinine <= 1.5 mg/dL
inclusion B "<= 2" = creatinine <= 2 mg/dL
inclusion C "> 1" = creatinine > 1 mg/dL
inclusion D "< 1" = creatinine < 1 mg/dL
inclusion E "between" = creatinine between 0.5 mg/dL and 1.2 mg/dL
inclusion F "= 1.5" = creatinine = 1.5 mg/dL
inclusion G "!= 1" = creatinine != 1 mg/dL
inclusion H ">= 1.5 in umol/L" = creatinine >= 132.6 umol/L
inclusion I "any" = any creatinine > 1.2 mg/dL within 3 months
''', "cmp.crit")


@pytest.mark.parametrize("comparator, value, expected", [
    (">", 1.5, [False, None, True, False, False, False, True, True, True]),
    (">=", 1.5, [None, None, True, False, False, None, True, True, True]),
    ("<", 0.5, [True, True, False, True, False, False, True, False, False]),
    ("<=", 1.0, [True, True, False, None, None, False, None, False, False]),
    ("<", 1.0, [True, True, False, True, None, False, True, False, False]),
])
def test_comparator_results_are_intervals_on_both_engines(comparator, value, expected) -> None:
    assert both(COMPARATOR_RULES, bundle(creatinine(value, comparator))) == expected


def test_interval_logic_at_the_edges() -> None:
    assert interval_test(">", 1.5, "<=", 1.5) is False
    assert interval_test(">", 1.5, "<=", 2) is None
    assert interval_test(">", 1.5, ">", 1) is True
    assert interval_test(">", 1.5, ">", 1.5) is True
    assert interval_test(">=", 1.5, ">", 1.5) is None
    assert interval_test("<", 0.5, "<", 1) is True
    assert interval_test("<", 0.5, "<", 0.5) is True
    assert interval_test("<=", 0.5, "<", 0.5) is None
    assert interval_test("<", 0.5, ">=", 0.5) is False
    assert interval_test("<=", 0.5, ">", 0.5) is False
    assert interval_test(">", 2, "between", 1, 3) is None
    assert interval_test(">", 3, "between", 1, 3) is False
    assert interval_test(">=", 3, "between", 1, 3) is None
    assert interval_test("<", 1, "between", 1, 3) is False
    assert interval_test(">", 3, "=", 3) is False and interval_test(">", 3, "!=", 3) is True
    assert interval_test(">", 3, "=", 4) is None and interval_test(">", 3, "!=", 4) is None


def test_explanation_shows_the_comparator_and_missing_names_the_interval() -> None:
    trial = compile_text('trial "T"\ninclusion I1 "creatinine" = creatinine <= 2 mg/dL\n'
                         'inclusion I2 "creatinine" = creatinine <= 1.5 mg/dL\n', "t.crit")
    result = trial.screen(patient_from_document(bundle(creatinine(1.5, ">")), "b.json"), AS_OF)
    i1, i2 = result.criteria
    assert i1.verdict == "unknown"
    assert "creatinine > 1.5 mg/dL on 2026-11-01" in i1.explanation
    assert i1.missing == ["creatinine result of 2026-11-01: reported only as > 1.5 mg/dL, "
                          "which lies on both sides of the limit"]
    assert i2.verdict == "fail" and "creatinine > 1.5 mg/dL on 2026-11-01" in i2.explanation
    assert "the whole interval is on one side of the limit" in i2.explanation


def test_a_comparator_result_of_a_qualitative_test_by_its_upper_limit() -> None:
    trial = compile_text('trial "T"\nexclusion E1 "HBsAg" = HBsAg is positive\n', "t.crit")
    def hbsag(value, comparator):
        return {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": LOINC, "code": "5196-1"}]}, "effectiveDateTime": "2026-11-01",
                "valueQuantity": {"value": value, "unit": "[IU]/mL", "comparator": comparator},
                "referenceRange": [{"high": {"value": 0.05}}]}
    assert both(trial, bundle(hbsag(0.05, "<"))) == [False]
    assert both(trial, bundle(hbsag(10, "<"))) == [None]  # under 10 may still be over 0.05
    assert both(trial, bundle(hbsag(250, ">"))) == [True]


# --- verification status ---------------------------------------------------------------------------


VERIFY_RULES = compile_text('trial "T"\nvalueset malignancy = ICD10:C00-C96\n'
                            'exclusion E1 "malignancy" = condition malignancy\n'
                            'inclusion I1 "no malignancy" = not condition malignancy\n', "v.crit")


def cancer(status: str | None) -> dict:
    resource = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": ICD10, "code": "C50.9", "display": "Breast cancer"}]}}
    if status:
        resource["verificationStatus"] = {"coding": [{"code": status}]}
    return resource


@pytest.mark.parametrize("status", ["provisional", "differential", "unconfirmed"])
def test_unconfirmed_diagnoses_are_never_confirmed_and_never_silently_false(status: str) -> None:
    document = bundle(cancer(status))
    patient, _ = fhir_to_patient(document)
    assert patient["conditions"][0]["verification"] == status
    assert both(VERIFY_RULES, document) == [None, None]
    result = VERIFY_RULES.screen(patient_from_document(document, "b.json"), AS_OF)
    assert result.criterion("E1").missing == [f"condition ICD10:C50.9: verification status {status}, not confirmed"]


@pytest.mark.parametrize("status", [None, "confirmed"])
def test_confirmed_or_unstated_diagnoses_count(status) -> None:
    document = bundle(cancer(status))
    assert "verification" not in fhir_to_patient(document)[0]["conditions"][0]
    assert both(VERIFY_RULES, document) == [True, False]


@pytest.mark.parametrize("status", ["refuted", "entered-in-error"])
def test_refuted_diagnoses_are_dropped(status: str) -> None:
    assert both(VERIFY_RULES, bundle(cancer(status))) == [False, True]


def test_confirmed_record_decides_despite_a_provisional_one() -> None:
    assert both(VERIFY_RULES, bundle(cancer("provisional"), cancer("confirmed"))) == [True, False]


# --- deceased --------------------------------------------------------------------------------------


AGE_RULES = compile_text('trial "T"\ninclusion I1 "adult" = age >= 18\n', "a.crit")


def person(**fields) -> dict:
    return {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01", "gender": "female", **fields}


def test_death_date_is_kept_by_convert_fhir() -> None:
    assert fhir_to_patient(person(deceasedDateTime="2024-05-01T10:00:00Z"))[0]["deceased"] == "2024-05-01"
    assert fhir_to_patient(person(deceasedBoolean=True))[0]["deceased"] is True
    assert "deceased" not in fhir_to_patient(person(deceasedBoolean=False))[0]


@pytest.mark.parametrize("fields, decision, reason", [
    ({"deceasedDateTime": "2024-05-01"}, "ineligible", "patient died on 2024-05-01"),
    ({"deceasedDateTime": "2026-11-25"}, "ineligible", "patient died on 2026-11-25"),
    ({"deceasedBoolean": True}, "ineligible", "patient recorded as deceased (date of death not recorded)"),
    ({"deceasedDateTime": "2026"}, "undetermined",
     "patient may have died on or before the as-of date (date of death 2026)"),
    ({"deceasedDateTime": "2027-01-02"}, "eligible", None),
    ({}, "eligible", None),
])
def test_a_patient_who_died_before_the_as_of_date_is_ineligible(fields, decision, reason) -> None:
    record = patient_from_document(person(**fields), "p.json")
    for explain in (True, False):
        result = AGE_RULES.screen(record, AS_OF, explain=explain)
        assert (result.decision, result.decision_reason) == (decision, reason)
        assert result.to_dict()["decision_reason"] == reason


def test_check_prints_the_death(tmp_path) -> None:
    rules = tmp_path / "t.crit"
    rules.write_text('trial "T"\ninclusion I1 "adult" = age >= 18\n', encoding="utf-8")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(person(deceasedDateTime="2024-05-01")), encoding="utf-8")
    runner = CliRunner()
    text = runner.invoke(app, ["check", str(rules), str(path), "--as-of", "2026-11-25"], terminal_width=200)
    assert text.exit_code == 0 and "patient died on 2024-05-01" in text.stdout and "INELIGIBLE" in text.stdout
    explained = runner.invoke(app, ["explain", str(rules), str(path), "--as-of", "2026-11-25"], terminal_width=200)
    assert "patient died on 2024-05-01" in explained.stdout
    as_json = json.loads(runner.invoke(app, ["check", str(rules), str(path), "--as-of", "2026-11-25",
                                             "--format", "json"]).stdout)
    assert as_json["decision"] == "ineligible" and as_json["decision_reason"] == "patient died on 2024-05-01"
    converted = runner.invoke(app, ["convert-fhir", str(path)])
    assert '"deceased": "2024-05-01"' in converted.stdout


# --- the fast path agrees with the interpreter on comparators, unreadable and unconfirmed records -----


def test_fast_path_agrees_on_a_population_with_comparators_and_unreadable_records() -> None:
    import importlib.util
    import random

    from helpers import ROOT
    from screening import compile_trial
    from screening.evaluate import Interpreter

    spec = importlib.util.spec_from_file_location("population", ROOT / "benchmarks" / "population.py")
    population = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(population)
    rng = random.Random(5)
    documents = []
    for document in population.generate(500, seed=13):
        for obs in document.get("observations") or ():
            if isinstance(obs.get("value"), (int, float)) and not isinstance(obs["value"], bool) and rng.random() < 0.3:
                obs["comparator"] = rng.choice(["<", "<=", ">", ">="])
        for key in ("conditions", "medications", "procedures"):
            for record in document.get(key) or ():
                roll = rng.random()
                if roll < 0.15:
                    record.pop("code")
                    record.pop("codes", None)
                    record["unreadable"] = "coded only as text"
                elif roll < 0.3:
                    record["verification"] = rng.choice(["provisional", "differential", "unconfirmed"])
        if rng.random() < 0.1:
            document["deceased"] = rng.choice([True, "2020-01-01", "2026", "2030-01-01"])
        documents.append(document)
    for trial in (compile_trial(ROOT / "benchmarks" / "bench_rules.crit"),
                  compile_trial(ROOT / "trials" / "NCT00659217.crit")):
        ctx = trial.context(AS_OF)
        for document in documents:
            patient = patient_from_document(document, "generated")
            interpreter = Interpreter(patient, ctx)
            for criterion, (applies, value) in zip(trial.criteria, trial.values(patient, AS_OF)):
                slow_applies = interpreter.run(criterion.applies).value if criterion.applies is not None else True
                assert (applies, value) == (slow_applies, interpreter.run(criterion.condition).value), \
                    (document["id"], criterion.id)
            fast, slow = trial.screen(patient, AS_OF, explain=False), trial.screen(patient, AS_OF)
            assert (fast.decision, fast.decision_reason) == (slow.decision, slow.decision_reason)


# --- condition dates: the event of "condition X within N" -------------------------------------------


def _mi(**dates) -> dict:
    return {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": SNOMED, "code": "22298006", "display": "Myocardial infarction"}]}, **dates}


@pytest.mark.parametrize("dates, expected", [
    ({"onsetDateTime": "2026-09-01"}, True),
    ({"onsetDateTime": "2015-03-01"}, False),          # active since 2015: not an event in the window
    ({"recordedDate": "2026-10-02T09:30:00Z"}, True),  # no onset: the recorded date is the event's date
    ({"recordedDate": "2019-10-02"}, False),
    ({}, None),                                        # no date at all: unknown, never false
])
def test_a_condition_with_no_onset_is_placed_by_its_recorded_date(dates, expected):
    trial = compile_text('trial "T"\nvalueset mi = SNOMED:22298006\n'
                         'exclusion E1 "MI within 6 months" = condition mi within 6 months\n', "t.crit")
    assert both(trial, bundle(_mi(**dates))) == [expected]


def test_fhir_dates_accept_ascii_digits_only():
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "\u0661\u0669\u0667\u0660-01-01"}
    with pytest.raises(DataError) as caught:
        patient_from_document(bundle(patient=patient), "b.json")
    assert caught.value.problems[0].path == "$.entry[0].resource.birthDate"


# --- review findings: results that were not obtained, units without a system, retired lists --------


def test_a_cancelled_observation_is_no_result():
    cancelled = {**creatinine(3.0), "status": "cancelled"}
    document, report = fhir_to_patient(bundle(cancelled, creatinine(1.0, day="2026-10-01")))
    assert [o["value"] for o in document["observations"]] == [1.0]
    assert "Observation cancelled" in report.summary()


def test_a_quantity_code_without_a_system_is_read_as_ucum():
    element = creatinine(1.0)
    element["valueQuantity"] = {"value": 1.0, "code": "mg/dL"}
    document, _ = fhir_to_patient(bundle(element))
    assert document["observations"][0]["unit"] == "mg/dL"
    trial = compile_text('trial "T"\ninclusion I1 "x" = creatinine <= 1.5 mg/dL\n', "t.crit")
    assert both(trial, bundle(element)) == [True]


@pytest.mark.parametrize("status, expected", [("current", []), ("retired", None), ("entered-in-error", None), (None, None)])
def test_only_a_current_list_proves_an_empty_section(status, expected):
    empty = {"resourceType": "List", "mode": "snapshot", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": LOINC, "code": "11450-4"}]},
             "emptyReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                         "code": "nilknown"}]}}
    if status:
        empty["status"] = status
    document, _ = fhir_to_patient(bundle(empty))
    assert document.get("conditions") == expected
