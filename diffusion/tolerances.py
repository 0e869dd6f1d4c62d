"""The tolerances every score and every number on screen uses, defined once.

SYMPREC and the 0.5 angstrom validity cutoff follow CDVAE / DiffCSP evaluation; the matcher settings are
those of their match-rate metric (docs/architecture.md#evaluation).
"""
from __future__ import annotations

SYMPREC = 0.1                 # angstrom: spglib tolerance for every space group the project reports
VALID_MIN_DISTANCE = 0.5      # angstrom: a structurally valid crystal has no two atoms closer than this
MIN_VOLUME = 0.1              # cubic angstrom: a smaller cell is not a crystal
CSP_MATCHER_TOLERANCES = {"stol": 0.5, "angle_tol": 10, "ltol": 0.3}   # pymatgen StructureMatcher

NO_SPACE_GROUP_CONDITION = "this model was not trained with a space-group condition"
