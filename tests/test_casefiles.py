"""Rule-set regression tests: case files, `screening test`, golden updates, coverage, JUnit, pytest plugin.

The NCT00659217 case suite (trials/NCT00659217.cases.yaml) runs here too, so `pytest` fails when
the rule set and its cases disagree.
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from terminology_helpers import fixture_store
from screening import SourceError, compile_trial
from screening.cli import app
from screening.testing import Loader, run_case, selection
from screening.testing.casefile import display_name
from screening.testing.command import run_test_command
from screening.testing.coverage import Coverage, Possible

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "trials" / "NCT00659217.cases.yaml"
CRIT = ROOT / "trials" / "NCT00659217.crit"
SAMPLES = ROOT / "patient_samples"
P04 = SAMPLES / "p04_ineligible_alt_95_over_2x_uln.json"
P01 = SAMPLES / "p01_eligible_female_si_units.json"


def suite_size() -> int:
    return len(Loader().load(SUITE).cases)


def run(paths, **options) -> tuple[int, str]:
    """run_test_command with the output captured as plain text; case files that name no terminology
    run with the NCT00659217 fixture store (as `screening test --terminology`), as the sample patients'
    decisions assume SNOMED CT and RxNorm."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, highlight=False, color_system=None)
    options.setdefault("terminology", fixture_store())
    code = run_test_command([Path(p) for p in paths], out=console, err=console, **options)
    return code, buffer.getvalue()


def case_file(tmp_path: Path, text: str, name: str = "t.cases.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def header(as_of: str = "2026-11-25") -> str:
    return f"trial: {CRIT}\nas_of: {as_of}\ncases:\n"


# ---------------------------------------------------------------- the shipped suite
def test_the_nct00659217_suite_passes():
    results = [run_case(case) for case in Loader().load(SUITE).cases]
    failures = [r.summary() for r in results if not r.passed]
    assert failures == []
    assert len(results) >= 20


def test_the_nct00659217_suite_produces_every_outcome_the_rules_can_produce():
    coverage = Coverage()
    for case in Loader().load(SUITE).cases:
        coverage.add(case, run_case(case).result)
    # the cases that run without a terminology (`terminology: none`) are covered apart
    main = [tc for key, tc in coverage.trials.items() if "(terminology: " not in key]
    (tc,) = main
    assert len(coverage.trials) == 2
    seen = {cid: set(words) for cid, words in tc.verdicts.items()}
    assert seen["AGE"] >= {"pass", "fail", "unknown"}
    assert seen["I4"] >= {"pass", "n/a", "fail", "unknown"}
    assert seen["E5"] >= {"pass", "fail", "unknown", "review"}
    assert seen["E7"] == {"pass", "fail", "review"}  # E7 cannot be unknown: it asks for review instead
    assert set(tc.decisions) == {"eligible", "ineligible", "undetermined"}
    assert tc.gaps() == []


def test_screening_test_trials_folder_exits_0():
    result = CliRunner().invoke(app, ["test", str(ROOT / "trials")])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.rstrip().splitlines()[-1] == f"{suite_size()} passed, 0 failed"


def test_pytest_plugin_is_registered_as_an_entry_point():
    entry_points = metadata.entry_points(group="pytest11")
    assert any(ep.name == "screening" and ep.value == "screening.pytest_plugin" for ep in entry_points), \
        "reinstall the package (pip install -e .) so pytest finds the plugin"


def _pytest(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def test_pytest_collects_the_suite_as_one_item_per_case():
    done = _pytest("trials/NCT00659217.cases.yaml", "-q", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{suite_size()} passed" in done.stdout


def test_pytest_plugin_loads_explicitly_and_respects_k():
    # -p no:screening: the entry point would otherwise register the same module a second time
    done = _pytest("-p", "no:screening", "-p", "screening.pytest_plugin", "trials/NCT00659217.cases.yaml",
                   "-q", "-p", "no:cacheprovider", "-k", "p04")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"1 passed, {suite_size() - 1} deselected" in done.stdout


def test_pytest_reports_a_failing_case_and_a_broken_file_like_the_cli(tmp_path):
    case_file(tmp_path, header() + f"  - name: p04 expected to pass\n    patient: {P04}\n    verdicts: {{E6: pass}}\n",
              "fail.cases.yaml")
    case_file(tmp_path, header() + f"  - name: bad\n    patient: {P04}\n    verdicts: {{E66: pass}}\n",
              "broken.cases.yaml")
    done = _pytest(str(tmp_path), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                   "--continue-on-collection-errors", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "E6 (exclusion): Transaminases greater than 2 times normal" in done.stdout
    assert "verdict: expected pass, got fail" in done.stdout
    assert "broken.cases.yaml:6:16: unknown criterion id `E66`" in done.stdout
    assert "1 failed" in done.stdout and "1 error" in done.stdout


# ---------------------------------------------------------------- the mutation: 2 x ULN -> 3 x ULN
def test_moving_the_alt_threshold_fails_the_suite_naming_criterion_and_patient(tmp_path):
    shutil.copytree(ROOT / "trials", tmp_path / "trials")
    shutil.copytree(SAMPLES, tmp_path / "patient_samples")
    rules = tmp_path / "trials" / "NCT00659217.crit"
    text = rules.read_text(encoding="utf-8")
    assert "ALT > 2 x ULN" in text
    rules.write_text(text.replace("ALT > 2 x ULN", "ALT > 3 x ULN"), encoding="utf-8")

    code, output = run([tmp_path / "trials"])
    assert code == 1
    assert "FAIL case `p04 ALT 95 over 2 x ULN`" in output
    p04 = output[output.index("FAIL case `p04 ALT 95 over 2 x ULN`"):]
    p04 = p04[:p04.index("\n\n")]
    assert "p04_ineligible_alt_95_over_2x_uln.json" in p04
    assert "E6 (exclusion): Transaminases greater than 2 times normal unless due to active lupus." in p04
    assert "verdict: expected fail, got pass" in p04
    assert "decision: expected ineligible, got eligible" in p04
    assert "ALT > 3 x ULN within 3 months is false: ALT 95 U/L" in p04
    assert output.rstrip().splitlines()[-1].endswith(" failed") and " 0 failed" not in output


# ---------------------------------------------------------------- reading case files
def test_a_case_file_is_read_with_positions_and_inline_patients(tmp_path):
    path = case_file(tmp_path, header() + (
        "  # a comment\n"
        "  - name: inline minor\n"                         # line 5
        "    as_of: 2026-01-31\n"
        "    patient:\n"
        "      birth_date: \"2010-06-01\"\n"
        "      conditions: []\n"
        "    decision: ineligible\n"
        "    verdicts: {AGE: fail, I4: n/a}\n"              # line 11
        "    missing: {E6: [\"fact transaminase_rise_due_to_active_lupus\"]}\n"
        "    explanation:\n"
        "      AGE: age 15 years\n"
        f"  - name: p04\n    patient: {P04}\n    decision: ineligible\n"
    ))
    suite = Loader().load(path)
    first, second = suite.cases
    assert (first.name, first.span.line, first.as_of.isoformat()) == ("inline minor", 5, "2026-01-31")
    assert first.patient.id == "inline minor"  # an inline patient without id takes the case name
    assert first.patient_label == "inline patient inline minor"
    assert first.decision.value == "ineligible"
    assert {cid: e.value for cid, e in first.verdicts.items()} == {"AGE": "fail", "I4": "n/a"}
    assert (first.verdicts["I4"].span.line, first.verdicts["I4"].span.column) == (11, 31)
    assert first.missing["E6"].value == ["fact transaminase_rise_due_to_active_lupus"]
    assert first.explanation["AGE"].value == ["age 15 years"]
    assert second.as_of.isoformat() == "2026-11-25" and second.patient.id == "p04"
    assert second.nodeid == f"{display_name(path)}::p04"
    assert run_case(first).passed


ERRORS = [
    ("unknown top-level key",
     f"trial: {CRIT}\nas_of: 2026-11-25\ntitle: x\ncases:\n  - name: a\n    patient: {P04}\n    decision: ineligible\n",
     3, 1, "unknown key `title` in a case file"),
    ("unknown case key",
     header() + f"  - name: a\n    patient: {P04}\n    decison: ineligible\n",
     6, 5, "unknown key `decison` in a case (expected name, patient"),
    ("unknown criterion id",
     header() + f"  - name: a\n    patient: {P04}\n    verdicts: {{AGE: pass, E66: fail}}\n",
     6, 27, "unknown criterion id `E66`"),
    ("unknown verdict word",
     header() + f"  - name: a\n    patient: {P04}\n    verdicts:\n      E6: failed\n",
     7, 11, "unknown verdict `failed`; expected pass, fail, unknown, review or n/a"),
    ("unknown decision word",
     header() + f"  - name: a\n    patient: {P04}\n    decision: excluded\n",
     6, 15, "unknown decision `excluded`; expected eligible, ineligible or undetermined"),
    ("malformed top-level date",
     header("2026-13-01") + f"  - name: a\n    patient: {P04}\n    decision: ineligible\n",
     2, 8, "malformed date in `as_of`: '2026-13-01' is not a real date"),
    ("malformed case date",
     header() + f"  - name: a\n    as_of: 25/11/2026\n    patient: {P04}\n    decision: ineligible\n",
     5, 12, "malformed date in `as_of`: '25/11/2026' is not a date"),
    ("missing patient file",
     header() + "  - name: a\n    patient: nowhere/p99.json\n    decision: ineligible\n",
     5, 14, "patient file not found"),
    ("duplicate case name",
     header() + f"  - name: a\n    patient: {P04}\n    decision: ineligible\n"
                f"  - name: a\n    patient: {P04}\n    decision: ineligible\n",
     7, 11, "case name `a` is already used (line 4)"),
    ("inline patient with an invalid value",
     header() + "  - name: a\n    patient:\n      id: x\n      observations:\n"
                "        - {code: \"LOINC:1742-6\", value: 50, date: \"2026-02-30\"}\n    decision: ineligible\n",
     8, 51, "inline patient: $.observations[0].date:"),
    ("inline patient with an unknown field",
     header() + "  - name: a\n    patient:\n      id: x\n      gender: female\n    decision: ineligible\n",
     7, 7, "inline patient: $.gender: unknown field"),
    ("n/a for a criterion that always applies",
     header() + f"  - name: a\n    patient: {P04}\n    verdicts: {{E6: n/a}}\n",
     6, 20, "criterion E6 has no `applies if`"),
    ("no screening date",
     f"trial: {CRIT}\ncases:\n  - name: a\n    patient: {P04}\n    decision: ineligible\n",
     3, 5, "case `a` has no screening date"),
    ("a case that checks nothing",
     header() + f"  - name: a\n    patient: {P04}\n",
     4, 5, "case `a` checks nothing"),
    ("rule set not found",
     "trial: nowhere.crit\nas_of: 2026-11-25\ncases:\n  - name: a\n    patient: {P04}\n    decision: eligible\n",
     1, 8, "rule set not found"),
    ("YAML syntax",
     header() + f"  - name: a\n    patient: {P04}\n    verdicts: {{E6: pass\n",
     6, 15, "not valid YAML"),
]


@pytest.mark.parametrize("what, text, line, column, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_case_file_problems_point_at_line_and_column(tmp_path, what, text, line, column, message):
    path = case_file(tmp_path, text)
    with pytest.raises(SourceError) as caught:
        Loader().load(path)
    rendered = caught.value.render()
    assert f"{display_name(path)}:{line}:{column}: {message}" in rendered, rendered
    assert "^" in rendered  # the source line with a caret under the problem


def test_did_you_mean_for_ids_and_words_and_every_problem_at_once(tmp_path):
    path = case_file(tmp_path, header() + f"  - name: a\n    patient: {P04}\n    decision: eligble\n"
                                          "    verdicts: {E66: pass, I3: passed}\n")
    with pytest.raises(SourceError) as caught:
        Loader().load(path)
    error = caught.value
    assert [d.span.line for d in error.diagnostics] == [6, 7, 7]
    assert [d.hint for d in error.diagnostics] == [
        "did you mean `eligible` or `ineligible`?", "did you mean `E6`?", "did you mean `pass`?"]
    assert error.render().endswith("3 problems found")


def test_a_yaml_number_where_a_date_is_needed_gets_a_hint(tmp_path):
    path = case_file(tmp_path, header() + "  - name: a\n    patient:\n      birth_date: 1990\n    decision: eligible\n")
    with pytest.raises(SourceError) as caught:
        Loader().load(path)
    assert caught.value.first.hint == 'YAML reads `1990` as a number; quote it to make it text: "1990"'
    assert (caught.value.first.span.line, caught.value.first.span.column) == (6, 19)


def test_a_broken_rule_set_is_reported_with_its_own_positions(tmp_path):
    broken = tmp_path / "broken.crit"
    broken.write_text(CRIT.read_text(encoding="utf-8").replace("age between 18", "age betwen 18"), encoding="utf-8")
    path = case_file(tmp_path, f"trial: broken.crit\nas_of: 2026-11-25\ncases:\n  - name: a\n    patient: {P04}\n"
                               "    decision: ineligible\n")
    with pytest.raises(SourceError) as caught:
        Loader().load(path)
    rendered = caught.value.render()
    assert f"{display_name(broken)}:" in rendered and "betwen" in rendered
    assert f"{display_name(path)}:1:8: rule set broken.crit does not compile" in rendered


# ---------------------------------------------------------------- the report and exit codes
def test_report_names_case_patient_criterion_expected_actual_and_why(tmp_path):
    path = case_file(tmp_path, header() + (
        f"  - name: p04 expected eligible\n    patient: {P04}\n    decision: eligible\n"
        "    verdicts: {AGE: pass, E6: pass}\n"
        "    missing: {E6: [\"fact transaminase_rise_due_to_active_lupus\"]}\n"
        "    explanation: {E6: \"under by\"}\n"
        f"  - name: p01 passes\n    patient: {P01}\n    decision: eligible\n"))
    code, output = run([path])
    assert code == 1
    where = display_name(path)
    assert f"FAIL {where} (1 passed, 1 failed)" in output
    assert f"FAIL case `p04 expected eligible` ({where}:4)" in output
    assert f"patient: {P04}; trial NCT00659217, as of 2026-11-25" in output
    assert "decision: expected eligible, got ineligible (fail: E6)  [line 6]" in output
    assert "E6 (exclusion): Transaminases greater than 2 times normal unless due to active lupus." in output
    assert "verdict: expected pass, got fail  [line 7]" in output
    assert ("missing: expected 'fact transaminase_rise_due_to_active_lupus'; actually missing: nothing missing"
            "  [line 8]") in output
    assert "explanation: expected to contain 'under by'  [line 9]" in output
    assert "✓ ALT > 2 x ULN within 3 months is true: ALT 95 U/L on 2026-11-09" in output
    assert "over by 15 U/L" in output
    assert "AGE (inclusion)" not in output  # criteria that match are not reported
    assert output.rstrip().splitlines()[-1] == "1 passed, 1 failed"


def test_exit_codes_through_the_cli(tmp_path):
    good = case_file(tmp_path, header() + f"  - name: a\n    patient: {P04}\n    decision: ineligible\n", "good.cases.yaml")
    bad = case_file(tmp_path, header() + f"  - name: a\n    patient: {P04}\n    decision: eligible\n", "bad.cases.yaml")
    broken = case_file(tmp_path, header() + f"  - name: a\n    patient: {P04}\n    decision: maybe\n",
                       "broken.cases.yaml")
    runner = CliRunner()
    assert runner.invoke(app, ["test", str(good)]).exit_code == 0
    failed = runner.invoke(app, ["test", str(bad)])
    assert failed.exit_code == 1 and failed.stdout.rstrip().endswith("0 passed, 1 failed")
    result = runner.invoke(app, ["test", str(broken)])
    assert result.exit_code == 2
    assert f"{display_name(broken)}:6:15: unknown decision `maybe`" in result.stderr
    assert runner.invoke(app, ["test", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(app, ["test", str(good), "-k", "nothing-matches"]).exit_code == 2


# ---------------------------------------------------------------- selection
def test_k_selects_cases_by_name():
    code, output = run([SUITE], select="p04 or AST*")
    assert code == 0
    assert f"{suite_size() - 2} cases deselected by -k 'p04 or AST*'" in output
    assert output.rstrip().splitlines()[-1] == "2 passed, 0 failed"


@pytest.mark.parametrize("expression, name, selected", [
    ("p04", "p04 ALT 95 over 2 x ULN", True),
    ("P04", "p04 ALT 95 over 2 x ULN", True),
    ("p04 ALT", "p04 ALT 95 over 2 x ULN", True),  # not an expression: one substring
    ("alt and not p05", "p05 ALT in ukat/L", False),
    ("alt and not p05", "p04 ALT 95", True),
    ("(p04 or p05) and ukat", "p05 ALT in ukat/L", True),
    ("p0?", "p04 ALT", False),  # glob patterns match the whole name
    ("p0?*", "p04 ALT", True),
])
def test_selection_expressions(expression, name, selected):
    assert selection(expression)(name) is selected


# ---------------------------------------------------------------- golden updates
def test_update_changes_exactly_the_changed_verdict_and_keeps_comments(tmp_path):
    text = header() + (
        "  # ALT 95 against ULN 40: the author still believes E6 passes\n"
        f"  - name: p04\n    patient: {P04}   # sample patient\n"
        "    decision: eligible      # the decision as recorded\n"
        "    verdicts:\n"
        "      AGE: pass   # 35 years old\n"
        "      E6: 'pass'  # transaminases\n"
        "    explanation: {E6: \"ALT 95\"}\n"
        "\n"
        "  # a new case: only a name and a patient\n"
        f"  - name: p01 new\n    patient: {P01}\n"
        "\n# end of cases\n")
    path = case_file(tmp_path, text)
    code, output = run([path], update=True)
    assert code == 0, output
    new = path.read_text(encoding="utf-8")
    expected = text.replace("decision: eligible      #", "decision: ineligible      #")
    expected = expected.replace("E6: 'pass'  #", "E6: 'fail'  #")
    expected = expected.replace(
        f"    patient: {P01}\n",
        f"    patient: {P01}\n    decision: eligible\n    verdicts:\n"
        + "".join(f"      {cid}: pass\n" for cid in ("AGE", "I2", "I3", "I4", "E2", "E3", "E4", "E5", "E6", "E7")))
    assert new == expected
    assert "p04 (line 5): decision: eligible -> ineligible; E6: pass -> fail" in output
    assert "p01 new (line 14): decision: added eligible; verdicts: added AGE pass" in output
    assert run([path])[0] == 0
    code, output = run([path], update=True)
    assert "nothing to update" in output and path.read_text(encoding="utf-8") == new


def test_update_leaves_hand_written_expectations_and_says_so(tmp_path):
    path = case_file(tmp_path, header() + f"  - name: p04\n    patient: {P04}\n    verdicts: {{E6: fail}}\n"
                                          "    explanation: {E6: \"under by\"}\n")
    before = path.read_text(encoding="utf-8")
    code, output = run([path], update=True)
    assert code == 1
    assert path.read_text(encoding="utf-8") == before
    assert "still fail on hand-written `missing` or `explanation` expectations" in output


def test_update_only_touches_selected_cases(tmp_path):
    path = case_file(tmp_path, header() + f"  - name: one\n    patient: {P04}\n    decision: eligible\n"
                                          f"  - name: two\n    patient: {P04}\n    decision: eligible\n")
    run([path], update=True, select="two")
    assert path.read_text(encoding="utf-8").count("decision: ineligible") == 1
    assert run([path])[0] == 1


# ---------------------------------------------------------------- JUnit XML
def test_junit_xml_has_one_testcase_per_case_with_failures(tmp_path):
    path = case_file(tmp_path, header() + f"  - name: p04 wrong\n    patient: {P04}\n    verdicts: {{E6: pass}}\n"
                                          f"  - name: p04 right\n    patient: {P04}\n    verdicts: {{E6: fail}}\n")
    report = tmp_path / "out" / "junit.xml"
    code, output = run([path], junit_xml=report)
    assert code == 1 and f"wrote JUnit XML report to {report}" in output
    root = ET.parse(report).getroot()
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == display_name(path)
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"p04 wrong", "p04 right"}
    assert all(c.get("classname") == display_name(path) for c in cases.values())
    failure = cases["p04 wrong"].find("failure")
    assert failure.get("message") == "E6: expected pass, got fail"
    assert "over by 15 U/L" in failure.text and "E6 (exclusion)" in failure.text
    assert cases["p04 right"].find("failure") is None
    assert cases["p04 wrong"].get("line") == "4"


# ---------------------------------------------------------------- coverage
RULES = '''trial "T-COV"
reference range ALT = 7 to 40 U/L
exclusion E1 "Transaminases" = ALT > 2 x ULN or fact alt_explained
inclusion I1 "Consent" = fact consent or review "ask the investigator"
'''


def test_coverage_names_unexercised_branches_and_one_sided_thresholds(tmp_path):
    (tmp_path / "t.crit").write_text(RULES, encoding="utf-8")
    path = case_file(tmp_path, "trial: t.crit\nas_of: 2026-11-25\ncases:\n"
                               "  - name: high ALT\n    patient:\n      id: a\n      facts: {consent: true}\n"
                               "      observations:\n"
                               "        - {code: \"LOINC:1742-6\", value: 95, unit: U/L, date: \"2026-11-01\"}\n"
                               "    decision: ineligible\n")
    code, output = run([path], coverage=True)
    assert code == 0
    assert "E1 › fact alt_explained: never evaluated" in output
    assert ("E1 › ALT > 2 x ULN: never false, unknown; threshold not tested on both sides (no case at or below)"
            in output)
    assert "I1 › review \"ask the investigator\": never evaluated" in output
    assert "E1: no case gives verdict pass" in output
    assert "I1: no case gives verdict review" in output
    assert "decision eligible: no case" in output
    assert "coverage: 2 of 6 criterion verdicts" in output
    assert output.rstrip().splitlines()[-1] == "1 passed, 0 failed"  # coverage never changes the outcome


def test_between_thresholds_need_a_case_below_within_and_above(tmp_path):
    (tmp_path / "t.crit").write_text('trial "T"\ninclusion AGE "Age" = age between 18 and 60 years\n', encoding="utf-8")
    path = case_file(tmp_path, "trial: t.crit\nas_of: 2026-11-25\ncases:\n"
                               "  - name: old\n    patient: {id: a, birth_date: \"1950-01-01\"}\n    decision: ineligible\n"
                               "  - name: adult\n    patient: {id: b, birth_date: \"1990-01-01\"}\n    decision: eligible\n")
    code, output = run([path], coverage=True)
    assert "AGE › age between 18 and 60 years: never unknown; threshold not tested on both sides (no case below)" \
        in output


def test_possible_outcomes_are_worked_out_from_the_rules():
    trial = compile_trial(CRIT)
    possible = Possible()
    verdicts = {c.id: possible.verdicts(c) for c in trial.criteria}
    assert verdicts["E7"] == {"pass", "fail", "review"}  # if known(x) then x else review: never unknown
    assert verdicts["E5"] == {"pass", "fail", "unknown", "review"}
    assert verdicts["I4"] == {"pass", "n/a", "fail", "unknown"}
    assert verdicts["AGE"] == {"pass", "fail", "unknown"}
    e7 = next(c for c in trial.criteria if c.id == "E7").condition
    assert possible.values[id(e7.condition)] == {True, False}  # known(...) is never unknown
    assert possible.values[id(e7.then)] == {True, False}  # known in the then-branch
    assert possible.values[id(e7.otherwise)] == {None}  # review


def test_every_outcome_of_the_suite_is_one_the_analysis_allows():
    coverage = Coverage()
    for case in Loader().load(SUITE).cases:
        coverage.add(case, run_case(case).result)
    (tc,) = [tc for key, tc in coverage.trials.items() if "(terminology: " not in key]
    for row in tc.rows():
        assert {v for v, n in row.seen.items() if n} <= row.possible, row.path
    for cid, seen in tc.verdicts.items():
        assert set(seen) <= tc.possible_verdicts[cid], cid


_ATOMS = st.sampled_from(["fact a", "fact b", "fact c", 'review "r"', "true", "false", "age >= 18"])


def _expressions():
    def grow(inner):
        pair = st.tuples(inner, inner)
        return st.one_of(
            pair.map(lambda t: f"({t[0]} and {t[1]})"),
            pair.map(lambda t: f"({t[0]} or {t[1]})"),
            pair.map(lambda t: f"({t[0]} unless {t[1]})"),
            inner.map(lambda e: f"(not {e})"),
            inner.map(lambda e: f"known({e})"),
            inner.map(lambda e: f"(if known({e}) then {e} else review \"why\")"),
            st.tuples(inner, inner, inner).map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"),
            st.tuples(st.sampled_from(["at least 1", "at least 2", "at most 1"]), inner, inner, inner)
              .map(lambda t: f"({t[0]} of ({t[1]}, {t[2]}, {t[3]}))"),
        )
    return st.recursive(_ATOMS, grow, max_leaves=7)


@settings(max_examples=300, deadline=None)
@given(expression=_expressions(), premise=st.sampled_from([None, "fact c", "fact a or fact b"]),
       facts=st.fixed_dictionaries({k: st.sampled_from([True, False, None]) for k in "abc"}),
       born=st.sampled_from([None, "2000-01-01", "2015-01-01", "2008"]))
def test_the_possible_outcome_analysis_is_sound(expression, premise, facts, born):
    """Whatever a patient makes of a rule, the analysis must have said it could happen."""
    from types import SimpleNamespace

    from screening import compile_text, patient_from_document
    from screening.testing.coverage import TrialCoverage

    body = f"applies if {premise}: {expression}" if premise else expression
    trial = compile_text(f'trial "T"\ninclusion I1 "i" = {body}\nexclusion E1 "e" = {body}\n', "p.crit")
    document = {"id": "p", "facts": {k: v for k, v in facts.items() if v is not None}}
    if born:
        document["birth_date"] = born
    patient = patient_from_document(document)
    case = SimpleNamespace(nodeid="case", patient=patient, as_of=date(2026, 11, 25))
    tc = TrialCoverage(trial, "p.crit")
    tc.add(case, trial.screen(patient, case.as_of))
    for row in tc.rows():
        assert {v for v, n in row.seen.items() if n} <= row.possible, (row.path, row.seen, row.possible)
    for cid, seen in tc.verdicts.items():
        assert set(seen) <= tc.possible_verdicts[cid], (cid, seen, tc.possible_verdicts[cid])
