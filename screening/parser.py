"""Parse rule-set text into a :class:`~screening.ast.RuleSetSyntax`.

The Lark parser (LALR, positions on) is built once per process from the grammar shipped in the
package. Lark's exceptions are turned into :class:`~screening.errors.SourceError` with the
file, line, column, the source line and a caret, and a sentence a rule author can act on.
"""
from __future__ import annotations

from functools import lru_cache
from importlib import resources

import re

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from . import ast
from .errors import SourceError, source_error
from .limits import MAX_CRITERIA, MAX_DEPTH, MAX_INT_DIGITS, MAX_SOURCE_CHARS, too_deep
from .source import Source, Span, normalise_text

GRAMMAR_PACKAGE = "screening.grammars"
GRAMMAR_FILE = "criteria.lark"


def grammar_text() -> str:
    """The criteria grammar, read from the installed package (or the repository's grammars/)."""
    try:
        return resources.files(GRAMMAR_PACKAGE).joinpath(GRAMMAR_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        from pathlib import Path

        return (Path(__file__).resolve().parent.parent / "grammars" / GRAMMAR_FILE).read_text(encoding="utf-8")


_LARK_OPTIONS = dict(parser="lalr", propagate_positions=True, maybe_placeholders=False, start=["start", "declarations"])


@lru_cache(maxsize=1)
def lark_parser(strict: bool = False) -> Lark:
    """The one Lark parser of the process (LALR with positions).

    Its parse tables come from the per-user cache when the same grammar was analysed before by
    the same Lark release (a fifth of the time); ``strict=True`` (grammar collisions are errors,
    checked by the tests) always analyses the grammar.
    """
    if strict:
        return Lark(grammar_text(), strict=True, **_LARK_OPTIONS)
    return _cached_lark(grammar_text())


def _cached_lark(grammar: str) -> Lark:
    """The parser from the cache (Lark's serialized tables stored as JSON data, never pickle), else
    built and stored."""
    import lark

    from . import cache

    if not cache.enabled():
        return Lark(grammar, **_LARK_OPTIONS)
    key = cache.digest(grammar, lark.__version__, repr(sorted(_LARK_OPTIONS.items())))
    stored = cache.read("parser", key)
    if isinstance(stored, dict):
        try:
            tables = cache.decode(stored)
            parser = Lark._load_from_dict(tables["data"], tables["memo"])
            if parser.options.parser == "lalr" and parser.options.propagate_positions is True:
                return parser
        except Exception:  # a cache entry of another shape: analyse the grammar again
            pass
    parser = Lark(grammar, **_LARK_OPTIONS)
    try:
        from lark.grammar import Rule
        from lark.lexer import TerminalDef

        data, memo = parser.memo_serialize([TerminalDef, Rule])
        cache.write("parser", key, cache.encode({"data": data, "memo": memo}))
    except (TypeError, ValueError, RecursionError):
        pass
    return parser


_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _position(text: str, offset: int) -> Span:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Span(line, column, line, column + 1)


def parse(text: str, name: str = "<rules>") -> ast.RuleSetSyntax:
    """Parse a rule file. Raises :class:`SourceError` with a position on any syntax error.

    A leading byte-order mark is dropped and CRLF / CR line ends are read as LF (positions are
    the lines and columns an editor shows). Files beyond the limits of :mod:`screening.limits`
    (size, nesting depth, number of criteria) are refused with a position.
    """
    text = normalise_text(text)
    source = Source(name, text)
    if len(text) > MAX_SOURCE_CHARS:
        raise source_error("limit", f"the rule file is larger than {MAX_SOURCE_CHARS:,} characters; "
                           "split it into several rule sets", source, _position(text, MAX_SOURCE_CHARS))
    bad = _FORBIDDEN.search(text)
    if bad:
        raise source_error("syntax", f"control character U+{ord(bad.group()):04X} is not allowed in a rule file",
                           source, _position(text, bad.start()),
                           "control and text-direction characters could make a rule or a report read "
                           "differently from what it does")
    try:
        tree = lark_parser().parse(text, start="start")
    except UnexpectedInput as exc:
        raise SourceError(_all_syntax_errors(exc, source)) from None
    try:
        syntax = _ToAst(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SourceError):
            raise exc.orig_exc from None
        if isinstance(exc.orig_exc, _TokenProblem):
            problem = exc.orig_exc
            raise source_error("number", problem.message, source, Span.from_token(problem.token)) from None
        raise
    _check_limits(syntax)
    return syntax


def _check_limits(syntax: ast.RuleSetSyntax) -> None:
    source = syntax.source
    if len(syntax.criteria) > MAX_CRITERIA:
        extra = syntax.criteria[MAX_CRITERIA]
        raise source_error("limit", f"more than {MAX_CRITERIA:,} criteria in one rule set; split it into several "
                           "rule sets", source, extra.span)
    diagnostics = []
    expressions = [d.expr for d in syntax.defines]
    for crit in syntax.criteria:
        expressions.append(crit.expr)
        if crit.applies is not None:
            expressions.append(crit.applies)
    for expr in expressions:
        found = too_deep(expr)
        if found is not None:
            node, _ = found
            diagnostics.append(source_error(
                "limit", f"expression nested more than {MAX_DEPTH} levels deep", source, node.span,
                "name inner parts with `define`, or flatten the nesting (`a or b or c` is one level)",
            ).first)
            if len(diagnostics) >= 20:
                break
    if diagnostics:
        raise SourceError(diagnostics)


MAX_SYNTAX_ERRORS = 50
"""Syntax errors reported for one file (the first ones, in file order)."""

# A declaration begins a line: where the parser goes on after a syntax error.
_DECLARATION_START = re.compile(r"^[ \t]*(?:(?:inclusion|exclusion|define|valueset|reference|draft)\b"
                                r"|fact[ \t]+\w+[ \t]+\")", re.M)  # (`fact x "..."`: a declaration, not a test)
_NOT_NEWLINE = re.compile(r"[^\n]+")


def _error_offset(exc: UnexpectedInput, text: str) -> int:
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return len(text)
        return exc.token.start_pos if exc.token.start_pos is not None else len(text)
    position = getattr(exc, "pos_in_stream", None)
    return position if position is not None else len(text)


def _all_syntax_errors(first: UnexpectedInput, source: Source) -> list:
    """The diagnostics of every syntax error in the file, up to :data:`MAX_SYNTAX_ERRORS`.

    After an error the parser goes on at a line that begins a declaration (`inclusion`,
    `exclusion`, `define`, `valueset`, `reference`, `draft`), with everything before it blanked
    (line ends kept, so positions do not move): first at the error's own line, if it begins a
    declaration (the error may be the echo of an unfinished declaration before it), then at the
    next one. Each error is reported once, at its own line and column.
    """
    text = source.text
    diagnostics = []
    reported: set[int] = set()
    exc: UnexpectedInput | None = first
    resumed = 0
    while exc is not None:
        offset = _error_offset(exc, text)
        line_start = text.rfind("\n", 0, offset) + 1
        if offset not in reported:
            reported.add(offset)
            diagnostics.append(_unfinished_before(exc, source, line_start, offset)
                               or _syntax_error(exc, source).first)
            if len(diagnostics) >= MAX_SYNTAX_ERRORS:
                break
            from_here = line_start
        else:
            from_here = offset + 1  # the same error from its own declaration: go on past it
        found = _DECLARATION_START.search(text, max(from_here, resumed + 1))
        if found is None:
            break
        resumed = found.start()
        try:
            lark_parser().parse(_blank_before(text, resumed), start="declarations")
            exc = None
        except UnexpectedInput as again:
            exc = again
    return diagnostics


def _blank_before(text: str, offset: int) -> str:
    """The text with everything before ``offset`` made spaces (line ends kept: positions stay)."""
    return _NOT_NEWLINE.sub(lambda m: " " * len(m.group()), text[:offset]) + text[offset:]


def _unfinished_before(exc: UnexpectedInput, source: Source, line_start: int, offset: int):
    """`ALT <=` at the end of a line, then `inclusion I2 ...`: the keyword was read as a name of the
    unfinished rule, and the parser stumbles on `I2`. Say so, at the keyword."""
    if not isinstance(exc, UnexpectedToken) or exc.token.type == "$END":
        return None
    keyword = _DECLARATION_START.match(source.text, line_start)
    if keyword is None or source.text[keyword.end():offset].strip():
        return None
    try:  # a genuine error of this declaration (`inclusion "text" = ...`) comes back from its own line
        lark_parser().parse(_blank_before(source.text, line_start), start="declarations")
    except UnexpectedInput as again:
        if _error_offset(again, source.text) == offset:
            return None
    written = keyword.group()
    word = written.split()[0]  # `fact x "` (a fact declaration) is named by its keyword
    column = keyword.start() + len(written) - len(written.lstrip()) - line_start + 1
    line = source.text.count("\n", 0, line_start) + 1
    return source_error("syntax", f"unexpected '{word}': the declaration before it is unfinished", source,
                        Span(line, column, line, column + len(word)),
                        "finish the rule on the lines above (a threshold, a name, a closing parenthesis ...)").first


# `with FIELD`, `with FIELD <op>` just before an unexpected token: the forms of a record detail
_AFTER_WITH = re.compile(r"\bwith\s+[A-Za-z_][A-Za-z0-9_]*(?:\s*(?:<=|>=|!=|=<|=>|[<>=≤≥]|is|contains|matches|"
                         r"not(?:\s+in)?|in))?\s*\Z")

# a timing clause left unfinished just before an unexpected token: the forms of record timing
_AFTER_TIMING = re.compile(r"\b(?:started|stopped|ended|diagnosed|onset|performed|for)"
                           r"(?:\s+(?:at|more|less)(?:\s+(?:least|most|than))?)?"
                           r"(?:\s+\d+\s*(?:days?|weeks?|months?|years?))?\s*\Z")

_AFTER_RANGE_FOR = re.compile(r"\brange\s+\S+\s+for\s*\Z")  # `reference range ALT for female`

# Friendly names for terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "NAME": "a name", "STRING": 'a quoted "text"', "NUMBER": "a number", "INT": "a whole number",
    "CODE": "a code such as ICD10:C50", "UNIT": "a unit", "POWER_UNIT": "a unit such as 10^9/L",
    "EQUAL": "'='", "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "COLON": "':'", "PERCENT": "'%'",
    "$END": "the end of the file", "MINUS": "'-'", "DIGIT_UNIT": "a unit such as 10^9/L",
    "LESSTHAN": "'<'", "MORETHAN": "'>'",
}


def _describe_expected(expected: set[str]) -> str:
    names = []
    for term in sorted(expected):
        if term.startswith("__") or term.startswith("_"):
            continue
        names.append(_TERMINAL_NAMES.get(term, f"'{term.lower()}'" if term.isupper() else term))
    names = sorted(set(names))
    if len(names) > 8:
        names = names[:8] + ["..."]
    return ", ".join(names)


def _syntax_error(exc: UnexpectedInput, source: Source) -> SourceError:
    line = getattr(exc, "line", 1) or 1
    column = getattr(exc, "column", 1) or 1
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        content = source.text.rstrip()
        lines = content.split("\n")
        line, column = len(lines), len(lines[-1]) + 1  # just after the last thing written
        span = Span(line, column, line, column + 1)
        return source_error("syntax", f"unexpected end of file; expected {_describe_expected(exc.expected)}", source, span)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        span = Span.from_token(token)
        found = f"'{token}'" if token.type != "$END" else "the end of the file"
        hint = None
        if token.type in ("UNIT", "NAME") and str(token).lower() in ("x", "times"):
            hint = "a multiple of the upper limit is written `2 x ULN`"
        elif token.start_pos is not None and _AFTER_WITH.search(source.text, 0, token.start_pos):
            hint = ('a record field is compared with `with FIELD = "text"`, `!= "text"`, `contains "text"`, '
                    '`matches "regex"`, with a number: `with grade >= 3`, `with stage = 3`, or with a value set or '
                    'a list: `with histology in lobular`, `with intent not in ("palliative", "maintenance")`')
        elif (token.start_pos is not None and _AFTER_TIMING.search(source.text, 0, token.start_pos)
              and not _AFTER_RANGE_FOR.search(source.text, 0, token.start_pos)):
            hint = ("a record's timing is written `started at least 4 weeks ago`, `stopped more than 14 days "
                    "before screening`, `diagnosed at least 6 months ago`, `for at least 3 months`, "
                    "`unchanged for at least 3 months` (amounts: at least, more than, at most, less than)")
        return source_error(
            "syntax", f"unexpected {found}; expected {_describe_expected(exc.accepts or exc.expected)}",
            source, span, hint,
        )
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else "?"
        span = Span(line, column, line, column + 1)
        hint = None
        if char in "“”":
            hint = 'use straight double quotes "..."'
        elif char == "'":
            hint = 'text is written in double quotes "..."'
        return source_error("syntax", f"unexpected character {char!r}", source, span, hint)
    if isinstance(exc, UnexpectedEOF):
        return source_error("syntax", "unexpected end of file", source, Span(line, column, line, column + 1))
    return source_error("syntax", str(exc).splitlines()[0], source, Span(line, column, line, column + 1))


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return body.replace('\\"', '"').replace("\\\\", "\\")


def _number(token: Token) -> float:
    value = float(str(token).replace(",", ""))
    if value != value or value in (float("inf"), float("-inf")):
        raise _TokenProblem(token, f"the number {_clip(token)} is too large")
    return value


def _int(token: Token) -> int:
    text = str(token)
    if len(text.lstrip("0")) > MAX_INT_DIGITS:
        raise _TokenProblem(token, f"the whole number {_clip(token)} is too large (at most {MAX_INT_DIGITS} digits)")
    return int(text)


def _clip(token: Token) -> str:
    text = str(token)
    return text if len(text) <= 24 else text[:20] + "..."


class _AnchorEnd:
    """`the end of R` while the anchor is being built: the record (or name) whose end anchors the window."""

    def __init__(self, target):
        self.target = target


class _TokenProblem(Exception):
    def __init__(self, token: Token, message: str):
        self.token, self.message = token, message


_PLURAL = {"day": "days", "week": "weeks", "month": "months", "year": "years"}
_OPS = {"≤": "<=", "≥": ">=", "=<": "<=", "=>": ">="}


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Lark tree -> frozen dataclasses, one method per grammar rule."""

    def __init__(self, source: Source):
        super().__init__()
        self.source = source

    # ---- header and declarations
    def start(self, meta, children):
        header, *declarations = children
        trial_id, title, lab_window, indexes = header
        by_type = {t: tuple(d for d in declarations if isinstance(d, t))
                   for t in (ast.ValueSet, ast.ReferenceRange, ast.Define, ast.Criterion, ast.FactDeclaration)}
        return ast.RuleSetSyntax(
            source=self.source, trial_id=trial_id, title=title, lab_window=lab_window,
            valuesets=by_type[ast.ValueSet], ranges=by_type[ast.ReferenceRange],
            defines=by_type[ast.Define], criteria=by_type[ast.Criterion], facts=by_type[ast.FactDeclaration],
            indexes=indexes, span=Span.from_meta(meta),
        )

    def header(self, meta, children):
        trial_id = _unquote(children[0])
        title = None
        lab_window = None
        indexes = []
        for child in children[1:]:
            if isinstance(child, tuple) and child[0] == "title":
                title = child[1]
            elif isinstance(child, ast.Duration):
                lab_window = child
            elif isinstance(child, ast.IndexDeclaration):
                indexes.append(child)
        return trial_id, title, lab_window, tuple(indexes)

    def title(self, meta, children):
        return ("title", _unquote(children[0]))

    def lab_window(self, meta, children):
        return children[0]

    def index_date(self, meta, children):
        name, description = children
        return ast.IndexDeclaration(name=str(name), description=_unquote(description), name_span=Span.from_token(name),
                                    span=Span.from_meta(meta))

    def valueset(self, meta, children):
        name = str(children[0])
        rest = children[1:]
        display = None
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            display = _unquote(rest[0])
            rest = rest[1:]
        included = rest[0]
        excluded = rest[1] if len(rest) > 1 else None
        return ast.ValueSet(name=name, display=display, codes=included.codes, includes=included.includes,
                            files=included.files, excluded=excluded, span=Span.from_meta(meta))

    def _part(self, meta, children) -> ast.ValueSetPart:
        return ast.ValueSetPart(codes=tuple(m for m in children if isinstance(m, ast.CodeLiteral)),
                                includes=tuple(m for m in children if isinstance(m, tuple)),
                                files=tuple(m for m in children if isinstance(m, ast.ValueSetFile)),
                                span=Span.from_meta(meta))

    valueset_members = valueset_except = _part

    def code_member(self, meta, children):
        return self._code(children[0])

    def self_and_descendants(self, meta, children):
        return self._code(children[0], "<<", meta)

    def descendants_only(self, meta, children):
        return self._code(children[0], "<", meta)

    def file_member(self, meta, children):
        return ast.ValueSetFile(path=_unquote(children[0]), span=Span.from_token(children[0]))

    def valueset_ref(self, meta, children):
        return (str(children[0]), Span.from_token(children[0]))

    def _code(self, token: Token, op: str = "", meta=None) -> ast.CodeLiteral:
        system, code = str(token).split(":", 1)
        span = Span.from_meta(meta) if meta is not None else Span.from_token(token)
        return ast.CodeLiteral(system=system, code=code, op=op, span=span)

    def reference_range(self, meta, children):
        analyte = children[0]
        sex = None
        rest = children[1:]
        if rest and isinstance(rest[0], tuple) and rest[0][0] == "sex":
            sex = rest[0][1]
            rest = rest[1:]
        low, high = rest[0], rest[1]
        unit = rest[2] if len(rest) > 2 else None
        return ast.ReferenceRange(analyte=analyte, sex=sex, low=low, high=high, unit=unit, span=Span.from_meta(meta))

    def sex_filter(self, meta, children):
        return ("sex", children[0])

    def define(self, meta, children):
        name = str(children[0])
        text = _unquote(children[1]) if len(children) == 3 else None
        return ast.Define(name=name, text=text, expr=children[-1], span=Span.from_meta(meta))

    def criterion(self, meta, children):
        draft = False
        if children and children[0] == "draft":
            draft = True
            children = children[1:]
        kind, ident, text, *rest = children
        applies = None
        if len(rest) == 2:
            applies, expr = rest
        else:
            (expr,) = rest
        return ast.Criterion(
            id=str(ident), kind=kind, text=_unquote(text), expr=expr, applies=applies, draft=draft,
            span=Span(meta.line, meta.column, ident.end_line or ident.line, ident.end_column or ident.column),
        )

    def applies(self, meta, children):
        return children[0]

    # ---- keyword groups: return the keyword text
    def _word(self, meta, children):
        return str(children[0])

    draft = kind = selector = negated = comparator = limit_name = age_unit = sex_word = _word
    status = record_kind = field_op = time_unit = _word

    # ---- expressions
    def true(self, meta, children):
        return ast.Const(value=True, span=Span.from_meta(meta))

    def false(self, meta, children):
        return ast.Const(value=False, span=Span.from_meta(meta))

    def reference(self, meta, children):
        return ast.Reference(name=str(children[0]), span=Span.from_meta(meta))

    def and_(self, meta, children):
        return ast.And(operands=self._flatten(children, ast.And), span=Span.from_meta(meta))

    def or_(self, meta, children):
        return ast.Or(operands=self._flatten(children, ast.Or), span=Span.from_meta(meta))

    @staticmethod
    def _flatten(children, kind):
        out = []
        for child in children:
            out.extend(child.operands if isinstance(child, kind) else (child,))
        return tuple(out)

    def not_(self, meta, children):
        return ast.Not(operand=children[0], span=Span.from_meta(meta))

    def unless(self, meta, children):
        return ast.Unless(main=children[0], exception=children[1], span=Span.from_meta(meta))

    def if_then_else(self, meta, children):
        return ast.IfThenElse(condition=children[0], then=children[1], otherwise=children[2], span=Span.from_meta(meta))

    def expr_list(self, meta, children):
        return tuple(children)

    def _count(self, mode, meta, children):
        if mode in ("any", "all"):
            operands = children[0]
            count = 1 if mode == "any" else len(operands)
        else:
            count, operands = _int(children[0]), children[1]
        return ast.CountOf(mode=mode, count=count, operands=operands, span=Span.from_meta(meta))

    def at_least(self, meta, children):
        return self._count("at_least", meta, children)

    def at_most(self, meta, children):
        return self._count("at_most", meta, children)

    def any_of(self, meta, children):
        return self._count("any", meta, children)

    def all_of(self, meta, children):
        return self._count("all", meta, children)

    # ---- labs
    def analyte_name(self, meta, children):
        return ast.AnalyteRef(name=str(children[0]), span=Span.from_token(children[0]))

    def analyte_code(self, meta, children):
        return ast.AnalyteRef(code=str(children[0]), span=Span.from_token(children[0]))

    def lab_test(self, meta, children):
        selector = "latest"
        if isinstance(children[0], str) and not isinstance(children[0], ast.Node):
            selector = children[0]
            children = children[1:]
        analyte, (op, bound, upper), *rest = children
        occasions = next((r for r in rest if isinstance(r, int)), None)
        window = next((r for r in rest if isinstance(r, ast.Window)), None)
        if occasions is not None and selector == "latest":
            selector = "any"
        test = ast.LabCompare(selector=selector, analyte=analyte, op=op, bound=bound, upper=upper,
                              occasions=occasions, window=window, span=Span.from_meta(meta))
        anchor = next((r for r in rest if isinstance(r, dict)), None)
        if anchor is None:
            return test
        return ast.AnchoredLabTest(test=test, span=Span.from_meta(meta), **anchor)

    def visit_occasions(self, meta, children):
        expr, count, *rest = children
        return ast.VisitOccasions(expr=expr, count=count, window=rest[0] if rest else None, span=Span.from_meta(meta))

    def _record_count(self, mode, meta, children):
        count, *rest = children
        courses = any(isinstance(r, str) and r == "courses" for r in rest)
        test = rest[-1]
        return ast.RecordCount(mode=mode, count=_int(count), courses=courses, test=test, span=Span.from_meta(meta))

    def at_least_records(self, meta, children):
        return self._record_count("at_least", meta, children)

    def at_most_records(self, meta, children):
        return self._record_count("at_most", meta, children)

    def courses(self, meta, children):
        return "courses"

    def lab_aggregate(self, meta, children):
        function, analyte, *rest = children
        count = next((r for r in rest if isinstance(r, int) and not isinstance(r, bool)), None)
        op, bound, upper = next(r for r in rest if isinstance(r, tuple))
        windows = [r for r in rest if isinstance(r, ast.Window)]
        return ast.LabAggregate(function=str(function), analyte=analyte, count=count, op=op, bound=bound,
                                upper=upper, window=windows[0] if windows else None,
                                second_window=windows[1] if len(windows) > 1 else None, span=Span.from_meta(meta))

    def aggregate_fn(self, meta, children):
        return str(children[0])

    def latest_count(self, meta, children):
        return _int(children[-1])

    def lab_text_test(self, meta, children):
        selector = "latest"
        if isinstance(children[0], str) and not isinstance(children[0], ast.Node):
            selector = children[0]
            children = children[1:]
        analyte = children[0]
        negated = children[1] == "not"
        rest = children[2:] if negated else children[1:]
        value = rest[0]
        window = rest[1] if len(rest) > 1 else None
        return ast.LabText(selector=selector, analyte=analyte, negated=negated, value=value, window=window,
                           span=Span.from_meta(meta))

    def lab_recorded(self, meta, children):
        analyte, *rest = children
        return ast.LabRecorded(analyte=analyte, window=rest[0] if rest else None, span=Span.from_meta(meta))

    def text_value(self, meta, children):
        token = children[0]
        return _unquote(token) if token.type == "STRING" else str(token)

    def lab_ordinal_test(self, meta, children):
        selector = "latest"
        if isinstance(children[0], str) and not isinstance(children[0], ast.Node):
            selector = children[0]
            children = children[1:]
        analyte, op, value, *rest = children
        window = rest[0] if rest else None
        return ast.LabText(selector=selector, analyte=analyte, negated=False, value=value, window=window,
                           op=_OPS.get(op, op), span=Span.from_meta(meta))

    def ordinal_grade(self, meta, children):
        return str(children[0])

    def ordinal_word(self, meta, children):
        return str(children[0])

    def compare(self, meta, children):
        op = _OPS.get(children[0], children[0])
        return (op, children[1], None)

    def between(self, meta, children):
        return ("between", children[0], children[1])

    def signed_number(self, meta, children):
        return _number(children[0])

    def negative(self, meta, children):
        return -_number(children[0])

    def quantity(self, meta, children):
        unit = children[1] if len(children) > 1 else None
        return ast.Quantity(value=children[0], unit=unit, span=Span.from_meta(meta))

    def scaled_quantity(self, meta, children):
        return ast.Quantity(value=children[0], unit=str(children[1]), span=Span.from_meta(meta))

    def unit(self, meta, children):
        return str(children[0])

    def limit(self, meta, children):
        multiplier = children[0] if len(children) == 2 else 1.0
        return ast.Limit(multiplier=multiplier, which=children[-1], span=Span.from_meta(meta))

    def occasions(self, meta, children):
        return _int(children[0])

    # ---- demographics
    def age_compare(self, meta, children):
        op = _OPS.get(children[0], children[0])
        unit = _PLURAL.get(children[2], children[2]) if len(children) > 2 else "years"
        return ast.AgeTest(op=op, value=children[1], upper=None, unit=unit, span=Span.from_meta(meta))

    def age_between(self, meta, children):
        unit = _PLURAL.get(children[2], children[2]) if len(children) > 2 else "years"
        return ast.AgeTest(op="between", value=children[0], upper=children[1], unit=unit, span=Span.from_meta(meta))

    def sex_test(self, meta, children):
        negated = children[0] == "not"
        return ast.SexTest(negated=negated, sex=children[-1], span=Span.from_meta(meta))

    # ---- records
    def record_test(self, meta, children):
        status = None
        if children[0] in ("active", "inactive", "resolved", "current"):
            status = children[0]  # `current` is told apart from `active` by the checker
            children = children[1:]
        kind, ref, *rest = children
        qualifiers = tuple(r for r in rest if isinstance(r, (ast.Qualifier, ast.DoseQualifier, ast.CodeQualifier,
                                                             ast.ListQualifier, ast.OtherThan)))
        window = next((r for r in rest if isinstance(r, ast.Window)), None)
        timing = tuple(r for r in rest if isinstance(r, ast.RecordTiming))
        valueset = ref if isinstance(ref, str) else None
        code = ref if isinstance(ref, ast.CodeLiteral) else None
        test = ast.RecordTest(kind=kind, status=status, valueset=valueset, code=code, qualifiers=qualifiers,
                              window=window, timing=timing, span=Span.from_meta(meta))
        anchor = next((r for r in rest if isinstance(r, dict)), None)
        if anchor is None:
            return test
        return ast.AnchoredRecordTest(test=test, span=Span.from_meta(meta), **anchor)

    # ---- timing of a record and windows anchored at another record
    _TIMING_EVENTS = {"started": "start", "diagnosed": "start", "onset": "start", "performed": "start",
                      "stopped": "end", "ended": "end"}

    def timing_event(self, meta, children):
        return str(children[0])

    def timing_amount(self, meta, children):
        return "_".join(str(c) for c in children)  # at_least more_than at_most less_than

    def timing_ago(self, meta, children):
        word, op, duration = children[0], children[1], children[2]
        return ast.RecordTiming(event=self._TIMING_EVENTS[word], word=word, op=op, duration=duration,
                                span=Span.from_meta(meta))

    def timing_for(self, meta, children):
        return ast.RecordTiming(event="duration", word="for", op=children[0], duration=children[1],
                                span=Span.from_meta(meta))

    def timing_unchanged(self, meta, children):
        return ast.RecordTiming(event="unchanged", word="unchanged for", op=children[0], duration=children[1],
                                span=Span.from_meta(meta))

    def anchor_record(self, meta, children):
        return self.record_test(meta, children)

    def anchor_name(self, meta, children):
        return str(children[0]), Span.from_token(children[0])

    @staticmethod
    def _anchor(relation, before, after, target) -> dict:
        at = "start"
        if isinstance(target, _AnchorEnd):
            at, target = "end", target.target
        if isinstance(target, tuple):
            name, span = target
            return {"relation": relation, "before": before, "after": after, "anchor": None,
                    "anchor_name": name, "anchor_span": span, "anchor_at": at}
        return {"relation": relation, "before": before, "after": after, "anchor": target,
                "anchor_span": target.span, "anchor_at": at}

    def anchor_end(self, meta, children):
        return _AnchorEnd(children[-1])

    def anchor_lab(self, meta, children):
        analyte, (op, bound, upper) = children
        return ast.LabCompare(selector="any", analyte=analyte, op=op, bound=bound, upper=upper,
                              span=Span.from_meta(meta))

    def anchor_after(self, meta, children):
        return self._anchor("after", None, None, children[0])

    def anchor_before(self, meta, children):
        return self._anchor("before", None, None, children[0])

    def anchor_within_after(self, meta, children):
        return self._anchor("interval", None, children[0], children[1])

    def anchor_within_before(self, meta, children):
        return self._anchor("interval", children[0], None, children[1])

    def anchor_around(self, meta, children):
        return self._anchor("interval", children[0], children[1], children[2])

    @staticmethod
    def _near(first, far: ast.Duration) -> ast.Duration:
        """The nearer end of a one-sided window; a bare number (`between 4 and 12 weeks`) takes the far end's unit."""
        if isinstance(first, ast.Duration):
            return first
        amount, span = first
        return ast.Duration(amount=amount, unit=far.unit, span=span)

    def bare_amount(self, meta, children):
        return _int(children[0]), Span.from_token(children[0])

    def anchor_between_after(self, meta, children):
        near, far, target = children
        found = self._anchor("interval", None, far, target)
        found["start_after"] = self._near(near, far)
        return found

    def anchor_between_before(self, meta, children):
        near, far, target = children
        found = self._anchor("interval", far, None, target)
        found["end_before"] = self._near(near, far)
        return found

    def valueset_use(self, meta, children):
        return str(children[0])

    def code_use(self, meta, children):
        return self._code(children[0])

    def code_use_and_descendants(self, meta, children):
        return self._code(children[0], "<<", meta)

    def code_use_descendants(self, meta, children):
        return self._code(children[0], "<", meta)

    def qualifier(self, meta, children):
        return ast.Qualifier(field_name=str(children[0]), op=children[1], value=_unquote(children[2]),
                             span=Span.from_meta(meta))

    def qualifier_number(self, meta, children):
        op = _OPS.get(children[1], children[1])
        return ast.Qualifier(field_name=str(children[0]), op=op, value=children[2], span=Span.from_meta(meta))

    def investigational_test(self, meta, children):
        status = next((str(c) for c in children if isinstance(c, str) and c in ("active", "inactive", "resolved",
                                                                               "current")), None)
        window = next((c for c in children if isinstance(c, ast.Window)), None)
        return ast.InvestigationalTest(status=status, window=window, span=Span.from_meta(meta))

    def reason_qualifier(self, meta, children):
        (ref,) = children
        return ast.CodeQualifier(field_name="reason", valueset=ref if isinstance(ref, str) else None,
                                 code=ref if isinstance(ref, ast.CodeLiteral) else None, span=Span.from_meta(meta))

    def other_than(self, meta, children):
        (ref,) = children
        return ast.OtherThan(valueset=ref if isinstance(ref, str) else None,
                             code=ref if isinstance(ref, ast.CodeLiteral) else None, span=Span.from_meta(meta))

    def other_than_list(self, meta, children):
        members = children[-1]
        return ast.OtherThan(valueset=None, code=None, codes=tuple(m for m in members if isinstance(m, ast.CodeLiteral)),
                             valuesets=tuple(m for m in members if isinstance(m, str)),
                             texts=tuple(m[1] for m in members if isinstance(m, tuple)), span=Span.from_meta(meta))

    def code_qualifier(self, meta, children):
        name, *rest = children
        ref = rest[-1]
        return ast.CodeQualifier(field_name=str(name), valueset=ref if isinstance(ref, str) else None,
                                 code=ref if isinstance(ref, ast.CodeLiteral) else None, negated=len(rest) == 2,
                                 span=Span.from_meta(meta))

    def list_qualifier(self, meta, children):
        name, *rest = children
        members = rest[-1]
        return ast.ListQualifier(field_name=str(name), negated=len(rest) == 2,
                                 texts=tuple(m[1] for m in members if isinstance(m, tuple)),
                                 codes=tuple(m for m in members if isinstance(m, ast.CodeLiteral)),
                                 valuesets=tuple(m for m in members if isinstance(m, str)), span=Span.from_meta(meta))

    def member_list(self, meta, children):
        return list(children)

    def text_member(self, meta, children):
        return ("text", _unquote(children[0]))

    def caused_by(self, meta, children):
        kind, ref = children
        return ast.CodeQualifier(field_name="caused_by", valueset=ref if isinstance(ref, str) else None,
                                 code=ref if isinstance(ref, ast.CodeLiteral) else None, cause=str(kind),
                                 span=Span.from_meta(meta))

    def dose_trend(self, meta, children):
        kind, ref, trend, duration = children
        return ast.DoseTrend(kind=kind, valueset=ref if isinstance(ref, str) else None,
                             code=ref if isinstance(ref, ast.CodeLiteral) else None, trend=trend, duration=duration,
                             span=Span.from_meta(meta))

    def dose_trend_kind(self, meta, children):
        return " ".join(str(c) for c in children)

    def dose_compare(self, meta, children):
        reference = children.pop() if isinstance(children[-1], tuple) else (None, None)
        name, op, value, unit = children
        return ast.DoseQualifier(field_name=str(name), op=_OPS.get(op, op), value=value, unit=unit,
                                 reference=reference[0], reference_span=reference[1], span=Span.from_meta(meta))

    def dose_between(self, meta, children):
        reference = children.pop() if isinstance(children[-1], tuple) else (None, None)
        name, low, low_unit, high, high_unit = children
        return ast.DoseQualifier(field_name=str(name), op="between", value=low, unit=low_unit, upper=high,
                                 upper_unit=high_unit, reference=reference[0], reference_span=reference[1],
                                 span=Span.from_meta(meta))

    def equivalent(self, meta, children):
        return str(children[0]), Span.from_meta(meta)

    def window(self, meta, children):
        return ast.Window(duration=children[-1], span=Span.from_meta(meta))

    def duration(self, meta, children):
        unit = _PLURAL.get(children[1], children[1])
        return ast.Duration(amount=_int(children[0]), unit=unit, span=Span.from_meta(meta))

    # ---- facts and review
    def fact_true(self, meta, children):
        return ast.FactTest(name=str(children[0]), mode="true", span=Span.from_meta(meta))

    def fact_compare(self, meta, children):
        return ast.FactTest(name=str(children[0]), mode="compare", op=_OPS.get(children[1], children[1]),
                            value=children[2], span=Span.from_meta(meta))

    def fact_is(self, meta, children):
        negated = len(children) == 3
        return ast.FactTest(name=str(children[0]), mode="is", value=children[-1], negated=negated,
                            span=Span.from_meta(meta))

    def fact_string(self, meta, children):
        return _unquote(children[0])

    def fact_yes(self, meta, children):
        return True

    def fact_no(self, meta, children):
        return False

    def fact_declaration(self, meta, children):
        question = next((c[1] for c in children[2:] if c[0] == "question"), None)
        asked_of = next((c[1] for c in children[2:] if c[0] == "asked_of"), None)
        return ast.FactDeclaration(name=str(children[0]), description=_unquote(children[1]), question=question,
                                   asked_of=asked_of, span=Span.from_meta(meta))

    def fact_question(self, meta, children):
        return ("question", _unquote(children[0]))

    def fact_asked_of(self, meta, children):
        return ("asked_of", str(children[0]))

    def known(self, meta, children):
        return ast.Known(operand=children[0], span=Span.from_meta(meta))

    def review(self, meta, children):
        return ast.Review(reason=_unquote(children[0]), span=Span.from_meta(meta))
