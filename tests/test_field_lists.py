"""`with FIELD not in X`, `with FIELD [not] in (...)` lists of texts or codes, and `<<SNOMED:x` written
inline in a record test. As-of 2026-11-25; both engines (helpers.one)."""
import pytest

from screening import SourceError, compile_text

from helpers import one, patient, trial
from terminology_helpers import fixture_store

VS = 'valueset lobular "infiltrating lobular carcinoma" = SNOMED:82711006\nvalueset breast_cancer = ICD10:C50\n'
# registry: "Prior radiotherapy other than palliative" (here: chemotherapy by its recorded intent)
INTENT = trial('exclusion E1 "Chemotherapy not given with palliative or maintenance intent" = '
               'medication ATC:L01 with intent not in ("palliative", "Maintenance")\n')
NOT_LOBULAR = trial(VS + 'inclusion I1 "Breast cancer, not lobular" = '
                    'condition breast_cancer with histology not in lobular\n')


@pytest.mark.parametrize("intent, value", [
    ("palliative", False), ("  MAINTENANCE ", False), ("curative", True), (None, None)])
def test_text_list_not_in(intent, value):
    fields = {"intent": intent} if intent else {}
    c = one(INTENT, patient(medications=[{"code": "ATC:L01XA01", **fields}]))
    assert c.value is value
    if value is None:
        assert c.missing == ["medication ATC:L01XA01: intent not recorded"]


def test_text_list_in():
    t = trial('exclusion E1 "x" = medication ATC:L01 with intent in ("palliative", "maintenance")\n')
    assert one(t, patient(medications=[{"code": "ATC:L01XA01", "intent": "palliative"}])).value is True
    assert one(t, patient(medications=[{"code": "ATC:L01XA01", "intent": "curative"}])).value is False


@pytest.mark.parametrize("histology, value", [
    ("SNOMED:82711006", False),  # lobular: excluded by `not in`
    ("SNOMED:35917007", True),  # another morphology code
    (["SNOMED:35917007", "SNOMED:82711006"], False),  # two morphologies, one of them lobular
    ("ductal", None),  # a text: not comparable with codes
    (None, None),  # not recorded
])
def test_code_field_not_in_a_value_set(histology, value):
    fields = {"histology": histology} if histology is not None else {}
    assert one(NOT_LOBULAR, patient(conditions=[{"code": "ICD10:C50.9", **fields}])).value is value


def test_code_list_in_parentheses():
    t = trial(VS + 'inclusion I1 "x" = condition ICD10:C50 with histology in (SNOMED:82711006, lobular)\n')
    assert one(t, patient(conditions=[{"code": "ICD10:C50.9", "histology": "SNOMED:82711006"}])).value is True
    assert one(t, patient(conditions=[{"code": "ICD10:C50.9", "histology": "SNOMED:35917007"}])).value is False


def test_inline_descendants_without_a_store_are_unknown_for_other_codes():
    # <<SNOMED:x inline: the concept itself matches; another SNOMED code may be a descendant (no store)
    t = trial('exclusion E1 "x" = condition <<SNOMED:363346000\n')
    assert one(t, patient(conditions=[{"code": "SNOMED:363346000"}])).value is True
    c = one(t, patient(conditions=[{"code": "SNOMED:254837009"}]))
    assert c.value is None and "load a SNOMED CT release" in " ".join(c.missing)


def test_inline_descendants_with_a_store():
    # the bundled fixture store: breast cancer (254837009) is a descendant of malignant neoplastic disease
    rules = 'trial "T-1"\nexclusion E1 "x" = condition <<SNOMED:363346000\n'
    t = compile_text(rules, "test.crit", fixture_store())
    assert one(t, patient(conditions=[{"code": "SNOMED:254837009"}])).value is True
    assert one(t, patient(conditions=[{"code": "SNOMED:38341003"}])).value is False  # hypertension
    # `<` excludes the concept itself
    t = compile_text('trial "T-1"\nexclusion E1 "x" = condition <SNOMED:363346000\n', "test.crit", fixture_store())
    assert one(t, patient(conditions=[{"code": "SNOMED:363346000"}])).value is False
    assert one(t, patient(conditions=[{"code": "SNOMED:254837009"}])).value is True


def test_mixed_list_is_refused():
    with pytest.raises(SourceError) as info:
        trial('exclusion E1 "x" = medication ATC:L01 with intent in ("palliative", SNOMED:1)\n')
    assert "a list holds texts or codes, not both" in str(info.value)


def test_unknown_value_set_in_a_list_is_named():
    with pytest.raises(SourceError) as info:
        trial(VS + 'exclusion E1 "x" = condition breast_cancer with histology in (lobulr)\n')
    assert "unknown value set `lobulr`" in str(info.value)


def test_the_documented_example_compiles():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**Inline codes with descendants.**"):]
    trial(re.search(r"```\n(.*?)```", section, re.S).group(1))


def test_a_list_written_without_parentheses_points_at_the_form_that_works():
    with pytest.raises(SourceError) as info:
        trial('exclusion E1 "x" = medication ATC:L01 with intent not in "palliative"\n')
    first = info.value.first
    assert (first.span.line, first.span.column) == (2, 58)
    assert 'with intent not in ("palliative", "maintenance")' in first.hint


HER2 = trial('valueset her2 "HER2-targeted agents" = ATC:L01FD, RXNORM:224905\n'
             'exclusion E1 "Previous treatment with HER-2 targeted agents other than trastuzumab or T-DM1" = '
             'medication her2 other than (ATC:L01FD01, ATC:L01FD03)\n')


@pytest.mark.parametrize("code, value", [
    ("ATC:L01FD01", False),  # trastuzumab
    ("ATC:L01FD03", False),  # trastuzumab emtansine
    ("ATC:L01FD02", True),  # pertuzumab: another HER2 agent
    # in the value set by its RxNorm code, but whether it is one of the listed ATC codes needs the store
    ("RXNORM:224905", None),
])
def test_other_than_a_list(code, value):
    c = one(HER2, patient(medications=[{"code": code}]))
    assert c.value is value
    if value is None:
        assert "whether it is other than (ATC:L01FD01, ATC:L01FD03) cannot be told" in c.missing[0]


def test_other_than_takes_no_texts():
    with pytest.raises(SourceError) as info:
        trial('exclusion E1 "x" = medication ATC:L01FD other than ("trastuzumab")\n')
    assert "`other than` compares the record's own codes" in str(info.value)
