"""``screening cache info | clear``: see and empty the per-user cache (docs/caching.md)."""
from __future__ import annotations

import os

import typer
from rich.console import Console

from . import cache

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="The per-user cache of compiled rule sets, parse tables and the unit table (docs/caching.md).")
out = Console(highlight=False, soft_wrap=True, emoji=False)
KINDS = ("ruleset", "parser", "units")


def _entries(folder, kind: str) -> list:
    try:
        return [p for p in folder.glob(f"{kind}-*.json") if p.is_file()]
    except OSError:
        return []


@app.command()
def info() -> None:
    """Where the cache is, whether it is used, and what it holds."""
    folder = cache.cache_dir()
    out.print(f"folder: {folder}", markup=False)
    if not cache.enabled():
        out.print(f"state: off ({cache.ENV_SWITCH}={os.environ.get(cache.ENV_SWITCH, '')!s} or --no-cache)",
                  markup=False)
    elif not folder.exists():
        out.print("state: on (empty: nothing cached yet)", markup=False)
    elif not cache.trusted_dir(folder):
        out.print("state: NOT USED: the folder is not owned by you or others can write to it "
                  "(make it yours, mode 700, or set SCREENING_CACHE_DIR)", markup=False)
    else:
        out.print("state: on", markup=False)
    total = 0
    for kind in KINDS:
        files = _entries(folder, kind)
        size = sum(p.stat().st_size for p in files)
        total += size
        out.print(f"{kind}: {len(files)} entr{'y' if len(files) == 1 else 'ies'}, {size / 1024:.0f} KiB", markup=False)
    out.print(f"total: {total / 1024:.0f} KiB", markup=False)


@app.command()
def clear() -> None:
    """Remove every cache entry (always safe: what is needed is computed again)."""
    folder = cache.cache_dir()
    removed = 0
    for kind in KINDS:
        for path in _entries(folder, kind):
            try:
                path.unlink()
                removed += 1
            except OSError as exc:
                out.print(f"could not remove {path}: {exc}", markup=False)
    try:
        for path in folder.glob(".tmp-*.json"):  # left by a run that was killed while writing
            path.unlink(missing_ok=True)
    except OSError:
        pass
    out.print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {folder}", markup=False)
