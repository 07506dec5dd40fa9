"""The analyte catalogue: lab and vital-sign names, their LOINC codes, units and molar masses.

Loaded once from ``screening/data/analytes.toml``. Each analyte knows how to convert a value
from any compatible unit into its catalogue unit (through its molar mass for mass <-> substance,
and through the IFCC/NGSP master equation for HbA1c), so that patient values and thresholds are
converted once, when they are loaded or compiled.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from .errors import UnitProblem
from .units import Conversion, Unit, conversion, parse_unit


@dataclass(frozen=True)
class Analyte:
    """A lab test or vital sign the language can name."""

    name: str
    display: str
    loinc: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    unit_text: str | None = None
    molar_mass: float | None = None
    kind: str = "quantity"
    ifcc_to_ngsp: tuple[float, float] | None = None
    valence: int | None = None
    local: tuple[str, ...] = ()  # LOCAL codes (scores without a LOINC code we are sure of)
    scale: tuple[float, float] | None = None  # kind "score": lowest and highest value
    roman: bool = False  # kind "score": classes written I, II, III, IV
    classes: tuple[tuple[str, int], ...] = ()  # kind "score": letters for values (Child-Pugh A = 1)
    percent_points: bool = False  # kind "score": "70 %" is 70 points (Karnofsky), not 0.7
    answers: tuple[tuple[str, float], ...] = ()  # kind "score": coded answers (LOINC:LA..., SNOMED:...) -> value
    unknown_answers: tuple[str, ...] = ()  # kind "score": answer codes meaning "not known"
    _conversions: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def codes(self) -> tuple[str, ...]:
        """The patient-record codes (``LOINC:...``) that carry this analyte."""
        return tuple(f"LOINC:{c}" for c in self.loinc) + tuple(f"LOCAL:{c}" for c in self.local)

    @property
    def is_score(self) -> bool:
        return self.kind == "score"

    @property
    def unit(self) -> Unit | None:
        return parse_unit(self.unit_text) if self.unit_text else None

    def conversion_from(self, unit: Unit) -> Conversion:
        """How to bring a value in ``unit`` into this analyte's catalogue unit (cached)."""
        cached = self._conversions.get(unit.text)
        if cached is None:
            cached = self._conversions[unit.text] = self._make_conversion(unit)
        return cached

    def _make_conversion(self, unit: Unit) -> Conversion:
        target = self.unit
        if target is None:
            raise UnitProblem(f"{self.name} is a qualitative result and has no unit")
        if self.is_score:
            # a score has no unit: none, {score}, 1 (and, for Karnofsky and Lansky, % meaning points)
            if unit.ucum == "%" and self.percent_points:
                return Conversion(1.0)
            if unit.is_dimensionless and unit.ucum != "%" and unit.scale == 1 and unit.offset == 0:
                return Conversion(1.0)
            raise UnitProblem(f"incompatible units for {self.name}: a score takes no unit, and {unit.text!r} "
                              "is not one" + (" (a % is read as points)" if self.percent_points else ""))
        if _arbitrary(unit) != _arbitrary(target):
            raise UnitProblem(f"incompatible units for {self.name}: {unit.text} and {target.text} "
                              "(international units are arbitrary and convert only to themselves)")
        if _equivalents(unit) or _equivalents(target):
            if self.valence is None:
                raise UnitProblem(f"cannot convert {unit.text} for {self.name}: equivalents need the analyte's "
                                  "valence, and none is known")
            # UCUM's eq counts moles; 1 mmol of an ion of valence v is v mEq
            base = conversion(_as_moles(unit), _as_moles(target), self.molar_mass, analyte=self.name)
            scale = (1.0 / self.valence if _equivalents(unit) else 1.0) * (self.valence if _equivalents(target) else 1.0)
            return Conversion(base.factor * scale, base.offset)
        if self.ifcc_to_ngsp:
            # two scales, not units of one: only % (NGSP) and mmol/mol (IFCC) are read; any other
            # dimensionless unit (1, {ratio}, mg/g, ...) would be a guess, so it is refused
            scales = {"%": "%", "mmol/mol": "mmol/mol"}
            if unit.ucum not in scales or target.ucum not in scales:
                raise UnitProblem(f"{self.name} is reported in % (NGSP) or mmol/mol (IFCC); "
                                  f"{unit.text!r} is refused rather than guessed")
            if unit.ucum != target.ucum:
                slope, intercept = self.ifcc_to_ngsp
                if unit.ucum == "mmol/mol":
                    return Conversion(slope, intercept)
                return Conversion(1 / slope, -intercept / slope)
            return Conversion(1.0)
        return conversion(unit, target, self.molar_mass, analyte=self.name)


def _arbitrary(unit: Unit) -> bool:
    return "[IU]" in unit.ucum or "[iU]" in unit.ucum


def _equivalents(unit: Unit) -> bool:
    return "eq" in unit.ucum


def _as_moles(unit: Unit) -> Unit:
    return parse_unit(unit.ucum.replace("eq", "mol")) if _equivalents(unit) else unit


@dataclass(frozen=True)
class Catalogue:
    """All analytes, by name (case-insensitive, aliases included) and by patient-record code."""

    analytes: tuple[Analyte, ...]
    by_name: dict[str, Analyte]
    by_code: dict[str, Analyte]

    def lookup(self, name: str) -> Analyte | None:
        return self.by_name.get(name.lower())

    def for_code(self, code: str) -> Analyte | None:
        return self.by_code.get(code)

    def names(self) -> list[str]:
        return sorted({a.name for a in self.analytes} | {x for a in self.analytes for x in a.aliases})


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """The catalogue shipped with the package (read once per process)."""
    text = resources.files("screening.data").joinpath("analytes.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    analytes = []
    by_name: dict[str, Analyte] = {}
    by_code: dict[str, Analyte] = {}
    for name, entry in raw.items():
        analyte = Analyte(
            name=name,
            display=entry.get("display", name),
            loinc=tuple(entry["loinc"]),
            aliases=tuple(entry.get("aliases", ())),
            unit_text=entry.get("unit"),
            molar_mass=entry.get("molar_mass"),
            kind=entry.get("kind", "quantity"),
            ifcc_to_ngsp=tuple(entry["ifcc_to_ngsp"]) if "ifcc_to_ngsp" in entry else None,
            valence=entry.get("valence"),
            local=tuple(entry.get("local", ())),
            scale=tuple(entry["scale"]) if "scale" in entry else None,
            roman=entry.get("roman", False),
            classes=tuple(entry.get("classes", {}).items()),
            percent_points=entry.get("percent_points", False),
            answers=tuple((code if ":" in code else f"LOINC:{code}", float(value))
                          for code, value in entry.get("answers", {}).items()),
            unknown_answers=tuple(f"LOINC:{code}" for code in entry.get("unknown_answers", ())),
        )
        analytes.append(analyte)
        for key in (name, *analyte.aliases):
            if key.lower() in by_name:
                raise ValueError(f"analyte catalogue: name {key!r} is used twice")
            by_name[key.lower()] = analyte
        for code in analyte.codes:
            if code in by_code:
                raise ValueError(f"analyte catalogue: {code} belongs to {by_code[code].name} and {name}")
            by_code[code] = analyte
    return Catalogue(tuple(analytes), by_name, by_code)
