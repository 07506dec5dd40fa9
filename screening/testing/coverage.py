"""Clause coverage: which outcomes the cases have produced, per criterion and per sub-condition.

For every case the rule set is evaluated once more by a recording subclass of the explaining
interpreter (:class:`~screening.evaluate.Interpreter`), which notes the value of every node it
evaluates. Short-circuits mean some nodes are not evaluated for some patients; "not evaluated"
is not an outcome. Nothing in the engine changes for this.

What a node *can* produce is worked out from the rules alone (:class:`Possible`): an atom can be
true, false or unknown (missing data); ``review`` only unknown; ``known(...)`` never unknown;
constants one value; and ``if known(X) then X else ...`` knows that X is known in its
then-branch and unknown in its else-branch. The analysis treats different atoms as
independent, so a gap it reports may be impossible when two atoms are tied together (the
report says so; the documentation discusses it). Coverage is a report: it never changes the
exit status.

A threshold (a lab comparison, an age test, a numeric fact comparison) is flagged unless some
case put it on each side: for ``ALT > 2 x ULN`` a case above and one at or below; for
``between`` a case below, one within and one above.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import ir
from ..evaluate import ATOMS, Interpreter
from .casefile import display_name, verdict_label

# a state is (value, missing, review): value True/False/None; the flags say whether an unknown
# value rests on missing data and/or on review questions (review only -> verdict `review`)
TRUE, FALSE = (True, False, False), (False, False, False)
MISSING, REVIEW = (None, True, False), (None, False, True)
ATOM_STATES = frozenset({TRUE, FALSE, MISSING})
VALUES = (True, False, None)
VALUE_WORDS = {True: "true", False: "false", None: "unknown"}
VERDICT_COLUMNS = ("pass", "n/a", "fail", "unknown", "review")
DECISION_WORDS = ("eligible", "ineligible", "undetermined")
SIDE_WORDS = {
    ">": ("above", "at or below"), ">=": ("at or above", "below"),
    "<": ("below", "at or above"), "<=": ("at or below", "above"),
    "=": ("equal", "not equal"), "!=": ("not equal", "equal"),
}
ARROW = " › "


def _key(node: ir.Node) -> tuple[str, str]:
    return type(node).__name__, " ".join(node.source_text.split())


def _unknown(*states) -> tuple:
    return (None, any(s[1] for s in states), any(s[2] for s in states))


def _verdict(kind: str, state: tuple) -> str:
    value, missing, review = state
    if value is None:
        return "review" if review and not missing else "unknown"
    return "pass" if (value if kind == "inclusion" else not value) else "fail"


class Possible:
    """Which values each node of a rule set can take, from the rules alone."""

    def __init__(self):
        self.values: dict[int, set] = {}
        self._defines: dict[int, frozenset] = {}

    def states(self, node: ir.Node, assume: frozenset = frozenset()) -> frozenset:
        found = self._states(node, assume)
        for key, knowledge in assume:
            if key == _key(node):
                found = frozenset(s for s in found if (s[0] is not None) == (knowledge == "known"))
        self.values.setdefault(id(node), set()).update(s[0] for s in found)
        return found

    def _states(self, node: ir.Node, assume: frozenset) -> frozenset:
        if isinstance(node, ir.Review):
            return frozenset({REVIEW})
        if isinstance(node, ir.Const):
            return frozenset({TRUE if node.value else FALSE})
        if type(node) in ATOMS:  # every atom of the language, so a new one is never missed here
            return ATOM_STATES
        if isinstance(node, ir.Define):
            if id(node) not in self._defines:
                self._defines[id(node)] = frozenset()  # a cycle cannot pass the checker; guard anyway
                self._defines[id(node)] = self.states(node.body)
            return self._defines[id(node)]
        if isinstance(node, ir.Not):
            inner = self.states(node.operand, assume)
            return frozenset(s if s[0] is None else (not s[0], False, False) for s in inner)
        if isinstance(node, ir.Known):
            inner = self.states(node.operand, assume)
            out = set()
            if any(s[0] is not None for s in inner):
                out.add(TRUE)
            if any(s[0] is None for s in inner):
                out.add(FALSE)
            return frozenset(out)
        if isinstance(node, (ir.And, ir.Or)):
            stop = isinstance(node, ir.Or)  # or: True decides; and: False decides
            acc = {TRUE if not stop else FALSE}
            for operand in node.operands:
                nxt = set()
                for a, b in product(acc, self.states(operand, assume)):
                    if a[0] is stop or b[0] is stop:
                        nxt.add(TRUE if stop else FALSE)
                    elif a[0] is None or b[0] is None:
                        nxt.add(_unknown(*(s for s in (a, b) if s[0] is None)))
                    else:
                        nxt.add(a)
                acc = nxt
            return frozenset(acc)
        if isinstance(node, ir.IfThenElse):
            condition = self.states(node.condition, assume)
            then_assume = else_assume = assume
            if isinstance(node.condition, ir.Known):
                key = _key(node.condition.operand)
                then_assume = assume | {(key, "known")}
                else_assume = assume | {(key, "unknown")}
            then = self.states(node.then, then_assume)
            otherwise = self.states(node.otherwise, else_assume)
            out = set()
            if TRUE in condition:
                out |= then
            if FALSE in condition:
                out |= otherwise
            unknown = [s for s in condition if s[0] is None]
            if unknown:  # both branches are evaluated, with nothing known about the condition
                then, otherwise = self.states(node.then, assume), self.states(node.otherwise, assume)
            for c in unknown:
                for t, o in product(then, otherwise):
                    out.add(t if (t[0] is not None and t[0] == o[0]) else _unknown(c, t, o))
            return frozenset(out)
        if isinstance(node, ir.CountOf):
            # (true count, unknown count, missing flag, review flag)
            acc = {(0, 0, False, False)}
            for operand in node.operands:
                states = self.states(operand, assume)
                acc = {(t + (s[0] is True), u + (s[0] is None), m or s[1], r or s[2])
                       for (t, u, m, r), s in product(acc, states)}
            out = set()
            for t, u, m, r in acc:
                if node.mode == "at_least":
                    out.add(TRUE if t >= node.count else FALSE if t + u < node.count else (None, m, r))
                else:
                    out.add(FALSE if t > node.count else TRUE if t + u <= node.count else (None, m, r))
            return frozenset(out)
        raise TypeError(f"coverage: unexpected node {type(node).__name__}")

    def verdicts(self, criterion: ir.Criterion) -> set[str]:
        """The verdict words (n/a for a pass because the criterion does not apply) a criterion can produce."""
        condition = self.states(criterion.condition)
        if criterion.applies is None:
            return {_verdict(criterion.kind, s) for s in condition}
        out = set()
        for a, v in product(self.states(criterion.applies), condition):
            if a[0] is False:
                out.add("n/a")
            elif a[0] is True:
                out.add(_verdict(criterion.kind, v))
            else:
                moot = (criterion.kind == "inclusion" and v[0] is True) or (criterion.kind == "exclusion" and v[0] is False)
                out.add(_verdict(criterion.kind, v if moot else _unknown(a, *([v] if v[0] is None else []))))
        return out


# ---------------------------------------------------------------- thresholds
def is_threshold(node: ir.Node) -> bool:
    return isinstance(node, (ir.LabCompare, ir.AgeTest)) or (isinstance(node, ir.FactTest) and node.mode == "compare")


def threshold_sides(node: ir.Node) -> tuple[str, ...]:
    """The sides of a threshold a suite should test, in words."""
    if node.op == "between":
        return ("below", "within", "above")
    return SIDE_WORDS[node.op]


def _sides_of(node: ir.Node, value, info) -> list[str]:
    """Which side(s) of the threshold this evaluation tested (none when it was unknown)."""
    if value is None:
        return []
    if node.op != "between":
        return [SIDE_WORDS[node.op][0 if value else 1]]
    if value is True:
        return ["within"]
    sides = []
    if isinstance(node, ir.AgeTest) and info and info[2] is not None:
        youngest, oldest = info[2]
        sides.append("below" if oldest < node.value else "above")
    elif isinstance(node, ir.LabCompare) and info:
        for obs, result, limits, _problem in info[2]:
            if result is False and limits:
                sides.append("below" if obs.value < limits[0] else "above")
    return sides


# ---------------------------------------------------------------- recording
class _Recorder(Interpreter):
    """The explaining interpreter, noting the value of every node it evaluates."""

    def __init__(self, patient, ctx, sink):
        super().__init__(patient, ctx)
        self._sink = sink

    def run(self, node: ir.Node):
        outcome = super().run(node)
        self._sink(node, outcome)
        return outcome


@dataclass
class Row:
    """One line of the sub-condition table."""

    depth: int
    node: ir.Node
    path: str  # "I2 › acr_renal › condition cellular_casts"
    label: str
    possible: set
    seen: dict  # value -> number of cases
    sides: tuple[tuple[str, ...], dict] | None = None  # (sides to test, side -> cases) for thresholds
    reference: str | None = None  # a define already shown under another criterion

    @property
    def evaluated(self) -> bool:
        return any(self.seen.values())

    def missing_values(self) -> list:
        return [v for v in VALUES if v in self.possible and not self.seen.get(v)]

    def missing_sides(self) -> list[str]:
        if self.sides is None:
            return []
        wanted, seen = self.sides
        return [s for s in wanted if not seen.get(s)]

    def gap(self) -> str | None:
        if self.reference:
            return None
        if not self.evaluated:
            return f"{self.path}: never evaluated"
        parts = []
        values = self.missing_values()
        if values:
            parts.append("never " + ", ".join(VALUE_WORDS[v] for v in values))
        sides = self.missing_sides()
        if sides:
            parts.append("threshold not tested on both sides (no case " + " or ".join(sides) + ")")
        return f"{self.path}: " + "; ".join(parts) if parts else None


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class TrialCoverage:
    """Outcomes seen for one rule set over the cases run against it."""

    def __init__(self, trial, name: str):
        self.trial = trial
        self.name = name
        self.cases = 0
        self.values: dict[int, dict] = {}
        self.sides: dict[int, dict] = {}
        self.verdicts: dict[str, dict[str, set]] = {c.id: {} for c in trial.criteria}
        self.decisions: dict[str, set] = {}
        self.possible = Possible()
        self.possible_verdicts = {c.id: self.possible.verdicts(c) for c in trial.criteria}

    def add(self, case, result) -> None:
        """Record one case: its verdicts, its decision and the value of every node evaluated."""
        self.cases += 1
        who = case.nodeid

        def sink(node, outcome):
            self.values.setdefault(id(node), {}).setdefault(outcome.value, set()).add(who)
            if is_threshold(node):
                for side in _sides_of(node, outcome.value, outcome.info):
                    self.sides.setdefault(id(node), {}).setdefault(side, set()).add(who)

        recorder = _Recorder(case.patient, self.trial.context(case.as_of), sink)
        for criterion in self.trial.criteria:  # the same order as Trial.screen, sharing the define memo
            if criterion.applies is not None:
                recorder.run(criterion.applies)
            recorder.run(criterion.condition)
        for c in result.criteria:
            self.verdicts[c.id].setdefault(verdict_label(c), set()).add(who)
        self.decisions.setdefault(result.decision, set()).add(who)

    # ------------------------------------------------------------ the tree
    def rows(self) -> list[Row]:
        rows: list[Row] = []
        shown: dict[int, str] = {}

        def visit(node: ir.Node, depth: int, path: str, owner: str) -> None:
            label = _short(node.source_text, 200)
            if isinstance(node, ir.Define):
                label = node.name + (f'  "{node.title}"' if node.title else "")
            here = f"{path}{ARROW}{_short(node.source_text if not isinstance(node, ir.Define) else node.name, 100)}"
            seen = {v: len(cases) for v, cases in self.values.get(id(node), {}).items()}
            row = Row(depth, node, here, label, self.possible.values.get(id(node), set()), seen)
            if is_threshold(node):
                row.sides = (threshold_sides(node), {s: len(c) for s, c in self.sides.get(id(node), {}).items()})
            rows.append(row)
            if isinstance(node, ir.Define):
                if id(node) in shown:
                    row.reference = shown[id(node)]
                    return
                shown[id(node)] = owner
                visit(node.body, depth + 1, f"{path}{ARROW}{node.name}", owner)
                return
            for child in ir.children(node):  # (a defined name returned above: its body is shown once)
                visit(child, depth + 1, here if isinstance(node, ir.Define) else path, owner)

        for criterion in self.trial.criteria:
            if criterion.applies is not None:
                visit(criterion.applies, 1, f"{criterion.id}{ARROW}applies if", criterion.id)
            visit(criterion.condition, 1, criterion.id, criterion.id)
        return rows

    def gaps(self) -> list[str]:
        """Every coverage gap as one line of text, criteria first."""
        out = []
        for criterion in self.trial.criteria:
            seen = self.verdicts[criterion.id]
            for word in VERDICT_COLUMNS:
                if word in self.possible_verdicts[criterion.id] and not seen.get(word):
                    shown = "n/a (does not apply)" if word == "n/a" else word
                    out.append(f"{criterion.id}: no case gives verdict {shown}")
        for word in self.possible_decisions():
            if not self.decisions.get(word):
                out.append(f"decision {word}: no case")
        out.extend(g for g in (row.gap() for row in self.rows()) if g)
        return out

    def possible_decisions(self) -> list[str]:
        possible = self.possible_verdicts.values()
        out = []
        if all("pass" in p or "n/a" in p for p in possible):
            out.append("eligible")
        if any("fail" in p for p in possible):
            out.append("ineligible")
        if any({"unknown", "review"} & p for p in possible):
            out.append("undetermined")
        return out

    def totals(self) -> dict[str, tuple[int, int]]:
        """(covered, possible) for verdicts, decisions, sub-condition outcomes and threshold sides."""
        verdicts = [(cid, w) for cid, ws in self.possible_verdicts.items() for w in ws]
        rows = [r for r in self.rows() if not r.reference]
        outcomes = [(r, v) for r in rows for v in VALUES if v in r.possible]
        sides = [(r, s) for r in rows if r.sides for s in r.sides[0]]
        return {
            "criterion verdicts": (sum(1 for cid, w in verdicts if self.verdicts[cid].get(w)), len(verdicts)),
            "decisions": (sum(1 for w in self.possible_decisions() if self.decisions.get(w)),
                          len(self.possible_decisions())),
            "sub-condition outcomes": (sum(1 for r, v in outcomes if r.seen.get(v)), len(outcomes)),
            "threshold sides": (sum(1 for r, s in sides if r.sides[1].get(s)), len(sides)),
        }


# ---------------------------------------------------------------- the collection and its report
class Coverage:
    """Coverage of every rule set the run touched, keyed by the rule set's path."""

    def __init__(self):
        self.trials: dict[str, TrialCoverage] = {}

    def add(self, case, result) -> None:
        key = str(case.file.trial_path)
        terminology = case.trial.terminology
        if case.trial is not case.file.trial:  # a case with its own `terminology`: the rules expanded another way
            from ..expand import describe_sources

            key += f" (terminology: {describe_sources(terminology)})"
        found = self.trials.get(key)
        if found is None:
            label = display_name(case.file.trial_path)
            if case.trial is not case.file.trial:
                label = key.replace(str(case.file.trial_path), label)
            found = self.trials[key] = TrialCoverage(case.trial, label)
        found.add(case, result)

    def gaps(self) -> list[str]:
        return [gap for tc in self.trials.values() for gap in tc.gaps()]

    def print(self, console: Console) -> None:
        for tc in self.trials.values():
            print_trial_coverage(console, tc)


def _cell(count: int | None, possible: bool) -> Text:
    if count:
        return Text(str(count), style="green")
    if possible:
        return Text("—", style="bold red")
    return Text("·", style="dim")


def print_trial_coverage(console: Console, tc: TrialCoverage) -> None:
    console.print()
    console.print(Text.assemble(("Coverage ", "bold"), (tc.trial.id, "bold"),
                                f"  ({tc.name}, {tc.cases} case{'s' if tc.cases != 1 else ''})"))
    console.print(Text("  numbers are cases; — possible but never produced; · cannot happen", style="dim"))

    table = Table(title="criteria: verdicts produced", title_justify="left", pad_edge=False)
    table.add_column("criterion", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for word in VERDICT_COLUMNS:
        table.add_column(word, justify="right", no_wrap=True)
    for criterion in tc.trial.criteria:
        seen, possible = tc.verdicts[criterion.id], tc.possible_verdicts[criterion.id]
        table.add_row(Text(criterion.id), Text(criterion.kind),
                      *(_cell(len(seen.get(w, ())), w in possible) for w in VERDICT_COLUMNS))
    console.print(table)
    possible = tc.possible_decisions()
    console.print(Text("decisions: ") + Text(", ").join(
        Text.assemble(f"{w} ", _cell(len(tc.decisions.get(w, ())), w in possible)) for w in DECISION_WORDS))

    table = Table(title="sub-conditions: outcomes produced", title_justify="left", pad_edge=False)
    table.add_column("rule", no_wrap=True, overflow="ellipsis", max_width=max(24, console.width - 52))
    table.add_column("true", justify="right", no_wrap=True, min_width=4)
    table.add_column("false", justify="right", no_wrap=True, min_width=5)
    table.add_column("unknown", justify="right", no_wrap=True, min_width=7)
    table.add_column("threshold / note", no_wrap=True, min_width=20)
    current = None
    for row in tc.rows():
        owner = row.path.split(ARROW)[0]
        if owner != current:
            current = owner
            table.add_row(Text(owner, style="bold"), "", "", "", "", end_section=False)
        label = Text("  " * row.depth + " ".join(row.label.split()),
                     style="cyan" if isinstance(row.node, ir.Define) else "")
        if row.reference:
            table.add_row(label, "", "", "", Text(f"shown under {row.reference}", style="dim"))
            continue
        note = Text()
        if not row.evaluated:
            note.append("never evaluated", style="bold red")
        elif row.sides is not None:
            missing = row.missing_sides()
            if missing:
                note.append("✗ no case " + " or ".join(missing), style="bold red")
            else:
                note.append("✓ " + "/".join(row.sides[0]), style="green")
        table.add_row(label, *(_cell(row.seen.get(v), v in row.possible) for v in VALUES), note)
    console.print(table)

    gaps = tc.gaps()
    totals = tc.totals()
    console.print("coverage: " + ", ".join(f"{c} of {n} {what}" for what, (c, n) in totals.items()), markup=False,
                  soft_wrap=True)
    if gaps:
        console.print(f"{len(gaps)} gap{'s' if len(gaps) != 1 else ''}:", style="bold yellow")
        for gap in gaps:
            console.print(f"  {gap}", markup=False, soft_wrap=True)
    else:
        console.print("no gaps: every possible outcome was produced", style="bold green")
