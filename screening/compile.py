"""Compile a rule set: parse, check, and generate the fast evaluation function.

:func:`compile_trial` is the entry point. The result, a :class:`Trial`, screens patients in
two ways that share one meaning:

* :meth:`Trial.screen` with ``explain=True`` runs the explaining interpreter
  (:mod:`screening.evaluate`) and returns verdicts with evidence;
* :meth:`Trial.values` (and ``screen(explain=False)``) runs a Python function generated from the
  checked rules: Kleene logic written out as straight-line code with short-circuits, calling
  the same atom functions as the interpreter.

The generated code contains only names made by this module (``v12``, ``N3``, ``F3``); every
value that came from the rule file (codes, thresholds, strings) is an object bound in the
function's namespace, never text in the source. A rule file can therefore never run code.
"""
from __future__ import annotations

import gc
from datetime import date
from pathlib import Path

from . import ir
from .derived import DERIVATIONS
from .dates import NEVER
from .errors import UsageError
from .evaluate import ATOMS, Context, Interpreter, count_values, entry_name, lab_compare
from .report import CriterionResult, PatientResult, criterion_result, decide_patient, patient_label


class _CodeWriter:
    """Emits the fast function for a list of criteria."""

    def __init__(self, ranges: ir.RangeTable):
        # latest-lab and fact tests are inlined (speed) up to INLINE_ATOMS of them; past that (a
        # machine-generated rule set) they are calls of the atom functions, about ten times less
        # code for Python to compile, with the same meaning
        self.inline_left = INLINE_ATOMS
        self.lines: list[str] = []
        self.namespace: dict[str, object] = {"count_values": count_values, "_UNSET": object()}
        self.counter = 0
        self.defines: dict[str, int] = {}  # define name -> its memo slot M[k] and its function D{k}
        self.functions: list[str] = []  # generated helper functions (defines, chunks of criteria)
        self.ranges = ranges
        self.windows: dict[ir.Duration, int] = {}  # window i starts at S[i]; S is computed once per as-of date

    def fresh(self, prefix: str = "v") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def bind(self, value: object, prefix: str) -> str:
        name = self.fresh(prefix)
        self.namespace[name] = value
        return name

    def emit(self, line: str, depth: int) -> None:
        self.lines.append("    " * depth + line)

    def node(self, node: ir.Node, depth: int) -> str:
        """Emit statements computing ``node``; return the variable holding its value."""
        if self.inline_left > 0:
            if isinstance(node, ir.LabCompare) and node.selector == "latest" and node.key not in DERIVATIONS:
                # (a derivable analyte goes through lab_compare: measured or derived, screening.derived)
                self.inline_left -= 1
                return self._latest_lab(node, depth)
            if isinstance(node, ir.FactTest) and node.mode in ("true", "compare"):
                self.inline_left -= 1
                return self._fact(node, depth)
        atom = ATOMS.get(type(node))
        if atom is not None:
            fn, arg, var = self.bind(atom, "F"), self.bind(node, "N"), self.fresh()
            self.emit(f"{var} = {fn}({arg}, P, C)[0]", depth)
            return var
        return getattr(self, "_" + type(node).__name__)(node, depth)

    # ---- inlined atoms: the same meaning as evaluate.lab_compare / fact_test, without calls
    def _window_start(self, window: ir.Duration | None) -> str:
        if window is None:
            return "NEVER"
        index = self.windows.setdefault(window, len(self.windows))
        return f"S[{index}]"

    def _limit(self, node: ir.LabCompare, bound: ir.Bound, var: str, depth: int) -> None:
        """Emit ``var = <the bound for observation o>`` (None when a limit of normal is missing)."""
        if bound.kind == "value":
            self.emit(f"{var} = {self.bind(bound.value, 'T')}", depth)
            return
        by_sex = {}
        for sex in (None, "female", "male", "other", "unknown"):
            found = self.ranges.lookup(node.key, sex)
            limit = None if found is None else (found[1] if bound.kind == "ULN" else found[0])
            by_sex[sex] = limit
        fallback = self.bind(by_sex, "R")
        attribute = "ref_high" if bound.kind == "ULN" else "ref_low"
        multiplier = self.bind(bound.value, "M")
        self.emit(f"{var} = o.{attribute}", depth)
        self.emit(f"if {var} is None: {var} = {fallback}.get(SEX)", depth)
        self.emit(f"if {var} is not None: {var} = {var} * {multiplier}", depth)

    def _same_unit(self, bound: ir.Bound, x: str, t: str, depth: int) -> None:
        if bound.kind != "value":
            kind, multiplier = self.bind(bound.kind, "L"), self.bind(bound.value, "M")
            self.emit(f"if o.raw_ref is not None and o.raw_ref[{kind}] is not None and {t} is not None: "
                      f"{x}, {t} = o.raw_value, o.raw_ref[{kind}] * {multiplier}", depth)
        elif bound.source is not None:
            source, raw = self.bind(bound.source, "U"), self.bind(bound.raw, "W")
            self.emit(f"if o.to_canonical == {source}: {x}, {t} = o.raw_value, {raw}", depth)

    _OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "==", "!=": "!="}

    def _latest_lab(self, node: ir.LabCompare, depth: int) -> str:
        var, key, start = self.fresh(), self.bind(node.key, "K"), self._window_start(node.window)
        series = self.fresh("s")
        self.emit(f"{var} = None", depth)
        self.emit(f"{series} = LABS.get({key}) if LABS is not None else None", depth)
        self.emit(f"if {series} and {series}.overlaps:", depth)
        fn, arg = self.bind(lab_compare, "F"), self.bind(node, "N")
        self.emit(f"{var} = {fn}({arg}, P, C)[0]  # partial dates overlap: the careful path", depth + 1)
        self.emit(f"elif {series}:", depth)
        self.emit(f"for o in {series}:", depth + 1)
        body = depth + 2
        self.emit("lo = o.lo", body)
        self.emit("if lo is not None and lo > END: continue  # after the as-of date", body)
        self.emit(f"if lo is None or o.hi < {start} or lo < {start} or o.hi > END: break", body)
        self.emit("if o.comparator is not None:  # an interval ('> 1.5'): the careful path", body)
        self.emit(f"{var} = {fn}({arg}, P, C)[0]", body + 1)
        self.emit("break", body + 1)
        self.emit("x = o.value", body)
        dimension_test = f" and o.dimension == {self.bind(node.dimension, 'D')}" if node.dimension else ""
        self.emit(f"if x is not None{dimension_test}:", body)
        self._limit(node, node.bound, "t", body + 1)
        # same meaning as evaluate.operands: a threshold and a value written in one unit compare in it
        if node.op == "between":
            self._limit(node, node.upper, "u", body + 1)
            self.emit("xu = x", body + 1)
            self._same_unit(node.bound, "x", "t", body + 1)
            self._same_unit(node.upper, "xu", "u", body + 1)
            self.emit(f"if t is not None and u is not None: {var} = t <= x and xu <= u", body + 1)
        else:
            self._same_unit(node.bound, "x", "t", body + 1)
            self.emit(f"if t is not None: {var} = x {self._OPS[node.op]} t", body + 1)
        self.emit("break", body)
        return var

    def _fact(self, node: ir.FactTest, depth: int) -> str:
        var, name = self.fresh(), self.bind(node.name, "K")
        self.emit(f"x = FACTS.get({name}) if FACTS is not None else None", depth)
        if node.mode == "true":
            self.emit(f"{var} = x if (x is True or x is False) else None", depth)
        else:
            value = self.bind(node.value, "T")
            self.emit(f"{var} = None if (x is None or x is True or x is False or not isinstance(x, (int, float))) "
                      f"else x {self._OPS[node.op]} {value}", depth)
        return var

    def _Const(self, node: ir.Const, depth: int) -> str:
        var = self.fresh()
        self.emit(f"{var} = {bool(node.value)!r}", depth)
        return var

    def _Define(self, node: ir.Define, depth: int) -> str:
        # each definition is its own function, generated once and called at most once per patient
        # (memo slot M[k]): code size stays linear however often and however deeply names are used
        slot = self.defines.get(node.name)
        if slot is None:
            slot = self.defines[node.name] = len(self.defines)
            outer, self.lines = self.lines, []
            inner = self.node(node.body, 1)
            self.functions.append("\n".join(
                [f"def D{slot}(P, C, S, M):  # define {_comment(node.name)}", *_PROLOGUE]
                + self.lines + [f"    return {inner}"]))
            self.lines = outer
        var = self.fresh()
        self.emit(f"{var} = M[{slot}]", depth)
        self.emit(f"if {var} is _UNSET: {var} = M[{slot}] = D{slot}(P, C, S, M)", depth)
        return var

    def _Not(self, node: ir.Not, depth: int) -> str:
        inner = self.node(node.operand, depth)
        var = self.fresh()
        self.emit(f"{var} = None if {inner} is None else not {inner}", depth)
        return var

    def _junction(self, operands, depth: int, stop: bool) -> str:
        # and: stop at False; or: stop at True
        if len(operands) > JUNCTION_GROUP:
            # thousands of alternatives: groups of operands become helper functions, so that no
            # generated function grows without bound (the Kleene junction of the groups' values
            # is the junction of all operands, with the same short-circuit order)
            operands = [self._group(operands[i:i + JUNCTION_GROUP], stop)
                        for i in range(0, len(operands), JUNCTION_GROUP)]
        var = self.fresh()
        self.emit(f"{var} = {not stop!r}", depth)
        for operand in operands:
            self.emit(f"if {var} is not {stop!r}:", depth)
            inner = operand(depth + 1) if callable(operand) else self.node(operand, depth + 1)
            self.emit(f"if {inner} is {stop!r}: {var} = {stop!r}", depth + 1)
            self.emit(f"elif {inner} is None: {var} = None", depth + 1)
        return var

    def _group(self, operands, stop: bool):
        """A deferred emitter: a helper function for a group of junction operands, and its call."""
        def emit_call(depth: int) -> str:
            name = self.fresh("G")
            outer, self.lines = self.lines, []
            inner = self._junction(operands, 1, stop)
            self.functions.append("\n".join([f"def {name}(P, C, S, M):", *_PROLOGUE] + self.lines
                                             + [f"    return {inner}"]))
            self.lines = outer
            var = self.fresh()
            self.emit(f"{var} = {name}(P, C, S, M)", depth)
            return var
        return emit_call

    def _And(self, node: ir.And, depth: int) -> str:
        return self._junction(node.operands, depth, False)

    def _Or(self, node: ir.Or, depth: int) -> str:
        return self._junction(node.operands, depth, True)

    def _Known(self, node: ir.Known, depth: int) -> str:
        inner = self.node(node.operand, depth)
        var = self.fresh()
        self.emit(f"{var} = {inner} is not None", depth)
        return var

    def _IfThenElse(self, node: ir.IfThenElse, depth: int) -> str:
        # each branch is generated once: `then` runs unless the condition is false, `otherwise`
        # unless it is true; an unknown condition gives the branches' common value, if any
        var, then, other = self.fresh(), self.fresh(), self.fresh()
        cond = self.node(node.condition, depth)
        self.emit(f"{then} = {other} = None", depth)
        self.emit(f"if {cond} is not False:", depth)
        value = self.node(node.then, depth + 1)
        self.emit(f"{then} = {value}", depth + 1)
        self.emit(f"if {cond} is not True:", depth)
        value = self.node(node.otherwise, depth + 1)
        self.emit(f"{other} = {value}", depth + 1)
        self.emit(f"{var} = {then} if {cond} is True else {other} if {cond} is False else "
                  f"({then} if ({then} is not None and {then} == {other}) else None)", depth)
        return var

    def _CountOf(self, node: ir.CountOf, depth: int) -> str:
        values = [self.node(operand, depth) for operand in node.operands]
        var = self.fresh()
        mode = self.bind(node.mode, "K")
        self.emit(f"{var} = count_values({mode}, {int(node.count)}, ({', '.join(values)},))", depth)
        return var

    def function(self, criteria: list[ir.Criterion]):
        chunks: list[tuple[list[str], list[str]]] = []  # (lines, results) per group of criteria
        lines, results = [], []
        self.lines = lines
        for criterion in criteria:
            applies = "True"
            if criterion.applies is not None:
                applies = self.node(criterion.applies, 1)
            value = self.node(criterion.condition, 1)
            results.append(f"({applies}, {value})")
            if len(self.lines) >= CHUNK_LINES:  # a huge rule set: several functions of bounded size
                chunks.append((self.lines, results))
                self.lines, results = [], []
        if results or not chunks:
            chunks.append((self.lines, results))
        memo = [f"    M = [_UNSET] * {len(self.defines)}"] if self.defines else ["    M = None"]
        if len(chunks) == 1:
            body, results = chunks[0]
            main = ["def screen_values(P, C, S):", *_PROLOGUE, *memo, *body, f"    return ({', '.join(results)},)"]
        else:
            for index, (body, results) in enumerate(chunks):
                self.functions.append("\n".join([f"def Q{index}(P, C, S, M):", *_PROLOGUE, *body,
                                                 f"    return ({', '.join(results)},)"]))
            main = ["def screen_values(P, C, S):", *memo,
                    "    return " + " + ".join(f"Q{i}(P, C, S, M)" for i in range(len(chunks)))]
        source = "\n\n".join(self.functions + ["\n".join(main)])
        code = compile(source, "<screening rules>", "exec")
        self.namespace["NEVER"] = NEVER
        exec(code, self.namespace)  # noqa: S102 - source built only from generated identifiers
        return self.namespace["screen_values"], source


JUNCTION_GROUP = 64  # operands of one and/or per generated function
INLINE_ATOMS = 2000  # lab and fact tests inlined per rule set; the rest are calls
CHUNK_LINES = 4000  # generated lines per function before the next criteria go into another one
_PROLOGUE = ("    LABS = P.labs", "    FACTS = P.facts", "    SEX = P.sex", "    END = C.as_of")


def _comment(name: str) -> str:
    """A define's name in a generated comment: names are [A-Za-z_][A-Za-z0-9_]* by the grammar."""
    return name if name.isidentifier() and name.isascii() else "?"


class Trial:
    """A compiled rule set. Compile once, screen many patients.

    >>> trial = compile_trial(Path("trials/NCT00659217.crit"))   # doctest: +SKIP
    >>> result = trial.screen(load_patient("patient_samples/p01_eligible_female_si_units.json"), as_of=date(2026, 11, 25))  # doctest: +SKIP
    >>> result.decision  # doctest: +SKIP
    'eligible'
    """

    def __init__(self, checked: ir.CheckedRuleSet):
        self.checked = checked
        self.id = checked.trial_id
        self.title = checked.title
        self.criteria = checked.criteria
        self.source_name = checked.source_name
        self.warnings = checked.warnings  # lint warnings (Diagnostics with positions)
        self.terminology = checked.terminology  # [{"source", "version", "effective"}] or None (no store)
        writer = _CodeWriter(checked.ranges)
        self._values, self.generated_source = writer.function(checked.criteria)
        self._windows = tuple(writer.windows)  # in index order (dicts keep insertion order)
        self._contexts: dict[date, tuple[Context, tuple[int, ...]]] = {}
        self._kinds: dict[str, tuple[str, ...]] | None = None

    def _context(self, as_of: date) -> tuple[Context, tuple[int, ...]]:
        found = self._contexts.get(as_of)
        if found is None:
            if len(self._contexts) >= 64:  # a service screens at any date a request names: stay bounded
                self._contexts.clear()
            ctx = Context(as_of, self.checked.ranges)
            found = self._contexts[as_of] = (ctx, tuple(ctx.window_start(w) for w in self._windows))
        return found

    def context(self, as_of: date) -> Context:
        """The evaluation context of one as-of date (window starts computed once)."""
        return self._context(as_of)[0]

    def values(self, patient, as_of: date) -> tuple:
        """The fast path: ``((applies, value), ...)`` per criterion, no explanations."""
        ctx, starts = self._context(as_of)
        return self._values(patient, ctx, starts)

    def screen(self, patient, as_of: date | None = None, explain: bool = True) -> PatientResult:
        """Screen one patient: a verdict for every criterion and the trial decision.

        With ``explain=False`` passing and failing criteria carry no explanation (the fast path);
        criteria left unknown are still explained, with what is missing.
        """
        as_of = as_of or date.today()
        ctx = self.context(as_of)
        results: list[CriterionResult] = []
        if explain:
            interpreter = Interpreter(patient, ctx)
            for criterion in self.criteria:
                applies = interpreter.run(criterion.applies) if criterion.applies is not None else None
                outcome = interpreter.run(criterion.condition)
                results.append(criterion_result(criterion, outcome, applies, patient, ctx))
            self._not_considered(patient, results)
        else:
            # fast values; criteria left open are explained anyway, so that missing data and
            # review reasons are never lost (and "review" is told apart from "unknown")
            interpreter = None
            for criterion, (applies, value) in zip(self.criteria, self.values(patient, as_of)):
                if value is None or applies is None:
                    interpreter = interpreter or Interpreter(patient, ctx)
                    applies = interpreter.run(criterion.applies) if criterion.applies is not None else None
                    value = interpreter.run(criterion.condition)
                results.append(criterion_result(criterion, value, applies, patient, ctx))
        decision, reason = decide_patient(results, patient, ctx.as_of)
        return PatientResult(
            trial=self.id, title=self.title, patient=patient.id, source=patient.source, as_of=as_of,
            decision=decision, criteria=results, warnings=list(patient.warnings), decision_reason=reason,
            terminology=self.terminology, label=patient_label(patient),
        )

    def _not_considered(self, patient, results: list[CriterionResult]) -> None:
        """For each criterion on conditions, medications or procedures: the patient's records of those
        kinds that no value set (or code) of the rule set recognises, so a coordinator sees what the
        rules did not look at."""
        kinds_of = self._record_kinds()
        unrecognised: dict[str, list[str]] = {}
        for criterion, result in zip(self.criteria, results):
            names = []
            for kind in kinds_of[criterion.id]:
                if kind not in unrecognised:
                    unrecognised[kind] = [
                        entry_name(_NOUN[kind], entry, True).split(" ", 1)[1] for entry in getattr(patient, kind) or ()
                        if entry.codes and entry.unreadable is None
                        and all(m.classify(entry.codes)[0] is False for m in self.checked.matchers)]
                names.extend(unrecognised[kind])
            result.not_considered = list(dict.fromkeys(names))

    def _record_kinds(self) -> dict[str, tuple[str, ...]]:
        """Criterion id -> the record lists (conditions, medications, procedures) its rule tests."""
        if self._kinds is None:
            self._kinds = {}
            for criterion in self.criteria:
                found, stack, seen = [], [criterion.condition] + ([criterion.applies] if criterion.applies else []), set()
                while stack:
                    node = stack.pop()
                    if id(node) in seen:
                        continue
                    seen.add(id(node))
                    if isinstance(node, ir.RecordTest):
                        if node.kind in _NOUN and node.kind not in found:
                            found.append(node.kind)
                        continue
                    # the record tests inside an atom (a count, an anchored window, a daily dose total)
                    stack.extend(getattr(node, name) for name in ("test", "anchor")
                                 if isinstance(getattr(node, name, None), ir.RecordTest))
                    stack.extend(ir.children(node))
                self._kinds[criterion.id] = tuple(k for k in _NOUN if k in found)
        return self._kinds

    def screen_many(self, patients, as_of: date | None = None, explain: bool = True) -> list[PatientResult]:
        return [self.screen(p, as_of, explain) for p in patients]


_NOUN = {"conditions": "condition", "medications": "medication", "procedures": "procedure"}


def compile_text(text: str, name: str = "<rules>", terminology=None, base_dir=None, *,
                 use_cache: bool = False) -> Trial:
    """Compile rule-set text. Raises :class:`~screening.errors.SourceError` with every problem.

    ``terminology``: an open :class:`~screening.terminology.TerminologyStore` to expand value-set
    members against (``<<SNOMED:x``, RxNorm ingredients, ATC classes), or None: members that need
    it leave the records they could match unknown. ``base_dir``: where ``file "..."`` value sets
    are read from (default: the folder of ``name``). ``use_cache``: take the checked rule set from
    the per-user cache when nothing it depends on has changed, and store it there after a compile
    (:mod:`screening.ircache`; off when the cache is off).
    """
    # Compiling allocates many small objects and frees none: the cyclic garbage collector would
    # scan them over and over (more than half the time of a large rule set), so it waits.
    enabled = gc.isenabled()
    gc.disable()
    try:
        if not use_cache:
            from .check import check
            from .parser import parse

            return Trial(check(parse(text, name), terminology, base_dir))
        from .ircache import checked_rule_set  # check(parse(...)), or the same IR from the per-user cache

        return Trial(checked_rule_set(text, name, terminology, base_dir))
    finally:
        if enabled:
            gc.enable()


def read_rule_file(path: str | Path) -> bytes:
    """The bytes of a rule file, checked to be UTF-8 text; a missing or unreadable file is a UsageError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such rule file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read rule file: {exc}") from None
    return raw


def compile_trial(path: str | Path, terminology=None, *, use_cache: bool = True) -> Trial:
    """Compile a rule-set file (``terminology``: a TerminologyStore, or None; see :func:`compile_text`).

    The checked rule set is kept in the per-user cache (docs/caching.md) unless ``use_cache`` is
    False or the cache is off (``SCREENING_CACHE=off``).
    """
    return compile_text(read_rule_file(path).decode("utf-8"), str(path), terminology, use_cache=use_cache)
