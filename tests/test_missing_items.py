"""Missing items as structured data and questions; fact declarations; patient labels (docs/worklist.md)."""
from __future__ import annotations

import glob
import json

import pytest

from screening import SourceError, compile_trial, load_patient, patient_from_document
from screening.missing import KINDS

from helpers import AS_OF, ROOT, obs, patient, trial

CRIT = ROOT / "trials" / "NCT00659217.crit"


def _item(criterion, kind):
    (item,) = [i for i in criterion.missing_items if i.kind == kind]
    return item


def test_a_lab_with_a_window_asks_for_a_result_in_that_window():
    t = trial('exclusion E6 "x" = ALT > 2 x ULN within 3 months\n')
    c = t.screen(patient(observations=[obs("LOINC:1742-6", 120, "U/L", day="2026-01-10", high=35)]), AS_OF).criteria[0]
    assert c.verdict == "unknown"
    (item,) = c.missing_items
    assert item.to_dict() == {"kind": "lab", "code": "LOINC:1742-6", "name": "ALT", "window": "within 3 months",
                              "question": "ALT result within the last 3 months", "text": "ALT result within 3 months"}
    assert c.missing == ["ALT result within 3 months"]


def test_a_declared_fact_is_asked_with_its_question_and_role():
    t = trial('fact lupus_rise "Transaminase rise due to active lupus"\n'
              '    question "Is the transaminase rise due to active lupus?" asked of investigator\n'
              'exclusion E6 "x" = ALT > 2 x ULN unless fact lupus_rise\n')
    p = patient(observations=[obs("LOINC:1742-6", 120, "U/L", high=35)])
    c = t.screen(p, AS_OF).criteria[0]
    item = _item(c, "fact")
    assert (item.code, item.name, item.question) == (
        "lupus_rise", "Transaminase rise due to active lupus", "Is the transaminase rise due to active lupus? (investigator)")
    assert item.text == "fact lupus_rise"


def test_an_undeclared_fact_and_a_description_without_a_question():
    t = trial('fact consent "Able to give informed consent"\n'
              'inclusion I1 "x" = fact consent and fact other_thing\n')
    c = t.screen(patient(), AS_OF).criteria[0]
    questions = [i.question for i in c.missing_items]
    assert questions == ["Able to give informed consent?",
                         "Record the fact other_thing (the rule set does not declare it)"]


def test_fact_declaration_errors_and_warnings():
    with pytest.raises(SourceError) as info:
        trial('fact a "A"\nfact a "again"\ninclusion I1 "x" = fact a\n')
    assert "fact a is already declared (line 2)" in str(info.value.diagnostics[0].message)
    assert info.value.diagnostics[0].span.line == 3
    t = trial('fact unused "U"\ninclusion I1 "x" = fact a\n')
    assert [w.code for w in t.warnings] == ["unused-fact"]


def test_records_birth_date_sex_and_review_items():
    t = trial('valueset cancer "malignant neoplasm" = ICD10:C00-C96\n'
              'exclusion E2 "x" = condition cancer within 6 months\n'
              'inclusion AGE "x" = age >= 18 years\n'
              'inclusion SEX "x" = sex is female\n'
              'exclusion E7 "x" = review "would any illness jeopardize the treatment?"\n')
    r = t.screen(patient(birth_date="1980"), AS_OF)
    e2, age, sex, e7 = r.criteria
    assert e2.missing_items[0].to_dict() == {
        "kind": "condition", "code": "malignant neoplasm", "name": "malignant neoplasm", "window": "within 6 months",
        "question": "Has the patient had malignant neoplasm within the last 6 months? (the record has no conditions list)",
        "text": "conditions (not provided)"}
    assert age.verdict == "pass"  # born 1980: 45 or 46, either way >= 18: nothing missing
    assert age.missing_items == []
    assert (sex.missing_items[0].kind, sex.missing_items[0].question) == ("sex", "Sex of the patient")
    assert e7.verdict == "review"
    assert e7.missing_items[0].to_dict() == {
        "kind": "review", "code": "E7", "name": "would any illness jeopardize the treatment?", "window": None,
        "question": "Would any illness jeopardize the treatment? (review)",
        "text": "would any illness jeopardize the treatment?"}
    r = trial('inclusion AGE "x" = age >= 46 years\n').screen(patient(birth_date="1980"), AS_OF)
    item = r.criteria[0].missing_items[0]
    assert (item.kind, item.question) == ("birth_date", "Full date of birth (the year or month alone does not decide the age)")


def test_every_missing_entry_of_every_sample_has_its_item():
    """The items follow the missing sentences (one, or one per test a sentence stands for), then the reviews."""
    t = compile_trial(CRIT)
    count = 0
    for path in sorted(glob.glob(str(ROOT / "patient_samples" / "*.json"))):
        for c in t.screen(load_patient(path), AS_OF).criteria:
            found = [i for i in c.missing_items if i.kind != "review"]
            assert list(dict.fromkeys(i.text for i in found)) == c.missing
            assert [i.text for i in c.missing_items[len(found):]] == c.reviews
            for item in c.missing_items:
                assert item.kind in KINDS and item.code and item.question
                count += 1
    assert count > 50


def test_sample_p06_names_the_lupus_question_in_json():
    t = compile_trial(CRIT)
    data = t.screen(load_patient(ROOT / "patient_samples" / "p06_undetermined_alt_elevated_cause_not_assessed.json"),
                    AS_OF).to_dict()
    e6 = next(c for c in data["criteria"] if c["id"] == "E6")
    assert e6["missing"] == ["fact transaminase_rise_due_to_active_lupus"]
    assert [i["question"] for i in e6["missing_items"]] == ["Is the transaminase rise due to active lupus? (investigator)"]
    assert data["patient_label"] == {"id": "p06", "file": "p06_undetermined_alt_elevated_cause_not_assessed.json",
                                     "mrn": None, "name": None,
                                     "display": "p06 (p06_undetermined_alt_elevated_cause_not_assessed.json)"}
    json.dumps(data)


FHIR_PATIENT = {
    "resourceType": "Patient", "id": "8f14e45f-ceea-467f-a0e6-5c1a3e6b1b7d",
    "identifier": [
        {"system": "http://hospital.example/insurance", "value": "INS-1"},
        {"use": "old", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "value": "OLD-1"},
        {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "value": "12345"},
    ],
    "name": [{"use": "nickname", "given": ["Janie"]}, {"use": "official", "family": "Doe", "given": ["Jane", "Q"]}],
    "gender": "female", "birthDate": "1990-01-01",
}


def test_fhir_patient_label_from_mr_identifier_and_official_name():
    record = patient_from_document(FHIR_PATIENT, "bundles/p06.json")
    result = trial('inclusion SEX "x" = sex is female\n').screen(record, AS_OF)
    assert result.patient == "8f14e45f-ceea-467f-a0e6-5c1a3e6b1b7d"
    assert result.to_dict()["patient_label"] == {
        "id": "8f14e45f-ceea-467f-a0e6-5c1a3e6b1b7d", "file": "p06.json", "mrn": "12345", "name": "Doe, Jane Q",
        "display": "Doe, Jane Q — MRN 12345 (p06.json)"}


def test_fhir_mrn_by_system_when_no_type_and_patient_json_fields():
    document = {**FHIR_PATIENT, "identifier": [{"system": "urn:example:MRN", "value": "A-9"}], "name": []}
    record = patient_from_document(document, "x.json")
    assert (record.mrn, record.name) == ("A-9", None)
    record = patient_from_document({"id": "p1"})  # from memory: no file
    assert trial('inclusion SEX "x" = sex is female\n').screen(record, AS_OF).patient_label == {
        "id": "p1", "file": None, "mrn": None, "name": None, "display": "p1"}
    record = patient_from_document({"id": "p1", "mrn": "77", "name": "Roe, Richard"}, "p1.json")
    label = trial('inclusion SEX "x" = sex is female\n').screen(record, AS_OF).patient_label
    assert label["display"] == "Roe, Richard — MRN 77 (p1.json)"


def test_the_fast_path_gives_the_same_items():
    """screen(explain=False) explains only the open criteria: their items are the same."""
    t = compile_trial(CRIT)
    for path in sorted(glob.glob(str(ROOT / "patient_samples" / "*.json"))):
        record = load_patient(path)
        slow, fast = t.screen(record, AS_OF), t.screen(record, AS_OF, explain=False)
        assert [c.missing_items for c in slow.criteria] == [c.missing_items for c in fast.criteria], path
        assert slow.to_dict()["patient_label"] == fast.to_dict()["patient_label"]


def test_a_fact_declaration_after_an_unfinished_rule_is_named_at_its_keyword():
    with pytest.raises(SourceError) as info:
        trial('inclusion I1 "x" = age >= 18 and\nfact a "A"\nexclusion E1 "y" = fact a\n')
    (diagnostic,) = info.value.diagnostics
    assert diagnostic.message == "unexpected 'fact': the declaration before it is unfinished"
    assert (diagnostic.span.line, diagnostic.span.column, diagnostic.span.end_column) == (3, 1, 5)
    # every syntax error of the file at once: two unfinished declarations, each found at the line after it
    with pytest.raises(SourceError) as info:
        trial('fact a "A" question\ninclusion I1 "x" = fact a\nfact b "B" asked of\nexclusion E1 "y" = fact b\n')
    assert [(d.span.line, d.message) for d in info.value.diagnostics] == [
        (3, "unexpected 'inclusion': the declaration before it is unfinished"),
        (5, "unexpected 'exclusion': the declaration before it is unfinished")]


def test_a_sentence_shared_by_several_tests_asks_each_of_them():
    """'conditions (not provided)' stands for every condition test of the criterion: each is asked,
    never only one of them (a coordinator who answered 'no HIV' would still not have E3 decided)."""
    t = compile_trial(CRIT)
    result = t.screen(load_patient(ROOT / "patient_samples" / "p16_undetermined_conditions_not_provided.json"), AS_OF)
    by_id = {c.id: c for c in result.criteria}
    e3, e4 = by_id["E3"], by_id["E4"]
    assert e3.missing[0] == "conditions (not provided)"
    assert [i.question for i in e3.missing_items if i.text == e3.missing[0]] == [
        "Does the patient currently have active infection, including hepatitis B, hepatitis C and tuberculosis?"
        " (the record has no conditions list)",
        "Has the patient had HIV infection? (the record has no conditions list)"]
    assert [(i.code, i.window) for i in e4.missing_items] == [
        ("cardiovascular disease", None), ("congestive heart failure", None),
        ("acute coronary syndrome", "within 6 months")]
    assert {i.text for i in e4.missing_items} == {"conditions (not provided)"}


LAB_ANCHORED = (
    'valueset transfusion "platelet transfusion" = CPT:36430\n'
    'inclusion I1 "ANC before the hemoglobin" = ANC >= 1500/mm3 within 3 days before hemoglobin >= 9 g/dL\n'
    'inclusion I2 "no transfusion before it" = not procedure transfusion within 7 days before hemoglobin >= 9 g/dL\n'
)


def test_windows_anchored_at_a_lab_result_give_items_not_a_crash():
    """A lab result as the anchor (its date known to the month): the items name the result, and
    screening never fails (it raised AttributeError: 'LabCompare' object has no attribute 'noun')."""
    record = patient(observations=[obs("LOINC:718-7", 10, "g/dL", "2026-11")],
                     procedures=[{"code": "CPT:36430", "date": "2026-10"}])
    i1, i2 = trial(LAB_ANCHORED).screen(record, AS_OF).criteria
    assert (i1.verdict, i2.verdict) == ("unknown", "unknown")
    assert [i.question for i in i1.missing_items] == ["ANC result within 3 days before hemoglobin result of 2026-11"]
    assert i2.missing_items[0].question.startswith(
        "Check procedure CPT:36430 within 7 days before hemoglobin result of 2026-11: ")
    record = patient(procedures=[{"code": "CPT:36430", "date": "2026-10-01"}])  # no labs list at all
    i1, i2 = trial(LAB_ANCHORED).screen(record, AS_OF).criteria
    assert [i.kind for i in i1.missing_items + i2.missing_items] == ["lab", "lab"]


def test_an_anchor_the_terminology_cannot_place_is_asked_about_before_its_lab():
    """ANC before chemotherapy, a medication the terminology cannot place in 'chemo': the coordinator is
    asked whether it is chemotherapy, and the ANC only for that case (not as if metformin were the chemo)."""
    rules = ('valueset chemo "chemotherapy" = RXNORM:40048\n'
             'inclusion I6 "ANC before chemo" = ANC >= 1500/mm3 within 3 days before medication chemo\n')
    record = patient(medications=[{"code": "RXNORM:6809", "start": "2026-09-01"}])
    (i6,) = trial(rules).screen(record, AS_OF).criteria
    assert i6.verdict == "unknown"
    assert [(i.kind, i.question) for i in i6.missing_items] == [
        ("terminology", "Is medication RXNORM:6809 one of chemotherapy? (the terminology loaded cannot tell)"),
        ("lab", "ANC result within 3 days before medication RXNORM:6809 (if it is one of chemotherapy)")]
