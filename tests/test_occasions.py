"""`on at least N occasions`: one specimen reported twice is one occasion; false only when ruled out.

Every verdict is asserted on both engines (helpers.one checks the fast path agrees).
"""
from helpers import obs, one, patient, trial

ALT, CREAT = "LOINC:1742-6", "LOINC:2160-0"
TWICE = trial('exclusion E1 "ALT > 100 U/L on 2 occasions" = ALT > 100 U/L on at least 2 occasions within 3 months\n')
CREAT_TWICE = trial('exclusion E1 "x" = creatinine > 1.4 mg/dL on at least 2 occasions within 3 months\n')


def test_one_elevated_result_and_no_repeat_is_unknown_naming_the_repeat():
    c = one(TWICE, patient(observations=[obs(ALT, 150, "U/L", day="2026-11-10")]))
    assert (c.verdict, c.value) == ("unknown", None)
    assert c.missing == ["a repeat ALT result within 3 months"]
    assert "could still decide" in c.explanation


def test_one_elevated_result_with_a_normal_repeat_is_false():
    p = patient(observations=[obs(ALT, 150, "U/L", day="2026-10-10"), obs(ALT, 40, "U/L", day="2026-11-10")])
    c = one(TWICE, p)
    assert (c.verdict, c.value) == ("pass", False)


def test_a_normal_result_before_the_elevated_one_does_not_rule_out_a_repeat():
    p = patient(observations=[obs(ALT, 40, "U/L", day="2026-10-10"), obs(ALT, 150, "U/L", day="2026-11-10")])
    assert one(TWICE, p).value is None


def test_two_elevated_occasions_are_true():
    p = patient(observations=[obs(ALT, 150, "U/L", day="2026-10-10"), obs(ALT, 120, "U/L", day="2026-11-10")])
    assert one(TWICE, p).verdict == "fail"


def test_all_normal_is_false():
    p = patient(observations=[obs(ALT, 30, "U/L", day="2026-10-10"), obs(ALT, 35, "U/L", day="2026-11-10")])
    assert one(TWICE, p).value is False


def test_the_same_result_reported_twice_is_one_occasion():
    p = patient(observations=[obs(ALT, 150, "U/L", day="2026-11-10"), obs(ALT, 150, "IU/L", day="2026-11-10")])
    c = one(TWICE, p)
    assert c.value is None and c.missing == ["a repeat ALT result within 3 months"]


def test_one_specimen_in_two_units_is_one_occasion():
    # 1.5 mg/dL = 132.6 umol/L, reported by the lab in both units on the same day
    for other in (133, 132.6):
        p = patient(observations=[obs(CREAT, 1.5, "mg/dL", day="2026-11-10"), obs(CREAT, other, "umol/L", day="2026-11-10")])
        assert one(CREAT_TWICE, p).value is None


def test_different_values_on_the_same_day_are_two_occasions():
    p = patient(observations=[obs(ALT, 150, "U/L", day="2026-11-10"), obs(ALT, 180, "U/L", day="2026-11-10")])
    assert one(TWICE, p).value is True


def test_results_outside_the_window_do_not_count():
    p = patient(observations=[obs(ALT, 150, "U/L", day="2026-01-10"), obs(ALT, 150, "U/L", day="2026-11-10")])
    assert one(TWICE, p).value is None


def test_any_keeps_its_meaning():
    anyt = trial('exclusion E1 "x" = any ALT > 100 U/L within 3 months\n')
    assert one(anyt, patient(observations=[obs(ALT, 40, "U/L", day="2026-11-10")])).value is False
    assert one(anyt, patient(observations=[obs(ALT, 140, "U/L", day="2026-11-10")])).value is True


def test_equal_results_dated_only_to_the_month_may_be_two_specimens():
    # "2024-01" twice, equal values, then a normal repeat: one specimen or two; never ruled out
    from datetime import date
    from screening import compile_text, patient_from_document
    t = compile_text('trial "T"\nexclusion E1 "x" = ALT > 100 U/L on at least 2 occasions within 12 months\n', "t.crit")
    alt = {"code": "LOINC:1742-6", "value": 150, "unit": "U/L"}
    p = patient_from_document({"version": 1, "id": "p", "observations": [
        {**alt, "date": "2024-01"}, {**alt, "date": "2024-01"}, {**alt, "value": 30, "date": "2024-03-01"}]})
    (c,) = t.screen(p, date(2024, 12, 1)).criteria
    assert (c.verdict, t.values(p, date(2024, 12, 1))) == ("unknown", ((True, None),))
