"""Where a report's results come from: a batch results folder, or patients screened on the spot.

Both give a :class:`~screening.reports.view.Collector` (counts and worklist rows), a ``fetch``
that returns one row's full result again (for its page), and the problems met on the way: a
results line or a patient file that cannot be used is reported (``file:line: column C: ...`` or
``file: $.path: ...``) and left out; everything else is still reported on.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Optional

from ..batch import ERRORS, PROGRESS, RESULTS, Oversized, _lines
from ..errors import DataError, ScreeningError, UsageError
from ..patient.load import MAX_DOCUMENT_BYTES, parse_json, size_problem
from .view import Collector, ResultProblem, Row, validate

MAX_LISTED = 100  # problems (and batch errors.jsonl entries) listed in a report; the rest are counted


@dataclass
class Source:
    """Results ready to report on, and what could not be used."""

    collector: Collector
    fetch: Callable[[Row], dict]
    problems: list[str] = field(default_factory=list)   # our own: lines or files left out of this report
    problem_count: int = 0
    notes: list[str] = field(default_factory=list)      # about the input (a run not complete, bad records)
    origin: str = ""
    terminology: Optional[list] = None

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)


def results_file(path: Path) -> Path:
    """results.jsonl of a batch output folder, or the file itself; a usage error otherwise."""
    if path.is_dir():
        found = path / RESULTS
        if not found.is_file():
            raise UsageError(f"{path}: no {RESULTS} in this folder (the output of `screening batch --out`)")
        return found
    if path.is_file():
        return path
    raise UsageError(f"{path}: no such file or folder")


def read_results(path: Path, trial: Optional[str] = None) -> Source:
    """Counts and rows from a batch results file, read once as a stream; pages re-read their line."""
    file = results_file(path)
    shown = str(path / RESULTS) if path.is_dir() else str(path)
    collector = Collector()

    def fetch(row: Row) -> dict:
        """The row's result, read again at its line's offset (checked: the file may have changed)."""
        try:
            with file.open("rb") as stream:
                stream.seek(row.position)
                result = json.loads(stream.readline(MAX_DOCUMENT_BYTES + 1))
            validate(result)
        except (OSError, ValueError) as exc:  # (ResultProblem and JSONDecodeError are ValueErrors)
            raise UsageError(f"{shown}: changed while the report was being written ({exc}); "
                             "write the report again when the batch run is not writing to it") from None
        return result

    source = Source(collector, fetch, origin=shown)
    offset = line = 0
    others: dict[str, None] = {}  # trials not selected by --trial, to name them when none is
    try:
        with file.open("rb") as stream:
            for raw in _lines(stream):
                start = offset
                offset += raw.size if isinstance(raw, Oversized) else len(raw)
                line += 1
                where = f"{shown}:{line}"
                try:
                    if isinstance(raw, Oversized):
                        raise DataError(where, [size_problem(raw.size, "line")])
                    if not raw.strip():
                        continue
                    try:
                        text = raw.decode("utf-8").rstrip("\r\n")
                    except UnicodeDecodeError as exc:
                        raise UsageError(f"{where}: byte {exc.start + 1}: not UTF-8 text") from None
                    result = parse_json(text.removeprefix("\ufeff"), where, one_line=True)
                    if isinstance(result, dict) and trial is not None and result.get("trial") != trial:
                        if len(others) < 20 and isinstance(result.get("trial"), str):
                            others[result["trial"]] = None
                        continue
                    if isinstance(result, dict) and source.terminology is None:
                        source.terminology = result.get("terminology")
                    collector.add(result, start)
                except ResultProblem as exc:
                    source.problem(f"{where}: {exc}")
                except ScreeningError as exc:
                    source.problem(exc.render())
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {exc.strerror}") from None
    if trial is not None and not collector.rows and not source.problem_count:
        found = f"; it holds {', '.join(others)}" if others else ""
        raise UsageError(f"--trial {trial}: no results of this trial in {shown}{found}")
    if path.is_dir():
        _batch_notes(file.parent, source)
    return source


def _batch_notes(folder: Path, source: Source) -> None:
    """What the batch run's own files say: a run not complete, records it could not screen."""
    try:
        progress = json.loads((folder / PROGRESS).read_text(encoding="utf-8"))
        if isinstance(progress, dict) and progress.get("state") == "running":
            source.notes.append(f"the batch run in {folder} is not complete: this report covers the results "
                                "written so far (resume the run, then report again)")
    except (OSError, ValueError):
        pass
    errors = folder / ERRORS
    try:
        with errors.open("rb") as stream:
            bad = sum(1 for raw in _lines(stream) if isinstance(raw, Oversized) or raw.strip())
    except OSError:
        return
    if bad:
        source.notes.append(f"{bad} patient record{'s' if bad != 1 else ''} could not be screened by the batch "
                            f"run and {'are' if bad != 1 else 'is'} not in this report (see {errors})")


def screen_patients(trial_path: Path, patients: list[Path], as_of: date, store=None) -> Source:
    """Compile a rule set once and screen patient files on the spot (as `check` does); a file that
    cannot be read is reported and left out. A rule set that does not compile raises."""
    from ..compile import compile_trial
    from ..patient.load import load_patient

    trial = compile_trial(trial_path, store)
    collector = Collector()
    results: list[dict] = []
    source = Source(collector, lambda row: results[row.position], origin=str(trial_path))
    for path in expand_patients(patients):
        try:
            result = trial.screen(load_patient(path), as_of)
        except ScreeningError as exc:
            source.problem(exc.render())
            continue
        data = {"input": str(path), **result.to_dict()}
        results.append(data)
        collector.add(data, len(results) - 1, title=trial.title or "")
        source.terminology = data.get("terminology")
    return source


def expand_patients(paths: list[Path]) -> list[Path]:
    """Patient files as given; a folder stands for its ``*.json`` files (sorted, not recursive)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file()
                              and not p.name.startswith(".")))
        else:
            out.append(path)
    return out
