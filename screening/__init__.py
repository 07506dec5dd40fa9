"""screening: decide, criterion by criterion, whether a patient may enter a clinical trial, and say why.

The public API, in the order a program uses it::

    from screening import compile_trial, load_patient
    trial = compile_trial("trials/NCT00659217.crit")      # parse -> check -> compile, once
    patient = load_patient("patient_samples/p01_eligible_female_si_units.json")   # JSON or FHIR R4, validated
    result = trial.screen(patient, as_of=date(2026, 11, 25))
    result.decision, [(c.id, c.verdict) for c in result.criteria]
"""
from .compile import Trial, compile_text, compile_trial
from .errors import DataError, ScreeningError, SourceError, UsageError
from .patient.load import load_patient, patient_from_document
from .report import CriterionResult, PatientResult

__all__ = [
    "Trial", "compile_text", "compile_trial", "load_patient", "patient_from_document",
    "PatientResult", "CriterionResult", "ScreeningError", "SourceError", "DataError", "UsageError",
]
__version__ = "0.1.0"
