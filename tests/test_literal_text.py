"""Issue 7: text from rule files and patients is printed literally. Rich markup, emoji codes and
control characters in registry text or patient data cannot restyle, hide or spoof a report, and
summary.csv cells cannot run as spreadsheet formulas."""
import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from screening import SourceError, compile_text
from screening import batch
from screening.batch import csv_cell

from cli_helpers import run

TEXTS = ["[/]", "[see appendix b]", "[bold red]ELIGIBLE[/]", ":warning:"]
RULES = ('trial "T-[/]"\n'
         'inclusion I1 "Consent [see appendix b] :warning:" = review "ask [/] about [bold red]ELIGIBLE[/]"\n'
         'exclusion E1 "Registry [/] text" = fact f\n')


@pytest.fixture
def files(tmp_path):
    rules = tmp_path / "markup.crit"
    rules.write_text(RULES)
    person = tmp_path / "p.json"
    person.write_text(json.dumps({"id": "[bold]P-1[/bold]", "facts": {"f": True}}))
    return rules, person


def test_check_prints_registry_text_literally(tmp_path, files):
    rules, person = files
    proc = run("check", rules, person, "--as-of", "2026-11-25", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for text in ["[bold]P-1[/bold] (p.json)", "T-[/]", "review: ask [/] about [bold red]ELIGIBLE[/]"]:
        assert text in proc.stdout, proc.stdout
    # the registry text is in the --wide table
    proc = run("check", rules, person, "--as-of", "2026-11-25", "--wide", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for text in ["Registry [/] text", "Consent [see appendix b] :warning:", "[bold]P-1[/bold]", "T-[/]"]:
        assert text in proc.stdout, proc.stdout
    assert "⚠" not in proc.stdout


def test_explain_prints_registry_text_and_reasons_literally(tmp_path, files):
    rules, person = files
    proc = run("explain", rules, person, "--as-of", "2026-11-25", "--all", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "registry: Consent [see appendix b] :warning:" in proc.stdout
    assert "review:   ask [/] about [bold red]ELIGIBLE[/]" in proc.stdout
    assert "registry: Registry [/] text" in proc.stdout


def test_lint_prints_the_trial_id_literally(tmp_path, files):
    rules, _ = files
    proc = run("lint", rules, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"ok: {rules}: trial T-[/], 2 criteria"


def test_test_command_prints_failures_literally(tmp_path, files):
    rules, person = files
    (tmp_path / "markup.cases.yaml").write_text(
        "trial: markup.crit\nas_of: 2026-11-25\ncases:\n"
        "  - name: '[bold red]spoof[/]'\n    patient: p.json\n    decision: eligible\n")
    proc = run("test", tmp_path, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "[bold red]spoof[/]" in proc.stdout


def test_a_rule_file_cannot_carry_terminal_escapes_or_direction_overrides():
    for char, code in (("\x1b", "U+001B"), ("\u202e", "U+202E"), ("\x00", "U+0000")):
        with pytest.raises(SourceError) as caught:
            compile_text(f'trial "T"\ninclusion I1 "a{char}[31mred" = age >= 18\n', "esc.crit")
        diagnostic = caught.value.first
        assert diagnostic.message == f"control character {code} is not allowed in a rule file"
        assert (diagnostic.span.line, diagnostic.span.column) == (2, 16)
        assert char not in diagnostic.render()  # the excerpt shows it as U+FFFD


def test_patient_text_with_control_characters_is_escaped_in_reports():
    from screening import patient_from_document
    from screening.render import print_explanation, print_results

    trial = compile_text(RULES, "markup.crit")
    person = patient_from_document({"id": "P\x1b[2J", "facts": {"f": True}}, "p.json")
    result = trial.screen(person, date(2026, 11, 25))
    console = Console(file=io.StringIO(), width=200, emoji=False)
    print_results(console, trial, [result])
    print_explanation(console, trial, result, show_all=True)
    printed = console.file.getvalue()
    assert "\x1b" not in printed
    assert "P\\x1b[2J" in printed


@pytest.mark.parametrize("cell, expected", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("p01.json", "p01.json"), ("eligible", "eligible"), ("2026-11-25", "2026-11-25"), ("", ""),
])
def test_csv_cells_that_would_run_as_formulas_get_a_leading_quote(cell, expected):
    assert csv_cell(cell) == expected


def test_summary_csv_neutralises_formula_cells_from_rule_files_and_patients(tmp_path):
    rules = tmp_path / "a.crit"
    rules.write_text('trial "=1+1"\ninclusion I1 "adult" = age >= 18\n')
    other = tmp_path / "b.crit"
    other.write_text('trial "B"\ninclusion I1 "adult" = age >= 18\n')
    patients = tmp_path / "p.ndjson"
    patients.write_text(json.dumps({"id": "@cmd|' /C calc'!A0", "birth_date": "1980-01-01"}) + "\n")
    out = tmp_path / "out"
    code = batch.run_batch_command([rules, other], patients, out, date(2026, 11, 25), workers=1,
                                   out=Console(file=io.StringIO()), err=Console(file=io.StringIO()))
    assert code == 0
    with (out / "summary.csv").open(newline="", encoding="utf-8") as stream:
        header, *rows = list(csv.reader(stream))
    assert "'=1+1:I1" in header
    assert rows[0][1] == "'@cmd|' /C calc'!A0"
    assert rows[0][2] == "'@cmd|' /C calc'!A0 (p.ndjson:1)"  # the label
    assert rows[0][3] == "'=1+1"
    assert json.loads((out / "results.jsonl").read_text().splitlines()[0])["patient"] == "@cmd|' /C calc'!A0"
