"""Dose trends: `medication X dose stable for at least N` and `... dose not increasing for at least N`
over the drug's records (exact dates, daily doses); false only with proof, unknown otherwise; both
engines (helpers.one)."""
import pytest

from screening import SourceError

from helpers import one, patient, trial

PRED = 'valueset prednisone "prednisone" = RXNORM:8640\n'
STABLE = PRED + 'inclusion I1 "stable dose for at least 4 weeks" = medication prednisone dose stable for at least 4 weeks\n'
NOT_UP = PRED + ('inclusion I1 "stable or decreasing dose for at least 4 weeks" = '
                 'medication prednisone dose not increasing for at least 4 weeks\n')


def med(start, end=None, mg=None, **fields):
    record = {"code": "RXNORM:8640", "start": start, **fields}
    if end is not None:
        record["end"] = end
    else:
        record.setdefault("status", "active")
    if mg is not None:
        record["daily_dose"] = {"value": mg, "unit": "mg/d"}
    return record


# as of 2026-11-25; the last 4 weeks start on 2026-10-28
@pytest.mark.parametrize("records, stable, not_up", [
    ([med("2026-09-01", mg=10)], "pass", "pass"),
    ([med("2026-09-01", "2026-10-31", mg=20), med("2026-11-01", mg=10)], "fail", "pass"),  # tapered in the period
    ([med("2026-09-01", "2026-10-31", mg=5), med("2026-11-01", mg=10)], "fail", "fail"),  # raised in the period
    ([med("2026-09-01", "2026-10-20", mg=5), med("2026-10-21", mg=10)], "pass", "pass"),  # raised before the period
    ([med("2026-11-10", mg=10)], "fail", "fail"),  # started 2 weeks ago
    ([med("2026-09-01", "2026-11-20", mg=10)], "fail", "fail"),  # stopped 5 days ago
    ([med("2026-09-01", "2026-11-05", mg=10), med("2026-11-08", mg=10)], "fail", "fail"),  # a 2-day gap
    ([med("2026-09-01", "2026-11-05", mg=10), med("2026-11-06", mg=10)], "pass", "pass"),  # renewed, no gap
    ([med("2026-09-01")], "unknown", "unknown"),  # no dose
    ([med("2026-09", mg=10)], "unknown", "unknown"),  # month only: may have started inside the period
    ([med("2026-09-01", mg=10, status=None)], "unknown", "unknown"),  # neither status nor end
    ([med("2026-09-01", mg=10), med("2026-10-01", mg=5)], "unknown", "unknown"),  # concurrent, different doses
    ([med("2026-09-01", mg=10), med("2026-10-01", mg=10)], "pass", "pass"),  # concurrent, same dose
    ([med("2026-09-01", "2026-10-31", mg=5), med("2026-11-01", mg=10), {"unreadable": "coded only as text"}],
     "fail", "fail"),  # a proven rise stays proven
    ([med("2026-11-10", mg=10), {"unreadable": "coded only as text", "start": "2026-09-01", "status": "active"}],
     "unknown", "unknown"),  # the unreadable record might cover the gap
    ([], "fail", "fail"),
    ([med("2026-09-01", mg=10, status="on-hold")], "unknown", "unknown"),  # paused: not known to be taken
])
def test_trend(records, stable, not_up):
    p = patient(medications=records)
    assert one(trial(STABLE), p).verdict == stable
    assert one(trial(NOT_UP), p).verdict == not_up


def test_dose_computed_from_dose_and_frequency():
    p = patient(medications=[
        med("2026-09-01", "2026-10-31", dose={"value": 5, "unit": "mg"}, frequency=2),
        med("2026-11-01", dose={"value": 10, "unit": "mg"}, frequency=1)])
    assert one(trial(STABLE), p).verdict == "pass"  # 10 mg/day throughout


def test_missing_medications_list_is_unknown():
    result = one(trial(STABLE), patient())
    assert result.verdict == "unknown" and "medications (not provided)" in result.missing


def test_explanations():
    fell = one(trial(STABLE), patient(medications=[med("2026-09-01", "2026-10-31", mg=20), med("2026-11-01", mg=10)]))
    assert "fell from 20 to 10 mg/day on 2026-11-01" in " ".join(e.detail for e in fell.evidence)
    gap = one(trial(STABLE), patient(medications=[med("2026-11-10", mg=10)]))
    assert "covers 2026-10-28 to 2026-11-09" in " ".join(e.detail for e in gap.evidence)
    unknown = one(trial(STABLE), patient(medications=[med("2026-09-01")]))
    assert any("dose not recorded" in m for m in unknown.missing)


def test_combines_with_a_dose_limit():
    # "stable dose of prednisone <= 10 mg/day for at least 4 weeks"
    t = trial(PRED + 'inclusion I1 "x" = current medication prednisone with dose <= 10 mg/day and '
                     'medication prednisone dose stable for at least 4 weeks\n')
    assert one(t, patient(medications=[med("2026-09-01", mg=10)])).verdict == "pass"
    assert one(t, patient(medications=[med("2026-09-01", mg=15)])).verdict == "fail"


@pytest.mark.parametrize("rule, message", [
    ("condition prednisone dose stable for at least 4 weeks", "belongs to a medication"),
    ("medication prednisone dose stable for at least 0 weeks", "at least 1 day"),
    ("medication nothing dose stable for at least 4 weeks", "nothing"),
])
def test_compile_errors(rule, message):
    with pytest.raises(SourceError) as info:
        trial(PRED + f'inclusion I1 "x" = {rule}\n')
    assert message in str(info.value) and "test.crit:3:" in str(info.value)


def test_a_field_named_dose_still_works_as_text():
    t = trial(PRED + 'inclusion I1 "x" = medication prednisone with dose = "high"\n')
    assert one(t, patient(medications=[med("2026-09-01", level="x")])).verdict == "unknown"


def test_the_documented_examples_compile():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**Doses.**"):text.index("A dose trend reads one drug's records")]
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    for block in blocks:
        trial(block)
