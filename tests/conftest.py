"""Every test runs without the user's terminology store: no $SCREENING_TERMINOLOGY, and the per-user
data folder (where the default store would be) is an empty temporary folder. Tests that need a
store build one from tests/data/terminology and pass it explicitly."""
import pytest


@pytest.fixture(autouse=True)
def _no_user_terminology(tmp_path_factory, monkeypatch):
    monkeypatch.delenv("SCREENING_TERMINOLOGY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.getbasetemp() / "xdg-data"))
