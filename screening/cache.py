"""The per-user cache: data that is slow to compute and safe to keep between runs.

Four things are kept, each as JSON data (never pickle, never code), each under a key that
changes whenever anything it was computed from changes:

``units-<key>.json``
    The unit table: every unit spelling read so far -> its UCUM code, dimension, scale and offset
    (or the problem that made it unreadable). Keyed by the source of :mod:`screening.units` and the
    installed copies of pint and ucumvert. With every spelling a run needs in the table, the pint registry
    with the UCUM definitions (about a second to build) is never built.
``parser-<key>.json``
    The Lark LALR tables of the criteria grammar (Lark's own serialized form). Keyed by the grammar
    text and the Lark version.
``ruleset-<key>.json``
    A checked rule set (the IR :mod:`screening.compile` generates its fast path from). Keyed by the
    rule text, its file name, the code of the package, the interpreter and the installed libraries
    a compile runs through, and the identity of the terminology store; value-set files it read are
    recorded with their content hashes and checked on every load (:mod:`screening.ircache`).
``terminology-<key>.json``
    A small terminology store built from release files (``--terminology FOLDER``), its SQLite bytes in
    base64, written to a temporary file when used. Keyed by the files' names and bytes and the code.

Where: ``$SCREENING_CACHE_DIR``, else the per-user cache folder (``platformdirs.user_cache_dir``,
e.g. ``~/.cache/screening``). Off: ``SCREENING_CACHE=off`` (or ``0``, ``no``, ``false``), the
``--no-cache`` option of the commands, or :func:`set_enabled` (False).

Trust (see docs/caching.md): the cache is data, so a tampered file cannot run code; it can still
change a verdict, so only a folder and files owned by the current user and writable by no one else
are read, every file carries the SHA-256 of its contents (a truncated or corrupted file is ignored
and recomputed, silently), and a file that does not decode into exactly the expected shape is
ignored too. Writing is best effort: a cache that cannot be written costs time, never a result.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from functools import lru_cache
from pathlib import Path

ENV_SWITCH = "SCREENING_CACHE"
ENV_DIR = "SCREENING_CACHE_DIR"
FORMAT = "screening-cache 1"
MAX_FILE_BYTES = 256 * 1024 * 1024  # a larger file is not read (never an unbounded allocation)
_OFF_WORDS = ("off", "0", "no", "false", "none")

_enabled: bool | None = None  # None: decided by the environment


def set_enabled(flag: bool | None) -> None:
    """Turn the cache on or off for this process (None: back to ``$SCREENING_CACHE``)."""
    global _enabled
    _enabled = flag


def enabled() -> bool:
    """Is the cache used in this process?"""
    if _enabled is not None:
        return _enabled
    return os.environ.get(ENV_SWITCH, "").strip().lower() not in _OFF_WORDS


def cache_dir() -> Path:
    """The cache folder (it may not exist yet)."""
    env = os.environ.get(ENV_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return platformdirs.user_cache_path("screening", appauthor=False)


def digest(*parts: str | bytes) -> str:
    """A SHA-256 hex digest over several parts (length-prefixed, so parts cannot run together)."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


def _trusted(st: os.stat_result) -> bool:
    """Owned by the current user and writable by no one else (POSIX; elsewhere the per-user
    profile folder's own access rules are relied on)."""
    if not hasattr(os, "getuid"):
        return True
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def trusted_dir(path: Path) -> bool:
    """Is ``path`` a folder the cache may read from (see :func:`_trusted`)?"""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _trusted(st)


def _file(kind: str, key: str) -> str:
    return f"{kind}-{key}.json"


def read(kind: str, key: str) -> object | None:
    """The JSON value stored under (kind, key), or None: off, absent, untrusted, corrupted or unreadable."""
    if not enabled():
        return None
    folder = cache_dir()
    if not trusted_dir(folder):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(folder / _file(kind, key), flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _trusted(st) or st.st_size > MAX_FILE_BYTES:
            return None
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    header, newline, payload = raw.partition(b"\n")
    if not newline or header != f"{FORMAT} {kind} {key} {hashlib.sha256(payload).hexdigest()}".encode():
        return None  # another format, another key, or contents that are not what was written
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    try:
        os.utime(folder / _file(kind, key))  # recently used: kept when older entries are pruned
    except OSError:
        pass
    return value


#: Entries kept per kind; the least recently used beyond these are removed when one is written.
KEEP = {"ruleset": 200, "parser": 4, "units": 4, "terminology": 8}


def write(kind: str, key: str, value: object) -> bool:
    """Store a JSON value under (kind, key), atomically; False (and nothing raised) when it cannot.
    Beyond :data:`KEEP` entries of the kind, the least recently used are removed."""
    if not enabled():
        return False
    folder = cache_dir()
    try:
        payload = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return False
    if len(payload) > MAX_FILE_BYTES:
        return False
    header = f"{FORMAT} {kind} {key} {hashlib.sha256(payload).hexdigest()}\n".encode()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not trusted_dir(folder):
            return False  # never write where others could change what we later read
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(header)
                handle.write(payload)
            os.replace(temp, folder / _file(kind, key))
        except BaseException:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
    except OSError:
        return False
    _prune(folder, kind, KEEP.get(kind, 16))
    return True


def _prune(folder: Path, kind: str, keep: int) -> None:
    """Remove the least recently used entries of a kind beyond ``keep`` (reads refresh the time)."""
    try:
        entries = []
        for path in folder.glob(f"{kind}-*.json"):
            try:
                entries.append((path.stat().st_mtime_ns, path))
            except OSError:
                continue
        entries.sort(reverse=True)
        for _, path in entries[keep:]:
            path.unlink(missing_ok=True)
    except OSError:
        pass


@lru_cache(maxsize=1)
def code_identity() -> str:
    """A digest of the package's code and data (every .py, grammar and data file): a compiled rule
    set is only reused by the exact code that compiled it, installed release or working copy alike."""
    root = Path(__file__).resolve().parent
    files = sorted(root.rglob("*.py")) + sorted(root.rglob("*.toml")) + sorted(root.rglob("*.lark"))
    grammar = root.parent / "grammars"  # a working copy (editable install): the grammar sits beside the package
    if grammar.is_dir():
        files += sorted(grammar.glob("*.lark"))
    parts: list[str | bytes] = [FORMAT]
    for path in files:
        if "__pycache__" in path.parts:
            continue
        try:
            parts += [str(path.relative_to(root.parent)), path.read_bytes()]
        except (OSError, ValueError):
            parts += [str(path), b"?"]
    return digest(*parts)


def installed_identity(package: str) -> str:
    """Which copy of an installed package this is, without importing it: where it is and the size and
    modification time of its ``__init__`` (an upgrade or a reinstall writes a new one)."""
    from importlib.util import find_spec

    try:
        spec = find_spec(package)
        origin = spec.origin if spec is not None else None
        if origin is None:
            return f"{package}:?"
        st = os.stat(origin)
    except (ImportError, ValueError, OSError):
        return f"{package}:?"
    return f"{package}:{origin}:{st.st_size}:{st.st_mtime_ns}"


# JSON keeps lists, string-keyed dicts, strings, numbers, booleans and null. Tuples, sets and dicts
# with other keys (Lark's parse tables are keyed by state numbers) are tagged, so that a value
# decodes into exactly what was encoded.
_TAGS = ("\x00tuple", "\x00frozenset", "\x00dict")


def encode(value: object) -> object:
    """A JSON-ready form of nested tuples, lists, sets, dicts and scalars (TypeError for anything else)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {_TAGS[0]: [encode(v) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {_TAGS[1]: [encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not any(tag in value for tag in _TAGS):
            return {k: encode(v) for k, v in value.items()}
        return {_TAGS[2]: [[encode(k), encode(v)] for k, v in value.items()]}
    raise TypeError(f"cannot cache a {type(value).__name__}")


def decode(value: object) -> object:
    """The inverse of :func:`encode` (ValueError for a malformed tag)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            (key, items), = value.items()
            if key in _TAGS:
                if not isinstance(items, list):
                    raise ValueError("malformed cache entry")
                if key == _TAGS[0]:
                    return tuple(decode(v) for v in items)
                if key == _TAGS[1]:
                    return frozenset(decode(v) for v in items)
                if not all(isinstance(pair, list) and len(pair) == 2 for pair in items):
                    raise ValueError("malformed cache entry")
                return {decode(k): decode(v) for k, v in items}
        return {k: decode(v) for k, v in value.items()}
    return value
