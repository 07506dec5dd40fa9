"""The trial's own index date (issue 9): "within 14 days before the first dose of study drug".

`index date first_dose "first dose of study drug"` in the header names the trial's index event, which no
patient record holds; the as-of date stands for it (screen as of the planned date), and windows are
anchored at it by name. As-of date 2026-11-25; every value is asserted on both engines (helpers.one).
"""
import pytest

from screening import SourceError

from helpers import AS_OF, one, patient, trial

HEADER = 'trial "T-1"\nindex date first_dose "first dose of study drug"\nlab window 90 days\n'
SETS = '''valueset chemo "chemotherapy" = ATC:L01
valueset live_vaccine "live attenuated vaccine" = CVX:03, CVX:21
'''
# NCT01476137: "... anti-cancer therapy including investigational drugs within 14 days prior to the first dose"
CHEMO = trial(SETS + 'exclusion E1 "chemotherapy within 14 days prior to the first dose" = '
              'medication chemo within 14 days before first_dose\n', HEADER)
# NCT02966730: "Vaccinated with live, attenuated vaccines within 4 weeks of first dose of study drug"
VACCINE = trial(SETS + 'exclusion E2 "live vaccine within 4 weeks of first dose" = '
                'immunization live_vaccine within 4 weeks before first_dose\n', HEADER)
ANC = trial('inclusion I1 "ANC within 14 days before the first dose" = ANC >= 1500/mm3 within 14 days before first_dose\n',
            HEADER)
LEAD = trial('inclusion I1 "ANC 10 to 14 days before the first dose" = '
             'any ANC >= 1500/mm3 between 10 and 14 days before first_dose\n', HEADER)


def _chemo(start, end):
    return {"code": "ATC:L01XA01", "start": start, "end": end, "status": "completed"}


@pytest.mark.parametrize("start,end,value", [
    ("2026-10-01", "2026-11-11", True),    # ended on the window's first day (14 days before 2026-11-25)
    ("2026-10-01", "2026-11-10", False),   # ended 15 days before
    ("2026-11-24", "2026-11-24", True),
    ("2026-11", "2026-11", None),          # November: it may have started after the as-of date
    ("2026-10", "2026-10", False),         # October ended before the window's first day
])
def test_a_washout_before_the_first_dose(start, end, value):
    c = one(CHEMO, patient(medications=[_chemo(start, end)]))
    assert c.value is value


def test_the_explanation_names_the_index_date_and_the_date_that_stands_for_it():
    c = one(CHEMO, patient(medications=[_chemo("2026-11-01", "2026-11-20")]))
    assert c.evidence[0].detail == ("medication ATC:L01XA01 (from 2026-11-01, to 2026-11-20, completed) is within "
                                    "14 days before the first dose of study drug (index date, as of 2026-11-25)")
    c = one(CHEMO, patient(medications=[]))
    assert (c.value, c.evidence[0].detail) == (False, "no medication in chemotherapy within 14 days before the first "
                                                      "dose of study drug (the index date) recorded")
    assert one(CHEMO, patient()).missing == ["medications (not provided)"]


def test_the_as_of_date_stands_for_the_index_date():
    p = patient(medications=[_chemo("2026-10-01", "2026-11-11")])
    assert one(CHEMO, p).value is True
    assert one(CHEMO, p, AS_OF.replace(day=26)).value is False  # a day later the course is 15 days before


def test_an_immunization_and_a_lab_before_the_first_dose():
    assert one(VACCINE, patient(immunizations=[{"code": "CVX:03", "date": "2026-11-01"}])).value is True
    assert one(VACCINE, patient(immunizations=[{"code": "CVX:03", "date": "2026-10-27"}])).value is False
    anc = {"code": "LOINC:751-8", "value": 2000, "unit": "/mm3"}
    assert one(ANC, patient(observations=[{**anc, "date": "2026-11-20"}])).value is True
    c = one(ANC, patient(observations=[{**anc, "date": "2026-11-01"}]))
    assert c.missing == ["ANC within 14 days before the first dose of study drug (index date, as of 2026-11-25): "
                         "no ANC result from 2026-11-11 to 2026-11-25"]
    # the window 10 to 14 days before: 2026-11-11 .. 2026-11-15
    assert one(LEAD, patient(observations=[{**anc, "date": "2026-11-13"}])).value is True
    assert one(LEAD, patient(observations=[{**anc, "date": "2026-11-20"}])).value is None


def test_the_checked_rule_set_carries_the_index_date():
    assert (CHEMO.checked.index.name, CHEMO.checked.index.description) == ("first_dose", "first dose of study drug")
    assert trial('inclusion I1 "x" = age >= 18\n').checked.index is None


@pytest.mark.parametrize("rule,message", [
    ("medication chemo within 2 weeks after first_dose", "nothing after it is on record"),
    ("medication chemo after first_dose", "nothing after it is on record"),
    ("medication chemo from 2 days before to 2 days after first_dose", "nothing after it is on record"),
    ("medication chemo within 4 weeks after the end of first_dose", "it has no end"),
    ("medication chemo between 14 and 10 days before first_dose", "the first amount must be the smaller one"),
])
def test_windows_the_index_date_cannot_answer_are_positioned_errors(rule, message):
    with pytest.raises(SourceError) as info:
        trial(SETS + f'exclusion E1 "x" = {rule}\n', HEADER)
    (problem,) = info.value.diagnostics
    assert message in problem.message
    assert problem.span.line == 6


def test_a_name_used_as_an_anchor_without_the_declaration_gets_a_hint():
    with pytest.raises(SourceError) as info:
        trial(SETS + 'exclusion E1 "x" = medication chemo within 14 days before first_dose\n')
    (problem,) = info.value.diagnostics
    assert "unknown name `first_dose`" in problem.message
    assert 'index date first_dose "first dose of study drug"' in problem.hint


@pytest.mark.parametrize("header,message", [
    ('trial "T"\nindex date a "x"\nindex date b "y"\n', "a rule set has one index date"),
    ('trial "T"\nindex date d "  "\n', "needs a description"),
    ('trial "T"\nindex date chemo "first dose"\n', "already a defined name or a value set"),
])
def test_declaration_problems(header, message):
    with pytest.raises(SourceError) as info:
        trial(SETS + 'inclusion I1 "x" = age >= 18\n', header)
    assert any(message in d.message for d in info.value.diagnostics)


@pytest.mark.parametrize("marker", ["NCT02267707", "NCT02888665", "NCT01476137"])
def test_the_documented_examples_compile(marker):
    """The registry examples of docs/language.md for results on record, one-sided windows and the index date."""
    import re

    from helpers import ROOT

    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```\n(.*?)```", text, re.S) if marker in b]
    if block.startswith("trial "):
        header, _, body = block.partition("valueset ")
        compiled = trial("valueset " + body, header)
    else:
        compiled = trial(block)
    assert compiled.criteria


def test_an_index_date_no_window_uses_is_a_lint_warning():
    unused = trial('inclusion I1 "x" = age >= 18\n', HEADER)
    (warning,) = [w for w in unused.warnings if w.code == "unused-index"]
    assert warning.message == "index date first_dose is declared and no window is anchored at it"
    assert (warning.span.line, warning.span.column) == (2, 1)
    assert not [w for w in CHEMO.warnings if w.code == "unused-index"]
