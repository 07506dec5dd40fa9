"""Issue 9: `screening lint` prints a summary per rule set: criteria encoded, drafted, review-only."""
from __future__ import annotations

from pathlib import Path

from screening.ctgov import StudyRecord, convert

from cli_helpers import run

ROOT = Path(__file__).resolve().parents[1]


def test_lint_summarises_encoded_drafted_and_review_only_criteria(tmp_path):
    rules = tmp_path / "mixed.crit"
    rules.write_text(
        'trial "T"\n'
        'inclusion I1 "adult" = age >= 18\n'
        'draft inclusion I2 "ANC" = ANC >= 1500/mm3\n'
        'inclusion I3 "consent" = review "not yet encoded: consent"\n'
        'exclusion E1 "judgement" = if known(fact x) then fact x else review "ask"\n'   # encoded: not only review
        'exclusion E2 "premise" = applies if sex is female: review "pregnancy"\n'       # encoded premise
        'draft exclusion E3 "draft review" = review "x"\n')                             # counted as drafted
    proc = run("lint", rules, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ok: {rules}: trial T, 6 criteria, 2 draft"
    assert f"{rules}: 6 criteria: 3 encoded, 2 drafted, 1 review-only" in proc.stderr


def test_lint_summary_of_an_imported_rule_set_matches_the_importer(tmp_path):
    text = ("Inclusion Criteria:\n\n- Age >= 18 years\n- Signed informed consent\n- ANC >= 1500/mm3\n\n"
            "Exclusion Criteria:\n\n- Pregnancy\n")
    result = convert(StudyRecord(nct_id="NCT00000009", title=None, criteria=text, minimum_age="18 Years"))
    rules = tmp_path / "NCT00000009.crit"
    rules.write_text(result.text, encoding="utf-8")
    proc = run("lint", rules, ROOT / "trials" / "NCT00659217.crit", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    drafted = len([c for c in result.criteria if c.draft])
    review = len([c for c in result.criteria if c.rule.startswith("review ")])
    assert (drafted, review) == (2, 2)
    assert f"{rules}: 5 criteria: 1 encoded, 2 drafted, 2 review-only" in proc.stderr
    assert "NCT00659217.crit: 10 criteria: 10 encoded, 0 drafted, 0 review-only" in proc.stderr
