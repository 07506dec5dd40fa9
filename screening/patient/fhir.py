"""Convert a FHIR R4 Bundle (or a lone Patient resource) to a patient JSON version 1 dict.

Only the resources that describe the one patient are used: Patient, Observation, Condition,
MedicationRequest, MedicationStatement, Procedure, AllergyIntolerance and Immunization (plus
Medication resources that these reference, and List resources that say a section is empty).
Everything else is counted per type in a :class:`ConversionReport` and dropped, as are codings
from unknown code systems and observations that keep no known code or no value.

A record list (``conditions``, ``medications``, ...) is written only when the bundle shows that the
list was exported: a resource of that type for the patient, a ``List`` for the section with
``emptyReason`` ``nilknown``, or a "no known ..." entry. Otherwise it is absent ("not provided").
A record whose code cannot be read is kept with an ``unreadable`` reason, never dropped.

Bad input raises :class:`FhirError`, whose ``path`` is a JSON path into the document such as
``$.entry[12].resource.effectiveDateTime``.
"""
from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass, field

from .model import MAX_POSITIVE_INT

SYSTEMS = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM",
    "http://www.whocc.no/atc": "ATC",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "http://hl7.org/fhir/sid/cvx": "CVX",
}
"""FHIR code system URIs and the prefix each gets in a patient JSON code (``LOINC:1742-6``)."""

UCUM = "http://unitsofmeasure.org"
GENDERS = ("female", "male", "other", "unknown")
REJECTED_VERIFICATION = ("entered-in-error", "refuted")
COMPARATORS = ("<", "<=", ">", ">=")

UNREAD_SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-9-cm": "ICD-9-CM",
    "http://hl7.org/fhir/sid/icd-9": "ICD-9",
    "http://fhir.de/CodeSystem/bfarm/icd-10-gm": "ICD-10-GM",
    "http://fhir.de/CodeSystem/dimdi/icd-10-gm": "ICD-10-GM",
}
"""Code systems recognised but not read (named in the reason a record is unreadable)."""

SECTIONS = {
    "conditions": ("Condition",),
    "medications": ("MedicationRequest", "MedicationStatement"),
    "procedures": ("Procedure",),
    "allergies": ("AllergyIntolerance",),
    "immunizations": ("Immunization",),
}
"""Patient JSON record list -> the FHIR resource types whose presence means the list was exported."""

LIST_SECTIONS = {
    ("http://loinc.org", "11450-4"): "conditions",      # Problem list - Reported
    ("http://loinc.org", "10160-0"): "medications",     # History of Medication use Narrative
    ("http://loinc.org", "47519-4"): "procedures",      # History of Procedures Document
    ("http://loinc.org", "48765-2"): "allergies",       # Allergies and adverse reactions Document
    ("http://loinc.org", "11369-6"): "immunizations",   # History of Immunization Narrative
    ("http://terminology.hl7.org/CodeSystem/list-example-use-codes", "problems"): "conditions",
    ("http://terminology.hl7.org/CodeSystem/list-example-use-codes", "medications"): "medications",
    ("http://terminology.hl7.org/CodeSystem/list-example-use-codes", "allergies"): "allergies",
}
"""A FHIR List's ``code`` -> the record list it is (for ``emptyReason``)."""

IPS_ABSENT = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"
NONE_KNOWN = {
    ("http://snomed.info/sct", "160245001"): "conditions",   # No current problems or disability
    (IPS_ABSENT, "no-known-problems"): "conditions",
    ("http://snomed.info/sct", "787481004"): "medications",  # No known medications
    (IPS_ABSENT, "no-known-medications"): "medications",
    (IPS_ABSENT, "no-known-procedures"): "procedures",
    ("http://snomed.info/sct", "716186003"): "allergies",    # No known allergy
    ("http://snomed.info/sct", "160244002"): "allergies",    # No known allergies
    (IPS_ABSENT, "no-known-allergies"): "allergies",
    (IPS_ABSENT, "no-known-immunizations"): "immunizations",
}
"""Entries that say a whole list is known to be empty ("no known allergies"): the list is written."""

NOT_A_RECORD = {
    ("http://snomed.info/sct", "409137002"): "no known drug allergy (other allergies not excluded)",
    ("http://snomed.info/sct", "428607008"): "no known environmental allergy (other allergies not excluded)",
    ("http://snomed.info/sct", "429625007"): "no known food allergy (other allergies not excluded)",
    (IPS_ABSENT, "no-known-medication-allergies"): "no known medication allergies (other allergies not excluded)",
    (IPS_ABSENT, "no-known-environmental-allergies"): "no known environmental allergies (other allergies not excluded)",
    (IPS_ABSENT, "no-known-food-allergies"): "no known food allergies (other allergies not excluded)",
    (IPS_ABSENT, "no-problem-info"): "no information about problems",
    (IPS_ABSENT, "no-medication-info"): "no information about medications",
    (IPS_ABSENT, "no-procedure-info"): "no information about procedures",
    (IPS_ABSENT, "no-allergy-info"): "no information about allergies",
    (IPS_ABSENT, "no-immunization-info"): "no information about immunizations",
}
"""Entries that are statements about the list, not records, and do not make it complete."""

_ZERO_WIDTH = str.maketrans("", "", "\u200b\u200c\u200d\ufeff")
_DATE_TIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)?)?",
    re.ASCII,  # \d must not accept other scripts' digits
)


class FhirError(ValueError):
    """A FHIR document that cannot be converted; ``path`` is the JSON path of the culprit."""

    def __init__(self, message: str, path: str):
        self.message = message
        self.path = path
        super().__init__(f"{path}: {message}")


@dataclass
class ConversionReport:
    """What a conversion used and dropped.

    ``used`` counts resources per type; ``dropped`` counts unused resources per type and
    discarded items per reason (for example ``"Observation without a value"``).
    """

    used: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)
    """Records kept without a readable code, per reason (``"Condition coded only as text"``)."""

    def use(self, kind: str) -> None:
        """Count one used resource of type ``kind``."""
        self.used[kind] = self.used.get(kind, 0) + 1

    def drop(self, reason: str) -> None:
        """Count one dropped item, by resource type or reason."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def summary(self) -> str:
        """One readable line: ``used 79 Observation, 3 Condition; dropped 10 Claim, ...``."""
        text = f"used {_tally(self.used)}; dropped {_tally(self.dropped)}"
        if self.unreadable:
            text += f"; kept without a readable code (tests they could match are unknown): {_tally(self.unreadable)}"
        return text


def _tally(counts: dict[str, int]) -> str:
    if not counts:
        return "nothing"
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {name}" for name, count in ordered)


def is_fhir(document: object) -> bool:
    """True when ``document`` is a FHIR Bundle or Patient resource (a dict with that resourceType)."""
    return isinstance(document, dict) and document.get("resourceType") in ("Bundle", "Patient")


def fhir_to_patient(document: dict) -> tuple[dict, ConversionReport]:
    """Convert a FHIR R4 Bundle of any type, or a single Patient resource, to patient JSON v1.

    Returns the patient dict and a report of what was used and dropped. Raises
    :class:`FhirError` for a document that is not a Bundle or Patient, a bundle holding no
    Patient or more than one, malformed entries, non-numeric quantities and invalid dates.
    """
    if not is_fhir(document):
        raise FhirError("expected a FHIR resource with resourceType Bundle or Patient", "$.resourceType")
    if document["resourceType"] == "Patient":
        entries = [_Entry("$", document, None)]
    else:
        entries = _bundle_entries(document)
    context = _Context(entries)
    patient = _patient(context.patient)
    context.report.use("Patient")
    lists: dict[str, list] = {}  # the record lists the bundle shows were exported
    for entry in entries:
        kind = entry.resource["resourceType"]
        if kind in ("Patient", "Medication"):
            continue
        if kind == "List":
            _list_resource(entry, context, lists)
            continue
        if kind not in _CONVERTERS:
            context.report.drop(kind)
            continue
        if not context.belongs_to_patient(entry.resource):
            context.report.drop(f"{kind} of another patient")
            continue
        key, convert = _CONVERTERS[kind]
        statement = _none_known(entry.resource, key)
        if statement is not None:
            if statement is True:
                lists.setdefault(key, [])
                context.report.use(f"{kind} 'no known {key}'")
            else:
                context.report.drop(f"{kind} '{statement}'")
            continue
        if key != "observations":
            lists.setdefault(key, [])  # a resource of this type: the EHR exported this list
        if entry.resource.get("status") == "entered-in-error":
            context.report.drop(f"{kind} entered-in-error")
            continue
        if kind == "Observation" and entry.resource.get("status") == "cancelled":
            context.report.drop("Observation cancelled")  # no result was obtained, whatever value it carries
            continue
        records = convert(entry, context)
        if records:
            context.report.use(kind)
            lists.setdefault(key, []).extend(records)
    context.count_medications()
    if context.adverse_events:
        if "conditions" in lists:  # an adverse event is a condition of the exported list
            lists["conditions"].extend(context.adverse_events)
            for _ in context.adverse_events:
                context.report.use("AdverseEvent")
        else:  # alone it would make the list look complete ("no cancer") when only events were exported
            for _ in context.adverse_events:
                context.report.drop("AdverseEvent without the patient's Conditions")
    facts = patient.pop("facts")
    for key in ("observations", *SECTIONS):
        if key in lists:
            patient[key] = lists[key]
    patient["facts"] = facts
    return patient, context.report


def _none_known(resource: dict, key: str) -> bool | str | None:
    """True for a "no known X" entry that empties the whole list; a reason (str) for a statement
    that is not a record and settles nothing ("no known drug allergy", "no information");
    None for an ordinary record."""
    if key == "observations":
        return None
    concept = resource.get("vaccineCode") or resource.get("medicationCodeableConcept") or resource.get("code")
    for coding in _list(_dict(concept).get("coding")):
        coding = _dict(coding)
        pair = (_system(coding), _text(coding.get("code")))
        if NONE_KNOWN.get(pair) == key:
            if _status_code(resource.get("verificationStatus")) in REJECTED_VERIFICATION:
                return "refuted"
            if resource.get("status") == "entered-in-error":
                return "entered-in-error"
            return True
        if pair in NOT_A_RECORD:
            return NOT_A_RECORD[pair]
    return None


def _list_resource(entry: _Entry, context: _Context, lists: dict[str, list]) -> None:
    """A List with ``emptyReason`` nilknown says its section is known to be empty."""
    resource = entry.resource
    section = next((LIST_SECTIONS[(_system(c), c.get("code"))]
                    for c in map(_dict, _list(_dict(resource.get("code")).get("coding")))
                    if isinstance(c.get("code"), str) and (_system(c), c.get("code")) in LIST_SECTIONS), None)
    if section is None or not context.belongs_to_patient(resource):
        context.report.drop("List" if section is None else "List of another patient")
        return
    reason = _status_code(resource.get("emptyReason"))
    if reason is None or resource.get("status") != "current" or _list(resource.get("entry")):
        # only a current List speaks for the record now: a retired or erroneous one proves nothing
        context.report.drop(f"List of {section}")  # its entries are read from the resources themselves
        return
    if reason == "nilknown":
        lists.setdefault(section, [])
        context.report.use(f"List: no known {section}")
    else:
        context.report.drop(f"List of {section} empty ({reason}): not known to be empty")


@dataclass
class _Entry:
    """A resource with the JSON path it sits at and the fullUrl of its bundle entry."""

    path: str
    resource: dict
    full_url: str | None


def _bundle_entries(bundle: dict) -> list[_Entry]:
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise FhirError("Bundle.entry is not a list", "$.entry")
    entries = []
    for index, entry in enumerate(raw):
        path = f"$.entry[{index}]"
        if not isinstance(entry, dict):
            raise FhirError("entry is not an object", path)
        if "resource" not in entry:
            continue
        resource = entry["resource"]
        if not isinstance(resource, dict):
            raise FhirError("resource is not an object", f"{path}.resource")
        if not isinstance(resource.get("resourceType"), str):
            raise FhirError("resource has no resourceType", f"{path}.resource.resourceType")
        full_url = entry.get("fullUrl")
        entries.append(_Entry(f"{path}.resource", resource, full_url if isinstance(full_url, str) else None))
    return entries


class _Context:
    """The bundle-wide state of one conversion: the patient, the Medications, the report."""

    def __init__(self, entries: list[_Entry]):
        self.report = ConversionReport()
        patients = [entry for entry in entries if entry.resource["resourceType"] == "Patient"]
        if not patients:
            raise FhirError("the bundle holds no Patient", "$.entry")
        if len(patients) > 1:
            raise FhirError(f"the bundle holds {len(patients)} patients; split it", "$.entry")
        self.patient = patients[0]
        self.patient_id = _patient_id(self.patient)
        self.medications: dict[str, dict] = {}
        for entry in entries:
            if entry.resource["resourceType"] == "Medication":
                self._index_medication(entry)
        self.conditions: dict[str, dict] = {}  # for a medication's reasonReference
        for entry in entries:
            if entry.resource["resourceType"] == "Condition":
                if entry.full_url:
                    self.conditions[_without_history(entry.full_url)] = entry.resource
                if isinstance(entry.resource.get("id"), str):
                    self.conditions[f"Condition/{entry.resource['id']}"] = entry.resource
        self.referenced: set[int] = set()
        self.resources: dict[str, dict] = {}  # every resource by fullUrl and Type/id (what an adverse event names)
        for entry in entries:
            resource = entry.resource
            if entry.full_url:
                self.resources[_without_history(entry.full_url)] = resource
            if isinstance(resource.get("id"), str):
                self.resources[f"{resource['resourceType']}/{resource['id']}"] = resource
        self.adverse_events: list[dict] = []  # AdverseEvent records, added to the conditions if those were exported

    def _index_medication(self, entry: _Entry) -> None:
        if entry.full_url:
            self.medications[_without_history(entry.full_url)] = entry.resource
        if isinstance(entry.resource.get("id"), str):
            self.medications[f"Medication/{entry.resource['id']}"] = entry.resource

    def belongs_to_patient(self, resource: dict) -> bool:
        """False when the resource's subject (or patient) refers to someone else."""
        subject = resource.get("subject", resource.get("patient"))
        reference = _dict(subject).get("reference")
        if not isinstance(reference, str):
            return True
        reference = _without_history(reference)
        own = {f"Patient/{self.patient_id}", f"urn:uuid:{self.patient_id}", _without_history(self.patient.full_url)}
        return reference in own or reference.endswith(f"/Patient/{self.patient_id}")

    def medication(self, resource: dict) -> dict | None:
        """The Medication a ``medicationReference`` points to (in the bundle or contained), if found."""
        reference = _dict(resource.get("medicationReference")).get("reference")
        if not isinstance(reference, str):
            return None
        if reference.startswith("#"):
            contained = [_dict(item) for item in _list(resource.get("contained"))]
            found = next((item for item in contained if f"#{item.get('id')}" == reference), None)
            return found if found and found.get("resourceType") == "Medication" else None
        found = self.medications.get(reference) or self.medications.get(_without_history(reference))
        if found is None and "/Medication/" in reference:
            found = self.medications.get("Medication/" + _without_history(reference).rsplit("/Medication/", 1)[1])
        if found is not None:
            self.referenced.add(id(found))
        return found

    def count_medications(self) -> None:
        """Count bundled Medication resources as used when referenced, dropped otherwise."""
        unique = {id(resource) for resource in self.medications.values()}
        for key in unique:
            if key in self.referenced:
                self.report.use("Medication")
            else:
                self.report.drop("unreferenced Medication")


def _without_history(reference: str | None) -> str | None:
    """``Patient/p1/_history/3`` -> ``Patient/p1``: a versioned reference names the same resource."""
    if reference is None:
        return None
    head, sep, _version = reference.partition("/_history/")
    return head if sep else reference


def _patient_id(entry: _Entry) -> str:
    resource_id = entry.resource.get("id")
    if isinstance(resource_id, str) and resource_id.strip():
        return resource_id.strip()
    if entry.full_url:
        return entry.full_url.removeprefix("urn:uuid:")
    raise FhirError("the Patient has neither an id nor a fullUrl", f"{entry.path}.id")


def _patient(entry: _Entry) -> dict:
    """The patient JSON skeleton: id, birth_date, sex, deceased (a date, or true) and facts."""
    resource, path = entry.resource, entry.path
    patient: dict = {"id": _patient_id(entry)}
    mrn = _mrn(resource.get("identifier"))
    if mrn:
        patient["mrn"] = mrn
    name = _human_name(resource.get("name"))
    if name:
        patient["name"] = name
    birth_date = _date(resource.get("birthDate"), f"{path}.birthDate")
    if birth_date:
        patient["birth_date"] = birth_date
    gender = resource.get("gender")
    if gender is not None:
        if gender not in GENDERS:
            raise FhirError(f"gender must be one of {', '.join(GENDERS)}, not {gender!r}", f"{path}.gender")
        patient["sex"] = gender
    deceased = resource.get("deceasedDateTime")
    if deceased is not None:
        patient["deceased"] = _date(deceased, f"{path}.deceasedDateTime")
    elif resource.get("deceasedBoolean") is True:
        patient["deceased"] = True
    patient["facts"] = {}
    return patient


_MR_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _mrn(identifiers: object) -> str | None:
    """The medical record number: the identifier typed MR (HL7 v2-0203), else one whose system or type
    text says MRN (``urn:oid:...mrn``, ``https://hospital.example/mrn``); an old identifier is skipped."""
    typed = marked = None
    for identifier in _list(identifiers):
        identifier = _dict(identifier)
        value = _text(identifier.get("value"))
        if not value or identifier.get("use") == "old":
            continue
        kind = _dict(identifier.get("type"))
        codes = [(_dict(c).get("system"), _dict(c).get("code")) for c in _list(kind.get("coding"))]
        if typed is None and any(code == "MR" and system in (_MR_TYPE, None) for system, code in codes):
            typed = value
        words = " ".join(str(x) for x in (identifier.get("system"), kind.get("text")) if isinstance(x, str)).lower()
        if marked is None and ("mrn" in words or "medical record" in words):
            marked = value
    return typed or marked


def _human_name(names: object) -> str | None:
    """The patient's name as reports show it: "Family, Given Middle" (or the name's text), from the
    official name, else the usual one, else the first that is not old."""
    candidates = [_dict(n) for n in _list(names) if _dict(n).get("use") not in ("old", "anonymous")]
    if not candidates:
        return None
    rank = {"official": 0, "usual": 1}
    chosen = min(candidates, key=lambda n: rank.get(n.get("use"), 2))
    family = _clean(chosen.get("family"))
    given = " ".join(g for g in (_clean(x) for x in _list(chosen.get("given"))) if g)
    if family and given:
        return f"{family}, {given}"
    return family or given or _clean(chosen.get("text"))


def _observation(entry: _Entry, context: _Context) -> list[dict]:
    """One record per valued element: the Observation itself and each of its components."""
    resource, path = entry.resource, entry.path
    date = (
        _date(resource.get("effectiveDateTime"), f"{path}.effectiveDateTime")
        or _date(_dict(resource.get("effectivePeriod")).get("start"), f"{path}.effectivePeriod.start")
        or _date(resource.get("issued"), f"{path}.issued")
    )
    elements = [(resource, path)] + [
        (component, f"{path}.component[{index}]")
        for index, component in enumerate(_list(resource.get("component")))
        if isinstance(component, dict)
    ]
    records, valued = [], False
    for element, element_path in elements:
        value = _observation_value(element, element_path)
        if value is None:
            continue
        valued = True
        codes = _codes(element.get("code"), context.report, prefer="LOINC")
        if not codes:
            context.report.drop("Observation without a known code")
            continue
        record = _coded(codes, element.get("code"))
        record.update(value)
        reference_range = _reference_range(element, element_path)
        if reference_range:
            record["reference_range"] = reference_range
        _put(record, "date", date)
        records.append(record)
    if not valued:
        context.report.drop("Observation without a value")
    return records


def _observation_value(element: dict, path: str) -> dict | None:
    """``{"value": ..., "unit": ...}`` from the element's value[x], or None if it has none."""
    if "valueQuantity" in element:
        quantity = _dict(element["valueQuantity"])
        if quantity.get("value") is None:
            return None
        value = {"value": _number(quantity["value"], f"{path}.valueQuantity.value")}
        _put(value, "unit", _unit(quantity))
        comparator = quantity.get("comparator")
        if comparator in COMPARATORS:
            value["comparator"] = comparator  # an interval ("> 1.5"), not a value
        elif comparator == "ad":  # "sufficient to achieve this total": no number to compare
            value["value"] = f"ad {value['value']} {value.get('unit', '')}".strip()
            value.pop("unit", None)
        elif comparator is not None:
            raise FhirError(f"comparator must be one of <, <=, >=, >, ad, not {comparator!r}",
                            f"{path}.valueQuantity.comparator")
        return value
    if "valueCodeableConcept" in element:
        concept = _dict(element["valueCodeableConcept"])
        codings = [_dict(coding) for coding in _list(concept.get("coding"))]
        candidates = [concept.get("text")] + [c.get("display") for c in codings] + [c.get("code") for c in codings]
        text = next((_clean(c) for c in candidates if _clean(c)), None)
        answer = next((f"LOINC:{_text(c.get('code')).strip()}" for c in codings if c.get("system") == "http://loinc.org"
                       and (_text(c.get("code")) or "").strip().startswith("LA")), None)
        answer = answer or next((f"SNOMED:{_text(c.get('code')).strip()}" for c in codings
                                 if c.get("system") == "http://snomed.info/sct" and (_text(c.get("code")) or "").strip()),
                                None)
        value = {"value": text} if text else None
        if answer and value is not None:
            value["value_code"] = answer  # a coded answer (scores read it: docs/fhir.md)
        return value
    if "valueString" in element:
        text = _clean(element["valueString"])
        return {"value": text} if text else None
    if isinstance(element.get("valueBoolean"), bool):
        return {"value": element["valueBoolean"]}
    if "valueInteger" in element:
        return {"value": _number(element["valueInteger"], f"{path}.valueInteger")}
    return None


def _reference_range(element: dict, path: str) -> dict | None:
    ranges = _list(element.get("referenceRange"))
    if not ranges:
        return None
    first = _dict(ranges[0])
    result: dict = {}
    for bound in ("low", "high"):
        quantity = _dict(first.get(bound))
        if quantity.get("value") is not None:
            result[bound] = _number(quantity["value"], f"{path}.referenceRange[0].{bound}.value")
            if "unit" not in result:
                _put(result, "unit", _unit(quantity))
    return result if "low" in result or "high" in result else None


def _verified_record(entry: _Entry, context: _Context, kind: str) -> dict | None:
    """The record of a Condition or AllergyIntolerance, None when its verificationStatus refutes it
    (refuted, entered-in-error); provisional, differential and unconfirmed ones keep `verification`
    and never count as confirmed."""
    verification = _status_code(entry.resource.get("verificationStatus"))
    if verification in REJECTED_VERIFICATION:
        context.report.drop(f"{kind} {verification}")
        return None
    record = _record(entry, entry.resource.get("code"), context)
    if verification and verification != "confirmed":
        record["verification"] = verification
    return record


def _condition(entry: _Entry, context: _Context) -> list[dict]:
    """A condition with all its codes, onset, end and clinical status; refuted ones are dropped."""
    resource, path = entry.resource, entry.path
    record = _verified_record(entry, context, "Condition")
    if record is None:
        return []
    _put(
        record,
        "onset",
        _date(resource.get("onsetDateTime"), f"{path}.onsetDateTime")
        or _date(_dict(resource.get("onsetPeriod")).get("start"), f"{path}.onsetPeriod.start"),
    )
    _put(
        record,
        "end",
        _date(resource.get("abatementDateTime"), f"{path}.abatementDateTime")
        or _date(_dict(resource.get("abatementPeriod")).get("end"), f"{path}.abatementPeriod.end"),
    )
    _put(record, "status", _status_code(resource.get("clinicalStatus")))
    # the event date of a condition with no onset ("condition X within N" asks about the event)
    _put(record, "recorded_date", _date(resource.get("recordedDate"), f"{path}.recordedDate"))
    _condition_details(record, resource, context)
    causes = []
    for ext in _list(resource.get("extension")):
        ext = _dict(ext)
        if isinstance(ext.get("url"), str) and ext["url"].endswith("condition-dueTo"):
            if "valueCodeableConcept" in ext:
                concept = ext["valueCodeableConcept"]
                causes.extend(_codes(concept, context.report) or [_concept_text(concept) or "cause coded only as text"])
            elif "valueReference" in ext:
                causes.extend(_cause_codes(ext["valueReference"], context))
    _put(record, "caused_by", list(dict.fromkeys(causes)) or None)
    return [record]


def _cause_codes(reference: object, context: _Context) -> list[str]:
    """The codes of what a reference names as a cause (a MedicationStatement / MedicationRequest /
    MedicationAdministration / Medication / Procedure / Immunization / Substance in the bundle); its text
    when it does not resolve (a cause that cannot be read leaves `caused by` unknown, never false)."""
    target = _dict(reference).get("reference")
    found = context.resources.get(_without_history(target)) if isinstance(target, str) else None
    if found is None:
        return [_clean(_dict(reference).get("display")) or f"cause {target!r} not read"]
    kind = found.get("resourceType")
    if kind in ("MedicationStatement", "MedicationRequest", "MedicationAdministration"):
        concept = found.get("medicationCodeableConcept")
        if concept is None:
            medication = context.medication(found)
            concept = medication.get("code") if medication is not None else None
    elif kind in ("Medication", "Substance", "Procedure"):
        concept = found.get("code")
    elif kind == "Immunization":
        concept = found.get("vaccineCode")
    else:
        concept = None
    return _codes(concept, context.report) or [f"cause {target!r} not read"]


def _adverse_event(entry: _Entry, context: _Context) -> list[dict]:
    """An AdverseEvent as a condition record: event (code), date (onset), severity, a grade (an extension
    whose url ends in ``grade``: valueInteger, or a coded 0-5), and ``caused_by`` from each
    suspectEntity.instance. A potential event (a near miss) is not an event."""
    resource, path = entry.resource, entry.path
    if resource.get("actuality") == "potential":
        context.report.drop("AdverseEvent potential (a near miss)")
        return []
    record = _record(entry, resource.get("event"), context)
    _put(record, "onset", _date(resource.get("date"), f"{path}.date"))
    _put(record, "recorded_date", _date(resource.get("recordedDate"), f"{path}.recordedDate"))
    severity = resource.get("severity")
    if severity is not None:
        _put(record, "severity", _concept_text(severity))
    for ext in _list(resource.get("extension")):
        ext = _dict(ext)
        if not (isinstance(ext.get("url"), str) and ext["url"].lower().endswith("grade")):
            continue
        if isinstance(ext.get("valueInteger"), int) and not isinstance(ext.get("valueInteger"), bool):
            record["grade"] = ext["valueInteger"]
        elif "valueCodeableConcept" in ext:
            codings = [_dict(c) for c in _list(_dict(ext["valueCodeableConcept"]).get("coding"))]
            grade = next((_text(c.get("code")) for c in codings if (_text(c.get("code")) or "").strip().isdigit()), None)
            _put(record, "grade", int(grade) if grade is not None else _concept_text(ext["valueCodeableConcept"]))
    causes = []
    for suspect in _list(resource.get("suspectEntity")):
        causes.extend(_cause_codes(_dict(suspect).get("instance"), context))
    _put(record, "caused_by", list(dict.fromkeys(causes)) or None)
    context.adverse_events.append(record)
    return []


# SNOMED CT qualifier values for severity and laterality, read as the words rules compare with
_SEVERITY = {"255604002": "mild", "6736007": "moderate", "24484000": "severe", "442452003": "life threatening"}
_LATERALITY = {"7771000": "left", "24028007": "right", "51440002": "bilateral"}
_SNOMED = "http://snomed.info/sct"


def _concept_text(concept: object) -> str | None:
    """A CodeableConcept's text, else its first coding's display."""
    concept = _dict(concept)
    text = _clean(concept.get("text"))
    if text:
        return text
    for coding in _list(concept.get("coding")):
        display = _clean(_dict(coding).get("display"))
        if display:
            return display
    return None


def _snomed_word(concept: object, words: dict[str, str]) -> str | None:
    for coding in _list(_dict(concept).get("coding")):
        coding = _dict(coding)
        if coding.get("system") == _SNOMED and _text(coding.get("code")) in words:
            return words[_text(coding.get("code"))]
    return None


def _extension_concepts(element: object, suffix: str) -> list:
    return [_dict(ext).get("valueCodeableConcept") for ext in _list(_dict(element).get("extension"))
            if isinstance(_dict(ext).get("url"), str) and _dict(ext)["url"].endswith(suffix)]


def _condition_details(record: dict, resource: dict, context: _Context) -> None:
    """The details rules address by name (docs/fhir.md "Condition details"): ``stage`` (text) and
    ``stage_code`` from stage[0].summary; ``severity`` (mild, moderate, severe for the SNOMED codes,
    else the text) and ``severity_code``; ``body_site`` (codes) and ``laterality`` (left, right,
    bilateral: a SNOMED laterality code in bodySite or a bodySite laterality extension);
    ``histology`` (codes) from the mCODE histology-morphology-behavior extension."""
    stages = _list(resource.get("stage"))
    summary = _dict(stages[0]).get("summary") if stages else None
    if summary is not None:
        _put(record, "stage", _concept_text(summary))
        _put(record, "stage_code", _codes(summary, context.report) or None)
    severity = resource.get("severity")
    if severity is not None:
        _put(record, "severity", _snomed_word(severity, _SEVERITY) or _concept_text(severity))
        _put(record, "severity_code", _codes(severity, context.report) or None)
    sites, sides = [], set()
    for site in _list(resource.get("bodySite")):
        sites.extend(code for code in _codes(site, context.report) if code not in sites)
        side = _snomed_word(site, _LATERALITY)
        if side:
            sides.add(side)
        for concept in _extension_concepts(site, "laterality"):
            side = _snomed_word(concept, _LATERALITY) or (_concept_text(concept) or "").lower() or None
            if side:
                sides.add(side)
    _put(record, "body_site", sites or None)
    if len(sides) == 1:
        record["laterality"] = sides.pop()
    elif {"left", "right"} <= sides or "bilateral" in sides:
        record["laterality"] = "bilateral"
    histology = []
    for concept in _extension_concepts(resource, "histology-morphology-behavior"):
        histology.extend(code for code in _codes(concept, context.report) if code not in histology)
    _put(record, "histology", histology or None)


def _medication_request(entry: _Entry, context: _Context) -> list[dict]:
    """A prescription: start from authoredOn, end from dispenseRequest.validityPeriod.end."""
    resource, path = entry.resource, entry.path
    record = _medication_record(entry, context)
    if record is None:
        return []
    _put(record, "start", _date(resource.get("authoredOn"), f"{path}.authoredOn"))
    validity = _dict(_dict(resource.get("dispenseRequest")).get("validityPeriod"))
    _put(record, "end", _date(validity.get("end"), f"{path}.dispenseRequest.validityPeriod.end"))
    _put(record, "status", _text(resource.get("status")))
    _dosage(record, resource.get("dosageInstruction"), f"{path}.dosageInstruction")
    _investigational(record, resource, context)
    _reason(record, resource, context)
    return [record]


def _medication_statement(entry: _Entry, context: _Context) -> list[dict]:
    """A medication taken: start and end from effectivePeriod, or start from effectiveDateTime."""
    resource, path = entry.resource, entry.path
    record = _medication_record(entry, context)
    if record is None:
        return []
    period = _dict(resource.get("effectivePeriod"))
    _put(
        record,
        "start",
        _date(period.get("start"), f"{path}.effectivePeriod.start")
        or _date(resource.get("effectiveDateTime"), f"{path}.effectiveDateTime"),
    )
    _put(record, "end", _date(period.get("end"), f"{path}.effectivePeriod.end"))
    _put(record, "status", _text(resource.get("status")))
    _dosage(record, resource.get("dosage"), f"{path}.dosage")
    _investigational(record, resource, context)
    _reason(record, resource, context)
    return [record]


_PERIOD_UNITS = ("s", "min", "h", "d", "wk", "mo", "a")


def _reason(record: dict, resource: dict, context: _Context) -> None:
    """``reason`` (the indication: a list of codes) from reasonCode and the codes of the Conditions
    that reasonReference points to. A reason that cannot be read (text only, a reference that does
    not resolve in the bundle, or to something other than a Condition) is kept as its text, so that
    a test that it could satisfy is unknown rather than false."""
    reasons: list[str] = []
    for concept in _list(resource.get("reasonCode")):
        codes = _codes(concept, context.report)
        reasons.extend(codes or [_concept_text(concept) or "reason coded only as text"])
    for reference in _list(resource.get("reasonReference")):
        target = _dict(reference).get("reference")
        found = context.conditions.get(_without_history(target)) if isinstance(target, str) else None
        codes = _codes(found.get("code"), context.report) if found is not None else []
        reasons.extend(codes or [f"reason {target!r} not read"])
    if reasons:
        record["reason"] = list(dict.fromkeys(reasons))


def _investigational(record: dict, resource: dict, context: _Context) -> None:
    """``investigational`` from a boolean extension whose url ends in ``investigational`` (on the
    MedicationRequest/Statement, else on the Medication it references). FHIR R4 has no standard
    element for this, and most sources never say: without the extension the field stays absent
    (unknown), never false. Conflicting values on the record and the Medication are dropped."""
    values = set()
    medication = context.medication(resource) if "medicationReference" in resource else None
    for element in (resource, medication or {}):
        for ext in _list(_dict(element).get("extension")):
            ext = _dict(ext)
            url = ext.get("url")
            if isinstance(url, str) and url.lower().endswith("investigational") and isinstance(
                    ext.get("valueBoolean"), bool):
                values.add(ext["valueBoolean"])
    if len(values) == 1:
        record["investigational"] = values.pop()


def _dosage(record: dict, dosages: object, path: str) -> None:
    """``dose`` and ``frequency`` from the one Dosage of a medication record: doseAndRate[0].doseQuantity
    and timing.repeat (frequency, period, periodUnit; asNeeded). Several dosages (a taper, a split
    regimen), a dose range or a timing given only as a code are not read: the dose stays unrecorded,
    so a dose test is unknown."""
    dosages = _list(dosages)
    if len(dosages) != 1 or not isinstance(dosages[0], dict):
        return
    dosage = dosages[0]
    rates = _list(dosage.get("doseAndRate"))
    quantity = _dict(_dict(rates[0]).get("doseQuantity")) if len(rates) == 1 else {}
    if "value" not in quantity:
        return
    record["dose"] = {"value": _number(quantity["value"], f"{path}[0].doseAndRate[0].doseQuantity.value")}
    _put(record["dose"], "unit", _unit(quantity))
    repeat = _dict(_dict(dosage.get("timing")).get("repeat"))
    frequency = {}
    if dosage.get("asNeededBoolean") is True or "asNeededCodeableConcept" in dosage:
        frequency["as_needed"] = True
    count, period, unit = repeat.get("frequency"), repeat.get("period"), _text(repeat.get("periodUnit"))
    if isinstance(count, int) and not isinstance(count, bool) and 1 <= count <= MAX_POSITIVE_INT:
        frequency["frequency"] = count
    if period is not None:
        period = _number(period, f"{path}[0].timing.repeat.period")
        if period > 0:
            frequency["period"] = period
    if unit in _PERIOD_UNITS:
        frequency["period_unit"] = unit
    if frequency.get("as_needed") or ("period" in frequency and "period_unit" in frequency):
        record["frequency"] = frequency


def _medication_record(entry: _Entry, context: _Context) -> dict | None:
    """Code and display of the medicine, inline or via medicationReference (unreadable when unresolved)."""
    resource = entry.resource
    kind = resource["resourceType"]
    if "medicationCodeableConcept" in resource:
        concept = resource["medicationCodeableConcept"]
    else:
        medication = context.medication(resource)
        if medication is None:
            reference = _dict(resource.get("medicationReference"))
            target = reference.get("reference")
            reason = (f"medication reference {target!r} does not resolve in the bundle" if isinstance(target, str)
                      else "names no medication")
            label = f"{kind} with unresolved medication"
            context.report.unreadable[label] = context.report.unreadable.get(label, 0) + 1
            record = {"unreadable": reason, "fhir_path": entry.path}
            _put(record, "display", _clean(reference.get("display")))
            return record
        concept = medication.get("code")
    return _record(entry, concept, context)


def _procedure(entry: _Entry, context: _Context) -> list[dict]:
    """A procedure: date from performedDateTime or performedPeriod.start, end from performedPeriod.end."""
    resource, path = entry.resource, entry.path
    record = _record(entry, resource.get("code"), context)
    period = _dict(resource.get("performedPeriod"))
    _put(
        record,
        "date",
        _date(resource.get("performedDateTime"), f"{path}.performedDateTime")
        or _date(period.get("start"), f"{path}.performedPeriod.start"),
    )
    _put(record, "end", _date(period.get("end"), f"{path}.performedPeriod.end"))
    _put(record, "status", _text(resource.get("status")))
    return [record]


def _allergy(entry: _Entry, context: _Context) -> list[dict]:
    """An allergy or intolerance: code, clinical and verification status, onset, criticality, category."""
    resource, path = entry.resource, entry.path
    record = _verified_record(entry, context, "AllergyIntolerance")
    if record is None:
        return []
    _put(record, "status", _status_code(resource.get("clinicalStatus")))
    _put(
        record,
        "onset",
        _date(resource.get("onsetDateTime"), f"{path}.onsetDateTime")
        or _date(_dict(resource.get("onsetPeriod")).get("start"), f"{path}.onsetPeriod.start"),
    )
    _put(record, "criticality", _text(resource.get("criticality")))
    categories = [c for c in map(_text, _list(resource.get("category"))) if c]
    _put(record, "category", ", ".join(categories) or None)
    return [record]


def _immunization(entry: _Entry, context: _Context) -> list[dict]:
    """A vaccine given: vaccineCode (CVX, SNOMED), occurrenceDateTime, status; not-done ones are dropped."""
    resource, path = entry.resource, entry.path
    if resource.get("status") == "not-done":
        context.report.drop("Immunization not-done")
        return []
    record = _record(entry, resource.get("vaccineCode"), context)
    _put(record, "date", _date(resource.get("occurrenceDateTime"), f"{path}.occurrenceDateTime"))
    _put(record, "status", _text(resource.get("status")))
    return [record]


_CONVERTERS = {
    "Observation": ("observations", _observation),
    "Condition": ("conditions", _condition),
    "MedicationRequest": ("medications", _medication_request),
    "MedicationStatement": ("medications", _medication_statement),
    "Procedure": ("procedures", _procedure),
    "AllergyIntolerance": ("allergies", _allergy),
    "Immunization": ("immunizations", _immunization),
    "AdverseEvent": ("adverse_events", _adverse_event),  # merged into the conditions at the end
}
"""Resource type -> (patient JSON list it goes to, converter returning that list's records)."""


def _codes(concept: object, report: ConversionReport, prefer: str | None = None) -> list[str]:
    """``SYSTEM:CODE`` for each coding from a known system (``prefer``'s system first)."""
    codes = []
    for coding in _list(_dict(concept).get("coding")):
        coding = _dict(coding)
        system = SYSTEMS.get(_system(coding))
        code = _text(coding.get("code"))
        if system is None:
            report.drop("coding of an unknown system")
            continue
        if not code:
            report.drop("coding without a code")
            continue
        if f"{system}:{code}" not in codes:
            codes.append(f"{system}:{code}")
    if prefer:
        codes.sort(key=lambda code: not code.startswith(f"{prefer}:"))
    return codes


def _record(entry: _Entry, concept: object, context: _Context) -> dict:
    """The start of a record from its CodeableConcept; without a readable code, an unreadable record
    (kept, so that tests it could affect are unknown) with the reason and the resource's JSON path."""
    codes = _codes(concept, context.report)
    if codes:
        return _coded(codes, concept)
    kind = entry.resource["resourceType"]
    reason = _unreadable_reason(concept)
    context.report.unreadable[f"{kind} {reason.split(' (')[0]}"] = context.report.unreadable.get(
        f"{kind} {reason.split(' (')[0]}", 0) + 1
    record = {"unreadable": reason, "fhir_path": entry.path}
    concept = _dict(concept)
    candidates = [concept.get("text")] + [_dict(c).get("display") for c in _list(concept.get("coding"))]
    _put(record, "display", next((_clean(c) for c in candidates if _clean(c)), None))
    return record


def _unreadable_reason(concept: object) -> str:
    """Why a CodeableConcept gives no usable code: 'coded only as text', 'coded only in ICD-9-CM (174.9)'..."""
    concept = _dict(concept)
    codings = [_dict(c) for c in _list(concept.get("coding")) if _text(_dict(c).get("code"))]
    if not codings:
        return "coded only as text" if _clean(concept.get("text")) else "has no code"
    systems = []
    for coding in codings:
        system = _system(coding)
        name = UNREAD_SYSTEMS.get(system) or (f"{system}" if isinstance(system, str) else "no code system")
        shown = f"{name} {_text(coding.get('code'))}"
        if shown not in systems:
            systems.append(shown)
    return f"coded only in {', '.join(systems)} (a code system that is not read)"


def _coded(codes: list[str], concept: object) -> dict:
    """The start of a record: ``code``, ``codes`` and ``display`` (text or first coding display)."""
    concept = _dict(concept)
    candidates = [concept.get("text")] + [_dict(c).get("display") for c in _list(concept.get("coding"))]
    record = {"code": codes[0], "codes": codes}
    _put(record, "display", next((_clean(c) for c in candidates if _clean(c)), None))
    return record


def _status_code(concept: object) -> str | None:
    """The first coding code of a status CodeableConcept (clinicalStatus, verificationStatus)."""
    for coding in _list(_dict(concept).get("coding")):
        code = _text(_dict(coding).get("code"))
        if code:
            return code
    return None


def _unit(quantity: dict) -> str | None:
    """The UCUM code of a quantity when it has one, else its human-readable unit."""
    if quantity.get("system") == UCUM and _text(quantity.get("code")):
        return _text(quantity["code"])
    if quantity.get("system") is None and not _text(quantity.get("unit")):
        return _text(quantity.get("code"))  # a bare code is the only unit there is: read it (as UCUM)
    return _text(quantity.get("unit"))


def _date(value: object, path: str) -> str | None:
    """The date part (YYYY, YYYY-MM or YYYY-MM-DD) of a FHIR date, dateTime or instant."""
    if value is None:
        return None
    match = _DATE_TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise FhirError(f"not a FHIR date: {value!r}", path)
    year, month, day = match.groups()
    try:
        datetime.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise FhirError(f"not a valid date: {value!r}", path) from None
    return value[:10]


def _number(value: object, path: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FhirError(f"expected a number, not {value!r}", path)
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        raise FhirError("not a finite number (NaN, infinite, or too large)", path)
    return value


def _clean(value: object) -> str | None:
    """A display or text string without zero-width characters and surrounding whitespace."""
    if not isinstance(value, str):
        return None
    return value.translate(_ZERO_WIDTH).strip() or None


def _text(value: object) -> str | None:
    """A plain code string, trimmed; None when absent or not a string."""
    return (value.strip() or None) if isinstance(value, str) else None


def _put(record: dict, key: str, value: object) -> None:
    """Set ``record[key]`` unless the value is absent."""
    if value is not None:
        record[key] = value


def _system(coding: dict) -> str | None:
    """A coding's system URI; a system that is not a string (a list, an object) is no system."""
    system = coding.get("system")
    return system if isinstance(system, str) else None


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []
