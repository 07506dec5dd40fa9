"""Import a ClinicalTrials.gov record as a rule set in the criteria language.

:func:`import_record` (a file) and :func:`import_document` (its text) read a study in either
format the registry publishes -- the API v2 JSON study and the legacy XML record -- and return
rule-set text that compiles with :func:`screening.compile.compile_text`:

* the structured eligibility fields become working rules (``AGE`` from the minimum and maximum
  age, ``SEX`` from a single-sex study); healthy-volunteer status is recorded as a comment;
* the free-text criteria are split into inclusion and exclusion sections and into one criterion
  per bullet, keeping the registry's own numbering (``3.`` -> ``I3``) and the registry text
  verbatim (whitespace collapsed);
* every criterion is ``review "not yet encoded: ..."`` until an author writes its rule, except
  lines the drafter can read with confidence (lab thresholds, ages, HbA1c and BMI ranges, a few
  dated cardiovascular events), which become ``draft`` rules -- evaluated normally, flagged DRAFT
  in every report until an author confirms them.

The package has one module per stage: ``read`` (JSON/XML -> :class:`StudyRecord`), ``split``
(:func:`split_criteria`), ``draft`` (:func:`draft_rule`, one function per pattern family) and
``render`` (:func:`convert`, the rule-set text). See ``docs/ctgov-import.md``.
"""
from __future__ import annotations

from .draft import Draft, draft_rule
from .read import StudyRecord, parse_document, read_record
from .render import ImportedCriterion, ImportResult, convert, import_document, import_record
from .split import Bullet, split_criteria

__all__ = [
    "StudyRecord", "Bullet", "Draft", "ImportedCriterion", "ImportResult",
    "import_record", "import_document", "read_record", "parse_document",
    "split_criteria", "draft_rule", "convert",
]
