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
