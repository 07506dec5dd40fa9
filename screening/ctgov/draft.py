"""The line drafter: one criterion line -> a ``draft`` rule, or None (left for review).

One function per pattern family (:func:`_draft_age`, :func:`_draft_performance`, :func:`_draft_nyha`,
:func:`_draft_investigational`, :func:`_draft_labs`; conditions and medications named by the lexicon are
in ``records.py``); the whole line must be read or nothing is drafted.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from ..errors import UnitProblem


@dataclass(frozen=True)
class Draft:
    """A rule read from a criterion line, and the value sets it uses (name -> declaration)."""

    rule: str
    valuesets: dict[str, str] = field(default_factory=dict)
    family: str = "labs"            # "labs", "age", "history", "medications", "procedures", "scores", "investigational"
    comment: str | None = None      # written above the draft: how the rule reads the text, where not obvious


class _NotUnderstood(Exception):
    """Raised inside the drafter when a line has a part it cannot read with confidence."""


# ---------------------------------------------------------------- text normalisation
_OPERATOR_PHRASES = [
    (r"(?:greater|more|higher)\s+than\s+or\s+equals?\s+(?:to\s+)?|(?:greater|more)\s+than\s+equals?\s+(?:to\s+)?"
     r"|(?:greater|more)\s+or\s+equal\s+(?:to\s+)?|equal\s+to\s+or\s+(?:greater|more|higher)\s+than\s+"
     r"|equal\s+or\s+(?:greater|more)\s+than\s+|(?:above|over)\s+or\s+equal\s+(?:to\s+)?|at\s+least\s+"
     r"|not\s+less\s+than\s+|no\s+less\s+than\s+"
     r"|(?:a\s+)?minimum\s+(?:of\s+)?(?=\d)", ">= "),
    (r"less\s+than\s+or\s+equals?\s+(?:to\s+)?|less\s+than\s+equals?\s+(?:to\s+)?|less\s+or\s+equal\s+(?:to\s+)?"
     r"|equal\s+to\s+or\s+(?:less|lower)\s+than\s+|equal\s+or\s+less\s+than\s+"
     r"|(?:no|not)\s+(?:more|greater|higher)\s+than\s+|(?:does\s+)?not\s+(?:to\s+)?exceed(?:ing)?\s+"
     r"|(?:a\s+)?maximum\s+(?:of\s+)?(?=\d)|at\s+most\s+|up\s+to\s+", "<= "),
    (r"(?:greater|more|higher)\s+than\s+|above\s+|exceeding\s+|in\s+excess\s+of\s+", "> "),
    (r"(?:less|lower|fewer)\s+than\s+|below\s+", "< "),
]
_ULN = (r"(?:the\s+)?(?:institutional\s+|local\s+|laboratory\s+)?"
        r"(?:upper\s+limits?\s+of\s+(?:the\s+)?(?:institutional\s+|laboratory\s+|local\s+)?normal(?:\s+range)?"
        r"(?:\s+for\s+the\s+institution)?|upper\s+normal\s+limits?|ULN|UNL|IULN)"
        r"(?:\s*[(\[]\s*(?:ULN|UNL|IULN)\s*[)\]])?")
_LLN = (r"(?:the\s+)?(?:institutional\s+)?(?:lower\s+limits?\s+of\s+(?:the\s+)?(?:institutional\s+)?normal"
        r"(?:\s+range)?|lower\s+normal\s+limits?|LLN)(?:\s*[(\[]\s*LLN\s*[)\]])?")


def _normalise(text: str) -> str:
    """A working copy of a line: one spelling per operator, unit symbol and limit of normal."""
    s = text
    for a, b in (("≥", ">="), ("≤", "<="), ("≧", ">="), ("≦", "<="), ("＞", ">"), ("＜", "<"), ("×", "x"),
                 ("µ", "u"), ("μ", "u"), ("³", "3"), ("²", "2"), ("–", "-"), ("—", "-"), ("’", "'"),
                 ("\u00a0", " ")):
        s = s.replace(a, b)
    s = re.sub(r"\b(or|and)\s+[-*•·]\s+", r"\1 ", s, flags=re.I)     # alternatives joined with their markers
    s = re.sub(r"(?<![<>=])=\s*(>=|<=)", r"\1", s)                  # "(ANC) = ≥1,500"
    s = re.sub(r">\s*/\s*=|>\s*or\s*=|=\s*>", ">=", s)
    s = re.sub(r"<\s*/\s*=|<\s*or\s*=|=\s*<", "<=", s)
    # "7.0% or above", "60 mL/min or more": the operator after the number
    quantity = r"(\d+(?:[.,]\d+)?(?:\s*(?:%|[A-Za-z]+(?:/[A-Za-z0-9.^]+)*))?)"
    s = re.sub(quantity + r"\s+or\s+(?:above|more|higher|greater)\b", r">= \1", s, flags=re.I)
    s = re.sub(quantity + r"\s+or\s+(?:below|less|lower)\b", r"<= \1", s, flags=re.I)
    for pattern, op in _OPERATOR_PHRASES:
        s = re.sub(r"\b(?:" + pattern + r")", op, s, flags=re.I)
    s = re.sub(r"(?<![<>=])=\s*(>=|<=|>|<)", r"\1", s)            # "(ANC) = >= 1500"
    s = re.sub(r"(>=|<=|>|<)\s*[(\[]\s*(?:>=|<=|>|<)\s*[)\]]", r"\1", s)   # ">= (>=)"
    s = re.sub(r"[(\[]\s*(?:>=|<=|>|<)\s*[)\]]\s*(>=|<=|>|<)", r"\1", s)
    s = re.sub(r"(?:litre|liter)\s*\(\s*L\s*\)", "L", s, flags=re.I)
    s = re.sub(r"(?<![A-Za-z])(?:" + _ULN + r")(?![A-Za-z])", " ULN ", s, flags=re.I)
    s = re.sub(r"(?<![A-Za-z])(?:" + _LLN + r")(?![A-Za-z])", " LLN ", s, flags=re.I)
    s = re.sub(r"\b(ULN|LLN)\s*[(\[]\s*\1\s*[)\]]", r"\1", s)      # "ULN (upper limit of normal)"
    s = re.sub(r"\b(ULN|LLN)\s+for\s+the\s+institution\b", r"\1", s, flags=re.I)   # "... (ULN) for the institution"
    s = re.sub(r"\bmg\s*/\s*mg\s+creatinine\b", "mg/mg", s, flags=re.I)   # "UPC ratio <= 2 mg/mg creatinine"
    # "Urine protein < 1,000 mg on 24-hour urine collection": the 24-hour protein
    s = re.sub(r"\burine\s+protein\s*((?:<=|>=|<|>)\s*[\d,.]+\s*(?:mg|g|grams?))\s+(?:on|in|by)\s+(?:a\s+)?24[\s-]*h(?:ou)?rs?"
               r"\s+urine\s+(?:collection|sample)\b", r"24-hour urine protein \1", s, flags=re.I)
    s = re.sub(r"\b(ULN|LLN)\s+range\b", r"\1", s)
    # "for the purpose of this study, the ULN for SGPT is 45 U/l": the lab is the line's own (not a second lab)
    s = re.sub(r"(for\s+the\s+purposes?\s+of\s+this\s+study\s*,?\s*(?:the\s+)?ULN)\s+for\s+(?:SGPT|SGOT|ALT|AST)\s+is\b",
               r"\1 is", s, flags=re.I)
    # "Bilirubin (sum of conjugated + conjugated)": the total (the registry's typo for conjugated + unconjugated)
    s = re.sub(r"\b(bilirubin)\s*\(\s*sum\s+of\s+(?:un)?conjugated\s*(?:\+|and)\s*(?:un)?conjugated\s*\)", r"total \1", s,
               flags=re.I)                # "<= 1.5 x the ULN range"
    s = re.sub(r"\(\s*\[([^()\[\]]{1,120})\]\s*\)", r"(\1)", s)     # "AST/SGOT ([Aspartate Amino Transferase/...])"
    return re.sub(r"\s+", " ", s).strip()


# ---------------------------------------------------------------- analytes
# (catalogue name, spellings as regular expressions); longer spellings first.
_ANALYTES: list[tuple[str, list[str]]] = [
    # QTc by its correction method (issue 9: distinct analytes; a rule may ask for Fridericia)
    ("QTcF", [r"qt\s+interval\s+corrected\s+(?:by|using|with|via)\s+fridericia'?s?\s+(?:formula|correction|method)"
              r"(?:\s*\(\s*qtcf\s*\))?",
              r"corrected\s+qt\s+interval\s+(?:by|using|with|via)\s+fridericia'?s?\s+(?:formula|correction|method)"
              r"(?:\s*\(\s*qtcf\s*\))?", r"qtcf(?:\s+interval)?"]),
    ("QTcB", [r"(?:corrected\s+)?qtc\s+prolongation\s+value\s*,?\s*calculated\s+(?:by|using|with)\s+bazett'?s?\s+"
              r"(?:formula|correction|method)",
              r"qt\s+interval\s+corrected\s+(?:by|using|with|via)\s+bazett'?s?\s+(?:formula|correction|method)"
              r"(?:\s*\(\s*qtcb\s*\))?", r"qtcb(?:\s+interval)?"]),
    ("QTc", [r"corrected\s+qt\s*\(\s*qtc\s*\)(?:\s+interval)?", r"corrected\s+qt\s+interval(?:\s*\(\s*qtc\s*\))?",
             r"qtc(?:\s+interval)?"]),
    ("corrected_calcium", [r"corrected\s+(?:serum\s+)?calcium"]),
    # a ratio given without a unit is mg/mg (= g/g): in mg/mmol a threshold near 1 would be far below
    # normal urine, so the written rule says mg/mg for the author to see
    ("UPCR", [r"urine\s+protein\s*(?::|/|\s+to\s+|-to-)\s*creatinine\s+ratio(?:\s*\(\s*UPCR?\s*\))?",
              r"urine\s+protein\s*(?::|/|\s+to\s+|-to-)\s*creatinine\s*\(\s*UPCR?\s*\)\s*ratio"]),
    # protein in a 24-hour urine collection (issue 9): "24-hour urine protein < 2 g", a mass per day
    ("proteinuria", [r"24[\s-]*h(?:ou)?r?s?\s+urine\s+protein(?:\s+(?:value|excretion))?"]),
    ("urine_protein", [r"urine\s+protein(?:\s+by\s+dipstick)?", r"dipstick\s+(?:urine\s+)?protein"]),
    ("potassium", [r"potassium"]),
    # blood pressure (issue 9): "Uncontrolled high blood pressure (i.e., systolic blood pressure >= 160 mmHg,
    # diastolic blood pressure >= 90 mmHg)"
    ("systolic_bp", [r"systolic\s+blood\s+pressure(?:\s*\(\s*SBP\s*\))?", r"sbp"]),
    ("diastolic_bp", [r"diastolic\s+blood\s+pressure(?:\s*\(\s*DBP\s*\))?", r"dbp"]),
    ("sodium", [r"sodium"]),
    ("HbA1c", [r"h(?:a)?emoglobin\s*a1c", r"hb\s*a1c", r"hgb\s*a1c", r"glyc(?:osyl)?ated\s+h(?:a)?emoglobin(?:\s*a1c)?",
               r"hba1c", r"a1c"]),
    ("creatinine_clearance", [r"(?:(?:calculated|estimated|measured)\s+)?creatinine\s+clearance", r"crcl", r"clcr"]),
    ("eGFR", [r"(?:estimated\s+)?glomerular\s+filtration\s+rate", r"estimated\s+gfr", r"e?gfr"]),
    ("creatinine", [r"creatinine"]),
    ("direct_bilirubin", [r"(?:direct|conjugated)\s+(?:serum\s+)?bilirubin"]),
    ("bilirubin", [r"(?:total\s+)?(?:serum\s+)?bilirubin(?:\s+total)?", r"t\.?\s*bili"]),
    ("ALT", [r"alanine\s+(?:amino\s*)?transaminase", r"alanine\s+amino\s*transferase",
             r"serum\s+glutam(?:ic|ate)[\s-]+pyruv(?:ic|ate)\s+transaminase", r"alt", r"sgpt", r"alat"]),
    ("AST", [r"aspartate\s+(?:amino\s*)?transaminase", r"aspartate\s+amino\s*transferase",
             r"serum\s+glutamic[\s-]+oxalo(?:acetic|acetate)\s+transaminase", r"ast", r"sgot", r"asat"]),
    ("TRANSAMINASES", [r"(?:serum\s+|liver\s+)?(?:transaminases|aminotransferases)"]),
    ("ALP", [r"alkaline\s+phosphatase", r"alk\.?\s*phos", r"alp"]),
    ("albumin", [r"albumin"]),
    ("INR", [r"international\s+normali[sz]ed\s+ratio", r"inr"]),
    ("BMI", [r"body\s+mass\s+index", r"bmi"]),
    ("weight", [r"(?:body\s+)?weight"]),
    ("fasting_glucose", [r"fasting\s+(?:serum\s+|plasma\s+|blood\s+)?glucose", r"fasting\s+blood\s+sugar", r"fpg"]),
    ("platelets", [r"platelets?(?:\s+counts?)?", r"plt", r"thrombocytes?(?:\s+counts?)?"]),
    ("ANC", [r"(?:absolute\s+)?neutrophils?(?:\s+counts?)?", r"anc"]),
    ("WBC", [r"white\s+blood\s+cells?(?:\s+counts?)?", r"white\s+cell\s+counts?", r"wbc(?:\s+counts?)?",
             r"(?:total\s+)?leu[ck]ocytes?(?:\s+counts?)?"]),
    ("lymphocytes", [r"absolute\s+lymphocyte\s+counts?", r"lymphocytes?(?:\s+counts?)?", r"alc"]),
    ("hemoglobin", [r"h(?:a)?emoglobin", r"hgb", r"hb"]),
]
_ANALYTE_RE = re.compile(
    "(?:" + "|".join(rf"(?P<a{i}>\b(?:{'|'.join(spellings)})\b)" for i, (_, spellings) in enumerate(_ANALYTES)) + ")"
    + r"(?!\s*/\s*(?:mm|u?l\b|mcl|cu))",      # "100,000 platelets/mm3": a count word, not a lab name
    re.I)
_PAIR = {"TRANSAMINASES": ("AST", "ALT")}

# Plausible thresholds in the catalogue unit; a value outside is a misread unit (Hb 9 g/L).
_PLAUSIBLE = {
    "platelets": (10, 1500), "ANC": (0.1, 20), "WBC": (0.5, 50), "lymphocytes": (0.05, 10),
    "hemoglobin": (4, 20), "creatinine": (0.2, 10), "creatinine_clearance": (5, 200), "eGFR": (5, 200),
    "bilirubin": (0.1, 20), "direct_bilirubin": (0.05, 10), "albumin": (1, 7), "INR": (0.5, 10),
    "HbA1c": (3, 20), "BMI": (10, 80), "ALT": (5, 2000), "AST": (5, 2000), "ALP": (5, 3000),
    "fasting_glucose": (40, 600), "QTc": (300, 700), "QTcF": (300, 700), "QTcB": (300, 700),
    "corrected_calcium": (5, 20), "potassium": (2, 8), "sodium": (100, 180), "UPCR": (0.1, 20), "proteinuria": (0.05, 20),
    "weight": (2, 300), "systolic_bp": (70, 250), "diastolic_bp": (40, 150),
}
# Which way is abnormal: an inclusion line sets a floor on LOW analytes and a ceiling on HIGH ones.
_LOW_IS_BAD = {"platelets", "ANC", "WBC", "lymphocytes", "hemoglobin", "albumin", "creatinine_clearance", "eGFR"}
_HIGH_IS_BAD = {"creatinine", "bilirubin", "direct_bilirubin", "ALT", "AST", "ALP", "INR", "QTc", "QTcF", "QTcB", "UPCR",
                "proteinuria",
                "urine_protein", "systolic_bp", "diastolic_bp"}
# Analytes whose unit may go unwritten, and the unit it then is.
# (blood pressure is only ever written in mmHg in registry text)
_IMPLIED_UNIT = {"INR": "", "HbA1c": "%", "BMI": "kg/m2", "UPCR": "mg/mg", "systolic_bp": "mmHg", "diastolic_bp": "mmHg"}


def _analyte_of(match: re.Match) -> str:
    return _ANALYTES[int(match.lastgroup[1:])][0]


def _names(analyte: str) -> tuple[str, ...]:
    return _PAIR.get(analyte, (analyte,))


def _remove_alias_parentheses(s: str) -> str:
    """Drop "(ANC)", "(AST/SGOT)", "[SGPT]" after a name they repeat."""
    bracket = re.compile(r"\s*([(\[])\s*([^()\[\]]{1,80}?)\s*([)\]])")
    changed = True
    while changed:
        changed = False
        for match in bracket.finditer(s):
            before = s[:match.start()].rstrip()
            mentions = list(_ANALYTE_RE.finditer(before))
            if not mentions or mentions[-1].end() != len(before):
                continue
            inner = [p for p in re.split(r"\s*(?:/|,|\bor\b)\s*", match.group(2)) if p]
            owner = set(_names(_analyte_of(mentions[-1])))
            names = []
            for part in inner:
                m = _ANALYTE_RE.fullmatch(part)
                if m is None:
                    break
                names.extend(_names(_analyte_of(m)))
            else:
                if names and set(names) <= owner:
                    s = s[:match.start()] + " " + s[match.end():]
                    changed = True
                    break
    return s


# ---------------------------------------------------------------- numbers, units, bounds
_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?![\d,])(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)"
_COUNT_WORD = r"(?:cells?|platelets?|neutrophils?|leu[ck]ocytes?|wbc|granulocytes?)?\s*"
_UNITS: list[tuple[str, str]] = [
    (r"(?:x|\*)\s*10\s*(?:\^|\*\*?|e)\s*9\s*" + _COUNT_WORD + r"/\s*l\b", "x 10^9/L"),
    (r"(?:x|\*)\s*10\s*(?:\^|\*\*?|e)\s*3\s*" + _COUNT_WORD + r"/\s*(?:ul|mcl|mm3|microlit(?:er|re))\b", "x 10^3/uL"),
    (r"(?:x|\*)\s*109\s*" + _COUNT_WORD + r"/\s*l\b", "x 10^9/L"),           # lost superscript
    (r"(?:x|\*)\s*103\s*" + _COUNT_WORD + r"/\s*(?:ul|mcl|mm3)\b", "x 10^3/uL"),
    (r"k\s*/\s*(?:ul|mcl|mm3)\b", "x 10^3/uL"),
    (r"(?:bil|billion)\s*/\s*l\b", "x 10^9/L"),
    (_COUNT_WORD + r"(?:/|per)\s*(?:mm\s*\^?\s*3|cu\.?\s*mm|cmm|cubic\s+millimet(?:er|re))(?![A-Za-z0-9])", "/mm3"),
    (_COUNT_WORD + r"(?:/|per)\s*(?:ul|mcl|microlit(?:er|re))\b", "/uL"),
    (r"(?:g|gm|gms|grams?)\s*(?:/|per)\s*(?:dl|decilit(?:er|re))\b", "g/dL"),
    (r"(?:g|gm|grams?)\s*/\s*(?:l|lit(?:er|re))\b", "g/L"),
    (r"(?:mg|milligrams?)\s*/\s*(?:dl|decilit(?:er|re))\b", "mg/dL"),
    (r"(?:mg|milligrams?)\s*/\s*l\b", "mg/L"),
    (r"(?:umol|micromol(?:es)?)\s*/\s*l\b", "umol/L"),
    (r"(?:mmol|millimol(?:es)?)\s*/\s*l\b", "mmol/L"),
    (r"mmol\s*/\s*mol\b", "mmol/mol"),
    (r"mg\s*/\s*mg(?:\s+creatinine)?\b", "mg/mg"),
    (r"(?:g|grams?)\s*(?:/|per)\s*24\s*h(?:ou)?rs?\b|(?:g|grams?)\s*(?:/|per)\s*day\b", "g/d"),
    (r"(?:mg|milligrams?)\s*(?:/|per)\s*24\s*h(?:ou)?rs?\b|(?:mg|milligrams?)\s*(?:/|per)\s*day\b", "mg/d"),
    (r"(?:mg|milligrams?)(?![A-Za-z/])", "mg"),
    (r"(?:g|grams?)(?![A-Za-z/])", "g"),
    (r"(?:ml|cc)\s*/\s*min(?:ute)?s?\s*(?:/|per)\s*1[.,]73\s*(?:m\s*\^?\s*2|sq\.?\s*m|square\s+met(?:er|re)s?)"
     r"(?:\s+(?:bsa|body\s+surface\s+area))?", "mL/min/1.73m2"),
    (r"(?:ml|cc)\s*/\s*min(?:ute)?s?\b", "mL/min"),
    (r"(?:iu|u|units)\s*/\s*l\b", "U/L"),
    (r"%", "%"),
    (r"kg\s*/\s*m\s*\^?\s*2\b", "kg/m2"),
    (r"mm\s*(?:hg|\[hg\])(?![A-Za-z])", "mmHg"),
    (r"(?:kg|kilograms?)(?![A-Za-z/])", "kg"),
    (r"(?:msecs?|ms|milli-?seconds?)(?:\s*\(\s*msec\s*\)s?)?(?![A-Za-z])", "ms"),
]
_UNIT_RES = [(re.compile(p, re.I), out) for p, out in _UNITS]
_MULTIPLIER = re.compile(r"(?:x|\*|times|-?\s*fold)\s*(?:the\s+)?", re.I)


@dataclass(frozen=True)
class _Bound:
    """A threshold: a number with a unit ('' for none), or a multiple of ULN/LLN."""

    value: str             # as it will be written in the rule (no thousands separators)
    unit: str = ""         # "x 10^9/L", "/mm3", "mg/dL", "%", ... or "ULN"/"LLN"
    limit: bool = False

    def text(self) -> str:
        if self.limit:
            return self.unit if self.value in ("", "1") else f"{self.value} x {self.unit}"
        if not self.unit or self.unit == "grade":
            return self.value
        if self.unit.startswith("x "):
            return f"{self.value} {self.unit}"
        if self.unit == "%":
            return f"{self.value} %"
        if self.unit.startswith("/"):
            return f"{self.value}{self.unit}"
        return f"{self.value} {self.unit}"


def _number_text(raw: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", raw):
        return raw.replace(",", "")
    return raw.replace(",", ".")          # a decimal comma: "1,5 mg/dL"


class _Cursor:
    """A position in a normalised line, with small readers that consume text or fail."""

    def __init__(self, s: str):
        self.s = s
        self.pos = 0
        self.premises: list = []

    @property
    def rest(self) -> str:
        return self.s[self.pos:]

    def skip_space(self) -> None:
        while self.pos < len(self.s) and self.s[self.pos] == " ":
            self.pos += 1

    def take(self, pattern: str | re.Pattern, flags: int = re.I) -> re.Match | None:
        self.skip_space()
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, flags)
        match = regex.match(self.s, self.pos)
        if match:
            self.pos = match.end()
        return match

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.s)


_OP = r"(>=|<=|>|<)"


def _read_bound(cur: _Cursor, allow_bare_limit: bool = True) -> _Bound | None:
    """NUMBER [unit] | NUMBER x ULN | ULN | LLN, at the cursor (None, cursor unmoved, if absent)."""
    start = cur.pos
    limit = cur.take(r"(ULN|LLN)\b", 0)
    if limit:
        return _Bound("", limit.group(1), limit=True) if allow_bare_limit else None
    number = cur.take(_NUMBER + r"(?![\d.])")
    if number is None:
        cur.pos = start
        return None
    value = _number_text(number.group(0))
    after_number = cur.pos
    if re.fullmatch(r"[1-4]", value) and cur.s.startswith("+", cur.pos):     # a dipstick grade: "< 1+"
        cur.pos += 1
        return _Bound(value + "+", "grade")
    cur.take(_MULTIPLIER)
    if limit := cur.take(r"(ULN|LLN)\b", 0):      # "1.5 x ULN", and "1.5 ULN" (no multiplier written)
        return _Bound(value, limit.group(1), limit=True)
    cur.pos = after_number
    cur.skip_space()
    for regex, unit in _UNIT_RES:
        match = regex.match(cur.s, cur.pos)
        if match:
            cur.pos = match.end()
            echo = re.compile(r"\s*\(\s*(" + regex.pattern + r")\s*\)", re.I).match(cur.s, cur.pos)
            if echo and unit != "%":
                cur.pos = echo.end()              # "9 gram per deciliter (g/dL)"
            return _Bound(value, unit)
    return _Bound(value, "")


@dataclass(frozen=True)
class _Test:
    """One comparison of one analyte: ``analyte op bound`` or ``analyte between low and high``."""

    analyte: str
    op: str
    bound: _Bound
    upper: _Bound | None = None
    window: str | None = None

    def text(self) -> str:
        window = f" {self.window}" if self.window else ""
        if self.op == "between":
            return f"{self.analyte} between {self.bound.text()} and {self.upper.text()}{window}"
        return f"{self.analyte} {self.op} {self.bound.text()}{window}"


def _canonical(analyte: str, bound: _Bound) -> float:
    """The threshold in the analyte's catalogue unit (or the ULN multiple); raises if not convertible."""
    from ..analytes import catalogue
    from ..units import parse_unit

    value = float(bound.value) if bound.value else 1.0
    if bound.limit:
        return value
    entry = catalogue().lookup(analyte)
    unit = bound.unit[2:] if bound.unit.startswith("x ") else bound.unit
    if not unit:
        unit = "1"
    try:
        return entry.conversion_from(parse_unit(unit)).apply(value)
    except UnitProblem as exc:
        raise _NotUnderstood(str(exc)) from None


def _check_bound(analyte: str, bound: _Bound) -> _Bound:
    """Fill an implied unit, reject a missing or implausible one."""
    if (bound.unit == "grade") != (analyte == "urine_protein"):
        raise _NotUnderstood("a dipstick grade is read for urine protein only, and urine protein only as a grade")
    if bound.unit == "grade":
        return bound
    if bound.limit:
        if analyte in ("HbA1c", "BMI"):
            raise _NotUnderstood(f"{analyte} relative to the limits of normal")
        if not 0.1 <= float(bound.value or 1) <= 50:
            raise _NotUnderstood("implausible multiple of a limit of normal")
        return bound
    if bound.unit in ("g", "mg"):
        if analyte != "proteinuria":
            raise _NotUnderstood(f"a mass without a volume for {analyte}")
        bound = _Bound(bound.value, bound.unit + "/d")      # "24-hour urine protein < 2 g": per collection day
    if not bound.unit:
        if analyte not in _IMPLIED_UNIT:
            raise _NotUnderstood(f"no unit for {analyte}")
        bound = _Bound(bound.value, _IMPLIED_UNIT[analyte])
    elif analyte == "INR":
        raise _NotUnderstood("a unit for INR")
    low, high = _PLAUSIBLE.get(analyte, (0, math.inf))
    if not low <= _canonical(analyte, bound) <= high:
        raise _NotUnderstood(f"implausible threshold {bound.text()} for {analyte}")
    return bound


def _same_threshold(analyte: str, a: _Bound, b: _Bound) -> bool:
    """Whether a restated threshold ("1.5 x 10^9/L (1,500/mm3)") says the same as the first."""
    if a.limit or b.limit:
        return a.limit and b.limit and a.unit == b.unit and float(a.value or 1) == float(b.value or 1)
    x, y = _canonical(analyte, a), _restated_value(analyte, b)
    return abs(x - y) <= 0.03 * max(abs(x), abs(y))


def _restated_value(analyte: str, bound: _Bound) -> float:
    """Like :func:`_canonical`, but also reads hemoglobin in mmol/L (only to check a restatement).

    The catalogue has no molar mass for hemoglobin, so a rule cannot use mmol/L; the convention
    of laboratories that report it (per haem monomer, 16,114.5 g/mol: 1 mmol/L = 1.61145 g/dL)
    is enough to see that "9 g/dL or 5.6 mmol/L" states one threshold twice.
    """
    if analyte == "hemoglobin" and bound.unit == "mmol/L":
        return float(bound.value) * 1.61145
    return _canonical(analyte, bound)


# ---------------------------------------------------------------- phrases the drafter may skip
_LEAD_FILLER = re.compile(
    r"(?:\b(?:adequate|normal|organ|organs|and|bone|marrow|reserve|function|functions|hematologic(?:al)?|"
    r"haematologic(?:al)?|hematopoietic|haematopoietic|hematopoetic|hematology|haematology|hepatic|renal|liver|"
    r"kidney|metabolic|coagulation|laboratory|lab|labs|values?|tests?|results?|parameters?|defined|as|follows?|"
    r"following|by|indicated|the|required|requirements?|must|be|have|has|patients?|subjects?|participants?|"
    r"with|of|status|system|blood|counts?|chemistry|biochemistry|serum|plasma|total|absolute|screening|at|"
    r"demonstrate|demonstrated|documented|evidenced|shown|acceptable|a|an|peripheral|clotting|hematological|prolongation)\b"
    r"|[:,;.\-(])",
    re.I,
)
_LEAD_FILLER_EXCLUSION = re.compile(
    r"\b(?:inadequate|insufficient|abnormal|impaired|impairment|severe|poor|reduced|decreased)\b|"
    r"\b(?:uncontrolled|poorly\s+controlled|inadequately\s+controlled)\s+(?:type\s+[12]\s+)?diabetes(?:\s+mellitus)?"
    r"\s*[(,]?\s*(?=defined\s+as|i\.e\.)|\bi\.e\.,?|[()]|"
    # "Diabetes mellitus: Patients with diabetes mellitus with inadequate control, based on either a glycosylated
    # hemoglobin (Hgb A1c) of > 7.0 or fasting blood glucose above or equal to 130 mg/dL": the labs define the state
    r"(?:\bdiabetes(?:\s+mellitus)?\s*:\s*)?(?:\b(?:patients|subjects|participants)\s+with\s+)?\bdiabetes(?:\s+mellitus)?\s+with\s+"
    r"(?:inadequate|poor)\s+(?:glycemic\s+|glycaemic\s+)?control\s*,?\s*(?:based\s+on|defined\s+(?:as|by))\s+(?:either\s+)?|"
    # "Uncontrolled hypertension: SBP >= 160, DBP >= 90": a state the line defines by its blood pressures
    r"\b(?:uncontrolled|poorly\s+controlled)\s+(?:high\s+blood\s+pressure|hypertension)\s*(?::|[(,]?\s*(?=i\.e\.|defined\s+as))",
    re.I)
# "=< 3 x ULN = 135 U/l; for the purpose of this study, the ULN for SGPT is 45 U/l": the protocol fixes the limit,
# so the rule is the absolute value it gives (checked: the multiple times the fixed limit)
_FIXED_ULN = re.compile(
    r"\s*=\s*(?P<value>" + _NUMBER + r")\s*(?P<unit>U/l|U/L|IU/L)\s*;?\s*for\s+the\s+purposes?\s+of\s+this\s+study\s*,?\s*"
    r"(?:the\s+)?ULN\s+is\s+(?P<uln>" + _NUMBER + r")\s*(?:U/l|U/L|IU/L)", re.I)
_CLAUSE_FILLER = re.compile(
    r"(?:\b(?:counts?|levels?|values?|concentrations?|of|is|are|must|should|be|serum|plasma|total|result)\b|:|"
    r"\b(?:with)?in\s+the\s+range\s+(?:of\s+)?(?=\d)|,(?=\s*(?:>=|<=|>|<)))",
    re.I,
)
_METHOD = re.compile(
    r"[(\[]\s*(?:estimated|calculated|measured)\s*[)\]]"
    r"|,?\s*[(\[]?\s*(?:(?:as\s+)?(?:calculated|estimated|determined|measured)\s+)?"
    r"(?:(?:by|using|per|according\s+to|with)\s+)?"
    r"(?:the\s+)?(?:cockcroft[\s-]*(?:and\s+)?gault|cockroft[\s-]*gault|mdrd|ckd[\s-]*epi)"
    r"(?:\s+(?:formula|equation|method))?\s*[)\]]?,?",
    re.I,
)
# "either measured or calculated using a standard formula (eg, Cockcroft and Gault)", "as determined by
# 24-hour collection or estimated by Cockcroft-Gault formula": what `creatinine_clearance` already means
# (a measured clearance, else Cockcroft-Gault), so only read after a creatinine clearance.
_CG = r"cockcroft[\s-]*(?:and\s+)?gault(?:\s+(?:formula|equation|method))?"
_CLEARANCE_METHOD = re.compile(
    r",?\s*(?:either\s+)?(?:as\s+)?(?:measured|determined\s+by\s+(?:a\s+)?24[\s-]*hours?\s+(?:urine\s+)?collection)"
    r"\s+or\s+(?:calculated|estimated)\s+(?:by|using)\s+(?:the\s+)?"
    r"(?:" + _CG + r"|a\s+standard\s+formula\s*\(\s*(?:e\.?g\.?|for\s+example),?\s*" + _CG + r"\s*\))",
    re.I)
_WINDOW = re.compile(
    r"(?:,\s*)?\(?\s*(?:obtained\s+|performed\s+|done\s+)?within\s+(?:the\s+)?(?:last\s+|past\s+)?"
    r"(\d+)\s+(day|week|month)s?"
    r"(?:\s+(?:prior\s+to|before|of|preceding)\s+(?:the\s+)?(?:study\s+)?(?:registration|enrol?lment|randomi[sz]ation|"
    r"treatment\s+initiation|"
    r"screening|study\s+entry|entry|day\s+1|start\s+of\s+(?:study\s+)?treatment|treatment|"
    r"first\s+dose(?:\s+of\s+study\s+"
    r"(?:drug|treatment|medication))?|study\s+(?:drug|treatment)|starting\s+(?:study\s+)?(?:drug|treatment)|"
    r"initiation\s+of\s+(?:study\s+)?(?:drug|treatment)|cycle\s+1,?\s+day\s+1|"
    r"C1D1))?\s*\)?",
    re.I,
)
_TRAILER = re.compile(
    r",?\s*(?:\(?\s*(?:both\s+)?inclusive\s*\)?|at\s+(?:screening|baseline)|at\s+the\s+screening\s+visit"
    # where a QTc was measured: the ECG is what a QTc result is
    r"|on\s+(?:the\s+|a\s+)?(?:screening\s+)?(?:12-lead\s+)?(?:electrocardiogram|ECG|EKG)(?:\s*\(\s*(?:ECG|EKG)\s*\))?"
    # a permission that restricts nothing: the threshold holds with or without a transfusion
    r"|\(\s*(?:(?:red\s+blood\s+cell\s*(?:\[\s*RBC\s*\]\s*)?|RBC\s+)?transfusions?\s+(?:are\s+)?(?:allowed|permitted)"
    r"|may\s+be\s+transfused)\s*\)|with\s+or\s+without\s+(?:a\s+)?transfusions?"
    # "Fasting blood sugar > 160 mg/dL despite standard of supportive care. Patients may start or adjust anti-diabetic
    # medications to meet eligibility": the value as measured, and a permission that restricts nothing
    r"|despite\s+(?:the\s+)?standard\s+(?:of\s+)?supportive\s+care(?:\s*\.\s*(?:patients|subjects|participants)\s+may\s+"
    r"start\s+or\s+adjust\s+anti-?\s*diabetic\s+medications?\s+to\s+meet\s+eligibility)?"
    r"|\(\s*(?:subjects|patients|participants)\s+may\s+be\s+receiving\s+(?:red\s+blood\s+cell\s*(?:\[\s*RBC\s*\]\s*)?|RBC\s+)?"
    r"transfusions?\s+in\s+accordance\s+with\s+institutional\s+guidelines\s*\))", re.I)
_SUBGROUP_WHO = (
    r"(?:(?:for|in)\s+(?:patients|subjects|participants|those|cases)\s+(?:with|who\s+have)\s+"
    r"|if\s+(?:there\s+(?:are|is)\s+)?|"
    r"in\s+the\s+(?:presence|case)\s+of\s+|in\s+case\s+of\s+|with\s+|for\s+|(?:patients|subjects|participants)\s+with\s+)"
    r"(?:known\s+|documented\s+|confirmed\s+)?(?:(?P<liver>(?:liver|hepatic)\s+metastas[ie]s|liver\s+mets|"
    r"metastatic\s+disease\s+(?:to|of|in)\s+the\s+liver)|(?P<bone>bone\s+metastas[ie]s)|"
    r"(?P<gilbert>gilbert'?s?(?:'s)?\s+(?:syndrome|disease)))(?:\s+(?:are|is)\s+present)?")
_SUBGROUP_THRESHOLD = (r"(?P<op>>=|<=|>|<)\s*(?P<number>" + _NUMBER + r")\s*(?:(?:x|\*|times|-?\s*fold)(?:\s*ULN)?|ULN)"
                       r"(?:\s+(?:is|are)\s+(?:allowed|permitted|acceptable))?")
# "(<= 5 x ULN for patients with liver metastases)", "or > 5 x ULN in the presence of liver metastases"
_SUBGROUP = re.compile(
    r"(?:(?:,|;)?\s*(?:for\s+(?:patients|subjects|participants)\s+without|if\s+no|in\s+the\s+absence\s+of|without)\s+"
    r"(?:known\s+)?(?:liver|hepatic)\s+metastas[ie]s)?"
    r"\s*[,;]?\s*[(\[]?\s*(?:or\s+)?" + _SUBGROUP_THRESHOLD + r"\s*,?\s*" + _SUBGROUP_WHO + r"\s*[)\]]?",
    re.I,
)
# "; if liver metastases, <= 5 x ULN"
_SUBGROUP_FIRST = re.compile(
    r"\s*[,;.]?\s*[(\[]?\s*(?:or\s+)?" + _SUBGROUP_WHO + r"\s*[,:]?\s*(?:then\s+)?"
    r"(?:alkaline\s+phosphatases?\s+)?" + _SUBGROUP_THRESHOLD
    + r"(?:\s+(?:is|are)\s+(?:allowed|permitted|acceptable))?\s*[)\]]?", re.I)
_GILBERT = r"(?:known\s+|documented\s+)?gilbert'?s?(?:'s)?\s+(?:syndrome|disease)"
# "; unless patient has Gilbert disease", "except for participants with Gilbert's disease"
_GILBERT_EXEMPT = re.compile(
    r"\s*[,;]?\s*[(\[]?\s*(?:unless|except)\s+(?:for\s+|in\s+)?(?:(?:the\s+)?(?:patients?|participants?|subjects?)\s+"
    r"(?:with|who\s+(?:has|have))\s+|(?:the\s+)?(?:patient|participant|subject)\s+has\s+)?" + _GILBERT + r"\s*[)\]]?",
    re.I)
# "For participants with Gilbert's disease", "(except patients with Gilbert's Syndrome, who must have a
# total bilirubin": the threshold follows
_GILBERT_ALTERNATIVE = re.compile(
    r"\s*[,;.]?\s*(?:[(\[]\s*)?(?:(?:for|in)\s+|except\s+(?:for\s+)?)(?:patients|participants|subjects)\s+with\s+" + _GILBERT
    + r"\s*,?\s*(?:who\s+must\s+have\s+(?:a\s+)?(?:total\s+)?(?:serum\s+)?bilirubin\s*(?:of\s+)?)?", re.I)
# "OR calculated creatinine clearance >= 60 mL/min for patients with creatinine levels > 1.5 x ULN": the
# alternative's premise restates that the first test failed (read, then checked against the first test)
_FALLBACK = re.compile(
    r"\s*,?\s*(?:for|in)\s+(?:patients?|subjects?|participants?)\s+with\s+(?:(?:serum|total|plasma)\s+)*(?P<name>"
    r"creatinine|bilirubin)\s+(?:levels?\s+)?(?P<op>>=|>)\s*(?P<number>" + _NUMBER + r")\s*(?:(?:x|\*|times)\s*)?ULN", re.I)
# "or AST and ALT <= 5 x ULN (for subjects with documented metastatic disease to the liver)": the subgroup of a
# threshold that repeats the labs of the one before it
_SUBGROUP_ONLY = re.compile(r"\s*[(\[]\s*" + _SUBGROUP_WHO + r"\s*[)\]]", re.I)
# "(counts shall be rounded to the nearest tenth. (e.g. 0.96 will be rounded to 1.0 x 109/L))"
_ROUNDING = re.compile(
    r"\s*\(\s*(?:the\s+)?counts?\s+(?:shall|will|should|are\s+to)\s+be\s+rounded\s+to\s+the\s+nearest\s+tenth\s*\.?\s*"
    r"(?:\(\s*e\.?\s*g\.?,?[^()]*\)\s*)?\)", re.I)
# "(< 4.9 mmol/L; prior red blood cell transfusion or recombinant human erythropoietin use is permitted)": a
# permission inside a restatement's bracket, which restricts nothing
_BRACKET_PERMISSION = re.compile(
    r"\s*;\s*(?:prior\s+)?(?:red\s+blood\s+cell\s*(?:\(\s*RBC\s*\)\s*)?|RBC\s+)?transfusions?(?:\s+or\s+(?:recombinant\s+"
    r"human\s+)?erythropoietin)?(?:\s+use)?\s+(?:is|are)\s+(?:permitted|allowed)\s*(?=[)\]])", re.I)
# "(without use of G-CSF 4 weeks prior to enrollment)": a count reached without the drug in that period
_WITHOUT_DRUG = re.compile(
    r"\s*[(\[]\s*without\s+(?:the\s+)?(?:use\s+of|support\s+(?:of|from)|receiving)\s+(?P<drug>[A-Za-z][\w\s-]*?)\s+"
    r"(?:within\s+(?:the\s+)?)?(?P<n>\d+)\s+(?P<unit>day|week|month)s?\s+(?:prior\s+to|before)\s+(?:the\s+)?(?:study\s+)?"
    r"(?:enrol?lment|registration|randomi[sz]ation|screening|first\s+dose)\s*[)\]]\s*\.?", re.I)
# "if with liver metastases", "if without liver metastases": the whole line is for that subgroup
_APPLIES_LIVER = re.compile(r"\s*,?\s*if\s+(with|without)\s+(?:known\s+)?(?:liver|hepatic)\s+metastas[ie]s", re.I)
# "=< 1.5 x ULN for age": the observation's own reference range is the one for the patient's age
_FOR_AGE = re.compile(r"\s*for\s+(?:the\s+patient'?s\s+)?age\b", re.I)
# "INR <= 1.5 (3 if receiving warfarin)": the limit for patients on the anticoagulant (issue 9)
_INR_ON_WARFARIN = re.compile(
    r"\s*[(\[]\s*(?:(?P<op>>=|<=|>|<)\s*)?(?P<number>" + _NUMBER + r")\s+(?:if|for\s+patients|in\s+patients)\s+"
    r"(?:receiving|on|taking|treated\s+with)\s+(?:warfarin|coumadin)(?:\s+therapy)?\s*[)\]]", re.I)
_SUBGROUP_SETS = {
    "liver": ("liver_metastases", 'valueset liver_metastases "secondary malignant neoplasm of liver" = ICD10:C78.7'),
    "gilbert": ("gilbert_syndrome", 'valueset gilbert_syndrome "Gilbert syndrome" = ICD10:E80.4'),
    "warfarin": ("warfarin", 'valueset warfarin "warfarin" = ATC:B01AA03'),
    # WHO C79.5 is bone and bone marrow; ICD-10-CM splits C79.51 bone, C79.52 bone marrow: a record under the WHO
    # code (or an unspecified C79.5) may be a marrow metastasis only and leaves the subgroup unknown
    "bone": ("bone_metastases", 'valueset bone_metastases "secondary malignant neoplasm of bone" = ICD10:C79.51\n'
                                'valueset bone_metastases_unsure "secondary malignant neoplasm of bone or bone marrow: '
                                'bone or marrow not said" = ICD10:C79.5 except ICD10:C79.51, ICD10:C79.52'),
}
# How each subgroup is tested: liver metastases "present" / "in patients with" are a state now (a
# resected or resolved C78.7 record must not earn the looser limit: independent review, round 1);
# Gilbert syndrome is lifelong, any record of it.
_SUBGROUP_TEST = {"liver": "active condition liver_metastases", "gilbert": "condition gilbert_syndrome",
                  "warfarin": "current medication warfarin",
                  "bone": "(active condition bone_metastases or (active condition bone_metastases_unsure and review "
                          "\"is the bone or marrow metastasis on record a bone metastasis?\"))"}


def _skip_lead(text: str, kind: str) -> None:
    """Fail unless ``text`` (the part before the first analyte) is only benign filler.

    An exclusion line may also name the state its labs define ("Inadequate renal function
    defined by", "Abnormal liver function tests, defined as").
    """
    leftover = _LEAD_FILLER_EXCLUSION.sub(" ", text) if kind == "exclusion" else text
    leftover = _LEAD_FILLER.sub(" ", leftover)
    if leftover.strip():
        raise _NotUnderstood(f"words before the first lab: {leftover.strip()!r}")


@dataclass
class _Clause:
    analytes: tuple[str, ...]       # one name, or two for "AST/ALT" sharing a threshold
    joiner: str | None              # "/", "and", "or" between the names
    tests: list[tuple[str, _Bound, _Bound | None]]   # (op, bound, upper)
    tie: str | None                 # "and"/"or" between two tests of the same analyte
    window: str | None
    subgroup: tuple[str, str, _Bound] | None       # (valueset key, op, bound)
    connector: str                  # what follows the clause: "", ",", "and", "or"
    exempt: str | None = None       # "gilbert": patients with Gilbert syndrome are exempt ("unless Gilbert's")
    applies: str | None = None      # "with"/"without": the line is for patients with/without liver metastases
    fallback: tuple[str, str, _Bound] | None = None   # "for patients with creatinine > 1.5 x ULN": (analyte, op, bound)
    subgroup_only: str | None = None  # "(for subjects with metastatic disease to the liver)" with no threshold of its own
    extra: str | None = None        # a test the subgroup adds: "..., with direct bilirubin <= 1.5 x ULN"
    rounding: bool = False          # "counts shall be rounded to the nearest tenth"
    gfr: tuple[str, _Bound] | None = None   # "GFR can also be used in place of ... creatinine clearance"
    without: tuple[str, str] | None = None  # "(without use of G-CSF 4 weeks prior to enrollment)": (drug phrase, window)


# "Total bilirubin normal", "Potassium = in normal range", "... within normal limits" (the whole clause):
# the result inside its own reference range, both ends (issue 9)
_NORMAL = re.compile(r"(?:=\s*)?(?:(?:is|are|must\s+be|should\s+be)\s+)?(?:(?:with)?in\s+(?:the\s+)?"
                     r"(?:institutional\s+)?normal\s+(?:range|limits)|normal)(?=\s*[.;]?\s*$)", re.I)


def _read_comparison(cur: _Cursor, analyte: str) -> tuple[str, _Bound, _Bound | None] | None:
    start = cur.pos
    if cur.take(_NORMAL):
        return "between", _Bound("", "LLN", limit=True), _Bound("", "ULN", limit=True)
    if cur.take(r"between\b"):
        low = _read_bound(cur)
        if low and cur.take(r"and\b"):
            high = _read_bound(cur)
            if high:
                return "between", *_range_units(analyte, low, high)
        cur.pos = start
        return None
    op = cur.take(_OP)
    if op:
        bound = _read_bound(cur)
        if bound is None:
            raise _NotUnderstood("an operator without a threshold")
        return op.group(1), _check_bound(analyte, bound), None
    low = _read_bound(cur, allow_bare_limit=False)
    if low is not None and not low.limit and cur.take(r"(?:-|to)(?=\s*\d)"):
        high = _read_bound(cur, allow_bare_limit=False)
        if high is not None:
            return "between", *_range_units(analyte, low, high)
    cur.pos = start
    cur.take(r"(?:from\s+)")
    low = _read_bound(cur, allow_bare_limit=False)
    if low is not None and cur.take(r"to\b"):
        high = _read_bound(cur, allow_bare_limit=False)
        if high is not None:
            return "between", *_range_units(analyte, low, high)
    cur.pos = start
    return None


def _range_units(analyte: str, low: _Bound, high: _Bound) -> tuple[_Bound, _Bound]:
    if not low.unit and high.unit and not high.limit:
        low = _Bound(low.value, high.unit)
    low, high = _check_bound(analyte, low), _check_bound(analyte, high)
    if _canonical(analyte, low) > _canonical(analyte, high):
        raise _NotUnderstood("a range that runs backwards")
    return low, high


def _read_clause(cur: _Cursor, analytes: tuple[str, ...], joiner: str | None, end: int) -> _Clause:
    """Read the threshold part that follows an analyte name, up to ``end`` (the next analyte)."""
    cur.s = cur.s[:end]
    start = cur.pos
    key = analytes[0]
    while cur.take(_CLAUSE_FILLER) or cur.take(_METHOD):
        pass
    bracketed = cur.take(r"[(\[](?=\s*(?:>=|<=|>|<))")          # a table cell: "Total bilirubin (<= 1.5 x ULN)"
    first = _read_comparison(cur, key)
    if first is None:
        raise _NotUnderstood("no threshold after the lab name")
    if bracketed and not cur.take(r"[)\]]"):
        raise _NotUnderstood("an unclosed bracket")
    tests, tie = [first], None
    for name in analytes[1:]:
        if name != key:
            for op, bound, upper in tests:
                _check_bound(name, bound)
                if upper is not None:
                    _check_bound(name, upper)
    while True:
        mark = cur.pos
        if _SUBGROUP.match(cur.s, cur.pos) or _SUBGROUP_FIRST.match(cur.s, cur.pos):
            break
        # a restatement in other units: "(1,500/mm3)", "[7 mmol/L]", "or 133 umol/L", "(or 1*109/L)"
        restated = cur.take(r"[(\[]\s*(?:or\s+|i\.e\.,?\s+|=\s*)?" + _OP + r"?")
        if restated is None:
            restated = cur.take(r",?\s*(?:or|/)\s+" + _OP + r"?(?=\s*\d)")
        if restated is not None:
            bound = _read_bound(cur, allow_bare_limit=False)
            op = restated.group(1)
            bracketed_restatement = restated.group(0).lstrip(",").strip()[:1] in "(["
            if bracketed_restatement and bound is not None:
                cur.take(_BRACKET_PERMISSION)
            closing = cur.take(r"[)\]]") if bracketed_restatement else True
            if bound is not None and closing and op is None and not bracketed_restatement and tests[-1][1].limit \
                    and not bound.limit and bound.unit and tests[-1][0] != "between" and len(tests) == 1 \
                    and restated.group(0).strip().lstrip(",").strip().lower().startswith("or"):
                # "Serum albumin >= LLN or 3 g/dl": a limit of normal or an absolute value, whichever passes
                tests.append((tests[-1][0], _check_bound(key, bound), None))
                tie = "or"
                continue
            if bound is not None and closing and (op is None or op == tests[-1][0]) and tests[-1][0] != "between":
                if not bound.unit and bound.value:
                    raise _NotUnderstood("a restated threshold without a unit")
                if not _same_threshold(key, tests[-1][1], bound):
                    raise _NotUnderstood("two thresholds that disagree")
                continue
            cur.pos = mark
        # a second comparison of the same analyte: ">= 7 % and <= 10 %"
        second = cur.take(r",?\s*(and|or)\s+(?=(?:>=|<=|>|<))|,\s*(?=(?:>=|<=|>|<))")
        if second is not None and not tests[-1][2]:
            comparison = _read_comparison(cur, key)
            if comparison is None:
                cur.pos = mark
                break
            if not comparison[1].unit and tests[-1][1].unit and not tests[-1][1].limit:
                comparison = (comparison[0], _check_bound(key, _Bound(comparison[1].value, tests[-1][1].unit)), None)
            if not tests[-1][1].unit:
                raise _NotUnderstood("a double bound with the unit on one side only")
            tests.append(comparison)
            word = (second.group(1) or "and").lower()
            if tie not in (None, word):
                raise _NotUnderstood("mixed and/or between bounds")
            tie = word
            continue
        cur.pos = mark
        break
    fixed = cur.take(_FIXED_ULN) if len(tests) == 1 and tests[0][1].limit and tests[0][1].unit == "ULN" else None
    if fixed:
        op, bound, _ = tests[0]
        value, uln = float(_number_text(fixed.group("value"))), float(_number_text(fixed.group("uln")))
        if abs(float(bound.value or 1) * uln - value) > 1e-6:
            raise _NotUnderstood("a fixed ULN that does not give the stated value")
        tests = [(op, _check_bound(key, _Bound(_number_text(fixed.group("value")), "U/L")), None)]
    subgroup = exempt = None
    match = cur.take(_SUBGROUP) or cur.take(_SUBGROUP_FIRST)
    if match:
        kind = "liver" if match.group("liver") else "bone" if match.group("bone") else "gilbert"
        if kind == "bone" and set(analytes) != {"ALP"}:
            raise _NotUnderstood("a bone-metastasis threshold for a lab other than alkaline phosphatase")
        bound = _Bound(_number_text(match.group("number")), "ULN", limit=True)
        subgroup = (kind, match.group("op"), _check_bound(key, bound))
        if len(tests) != 1 or not tests[0][1].limit or tests[0][0] != subgroup[1]:
            raise _NotUnderstood("a subgroup threshold that does not mirror the main one")
        if kind == "gilbert" and not set(analytes) <= {"bilirubin"}:
            raise _NotUnderstood("a Gilbert threshold for a lab other than bilirubin")
    elif set(analytes) <= {"bilirubin"} and len(tests) == 1 and tests[0][0] != "between":
        # issue 9: "For participants with Gilbert's disease <= 3.0 mg/dL", "(except patients with Gilbert's
        # Syndrome, who must have a total bilirubin less than 3.0 mg/dL)": a threshold of its own
        mark = cur.pos
        if cur.take(_GILBERT_ALTERNATIVE):
            comparison = _read_comparison(cur, key)
            if comparison is None or comparison[0] == "between" or \
                    (comparison[0] in (">=", ">")) != (tests[0][0] in (">=", ">")):
                raise _NotUnderstood("a Gilbert threshold that is not a bound like the main one")
            if cur.s[mark:cur.pos].lstrip(" ,;.").startswith(("(", "[")) and not cur.take(r"[)\]]"):
                raise _NotUnderstood("an unclosed bracket")
            subgroup = ("gilbert", comparison[0], comparison[1])
        elif cur.take(_GILBERT_EXEMPT):
            exempt = "gilbert"
    elif analytes == ("INR",) and len(tests) == 1 and tests[0][0] in ("<=", "<") and (
            on_warfarin := cur.take(_INR_ON_WARFARIN)):
        op = on_warfarin.group("op") or tests[0][0]
        if op != tests[0][0]:
            raise _NotUnderstood("a warfarin limit that is not a bound like the main one")
        subgroup = ("warfarin", op, _check_bound("INR", _Bound(_number_text(on_warfarin.group("number")))))
    fallback = subgroup_only = None
    rounding = False
    if subgroup is None and exempt is None:
        match = cur.take(r"premise(\d+)token\b")
        if match:
            fallback = cur.premises[int(match.group(1))]
        elif match := cur.take(_SUBGROUP_ONLY):
            subgroup_only = "liver" if match.group("liver") else "bone" if match.group("bone") else "gilbert"
        elif cur.take(_ROUNDING):
            rounding = True
    without = None
    if match := cur.take(_WITHOUT_DRUG):
        without = (match.group("drug"), f"within {match.group('n')} {match.group('unit').lower()}s")
    clearance = key == "creatinine_clearance" and len(analytes) == 1
    while cur.take(_METHOD) or clearance and cur.take(_CLEARANCE_METHOD) or cur.take(_TRAILER):
        pass
    window = None
    match = cur.take(_WINDOW)
    if match:
        window = f"within {match.group(1)} {match.group(2).lower()}s"
    applies = None
    if subgroup is None and exempt is None:
        premise = cur.take(_APPLIES_LIVER)
        applies = premise.group(1).lower() if premise else None
    relative = all(bound.limit for _, bound, _ in tests)
    while cur.take(_TRAILER) or cur.take(_METHOD) or clearance and cur.take(_CLEARANCE_METHOD) or \
            relative and cur.take(_FOR_AGE):
        if window is None and (match := cur.take(_WINDOW)):
            window = f"within {match.group(1)} {match.group(2).lower()}s"    # "... for age (within 7 days ...)"
    connector = cur.take(r"(?:[,;.]\s*)?(?:(and|or)\b)?\s*[,;.]?"
                         r"(?:\s*\b(?:serum|plasma|blood|total|absolute|peripheral|calculated|estimated|measured|"
                         r"the|a|an)\b)*")
    word = (connector.group(1) or "").lower() if connector else ""
    if not word and connector and connector.group(0).strip():
        word = ","
    if not cur.at_end():
        raise _NotUnderstood(f"unread text: {cur.rest!r}")
    analytes = _by_method(analytes, tests, cur.s[start:])
    return _Clause(analytes, joiner, tests, tie, window, subgroup, word, exempt, applies, fallback, subgroup_only,
                   rounding=rounding, without=without)


def _by_method(analytes: tuple[str, ...], tests, text: str) -> tuple[str, ...]:
    """The catalogue analyte a clearance or eGFR line means, given the formula it names.

    `creatinine_clearance` is a measured clearance, else Cockcroft-Gault; `eGFR` a reported eGFR,
    else CKD-EPI 2021 (docs/language.md). So "eGFR >= 60 mL/min according to the Cockcroft-Gault
    formula" is a creatinine clearance (independent review, round 1), and a clearance or eGFR by MDRD,
    or a clearance by CKD-EPI, is a value neither analyte derives: left for review.
    """
    if not {"eGFR", "creatinine_clearance"} & set(analytes):
        return analytes
    if re.search(r"\bmdrd\b", text, re.I) or \
            "creatinine_clearance" in analytes and re.search(r"ckd[\s-]*epi", text, re.I):
        raise _NotUnderstood("a clearance or eGFR by a formula the catalogue does not derive")
    if "eGFR" in analytes and re.search(r"cockc?roft", text, re.I):
        if len(analytes) != 1 or any("1.73" in (bound.unit or "") or upper is not None and "1.73" in (upper.unit or "")
                                     for _, bound, upper in tests):
            raise _NotUnderstood("an eGFR by Cockcroft-Gault per 1.73 m2")
        return ("creatinine_clearance",)
    return analytes


# "(QTcB = QT/RR ½)": the formula restated after its name
_QTC_FORMULA = re.compile(
    r"\s*\(\s*(?:QTcB\s*=\s*QT\s*/\s*\(?RR\)?\s*(?:½|1/2|\^\s*\(?(?:½|1/2|0\.5)\)?)"
    r"|QTcF\s*=\s*QT\s*/\s*\(?RR\)?\s*(?:⅓|1/3|\^\s*\(?(?:⅓|1/3)\)?))\s*\)", re.I)


# "blood pressure (BP) > 140/90": systolic above 140 or diastolic above 90 (a floor on either excludes);
# "BP <= 140/90": both at or under
_BP_PAIR = re.compile(r"\b(?:blood\s+pressure\s*(?:\(\s*BP\s*\))?|BP)\s*(?:of\s+)?(>=|>|<=|<)\s*(\d{2,3})\s*/\s*(\d{2,3})"
                      r"\s*(?:mm\s*hg\b)?", re.I)


def _bp_pair(m: re.Match) -> str:
    op, sbp, dbp = m.groups()
    glue = "or" if op.startswith(">") else "and"
    return f"systolic blood pressure {op} {sbp} mmHg {glue} diastolic blood pressure {op} {dbp} mmHg"


# "measured or calculated creatinine clearance (glomerular filtration rate [GFR] can also be used in place of
# creatinine or creatinine clearance [CrCl]) >= 60 mL/min": a GFR passes as the clearance does
_GFR_ALTERNATIVE = re.compile(
    r"\s*\(\s*(?:glomerular\s+filtration\s+rate\s*[(\[]\s*GFR\s*[)\]]|GFR)\s+can\s+also\s+be\s+used\s+in\s+place\s+of\s+"
    r"creatinine\s+or\s+creatinine\s+clearance\s*(?:[(\[]\s*CrCl\s*[)\]])?\s*\)", re.I)
_MEASURED_OR_CALCULATED = re.compile(r"\b(?:measured|calculated)\s+or\s+(?:measured|calculated)\s+(?=creatinine\s+clearance)",
                                     re.I)
# "(in patients with known Gilbert Syndrome, a total bilirubin <= 3.0 x ULN, with direct bilirubin <= 1.5 x ULN)",
# "(except patients with Gilbert's Syndrome, who must have a total bilirubin less than 3.0 mg/dL)": a threshold
# of its own for the Gilbert subgroup, which names bilirubin again
_GILBERT_BLOCK = re.compile(
    r"\s*[,;.]?\s*[(\[]\s*(?:except\s+(?:for\s+)?|(?:for|in)\s+)(?:patients|participants|subjects)\s+with\s+" + _GILBERT
    + r"\s*,?\s*(?:who\s+must\s+have\s+)?(?:an?\s+)?(?:total\s+)?(?:serum\s+)?bilirubin\s*(?:level\s+)?(?:of\s+)?"
    r"(?P<op>>=|<=|>|<)\s*(?P<bound>[^,;()\[\]]+?)"
    r"(?:\s*,?\s*(?:with|and)\s+(?:a\s+)?direct\s+bilirubin\s*(?P<dop><=|<)\s*(?P<dbound>[^,;()\[\]]+?))?\s*[)\]]", re.I)


def _bound_text(analyte: str, text: str) -> _Bound:
    cur = _Cursor(text)
    bound = _read_bound(cur)
    if bound is None or not cur.at_end():
        raise _NotUnderstood(f"an unreadable threshold {text!r}")
    return _check_bound(analyte, bound)


def _lab_clauses(text: str, kind: str) -> tuple[list[_Clause], str | None, bool]:
    s = _normalise(text)
    gfr = bool(_GFR_ALTERNATIVE.search(s))
    s = _MEASURED_OR_CALCULATED.sub("", _GFR_ALTERNATIVE.sub(" ", s))
    s = _remove_alias_parentheses(_QTC_FORMULA.sub("", _BP_PAIR.sub(_bp_pair, s)))
    gilbert = _GILBERT_BLOCK.search(s)
    if gilbert:
        s = s[:gilbert.start()] + " " + s[gilbert.end():]
    premises = []
    # the premise names its lab again ("for patients with creatinine levels > 1.5 x ULN"): a token stands for it, so
    # that the name is not read as the next lab of the line
    def _premise(match: re.Match) -> str:
        bound = _Bound(_number_text(match.group("number")), "ULN", limit=True)
        premises.append((_analyte_of(_ANALYTE_RE.fullmatch(match.group("name"))), match.group("op"), bound))
        return f" premise{len(premises) - 1}token "
    s = _FALLBACK.sub(_premise, s)
    mentions = list(_ANALYTE_RE.finditer(s))
    if not mentions:
        raise _NotUnderstood("no lab named")
    lead = s[:mentions[0].start()]
    lead_window = None
    match = _WINDOW.search(lead)
    if match:
        lead_window = f"within {match.group(1)} {match.group(2).lower()}s"
        lead = lead[:match.start()] + " " + lead[match.end():]
    _skip_lead(lead, kind)
    if lead.count("(") > lead.count(")"):       # "Severe renal impairment (serum creatinine > 3.0 mg/dL)"
        closing = re.search(r"\)\s*\.?\s*$", s)
        if closing is None or closing.start() < mentions[-1].end():
            raise _NotUnderstood("an unclosed bracket")
        s = s[:closing.start()]
    clauses: list[_Clause] = []
    i = 0
    while i < len(mentions):
        names = list(_names(_analyte_of(mentions[i])))
        joiner = "/" if len(names) > 1 else None
        commas = False
        j = i
        while j + 1 < len(mentions):
            between = s[mentions[j].end():mentions[j + 1].start()]
            link = re.fullmatch(r"\s*,?\s*(and\s*/\s*or|/|and|or|&|(?<=,)\s*)\s*", between, re.I)
            if link is None:
                break
            following = _names(_analyte_of(mentions[j + 1]))
            j += 1
            if link.group(1) == "/" and following == _names(_analyte_of(mentions[j - 1])):
                continue                    # "AST/SGOT": two names of one lab
            if not link.group(1).strip():   # "AST, ALT and ALP <= 3 x ULN": a list, joined by its last word
                commas = True
                names.extend(following)
                continue
            word = re.sub(r"\s+", "", link.group(1).lower()).replace("&", "and")
            if joiner not in (None, word):
                raise _NotUnderstood("mixed and/or between lab names")
            joiner = word
            names.extend(following)
        if commas and joiner is None:
            raise _NotUnderstood("a list of lab names without 'and'/'or'")
        if len(set(names)) != len(names):
            raise _NotUnderstood("a lab named twice")
        end = mentions[j + 1].start() if j + 1 < len(mentions) else len(s)
        cur = _Cursor(s)
        cur.pos = mentions[j].end()
        cur.premises = premises
        clauses.append(_read_clause(cur, tuple(names), joiner, end))
        if gilbert and end >= gilbert.start() and mentions[j].end() <= gilbert.start():
            # the Gilbert threshold follows this clause (it was cut out above)
            clause = clauses[-1]
            if set(names) != {"bilirubin"} or clause.subgroup or clause.exempt or len(clause.tests) != 1 \
                    or clause.tests[0][0] not in ("<=", "<"):
                raise _NotUnderstood("a Gilbert threshold after something other than a bilirubin ceiling")
            clause.subgroup = ("gilbert", gilbert.group("op"), _bound_text("bilirubin", gilbert.group("bound")))
            if clause.subgroup[1] not in ("<=", "<"):
                raise _NotUnderstood("a Gilbert threshold that is not a ceiling")
            if gilbert.group("dop"):
                bound = _bound_text("direct_bilirubin", gilbert.group("dbound"))
                clause.extra = f"direct_bilirubin {gilbert.group('dop')} {bound.text()}"
            gilbert = None
        i = j + 1
    if gilbert:
        raise _NotUnderstood("a Gilbert threshold without its bilirubin")
    return clauses, lead_window, gfr


def _clause_expr(clause: _Clause, kind: str, window: str | None) -> tuple[str, list[str]]:
    """The rule text of one clause, and the value sets it needs."""
    names = clause.analytes
    if len(names) > 1:
        # "AST/ALT <= 3 x ULN": both in an inclusion; either in an exclusion. "and"/"or" only
        # where unambiguous: "AST and ALT <=" (inclusion), "AST or ALT >" (exclusion).
        if clause.joiner == "/":
            shared = "and" if kind == "inclusion" else "or"
        elif (clause.joiner, kind) in (("and", "inclusion"), ("or", "exclusion"), ("and/or", "exclusion")):
            shared = "or" if kind == "exclusion" else "and"
        else:
            raise _NotUnderstood(f"'{clause.joiner}' between lab names in an {kind} line")
    else:
        shared = "and"

    def tests_for(bounds: list[tuple[str, _Bound, _Bound | None]]) -> str:
        parts = []
        for name in names:
            tests = [_Test(name, op, b, u, window) for op, b, u in bounds]
            inner = f" {clause.tie} ".join(t.text() for t in tests)
            parts.append(f"({inner})" if len(tests) > 1 and (len(names) > 1 or clause.tie == "or") else inner)
        joined = f" {shared} ".join(parts)
        return joined

    for name in names:
        for op, bound, upper in clause.tests:
            _check_direction(name, op, kind)
    body = tests_for(clause.tests)
    if clause.exempt:
        _, declaration = _SUBGROUP_SETS[clause.exempt]
        test = _SUBGROUP_TEST[clause.exempt]
        if kind == "inclusion":
            return f"{body} or {test}", [declaration]
        return f"{body} and not {test}", [declaration]
    if clause.gfr:
        op, bound = clause.gfr
        body += " or " + _Test("eGFR", op, bound, None, window).text()
    if clause.subgroup is None:
        return body, []
    key, op, bound = clause.subgroup
    _, declaration = _SUBGROUP_SETS[key]
    special = tests_for([(op, bound, None)])
    if clause.extra:
        special += f" and {clause.extra}{f' {window}' if window else ''}"
    return f"if {_SUBGROUP_TEST[key]} then ({special}) else ({body})", [declaration]


def _check_direction(analyte: str, op: str, kind: str) -> None:
    if op == "between":
        return
    floor = op in (">=", ">")
    if analyte in _LOW_IS_BAD and floor != (kind == "inclusion"):
        raise _NotUnderstood(f"{analyte} {op} in an {kind} line reads backwards")
    if analyte in _HIGH_IS_BAD and floor == (kind == "inclusion"):
        raise _NotUnderstood(f"{analyte} {op} in an {kind} line reads backwards")


def _merge_alternatives(clauses: list[_Clause], kind: str) -> list[_Clause]:
    """Fold what a clause says about the one before it into that clause (issue 9):

    * "creatinine <= 1.5 x ULN OR CrCl >= 60 mL/min for patients with creatinine > 1.5 x ULN": the premise
      restates that the first test failed, so `creatinine <= 1.5 x ULN or creatinine_clearance >= 60 mL/min`
      says it (a patient whose creatinine is within the first limit passes either way);
    * "AST and ALT <= 2.5 x ULN or AST and ALT <= 5 x ULN (for subjects with ... liver metastases)": the second
      threshold is the subgroup's, as in "(<= 5 x ULN for patients with liver metastases)".
    """
    out: list[_Clause] = []
    for clause in clauses:
        if clause.fallback or clause.subgroup_only:
            previous = out[-1] if out else None
            if previous is None or previous.connector != "or" or len(previous.tests) != 1:
                raise _NotUnderstood("an alternative's premise without the test it restates")
            op, bound, _ = previous.tests[0]
            if clause.fallback:
                analyte, premise_op, premise = clause.fallback
                if previous.analytes != (analyte,) or not bound.limit or \
                        (op, premise_op) not in (("<=", ">"), ("<", ">=")) or \
                        float(bound.value or 1) != float(premise.value or 1):
                    raise _NotUnderstood("an alternative's premise that is not the first test failing")
                clause.fallback = None
            else:
                if set(previous.analytes) != set(clause.analytes) or previous.subgroup or previous.exempt or \
                        len(clause.tests) != 1 or clause.tests[0][0] != op or not bound.limit or \
                        not clause.tests[0][1].limit or clause.window and previous.window:
                    raise _NotUnderstood("a subgroup threshold that does not mirror the main one")
                previous.subgroup = (clause.subgroup_only, op, clause.tests[0][1])
                previous.connector = clause.connector
                previous.window = previous.window or clause.window
                continue
        out.append(clause)
    for clause in out:
        if clause.rounding:
            clause.tests = [_rounded(op, bound, upper) for op, bound, upper in clause.tests]
    return out


def _rounded(op: str, bound: _Bound, upper: _Bound | None) -> tuple[str, _Bound, _Bound | None]:
    """A threshold on a count rounded to the nearest tenth (half up), as a threshold on the count itself:
    rounded < 1.0 is count < 0.95; rounded <= 1.0 is count < 1.05."""
    if upper is not None or bound.limit or not re.fullmatch(r"\d+\.\d", bound.value):
        raise _NotUnderstood("a rounding rule for a threshold that is not in tenths")
    value = float(bound.value)
    new_op, shifted = {"<": ("<", value - 0.05), "<=": ("<", value + 0.05), ">": (">=", value + 0.05),
                       ">=": (">=", value - 0.05)}[op]
    return new_op, _Bound(f"{shifted:.2f}", bound.unit), None


def _draft_labs(text: str, kind: str) -> Draft | None:
    """Lab and vital thresholds: "ANC >= 1,500/mm3, platelets >= 100 x 10^9/L", "ALT <= 2.5 x ULN"."""
    clauses, lead_window, gfr = _lab_clauses(text, kind)
    clauses = _merge_alternatives(clauses, kind)
    if kind == "exclusion" and any(upper is not None and upper.limit and bound.limit
                                   for c in clauses for _, bound, upper in c.tests):
        raise _NotUnderstood("a reference range in an exclusion: 'normal' is what admits")
    if clauses[-1].connector in ("and", "or"):
        raise _NotUnderstood("the line ends in 'and'/'or': it continues in the next line")
    connectors = {c.connector for c in clauses[:-1]}
    windows = [c.window for c in clauses]
    if lead_window and any(windows):
        raise _NotUnderstood("two look-back windows")
    common = lead_window
    if len(clauses) > 1 and windows[-1] and not any(windows[:-1]):
        common = windows[-1]      # "ANC ..., platelets ... within 14 days": the window closes the list
        for clause in clauses:
            clause.window = None
    if connectors - {"", ",", "and", "or"}:
        raise _NotUnderstood("unknown connector")
    if kind == "inclusion":
        if connectors <= {"", ",", "and"}:
            glue = "and"
        elif connectors == {"or"}:
            glue = "or"
        else:
            raise _NotUnderstood("a mix of 'and' and 'or' between labs")
    else:
        if connectors <= {"", ",", "or"}:
            glue = "or"
        else:
            raise _NotUnderstood("'and' between labs in an exclusion line")
    parts, valuesets = [], []
    comment = None
    if gfr:
        clearance = [c for c in clauses if c.analytes == ("creatinine_clearance",) and len(c.tests) == 1]
        if len(clearance) != 1 or kind != "inclusion" or glue != "or":
            raise _NotUnderstood("a GFR alternative without one clearance alternative")
        op, bound, _ = clearance[0].tests[0]
        clearance[0].gfr = (op, bound)
        comment = ("'GFR can also be used in place of creatinine or creatinine clearance': a GFR (eGFR: reported, else "
                   "CKD-EPI 2021) at the clearance's threshold passes too")
    for clause in clauses:
        expr, sets = _clause_expr(clause, kind, clause.window or common)
        valuesets += sets
        needs_parens = len(clauses) > 1 and (" or " in expr or " and " in expr or expr.startswith("if "))
        parts.append(f"({expr})" if needs_parens and (glue == "and" and " or " in expr or expr.startswith("if ")
                                                      or glue == "or" and " and " in expr) else expr)
    rule = f" {glue} ".join(parts)
    withouts = [c.without for c in clauses if c.without]
    if withouts:
        # "ANC >= 1500/mm3 (without use of G-CSF 4 weeks prior to enrollment)": and no such drug in the period
        if len(clauses) != 1 or kind != "inclusion":
            raise _NotUnderstood("a drug-free period with more than one lab")
        from .lexicon import lexicon
        from .records import _medication_rule
        phrase, window = withouts[0]
        found = lexicon().match("medication", phrase, 0)
        if found is None or found.end != len(phrase):
            raise _NotUnderstood(f"a drug the lexicon does not hold: {phrase!r}")
        medication = _medication_rule([(found.entries, False)], "medication {} " + window)
        rule = f"{rule} and not ({medication.rule})" if " or " in medication.rule else f"{rule} and not {medication.rule}"
        valuesets += list(medication.valuesets.values())
    premises = [c.applies for c in clauses if c.applies]
    if premises:
        # "AST/ALT =< 2.5 x ULN if with liver metastases": a criterion for that subgroup only
        if len(clauses) != 1 or clauses[0].subgroup or clauses[0].exempt:
            raise _NotUnderstood("a subgroup premise with more than one lab clause")
        _, declaration = _SUBGROUP_SETS["liver"]
        premise = _SUBGROUP_TEST["liver"] if premises[0] == "with" else f"not {_SUBGROUP_TEST['liver']}"
        rule = f"applies if {premise}: {rule}"
        valuesets.append(declaration)
    return Draft(rule, {d.split()[1]: d for decl in valuesets for d in decl.splitlines()}, "labs", comment)


# ---------------------------------------------------------------- age
_AGE_LEAD = re.compile(
    r"(?:\b(?:male|female|men|women|and|or|patients?|subjects?|participants?|adults?|individuals?|persons?|"
    r"volunteers?|healthy|must|be|are|is|of|either|sex|gender|a|an)\b|[:,;.\-/])",
    re.I,
)
_AGE_TAIL = re.compile(
    r"(?:\s*(?:,|;|\.)?\s*(?:\(?\s*(?:inclusive|included)\s*\)?|at\s+(?:the\s+)?(?:time\s+of\s+)?(?:signing\s+(?:the\s+)?|the\s+)?"
    r"(?:informed\s+consent(?:\s+form)?(?:\s*\(\s*ICF\s*\))?|ICF|consent|screening|screening\s+visit|enrol?lment|"
    r"registration|randomi[sz]ation)"
    r"|on\s+the\s+day\s+of\s+signing\s+(?:the\s+)?informed\s+consent(?:\s+form)?|old|of\s+age"
    r"|\(\s*at\s+the\s+time\s+of\s+(?:giving|signing)\s+(?:the\s+)?(?:informed\s+)?consent\s*\))\s*)*[.;,]?\s*$",
    re.I,
)


def _draft_age(text: str, kind: str) -> Draft | None:
    """Age in the text: "Age >= 18 years", "aged 18 to 75 years", "18 years of age or older"."""
    s = _normalise(text)
    unit_re = r"(years?|yrs?|months?)"
    forms = [
        # age >= 18 [years] [and <= 75 years]
        (r"\b(?:age|aged)\s*(?:of|is|must\s+be)?\s*:?\s*" + _OP + r"\s*(\d+)\s*" + unit_re
         + r"?(?:\s+(?:old|of\s+age))?"
         r"(?:\s*(?:and|,)\s*" + _OP + r"\s*(\d+)\s*" + unit_re + r"?)?", "ops"),
        # 18 years of age or older / 18 years or older
        (r"\b(?:aged?\s+)?(\d+)\s*" + unit_re
         + r"\s*(?:of\s+age|old)?\s*(?:or|and)\s+(older|above|over|greater|younger|less|under)",
         "words"),
        # >= 18 years of age / >= 18 years old
        (r"(?<![A-Za-z])" + _OP + r"\s*(\d+)\s*" + unit_re + r"\s*(?:of\s+age|old)\b", "of-age"),
        # age 18 to 75 years / aged between 18 and 75 years / age: 18-75
        (r"\b(?:age|aged)\s*(?:of|is|must\s+be)?\s*:?\s*(?:between\s+)?(\d+)\s*" + unit_re
         + r"?\s*(?:-|to|and)\s*(\d+)\s*"
         + unit_re + r"?(?:\s+(?:old|of\s+age))?", "range"),
        # 18 to 79 years of age / 18-65 years old
        (r"^\s*(?:aged?\s+)?(\d+)\s*" + unit_re + r"?\s*(?:-|to)\s*(\d+)\s*" + unit_re + r"\s*(?:of\s+age|old)", "range"),
        # between 18 and 75 years of age
        (r"\bbetween\s+(\d+)\s*" + unit_re + r"?\s*(?:and|-|to)\s*(\d+)\s*" + unit_re + r"\s*(?:of\s+age|old)",
         "range"),
        # "Male or female; >= 20 years (at the time of giving consent)": a bound in years and nothing else but
        # sex words before it (the lead and tail checks below)
        (r"(?<![A-Za-z0-9])" + _OP + r"\s*(\d+)\s*(years?|yrs?)\b", "of-age"),
    ]
    for pattern, form in forms:
        match = re.search(pattern, s, re.I)
        if not match:
            continue
        lead, tail = s[:match.start()], s[match.end():]
        sex = _age_sex(lead)
        if _AGE_LEAD.sub(" ", lead).strip() or not _AGE_TAIL.fullmatch(tail):
            return None
        g = match.groups()
        if form == "ops":
            op1, n1, u1, op2, n2, u2 = g
            tests = [(op1, n1, u1)] + ([(op2, n2, u2 or u1)] if op2 else [])
        elif form == "words":
            n1, u1, word = g
            tests = [(">=" if word.lower() in ("older", "above", "over", "greater") else "<=", n1, u1)]
        elif form == "of-age":
            op1, n1, u1 = g
            tests = [(op1, n1, u1)]
        else:
            n1, u1, n2, u2 = g
            unit = u2 or u1
            if u1 and u2 and _age_unit(u1) != _age_unit(u2):
                return None
            if int(n1) > int(n2):
                return None
            rule = f"age between {n1} and {n2} {_age_unit(unit)}"
            return Draft(_with_sex(rule, sex, kind), family="age")
        parts = [f"age {op} {n} {_age_unit(u or 'years')}" for op, n, u in tests]
        return Draft(_with_sex(" and ".join(parts), sex, kind), family="age")
    return None


def _age_unit(unit: str | None) -> str:
    return "months" if unit and unit.lower().startswith("month") else "years"


def _age_sex(lead: str) -> str | None:
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", lead)}
    female = bool(words & {"female", "females", "women", "woman"})
    male = bool(words & {"male", "males", "men", "man"})
    if female and not male:
        return "female"
    if male and not female:
        return "male"
    return None


def _with_sex(rule: str, sex: str | None, kind: str) -> str:
    if sex is None:
        return rule
    if kind == "exclusion":
        raise _NotUnderstood("a sex restriction in an exclusion line")
    return f"sex is {sex} and {rule}"


# ---------------------------------------------------------------- dated history, conditions, medications
# The lexicon-driven drafters live in records.py (issue 9); dated events ("Myocardial infarction
# within 6 months") are one of their forms.
from .records import draft_conditions as _draft_history, draft_medications as _draft_medications  # noqa: E402
from .records import draft_procedures as _draft_procedures  # noqa: E402


# ---------------------------------------------------------------- performance status (issue 9)
# A scale named once, then one value: "ECOG performance status 0-1", "KPS >= 70%", "Zubrod PS <= 2".
_SCALES = [
    ("ECOG", r"(?:ecog|zubrod|(?-i:WHO))(?:\s*[(\[]\s*(?:ecog|zubrod|(?-i:WHO))\s*[)\]])?"),
    ("Karnofsky", r"(?:karnofsky|kps)(?:\s*[(\[]\s*kps\s*[)\]])?"),
    ("Lansky", r"(?:lansky|lps)(?:\s*[(\[]\s*lps\s*[)\]])?"),
]
_SCALE_RE = re.compile("|".join(f"(?P<s{i}>\\b{p}(?![A-Za-z]))" for i, (_, p) in enumerate(_SCALES)), re.I)
_SCALE_TOP = {"ECOG": 5, "Karnofsky": 100, "Lansky": 100}
_PS_FILLER = re.compile(
    r"\b(?:patients?|subjects?|participants?|must|have|has|be|being|is|a|an|of|the|score|grade|status|"
    r"performance|performance-status|scale|ps|on|disease|related|according|to)\b|[:,;.\-()\[\]]",
    re.I)
_PS_VALUE = re.compile(
    r"(?:(?P<op>>=|<=|>|<)\s*(?P<n>\d+)\s*(?P<pct>%)?"
    r"|(?:between\s+)?(?P<lo>\d+)\s*%?\s*(?:-|to|and)\s*(?P<hi>\d+)\s*(?P<pct2>%)?"
    r"|(?P<list>\d+(?:\s*,\s*\d+)*\s*,?\s*or\s+\d+))"
    r"(?P<window>\s*,?\s*\(?\s*within\s+(?:the\s+)?(?:last\s+|past\s+)?(?P<wn>\d+)\s+(?P<wu>day|week|month)s?"
    r"(?:\s+(?:prior\s+to|before|of)\s+(?:the\s+)?(?:study\s+)?(?:registration|enrol?lment|randomi[sz]ation|"
    r"screening|study\s+entry|entry|day\s+1|treatment|first\s+dose))?\s*\)?)?",
    re.I)


# "(patients > 16 years of age)" after a Karnofsky/Lansky value: the scale for an age group (issue 9)
_PS_AGE_GROUP = re.compile(
    r"\s*\(\s*(?:for\s+)?(?:patients|subjects|participants|children|those)\s+(?P<op>>=|<=|>|<)\s*(?P<n>\d+)\s*"
    r"(?:years?|yrs?)(?:\s+(?:of\s+age|old))?\s*\)", re.I)
# Karnofsky points an ECOG grade corresponds to (Oken et al. 1982; the usual conversion table): ECOG 0 = KPS
# 90-100, 1 = 70-80, 2 = 50-60, 3 = 30-40, 4 = 10-20. "ECOG =< 2 (Karnofsky >= 60%)" restates one floor in
# the other scale only where the Karnofsky floor lies in the band of the ECOG ceiling.
_ECOG_KPS_BAND = {0: (90, 100), 1: (70, 80), 2: (50, 60), 3: (30, 40), 4: (10, 20)}
_ECOG_WITH_KPS = re.compile(
    r"\s*(?:(?:the\s+)?(?:patients?|subjects?|participants?)\s+(?:must\s+)?(?:have|has)\s+(?:an?\s+)?)?ECOG\s+"
    r"(?:performance\s+status\s+|PS\s+)?(?:of\s+)?(?:(?P<eop><=|<)\s*(?P<e>[0-4])|0\s*(?:-|to)\s*(?P<erange>[0-4]))\s*"
    r"[(\[]\s*(?:or\s+)?(?:karnofsky|KPS)(?:\s+performance\s+status)?\s*(?:of\s+)?(?P<kop>>=|>)\s*(?P<k>\d{2,3})\s*%?\s*[)\]]"
    r"\s*[.;]?\s*", re.I)


def _draft_ecog_with_karnofsky(s: str, kind: str) -> Draft | None:
    """"ECOG performance status =< 2 (Karnofsky >= 60%)": one requirement on either scale (a site records one)."""
    m = _ECOG_WITH_KPS.fullmatch(s)
    if m is None or kind != "inclusion":
        return None
    ecog = int(m["e"]) - (1 if m["eop"] == "<" else 0) if m["e"] else int(m["erange"])
    karnofsky = int(m["k"]) + (10 if m["kop"] == ">" else 0)
    low, high = _ECOG_KPS_BAND.get(ecog, (None, None))
    if low is None or not low <= karnofsky <= high:
        return None
    return Draft(f"ECOG <= {ecog} or Karnofsky >= {karnofsky} %", family="scores",
                 comment="the ECOG ceiling and the Karnofsky floor in brackets say one thing on two scales: either "
                         "recorded score meeting it passes")


def _draft_performance(text: str, kind: str) -> Draft | None:
    """Performance status: "ECOG performance status 0-1" -> ``ECOG <= 1``; "KPS >= 70%" -> ``Karnofsky >= 70 %``."""
    s = re.sub(r"\(\s*(?:see\s+)?appendix\s+[A-Z0-9]+\s*\)|\bsee\s+appendix\s+[A-Z0-9]+|\bat\s+(?:the\s+)?"
               r"(?:screening|baseline)(?:\s+visit)?\b", " ", _normalise(text), flags=re.I)
    s = re.sub(r"\beastern\s+co-?\s*operative\s+oncology(?:\s+group)?\b", "ECOG", s, flags=re.I)
    # "... according to the Eastern Cooperative Oncology at the time of signing the informed consent": the score at
    # screening, the latest in the window
    s = re.sub(r"\s+at\s+the\s+time\s+of\s+(?:signing|giving)\s+(?:the\s+)?(?:informed\s+)?consent(?:\s+form)?\s*\.?\s*$", " ",
               s, flags=re.I)
    s = re.sub(r"\bECOG\s*\(\s*ECOG\s*\)", "ECOG", s, flags=re.I)
    two = _draft_ecog_with_karnofsky(s, kind)
    if two is not None:
        return two
    age_group = _PS_AGE_GROUP.search(s)
    if age_group:
        s = s[:age_group.start()] + " " + s[age_group.end():]
    scales = list(_SCALE_RE.finditer(s))
    if len({_SCALES[int(m.lastgroup[1:])][0] for m in scales}) != 1:
        return None
    scale = _SCALES[int(scales[0].lastgroup[1:])][0]
    if scale == "ECOG" and not re.search(r"\b(?:ECOG|zubrod)\b", s, re.I) and \
            not re.search(r"\bWHO\s+performance\s+status\b", s, re.I):
        return None
    values = list(_PS_VALUE.finditer(s))
    if len(values) != 1:
        return None
    value = values[0]
    rest = s[:value.start()] + " " + s[value.end():]
    rest = _SCALE_RE.sub(" ", rest)
    if _PS_FILLER.sub(" ", rest).strip():
        return None
    top = _SCALE_TOP[scale]
    pct = " %" if (value["pct"] or value["pct2"]) and scale != "ECOG" else ""
    if (value["pct"] or value["pct2"]) and scale == "ECOG":
        return None
    if value["op"]:
        op, n = value["op"], int(value["n"])
        if n > top:
            return None
        floor = op in (">=", ">")
        if (floor != (scale != "ECOG")) != (kind == "exclusion"):
            return None                  # reads backwards (an inclusion "ECOG >= 2"): leave it to a person
        rule = f"{scale} {op} {n}{pct}"
    else:
        if kind != "inclusion":
            return None
        if value["list"]:
            numbers = [int(x) for x in re.findall(r"\d+", value["list"])]
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                return None
            lo, hi = numbers[0], numbers[-1]
        else:
            lo, hi = int(value["lo"]), int(value["hi"])
        if not 0 <= lo < hi <= top:
            return None
        if scale == "ECOG":
            rule = f"ECOG <= {hi}" if lo == 0 else f"ECOG between {lo} and {hi}"
        else:
            rule = f"{scale} >= {lo}{pct}" if hi == top else f"{scale} between {lo} and {hi}"
    if value["window"]:
        rule += f" within {value['wn']} {value['wu'].lower()}s"
    if age_group:
        # "Karnofsky 50-100% (patients > 16 years of age)", "Lansky 50-100% (patients =< 16 years of age)": the
        # scale is the one for that age group, the criterion applies to it alone
        if scale == "ECOG":
            return None
        rule = f"applies if age {age_group['op']} {age_group['n']} years: {rule}"
    return Draft(rule, family="scores")


# ---------------------------------------------------------------- NYHA class (issue 9)
_ROMAN = {"1": 1, "2": 2, "3": 3, "4": 4, "i": 1, "ii": 2, "iii": 3, "iv": 4}
_ROMAN_OUT = {1: "I", 2: "II", 3: "III", 4: "IV"}
_NYHA_NAME = re.compile(r"\b(?:new\s+york\s+heart\s+association(?:'s)?(?:\s*\(\s*NYHA\b(?:\s+classification)?\s*\)?)?"
                        r"|NYHA\b)", re.I)
_CLASS = r"(iv|iii|ii|i|[1-4])\b"
_NYHA_VALUE = re.compile(
    r"(?:(?P<op>>=|>)\s*(?:NYHA\s*)?(?:class|grade)?\s*" + _CLASS.replace("(", "(?P<n>", 1) + r""
    r"|(?:class|grade)?\s*" + _CLASS.replace("(", "(?P<m>", 1) + r"\s+or\s+(?:greater|higher|worse|above)"
    r"|(?:class|grade|classification)?\s*(?P<list>" + _CLASS + r"(?:\s*(?:,|/|-|to|or|and)\s*(?:or\s+)?" + _CLASS + r")+))",
    re.I)
_NYHA_FILLER = re.compile(
    r"\b(?:(?:congestive\s+)?(?:heart|cardiac)\s+failure|CHF|class(?:ification)?|grade|functional|system|as|defined|by|"
    r"according|to|the|s|guidelines|has|have|decompensated|pre-existing|symptomatic|heart|failure|at|screening|see|"
    r"appendix\s+\w+|of|patients?|with|a)\b|[:,;.()\[\]'-]",
    re.I)


def _draft_nyha(text: str, kind: str) -> Draft | None:
    """Heart failure by NYHA class, as a dated score: "CHF NYHA class III-IV" -> ``NYHA >= III``.

    Only a class that runs up to IV (a floor) is read: "Class II, III or IV", "grade 3 or greater",
    ">= grade 3", "III/IV". In an inclusion, "No NYHA II-IV heart failure" is its negation.
    """
    s = _normalise(text)
    negated = re.match(r"\s*no\s+", s, re.I)
    if bool(negated) != (kind == "inclusion"):
        return None
    if negated:
        s = s[negated.end():]
    if len(_NYHA_NAME.findall(s)) != 1:
        return None
    values = list(_NYHA_VALUE.finditer(_NYHA_NAME.sub(" NYHA ", s)))
    s = _NYHA_NAME.sub(" NYHA ", s)
    if len(values) != 1:
        return None
    value = values[0]
    rest = (s[:value.start()] + " " + s[value.end():]).replace("NYHA", " ")
    if _NYHA_FILLER.sub(" ", rest).strip():
        return None
    if value["op"]:
        low = _ROMAN[value["n"].lower()] + (1 if value["op"] == ">" else 0)
    elif value["m"]:
        low = _ROMAN[value["m"].lower()]
    else:
        classes = [_ROMAN[c.lower()] for c in re.findall(r"iv|iii|ii|i|[1-4]", value["list"], re.I)]
        if classes[-1] != 4 or classes != sorted(classes) or len(set(classes)) != len(classes):
            return None
        if re.search(r"-|to", value["list"]) is None and classes != list(range(classes[0], 5)):
            return None
        low = classes[0]
    if not 2 <= low <= 4:
        return None
    # The text defines the state by the NYHA class alone, so the rule is the class alone: a coded
    # heart-failure diagnosis as a precondition would pass a patient with a recorded NYHA III whose
    # heart failure is coded elsewhere (I42, I25.5) or not at all (independent review, round 1).
    # `any`: a class at or above the floor in the window (the rule set's lab window) excludes, even if
    # a later one is lower; no NYHA result in the window is unknown.
    rule = f"any NYHA >= {_ROMAN_OUT[low]}"
    return Draft(f"not {rule}" if negated else rule, family="scores")


# ---------------------------------------------------------------- Child-Pugh class (issue 9)
_CHILD_PUGH = r"child[\s-]*pugh(?:[\s-]*turcotte)?"
_CHILD_PUGH_VALUE = re.compile(
    _CHILD_PUGH + r"\s*(?:class(?:ification)?\s+|score\s+)?(?P<low>[ABC])\s*(?:or|/|-|to|and)\s*(?P<high>[ABC])\b", re.I)
_CHILD_PUGH_FILLER = re.compile(
    r"\b(?:currently|current|active|clinically|significant|hepatic|liver|impairment|dysfunction|insufficiency|"
    r"moderate|severe|to|according|the|classification|class|defined|as|by|of|with|patients?|subjects?|known|"
    r"or|a|an|has|have)\b|" + _CHILD_PUGH + r"|[:,;.()\[\]-]", re.I)


def _draft_child_pugh(text: str, kind: str) -> Draft | None:
    """"Moderate to severe hepatic impairment (Child-Pugh B or C)" (an exclusion) -> ``Child_Pugh >= B``: the
    latest Child-Pugh class in the rule set's lab window (a dated score, like NYHA)."""
    if kind != "exclusion":
        return None
    s = _normalise(text)
    values = list(_CHILD_PUGH_VALUE.finditer(s))
    if len(values) != 1:
        return None
    value = values[0]
    low, high = value["low"].upper(), value["high"].upper()
    if high != "C" or low not in ("B",):
        return None
    rest = s[:value.start()] + " " + s[value.end():]
    if _CHILD_PUGH_FILLER.sub(" ", rest).strip():
        return None
    return Draft("Child_Pugh >= B", family="scores")


# ---------------------------------------------------------------- investigational agents (issue 9)
_INVESTIGATIONAL_AGENT = r"(?:(?:an?|any)\s+)?(?:other\s+)?investigational\s+(?:agents?|drugs?|products?|medications?|compounds?)"
_INVESTIGATIONAL_TAIL = (
    r"\s*(?:(?:prior\s+to|before|of)\s+(?:the\s+)?(?:study\s+)?(?:registration|enrol?lment|randomi[sz]ation|"
    r"screening|study\s+entry|entry|day\s+1|start\s+of\s+(?:study\s+)?treatment|"
    r"first\s+dose(?:\s+of\s+(?:the\s+)?study\s+(?:drug|treatment|medication))?|study\s+(?:drug|treatment)))?"
    r"\s*[.;]?\s*$")
_INVESTIGATIONAL_FORMS = [
    # exclusion: "Received an investigational agent within 4 weeks prior to enrollment"
    ("exclusion", False, re.compile(
        r"\s*(?:(?:has\s+)?(?:received|use\s+of|treatment\s+with|receipt\s+of|prior|previous)\s+)?"
        + _INVESTIGATIONAL_AGENT + r"\s*,?\s*within\s+(?:the\s+)?(?:last\s+|past\s+|previous\s+)?"
        r"(\d+)\s+(day|week|month)s?" + _INVESTIGATIONAL_TAIL, re.I)),
    # inclusion: "At least 30 days since prior investigational drugs", "No investigational agents within 4 weeks"
    ("inclusion", True, re.compile(
        r"\s*(?:>=|at\s+least)\s+(\d+)\s+(day|week|month)s?\s+since\s+(?:prior|previous|last)\s+(?:dose\s+of\s+)?"
        + _INVESTIGATIONAL_AGENT + r"\s*[.;]?\s*$", re.I)),
    ("inclusion", True, re.compile(
        r"\s*no\s+(?:(?:prior|previous)\s+)?(?:treatment\s+with\s+)?" + _INVESTIGATIONAL_AGENT
        + r"\s*,?\s*within\s+(?:the\s+)?(?:last\s+|past\s+|previous\s+)?(\d+)\s+(day|week|month)s?"
        + _INVESTIGATIONAL_TAIL, re.I)),
]


def _draft_investigational(text: str, kind: str) -> Draft | None:
    """"Received an investigational agent within 4 weeks prior to enrollment" -> ``investigational medication
    within 4 weeks``; in an inclusion line "At least 30 days since prior investigational drugs" -> ``not
    investigational medication within 30 days`` (no exposure in the window, as for a washout)."""
    s = _normalise(text)
    for form_kind, negated, pattern in _INVESTIGATIONAL_FORMS:
        match = pattern.fullmatch(s) if form_kind == kind else None
        if match:
            rule = f"investigational medication within {match.group(1)} {match.group(2).lower()}s"
            return Draft(f"not {rule}" if negated else rule, family="investigational")
    return None


# ---------------------------------------------------------------- the drafter
_DRAFTERS = (_draft_age, _draft_history, _draft_medications, _draft_procedures, _draft_performance, _draft_nyha, _draft_child_pugh,
             _draft_investigational, _draft_labs)
_CONTEXT_OK = re.compile(
    r"(?:\b(?:adequate|normal|organ|organs|and|bone|marrow|reserve|function|functions|hematologic(?:al)?|"
    r"haematologic(?:al)?|hematopoietic|haematopoietic|hematopoetic|hepatic|renal|liver|kidney|laboratory|lab|"
    r"labs|values?|tests?|results?|parameters?|defined|as|follows|following|below|by|indicated|the|required|"
    r"must|be|have|meet|patients?|subjects?|participants?|all|of|criteria|status|system|blood|counts?|"
    r"characteristics|patient|disease|within|normal|limits|acceptable|shown|evidenced|demonstrated|including|"
    r"screening|at|considered|eligible|inclusion|enrol?lment|enrolled|in|this|study|only|if|met|are|meeting|may|"
    r"will|subject|has|who|biological|hematological|haematological|a|an)\b|[:,;.\-()])",
    re.I,
)
_CONTEXT_OK_EXCLUSION = re.compile(
    r"\b(?:inadequate|insufficient|any|abnormal|abnormalities|laboratory|biochemical|excluded|exclusion|from|not|"
    r"ineligible)\b",
    re.I)


# Topical headers over cardiac exclusions ("Cardiac co-morbidity:", "Patients with pre-existing cardiac
# conditions:"): a category whose items are its instances; each item excludes on its own
_CONTEXT_OK_CARDIAC = re.compile(r"\b(?:cardiac|cardiovascular|co[\s-]?morbidit(?:y|ies)|pre[\s-]?existing|conditions?|with)\b",
                                 re.I)
# "The subject has uncontrolled, significant intercurrent or recent illness including, but not limited to, the
# following conditions: Other clinically significant disorders such as:": the items are instances, each excluding
# on its own (as under the cardiac topical headers)
_CONTEXT_OK_ILLNESS = re.compile(
    r"\b(?:subject|has|uncontrolled|significant|intercurrent|or|recent|illness(?:es)?|including|but|not|limited|to|the|"
    r"following|conditions?|other|clinically|disorders?|diseases?|such|as|cardiovascular|gastrointestinal|hepatic)\b",
    re.I)
# "Any of the following biochemical values within 14 days prior to inclusion and prior to the first dose of study
# drug :": a window for the lab items of the list
_CONTEXT_WINDOW = re.compile(
    r"\bwithin\s+(\d+)\s+(day|week|month)s?((?:\s+(?:and\s+)?(?:prior\s+to|before)\s+(?:the\s+)?(?:study\s+)?"
    r"(?:inclusion|enrol?lment|registration|randomi[sz]ation|screening|first\s+dose\s+of\s+(?:the\s+)?study\s+"
    r"(?:drug|treatment)))*)", re.I)
# An inclusion-section header whose items exclude: "Patient history: patients who have any of the following
# are NOT eligible:"
_NOT_ELIGIBLE_HEADER = re.compile(
    r"\s*(?:patient\s+history\s*:\s*)?(?:patients|subjects|participants)\s+(?:who\s+have|with)\s+any\s+of\s+the\s+"
    r"following\s+(?:conditions\s+)?(?:are|will\s+be)\s+(?:not\s+eligible|ineligible|excluded)\s*:?\s*"
    # an organ-system sub-heading under it ("Cardiac and vascular disorders:"): a category of the same list
    r"(?:(?:cardiac|vascular|cardiovascular|and|disorders?|diseases?|gastrointestinal|\(GI\)|hepatic|renal|"
    r"pulmonary|heme|central|nervous|system|\(CNS\)|\s)+:\s*)?", re.I)


# A restricting heading that names its subgroup by a lab (issue 9): "Additional inclusion criteria for subjects with
# abnormal liver function determined by elevation of serum total bilirubin are:", "Additional exclusion criteria for
# subjects with elevation of serum bilirubin > UNL:" -> `applies if bilirubin > ULN: ...`
_LAB_HEADING = re.compile(
    r"\s*additional\s+(?:inclusion|exclusion)\s+criteria\s+for\s+(?:subjects|patients|participants)\s+with\s+"
    r"(?:abnormal\s+(?:liver|hepatic)\s+function\s+(?:determined|defined)\s+by\s+)?(?:an?\s+)?elevat(?:ion|ed)\s+(?:of\s+)?"
    r"(?:serum\s+)?(?:total\s+)?bilirubin(?:\s*(?:>|above)\s*(?:the\s+)?(?:ULN|UNL|upper\s+limit\s+of\s+normal))?"
    r"(?:\s+are)?\s*:?\s*", re.I)


def heading_premise(heading: str) -> str | None:
    """The premise of a restricting heading that names its subgroup by a lab, or None (the heading blocks drafting)."""
    if _LAB_HEADING.fullmatch(heading):
        return "bilirubin > ULN"
    return None


# Sub-headings of sponsor protocol templates that registry text glues to the end of the bullet before them
# ("CrCl < 60 ml/min by Cockcroft-Gault Formula Prior Therapy or Surgery", NCT02655458): not part of the criterion
_GLUED_HEADING = re.compile(
    r"\s+(?:Target Disease(?: Exceptions)?|Medical History and Concurrent Diseases|Physical and Laboratory Test Findings|"
    r"Allergies and Adverse Drug Reactions?|Prior Therapy or Surgery|Prohibited Treatments and/or Therapies|"
    r"Sex and Reproductive Status|Age and Reproductive Status|Other Exclusion Criteria)\s*$")


def draft_rule(text: str, kind: str, context: str | None = None) -> Draft | None:
    """Read one criterion line; return a draft rule, or None when it cannot be read with confidence.

    ``kind`` is ``"inclusion"`` (the rule states what the patient must meet) or ``"exclusion"``
    (the rule states what excludes). ``context`` is the ``...:`` header the line was split from;
    a line is only drafted under a header that adds no condition of its own ("Adequate organ
    function as defined below:"). Nothing is drafted from a line with a part the drafter does
    not understand: the whole line must be read, or it stays for review.
    """
    text = _GLUED_HEADING.sub("", text)
    both = re.fullmatch(r"(.+?\byears?\s+(?:of\s+age|old))\s+with\s+(?:a\s+diagnosis\s+of\s+)?(?:an?\s+)?(.*\bperformance\s+status\b.*)",
                        text, re.I | re.S)
    if both and context is None:
        # "Male or female >=18 years of age with a diagnosis of Performance Status score of 0 or 1 according to the
        # Eastern Cooperative Oncology ...": an age and a performance status, both required
        age, score = _draft_age(both.group(1), kind), _draft_performance(both.group(2), kind)
        if kind == "inclusion" and age is not None and score is not None:
            return Draft(f"{age.rule} and {score.rule}", family="scores")
    if context is not None and kind == "inclusion" and _NOT_ELIGIBLE_HEADER.fullmatch(context):
        # "Patient history: patients who have any of the following are NOT eligible:" in an inclusion
        # section: each item is an exclusion, so the criterion is that the patient does not have it
        draft = draft_rule(text, "exclusion")
        if draft is None or draft.family not in ("history", "labs", "scores") or \
                draft.rule.startswith(("applies if", "if ")):
            return None
        compound = " or " in draft.rule or " and " in draft.rule
        return Draft(f"not ({draft.rule})" if compound else f"not {draft.rule}",
                     draft.valuesets, draft.family)
    if context is not None:
        window = _CONTEXT_WINDOW.search(context)
        if window and not re.search(r"\bwithin\b", text, re.I):
            # the header's window applies to its lab items: read as a window in the line's lead
            draft = draft_rule(f"Within {window.group(1)} {window.group(2).lower()}s: {text}", kind,
                               context[:window.start()] + " " + context[window.end():])
            return draft if draft is not None and draft.family == "labs" and " within " in draft.rule else None
        leftover = _CONTEXT_OK.sub(" ", context)
        if kind == "exclusion":
            leftover = _CONTEXT_OK_EXCLUSION.sub(" ", leftover)
            leftover = _CONTEXT_OK_CARDIAC.sub(" ", leftover)
            leftover = _CONTEXT_OK_ILLNESS.sub(" ", leftover) if re.search(
                r"\bincluding,?\s+but\s+not\s+limited\s+to\b", context, re.I) else leftover
        if leftover.strip():
            return None
    for drafter in _DRAFTERS:
        try:
            draft = drafter(text, kind)
        except _NotUnderstood:
            draft = None
        if draft is not None:
            return draft
    return None


# ---------------------------------------------------------------- constructs the drafter leaves to a person
# Lines needing a construct the drafter only reads in its plain forms (a score and nothing else, a
# clearance with its threshold, an exposure window) stay `review`, with a comment naming the
# construct the author will need (docs/language.md, issue 9).
_HINTS = [
    (re.compile(r"\b(?:ECOG|Eastern\s+Cooperative\s+Oncology\s+Group|WHO\s+performance|Zubrod)\b", re.I),
     "ECOG performance status as a dated score result: `ECOG <= N` (the rule set's lab window) "
     "or `ECOG <= N within N days`"),
    (re.compile(r"\b(?:Karnofsky|KPS|Lansky)\b", re.I),
     "Karnofsky/Lansky performance status as a dated score result: `Karnofsky >= N %`, `Lansky >= N`"),
    (re.compile(r"\bcock(?:c)?roft[\s-]*(?:and\s+)?gault\b", re.I),
     "creatinine clearance, derived by Cockcroft-Gault when none is measured: `creatinine_clearance >= N mL/min`"),
    (re.compile(r"\b(?:wash[\s-]?out|half[\s-]?lives)\b|"
                r"(?:at\s+least|>=|≥|more\s+than|greater\s+than|>)\s*\d+\s*(?:days?|weeks?|months?)\s+"
                r"(?:since|from|after|prior\s+to|before)\b", re.I),
     "a washout: `medication X within N` (any exposure in the window) or `medication X stopped at least N ago` "
     "(a course that ended), with a value set for X"),
    (re.compile(r"\binvestigational\b", re.I),
     "`investigational medication within N` (or `current investigational medication`)"),
    (re.compile(r"\b(?:BMI|body\s+mass\s+index)\b", re.I),
     "BMI, derived from weight and height when none is recorded: `BMI >= N kg/m2`"),
]


def construct_hint(text: str) -> str | None:
    """For a line left for review: the construct it needs (the drafter reads only its plain forms)."""
    for pattern, hint in _HINTS:
        if pattern.search(text):
            return "intended construct: " + hint
    return None
