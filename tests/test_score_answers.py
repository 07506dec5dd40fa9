"""Class scores shown as their scale writes them (NYHA III, CCS II, Child-Pugh B); LOINC answer codes
(FHIR valueCodeableConcept) read into score values; LOINC codes confirmed in the catalogue.
Both engines (helpers.one)."""
import pytest

from screening import patient_from_document
from screening.analytes import catalogue
from screening.patient.fhir import fhir_to_patient

from helpers import one, patient, trial

NYHA = trial('exclusion E1 "NYHA III or IV heart failure" = any NYHA >= III within 6 months\n')


@pytest.mark.parametrize("value, verdict, detail", [
    ("Class III", "fail", "NYHA III on 2026-11-01; limit III; the same class as the limit"),
    (4, "fail", "NYHA IV on 2026-11-01; limit III; 1 class above it"),
    ("I", "pass", "NYHA I on 2026-11-01; limit III; 2 classes below it"),
])
def test_nyha_is_shown_in_roman_numerals(value, verdict, detail):
    c = one(NYHA, patient(observations=[{"code": "LOINC:88020-3", "value": value, "date": "2026-11-01"}]))
    assert (c.verdict, c.evidence[0].detail) == (verdict, detail)


def test_child_pugh_and_ccs_letters_and_numerals():
    t = trial('exclusion E1 "Child-Pugh B or C" = Child_Pugh >= B within 3 months\n')
    c = one(t, patient(observations=[{"code": "LOCAL:child_pugh_class", "value": 2, "date": "2026-11-01"}]))
    assert (c.verdict, c.evidence[0].detail) == ("fail", "Child_Pugh B on 2026-11-01; limit B; the same class as the limit")
    t = trial('inclusion I1 "x" = Child_Pugh is A within 3 months\n')
    c = one(t, patient(observations=[{"code": "LOCAL:child_pugh_class", "value": "Child-Pugh C", "date": "2026-11-01"}]))
    assert (c.verdict, c.evidence[0].detail) == ("fail", "Child_Pugh C on 2026-11-01; is not A")
    t = trial('exclusion E1 "CCS class III or IV angina" = any CCS >= 3\n')
    c = one(t, patient(observations=[{"code": "LOCAL:ccs_angina_class", "value": 2, "date": "2026-11-01"}]))
    assert (c.verdict, c.evidence[0].detail) == ("pass", "CCS II on 2026-11-01; limit III; 1 class below it")


def test_numeric_scores_keep_numbers():
    t = trial('inclusion I1 "ECOG 0-1" = ECOG <= 1 within 14 days\n')
    c = one(t, patient(observations=[{"code": "LOINC:89247-1", "value": 2, "date": "2026-11-20"}]))
    assert c.evidence[0].detail == "ECOG 2 on 2026-11-20; limit 1; over by 1"


def _fhir_ecog(coding, text=None):
    concept = {"coding": coding, **({"text": text} if text else {})}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1"}},
        {"resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
                      "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                      "effectiveDateTime": "2026-11-20", "valueCodeableConcept": concept}}]}
    document, _ = fhir_to_patient(bundle)
    return document


ECOG = trial('inclusion I1 "ECOG 0-1" = ECOG <= 1 within 14 days\n')


@pytest.mark.parametrize("code, value", [
    ("LA9622-7", True), ("LA9623-5", True), ("LA9624-3", False), ("LA9625-0", False), ("LA9626-8", False),
    ("LA9627-6", False)])
def test_ecog_answer_codes(code, value):
    coding = [{"system": "http://loinc.org", "code": code, "display": "a description, not a number"}]
    document = _fhir_ecog(coding)
    assert document["observations"][0]["value_code"] == f"LOINC:{code}"
    assert one(ECOG, patient_from_document(document, "b.json")).value is value


def test_an_unknown_answer_code_is_unknown_never_a_guess():
    # the display says "ECOG 1", but the code is not in the answer list the catalogue knows
    document = _fhir_ecog([{"system": "http://loinc.org", "code": "LA9999-9", "display": "ECOG 1"}])
    c = one(ECOG, patient_from_document(document, "b.json"))
    assert c.value is None
    assert c.missing == ["ECOG result of 2026-11-20: answer code LOINC:LA9999-9 is not one the catalogue knows for "
                         "ECOG performance status; its display text is not read in its place"]


def test_the_unknown_answer_and_a_disagreeing_text():
    c = one(ECOG, patient_from_document(_fhir_ecog([{"system": "http://loinc.org", "code": "LA4489-6"}]), "b.json"))
    assert (c.value, c.missing) == (None, ["ECOG result of 2026-11-20: recorded as not known (LOINC:LA4489-6)"])
    c = one(ECOG, patient(observations=[{"code": "LOINC:89247-1", "value": "ECOG 3", "value_code": "LOINC:LA9623-5",
                                         "date": "2026-11-20"}]))
    assert c.value is None and "disagree" in c.missing[0]


def test_answer_codes_do_not_change_other_results():
    # a qualitative result coded with an LA code is still read from its text
    t = trial('exclusion E1 "HBsAg positive" = HBsAg is positive\n')
    p = patient(observations=[{"code": "LOINC:5196-1", "value": "Positive", "value_code": "LOINC:LA6576-8",
                               "date": "2026-11-20"}])
    assert one(t, p).value is True


@pytest.mark.parametrize("name, code", [
    ("QTcF", "LOINC:76634-5"), ("QTcB", "LOINC:76635-2"), ("corrected_calcium", "LOINC:29265-6"),
    ("hemoglobin", "LOINC:59260-0"), ("LVEF", "LOINC:18043-0"), ("NYHA", "LOINC:88020-3"),
    # kept: results already recorded under the local codes
    ("QTcF", "LOCAL:QTcF"), ("QTcB", "LOCAL:QTcB"), ("corrected_calcium", "LOCAL:corrected_calcium"),
])
def test_confirmed_loinc_codes(name, code):
    assert catalogue().for_code(code) is catalogue().lookup(name)


def test_qtcf_by_its_loinc_code_is_not_qtcb():
    t = trial('exclusion E1 "QTcF > 470 ms" = QTcF > 470 ms within 28 days\n')
    assert one(t, patient(observations=[{"code": "LOINC:76634-5", "value": 480, "unit": "ms",
                                         "date": "2026-11-20"}])).value is True
    c = one(t, patient(observations=[{"code": "LOINC:76635-2", "value": 480, "unit": "ms", "date": "2026-11-20"}]))
    assert c.value is None  # a Bazett value is never read as Fridericia


def test_corrected_calcium_in_mmol_per_litre():
    t = trial('exclusion E1 "Corrected calcium > 12 mg/dL" = corrected_calcium > 12 mg/dL within 14 days\n')
    p = patient(observations=[{"code": "LOINC:29265-6", "value": 3.25, "unit": "mmol/L", "date": "2026-11-20"}])
    assert one(t, p).value is True  # 3.25 mmol/L = 13.0 mg/dL


def _fhir(code, coding):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1"}},
        {"resource": {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/p1"},
                      "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                      "effectiveDateTime": "2026-11-20", "valueCodeableConcept": {"coding": coding}}}]}
    return patient_from_document(fhir_to_patient(bundle)[0], "b.json")


def test_karnofsky_answer_list():
    t = trial('inclusion I1 "Karnofsky >= 70" = Karnofsky >= 70 within 14 days\n')
    for code, value in (("LA29178-3", True), ("LA29179-1", False), ("LA29175-9", True), ("LA9627-6", False)):
        p = _fhir("89243-0", [{"system": "http://loinc.org", "code": code, "display": "a description"}])
        assert one(t, p).value is value, code


def test_nyha_classes_coded_in_snomed_ct():
    # NYHA class III (SNOMED CT 420913000), as European FHIR guides code it
    p = _fhir("88020-3", [{"system": "http://snomed.info/sct", "code": "420913000",
                           "display": "New York Heart Association Classification - Class III"}])
    c = one(NYHA, p)
    assert (c.value, c.evidence[0].detail) == (True, "NYHA III on 2026-11-20; limit III; the same class as the limit")


def test_a_snomed_code_not_listed_leaves_the_text_to_be_read():
    p = _fhir("89247-1", [{"system": "http://snomed.info/sct", "code": "999999999", "display": "ECOG 1"}])
    assert one(ECOG, p).value is True
