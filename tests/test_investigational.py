"""Investigational agents as a record flag: `investigational medication within 4 weeks`,
`current investigational medication`. A medication not marked either way is unknown, never
"not investigational"; both engines (helpers.one); FHIR extension conversion."""
import pytest

from screening import SourceError, patient_from_document
from screening.patient.fhir import fhir_to_patient

from helpers import one, patient, trial

# registry: "Received an investigational agent within 4 weeks prior to the first dose of study treatment"
WITHIN = 'exclusion E1 "Investigational agent within 4 weeks" = investigational medication within 4 weeks\n'
CURRENT = 'exclusion E1 "Currently receiving an investigational agent" = current investigational medication\n'


def med(start="2026-11-01", end=None, **fields):
    record = {"code": "LOCAL:study-drug", "start": start, **fields}
    if end:
        record["end"] = end
    return record


@pytest.mark.parametrize("meds, expected", [
    ([], "pass"),  # a list that is present is complete: nothing taken
    ([med(investigational=True)], "fail"),
    ([med(investigational=False)], "pass"),
    ([med()], "unknown"),  # not marked: never assumed not investigational
    ([med("2025-01-01", "2025-02-01")], "pass"),  # outside the window: the mark does not matter
    ([med(investigational=False), med()], "unknown"),
    ([med(), med(investigational=True)], "fail"),  # one marked record decides
    ([med("2026-10", investigational=True, status="active")], "fail"),  # active, so it overlaps the window
    ([med("2026-10", "2026-10", investigational=True)], "unknown"),  # October may be before the window
    ([med(investigational=True, verification="unconfirmed")], "unknown"),
    ([{"unreadable": "coded only as text", "start": "2026-11-01", "investigational": True}], "fail"),
    ([med(investigational=True, status="entered-in-error")], "pass"),
])
def test_within(meds, expected):
    result = one(trial(WITHIN), patient(medications=meds))
    assert result.verdict == expected
    if expected == "unknown":
        assert result.missing


def test_absent_list_is_unknown():
    result = one(trial(WITHIN), patient())
    assert result.verdict == "unknown" and "medications (not provided)" in result.missing


def test_current():
    t = trial(CURRENT)
    assert one(t, patient(medications=[med(investigational=True, status="active")])).verdict == "fail"
    assert one(t, patient(medications=[med(end="2026-11-10", investigational=True)])).verdict == "pass"
    assert one(t, patient(medications=[med(investigational=True)])).verdict == "unknown"  # no status, no end


def test_the_reason_names_the_unmarked_record():
    result = one(trial(WITHIN), patient(medications=[med()]))
    assert "medication LOCAL:study-drug: not marked investigational or not" in result.missing


@pytest.mark.parametrize("rule, message", [
    ("current investigational medication within 4 weeks", "takes no window"),
    ("resolved investigational medication", "not supported"),
])
def test_compile_errors(rule, message):
    with pytest.raises(SourceError) as info:
        trial(f'exclusion E1 "x" = {rule}\n')
    assert message in str(info.value) and "test.crit:2:" in str(info.value)


def test_the_flag_must_be_true_or_false():
    with pytest.raises(Exception):
        patient_from_document({"id": "x", "medications": [med(investigational="yes")]}, "p.json")


EXT = {"url": "http://example.org/fhir/StructureDefinition/investigational", "valueBoolean": True}


def _bundle(*resources):
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        *({"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources)]}


def _statement(**extra):
    return {"resourceType": "MedicationStatement", "id": "s", "status": "active",
            "subject": {"reference": "urn:uuid:p"}, "effectivePeriod": {"start": "2026-11-01"},
            "medicationCodeableConcept": {"text": "study drug XYZ-123"}, **extra}


def test_fhir_extension_on_the_statement():
    document, _ = fhir_to_patient(_bundle(_statement(extension=[EXT])))
    assert document["medications"][0]["investigational"] is True
    assert one(trial(WITHIN), patient_from_document(document, "b.json")).verdict == "fail"


def test_fhir_extension_on_the_referenced_medication():
    medication = {"resourceType": "Medication", "id": "m", "extension": [EXT],
                  "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1"}]}}
    statement = _statement()
    del statement["medicationCodeableConcept"]
    statement["medicationReference"] = {"reference": "urn:uuid:m"}
    document, _ = fhir_to_patient(_bundle(statement, medication))
    assert document["medications"][0]["investigational"] is True


def test_fhir_without_the_extension_is_unknown():
    document, _ = fhir_to_patient(_bundle(_statement()))
    assert "investigational" not in document["medications"][0]
    assert one(trial(WITHIN), patient_from_document(document, "b.json")).verdict == "unknown"


def test_the_documented_example_compiles():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**Investigational agents.**"):]
    trial(re.search(r"```\n(.*?)```", section, re.S).group(1))
