"""Issue 7, compile side: compilation is linear in the rule text, and rule sets beyond the
documented limits (docs/limits.md) are refused with a position, never a traceback or a hang."""
from datetime import date

import pytest

from screening import SourceError, compile_text
from screening.limits import MAX_DEPTH
from screening.render import print_explanation

from cli_helpers import assert_clean_failure, run
from helpers import patient


def else_if_chain(depth: int) -> str:
    expr = "fact done"
    for i in range(depth):
        expr = f"if age >= {i} then fact f{i} else {expr}"
    return f'trial "T"\ninclusion I1 "chain" = {expr}\n'


def nested(depth: int) -> str:
    """and/or alternating, ``depth`` levels of nesting in all (the innermost atom is level ``depth``)."""
    expr = "fact a"
    for i in range(depth - 1):
        expr = f"(fact b{i} {'and' if i % 2 else 'or'} {expr})"
    return f'trial "T"\ninclusion I1 "nested" = {expr}\n'


def define_chain(n: int) -> str:
    lines = ['trial "T"\n', "define d0 = fact a0\n"]
    lines += [f"define d{i} = d{i - 1} or fact a{i}\n" for i in range(1, n)]
    return "".join(lines) + f'inclusion I1 "chain" = d{n - 1}\n'


def error_of(text: str) -> SourceError:
    with pytest.raises(SourceError) as caught:
        compile_text(text, "limits.crit")
    return caught.value


# ---------------------------------------------------------------- linear code generation
def test_an_else_if_chain_generates_code_linear_in_its_length():
    small = compile_text(else_if_chain(16), "a.crit").generated_source.count("\n")
    double = compile_text(else_if_chain(32), "b.crit").generated_source.count("\n")
    assert double < 2.1 * small  # lines of code; was exponential: each level emitted both branches twice


def test_an_else_if_chain_at_the_nesting_limit_decides_like_the_interpreter():
    trial = compile_text(else_if_chain(MAX_DEPTH - 1), "chain.crit")
    adult = patient(birth_date="1990-06-01", facts={"f36": True, "f35": False})
    result = trial.screen(adult, date(2026, 11, 25))  # age 36: the first true condition is age >= 36
    assert result.criteria[0].value is True
    assert trial.values(adult, date(2026, 11, 25)) == ((True, True),)
    no_birth = patient(facts={f"f{i}": True for i in range(MAX_DEPTH)} | {"done": True})
    assert trial.values(no_birth, date(2026, 11, 25)) == ((True, True),)  # every branch true: true
    assert trial.screen(no_birth, date(2026, 11, 25)).criteria[0].value is True


def test_a_name_used_many_times_is_generated_once():
    body = "define base = ALT <= 2 x ULN or AST <= 2 x ULN\n"
    body += "".join(f"define n{i} = n{i - 1} and n{i - 1}\n" if i else "define n0 = base and base\n" for i in range(20))
    trial = compile_text('trial "T"\n' + body + 'inclusion I1 "x" = n19\n', "names.crit")
    assert trial.generated_source.count("def D") == 21  # was 2**20 copies of `base`
    assert trial.values(patient(), date(2026, 11, 25)) == ((True, None),)


def test_thousands_of_alternatives_compile_and_screen():
    text = 'trial "T"\ninclusion I1 "many" = ' + " or ".join(f"fact a{i}" for i in range(5000)) + "\n"
    trial = compile_text(text, "many.crit")  # 490 used to hit the recursion limit
    one = patient(facts={"a4999": True})
    assert trial.values(one, date(2026, 11, 25)) == ((True, True),)
    assert trial.screen(one, date(2026, 11, 25)).criteria[0].verdict == "pass"
    none_true = patient(facts={f"a{i}": False for i in range(5000)})
    assert trial.screen(none_true, date(2026, 11, 25)).criteria[0].verdict == "fail"


# ---------------------------------------------------------------- nesting depth
def test_nesting_at_the_limit_compiles_screens_and_explains():
    from rich.console import Console

    trial = compile_text(nested(MAX_DEPTH), "deep.crit")
    result = trial.screen(patient(facts={"a": True}), date(2026, 11, 25))
    assert result.criteria[0].verdict in ("pass", "unknown")
    result.to_dict()
    console = Console(record=True, width=200)
    print_explanation(console, trial, result, show_all=True)
    assert "nested" in console.export_text()


def test_nesting_beyond_the_limit_is_refused_at_the_first_too_deep_level():
    error = error_of(nested(MAX_DEPTH + 1))
    diagnostic = error.first
    assert diagnostic.code == "limit"
    assert diagnostic.message == f"expression nested more than {MAX_DEPTH} levels deep"
    assert diagnostic.span.line == 2
    # 99 levels (the example) too: a message, not Python's IndentationError
    assert error_of(nested(99)).first.message == diagnostic.message


def test_definition_chains_count_towards_the_nesting_limit():
    compile_text(define_chain(MAX_DEPTH // 2), "ok.crit")  # each link is two levels: a name and an `or`
    error = error_of(define_chain(99))
    assert len(error.diagnostics) == 1  # the first definition over the limit, not every one after it
    diagnostic = error.first
    link = MAX_DEPTH // 2
    assert diagnostic.message.startswith(f"definition d{link} nests {MAX_DEPTH + 1} levels deep through `d{link - 1}`")
    assert (diagnostic.span.line, diagnostic.span.column) == (link + 2, 14)


def test_value_set_include_chains_are_limited_and_diamonds_do_not_blow_up():
    def chain(n, twice=False):
        lines = ['trial "T"\n', "valueset v0 = ICD10:C50\n"]
        lines += [f"valueset v{i} = v{i - 1}{', v' + str(i - 1) if twice else ''}, ICD10:C{i % 90 + 10}\n"
                  for i in range(1, n)]
        return "".join(lines) + f'exclusion E1 "x" = condition v{n - 1}\n'

    trial = compile_text(chain(MAX_DEPTH, twice=True), "diamond.crit")  # 2**63 paths, one set of codes
    assert trial.screen(patient(conditions=[{"code": "ICD10:C50.9"}]), date(2026, 11, 25)).criteria[0].verdict == "fail"
    error = error_of(chain(200))
    assert [d.message for d in error.diagnostics] == [
        f"value set v{MAX_DEPTH} includes value sets more than {MAX_DEPTH} levels deep"]


def test_the_cli_refuses_deep_nesting_with_exit_2(tmp_path):
    rules = tmp_path / "deep.crit"
    rules.write_text(define_chain(99))
    proc = run("lint", rules, cwd=tmp_path)
    assert_clean_failure(proc, f"{rules}:{MAX_DEPTH // 2 + 2}:14", f"definition d{MAX_DEPTH // 2} nests")


# ---------------------------------------------------------------- size and count
def test_a_file_over_the_size_limit_is_refused_with_the_position_of_the_limit(monkeypatch):
    import screening.parser as parser

    monkeypatch.setattr(parser, "MAX_SOURCE_CHARS", 40)
    error = error_of('trial "T"\ninclusion I1 "x" = age >= 18 and age <= 60\n')
    assert error.first.code == "limit"
    assert error.first.message == "the rule file is larger than 40 characters; split it into several rule sets"
    assert (error.first.span.line, error.first.span.column) == (2, 31)  # the 41st character


def test_more_criteria_than_the_limit_are_refused_at_the_first_one_over(monkeypatch):
    import screening.parser as parser

    monkeypatch.setattr(parser, "MAX_CRITERIA", 3)
    text = 'trial "T"\n' + "".join(f'inclusion I{i} "x" = age >= 18\n' for i in range(5))
    error = error_of(text)
    assert error.first.message == "more than 3 criteria in one rule set; split it into several rule sets"
    assert error.first.span.line == 5  # I3, the fourth


# ---------------------------------------------------------------- numbers
def test_a_threshold_that_overflows_is_a_compile_error():
    huge = "9" * 400
    error = error_of(f'trial "T"\ninclusion I1 "x" = creatinine <= {huge} mg/dL\n')
    assert error.first.message == "the number 99999999999999999999... is too large"
    assert (error.first.span.line, error.first.span.column) == (2, 34)
    error = error_of(f'trial "T"\ninclusion I1 "x" = fact ecog <= -{huge}\n')
    assert error.first.message.endswith("is too large")


def test_scientific_notation_is_not_a_number():
    error = error_of('trial "T"\ninclusion I1 "x" = creatinine <= 1e999 mg/dL\n')
    assert error.first.code in ("syntax", "unknown-unit")
    assert error.first.span.line == 2


def test_a_whole_number_with_too_many_digits_is_refused():
    error = error_of('trial "T"\ninclusion I1 "x" = ALT <= 2 x ULN within ' + "1" * 5000 + " days\n")
    assert error.first.message.startswith("the whole number 1111")
    assert error.first.message.endswith("is too large (at most 9 digits)")


# ---------------------------------------------------------------- windows and dates at the edge
@pytest.mark.parametrize("window, message", [
    ("3000 years", "a time window may be at most 200 years"),
    ("2401 months", "a time window may be at most 200 years (2,400 months)"),
    ("100000 days", "a time window may be at most 200 years (73,048 days)"),
])
def test_windows_longer_than_200_years_are_compile_errors(window, message):
    error = error_of(f'trial "T"\ninclusion I1 "x" = ALT <= 2 x ULN within {window}\n')
    assert error.first.message == message
    assert (error.first.span.line, error.first.span.column) == (2, 42)


def test_the_lab_window_setting_is_limited_too():
    error = error_of('trial "T"\nlab window 300 years\ninclusion I1 "x" = ALT <= 2 x ULN\n')
    assert error.first.message == "a time window may be at most 200 years"
    assert error.first.span.line == 2


def test_a_200_year_window_on_an_early_as_of_date_is_clamped(tmp_path):
    rules = tmp_path / "edge.crit"
    rules.write_text('trial "T"\n'
                     'inclusion I1 "x" = any ALT <= 100 U/L within 200 years\n'
                     'inclusion I2 "y" = condition ICD10:C50 within 2400 months\n'
                     'inclusion I3 "z" = AST <= 100 U/L within 73048 days\n')
    (tmp_path / "p.json").write_text('{"id": "p", "observations": [{"code": "LOINC:1742-6", "value": 10, '
                                     '"unit": "U/L", "date": "0001-01-10"}], "conditions": []}')
    for command in ("check", "explain"):
        proc = run(command, rules, tmp_path / "p.json", "--as-of", "0001-01-15", "--format", "json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert '"decision": "ineligible"' in proc.stdout and "Traceback" not in proc.stderr
    trial = compile_text(rules.read_text(), "edge.crit")
    result = trial.screen(patient(observations=[{"code": "LOINC:1742-6", "value": 10, "unit": "U/L",
                                                 "date": "0001-01-10"}], conditions=[]), date(1, 1, 15))
    assert [c.verdict for c in result.criteria] == ["pass", "fail", "unknown"]


# ---------------------------------------------------------------- fractional ages
def test_a_fractional_age_in_years_means_years_and_months_in_both_engines():
    trial = compile_text('trial "T"\ninclusion I1 "x" = age >= 17.5\n'
                         'inclusion I2 "y" = age between 0.5 and 1.25 years\n', "age.crit")
    as_of = date(2026, 11, 25)
    cases = {
        "2009-05-25": (True, False),   # 17 years 6 months exactly
        "2009-05-26": (False, False),  # one day short of 17 years 6 months
        "2009-06-01": (False, False),
        "2025-11-25": (False, True),   # 12 months: inside 6 to 15 months
        "2025-08-25": (False, True),   # 15 months
        "2025-08-24": (False, False),  # 15 months and a day: over 1.25 years (15 months) by a day
    }
    for birth, expected in cases.items():
        person = patient(birth_date=birth)
        values = tuple(value for _, value in trial.values(person, as_of))
        explained = tuple(c.value for c in trial.screen(person, as_of).criteria)
        assert values == explained, birth
        assert values[0] == expected[0], birth


@pytest.mark.parametrize("rule, message, hint", [
    ("age >= 17.3", "an age in years must be whole or a whole number of months (such as 17.5 = 17 years 6 months)",
     "17.3 years is 207.6 months"),
    ("age < 6.5 months", "an age in months must be a whole number", None),
    ("age <= 300", "an age may be at most 200 years (2,400 months)", None),
])
def test_other_fractional_or_impossible_ages_are_compile_errors(rule, message, hint):
    error = error_of(f'trial "T"\ninclusion I1 "x" = {rule}\n')
    assert error.first.message == message
    assert (error.first.span.line, error.first.span.column) == (2, 20)
    if hint:
        assert error.first.hint.startswith(hint)


# ---------------------------------------------------------------- no lark exceptions through the API
def test_the_api_raises_only_screening_errors_on_hostile_rule_text():
    for text in [else_if_chain(200), nested(500), define_chain(1000), "trial \"T\"\n" + "(" * 5000,
                 'trial "T"\ninclusion I1 "x" = ' + " or ".join(["not"] * 3000 + ["fact a"])]:
        with pytest.raises(SourceError):
            compile_text(text, "hostile.crit")


def test_many_unknown_names_are_all_reported_but_only_the_first_get_suggestions():
    text = 'trial "T"\n' + "".join(f"define name_{i} = age >= 18\n" for i in range(2000))
    text += "".join(f'inclusion I{i} "x" = nme_{i}\n' for i in range(2000))
    error = error_of(text)
    assert len(error.diagnostics) == 2000
    assert error.diagnostics[0].message == "unknown name `nme_0`"
    assert error.diagnostics[0].hint.startswith("did you mean `name_0`")
    assert error.diagnostics[-1].hint is None  # each suggestion compares with every name: 50 at most
