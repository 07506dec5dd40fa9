"""Parsing and checking: the forms of the language, and every compile error with its position."""
import pytest

from screening import SourceError, compile_text
from screening.parser import lark_parser, parse

from helpers import rules, trial


def compile_error(body: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        compile_text(rules(body), "bad.crit")
    return info.value


def test_grammar_has_no_lalr_conflicts_or_terminal_collisions():
    # strict mode turns shift/reduce conflicts and regex collisions into errors
    lark_parser.cache_clear()
    try:
        lark_parser(strict=True)
    finally:
        lark_parser.cache_clear()


def test_header_declarations_and_criteria_are_parsed():
    syntax = parse(
        'trial "NCT1" title "A title" lab window 90 days\n'
        'valueset mal "malignancy" = ICD10:C00-C96, SNOMED:363346000\n'
        "reference range ALT for female = 7 to 35 U/L\n"
        'define d "a definition" = age >= 18\n'
        'draft exclusion E1 "text one" = applies if sex is female: condition mal within 6 months\n'
        'inclusion I1 "text two" = d\n', "x.crit")
    assert syntax.trial_id == "NCT1" and syntax.title == "A title"
    assert (syntax.lab_window.amount, syntax.lab_window.unit) == (90, "days")
    assert [c.code for c in syntax.valuesets[0].codes] == ["C00-C96", "363346000"]
    assert syntax.ranges[0].sex == "female" and (syntax.ranges[0].low, syntax.ranges[0].high) == (7, 35)
    e1, i1 = syntax.criteria
    assert e1.draft and e1.kind == "exclusion" and e1.applies is not None
    assert e1.expr.window.duration.amount == 6 and e1.expr.window.duration.unit == "months"
    assert not i1.draft and i1.text == "text two"


@pytest.mark.parametrize("expression, unit, value", [
    ("platelets >= 100 x 10^9/L", "10^9/L", 100),
    ("platelets >= 100 × 10^9/L", "10^9/L", 100),
    ("ANC >= 1500/mm3", "/mm3", 1500),
    ("ANC >= 1,500 cells/mm3", "cells/mm3", 1500),
    ("creatinine <= 1.5 mg/dL", "mg/dL", 1.5),
    ("eGFR >= 60 mL/min/1.73m2", "mL/min/1.73m2", 60),
    ("hemoglobin >= 9 g/dL", "g/dL", 9),
    ("BMI < 35 kg/m2", "kg/m2", 35),
    ("HbA1c <= 53 mmol/mol", "mmol/mol", 53),
    ("systolic_bp < 160 mm[Hg]", "mm[Hg]", 160),
    ("temperature > 38 Cel", "Cel", 38),
    ("weight > 150 lb", "lb", 150),
])
def test_quantities_as_labs_write_them(expression, unit, value):
    syntax = parse(rules(f'inclusion I1 "x" = {expression}\n'))
    bound = syntax.criteria[0].expr.bound
    assert (bound.unit, bound.value) == (unit, value)


@pytest.mark.parametrize("expression, multiplier, which", [
    ("ALT <= 2.5 x ULN", 2.5, "ULN"), ("ALT <= 2.5 X ULN", 2.5, "ULN"), ("ALT <= 3 times ULN", 3, "ULN"),
    ("ALT <= ULN", 1, "ULN"), ("hemoglobin >= 0.8 × LLN", 0.8, "LLN"),
])
def test_limits_of_normal(expression, multiplier, which):
    bound = parse(rules(f'inclusion I1 "x" = {expression}\n')).criteria[0].expr.bound
    assert (bound.multiplier, bound.which) == (multiplier, which)


def test_precedence_unless_is_loosest_then_or_then_and():
    expr = parse(rules('inclusion I1 "x" = age > 1 or age > 2 and age > 3 unless age > 4\n')).criteria[0].expr
    assert type(expr).__name__ == "Unless"
    assert type(expr.main).__name__ == "Or"
    assert type(expr.main.operands[1]).__name__ == "And"


def test_thresholds_are_converted_at_compile_time_into_the_catalogue_unit():
    t = trial('inclusion I1 "x" = creatinine <= 132.6 umol/L\ninclusion I2 "y" = platelets >= 100,000/mm3\n'
              'inclusion I3 "z" = HbA1c < 53 mmol/mol\n')
    c1, c2, c3 = (c.condition for c in t.criteria)
    assert c1.bound.value == pytest.approx(132.6 / 88.4017, rel=1e-4)  # mg/dL via 113.12 g/mol
    assert c2.bound.value == 100.0  # 10^9/L, exactly
    # IFCC -> NGSP % (7.00044), at the precision 53 was written with (docs/semantics.md): 7.0
    assert c3.bound.value == 7.0


def test_syntax_error_points_at_line_and_column_with_a_caret():
    err = compile_error('inclusion I1 "x" = ALT <= 2.5 x\n')
    d = err.first
    assert (d.span.line, d.code) == (2, "syntax")
    rendered = err.render()
    assert rendered.startswith("bad.crit:2:")
    assert "^" in rendered and "ALT <= 2.5 x" in rendered


def test_unknown_analyte_has_a_did_you_mean():
    err = compile_error('inclusion I1 "x" = platelet >= 100 x 10^9/L\n')
    assert err.first.code == "unknown-analyte"
    assert (err.first.span.line, err.first.span.column) == (2, 20)
    assert "platelets" in err.first.hint


def test_unknown_unit_and_lost_superscript_hint():
    err = compile_error('inclusion I1 "x" = platelets >= 100 x 109/L\n')
    assert err.first.code == "unknown-unit" and "ambiguous unit '109/L'" in err.first.message
    assert "10^9/L" in err.first.hint


def test_incompatible_dimensions_are_a_compile_error_with_position():
    err = compile_error('exclusion E1 "x" = ALT > 2 mg/dL\n')
    assert err.first.code == "unit-mismatch"
    assert "ALT" in err.first.message and "mg/dL" in err.first.message
    assert (err.first.span.line, err.first.span.column) == (2, 26)


def test_mass_substance_conversion_needs_a_molar_mass():
    err = compile_error('inclusion I1 "x" = albumin >= 500 umol/L\n')
    assert "molar mass" in err.first.message


def test_threshold_without_unit_is_refused_unless_dimensionless():
    assert compile_error('inclusion I1 "x" = creatinine < 1.5\n').first.code == "missing-unit"
    trial('inclusion I1 "x" = INR <= 1.5\n')  # INR has no unit: fine


def test_every_problem_is_reported_at_once():
    err = compile_error(
        'inclusion I1 "x" = ALTT > 2 x ULN\n'
        'inclusion I1 "y" = condition nowhere\n'
        'exclusion E1 "z" = creatinine > 2 furlongs\n'
        'define a = b\n'
        'define b = a\n'
    )
    codes = sorted(d.code for d in err.diagnostics)
    assert codes == ["cycle", "duplicate", "unknown-analyte", "unknown-unit"]
    assert "4 problems found" in err.render()


def test_unknown_reference_and_value_set_used_as_a_condition():
    err = compile_error('valueset mal = ICD10:C50\ninclusion I1 "x" = mal\ninclusion I2 "y" = maligant\n')
    assert [d.code for d in err.diagnostics] == ["type", "unknown-name"]
    assert "condition mal" in err.diagnostics[0].message


def test_backwards_ranges_and_bad_regex():
    err = compile_error('inclusion I1 "x" = age between 60 and 18\n'
                        'inclusion I2 "y" = procedure CPT:50200 with result matches "class (III"\n'
                        'valueset v = ICD10:C96-C00\n')
    assert sorted(d.code for d in err.diagnostics) == ["bad-range", "bad-range", "regex"]


def test_qualitative_analyte_cannot_be_compared_with_a_number():
    err = compile_error('inclusion I1 "x" = ANA > 3 U/L\n')
    assert err.first.code == "qualitative"


def test_a_rule_file_cannot_run_code():
    # text that would be code in Python is just an unknown name or a syntax error here
    err = compile_error('inclusion I1 "x" = __import__\n')
    assert err.first.code == "unknown-name"
    t = trial('inclusion I1 "x\\" + __import__(\'os\').system(\'false\') + \\"" = fact a is "); import os; os._exit(3)"\n')
    assert "__import__" not in t.generated_source and "os._exit" not in t.generated_source
