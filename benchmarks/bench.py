"""Throughput benchmark of the screening engine against a hand-written Python baseline.

One run, one process, all figures together::

    .venv/bin/python benchmarks/bench.py                      # 100,000 patients (a few minutes)
    .venv/bin/python benchmarks/bench.py --patients 5000      # a quick run
    .venv/bin/python benchmarks/bench.py --json               # also print the figures as JSON

What it measures, in this order (see benchmarks/README.md for what each figure means):

1. compile time of benchmarks/bench_rules.crit (the first, cold compile; then the median of
   several warm ones);
2. a streaming pass: N synthetic patients are written to an NDJSON file (generated on the fly,
   never held), then read line by line -> json.loads -> patient_from_document ->
   Trial.screen(explain=True) -> json.dumps(result.to_dict()); patients per second end to end,
   and peak RSS after 10k and after N patients (the population is never held, so it stays flat);
3. loading: json.loads and patient_from_document (validate + index) per patient, keeping the
   N indexed PatientRecord objects in memory;
4. agreement: the hand-written baseline (below) and Trial.values must give the same
   ((applies, value), ...) for every patient;
5. evaluation throughput over the loaded population, warm, median of several interleaved
   rounds: the baseline, Trial.values (no explanations), Trial.screen(explain=False) (verdicts;
   criteria left unknown are still explained) and Trial.screen(explain=True) (verdicts and
   explanation text for every criterion); ratios to the baseline.
"""
from __future__ import annotations

import argparse
import calendar
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(1, str(HERE.parent))

from population import AS_OF, write_ndjson  # noqa: E402

from screening.compile import Trial, compile_text  # noqa: E402
from screening.patient.load import patient_from_document  # noqa: E402

RULES = HERE / "bench_rules.crit"
GENERAL_ENGINE_RATIO = 0.002  # general-purpose Python rule engines vs hand-written code, for reference


# =====================================================================================
# The hand-written baseline: the 20 criteria of bench_rules.crit written directly in Python
# over the same indexed PatientRecord objects (patient.labs[key] -> Obs list newest first,
# values already in the catalogue unit; conditions/medications/procedures -> Entry lists with
# ordinal dates; facts -> dict). Thresholds are converted by hand into the catalogue units.
# Three-valued: None is unknown, combined with Kleene's tables, as the language defines.
# Partial dates ("2026-03", "2026") are ranges of days; a test whose answer depends on the
# unknown part is unknown (latest results, records that may start after the as-of date, ages).
# =====================================================================================
NEVER, FOREVER = -(10**9), 10**9
# "intended" (a plan, not yet taken) is neither active nor ended: unknown for `active`
_ACTIVE = frozenset({"active", "recurrence", "relapse", "in-progress", "on-hold"})
_ENDED = frozenset({"inactive", "remission", "resolved", "completed", "stopped", "cancelled", "not-taken",
                    "entered-in-error", "not-done"})
# records saying the thing did not happen (or was never true): in no test at all
_NEVER_HAPPENED = frozenset({"not-taken", "not-done", "entered-in-error"})

# thresholds, pre-converted to the catalogue units (creatinine mg/dL, counts 10^9/L, hemoglobin g/dL,
# HbA1c % NGSP via NGSP = 0.09148 x IFCC + 2.152, bilirubin mg/dL via 584.66 g/mol, creatinine via 113.12),
# at the precision they were written with (docs/semantics.md: the written resolution carried through
# the conversion, rounded to the nearest power of ten): 53 mmol/mol = 7.00044 % -> 7.0 %
HBA1C_LOW, HBA1C_HIGH = 7.0, 10.5  # 53 and 91 mmol/mol (7.00044, 10.47668)
CREAT_MAX = 1.5  # mg/dL
PLT_MIN = 100.0  # 100 x 10^9/L
ANC_MIN = 1.5  # 1,500/mm3
HGB_MIN = 9.0  # 90 g/L
WBC_LOW = 3.0  # 3,000/mm3
# fallback upper limits of normal (the rule set's reference range table), catalogue units
ALT_ULN, AST_ULN = 56.0, 40.0
BILI_ULN = 1.2  # 20.5 umol/L (1.198553)
CREAT_ULN, CREAT_ULN_F, CREAT_ULN_M = 1.2, 1.02, 1.24  # 1.2 mg/dL, 90 umol/L (1.01808), 110 umol/L (1.24432)


def _months_back(day: date, months: int) -> int:
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1])).toordinal()


def _born_by(day: date, years: int) -> int:
    """The last birth date (ordinal) of someone at least ``years`` old on ``day``."""
    year = day.year - years
    return date(year, day.month, min(day.day, calendar.monthrange(year, day.month)[1])).toordinal()


# ---- derived values (docs/semantics.md "Derived values"): eGFR by CKD-EPI 2021 from creatinine, age
# and sex; BMI from weight and height. Used by a test only when no measured result is in its window.
ADULT_YEARS = 18


def _whole_years(birth: int, on: int) -> int:
    b, d = date.fromordinal(birth), date.fromordinal(on)
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


class DerivedResult:
    """A derived result: dated lo..hi (a partial input date gives a range and no value); value is None
    when an input, the sex or the birth date is missing or unusable; value..value_high when the age is
    uncertain; oldest: the oldest fresh input's date (the result is in a window only when it is)."""

    __slots__ = ("lo", "hi", "value", "value_high", "oldest", "ref_high", "raw_ref", "resolution")

    def __init__(self, lo, hi, value=None, value_high=None, oldest=None):
        self.lo, self.hi, self.value, self.value_high = lo, hi, value, value_high
        self.oldest = lo if oldest is None else oldest
        self.ref_high = self.raw_ref = None
        self.resolution = 0.0


def _ckd_epi_2021(v, age, sex):
    creatinine = v[0]  # mg/dL
    if sex == "female":
        ratio = creatinine / 0.7
        return 142.0 * min(ratio, 1.0) ** -0.241 * max(ratio, 1.0) ** -1.200 * 0.9938 ** age * 1.012
    ratio = creatinine / 0.9
    return 142.0 * min(ratio, 1.0) ** -0.302 * max(ratio, 1.0) ** -1.200 * 0.9938 ** age


def _bmi(v, age, sex):
    metres = v[1] / 100.0  # height cm
    return v[0] / (metres * metres)  # weight kg


# (analyte, at most this many days before the date, or any result taken as a surely adult, fresh)
# the first input is the primary one: no result of it on or before a date, no derived value then
EGFR_INPUTS = (("creatinine", 30, False, True),)
BMI_INPUTS = (("weight", 30, False, True), ("height", 30, True, False))


def derive(p, inputs, formula, needs_age_sex):
    """The derived results of one patient, newest first (sorted by last possible day, like a series).

    A result exists on each date one of the inputs was measured; each input is the latest result
    on or before that date within its limit; a date whose inputs are the same results as an earlier
    date's gives no new value."""
    labs = p.labs
    if not labs:
        return []
    days = set()
    for key, _limit, _adult, _fresh in inputs:
        for o in labs.get(key) or ():
            if o.lo is not None:
                days.add((o.lo, o.hi))
    if not days:
        return []
    birth, sex = p.birth, p.sex
    made, seen = [], set()
    for lo, hi in sorted(days):
        bad = lo != hi  # an input dated only to a month or year: no value
        picked = []
        if not bad:
            for index, (key, limit, adult_any_time, fresh) in enumerate(inputs):
                found = None
                for o in labs.get(key) or ():  # newest first
                    o_hi = o.hi
                    if o_hi is None or o_hi > lo or o.lo > lo:
                        continue
                    if lo - o_hi > limit and not (adult_any_time and birth is not None and birth[1] <= o.lo
                                                  and _whole_years(birth[1], o.lo) >= ADULT_YEARS):
                        break  # too old
                    found = o
                    break
                if found is None:
                    if index == 0:
                        break  # no primary input on or before the date: no derived result
                    bad = True
                elif found.value is None or found.comparator is not None or found.lo != found.hi:
                    bad = True  # a text, a bound ("< 0.5"), a partial date
                else:
                    picked.append((found, fresh))
            if not picked and not bad:
                continue
        ages = None
        if needs_age_sex:  # CKD-EPI: adults only, needs the sex and the age
            if sex != "female" and sex != "male":
                bad = True
            if birth is None or birth[0] > lo:
                bad = True
            else:
                ages = (_whole_years(min(birth[1], lo), lo), _whole_years(birth[0], lo))
                if ages[0] < ADULT_YEARS:
                    bad = True
        if bad:
            made.append(DerivedResult(lo, hi))
            continue
        identity = tuple(id(o) for o, _ in picked)
        if identity in seen:
            continue
        seen.add(identity)
        v = [o.value for o, _ in picked]
        try:
            results = sorted(formula(v, age, sex) for age in sorted(set(ages or (None,))))
        except (ZeroDivisionError, OverflowError, ValueError):
            results = [math.nan]
        if not all(math.isfinite(r) and r >= 0 for r in results):
            made.append(DerivedResult(lo, hi))
            continue
        fresh_days = [o.lo for o, fresh in picked if fresh]
        made.append(DerivedResult(lo, hi, results[0], results[-1] if results[-1] != results[0] else None,
                                  min(fresh_days) if fresh_days else lo))
    made.sort(key=lambda o: (o.hi, o.lo), reverse=True)
    return made


def make_baseline(as_of: date):
    """The hand-written screening function for ``as_of``: patient -> ((applies, value), ...)."""
    END = as_of.toordinal()
    M3, M6, M12, Y5 = (_months_back(as_of, m) for m in (3, 6, 12, 60))
    # ages as birth-date cutoffs: aged >= N years on the as-of date <=> born on or before AGE_N
    AGE_18, AGE_50, AGE_76 = (_born_by(as_of, n) for n in (18, 50, 76))

    # ---- value sets (patient codes are normalised: ICD-10/ATC upper case without dots)
    def is_malignancy(codes):
        for c in codes:
            if c.startswith("ICD10:"):
                if "C00" <= c[6:9] <= "C96" or c.startswith("ICD10:D45"):
                    return True
            elif c == "SNOMED:363346000" or c == "SNOMED:254637007":
                return True
        return False

    def is_t2d(codes):
        for c in codes:
            if c.startswith("ICD10:E11") or c == "SNOMED:44054006":
                return True
        return False

    def is_t1d(codes):
        for c in codes:
            if c.startswith("ICD10:E10") or c == "SNOMED:46635009":
                return True
        return False

    hf_prefixes = ("ICD10:I50", "ICD10:I110")

    def is_heart_failure(codes):
        for c in codes:
            if c.startswith(hf_prefixes) or c == "SNOMED:84114007":
                return True
        return False

    acs_exact = frozenset({"SNOMED:394659003", "SNOMED:22298006"})

    def is_acs(codes):
        for c in codes:
            if c.startswith("ICD10:"):
                if c.startswith("ICD10:I200") or "I21" <= c[6:9] <= "I22":
                    return True
            elif c in acs_exact:
                return True
        return False

    def is_gilbert(codes):
        for c in codes:
            if c.startswith("ICD10:E804") or c == "SNOMED:27503000":
                return True
        return False

    # The medication value sets list RxNorm codes but need an RxNorm release to find the products
    # under their ATC classes: without one, a record coded only in RxNorm that matches no listed
    # code may be in the set (None); an ATC code decides (ATC is covered: its hierarchy is in the code).
    def is_insulin(codes):
        rxnorm = False
        for c in codes:
            if c.startswith("ATC:A10A") or c == "RXNORM:5856":
                return True
        for c in codes:
            if c.startswith("ATC:"):
                return False
            if c.startswith("RXNORM:"):
                rxnorm = True
        return None if rxnorm else False

    anticoag_prefixes = ("ATC:B01AA", "ATC:B01AF")
    anticoag_exact = frozenset({"RXNORM:11289", "RXNORM:1364430"})

    def is_anticoagulant(codes):
        rxnorm = False
        for c in codes:
            if c.startswith(anticoag_prefixes) or c in anticoag_exact:
                return True
        for c in codes:
            if c.startswith("ATC:"):
                return False
            if c.startswith("RXNORM:"):
                rxnorm = True
        return None if rxnorm else False

    revasc_exact = frozenset({"CPT:33533", "CPT:92928", "SNOMED:232717009"})

    def is_revascularisation(codes):
        for c in codes:
            if c in revasc_exact:
                return True
        return False

    # ---- labs
    def latest(labs, key, start, test, uln=None, series=False):
        """`KEY <test>` on the latest result within [start, as-of]: True, False or None (unknown).

        The latest is the newest result on or before the as-of date; None when there is none in the
        window, when its date straddles the window's edge, or when it has no usable value.
        ``test(o, uln)`` is called only on results with a value; ``uln`` is the fallback upper limit.
        A partial date ("2026-03") can leave the order open: an older-looking result whose date range
        reaches into the newest one's may be the latest. If one of them answers differently, None.
        """
        if series is False:
            if labs is None:
                return None
            series = labs.get(key)
        if not series:
            return None
        i = 0
        for o in series:  # newest first
            i += 1
            lo = o.lo
            if lo is None:
                return None  # undated: cannot be placed in the window
            if lo > END:
                continue  # after the as-of date
            if lo < start or o.hi > END:
                return None  # too old, or a partial date straddling the window's edge
            if o.value is None:
                return None
            r = test(o, uln) if o.value_high is None else judge_interval(o, test, uln)
            if i < len(series):
                hi = series[i].hi
                if hi is not None and hi >= lo and rival_differs(series, i, lo, r, test, uln):
                    return None
            return r
        return None

    def judge_interval(o, test, uln):
        """A derived value known only as an interval (partial birth date): decided when both ends agree."""
        low = test(o, uln)
        high = test(DerivedResult(o.lo, o.hi, o.value_high), uln)
        return low if low is high else None

    def with_derived(labs, key, start, p, inputs, formula, needs_age_sex):
        """The results a test of a derivable analyte reads: the measured ones when one is in the window
        [start, as-of], else the derived ones in the window (made from inputs on or before the as-of
        date, every fresh input inside the window), else the measured ones."""
        measured = labs.get(key)
        if measured:
            for o in measured:
                lo = o.lo
                if lo is None or lo > END:
                    continue
                if o.hi >= start:
                    return measured
                break
        if inputs[0][0] not in labs and (len(inputs) == 1 or inputs[1][0] not in labs):
            return measured  # no input: nothing derived
        kept = [o for o in derive(p, inputs, formula, needs_age_sex) if o.hi <= END and o.oldest >= start]
        return kept or measured

    def rival_differs(series, i, lo, r, test, uln):
        """Does a result from series[i] on, whose date may be as late as ``lo``, give another answer than r?

        The series is sorted by last possible day, so the first result that ends before ``lo`` ends
        the search. The rivals all lie in the window: they end between lo (>= start) and the newest
        result's end (<= as-of).
        """
        for j in range(i, len(series)):
            rival = series[j]
            hi = rival.hi
            if hi is None or hi < lo:
                return False
            if rival.value is None or (test(rival, uln) if rival.value_high is None
                                       else judge_interval(rival, test, uln)) is not r:
                return True
        return False

    def occasions(labs, key, start, test, need, series=False):
        """`KEY meets test on at least NEED occasions within the window` (any: need=1)."""
        if series is False:
            if labs is None:
                return None
            series = labs.get(key)
        if not series:
            return None
        true = unknown = seen = 0
        kept = []
        for o in series:
            lo = o.lo
            if lo is not None and lo > END:
                continue
            if lo is None:
                certain = False
            elif lo >= start and o.hi <= END:
                certain = True
            elif o.hi < start:
                continue
            else:
                certain = False
            v = o.value
            r = None if v is None else test(v)
            if r is not None and o.value_high is not None and test(o.value_high) is not r:
                r = None  # a derived value known as an interval, on both sides of the limit
            if not certain:
                if r is False:
                    continue
                r = None
            if need > 1 and lo is not None and v is not None and any(
                    k.lo == lo and k.hi == o.hi and kr is r and k.value is not None
                    and abs(k.value - v) <= max(k.resolution, o.resolution) * (1 + 1e-9) for k, kr in kept):
                continue  # the same specimen reported twice (same date, same value at its precision)
            kept.append((o, r))
            seen += 1
            if r:
                true += 1
            elif r is None:
                unknown += 1
        if not seen:
            return None
        if true >= need:
            return True
        if true + unknown >= need:
            return None
        if need == 1:
            return False
        # false only when a normal result certainly follows every result that meets or may meet it
        pending = [k for k, kr in kept if kr is not False]
        if not pending:
            return False
        if any(k.hi is None for k in pending):
            return None
        last = max(k.hi for k in pending)
        return False if any(kr is False and k.lo is not None and k.lo > last for k, kr in kept) else None

    # ---- conditions, medications, procedures
    def active(e, procedure=False):
        if e.end_lo is not None:
            if e.end_hi < END:
                return False
            if e.end_lo >= END:
                return e.status not in _ENDED if e.status else True
            return None
        s = e.status
        if s in _ACTIVE:
            return True
        if s in _ENDED:
            return False
        return False if procedure else None

    def overlaps(e, act, start, procedure=False):
        s_lo = e.start_lo if e.start_lo is not None else NEVER
        s_hi = e.start_hi if e.start_hi is not None else END
        if e.end_lo is not None:
            e_lo, e_hi = e.end_lo, e.end_hi
        elif procedure:
            e_lo, e_hi = s_lo, s_hi
        elif act is True:
            e_lo = e_hi = FOREVER
        else:
            e_lo, e_hi = s_lo, (FOREVER if act is None else END)
        if s_hi <= END and e_lo >= start:
            return True
        if s_lo > END or e_hi < start:
            return False
        return None

    def has(entries, match):
        """`condition X`: any matching record that began on or before the as-of date.

        One whose partial start ("2026") may fall after the as-of date makes it unknown, unless
        another record settles it.
        """
        if entries is None:
            return None
        possible = False
        for e in entries:
            m = match(e.codes)
            if m is False or e.status in _NEVER_HAPPENED:
                continue
            hi = e.start_hi
            if hi is None or hi <= END:
                if m:
                    return True
                possible = True
            elif e.start_lo <= END:
                possible = True
        return None if possible else False

    def has_active(entries, match, route=None):
        """`active X`: the record's status and end date decide; a start that may fall after the
        as-of date ("2026" on 2026-11-25) leaves it unknown."""
        if entries is None:
            return None
        possible = False
        for e in entries:
            m = match(e.codes)
            if m is False or e.status in _NEVER_HAPPENED or (e.start_lo is not None and e.start_lo > END):
                continue
            r = active(e)
            if r is False:
                continue
            if e.start_hi is not None and e.start_hi > END:
                r = None
            if route is not None:
                actual = e.attributes.get("route")
                if actual is None:
                    r = None
                elif str(actual).strip().lower() != route:
                    continue
            if r and m:
                return True
            possible = True
        return None if possible else False

    def has_within(entries, match, start, procedure=False):
        if entries is None:
            return None
        possible = False
        for e in entries:
            m = match(e.codes)
            if m is False or e.status in _NEVER_HAPPENED or (e.start_lo is not None and e.start_lo > END):
                continue
            r = overlaps(e, active(e, procedure), start, procedure)
            if r and m:
                return True
            if r is not False:
                possible = True
        return None if possible else False

    def has_event_within(entries, match, start):
        """`condition X within N`: the onset (or, without one, the recorded date) lies in the window."""
        if entries is None:
            return None
        possible = False
        for e in entries:
            if (not match(e.codes) or e.status in _NEVER_HAPPENED
                    or (e.start_lo is not None and e.start_lo > END)):
                continue
            lo, hi = (e.start_lo, e.start_hi) if e.start_lo is not None else e.recorded
            if lo is None:
                possible = True  # no date to place the event
            elif lo >= start and hi <= END:
                return True
            elif not (hi < start or lo > END):
                possible = True
        return None if possible else False

    # ---- Kleene logic
    def k_and(a, b):
        if a is False or b is False:
            return False
        return None if a is None or b is None else True

    def k_or(a, b):
        if a is True or b is True:
            return True
        return None if a is None or b is None else False

    def k_not(a):
        return None if a is None else not a

    # lab tests on one result with a value (o.value in the catalogue unit); uln: the fallback limit
    def hba1c_53_91(o, uln):
        return HBA1C_LOW <= o.value <= HBA1C_HIGH

    def hba1c_95(o, uln):
        return o.value >= 9.5

    def creat_15(o, uln):
        return o.value <= CREAT_MAX

    # A multiple of ULN is compared in the observation's own unit when it brings its own reference range
    # (raw value against raw ULN x k: 26 umol/L > 1.5 x 17 umol/L, which the rounded canonical values
    # 1.5 mg/dL and 1.0 mg/dL would not show); else canonical value against the canonical limit.
    def creat_12_uln(o, uln):
        raw = o.raw_ref
        if raw is not None and raw["ULN"] is not None:
            return o.raw_value <= raw["ULN"] * 1.2
        limit = o.ref_high
        return o.value <= (uln if limit is None else limit) * 1.2

    def egfr_45(o, uln):
        return o.value >= 45.0

    def plt_100(o, uln):
        return o.value >= PLT_MIN

    def anc_15(o, uln):
        return o.value >= ANC_MIN

    def hgb_9(o, uln):
        return o.value >= HGB_MIN

    def over_25_uln(o, uln):  # ALT, AST
        raw = o.raw_ref
        if raw is not None and raw["ULN"] is not None:
            return o.raw_value > raw["ULN"] * 2.5
        limit = o.ref_high
        return o.value > (uln if limit is None else limit) * 2.5

    def over_3_uln(o, uln):
        raw = o.raw_ref
        if raw is not None and raw["ULN"] is not None:
            return o.raw_value > raw["ULN"] * 3.0
        limit = o.ref_high
        return o.value > (uln if limit is None else limit) * 3.0

    def over_15_uln(o, uln):
        raw = o.raw_ref
        if raw is not None and raw["ULN"] is not None:
            return o.raw_value > raw["ULN"] * 1.5
        limit = o.ref_high
        return o.value > (uln if limit is None else limit) * 1.5

    def bmi_40(o, uln):
        return o.value >= 40.0

    def bmi_35(o, uln):
        return o.value >= 35.0

    # `any` / `on at least N occasions` tests take the value
    def sbp_160(v):
        return v >= 160.0

    def egfr_below_30(v):
        return v < 30.0

    def wbc_low(v):
        return v < WBC_LOW

    def screen(p):
        labs = p.labs
        sex = p.sex
        birth = p.birth
        conditions = p.conditions
        medications = p.medications
        facts = p.facts

        # eGFR and BMI (both read within 12 months): measured, or else derived
        if labs is None:
            egfr_m12 = bmi_m12 = None
        else:
            egfr_m12 = with_derived(labs, "eGFR", M12, p, EGFR_INPUTS, _ckd_epi_2021, True)
            bmi_m12 = with_derived(labs, "BMI", M12, p, BMI_INPUTS, _bmi, False)

        # I1 age between 18 and 75 years. A partial birth date ("1965") gives a range of ages: true if
        # every possible age passes, false if none does, else unknown. Born after the as-of date: no age.
        # (The youngest age would be clipped at the as-of date; the cutoffs all lie before it.)
        if birth is None or birth[0] > END:
            i1 = age_under_50 = None
        else:
            first, last = birth  # the oldest and the youngest possible age
            if last <= AGE_18 and first > AGE_76:
                i1 = True
            elif first > AGE_18 or last <= AGE_76:
                i1 = False
            else:
                i1 = None
            age_under_50 = True if first > AGE_50 else (False if last <= AGE_50 else None)

        # I2 condition diabetes_t2 unless condition diabetes_t1
        i2 = k_and(has(conditions, is_t2d), k_not(has(conditions, is_t1d)))

        # I3 HbA1c between 53 and 91 mmol/mol within 3 months
        i3 = latest(labs, "HbA1c", M3, hba1c_53_91)

        # I4 creatinine <= 1.5 mg/dL or creatinine <= 1.2 x ULN or eGFR >= 45: three tests, each on
        # its latest result (two creatinine results in an uncertain order can settle one and not the other)
        i4 = latest(labs, "creatinine", M12, creat_15)
        if i4 is not True:
            uln = CREAT_ULN_F if sex == "female" else CREAT_ULN_M if sex == "male" else CREAT_ULN
            i4 = k_or(i4, latest(labs, "creatinine", M12, creat_12_uln, uln))
            if i4 is not True:
                i4 = k_or(i4, latest(labs, "eGFR", M12, egfr_45, series=egfr_m12))

        # I5 platelets >= 100 x 10^9/L within 6 months
        i5 = latest(labs, "platelets", M6, plt_100)

        # I6 ANC >= 1,500/mm3 and hemoglobin >= 90 g/L
        i6 = latest(labs, "ANC", M12, anc_15)
        if i6 is not False:
            i6 = k_and(i6, latest(labs, "hemoglobin", M12, hgb_9))

        # facts
        if facts is None:
            consent = not_pregnant = curative = smoker = ecog_over_1 = None
        else:
            v = facts.get("informed_consent")
            consent = v if v is True or v is False else None
            v = facts.get("pregnant")
            not_pregnant = (v is False) if v is True or v is False else None
            v = facts.get("malignancy_curatively_treated")
            curative = v if v is True or v is False else None
            v = facts.get("smoker")
            smoker = v if v is True or v is False else None
            v = facts.get("ecog")
            ecog_over_1 = v > 1 if type(v) in (int, float) else None

        # I8 applies if sex is female and age < 50: fact pregnant is false
        female = None if sex is None or sex == "unknown" else sex == "female"
        i8_applies = k_and(female, age_under_50)

        # E1 condition malignancy within 5 years unless fact malignancy_curatively_treated
        e1 = k_and(has_within(conditions, is_malignancy, Y5), k_not(curative))

        # E2 ALT > 2.5 x ULN or AST > 2.5 x ULN
        e2 = latest(labs, "ALT", M12, over_25_uln, ALT_ULN)
        if e2 is not True:
            e2 = k_or(e2, latest(labs, "AST", M12, over_25_uln, AST_ULN))

        # E3 if condition gilbert then bilirubin > 3 x ULN else bilirubin > 1.5 x ULN
        gilbert = has(conditions, is_gilbert)
        if gilbert is True:
            e3 = latest(labs, "bilirubin", M12, over_3_uln, BILI_ULN)
        elif gilbert is False:
            e3 = latest(labs, "bilirubin", M12, over_15_uln, BILI_ULN)
        else:  # unknown premise: the branches must agree
            e3 = latest(labs, "bilirubin", M12, over_3_uln, BILI_ULN)
            if e3 is not None and latest(labs, "bilirubin", M12, over_15_uln, BILI_ULN) is not e3:
                e3 = None

        # E4 active condition heart_failure or condition acs within 6 months
        e4 = has_active(conditions, is_heart_failure)
        if e4 is not True:
            e4 = k_or(e4, has_event_within(conditions, is_acs, M6))

        # E5 systolic_bp >= 160 mmHg on at least 2 occasions within 6 months
        hypertension = occasions(labs, "systolic_bp", M6, sbp_160, 2)

        # E6 BMI >= 40 kg/m2
        e6 = latest(labs, "BMI", M12, bmi_40, series=bmi_m12)

        # E7 medication insulin within 3 months
        e7 = has_within(medications, is_insulin, M3)

        # E8 at least 2 of (BMI >= 35, HbA1c >= 9.5 %, hypertension, smoker, any eGFR < 30 within 1 year)
        items = (latest(labs, "BMI", M12, bmi_35, series=bmi_m12), latest(labs, "HbA1c", M12, hba1c_95),
                 hypertension, smoker, occasions(labs, "eGFR", M12, egfr_below_30, 1, series=egfr_m12))
        t = items.count(True)
        u = items.count(None)
        e8 = True if t >= 2 else (False if t + u < 2 else None)

        # E9 WBC < 3,000/mm3 on at least 2 occasions within 1 year
        e9 = occasions(labs, "WBC", M12, wbc_low, 2)

        # E10 active medication anticoagulant with route = "oral"
        e10 = has_active(medications, is_anticoagulant, "oral")

        # E11 procedure revascularisation within 6 months
        e11 = has_within(p.procedures, is_revascularisation, M6, True)

        return ((True, i1), (True, i2), (True, i3), (True, i4), (True, i5), (True, i6), (True, consent),
                (i8_applies, not_pregnant), (True, e1), (True, e2), (True, e3), (True, e4), (True, hypertension),
                (True, e6), (True, e7), (True, e8), (True, e9), (True, e10), (True, e11), (True, ecog_over_1))

    return screen


# =====================================================================================
# measurement helpers
# =====================================================================================
def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def current_rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return None


def repeat(fn, reps: int) -> list[float]:
    """Wall-clock seconds of ``fn()`` for each of ``reps`` repetitions."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count()}


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


# =====================================================================================
# the benchmark
# =====================================================================================
def bench_compile(text: str, reps: int) -> dict:
    t0 = time.perf_counter()
    trial = compile_text(text, str(RULES))
    cold = time.perf_counter() - t0
    times = repeat(lambda: compile_text(text, str(RULES)), reps)
    return {"trial": trial, "cold_ms": cold * 1e3, "warm_ms": statistics.median(times) * 1e3,
            "warm_all_ms": [t * 1e3 for t in times]}


def bench_stream(trial: Trial, path: Path, as_of: date, n: int, chunk: int, first_checkpoint: int) -> dict:
    """NDJSON line -> json.loads -> patient_from_document -> screen(explain=True) -> json.dumps.

    Nothing is kept between patients. Each stage is timed per patient; the figures are medians
    over chunks of ``chunk`` patients.
    """
    stages = ("json_loads", "patient_from_document", "screen_explain", "json_dumps")
    chunk_times: list[float] = []
    stage_chunks: dict[str, list[float]] = {s: [] for s in stages}
    sums = [0.0, 0.0, 0.0, 0.0]
    rss = {}
    decisions: dict[str, int] = {}
    written = 0
    in_chunk = 0
    screen = trial.screen
    clock = time.perf_counter
    with open(path, encoding="utf-8") as lines, open(os.devnull, "w") as sink:
        t_all = t_chunk = clock()
        for i, line in enumerate(lines, 1):
            t0 = clock()
            document = json.loads(line)
            t1 = clock()
            patient = patient_from_document(document, f"{path.name}:{i}")
            t2 = clock()
            result = screen(patient, as_of, explain=True)
            t3 = clock()
            text = json.dumps(result.to_dict())
            t4 = clock()
            sums[0] += t1 - t0
            sums[1] += t2 - t1
            sums[2] += t3 - t2
            sums[3] += t4 - t3
            sink.write(text)
            sink.write("\n")
            written += len(text) + 1
            decisions[result.decision] = decisions.get(result.decision, 0) + 1
            in_chunk += 1
            if in_chunk == chunk or i == n:
                now = clock()
                chunk_times.append((now - t_chunk) / in_chunk)
                for name, total in zip(stages, sums):
                    stage_chunks[name].append(total / in_chunk)
                sums = [0.0, 0.0, 0.0, 0.0]
                in_chunk = 0
                t_chunk = now
            if i == first_checkpoint or i == n:
                rss[i] = {"peak_mb": peak_rss_mb(), "current_mb": current_rss_mb()}
        total = clock() - t_all
    per_patient = statistics.median(chunk_times)
    return {"patients": n, "seconds": total, "patients_per_s_total": n / total,
            "patients_per_s_median_chunk": 1 / per_patient, "chunks": len(chunk_times), "rss": rss,
            "stage_us": {name: statistics.median(v) * 1e6 for name, v in stage_chunks.items()},
            "decisions": decisions, "output_bytes_per_patient": written / n}


def bench_load(path: Path, n: int, chunk: int) -> tuple[list, dict]:
    """Read the NDJSON file and keep the indexed patients; time json.loads and patient_from_document."""
    parse_times, index_times = [], []
    population = []
    with open(path, encoding="utf-8") as lines:
        batch: list[str] = []

        def flush(batch, start):
            t0 = time.perf_counter()
            documents = [json.loads(line) for line in batch]
            t1 = time.perf_counter()
            for k, document in enumerate(documents):
                population.append(patient_from_document(document, f"{path.name}:{start + k}"))
            t2 = time.perf_counter()
            parse_times.append((t1 - t0) / len(batch))
            index_times.append((t2 - t1) / len(batch))

        start = 1
        for line in lines:
            batch.append(line)
            if len(batch) == chunk:
                flush(batch, start)
                start += len(batch)
                batch = []
        if batch:
            flush(batch, start)
    assert len(population) == n, (len(population), n)
    return population, {"json_loads_us": statistics.median(parse_times) * 1e6,
                        "patient_from_document_us": statistics.median(index_times) * 1e6,
                        "chunks": len(index_times)}


def check_agreement(trial: Trial, baseline, population, as_of: date) -> dict:
    ids = [c.id for c in trial.criteria]
    per_criterion: dict[str, int] = {}
    examples = []
    agree = 0
    for p in population:
        engine = trial.values(p, as_of)
        mine = baseline(p)
        if engine == mine:
            agree += 1
            continue
        for cid, e, b in zip(ids, engine, mine):
            if e != b:
                per_criterion[cid] = per_criterion.get(cid, 0) + 1
                if len(examples) < 20:
                    examples.append({"patient": p.id, "criterion": cid, "engine": e, "baseline": b})
    return {"patients": len(population), "agree": agree, "disagree_by_criterion": per_criterion,
            "examples": examples}


def value_distribution(trial: Trial, population, as_of: date) -> dict:
    """How often each criterion is true / false / unknown (shows the population exercises all three)."""
    counts = {c.id: [0, 0, 0, 0] for c in trial.criteria}  # true, false, unknown, not applicable
    for p in population:
        for c, (applies, value) in zip(trial.criteria, trial.values(p, as_of)):
            slot = 3 if applies is False else (2 if value is None else (0 if value else 1))
            counts[c.id][slot] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000, help="population size (default 100000)")
    parser.add_argument("--seed", type=int, default=20261125, help="population seed")
    parser.add_argument("--repeat", type=int, default=7,
                        help="rounds of the fast evaluation loops, interleaved (median)")
    parser.add_argument("--explain-repeat", type=int, default=3,
                        help="repetitions of the explaining loop over the whole population (median)")
    parser.add_argument("--compile-repeat", type=int, default=9, help="warm compiles (median)")
    parser.add_argument("--ndjson", help="NDJSON file to use or create (default: a temporary file, removed)")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    parser.add_argument("--profile", action="store_true",
                        help="also profile Trial.values over the population with cProfile (top functions)")
    args = parser.parse_args(argv)
    n = args.patients
    as_of = AS_OF
    chunk = max(1, min(10_000, n // 10))
    first_checkpoint = min(10_000, n)
    figures: dict = {"machine": machine(), "patients": n, "seed": args.seed, "as_of": as_of.isoformat()}
    out = sys.stdout

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    m = figures["machine"]
    say(f"screening benchmark: {n:,} patients, seed {args.seed}, as of {as_of}")
    say(f"machine: {m['cpu']} ({m['cores']} cores), {m['implementation']} {m['python']}, {m['platform']}")
    say(f"rule set: {RULES.relative_to(HERE.parent)}")
    say()

    # 1. compile
    text = RULES.read_text(encoding="utf-8")
    comp = bench_compile(text, args.compile_repeat)
    trial: Trial = comp.pop("trial")
    ncrit = len(trial.criteria)
    figures["compile"] = comp
    figures["criteria"] = ncrit
    say(f"compile ({ncrit} criteria): first (cold: builds the Lark parser, UCUM registry) {comp['cold_ms']:.1f} ms;"
        f" warm median of {args.compile_repeat}: {comp['warm_ms']:.2f} ms")

    # 2. generate the NDJSON file on the fly, then stream it end to end
    tmpdir = None
    if args.ndjson:
        path = Path(args.ndjson)
        if path.exists():
            with open(path, encoding="utf-8") as f:
                have = sum(1 for _ in f)
            if have != n:
                say(f"{path} has {have} lines, not {n}: writing it again")
                write_ndjson(path, n, args.seed)
        else:
            write_ndjson(path, n, args.seed)
    else:
        tmpdir = tempfile.TemporaryDirectory(prefix="screening-bench-")
        path = Path(tmpdir.name) / f"population-{n}-{args.seed}.ndjson"
        t0 = time.perf_counter()
        write_ndjson(path, n, args.seed)
        figures["generate_s"] = time.perf_counter() - t0
        say(f"generated {n:,} patients into NDJSON in {figures['generate_s']:.1f} s "
            f"({path.stat().st_size / n:,.0f} bytes per patient)")
    rss_before_stream = {"peak_mb": peak_rss_mb(), "current_mb": current_rss_mb()}

    # warm up the explaining path a little (imports, caches) before the timed stream
    with open(path, encoding="utf-8") as f:
        for _, line in zip(range(200), f):
            json.dumps(trial.screen(patient_from_document(json.loads(line)), as_of, explain=True).to_dict())
    stream = bench_stream(trial, path, as_of, n, chunk, first_checkpoint)
    stream["rss_before"] = rss_before_stream
    figures["end_to_end"] = stream
    say("end to end (NDJSON line -> json.loads -> patient_from_document -> screen(explain=True) -> json.dumps):")
    say(f"    {fmt_rate(stream['patients_per_s_median_chunk'])} patients/s (median of {stream['chunks']} chunks),"
        f" {fmt_rate(stream['patients_per_s_total'])} patients/s over the whole pass of {stream['seconds']:.1f} s")
    st = stream["stage_us"]
    say(f"    per patient: json.loads {st['json_loads']:.0f} us, patient_from_document (validate + index) "
        f"{st['patient_from_document']:.0f} us, screen(explain=True) {st['screen_explain']:.0f} us, "
        f"json.dumps(result.to_dict()) {st['json_dumps']:.0f} us")
    say(f"    decisions: {stream['decisions']}; {stream['output_bytes_per_patient']:,.0f} bytes of JSON per result")
    rss_line = ", ".join(f"after {k:,}: peak {v['peak_mb']:.0f} MB (current {v['current_mb']:.0f} MB)"
                         for k, v in stream["rss"].items())
    say(f"    memory while streaming: before {rss_before_stream['peak_mb']:.0f} MB peak; {rss_line}")

    # 3. load and index the whole population, keep it
    gc.collect()
    population, load = bench_load(path, n, chunk)
    load["rss_held_mb"] = current_rss_mb()
    figures["load"] = load
    say(f"load into memory: json.loads {load['json_loads_us']:.0f} us + patient_from_document (validate + index) "
        f"{load['patient_from_document_us']:.0f} us per patient (median of {load['chunks']} chunks; slower than "
        f"streaming as the garbage collector walks the growing population)")
    say(f"    {n:,} indexed patients held: {load['rss_held_mb']:,.0f} MB RSS "
        f"({(load['rss_held_mb'] - rss_before_stream['current_mb']) * 1024 / n:.0f} KB per patient)")
    if tmpdir is not None:
        tmpdir.cleanup()

    # 4. agreement of the hand-written baseline with the engine
    baseline = make_baseline(as_of)
    agreement = check_agreement(trial, baseline, population, as_of)
    figures["agreement"] = agreement
    say(f"agreement: baseline == Trial.values on {agreement['agree']:,} of {n:,} patients"
        + ("" if agreement["agree"] == n else f"; DISAGREEMENTS by criterion: {agreement['disagree_by_criterion']}"))
    for ex in agreement["examples"][:10]:
        say(f"    {ex['patient']} {ex['criterion']}: engine {ex['engine']} baseline {ex['baseline']}")
    dist = value_distribution(trial, population, as_of)
    figures["value_distribution"] = {k: dict(zip(("true", "false", "unknown", "not_applicable"), v))
                                     for k, v in dist.items()}
    unknown_share = sum(v[2] for v in dist.values()) / (n * ncrit)
    say(f"criterion values: {unknown_share:.0%} unknown overall; per criterion (true/false/unknown/n.a.): "
        + " ".join(f"{k}={'/'.join(str(x) for x in v)}" for k, v in dist.items()))

    # 5. evaluation throughput over the loaded population
    values, screen = trial.values, trial.screen

    def run_baseline():
        for p in population:
            baseline(p)

    def run_values():
        for p in population:
            values(p, as_of)

    def run_verdicts():
        for p in population:
            screen(p, as_of, explain=False)

    def run_explain():
        for p in population:
            screen(p, as_of, explain=True)

    warm = population[: min(2000, n)]
    for p in warm:  # warm-up: caches (window starts, contexts), branch paths
        baseline(p), values(p, as_of), screen(p, as_of, explain=False), screen(p, as_of, explain=True)

    # The loops run interleaved, round after round, so that load from other processes on the
    # machine falls on all of them alike; each ratio is the median of the per-round ratios.
    fast = [("baseline", "hand-written Python baseline", run_baseline),
            ("values", "Trial.values (no explanations)", run_values),
            ("verdicts", "Trial.screen(explain=False) (verdicts; unknowns explained)", run_verdicts)]
    times: dict[str, list[float]] = {key: [] for key, _, _ in fast}
    for _ in range(args.repeat):
        for key, _label, fn in fast:
            times[key] += repeat(fn, 1)
    times["explain"], paired_baseline = [], []
    for _ in range(args.explain_repeat):
        paired_baseline += repeat(run_baseline, 1)
        times["explain"] += repeat(run_explain, 1)
    labels = {key: label for key, label, _ in fast}
    labels["explain"] = "Trial.screen(explain=True) (verdicts + explanation text)"
    evals = {}
    say(f"evaluation over {n:,} loaded patients x {ncrit} criteria (warm; median of the repetitions):")
    for key in ("baseline", "values", "verdicts", "explain"):
        ts = times[key]
        med = statistics.median(ts)
        evals[key] = {"label": labels[key], "seconds": med, "all_seconds": ts, "patients_per_s": n / med,
                      "criteria_per_s": n * ncrit / med, "us_per_patient": med / n * 1e6,
                      "best_us_per_patient": min(ts) / n * 1e6}
        say(f"    {labels[key]:58s} {fmt_rate(n * ncrit / med):>11} criterion evaluations/s "
            f"({med / n * 1e6:6.1f} us/patient, best {min(ts) / n * 1e6:6.1f}; {fmt_rate(n / med)} patients/s;"
            f" {len(ts)} reps)")
    ratios = {k: statistics.median(b / t for b, t in zip(times["baseline"], times[k])) for k in ("values", "verdicts")}
    ratios["explain"] = statistics.median(b / t for b, t in zip(paired_baseline, times["explain"]))
    figures["evaluation"] = evals
    figures["explain_paired_baseline_seconds"] = paired_baseline
    figures["ratios_vs_baseline"] = ratios
    figures["general_purpose_rule_engine_ratio"] = GENERAL_ENGINE_RATIO
    say("throughput relative to the hand-written baseline (1.00x = as fast as hand-written code;"
        " median of per-round ratios):")
    say(f"    engine without explanations (Trial.values): {ratios['values']:.2f}x")
    say(f"    engine with verdicts (explain=False):       {ratios['verdicts']:.2f}x")
    say(f"    engine with explanations (explain=True):    {ratios['explain']:.3f}x")
    say(f"    for reference, general-purpose Python rule engines reach about {GENERAL_ENGINE_RATIO}x")

    if args.profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        run_values()
        profiler.disable()
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
        say("cProfile of Trial.values over the population (by own time):")
        say(buf.getvalue())

    if args.json:
        print(json.dumps(figures, default=str, indent=None))
    if agreement["agree"] != n:
        say("FAILED: the baseline and the engine disagree (see above)")
    assert agreement["agree"] == n, "the hand-written baseline and Trial.values disagree"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
