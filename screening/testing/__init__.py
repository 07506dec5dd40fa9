"""Regression tests for rule sets: case files, the case runner, golden updates and clause coverage.

A case file (``*.cases.yaml``, next to the rule set) lists patients with the decision and the
verdicts a rule author expects. ``screening test`` runs them (:mod:`.command`), ``--update``
records the current results into the file without touching its comments (:mod:`.casefile`),
``--coverage`` reports which outcomes every criterion and sub-condition has produced
(:mod:`.coverage`), ``--junit-xml`` writes a CI report (:mod:`.junit`), and the pytest plugin
(:mod:`screening.pytest_plugin`) runs the same cases inside a pytest suite.

    from screening.testing import Loader, run_case
    loader = Loader()
    suite = loader.load("trials/NCT00659217.cases.yaml")
    results = [run_case(case) for case in suite.cases]
    [r.case.name for r in results if not r.passed]
"""
from .casefile import Case, CaseFile, Loader, discover, load_case_file
from .runner import CaseResult, Mismatch, failure_text, run_case, selection

__all__ = [
    "Case", "CaseFile", "Loader", "discover", "load_case_file",
    "CaseResult", "Mismatch", "failure_text", "run_case", "selection",
]
