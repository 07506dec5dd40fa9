"""Honesty without a terminology (issue 8): a rule set that needs descendants compiles and screens
without a store, and a record the missing hierarchy could place in a value set is unknown, named by
display and code with what would decide it; the same when the store lacks the system or the
concept. Lint warnings and --strict; the terminology in every report; explain's "not considered"."""
from __future__ import annotations

import json
from datetime import date

from typer.testing import CliRunner

from screening import compile_text, patient_from_document
from screening.cli import app
from terminology_helpers import FHIR, NCT_TERMINOLOGY, RF2, RXNORM, ROOT, fixture_store

AS_OF = date(2026, 11, 25)
RULES = '''trial "T"
valueset malignancy = <<SNOMED:363346000, ICD10:C00-C96
valueset cyclophosphamide = RXNORM:3002
exclusion E2 "history of malignancy" = condition malignancy
exclusion E9 "cyclophosphamide" = medication cyclophosphamide
'''
COLON = {"code": "SNOMED:109838007", "display": "Malignant neoplasm of colon", "onset": "2021-01-01",
         "status": "active"}
PRODUCT = {"code": "RXNORM:9900001", "display": "cyclophosphamide 25 MG Oral Tablet", "start": "2026-01-01",
           "status": "active"}


def patient(**lists):
    return patient_from_document({"id": "p", "birth_date": "1980-01-01", "sex": "male", **lists}, "p")


def both(trial, p, index=0):
    explained = trial.screen(p, AS_OF).criteria[index]
    assert trial.values(p, AS_OF)[index][1] is explained.value
    return explained


def test_without_a_store_a_snomed_record_is_unknown_and_named():
    trial = compile_text(RULES)
    result = both(trial, patient(conditions=[COLON]))
    assert result.verdict == "unknown"
    assert result.missing == ["condition Malignant neoplasm of colon (SNOMED:109838007): cannot tell whether it is "
                              "in malignancy without a SNOMED CT hierarchy: load a SNOMED CT release "
                              "(screening terminology load)"]


def test_without_a_store_a_product_is_unknown_for_an_ingredient():
    trial = compile_text(RULES)
    result = both(trial, patient(medications=[PRODUCT]), 1)
    assert result.verdict == "unknown"
    assert "without RxNorm: load an RxNorm release" in result.missing[0]
    # the ingredient itself still matches: a definite fail
    same = dict(PRODUCT, code="RXNORM:3002")
    assert both(trial, patient(medications=[same]), 1).verdict == "fail"


def test_a_store_without_the_system_says_so():
    rxnorm_only = fixture_store(RXNORM)
    trial = compile_text(RULES, terminology=rxnorm_only)
    result = both(trial, patient(conditions=[COLON]))
    assert result.verdict == "unknown"
    assert "the terminology store has none" in result.missing[0]
    assert both(trial, patient(medications=[PRODUCT]), 1).verdict == "fail"  # RxNorm is there


def test_a_concept_the_store_does_not_hold():
    store = fixture_store(RF2, RXNORM, FHIR)
    # a member the store lacks: its system stays undecidable for records matching nothing else
    trial = compile_text(RULES.replace("<<SNOMED:363346000", "<<SNOMED:999999991000000104"), terminology=store)
    result = both(trial, patient(conditions=[COLON]))
    assert result.verdict == "unknown" and "<<SNOMED:999999991000000104 is not in the terminology store" in \
        result.missing[0]
    # a record whose code the store lacks cannot be placed in the hierarchy
    trial = compile_text(RULES, terminology=store)
    unknown_code = dict(COLON, code="SNOMED:1234567891000000101", display="Some local cancer")
    result = both(trial, patient(conditions=[unknown_code]))
    assert result.verdict == "unknown"
    assert "SNOMED:1234567891000000101 is not in the terminology store" in result.missing[0]
    assert both(trial, patient(conditions=[COLON])).verdict == "fail"


def test_an_icd10_code_on_the_record_decides():
    trial = compile_text(RULES)
    record = dict(COLON, codes=["SNOMED:109838007", "ICD10:C18.9"])
    assert both(trial, patient(conditions=[record])).verdict == "fail"
    record = dict(COLON, code="SNOMED:3723001", codes=["SNOMED:3723001", "ICD10:M13.0"], display="Arthritis")
    assert both(trial, patient(conditions=[record])).verdict == "pass"


# ---------------------------------------------------------------- lint
def write(tmp_path, text: str):
    path = tmp_path / "r.crit"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_lint_warnings_and_strict(tmp_path):
    store_file = fixture_store(RF2, RXNORM, FHIR).path
    rule = write(tmp_path, '''trial "T"
valueset malignancy = SNOMED:363346000
valueset cytoxan_tablets = RXNORM:9900001
valueset retired = <<SNOMED:9999990006
valueset spare = ICD10:C50
exclusion E1 "x" = condition malignancy or condition retired
exclusion E2 "y" = medication cytoxan_tablets
''')
    runner = CliRunner()
    result = runner.invoke(app, ["lint", rule, "--terminology", str(store_file)])
    assert result.exit_code == 0, result.output
    text = result.output
    flat = " ".join(text.split())
    assert "r.crit:2:23: warning: SNOMED:363346000 matches that code only" in text
    assert "write <<SNOMED:363346000" in text
    assert "r.crit:3:28: warning: RXNORM:9900001 is an RxNorm SCD" in text
    assert "warning: <<SNOMED:9999990006 is inactive" in text
    assert "r.crit:5:1: warning: value set spare is declared and never used" in text
    assert "terminology: " in flat and "SNOMED CT INT version 20240101" in flat
    strict = runner.invoke(app, ["lint", rule, "--terminology", str(store_file), "--strict"])
    assert strict.exit_code == 1
    clean = write(tmp_path, 'trial "T"\nvalueset m = <<SNOMED:363346000\nexclusion E "x" = condition m\n')
    assert runner.invoke(app, ["lint", clean, "--terminology", str(store_file), "--strict"]).exit_code == 0
    broken = write(tmp_path, 'trial "T"\nexclusion E "x" = condition nowhere\n')
    assert runner.invoke(app, ["lint", broken, "--strict"]).exit_code == 2


def test_a_missing_terminology_file_is_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["lint", str(ROOT / "trials" / "NCT00659217.crit"), "--terminology",
                                      str(tmp_path / "nowhere.sqlite")])
    assert result.exit_code == 2 and "no terminology store" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- reports
def test_check_and_explain_print_the_terminology(tmp_path):
    store_file = fixture_store(*NCT_TERMINOLOGY).path
    bundle = tmp_path / "p.json"
    bundle.write_text(json.dumps({"id": "p", "birth_date": "1980-01-01", "sex": "male", "conditions": [COLON,
                                  {"code": "SNOMED:15777000", "display": "Prediabetes", "onset": "2020-01-01",
                                   "status": "active"}]}), encoding="utf-8")
    crit = str(ROOT / "trials" / "NCT00659217.crit")
    runner = CliRunner()
    as_json = runner.invoke(app, ["check", crit, str(bundle), "--as-of", "2026-11-25", "--format", "json",
                                  "--terminology", str(store_file)])
    data = json.loads(as_json.stdout)
    assert [s["source"] for s in data["terminology"]] == ["CodeSystem http://snomed.info/sct", "RxNorm"]
    assert data["terminology"][0]["version"] == "fixture-20261101"
    assert {c["id"]: c["verdict"] for c in data["criteria"]}["E2"] == "fail"
    none = json.loads(runner.invoke(app, ["check", crit, str(bundle), "--as-of", "2026-11-25", "--format", "json",
                                          "--terminology", "none"]).stdout)
    assert none["terminology"] is None
    assert {c["id"]: c["verdict"] for c in none["criteria"]}["E2"] == "unknown"
    text = runner.invoke(app, ["check", crit, str(bundle), "--as-of", "2026-11-25", "--terminology", str(store_file)])
    assert "terminology: CodeSystem http://snomed.info/sct version fixture-20261101" in " ".join(text.stdout.split())
    explained = runner.invoke(app, ["explain", crit, str(bundle), "--as-of", "2026-11-25", "--terminology",
                                    str(store_file)])
    flat = " ".join(explained.stdout.split())
    assert "terminology: CodeSystem http://snomed.info/sct" in flat
    # prediabetes is in no value set of the rule set: the criteria on conditions say they did not look at it
    assert "not considered: Prediabetes (SNOMED:15777000)" in flat


def test_not_considered_in_json_and_only_for_record_criteria():
    trial = compile_text(RULES + 'inclusion AGE "adult" = age >= 18\n', terminology=fixture_store(*NCT_TERMINOLOGY))
    p = patient(conditions=[{"code": "SNOMED:15777000", "display": "Prediabetes", "onset": "2020-01-01",
                             "status": "active"}], medications=[])
    result = trial.screen(p, AS_OF).to_dict()
    by_id = {c["id"]: c for c in result["criteria"]}
    assert by_id["E2"]["not_considered"] == ["Prediabetes (SNOMED:15777000)"]
    assert "not_considered" not in by_id["AGE"]
    assert "not_considered" not in by_id["E9"]  # a medication criterion: the condition is not its kind
