"""The shape of the generated query where it was restructured for speed, and the verdicts those parts decide.

Each restructuring (one pass over a record kind for all its record tests, occasions folded per group of
results sharing their dates, lab comparisons computed in stages, missing items as sorted sets) is
checked against the per-patient engine on patients built to hit it, with the values a user reads.
"""
from __future__ import annotations

from datetime import date

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

from screening import compile_text, patient_from_document  # noqa: E402
from screening.population import plan  # noqa: E402
from screening.population import duckdb as popduck  # noqa: E402
from screening.population.loader import tables_from_documents  # noqa: E402

AS_OF = date(2026, 11, 25)


def _screen(rules: str, docs: list[dict]) -> tuple[dict, dict]:
    """(SQL rows by patient, per-patient criteria by patient), each criterion checked equal in both engines."""
    trial = compile_text(rules, "t.crit")
    rows = {r["patient_id"]: r for r in popduck.screen_trial(popduck.connect(tables_from_documents(docs)), trial,
                                                              AS_OF).to_pylist()}
    python = {}
    for doc in docs:
        result = trial.screen(patient_from_document(doc), AS_OF)
        row = rows[doc["id"]]
        for c in result.criteria:
            assert (row[c.id], row[f"{c.id}__verdict"], sorted(row[f"{c.id}__missing"])) == \
                (c.value, c.verdict, sorted(set(c.missing))), (doc["id"], c.id)
        assert row["decision"] == result.decision, doc["id"]
        python[doc["id"]] = {c.id: c for c in result.criteria}
    return rows, python


def _wbc(date_: str, value: float) -> dict:
    return {"code": "LOINC:6690-2", "value": value, "unit": "10*3/uL", "date": date_}


OCCASIONS = 'trial "T"\nexclusion X1 "low WBC twice" = WBC < 3 x 10^9/L on at least 2 occasions within 12 months\n'


def test_results_on_the_same_day_are_one_occasion_and_partial_dates_may_be_another():
    docs = [
        # two low results of the same day and value: one occasion, no proof of a second
        {"id": "same-day", "observations": [_wbc("2026-10-01", 2.1), _wbc("2026-10-01", 2.1)]},
        # two low results on different days: two occasions
        {"id": "two-days", "observations": [_wbc("2026-10-01", 2.1), _wbc("2026-10-05", 2.4)]},
        # the same month twice: the second may be another specimen (unknown)
        {"id": "same-month", "observations": [_wbc("2026-09", 2.1), _wbc("2026-09", 2.1)]},
        # one low result, then a normal one after it: ruled out
        {"id": "recovered", "observations": [_wbc("2026-08-01", 2.1), _wbc("2026-10-01", 6.0)]},
        # one low result dated and one undated: the undated one is an occasion of its own (outside a window: unknown)
        {"id": "undated", "observations": [_wbc("2026-08-01", 2.1), {"code": "LOINC:6690-2", "value": 2.2,
                                                                      "unit": "10*3/uL"}]},
    ]
    rows, _ = _screen(OCCASIONS, docs)
    assert rows["same-day"]["X1"] is None
    assert rows["same-day"]["X1__missing"] == ["a repeat WBC result within 12 months"]
    assert (rows["two-days"]["X1"], rows["two-days"]["X1__verdict"]) == (True, "fail")
    assert rows["same-month"]["X1"] is None
    assert rows["same-month"]["X1__missing"] == [
        "WBC result of 2026-09: may be another specimen than a result of the same month or year"]
    assert (rows["recovered"]["X1"], rows["recovered"]["X1__verdict"]) == (False, "pass")
    assert rows["undated"]["X1"] is None


RECORDS = '''trial "T"
valueset t2 "type 2 diabetes" = ICD10:E11
valueset ca "malignancy" = ICD10:C00-C96
valueset heart "heart" = ICD10:I50
inclusion X1 "t2" = condition t2
exclusion X2 "cancer" = active condition ca within 5 years
exclusion X3 "heart" = condition heart with stage = "IV"
inclusion X4 "both" = condition t2 and not condition heart
'''


def test_every_record_test_of_a_kind_is_one_pass_over_its_records():
    checked = compile_text(RECORDS, "t.crit").checked
    query = plan(checked, AS_OF)
    assert query.sql.startswith("WITH rc_conditions AS (")  # the records with their code classes, first
    assert query.sql.count("rt_conditions AS (") == 1 and query.sql.count("JOIN rt_conditions") == 1
    assert query.sql.count("dict_record_codes") == 1  # joined once, in rc_conditions
    assert not [name for name, _ in query.prepare if name.startswith(("rc_", "rt_"))]  # nothing for a runner to do


def test_record_tests_decided_in_one_pass_keep_their_own_answers_and_reasons():
    docs = [
        {"id": "t2", "conditions": [{"code": "ICD10:E11.9", "onset": "2020-01-01"}]},
        {"id": "t2-heart", "conditions": [{"code": "ICD10:E11.9", "onset": "2020-01-01"},
                                          {"code": "ICD10:I50.9", "onset": "2021-01-01", "stage": "IV"}]},
        {"id": "ca-old", "conditions": [{"code": "ICD10:C50.9", "onset": "2015-01-01", "status": "resolved",
                                         "end": "2016-01-01"}]},
        {"id": "ca-text", "conditions": [{"display": "breast ca", "unreadable": "coded only as text",
                                          "onset": "2025-01-01"}]},
        {"id": "heart-no-stage", "conditions": [{"code": "ICD10:I50.9", "onset": "2021-01-01"}]},
        {"id": "none", "conditions": []},
        {"id": "absent"},
    ]
    rows, _ = _screen(RECORDS, docs)
    assert [rows["t2"][x] for x in ("X1", "X2", "X3", "X4")] == [True, False, False, True]
    assert [rows["t2-heart"][x] for x in ("X1", "X3", "X4")] == [True, True, False]
    assert rows["t2-heart"]["decision"] == "ineligible"
    assert rows["ca-old"]["X2"] is False
    assert rows["ca-text"]["X1"] is None and rows["ca-text"]["X2"] is None
    assert rows["ca-text"]["X2__missing"] == [
        "condition 'breast ca' ($.conditions[0]): coded only as text: cannot tell whether it is in malignancy"]
    assert rows["heart-no-stage"]["X3"] is None
    assert [rows["none"][x] for x in ("X1", "X2", "X3")] == [False, False, False]
    assert rows["absent"]["X1__missing"] == ["conditions (not provided)"]


def test_missing_items_are_a_sorted_set():
    rules = ('trial "T"\ninclusion X1 "labs" = creatinine <= 1.5 mg/dL and HbA1c <= 9 % and ALT <= 2 x ULN '
             'and fact consent\n')
    docs = [{"id": "empty", "observations": [], "facts": {}}]
    rows, _ = _screen(rules, docs)
    assert rows["empty"]["X1__missing"] == ["ALT result", "HbA1c result", "creatinine result", "fact consent"]


def test_a_latest_result_with_an_overlapping_older_one_of_another_answer_is_unknown():
    rules = 'trial "T"\ninclusion X1 "creatinine" = creatinine <= 1.5 mg/dL\n'
    cr = "LOINC:2160-0"
    docs = [
        # the month's result may be older or newer than the one of the 10th: the answer depends on it
        {"id": "tie", "observations": [{"code": cr, "value": 1.0, "unit": "mg/dL", "date": "2026-10-10"},
                                       {"code": cr, "value": 2.0, "unit": "mg/dL", "date": "2026-10"}]},
        # the same, with the same answer: decided
        {"id": "agree", "observations": [{"code": cr, "value": 1.0, "unit": "mg/dL", "date": "2026-10-10"},
                                         {"code": cr, "value": 1.2, "unit": "mg/dL", "date": "2026-10"}]},
    ]
    rows, _ = _screen(rules, docs)
    assert rows["tie"]["X1"] is None
    assert rows["tie"]["X1__missing"] == [
        "creatinine result of 2026-10: which result is the latest depends on a date known only to the month or year"]
    assert rows["agree"]["X1"] is True


def test_the_unordered_query_gives_the_same_rows_without_the_final_sort():
    """`screening batch` joins each trial's rows to the patients and sorts every trial's rows once: it runs the
    query without its ORDER BY (a sort of every wide row for nothing); the rows are the same."""
    rules = 'trial "T"\ninclusion X1 "HbA1c" = HbA1c <= 9 %\n'
    docs = [{"id": f"p{i}", "observations": [{"code": "LOINC:4548-4", "value": 7.0 + i, "unit": "%",
                                               "date": "2026-10-01"}]} for i in (3, 0, 2, 1)]
    trial = compile_text(rules, "t.crit")
    query = plan(trial.checked, AS_OF)
    assert query.sql.endswith(" ORDER BY patient_id")
    assert query.unordered_sql == query.sql[:-len(" ORDER BY patient_id")]
    assert "ORDER BY patient_id" not in query.unordered_sql[-200:]
    con = popduck.connect(tables_from_documents(docs))
    popduck.screen_trial(con, trial, AS_OF)  # dictionaries and intermediate tables
    ordered = con.execute(query.sql).fetchall()
    unordered = con.execute(query.unordered_sql).fetchall()
    assert [r[0] for r in ordered] == ["p0", "p1", "p2", "p3"]
    assert sorted(unordered) == ordered
    # the values a user reads: 7 % and 8 % and 9 % pass, 10 % fails
    assert {r[0]: r[1] for r in ordered} == {"p0": "eligible", "p1": "eligible", "p2": "eligible", "p3": "ineligible"}


def test_numbers_no_double_holds_odd_units_and_year_one_are_worded_alike_in_both_engines():
    rules = ('trial "T"\ninclusion X1 "AST" = AST <= 2 x ULN\n'
             'inclusion X2 "alive" = age >= 18 years\n')
    ast = "LOINC:1920-8"
    docs = [
        {"id": "huge", "birth_date": "1950", "observations": [
            {"code": ast, "value": -10 ** 40, "unit": "U/L", "date": "2026-11-20"}]},
        {"id": "big", "birth_date": "1950", "observations": [
            {"code": ast, "value": -(2 ** 63) - 1, "unit": "U/L", "date": "2026-11-20"}]},
        {"id": "range", "birth_date": "1950", "observations": [
            {"code": ast, "value": 29, "unit": "U/L", "date": "2026-11-20",
             "reference_range": {"low": 9007199254740993, "high": 40}}]},
        {"id": "unit", "birth_date": "1950", "observations": [
            {"code": ast, "value": 29, "unit": "x'y\tz", "date": "2026-11-20"}]},
        {"id": "year1", "birth_date": "0001"},
        {"id": "dead1", "birth_date": "1950", "deceased": "0001-01"},
        {"id": "dead2", "birth_date": "1950", "deceased": "0001"},
    ]
    rows, _ = _screen(rules, docs)  # every criterion's value, verdict and missing items equal in both engines
    trial = compile_text(rules, "t.crit")
    for pid, shown in (("dead1", "0001-01"), ("dead2", "0001")):
        python = trial.screen(patient_from_document(next(d for d in docs if d["id"] == pid)), AS_OF)
        assert rows[pid]["decision_reason"] == python.decision_reason == f"patient died on {shown}"
    assert rows["huge"]["X1__missing"] == ["AST result of 2026-11-20: -1e+40 U/L is negative, which no AST result can be"]
    assert rows["big"]["X1__missing"] == [
        "AST result of 2026-11-20: -9223372036854775808 U/L is negative, which no AST result can be"]
    assert rows["range"]["X1__missing"] == [
        "reference range (ULN) for AST: $.observations[0].reference_range runs backwards (low 9007199254740992 > high 40)"]
    assert rows["unit"]["X1__missing"] == ["AST result of 2026-11-20: 'x'y\tz' cannot be used: unknown unit \"x'y\\tz\""]
