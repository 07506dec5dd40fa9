"""screening: decide, criterion by criterion, whether a patient may enter a clinical trial, and say why.

The public API, in the order a program uses it::

    from screening import compile_trial, load_patient
    trial = compile_trial("trials/NCT00659217.crit")      # parse -> check -> compile, once
    patient = load_patient("patient_samples/p01_eligible_female_si_units.json")   # JSON or FHIR R4, validated
    result = trial.screen(patient, as_of=date(2026, 11, 25))
    result.decision, [(c.id, c.verdict) for c in result.criteria]
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_API = {
    "Trial": ".compile", "compile_text": ".compile", "compile_trial": ".compile",
    "load_patient": ".patient.load", "patient_from_document": ".patient.load",
    "PatientResult": ".report", "CriterionResult": ".report",
    "ScreeningError": ".errors", "SourceError": ".errors", "DataError": ".errors", "UsageError": ".errors",
}
"""The public API and the module of each name, imported on first use (PEP 562): ``import screening`` itself
costs nothing, so the console script (screening.entry) starts, and answers Ctrl-C, before the engine loads."""

__all__ = list(_API)
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .compile import Trial, compile_text, compile_trial
    from .errors import DataError, ScreeningError, SourceError, UsageError
    from .patient.load import load_patient, patient_from_document
    from .report import CriterionResult, PatientResult


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'screening' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
