"""Counting records and treatment courses: `at most 2 courses of medication chemo`,
`at least 2 condition mi within 5 years`. Both engines (helpers.one() compares them)."""
from __future__ import annotations

import pytest

from screening import SourceError

from helpers import one, patient, trial

VS = ('valueset chemo "chemotherapy" = RXNORM:3002, RXNORM:40048, RXNORM:56946\n'
      'valueset mi "myocardial infarction" = ICD10:I21\n')


def crit(rule: str):
    return trial(VS + f'exclusion E1 "registry text" = {rule}\n')


def med(code, start, **extra):
    return {"code": code, "start": start, "status": "completed", **extra}


def test_regimens_counted_as_distinct_start_dates():
    # "more than 2 prior chemotherapy regimens": carboplatin + paclitaxel started together are one course
    p = patient(medications=[med("RXNORM:40048", "2024-01-10"), med("RXNORM:56946", "2024-01-10"),
                             med("RXNORM:3002", "2025-03-01")])
    assert one(crit("at least 3 courses of medication chemo"), p).verdict == "pass"  # false: 2 courses
    assert one(crit("at least 2 courses of medication chemo"), p).verdict == "fail"
    assert one(crit("at least 3 medication chemo"), p).verdict == "fail"  # three records


def test_at_most():
    p = patient(medications=[med("RXNORM:40048", "2024-01-10"), med("RXNORM:3002", "2025-03-01")])
    c = one(trial(VS + 'inclusion I1 "No more than 2 prior regimens" = at most 2 courses of medication chemo\n'), p)
    assert c.verdict == "pass"
    assert "2 courses of medication in chemo" in c.evidence[0].detail


def test_absent_list_is_unknown():
    c = one(crit("at least 2 courses of medication chemo"), patient())
    assert c.verdict == "unknown" and c.missing == ["medications (not provided)"]


def test_empty_list_counts_zero():
    assert one(crit("at least 1 courses of medication chemo"), patient(medications=[])).verdict == "pass"


def test_partial_start_dates_may_be_one_course_or_two():
    p = patient(medications=[med("RXNORM:40048", "2024-01"), med("RXNORM:56946", "2024-01-10")])
    c = one(crit("at least 2 courses of medication chemo"), p)
    assert c.verdict == "unknown"
    # a partial date far from the others is a course of its own
    p = patient(medications=[med("RXNORM:40048", "2019"), med("RXNORM:56946", "2024-01-10")])
    assert one(crit("at least 2 courses of medication chemo"), p).verdict == "fail"


def test_unknown_records_may_count():
    p = patient(conditions=[{"code": "ICD10:I21.0", "onset": "2024-02-01"},
                            {"code": "ICD10:I21.4", "onset": "2025-02-01", "verification": "provisional"}])
    c = one(crit("at least 2 condition mi within 5 years"), p)
    assert c.verdict == "unknown"
    assert any("provisional" in m for m in c.missing)
    assert one(crit("at least 1 condition mi within 5 years"), p).verdict == "fail"


def test_window_applies_per_record():
    p = patient(conditions=[{"code": "ICD10:I21.0", "onset": "2010-02-01"}, {"code": "ICD10:I21.4", "onset": "2025-02-01"}])
    assert one(crit("at least 2 condition mi within 5 years"), p).verdict == "pass"
    assert one(crit("at least 2 condition mi"), p).verdict == "fail"


def test_courses_only_for_medications():
    with pytest.raises(SourceError) as info:
        crit("at least 2 courses of condition mi")
    assert "treatment courses of a medication" in info.value.first.message
