"""CDS Hooks prefetch -> one FHIR bundle for the converter (screening/patient/fhir.py).

What each prefetch value means (CDS Hooks 2.0, "Prefetch template"), and what we make of it:

* key **absent**: the client chose not to, or could not, fetch it. The record list is *not
  provided*: every test on it is unknown (named in the result's warnings).
* key **null**: the client has no data for it. For a search (``Condition?patient=...``) that is
  "none recorded", the same as a searchset with no entries: the list is present and empty, so
  "no history of malignancy" can pass. Labs are never assumed absent (no result stays unknown).
* an **OperationOutcome** (or a searchset holding one): the client failed to fetch it: not provided.
* a **paged** searchset (a ``next`` link, or ``total`` above the entries sent): incomplete, and the
  service has no FHIR server access to follow the link, so the list is *not provided* rather
  than read as complete (a page of conditions could hide the malignancy on the next page).

Allergies and immunizations are asked for only when a loaded rule set tests them.

The Patient itself is required: without it (absent, null or an OperationOutcome) nothing can be
screened, which CDS Hooks answers with HTTP 412 (:class:`PrefetchMissing`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import DataError, DataProblem

PATIENT_KEY = "patient"

#: prefetch key -> (template, resource types it returns, record list, List section code (LOINC))
SEARCHES: dict[str, tuple[str, tuple[str, ...], str | None, str | None]] = {
    "conditions": ("Condition?patient={{context.patientId}}", ("Condition",), "conditions", "11450-4"),
    "observations": ("Observation?patient={{context.patientId}}", ("Observation",), None, None),
    "medications": ("MedicationRequest?patient={{context.patientId}}&_include=MedicationRequest:medication",
                    ("MedicationRequest", "Medication"), "medications", "10160-0"),
    "procedures": ("Procedure?patient={{context.patientId}}", ("Procedure",), "procedures", "47519-4"),
    "allergies": ("AllergyIntolerance?patient={{context.patientId}}", ("AllergyIntolerance",), "allergies", "48765-2"),
    "immunizations": ("Immunization?patient={{context.patientId}}", ("Immunization",), "immunizations", "11369-6"),
}
ALWAYS = ("observations", "conditions", "medications", "procedures")
"""The searches always asked for; allergies and immunizations only when a loaded rule set tests them."""


def templates(keys=ALWAYS) -> dict[str, str]:
    """The discovery's prefetch: the Patient, then the searches ``keys``."""
    return {PATIENT_KEY: "Patient/{{context.patientId}}", **{key: SEARCHES[key][0] for key in keys}}


PREFETCH_TEMPLATES: dict[str, str] = templates()


def record_lists(trials) -> set[str]:
    """The patient record lists (conditions, allergies, ...) any of the compiled ``trials`` tests."""
    from dataclasses import fields, is_dataclass

    from .. import ir

    found: set[str] = set()
    seen: set[int] = set()
    stack = [node for trial in trials for c in trial.criteria for node in (c.condition, c.applies) if node is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ir.RecordTest):
            found.add(node.kind)
        if not is_dataclass(node):
            continue
        for f in fields(node):  # children and the record tests inside atoms (anchors, counts)
            value = getattr(node, f.name, None)
            items = value if isinstance(value, (list, tuple)) else (value,)
            stack.extend(item for item in items if isinstance(item, ir.Node))
    return found


class PrefetchMissing(Exception):
    """The request lacks what the service cannot do without (the Patient): HTTP 412."""

    def __init__(self, message: str, path: str):
        self.message = message
        self.path = path
        super().__init__(message)


@dataclass
class Assembled:
    """The bundle built from a prefetch, where each entry came from, and what was not provided."""

    bundle: dict
    origins: list[str] = field(default_factory=list)  # bundle entry index -> JSON path in the request
    warnings: list[str] = field(default_factory=list)

    def relocate(self, error: DataError, name: str) -> DataError:
        """The converter's error with paths into the request (``$.prefetch.conditions.entry[2]...``)."""
        problems = []
        for problem in error.problems:
            match = _ENTRY.match(problem.path)
            path = problem.path
            if match and int(match.group(1)) < len(self.origins):
                path = self.origins[int(match.group(1))] + problem.path[match.end():]
            elif path.startswith("$.entry"):
                path = "$.prefetch"
            problems.append(DataProblem(path, problem.message, problem.code))
        return DataError(name, problems)


_ENTRY = re.compile(r"^\$\.entry\[(\d+)\]\.resource")


def _operation_outcome(value) -> bool:
    return isinstance(value, dict) and value.get("resourceType") == "OperationOutcome"


def _outcome_text(value: dict) -> str:
    """The first issue's diagnostics (or details.text, or code) of an OperationOutcome, shortened."""
    issues = value.get("issue")
    for issue in issues if isinstance(issues, list) else []:
        if not isinstance(issue, dict):
            continue
        details = issue.get("details") if isinstance(issue.get("details"), dict) else {}
        for text in (issue.get("diagnostics"), details.get("text"), issue.get("code")):
            if isinstance(text, str) and text.strip():
                return " ".join(text.split())[:200]
    return "no diagnostics"


def assemble(prefetch: dict | None, patient_id: str, keys=ALWAYS) -> Assembled:
    """Build one collection bundle from the prefetch of a ``patient-view`` call.

    Raises :class:`PrefetchMissing` without a usable Patient, and :class:`DataError` (paths into
    the request) for a prefetch value of the wrong shape or a Patient that is not ``patientId``.
    """
    prefetch = prefetch or {}
    entries: list[dict] = []
    out = Assembled({"resourceType": "Bundle", "type": "collection", "entry": entries})
    patient = prefetch.get(PATIENT_KEY)
    where = f"$.prefetch.{PATIENT_KEY}"
    if patient is None:
        state = "null (the EHR had no data)" if PATIENT_KEY in prefetch else "absent"
        raise PrefetchMissing(f"prefetch '{PATIENT_KEY}' is {state}: the service has no FHIR server access and needs "
                              f"the Patient prefetched ({PREFETCH_TEMPLATES[PATIENT_KEY]})", where)
    if _operation_outcome(patient):
        raise PrefetchMissing(f"the EHR could not fetch the Patient: {_outcome_text(patient)}", where)
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        shown = patient.get("resourceType") if isinstance(patient, dict) else type(patient).__name__
        raise DataError("prefetch", [DataProblem(f"{where}.resourceType", "expected a Patient resource, not "
                                                 f"{shown!r}", "fhir")])
    if patient.get("id") != patient_id:
        raise DataError("prefetch", [DataProblem(f"{where}.id", f"the prefetched Patient is {patient.get('id')!r}, "
                                                 f"not context.patientId {patient_id!r}", "fhir")])
    entries.append({"fullUrl": f"Patient/{patient_id}", "resource": patient})
    out.origins.append(where)
    for key in keys:
        _template, _types, section, code = SEARCHES[key]
        where = f"$.prefetch.{key}"
        noun = section or "labs"
        if key not in prefetch:
            out.warnings.append(f"prefetch '{key}' not sent: {noun} not provided (tests on them are unknown)")
            continue
        value = prefetch[key]
        if value is None or (isinstance(value, dict) and value.get("resourceType") == "Bundle"
                             and not value.get("entry") and not _paged(value)):
            if section is not None:  # "no data": none recorded
                entries.append({"resource": _none_known(section, code, patient_id)})
                out.origins.append(where)
            continue
        if _operation_outcome(value):
            out.warnings.append(f"prefetch '{key}': the EHR could not fetch it ({_outcome_text(value)}): "
                                f"{noun} not provided")
            continue
        if not isinstance(value, dict) or value.get("resourceType") != "Bundle":
            shown = value.get("resourceType") if isinstance(value, dict) else type(value).__name__
            raise DataError("prefetch", [DataProblem(where if not isinstance(value, dict) else f"{where}.resourceType",
                                                     f"expected a searchset Bundle (or null), not {shown!r}", "fhir")])
        raw = value.get("entry", [])
        if not isinstance(raw, list):
            raise DataError("prefetch", [DataProblem(f"{where}.entry", "Bundle.entry is not a list", "fhir")])
        if _paged(value):
            out.warnings.append(f"prefetch '{key}' is paged (the EHR sent a next link or fewer entries than its "
                                f"total; the service does not follow links): {noun} not provided")
            continue
        failed = next((e for e in raw if isinstance(e, dict) and _operation_outcome(e.get("resource"))), None)
        if failed is not None:
            out.warnings.append(f"prefetch '{key}': the EHR reported a problem ({_outcome_text(failed['resource'])}): "
                                f"{noun} not provided")
            continue
        for index, entry in enumerate(raw):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
                continue  # an _include of the patient: the one Patient is the 'patient' prefetch
            entries.append(entry)
            out.origins.append(f"{where}.entry[{index}].resource")
    return out


def _paged(bundle: dict) -> bool:
    links = bundle.get("link")
    if isinstance(links, list) and any(isinstance(link, dict) and link.get("relation") == "next" for link in links):
        return True
    total = bundle.get("total")
    entries = bundle.get("entry")
    matches = sum(1 for e in entries if isinstance(e, dict) and _mode(e) == "match") if isinstance(entries, list) else 0
    return isinstance(total, int) and not isinstance(total, bool) and total > matches


def _mode(entry: dict) -> str:
    search = entry.get("search")
    mode = search.get("mode") if isinstance(search, dict) else None
    return mode if isinstance(mode, str) else "match"


def _none_known(section: str, code: str, patient_id: str) -> dict:
    """A List saying the section is known to be empty (docs/fhir.md, "which record lists are written")."""
    return {
        "resourceType": "List", "status": "current", "mode": "snapshot",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "emptyReason": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
                                    "code": "nilknown"}]},
    }
