"""Real-shaped FHIR data: all 26 Synthea R4 bundles load and screen (issue 4)."""
from collections import Counter
from datetime import date

import pytest

from screening import compile_trial, load_patient

from helpers import ROOT, SHARED

SYNTHEA = sorted((SHARED / "data" / "synthea").glob("*.json"))
pytestmark = pytest.mark.skipif(not SYNTHEA, reason="shared Synthea data not available")
AS_OF = date(2020, 1, 1)  # the bundles were generated around 2019


@pytest.fixture(scope="module")
def trials():
    return compile_trial(ROOT / "trials" / "NCT00659217.crit"), compile_trial(ROOT / "tests" / "data" / "synthea_labs.crit")


@pytest.fixture(scope="module")
def patients():
    return {path.name.split("_")[0] + "_" + path.name.split("_")[1]: load_patient(path) for path in SYNTHEA}


def synthea(name: str):
    return next(p for p in SYNTHEA if p.name.startswith(name))


def test_every_bundle_loads_and_screens_against_both_rule_sets(trials, patients):
    assert len(patients) == 26
    nct, labs = trials
    decisions = Counter()
    for patient in patients.values():
        for trial in trials:
            result = trial.screen(patient, AS_OF)
            assert len(result.criteria) == len(trial.criteria)
            decisions[(trial.id, result.decision)] += 1
    # 11 of the bundles record a death, 9 of them before 2020: those are ineligible whatever the labs say
    assert decisions == Counter({
        ("NCT00659217", "ineligible"): 13, ("NCT00659217", "undetermined"): 13,
        ("LAB-THRESHOLDS", "undetermined"): 11, ("LAB-THRESHOLDS", "ineligible"): 13,
        ("LAB-THRESHOLDS", "eligible"): 2,
    })
    died = [p for p in patients.values() if p.deceased is not None and p.deceased[1] <= AS_OF.toordinal()]
    assert len(died) == 9
    for patient in died:
        result = labs.screen(patient, AS_OF)
        assert result.decision == "ineligible" and result.decision_reason.startswith("patient died on ")


def test_non_ucum_iu_per_litre_is_read_as_enzyme_units(trials, patients):
    _, labs = trials
    jordan = patients["Jordan_Cruickshank"]
    alt = jordan.labs["ALT"][0]
    assert (alt.unit, round(alt.value, 3)) == ("IU/L", 142.267)
    liver = labs.screen(jordan, AS_OF).criterion("LIVER")
    assert liver.verdict == "fail"
    assert ("ALT 142.267 IU/L on 2017-06-24; limit 3 x ULN: ULN 40 IU/L (from the rule set's reference ranges) "
            "= 120 IU/L; over by 22.2667 IU/L") in liver.explanation


def test_egfr_in_both_spellings_is_one_dimension(patients):
    angelic = patients["Angelic_Mueller"]
    units = {o.unit for o in angelic.labs["eGFR"]}
    assert units == {"mL/min/{1.73_m2}", "mL/min"}
    assert {o.dimension for o in angelic.labs["eGFR"]} == {"[length]^3.[time]^-1"}
    assert all(o.value is not None for o in angelic.labs["eGFR"])


def test_no_reference_range_means_fallback_table_or_unknown(patients):
    from screening import compile_text

    jordan = patients["Jordan_Cruickshank"]
    assert all(o.ref_high is None for o in jordan.labs["ALT"])
    bare = compile_text('trial "X"\ninclusion L "ALT <= 3 x ULN" = ALT <= 3 x ULN\n', "bare.crit")
    result = bare.screen(jordan, AS_OF).criterion("L")
    assert (result.verdict, result.missing) == ("unknown", ["reference range (ULN) for ALT"])


def test_zero_width_spaces_are_gone_from_displays(patients):
    for patient in patients.values():
        for entries in (patient.conditions, patient.medications, patient.procedures):
            assert not any("\u200b" in (e.display or "") for e in entries or ())


def test_fhir_file_errors_name_the_json_path(tmp_path):
    import json

    from screening import DataError

    bundle = json.loads(synthea("Jordan").read_text())
    index = next(i for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == "Observation")
    bundle["entry"][index]["resource"]["effectiveDateTime"] = "2017-02-30T10:00:00Z"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bundle))
    with pytest.raises(DataError) as info:
        load_patient(bad)
    assert f"$.entry[{index}].resource.effectiveDateTime" in str(info.value)
