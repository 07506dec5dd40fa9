"""Read patients from JSON text, files and NDJSON streams; FHIR R4 is detected and converted.

Every failure is a :class:`~screening.errors.DataError` that names the file and the JSON path
(or line and column for text that is not JSON at all).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from pydantic import ValidationError

from ..errors import DataError, DataProblem
from .fhir import FhirError, fhir_to_patient, is_fhir
from .model import Patient
from .record import PatientRecord, index_patient


def json_path(loc: tuple) -> str:
    """A pydantic ``loc`` tuple as a JSON path: ('observations', 2, 'date') -> $.observations[2].date."""
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _problems(exc: ValidationError) -> list[DataProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "constrained-"))))
        # pydantic reports union members (int/float/bool/str) as separate path parts; drop them
        loc = tuple(p for p in loc if p not in ("int", "float", "bool", "str", "StrictInt", "StrictFloat"))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (not part of patient JSON version 1)"
        elif err["type"] == "missing":
            message = "required field is missing"
        problems.append(DataProblem(json_path(loc), message, err["type"]))
    # one message per path: unions produce one error per member type
    seen, unique = set(), []
    for p in problems:
        if p.path not in seen:
            seen.add(p.path)
            unique.append(p)
    return unique


# ---------------------------------------------------------------- limits of a document
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""The largest patient document (a file, an NDJSON line, a text) read, in bytes: 64 MiB."""
MAX_DEPTH = 64
"""The deepest nesting of objects and arrays accepted (the top-level object is level 1)."""
MAX_PROBLEMS = 20
"""Problems of one kind reported per document (the rest are counted in one more line)."""
MAX_VALUES = 32 * 1024 * 1024
"""Values walked in a document given as Python objects (as many as 64 MiB of JSON can hold)."""

_MIB = 1024 * 1024


def size_problem(size: int, what: str = "file") -> DataProblem:
    """The problem of a document larger than :data:`MAX_DOCUMENT_BYTES`."""
    return DataProblem("$", f"{what} is {_size(size)}, larger than the limit of {_size(MAX_DOCUMENT_BYTES)} "
                            "for one patient document; it was not read", "too-large")


def _size(n: int) -> str:
    return f"{n / _MIB:,.0f} MiB" if n >= _MIB else f"{n:,} bytes"


@dataclass
class JsonProblem(DataProblem):
    """A problem at a position of JSON text (syntax, nesting), with its line within the text."""

    line: int | None = None


# ---------------------------------------------------------------- reading JSON text
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r'[^\[\]{}"]+')
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}"]', re.S)
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _too_deep(text: str) -> int | None:
    """The offset of the first bracket nested deeper than MAX_DEPTH, or None. Linear, strings skipped."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    quote = brackets.find('"')  # an unterminated string: the JSON parser reports it
    if quote >= 0:
        brackets = brackets[:quote]
    if max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) <= MAX_DEPTH:
        return None
    depth = 0
    for match in _TOKEN.finditer(text):  # only for a document that is refused: find where
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return match.start()
        elif token in "]}":
            depth -= 1
        elif token == '"':
            return None
    return None


class _Refused:
    """What the JSON reader puts in place of a literal that is not a finite number."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


class _Duplicates(dict):
    """An object in which some key appeared more than once (the last value is kept)."""

    __slots__ = ("duplicates",)


def _shown(literal: str) -> str:
    return literal if len(literal) <= 24 else f"{literal[:12]}...{literal[-6:]} ({len(literal):,} characters)"


def _decoder(flags: list) -> json.JSONDecoder:
    """A JSON decoder that marks NaN, Infinity, numbers overflowing a float and duplicate keys."""
    def constant(literal: str):
        flags.append(literal)
        return _Refused(f"{literal} is not a number: patient JSON takes finite numbers only")

    def real(literal: str):
        value = float(literal)
        if value in (_INF, -_INF):
            flags.append(literal)
            return _Refused(f"{_shown(literal)} is too large to be a number (it overflows to infinity)")
        return value

    def integer(literal: str):
        if len(literal) <= 300:  # 10**300 fits a float; longer literals are checked
            return int(literal)
        if len(literal.lstrip("-")) <= 310:
            value = int(literal)
            try:
                float(value)
                return value
            except OverflowError:
                pass
        flags.append(literal)
        return _Refused(f"{_shown(literal)} is too large to be a number (it overflows to infinity)")

    def pairs(items: list):
        obj = dict(items)
        if len(obj) == len(items):
            return obj
        flags.append("duplicate")
        marked = _Duplicates(obj)
        seen: set = set()
        marked.duplicates = [k for k, _ in items if k in seen or seen.add(k)]
        return marked

    return json.JSONDecoder(parse_constant=constant, parse_float=real, parse_int=integer, object_pairs_hook=pairs)


_INF = float("inf")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
"""A \\uD800-\\uDFFF escape in JSON text: half of a UTF-16 pair, which is text only when paired."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_problem(text: str) -> str | None:
    """Why a string that holds a lone surrogate (JSON allows ``"\\ud800"``; no file or report can hold it) is
    not text, or None."""
    if text.isascii():
        return None
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (f"not valid Unicode text: a lone surrogate \\u{ord(found.group()):04x} (half of a UTF-16 pair) at "
            f"character {found.start() + 1}")


def _position(text: str, offset: int, one_line: bool) -> tuple[str, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return (f"column {column}" if one_line else f"line {line} column {column}"), line


def parse_json(text: str, name: str, *, one_line: bool = False):
    """Parse the JSON text of one patient document; every problem is a DataError.

    Refused: text longer than :data:`MAX_DOCUMENT_BYTES` characters, nesting deeper than
    :data:`MAX_DEPTH` (at line:column), syntax errors (at line:column), and, at their JSON path,
    ``NaN``/``Infinity``/``-Infinity``, numbers that overflow to infinity (``1e999``) and
    duplicate keys. ``one_line``: the text is one line of an NDJSON file (positions are columns).
    """
    if len(text) > MAX_DOCUMENT_BYTES:  # characters: at least as many bytes
        raise DataError(name, [DataProblem("$", f"{'line' if one_line else 'text'} is {len(text):,} characters, more "
                                                f"than the limit of {_size(MAX_DOCUMENT_BYTES)} for one patient "
                                                "document; it was not read", "too-large")])
    deep = _too_deep(text)
    if deep is not None:
        where, line = _position(text, deep, one_line)
        raise DataError(name, [JsonProblem(where, f"nested more than {MAX_DEPTH} levels deep (the limit for a "
                                                  "patient document)", "too-deep", line)])
    flags: list = []
    try:
        document = _decoder(flags).decode(text)
    except json.JSONDecodeError as exc:
        where = f"column {exc.colno}" if one_line else f"line {exc.lineno} column {exc.colno}"
        raise DataError(name, [JsonProblem(where, f"not valid JSON: {exc.msg}", "json", exc.lineno)]) from None
    except RecursionError:  # cannot happen below MAX_DEPTH; a last resort all the same
        raise DataError(name, [JsonProblem("$", f"nested too deep (the limit is {MAX_DEPTH} levels)",
                                           "too-deep")]) from None
    if not flags and "\\u" in text and _SURROGATE_ESCAPE.search(text):
        flags.append("surrogate")  # most such escapes are pairs (emoji ...): the walk looks for the lone ones
    if flags:
        problems = document_problems(document)
        if problems:
            raise DataError(name, problems)
    return document


# ---------------------------------------------------------------- documents as Python objects
def _key_path(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def document_problems(document) -> list[DataProblem]:
    """Everything in a parsed document that is not plain, finite JSON, each at its JSON path.

    One iterative walk (no recursion), at most :data:`MAX_VALUES` values: nesting deeper than
    :data:`MAX_DEPTH`, NaN and infinite floats, integers too large for a float, duplicate keys
    (from :func:`parse_json`), keys that are not strings, values that are not JSON.
    """
    problems: list[DataProblem] = []
    more = 0

    def add(path: str, message: str, code: str) -> None:
        nonlocal more
        if len(problems) < MAX_PROBLEMS:
            problems.append(DataProblem(path, message, code))
        else:
            more += 1

    stack = [(document, "$", 1)]
    walked = 0
    while stack:
        value, path, depth = stack.pop()
        walked += 1
        if walked > MAX_VALUES:
            add("$", f"more than {MAX_VALUES:,} values (the limit for a patient document)", "too-large")
            break
        kind = type(value)
        if kind is str:
            why = _surrogate_problem(value)
            if why is not None:
                add(path, why, "not-unicode")
            continue
        if value is None or kind is bool:
            continue
        if kind is float or isinstance(value, float):
            if value != value or value in (_INF, -_INF):
                shown = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
                add(path, f"{shown} is not a number: patient JSON takes finite numbers only", "not-finite")
            continue
        if isinstance(value, int):
            if value.bit_length() > 1023:
                try:
                    float(value)
                except OverflowError:
                    add(path, f"an integer of {value.bit_length():,} bits is too large to be a number "
                              "(it overflows to infinity)", "not-finite")
            continue
        if isinstance(value, _Refused):
            add(path, value.message, "not-finite")
            continue
        if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
            add(path, f"nested more than {MAX_DEPTH} levels deep (the limit for a patient document)", "too-deep")
            continue
        if isinstance(value, dict):
            for key in getattr(value, "duplicates", ()):
                add(_key_path(path, key), f"duplicate key {key!r}: a JSON object may give each key once",
                    "duplicate-key")
            children = []
            for key, item in value.items():
                if not isinstance(key, str):
                    add(path, f"key {key!r} is not a string", "not-json")
                    continue
                why = _surrogate_problem(key)
                if why is not None:
                    add(path, f"key {json.dumps(key)}: {why}", "not-unicode")
                    continue
                children.append((item, _key_path(path, key), depth + 1))
            stack.extend(reversed(children))
            continue
        if isinstance(value, (list, tuple)):
            stack.extend(reversed([(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]))
            continue
        add(path, f"not a JSON value (a Python {type(value).__name__})", "not-json")
    if more:
        problems.append(DataProblem("$", f"... and {more:,} more problems of this document", "more"))
    return problems


def patient_from_document(document, name: str = "<patient>") -> PatientRecord:
    """Validate a parsed patient JSON (or FHIR) document and index it.

    The document is first walked for what JSON text could not hold (see :func:`document_problems`):
    NaN and infinite numbers, integers too large for a float, nesting deeper than :data:`MAX_DEPTH`.
    """
    problems = document_problems(document)
    if problems:
        raise DataError(name, problems)
    return _validated(document, name)


def _validated(document, name: str) -> PatientRecord:
    """A document already known to be plain, finite JSON (from :func:`parse_json`) -> record."""
    return index_patient(validated_model(document, name), source=name)


def validated_model(document, name: str) -> Patient:
    """A document already known to be plain, finite JSON -> the validated patient JSON model (FHIR converted);
    every refusal a DataError with the message ``check`` gives (the population loader refuses with it too)."""
    if is_fhir(document):
        try:
            document, _report = fhir_to_patient(document)
        except FhirError as exc:
            raise DataError(name, [DataProblem(exc.path, exc.message, "fhir")]) from None
    elif isinstance(document, dict) and "resourceType" in document:
        raise DataError(name, [DataProblem("$.resourceType", f"FHIR resource type {document['resourceType']!r} "
                                           "is not a Bundle or Patient", "fhir")])
    if not isinstance(document, dict):
        raise DataError(name, [DataProblem("$", f"a patient must be a JSON object, not {type(document).__name__}")])
    try:
        return Patient.model_validate(document)
    except ValidationError as exc:
        raise DataError(name, _problems(exc)) from None


def patient_from_text(text: str, name: str = "<patient>", *, one_line: bool = False) -> PatientRecord:
    """Parse (see :func:`parse_json`), validate and index the JSON text of one patient document."""
    return _validated(parse_json(text, name, one_line=one_line), name)


def read_document_text(path: str | Path) -> str:
    """The text of a patient file, refused before reading when larger than :data:`MAX_DOCUMENT_BYTES`."""
    path = Path(path)
    try:
        with path.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size > MAX_DOCUMENT_BYTES:
                raise DataError(str(path), [size_problem(size)])
            raw = stream.read(MAX_DOCUMENT_BYTES + 1)  # a file that grows while read is still bounded
    except OSError as exc:
        raise DataError(str(path), [DataProblem("$", f"cannot read file: {exc.strerror}", "io")]) from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DataError(str(path), [size_problem(len(raw))])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(str(path), [DataProblem("$", "file is not UTF-8 text", "io")]) from None
    return text


def load_patient(path: str | Path) -> PatientRecord:
    """Load one patient from a JSON file (patient JSON version 1 or FHIR R4)."""
    return patient_from_text(read_document_text(path), str(path))


def load_patients(paths) -> list[PatientRecord]:
    """Load several patient files."""
    return [load_patient(p) for p in paths]
