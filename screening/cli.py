"""The `screening` command: check | explain | lint | schema | analytes (and the commands of later stages).

Exit status: 0 when the command did its work (whatever the eligibility decision), 2 for bad input
(a rule file that does not compile, a patient file that is not valid, an unknown option value).
`screening test` exits 1 when a case fails; `screening batch` exits 1 when it skipped bad records
(reported in errors.jsonl) and 130 when interrupted (resume with the same command).
Errors are printed as one clear message with file:line:column or a JSON path, never a traceback.
"""
from __future__ import annotations

import json
import os
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


@app.callback()
def _options(ctx: typer.Context, no_cache: bool = typer.Option(
        False, "--no-cache", help="Do not read or write the per-user cache (compiled rule sets, parse tables, "
        "unit table; docs/caching.md). The same as SCREENING_CACHE=off.")) -> None:
    """Screen patients against clinical-trial eligibility criteria, criterion by criterion, and say why."""
    if no_cache:
        import os

        from . import cache

        before = os.environ.get(cache.ENV_SWITCH)
        cache.set_enabled(False)
        os.environ[cache.ENV_SWITCH] = "off"  # batch workers are other processes

        def restore() -> None:  # (for a program that runs several commands in one process)
            cache.set_enabled(None)
            if before is None:
                os.environ.pop(cache.ENV_SWITCH, None)
            else:
                os.environ[cache.ENV_SWITCH] = before

        ctx.call_on_close(restore)


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


def _load_each(paths: List[Path]):
    """Load every patient file: ([records], [(path, error)]); a bad file does not stop the others."""
    from .patient.load import load_patient

    records, bad = [], []
    for path in paths:
        try:
            records.append(load_patient(path))
        except ScreeningError as exc:
            bad.append((path, exc))
    return records, bad


def _screen_files(trial_file: Path, patients: List[Path], as_of: Optional[str], terminology: Optional[str] = None):
    """Compile the trial (a bad rule file or option: exit 2 at once), then load and screen every patient
    file that can be read. Returns (trial, results, bad files); the caller reports the bad files
    after the good results and exits 2."""
    try:
        day = as_of_option(as_of)
        trial = compile_trial(trial_file, open_terminology(terminology))
    except ScreeningError as exc:
        _fail(exc)
    records, bad = _load_each(patients)
    return trial, [trial.screen(r, day) for r in records], bad


def _report_bad(bad, total: int) -> None:
    """Each unreadable patient file with its error (file:line:column or JSON path), then exit 2."""
    if not bad:
        return
    for _path, exc in bad:
        err.print(exc.render(), markup=False, highlight=False)
    if total > 1:
        others = "; the others were screened" if len(bad) < total else ""
        err.print(f"{len(bad)} of {total} patient files could not be read{others}", markup=False, highlight=False)
    raise typer.Exit(2)


@app.command()
def check(
    trial_file: Path = typer.Argument(..., help="Rule-set file (.crit)."),
    patients: List[Path] = typer.Argument(..., help="Patient JSON or FHIR R4 files."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP),
    output_format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text (a table) or json."),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
    wide: bool = typer.Option(False, "--wide", help="Also the registry text and the full explanation of every "
                                                    "criterion (the default table gives a one-line reason)."),
) -> None:
    """Screen patients: a verdict for every criterion and the trial decision.

    Every readable patient file is screened; each unreadable one is reported with its error, and the
    exit status is then 2."""
    from .render import print_results

    trial, results, bad = _screen_files(trial_file, patients, as_of, terminology)
    if output_format is OutputFormat.json:
        payload = [r.to_dict() for r in results]
        if payload:
            print(json.dumps(payload[0] if len(payload) == 1 and len(patients) == 1 else payload, indent=2,
                             ensure_ascii=False))
        _report_bad(bad, len(patients))
        return
    if results:
        print_terminology(out, trial)
        print_results(out, trial, results, wide=wide)
    for result in results:
        for warning in result.warnings:
            err.print(f"warning: {result.source}: {warning}", markup=False)
    _report_bad(bad, len(patients))


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

    trial, results, bad = _screen_files(trial_file, patients, as_of, terminology)
    if output_format is OutputFormat.json:
        payload = []
        for result in results:
            data = result.to_dict()
            data["criteria"] = [c for c in data["criteria"] if show_all or c["verdict"] != "pass"]
            payload.append(data)
        if payload:
            print(json.dumps(payload[0] if len(payload) == 1 and len(patients) == 1 else payload, indent=2,
                             ensure_ascii=False))
        _report_bad(bad, len(patients))
        return
    if results:
        print_terminology(out, trial)
    for index, result in enumerate(results):
        if index:
            out.print()
        print_explanation(out, trial, result, show_all=show_all)
    _report_bad(bad, len(patients))


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
    from .analytes import catalogue
    from .render import print_analytes

    print_analytes(out, catalogue().analytes)


class WorklistFormat(str, Enum):
    text = "text"
    csv = "csv"
    html = "html"
    json = "json"


@app.command()
def worklist(
    inputs: List[Path] = typer.Argument(..., help="A `screening batch` output folder (results.jsonl), or patient "
                                                  "files (JSON or FHIR) or folders of them to screen with --trial."),
    trials: Optional[List[str]] = typer.Option(
        None, "--trial", help="With patient files: the rule set(s) to screen against (.crit). With a results folder: "
                              "list only this trial (an id, or a .crit file whose id is used). Repeatable."),
    output_format: WorklistFormat = typer.Option(WorklistFormat.text, "--format",
                                                 help="text (a table), csv, html, or json (the rows with their items)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write here instead of standard output."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP + " (when screening patient files)"),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
) -> None:
    """What to do next: one row per patient and trial, eligible first, then undetermined by how few
    items are missing, then ineligible; with the deciding criteria, what to obtain and the review questions.

    Unreadable patient files are reported with their error after the worklist, and the exit status is 2."""
    from .reports import worklist as wl

    bad: list = []
    total = 0
    try:
        folders = [p for p in inputs if p.is_dir() and (p / wl.RESULTS_FILE).is_file()]
        if folders:
            if len(folders) != len(inputs):
                raise UsageError("give either batch results folders or patient files, not both")
            if as_of is not None or terminology is not None:
                raise UsageError("--as-of and --terminology apply to screening patient files; batch results keep "
                                 "the date and terminology they were screened with")
            wanted = None
            if trials:
                wanted = {compile_trial(Path(t)).id if t.endswith(".crit") and Path(t).is_file() else t
                          for t in trials}
            results = [r for folder in folders for r in wl.read_results(folder)]
            rows = wl.build(results, wanted)
            if wanted and not rows and results:
                found = sorted({str(r.get("trial")) for r in results})
                raise UsageError(f"--trial: no results for {', '.join(sorted(wanted))} (the results hold "
                                 f"{', '.join(found)})")
        else:
            if not trials:
                raise UsageError("--trial RULES.crit is needed to screen patient files (or give a `screening batch` "
                                 "output folder holding results.jsonl)")
            day = as_of_option(as_of)
            store = open_terminology(terminology)
            compiled = [compile_trial(Path(t), store) for t in trials]
            files = []
            for path in inputs:
                if path.is_dir():
                    files += sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file()
                                    and not p.name.startswith("."))
                else:
                    files.append(path)
            records, bad = _load_each(files)
            total = len(files)
            rows = wl.build(t.screen(r, day).to_dict() for r in records for t in compiled)
    except ScreeningError as exc:
        _fail(exc)
    if bad and len(bad) == total:  # no file could be read: the errors alone, as `check`
        _report_bad(bad, total)
    if output_format is WorklistFormat.text and output is None:
        wl.print_text(out, rows)
    else:
        text = {WorklistFormat.csv: wl.to_csv, WorklistFormat.html: wl.to_html, WorklistFormat.json: wl.to_json}.get(
            output_format)
        if text is None:  # text into a file: the table as plain text at a readable width
            buffer = Console(record=True, width=160, file=open(os.devnull, "w"), highlight=False, emoji=False)
            wl.print_text(buffer, rows)
            content = buffer.export_text()
        else:
            content = text(rows)
        if output is None:
            sys.stdout.write(content)
        else:
            try:
                output.write_text(content, encoding="utf-8")
            except OSError as exc:
                _fail(UsageError(f"{output}: cannot write: {exc.strerror}"))
            err.print(f"wrote {output} ({len(rows)} rows)", markup=False, highlight=False)
    _report_bad(bad, total)


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
                                                                  "and/or patient ids, comma-separated (id:ID for an "
                                                                  "id spelled like a decision; @FILE: ids one per "
                                                                  "line)."),
    slice_patients: Optional[int] = typer.Option(None, "--slice-patients", min=1,
                                                 help="duckdb/spark: screen at most this many patients at a time, "
                                                      "to bound memory (default: 250,000 on duckdb, 100,000 on "
                                                      "spark)."),
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
        if engine == "python" and slice_patients is not None:
            raise UsageError("--slice-patients is for --engine duckdb or spark: the python engine holds one patient "
                             "at a time")
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
            for given, name in ((explain, "--explain"), (slice_patients, "--slice-patients")):
                if engine == "python" and given is not None:
                    raise UsageError(f"{name} needs the duckdb engine, which cannot run here"
                                     + (f": {note}" if note else " (the input is not an NDJSON file or a Parquet "
                                                                 "store)"))
        if engine == "python":
            code = run_batch_command(trials, patients, out_dir, day, workers=workers, resume=resume, out=out, err=err,
                                     terminology=store_path)
        else:
            try:
                from .population.run import run_columnar_command
            except ImportError as exc:  # the population extra is not installed
                raise UsageError(f"--engine {engine} needs a module that is not installed (pyspark for --engine spark: pip install 'screening[spark]'): "
                                 f"{exc}") from None
            code = run_columnar_command(trials, patients, out_dir, day, engine=engine, resume=resume, explain=explain,
                                        out=out, err=err, terminology=store_path, slice_patients=slice_patients)
    except ScreeningError as exc:
        _fail(exc)
    raise typer.Exit(code)


@app.command()
def serve(
    trials: Path = typer.Option(..., "--trials", help="Folder of rule sets (*.crit): every one is compiled once, at start."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Screening date of every request (YYYY-MM-DD); "
                                        "default: today, at each request."),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
    max_body_bytes: int = typer.Option(16 * 1024 * 1024, "--max-body-bytes", min=1,
                                       help="Largest request body accepted (413 above it, before parsing)."),
    include_ineligible: bool = typer.Option(False, "--include-ineligible",
                                            help="Also answer the hook with a card for each trial the patient is "
                                                 "not eligible for."),
    public_url: Optional[str] = typer.Option(None, "--public-url", help="The service's address as the EHR's users "
                                             "reach it (behind a gateway), for the report links of cards."),
    report_cache: int = typer.Option(1000, "--report-cache", min=0, help="Results kept in memory for the cards' "
                                     "report links (0: keep none, cards have no link)."),
    report_ttl: float = typer.Option(3600.0, "--report-ttl", min=0, help="Seconds a result stays reachable by its "
                                     "report link."),
    cors_origin: List[str] = typer.Option([], "--cors-origin", help="Allow a browser origin to call the service "
                                          "(repeatable; default: none)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Server processes (each compiles the rule sets; "
                                "default 1)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log",
                                    help="Log every request line (off by default: report links carry patient ids "
                                         "and keys)."),
) -> None:
    """Run the CDS Hooks service (patient-view cards) and the JSON API; see docs/service.md.

    Exit 2 when a rule set does not compile (its positioned message) or an option is wrong.
    """
    try:
        import uvicorn

        from .service import Settings, create_app
    except ImportError as exc:
        _fail(UsageError(f"screening serve needs the service extra: pip install 'screening[service]' ({exc.name} "
                         "is not installed)"))
    try:
        settings = Settings(trials, as_of=as_of_option(as_of) if as_of else None, max_body_bytes=max_body_bytes,
                            include_ineligible=include_ineligible, public_url=public_url,
                            report_cache_size=report_cache, report_ttl_seconds=report_ttl,
                            cors_origins=list(cors_origin))
        service = create_app(trials, terminology=open_terminology(terminology), settings=settings)
    except ScreeningError as exc:
        _fail(exc)
    loaded = ", ".join(sorted(service.state.trials))
    err.print(f"screening: {len(service.state.trials)} rule set(s) compiled ({loaded}); serving on "
              f"http://{host}:{port} with {workers} process(es) (CDS Hooks discovery: /cds-services)", markup=False)
    if workers == 1:
        uvicorn.run(service, host=host, port=port, log_level=log_level, access_log=access_log)
        return
    import os

    from .service.app import ENVIRONMENT, settings_to_environment

    # the rules compiled above only proved they compile: each worker process compiles its own.
    # Report links would reach any worker, and each keeps its own results: so none are kept.
    if settings.report_cache_size:
        err.print("screening: with --workers, cards carry no report link (each process would keep its own "
                  "results); use one process per port behind a gateway with sticky routing for links",
                  markup=False)
    settings.report_cache_size = 0
    os.environ[ENVIRONMENT] = settings_to_environment(settings, terminology)
    uvicorn.run("screening.service.app:app_from_environment", factory=True, workers=workers, host=host, port=port,
                log_level=log_level, access_log=access_log)


@app.command()
def report(
    inputs: List[Path] = typer.Argument(..., help="A batch results folder (or its results.jsonl), or a rule-set "
                                             "file (.crit) followed by patient files or folders."),
    out_file: Path = typer.Option(..., "--out", "-o", help="The HTML file to write."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help=AS_OF_HELP + " (when screening on the spot)"),
    terminology: Optional[str] = typer.Option(None, "--terminology", help=TERMINOLOGY_HELP),
    trial: Optional[str] = typer.Option(None, "--trial", help="Only this trial's results (from a results folder)."),
    title: str = typer.Option("Screening report", "--title", help="The report's heading."),
) -> None:
    """Write one self-contained HTML report: decisions per trial, charts, the worklist, a page per patient.

    Exit 0 when every result went into the report; 2 when a results line or a patient file could
    not be used (each is named on stderr and in the report, which is written with all the others)
    or for bad arguments.
    """
    from .report import DECISIONS
    from .reports.html import write_report
    from .reports.sources import read_results, screen_patients

    try:
        if out_file.is_dir():
            raise UsageError(f"--out: {out_file} is a folder; give the HTML file to write")
        if not out_file.parent.is_dir():
            raise UsageError(f"--out: no folder {out_file.parent} to write {out_file.name} in")
        first = inputs[0]
        if len(inputs) == 1 and (first.is_dir() or first.suffix.lower() in (".jsonl", ".ndjson")):
            if as_of is not None or terminology is not None:
                raise UsageError("--as-of and --terminology apply when screening on the spot (TRIAL PATIENT...); "
                                 "a results folder was screened already")
            source = read_results(first, trial)
        else:
            if len(inputs) < 2:
                raise UsageError(f"{first}: give a batch results folder, or a rule-set file followed by patient files")
            if trial is not None:
                raise UsageError("--trial selects from a results folder; on the spot the rule-set file is the trial")
            source = screen_patients(first, list(inputs[1:]), as_of_option(as_of), open_terminology(terminology))
        write_report(source, out_file, title)
    except ScreeningError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(UsageError(f"--out: cannot write {out_file}: {exc.strerror}"))
    for problem in source.problems:
        err.print(problem, markup=False, highlight=False)
    if source.problem_count > len(source.problems):
        err.print(f"... and {source.problem_count - len(source.problems)} more", markup=False)
    for note in source.notes:
        err.print(f"note: {note}", markup=False, highlight=False)
    counts = {d: sum(t.decisions[d] for t in source.collector.trials.values()) for d in DECISIONS}
    summary = ", ".join(f"{n} {d}" for d, n in counts.items() if n)
    total = len(source.collector.rows)
    out.print(f"wrote {out_file}: {total} result{'s' if total != 1 else ''} ({summary or 'none'})", markup=False,
              highlight=False, soft_wrap=True)
    if source.problem_count:
        err.print(f"error: {source.problem_count} input{'s' if source.problem_count != 1 else ''} left out of the "
                  "report (listed above and in the report)", markup=False)
        raise typer.Exit(2)


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
        _fail(UsageError(f"screening query needs DuckDB (pip install duckdb pyarrow): {exc}"))
    except ScreeningError as exc:
        _fail(exc)


from .terminology.cli import app as _terminology_app  # noqa: E402

app.add_typer(_terminology_app, name="terminology")

from .cache_command import app as _cache_app  # noqa: E402

app.add_typer(_cache_app, name="cache")


def main() -> None:
    """Entry point of the `screening` console script."""
    try:
        app()
    except ScreeningError as exc:  # a late error outside a command's own handling
        err.print(exc.render(), markup=False)
        sys.exit(2)
