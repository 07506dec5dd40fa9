"""Dates as the engine uses them: day ordinals, partial ISO dates as ranges, calendar windows."""
from __future__ import annotations

import calendar
import re
from datetime import date
from functools import lru_cache

# ISO 8601, ASCII digits only (``\d`` and int() also accept other scripts' digits): YYYY, YYYY-MM,
# YYYY-MM-DD, or a date-time YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm|-hh:mm] (FHIR dateTime and instant)
_PARTIAL = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})"
    r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::(?:[0-5][0-9]|60)(?:\.[0-9]+)?)?"
    r"(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)?)?)?)?"
)
_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EXPECTED = "expected YYYY-MM-DD, YYYY-MM or YYYY, or a date-time YYYY-MM-DDThh:mm:ss with Z or +hh:mm"

NEVER = -(10**9)  # an ordinal before every date
FOREVER = 10**9  # an ordinal after every date


class DateProblem(ValueError):
    """A string that is not an ISO 8601 date (YYYY, YYYY-MM or YYYY-MM-DD) or date-time."""


def _not_a_date(text: str, expected: str) -> DateProblem:
    if text != text.strip():
        why = "has spaces around it"
    elif not text.isascii():
        why = "has characters that are not ASCII (digits must be 0-9)"
    else:
        why = "is not a date"
    return DateProblem(f"{text!r} {why} ({expected})")


def parse_partial(text: str) -> tuple[int, int]:
    """The first and last day (as ordinals) that an ISO date, possibly partial, can mean.

    ``"2019"`` -> 2019-01-01 .. 2019-12-31; ``"2019-03"`` -> 2019-03-01 .. 2019-03-31.
    A date-time (``2019-03-04T10:00:00+01:00``) means its date as written. ISO 8601 and nothing
    more: no spaces, no other separators, ASCII digits only, every field valid.
    Raises :class:`DateProblem` for anything else.
    """
    if not isinstance(text, str):
        raise DateProblem(f"expected a date string, got {type(text).__name__}")
    return _parse_partial(text)


@lru_cache(maxsize=65536)  # dates repeat across a population: parse each text once
def _parse_partial(text: str) -> tuple[int, int]:
    match = _PARTIAL.fullmatch(text)
    if not match:
        raise _not_a_date(text, _EXPECTED)
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
    """A full ISO date, exactly YYYY-MM-DD (no time, no spaces). Raises :class:`DateProblem`."""
    if not isinstance(text, str):
        raise DateProblem(f"expected a date string, got {type(text).__name__}")
    if not _FULL_DATE.fullmatch(text):
        if _PARTIAL.fullmatch(text):
            if "T" in text:
                raise DateProblem(f"{text!r} has a time (expected a date alone, YYYY-MM-DD)")
            raise DateProblem(f"{text!r} is not a full date (expected YYYY-MM-DD)")
        raise _not_a_date(text, "expected a full date YYYY-MM-DD")
    lo, _hi = parse_partial(text)
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
        return f"{a.year:04d}"  # as written: year 1 is "0001", as in isoformat
    if a.day == 1 and a.year == b.year and a.month == b.month:
        return f"{a.year:04d}-{a.month:02d}"
    return f"{a.isoformat()}..{b.isoformat()}"


def shift_forward(day: date, amount: int, unit: str) -> date:
    """``day`` moved forward by a calendar duration (months and years clip to the month's last day);
    clamped to 9999-12-31."""
    if unit in ("days", "weeks"):
        return date.fromordinal(min(date.max.toordinal(), day.toordinal() + amount * (7 if unit == "weeks" else 1)))
    months = amount * 12 if unit == "years" else amount
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    if year > 9999:
        return date.max
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


@lru_cache(maxsize=65536)
def moved(ordinal: int, amount: int, unit: str, forward: bool) -> int:
    """A day ordinal moved back (or forward) by a calendar duration; ordinals beyond the calendar
    (:data:`NEVER`, :data:`FOREVER`) stay where they are."""
    if ordinal < 1 or ordinal > date.max.toordinal():
        return ordinal
    day = date.fromordinal(ordinal)
    return (shift_forward(day, amount, unit) if forward else shift(day, amount, unit)).toordinal()
