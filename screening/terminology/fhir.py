"""FHIR R4 CodeSystem and ValueSet resources, as single files or in Bundles (as VSAC and eCQM
value sets travel).

* **CodeSystem**: concepts with their display; the hierarchy from nesting (``concept.concept``)
  and from the ``parent`` (or ``subsumedBy``) property; a concept is inactive when its
  ``inactive`` property is true or its ``status`` property is retired/inactive/deprecated. The
  system is the criteria language's short name for the well-known URLs (``http://snomed.info/sct``
  -> SNOMED ...), else the CodeSystem's canonical URL.
* **ValueSet**: when it carries an ``expansion``, its ``contains`` (nested too; abstract entries
  skipped) is taken as published: that is what VSAC computed against its terminology versions.
  Otherwise its ``compose``: ``include``/``exclude`` with a concept list, one ``is-a`` /
  ``descendent-of`` / ``=`` filter on ``concept``, a whole system, or other value sets. A compose
  is stored as rules and resolved against the store when the value set is expanded, so the order
  in which SNOMED CT and the value sets are loaded does not matter.

Each resource is its own source (``CodeSystem <url>``, ``ValueSet <url>``): loading a newer
version of a value set replaces the older one.
"""
from __future__ import annotations

import json
from pathlib import Path

from .errors import LoadError
from .progress import SILENT, Progress
from .store import SourceData, ValueSetDef, normalise

SYSTEMS = {
    "http://snomed.info/sct": "SNOMED",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM",
    "http://loinc.org": "LOINC",
    "http://hl7.org/fhir/sid/icd-10": "ICD10",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD10",
    "http://www.whocc.no/atc": "ATC",
    "http://www.ama-assn.org/go/cpt": "CPT",
    "urn:screening:local": "LOCAL",
}
FILTER_OPS = {"is-a": "<<", "descendent-of": "<", "descendant-of": "<", "=": "="}
INACTIVE_STATUS = {"retired", "inactive", "deprecated"}


def system_name(url: str) -> str:
    return SYSTEMS.get(url, url)


def is_fhir_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".json"


def load_fhir(path: Path, progress: Progress = SILENT) -> list[SourceData]:
    """Every CodeSystem and ValueSet of a JSON file (a resource or a Bundle of them)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(name, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise LoadError(name, "not UTF-8 text") from None
    progress.start(f"reading {path.name}", len(text))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(name, f"not JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    progress.advance(len(text))
    progress.done()
    if not isinstance(document, dict):
        raise LoadError(name, "expected a FHIR resource (a JSON object)", path="$")
    kind = document.get("resourceType")
    if kind == "Bundle":
        found: list[SourceData] = []
        skipped: dict[str, int] = {}
        entries = document.get("entry") or []
        if not isinstance(entries, list):
            raise LoadError(name, "expected a list", path="$.entry")
        for i, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            where = f"$.entry[{i}].resource"
            if not isinstance(resource, dict):
                raise LoadError(name, "missing or not an object", path=where)
            rtype = resource.get("resourceType")
            if rtype in ("CodeSystem", "ValueSet"):
                found.append(_resource(resource, name, where))
            else:
                skipped[str(rtype)] = skipped.get(str(rtype), 0) + 1
        if not found:
            raise LoadError(name, "a Bundle without CodeSystem or ValueSet resources", path="$.entry")
        if skipped:
            found[0].warnings.append(f"{name}: skipped " + ", ".join(f"{n} {t}" for t, n in sorted(skipped.items())))
        return found
    if kind in ("CodeSystem", "ValueSet"):
        return [_resource(document, name, "$")]
    raise LoadError(name, f"resourceType {kind!r}: expected CodeSystem, ValueSet or a Bundle of them",
                    path="$.resourceType")


def _text(resource: dict, key: str, file: str, where: str, required: bool = False) -> str | None:
    value = resource.get(key)
    if value is None:
        if required:
            raise LoadError(file, "missing", path=f"{where}.{key}")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise LoadError(file, "expected a non-empty string", path=f"{where}.{key}")
    return value


def _list(resource: dict, key: str, file: str, where: str) -> list:
    value = resource.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise LoadError(file, "expected a list", path=f"{where}.{key}")
    return value


def _resource(resource: dict, file: str, where: str) -> SourceData:
    url = _text(resource, "url", file, where, required=True)
    version = _text(resource, "version", file, where)
    day = _text(resource, "date", file, where)
    kind = resource["resourceType"]
    data = SourceData(name=f"{kind} {url}", kind=f"fhir-{kind.lower()}", version=version,
                      effective=day[:10] if day else None, path=str(Path(file).resolve()))
    title = resource.get("title") or resource.get("name")
    if title:
        data.details["title"] = title
    if kind == "CodeSystem":
        _codesystem(resource, url, file, where, data)
    else:
        _valueset(resource, url, file, where, data)
    return data


def _codesystem(resource: dict, url: str, file: str, where: str, data: SourceData) -> None:
    system = system_name(url)
    seen: set[str] = set()
    parents_by_property: list[tuple[str, str, str]] = []
    work = [(c, f"{where}.concept[{i}]", None) for i, c in enumerate(_list(resource, "concept", file, where))]
    while work:
        concept, at, parent = work.pop(0)
        if not isinstance(concept, dict):
            raise LoadError(file, "expected an object", path=at)
        code = normalise(system, _text(concept, "code", file, at, required=True))
        active = 1
        for j, prop in enumerate(_list(concept, "property", file, at)):
            if not isinstance(prop, dict):
                raise LoadError(file, "expected an object", path=f"{at}.property[{j}]")
            pcode = prop.get("code")
            if pcode in ("parent", "subsumedBy"):
                value = prop.get("valueCode") or prop.get("valueString")
                if not isinstance(value, str) or not value:
                    raise LoadError(file, "a parent property needs valueCode", path=f"{at}.property[{j}]")
                parents_by_property.append((code, normalise(system, value), f"{at}.property[{j}]"))
            elif pcode == "inactive" and prop.get("valueBoolean") is True:
                active = 0
            elif pcode == "status" and str(prop.get("valueCode", "")).lower() in INACTIVE_STATUS:
                active = 0
        if code not in seen:
            data.concepts.append((system, code, concept.get("display"), active, None))
            seen.add(code)
        if parent is not None:
            data.edges.append((system, code, parent))
        work.extend((c, f"{at}.concept[{k}]", code) for k, c in enumerate(_list(concept, "concept", file, at)))
    for child, parent, at in parents_by_property:
        if parent not in seen:
            data.warnings.append(f"{file}: {at}: parent {parent} is not a concept of {url}")
        data.edges.append((system, child, parent))
    data.edges = sorted(set(data.edges))


def _valueset(resource: dict, url: str, file: str, where: str, data: SourceData) -> None:
    rules: list[tuple[int, str, str | None, str | None]] = []
    expansion = resource.get("expansion")
    if isinstance(expansion, dict) and expansion.get("contains") is not None:
        work = [(c, f"{where}.expansion.contains[{i}]") for i, c in enumerate(_list(expansion, "contains", file,
                                                                                       f"{where}.expansion"))]
        while work:
            entry, at = work.pop(0)
            if not isinstance(entry, dict):
                raise LoadError(file, "expected an object", path=at)
            if entry.get("code") is not None and not entry.get("abstract"):
                system = system_name(_text(entry, "system", file, at, required=True))
                rules.append((1, "=", system, normalise(system, _text(entry, "code", file, at, required=True))))
            work.extend((c, f"{at}.contains[{k}]") for k, c in enumerate(_list(entry, "contains", file, at)))
        data.details["from"] = "expansion"
    else:
        compose = resource.get("compose")
        if not isinstance(compose, dict):
            raise LoadError(file, "a ValueSet needs expansion.contains or compose", path=where)
        for flag, key in ((1, "include"), (0, "exclude")):
            for i, part in enumerate(_list(compose, key, file, f"{where}.compose")):
                rules.extend(_compose_part(part, flag, file, f"{where}.compose.{key}[{i}]"))
        data.details["from"] = "compose"
    data.valuesets.append(ValueSetDef(url, data.version, resource.get("name"), resource.get("title"), rules))
    data.details["rules"] = len(rules)


def _compose_part(part, flag: int, file: str, at: str) -> list[tuple[int, str, str | None, str | None]]:
    if not isinstance(part, dict):
        raise LoadError(file, "expected an object", path=at)
    rules: list[tuple[int, str, str | None, str | None]] = []
    for k, ref in enumerate(_list(part, "valueSet", file, at)):
        if not isinstance(ref, str) or not ref:
            raise LoadError(file, "expected a canonical URL", path=f"{at}.valueSet[{k}]")
        rules.append((flag, "valueset", None, ref.split("|", 1)[0]))
    url = _text(part, "system", file, at)
    concepts = _list(part, "concept", file, at)
    filters = _list(part, "filter", file, at)
    if url is None:
        if concepts or filters:
            raise LoadError(file, "concepts or filters need a system", path=f"{at}.system")
        if not rules:
            raise LoadError(file, "an include needs a system or a valueSet", path=at)
        return rules
    if rules:
        raise LoadError(file, "a system together with valueSet (their intersection) is not supported", path=at)
    system = system_name(url)
    if concepts and filters:
        raise LoadError(file, "a concept list together with a filter is not supported", path=at)
    for k, concept in enumerate(concepts):
        if not isinstance(concept, dict):
            raise LoadError(file, "expected an object", path=f"{at}.concept[{k}]")
        rules.append((flag, "=", system, normalise(system, _text(concept, "code", file, f"{at}.concept[{k}]",
                                                                 required=True))))
    if len(filters) > 1:
        raise LoadError(file, "more than one filter in an include (their intersection) is not supported",
                        path=f"{at}.filter")
    for k, filt in enumerate(filters):
        fat = f"{at}.filter[{k}]"
        if not isinstance(filt, dict):
            raise LoadError(file, "expected an object", path=fat)
        op = filt.get("op")
        if filt.get("property") != "concept" or op not in FILTER_OPS:
            raise LoadError(file, f"filter {filt.get('property')!r} {op!r} is not supported "
                                  "(supported: concept is-a, descendent-of, =)", path=fat)
        value = _text(filt, "value", file, fat, required=True)
        rules.append((flag, FILTER_OPS[op], system, normalise(system, value)))
    if not concepts and not filters:
        rules.append((flag, "*", system, None))
    return rules
