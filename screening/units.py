"""The one unit registry: lab spellings and UCUM codes, read once and turned into linear conversions.

Every unit string (from a rule file or a patient record) is parsed once into a :class:`Unit`:
its dimension and the scale and offset that take a value into SI base units. Conversions
between units are then one multiply and one add, done when a rule set is compiled or a
patient is loaded, never while criteria are evaluated.

Lab spellings (``10^9/L``, ``/mm3``, ``cells/mm3``, ``IU/L``, ``mmHg``, ``µmol/L``,
``mL/min/1.73m2`` ...) are rewritten into UCUM before parsing; UCUM itself is read by
``ucumvert`` onto a pint registry.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache

from .errors import UnitProblem

# Lab spellings that are not UCUM, mapped to the UCUM code they mean (compared after
# whitespace removal; keys are lower-cased unless the case carries meaning).
_SPELLINGS: dict[str, str] = {
    "iu/l": "U/L",  # enzyme activity: the International Unit of an enzyme is 1 umol/min = 1 U
    # IU per millilitre is how antibodies, hormones and vitamins are reported (anti-dsDNA IU/mL):
    # the WHO International Unit [IU], not the enzyme unit (enzymes are reported per litre).
    "iu/ml": "[IU]/mL",
    "mu/l": "mU/L",
    "meq/l": "meq/L",  # converted only for analytes with a known valence (see analytes.py)
    "miu/ml": "m[IU]/mL",
    "uiu/ml": "u[IU]/mL",
    "mmhg": "mm[Hg]",
    "cmh2o": "cm[H2O]",
    "degc": "Cel",
    "°c": "Cel",
    "c": "Cel",
    "degf": "[degF]",
    "°f": "[degF]",
    "f": "[degF]",
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "in": "[in_i]",
    "inch": "[in_i]",
    "inches": "[in_i]",
    "ft": "[ft_i]",
    "bpm": "/min",
    "beats/min": "/min",
    "breaths/min": "/min",
    "sec": "s",
    "secs": "s",
    "seconds": "s",
    "msec": "ms",
    "gm/dl": "g/dL",
    "gm/l": "g/L",
    "mg/24h": "mg/(24.h)",
    "mg/24hr": "mg/(24.h)",
    "g/24h": "g/(24.h)",
    "g/24hr": "g/(24.h)",
    "g/day": "g/d",
    "mg/day": "mg/d",
    "mg/g": "mg/g",
    "bil/l": "10*9/L",
    "k/ul": "10*3/uL",
    "k/mm3": "10*3/mm3",
    "mil/ul": "10*6/uL",
    "m/ul": "10*6/uL",
    "(score)": "{score}",
    "mmol/mol": "mmol/mol",
    "ratio": "1",
    "{ratio}": "1",
    "1": "1",
    "mg/mmol": "mg/mmol",
}

# Spellings whose case carries the meaning: French and German labs write counts as G/L (giga per
# litre, 10^9/L) and T/L (tera per litre, 10^12/L, red cells); UCUM would read G as gauss and T as
# tesla. g/L stays grams per litre.
_CASED_SPELLINGS: dict[str, str] = {"G/L": "10*9/L", "G/l": "10*9/L", "T/L": "10*12/L", "T/l": "10*12/L"}

# Words that may prefix a count unit and carry no dimension: "cells/mm3" is "/mm3".
_COUNT_WORDS = re.compile(r"^\{?(?:cells?|platelets?|neutrophils?|lymphocytes?|leukocytes?|wbc|rbc)\}?(?=/)", re.I)
_POWER_OF_TEN = re.compile(r"^(?:[x×*]\s*)?10\s*(?:\^|\*|\*\*|e)\s*(-?\d+)")
_CUBIC = re.compile(r"(mm|cm|m|dm)\^?3\b")
# "109/L", "x 103/uL": a power of ten whose superscript was lost in copying (UCUM would read 109 per litre)
_LOST_SUPERSCRIPT = re.compile(r"^[x×*]?10(?:3|6|9|12)(?:cells)?/")
_BSA = re.compile(r"/1\.73\s*(?:m2|m\^2|m²|_m2|\{1\.73_m2\}|sq\.?\s*m)$", re.I)


@dataclass(frozen=True, slots=True)
class Unit:
    """A parsed unit: its text as written, the UCUM code it was read as, and its SI mapping.

    ``value * scale + offset`` is the value in SI base units of ``dimension``.
    """

    text: str
    ucum: str
    dimension: str
    scale: float
    offset: float = 0.0

    @property
    def is_dimensionless(self) -> bool:
        return self.dimension == "dimensionless"


@lru_cache(maxsize=1)
def registry():
    """The process-wide pint registry with UCUM definitions (built on first use)."""
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


def _snap(x: float, digits: int = 15) -> float:
    """Round away binary noise such as 0.009999999999999998 so decimal factors stay decimal."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def snap_value(x: float) -> float:
    """Round a converted value to 12 significant digits.

    Applied to every converted threshold and patient value, so that equal quantities written
    in different units (100 x 10^9/L and 100,000/mm3) compare equal instead of differing in
    the last binary digit.
    """
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.12g}")


# A UCUM atom in square brackets ([mclg'U], [in_i]) or an annotation ({1.73_m2}) is a name, not
# lab spelling: the letter rewrites below must not reach into it ("[mclg'U]" is not "[uLg'U]").
_BRACKETED = re.compile(r"(\[[^\[\]]*\]|\{[^{}]*\})")


def _outside_brackets(s: str, rewrite) -> str:
    parts = _BRACKETED.split(s)
    return "".join(part if i % 2 else rewrite(part) for i, part in enumerate(parts))


def _lab_letters(s: str) -> str:
    s = re.sub(r"(?i)mcg", "ug", s)
    s = re.sub(r"(?i)mcl", "uL", s)
    s = re.sub(r"(?i)mcmol", "umol", s)
    s = re.sub(r"(?i)litre|liter", "L", s)
    s = re.sub(r"(?<![A-Za-z])l(?![A-Za-z])", "L", s)  # "mg/dl" -> "mg/dL"
    return s.replace("dl", "dL").replace("ml", "mL")


# Superscript exponents as registries and lab reports paste them: 10⁹/L, 10¹²/L, /mm³, m², 10⁻³
_SUPERSCRIPT = re.compile("[⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_SUPERSCRIPT_DIGITS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def _superscripts(s: str) -> str:
    """``10⁹/L`` -> ``10^9/L``, ``mm³`` -> ``mm^3``: an exponent written as superscript is an exponent."""
    return _SUPERSCRIPT.sub(lambda m: "^" + m.group().translate(_SUPERSCRIPT_DIGITS), s)


def to_ucum(text: str) -> str:
    """Rewrite a lab spelling of a unit into UCUM (UCUM codes pass through unchanged)."""
    s = _superscripts(text.strip().replace("μ", "u").replace("µ", "u"))
    s = re.sub(r"\s+", "", s)
    if not s:
        return "1"
    if s in _CASED_SPELLINGS:
        return _CASED_SPELLINGS[s]
    key = s.lower()
    if key in _SPELLINGS:
        return _SPELLINGS[key]
    s = _outside_brackets(s, _lab_letters)
    s = _BSA.sub("/{1.73_m2}", s)
    s = _COUNT_WORDS.sub("", s)
    s = re.sub(r"^\{?cells?\}?$", "1", s)
    m = _POWER_OF_TEN.match(s)
    if m:
        s = f"10*{m.group(1)}" + s[m.end():]
    s = s.replace("^", "")
    s = _CUBIC.sub(lambda mm: f"{mm.group(1)}3", s)
    s = s.replace("mmHg", "mm[Hg]").replace("IU/", "U/") if s.startswith("IU") else s.replace("mmHg", "mm[Hg]")
    if s.startswith("/"):
        return s
    return s


# UCUM atoms whose value in ucumvert's registry is not UCUM's definition, with UCUM's definition
# (ucum-essence.xml) and whether the atom is metric (takes a prefix). ucumvert maps these onto
# pint units that carry other values: pint's m[Hg] is 133.322387415 kPa (UCUM: 133.3220 kPa),
# its [mu_0] and [eps_0] are CODATA measurements (UCUM: 4.[pi].10*-7 N/A2 and 8.854187817e-12
# F/m), its inch of mercury/water are at 60 degF (and [PRU], [wood'U] use its m[Hg]), g% is
# read as gram times percent (a mass; UCUM: g/dL) and [Cal] as the small calorie (UCUM: the
# nutrition Calorie, 1 kcal). tests/test_units.py checks every atom against ucum-essence.xml.
_UCUM_DEFINITIONS: dict[str, tuple[str, bool]] = {
    "m[Hg]": ("133322.Pa", True),
    "g%": ("g/dL", True),
    "[mu_0]": ("4.[pi].10*-7.N/A2", True),
    "[eps_0]": ("8854187817.10*-21.F/m", True),
    "[in_i'Hg]": ("m[Hg].[in_i]/m", False),
    "[in_i'H2O]": ("m[H2O].[in_i]/m", False),
    "[PRU]": ("mm[Hg].s/mL", False),
    "[wood'U]": ("mm[Hg].min/L", False),
    "[Cal]": ("kcal", False),
}
_PREFIX_EXPONENTS = {
    "Y": 24, "Z": 21, "E": 18, "P": 15, "T": 12, "G": 9, "M": 6, "k": 3, "h": 2, "da": 1,
    "d": -1, "c": -2, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15, "a": -18, "z": -21, "y": -24,
}
# An annotation is ASCII 33-126 other than braces (UCUM 2.1, section 12).
_ANNOTATION_TEXT = r"\{[!-z|~]*\}"
# A whole term (at the start, or after "." "/" "(", and ending the code or followed by an
# operator): [prefix] atom [exponent] [annotation].
_CORRECTED_ATOM = re.compile(
    r"(?<![^./(])(?P<prefix>da|[YZEPTGMkhdcmunpfazy])?"
    r"(?P<atom>" + "|".join(re.escape(code) for code in _UCUM_DEFINITIONS) + r")"
    r"(?P<exponent>[+-]?\d+)?(?:" + _ANNOTATION_TEXT + r")?(?=$|[./)])"
)
# An annotation standing alone as a term means 1 ("{score}", "mL/min/{1.73_m2}"); one attached
# to a unit ("10*3{rbc}", "kg{body_wt}") is left to the parser, which drops it. (Replacing an
# attached annotation by "1" would glue a digit onto the unit: "10*3{rbc}" -> "10*31".)
_STANDALONE_ANNOTATION = re.compile(r"(?<![^./(])" + _ANNOTATION_TEXT + r"(?=$|[./)])")


def _corrected_atom(match: re.Match) -> str:
    definition, metric = _UCUM_DEFINITIONS[match["atom"]]
    prefix = match["prefix"]
    if prefix and not metric:
        return match[0]  # not UCUM: left for the parser to reject
    factor = f"10*{_PREFIX_EXPONENTS[prefix]}." if prefix else ""
    term = f"({factor}{_CORRECTED_ATOM.sub(_corrected_atom, definition)})"  # [PRU] is in mm[Hg]
    power = int(match["exponent"] or 1)
    if power == 0:
        return "1"
    product = ".".join([term] * abs(power))
    return f"({product})" if power > 0 else f"(1/({product}))"


def _exact_definitions(ucum: str) -> str:
    """The UCUM code as it is handed to the parser.

    A standalone annotation such as ``{score}`` or ``{1.73_m2}`` means 1 in UCUM, and the atoms of
    ``_UCUM_DEFINITIONS`` (m[Hg] = 133.3220 kPa exactly, where pint's value differs in the seventh
    digit, ...) are replaced by UCUM's own definitions. Annotations are not touched inside.
    """
    ucum = _STANDALONE_ANNOTATION.sub("1", ucum)
    return _outside_brackets_and_annotations(ucum)


def _outside_brackets_and_annotations(ucum: str) -> str:
    # the atoms to correct contain brackets themselves, so only annotations are split off here
    parts = re.split(r"(\{[^{}]*\})", ucum)
    return "".join(part if i % 2 else _CORRECTED_ATOM.sub(_corrected_atom, part) for i, part in enumerate(parts))


def _dimension_key(quantity) -> str:
    """A canonical text for a dimension, independent of the order the unit was written in."""
    dims = dict(quantity.dimensionality)
    if not dims:
        return "dimensionless"
    parts = []
    for name, power in sorted(dims.items()):
        power = int(power) if float(power).is_integer() else power
        parts.append(name if power == 1 else f"{name}^{power}")
    return ".".join(parts)


@lru_cache(maxsize=4096)
def parse_unit(text: str) -> Unit:
    """Parse a unit as labs or UCUM write it. Raises :class:`UnitProblem` if it is not a unit.

    A spelling read before (in this process or, through the per-user unit table of
    :mod:`screening.cache`, in an earlier one) is not read again: the pint registry is built only
    when a spelling is new.
    """
    entry = _unit_table().get(text)
    if entry is not None:
        found = _from_entry(text, entry)
        if isinstance(found, Unit):
            return found
        if isinstance(found, UnitProblem):
            raise found
    try:
        unit = _parse_with_registry(text)
    except UnitProblem as exc:
        _remember(text, ["problem", exc.message, exc.hint])
        raise
    _remember(text, ["unit", unit.ucum, unit.dimension, unit.scale, unit.offset])
    return unit


def _parse_with_registry(text: str) -> Unit:
    if _LOST_SUPERSCRIPT.match(re.sub(r"\s+", "", text)):
        raise UnitProblem(f"ambiguous unit {text!r}", hint=_unit_hint(text))
    ucum = to_ucum(text)
    reg = registry()
    try:
        quantity = reg.from_ucum(_exact_definitions(ucum))
    except Exception as exc:  # ucumvert raises lark and pint errors of many kinds
        raise UnitProblem(f"unknown unit {text!r}", hint=_unit_hint(text)) from exc
    try:
        units = quantity.units
        magnitude = float(quantity.magnitude)
        zero = reg.Quantity(0.0, units).to_base_units()
        hundred = reg.Quantity(100.0, units).to_base_units()
    except Exception as exc:
        raise UnitProblem(f"unit {text!r} cannot be converted to SI base units") from exc
    offset = float(zero.magnitude)
    scale = (float(hundred.magnitude) - offset) / 100.0 * magnitude
    return Unit(text=text, ucum=ucum, dimension=_dimension_key(quantity), scale=_snap(scale), offset=_snap(offset))


# ---- the unit table: spellings read in earlier runs (see screening.cache and docs/caching.md)
UNIT_TABLE_MAX = 20_000  # entries kept; patient data with endless distinct spellings cannot grow it further
UNIT_TEXT_MAX = 200  # longer spellings are read every time, never stored
_table: dict | None = None
_new_entries: dict[str, list] = {}


def unit_table_key() -> str:
    """What the table was computed from: this module's code and the installed pint and ucumvert."""
    from pathlib import Path

    from .cache import digest, installed_identity

    return digest(Path(__file__).read_bytes(), installed_identity("pint"), installed_identity("ucumvert"))


def _unit_table() -> dict:
    global _table
    if _table is None:
        from . import cache

        _table = {}
        if cache.enabled():
            stored = cache.read("units", unit_table_key())
            if isinstance(stored, dict):
                _table = stored
    return _table


def _from_entry(text: str, entry) -> "Unit | UnitProblem | None":
    """A table entry back into a Unit (or the problem), None for anything not of the written shape."""
    if not isinstance(entry, list) or not entry:
        return None
    if entry[0] == "unit" and len(entry) == 5:
        _, ucum, dimension, scale, offset = entry
        if (isinstance(ucum, str) and isinstance(dimension, str) and type(scale) is float
                and type(offset) is float):
            return Unit(text=text, ucum=ucum, dimension=dimension, scale=scale, offset=offset)
    if entry[0] == "problem" and len(entry) == 3:
        _, message, hint = entry
        if isinstance(message, str) and (hint is None or isinstance(hint, str)):
            return UnitProblem(message, hint=hint)
    return None


def _remember(text: str, entry: list) -> None:
    from . import cache

    if len(text) > UNIT_TEXT_MAX or not cache.enabled():
        return
    if not _new_entries:
        import atexit

        atexit.register(save_unit_table)
    _new_entries[text] = entry


def save_unit_table() -> None:
    """Add the spellings read in this process to the stored table (best effort; runs at exit)."""
    from . import cache

    if not _new_entries or not cache.enabled():
        return
    key = unit_table_key()
    stored = cache.read("units", key)
    merged = stored if isinstance(stored, dict) else {}
    for text, entry in _new_entries.items():
        if len(merged) >= UNIT_TABLE_MAX:
            break
        merged[text] = entry
    _new_entries.clear()
    cache.write("units", key, merged)


def _unit_hint(text: str) -> str | None:
    compact = re.sub(r"\s+", "", text)
    if re.match(r"^[x×*]?10[3-9]/", compact) or re.match(r"^109", compact):
        return "a lost superscript? write 10^9/L (or 10*9/L) for 'x 10 to the 9th per litre'"
    if compact.lower().endswith("/mm"):
        return "cell counts are per cubic millimetre: /mm3"
    return "write the unit as labs or UCUM do, e.g. mg/dL, umol/L, U/L, 10^9/L, /mm3, mL/min/1.73m2"


@dataclass(frozen=True, slots=True)
class Conversion:
    """A linear map from values in one unit to another: ``value * factor + offset``."""

    factor: float
    offset: float = 0.0

    def apply(self, value: float) -> float:
        scaled = value * self.factor
        if not self.offset:
            return snap_value(scaled)
        # An offset (temperatures) can cancel most of the value, leaving binary noise that a
        # relative rounding keeps (32 degF -> -2.06e-13 Cel). Round at 12 significant digits of
        # the larger of the two terms instead: 32 degF -> 0.0 Cel.
        return _snap_near(scaled + self.offset, max(abs(scaled), abs(self.offset)))


    @property
    def exact(self) -> bool:
        """A multiplication by a power of ten (or by 1): converting loses and adds no precision."""
        if self.offset or self.factor <= 0:
            return False
        exponent = math.log10(self.factor)
        return abs(exponent - round(exponent)) < 1e-12

    def step(self, written_exponent: int) -> int:
        """The decimal exponent a converted value is rounded to (see :meth:`apply_written`), from the
        exponent of the last written digit; computed on a log scale so that no product can overflow."""
        return round(written_exponent + math.log10(abs(self.factor)) - 1e-9)  # ties: the finer place

    def apply_written(self, value: float, text: str | None = None) -> float:
        """Convert a quantity at the precision it was written with (the unit-precision rule).

        The converted value is rounded to the power of ten nearest (on a log scale, ties to the
        finer) to the written resolution carried through the conversion: the unit of the last
        written digit times the factor. 53 mmol/mol (HbA1c) -> 7.00044 % -> 7.00 %; 133 umol/L
        creatinine -> 1.504 mg/dL -> 1.50 mg/dL; 7.0 mmol/L glucose -> 126.1 mg/dL -> 126 mg/dL.
        A conversion by a power of ten (100,000/mm3 -> 100 x 10^9/L) is exact and not rounded.
        """
        converted = self.apply(value)
        if self.exact or converted == 0 or not math.isfinite(converted) or not self.factor:
            return converted
        exponent = self.step(written_exponent(value, text))
        if exponent < math.floor(math.log10(abs(converted))) - 15:
            return converted  # a finer place than a float holds: nothing to round
        rounded = Decimal(repr(converted)).quantize(Decimal(1).scaleb(exponent), rounding=ROUND_HALF_UP)
        return float(rounded) + 0.0


def written_step(value: float, text: str | None = None) -> float:
    """The unit of the last digit of a number as written ("1.50" -> 0.01, "53" -> 1, "4,000" -> 1).

    ``text`` is the number as written in a rule file; without it the shortest form of ``value``
    as read from JSON is used (JSON ``7.0`` is a float and counts one decimal; ``7`` none).
    """
    return 10.0 ** max(-300, min(300, written_exponent(value, text)))


def written_exponent(value: float, text: str | None = None) -> int:
    """The decimal exponent of the last digit of a number as written ("1.50" -> -2, "53" -> 0)."""
    if text is None:
        text = repr(value)
    exponent = Decimal(text.replace(",", "")).as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def _snap_near(x: float, magnitude: float) -> float:
    """Round ``x`` to 12 significant digits of ``magnitude`` (the size of what was added up)."""
    if x == 0 or not math.isfinite(x) or not math.isfinite(magnitude):
        return x
    quantum = Decimal(1).scaleb(math.floor(math.log10(magnitude)) - 11)
    return snap_value(float(Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_EVEN))) + 0.0  # no -0.0


_MASS = "[mass]"
_SUBSTANCE = "[substance]"


_DIMENSION_TERM = re.compile(r"(\[[a-z_]+\])(?:\^(-?\d+))?")


def _dimension_dict(unit: Unit) -> dict[str, float]:
    """The dimension as {base: power}, read back from its canonical text (no registry needed)."""
    if unit.dimension == "dimensionless":
        return {}
    dims: dict[str, float] = {}
    for term in unit.dimension.split("."):
        match = _DIMENSION_TERM.fullmatch(term)
        if match is None:  # a fractional power ("[length]^0.5") has a dot of its own: ask the registry
            return dict(registry().from_ucum(_exact_definitions(unit.ucum)).dimensionality)
        dims[match[1]] = int(match[2]) if match[2] else 1
    return dims


def conversion(source: Unit, target: Unit, molar_mass: float | None = None, analyte: str | None = None) -> Conversion:
    """How to convert values from ``source`` to ``target``.

    Mass and substance concentrations convert through ``molar_mass`` (g/mol); without one,
    or between other dimensions, :class:`UnitProblem` is raised.
    """
    if source.dimension == target.dimension:
        factor = source.scale / target.scale
        offset = (source.offset - target.offset) / target.scale
        return Conversion(_snap(factor), _snap(offset))
    what = f" for {analyte}" if analyte else ""
    src, dst = _dimension_dict(source), _dimension_dict(target)
    ratio = {k: src.get(k, 0) - dst.get(k, 0) for k in set(src) | set(dst)}
    ratio = {k: v for k, v in ratio.items() if v}
    if ratio in ({_MASS: 1, _SUBSTANCE: -1}, {_MASS: -1, _SUBSTANCE: 1}):
        if molar_mass is None:
            raise UnitProblem(
                f"cannot convert {source.text} to {target.text}{what}: a mass <-> substance conversion "
                "needs the analyte's molar mass, and none is known",
            )
        kg_per_mol = molar_mass / 1000.0
        # SI base value in source -> SI base value in target dimension -> target unit
        per_base = kg_per_mol if ratio.get(_SUBSTANCE) == 1 else 1.0 / kg_per_mol
        return Conversion(_snap(source.scale * per_base / target.scale))
    raise UnitProblem(
        f"incompatible units{what}: {source.text} ({source.dimension}) cannot be compared with "
        f"{target.text} ({target.dimension})"
    )


def convert(value: float, source: str, target: str, molar_mass: float | None = None) -> float:
    """Convert ``value`` between two unit strings (a convenience for tests and one-off use)."""
    return conversion(parse_unit(source), parse_unit(target), molar_mass).apply(value)
