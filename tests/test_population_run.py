"""screening.population.run.ColumnarRun in this process: the store, the stage timings, and what an interruption
at each point leaves for the resume."""
from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pytest

pytest.importorskip("duckdb")
pytest.importorskip("sqlglot")

from rich.console import Console  # noqa: E402
from test_population_cli import TINY, write_population  # noqa: E402

from screening.population import run as popruns  # noqa: E402
from screening.population import schema  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_rules.crit"
AS_OF = date(2026, 11, 25)


def columnar(tmp_path, out="run", trials=(TINY,), resume=True, explain=None):
    sink = Console(file=io.StringIO())
    return popruns.ColumnarRun(list(trials), tmp_path / "pop.ndjson", tmp_path / out, AS_OF, engine="duckdb",
                               resume=resume, explain=explain, out=sink, err=sink)


def _after(monkeypatch, method: str, then) -> None:
    """ColumnarRun.<method> as it is, then ``then(run)``: to look at the run's state at that point."""
    original = getattr(popruns.ColumnarRun, method)

    def wrapped(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        then(self)
        return result

    monkeypatch.setattr(popruns.ColumnarRun, method, wrapped)


def outputs(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in ("results.jsonl", "summary.csv", "errors.jsonl")}


def test_a_run_records_its_stage_timings_and_the_store(tmp_path):
    write_population(tmp_path)
    assert columnar(tmp_path, explain="eligible").execute() == 1
    out = tmp_path / "run"
    state = json.loads((out / "progress.json").read_text())
    timings = state["timings"]
    assert {"ingestion", "store write", "screening", "outputs"} <= set(timings)
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())
    assert state["stages"]["store"] == {"records": 5, "patients": 4, "bad": 1, "python_path": 1}
    assert sorted(p.name for p in (out / "store").iterdir()) == sorted(f"{n}.parquet" for n in schema.TABLES)
    assert not (out / "store.tmp").exists() and not (out / "errors.jsonl.tmp").exists()
    # the store is the ingested population, reusable as --patients
    again = popruns.ColumnarRun([TINY], out / "store", tmp_path / "from-store", AS_OF, engine="duckdb", resume=True,
                                explain=None, out=Console(file=io.StringIO()), err=Console(file=io.StringIO()))
    assert again.execute() == 0
    mine = (out / "summary.csv").read_text().splitlines()
    theirs = (tmp_path / "from-store" / "summary.csv").read_text().splitlines()
    assert [r.split(",")[1:] for r in mine] == [r.split(",")[1:] for r in theirs]  # the input column differs
    assert len(mine) == 5 and (out / "explanations.jsonl").read_text().count("\n") == 1


def test_a_trial_is_recorded_only_after_the_store_it_was_screened_from(tmp_path, monkeypatch):
    write_population(tmp_path)
    seen = []

    def saved(self):
        state = json.loads((self.out_dir / "progress.json").read_text())
        seen.append(state)
        if state["trials_done"]:
            assert "store" in state["stages"] and (self.out_dir / "store" / "patients.parquet").is_file()
            assert (self.out_dir / "errors.jsonl").is_file()

    _after(monkeypatch, "checkpoint", saved)
    assert columnar(tmp_path, trials=(TINY, BENCH)).execute() == 1
    # the start, the store, each trial, the outputs
    assert [(bool(s["stages"].get("store")), len(s["trials_done"])) for s in seen] == [
        (False, 0), (True, 0), (True, 1), (True, 2), (True, 2)]
    assert seen[-1]["stages"]["outputs"] is True


@pytest.mark.parametrize("where", ["screen_trials", "_long_sql", "_sorted_results", "_tally", "_write_results_jsonl"])
def test_interrupted_anywhere_the_resume_gives_the_same_files(tmp_path, monkeypatch, where):
    write_population(tmp_path)
    assert columnar(tmp_path, out="whole").execute() == 1
    whole = outputs(tmp_path / "whole")

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(popruns.ColumnarRun, where, stop)
        assert columnar(tmp_path).execute() == 130
    out = tmp_path / "run"
    state = json.loads((out / "progress.json").read_text())
    assert "outputs" not in state["stages"] and state["stages"]["store"]["patients"] == 4
    assert (out / "store" / "patients.parquet").is_file()
    if where in ("screen_trials", "_long_sql"):  # before a trial is saved
        assert state["trials_done"] == {} and (out / "parts").is_dir() == (where == "_long_sql")
    else:
        assert state["trials_done"] == {"TINY-001": 1}
    assert columnar(tmp_path).execute() == 1
    assert outputs(out) == whole


def test_a_failing_store_write_stops_the_run_with_one_message(tmp_path, monkeypatch):
    write_population(tmp_path)

    def broken(self):
        self.con.execute("COPY patients TO '/nonexistent/x/y.parquet'")

    monkeypatch.setattr(popruns.ColumnarRun, "_start_store_write", broken)
    with pytest.raises(popruns.ScreeningError, match="internal error on --engine duckdb: IOException") as caught:
        columnar(tmp_path).execute()
    assert "completed stages are kept" in str(caught.value)
    state = json.loads((tmp_path / "run" / "progress.json").read_text())
    assert "store" not in state["stages"] and state["trials_done"] == {}
    assert not (tmp_path / "run" / "store").exists()


def test_a_jvm_error_is_named_by_the_java_exception_not_by_the_py4j_call(tmp_path, monkeypatch):
    """py4j's first line only names the call (``An error occurred while calling o1277.localCheckpoint.``); the
    message gives the Java exception's own first line, which says what to do about it."""
    write_population(tmp_path)

    class JavaException:
        def toString(self):  # noqa: N802 (py4j's Java object)
            return "java.lang.OutOfMemoryError: Java heap space\n\tat org.apache.spark.Something"

    class Py4JJavaError(Exception):
        java_exception = JavaException()

        def __str__(self):
            return "An error occurred while calling o1277.localCheckpoint.\n: java.lang.OutOfMemoryError"

    def failing(self):
        raise Py4JJavaError()

    monkeypatch.setattr(popruns.ColumnarRun, "screen_trials", failing)
    with pytest.raises(popruns.ScreeningError) as caught:
        columnar(tmp_path).execute()
    assert str(caught.value).startswith("internal error on --engine duckdb: Py4JJavaError: "
                                        "java.lang.OutOfMemoryError: Java heap space; completed stages are kept")


def test_ctrl_c_while_duckdb_runs_a_statement_is_an_interruption_not_an_error(tmp_path, monkeypatch):
    """DuckDB stops a statement on Ctrl-C and raises its own exception: the run says it was interrupted
    (exit 130, resumable), as for a Ctrl-C between statements, never "internal error"."""
    import threading

    write_population(tmp_path)
    messages = io.StringIO()

    def long_statement(self):
        threading.Timer(0.2, self.con.interrupt).start()
        self.con.execute("SELECT count(*) FROM range(20000000000) t(i) WHERE i % 7 = 3").fetchall()

    monkeypatch.setattr(popruns.ColumnarRun, "_sorted_results", long_statement)
    run = popruns.ColumnarRun([TINY], tmp_path / "pop.ndjson", tmp_path / "run", AS_OF, engine="duckdb", resume=True,
                              explain=None, out=Console(file=io.StringIO()), err=Console(file=messages))
    assert run.execute() == 130
    assert messages.getvalue().splitlines()[-1] == "interrupted; run the same command again to resume (completed stages are kept)"
    assert "internal error" not in messages.getvalue()
    assert popruns._interrupted(RuntimeError("Query interrupted"))  # what the Python client raises on SIGINT
    assert not popruns._interrupted(RuntimeError("Query failed"))
    monkeypatch.undo()
    assert columnar(tmp_path).execute() == 1
    assert json.loads((tmp_path / "run" / "progress.json").read_text())["stages"]["outputs"] is True


def _sliced_population(tmp_path: Path, n: int = 61) -> Path:
    from population_gen import population

    path = tmp_path / "pop.ndjson"
    documents = population(n, 5)
    documents[3].pop("observations", None)  # a list not provided, in a slice of its own
    documents[10]["id"] = "P00006'\"ü"  # a quote in a slice's first id (the 8th in order)
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    return path


SLICED_TRIALS = (BENCH, ROOT / "trials" / "NCT00659217.crit", TINY)


def _run(tmp_path, out, slice_patients, patients=None, resume=True):
    sink = Console(file=io.StringIO())
    return popruns.ColumnarRun(list(SLICED_TRIALS), patients or tmp_path / "pop.ndjson", tmp_path / out, AS_OF,
                               engine="duckdb", resume=resume, explain=None, out=sink, err=sink,
                               slice_patients=slice_patients)


def test_a_population_screened_in_slices_gives_the_files_of_one_screened_whole(tmp_path):
    _sliced_population(tmp_path)
    assert _run(tmp_path, "whole", None).execute() == 0
    assert _run(tmp_path, "sliced", 7).execute() == 0
    whole, sliced = tmp_path / "whole", tmp_path / "sliced"
    assert outputs(sliced) == outputs(whole)
    import pyarrow.parquet as pq

    assert pq.read_table(sliced / "results.parquet").equals(pq.read_table(whole / "results.parquet"))
    state = json.loads((sliced / "progress.json").read_text())
    ids = sorted(json.loads(line)["id"] for line in (tmp_path / "pop.ndjson").read_text().splitlines())
    assert state["slices"] == ids[7::7] and ids[7] == "P00006'\"ü"  # 9 slices: 8 of 7 patients, one of 5
    assert state["trials_done"] == {t: 9 for t in ("BENCH-T2D-001", "NCT00659217", "TINY-001")}
    assert len(list((sliced / "parts").glob("*.parquet"))) == 27
    assert json.loads((whole / "progress.json").read_text())["slices"] == []
    # a Parquet store as the input, opened as views and sliced the same way
    assert _run(tmp_path, "from-store", 10, patients=sliced / "store").execute() == 0
    mine = (tmp_path / "from-store" / "summary.csv").read_text().splitlines()
    assert [r.split(",")[1:] for r in mine] == [r.split(",")[1:] for r in (whole / "summary.csv").read_text().splitlines()]
    assert len(json.loads((tmp_path / "from-store" / "progress.json").read_text())["slices"]) == 6


def test_results_of_one_row_group_are_written_from_arrow_batches_with_the_bytes_of_the_table(tmp_path, monkeypatch):
    _sliced_population(tmp_path)
    spread = []
    _after(monkeypatch, "_spread_results", lambda self: spread.append(
        self.con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name = 'results'").fetchall()))
    monkeypatch.setattr(popruns, "RESULT_BATCH_ROWS", 16)  # a dozen batches, which DuckDB's threads share
    assert _run(tmp_path, "arrow", None).execute() == 0
    assert spread == [[]]  # 183 results: handed to the writers as Arrow batches, the table dropped
    monkeypatch.setattr(popruns, "DUCKDB_ROW_GROUP", 0)  # as if a row group held none: the table itself is read
    assert _run(tmp_path, "table", None).execute() == 0
    assert spread == [[], [("results",)]]
    for name in ("results.jsonl", "summary.csv", "results.parquet", "errors.jsonl"):
        assert (tmp_path / "arrow" / name).read_bytes() == (tmp_path / "table" / name).read_bytes(), name
    tally = [json.loads((tmp_path / out / "progress.json").read_text())["tally"] for out in ("arrow", "table")]
    assert tally[0] == tally[1] and tally[0]["pairs"] == 183


def test_a_run_interrupted_between_slices_resumes_with_the_same_slices(tmp_path, monkeypatch):
    _sliced_population(tmp_path)
    assert _run(tmp_path, "whole", None).execute() == 0
    calls = []
    original = popruns.ColumnarRun.checkpoint

    def checkpoint(self):
        original(self)
        calls.append(dict(self.state["trials_done"]))
        if self.state["trials_done"] == {"BENCH-T2D-001": 2, "NCT00659217": 2, "TINY-001": 1}:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(popruns.ColumnarRun, "checkpoint", checkpoint)
        assert _run(tmp_path, "sliced", 20).execute() == 130
    state = json.loads((tmp_path / "sliced" / "progress.json").read_text())
    assert len(state["slices"]) == 3 and state["trials_done"] == {"BENCH-T2D-001": 2, "NCT00659217": 2, "TINY-001": 1}
    # resumed with another slice size: the run keeps its own slices, and screens only what is left
    resumed = _run(tmp_path, "sliced", 5)
    screened = []
    real = resumed._long_sql
    resumed._long_sql = lambda index, trial, source="_wide": screened.append(trial.id) or real(index, trial, source)
    assert resumed.execute() == 0
    assert screened == ["TINY-001", "BENCH-T2D-001", "NCT00659217", "TINY-001", "BENCH-T2D-001", "NCT00659217", "TINY-001"]
    assert outputs(tmp_path / "sliced") == outputs(tmp_path / "whole")


def test_slice_patients_must_be_a_number_of_patients(tmp_path):
    with pytest.raises(popruns.UsageError, match="--slice-patients: 0 is not a number of patients"):
        _run(tmp_path, "x", 0)


def test_duckdbs_memory_limit_is_set_from_the_environment(tmp_path, monkeypatch):
    write_population(tmp_path)
    seen = []
    original = popruns.ColumnarRun.screen_trials

    def screen_trials(self):
        seen.append(self.con.execute("SELECT current_setting('memory_limit')").fetchone()[0])
        original(self)

    monkeypatch.setattr(popruns.ColumnarRun, "screen_trials", screen_trials)
    monkeypatch.setenv("SCREENING_DUCKDB_MEMORY", "512MB")
    assert columnar(tmp_path).execute() == 1
    assert seen == ["488.2 MiB"]
    before = outputs(tmp_path / "run")
    monkeypatch.setenv("SCREENING_DUCKDB_MEMORY", "lots")
    with pytest.raises(popruns.UsageError, match="SCREENING_DUCKDB_MEMORY='lots': not a memory limit DuckDB takes"):
        columnar(tmp_path, resume=False).execute()
    assert outputs(tmp_path / "run") == before  # refused before --out is touched, even with --restart


def _corrupt(store: Path, table: str, change) -> None:
    import pyarrow.parquet as pq

    path = store / f"{table}.parquet"
    pq.write_table(change(pq.read_table(path)), path)


def _set(column: str, value, row: int | None = 0):
    import pyarrow as pa

    def change(table):
        values = table[column].to_pylist()
        for i in range(len(values)) if row is None else [row]:
            values[i] = value
        field = table.schema.field(column)
        return table.set_column(table.schema.get_field_index(column), field.with_nullable(True),
                                pa.array(values, field.type))
    return change


@pytest.mark.parametrize("table, change, message", [
    ("patients", _set("patient_id", None), "patients.parquet: not a table of the store (docs/population.md): "
                                           "patient_id is NULL"),
    ("observations", _set("value_number", float("inf")), "value_number is not a finite number"),
    ("observations", _set("comparator", "~"), "comparator is not <, <=, > or >="),
    ("observations", _set("code", "NOPE"), "code is not SYSTEM:CODE of a known system"),
    ("observations", _set("patient_id", "nobody"), "its patient_id is not in patients.parquet (patient 'nobody'"),
    ("patients", _set("has_observations", False, None), "observations.parquet: not a table of the store "
                                                         "(docs/population.md): its patient's has_observations is false"),
    ("facts", _set("value_kind", "weird"), "value_kind is not bool, number, string or null"),
    ("observations", lambda t: t.drop_columns(["unit"]), "observations.parquet: not a table of the store "
                                                         "(docs/population.md): no column unit"),
])
def test_a_parquet_store_holding_what_no_ingester_writes_is_refused_naming_the_file_and_the_rule(
        tmp_path, table, change, message):
    import shutil

    _sliced_population(tmp_path, 12)
    assert _run(tmp_path, "first", None).execute() == 0
    for slice_patients in (None, 5):  # the store as tables, and as views screened in slices
        store = tmp_path / f"store-{slice_patients}"
        shutil.copytree(tmp_path / "first" / "store", store)
        _corrupt(store, table, change)
        with pytest.raises(popruns.UsageError) as refused:
            _run(tmp_path, f"again-{slice_patients}", slice_patients, patients=store).execute()
        assert message in str(refused.value)


def _unfinished_run(tmp_path, change=lambda state: None) -> Path:
    """A complete run of TINY made to look stopped before its outputs, its progress.json changed by ``change``."""
    write_population(tmp_path)
    columnar(tmp_path).execute()
    path = tmp_path / "run" / "progress.json"
    state = json.loads(path.read_text())
    state["stages"].pop("outputs")
    change(state)
    path.write_text(json.dumps(state))
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda state: state.update(stages="x"), "is damaged (stages is not an object)"),
    (lambda state: state.update(trials_done={"TINY-001": "x"}), "is damaged (trials_done is not an object of slice counts)"),
    (lambda state: state.update(slices=["b", "a"]), "is damaged (slices is not a list of patient ids in order)"),
    (lambda state: state.update(trials_done={"TINY-001": 5}), "trials_done counts more slices than the run has"),
])
def test_a_damaged_checkpoint_is_refused_with_use_restart(tmp_path, damage, message):
    path = _unfinished_run(tmp_path, lambda state: damage(state.update(slices=[]) or state))
    with pytest.raises(popruns.UsageError) as refused:
        columnar(tmp_path).execute()
    assert message in str(refused.value) and "use --restart" in str(refused.value)
    path.write_text("[" * 100000 + "]" * 100000)  # nested past Python's recursion limit
    with pytest.raises(popruns.UsageError, match="cannot read the checkpoint"):
        columnar(tmp_path).execute()


@pytest.mark.parametrize("lose", ["store/patients.parquet", "parts/0-0.parquet"])
def test_a_saved_stage_whose_files_are_gone_is_refused_not_finished_without_them(tmp_path, lose):
    _unfinished_run(tmp_path)
    (tmp_path / "run" / lose).unlink()
    with pytest.raises(popruns.UsageError) as refused:
        columnar(tmp_path).execute()
    assert f"{lose} is missing" in str(refused.value) and "use --restart" in str(refused.value)
    (tmp_path / "run" / "results.jsonl").unlink()
    (tmp_path / "run" / "results.jsonl").mkdir()  # --restart clears even a folder in a file's place
    assert columnar(tmp_path, resume=False).execute() == 1
    assert (tmp_path / "run" / "results.jsonl").is_file()


def test_two_runs_into_one_folder_the_second_is_refused(tmp_path):
    from screening.batch import _LOCKS, make_out_dir

    out = tmp_path / "run"
    make_out_dir(out)  # this process holds the folder's lock: another process may not take it
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from screening.batch import make_out_dir; make_out_dir(Path(sys.argv[1]))", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode != 0 and "another screening batch is writing to this folder" in probe.stderr
    _LOCKS.pop(str(out.resolve())).close()
