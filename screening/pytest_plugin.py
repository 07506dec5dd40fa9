"""pytest plugin: rule-set case files (``*.cases.yaml``) as pytest tests, one item per case.

Installed with the package as the ``pytest11`` entry point ``screening``, so ``pytest
trials/NCT00659217.cases.yaml`` just works; without the entry point, load it with ``-p
screening.pytest_plugin``. Cases are selected with the usual ``-k`` and node ids
(``pytest "trials/NCT00659217.cases.yaml::p04 ALT 95 over 2 x ULN"``), and a failing case is
reported with the same text as ``screening test``. A broken case file is a collection error that
points at file:line:column.

Golden updates and coverage stay with the command line (``screening test --update``,
``--coverage``).
"""
from __future__ import annotations

import pytest

CASE_SUFFIXES = (".cases.yaml", ".cases.yml")
_LOADER = pytest.StashKey[object]()


def pytest_collect_file(file_path, parent):
    if file_path.name.endswith(CASE_SUFFIXES):
        return CaseFile.from_parent(parent, path=file_path)
    return None


def _loader(config):
    # imported here, not at plugin load: pytest runs loading every installed plugin
    from screening.testing.casefile import Loader

    loader = config.stash.get(_LOADER, None)
    if loader is None:
        loader = config.stash[_LOADER] = Loader()
    return loader


class CaseFailed(Exception):
    """A case whose expectations do not hold; carries the CaseResult."""

    def __init__(self, result):
        super().__init__(result.summary())
        self.result = result


class CaseFile(pytest.File):
    """A case file: collects one :class:`CaseItem` per case."""

    def collect(self):
        suite = _loader(self.config).load(self.path)
        for case in suite.cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)

    def repr_failure(self, excinfo, style=None):
        from screening.errors import ScreeningError

        if isinstance(excinfo.value, ScreeningError):
            return excinfo.value.render()
        return super().repr_failure(excinfo)


class CaseItem(pytest.Item):
    """One case of a case file."""

    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case

    def runtest(self):
        from screening.testing.runner import run_case

        result = run_case(self.case)
        if not result.passed:
            raise CaseFailed(result)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CaseFailed):
            from screening.testing.runner import failure_text

            return failure_text(excinfo.value.result)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.case.span.line - 1, f"case: {self.case.name}"
