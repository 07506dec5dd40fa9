"""The CDS Hooks service and JSON API (screening/service/), in-process through Starlette's test client."""
from __future__ import annotations

import json
import re
import warnings
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's notice about httpx versions
    from fastapi.testclient import TestClient

from screening import load_patient
from screening.compile import compile_trial
from screening.errors import SourceError
from screening.service import Settings, create_app
from screening.service.cards import card_for, fit, md
from screening.service.reports import ReportCache

from cli_helpers import run

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "tests" / "data" / "service" / "trials"
AS_OF = date(2026, 11, 25)
HOOK = "/cds-services/screening-patient-view"


# ---------------------------------------------------------------- FHIR builders
def patient(pid: str = "pat1", birth: str = "1980-05-01", **extra) -> dict:
    resource = {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": "female",
                "name": [{"use": "official", "family": "Doe", "given": ["Jane"]}],
                "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                     "code": "MR"}]}, "value": "12345"}]}
    resource.update(extra)
    return resource


def alt(value: float, when: str = "2026-11-01", high: float = 40, pid: str = "pat1") -> dict:
    return {"resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6", "display": "ALT"}]},
            "valueQuantity": {"value": value, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"},
            "referenceRange": [{"low": {"value": 7, "unit": "U/L"}, "high": {"value": high, "unit": "U/L"}}],
            "effectiveDateTime": when}


def condition(code: str, onset: str = "2015-03-01", pid: str = "pat1") -> dict:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{pid}"},
            "clinicalStatus": {"coding": [{"code": "resolved"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]}, "onsetDateTime": onset}


def searchset(*resources: dict, **extra) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources], **extra}


def hook(prefetch: dict | None, pid: str = "pat1", hook_name: str = "patient-view") -> dict:
    body = {"hook": hook_name, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"patientId": pid, "userId": "Practitioner/1"}}
    if prefetch is not None:
        body["prefetch"] = prefetch
    return body


def full(**changes) -> dict:
    """A complete prefetch of an eligible patient; ``changes`` replace keys (None: send null, ... : drop)."""
    prefetch = {"patient": patient(), "conditions": None, "observations": searchset(alt(30)),
                "medications": None, "procedures": None}
    for key, value in changes.items():
        if value is ...:
            prefetch.pop(key)
        else:
            prefetch[key] = value
    return prefetch


@pytest.fixture(scope="module")
def demo():
    return TestClient(create_app(DEMO, as_of=AS_OF))


def cards(client, prefetch, **params) -> list[dict]:
    response = client.post(HOOK, json=hook(prefetch), params=params)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


# ---------------------------------------------------------------- discovery
def test_discovery_lists_the_patient_view_service_with_its_prefetch(demo) -> None:
    services = demo.get("/cds-services").json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [("screening-patient-view", "patient-view")]
    prefetch = services[0]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert prefetch["conditions"] == "Condition?patient={{context.patientId}}"
    assert prefetch["observations"] == "Observation?patient={{context.patientId}}"
    assert prefetch["medications"].startswith("MedicationRequest?patient={{context.patientId}}")
    assert "NCT00000001" in services[0]["description"]


# ---------------------------------------------------------------- cards
def test_eligible_patient_gets_one_info_card_with_a_report_link(demo) -> None:
    [card] = cards(demo, full())
    assert card["summary"] == "Possibly eligible for NCT00000001"
    assert card["indicator"] == "info"
    assert card["source"] == {"label": "Clinical trial screening", "url": "https://clinicaltrials.gov/study/NCT00000001"}
    assert "Doe, Jane — MRN 12345" in card["detail"]
    [link] = card["links"]
    assert link["type"] == "absolute"
    assert link["url"].startswith("http://testserver/patients/pat1/trials/NCT00000001?key=")
    text = demo.get(link["url"])
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert "Patient Doe, Jane — MRN 12345  trial NCT00000001  as of 2026-11-25  decision: ELIGIBLE" in text.text
    data = demo.get(link["url"] + "&format=json").json()
    assert data["decision"] == "eligible" and data["patient_label"]["mrn"] == "12345"


def test_undetermined_card_names_what_is_missing_as_questions(demo) -> None:
    [card] = cards(demo, full(observations=...))
    assert card["summary"] == "Possibly eligible for NCT00000001: 1 item missing: ALT result within the last 3 months"
    assert "To obtain:\n- ALT result within the last 3 months" in card["detail"].replace("\\", "")
    assert "prefetch 'observations' not sent: labs not provided" in card["detail"].replace("\\", "")


def test_ineligible_patient_gets_no_card_unless_asked(demo) -> None:
    prefetch = full(conditions=searchset(condition("C50.9")))
    assert cards(demo, prefetch) == []
    [card] = cards(demo, prefetch, ineligible="true")
    assert card["summary"] == "Not eligible for NCT00000001: CANCER"
    assert "CANCER (exclusion): History of malignancy" in card["detail"]
    # and why, from the record: the clinician sees what excluded the patient
    assert ("- CANCER (exclusion): History of malignancy — condition ICD10\\:C50\\.9 (from 2015-03-01, resolved) "
            "matches") in card["detail"]
    assert "Not eligible because of:" in card["detail"] and "Excluded by" not in card["detail"]


def test_null_search_means_none_recorded_but_an_absent_one_is_unknown(demo) -> None:
    assert cards(demo, full(conditions=None))[0]["summary"] == "Possibly eligible for NCT00000001"
    assert cards(demo, full(conditions=searchset()))[0]["summary"] == "Possibly eligible for NCT00000001"
    [card] = cards(demo, full(conditions=...))
    assert card["summary"].startswith("Possibly eligible for NCT00000001: 1 item missing: ")
    assert "prefetch 'conditions' not sent: conditions not provided" in card["detail"].replace("\\", "")


@pytest.mark.parametrize("conditions, why", [
    (searchset(condition("J45.909"), link=[{"relation": "next", "url": "http://ehr/fhir?page=2"}]), "is paged"),
    ({**searchset(condition("J45.909")), "total": 7}, "is paged"),
    ({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout",
                                                     "diagnostics": "search timed out"}]}, "search timed out"),
])
def test_a_paged_or_failed_search_is_not_read_as_complete(demo, conditions, why) -> None:
    # one page shows no cancer; the next page could: the cancer criterion stays unknown
    [card] = cards(demo, full(conditions=conditions))
    assert card["summary"].startswith("Possibly eligible for NCT00000001: 1 item missing")
    detail = card["detail"].replace("\\", "")
    assert why in detail and "conditions not provided" in detail
    link = card["links"][0]["url"]
    cancer = next(c for c in demo.get(link + "&format=json").json()["criteria"] if c["id"] == "CANCER")
    assert cancer["verdict"] == "unknown"


@pytest.mark.parametrize("prefetch", [None, {}, {"patient": None},
                                      {"patient": {"resourceType": "OperationOutcome", "issue": []}}])
def test_no_patient_prefetch_is_412(demo, prefetch) -> None:
    response = demo.post(HOOK, json=hook(prefetch))
    assert response.status_code == 412
    body = response.json()
    assert body["error"] == "prefetch-required" and body["problems"][0]["path"] == "$.prefetch.patient"
    assert "Patient/{{context.patientId}}" in body["message"] or "could not fetch" in body["message"]


def test_a_prefetched_patient_other_than_the_context_is_refused(demo) -> None:
    response = demo.post(HOOK, json=hook(full(), pid="someone-else"))
    assert response.status_code == 400
    assert response.json()["problems"][0]["path"] == "$.prefetch.patient.id"


def test_a_bad_resource_is_400_at_its_path_in_the_request(demo) -> None:
    bad = alt(30, when="2026-13-45")
    response = demo.post(HOOK, json=hook(full(observations=searchset(alt(31), bad))))
    assert response.status_code == 400
    problem = response.json()["problems"][0]
    assert problem["path"] == "$.prefetch.observations.entry[1].resource.effectiveDateTime"
    assert "2026-13-45" in problem["message"]


def test_other_hooks_and_malformed_requests_are_400(demo) -> None:
    response = demo.post(HOOK, json=hook(full(), hook_name="order-sign"))
    assert response.status_code == 400 and response.json()["error"] == "unsupported-hook"
    response = demo.post(HOOK, json={"hook": "patient-view", "context": {}})
    assert response.status_code == 400
    assert {p["path"] for p in response.json()["problems"]} == {"$.hookInstance", "$.context.patientId"}


# ---------------------------------------------------------------- POST /screen
def test_screen_returns_the_check_json_contract(demo) -> None:
    client = TestClient(create_app(ROOT / "trials", as_of=AS_OF))
    path = ROOT / "patient_samples" / "p06_undetermined_alt_elevated_cause_not_assessed.json"
    response = client.post("/screen", content=path.read_bytes(), headers={"content-type": "application/json"})
    assert response.status_code == 200
    [got] = response.json()
    expected = compile_trial(ROOT / "trials" / "NCT00659217.crit").screen(load_patient(path), AS_OF).to_dict()
    for key in ("trial", "patient", "as_of", "decision", "decision_reason", "criteria", "warnings", "terminology"):
        assert got[key] == expected[key], key
    assert got["decision"] == "undetermined"
    e6 = next(c for c in got["criteria"] if c["id"] == "E6")
    assert any(item["question"] == "Is the transaminase rise due to active lupus? (investigator)"
               for item in e6["missing_items"])


def test_screen_takes_a_fhir_bundle_a_trial_and_a_date(demo) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": patient()}, {"resource": alt(30, when="2026-06-01")}]}
    [result] = demo.post("/screen", json=bundle, params={"trial": "NCT00000001", "as_of": "2026-07-01"}).json()
    assert result["as_of"] == "2026-07-01" and result["patient"] == "pat1"
    assert next(c for c in result["criteria"] if c["id"] == "LIVER")["verdict"] == "pass"
    [later] = demo.post("/screen", json=bundle, params={"as_of": "2026-11-25"}).json()  # the ALT is now too old
    assert next(c for c in later["criteria"] if c["id"] == "LIVER")["verdict"] == "unknown"


def test_screen_errors(demo) -> None:
    response = demo.post("/screen", json={"version": 1, "id": "x"}, params={"trial": "NCT99999999"})
    assert response.status_code == 404 and response.json()["error"] == "unknown-trial"
    response = demo.post("/screen", json={"version": 1, "id": "x"}, params={"as_of": "2026-02-30"})
    assert response.status_code == 400 and response.json()["error"] == "invalid-as-of"
    response = demo.post("/screen", json={"version": 1, "id": "x", "birth_date": "1980-02-30"})
    assert response.status_code == 400 and response.json()["problems"][0]["path"] == "$.birth_date"
    bundle = {"resourceType": "Bundle", "entry": [{"resource": patient(gender="woman")}]}
    response = demo.post("/screen", json=bundle)
    assert response.status_code == 400 and response.json()["problems"][0]["path"] == "$.entry[0].resource.gender"
    response = demo.post("/screen", content=b'{"version": 1,\n "id": }', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("line 2 column 8: not valid JSON")
    response = demo.post("/screen", content=b'{"id": 1, "id": 2}', headers={"content-type": "application/json"})
    assert response.status_code == 400 and "duplicate key 'id'" in response.json()["message"]
    response = demo.post("/screen", content=b"[" * 70 + b"]" * 70, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "nested more than 64 levels" in response.json()["message"]
    response = demo.post("/screen", content=b'{"version": 1}', headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_bodies_over_the_limit_are_413_before_parsing() -> None:
    client = TestClient(create_app(DEMO, as_of=AS_OF, settings=Settings(DEMO, max_body_bytes=1000)))
    big = b'{"pad": "' + b"x" * 2000 + b'"}'
    response = client.post("/screen", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "too-large"
    assert "limit is 1,000 bytes" in response.json()["message"]

    def stream():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 200

    response = client.post("/screen", content=stream(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["message"] == ("the request body is larger than the limit of 1,000 bytes "
                                          "(screening serve --max-body-bytes)")
    response = client.post(HOOK, json=hook(full()))  # a request within the limit still works
    assert response.status_code == 200


def test_an_internal_failure_is_500_without_a_traceback() -> None:
    app = create_app(DEMO, as_of=AS_OF)
    trial = app.state.trials["NCT00000001"]
    trial.screen = lambda *a, **k: 1 / 0
    response = TestClient(app, raise_server_exceptions=False).post(HOOK, json=hook(full()))
    assert response.status_code == 500
    assert response.json()["error"] == "internal-error" and "Traceback" not in response.text
    assert "ZeroDivision" not in response.text


# ---------------------------------------------------------------- reports
def test_report_links_need_their_key_and_expire() -> None:
    clock = [0.0]
    cache = ReportCache(size=2, ttl=60, clock=lambda: clock[0])

    class Result:
        def __init__(self, patient):
            self.patient, self.trial = patient, "T"

    keys = [cache.put(Result(p), None) for p in ("a", "b", "c")]
    assert len(cache) == 2 and cache.get(keys[0], "a", "T") is None  # the oldest went first
    assert cache.get(keys[1], "b", "T") is not None
    assert cache.get(keys[1], "c", "T") is None  # a key opens only its own patient's report
    clock[0] = 61
    assert cache.get(keys[2], "c", "T") is None and len(cache) == 0
    assert ReportCache(size=0).put(Result("a"), None) is None


def test_unknown_report_is_404(demo) -> None:
    response = demo.get("/patients/pat1/trials/NCT00000001", params={"key": "nope"})
    assert response.status_code == 404 and response.json()["error"] == "no-report"


def test_no_cache_means_no_links() -> None:
    client = TestClient(create_app(DEMO, as_of=AS_OF, settings=Settings(DEMO, report_cache_size=0)))
    [card] = cards(client, full())
    assert card["links"] == []


def test_public_url_is_used_for_links() -> None:
    client = TestClient(create_app(DEMO, as_of=AS_OF, settings=Settings(DEMO, public_url="https://cds.example.org/s/")))
    [card] = cards(client, full())
    assert card["links"][0]["url"].startswith("https://cds.example.org/s/patients/pat1/trials/NCT00000001?key=")


# ---------------------------------------------------------------- card text
def test_summaries_stay_under_140_characters_and_count_the_rest() -> None:
    items = [f"item number {i} with some words" for i in range(20)]
    text = fit("Possibly eligible for NCT00659217: 20 items missing", items)
    assert len(text) <= 139
    assert text.startswith("Possibly eligible for NCT00659217: 20 items missing: item number 0 with some words, ")
    shown = text.count("item number")
    assert text.endswith(f", +{20 - shown} more")


def test_text_from_patients_cannot_add_links_or_html_to_a_card(demo) -> None:
    name = [{"use": "official", "family": "[click](https://evil.example)", "given": ["<img src=x>"]}]
    [card] = cards(demo, full(patient=patient(name=name)))
    assert not re.search(r"(?<!\\)[\[\]<>]", card["detail"])  # every bracket escaped: no link, no HTML
    assert r"\[click\](https\://evil\.example)" in card["detail"]
    assert md("- a\x1b[31m") == r"\- a\\x1b\[31m"


def test_cards_for_nct00659217_ask_the_coordinators_questions() -> None:
    client = TestClient(create_app(ROOT / "trials", as_of=AS_OF))
    prefetch = {"patient": patient(birth="1993-08-08"), "conditions": searchset(condition("M32.14", "2022-02")),
                "observations": searchset(alt(120, when="2026-11-18", high=35))}
    [card] = cards(client, prefetch)
    assert card["summary"].startswith("Possibly eligible for NCT00659217: ")
    assert len(card["summary"]) <= 139
    detail = card["detail"].replace("\\", "")
    assert "- Is the transaminase rise due to active lupus? (investigator)" in detail
    assert "**NCT00659217**: Effect of Mesenchymal Stem Cell Transplantation for Lupus Nephritis" in detail


def test_card_for_uses_the_structured_questions_when_present() -> None:
    result = {"trial": "T1", "patient": "p", "as_of": "2026-11-25", "decision": "undetermined",
              "decision_reason": None, "criteria": [
                  {"id": "A", "kind": "inclusion", "text": "t", "verdict": "unknown", "missing": ["fact x"],
                   "review_reasons": [], "missing_items": [{"kind": "fact", "question": "Is x true?"}]},
                  {"id": "B", "kind": "inclusion", "text": "t", "verdict": "review", "missing": [],
                   "review_reasons": ["judge it"],
                   "missing_items": [{"kind": "review", "question": "Judge it? (investigator)"}]}]}
    card = card_for(result, title=None, source_label="s", report_url=None, warnings=[])
    assert card["summary"] == "Possibly eligible for T1: 1 item missing, 1 to review: Is x true?, Judge it? (investigator)"
    assert "source" in card and "url" not in card["source"]


# ---------------------------------------------------------------- start-up
def test_a_rule_set_that_does_not_compile_stops_start_up(tmp_path) -> None:
    (tmp_path / "ok.crit").write_text((DEMO / "demo.crit").read_text())
    (tmp_path / "bad.crit").write_text('trial "X"\ninclusion A "a" = age >= \n')
    with pytest.raises(SourceError) as caught:
        create_app(tmp_path)
    assert caught.value.first.span.line == 2
    proc = run("serve", "--trials", tmp_path, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "bad.crit:2:25: unexpected end of file" in proc.stderr


def test_serve_refuses_an_empty_folder(tmp_path) -> None:
    proc = run("serve", "--trials", tmp_path, cwd=tmp_path)
    assert proc.returncode == 2 and "no rule sets (*.crit)" in proc.stderr


def test_health_lists_the_trials(demo) -> None:
    body = demo.get("/health").json()
    assert body == {"status": "ok", "as_of": "2026-11-25", "trials": [
        {"id": "NCT00000001", "title": json.loads(json.dumps(body["trials"][0]["title"])), "criteria": 3,
         "source": "demo.crit"}]}


def test_screening_serve_answers_over_http(tmp_path) -> None:
    """The real command: uvicorn on a free port, discovery and a hook call over TCP, then stopped."""
    import socket
    import subprocess
    import time

    import httpx

    from cli_helpers import SCREENING

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([SCREENING, "serve", "--trials", str(DEMO), "--port", str(port), "--as-of", "2026-11-25",
                               "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert httpx.get(f"{base}/cds-services").json()["services"][0]["id"] == "screening-patient-view"
        [card] = httpx.post(f"{base}{HOOK}", json=hook(full())).json()["cards"]
        assert card["summary"] == "Possibly eligible for NCT00000001"
        assert card["links"][0]["url"].startswith(f"{base}/patients/pat1/trials/NCT00000001?key=")
        assert "decision: ELIGIBLE" in httpx.get(card["links"][0]["url"]).text
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_worker_processes_get_the_settings_from_the_environment(monkeypatch) -> None:
    from screening.service.app import ENVIRONMENT, app_from_environment, settings_to_environment

    settings = Settings(DEMO, as_of=AS_OF, max_body_bytes=5000, include_ineligible=True, report_cache_size=0)
    monkeypatch.setenv(ENVIRONMENT, settings_to_environment(settings, "none"))
    client = TestClient(app_from_environment())
    assert client.get("/health").json()["as_of"] == "2026-11-25"
    [card] = cards(client, full(conditions=searchset(condition("C50.9"))))  # --include-ineligible carried over
    assert card["summary"] == "Not eligible for NCT00000001: CANCER" and card["links"] == []
    big = client.post("/screen", content=b"{" + b" " * 6000 + b"}", headers={"content-type": "application/json"})
    assert big.status_code == 413


def test_allergies_are_prefetched_only_when_a_rule_set_tests_them(tmp_path) -> None:
    (tmp_path / "a.crit").write_text('trial "T-ALLERGY"\nexclusion PEN "Penicillin allergy" = '
                                     'active allergy RXNORM:7980 within 120 years\n')
    client = TestClient(create_app(tmp_path, as_of=AS_OF))
    prefetch = client.get("/cds-services").json()["services"][0]["prefetch"]
    assert prefetch["allergies"] == "AllergyIntolerance?patient={{context.patientId}}"
    assert "immunizations" not in prefetch
    assert "allergies" not in demo_prefetch()
    allergy = {"resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/pat1"},
               "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2001-01-01",
               "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7980"}]}}
    assert cards(client, {**full(), "allergies": searchset(allergy)}) == []  # excluded
    assert cards(client, {**full(), "allergies": None})[0]["summary"] == "Possibly eligible for T-ALLERGY"
    [card] = cards(client, full())  # not sent: unknown, and said so
    assert card["summary"].startswith("Possibly eligible for T-ALLERGY: 1 item missing")
    assert "prefetch 'allergies' not sent" in card["detail"].replace("\\", "")


def demo_prefetch() -> dict:
    return TestClient(create_app(DEMO, as_of=AS_OF)).get("/cds-services").json()["services"][0]["prefetch"]
