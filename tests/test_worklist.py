"""`screening worklist`, summary.csv's worklist columns and n/a, the batch tally of missing items (docs/worklist.md)."""
from __future__ import annotations

import csv
import io
import json

import pytest

from screening.reports import worklist as wl

from cli_helpers import run
from helpers import ROOT

CRIT = ROOT / "trials" / "NCT00659217.crit"
SAMPLES = ROOT / "patient_samples"
TERMINOLOGY = ROOT / "trials" / "terminology"
OPTIONS = ("--as-of", "2026-11-25", "--terminology", str(TERMINOLOGY))

# eligible first (by label), then undetermined by how few items are missing, then ineligible (by label)
EXPECTED_ORDER = [
    ("p01", "eligible", 0), ("p02", "eligible", 0), ("p03", "eligible", 0),
    ("p06", "undetermined", 1), ("p18", "undetermined", 4), ("p17", "undetermined", 5),
    ("p16", "undetermined", 10), ("p15", "undetermined", 12),
    ("p04", "ineligible", 0), ("p05", "ineligible", 0), ("p07", "ineligible", 0), ("p08", "ineligible", 0),
    ("p09", "ineligible", 0), ("p10", "ineligible", 0), ("p11", "ineligible", 0), ("p12", "ineligible", 0),
    ("p13", "ineligible", 0), ("p14", "ineligible", 0),
]


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture(scope="module")
def batch_out(tmp_path_factory):
    """The samples screened by `screening batch` (one worker) into a results folder."""
    out = tmp_path_factory.mktemp("worklist") / "out"
    proc = run("batch", CRIT, "--patients", SAMPLES, "--out", out, "--workers", "1", *OPTIONS, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return out


def test_worklist_of_patient_files_is_ordered_for_action(tmp_path):
    proc = run("worklist", SAMPLES, "--trial", CRIT, "--format", "csv", *OPTIONS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _csv(proc.stdout)
    assert list(rows[0]) == list(wl.CSV_COLUMNS)
    assert [(r["patient"], r["decision"], int(r["items_missing"])) for r in rows] == EXPECTED_ORDER
    p06 = rows[3]
    assert p06["label"] == "p06 (p06_undetermined_alt_elevated_cause_not_assessed.json)"
    assert p06["deciding"] == "E6 unknown"
    assert p06["to_obtain"] == "Is the transaminase rise due to active lupus? (investigator)"
    assert p06["review_questions"] == ""
    p17 = rows[5]
    assert p17["deciding"] == "AGE unknown; E4 unknown; E6 unknown"
    assert p17["to_obtain"].split("; ")[2:] == [
        "ALT result within the last 3 months", "AST result within the last 3 months",
        "Is the transaminase rise due to active lupus? (investigator)"]
    p18 = rows[4]
    assert p18["review_questions"] == (
        "Does the psychiatric illness or mental deficiency make compliance or informed consent impossible? (review); "
        "Investigator's opinion: would any illness jeopardize the patient's ability to tolerate MSC transplantation? "
        "(review)")
    p04 = rows[8]  # ineligible: the failing criterion and why; nothing to obtain
    assert p04["deciding"].startswith("E6 fail: ALT 95 U/L on 2026-11-09; limit 2 x ULN")
    assert (p04["to_obtain"], p04["review_questions"]) == ("", "")


def test_worklist_json_carries_the_items(batch_out, tmp_path):
    proc = run("worklist", batch_out, "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    p06 = rows[3]
    assert (p06["patient"], p06["items_missing"], p06["deciding"]) == (
        "p06", 1, [{"id": "E6", "kind": "exclusion", "verdict": "unknown",
                    "reason": "missing: Is the transaminase rise due to active lupus? (investigator)"}])
    assert p06["to_obtain"] == [{"kind": "fact", "code": "transaminase_rise_due_to_active_lupus",
                                 "name": "Transaminase rise due to active lupus", "window": None,
                                 "question": "Is the transaminase rise due to active lupus? (investigator)",
                                 "text": "fact transaminase_rise_due_to_active_lupus"}]


def test_worklist_reads_batch_results_the_same(batch_out, tmp_path):
    proc = run("worklist", batch_out, "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = _csv(proc.stdout)
    assert [(r["patient"], r["decision"], int(r["items_missing"])) for r in rows] == EXPECTED_ORDER
    assert rows[3]["input"].endswith("p06_undetermined_alt_elevated_cause_not_assessed.json")
    # --trial filters by id (or by a rule file's id); an id with no results is an error
    proc = run("worklist", batch_out, "--trial", "NCT00659217", "--format", "csv", cwd=tmp_path)
    assert len(_csv(proc.stdout)) == 18
    proc = run("worklist", batch_out, "--trial", "NCT99999999", cwd=tmp_path)
    assert proc.returncode == 2 and "--trial: no results for NCT99999999 (the results hold NCT00659217)" in proc.stderr


def test_worklist_text_and_html_escape_patient_text(tmp_path):
    person = tmp_path / "p.json"
    person.write_text(json.dumps({"id": "<script>alert(1)</script>", "name": "[bold red]Doe[/], <b>Jane</b>",
                                  "mrn": "&1", "sex": "female"}), encoding="utf-8")
    proc = run("worklist", person, "--trial", CRIT, "--format", "html", *OPTIONS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "<script>" not in proc.stdout and "<b>Jane" not in proc.stdout
    assert "[bold red]Doe[/], &lt;b&gt;Jane&lt;/b&gt; — MRN &amp;1 (p.json)" in proc.stdout
    proc = run("worklist", person, "--trial", CRIT, *OPTIONS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "[bold red]Doe[/]," in proc.stdout  # printed as written, not as markup


def test_worklist_tolerates_results_without_items_or_explanations(tmp_path):
    """An engine that records verdicts and `missing` only (no missing_items, no evidence) still lists."""
    folder = tmp_path / "engine"
    folder.mkdir()
    lines = [
        {"trial": "T", "patient": "a", "decision": "undetermined", "criteria": [
            {"id": "I1", "kind": "inclusion", "verdict": "unknown", "missing": ["ALT result within 3 months", "sex"]}]},
        {"trial": "T", "patient": "b", "decision": "undetermined", "criteria": [
            {"id": "I1", "kind": "inclusion", "verdict": "unknown", "missing": ["sex"]}]},
        {"trial": "T", "patient": "c", "decision": "eligible", "criteria": [{"id": "I1", "verdict": "pass"}]},
    ]
    (folder / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    rows = wl.build(wl.read_results(folder))
    assert [(r.patient, r.items_missing) for r in rows] == [("c", 0), ("b", 1), ("a", 2)]
    assert [i.question for i in rows[2].obtain] == ["ALT result within 3 months", "Sex"]
    assert rows[2].display == "a"
    (folder / "results.jsonl").write_text(json.dumps(lines[0]) + "\n{not json\n", encoding="utf-8")
    proc = run("worklist", folder, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{folder / 'results.jsonl'}:2: $: not JSON" in proc.stderr


def test_worklist_reports_bad_patient_files_after_the_list(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": 5}', encoding="utf-8")
    proc = run("worklist", SAMPLES / "p06_undetermined_alt_elevated_cause_not_assessed.json", bad, "--trial", CRIT,
               "--format", "csv", *OPTIONS, cwd=tmp_path)
    assert proc.returncode == 2
    assert [r["patient"] for r in _csv(proc.stdout)] == ["p06"]
    assert f"{bad}: $.id:" in proc.stderr
    proc = run("worklist", SAMPLES, cwd=tmp_path)
    assert proc.returncode == 2 and "--trial RULES.crit is needed" in proc.stderr


def test_summary_csv_has_the_worklist_columns_and_writes_not_applicable_as_n_a(batch_out):
    with (batch_out / "summary.csv").open(newline="", encoding="utf-8") as stream:
        rows = {r["patient"]: r for r in csv.DictReader(stream)}
    # p03 has no lupus nephritis: I4 ("applies if condition lupus_nephritis") does not apply
    assert rows["p03"]["I4"] == "n/a"
    results = [json.loads(line) for line in (batch_out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    p03 = next(r for r in results if r["patient"] == "p03")
    i4 = next(c for c in p03["criteria"] if c["id"] == "I4")
    assert (i4["verdict"], i4["applicable"]) == ("pass", False)  # the JSON contract keeps its verdict
    assert rows["p01"]["I4"] == "pass"  # p01 has lupus nephritis and meets I4
    p06 = rows["p06"]
    assert (p06["label"], p06["items_missing"], p06["deciding"], p06["to_obtain"], p06["review_questions"]) == (
        "p06 (p06_undetermined_alt_elevated_cause_not_assessed.json)", "1", "E6 unknown",
        "Is the transaminase rise due to active lupus? (investigator)", "")


def test_batch_tally_groups_missing_items_by_kind_and_code(batch_out):
    state = json.loads((batch_out / "progress.json").read_text(encoding="utf-8"))
    entry = state["tally"]["trials"]["NCT00659217"]
    items = entry["items"]
    # p06, p15, p17: asked once per patient, whatever the criteria that need it
    assert items["fact transaminase_rise_due_to_active_lupus"] == 3
    assert items["lab LOINC:1742-6"] == 2  # p15 and p17 have no ALT result within 3 months
    assert entry["names"]["lab LOINC:1742-6"] == "ALT within 3 months"
    assert entry["names"]["fact transaminase_rise_due_to_active_lupus"] == "Transaminase rise due to active lupus"


@pytest.mark.parametrize("line, message", [
    ("[" * 100_000 + "]" * 100_000, "nested more than"),
    ('{"trial": "T", "decision": "eligible", "criteria": 5}', "$.criteria: must be a list"),
    ('["not", "an", "object"]', "a result must be a JSON object"),
    ('{"patient": "x"}', "not a screening result"),
])
def test_hostile_results_lines_get_one_message_at_file_and_line(tmp_path, line, message):
    folder = tmp_path / "r"
    folder.mkdir()
    good = json.dumps({"trial": "T", "patient": "a", "decision": "eligible", "criteria": []})
    (folder / "results.jsonl").write_text(good + "\n" + line + "\n", encoding="utf-8")
    proc = run("worklist", folder, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{folder / 'results.jsonl'}:2: " in proc.stderr and message in proc.stderr, proc.stderr


def test_results_of_the_wrong_shape_inside_criteria_still_list():
    """Lists that are not lists, items that are not objects: read leniently, never a traceback."""
    rows = wl.build([{"trial": "T", "patient": "a", "decision": "undetermined", "criteria": [
        {"id": "I1", "verdict": "unknown", "missing": 5, "review_reasons": "x", "evidence": [3]},
        {"id": "I2", "verdict": "unknown", "missing_items": [7, {"kind": "lab", "question": "ALT result"}]},
        "not a criterion"]}])
    (row,) = rows
    assert [d.line() for d in row.deciding] == ["I1 unknown", "I2 unknown"]
    assert [i.question for i in row.obtain] == ["ALT result"]


def test_an_uncertain_death_date_is_an_item_to_obtain_not_zero_items(tmp_path):
    """A patient every criterion admits, whose death may precede the as-of date (known to the month),
    is undetermined by the death date alone: one thing to check, never '0 items', and it is counted."""
    document = json.loads((SAMPLES / "p01_eligible_female_si_units.json").read_text(encoding="utf-8"))
    document["deceased"] = "2026-11"
    path = tmp_path / "p01_dead.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    proc = run("worklist", path, SAMPLES / "p06_undetermined_alt_elevated_cause_not_assessed.json", "--trial", CRIT,
               "--format", "json", *OPTIONS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    dead = next(r for r in rows if r["patient_label"]["file"] == "p01_dead.json")
    assert (dead["decision"], dead["items_missing"]) == ("undetermined", 1)
    assert [i["question"] for i in dead["to_obtain"]] == [
        "Is the patient alive? (patient may have died on or before the as-of date (date of death 2026-11))"]
    assert dead["to_obtain"][0]["kind"] == "record" and dead["to_obtain"][0]["code"] == "deceased"


def test_worklist_text_counts_one_row_in_the_singular(tmp_path):
    proc = run("worklist", SAMPLES / "p06_undetermined_alt_elevated_cause_not_assessed.json", "--trial", CRIT,
               *OPTIONS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "0 eligible, 1 undetermined, 0 ineligible (1 row)"


def test_worklist_of_unreadable_files_only_prints_nothing_on_stdout(tmp_path):
    """As `check`: when no file could be read, the errors alone (no empty worklist, no file written), exit 2."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1,', encoding="utf-8")
    proc = run("worklist", bad, "--trial", CRIT, *OPTIONS, cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert "bad.json: line 1 column 15: not valid JSON" in proc.stderr
    proc = run("worklist", bad, "--trial", CRIT, "--format", "csv", "-o", tmp_path / "w.csv", *OPTIONS, cwd=tmp_path)
    assert proc.returncode == 2 and not (tmp_path / "w.csv").exists()
