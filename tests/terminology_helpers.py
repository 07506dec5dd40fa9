"""Paths of the terminology fixtures (real release formats, tests/data/terminology/README.md)."""
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "terminology"
RF2 = DATA / "SnomedCT_FixtureRF2_INT_20240101"
RF2_FILES = RF2 / "Snapshot" / "Terminology"
RXNORM = DATA / "RxNorm_full_01022024"
FHIR = DATA / "fhir"
ALL = [RF2, RXNORM, FHIR]
