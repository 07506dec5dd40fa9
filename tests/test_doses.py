"""Medication doses: `with dose <= 10 mg/day` (the daily total) and `with dose > 5 mg` (each
administration), computed once at load time from dose x frequency or a recorded daily dose;
unknown, named, whenever the record cannot show it; both engines (helpers.one)."""
import pytest

from screening import SourceError, patient_from_document
from screening.patient.fhir import fhir_to_patient

from helpers import one, patient, trial

PRED = 'valueset prednisone "prednisone" = RXNORM:8640\n'


def on_prednisone(**fields):
    return patient(medications=[{"code": "RXNORM:8640", "start": "2026-01-01", "status": "active", **fields}])


# registry (NCT02065557-style): "Prednisone (or equivalent) > 10 mg/day"
EXCLUSION = PRED + 'exclusion E1 "Prednisone > 10 mg/day" = current medication prednisone with dose > 10 mg/day\n'


@pytest.mark.parametrize("fields, expected", [
    ({"dose": {"value": 5, "unit": "mg"}, "frequency": 2}, "pass"),  # 5 mg twice daily = 10 mg/day
    ({"dose": {"value": 7.5, "unit": "mg"}, "frequency": 2}, "fail"),  # 15 mg/day
    ({"dose": {"value": 10, "unit": "mg"}, "frequency": {"frequency": 3, "period": 1, "period_unit": "d"}}, "fail"),
    ({"dose": {"value": 20, "unit": "mg"}, "frequency": {"frequency": 1, "period": 2, "period_unit": "d"}}, "pass"),
    ({"dose": {"value": 5, "unit": "mg"}, "frequency": {"frequency": 1, "period": 8, "period_unit": "h"}}, "fail"),
    ({"daily_dose": {"value": 10, "unit": "mg/d"}}, "pass"),
    ({"daily_dose": {"value": 0.0125, "unit": "g/d"}}, "fail"),  # 12.5 mg/day
    ({"daily_dose": {"value": 10000, "unit": "ug/d"}}, "pass"),
    ({"dose": {"value": 5, "unit": "mg"}}, "unknown"),  # no frequency: no daily total
    ({}, "unknown"),  # no dose at all
    ({"dose": {"value": 1, "unit": "mg/kg"}, "frequency": 1}, "unknown"),  # needs the weight
    ({"dose": {"value": 5, "unit": "mg"}, "frequency": {"as_needed": True}}, "unknown"),
    ({"dose": {"value": 5, "unit": "mg"}, "frequency": {"frequency": 1, "period": 1, "period_unit": "mo"}}, "unknown"),
    # a period no double can turn into days (5e-324 h is 0 days; 1e308 wk is infinite): unknown, not a crash or 0
    ({"dose": {"value": 1, "unit": "mg"}, "frequency": {"frequency": 1, "period": 5e-324, "period_unit": "h"}}, "unknown"),
    ({"dose": {"value": 1, "unit": "mg"}, "frequency": {"frequency": 1, "period": 1e308, "period_unit": "wk"}}, "unknown"),
    ({"dose": {"value": 5, "unit": "mL"}, "frequency": 1}, "unknown"),  # not a mass
    ({"dose": {"value": 5}, "frequency": 1}, "unknown"),  # no unit
    # a recorded daily dose that disagrees with dose x frequency is an error in the record
    ({"dose": {"value": 5, "unit": "mg"}, "frequency": 2, "daily_dose": {"value": 5, "unit": "mg/d"}}, "unknown"),
    ({"dose": {"value": 5, "unit": "mg"}, "frequency": 2, "daily_dose": {"value": 10, "unit": "mg/d"}}, "pass"),
])
def test_daily_dose(fields, expected):
    result = one(trial(EXCLUSION), on_prednisone(**fields))
    assert result.verdict == expected, result.missing
    if expected == "unknown":
        assert result.missing


def test_missing_dose_reasons_are_named():
    t = trial(EXCLUSION)
    text = lambda **f: " ".join(one(t, on_prednisone(**f)).missing)  # noqa: E731
    assert "frequency not recorded" in text(dose={"value": 5, "unit": "mg"})
    assert "dose not recorded" in text()
    assert "weight or BSA" in text(dose={"value": 1, "unit": "mg/kg"}, frequency=1)
    assert "as needed" in text(dose={"value": 5, "unit": "mg"}, frequency={"as_needed": True})
    assert "disagrees" in text(dose={"value": 5, "unit": "mg"}, frequency=2, daily_dose={"value": 5, "unit": "mg/d"})


def test_another_record_still_decides():
    t = trial(EXCLUSION)
    p = patient(medications=[
        {"code": "RXNORM:8640", "start": "2026-01-01", "status": "active"},
        {"code": "RXNORM:8640", "start": "2026-02-01", "status": "active", "daily_dose": {"value": 20, "unit": "mg/d"}},
    ])
    assert one(t, p).verdict == "fail"


def test_per_administration_dose_and_range():
    t = trial(PRED + 'inclusion I1 "x" = current medication prednisone with dose <= 5 mg\n')
    assert one(t, on_prednisone(dose={"value": 5000, "unit": "ug"})).verdict == "pass"
    assert one(t, on_prednisone(dose={"value": 7.5, "unit": "mg"})).verdict == "fail"
    assert one(t, on_prednisone(daily_dose={"value": 5, "unit": "mg/d"})).verdict == "unknown"
    t = trial(PRED + 'inclusion I1 "x" = current medication prednisone with dose between 5 mg/day and 10 mg/day\n')
    assert one(t, on_prednisone(dose={"value": 2.5, "unit": "mg"}, frequency=2)).verdict == "pass"
    assert one(t, on_prednisone(dose={"value": 2.5, "unit": "mg"}, frequency=1)).verdict == "fail"


def test_window_and_other_qualifiers_combine():
    t = trial(PRED + 'exclusion E1 "x" = medication prednisone with dose > 10 mg/day with route = "oral" '
              'within 4 weeks\n')
    p = patient(medications=[{"code": "RXNORM:8640", "start": "2026-11-01", "end": "2026-11-10", "route": "oral",
                              "daily_dose": {"value": 20, "unit": "mg/d"}}])
    assert one(t, p).verdict == "fail"
    p = patient(medications=[{"code": "RXNORM:8640", "start": "2026-01-01", "end": "2026-02-10", "route": "oral",
                              "daily_dose": {"value": 20, "unit": "mg/d"}}])
    assert one(t, p).verdict == "pass"


def test_threshold_units_convert_at_compile_time():
    t = trial(PRED + 'exclusion E1 "x" = current medication prednisone with dose > 0.01 g/d\n')
    assert one(t, on_prednisone(daily_dose={"value": 10, "unit": "mg/d"})).verdict == "pass"
    assert one(t, on_prednisone(daily_dose={"value": 10.5, "unit": "mg/d"})).verdict == "fail"
    t = trial(PRED + 'exclusion E1 "x" = current medication prednisone with dose > 70 mg/wk\n')
    assert one(t, on_prednisone(daily_dose={"value": 10, "unit": "mg/d"})).verdict == "pass"
    assert one(t, on_prednisone(daily_dose={"value": 11, "unit": "mg/d"})).verdict == "fail"


def test_explanation_shows_the_dose():
    result = one(trial(EXCLUSION), on_prednisone(dose={"value": 10, "unit": "mg"}, frequency=3))
    detail = " ".join(e.detail for e in result.evidence)
    assert "dose 10 mg" in detail and "30 mg/day" in detail


@pytest.mark.parametrize("rule, message", [
    ('current medication prednisone with dose > 10 mL', "not a mass"),
    ('current medication prednisone with dose > 1 mg/kg', "body weight"),
    ('current medication prednisone with grade > 10 mg', "only with a medication's dose"),
    ('condition prednisone with dose > 10 mg', "belongs to a medication"),
    ('current medication prednisone with dose between 10 mg/d and 5 mg/d', "backwards"),
    ('current medication prednisone with dose between 5 mg and 10 mg/d', "same kind of unit"),
    ('current medication prednisone with dose > 10 furlongs', "cannot be used"),
])
def test_compile_errors_are_positioned(rule, message):
    with pytest.raises(SourceError) as info:
        trial(PRED + f'exclusion E1 "x" = {rule}\n')
    text = str(info.value)
    assert message in text and "test.crit:3:" in text


def test_a_misplaced_dose_field_is_refused_by_the_model():
    with pytest.raises(Exception):
        patient_from_document({"id": "x", "medications": [{"code": "RXNORM:8640", "dose": "10 mg"}]}, "p.json")


def _bundle(resource):
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
        {"fullUrl": "urn:uuid:m", "resource": resource}]}


def _statement(dosage):
    return {"resourceType": "MedicationStatement", "id": "m", "status": "active", "subject": {"reference": "urn:uuid:p"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                      "code": "8640"}]},
            "effectivePeriod": {"start": "2026-01-01"}, "dosage": dosage}


def test_fhir_dosage_is_read():
    dosage = [{"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
               "doseAndRate": [{"doseQuantity": {"value": 7.5, "unit": "mg", "system": "http://unitsofmeasure.org",
                                                 "code": "mg"}}]}]
    document, _ = fhir_to_patient(_bundle(_statement(dosage)))
    (med,) = document["medications"]
    assert med["dose"] == {"value": 7.5, "unit": "mg"}
    assert med["frequency"] == {"frequency": 2, "period": 1, "period_unit": "d"}
    result = one(trial(EXCLUSION), patient_from_document(document, "b.json"))
    assert result.verdict == "fail"


def test_fhir_medication_request_dosage_instruction():
    request = _statement(None)
    del request["dosage"], request["effectivePeriod"]
    request.update(resourceType="MedicationRequest", intent="order", authoredOn="2026-01-01", dosageInstruction=[
        {"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
         "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]}])
    document, _ = fhir_to_patient(_bundle(request))
    assert one(trial(EXCLUSION), patient_from_document(document, "b.json")).verdict == "pass"


@pytest.mark.parametrize("dosage", [
    None,
    [],
    # a taper: two dosages, not read as one dose
    [{"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]},
     {"doseAndRate": [{"doseQuantity": {"value": 2.5, "unit": "mg"}}]}],
    # a dose range is not a dose
    [{"doseAndRate": [{"doseRange": {"low": {"value": 5, "unit": "mg"}, "high": {"value": 10, "unit": "mg"}}}]}],
    # a dose without timing: no daily total
    [{"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]}],
    [{"asNeededBoolean": True, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
      "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}]}],
])
def test_fhir_dosages_that_cannot_be_read_leave_the_dose_unknown(dosage):
    document, _ = fhir_to_patient(_bundle(_statement(dosage)))
    assert one(trial(EXCLUSION), patient_from_document(document, "b.json")).verdict == "unknown"


@pytest.mark.parametrize("rule, fields, expected", [
    # a weekly dose is not rounded on its way to mg/day: 15 mg/wk is more than 14.8 mg/wk
    ("with dose > 14.8 mg/wk", {"daily_dose": {"value": 15, "unit": "mg/wk"}}, "pass"),
    ("with dose > 15 mg/wk", {"daily_dose": {"value": 15, "unit": "mg/wk"}}, "fail"),
    ("with dose <= 15 mg/wk", {"dose": {"value": 15, "unit": "mg"},
                               "frequency": {"frequency": 1, "period": 1, "period_unit": "wk"}}, "pass"),
    # 5 mg every 8 hours is exactly 15 mg/day, not 15.000000000000002
    ("with dose > 15 mg/day", {"dose": {"value": 5, "unit": "mg"},
                               "frequency": {"frequency": 1, "period": 8, "period_unit": "h"}}, "fail"),
    ("with dose >= 15 mg/day", {"dose": {"value": 5, "unit": "mg"},
                                "frequency": {"frequency": 1, "period": 8, "period_unit": "h"}}, "pass"),
    ("with dose = 0.3 mg/day", {"dose": {"value": 0.1, "unit": "mg"}, "frequency": 3}, "pass"),
])
def test_conversions_are_exact(rule, fields, expected):
    t = trial(PRED + f'inclusion I1 "x" = current medication prednisone {rule}\n')
    assert one(t, on_prednisone(**fields)).verdict == expected


def test_the_cli_refuses_a_dose_per_kilogram_with_exit_2(tmp_path):
    from cli_helpers import run

    (tmp_path / "bad.crit").write_text('trial "T"\n' + PRED + 'exclusion E1 "x" =\n  current medication prednisone with dose > 1 mg/kg\n')
    (tmp_path / "p.json").write_text('{"id": "p", "medications": []}')
    proc = run("check", "bad.crit", "p.json", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("bad.crit:4:") and "body weight" in proc.stderr


def test_a_bad_dose_in_patient_json_names_its_path(tmp_path):
    from cli_helpers import run

    (tmp_path / "r.crit").write_text('trial "T"\n' + EXCLUSION)
    (tmp_path / "p.json").write_text('{"id": "p", "medications": [{"code": "RXNORM:8640", "dose": {"value": "5"}}]}')
    proc = run("check", "r.crit", "p.json", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert "$.medications[0].dose.value" in proc.stderr
