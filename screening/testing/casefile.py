"""Case files: reading and validating them, and recording current results into them (golden mode).

A case file is YAML, read with ruamel.yaml in round-trip mode: it keeps comments and layout and
knows the line and column of every key and value, so every problem is reported as
``file:line:column`` with the source line and a caret, and ``--update`` can rewrite a verdict
in place without touching anything else in the file::

    trial: NCT00659217.crit          # the rule set, relative to this file
    as_of: 2026-11-25                # default screening date of every case
    cases:
      - name: p04 ALT 95 over 2 x ULN
        patient: ../patient_samples/p04_ineligible_alt_95_over_2x_uln.json
        decision: ineligible
        verdicts: {AGE: pass, E6: fail}
        explanation: {E6: ["over by 15 U/L"]}

Every problem of every file is collected before anything runs and raised as one
:class:`~screening.errors.SourceError` (the CLI exits 2): YAML syntax, unknown keys, unknown
criterion ids, verdict and decision words, malformed dates, missing or invalid patients (an
inline patient's problems point at the offending YAML value), duplicate case names.
"""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from ..compile import Trial, compile_trial
from ..dates import DateProblem, parse_date
from ..errors import DataError, Diagnostic, SourceError, UsageError
from ..patient.load import load_patient, patient_from_document
from ..patient.record import PatientRecord
from ..report import DECISIONS, VERDICTS, CriterionResult
from ..source import Source, Span

CASE_SUFFIXES = (".cases.yaml", ".cases.yml")
#: verdict words a case may expect; ``n/a`` is a pass because an ``applies if`` premise is false
VERDICT_WORDS = VERDICTS + ("n/a",)
TOP_KEYS = ("trial", "as_of", "terminology", "cases")
CASE_KEYS = ("name", "patient", "as_of", "terminology", "decision", "verdicts", "missing", "explanation")


# ---------------------------------------------------------------- verdict words
def verdict_label(result: CriterionResult) -> str:
    """The word a case file uses for a criterion's result: its verdict, or ``n/a`` when it does not apply."""
    return "n/a" if result.applicable is False else result.verdict


def verdict_matches(expected: str, result: CriterionResult) -> bool:
    """``pass`` accepts any pass (applicable or not); ``n/a`` only a pass because the criterion does not apply."""
    if expected == "n/a":
        return result.applicable is False
    return expected == result.verdict


def describe_verdict(result: CriterionResult) -> str:
    return "pass (does not apply)" if result.applicable is False else result.verdict


# ---------------------------------------------------------------- the model
@dataclass
class Expect:
    """One expectation as written: its value and where it is in the case file."""

    value: object
    span: Span


@dataclass(eq=False)
class Case:
    """One case: a patient, a screening date and what the author expects."""

    file: "CaseFile"
    index: int
    name: str
    span: Span
    patient: PatientRecord
    patient_label: str  # the path as written, or "inline patient <id>"
    as_of: date
    decision: Expect | None = None
    verdicts: dict[str, Expect] = field(default_factory=dict)
    missing: dict[str, Expect] = field(default_factory=dict)
    explanation: dict[str, Expect] = field(default_factory=dict)
    has_verdicts: bool = False  # the case has a `verdicts` key (possibly empty)
    node: CommentedMap | None = field(default=None, repr=False)
    own_trial: Trial | None = field(default=None, repr=False)  # compiled with the case's own `terminology`

    @property
    def trial(self) -> Trial:
        return self.own_trial or self.file.trial

    @property
    def location(self) -> str:
        return f"{self.file.display}:{self.span.line}"

    @property
    def nodeid(self) -> str:
        return f"{self.file.display}::{self.name}"

    def checks_anything(self) -> bool:
        return bool(self.decision or self.verdicts or self.missing or self.explanation)


@dataclass(eq=False)
class CaseFile:
    path: Path
    display: str
    source: Source
    trial: Trial | None
    trial_path: Path | None
    cases: list[Case]
    data: CommentedMap | None = field(default=None, repr=False)


# ---------------------------------------------------------------- YAML
class _Constructor(RoundTripConstructor):
    """Round-trip constructor that leaves dates as text: we parse them ourselves, with positions.

    (ruamel turns ``2026-11-25`` into a date, and ``2026-13-45`` into an exception without a
    position; patient JSON wants dates as strings anyway.)
    """


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", RoundTripConstructor.construct_yaml_str)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    return yaml


def plain(value):
    """A ruamel value as plain JSON-like Python (dict, list, str, int, float, bool, None)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _did_you_mean(word: str, candidates) -> str | None:
    lowered = {str(c).lower(): str(c) for c in candidates}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(f"`{lowered[c]}`" for c in close) + "?"


def _words(words) -> str:
    words = list(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


# ---------------------------------------------------------------- discovery
def is_case_file(path: Path) -> bool:
    return path.name.endswith(CASE_SUFFIXES)


def discover(paths) -> list[Path]:
    """Case files named by ``paths``: files as given, folders searched recursively for ``*.cases.yaml``."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            hits = sorted(p for p in path.rglob("*") if p.is_file() and is_case_file(p)
                          and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not hits:
                raise UsageError(f"{path}: no case files (*.cases.yaml) in this folder")
            found.extend(hits)
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    unique, seen = [], set()
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def display_name(path: Path) -> str:
    """A path as reports show it: relative to the working directory when it is below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


# ---------------------------------------------------------------- loading
_DEFAULT = object()


class Loader:
    """Reads case files; compiled rule sets, terminology stores and patient files are cached for the whole run.

    ``terminology``: the store for case files and cases that do not name one (``screening test
    --terminology``); by default none, so that a case file gives the same answers on every machine.
    """

    def __init__(self, terminology=None):
        self._trials: dict[tuple, Trial | SourceError | str] = {}
        self._patients: dict[Path, PatientRecord | DataError] = {}
        self._stores: dict[tuple, object] = {}
        self.default_terminology = terminology

    def trial(self, path: Path, store=_DEFAULT) -> Trial | SourceError | str:
        store = self.default_terminology if store is _DEFAULT else store
        key = (path.resolve(), id(store))
        if key not in self._trials:
            try:
                self._trials[key] = compile_trial(path, store)
            except SourceError as exc:
                self._trials[key] = exc
            except UsageError as exc:
                self._trials[key] = str(exc)
        return self._trials[key]

    def store(self, paths: tuple[Path, ...]):
        """A terminology store: an existing store file, or one built (once per run, in a temporary folder)
        from release folders and FHIR files, such as the small fixtures a case file keeps beside it."""
        key = tuple(p.resolve() for p in paths)
        if key not in self._stores:
            from ..terminology import TerminologyStore, open_release_files

            if len(paths) == 1 and paths[0].is_file() and paths[0].suffix.lower() not in (".json",):
                self._stores[key] = TerminologyStore.open(paths[0])
            else:
                self._stores[key] = open_release_files(list(paths))
        return self._stores[key]

    def patient(self, path: Path) -> PatientRecord:
        key = path.resolve()
        if key not in self._patients:
            try:
                self._patients[key] = load_patient(path)
            except DataError as exc:
                self._patients[key] = exc
        found = self._patients[key]
        if isinstance(found, DataError):
            raise found
        return found

    def load(self, path, allow_empty: bool = False) -> CaseFile:
        """Read and validate one case file; raises SourceError with every problem found."""
        return self.load_all([path], allow_empty)[0]

    def load_all(self, paths, allow_empty: bool = False) -> list[CaseFile]:
        """Read and validate case files; one SourceError lists the problems of all of them."""
        files, diagnostics = [], []
        reported: set[Path] = set()
        for path in paths:
            reader = _Reader(self, Path(path), allow_empty, reported)
            files.append(reader.read())
            # the rule set's own problems first, then this file's in the order of the file
            reader.diagnostics.sort(key=lambda d: (d.source is reader.source, d.span.line, d.span.column))
            diagnostics.extend(reader.diagnostics)
        if diagnostics:
            raise SourceError(diagnostics)
        return files


def load_case_file(path, allow_empty: bool = False) -> CaseFile:
    """Read and validate one case file with a fresh :class:`Loader`."""
    return Loader().load(path, allow_empty)


class _Reader:
    """Validates one case file, collecting diagnostics with positions."""

    def __init__(self, loader: Loader, path: Path, allow_empty: bool, reported: set[Path]):
        self.loader = loader
        self.path = path
        self.display = display_name(path)
        self.allow_empty = allow_empty
        self.reported = reported  # rule sets whose compile errors were already listed
        self.diagnostics: list[Diagnostic] = []
        self.source = Source(self.display, "")
        self.lines: list[str] = []

    # ------------------------------------------------------------ positions
    def error(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.source, span, hint))

    def _span(self, line0: int, col0: int, value=None) -> Span:
        """The span of a scalar token starting at (line0, col0), 0-based as ruamel gives them."""
        text = self.lines[line0] if 0 <= line0 < len(self.lines) else ""
        rest = text[col0:]
        width = 1
        if rest[:1] in ("'", '"'):
            quote, i = rest[0], 1
            while i < len(rest):
                if quote == '"' and rest[i] == "\\":
                    i += 2
                    continue
                if rest[i] == quote:
                    if quote == "'" and rest[i + 1:i + 2] == "'":
                        i += 2
                        continue
                    break
                i += 1
            width = min(i + 1, len(rest))
        elif isinstance(value, str) and value and rest.startswith(value):
            width = len(value)
        elif value is not None and not isinstance(value, (dict, list)):
            token = re.split(r"\s#|,\s|[}\]]|,$", rest, maxsplit=1)[0].rstrip()
            width = max(1, len(token))
        return Span(line0 + 1, col0 + 1, line0 + 1, col0 + 1 + width)

    def key_span(self, mapping: CommentedMap, key) -> Span:
        line0, col0 = mapping.lc.key(key)
        return self._span(line0, col0, str(key))

    def value_span(self, mapping: CommentedMap, key) -> Span:
        value = mapping[key]
        line0, col0 = mapping.lc.value(key)
        if isinstance(value, (CommentedMap, CommentedSeq)):
            line0, col0 = value.lc.line, value.lc.col
            if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
                line0, col0 = value.lc.key(next(iter(value)))
        return self._span(line0, col0, value)

    def item_span(self, seq: CommentedSeq, index: int) -> Span:
        line0, col0 = seq.lc.item(index)
        return self._span(line0, col0, seq[index])

    def node_span(self, node) -> Span:
        if isinstance(node, (CommentedMap, CommentedSeq)):
            return Span(node.lc.line + 1, node.lc.col + 1, node.lc.line + 1, node.lc.col + 2)
        return Span(1, 1, 1, 1)

    # ------------------------------------------------------------ reading
    def read(self) -> CaseFile:
        empty = CaseFile(self.path, self.display, self.source, None, None, [])
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{self.display}: cannot read case file: {exc}") from None
        text = text.removeprefix("\ufeff")  # a byte-order mark (Windows editors) is not YAML text
        self.source = Source(self.display, text)
        self.lines = text.splitlines()
        empty.source = self.source
        try:
            data = _yaml().load(text)
        except MarkedYAMLError as exc:
            mark, context = exc.problem_mark, exc.context_mark
            if mark is None or (context is not None and not self.source.line_text(mark.line + 1).strip()):
                mark = context  # the problem is at the end of the file: point at what was left open
            span = Span(mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2) if mark else Span(1, 1, 1, 1)
            message = exc.problem or exc.context or "syntax error"
            if exc.problem and exc.context and context is not None:
                message += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
            self.error("yaml", f"not valid YAML: {message}", span)
            return empty
        except (YAMLError, ValueError) as exc:
            self.error("yaml", f"not valid YAML: {exc}", Span(1, 1, 1, 1))
            return empty
        if not isinstance(data, CommentedMap):
            what = "empty" if data is None else "a list" if isinstance(data, list) else f"the value {plain(data)!r}"
            self.error("case-file", f"a case file is a mapping with `trial`, `as_of` and `cases`; this one is {what}",
                       self.node_span(data))
            return empty
        empty.data = data
        for key in data:
            if key not in TOP_KEYS:
                self.error("unknown-key", f"unknown key `{key}` in a case file (expected {_words(TOP_KEYS)})",
                           self.key_span(data, key), _did_you_mean(key, TOP_KEYS))
        self.file_store = self._terminology(data) if "terminology" in data else _DEFAULT
        trial, trial_path = self._trial(data)
        empty.trial, empty.trial_path = trial, trial_path
        self.top_as_of = "as_of" in data
        default_as_of = self._date(data, "as_of") if self.top_as_of else None
        if "cases" not in data:
            self.error("missing-key", "a case file needs `cases:`, a list of cases", self.node_span(data))
            return empty
        cases = data["cases"]
        if not isinstance(cases, CommentedSeq) or not cases:
            self.error("case-file", "`cases` must be a list of cases (`- name: ...`)", self.value_span(data, "cases"))
            return empty
        names: dict[str, int] = {}
        for index, node in enumerate(cases):
            case = self._case(empty, cases, index, node, default_as_of, trial, names)
            if case is not None:
                empty.cases.append(case)
        return empty

    def _trial(self, data: CommentedMap) -> tuple[Trial | None, Path | None]:
        if "trial" not in data:
            self.error("missing-key", "a case file needs `trial:`, the rule set's path relative to this file",
                       self.node_span(data))
            return None, None
        written = data["trial"]
        span = self.value_span(data, "trial")
        if not isinstance(written, str) or not written.strip():
            self.error("trial", "`trial` must be the path of a rule set (.crit), relative to this file", span)
            return None, None
        path = Path(os.path.normpath(self.path.parent / written))
        if not path.is_file():
            self.error("trial", f"rule set not found: {display_name(path)}", span)
            return None, None
        found = self.loader.trial(path, self.file_store)
        if isinstance(found, SourceError):
            if path.resolve() not in self.reported:
                self.reported.add(path.resolve())
                self.diagnostics.extend(found.diagnostics)
            self.error("trial", f"rule set {written} does not compile (its problems are listed)", span)
            return None, path
        if isinstance(found, str):
            self.error("trial", found, span)
            return None, path
        return found, path

    def _terminology(self, mapping: CommentedMap):
        """`terminology: none`, a store file, or release folders / FHIR files (one path or a list), relative
        to the case file -> an open store (None for none); problems are diagnostics (and no store)."""
        value = mapping["terminology"]
        span = self.value_span(mapping, "terminology")
        if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
            return None
        written = [value] if isinstance(value, str) else list(value) if isinstance(value, CommentedSeq) else None
        if not written or not all(isinstance(w, str) and w.strip() for w in written):
            self.error("terminology", "`terminology` is `none`, a terminology store file, or release folders and FHIR "
                       "files (a path or a list of paths), relative to this file", span)
            return None
        paths = tuple(Path(os.path.normpath(self.path.parent / w)) for w in written)
        for path in paths:
            if not path.exists():
                self.error("terminology", f"terminology not found: {display_name(path)}", span)
                return None
        from ..terminology.errors import TerminologyError

        try:
            return self.loader.store(paths)
        except TerminologyError as exc:
            self.error("terminology", f"cannot load the terminology: {exc}", span)
            return None

    def _date(self, mapping: CommentedMap, key: str) -> date | None:
        value = mapping[key]
        span = self.value_span(mapping, key)
        if not isinstance(value, str):
            self.error("date", f"`{key}` must be a date written YYYY-MM-DD, not {plain(value)!r}", span)
            return None
        try:
            return parse_date(value)
        except DateProblem as exc:
            self.error("date", f"malformed date in `{key}`: {exc}", span)
            return None

    # ------------------------------------------------------------ one case
    def _case(self, file: CaseFile, cases: CommentedSeq, index: int, node, default_as_of: date | None,
              trial: Trial | None, names: dict[str, int]) -> Case | None:
        item_span = self.item_span(cases, index)
        if not isinstance(node, CommentedMap):
            self.error("case", "a case is a mapping with `name`, `patient`, `decision`, `verdicts` ...", item_span)
            return None
        ok = True
        for key in node:
            if key not in CASE_KEYS:
                self.error("unknown-key", f"unknown key `{key}` in a case (expected {_words(CASE_KEYS)})",
                           self.key_span(node, key), _did_you_mean(key, CASE_KEYS))
                ok = False
        span = self.key_span(node, "name") if "name" in node else self.node_span(node)
        name = node.get("name")
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            name = str(name)
        if "name" not in node:
            self.error("missing-key", "a case needs a `name`", self.node_span(node))
            return None
        if not isinstance(name, str) or not name.strip():
            self.error("case", "a case's `name` must be text", self.value_span(node, "name"))
            return None
        name = name.strip()
        if name in names:
            self.error("duplicate", f"case name `{name}` is already used (line {names[name]})",
                       self.value_span(node, "name"))
            ok = False
        else:
            names[name] = span.line
        as_of = default_as_of
        if "as_of" in node:
            as_of = self._date(node, "as_of")
            ok = ok and as_of is not None
        elif not self.top_as_of:
            self.error("date", f"case `{name}` has no screening date: add `as_of: YYYY-MM-DD` to the case "
                       "or at the top of the file (results depend on the date)", span)
            ok = False
        if as_of is None:
            ok = False
        patient, label = self._patient(node, name)
        ok = ok and patient is not None
        decision = None
        if "decision" in node:
            decision = self._word(node, "decision", DECISIONS, "decision")
            ok = ok and decision is not None
        ids = [c.id for c in trial.criteria] if trial is not None else None
        verdicts = self._by_criterion(node, "verdicts", ids, self._verdict_value(trial))
        missing = self._by_criterion(node, "missing", ids, self._texts)
        explanation = self._by_criterion(node, "explanation", ids, self._texts)
        if None in (verdicts, missing, explanation):
            ok = False
        elif not self.allow_empty and not (decision or verdicts or missing or explanation) and "decision" not in node:
            self.error("empty-case", f"case `{name}` checks nothing: give a `decision` or `verdicts`", span,
                       "`screening test --update` records the current decision and verdicts into the file")
            ok = False
        own_trial = None
        if "terminology" in node and file.trial_path is not None:
            found = self.loader.trial(file.trial_path, self._terminology(node))
            if isinstance(found, Trial):
                own_trial = found
            else:
                self.error("trial", f"the rule set does not compile with this terminology: {found}",
                           self.value_span(node, "terminology"))
                ok = False
        if not ok or trial is None:
            return None
        return Case(file=file, index=index, name=name, span=span, patient=patient, patient_label=label,
                    as_of=as_of, decision=decision, verdicts=verdicts, missing=missing, explanation=explanation,
                    has_verdicts="verdicts" in node, node=node, own_trial=own_trial)

    def _word(self, mapping: CommentedMap, key: str, allowed, what: str) -> Expect | None:
        value = mapping[key]
        span = self.value_span(mapping, key)
        if not isinstance(value, str) or value not in allowed:
            shown = "nothing" if value is None else f"`{plain(value)}`"
            self.error(f"unknown-{what}", f"unknown {what} {shown}; expected {_words(allowed)}", span,
                       _did_you_mean(str(value), allowed) if value is not None else None)
            return None
        return Expect(value, span)

    def _verdict_value(self, trial: Trial | None):
        conditional = {c.id for c in trial.criteria if c.applies is not None} if trial is not None else None

        def check(mapping: CommentedMap, key: str) -> Expect | None:
            found = self._word(mapping, key, VERDICT_WORDS, "verdict")
            if found is not None and found.value == "n/a" and conditional is not None and key not in conditional:
                self.error("verdict", f"criterion {key} has no `applies if`: it always applies, so it cannot be n/a",
                           found.span)
                return None
            return found
        return check

    def _texts(self, mapping: CommentedMap, key: str) -> Expect | None:
        value = mapping[key]
        span = self.value_span(mapping, key)
        if isinstance(value, str):
            return Expect([value], span)
        if isinstance(value, CommentedSeq) and all(isinstance(v, str) for v in value):
            return Expect(list(value), span)
        if isinstance(value, CommentedSeq):
            for i, v in enumerate(value):
                if not isinstance(v, str):
                    self.error("text", f"expected text, not {plain(v)!r}", self.item_span(value, i))
            return None
        self.error("text", "expected a text or a list of texts", span)
        return None

    def _by_criterion(self, node: CommentedMap, key: str, ids, check) -> dict[str, Expect] | None:
        """A `{criterion id: expectation}` mapping; None when it has problems."""
        if key not in node:
            return {}
        mapping = node[key]
        if mapping is None:
            mapping = CommentedMap()
        if not isinstance(mapping, CommentedMap):
            self.error("case", f"`{key}` must be a mapping from criterion ids to expectations, "
                       f"e.g. `{key}: {{E6: ...}}`", self.value_span(node, key))
            return None
        found, ok = {}, True
        for cid in mapping:
            if ids is not None and str(cid) not in ids:
                self.error("unknown-criterion", f"unknown criterion id `{cid}` (the rule set has {', '.join(ids)})",
                           self.key_span(mapping, cid), _did_you_mean(str(cid), ids))
                ok = False
                continue
            expect = check(mapping, cid)
            if expect is None:
                ok = False
            else:
                found[str(cid)] = expect
        return found if ok else None

    # ------------------------------------------------------------ patients
    def _patient(self, node: CommentedMap, name: str) -> tuple[PatientRecord | None, str]:
        if "patient" not in node:
            self.error("missing-key", f"case `{name}` needs a `patient`: a path to a patient JSON or FHIR file, "
                       "or an inline patient", self.key_span(node, "name"))
            return None, ""
        value = node["patient"]
        span = self.value_span(node, "patient")
        if isinstance(value, str):
            path = Path(os.path.normpath(self.path.parent / value))
            if not path.is_file():
                self.error("patient", f"patient file not found: {display_name(path)}", span)
                return None, value
            try:
                return self.loader.patient(path), value
            except DataError as exc:
                for problem in exc.problems:
                    self.error("patient", f"patient {value} is not valid: {problem.path}: {problem.message}", span)
                return None, value
        if isinstance(value, CommentedMap):
            document = plain(value)
            if "resourceType" not in document and "id" not in document:
                document = {"id": name, **document}
            try:
                record = patient_from_document(document, f"{self.display}:{span.line}")
            except DataError as exc:
                for problem in exc.problems:
                    at, hint = self._json_path(value, problem.path, problem.code)
                    self.error("patient", f"inline patient: {problem.path}: {problem.message}", at, hint)
                return None, ""
            return record, f"inline patient {record.id}"
        self.error("patient", "`patient` must be a path to a patient file or an inline patient mapping", span)
        return None, ""

    def _json_path(self, root: CommentedMap, path: str, code: str) -> tuple[Span, str | None]:
        """The position of a JSON path (``$.observations[2].date``) inside an inline patient."""
        current, span = root, self.node_span(root)
        parts = [(m.group(1), m.group(2)) for m in _PATH_PART.finditer(path[1:] if path.startswith("$") else path)]
        hint = None
        for i, (key, number) in enumerate(parts):
            last = i == len(parts) - 1
            if key is not None and isinstance(current, CommentedMap) and key in current:
                span = self.key_span(current, key) if (last and code == "extra_forbidden") else self.value_span(current, key)
                current = current[key]
            elif number is not None and isinstance(current, CommentedSeq) and int(number) < len(current):
                span = self.item_span(current, int(number))
                current = current[int(number)]
            else:
                break
        else:
            if isinstance(current, (int, float, bool)) and code in ("string_type", "value_error"):
                kind = "true/false" if isinstance(current, bool) else "a number"
                hint = f"YAML reads `{current}` as {kind}; quote it to make it text: \"{current}\""
        return span, hint


# ---------------------------------------------------------------- golden updates
@dataclass
class Recorded:
    """What ``--update`` records for one case: the actual decision and verdict words."""

    case: Case
    decision: str
    verdicts: dict[str, str]  # every criterion id -> verdict word (n/a when it does not apply)
    matches: dict[str, bool]  # criterion id -> does the case's current expectation accept the result


@dataclass
class Change:
    case: Case
    what: str  # e.g. "E6: pass -> fail", "decision: added ineligible"


def rewrite(file: CaseFile, recorded: list[Recorded]) -> tuple[str, list[Change]]:
    """The case file's text with the recorded results written in, and the list of changes.

    Existing values are replaced in place, token by token, so comments, quoting and layout stay
    as they were. A case that checks nothing yet (a name and a patient) gets `decision` and
    `verdicts` for every criterion, as new lines at the end of the case (inside the braces for
    a `- {...}` case). Nothing else in the file changes.
    """
    text = file.source.text
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    replacements: list[tuple[int, int, int, str]] = []
    insertions: dict[int, list[str]] = {}
    changes: list[Change] = []
    for rec in recorded:
        case = rec.case
        added: list[str] = []
        if case.decision is not None and case.decision.value != rec.decision:
            replacements.append(_replacement(case.decision.span, rec.decision, lines))
            changes.append(Change(case, f"decision: {case.decision.value} -> {rec.decision}"))
        for cid, expect in case.verdicts.items():
            if not rec.matches[cid]:
                replacements.append(_replacement(expect.span, rec.verdicts[cid], lines))
                changes.append(Change(case, f"{cid}: {expect.value} -> {rec.verdicts[cid]}"))
        if not case.checks_anything():  # a new case: record the decision and every verdict
            if case.decision is None:
                added.append(f"decision: {rec.decision}")
                changes.append(Change(case, f"decision: added {rec.decision}"))
            if not case.has_verdicts:
                added.append("verdicts:")
                added.extend(f"  {cid}: {word}" for cid, word in rec.verdicts.items())
                changes.append(Change(case, "verdicts: added " + ", ".join(f"{c} {w}" for c, w in rec.verdicts.items())))
        if added and case.node.fa.flow_style():  # `- {name: x, patient: y}`: add inside the braces
            line0, col0 = _flow_end(lines, *file.data["cases"].lc.item(case.index))
            entries = [f"decision: {rec.decision}"] if case.decision is None else []
            if not case.has_verdicts:
                entries.append("verdicts: {" + ", ".join(f"{c}: {w}" for c, w in rec.verdicts.items()) + "}")
            replacements.append((line0, col0, col0, ", " + ", ".join(entries)))
        elif added:
            after = _case_end(file, case, lines)
            indent = " " * case.node.lc.col
            insertions.setdefault(after, []).extend(indent + line + newline for line in added)
    for line0, start, end, word in sorted(replacements, reverse=True):
        lines[line0] = lines[line0][:start] + word + lines[line0][end:]
    for after in sorted(insertions, reverse=True):
        lines[after + 1:after + 1] = insertions[after]
    new_text = "".join(lines)
    if not text.endswith(("\n", "\r")) and new_text.endswith(newline):
        new_text = new_text[: -len(newline)]
    return new_text, changes


def _replacement(span: Span, word: str, lines: list[str]) -> tuple[int, int, int, str]:
    """Replace a scalar token (always on one line), keeping its quotes if it had them."""
    line0, start, end = span.line - 1, span.column - 1, span.end_column - 1
    token = lines[line0][start:end]
    if len(token) >= 2 and token[0] in "'\"" and token[-1] == token[0]:
        word = token[0] + word + token[0]
    return line0, start, end, word


def _case_end(file: CaseFile, case: Case, lines: list[str]) -> int:
    """The 0-based line of a case's last content line (comments and blank lines after it excluded)."""
    cases = file.data["cases"]
    if case.index + 1 < len(cases):
        boundary = cases.lc.item(case.index + 1)[0]
    else:
        later = [file.data.lc.key(k)[0] for k in file.data if file.data.lc.key(k)[0] > cases.lc.item(case.index)[0]]
        boundary = min(later) if later else len(lines)
    line = boundary - 1
    start = case.node.lc.line
    while line > start:
        stripped = lines[line].strip()
        if stripped and not stripped.startswith("#") and stripped != "-":
            break
        line -= 1
    return line


def _flow_end(lines: list[str], line0: int, col0: int) -> tuple[int, int]:
    """The position of the `}` closing the flow mapping that starts at (line0, col0)."""
    depth, quote, previous = 0, None, "{"
    for line in range(line0, len(lines)):
        text = lines[line]
        col = col0 if line == line0 else 0
        while col < len(text):
            ch = text[col]
            if quote:
                if ch == "\\" and quote == '"':
                    col += 1
                elif ch == quote:
                    quote = None
                col += 1
                continue
            if ch in "'\"" and previous in "{[,:":  # a quote opens a scalar only at its start
                quote = ch
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    return line, col
            if not ch.isspace():
                previous = ch
            col += 1
    raise ValueError("unclosed flow mapping")  # cannot happen: the file was parsed
