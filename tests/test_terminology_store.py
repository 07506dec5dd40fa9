"""The terminology store's API on fixtures in the real release formats: closure facts, lookups,
expansions of every kind of member, sources and versions."""
import pytest

from screening.terminology import (BadMember, SystemNotLoaded, TerminologyStore, UnknownConcept, load_paths,
                                   parse_member)
from screening.terminology.closure import compute_closure
from screening.terminology.rf2 import sctid_problem, verhoeff_digit, verhoeff_valid

from terminology_helpers import ALL, FHIR, RF2, RXNORM


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "t.sqlite"
    load_paths(path, ALL)
    with TerminologyStore.open(path) as opened:
        yield opened


# ---- closure ---------------------------------------------------------------------------------

def test_closure_of_a_polyhierarchy():
    # 4 has two parents (2, 3), both under 1
    closure = compute_closure([(2, 1), (3, 1), (4, 2), (4, 3), (5, 4)])
    assert sorted(closure.ancestors[5]) == [1, 2, 3, 4]
    assert sorted(closure.ancestors[4]) == [1, 2, 3]
    assert closure.rows == 1 + 1 + 3 + 4 and closure.cycles == []
    assert list(closure.pairs())[:2] == [(2, 1), (3, 1)]


def test_closure_collapses_cycles_and_ignores_self_loops():
    closure = compute_closure([(2, 1), (3, 2), (2, 3), (4, 3), (1, 1)])
    assert sorted(closure.ancestors[2]) == [1, 3] and sorted(closure.ancestors[3]) == [1, 2]
    assert sorted(closure.ancestors[4]) == [1, 2, 3]
    assert closure.cycles == [(2, 3)]
    assert 1 not in closure.ancestors


def test_closure_is_iterative_for_deep_chains():
    depth = 5_000  # beyond the recursion limit
    closure = compute_closure([(i + 1, i) for i in range(depth)])
    assert len(closure.ancestors[depth]) == depth


# ---- SCTIDs ----------------------------------------------------------------------------------

def test_verhoeff_and_sctid_checks():
    assert verhoeff_valid("254837009") and verhoeff_digit("25483700") == "9"
    assert sctid_problem("254837009", "concept") is None
    assert "check digit" in sctid_problem("254837008", "concept")
    assert "not a concept id" in sctid_problem("7001020", "concept")  # a relationship id
    assert "not an SCTID" in sctid_problem("0123", "concept")


# ---- SNOMED CT -------------------------------------------------------------------------------

def test_rf2_closure_facts(store):
    assert store.is_descendant("SNOMED", "254837009", "363346000")      # breast cancer is-a malignancy
    assert store.is_descendant("SNOMED", "254837009", "126926005")      # ... and a neoplasm of breast (2nd parent)
    assert store.is_descendant("SNOMED", "109838007", "363346000")      # two levels down
    assert store.is_descendant("SNOMED", "22298006", "404684003")       # MI is-a clinical finding
    assert not store.is_descendant("SNOMED", "22298006", "363346000")
    assert not store.is_descendant("SNOMED", "363346000", "254837009")  # not upwards
    assert not store.is_descendant("SNOMED", "363346000", "363346000")
    assert store.is_descendant("SNOMED", "363346000", "363346000", include_self=True)
    assert not store.is_descendant("SNOMED", "22298006", "49436004")    # an inactive is-a row is ignored
    assert not store.is_descendant("SNOMED", "254837009", "76752008")   # finding site is not is-a
    assert not store.is_descendant("SNOMED", "999", "363346000")


def test_rf2_lookup(store):
    concept = store.lookup("SNOMED", "254837009")
    assert concept.display == "Malignant neoplasm of breast (disorder)"  # the active FSN, not the inactive one
    assert concept.active is True and concept.source == "SNOMED CT INT"
    assert {p for p, _ in concept.parents} == {"363346000", "126926005"}
    assert {a for a, _ in concept.ancestors} == {"363346000", "126926005", "55342001", "64572001", "404684003",
                                                "138875005"}
    retired = store.lookup("SNOMED", "9999990006")
    assert retired.active is False and retired.ancestors == ()
    assert store.lookup("SNOMED", "12345") is None


def test_snomed_members(store):
    malignant = {"363346000", "254837009", "363406005", "93761005", "109838007", "372130007", "254701007"}
    assert store.expand("<<SNOMED:363346000") == {f"SNOMED:{c}" for c in malignant}
    assert store.expand("<SNOMED:363346000") == {f"SNOMED:{c}" for c in malignant - {"363346000"}}
    assert store.expand("SNOMED:363346000") == {"SNOMED:363346000"}
    assert store.expand("SNOMED:1234") == {"SNOMED:1234"}  # exact members need no store
    assert store.descendants("SNOMED", "363406005", include_self=False) == {"93761005", "109838007"}
    with pytest.raises(UnknownConcept):
        store.expand("<<SNOMED:1234")
    with pytest.raises(SystemNotLoaded):
        store.expand("<<LOINC:2160-0")


def test_members_are_parsed_strictly():
    assert parse_member(" << SNOMED:363346000 ") == parse_member("<<SNOMED:363346000")
    assert parse_member("atc:l01aa").code == "L01AA" and parse_member("ATC:L01.AA").code == "L01AA"
    member = parse_member("<<http://example.org/cs|biopsy")
    assert (member.op, member.system, member.code) == ("<<", "http://example.org/cs", "biopsy")
    assert parse_member("VALUESET:http://example.org/vs").code == "http://example.org/vs"
    for bad in ("SNOMED", "<<", "<<VALUESET:http://x", ":12"):
        with pytest.raises(BadMember):
            parse_member(bad)


# ---- RxNorm and ATC --------------------------------------------------------------------------

CYCLOPHOSPHAMIDE_PRODUCTS = {
    "3002", "1545988", "202589", "315747", "371664", "1156183", "9900001", "571139", "367922", "1174494", "210639",
    "9900003", "9900004", "690313", "377238", "9900002"}


def test_rxnorm_ingredient_expands_to_every_product_containing_it(store):
    codes = store.expand("RXNORM:3002")
    assert codes == {f"RXNORM:{c}" for c in CYCLOPHOSPHAMIDE_PRODUCTS}
    assert "RXNORM:317541" not in codes          # the dose form "Oral Tablet" contains nothing
    assert "RXNORM:9900006" not in codes         # reformulated_to (same rank) is not walked
    assert "RXNORM:1191" not in codes and "RXNORM:6628" not in codes
    assert store.expand("<<RXNORM:3002") == codes
    assert store.expand("<RXNORM:3002") == codes - {"RXNORM:3002"}
    # a clinical drug stands for its branded drugs and the packs that contain it
    assert store.expand("RXNORM:9900001") == {"RXNORM:9900001", "RXNORM:210639", "RXNORM:9900003", "RXNORM:9900004"}
    # mannitol: only the multi-ingredient concepts
    assert store.expand("RXNORM:6628") == {"RXNORM:6628", "RXNORM:690313", "RXNORM:377238", "RXNORM:9900002"}


def test_rxnorm_lookup_term_types_and_activity(store):
    scd = store.lookup("RXNORM", "9900001")
    assert (scd.kind, scd.display, scd.active) == ("SCD", "cyclophosphamide 50 MG Oral Tablet", True)
    assert store.lookup("RXNORM", "9900006").active is False  # SUPPRESS=O
    assert store.is_descendant("RXNORM", "9900004", "3002")   # the branded pack contains cyclophosphamide
    assert store.lookup("MSH", "D003520").display == "Cyclophosphamide"


def test_atc_class_expands_through_ingredients_to_products(store):
    codes = store.expand("ATC:L01AA")
    assert {"ATC:L01AA", "ATC:L01AA01"} <= codes
    assert {c for c in codes if c.startswith("RXNORM:")} == {f"RXNORM:{c}" for c in CYCLOPHOSPHAMIDE_PRODUCTS}
    assert store.expand("ATC:L01") >= codes
    # aspirin has two ATC codes; only the N02 one is under N02
    n02 = store.expand("ATC:N02")
    assert {"RXNORM:1191", "RXNORM:243670", "RXNORM:161"} <= n02 and "RXNORM:6809" not in n02
    assert "RXNORM:1191" in store.expand("ATC:B01AC06")
    # a class the release does not list is still a level of the hierarchy
    assert store.lookup("ATC", "N02B").active is None
    assert store.is_descendant("ATC", "N02BE01", "N")


# ---- FHIR ------------------------------------------------------------------------------------

def test_fhir_codesystem_nesting_and_parent_property(store):
    assert store.is_descendant("LOCAL", "discoid_rash_scalp", "lupus_skin_finding")
    assert store.is_descendant("LOCAL", "old_rash_code", "lupus_skin_finding")  # parent property
    assert store.lookup("LOCAL", "old_rash_code").active is False             # status retired
    url = "http://example.org/fhir/CodeSystem/local-procedures"
    assert store.is_descendant(url, "percutaneous_renal_biopsy", "biopsy")
    assert store.expand(f"<<{url}|renal_biopsy") == {f"{url}|renal_biopsy", f"{url}|percutaneous_renal_biopsy"}


def test_fhir_valuesets(store):
    vs = "VALUESET:http://example.org/fhir/ValueSet/"
    # expansion.contains as published, nested and abstract entries handled
    assert store.expand(vs + "breast-cancer") == {"SNOMED:254837009", "ICD10:C50911", "ICD10:C50912"}
    # compose: is-a filter resolved against the store, a concept list, another value set, an exclude
    assert store.expand(vs + "malignancy-except-bcc") == {
        "SNOMED:363346000", "SNOMED:254837009", "SNOMED:363406005", "SNOMED:93761005", "SNOMED:109838007",
        "SNOMED:372130007", "ICD10:C189", "ICD10:C50911", "ICD10:C50912"}
    # from the Bundle: descendent-of (without the concept itself), and an exclude
    assert store.expand(vs + "renal-biopsy") == {
        "http://example.org/fhir/CodeSystem/local-procedures|renal_biopsy",
        "http://example.org/fhir/CodeSystem/local-procedures|percutaneous_renal_biopsy"}
    assert store.expand(vs + "lupus-rash") == {"LOCAL:lupus_skin_finding", "LOCAL:malar_rash", "LOCAL:discoid_rash",
                                               "LOCAL:discoid_rash_scalp"}
    with pytest.raises(UnknownConcept):
        store.expand(vs + "nothing-here")


# ---- sources ---------------------------------------------------------------------------------

def test_sources_have_versions_and_effective_dates(store):
    sources = {s.name: s for s in store.sources()}
    snomed = sources["SNOMED CT INT"]
    assert (snomed.version, snomed.effective, snomed.concepts, snomed.relationships) == ("20240101", "2024-01-01", 25, 24)
    rx = sources["RxNorm"]
    assert (rx.version, rx.effective) == ("RXNORM_24AA_240102F", "2024-01-02")
    assert rx.details["sources"]["ATC"] == "ATC_2024_24_01_02"
    assert rx.details["term_types"]["SCD"] == 4
    assert sources["ValueSet http://example.org/fhir/ValueSet/breast-cancer"].version == "20240115"
    assert len(sources) == 8
    assert store.systems()["SNOMED"] == 25
    assert store.closure_rows()["SNOMED"] == store.counts()["closure_rows"] - sum(
        v for k, v in store.closure_rows().items() if k != "SNOMED")


def test_order_of_loading_does_not_matter_for_valuesets(tmp_path):
    path = tmp_path / "t.sqlite"
    load_paths(path, [FHIR])        # value sets first: their is-a filter needs SNOMED CT, loaded later
    load_paths(path, [RF2, RXNORM])
    with TerminologyStore.open(path) as opened:
        assert "SNOMED:93761005" in opened.expand("VALUESET:http://example.org/fhir/ValueSet/malignancy-except-bcc")
