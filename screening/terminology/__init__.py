"""A local terminology store: SNOMED CT, RxNorm (with ATC and other vocabularies) and FHIR
CodeSystems/ValueSets loaded from a site's own licensed releases into one SQLite file, with the
transitive closure precomputed.

    from screening.terminology import TerminologyStore
    store = TerminologyStore.open()                      # $SCREENING_TERMINOLOGY or the per-user store
    store.is_descendant("SNOMED", "254837009", "363346000")   # breast cancer is-a malignant neoplastic disease
    store.expand("<<SNOMED:363346000")                   # frozenset of "SNOMED:..." codes
    store.expand("RXNORM:3002")                          # cyclophosphamide and every product containing it
    store.expand("ATC:L01AA")                            # ATC class -> ATC codes + RXNORM ingredients and products
    store.sources()                                      # name, version, effective date of each loaded source

See docs/terminology.md.
"""
from .errors import BadMember, LoadError, SystemNotLoaded, TerminologyError, UnknownConcept

# The loaders and the store are imported when first named (PEP 562): `screening check` registers
# the `terminology` commands without loading the release readers.
_LAZY = {
    "load_paths": "load", "open_release_files": "load",
    "Concept": "store", "Member": "store", "SourceInfo": "store", "TerminologyStore": "store",
    "default_store_path": "store", "parse_member": "store", "resolve_store_path": "store",
}

__all__ = [
    "TerminologyStore", "Concept", "Member", "SourceInfo", "parse_member", "default_store_path", "resolve_store_path",
    "load_paths", "open_release_files", "TerminologyError", "LoadError", "UnknownConcept", "SystemNotLoaded", "BadMember",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
