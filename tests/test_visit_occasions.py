"""A per-visit test on several occasions: `(systolic_bp > 140 mmHg or diastolic_bp > 90 mmHg) on at least
3 occasions within 6 months`. Both engines (helpers.one() compares them)."""
from __future__ import annotations

import pytest

from screening import SourceError

from helpers import obs, one, patient, trial

SBP, DBP = "LOINC:8480-6", "LOINC:8462-4"
RULE = "(systolic_bp > 140 mmHg or diastolic_bp > 90 mmHg) on at least 3 occasions within 6 months"


def crit(rule: str = RULE):
    return trial(f'exclusion E1 "SBP > 140 or DBP > 90 on 3 occasions" = {rule}\n')


def bp(day, systolic=None, diastolic=None):
    out = []
    if systolic is not None:
        out.append(obs(SBP, systolic, "mm[Hg]", day=day))
    if diastolic is not None:
        out.append(obs(DBP, diastolic, "mm[Hg]", day=day))
    return out


def test_three_visits_meet_it():
    p = patient(observations=bp("2026-07-01", 150, 80) + bp("2026-08-01", 130, 95) + bp("2026-09-01", 145, 95)
                + bp("2026-10-01", 120, 80))
    c = one(crit(), p)
    assert c.verdict == "fail"  # exclusion met
    assert "3 of 4 occasions meet it" in c.evidence[0].detail


def test_ruled_out_by_a_normal_visit_after_the_last_high_one():
    p = patient(observations=bp("2026-07-01", 150, 80) + bp("2026-08-01", 130, 95) + bp("2026-10-01", 120, 80))
    assert one(crit(), p).verdict == "pass"


def test_too_few_and_no_normal_repeat_is_unknown():
    p = patient(observations=bp("2026-07-01", 150, 80) + bp("2026-08-01", 130, 95))
    c = one(crit(), p)
    assert c.verdict == "unknown"
    assert any("a repeat visit" in m for m in c.missing)


def test_a_visit_missing_one_value_counts_when_the_other_decides():
    # or: SBP 150 alone decides the visit; SBP 130 alone does not (DBP not measured)
    p = patient(observations=bp("2026-07-01", 150) + bp("2026-08-01", 150) + bp("2026-09-01", 130))
    c = one(crit(), p)
    assert c.verdict == "unknown"
    assert any("diastolic_bp on 2026-09-01" in m for m in c.missing)
    p = patient(observations=bp("2026-07-01", 150) + bp("2026-08-01", 150) + bp("2026-09-01", 150))
    assert one(crit(), p).verdict == "fail"


def test_results_outside_the_window_or_after_as_of_are_not_occasions():
    p = patient(observations=bp("2026-01-01", 150, 95) + bp("2026-07-01", 150, 95) + bp("2026-08-01", 150, 95)
                + bp("2026-12-01", 150, 95))
    assert one(crit(), p).verdict == "unknown"


def test_partial_dates_are_unknown_occasions():
    p = patient(observations=bp("2026-07-01", 150, 95) + bp("2026-08-01", 150, 95) + bp("2026-09", 150, 95))
    c = one(crit(), p)
    assert c.verdict == "unknown"
    assert any("known only to the month" in m for m in c.missing)


def test_two_readings_of_one_visit_that_disagree_are_unknown():
    p = patient(observations=bp("2026-07-01", 150, 95) + bp("2026-08-01", 150, 95)
                + bp("2026-09-01", 150, 80) + bp("2026-09-01", 120, 80))
    c = one(crit(), p)
    assert c.verdict == "unknown"


def test_no_results_is_unknown():
    c = one(crit(), patient(observations=[]))
    assert c.verdict == "unknown" and c.missing == ["results of systolic_bp, diastolic_bp within 6 months"]


@pytest.mark.parametrize("rule", [
    "(any systolic_bp > 140 mmHg or diastolic_bp > 90 mmHg) on at least 3 occasions",
    "(systolic_bp > 140 mmHg within 1 month or diastolic_bp > 90 mmHg) on at least 3 occasions",
    "(systolic_bp > 140 mmHg or fact hypertension) on at least 3 occasions",
    "(systolic_bp > 140 mmHg or diastolic_bp > 90 mmHg) on at least 0 occasions",
])
def test_compile_errors(rule):
    with pytest.raises(SourceError) as info:
        crit(rule)
    assert info.value.first.span.line == 2


def test_new_atoms_in_rule_set_coverage():
    """`screening test --coverage` analyses rule sets using the issue-9 forms (it once raised on unknown nodes)."""
    from datetime import date
    from types import SimpleNamespace

    from screening import compile_text
    from screening.testing.coverage import TrialCoverage

    trial = compile_text('trial "T"\nvalueset chemo "c" = ATC:L01\n'
                         f'exclusion E1 "e" = {RULE}\n'
                         'inclusion I1 "i" = mean QTcF of the latest 3 <= 470 ms\n'
                         'inclusion I2 "j" = at most 2 courses of medication chemo\n'
                         'exclusion E2 "k" = investigational medication within 4 weeks\n'
                         'inclusion I3 "l" = medication chemo dose stable for at least 4 weeks\n'
                         'exclusion E3 "m" = medication chemo within 3 days before procedure CPT:33533\n', "p.crit")
    p = patient(observations=bp("2026-07-01", 150, 95), medications=[])
    case = SimpleNamespace(nodeid="case", patient=p, as_of=date(2026, 11, 25))
    tc = TrialCoverage(trial, "p.crit")
    tc.add(case, trial.screen(p, case.as_of))
    for cid, seen in tc.verdicts.items():
        assert set(seen) <= tc.possible_verdicts[cid]
