"""The population engine's parts: the store's schema, the unit-precision rule in SQL, single verdicts."""
from __future__ import annotations

import random
from datetime import date

import pytest

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

from screening import compile_text, patient_from_document  # noqa: E402
from screening.analytes import catalogue  # noqa: E402
from screening.population import compile_sql, plan  # noqa: E402
from screening.population import duckdb as popduck  # noqa: E402
from screening.population import schema  # noqa: E402
from screening.population.loader import tables_from_documents  # noqa: E402
from screening.population.sql import conversion_stages  # noqa: E402
from screening.units import parse_unit  # noqa: E402

AS_OF = date(2026, 11, 25)


def _sql_apply_written(rows, conversion):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (v DOUBLE, i BOOLEAN)")
    con.executemany("INSERT INTO t VALUES (?, ?)", rows)
    import math
    lf = math.log10(abs(conversion.factor))
    source = (f"SELECT v, i, CAST({conversion.factor!r} AS DOUBLE) AS f, CAST({conversion.offset!r} AS DOUBLE) AS a, "
              f"{'TRUE' if conversion.exact else 'FALSE'} AS e, CAST({lf!r} AS DOUBLE) AS l FROM t")
    query = conversion_stages(source, {"x": ("v", "i", "f", "a", "e", "l")})
    return [r[0] for r in con.execute(f"SELECT x_c FROM ({query})").fetchall()]


@pytest.mark.parametrize("analyte,unit", [("creatinine", "umol/L"), ("HbA1c", "mmol/mol"), ("glucose", "mmol/L"),
                                          ("temperature", "[degF]"), ("platelets", "/mm3"), ("hemoglobin", "g/L"),
                                          ("hemoglobin", "mmol/L")])
def test_the_unit_precision_rule_in_sql_is_the_python_rule_exactly(analyte, unit):
    """Every value, written as an integer or with 1 to 4 decimals, converts to the very same double."""
    conversion = catalogue().lookup(analyte).conversion_from(parse_unit(unit))
    rng = random.Random(7)
    rows = []
    for _ in range(3000):
        digits = rng.choice([0, 0, 1, 2, 3, 4])
        value = round(rng.uniform(0.001, 1000) * 10 ** rng.randint(-2, 3), digits)
        rows.append((int(value), True) if digits == 0 else (value, False))
    rows += [(53, True), (133, True), (7.0, False), (84.69, False), (1.005, False), (0.5, False), (32, True)]
    expected = [conversion.apply_written(int(v) if i else v) for v, i in rows]
    assert _sql_apply_written(rows, conversion) == expected


def test_hba1c_of_53_mmol_mol_is_7_percent_in_both_engines():
    trial = compile_text('trial "T"\ninclusion I1 "x" = HbA1c >= 7.0 %\n', "t.crit")
    doc = {"id": "A", "observations": [{"code": "LOINC:4548-4", "value": 53, "unit": "mmol/mol", "date": "2026-11-01"}]}
    row = popduck.screen_trial(popduck.connect(tables_from_documents([doc])), trial, AS_OF).to_pylist()[0]
    assert row["I1"] is True and row["I1__verdict"] == "pass"
    assert trial.screen(patient_from_document(doc), AS_OF).criteria[0].value is True


def test_an_absent_list_is_unknown_and_an_empty_list_is_none():
    trial = compile_text('trial "T"\nvalueset ca "cancer" = ICD10:C00-C96\nexclusion E1 "x" = condition ca\n', "t.crit")
    docs = [{"id": "absent"}, {"id": "empty", "conditions": []},
            {"id": "has", "conditions": [{"code": "ICD10:C50.9"}]},
            {"id": "unreadable", "conditions": [{"unreadable": "coded only as text", "display": "breast ca"}]}]
    tables = tables_from_documents(docs)
    flags = dict(zip(tables["patients"]["patient_id"].to_pylist(), tables["patients"]["has_conditions"].to_pylist()))
    assert flags == {"absent": False, "empty": True, "has": True, "unreadable": True}
    rows = {r["patient_id"]: r for r in popduck.screen_trial(popduck.connect(tables), trial, AS_OF).to_pylist()}
    assert (rows["absent"]["E1"], rows["absent"]["E1__missing"]) == (None, ["conditions (not provided)"])
    assert (rows["empty"]["E1"], rows["empty"]["E1__verdict"]) == (False, "pass")
    assert (rows["has"]["E1"], rows["has"]["E1__verdict"]) == (True, "fail")
    assert rows["unreadable"]["E1"] is None
    assert rows["unreadable"]["E1__missing"] == [
        "condition 'breast ca' ($.conditions[0]): coded only as text: cannot tell whether it is in cancer"]


def test_death_decides_as_in_the_per_patient_engine():
    trial = compile_text('trial "T"\ninclusion I1 "x" = age >= 18\n', "t.crit")
    docs = [{"id": "a", "birth_date": "1960-01-01", "deceased": True},
            {"id": "b", "birth_date": "1960-01-01", "deceased": "2026-11"},
            {"id": "c", "birth_date": "1960-01-01", "deceased": "2027-01-02"},
            {"id": "d", "birth_date": "1960-01-01"}]
    rows = popduck.screen_trial(popduck.connect(tables_from_documents(docs)), trial, AS_OF).to_pylist()
    assert [(r["decision"], r["decision_reason"]) for r in rows] == [
        ("ineligible", "patient recorded as deceased (date of death not recorded)"),
        ("undetermined", "patient may have died on or before the as-of date (date of death 2026-11)"),
        ("eligible", None), ("eligible", None)]


def test_the_ddl_creates_every_table_of_the_store():
    con = duckdb.connect()
    for statement in schema.duckdb_ddl():
        con.execute(statement)
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert names == set(schema.TABLES)
    columns = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                         "'observations' ORDER BY ordinal_position").fetchall()]
    assert columns == schema.OBSERVATIONS.names


def test_the_query_transpiles_to_spark_sql():
    trial = compile_text('trial "T"\ninclusion I1 "x" = age >= 18 and fact consent\n', "t.crit")
    text = compile_sql(trial.checked, AS_OF, dialect="spark")
    assert "`I1`" in text and "patients" in text
    assert plan(trial.checked, AS_OF).prepare == []  # no observations read: nothing to materialise


def test_screen_tables_gives_one_row_per_trial_and_patient():
    one = compile_text('trial "A"\ninclusion I1 "x" = age >= 18\n', "a.crit")
    two = compile_text('trial "B"\nexclusion E1 "y" = fact pregnant\ninclusion I1 "z" = sex is female\n', "b.crit")
    docs = [{"id": "p1", "birth_date": "1990-01-01", "sex": "female", "facts": {"pregnant": False}},
            {"id": "p2", "birth_date": "2015-01-01"}]
    table = popduck.screen_tables(popduck.connect(tables_from_documents(docs)), [one, two], AS_OF)
    rows = [(r["trial"], r["patient_id"], r["decision"], [(c["id"], c["value"], c["verdict"]) for c in r["criteria"]])
            for r in table.to_pylist()]
    assert rows == [
        ("A", "p1", "eligible", [("I1", True, "pass")]),
        ("A", "p2", "ineligible", [("I1", False, "fail")]),
        ("B", "p1", "eligible", [("E1", False, "pass"), ("I1", True, "pass")]),
        ("B", "p2", "undetermined", [("E1", None, "unknown"), ("I1", None, "unknown")]),
    ]


def _both(rules: str, docs: list[dict]) -> dict:
    """Each patient's (value, verdict, missing) of criterion X1 from the SQL engine, checked equal to the per-patient
    engine's."""
    trial = compile_text(rules, "t.crit")
    rows = {r["patient_id"]: r for r in popduck.screen_trial(popduck.connect(tables_from_documents(docs)), trial,
                                                              AS_OF).to_pylist()}
    out = {}
    for doc in docs:
        c = trial.screen(patient_from_document(doc), AS_OF).criteria[0]
        row = rows[doc["id"]]
        assert (row["X1"], row["X1__verdict"], sorted(row["X1__missing"])) == (c.value, c.verdict, sorted(set(c.missing)))
        out[doc["id"]] = (row["X1"], sorted(row["X1__missing"]))
    return out


def test_a_daily_dose_total_adds_the_records_taken_on_the_same_day():
    rules = ('trial "T"\nvalueset steroid "corticosteroid" = ATC:H02AB\n'
             'exclusion X1 "x" = current medication steroid with dose > 10 mg/day prednisone equivalent\n')
    pred = {"code": "ATC:H02AB07", "status": "active", "start": "2026-10-01"}
    docs = [
        # 6 + 6 mg prednisone on the same day: 12 > 10, though each record alone is under the limit
        {"id": "sum", "medications": [{**pred, "daily_dose": {"value": 6, "unit": "mg/d"}},
                                      {**pred, "daily_dose": {"value": 6, "unit": "mg/d"}}]},
        {"id": "one", "medications": [{**pred, "daily_dose": {"value": 6, "unit": "mg/d"}}]},
        # 1.5 mg dexamethasone = 10 mg prednisone exactly (snapped), not over 10
        {"id": "dexa", "medications": [{"code": "ATC:H02AB02", "status": "active", "start": "2026-10-01",
                                        "daily_dose": {"value": 1.5, "unit": "mg/d"}}]},
        # betamethasone 1.5 mg: 10 to 12.5 mg prednisone (the table gives a range): unknown
        {"id": "range", "medications": [{"code": "ATC:H02AB01", "status": "active", "start": "2026-10-01",
                                         "daily_dose": {"value": 1.5, "unit": "mg/d"}}]},
        {"id": "nodose", "medications": [{**pred}]},
    ]
    found = _both(rules, docs)
    assert found["sum"] == (True, [])
    assert found["one"] == (False, [])
    assert found["dexa"] == (False, [])
    assert found["range"] == (None, ["medication ATC:H02AB01: its prednisone equivalent lies between 10 and 12.5 "
                                     "mg/day (the table gives a range for this drug)"])
    assert found["nodose"] == (None, ["medication ATC:H02AB07: dose not recorded"])


def test_set_qualifiers_not_in_text_lists_and_caused_by_in_sql():
    docs = [{"id": "a", "conditions": [{"code": "ICD10:C50.9", "histology": "SNOMED:35917007",
                                        "caused_by": "ATC:L01AA01"}],
             "procedures": [{"code": "CPT:50200", "date": "2026-01-01", "intent": "Palliative "}]},
            {"id": "b", "conditions": [{"code": "ICD10:C50.9", "histology": ["ICD10:C50.9", "SNOMED:1"],
                                        "caused_by": "cyclophosphamide"}],
             "procedures": [{"code": "CPT:50200", "date": "2026-01-01", "intent": ["curative", "x"]}]},
            {"id": "c", "conditions": [{"code": "ICD10:C50.9"}], "procedures": [{"code": "CPT:50200"}]}]
    head = 'trial "T"\nvalueset ca "malignancy" = ICD10:C00-C96\nvalueset lobular "lobular" = SNOMED:35917007\n'
    head += 'valueset cyclo "cyclophosphamide" = ATC:L01AA01\n'
    not_in = _both(head + 'exclusion X1 "x" = condition ca with histology not in lobular\n', docs)
    assert [not_in[p][0] for p in "abc"] == [False, True, None]  # two readable codes, neither lobular
    caused = _both(head + 'exclusion X1 "x" = condition ca caused by medication cyclo\n', docs)
    assert [caused[p][0] for p in "abc"] == [True, None, None]
    assert caused["b"][1] == ["condition ICD10:C50.9: caused_by 'cyclophosphamide' is not a code (SYSTEM:CODE) that "
                              "can be compared with cyclophosphamide"]
    intent = _both(head + 'exclusion X1 "x" = procedure CPT:50200 with intent not in ("palliative", "maintenance")\n',
                   docs)
    assert [intent[p][0] for p in "abc"] == [False, True, None]


def test_a_coded_score_answer_decides_in_sql_as_in_the_per_patient_engine():
    rules = 'trial "T"\ninclusion X1 "x" = ECOG <= 1\n'
    ecog = {"code": "LOINC:89247-1", "date": "2026-11-01"}
    docs = [{"id": "code", "observations": [{**ecog, "value_code": "LOINC:LA9623-5"}]},  # ECOG 1, coded only
            {"id": "code3", "observations": [{**ecog, "value_code": "LOINC:LA9625-0", "value": "Symptomatic"}]},
            {"id": "disagree", "observations": [{**ecog, "value_code": "LOINC:LA9625-0", "value": 1}]},
            {"id": "not known", "observations": [{**ecog, "value_code": "LOINC:LA4489-6", "value": 0}]},
            {"id": "plain", "observations": [{**ecog, "value": 0}]}]
    tables = tables_from_documents(docs)
    assert tables["observations"]["value_code"].to_pylist() == [
        "LOINC:LA9623-5", "LOINC:LA9625-0", "LOINC:LA9625-0", "LOINC:LA4489-6", None]
    found = _both(rules, docs)
    assert found["code"] == (True, [])
    assert found["code3"] == (False, [])
    assert found["disagree"] == (None, ["ECOG result of 2026-11-01: the answer code LOINC:LA9625-0 (3) and the value 1 "
                                        "disagree"])
    assert found["not known"] == (None, ["ECOG result of 2026-11-01: recorded as not known (LOINC:LA4489-6)"])
    assert found["plain"] == (True, [])


def test_windows_anchored_at_a_record_end_and_at_lab_results_in_sql():
    head = ('trial "T"\nvalueset ca "malignancy" = ICD10:C00-C96\nvalueset cyclo "cyclophosphamide" = ATC:L01AA01\n')
    cyclo = {"code": "ATC:L01AA01", "start": "2026-01-01"}
    ca = {"code": "ICD10:C50.9", "onset": "2026-07-01"}
    docs = [{"id": "ended", "conditions": [ca], "medications": [{**cyclo, "end": "2026-06-01"}]},
            {"id": "long ago", "conditions": [ca], "medications": [{**cyclo, "end": "2026-02-01"}]},
            {"id": "going on", "conditions": [ca], "medications": [{**cyclo, "status": "active"}]},
            {"id": "no end date", "conditions": [ca], "medications": [{**cyclo, "status": "completed"}]}]
    found = _both(head + 'exclusion X1 "x" = condition ca within 12 weeks after the end of medication cyclo\n', docs)
    assert found["ended"] == (True, [])
    assert found["long ago"] == (False, [])
    assert found["going on"] == (False, [])
    assert found["no end date"] == (None, [
        "condition ICD10:C50.9 within 12 weeks after the end of medication ATC:L01AA01: anchor medication "
        "ATC:L01AA01: end date of the anchor not recorded (status completed)"])
    creat = {"code": "LOINC:2160-0", "unit": "mg/dL"}
    docs = [{"id": "high", "procedures": [{"code": "CPT:50200", "date": "2026-10-20"}],
             "observations": [{**creat, "value": 1.5, "date": "2026-11-01"}]},
            {"id": "normal", "procedures": [{"code": "CPT:50200", "date": "2026-10-20"}],
             "observations": [{**creat, "value": 0.9, "date": "2026-11-01"}]},
            {"id": "month only", "procedures": [{"code": "CPT:50200", "date": "2026-10-20"}],
             "observations": [{**creat, "value": 1.5, "date": "2026-10"}]},
            {"id": "no result", "procedures": [{"code": "CPT:50200", "date": "2026-10-20"}], "observations": []}]
    found = _both(head + 'exclusion X1 "x" = procedure CPT:50200 within 30 days before creatinine > 1.2 mg/dL\n', docs)
    assert found["high"] == (True, [])
    assert found["normal"] == (False, [])
    assert found["month only"][0] is None
    assert found["no result"] == (None, ["creatinine result (needed as the anchor)"])


def test_a_lab_test_in_a_window_around_a_record_in_sql():
    rules = ('trial "T"\ninclusion X1 "x" = creatinine <= 1.5 mg/dL within 30 days before procedure CPT:50200\n')
    creat = {"code": "LOINC:2160-0", "unit": "mg/dL"}
    biopsy = {"code": "CPT:50200", "date": "2026-10-20"}
    docs = [{"id": "ok", "procedures": [biopsy], "observations": [{**creat, "value": 1.1, "date": "2026-10-01"}]},
            {"id": "high", "procedures": [biopsy], "observations": [{**creat, "value": 2.1, "date": "2026-10-01"}]},
            # the latest result in the window decides: an older normal one does not
            {"id": "latest", "procedures": [biopsy], "observations": [{**creat, "value": 1.1, "date": "2026-09-25"},
                                                                      {**creat, "value": 2.1, "date": "2026-10-10"}]},
            {"id": "outside", "procedures": [biopsy], "observations": [{**creat, "value": 1.1, "date": "2026-08-01"}]},
            {"id": "month", "procedures": [{"code": "CPT:50200", "date": "2026-10"}],
             "observations": [{**creat, "value": 1.1, "date": "2026-10-01"}]},
            {"id": "no labs", "procedures": [biopsy]}]
    found = _both(rules, docs)
    assert found["ok"] == (True, [])
    assert found["high"] == (False, [])
    assert found["latest"] == (False, [])
    assert found["outside"] == (None, ["creatinine within 30 days before procedure CPT:50200: no creatinine result "
                                       "from 2026-09-20 to 2026-10-20"])
    assert found["month"] == (None, ["creatinine within 30 days before procedure CPT:50200: date of the anchor "
                                     "2026-10, not a full date"])
    assert found["no labs"] == (None, ["creatinine within 30 days before procedure CPT:50200: creatinine: no "
                                       "observations provided"])


def test_a_text_result_unknown_only_for_its_date_is_named_in_both_engines():
    """The first unknown result decides the explanation; unknown only because its date may lie outside the
    window, it says so (it was an unknown with nothing named per patient, and a later result's problem in SQL)."""
    rules = 'trial "T"\ninclusion X1 "x" = any HBsAg is negative within 2 years\n'
    hbs = {"code": "LOINC:5196-1"}
    docs = [{"id": "a", "observations": [{**hbs, "value": "negative", "date": "2024-11"},
                                         {**hbs, "value": "Negative (positive control failed)", "date": "2024-11-26"}]}]
    assert _both(rules, docs)["a"] == (None, ["HBsAg result of 2024-11: date uncertain relative to the window"])


def test_derived_values_in_sql_are_the_published_equations():
    """CKD-EPI 2021, female 50 years, creatinine 1.0 mg/dL: 68.63 mL/min/1.73m2 (tests/test_derived_values.py);
    Cockcroft-Gault, male 60 years, 72 kg, 1.0 mg/dL: 80.0 mL/min; a measured eGFR in the window wins; an input
    that is only a bound names what is missing."""
    trial = compile_text('trial "T"\n'
                         'inclusion I1 "eGFR" = eGFR >= 68.6 mL/min/1.73m2\n'
                         'inclusion I2 "eGFR" = eGFR >= 68.7 mL/min/1.73m2\n'
                         'inclusion I3 "CrCl" = creatinine_clearance >= 80 mL/min\n'
                         'inclusion I4 "CrCl" = creatinine_clearance > 80 mL/min\n', "t.crit")
    creatinine = {"code": "LOINC:2160-0", "value": 1.0, "unit": "mg/dL", "date": "2026-11-10"}
    docs = [{"id": "F", "sex": "female", "birth_date": "1976-01-01", "observations": [creatinine]},
            {"id": "M", "sex": "male", "birth_date": "1966-01-01", "observations": [
                creatinine, {"code": "LOINC:29463-7", "value": 72, "unit": "kg", "date": "2026-11-01"}]},
            {"id": "W", "sex": "female", "birth_date": "1976-01-01", "observations": [
                creatinine, {"code": "LOINC:33914-3", "value": 50, "unit": "mL/min/1.73m2", "date": "2026-11-01"}]},
            {"id": "B", "sex": "female", "birth_date": "1976-01-01", "observations": [
                dict(creatinine, comparator="<")]}]
    rows = {r["patient_id"]: r for r in popduck.screen_trial(popduck.connect(tables_from_documents(docs)), trial,
                                                              AS_OF).to_pylist()}
    assert (rows["F"]["I1"], rows["F"]["I2"]) == (True, False)
    assert (rows["M"]["I3"], rows["M"]["I4"]) == (True, False)
    assert (rows["W"]["I1"], rows["W"]["I2"]) == (False, False)  # the measured 50 wins over the derived 68.63
    assert rows["B"]["I1"] is None
    assert rows["B"]["I1__missing"] == ["eGFR result of 2026-11-10: cannot derive by CKD-EPI 2021: creatinine result "
                                        "of 2026-11-10 cannot be used: reported only as a bound (< 1 mg/dL)"]
    for doc in docs:
        result = trial.screen(patient_from_document(doc), AS_OF)
        assert [c.value for c in result.criteria] == [rows[doc["id"]][i] for i in ("I1", "I2", "I3", "I4")]
