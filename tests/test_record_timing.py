"""Timing of a record: `started/stopped/diagnosed/onset/performed ... ago`, `for ...`, `unchanged for ...`.

As-of date 2026-11-25 throughout. Every verdict is asserted on both engines (helpers.one checks
that the fast path agrees with the explaining interpreter).
"""
import pytest

from screening import SourceError

from helpers import one, patient, trial

STARTED = trial('inclusion I1 "On metformin started at least 4 weeks before screening" = '
                'medication ATC:A10BA02 started at least 4 weeks ago\n')
STOPPED = trial('inclusion I1 "Prior chemotherapy stopped at least 14 days ago" = '
                'medication ATC:L01 stopped at least 14 days ago\n')
DIAGNOSED = trial('inclusion I1 "Type 2 diabetes diagnosed more than 5 years ago" = '
                  'condition ICD10:E11 diagnosed more than 5 years ago\n')
RECENT = trial('inclusion I1 "Diabetes diagnosed less than 5 years ago" = '
               'condition ICD10:E11 diagnosed less than 5 years ago\n')
TAKEN = trial('inclusion I1 "Taking metformin for more than 1 month" = medication ATC:A10BA02 for more than 1 month\n')
SHORT = trial('inclusion I1 "Metformin for less than 1 month" = medication ATC:A10BA02 for less than 1 month\n')
STABLE = trial('inclusion I1 "On a stable dose of metformin for at least 3 months" = '
               'medication ATC:A10BA02 unchanged for at least 3 months\n')
PERFORMED = trial('exclusion E1 "Major surgery less than 28 days before screening" = '
                  'procedure SNOMED:387713003 performed less than 28 days before screening\n')


def _med(code="ATC:A10BA02", **fields):
    return patient(medications=[{"code": code, **fields}])


def _dm(**fields):
    return patient(conditions=[{"code": "ICD10:E11.9", **fields}])


# ---------------------------------------------------------------- started ... ago
def test_started_at_least_4_weeks_ago_is_inclusive_at_the_cutoff():
    # 4 weeks before 2026-11-25 is 2026-10-28
    assert one(STARTED, _med(start="2026-10-28", status="active")).value is True
    assert one(STARTED, _med(start="2026-10-29", status="active")).value is False
    assert one(STARTED, _med(start="2025-01-01", status="active")).verdict == "pass"


def test_a_start_known_to_the_month_is_unknown_only_when_the_month_straddles_the_cutoff():
    c = one(STARTED, _med(start="2026-10", status="active"))
    assert (c.verdict, c.value) == ("unknown", None)
    assert c.missing == ["medication ATC:A10BA02: start date 2026-10 does not decide 'started at least 4 weeks ago'"]
    assert one(STARTED, _med(start="2026-09", status="active")).value is True
    assert one(STARTED, _med(start="2026-11", status="active")).value is False


def test_a_missing_start_date_is_unknown_and_named():
    c = one(STARTED, _med(status="active"))
    assert c.value is None
    assert c.missing == ["medication ATC:A10BA02: start date not recorded (needed for 'started at least 4 weeks ago')"]


def test_missing_and_empty_medication_lists():
    assert one(STARTED, patient()).missing == ["medications (not provided)"]
    assert one(STARTED, patient(medications=[])).value is False


def test_before_screening_means_ago():
    same = trial('inclusion I1 "x" = medication ATC:A10BA02 started at least 4 weeks before screening\n')
    for start in ("2026-10-28", "2026-10-29", "2026-10"):
        assert one(same, _med(start=start)).value is one(STARTED, _med(start=start)).value


# ---------------------------------------------------------------- stopped ... ago (washouts)
def test_stopped_at_least_14_days_ago():
    # 14 days before 2026-11-25 is 2026-11-11
    assert one(STOPPED, _med("ATC:L01XA01", start="2026-06-01", end="2026-11-11")).value is True
    assert one(STOPPED, _med("ATC:L01XA01", start="2026-06-01", end="2026-11-12")).value is False


def test_an_ongoing_medication_has_not_stopped():
    c = one(STOPPED, _med("ATC:L01XA01", start="2026-06-01", status="active"))
    assert (c.verdict, c.value) == ("fail", False)
    # an end date after the as-of date: still going on
    assert one(STOPPED, _med("ATC:L01XA01", start="2026-06-01", end="2026-12-31")).value is False


def test_no_end_date_is_unknown_whether_the_status_says_stopped_or_nothing():
    c = one(STOPPED, _med("ATC:L01XA01", start="2026-06-01", status="completed"))
    assert c.value is None
    assert c.missing == ["medication ATC:L01XA01: end date not recorded (status completed; "
                         "needed for 'stopped at least 14 days ago')"]
    c = one(STOPPED, _med("ATC:L01XA01", start="2026-06-01"))
    assert c.value is None
    assert "status and end date not recorded" in c.missing[0]


def test_a_partial_end_date_decides_only_when_its_whole_range_does():
    assert one(STOPPED, _med("ATC:L01XA01", start="2026-06-01", end="2026-11")).value is None
    assert one(STOPPED, _med("ATC:L01XA01", start="2026-06-01", end="2026-10")).value is True
    # "2026" might still include days after the as-of date: never a confident pass
    assert one(STOPPED, _med("ATC:L01XA01", start="2026-01-01", end="2026")).value is None


WASHOUT = trial('exclusion E1 "Chemotherapy within 4 weeks prior to first dose" = medication ATC:L01 within 4 weeks\n')
PRIOR = trial('inclusion I1 "Prior chemotherapy, completed at least 4 weeks ago" = '
              'medication ATC:L01 stopped at least 4 weeks ago\n')


def test_washout_exposure_in_a_window_differs_from_a_course_that_stopped():
    # an old course that ended in January and a new one going on now
    two_courses = patient(medications=[
        {"code": "ATC:L01XA01", "start": "2025-10-01", "end": "2026-01-15"},
        {"code": "ATC:L01XC07", "start": "2026-11-01", "status": "active"},
    ])
    assert one(WASHOUT, two_courses).verdict == "fail"  # exposure in the last 4 weeks: excluded
    assert one(PRIOR, two_courses).value is True  # there is a course that stopped 4+ weeks ago
    # only the old course: washed out, and it stopped long enough ago
    old = patient(medications=[{"code": "ATC:L01XA01", "start": "2025-10-01", "end": "2026-01-15"}])
    assert one(WASHOUT, old).verdict == "pass"
    assert one(PRIOR, old).value is True


# ---------------------------------------------------------------- diagnosed / onset
def test_diagnosed_more_than_5_years_ago():
    # 5 years before 2026-11-25 is 2021-11-25
    assert one(DIAGNOSED, _dm(onset="2021-11-24")).value is True
    assert one(DIAGNOSED, _dm(onset="2021-11-25")).value is False  # exactly 5 years: not more than
    assert one(DIAGNOSED, _dm(onset="2020")).value is True
    assert one(DIAGNOSED, _dm(onset="2022-03")).value is False
    c = one(DIAGNOSED, _dm(onset="2021"))
    assert c.value is None and c.missing == [
        "condition ICD10:E11.9: onset date 2021 does not decide 'diagnosed more than 5 years ago'"]


def test_a_recorded_date_bounds_the_diagnosis_from_above():
    # recorded in 2019: diagnosed then or earlier, so more than 5 years ago and not less than 5 years ago
    assert one(DIAGNOSED, _dm(recorded_date="2019-05-01")).value is True
    assert one(RECENT, _dm(recorded_date="2019-05-01")).value is False
    # recorded last year: the diagnosis may be older
    c = one(DIAGNOSED, _dm(recorded_date="2025-01-10"))
    assert c.value is None and "onset date on or before 2025-01-10 does not decide" in c.missing[0]
    assert one(RECENT, _dm(recorded_date="2025-01-10")).value is None
    c = one(DIAGNOSED, _dm())
    assert c.missing == ["condition ICD10:E11.9: onset date not recorded (needed for 'diagnosed more than 5 years ago')"]


def test_onset_is_diagnosed_and_works_for_allergies():
    onset = trial('inclusion I1 "x" = condition ICD10:E11 onset more than 5 years ago\n')
    assert one(onset, _dm(onset="2020")).value is True
    allergy = trial('exclusion E1 "x" = allergy SNOMED:91936005 onset less than 1 year ago\n')
    assert one(allergy, patient(allergies=[{"code": "SNOMED:91936005", "onset": "2026-02-01"}])).value is True
    assert one(allergy, patient(allergies=[{"code": "SNOMED:91936005", "onset": "2020-02-01"}])).value is False


def test_performed_for_procedures():
    surgery = lambda day: patient(procedures=[{"code": "SNOMED:387713003", "date": day}])
    assert one(PERFORMED, surgery("2026-11-01")).verdict == "fail"
    assert one(PERFORMED, surgery("2026-10-28")).verdict == "pass"  # exactly 28 days: not less than
    assert one(PERFORMED, surgery("2026-10")).value is None


# ---------------------------------------------------------------- for ... (duration)
def test_taken_for_more_than_1_month():
    # while active, to the as-of date: 1 month before 2026-11-25 is 2026-10-25
    assert one(TAKEN, _med(start="2026-10-24", status="active")).value is True
    assert one(TAKEN, _med(start="2026-10-25", status="active")).value is False  # exactly 1 month
    # from start to end
    assert one(TAKEN, _med(start="2026-01-10", end="2026-03-01")).value is True
    assert one(TAKEN, _med(start="2026-01-10", end="2026-02-01")).value is False
    assert one(SHORT, _med(start="2026-01-10", end="2026-02-01")).value is True


def test_an_unrecorded_end_leaves_a_long_duration_unknown_but_rules_out_what_cannot_be():
    c = one(TAKEN, _med(start="2026-01-10", status="completed"))  # ended, when?
    assert c.value is None and "end date not recorded" in c.missing[0]
    assert one(TAKEN, _med(start="2026-11-10")).value is False  # even to today it is less than a month
    assert one(SHORT, _med(start="2026-11-10")).value is True


def test_partial_dates_in_a_duration():
    assert one(TAKEN, _med(start="2026-01", end="2026-03")).value is True  # at least 29 days... and more
    c = one(TAKEN, _med(start="2026-01", end="2026-02"))  # 1 to 58 days
    assert c.value is None and "dates 2026-01 to 2026-02 do not decide 'for more than 1 month'" in c.missing[0]


# ---------------------------------------------------------------- unchanged for ...
def test_unchanged_for_at_least_3_months_is_started_that_long_ago_and_still_active():
    assert one(STABLE, _med(start="2026-05-01", status="active")).value is True
    assert one(STABLE, _med(start="2026-10-01", status="active")).value is False
    assert one(STABLE, _med(start="2026-05-01", end="2026-10-01")).value is False  # stopped
    c = one(STABLE, _med(start="2026-05-01"))
    assert c.value is None and "status and end date not recorded" in c.missing[0]
    assert one(STABLE, _med(start="2026-08", status="active")).value is None  # 2026-08-25 is the cutoff


def test_timing_clauses_combine_on_the_same_record():
    both = trial('inclusion I1 "x" = medication ATC:A10BA02 started more than 1 year ago for at least 6 months\n')
    assert one(both, _med(start="2024-01-01", end="2024-09-01")).value is True
    assert one(both, _med(start="2024-01-01", end="2024-03-01")).value is False
    # one record started long ago but briefly, another long but recently: no single record meets both
    assert one(both, patient(medications=[
        {"code": "ATC:A10BA02", "start": "2024-01-01", "end": "2024-02-01"},
        {"code": "ATC:A10BA02", "start": "2026-03-01", "status": "active"}])).value is False


def test_timing_with_status_qualifiers_and_unconfirmed_records():
    rule = trial('exclusion E1 "x" = active condition ICD10:E11 with severity = "severe" diagnosed more than 5 years ago\n')
    assert one(rule, _dm(onset="2015", status="active", severity="severe")).value is True
    assert one(rule, _dm(onset="2015", status="resolved", severity="severe")).value is False
    assert one(rule, _dm(onset="2015", status="active", severity="mild")).value is False
    c = one(DIAGNOSED, _dm(onset="2015", verification="provisional"))
    assert c.value is None and "verification status provisional" in c.missing[0]


# ---------------------------------------------------------------- compile errors
@pytest.mark.parametrize("rule, message", [
    ("procedure SNOMED:387713003 started at least 4 weeks ago", "`started` does not apply to a procedure"),
    ("medication ATC:L01 diagnosed more than 1 year ago", "`diagnosed` does not apply to a medication"),
    ("condition ICD10:C71 unchanged for at least 3 months", "`unchanged for` does not apply to a condition"),
    ("medication ATC:L01 unchanged for less than 3 months", "`unchanged for` takes `at least` or `more than`"),
    ("medication ATC:L01 stopped at least 0 days ago", "a duration must be at least 1 day long"),
    ("medication ATC:L01 for at least 201 years", "a time window may be at most 200 years"),
    ("immunization CVX:03 stopped at least 1 year ago", "`stopped` does not apply to an immunization"),
])
def test_timing_that_does_not_fit_the_record_is_a_positioned_compile_error(rule, message):
    with pytest.raises(SourceError) as info:
        trial(f'inclusion I1 "x" = {rule}\n')
    (problem,) = info.value.diagnostics
    assert message in problem.message
    assert problem.span.line == 2 and problem.span.column > 20


def test_a_timing_clause_needs_an_amount_a_duration_and_ago():
    with pytest.raises(SourceError) as info:
        trial('inclusion I1 "x" = medication ATC:L01 stopped at least 14 days\n')
    assert info.value.diagnostics[0].span.line == 2
    with pytest.raises(SourceError) as info:
        trial('inclusion I1 "x" = medication ATC:L01 for 14 days\n')
    (problem,) = info.value.diagnostics
    assert (problem.span.line, problem.span.column) == (2, 43)
    assert "a record's timing is written `started at least 4 weeks ago`" in problem.hint


def test_the_documented_examples_compile():
    import re

    from helpers import ROOT

    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```\n(.*?)```", text, re.S) if "NCT00519142" in b or "NCT00619424" in b]
    assert len(blocks) == 2
    for block in blocks:
        assert trial(block).criteria
