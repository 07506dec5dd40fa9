"""Daily doses summed over the records taken on the same day, and prednisone equivalents.

`current medication X with dose > 10 mg/day` is the total of the day's records; `... prednisone
equivalent` converts each corticosteroid with screening/data/dose_equivalents.toml. A record that may
count and has no daily dose (or no equivalent) leaves the total unknown, never false when it could
exceed. As-of 2026-11-25; both engines (helpers.one).
"""
import pytest

from screening import SourceError
from screening.doses import equivalents

from helpers import one, patient, trial

STEROIDS = 'valueset steroid "systemic corticosteroid" = ATC:H02AB, RXNORM:8640, RXNORM:3264\n' \
           'valueset prednisone "prednisone" = RXNORM:8640\n'
# NCT02655458: "Steroids within 3 weeks of enrollment, except: <= 10 mg prednisone or equivalent per day"
CURRENT = trial(STEROIDS + 'exclusion E1 "Prednisone > 10 mg/day" = current medication prednisone with dose > 10 mg/day\n')
# NCT00603447: "Corticosteroid therapy in a dose equivalent to dexamethasone >= 4 mg/day or
# prednisone >= 20 mg/day within 3 weeks prior to first dose"
EQUIVALENT = trial(STEROIDS + 'exclusion E1 "Corticosteroids >= 20 mg/day prednisone equivalent within 3 weeks" = '
                   'medication steroid with dose >= 20 mg/day prednisone equivalent within 3 weeks\n')
TODAY = trial(STEROIDS + 'exclusion E1 "x" = current medication steroid with dose > 10 mg/day prednisone-equivalent\n')


def _pred(daily=None, start="2026-01-01", **fields):
    record = {"code": "RXNORM:8640", "start": start, **fields}
    if daily is not None:
        record["daily_dose"] = {"value": daily, "unit": "mg/d"}
    return record


def test_two_overlapping_orders_add_up():
    # two prednisone orders of 5 mg/day on the same day = 10 mg/day; 6 + 5 = 11 > 10
    p = patient(medications=[_pred(5, status="active"), _pred(5, start="2026-03-01", status="active")])
    assert one(CURRENT, p).value is False
    p = patient(medications=[_pred(6, status="active"), _pred(5, start="2026-03-01", status="active")])
    c = one(CURRENT, p)
    assert c.value is True
    assert c.evidence[0].detail == (
        "daily total of prednisone on 2026-11-25: 11 mg/day (medication RXNORM:8640 dose 6 mg/d daily = 6 mg/day + "
        "medication RXNORM:8640 dose 5 mg/d daily = 5 mg/day)")


def test_a_record_without_a_dose_makes_the_total_unknown_never_false():
    p = patient(medications=[_pred(5, status="active"), _pred(None, start="2026-03-01", status="active")])
    c = one(CURRENT, p)
    assert c.value is None
    assert c.missing == ["medication RXNORM:8640: dose not recorded"]
    (item,) = c.missing_items
    assert (item.kind, item.code, item.question) == ("medication", "prednisone",
                                                     "Check medication RXNORM:8640: dose not recorded")
    # but a known part already over the limit decides
    p = patient(medications=[_pred(15, status="active"), _pred(None, start="2026-03-01", status="active")])
    assert one(CURRENT, p).value is True


def test_a_record_that_may_not_be_taken_today_leaves_it_open():
    # the second order has no status and no end: maybe still taken
    p = patient(medications=[_pred(8, status="active"), _pred(5, start="2026-10-01")])
    c = one(CURRENT, p)
    assert c.value is None and c.missing == ["medication RXNORM:8640: status and end date not recorded"]
    # stopped before the as-of date: only today's records count
    p = patient(medications=[_pred(8, status="active"), _pred(5, start="2026-10-01", end="2026-11-01")])
    assert one(CURRENT, p).value is False


def test_at_most_needs_a_record_taken():
    t = trial(STEROIDS + 'inclusion I1 "Prednisone <= 10 mg/day" = current medication prednisone with dose <= 10 mg/day\n')
    assert one(t, patient(medications=[_pred(10, status="active")])).value is True
    assert one(t, patient(medications=[_pred(10, status="active"), _pred(5, status="active")])).value is False
    assert one(t, patient(medications=[])).value is False  # not on prednisone at all
    # a 20 mg/day order taken today and another that may or may not be: 20 or 25, never <= 10
    p = patient(medications=[_pred(20, status="active"), _pred(5, start="2026-11-08")])
    assert one(t, p).value is False


@pytest.mark.parametrize("records, value", [
    # 10 mg/day from 11-01 to 11-10 and 10 mg/day from 11-08 to 11-20: 20 mg/day on 11-08 to 11-10
    ([("2026-11-01", "2026-11-10", 10), ("2026-11-08", "2026-11-20", 10)], True),
    ([("2026-11-01", "2026-11-07", 10), ("2026-11-08", "2026-11-20", 10)], False),  # one after the other
    ([("2026-10-01", "2026-10-20", 30)], False),  # before the 3 weeks
    ([("2026-11", "2026-11-07", 10), ("2026-11-08", "2026-11-20", 10)], False),  # cannot overlap
    ([("2026-11", "2026-11-12", 10), ("2026-11-08", "2026-11-20", 10)], None),  # may overlap
])
def test_totals_within_a_window(records, value):
    p = patient(medications=[{"code": "RXNORM:8640", "start": s, "end": e, "daily_dose": {"value": d, "unit": "mg/d"}}
                             for s, e, d in records])
    assert one(EQUIVALENT, p).value is value


@pytest.mark.parametrize("rule, records, value", [
    # records without dates: taken on some day, which one is not known
    ("> 10", [("completed", 20)], True),  # on the days it was taken, at least 20
    ("> 10", [(None, 20)], True),
    ("> 10", [("completed", 5)], False),  # alone, 5 on every day it was taken
    ("<= 10", [("completed", 5)], True),
    ("<= 10", [("completed", 15)], False),
    ("<= 10", [("completed", 5), ("completed", 15)], None),  # apart (5) or together (20): not known
    ("> 10", [("completed", 5), ("completed", 8)], None),  # together 13, apart 8
])
def test_records_without_dates(rule, records, value):
    t = trial(STEROIDS + f'exclusion E1 "x" = medication prednisone with dose {rule} mg/day\n')
    p = patient(medications=[{"code": "RXNORM:8640", **({"status": status} if status else {}),
                              "daily_dose": {"value": daily, "unit": "mg/d"}} for status, daily in records])
    c = one(t, p)
    assert c.value is value
    if value is None:
        assert c.missing == ["medication RXNORM:8640: may not be taken that day (dates)"]


@pytest.mark.parametrize("code, daily, value", [
    ("ATC:H02AB02", 2, True),  # dexamethasone 2 mg/day = 13.3 mg/day prednisone
    ("ATC:H02AB02", 1.5, False),  # 10 mg/day prednisone: not more than 10
    ("RXNORM:3264", 2, True),  # dexamethasone by its RxNorm ingredient
    ("ATC:H02AB09", 40, False),  # hydrocortisone 40 mg/day = 10 mg/day prednisone
    ("ATC:H02AB09", 60, True),  # 15 mg/day
    ("ATC:H02AB04", 12, True),  # methylprednisolone 12 mg/day = 15 mg/day
    ("ATC:H02AB01", 1.5, None),  # betamethasone: 0.6 to 0.75 mg, so 10 to 12.5 mg/day prednisone
    ("ATC:H02AB01", 3, True),  # 20 to 25 mg/day: over whatever the table's range
    ("ATC:H02AB", 1, None),  # a glucocorticoid with no equivalent in the table
])
def test_prednisone_equivalents(code, daily, value):
    p = patient(medications=[{"code": code, "start": "2026-01-01", "status": "active",
                              "daily_dose": {"value": daily, "unit": "mg/d"}}])
    assert one(TODAY, p).value is value


def test_equivalents_add_up_across_drugs():
    # prednisone 5 mg/day + dexamethasone 1 mg/day (6.7 mg/day prednisone) = 11.7 mg/day
    p = patient(medications=[_pred(5, status="active"),
                             {"code": "ATC:H02AB02", "start": "2026-05-01", "status": "active",
                              "daily_dose": {"value": 1, "unit": "mg/d"}}])
    c = one(TODAY, p)
    assert c.value is True
    assert "11.6667 mg/day prednisone equivalent" in c.evidence[0].detail


def test_unknown_equivalent_is_named():
    p = patient(medications=[{"code": "ATC:H02AB", "start": "2026-01-01", "status": "active",
                              "daily_dose": {"value": 1, "unit": "mg/d"}}])
    assert one(TODAY, p).missing == ["medication ATC:H02AB: no prednisone equivalent is known for it "
                                     "(screening/data/dose_equivalents.toml)"]


def test_the_table_is_data_with_its_source():
    table = equivalents()
    assert (table["dexamethasone"].low, table["prednisone"].low, table["hydrocortisone"].low) == (0.75, 5.0, 20.0)
    assert (table["betamethasone"].low, table["betamethasone"].high) == (0.6, 0.75)
    assert "RXNORM:3264" in table["dexamethasone"].codes and "ATC:H02AB02" in table["dexamethasone"].codes


def test_a_count_keeps_the_dose_per_record():
    # `at least 2` counts records, each with its own daily dose
    t = trial(STEROIDS + 'exclusion E1 "x" = at least 2 medication prednisone with dose > 10 mg/day\n')
    p = patient(medications=[_pred(6, status="active"), _pred(6, start="2026-03-01", status="active")])
    assert one(t, p).value is False


@pytest.mark.parametrize("rule, message", [
    ("current medication steroid with dose > 10 mg prednisone equivalent", "daily total"),
    ("current medication steroid with dose > 10 mg/day aspirin equivalent", "no equivalence table lists `aspirin`"),
    ("at least 2 medication steroid with dose > 10 mg/day prednisone equivalent", "not tested record by record"),
    ("inactive medication steroid with dose > 10 mg/day", "daily total is taken over"),
])
def test_errors(rule, message):
    with pytest.raises(SourceError) as info:
        trial(STEROIDS + f'exclusion E1 "x" = {rule}\n')
    assert message in str(info.value)


def test_the_documented_example_compiles():
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "docs" / "language.md").read_text()
    section = text[text.index("**Equivalent doses.**"):]
    trial(re.search(r"```\n(.*?)```", section, re.S).group(1))
