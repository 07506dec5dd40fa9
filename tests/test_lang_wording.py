"""A result whose date may lie outside the window and whose value cannot be used names both problems, in the
interpreter, the fast path and SQL (issue 9: "result of undated" named only the date).

As-of date 2026-11-25.
"""
import pytest

from helpers import AS_OF, one, patient, trial

RULES = trial('''inclusion I1 "latest" = creatinine <= 1.5 mg/dL
inclusion I2 "any, in a window" = any creatinine <= 1.5 mg/dL within 3 months
inclusion I3 "every" = every creatinine <= 1.5 mg/dL
inclusion I4 "text" = HBsAg is negative
valueset biopsy "renal biopsy" = SNOMED:232717009
inclusion I5 "around a record" = creatinine <= 1.5 mg/dL within 30 days before procedure biopsy
''')

UNDATED_BAD_UNIT = {"code": "LOINC:2160-0", "value": 1.0, "unit": "mg/dX"}
UNIT = "'mg/dX' cannot be used: unknown unit 'mg/dX'"
CASES = {
    "undated, unknown unit": (
        [UNDATED_BAD_UNIT],
        {"I1": f"creatinine result of undated: {UNIT}; date uncertain relative to the window",
         "I2": f"creatinine result of undated: {UNIT}; date uncertain relative to the window",
         "I3": f"creatinine result of undated: {UNIT}; date uncertain relative to the window"}),
    "undated, no value": (
        [{"code": "LOINC:2160-0", "value": None}],
        {"I1": "creatinine result of undated: no value recorded; date uncertain relative to the window"}),
    "a month across the window's start, unknown unit": (
        [{**UNDATED_BAD_UNIT, "date": "2026-08"}],
        {"I1": f"creatinine result of 2026-08: {UNIT}",  # no window: the month is inside; only the unit is wrong
         "I2": f"creatinine result of 2026-08: {UNIT}; date uncertain relative to the window"}),
    "undated text outside the vocabulary": (
        [{"code": "LOINC:5196-1", "value": "blah"}],
        {"I4": "HBsAg result 'blah' is not a recognised result; its date (undated) is uncertain relative to the window"}),
    "undated, a readable value": (
        [{"code": "LOINC:2160-0", "value": 1.0, "unit": "mg/dL"}],
        {"I2": "creatinine result of undated: date uncertain relative to the window"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_interpreter_and_the_fast_path_name_both_problems(name):
    observations, expected = CASES[name]
    p = patient(observations=observations)
    result = RULES.screen(p, AS_OF)
    fast = dict(zip((c.id for c in RULES.criteria), RULES.values(p, AS_OF)))
    for c in result.criteria:
        if c.id in expected:
            assert c.value is None and fast[c.id][1] is None
            assert c.missing == [expected[c.id]]


def test_the_question_asks_to_check_the_result_not_only_its_date():
    c = one(trial('inclusion I1 "x" = creatinine <= 1.5 mg/dL\n'), patient(observations=[UNDATED_BAD_UNIT]))
    (item,) = c.missing_items
    assert item.question == f"Check the creatinine result of undated: {UNIT}; date uncertain relative to the window"


def test_sql_names_both_problems_too():
    pytest.importorskip("duckdb")
    pytest.importorskip("sqlglot")
    from screening.population import duckdb as popduck
    from screening.population.loader import tables_from_documents

    documents = [{"id": name.replace(" ", "_").replace(",", "").replace("'", ""), "observations": observations,
                  "procedures": [{"code": "SNOMED:232717009", "date": "2026-11-01"}]}
                 for name, (observations, _) in CASES.items()]
    con = popduck.connect(tables_from_documents(documents))
    popduck.build_dictionaries(con)
    rows = {row["patient_id"]: row for row in popduck.screen_trial(con, RULES.checked, AS_OF, shared_ready=True).to_pylist()}
    for document, (name, (_, expected)) in zip(documents, CASES.items()):
        row = rows[document["id"]]
        python = RULES.screen(patient(**{k: v for k, v in document.items() if k != "id"}), AS_OF)
        for c in python.criteria:
            assert sorted(row[f"{c.id}__missing"]) == sorted(c.missing), (name, c.id)
            if c.id in expected:
                assert row[f"{c.id}__missing"] == [expected[c.id]], (name, c.id)


def test_an_nyha_result_coded_with_a_loinc_answer_code_is_unknown_never_read_from_its_text():
    """No LOINC answer code of 88020-3 was confirmed (docs/semantics.md): the objective-assessment list of 88021-1
    (LA28408-5 ...) is another scale; an LA code on an NYHA result stays unknown, its display text unread."""
    rule = trial('exclusion E1 "NYHA III-IV" = any NYHA >= III\n')
    coded = {"code": "LOINC:88020-3", "date": "2026-11-01", "value": "Class I", "value_code": "LOINC:LA28408-5"}
    c = one(rule, patient(observations=[coded]))
    assert c.value is None
    assert "answer code LOINC:LA28408-5 is not one the catalogue knows" in c.missing[0]
    snomed = {"code": "LOINC:88020-3", "date": "2026-11-01", "value_code": "SNOMED:420913000"}  # class III
    assert one(rule, patient(observations=[snomed])).value is True
