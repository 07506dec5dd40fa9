"""FHIR bulk NDJSON ingestion (screening/population/fhir_ingest.py) against the per-patient FHIR reader.

The same bundles are read twice: as bundles, one patient at a time, by the per-patient reader
(fhir_to_patient + the Python loader), and as a bulk export (one ``<Type>.ndjson`` per resource type)
by DuckDB. Every row of every store table must be the same, and so must every verdict.
"""
from __future__ import annotations

import copy
import json
import random
import re
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("duckdb")

from screening import compile_text, patient_from_document  # noqa: E402
from screening.population import duckdb as popduck  # noqa: E402
from screening.population.fhir_ingest import (bundles_to_bulk, ingest_fhir_bulk, looks_like_bulk,  # noqa: E402
                                              tables_from_bulk)
from screening.population.loader import tables_from_documents  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea"
AS_OF = date(2026, 12, 1)

UCUM = "http://unitsofmeasure.org"
LOINC, SNOMED, RX = "http://loinc.org", "http://snomed.info/sct", "http://www.nlm.nih.gov/research/umls/rxnorm"


def _concept(system, code, display=None, text=None):
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    concept = {"coding": [coding]}
    if text is not None:
        concept["text"] = text
    return concept


def _status(code):
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": code}]}


def synthetic_bundles(n: int = 60, seed: int = 7) -> list[dict]:
    """Bundles exercising what the bulk reader must map as the per-patient reader does: statuses,
    verification, value[x] kinds, units (UCUM code, unit only, bare code), comparators, reference ranges,
    partial dates, unknown code systems, zero-width characters, components, dosage; and what it must hand
    to the Python reader (medicationReference, text-only codes, "no known" entries, Lists, AdverseEvents,
    valueRange, extensions)."""
    rng = random.Random(seed)
    bundles = []
    labs = [("1742-6", "ALT", "U/L"), ("2160-0", "Creatinine", "mg/dL"), ("718-7", "Hemoglobin", "g/dL"),
            ("4548-4", "HbA1c", "%"), ("777-3", "Platelets", "10*3/uL"), ("33914-3", "eGFR", "mL/min/{1.73_m2}")]
    dates = ["2025-03", "2024", "2026-11-20T10:00:00Z", "2026-06-01", "2019-02-28T23:59:59+02:00"]
    for i in range(n):
        pid = f"p{i:03d}"
        ref = {"reference": f"urn:uuid:{pid}"}
        entries = [{"fullUrl": f"urn:uuid:{pid}", "resource": {
            "resourceType": "Patient", "id": pid, "gender": rng.choice(["female", "male", "other", "unknown"]),
            "birthDate": rng.choice(["1950-04-02", "1980", "1975-09", "2001-12-31"]),
            **({"deceasedDateTime": "2026-01-05"} if i % 17 == 5 else {}),
            **({"deceasedBoolean": True} if i % 19 == 7 else {}),
            "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"}]}}]

        def add(resource):
            resource.setdefault("id", f"{pid}-{len(entries)}")
            entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
            return resource

        for k in range(rng.randint(0, 6)):
            code, name, unit = rng.choice(labs)
            value = rng.choice([rng.randint(1, 400), round(rng.uniform(0.1, 300), 2), 7.0])
            quantity = {"value": value}
            style = rng.randrange(4)
            if style == 0:
                quantity.update(system=UCUM, code=unit, unit=unit + " (as shown)")
            elif style == 1:
                quantity.update(unit="IU/L" if code == "1742-6" else unit)
            elif style == 2:
                quantity.update(code=unit)
            if rng.random() < 0.15:
                quantity["comparator"] = rng.choice(["<", "<=", ">", ">="])
            obs = {"resourceType": "Observation", "status": rng.choice(["final", "final", "amended", "cancelled",
                                                                         "entered-in-error", "preliminary"]),
                   "code": {"coding": [{"system": "http://example.org/local", "code": "X" + code},
                                       {"system": LOINC, "code": code, "display": name + "\u200b"}]},
                   "subject": ref, "valueQuantity": quantity}
            when = rng.choice(dates)
            obs[rng.choice(["effectiveDateTime", "issued"])] = when
            if rng.random() < 0.4:
                low, high = rng.choice([(10, 40), (0.5, 1.2), (None, 5.7)])
                obs["referenceRange"] = [{**({"low": {"value": low, "unit": unit}} if low is not None else {}),
                                          "high": {"value": high, "system": UCUM, "code": unit}}]
            add(obs)
        if rng.random() < 0.5:  # a panel with components (values only on the components)
            add({"resourceType": "Observation", "status": "final", "subject": ref,
                 "code": _concept(LOINC, "55284-4", "Blood pressure"), "effectivePeriod": {"start": "2026-10-02"},
                 "component": [{"code": _concept(LOINC, "8480-6", "Systolic"),
                                "valueQuantity": {"value": rng.randint(90, 180), "system": UCUM, "code": "mm[Hg]"}},
                               {"code": _concept(LOINC, "8462-4", "Diastolic"),
                                "valueQuantity": {"value": rng.randint(50, 110), "system": UCUM, "code": "mm[Hg]"}}]})
        if rng.random() < 0.4:  # coded, string and boolean answers
            add({"resourceType": "Observation", "status": "final", "subject": ref,
                 "code": _concept(LOINC, "89247-1", "ECOG"), "effectiveDateTime": "2026-09-09",
                 "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA9623-5", "display": "1"}]}})
            add({"resourceType": "Observation", "status": "final", "subject": ref,
                 "code": _concept(LOINC, "11881-2", "Pregnancy"), "valueString": rng.choice([" negative ", ""])})
            add({"resourceType": "Observation", "status": "final", "subject": ref,
                 "code": _concept(LOINC, "72166-2", "Smoker"), "valueBoolean": rng.random() < 0.5,
                 "effectiveDateTime": "2026"})
            add({"resourceType": "Observation", "status": "final", "subject": ref,
                 "code": _concept(LOINC, "8310-5", "Temp"), "valueInteger": 37})
        for k in range(rng.randint(0, 4)):
            code = rng.choice(["363406005", "44054006", "254637007", "38341003", "195967001"])
            condition = {"resourceType": "Condition", "subject": ref,
                         "code": _concept(SNOMED, code, "Condition " + code, text=rng.choice([None, "  "])),
                         "clinicalStatus": {"coding": [{"code": rng.choice(["active", "resolved", "remission"])}]},
                         "onsetDateTime": rng.choice(dates), "recordedDate": rng.choice(dates)}
            if rng.random() < 0.4:
                condition["verificationStatus"] = _status(rng.choice(["confirmed", "provisional", "refuted",
                                                                      "entered-in-error", "differential"]))
            if rng.random() < 0.2:
                condition["abatementPeriod"] = {"end": "2026-02"}
            if rng.random() < 0.1:
                condition["code"]["coding"].append({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C50.9"})
            add(condition)
        for k in range(rng.randint(0, 3)):
            request = {"resourceType": rng.choice(["MedicationRequest", "MedicationStatement"]), "subject": ref,
                       "status": rng.choice(["active", "completed", "stopped", "not-taken", "entered-in-error"]),
                       "medicationCodeableConcept": _concept(RX, rng.choice(["860975", "316672", "1049621"]),
                                                             "Drug"),
                       "authoredOn": rng.choice(dates), "effectivePeriod": {"start": rng.choice(dates)}}
            if rng.random() < 0.6:
                timing = {"repeat": {"frequency": rng.choice([1, 2, 3]), "period": rng.choice([1, 0.5, 12]),
                                     "periodUnit": rng.choice(["d", "h", "wk", "day"])}}
                dose = {"timing": timing, "doseAndRate": [{"doseQuantity": {
                    "value": rng.choice([5, 2.5, 500]), "unit": "mg", "system": UCUM, "code": "mg"}}]}
                if rng.random() < 0.2:
                    dose["asNeededBoolean"] = True
                request["dosageInstruction" if request["resourceType"] == "MedicationRequest" else "dosage"] = \
                    [dose] if rng.random() < 0.85 else [dose, dose]
            if rng.random() < 0.3:
                request["reasonCode"] = [_concept(SNOMED, "44054006"), {"text": "pain"}]
            add(request)
        for kind, concept_key, date_key in (("Procedure", "code", "performedDateTime"),
                                            ("Immunization", "vaccineCode", "occurrenceDateTime"),
                                            ("AllergyIntolerance", "code", "onsetDateTime")):
            if rng.random() < 0.5:
                resource = {"resourceType": kind, "subject" if kind != "Immunization" else "patient": ref,
                            concept_key: _concept(SNOMED if kind != "Immunization" else "http://hl7.org/fhir/sid/cvx",
                                                  str(rng.randint(100, 999)), f"{kind} thing"),
                            date_key: rng.choice(dates),
                            "status": rng.choice(["completed", "not-done", "entered-in-error", "in-progress"])}
                if kind == "AllergyIntolerance":
                    resource.pop("status")
                    resource.update(criticality="high", category=["food", " medication "],
                                    clinicalStatus={"coding": [{"code": "active"}]})
                if kind == "Procedure" and rng.random() < 0.5:
                    resource.pop(date_key)
                    resource["performedPeriod"] = {"start": "2025-01-01", "end": "2025-01-03"}
                add(resource)
        tricky = i % 10
        if tricky == 1:  # a medication given by reference: the Python reader resolves it
            med = add({"resourceType": "Medication", "code": _concept(RX, "1049621", "oxycodone")})
            add({"resourceType": "MedicationRequest", "status": "active", "subject": ref,
                 "medicationReference": {"reference": f"urn:uuid:{med['id']}"}, "authoredOn": "2026-05-01"})
        elif tricky == 2:  # a condition coded only as text: unreadable, kept
            add({"resourceType": "Condition", "subject": ref, "code": {"text": "breast ca"}})
        elif tricky == 3:  # a List saying no known allergies, and an unusual value[x]
            add({"resourceType": "List", "status": "current", "mode": "snapshot", "subject": ref,
                 "code": _concept(LOINC, "48765-2"), "emptyReason": {"coding": [{"code": "nilknown"}]}})
            add({"resourceType": "Observation", "status": "final", "subject": ref, "code": _concept(LOINC, "1742-6"),
                 "valueRange": {"low": {"value": 1}}})
        elif tricky == 4:  # an adverse event, and a condition with the dueTo extension
            add({"resourceType": "AdverseEvent", "actuality": "actual", "subject": ref,
                 "event": _concept(SNOMED, "62315008"), "date": "2026-03-03"})
            add({"resourceType": "Condition", "subject": ref, "code": _concept(SNOMED, "62315008"),
                 "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/condition-dueTo",
                                "valueCodeableConcept": _concept(RX, "860975")}]})
        elif tricky == 5 and i % 20 == 5:  # "no known allergies"
            add({"resourceType": "AllergyIntolerance", "patient": ref, "code": _concept(SNOMED, "716186003")})
        entries.append({"fullUrl": "urn:uuid:enc", "resource": {"resourceType": "Encounter", "id": f"{pid}-enc",
                                                                 "subject": ref, "status": "finished"}})
        bundles.append({"resourceType": "Bundle", "type": "collection", "entry": entries})
    return bundles


def _rows(tables: dict, name: str) -> list[str]:
    rows = tables[name].to_pylist()
    for row in rows:
        row.pop("source", None)
        if row.get("name") == "fhir_path":  # where the record is: a file:line in bulk, a bundle path otherwise
            row["value_string"] = row["value_json"] = "(where)"
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows)


def in_file_order(bundle: dict) -> dict:
    """The bundle with its entries in the order a bulk export holds them: by file (``<Type>.ndjson``,
    sorted by name), then line. Records keep that order (their ``seq``) in the store."""
    bundle = dict(bundle)
    bundle["entry"] = sorted(bundle["entry"], key=lambda e: e["resource"]["resourceType"] + ".ndjson")
    return bundle


def _check_same_store(bundles, folder: Path) -> tuple[dict, list]:
    bundles_to_bulk(copy.deepcopy(bundles), folder)
    errors: list = []
    got = tables_from_bulk(folder, errors.append)
    want = tables_from_documents([in_file_order(b) for b in bundles])
    for name in want:
        assert _rows(got, name) == _rows(want, name), f"table {name} differs"
    return got, errors


def _summary(folder: Path):
    import duckdb

    con = duckdb.connect()
    errors: list = []
    summary = ingest_fhir_bulk(con, folder, on_error=errors.append)
    return con, summary, errors


def test_synthetic_bundles_give_the_same_store_as_the_per_patient_reader(tmp_path):
    bundles = synthetic_bundles()
    got, errors = _check_same_store(bundles, tmp_path)
    assert errors == []
    assert got["patients"].num_rows == 60
    sources = set(got["patients"]["source"].to_pylist())
    assert all(s.startswith("Patient.ndjson:") for s in sources)
    # the records coded only as text keep the file:line of their resource, not a path into a made-up bundle
    paths = [r for r in got["record_fields"].to_pylist() if r["name"] == "fhir_path"]
    assert paths and all(r["value_string"].startswith("Condition.ndjson:") for r in paths)
    con, summary, _ = _summary(tmp_path)
    # both paths are exercised: SQL for most patients, the Python reader for those with what SQL does not map
    # exactly the patients given a medicationReference, a text-only code, a List, a valueRange, an
    # AdverseEvent, a condition-dueTo extension or a "no known allergies" entry
    assert summary.python_path == len([i for i in range(60) if i % 10 in (1, 2, 3, 4) or i % 20 == 5])
    assert summary.dropped.get("Encounter") == 60


def test_every_verdict_equals_the_per_patient_engine(tmp_path):
    from screening.population.sql import Unsupported, plan

    bundles = synthetic_bundles(40, seed=11)
    bundles_to_bulk(copy.deepcopy(bundles), tmp_path)
    con, summary, errors = _summary(tmp_path)
    assert errors == []
    popduck.build_dictionaries(con)
    patients = [patient_from_document(in_file_order(b), "bundle.json") for b in bundles]
    checked = 0
    for path in sorted((ROOT / "trials").glob("*.crit")):
        trial = compile_text(path.read_text(encoding="utf-8"), str(path))
        try:
            plan(trial.checked, AS_OF)
        except Unsupported:
            continue
        rows = {r["patient_id"]: r for r in popduck.screen_trial(con, trial.checked, AS_OF, shared_ready=True).to_pylist()}
        for patient in patients:
            result = trial.screen(patient, AS_OF)
            row = rows[patient.id]
            assert (row["decision"], row["decision_reason"]) == (result.decision, result.decision_reason), patient.id
            for c in result.criteria:
                assert row[f"{c.id}__verdict"] == c.verdict, (patient.id, c.id)
                assert _where(row[f"{c.id}__missing"]) == _where(set(c.missing)), (patient.id, c.id)
                checked += 1
    assert checked > 100


def _where(items) -> list[str]:
    # an unreadable record's location: the SQL engine names its place in the list ($.conditions[0]), the
    # per-patient engine its fhir_path (a bundle path, or the file:line of a bulk resource)
    return sorted(re.sub(r"\((\$\.[a-z_]+\[\d+\]|\$\.entry\[\d+\]\.resource|\w+\.ndjson:\d+)\)", "(where)", item)
                  for item in items)


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason="shared Synthea data not available")
def test_synthea_bundles_give_the_same_store_as_the_per_patient_reader(tmp_path):
    bundles = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(SYNTHEA.glob("*.json"))]
    got, errors = _check_same_store(bundles, tmp_path)
    assert errors == []
    assert got["patients"].num_rows == len(bundles)
    assert got["observations"].num_rows > 4000


def _write(folder: Path, name: str, resources) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / name).open("a", encoding="utf-8") as stream:
        for resource in resources:
            stream.write((resource if isinstance(resource, str) else json.dumps(resource)) + "\n")


def test_bad_lines_and_strangers_are_reported_and_skipped(tmp_path):
    ref = {"reference": "Patient/a"}
    _write(tmp_path, "Patient.ndjson", [{"resourceType": "Patient", "id": "a", "birthDate": "1970"},
                                        {"resourceType": "Patient", "id": "b"},
                                        {"resourceType": "Patient", "id": "a"}])
    _write(tmp_path, "Observation.ndjson", [
        {"resourceType": "Observation", "status": "final", "subject": ref, "code": _concept(LOINC, "718-7"),
         "valueQuantity": {"value": 13, "unit": "g/dL"}},
        {"resourceType": "Observation", "status": "final", "subject": {"reference": "Patient/zz"},
         "code": _concept(LOINC, "718-7"), "valueQuantity": {"value": 13, "unit": "g/dL"}},
        '{"resourceType": "Observation", "subject": {"reference": "Patient/b"}, "valueQuantity": {"value": 1',
        {"resourceType": "Observation", "status": "final", "code": _concept(LOINC, "718-7"),
         "valueQuantity": {"value": 13, "unit": "g/dL"}}])
    _write(tmp_path, "Condition.ndjson", [
        {"resourceType": "Condition", "subject": ref, "code": _concept(SNOMED, "254637007"),
         "onsetDateTime": "2017-02-30T10:00:00Z"}])
    con, summary, errors = _summary(tmp_path)
    by_input = {e["input"]: e["error"] for e in errors}
    assert "duplicate patient id 'a'" in by_input["Patient.ndjson:3"]
    assert "Patient/zz, which is not among the input's Patient resources" in by_input["Observation.ndjson:2"]
    assert "not valid JSON" in by_input["Observation.ndjson:3"]
    assert "names no patient" in by_input["Observation.ndjson:4"]
    # the per-patient reader's own message, at the resource's file:line: patient a is not screened
    assert by_input["Condition.ndjson:1"].startswith("$.onsetDateTime: not a valid date: '2017-02-30T10:00:00Z'")
    # a line that cannot be read but names its patient: that patient is not screened without it
    assert by_input["Patient.ndjson:2"] == ("$: patient 'b' is not screened: its resource at Observation.ndjson:3 "
                                            "could not be read")
    assert con.execute("SELECT count(*) FROM patients").fetchall() == [(0,)]
    assert summary.bad == 6


def test_a_resource_line_that_is_not_utf8_keeps_its_patient_from_being_screened_without_it(tmp_path):
    _write(tmp_path, "Patient.ndjson", [{"resourceType": "Patient", "id": "p1", "birthDate": "1990-04-02"},
                                        {"resourceType": "Patient", "id": "p2", "birthDate": "1990-04-02"}])
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
                 "code": _concept(SNOMED, "254637007", text="Brust\u00fc")}
    with (tmp_path / "Condition.ndjson").open("wb") as stream:  # a Latin-1 byte where UTF-8 was due
        stream.write(json.dumps(condition, ensure_ascii=False).encode("latin-1") + b"\n")
    con, summary, errors = _summary(tmp_path)
    by_input = {e["input"]: e["error"] for e in errors}
    assert by_input["Condition.ndjson:1"].endswith("not UTF-8 text")
    assert by_input["Patient.ndjson:1"] == ("$: patient 'p1' is not screened: its resource at Condition.ndjson:1 "
                                            "could not be read")
    assert con.execute("SELECT patient_id FROM patients").fetchall() == [("p2",)]


def test_input_detection(tmp_path):
    _write(tmp_path / "bulk", "Patient.ndjson", [{"resourceType": "Patient", "id": "a"}])
    _write(tmp_path, "mixed.ndjson", [{"resourceType": "Patient", "id": "a"},
                                      {"resourceType": "Condition", "subject": {"reference": "Patient/a"}}])
    _write(tmp_path, "patients.ndjson", [{"id": "a", "conditions": []}])
    _write(tmp_path, "bundles.ndjson", [{"resourceType": "Bundle", "entry": []}])
    assert looks_like_bulk(tmp_path / "bulk")
    assert looks_like_bulk(tmp_path / "mixed.ndjson")
    assert not looks_like_bulk(tmp_path / "patients.ndjson")
    assert not looks_like_bulk(tmp_path / "bundles.ndjson")


def test_batch_reads_a_bulk_export_folder(tmp_path):
    from cli_helpers import run

    bundles = synthetic_bundles(12, seed=3)
    bundles_to_bulk(copy.deepcopy(bundles), tmp_path / "export")
    proc = run("batch", ROOT / "trials" / "NCT00659217.crit", "--patients", "export", "--out", "out",
               "--engine", "duckdb", "--as-of", AS_OF.isoformat(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "errors.jsonl").read_text() == ""
    results = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(results) == 12
    trial = compile_text((ROOT / "trials" / "NCT00659217.crit").read_text(encoding="utf-8"), "t.crit")
    expected = {b["entry"][0]["resource"]["id"]: trial.screen(patient_from_document(b, "b.json"), AS_OF).decision
                for b in bundles}
    assert {r["patient"]: r["decision"] for r in results} == expected
    assert all(r["input"].startswith("Patient.ndjson:") for r in results)


def _edge_cases() -> list[list[dict]]:
    """One patient's resources each: spellings at the edge of what SQL maps (each either mapped by SQL as
    the reader maps it, or handed to the reader)."""
    q = {"system": UCUM, "code": "mg/dL"}
    obs = {"resourceType": "Observation", "status": "final", "code": _concept(LOINC, "2160-0")}
    cases = [
        [{**obs, "valueQuantity": {"value": None, **q}}],                      # no value: dropped
        [{**obs, "valueQuantity": {"value": 1.0, **q, "comparator": "ad"}}],  # 'ad': a text value (reader)
        [{**obs, "valueQuantity": {"value": 1, **q, "comparator": "~"}}],     # an unknown comparator: refused
        [{**obs, "valueQuantity": {"value": "1.2", **q}}],                    # a string number: refused
        [{**obs, "valueInteger": None}],                                      # refused by the reader
        [{**obs, "valueQuantity": {"value": 1e-7, "unit": " mg/dL "}}],       # unit trimmed
        [{**obs, "valueQuantity": {"value": 2, "unit": "\u00a0mg/dL\u2003\t\x1c\u2028"}}],  # as str.strip trims
        [{**obs, "valueQuantity": {"value": 12345678901234567890123, **q}}],  # a 23-digit integer
        [{**obs, "valueString": "\u200b \u00a0"}],                            # blank after cleaning: no value
        [{**obs, "valueString": "\u2003positive\u200b\n"}],                    # cleaned as str.strip does
        [{**obs, "valueCodeableConcept": {"coding": [{"system": SNOMED, "code": " 260385009 "}]}}],
        [{**obs, "valueBoolean": "yes"}],                                     # not a boolean: no value
        [{**obs, "valueQuantity": {"value": 3, **q}, "referenceRange": [{"high": {"value": 1.2}},
                                                                          {"low": {"value": 9}}]}],
        [{**obs, "valueQuantity": {"value": 3, **q}, "referenceRange": [{"low": {"value": "x"}}]}],  # refused
        [{**obs, "component": ["x", {"code": _concept(LOINC, "8480-6"), "valueInteger": 120}]}],
        [{**obs, "code": {"coding": [{"system": ["http://loinc.org"], "code": "1"}]}, "valueInteger": 1}],
        [{**obs, "effectiveDateTime": "2019-02-30", "valueInteger": 1}],     # refused
        [{**obs, "effectiveDateTime": "2019-02-28T25:00:00Z", "valueInteger": 1}],  # not a FHIR date: refused
        [{**obs, "status": "cancelled", "effectiveDateTime": "bad", "valueInteger": 1}],  # dropped before dates
        [{"resourceType": "Condition", "code": _concept(SNOMED, "254637007"), "verificationStatus": _status(" refuted ")}],
        [{"resourceType": "Condition", "code": _concept(SNOMED, "254637007"), "clinicalStatus": {"coding": [{"code": ""}, {"code": "active"}]}}],
        [{"resourceType": "Condition", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "174.9"}]}}],
        [{"resourceType": "Condition", "status": "entered-in-error", "code": _concept(SNOMED, "1")}],
        [{"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": _concept(RX, "1"),
          "dosage": [{"doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg"}}],
                      "timing": {"repeat": {"frequency": 2.0, "period": None, "periodUnit": " d "}}}]}],
        [{"resourceType": "MedicationStatement", "status": "active", "medicationCodeableConcept": _concept(RX, "1"),
          "dosage": [{"doseAndRate": [{"doseQuantity": {"value": None}}]}]}],  # refused
        [{"resourceType": "MedicationRequest", "status": "active", "medicationCodeableConcept": _concept(RX, "1"),
          "dosageInstruction": [{"asNeededCodeableConcept": None, "doseAndRate": [{"doseQuantity": {"value": 1}}],
                                 "timing": {"repeat": {"frequency": True, "period": 0, "periodUnit": "h"}}}]}],
        [{"resourceType": "MedicationRequest", "status": "active", "medicationCodeableConcept": _concept(RX, "1"),
          "reasonReference": [{"reference": "Condition/c1"}, {"reference": "Condition/nope"}, {"display": "x"}]},
         {"resourceType": "Condition", "id": "c1", "code": _concept(SNOMED, "44054006")}],
        [{"resourceType": "MedicationRequest", "status": None, "medicationCodeableConcept": None}],
        [{"resourceType": "Immunization", "status": "not-done", "vaccineCode": _concept("http://hl7.org/fhir/sid/cvx", "140")}],
        [{"resourceType": "AllergyIntolerance", "code": _concept(SNOMED, "409137002")}],  # no known drug allergy
        [{"resourceType": "Procedure", "status": 3, "code": _concept(SNOMED, "1")}],
    ]
    return cases


def test_edge_cases_are_mapped_or_refused_as_the_per_patient_reader_does(tmp_path):
    from screening.errors import DataError

    differences = []
    for n, resources in enumerate(_edge_cases()):
        pid = f"e{n}"
        entries = [{"resource": {"resourceType": "Patient", "id": pid, "birthDate": "1970"}}]
        for resource in resources:
            resource = {**copy.deepcopy(resource), "subject": {"reference": f"Patient/{pid}"}}
            entries.append({"resource": resource})
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        folder = tmp_path / pid
        bundles_to_bulk([copy.deepcopy(bundle)], folder)
        errors: list = []
        got = tables_from_bulk(folder, errors.append)
        try:
            want = tables_from_documents([in_file_order(bundle)])
        except DataError as exc:
            refused = " ".join(f"{p.path}: {p.message}" for p in exc.problems)
            if got["patients"].num_rows or len(errors) != 1 or exc.problems[0].message not in errors[0]["error"]:
                differences.append(f"case {n}: the reader refuses ({refused}); bulk gave {errors}")
            continue
        if errors:
            differences.append(f"case {n}: the reader accepts; bulk refused {errors}")
            continue
        for name in want:
            if _rows(got, name) != _rows(want, name):
                differences.append(f"case {n}: table {name}: {_rows(got, name)} != {_rows(want, name)}")
    assert not differences, "\n".join(differences)


def test_a_bulk_export_screened_in_slices_gives_the_files_of_one_screened_whole(tmp_path):
    """Sliced, the run drops what the FHIR reader left in memory (its lines, structs ...) once the store's files
    are written, and screens each slice from them: the same files as one unsliced run."""
    import io

    from rich.console import Console

    from screening.population import run as popruns

    bundles_to_bulk(copy.deepcopy(synthetic_bundles(40, seed=11)), tmp_path / "export")
    left = {}
    original = popruns.ColumnarRun.screen_trials

    def screen_trials(self):
        left[self.out_dir.name] = sorted(r[0] for r in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall())
        original(self)

    popruns.ColumnarRun.screen_trials = screen_trials
    try:
        for name, size in (("whole", None), ("sliced", 6)):
            sink = Console(file=io.StringIO())
            run = popruns.ColumnarRun([ROOT / "trials" / "NCT00659217.crit"], tmp_path / "export", tmp_path / name,
                                      AS_OF, engine="duckdb", resume=True, explain=None, out=sink, err=sink,
                                      slice_patients=size)
            assert run.execute() == 0
    finally:
        popruns.ColumnarRun.screen_trials = original
    for output in ("results.jsonl", "summary.csv"):
        assert (tmp_path / "sliced" / output).read_bytes() == (tmp_path / "whole" / output).read_bytes()
    assert len(json.loads((tmp_path / "sliced" / "progress.json").read_text())["slices"]) == 6
    assert left["whole"] and left["sliced"] == []
