"""The vocabulary of qualitative and semi-quantitative lab results (documented in docs/semantics.md).

Text results are normalised once, when a patient is loaded, into a canonical term:

* the classes ``positive``, ``negative`` and ``indeterminate`` (a result that is neither);
* the ordinal grades of dipsticks and similar scales: ``negative < trace < 1+ < 2+ < 3+ < 4+``
  (1+ to 4+ are positive; trace is a grade but neither positive nor negative).

A text the vocabulary does not know is kept as it was written (lower case, spaces folded): it never
counts as "not positive"; tests of the classes or grades on it are unknown, with the text named.
"""
from __future__ import annotations

import re

POSITIVE, NEGATIVE, INDETERMINATE, TRACE = "positive", "negative", "indeterminate", "trace"
GRADES = ("1+", "2+", "3+", "4+")

# Spellings of each class (lower case, runs of spaces folded to one).
_POSITIVE = ("positive", "pos", "pos.", "reactive", "repeatedly reactive", "detected", "present", "weakly positive",
             "weak positive", "weakly reactive", "low positive", "strongly positive", "strong positive",
             "confirmed positive")
_NEGATIVE = ("negative", "neg", "neg.", "non-reactive", "nonreactive", "non reactive", "not reactive", "not detected",
             "undetected", "none detected", "not present", "absent", "nil", "-")
_INDETERMINATE = ("indeterminate", "equivocal", "borderline", "inconclusive", "grey zone", "gray zone",
                  "invalid", "uninterpretable")
_TRACE = ("trace", "tr", "traces", "+/-", "±")

TERMS: dict[str, str] = {}
for _words, _term in ((_POSITIVE, POSITIVE), (_NEGATIVE, NEGATIVE), (_INDETERMINATE, INDETERMINATE), (_TRACE, TRACE)):
    for _word in _words:
        TERMS[_word] = _term

# "2+", "2 +", "++", "2 plus", "+2": one grade; "+" alone is 1+
_GRADE = re.compile(r"^(?:([1-4])\s*\+|\+\s*([1-4])|(\+{1,4})|([1-4])\s*plus)$")

# The grade of every term on the ordinal scale, as the interval of grades it may mean: a positive
# result without a grade is one of 1+ .. 4+.
RANK: dict[str, tuple[float, float]] = {NEGATIVE: (0, 0), TRACE: (0.5, 0.5), POSITIVE: (1, 4),
                                       **{g: (float(g[0]), float(g[0])) for g in GRADES}}
CLASS: dict[str, str] = {POSITIVE: POSITIVE, NEGATIVE: NEGATIVE, INDETERMINATE: INDETERMINATE,
                         **{g: POSITIVE for g in GRADES}}

# Leading words that decide a longer result: "Positive 1:320", "negative (<1:40)", "Reactive, confirmed".
_HEADS = {"positive": POSITIVE, "pos": POSITIVE, "reactive": POSITIVE, "detected": POSITIVE,
          "negative": NEGATIVE, "neg": NEGATIVE, "nonreactive": NEGATIVE, "non-reactive": NEGATIVE,
          "undetected": NEGATIVE, "indeterminate": INDETERMINATE, "equivocal": INDETERMINATE,
          "borderline": INDETERMINATE}


def grade(text: str) -> str | None:
    """``"2 +"``, ``"++"``, ``"2 plus"`` -> ``"2+"``; ``None`` if the text is not a grade 1+ to 4+."""
    match = _GRADE.match(text)
    if not match:
        return None
    digit = match.group(1) or match.group(2) or match.group(4)
    return f"{digit}+" if digit else f"{len(match.group(3))}+"


def normalise_text(value: str) -> str:
    """A result text as its canonical term ("Reactive" -> "positive", "++" -> "2+", "Tr" -> "trace"),
    or, for a text the vocabulary does not know, the text lower-cased with spaces folded."""
    text = " ".join(str(value).split()).lower()
    if text in TERMS:
        return TERMS[text]
    graded = grade(text)
    if graded:
        return graded
    head, _, tail = _split_head(text)
    if head in _HEADS and not text.startswith(("positive control", "negative control")) and not _hedged(tail):
        return _HEADS[head]
    return text


# Words after the leading one that contradict, qualify or undo it ("Non-reactive, confirmatory test
# positive", "Reactive, not confirmed", "Positive (equivocal)", "negative (positive control failed)"):
# such a text is not decided by its first word and stays an unrecognised text (unknown, named).
_HEDGES = re.compile(
    r"\b(?:pos(?:itive)?|neg(?:ative)?|(?:non-?|un)?reactive|(?:un)?detected|not|no|non|never|without|"
    r"indeterminate|equivocal|borderline|inconclusive|invalid|uninterpretable|unconfirmed|unclear|"
    r"false|suspect(?:ed)?|possibl[ey]|probabl[ey]|presumptive|questionable|doubtful|pending|control|"
    r"trace|grey|gray|but|however|except)\b|\?"
)


def _split_head(text: str) -> tuple[str, str, str]:
    parts = re.split(r"([\s,;:(])", text, maxsplit=1)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (parts[0], "", "")


def _hedged(tail: str) -> bool:
    """Does the rest of a result text contradict or qualify its leading word?"""
    return bool(_HEDGES.search(tail))


def is_known(term: str) -> bool:
    """Is the (normalised) text a vocabulary term?"""
    return term in CLASS or term == TRACE


def describe_scale() -> str:
    return "negative < trace < 1+ < 2+ < 3+ < 4+"
