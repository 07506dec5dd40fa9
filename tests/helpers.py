"""Small builders shared by the tests: compile inline rules, make patients from dicts."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from screening import compile_text, patient_from_document

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
AS_OF = date(2026, 11, 25)


def rules(body: str, header: str = 'trial "T-1"\n') -> str:
    return header + body


def trial(body: str, header: str = 'trial "T-1"\n'):
    return compile_text(rules(body, header), "test.crit")


def patient(**fields):
    document = {"id": "P", **fields}
    return patient_from_document(document, "patient.json")


def obs(code: str, value, unit: str | None = None, day: str = "2026-11-10", low=None, high=None, ref_unit=None):
    o = {"code": code, "value": value, "date": day}
    if unit is not None:
        o["unit"] = unit
    if low is not None or high is not None:
        o["reference_range"] = {"low": low, "high": high, "unit": ref_unit or unit}
    return o


def verdicts(trial_obj, patient_obj, as_of: date = AS_OF) -> dict[str, str]:
    result = trial_obj.screen(patient_obj, as_of)
    return {c.id: c.verdict for c in result.criteria}


def one(trial_obj, patient_obj, as_of: date = AS_OF):
    """The single criterion result of a one-criterion trial; also checks the fast path agrees."""
    result = trial_obj.screen(patient_obj, as_of)
    (criterion,) = result.criteria
    ((applies, value),) = trial_obj.values(patient_obj, as_of)
    if criterion.applicable is False:
        assert applies is False
    else:
        assert value == criterion.value or criterion.applicable is None
    return criterion


def named_fhir_bundle(uuid: str = "8f14e45f-ceea-467f-a0e6-5c1a3e6b1b7d", mrn: str = "12345", family: str = "Doe",
                      given: str = "Jane") -> dict:
    """A FHIR bundle of one Patient with an MRN (identifier typed MR) and an official name, for label tests."""
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": f"urn:uuid:{uuid}", "resource": {
        "resourceType": "Patient", "id": uuid, "gender": "female", "birthDate": "1990-01-01",
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
                        "value": mrn}],
        "name": [{"use": "official", "family": family, "given": [given]}]}}]}
