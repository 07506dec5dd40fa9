"""Issue 9: every drafted lab rule has a window (the text's, else the rule set's `lab window`);
constructs the language does not have yet stay `review` with a comment naming them; dated
events with value sets the importer is sure of are drafted."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from screening import compile_text, patient_from_document
from screening.ctgov import StudyRecord, convert, draft_rule
from screening.ctgov.render import DEFAULT_LAB_WINDOW

CTGOV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ctgov"
SAMPLE = CTGOV / "criteria_sample.jsonl"
needs_ctgov = pytest.mark.skipif(not CTGOV.is_dir(), reason=f"no ClinicalTrials.gov data at {CTGOV}")


def imported(text: str):
    return convert(StudyRecord(nct_id="NCT00000009", title=None, criteria=text))


def test_a_lab_draft_without_a_window_gets_the_default_lab_window():
    result = imported("Inclusion Criteria:\n\n- ANC >= 1500/mm3\n- Platelets >= 100 x 10^9/L within 14 days\n")
    assert f"\nlab window {DEFAULT_LAB_WINDOW}\n" in result.text
    assert "# lab window: an importer default, not the protocol's." in result.text
    trial = compile_text(result.text, "w.crit")
    assert (trial.checked.lab_window.amount, trial.checked.lab_window.unit) == (28, "days")
    old = patient_from_document({"id": "p", "observations": [
        {"code": "LOINC:751-8", "value": 2000, "unit": "/mm3", "date": "2026-09-01"}]})
    result_anc = trial.screen(old, date(2026, 11, 25)).criterion("I1")
    # a result older than 28 days does not count: unknown, and the window is named
    assert (result_anc.verdict, result_anc.missing) == ("unknown", ["ANC result within 28 days"])
    recent = patient_from_document({"id": "p", "observations": [
        {"code": "LOINC:751-8", "value": 2000, "unit": "/mm3", "date": "2026-11-10"}]})
    assert trial.screen(recent, date(2026, 11, 25)).criterion("I1").verdict == "pass"


def test_the_text_window_wins_and_at_screening_means_the_default():
    assert draft_rule("ANC >= 1500/mm3 within 14 days prior to registration", "inclusion").rule == \
        "ANC >= 1500/mm3 within 14 days"
    draft = draft_rule("Hemoglobin >= 9 g/dL at screening", "inclusion")
    assert draft.rule == "hemoglobin >= 9 g/dL" and draft.family == "labs"


def test_no_lab_window_without_a_lab_draft():
    result = imported("Inclusion Criteria:\n\n- Age >= 18 years\n- Consent\n")
    assert "lab window" not in result.text


@pytest.mark.parametrize("line, construct", [
    ("ECOG performance status 0-1.", "ECOG performance status as a dated observation"),
    ("Karnofsky performance status >= 70%", "Karnofsky/Lansky performance status"),
    ("At least 4 weeks since prior chemotherapy", "a washout"),
    ("Creatinine clearance > 50 mL/min by Cockcroft-Gault in patients over 65", "Cockcroft-Gault"),
    ("BMI >= 18 kg/m2 calculated from weight and height", "BMI derived from weight and height"),
])
def test_lines_needing_constructs_not_in_the_language_stay_review_with_a_comment(line, construct):
    result = imported(f"Inclusion Criteria:\n\n- {line}\n")
    [c] = result.registry_lines
    assert not c.draft and c.rule.startswith("review ")
    assert c.comment.startswith("intended construct: ") and construct in c.comment
    assert "# intended construct: " in result.text
    compile_text(result.text, "hint.crit")


@pytest.mark.parametrize("line, rule", [
    ("History of stroke or intracranial hemorrhage within 6 months prior to the first dose of ibrutinib",
     "condition stroke within 6 months or condition intracranial_hemorrhage within 6 months"),
    ("History of diabetes ketoacidosis (DKA) within 24 weeks", "condition diabetic_ketoacidosis within 24 weeks"),
    ("Has a history of myocardial infarction within 3 months", "condition myocardial_infarction within 3 months"),
])
def test_history_of_events_with_sure_value_sets_is_drafted(line, rule):
    draft = draft_rule(line, "exclusion")
    assert draft is not None and draft.rule == rule and draft.family == "history"
    result = imported(f"Exclusion Criteria:\n\n- {line}\n")
    trial = compile_text(result.text, "h.crit")
    assert trial.criteria[0].draft


@pytest.mark.parametrize("line", [
    "History of deep vein thrombosis within 6 months",           # no value set the importer is sure of
    "History of malignancy within the past 5 years",              # "other" malignancy in a cancer trial?
    "Major surgery within 4 weeks prior to the first dose",       # a procedure: no standard code system here
])
def test_history_without_a_sure_value_set_stays_review(line):
    assert draft_rule(line, "exclusion") is None


@needs_ctgov
def test_every_drafted_lab_rule_of_the_sample_has_a_window():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    labs = 0
    for row in rows:
        result = convert(StudyRecord(nct_id=row["nctid"], title=None, criteria=row["criteria"]))
        trial = compile_text(result.text, f"{row['nctid']}.crit")
        lab_drafts = [c for c in result.drafted if c.family == "labs"]
        labs += len(lab_drafts)
        if lab_drafts:
            assert f"\nlab window {DEFAULT_LAB_WINDOW}\n" in result.text, row["nctid"]
            assert trial.checked.lab_window.amount == 28
    assert labs > 100


@needs_ctgov
def test_the_measurement_script_checks_every_lab_draft_against_the_inventory():
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ctgov_drafts.py"
    proc = subprocess.run([sys.executable, str(script), "--data", str(CTGOV)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "trials: 70 (35 annotated)" in proc.stdout
    auto = next(line for line in proc.stdout.splitlines() if line.startswith("drafts in annotated trials"))
    numbers = [int(n) for n in __import__("re").findall(r"\d+", auto)]
    drafts, right, to_read = numbers
    assert drafts == right + to_read and right >= 0.8 * drafts
