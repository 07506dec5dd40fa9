"""`screening report`: the HTML report's content from a batch results folder and on the spot,
escaping of everything from rule files and patients, bad inputs, and what the package ships."""
from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from cli_helpers import run
from helpers import named_fhir_bundle
from report_helpers import (AS_OF, HOSTILE, HOSTILE_FILE, HOSTILE_PATIENT, HOSTILE_RULES, NCT, ROOT, SAMPLES,
                            TERMINOLOGY, Document)
from screening.reports.view import limits_of

EXCLUDING = [("I4", 2), ("E3", 2), ("E4", 2), ("E6", 2), ("AGE", 1), ("I2", 1), ("I3", 1), ("E2", 1), ("E5", 1),
             ("E7", 1)]  # most fails first, ties in rule-set order


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    proc = run("batch", NCT, "--patients", SAMPLES, "--out", out, "--as-of", AS_OF, "--terminology", TERMINOLOGY,
               "--workers", "1", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def batch_report(batch_dir) -> Document:
    html = batch_dir / "report.html"
    proc = run("report", batch_dir, "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "18 results (3 eligible, 10 ineligible, 5 undetermined)" in proc.stdout
    return Document(html.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def spot_report(tmp_path_factory) -> tuple[str, Document]:
    html = tmp_path_factory.mktemp("spot") / "report.html"
    proc = run("report", NCT, *sorted(SAMPLES.glob("*.json")), "--as-of", AS_OF, "--terminology", TERMINOLOGY,
               "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    text = html.read_text(encoding="utf-8")
    return text, Document(text)


def decisions(doc: Document) -> dict:
    return {b.attrs["data-decision"]: int(b.text) for b in doc.find_all("b", data_decision=True)}


def test_decision_counts_and_charts_from_a_batch_folder(batch_report):
    assert decisions(batch_report) == {"eligible": 3, "ineligible": 10, "undetermined": 5}
    assert batch_report.find("b", data_count="total").text == "18"
    assert batch_report.bars("excluding") == EXCLUDING
    # missing items counted by kind and code, once per patient: ALT "within 3 months" and ALT with no
    # observations at all are the same lab to obtain
    assert batch_report.bars("missing")[:4] == [("fact:transaminase_rise_due_to_active_lupus", 3),
                                                ("lab:LOINC:1742-6", 2), ("lab:LOINC:1920-8", 2),
                                                ("birth_date:birth_date", 2)]
    fact = batch_report.find("svg", data_chart="missing").find("g", data_key="fact:transaminase_rise_due_to_active_lupus")
    assert fact.find("title").text == "Transaminase rise due to active lupus (fact): 3 of 18 patients (16.7%)"
    bar = batch_report.find("g", data_key="I4")
    assert bar.attrs["data-share"] == "11.1%"
    assert bar.find("title").text.startswith("I4 For treatment -refractory lupus nephritis")
    assert bar.find("title").text.endswith("2 of 18 patients (11.1%)")


def test_on_the_spot_gives_the_same_report_as_the_batch(spot_report, batch_report):
    _, doc = spot_report
    assert decisions(doc) == decisions(batch_report)
    assert doc.bars("excluding") == batch_report.bars("excluding")
    assert doc.bars("missing") == batch_report.bars("missing")
    assert "Effect of Mesenchymal Stem Cell Transplantation for Lupus Nephritis" in doc.find("section", data_trial="NCT00659217").text


def test_worklist_orders_for_action(batch_report):
    rows = batch_report.worklist()
    assert len(rows) == 18
    order = [r.attrs["data-decision"] for r in rows]
    assert order == ["eligible"] * 3 + ["undetermined"] * 5 + ["ineligible"] * 10
    assert rows[0].find("a").text == "p01 (p01_eligible_female_si_units.json)"
    undetermined = [r for r in rows if r.attrs["data-decision"] == "undetermined"]
    missing = [int(r.attrs["data-missing"]) for r in undetermined]
    assert missing == sorted(missing) and missing[0] == 1
    assert undetermined[0].find("a").text == "p06 (p06_undetermined_alt_elevated_cause_not_assessed.json)"
    assert "Is the transaminase rise due to active lupus? (investigator)" in undetermined[0].text
    assert "E6 unknown" in undetermined[0].text
    # the worklist links each row to its patient's page
    anchor = rows[0].find("a").attrs["href"].removeprefix("#")
    assert batch_report.find("section", id=anchor).find("h2").text.startswith("p01 (p01_eligible_female_si_units.json)")


def test_patient_page_lists_the_missing_question_and_each_verdict(batch_report):
    page = batch_report.patient_page("p06_undetermined")
    assert page.attrs["data-decision"] == "undetermined"
    questions = [li.text for li in page.find("ul", **{"class": "missing-questions"}).find_all("li")]
    assert questions == ["Is the transaminase rise due to active lupus? (investigator)"]
    verdicts = {tr.attrs["data-criterion"]: tr.attrs["data-verdict"] for tr in page.find_all("tr", data_criterion=True)}
    assert verdicts == {"AGE": "pass", "I2": "pass", "I3": "pass", "I4": "pass", "E2": "pass", "E3": "pass",
                        "E4": "pass", "E5": "pass", "E6": "unknown", "E7": "pass"}
    e6 = page.find("tr", data_criterion="E6")
    assert "ALT 120 U/L on 2026-11-18" in e6.text
    assert "missing: Is the transaminase rise due to active lupus? (investigator)" in e6.text
    review = batch_report.patient_page("p07_ineligible").find("ul", **{"class": "review-questions"})
    assert review.text == ("Investigator's opinion: would any illness jeopardize the patient's ability to tolerate "
                           "MSC transplantation? (review)")


def test_patient_page_shows_the_converted_threshold_and_the_margin(batch_report):
    page = batch_report.patient_page("p04_ineligible")
    why = page.find("ul", **{"class": "deciding-criteria"}).find_all("li")
    assert [li.attrs["data-criterion"] for li in why] == ["E6"]
    assert why[0].text.startswith("E6 fail ALT 95 U/L on ") and why[0].text.endswith("over by 15 U/L")
    e6 = page.find("tr", data_criterion="E6")
    limit = e6.find("span", **{"class": "limit"})
    assert limit.attrs["data-threshold"] == "2 x ULN: ULN 40 U/L (from the observation) = 80 U/L"
    assert limit.attrs["data-margin"] == "over by 15 U/L"
    # the rule set's fallback range, converted to the patient's unit (ukat/L)
    e6 = batch_report.patient_page("p05_ineligible").find("tr", data_criterion="E6")
    margins = [s.attrs["data-threshold"] for s in e6.find_all("span", **{"class": "limit"})]
    assert any("= 1.16667 ukat/L" in m for m in margins), margins


def test_limits_are_read_from_every_wording_of_a_comparison():
    assert limits_of("WBC 3.6 10^9/L on 2026-10-28; limit 4,000/mm3 = 4 10^9/L; under by 0.4 10^9/L; "
                     "WBC 3.2 10^9/L on 2026-03-04; limit 4,000/mm3 = 4 10^9/L; under by 0.8 10^9/L") == [
        {"threshold": "4,000/mm3 = 4 10^9/L", "margin": "under by 0.4 10^9/L"},
        {"threshold": "4,000/mm3 = 4 10^9/L", "margin": "under by 0.8 10^9/L"}]
    assert limits_of("HbA1c 7 % on 2026-01-01; range 6.5 % to 9.5 %; within the range") == [
        {"threshold": "6.5 % to 9.5 %", "margin": "within the range"}]
    assert limits_of("creatinine 1.5 mg/dL on 2026-01-01; limit 1.5 mg/dL; exactly at the limit") == [
        {"threshold": "1.5 mg/dL", "margin": "exactly at the limit"}]
    assert limits_of("fact x not recorded") == []


def test_the_report_is_one_self_contained_file(spot_report):
    text, doc = spot_report
    assert not doc.find_all("script") and not doc.find_all("link") and not doc.find_all("img")
    assert not doc.find_all("iframe") and not doc.find_all("object")
    assert not [e for e in doc.all if "src" in e.attrs or "srcset" in e.attrs]
    # the only URL is the SVG namespace, which is a name, not a request
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {"http://www.w3.org/2000/svg", "http://snomed.info/sct"}
    assert "@import" not in text and "url(" not in text
    csp = doc.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no script may run, nothing may load
    styles = doc.find_all("style")
    assert len(styles) == 1 and "@media print" in styles[0].text and "break-before: page" in styles[0].text


def test_results_without_explanations_still_report(batch_dir, tmp_path):
    """Lines as a columnar engine writes them: verdicts and missing items only."""
    lean = tmp_path / "results.jsonl"
    with (batch_dir / "results.jsonl").open(encoding="utf-8") as src, lean.open("w", encoding="utf-8") as dst:
        for line in src:
            r = json.loads(line)
            keep = {"input": r["input"], "trial": r["trial"], "patient": r["patient"], "as_of": r["as_of"],
                    "decision": r["decision"],
                    "criteria": [{"id": c["id"], "verdict": c["verdict"], "missing": c["missing"]}
                                 for c in r["criteria"]]}
            dst.write(json.dumps(keep) + "\n")
    html = tmp_path / "lean.html"
    proc = run("report", tmp_path, "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = Document(html.read_text(encoding="utf-8"))
    assert decisions(doc) == {"eligible": 3, "ineligible": 10, "undetermined": 5}
    assert [k for k, _ in doc.bars("excluding")] == [k for k, _ in EXCLUDING]
    page = doc.patient_page("p06_undetermined")
    assert "verdicts and missing items only" in page.text
    assert [li.text for li in page.find("ul", **{"class": "missing-questions"}).find_all("li")] == [
        "fact transaminase_rise_due_to_active_lupus"]


def test_bad_results_lines_are_named_and_the_rest_reported(batch_dir, tmp_path):
    lines = (batch_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[3])
    bad["decision"] = "maybe"
    worse = json.loads(lines[4])
    worse["criteria"][2]["verdict"] = 3
    (tmp_path / "results.jsonl").write_text("\n".join(
        [lines[0], '{"trial": "NCT00659217", "decision":', json.dumps(bad), json.dumps(worse), "[1, 2]",
         '{"trial": "T", "decision": "eligible", "criteria": [], "x": NaN}', lines[1]]) + "\n", encoding="utf-8")
    html = tmp_path / "r.html"
    proc = run("report", tmp_path, "--out", html, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    name = tmp_path / "results.jsonl"
    assert f"{name}:2: column 37: not valid JSON: Expecting value" in proc.stderr
    assert f"{name}:3: $.decision: must be one of eligible, ineligible, undetermined" in proc.stderr
    assert f"{name}:4: $.criteria[2].verdict: must be one of pass, fail, unknown, review" in proc.stderr
    assert f"{name}:5: $: not a JSON object" in proc.stderr
    assert f"{name}:6: $.x:" in proc.stderr
    assert "5 inputs left out of the report" in proc.stderr
    doc = Document(html.read_text(encoding="utf-8"))
    assert decisions(doc) == {"eligible": 2, "ineligible": 0, "undetermined": 0}
    assert len(doc.find("section", id="problems").find_all("li")) == 5


def test_a_bad_patient_file_is_named_and_the_others_reported(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "id": "x", "birth_date": "1990-02-30"}')
    html = tmp_path / "r.html"
    proc = run("report", NCT, SAMPLES / "p01_eligible_female_si_units.json", bad, "--as-of", AS_OF,
               "--terminology", TERMINOLOGY, "--out", html, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{bad}: $.birth_date" in proc.stderr
    doc = Document(html.read_text(encoding="utf-8"))
    assert decisions(doc) == {"eligible": 1, "ineligible": 0, "undetermined": 0}
    assert f"{bad}: $.birth_date" in doc.find("section", id="problems").text


@pytest.mark.parametrize("args, message", [
    (["NCT"], "give a batch results folder, or a rule-set file followed by patient files"),
    (["RUN", "--as-of", AS_OF], "--as-of and --terminology apply when screening on the spot"),
    (["NCT", "P01", "--out", "/nonexistent-folder/r.html"], "--out: no folder /nonexistent-folder"),
    (["EMPTY"], "no results.jsonl in this folder"),
    (["RUN", "--trial", "NCT0"], "--trial NCT0: no results of this trial in"),
])
def test_usage_errors(args, message, tmp_path, batch_dir):
    names = {"NCT": str(NCT), "RUN": str(batch_dir), "P01": str(SAMPLES / "p01_eligible_female_si_units.json"),
             "EMPTY": str(tmp_path)}
    args = [names.get(a, a) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "r.html")]
    proc = run("report", *args, cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "r.html").exists()


def hostile_report(tmp_path: Path) -> Path:
    rules = tmp_path / "hostile.crit"
    rules.write_text(HOSTILE_RULES, encoding="utf-8")
    patient = tmp_path / HOSTILE_FILE
    patient.write_text(json.dumps(HOSTILE_PATIENT), encoding="utf-8")
    html = tmp_path / "hostile.html"
    proc = run("report", rules, patient, "--as-of", AS_OF, "--terminology", "none", "--title", HOSTILE,
               "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return html


def test_text_from_rule_files_and_patients_never_becomes_markup(tmp_path):
    text = hostile_report(tmp_path).read_text(encoding="utf-8")
    doc = Document(text)
    tags = {e.tag for e in doc.all}
    assert not tags & {"script", "img", "marquee"}, tags
    assert [e.tag for e in doc.all if any(k.startswith("on") for k in e.attrs)] == []
    assert len(doc.find_all("style")) == 1
    # every text is there, as text: escaped once, template syntax untouched
    assert doc.find("title").text == " ".join(HOSTILE.split())
    # (the temporary folder's name, which the report cites, may hold "49" itself)
    assert text.count("{{ 7*7 }}") >= 6 and "49" not in text.replace("4.9", "").replace(str(tmp_path), "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;/style&gt;" in text and "</style>" in text  # the one real closing tag is the stylesheet's
    page = doc.find("section", **{"class": "patient-page"})
    display = page.find("h2").text
    assert display.startswith("N " + " ".join(HOSTILE.split()) + " — MRN M " + " ".join(HOSTILE.split()))
    assert f"({HOSTILE_FILE})" in display
    assert ("P " + " ".join(HOSTILE.split())) in page.text  # the record id
    i1 = page.find("tr", data_criterion="I1")
    assert ("I1 " + " ".join(HOSTILE.split())) in i1.text
    assert page.find("tr", data_criterion="E1").attrs["data-verdict"] == "review"
    assert ("R " + " ".join(HOSTILE.split())) in page.find("ul", **{"class": "review-questions"}).text
    bar = doc.find("svg", data_chart="excluding").find("g", **{"class": "bar"})
    assert bar.attrs["data-key"] == "E2" and "E2 " + " ".join(HOSTILE.split()) in bar.find("title").text


def test_templates_ship_inside_the_package():
    template = resources.files("screening.reports").joinpath("templates", "report.html.j2")
    assert template.is_file()
    assert "autoescape" not in template.read_text(encoding="utf-8").split("-#}")[1]  # set in code, never turned off
    from screening.reports.html import environment

    env = environment()
    assert env.autoescape is True
    assert env.from_string("{{ x }}").render(x="<b>") == "&lt;b&gt;"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"screening.reports" = ["templates/*.j2"]' in pyproject and '"jinja2>=3.1"' in pyproject


SMALL_RULES = '''trial "SMALL-1"
title "A small <inline> rule set"
inclusion A1 "Adult" = age >= 18 years
exclusion X1 "Smoker" = fact smoker
'''


def test_several_trials_each_get_their_counts_and_charts(tmp_path):
    small = tmp_path / "small.crit"
    small.write_text(SMALL_RULES, encoding="utf-8")
    run_dir = tmp_path / "run"
    proc = run("batch", NCT, small, "--patients", SAMPLES, "--out", run_dir, "--as-of", AS_OF,
               "--terminology", TERMINOLOGY, "--workers", "1", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    html = tmp_path / "both.html"
    proc = run("report", run_dir, "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = Document(html.read_text(encoding="utf-8"))
    sections = {s.attrs["data-trial"]: s for s in doc.find_all("section", data_trial=True)}
    assert list(sections) == ["NCT00659217", "SMALL-1"]
    small_counts = {b.attrs["data-decision"]: int(b.text) for b in sections["SMALL-1"].find_all("b", data_decision=True)}
    # no sample records the fact smoker: nobody is eligible, p15 (no birth date) fails nothing
    assert small_counts == {"eligible": 0, "ineligible": 0, "undetermined": 18}
    assert sections["SMALL-1"].find("svg", data_chart="missing").find_all("g")[0].attrs == {
        "class": "bar", "data-key": "fact:smoker", "data-count": "18", "data-share": "100.0%"}
    assert sections["SMALL-1"].find("figure").find("p").text == "None."  # no criterion excludes anyone
    assert len(doc.worklist()) == 36 and len(doc.find_all("section", **{"class": "patient-page"})) == 36
    only = tmp_path / "only.html"
    proc = run("report", run_dir, "--trial", "SMALL-1", "--out", only, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = Document(only.read_text(encoding="utf-8"))
    assert [s.attrs["data-trial"] for s in doc.find_all("section", data_trial=True)] == ["SMALL-1"]
    assert {r.find_all("td")[2].text for r in doc.worklist()} == {"SMALL-1"}


@pytest.mark.parametrize("change, message", [
    (lambda r: r["criteria"][0].__setitem__("review_reasons", [1]), "$.criteria[0].review_reasons[0]: not a text"),
    (lambda r: r["criteria"][1].__setitem__("missing_items", ["x"]), "$.criteria[1].missing_items[0]: not a JSON object"),
    (lambda r: r["criteria"][2].__setitem__("evidence", {"a": 1}), "$.criteria[2].evidence: not a list"),
    (lambda r: r.__setitem__("criteria", [{"verdict": "pass"}]), "$.criteria[0].id: missing or not a text"),
    (lambda r: r.pop("trial"), "$.trial: missing or not a text"),
])
def test_results_lines_of_the_wrong_shape_are_refused_at_their_json_path(change, message, batch_dir, tmp_path):
    result = json.loads((batch_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()[0])
    change(result)
    (tmp_path / "results.jsonl").write_text(json.dumps(result) + "\n", encoding="utf-8")
    proc = run("report", tmp_path, "--out", tmp_path / "r.html", cwd=ROOT)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{tmp_path / 'results.jsonl'}:1: {message}" in proc.stderr


def test_a_results_file_that_changes_while_the_report_is_written_is_a_clean_error(batch_dir, tmp_path):
    from screening.errors import UsageError
    from screening.reports.html import write_report
    from screening.reports.sources import read_results

    results = tmp_path / "results.jsonl"
    results.write_bytes((batch_dir / "results.jsonl").read_bytes())
    source = read_results(tmp_path)
    results.write_text("truncated", encoding="utf-8")  # e.g. a batch run restarted meanwhile
    with pytest.raises(UsageError, match="changed while the report was being written"):
        write_report(source, tmp_path / "r.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.jsonl"]  # no half report left behind


def test_a_fhir_patient_is_named_by_name_and_mrn(tmp_path):
    uuid = "8f14e45f-ceea-467f-a0e6-5c1a3e6b1b7d"
    bundle = named_fhir_bundle(uuid)
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    html = tmp_path / "r.html"
    proc = run("report", NCT, path, "--as-of", AS_OF, "--terminology", "none", "--out", html, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    doc = Document(html.read_text(encoding="utf-8"))
    assert doc.worklist()[0].find("a").text == "Doe, Jane — MRN 12345 (bundle.json)"
    page = doc.find("section", **{"class": "patient-page"})
    assert page.find("h2").text.startswith("Doe, Jane — MRN 12345 (bundle.json)")
    assert f"record id {uuid}" in page.find("p", **{"class": "meta"}).text
