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
    ("ECOG performance status of 0-2 (Phase Ib) or 0-1 (Phase II)", "ECOG performance status as a dated score"),
    ("Karnofsky >= 50% for patients > 16 years of age and Lansky >= 50 for patients =< 16 years of age",
     "Karnofsky/Lansky performance status"),
    ("Participation in any investigational drug study within 28 days", "investigational medication within N"),
    ("At least 4 weeks since prior myelosuppressive chemotherapy", "a washout"),
    ("Creatinine clearance > 50 mL/min by Cockcroft-Gault in patients over 65", "Cockcroft-Gault"),
    ("BMI >= 18 kg/m2 calculated from weight and height", "BMI, derived from weight and height"),
])
def test_lines_the_drafter_cannot_read_whole_stay_review_with_a_comment_naming_the_construct(line, construct):
    result = imported(f"Inclusion Criteria:\n\n- {line}\n")
    [c] = result.registry_lines
    assert not c.draft and c.rule.startswith("review ")
    assert c.comment.startswith("intended construct: ") and construct in c.comment
    assert "# intended construct: " in result.text
    compile_text(result.text, "hint.crit")


@pytest.mark.parametrize("line, rule", [
    ("History of stroke or intracranial hemorrhage within 6 months prior to the first dose of ibrutinib",
     "condition stroke within 6 months or condition intracranial_hemorrhage within 6 months or (condition "
     "intracranial_hemorrhage_unsure within 6 months and review \"is the head-injury record a traumatic intracranial "
     "haemorrhage, or a contusion or other injury only?\")"),
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
    "Core biopsy within 7 days prior to day 1 therapy",           # a procedure the lexicon does not hold
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
def test_the_measurement_script_checks_every_lab_draft_against_the_inventory(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ctgov_drafts.py"
    judge = tmp_path / "judge.jsonl"
    proc = subprocess.run([sys.executable, str(script), "--data", str(CTGOV), "--judge", str(judge)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "trials: 70 (35 annotated)" in proc.stdout
    auto = next(line for line in proc.stdout.splitlines() if line.startswith("lab drafts in annotated trials"))
    numbers = [int(n) for n in __import__("re").findall(r"\d+", auto)]
    drafts, right, to_read = numbers
    # the lab drafts with a subgroup, premise or alternative the inventory has no structured value for are read
    # by a person; the plain ones are checked automatically (112 of 159 on 2026-12-06)
    assert drafts == right + to_read and right >= 0.65 * drafts and right >= 100
    assert any(line.startswith("drafts in annotated trials") for line in proc.stdout.splitlines())
    # every draft compiles on its own, and none had to be replaced by review
    assert "drafts that do not compile alone: 0; drafts the writer replaced by review: 0" in proc.stdout
    # the drafts the automatic check does not accept are written for an independent reader
    rows = [json.loads(line) for line in judge.read_text(encoding="utf-8").splitlines()]
    listed = next(line for line in proc.stdout.splitlines() if line.startswith("drafts for an independent reader"))
    assert int(__import__("re").search(r"reader: (\d+)", listed)[1]) == len(rows) > 0
    assert {"nctid", "id", "section", "family", "text", "rule", "valuesets", "why_not_automatic", "verdict"} <= set(rows[0])
    assert all(r["verdict"] is None and r["rule"] and r["text"] for r in rows)
    assert {r["family"] for r in rows} >= {"history", "medications", "scores"}


@pytest.mark.parametrize("line, kind, rule", [
    ("Eastern Cooperative Oncology Group (ECOG) performance status 0-1", "inclusion", "ECOG <= 1"),
    ("ECOG Performance Status ≤ 2", "inclusion", "ECOG <= 2"),
    ("Eastern Cooperative Oncology Group (ECOG) performance status =< 1", "inclusion", "ECOG <= 1"),
    ("Performance status (Eastern Cooperative Oncology Group [ECOG]) ≤ 2.", "inclusion", "ECOG <= 2"),
    ("Have a performance status of 0 or 1 on the Eastern Cooperative Oncology Group (ECOG) performance scale",
     "inclusion", "ECOG <= 1"),
    ("Eastern Cooperative Oncology Group (ECOG) performance status grade 0, 1, or 2", "inclusion", "ECOG <= 2"),
    ("Zubrod performance status of 0-1 within 28 days prior to registration", "inclusion", "ECOG <= 1 within 28 days"),
    ("ECOG performance status 1-2 (Appendix A)", "inclusion", "ECOG between 1 and 2"),
    ("WHO performance status 0-1 at screening", "inclusion", "ECOG <= 1"),
    ("ECOG performance status >= 3", "exclusion", "ECOG >= 3"),
    ("Karnofsky Performance status ≥ 80% (see Appendix 2)", "inclusion", "Karnofsky >= 80 %"),
    ("Subject has a Karnofsky performance status (KPS) ≥ 70%.", "inclusion", "Karnofsky >= 70 %"),
    ("Karnofsky performance status 50-100%", "inclusion", "Karnofsky >= 50 %"),
    ("Lansky >= 50", "inclusion", "Lansky >= 50"),
    ("KPS < 60%", "exclusion", "Karnofsky < 60 %"),
])
def test_performance_status_is_drafted_as_a_dated_score(line, kind, rule):
    draft = draft_rule(line, kind)
    assert draft is not None and draft.rule == rule and draft.family == "scores"
    result = imported(f"{kind.title()} Criteria:\n\n- {line}\n")
    assert f"\nlab window {DEFAULT_LAB_WINDOW}\n" in result.text      # a score without a window takes the default
    trial = compile_text(result.text, "ps.crit")
    assert trial.criteria[0].draft


@pytest.mark.parametrize("line, kind", [
    ("Eastern Cooperative Oncology Group (ECOG) performance status ≥ 2.", "inclusion"),     # reads backwards
    ("ECOG performance status <= 1", "exclusion"),
    ("ECOG 2", "inclusion"),                                                              # a bare value
    ("ECOG 0, 2", "inclusion"),                                                           # not a run of values
    ("ECOG 0-6", "inclusion"),                                                            # off the scale
    ("ECOG 0-1%", "inclusion"),
    ("ECOG performance status =< 2 (Karnofsky >= 80%)", "inclusion"),       # the two floors are not one grade
    ("Patient has ECOG performance status of 0-2 (Phase Ib) or 0-1 (Phase II)", "inclusion"),
    ("Performance status of 0-2 on the ECOG Performance Scale and life expectancy > 3 months.", "inclusion"),
    ("ECOG performance status 0-1 (patients > 16 years of age)", "inclusion"),   # an age group for ECOG
    ("Performance status 0-1", "inclusion"),                                              # which scale?
    ("Patients who have performance status 0-1", "inclusion"),
    ("ECOG 0-1 for patients over 70", "inclusion"),
])
def test_performance_status_lines_with_more_than_the_score_stay_review(line, kind):
    assert draft_rule(line, kind) is None


@pytest.mark.parametrize("line, kind, rule", [
    ("Received an investigational agent within 4 weeks prior to enrollment", "exclusion",
     "investigational medication within 4 weeks"),
    ("Use of an investigational drug within 30 days of screening", "exclusion",
     "investigational medication within 30 days"),
    ("Treatment with investigational agents within the last 4 weeks.", "exclusion",
     "investigational medication within 4 weeks"),
    ("At least 30 days since prior investigational drugs", "inclusion",
     "not investigational medication within 30 days"),
    ("No investigational agents within 14 days prior to registration", "inclusion",
     "not investigational medication within 14 days"),
])
def test_investigational_agents_within_a_window_are_drafted(line, kind, rule):
    draft = draft_rule(line, kind)
    assert draft is not None and draft.rule == rule and draft.family == "investigational"
    result = imported(f"{kind.title()} Criteria:\n\n- {line}\n")
    assert "lab window" not in result.text
    trial = compile_text(result.text, "inv.crit")
    assert trial.criteria[0].draft


@pytest.mark.parametrize("line, kind", [
    ("Participation in any investigational drug study within 28 days prior to CNF2024 administration", "exclusion"),
    ("Use of an investigational agent, including an investigational anti-cancer agent, within 28 days or 5 "
     "half-lives, whichever is longer, prior to the first dose of investigational product.", "exclusion"),
    ("Concurrently receiving any other investigational agents while on study", "exclusion"),
    ("Chemotherapy or investigational drugs within 14 days prior to the first dose", "exclusion"),
    ("Received an investigational agent within 4 weeks prior to enrollment", "inclusion"),
])
def test_investigational_lines_with_more_than_the_window_stay_review(line, kind):
    assert draft_rule(line, kind) is None


def test_a_drafted_performance_score_is_evaluated_on_a_dated_result():
    result = imported("Inclusion Criteria:\n\n- ECOG performance status 0-1\n")
    trial = compile_text(result.text, "ecog.crit")
    def patient(value, day):
        return patient_from_document({"id": "p", "observations": [
            {"code": "LOINC:89247-1", "value": value, "date": day}]})
    as_of = date(2026, 11, 25)
    assert trial.screen(patient(1, "2026-11-10"), as_of).criterion("I1").verdict == "pass"
    assert trial.screen(patient(2, "2026-11-10"), as_of).criterion("I1").verdict == "fail"
    assert trial.screen(patient(1, "2026-09-01"), as_of).criterion("I1").verdict == "unknown"   # older than 28 days


@pytest.mark.parametrize("line, rule", [
    ("Creatinine clearance (CrCl) ≥ 15 mL/minute within 7 days prior to randomization, either measured or "
     "calculated using a standard formula (eg, Cockcroft and Gault).", "creatinine_clearance >= 15 mL/min within 7 days"),
    ("Creatinine clearance (CrCl) >= 50 ml/min within 14 days prior to registration as determined by 24-hour "
     "collection or estimated by Cockcroft-Gault formula", "creatinine_clearance >= 50 mL/min within 14 days"),
    ("Calculated creatinine clearance ≥ 30 mL/min using the Cockroft-gault equation", "creatinine_clearance >= 30 mL/min"),
])
def test_a_clearance_measured_or_by_cockcroft_gault_is_the_catalogue_clearance(line, rule):
    draft = draft_rule(line, "inclusion")
    assert draft is not None and draft.rule == rule
    compile_text(imported(f"Inclusion Criteria:\n\n- {line}\n").text, "crcl.crit")


@pytest.mark.parametrize("line", [
    "Creatinine clearance >= 60 mL/min, either measured or calculated by MDRD",       # not what the catalogue derives
    "eGFR >= 60 mL/min/1.73m2, either measured or calculated by Cockcroft-Gault",     # only after a clearance
])
def test_other_estimating_formulas_stay_review(line):
    assert draft_rule(line, "inclusion") is None
