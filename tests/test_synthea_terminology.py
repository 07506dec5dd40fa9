"""Issue 8 on the 26 Synthea bundles, whose conditions are coded in SNOMED CT only and whose
medications are RxNorm products: with the fixture terminology (trials/terminology/), every cancer,
cardiovascular, psychiatric and infectious condition the bundles contain is caught by the
NCT00659217 criterion that names its class; without a store, each is unknown, never a pass."""
from datetime import date

import pytest

from screening import compile_trial, load_patient, patient_from_document
from helpers import ROOT, SHARED
from terminology_helpers import fixture_store

SYNTHEA = sorted((SHARED / "data" / "synthea").glob("*.json"))
pytestmark = pytest.mark.skipif(not SYNTHEA, reason="shared Synthea data not available")
AS_OF = date(2020, 1, 1)
TRIAL = ROOT / "trials" / "NCT00659217.crit"
# the class each criterion names (SNOMED CT), and the criterion
CLASSES = {
    "cancer": (["363346000"], "E2"),
    "cardiovascular": (["56265001", "230690007"], "E4"),   # heart disease and stroke (not hypertension)
    "psychiatric": (["74732009"], "E5"),
    "infectious": (["40733004"], "E3"),
}
# what the fixture must classify (the list, as the bundles carry it)
EXPECTED = {
    "cancer": {"109838007"},
    "cardiovascular": {"88805009", "410429000", "230690007"},
    "psychiatric": {"26929004", "7200002"},
    "infectious": {"195662009", "444814009", "43878008", "75498004"},
}


@pytest.fixture(scope="module")
def conditions():
    found = {}
    for path in SYNTHEA:
        for entry in load_patient(path).conditions or ():
            for code in entry.codes:
                if code.startswith("SNOMED:"):
                    found[code.split(":", 1)[1]] = entry.display
    return found


def classified(conditions):
    store = fixture_store()
    by_class = {}
    for name, (ancestors, _) in CLASSES.items():
        by_class[name] = {c for c in conditions
                          if any(store.is_descendant("SNOMED", c, a, include_self=True) for a in ancestors)}
    return by_class


def one_condition(code: str, display: str):
    return patient_from_document({
        "id": f"synthea-{code}", "birth_date": "1970-01-01", "sex": "female",
        "conditions": [{"code": f"SNOMED:{code}", "display": display, "onset": "2019-12-01", "status": "active"}],
        "medications": [], "facts": {"psychiatric_illness_prevents_compliance": True}}, code)


def test_every_condition_code_of_the_bundles_is_in_the_fixture(conditions):
    store = fixture_store()
    assert len(conditions) == 50
    assert [c for c in conditions if not store.contains("SNOMED", c)] == []


def test_the_fixture_classifies_the_bundles_as_expected(conditions):
    by_class = classified(conditions)
    for name, codes in EXPECTED.items():
        assert by_class[name] == codes, name


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_every_condition_of_a_class_is_caught(conditions, name):
    with_store = compile_trial(TRIAL, fixture_store())
    without = compile_trial(TRIAL)
    criterion = CLASSES[name][1]
    for code in sorted(classified(conditions)[name]):
        patient = one_condition(code, conditions[code])
        result = with_store.screen(patient, AS_OF).criterion(criterion)
        assert result.verdict == "fail", (code, conditions[code], result.explanation)
        fast = dict(zip([c.id for c in with_store.criteria], with_store.values(patient, AS_OF)))
        assert fast[criterion][1] is True
        bare = without.screen(patient, AS_OF).criterion(criterion)
        if code in CLASSES[name][0]:  # the class concept itself is in <<X, store or not
            assert bare.verdict == "fail"
            continue
        assert bare.verdict == "unknown", (code, bare.explanation)
        assert any(f"(SNOMED:{code})" in m and "load a SNOMED CT release" in m for m in bare.missing)


def test_medications_of_the_bundles_are_decided_with_the_store():
    """Every Synthea medication is an RxNorm product in the fixture: with the store, E3's antituberculosis
    test decides each (none is one); without RxNorm each is unknown."""
    with_store = compile_trial(TRIAL, fixture_store())
    for path in SYNTHEA:
        patient = load_patient(path)
        if not patient.medications:
            continue
        result = with_store.screen(patient, AS_OF).criterion("E3")
        assert not any("RXNORM" in m for m in result.missing), (path.name, result.missing)
