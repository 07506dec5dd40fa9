"""`condition X within N` is the event in the window; `active condition X within N` is present during it.

Every verdict is asserted on both engines (helpers.one checks the fast path agrees).
"""
import pytest

from screening import SourceError

from helpers import one, patient, trial

EVENT = trial('exclusion E1 "Myocardial infarction within the past 6 months" = condition ICD10:I21 within 6 months\n')
PRESENT = trial('exclusion E1 "Myocardial infarction within 6 months" = active condition ICD10:I21 within 6 months\n')
MEDICATION = trial('exclusion E1 "Received insulin within 4 weeks" = medication ATC:A10A within 4 weeks\n')


def _mi(**fields):
    return patient(conditions=[{"code": "ICD10:I21.4", **fields}])


def test_an_old_mi_still_marked_active_is_not_an_mi_in_the_last_6_months():
    c = one(EVENT, _mi(onset="2015-03-02", status="active"))
    assert (c.verdict, c.value) == ("pass", False)


def test_the_same_record_is_present_during_the_window():
    c = one(PRESENT, _mi(onset="2015-03-02", status="active"))
    assert (c.verdict, c.value) == ("fail", True)


def test_an_mi_whose_onset_is_in_the_window_is_the_event():
    assert one(EVENT, _mi(onset="2026-09-14", status="resolved", end="2026-10-01")).verdict == "fail"
    assert one(EVENT, _mi(onset="2026-09-14")).verdict == "fail"


def test_window_edges_are_inclusive_calendar_months():
    # 6 months before 2026-11-25 is 2026-05-25
    assert one(EVENT, _mi(onset="2026-05-25")).value is True
    assert one(EVENT, _mi(onset="2026-05-24")).value is False


def test_no_onset_uses_the_recorded_date_and_without_either_it_is_unknown():
    assert one(EVENT, _mi(recorded_date="2026-10-02", status="active")).value is True
    assert one(EVENT, _mi(recorded_date="2024-10-02", status="active")).value is False  # onset is before that
    c = one(EVENT, _mi(status="active"))
    assert (c.verdict, c.value) == ("unknown", None)
    assert c.missing == ["condition ICD10:I21.4: onset date not recorded (needed to place it within 6 months)"]


def test_a_partial_onset_that_straddles_the_window_is_unknown():
    c = one(EVENT, _mi(onset="2026-05"))
    assert c.value is None and "dates not precise enough" in c.missing[0]
    assert one(EVENT, _mi(onset="2026-07")).value is True
    assert one(EVENT, _mi(onset="2025")).value is False


def test_present_during_the_window_follows_status_and_end():
    assert one(PRESENT, _mi(onset="2015-03-02", status="resolved", end="2026-08-01")).value is True
    assert one(PRESENT, _mi(onset="2015-03-02", status="resolved", end="2019-08-01")).value is False
    # not active on the as-of date, but it was during the window: still present during it
    assert one(PRESENT, _mi(onset="2026-06-01", end="2026-07-01")).value is True
    # resolved with no end date: whether it lasted into the window is unknown
    assert one(PRESENT, _mi(onset="2015-03-02", status="resolved")).value is None


def test_medications_keep_exposure_overlap():
    on_insulin = patient(medications=[{"code": "ATC:A10AB01", "start": "2019-01-01", "status": "active"}])
    assert one(MEDICATION, on_insulin).verdict == "fail"
    stopped = patient(medications=[{"code": "ATC:A10AB01", "start": "2019-01-01", "end": "2026-11-01"}])
    assert one(MEDICATION, stopped).verdict == "fail"
    long_ago = patient(medications=[{"code": "ATC:A10AB01", "start": "2019-01-01", "end": "2020-01-01"}])
    assert one(MEDICATION, long_ago).verdict == "pass"


def test_current_is_active_on_the_as_of_date_and_takes_no_window():
    current = trial('exclusion E1 "x" = current condition ICD10:I21\n')
    assert one(current, _mi(onset="2015-03-02", status="active")).verdict == "fail"
    assert one(current, _mi(onset="2015-03-02", status="resolved")).verdict == "pass"
    with pytest.raises(SourceError, match="`current` means on the screening date"):
        trial('exclusion E1 "x" = current condition ICD10:I21 within 6 months\n')


def test_resolved_within_a_window_means_it_ended_in_the_window():
    resolved = trial('inclusion I1 "x" = resolved condition ICD10:I21 within 6 months\n')
    assert one(resolved, _mi(onset="2015-03-02", status="resolved", end="2026-08-01")).value is True
    assert one(resolved, _mi(onset="2015-03-02", status="resolved", end="2019-08-01")).value is False
