"""A checked rule set kept in the per-user cache, as data.

``screening check`` of one patient spends most of its time before the first criterion is decided:
parsing, checking and expanding the value sets of a rule set that has not changed since the last
run. :func:`checked_rule_set` keeps the checked IR (:class:`~screening.ir.CheckedRuleSet`, what the
fast path is generated from and what the interpreter runs) in the cache of :mod:`screening.cache`
and gives it back when nothing it was computed from has changed:

- the key: the rule text and the name it was compiled under, the folder ``file "..."`` value sets
  are read from, the code of the package (every module, the grammar and the analyte catalogue:
  :func:`screening.cache.code_identity`), the interpreter and the installed Lark, pint, ucumvert
  and RE2 (:func:`runtime_identity`), and the identity of the terminology store
  (:func:`terminology_identity`);
- in the entry: each value-set file the rule set read, with the SHA-256 of its bytes, hashed again
  on every load (an edited file is a miss).

The IR is written as JSON data: objects of an allowed set of dataclasses (the IR, code matchers,
spans, diagnostics, conversions) by field, RE2 patterns by their text (compiled again, with the
checker's own options), the store lookup of a value set by a marker bound again to the store given
on load. Anything else in the IR (a class from another module, an attribute that is not a field)
makes the rule set uncacheable: it is compiled every time, never stored half. Nothing in an entry
can name a function, a module or a class outside that set, so a cache entry cannot run code.
"""
from __future__ import annotations

import dataclasses
import hashlib
import sys
from datetime import date
from pathlib import Path

from . import cache

# modules whose dataclasses may appear in a checked rule set
_MODULES = ("screening.ir", "screening.codes", "screening.source", "screening.errors", "screening.units")
# attributes that are not fields but memo tables a class's __post_init__ makes afresh
_TRANSIENT = {("screening.codes", "CodeMatcher"): frozenset({"_seen"})}
_OBJ, _REF, _TUPLE, _SET, _DICT, _RE2, _KNOWN, _DATE = (
    "\x00o", "\x00r", "\x00t", "\x00s", "\x00d", "\x00re2", "\x00known", "\x00date")
_TAGS = frozenset({_OBJ, _REF, _TUPLE, _SET, _DICT, _RE2, _KNOWN, _DATE})
FORMAT = "ir 1"


class Uncacheable(TypeError):
    """The checked rule set holds something that has no data form."""


# ------------------------------------------------------------------ encoding
class _Encoder:
    def __init__(self, store):
        self.store = store
        self.ids: dict[int, int] = {}
        self.keep: list = []  # holds every encoded object, so that no id() is reused meanwhile

    def value(self, v):
        kind = type(v)
        if v is None or kind in (str, bool, int, float):  # exactly: a str subclass (a Lark Token) is not a str
            return v
        if kind is list:
            return [self.value(x) for x in v]
        if kind is tuple:
            return {_TUPLE: [self.value(x) for x in v]}
        if kind is date:
            return {_DATE: v.isoformat()}
        if kind in (set, frozenset):
            items = sorted(v) if all(isinstance(x, str) for x in v) else v  # the same entry on every run
            return {_SET: [self.value(x) for x in items]}
        if kind is dict:
            if all(type(k) is str for k in v) and not _TAGS.intersection(v):
                return {k: self.value(x) for k, x in v.items()}
            return {_DICT: [[self.value(k), self.value(x)] for k, x in v.items()]}
        if kind.__module__ == "re2" and isinstance(getattr(v, "pattern", None), str):
            return {_RE2: v.pattern}
        owner = getattr(v, "__self__", None)
        if (getattr(v, "__name__", None) == "known" and type(owner).__name__ == "Expander"
                and type(owner).__module__ == "screening.expand" and owner.store is self.store):
            return {_KNOWN: None}
        if dataclasses.is_dataclass(v) and not isinstance(v, type) and kind.__module__ in _MODULES:
            return self.object(v)
        raise Uncacheable(f"{kind.__module__}.{kind.__qualname__}")

    def object(self, v):
        key = id(v)
        if key in self.ids:
            return {_REF: self.ids[key]}
        self.ids[key] = len(self.ids)
        self.keep.append(v)
        kind = type(v)
        names = [f.name for f in dataclasses.fields(v)]
        extra = set(getattr(v, "__dict__", ())) - set(names)
        if extra - _TRANSIENT.get((kind.__module__, kind.__qualname__), frozenset()):
            raise Uncacheable(f"{kind.__qualname__} carries attributes that are not fields: {sorted(extra)}")
        return {_OBJ: [f"{kind.__module__}:{kind.__qualname__}", {n: self.value(getattr(v, n)) for n in names}]}


# ------------------------------------------------------------------ decoding
class _Decoder:
    def __init__(self, store):
        self.store = store
        self.objects: list = []
        self._known = None

    def value(self, v):
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (tag, body), = v.items()
            if tag == _TUPLE:
                return tuple(self.value(x) for x in _list(body))
            if tag == _SET:
                return frozenset(self.value(x) for x in _list(body))
            if tag == _DICT:
                return {self.value(k): self.value(x) for k, x in (_pair(p) for p in _list(body))}
            if tag == _REF:
                if type(body) is not int or not 0 <= body < len(self.objects):
                    raise ValueError("bad reference")
                return self.objects[body]
            if tag == _OBJ:
                return self.object(body)
            if tag == _RE2:
                return self.pattern(body)
            if tag == _KNOWN:
                return self.known()
            if tag == _DATE:
                if not isinstance(body, str):
                    raise ValueError("malformed date")
                return date.fromisoformat(body)
        if _TAGS.intersection(v):
            raise ValueError("malformed entry")
        return {k: self.value(x) for k, x in v.items()}

    def object(self, body):
        name, fields = _pair(body)
        if not isinstance(name, str) or not isinstance(fields, dict):
            raise ValueError("malformed object")
        module_name, _, qualname = name.partition(":")
        if module_name not in _MODULES or not qualname.isidentifier():
            raise ValueError(f"not an IR class: {name}")
        __import__(module_name)
        kind = getattr(sys.modules[module_name], qualname, None)
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind) and kind.__module__ == module_name):
            raise ValueError(f"not an IR class: {name}")
        names = [f.name for f in dataclasses.fields(kind)]
        if sorted(names) != sorted(fields):
            raise ValueError(f"{name}: fields differ")  # the class changed (the code identity would too)
        obj = object.__new__(kind)
        self.objects.append(obj)
        for n in names:
            object.__setattr__(obj, n, self.value(fields[n]))
        post = getattr(kind, "__post_init__", None)
        if post is not None:
            post(obj)
        return obj

    def pattern(self, text):
        if not isinstance(text, str):
            raise ValueError("malformed pattern")
        from .patterns import compile_pattern

        compiled, problem = compile_pattern(text)
        if compiled is None:
            raise ValueError(problem)
        return compiled

    def known(self):
        if self.store is None:
            raise ValueError("a store lookup without a store")
        if self._known is None:
            from .expand import Expander

            self._known = Expander(self.store).known
        return self._known


def _list(v) -> list:
    if not isinstance(v, list):
        raise ValueError("malformed entry")
    return v


def _pair(v):
    if not isinstance(v, list) or len(v) != 2:
        raise ValueError("malformed entry")
    return v[0], v[1]


def encode_checked(checked, store=None):
    """The JSON data form of a checked rule set (:class:`Uncacheable` when it has none)."""
    return _Encoder(store).value(checked)


def decode_checked(data, store=None):
    """A checked rule set from :func:`encode_checked`'s data (ValueError when it is not one)."""
    from .ir import CheckedRuleSet

    checked = _Decoder(store).value(data)
    if not isinstance(checked, CheckedRuleSet):
        raise ValueError("not a checked rule set")
    return checked


# ------------------------------------------------------------------ keys
def terminology_identity(store) -> str:
    """What a compile against ``store`` depends on: 'none' without a store; the release files' own
    digest for a store built from them for one run; else the store file (path, size, modification
    time) and every source it holds, as recorded by its load (including when it was loaded)."""
    if store is None:
        return "none"
    own = getattr(store, "content_identity", None)
    if isinstance(own, str):
        return own
    path = Path(store.path).resolve()
    try:
        st = path.stat()
        stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    except OSError:
        stamp = "?"
    rows = [repr(sorted(s.to_dict().items())) for s in store.sources()]
    return cache.digest("store", str(path), stamp, *rows)


def runtime_identity() -> str:
    """The interpreter (its Unicode tables normalise rule text) and the installed libraries a compile
    runs through: Lark (the parse), pint and ucumvert (thresholds converted at compile time), RE2."""
    return "|".join([sys.version, *(cache.installed_identity(p) for p in ("lark", "pint", "ucumvert", "re2"))])


def release_identity(paths) -> str:
    """A digest of release files (every file under each path: name and bytes), for a store built
    from them for one run: the same files give the same identity, whatever temporary file holds them."""
    parts: list[str | bytes] = ["release"]
    for path in paths:
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        parts.append(str(path.resolve()))
        for file in files:
            parts.append(str(file.relative_to(path)) if file != path else file.name)
            parts.append(_file_digest(file) or "?")
    return cache.digest(*parts)


def _file_digest(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _value_set_files(syntax, base: Path) -> list[str]:
    """The paths of the ``file "..."`` members of a parsed rule set, as the checker reads them."""
    from .ast import ValueSetFile

    found: list[str] = []
    stack, seen = [syntax], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ValueSetFile):
            found.append(str(base / node.path))
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            stack.extend(getattr(node, f.name) for f in dataclasses.fields(node))
    return sorted(set(found))


# ------------------------------------------------------------------ the cache
def checked_rule_set(text: str, name: str, terminology=None, base_dir=None):
    """``check(parse(text, name), terminology, base_dir)``, from the cache when nothing it depends on
    has changed (see the module's documentation); stored after a successful compile."""
    if not cache.enabled():
        from .check import check
        from .parser import parse

        return check(parse(text, name), terminology, base_dir)
    key = cache.digest(FORMAT, cache.code_identity(), runtime_identity(), name, text,
                       "" if base_dir is None else str(base_dir), terminology_identity(terminology))
    found = _load(key, terminology)
    if found is not None:
        return found
    from .check import check  # (imported only now: a cache hit needs neither Lark nor the checker)
    from .parser import parse

    syntax = parse(text, name)
    checked = check(syntax, terminology, base_dir)
    base = Path(base_dir) if base_dir is not None else Path(name).parent
    files = _value_set_files(syntax, base)
    try:
        data = encode_checked(checked, terminology)
    except (Uncacheable, RecursionError):
        return checked
    digests = [_file_digest(Path(f)) for f in files]
    if None not in digests:
        cache.write("ruleset", key, {"files": [[f, d] for f, d in zip(files, digests)], "ir": data})
    return checked


def _load(key: str, terminology):
    stored = cache.read("ruleset", key)
    if not isinstance(stored, dict) or set(stored) != {"files", "ir"} or not isinstance(stored["files"], list):
        return None
    for entry in stored["files"]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            return None
        if _file_digest(Path(entry[0])) != entry[1]:
            return None  # a value-set file changed (or is gone): compile again
    try:
        return decode_checked(stored["ir"], terminology)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
