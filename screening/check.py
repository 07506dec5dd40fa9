"""Check a parsed rule set and build its checked form (:mod:`screening.ir`).

Names are resolved (with a did-you-mean for unknown ones), value sets are expanded into code
matchers, units are parsed and their dimensions compared with the analyte's, and every
threshold is converted into the analyte's canonical unit, once. Problems are collected, not
thrown at the first one: :func:`check` raises one :class:`SourceError` that lists them all.
"""
from __future__ import annotations

import difflib
import re

from . import ast, ir
from .analytes import Analyte, catalogue
from .codes import HIERARCHICAL, SYSTEMS, CodeMatcher, normalise_code, range_of
from .expand import INGREDIENT_KINDS, Expander, TerminologyError
from .errors import Diagnostic, SourceError, UnitProblem
from . import scores, vocabulary
from .vocabulary import normalise_text
from .limits import MAX_DEPTH, MAX_WINDOW, height, too_deep
from .patterns import compile_pattern
from .source import Span

MAX_AGGREGATE = 1000  # `of the latest N`: at most this many results
from .units import Conversion, parse_unit

_RECORD_LISTS = {"condition": "conditions", "medication": "medications", "procedure": "procedures",
                 "allergy": "allergies", "immunization": "immunizations"}


def _did_you_mean(name: str, candidates) -> str | None:
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"`{lowered[c]}`" for c in close) + "?"


class _Checker:
    def __init__(self, syntax: ast.RuleSetSyntax, terminology=None, base_dir=None):
        self.syntax = syntax
        self.terminology = terminology
        self.base_dir = base_dir
        self.expander = Expander(terminology)
        self.warnings: list[Diagnostic] = []
        self.used_valuesets: dict[str, set[str]] = {}  # value set -> the record nouns testing it
        self.source = syntax.source
        self.diagnostics: list[Diagnostic] = []
        self.catalogue = catalogue()
        self.valueset_syntax = {}
        self.matchers: dict[str, CodeMatcher] = {}
        self.inline_matchers: list[CodeMatcher] = []
        self.define_syntax: dict[str, ast.Define] = {}
        self.defines: dict[str, ir.Define] = {}
        self.checking: list[str] = []
        self.lines = self.source.text.split("\n")
        self.hints_left = 50
        self.index: ir.IndexDate | None = None  # `index date NAME "..."`
        self.index_used = False

    # ------------------------------------------------------------ helpers
    def did_you_mean(self, name: str, candidates) -> str | None:
        """A suggestion for an unknown name; for the first 50 only (each compares with every name)."""
        if self.hints_left <= 0:
            return None
        self.hints_left -= 1
        return _did_you_mean(name, candidates() if callable(candidates) else candidates)

    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.source, span, hint))

    def warn(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.warnings.append(Diagnostic(code, message, self.source, span, hint, "warning"))

    def text_of(self, span: Span) -> str:
        lines = self.lines
        if span.line == span.end_line:
            return lines[span.line - 1][span.column - 1:span.end_column - 1]
        parts = [lines[span.line - 1][span.column - 1:]]
        parts += lines[span.line:span.end_line - 1]
        parts.append(lines[span.end_line - 1][:span.end_column - 1])
        return " ".join(p.strip() for p in parts)

    # ------------------------------------------------------------ rule set
    def run(self) -> ir.CheckedRuleSet:
        syntax = self.syntax
        self._collect_names()
        self._fact_declarations()
        if not self._check_depths():  # before the recursive checks below: they are safe up to MAX_DEPTH
            raise SourceError(self.diagnostics)
        for vs in syntax.valuesets:
            self._matcher(vs.name, vs.span)
        ranges = self._ranges()
        if syntax.lab_window is not None:
            if syntax.lab_window.amount <= 0:
                self.error("window", "a time window must be at least 1 day long", syntax.lab_window.span)
            self._duration_limit(syntax.lab_window)
        for declaration in syntax.indexes:
            if self.index is not None:
                self.error("duplicate", "a rule set has one index date", declaration.span)
            elif declaration.name in self.define_syntax or declaration.name in self.valueset_syntax:
                self.error("duplicate", f"`{declaration.name}` is already a defined name or a value set",
                           declaration.name_span)
            elif not declaration.description.strip():
                self.error("empty", "the index date needs a description", declaration.span)
            else:
                self.index = ir.IndexDate(declaration.name, declaration.description.strip())
        for define in syntax.defines:
            self._define(define.name, define.span)
        criteria = []
        seen: dict[str, ast.Criterion] = {}
        for crit in syntax.criteria:
            if crit.id in seen:
                self.error("duplicate", f"criterion id {crit.id} is already used (line {seen[crit.id].span.line})",
                           crit.span)
                continue
            seen[crit.id] = crit
            condition = self.expr(crit.expr)
            applies = self.expr(crit.applies) if crit.applies is not None else None
            criteria.append(ir.Criterion(
                id=crit.id, kind=crit.kind, text=crit.text, condition=condition, applies=applies,
                draft=crit.draft, span=crit.span, rule_text=self.text_of(crit.expr.span),
            ))
        if not syntax.criteria:
            self.error("empty", "the rule set has no inclusion or exclusion criteria", syntax.span)
        if self.diagnostics:
            raise SourceError(self.diagnostics)
        self._usage_warnings()
        used = {name: d for name, d in self.defines.items()}
        return ir.CheckedRuleSet(
            trial_id=syntax.trial_id, title=syntax.title, criteria=criteria, defines=used, ranges=ranges,
            lab_window=ir.Duration(syntax.lab_window.amount, syntax.lab_window.unit) if syntax.lab_window else None,
            source_name=self.source.name, warnings=sorted(self.warnings, key=lambda d: (d.span.line, d.span.column)),
            matchers=[m for m in self.matchers.values() if m is not None] + self.inline_matchers,
            terminology=self.expander.sources(),
            facts=dict(self.fact_infos), index=self.index,
        )

    def _fact_declarations(self) -> None:
        """`fact NAME "description" question "..." asked of ROLE`: one declaration per fact."""
        self.fact_infos: dict[str, ir.FactInfo] = {}
        self.used_facts: set[str] = set()
        lines: dict[str, int] = {}
        for decl in self.syntax.facts:
            if decl.name in self.fact_infos:
                self.error("duplicate", f"fact {decl.name} is already declared (line {lines[decl.name]})", decl.span)
                continue
            if not decl.description.strip():
                self.error("fact", f"fact {decl.name}: the description is empty", decl.span)
            if decl.question is not None and not decl.question.strip():
                self.error("fact", f"fact {decl.name}: the question is empty", decl.span,
                           "leave `question` out to ask with the description")
            lines[decl.name] = decl.span.line
            self.fact_infos[decl.name] = ir.FactInfo(decl.name, " ".join(decl.description.split()),
                                                     " ".join(decl.question.split()) if decl.question else None,
                                                     decl.asked_of)

    def _usage_warnings(self) -> None:
        """Lint warnings that need the whole rule set: value sets never used, RxNorm products where a
        medication value set is meant as a class."""
        included = {inc for vs in self.syntax.valuesets for inc, _ in vs.includes}
        included |= {inc for vs in self.syntax.valuesets if vs.excluded for inc, _ in vs.excluded.includes}
        for vs in self.syntax.valuesets:
            if vs.name not in self.used_valuesets and vs.name not in included:
                self.warn("unused-valueset", f"value set {vs.name} is declared and never used", vs.span)
        for decl in self.syntax.facts:
            if decl.name not in self.used_facts:
                self.warn("unused-fact", f"fact {decl.name} is declared and never used", decl.span,
                          "check the spelling: a rule tests it as `fact NAME`")
        if self.index is not None and not self.index_used:
            declaration = self.syntax.indexes[0]
            self.warn("unused-index", f"index date {self.index.name} is declared and no window is anchored at it",
                      declaration.span, f"anchor a window at it, e.g. `within 14 days before {self.index.name}`")
        medication_sets = {name for name, nouns in self.used_valuesets.items() if "medication" in nouns}
        frontier = list(medication_sets)
        while frontier:  # value sets included by a medication value set are medication value sets too
            vs = self.valueset_syntax.get(frontier.pop())
            for inc, _ in (vs.includes if vs else ()):
                if inc not in medication_sets:
                    medication_sets.add(inc)
                    frontier.append(inc)
        if self.terminology is None:
            return
        for name in sorted(medication_sets):
            vs = self.valueset_syntax.get(name)
            for code in (vs.codes if vs else ()):
                if code.system != "RXNORM" or code.op == "<":
                    continue
                concept = self.expander.lookup("RXNORM", code.code)
                if concept is not None and concept.kind and concept.kind not in INGREDIENT_KINDS:
                    self.warn("rxnorm-product", f"{code.written} is an RxNorm {concept.kind} "
                              f"({concept.display or 'a drug product'}), not an ingredient: it matches that product "
                              f"only, not every product containing its ingredients", code.span,
                              "list the ingredient (term type IN) to match every product that contains it")

    def _collect_names(self) -> None:
        for vs in self.syntax.valuesets:
            if vs.name in self.valueset_syntax:
                self.error("duplicate", f"value set {vs.name} is already defined", vs.span)
            self.valueset_syntax[vs.name] = vs
        for define in self.syntax.defines:
            if define.name in self.define_syntax or define.name in self.valueset_syntax:
                self.error("duplicate", f"name {define.name} is already defined", define.span)
            elif self.catalogue.lookup(define.name):
                self.error("shadowing", f"name {define.name} is an analyte in the catalogue; choose another name",
                           define.span)
            self.define_syntax[define.name] = define

    # ------------------------------------------------------------ limits
    def _check_depths(self) -> None:
        """Nesting through defined names, and value-set include chains, within MAX_DEPTH (iteratively)."""
        define_depth: dict[str, int] = {}

        def depth_of(name: str) -> int | None:
            if name not in self.define_syntax:
                return None
            if name not in define_depth:
                uses = lambda n: [u for u in _references(self.define_syntax[n].expr) if u in self.define_syntax]
                for current in _postorder(name, uses, define_depth):  # a cycle counts as 0 here
                    define_depth[current] = height(self.define_syntax[current].expr,
                                                   lambda n: define_depth.get(n, 0) if n in self.define_syntax else None)
            return define_depth[name]

        reported = 0
        for where, expr in ([(f"definition {d.name}", d.expr) for d in self.syntax.defines]
                            + [(f"criterion {c.id}", e) for c in self.syntax.criteria for e in (c.expr, c.applies)
                               if e is not None]):
            found = too_deep(expr, 0, depth_of)
            if found is None:
                continue
            node = found[0]
            if isinstance(node, ast.Reference) and depth_of(node.name) > MAX_DEPTH:
                continue  # that definition is reported itself
            reported += 1
            if reported <= 20:
                self._depth_error(found, where)
        # value sets including value sets
        chain: dict[str, int] = {}
        includes = lambda n: [i for i, _ in self.valueset_syntax[n].includes if i in self.valueset_syntax]
        for vs in self.syntax.valuesets:
            for current in _postorder(vs.name, includes, chain):
                chain[current] = 1 + max((chain.get(i, 0) for i in includes(current)), default=0)
            if chain[vs.name] > MAX_DEPTH and all(chain.get(i, 0) <= MAX_DEPTH for i in includes(vs.name)):
                reported += 1
                self.error("limit", f"value set {vs.name} includes value sets more than {MAX_DEPTH} levels deep",
                           vs.span)

        return reported == 0

    def _depth_error(self, found, where: str) -> None:
        node, level = found
        if isinstance(node, ast.Reference):
            message = (f"{where} nests {level} levels deep through `{node.name}` (the limit is {MAX_DEPTH}, "
                       "counting the levels of the definitions a name refers to)")
        else:
            message = f"{where} is nested more than {MAX_DEPTH} levels deep"
        self.error("limit", message, node.span, "name inner parts with `define` and use them side by side, "
                   "or flatten the nesting (`a or b or c` is one level)")

    # ------------------------------------------------------------ value sets
    def _matcher(self, name: str, span: Span, stack: tuple[str, ...] = ()) -> CodeMatcher | None:
        if name in self.matchers:
            return self.matchers[name]
        vs = self.valueset_syntax.get(name)
        if vs is None:
            hint = self.did_you_mean(name, self.valueset_syntax)
            self.error("unknown-name", f"unknown value set `{name}`", span, hint)
            return None
        if name in stack:
            self.error("cycle", f"value set {name} includes itself ({' -> '.join(stack + (name,))})", span)
            return None
        files = [self._read_file(f) for f in vs.files]
        matcher = self._part(vs.display or name, vs.codes, vs.includes, [f[0] for f in files if f], stack + (name,))
        excluded_rules = [f[1] for f in files if f and f[1]]
        if vs.excluded is not None or excluded_rules:
            part = vs.excluded or ast.ValueSetPart(span=vs.span)
            more = [self._read_file(f) for f in part.files]
            excluded = self._part(
                "except " + ", ".join([c.written for c in part.codes] + [i for i, _ in part.includes]
                                      + [f'file "{f.path}"' for f in part.files] + (["the file's excludes"] if excluded_rules else [])),
                part.codes, part.includes, [f[0] for f in more if f] + excluded_rules, stack + (name,))
            matcher.excluded = excluded
        self.matchers[name] = matcher
        return matcher

    def _part(self, label: str, codes, includes, file_rules, stack) -> CodeMatcher:
        """The matcher of one side of `except`: members expanded against the store, included value sets merged."""
        exact, prefixes, ranges, undecidable, systems, expanded, parts = set(), [], [], {}, set(), set(), []
        members = [(code, code.system, code.code, code.op, code.span, True) for code in codes]
        for rules, span in file_rules:
            members.extend((None, system, value, op, span, False) for op, system, value in rules)
        for code, system, value, op, where, written in members:
            if system == "VALUESET":
                try:
                    exact |= self.expander.expand("", "VALUESET", value)
                except TerminologyError as exc:
                    undecidable.setdefault("*", f"value set {value} could not be expanded ({exc}): load it "
                                                "(screening terminology load FILE)")
                continue
            if system not in SYSTEMS:
                if written:
                    self.error("unknown-code-system", f"unknown code system {system}", where)
                else:
                    self.warn("file-system", f"the value set file lists codes of {system}, which records do not "
                              "carry under that name; they are ignored", where)
                continue
            systems.add(system)
            text = f"{system}:{value}"
            if written:
                self._member_warnings(code)
            if system in HIERARCHICAL:
                if op == "<":
                    self.error("member", f"{op}{text}: ICD-10 and ATC codes already match their descendants; write "
                               f"{text}", where)
                    continue
                bounds = range_of(system, value)
                if bounds:
                    if bounds[0] > bounds[1]:
                        self.error("bad-range", f"code range {text} runs backwards", where)
                    ranges.append((system, *bounds))
                    continue
                if "-" in value:
                    self.error("bad-range", f"{text} is not a code range: write e.g. ICD10:C00-C96", where)
                if written or op == "<<":
                    prefixes.append(normalise_code(text))
                else:
                    exact.add(normalise_code(text))  # a file lists codes exactly (an expansion)
                if system == "ATC" and (written or op == "<<"):
                    # the class's drugs are RxNorm concepts: records coded in RxNorm need the store's links
                    found, why = self.expander.try_expand("", "ATC", normalise_code(text).partition(":")[2])
                    if why:
                        undecidable.setdefault("RXNORM", why)
                    else:
                        exact |= found
                        expanded.add("RXNORM")
                continue
            if system == "RXNORM" and written and not op:
                op = "<<"  # an RxNorm code written in a rule stands for every product containing it
            if not op:
                exact.add(normalise_code(text))
                continue
            if op == "<<":
                exact.add(normalise_code(text))  # the concept itself is in, store or not
            found, why = self.expander.try_expand(op, system, value)
            if why:
                undecidable.setdefault(system, why)
            else:
                exact |= found
                expanded.add(system)
        for included, inc_span in includes:
            sub = self._matcher(included, inc_span, stack)
            if sub is None:
                continue
            if sub.excluded is not None or sub.parts:
                parts.append(sub)  # its exclusion applies to it alone
                continue
            exact |= sub.exact
            prefixes.extend(sub.prefixes)
            ranges.extend(sub.ranges)
            for system, why in sub.undecidable.items():
                undecidable.setdefault(system, why)
            systems |= {s for s in sub.covered} | set(sub.undecidable)
            expanded |= sub.expanded
        # (an included set reached along two paths is counted once: no blow-up on diamonds)
        return CodeMatcher(label, frozenset(exact), tuple(dict.fromkeys(prefixes)), tuple(dict.fromkeys(ranges)),
                           undecidable=undecidable, covered=frozenset(systems - set(undecidable)),
                           parts=tuple(parts), known=self.expander.known if expanded else None,
                           expanded=frozenset(expanded - set(undecidable)))

    def _member_warnings(self, code: ast.CodeLiteral) -> None:
        """Lint: a SNOMED code without << where records carry descendants; a member the store marks inactive."""
        concept = self.expander.lookup(code.system, code.code) if self.terminology is not None else None
        if concept is not None and concept.active is False:
            self.warn("inactive-member", f"{code.written} is inactive in the terminology store "
                      f"({concept.display or 'no display'}); records coded today will not carry it", code.span,
                      "replace it with its active successor")
        if code.system == "SNOMED" and not code.op:
            if self.terminology is None or (concept is not None and self.expander.has_descendants("SNOMED", code.code)):
                self.warn("no-descendants", f"{code.written} matches that code only, but records carry its descendants",
                          code.span, f"write <<{code.written} for the concept and all its descendants"
                          + ("" if self.terminology is not None else " (no terminology store was given to check "
                             "whether it has any)"))

    def _read_file(self, member: ast.ValueSetFile):
        """A FHIR ValueSet file beside the rule file -> ((include rules, span), (exclude rules, span) or None)."""
        import json
        from pathlib import Path

        from .terminology.errors import LoadError
        from .terminology.fhir import _resource

        base = Path(self.base_dir) if self.base_dir is not None else Path(self.source.name).parent
        path = base / member.path
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.error("valueset-file", f"value set file not found: {path}", member.span)
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.error("valueset-file", f"cannot read value set file {path}: {exc}", member.span)
            return None
        except json.JSONDecodeError as exc:
            self.error("valueset-file", f"{path}:{exc.lineno}: not JSON: {exc.msg}", member.span)
            return None
        if not isinstance(document, dict) or document.get("resourceType") != "ValueSet":
            self.error("valueset-file", f"{path}: expected a FHIR ValueSet resource", member.span)
            return None
        try:
            data = _resource(document, str(path), "$")
        except LoadError as exc:
            self.error("valueset-file", exc.render(), member.span)
            return None
        include, exclude = [], []
        for inc, op, system, code in data.valuesets[0].rules:
            if op == "*":
                self.error("valueset-file", f"{path}: a whole code system ({system}) in a value set is not supported",
                           member.span)
                continue
            if op == "valueset":
                rule = ("", "VALUESET", code)
            else:
                rule = ("" if op == "=" else op, system, code)
            (include if inc else exclude).append(rule)
        return (include, member.span), ((exclude, member.span) if exclude else None)

    # ------------------------------------------------------------ reference ranges
    def _analyte(self, ref: ast.AnalyteRef) -> tuple[Analyte | None, str | None]:
        """The catalogue analyte (or None for a bare LOINC code) and the record key; key None on error."""
        if ref.code is not None:
            system, _, code = ref.code.partition(":")
            if system not in ("LOINC", "LOCAL"):
                self.error("not-a-lab", f"labs are named by a LOINC (or LOCAL) code; {ref.code} is a {system} code",
                           ref.span)
                return None, None
            analyte = self.catalogue.for_code(ref.code)
            return analyte, analyte.name if analyte else ref.code
        analyte = self.catalogue.lookup(ref.name)
        if analyte is None:
            hint = (self.did_you_mean(ref.name, lambda: self.catalogue.names() + list(self.define_syntax))
                    or "name a catalogue analyte (see `screening analytes`) or a LOINC code")
            self.error("unknown-analyte", f"unknown analyte `{ref.name}`", ref.span, hint)
            return None, None
        return analyte, analyte.name

    def _to_canonical(self, analyte: Analyte | None, unit_text: str | None, span: Span,
                      what: str) -> tuple[Conversion, str | None] | None:
        """The conversion of a written unit into the analyte's canonical unit, and the dimension."""
        try:
            if analyte is not None:
                if analyte.unit_text is None:
                    self.error("qualitative", f"{analyte.name} is a qualitative result; compare it with "
                               f"`{analyte.name} is positive` (or another text)", span)
                    return None
                if unit_text is None:
                    if analyte.unit.is_dimensionless:
                        return Conversion(1.0), analyte.unit.dimension
                    self.error("missing-unit", f"{what} for {analyte.name} needs a unit (e.g. {analyte.unit_text})",
                               span)
                    return None
                unit = parse_unit(unit_text)
                return analyte.conversion_from(unit), analyte.unit.dimension
            unit = parse_unit(unit_text or "1")
            return Conversion(unit.scale, unit.offset), unit.dimension
        except UnitProblem as exc:
            code = "unit-mismatch" if str(exc).startswith(("incompatible", "cannot convert")) else "unknown-unit"
            self.error(code, str(exc), span, exc.hint)
            return None

    def _ranges(self) -> ir.RangeTable:
        table = ir.RangeTable()
        for entry in self.syntax.ranges:
            analyte, key = self._analyte(entry.analyte)
            if key is None:
                continue
            converted = self._to_canonical(analyte, entry.unit, entry.span, "a reference range")
            if converted is None:
                continue
            conv, _ = converted
            if entry.low > entry.high:
                self.error("bad-range", f"reference range for {key} runs backwards ({entry.low:g} to {entry.high:g})",
                           entry.span)
                continue
            if (key, entry.sex) in table.entries:
                self.error("duplicate", f"reference range for {key}{' for ' + entry.sex if entry.sex else ''} "
                           "is declared twice", entry.span)
                continue
            low_text, high_text = _range_texts(self.text_of(entry.span))
            table.entries[(key, entry.sex)] = (conv.apply_written(entry.low, low_text),
                                               conv.apply_written(entry.high, high_text))
        return table

    # ------------------------------------------------------------ defines
    def _define(self, name: str, span: Span) -> ir.Define | None:
        if name in self.defines:
            return self.defines[name]
        syntax = self.define_syntax[name]
        if name in self.checking:
            cycle = " -> ".join(self.checking[self.checking.index(name):] + [name])
            self.error("cycle", f"definition {name} refers to itself ({cycle})", span)
            return None
        self.checking.append(name)
        node = ir.Define(name=name, title=syntax.text, span=syntax.span, source_text=name)
        node.body = self.expr(syntax.expr)
        self.checking.pop()
        self.defines[name] = node
        return node

    # ------------------------------------------------------------ expressions
    def expr(self, node: ast.Expr) -> ir.Node:
        method = getattr(self, "_" + type(node).__name__)
        result = method(node)
        if not result.source_text:
            result.source_text = self.text_of(node.span)
        return result

    def _Const(self, node: ast.Const):
        return ir.Const(node.value, span=node.span)

    def _Reference(self, node: ast.Reference):
        if node.name in self.define_syntax:
            defined = self._define(node.name, node.span)
            if defined is None:
                return ir.Const(False, span=node.span)
            return defined
        if node.name in self.valueset_syntax:
            self.error("type", f"`{node.name}` is a value set, not a condition; write `condition {node.name}`, "
                       f"`medication {node.name}` or `procedure {node.name}`", node.span)
        elif self.catalogue.lookup(node.name):
            self.error("type", f"`{node.name}` is a lab; compare it, e.g. `{node.name} > 2 x ULN`", node.span)
        else:
            hint = self.did_you_mean(node.name, lambda: list(self.define_syntax) + list(self.valueset_syntax))
            self.error("unknown-name", f"unknown name `{node.name}`", node.span, hint)
        return ir.Const(False, span=node.span)

    def _And(self, node: ast.And):
        return ir.And([self.expr(x) for x in node.operands], span=node.span)

    def _Or(self, node: ast.Or):
        return ir.Or([self.expr(x) for x in node.operands], span=node.span)

    def _Not(self, node: ast.Not):
        return ir.Not(self.expr(node.operand), span=node.span)

    def _Unless(self, node: ast.Unless):
        exception = self.expr(node.exception)
        negated = ir.Not(exception, span=node.exception.span, source_text="not (" + exception.source_text + ")")
        return ir.And([self.expr(node.main), negated], span=node.span)

    def _Known(self, node: ast.Known):
        return ir.Known(self.expr(node.operand), span=node.span)

    def _IfThenElse(self, node: ast.IfThenElse):
        return ir.IfThenElse(self.expr(node.condition), self.expr(node.then), self.expr(node.otherwise),
                             span=node.span)

    def _CountOf(self, node: ast.CountOf):
        operands = [self.expr(x) for x in node.operands]
        if node.mode == "any":
            return ir.Or(operands, span=node.span)
        if node.mode == "all":
            return ir.And(operands, span=node.span)
        if node.count > len(operands):
            self.error("count", f"at {node.mode.split('_')[1]} {node.count} of {len(operands)} items can never hold"
                       if node.mode == "at_least" else f"count {node.count} exceeds the {len(operands)} items",
                       node.span)
        return ir.CountOf(node.mode, node.count, operands, span=node.span)

    def _window(self, window: ast.Window | None) -> ir.Duration | None:
        if window is None:
            return None
        if window.duration.amount <= 0:
            self.error("window", "a time window must be at least 1 day long", window.span)
        self._duration_limit(window.duration)
        return ir.Duration(window.duration.amount, window.duration.unit)

    def _duration_limit(self, duration: ast.Duration) -> None:
        most = MAX_WINDOW[duration.unit]
        if duration.amount > most:
            self.error("window", "a time window may be at most 200 years"
                       + (f" ({most:,} {duration.unit})" if duration.unit != "years" else ""), duration.span)

    def _bound(self, analyte: Analyte | None, bound: ast.Bound) -> tuple[ir.Bound, str | None] | None:
        written = self.text_of(bound.span)
        if isinstance(bound, ast.Limit):
            if bound.multiplier <= 0:
                self.error("limit", f"a multiple of the {bound.which} must be positive", bound.span)
            return ir.Bound(bound.which, bound.multiplier, written), None
        converted = self._to_canonical(analyte, bound.unit, bound.span, "a threshold")
        if converted is None:
            return None
        conv, dimension = converted
        value = conv.apply_written(bound.value, _number_text(written))
        if conv.exact:
            return ir.Bound("value", value, written), dimension
        return ir.Bound("value", value, written, float(bound.value), conv), dimension

    def _LabCompare(self, node: ast.LabCompare):
        analyte, key = self._analyte(node.analyte)
        window = self._window(node.window) or self._default_window()
        placeholder = ir.Const(False, span=node.span)
        if key is None:
            return placeholder
        first = self._bound(analyte, node.bound)
        second = self._bound(analyte, node.upper) if node.upper is not None else (None, None)
        if first is None or second is None:
            return placeholder
        bound, dim1 = first
        upper, dim2 = second
        if analyte is not None and analyte.is_score and not self._score_bounds(analyte, node, (bound, upper)):
            return placeholder
        dimension = dim1 or dim2
        if analyte is None and dim1 and dim2 and dim1 != dim2:
            self.error("unit-mismatch", f"the two bounds of `between` have different dimensions ({dim1}, {dim2})",
                       node.span)
            return placeholder
        if (node.op == "between" and bound.kind == "value" and upper.kind == "value" and bound.value > upper.value):
            self.error("bad-range", "`between` bounds run backwards: write the lower one first", node.span)
        if node.occasions is not None and node.occasions < 1:
            self.error("count", "occasions must be at least 1", node.span)
        unit = analyte.unit_text if analyte is not None else None
        return ir.LabCompare(
            key=key, label=analyte.name if analyte else key, canonical_unit=unit,
            dimension=dimension if analyte is None else (analyte.unit.dimension if analyte.unit else None),
            selector=node.selector, op=node.op, bound=bound, upper=upper, occasions=node.occasions,
            window=window, span=node.span,
        )

    def _VisitOccasions(self, node: ast.VisitOccasions):
        """`(A or B) on at least N occasions within W`: lab comparisons joined by and/or/not, decided per day."""
        placeholder = ir.Const(False, span=node.span)
        bad = _per_visit_problem(node.expr)
        if bad is not None:
            where, why = bad
            self.error("occasions", why, where.span,
                       "e.g. `(systolic_bp > 140 mmHg or diastolic_bp > 90 mmHg) on at least 3 occasions within 6 months`")
            return placeholder
        if not 1 <= node.count <= MAX_AGGREGATE:
            self.error("count", f"occasions must be between 1 and {MAX_AGGREGATE:,}", node.span)
            return placeholder
        inner = self.expr(node.expr)
        window = self._window(node.window) or self._default_window()
        keys = []

        def strip(n):  # the leaves are decided per day: their own (default) windows do not apply
            if isinstance(n, ir.LabCompare):
                n.window = None
                keys.append(n.key)
            for child in getattr(n, "operands", None) or ([n.operand] if hasattr(n, "operand") else []):
                strip(child)
        strip(inner)
        return ir.VisitOccasions(expr=inner, count=node.count, window=window, keys=tuple(dict.fromkeys(keys)),
                                 span=node.span)

    def _RecordCount(self, node: ast.RecordCount):
        """`at most 2 courses of medication chemo`: the record test is checked as usual, then counted."""
        test = self._RecordTest(node.test, total=False)
        if not isinstance(test, ir.RecordTest):
            return test
        if node.courses and test.kind != "medications":
            self.error("count", "`courses of` counts treatment courses of a medication", node.span,
                       f"count the records instead: `at least {node.count} {test.noun} ...`")
        if node.count > MAX_AGGREGATE:
            self.error("count", f"a count of records may be at most {MAX_AGGREGATE:,}", node.span)
        return ir.RecordCount(mode=node.mode, count=node.count, courses=node.courses, test=test, span=node.span)

    def _LabAggregate(self, node: ast.LabAggregate):
        """`mean QTcF of the latest 3 > 470 ms`: the comparison is checked as a lab test, then wrapped."""
        placeholder = ir.Const(False, span=node.span)
        if node.second_window is not None:
            self.error("window", "one window only: before or after the comparison", node.second_window.span)
            return placeholder
        if node.count is None and node.window is None:
            self.error("aggregate", f"say which {node.function} results: `of the latest N` or a window",
                       node.span, f"e.g. `{node.function} {self.text_of(node.analyte.span)} of the latest 3 ...` "
                       f"or `... within 1 day`")
            return placeholder
        if node.count is not None and not 1 <= node.count <= MAX_AGGREGATE:
            self.error("count", f"the latest N must be between 1 and {MAX_AGGREGATE:,}", node.span)
            return placeholder
        lab = self._LabCompare(ast.LabCompare(selector="latest", analyte=node.analyte, op=node.op, bound=node.bound,
                                              upper=node.upper, window=node.window, span=node.span))
        if not isinstance(lab, ir.LabCompare):
            return placeholder
        if any(b is not None and b.kind != "value" for b in (lab.bound, lab.upper)):
            self.error("aggregate", f"a {node.function} of several results is compared with a value, not a "
                       "multiple of a limit of normal (each result may have its own reference range)", node.span,
                       f"compare each result instead: `any ... > 3 x ULN`, `every ... <= ULN`")
            return placeholder
        return ir.LabAggregate(function=node.function, count=node.count, lab=lab, span=node.span)

    def _score_bounds(self, analyte: Analyte, node, bounds) -> bool:
        """A score is compared with points on its scale, never with limits of normal."""
        for bound in bounds:
            if bound is None:
                continue
            if bound.kind != "value":
                self.error("score", f"{analyte.name} is a score; compare it with a value on its scale "
                           f"({scores.describe(analyte)}), not with the {bound.kind}", node.span)
                return False
            if not scores.on_scale(analyte, bound.value):
                self.error("score", f"{bound.written} is not on the {analyte.display} scale "
                           f"({scores.describe(analyte)}, whole numbers)", node.span)
                return False
        return True

    def _score_text(self, analyte: Analyte, key: str, node: ast.LabText):
        """`NYHA >= III`, `any NYHA is III`, `Child_Pugh is B`, `ECOG is "grade 1"`: a comparison of points."""
        value = scores.value_of(analyte, node.value)
        if value is None:
            self.error("score", f"`{node.value}` is not on the {analyte.display} scale ({scores.describe(analyte)})",
                       node.span, f"write e.g. `{analyte.name} <= {scores.shown(analyte, analyte.scale[0] + 1)}`")
            return ir.Const(False, span=node.span)
        op = node.op if node.op != "is" else ("!=" if node.negated else "=")
        written = str(node.value)
        return ir.LabCompare(
            key=key, label=analyte.name, canonical_unit=analyte.unit_text, dimension=analyte.unit.dimension,
            selector=node.selector, op=op, bound=ir.Bound("value", value, written), upper=None, occasions=None,
            window=self._window(node.window) or self._default_window(), span=node.span,
        )

    def _default_window(self) -> ir.Duration | None:
        lw = self.syntax.lab_window
        return ir.Duration(lw.amount, lw.unit) if lw else None

    def _LabText(self, node: ast.LabText):
        analyte, key = self._analyte(node.analyte)
        if key is None:
            return ir.Const(False, span=node.span)
        if analyte is not None and analyte.is_score:
            return self._score_text(analyte, key, node)
        value = normalise_text(node.value)
        if node.op != "is" and value not in vocabulary.RANK:
            self.error("ordinal", f"`{node.value}` is not a grade on the scale {vocabulary.describe_scale()}",
                       node.span, "write e.g. `urine_protein >= 2+` or `urine_protein <= trace`")
            return ir.Const(False, span=node.span)
        if node.op != "is" and analyte is not None and analyte.unit_text is not None:
            self.error("ordinal", f"{analyte.name} is a quantity in {analyte.unit_text}; grades (1+, trace) apply to "
                       "qualitative results such as urine_protein", node.span)
            return ir.Const(False, span=node.span)
        if node.op != "is" and value == vocabulary.POSITIVE:
            self.error("ordinal", "compare with a grade (1+ .. 4+), not `positive`; or write "
                       f"`{self.text_of(node.analyte.span)} is positive`", node.span)
            return ir.Const(False, span=node.span)
        return ir.LabText(key=key, label=analyte.name if analyte else key, selector=node.selector,
                          negated=node.negated, value=value, op=node.op,
                          window=self._window(node.window) or self._default_window(), span=node.span)

    def _LabRecorded(self, node: ast.LabRecorded):
        analyte, key = self._analyte(node.analyte)
        if key is None:
            return ir.Const(False, span=node.span)
        # no default `lab window`: "on record" is at any date unless the rule says when
        return ir.LabRecorded(key=key, label=analyte.name if analyte else key, window=self._window(node.window),
                              span=node.span)

    def _AgeTest(self, node: ast.AgeTest):
        if node.op == "between" and node.upper is not None and node.value > node.upper:
            self.error("bad-range", "`age between` bounds run backwards: write the lower one first", node.span)
        if node.value < 0:
            self.error("age", "an age cannot be negative", node.span)
        bounds = [node.value] + ([node.upper] if node.upper is not None else [])
        if any(b > 200 * (12 if node.unit == "months" else 1) for b in bounds):
            self.error("age", "an age may be at most 200 years (2,400 months)", node.span)
        if all(float(b).is_integer() for b in bounds):
            return ir.AgeTest(node.op, node.value, node.upper, node.unit, span=node.span)
        # ages are whole years or whole months at the as-of date: 17.5 years is 17 years 6 months,
        # so the test becomes one in months (both engines then compare whole months)
        months = [b * 12 for b in bounds]
        if node.unit == "years" and all(abs(m - round(m)) < 1e-9 for m in months):
            low, *high = [float(round(m)) for m in months]
            return ir.AgeTest(node.op, low, high[0] if high else None, "months", span=node.span)
        if node.unit == "years":
            near = ", ".join(f"{b:g} years is {b * 12:g} months" for b in bounds if not float(b * 12).is_integer())
            self.error("age", "an age in years must be whole or a whole number of months (such as 17.5 = "
                       "17 years 6 months)", node.span, f"{near}; write the age in whole months, e.g. `age >= 207 months`")
        else:
            self.error("age", "an age in months must be a whole number", node.span)
        return ir.AgeTest(node.op, node.value, node.upper, node.unit, span=node.span)

    def _SexTest(self, node: ast.SexTest):
        return ir.SexTest(node.negated, node.sex, span=node.span)

    def _RecordTest(self, node: ast.RecordTest, total: bool = True):
        if node.code is not None:
            matcher = self._inline_matcher(node.code)
        else:
            self.used_valuesets.setdefault(node.valueset, set()).add(node.kind)
            matcher = self._matcher(node.valueset, node.span)
            if matcher is None:
                return ir.Const(False, span=node.span)
        status = node.status
        if status == "current":
            # `current X` is X active on the as-of date; with a window use `active X within N`
            if node.window is not None:
                self.error("status", f"`current` means on the screening date and takes no window; for present at "
                           f"any time during the window write `active {node.kind} ... within ...`", node.span)
            status = "active"
        if node.status == "resolved" and node.kind not in ("condition", "allergy"):
            self.error("status", f"`resolved` applies to conditions and allergies; use `inactive` for a {node.kind}",
                       node.span)
        qualifiers = []
        for q in node.qualifiers:
            if isinstance(q, ast.OtherThan):
                if q.valueset is None and q.code is None:  # a list
                    if q.texts:
                        self.error("list", "`other than` compares the record's own codes: list codes and value sets, "
                                   "not texts", q.span, "e.g. `medication her2_agents other than (ATC:L01FD01, ATC:L01FD03)`")
                        continue
                    other = self._list_matcher(q.codes, q.valuesets, q.span)
                else:
                    other = self._code_ref(q.valueset, q.code, q.span)
                if other is not None:
                    qualifiers.append(ir.OtherThan("codes", other))
                continue
            if isinstance(q, ast.CodeQualifier):
                if q.cause is not None and node.kind not in ("condition", "allergy"):
                    self.error("caused-by", f"`caused by` is said of an adverse event (a condition or an allergy "
                               f"record), not of a {node.kind}", q.span,
                               "e.g. `condition pneumonitis with grade >= 3 caused by medication anti_pd1`")
                    continue
                field_matcher = self._code_ref(q.valueset, q.code, q.span, q.cause)
                if field_matcher is not None:
                    qualifiers.append(ir.CodeQualifier(q.field_name, field_matcher, q.negated, q.cause))
                continue
            if isinstance(q, ast.ListQualifier):
                found = self._list_qualifier(q)
                if found is not None:
                    qualifiers.append(found)
                continue
            if isinstance(q, ast.DoseQualifier):
                dose = self._dose_qualifier(q, node.kind)
                if dose is not None:
                    qualifiers.append(dose)
                continue
            pattern = None
            if q.op == "matches":
                pattern, problem = compile_pattern(q.value)
                if problem:
                    self.error("regex", f"pattern not accepted: {problem}", q.span,
                               "patterns are RE2 syntax and match in linear time, so backreferences (\\1) and "
                               "lookaround ((?=...), (?!...), (?<=...)) are not supported")
                    continue
            qualifiers.append(ir.Qualifier(q.field_name, q.op, q.value, pattern))
        record = ir.RecordTest(kind=_RECORD_LISTS[node.kind], noun=node.kind, status=status, matcher=matcher,
                               qualifiers=qualifiers, window=self._window(node.window), span=node.span,
                               timing=self._record_timing(node))
        daily = [q for q in qualifiers if isinstance(q, ir.DoseQualifier) and q.per == "day"]
        referenced = [q for q in qualifiers if isinstance(q, ir.DoseQualifier) and q.reference]
        if not total:
            if referenced:
                self.error("dose", f"a {referenced[0].reference}-equivalent dose is a total over the records taken "
                           "on a day; it is not tested record by record (in a count, or as an anchor)", node.span,
                           "test it on its own: `current medication X with dose > 10 mg/day prednisone equivalent`")
            return record
        if not daily:
            return record
        if len(daily) > 1:
            self.error("dose", "one daily dose per test: write `with dose between 5 mg/day and 10 mg/day`", node.span)
            return record
        if node.status not in (None, "active", "current"):
            self.error("dose", "a daily total is taken over the as-of date (`current medication X with dose ...`), "
                       "a window (`medication X with dose ... within 4 weeks`) or every day (no status, no window)",
                       node.span)
            return record
        dose = daily[0]
        test = ir.RecordTest(kind=record.kind, noun=record.noun, status=status, matcher=matcher,
                             qualifiers=[q for q in qualifiers if q is not dose], window=record.window, span=node.span,
                             timing=record.timing)
        return ir.DoseTotal(test=test, dose=dose, reference=dose.reference, equivalents=self._equivalents(dose, node.span),
                            record=record, span=node.span)

    def _equivalents(self, dose: ir.DoseQualifier, span: Span) -> tuple:
        """The drugs of the reference drug's equivalence group, each with its matcher and its factor (mg of
        the reference per mg of it, an interval where the table gives a range)."""
        from .doses import equivalents

        if dose.reference is None:
            return ()
        table = equivalents()
        reference = table[dose.reference]
        found = []
        for drug in table.values():
            if drug.group != reference.group:
                continue
            members = tuple(ast.CodeLiteral(system=c.split(":")[0], code=c.split(":", 1)[1],
                                            op="<<" if c.startswith("RXNORM:") else "", span=span)
                            for c in drug.codes)
            matcher = self._part(drug.name, members, (), [], ())
            # reference mg per mg of this drug: [ref.low / drug.high, ref.high / drug.low]
            found.append(ir.Equivalent(drug.name, matcher, reference.low / drug.high, reference.high / drug.low))
        return tuple(found)

    # ------------------------------------------------------------ timing of a record, anchored windows
    # which record kinds each timing word applies to (a procedure or immunization is a point in time)
    _TIMING_KINDS = {
        "started": ("medication", "condition", "allergy"),
        "diagnosed": ("condition",),
        "onset": ("condition", "allergy"),
        "performed": ("procedure", "immunization"),
        "stopped": ("medication", "condition", "allergy"),
        "ended": ("medication", "condition", "allergy"),
        "for": ("medication", "condition", "allergy"),
        "unchanged for": ("medication",),
    }

    def _record_timing(self, node: ast.RecordTest) -> tuple[ir.RecordTiming, ...]:
        timings = []
        for t in node.timing:
            kinds = self._TIMING_KINDS[t.word]
            if node.kind not in kinds:
                if t.word == "unchanged for":
                    hint = ("a condition record does not show that it was stable (no progression, no change of "
                            "treatment): write the investigator's assessment as a fact, or `review \"...\"`; "
                            "`condition X diagnosed at least 3 months ago` is only its age")
                elif node.kind in ("procedure", "immunization"):
                    hint = f"{node.kind}s are points in time: write `{node.kind} X performed at least N days ago`"
                else:
                    hint = f"for {node.kind} records: " + ", ".join(
                        f"`{w}`" for w, k in self._TIMING_KINDS.items() if node.kind in k)
                article = "an" if node.kind[0] in "aeiou" else "a"
                self.error("timing", f"`{t.word}` does not apply to {article} {node.kind}", t.span, hint)
                continue
            if t.event == "unchanged" and t.op in ("at_most", "less_than"):
                self.error("timing", "`unchanged for` takes `at least` or `more than`", t.span)
                continue
            if t.duration.amount <= 0:
                self.error("window", "a duration must be at least 1 day long", t.duration.span)
            self._duration_limit(t.duration)
            timings.append(ir.RecordTiming(t.event, t.word, t.op, ir.Duration(t.duration.amount, t.duration.unit)))
        return tuple(timings)

    def _AnchoredLabTest(self, node: ast.AnchoredLabTest):
        test = self.expr(node.test)
        if node.relation != "interval":
            self.error("anchor", f"a lab result is tested in a window around the anchor, not `{node.relation}` it",
                       node.span, "write `within N before R`, `within N after R` or `from N before to M after R`")
            return ir.Const(False, span=node.span)
        anchor = self._anchor(node)
        if not isinstance(test, ir.LabCompare) or not isinstance(anchor, (ir.RecordTest, ir.LabCompare, ir.IndexDate)):
            return ir.Const(False, span=node.span)
        test.window = None  # the anchor's window replaces it (and the rule set's default lab window)
        return ir.AnchoredLabTest(test=test, anchor=anchor, span=node.span, anchor_at=node.anchor_at,
                                  **self._offsets(node))

    def _AnchoredRecordTest(self, node: ast.AnchoredRecordTest):
        test = self._record_expr(node.test, total=False)
        anchor = self._anchor(node)
        if not isinstance(test, ir.RecordTest) or not isinstance(anchor, (ir.RecordTest, ir.LabCompare, ir.IndexDate)):
            return ir.Const(False, span=node.span)  # an unknown value set, already reported
        return ir.AnchoredRecordTest(test=test, anchor=anchor, relation=node.relation, span=node.span,
                                     anchor_at=node.anchor_at, **self._offsets(node))

    @staticmethod
    def _offsets(node) -> dict:
        """The window's offsets from the anchor's date, as IR durations."""
        def duration(d):
            return ir.Duration(d.amount, d.unit) if d is not None else None
        return {"before": duration(node.before), "after": duration(node.after),
                "start_after": duration(node.start_after), "end_before": duration(node.end_before)}

    def _record_expr(self, node: ast.RecordTest, total: bool = True) -> ir.Node:
        """A record test checked as an operand (a daily dose per record, not a total over records)."""
        result = self._RecordTest(node, total=total)
        if not result.source_text:
            result.source_text = self.text_of(node.span)
        return result

    def _anchor(self, node) -> ir.Node | None:
        """The checked anchor of an anchored test (an inline record test or a name defined as one); None on error."""
        anchor_syntax = node.anchor
        if anchor_syntax is None and self.index is not None and node.anchor_name == self.index.name:
            return self._index_anchor(node, self.index)
        if anchor_syntax is None:
            found = self.define_syntax.get(node.anchor_name)
            if found is None:
                if node.anchor_name in self.valueset_syntax:
                    hint = (f"`{node.anchor_name}` is a value set: say which records, e.g. "
                            f"`procedure {node.anchor_name}` or `medication {node.anchor_name}`")
                else:
                    hint = self.did_you_mean(node.anchor_name, self.define_syntax) or (
                        f"if `{node.anchor_name}` is the trial's own index event (a first dose, enrolment), declare it "
                        f'after the title: `index date {node.anchor_name} "first dose of study drug"`')
                self.error("unknown-name", f"unknown name `{node.anchor_name}`: an anchor is a record test "
                           "(`procedure surgery`) or a name defined as one", node.anchor_span, hint)
                return None
            if not isinstance(found.expr, ast.RecordTest) or found.expr.window is not None:
                self.error("anchor", f"`{node.anchor_name}` is not a record test without a window, so it has no date "
                           "to anchor at", node.anchor_span,
                           f"define it as one record test, e.g. `define {node.anchor_name} = procedure surgery`")
                return None
            defined = self._define(node.anchor_name, node.anchor_span)  # checked once, problems reported there
            anchor = defined.body if defined is not None else None
            if isinstance(anchor, ir.DoseTotal):
                anchor = anchor.record  # as an anchor each record stands alone (its own daily dose)
        elif isinstance(anchor_syntax, ast.LabCompare):
            anchor = self.expr(anchor_syntax)
            if isinstance(anchor, ir.LabCompare):
                anchor.window = None  # any result, whenever it was taken (up to the as-of date)
        else:
            anchor = self._record_expr(anchor_syntax, total=False)
        for duration in (node.before, node.after):
            if duration is not None:
                if duration.amount <= 0:
                    self.error("window", "a time window must be at least 1 day long", duration.span)
                self._duration_limit(duration)
        near, far = ((node.start_after, node.after) if node.start_after is not None
                     else (node.end_before, node.before) if node.end_before is not None else (None, None))
        if near is not None:
            self._duration_limit(near)
            # calendar lengths: a month is 28 to 31 days, a year 365 or 366; the near end must come first whatever
            # the anchor's date (so the window is never empty)
            if _days(near)[1] >= _days(far)[0]:
                side = "after" if node.start_after is not None else "before"
                self.error("bad-range", f"`between {near.amount} {near.unit} and {far.amount} {far.unit} {side}`: the "
                           "first amount must be the smaller one (and shorter whatever the month)", near.span,
                           f"write the nearer end first, e.g. `between 4 and 12 weeks {side}`")
        return anchor

    def _index_anchor(self, node, index: ir.IndexDate) -> ir.IndexDate | None:
        """The index date as an anchor: only windows that end on or before it (nothing later is on record when
        screening as of it)."""
        if node.anchor_at == "end":
            self.error("anchor", f"`{index.name}` is a date: it has no end", node.anchor_span)
            return None
        if node.relation == "after" or node.after is not None or node.start_after is not None:
            self.error("anchor", f"`{index.name}` ({index.description}) is the as-of date: nothing after it is on "
                       "record when screening", node.anchor_span,
                       f"write a window before it, e.g. `within 14 days before {index.name}`")
            return None
        for duration in (node.before, node.end_before):
            if duration is not None:
                if duration.amount <= 0 and duration is node.before:
                    self.error("window", "a time window must be at least 1 day long", duration.span)
                self._duration_limit(duration)
        if node.end_before is not None and _days(node.end_before)[1] >= _days(node.before)[0]:
            self.error("bad-range", "the first amount must be the smaller one (and shorter whatever the month)",
                       node.end_before.span)
        self.index_used = True
        return index

    def _code_ref(self, valueset: str | None, code: ast.CodeLiteral | None, span, noun: str | None = None
                  ) -> CodeMatcher | None:
        """The matcher for a value set name or a code literal (None after an error); ``noun``: the record kind
        the value set's codes stand for (a medication value set is checked for RxNorm products)."""
        if code is None:
            uses = self.used_valuesets.setdefault(valueset, set())  # a use, for the unused-value-set warning
            if noun:
                uses.add(noun)
            return self._matcher(valueset, span)
        return self._inline_matcher(code)

    def _inline_matcher(self, code: ast.CodeLiteral) -> CodeMatcher:
        """A code written inside a test: `SNOMED:x` (that code; ICD-10 and ATC with their descendants),
        or `<<SNOMED:x` / `<SNOMED:x` expanded like a value-set member (the terminology store)."""
        if code.op:
            matcher = self._part(code.written, (code,), (), [], ())
        else:
            if code.system not in SYSTEMS:
                self.error("unknown-code-system", f"unknown code system {code.system}", code.span)
            bounds = range_of(code.system, code.code)
            if bounds:
                matcher = CodeMatcher(code.text, frozenset(), (), ((code.system, *bounds),))
            elif code.system in HIERARCHICAL:
                matcher = CodeMatcher(code.text, frozenset(), (normalise_code(code.text),), ())
            else:
                matcher = CodeMatcher(code.text, frozenset({normalise_code(code.text)}), (), ())
        self.inline_matchers.append(matcher)
        return matcher

    def _list_qualifier(self, q: ast.ListQualifier):
        """`with FIELD [not] in ("a", "b")` (texts) or `(SYSTEM:x, <<SNOMED:y, valueset)` (codes)."""
        if q.texts and (q.codes or q.valuesets):
            self.error("list", "a list holds texts or codes, not both", q.span,
                       'e.g. `with intent not in ("palliative", "maintenance")` or `with histology in (ICD10:C50.1, '
                       '<<SNOMED:35917007)`')
            return None
        if q.texts:
            return ir.TextSetQualifier(q.field_name, frozenset(t.strip().lower() for t in q.texts), q.negated,
                                       tuple(q.texts))
        matcher = self._list_matcher(q.codes, q.valuesets, q.span)
        return None if matcher is None else ir.CodeQualifier(q.field_name, matcher, q.negated)

    def _list_matcher(self, codes, valuesets, span) -> CodeMatcher | None:
        """The matcher of a list written in a rule: its codes (as value-set members) and value sets."""
        for name in valuesets:
            if name not in self.valueset_syntax:
                self._matcher(name, span)  # reports the unknown name, with a did-you-mean
                return None
            self.used_valuesets.setdefault(name, set())
        label = "(" + ", ".join([c.written for c in codes] + list(valuesets)) + ")"
        matcher = self._part(label, codes, tuple((name, span) for name in valuesets), [], ())
        self.inline_matchers.append(matcher)
        return matcher

    def _InvestigationalTest(self, node: ast.InvestigationalTest):
        status = node.status
        if status == "current":
            if node.window is not None:
                self.error("status", "`current` means on the screening date and takes no window; for taken at any "
                           "time during the window write `investigational medication within ...`", node.span)
            status = "active"
        elif status is not None and status != "active":
            self.error("status", f"`{status} investigational medication` is not supported: write `current "
                       "investigational medication` or `investigational medication within N`", node.span)
            status = None
        return ir.InvestigationalTest(status, self._window(node.window), span=node.span)

    def _DoseTrend(self, node: ast.DoseTrend):
        if node.kind != "medication":
            self.error("dose", f"a dose trend belongs to a medication, not a {node.kind}", node.span,
                       "write `medication X dose stable for at least 4 weeks`")
        if node.duration.amount <= 0:
            self.error("window", "a dose trend needs a period of at least 1 day", node.duration.span)
        self._duration_limit(node.duration)
        matcher = self._code_ref(node.valueset, node.code, node.span, "medication")
        if matcher is None:
            return ir.Const(False, span=node.span)
        return ir.DoseTrend(matcher, node.trend, ir.Duration(node.duration.amount, node.duration.unit), span=node.span)

    def _dose_qualifier(self, q: ast.DoseQualifier, kind: str):
        """``with dose <= 10 mg/day``: the unit says which dose (per day or per administration); the
        threshold is converted once, here, to mg/day or mg (screening/doses.py)."""
        from .doses import unit_kind

        hint = "write `with dose <= 10 mg/day` (the daily total) or `with dose <= 5 mg` (each administration)"
        if kind != "medication":
            self.error("dose", f"a dose belongs to a medication, not a {kind}", q.span, hint)
            return None
        if q.field_name != "dose":
            self.error("dose", f"a quantity with a unit is compared only with a medication's dose, not "
                       f"{q.field_name!r}", q.span, hint + "; other record details compare a bare number "
                       "(`with grade >= 3`) or text")
            return None
        pers, values = [], []
        for value, unit in ((q.value, q.unit), (q.upper, q.upper_unit)):
            if unit is None:
                continue
            per, conv, problem = unit_kind(unit)
            if problem:
                self.error("dose-unit", problem, q.span, hint)
                return None
            if value < 0:
                self.error("dose", "a dose cannot be negative", q.span)
                return None
            pers.append(per)
            values.append(conv.apply(value))
        if len(set(pers)) > 1:
            self.error("dose-unit", "both ends of a dose range need the same kind of unit (per day or per dose)",
                       q.span, hint)
            return None
        if q.op == "between" and values[0] > values[1]:
            self.error("range", "the dose range runs backwards", q.span)
            return None
        text = (f"dose between {q.value:g} {q.unit} and {q.upper:g} {q.upper_unit}" if q.op == "between"
                else f"dose {q.op} {q.value:g} {q.unit}")
        reference = None
        if q.reference is not None:
            from .doses import equivalents

            if pers[0] != "daily":
                self.error("dose", "an equivalent dose is a daily total: write the threshold per day (mg/day)",
                           q.reference_span or q.span)
                return None
            if q.reference not in equivalents():
                hint = self.did_you_mean(q.reference, list(equivalents())) or (
                    "the equivalence table (screening/data/dose_equivalents.toml) has: " + ", ".join(equivalents()))
                self.error("dose", f"no equivalence table lists `{q.reference}`", q.reference_span or q.span, hint)
                return None
            reference = q.reference
            text += f" {reference} equivalent"
        return ir.DoseQualifier("dose", q.op, values[0], values[1] if len(values) > 1 else None,
                                "day" if pers[0] == "daily" else "dose", text, reference)

    def _FactTest(self, node: ast.FactTest):
        value = node.value
        if node.mode == "is" and isinstance(value, str):
            value = value.strip().lower()
        self.used_facts.add(node.name)
        return ir.FactTest(node.name, node.mode, node.op, value, node.negated, self.fact_infos.get(node.name),
                           span=node.span)

    def _Review(self, node: ast.Review):
        if not node.reason.strip():
            self.error("review", "a review needs a reason", node.span)
        return ir.Review(node.reason, span=node.span)


_NUMBER_TEXT = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_RANGE_TEXTS = re.compile(r"=\s*(" + _NUMBER_TEXT.pattern + r")\s*to\s*(" + _NUMBER_TEXT.pattern + ")")


_DAYS = {"days": (1, 1), "weeks": (7, 7), "months": (28, 31), "years": (365, 366)}


def _days(duration: ast.Duration) -> tuple[int, int]:
    """The fewest and most days a calendar duration can span."""
    low, high = _DAYS[duration.unit]
    return duration.amount * low, duration.amount * high


def _per_visit_problem(expr: ast.Expr):
    """The first part of a per-visit test that is not a plain lab comparison joined by and/or/not."""
    if isinstance(expr, (ast.And, ast.Or)):
        for operand in expr.operands:
            found = _per_visit_problem(operand)
            if found:
                return found
        return None
    if isinstance(expr, ast.Not):
        return _per_visit_problem(expr.operand)
    if isinstance(expr, ast.LabCompare):
        if expr.selector != "latest" or expr.occasions is not None or expr.window is not None:
            return expr, ("inside a per-visit test each lab comparison is decided with one day's results: "
                          "no any/every, occasions or window of its own (the window follows the occasions)")
        return None
    return expr, "a per-visit test joins lab comparisons with and, or and not, and nothing else"


def _number_text(written: str) -> str | None:
    """The leading number of a bound as written ("7.0 %" -> "7.0"), for the unit-precision rule."""
    match = _NUMBER_TEXT.match(written.strip())
    return match.group(0).replace(",", "") if match else None


def _range_texts(declaration: str) -> tuple[str | None, str | None]:
    match = _RANGE_TEXTS.search(declaration)
    return (match.group(1).replace(",", ""), match.group(2).replace(",", "")) if match else (None, None)


def _postorder(root: str, children, done) -> list[str]:
    """Names reachable from ``root`` not in ``done``, each after the names it uses (iterative; cycles cut)."""
    order, state, stack = [], {}, [root]
    while stack:
        current = stack.pop()
        if current in done or state.get(current) == "done":
            continue
        if state.get(current) == "open":
            state[current] = "done"
            order.append(current)
            continue
        state[current] = "open"
        stack.append(current)
        stack.extend(c for c in children(current) if c not in done and c not in state)
    return order


def _references(expr: ast.Expr) -> list[str]:
    """The names an expression refers to (iteratively)."""
    from .limits import subexpressions

    names, stack = [], [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Reference):
            names.append(node.name)
        stack.extend(subexpressions(node))
    return names


def check(syntax: ast.RuleSetSyntax, terminology=None, base_dir=None) -> ir.CheckedRuleSet:
    """Check a parsed rule set; raises :class:`SourceError` listing every problem found.

    ``terminology`` (a :class:`~screening.terminology.TerminologyStore` or None) expands value-set
    members once; ``base_dir`` is where ``file "..."`` members are found (default: the rule file's folder).
    """
    return _Checker(syntax, terminology, base_dir).run()
