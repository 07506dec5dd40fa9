"""Every syntax error of a rule file is reported at once, each at its own line:column; the parser
goes on at the next declaration after an error, so an error is never the echo of the one before."""
import re

import pytest

from screening import SourceError, compile_text
from screening.parser import MAX_SYNTAX_ERRORS

from cli_helpers import run

THREE = '''trial "T"
inclusion I1 "age" = age >= 18
exclusion E1 "one" = ALT > 2 x
inclusion I2 "fine" = sex is female
exclusion E2 "two" = condition (malignancy)
define d = fact f and (fact g
inclusion I3 "uses d" = d
'''


def errors(text: str) -> list:
    with pytest.raises(SourceError) as info:
        compile_text(text, "bad.crit")
    return info.value.diagnostics


def positions(text: str) -> list[tuple[int, int]]:
    return [(d.span.line, d.span.column) for d in errors(text)]


def test_three_independent_errors_are_three_diagnostics_at_their_positions():
    found = errors(THREE)
    assert [(d.span.line, d.span.column) for d in found] == [(4, 1), (5, 32), (7, 1)]
    assert all(d.code == "syntax" for d in found)
    # an unfinished rule swallows the next keyword as a name: the message says so, at the keyword
    assert "declaration before it is unfinished" in found[0].message
    assert "unexpected '('" in found[1].message


def test_errors_in_the_middle_of_lines():
    text = ('trial "T"\n'
            'inclusion I1 "a" = age >= >= 18\n'
            'inclusion I2 "b" = sex is female\n'
            'exclusion E1 "c" = ALT <= 2 x ULN within six months\n'
            'exclusion E2 "d" = fact x is "y" "z"\n')
    assert positions(text) == [(2, 27), (4, 42), (5, 34)]


def test_a_declaration_missing_its_id_is_its_own_error_not_the_one_before():
    text = 'trial "T"\ninclusion "no id" = age >= 18\ninclusion I1 "a" = ALT <=\nexclusion E1 "b" = sex is female\n'
    found = errors(text)
    assert [(d.span.line, d.span.column) for d in found] == [(2, 11), (4, 1)]
    assert "expected a name" in found[0].message


def test_an_error_in_the_header_and_in_a_criterion():
    text = 'trial T\ninclusion I1 "a" = age >= 18\nexclusion E1 "b" = age < < 3\n'
    assert positions(text) == [(1, 7), (3, 26)]


def test_unexpected_characters_are_collected_too():
    text = "trial \"T\"\ninclusion I1 'a' = age >= 18\nexclusion E1 \"b\" = ALT > 2 x ULN ;\n"
    found = errors(text)
    assert [(d.span.line, d.span.column) for d in found] == [(2, 14), (3, 34)]
    assert found[0].hint == 'text is written in double quotes "..."'


def test_a_correct_file_after_errors_still_compiles_when_fixed():
    fixed = THREE.replace("2 x\n", "2 x ULN\n").replace("(malignancy)", "malignancy").replace("(fact g", "fact g")
    with pytest.raises(SourceError) as info:  # now only a checker error remains: the unknown value set
        compile_text(fixed, "ok.crit")
    assert [d.code for d in info.value.diagnostics] == ["unknown-name"]


def test_at_most_fifty_errors_are_reported():
    text = 'trial "T"\n' + "".join(f'inclusion I{i} "x" = age >= >= {i}\n' for i in range(80))
    found = errors(text)
    assert len(found) == MAX_SYNTAX_ERRORS
    assert [d.span.line for d in found] == list(range(2, 2 + MAX_SYNTAX_ERRORS))


def test_errors_at_the_end_of_the_file_are_reported_once():
    text = 'trial "T"\ninclusion I1 "a" = age >= 18 and\n'
    found = errors(text)
    assert len(found) == 1 and "end of file" in found[0].message


@pytest.mark.parametrize("command", ["lint", "check"])
def test_cli_prints_every_error_and_exits_2(tmp_path, command):
    rules = tmp_path / "three.crit"
    rules.write_text(THREE, encoding="utf-8")
    args = [command, rules] + ([tmp_path / "p.json", "--as-of", "2026-11-25"] if command == "check" else [])
    (tmp_path / "p.json").write_text('{"id": "P"}', encoding="utf-8")
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    shown = re.findall(r"three\.crit:(\d+):(\d+): ", proc.stderr)
    assert shown == [("4", "1"), ("5", "32"), ("7", "1")], proc.stderr
    assert "3 problems found" in proc.stderr
