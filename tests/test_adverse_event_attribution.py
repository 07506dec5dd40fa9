"""An adverse event attributed to a prior therapy: `condition X with grade >= 3 caused by medication Y`.

The record says what it is attributed to in `caused_by` (patient JSON: codes, or a text when no code is
known; FHIR: Condition extension condition-dueTo, AdverseEvent.suspectEntity). Absent attribution is
unknown, never false. As-of 2026-11-25; both engines (helpers.one).
"""
import pytest

from screening import SourceError, patient_from_document
from screening.patient.fhir import fhir_to_patient

from helpers import one, patient, trial

HEADER = '''valueset anti_pd1 "anti-PD-1 antibodies" = ATC:L01FF01, ATC:L01FF02
valueset pneumonitis "pneumonitis" = ICD10:J70.4, ICD10:J84.9
'''
# NCT02780804: "toxicity related to prior antibody therapy must be recovered to grade =< 1";
# "history of (non-infectious) pneumonitis that required steroids" caused by a checkpoint inhibitor
GRADE3 = trial(HEADER + 'exclusion E1 "Grade >= 3 pneumonitis on prior anti-PD-1 therapy" = '
               'condition pneumonitis with grade >= 3 caused by medication anti_pd1\n')


def _event(**fields):
    return {"code": "ICD10:J70.4", "onset": "2026-03-01", "grade": 3, **fields}


@pytest.mark.parametrize("caused_by, value", [
    (["ATC:L01FF02"], True),  # pembrolizumab
    ("ATC:L01FF01", True),  # a single code is a list of one
    (["ATC:L01XC"], False),  # another drug: not this attribution
    (["ATC:L01XC", "ATC:L01FF01"], True),  # two suspects, one of them in the set
    (["radiation"], None),  # a cause recorded only as text: cannot be compared
    (["ATC:L01XC", "radiation"], None),  # one readable suspect outside the set, one that cannot be read
])
def test_attribution_decides(caused_by, value):
    c = one(GRADE3, patient(conditions=[_event(caused_by=caused_by)]))
    assert c.value is value


def test_absent_attribution_is_unknown_and_named():
    c = one(GRADE3, patient(conditions=[_event()]))
    assert c.value is None
    assert c.missing == ["condition ICD10:J70.4: what it was caused by is not recorded (caused_by; needed for "
                         "'caused by medication anti-PD-1 antibodies')"]


def test_other_qualifiers_still_decide_without_the_attribution():
    # grade 2: false whatever caused it; no pneumonitis at all: false
    assert one(GRADE3, patient(conditions=[_event(grade=2)])).value is False
    assert one(GRADE3, patient(conditions=[])).value is False


def test_the_evidence_names_the_attribution():
    c = one(GRADE3, patient(conditions=[_event(caused_by=["ATC:L01FF02"])]))
    assert c.evidence[0].detail == ("condition ICD10:J70.4 (from 2026-03-01, grade 3, caused_by ['ATC:L01FF02']) "
                                    "matches pneumonitis")


def test_an_rxnorm_suspect_without_terminology_is_unknown_not_false():
    # the value set is ATC; an RxNorm-coded suspect needs the store's links to be placed in it
    c = one(GRADE3, patient(conditions=[_event(caused_by=["RXNORM:1547545"])]))
    assert c.value is None
    assert "cannot tell whether it is in anti-PD-1 antibodies" in c.missing[0]


def test_caused_by_belongs_to_events():
    with pytest.raises(SourceError) as info:
        trial(HEADER + 'exclusion E1 "x" = medication anti_pd1 caused by medication anti_pd1\n')
    assert "`caused by` is said of an adverse event" in info.value.first.message


def _bundle(*resources):
    entries = [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources]
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}}] + entries}


_PEMBRO = {"resourceType": "MedicationStatement", "id": "m1", "status": "completed", "subject": {"reference": "Patient/p1"},
           "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "L01FF02"}]},
           "effectivePeriod": {"start": "2025-06-01", "end": "2026-02-01"}}


def test_fhir_condition_due_to_a_medication_statement():
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J70.4"}]},
                 "onsetDateTime": "2026-03-01",
                 "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/condition-dueTo",
                                "valueReference": {"reference": "urn:uuid:m1"}}]}
    document, _ = fhir_to_patient(_bundle(_PEMBRO, condition))
    assert document["conditions"][0]["caused_by"] == ["ATC:L01FF02"]
    t = trial(HEADER + 'exclusion E1 "x" = condition pneumonitis caused by medication anti_pd1\n')
    assert one(t, patient_from_document(document, "b.json")).value is True


def test_fhir_adverse_event_with_a_suspect_and_a_grade():
    condition = {"resourceType": "Condition", "id": "c0", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C34.9"}]}}
    event = {"resourceType": "AdverseEvent", "id": "ae1", "actuality": "actual", "subject": {"reference": "Patient/p1"},
             "event": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J70.4"}]},
             "date": "2026-03-01",
             "extension": [{"url": "http://example.org/fhir/StructureDefinition/ctcae-grade", "valueInteger": 3}],
             "suspectEntity": [{"instance": {"reference": "MedicationStatement/m1"}}]}
    document, report = fhir_to_patient(_bundle(_PEMBRO, condition, event))
    record = document["conditions"][-1]
    assert (record["code"], record["grade"], record["caused_by"], record["onset"]) == (
        "ICD10:J70.4", 3, ["ATC:L01FF02"], "2026-03-01")
    assert one(GRADE3, patient_from_document(document, "b.json")).value is True


def test_fhir_adverse_events_alone_do_not_make_the_condition_list_complete():
    event = {"resourceType": "AdverseEvent", "id": "ae1", "actuality": "actual", "subject": {"reference": "Patient/p1"},
             "event": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J70.4"}]}}
    document, report = fhir_to_patient(_bundle(event))
    assert "conditions" not in document
    assert report.dropped == {"AdverseEvent without the patient's Conditions": 1}


def test_fhir_potential_adverse_event_is_not_an_event():
    condition = {"resourceType": "Condition", "id": "c0", "subject": {"reference": "Patient/p1"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "C34.9"}]}}
    event = {"resourceType": "AdverseEvent", "id": "ae1", "actuality": "potential",
             "subject": {"reference": "Patient/p1"},
             "event": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J70.4"}]}}
    document, _ = fhir_to_patient(_bundle(condition, event))
    assert [r["code"] for r in document["conditions"]] == ["ICD10:C34.9"]


def test_the_documented_example_compiles():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**Adverse events attributed to a prior therapy.**"):]
    trial(re.search(r"```\n(.*?)```", section, re.S).group(1))


def test_a_value_set_used_only_as_the_cause_is_used():
    # lint: `caused by medication anti_pd1` is a use of anti_pd1 (no "declared and never used" warning)
    assert [w.message for w in GRADE3.warnings if "never used" in w.message] == []
