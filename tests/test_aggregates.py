"""Mean, lowest and highest of repeated results: `mean QTcF of the latest 3 > 470 ms`,
`max ALT within 3 months > 120 U/L`. Both engines (helpers.one() compares them)."""
from __future__ import annotations

from datetime import date

import pytest

from screening import SourceError

from helpers import obs, one, patient, trial

QTCF = "LOCAL:QTcF"
CREATININE = "LOINC:2160-0"
ALT = "LOINC:1742-6"


def crit(rule: str):
    return trial(f'inclusion I1 "registry text" = {rule}\n')


def compile_error(rule: str):
    with pytest.raises(SourceError) as info:
        crit(rule)
    return info.value.first


def triplicate(*values, day="2026-11-10"):
    return [obs(QTCF, v, "ms", day=day) for v in values]


def test_mean_of_triplicate_ecgs():
    # NCT01431898-style "mean QTcF of triplicate ECGs > 470 ms"
    rule = "mean QTcF of the latest 3 > 470 ms"
    c = one(crit(rule), patient(observations=triplicate(465, 480, 470)))
    assert c.verdict == "pass"
    assert "mean of the latest 3 QTcF results: 471.667 ms" in c.evidence[0].detail
    assert one(crit(rule), patient(observations=triplicate(465, 470, 470))).verdict == "fail"


def test_fewer_results_than_asked_is_unknown():
    c = one(crit("mean QTcF of the latest 3 > 470 ms"), patient(observations=triplicate(500, 510)))
    assert c.verdict == "unknown"
    assert c.missing == ["3 QTcF results (2 on record)"]


def test_which_are_the_latest_depends_on_the_time_of_day():
    # four ECGs on one day: the latest three are not known
    c = one(crit("mean QTcF of the latest 3 > 470 ms"), patient(observations=triplicate(400, 480, 480, 480)))
    assert c.verdict == "unknown"
    assert any("which are the latest 3" in m for m in c.missing)
    # the fourth an earlier day: decided
    p = patient(observations=triplicate(480, 480, 480) + triplicate(400, day="2026-11-01"))
    assert one(crit("mean QTcF of the latest 3 > 470 ms"), p).verdict == "pass"


def test_window_forms():
    p = patient(observations=[obs(QTCF, 465, "ms", day="2026-11-24"), obs(QTCF, 480, "ms", day="2026-11-25")])
    assert one(crit("max QTcF within 1 day > 470 ms"), p).verdict == "pass"
    assert one(crit("max QTcF > 470 ms within 1 day"), p).verdict == "pass"
    assert one(crit("min QTcF within 1 day > 470 ms"), p).verdict == "fail"
    assert one(crit("mean QTcF within 1 day between 470 ms and 475 ms"), p).verdict == "pass"
    c = one(crit("max QTcF within 1 day > 470 ms"), patient(observations=triplicate(500, day="2026-01-01")))
    assert c.verdict == "unknown" and c.missing == ["QTcF result within 1 day"]


def test_results_after_the_as_of_date_are_ignored():
    p = patient(observations=triplicate(480, 480, 480, day="2026-11-20") + triplicate(400, 400, 400, day="2026-11-01"))
    assert one(crit("mean QTcF of the latest 3 > 470 ms"), p).verdict == "pass"
    assert one(crit("mean QTcF of the latest 3 > 470 ms"), p, date(2026, 11, 10)).verdict == "fail"


def test_a_bound_result_is_an_interval():
    high = obs(QTCF, 500, "ms")
    high["comparator"] = ">"
    p = patient(observations=triplicate(465, 470) + [high])
    assert one(crit("max QTcF of the latest 3 > 470 ms"), p).verdict == "pass"
    assert one(crit("mean QTcF of the latest 3 > 470 ms"), p).verdict == "pass"  # at least 478.3
    assert one(crit("mean QTcF of the latest 3 < 480 ms"), p).verdict == "unknown"
    assert one(crit("min QTcF of the latest 3 < 466 ms"), p).verdict == "pass"


def test_a_result_without_a_number_is_unknown():
    p = patient(observations=triplicate(480, 480) + [obs(QTCF, "see comment", day="2026-11-10")])
    c = one(crit("mean QTcF of the latest 3 > 470 ms"), p)
    assert c.verdict == "unknown" and c.missing


def test_units_convert_once():
    # 133 umol/L threshold -> 1.50 mg/dL (unit-precision rule); results in mg/dL
    p = patient(observations=[obs(CREATININE, 1.4, "mg/dL", day="2026-11-01"), obs(CREATININE, 1.6, "mg/dL")])
    assert one(crit("max creatinine within 30 days > 133 umol/L"), p).verdict == "pass"
    assert one(crit("mean creatinine within 30 days > 133 umol/L"), p).verdict == "fail"


def test_derived_values_are_aggregated_too():
    p = patient(sex="female", birth_date="1976-01-01",
                observations=[obs(CREATININE, 1.0, "mg/dL"), obs(CREATININE, 3.0, "mg/dL", day="2026-10-01")])
    c = one(crit("mean eGFR of the latest 2 >= 60 mL/min/1.73m2"), p)
    assert c.verdict == "fail"
    assert "derived by CKD-EPI 2021" in c.evidence[0].detail


@pytest.mark.parametrize("rule, message", [
    ("mean QTcF > 470 ms", "say which mean results"),
    ("max ALT within 3 months > 3 x ULN", "not a multiple of a limit of normal"),
    ("mean QTcF of the latest 0 > 470 ms", "between 1 and"),
    ("mean QTcF within 1 day > 470 ms within 2 days", "one window only"),
    ("mean QTcF of the latest 3 > 470 mg/dL", "incompatible units"),
])
def test_compile_errors(rule, message):
    error = compile_error(rule)
    assert message in error.message
    assert error.span.line == 2
