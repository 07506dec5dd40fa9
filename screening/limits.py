"""The documented limits of the rule language (docs/limits.md), and the checks that enforce them.

Everything below these limits compiles in time linear in the rule text and evaluates without
deep recursion; anything beyond them is a :class:`~screening.errors.SourceError` with a position,
never a hang, a traceback or unbounded memory.
"""
from __future__ import annotations

import unicodedata

_ast = None  # screening.ast, imported on first use: reports import this module for printable() alone


def _syntax():
    global _ast
    if _ast is None:
        from . import ast as module

        _ast = module
    return _ast

#: Largest rule file, in characters (after decoding): 16 MiB.
MAX_SOURCE_CHARS = 16 * 1024 * 1024
#: Most inclusion and exclusion criteria in one rule set.
MAX_CRITERIA = 100_000
#: Deepest nesting of expressions (and, or, not, unless, if, known, at least ... of), counting the
#: definitions a name refers to (a defined name is one level plus the levels of its definition),
#: and the deepest chain of value sets including value sets.
MAX_DEPTH = 64
#: Largest whole number written in a rule (counts, occasions, window lengths): 9 digits.
MAX_INT_DIGITS = 9
#: Longest time window: 200 years, in every unit.
MAX_WINDOW = {"years": 200, "months": 2_400, "weeks": 10_436, "days": 73_048}


def subexpressions(node: ast.Expr) -> tuple:
    """The expressions directly inside ``node`` (empty for an atom)."""
    ast = _syntax()
    if isinstance(node, (ast.And, ast.Or, ast.CountOf)):
        return node.operands
    if isinstance(node, (ast.Not, ast.Known)):
        return (node.operand,)
    if isinstance(node, ast.Unless):
        return (node.main, node.exception)
    if isinstance(node, ast.IfThenElse):
        return (node.condition, node.then, node.otherwise)
    return ()


def too_deep(expr: ast.Expr, base: int = 0, define_depth=None) -> tuple[ast.Expr, int] | None:
    """The first node (top-down) whose nesting level exceeds :data:`MAX_DEPTH`, with that level.

    ``define_depth(name)`` gives the nesting of a defined name's body (None for other names);
    a reference at level k then reaches k + that depth. Iterative: safe on any input.
    """
    ast = _syntax()
    stack = [(expr, base + 1)]
    while stack:
        node, level = stack.pop()
        if level > MAX_DEPTH:
            return node, level
        if define_depth is not None and isinstance(node, ast.Reference):
            inner = define_depth(node.name)
            if inner and level + inner > MAX_DEPTH:
                return node, level + inner
            continue
        children = subexpressions(node)
        for child in reversed(children):
            stack.append((child, level + 1))
    return None


def height(expr: ast.Expr, define_depth=None) -> int:
    """Levels of nesting of an expression (an atom is 1), through defined names. Iterative."""
    ast = _syntax()
    best = 0
    stack = [(expr, 1)]
    while stack:
        node, level = stack.pop()
        if define_depth is not None and isinstance(node, ast.Reference):
            level += define_depth(node.name) or 0
        best = max(best, level)
        for child in subexpressions(node):
            stack.append((child, level + 1))
    return best


# Characters a rule file may not contain: C0/C1 controls (other than tab and line ends) could
# restyle a terminal (ANSI escapes), and bidirectional overrides could make a rule read
# differently from what it does ("Trojan source").
_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def forbidden_char(ch: str) -> bool:
    if ch in "\t\n":
        return False
    if ch in _BIDI:
        return True
    return unicodedata.category(ch) == "Cc"


def printable(text: str) -> str:
    """``text`` with control and bidi-override characters shown as ``\\xNN`` / ``\\uNNNN`` escapes."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if forbidden_char(ch):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)
