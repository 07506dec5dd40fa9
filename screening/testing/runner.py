"""Running cases: screen the patient, compare with the expectations, describe what differs.

:func:`run_case` is all the CLI, the pytest plugin and the JUnit writer share: it screens one
case with the explaining interpreter and returns a :class:`CaseResult` whose mismatches
:func:`failure_text` turns into the message every front end prints.
"""
from __future__ import annotations

import fnmatch
import re
import time
from dataclasses import dataclass, field

from ..report import PatientResult, truth
from .casefile import Case, Recorded, describe_verdict, verdict_label, verdict_matches

MARK = {True: "✓", False: "✗", None: "?"}


@dataclass
class Mismatch:
    """One expectation that does not hold."""

    criterion: str | None  # None: the trial decision
    kind: str  # decision | verdict | missing | explanation
    expected: str
    actual: str
    line: int  # where the expectation is written in the case file

    def short(self) -> str:
        """One line, e.g. ``E6: expected fail, got pass`` (the JUnit failure message is made of these)."""
        if self.kind == "decision":
            return f"decision: expected {self.expected}, got {self.actual}"
        if self.kind == "verdict":
            return f"{self.criterion}: expected {self.expected}, got {self.actual}"
        if self.kind == "missing":
            return f"{self.criterion} missing: expected {self.expected!r}, got {self.actual!r}"
        return f"{self.criterion} explanation: does not contain {self.expected!r}"


@dataclass(eq=False)
class CaseResult:
    case: Case
    result: PatientResult
    mismatches: list[Mismatch] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def summary(self) -> str:
        """One line: every mismatch, short (the JUnit failure message)."""
        return "; ".join(m.short() for m in self.mismatches)

    def recorded(self) -> Recorded:
        """What --update writes for this case."""
        verdicts = {c.id: verdict_label(c) for c in self.result.criteria}
        matches = {cid: verdict_matches(e.value, self.result.criterion(cid)) for cid, e in self.case.verdicts.items()}
        return Recorded(self.case, self.result.decision, verdicts, matches)


def _norm(text: str) -> str:
    return " ".join(str(text).split()).lower()


def run_case(case: Case) -> CaseResult:
    """Screen one case's patient with explanations and compare the result with the expectations."""
    start = time.perf_counter()
    result = case.trial.screen(case.patient, case.as_of)
    mismatches: list[Mismatch] = []
    if case.decision is not None and case.decision.value != result.decision:
        mismatches.append(Mismatch(None, "decision", case.decision.value, result.decision, case.decision.span.line))
    for cid, expect in case.verdicts.items():
        actual = result.criterion(cid)
        if not verdict_matches(expect.value, actual):
            mismatches.append(Mismatch(cid, "verdict", expect.value, describe_verdict(actual), expect.span.line))
    for cid, expect in case.missing.items():
        actual = result.criterion(cid).missing
        shown = "; ".join(actual) if actual else "nothing missing"
        if not expect.value:
            if actual:
                mismatches.append(Mismatch(cid, "missing", "nothing missing", shown, expect.span.line))
            continue
        have = {_norm(item) for item in actual}
        for item in expect.value:
            if _norm(item) not in have:
                mismatches.append(Mismatch(cid, "missing", item, shown, expect.span.line))
    for cid, expect in case.explanation.items():
        actual = result.criterion(cid).explanation
        for fragment in expect.value:
            if _norm(fragment) not in _norm(actual):
                mismatches.append(Mismatch(cid, "explanation", fragment, actual, expect.span.line))
    return CaseResult(case, result, mismatches, time.perf_counter() - start)


# ---------------------------------------------------------------- failure messages
def _non_passing(result: PatientResult) -> str:
    groups: dict[str, list[str]] = {}
    for c in result.criteria:
        if c.verdict != "pass":
            groups.setdefault(c.verdict, []).append(c.id)
    return "; ".join(f"{verdict}: {', '.join(ids)}" for verdict, ids in groups.items())


def failure_text(outcome: CaseResult) -> str:
    """The full message for a failing case: where, who, and for every criterion that differs,
    expected vs actual and the evidence behind the actual result."""
    case, result = outcome.case, outcome.result
    patient = case.patient_label
    if result.patient and result.patient not in patient:
        patient += f" (id {result.patient})"
    lines = [
        f"case `{case.name}` ({case.location})",
        f"  patient: {patient}; trial {result.trial}, as of {result.as_of.isoformat()}",
    ]
    by_criterion: dict[str, list[Mismatch]] = {}
    for m in outcome.mismatches:
        if m.criterion is None:
            why = _non_passing(result)
            lines.append(f"  decision: expected {m.expected}, got {m.actual}"
                         + (f" ({why})" if why else "") + f"  [line {m.line}]")
        else:
            by_criterion.setdefault(m.criterion, []).append(m)
    for cid, mismatches in by_criterion.items():
        c = result.criterion(cid)
        lines.append(f"  {cid} ({c.kind}): {' '.join(c.text.split())}")
        for m in mismatches:
            if m.kind == "verdict":
                lines.append(f"    verdict: expected {m.expected}, got {m.actual}  [line {m.line}]")
            elif m.kind == "missing":
                lines.append(f"    missing: expected {m.expected!r}; actually missing: {m.actual}  [line {m.line}]")
            else:
                lines.append(f"    explanation: expected to contain {m.expected!r}  [line {m.line}]")
        lines.append(f"    rule: {' '.join(c.rule.split())}")
        lines.append(f"    value: {truth(c.value)}" + ("  (for an exclusion, true means excluded)"
                                                        if c.kind == "exclusion" else ""))
        if c.applicable is False:
            lines.append(f"    why: {c.explanation}")
        else:
            if c.applicable is None:
                lines.append("    whether it applies is unknown")
            if c.evidence:
                lines.append("    why:")
                for e in c.evidence:
                    lines.append(f"      {MARK[e.value]} {' '.join(e.rule.split())} is {truth(e.value)}: {e.detail}")
            elif c.explanation:
                lines.append(f"    why: {c.explanation}")
        if c.missing:
            lines.append(f"    missing: {', '.join(c.missing)}")
        if c.reviews:
            lines.append(f"    review: {'; '.join(c.reviews)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- -k selection
class _BadExpression(Exception):
    pass


def _term(word: str):
    word = word.lower()
    if any(ch in word for ch in "*?["):
        return lambda name: fnmatch.fnmatchcase(name.lower(), word)
    return lambda name: word in name.lower()


def selection(expression: str | None):
    """A predicate on case names for ``-k``.

    Like pytest: words match as case-insensitive substrings (or as glob patterns when they
    contain ``*``, ``?`` or ``[``), combined with ``and``, ``or``, ``not`` and parentheses:
    ``-k "alt and not lupus"``. Text that is not such an expression (``-k "p04 ALT"``) matches
    as one substring.
    """
    if expression is None or not expression.strip():
        return lambda name: True
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    position = 0

    def peek():
        return tokens[position] if position < len(tokens) else None

    def take():
        nonlocal position
        position += 1
        return tokens[position - 1]

    def parse_or():
        left = parse_and()
        while peek() == "or":
            take()
            right = parse_and()
            left = (lambda a, b: lambda n: a(n) or b(n))(left, right)
        return left

    def parse_and():
        left = parse_not()
        while peek() == "and":
            take()
            right = parse_not()
            left = (lambda a, b: lambda n: a(n) and b(n))(left, right)
        return left

    def parse_not():
        token = peek()
        if token is None:
            raise _BadExpression
        if token == "not":
            take()
            inner = parse_not()
            return lambda n: not inner(n)
        if token == "(":
            take()
            inner = parse_or()
            if peek() != ")":
                raise _BadExpression
            take()
            return inner
        if token in ("and", "or", ")"):
            raise _BadExpression
        return _term(take())

    try:
        predicate = parse_or()
        if position != len(tokens):
            raise _BadExpression
    except _BadExpression:
        return _term(" ".join(expression.split()))
    return predicate
