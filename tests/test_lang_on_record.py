"""`X on record [within W]`: a result of the analyte is on record, whatever its value (issue 9).

"Known history of HIV" asks whether a positive result is on record; with no HIV test on record the
patient is not excluded. The test is true when a result is dated in the window (or at any date up to
the as-of date), false when the observation list holds none, unknown when only undated, partly
dated or empty results could be one. As-of date 2026-11-25; every value is asserted on both
engines (helpers.one).
"""
import pytest

from screening import SourceError

from helpers import AS_OF, one, patient, trial

HIV = "LOINC:75622-1"  # the catalogue's HIV screening test (HIV-1/2 antibody with p24 antigen)

ANY_TIME = trial('lab window 90 days\ninclusion I1 "an HIV test on record" = HIV_test on record\n')
FIVE_YEARS = trial('inclusion I1 "an HIV test within 5 years" = HIV_test on record within 5 years\n')
# the importer's draft of NCT02888665 "Has a known history of human immunodeficiency virus (HIV) (HIV 1/2 antibodies)"
KNOWN_HISTORY = trial('lab window 90 days\nexclusion E1 "known history of HIV (HIV 1/2 antibodies)" = '
                      'HIV_test on record and any HIV_test is positive within 200 years\n')


def _hiv(value, day="2020-01-01", **fields):
    found = {"code": HIV, "value": value, **fields}
    if day is not None:
        found["date"] = day
    return found


@pytest.mark.parametrize("result", [
    _hiv("Negative"), _hiv("Positive"), _hiv("see comment"), _hiv(0.2, unit="{index}"), _hiv(1.5, unit="furlong"),
    _hiv(True),
])
def test_any_result_whatever_its_value_is_on_record(result):
    c = one(ANY_TIME, patient(observations=[result]))
    assert (c.value, c.verdict, c.missing) == (True, "pass", [])
    assert c.evidence[0].detail.startswith("HIV_test result on record: ")
    assert c.evidence[0].detail.endswith(" on 2020-01-01")


def test_the_rule_sets_lab_window_does_not_apply_but_a_written_window_does():
    old = patient(observations=[_hiv("Negative", "2019-06-01")])
    assert one(ANY_TIME, old).value is True  # "lab window 90 days" is for comparisons, not for "on record"
    c = one(FIVE_YEARS, old)
    assert (c.value, c.verdict) == (False, "fail")
    assert c.evidence[0].detail == "no HIV_test result on record within 5 years on or before 2026-11-25"
    assert one(FIVE_YEARS, patient(observations=[_hiv("Negative", "2022-01-01")])).value is True


def test_an_observation_list_without_the_analyte_is_false_and_no_list_is_unknown():
    assert one(ANY_TIME, patient(observations=[])).value is False
    assert one(ANY_TIME, patient(observations=[{"code": "LOINC:1742-6", "value": 30, "unit": "U/L",
                                                "date": "2026-11-01"}])).value is False
    c = one(ANY_TIME, patient())
    assert (c.value, c.missing) == (None, ["HIV_test: no observations provided"])
    (item,) = c.missing_items
    assert (item.kind, item.code, item.question) == ("lab", "LOINC:56888-1", "HIV_test results on record (the observation list)")


def test_results_after_the_as_of_date_are_not_on_record():
    assert one(ANY_TIME, patient(observations=[_hiv("Positive", "2026-11-26")])).value is False


def test_undated_partly_dated_and_empty_results_are_unknown_and_named():
    c = one(ANY_TIME, patient(observations=[_hiv("Negative", None)]))
    assert (c.value, c.missing) == (None, ["HIV_test result of undated: date not recorded"])
    assert c.missing_items[0].question == "Full date of the HIV_test result of undated"
    c = one(ANY_TIME, patient(observations=[_hiv(None, "2024-03-02")]))
    assert (c.value, c.missing) == (None, ["HIV_test result of 2024-03-02: no value recorded"])
    assert c.missing_items[0].question == "Check the HIV_test result of 2024-03-02: no value recorded"
    c = one(ANY_TIME, patient(observations=[_hiv(None, None)]))
    assert c.missing == ["HIV_test result of undated: no value recorded; date not recorded"]
    # a month that straddles the window's first day (2021-11-25)
    c = one(FIVE_YEARS, patient(observations=[_hiv("Negative", "2021-11")]))
    assert (c.value, c.missing) == (None, ["HIV_test result of 2021-11: date uncertain relative to the window"])
    assert one(FIVE_YEARS, patient(observations=[_hiv("Negative", "2021-12")])).value is True
    assert one(FIVE_YEARS, patient(observations=[_hiv("Negative", "2021-10")])).value is False
    # a year that may end after the as-of date
    assert one(ANY_TIME, patient(observations=[_hiv("Negative", "2026")])).value is None


def test_one_dated_result_decides_whatever_the_doubtful_ones():
    c = one(ANY_TIME, patient(observations=[_hiv(None, None), _hiv("Negative", "2010-05-05")]))
    assert (c.value, c.missing) == (True, [])


@pytest.mark.parametrize("results,value", [
    ([], False),                                            # no HIV test on record: not excluded
    ([_hiv("Negative")], False),
    ([_hiv("Negative", "2001-01-01"), _hiv("Reactive", "2003-01-01")], True),   # positive at any date
    ([_hiv("Indeterminate")], None),                        # stays unknown (not "not excluded")
    ([_hiv("see comment")], None),
    ([_hiv(None, None)], None),
])
def test_known_history_of_hiv(results, value):
    c = one(KNOWN_HISTORY, patient(observations=results))
    assert c.value is value
    assert c.verdict == {False: "pass", True: "fail", None: "unknown"}[value]


def test_the_rule_text_and_the_syntax_tree():
    rule = ANY_TIME.criteria[0].condition
    assert (type(rule).__name__, rule.key, rule.label, rule.window) == ("LabRecorded", "HIV_test", "HIV_test", None)
    assert rule.source_text == "HIV_test on record"
    by_code = trial(f'inclusion I1 "x" = {HIV} on record within 2 years\n').criteria[0].condition
    assert (by_code.key, str(by_code.window)) == ("HIV_test", "2 years")


@pytest.mark.parametrize("rule,message,column", [
    ("HIV_tset on record", "unknown analyte `HIV_tset`", 20),
    ("HIV_test on record within 0 days", "at least 1 day", 39),
    ("SNOMED:165816005 on record", "labs are named by a LOINC (or LOCAL) code", 20),
])
def test_problems_are_positioned_errors(rule, message, column):
    with pytest.raises(SourceError) as info:
        trial(f'inclusion I1 "x" = {rule}\n')
    (problem,) = info.value.diagnostics
    assert message in problem.message
    assert (problem.span.line, problem.span.column) == (2, column)
