"""Three-valued evaluation of checked rules against an indexed patient.

Truth values are ``True``, ``False`` and ``None`` (unknown), combined with Kleene's tables:
``unknown and false`` is false, ``unknown or true`` is true. Missing data is a value, never an
exception: an atom that lacks data returns ``None`` and names what is missing.

Each atom is one function returning ``(value, info)``, where ``info`` is a small tuple that
:mod:`screening.report` turns into words only when an explanation is wanted. The compiled fast
path (:mod:`screening.compile`) calls the same atom functions, so both paths share one meaning.
"""
from __future__ import annotations

from datetime import date

from . import derived, ir, vocabulary
from .dates import FOREVER, NEVER, moved, shift, show, whole_months, whole_years
from .units import snap_value


# ---------------------------------------------------------------- context
class Context:
    """What an evaluation needs besides the patient: the as-of date and the rule set's tables."""

    __slots__ = ("as_of", "as_of_date", "as_of_text", "ranges", "_starts")

    def __init__(self, as_of: date, ranges: ir.RangeTable):
        self.as_of_date = as_of
        self.as_of_text = as_of.isoformat()
        self.as_of = as_of.toordinal()
        self.ranges = ranges
        self._starts: dict[int, int] = {}

    def window_start(self, window: ir.Duration | None) -> int:
        """First day (ordinal) inside a window that ends on the as-of date."""
        if window is None:
            return NEVER
        start = self._starts.get(id(window))  # by identity: windows live as long as the rules
        if start is None:
            start = self._starts[id(window)] = shift(self.as_of_date, window.amount, window.unit).toordinal()
        return start


def _in_window(lo: int | None, hi: int | None, start: int, end: int) -> bool | None:
    """Is a (possibly partial) date inside [start, end]? None when it depends on the unknown part."""
    if lo is None:
        return None
    if lo >= start and hi <= end:
        return True
    if hi < start or lo > end:
        return False
    return None


# ---------------------------------------------------------------- labs
_COMPARE = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "=": lambda v, t: v == t,
    "!=": lambda v, t: v != t,
}


def threshold(bound: ir.Bound, obs, key: str, sex: str | None, ranges: ir.RangeTable):
    """A bound as a canonical value for this observation: (value, None) or (None, what is missing).

    A multiple of ULN/LLN uses the observation's own reference range, else the rule set's
    fallback table (by sex where it has one); with neither, the limit is missing.
    """
    if bound.kind == "value":
        return bound.value, None
    limit = obs.ref_high if bound.kind == "ULN" else obs.ref_low
    if limit is None:
        fallback = ranges.lookup(key, sex)
        if fallback is not None:
            limit = fallback[1] if bound.kind == "ULN" else fallback[0]
    if limit is None:
        why = obs.ref_problem and obs.ref_problem.get("high" if bound.kind == "ULN" else "low")
        return None, f"reference range ({bound.kind}) for {key}" + (f": {why}" if why else "")
    return limit * bound.value, None


def operands(obs, bound: ir.Bound, limit: float) -> tuple[float, float]:
    """The observation's value and the limit to compare it with: in the unit both were written in when
    they share one (a rounded conversion on each side could otherwise reorder them: 84.69 umol/L is
    below 84.7 umol/L), else both in the canonical unit (the unit-precision rule)."""
    if bound.kind == "value":
        if bound.source is not None and obs.to_canonical == bound.source:
            return obs.raw_value, bound.raw
    elif obs.raw_ref is not None and obs.raw_ref[bound.kind] is not None and limit is not None:
        return obs.raw_value, obs.raw_ref[bound.kind] * bound.value  # the observation's own range
    return obs.value, limit


def compare_obs(node: ir.LabCompare, obs, sex: str | None, ranges: ir.RangeTable):
    """Compare one observation with the node's bound(s): (value, thresholds, problem)."""
    if obs.value_high is not None:
        return _compare_interval(node, obs, sex, ranges)
    if obs.value is None:
        problem = obs.problem or "a text result where a number is needed"
        return None, None, problem
    if node.dimension is not None and obs.dimension != node.dimension:
        return None, None, f"{obs.unit} cannot be compared with the threshold's unit"
    low, missing = threshold(node.bound, obs, node.key, sex, ranges)
    if missing:
        return None, None, missing
    if node.op == "between":
        high, missing = threshold(node.upper, obs, node.key, sex, ranges)
        if missing:
            return None, None, missing
        x_low, t_low = operands(obs, node.bound, low)
        x_high, t_high = operands(obs, node.upper, high)
        if obs.comparator is not None:
            if x_low is x_high is obs.raw_value:  # both limits in the observation's own unit
                value = interval_test(obs.comparator, x_low, "between", t_low, t_high)
            else:
                value = _censored(obs, "between", low, high)
            return value, (low, high), _censored_problem(obs) if value is None else None
        return t_low <= x_low and x_high <= t_high, (low, high), None
    x, t = operands(obs, node.bound, low)
    if obs.comparator is not None:
        value = interval_test(obs.comparator, x, node.op, t, None)
        return value, (low,), _censored_problem(obs) if value is None else None
    return _COMPARE[node.op](x, t), (low,), None


def _compare_interval(node: ir.LabCompare, obs, sex: str | None, ranges: ir.RangeTable):
    """A derived value known only as an interval (the age is uncertain): decided only when both ends
    give the same answer."""
    low = compare_obs(node, obs.copy_with_value(obs.value), sex, ranges)
    high = compare_obs(node, obs.copy_with_value(obs.value_high), sex, ranges)
    if low[0] is high[0]:
        return low
    return None, low[1], (f"derived value lies between {obs.value:.6g} and {obs.value_high:.6g} "
                          "depending on the age (birth_date not exact), on both sides of the limit")


def _censored_problem(obs) -> str:
    """Why a comparator result ("> 1.5 mg/dL") that the limit cuts decides nothing."""
    unit = f" {obs.unit}" if obs.unit else ""
    return (f"reported only as {obs.comparator} {obs.in_own_unit(obs.value):.6g}{unit}, "
            "which lies on both sides of the limit")


def interval_test(comparator: str, bound: float, op: str, low: float, high: float | None = None) -> bool | None:
    """Does every value of the interval ``comparator bound`` (e.g. ``> 1.5``) meet ``op low [high]``?

    True when all of them do, False when none does, None when the limit cuts the interval.
    """
    lo, lo_open, hi, hi_open = {
        "<": (float("-inf"), True, bound, True), "<=": (float("-inf"), True, bound, False),
        ">": (bound, True, float("inf"), True), ">=": (bound, False, float("inf"), True),
    }[comparator]
    if op == "between":
        if lo >= low and hi <= high:
            return True
        if hi < low or (hi == low and hi_open) or lo > high or (lo == high and lo_open):
            return False
        return None
    if op in ("=", "!="):
        outside = low < lo or (low == lo and lo_open) or low > hi or (low == hi and hi_open)
        return (False if outside else None) if op == "=" else (True if outside else None)
    if op == "<":
        return True if (hi < low or (hi == low and hi_open)) else (False if lo >= low else None)
    if op == "<=":
        return True if hi <= low else (False if (lo > low or (lo == low and lo_open)) else None)
    if op == ">":
        return True if (lo > low or (lo == low and lo_open)) else (False if hi <= low else None)
    # ">="
    return True if lo >= low else (False if (hi < low or (hi == low and hi_open)) else None)


def _censored(obs, op: str, low: float, high: float | None) -> bool | None:
    return interval_test(obs.comparator, obs.value, op, low, high)


def lab_compare(node: ir.LabCompare, patient, ctx: Context, days: tuple[int, int] | None = None):
    """Evaluate a lab comparison. info = ("lab", node, [(obs, result, thresholds, problem)], missing).

    ``days``: the first and last day of another window than the node's (a window anchored at a record)."""
    labs = patient.labs
    if labs is None:
        return None, ("lab", node, (), f"{node.label}: no observations provided")
    series = labs.get(node.key)
    start, end = days if days is not None else (ctx.window_start(node.window), ctx.as_of)
    if node.key in derived.DERIVATIONS:  # a measured result in the window wins, else a derived one
        series, _ = derived.series_for(patient, node.key, series, start, end)
    if not series:
        return None, ("lab", node, (), _missing_lab(node))
    sex = patient.sex
    ranges = ctx.ranges
    if node.selector == "latest":
        for index, obs in enumerate(series):
            if obs.lo is not None and obs.lo > end:
                continue  # after the as-of date
            inside = _in_window(obs.lo, obs.hi, start, end)
            if inside is False:
                break  # the newest usable one is too old
            value, limits, problem = compare_obs(node, obs, sex, ranges)
            if inside is None:
                return None, ("lab", node, ((obs, value, limits, _and_date(value, problem)),), None)
            if series.overlaps and value is not None and _rival_disagrees(node, series, index, value, sex, ranges,
                                                                         start, end):
                return None, ("lab", node, ((obs, None, limits, "which result is the latest depends on a date "
                                                                "known only to the month or year"),), None)
            return value, ("lab", node, ((obs, value, limits, problem),), None)
        return None, ("lab", node, (), _missing_lab(node))
    # any / every / on at least N occasions
    seen = []
    true_count = unknown_count = false_count = 0
    for obs in series:
        if obs.lo is not None and obs.lo > end:
            continue
        inside = _in_window(obs.lo, obs.hi, start, end)
        if inside is False:
            continue
        value, limits, problem = compare_obs(node, obs, sex, ranges)
        if inside is None:
            # a result that may lie outside the window can only matter if it would change the answer
            if value is False and node.selector != "every":
                continue
            if value is True and node.selector == "every":
                continue
            value, problem = None, _and_date(value, problem)
        seen.append((obs, value, limits, problem))
        if value is True:
            true_count += 1
        elif value is None:
            unknown_count += 1
        else:
            false_count += 1
    if not seen:
        return None, ("lab", node, (), _missing_lab(node))
    if node.selector == "every":
        result = False if false_count else (None if unknown_count else True)
        return result, ("lab", node, tuple(seen), None)
    need = node.occasions or 1
    if need > 1:
        seen = _occasions(seen)
        true_count = sum(1 for s in seen if s[1] is True)
        unknown_count = sum(1 for s in seen if s[1] is None)
    if true_count >= need:
        return True, ("lab", node, tuple(seen), None)
    if true_count + unknown_count >= need:
        return None, ("lab", node, tuple(seen), None)
    if need == 1 or _ruled_out(seen):
        return False, ("lab", node, tuple(seen), None)
    # too few on record, and the newest of them is not a normal repeat: a repeat could still decide
    repeat = f"a repeat {node.label} result" + (f" within {node.window}" if node.window is not None else "")
    return None, ("lab", node, tuple(seen), repeat)


UNCERTAIN_DATE = "date uncertain relative to the window"


def _and_date(value, problem: str | None) -> str:
    """Why a result whose date may lie outside the window is unknown: the date, and what else is wrong with
    it when its value cannot be used either (an unknown unit on an undated result names both)."""
    return f"{problem}; {UNCERTAIN_DATE}" if value is None and problem else UNCERTAIN_DATE


def _same_occasion(a, b) -> bool:
    """One specimen reported twice: the same (possibly partial) date, the same answer, and values that
    agree at the precision they were written with (1.5 mg/dL and 133 umol/L of creatinine)."""
    oa, ob = a[0], b[0]
    if oa.lo is None or oa.lo != ob.lo or oa.hi != ob.hi or a[1] is not b[1]:
        return False
    if oa.value is None or ob.value is None:
        return False
    return abs(oa.value - ob.value) <= max(oa.resolution, ob.resolution) * (1 + 1e-9)


def _occasions(seen: list) -> list:
    """The results collapsed into occasions (results of one specimen reported twice are one)."""
    kept = []
    for item in seen:
        if not any(_same_occasion(item, other) for other in kept):
            kept.append(item)
        elif item[0].lo != item[0].hi and item[1] is not False:
            # a date known only to the month or year: maybe the same specimen, maybe another one
            kept.append((item[0], None, item[2], "may be another specimen than a result of the same month or year"))
    return kept


def _ruled_out(seen: list) -> bool:
    """`on at least N occasions` with fewer than N true-or-unknown occasions on record is false only
    when a normal result certainly follows every result that meets (or may meet) the test: the
    finding was repeated and not confirmed. Otherwise a repeat not (yet) on record could decide it."""
    pending = [obs for obs, value, _, _ in seen if value is not False]
    if not pending:
        return True
    if any(obs.hi is None for obs in pending):
        return False
    latest_pending = max(obs.hi for obs in pending)
    return any(value is False and obs.lo is not None and obs.lo > latest_pending for obs, value, _, _ in seen)


def _rival_disagrees(node, series, index, value, sex, ranges, start, end) -> bool:
    """Could an older-looking result with an overlapping (partial) date be the latest, and differ?"""
    chosen = series[index]
    for rival in series[index + 1:]:
        if rival.hi is None or rival.hi < chosen.lo:
            return False  # sorted newest first: nothing further can overlap
        if _in_window(rival.lo, rival.hi, start, end) is False:
            continue
        if compare_obs(node, rival, sex, ranges)[0] is not value:
            return True
    return False


# ---------------------------------------------------------------- mean / min / max of repeated results
_AGGREGATE = {"mean": lambda xs: sum(xs) / len(xs), "min": min, "max": max}


def _result_interval(obs, lab: ir.LabCompare):
    """One result as the interval of values it may have (lo, hi), or a problem."""
    if obs.value is None:
        return None, obs.problem or "a text result where a number is needed"
    if lab.dimension is not None and obs.dimension != lab.dimension:
        return None, f"{obs.unit} cannot be compared with the threshold's unit"
    high = obs.value_high if obs.value_high is not None else obs.value
    if obs.comparator in ("<", "<="):
        return (float("-inf"), obs.value), None
    if obs.comparator in (">", ">="):
        return (obs.value, float("inf")), None
    return (obs.value, high), None


def _interval_holds(lab: ir.LabCompare, low: float, high: float) -> bool | None:
    """Does every value in [low, high] meet the comparison (True), none (False), or some (None)?"""
    if lab.op == "between":
        a, b = lab.bound.value, lab.upper.value
        if a <= low and high <= b:
            return True
        return False if (high < a or low > b) else None
    limit = lab.bound.value
    if lab.op in ("=", "!="):
        if low == high:
            return (low == limit) == (lab.op == "=")
        return (lab.op == "!=") if (limit < low or limit > high) else None
    compare = _COMPARE[lab.op]
    at_low, at_high = compare(low, limit), compare(high, limit)
    return at_low if at_low == at_high else None


def lab_aggregate(node: ir.LabAggregate, patient, ctx: Context):
    """`mean QTcF of the latest 3 > 470 ms`. info = ("aggregate", node, used, (low, high) or None, missing).

    The latest N results on or before the as-of date (inside the window, if any), or every result in
    the window; fewer than N, a result without a usable value, or a choice of "the latest N" that
    depends on a partial date is unknown. Each result is an interval (a bound such as "> 500" is
    half-open, a derived value may be an interval): the test decides only when it holds, or fails,
    for every value in the intervals."""
    lab = node.lab
    labs = patient.labs
    if labs is None:
        return None, ("aggregate", node, (), None, f"{lab.label}: no observations provided")
    series = labs.get(lab.key)
    start, end = ctx.window_start(lab.window), ctx.as_of
    if lab.key in derived.DERIVATIONS:
        series, _ = derived.series_for(patient, lab.key, series, start, end)
    used = []
    for obs in series or ():
        if obs.lo is not None and obs.lo > end:
            continue
        inside = _in_window(obs.lo, obs.hi, start, end)
        if inside is False:
            break
        if node.count is not None and len(used) == node.count:
            if obs.hi is not None and used[-1][0].lo is not None and obs.hi >= used[-1][0].lo:
                return None, ("aggregate", node, tuple(used), None,
                              f"which are the latest {node.count} {lab.label} results depends on dates or times "
                              f"not recorded ({show(obs.lo, obs.hi)})")
            break
        if inside is None:
            return None, ("aggregate", node, tuple(used), None,
                          f"{lab.label} result of {show(obs.lo, obs.hi) if obs.lo is not None else 'no date'}: "
                          "date uncertain relative to the window")
        interval, problem = _result_interval(obs, lab)
        used.append((obs, interval, problem))
    within = f" within {lab.window}" if lab.window is not None else ""
    if not used:
        return None, ("aggregate", node, (), None, _missing_lab(lab))
    if node.count is not None and len(used) < node.count:
        return None, ("aggregate", node, tuple(used), None,
                      f"{node.count} {lab.label} results{within} ({len(used)} on record)")
    bad = next((u for u in used if u[1] is None), None)
    if bad is not None:
        when = show(bad[0].lo, bad[0].hi) if bad[0].lo is not None else "undated"
        return None, ("aggregate", node, tuple(used), None, f"{lab.label} result of {when}: {bad[2]}")
    fn = _AGGREGATE[node.function]
    low, high = fn([u[1][0] for u in used]), fn([u[1][1] for u in used])
    value = _interval_holds(lab, low, high)
    if value is not None:
        return value, ("aggregate", node, tuple(used), (low, high), None)
    return None, ("aggregate", node, tuple(used), (low, high),
                  f"the {node.function} of the {lab.label} results lies between {low:.6g} and {high:.6g}, "
                  "on both sides of the limit")


def _missing_lab(node: ir.LabCompare | ir.LabText) -> str:
    extra = derived.missing_inputs(node.key) if isinstance(node, ir.LabCompare) and node.key in derived.DERIVATIONS else ""
    if node.window is not None:
        return f"{node.label} result within {node.window}{extra}"
    return f"{node.label} result{extra}"


def lab_text(node: ir.LabText, patient, ctx: Context):
    """Evaluate `ANALYTE is VALUE` or a grade comparison. info = ("text", node, obs or None, missing, problem)."""
    labs = patient.labs
    if labs is None:
        return None, ("text", node, None, f"{node.label}: no observations provided", None)
    series = labs.get(node.key) or ()
    start = ctx.window_start(node.window)
    end = ctx.as_of
    results = []
    for obs in series:
        if obs.lo is not None and obs.lo > end:
            continue
        inside = _in_window(obs.lo, obs.hi, start, end)
        if inside is False:
            if node.selector == "latest":
                break
            continue
        problem = None
        if obs.text is not None:
            value, problem = text_result(node, obs.text)
        elif obs.value is not None and node.op == "is" and node.value in ("positive", "negative"):
            # a numeric result is positive when above the upper limit of its reference range
            uln, problem = threshold(_ULN, obs, node.key, patient.sex, ctx.ranges)
            above = None if uln is None else (obs.value > uln if obs.comparator is None
                                              else interval_test(obs.comparator, obs.value, ">", uln))
            if above is None and uln is not None:
                problem = _censored_problem(obs)
            value = None if above is None else (above == (node.value == "positive")) != node.negated
        else:
            value, problem = None, obs.problem or ("a numeric result where a grade is needed" if node.op != "is"
                                                   else "a numeric result where a text result is needed")
        if inside is None:
            when = show(obs.lo, obs.hi) if obs.lo is not None else "undated"
            if value is True:  # it meets the test, but may lie outside the window: say so, not nothing
                problem = f"{node.label} result of {when}: date uncertain relative to the window"
            elif value is None and problem is not None:  # unreadable and maybe outside the window: both
                problem = f"{problem}; its date ({when}) is uncertain relative to the window"
            value = None if value is not False else False
            if value is None and problem is None:  # unknown only for its date: say so (never an unnamed unknown)
                problem = f"{node.label} result of {when}: date uncertain relative to the window"
        results.append((obs, value, problem))
        if node.selector == "latest":
            break
    if not results:
        return None, ("text", node, None, _missing_lab(node), None)
    values = [v for _, v, _ in results]
    if node.selector == "every":
        result = False if False in values else (None if None in values else True)
    else:
        result = True if True in values else (None if None in values else False)
    decisive, _, problem = next((r for r in results if r[1] is result), results[0])
    return result, ("text", node, decisive, None, problem if result is None else None)


NO_VALUE = "no value recorded"  # record.Obs.problem of an observation that holds no result


def lab_recorded(node: ir.LabRecorded, patient, ctx: Context):
    """``X on record [within W]``: a result of X dated in W (or at any date up to the as-of date), whatever its
    value (a number, a text, a code, one no test can read). info = ("recorded", node, obs or None, missing,
    ((obs, problem), ...)).

    True: such a result with a date surely in W. False: the observation list is present and holds none that
    may be one (a list that is present is the record; its silence is the answer here, unlike a lab
    comparison, which needs a result to compare). Unknown: no observation list; or only results whose date is
    not recorded or may lie outside W, or that hold no value (a test recorded without a result), each named."""
    labs = patient.labs
    if labs is None:
        return None, ("recorded", node, None, f"{node.label}: no observations provided", ())
    start, end = ctx.window_start(node.window), ctx.as_of
    doubts = []
    for obs in labs.get(node.key) or ():
        if obs.lo is not None and obs.lo > end:
            continue  # after the as-of date
        inside = _in_window(obs.lo, obs.hi, start, end)
        if inside is False:
            continue
        problems = []
        if obs.problem == NO_VALUE:
            problems.append(NO_VALUE)
        if inside is None:
            problems.append("date not recorded" if obs.lo is None else "date uncertain relative to the window")
        if not problems:
            return True, ("recorded", node, obs, None, ())
        doubts.append((obs, "; ".join(problems)))
    if doubts:
        return None, ("recorded", node, None, None, tuple(doubts))
    return False, ("recorded", node, None, None, ())


def text_result(node: ir.LabText, text: str):
    """One normalised text result against `is VALUE` or a grade comparison: (truth, problem).

    Classes (positive, negative, indeterminate) and grades (negative < trace < 1+ .. 4+) come from
    :mod:`screening.vocabulary`; a text it does not know is unknown for them, never "not positive".
    """
    wanted = node.value
    if node.op != "is":
        rank = vocabulary.RANK.get(text)
        if rank is None:
            return None, _not_graded(node, text)
        limit = vocabulary.RANK[wanted][0]
        compare = _COMPARE[node.op]
        low, high = compare(rank[0], limit), compare(rank[1], limit)
        if low == high and (node.op not in ("=", "!=") or rank[0] == rank[1]):
            return low, None
        return None, f"{node.label} result {text!r} has no grade (1+ to 4+)"
    if wanted in vocabulary.CLASS and wanted in (vocabulary.POSITIVE, vocabulary.NEGATIVE, vocabulary.INDETERMINATE):
        found = vocabulary.CLASS.get(text)
        if found is None:
            return None, _not_graded(node, text) if text != vocabulary.TRACE else (
                f"{node.label} result 'trace' is neither positive nor negative (compare it on the scale: >= trace, >= 1+)")
        if found == vocabulary.INDETERMINATE and wanted != vocabulary.INDETERMINATE:
            return None, f"{node.label} result is indeterminate"
        return (found == wanted) != node.negated, None
    if wanted in vocabulary.RANK:  # `is trace`, `is 2+`
        rank = vocabulary.RANK.get(text)
        if rank is None:
            if text == vocabulary.INDETERMINATE:
                return None, f"{node.label} result is indeterminate"
            return None, _not_graded(node, text)
        if rank[0] == rank[1]:
            return (rank[0] == vocabulary.RANK[wanted][0]) != node.negated, None
        if not rank[0] <= vocabulary.RANK[wanted][0] <= rank[1]:
            return node.negated, None
        return None, f"{node.label} result {text!r} has no grade (1+ to 4+)"
    # a text outside the vocabulary: an exact (case- and space-insensitive) match
    return (text == wanted) != node.negated, None


def _not_graded(node: ir.LabText, text: str) -> str:
    return f"{node.label} result {text!r} is not a recognised result"


_ULN = ir.Bound("ULN", 1.0, "ULN")


# ---------------------------------------------------------------- demographics
def age_test(node: ir.AgeTest, patient, ctx: Context):
    """info = ("age", node, (youngest, oldest) or None)."""
    birth = patient.birth
    if birth is None:
        return None, ("age", node, None)
    measure = whole_years if node.unit == "years" else whole_months
    if birth[0] > ctx.as_of:  # born after the as-of date: no age to test, and the record says why
        return None, ("age", node, f"birth_date {show(*birth)} is after the as-of date {ctx.as_of_text}")
    oldest = measure(birth[0], ctx.as_of)
    youngest = measure(min(birth[1], ctx.as_of), ctx.as_of)
    return _age_holds(node, youngest, oldest), ("age", node, (youngest, oldest))


def _age_holds(node: ir.AgeTest, youngest: int, oldest: int) -> bool | None:
    """Does every age in [youngest, oldest] pass (True), none (False), or some (None)?"""
    if node.op == "between":
        low, high = node.value, node.upper
    else:
        v = node.value
        low, high = {"<": (float("-inf"), v - 1e-9), "<=": (float("-inf"), v), ">": (v + 1e-9, float("inf")),
                     ">=": (v, float("inf")), "=": (v, v)}.get(node.op, (None, None))
        if node.op == "!=":
            inside = _age_holds(ir.AgeTest("=", v, None, node.unit, span=node.span), youngest, oldest)
            return None if inside is None else not inside
    if low <= youngest and oldest <= high:
        return True
    if oldest < low or youngest > high:
        return False
    return None


def sex_test(node: ir.SexTest, patient, ctx: Context):
    sex = patient.sex
    if sex is None or sex == "unknown":
        return None, ("sex", node, sex)
    return (sex == node.sex) != node.negated, ("sex", node, sex)


# ---------------------------------------------------------------- conditions, medications, procedures
_ACTIVE = {"active", "recurrence", "relapse", "in-progress", "on-hold"}
# "intended" (a plan, not yet taken) is neither: an intended medication is unknown for "active", never current
_POINT_EVENTS = ("procedures", "immunizations")  # done on a date, not ongoing
_ENDED = {"inactive", "remission", "resolved", "completed", "stopped", "cancelled", "not-taken",
          "entered-in-error", "not-done"}
# a record that says the thing did not happen (FHIR MedicationStatement not-taken, Procedure and
# Immunization not-done) or was never true: no exposure, no event, in no window
_NEVER_HAPPENED = {"not-taken", "not-done", "entered-in-error"}


def _active(entry, kind: str, as_of: int) -> bool | None:
    """Is the entry current on the as-of date? None when the record does not say."""
    if entry.end_lo is not None:
        if entry.end_hi < as_of:
            return False
        if entry.end_lo >= as_of:
            return entry.status not in _ENDED if entry.status else True
        return None
    status = entry.status
    if status in _ACTIVE:
        return True
    if status in _ENDED:
        return False
    if kind in _POINT_EVENTS:
        return False
    return None


def _overlaps(entry, kind: str, active: bool | None, start: int, end: int) -> bool | None:
    """Does the entry's time span overlap the window [start, end]?"""
    s_lo = entry.start_lo if entry.start_lo is not None else NEVER
    s_hi = entry.start_hi if entry.start_hi is not None else end
    if entry.end_lo is not None:
        e_lo, e_hi = entry.end_lo, entry.end_hi
    elif kind in _POINT_EVENTS:
        e_lo, e_hi = s_lo, s_hi
    elif active is True:
        e_lo = e_hi = FOREVER
    else:
        e_lo, e_hi = s_lo, FOREVER if active is None else end
    if s_hi <= end and e_lo >= start:
        return True
    if s_lo > end or e_hi < start:
        return False
    return None


def record_test(node: ir.RecordTest, patient, ctx: Context):
    """info = ("record", node, decisive entry or None, missing, possible entries)."""
    entries = getattr(patient, node.kind)
    if entries is None:
        return None, ("record", node, None, f"{node.kind} (not provided)", ())
    as_of = ctx.as_of
    start = ctx.window_start(node.window)
    matcher = node.matcher
    possible = []
    for entry in entries:
        # an unreadable record (no code the engine can read) may be in any value set: never a match, never
        # ruled out; so may a record whose code needs a hierarchy the terminology store lacks
        member, why = matcher.classify(entry.codes) if entry.codes else (False, None)
        if member is False and entry.unreadable is None:
            continue
        if entry.status in _NEVER_HAPPENED:
            continue
        unsure = member is not True
        if entry.start_lo is not None and entry.start_lo > as_of:
            continue  # begins after the as-of date
        event = node.window is not None and node.status is None and node.kind == "conditions"
        active = _active(entry, node.kind, as_of) if (node.status or node.window) and not event else None
        result = True
        reasons = []
        if node.status == "active" and node.window is None:
            result = active  # `active X` alone: active on the as-of date
        elif node.status in ("inactive", "resolved"):
            result = None if active is None else not active
        if result is False:
            continue
        if result is None:
            reasons.append("status and end date not recorded")
        if entry.start_hi is not None and entry.start_hi > as_of:
            result = None  # "2026" may be after the as-of date: the record may not exist yet
            reasons.append("its date may fall after the as-of date")
        if event:
            # `condition X within N`: the event (its onset; with no onset, its recorded date) in the window
            lo, hi = (entry.start_lo, entry.start_hi) if entry.start_lo is not None else entry.recorded
            if lo is None:
                result = None
                reasons.append(f"onset date not recorded (needed to place it within {node.window})")
            else:
                inside = _in_window(lo, hi, start, as_of)
                if inside is False:
                    continue
                if inside is None:
                    result = None
                    reasons.append(f"dates not precise enough to place it within {node.window}")
        elif node.window is not None:
            # present at some time during the window (medications, procedures, `active condition X within N`)
            inside = _overlaps(entry, node.kind, active, start, as_of)
            if inside is False:
                continue
            if inside is None:
                result = None
                reasons.append(f"dates not precise enough to place it within {node.window}")
        for qualifier in node.qualifiers:
            if isinstance(qualifier, ir.DoseQualifier):
                actual = entry.dose
            elif isinstance(qualifier, ir.OtherThan):
                actual = entry.codes
            else:
                actual = entry.field(qualifier.field_name)
            outcome = qualifier.test(actual)
            if outcome is False:
                result = False
                break
            if outcome is None:
                result = None
                reasons.append(qualifier.unknown_reason(actual))
        if result is not False and node.timing:
            result = _timing_result(node, entry, ctx, result, reasons)
        if result is not False and entry.verification is not None:
            result = None  # provisional, differential, unconfirmed: never a confirmed record
            reasons.append(f"verification status {entry.verification}, not confirmed")
        if result is not False and unsure:
            result = None
            if member is None:
                glue = " " if why.startswith("without ") else ": "
                reasons.append(f"{TERMINOLOGY_REASON} {matcher.name}{glue}{why}")
            else:
                reasons.append(f"{entry.unreadable}: {TERMINOLOGY_REASON} {matcher.name}")
        if result is True:
            return True, ("record", node, entry, None, ())
        if result is None:
            possible.append((entry, tuple(dict.fromkeys(reasons))))
    if possible:
        return None, ("record", node, None, None, tuple(possible))
    return False, ("record", node, None, None, ())


# ---------------------------------------------------------------- a per-visit test on several occasions
class _Day:
    """An occasion: one (possibly partial) date, for _ruled_out."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi


def _on_day(node: ir.Node, day: tuple, by_key: dict, sex, ranges):
    """The per-visit expression with the results of one day: (value, [(obs, value)], [missing])."""
    if isinstance(node, ir.LabCompare):
        results = [o for o in by_key.get(node.key, ()) if (o.lo, o.hi) == day]
        if not results:
            return None, [], [f"{node.label} on {show(*day)}"]
        values, used, missing = set(), [], []
        for obs in results:
            value, _, problem = compare_obs(node, obs, sex, ranges)
            values.add(value)
            used.append((node, obs, value))
            if value is None and problem:
                missing.append(f"{node.label} result of {show(*day)}: {problem}")
        if len(values) > 1:  # two readings of one visit that disagree: not decided
            return None, used, missing or [f"{node.label} results of {show(*day)} disagree"]
        return values.pop(), used, missing
    if isinstance(node, ir.Not):
        value, used, missing = _on_day(node.operand, day, by_key, sex, ranges)
        return (None if value is None else not value), used, missing
    stop = isinstance(node, ir.Or)  # or: stops at True; and: at False
    result, used, missing = (not stop), [], []
    for operand in node.operands:
        value, u, m = _on_day(operand, day, by_key, sex, ranges)
        used += u
        if value is stop:
            return stop, used, []
        if value is None:
            result = None
            missing += m
    return result, used, missing if result is None else []


def visit_occasions(node: ir.VisitOccasions, patient, ctx: Context):
    """`(SBP > 140 or DBP > 90) on at least 3 occasions within 6 months`.
    info = ("visits", node, [(day, value, used, missing)], missing).

    An occasion is a date with a result of one of the analytes in the window; the expression is
    decided with that date's results only. Partial dates are occasions whose answer is unknown
    when it could be true. True with N true occasions; false only when the record rules it out
    (as for `on at least N occasions`, docs/semantics.md); otherwise unknown."""
    labs = patient.labs
    if labs is None:
        return None, ("visits", node, (), "observations (not provided)")
    start, end = ctx.window_start(node.window), ctx.as_of
    by_key, days = {}, set()
    for key in node.keys:
        kept = []
        for obs in labs.get(key) or ():
            if obs.lo is None or obs.lo > end:
                continue
            inside = _in_window(obs.lo, obs.hi, start, end)
            if inside is False:
                continue
            kept.append(obs)
            days.add((obs.lo, obs.hi, inside))
        by_key[key] = kept
    seen = []
    for lo, hi, inside in sorted(days, reverse=True):
        value, used, missing = _on_day(node.expr, (lo, hi), by_key, patient.sex, ctx.ranges)
        if lo != hi and value is not False:
            value, missing = None, missing + [f"the results of {show(lo, hi)}: a date known only to the month or year"]
        if inside is None:
            if value is False:
                continue
            value, missing = None, missing + [f"the results of {show(lo, hi)}: date uncertain relative to the window"]
        seen.append(((lo, hi), value, tuple(used), tuple(missing)))
    seen = [s for i, s in enumerate(seen) if s[0] not in {t[0] for t in seen[:i]}]
    true_count = sum(1 for s in seen if s[1] is True)
    unknown_count = sum(1 for s in seen if s[1] is None)
    need = node.count
    if true_count >= need:
        return True, ("visits", node, tuple(seen), None)
    if true_count + unknown_count >= need:
        return None, ("visits", node, tuple(seen), None)
    if not seen:
        within = f" within {node.window}" if node.window is not None else ""
        return None, ("visits", node, (), f"results of {', '.join(node.keys)}{within}")
    if _ruled_out([(_Day(*s[0]), s[1], None, None) for s in seen]):
        return False, ("visits", node, tuple(seen), None)
    within = f" within {node.window}" if node.window is not None else ""
    return None, ("visits", node, tuple(seen), f"a repeat visit with {', '.join(node.keys)} results{within}")


# ---------------------------------------------------------------- timing of a record
def _timing_result(node: ir.RecordTest, entry, ctx: Context, result, reasons: list) -> bool | None:
    """A record that met the rest of the test, against its timing clauses (all must hold)."""
    for timing in node.timing:
        outcome, why = record_timing(timing, entry, node.kind, ctx)
        if outcome is False:
            return False
        if outcome is None:
            result = None
            reasons.append(why)
    return result


def _before(op: str, lo: int, hi: int, c_lo: int, c_hi: int) -> bool | None:
    """A day in [lo, hi] against a cutoff day in [c_lo, c_hi]: at_least (day <= cutoff), more_than (<),
    at_most (>=), less_than (>); None when the unknown parts decide."""
    if op == "at_least":
        return True if hi <= c_lo else (False if lo > c_hi else None)
    if op == "more_than":
        return True if hi < c_lo else (False if lo >= c_hi else None)
    if op == "at_most":
        return True if lo >= c_hi else (False if hi < c_lo else None)
    return True if lo > c_hi else (False if hi <= c_lo else None)  # less_than


def _start_range(entry, kind: str) -> tuple[int | None, int | None]:
    """When the record began: its onset, start or date. A condition or allergy with none is known to have
    begun by its recorded date (a medication's recorded date may be a prescription before the start)."""
    if entry.start_lo is not None:
        return entry.start_lo, entry.start_hi
    if kind in ("conditions", "allergies") and entry.recorded[1] is not None:
        return NEVER, entry.recorded[1]
    return None, None


_START_NAMES = {"conditions": "onset date", "allergies": "onset date", "medications": "start date",
                "procedures": "date", "immunizations": "date"}


def record_timing(timing: ir.RecordTiming, entry, kind: str, ctx: Context) -> tuple[bool | None, str | None]:
    """One record against one timing clause: (value, why it is unknown)."""
    as_of = ctx.as_of
    cutoff = ctx.window_start(timing.duration)  # the as-of date moved back by the duration
    start_lo, start_hi = _start_range(entry, kind)
    if timing.event == "start":
        if start_lo is None:
            return None, f"{_START_NAMES[kind]} not recorded (needed for '{timing}')"
        value = _before(timing.op, start_lo, start_hi, cutoff, cutoff)
        return value, None if value is not None else (
            f"{_START_NAMES[kind]} {_shown(start_lo, start_hi)} does not decide '{timing}'")
    if timing.event == "end":
        if entry.end_lo is None:
            active = _active(entry, kind, as_of)
            if active is True:
                return False, None  # still going on: not stopped
            if active is False:
                return None, f"end date not recorded (status {entry.status}; needed for '{timing}')"
            return None, f"status and end date not recorded (needed for '{timing}')"
        if entry.end_lo > as_of:
            return False, None  # ends after the as-of date: still going on
        value = _before(timing.op, entry.end_lo, min(entry.end_hi, as_of), cutoff, cutoff)
        if value is True and entry.end_hi > as_of:
            value = None  # "2026-11" may still be going on at the as-of date
        return value, None if value is not None else (
            f"end date {show(entry.end_lo, entry.end_hi)} does not decide '{timing}'")
    active = _active(entry, kind, as_of)
    if timing.event == "unchanged":
        # what a record can show: the same record, begun that long ago and still active (not the dose)
        if start_lo is None:
            return None, f"{_START_NAMES[kind]} not recorded (needed for '{timing}')"
        if active is False:
            return False, None
        value = _before(timing.op, start_lo, start_hi, cutoff, cutoff)
        if value is False:
            return False, None
        if active is None:
            return None, f"status and end date not recorded (needed for '{timing}': still taken?)"
        return value, None if value is not None else (
            f"{_START_NAMES[kind]} {_shown(start_lo, start_hi)} does not decide '{timing}'")
    # duration: from the start to the end, or to the as-of date while it goes on
    if start_lo is None or entry.start_lo is None:
        return None, f"{_START_NAMES[kind]} not recorded (needed for '{timing}')"
    if entry.end_lo is not None:
        end_lo, end_hi = min(entry.end_lo, as_of), min(entry.end_hi, as_of)
    elif active is True:
        end_lo = end_hi = as_of
    else:  # ended at some unrecorded time, or the record does not say: any time from its start to now
        end_lo, end_hi = start_lo, as_of
    amount, unit = timing.duration.amount, timing.duration.unit
    value = _before(timing.op, start_lo, start_hi, moved(end_lo, amount, unit, False), moved(end_hi, amount, unit, False))
    if value is not None:
        return value, None
    if entry.end_lo is None and active is not True:
        return None, (f"{'end date not recorded' if active is False else 'status and end date not recorded'} "
                      f"(needed for '{timing}')")
    return None, f"dates {_span_text(entry)} do not decide '{timing}'"


def _shown(lo: int, hi: int) -> str:
    return f"on or before {show(hi)}" if lo == NEVER else show(lo, hi)


def _span_text(entry) -> str:
    start = show(entry.start_lo, entry.start_hi) if entry.start_lo is not None else "?"
    end = show(entry.end_lo, entry.end_hi) if entry.end_lo is not None else "now"
    return f"{start} to {end}"


# ---------------------------------------------------------------- one record alone (counts, anchors, totals)
class _OneRecord:
    """A patient seen through one record of one list (to test that record alone with :func:`record_test`)."""

    def __init__(self, kind: str, entry):
        setattr(self, kind, (entry,))

    def __getattr__(self, name):  # the other lists: not consulted by record_test
        return None


def record_count(node: ir.RecordCount, patient, ctx: Context):
    """`at most 2 courses of medication chemo`. info = ("count", node, sure, possible, low, high, missing).

    Each record is tested alone with record_test (the same meaning as `medication chemo ...`): true,
    false or unknown. Records: the count is between the true ones and the true plus unknown ones.
    Courses: distinct full start dates of true records; a true record with a partial or missing start
    date adds a course for sure only when its dates overlap no other course, otherwise it may be one;
    an unknown record may add a course unless it starts on a day already counted."""
    test = node.test
    entries = getattr(patient, test.kind)
    if entries is None:
        return None, ("count", node, (), (), 0, 0, f"{test.kind} (not provided)")
    sure, possible = [], []
    for entry in entries:
        value, info = record_test(test, _OneRecord(test.kind, entry), ctx)
        if value is True:
            sure.append(entry)
        elif value is None:
            possible.append((entry, info[4][0][1] if info[4] else (info[3] or "unknown",)))
    if not node.courses:
        low, high = len(sure), len(sure) + len(possible)
    else:
        days = {e.start_lo for e in sure if e.start_lo is not None and e.start_lo == e.start_hi}
        low, high = len(days), len(days)
        vague = [e for e in sure if e.start_lo is None or e.start_lo != e.start_hi]
        for e in vague:
            alone = e.start_lo is not None and not any(e.start_lo <= d <= e.start_hi for d in days) and not any(
                o is not e and (o.start_lo is None or (o.start_lo <= e.start_hi and e.start_lo <= o.start_hi))
                for o in vague)
            if alone:
                low += 1
            high += 1
        for e, _ in possible:
            if e.start_lo is None or e.start_lo != e.start_hi or e.start_lo not in days:
                high += 1
    n = node.count
    if node.mode == "at_least":
        value = True if low >= n else (False if high < n else None)
    else:
        value = False if low > n else (True if high <= n else None)
    return value, ("count", node, tuple(sure), tuple(possible), low, high, None)


def _each_record(node: ir.RecordTest, entries, ctx: Context) -> list:
    """The records that meet (True) or may meet (None) a record test, each with why it is unsure."""
    found = []
    for entry in entries:
        value, info = record_test(node, _OneRecord(node.kind, entry), ctx)
        if value is True:
            found.append((entry, True, ()))
        elif value is None:
            found.append((entry, None, info[4][0][1] if info[4] else ()))
    return found


# ---------------------------------------------------------------- windows anchored at another record
def _event_span(entry, kind: str, ctx: Context):
    """The days a tested record occupies, for an anchored window: (s_lo, s_hi, e_lo, e_hi) or None.

    A condition or allergy is its onset (an event), a procedure or immunization its date (to its end),
    a medication its exposure, from start to end (while it goes on, to the as-of date)."""
    start_lo, start_hi = _start_range(entry, kind)
    if start_lo is None:
        return None
    as_of = ctx.as_of
    if kind in ("conditions", "allergies"):
        return start_lo, start_hi, start_lo, start_hi
    if entry.end_lo is not None:
        return start_lo, start_hi, min(entry.end_lo, as_of), min(entry.end_hi, as_of)
    if kind in _POINT_EVENTS:
        return start_lo, start_hi, start_lo, start_hi
    if _active(entry, kind, as_of) is True:
        return start_lo, start_hi, as_of, as_of
    return start_lo, start_hi, start_lo, as_of  # ended at an unrecorded time


def _span_shown(span) -> str:
    s_lo, s_hi, e_lo, e_hi = span
    start = _shown(s_lo, s_hi)
    return start if (s_lo, s_hi) == (e_lo, e_hi) else f"{start} to {show(e_lo, e_hi)}"


def _anchored(node: ir.AnchoredRecordTest, span, anchor_lo: int, anchor_hi: int) -> bool | None:
    """Does a record occupying ``span`` fall in the window around an anchor dated [anchor_lo, anchor_hi]?"""
    s_lo, s_hi, e_lo, e_hi = span
    if node.relation == "after":  # some day of it strictly after the anchor's day (the same day: unknown)
        return True if e_lo > anchor_hi else (False if e_hi < anchor_lo else None)
    if node.relation == "before":
        return True if s_hi < anchor_lo else (False if s_lo > anchor_hi else None)
    # the window's first day is in [w1_lo, w1_hi], its last in [w2_lo, w2_hi] (the anchor's date may be partial)
    # (never empty: the checker refuses a one-sided window whose near end may come after its far end)
    w1_lo, w1_hi, w2_lo, w2_hi = ir.window_around(node, anchor_lo, anchor_hi)
    if s_hi <= w2_lo and e_lo >= w1_hi:
        return True
    if s_lo > w2_hi or e_hi < w1_lo:
        return False
    return None


class IndexEvent(str):
    """The index date as an anchor event: its words (``the first dose of study drug (index date, as of ...)``)."""

    __slots__ = ()


def anchor_label(node, thing) -> str:
    """How explanations name one anchor event: a record, a lab result with its date, or the index date."""
    if isinstance(thing, IndexEvent):
        return str(thing)
    anchor = node.anchor
    if isinstance(anchor, ir.LabCompare):
        when = show(thing.lo, thing.hi) if thing.lo is not None else "no date"
        return f"{anchor.label} result of {when}"
    return entry_name(anchor.noun, thing)


def _anchor_events(node, patient, ctx: Context):
    """The events an anchored window is placed around: ((thing, value, reasons, lo, hi), ...) and what is
    missing (a string) when there is nothing to look at. ``value``: True, or None when the event may
    not be one (its record may not match, its result may not meet the comparison); ``lo`` None: its
    date (start, end, result date) is not known well enough to place a window.

    A record anchor is dated by its onset / start / date, or with ``anchor_at`` "end" by its end: a
    procedure's end is its date; a record still going on at the as-of date has not ended (no event); an
    ended one without an end date has an unknown end. A lab anchor is each result meeting the comparison,
    on its date (results after the as-of date are ignored, as everywhere)."""
    anchor = node.anchor
    if isinstance(anchor, ir.IndexDate):  # the trial's own index event: the as-of date stands for it
        return ((IndexEvent(anchor.shown(ctx.as_of_text)), True, (), ctx.as_of, ctx.as_of),), None
    if isinstance(anchor, ir.LabCompare):
        labs = patient.labs
        if labs is None:
            return (), "observations (not provided, needed as the anchor)"
        series = labs.get(anchor.key)
        if anchor.key in derived.DERIVATIONS:
            series, _ = derived.series_for(patient, anchor.key, series, NEVER, ctx.as_of)
        if not series:
            return (), f"{anchor.label} result (needed as the anchor)"
        events = []
        for obs in series:
            if obs.lo is not None and obs.lo > ctx.as_of:
                continue
            value, _limits, problem = compare_obs(anchor, obs, patient.sex, ctx.ranges)
            if value is False:
                continue
            reasons = () if value else (problem or "may meet the comparison",)
            if obs.lo is not None and obs.hi > ctx.as_of:
                value, reasons = None, reasons + ("its date may fall after the as-of date",)
            events.append((obs, value, reasons, obs.lo, obs.hi))
        return tuple(events), None
    anchors = getattr(patient, anchor.kind)
    if anchors is None:
        return (), f"{anchor.kind} (not provided, needed as the anchor)"
    events = []
    for other, value, reasons in _each_record(anchor, anchors, ctx):
        if node.anchor_at == "end":
            lo, hi, why = _end_range(other, anchor.kind, ctx)
            if why == "going on":
                continue  # not ended by the as-of date: no end to anchor at
            if why:
                reasons = tuple(reasons) + (why,)
        else:
            lo, hi = _start_range(other, anchor.kind)
        events.append((other, value, tuple(reasons), lo, hi))
    return tuple(events), None


def _anchor_date_name(node) -> str:
    if isinstance(node.anchor, (ir.LabCompare, ir.IndexDate)):
        return "date"
    return "end date" if node.anchor_at == "end" else _START_NAMES[node.anchor.kind]


def _end_range(entry, kind: str, ctx: Context):
    """When a record ended: (lo, hi, None); (None, None, why) when not known; (None, None, "going on")."""
    if entry.end_lo is not None:
        if entry.end_lo > ctx.as_of:
            return None, None, "going on"
        return entry.end_lo, entry.end_hi, None
    if kind in _POINT_EVENTS:
        lo, hi = _start_range(entry, kind)
        return (lo, hi, None) if lo is not None else (None, None, "date of the anchor not recorded")
    active = _active(entry, kind, ctx.as_of)
    if active is True and entry.status != "intended":
        return None, None, "going on"
    if active is False:
        return None, None, f"end date of the anchor not recorded (status {entry.status})"
    return None, None, "status and end date of the anchor not recorded (it may still be going on)"


def anchored_record_test(node: ir.AnchoredRecordTest, patient, ctx: Context):
    """Some record meeting ``node.test`` dated in the window around some record meeting ``node.anchor``.

    info = ("anchored", node, (record, anchor) deciding or None, missing, ((record, anchor, reasons), ...)).
    """
    test, anchor = node.test, node.anchor
    entries = getattr(patient, test.kind)
    if entries is None:
        return None, ("anchored", node, None, f"{test.kind} (not provided)", ())
    candidates = _each_record(test, entries, ctx)
    if not candidates:
        return False, ("anchored", node, None, None, ())
    anchor_events, missing = _anchor_events(node, patient, ctx)
    if missing:
        return None, ("anchored", node, None, missing, ())
    possible = []
    for entry, value, reasons in candidates:
        span = _event_span(entry, test.kind, ctx)
        for other, other_value, other_reasons, other_lo, other_hi in anchor_events:
            why = list(reasons) + [f"anchor {anchor_label(node, other)}: {r}" for r in other_reasons]
            if span is None:
                inside = None
                why.append(f"{_START_NAMES[test.kind]} not recorded")
            elif other_lo is None:
                inside = None
                if node.anchor_at != "end":
                    why.append(f"{_anchor_date_name(node)} of the anchor {anchor_label(node, other)} not recorded")
            else:
                inside = _anchored(node, span, other_lo, other_hi)
                if inside is None:
                    why.append(f"dates not precise enough to tell ({_START_NAMES[test.kind]} "
                               f"{_span_shown(span)}, anchor {_shown(other_lo, other_hi)})")
            if inside is False:
                continue
            if inside is True and value is True and other_value is True:
                return True, ("anchored", node, (entry, other), None, ())
            possible.append((entry, other, tuple(dict.fromkeys(why))))
    if possible:
        return None, ("anchored", node, None, None, tuple(possible))
    return False, ("anchored", node, None, None, ())


def anchored_lab_test(node: ir.AnchoredLabTest, patient, ctx: Context):
    """A lab comparison on the results in the window around some record meeting ``node.anchor``.

    info = ("anchored_lab", node, (anchor, lab info) deciding or None, missing, ((anchor, lab info or None, reasons), ...)).
    """
    anchor_events, missing = _anchor_events(node, patient, ctx)
    if missing:
        return None, ("anchored_lab", node, None, missing, ())
    possible = []
    ruled_out = None  # the first anchor whose window rules it out (for the explanation)
    for other, other_value, other_reasons, lo, hi in anchor_events:
        why = [f"anchor: {r}" for r in other_reasons]
        if lo is None or lo != hi:
            # the window's days depend on a date not known to the day: which results are in it is unknown
            if lo is not None or node.anchor_at != "end":
                shown = "not recorded" if lo is None else f"{_shown(lo, hi)}, not a full date"
                why.append(f"{_anchor_date_name(node)} of the anchor {shown}")
            possible.append((other, None, tuple(why)))
            continue
        first, _, last, _ = ir.window_around(node, lo, lo)
        # a window that runs past the as-of date is cut at it, as every window is (results after it are ignored)
        value, info = lab_compare(node.test, patient, ctx, (first, min(last, ctx.as_of)))
        if value is True and other_value is True:
            return True, ("anchored_lab", node, (other, info), None, ())
        if value is False:
            ruled_out = ruled_out or (other, info)
            continue
        if info[3] and patient.labs is not None:  # no result in the window: say which days
            if first > ctx.as_of:  # `between 4 and 12 weeks after` an anchor of last week: not begun yet
                why.append(f"the window begins on {show(first)}, after the as-of date")
            else:
                why.append(f"no {node.test.label} result from {show(first)} to {show(min(last, ctx.as_of))}")
            info = None
        possible.append((other, info, tuple(why)))
    if possible:
        return None, ("anchored_lab", node, None, None, tuple(possible))
    return False, ("anchored_lab", node, ruled_out, None, ())


# ---------------------------------------------------------------- dose trends
def dose_trend(node: ir.DoseTrend, patient, ctx: Context):
    """``medication X dose stable|not increasing for at least N``: over the last N (ending on the
    as-of date) the drug is taken every day, by records with exact dates, and the daily dose never
    changes (stable) or never rises (not increasing). info = ("dose_trend", node, detail, missing).

    False needs proof: a day in the period that no record can cover (and no record whose dates or
    code are uncertain), or two records of known daily dose, one after the other, whose dose
    changed (rose). Unknown otherwise whenever a record cannot show its dates or its daily dose,
    or records that overlap in time have different doses (they might add up)."""
    entries = patient.medications
    if entries is None:
        return None, ("dose_trend", node, "medications (not provided)", ("medications (not provided)",))
    as_of, start = ctx.as_of, ctx.window_start(node.duration)
    matcher = node.matcher
    spans, doubts = [], []
    for entry in entries:
        unsure = not matcher.matches_any(entry.codes)
        if (unsure and entry.unreadable is None) or entry.status in _NEVER_HAPPENED:
            continue
        if entry.start_lo is not None and entry.start_lo > as_of:
            continue
        if entry.end_hi is not None and entry.end_hi < start:
            continue  # over before the period
        name = entry_name("medication", entry)
        if unsure:
            doubts.append(f"{name}: {entry.unreadable}: cannot tell whether it is in {matcher.name}")
            continue
        if entry.verification is not None:
            doubts.append(f"{name}: verification status {entry.verification}, not confirmed")
            continue
        if entry.status == "on-hold":  # paused: since when, and whether the dose was taken, is not recorded
            doubts.append(f"{name}: on hold")
            continue
        if entry.start_lo is None or entry.start_lo != entry.start_hi:
            doubts.append(f"{name}: start date {'not recorded' if entry.start_lo is None else 'not a full date'}")
            continue
        if entry.end_lo is not None:
            if entry.end_lo != entry.end_hi:
                doubts.append(f"{name}: end date not a full date")
                continue
            end = entry.end_lo
        else:
            active = None if entry.status == "intended" else _active(entry, "medications", as_of)
            if active is not True:
                doubts.append(f"{name}: " + ("stopped, end date not recorded" if active is False
                                             else "status and end date not recorded"))
                continue
            end = as_of
        spans.append((entry.start_lo, min(end, as_of), entry))
    spans.sort(key=lambda item: (item[0], item[1]))
    missing = list(doubts)
    daily = []
    for _s, _e, entry in spans:
        dose = entry.dose
        amount = dose.daily if dose is not None else None
        if amount is None:
            reason = "dose not recorded" if dose is None else (dose.daily_problem or "daily dose not recorded")
            missing.append(f"{entry_name('medication', entry)}: {reason}")
        daily.append(amount)
    rising = node.trend == "not increasing"
    for i, (s_i, e_i, entry_i) in enumerate(spans):
        for j in range(i + 1, len(spans)):
            s_j, e_j, entry_j = spans[j]
            d_i, d_j = daily[i], daily[j]
            if d_i is None or d_j is None or d_i == d_j:
                continue
            if s_j <= e_i:  # at the same time, with different doses: one regimen or two that add up?
                missing.append(f"{entry_name('medication', entry_i)} and {entry_name('medication', entry_j)} overlap "
                               f"in time with different doses ({d_i:g} and {d_j:g} mg/day)")
            elif d_j > d_i or not rising:
                word = "rose" if d_j > d_i else "fell"
                return False, ("dose_trend", node, f"{matcher.name} daily dose {word} from {d_i:g} to {d_j:g} mg/day "
                               f"on {show(s_j, s_j)}, within the last {node.duration}", ())
    covered, gap = start - 1, None
    for s_i, e_i, _entry in spans:
        if s_i > covered + 1:
            gap = (covered + 1, s_i - 1)
            break
        covered = max(covered, e_i)
    if gap is None and covered < as_of:
        gap = (covered + 1, as_of)
    if gap is not None:
        when = show(gap[0], gap[0]) if gap[0] == gap[1] else f"{show(gap[0], gap[0])} to {show(gap[1], gap[1])}"
        if not doubts:
            return False, ("dose_trend", node, f"no {matcher.name} record covers {when} (within the last "
                           f"{node.duration}; {len(spans)} record(s) in the period)", ())
        missing.append(f"no {matcher.name} record with full dates covers {when}")
    if missing:
        missing = list(dict.fromkeys(missing))
        return None, ("dose_trend", node, "; ".join(missing), tuple(missing))
    doses = sorted({d for d in daily}, reverse=True)
    shown = " then ".join(f"{d:g}" for d in doses)
    return True, ("dose_trend", node, f"{matcher.name} taken every day of the last {node.duration} at {shown} mg/day "
                  f"({len(spans)} record(s))", ())


# ---------------------------------------------------------------- daily dose totals
_INF = float("inf")


def _taken_days(entry, as_of: int):
    """The days a medication record is surely taken ((first, last) or None) and may be taken ((first, last)).

    From its start to its end (still active: open-ended); without an end date, an ended record is surely
    taken on its start day only; without a start, an active one surely on the as-of date only. A record on
    hold or only intended is never surely taken."""
    active = None if entry.status == "intended" else _active(entry, "medications", as_of)
    certain = entry.status not in ("on-hold", "intended")
    s_lo, s_hi = entry.start_lo, entry.start_hi
    if entry.end_lo is not None:
        e_lo, e_hi = entry.end_lo, entry.end_hi
    elif active is True:
        e_lo = e_hi = FOREVER
    else:
        e_lo, e_hi = (s_lo if s_lo is not None else NEVER), (as_of if active is False else FOREVER)
    if s_lo is None:
        sure = (as_of, as_of) if active is True and certain and e_lo >= as_of else None
        return sure, (NEVER, e_hi)
    sure = (s_hi, e_lo) if certain and s_hi <= e_lo else None
    return sure, (s_lo, e_hi)


def _daily_amount(node: ir.DoseTotal, entry):
    """The record's daily dose in mg/day (of the reference drug): (low, high, problem); problem set when the
    amount is unknown (then low 0, high infinity)."""
    dose = entry.dose
    amount = dose.daily if dose is not None else None
    if amount is None:
        return 0.0, _INF, ("dose not recorded" if dose is None else (dose.daily_problem or "daily dose not recorded"))
    if node.reference is None:
        return amount, amount, None
    matched, doubt = [], None
    for drug in node.equivalents:
        member, why = drug.matcher.classify(entry.codes) if entry.codes else (None, entry.unreadable)
        if member is True:
            matched.append(drug)
        elif member is None:
            doubt = why or "terminology"
    if len(matched) == 1:  # its own code is one drug's (a code of another drug would have matched that one)
        drug = matched[0]
        # snapped to 12 significant digits: 1.5 mg dexamethasone is 10 mg prednisone, not 10.000000000000002
        return snap_value(amount * drug.factor), snap_value(amount * drug.factor_high), None
    if len(matched) > 1:
        why = f"it is more than one drug of the equivalence table ({', '.join(d.drug for d in matched)})"
    elif doubt is not None:
        why = f"which drug of the equivalence table it is cannot be told ({doubt})"
    else:
        why = f"no {node.reference} equivalent is known for it (screening/data/dose_equivalents.toml)"
    return 0.0, _INF, why


def _in_dose(op: str, low: float, high: float, value: float, upper: float | None, every: bool) -> bool:
    """Does every (``every``) / some value in [low, high] meet the dose comparison?"""
    if op == "between":
        return value <= low and high <= upper if every else (high >= value and low <= upper)
    if op == "=":
        return low == high == value if every else low <= value <= high
    if op == "!=":
        return (value < low or value > high) if every else not (low == high == value)
    compare = _COMPARE[op]
    if op in (">", ">="):
        return compare(low, value) if every else compare(high, value)
    return compare(high, value) if every else compare(low, value)


def dose_total(node: ir.DoseTotal, patient, ctx: Context):
    """A daily dose summed over the records taken on the same day (ir.DoseTotal).
    info = ("dose_total", node, detail, missing)."""
    test, dose = node.test, node.dose
    entries = patient.medications
    if entries is None:
        return None, ("dose_total", node, "medications (not provided)", ("medications (not provided)",))
    as_of = ctx.as_of
    today_only = test.status == "active" and test.window is None
    first = as_of if today_only else ctx.window_start(test.window)
    records = []
    for entry, value, reasons in _each_record(test, entries, ctx):
        if today_only:  # record_test already placed it on the as-of date (true, or unknown and why)
            sure, possible = ((as_of, as_of) if value is True and entry.status not in ("on-hold", "intended")
                              else None), (as_of, as_of)
        else:
            sure, possible = _taken_days(entry, as_of)
        low, high, problem = _daily_amount(node, entry)
        why = list(reasons)
        if entry.status in ("on-hold", "intended"):
            why.append(f"{entry.status}: not known to be taken")
        if problem:
            why.append(problem)
        elif low != high:
            why.append(f"its {node.reference} equivalent lies between {low:g} and {high:g} mg/day (the table gives "
                       "a range for this drug)")
        records.append((entry, value is True, sure, possible, low, high, tuple(dict.fromkeys(why))))
    if not records:
        return False, ("dose_total", node, f"no {test.noun} in {test.matcher.name} recorded"
                       + (f" within {test.window}" if test.window else (" on the as-of date" if today_only else "")), ())
    start = max(first, min(r[3][0] for r in records))
    days = {start, as_of}
    for _entry, _member, sure, possible, *_ in records:
        for lo, hi in filter(None, (sure, possible)):
            days.update(d for d in (lo, hi + 1) if start <= d <= as_of)
    unknown_day, unsure, highest = None, {}, None
    for day in sorted(days):
        lower = upper = 0.0
        taking_sure = taking = False
        cheapest = _INF  # the smallest dose of a record that may be the only one taken that day
        used, doubts = [], []
        for entry, member, sure, possible, low, high, why in records:
            if not possible[0] <= day <= possible[1]:
                continue
            taking = True
            certain = member and sure is not None and sure[0] <= day <= sure[1]
            if certain:
                taking_sure = True
                lower += low
                used.append((entry, low, high))
            else:
                cheapest = min(cheapest, low)
                if not why:
                    why = ("may not be taken that day (dates)",)
            upper += high
            if not certain or high == _INF or low != high:
                doubts.append((entry, why))
        lower, upper = snap_value(lower), snap_value(upper)  # a sum of 0.1 + 0.2 mg/day is 0.3
        least = lower if taking_sure else snap_value(lower + cheapest)
        if taking and (highest is None or upper > highest[3]):
            highest = (day, used, lower, upper)
        if taking_sure and _in_dose(dose.op, lower, upper, dose.value, dose.upper, every=True):
            return True, ("dose_total", node, _total_text(node, day, used, lower, upper, doubts), ())
        if taking and _in_dose(dose.op, least, upper, dose.value, dose.upper, every=False):
            unknown_day = unknown_day or (day, used, lower, upper)
            for entry, why in doubts:
                unsure.setdefault(id(entry), (entry, why))
    if len(records) == 1 and unknown_day is not None:
        # one record alone: on each day it is taken the total is its dose, whichever day that was
        entry, member, sure, possible, low, high, why = records[0]
        if member and entry.status not in ("on-hold", "intended") and high != _INF:
            holds = _in_dose(dose.op, low, high, dose.value, dose.upper, every=True)
            if holds or not _in_dose(dose.op, low, high, dose.value, dose.upper, every=False):
                return holds, ("dose_total", node, _total_text(node, 0, [(entry, low, high)], low, high, ())
                               + ("" if holds else f"; does not meet {dose.text}"), ())
    if dose.op in (">", ">="):
        # a record surely taken at some time in the period whose own daily dose is over the limit: the total
        # on that day is at least its dose, whichever day it was (its dates may not place it)
        for entry, member, sure, possible, low, high, why in records:
            if member and entry.status not in ("on-hold", "intended") and _COMPARE[dose.op](low, dose.value):
                shown = f"dose {entry.dose.shown}" if entry.dose is not None else "no dose"
                unit = "mg/day" if node.reference is None else f"mg/day {node.reference} equivalent"
                return True, ("dose_total", node, f"{entry_name('medication', entry)} {shown} = {low:g} {unit} on "
                              "each day it was taken, so the daily total was at least that", ())
    if unknown_day is not None:
        missing = tuple(dict.fromkeys(f"{entry_name('medication', e)}: {', '.join(w) if w else 'unknown'}"
                                      for e, w in unsure.values()))
        day, used, lower, upper = unknown_day
        return None, ("dose_total", node, _total_text(node, day, used, lower, upper, list(unsure.values()))
                      + "; not decided", missing or ("the dates or doses of the records",))
    if highest is None:
        where = " on the as-of date" if today_only else (f" within {test.window}" if test.window else "")
        return False, ("dose_total", node, f"no {test.noun} in {test.matcher.name} taken{where} "
                       f"({len(records)} record(s))", ())
    day, used, lower, upper = highest
    where = "" if today_only else (f" (the highest within {test.window})" if test.window else " (the highest)")
    return False, ("dose_total", node, _total_text(node, day, used, lower, upper, ()) + where
                   + f"; does not meet {dose.text}", ())


def _total_text(node: ir.DoseTotal, day: int, used, lower: float, upper: float, doubts) -> str:
    unit = f"mg/day {node.reference} equivalent" if node.reference else "mg/day"
    total = f"{lower:g}" if lower == upper else (f"at least {lower:g}" if upper == _INF else f"{lower:g} to {upper:g}")
    if upper == _INF and lower == 0:
        total = "unknown"
    parts = []
    for e, a, b in used[:6]:
        shown = f"dose {e.dose.shown}" if e.dose is not None else "no dose"
        amount = "amount unknown" if b == _INF else f"{a:g}" + (f" to {b:g}" if b != a else "") + (
            " mg/day" if node.reference is None else f" mg/day {node.reference}")
        parts.append(f"{entry_name('medication', e)} {shown} = {amount}")
    if len(used) > 6:
        parts.append(f"{len(used) - 6} more")
    listed = f" ({' + '.join(parts)})" if parts else ""
    total = total if total == "unknown" else f"{total} {unit}"
    when = show(day) if day > 0 else "a day not recorded"  # a record with no start date may begin any day
    return f"daily total of {node.test.matcher.name} on {when}: {total}{listed}"


# ---------------------------------------------------------------- investigational agents
def investigational_test(node: ir.InvestigationalTest, patient, ctx: Context):
    """``investigational medication within N`` / ``current investigational medication``: any
    medication record (whatever its code, readable or not) marked ``investigational: true`` whose
    exposure overlaps the window (is active on the as-of date; with neither, ever). A record in the
    period without the mark (absent: many sources never say) leaves the answer unknown, never false;
    false when every record in the period is marked false, or there is none.
    info = ("investigational", node, detail, missing)."""
    entries = patient.medications
    if entries is None:
        return None, ("investigational", node, "medications (not provided)", ("medications (not provided)",))
    as_of, start = ctx.as_of, ctx.window_start(node.window)
    missing, checked = [], 0
    for entry in entries:
        if entry.status in _NEVER_HAPPENED or (entry.start_lo is not None and entry.start_lo > as_of):
            continue
        active = _active(entry, "medications", as_of) if (node.status or node.window) else None
        if entry.status == "intended":
            active = None
        reasons = []
        if node.status == "active" and node.window is None:
            if active is False:
                continue
            if active is None:
                reasons.append("status and end date not recorded")
        elif node.window is not None:
            inside = _overlaps(entry, "medications", active, start, as_of)
            if inside is False:
                continue
            if inside is None:
                reasons.append(f"dates not precise enough to place it within {node.window}")
        if entry.start_hi is not None and entry.start_hi > as_of:
            reasons.append("its date may fall after the as-of date")
        checked += 1
        flag = entry.attributes.get("investigational")
        if flag is False:
            continue
        name = entry_name("medication", entry)
        if flag is not True:
            missing.append(f"{name}: not marked investigational or not")
            continue
        if entry.verification is not None:
            reasons.append(f"verification status {entry.verification}, not confirmed")
        if not reasons:
            return True, ("investigational", node, f"{name} is marked investigational", ())
        missing.append(f"{name} is marked investigational: {', '.join(reasons)}")
    if missing:
        return None, ("investigational", node, "; ".join(missing[:3]), tuple(missing))
    window = f" within {node.window}" if node.window else (" on the as-of date" if node.status else "")
    counted = f"{checked} in the period, each marked not investigational" if checked else "none in the period"
    return False, ("investigational", node, f"no medication marked investigational{window} ({counted})", ())


# ---------------------------------------------------------------- facts and review
def fact_test(node: ir.FactTest, patient, ctx: Context):
    """info = ("fact", node, value, problem)."""
    facts = patient.facts
    if facts is None or facts.get(node.name) is None:
        return None, ("fact", node, None, None)
    value = facts[node.name]
    if node.mode == "true":
        if isinstance(value, bool):
            return value, ("fact", node, value, None)
        return None, ("fact", node, value, "is not true or false")
    if node.mode == "compare":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, ("fact", node, value, "is not a number")
        return _COMPARE[node.op](value, node.value), ("fact", node, value, None)
    expected = node.value
    if isinstance(expected, bool):
        if not isinstance(value, bool):
            return None, ("fact", node, value, "is not true or false")
        return (value == expected) != node.negated, ("fact", node, value, None)
    if not isinstance(value, str):
        return None, ("fact", node, value, "is not text")
    return (value.strip().lower() == expected) != node.negated, ("fact", node, value, None)


def review(node: ir.Review, patient, ctx: Context):
    return None, ("review", node)


ATOMS = {
    ir.LabCompare: lab_compare,
    ir.LabText: lab_text,
    ir.LabRecorded: lab_recorded,
    ir.LabAggregate: lab_aggregate,
    ir.RecordCount: record_count,
    ir.VisitOccasions: visit_occasions,
    ir.AgeTest: age_test,
    ir.SexTest: sex_test,
    ir.RecordTest: record_test,
    ir.AnchoredRecordTest: anchored_record_test,
    ir.AnchoredLabTest: anchored_lab_test,
    ir.DoseTrend: dose_trend,
    ir.DoseTotal: dose_total,
    ir.InvestigationalTest: investigational_test,
    ir.FactTest: fact_test,
    ir.Review: review,
}


# ---------------------------------------------------------------- the explaining interpreter
_NONE: tuple = ()


class Outcome:
    """The value of one node for one patient, with what decided it.

    ``deciding`` holds the outcomes of the operands that decided the value (for an atom, none);
    ``info`` is the atom's raw evidence; ``missing`` and ``reviews`` are collected from the
    deciding part of the tree only: data that could not have changed the answer is not "missing".
    """

    __slots__ = ("node", "value", "deciding", "info", "missing", "reviews")

    def __init__(self, node: ir.Node, value: bool | None, deciding=_NONE, info: tuple | None = None):
        self.node = node
        self.value = value
        self.deciding = deciding
        self.info = info
        self.missing = _NONE
        self.reviews = _NONE

    def __repr__(self) -> str:
        return f"Outcome({self.node.source_text!r}, {self.value!r})"


def _atom_missing(info) -> list[str]:
    kind = info[0]
    if kind == "lab":
        missing = [info[3]] if info[3] else []
        for obs, value, _limits, problem in info[2]:
            if value is None and problem:
                if problem.startswith("reference range"):
                    missing.append(problem)
                else:
                    when = show(obs.lo, obs.hi) if obs.lo is not None else "undated"
                    missing.append(f"{info[1].label} result of {when}: {problem}")
        return list(dict.fromkeys(missing))
    if kind == "recorded":
        if info[3]:
            return [info[3]]
        return [f"{info[1].label} result of {show(obs.lo, obs.hi) if obs.lo is not None else 'undated'}: {problem}"
                for obs, problem in info[4]]
    if kind == "aggregate":
        return [info[4]] if info[4] else []
    if kind == "visits":
        found = [info[3]] if info[3] else []
        for _day, value, _used, missing in info[2]:
            if value is None:
                found += list(missing)
        return list(dict.fromkeys(found))
    if kind == "count":
        if info[6]:
            return [info[6]]
        return [f"{entry_name(info[1].test.noun, entry)}: {', '.join(reasons)}" for entry, reasons in info[3]]
    if kind == "text":
        return [info[3]] if info[3] else ([info[4]] if len(info) > 4 and info[4] else [])
    if kind == "age":
        if isinstance(info[2], str):  # born after the as-of date
            return [info[2]]
        return ["birth_date"] if info[2] is None else ["birth_date (a full date: the year or month alone does not decide)"]
    if kind == "sex":
        return ["sex"] if info[2] in (None, "unknown") else []
    if kind == "record":
        if info[3]:
            return [info[3]]
        # a record that the terminology leaves open is named by its display too: that is what a coordinator reads
        return [f"{entry_name(info[1].noun, entry, any(r.startswith(TERMINOLOGY_REASON) for r in reasons))}: "
                f"{', '.join(reasons)}" for entry, reasons in info[4]]


        return [f"{entry_name(info[1].noun, entry)}: {', '.join(reasons)}" for entry, reasons in info[4]]
    if kind == "anchored":
        if info[3]:
            return [info[3]]
        return [f"{entry_name(info[1].test.noun, entry)} {info[1].relation_text} "
                f"{anchor_label(info[1], other)}: {', '.join(reasons)}" for entry, other, reasons in info[4]]
    if kind == "anchored_lab":
        if info[3]:
            return [info[3]]
        missing = []
        node = info[1]
        for other, lab_info, reasons in info[4]:
            where = f"{node.test.label} {node.relation_text} {anchor_label(node, other)}"
            inner = _atom_missing(lab_info) if lab_info is not None else []
            missing.append(f"{where}: {', '.join(list(reasons) + inner) or 'unknown'}")
        return missing
    if kind == "fact":
        return [f"fact {info[1].name}"] if info[2] is None else []
    if kind in ("dose_trend", "investigational", "dose_total"):
        return list(info[3])
    return []


TERMINOLOGY_REASON = "cannot tell whether it is in"


def entry_name(noun: str, entry, displayed: bool = False) -> str:
    """``condition ICD10:C50.9`` (with ``displayed``: ``condition Malignant neoplasm of colon (SNOMED:109838007)``);
    a record without a code by its text and place: ``condition 'breast ca' ($.conditions[0])``."""
    if entry.code:
        if displayed and entry.display:
            return f"{noun} {entry.display} ({entry.code})"
        return f"{noun} {entry.code}"
    shown = f" '{entry.display}'" if entry.display else ""
    return f"{noun}{shown} ({entry.attributes.get('fhir_path') or entry.path})"


def _merge(outcome: Outcome, parts: list[Outcome]) -> Outcome:
    outcome.deciding = parts
    missing = reviews = None
    for part in parts:
        if part.missing:
            missing = missing or []
            missing.extend(item for item in part.missing if item not in missing)
        if part.reviews:
            reviews = reviews or []
            reviews.extend(item for item in part.reviews if item not in reviews)
    if missing:
        outcome.missing = missing
    if reviews:
        outcome.reviews = reviews
    return outcome


class Interpreter:
    """Evaluates checked nodes with evidence; one instance per (patient, context)."""

    def __init__(self, patient, ctx: Context):
        self.patient = patient
        self.ctx = ctx
        self.memo: dict[str, Outcome] = {}

    def run(self, node: ir.Node) -> Outcome:
        atom = ATOMS.get(type(node))
        if atom is not None:
            value, info = atom(node, self.patient, self.ctx)
            outcome = Outcome(node, value, _NONE, info)
            if value is None:
                outcome.missing = _atom_missing(info)
                if info[0] == "review":
                    outcome.reviews = [node.reason]
            return outcome
        return self._methods[type(node)](self, node)

    def _Const(self, node: ir.Const) -> Outcome:
        return Outcome(node, node.value)

    def _Define(self, node: ir.Define) -> Outcome:
        found = self.memo.get(node.name)
        if found is None:
            inner = self.run(node.body)
            found = _merge(Outcome(node, inner.value), [inner])
            self.memo[node.name] = found
        return found

    _methods: dict = {}

    def _Not(self, node: ir.Not) -> Outcome:
        inner = self.run(node.operand)
        return _merge(Outcome(node, None if inner.value is None else not inner.value), [inner])

    def _And(self, node: ir.And) -> Outcome:
        parts = []
        run = self.run
        for operand in node.operands:
            result = run(operand)
            if result.value is False:
                return _merge(Outcome(node, False), [result])
            parts.append(result)
        # unknown: the true operands are shown too (they are half of the story), in rule order
        unknown = any(p.value is None for p in parts)
        return _merge(Outcome(node, None if unknown else True), parts)

    def _Or(self, node: ir.Or) -> Outcome:
        parts = []
        run = self.run
        for operand in node.operands:
            result = run(operand)
            if result.value is True:
                return _merge(Outcome(node, True), [result])
            parts.append(result)
        unknown = any(p.value is None for p in parts)
        return _merge(Outcome(node, None if unknown else False), parts)

    def _Known(self, node: ir.Known) -> Outcome:
        inner = self.run(node.operand)
        # missing data inside is the answer here, not something missing from it
        return Outcome(node, inner.value is not None, deciding=[inner])

    def _IfThenElse(self, node: ir.IfThenElse) -> Outcome:
        condition = self.run(node.condition)
        if condition.value is True:
            branch = self.run(node.then)
            return _merge(Outcome(node, branch.value), [condition, branch])
        if condition.value is False:
            branch = self.run(node.otherwise)
            return _merge(Outcome(node, branch.value), [condition, branch])
        then, otherwise = self.run(node.then), self.run(node.otherwise)
        if then.value is not None and then.value == otherwise.value:
            return _merge(Outcome(node, then.value), [then, otherwise])
        return _merge(Outcome(node, None), [condition, then, otherwise])

    def _CountOf(self, node: ir.CountOf) -> Outcome:
        results = [self.run(operand) for operand in node.operands]
        trues = [r for r in results if r.value is True]
        unknown = [r for r in results if r.value is None]
        t, u = len(trues), len(unknown)
        if node.mode == "at_least":
            if t >= node.count:
                return _merge(Outcome(node, True), trues)
            if t + u < node.count:
                return _merge(Outcome(node, False), results)
            return _merge(Outcome(node, None), results)
        if t > node.count:
            return _merge(Outcome(node, False), trues)
        if t + u <= node.count:
            return _merge(Outcome(node, True), results)
        return _merge(Outcome(node, None), results)


Interpreter._methods = {
    getattr(ir, name[1:]): method for name, method in vars(Interpreter).items()
    if name.startswith("_") and name[1:2].isupper() and hasattr(ir, name[1:])
}


def count_values(mode: str, count: int, values) -> bool | None:
    """Kleene count-of over a list of truth values (used by the compiled path)."""
    t = u = 0
    for v in values:
        if v is True:
            t += 1
        elif v is None:
            u += 1
    if mode == "at_least":
        return True if t >= count else (False if t + u < count else None)
    return False if t > count else (True if t + u <= count else None)
