"""Every test runs without the user's terminology store: no $SCREENING_TERMINOLOGY, and the per-user
data folder (where the default store would be) is an empty temporary folder. Tests that need a
store build one from tests/data/terminology and pass it explicitly.

The per-user cache (screening.cache) is a temporary folder of this test session, set before any
test module is imported, so that no test reads or writes the user's own cache; tests of the cache
itself point $SCREENING_CACHE_DIR at a folder of their own."""
import atexit
import os
import shutil
import tempfile

import pytest

_CACHE = tempfile.mkdtemp(prefix="screening-test-cache-")
atexit.register(shutil.rmtree, _CACHE, True)  # registered first, so it runs after the unit table is saved
os.environ["SCREENING_CACHE_DIR"] = _CACHE
os.environ.pop("SCREENING_CACHE", None)


@pytest.fixture(autouse=True)
def _no_user_terminology(tmp_path_factory, monkeypatch):
    monkeypatch.delenv("SCREENING_TERMINOLOGY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg-data"))
