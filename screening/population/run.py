"""``screening batch --engine duckdb|spark``: ingest once, screen every trial in SQL, write the results.

A columnar run has three stages, each recorded in ``progress.json`` when it is complete:

1. **store**: the patients are read into the store's tables (:mod:`.ingest` for NDJSON; a folder of
   Parquet tables is used as it is) and saved as ``OUT/store/<table>.parquet``; bad lines go to
   ``errors.jsonl``;
2. **trials**: each trial is screened over the store by the SQL generated from its rule set and its
   results saved as ``OUT/parts/<trial>-<slice>.parquet``. A population larger than the slice size
   (``--slice-patients``) is screened a slice of patients at a time (consecutive ranges of patient ids,
   fixed when the stage starts and kept in ``progress.json``): each slice's rows are copied out of the
   store into tables of their own and every trial screened over them, so the memory a run needs is
   bounded by the slice, not the population; a smaller population is one slice, screened in place;
3. **outputs**: ``results.parquet``, ``results.jsonl``, ``summary.csv`` and, for the patients asked
   for with ``--explain``, ``explanations.jsonl`` from the per-patient engine.

The seconds each stage took in this process are recorded in ``progress.json`` (``timings``).

Resuming (the default) repeats only the stages not recorded as complete: an interrupted ingestion
starts again from the first line (its partial store is discarded), a trial whose part is saved is
not screened again. Every file is written under a temporary name and renamed when complete, so a
stage is either wholly there or not at all; results are never lost or duplicated.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow as pa
from rich.console import Console

from ..batch import (DECISIONS, ERRORS, PROGRESS, RESULTS, SUMMARY, load_trials, make_out_dir, missing_key,
                     peak_memory)
from ..errors import DataError, ScreeningError, UsageError
from . import schema

ENGINES = ("duckdb", "spark", "python")
RESULTS_PARQUET = "results.parquet"
EXPLANATIONS = "explanations.jsonl"
STORE, PARTS = "store", "parts"
PROGRESS_VERSION = 2  # 2: trials_done counts slices; parts are <trial>-<slice>.parquet
EXPLAIN_DECISIONS = ("eligible", "ineligible", "undetermined")
SLICE_PATIENTS = {"duckdb": 250_000, "spark": 100_000}
"""Default ``--slice-patients`` per engine: the most patients screened at once (docs/population.md: the memory
each needed when measured)."""
SLICE_SCHEMA = "slice"
DUCKDB_ROW_GROUP = 122_880  # rows of one row group of a DuckDB table, the unit its scans share among threads
RESULT_BATCH_ROWS = 8_192  # rows per Arrow batch of a small results table (see _spread_results)


@dataclass
class ExplainSpec:
    """Which patients get explanations: by decision, by patient id, or both."""

    decisions: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> "ExplainSpec | None":
        """``eligible,undetermined,P17``: decisions and ids, comma separated, each trimmed; ``id:eligible`` is the
        patient whose id is ``eligible``; ``@FILE``: the ids of FILE, one per line, exactly as written (ids with
        commas or spaces at their ends)."""
        if text is None:
            return None
        if text.startswith("@"):
            return cls((), _ids_of_file(Path(text[1:])))
        items = [item.strip() for item in text.split(",")]
        if not text.strip() or any(not item or item == "id:" for item in items):
            raise UsageError(f"--explain: {text!r} is not a list (write e.g. eligible,undetermined or P1,P2; "
                             "id:ID for an id spelled like a decision; @FILE for ids one per line)")
        decisions = tuple(dict.fromkeys(i for i in items if i in EXPLAIN_DECISIONS))
        patients = tuple(dict.fromkeys(i[3:] if i.startswith("id:") else i for i in items
                                       if i not in EXPLAIN_DECISIONS))
        return cls(decisions, patients)

    def to_json(self) -> dict:
        return {"decisions": list(self.decisions), "patients": list(self.patients)}


def _progress_damage(state: dict) -> str | None:
    """What is wrong with the shape of a columnar run's progress.json (None: nothing)."""
    stages = state.get("stages")
    if not isinstance(stages, dict):
        return "stages is not an object"
    store = stages.get("store")
    if store is not None and not (isinstance(store, dict) and isinstance(store.get("bad", 0), int)):
        return "stages.store is not an object with a count of bad lines"
    done = state.get("trials_done")
    if not isinstance(done, dict) or not all(type(v) is int and v >= 0 for v in done.values()):
        return "trials_done is not an object of slice counts"
    if "slices" in state:
        slices = state["slices"]
        if not isinstance(slices, list) or not all(isinstance(b, str) for b in slices) \
                or any(a >= b for a, b in zip(slices, slices[1:])):
            return "slices is not a list of patient ids in order"
        if any(v > len(slices) + 1 for v in done.values()):
            return "trials_done counts more slices than the run has"
    if "tally" in state and not isinstance(state["tally"], dict):
        return "tally is not an object"
    return None


def _ids_of_file(path: Path) -> tuple[str, ...]:
    """The patient ids of an ``--explain @FILE``: one per line (a final line end optional), at most 1 MiB."""
    try:
        if path.stat().st_size > 1024 * 1024:
            raise UsageError(f"--explain @{path}: larger than 1 MiB; give the ids of the patients to explain")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--explain @{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"--explain @{path}: cannot be read: {exc.strerror or exc}") from None
    ids = [line.removesuffix("\r") for line in text.split("\n")]
    if ids and ids[-1] == "":
        ids.pop()
    if not ids or any(not i for i in ids):
        raise UsageError(f"--explain @{path}: give one patient id per line (no empty line)")
    return tuple(dict.fromkeys(ids))


def _input_of(patients: Path) -> dict:
    """What kind of input ``--patients`` is, for the columnar engines: an NDJSON file or a store folder."""
    if not patients.exists():
        raise UsageError(f"{patients}: no such file or folder")
    from .fhir_ingest import bulk_files, looks_like_bulk

    if looks_like_bulk(patients) and not (patients.is_dir() and (patients / "patients.parquet").is_file()):
        files = bulk_files(patients)  # FHIR bulk NDJSON: a $export folder, or one file of resources
        return {"kind": "fhir", "path": str(patients.resolve()), "size": sum(p.stat().st_size for p in files),
                "files": {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}}
    if patients.is_file():
        if patients.suffix.lower() in (".ndjson", ".jsonl"):
            stat = patients.stat()
            return {"kind": "ndjson", "path": str(patients.resolve()), "size": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns}
        raise UsageError(f"--patients: {patients}: the duckdb and spark engines read an NDJSON file (.ndjson, "
                         ".jsonl) or a folder of the store's Parquet tables; use --engine python for other inputs")
    files = {name: patients / f"{name}.parquet" for name in schema.TABLES}
    if not files["patients"].is_file():
        raise UsageError(f"--patients: {patients} is a folder without patients.parquet; the duckdb and spark "
                         "engines read an NDJSON file or a folder of the store's Parquet tables "
                         "(docs/population.md); use --engine python for a folder of JSON files")
    stats = {name: [p.stat().st_size, p.stat().st_mtime_ns] for name, p in files.items() if p.is_file()}
    return {"kind": "parquet", "path": str(patients.resolve()), "files": stats}


def choose_engine(trial_paths, patients: Path, as_of: date, terminology: Path | None = None) -> tuple[str, str | None]:
    """The engine `batch` uses when ``--engine`` is not given: duckdb when it can read the input and translate
    every rule set, else python (with the reason, printed as a note)."""
    patients = Path(patients)
    if not patients.exists():
        return "python", None  # the python engine says what is wrong
    if patients.is_file() and patients.suffix.lower() not in (".ndjson", ".jsonl"):
        return "python", None
    if patients.is_dir() and not (patients / "patients.parquet").is_file():
        from .fhir_ingest import looks_like_bulk

        if not looks_like_bulk(patients):
            return "python", None
    try:
        from .sql import Unsupported, plan
    except ImportError:
        return "python", "DuckDB is not installed (pip install duckdb pyarrow sqlglot)"
    for item in load_trials(list(trial_paths), terminology):
        try:
            plan(item.trial.checked, as_of)
        except Unsupported as exc:
            return "python", f"{item.path}: the SQL engine cannot translate this rule set yet ({exc})"
    return "duckdb", None


class ColumnarRun:
    """One ``screening batch`` run on a columnar engine (see the module docstring)."""

    def __init__(self, trial_paths, patients: Path, out_dir: Path, as_of: date, *, engine: str, resume: bool,
                 explain: str | None, out: Console, err: Console, terminology: Path | None = None,
                 slice_patients: int | None = None):
        if engine not in ("duckdb", "spark"):
            raise UsageError(f"--engine: {engine!r} is not a columnar engine")
        if slice_patients is not None and slice_patients < 1:
            raise UsageError(f"--slice-patients: {slice_patients} is not a number of patients (give 1 or more)")
        self.slice_patients = slice_patients or SLICE_PATIENTS[engine]
        import duckdb

        with duckdb.connect() as probe:
            self._memory_limit(probe)
        self.engine, self.resume, self.out, self.err = engine, resume, out, err
        self.out_dir, self.as_of, self.patients = Path(out_dir), as_of, Path(patients)
        self.explain = ExplainSpec.parse(explain)
        self.terminology = terminology
        self.trials = load_trials(list(trial_paths), terminology)
        if not self.trials:
            raise UsageError("give at least one rule file")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise UsageError(f"{self.out_dir}: --out must be a folder")
        self.input = _input_of(self.patients)
        from .sql import Unsupported, plan

        for item in self.trials:  # before any work: a rule set the generator cannot translate is refused
            try:
                plan(item.trial.checked, as_of)
            except Unsupported as exc:
                raise UsageError(f"{item.path}: --engine {engine} cannot screen this rule set yet: {exc}; "
                                 "use --engine python") from None
        if self.explain is not None and self.input["kind"] != "ndjson":
            raise UsageError("--explain needs the patients' documents: give --patients as an NDJSON file of patient "
                             "documents (a Parquet store holds none; a FHIR bulk export is not explained yet: "
                             "screening check one patient's bundle)")
        self.state: dict = {}
        self.errors_echoed = 0
        self.con = None
        self.timings: dict[str, float] = {}
        self._store_pending: dict | None = None  # the store ingested, its files not written yet

    # ------------------------------------------------------------------ progress.json
    def identity(self) -> dict:
        return {
            "version": PROGRESS_VERSION, "engine": self.engine, "patients": self.input,
            "trials": [{"path": str(t.path.resolve()), "id": t.trial.id, "sha256": t.sha256} for t in self.trials],
            "as_of": self.as_of.isoformat(),
            "explain": self.explain.to_json() if self.explain else None,
            "terminology": self.trials[0].trial.terminology,
        }

    def read_progress(self) -> dict | None:
        path = self.out_dir / PROGRESS
        if not path.exists():
            for name in (RESULTS, SUMMARY, ERRORS, RESULTS_PARQUET, STORE, PARTS):
                if (self.out_dir / name).exists():
                    raise UsageError(f"{self.out_dir}: holds {name} but no {PROGRESS}, so the run cannot be resumed; "
                                     "use --restart to start over (this replaces the files in it)")
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise UsageError(f"{path}: cannot read the checkpoint ({_first_line(exc)}); use --restart to start over") from None
        mine = self.identity()
        if not isinstance(state, dict) or state.get("version") != PROGRESS_VERSION or "stages" not in state:
            raise UsageError(f"{path} was written by another version or engine of the batch command; "
                             "use --restart to start over")
        damage = _progress_damage(state)
        if damage:
            raise UsageError(f"{path} is damaged ({damage}): the run cannot be resumed from it; use --restart to "
                             "start over")
        found = [f"{key}: the run used {json.dumps(state.get(key))}, this command {json.dumps(value)}"
                 for key, value in mine.items() if state.get(key) != value]
        if found:
            raise UsageError(f"{self.out_dir} holds a run that differs from this command:\n  - " + "\n  - ".join(found)
                             + "\nrepeat the original command to resume it, or add --restart to start over "
                               "(this replaces the files in it)")
        return state

    def _check_saved(self, state: dict) -> None:
        """What progress.json records as done must be there: the store this run wrote (every table), and a
        readable part for every (trial, slice) screened; else the run would be finished without those results."""
        def missing(what: str) -> UsageError:
            return UsageError(f"{self.out_dir}: {what}, which {PROGRESS} records as done; the run cannot be resumed "
                              "without it: use --restart to start over")

        if state["stages"].get("outputs"):
            return
        if state["stages"].get("store") and self.input["kind"] != "parquet":
            for name in schema.TABLES:
                if not (self.out_dir / STORE / f"{name}.parquet").is_file():
                    raise missing(f"{STORE}/{name}.parquet is missing")
        import pyarrow.parquet as pq

        slices = len(state.get("slices") or []) + 1 if "slices" in state else 1
        for index, item in enumerate(self.trials):
            for number in range(min(state["trials_done"].get(item.trial.id, 0), slices)):
                part = self.out_dir / PARTS / f"{index}-{number}.parquet"
                try:
                    pq.read_metadata(part)
                except Exception:
                    raise missing(f"{PARTS}/{part.name} is missing or not a Parquet file") from None

    def checkpoint(self) -> None:
        self.state.update(self.identity())
        self.state["timings"] = {name: round(seconds, 3) for name, seconds in self.timings.items()}
        self.state["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _atomic_write(self.out_dir / PROGRESS, json.dumps(self.state, indent=1).encode("utf-8"))

    # ------------------------------------------------------------------ the run
    def execute(self) -> int:
        make_out_dir(self.out_dir)
        state = self.read_progress() if self.resume else None
        if state is None:
            for name in (RESULTS, SUMMARY, ERRORS, RESULTS_PARQUET, EXPLANATIONS, PROGRESS, STORE, PARTS):
                target = self.out_dir / name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                elif target.exists() or target.is_symlink():
                    target.unlink()
            state = {"stages": {}, "trials_done": {}}
            self.state = state
            self.checkpoint()  # recorded from the start: a run stopped at any point is resumed, never refused
        self.state = state
        self._check_saved(state)
        if state["stages"].get("outputs"):
            _say(self.out, f"nothing to do: the run in {self.out_dir} is complete; use --restart to run it again")
            self.report(None)
            return 1 if state["stages"]["store"]["bad"] else 0
        started = time.monotonic()
        try:
            import duckdb

            self.con = duckdb.connect()
            tmp = self.out_dir / ".tmp"
            self.con.execute(f"SET temp_directory = '{_sql_text(str(tmp))}'")
            self._memory_limit()
            built = False
            if not state["stages"].get("store"):
                with self._timed("ingestion"):
                    self.build_store()
                built = self.input["kind"] in ("ndjson", "fhir")
                self._start_store_write()
                self._finish_store()
            self.open_store(built)
            with self._timed("screening"):
                self.screen_trials()
            self.write_outputs()
        except KeyboardInterrupt:
            _say(self.err, "interrupted; run the same command again to resume (completed stages are kept)")
            return 130
        except OSError as exc:
            where = exc.filename or self.out_dir
            raise ScreeningError(f"{where}: {exc.strerror or exc}; completed stages are kept: fix the problem and "
                                 "run the same command again to resume") from None
        except ScreeningError:
            raise
        except Exception as exc:  # an engine failure: one message, exit 2, the completed stages kept
            if _interrupted(exc):  # Ctrl-C while DuckDB ran a statement: it stops it and raises this instead
                _say(self.err, "interrupted; run the same command again to resume (completed stages are kept)")
                return 130
            first = _first_line(exc)
            raise ScreeningError(f"internal error on --engine {self.engine}: {type(exc).__name__}: {first}; "
                                 "completed stages are kept; please report this (--engine python screens the "
                                 "same rule set)") from None
        finally:
            if self.con is not None:
                self.con.close()
            shutil.rmtree(self.out_dir / ".tmp", ignore_errors=True)
        self.report(time.monotonic() - started)
        return 1 if self.state["stages"]["store"]["bad"] else 0

    def _memory_limit(self, con=None) -> None:
        """DuckDB's memory limit from ``SCREENING_DUCKDB_MEMORY`` (``6GB``, ``50%``...; DuckDB's default: 80% of
        the machine's memory); past it DuckDB spills to ``OUT/.tmp``. Checked on a connection of its own when the
        run is set up, before anything in ``--out`` is touched."""
        limit = os.environ.get("SCREENING_DUCKDB_MEMORY", "").strip()
        if not limit:
            return
        try:
            (con or self.con).execute(f"SET memory_limit = '{_sql_text(limit)}'")
        except Exception as exc:
            raise UsageError(f"SCREENING_DUCKDB_MEMORY={limit!r}: not a memory limit DuckDB takes (give e.g. 6GB "
                             f"or 50%): {_first_line(exc)}") from None

    # ------------------------------------------------------------------ stage 1: the store
    def build_store(self) -> None:
        from .ingest import ingest_ndjson

        store = self.out_dir / STORE
        shutil.rmtree(store, ignore_errors=True)
        errors_tmp = self.out_dir / (ERRORS + ".tmp")
        if self.input["kind"] == "parquet":
            _atomic_write(self.out_dir / ERRORS, b"")
            self.state["stages"]["store"] = {"records": None, "patients": None, "bad": 0}
            self.checkpoint()
            return
        display = str(self.patients)
        with errors_tmp.open("wb") as errors, _Progress(self.out, "reading", self.input["size"], "bytes") as bar:
            def on_error(entry: dict) -> None:
                errors.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace"))
                self.echo(entry)

            if self.input["kind"] == "fhir":
                from .fhir_ingest import ingest_fhir_bulk

                summary = ingest_fhir_bulk(self.con, self.patients, on_error=on_error,
                                           progress=lambda s: bar.update(s.bytes_read, f"{s.records:,} resources"))
            else:
                summary = ingest_ndjson(self.con, self.patients, on_error=on_error, display=display,
                                        progress=lambda s: bar.update(s.bytes_read, f"{s.patients:,} patients"))
            errors.flush()
            os.fsync(errors.fileno())
        self._store_pending = {"errors": errors_tmp, "summary": {
            "records": summary.records, "patients": summary.patients, "bad": summary.bad,
            "python_path": summary.python_path}}

    def _start_store_write(self) -> None:
        """Write the ingested tables to ``store.tmp/`` (for resuming, and reusable as ``--patients``); the stage is
        recorded by :meth:`_finish_store`.

        Measured and left out (2026-12-06, 100,000 patients, load 1.6): writing them by a second connection in a
        thread while the trials are screened made the screening 6.8 s slower for the 2.9 s it hid (two DuckDB
        workloads on two cores); other compressions cost the same CPU (the cost is encoding)."""
        if self._store_pending is None:
            return
        folder = self.out_dir / (STORE + ".tmp")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        started = time.perf_counter()

        for name in schema.TABLES:
            self.con.execute(f"COPY {name} TO '{_sql_text(str(folder / (name + '.parquet')))}' (FORMAT parquet)")
        self.timings["store write"] = time.perf_counter() - started
        self._store_pending["folder"] = folder

    def _finish_store(self) -> None:
        """Record the store stage (``errors.jsonl`` and ``store/`` renamed into place)."""
        pending, self._store_pending = self._store_pending, None
        if pending is None or "folder" not in pending:
            return
        os.replace(pending["errors"], self.out_dir / ERRORS)
        os.replace(pending["folder"], self.out_dir / STORE)
        self.state["stages"]["store"] = pending["summary"]
        self.checkpoint()

    def open_store(self, built: bool = False) -> None:
        """The store's tables in the connection: read from its Parquet files, unless ``built`` (ingested by this
        process) and already there with the schema's columns and types. A population screened in slices is opened
        as views over the files instead (each slice is copied out of them; the whole store is never held)."""
        folder = Path(self.input["path"]) if self.input["kind"] == "parquet" else self.out_dir / STORE
        sliced = self._sliced(folder)
        if sliced:  # what the ingestion left (the FHIR reader's lines and structs ...): the store is in its files
            for name, kind in self.con.execute("SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary UNION "
                                               "ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary AND "
                                               "NOT internal").fetchall():
                self.con.execute(f'DROP {kind} IF EXISTS temp."{name}"')
        for name, table_schema in schema.TABLES.items():
            if built and not sliced and self._has_table(name, table_schema):
                continue
            path = folder / f"{name}.parquet"
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
            if path.is_file():
                columns = ", ".join(f'CAST("{f.name}" AS {_duck_type(f.type)}) AS "{f.name}"' for f in table_schema)
                kind = "VIEW" if sliced else "TABLE"
                try:
                    present = {row[0] for row in self.con.execute(
                        f"DESCRIBE SELECT * FROM read_parquet('{_sql_text(str(path))}')").fetchall()}
                    missing = [f.name for f in table_schema if f.name not in present]
                    if missing:
                        raise UsageError(f"{path}: not a table of the store (docs/population.md): no column "
                                         + ", ".join(missing))
                    self.con.execute(f"CREATE {kind} {name} AS SELECT {columns} FROM read_parquet('{_sql_text(str(path))}')")
                except UsageError:
                    raise
                except Exception as exc:  # a column missing or of another type
                    raise UsageError(f"{path}: not a table of the store (docs/population.md): "
                                     f"{str(exc).splitlines()[0]}") from None
            else:
                self.con.register("_empty", table_schema.empty_table())
                self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM _empty")
                self.con.unregister("_empty")
        if self.input["kind"] == "parquet":
            _check_store(self.con, folder)
            duplicates = self.con.execute("SELECT patient_id FROM patients GROUP BY patient_id HAVING count(*) > 1 "
                                          "LIMIT 3").fetchall()
            if duplicates:
                raise UsageError(f"{folder / 'patients.parquet'}: patient ids given more than once: "
                                 + ", ".join(repr(r[0]) for r in duplicates))
            count = self.con.execute("SELECT count(*) FROM patients").fetchall()[0][0]
            self.state["stages"]["store"] = {"records": count, "patients": count, "bad": 0}
        if "slices" not in self.state:
            self.state["slices"] = self._slice_bounds() if sliced else []

    def _sliced(self, folder: Path) -> bool:
        """Whether the population is screened in slices: as the run decided when it started, or because it holds
        more patients than ``--slice-patients``."""
        if "slices" in self.state:
            return bool(self.state["slices"])
        if self.input["kind"] != "parquet":
            return (self.state["stages"]["store"].get("patients") or 0) > self.slice_patients
        path = folder / "patients.parquet"
        if not path.is_file():
            return False
        try:
            count = self.con.execute(f"SELECT count(*) FROM read_parquet('{_sql_text(str(path))}')").fetchall()[0][0]
        except Exception as exc:
            raise UsageError(f"{path}: not a table of the store (docs/population.md): "
                             f"{str(exc).splitlines()[0]}") from None
        return count > self.slice_patients

    def _slice_bounds(self) -> list[str]:
        """The first patient id of every slice but the first: the ids in order, cut every ``--slice-patients``."""
        return [row[0] for row in self.con.execute(
            "SELECT patient_id FROM (SELECT patient_id, row_number() OVER (ORDER BY patient_id) - 1 AS r FROM patients) "
            f"WHERE r > 0 AND r % {int(self.slice_patients)} = 0 ORDER BY patient_id").fetchall()]

    def _slices(self) -> list[tuple[str | None, str | None]]:
        """(first id, first id of the next slice) of each slice; None: open-ended."""
        bounds = self.state.get("slices") or []
        edges = [None, *bounds, None]
        return list(zip(edges[:-1], edges[1:]))

    def _enter_slice(self, low: str | None, high: str | None) -> None:
        """The slice's rows of every table copied into schema ``slice``, which the trials' queries then read (it
        leads the search path; the dictionaries are temporary tables, found first as always)."""
        con = self.con
        con.execute("SET search_path = 'main'")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {SLICE_SCHEMA}")
        where = " AND ".join([*(["patient_id >= $low"] if low is not None else []),
                              *(["patient_id < $high"] if high is not None else [])]) or "TRUE"
        bounds = {key: value for key, value in (("low", low), ("high", high)) if value is not None}
        for name in schema.TABLES:
            con.execute(f"CREATE OR REPLACE TABLE {SLICE_SCHEMA}.{name} AS SELECT * FROM main.{name} WHERE {where}",
                        bounds)
        con.execute(f"SET search_path = '{SLICE_SCHEMA}'")

    def _leave_slices(self) -> None:
        self.con.execute("SET search_path = 'main'")
        self.con.execute(f"DROP SCHEMA IF EXISTS {SLICE_SCHEMA} CASCADE")

    def _has_table(self, name: str, table_schema) -> bool:
        found = self.con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
                                 "AND table_schema = 'main' ORDER BY ordinal_position", [name]).fetchall()
        return found == [(f.name, _duck_type(f.type)) for f in table_schema]

    # ------------------------------------------------------------------ stage 2: the trials
    def screen_trials(self) -> None:
        parts = self.out_dir / PARTS
        parts.mkdir(exist_ok=True)
        slices = self._slices()
        done = self.state["trials_done"]  # trial id -> how many slices it has been screened over
        total = len(self.trials) * len(slices)
        if all(done.get(t.trial.id, 0) >= len(slices) for t in self.trials):
            return
        runner = self._runner()
        with _Progress(self.out, "screening", total, "trial slices" if len(slices) > 1 else "trials") as bar:
            bar.update(sum(min(done.get(t.trial.id, 0), len(slices)) for t in self.trials), "")
            for number, (low, high) in enumerate(slices):
                todo = [(i, t) for i, t in enumerate(self.trials) if done.get(t.trial.id, 0) <= number]
                if not todo:
                    continue
                if len(slices) > 1:
                    self._enter_slice(low, high)
                runner.enter_slice(low, high)
                for index, item in todo:
                    wide = runner(item.trial)
                    target = parts / f"{index}-{number}.parquet"
                    temp = parts / f"{index}-{number}.parquet.tmp"
                    if isinstance(wide, str):  # DuckDB: the trial's query itself, streamed into the part
                        source = f"({wide})"
                    else:  # Spark: its result as Arrow
                        self.con.register("_wide", wide)
                        source = "_wide"
                    copy = (f"COPY ({self._long_sql(index, item.trial, source)}) TO '{_sql_text(str(temp))}' "
                            "(FORMAT parquet)")
                    if isinstance(wide, str):  # planned without the optimizer passes screen_trial leaves out
                        from .duckdb import SLOW_OPTIMIZERS, _optimizers_off

                        with _optimizers_off(self.con, SLOW_OPTIMIZERS):
                            self.con.execute(copy)
                    else:
                        self.con.execute(copy)
                    if not isinstance(wide, str):
                        self.con.unregister("_wide")
                    os.replace(temp, target)
                    done[item.trial.id] = number + 1
                    self.checkpoint()
                    bar.update(sum(min(done.get(t.trial.id, 0), len(slices)) for t in self.trials), item.trial.id)
        if len(slices) > 1:
            self._leave_slices()

    def _runner(self):
        """A callable screening one trial over the current slice (DuckDB: the trial's query, as SQL; Spark: its
        rows, as Arrow), whose ``enter_slice(low, high)`` is called before each slice's trials."""
        if self.engine == "duckdb":
            from .duckdb import build_dictionaries, build_plan_dictionaries
            from .sql import plan as make_plan

            def query(trial) -> str:
                """screen_trial's steps, but the trial's query is returned as SQL for the part's COPY to read,
                never materialised as Arrow in this process (memory bounded by DuckDB's limit)."""
                plan = make_plan(trial.checked, self.as_of)
                build_plan_dictionaries(self.con, plan)
                for name, prepared in plan.prepare:
                    self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {prepared}")
                return plan.unordered_sql  # joined to the patients below, and sorted once with every trial's rows
            # the dictionaries hold the slice's distinct values (the units of a slice's observations ...)
            query.enter_slice = lambda low, high: build_dictionaries(self.con)
            return query
        from .spark import SparkScreener

        # Spark reads the store's Parquet files itself (shipping the tables through the driver would hold them all
        # in its heap); the DuckDB connection only builds the small dictionary tables
        folder = Path(self.input["path"]) if self.input["kind"] == "parquet" else self.out_dir / STORE
        screener = SparkScreener.from_parquet(folder, self.con)

        def rows(trial):
            return screener.screen_trial(trial, self.as_of)
        rows.enter_slice = screener.select_patients
        return rows

    def _long_sql(self, index: int, trial, source: str = "_wide") -> str:
        """One trial's wide result -> one row per patient with the criteria as a list of structs."""
        parts = []
        for criterion in trial.criteria:
            c = '"' + criterion.id.replace('"', '""') + '"'
            cc = '"' + (criterion.id + "__").replace('"', '""')
            parts.append(f"{{'id': {_sql_literal(criterion.id)}, 'verdict': {cc}verdict\", 'value': w.{c}, "
                         f"'applicable': {cc}applies\", 'missing': {cc}missing\", 'reviews': {cc}reviews\"}}")
        return (f"SELECT {index} AS trial_index, {_sql_literal(trial.id)} AS trial, w.patient_id AS patient, "
                f"p.source AS input, try_cast(regexp_extract(p.source, ':([0-9]+)$', 1) AS BIGINT) AS line, "
                f"DATE '{self.as_of.isoformat()}' AS as_of, w.decision, w.decision_reason, "
                f"[{', '.join(parts)}] AS criteria FROM {source} w JOIN patients p USING (patient_id)")

    # ------------------------------------------------------------------ stage 3: the outputs
    def write_outputs(self) -> None:
        """Every output by DuckDB itself, from one sorted table of the results: no Python per row.

        Measured and left out (2026-12-06, 100,000 patients, load 1.6): the three files written at the same
        time by three connections took as long as one after the other (3.72 s wall for 3.66 s of CPU)."""
        started = time.perf_counter()
        self._sorted_results()
        self._write_results_parquet()
        self._spread_results()
        self._write_results_jsonl()
        self._write_summary()
        if self.explain is not None:
            self._write_explanations()
        self.state["tally"] = self._tally()
        self.state["stages"]["outputs"] = True
        self.timings["outputs"] = time.perf_counter() - started
        self.checkpoint()

    def _sorted_results(self) -> None:
        """The trials' parts as one table in output order (input line, patient, trial as given), sorted once:
        the outputs scan it in that order (DuckDB keeps a table's insertion order in COPY)."""
        files = ", ".join(f"'{_sql_text(str(self.out_dir / PARTS / f'{i}-{n}.parquet'))}'"
                          for n in range(len(self._slices())) for i in range(len(self.trials)))
        self.con.execute("SET preserve_insertion_order = true")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE results AS SELECT * FROM read_parquet([{files}]) "
                         "ORDER BY line NULLS LAST, patient, trial_index")

    def _spread_results(self) -> None:
        """``results`` of one row group (up to 122,880 rows) made Arrow batches of 8,192 rows, in the same order:
        DuckDB shares a table's scan among threads by row group, so the JSON and CSV writers would each run on
        one core (results.parquet is written before, from the table: DuckDB marks a column without NULLs
        required there, which it cannot know of Arrow batches)."""
        rows = self.con.execute("SELECT count(*) FROM results").fetchall()[0][0]
        if not 0 < rows <= DUCKDB_ROW_GROUP:
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Arrow output on a DB-API result", UserWarning)
            table = self.con.execute("SELECT * FROM results").to_arrow_table()
        self.con.execute("DROP TABLE results")
        self.con.register("results", pa.Table.from_batches(table.to_batches(max_chunksize=RESULT_BATCH_ROWS), table.schema))

    def _write_results_parquet(self, con=None) -> None:
        _copy(con or self.con, "SELECT input, patient, trial, as_of, decision, decision_reason, criteria FROM results",
              self.out_dir / RESULTS_PARQUET, "FORMAT parquet")

    def _write_results_jsonl(self, con=None) -> None:
        _copy(con or self.con, "SELECT input, patient, trial, strftime(as_of, '%Y-%m-%d') AS as_of, decision, decision_reason, "
                        "list_transform(criteria, lambda c: {'id': c.id, 'verdict': c.verdict, 'missing': c.missing, "
                        "'reviews': c.reviews}) AS criteria FROM results",
              self.out_dir / RESULTS, "FORMAT json")

    def _write_summary(self, con=None) -> None:
        write_summary(con or self.con, [t.trial for t in self.trials], self.out_dir / SUMMARY)

    def _timed(self, name: str):
        return _Timer(self.timings, name)

    def _write_explanations(self) -> None:
        """The per-patient engine's full result (``check --format json``) for the patients asked for."""
        from ..patient.load import patient_from_text

        spec = self.explain
        conditions = []
        if spec.decisions:
            conditions.append("decision IN (" + ", ".join(_sql_literal(d) for d in spec.decisions) + ")")
        if spec.patients:
            conditions.append("patient IN (" + ", ".join(_sql_literal(p) for p in spec.patients) + ")")
        rows = self.con.execute(f"SELECT line, trial_index, decision FROM results WHERE {' OR '.join(conditions)} "
                                "ORDER BY line, trial_index").fetchall()
        wanted: dict[int, list] = {}
        for line, trial_index, decision in rows:
            wanted.setdefault(line, []).append((trial_index, decision))
        if spec.patients:
            found = {r[0] for r in self.con.execute("SELECT DISTINCT patient FROM results WHERE patient IN ("
                                                    + ", ".join(_sql_literal(p) for p in spec.patients) + ")").fetchall()}
            for pid in spec.patients:
                if pid not in found:
                    _say(self.err, f"warning: --explain: no screened patient has the id {pid!r}")
        temp = self.out_dir / (EXPLANATIONS + ".tmp")
        disagreements = 0
        display = str(self.patients)
        with temp.open("wb") as stream, self.patients.open("rb") as source, \
                _Progress(self.out, "explaining", len(rows), "results") as bar:
            done = 0
            for number, raw in enumerate(source, 1):
                if number not in wanted:
                    continue
                key = f"{display}:{number}"
                text = raw.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
                patient = patient_from_text(text, key, one_line=True)
                for trial_index, decision in wanted[number]:
                    result = self.trials[trial_index].trial.screen(patient, self.as_of)
                    if result.decision != decision:
                        disagreements += 1
                        _say(self.err, f"internal: {key}: the per-patient engine decided {result.decision} for "
                                       f"{self.trials[trial_index].trial.id} where {self.engine} decided {decision}; "
                                       "please report this")
                    line = json.dumps({"input": key, **result.to_dict()}, ensure_ascii=False, separators=(",", ":"))
                    stream.write((line + "\n").encode("utf-8", "backslashreplace"))
                    done += 1
                bar.update(done, "")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, self.out_dir / EXPLANATIONS)
        self.state["explained"] = {"results": len(rows), "disagreements": disagreements}

    def _tally(self) -> dict:
        """The counts the final tables show (as the python engine's tally, docs/batch.md)."""
        con = self.con
        store = self.state["stages"]["store"]
        tally = {"records": store.get("records") or 0, "bad": store["bad"],
                 "pairs": con.execute("SELECT count(*) FROM results").fetchall()[0][0], "trials": {}}
        for t in self.trials:
            tally["trials"][t.trial.id] = {"decisions": {}, "fail": {}, "missing": {}}
        for trial, decision, n in con.execute("SELECT trial, decision, count(*) FROM results GROUP BY ALL").fetchall():
            tally["trials"][trial]["decisions"][decision] = n
        for trial, cid, n in con.execute("SELECT trial, c.id, count(*) FROM (SELECT trial, unnest(criteria) AS c "
                                         "FROM results) WHERE c.verdict = 'fail' GROUP BY ALL").fetchall():
            tally["trials"][trial]["fail"][cid] = n
        rows = con.execute("SELECT trial, item, count(*) AS n FROM (SELECT DISTINCT trial, patient, "
                           "regexp_replace(item, ' (of|on) ([0-9]{4}(-[0-9]{2}){0,2}|undated)\\b', '', 'g') AS item "
                           "FROM (SELECT trial, patient, unnest(flatten(list_transform(criteria, lambda c: c.missing))) "
                           "AS item FROM results)) GROUP BY ALL ORDER BY n DESC, trial, item LIMIT 1000").fetchall()
        for trial, item, n in rows:
            tally["trials"][trial]["missing"][missing_key(item)] = n
        return tally

    # ------------------------------------------------------------------ messages
    def echo(self, entry: dict) -> None:
        self.errors_echoed += 1
        if self.errors_echoed <= 100:
            for problem in entry["problems"]:
                _say(self.err, f"{entry['input']}: {problem['path']}: {problem['message']}")
        elif self.errors_echoed == 101:
            _say(self.err, f"... more bad records: see {self.out_dir / ERRORS}")

    def report(self, elapsed: float | None) -> None:
        from types import SimpleNamespace

        from ..batch import BatchRun

        tally = self.state.get("tally") or {"records": 0, "bad": 0, "pairs": 0, "trials": {}}
        BatchRun.report(SimpleNamespace(out=self.out, tally=tally, trials=self.trials, out_dir=self.out_dir,
                                        workers=1), resumed=None, elapsed=None, rate=None)
        _say(self.out, f"also {self.out_dir / RESULTS_PARQUET}"
             + (f" and {self.out_dir / EXPLANATIONS} ({self.state.get('explained', {}).get('results', 0):,} "
                "explained results)" if self.explain else ""))
        if elapsed is not None:
            patients = self.state["stages"]["store"].get("patients") or 0
            own, _child = peak_memory()
            _say(self.out, f"{elapsed:,.1f} s, {patients / elapsed if elapsed else 0:,.0f} patients/s on {self.engine}"
                 + (f"; peak memory {own:,.0f} MB" if own is not None else ""))


# ---------------------------------------------------------------- helpers
def _first_line(exc: Exception) -> str:
    """The first line of an engine's exception. For a JVM error (Spark through py4j), the Java exception's own
    first line (``java.lang.OutOfMemoryError: Java heap space``): py4j's names only the call that failed."""
    text = str(exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            text = str(java.toString())
        except Exception:  # the JVM gateway is gone: py4j's own text
            pass
    return (text.strip().splitlines() or [""])[0][:500]


def _say(console: Console, text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Python's whitespace (str.isspace, what str.split() splits on), as an RE2 class: _one_line in SQL is
# reports.worklist._one_line, " ".join(text.split()) (tests/test_population_outputs.py checks the set)
PYTHON_SPACE = "".join(f"\\x{{{c:x}}}" for c in (
    0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028,
    0x2029, 0x202F, 0x205F, 0x3000))
# summary.csv as the python engine writes it (batch.csv_line: QUOTE_MINIMAL, "" doubled, \n, a cell holding a
# carriage return quoted), and no comment character (DuckDB would quote '#')
CSV_OPTIONS = "FORMAT csv, HEADER false, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NEW_LINE '\n', COMMENT ''"


def _define_text_macros(con) -> None:
    """``_one_line(s)`` (whitespace runs -> one space, ends trimmed, as Python's ``" ".join(s.split())``) and
    ``_cell(s)``, a summary.csv cell: empty -> NULL (written bare, as Python writes ""), and the formula
    guard of :func:`screening.batch.csv_cell`."""
    con.execute(f"CREATE OR REPLACE TEMP MACRO _one_line(s) AS regexp_replace(regexp_replace(s, "
                f"'^[{PYTHON_SPACE}]+|[{PYTHON_SPACE}]+$', '', 'g'), '[{PYTHON_SPACE}]+', ' ', 'g')")
    # the first character by its code point (= + @ tab CR -): a third of the cost of a regular expression
    con.execute("CREATE OR REPLACE TEMP MACRO _cell(s) AS CASE WHEN s IS NULL OR s = '' THEN NULL "
                "WHEN ord(s) IN (61, 43, 64, 9, 13, 45) THEN '''' || s ELSE s END")


def write_summary(con, trials, path: Path) -> None:
    """summary.csv with the python engine's columns (docs/batch.md) from the ``results`` table, written by
    DuckDB's CSV writer.

    The worklist columns are what :func:`~screening.reports.worklist.row_from_result` makes of a result
    in this engine's contract (the missing items as the SQL engine words them), computed in SQL
    (:func:`summary_sql`); the only Python is per distinct first letter of a question (its capital, as
    Python's ``str.upper`` writes it). The header is written by Python's csv module, as before."""
    from ..batch import csv_header, csv_line, csv_row

    header = csv_header(trials)
    capitals, one_line = _item_texts(con)
    temp = path.with_name(path.name + ".tmp")
    body = path.with_name(path.name + ".body.tmp")
    try:
        con.execute(f"COPY ({summary_sql(trials, capitals, items_one_line=one_line)}) TO '{_sql_text(str(body))}' "
                    f"({CSV_OPTIONS})")
        with temp.open("wb") as stream:
            stream.write(csv_line(csv_row(header)).encode("utf-8", "backslashreplace"))
            with body.open("rb") as rows:
                shutil.copyfileobj(rows, stream, 1 << 20)
            stream.flush()
            os.fsync(stream.fileno())
    finally:
        body.unlink(missing_ok=True)
    os.replace(temp, path)


def _item_texts(con) -> tuple[dict[str, str], bool]:
    """What summary.csv's questions need to know of the distinct missing items and review reasons of the
    undecided criteria (read once, each distinct text looked at once in Python, never per row):

    * Python's capital of every distinct first character (``str.upper`` can give several characters,
      ``ß`` -> ``SS``, which DuckDB's ``upper`` does not);
    * whether every one of them is already on one line (``" ".join(t.split()) == t``, as the rule sets
      word them): then the summary's query skips ``_one_line`` on each item, which is most of its cost."""
    _define_text_macros(con)
    rows = con.execute(
        "SELECT DISTINCT t FROM (SELECT unnest(flatten(list_transform("
        "list_filter(criteria, lambda c: c.verdict IN ('unknown', 'review')), "
        "lambda c: coalesce(c.missing, []::VARCHAR[]) || coalesce(c.reviews, []::VARCHAR[])))) AS t FROM results "
        "WHERE decision <> 'ineligible')"
    ).fetchall()
    capitals: dict[str, str] = {}
    one_line = True
    for (text,) in rows:
        if text is None:
            continue
        line = " ".join(text.split())
        one_line = one_line and line == text
        if line and line[0].upper() != line[0]:
            capitals[line[0]] = line[0].upper()
    return capitals, one_line


def summary_sql(trials, capitals: dict[str, str], *, items_one_line: bool = False) -> str:
    """The rows of summary.csv (after its header) from the ``results`` table, in its order.

    The worklist cells are :func:`screening.reports.worklist.row_from_result` of a result whose criteria
    carry ``id``, ``verdict``, ``applicable`` and ``missing`` (this engine's contract):

    * ``label``: ``make_label(patient, input)``: "P1 (pop.ndjson:3)";
    * ``deciding``: the failing criteria of an ineligible result, else the unknown and review ones, each
      "ID verdict" (a failing one with "fail: missing: ..." when it lists missing items, "fail: does not
      apply" when it does not apply), joined by "; "; none: the decision's reason;
    * ``to_obtain``: "Is the patient alive? (reason)" for an undetermined result with a reason, then the
      distinct missing items of the unknown and review criteria in order, each on one line with its first
      letter capitalised (``capitals``: Python's capital of each first letter that has one), unless the
      result is ineligible; ``items_missing`` counts them;
    * ``review_questions``: the distinct review reasons of the unknown and review criteria (per criterion),
      each capitalised with " (review)" after it, unless the result is ineligible; counted in ``items_missing``.

    ``items_one_line``: every missing item and review reason of an undecided criterion is known to be on one
    line already (:func:`_item_texts`), so ``_one_line`` is not applied to each.
    """
    def lit(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    capital = ("CASE substring(t, 1, 1) " + " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in sorted(capitals.items()))
               + " ELSE substring(t, 1, 1) END || substring(t, 2)") if capitals else "t"
    undecided = "list_filter(criteria, lambda c: c.verdict IN ('unknown', 'review'))"
    if items_one_line:
        texts = (f"CASE WHEN decision = 'ineligible' THEN []::VARCHAR[] ELSE flatten(list_transform({undecided}, "
                 "lambda c: coalesce(c.missing, []::VARCHAR[]))) END")
    else:
        texts = (f"CASE WHEN decision = 'ineligible' THEN []::VARCHAR[] ELSE flatten(list_transform({undecided}, "
                 "lambda c: list_transform(coalesce(c.missing, []::VARCHAR[]), lambda m: _one_line(m)))) END")
    # review reasons, one item per (criterion, question) as row_from_result keys them
    review_texts = (f"CASE WHEN decision = 'ineligible' THEN [] ELSE flatten(list_transform({undecided}, "
                    "lambda c: list_transform(coalesce(c.reviews, []::VARCHAR[]), "
                    "lambda r: {'id': c.id, 't': " + ("r" if items_one_line else "_one_line(r)") + "}))) END")
    holding = ("list_filter(criteria, lambda c: CASE WHEN decision = 'ineligible' THEN c.verdict = 'fail' "
               "ELSE c.verdict IN ('unknown', 'review') END)")
    reason = ("CASE WHEN c.applicable IS FALSE THEN 'does not apply' WHEN len(c.missing) > 0 THEN "
              "'missing: ' || _one_line(array_to_string(c.missing, ', ')) ELSE '' END")
    line = f"CASE WHEN c.verdict = 'fail' AND ({reason}) <> '' THEN c.id || ' fail: ' || ({reason}) " \
           "ELSE c.id || ' ' || c.verdict END"
    source = "nullif(input, '')"
    file = (f"CASE WHEN {source} IS NULL OR (starts_with({source}, '<') AND ends_with({source}, '>')) THEN NULL "
            f"ELSE regexp_extract(replace({source}, '\\', '/'), '[^/]*$') END")
    who = "coalesce(patient, 'None')"
    label = f"CASE WHEN coalesce({file}, '') NOT IN ('', {who}) THEN {who} || ' (' || {file} || ')' ELSE {who} END"
    cells = []
    for index, trial in enumerate(trials):
        for position in range(1, len(trial.criteria) + 1):
            c = f"criteria[{position}]"
            cells.append(f"_cell(CASE WHEN trial_index = {index} THEN (CASE WHEN struct_extract({c}, 'applicable') "
                         f"IS FALSE THEN 'n/a' ELSE struct_extract({c}, 'verdict') END) END)")
    return (
        f"WITH a AS (SELECT input, patient, trial_index, trial, as_of, decision, decision_reason, criteria, "
        f"{texts} AS texts, {review_texts} AS review_texts FROM results), "
        f"b AS (SELECT *, list_transform(texts, lambda t: {capital}) AS questions, "
        f"list_transform(review_texts, lambda r: {{'id': r.id, 'q': {capital.replace('(t,', '(r.t,') if capitals else 'r.t'} "
        f"|| ' (review)'}}) AS review_items FROM a), "
        f"c AS (SELECT *, list_filter(questions, lambda q, i: list_position(questions, q) = i) AS obtain, "
        f"list_transform(list_filter(review_items, lambda q, i: list_position(review_items, q) = i), "
        f"lambda r: r.q) AS review_questions, "
        f"CASE WHEN decision = 'undetermined' AND coalesce(decision_reason, '') <> '' THEN "
        f"'Is the patient alive? (' || _one_line(decision_reason) || ')' END AS alive, "
        f"list_transform({holding}, lambda c: {line}) AS deciding FROM b) "
        f"SELECT _cell(input), _cell(patient), _cell({label}), _cell(trial), _cell(strftime(as_of, '%Y-%m-%d')), "
        f"_cell(decision), _cell(CAST(len(obtain) + len(review_questions) + CASE WHEN alive IS NULL THEN 0 ELSE 1 END "
        f"AS VARCHAR)), "
        f"_cell(CASE WHEN len(deciding) > 0 THEN array_to_string(deciding, '; ') ELSE decision_reason END), "
        f"_cell(array_to_string(CASE WHEN alive IS NULL THEN obtain ELSE list_prepend(alive, obtain) END, '; ')), "
        f"_cell(array_to_string(review_questions, '; '))"
        f"{''.join(', ' + cell for cell in cells)} FROM c")


def _store_rules() -> dict[str, list[tuple[str, str]]]:
    """What every row of a store table must satisfy (SQL over the row, what is wrong when it does not): the values
    the ingesters write, so that a Parquet store from elsewhere is never screened with values no ingester would
    have stored (a NULL patient id would drop a patient, an infinite value or an unknown comparator change a
    verdict)."""
    from .ingest import _CODE

    code = _sql_literal(_CODE)
    rules: dict[str, list[tuple[str, str]]] = {}
    for name, table_schema in schema.TABLES.items():
        checks = [(f'"{f.name}" IS NOT NULL', f"{f.name} is NULL") for f in table_schema if not f.nullable]
        if name != "patients":
            checks.append(("patient_id IN (SELECT patient_id FROM patients)", "its patient_id is not in patients.parquet"))
        for field in table_schema:
            if field.name.endswith("_lo") and field.name[:-3] + "_hi" in table_schema.names:
                base = field.name[:-3]
                checks.append((f"{base}_lo IS NULL OR {base}_hi IS NULL OR {base}_lo <= {base}_hi",
                               f"{base}_lo is after {base}_hi"))
        rules[name] = checks
    rules["patients"] += [("sex IS NULL OR sex IN ('female', 'male', 'other', 'unknown')", "sex is not female, male, "
                           "other or unknown")]
    for lst in schema.LISTS:  # a list the patient "did not give" holds no rows (patients checked first: no NULL ids)
        rules[lst].append((f"patient_id NOT IN (SELECT patient_id FROM patients WHERE NOT has_{lst})",
                           f"its patient's has_{lst} is false (the list not given)"))
    rules["observations"] += [
        (f"regexp_full_match(code, {code}, 's')", "code is not SYSTEM:CODE of a known system"),
        ("comparator IS NULL OR comparator IN ('<', '<=', '>', '>=')", "comparator is not <, <=, > or >="),
        ("value_number IS NULL OR isfinite(value_number)", "value_number is not a finite number"),
        ("ref_low IS NULL OR isfinite(ref_low)", "ref_low is not a finite number"),
        ("ref_high IS NULL OR isfinite(ref_high)", "ref_high is not a finite number"),
        ("value_number IS NULL OR value_is_integer IS NOT NULL", "value_is_integer is NULL beside a value_number")]
    for kind in schema.RECORD_KINDS:
        rules[kind] += [(f"code IS NULL OR regexp_full_match(code, {code}, 's')",
                         "code is not SYSTEM:CODE of a known system"),
                        ("code IS NOT NULL OR unreadable IS NOT NULL", "neither code nor unreadable is given")]
    rules["facts"] += [("value_kind IN ('bool', 'number', 'string', 'null')", "value_kind is not bool, number, string "
                        "or null"), ("value_number IS NULL OR isfinite(value_number)", "value_number is not a finite number")]
    rules["record_fields"] += [("value_kind IN ('string', 'number', 'bool', 'list', 'object', 'null')",
                                "value_kind is not string, number, bool, list, object or null")]
    return rules


def _check_store(con, folder: Path) -> None:
    """Refuse (exit 2, naming the file, the rule and a patient) a Parquet store holding a row no ingester writes."""
    for name, checks in _store_rules().items():
        if not (folder / f"{name}.parquet").is_file():
            continue
        failing = " ".join(f"WHEN NOT coalesce({rule}, FALSE) THEN {_sql_literal(why)}" for rule, why in checks)
        found = con.execute(f"SELECT why, patient_id FROM (SELECT CASE {failing} END AS why, patient_id FROM {name}) "
                            "WHERE why IS NOT NULL LIMIT 1").fetchall()
        if found:
            why, pid = found[0]
            raise UsageError(f"{folder / (name + '.parquet')}: not a table of the store (docs/population.md): {why} "
                             f"(patient {pid!r}, and perhaps others); a store is screened only as the ingesters write it")


def _duck_type(arrow_type) -> str:
    from .schema import _DUCK

    return _DUCK[arrow_type]


def _copy(con, query: str, path: Path, options: str) -> None:
    temp = path.with_name(path.name + ".tmp")
    con.execute(f"COPY ({query}) TO '{_sql_text(str(temp))}' ({options})")
    os.replace(temp, path)


def _atomic_write(path: Path, data: bytes) -> None:
    temp = path.with_name(path.name + ".tmp")
    with temp.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temp, path)


def _interrupted(exc: Exception) -> bool:
    """Is this DuckDB's answer to Ctrl-C (SIGINT while a statement ran)?"""
    import duckdb

    return isinstance(exc, duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted")


class _Timer:
    """``with _Timer(timings, name):`` adds the block's wall seconds to ``timings[name]``."""

    def __init__(self, timings: dict, name: str):
        self.timings, self.name = timings, name

    def __enter__(self):
        self.started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + time.perf_counter() - self.started


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, console: Console, what: str, total: int | None, unit: str):
        self.console, self.what, self.total, self.unit = console, what, total, unit
        self.progress = None

    def __enter__(self):
        if self.console.is_terminal and not self.console.is_dumb_terminal:
            from rich.progress import (BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                                     TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                     console=self.console, transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.what, total=self.total, note="")
        return self

    def update(self, done: int, note: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=done, note=note)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_columnar_command(trials: list[Path], patients: Path, out_dir: Path, as_of: date, *, engine: str,
                         resume: bool = True, explain: str | None = None, out: Console | None = None,
                         err: Console | None = None, terminology: Path | None = None,
                         slice_patients: int | None = None) -> int:
    """Run ``screening batch --engine duckdb|spark``; returns the exit status (0, 1 bad records, 130)."""
    out = out or Console(highlight=False)
    err = err or Console(stderr=True, highlight=False)
    run = ColumnarRun(trials, patients, out_dir, as_of, engine=engine, resume=resume, explain=explain, out=out,
                      err=err, terminology=terminology, slice_patients=slice_patients)
    return run.execute()


# ---------------------------------------------------------------- screening query
def query_results(results_dir: Path, *, eligible: bool, needs: str | None, trial: str | None, out) -> int:
    """``screening query``: CSV of the patients eligible, or undetermined only for want of ``needs``.

    A result is undetermined only for want of an item when its decision is undetermined, no criterion is
    left for review, and every missing item of its undecided criteria names the item (case ignored; the
    item as a whole word at the start of the missing text, e.g. ``HbA1c`` matches "HbA1c result within 3
    months"). Returns the number of rows written.
    """
    import duckdb

    path = Path(results_dir) / RESULTS_PARQUET
    if not path.is_file():
        raise UsageError(f"{results_dir}: no {RESULTS_PARQUET} (run screening batch --engine duckdb first)")
    if eligible == (needs is not None):
        raise UsageError("give exactly one of --eligible and --needs ITEM")
    if needs is not None and not needs.strip():
        raise UsageError("--needs: name an item, e.g. --needs HbA1c")
    con = duckdb.connect()
    where = [] if trial is None else [f"trial = {_sql_literal(trial)}"]
    if trial is not None:
        known = [r[0] for r in con.execute(f"SELECT DISTINCT trial FROM read_parquet('{_sql_text(str(path))}')").fetchall()]
        if trial not in known:
            raise UsageError(f"--trial: {trial!r} is not a trial of {results_dir} ({', '.join(sorted(known))})")
    if eligible:
        where.append("decision = 'eligible'")
        select = "input, patient, trial, decision"
        header = ["input", "patient", "trial", "decision"]
    else:
        pattern = "(?i)^" + _re_escape(needs.strip()) + "([^A-Za-z0-9_]|$)"
        undecided = "list_filter(criteria, lambda c: c.verdict IN ('unknown', 'review'))"
        items = f"flatten(list_transform({undecided}, lambda c: c.missing))"
        where += ["decision = 'undetermined'",
                  f"len(list_filter({undecided}, lambda c: c.verdict = 'review' OR len(c.missing) = 0)) = 0",
                  f"len({items}) > 0",
                  f"list_bool_and(list_transform({items}, lambda m: regexp_matches(m, {_sql_literal(pattern)})))"]
        select = f"input, patient, trial, decision, array_to_string(list_distinct({items}), '; ') AS missing"
        header = ["input", "patient", "trial", "decision", "missing"]
    # results.parquet is in input order, and for one patient in the order the trials were given
    rows = con.execute(f"SELECT {select} FROM read_parquet('{_sql_text(str(path))}') "
                       f"WHERE {' AND '.join(where)}").fetchall()
    from ..batch import csv_line, csv_row

    out.write(csv_line(header))
    for row in rows:
        out.write(csv_line(csv_row(["" if v is None else str(v) for v in row])))
    return len(rows)


def _re_escape(text: str) -> str:
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in text)
