"""Dates as the engine uses them: day ordinals, partial ISO dates as ranges, calendar windows."""
from __future__ import annotations

import calendar
import re
from datetime import date
from functools import lru_cache

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")

NEVER = -(10**9)  # an ordinal before every date
FOREVER = 10**9  # an ordinal after every date


class DateProblem(ValueError):
    """A string that is not an ISO 8601 date (YYYY, YYYY-MM or YYYY-MM-DD)."""


def parse_partial(text: str) -> tuple[int, int]:
    """The first and last day (as ordinals) that an ISO date, possibly partial, can mean.

    ``"2019"`` -> 2019-01-01 .. 2019-12-31; ``"2019-03"`` -> 2019-03-01 .. 2019-03-31.
    A date-time is cut to its date. Raises :class:`DateProblem` for anything else.
    """
    if not isinstance(text, str):
        raise DateProblem(f"expected a date string, got {type(text).__name__}")
    return _parse_partial(text)


@lru_cache(maxsize=65536)  # dates repeat across a population: parse each text once
def _parse_partial(text: str) -> tuple[int, int]:
    raw = text.strip()
    if len(raw) > 10 and raw[10] in "T ":
        raw = raw[:10]
    match = _PARTIAL.match(raw)
    if not match:
        raise DateProblem(f"{text!r} is not a date (expected YYYY-MM-DD, YYYY-MM or YYYY)")
    year = int(match.group(1))
    month = int(match.group(2)) if match.group(2) else None
    day = int(match.group(3)) if match.group(3) else None
    try:
        if month is None:
            return date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        if day is None:
            last = calendar.monthrange(year, month)[1]
            return date(year, month, 1).toordinal(), date(year, month, last).toordinal()
        exact = date(year, month, day).toordinal()
        return exact, exact
    except ValueError as exc:
        raise DateProblem(f"{text!r} is not a real date ({exc})") from None


def parse_date(text: str) -> date:
    """A full ISO date (YYYY-MM-DD). Raises :class:`DateProblem`."""
    lo, hi = parse_partial(text)
    if lo != hi:
        raise DateProblem(f"{text!r} is not a full date (expected YYYY-MM-DD)")
    return date.fromordinal(lo)


def shift(day: date, amount: int, unit: str) -> date:
    """``day`` moved back by a calendar duration; months and years clip to the month's last day.

    A start before 0001-01-01 (a long window and an early as-of date) is clamped to that day.
    """
    if unit == "days":
        return date.fromordinal(max(1, day.toordinal() - amount))
    if unit == "weeks":
        return date.fromordinal(max(1, day.toordinal() - 7 * amount))
    months = amount * 12 if unit == "years" else amount
    total = day.year * 12 + (day.month - 1) - months
    year, month = divmod(total, 12)
    month += 1
    if year < 1:
        return date.min
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


@lru_cache(maxsize=65536)
def whole_years(birth: int, on: int) -> int:
    """Age in whole years on day ``on`` of someone born on day ``birth`` (both ordinals)."""
    b, d = date.fromordinal(birth), date.fromordinal(on)
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


@lru_cache(maxsize=65536)
def whole_months(birth: int, on: int) -> int:
    b, d = date.fromordinal(birth), date.fromordinal(on)
    return (d.year - b.year) * 12 + (d.month - b.month) - (d.day < b.day)


@lru_cache(maxsize=65536)
def show(lo: int, hi: int | None = None) -> str:
    """An ordinal range back as the ISO text it came from (partial where it was partial)."""
    if hi is None or hi == lo:
        return date.fromordinal(lo).isoformat()
    a, b = date.fromordinal(lo), date.fromordinal(hi)
    if a.month == 1 and a.day == 1 and b.month == 12 and b.day == 31 and a.year == b.year:
        return f"{a.year}"
    if a.day == 1 and a.year == b.year and a.month == b.month:
        return f"{a.year}-{a.month:02d}"
    return f"{a.isoformat()}..{b.isoformat()}"
