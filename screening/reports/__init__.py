"""Reports built on screening results: the worklist (what to do next, per patient and trial)."""
