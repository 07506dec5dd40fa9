"""Issue 9: the splitter keeps alternatives and counted lists together; notes, sub-headings and
registry boilerplate are not criteria (kept as comments). Each reported breakage is tested with
a faithful excerpt, in both layouts the registry publishes (API v2 Markdown, legacy text block)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from screening.compile import compile_text
from screening.ctgov import StudyRecord, convert, draft_rule, split_criteria
from screening.ctgov.split import split_document

CTGOV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ctgov"
SAMPLE = CTGOV / "criteria_sample.jsonl"
needs_ctgov = pytest.mark.skipif(not CTGOV.is_dir(), reason=f"no ClinicalTrials.gov data at {CTGOV}")

# An HCV treatment trial (API v2 Markdown): the reported breakages one to three.
MARKDOWN = """Inclusion Criteria:

* Chronic HCV genotype 1 infection for at least 6 months
* Treatment-naive; or
* Treatment-experienced (prior treatment with pegylated interferon and ribavirin)
* Platelets >= 90,000/mm3

Exclusion Criteria:

* Decompensated liver disease, defined as two or more of the following:
  * Total bilirubin > 2 mg/dL
  * Albumin < 3.5 g/dL
  * INR > 1.7
* Pregnant or breastfeeding

NOTE: Other protocol defined Inclusion/Exclusion criteria may apply.
"""

LEGACY = """
        Inclusion Criteria:

          -  Chronic HCV genotype 1 infection for at least 6 months

          -  Treatment-naive; or

          -  Treatment-experienced (prior treatment with pegylated interferon and ribavirin)

        Exclusion Criteria:

          -  Decompensated liver disease, defined as two or more of:

               -  bilirubin > 2 mg/dL

               -  albumin < 3.5 g/dL

               -  INR > 1.7

          -  Pregnant or breastfeeding

          -  Note: other criteria may apply
"""


def ids_and_texts(text):
    return [(b.ident, b.text) for b in split_criteria(text)]


@pytest.mark.parametrize("text", [MARKDOWN, LEGACY], ids=["markdown", "legacy"])
def test_treatment_naive_or_experienced_is_one_inclusion(text):
    bullets = split_criteria(text)
    inclusions = [b for b in bullets if b.section == "inclusion"]
    alternative = [b for b in inclusions if "Treatment-naive" in b.text]
    assert len(alternative) == 1
    assert "Treatment-naive; or" in alternative[0].text and "Treatment-experienced" in alternative[0].text
    assert not any(b.text.startswith("Treatment-experienced") for b in bullets)


@pytest.mark.parametrize("text", [MARKDOWN, LEGACY], ids=["markdown", "legacy"])
def test_two_or_more_of_a_list_is_one_exclusion_with_its_items(text):
    exclusions = [b for b in split_criteria(text) if b.section == "exclusion"]
    assert len(exclusions) == 2
    first = exclusions[0]
    assert first.text.startswith("Decompensated liver disease, defined as two or more of")
    for item in ("bilirubin > 2 mg/dL", "lbumin < 3.5 g/dL", "INR > 1.7"):
        assert item in first.text
    assert first.context is None


@pytest.mark.parametrize("text", [MARKDOWN, LEGACY], ids=["markdown", "legacy"])
def test_other_criteria_may_apply_is_a_comment_not_an_exclusion(text):
    bullets, notes = split_document(text)
    assert not any("may apply" in b.text for b in bullets)
    assert [(n.section, n.kind) for n in notes] == [("exclusion", "boilerplate")]
    result = convert(StudyRecord(nct_id="NCT00000009", title="HCV", criteria=text))
    trial = compile_text(result.text, "hcv.crit")
    assert [c.id for c in trial.criteria if c.kind == "exclusion"] == ["E1", "E2"]
    assert "# registry boilerplate (not a criterion): " in result.text
    assert not any("may apply" in c.text for c in trial.criteria)


def test_the_markdown_record_imports_with_the_alternatives_in_the_registry_text():
    result = convert(StudyRecord(nct_id="NCT00000009", title="HCV", criteria=MARKDOWN))
    rules = {c.id: c for c in compile_text(result.text, "hcv.crit").criteria}
    assert set(rules) == {"I1", "I2", "I3", "E1", "E2"}
    assert rules["I2"].text == ("Treatment-naive; or * Treatment-experienced (prior treatment with pegylated "
                                "interferon and ribavirin)")
    assert rules["I2"].rule_text.startswith("review ")
    assert rules["E1"].rule_text.startswith("review ")          # a count of labs: not drafted
    assert rules["I3"].draft                                   # the line after the group is untouched


@pytest.mark.parametrize("header, kept", [
    ("Two or more of the following:", True),
    ("at least 2 of the following:", True),
    ("Decompensated cirrhosis (3 or more of these):", True),
    ("None of the following:", True),
    ("All of the following:", True),                            # an exclusion: a joint condition
    ("Any of the following laboratory abnormalities:", False),  # an exclusion: "or" = separate exclusions
    ("Patients aged 18 years of age:", False),
])
def test_counted_lists_in_an_exclusion_stay_together(header, kept):
    text = f"Exclusion Criteria:\n\n* {header}\n  * ANC < 1000/mm3\n  * Platelets < 50,000/mm3\n"
    exclusions = split_criteria(text)
    assert (len(exclusions) == 1) == kept, exclusions


def test_all_of_the_following_in_an_inclusion_is_still_split():
    text = "Inclusion Criteria:\n\n* Adequate organ function, defined as all of the following:\n" \
           "  * ANC >= 1500/mm3\n  * Platelets >= 100,000/mm3\n"
    assert [b.ident for b in split_criteria(text)] == ["I1", "I2"]


def test_a_line_starting_with_or_joins_the_line_before():
    text = "Inclusion Criteria:\n\n- Creatinine <= 1.5 mg/dL\n- OR creatinine clearance >= 60 mL/min\n- Consent\n"
    assert ids_and_texts(text) == [("I1", "Creatinine <= 1.5 mg/dL - OR creatinine clearance >= 60 mL/min"),
                                   ("I2", "Consent")]


def test_joined_alternatives_of_labs_are_drafted_as_or():
    text = ("Inclusion Criteria:\n\n- Acceptable renal function:\n  - Serum creatinine ≤ 1.5 times ULN, OR\n"
            "  - Calculated creatinine clearance ≥ 50 mL/min (Cockcroft-Gault formula)\n")
    result = convert(StudyRecord(nct_id="NCT00000009", title=None, criteria=text))
    [line] = result.registry_lines
    assert line.draft and line.rule == "creatinine <= 1.5 x ULN or creatinine_clearance >= 50 mL/min"


def test_a_line_ending_in_and_joins_the_next_only_in_an_exclusion():
    inclusion = "Inclusion Criteria:\n\n- ANC >= 1500/mm3, and\n- Platelets >= 100,000/mm3\n"
    assert [b.ident for b in split_criteria(inclusion)] == ["I1", "I2"]
    exclusion = "Exclusion Criteria:\n\n- Diabetes, and\n- HbA1c > 9%\n"
    assert ids_and_texts(exclusion) == [("E1", "Diabetes, and - HbA1c > 9%")]


def test_a_note_qualifies_the_criterion_before_it():
    text = ("Exclusion Criteria:\n\n- History of another malignancy.\n- Note: Subjects who have been disease-free "
            "for 5 years are eligible.\n- Pregnancy\n")
    assert ids_and_texts(text) == [
        ("E1", "History of another malignancy. Note: Subjects who have been disease-free for 5 years are eligible."),
        ("E2", "Pregnancy")]


def test_a_note_with_nothing_before_it_and_sub_headings_are_comments():
    text = ("Inclusion Criteria:\n\nNote: Informed consent may be obtained before the screening window.\n\n"
            "Target Disease\n\n- Age >= 18 years\n\nLaboratory:\n\nExclusion Criteria:\n\n- Pregnancy\n")
    bullets, notes = split_document(text)
    assert [b.text for b in bullets] == ["Age >= 18 years", "Pregnancy"]
    assert [(n.kind, n.after) for n in notes] == [("note", None), ("header", None), ("header", "I1")]
    result = convert(StudyRecord(nct_id="NCT00000009", title=None, criteria=text))
    lines = result.text.splitlines()
    start = lines.index("# ---- inclusion criteria")
    assert lines[start + 1] == ("# registry note (not a criterion): Note: Informed consent may be obtained before "
                                "the screening window.")
    assert lines[start + 2] == "# registry sub-heading (not a criterion): Target Disease"
    assert "# registry sub-heading (not a criterion): Laboratory:" in lines
    compile_text(result.text, "notes.crit")


def test_comments_cannot_smuggle_control_or_direction_characters():
    text = "Inclusion Criteria:\n\n- Age >= 18 years\n\nNOTE: Other criteria may apply \u202e\x1b[31m.\n"
    result = convert(StudyRecord(nct_id="NCT00000009", title=None, criteria=text))
    assert "\u202e" not in result.text and "\x1b" not in result.text
    compile_text(result.text, "x.crit")


@needs_ctgov
def test_no_sample_criterion_is_a_note_or_boilerplate_alone():
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = 0
    for row in rows:
        bullets, notes = split_document(row["criteria"])
        for b in bullets:
            assert not b.text.lower().startswith("note"), (row["nctid"], b.ident, b.text)
            assert "criteria may apply" not in b.text.lower(), (row["nctid"], b.ident)
        found += sum(n.kind == "boilerplate" for n in notes)
    assert found >= 2


def test_any_of_the_following_without_a_colon_splits_in_an_exclusion():
    """NCT02966730: "Any of the following abnormalities" with no colon over its list; each item excludes."""
    text = """Exclusion Criteria:

* Any of the following abnormalities
  * Absolute neutrophil count (ANC) <750 cells/mm^3 (0.75 x 10^9/L)
  * Creatinine clearance (CrCl) <30mL/min
"""
    bullets = split_criteria(text)
    assert [b.text for b in bullets] == ["Absolute neutrophil count (ANC) <750 cells/mm^3 (0.75 x 10^9/L)",
                                         "Creatinine clearance (CrCl) <30mL/min"]
    assert {b.context for b in bullets} == {"Any of the following abnormalities"}
    result = convert(StudyRecord(nct_id="NCT02966730", title=None, criteria=text))
    assert [c.rule for c in result.drafted] == ["ANC < 750/mm3", "creatinine_clearance < 30 mL/min"]
    # in an inclusion the same header offers a choice: kept whole
    inclusion = split_criteria(text.replace("Exclusion", "Inclusion"))
    assert len(inclusion) == 1
