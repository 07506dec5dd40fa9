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
from .load import load_paths, open_release_files
from .store import (Concept, Member, SourceInfo, TerminologyStore, default_store_path, parse_member,
                    resolve_store_path)

__all__ = [
    "TerminologyStore", "Concept", "Member", "SourceInfo", "parse_member", "default_store_path", "resolve_store_path",
    "load_paths", "open_release_files", "TerminologyError", "LoadError", "UnknownConcept", "SystemNotLoaded", "BadMember",
]
