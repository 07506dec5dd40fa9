"""The `screening` command: check | explain | lint | schema | analytes (and the commands of later stages).

Exit status: 0 when the command did its work (whatever the eligibility decision), 2 for bad input
(a rule file that does not compile, a patient file that is not valid, an unknown option value).
`screening test` exits 1 when a case fails; `screening batch` exits 1 when it skipped bad records
(reported in errors.jsonl) and 130 when interrupted (resume with the same command).
Errors are printed as one clear message with file:line:column or a JSON path, never a traceback.
"""
from __future__ import annotations

import json
import sys
from datetime import date
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .compile import compile_trial
from .dates import DateProblem, parse_date
from .errors import ScreeningError, UsageError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Screen patients against clinical-trial eligibility criteria, criterion by criterion, and say why.",
)
# emoji=False: text from rule files and patients is printed as written (":warning:" stays text)
out = Console(highlight=False, soft_wrap=False, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def as_of_option(value: Optional[str]) -> date:
    if value is None:
        return date.today()
    try:
        return parse_date(value)
    except DateProblem as exc:
        raise UsageError(f"--as-of: {exc}") from None


AS_OF_HELP = "Screening date (YYYY-MM-DD); defaults to today. Windows and ages are computed at this date."


def _fail(exc: ScreeningError) -> None:
    err.print(exc.render(), markup=False, highlight=False)
    raise typer.Exit(2)


TERMINOLOGY_HELP = ("Terminology store (screening terminology load) to expand value sets with, or release "
                    "files (a folder or FHIR JSON) loaded for this run; default $SCREENING_TERMINOLOGY, else the "
                    "per-user store if it exists, else none. 'none': no store.")


def terminology_path(option: Optional[str]) -> Optional[Path]:
    """The store a command uses: --terminology FILE ('none' for none; a release folder or FHIR JSON
    file is loaded into a temporary store for the run), else $SCREENING_TERMINOLOGY, else the
    per-user default store when that file exists, else None (no store)."""
    import os

    from .terminology.store import ENV_VAR, default_store_path

    if option is not None:
        return None if option.strip().lower() in ("none", "") else Path(option).expanduser()
    env = os.environ.get(ENV_VAR)
    if env is not None:
        return None if env.strip().lower() in ("none", "") else Path(env).expanduser()
    path = default_store_path()
    return path if path.is_file() else None


def open_terminology(option: Optional[str]):
    """The open store for --terminology (or the default), None for none; a named store that is
    missing or unreadable is a usage error (exit 2)."""
    path = terminology_path(option)
    if path is None:
        return None
    from .terminology.store import TerminologyStore

    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".json"):
        from .terminology import open_release_files

        return open_release_files([path])  # release files (e.g. a rule set's bundled fixture), loaded for this run
    if not path.is_file():
        raise UsageError(f"--terminology: no terminology store at {path} (build one with `screening terminology "
                         f"load RELEASE... --store {path}`)")
    return TerminologyStore.open(path)


def print_terminology(console: Console, trial) -> None:
    """The line every text report carries: which terminology the value sets were expanded with."""
    from .expand import describe_sources

    text = describe_sources(trial.terminology)
    if trial.terminology is None:
        text += " (value sets that need SNOMED CT or RxNorm hierarchies leave such records unknown)"
    console.print(f"terminology: {text}", markup=False, highlight=False)


def _screen_files(trial_file: Path, patients: List[Path], as_of: Optional[str], terminology: Optional[str] = None):
    """Compile the trial, load every patient (all input checked before any output), screen them."""
    from .patient.load import load_patient

    try:
        day = as_of_option(as_of)
        trial = compile_trial(trial_file, open_terminology(terminology))
        records = [load_patient(p) for p in patients]
    except ScreeningError as exc:
        _fail(exc)
    return trial, [trial.screen(r, day) for r in records]


@app.command()
def check(
    trial_file: Path = typer.Argument(..., help="Rule-set file (.crit)."),
    patients: List[Path] = typer.Argument(..., help="Patient JSON or FHIR R4 files."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text (a table) or json."),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
) -> None:
    """Screen patients: a verdict for every criterion and the trial decision."""
    from .render import print_results

    trial, results = _screen_files(trial_file, patients, as_of, terminology)
    if output_format is OutputFormat.json:
        payload = [r.to_dict() for r in results]
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, ensure_ascii=False))
        return
    print_terminology(out, trial)
    print_results(out, trial, results)
    for result in results:
        for warning in result.warnings:
            err.print(f"warning: {result.source}: {warning}", markup=False)


@app.command()
def explain(
    trial_file: Path = typer.Argument(..., help="Rule-set file (.crit)."),
    patients: List[Path] = typer.Argument(..., help="Patient JSON or FHIR R4 files."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
    show_all: bool = typer.Option(False, "--all", help="Explain passing criteria too."),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format",
                                               help="text, or json (the criteria explained, with evidence)."),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
) -> None:
    """Explain every criterion that failed, is unknown or needs review: evidence, limits, margins, missing data."""
    from .render import print_explanation

    trial, results = _screen_files(trial_file, patients, as_of, terminology)
    if output_format is OutputFormat.json:
        payload = []
        for result in results:
            data = result.to_dict()
            data["criteria"] = [c for c in data["criteria"] if show_all or c["verdict"] != "pass"]
            payload.append(data)
        print(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, ensure_ascii=False))
        return
    print_terminology(out, trial)
    for index, result in enumerate(results):
        if index:
            out.print()
        print_explanation(out, trial, result, show_all=show_all)


@app.command()
def lint(
    trial_files: List[Path] = typer.Argument(..., help="Rule-set files to compile."),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when there are warnings (errors still exit 2)."),
) -> None:
    """Compile rule sets without screening and report every problem at once, then the warnings.

    Exit 0 when every file compiles (warnings or not), 2 when one does not; with --strict, 1 when
    every file compiles but there are warnings. For each rule set that compiles, a summary on
    stderr: criteria encoded, drafted (`draft`, not yet confirmed) and review-only (the rule is
    only `review "..."`).
    """
    from .ir import Review

    failed = False
    warned = 0
    try:
        store = open_terminology(terminology)
    except ScreeningError as exc:
        _fail(exc)
    for path in trial_files:
        try:
            trial = compile_trial(path, store)
        except ScreeningError as exc:
            failed = True
            err.print(exc.render(), markup=False)
            continue
        for warning in trial.warnings:
            err.print(warning.render(), markup=False, highlight=False)
        warned += len(trial.warnings)
        drafts = sum(1 for c in trial.criteria if c.draft)
        note = f", {drafts} draft" if drafts else ""
        if trial.warnings:
            note += f", {len(trial.warnings)} warning{'s' if len(trial.warnings) != 1 else ''}"
        out.print(f"ok: {path}: trial {trial.id}, {len(trial.criteria)} criteria{note}", markup=False)
        # the summary goes to stderr: stdout keeps the one "ok:" line per file that scripts read
        review_only = sum(1 for c in trial.criteria if not c.draft and c.applies is None
                          and isinstance(c.condition, Review))
        encoded = len(trial.criteria) - drafts - review_only
        err.print(f"{path}: {len(trial.criteria)} criteria: {encoded} encoded, {drafts} drafted, "
                  f"{review_only} review-only", markup=False)
    if store is not None:  # (no line without a store: lint's output stays one line per file)
        from .expand import describe_sources

        sources = [{"source": s.name, "version": s.version, "effective": s.effective} for s in store.sources()]
        out.print(f"terminology: {describe_sources(sources)}", markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(2)
    if strict and warned:
        raise typer.Exit(1)


@app.command()
def schema() -> None:
    """Print the JSON Schema of patient JSON version 1."""
    from .patient.model import Patient

    print(json.dumps(Patient.model_json_schema(), indent=2))


@app.command()
def analytes() -> None:
    """List the lab and vital-sign names rules may use, with LOINC codes and units."""
    from rich.table import Table
    from rich.text import Text

    from .analytes import catalogue

    table = Table("name", "aliases", "unit", "molar mass g/mol", "LOINC")
    for a in catalogue().analytes:
        table.add_row(*(Text(cell) for cell in (a.name, ", ".join(a.aliases), a.unit_text or "(text)",
                                                 f"{a.molar_mass:g}" if a.molar_mass else "",
                                                 ", ".join([*a.loinc, *(f"LOCAL:{c}" for c in a.local)]))))
    out.print(table)


@app.command("test")
def test_command(
    paths: List[Path] = typer.Argument(..., help="Case files (.cases.yaml) or folders to search for them."),
    select: Optional[str] = typer.Option(None, "-k", help="Only cases whose name contains this text (or matches this pattern)."),
    update: bool = typer.Option(False, "--update", help="Record the current verdicts into the case files (golden mode)."),
    coverage: bool = typer.Option(False, "--coverage", help="Report which outcomes each criterion and branch has produced."),
    junit_xml: Optional[Path] = typer.Option(None, "--junit-xml", help="Also write a JUnit XML report for CI systems."),
    terminology: Optional[str] = typer.Option(
        None, "--terminology", help="Terminology store for case files that name none (a case file's own "
        "`terminology:` wins). Default: none, so that a case file gives the same answers on every machine."),
) -> None:
    """Run rule-set case files: expected decisions and verdicts per patient. Exit 1 if any case fails."""
    from .testing.command import run_test_command

    try:
        store = open_terminology(terminology) if terminology is not None else None
        code = run_test_command(paths, select=select, update=update, coverage=coverage, junit_xml=junit_xml,
                                out=out, err=err, terminology=store)
    except ScreeningError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command("convert-fhir")
def convert_fhir(
    bundle: Path = typer.Argument(..., help="FHIR R4 Bundle or Patient resource (JSON)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write here instead of standard output."),
) -> None:
    """Convert a FHIR R4 bundle into patient JSON (version 1); what was dropped is reported on stderr."""
    from .patient.fhir import FhirError, fhir_to_patient, is_fhir
    from .patient.load import parse_json, patient_from_document, read_document_text
    from .errors import DataError, DataProblem

    try:
        document = parse_json(read_document_text(bundle), str(bundle))  # size-checked before reading
        if not is_fhir(document):
            raise DataError(str(bundle), [DataProblem("$.resourceType", "not a FHIR Bundle or Patient resource")])
        try:
            converted, report = fhir_to_patient(document)
        except FhirError as exc:
            raise DataError(str(bundle), [DataProblem(exc.path, exc.message, "fhir")]) from None
        patient_from_document(converted, str(bundle))  # the result must validate as patient JSON
    except ScreeningError as exc:
        _fail(exc)
    converted = {"version": 1, **converted}
    text = json.dumps(converted, indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    err.print(f"{bundle}: {report.summary()}", markup=False)


@app.command("import-ctgov")
def import_ctgov(
    record: Path = typer.Argument(..., help="ClinicalTrials.gov API v2 study JSON or legacy XML record."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the rule set here instead of standard output."),
) -> None:
    """Write a rule-set skeleton for a registry record: structured fields as rules, each bullet as a criterion."""
    from .ctgov import import_record

    try:
        text = import_record(record)
    except ScreeningError as exc:
        _fail(exc)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}", markup=False)
    else:
        sys.stdout.write(text)


@app.command()
def batch(
    trials: List[Path] = typer.Argument(..., help="Rule-set files."),
    patients: Path = typer.Option(..., "--patients", help="A folder of patient files (JSON or FHIR) or an NDJSON file."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for results.jsonl, summary.csv, errors.jsonl and progress.json."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes (default: 2)."),
    resume: bool = typer.Option(True, "--resume/--restart", help="Continue an interrupted run in --out (default) or start over."),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
    engine: Optional[str] = typer.Option(None, "--engine", help="duckdb (SQL on DuckDB, embedded), spark (SQL on Apache "
                                                               "Spark) or python (the per-patient engine, explanations "
                                                               "for every patient). Default: duckdb when it can read the "
                                                               "input and translate the rule sets, else python."),
    explain: Optional[str] = typer.Option(None, "--explain", help="duckdb/spark: write explanations.jsonl for these "
                                                                  "patients only: decisions (eligible,undetermined) "
                                                                  "and/or patient ids, comma-separated."),
) -> None:
    """Screen many patients against one or more trials, streaming results to files.

    Exit 0 when every record was screened, 1 when bad records were skipped (see errors.jsonl),
    2 for bad arguments, 130 when interrupted: run the same command again to resume.
    """
    from .batch import run_batch_command

    try:
        if engine is not None and engine not in ("duckdb", "spark", "python"):
            raise UsageError(f"--engine: {engine!r} is not one of duckdb, spark, python")
        if engine == "python" and explain is not None:
            raise UsageError("--explain is for --engine duckdb or spark: the python engine explains every patient "
                             "in results.jsonl")
        day = as_of_option(as_of)
        store_path = terminology_path(terminology)
        if store_path is not None and (store_path.is_dir() or store_path.suffix.lower() == ".json"):
            from .terminology.load import build_release_store

            store_path = build_release_store([store_path])  # release files: one store for every worker
        if store_path is not None and not store_path.is_file():
            raise UsageError(f"--terminology: no terminology store at {store_path}")
        if engine is None:
            try:
                from .population.run import choose_engine

                engine, note = choose_engine(trials, patients, day, store_path)
            except ImportError as exc:  # the population extra is not installed
                engine, note = "python", f"the duckdb engine needs the population extra ({exc})"
            if note:
                err.print(f"note: {note}; screening with --engine python", markup=False, highlight=False)
            if engine == "python" and explain is not None:
                raise UsageError("--explain needs the duckdb engine, which cannot run here"
                                 + (f": {note}" if note else " (the input is not an NDJSON file or a Parquet store)"))
        if engine == "python":
            code = run_batch_command(trials, patients, out_dir, day, workers=workers, resume=resume, out=out, err=err,
                                     terminology=store_path)
        else:
            try:
                from .population.run import run_columnar_command
            except ImportError as exc:  # the population extra is not installed
                raise UsageError(f"--engine {engine} needs the population extra (pip install 'screening[population]'): "
                                 f"{exc}") from None
            code = run_columnar_command(trials, patients, out_dir, day, engine=engine, resume=resume, explain=explain,
                                        out=out, err=err, terminology=store_path)
    except ScreeningError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def query(
    results_dir: Path = typer.Argument(..., help="The --out folder of a screening batch run (duckdb or spark engine)."),
    eligible: bool = typer.Option(False, "--eligible", help="The patients found eligible."),
    needs: Optional[str] = typer.Option(None, "--needs", help="The patients undetermined only for want of this item "
                                                              "(e.g. HbA1c): one test would decide them."),
    trial: Optional[str] = typer.Option(None, "--trial", help="Only this trial's results."),
) -> None:
    """Patients of a batch run's results, as CSV on standard output: eligible ones, or those undetermined
    only for want of one named item ("who needs only an HbA1c to be decided?")."""
    try:
        from .population.run import query_results

        query_results(results_dir, eligible=eligible, needs=needs, trial=trial, out=sys.stdout)
    except ImportError as exc:
        _fail(UsageError(f"screening query needs the population extra (pip install 'screening[population]'): {exc}"))
    except ScreeningError as exc:
        _fail(exc)


from .terminology.cli import app as _terminology_app  # noqa: E402

app.add_typer(_terminology_app, name="terminology")


def main() -> None:
    """Entry point of the `screening` console script."""
    try:
        app()
    except ScreeningError as exc:  # a late error outside a command's own handling
        err.print(exc.render(), markup=False)
        sys.exit(2)
