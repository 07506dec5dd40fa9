"""The wheel holds every package: pyproject.toml lists packages by name, so a new one must be added there."""
import tomllib

from helpers import ROOT


def test_every_python_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(ROOT).parts) for path in (ROOT / "screening").rglob("__init__.py")
             if "__pycache__" not in path.parts}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert "screening.reports" in listed
