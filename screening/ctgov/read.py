"""The record reader: an API v2 JSON study or a legacy XML record -> :class:`StudyRecord`."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, DataProblem, UsageError


@dataclass(frozen=True)
class StudyRecord:
    """The parts of a registry record the importer uses.

    ``sex`` is ``"ALL"``, ``"FEMALE"``, ``"MALE"`` or None; ages are as the registry writes them
    (``"18 Years"``, ``"6 Months"``, ``"N/A"``) or None.
    """

    nct_id: str
    title: str | None
    criteria: str
    sex: str | None = None
    minimum_age: str | None = None
    maximum_age: str | None = None
    healthy_volunteers: bool | None = None
    source: str = "<record>"
    sex_note: str | None = None


def read_record(path: str | Path) -> StudyRecord:
    """Read a registry file (API v2 JSON study or legacy XML record) into a :class:`StudyRecord`.

    Raises :class:`UsageError` for a file that cannot be read or is neither JSON nor XML, and
    :class:`DataError` (naming the JSON path or XML element) when the eligibility text is missing.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such registry file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read registry file: {exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a ClinicalTrials.gov record (the file is not UTF-8 text)") from None
    return parse_document(text, str(path))


def parse_document(text: str, name: str) -> StudyRecord:
    """Parse the text of a registry record; ``name`` is used in messages (usually the file name).

    Besides the two registry formats, a JSON object ``{"nctid": ..., "criteria": ...}`` (one row
    of a criteria sample file, criteria in the legacy text-block layout) is accepted.
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{name}: not a ClinicalTrials.gov record: invalid JSON ({exc})") from None
        return _record_from_json(data, name)
    if stripped.startswith("<"):
        try:
            root = ElementTree.fromstring(text)
        except ElementTree.ParseError as exc:
            raise UsageError(f"{name}: not a ClinicalTrials.gov record: invalid XML ({exc})") from None
        return _record_from_xml(root, name)
    raise UsageError(f"{name}: not a ClinicalTrials.gov record: expected an API v2 JSON study or a legacy XML record")


def _missing(name: str, path: str, message: str) -> DataError:
    return DataError(name, [DataProblem(path, message, code="ctgov")])


def _record_from_json(data, name: str) -> StudyRecord:
    if isinstance(data, dict) and isinstance(data.get("studies"), list) and len(data["studies"]) == 1:
        data = data["studies"][0]
    if not isinstance(data, dict):
        raise _missing(name, "$", "expected a JSON object (one API v2 study)")
    if "protocolSection" not in data and isinstance(data.get("criteria"), str):
        nct = str(data.get("nctid") or data.get("nct_id") or Path(name).stem)
        return StudyRecord(nct_id=nct, title=data.get("title"), criteria=data["criteria"], source=name)
    protocol = data.get("protocolSection")
    if not isinstance(protocol, dict):
        raise _missing(name, "$.protocolSection", "missing: not an API v2 study (no protocolSection)")
    ident = protocol.get("identificationModule") or {}
    eligibility = protocol.get("eligibilityModule")
    if not isinstance(eligibility, dict):
        raise _missing(name, "$.protocolSection.eligibilityModule", "missing: the record has no eligibility section")
    criteria = eligibility.get("eligibilityCriteria")
    if not isinstance(criteria, str) or not criteria.strip():
        raise _missing(name, "$.protocolSection.eligibilityModule.eligibilityCriteria",
                       "missing or empty: the record has no eligibility criteria text")
    nct = ident.get("nctId") or Path(name).stem
    healthy = eligibility.get("healthyVolunteers")
    sex_note = eligibility.get("genderDescription") if eligibility.get("genderBased") else None
    return StudyRecord(
        nct_id=str(nct), title=ident.get("briefTitle") or ident.get("officialTitle"),
        criteria=_unescape_markdown(criteria), sex=_sex_word(eligibility.get("sex")),
        minimum_age=eligibility.get("minimumAge"), maximum_age=eligibility.get("maximumAge"),
        healthy_volunteers=healthy if isinstance(healthy, bool) else None, source=name, sex_note=sex_note,
    )


def _record_from_xml(root: ElementTree.Element, name: str) -> StudyRecord:
    if root.tag != "clinical_study":
        raise _missing(name, f"<{root.tag}>",
                       "not a ClinicalTrials.gov record (the root element is not <clinical_study>)")
    textblock = root.find("eligibility/criteria/textblock")
    if root.find("eligibility") is None:
        raise _missing(name, "<clinical_study>/<eligibility>", "missing: the record has no eligibility section")
    if textblock is None or not (textblock.text or "").strip():
        raise _missing(name, "<eligibility>/<criteria>/<textblock>",
                       "missing or empty: the record has no criteria text")

    def text_of(tag: str) -> str | None:
        element = root.find(tag)
        return element.text.strip() if element is not None and element.text and element.text.strip() else None

    healthy = text_of("eligibility/healthy_volunteers")
    return StudyRecord(
        nct_id=text_of("id_info/nct_id") or Path(name).stem,
        title=text_of("brief_title") or text_of("official_title"),
        criteria=textblock.text, sex=_sex_word(text_of("eligibility/gender")),
        minimum_age=text_of("eligibility/minimum_age"), maximum_age=text_of("eligibility/maximum_age"),
        healthy_volunteers=None if healthy is None else healthy.lower().startswith(("yes", "accepts")),
        source=name, sex_note=text_of("eligibility/gender_description"),
    )


def _sex_word(value) -> str | None:
    if not isinstance(value, str):
        return None
    word = value.strip().upper()
    return {"ALL": "ALL", "BOTH": "ALL", "FEMALE": "FEMALE", "MALE": "MALE"}.get(word)


def _unescape_markdown(text: str) -> str:
    """API v2 text is Markdown: ``\\>`` ``\\<`` ``\\*`` ... stand for the plain characters."""
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!<>=~|^])", r"\1", text)
