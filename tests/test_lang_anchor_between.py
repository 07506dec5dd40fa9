"""One-sided windows anchored at another record: `between N and M after R`, `from N to M before R` (issue 9).

The window runs from N to M after the anchor's date (or from M to N before it), both ends included; partial
dates decide only where every reading of them agrees. As-of date 2026-11-25; every value is asserted on
both engines (helpers.one).
"""
import pytest

from screening import SourceError

from helpers import one, patient, trial

HEADER = '''valueset surgery "surgery" = SNOMED:387713003
valueset infection "wound infection" = ICD10:T81.4
valueset stent "biliary stent insertion" = SNOMED:69620002
valueset radiotherapy "radiotherapy" = SNOMED:108290001
valueset anticoagulant "anticoagulant" = ATC:B01A
'''
AFTER = trial(HEADER + 'exclusion E1 "Wound infection between 4 and 12 weeks after surgery" = '
              'condition infection between 4 and 12 weeks after procedure surgery\n')
BEFORE = trial(HEADER + 'exclusion E1 "Anticoagulant from 3 to 10 days before surgery" = '
               'medication anticoagulant from 3 to 10 days before procedure surgery\n')
END_OF = trial(HEADER + 'exclusion E1 "Infection from 2 to 6 months after completion of radiotherapy" = '
               'condition infection from 2 to 6 months after the end of procedure radiotherapy\n')
# NCT02267707: "2 stable bilirubin readings ... taken at least 5 days and not more than 14 days post-stenting"
LAB = trial(HEADER + 'inclusion I1 "bilirubin readings at least 5 and not more than 14 days post-stenting" = '
            'every bilirubin <= 1.5 x ULN between 5 and 14 days after procedure stent\n')


def _surgery(day="2026-06-01", **fields):
    return {"code": "SNOMED:387713003", "date": day, **fields}


def _infection(onset):
    return {"code": "ICD10:T81.4", "onset": onset}


@pytest.mark.parametrize("onset,value", [
    ("2026-06-28", False),   # 27 days after
    ("2026-06-29", True),    # 4 weeks after: the first day of the window
    ("2026-08-24", True),    # 12 weeks after: its last day
    ("2026-08-25", False),   # one day past it
    ("2026-05-20", False),   # before the surgery
    ("2026-07", True),       # every day of July is inside
    ("2026-06", None),       # June straddles the first day
    ("2026-08", None),       # August straddles the last day
])
def test_an_event_between_4_and_12_weeks_after_the_anchor(onset, value):
    c = one(AFTER, patient(conditions=[_infection(onset)], procedures=[_surgery()]))
    assert c.value is value
    if value is None:
        assert c.missing == [f"condition ICD10:T81.4 between 4 weeks and 12 weeks after procedure SNOMED:387713003: "
                             f"dates not precise enough to tell (onset date {onset}, anchor 2026-06-01)"]


def test_the_explanation_names_the_window():
    c = one(AFTER, patient(conditions=[_infection("2026-07-10")], procedures=[_surgery()]))
    assert c.evidence[0].detail == ("condition ICD10:T81.4 (from 2026-07-10) is between 4 weeks and 12 weeks after "
                                    "procedure SNOMED:387713003 (date 2026-06-01)")


@pytest.mark.parametrize("anchor,onset,value", [
    ("2026-06", "2026-08-01", True),    # 4 to 12 weeks after any day of June: 2026-07-29 .. 2026-08-24 always inside
    ("2026-06", "2026-07-20", None),    # inside for a surgery early in June only
    ("2026-06", "2026-09-30", False),   # past 12 weeks after 2026-06-30
    ("2026", "2026-07-01", None),
])
def test_a_partial_anchor_date_decides_only_where_every_reading_agrees(anchor, onset, value):
    assert one(AFTER, patient(conditions=[_infection(onset)], procedures=[_surgery(anchor)])).value is value


@pytest.mark.parametrize("start,end,value", [
    ("2026-05-20", "2026-05-25", True),    # taken 7 to 12 days before: overlaps 2026-05-22 .. 2026-05-29
    ("2026-05-30", "2026-06-05", False),   # stopped 2 days before the surgery: inside the last 3 days, not the window
    ("2026-05-01", "2026-05-21", False),   # stopped 11 days before
    ("2026-05-01", "2026-05-22", True),    # stopped 10 days before: the window's first day
])
def test_an_exposure_from_3_to_10_days_before_the_anchor(start, end, value):
    p = patient(medications=[{"code": "ATC:B01AC06", "start": start, "end": end, "status": "completed"}],
                procedures=[_surgery()])
    assert one(BEFORE, p).value is value


def test_at_the_end_of_a_record():
    rt = {"code": "SNOMED:108290001", "date": "2026-03-02", "end": "2026-04-15"}
    assert one(END_OF, patient(conditions=[_infection("2026-06-10")], procedures=[rt])).value is False  # 8 weeks
    assert one(END_OF, patient(conditions=[_infection("2026-06-15")], procedures=[rt])).value is True   # 2 months
    assert one(END_OF, patient(conditions=[_infection("2026-10-16")], procedures=[rt])).value is False


def _bilirubin(value, day):
    return {"code": "LOINC:1975-2", "value": value, "unit": "mg/dL", "date": day,
            "reference_range": {"low": 0.1, "high": 1.2, "unit": "mg/dL"}}


def test_a_lab_between_5_and_14_days_after_the_anchor():
    stent = {"code": "SNOMED:69620002", "date": "2026-10-01"}
    # a high reading 4 days after the stent is outside the window; the two inside are normal
    p = patient(procedures=[stent], observations=[_bilirubin(3.0, "2026-10-05"), _bilirubin(1.1, "2026-10-06"),
                                                  _bilirubin(1.5, "2026-10-15")])
    assert one(LAB, p).value is True
    p = patient(procedures=[stent], observations=[_bilirubin(1.1, "2026-10-06"), _bilirubin(2.0, "2026-10-15")])
    assert one(LAB, p).value is False  # a high reading 14 days after (the window's last day)
    p = patient(procedures=[stent], observations=[_bilirubin(1.1, "2026-10-06"), _bilirubin(2.0, "2026-10-16")])
    assert one(LAB, p).value is True  # 15 days after: outside
    c = one(LAB, patient(procedures=[stent], observations=[_bilirubin(1.0, "2026-10-05")]))
    assert (c.value, c.missing) == (None, ["bilirubin between 5 days and 14 days after procedure SNOMED:69620002: "
                                           "no bilirubin result from 2026-10-06 to 2026-10-15"])


def test_a_bare_first_number_takes_the_unit_of_the_second():
    (criterion,) = AFTER.criteria
    node = criterion.condition
    assert (str(node.start_after), str(node.after), node.before, node.end_before) == ("4 weeks", "12 weeks", None, None)
    (criterion,) = BEFORE.criteria
    node = criterion.condition
    assert (str(node.end_before), str(node.before), node.after) == ("3 days", "10 days", None)
    mixed = trial(HEADER + 'exclusion E1 "x" = condition infection between 2 weeks and 3 months after procedure surgery\n')
    assert mixed.criteria[0].condition.relation_text == "between 2 weeks and 3 months after"


@pytest.mark.parametrize("window", [
    "between 12 and 4 weeks after", "between 4 and 4 weeks after", "between 1 month and 30 days after",
    "from 5 weeks to 1 month before", "between 1 year and 365 days after",
])
def test_a_window_whose_near_end_may_come_last_is_a_positioned_error(window):
    with pytest.raises(SourceError) as info:
        trial(HEADER + f'exclusion E1 "x" = condition infection {window} procedure surgery\n')
    (problem,) = info.value.diagnostics
    assert problem.code == "bad-range"
    assert "first amount must be the smaller one" in problem.message
    assert (problem.span.line, problem.span.column) == (7, 20 + len("condition infection ") + len(window.split()[0]) + 1)


def test_the_longest_window_is_200_years():
    with pytest.raises(SourceError, match="at most 200 years"):
        trial(HEADER + 'exclusion E1 "x" = condition infection between 1 and 201 years after procedure surgery\n')


def test_a_lab_window_that_begins_after_the_as_of_date_is_unknown_and_says_so():
    stent = {"code": "SNOMED:69620002", "date": "2026-11-22"}  # 5 days after it is 2026-11-27
    c = one(LAB, patient(procedures=[stent], observations=[_bilirubin(1.0, "2026-11-24")]))
    assert (c.value, c.missing) == (None, ["bilirubin between 5 days and 14 days after procedure SNOMED:69620002: "
                                           "the window begins on 2026-11-27, after the as-of date"])
