"""``screening terminology load``: read release folders and FHIR files, write them into a store
in one transaction, rebuild the closures that changed."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import LoadError
from .fhir import is_fhir_file, load_fhir
from .progress import SILENT, Progress
from .rf2 import is_rf2_folder, load_rf2
from .rxnorm import is_rxnorm_folder, load_rxnorm
from .store import LoadSummary, SourceData, TerminologyStore


def read_sources(path: Path, progress: Progress = SILENT) -> list[SourceData]:
    """What a path holds: an RF2 release folder, an RxNorm release folder, a FHIR JSON file, or a
    folder of FHIR JSON files."""
    if not path.exists():
        raise LoadError(str(path), "no such file or folder")
    if path.is_dir():
        if (path / "RXNCONSO.RRF").is_file() or (path / "rrf" / "RXNCONSO.RRF").is_file():
            return [load_rxnorm(path, progress)]
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        folders = sorted(p for p in path.iterdir() if p.is_dir())
        releases = [p for p in folders if is_rxnorm_folder(p) and not is_rf2_folder(p)
                    or any(p.glob("*.json"))]
        if is_rf2_folder(path) and not files and not releases:
            return [load_rf2(path, progress)]
        if is_rxnorm_folder(path) and not files and not releases:
            return [load_rxnorm(path, progress)]
        if files or releases:
            # a folder that holds several releases (an RxNorm folder beside FHIR files, say): each of them
            sources = [data for p in files for data in load_fhir(p, progress)]
            for folder in folders:
                if is_rxnorm_folder(folder) or is_rf2_folder(folder) or any(folder.glob("*.json")):
                    sources.extend(read_sources(folder, progress))
            return sources
        raise LoadError(str(path), "not a SNOMED CT RF2 release (sct2_Concept_Snapshot*.txt), an RxNorm release "
                                   "(RXNCONSO.RRF) or a folder of FHIR JSON files")
    if is_fhir_file(path):
        return load_fhir(path, progress)
    raise LoadError(str(path), "expected a release folder or a FHIR JSON file (.json)")


def load_paths(store_path: Path, paths: list[Path], progress: Progress = SILENT) -> LoadSummary:
    """Load every path into the store, all or nothing: if any file is bad, the store is left as
    it was (a store created by this call is removed again)."""
    created = not store_path.exists()
    summary = LoadSummary()
    try:
        sources: list[SourceData] = []
        for path in paths:           # read and check everything before the store is touched
            sources.extend(read_sources(Path(path), progress))
        names = [s.name for s in sources]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise LoadError(", ".join(map(str, paths)), f"{duplicate} is given twice")
        store = TerminologyStore.open(store_path, create=True)
        try:
            with store.write() as writer:
                for data in sources:
                    progress.start(f"writing {data.name}", None)
                    summary.sources.append((data, writer.replace_source(data)))
                    summary.warnings.extend(data.warnings)
                    progress.done()
                summary.closure_rows, summary.cycles = writer.finish(progress)
        finally:
            store.close()
    except BaseException:
        if created:
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.remove(f"{store_path}{suffix}")
                except FileNotFoundError:
                    pass
        raise
    return summary


FIXTURE_STORE_BYTES = 8 * 1024 * 1024
"""A store built from release files is kept in the per-user cache only up to this size (the small fixtures
rule sets keep beside them); a larger one is rebuilt on every run."""


def build_release_store(paths: list[Path], identity: str | None = None) -> Path:
    """A store file built from release folders and FHIR files in a temporary folder (removed when
    the process ends), for the small fixtures a rule set or a case file keeps beside it: the same
    loaders, checks and closure as ``screening terminology load``.

    With ``identity`` (the release files' digest), a store of the same files and the same code built by an
    earlier run is taken from the per-user cache (screening.cache: the bytes as written, checked by their
    SHA-256) instead of being built again."""
    import atexit
    import base64
    import shutil
    import tempfile

    from .. import cache

    folder = Path(tempfile.mkdtemp(prefix="screening-terminology-"))
    atexit.register(shutil.rmtree, folder, True)
    target = folder / "terminology.sqlite"
    key = cache.digest(identity, cache.code_identity()) if identity else None
    if key is not None:
        cached = cache.read("terminology", key)
        if isinstance(cached, str):
            try:
                target.write_bytes(base64.b64decode(cached, validate=True))
                return target
            except (ValueError, OSError):
                target.unlink(missing_ok=True)
    load_paths(target, [Path(p) for p in paths])
    if key is not None and target.stat().st_size <= FIXTURE_STORE_BYTES:
        cache.write("terminology", key, base64.b64encode(target.read_bytes()).decode("ascii"))
    return target


def open_release_files(paths: list[Path]) -> TerminologyStore:
    """The store of :func:`build_release_store`, opened; it carries the release files' digest as its
    ``content_identity`` (what a rule set compiled against it is cached under, see screening.ircache)."""
    from ..ircache import release_identity

    identity = release_identity(paths)
    store = TerminologyStore.open(build_release_store(paths, identity))
    store.content_identity = identity
    return store
