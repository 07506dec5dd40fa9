"""Terminal output: tables that fit the width and never cut text; several files, some bad (docs/worklist.md)."""
from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from screening import compile_trial, load_patient
from screening.analytes import catalogue
from screening.render import print_analytes, print_explanation, print_results

from cli_helpers import run
from helpers import AS_OF, ROOT, named_fhir_bundle

CRIT = ROOT / "trials" / "NCT00659217.crit"
SAMPLES = ROOT / "patient_samples"
BORDERS = ("┃", "│", "┓", "┐", "┩", "┤", "┛", "┘", "┫")


def _render(width: int, draw) -> list[str]:
    console = Console(file=io.StringIO(), width=width, record=True, emoji=False, highlight=False)
    draw(console)
    return console.export_text().splitlines()


def _assert_fits(lines: list[str], width: int) -> None:
    assert lines
    for line in lines:
        assert len(line) <= width, line
        assert "…" not in line, line
        if line[:1] in ("┏", "┃", "┡", "│", "└", "├"):  # a table row: its right border is there (not cropped)
            assert line.rstrip().endswith(BORDERS), line


def _joined(lines: list[str]) -> str:
    """The text printed, without spaces, with each table column read top to bottom (so that text
    wrapped inside a column reads whole), columns one after the other."""
    plain, columns = [], {}
    for line in lines:
        if line.startswith("│") or line.startswith("┃"):
            for index, cell in enumerate(line.replace("┃", "│").split("│")):
                columns.setdefault(index, []).append(cell)
        elif line[:1] not in ("┏", "┡", "└", "├", "┗"):
            plain.append(line)
    parts = plain + ["".join(cells) for _, cells in sorted(columns.items())]
    return "".join("".join(parts).split())


@pytest.fixture(scope="module")
def screened():
    trial = compile_trial(CRIT)
    names = ["p04_ineligible_alt_95_over_2x_uln.json", "p15_undetermined_no_observations_no_birth_date.json",
             "p17_undetermined_partial_dates_born_1965.json"]
    return trial, [trial.screen(load_patient(SAMPLES / n), AS_OF) for n in names]


@pytest.mark.parametrize("width", [60, 80, 200])
@pytest.mark.parametrize("wide", [False, True])
def test_check_table_fits_the_width_and_cuts_nothing(screened, width, wide):
    trial, results = screened
    lines = _render(width, lambda c: print_results(c, trial, results, wide=wide))
    _assert_fits(lines, width)
    text = _joined(lines)
    for result in results:
        for criterion in result.criteria:
            if criterion.missing:  # the whole reason is there, wrapped, in the compact table too
                from screening.reports.worklist import criterion_reason

                reason = "missing: " + ", ".join(criterion.missing) if wide else criterion_reason(criterion.to_dict())
                assert "".join(reason.split()) in text
            if wide:
                assert "".join(criterion.text.split()) in text  # the registry text, whole


@pytest.mark.parametrize("width", [60, 80, 200])
def test_check_names_the_patient_by_label(screened, width):
    trial, results = screened
    lines = _render(width, lambda c: print_results(c, trial, results[1:2]))
    assert "".join("Patient p15 (p15_undetermined_no_observations_no_birth_date.json)".split()) in _joined(lines)


@pytest.mark.parametrize("width", [60, 80, 200])
def test_explain_and_analytes_fit_and_cut_nothing(screened, width):
    trial, results = screened
    lines = _render(width, lambda c: print_explanation(c, trial, results[2]))
    _assert_fits(lines, width)
    assert "ask:" in "\n".join(lines)
    lines = _render(width, lambda c: print_analytes(c, catalogue().analytes))
    _assert_fits(lines, width)
    words = {w.strip(",") for line in lines for w in line.replace("│", " ").replace("┃", " ").split()}
    for analyte in catalogue().analytes:  # every name to type is on one line, whole
        assert analyte.name in words
        assert set(analyte.aliases) <= words


def test_analytes_is_a_table_on_a_wide_terminal():
    lines = _render(200, lambda c: print_analytes(c, catalogue().analytes))
    assert lines[0].startswith("┏") and "aliases" in lines[1]


def _write(path, document):
    path.write_text(json.dumps(document) if not isinstance(document, str) else document, encoding="utf-8")
    return path


def test_check_screens_good_files_reports_each_bad_one_and_exits_2(tmp_path):
    good = SAMPLES / "p06_undetermined_alt_elevated_cause_not_assessed.json"
    broken = _write(tmp_path / "broken.json", '{"id": "x",\n  "sex": "female",\n  "birth_date": 19800101\n')
    invalid = _write(tmp_path / "invalid.json", {"id": "y", "sex": "woman"})
    proc = run("check", CRIT, good, broken, invalid, SAMPLES / "p01_eligible_female_si_units.json",
               "--as-of", "2026-11-25", "--terminology", "none", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    # the good files are screened and printed
    assert "Patient p06 (p06_undetermined_alt_elevated_cause_not_assessed.json)" in proc.stdout
    assert "Patient p01 (p01_eligible_female_si_units.json)" in proc.stdout
    # each bad file with its error: a position for the syntax error, the JSON path for the invalid value
    assert f"{broken}: line 4 column 1: not valid JSON" in proc.stderr, proc.stderr
    assert f"{invalid}: $.sex:" in proc.stderr, proc.stderr
    assert "2 of 4 patient files could not be read; the others were screened" in proc.stderr
    # JSON: an array of the good results, errors on stderr, exit 2
    proc = run("check", CRIT, good, invalid, "--as-of", "2026-11-25", "--format", "json", "--terminology", "none",
               cwd=tmp_path)
    assert proc.returncode == 2
    payload = json.loads(proc.stdout)
    assert [r["patient"] for r in payload] == ["p06"]
    assert f"{invalid}: $.sex:" in proc.stderr


def test_check_one_good_file_is_unchanged_and_a_bad_rule_file_still_stops_at_once(tmp_path):
    good = SAMPLES / "p06_undetermined_alt_elevated_cause_not_assessed.json"
    proc = run("check", CRIT, good, "--as-of", "2026-11-25", "--format", "json", "--terminology", "none", cwd=tmp_path)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["patient"] == "p06"  # one file: one object, as before
    rules = _write(tmp_path / "bad.crit", 'trial "T"\ninclusion I1 "x" = age >= \n')
    proc = run("check", rules, good, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert f"{rules}:2:26: unexpected end of file" in proc.stderr, proc.stderr


@pytest.mark.parametrize("width", [60, 80, 200])
def test_worklist_table_fits_the_width_and_cuts_nothing(width):
    from screening.reports import worklist as wl

    trial = compile_trial(CRIT)
    rows = wl.build(trial.screen(load_patient(path), AS_OF).to_dict() for path in sorted(SAMPLES.glob("p*.json")))
    lines = _render(width, lambda c: wl.print_text(c, rows))
    _assert_fits(lines, width)
    text = _joined(lines)
    for row in rows:
        assert "".join(row.display.split()) in text
        for item in row.obtain + row.reviews:
            assert "".join(item.question.split()) in text


def test_check_names_a_fhir_patient_by_name_and_mrn_not_uuid(tmp_path):
    uuid = "8f14e45f-ceea-467f-a0e6-5c1a3e6b1b7d"
    bundle = named_fhir_bundle(uuid)
    path = _write(tmp_path / "bundle.json", bundle)
    proc = run("check", CRIT, path, "--as-of", "2026-11-25", "--terminology", "none", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Patient Doe, Jane — MRN 12345 (bundle.json)  trial NCT00659217" in proc.stdout
    assert uuid not in proc.stdout
    proc = run("check", CRIT, path, "--as-of", "2026-11-25", "--terminology", "none", "--wide", cwd=tmp_path)
    assert f"record id {uuid}" in proc.stdout  # the id is one --wide away


def test_compact_reason_asks_a_fact_as_its_question_and_names_a_shared_sentence_once():
    """The check table's reason is read by a person: a fact is its question, not its identifier, and
    'conditions (not provided)' (three condition tests in E4) is written once."""
    from screening.reports.worklist import criterion_reason

    trial = compile_trial(CRIT)
    p06 = trial.screen(load_patient(SAMPLES / "p06_undetermined_alt_elevated_cause_not_assessed.json"), AS_OF)
    p16 = trial.screen(load_patient(SAMPLES / "p16_undetermined_conditions_not_provided.json"), AS_OF)
    e6 = next(c for c in p06.criteria if c.id == "E6")
    e4 = next(c for c in p16.criteria if c.id == "E4")
    assert criterion_reason(e6.to_dict()) == "missing: Is the transaminase rise due to active lupus? (investigator)"
    assert criterion_reason(e4.to_dict()) == "missing: conditions (not provided)"
    text = _joined(_render(80, lambda c: print_results(c, trial, [p06])))
    assert "missing:Isthetransaminaseriseduetoactivelupus?(investigator)" in text
