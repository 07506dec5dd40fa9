"""Cross-record references: `medication X for Y` (the medication's reason / indication codes) and
`condition X other than Y` (a record of X that is not the index diagnosis Y); unknown when the record
cannot show it; both engines (helpers.one); FHIR reasonCode / reasonReference."""
import pytest

from screening import SourceError, patient_from_document
from screening.patient.fhir import fhir_to_patient

from helpers import one, patient, trial

SETS = ('valueset malignancy "malignancy (primary)" = ICD10:C00-C76, ICD10:C81-C96\n'
        'valueset breast_cancer "breast cancer" = ICD10:C50\n'
        'valueset trastuzumab "trastuzumab" = RXNORM:224905\n')
# registry: "Prior trastuzumab therapy for breast cancer"
FOR = SETS + 'exclusion E1 "Prior trastuzumab for breast cancer" = medication trastuzumab for breast_cancer\n'
# registry: "History of another malignancy within 3 years, other than the breast cancer under study"
OTHER = SETS + ('exclusion E2 "Another malignancy within 3 years" = '
                'condition malignancy other than breast_cancer within 3 years\n')


@pytest.mark.parametrize("reason, expected", [
    ("ICD10:C50.9", "fail"),
    (["SNOMED:1", "ICD10:C50.912"], "fail"),
    (["ICD10:C16.9"], "pass"),  # given for gastric cancer
    (None, "unknown"),  # no indication recorded: never assumed to be another disease
    (["ICD10:C16.9", "reason coded only as text"], "unknown"),  # the text might be breast cancer
    (["ICD10:C50.9", "reason coded only as text"], "fail"),
])
def test_medication_for_a_condition(reason, expected):
    med = {"code": "RXNORM:224905", "start": "2025-01-01"}
    if reason is not None:
        med["reason"] = reason
    result = one(trial(FOR), patient(medications=[med]))
    assert result.verdict == expected
    if expected == "unknown":
        assert any("reason" in m for m in result.missing)


@pytest.mark.parametrize("conditions, expected", [
    ([{"code": "ICD10:C50.9", "onset": "2025-01-01"}], "pass"),  # only the index cancer
    ([{"code": "ICD10:C50.9", "onset": "2025-01-01"}, {"code": "ICD10:C18.9", "onset": "2025-06-01"}], "fail"),
    ([{"code": "ICD10:C18.9", "onset": "2020-06-01"}], "pass"),  # outside the window
    ([{"code": "ICD10:C18.9", "codes": ["ICD10:C50.9"], "onset": "2025-06-01"}], "pass"),  # coded as the index too
    ([{"unreadable": "coded only as text", "onset": "2025-06-01"}], "unknown"),
    ([], "pass"),
])
def test_other_than_the_index_diagnosis(conditions, expected):
    assert one(trial(OTHER), patient(conditions=conditions)).verdict == expected


def test_explanations():
    result = one(trial(OTHER), patient(conditions=[{"code": "ICD10:C50.9", "onset": "2025-01-01"}]))
    assert "other than breast cancer" in " ".join(e.detail for e in result.evidence)
    result = one(trial(FOR), patient(medications=[{"code": "RXNORM:224905", "reason": "ICD10:C50.9"}]))
    assert "reason 'ICD10:C50.9'" in " ".join(e.detail for e in result.evidence)


def test_compile_errors():
    for rule in ("medication trastuzumab for nothing", "condition malignancy other than nothing"):
        with pytest.raises(SourceError) as info:
            trial(SETS + f'exclusion E1 "x" = {rule}\n')
        assert "nothing" in str(info.value)


def _bundle(request, *more):
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:r", "resource": request}, *more]}


def _request(**extra):
    return {"resourceType": "MedicationRequest", "id": "r", "status": "completed", "intent": "order",
            "subject": {"reference": "urn:uuid:p"}, "authoredOn": "2025-01-01",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "224905"}]}, **extra}


ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def test_fhir_reason_code_and_reference():
    condition = {"fullUrl": "urn:uuid:c", "resource": {
        "resourceType": "Condition", "id": "c", "subject": {"reference": "urn:uuid:p"},
        "code": {"coding": [{"system": ICD, "code": "C50.912"}]}}}
    document, _ = fhir_to_patient(_bundle(_request(reasonReference=[{"reference": "urn:uuid:c"}]), condition))
    assert document["medications"][0]["reason"] == ["ICD10:C50.912"]
    assert one(trial(FOR), patient_from_document(document, "b.json")).verdict == "fail"
    document, _ = fhir_to_patient(_bundle(_request(reasonCode=[{"coding": [{"system": ICD, "code": "C16.9"}]}])))
    assert one(trial(FOR), patient_from_document(document, "b.json")).verdict == "pass"


def test_fhir_unreadable_reasons_stay_unknown():
    document, _ = fhir_to_patient(_bundle(_request(reasonReference=[{"reference": "Condition/elsewhere"}])))
    assert one(trial(FOR), patient_from_document(document, "b.json")).verdict == "unknown"
    document, _ = fhir_to_patient(_bundle(_request(reasonCode=[{"text": "breast ca"}])))
    assert one(trial(FOR), patient_from_document(document, "b.json")).verdict == "unknown"
    document, _ = fhir_to_patient(_bundle(_request()))
    assert "reason" not in document["medications"][0]


def test_the_documented_example_compiles():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**Cross-record references.**"):]
    trial(re.search(r"```\n(.*?)```", section, re.S).group(1))
