"""Plane colorings: exact verification of periodic tile colorings and the neural coloring search.

Submodules: :mod:`.geometry` (exact polygon distances and diameters), :mod:`.periodic` (periodic tile
colorings), :mod:`.verify` (type verification, admissible intervals, sampling check),
:mod:`.constructions` (Soifer, Isbell, the square-and-octagon family, the reconstructed colorings),
:mod:`.templates` (periodic maps and exact rational certificates), :mod:`.reconstruct` (the staircase
structures and the vertex optimiser), :mod:`.neural` (SIREN search, conflict metric, extraction) and
:mod:`.draw` (figures).  The torch-based modules are imported on demand.
"""

from .constructions import *  # noqa: F401,F403
from .geometry import *  # noqa: F401,F403
from .periodic import PeriodicColoring, lattice_points  # noqa: F401
from .verify import *  # noqa: F401,F403
