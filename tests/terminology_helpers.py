"""Paths of the terminology fixtures (real release formats, tests/data/terminology/README.md)."""
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "terminology"
RF2 = DATA / "SnomedCT_FixtureRF2_INT_20240101"
RF2_FILES = RF2 / "Snapshot" / "Terminology"
RXNORM = DATA / "RxNorm_full_01022024"
FHIR = DATA / "fhir"
ALL = [RF2, RXNORM, FHIR]

ROOT = Path(__file__).resolve().parent.parent
# the fixture terminology of trials/NCT00659217.cases.yaml: SNOMED CT concepts of the rule set, the
# samples and the Synthea bundles, with is-a links to the classes the rule set names; RxNorm ingredients,
# products and ATC links (trials/terminology/README.md)
NCT_TERMINOLOGY = [ROOT / "trials" / "terminology" / "snomed-fixture.json",
                   ROOT / "trials" / "terminology" / "RxNorm_full_11022026"]


@lru_cache(maxsize=None)
def fixture_store(*paths: Path):
    """A store built once per test process from fixture release paths (default: the NCT00659217 fixture)."""
    import atexit
    import shutil
    import tempfile

    from screening.terminology import TerminologyStore, load_paths

    folder = Path(tempfile.mkdtemp(prefix="screening-test-terminology-"))
    atexit.register(shutil.rmtree, folder, True)
    load_paths(folder / "store.sqlite", list(paths or NCT_TERMINOLOGY))
    return TerminologyStore.open(folder / "store.sqlite")
