"""Issue 7: a `matches` pattern cannot hang the engine. Patterns are RE2 (linear-time matching);
patterns RE2 refuses (backreferences, lookaround) are compile errors with a position."""
from datetime import date

import pytest

from screening import SourceError, compile_text

from cli_helpers import assert_clean_failure, run
from helpers import patient

AS_OF = date(2026, 11, 25)


def rules(pattern: str) -> str:
    return f'trial "T"\nexclusion E1 "biopsy" =\n    procedure ICD10:Z00 with result matches "{pattern}"\n'


def biopsy(result: str):
    return patient(procedures=[{"code": "ICD10:Z00", "date": "2026-01-01", "result": result}])


def test_a_catastrophic_backtracking_pattern_returns_promptly():
    trial = compile_text(rules("(a+)+$"), "redos.crit")
    hostile = biopsy("a" * 70 + "!")  # minutes with a backtracking engine
    assert trial.screen(hostile, AS_OF).criteria[0].verdict == "pass"  # no match: not excluded
    assert trial.values(hostile, AS_OF) == ((True, False),)
    assert trial.screen(biopsy("a" * 70), AS_OF).criteria[0].verdict == "fail"


def test_patterns_still_match_case_insensitively_anywhere_in_the_text():
    trial = compile_text(rules("class (III|IV)"), "class.crit")
    assert trial.screen(biopsy("Lupus nephritis CLASS IV-G"), AS_OF).criteria[0].verdict == "fail"
    assert trial.screen(biopsy("class II"), AS_OF).criteria[0].verdict == "pass"


@pytest.mark.parametrize("pattern, reason", [
    (r"(a)\1", "invalid escape sequence: \\1"),
    ("(?=class)c", "invalid perl operator: (?="),
    ("(?<!no )class", "invalid perl operator: (?<!"),
    ("x{5000}", "invalid repetition size: {5000}"),
])
def test_patterns_re2_refuses_are_compile_errors_with_a_position(pattern, reason):
    with pytest.raises(SourceError) as caught:
        compile_text(rules(pattern), "refused.crit")
    diagnostic = caught.value.first
    assert diagnostic.code == "regex"
    assert diagnostic.message == f"pattern not accepted: {reason}"
    assert (diagnostic.span.line, diagnostic.span.column) == (3, 25)  # the `with` qualifier
    assert "backreferences" in diagnostic.hint and "lookaround" in diagnostic.hint


def test_lint_reports_a_refused_pattern_and_exits_2(tmp_path):
    path = tmp_path / "lookahead.crit"
    path.write_text(rules("(?!benign)class"))
    proc = run("lint", path, cwd=tmp_path)
    assert_clean_failure(proc, f"{path}:3:25", "pattern not accepted: invalid perl operator: (?!")
    assert "re2.cc" not in proc.stderr  # RE2's own logging stays quiet
