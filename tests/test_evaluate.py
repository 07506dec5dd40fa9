"""Evaluation semantics: Kleene logic, missing data, windows, partial dates, limits of normal, units."""
from datetime import date

import pytest

from helpers import AS_OF, obs, one, patient, trial

ALT = "LOINC:1742-6"
PLT = "LOINC:777-3"
WBC = "LOINC:6690-2"
CREAT = "LOINC:2160-0"


# ---------------------------------------------------------------- Kleene logic
@pytest.mark.parametrize("expression, value", [
    ("fact t and fact m", None), ("fact f and fact m", False), ("fact m and fact f", False),
    ("fact t or fact m", True), ("fact m or fact t", True), ("fact f or fact m", None),
    ("not fact m", None), ("not fact t", False),
    ("fact t unless fact m", None), ("fact f unless fact m", False), ("fact t unless fact f", True),
    ("at least 2 of (fact t, fact t, fact m)", True), ("at least 2 of (fact t, fact f, fact m)", None),
    ("at least 2 of (fact f, fact f, fact m)", False), ("at most 1 of (fact t, fact m)", None),
    ("at most 1 of (fact t, fact f)", True), ("at most 1 of (fact t, fact t)", False),
    ("any of (fact f, fact m)", None), ("all of (fact t, fact t)", True),
    ("if fact m then fact t else fact t", True), ("if fact m then fact t else fact f", None),
    ("if fact f then fact m else fact t", True),
    ("known(fact m)", False), ("known(fact f)", True),
])
def test_three_valued_logic(expression, value):
    t = trial(f'inclusion I1 "x" = {expression}\n')
    p = patient(facts={"t": True, "f": False})
    assert one(t, p).value is value


def test_missing_fact_is_named_and_unknown_never_false():
    t = trial('inclusion I1 "x" = fact consent\n')
    result = one(t, patient(facts={}))
    assert (result.verdict, result.value, result.missing) == ("unknown", None, ["fact consent"])


def test_data_that_could_not_change_the_answer_is_not_reported_missing():
    t = trial('exclusion E1 "x" = fact m and fact f\n')
    result = one(t, patient(facts={"f": False}))
    assert (result.verdict, result.missing) == ("pass", [])


# ---------------------------------------------------------------- labs, units, limits of normal
def test_uln_from_the_observation_with_margin_in_words():
    t = trial('exclusion E1 "x" = ALT > 2 x ULN\n')
    result = one(t, patient(observations=[obs(ALT, 95, "U/L", low=7, high=40)]))
    assert (result.verdict, result.value) == ("fail", True)
    assert "ALT 95 U/L on 2026-11-10; limit 2 x ULN: ULN 40 U/L (from the observation) = 80 U/L; over by 15 U/L" \
        in result.explanation


def test_uln_from_the_rule_sets_table_by_sex_and_unknown_without_one():
    body = ('reference range ALT = 7 to 40 U/L\nreference range ALT for female = 7 to 35 U/L\n'
            'exclusion E1 "x" = ALT > 2 x ULN\n')
    t = trial(body)
    female = one(t, patient(sex="female", observations=[obs(ALT, 75, "U/L")]))
    male = one(t, patient(sex="male", observations=[obs(ALT, 75, "U/L")]))
    assert (female.value, male.value) == (True, False)  # 75 > 70, 75 <= 80
    assert "from the rule set's reference ranges" in female.explanation
    bare = one(trial('exclusion E1 "x" = ALT > 2 x ULN\n'), patient(observations=[obs(ALT, 75, "U/L")]))
    assert (bare.verdict, bare.missing) == ("unknown", ["reference range (ULN) for ALT"])


def test_patient_units_are_converted_and_the_limit_shown_in_the_patients_unit():
    t = trial('reference range ALT = 7 to 40 U/L\nexclusion E1 "x" = ALT > 2 x ULN\n')
    result = one(t, patient(observations=[obs(ALT, 1.5, "ukat/L")]))  # 90 U/L
    assert result.value is True
    assert "ALT 1.5 ukat/L" in result.explanation and "= 1.33333 ukat/L" in result.explanation


@pytest.mark.parametrize("value, unit, passes", [
    (100, "10^9/L", True), (100000, "/mm3", True), (100, "10*3/uL", True), (99999, "cells/mm3", False),
    (100, "x10^3/uL", True), (0.1, "10*12/L", True),
])
def test_equal_quantities_in_other_units_compare_equal(value, unit, passes):
    t = trial('inclusion I1 "x" = platelets >= 100 x 10^9/L\n')
    assert one(t, patient(observations=[obs(PLT, value, unit)])).value is passes


def test_creatinine_in_umol_per_litre_against_mg_per_dl():
    t = trial('inclusion I1 "x" = creatinine <= 1.5 mg/dL\n')
    assert one(t, patient(observations=[obs(CREAT, 132, "umol/L")])).value is True
    # 1.5 mg/dL = 132.6 umol/L: 133 umol/L, at the precision it is written with, is 1.50 mg/dL
    # (docs/semantics.md, the unit-precision rule); 134 umol/L is 1.52 mg/dL
    assert one(t, patient(observations=[obs(CREAT, 133, "umol/L")])).value is True
    assert one(t, patient(observations=[obs(CREAT, 134, "umol/L")])).value is False
    assert one(t, patient(observations=[obs(CREAT, 132.7, "umol/L")])).value is False  # 1.501 mg/dL


def test_patient_value_in_an_unconvertible_unit_is_unknown_with_the_reason():
    t = trial('inclusion I1 "x" = creatinine <= 1.5 mg/dL\n')
    result = one(t, patient(observations=[obs(CREAT, 1.0, "U/L")]))
    assert result.verdict == "unknown"
    assert "cannot be used" in result.explanation and "incompatible" in result.explanation


def test_latest_value_wins_and_future_results_are_ignored():
    t = trial('inclusion I1 "x" = platelets >= 100 x 10^9/L\n')
    p = patient(observations=[obs(PLT, 150, "10^9/L", day="2026-10-01"), obs(PLT, 80, "10^9/L", day="2026-11-20"),
                              obs(PLT, 300, "10^9/L", day="2026-12-01")])
    assert one(t, p).value is False
    assert one(t, p, as_of=date(2026, 11, 1)).value is True


def test_window_and_calendar_months():
    t = trial('inclusion I1 "x" = platelets >= 100 x 10^9/L within 6 months\n')
    inside = patient(observations=[obs(PLT, 150, "10^9/L", day="2026-05-25")])
    outside = patient(observations=[obs(PLT, 150, "10^9/L", day="2026-05-24")])
    assert one(t, inside).value is True
    result = one(t, outside)
    assert (result.value, result.missing) == (None, ["platelets result within 6 months"])
    # month ends clip: 6 months before 2026-08-31 is 2026-02-28
    t1 = trial('inclusion I1 "x" = platelets >= 100 x 10^9/L within 6 months\n')
    edge = patient(observations=[obs(PLT, 150, "10^9/L", day="2026-02-28")])
    assert one(t1, edge, as_of=date(2026, 8, 31)).value is True
    assert one(t1, edge, as_of=date(2026, 9, 1)).value is None


def test_repeated_measurement_on_occasions():
    t = trial('inclusion I1 "x" = WBC < 4,000/mm3 on at least 2 occasions\n')
    two = patient(observations=[obs(WBC, 3.5, "10^9/L", day="2026-01-01"), obs(WBC, 3900, "/mm3", day="2026-03-01")])
    once = patient(observations=[obs(WBC, 3.5, "10^9/L", day="2026-01-01"), obs(WBC, 4000, "/mm3", day="2026-03-01")])
    assert one(t, two).value is True
    assert one(t, once).value is False
    assert one(t, patient(observations=[])).value is None


def test_any_and_every_selectors():
    p = patient(observations=[obs(ALT, 30, "U/L", day="2026-10-01"), obs(ALT, 130, "U/L", day="2026-06-01")])
    assert one(trial('exclusion E1 "x" = any ALT > 100 U/L\n'), p).value is True
    assert one(trial('exclusion E1 "x" = any ALT > 100 U/L within 3 months\n'), p).value is False
    assert one(trial('exclusion E1 "x" = every ALT < 100 U/L\n'), p).value is False


def test_hba1c_ifcc_and_ngsp():
    t = trial('inclusion I1 "x" = HbA1c between 6.5 % and 9.5 %\n')
    assert one(t, patient(observations=[obs("LOINC:4548-4", 53, "mmol/mol")])).value is True  # 7.0 %
    assert one(t, patient(observations=[obs("LOINC:4548-4", 42, "mmol/mol")])).value is False  # 6.0 %


def test_partial_dates_give_unknown_only_when_the_answer_depends_on_them():
    t = trial('inclusion I1 "x" = age between 18 and 60\n')
    assert one(t, patient(birth_date="1990")).value is True
    straddling = one(t, patient(birth_date="1965"))  # 61 or 60 on 2026-11-25
    assert (straddling.value, straddling.verdict) == (None, "unknown")
    assert one(t, patient(birth_date="1966")).value is True  # 59 or 60: inside either way
    assert one(t, patient(birth_date="1965-12")).value is True  # 60 in any case
    assert one(t, patient()).missing == ["birth_date"]


def test_age_in_whole_years_on_the_birthday():
    t = trial('inclusion I1 "x" = age >= 18\n')
    assert one(t, patient(birth_date="2008-11-25")).value is True
    assert one(t, patient(birth_date="2008-11-26")).value is False


# ---------------------------------------------------------------- records
CONDITIONS = 'valueset mal = ICD10:C00-C96\nvalueset acs = ICD10:I21, SNOMED:394659003\n'


def test_icd10_ranges_and_prefixes():
    t = trial(CONDITIONS + 'exclusion E1 "x" = condition mal\n')
    assert one(t, patient(conditions=[{"code": "ICD10:C50.911"}])).value is True
    assert one(t, patient(conditions=[{"code": "ICD10:D05.1"}])).value is False
    assert one(t, patient(conditions=[{"code": "ICD10:C97"}])).value is False


def test_absent_list_is_unknown_and_empty_list_is_none_recorded():
    t = trial(CONDITIONS + 'exclusion E1 "x" = condition mal\n')
    absent = one(t, patient())
    assert (absent.verdict, absent.missing) == ("unknown", ["conditions (not provided)"])
    empty = one(t, patient(conditions=[]))
    assert (empty.verdict, empty.value) == ("pass", False)


def test_condition_within_a_calendar_window_with_partial_onset():
    t = trial(CONDITIONS + 'exclusion E1 "x" = condition acs within 6 months\n')
    recent = patient(conditions=[{"code": "ICD10:I21.4", "onset": "2026-08-01", "status": "active"}])
    old = patient(conditions=[{"code": "ICD10:I21.4", "onset": "2024-01-01", "end": "2024-02-01"}])
    straddle = patient(conditions=[{"code": "ICD10:I21.4", "onset": "2026-05", "end": "2026-05",
                                    "status": "resolved"}])
    assert one(t, recent).value is True
    assert one(t, old).value is False
    assert one(t, straddle).value is None


def test_active_status_and_unknown_status():
    t = trial(CONDITIONS + 'exclusion E1 "x" = active condition acs\n')
    assert one(t, patient(conditions=[{"code": "ICD10:I21", "status": "resolved"}])).value is False
    assert one(t, patient(conditions=[{"code": "ICD10:I21", "status": "active"}])).value is True
    assert one(t, patient(conditions=[{"code": "ICD10:I21"}])).value is None


def test_record_qualifiers():
    t = trial('valueset cyc = RXNORM:3002\n'
              'inclusion I1 "x" = medication cyc with route = "iv" with response = "failed"\n')
    failed = patient(medications=[{"code": "RXNORM:3002", "route": "IV", "response": "Failed"}])
    partial = patient(medications=[{"code": "RXNORM:3002", "route": "IV", "response": "partial"}])
    unknown = patient(medications=[{"code": "RXNORM:3002", "route": "IV"}])
    assert [one(t, p).value for p in (failed, partial, unknown)] == [True, False, None]


# ---------------------------------------------------------------- criteria, verdicts, decisions
def test_conditional_criterion_does_not_apply_when_its_premise_is_false():
    t = trial('inclusion I1 "x" = applies if sex is female: fact pregnancy_test_negative\n')
    male = one(t, patient(sex="male"))
    assert (male.verdict, male.applicable, male.value) == ("pass", False, None)
    assert male.explanation.startswith("does not apply: `sex is female` is false")
    female = one(t, patient(sex="female", facts={"pregnancy_test_negative": False}))
    assert (female.verdict, female.applicable) == ("fail", True)
    nosex = one(t, patient(facts={"pregnancy_test_negative": True}))
    assert nosex.verdict == "pass"  # moot: met whether or not it applies
    nosex_no = one(t, patient(facts={"pregnancy_test_negative": False}))
    assert (nosex_no.verdict, nosex_no.applicable, nosex_no.missing) == ("unknown", None, ["sex"])


def test_review_verdict_and_decisions():
    t = trial('inclusion I1 "a" = age >= 18\nexclusion E1 "b" = review "investigator opinion"\n'
              'exclusion E2 "c" = fact smoker\n')
    result = t.screen(patient(birth_date="1980-01-01", facts={"smoker": False}), AS_OF)
    assert [c.verdict for c in result.criteria] == ["pass", "review", "pass"]
    assert result.criteria[1].reviews == ["investigator opinion"]
    assert result.decision == "undetermined"
    assert t.screen(patient(birth_date="2015-01-01", facts={"smoker": False}), AS_OF).decision == "ineligible"
    eligible = trial('inclusion I1 "a" = age >= 18\n')
    assert eligible.screen(patient(birth_date="1980-01-01"), AS_OF).decision == "eligible"


def test_defines_are_evaluated_once_and_named_in_evidence():
    t = trial('define adult "adult" = age >= 18\ninclusion I1 "x" = adult and adult\n')
    result = one(t, patient(birth_date="1980-01-01"))
    assert [e.rule for e in result.evidence] == ["adult: age >= 18"]


def test_draft_criteria_are_flagged():
    t = trial('draft inclusion I1 "x" = age >= 18\n')
    result = one(t, patient(birth_date="1980-01-01"))
    assert result.draft and result.explanation.startswith("DRAFT")
    assert result.to_dict()["draft"] is True


def test_json_contract_fields():
    t = trial('exclusion E1 "registry text" = fact x\n')
    data = t.screen(patient(facts={"x": True}), AS_OF).to_dict()
    assert {"trial", "patient", "as_of", "decision", "criteria"} <= set(data)
    assert data["as_of"] == "2026-11-25" and data["decision"] == "ineligible"
    c = data["criteria"][0]
    assert {k: c[k] for k in ("id", "kind", "text", "verdict", "value", "missing")} == {
        "id": "E1", "kind": "exclusion", "text": "registry text", "verdict": "fail", "value": True, "missing": []}
    assert c["explanation"] == "fact x is true: fact x = true"


def test_qualitative_results_text_and_numeric():
    t = trial('inclusion I1 "x" = anti_dsDNA is positive\n')
    numeric_high = patient(observations=[obs("LOINC:5130-0", 250, "[IU]/mL", low=0, high=30)])
    numeric_low = patient(observations=[obs("LOINC:5130-0", 12, "[IU]/mL", low=0, high=30)])
    no_range = one(t, patient(observations=[obs("LOINC:5130-0", 250, "[IU]/mL")]))
    assert one(t, numeric_high).value is True and one(t, numeric_low).value is False
    assert "positive means above the upper limit 30 [IU]/mL" in one(t, numeric_high).explanation
    assert (no_range.value, no_range.missing) == (None, ["reference range (ULN) for anti_dsDNA"])
    ana = trial('inclusion I1 "x" = ANA is positive\n')
    assert one(ana, patient(observations=[obs("LOINC:5048-4", "Positive 1:320")])).value is True
    assert one(ana, patient(observations=[obs("LOINC:5048-4", "Non-reactive")])).value is False
    # issue 7: an indeterminate result is unknown (named), not "not positive"
    assert one(ana, patient(observations=[obs("LOINC:5048-4", "equivocal")])).value is None


def test_fast_screen_keeps_review_and_missing_for_open_criteria():
    t = trial('exclusion E1 "a" = review "ask"\nexclusion E2 "b" = fact x\ninclusion I1 "c" = age >= 18\n')
    p = patient(birth_date="1980-01-01")
    quick = t.screen(p, AS_OF, explain=False)
    assert [(c.verdict, c.missing, c.reviews) for c in quick.criteria] == [
        ("review", [], ["ask"]), ("unknown", ["fact x"], []), ("pass", [], [])]
    assert quick.criteria[2].explanation == ""  # passing criteria are not explained on the fast path


def test_partial_birth_date_names_what_is_missing():
    t = trial('inclusion I1 "x" = age between 18 and 60\n')
    result = one(t, patient(birth_date="1965"))
    assert result.missing == ["birth_date (a full date: the year or month alone does not decide)"]


HB = "LOINC:718-7"


def test_latest_is_unknown_when_a_partial_date_makes_the_order_unknown():
    t = trial('inclusion I1 "x" = hemoglobin >= 9 g/dL\n')
    ambiguous = patient(observations=[obs(HB, 8.0, "g/dL", day="2026-03"), obs(HB, 12.0, "g/dL", day="2026-03-15")])
    result = one(t, ambiguous)
    assert result.value is None
    assert "which result is the latest depends on a date known only to the month or year" in result.explanation
    agreeing = patient(observations=[obs(HB, 10.0, "g/dL", day="2026-03"), obs(HB, 12.0, "g/dL", day="2026-03-15")])
    assert one(t, agreeing).value is True  # either order gives the same answer


def test_record_dated_only_by_a_year_that_may_be_after_the_as_of_date():
    t = trial('valueset t2d = ICD10:E11\ninclusion I1 "x" = condition t2d\n')
    result = one(t, patient(conditions=[{"code": "ICD10:E11.9", "onset": "2026", "status": "active"}]))
    assert (result.value, result.missing) == (None, ["condition ICD10:E11.9: its date may fall after the as-of date"])
    assert one(t, patient(conditions=[{"code": "ICD10:E11.9", "onset": "2025"}])).value is True


def test_every_with_a_failing_result_that_may_be_inside_the_window():
    t = trial('inclusion I1 "x" = every hemoglobin >= 9 g/dL within 6 months\n')
    p = patient(observations=[obs(HB, 8.0, "g/dL", day="2026-05"), obs(HB, 12.0, "g/dL", day="2026-10-01")])
    assert one(t, p).value is None  # the window starts 2026-05-25: the May result may be inside it
    outside = patient(observations=[obs(HB, 8.0, "g/dL", day="2026-04"), obs(HB, 12.0, "g/dL", day="2026-10-01")])
    assert one(t, outside).value is True


def test_age_between_with_a_year_only_birth_date_checks_the_whole_range():
    t = trial('inclusion I1 "x" = age between 12 and 18 months\n')
    assert one(t, patient(birth_date="2025")).value is None  # 10 to 22 months: some inside, some not
    assert one(t, patient(birth_date="2025-07")).value is True  # 16 months either way
    not_equal = trial('inclusion I1 "x" = age != 60\n')
    assert one(not_equal, patient(birth_date="1965")).value is None
    assert one(not_equal, patient(birth_date="1960-01")).value is True


def test_an_active_record_whose_start_may_follow_the_as_of_date_is_unknown():
    t = trial('valueset hf = ICD10:I50\nexclusion E1 "x" = active condition hf\n')
    for onset in ("2026", "2026-11"):
        result = one(t, patient(conditions=[{"code": "ICD10:I50.9", "onset": onset, "status": "active"}]))
        assert (result.value, result.missing) == (None, ["condition ICD10:I50.9: its date may fall after the as-of date"])
    assert one(t, patient(conditions=[{"code": "ICD10:I50.9", "onset": "2026-12", "status": "active"}])).value is False
    assert one(t, patient(conditions=[{"code": "ICD10:I50.9", "onset": "2026-10", "status": "active"}])).value is True
