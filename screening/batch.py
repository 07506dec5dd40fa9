"""`screening batch`: screen many patients against one or more trials, streaming results to files.

The user-facing description (inputs, outputs, resume, exit status, figures) is docs/batch.md.
How it works:

* an *input* (:class:`NdjsonInput` for ``.ndjson``/``.jsonl`` files, :class:`FilesInput` for a
  folder or a single ``.json`` file) yields *chunks* of raw records lazily, each record
  ``(key, line, raw bytes or None, file path or None)``, each chunk with the input *position*
  reached after it (a byte offset and line number, or a count of files);
* a :class:`Screener` (one per worker process, built by the pool initializer from the rule
  files' text) turns a chunk into bytes for results.jsonl and summary.csv, error entries and a
  small :func:`tally <new_tally>`; nothing about a patient outlives its chunk;
* the parent submits chunks to a process pool with at most ``2 x workers`` chunks in flight,
  takes the outputs back in input order, appends them to the output files and merges the tallies;
* about once a second it flushes and fsyncs the outputs and atomically rewrites
  ``progress.json``: the run's identity (input, trial files and their SHA-256, as-of date), the
  input position, the output file sizes and the merged tallies. Resuming truncates every output
  to its checkpointed size and continues from the checkpointed position, so no result is
  duplicated or lost.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

from rich.console import Console

from .compile import Trial, compile_text, read_rule_file
from .errors import DataError, DataProblem, ScreeningError, UsageError
from .patient.load import MAX_DOCUMENT_BYTES, JsonProblem, patient_from_text, size_problem
from .report import DECISIONS
from .reports.worklist import row_from_result as worklist_row

RESULTS, SUMMARY, ERRORS, PROGRESS = "results.jsonl", "summary.csv", "errors.jsonl", "progress.json"
OUTPUTS = (RESULTS, SUMMARY, ERRORS)
NDJSON_SUFFIXES = (".ndjson", ".jsonl")
CHUNK_RECORDS = 64            # patient records per chunk sent to a worker
IN_FLIGHT_PER_WORKER = 2      # chunks submitted but not yet written, per worker
CHECKPOINT_SECONDS = 1.0      # at most this long between checkpoints (and at the end)
STDERR_ERRORS = 100           # bad records echoed on stderr; all of them go to errors.jsonl
PLAIN_PROGRESS_SECONDS = 60   # a progress line this often when the output is not a terminal
PROGRESS_VERSION = 2  # 2: summary.csv has the worklist columns and n/a; the tally groups missing items
MISSING_ITEMS = 200           # distinct missing-data items counted per trial; the rest go to OTHER_MISSING
OTHER_MISSING = "(other missing data)"
CSV_FIXED = ("input", "patient", "label", "trial", "as_of", "decision", "items_missing", "deciding", "to_obtain",
             "review_questions")
NOT_APPLICABLE = "n/a"  # summary.csv: a criterion that does not apply (its verdict in results.jsonl is "pass")


# ============================================================================ trials
@dataclass
class TrialFile:
    """A rule file as read for this run: its text (what the workers compile) and its hash."""

    path: Path
    text: str
    sha256: str
    trial: Trial

    @property
    def name(self) -> str:
        return str(self.path)


def open_store(path: str | Path | None):
    """The terminology store at ``path`` (each process opens its own), or None."""
    if path is None:
        return None
    from .terminology.store import TerminologyStore

    return TerminologyStore.open(path)


def load_trials(paths: list[Path], terminology: Path | None = None) -> list[TrialFile]:
    """Read and compile every rule file once (errors as :func:`screening.compile.compile_trial`), the checked
    rule set taken from the per-user cache when nothing it depends on has changed (docs/caching.md)."""
    loaded: list[TrialFile] = []
    store = open_store(terminology)
    for path in map(Path, paths):
        raw = read_rule_file(path)
        text = raw.decode("utf-8")
        trial = compile_text(text, str(path), store, use_cache=True)
        loaded.append(TrialFile(path, text, hashlib.sha256(raw).hexdigest(), trial))
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.trial.id in seen:
            raise UsageError(f"{item.path}: trial {item.trial.id!r} is also defined by {seen[item.trial.id]}; "
                             "each trial may be given once")
        seen[item.trial.id] = item.path
    return loaded


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A summary.csv cell that spreadsheets will not run as a formula (OWASP CSV injection advice):
    text beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_row(cells) -> list[str]:
    return [csv_cell(str(cell)) for cell in cells]


def csv_line(cells) -> str:
    """One summary.csv row (cells already through :func:`csv_row`) ending in ``\n``. Written with ``\r\n`` line
    ends so that Python's csv module quotes a cell holding a carriage return too (it quotes only the characters of
    its line terminator), as DuckDB's CSV writer does; the row's own ``\r\n`` is then made ``\n``."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\r\n").writerow(cells)
    return text.getvalue()[:-2] + "\n"


def csv_header(trials: list[Trial]) -> list[str]:
    """``input, patient, label, trial, as_of, decision, items_missing, deciding, to_obtain,
    review_questions`` (the worklist's columns, docs/worklist.md), then one column per criterion
    with its verdict, or ``n/a`` for a criterion that does not apply.

    With one trial the criterion columns are the criterion ids; with several they are
    ``TRIAL:ID`` in trial order, and a row fills only its own trial's columns. A draft rule's
    column is marked ``(draft)`` so the flag survives into spreadsheets.
    """
    header = list(CSV_FIXED)
    for trial in trials:
        for criterion in trial.criteria:
            name = criterion.id if len(trials) == 1 else f"{trial.id}:{criterion.id}"
            header.append(f"{name} (draft)" if criterion.draft else name)
    return header


_LOCKS: dict[str, object] = {}
"""The output folders this process writes, each with its open ``.lock`` file (held until the process ends)."""


def make_out_dir(out_dir: Path) -> None:
    """Create a run's output folder (and its parents) and take its lock: a folder that cannot be made, or that
    another run is writing to (two runs would interleave their checkpoints and files), is a UsageError."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot create the output folder: {exc.strerror}") from None
    key = str(out_dir.resolve())
    if key in _LOCKS:
        return
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock
        return
    try:
        stream = (out_dir / ".lock").open("a")
    except OSError as exc:
        raise UsageError(f"{out_dir}: cannot write in the output folder: {exc.strerror}") from None
    try:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        stream.close()
        raise UsageError(f"{out_dir}: another screening batch is writing to this folder; wait for it to end, or "
                         "give another --out") from None
    _LOCKS[key] = stream


# ============================================================================ inputs
@dataclass
class Chunk:
    records: list       # [(key, line, raw bytes | None, file path | None)]
    position: dict      # the input position after the last record of this chunk


class NdjsonInput:
    """One patient document (patient JSON or a FHIR Bundle/Patient) per line. Blank lines are skipped."""

    kind = "ndjson"

    def __init__(self, path: Path, display: str):
        self.path, self.display = path, display

    def identity(self) -> dict:
        stat = self.path.stat()
        return {"kind": self.kind, "path": str(self.path.resolve()), "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns}

    def start(self) -> dict:
        return {"offset": 0, "line": 0}

    def total(self) -> int | None:
        return self.path.stat().st_size

    @staticmethod
    def done(position: dict) -> int:
        return position["offset"]

    def chunks(self, position: dict, size: int) -> Iterator[Chunk]:
        offset, line = position["offset"], position["line"]
        reported = (offset, line)
        records: list = []
        with self.path.open("rb") as stream:
            stream.seek(offset)
            for raw in _lines(stream):
                offset += raw.size if isinstance(raw, Oversized) else len(raw)
                line += 1
                if isinstance(raw, Oversized) or raw.strip():
                    records.append((f"{self.display}:{line}", line, raw, None))
                    if len(records) >= size:
                        yield Chunk(records, {"offset": offset, "line": line})
                        records, reported = [], (offset, line)
        if records or (offset, line) != reported:  # the last records, or trailing blank lines
            yield Chunk(records, {"offset": offset, "line": line})


@dataclass
class Oversized:
    """In place of an NDJSON line longer than MAX_DOCUMENT_BYTES: its size (newline included); never held."""

    size: int


def _lines(stream) -> Iterator:
    """The lines of a binary stream, each as bytes, or :class:`Oversized` when longer than the limit
    (skipped 1 MiB at a time, so memory stays bounded whatever the input)."""
    while True:
        raw = stream.readline(MAX_DOCUMENT_BYTES + 1)
        if not raw:
            return
        if len(raw) <= MAX_DOCUMENT_BYTES or raw.endswith(b"\n"):  # at most the limit before the newline
            yield raw
            continue
        size = len(raw)
        del raw
        while True:
            part = stream.readline(1024 * 1024)
            size += len(part)
            if not part or part.endswith(b"\n"):
                break
        yield Oversized(size)


class FilesInput:
    """A folder of ``*.json`` files (recursive, sorted by name, hidden entries skipped), or one file."""

    def __init__(self, path: Path, display: str, exclude: Path | None = None):
        self.path, self.display = path, display
        self.single = not path.is_dir()
        self.kind = "file" if self.single else "folder"
        self.exclude = exclude.resolve() if exclude is not None else None

    def identity(self) -> dict:
        identity = {"kind": self.kind, "path": str(self.path.resolve())}
        if self.single:
            stat = self.path.stat()
            identity.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns)
        return identity

    def start(self) -> dict:
        return {"files": 0, "last": None}

    def total(self) -> int | None:
        return 1 if self.single else None

    @staticmethod
    def done(position: dict) -> int:
        return position["files"]

    def files(self) -> Iterator[str]:
        if self.single:
            yield self.display
            return
        yield from self._walk(self.path, self.display)

    def _walk(self, folder: Path, shown: str) -> Iterator[str]:
        # one directory listing (names only) is held at a time
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            raise UsageError(f"{shown}: cannot list folder: {exc.strerror}") from None
        for name in names:
            if name.startswith("."):
                continue
            child = folder / name
            if child.is_dir():
                if not child.is_symlink() and child.resolve() != self.exclude:
                    yield from self._walk(child, os.path.join(shown, name))
            elif name.lower().endswith(".json") and child.is_file():
                yield os.path.join(shown, name)

    def chunks(self, position: dict, size: int) -> Iterator[Chunk]:
        files = self.files()
        count, last = 0, None
        for _ in range(position["files"]):
            last = next(files, None)
            if last is None:
                break
            count += 1
        if count != position["files"] or last != position["last"]:
            raise UsageError(f"{self.display}: the patient files changed since the interrupted run (file "
                             f"{position['files']} was {position['last']!r}, now {last!r}); use --restart")
        records: list = []
        for key in files:
            count += 1
            records.append((key, None, None, key))
            if len(records) >= size:
                yield Chunk(records, {"files": count, "last": key})
                records = []
        if records:
            yield Chunk(records, {"files": count, "last": records[-1][0]})


def open_input(patients: Path, out_dir: Path):
    if not patients.exists():
        raise UsageError(f"{patients}: no such file or folder")
    if patients.is_dir():
        if out_dir.resolve() == patients.resolve():
            raise UsageError(f"{out_dir}: --out must not be the --patients folder itself (use a subfolder or "
                             "another folder)")
        return FilesInput(patients, str(patients), exclude=out_dir)
    suffix = patients.suffix.lower()
    if suffix in NDJSON_SUFFIXES:
        return NdjsonInput(patients, str(patients))
    if suffix == ".json":
        return FilesInput(patients, str(patients))
    raise UsageError(f"{patients}: --patients takes a folder, an NDJSON file (.ndjson or .jsonl) "
                     "or a single .json file")


# ============================================================================ tallies
def new_tally() -> dict:
    """Counts merged from chunk to chunk (and kept in progress.json); never per-patient data."""
    return {"records": 0, "bad": 0, "pairs": 0, "trials": {}}


def _trial_tally(tally: dict, trial_id: str) -> dict:
    entry = tally["trials"].get(trial_id)
    if entry is None:
        entry = tally["trials"][trial_id] = {"decisions": {}, "fail": {}, "missing": {}, "items": {}, "names": {}}
    entry.setdefault("items", {})  # (a checkpoint written before missing items were grouped)
    entry.setdefault("names", {})
    return entry


def item_key(item) -> str:
    """A missing item's group in the tally: ``KIND CODE`` (``lab LOINC:1742-6``, ``fact x``); a review by
    its criterion, a record by its code (dates and sentences play no part)."""
    return f"{item.kind} {item.code}"


def item_name(item) -> str:
    """How the tally names a group: the item's name and window (``ALT within 3 months``)."""
    return f"{item.name} {item.window}" if item.window else item.name


def _bump(counts: dict, key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


_DATED = re.compile(r" (?:of|on) (?:\d{4}(?:-\d{2}){0,2}|undated)\b")


def missing_key(item: str) -> str:
    """A missing-data item as counted in the summary: "ALT result of 2026-11-25: ..." -> "ALT result: ..."."""
    return _DATED.sub("", item)


def merge_tally(into: dict, other: dict) -> None:
    """Add ``other`` into ``into``. Missing-data items are capped at MISSING_ITEMS per trial, so that
    data-dependent texts (units, codes) cannot make the tally grow with the input."""
    for key in ("records", "bad", "pairs"):
        into[key] += other[key]
    for trial_id, part in other["trials"].items():
        entry = _trial_tally(into, trial_id)
        for group in ("decisions", "fail"):
            for key, n in part[group].items():
                _bump(entry[group], key, n)
        missing = entry["missing"]
        for key, n in part["missing"].items():
            if key not in missing and len(missing) >= MISSING_ITEMS:
                key = OTHER_MISSING
            _bump(missing, key, n)
        items, names = entry["items"], entry["names"]
        for key, n in part.get("items", {}).items():
            if key not in items and len(items) >= MISSING_ITEMS:
                key = OTHER_MISSING
            _bump(items, key, n)
            if key != OTHER_MISSING and key not in names:
                names[key] = part.get("names", {}).get(key, key)


# ============================================================================ the worker side
class Screener:
    """Parses, validates and screens the records of a chunk; returns everything as bytes and counts."""

    def __init__(self, trials: list[Trial], as_of: date):
        self.trials, self.as_of = trials, as_of
        self.as_of_text = as_of.isoformat()
        self.width = sum(len(t.criteria) for t in trials)
        self.offsets, offset = [], 0
        for trial in trials:
            self.offsets.append(offset)
            offset += len(trial.criteria)

    def load(self, key: str, line: int | None, raw: bytes | None, path: str | None):
        if isinstance(raw, Oversized):
            raise DataError(key, [size_problem(raw.size, "line")])
        if raw is None:
            try:
                with open(path, "rb") as stream:
                    size = os.fstat(stream.fileno()).st_size
                    if size > MAX_DOCUMENT_BYTES:
                        raise DataError(key, [size_problem(size)])
                    raw = stream.read(MAX_DOCUMENT_BYTES + 1)
            except OSError as exc:
                raise DataError(key, [DataProblem("$", f"cannot read file: {exc.strerror}", "io")]) from None
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise DataError(key, [size_problem(len(raw))])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(key, [DataProblem(f"byte {exc.start + 1}", "not UTF-8 text", "io")]) from None
        if text.startswith("\ufeff"):
            text = text[1:]
        if line is not None:
            text = text.rstrip("\r\n")  # a syntax error at the end of the line is on this line
        return patient_from_text(text, key, one_line=line is not None)

    def chunk(self, records: list) -> tuple:
        """-> (records, results.jsonl bytes, summary.csv bytes, error entries, tally)."""
        results: list[bytes] = []
        rows = io.StringIO()
        errors: list[dict] = []
        tally = new_tally()
        for key, line, raw, path in records:
            tally["records"] += 1
            try:
                patient = self.load(key, line, raw, path)
                pairs = [(trial, offset, trial.screen(patient, self.as_of))
                         for trial, offset in zip(self.trials, self.offsets)]
                documents = [{"input": key, **result.to_dict()} for _, _, result in pairs]
                lines = [_json_line(document) for document in documents]
            except DataError as exc:
                tally["bad"] += 1
                errors.append(error_entry(key, line, exc.problems))
                continue
            except Exception as exc:  # an engine failure on one record must not end the run
                tally["bad"] += 1
                errors.append(error_entry(key, line, [DataProblem("$", f"internal error: {type(exc).__name__}: {exc}",
                                                                  "internal")]))
                continue
            results.extend(lines)
            for (trial, offset, result), document in zip(pairs, documents):
                cells = [""] * self.width
                for i, criterion in enumerate(result.criteria):
                    cells[offset + i] = NOT_APPLICABLE if criterion.applicable is False else criterion.verdict
                work = worklist_row(document).cells()
                rows.write(csv_line(csv_row([key, result.patient, work["label"], trial.id, self.as_of_text,
                                             result.decision, work["items_missing"], work["deciding"],
                                             work["to_obtain"], work["review_questions"], *cells])))
                entry = _trial_tally(tally, trial.id)
                _bump(entry["decisions"], result.decision)
                missing: dict[str, None] = {}
                items: dict[str, str] = {}
                for criterion in result.criteria:
                    if criterion.verdict == "fail":
                        _bump(entry["fail"], criterion.id)
                    missing.update(dict.fromkeys(map(missing_key, criterion.missing)))
                    for item in criterion.missing_items:
                        items.setdefault(item_key(item), item_name(item))
                for item in missing:
                    _bump(entry["missing"], item)
                for group, name in items.items():
                    _bump(entry["items"], group)
                    entry["names"].setdefault(group, name)
                tally["pairs"] += 1
        # (a lone surrogate in a patient's text cannot be UTF-8: the CSV shows it as \udXXX)
        return len(records), b"".join(results), rows.getvalue().encode("utf-8", "backslashreplace"), errors, tally


def _json_line(obj: dict) -> bytes:
    try:
        return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape in the input: keep it escaped
        return (json.dumps(obj, separators=(",", ":")) + "\n").encode("ascii")


def error_entry(key: str, line: int | None, problems: list[DataProblem]) -> dict:
    if line is None:  # a whole file: the line of a JSON syntax error, if that is the problem
        line = next((p.line for p in problems if isinstance(p, JsonProblem)), None)
    return {
        "input": key, "line": line,
        "error": "; ".join(f"{p.path}: {p.message}" for p in problems),
        "problems": [{"path": p.path, "message": p.message, "code": p.code} for p in problems],
    }


_SCREENER: Screener | None = None


def _watch_parent(parent: int) -> None:
    """End this worker when the batch process is gone (killed, even with SIGKILL)."""
    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _init_worker(sources: list[tuple[str, str]], as_of: str, parent: int, terminology: str | None = None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and shuts the pool down
    _watch_parent(parent)
    global _SCREENER
    store = open_store(terminology)
    _SCREENER = Screener([compile_text(text, name, store) for name, text in sources], date.fromisoformat(as_of))


def _screen_chunk(records: list) -> tuple:
    return _SCREENER.chunk(records)


def _ready() -> bool:
    return _SCREENER is not None


# ============================================================================ the parent side
def _say(console: Console, text: str) -> None:
    """Print plain text: no markup, emoji codes or highlighting (input keys and criterion texts are data)."""
    console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pool_context():
    # fork: workers start at once and share the parent's imported modules; elsewhere spawn
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def peak_memory() -> tuple[float | None, float | None]:
    """Peak RSS in MB of this process and of the largest waited-for child process."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None, None
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / scale / 1024
    return own, (child or None)


class _Display:
    """A rich progress bar on a terminal; a line every minute otherwise."""

    def __init__(self, out: Console, source, start: dict, done_before: int):
        self.out, self.source = out, source
        self.records, self.started = 0, time.monotonic()
        self.last_plain = self.started
        self.done_before = done_before
        self.progress = None
        if out.is_terminal:
            from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)
            total = source.total()
            columns = [TextColumn("screening"), BarColumn(), TaskProgressColumn() if total else TextColumn(""),
                       TextColumn("{task.fields[count]}"), TimeElapsedColumn()]
            if total:
                columns.append(TimeRemainingColumn())
            self.progress = Progress(*columns, console=out, transient=False)
            self.task = self.progress.add_task("batch", total=total, completed=source.done(start),
                                               count=self._count())
            self.progress.start()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.records / elapsed if elapsed > 0 else 0.0

    def _count(self) -> str:
        return f"{self.done_before + self.records:,} patients, {self.rate():,.0f}/s"

    def update(self, records: int, position: dict) -> None:
        self.records += records
        if self.progress is not None:
            self.progress.update(self.task, completed=self.source.done(position), count=self._count())
        elif time.monotonic() - self.last_plain >= PLAIN_PROGRESS_SECONDS:
            self.last_plain = time.monotonic()
            _say(self.out, f"... {self._count()}")

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


class BatchRun:
    def __init__(self, trial_paths, patients: Path, out_dir: Path, as_of: date, *, workers: int, resume: bool,
                 out: Console, err: Console, chunk_size: int, checkpoint_seconds: float, terminology: Path | None = None):
        if workers < 1:
            raise UsageError("--workers must be at least 1")
        self.out, self.err = out, err
        self.out_dir, self.as_of = Path(out_dir), as_of
        self.workers, self.resume = workers, resume
        self.chunk_size, self.checkpoint_seconds = max(1, chunk_size), checkpoint_seconds
        self.terminology = Path(terminology) if terminology is not None else None
        self.trials = load_trials(list(trial_paths), self.terminology)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UsageError(f"{self.out_dir}: --out must be a folder")
        self.source = open_input(Path(patients), self.out_dir)
        self.files: dict[str, object] = {}
        self.tally = new_tally()
        self.position = self.source.start()
        self.echoed = 0
        self.in_write = False
        self.opened = False  # all outputs open and consistent with a checkpoint
        self.last_checkpoint = 0.0

    # ------------------------------------------------------------------ progress.json
    def identity(self) -> dict:
        return {
            "version": PROGRESS_VERSION,
            "patients": self.source.identity(),
            "trials": [{"path": str(t.path.resolve()), "id": t.trial.id, "sha256": t.sha256} for t in self.trials],
            "as_of": self.as_of.isoformat(),
            # a screening is reproducible only with the same terminology: its sources are part of the run
            "terminology": self.trials[0].trial.terminology if self.trials else None,
        }

    def read_progress(self) -> dict | None:
        path = self.out_dir / PROGRESS
        if not path.exists():
            for name in OUTPUTS:
                if (self.out_dir / name).exists() and (self.out_dir / name).stat().st_size:
                    raise UsageError(f"{self.out_dir}: holds {name} but no {PROGRESS}, so the run cannot be resumed; "
                                     "use --restart to start over (this replaces the files in it)")
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            state["position"], state["outputs"], state["tally"]  # noqa: B018 - the keys must be there
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise UsageError(f"{path}: cannot read the checkpoint ({str(exc).splitlines()[0][:200]}); use --restart "
                             "to start over") from None
        damage = self._damage(state)
        if damage:
            raise UsageError(f"{path} is damaged ({damage}): the run cannot be resumed from it; use --restart to "
                             "start over")
        differences = self.differences(state)
        if differences:
            raise UsageError(f"{self.out_dir} holds a run that differs from this command:\n  - "
                             + "\n  - ".join(differences)
                             + "\nrepeat the original command to resume it, or add --restart to start over "
                               "(this replaces the files in it)")
        return state

    def _damage(self, state: dict) -> str | None:
        """What is wrong with the shape of progress.json (None: nothing): the resume reads these fields as such."""
        position, outputs, tally = state["position"], state["outputs"], state["tally"]
        if not isinstance(tally, dict) or not all(type(tally.get(k)) is int and tally[k] >= 0
                                                  for k in ("records", "bad", "pairs")) \
                or not isinstance(tally.get("trials"), dict):
            return "tally is not an object of counts"
        if not isinstance(outputs, dict) or not all(type(v) is int and v >= 0 for v in outputs.values()):
            return "outputs is not an object of file sizes"
        if state.get("state") not in ("running", "complete"):
            return "state is neither running nor complete"
        if not isinstance(position, dict) or not all(type(v) is int and v >= 0 for k, v in position.items()
                                                     if k in ("offset", "line", "files")):
            return "position is not an object of counts"
        offset = position.get("offset")
        if offset is not None and isinstance(self.source, NdjsonInput):
            size = self.source.path.stat().st_size if self.source.path.is_file() else 0
            if offset > size:
                return f"its position, byte {offset:,}, is past the end of {self.source.display}"
            if 0 < offset < size:  # (at the end of a file whose last line has no line end, offset is its size)
                with self.source.path.open("rb") as stream:
                    stream.seek(offset - 1)
                    if stream.read(1) != b"\n":
                        return f"its position, byte {offset:,}, is not the start of a line of {self.source.display}"
        return None

    def differences(self, state: dict) -> list[str]:
        mine = self.identity()
        found = []
        if state.get("version") != mine["version"]:
            return [f"{PROGRESS} was written by another version of the batch command"]
        theirs = state.get("patients", {})
        if {k: theirs.get(k) for k in ("kind", "path")} != {k: mine["patients"][k] for k in ("kind", "path")}:
            found.append(f"patients: the run read {theirs.get('path')}, this command {mine['patients']['path']}")
        elif theirs != mine["patients"]:
            found.append(f"patients: {self.source.display} changed (size or modification time) since the run started")
        old_trials, new_trials = state.get("trials", []), mine["trials"]
        if [t.get("path") for t in old_trials] != [t["path"] for t in new_trials]:
            found.append("trials: the run used " + ", ".join(str(t.get("path")) for t in old_trials)
                         + "; this command " + ", ".join(t["path"] for t in new_trials))
        else:
            for old, new, item in zip(old_trials, new_trials, self.trials):
                if old.get("sha256") != new["sha256"]:
                    found.append(f"trials: {item.path} changed since the run started")
        if state.get("as_of") != mine["as_of"]:
            found.append(f"--as-of: the run screened as of {state.get('as_of')}, this command as of {mine['as_of']}")
        if state.get("terminology") != mine["terminology"]:
            from .expand import describe_sources

            found.append(f"terminology: the run used {describe_sources(state.get('terminology'))}, this command "
                         f"{describe_sources(mine['terminology'])}")
        return found

    def checkpoint(self, complete: bool = False) -> None:
        sizes = {}
        for name, stream in self.files.items():
            stream.flush()
            os.fsync(stream.fileno())
            sizes[name] = stream.tell()
        state = {
            **self.identity(), "display": self.source.display, "state": "complete" if complete else "running",
            "position": self.position, "records": self.tally["records"], "outputs": sizes, "tally": self.tally,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        path = self.out_dir / PROGRESS
        temp = path.with_name(PROGRESS + ".tmp")
        with temp.open("w", encoding="utf-8") as stream:
            json.dump(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
        _fsync_dir(self.out_dir)
        self.last_checkpoint = time.monotonic()

    # ------------------------------------------------------------------ outputs
    def open_outputs(self, state: dict | None) -> None:
        """Open the outputs for appending: truncated to the checkpoint on resume, emptied otherwise."""
        if state is None:
            (self.out_dir / PROGRESS).unlink(missing_ok=True)
        for name in OUTPUTS:
            path = self.out_dir / name
            size = 0
            if state is not None:
                size = state["outputs"].get(name, 0)
                actual = path.stat().st_size if path.exists() else -1
                if actual < size:
                    raise UsageError(f"{path}: shorter than at the last checkpoint ({actual} < {size} bytes), "
                                     "so the run cannot be resumed; use --restart")
            path.touch()
            stream = path.open("r+b")
            stream.truncate(size)
            stream.seek(size)
            self.files[name] = stream
        if state is None:
            header = csv_line(csv_row(csv_header([t.trial for t in self.trials])))
            self.files[SUMMARY].write(header.encode("utf-8"))
            self.checkpoint()

    def close_outputs(self) -> None:
        for stream in self.files.values():
            stream.close()
        self.files = {}

    def write(self, output: tuple, position: dict, display: _Display) -> None:
        records, results, rows, errors, tally = output
        self.in_write = True
        self.files[RESULTS].write(results)
        self.files[SUMMARY].write(rows)
        for entry in errors:
            self.files[ERRORS].write(_json_line(entry))
        merge_tally(self.tally, tally)
        self.position = position
        self.in_write = False
        display.update(records, position)
        for entry in errors:
            self.echo(entry)
        if time.monotonic() - self.last_checkpoint >= self.checkpoint_seconds:
            self.checkpoint()

    def echo(self, entry: dict) -> None:
        self.echoed += 1
        if self.echoed <= STDERR_ERRORS:
            for problem in entry["problems"]:
                _say(self.err, f"{entry['input']}: {problem['path']}: {problem['message']}")
        elif self.echoed == STDERR_ERRORS + 1:
            _say(self.err, f"... more bad records: see {self.out_dir / ERRORS}")

    # ------------------------------------------------------------------ the run
    def execute(self) -> int:
        make_out_dir(self.out_dir)
        state = self.read_progress() if self.resume else None
        if state is not None and state.get("state") == "complete":
            self.tally = state["tally"]
            _say(self.out, f"nothing to do: the run in {self.out_dir} is complete "
                           f"({self.tally['records']:,} patient records); use --restart to run it again")
            self.report(resumed=None, elapsed=None, rate=None)
            return 1 if self.tally["bad"] else 0
        if state is not None:
            self.tally, self.position = state["tally"], state["position"]
            self.source.display = state.get("display", self.source.display)

        resumed = self.tally["records"] if state is not None else None
        executor = screener = display = None
        try:
            if self.workers > 1:  # started before any file is open and before the progress thread
                executor = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=_pool_context(), initializer=_init_worker,
                    initargs=([(t.name, t.text) for t in self.trials], self.as_of.isoformat(), os.getpid(),
                              str(self.terminology) if self.terminology is not None else None))
                for future in [executor.submit(_ready) for _ in range(self.workers)]:
                    future.result()
            else:
                screener = Screener([t.trial for t in self.trials], self.as_of)
            self.open_outputs(state)
            self.opened = True
            from .expand import describe_sources

            _say(self.out, f"terminology: {describe_sources(self.identity()['terminology'])}")
            if resumed is not None:
                _say(self.out, f"resuming after {resumed:,} patient records")
            display = _Display(self.out, self.source, self.position, self.tally["records"])
            pending: deque = deque()
            limit = self.workers * IN_FLIGHT_PER_WORKER
            for chunk in self.source.chunks(self.position, self.chunk_size):
                if executor is None:
                    self.write(screener.chunk(chunk.records), chunk.position, display)
                    continue
                pending.append((executor.submit(_screen_chunk, chunk.records), chunk.position))
                while len(pending) >= limit:
                    future, position = pending.popleft()
                    self.write(future.result(), position, display)
            while pending:
                future, position = pending.popleft()
                self.write(future.result(), position, display)
            self.checkpoint(complete=True)
        except KeyboardInterrupt:
            if display is not None:
                display.stop()
            if self.opened and not self.in_write:
                self.checkpoint()
            _say(self.err, f"interrupted after {self.tally['records']:,} patient records; run the same command "
                           "again to resume")
            return 130
        except BrokenProcessPool:
            raise ScreeningError("a worker process ended unexpectedly; the results up to the last checkpoint are "
                                 "kept: run the same command again to resume") from None
        except OSError as exc:  # disk full, input unreadable, ...
            where = exc.filename or self.out_dir
            raise ScreeningError(f"{where}: {exc.strerror or exc}; the results up to the last checkpoint are kept: "
                                 "fix the problem and run the same command again to resume") from None
        finally:
            if display is not None:
                display.stop()
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
            self.close_outputs()
        self.report(resumed=resumed, elapsed=time.monotonic() - display.started, rate=display.rate())
        return 1 if self.tally["bad"] else 0

    # ------------------------------------------------------------------ the summary
    def report(self, resumed: int | None, elapsed: float | None, rate: float | None) -> None:
        from rich.table import Table
        from rich.text import Text

        out, tally = self.out, self.tally
        trials = {t.trial.id: t.trial for t in self.trials}

        def table(title: str, *columns: str) -> Table:
            t = Table(title=title, title_justify="left")
            for column in columns:  # text wraps to the terminal, never cut
                t.add_column(column, overflow="fold")
            return t

        def row(t: Table, *cells: str) -> None:
            t.add_row(*(Text(str(c)) for c in cells))  # data, never markup

        decisions = table("Decisions", "trial", "patients", *DECISIONS)
        for trial_id, entry in tally["trials"].items():
            counts = entry["decisions"]
            row(decisions, trial_id, f"{sum(counts.values()):,}", *(f"{counts.get(d, 0):,}" for d in DECISIONS))
        if not tally["trials"]:
            row(decisions, "(no patient screened)", "0", *("0" for _ in DECISIONS))
        out.print(decisions)

        def share(n: int, trial_id: str) -> str:
            return f"{100 * n / (sum(tally['trials'][trial_id]['decisions'].values()) or 1):.1f}%"

        fails = sorted(((n, trial_id, cid) for trial_id, entry in tally["trials"].items()
                        for cid, n in entry["fail"].items()), key=lambda x: (-x[0], x[1], x[2]))[:5]
        if fails:
            t = table("Criteria that exclude most often", "trial", "criterion", "fails", "of patients")
            for n, trial_id, cid in fails:
                text = next((c.text for c in trials[trial_id].criteria if c.id == cid), "") if trial_id in trials else ""
                row(t, trial_id, f"{cid} {text}".strip(), f"{n:,}", share(n, trial_id))
            out.print(t)
        missing = sorted(((n, trial_id, group) for trial_id, entry in tally["trials"].items()
                          for group, n in entry.get("items", {}).items()), key=lambda x: (-x[0], x[1], x[2]))[:5]
        if missing:
            t = table("Data most often missing", "trial", "kind", "missing", "code", "patients", "of patients")
            for n, trial_id, group in missing:
                kind, _, code = group.partition(" ") if group != OTHER_MISSING else ("", "", "")
                name = tally["trials"][trial_id].get("names", {}).get(group, group)
                row(t, trial_id, kind, name, code if code != name else "", f"{n:,}", share(n, trial_id))
            out.print(t)

        lines = [f"{tally['records']:,} patient records, {tally['pairs']:,} results "
                 f"({len(self.trials)} trial{'s' if len(self.trials) != 1 else ''}) in {self.out_dir / RESULTS} "
                 f"and {self.out_dir / SUMMARY}"]
        if tally["bad"]:
            lines.append(f"warning: {tally['bad']:,} bad patient record{'s' if tally['bad'] != 1 else ''} skipped, "
                         f"listed in {self.out_dir / ERRORS}")
        if elapsed is not None:
            session = f"{elapsed:,.1f} s, {rate:,.0f} patients/s with {self.workers} worker" \
                      f"{'s' if self.workers != 1 else ''}"
            if resumed:
                session += f" (resumed after {resumed:,} records)"
            own, child = peak_memory()
            if own is not None:
                session += f"; peak memory {own:,.0f} MB" + (f", largest worker {child:,.0f} MB" if child and
                                                             self.workers > 1 else "")
            lines.append(session)
        for line in lines:
            _say(out, line)


def run_batch_command(trials: list[Path], patients: Path, out_dir: Path, as_of: date, workers: int = 2,
                      resume: bool = True, out: Console | None = None, err: Console | None = None, *,
                      chunk_size: int = CHUNK_RECORDS, checkpoint_seconds: float = CHECKPOINT_SECONDS,
                      terminology: Path | None = None) -> int:
    """Run ``screening batch``; returns the exit status (0 done, 1 done but bad records skipped, 130 interrupted).

    Bad arguments, rule files that do not compile and a checkpoint that does not match raise
    :class:`~screening.errors.ScreeningError` (the CLI prints it and exits with 2).
    """
    out = out or Console(highlight=False)
    err = err or Console(stderr=True, highlight=False)
    run = BatchRun(trials, patients, out_dir, as_of, workers=workers, resume=resume, out=out, err=err,
                   chunk_size=chunk_size, checkpoint_seconds=checkpoint_seconds, terminology=terminology)
    return run.execute()
