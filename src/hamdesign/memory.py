"""The memory budget every k-mesh and k-chunk is planned against (``HAMDESIGN_MEMORY_BUDGET``, GiB).

Its own module because both the lattice (mesh coordinates) and the spectrum (chunks) read it, and
the lattice must not import the physics that imports it.
"""

from __future__ import annotations

import os

from .errors import MemoryBudgetError


def memory_budget_bytes() -> int:
    """Total memory hamdesign may plan to use (``HAMDESIGN_MEMORY_BUDGET`` GiB, default 4)."""
    text = os.environ.get("HAMDESIGN_MEMORY_BUDGET", "4")
    try:
        value = float(text)
    except ValueError as err:
        raise MemoryBudgetError(f"HAMDESIGN_MEMORY_BUDGET must be a number of GiB, got {text!r}") from err
    return int(value * 2**30)
