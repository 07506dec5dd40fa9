"""Read patients from JSON text, files and NDJSON streams; FHIR R4 is detected and converted.

Every failure is a :class:`~screening.errors.DataError` that names the file and the JSON path
(or line and column for text that is not JSON at all).
"""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from ..errors import DataError, DataProblem
from .fhir import FhirError, fhir_to_patient, is_fhir
from .model import Patient
from .record import PatientRecord, index_patient


def json_path(loc: tuple) -> str:
    """A pydantic ``loc`` tuple as a JSON path: ('observations', 2, 'date') -> $.observations[2].date."""
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problems(exc: ValidationError) -> list[DataProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "constrained-"))))
        # pydantic reports union members (int/float/bool/str) as separate path parts; drop them
        loc = tuple(p for p in loc if p not in ("int", "float", "bool", "str", "StrictInt", "StrictFloat"))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (not part of patient JSON version 1)"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(DataProblem(json_path(loc), message, err["type"]))
    # one message per path: unions produce one error per member type
    seen, unique = set(), []
    for p in problems:
        if p.path not in seen:
            seen.add(p.path)
            unique.append(p)
    return unique


def parse_json(text: str, name: str):
    """Parse JSON text; a syntax error becomes a DataError at line:column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(name, [DataProblem(f"line {exc.lineno} column {exc.colno}", f"not valid JSON: {exc.msg}", "json")]) from None


def patient_from_document(document, name: str = "<patient>") -> PatientRecord:
    """Validate a parsed patient JSON (or FHIR) document and index it."""
    if is_fhir(document):
        try:
            document, _report = fhir_to_patient(document)
        except FhirError as exc:
            raise DataError(name, [DataProblem(exc.path, exc.message, "fhir")]) from None
    elif isinstance(document, dict) and "resourceType" in document:
        raise DataError(name, [DataProblem("$.resourceType", f"FHIR resource type {document['resourceType']!r} "
                                           "is not a Bundle or Patient", "fhir")])
    if not isinstance(document, dict):
        raise DataError(name, [DataProblem("$", f"a patient must be a JSON object, not {type(document).__name__}")])
    try:
        model = Patient.model_validate(document)
    except ValidationError as exc:
        raise DataError(name, _problems(exc)) from None
    return index_patient(model, source=name)


def load_patient(path: str | Path) -> PatientRecord:
    """Load one patient from a JSON file (patient JSON version 1 or FHIR R4)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(str(path), [DataProblem("$", f"cannot read file: {exc.strerror}", "io")]) from None
    except UnicodeDecodeError:
        raise DataError(str(path), [DataProblem("$", "file is not UTF-8 text", "io")]) from None
    return patient_from_document(parse_json(text, str(path)), str(path))


def load_patients(paths) -> list[PatientRecord]:
    """Load several patient files."""
    return [load_patient(p) for p in paths]
