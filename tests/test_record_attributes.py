"""Record attributes addressed by name: `with histology in VALUESET` (a code-valued field against a
value set or a code), stage, severity, laterality; FHIR Condition.stage.summary, severity, bodySite
(laterality) and the mCODE histology extension; both engines (helpers.one)."""
import pytest

from screening import SourceError, patient_from_document
from screening.patient.fhir import fhir_to_patient

from helpers import one, patient, trial

SETS = ('valueset breast_cancer "breast cancer" = ICD10:C50\n'
        'valueset lobular "lobular carcinoma" = SNOMED:82711006, SNOMED:1187419006\n')
# registry: "Histologically confirmed invasive lobular breast carcinoma"
LOBULAR = SETS + 'inclusion I1 "Invasive lobular breast carcinoma" = condition breast_cancer with histology in lobular\n'


def cancer(**fields):
    return patient(conditions=[{"code": "ICD10:C50.9", "onset": "2025-03-01", "status": "active", **fields}])


@pytest.mark.parametrize("histology, expected", [
    ("SNOMED:82711006", "pass"),
    (["SNOMED:413448000", "SNOMED:82711006"], "pass"),  # one of several codes
    ("SNOMED:82711000", "fail"),  # another (readable) code
    (["SNOMED:413448000"], "fail"),
    (None, "unknown"),  # not recorded
    ("lobular", "unknown"),  # a text, not a code: never a guess
    ("SNOMED:82711006 ", "pass"),
    (3, "unknown"),
    (["SNOMED:82711000", "ductal"], "unknown"),  # one entry unreadable
])
def test_histology_in_a_value_set(histology, expected):
    fields = {} if histology is None else {"histology": histology}
    result = one(trial(LOBULAR), cancer(**fields))
    assert result.verdict == expected
    if expected == "unknown":
        assert any("histology" in m for m in result.missing)


def test_a_code_literal_and_hierarchies():
    t = trial(SETS + 'inclusion I1 "x" = condition breast_cancer with body_site in SNOMED:80248007\n')
    assert one(t, cancer(body_site=["SNOMED:80248007"])).verdict == "pass"
    assert one(t, cancer(body_site="SNOMED:1")).verdict == "fail"
    t = trial(SETS + 'inclusion I1 "x" = condition breast_cancer with complication in ICD10:K70-K77\n')
    assert one(t, cancer(complication="ICD10:K74.6")).verdict == "pass"


def test_reasons_and_explanation():
    t = trial(LOBULAR)
    assert "histology not recorded" in " ".join(one(t, cancer()).missing)
    assert "'ductal' is not a code" in " ".join(one(t, cancer(histology="ductal")).missing)
    detail = " ".join(e.detail for e in one(t, cancer(histology="SNOMED:82711006")).evidence)
    assert "histology 'SNOMED:82711006'" in detail


@pytest.mark.parametrize("rule, fields, expected", [
    ('condition breast_cancer with stage = "IV"', {"stage": "IV"}, "pass"),
    ('condition breast_cancer with stage = "IV"', {"stage": "IIIA"}, "fail"),
    ('condition breast_cancer with stage = "IV"', {}, "unknown"),
    ('condition breast_cancer with laterality = "left"', {"laterality": "Left"}, "pass"),
    ('condition breast_cancer with severity != "severe"', {"severity": "moderate"}, "pass"),
])
def test_text_attributes(rule, fields, expected):
    assert one(trial(SETS + f'inclusion I1 "x" = {rule}\n'), cancer(**fields)).verdict == expected


@pytest.mark.parametrize("rule, message", [
    ("condition breast_cancer with histology in nothing", "nothing"),
    ("condition breast_cancer with histology in FOO:1", "FOO"),
])
def test_compile_errors(rule, message):
    with pytest.raises(SourceError) as info:
        trial(SETS + f'inclusion I1 "x" = {rule}\n')
    assert message in str(info.value)


def _bundle(condition):
    base = {"resourceType": "Condition", "id": "c", "subject": {"reference": "urn:uuid:p"},
            "clinicalStatus": {"coding": [{"code": "active"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50.912"}]},
            "onsetDateTime": "2025-03-01"}
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:c", "resource": {**base, **condition}}]}


SCT = "http://snomed.info/sct"


def test_fhir_condition_details():
    document, _ = fhir_to_patient(_bundle({
        "stage": [{"summary": {"coding": [{"system": SCT, "code": "258228008", "display": "Stage IV"}]}}],
        "severity": {"coding": [{"system": SCT, "code": "24484000", "display": "Severe"}]},
        "bodySite": [{"coding": [{"system": SCT, "code": "80248007", "display": "Left breast structure"}],
                      "extension": [{"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-laterality",
                                     "valueCodeableConcept": {"coding": [{"system": SCT, "code": "7771000"}]}}]}],
        "extension": [{"url": "http://hl7.org/fhir/us/mcode/StructureDefinition/mcode-histology-morphology-behavior",
                       "valueCodeableConcept": {"coding": [{"system": SCT, "code": "82711006"}]}}],
    }))
    (condition,) = document["conditions"]
    assert condition["stage"] == "Stage IV" and condition["stage_code"] == ["SNOMED:258228008"]
    assert condition["severity"] == "severe" and condition["laterality"] == "left"
    assert condition["body_site"] == ["SNOMED:80248007"] and condition["histology"] == ["SNOMED:82711006"]
    p = patient_from_document(document, "b.json")
    assert one(trial(LOBULAR), p).verdict == "pass"
    t = trial(SETS + 'valueset stage_iv "stage IV" = SNOMED:258228008\n'
                     'inclusion I1 "Stage IV breast cancer" = condition breast_cancer with stage_code in stage_iv\n')
    assert one(t, p).verdict == "pass"


def test_fhir_laterality_from_a_body_site_code_and_both_sides():
    document, _ = fhir_to_patient(_bundle({"bodySite": [
        {"coding": [{"system": SCT, "code": "24028007", "display": "Right"}]},
        {"coding": [{"system": SCT, "code": "7771000", "display": "Left"}]}]}))
    assert document["conditions"][0]["laterality"] == "bilateral"


def test_fhir_condition_without_details_has_none():
    document, _ = fhir_to_patient(_bundle({}))
    assert not {"stage", "severity", "laterality", "histology", "body_site"} & set(document["conditions"][0])
    assert one(trial(LOBULAR), patient_from_document(document, "b.json")).verdict == "unknown"


def test_the_documented_example_compiles():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**Record attributes.**"):]
    trial(re.search(r"```\n(.*?)```", section, re.S).group(1))
