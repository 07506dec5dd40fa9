"""The generated fast path and the explaining interpreter must agree on every patient.

Differential test over a deterministic synthetic population (benchmarks/population.py) and the
benchmark rule set, which together exercise units, limits of normal, windows, partial dates,
value sets, count-of, unless, applies-if, facts, age and sex.
"""
import importlib.util
from datetime import date

from screening import compile_trial, patient_from_document
from screening.evaluate import Interpreter

from helpers import ROOT

AS_OF = date(2026, 11, 25)


def _population_module():
    spec = importlib.util.spec_from_file_location("population", ROOT / "benchmarks" / "population.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _agreement(trial, documents, as_of):
    ctx = trial.context(as_of)
    checked = 0
    for document in documents:
        patient = patient_from_document(document, "generated")
        fast = trial.values(patient, as_of)
        interpreter = Interpreter(patient, ctx)
        for criterion, (applies, value) in zip(trial.criteria, fast):
            slow_applies = interpreter.run(criterion.applies).value if criterion.applies is not None else True
            slow_value = interpreter.run(criterion.condition).value
            assert (applies, value) == (slow_applies, slow_value), (document["id"], criterion.id)
            checked += 1
    return checked


def test_fast_path_agrees_with_the_interpreter_on_a_synthetic_population():
    population = _population_module()
    trial = compile_trial(ROOT / "benchmarks" / "bench_rules.crit")
    documents = list(population.generate(3000, seed=7))
    assert _agreement(trial, documents, AS_OF) == 3000 * len(trial.criteria)
    # another as-of date moves every window and age
    assert _agreement(trial, documents[:1000], date(2025, 3, 31)) == 1000 * len(trial.criteria)


def test_fast_path_agrees_on_the_nct00659217_rule_set():
    population = _population_module()
    trial = compile_trial(ROOT / "trials" / "NCT00659217.crit")
    documents = list(population.generate(1000, seed=11))
    assert _agreement(trial, documents, AS_OF) == 1000 * len(trial.criteria)


# ---------------------------------------------------------------- codegen for large and deep rule sets
NESTED_RULES = '''
trial "NESTED"
reference range ALT = 7 to 56 U/L
define old = age >= 60
define liver = ALT <= 2 x ULN or AST <= 2 x ULN
define both = old and liver
define either = if both then liver else if old then known(liver) else not liver
inclusion I1 "else-if chain" =
    if age >= 70 then ALT <= 1 x ULN
    else if age >= 60 then ALT <= 1.5 x ULN
    else if age >= 50 then ALT <= 2 x ULN
    else if sex is female then ALT <= 2.5 x ULN
    else if fact informed_consent then ALT <= 3 x ULN
    else AST <= 3 x ULN
inclusion I2 "a name used often and deeply" = either and (both or either) and not (either and old)
inclusion I3 "if with an unknown condition" = if fact informed_consent then liver else liver
inclusion I4 "many alternatives" = at least 2 of (old, liver, both, either, fact informed_consent, sex is male)
exclusion E1 "and/or over many operands" =
    (ALT > 1 x ULN or AST > 1 x ULN or age < 30 or age > 70 or sex is female or fact informed_consent)
    and (liver or old or both or either or known(fact informed_consent) or HbA1c > 8 %)
'''


def test_fast_path_agrees_on_else_if_chains_and_shared_definitions():
    from screening import compile_text

    population = _population_module()
    trial = compile_text(NESTED_RULES, "nested.crit")
    documents = list(population.generate(1500, seed=5))
    assert _agreement(trial, documents, AS_OF) == 1500 * len(trial.criteria)
    # every define is generated once, as its own function; every branch of an if once
    source = trial.generated_source
    assert source.count("def D") == 4
    assert source.count("ALT <= 1.5") == 0  # rule values are bound objects, never source text


def test_fast_path_agrees_when_atoms_are_called_and_junctions_are_split(monkeypatch):
    """The shapes used for machine-generated rule sets: atom calls instead of inlined tests, and/or
    split into helper functions, criteria spread over several functions."""
    import screening.compile as compile_module

    monkeypatch.setattr(compile_module, "INLINE_ATOMS", 0)
    monkeypatch.setattr(compile_module, "JUNCTION_GROUP", 2)
    monkeypatch.setattr(compile_module, "CHUNK_LINES", 10)
    population = _population_module()
    documents = list(population.generate(1000, seed=9))
    for trial in (compile_module.compile_text(NESTED_RULES, "nested.crit"),
                  compile_trial(ROOT / "benchmarks" / "bench_rules.crit")):
        source = trial.generated_source
        assert "def G" in source and "def Q1(" in source and "for o in" not in source
        assert _agreement(trial, documents, AS_OF) == 1000 * len(trial.criteria)
