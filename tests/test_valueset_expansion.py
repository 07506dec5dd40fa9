"""Value-set members expanded against the terminology store (issue 8, the language half):
``<<CODE``, ``<CODE``, RxNorm ingredients and ATC classes, ``except``, ``file "x.json"``, ICD-10
mixed in; the interpreter (``screen``) and the fast path (``values``) agree on every case."""
from __future__ import annotations

import json
from datetime import date

import pytest

from screening import compile_text, patient_from_document
from screening.errors import SourceError
from screening.parser import lark_parser
from terminology_helpers import ALL, NCT_TERMINOLOGY, fixture_store

AS_OF = date(2026, 11, 25)


def store():
    """The loaders' fixtures (RF2 snapshot, RxNorm RRF, FHIR files)."""
    return fixture_store(*ALL)


def rules(valuesets: str, expr: str = "condition target", kind: str = "exclusion") -> str:
    return f'trial "T"\n{valuesets}\n{kind} E "x" = {expr}\n'


def person(conditions=None, medications=None) -> object:
    doc = {"id": "p", "birth_date": "1980-01-01", "sex": "female"}
    if conditions is not None:
        doc["conditions"] = conditions
    if medications is not None:
        doc["medications"] = medications
    return patient_from_document(doc, "p")


def cond(*codes: str, display: str = "a condition", status: str = "active") -> dict:
    return {"code": codes[0], "codes": list(codes), "display": display, "onset": "2020-01-01", "status": status}


def med(code: str, display: str = "a drug") -> dict:
    return {"code": code, "display": display, "start": "2026-01-01", "status": "active"}


def both(trial, patient):
    """The explained value and the fast-path value of the one criterion; they must agree."""
    explained = trial.screen(patient, AS_OF).criteria[0]
    (applies, fast), = trial.values(patient, AS_OF)
    assert fast is explained.value, (fast, explained.value, explained.explanation)
    return explained


def test_grammar_stays_lalr_and_strict_clean():
    lark_parser.cache_clear()
    try:
        lark_parser(strict=True)
    finally:
        lark_parser.cache_clear()


# ---------------------------------------------------------------- << and <
@pytest.mark.parametrize("code, expected", [
    ("SNOMED:254837009", True),   # breast cancer: a descendant
    ("SNOMED:109838007", True),   # colon cancer
    ("SNOMED:363346000", True),   # the concept itself
    ("SNOMED:49436004", False),   # atrial fibrillation: in the store, not a descendant
])
def test_self_and_descendants(code, expected):
    trial = compile_text(rules("valueset target = <<SNOMED:363346000"), terminology=store())
    assert both(trial, person([cond(code)])).value is expected


def test_descendants_only_leaves_out_the_concept():
    trial = compile_text(rules("valueset target = <SNOMED:363346000"), terminology=store())
    assert both(trial, person([cond("SNOMED:363346000")])).value is False
    assert both(trial, person([cond("SNOMED:254837009")])).value is True


def test_plain_snomed_code_matches_exactly_and_lint_warns():
    trial = compile_text(rules("valueset target = SNOMED:363346000"), terminology=store())
    assert both(trial, person([cond("SNOMED:254837009")])).value is False
    assert [w.code for w in trial.warnings] == ["no-descendants"]
    assert "write <<SNOMED:363346000" in trial.warnings[0].render()


# ---------------------------------------------------------------- RxNorm and ATC
@pytest.mark.parametrize("member", ["RXNORM:3002", "ATC:L01AA01", "ATC:L01AA"])
@pytest.mark.parametrize("code, expected", [
    ("RXNORM:3002", True),       # the ingredient itself
    ("RXNORM:202589", True),     # the brand Cytoxan
    ("RXNORM:9900001", True),    # a clinical drug containing it
    ("RXNORM:1191", False),      # aspirin
])
def test_an_ingredient_or_atc_class_matches_every_product_containing_it(member, code, expected):
    trial = compile_text(rules(f"valueset target = {member}", "medication target"), terminology=store())
    assert both(trial, person(medications=[med(code)])).value is expected


# ---------------------------------------------------------------- except
MALIGNANCY = "valueset target = <<SNOMED:363346000, ICD10:C00-C96, ICD10:Z85 except <<SNOMED:254701007, ICD10:C44"


@pytest.mark.parametrize("codes, expected", [
    (("SNOMED:254837009",), True),        # breast cancer
    (("SNOMED:254701007",), False),       # basal cell carcinoma of skin: excluded
    (("ICD10:C50.9",), True),
    (("ICD10:C44.91",), False),           # excluded by its ICD-10 range
    (("ICD10:Z85.3",), True),
])
def test_except_applies_after_expansion(codes, expected):
    trial = compile_text(rules(MALIGNANCY), terminology=store())
    assert both(trial, person([cond(*codes)])).value is expected


def test_except_without_a_store_is_unknown_when_the_record_may_be_excluded():
    trial = compile_text(rules("valueset target = ICD10:C00-C96 except <<SNOMED:254701007"))
    # an ICD-10 cancer code that is also coded in SNOMED: in, unless the SNOMED code is basal cell carcinoma
    # the excluded concept itself is in <<SNOMED:254701007, store or not: certainly excluded
    assert both(trial, person([cond("ICD10:C44.91", "SNOMED:254701007")])).value is False
    # a SNOMED code the missing hierarchy might place under basal cell carcinoma: unknown, named
    result = both(trial, person([cond("ICD10:C50.9", "SNOMED:1234567")]))
    assert result.value is None
    assert "part after `except`" in result.missing[0] and "load a SNOMED CT release" in result.missing[0]


def test_included_value_set_keeps_its_own_exclusion():
    text = ("valueset cancer = <<SNOMED:363346000 except <<SNOMED:254701007\n"
            "valueset target = cancer, SNOMED:49436004")
    trial = compile_text(rules(text), terminology=store())
    assert both(trial, person([cond("SNOMED:254701007")])).value is False
    assert both(trial, person([cond("SNOMED:49436004")])).value is True
    assert both(trial, person([cond("SNOMED:254837009")])).value is True


# ---------------------------------------------------------------- ICD-10 mixed with SNOMED CT
def test_an_icd10_coding_decides_without_a_store():
    trial = compile_text(rules("valueset target = <<SNOMED:363346000, ICD10:C00-C96"))
    assert both(trial, person([cond("SNOMED:3723001", "ICD10:M13.0")])).value is False
    assert both(trial, person([cond("SNOMED:3723001", "ICD10:C50.9")])).value is True
    assert both(trial, person([cond("SNOMED:3723001")])).value is None


# ---------------------------------------------------------------- file "x.json"
def write_valueset(folder, name: str, resource: dict) -> None:
    (folder / name).write_text(json.dumps(resource), encoding="utf-8")


def test_file_valueset_with_a_concept_list_works_without_a_store(tmp_path):
    write_valueset(tmp_path, "vs.json", {
        "resourceType": "ValueSet", "url": "http://example.org/vs", "compose": {"include": [
            {"system": "http://snomed.info/sct", "concept": [{"code": "254837009"}]},
            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "concept": [{"code": "C50.911"}]}]}})
    rule = tmp_path / "r.crit"
    rule.write_text(rules('valueset target = file "vs.json"'), encoding="utf-8")
    from screening import compile_trial

    trial = compile_trial(rule)
    assert both(trial, person([cond("SNOMED:254837009")])).value is True
    assert both(trial, person([cond("ICD10:C50.911")])).value is True
    assert both(trial, person([cond("SNOMED:109838007")])).value is False  # exact lists: no hierarchy needed


def test_file_valueset_with_a_filter_needs_the_store(tmp_path):
    write_valueset(tmp_path, "vs.json", {
        "resourceType": "ValueSet", "url": "http://example.org/vs", "compose": {
            "include": [{"system": "http://snomed.info/sct",
                         "filter": [{"property": "concept", "op": "is-a", "value": "363346000"}]}],
            "exclude": [{"system": "http://snomed.info/sct", "concept": [{"code": "254701007"}]}]}})
    text = rules('valueset target = file "vs.json"')
    with_store = compile_text(text, str(tmp_path / "r.crit"), terminology=store())
    assert both(with_store, person([cond("SNOMED:109838007")])).value is True
    assert both(with_store, person([cond("SNOMED:254701007")])).value is False
    without = compile_text(text, str(tmp_path / "r.crit"))
    result = both(without, person([cond("SNOMED:109838007")]))
    assert result.value is None and "load a SNOMED CT release" in result.missing[0]


def test_a_missing_or_bad_file_is_a_positioned_compile_error(tmp_path):
    with pytest.raises(SourceError) as caught:
        compile_text(rules('valueset target = file "nowhere.json"'), str(tmp_path / "r.crit"))
    text = caught.value.render()
    assert "r.crit:2:24:" in text and "not found" in text and "^" in text
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(SourceError, match="not JSON"):
        compile_text(rules('valueset target = file "bad.json"'), str(tmp_path / "r.crit"))


def test_descendants_only_on_icd10_is_an_error():
    with pytest.raises(SourceError, match="already match their descendants"):
        compile_text(rules("valueset target = <ICD10:C50"))


# ---------------------------------------------------------------- the report says which terminology
def test_results_carry_the_terminology_sources():
    trial = compile_text(rules("valueset target = <<SNOMED:363346000"), terminology=store())
    data = trial.screen(person([]), AS_OF).to_dict()
    names = [s["source"] for s in data["terminology"]]
    assert "SNOMED CT INT" in names and "RxNorm" in names
    assert all({"source", "version", "effective"} <= set(s) for s in data["terminology"])
    assert compile_text(rules("valueset target = ICD10:C50")).screen(person([]), AS_OF).to_dict()["terminology"] is None


def test_nct_fixture_store_is_what_the_case_file_uses():
    assert all(p.exists() for p in NCT_TERMINOLOGY)
