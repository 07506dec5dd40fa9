"""Issue 7: a UTF-8 byte-order mark is accepted by check, lint and test (as by batch), and CR-only
or CRLF line ends give the line and column an editor shows."""
import json

import pytest

from screening import SourceError, compile_text

from cli_helpers import assert_clean_failure, run

BOM = "\ufeff"
GOOD = ['trial "T"', 'inclusion I1 "adult" = age >= 18', 'exclusion E1 "pregnant" = fact pregnant']
BAD = ['trial "T"', 'inclusion I1 "adult" =', '    age >= 18 annd fact consent']  # error on line 3, column 15


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"id": "p", "birth_date": "1980-01-01", "facts": {"pregnant": False}}))
    return tmp_path


def write(path, lines, newline="\n", bom=False):
    path.write_bytes(((BOM if bom else "") + newline.join(lines) + newline).encode("utf-8"))
    return path


def cases(folder, rules_name):
    return write(folder / "t.cases.yaml", [f"trial: {rules_name}", "as_of: 2026-11-25", "cases:",
                                          "  - name: adult", "    patient: p.json", "    decision: eligible"],
                 newline="\r\n", bom=True)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_check_lint_and_test_accept_a_byte_order_mark(folder, newline):
    rules = write(folder / "t.crit", GOOD, newline, bom=True)
    proc = run("lint", rules, cwd=folder)
    assert (proc.returncode, proc.stdout.strip()) == (0, f"ok: {rules}: trial T, 2 criteria"), proc.stderr
    proc = run("check", rules, folder / "p.json", "--as-of", "2026-11-25", "--format", "json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["decision"] == "eligible"
    cases(folder, "t.crit")
    proc = run("test", folder, cwd=folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 0 failed" in proc.stdout


@pytest.mark.parametrize("newline", ["\r", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
def test_errors_point_at_the_line_and_column_an_editor_shows(folder, newline, bom):
    rules = write(folder / "bad.crit", BAD, newline, bom)
    for args in (("lint", rules), ("check", rules, folder / "p.json", "--as-of", "2026-11-25")):
        proc = run(*args, cwd=folder)
        assert_clean_failure(proc, f"{rules}:3:15", "unexpected 'annd'")
        assert "    age >= 18 annd fact consent\n" in proc.stderr  # the source line, without a CR
    cases(folder, "bad.crit")
    proc = run("test", folder, cwd=folder)
    assert_clean_failure(proc, f"{rules}:3:15", "unexpected 'annd'")


def test_the_api_strips_a_byte_order_mark_and_counts_cr_lines():
    trial = compile_text(BOM + "\r".join(GOOD), "api.crit")
    assert trial.id == "T"
    with pytest.raises(SourceError) as caught:
        compile_text(BOM + "\r".join(BAD), "api.crit")
    span = caught.value.first.span
    assert (span.line, span.column) == (3, 15)
    # a check error (not a syntax error) after CR-only lines
    with pytest.raises(SourceError) as caught:
        compile_text('trial "T"\r\rinclusion I1 "x" = platelets >= 100 furlongs\r', "api.crit")
    span = caught.value.first.span
    assert (span.line, span.column) == (3, 33)
