"""Windows anchored at another record: `condition X after procedure Y`, `procedure X within 28 days after
procedure Y`, `medication X from 5 days before to 2 days after procedure Y`.

As-of date 2026-11-25 throughout. Every verdict is asserted on both engines (helpers.one).
"""
import pytest

from screening import SourceError

from helpers import one, patient, trial

HEADER = '''valueset radiotherapy "radiotherapy" = SNOMED:108290001
valueset progression "disease progression" = SNOMED:444391001
valueset surgery "surgery" = SNOMED:387713003
valueset infection "wound infection" = ICD10:T81.4
valueset anticoagulant "anticoagulant" = ATC:B01A
'''
AFTER = trial(HEADER + 'inclusion I1 "Progression after radiotherapy" = condition progression after procedure radiotherapy\n')
BEFORE = trial(HEADER + 'inclusion I1 "Surgery before radiotherapy" = procedure surgery before procedure radiotherapy\n')
WITHIN = trial(HEADER + 'exclusion E1 "Wound infection within 28 days after surgery" = '
               'condition infection within 28 days after procedure surgery\n')
AROUND = trial(HEADER + 'exclusion E1 "Anticoagulant from 5 days before to 2 days after surgery" = '
               'medication anticoagulant from 5 days before to 2 days after procedure surgery\n')
LEAD_IN = trial(HEADER + 'exclusion E1 "Anticoagulant within 5 days before surgery" = '
                'medication anticoagulant within 5 days before procedure surgery\n')


def _rt(day="2026-08-10", **fields):
    return {"code": "SNOMED:108290001", "date": day, **fields}


def _progression(onset="2026-09-15", **fields):
    return {"code": "SNOMED:444391001", "onset": onset, **fields}


def _surgery(day="2026-09-01", **fields):
    return {"code": "SNOMED:387713003", "date": day, **fields}


def _infection(onset, **fields):
    return {"code": "ICD10:T81.4", "onset": onset, **fields}


# ---------------------------------------------------------------- after / before
def test_progression_after_radiotherapy():
    c = one(AFTER, patient(conditions=[_progression("2026-09-15")], procedures=[_rt("2026-08-10")]))
    assert (c.verdict, c.value) == ("pass", True)
    assert "is after procedure SNOMED:108290001 (date 2026-08-10)" in c.evidence[0].detail
    assert one(AFTER, patient(conditions=[_progression("2026-07-01")], procedures=[_rt("2026-08-10")])).value is False


def test_the_same_day_or_an_overlapping_partial_date_is_unknown():
    c = one(AFTER, patient(conditions=[_progression("2026-08-10")], procedures=[_rt("2026-08-10")]))
    assert c.value is None
    assert c.missing == ["condition SNOMED:444391001 after procedure SNOMED:108290001: dates not precise enough to "
                         "tell (onset date 2026-08-10, anchor 2026-08-10)"]
    assert one(AFTER, patient(conditions=[_progression("2026-08")], procedures=[_rt("2026-08-10")])).value is None
    assert one(AFTER, patient(conditions=[_progression("2026-09")], procedures=[_rt("2026-08")])).value is True
    assert one(AFTER, patient(conditions=[_progression("2026-07")], procedures=[_rt("2026-08")])).value is False


def test_any_pair_decides():
    # radiotherapy twice; progression after the first only
    p = patient(conditions=[_progression("2026-06-15")], procedures=[_rt("2026-05-01"), _rt("2026-10-01")])
    assert one(AFTER, p).value is True
    # a progression before any radiotherapy and another after it
    p = patient(conditions=[_progression("2026-01-01"), _progression("2026-11-01")], procedures=[_rt()])
    assert one(AFTER, p).value is True


def test_before():
    assert one(BEFORE, patient(procedures=[_surgery("2026-07-01"), _rt("2026-08-10")])).value is True
    assert one(BEFORE, patient(procedures=[_surgery("2026-09-01"), _rt("2026-08-10")])).value is False


# ---------------------------------------------------------------- missing lists, missing dates
def test_an_absent_anchor_list_is_unknown_an_empty_one_is_false():
    c = one(AFTER, patient(conditions=[_progression()]))
    assert c.value is None and c.missing == ["procedures (not provided, needed as the anchor)"]
    assert one(AFTER, patient(conditions=[_progression()], procedures=[])).value is False
    # an anchor of another kind does not count
    assert one(AFTER, patient(conditions=[_progression()], procedures=[_surgery()])).value is False


def test_no_tested_record_is_false_whatever_the_anchors_and_an_absent_tested_list_is_unknown():
    assert one(AFTER, patient(conditions=[])).value is False
    assert one(AFTER, patient(conditions=[{"code": "ICD10:E11.9", "onset": "2026-10-01"}])).value is False
    c = one(AFTER, patient(procedures=[_rt()]))
    assert c.value is None and c.missing == ["conditions (not provided)"]


def test_a_record_or_an_anchor_without_a_date_is_unknown_and_named():
    c = one(AFTER, patient(conditions=[{"code": "SNOMED:444391001"}], procedures=[_rt()]))
    assert c.value is None and "onset date not recorded" in c.missing[0]
    c = one(AFTER, patient(conditions=[_progression()], procedures=[{"code": "SNOMED:108290001"}]))
    assert c.value is None
    assert "date of the anchor procedure SNOMED:108290001 not recorded" in c.missing[0]


def test_a_recorded_date_bounds_the_onset_from_above():
    # progression recorded before the radiotherapy: it began before it
    p = patient(conditions=[{"code": "SNOMED:444391001", "recorded_date": "2026-07-01"}], procedures=[_rt()])
    assert one(AFTER, p).value is False
    p = patient(conditions=[{"code": "SNOMED:444391001", "recorded_date": "2026-10-01"}], procedures=[_rt()])
    assert one(AFTER, p).value is None  # recorded after it, but the progression may have begun earlier


def test_unconfirmed_anchor_or_record_never_makes_it_true():
    c = one(AFTER, patient(conditions=[_progression()], procedures=[_rt(verification="provisional")]))
    assert c.value is None and "verification status provisional" in c.missing[0]
    c = one(AFTER, patient(conditions=[_progression(verification="differential")], procedures=[_rt()]))
    assert c.value is None and "verification status differential" in c.missing[0]


def test_records_and_anchors_after_the_as_of_date_are_ignored():
    p = patient(conditions=[_progression("2026-12-10")], procedures=[_rt("2026-08-10")])
    assert one(AFTER, p).value is False


# ---------------------------------------------------------------- within N after / before, from ... to
def test_within_28_days_after_surgery_includes_both_ends():
    p = lambda onset, day="2026-09-01": patient(conditions=[_infection(onset)], procedures=[_surgery(day)])
    assert one(WITHIN, p("2026-09-01")).verdict == "fail"  # the day of surgery
    assert one(WITHIN, p("2026-09-29")).value is True  # day 28
    assert one(WITHIN, p("2026-09-30")).value is False  # day 29
    assert one(WITHIN, p("2026-08-31")).value is False  # the day before
    assert one(WITHIN, p("2026-09")).value is None  # 2026-09-30 would be day 29
    assert one(WITHIN, p("2026-09-20", "2026-09")).value is None  # surgery known to the month only
    assert one(WITHIN, p("2026-11-20", "2026-09")).value is False  # too late for any day of September


def test_within_n_days_before_and_from_before_to_after_for_an_exposure():
    surgery = [_surgery("2026-09-10")]
    med = lambda **f: {"code": "ATC:B01AF01", **f}
    # exposure 2026-08-01 .. 2026-09-06 overlaps 09-05 .. 09-12 (around) and 09-05 .. 09-10 (lead-in)
    p = patient(medications=[med(start="2026-08-01", end="2026-09-06")], procedures=surgery)
    assert one(AROUND, p).value is True and one(LEAD_IN, p).value is True
    # ended 09-04: before both windows
    p = patient(medications=[med(start="2026-08-01", end="2026-09-04")], procedures=surgery)
    assert one(AROUND, p).value is False and one(LEAD_IN, p).value is False
    # started 09-12: in the window that runs to 2 days after, not in the one that ends on the day
    p = patient(medications=[med(start="2026-09-12", status="active")], procedures=surgery)
    assert one(AROUND, p).value is True and one(LEAD_IN, p).value is False
    # ended at an unrecorded time after a start in August: may or may not reach the window
    p = patient(medications=[med(start="2026-08-01", status="completed")], procedures=surgery)
    assert one(AROUND, p).value is None


def test_anchor_by_a_defined_name_and_with_qualifiers():
    rules = (HEADER + 'define curative_rt "curative radiotherapy" = procedure radiotherapy with intent != "palliative"\n'
             'inclusion I1 "Progression after curative radiotherapy" = condition progression after curative_rt\n')
    t = trial(rules)
    assert one(t, patient(conditions=[_progression()], procedures=[_rt(intent="curative")])).value is True
    assert one(t, patient(conditions=[_progression()], procedures=[_rt(intent="palliative")])).value is False
    c = one(t, patient(conditions=[_progression()], procedures=[_rt()]))
    assert c.value is None and "intent not recorded" in c.missing[0]
    inline = trial(HEADER + 'inclusion I1 "x" = condition progression after procedure radiotherapy '
                            'with intent != "palliative"\n')
    assert one(inline, patient(conditions=[_progression()], procedures=[_rt(intent="palliative")])).value is False


def test_anchor_with_timing_and_tested_record_with_status():
    t = trial(HEADER + 'inclusion I1 "x" = active condition progression after procedure radiotherapy '
                       'performed at least 3 months ago\n')
    assert one(t, patient(conditions=[_progression(status="active")], procedures=[_rt("2026-08-10")])).value is True
    assert one(t, patient(conditions=[_progression(status="active")], procedures=[_rt("2026-10-10")])).value is False
    assert one(t, patient(conditions=[_progression(status="resolved")], procedures=[_rt("2026-08-10")])).value is False


def test_explanations_name_the_pair_or_say_none_was_found():
    t = trial(HEADER + 'inclusion I1 "x" = condition progression after procedure radiotherapy\n')
    c = one(t, patient(conditions=[_progression("2026-01-01")], procedures=[_rt()]))
    assert c.evidence[0].detail == "no condition in disease progression after a procedure in radiotherapy recorded"


# ---------------------------------------------------------------- compile errors
@pytest.mark.parametrize("rule, message", [
    ("condition progression after nothing_here", "unknown name `nothing_here`"),
    ("condition progression after old", "`old` is not a record test without a window"),
    ("condition progression after recent", "`recent` is not a record test without a window"),
    ("condition progression within 0 days after procedure surgery", "a time window must be at least 1 day long"),
    ("condition progression after procedure nothing_here", "unknown value set `nothing_here`"),
])
def test_anchor_problems_are_positioned_compile_errors(rule, message):
    with pytest.raises(SourceError) as info:
        trial(HEADER + 'define old = age > 60\ndefine recent = procedure radiotherapy within 1 year\n'
              f'inclusion I1 "x" = {rule}\n')
    assert any(message in d.message for d in info.value.diagnostics)
    assert all(d.span.line == 9 for d in info.value.diagnostics)


def test_a_value_set_named_as_an_anchor_gets_a_hint():
    with pytest.raises(SourceError) as info:
        trial(HEADER + 'inclusion I1 "x" = condition progression after radiotherapy\n')
    (problem,) = info.value.diagnostics
    assert (problem.span.line, problem.span.column) == (7, 48)
    assert "`procedure radiotherapy`" in problem.hint


def test_an_anchor_cannot_carry_its_own_window():
    with pytest.raises(SourceError) as info:
        trial(HEADER + 'inclusion I1 "x" = condition progression after procedure radiotherapy within 1 year\n')
    assert info.value.diagnostics[0].span.line == 7


# ---------------------------------------------------------------- both engines on a synthetic population
POPULATION_RULES = '''trial "TIMING9"
valueset t2d = ICD10:E11, SNOMED:44054006
valueset metformin = ATC:A10BA02
valueset insulin = ATC:A10A
valueset anticoagulant = ATC:B01AA, ATC:B01AF
valueset malignancy = ICD10:C00-C96
valueset revasc = CPT:92928, CPT:33533, SNOMED:232717009
valueset surgery = SNOMED:387713003, CPT:33533
inclusion T1 "t2d diagnosed at least 6 months ago" = condition t2d diagnosed at least 6 months ago
inclusion T2 "metformin unchanged for at least 3 months" = medication metformin unchanged for at least 3 months
inclusion T3 "insulin for more than 12 months" = medication insulin for more than 12 months
inclusion T4 "anticoagulant stopped at least 14 days ago" = medication anticoagulant stopped at least 14 days ago
inclusion T5 "malignancy diagnosed less than 5 years ago" = active condition malignancy diagnosed less than 5 years ago
inclusion T6 "revascularisation performed at most 1 year ago" = procedure revasc performed at most 1 year ago
inclusion A1 "t2d after surgery" = condition t2d after procedure surgery
inclusion A2 "anticoagulant within 28 days after revascularisation" =
    medication anticoagulant within 28 days after procedure revasc
inclusion A3 "metformin from 30 days before to 30 days after t2d" =
    medication metformin from 30 days before to 30 days after condition t2d
inclusion A4 "malignancy before insulin started more than 1 year ago" =
    condition malignancy before medication insulin started more than 1 year ago
inclusion L1 "HbA1c <= 9 % within 1 year before metformin" = HbA1c <= 9 % within 1 year before medication metformin
inclusion L2 "any eGFR >= 45 from 6 months before to 6 months after a t2d diagnosis" =
    any eGFR >= 45 mL/min/1.73m2 from 6 months before to 6 months after condition t2d
'''


def test_both_engines_agree_on_a_synthetic_population():
    from datetime import date

    from screening import compile_text, patient_from_document
    from screening.evaluate import Interpreter
    from test_fast_path import _population_module

    t = compile_text(POPULATION_RULES, "timing9.crit")
    seen = set()
    for as_of in (date(2026, 11, 25), date(2024, 2, 29)):
        ctx = t.context(as_of)
        for document in _population_module().generate(800, seed=9):
            p = patient_from_document(document, "generated")
            interpreter = Interpreter(p, ctx)
            for criterion, (_applies, value) in zip(t.criteria, t.values(p, as_of)):
                assert value == interpreter.run(criterion.condition).value, (document["id"], criterion.id)
                seen.add((criterion.id, value))
    # every rule takes each of its three values somewhere in the population (not a vacuous agreement)
    for criterion in t.criteria:
        assert {v for c, v in seen if c == criterion.id} == {True, False, None}, criterion.id


# ---------------------------------------------------------------- labs in a window anchored at a record
LAB = trial('valueset chemo = ATC:L01\n'
            'inclusion I1 "ANC >= 1500/mcL within 3 days before chemotherapy" = '
            'ANC >= 1500/mm3 within 3 days before medication chemo\n')
_CHEMO = [{"code": "ATC:L01XA01", "start": "2026-11-20", "status": "active"}]


def _anc(value, day):
    return {"code": "LOINC:751-8", "value": value, "unit": "10^9/L", "date": day}


def test_a_lab_in_the_days_before_a_dose():
    c = one(LAB, patient(medications=_CHEMO, observations=[_anc(1.8, "2026-11-18")]))
    assert (c.verdict, c.value) == ("pass", True)
    assert c.evidence[0].detail.startswith("within 3 days before medication ATC:L01XA01 (from 2026-11-20, active): "
                                           "ANC 1.8 10^9/L on 2026-11-18")
    c = one(LAB, patient(medications=_CHEMO, observations=[_anc(1.2, "2026-11-18")]))
    assert (c.verdict, c.value) == ("fail", False)
    assert "under by 0.3 10^9/L" in c.evidence[0].detail
    # the latest result in the window decides, and the window's ends are included
    assert one(LAB, patient(medications=_CHEMO, observations=[_anc(1.2, "2026-11-17"), _anc(1.8, "2026-11-20")])).value
    assert one(LAB, patient(medications=_CHEMO, observations=[_anc(1.8, "2026-11-17")])).value is True
    # a result after the dose, or the day before the window opens, is not in it
    c = one(LAB, patient(medications=_CHEMO, observations=[_anc(1.8, "2026-11-16"), _anc(1.8, "2026-11-22")]))
    assert c.value is None and c.missing == [
        "ANC within 3 days before medication ATC:L01XA01: no ANC result from 2026-11-17 to 2026-11-20"]


def test_anchored_lab_missing_data():
    c = one(LAB, patient(observations=[_anc(1.8, "2026-11-18")]))
    assert c.value is None and c.missing == ["medications (not provided, needed as the anchor)"]
    assert one(LAB, patient(medications=[], observations=[_anc(1.8, "2026-11-18")])).value is False
    c = one(LAB, patient(medications=_CHEMO))
    assert c.value is None and "no observations provided" in c.missing[0]
    # an anchor known only to the month: which days the window holds is unknown
    c = one(LAB, patient(medications=[{"code": "ATC:L01XA01", "start": "2026-10", "status": "active"}],
                         observations=[_anc(1.8, "2026-10-18")]))
    assert c.value is None and "start date of the anchor 2026-10, not a full date" in c.missing[0]


def test_any_anchor_whose_window_meets_the_test_decides():
    courses = [{"code": "ATC:L01XA01", "start": "2026-09-01", "end": "2026-09-30"},
               {"code": "ATC:L01XA01", "start": "2026-11-20", "status": "active"}]
    p = patient(medications=courses, observations=[_anc(0.9, "2026-08-30"), _anc(1.6, "2026-11-19")])
    assert one(LAB, p).value is True
    p = patient(medications=courses, observations=[_anc(0.9, "2026-08-30"), _anc(1.1, "2026-11-19")])
    assert one(LAB, p).value is False
    p = patient(medications=courses, observations=[_anc(0.9, "2026-08-30")])  # nothing before the second
    assert one(LAB, p).value is None


def test_the_default_lab_window_does_not_apply_to_an_anchored_lab():
    t = trial('valueset chemo = ATC:L01\ninclusion I1 "x" = ANC >= 1500/mm3 within 3 days before medication chemo\n',
              header='trial "T-1"\nlab window 14 days\n')
    old = patient(medications=[{"code": "ATC:L01XA01", "start": "2026-01-20"}], observations=[_anc(1.8, "2026-01-18")])
    assert one(t, old).value is True


def test_a_lab_takes_only_a_window_around_the_anchor():
    with pytest.raises(SourceError) as info:
        trial('valueset chemo = ATC:L01\ninclusion I1 "x" = ANC >= 1500/mm3 after medication chemo\n')
    (problem,) = info.value.diagnostics
    assert "a lab result is tested in a window around the anchor, not `after` it" in problem.message
    assert problem.span.line == 3
