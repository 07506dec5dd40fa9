"""Record details beyond text equality: `with FIELD != "text"` and numeric comparisons
(`with grade >= 3`, `with stage = 3`), unknown when the field is absent or not a number; both engines."""
import pytest

from screening import SourceError

from helpers import one, patient, trial

NEUROPATHY = 'valueset neuropathy "peripheral neuropathy" = ICD10:G62\n'
RADIOTHERAPY = 'valueset rt "radiotherapy" = SNOMED:108290001\n'


def neuropathy(**fields):
    return patient(conditions=[{"code": "ICD10:G62.9", "onset": "2026-01-10", "status": "active", **fields}])


@pytest.mark.parametrize("fields, expected", [
    ({"grade": 3}, "fail"),
    ({"grade": 2}, "pass"),
    ({"grade": "3"}, "fail"),  # a number written as text
    ({"grade": 2.0}, "pass"),
    ({}, "unknown"),  # not recorded
    ({"grade": "III"}, "unknown"),  # not a number: never a guess
    ({"grade": "grade 3"}, "unknown"),
    ({"grade": True}, "unknown"),
])
def test_grade_at_least_3(fields, expected):
    # registry: "Peripheral neuropathy of CTCAE grade >= 3"
    t = trial(NEUROPATHY + 'exclusion E1 "Neuropathy grade 3 or more" = active condition neuropathy with grade >= 3\n')
    result = one(t, neuropathy(**fields))
    assert result.verdict == expected
    if expected == "unknown":
        assert any("grade" in m for m in result.missing)


def test_the_reason_says_what_is_wrong_with_the_field():
    t = trial(NEUROPATHY + 'exclusion E1 "x" = condition neuropathy with grade >= 3\n')
    assert "grade 'III' is not a number" in " ".join(one(t, neuropathy(grade="III")).missing)
    assert "grade not recorded" in " ".join(one(t, neuropathy()).missing)


@pytest.mark.parametrize("fields, expected", [
    ({"intent": "curative"}, "fail"),
    ({"intent": " Palliative "}, "pass"),  # case and spaces ignored, as for =
    ({}, "unknown"),
])
def test_negated_text(fields, expected):
    # registry: "Prior radiotherapy with curative intent" -> any radiotherapy whose intent is not palliative
    t = trial(RADIOTHERAPY + 'exclusion E1 "Prior non-palliative radiotherapy" = '
              'procedure rt with intent != "palliative"\n')
    p = patient(procedures=[{"code": "SNOMED:108290001", "date": "2025-06-01", **fields}])
    assert one(t, p).verdict == expected


@pytest.mark.parametrize("rule, fields, expected", [
    ('condition neuropathy with stage = 3', {"stage": 3}, "pass"),
    ('condition neuropathy with stage = 3', {"stage": "3"}, "pass"),
    ('condition neuropathy with stage = 3', {"stage": "3A"}, "unknown"),
    ('condition neuropathy with stage != 3', {"stage": 2}, "pass"),
    ('condition neuropathy with grade < 2', {"grade": 1}, "pass"),
    ('condition neuropathy with grade <= 2 and condition neuropathy with grade > 0', {"grade": 2}, "pass"),
    ('condition neuropathy with grade ≥ 2', {"grade": 2}, "pass"),
    ('condition neuropathy with grade >= 2 with status = "active"', {"grade": 2}, "pass"),
    ('condition neuropathy with grade >= 2 with status = "active"', {"grade": 1}, "fail"),
])
def test_numeric_comparisons(rule, fields, expected):
    t = trial(NEUROPATHY + f'inclusion I1 "t" = {rule}\n')
    assert one(t, neuropathy(**fields)).verdict == expected


def test_one_matching_record_is_enough_and_one_unknown_keeps_it_open():
    t = trial(NEUROPATHY + 'exclusion E1 "x" = condition neuropathy with grade >= 3\n')
    both = patient(conditions=[{"code": "ICD10:G62.9", "onset": "2026-01-10", "grade": 1},
                               {"code": "ICD10:G62.0", "onset": "2026-02-10", "grade": 4}])
    assert one(t, both).verdict == "fail"
    open_one = patient(conditions=[{"code": "ICD10:G62.9", "onset": "2026-01-10", "grade": 1},
                                   {"code": "ICD10:G62.0", "onset": "2026-02-10"}])
    assert one(t, open_one).verdict == "unknown"


@pytest.mark.parametrize("rule", [
    'condition neuropathy with grade >= "3"',
    'condition neuropathy with intent < "palliative"',
    'condition neuropathy with grade is "3"',
])
def test_forms_the_grammar_refuses_point_at_the_forms_that_work(rule):
    with pytest.raises(SourceError) as info:
        trial(NEUROPATHY + f'inclusion I1 "t" = {rule}\n')
    error = info.value.first
    assert error.span.line == 3
    assert 'with FIELD = "text"' in error.hint and "with grade >= 3" in error.hint


def test_explanation_names_the_qualifier():
    t = trial(NEUROPATHY + 'exclusion E1 "x" = condition neuropathy with grade >= 3\n')
    text = t.screen(neuropathy(grade=3), __import__("datetime").date(2026, 11, 25)).to_dict()["criteria"][0]
    assert "grade >= 3" in text["explanation"]
