"""Scores and classes (ECOG, Karnofsky, Lansky, NYHA, CCS, Child-Pugh, CTCAE grade) as numbers.

A score is a dated observation whose value is a point on its scale (catalogue kind ``score``,
``scale = [low, high]``). Rules and patient results may write it as a number or as text:

* a number: ``1``, ``70``; with no unit, ``{score}`` or ``1`` (Karnofsky and Lansky: ``%`` is points);
* roman numerals for class scales (NYHA, CCS): ``III`` is 3;
* letters for lettered classes (Child-Pugh): ``A`` = 1, ``B`` = 2, ``C`` = 3;
* any of these after the score's own name and the words class, grade, score, status, stage,
  performance, functional, PS, points: "ECOG 1", "grade 2", "Class III", "NYHA class II",
  "Child-Pugh B", "KPS 80%".

Anything else ("ECOG 0-1", "II-III", "mild", "B (7 points)") is not a value: unknown, never a guess.
Values must be whole numbers on the scale.
"""
from __future__ import annotations

import re

from .analytes import Analyte

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5}
_FILLER = {"class", "grade", "score", "status", "stage", "performance", "functional", "ps", "points", "point",
           "pts", "of", "scale", "capacity", "who", "angina", "play"}
_WORDS = re.compile(r"[a-z0-9.]+|%")


def _own_words(analyte: Analyte) -> set[str]:
    words = set()
    for name in (analyte.name, *analyte.aliases, analyte.display):
        words.update(w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and not w.isdigit())
    return words


def value_of(analyte: Analyte, text: str) -> float | None:
    """The value a text means on the analyte's scale ("Class III" -> 3.0), or None if it means none."""
    words = _WORDS.findall(str(text).lower().replace("-", " "))
    if re.search(r"\d\s*[-–/]\s*\d|\b(?:to|or|and)\b|[+<>=≤≥]", str(text).lower()):
        return None  # a range, a choice or a bound ("0-1", "II or III", "<2") is not one value; "2+" is a grade
    own = _own_words(analyte)
    rest = [w for w in words if w not in _FILLER and w not in own]
    if rest and rest[-1] == "%":
        if not analyte.percent_points:
            return None
        rest = rest[:-1]
    if len(rest) != 1:
        return None
    word = rest[0]
    if re.fullmatch(r"\d+(\.0+)?", word):
        value = float(word)
    elif analyte.roman and word in _ROMAN:
        value = float(_ROMAN[word])
    elif analyte.classes and word.upper() in dict(analyte.classes):
        value = float(dict(analyte.classes)[word.upper()])
    else:
        return None
    return value if on_scale(analyte, value) else None


def on_scale(analyte: Analyte, value: float) -> bool:
    low, high = analyte.scale or (float("-inf"), float("inf"))
    return float(value).is_integer() and low <= value <= high


def describe(analyte: Analyte) -> str:
    """The values a score takes, for messages: "0 to 5", "I to IV (1 to 4)", "A, B, C (1 to 3)"."""
    low, high = analyte.scale or (0, 0)
    span = f"{low:g} to {high:g}"
    if analyte.roman:
        names = {v: k.upper() for k, v in _ROMAN.items()}
        return f"{names.get(int(low), low)} to {names.get(int(high), high)} ({span})"
    if analyte.classes:
        return ", ".join(letter for letter, _ in analyte.classes) + f" ({span})"
    return span


def shown(analyte: Analyte, value: float) -> str:
    """A value as the scale writes it: NYHA 3 -> "III", Child-Pugh 2 -> "B", ECOG 1 -> "1"."""
    if analyte.roman and float(value).is_integer():
        for name, number in _ROMAN.items():
            if number == value:
                return name.upper()
    for letter, number in analyte.classes:
        if number == value:
            return letter
    return f"{value:g}"
