"""`screening test`: find case files, run them, report; --update, --coverage, --junit-xml.

Exit status: 0 when every selected case passes, 1 when any fails, 2 for bad input (raised as a
:class:`~screening.errors.ScreeningError`, which the CLI prints with file:line:column).
The last line of the report is always ``N passed, M failed``.
"""
from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text

from ..errors import ScreeningError, UsageError
from ..limits import printable
from .casefile import CaseFile, Loader, discover, rewrite
from .coverage import Coverage
from .junit import write_junit
from .runner import CaseResult, failure_text, run_case, selection

HAND_WRITTEN = ("missing", "explanation")


def run_test_command(paths, select: str | None = None, update: bool = False, coverage: bool = False,
                     junit_xml: Path | None = None, out: Console | None = None, err: Console | None = None,
                     terminology=None) -> int:
    """Run the case files under ``paths``; returns the exit status (0 all pass, 1 some fail)."""
    out = out or Console(highlight=False, emoji=False)
    err = err or Console(stderr=True, highlight=False, emoji=False)
    files = discover(paths)
    loader = Loader(terminology)
    suites = loader.load_all(files, allow_empty=update)
    chosen = selection(select)
    every = [case for suite in suites for case in suite.cases]
    selected = [case for case in every if chosen(case.name)]
    if not selected:
        files = f"{len(suites)} case file{'s' if len(suites) != 1 else ''}"
        raise UsageError(f"no case matches -k {select!r} ({len(every)} cases in {files})")
    _warn(selected, err)
    results = [run_case(case) for case in selected]
    tally = Coverage() if coverage else None
    if tally is not None:
        for result in results:
            tally.add(result.case, result.result)

    if update:
        results = _update(suites, results, out, terminology)
    else:
        _report(suites, results, out)
    if tally is not None:
        tally.print(out)
    if junit_xml is not None:
        write_junit(results, junit_xml)
        out.print(f"wrote JUnit XML report to {junit_xml}", markup=False, soft_wrap=True)
    failed = sum(1 for r in results if not r.passed)
    deselected = len(every) - len(selected)
    if deselected:
        out.print(f"{deselected} case{'s' if deselected != 1 else ''} deselected by -k {select!r}", markup=False)
    out.print(f"{len(results) - failed} passed, {failed} failed", markup=False,
              style="bold red" if failed else "bold green")
    return 1 if failed else 0


def _warn(cases, err: Console) -> None:
    seen: set[int] = set()
    for case in cases:
        if id(case.patient) in seen:
            continue
        seen.add(id(case.patient))
        for warning in case.patient.warnings:
            err.print(f"warning: {case.location}: patient {case.patient_label}: {warning}", markup=False,
                      soft_wrap=True)


def _report(suites: list[CaseFile], results: list[CaseResult], out: Console) -> None:
    by_file: dict[int, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(id(result.case.file), []).append(result)
    for suite in suites:
        items = by_file.get(id(suite))
        if not items:
            continue
        failed = sum(1 for r in items if not r.passed)
        mark = Text("FAIL ", style="bold red") if failed else Text("PASS ", style="bold green")
        counts = (f"{len(items) - failed} passed, {failed} failed" if failed
                  else f"{len(items)} case{'s' if len(items) != 1 else ''}")
        out.print(mark + Text(printable(f"{suite.display} ({counts})")), soft_wrap=True)
    failures = [r for r in results if not r.passed]
    for result in failures:
        out.print()
        out.print(Text("FAIL ", style="bold red") + Text(printable(failure_text(result))), soft_wrap=True)
    if failures:
        out.print()


def _update(suites: list[CaseFile], results: list[CaseResult], out: Console, terminology=None) -> list[CaseResult]:
    """Write the current decisions and verdicts into the case files; return the results as they stand after."""
    by_file: dict[int, list[CaseResult]] = {}
    for result in results:
        by_file.setdefault(id(result.case.file), []).append(result)
    changed_files = 0
    for suite in suites:
        items = by_file.get(id(suite))
        if not items:
            continue
        text, changes = rewrite(suite, [r.recorded() for r in items])
        if text == suite.source.text:
            continue
        _write_checked(suite, text, [r.case.name for r in items], terminology)
        changed_files += 1
        out.print(Text("updated ", style="bold yellow") + Text(suite.display), soft_wrap=True)
        by_case: dict[str, list[str]] = {}
        for change in changes:
            by_case.setdefault(f"{change.case.name} (line {change.case.span.line})", []).append(change.what)
        for name, whats in by_case.items():
            out.print(f"  {name}: " + "; ".join(whats), markup=False, soft_wrap=True)
    if not changed_files:
        out.print("nothing to update: every recorded decision and verdict still holds", markup=False)
    after = []
    for result in results:
        left = [m for m in result.mismatches if m.kind in HAND_WRITTEN]
        after.append(CaseResult(result.case, result.result, left, result.seconds))
    still = [r for r in after if not r.passed]
    if still:
        out.print()
        out.print(f"--update records decisions and verdicts only; {len(still)} case"
                  f"{'s' if len(still) != 1 else ''} still fail on hand-written `missing` or `explanation` "
                  "expectations: edit them by hand", style="bold yellow", soft_wrap=True)
        for result in still:
            out.print()
            out.print(Text("FAIL ", style="bold red") + Text(printable(failure_text(result))), soft_wrap=True)
        out.print()
    return after


def _write_checked(suite: CaseFile, text: str, names: list[str], terminology=None) -> None:
    """Write the updated file, then read it back and re-run its updated cases; restore it if that fails."""
    original = suite.source.text
    suite.path.write_text(text, encoding="utf-8")
    try:
        reread = Loader(terminology).load(suite.path, allow_empty=True)
        wanted = set(names)
        bad = [r for r in (run_case(c) for c in reread.cases if c.name in wanted)
               if any(m.kind not in HAND_WRITTEN for m in r.mismatches)]
        if bad:
            raise UsageError(f"{suite.display}: --update could not record {', '.join(r.case.name for r in bad)}; "
                             "the file was left unchanged")
    except ScreeningError:
        suite.path.write_text(original, encoding="utf-8")
        raise
